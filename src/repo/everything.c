/*
 * everything.c - Patient/$everything: the Patient compartment of one patient, or of all,
 * with the practitioners, organizations, locations, medications, devices and substances its
 * members refer to. The compartment's (type, parameter) pairs come from the generated R4
 * CompartmentDefinition (fhir/compartment.h), the same ones a compartment search uses.
 */
#include <stdlib.h>
#include <string.h>

#include "fhir/compartment.h"
#include "fhir/defs.h"
#include "repo/repo.h"

const char *const repo_everything_referenced[] = {
    "Practitioner", "PractitionerRole", "Organization", "Location",
    "Medication",   "Device",           "Substance",
};
const size_t repo_everything_referenced_count =
    sizeof(repo_everything_referenced) / sizeof(repo_everything_referenced[0]);

/* Splits _type ("Observation,Condition") into known resource type names. */
static status_t parse_types(const char *text, arena_t *arena, const char ***out, size_t *out_n,
                            err_t *err)
{
    size_t cap = 1;
    for (const char *p = text; *p; p++)
        cap += *p == ',';
    const char **types = arena_alloc(arena, cap * sizeof(*types));
    size_t n = 0;
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const fhir_type_t *type = fhir_resource_type_find(p, len);
        if (!type)
            return err_set(err, ERR_INVALID, "_type",
                           "_type: \"%s\" is not a FHIR R4 resource type",
                           arena_strndup(arena, p, len));
        types[n++] = type->name;
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = types;
    *out_n = n;
    return ERR_OK;
}

status_t repo_everything(store_conn_t *conn, const repo_everything_t *query, arena_t *arena,
                         store_search_result_t *out, err_t *err)
{
    store_everything_t q = {.compartment_type = "Patient",
                            .id = query->patient_id,
                            .referenced = repo_everything_referenced,
                            .nreferenced = repo_everything_referenced_count,
                            .since_us = query->since_us,
                            .count = FHIR_SEARCH_DEFAULT_COUNT,
                            .page = query->page};
    status_t rc;
    if (query->count) {
        char *end;
        long long count = strtoll(query->count, &end, 10);
        if (!*query->count || *end || count < 1)
            return err_set(err, ERR_INVALID, "_count",
                           "_count must be a positive integer, not \"%s\"", query->count);
        q.count = count > FHIR_SEARCH_MAX_COUNT ? FHIR_SEARCH_MAX_COUNT : (uint32_t)count;
    }
    if (query->types &&
        (rc = parse_types(query->types, arena, (const char ***)&q.types, &q.ntypes, err)))
        return rc;
    if (query->patient_id) {
        store_version_t patient;
        if ((rc = repo_read(conn, "Patient", query->patient_id, 0, arena, &patient, err)))
            return rc;
    }
    if (query->caller && (rc = repo__access_everything(conn, query, arena, &q.visibility, err)))
        return rc;
    /* every (type, parameter) pair that makes a resource a member */
    size_t cap = 0;
    for (size_t i = 0; i < fhir_resource_type_count; i++) {
        const char *const *params;
        size_t n;
        if (fhir_compartment_params("Patient", fhir_resource_types[i], &params, &n))
            cap += n;
    }
    const char **types = arena_alloc(arena, (cap ? cap : 1) * sizeof(*types));
    const char **codes = arena_alloc(arena, (cap ? cap : 1) * sizeof(*codes));
    for (size_t i = 0; i < fhir_resource_type_count; i++) {
        const char *const *params;
        size_t n;
        if (!fhir_compartment_params("Patient", fhir_resource_types[i], &params, &n))
            continue;
        for (size_t k = 0; k < n; k++) {
            types[q.nmembers] = fhir_resource_types[i]->name;
            codes[q.nmembers++] = params[k];
        }
    }
    q.member_types = types;
    q.member_params = codes;
    return store_everything(conn, &q, arena, out, err);
}
