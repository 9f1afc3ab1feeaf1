/*
 * url.h - percent-decoding of URL parts and splitting of query strings.
 *
 * Query strings and application/x-www-form-urlencoded bodies decode '+' as a space; path
 * segments do not. A '%' not followed by two hex digits is kept as it is.
 */
#ifndef CONCERTO_BASE_URL_H
#define CONCERTO_BASE_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"

/* s (len bytes) percent-decoded into arena, NUL-terminated; *out_len (may be NULL) its
 * length, which a decoded "%00" makes differ from strlen. */
char *url_decode(arena_t *arena, const char *s, size_t len, bool plus_is_space, size_t *out_len);

/* One name=value pair of a query string, decoded; a pair without '=' has the value "". */
typedef struct {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} url_pair_t;

/* A pair of NUL-terminated strings (borrowed), for queries built in code. */
static inline url_pair_t url_pair(const char *name, const char *value)
{
    return (url_pair_t){name, strlen(name), value, strlen(value)};
}

/*
 * Splits query (len bytes, without the '?') at '&' and each part at its first '=', decoding
 * both sides ('+' as a space); empty parts are skipped. *out is an array in arena; returns
 * how many pairs it holds.
 */
size_t url_query_split(arena_t *arena, const char *query, size_t len, url_pair_t **out);

/* Appends s percent-encoded but for RFC 3986's unreserved characters (A-Z a-z 0-9 - . _ ~):
 * a query value, a path segment, or a part of a URI. */
void url_encode(buf_t *out, const char *s);

#endif
