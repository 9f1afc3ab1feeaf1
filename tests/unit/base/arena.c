/*
 * arena.c - tests of src/base/arena.c: allocations of every size class are usable in full,
 * aligned, and cleanups run newest first at release.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/arena.h"

/* Sizes around the block sizes (1 KiB doubling to 64 KiB) and the own-block threshold
 * (16 KiB): each allocation is written in full, so ASan sees any short block. */
static void test_sizes(void **state)
{
    (void)state;
    static const size_t sizes[] = {1,    7,    16,    1000,  1024,  2049, 4000, 6168,
                                   8191, 9000, 16384, 16385, 70000, 3,    12000};
    for (int round = 0; round < 3; round++) {
        arena_t arena;
        arena_init(&arena);
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            unsigned char *p = arena_alloc(&arena, sizes[i]);
            assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
            memset(p, 0xAB, sizes[i]);
            unsigned char *z = arena_zalloc(&arena, sizes[i] + (size_t)round * 100);
            for (size_t k = 0; k < sizes[i] + (size_t)round * 100; k++)
                assert_int_equal(z[k], 0);
        }
        arena_release(&arena);
    }
    /* the first block is 2 KiB and the next 4 KiB: 8,000 bytes must still fit in one */
    arena_t arena;
    arena_init(&arena);
    memset(arena_alloc(&arena, 16), 1, 16);
    memset(arena_alloc(&arena, 8000), 2, 8000);
    arena_release(&arena);
}

static int order[3], norder;

static void record(void *data)
{
    order[norder++] = *(int *)data;
}

static void test_cleanups(void **state)
{
    (void)state;
    static int values[] = {1, 2, 3};
    arena_t arena;
    arena_init(&arena);
    norder = 0;
    for (int i = 0; i < 3; i++)
        arena_cleanup_add(&arena, record, &values[i]);
    assert_string_equal(arena_printf(&arena, "%s-%d", "x", 42), "x-42");
    arena_release(&arena);
    assert_int_equal(norder, 3);
    assert_int_equal(order[0], 3);
    assert_int_equal(order[2], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_cleanups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
