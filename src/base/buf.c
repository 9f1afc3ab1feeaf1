/*
 * buf.c - growable buffer.
 */
#include "base/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

char buf_empty_[1];

void buf_init(buf_t *buf, size_t max)
{
    buf->ptr = buf_empty_;
    buf->len = buf->cap = 0;
    buf->max = max;
    buf->toobig = false;
}

void buf_release(buf_t *buf)
{
    if (buf->cap)
        free(buf->ptr);
    buf_init(buf, buf->max);
}

void buf_reset(buf_t *buf)
{
    buf->len = 0;
    buf->toobig = false;
    if (buf->cap)
        buf->ptr[0] = '\0';
}

void buf_grow(buf_t *buf, size_t extra)
{
    if (buf->cap && buf->len + extra < buf->cap)
        return;
    size_t want = buf->len + extra + 1;
    size_t cap = buf->cap ? buf->cap : 64;
    while (cap < want)
        cap *= 2;
    if (buf->cap) {
        buf->ptr = xrealloc(buf->ptr, cap);
    } else {
        buf->ptr = xmalloc(cap);
        buf->ptr[0] = '\0';
    }
    buf->cap = cap;
}

static bool fits(buf_t *buf, size_t len)
{
    if (buf->toobig)
        return false;
    if (buf->max && buf->len + len > buf->max) {
        buf->toobig = true;
        return false;
    }
    return true;
}

void buf_add(buf_t *buf, const void *data, size_t len)
{
    if (!fits(buf, len))
        return;
    buf_grow(buf, len);
    memcpy(buf->ptr + buf->len, data, len);
    buf->len += len;
    buf->ptr[buf->len] = '\0';
}

void buf_addstr(buf_t *buf, const char *s)
{
    buf_add(buf, s, strlen(s));
}

void buf_addch(buf_t *buf, char c)
{
    buf_add(buf, &c, 1);
}

void buf_vaddf(buf_t *buf, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        die("bad format string \"%s\"", fmt);
    if (!fits(buf, (size_t)n))
        return;
    buf_grow(buf, (size_t)n);
    vsnprintf(buf->ptr + buf->len, (size_t)n + 1, fmt, ap);
    buf->len += (size_t)n;
}

void buf_addf(buf_t *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vaddf(buf, fmt, ap);
    va_end(ap);
}

void buf_add_json_escaped(buf_t *buf, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        buf_add(buf, s + start, i - start);
        start = i + 1;
        switch (c) {
        case '"': buf_add(buf, "\\\"", 2); break;
        case '\\': buf_add(buf, "\\\\", 2); break;
        case '\n': buf_add(buf, "\\n", 2); break;
        case '\r': buf_add(buf, "\\r", 2); break;
        case '\t': buf_add(buf, "\\t", 2); break;
        case '\b': buf_add(buf, "\\b", 2); break;
        case '\f': buf_add(buf, "\\f", 2); break;
        default: {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_add(buf, esc, 6);
        }
        }
    }
    buf_add(buf, s + start, len - start);
}

void buf_setlen(buf_t *buf, size_t len)
{
    if (len > buf->len && (!buf->cap || len >= buf->cap))
        die("buf_setlen past capacity");
    buf->len = len;
    if (buf->cap)
        buf->ptr[len] = '\0';
}

char *buf_detach(buf_t *buf, size_t *out_len)
{
    char *p = buf->cap ? buf->ptr : xstrdup("");
    if (out_len)
        *out_len = buf->len;
    buf_init(buf, buf->max);
    return p;
}
