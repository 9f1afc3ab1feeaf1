/*
 * buf.h - the one growable byte buffer (strbuf's invariants).
 *
 * ptr is never NULL and always NUL-terminated; len excludes the NUL. A buffer may carry a
 * maximum size: an append that would pass it sets `toobig`, appends nothing more, and every
 * later append is ignored, so a writer checks once at the end (curl's dynbuf does the same).
 */
#ifndef CONCERTO_BASE_BUF_H
#define CONCERTO_BASE_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *ptr;
    size_t len, cap;
    size_t max; /* 0: no limit */
    bool toobig;
} buf_t;

extern char buf_empty_[];
/* clang-format off */
#define BUF_INIT {buf_empty_, 0, 0, 0, false}
/* clang-format on */

/* max 0 means unlimited. */
void buf_init(buf_t *buf, size_t max);
void buf_release(buf_t *buf);
/* Empties but keeps capacity. */
void buf_reset(buf_t *buf);
/* Makes room for at least `extra` more bytes. */
void buf_grow(buf_t *buf, size_t extra);
void buf_add(buf_t *buf, const void *data, size_t len);
void buf_addstr(buf_t *buf, const char *s);
void buf_addch(buf_t *buf, char c);
void buf_addf(buf_t *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vaddf(buf_t *buf, const char *fmt, va_list ap);
/* Appends s as the body of a JSON string (escaped, without the quotes). */
void buf_add_json_escaped(buf_t *buf, const char *s, size_t len);
void buf_setlen(buf_t *buf, size_t len);
/* Returns the heap string (the caller frees it) and leaves buf empty. */
char *buf_detach(buf_t *buf, size_t *out_len);

#endif
