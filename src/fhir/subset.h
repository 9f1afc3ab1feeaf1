/*
 * subset.h - the parts of a resource that _summary and _elements ask for. Pure: a new JSON
 * value from a parsed one, decided by the type model (isSummary and cardinality of each
 * element).
 */
#ifndef CONCERTO_FHIR_SUBSET_H
#define CONCERTO_FHIR_SUBSET_H

#include <jansson.h>
#include <stddef.h>

#include "fhir/search.h"

/*
 * A copy of resource (borrowed) with only what was asked for, and meta.tag SUBSETTED
 * (http://terminology.hl7.org/CodeSystem/v3-ObservationValue) added:
 *   _summary=true: the elements marked isSummary in the definition;
 *   _summary=text: text and the required elements; _summary=data: all but text;
 *   _elements: the elements named (nelements > 0; summary ignored).
 * resourceType, id and meta are always kept; a choice element or a primitive's "_name"
 * object goes with its element. Returns a new reference, or NULL when nothing is to be
 * removed (summary false, none or count and no elements) or resource's type is unknown.
 */
json_t *fhir_subset(const json_t *resource, fhir_search_summary_t summary,
                    const char *const *elements, size_t nelements);

#endif
