/*
 * sql_text.h - the words of the full text (_content, _text), split and folded in one place
 * for both drivers, so that a query finds the same resources on SQLite and PostgreSQL: SQLite
 * stores the words joined by spaces in its FTS5 table (the `ascii` tokenizer splits them
 * there again, at the spaces only), PostgreSQL stores a tsvector written here, with no
 * parser of the database in between. Only the files of src/store include it.
 *
 * A word is a run of characters that are not separators, after folding with
 * fhir_search_normalize (lower case, accents removed). Separators: every ASCII character but
 * letters and digits; Latin-1's punctuation and symbols (U+0080-U+00BF but ordinal a and o and
 * micro, U+00D7, U+00F7); general punctuation (U+2000-U+206F); arrows to miscellaneous symbols
 * (U+2190-U+2BFF); CJK punctuation (U+3000-U+303F); the small, vertical and full-width forms
 * of ASCII punctuation; U+FEFF, U+FFF0-U+FFFF; pictographs and emoji (U+1F000-U+1FAFF).
 * So "j.doe@example.org" is "j doe example org", "2-3" is "2 3", "3.5" is "3 5" and "Crème
 * brûlée" is "creme brulee". A word longer than SQL_TEXT_MAX_WORD bytes keeps its first ones.
 * Words never hold a quote, a backslash or a space.
 */
#ifndef CONCERTO_STORE_SQL_TEXT_H
#define CONCERTO_STORE_SQL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

#define SQL_TEXT_MAX_WORD 255

/* Called for each word of a text in order (not NUL-terminated). */
typedef void (*sql_text_word_fn)(void *ctx, const char *word, size_t len);

/* Calls fn for each word of s (len bytes of UTF-8). */
void sql__text_words(const char *s, size_t len, sql_text_word_fn fn, void *ctx);

/* Appends the words of s (NUL-terminated; NULL has none) joined by single spaces. */
void sql__text_join(const char *s, buf_t *out);

/*
 * Appends a tsvector literal (PostgreSQL's input syntax) of the words of narrative (weight
 * A, positions from 1) and content (weight B, the positions after them); either may be
 * NULL. PostgreSQL keeps positions up to 16383 and 256 of them per word: a phrase found
 * beyond them may not match there.
 */
void sql__text_tsvector(const char *narrative, const char *content, buf_t *out);

#endif
