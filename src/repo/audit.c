/*
 * audit.c - what the audit trail records of the repository's interactions: the patient a
 * resource belongs to (its Patient compartment), and the row each write adds in its own
 * transaction, so that a write is durable with its record or not at all (repo.h, "audit").
 */
#include <string.h>

#include "base/jv.h"
#include "fhir/compartment.h"
#include "repo/repo.h"

const char *repo_patient_of(const char *type, const char *id, const fhir_index_rows_t *index)
{
    if (strcmp(type, "Patient") == 0)
        return id;
    const fhir_type_t *t = fhir_resource_type_find(type, strlen(type));
    const char *const *params;
    size_t nparams;
    if (!index || !t || !fhir_compartment_params("Patient", t, &params, &nparams))
        return NULL;
    for (size_t i = 0; i < index->n; i++) {
        const fhir_index_row_t *row = &index->rows[i];
        if (row->value.kind != FHIR_INDEX_REFERENCE || !row->value.as.reference.type ||
            !row->value.as.reference.id || strcmp(row->value.as.reference.type, "Patient") != 0)
            continue;
        for (size_t k = 0; k < nparams; k++)
            if (strcmp(row->param, params[k]) == 0)
                return row->value.as.reference.id;
    }
    return NULL;
}

const char *repo_patient_of_json(const char *type, const char *id, const char *json, size_t len,
                                 arena_t *arena)
{
    if (strcmp(type, "Patient") == 0)
        return id;
    const fhir_type_t *t = fhir_resource_type_find(type, strlen(type));
    const char *const *params;
    size_t nparams;
    if (!json || !t || !fhir_compartment_params("Patient", t, &params, &nparams))
        return NULL;
    err_t err = ERR_INIT;
    json_t *resource = jv_parse(json, len, &err);
    const char *patient = NULL;
    if (resource) {
        const fhir_search_snapshot_t *snapshot = repo_params_acquire();
        fhir_index_rows_t rows;
        if (fhir_index_extract_only(snapshot, resource, params, nparams, arena, &rows, &err) ==
            ERR_OK) {
            patient = repo_patient_of(type, id, &rows);
            if (patient)
                patient = arena_strdup(arena, patient);
        }
        fhir_search_snapshot_release(snapshot);
        json_decref(resource);
    }
    err_release(&err);
    return patient;
}

static const char *action_name(repo_action_t action)
{
    switch (action) {
    case REPO_CREATE: return "create";
    case REPO_UPDATE: return "update";
    case REPO_PATCH: return "patch";
    case REPO_DELETE: return "delete";
    }
    return "write";
}

void repo_audit_row(const repo_caller_t *caller, store_audit_row_t *row)
{
    memset(row, 0, sizeof(*row));
    if (!caller)
        return;
    row->user = caller->username ? caller->username : caller->client_id;
    row->role = caller->role;
    row->client = caller->client_id;
    row->source = caller->source;
    row->detail = caller->emergency_reason;
}

status_t repo__audit_write(store_txn_t *txn, const repo_write_t *w, const char *patient, err_t *err)
{
    store_audit_row_t row;
    repo_audit_row(w->caller, &row);
    row.time_us = store_txn_time_us(txn);
    row.patient = patient;
    row.action = action_name(w->action);
    row.type = w->type;
    row.resource_id = w->id;
    row.outcome = w->result.status == 201 ? "201" : w->result.status == 204 ? "204" : "200";
    return store_txn_audit_add(txn, &row, 1, err);
}
