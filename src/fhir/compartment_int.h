/*
 * compartment_int.h - the generated compartment table (compartment_gen.c) and its lookups
 * (compartment.c). Compartments and their members are sorted by name for bsearch.
 */
#ifndef CONCERTO_FHIR_COMPARTMENT_INT_H
#define CONCERTO_FHIR_COMPARTMENT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "fhir/compartment.h"

typedef struct {
    const char *type;
    const char *const *params;
    size_t nparams;
} fhir__compartment_member_t;

typedef struct {
    const char *code;
    const fhir__compartment_member_t *members;
    size_t nmembers;
} fhir__compartment_t;

extern const fhir__compartment_t fhir__compartments[];
extern const size_t fhir__compartment_count;

#endif
