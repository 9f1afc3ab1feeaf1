/*
 * Tests for src/auth/accounts.c, clients.c, tokens.c and secrets.c over a real store (both
 * drivers): account creation and its refusals, logins with lockout and back-off, TOTP
 * enrolment, codes used once, recovery codes, the administrator's resets; client
 * authentication by secret and by signed assertion with replay protection; codes with PKCE,
 * refresh token rotation and reuse detection, and the cache of checked access tokens.
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

#include "auth/accounts.h"
#include "auth/clients.h"
#include "auth/jose.h"
#include "auth/secrets.h"
#include "auth/tokens.h"
#include "auth/totp.h"
#include "base/b64.h"
#include "store/store.h"
#include "unit/store/drivers.h"

#define SECOND   1000000LL
#define MINUTE   (60 * SECOND)
#define T0       (1800000000LL * SECOND)
#define PASSWORD "violet cactus under the harbour"

static store_t *store;
static store_conn_t *conn;
static arena_t arena;
static auth_accounts_t accounts;
static auth_secrets_t *secrets;

static status_t put_txn(store_txn_t *txn, void *arg, err_t *err)
{
    const char *const *r = arg; /* type, id */
    char json[128];
    snprintf(json, sizeof(json), "{\"resourceType\":\"%s\",\"id\":\"%s\"}", r[0], r[1]);
    store_put_t put = {.type = r[0],
                       .id = r[1],
                       .version = 1,
                       .method = "PUT",
                       .status = 201,
                       .json = json,
                       .json_len = strlen(json)};
    return store_txn_put(txn, &put, NULL, err);
}

static void put(const char *type, const char *id)
{
    const char *r[] = {type, id};
    err_t err = ERR_INIT;
    assert_int_equal(store_run(store, put_txn, (void *)r, &err), ERR_OK);
    err_release(&err);
}

static int setup(void **state)
{
    test_db_setup(state);
    test_store_open(&store, &conn);
    arena_init(&arena);
    auth_accounts_init(&accounts, store);
    accounts.cost = (password_cost_t){1, 8192}; /* fast: the tests hash many times */
    unsigned char key[AUTH_SECRETS_KEY_SIZE] = {1, 2, 3};
    secrets = auth_secrets_new(key);
    accounts.secrets = secrets;
    put("Practitioner", "p1");
    put("Patient", "pat1");
    return 0;
}

static int teardown(void **state)
{
    auth_secrets_free(secrets);
    auth_accounts_release(&accounts);
    arena_release(&arena);
    store_disconnect(conn);
    store_close(store);
    return test_db_teardown(state);
}

static status_t create(const char *username, const char *role, const char *practitioner,
                       const char *patient, const char *password, const char **out_message)
{
    auth_account_new_t in = {.username = username,
                             .role = role,
                             .practitioner_id = practitioner,
                             .patient_id = patient,
                             .password = password,
                             .password_len = strlen(password)};
    err_t err = ERR_INIT;
    const char *id = NULL;
    status_t rc = auth_account_create(&accounts, &in, T0, &arena, &id, &err);
    if (out_message)
        *out_message = rc ? arena_strdup(&arena, err_message(&err)) : id;
    err_release(&err);
    return rc;
}

static status_t login(const char *username, const char *password, int64_t now, auth_login_t *out)
{
    err_t err = ERR_INIT;
    status_t rc =
        auth_login(&accounts, conn, username, password, strlen(password), now, &arena, out, &err);
    if (rc)
        assert_string_equal(err_message(&err), "invalid user name or password");
    err_release(&err);
    return rc;
}

static void test_create_and_its_refusals(void **state)
{
    (void)state;
    const char *msg;
    assert_int_equal(create("Alice", "nurse", "p1", NULL, PASSWORD, &msg), ERR_OK);
    assert_int_equal(strlen(msg), 36); /* a UUID */
    assert_int_equal(create("ALICE", "nurse", "p1", NULL, PASSWORD, &msg), ERR_CONFLICT);
    assert_int_equal(create("bob", "chef", "p1", NULL, PASSWORD, &msg), ERR_VALUE);
    assert_non_null(strstr(msg, "unknown role \"chef\""));
    assert_int_equal(create("bob", "nurse", NULL, NULL, PASSWORD, &msg), ERR_VALUE);
    assert_int_equal(create("bob", "patient", NULL, NULL, PASSWORD, &msg), ERR_VALUE);
    assert_int_equal(create("bob", "patient", "p1", "pat1", PASSWORD, &msg), ERR_VALUE);
    assert_int_equal(create("bob", "nurse", "p2", NULL, PASSWORD, &msg), ERR_NOT_FOUND);
    assert_string_equal(msg, "Practitioner/p2 does not exist");
    assert_int_equal(create("bob", "nurse", "p1", NULL, "short", &msg), ERR_RULE);
    assert_int_equal(create("bob", "nurse", "p1", NULL, "bob-bob-bob-bob-bob", &msg), ERR_RULE);
    assert_int_equal(create("b b", "nurse", "p1", NULL, PASSWORD, &msg), ERR_VALUE);
    assert_int_equal(create("admin", "admin", NULL, NULL, PASSWORD, &msg), ERR_OK);
    assert_int_equal(create("svc", "service", NULL, NULL, PASSWORD, &msg), ERR_OK);
    assert_int_equal(create("pat", "patient", NULL, "pat1", PASSWORD, &msg), ERR_OK);

    err_t err = ERR_INIT;
    store_account_t a;
    assert_int_equal(store_account_get(conn, "alice", &arena, &a, &err), ERR_OK);
    assert_non_null(strstr(a.password_hash, "$argon2id$"));
    assert_null(strstr(a.password_hash, PASSWORD));
    err_release(&err);
}

static void test_lockout_with_back_off(void **state)
{
    (void)state;
    assert_int_equal(create("pat", "patient", NULL, "pat1", PASSWORD, NULL), ERR_OK);
    auth_login_t out;
    assert_int_equal(login("PAT", PASSWORD, T0, &out), ERR_OK);
    assert_int_equal(out.step, AUTH_LOGIN_DONE);
    assert_int_equal(out.account.last_login_us, T0);

    for (int i = 0; i < 4; i++) {
        assert_int_equal(login("pat", "wrong password here", T0 + i, &out), ERR_UNAUTHORIZED);
        assert_int_equal(out.failure, AUTH_FAILURE_PASSWORD);
    }
    assert_int_equal(login("pat", PASSWORD, T0 + 10, &out), ERR_OK); /* 4: not locked */
    for (int i = 0; i < 5; i++)
        assert_int_equal(login("pat", "wrong password here", T0 + 20 + i, &out), ERR_UNAUTHORIZED);
    /* 5 failures: locked for a minute, even with the right password */
    assert_int_equal(login("pat", PASSWORD, T0 + 30, &out), ERR_UNAUTHORIZED);
    assert_int_equal(out.failure, AUTH_FAILURE_LOCKED);
    assert_int_equal(login("pat", PASSWORD, T0 + 24 + MINUTE - 1, &out), ERR_UNAUTHORIZED);
    /* the 6th failure after the lock: two minutes */
    int64_t t = T0 + 24 + MINUTE;
    assert_int_equal(login("pat", "wrong password here", t, &out), ERR_UNAUTHORIZED);
    assert_int_equal(login("pat", PASSWORD, t + 2 * MINUTE - 1, &out), ERR_UNAUTHORIZED);
    assert_int_equal(login("pat", PASSWORD, t + 2 * MINUTE, &out), ERR_OK);
    err_t err = ERR_INIT;
    store_account_t a;
    assert_int_equal(store_account_get(conn, "pat", &arena, &a, &err), ERR_OK);
    assert_int_equal(a.failed_logins, 0);
    err_release(&err);

    /* unknown users and disabled accounts: the same answer */
    assert_int_equal(login("nobody", PASSWORD, T0, &out), ERR_UNAUTHORIZED);
    assert_int_equal(out.failure, AUTH_FAILURE_UNKNOWN_USER);
    assert_int_equal(auth_account_set_disabled(&accounts, "pat", true, T0, &err), ERR_OK);
    assert_int_equal(login("pat", PASSWORD, t + 3 * MINUTE, &out), ERR_UNAUTHORIZED);
    assert_int_equal(out.failure, AUTH_FAILURE_DISABLED);
    assert_int_equal(auth_account_set_disabled(&accounts, "pat", false, T0, &err), ERR_OK);
    assert_int_equal(login("pat", PASSWORD, t + 3 * MINUTE, &out), ERR_OK);
    err_release(&err);
}

static void test_rehash_and_password_reset(void **state)
{
    (void)state;
    assert_int_equal(create("pat", "patient", NULL, "pat1", PASSWORD, NULL), ERR_OK);
    err_t err = ERR_INIT;
    store_account_t before, after;
    assert_int_equal(store_account_get(conn, "pat", &arena, &before, &err), ERR_OK);
    accounts.cost = (password_cost_t){2, 8192};
    auth_login_t out;
    assert_int_equal(login("pat", PASSWORD, T0, &out), ERR_OK);
    assert_int_equal(store_account_get(conn, "pat", &arena, &after, &err), ERR_OK);
    assert_string_not_equal(before.password_hash, after.password_hash);
    assert_false(password_needs_rehash(&accounts.cost, after.password_hash));

    assert_int_equal(auth_account_set_password(&accounts, "pat", "abc", 3, T0, &err), ERR_RULE);
    err_reset(&err);
    const char *fresh = "quiet orange bicycle at dawn";
    assert_int_equal(auth_account_set_password(&accounts, "nobody", fresh, strlen(fresh), T0, &err),
                     ERR_NOT_FOUND);
    err_reset(&err);
    assert_int_equal(
        auth_account_set_password(&accounts, "pat", fresh, strlen(fresh), T0 + SECOND, &err),
        ERR_OK);
    assert_int_equal(login("pat", PASSWORD, T0 + 2 * SECOND, &out), ERR_UNAUTHORIZED);
    assert_int_equal(login("pat", fresh, T0 + 2 * SECOND, &out), ERR_OK);
    assert_int_equal(out.account.password_changed_us, T0 + SECOND);
    err_release(&err);
}

/* The current TOTP code of the secret in an otpauth URI's base32 text. */
static void code_at(const char *secret_b32, int64_t now_us, char out[TOTP_CODE_SIZE])
{
    buf_t key = BUF_INIT;
    assert_true(b32_decode(secret_b32, strlen(secret_b32), &key));
    totp_code(&totp_default, (const unsigned char *)key.ptr, key.len, now_us / SECOND, out);
    buf_release(&key);
}

static void test_staff_second_factor(void **state)
{
    (void)state;
    assert_int_equal(create("nurse", "nurse", "p1", NULL, PASSWORD, NULL), ERR_OK);
    auth_login_t out;
    assert_int_equal(login("nurse", PASSWORD, T0, &out), ERR_OK);
    assert_int_equal(out.step, AUTH_LOGIN_ENROLL);

    err_t err = ERR_INIT;
    const char *uri, *secret;
    assert_int_equal(auth_mfa_enroll(&accounts, "nurse", T0, &arena, &uri, &secret, &err), 0);
    assert_non_null(strstr(uri, "otpauth://totp/Concerto:nurse?secret="));
    assert_non_null(strstr(uri, secret));
    store_account_t a;
    assert_int_equal(store_account_get(conn, "nurse", &arena, &a, &err), ERR_OK);
    assert_false(a.totp_confirmed);
    assert_null(strstr(a.totp_secret, secret)); /* sealed, not the secret */
    assert_int_equal(strncmp(a.totp_secret, "v1.", 3), 0);

    char code[TOTP_CODE_SIZE], **recovery = NULL;
    assert_int_equal(
        auth_mfa_confirm(&accounts, "nurse", "000000", 6, T0, &arena, &recovery, &out, &err),
        ERR_UNAUTHORIZED);
    err_reset(&err);
    code_at(secret, T0, code);
    assert_int_equal(
        auth_mfa_confirm(&accounts, "nurse", code, 6, T0, &arena, &recovery, &out, &err), ERR_OK);
    for (int i = 0; i < RECOVERY_CODE_COUNT; i++)
        assert_int_equal(strlen(recovery[i]), 19);
    assert_int_equal(out.account.failed_logins, 0); /* the failed try is cleared */
    /* enrolled: enrolling again needs a reset */
    assert_int_equal(auth_mfa_enroll(&accounts, "nurse", T0, &arena, &uri, &secret, &err),
                     ERR_CONFLICT);
    err_reset(&err);

    /* a login now asks for a code; each code is used once */
    assert_int_equal(login("nurse", PASSWORD, T0 + MINUTE, &out), ERR_OK);
    assert_int_equal(out.step, AUTH_LOGIN_CODE);
    code_at(secret, T0 + MINUTE, code);
    assert_int_equal(auth_mfa_verify(&accounts, "nurse", code, 6, T0 + MINUTE, &arena, &out, &err),
                     ERR_OK);
    assert_int_equal(out.account.last_login_us, T0 + MINUTE);
    assert_int_equal(auth_mfa_verify(&accounts, "nurse", code, 6, T0 + MINUTE, &arena, &out, &err),
                     ERR_UNAUTHORIZED);
    err_reset(&err);

    /* a recovery code works once, in any case and spacing */
    char typed[32];
    snprintf(typed, sizeof(typed), "%s", recovery[3]);
    for (char *p = typed; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    assert_int_equal(auth_mfa_verify(&accounts, "nurse", typed, strlen(typed), T0 + 2 * MINUTE,
                                     &arena, &out, &err),
                     ERR_OK);
    assert_true(out.used_recovery_code);
    assert_int_equal(out.account.recovery_codes, RECOVERY_CODE_COUNT - 1);
    assert_int_equal(auth_mfa_verify(&accounts, "nurse", typed, strlen(typed), T0 + 2 * MINUTE,
                                     &arena, &out, &err),
                     ERR_UNAUTHORIZED);
    err_reset(&err);

    /* wrong codes count toward the lockout (the replayed recovery code was the first);
       a right password in between does not clear the count */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(
            auth_mfa_verify(&accounts, "nurse", "123456", 6, T0 + 3 * MINUTE, &arena, &out, &err),
            ERR_UNAUTHORIZED);
        err_reset(&err);
    }
    assert_int_equal(login("nurse", PASSWORD, T0 + 3 * MINUTE, &out), ERR_OK);
    assert_int_equal(out.step, AUTH_LOGIN_CODE);
    assert_int_equal(
        auth_mfa_verify(&accounts, "nurse", "123456", 6, T0 + 3 * MINUTE, &arena, &out, &err),
        ERR_UNAUTHORIZED);
    err_reset(&err);
    code_at(secret, T0 + 3 * MINUTE + 30 * SECOND, code);
    assert_int_equal(auth_mfa_verify(&accounts, "nurse", code, 6, T0 + 3 * MINUTE + 30 * SECOND,
                                     &arena, &out, &err),
                     ERR_UNAUTHORIZED);
    assert_int_equal(out.failure, AUTH_FAILURE_LOCKED); /* 5 failures: locked */
    err_reset(&err);

    /* an administrator's reset: enrol again */
    assert_int_equal(auth_mfa_reset(&accounts, "nurse", T0 + 5 * MINUTE, &err), ERR_OK);
    assert_int_equal(auth_account_set_disabled(&accounts, "nurse", false, T0, &err), ERR_OK);
    assert_int_equal(login("nurse", PASSWORD, T0 + 6 * MINUTE, &out), ERR_OK);
    assert_int_equal(out.step, AUTH_LOGIN_ENROLL);
    assert_int_equal(out.account.recovery_codes, 0);
    err_release(&err);
}

static void test_sealed_secrets(void **state)
{
    (void)state;
    buf_t sealed = BUF_INIT, opened = BUF_INIT;
    auth_secrets_seal(secrets, "account-1", "secret", 6, &sealed);
    assert_true(auth_secrets_open(secrets, "account-1", sealed.ptr, sealed.len, &opened));
    assert_int_equal(opened.len, 6);
    assert_memory_equal(opened.ptr, "secret", 6);
    assert_false(auth_secrets_open(secrets, "account-2", sealed.ptr, sealed.len, &opened));
    unsigned char other_key[AUTH_SECRETS_KEY_SIZE] = {9};
    auth_secrets_t *other = auth_secrets_new(other_key);
    assert_false(auth_secrets_open(other, "account-1", sealed.ptr, sealed.len, &opened));
    auth_secrets_free(other);
    sealed.ptr[sealed.len - 2] = sealed.ptr[sealed.len - 2] == 'A' ? 'B' : 'A';
    assert_false(auth_secrets_open(secrets, "account-1", sealed.ptr, sealed.len, &opened));
    assert_int_equal(opened.len, 6);

    /* key files: hex, and private */
    char path[] = "/tmp/concerto-key-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
    assert_int_equal(write(fd, hex, strlen(hex)), (ssize_t)strlen(hex));
    close(fd);
    err_t err = ERR_INIT;
    auth_secrets_t *loaded = NULL;
    chmod(path, 0644);
    assert_int_equal(auth_secrets_load(path, &loaded, &err), ERR_INVALID);
    err_reset(&err);
    chmod(path, 0600);
    assert_int_equal(auth_secrets_load(path, &loaded, &err), ERR_OK);
    auth_secrets_free(loaded);
    unlink(path);
    err_release(&err);
    buf_release(&sealed);
    buf_release(&opened);
}

/* ---- clients -------------------------------------------------------------------------- */

static void test_client_secret(void **state)
{
    (void)state;
    const char *secret = "0123456789abcdef0123456789abcdef";
    auth_client_new_t in = {.client_id = "app",
                            .kind = STORE_CLIENT_CONFIDENTIAL,
                            .secret = "short",
                            .secret_len = 5,
                            .scopes = "system/*.rs"};
    err_t err = ERR_INIT;
    assert_int_equal(auth_client_register(&accounts, &in, T0, &err), ERR_RULE);
    err_reset(&err);
    in.secret = secret;
    in.secret_len = strlen(secret);
    in.scopes = "system/Nothing.rs";
    assert_int_equal(auth_client_register(&accounts, &in, T0, &err), ERR_VALUE);
    err_reset(&err);
    in.scopes = "system/*.rs";
    const char *bad_uri[] = {"http://app.example/cb"};
    in.redirect_uris = bad_uri;
    in.nredirect_uris = 1;
    assert_int_equal(auth_client_register(&accounts, &in, T0, &err), ERR_VALUE);
    err_reset(&err);
    in.nredirect_uris = 0;
    assert_int_equal(auth_client_register(&accounts, &in, T0, &err), ERR_OK);
    assert_int_equal(auth_client_register(&accounts, &in, T0, &err), ERR_CONFLICT);
    err_reset(&err);

    store_client_t client;
    assert_int_equal(auth_client_authenticate_secret(&accounts, conn, "app", secret, strlen(secret),
                                                     &arena, &client, &err),
                     ERR_OK);
    assert_int_equal(
        auth_client_authenticate_secret(&accounts, conn, "app", "nope", 4, &arena, &client, &err),
        ERR_UNAUTHORIZED);
    err_reset(&err);
    assert_int_equal(auth_client_authenticate_secret(&accounts, conn, "ghost", secret,
                                                     strlen(secret), &arena, &client, &err),
                     ERR_UNAUTHORIZED);
    err_reset(&err);
    assert_int_equal(auth_client_set_disabled(&accounts, "app", true, T0, &err), ERR_OK);
    assert_int_equal(auth_client_authenticate_secret(&accounts, conn, "app", secret, strlen(secret),
                                                     &arena, &client, &err),
                     ERR_UNAUTHORIZED);
    err_release(&err);
}

static const char *assertion(jose_key_t *key, const char *iss, const char *aud, int64_t exp,
                             const char *jti)
{
    json_t *claims = json_pack("{s:s, s:s, s:s, s:I, s:s}", "iss", iss, "sub", iss, "aud", aud,
                               "exp", (json_int_t)exp, "jti", jti);
    buf_t out = BUF_INIT;
    err_t err = ERR_INIT;
    assert_int_equal(jose_sign(key, JOSE_ES256, claims, &out, &err), ERR_OK);
    const char *s = arena_strdup(&arena, out.ptr);
    buf_release(&out);
    json_decref(claims);
    err_release(&err);
    return s;
}

static void test_client_assertions(void **state)
{
    (void)state;
    jose_key_t *key = jose_key_generate(JOSE_ES256), *stranger = jose_key_generate(JOSE_ES256);
    json_t *jwk = jose_key_public_jwk(key, "ES256");
    json_t *set = json_pack("{s:[o]}", "keys", jwk);
    char *jwks = json_dumps(set, JSON_COMPACT);
    auth_client_new_t in = {
        .client_id = "svc", .kind = STORE_CLIENT_JWT, .jwks = jwks, .scopes = "system/*.rs"};
    err_t err = ERR_INIT;
    assert_int_equal(auth_client_register(&accounts, &in, T0, &err), ERR_OK);
    in.client_id = "svc2";
    in.jwks = "{\"keys\":[]}";
    assert_int_equal(auth_client_register(&accounts, &in, T0, &err), ERR_VALUE);
    err_reset(&err);

    const char *aud = "https://concerto.example/auth/token";
    int64_t now = T0, exp = T0 / SECOND + 240;
    store_client_t client;
    const char *good = assertion(key, "svc", aud, exp, "j1");
    assert_int_equal(auth_client_authenticate_jwt(&accounts, conn, good, strlen(good), aud, now,
                                                  &arena, &client, &err),
                     ERR_OK);
    assert_string_equal(client.client_id, "svc");
    /* a replay */
    assert_int_equal(auth_client_authenticate_jwt(&accounts, conn, good, strlen(good), aud, now,
                                                  &arena, &client, &err),
                     ERR_UNAUTHORIZED);
    assert_non_null(strstr(err_message(&err), "jti"));
    err_reset(&err);
    /* another key, another audience, too far ahead, an unknown client */
    const char *bad[] = {
        assertion(stranger, "svc", aud, exp, "j2"),
        assertion(key, "svc", "https://elsewhere.example/token", exp, "j3"),
        assertion(key, "svc", aud, T0 / SECOND + 3600, "j4"),
        assertion(key, "nobody", aud, exp, "j5"),
    };
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(auth_client_authenticate_jwt(&accounts, conn, bad[i], strlen(bad[i]), aud,
                                                      now, &arena, &client, &err),
                         ERR_UNAUTHORIZED);
        err_reset(&err);
    }
    free(jwks);
    json_decref(set);
    jose_key_free(key);
    jose_key_free(stranger);
    err_release(&err);
}

/* ---- tokens --------------------------------------------------------------------------- */

static const char *verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
static const char *challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"; /* RFC 7636 B */

static void test_code_exchange_and_rotation(void **state)
{
    (void)state;
    auth_tokens_t tokens;
    auth_tokens_init(&tokens, store);
    auth_grant_t grant = {"app", "acc-1", "launch/patient patient/*.rs offline_access", "pat1"};
    const char *redirect = "https://app.example/cb";
    char code[AUTH_TOKEN_SIZE];
    err_t err = ERR_INIT;
    assert_int_equal(auth_code_issue(&tokens, &grant, challenge, redirect, NULL, T0, code, &err),
                     0);
    assert_int_equal(strlen(code), 43);

    auth_issued_t issued;
    /* wrong verifier, wrong redirect, wrong client: refused, the code stays usable */
    assert_int_equal(auth_code_exchange(&tokens, code, "app", redirect,
                                        "wrong-verifier-wrong-verifier-wrong-verifier-x", T0,
                                        &arena, &issued, &err),
                     ERR_UNAUTHORIZED);
    err_reset(&err);
    assert_int_equal(auth_code_exchange(&tokens, code, "app", "https://evil.example/cb", verifier,
                                        T0, &arena, &issued, &err),
                     ERR_UNAUTHORIZED);
    err_reset(&err);
    assert_int_equal(
        auth_code_exchange(&tokens, code, "other", redirect, verifier, T0, &arena, &issued, &err),
        ERR_UNAUTHORIZED);
    err_reset(&err);
    assert_int_equal(
        auth_code_exchange(&tokens, code, "app", redirect, verifier, T0, &arena, &issued, &err),
        ERR_OK);
    assert_int_equal(strlen(issued.access), 43);
    assert_int_equal(strlen(issued.refresh), 43); /* offline_access */
    assert_string_equal(issued.patient_id, "pat1");
    assert_null(issued.nonce); /* the request sent none */
    auth_issued_t first = issued;

    store_token_t row;
    assert_int_equal(auth_token_check(&tokens, conn, first.access, 43, T0, &arena, &row, &err),
                     ERR_OK);
    assert_string_equal(row.account_id, "acc-1");
    assert_string_equal(row.scopes, grant.scopes);

    /* rotation: the refresh token is used up and replaced */
    auth_issued_t second;
    assert_int_equal(
        auth_refresh(&tokens, first.refresh, "app", T0 + SECOND, &arena, &second, &err), ERR_OK);
    assert_string_not_equal(second.refresh, first.refresh);
    assert_null(second.nonce);
    assert_int_equal(
        auth_token_check(&tokens, conn, second.access, 43, T0 + SECOND, &arena, &row, &err),
        ERR_OK);
    /* the old refresh token again: a leak; the whole family goes */
    assert_int_equal(
        auth_refresh(&tokens, first.refresh, "app", T0 + 2 * SECOND, &arena, &issued, &err),
        ERR_UNAUTHORIZED);
    assert_non_null(strstr(err_message(&err), "used before"));
    err_reset(&err);
    assert_int_equal(
        auth_token_check(&tokens, conn, second.access, 43, T0 + 2 * SECOND, &arena, &row, &err),
        ERR_UNAUTHORIZED);
    err_reset(&err);
    assert_int_equal(
        auth_refresh(&tokens, second.refresh, "app", T0 + 3 * SECOND, &arena, &issued, &err),
        ERR_UNAUTHORIZED);
    err_reset(&err);

    /* a replayed code revokes what it gave; the code keeps its request's nonce */
    assert_int_equal(
        auth_code_issue(&tokens, &grant, challenge, redirect, "n-0S6_WzA2Mj", T0, code, &err), 0);
    assert_int_equal(
        auth_code_exchange(&tokens, code, "app", redirect, verifier, T0, &arena, &issued, &err),
        ERR_OK);
    assert_string_equal(issued.nonce, "n-0S6_WzA2Mj");
    assert_int_equal(
        auth_code_exchange(&tokens, code, "app", redirect, verifier, T0, &arena, &second, &err),
        ERR_UNAUTHORIZED);
    err_reset(&err);
    assert_int_equal(auth_token_check(&tokens, conn, issued.access, 43, T0, &arena, &row, &err),
                     ERR_UNAUTHORIZED);
    err_reset(&err);

    /* an expired code */
    assert_int_equal(auth_code_issue(&tokens, &grant, challenge, redirect, NULL, T0, code, &err),
                     0);
    assert_int_equal(auth_code_exchange(&tokens, code, "app", redirect, verifier, T0 + MINUTE,
                                        &arena, &issued, &err),
                     ERR_UNAUTHORIZED);
    err_release(&err);
    auth_tokens_release(&tokens);
}

static void test_token_cache_and_revocation(void **state)
{
    (void)state;
    /* two processes: each its own cache */
    auth_tokens_t here, there;
    auth_tokens_init(&here, store);
    auth_tokens_init(&there, store);
    there.cache_ttl_us = 300000;
    auth_grant_t grant = {"svc", NULL, "system/*.rs", NULL};
    auth_issued_t issued;
    err_t err = ERR_INIT;
    assert_int_equal(auth_tokens_issue(&here, &grant, false, T0, &issued, &err), ERR_OK);
    assert_string_equal(issued.refresh, "");
    store_token_t row;
    assert_int_equal(auth_token_check(&here, conn, issued.access, 43, T0, &arena, &row, &err), 0);
    assert_int_equal(auth_token_check(&there, conn, issued.access, 43, T0, &arena, &row, &err), 0);
    assert_null(row.account_id);

    assert_int_equal(auth_token_revoke(&here, issued.access, 43, T0, &err), ERR_OK);
    /* at once where it was revoked */
    assert_int_equal(auth_token_check(&here, conn, issued.access, 43, T0, &arena, &row, &err),
                     ERR_UNAUTHORIZED);
    err_reset(&err);
    /* elsewhere the cached check stands for at most cache_ttl_us */
    assert_int_equal(auth_token_check(&there, conn, issued.access, 43, T0, &arena, &row, &err),
                     ERR_OK);
    usleep(350000);
    assert_int_equal(auth_token_check(&there, conn, issued.access, 43, T0, &arena, &row, &err),
                     ERR_UNAUTHORIZED);
    err_reset(&err);

    /* expiry is checked on cached tokens too */
    assert_int_equal(auth_tokens_issue(&here, &grant, false, T0, &issued, &err), ERR_OK);
    assert_int_equal(auth_token_check(&here, conn, issued.access, 43, T0, &arena, &row, &err), 0);
    assert_int_equal(auth_token_check(&here, conn, issued.access, 43, T0 + here.access_ttl_us,
                                      &arena, &row, &err),
                     ERR_UNAUTHORIZED);
    err_reset(&err);
    assert_int_equal(auth_token_check(&here, conn, "garbage", 7, T0, &arena, &row, &err),
                     ERR_UNAUTHORIZED);
    err_reset(&err);

    int64_t purged = 0;
    assert_int_equal(auth_tokens_purge(&here, T0 + here.access_ttl_us, &purged, &err), ERR_OK);
    assert_int_equal(purged, 2);
    err_release(&err);
    auth_tokens_release(&here);
    auth_tokens_release(&there);
}

static void test_bearer_check_with_the_account(void **state)
{
    (void)state;
    const char *id = NULL;
    assert_int_equal(create("pat.one", "patient", NULL, "pat1", PASSWORD, &id), ERR_OK);
    auth_tokens_t here, there;
    auth_tokens_init(&here, store);
    auth_tokens_init(&there, store);
    there.cache_ttl_us = 300000;
    auth_grant_t grant = {"app", id, "launch/patient patient/*.rs", "pat1"};
    auth_issued_t issued;
    err_t err = ERR_INIT;
    assert_int_equal(auth_tokens_issue(&here, &grant, false, T0, &issued, &err), ERR_OK);
    auth_bearer_t bearer;
    const scope_set_t *parsed = NULL;
    for (int i = 0; i < 2; i++) { /* from the store, then from the cache */
        assert_int_equal(
            auth_bearer_check(&here, conn, issued.access, 43, T0, &arena, &bearer, &err), 0);
        /* the scopes parsed once: the cached check hands out the same set */
        assert_non_null(bearer.scopes);
        assert_true(bearer.scopes->flags & SCOPE_LAUNCH_PATIENT);
        assert_int_equal(bearer.scopes->nresources, 1);
        assert_int_equal(bearer.scopes->resources[0].context, SCOPE_PATIENT);
        assert_string_equal(bearer.scopes->resources[0].type, "*");
        assert_int_equal(bearer.scopes->resources[0].perms, SCOPE_R | SCOPE_S);
        if (i == 0)
            parsed = bearer.scopes;
        else
            assert_ptr_equal(bearer.scopes, parsed);
        assert_true(bearer.has_account);
        assert_string_equal(bearer.account.account_id, id);
        assert_string_equal(bearer.account.username, "pat.one");
        assert_string_equal(bearer.account.role, "patient");
        assert_string_equal(bearer.account.patient_id, "pat1");
        assert_null(bearer.account.practitioner_id);
        assert_null(bearer.account.password_hash);
        assert_string_equal(bearer.token.patient_id, "pat1");
        assert_string_equal(bearer.token.scopes, "launch/patient patient/*.rs");
    }
    /* a request's scopes outlive the cache entry they came from (forgotten, replaced) until
     * its arena is released */
    arena_t request;
    arena_init(&request);
    auth_bearer_t held;
    assert_int_equal(auth_bearer_check(&here, conn, issued.access, 43, T0, &request, &held, &err),
                     0);
    auth_tokens_forget(&here);
    assert_int_equal(auth_bearer_check(&here, conn, issued.access, 43, T0, &arena, &bearer, &err),
                     0);
    assert_ptr_not_equal(bearer.scopes, held.scopes);
    assert_string_equal(held.scopes->resources[0].type, "*");
    assert_int_equal(held.scopes->resources[0].perms, SCOPE_R | SCOPE_S);
    arena_release(&request);
    /* a plain check of the same token, then a bearer check: the account is loaded again */
    store_token_t row;
    assert_int_equal(auth_token_check(&here, conn, issued.access, 43, T0, &arena, &row, &err), 0);
    assert_int_equal(auth_bearer_check(&here, conn, issued.access, 43, T0, &arena, &bearer, &err),
                     0);
    assert_string_equal(bearer.account.username, "pat.one");
    assert_int_equal(auth_bearer_check(&there, conn, issued.access, 43, T0, &arena, &bearer, &err),
                     0);

    /* disabling the account revokes its tokens: at once where it is forgotten, within the
     * cache's time elsewhere */
    assert_int_equal(auth_account_set_disabled(&accounts, "pat.one", true, T0, &err), ERR_OK);
    auth_tokens_forget(&here);
    assert_int_equal(auth_bearer_check(&here, conn, issued.access, 43, T0, &arena, &bearer, &err),
                     ERR_UNAUTHORIZED);
    err_reset(&err);
    assert_int_equal(auth_bearer_check(&there, conn, issued.access, 43, T0, &arena, &bearer, &err),
                     ERR_OK);
    usleep(350000);
    assert_int_equal(auth_bearer_check(&there, conn, issued.access, 43, T0, &arena, &bearer, &err),
                     ERR_UNAUTHORIZED);
    err_reset(&err);

    /* a token issued to a disabled account (a race with disabling) is refused for the account */
    assert_int_equal(auth_tokens_issue(&here, &grant, false, T0, &issued, &err), ERR_OK);
    assert_int_equal(auth_bearer_check(&here, conn, issued.access, 43, T0, &arena, &bearer, &err),
                     ERR_UNAUTHORIZED);
    assert_string_equal(err_message(&err), "the account is disabled");
    err_reset(&err);

    /* a client's own token has no account */
    auth_grant_t own = {"svc", NULL, "system/*.rs", NULL};
    assert_int_equal(auth_tokens_issue(&here, &own, false, T0, &issued, &err), ERR_OK);
    assert_int_equal(auth_bearer_check(&here, conn, issued.access, 43, T0, &arena, &bearer, &err),
                     0);
    assert_false(bearer.has_account);
    assert_null(bearer.account.account_id);
    assert_int_equal(auth_bearer_check(&here, conn, "short", 5, T0, &arena, &bearer, &err),
                     ERR_UNAUTHORIZED);
    err_release(&err);
    auth_tokens_release(&here);
    auth_tokens_release(&there);
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_create_and_its_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lockout_with_back_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rehash_and_password_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_staff_second_factor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_assertions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_code_exchange_and_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_cache_and_revocation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bearer_check_with_the_account, setup, teardown),
    };
    const struct CMUnitTest sqlite_only[] = {
        cmocka_unit_test_setup_teardown(test_sealed_secrets, setup, teardown),
    };
    return test_run_on_drivers("auth/accounts", both, TEST_COUNT(both), sqlite_only,
                               TEST_COUNT(sqlite_only), NULL, 0);
}
