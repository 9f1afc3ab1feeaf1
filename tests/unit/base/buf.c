/*
 * Tests for src/base/buf.c, arena.c and err.c: the buffer's invariants and cap, the arena's
 * cleanups, and error values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"

static void test_buf_invariants(void **state)
{
    (void)state;
    buf_t b = BUF_INIT;
    assert_non_null(b.ptr);
    assert_string_equal(b.ptr, "");
    buf_addstr(&b, "hello");
    buf_addch(&b, ' ');
    buf_addf(&b, "%d-%s", 42, "x");
    assert_string_equal(b.ptr, "hello 42-x");
    assert_int_equal(b.len, 10);
    for (int i = 0; i < 1000; i++)
        buf_addstr(&b, "0123456789");
    assert_int_equal(b.len, 10010);
    assert_int_equal(b.ptr[b.len], '\0');
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.ptr, "");
    buf_addstr(&b, "kept");
    size_t len;
    char *s = buf_detach(&b, &len);
    assert_string_equal(s, "kept");
    assert_int_equal(len, 4);
    free(s);
    assert_string_equal(b.ptr, "");
    buf_release(&b);
}

static void test_buf_cap(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 8);
    buf_addstr(&b, "12345");
    assert_false(b.toobig);
    buf_addstr(&b, "6789");
    assert_true(b.toobig);
    assert_string_equal(b.ptr, "12345");
    buf_addstr(&b, "1"); /* ignored once too big */
    assert_string_equal(b.ptr, "12345");
    buf_release(&b);
}

static void test_json_escape(void **state)
{
    (void)state;
    buf_t b = BUF_INIT;
    const char raw[] = "a\"b\\c\n\x01\xc3\xa9";
    buf_add_json_escaped(&b, raw, sizeof(raw) - 1);
    assert_string_equal(b.ptr, "a\\\"b\\\\c\\n\\u0001\xc3\xa9");
    buf_release(&b);
}

static int cleanups;
static void count_cleanup(void *data)
{
    cleanups += *(int *)data;
}

static void test_arena(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a);
    char *s = arena_strdup(&a, "abc");
    assert_string_equal(s, "abc");
    char *p = arena_printf(&a, "%s-%d", s, 7);
    assert_string_equal(p, "abc-7");
    for (int i = 0; i < 10000; i++) {
        int *x = arena_alloc(&a, sizeof(int));
        *x = i;
        assert_int_equal((uintptr_t)x % _Alignof(max_align_t), 0);
    }
    /* requests between the block size and the direct-block threshold fit their block */
    for (size_t size = 1000; size < 20000; size += 1500)
        memset(arena_alloc(&a, size), 0xAB, size);
    char *big = arena_zalloc(&a, 1 << 20);
    assert_int_equal(big[12345], 0);
    static int one = 1, ten = 10;
    cleanups = 0;
    arena_cleanup_add(&a, count_cleanup, &one);
    arena_cleanup_add(&a, count_cleanup, &ten);
    arena_release(&a);
    assert_int_equal(cleanups, 11);
}

static void test_err(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    assert_int_equal(err.code, ERR_OK);
    assert_string_equal(err_message(&err), "");
    err_add(&err, ERR_OK, SEVERITY_WARNING, NULL, "just a warning");
    assert_int_equal(err.code, ERR_OK);
    assert_int_equal(err_set(&err, ERR_VALUE, "Patient.birthDate", "bad \"%s\"", "x"), ERR_VALUE);
    err_set(&err, ERR_REQUIRED, NULL, "second");
    assert_int_equal(err.code, ERR_VALUE); /* the first error decides */
    assert_string_equal(err_message(&err), "bad \"x\"");
    assert_string_equal(err.issues[1].expression, "Patient.birthDate");
    assert_int_equal(err_http_status(ERR_VALUE), 400);
    assert_int_equal(err_http_status(ERR_REQUIRED), 422);
    assert_int_equal(err_http_status(ERR_VERSION_CONFLICT), 412);
    assert_string_equal(err_issue_type(ERR_GONE), "deleted");
    err_t other = ERR_INIT;
    err_move(&other, &err);
    assert_int_equal(other.code, ERR_VALUE);
    assert_int_equal(other.nissues, 3);
    assert_int_equal(err.nissues, 0);
    assert_int_equal(err.code, ERR_OK);
    err_release(&err);
    err_release(&other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_invariants),
        cmocka_unit_test(test_buf_cap),
        cmocka_unit_test(test_json_escape),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_err),
    };
    return cmocka_run_group_tests_name("base/buf", tests, NULL, NULL);
}
