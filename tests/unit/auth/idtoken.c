/*
 * Tests for src/auth/idtoken.c: the signing key file (made once with mode 0600, kept, refused
 * when others may read it or when it holds no RSA key) and id_tokens, whose signature and
 * claims are verified with jose.h against the key's public JWK.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/idtoken.h"
#include "base/arena.h"
#include "base/jv.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/concerto-idtoken-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/x.db.signing.pem", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    rmdir(dir);
    return 0;
}

static void write_file(const char *text, mode_t mode)
{
    unlink(path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static void test_key_file(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    bool created = false;
    assert_int_equal(auth_signing_key_create(path, &created, &err), ERR_OK);
    assert_true(created);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    jose_key_t *first = NULL, *again = NULL;
    assert_int_equal(auth_signing_key_load(path, &first, &err), ERR_OK);
    assert_true(jose_key_fits(first, JOSE_RS256));
    /* a second create keeps the file: the same key */
    assert_int_equal(auth_signing_key_create(path, &created, &err), ERR_OK);
    assert_false(created);
    assert_int_equal(auth_signing_key_load(path, &again, &err), ERR_OK);
    assert_string_equal(jose_key_kid(first), jose_key_kid(again));
    jose_key_free(again);

    /* readable by others */
    chmod(path, 0644);
    assert_int_equal(auth_signing_key_load(path, &again, &err), ERR_INVALID);
    assert_non_null(strstr(err_message(&err), "chmod 600"));
    assert_null(again);
    err_reset(&err);

    /* not a key; an EC key (it cannot sign RS256) */
    write_file("not a key\n", 0600);
    assert_int_equal(auth_signing_key_load(path, &again, &err), ERR_INVALID);
    assert_non_null(strstr(err_message(&err), "RSA private key"));
    err_reset(&err);
    jose_key_t *ec = jose_key_generate(JOSE_ES256);
    buf_t pem = BUF_INIT;
    jose_key_to_pem(ec, &pem);
    write_file(pem.ptr, 0600);
    buf_release(&pem);
    jose_key_free(ec);
    assert_int_equal(auth_signing_key_load(path, &again, &err), ERR_INVALID);
    err_reset(&err);
    unlink(path);
    assert_int_equal(auth_signing_key_load(path, &again, &err), ERR_INVALID);
    assert_non_null(strstr(err_message(&err), "could not open"));
    err_release(&err);
    jose_key_free(first);
}

/* The JWK Set of key's public half, parsed. */
static jose_jwks_t *public_set(const jose_key_t *key)
{
    json_t *set = json_object(), *keys = json_array();
    json_array_append_new(keys, jose_key_public_jwk(key, "RS256"));
    json_object_set_new(set, "keys", keys);
    char *text = json_dumps(set, 0);
    json_decref(set);
    jose_jwks_t *jwks = NULL;
    err_t err = ERR_INIT;
    assert_int_equal(jose_jwks_parse(text, strlen(text), &jwks, &err), ERR_OK);
    err_release(&err);
    free(text);
    return jwks;
}

static void test_id_token(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    bool created;
    jose_key_t *key = NULL;
    assert_int_equal(auth_signing_key_create(path, &created, &err), ERR_OK);
    assert_int_equal(auth_signing_key_load(path, &key, &err), ERR_OK);
    auth_id_token_t claims = {.issuer = "https://care.example/fhir",
                              .subject = "0e5c7f52-account",
                              .audience = "app",
                              .fhir_user = "https://care.example/fhir/Practitioner/p1",
                              .nonce = "n-0S6_WzA2Mj",
                              .issued_at = 1800000000,
                              .expires_at = 1800003600};
    buf_t token = BUF_INIT;
    assert_int_equal(auth_id_token_sign(key, &claims, &token, &err), ERR_OK);

    jose_jwks_t *jwks = public_set(key);
    arena_t arena;
    arena_init(&arena);
    jose_expect_t expect = {.now = 1800000100,
                            .leeway = JOSE_LEEWAY,
                            .require_exp = true,
                            .issuer = "https://care.example/fhir",
                            .subject = "0e5c7f52-account",
                            .audience = "app"};
    jose_token_t out;
    assert_int_equal(jose_verify(&arena, token.ptr, token.len, jwks, &expect, &out, &err), ERR_OK);
    assert_int_equal(out.alg, JOSE_RS256);
    assert_string_equal(out.kid, jose_key_kid(key));
    assert_string_equal(json_string_value(json_object_get(out.claims, "fhirUser")),
                        "https://care.example/fhir/Practitioner/p1");
    assert_string_equal(json_string_value(json_object_get(out.claims, "nonce")), "n-0S6_WzA2Mj");
    assert_int_equal(json_integer_value(json_object_get(out.claims, "iat")), 1800000000);
    assert_int_equal(json_integer_value(json_object_get(out.claims, "exp")), 1800003600);
    assert_string_equal(json_string_value(json_object_get(out.claims, "aud")), "app");

    /* for another client, or after exp, it is refused */
    expect.audience = "other";
    assert_int_equal(jose_verify(&arena, token.ptr, token.len, jwks, &expect, &out, &err),
                     ERR_UNAUTHORIZED);
    err_reset(&err);
    expect.audience = "app";
    expect.now = 1800003600 + JOSE_LEEWAY;
    assert_int_equal(jose_verify(&arena, token.ptr, token.len, jwks, &expect, &out, &err),
                     ERR_UNAUTHORIZED);
    err_reset(&err);

    /* without fhirUser and nonce they are left out */
    buf_reset(&token);
    claims.fhir_user = claims.nonce = NULL;
    assert_int_equal(auth_id_token_sign(key, &claims, &token, &err), ERR_OK);
    expect.now = 1800000100;
    assert_int_equal(jose_verify(&arena, token.ptr, token.len, jwks, &expect, &out, &err), ERR_OK);
    assert_null(json_object_get(out.claims, "fhirUser"));
    assert_null(json_object_get(out.claims, "nonce"));

    err_release(&err);
    arena_release(&arena);
    jose_jwks_free(jwks);
    buf_release(&token);
    jose_key_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_key_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_id_token, setup, teardown),
    };
    return cmocka_run_group_tests_name("auth/idtoken", tests, NULL, NULL);
}
