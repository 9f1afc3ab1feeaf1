/*
 * url.c - percent-decoding and query strings (url.h).
 */
#include <string.h>

#include "base/url.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *url_decode(arena_t *arena, const char *s, size_t len, bool plus_is_space, size_t *out_len)
{
    char *out = arena_alloc(arena, len + 1), *p = out;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+' && plus_is_space) {
            *p++ = ' ';
        } else if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *p++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            *p++ = s[i];
        }
    }
    *p = '\0';
    if (out_len)
        *out_len = (size_t)(p - out);
    return out;
}

size_t url_query_split(arena_t *arena, const char *query, size_t len, url_pair_t **out)
{
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        if (query[i] == '&')
            cap++;
    url_pair_t *pairs = arena_alloc(arena, cap * sizeof(*pairs));
    size_t n = 0;
    const char *q = query, *end = query + len;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        if (!amp)
            amp = end;
        if (amp > q) {
            const char *eq = memchr(q, '=', (size_t)(amp - q));
            url_pair_t *pair = &pairs[n++];
            pair->name = url_decode(arena, q, (size_t)((eq ? eq : amp) - q), true, &pair->name_len);
            if (eq) {
                pair->value =
                    url_decode(arena, eq + 1, (size_t)(amp - eq - 1), true, &pair->value_len);
            } else {
                pair->value = "";
                pair->value_len = 0;
            }
        }
        q = amp + 1;
    }
    *out = pairs;
    return n;
}

void url_encode(buf_t *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            buf_addch(out, (char)c);
        } else {
            buf_addch(out, '%');
            buf_addch(out, hex[c >> 4]);
            buf_addch(out, hex[c & 15]);
        }
    }
}
