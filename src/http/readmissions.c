/*
 * readmissions.c - GET (or POST) Encounter/$readmissions?periodStart=&periodEnd= (docs/api.md):
 * the 30-day readmission measure of the stays discharged in a period as a MeasureReport of type
 * summary, counted over what the caller may see. The counting is src/care/readmissions.c's;
 * dates are local to the organisation's zone.
 */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/jv.h"
#include "care/protocol.h"
#include "care/readmissions.h"
#include "http/http_int.h"

#define POPULATION  "http://terminology.hl7.org/CodeSystem/measure-population"
#define IMPROVEMENT "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
#define UCUM        "http://unitsofmeasure.org"

typedef struct {
    arena_t *arena;
    const char *start, *end;
} params_t;

static status_t set_param(params_t *p, const char *name, const char *value, const char *where,
                          err_t *err)
{
    const char **slot = strcmp(name, "periodStart") == 0 ? &p->start
                        : strcmp(name, "periodEnd") == 0 ? &p->end
                                                         : NULL;
    if (!slot)
        return err_set(err, ERR_INVALID, where ? where : name,
                       "$readmissions has no parameter \"%s\" (it takes periodStart and "
                       "periodEnd)",
                       name);
    if (*slot)
        return err_set(err, ERR_INVALID, where ? where : name,
                       "the parameter %s is given more than once", name);
    *slot = value;
    return ERR_OK;
}

/* One parameter of a POST body: valueDate (or valueString) YYYY-MM-DD. */
static status_t body_param(void *arg, const char *name, const json_t *parameter, const char *where,
                           err_t *err)
{
    params_t *p = arg;
    const json_t *v = json_object_get(parameter, "valueDate");
    if (!v)
        v = json_object_get(parameter, "valueString");
    if (!jv_is_string(v)) {
        if (strcmp(name, "periodStart") && strcmp(name, "periodEnd"))
            return set_param(p, name, NULL, where, err);
        return err_set(err, ERR_INVALID, where, "the parameter %s has no valueDate", name);
    }
    /* the body is released when its parameters are read: the value is copied */
    return set_param(p, name, arena_strdup(p->arena, json_string_value(v)), where, err);
}

static json_t *coded(const char *system, const char *code)
{
    return json_pack("{s:[{s:s,s:s}]}", "coding", "system", system, "code", code);
}

static json_t *population(const char *code, size_t count)
{
    return json_pack("{s:o,s:I}", "code", coded(POPULATION, code), "count", (json_int_t)count);
}

/* numerator / denominator rounded to 4 decimals (half up), as a decimal "0.3333". */
static json_t *score(size_t numerator, size_t denominator, arena_t *arena)
{
    unsigned long long q = ((unsigned long long)numerator * 20000 + denominator) /
                           (2 * (unsigned long long)denominator);
    const char *text = arena_printf(arena, "%llu.%04llu", q / 10000, q % 10000);
    return jv_decimal(text, strlen(text));
}

static int compare_ids(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The patients of the stays read, once each, for the audit trail. */
static void audit_stays(arena_t *arena, const json_t *stays, http_audit_patients_t *patients)
{
    size_t n = json_array_size(stays);
    if (!n)
        return;
    const char **ids = arena_alloc(arena, n * sizeof(*ids));
    size_t k = 0, i;
    json_t *stay;
    json_array_foreach(stays, i, stay)
    {
        const char *ref =
            json_string_value(json_object_get(json_object_get(stay, "subject"), "reference"));
        if (ref && strncmp(ref, "Patient/", 8) == 0 && ref[8] && !strchr(ref + 8, '/'))
            ids[k++] = ref + 8;
    }
    qsort(ids, k, sizeof(*ids), compare_ids);
    size_t distinct = 0;
    for (i = 0; i < k; i++)
        if (i == 0 || strcmp(ids[i], ids[i - 1]) != 0)
            ids[distinct++] = ids[i];
    patients->ids = ids;
    patients->n = patients->cap = distinct;
}

status_t http__readmissions(const http_search_request_t *r, bool post, buf_t *out,
                            http_audit_patients_t *patients, err_t *err)
{
    arena_t *arena = r->arena;
    params_t p = {.arena = arena};
    status_t rc;
    for (size_t i = 0; i < r->nparams; i++) {
        const char *name = r->params[i].name;
        if (strcmp(name, "_format") == 0 || strcmp(name, "_pretty") == 0)
            continue;
        if ((rc = set_param(&p, name, r->params[i].value, NULL, err)))
            return rc;
    }
    if (post && (rc = http__parameters_body(r, "$readmissions", body_param, &p, err)))
        return rc;
    const calendar_t *calendar = calendar_default();
    readmissions_period_t period;
    if ((rc = care_readmissions_period(calendar, p.start, p.end, &period, err)))
        return rc;
    int64_t now_us = clock_now_us();
    json_t *stays, *flags;
    if ((rc = care_readmissions_gather(r->thread->search_conn, r->caller, &period, now_us, r->base,
                                       arena, &stays, &flags, err)))
        return rc;
    readmissions_counts_t counts;
    care_readmissions_count(stays, flags, &period, calendar, arena, &counts);
    audit_stays(arena, stays, patients);

    json_t *populations = json_array();
    json_array_append_new(populations, population("initial-population", counts.initial));
    json_array_append_new(populations, population("denominator-exclusion", counts.excluded));
    json_array_append_new(populations, population("denominator", counts.denominator));
    json_array_append_new(populations, population("numerator", counts.numerator));
    json_t *group = json_pack("{s:o}", "population", populations);
    if (counts.denominator)
        json_object_set_new(group, "measureScore",
                            json_pack("{s:o,s:s,s:s,s:s}", "value",
                                      score(counts.numerator, counts.denominator, arena), "unit",
                                      "1", "system", UCUM, "code", "1"));
    json_t *report = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s},s:o,s:[o]}", "resourceType", "MeasureReport", "status",
        now_us < period.closes_us ? "pending" : "complete", "type", "summary", "measure",
        READMISSIONS_MEASURE_URL, "date", care_format_instant(calendar, now_us, arena), "period",
        "start", period.start_date, "end", period.end_date, "improvementNotation",
        coded(IMPROVEMENT, "decrease"), "group", group);
    if (counts.nflags) {
        json_t *evaluated = json_array();
        for (size_t i = 0; i < counts.nflags; i++)
            json_array_append_new(evaluated, json_pack("{s:s}", "reference", counts.flags[i]));
        json_object_set_new(report, "evaluatedResource", evaluated);
    }
    jv_dump(report, out);
    json_decref(report);
    return ERR_OK;
}
