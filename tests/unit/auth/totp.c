/*
 * Tests for src/auth/totp.c and src/auth/recovery.c: HOTP and TOTP against the RFC vectors,
 * the verification window and replay, the provisioning URI, recovery codes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "auth/recovery.h"
#include "auth/totp.h"
#include "base/b64.h"

static const unsigned char seed20[] = "12345678901234567890";
static const unsigned char seed32[] = "12345678901234567890123456789012";
static const unsigned char seed64[] =
    "1234567890123456789012345678901234567890123456789012345678901234";

/* RFC 4226 Appendix D */
static void test_hotp_rfc4226(void **state)
{
    (void)state;
    static const char *const expected[] = {"755224", "287082", "359152", "969429", "338314",
                                           "254676", "287922", "162583", "399871", "520489"};
    for (uint64_t count = 0; count < 10; count++) {
        char code[TOTP_CODE_SIZE];
        totp_hotp(TOTP_SHA1, seed20, 20, count, 6, code);
        assert_string_equal(code, expected[count]);
    }
}

/* RFC 6238 Appendix B: 8 digits, 30 s, each hash with its own seed */
static void test_totp_rfc6238(void **state)
{
    (void)state;
    static const struct {
        int64_t time;
        const char *sha1, *sha256, *sha512;
    } rows[] = {
        {59, "94287082", "46119246", "90693936"},
        {1111111109, "07081804", "68084774", "25091201"},
        {1111111111, "14050471", "67062674", "99943326"},
        {1234567890, "89005924", "91819424", "93441116"},
        {2000000000, "69279037", "90698825", "38618901"},
        {20000000000, "65353130", "77737706", "47863826"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char code[TOTP_CODE_SIZE];
        totp_params_t p = {TOTP_SHA1, 8, 30};
        totp_code(&p, seed20, 20, rows[i].time, code);
        assert_string_equal(code, rows[i].sha1);
        p.hash = TOTP_SHA256;
        totp_code(&p, seed32, 32, rows[i].time, code);
        assert_string_equal(code, rows[i].sha256);
        p.hash = TOTP_SHA512;
        totp_code(&p, seed64, 64, rows[i].time, code);
        assert_string_equal(code, rows[i].sha512);
        int64_t step = -1;
        assert_true(totp_verify(&p, seed64, 64, rows[i].sha512, 8, rows[i].time, -1, &step));
        assert_int_equal(step, rows[i].time / 30);
    }
}

static void test_verify_window_and_replay(void **state)
{
    (void)state;
    const totp_params_t *p = &totp_default;
    int64_t t = 1700000000; /* step 56666666, 20 s into it */
    int64_t now = totp_step(p, t);
    char previous[TOTP_CODE_SIZE], current[TOTP_CODE_SIZE], next[TOTP_CODE_SIZE],
        later[TOTP_CODE_SIZE];
    totp_hotp(TOTP_SHA1, seed20, 20, (uint64_t)now - 1, 6, previous);
    totp_hotp(TOTP_SHA1, seed20, 20, (uint64_t)now, 6, current);
    totp_hotp(TOTP_SHA1, seed20, 20, (uint64_t)now + 1, 6, next);
    totp_hotp(TOTP_SHA1, seed20, 20, (uint64_t)now + 2, 6, later);
    int64_t step = 0;
    assert_true(totp_verify(p, seed20, 20, current, 6, t, -1, &step));
    assert_int_equal(step, now);
    assert_true(totp_verify(p, seed20, 20, previous, 6, t, -1, &step));
    assert_int_equal(step, now - 1);
    assert_true(totp_verify(p, seed20, 20, next, 6, t, -1, &step));
    assert_int_equal(step, now + 1);
    /* two steps away is outside the window */
    assert_false(totp_verify(p, seed20, 20, later, 6, t, -1, &step));
    /* replay: the step already used, and any earlier one, is refused */
    assert_false(totp_verify(p, seed20, 20, current, 6, t, now, &step));
    assert_false(totp_verify(p, seed20, 20, previous, 6, t, now - 1, &step));
    assert_true(totp_verify(p, seed20, 20, next, 6, t, now, &step));
    assert_int_equal(step, now + 1);
    /* shape: length and digits */
    assert_false(totp_verify(p, seed20, 20, current, 5, t, -1, &step));
    assert_false(totp_verify(p, seed20, 20, "12345a", 6, t, -1, &step));
    assert_false(totp_verify(p, seed20, 20, "", 0, t, -1, &step));
    /* a different secret */
    assert_false(totp_verify(p, seed32, 32, current, 6, t, -1, &step));
}

static void test_secret_and_uri(void **state)
{
    (void)state;
    unsigned char a[TOTP_SECRET_SIZE], b[TOTP_SECRET_SIZE];
    totp_secret_new(a);
    totp_secret_new(b);
    assert_memory_not_equal(a, b, TOTP_SECRET_SIZE);

    buf_t uri = BUF_INIT;
    err_t err = ERR_INIT;
    assert_int_equal(
        totp_uri(&totp_default, seed20, 20, "Concerto Clinic", "jane.doe@example.org", &uri, &err),
        0);
    assert_string_equal(uri.ptr,
                        "otpauth://totp/Concerto%20Clinic:jane.doe%40example.org"
                        "?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Concerto%20Clinic");
    buf_reset(&uri);
    totp_params_t p = {TOTP_SHA256, 8, 60};
    assert_int_equal(totp_uri(&p, seed20, 3, "St. Mary's & Co", "zo\xc3\xab", &uri, &err), 0);
    assert_string_equal(uri.ptr, "otpauth://totp/St.%20Mary%27s%20%26%20Co:zo%C3%AB?secret=GEZDG"
                                 "&issuer=St.%20Mary%27s%20%26%20Co&algorithm=SHA256&digits=8"
                                 "&period=60");
    /* the secret in the URI is the base32 of the bytes */
    buf_t back = BUF_INIT;
    assert_true(b32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 32, &back));
    assert_memory_equal(back.ptr, seed20, 20);
    buf_release(&back);

    buf_reset(&uri);
    assert_int_not_equal(totp_uri(&totp_default, seed20, 20, "A:B", "x", &uri, &err), 0);
    assert_int_equal(err.code, ERR_VALUE);
    assert_string_equal(err_message(&err),
                        "issuer \"A:B\" cannot be used: it must be non-empty and without a colon");
    err_reset(&err);
    assert_int_not_equal(totp_uri(&totp_default, seed20, 20, "A", "", &uri, &err), 0);
    err_release(&err);
    buf_release(&uri);
}

static void test_recovery_codes(void **state)
{
    (void)state;
    char codes[RECOVERY_CODE_COUNT][RECOVERY_CODE_SIZE];
    buf_t stored[RECOVERY_CODE_COUNT];
    const char *hashes[RECOVERY_CODE_COUNT];
    for (int i = 0; i < RECOVERY_CODE_COUNT; i++) {
        recovery_code_new(codes[i]);
        assert_int_equal(strlen(codes[i]), 19);
        for (int j = 0; j < 19; j++) {
            if (j % 5 == 4)
                assert_int_equal(codes[i][j], '-');
            else
                assert_non_null(strchr("23456789ABCDEFGHJKMNPQRSTVWXYZ", codes[i][j]));
        }
        for (int j = 0; j < i; j++)
            assert_string_not_equal(codes[i], codes[j]);
        buf_init(&stored[i], 0);
        assert_true(recovery_code_hash(codes[i], strlen(codes[i]), &stored[i]));
        assert_int_equal(strncmp(stored[i].ptr, "$blake2b$", 9), 0);
        assert_null(strstr(stored[i].ptr, codes[i]));
        hashes[i] = stored[i].ptr;
    }
    size_t index = 99;
    assert_true(recovery_code_verify(hashes, RECOVERY_CODE_COUNT, codes[7], 19, &index));
    assert_int_equal(index, 7);
    /* typed in lower case, without hyphens, with spaces */
    char typed[32];
    size_t n = 0;
    for (const char *c = codes[3]; *c; c++) {
        if (*c == '-')
            typed[n++] = ' ';
        else
            typed[n++] = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    }
    assert_true(recovery_code_verify(hashes, RECOVERY_CODE_COUNT, typed, n, &index));
    assert_int_equal(index, 3);
    /* once removed by the caller, the code no longer verifies */
    hashes[3] = NULL;
    assert_false(recovery_code_verify(hashes, RECOVERY_CODE_COUNT, typed, n, &index));
    /* a wrong code, a code with a character outside the alphabet, the wrong length */
    char wrong[RECOVERY_CODE_SIZE];
    memcpy(wrong, codes[0], sizeof(wrong));
    wrong[0] = wrong[0] == '2' ? '3' : '2';
    assert_false(recovery_code_verify(hashes, RECOVERY_CODE_COUNT, wrong, 19, &index));
    assert_false(
        recovery_code_verify(hashes, RECOVERY_CODE_COUNT, "0000-0000-0000-0000", 19, &index));
    assert_false(recovery_code_verify(hashes, RECOVERY_CODE_COUNT, codes[0], 14, &index));
    buf_t none = BUF_INIT;
    assert_false(recovery_code_hash("ABCD-EFGH", 9, &none));
    assert_int_equal(none.len, 0);
    /* the same code hashes differently each time (its own salt) and both verify */
    buf_t again = BUF_INIT;
    assert_true(recovery_code_hash(codes[0], 19, &again));
    assert_string_not_equal(again.ptr, stored[0].ptr);
    const char *one[] = {"$blake2b$garbage", again.ptr};
    assert_true(recovery_code_verify(one, 2, codes[0], 19, &index));
    assert_int_equal(index, 1);
    buf_release(&again);
    for (int i = 0; i < RECOVERY_CODE_COUNT; i++)
        buf_release(&stored[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hotp_rfc4226),
        cmocka_unit_test(test_totp_rfc6238),
        cmocka_unit_test(test_verify_window_and_replay),
        cmocka_unit_test(test_secret_and_uri),
        cmocka_unit_test(test_recovery_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
