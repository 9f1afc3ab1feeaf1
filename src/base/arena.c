/*
 * arena.c - bump allocation in blocks that double up to 64 KiB; large requests get a block of
 * their own. Blocks and cleanups are singly linked and released newest first.
 */
#include "base/arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

struct arena_block {
    arena_block_t *next;
    size_t used, size;
    max_align_t data[];
};

struct arena_cleanup {
    arena_cleanup_t *next;
    arena_cleanup_fn fn;
    void *data;
};

#define ALIGN_ (sizeof(max_align_t))
#define MAX_BLOCK_ ((size_t)64 * 1024)

void arena_init(arena_t *arena)
{
    const char *debug = getenv("CONCERTO_ARENA_DEBUG");
    arena->blocks = NULL;
    arena->cleanups = NULL;
    arena->block_size = 1024;
    arena->debug = debug && debug[0] == '1';
}

void arena_release(arena_t *arena)
{
    while (arena->cleanups) {
        arena_cleanup_t *c = arena->cleanups;
        arena->cleanups = c->next;
        c->fn(c->data);
    }
    while (arena->blocks) {
        arena_block_t *b = arena->blocks;
        arena->blocks = b->next;
        free(b);
    }
    arena->block_size = 1024;
}

static arena_block_t *new_block(size_t size)
{
    arena_block_t *b = xmalloc(sizeof(*b) + size);
    b->size = size;
    b->used = 0;
    return b;
}

void *arena_alloc(arena_t *arena, size_t size)
{
    size = (size + ALIGN_ - 1) & ~(ALIGN_ - 1);
    if (size == 0)
        size = ALIGN_;
    if (arena->debug || size > MAX_BLOCK_ / 4) {
        /* its own block, linked behind the current one so bumping goes on there */
        arena_block_t *b = new_block(size);
        b->used = size;
        if (arena->blocks) {
            b->next = arena->blocks->next;
            arena->blocks->next = b;
        } else {
            b->next = NULL;
            arena->blocks = b;
        }
        return b->data;
    }
    arena_block_t *b = arena->blocks;
    if (!b || b->size - b->used < size) {
        if (arena->block_size < MAX_BLOCK_)
            arena->block_size *= 2;
        /* a request larger than the next block size gets a block that holds it */
        b = new_block(arena->block_size < size ? size : arena->block_size);
        b->next = arena->blocks;
        arena->blocks = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    return p;
}

void *arena_zalloc(arena_t *arena, size_t size)
{
    void *p = arena_alloc(arena, size);
    memset(p, 0, size);
    return p;
}

char *arena_strndup(arena_t *arena, const char *s, size_t n)
{
    char *p = arena_alloc(arena, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(arena_t *arena, const char *s)
{
    return arena_strndup(arena, s, strlen(s));
}

char *arena_printf(arena_t *arena, const char *fmt, ...)
{
    va_list ap, copy;
    va_start(ap, fmt);
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        die("bad format string \"%s\"", fmt);
    char *p = arena_alloc(arena, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void arena_cleanup_add(arena_t *arena, arena_cleanup_fn fn, void *data)
{
    arena_cleanup_t *c = arena_alloc(arena, sizeof(*c));
    c->fn = fn;
    c->data = data;
    c->next = arena->cleanups;
    arena->cleanups = c;
}
