/*
 * mem.h - allocation that cannot fail: on exhaustion the process aborts with a message, as
 * PostgreSQL's palloc and h2o do. Sizes that come from input are capped at the boundary, so
 * exhaustion here means the machine is out of memory, not that a client sent too much.
 */
#ifndef CONCERTO_BASE_MEM_H
#define CONCERTO_BASE_MEM_H

#include <stdarg.h>
#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Formats into a new string the caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap);

/* Aborts with a message: for programming bugs and exhaustion, never for bad input. */
_Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
