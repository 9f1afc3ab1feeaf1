/*
 * index_risk.c - the risk row of a RiskAssessment (index.h, fhir_risk_row_t): its patient,
 * occurrence time and risk, read from the RiskAssessment alone, so that every writer of index
 * rows (a write, a reindex, a copy) keeps the store's row right.
 */
#include <string.h>

#include "base/jv.h"
#include "fhir/index.h"
#include "fhir/workflow.h"

double fhir_risk_value(const json_t *risk_assessment)
{
    const json_t *prediction = json_array_get(json_object_get(risk_assessment, "prediction"), 0);
    const json_t *p = json_object_get(prediction, "probabilityDecimal");
    if (jv_is_number(p)) {
        double v = jv_number_value(p);
        return v < 0 ? 0 : v > 1 ? 1 : v;
    }
    static const struct {
        const char *code;
        double risk;
    } qualitative[] = {
        {"negligible", 0.05}, {"low", 0.25}, {"moderate", 0.5}, {"high", 0.75}, {"certain", 1.0}};
    size_t i;
    const json_t *coding;
    json_array_foreach(json_object_get(json_object_get(prediction, "qualitativeRisk"), "coding"), i,
                       coding)
    {
        const char *code = json_string_value(json_object_get(coding, "code"));
        for (size_t k = 0; code && k < sizeof(qualitative) / sizeof(qualitative[0]); k++)
            if (strcmp(code, qualitative[k].code) == 0)
                return qualitative[k].risk;
    }
    return -1;
}

fhir_risk_row_t *fhir_index_risk_row(const json_t *ra, arena_t *arena)
{
    const char *type = json_string_value(json_object_get(ra, "resourceType"));
    if (!type || strcmp(type, "RiskAssessment") != 0)
        return NULL;
    const char *status = json_string_value(json_object_get(ra, "status"));
    /* one withdrawn is as if it were not there */
    if (status && (strcmp(status, "entered-in-error") == 0 || strcmp(status, "cancelled") == 0))
        return NULL;
    const char *ref =
        json_string_value(json_object_get(json_object_get(ra, "subject"), "reference"));
    if (!ref)
        return NULL;
    const char *at = strstr(ref, "Patient/");
    if (!at || (at != ref && at[-1] != '/'))
        return NULL;
    fhir_risk_row_t *row = arena_zalloc(arena, sizeof(*row));
    if (strstr(ref, "://") || strncmp(ref, "urn:", 4) == 0)
        row->patient = arena_strdup(arena, ref); /* absolute: as written */
    else if (at == ref)
        row->patient = arena_strndup(arena, ref, 8 + strcspn(ref + 8, "/")); /* a version dropped */
    else
        return NULL;
    int64_t when = INT64_MIN, high;
    fhir_date_bounds(json_object_get(ra, "occurrenceDateTime"), &when, &high);
    row->when_us = when;
    row->risk = fhir_risk_value(ra);
    return row;
}
