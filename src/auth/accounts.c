/*
 * accounts.c - accounts, logins, lockout and the second factor (accounts.h).
 *
 * The slow part of a login, argon2id, runs outside any transaction: a login reads the account
 * on the caller's connection, verifies, and only then records the outcome in a short
 * transaction that reads the row again (locked on PostgreSQL), so concurrent failures all
 * count and no writer waits for a hash. TOTP checks are fast and run inside the transaction,
 * where the step they accept is stored, so that two requests cannot both use one code.
 */
#include "auth/accounts.h"

#include <stdio.h>
#include <string.h>

#include "auth/random.h"
#include "auth/totp.h"
#include "base/b64.h"
#include "base/buf.h"

const char *const auth_roles[] = {
    "admin",
    "coordinator",
    "nurse",
    "physician",
    "pharmacist",
    "social-worker",
    "community-health-worker",
    "patient",
    "service",
};
const size_t auth_nroles = sizeof(auth_roles) / sizeof(auth_roles[0]);

#define LOGIN_FAILED "invalid user name or password"
#define CODE_FAILED  "invalid code"

bool auth_role_valid(const char *name)
{
    for (size_t i = 0; i < auth_nroles; i++)
        if (strcmp(name, auth_roles[i]) == 0)
            return true;
    return false;
}

bool auth_role_is_staff(const char *name)
{
    return auth_role_valid(name) && strcmp(name, "patient") != 0 && strcmp(name, "service") != 0;
}

void auth_accounts_init(auth_accounts_t *accounts, store_t *store)
{
    memset(accounts, 0, sizeof(*accounts));
    accounts->store = store;
    accounts->cost = password_cost_default;
    accounts->secret_cost = password_cost_client_secret;
    accounts->policy = (password_policy_t){PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH, NULL};
    accounts->totp_issuer = "Concerto";
    accounts->lockout_threshold = 5;
    accounts->lockout_base_us = 60 * (int64_t)1000000;
    accounts->lockout_max_us = 3600 * (int64_t)1000000;
    pthread_mutex_init(&accounts->dummy_lock, NULL);
}

void auth_accounts_release(auth_accounts_t *accounts)
{
    pthread_mutex_destroy(&accounts->dummy_lock);
}

static void dummy_verify(auth_accounts_t *accounts, const password_cost_t *cost,
                         char hash[PASSWORD_HASH_SIZE], const char *password, size_t len)
{
    pthread_mutex_lock(&accounts->dummy_lock);
    if (!hash[0]) {
        unsigned char random[32];
        auth_random_bytes(random, sizeof(random));
        err_t err = ERR_INIT;
        if (password_hash(cost, (const char *)random, sizeof(random), hash, &err))
            hash[0] = '\0';
        err_release(&err);
    }
    pthread_mutex_unlock(&accounts->dummy_lock);
    (void)password_verify(hash, password, len);
}

void auth__dummy_verify(auth_accounts_t *accounts, const char *password, size_t len)
{
    dummy_verify(accounts, &accounts->cost, accounts->dummy_hash, password, len);
}

void auth__dummy_verify_secret(auth_accounts_t *accounts, const char *secret, size_t len)
{
    dummy_verify(accounts, &accounts->secret_cost, accounts->dummy_secret_hash, secret, len);
}

status_t auth_username_normalize(const char *username, char out[AUTH_USERNAME_MAX + 1], err_t *err)
{
    size_t len = strlen(username);
    if (len == 0 || len > AUTH_USERNAME_MAX)
        return err_set(err, ERR_VALUE, NULL, "a user name has 1 to %d characters",
                       AUTH_USERNAME_MAX);
    for (size_t i = 0; i < len; i++) {
        char c = username[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || !strchr("._-@", c)))
            return err_set(err, ERR_VALUE, NULL,
                           "invalid user name \"%s\": use letters, digits, '.', '_', '-' and "
                           "'@', starting with a letter or digit",
                           username);
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[len] = '\0';
    return ERR_OK;
}

static const char *new_uuid(arena_t *arena)
{
    unsigned char b[16];
    auth_random_bytes(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    return arena_printf(
        arena, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
        b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* ---- creation -------------------------------------------------------------------------- */

static status_t check_links(const auth_account_new_t *in, err_t *err)
{
    bool staff = auth_role_is_staff(in->role), patient = strcmp(in->role, "patient") == 0;
    if (staff && !in->practitioner_id && strcmp(in->role, "admin") != 0)
        return err_set(err, ERR_VALUE, NULL,
                       "a %s account must link to its Practitioner (--practitioner ID)", in->role);
    if (patient && !in->patient_id)
        return err_set(err, ERR_VALUE, NULL,
                       "a patient account must link to its Patient (--patient ID)");
    if (!staff && (in->practitioner_id || in->practitioner_role_id))
        return err_set(err, ERR_VALUE, NULL, "a %s account cannot link to a Practitioner",
                       in->role);
    if (!patient && in->patient_id)
        return err_set(err, ERR_VALUE, NULL, "only a patient account links to a Patient");
    if (in->practitioner_role_id && !in->practitioner_id)
        return err_set(err, ERR_VALUE, NULL, "a PractitionerRole needs its Practitioner too");
    return ERR_OK;
}

typedef struct {
    store_account_t account;
} create_arg_t;

static status_t must_exist(store_txn_t *txn, const char *type, const char *id, err_t *err)
{
    if (!id)
        return ERR_OK;
    store_current_t current;
    status_t rc = store_txn_current(txn, type, id, &current, err);
    if (rc)
        return rc;
    if (current.version == 0 || current.deleted)
        return err_set(err, ERR_NOT_FOUND, NULL, "%s/%s does not exist", type, id);
    return ERR_OK;
}

static status_t create_txn(store_txn_t *txn, void *arg, err_t *err)
{
    store_account_t *a = &((create_arg_t *)arg)->account;
    status_t rc;
    if ((rc = must_exist(txn, "Practitioner", a->practitioner_id, err)) ||
        (rc = must_exist(txn, "PractitionerRole", a->practitioner_role_id, err)) ||
        (rc = must_exist(txn, "Patient", a->patient_id, err)))
        return rc;
    return store_txn_account_create(txn, a, err);
}

status_t auth_account_create(auth_accounts_t *accounts, const auth_account_new_t *in,
                             int64_t now_us, arena_t *arena, const char **out_id, err_t *err)
{
    char username[AUTH_USERNAME_MAX + 1];
    status_t rc = auth_username_normalize(in->username, username, err);
    if (rc)
        return rc;
    if (!auth_role_valid(in->role)) {
        buf_t list = BUF_INIT;
        for (size_t i = 0; i < auth_nroles; i++)
            buf_addf(&list, "%s%s", i ? ", " : "", auth_roles[i]);
        rc = err_set(err, ERR_VALUE, NULL, "unknown role \"%s\": one of %s", in->role, list.ptr);
        buf_release(&list);
        return rc;
    }
    if ((rc = check_links(in, err)))
        return rc;
    if ((rc = password_check(&accounts->policy, in->password, in->password_len, username, err)))
        return rc;
    char hash[PASSWORD_HASH_SIZE];
    if ((rc = password_hash(&accounts->cost, in->password, in->password_len, hash, err)))
        return rc;
    create_arg_t arg = {.account = {
                            .account_id = new_uuid(arena),
                            .username = username,
                            .role = in->role,
                            .practitioner_id = in->practitioner_id,
                            .practitioner_role_id = in->practitioner_role_id,
                            .patient_id = in->patient_id,
                            .password_hash = hash,
                            .password_changed_us = now_us,
                            .totp_last_step = -1,
                            .created_us = now_us,
                            .updated_us = now_us,
                        }};
    rc = store_run(accounts->store, create_txn, &arg, err);
    if (!rc)
        *out_id = arg.account.account_id;
    return rc;
}

/* ---- recording outcomes ---------------------------------------------------------------- */

/* How long an account is locked after `failures` failures in a row (0: not locked). */
static int64_t lock_for(const auth_accounts_t *accounts, int64_t failures)
{
    if (failures < accounts->lockout_threshold)
        return 0;
    int64_t lock = accounts->lockout_base_us;
    for (int64_t i = accounts->lockout_threshold; i < failures && lock < accounts->lockout_max_us;
         i++)
        lock *= 2;
    return lock < accounts->lockout_max_us ? lock : accounts->lockout_max_us;
}

typedef enum { OUTCOME_FAILURE, OUTCOME_SUCCESS, OUTCOME_REHASH } outcome_kind_t;

typedef struct {
    auth_accounts_t *accounts;
    const char *username;
    outcome_kind_t kind;
    bool record_login;    /* success: the login is complete */
    const char *new_hash; /* OUTCOME_REHASH / success: a new password hash, or NULL */
    int64_t now_us;
    arena_t *arena;
    store_account_t after;
} outcome_arg_t;

static status_t outcome_txn(store_txn_t *txn, void *arg, err_t *err)
{
    outcome_arg_t *a = arg;
    store_account_t *row = &a->after;
    status_t rc = store_txn_account_get(txn, a->username, a->arena, row, err);
    if (rc)
        return rc;
    if (a->kind == OUTCOME_FAILURE) {
        row->failed_logins++;
        int64_t lock = lock_for(a->accounts, row->failed_logins);
        if (lock)
            row->locked_until_us = a->now_us + lock;
    } else if (a->record_login) {
        row->failed_logins = 0;
        row->locked_until_us = 0;
        row->last_login_us = a->now_us;
    }
    if (a->new_hash)
        row->password_hash = a->new_hash;
    row->updated_us = a->now_us;
    return store_txn_account_update(txn, row, err);
}

static status_t record(auth_accounts_t *accounts, const char *username, outcome_kind_t kind,
                       bool record_login, const char *new_hash, int64_t now_us, arena_t *arena,
                       store_account_t *out, err_t *err)
{
    outcome_arg_t arg = {accounts, username, kind, record_login, new_hash, now_us, arena, {0}};
    status_t rc = store_run(accounts->store, outcome_txn, &arg, err);
    if (!rc && out)
        *out = arg.after;
    return rc;
}

/* ---- logins ---------------------------------------------------------------------------- */

static bool has_factor(const store_account_t *a)
{
    return a->totp_secret && a->totp_confirmed;
}

status_t auth_login(auth_accounts_t *accounts, store_conn_t *conn, const char *username,
                    const char *password, size_t len, int64_t now_us, arena_t *arena,
                    auth_login_t *out, err_t *err)
{
    memset(out, 0, sizeof(*out));
    char name[AUTH_USERNAME_MAX + 1];
    err_t lookup = ERR_INIT;
    store_account_t account;
    status_t rc = ERR_NOT_FOUND;
    if (auth_username_normalize(username, name, &lookup) == ERR_OK)
        rc = store_account_get(conn, name, arena, &account, &lookup);
    if (rc == ERR_NOT_FOUND) {
        err_release(&lookup);
        auth__dummy_verify(accounts, password, len);
        out->failure = AUTH_FAILURE_UNKNOWN_USER;
        return err_set(err, ERR_UNAUTHORIZED, NULL, LOGIN_FAILED);
    }
    if (rc) {
        err_move(err, &lookup);
        return rc;
    }
    err_release(&lookup);
    if (account.disabled || now_us < account.locked_until_us || !account.password_hash) {
        auth__dummy_verify(accounts, password, len);
        out->failure = account.disabled ? AUTH_FAILURE_DISABLED : AUTH_FAILURE_LOCKED;
        return err_set(err, ERR_UNAUTHORIZED, NULL, LOGIN_FAILED);
    }
    if (!password_verify(account.password_hash, password, len)) {
        out->failure = AUTH_FAILURE_PASSWORD;
        if ((rc = record(accounts, name, OUTCOME_FAILURE, false, NULL, now_us, arena, NULL, err)))
            return rc;
        return err_set(err, ERR_UNAUTHORIZED, NULL, LOGIN_FAILED);
    }
    char fresh[PASSWORD_HASH_SIZE];
    const char *new_hash = NULL;
    if (password_needs_rehash(&accounts->cost, account.password_hash) &&
        password_hash(&accounts->cost, password, len, fresh, err) == ERR_OK)
        new_hash = fresh;
    err_reset(err);
    if (has_factor(&account))
        out->step = AUTH_LOGIN_CODE;
    else if (auth_role_is_staff(account.role))
        out->step = AUTH_LOGIN_ENROLL;
    else
        out->step = AUTH_LOGIN_DONE;
    /* the count is cleared only by a complete login or, for staff about to enrol, by the only
       factor they have: a right password does not reset the tries at the code */
    bool clear = out->step != AUTH_LOGIN_CODE;
    if (!clear && !new_hash) {
        out->account = account;
        return ERR_OK;
    }
    return record(accounts, name, OUTCOME_SUCCESS, clear && out->step == AUTH_LOGIN_DONE, new_hash,
                  now_us, arena, &out->account, err);
}

/* ---- the second factor ----------------------------------------------------------------- */

typedef enum { CODE_VERIFY, CODE_CONFIRM } code_op_t;

typedef struct {
    auth_accounts_t *accounts;
    code_op_t op;
    const char *username;
    const char *code;
    size_t len;
    int64_t now_us;
    arena_t *arena;
    /* results */
    bool matched, used_recovery;
    auth_failure_t failure;
    char **codes; /* CODE_CONFIRM: the new recovery codes */
    store_account_t after;
} code_arg_t;

static bool open_secret(const auth_accounts_t *accounts, const store_account_t *row, buf_t *out)
{
    return accounts->secrets && row->totp_secret &&
           auth_secrets_open(accounts->secrets, row->account_id, row->totp_secret,
                             strlen(row->totp_secret), out);
}

static bool all_digits(const char *code, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (code[i] < '0' || code[i] > '9')
            return false;
    return len > 0;
}

static status_t new_recovery_codes(store_txn_t *txn, code_arg_t *a, err_t *err)
{
    a->codes = arena_zalloc(a->arena, (RECOVERY_CODE_COUNT + 1) * sizeof(char *));
    const char *hashes[RECOVERY_CODE_COUNT];
    for (size_t i = 0; i < RECOVERY_CODE_COUNT; i++) {
        char code[RECOVERY_CODE_SIZE];
        recovery_code_new(code);
        a->codes[i] = arena_strdup(a->arena, code);
        buf_t hash = BUF_INIT;
        recovery_code_hash(code, strlen(code), &hash);
        hashes[i] = arena_strdup(a->arena, hash.ptr);
        buf_release(&hash);
    }
    return store_txn_recovery_set(txn, a->after.account_id, hashes, RECOVERY_CODE_COUNT, err);
}

static status_t code_txn(store_txn_t *txn, void *arg, err_t *err)
{
    code_arg_t *a = arg;
    store_account_t *row = &a->after;
    status_t rc = store_txn_account_get(txn, a->username, a->arena, row, err);
    if (rc)
        return rc;
    bool pending = row->totp_secret && !row->totp_confirmed;
    if (a->op == CODE_CONFIRM && !pending)
        return err_set(err, ERR_CONFLICT, NULL, "no second factor is waiting for confirmation");
    if (a->op == CODE_VERIFY && !has_factor(row))
        return err_set(err, ERR_CONFLICT, NULL, "the account has no second factor");
    if (row->disabled || a->now_us < row->locked_until_us) {
        a->failure = row->disabled ? AUTH_FAILURE_DISABLED : AUTH_FAILURE_LOCKED;
        return ERR_OK;
    }
    buf_t secret = BUF_INIT;
    if (all_digits(a->code, a->len)) {
        int64_t step = 0;
        if (open_secret(a->accounts, row, &secret) &&
            totp_verify(&totp_default, (const unsigned char *)secret.ptr, secret.len, a->code,
                        a->len, a->now_us / 1000000, row->totp_last_step, &step)) {
            a->matched = true;
            row->totp_last_step = step;
        }
        buf_release(&secret);
    } else if (a->op == CODE_VERIFY) {
        const char **hashes = NULL;
        size_t n = 0, index = 0;
        if ((rc = store_txn_recovery_list(txn, row->account_id, a->arena, &hashes, &n, err)))
            return rc;
        if (recovery_code_verify(hashes, n, a->code, a->len, &index)) {
            bool used = false;
            if ((rc = store_txn_recovery_use(txn, row->account_id, hashes[index], &used, err)))
                return rc;
            a->matched = a->used_recovery = used;
            if (used)
                row->recovery_codes--;
        }
    }
    if (!a->matched) {
        a->failure = AUTH_FAILURE_CODE;
        row->failed_logins++;
        int64_t lock = lock_for(a->accounts, row->failed_logins);
        if (lock)
            row->locked_until_us = a->now_us + lock;
    } else {
        row->failed_logins = 0;
        row->locked_until_us = 0;
        row->last_login_us = a->now_us;
        if (a->op == CODE_CONFIRM) {
            row->totp_confirmed = true;
            if ((rc = new_recovery_codes(txn, a, err)))
                return rc;
            row->recovery_codes = RECOVERY_CODE_COUNT;
        }
    }
    row->updated_us = a->now_us;
    return store_txn_account_update(txn, row, err);
}

static status_t run_code(auth_accounts_t *accounts, code_arg_t *arg, auth_login_t *out, err_t *err)
{
    if (out)
        memset(out, 0, sizeof(*out));
    char name[AUTH_USERNAME_MAX + 1];
    status_t rc = auth_username_normalize(arg->username, name, err);
    if (rc)
        return rc;
    arg->username = name;
    if ((rc = store_run(accounts->store, code_txn, arg, err)))
        return rc;
    if (out) {
        out->failure = arg->failure;
        out->account = arg->after;
        out->used_recovery_code = arg->used_recovery;
        out->step = AUTH_LOGIN_DONE;
    }
    if (!arg->matched)
        return err_set(err, ERR_UNAUTHORIZED, NULL, CODE_FAILED);
    return ERR_OK;
}

status_t auth_mfa_verify(auth_accounts_t *accounts, const char *username, const char *code,
                         size_t len, int64_t now_us, arena_t *arena, auth_login_t *out, err_t *err)
{
    code_arg_t arg = {.accounts = accounts,
                      .op = CODE_VERIFY,
                      .username = username,
                      .code = code,
                      .len = len,
                      .now_us = now_us,
                      .arena = arena};
    return run_code(accounts, &arg, out, err);
}

status_t auth_mfa_confirm(auth_accounts_t *accounts, const char *username, const char *code,
                          size_t len, int64_t now_us, arena_t *arena, char ***out_codes,
                          auth_login_t *out, err_t *err)
{
    code_arg_t arg = {.accounts = accounts,
                      .op = CODE_CONFIRM,
                      .username = username,
                      .code = code,
                      .len = len,
                      .now_us = now_us,
                      .arena = arena};
    status_t rc = run_code(accounts, &arg, out, err);
    *out_codes = rc ? NULL : arg.codes;
    return rc;
}

typedef enum { ADMIN_ENROLL, ADMIN_MFA_RESET, ADMIN_PASSWORD, ADMIN_DISABLE } admin_op_t;

typedef struct {
    auth_accounts_t *accounts;
    admin_op_t op;
    const char *username;
    int64_t now_us;
    arena_t *arena;
    const char *sealed;        /* ADMIN_ENROLL */
    const char *password_hash; /* ADMIN_PASSWORD */
    bool disabled;             /* ADMIN_DISABLE */
} admin_arg_t;

static status_t admin_txn(store_txn_t *txn, void *arg, err_t *err)
{
    admin_arg_t *a = arg;
    store_account_t row;
    status_t rc = store_txn_account_get(txn, a->username, a->arena, &row, err);
    if (rc)
        return rc;
    bool revoke = false;
    switch (a->op) {
    case ADMIN_ENROLL:
        if (has_factor(&row))
            return err_set(err, ERR_CONFLICT, NULL,
                           "the account has a second factor already: an administrator resets "
                           "it first");
        row.totp_secret = a->sealed;
        row.totp_confirmed = false;
        row.totp_last_step = -1;
        break;
    case ADMIN_MFA_RESET:
        row.totp_secret = NULL;
        row.totp_confirmed = false;
        row.totp_last_step = -1;
        if ((rc = store_txn_recovery_set(txn, row.account_id, NULL, 0, err)))
            return rc;
        break;
    case ADMIN_PASSWORD:
        row.password_hash = a->password_hash;
        row.password_changed_us = a->now_us;
        row.failed_logins = 0;
        row.locked_until_us = 0;
        revoke = true;
        break;
    case ADMIN_DISABLE:
        row.disabled = a->disabled;
        if (a->disabled) {
            revoke = true;
        } else {
            row.failed_logins = 0;
            row.locked_until_us = 0;
        }
        break;
    }
    row.updated_us = a->now_us;
    if ((rc = store_txn_account_update(txn, &row, err)))
        return rc;
    if (revoke)
        rc = store_txn_token_revoke_account(txn, row.account_id, a->now_us, NULL, err);
    return rc;
}

static status_t run_admin(admin_arg_t *arg, err_t *err)
{
    char name[AUTH_USERNAME_MAX + 1];
    status_t rc = auth_username_normalize(arg->username, name, err);
    if (rc)
        return rc;
    arg->username = name;
    return store_run(arg->accounts->store, admin_txn, arg, err);
}

status_t auth_mfa_enroll(auth_accounts_t *accounts, const char *username, int64_t now_us,
                         arena_t *arena, const char **out_uri, const char **out_secret, err_t *err)
{
    if (!accounts->secrets)
        return err_set(err, ERR_UNAVAILABLE, NULL,
                       "TOTP enrolment needs the server's secrets key (docs/configuration.md, "
                       "\"Secrets key\")");
    char name[AUTH_USERNAME_MAX + 1];
    status_t rc = auth_username_normalize(username, name, err);
    if (rc)
        return rc;
    store_conn_t *conn;
    if ((rc = store_connect(accounts->store, &conn, err)))
        return rc;
    store_account_t account;
    rc = store_account_get(conn, name, arena, &account, err);
    store_disconnect(conn);
    if (rc)
        return rc;
    unsigned char secret[TOTP_SECRET_SIZE];
    totp_secret_new(secret);
    buf_t sealed = BUF_INIT, uri = BUF_INIT, text = BUF_INIT;
    auth_secrets_seal(accounts->secrets, account.account_id, secret, sizeof(secret), &sealed);
    b32_encode(secret, sizeof(secret), &text);
    rc = totp_uri(&totp_default, secret, sizeof(secret), accounts->totp_issuer, name, &uri, err);
    admin_arg_t arg = {.accounts = accounts,
                       .op = ADMIN_ENROLL,
                       .username = name,
                       .now_us = now_us,
                       .arena = arena,
                       .sealed = sealed.ptr};
    if (!rc)
        rc = run_admin(&arg, err);
    if (!rc) {
        *out_uri = arena_strdup(arena, uri.ptr);
        *out_secret = arena_strdup(arena, text.ptr);
    }
    buf_release(&sealed);
    buf_release(&uri);
    buf_release(&text);
    memset(secret, 0, sizeof(secret));
    return rc;
}

status_t auth_mfa_reset(auth_accounts_t *accounts, const char *username, int64_t now_us, err_t *err)
{
    arena_t arena;
    arena_init(&arena);
    admin_arg_t arg = {accounts, ADMIN_MFA_RESET, username, now_us, &arena, NULL, NULL, false};
    status_t rc = run_admin(&arg, err);
    arena_release(&arena);
    return rc;
}

status_t auth_account_set_password(auth_accounts_t *accounts, const char *username,
                                   const char *password, size_t len, int64_t now_us, err_t *err)
{
    char name[AUTH_USERNAME_MAX + 1];
    status_t rc = auth_username_normalize(username, name, err);
    if (rc)
        return rc;
    /* an unknown user is reported before the policy is: the message names what to fix */
    store_conn_t *conn;
    arena_t arena;
    arena_init(&arena);
    store_account_t account;
    if (!(rc = store_connect(accounts->store, &conn, err))) {
        rc = store_account_get(conn, name, &arena, &account, err);
        store_disconnect(conn);
    }
    char hash[PASSWORD_HASH_SIZE];
    if (!rc)
        rc = password_check(&accounts->policy, password, len, name, err);
    if (!rc)
        rc = password_hash(&accounts->cost, password, len, hash, err);
    if (!rc) {
        admin_arg_t arg = {accounts, ADMIN_PASSWORD, name, now_us, &arena, NULL, hash, false};
        rc = run_admin(&arg, err);
    }
    arena_release(&arena);
    return rc;
}

status_t auth_account_set_disabled(auth_accounts_t *accounts, const char *username, bool disabled,
                                   int64_t now_us, err_t *err)
{
    arena_t arena;
    arena_init(&arena);
    admin_arg_t arg = {accounts, ADMIN_DISABLE, username, now_us, &arena, NULL, NULL, disabled};
    status_t rc = run_admin(&arg, err);
    arena_release(&arena);
    return rc;
}
