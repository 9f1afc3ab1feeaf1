/*
 * compartment.h - FHIR R4 compartments: which resources belong to the compartment of a
 * Patient, Encounter, RelatedPerson, Practitioner or Device, through which reference search
 * parameters. Generated from the R4 CompartmentDefinitions (tools/gen-fhir-compartments
 * writes compartment_gen.c); static data, no state.
 */
#ifndef CONCERTO_FHIR_COMPARTMENT_H
#define CONCERTO_FHIR_COMPARTMENT_H

#include <stdbool.h>
#include <stddef.h>

#include "fhir/defs.h"

/* True when compartment ("Patient") names a compartment of R4. */
bool fhir_compartment_exists(const char *compartment);

/*
 * The reference parameters (codes) of `type` through which a resource is a member of a
 * compartment of `compartment`: a resource is a member when one of them refers to the
 * compartment's resource. Returns false when the type has no members in that compartment.
 * A type listed with "{def}" (the compartment's own type) may have none: its member is the
 * compartment's resource itself, which is always a member. Static.
 */
bool fhir_compartment_params(const char *compartment, const fhir_type_t *type,
                             const char *const **out_params, size_t *out_n);

/*
 * The reference parameters through which a resource of `type` is about a patient (the access
 * policy's patient-linked resources, docs/security.md): those of the Patient compartment for
 * the type, and `patient` of Task, GuidanceResponse and Contract, which R4's definition leaves
 * out. False for a type that has none, Patient among them (its member is itself). Static.
 */
bool fhir_patient_link_params(const fhir_type_t *type, const char *const **out_params,
                              size_t *out_n);

#endif
