/*
 * arena.h - one arena per unit of work (an HTTP request, a CLI command, a writer batch).
 *
 * Everything allocated for the unit comes from its arena and is freed in one call, so error
 * paths cannot leak. Non-memory resources (jansson references, statements, descriptors) are
 * released through the cleanup list, last registered first. With CONCERTO_ARENA_DEBUG=1 in the
 * environment every allocation is its own malloc, so ASan and valgrind see each object.
 */
#ifndef CONCERTO_BASE_ARENA_H
#define CONCERTO_BASE_ARENA_H

#include <stdarg.h>
#include <stddef.h>

typedef struct arena_block arena_block_t;
typedef struct arena_cleanup arena_cleanup_t;

typedef struct {
    arena_block_t *blocks;
    arena_cleanup_t *cleanups;
    size_t block_size;
    int debug;
} arena_t;

typedef void (*arena_cleanup_fn)(void *data);

void arena_init(arena_t *arena);
/* Runs the cleanups and frees every allocation; the arena can be used again after init. */
void arena_release(arena_t *arena);

/* Memory aligned for any type; valid until arena_release. Never NULL. */
void *arena_alloc(arena_t *arena, size_t size);
void *arena_zalloc(arena_t *arena, size_t size);
char *arena_strndup(arena_t *arena, const char *s, size_t n);
char *arena_strdup(arena_t *arena, const char *s);
char *arena_printf(arena_t *arena, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Registers fn(data) to run at arena_release. */
void arena_cleanup_add(arena_t *arena, arena_cleanup_fn fn, void *data);

#endif
