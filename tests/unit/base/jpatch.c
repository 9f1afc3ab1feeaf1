/*
 * Tests for src/base/jpatch.c: JSON Patch operations, pointers with escapes, and that a
 * failing patch leaves the document unchanged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "base/jpatch.h"
#include "base/jv.h"

static json_t *parse(const char *text)
{
    err_t err = ERR_INIT;
    json_t *v = jv_parse(text, strlen(text), &err);
    if (!v)
        fail_msg("cannot parse %s: %s", text, err_message(&err));
    err_release(&err);
    return v;
}

static char *dump(const json_t *v)
{
    buf_t out = BUF_INIT;
    jv_dump(v, &out);
    return buf_detach(&out, NULL);
}

static void expect(const char *doc, const char *patch, const char *result)
{
    json_t *d = parse(doc), *p = parse(patch);
    err_t err = ERR_INIT;
    if (jpatch_apply(&d, p, &err) != ERR_OK)
        fail_msg("patch %s failed: %s", patch, err_message(&err));
    char *out = dump(d);
    assert_string_equal(out, result);
    free(out);
    json_decref(d);
    json_decref(p);
    err_release(&err);
}

static void expect_failure(const char *doc, const char *patch, status_t code, const char *fragment)
{
    json_t *d = parse(doc), *p = parse(patch);
    json_t *before = d;
    err_t err = ERR_INIT;
    assert_int_equal(jpatch_apply(&d, p, &err), code);
    if (!strstr(err_message(&err), fragment))
        fail_msg("message \"%s\" lacks \"%s\"", err_message(&err), fragment);
    assert_ptr_equal(d, before); /* unchanged */
    char *out = dump(d);
    assert_string_equal(out, doc);
    free(out);
    json_decref(d);
    json_decref(p);
    err_release(&err);
}

static void test_operations(void **state)
{
    (void)state;
    expect("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/b\",\"value\":[1,2]}]",
           "{\"a\":1,\"b\":[1,2]}");
    expect("{\"a\":[1,3]}", "[{\"op\":\"add\",\"path\":\"/a/1\",\"value\":2}]", "{\"a\":[1,2,3]}");
    expect("{\"a\":[1]}", "[{\"op\":\"add\",\"path\":\"/a/-\",\"value\":2}]", "{\"a\":[1,2]}");
    expect("{\"a\":1,\"b\":2}", "[{\"op\":\"remove\",\"path\":\"/a\"}]", "{\"b\":2}");
    expect("{\"a\":[1,2,3]}", "[{\"op\":\"remove\",\"path\":\"/a/0\"}]", "{\"a\":[2,3]}");
    expect("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":1.50}]", "{\"a\":1.50}");
    /* replace keeps the member's place */
    expect("{\"a\":1,\"b\":2,\"c\":[1,2]}",
           "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":0},"
           "{\"op\":\"replace\",\"path\":\"/c/0\",\"value\":9}]",
           "{\"a\":0,\"b\":2,\"c\":[9,2]}");
    expect("{\"a\":{\"b\":1},\"c\":{}}", "[{\"op\":\"move\",\"from\":\"/a/b\",\"path\":\"/c/d\"}]",
           "{\"a\":{},\"c\":{\"d\":1}}");
    expect("{\"a\":[1]}", "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/b\"}]",
           "{\"a\":[1],\"b\":[1]}");
    expect("{\"a\":\"x\"}",
           "[{\"op\":\"test\",\"path\":\"/a\",\"value\":\"x\"},"
           "{\"op\":\"replace\",\"path\":\"\",\"value\":{\"z\":true}}]",
           "{\"z\":true}");
    /* escapes: ~1 is '/', ~0 is '~' */
    expect("{\"a/b\":1,\"m~n\":2}",
           "[{\"op\":\"replace\",\"path\":\"/a~1b\",\"value\":3},"
           "{\"op\":\"remove\",\"path\":\"/m~0n\"}]",
           "{\"a/b\":3}");
}

static void test_failures_change_nothing(void **state)
{
    (void)state;
    expect_failure("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"/b\",\"value\":0}]", ERR_RULE,
                   "does not exist");
    expect_failure("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"/b\"}]", ERR_RULE,
                   "patch operation 0 (remove): path \"/b\" does not exist");
    expect_failure("{\"a\":1}",
                   "[{\"op\":\"add\",\"path\":\"/b\",\"value\":2},"
                   "{\"op\":\"test\",\"path\":\"/a\",\"value\":2}]",
                   ERR_RULE, "patch operation 1 (test)");
    expect_failure("{\"a\":[1]}", "[{\"op\":\"add\",\"path\":\"/a/5\",\"value\":2}]", ERR_RULE,
                   "outside the array");
    expect_failure("{\"a\":1}", "[{\"op\":\"jump\",\"path\":\"/a\"}]", ERR_INVALID,
                   "unknown operation \"jump\"");
    expect_failure("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"a\",\"value\":1}]", ERR_INVALID,
                   "is not a JSON Pointer");
    expect_failure("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/b\"}]", ERR_INVALID,
                   "\"value\" is missing");
    expect_failure("{\"a\":{\"b\":1}}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/c\"}]",
                   ERR_RULE, "into itself");
    expect_failure("{\"a\":1}", "{\"op\":\"remove\"}", ERR_INVALID, "must be an array");
    expect_failure("{\"a\":[1]}", "[{\"op\":\"remove\",\"path\":\"/a/01\"}]", ERR_RULE,
                   "does not exist");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_operations),
        cmocka_unit_test(test_failures_change_nothing),
    };
    return cmocka_run_group_tests_name("base/jpatch", tests, NULL, NULL);
}
