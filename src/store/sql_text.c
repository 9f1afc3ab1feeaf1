/*
 * sql_text.c - the words of the full text for both drivers (sql_text.h): folding by
 * fhir_search_normalize, splitting at separators, and PostgreSQL's tsvector literal.
 */
#include <stdint.h>
#include <string.h>

#include "fhir/search.h"
#include "store/sql_text.h"

static bool is_separator(uint32_t c)
{
    if (c < 0x80)
        return !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'));
    if (c <= 0xBF)
        return c != 0xAA && c != 0xB5 && c != 0xBA;
    return c == 0xD7 || c == 0xF7 || (c >= 0x2000 && c <= 0x206F) || (c >= 0x2190 && c <= 0x2BFF) ||
           (c >= 0x3000 && c <= 0x303F) || (c >= 0xFE10 && c <= 0xFE1F) ||
           (c >= 0xFE30 && c <= 0xFE6F) || (c >= 0xFF00 && c <= 0xFF0F) ||
           (c >= 0xFF1A && c <= 0xFF20) || (c >= 0xFF3B && c <= 0xFF40) ||
           (c >= 0xFF5B && c <= 0xFF65) || c == 0xFEFF || (c >= 0xFFF0 && c <= 0xFFFF) ||
           (c >= 0x1F000 && c <= 0x1FAFF);
}

/* The code point at p (n bytes left) and its length; a byte that starts no sequence is
 * taken alone, as fhir_search_normalize does. */
static uint32_t decode(const unsigned char *p, size_t n, size_t *out_len)
{
    uint32_t c = p[0];
    *out_len = 1;
    if (c >= 0xF0 && n >= 4) {
        *out_len = 4;
        return ((c & 0x07) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
    }
    if (c >= 0xE0 && n >= 3) {
        *out_len = 3;
        return ((c & 0x0F) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
    }
    if (c >= 0xC0 && n >= 2) {
        *out_len = 2;
        return ((c & 0x1F) << 6) | (p[1] & 0x3Fu);
    }
    return c;
}

void sql__text_words(const char *s, size_t len, sql_text_word_fn fn, void *ctx)
{
    buf_t folded = BUF_INIT;
    fhir_search_normalize(s, len, &folded);
    const unsigned char *p = (const unsigned char *)folded.ptr, *end = p + folded.len;
    const unsigned char *word = NULL; /* the start of the word being read */
    size_t kept = 0;                  /* its bytes within SQL_TEXT_MAX_WORD */
    while (p < end) {
        size_t n;
        uint32_t c = decode(p, (size_t)(end - p), &n);
        if (is_separator(c)) {
            if (word)
                fn(ctx, (const char *)word, kept);
            word = NULL;
        } else if (!word) {
            word = p;
            kept = n;
        } else if ((size_t)(p + n - word) <= SQL_TEXT_MAX_WORD && kept == (size_t)(p - word)) {
            kept += n;
        }
        p += n;
    }
    if (word)
        fn(ctx, (const char *)word, kept);
    buf_release(&folded);
}

typedef struct {
    buf_t *out;
    bool first;
} join_t;

static void join_word(void *ctx, const char *word, size_t len)
{
    join_t *j = ctx;
    if (!j->first)
        buf_addch(j->out, ' ');
    j->first = false;
    buf_add(j->out, word, len);
}

void sql__text_join(const char *s, buf_t *out)
{
    join_t j = {out, true};
    if (s)
        sql__text_words(s, strlen(s), join_word, &j);
}

typedef struct {
    buf_t *out;
    long position;
    char weight;
} tsvector_t;

static void tsvector_word(void *ctx, const char *word, size_t len)
{
    tsvector_t *v = ctx;
    v->position++;
    if (v->out->len)
        buf_addch(v->out, ' ');
    buf_addch(v->out, '\'');
    buf_add(v->out, word, len);
    buf_addf(v->out, "':%ld%c", v->position < 16383 ? v->position : 16383, v->weight);
}

void sql__text_tsvector(const char *narrative, const char *content, buf_t *out)
{
    tsvector_t v = {out, 0, 'A'};
    if (narrative)
        sql__text_words(narrative, strlen(narrative), tsvector_word, &v);
    v.weight = 'B';
    v.position++; /* no phrase across the two */
    if (content)
        sql__text_words(content, strlen(content), tsvector_word, &v);
}
