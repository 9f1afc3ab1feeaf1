/*
 * patch.h - FHIRPath Patch (FHIR R4 fhirpatch.html): a Parameters resource whose `operation`
 * parameters add, insert, delete, replace and move elements found by FHIRPath expressions.
 *
 * Each operation has the parts type (add | insert | delete | replace | move), path (a
 * FHIRPath expression), and as its type needs: name (add), value (add, insert, replace: a
 * value[x] of any type, or a `value` part whose own parts build a complex value, such as a
 * Coding from system and code), index (insert), source and destination (move). Paths are
 * evaluated with the project's FHIRPath engine on the resource as the earlier operations
 * left it; a path must match exactly one element, except for delete, where matching nothing
 * does nothing, and for insert and move, where it names the items of one list. Primitive
 * extensions ("_name" members) follow their values when items are deleted, inserted or moved.
 * Pure: no I/O.
 */
#ifndef CONCERTO_FHIR_PATCH_H
#define CONCERTO_FHIR_PATCH_H

#include <jansson.h>

#include "base/err.h"

/* Most operations one FHIRPath Patch may hold. */
#define FHIR_PATCH_MAX_OPERATIONS 10000

/*
 * Checks that parameters (borrowed) is a well-formed FHIRPath Patch: a Parameters resource
 * whose parameters are all `operation`s with a known type, the parts that type needs and no
 * others, and paths that compile. Errors are ERR_INVALID and name the operation by its
 * position in Parameters.parameter (from 0): `patch operation 2 (insert): no index part`.
 */
status_t fhir_patch_check(const json_t *parameters, err_t *err);

/*
 * Applies the FHIRPath Patch parameters (borrowed; checked as fhir_patch_check does) to
 * *resource, all or nothing: on success *resource is the patched resource (a new reference;
 * the old one is released), on failure *resource is unchanged. Elements left empty by a
 * delete (a HumanName without members, a "_name" object without extensions) are removed.
 * The result is not validated: the caller validates it like an update. Errors: ERR_INVALID
 * as fhir_patch_check; ERR_RULE when an operation cannot be applied, naming the operation
 * and its path: a path that matches nothing or several elements where one is needed, add
 * to an element that already has a value, an index out of range, a path that names no list.
 */
status_t fhir_patch_apply(json_t **resource, const json_t *parameters, err_t *err);

#endif
