/*
 * careplan.c - GET CarePlan/[id]/$adherence (docs/api.md): how many of the plan's activities
 * whose due time has passed were done on time, as a Parameters resource.
 *
 * The CarePlan and each resource its activities refer to are read as the caller reads them
 * (repo_read_as): a resource the caller may not see, or that is not on this server, is listed
 * with the outcome "unknown" and not counted. The judging is src/care/adherence.c's.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/jv.h"
#include "care/adherence.h"
#include "http/http_int.h"
#include "repo/repo.h"

/* At most this many activities are judged (each a read and perhaps some history). */
#define MAX_ACTIVITIES 500

static void add_part(json_t *parts, const char *name, const char *value_key, json_t *value)
{
    json_t *p = json_object();
    json_object_set_new(p, "name", json_string(name));
    json_object_set_new(p, value_key, value);
    json_array_append_new(parts, p);
}

static json_t *reference_of(const char *text)
{
    json_t *ref = json_object();
    json_object_set_new(ref, "reference", json_string(text));
    return ref;
}

static json_t *instant_text(int64_t us)
{
    char text[40];
    time_t seconds = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&seconds, &tm);
    snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return json_string(text);
}

/* Judges the resource `reference` names ("Type/id"); false when it cannot be read. */
static status_t judge_reference(store_conn_t *conn, const repo_caller_t *caller,
                                const char *reference, int64_t now_us, arena_t *arena,
                                adherence_item_t *out, bool *out_known, err_t *err)
{
    *out_known = false;
    const char *slash = strchr(reference, '/');
    if (!slash || strchr(slash + 1, '/') || strchr(reference, ':') || slash == reference)
        return ERR_OK; /* contained, absolute or versioned: not judged */
    const char *type = arena_strndup(arena, reference, (size_t)(slash - reference));
    const char *id = slash + 1;
    store_version_t v;
    status_t rc = repo_read_as(conn, caller, type, id, 0, arena, &v, NULL, err);
    if (rc == ERR_NOT_FOUND || rc == ERR_GONE || rc == ERR_FORBIDDEN) {
        err_reset(err);
        return ERR_OK;
    }
    if (rc)
        return rc;
    json_t *resource = jv_parse(v.json, v.json_len, err);
    if (!resource)
        return err->code;
    const char *status = json_string_value(json_object_get(resource, "status"));
    int64_t since = 0;
    if (status && (strcmp(status, "completed") == 0 || strcmp(status, "active") == 0))
        rc = care_adherence_status_since(conn, type, id, v.version, status, arena, &since, err);
    if (!rc)
        *out_known = care_adherence_judge(resource, since, now_us, out);
    json_decref(resource);
    return rc;
}

status_t http__care_plan_adherence(http_thread_t *thread, const repo_caller_t *caller,
                                   const char *id, arena_t *arena, buf_t *out,
                                   http_audit_patients_t *patients, err_t *err)
{
    store_conn_t *conn = thread->conn;
    store_version_t v;
    status_t rc = repo_read_as(conn, caller, "CarePlan", id, 0, arena, &v, NULL, err);
    if (rc)
        return rc;
    http__audit_patient_add(arena, patients, "CarePlan", id, v.json, v.json_len);
    json_t *plan = jv_parse(v.json, v.json_len, err);
    if (!plan)
        return err->code;
    int64_t now_us = clock_now_us();
    adherence_counts_t counts = {0};
    json_t *activities = json_array();
    json_t *list = json_object_get(plan, "activity");
    if (json_array_size(list) > MAX_ACTIVITIES) {
        rc = err_set(err, ERR_TOO_LARGE, NULL,
                     "CarePlan/%s has %zu activities; adherence is worked out for at most %d", id,
                     json_array_size(list), MAX_ACTIVITIES);
        goto out;
    }
    size_t i;
    json_t *activity;
    json_array_foreach(list, i, activity)
    {
        const char *reference =
            json_string_value(json_object_get(json_object_get(activity, "reference"), "reference"));
        json_t *detail = json_object_get(activity, "detail");
        if (!reference && !json_is_object(detail))
            continue;
        adherence_item_t item = {0};
        bool known = true;
        if (reference) {
            if ((rc = judge_reference(conn, caller, reference, now_us, arena, &item, &known, err)))
                goto out;
        } else {
            care_adherence_judge_detail(detail, now_us, &item);
        }
        json_t *parts = json_array();
        if (reference)
            add_part(parts, "reference", "valueReference", reference_of(reference));
        else
            add_part(parts, "activity", "valueString",
                     json_string(arena_printf(arena, "CarePlan.activity[%zu]", i)));
        if (known) {
            care_adherence_count(&counts, &item);
            if (item.due_us)
                add_part(parts, "due", "valueDateTime", instant_text(item.due_us));
            add_part(parts, "done", "valueBoolean", json_boolean(item.done));
            if (item.done && item.done_us)
                add_part(parts, "doneAt", "valueDateTime", instant_text(item.done_us));
        }
        add_part(parts, "outcome", "valueCode",
                 json_string(known ? care_adherence_outcome_code(item.outcome) : "unknown"));
        json_t *p = json_object();
        json_object_set_new(p, "name", json_string("activity"));
        json_object_set_new(p, "part", parts);
        json_array_append_new(activities, p);
    }
    json_t *result = json_object();
    json_object_set_new(result, "resourceType", json_string("Parameters"));
    json_t *params = json_array();
    add_part(params, "carePlan", "valueReference",
             reference_of(arena_printf(arena, "CarePlan/%s", id)));
    add_part(params, "now", "valueDateTime", instant_text(now_us));
    add_part(params, "due", "valueInteger",
             json_integer(counts.on_time + counts.late + counts.not_done));
    add_part(params, "onTime", "valueInteger", json_integer(counts.on_time));
    add_part(params, "late", "valueInteger", json_integer(counts.late));
    add_part(params, "notDone", "valueInteger", json_integer(counts.not_done));
    add_part(params, "notYetDue", "valueInteger", json_integer(counts.not_yet_due));
    char rate[32];
    if (care_adherence_rate(&counts, rate, sizeof(rate)))
        add_part(params, "adherence", "valueDecimal", jv_decimal(rate, strlen(rate)));
    size_t k;
    json_t *a;
    json_array_foreach(activities, k, a)
    {
        json_array_append(params, a);
    }
    json_object_set_new(result, "parameter", params);
    jv_dump(result, out);
    json_decref(result);
out:
    json_decref(activities);
    json_decref(plan);
    return rc;
}
