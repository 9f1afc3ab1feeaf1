/*
 * Tests for src/base/b64.c: RFC 4648 base64url and base32 without padding, strict decoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "base/b64.h"

/* RFC 4648 section 10, with the padding removed */
static const struct {
    const char *data, *base64, *base32;
} vectors[] = {
    {"", "", ""},
    {"f", "Zg", "MY"},
    {"fo", "Zm8", "MZXQ"},
    {"foo", "Zm9v", "MZXW6"},
    {"foob", "Zm9vYg", "MZXW6YQ"},
    {"fooba", "Zm9vYmE", "MZXW6YTB"},
    {"foobar", "Zm9vYmFy", "MZXW6YTBOI"},
};

static void test_rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        buf_t out = BUF_INIT;
        b64url_encode(vectors[i].data, strlen(vectors[i].data), &out);
        assert_string_equal(out.ptr, vectors[i].base64);
        buf_reset(&out);
        assert_true(b64url_decode(vectors[i].base64, strlen(vectors[i].base64), &out));
        assert_string_equal(out.ptr, vectors[i].data);
        buf_reset(&out);
        b32_encode(vectors[i].data, strlen(vectors[i].data), &out);
        assert_string_equal(out.ptr, vectors[i].base32);
        buf_reset(&out);
        assert_true(b32_decode(vectors[i].base32, strlen(vectors[i].base32), &out));
        assert_string_equal(out.ptr, vectors[i].data);
        buf_release(&out);
    }
}

static void test_url_alphabet(void **state)
{
    (void)state;
    const unsigned char bytes[] = {0xfb, 0xff, 0xbf, 0x00};
    buf_t out = BUF_INIT;
    b64url_encode(bytes, sizeof(bytes), &out);
    assert_string_equal(out.ptr, "-_-_AA"); /* "+/+/AA==" in standard base64 */
    buf_reset(&out);
    assert_true(b64url_decode("-_-_AA", 6, &out));
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.ptr, bytes, 4);
    buf_release(&out);
}

static void refused64(const char *text)
{
    buf_t out = BUF_INIT;
    buf_addstr(&out, "kept");
    assert_false(b64url_decode(text, strlen(text), &out));
    assert_string_equal(out.ptr, "kept"); /* nothing appended on failure */
    buf_release(&out);
}

static void refused32(const char *text)
{
    buf_t out = BUF_INIT;
    assert_false(b32_decode(text, strlen(text), &out));
    assert_int_equal(out.len, 0);
    buf_release(&out);
}

static void test_strict_decoding(void **state)
{
    (void)state;
    refused64("Zg==");    /* padding */
    refused64("Zm9v+/8"); /* the standard alphabet's + and / */
    refused64("Zm9 v");   /* space */
    refused64("Z");       /* a length no encoder makes */
    refused64("Zm9vY");   /* 5 characters: 30 bits, not a whole byte more */
    refused64("Zh");      /* trailing bits not zero: "Zg" is the only spelling of "f" */
    refused64("Zm9");     /* "Zm8" is "fo" */
    refused64("Zm\x00v"); /* only len bytes count, and NUL is not in the alphabet */
    refused32("MZ");      /* trailing bits */
    refused32("MZXW6===");
    refused32("M");
    refused32("MZX");    /* 15 bits */
    refused32("MZXW61"); /* 1 is not base32 */
    buf_t out = BUF_INIT;
    assert_true(b32_decode("mzxw6", 5, &out)); /* lower case as typed by people */
    assert_string_equal(out.ptr, "foo");
    buf_release(&out);
}

static void test_round_trip_all_lengths(void **state)
{
    (void)state;
    unsigned char data[64];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 37 + 11);
    for (size_t len = 0; len <= sizeof(data); len++) {
        buf_t text = BUF_INIT, back = BUF_INIT;
        b64url_encode(data, len, &text);
        assert_int_equal(text.len, (len * 8 + 5) / 6);
        assert_true(b64url_decode(text.ptr, text.len, &back));
        assert_int_equal(back.len, len);
        assert_memory_equal(back.ptr, data, len);
        buf_reset(&text);
        buf_reset(&back);
        b32_encode(data, len, &text);
        assert_int_equal(text.len, (len * 8 + 4) / 5);
        assert_true(b32_decode(text.ptr, text.len, &back));
        assert_int_equal(back.len, len);
        assert_memory_equal(back.ptr, data, len);
        buf_release(&text);
        buf_release(&back);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_url_alphabet),
        cmocka_unit_test(test_strict_decoding),
        cmocka_unit_test(test_round_trip_all_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
