/*
 * b64.c - base64url and base32 without padding (b64.h). Both are one bit-accumulator loop over
 * an alphabet; decoding checks that the bits left over at the end are zero and fewer than a
 * whole byte, which rejects every non-canonical text.
 */
#include "base/b64.h"

#include <stdint.h>

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char b32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* bits: 6 for base64, 5 for base32. */
static void encode(const char *alphabet, unsigned bits, const void *data, size_t len, buf_t *out)
{
    const unsigned char *p = data;
    uint32_t acc = 0;
    unsigned have = 0;
    unsigned mask = (1u << bits) - 1;
    buf_grow(out, (len * 8 + bits - 1) / bits);
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | p[i];
        have += 8;
        while (have >= bits) {
            have -= bits;
            buf_addch(out, alphabet[(acc >> have) & mask]);
        }
    }
    if (have > 0)
        buf_addch(out, alphabet[(acc << (bits - have)) & mask]);
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

static int b32_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a';
    if (c >= '2' && c <= '7')
        return c - '2' + 26;
    return -1;
}

static bool decode(int (*value)(unsigned char), unsigned bits, const char *text, size_t len,
                   buf_t *out)
{
    size_t start = out->len;
    uint32_t acc = 0;
    unsigned have = 0;
    buf_grow(out, len * bits / 8);
    for (size_t i = 0; i < len; i++) {
        int v = value((unsigned char)text[i]);
        if (v < 0)
            goto bad;
        acc = (acc << bits) | (uint32_t)v;
        have += bits;
        if (have >= 8) {
            have -= 8;
            buf_addch(out, (char)((acc >> have) & 0xff));
        }
    }
    /* what is left must be padding bits of the last character: fewer than one character's
     * worth and all zero (a length such as 1 mod 4 leaves a whole character over) */
    if (have >= bits || (acc & ((1u << have) - 1)) != 0)
        goto bad;
    return true;
bad:
    buf_setlen(out, start);
    return false;
}

void b64url_encode(const void *data, size_t len, buf_t *out)
{
    encode(b64url_alphabet, 6, data, len, out);
}

bool b64url_decode(const char *text, size_t len, buf_t *out)
{
    return decode(b64url_value, 6, text, len, out);
}

void b32_encode(const void *data, size_t len, buf_t *out)
{
    encode(b32_alphabet, 5, data, len, out);
}

bool b32_decode(const char *text, size_t len, buf_t *out)
{
    return decode(b32_value, 5, text, len, out);
}
