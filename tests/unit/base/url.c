/*
 * Tests for src/base/url.c: percent-decoding and query-string splitting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "base/url.h"

static void test_decode(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    size_t n;
    assert_string_equal(url_decode(&arena, "a+b%20c", 7, true, &n), "a b c");
    assert_int_equal(n, 5);
    /* '+' is a space in queries only */
    assert_string_equal(url_decode(&arena, "a+b", 3, false, NULL), "a+b");
    /* a '%' without two hex digits stays */
    assert_string_equal(url_decode(&arena, "100%", 4, true, NULL), "100%");
    assert_string_equal(url_decode(&arena, "%4", 2, true, NULL), "%4");
    assert_string_equal(url_decode(&arena, "%zz%41", 6, true, NULL), "%zzA");
    /* UTF-8 in escapes, and a NUL that makes the length differ from strlen */
    assert_string_equal(url_decode(&arena, "Zo%C3%AB", 8, true, NULL), "Zo\xc3\xab");
    assert_string_equal(url_decode(&arena, "a%00b", 5, true, &n), "a");
    assert_int_equal(n, 3);
    /* only len bytes are read */
    assert_string_equal(url_decode(&arena, "abc%41", 3, true, NULL), "abc");
    arena_release(&arena);
}

static void test_split(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    url_pair_t *p;
    const char *q = "name=Zo%C3%AB&&flag&code=a%7Cb=c&empty=&=x&";
    size_t n = url_query_split(&arena, q, strlen(q), &p);
    assert_int_equal(n, 5);
    assert_string_equal(p[0].name, "name");
    assert_string_equal(p[0].value, "Zo\xc3\xab");
    assert_int_equal(p[0].value_len, 4);
    assert_string_equal(p[1].name, "flag"); /* no '=': an empty value */
    assert_string_equal(p[1].value, "");
    assert_int_equal(p[1].value_len, 0);
    assert_string_equal(p[2].name, "code"); /* split at the first '=' only */
    assert_string_equal(p[2].value, "a|b=c");
    assert_string_equal(p[3].name, "empty");
    assert_int_equal(p[3].value_len, 0);
    assert_string_equal(p[4].name, ""); /* an empty name is kept for the caller to judge */
    assert_string_equal(p[4].value, "x");
    assert_int_equal(url_query_split(&arena, "", 0, &p), 0);
    assert_int_equal(url_query_split(&arena, "&&", 2, &p), 0);
    arena_release(&arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_split),
    };
    return cmocka_run_group_tests_name("base/url", tests, NULL, NULL);
}
