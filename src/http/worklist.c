/*
 * worklist.c - GET Task/$worklist (and POST, with the parameters in the query or in a
 * Parameters body) over HTTP: the parameters become a worklist query (care/worklist.h), the
 * worklist a Bundle of type collection: one List per bucket (its code the bucket, its entries
 * the Tasks it shows in order, an extension with the bucket's total), then each Task shown.
 */
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/jv.h"
#include "care/worklist.h"
#include "http/http_int.h"

#define EXT_TOTAL "http://concerto.dev/fhir/StructureDefinition/worklist-total"

/* The value of a Parameters.parameter as text: a string-like value, an integer, or a
 * reference's reference. NULL when it has none of those. */
static const char *parameter_value(const json_t *p, arena_t *arena)
{
    static const char *const strings[] = {"valueString", "valueCode", "valueId", "valueUri"};
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        const json_t *v = json_object_get(p, strings[i]);
        if (v)
            return jv_is_string(v) ? json_string_value(v) : NULL;
    }
    const json_t *v = json_object_get(p, "valueInteger");
    if (v)
        return json_is_integer(v) ? arena_printf(arena, "%lld", (long long)json_integer_value(v))
                                  : NULL;
    v = json_object_get(json_object_get(p, "valueReference"), "reference");
    return jv_is_string(v) ? json_string_value(v) : NULL;
}

/* One parameter of a POST body. */
static status_t body_param(void *arg, const char *name, const json_t *p, const char *where,
                           err_t *err)
{
    const http_search_request_t *r = ((void **)arg)[0];
    worklist_query_t *q = ((void **)arg)[1];
    const char *value = parameter_value(p, r->arena);
    if (!value)
        return err_set(err, ERR_INVALID, where, "the %s parameter has no value of the right type",
                       name);
    return worklist_param(q, name, value, r->arena, err);
}

/* The parameters of a POST body: a Parameters resource. */
static status_t read_body(const http_search_request_t *r, worklist_query_t *q, err_t *err)
{
    void *arg[] = {(void *)r, q};
    return http__parameters_body(r, "$worklist", body_param, arg, err);
}

static void add_task_reference(buf_t *out, const worklist_item_t *item)
{
    buf_addstr(out, "{\"item\":{\"reference\":\"Task/");
    buf_add_json_escaped(out, item->task->id, strlen(item->task->id));
    buf_addstr(out, "\"}}");
}

static void add_list(buf_t *out, const worklist_t *w, worklist_bucket_t b, const char *date)
{
    buf_addf(out,
             "{\"resource\":{\"resourceType\":\"List\",\"extension\":[{\"url\":\"" EXT_TOTAL
             "\",\"valueInteger\":%zu}],\"status\":\"current\",\"mode\":\"working\","
             "\"title\":\"%s\",\"code\":{\"coding\":[{\"system\":\"" WORKLIST_BUCKET_SYSTEM
             "\",\"code\":\"%s\",\"display\":\"%s\"}]},\"date\":\"%s\",\"orderedBy\":{"
             "\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/list-order\","
             "\"code\":\"priority\"}]}",
             w->total[b], worklist_bucket_display(b), worklist_bucket_code(b),
             worklist_bucket_display(b), date);
    for (size_t i = 0; i < w->shown[b]; i++) {
        buf_addstr(out, i ? "," : ",\"entry\":[");
        add_task_reference(out, &w->items[w->first[b] + i]);
    }
    buf_addstr(out, w->shown[b] ? "]}}" : "}}");
}

/* Adds a patient id to the audit's list, once. (Task is not in R4's Patient compartment, so
 * the patients come from Task.for, which the worklist read.) */
static void audit_patient_add(arena_t *arena, http_audit_patients_t *p, const char *id)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->ids[i], id) == 0)
            return;
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 8;
        const char **more = arena_alloc(arena, cap * sizeof(*more));
        if (p->n)
            memcpy(more, p->ids, p->n * sizeof(*more));
        p->ids = more;
        p->cap = cap;
    }
    p->ids[p->n++] = id;
}

status_t http__worklist(const http_search_request_t *r, bool post, buf_t *out,
                        http_audit_patients_t *patients, err_t *err)
{
    worklist_query_t q = {.now_us = clock_now_us(), .base = r->base, .caller = r->caller};
    status_t rc;
    for (size_t i = 0; i < r->nparams; i++) {
        const char *name = r->params[i].name;
        if (strcmp(name, "_format") == 0 || strcmp(name, "_pretty") == 0)
            continue;
        if ((rc = worklist_param(&q, name, r->params[i].value, r->arena, err)))
            return rc;
    }
    if (post && (rc = read_body(r, &q, err)))
        return rc;
    worklist_t w;
    if ((rc = worklist_run(r->thread->search_conn, &q, r->arena, &w, err)))
        return rc;

    char date[32];
    int64_t secs = q.now_us / 1000000;
    struct tm tm;
    time_t t = (time_t)secs;
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
    buf_addf(out, "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"timestamp\":\"%s\"",
             date);
    bool any = false;
    for (int b = 0; b < WORKLIST__COUNT; b++) {
        if (q.bucket_set && (worklist_bucket_t)b != q.bucket)
            continue;
        buf_addstr(out, any ? "," : ",\"entry\":[");
        any = true;
        add_list(out, &w, (worklist_bucket_t)b, date);
    }
    for (int b = 0; b < WORKLIST__COUNT; b++) {
        for (size_t i = 0; i < w.shown[b]; i++) {
            const store_version_t *v = w.items[w.first[b] + i].task;
            buf_addstr(out, ",{\"fullUrl\":\"");
            buf_add_json_escaped(out, r->base, strlen(r->base));
            buf_addstr(out, "/Task/");
            buf_add_json_escaped(out, v->id, strlen(v->id));
            buf_addstr(out, "\",\"resource\":");
            buf_add(out, v->json, v->json_len);
            buf_addch(out, '}');
            const char *patient = w.items[w.first[b] + i].patient;
            if (patients && patient)
                audit_patient_add(r->arena, patients, patient + 8); /* after "Patient/" */
        }
    }
    buf_addstr(out, "]}");
    return ERR_OK;
}
