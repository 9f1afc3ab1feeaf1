/*
 * Tests for src/auth/jose.c: the RFC 7515 and RFC 7638 examples, sign/verify round trips for
 * every algorithm, PEM storage, and each way a token must be refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jose.h"
#include "base/b64.h"

/* RFC 7515 Appendix A.2 (RS256) and A.3 (ES256): the keys and the compact serializations */
static const char a2_n[] =
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4"
    "d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5r"
    "exMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhy"
    "xXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
static const char a2_payload[] = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leG"
                                 "FtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
static const char a2_signature[] =
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp"
    "5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMH"
    "lb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w"
    "9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
static const char a3_x[] = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
static const char a3_y[] = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
static const char a3_signature[] =
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
/* the payload's exp */
#define A2_EXP 1300819380

/* RFC 7638 section 3.1 */
static const char rfc7638_n[] =
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJEC"
    "PebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Qvz"
    "qY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZ"
    "u0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

static jose_jwks_t *parse_jwks(const char *text)
{
    err_t err = ERR_INIT;
    jose_jwks_t *jwks = NULL;
    assert_int_equal(jose_jwks_parse(text, strlen(text), &jwks, &err), 0);
    err_release(&err);
    return jwks;
}

static char *rfc_jwks(void)
{
    buf_t b = BUF_INIT;
    buf_addf(&b,
             "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"a2\",\"n\":\"%s\",\"e\":\"AQAB\"},"
             "{\"kty\":\"EC\",\"kid\":\"a3\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}",
             a2_n, a3_x, a3_y);
    return buf_detach(&b, NULL);
}

/* Verifies token, returning 0 or the code, with the first message in message. */
static char message[1024];
static arena_t verify_arena;
static bool verify_arena_ready;

static void verify_release(void)
{
    if (verify_arena_ready)
        arena_release(&verify_arena);
    verify_arena_ready = false;
}

static status_t verify(const char *token, const jose_jwks_t *keys, const jose_expect_t *expect,
                       jose_token_t *out)
{
    verify_release();
    arena_init(&verify_arena);
    verify_arena_ready = true;
    jose_token_t ignored;
    err_t err = ERR_INIT;
    status_t rc =
        jose_verify(&verify_arena, token, strlen(token), keys, expect, out ? out : &ignored, &err);
    snprintf(message, sizeof(message), "%s", err_message(&err));
    err_release(&err);
    return rc;
}

static void test_rfc7515_examples(void **state)
{
    (void)state;
    char *text = rfc_jwks();
    jose_jwks_t *keys = parse_jwks(text);
    free(text);
    assert_int_equal(jose_jwks_count(keys), 2);
    jose_expect_t expect = {
        .now = A2_EXP - 100, .leeway = JOSE_LEEWAY, .require_exp = true, .issuer = "joe"};
    char token[1024];
    snprintf(token, sizeof(token), "eyJhbGciOiJSUzI1NiJ9.%s.%s", a2_payload, a2_signature);
    jose_token_t out;
    assert_int_equal(verify(token, keys, &expect, &out), 0);
    assert_int_equal(out.alg, JOSE_RS256);
    assert_null(out.kid);
    assert_string_equal(jose_key_kid(out.key), "a2");
    assert_true(json_is_true(json_object_get(out.claims, "http://example.com/is_root")));
    assert_int_equal(json_integer_value(json_object_get(out.claims, "exp")), A2_EXP);

    snprintf(token, sizeof(token), "eyJhbGciOiJFUzI1NiJ9.%s.%s", a2_payload, a3_signature);
    assert_int_equal(verify(token, keys, &expect, &out), 0);
    assert_int_equal(out.alg, JOSE_ES256);
    assert_string_equal(jose_key_kid(out.key), "a3");

    /* the clock: within the leeway after exp it still passes, past it it does not */
    expect.now = A2_EXP + JOSE_LEEWAY - 1;
    assert_int_equal(verify(token, keys, &expect, NULL), 0);
    expect.now = A2_EXP + JOSE_LEEWAY;
    assert_int_equal(verify(token, keys, &expect, NULL), ERR_UNAUTHORIZED);
    assert_string_equal(message,
                        "token has expired: exp 1300819380 is before the current time 1300819440");
    expect.now = A2_EXP - 100;
    expect.issuer = "jane";
    assert_int_equal(verify(token, keys, &expect, NULL), ERR_UNAUTHORIZED);
    assert_string_equal(message, "token iss \"joe\" is not the expected \"jane\"");
    expect.issuer = NULL;
    expect.audience = "https://concerto.example/fhir";
    assert_int_equal(verify(token, keys, &expect, NULL), ERR_UNAUTHORIZED);
    assert_string_equal(message, "token has no aud claim (audience)");
    jose_jwks_free(keys);
}

static void test_rfc7638_thumbprint(void **state)
{
    (void)state;
    char text[1024];
    snprintf(text, sizeof(text),
             "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\",\"alg\":\"RS256\","
             "\"kid\":\"2011-04-29\"}]}",
             rfc7638_n);
    jose_jwks_t *keys = parse_jwks(text);
    assert_int_equal(jose_jwks_count(keys), 1);
    buf_t thumbprint = BUF_INIT;
    jose_key_thumbprint(jose_jwks_key(keys, 0), &thumbprint);
    assert_string_equal(thumbprint.ptr, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    buf_release(&thumbprint);
    /* the JWK's own kid is kept */
    assert_string_equal(jose_key_kid(jose_jwks_key(keys, 0)), "2011-04-29");
    /* a key that names RS256 does not verify RS384 */
    assert_true(jose_key_fits(jose_jwks_key(keys, 0), JOSE_RS256));
    assert_false(jose_key_fits(jose_jwks_key(keys, 0), JOSE_RS384));
    jose_jwks_free(keys);
}

/* A JWK Set with the public halves of the keys. */
static jose_jwks_t *public_set(jose_key_t *const *keys, size_t n)
{
    json_t *set = json_object(), *array = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(array, jose_key_public_jwk(keys[i], NULL));
    json_object_set_new(set, "keys", array);
    char *text = json_dumps(set, JSON_COMPACT);
    json_decref(set);
    jose_jwks_t *jwks = parse_jwks(text);
    free(text);
    return jwks;
}

static json_t *claims_at(int64_t now)
{
    return json_pack("{s:s, s:s, s:[s,s], s:I, s:I, s:I, s:s}", "iss", "https://concerto.example",
                     "sub", "Practitioner/123", "aud", "client-a", "client-b", "iat",
                     (json_int_t)now, "nbf", (json_int_t)now, "exp", (json_int_t)(now + 300), "jti",
                     "c2b1f1a0");
}

static void test_sign_verify_round_trips(void **state)
{
    (void)state;
    const jose_alg_t all[] = {JOSE_RS256, JOSE_RS384, JOSE_ES256, JOSE_ES384};
    jose_key_t *keys[4];
    for (int i = 0; i < 4; i++) {
        keys[i] = jose_key_generate(all[i]);
        assert_true(jose_key_fits(keys[i], all[i]));
        assert_int_equal(strlen(jose_key_kid(keys[i])), 43); /* base64url of SHA-256 */
    }
    /* RSA keys fit both RSA algorithms, EC keys only their curve's */
    assert_true(jose_key_fits(keys[0], JOSE_RS384));
    assert_false(jose_key_fits(keys[0], JOSE_ES256));
    assert_false(jose_key_fits(keys[2], JOSE_ES384));
    assert_false(jose_key_fits(keys[3], JOSE_ES256));
    jose_jwks_t *set = public_set(keys, 4);
    assert_int_equal(jose_jwks_count(set), 4);
    int64_t now = 1750000000;
    jose_expect_t expect = {.now = now,
                            .leeway = JOSE_LEEWAY,
                            .require_exp = true,
                            .require_jti = true,
                            .issuer = "https://concerto.example",
                            .subject = "Practitioner/123",
                            .audience = "client-b"};
    json_t *claims = claims_at(now);
    for (int i = 0; i < 4; i++) {
        buf_t token = BUF_INIT;
        err_t err = ERR_INIT;
        assert_int_equal(jose_sign(keys[i], all[i], claims, &token, &err), 0);
        jose_token_t out;
        assert_int_equal(verify(token.ptr, set, &expect, &out), 0);
        assert_int_equal(out.alg, all[i]);
        assert_string_equal(out.kid, jose_key_kid(keys[i]));
        assert_string_equal(json_string_value(json_object_get(out.header, "typ")), "JWT");
        assert_string_equal(json_string_value(json_object_get(out.claims, "jti")), "c2b1f1a0");
        /* the ECDSA signature is r||s of the curve's size */
        const char *sig = strrchr(token.ptr, '.') + 1;
        if (all[i] == JOSE_ES256)
            assert_int_equal(strlen(sig), 86);
        if (all[i] == JOSE_ES384)
            assert_int_equal(strlen(sig), 128);
        /* a key cannot sign an algorithm of another type */
        buf_t none = BUF_INIT;
        assert_int_equal(jose_sign(keys[i], all[(i + 2) % 4], claims, &none, &err), ERR_INVALID);
        assert_int_equal(none.len, 0);
        err_release(&err);
        buf_release(&token);
    }
    json_decref(claims);

    /* PEM storage: the loaded key has the same kid and its signatures verify */
    for (int i = 0; i < 4; i += 3) {
        buf_t pem = BUF_INIT, token = BUF_INIT;
        jose_key_to_pem(keys[i], &pem);
        assert_non_null(strstr(pem.ptr, "-----BEGIN PRIVATE KEY-----"));
        jose_key_t *loaded = NULL;
        err_t err = ERR_INIT;
        assert_int_equal(jose_key_from_pem(pem.ptr, pem.len, &loaded, &err), 0);
        assert_string_equal(jose_key_kid(loaded), jose_key_kid(keys[i]));
        json_t *c = claims_at(now);
        assert_int_equal(jose_sign(loaded, all[i], c, &token, &err), 0);
        json_decref(c);
        assert_int_equal(verify(token.ptr, set, &expect, NULL), 0);
        jose_key_free(loaded);
        assert_int_equal(
            jose_key_from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n", 32, &loaded, &err),
            ERR_INVALID);
        err_release(&err);
        buf_release(&pem);
        buf_release(&token);
    }

    /* the public JWK */
    json_t *jwk = jose_key_public_jwk(keys[3], "ES384");
    assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "EC");
    assert_string_equal(json_string_value(json_object_get(jwk, "crv")), "P-384");
    assert_string_equal(json_string_value(json_object_get(jwk, "alg")), "ES384");
    assert_string_equal(json_string_value(json_object_get(jwk, "use")), "sig");
    assert_int_equal(json_string_length(json_object_get(jwk, "x")), 64);
    assert_null(json_object_get(jwk, "d"));
    json_decref(jwk);
    jwk = jose_key_public_jwk(keys[0], NULL);
    assert_string_equal(json_string_value(json_object_get(jwk, "e")), "AQAB");
    assert_int_equal(json_string_length(json_object_get(jwk, "n")), 342); /* 256 bytes */
    assert_null(json_object_get(jwk, "d"));
    json_decref(jwk);

    jose_jwks_free(set);
    for (int i = 0; i < 4; i++)
        jose_key_free(keys[i]);
}

/* header.payload.signature from JSON texts and a signature part. */
static char *make_token(const char *header, const char *payload, const char *signature)
{
    buf_t b = BUF_INIT;
    b64url_encode(header, strlen(header), &b);
    buf_addch(&b, '.');
    b64url_encode(payload, strlen(payload), &b);
    buf_addch(&b, '.');
    buf_addstr(&b, signature);
    return buf_detach(&b, NULL);
}

static void test_refusals(void **state)
{
    (void)state;
    jose_key_t *rsa = jose_key_generate(JOSE_RS256), *ec = jose_key_generate(JOSE_ES256);
    jose_key_t *both[] = {rsa, ec};
    jose_jwks_t *set = public_set(both, 2), *rsa_only = public_set(both, 1);
    int64_t now = 1750000000;
    jose_expect_t expect = {.now = now, .leeway = JOSE_LEEWAY, .require_exp = true};
    json_t *claims = claims_at(now);
    buf_t good = BUF_INIT;
    err_t err = ERR_INIT;
    assert_int_equal(jose_sign(rsa, JOSE_RS256, claims, &good, &err), 0);
    assert_int_equal(verify(good.ptr, set, &expect, NULL), 0);
    char *dot1 = strchr(good.ptr, '.'), *dot2 = strrchr(good.ptr, '.');

    /* a payload changed after signing */
    buf_t tampered = BUF_INIT;
    buf_add(&tampered, good.ptr, (size_t)(dot1 + 1 - good.ptr));
    const char *forged = "{\"sub\":\"Practitioner/999\",\"exp\":1750000300}";
    b64url_encode(forged, strlen(forged), &tampered);
    buf_addstr(&tampered, dot2);
    assert_int_equal(verify(tampered.ptr, set, &expect, NULL), ERR_UNAUTHORIZED);
    assert_string_equal(message, "token signature does not verify");
    /* a signature changed */
    buf_reset(&tampered);
    buf_addstr(&tampered, good.ptr);
    size_t middle = (size_t)(dot2 - good.ptr) + 20;
    tampered.ptr[middle] = tampered.ptr[middle] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(tampered.ptr, set, &expect, NULL), ERR_UNAUTHORIZED);
    assert_string_equal(message, "token signature does not verify");
    /* a signature cut short */
    buf_reset(&tampered);
    buf_add(&tampered, good.ptr, good.len - 4);
    assert_int_equal(verify(tampered.ptr, set, &expect, NULL), ERR_UNAUTHORIZED);
    buf_release(&tampered);

    /* a key set without the signer's key: its kid is unknown */
    jose_jwks_t *ec_only = public_set(both + 1, 1);
    assert_int_equal(verify(good.ptr, ec_only, &expect, NULL), ERR_UNAUTHORIZED);
    char expected[256];
    snprintf(expected, sizeof(expected), "no key in the key set has kid \"%s\"", jose_key_kid(rsa));
    assert_string_equal(message, expected);

    /* alg none, HMAC with the public key as its secret, an unknown alg */
    char *t = make_token("{\"alg\":\"none\"}", "{\"exp\":1750000300}", "");
    assert_int_equal(verify(t, set, &expect, NULL), ERR_UNAUTHORIZED);
    assert_string_equal(message, "token is unsigned (alg \"none\"), which is never accepted");
    free(t);
    t = make_token("{\"alg\":\"HS256\"}", "{\"exp\":1750000300}", "c2lnbmF0dXJl");
    assert_int_equal(verify(t, set, &expect, NULL), ERR_UNAUTHORIZED);
    assert_string_equal(message,
                        "token alg \"HS256\" is not accepted: use RS256, RS384, ES256 or ES384");
    free(t);
    t = make_token("{\"typ\":\"JWT\"}", "{}", "AAAA");
    assert_int_equal(verify(t, set, &expect, NULL), ERR_UNAUTHORIZED);
    assert_string_equal(message, "token header has no alg");
    free(t);

    /* the RSA signer's kid with alg ES256: the key type does not fit */
    char header[256];
    snprintf(header, sizeof(header), "{\"alg\":\"ES256\",\"kid\":\"%s\"}", jose_key_kid(rsa));
    t = make_token(header, "{\"exp\":1750000300}", dot2 + 1);
    assert_int_equal(verify(t, set, &expect, NULL), ERR_UNAUTHORIZED);
    snprintf(expected, sizeof(expected), "key \"%s\" cannot verify ES256: it is an RSA key",
             jose_key_kid(rsa));
    assert_string_equal(message, expected);
    free(t);
    /* without kid, only keys that fit the alg are tried */
    t = make_token("{\"alg\":\"ES384\"}", "{\"exp\":1750000300}", "AAAA");
    assert_int_equal(verify(t, rsa_only, &expect, NULL), ERR_UNAUTHORIZED);
    assert_string_equal(message, "no key in the key set can verify ES384");
    free(t);
    /* crit extensions */
    t = make_token("{\"alg\":\"RS256\",\"crit\":[\"exp\"]}", "{}", "AAAA");
    assert_int_equal(verify(t, set, &expect, NULL), ERR_UNAUTHORIZED);
    assert_string_equal(message, "token header has crit extensions, which are not understood");
    free(t);

    /* malformed */
    assert_int_equal(verify("abc.def", set, &expect, NULL), ERR_UNAUTHORIZED);
    assert_string_equal(message, "token is not a compact JWS: it must be three base64url parts "
                                 "separated by dots");
    assert_int_equal(verify("a.b.c.d.e", set, &expect, NULL), ERR_UNAUTHORIZED);
    assert_int_equal(verify("eyJhbGciOiJSUzI1NiJ9=.e30.AAAA", set, &expect, NULL),
                     ERR_UNAUTHORIZED);
    assert_string_equal(message, "token header is not base64url");
    t = make_token("{\"alg\":\"RS256\"", "{}", "AAAA");
    assert_int_equal(verify(t, set, &expect, NULL), ERR_UNAUTHORIZED);
    assert_true(strncmp(message, "token header is not JSON: ", 26) == 0);
    free(t);
    t = make_token("{\"alg\":\"RS256\",\"alg\":\"none\"}", "{}", "AAAA");
    assert_int_equal(verify(t, set, &expect, NULL), ERR_UNAUTHORIZED); /* duplicate names */
    assert_true(strncmp(message, "token header is not JSON: ", 26) == 0);
    free(t);
    t = make_token("{\"alg\":\"RS256\"}", "[1,2]", "AAAA");
    assert_int_equal(verify(t, set, &expect, NULL), ERR_UNAUTHORIZED);
    assert_string_equal(message, "token payload is not a JSON object");
    free(t);
    t = make_token("{\"alg\":\"RS256\"}", "{}", "AA*A");
    assert_int_equal(verify(t, set, &expect, NULL), ERR_UNAUTHORIZED);
    assert_string_equal(message, "token signature is not base64url");
    free(t);
    char *huge = malloc(JOSE_MAX_TOKEN + 2);
    memset(huge, 'A', JOSE_MAX_TOKEN + 1);
    huge[JOSE_MAX_TOKEN + 1] = '\0';
    assert_int_equal(verify(huge, set, &expect, NULL), ERR_UNAUTHORIZED);
    assert_string_equal(message, "token is longer than 16384 bytes");
    free(huge);
    buf_release(&good);
    json_decref(claims);
    jose_jwks_free(set);
    jose_jwks_free(rsa_only);
    jose_jwks_free(ec_only);
    jose_key_free(rsa);
    jose_key_free(ec);
    err_release(&err);
}

/* The first message of jose_check_claims over claims (JSON text), or "" when they pass. */
static const char *claims_check(const char *text, const jose_expect_t *expect)
{
    err_t err = ERR_INIT;
    json_t *claims = json_loads(text, 0, NULL);
    assert_non_null(claims);
    status_t rc = jose_check_claims(claims, expect, &err);
    snprintf(message, sizeof(message), "%s", rc ? err_message(&err) : "");
    if (rc)
        assert_int_equal(rc, ERR_UNAUTHORIZED);
    json_decref(claims);
    err_release(&err);
    return message;
}

static void test_claims(void **state)
{
    (void)state;
    jose_expect_t e = {.now = 1000, .leeway = 60};
    assert_string_equal(claims_check("{}", &e), "");
    e.require_exp = true;
    assert_string_equal(claims_check("{}", &e), "token has no exp claim (expiry time)");
    assert_string_equal(claims_check("{\"exp\":\"2000\"}", &e), "token exp claim is not a number");
    assert_string_equal(claims_check("{\"exp\":1059.5}", &e), "");
    assert_string_equal(claims_check("{\"exp\":940}", &e),
                        "token has expired: exp 940 is before the current time 1000");
    /* nbf and iat with the leeway */
    assert_string_equal(claims_check("{\"exp\":2000,\"nbf\":1060}", &e), "");
    assert_string_equal(claims_check("{\"exp\":2000,\"nbf\":1061}", &e),
                        "token is not valid yet: nbf 1061 is after the current time 1000");
    assert_string_equal(claims_check("{\"exp\":2000,\"iat\":1061}", &e),
                        "token was issued in the future: iat 1061 is after the current time 1000");
    assert_string_equal(claims_check("{\"exp\":2000,\"iat\":null}", &e),
                        "token iat claim is not a number");
    /* audience: a string or an array */
    e.audience = "client-a";
    assert_string_equal(claims_check("{\"exp\":2000,\"aud\":\"client-a\"}", &e), "");
    assert_string_equal(claims_check("{\"exp\":2000,\"aud\":[\"x\",\"client-a\"]}", &e), "");
    assert_string_equal(claims_check("{\"exp\":2000,\"aud\":[\"x\",\"client-b\"]}", &e),
                        "token audience does not include \"client-a\"");
    assert_string_equal(claims_check("{\"exp\":2000,\"aud\":\"client-ab\"}", &e),
                        "token audience does not include \"client-a\"");
    assert_string_equal(claims_check("{\"exp\":2000,\"aud\":7}", &e),
                        "token aud claim is neither a string nor an array of strings");
    /* subject, issuer, jti */
    e.audience = NULL;
    e.subject = "Patient/1";
    assert_string_equal(claims_check("{\"exp\":2000,\"sub\":\"Patient/2\"}", &e),
                        "token sub \"Patient/2\" is not the expected \"Patient/1\"");
    assert_string_equal(claims_check("{\"exp\":2000}", &e), "token has no sub claim (subject)");
    e.subject = NULL;
    e.issuer = "https://a";
    assert_string_equal(claims_check("{\"exp\":2000,\"iss\":[\"https://a\"]}", &e),
                        "token iss claim is not a string");
    e.issuer = NULL;
    e.require_jti = true;
    assert_string_equal(claims_check("{\"exp\":2000}", &e), "token has no jti claim (token id)");
    assert_string_equal(claims_check("{\"exp\":2000,\"jti\":\"x1\"}", &e), "");
}

static void test_jwks_parsing(void **state)
{
    (void)state;
    /* a 1024-bit modulus: 128 bytes */
    unsigned char small[128];
    memset(small, 0xc5, sizeof(small));
    buf_t small_n = BUF_INIT;
    b64url_encode(small, sizeof(small), &small_n);
    char text[4096];
    snprintf(text, sizeof(text),
             "{\"keys\":["
             "{\"kty\":\"oct\",\"k\":\"c2VjcmV0\",\"kid\":\"hmac\"},"
             "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\",\"kid\":\"small\"},"
             "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\","
             "\"y\":\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\",\"kid\":\"off-curve\"},"
             "{\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"AA\",\"y\":\"AA\"},"
             "{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"%s\",\"e\":\"AQAB\"},"
             "{\"kty\":\"RSA\",\"alg\":\"ES256\",\"n\":\"%s\",\"e\":\"AQAB\"},"
             "{\"kty\":\"RSA\",\"n\":\"%s=\",\"e\":\"AQAB\"},"
             "\"not a key\","
             "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"good\"}]}",
             small_n.ptr, a3_x, a2_n, a2_n, a2_n, a3_x, a3_y);
    buf_release(&small_n);
    err_t err = ERR_INIT;
    jose_jwks_t *jwks = NULL;
    assert_int_equal(jose_jwks_parse(text, strlen(text), &jwks, &err), 0);
    assert_int_equal(err.code, ERR_OK);
    assert_int_equal(jose_jwks_count(jwks), 1);
    assert_string_equal(jose_key_kid(jose_jwks_key(jwks, 0)), "good");
    assert_null(jose_jwks_key(jwks, 1));
    assert_int_equal(err.nissues, 8);
    assert_int_equal(err.issues[0].severity, SEVERITY_WARNING);
    assert_string_equal(err.issues[0].message, "key 0 (kid \"hmac\") of the JWK Set is left out: "
                                               "its kty is not RSA or EC");
    assert_string_equal(err.issues[0].expression, "keys[0]");
    assert_string_equal(err.issues[1].message, "key 1 (kid \"small\") of the JWK Set is left "
                                               "out: it is an RSA key of fewer than 2048 bits");
    assert_string_equal(err.issues[2].message,
                        "key 2 (kid \"off-curve\") of the JWK Set is left out: its parameters "
                        "do not make a public key (for EC: a point on the curve)");
    assert_string_equal(err.issues[3].message,
                        "key 3 of the JWK Set is left out: its crv is not P-256 or P-384");
    assert_string_equal(err.issues[4].message,
                        "key 4 of the JWK Set is left out: its use is not \"sig\"");
    assert_string_equal(err.issues[5].message,
                        "key 5 of the JWK Set is left out: its alg does not fit its kty or crv");
    assert_string_equal(err.issues[6].message, "key 6 of the JWK Set is left out: its n or e is "
                                               "missing or not base64url");
    assert_string_equal(err.issues[7].message,
                        "key 7 of the JWK Set is left out: it is not a JSON object");
    jose_jwks_free(jwks);
    err_reset(&err);
    assert_int_equal(jose_jwks_parse("[]", 2, &jwks, &err), ERR_INVALID);
    assert_string_equal(err_message(&err),
                        "the JWK Set is not a JSON object with a \"keys\" array");
    err_reset(&err);
    assert_int_equal(jose_jwks_parse("{\"keys\":", 8, &jwks, &err), ERR_INVALID);
    assert_true(strncmp(err_message(&err), "the JWK Set is not JSON: ", 25) == 0);
    err_release(&err);

    /* an ES256 signature of the wrong length does not verify */
    jwks = parse_jwks("{\"keys\":[]}");
    assert_int_equal(jose_jwks_count(jwks), 0);
    jose_jwks_free(jwks);
    char *jwks_text = rfc_jwks();
    jwks = parse_jwks(jwks_text);
    free(jwks_text);
    jose_expect_t expect = {.now = A2_EXP - 100, .leeway = JOSE_LEEWAY};
    snprintf(text, sizeof(text), "eyJhbGciOiJFUzI1NiJ9.%s.%.84s", a2_payload, a3_signature);
    assert_int_equal(verify(text, jwks, &expect, NULL), ERR_UNAUTHORIZED);
    assert_string_equal(message, "token signature does not verify");
    jose_jwks_free(jwks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7515_examples),
        cmocka_unit_test(test_rfc7638_thumbprint),
        cmocka_unit_test(test_sign_verify_round_trips),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_claims),
        cmocka_unit_test(test_jwks_parsing),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    verify_release();
    return failed;
}
