/*
 * sql_text.c - the words of the full text (src/store/sql_text.c): how a text is split and
 * folded for both drivers, and PostgreSQL's tsvector literal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "store/sql_text.h"

static void check_join(const char *text, const char *expected)
{
    buf_t b = BUF_INIT;
    sql__text_join(text, &b);
    if (strcmp(b.ptr, expected) != 0)
        fail_msg("\"%s\": expected \"%s\", got \"%s\"", text, expected, b.ptr);
    buf_release(&b);
}

static void test_words(void **state)
{
    (void)state;
    check_join("J.Doe@Example.org", "j doe example org");
    check_join("https://example.org/care-plan?id=42", "https example org care plan id 42");
    check_join("follow-up 2.5 mg, ICD-10 C50.9", "follow up 2 5 mg icd 10 c50 9");
    check_join("Cr\xc3\xa8me br\xc3\xbbl\xc3\xa9"
               "e \xc3\x86r\xc3\xb8 Stra\xc3\x9f"
               "e",
               "creme brulee aero strasse");
    check_join("a\xe2\x80\x93"
               "b\xc2\xa0"
               "c\xc2\xab"
               "d\xc2\xbb \xc2\xb5g \xe2\x86\x92 e\xf0\x9f\x98\x80"
               "f",
               "a b c d \xc2\xb5g e f");
    check_join("'quoted' \"words\" back\\slash", "quoted words back slash");
    check_join("\xce\x95\xce\xbb\xce\xad\xce\xbd\xce\xb7 \xd0\x81\xd0\xbb\xd0\xba\xd0\xb0",
               "\xce\xb5\xce\xbb\xce\xb5\xce\xbd\xce\xb7 \xd0\xb5\xd0\xbb\xd0\xba\xd0\xb0");
    check_join(" -- ", "");
    check_join(NULL, "");
}

static void test_long_words_are_cut(void **state)
{
    (void)state;
    char text[600];
    memset(text, 'x', 300);
    memcpy(text + 300, " y", 3);
    buf_t b = BUF_INIT;
    sql__text_join(text, &b);
    assert_int_equal(b.len, SQL_TEXT_MAX_WORD + 2);
    assert_string_equal(b.ptr + SQL_TEXT_MAX_WORD, " y");
    buf_reset(&b);
    /* never within a character: 127 two-byte letters fit, the 128th would not */
    size_t n = 0;
    for (int i = 0; i < 150; i++) {
        text[n++] = '\xd0';
        text[n++] = '\xb6';
    }
    text[n] = '\0';
    sql__text_join(text, &b);
    assert_int_equal(b.len, 254);
    buf_reset(&b);
    memcpy(text, "\xe4\xb8\xad", 3); /* a CJK letter: 3 bytes, 85 of them fit */
    for (int i = 1; i < 100; i++)
        memcpy(text + 3 * i, "\xe4\xb8\xad", 3);
    text[300] = '\0';
    sql__text_join(text, &b);
    assert_int_equal(b.len, 255);
    buf_release(&b);
}

static void test_tsvector(void **state)
{
    (void)state;
    buf_t b = BUF_INIT;
    sql__text_tsvector("Bone & liver", "Liver, bone-marrow", &b);
    assert_string_equal(b.ptr, "'bone':1A 'liver':2A 'liver':4B 'bone':5B 'marrow':6B");
    buf_reset(&b);
    sql__text_tsvector(NULL, "a", &b);
    assert_string_equal(b.ptr, "'a':2B");
    buf_reset(&b);
    sql__text_tsvector(NULL, NULL, &b);
    assert_string_equal(b.ptr, "");
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words),
        cmocka_unit_test(test_long_words_are_cut),
        cmocka_unit_test(test_tsvector),
    };
    return cmocka_run_group_tests_name("store/sql_text", tests, NULL, NULL);
}
