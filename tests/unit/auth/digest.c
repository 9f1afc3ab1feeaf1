/*
 * Tests for the SHA-256 stream digest: FIPS 180-2's examples, fed whole and in pieces.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "auth/digest.h"

static void hex_of(const char *const *parts, size_t n, char out[2 * DIGEST_SHA256_BYTES + 1])
{
    digest_sha256_t d;
    digest_sha256_init(&d);
    for (size_t i = 0; i < n; i++)
        digest_sha256_update(&d, parts[i], strlen(parts[i]));
    unsigned char sha[DIGEST_SHA256_BYTES];
    digest_sha256_final(&d, sha);
    digest_hex(sha, sizeof(sha), out);
}

static void test_known_digests(void **state)
{
    (void)state;
    char out[2 * DIGEST_SHA256_BYTES + 1];
    const char *abc[] = {"abc"};
    hex_of(abc, 1, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *pieces[] = {"abcdbcdecdefdefgefghfghighijhi", "", "jkijkljklmklmnlmnomnopnopq"};
    hex_of(pieces, 3, out);
    assert_string_equal(out, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    hex_of(NULL, 0, out);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_known_digests)};
    return cmocka_run_group_tests_name("auth/digest", tests, NULL, NULL);
}
