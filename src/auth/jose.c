/*
 * jose.c - compact JWS, JWK and JWK Sets over OpenSSL 3's EVP interface (jose.h).
 *
 * Keys are EVP_PKEYs built from their parameters (OSSL_PARAM), so no deprecated RSA or EC_KEY
 * call is needed. JWS carries ECDSA signatures as r||s of the curve's size while OpenSSL
 * speaks DER, so signatures are converted both ways here; a signature of the wrong length is
 * refused before conversion.
 */
#include "auth/jose.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "base/jv.h"
#include "base/mem.h"

typedef enum { KTY_RSA, KTY_EC } kty_t;

struct jose_key {
    EVP_PKEY *pkey;
    kty_t kty;
    int curve_bytes; /* 32 for P-256, 48 for P-384; 0 for RSA */
    bool has_alg;    /* the JWK named an alg: only that one */
    jose_alg_t alg;
    char *kid;
};

struct jose_jwks {
    jose_key_t **keys;
    size_t n;
};

#define MIN_RSA_BITS 2048

static const struct {
    const char *name;
    kty_t kty;
    int curve_bytes;
    const char *digest;
} algs[] = {
    [JOSE_RS256] = {"RS256", KTY_RSA, 0, "SHA256"},
    [JOSE_RS384] = {"RS384", KTY_RSA, 0, "SHA384"},
    [JOSE_ES256] = {"ES256", KTY_EC, 32, "SHA256"},
    [JOSE_ES384] = {"ES384", KTY_EC, 48, "SHA384"},
};

const char *jose_alg_name(jose_alg_t alg)
{
    return algs[alg].name;
}

bool jose_alg_parse(const char *name, jose_alg_t *out)
{
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        if (strcmp(name, algs[i].name) == 0) {
            *out = (jose_alg_t)i;
            return true;
        }
    }
    return false;
}

static const char *curve_jwk_name(int curve_bytes)
{
    return curve_bytes == 32 ? "P-256" : "P-384";
}

static const char *curve_openssl_name(int curve_bytes)
{
    return curve_bytes == 32 ? "prime256v1" : "secp384r1";
}

bool jose_key_fits(const jose_key_t *key, jose_alg_t alg)
{
    if (key->has_alg && key->alg != alg)
        return false;
    return key->kty == algs[alg].kty && key->curve_bytes == algs[alg].curve_bytes;
}

const char *jose_key_kid(const jose_key_t *key)
{
    return key->kid;
}

void jose_key_free(jose_key_t *key)
{
    if (!key)
        return;
    EVP_PKEY_free(key->pkey);
    free(key->kid);
    free(key);
}

/* Fills kty and curve from the EVP_PKEY; false when it is not a key we use. */
static bool classify(jose_key_t *key)
{
    if (EVP_PKEY_is_a(key->pkey, "RSA")) {
        key->kty = KTY_RSA;
        key->curve_bytes = 0;
        return EVP_PKEY_get_bits(key->pkey) >= MIN_RSA_BITS;
    }
    if (EVP_PKEY_is_a(key->pkey, "EC")) {
        char group[64];
        size_t len = 0;
        if (!EVP_PKEY_get_utf8_string_param(key->pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                            sizeof(group), &len))
            return false;
        key->kty = KTY_EC;
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
            key->curve_bytes = 32;
        else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
            key->curve_bytes = 48;
        else
            return false;
        return true;
    }
    return false;
}

/* A big number parameter of the key, big-endian: minimal (pad 0) or padded to pad bytes. */
static void add_bn_param(const EVP_PKEY *pkey, const char *name, int pad, buf_t *out)
{
    BIGNUM *bn = NULL;
    if (!EVP_PKEY_get_bn_param(pkey, name, &bn))
        die("jose: the key has no parameter %s", name);
    int len = pad ? pad : BN_num_bytes(bn);
    unsigned char *bytes = xmalloc((size_t)len + 1);
    if (BN_bn2binpad(bn, bytes, len) < 0)
        die("jose: parameter %s does not fit %d bytes", name, len);
    b64url_encode(bytes, (size_t)len, out);
    free(bytes);
    BN_free(bn);
}

/* The public members as base64url texts: n and e, or x and y. */
static void public_members(const jose_key_t *key, buf_t *first, buf_t *second)
{
    if (key->kty == KTY_RSA) {
        add_bn_param(key->pkey, OSSL_PKEY_PARAM_RSA_N, 0, first);
        add_bn_param(key->pkey, OSSL_PKEY_PARAM_RSA_E, 0, second);
    } else {
        add_bn_param(key->pkey, OSSL_PKEY_PARAM_EC_PUB_X, key->curve_bytes, first);
        add_bn_param(key->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, key->curve_bytes, second);
    }
}

void jose_key_thumbprint(const jose_key_t *key, buf_t *out)
{
    buf_t a = BUF_INIT, b = BUF_INIT, canonical = BUF_INIT;
    public_members(key, &a, &b);
    /* the required members in lexicographic order, no white space (RFC 7638 section 3.2);
     * base64url needs no JSON escaping */
    if (key->kty == KTY_RSA)
        buf_addf(&canonical, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", b.ptr, a.ptr);
    else
        buf_addf(&canonical, "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
                 curve_jwk_name(key->curve_bytes), a.ptr, b.ptr);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    if (!EVP_Digest(canonical.ptr, canonical.len, digest, &digest_len, EVP_sha256(), NULL))
        die("jose: SHA-256 failed");
    b64url_encode(digest, digest_len, out);
    buf_release(&a);
    buf_release(&b);
    buf_release(&canonical);
}

json_t *jose_key_public_jwk(const jose_key_t *key, const char *alg)
{
    buf_t a = BUF_INIT, b = BUF_INIT;
    public_members(key, &a, &b);
    json_t *jwk = json_object();
    json_object_set_new(jwk, "kty", json_string(key->kty == KTY_RSA ? "RSA" : "EC"));
    if (key->kid)
        json_object_set_new(jwk, "kid", json_string(key->kid));
    json_object_set_new(jwk, "use", json_string("sig"));
    if (alg)
        json_object_set_new(jwk, "alg", json_string(alg));
    if (key->kty == KTY_RSA) {
        json_object_set_new(jwk, "n", json_string(a.ptr));
        json_object_set_new(jwk, "e", json_string(b.ptr));
    } else {
        json_object_set_new(jwk, "crv", json_string(curve_jwk_name(key->curve_bytes)));
        json_object_set_new(jwk, "x", json_string(a.ptr));
        json_object_set_new(jwk, "y", json_string(b.ptr));
    }
    buf_release(&a);
    buf_release(&b);
    return jwk;
}

static jose_key_t *wrap(EVP_PKEY *pkey)
{
    jose_key_t *key = xcalloc(1, sizeof(*key));
    key->pkey = pkey;
    return key;
}

static void set_thumbprint_kid(jose_key_t *key)
{
    buf_t kid = BUF_INIT;
    jose_key_thumbprint(key, &kid);
    free(key->kid);
    key->kid = buf_detach(&kid, NULL);
}

jose_key_t *jose_key_generate(jose_alg_t alg)
{
    EVP_PKEY *pkey =
        algs[alg].kty == KTY_RSA
            ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)MIN_RSA_BITS)
            : EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve_openssl_name(algs[alg].curve_bytes));
    if (!pkey)
        die("jose: could not generate a %s key", jose_alg_name(alg));
    jose_key_t *key = wrap(pkey);
    if (!classify(key))
        die("jose: the generated key is not usable for %s", jose_alg_name(alg));
    set_thumbprint_kid(key);
    return key;
}

status_t jose_key_from_pem(const char *pem, size_t len, jose_key_t **out, err_t *err)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        die("jose: out of memory");
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!pkey)
        return err_set(err, ERR_INVALID, NULL, "the text is not an unencrypted PEM private key");
    jose_key_t *key = wrap(pkey);
    if (!classify(key)) {
        jose_key_free(key);
        return err_set(err, ERR_INVALID, NULL,
                       "the PEM key is not an RSA key of 2048 bits or more, nor a P-256 or "
                       "P-384 key");
    }
    set_thumbprint_kid(key);
    *out = key;
    return ERR_OK;
}

void jose_key_to_pem(const jose_key_t *key, buf_t *out)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio || !PEM_write_bio_PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL, NULL))
        die("jose: could not write the private key");
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    buf_add(out, data, (size_t)n);
    BIO_free(bio);
}

/* A base64url member of a JWK, decoded; false when missing or malformed. */
static bool jwk_bytes(const json_t *jwk, const char *name, buf_t *out)
{
    const json_t *v = json_object_get(jwk, name);
    return v && jv_is_string(v) && json_string_length(v) > 0 &&
           b64url_decode(json_string_value(v), json_string_length(v), out);
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

/* A public key from one JWK; NULL with the reason in *why when it cannot be used. */
static jose_key_t *key_from_jwk(const json_t *jwk, const char **why)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const char *use = json_string_value(json_object_get(jwk, "use"));
    const json_t *alg_value = json_object_get(jwk, "alg");
    const json_t *kid_value = json_object_get(jwk, "kid");
    jose_alg_t alg = JOSE_RS256;
    if (!json_is_object(jwk) || !kty) {
        *why = "it has no kty";
        return NULL;
    }
    if (use && strcmp(use, "sig") != 0) {
        *why = "its use is not \"sig\"";
        return NULL;
    }
    if (alg_value &&
        (!jv_is_string(alg_value) || !jose_alg_parse(json_string_value(alg_value), &alg))) {
        *why = "its alg is not RS256, RS384, ES256 or ES384";
        return NULL;
    }
    if (kid_value && !jv_is_string(kid_value)) {
        *why = "its kid is not a string";
        return NULL;
    }
    buf_t a = BUF_INIT, b = BUF_INIT;
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    BIGNUM *n = NULL, *e = NULL;
    if (strcmp(kty, "RSA") == 0) {
        if (!jwk_bytes(jwk, "n", &a) || !jwk_bytes(jwk, "e", &b)) {
            *why = "its n or e is missing or not base64url";
            goto out;
        }
        n = BN_bin2bn((const unsigned char *)a.ptr, (int)a.len, NULL);
        e = BN_bin2bn((const unsigned char *)b.ptr, (int)b.len, NULL);
        if (!n || !e || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
            die("jose: out of memory");
        pkey = from_params("RSA", bld);
    } else if (strcmp(kty, "EC") == 0) {
        const char *crv = json_string_value(json_object_get(jwk, "crv"));
        int size = crv && strcmp(crv, "P-256") == 0   ? 32
                   : crv && strcmp(crv, "P-384") == 0 ? 48
                                                      : 0;
        if (size == 0) {
            *why = "its crv is not P-256 or P-384";
            goto out;
        }
        /* the uncompressed point: 0x04 || x || y, each exactly the curve's size */
        buf_addch(&a, 0x04);
        if (!jwk_bytes(jwk, "x", &a) || !jwk_bytes(jwk, "y", &b) || a.len != (size_t)size + 1 ||
            b.len != (size_t)size) {
            *why = "its x or y is missing, not base64url or not the curve's size";
            goto out;
        }
        buf_add(&a, b.ptr, b.len);
        if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                             curve_openssl_name(size), 0) ||
            !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, a.ptr, a.len))
            die("jose: out of memory");
        pkey = from_params("EC", bld);
    } else {
        *why = "its kty is not RSA or EC";
        goto out;
    }
    if (!pkey)
        *why = "its parameters do not make a public key (for EC: a point on the curve)";
out:
    BN_free(n);
    BN_free(e);
    OSSL_PARAM_BLD_free(bld);
    buf_release(&a);
    buf_release(&b);
    if (!pkey)
        return NULL;
    jose_key_t *key = wrap(pkey);
    if (!classify(key)) {
        *why = "it is an RSA key of fewer than 2048 bits";
        jose_key_free(key);
        return NULL;
    }
    if (alg_value) {
        key->has_alg = true;
        key->alg = alg;
        if (!jose_key_fits(key, alg)) {
            *why = "its alg does not fit its kty or crv";
            jose_key_free(key);
            return NULL;
        }
    }
    if (kid_value)
        key->kid = xstrdup(json_string_value(kid_value));
    return key;
}

status_t jose_jwks_parse(const char *text, size_t len, jose_jwks_t **out, err_t *err)
{
    err_t parse_err = ERR_INIT;
    json_t *root = jv_parse(text, len, &parse_err);
    if (!root) {
        status_t rc =
            err_set(err, ERR_INVALID, NULL, "the JWK Set is not JSON: %s", err_message(&parse_err));
        err_release(&parse_err);
        return rc;
    }
    const json_t *keys = json_object_get(root, "keys");
    if (!json_is_object(root) || !json_is_array(keys)) {
        json_decref(root);
        return err_set(err, ERR_INVALID, NULL,
                       "the JWK Set is not a JSON object with a \"keys\" array");
    }
    jose_jwks_t *jwks = xcalloc(1, sizeof(*jwks));
    jwks->keys = xcalloc(json_array_size(keys) + 1, sizeof(*jwks->keys));
    size_t index;
    const json_t *jwk;
    json_array_foreach(keys, index, jwk)
    {
        const char *why = "it is not a JSON object";
        jose_key_t *key = json_is_object(jwk) ? key_from_jwk(jwk, &why) : NULL;
        if (key) {
            jwks->keys[jwks->n++] = key;
        } else {
            const char *kid = json_string_value(json_object_get(jwk, "kid"));
            buf_t expression = BUF_INIT;
            buf_addf(&expression, "keys[%zu]", index);
            err_add(err, ERR_INVALID, SEVERITY_WARNING, expression.ptr,
                    "key %zu%s%s%s of the JWK Set is left out: %s", index, kid ? " (kid \"" : "",
                    kid ? kid : "", kid ? "\")" : "", why);
            buf_release(&expression);
        }
    }
    json_decref(root);
    *out = jwks;
    return ERR_OK;
}

size_t jose_jwks_count(const jose_jwks_t *jwks)
{
    return jwks->n;
}

const jose_key_t *jose_jwks_key(const jose_jwks_t *jwks, size_t index)
{
    return index < jwks->n ? jwks->keys[index] : NULL;
}

void jose_jwks_free(jose_jwks_t *jwks)
{
    if (!jwks)
        return;
    for (size_t i = 0; i < jwks->n; i++)
        jose_key_free(jwks->keys[i]);
    free(jwks->keys);
    free(jwks);
}

/* ECDSA r||s (2 * size bytes) to DER; NULL-free result in *out, or false. */
static bool raw_to_der(const unsigned char *raw, int size, unsigned char **out, int *out_len)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, size, NULL), *s = BN_bin2bn(raw + size, size, NULL);
    if (!sig || !r || !s || !ECDSA_SIG_set0(sig, r, s))
        die("jose: out of memory");
    *out = NULL;
    *out_len = i2d_ECDSA_SIG(sig, out);
    ECDSA_SIG_free(sig);
    return *out_len > 0;
}

static bool verify_signature(const jose_key_t *key, jose_alg_t alg, const char *input,
                             size_t input_len, const unsigned char *sig, size_t sig_len)
{
    const unsigned char *der = sig;
    size_t der_len = sig_len;
    unsigned char *converted = NULL;
    if (key->kty == KTY_EC) {
        int converted_len = 0;
        if (sig_len != 2 * (size_t)key->curve_bytes ||
            !raw_to_der(sig, key->curve_bytes, &converted, &converted_len))
            return false;
        der = converted;
        der_len = (size_t)converted_len;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok =
        ctx &&
        EVP_DigestVerifyInit_ex(ctx, NULL, algs[alg].digest, NULL, NULL, key->pkey, NULL) == 1 &&
        EVP_DigestVerify(ctx, der, der_len, (const unsigned char *)input, input_len) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(converted);
    return ok;
}

status_t jose_sign(const jose_key_t *key, jose_alg_t alg, const json_t *payload, buf_t *out,
                   err_t *err)
{
    if (!jose_key_fits(key, alg))
        return err_set(err, ERR_INVALID, NULL, "the key cannot sign %s", jose_alg_name(alg));
    if (!json_is_object(payload))
        return err_set(err, ERR_INVALID, NULL, "a token's payload must be a JSON object");
    buf_t input = BUF_INIT, text = BUF_INIT;
    json_t *header = json_object();
    json_object_set_new(header, "alg", json_string(jose_alg_name(alg)));
    json_object_set_new(header, "typ", json_string("JWT"));
    if (key->kid)
        json_object_set_new(header, "kid", json_string(key->kid));
    jv_dump(header, &text);
    json_decref(header);
    b64url_encode(text.ptr, text.len, &input);
    buf_addch(&input, '.');
    buf_reset(&text);
    jv_dump(payload, &text);
    b64url_encode(text.ptr, text.len, &input);

    status_t rc = ERR_OK;
    size_t sig_len = 0;
    unsigned char *sig = NULL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx ||
        EVP_DigestSignInit_ex(ctx, NULL, algs[alg].digest, NULL, NULL, key->pkey, NULL) != 1 ||
        EVP_DigestSign(ctx, NULL, &sig_len, (const unsigned char *)input.ptr, input.len) != 1) {
        rc = err_set(err, ERR_INVALID, NULL, "the key cannot sign: it holds no private key");
        goto out;
    }
    sig = xmalloc(sig_len);
    if (EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *)input.ptr, input.len) != 1) {
        rc = err_set(err, ERR_INVALID, NULL, "the key cannot sign: it holds no private key");
        goto out;
    }
    buf_addch(&input, '.');
    if (key->kty == KTY_EC) {
        /* DER to r||s, each padded to the curve's size */
        const unsigned char *p = sig;
        ECDSA_SIG *ecdsa = d2i_ECDSA_SIG(NULL, &p, (long)sig_len);
        if (!ecdsa)
            die("jose: OpenSSL made an ECDSA signature it cannot read");
        unsigned char raw[96];
        const BIGNUM *r = NULL, *s = NULL;
        ECDSA_SIG_get0(ecdsa, &r, &s);
        if (BN_bn2binpad(r, raw, key->curve_bytes) < 0 ||
            BN_bn2binpad(s, raw + key->curve_bytes, key->curve_bytes) < 0)
            die("jose: an ECDSA signature larger than its curve");
        ECDSA_SIG_free(ecdsa);
        b64url_encode(raw, 2 * (size_t)key->curve_bytes, &input);
    } else {
        b64url_encode(sig, sig_len, &input);
    }
    buf_add(out, input.ptr, input.len);
out:
    EVP_MD_CTX_free(ctx);
    free(sig);
    buf_release(&input);
    buf_release(&text);
    return rc;
}

static void decref(void *value)
{
    json_decref(value);
}

/* Decodes one base64url part and parses it as a JSON object, owned by the arena. */
static json_t *json_part(arena_t *arena, const char *text, size_t len, const char *what, err_t *err)
{
    buf_t bytes = BUF_INIT;
    if (!b64url_decode(text, len, &bytes)) {
        buf_release(&bytes);
        err_set(err, ERR_UNAUTHORIZED, NULL, "token %s is not base64url", what);
        return NULL;
    }
    err_t parse_err = ERR_INIT;
    json_t *value = jv_parse(bytes.ptr, bytes.len, &parse_err);
    buf_release(&bytes);
    if (!value) {
        err_set(err, ERR_UNAUTHORIZED, NULL, "token %s is not JSON: %s", what,
                err_message(&parse_err));
        err_release(&parse_err);
        return NULL;
    }
    arena_cleanup_add(arena, decref, value);
    if (!json_is_object(value)) {
        err_set(err, ERR_UNAUTHORIZED, NULL, "token %s is not a JSON object", what);
        return NULL;
    }
    return value;
}

status_t jose_verify(arena_t *arena, const char *token, size_t len, const jose_jwks_t *keys,
                     const jose_expect_t *expect, jose_token_t *out, err_t *err)
{
    if (len > JOSE_MAX_TOKEN)
        return err_set(err, ERR_UNAUTHORIZED, NULL, "token is longer than %d bytes",
                       JOSE_MAX_TOKEN);
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
        return err_set(err, ERR_UNAUTHORIZED, NULL,
                       "token is not a compact JWS: it must be three base64url parts separated "
                       "by dots");
    json_t *header = json_part(arena, token, (size_t)(dot1 - token), "header", err);
    if (!header)
        return err->code;
    const json_t *alg_value = json_object_get(header, "alg");
    if (!alg_value || !jv_is_string(alg_value))
        return err_set(err, ERR_UNAUTHORIZED, NULL, "token header has no alg");
    const char *alg_name = json_string_value(alg_value);
    jose_alg_t alg;
    if (strcmp(alg_name, "none") == 0)
        return err_set(err, ERR_UNAUTHORIZED, NULL,
                       "token is unsigned (alg \"none\"), which is never accepted");
    if (!jose_alg_parse(alg_name, &alg))
        return err_set(err, ERR_UNAUTHORIZED, NULL,
                       "token alg \"%s\" is not accepted: use RS256, RS384, ES256 or ES384",
                       alg_name);
    if (json_object_get(header, "crit"))
        return err_set(err, ERR_UNAUTHORIZED, NULL,
                       "token header has crit extensions, which are not understood");
    const json_t *kid_value = json_object_get(header, "kid");
    if (kid_value && !jv_is_string(kid_value))
        return err_set(err, ERR_UNAUTHORIZED, NULL, "token header kid is not a string");
    const char *kid = kid_value ? json_string_value(kid_value) : NULL;
    json_t *claims = json_part(arena, dot1 + 1, (size_t)(dot2 - dot1 - 1), "payload", err);
    if (!claims)
        return err->code;
    buf_t sig = BUF_INIT;
    if (!b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), &sig)) {
        buf_release(&sig);
        return err_set(err, ERR_UNAUTHORIZED, NULL, "token signature is not base64url");
    }

    const jose_key_t *verified = NULL;
    size_t tried = 0;
    for (size_t i = 0; i < keys->n && !verified; i++) {
        const jose_key_t *key = keys->keys[i];
        if (kid && (!key->kid || strcmp(key->kid, kid) != 0))
            continue;
        if (!jose_key_fits(key, alg)) {
            if (kid) {
                buf_release(&sig);
                return err_set(err, ERR_UNAUTHORIZED, NULL,
                               "key \"%s\" cannot verify %s: it is %s key%s%s", kid, alg_name,
                               key->kty == KTY_RSA ? "an RSA" : "an EC",
                               key->kty == KTY_EC ? " on " : "",
                               key->kty == KTY_EC ? curve_jwk_name(key->curve_bytes) : "");
            }
            continue;
        }
        tried++;
        if (verify_signature(key, alg, token, (size_t)(dot2 - token),
                             (const unsigned char *)sig.ptr, sig.len))
            verified = key;
    }
    buf_release(&sig);
    if (!verified) {
        if (tried > 0)
            return err_set(err, ERR_UNAUTHORIZED, NULL, "token signature does not verify");
        if (kid)
            return err_set(err, ERR_UNAUTHORIZED, NULL, "no key in the key set has kid \"%s\"",
                           kid);
        return err_set(err, ERR_UNAUTHORIZED, NULL, "no key in the key set can verify %s",
                       alg_name);
    }
    status_t rc = jose_check_claims(claims, expect, err);
    if (rc != ERR_OK)
        return rc;
    out->alg = alg;
    out->kid = kid ? arena_strdup(arena, kid) : NULL;
    out->header = header;
    out->claims = claims;
    out->key = verified;
    return ERR_OK;
}

/* A NumericDate claim: absent (false, no error), a number, or an error. */
static bool time_claim(const json_t *claims, const char *name, int64_t *out, bool *bad)
{
    const json_t *v = json_object_get(claims, name);
    if (!v)
        return false;
    if (!jv_is_number(v)) {
        *bad = true;
        return false;
    }
    double d = jv_number_value(v);
    *out = d > 9e15    ? INT64_C(9000000000000000)
           : d < -9e15 ? -INT64_C(9000000000000000)
                       : (int64_t)d;
    return true;
}

static bool audience_has(const json_t *aud, const char *expected)
{
    if (jv_is_string(aud))
        return strcmp(json_string_value(aud), expected) == 0;
    size_t i;
    const json_t *item;
    json_array_foreach(aud, i, item)
    {
        if (jv_is_string(item) && strcmp(json_string_value(item), expected) == 0)
            return true;
    }
    return false;
}

static status_t string_claim(const json_t *claims, const char *name, const char *expected,
                             const char *what, err_t *err)
{
    const json_t *v = json_object_get(claims, name);
    if (!v)
        return err_set(err, ERR_UNAUTHORIZED, NULL, "token has no %s claim (%s)", name, what);
    if (!jv_is_string(v))
        return err_set(err, ERR_UNAUTHORIZED, NULL, "token %s claim is not a string", name);
    if (expected && strcmp(json_string_value(v), expected) != 0)
        return err_set(err, ERR_UNAUTHORIZED, NULL, "token %s \"%s\" is not the expected \"%s\"",
                       name, json_string_value(v), expected);
    return ERR_OK;
}

status_t jose_check_claims(const json_t *claims, const jose_expect_t *expect, err_t *err)
{
    int64_t now = expect->now, leeway = expect->leeway, t = 0;
    bool bad = false;
    if (time_claim(claims, "exp", &t, &bad)) {
        if (now >= t + leeway)
            return err_set(err, ERR_UNAUTHORIZED, NULL,
                           "token has expired: exp %lld is before the current time %lld",
                           (long long)t, (long long)now);
    } else if (bad) {
        return err_set(err, ERR_UNAUTHORIZED, NULL, "token exp claim is not a number");
    } else if (expect->require_exp) {
        return err_set(err, ERR_UNAUTHORIZED, NULL, "token has no exp claim (expiry time)");
    }
    if (time_claim(claims, "nbf", &t, &bad)) {
        if (now + leeway < t)
            return err_set(err, ERR_UNAUTHORIZED, NULL,
                           "token is not valid yet: nbf %lld is after the current time %lld",
                           (long long)t, (long long)now);
    } else if (bad) {
        return err_set(err, ERR_UNAUTHORIZED, NULL, "token nbf claim is not a number");
    }
    if (time_claim(claims, "iat", &t, &bad)) {
        if (t > now + leeway)
            return err_set(err, ERR_UNAUTHORIZED, NULL,
                           "token was issued in the future: iat %lld is after the current time "
                           "%lld",
                           (long long)t, (long long)now);
    } else if (bad) {
        return err_set(err, ERR_UNAUTHORIZED, NULL, "token iat claim is not a number");
    }
    status_t rc;
    if (expect->issuer && (rc = string_claim(claims, "iss", expect->issuer, "issuer", err)))
        return rc;
    if (expect->subject && (rc = string_claim(claims, "sub", expect->subject, "subject", err)))
        return rc;
    if (expect->audience) {
        const json_t *aud = json_object_get(claims, "aud");
        if (!aud)
            return err_set(err, ERR_UNAUTHORIZED, NULL, "token has no aud claim (audience)");
        if (!jv_is_string(aud) && !json_is_array(aud))
            return err_set(err, ERR_UNAUTHORIZED, NULL,
                           "token aud claim is neither a string nor an array of strings");
        if (!audience_has(aud, expect->audience))
            return err_set(err, ERR_UNAUTHORIZED, NULL, "token audience does not include \"%s\"",
                           expect->audience);
    }
    if (expect->require_jti && (rc = string_claim(claims, "jti", NULL, "token id", err)))
        return rc;
    return ERR_OK;
}
