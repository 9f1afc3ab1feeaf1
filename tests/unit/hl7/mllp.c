/*
 * Tests for src/hl7/mllp.c: the MLLP frame decoder fed the same streams split at every byte
 * boundary, several frames at once, garbage, restarts, FS without CR, oversized and empty
 * frames; and the encoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "hl7/mllp.h"

#define MAX_FRAMES 8

/* What a stream decodes to: the messages in order, "!" before a too large one's text. */
typedef struct {
    char frames[MAX_FRAMES][256];
    int n;
} decoded_t;

static void take(decoded_t *out, hl7_mllp_rc_t rc, const char *msg, size_t len)
{
    assert_true(out->n < MAX_FRAMES);
    assert_true(len < 200);
    snprintf(out->frames[out->n++], 256, "%s%.*s", rc == HL7_MLLP_TOO_LARGE ? "!" : "", (int)len,
             msg);
}

/* Feeds [p, end) in one call sequence, handling each frame before feeding the rest. */
static void feed_all(hl7_mllp_t *d, const char *p, const char *end, decoded_t *out)
{
    while (p < end) {
        const char *msg;
        size_t len;
        const char *before = p;
        hl7_mllp_rc_t rc = hl7_mllp_feed(d, &p, end, &msg, &len);
        assert_true(p >= before && p <= end);
        if (rc == HL7_MLLP_MORE)
            assert_ptr_equal(p, end);
        else
            take(out, rc, msg, len);
    }
}

/* Decodes stream in two pieces cut at every position, and in single bytes; every way must give
 * the same frames as all at once, which must be `want`. Returns the garbage count. */
static uint64_t check_stream(const char *stream, size_t n, size_t max, const char *const *want,
                             int nwant)
{
    decoded_t whole = {0};
    hl7_mllp_t d;
    hl7_mllp_init(&d, max);
    feed_all(&d, stream, stream + n, &whole);
    uint64_t garbage = d.garbage;
    hl7_mllp_release(&d);
    assert_int_equal(whole.n, nwant);
    for (int i = 0; i < nwant; i++)
        assert_string_equal(whole.frames[i], want[i]);

    for (size_t cut = 0; cut <= n; cut++) {
        decoded_t split = {0};
        hl7_mllp_init(&d, max);
        feed_all(&d, stream, stream + cut, &split);
        feed_all(&d, stream + cut, stream + n, &split);
        assert_int_equal(d.garbage, garbage);
        hl7_mllp_release(&d);
        assert_int_equal(split.n, nwant);
        for (int i = 0; i < nwant; i++)
            assert_string_equal(split.frames[i], want[i]);
    }

    decoded_t bytes = {0};
    hl7_mllp_init(&d, max);
    for (size_t i = 0; i < n; i++)
        feed_all(&d, stream + i, stream + i + 1, &bytes);
    assert_int_equal(d.garbage, garbage);
    hl7_mllp_release(&d);
    assert_int_equal(bytes.n, nwant);
    for (int i = 0; i < nwant; i++)
        assert_string_equal(bytes.frames[i], want[i]);
    return garbage;
}

#define S(lit) lit, sizeof(lit) - 1

static void test_one_frame(void **state)
{
    (void)state;
    const char *want[] = {"MSH|^~\\&|A\rPID|1\r"};
    assert_int_equal(check_stream(S("\x0bMSH|^~\\&|A\rPID|1\r\x1c\x0d"), 0, want, 1), 0);
}

static void test_several_frames_in_one_buffer(void **state)
{
    (void)state;
    const char *want[] = {"MSH|1", "MSH|2", "MSH|3"};
    assert_int_equal(
        check_stream(S("\x0bMSH|1\x1c\x0d\x0bMSH|2\x1c\x0d\x0bMSH|3\x1c\x0d"), 0, want, 3), 0);
}

static void test_garbage_before_and_between(void **state)
{
    (void)state;
    const char *want[] = {"MSH|1", "MSH|2"};
    /* 4 bytes before, a stray LF after a frame (2 bytes: "\n" "x"), a lone FS between */
    assert_int_equal(check_stream(S("junk\x0bMSH|1\x1c\x0d\nx\x1c\x0bMSH|2\x1c\x0d"), 0, want, 2),
                     4 + 2 + 1);
}

static void test_vt_inside_restarts(void **state)
{
    (void)state;
    const char *want[] = {"MSH|2"};
    check_stream(S("\x0bMSH|half\x0bMSH|2\x1c\x0d"), 0, want, 1);
    hl7_mllp_t d;
    hl7_mllp_init(&d, 0);
    decoded_t out = {0};
    const char s[] = "\x0bMSH|half\x0bMSH|2\x1c\x0d";
    feed_all(&d, s, s + sizeof(s) - 1, &out);
    assert_int_equal(d.restarts, 1);
    assert_int_equal(d.garbage, 0);
    hl7_mllp_release(&d);
}

static void test_fs_without_cr(void **state)
{
    (void)state;
    const char *want[] = {"MSH|1", "MSH|2", "MSH|3"};
    /* FS alone, FS CR, FS alone at the very end */
    assert_int_equal(check_stream(S("\x0bMSH|1\x1c\x0bMSH|2\x1c\x0d\x0bMSH|3\x1c"), 0, want, 3), 0);
    /* only one CR after FS belongs to the frame: a second one is garbage */
    const char *want1[] = {"MSH|1"};
    assert_int_equal(check_stream(S("\x0bMSH|1\x1c\x0d\x0d"), 0, want1, 1), 1);
}

static void test_too_large(void **state)
{
    (void)state;
    /* max 8: the first frame (10 bytes) is cut, the second (8 bytes) fits, the third is over */
    const char *want[] = {"!MSH|1234", "MSH|1234", "!MSH|abcd"};
    check_stream(S("\x0bMSH|123456\x1c\x0d\x0bMSH|1234\x1c\x0d\x0bMSH|abcdefghijkl\x1c\x0d"), 8,
                 want, 3);
    /* the decoder never holds more than max bytes of a frame */
    hl7_mllp_t d;
    hl7_mllp_init(&d, 16);
    char big[10000];
    memset(big, 'x', sizeof(big));
    big[0] = 0x0b;
    const char *p = big, *msg;
    size_t len;
    assert_int_equal(hl7_mllp_feed(&d, &p, big + sizeof(big), &msg, &len), HL7_MLLP_MORE);
    assert_true(d.frame.len <= 16);
    size_t bytes;
    assert_true(hl7_mllp_partial(&d, &bytes));
    assert_int_equal(bytes, sizeof(big) - 1);
    const char end[] = "\x1c\x0d";
    p = end;
    assert_int_equal(hl7_mllp_feed(&d, &p, end + 2, &msg, &len), HL7_MLLP_TOO_LARGE);
    assert_int_equal(len, 16);
    assert_memory_equal(msg, "xxxxxxxxxxxxxxxx", 16);
    assert_false(hl7_mllp_partial(&d, NULL));
    hl7_mllp_release(&d);
}

static void test_large_frame_memory_returned(void **state)
{
    (void)state;
    hl7_mllp_t d;
    hl7_mllp_init(&d, 0);
    size_t n = 200000;
    char *big = malloc(n);
    memset(big, 'y', n);
    big[0] = 0x0b;
    big[n - 2] = 0x1c;
    big[n - 1] = 0x0d;
    const char *p = big, *msg;
    size_t len;
    assert_int_equal(hl7_mllp_feed(&d, &p, big + n, &msg, &len), HL7_MLLP_FRAME);
    assert_int_equal(len, n - 3);
    /* the next call lets the large buffer go; the next frame decodes as usual */
    const char next[] = "\x0bMSH|1\x1c\x0d";
    p = next;
    assert_int_equal(hl7_mllp_feed(&d, &p, next + sizeof(next) - 1, &msg, &len), HL7_MLLP_FRAME);
    assert_memory_equal(msg, "MSH|1", 5);
    assert_true(d.frame.cap <= 65536);
    hl7_mllp_release(&d);
    free(big);
}

static void test_empty_frame(void **state)
{
    (void)state;
    const char *want[] = {"", "MSH|1"};
    assert_int_equal(check_stream(S("\x0b\x1c\x0d\x0bMSH|1\x1c\x0d"), 0, want, 2), 0);
}

static void test_partial(void **state)
{
    (void)state;
    hl7_mllp_t d;
    hl7_mllp_init(&d, 0);
    const char s[] = "xx\x0bMSH|1";
    const char *p = s, *msg;
    size_t len, bytes = 99;
    assert_false(hl7_mllp_partial(&d, &bytes));
    assert_int_equal(bytes, 0);
    assert_int_equal(hl7_mllp_feed(&d, &p, s + 2, &msg, &len), HL7_MLLP_MORE);
    assert_false(hl7_mllp_partial(&d, NULL));
    assert_int_equal(hl7_mllp_feed(&d, &p, s + sizeof(s) - 1, &msg, &len), HL7_MLLP_MORE);
    assert_true(hl7_mllp_partial(&d, &bytes));
    assert_int_equal(bytes, 5);
    hl7_mllp_release(&d);
}

static void test_frame_encoder(void **state)
{
    (void)state;
    buf_t out = BUF_INIT;
    buf_addstr(&out, "before");
    hl7_mllp_frame("MSA|AA|1", 8, &out);
    assert_int_equal(out.len, 6 + 8 + 3);
    assert_memory_equal(out.ptr, "before\x0bMSA|AA|1\x1c\x0d", out.len);
    /* what the encoder writes, the decoder reads back */
    hl7_mllp_t d;
    hl7_mllp_init(&d, 0);
    const char *p = out.ptr + 6, *msg;
    size_t len;
    assert_int_equal(hl7_mllp_feed(&d, &p, out.ptr + out.len, &msg, &len), HL7_MLLP_FRAME);
    assert_int_equal(len, 8);
    assert_memory_equal(msg, "MSA|AA|1", 8);
    assert_int_equal(hl7_mllp_feed(&d, &p, out.ptr + out.len, &msg, &len), HL7_MLLP_MORE);
    assert_int_equal(d.garbage, 0);
    hl7_mllp_release(&d);
    buf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_frame),
        cmocka_unit_test(test_several_frames_in_one_buffer),
        cmocka_unit_test(test_garbage_before_and_between),
        cmocka_unit_test(test_vt_inside_restarts),
        cmocka_unit_test(test_fs_without_cr),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_large_frame_memory_returned),
        cmocka_unit_test(test_empty_frame),
        cmocka_unit_test(test_partial),
        cmocka_unit_test(test_frame_encoder),
    };
    return cmocka_run_group_tests_name("hl7/mllp", tests, NULL, NULL);
}
