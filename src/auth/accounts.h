/*
 * accounts.h - user accounts: creation under the password policy, password logins with
 * lockout, the TOTP second factor with recovery codes, and what an administrator does
 * (disable, enable, reset a password, reset the second factor). Over the store's account
 * table (store.h); docs/internals/auth.md has the flows.
 *
 * Roles: staff (admin, coordinator, nurse, physician, pharmacist, social-worker,
 * community-health-worker) link to their Practitioner (and may name a PractitionerRole; an
 * admin's link is optional), a patient account to its Patient, a service account to nothing.
 * Linked resources must exist when the account is made.
 *
 * A login is a password, then for accounts with a confirmed second factor a TOTP or recovery
 * code. Staff must have one: a staff login whose password is right but who has no confirmed
 * factor yet is answered AUTH_LOGIN_ENROLL, and the caller (the login page) takes them through
 * auth_mfa_enroll and auth_mfa_confirm before anything else. Patients and service accounts may
 * enrol; once they have, the code is asked for them too.
 *
 * Failures of either step count: after lockout_threshold failures in a row the account is
 * locked for lockout_base_us, doubling with each further failure up to lockout_max_us; a
 * success clears the count. Unknown users, locked and disabled accounts take the same time as
 * a wrong password (a hash is verified in every case) and get the same message.
 */
#ifndef CONCERTO_AUTH_ACCOUNTS_H
#define CONCERTO_AUTH_ACCOUNTS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/password.h"
#include "auth/recovery.h"
#include "auth/secrets.h"
#include "base/arena.h"
#include "base/err.h"
#include "store/store.h"

/* The roles, in the order `concerto user --help` lists them. */
extern const char *const auth_roles[];
extern const size_t auth_nroles;
/* Whether name is a role; whether the role is a staff role (which must have TOTP). */
bool auth_role_valid(const char *name);
bool auth_role_is_staff(const char *name);

/* Usernames: 1 to 64 characters of letters, digits, '.', '_', '-' and '@', starting with a
 * letter or digit, compared without case (stored lower case). */
#define AUTH_USERNAME_MAX 64

typedef struct {
    store_t *store;                /* borrowed */
    password_cost_t cost;          /* password_cost_default */
    password_cost_t secret_cost;   /* client secrets: password_cost_client_secret */
    password_policy_t policy;      /* 12 to 128 characters, no word list: set policy.dict */
    const auth_secrets_t *secrets; /* borrowed; NULL: TOTP enrolment is refused */
    const char *totp_issuer;       /* the issuer shown in authenticator apps: "Concerto" */
    int64_t lockout_threshold;     /* failures before a lock: 5 */
    int64_t lockout_base_us;       /* the first lock: 1 minute */
    int64_t lockout_max_us;        /* the longest: 1 hour */
    /* hashes that nothing matches, verified for unknown users and clients (made on first use,
     * with cost and secret_cost) so that an unknown name takes as long as a wrong secret */
    pthread_mutex_t dummy_lock;
    char dummy_hash[PASSWORD_HASH_SIZE];
    char dummy_secret_hash[PASSWORD_HASH_SIZE];
} auth_accounts_t;

/* Fills in the defaults above for store; release with auth_accounts_release. */
void auth_accounts_init(auth_accounts_t *accounts, store_t *store);
void auth_accounts_release(auth_accounts_t *accounts);

/* Lower-cases username into out (AUTH_USERNAME_MAX + 1 bytes). ERR_VALUE when it is not a
 * username. */
status_t auth_username_normalize(const char *username, char out[AUTH_USERNAME_MAX + 1], err_t *err);

typedef struct {
    const char *username;
    const char *role;
    const char *practitioner_id;      /* staff */
    const char *practitioner_role_id; /* staff, optional */
    const char *patient_id;           /* patient */
    const char *password;
    size_t password_len;
} auth_account_new_t;

/*
 * Makes an account: checks the username, the role and its links (ERR_VALUE), the password
 * against the policy (ERR_RULE, ERR_VALUE), hashes it, and in one transaction checks that the
 * linked resources exist (ERR_NOT_FOUND) and adds the row (ERR_CONFLICT: the username is
 * taken). *out_id is the new account's id (a UUID, in arena).
 */
status_t auth_account_create(auth_accounts_t *accounts, const auth_account_new_t *account,
                             int64_t now_us, arena_t *arena, const char **out_id, err_t *err);

typedef enum {
    AUTH_LOGIN_DONE,   /* signed in */
    AUTH_LOGIN_CODE,   /* password right: ask for a TOTP or recovery code (auth_mfa_verify) */
    AUTH_LOGIN_ENROLL, /* password right, staff without a second factor: enrol first */
} auth_login_step_t;

/* Why a step failed: for the audit trail and the log, never for the person logging in. */
typedef enum {
    AUTH_FAILURE_NONE,
    AUTH_FAILURE_UNKNOWN_USER,
    AUTH_FAILURE_PASSWORD,
    AUTH_FAILURE_CODE,
    AUTH_FAILURE_LOCKED,
    AUTH_FAILURE_DISABLED,
} auth_failure_t;

typedef struct {
    auth_login_step_t step;
    auth_failure_t failure;
    store_account_t account; /* on success: the account as it is now (strings in arena) */
    bool used_recovery_code; /* auth_mfa_verify: a recovery code was used up */
} auth_login_t;

/*
 * The password step of a login. Returns 0 with out->step, or ERR_UNAUTHORIZED with the one
 * message "invalid user name or password" (out->failure says why). A right password whose
 * hash was made with other parameters is hashed again. Completing (AUTH_LOGIN_DONE) clears
 * the failures and records the login.
 */
status_t auth_login(auth_accounts_t *accounts, store_conn_t *conn, const char *username,
                    const char *password, size_t len, int64_t now_us, arena_t *arena,
                    auth_login_t *out, err_t *err);

/*
 * The second step, after AUTH_LOGIN_CODE: code is a TOTP code (6 digits; each used once) or
 * a recovery code (used up). Returns 0 (step AUTH_LOGIN_DONE, the login recorded) or
 * ERR_UNAUTHORIZED "invalid code", counted as a failure.
 */
status_t auth_mfa_verify(auth_accounts_t *accounts, const char *username, const char *code,
                         size_t len, int64_t now_us, arena_t *arena, auth_login_t *out, err_t *err);

/*
 * Starts TOTP enrolment: a new secret, sealed with the server key and stored unconfirmed
 * (replacing an earlier unconfirmed one). *out_uri is the otpauth:// URI for a QR code,
 * *out_secret the secret in base32 for typing (both in arena, to show once). ERR_CONFLICT
 * when a confirmed factor exists (an administrator resets it first), ERR_UNAVAILABLE when the
 * server has no secrets key.
 */
status_t auth_mfa_enroll(auth_accounts_t *accounts, const char *username, int64_t now_us,
                         arena_t *arena, const char **out_uri, const char **out_secret, err_t *err);
/*
 * Confirms enrolment with a code from the app: the factor is on from now, and
 * RECOVERY_CODE_COUNT new recovery codes are made; *out_codes (in arena) holds them, to show
 * once (only their hashes are kept). The login is complete: out (may be NULL) as
 * auth_mfa_verify. A wrong code is ERR_UNAUTHORIZED and counts as a failure; ERR_CONFLICT when
 * nothing is waiting for confirmation.
 */
status_t auth_mfa_confirm(auth_accounts_t *accounts, const char *username, const char *code,
                          size_t len, int64_t now_us, arena_t *arena, char ***out_codes,
                          auth_login_t *out, err_t *err);
/* An administrator's reset: removes the second factor and the recovery codes (a staff member
 * enrols again at the next login). ERR_NOT_FOUND. */
status_t auth_mfa_reset(auth_accounts_t *accounts, const char *username, int64_t now_us,
                        err_t *err);

/* Sets a new password (policy as at creation), clears failures and the lock, and revokes the
 * account's tokens. ERR_NOT_FOUND, ERR_RULE, ERR_VALUE. */
status_t auth_account_set_password(auth_accounts_t *accounts, const char *username,
                                   const char *password, size_t len, int64_t now_us, err_t *err);
/* Disables (revoking the account's tokens) or enables an account; enabling also clears the
 * failures and the lock. ERR_NOT_FOUND. */
status_t auth_account_set_disabled(auth_accounts_t *accounts, const char *username, bool disabled,
                                   int64_t now_us, err_t *err);

/* Verifies password against a hash no password matches, with cost: the time a real check
 * takes, for unknown users; the same with secret_cost for unknown clients. */
void auth__dummy_verify(auth_accounts_t *accounts, const char *password, size_t len);
void auth__dummy_verify_secret(auth_accounts_t *accounts, const char *secret, size_t len);

#endif
