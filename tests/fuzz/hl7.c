/*
 * libFuzzer harness for the ER7 parser (src/hl7/er7.c): any bytes either parse or fail with
 * ERR_SYNTAX and a position inside the input. A parsed message is walked through every
 * segment, field, repetition, component and sub-component with hl7_raw, hl7_get and
 * hl7_is_null (every span must lie inside the input), then written again from its decoded
 * values with the same delimiters; that text must parse and give the same values back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "hl7/er7.h"

/* A cap on the walk so that a field of thousands of delimiters stays fast. */
#define WALK_BUDGET 20000

static void check_span(const hl7_message_t *m, hl7_span_t span)
{
    if (span.len == 0)
        return;
    if (span.s < m->text || span.s + span.len > m->text + m->len)
        abort();
}

static size_t count_pieces(hl7_span_t span, char sep)
{
    size_t n = 1;
    for (size_t i = 0; i < span.len; i++)
        if (span.s[i] == sep)
            n++;
    return n;
}

static void walk(const hl7_message_t *m, arena_t *arena)
{
    size_t budget = WALK_BUDGET;
    for (size_t i = 0; i < m->nsegments; i++) {
        const hl7_segment_t *seg = &m->segments[i];
        if (seg->number != i + 1 || strlen(seg->id) != 3 || seg->nfields == 0)
            abort();
        if (i > 0 && seg->offset <= m->segments[i - 1].offset)
            abort();
        for (size_t f = 0; f <= seg->nfields && budget > 0; f++) {
            size_t reps = hl7_repetitions(m, seg, f);
            for (size_t r = 0; r <= reps && budget > 0; r++) {
                hl7_span_t rep = hl7_raw(m, seg, f, r, 0, 0);
                check_span(m, rep);
                size_t ncomp = count_pieces(rep, m->delims.component);
                for (size_t c = 0; c <= ncomp + 1 && budget > 0; c++) {
                    hl7_span_t comp = hl7_raw(m, seg, f, r, c, 0);
                    check_span(m, comp);
                    size_t nsub = count_pieces(comp, m->delims.subcomponent);
                    for (size_t s = 0; s <= nsub + 1 && budget > 0; s++, budget--) {
                        check_span(m, hl7_raw(m, seg, f, r, c, s));
                        const char *value = hl7_get(m, arena, seg, f, r, c, s);
                        if (!value)
                            abort();
                        if (hl7_is_null(m, seg, f, r, c, s) && strcmp(value, "\"\"") != 0)
                            abort();
                    }
                }
            }
        }
    }
    const char *version = hl7_version(m, arena);
    (void)hl7_version_supported(version);
}

/* The first field written for a segment: MSH's writer fills MSH-1 and MSH-2 itself. */
static size_t first_field(const hl7_segment_t *seg)
{
    return strcmp(seg->id, "MSH") == 0 ? 3 : 1;
}

static void round_trip(const hl7_message_t *m, arena_t *arena)
{
    buf_t out = BUF_INIT;
    hl7_writer_t w;
    hl7_writer_init(&w, &out, &m->delims);
    for (size_t i = 0; i < m->nsegments; i++) {
        const hl7_segment_t *seg = &m->segments[i];
        hl7_write_segment(&w, seg->id);
        for (size_t f = first_field(seg); f < seg->nfields; f++)
            hl7_write_field(&w, hl7_get(m, arena, seg, f, 0, 0, 0));
    }
    hl7_writer_end(&w);

    hl7_message_t again;
    err_t err = ERR_INIT;
    if (hl7_parse(out.ptr, out.len, arena, &again, NULL, &err) != ERR_OK)
        abort(); /* what the writer writes always parses */
    if (again.nsegments != m->nsegments || memcmp(&again.delims, &m->delims, sizeof(m->delims)))
        abort();
    for (size_t i = 0; i < m->nsegments; i++) {
        const hl7_segment_t *seg = &m->segments[i], *seg2 = &again.segments[i];
        if (strcmp(seg->id, seg2->id) != 0)
            abort();
        for (size_t f = first_field(seg); f < seg->nfields; f++) {
            const char *before = hl7_get(m, arena, seg, f, 0, 0, 0);
            const char *after = hl7_get(&again, arena, seg2, f, 0, 0, 0);
            if (strcmp(before, after) != 0)
                abort();
        }
    }
    err_release(&err);
    buf_release(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena_t arena;
    arena_init(&arena);
    err_t err = ERR_INIT;
    hl7_message_t m;
    hl7_where_t where;
    /* a copy of exactly size bytes, so that ASan sees any read past the end */
    char *text = malloc(size ? size : 1);
    if (size)
        memcpy(text, data, size);
    status_t rc = hl7_parse(text, size, &arena, &m, &where, &err);
    if (rc) {
        if (rc != ERR_SYNTAX || err.code != ERR_SYNTAX || err_message(&err)[0] == '\0')
            abort();
        if (where.offset > size || where.segment[3] != '\0')
            abort();
    } else {
        if (m.nsegments == 0 || strcmp(m.segments[0].id, "MSH") != 0 || where.sequence != 0)
            abort();
        walk(&m, &arena);
        round_trip(&m, &arena);
    }
    free(text);
    err_release(&err);
    arena_release(&arena);
    return 0;
}
