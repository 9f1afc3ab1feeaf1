/*
 * validate.h - structural validation of a FHIR R4 resource against the type model (defs.h).
 *
 * Checks what the StructureDefinitions say about JSON shape: known elements, JSON types,
 * arrays versus single values, cardinality, primitive formats (the R4 regexes, by hand-written
 * checkers), primitive extensions (_name), required value set bindings, and resources inside
 * resources (contained, Bundle.entry.resource, Parameters.parameter.resource). Invariants
 * (the FHIRPath constraints of the definitions) and profiles are not checked.
 * Pure: no I/O, no global state; safe to call from several threads at once.
 */
#ifndef CONCERTO_FHIR_VALIDATE_H
#define CONCERTO_FHIR_VALIDATE_H

#include <jansson.h>

#include "base/err.h"

/* One call reports at most this many issues, then stops looking. */
#define FHIR_VALIDATE_MAX_ISSUES 100

/*
 * Validates `resource`, the root object of a resource as jv_parse builds it (decimals kept as
 * text; see jv.h). Adds one error issue to err per problem found, each with the FHIRPath
 * expression of the offending element ("Patient.name[0].given[1]",
 * "Bundle.entry[2].resource.ofType(Patient).birthDate"; NULL when the root itself is not a
 * resource) and a message for the client. Issue codes:
 *   ERR_STRUCTURE     not a resource, unknown resourceType, unknown element, wrong JSON type,
 *                     array versus single value, empty object, array or string, null, too
 *                     many items
 *   ERR_VALUE         a primitive's value does not match its type's format (date, id, ...)
 *   ERR_REQUIRED      an element with a minimum cardinality of 1 or more is missing
 *   ERR_CODE_INVALID  a code, Coding or CodeableConcept outside its required value set
 * Returns ERR_OK when no issue was found, else the code of the first issue it added.
 * Does not allocate unless it reports an issue; `resource` is not modified.
 */
status_t fhir_validate(const json_t *resource, err_t *err);

#endif
