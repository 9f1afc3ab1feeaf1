/*
 * Tests for src/base/jv.c: the strict JSON parser, decimals kept as text, serializers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "base/jv.h"

static char *roundtrip(const char *text)
{
    err_t err = ERR_INIT;
    json_t *v = jv_parse(text, strlen(text), &err);
    assert_non_null(v);
    buf_t out = BUF_INIT;
    jv_dump(v, &out);
    json_decref(v);
    err_release(&err);
    return buf_detach(&out, NULL);
}

static void expect_error(const char *text, size_t len, const char *fragment)
{
    err_t err = ERR_INIT;
    json_t *v = jv_parse(text, len, &err);
    assert_null(v);
    assert_int_equal(err.code, ERR_SYNTAX);
    if (!strstr(err_message(&err), fragment))
        fail_msg("message \"%s\" lacks \"%s\"", err_message(&err), fragment);
    err_release(&err);
}

static void test_roundtrip_keeps_order_and_decimals(void **state)
{
    (void)state;
    const char *cases[] = {
        "{\"b\":1,\"a\":[true,false,null],\"c\":\"x\"}",
        "{\"value\":1.50,\"e\":1e-7,\"neg\":-0.0,\"big\":123456789012345678901234567890}",
        "[0,-1,9223372036854775807,-9223372036854775808]",
        "{\"s\":\"caf\xc3\xa9 \xf0\x9f\x98\x80 \\\"q\\\" \\\\ \\n\"}",
        "{}",
        "[]",
        "\"just a string\"",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = roundtrip(cases[i]);
        assert_string_equal(out, cases[i]);
        free(out);
    }
}

static void test_escapes_are_decoded(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    const char *text = "[\"\\u00e9\\ud83d\\ude00\\/\\t\"]";
    json_t *v = jv_parse(text, strlen(text), &err);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_array_get(v, 0)), "\xc3\xa9\xf0\x9f\x98\x80/\t");
    json_decref(v);
    err_release(&err);
}

static void test_decimal_accessors(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    const char *text = "[1.50, 2, \"1.5\"]";
    json_t *v = jv_parse(text, strlen(text), &err);
    assert_non_null(v);
    json_t *d = json_array_get(v, 0);
    assert_true(jv_is_decimal(d));
    assert_true(jv_is_number(d));
    assert_false(jv_is_string(d));
    size_t len;
    assert_memory_equal(jv_decimal_text(d, &len), "1.50", 4);
    assert_int_equal(len, 4);
    assert_true(jv_number_value(d) == 1.5);
    assert_true(jv_is_number(json_array_get(v, 1)));
    assert_true(jv_is_string(json_array_get(v, 2)));
    assert_false(jv_is_decimal(json_array_get(v, 2)));
    json_decref(v);
    err_release(&err);
}

static void test_errors_name_position_and_path(void **state)
{
    (void)state;
    expect_error("", 0, "the body is empty");
    expect_error("{\"a\":1,}", 8, "line 1, column 8");
    expect_error("{\"a\":[1,2,}", 11, "($.a[2])");
    expect_error("{\"a\":1,\n \"a\":2}", 15, "duplicate member name");
    expect_error("{'a':1}", 7, "expected a member name");
    expect_error("[1] x", 5, "unexpected data after");
    expect_error("[01]", 4, "leading zeros");
    expect_error("[1.]", 4, "after the decimal point");
    expect_error("[\"\\ud800\"]", 10, "surrogate");
    expect_error("[\"\\u0000\"]", 10, "U+0000");
    expect_error("[\"a\x01\"]", 5, "control character");
    expect_error("[\"\xc3\x28\"]", 5, "invalid UTF-8");
    expect_error("[\"\xed\xa0\x80\"]", 6, "invalid UTF-8"); /* encoded surrogate */
    expect_error("[\"\xc0\xaf\"]", 5, "invalid UTF-8");     /* overlong */
    expect_error("[tru]", 5, "expected a value");
    expect_error("{\"a\" 1}", 7, "expected ':'");
    expect_error("[\"abc", 5, "unterminated string");
}

static void test_depth_limit(void **state)
{
    (void)state;
    char deep[1001];
    memset(deep, '[', 1000);
    deep[1000] = '\0';
    expect_error(deep, 1000, "nesting is deeper");
    /* within the limit it parses */
    char ok[2 * 150 + 1];
    memset(ok, '[', 150);
    memset(ok + 150, ']', 150);
    ok[300] = '\0';
    err_t err = ERR_INIT;
    json_t *v = jv_parse(ok, 300, &err);
    assert_non_null(v);
    json_decref(v);
    err_release(&err);
}

static void test_pretty(void **state)
{
    (void)state;
    const char *compact = "{\"a\":[1,{\"b\":\"x,y:{}\"}],\"e\":{},\"f\":[]}";
    buf_t out = BUF_INIT;
    jv_pretty(compact, strlen(compact), &out);
    assert_string_equal(out.ptr,
                        "{\n  \"a\": [\n    1,\n    {\n      \"b\": \"x,y:{}\"\n    }\n  ],\n"
                        "  \"e\": {},\n  \"f\": []\n}");
    /* and it parses back to the same value */
    err_t err = ERR_INIT;
    json_t *v = jv_parse(out.ptr, out.len, &err);
    assert_non_null(v);
    buf_t again = BUF_INIT;
    jv_dump(v, &again);
    assert_string_equal(again.ptr, compact);
    json_decref(v);
    buf_release(&again);
    buf_release(&out);
    err_release(&err);
}

static void test_utf8_validation(void **state)
{
    (void)state;
    assert_true(jv_utf8_valid("abc \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 15));
    assert_false(jv_utf8_valid("\xff", 1));
    assert_false(jv_utf8_valid("\xe2\x82", 2));
    assert_false(jv_utf8_valid("\xf4\x90\x80\x80", 4)); /* beyond U+10FFFF */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_keeps_order_and_decimals),
        cmocka_unit_test(test_escapes_are_decoded),
        cmocka_unit_test(test_decimal_accessors),
        cmocka_unit_test(test_errors_name_position_and_path),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_pretty),
        cmocka_unit_test(test_utf8_validation),
    };
    return cmocka_run_group_tests_name("base/jv", tests, NULL, NULL);
}
