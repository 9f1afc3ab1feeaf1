/*
 * idtoken.h - the server's own signing key and the OpenID Connect id_tokens it signs.
 *
 * The key is an RSA key of 2048 bits kept outside the database in a PEM file (PKCS#8,
 * unencrypted, readable by the server's user only), or, for servers that share a PostgreSQL
 * database and have no key file, in the database, sealed with the secrets key (secrets.h),
 * so that they all sign with one key; its public half is published as a JWK
 * Set (GET /oauth2/jwks) with its RFC 7638 thumbprint as kid. An id_token (OpenID Connect
 * Core 1.0 section 2, SMART App Launch "fhirUser") is a JWT signed RS256 with it that tells
 * an app who signed in: iss the FHIR base URL, sub the account id, aud the client id, iat,
 * exp, fhirUser the account's Practitioner or Patient, nonce when the app sent one.
 */
#ifndef CONCERTO_AUTH_IDTOKEN_H
#define CONCERTO_AUTH_IDTOKEN_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/jose.h"
#include "auth/secrets.h"
#include "base/buf.h"
#include "base/err.h"
#include "store/store.h"

/* The algorithm of the server's signatures. */
#define AUTH_SIGNING_ALG JOSE_RS256

/*
 * Creates the key file at path with a new RSA key (mode 0600) unless a file is there already
 * (*out_created says which). ERR_INVALID when it cannot be written.
 */
status_t auth_signing_key_create(const char *path, bool *out_created, err_t *err);
/*
 * Reads the key file at path: a PEM private key that can sign RS256 (RSA, 2048 bits or more),
 * readable by its owner only (mode 0600 or 0400). ERR_INVALID saying what is wrong. The
 * caller frees *out with jose_key_free; it is read-only and may be shared by threads.
 */
status_t auth_signing_key_load(const char *path, jose_key_t **out, err_t *err);

/*
 * The signing key kept in store (store.h, STORE_SIGNING_KEY), sealed with secrets: the one
 * stored, or when there is none a new one, sealed and added unless another server added one
 * first, after which the one stored is used (*out_created: this call added it). So every
 * server on one database signs with the same key, and a restart keeps it. ERR_INVALID when
 * the stored key does not open with secrets (it was sealed with another secrets key) or is
 * not a signing key; storage errors. The caller frees *out with jose_key_free.
 */
status_t auth_signing_key_from_store(store_t *store, const auth_secrets_t *secrets, int64_t now_us,
                                     jose_key_t **out, bool *out_created, err_t *err);

typedef struct {
    const char *issuer;    /* iss: the FHIR base URL */
    const char *subject;   /* sub: the account id */
    const char *audience;  /* aud: the client id */
    const char *fhir_user; /* fhirUser: absolute URL of the Practitioner or Patient; may be NULL */
    const char *nonce;     /* the authorization request's nonce; may be NULL */
    int64_t issued_at;     /* iat, seconds since 1970 */
    int64_t expires_at;    /* exp, seconds since 1970 */
} auth_id_token_t;

/* Appends the id_token of claims signed with key (AUTH_SIGNING_ALG). ERR_INVALID when the key
 * cannot sign it. */
status_t auth_id_token_sign(const jose_key_t *key, const auth_id_token_t *claims, buf_t *out,
                            err_t *err);

#endif
