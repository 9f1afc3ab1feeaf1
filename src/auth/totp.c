/*
 * totp.c - HOTP and TOTP over OpenSSL's HMAC (totp.h).
 */
#include "auth/totp.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "auth/random.h"
#include "base/b64.h"
#include "base/mem.h"

const totp_params_t totp_default = {TOTP_SHA1, 6, 30};

static const EVP_MD *digest(totp_hash_t hash)
{
    switch (hash) {
    case TOTP_SHA1: return EVP_sha1();
    case TOTP_SHA256: return EVP_sha256();
    case TOTP_SHA512: return EVP_sha512();
    }
    die("totp: unknown hash %d", (int)hash);
}

static const char *hash_name(totp_hash_t hash)
{
    switch (hash) {
    case TOTP_SHA1: return "SHA1";
    case TOTP_SHA256: return "SHA256";
    case TOTP_SHA512: return "SHA512";
    }
    die("totp: unknown hash %d", (int)hash);
}

void totp_secret_new(unsigned char out[TOTP_SECRET_SIZE])
{
    auth_random_bytes(out, TOTP_SECRET_SIZE);
}

void totp_hotp(totp_hash_t hash, const unsigned char *key, size_t key_len, uint64_t counter,
               unsigned digits, char out[TOTP_CODE_SIZE])
{
    if (digits < 6 || digits > 8)
        die("totp: %u digits (6 to 8 are supported)", digits);
    unsigned char message[8];
    for (int i = 7; i >= 0; i--) {
        message[i] = (unsigned char)(counter & 0xff);
        counter >>= 8;
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(digest(hash), key, (int)key_len, message, sizeof(message), mac, &mac_len))
        die("totp: HMAC failed");
    /* dynamic truncation (RFC 4226 section 5.3): 31 bits at the offset the last nibble gives */
    unsigned offset = mac[mac_len - 1] & 0x0f;
    uint32_t binary = ((uint32_t)(mac[offset] & 0x7f) << 24) | ((uint32_t)mac[offset + 1] << 16) |
                      ((uint32_t)mac[offset + 2] << 8) | (uint32_t)mac[offset + 3];
    uint32_t modulus = 1;
    for (unsigned i = 0; i < digits; i++)
        modulus *= 10;
    uint32_t value = binary % modulus;
    for (int i = (int)digits - 1; i >= 0; i--) {
        out[i] = (char)('0' + value % 10);
        value /= 10;
    }
    out[digits] = '\0';
    OPENSSL_cleanse(mac, sizeof(mac));
}

int64_t totp_step(const totp_params_t *params, int64_t unix_time)
{
    return unix_time / (int64_t)params->period;
}

void totp_code(const totp_params_t *params, const unsigned char *key, size_t key_len,
               int64_t unix_time, char out[TOTP_CODE_SIZE])
{
    totp_hotp(params->hash, key, key_len, (uint64_t)totp_step(params, unix_time), params->digits,
              out);
}

bool totp_verify(const totp_params_t *params, const unsigned char *key, size_t key_len,
                 const char *code, size_t len, int64_t unix_time, int64_t last_step,
                 int64_t *out_step)
{
    if (len != params->digits)
        return false;
    for (size_t i = 0; i < len; i++)
        if (code[i] < '0' || code[i] > '9')
            return false;
    int64_t now = totp_step(params, unix_time);
    int64_t matched = -1;
    /* every candidate is computed and compared, so the time taken does not say which matched */
    for (int64_t s = now - 1; s <= now + 1; s++) {
        if (s < 0)
            continue;
        char expected[TOTP_CODE_SIZE];
        totp_hotp(params->hash, key, key_len, (uint64_t)s, params->digits, expected);
        int64_t equal = CRYPTO_memcmp(expected, code, len) == 0;
        int64_t usable = s > last_step;
        matched = (equal & usable) ? s : matched;
        OPENSSL_cleanse(expected, sizeof(expected));
    }
    if (matched < 0)
        return false;
    *out_step = matched;
    return true;
}

/* RFC 3986 unreserved characters stay, every other byte is %XX. */
static void percent_encode(const char *s, buf_t *out)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            buf_addch(out, (char)*p);
        } else {
            buf_addch(out, '%');
            buf_addch(out, hex[*p >> 4]);
            buf_addch(out, hex[*p & 0x0f]);
        }
    }
}

status_t totp_uri(const totp_params_t *params, const unsigned char *secret, size_t secret_len,
                  const char *issuer, const char *account, buf_t *out, err_t *err)
{
    if (!*issuer || strchr(issuer, ':'))
        return err_set(err, ERR_VALUE, NULL,
                       "issuer \"%s\" cannot be used: it must be non-empty and without a colon",
                       issuer);
    if (!*account || strchr(account, ':'))
        return err_set(err, ERR_VALUE, NULL,
                       "account \"%s\" cannot be used: it must be non-empty and without a colon",
                       account);
    buf_addstr(out, "otpauth://totp/");
    percent_encode(issuer, out);
    buf_addch(out, ':');
    percent_encode(account, out);
    buf_addstr(out, "?secret=");
    b32_encode(secret, secret_len, out);
    buf_addstr(out, "&issuer=");
    percent_encode(issuer, out);
    if (params->hash != totp_default.hash)
        buf_addf(out, "&algorithm=%s", hash_name(params->hash));
    if (params->digits != totp_default.digits)
        buf_addf(out, "&digits=%u", params->digits);
    if (params->period != totp_default.period)
        buf_addf(out, "&period=%u", params->period);
    return ERR_OK;
}
