/*
 * jose.h - signed JSON Web Tokens: compact JWS (RFC 7515) with the JWT claims (RFC 7519), keys
 * as JWK and JWK Sets (RFC 7517), over OpenSSL's libcrypto.
 *
 * Four algorithms and nothing else (RFC 7518): RS256 and RS384 (RSA PKCS#1 v1.5, keys of 2048
 * bits or more), ES256 and ES384 (ECDSA on P-256 and P-384, signatures as raw r||s). "none"
 * and the HMAC algorithms are refused whatever the key set holds, and a key is used only with
 * the algorithms of its type and curve, so a public key cannot be passed off as an HMAC secret
 * or an RSA key as an EC one. The verifier checks the signature first, then the claims
 * against a clock the caller gives. Every failure is ERR_UNAUTHORIZED with a message that says
 * which check failed (these are for logs and for the client's developer: they name the claim
 * and the values, never key material).
 */
#ifndef CONCERTO_AUTH_JOSE_H
#define CONCERTO_AUTH_JOSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"

typedef enum { JOSE_RS256, JOSE_RS384, JOSE_ES256, JOSE_ES384 } jose_alg_t;

/* "RS256", ... */
const char *jose_alg_name(jose_alg_t alg);
/* The algorithm of a name; false for any other name ("none", "HS256", "PS256", ...). */
bool jose_alg_parse(const char *name, jose_alg_t *out);

/* A key: public (from a JWK Set) or a private key pair (generated or loaded from PEM). */
typedef struct jose_key jose_key_t;
/* The keys of a JWK Set, in their order. */
typedef struct jose_jwks jose_jwks_t;

/*
 * A new key pair for alg: RSA of 2048 bits for RS256/RS384, a P-256 or P-384 key for
 * ES256/ES384. Its kid is its RFC 7638 thumbprint. The caller frees it with jose_key_free.
 */
jose_key_t *jose_key_generate(jose_alg_t alg);
/* A private key from PEM text (PKCS#8 as jose_key_to_pem writes it, or the traditional RSA
 * and EC forms). Returns ERR_INVALID when it is not a private RSA (>= 2048 bits), P-256 or
 * P-384 key. */
status_t jose_key_from_pem(const char *pem, size_t len, jose_key_t **out, err_t *err);
/* Appends the private key as unencrypted PKCS#8 PEM: a secret, to be stored as one. */
void jose_key_to_pem(const jose_key_t *key, buf_t *out);
/* The key's kid: the one its JWK named, or for keys made here its thumbprint. May be NULL for a
 * JWK without kid. Borrowed from key. */
const char *jose_key_kid(const jose_key_t *key);
/* Whether the key can sign or verify with alg (type, curve). */
bool jose_key_fits(const jose_key_t *key, jose_alg_t alg);
/* Appends the RFC 7638 thumbprint: base64url of SHA-256 over the required members. */
void jose_key_thumbprint(const jose_key_t *key, buf_t *out);
/*
 * The public JWK of key, a new jansson reference: kty, kid, use "sig", alg when given (may
 * be NULL), and n/e or crv/x/y. What a JWK Set endpoint publishes.
 */
json_t *jose_key_public_jwk(const jose_key_t *key, const char *alg);
void jose_key_free(jose_key_t *key);

/*
 * Reads a JWK Set ({"keys": [...]}) from text. Keys that are not for signatures ("use" other
 * than "sig"), of another type (oct, OKP) or curve, smaller than 2048 bits (RSA), or
 * malformed (bad base64url, a point not on the curve) are left out, each with a warning issue
 * in err naming it. Returns ERR_INVALID when the text is not a JSON object with a "keys" array.
 * The caller frees *out with jose_jwks_free; it is read-only and may be shared by threads.
 */
status_t jose_jwks_parse(const char *text, size_t len, jose_jwks_t **out, err_t *err);
size_t jose_jwks_count(const jose_jwks_t *jwks);
/* The index-th key, borrowed from jwks. */
const jose_key_t *jose_jwks_key(const jose_jwks_t *jwks, size_t index);
void jose_jwks_free(jose_jwks_t *jwks);

/*
 * Signs payload (a JSON object) as a compact JWS with header {"alg","typ":"JWT","kid"} and
 * appends it to out. Returns ERR_INVALID when the key does not fit alg or holds no private
 * key.
 */
status_t jose_sign(const jose_key_t *key, jose_alg_t alg, const json_t *payload, buf_t *out,
                   err_t *err);

/* What a token's claims must satisfy. Strings that are NULL are not checked. */
typedef struct {
    int64_t now;          /* seconds since 1970 */
    int64_t leeway;       /* clock skew allowed on exp, nbf and iat, in seconds (JOSE_LEEWAY) */
    bool require_exp;     /* a token without exp is refused */
    bool require_jti;     /* a token without a string jti is refused */
    const char *issuer;   /* iss must equal it */
    const char *subject;  /* sub must equal it */
    const char *audience; /* aud (a string or an array of strings) must contain it */
} jose_expect_t;

#define JOSE_LEEWAY 60
/* Tokens longer than this are refused before decoding. */
#define JOSE_MAX_TOKEN 16384

/* A verified token. */
typedef struct {
    jose_alg_t alg;
    const char *kid;       /* the header's kid, or NULL; in the arena */
    json_t *header;        /* the JOSE header, owned by the arena */
    json_t *claims;        /* the payload, a JSON object, owned by the arena */
    const jose_key_t *key; /* the key that verified it, borrowed from the key set */
} jose_token_t;

/*
 * Verifies a compact JWS (len bytes) against the key set: with the header's kid, the key of
 * that kid; without one, each key that fits the header's alg. Then checks the claims with
 * jose_check_claims. On success fills *out (the JSON values live until the arena is
 * released). Returns ERR_UNAUTHORIZED on any failure.
 */
status_t jose_verify(arena_t *arena, const char *token, size_t len, const jose_jwks_t *keys,
                     const jose_expect_t *expect, jose_token_t *out, err_t *err);

/*
 * The claim checks alone, each a number when present: exp (refused when now >= exp + leeway),
 * nbf (refused when now + leeway < nbf), iat (refused when iat > now + leeway); then iss, sub,
 * aud and jti as expect asks. Returns ERR_UNAUTHORIZED naming the first claim that fails.
 */
status_t jose_check_claims(const json_t *claims, const jose_expect_t *expect, err_t *err);

#endif
