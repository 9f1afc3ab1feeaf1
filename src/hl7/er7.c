/*
 * er7.c - the ER7 parser and writer (er7.h).
 *
 * hl7_parse makes two passes over the text: one counts the segments, the second splits each
 * segment at its field separators into spans (after counting them, so every array is allocated
 * once at its size). Components, repetitions and sub-components are not split at parse time:
 * hl7_raw walks the field's span on demand, which keeps a parse to two arrays. Every index
 * is checked against len; nothing relies on a NUL terminator.
 */
#include <stdio.h>
#include <string.h>

#include "hl7/er7.h"

const hl7_delims_t HL7_DELIMS_DEFAULT = {'|', '^', '~', '\\', '&'};

static bool is_eol(char c)
{
    return c == '\r' || c == '\n';
}

static bool is_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_id_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
}

/* A byte for an error message: itself when printable, \xNN otherwise. */
static const char *show_char(char c, char out[5])
{
    static const char hex[] = "0123456789ABCDEF";
    unsigned char u = (unsigned char)c;
    if (u >= 0x20 && u < 0x7f && c != '"') {
        out[0] = c;
        out[1] = '\0';
    } else {
        out[0] = '\\';
        out[1] = 'x';
        out[2] = hex[u >> 4];
        out[3] = hex[u & 15];
        out[4] = '\0';
    }
    return out;
}

/* The end of the line that starts at i (the index of its CR or LF, or len). */
static size_t line_end(const char *text, size_t len, size_t i)
{
    while (i < len && !is_eol(text[i]))
        i++;
    return i;
}

typedef struct {
    const char *text;
    size_t len;
    hl7_where_t *where;
    err_t *err;
} parse_ctx_t;

static status_t fail(parse_ctx_t *c, size_t sequence, const char *id, size_t field, size_t offset,
                     const char *what)
{
    if (c->where) {
        memset(c->where, 0, sizeof(*c->where));
        for (size_t i = 0; id && i < 3 && id[i]; i++)
            c->where->segment[i] = id[i];
        c->where->sequence = sequence;
        c->where->field = field;
        c->where->offset = offset;
    }
    if (sequence == 0)
        return err_set(c->err, ERR_SYNTAX, NULL, "%s", what);
    if (id && id[0])
        return err_set(c->err, ERR_SYNTAX, NULL, "segment %zu (%s): %s, at byte %zu", sequence, id,
                       what, offset);
    return err_set(c->err, ERR_SYNTAX, NULL, "segment %zu: %s, at byte %zu", sequence, what,
                   offset);
}

/* Reads MSH-1 and MSH-2 of the segment [start, end). */
static status_t read_delims(parse_ctx_t *c, size_t start, size_t end, hl7_delims_t *d)
{
    const char *s = c->text + start;
    size_t n = end - start;
    char what[96], shown[5];
    if (n < 3 || memcmp(s, "MSH", 3) != 0) {
        char id[4] = "";
        if (n >= 3 && is_id_char(s[0]) && is_id_char(s[1]) && is_id_char(s[2]) &&
            (n == 3 || !is_id_char(s[3]))) {
            memcpy(id, s, 3);
            id[3] = '\0';
        }
        return fail(c, 1, id, 0, start, "the message must start with MSH");
    }
    if (n == 3)
        return fail(c, 1, "MSH", 1, start + 3, "the field separator (MSH-1) is missing");
    char field = s[3];
    if (is_alnum(field)) {
        snprintf(what, sizeof(what),
                 "the field separator (MSH-1) \"%s\" must not be a letter or digit",
                 show_char(field, shown));
        return fail(c, 1, "MSH", 1, start + 3, what);
    }
    size_t i = 4;
    while (i < n && s[i] != field)
        i++;
    size_t count = i - 4;
    if (count < 4 || count > 5) {
        snprintf(what, sizeof(what), "MSH-2 must have 4 or 5 encoding characters, not %zu", count);
        return fail(c, 1, "MSH", 2, start + 4, what);
    }
    char seen[6] = {field};
    for (size_t k = 0; k < count; k++) {
        char e = s[4 + k];
        if (is_alnum(e)) {
            snprintf(what, sizeof(what),
                     "the encoding character \"%s\" in MSH-2 must not be a letter or digit",
                     show_char(e, shown));
            return fail(c, 1, "MSH", 2, start + 4 + k, what);
        }
        for (size_t j = 0; j <= k; j++) {
            if (seen[j] == e) {
                snprintf(what, sizeof(what),
                         "the delimiter \"%s\" is declared twice in MSH-1/MSH-2",
                         show_char(e, shown));
                return fail(c, 1, "MSH", 2, start + 4 + k, what);
            }
        }
        seen[k + 1] = e;
    }
    d->field = field;
    d->component = s[4];
    d->repetition = s[5];
    d->escape = s[6];
    d->subcomponent = s[7];
    return ERR_OK;
}

/* Splits the segment [start, end) into fields; its id is already checked. */
static void split_fields(const char *text, size_t start, size_t end, const hl7_delims_t *d,
                         arena_t *arena, hl7_segment_t *seg)
{
    const char *s = text + start;
    size_t n = end - start;
    bool msh = memcmp(seg->id, "MSH", 3) == 0 && n > 3 && s[3] == d->field;
    /* fields[0] is the id; for MSH, fields[1] is the separator and the text from 4 on starts
     * with MSH-2; elsewhere the text after the separator at 3 is field 1. */
    size_t first = msh ? 2 : 1, from = 4;
    size_t count = first;
    if (n > 3) {
        count++;
        for (size_t i = from; i < n; i++)
            if (s[i] == d->field)
                count++;
    }
    seg->fields = arena_alloc(arena, count * sizeof(hl7_span_t));
    seg->fields[0] = (hl7_span_t){s, 3};
    if (msh)
        seg->fields[1] = (hl7_span_t){s + 3, 1};
    size_t k = first;
    if (n > 3) {
        size_t begin = from;
        for (size_t i = from; i <= n; i++) {
            if (i == n || s[i] == d->field) {
                seg->fields[k++] = (hl7_span_t){s + begin, i - begin};
                begin = i + 1;
            }
        }
    }
    while (k > 1 && seg->fields[k - 1].len == 0)
        k--;
    seg->nfields = k;
}

status_t hl7_parse(const char *text, size_t len, arena_t *arena, hl7_message_t *out,
                   hl7_where_t *where, err_t *err)
{
    parse_ctx_t c = {text, len, where, err};
    memset(out, 0, sizeof(*out));
    if (where)
        memset(where, 0, sizeof(*where));
    size_t nsegments = 0, first = len;
    for (size_t i = 0; i < len;) {
        size_t e = line_end(text, len, i);
        if (e > i) {
            if (nsegments == 0)
                first = i;
            nsegments++;
        }
        i = e + 1;
    }
    if (nsegments == 0)
        return fail(&c, 0, NULL, 0, 0, "the message is empty");
    hl7_delims_t d;
    status_t rc = read_delims(&c, first, line_end(text, len, first), &d);
    if (rc)
        return rc;
    hl7_segment_t *segments = arena_zalloc(arena, nsegments * sizeof(hl7_segment_t));
    size_t k = 0;
    for (size_t i = first; i < len && k < nsegments;) {
        size_t e = line_end(text, len, i);
        if (e == i) {
            i++;
            continue;
        }
        hl7_segment_t *seg = &segments[k];
        seg->offset = i;
        seg->number = k + 1;
        size_t idlen = 0;
        while (i + idlen < e && text[i + idlen] != d.field)
            idlen++;
        if (idlen != 3 || !is_id_char(text[i]) || !is_id_char(text[i + 1]) ||
            !is_id_char(text[i + 2])) {
            char shown_id[48], shown[5], what[96];
            size_t n = 0;
            for (size_t j = 0; j < idlen && j < 8; j++) {
                const char *p = show_char(text[i + j], shown);
                size_t pl = strlen(p);
                memcpy(shown_id + n, p, pl);
                n += pl;
            }
            shown_id[n] = '\0';
            snprintf(what, sizeof(what), "id \"%s%s\" must be 3 upper-case letters or digits",
                     shown_id, idlen > 8 ? "..." : "");
            return fail(&c, k + 1, "", 0, i, what);
        }
        memcpy(seg->id, text + i, 3);
        seg->id[3] = '\0';
        split_fields(text, i, e, &d, arena, seg);
        k++;
        i = e + 1;
    }
    out->text = text;
    out->len = len;
    out->delims = d;
    out->segments = segments;
    out->nsegments = nsegments;
    return ERR_OK;
}

const hl7_segment_t *hl7_segment(const hl7_message_t *m, const char *id, size_t nth)
{
    for (size_t i = 0; i < m->nsegments; i++)
        if (strcmp(m->segments[i].id, id) == 0 && nth-- == 0)
            return &m->segments[i];
    return NULL;
}

size_t hl7_segment_count(const hl7_message_t *m, const char *id)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nsegments; i++)
        if (strcmp(m->segments[i].id, id) == 0)
            n++;
    return n;
}

static bool is_msh_delims(const hl7_segment_t *seg, size_t field)
{
    return (field == 1 || field == 2) && strcmp(seg->id, "MSH") == 0;
}

/* The nth (0-based) piece of span split at sep; empty when there are fewer pieces. */
static hl7_span_t piece(hl7_span_t span, char sep, size_t nth)
{
    size_t begin = 0;
    for (size_t i = 0; i <= span.len; i++) {
        if (i == span.len || span.s[i] == sep) {
            if (nth == 0)
                return (hl7_span_t){span.s + begin, i - begin};
            nth--;
            begin = i + 1;
        }
    }
    return (hl7_span_t){span.s + span.len, 0};
}

size_t hl7_repetitions(const hl7_message_t *m, const hl7_segment_t *seg, size_t field)
{
    if (field >= seg->nfields || seg->fields[field].len == 0)
        return 0;
    if (is_msh_delims(seg, field))
        return 1;
    hl7_span_t f = seg->fields[field];
    size_t n = 1;
    for (size_t i = 0; i < f.len; i++)
        if (f.s[i] == m->delims.repetition)
            n++;
    return n;
}

hl7_span_t hl7_raw(const hl7_message_t *m, const hl7_segment_t *seg, size_t field, size_t rep,
                   size_t comp, size_t sub)
{
    hl7_span_t none = {"", 0};
    if (field >= seg->nfields)
        return none;
    hl7_span_t span = seg->fields[field];
    if (is_msh_delims(seg, field))
        return rep == 0 ? span : none;
    span = piece(span, m->delims.repetition, rep);
    if (comp == 0)
        return span;
    span = piece(span, m->delims.component, comp - 1);
    if (sub == 0)
        return span;
    return piece(span, m->delims.subcomponent, sub - 1);
}

const char *hl7_get(const hl7_message_t *m, arena_t *arena, const hl7_segment_t *seg, size_t field,
                    size_t rep, size_t comp, size_t sub)
{
    hl7_span_t span = hl7_raw(m, seg, field, rep, comp, sub);
    if (span.len == 0)
        return "";
    if (is_msh_delims(seg, field))
        return arena_strndup(arena, span.s, span.len);
    buf_t b = BUF_INIT;
    hl7_decode(&m->delims, span.s, span.len, &b);
    char *s = arena_strndup(arena, b.ptr, b.len);
    buf_release(&b);
    return s;
}

bool hl7_is_null(const hl7_message_t *m, const hl7_segment_t *seg, size_t field, size_t rep,
                 size_t comp, size_t sub)
{
    hl7_span_t span = hl7_raw(m, seg, field, rep, comp, sub);
    return span.len == 2 && span.s[0] == '"' && span.s[1] == '"';
}

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

static bool all_hex(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (hexval(s[i]) < 0)
            return false;
    return true;
}

static bool starts(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

/* Decodes the escape whose content (between the escape characters) is s; false when it is
 * not one we know, so the caller keeps it as it is. */
static bool decode_one(const hl7_delims_t *d, const char *s, size_t len, buf_t *out)
{
    if (len == 1) {
        switch (s[0]) {
        case 'F': buf_addch(out, d->field); return true;
        case 'S': buf_addch(out, d->component); return true;
        case 'T': buf_addch(out, d->subcomponent); return true;
        case 'R': buf_addch(out, d->repetition); return true;
        case 'E': buf_addch(out, d->escape); return true;
        case 'H':
        case 'N': return true; /* highlighting on and off */
        default: return false;
        }
    }
    if (len == 0)
        return false;
    if (s[0] == 'X') {
        if (len < 3 || (len - 1) % 2 != 0 || !all_hex(s + 1, len - 1))
            return false;
        for (size_t i = 1; i < len; i += 2)
            buf_addch(out, (char)(hexval(s[i]) * 16 + hexval(s[i + 1])));
        return true;
    }
    if ((s[0] == 'C' && len == 5) || (s[0] == 'M' && (len == 5 || len == 7)))
        return all_hex(s + 1, len - 1);
    if (len == 3 && memcmp(s, ".br", 3) == 0) {
        buf_addch(out, '\n');
        return true;
    }
    static const char *const formatting[] = {".sp", ".in", ".ti", ".sk", ".fi", ".nf", ".ce"};
    for (size_t i = 0; i < sizeof(formatting) / sizeof(formatting[0]); i++)
        if (starts(s, len, formatting[i]))
            return true;
    return false;
}

void hl7_decode(const hl7_delims_t *d, const char *s, size_t len, buf_t *out)
{
    size_t i = 0;
    while (i < len) {
        size_t plain = i;
        while (plain < len && s[plain] != d->escape)
            plain++;
        buf_add(out, s + i, plain - i);
        if (plain == len)
            return;
        size_t close = plain + 1;
        while (close < len && s[close] != d->escape)
            close++;
        if (close == len) {
            buf_add(out, s + plain, len - plain);
            return;
        }
        if (!decode_one(d, s + plain + 1, close - plain - 1, out))
            buf_add(out, s + plain, close + 1 - plain);
        i = close + 1;
    }
}

const char *hl7_version(const hl7_message_t *m, arena_t *arena)
{
    const hl7_segment_t *msh = hl7_segment(m, "MSH", 0);
    if (!msh)
        return "";
    return hl7_get(m, arena, msh, 12, 0, 1, 0);
}

bool hl7_version_supported(const char *version)
{
    if (strncmp(version, "2.", 2) != 0 || version[2] < '3' || version[2] > '8')
        return false;
    const char *p = version + 3;
    while (*p) {
        if (*p != '.' || p[1] < '0' || p[1] > '9')
            return false;
        p++;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return true;
}

void hl7_escape(const hl7_delims_t *d, const char *s, size_t len, buf_t *out)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        const char *seq = NULL;
        if (c == d->field)
            seq = "F";
        else if (c == d->component)
            seq = "S";
        else if (c == d->repetition)
            seq = "R";
        else if (c == d->escape)
            seq = "E";
        else if (c == d->subcomponent)
            seq = "T";
        else if (c == '\r')
            seq = "X0D";
        else if (c == '\n')
            seq = "X0A";
        if (!seq) {
            buf_addch(out, c);
            continue;
        }
        buf_addch(out, d->escape);
        buf_addstr(out, seq);
        buf_addch(out, d->escape);
    }
}

void hl7_writer_init(hl7_writer_t *w, buf_t *out, const hl7_delims_t *d)
{
    w->out = out;
    w->d = *d;
    w->open = false;
}

void hl7_write_segment(hl7_writer_t *w, const char *id)
{
    if (w->open)
        buf_addch(w->out, '\r');
    buf_addstr(w->out, id);
    w->open = true;
    if (strcmp(id, "MSH") == 0) {
        char enc[5] = {w->d.field, w->d.component, w->d.repetition, w->d.escape, w->d.subcomponent};
        buf_add(w->out, enc, sizeof(enc));
    }
}

void hl7_write_field(hl7_writer_t *w, const char *value)
{
    buf_addch(w->out, w->d.field);
    if (value)
        hl7_escape(&w->d, value, strlen(value), w->out);
}

void hl7_write_components(hl7_writer_t *w, const char *const *components, size_t n)
{
    while (n > 0 && (!components[n - 1] || !components[n - 1][0]))
        n--;
    buf_addch(w->out, w->d.field);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            buf_addch(w->out, w->d.component);
        if (components[i])
            hl7_escape(&w->d, components[i], strlen(components[i]), w->out);
    }
}

void hl7_write_raw(hl7_writer_t *w, const char *s, size_t len)
{
    buf_addch(w->out, w->d.field);
    buf_add(w->out, s, len);
}

void hl7_writer_end(hl7_writer_t *w)
{
    if (w->open)
        buf_addch(w->out, '\r');
    w->open = false;
}
