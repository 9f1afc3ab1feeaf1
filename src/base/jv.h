/*
 * jv.h - the JSON helper set over jansson.
 *
 * jv_parse is a strict RFC 8259 parser that builds jansson values: UTF-8 is validated,
 * duplicate keys, U+0000 in strings, nesting deeper than JV_MAX_DEPTH and trailing garbage are
 * rejected, and errors name the line, column and path. Numbers that are not integers (a
 * fraction or an exponent, or an integer beyond int64) keep their exact text, because FHIR
 * decimals carry their precision ("1.50" is not "1.5"): they are stored as jansson strings
 * whose first byte is NUL followed by the text. Use jv_is_decimal / jv_decimal_text to see
 * them, jv_is_string for real strings, and jv_dump, which writes them back as numbers.
 * Object members keep their order (jansson iterates in insertion order).
 */
#ifndef CONCERTO_BASE_JV_H
#define CONCERTO_BASE_JV_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"

#define JV_MAX_DEPTH 200

/* Parses text; returns a new reference, or NULL with an ERR_SYNTAX issue in err. */
json_t *jv_parse(const char *text, size_t len, err_t *err);

/* Appends the compact serialization of value (members in order, decimals as given). */
void jv_dump(const json_t *value, buf_t *out);

/*
 * Re-indents compact or pretty JSON text without building values (2 spaces, one member per
 * line). The input must be well-formed; this is for output of jv_dump and stored text.
 */
void jv_pretty(const char *text, size_t len, buf_t *out);

/* A non-integer number kept as text. */
bool jv_is_decimal(const json_t *value);
/* The decimal's text (borrowed from value), or NULL when value is not a decimal. */
const char *jv_decimal_text(const json_t *value, size_t *out_len);
/* A new decimal value from its text; the text must be a valid JSON number. */
json_t *jv_decimal(const char *text, size_t len);
/* A JSON string that is not a decimal. */
bool jv_is_string(const json_t *value);
/* An integer or a decimal (or a jansson real built elsewhere). */
bool jv_is_number(const json_t *value);
/* The number's value as a double; 0 when value is not a number. */
double jv_number_value(const json_t *value);

/* Returns true when s (len bytes) is valid UTF-8 with no overlong forms or surrogates. */
bool jv_utf8_valid(const char *s, size_t len);

#endif
