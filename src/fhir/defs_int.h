/*
 * defs_int.h - what the generated tables (defs_gen.c) share with defs.c, inside src/fhir.
 * fhir__types is every type of defs.h sorted by name (strcmp), so a name lookup is a bsearch.
 */
#ifndef CONCERTO_FHIR_DEFS_INT_H
#define CONCERTO_FHIR_DEFS_INT_H

#include "fhir/defs.h"

extern const fhir_type_t fhir__types[];
extern const size_t fhir__type_count;

#endif
