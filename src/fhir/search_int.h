/*
 * search_int.h - what the generated registry (search_gen.c), the lookups and registry
 * (search_defs.c) and the parser (search.c, search_value.c) share inside src/fhir.
 * fhir__search_types lists every concrete resource type sorted by name, each with its
 * parameters sorted by code; fhir__search_common is sorted by code.
 */
#ifndef CONCERTO_FHIR_SEARCH_INT_H
#define CONCERTO_FHIR_SEARCH_INT_H

#include "fhir/search.h"

typedef struct {
    const char *name;
    const fhir_search_param_t *params;
    size_t nparams;
} fhir__search_type_t;

extern const fhir_search_param_t fhir__search_params[];
extern const size_t fhir__search_param_count;
extern const fhir__search_type_t fhir__search_types[];
extern const size_t fhir__search_type_count;
extern const fhir_search_param_t fhir__search_common[];
extern const size_t fhir__search_common_count;
extern const size_t fhir__search_definition_count;
extern const size_t fhir__search_composite_definition_count;

/* True when a parameter for all resources applies to type (NULL: a system search): _text
 * and other DomainResource parameters do not apply to Bundle, Binary and Parameters. */
bool fhir__search_common_applies(const fhir_search_param_t *param, const fhir_type_t *type);

/*
 * The members of a FHIRPath union rooted at base, joined with " | ", allocated from arena;
 * the expression whole when it cannot be split safely (unbalanced parentheses or quotes, a
 * member rooted at none of the bases or mentioning several, no member for base). The same
 * rules as tools/gen-fhir-search. bases are the definition's bases (nbases > 1 to split).
 */
const char *fhir__search_restrict(arena_t *arena, const char *expression, const char *base,
                                  const char *const *bases, size_t nbases);

/* --- values (search_value.c) --- */

/* The outcome of parsing one value: NULL on success, else the reason (from arena). */
typedef const char *fhir__reason_t;

/* Parses a FHIR search date (after any prefix) into its range; reason NULL on success. */
fhir__reason_t fhir__search_parse_date(const char *s, size_t len, fhir_search_value_t *out);
/* Widens a date range for ap: 10% of the distance between now and the value. */
void fhir__search_date_approximate(fhir_search_value_t *value, int64_t now_us);
/* Parses a decimal number into its implicit range; approximate widens it for ap. */
fhir__reason_t fhir__search_parse_number(arena_t *arena, const char *s, size_t len,
                                         bool approximate, fhir_search_number_t *out);
/* Days-from-civil for tests: microseconds since the epoch of a UTC date and time. */
int64_t fhir__search_epoch_us(int year, int month, int day, int hour, int minute, int second);

/* Splits a FHIRPath expression at the '|' outside parentheses and string literals into
 * (start, end) offsets of its members, trimmed of white space; returns the count, or 0 when
 * the text does not balance or has more than max members. */
size_t fhir__search_union_members(const char *e, size_t (*spans)[2], size_t max);

#endif
