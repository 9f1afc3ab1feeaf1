/*
 * totp.h - time-based one-time passwords (RFC 6238 over the HOTP of RFC 4226), the second
 * factor of staff logins, as authenticator apps compute them.
 *
 * The secret is random bytes, shown to the user once as base32 inside an otpauth:// URI (a QR
 * code). A code is checked against the current time step and one step either side (clock
 * drift and typing time), and the step that matched is returned: the caller stores it and
 * passes it back as last_step, so a code cannot be used twice (RFC 6238 section 5.2).
 */
#ifndef CONCERTO_AUTH_TOTP_H
#define CONCERTO_AUTH_TOTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

typedef enum { TOTP_SHA1, TOTP_SHA256, TOTP_SHA512 } totp_hash_t;

typedef struct {
    totp_hash_t hash;
    unsigned digits; /* 6 to 8 */
    unsigned period; /* seconds per step, > 0 */
} totp_params_t;

/* HMAC-SHA1, 6 digits, 30 s: what every authenticator app supports. */
extern const totp_params_t totp_default;

/* 160 bits, the HMAC-SHA1 output size that RFC 4226 section 4 recommends. */
#define TOTP_SECRET_SIZE 20
/* Room for a code of up to 8 digits and its NUL. */
#define TOTP_CODE_SIZE 9

/* A new random secret. */
void totp_secret_new(unsigned char out[TOTP_SECRET_SIZE]);

/* The HOTP value (RFC 4226 section 5.3) of counter, as digits characters with a NUL. */
void totp_hotp(totp_hash_t hash, const unsigned char *key, size_t key_len, uint64_t counter,
               unsigned digits, char out[TOTP_CODE_SIZE]);
/* The time step of unix_time (seconds since 1970, >= 0): floor(unix_time / period). */
int64_t totp_step(const totp_params_t *params, int64_t unix_time);
/* The code for unix_time. */
void totp_code(const totp_params_t *params, const unsigned char *key, size_t key_len,
               int64_t unix_time, char out[TOTP_CODE_SIZE]);

/*
 * Checks code (len characters) at unix_time against the steps before, at and after the current
 * one, skipping steps <= last_step (the last step accepted for this secret, -1 for none). On a
 * match returns true and sets *out_step. The three codes are compared in constant time; a
 * code of the wrong length or with a non-digit is refused before any comparison.
 */
bool totp_verify(const totp_params_t *params, const unsigned char *key, size_t key_len,
                 const char *code, size_t len, int64_t unix_time, int64_t last_step,
                 int64_t *out_step);

/*
 * Appends the provisioning URI that authenticator apps read (Google Authenticator's Key Uri
 * Format): otpauth://totp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER, with algorithm, digits
 * and period added when they differ from the defaults. Issuer and account are
 * percent-encoded (UTF-8, everything but RFC 3986's unreserved characters). Returns ERR_VALUE
 * when issuer or account is empty or contains a colon, which the format cannot carry.
 */
status_t totp_uri(const totp_params_t *params, const unsigned char *secret, size_t secret_len,
                  const char *issuer, const char *account, buf_t *out, err_t *err);

#endif
