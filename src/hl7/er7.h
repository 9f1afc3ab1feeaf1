/*
 * er7.h - HL7 v2 messages in their usual text encoding (ER7): the parser and the writer.
 *
 * Pure: no I/O, no global state, so it is unit-tested and fuzzed alone. A parsed message is a
 * set of spans into the caller's text (never copied) plus arrays in the caller's arena: both
 * must outlive the hl7_message_t. Values are decoded (escape sequences resolved) only when asked
 * for, with hl7_get. The parser reads only the len bytes it is given, whatever they hold.
 */
#ifndef CONCERTO_HL7_ER7_H
#define CONCERTO_HL7_ER7_H

#include <stdbool.h>
#include <stddef.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"

/* The delimiters a message declares in MSH-1 and MSH-2. */
typedef struct {
    char field, component, repetition, escape, subcomponent;
} hl7_delims_t;
/* The HL7 defaults: | ^ ~ \ & */
extern const hl7_delims_t HL7_DELIMS_DEFAULT;

/* A stretch of the message's text, as it is (escapes not decoded). */
typedef struct {
    const char *s;
    size_t len;
} hl7_span_t;

typedef struct {
    char id[4];         /* "MSH", "PID", "ZPV", NUL-terminated */
    size_t nfields;     /* highest field number present + 1 */
    hl7_span_t *fields; /* fields[n] is field n as numbered by HL7 (fields[0] the segment id);
                           for MSH, fields[1] is the field separator itself and fields[2] the
                           encoding characters, so MSH-9 is fields[9] as everywhere */
    size_t offset;      /* where the segment starts in the message (bytes) */
    size_t number;      /* 1 for the first segment */
} hl7_segment_t;

typedef struct {
    const char *text; /* the message given to hl7_parse (not copied) */
    size_t len;
    hl7_delims_t delims;
    hl7_segment_t *segments; /* in order, unknown and Z segments included */
    size_t nsegments;
} hl7_message_t;

/* Where a problem is, for an error and an ACK's ERR segment. 0 / "" when not known. */
typedef struct {
    char segment[4]; /* segment id */
    size_t sequence; /* the segment's number in the message (1-based) */
    size_t field;    /* field number (HL7's numbering) */
    size_t offset;   /* byte offset in the message */
} hl7_where_t;

/*
 * Parses an ER7 message (len bytes, not NUL-terminated necessarily). Segments end with CR;
 * LF and CRLF are accepted too; a trailing terminator is optional; empty lines are skipped.
 * The message must start with MSH and declare its delimiters in MSH-1/MSH-2 (4 or 5 encoding
 * characters; all distinct, none alphanumeric, none CR/LF); every segment id is 3 upper-case
 * letters or digits. The spans point into text; arrays come from arena. On error: ERR_SYNTAX
 * with a message naming the segment, field and byte position (e.g. "segment 3 (PV1): id must be
 * 3 letters or digits, at byte 112"), and *where filled when where is not NULL.
 *
 * Trailing empty fields are not counted in nfields ("PID|1||" has nfields 2, as "PID|1"). NUL
 * bytes are data like any other byte. A 5th encoding character (the truncation character of
 * v2.7 and later) is accepted and otherwise ignored. On success *where is zeroed.
 */
status_t hl7_parse(const char *text, size_t len, arena_t *arena, hl7_message_t *out,
                   hl7_where_t *where, err_t *err);

/* The nth (0-based) segment with this id, or NULL. Borrowed from m. */
const hl7_segment_t *hl7_segment(const hl7_message_t *m, const char *id, size_t nth);
/* How many segments have this id. */
size_t hl7_segment_count(const hl7_message_t *m, const char *id);

/* The number of repetitions of field (0 when empty or absent; 1 for MSH-1 and MSH-2). */
size_t hl7_repetitions(const hl7_message_t *m, const hl7_segment_t *seg, size_t field);
/*
 * The raw text of a field's repetition rep (0-based), component comp (1-based; 0 = the whole
 * repetition) and sub-component sub (1-based; 0 = the whole component). Empty span when absent.
 * MSH-1 and MSH-2 are returned whole whatever comp/sub say.
 */
hl7_span_t hl7_raw(const hl7_message_t *m, const hl7_segment_t *seg, size_t field, size_t rep,
                   size_t comp, size_t sub);
/* The same, decoded (escape sequences resolved) into a NUL-terminated string in arena; "" when
 * absent; never NULL. A decoded \X00\ ends the C string early. */
const char *hl7_get(const hl7_message_t *m, arena_t *arena, const hl7_segment_t *seg, size_t field,
                    size_t rep, size_t comp, size_t sub);
/* True when that value is the HL7 explicit null "" (two double quotes: delete the value). */
bool hl7_is_null(const hl7_message_t *m, const hl7_segment_t *seg, size_t field, size_t rep,
                 size_t comp, size_t sub);
/* Decodes escapes of a raw span into out (appends): \F\ \S\ \T\ \R\ \E\ to the delimiters,
 * \Xhh..\ to the bytes, \.br\ to a line feed; other formatting escapes (\H\ \N\ \.sp\ \.in\ ...)
 * dropped; an unknown or unterminated escape kept as it is. The character set escapes \Cxxyy\
 * and \Mxxyyzz\ are dropped too (the text stays as sent); \P\ (truncation) and \Zxx\ (locally
 * defined) are unknown here and kept. */
void hl7_decode(const hl7_delims_t *d, const char *s, size_t len, buf_t *out);

/* The version in MSH-12 (first component), decoded, "" when absent. */
const char *hl7_version(const hl7_message_t *m, arena_t *arena);
/* True for the versions Concerto reads: 2.3 to 2.8 and their sub-releases (2.3.1, 2.5.1, ...). */
bool hl7_version_supported(const char *version);

/* ---- writing ---- */
/* Appends s escaped for d: the five delimiters as \F\ \S\ \R\ \E\ \T\, CR and LF as \X0D\ \X0A\. */
void hl7_escape(const hl7_delims_t *d, const char *s, size_t len, buf_t *out);

/* A message being written, segment by segment (segments end with CR). */
typedef struct {
    buf_t *out;
    hl7_delims_t d;
    bool open; /* a segment is being written */
} hl7_writer_t;
/* out is borrowed; the writer appends to it and owns nothing. */
void hl7_writer_init(hl7_writer_t *w, buf_t *out, const hl7_delims_t *d);
/* Starts segment id (ends the previous one). For "MSH" it writes MSH, the field separator and
 * the encoding characters: the next hl7_write_field is MSH-3. */
void hl7_write_segment(hl7_writer_t *w, const char *id);
/* Appends the next field, escaped (NULL or "" writes an empty field). */
void hl7_write_field(hl7_writer_t *w, const char *value);
/* Appends the next field made of n components, each escaped (NULL = empty; trailing empty
 * components dropped). */
void hl7_write_components(hl7_writer_t *w, const char *const *components, size_t n);
/* Appends the next field as it is, not escaped: for text already in ER7 with the writer's
 * delimiters (a raw span of a message parsed with the same delimiters, repetitions built by
 * the caller). */
void hl7_write_raw(hl7_writer_t *w, const char *s, size_t len);
/* Ends the message (the last segment's CR). */
void hl7_writer_end(hl7_writer_t *w);

#endif
