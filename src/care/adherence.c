/*
 * adherence.c - judging a care plan's activities against their due times (adherence.h).
 *
 * A due time is the last instant of what the resource says ("2026-11-23" is due through that
 * day); a done time at or before it is on time. What was done without a known time (a
 * completed detail, an Appointment kept) counts as on time.
 */
#include "care/adherence.h"

#include <stdio.h>
#include <string.h>

#include "base/jv.h"
#include "fhir/workflow.h"

#define HISTORY_LIMIT 100

const char *care_adherence_outcome_code(adherence_outcome_t outcome)
{
    switch (outcome) {
    case ADHERENCE_ON_TIME: return "on-time";
    case ADHERENCE_LATE: return "late";
    case ADHERENCE_NOT_DONE: return "not-done";
    case ADHERENCE_NOT_YET_DUE: return "not-yet-due";
    case ADHERENCE_NO_DUE_TIME: return "no-due-time";
    }
    return "no-due-time";
}

/* The last instant of a date, dateTime or instant value; 0 when it is none. */
static int64_t last_instant(const json_t *value)
{
    int64_t low, high;
    return fhir_date_bounds(value, &low, &high) ? high - 1 : 0;
}

/* The first instant of it; 0 when it is none. */
static int64_t first_instant(const json_t *value)
{
    int64_t low, high;
    return fhir_date_bounds(value, &low, &high) ? low : 0;
}

static bool status_is(const json_t *resource, const char *const *codes)
{
    const char *status = json_string_value(json_object_get(resource, "status"));
    for (size_t i = 0; status && codes[i]; i++)
        if (strcmp(status, codes[i]) == 0)
            return true;
    return false;
}

static void decide(adherence_item_t *item, int64_t now_us)
{
    if (!item->due_us)
        item->outcome = ADHERENCE_NO_DUE_TIME;
    else if (item->done)
        item->outcome =
            !item->done_us || item->done_us <= item->due_us ? ADHERENCE_ON_TIME : ADHERENCE_LATE;
    else
        item->outcome = now_us > item->due_us ? ADHERENCE_NOT_DONE : ADHERENCE_NOT_YET_DUE;
}

bool care_adherence_judge(const json_t *resource, int64_t status_since_us, int64_t now_us,
                          adherence_item_t *out)
{
    static const char *const completed[] = {"completed", NULL};
    static const char *const kept[] = {"arrived", "checked-in", "fulfilled", NULL};
    static const char *const in_effect[] = {"active", "completed", NULL};
    const char *type = json_string_value(json_object_get(resource, "resourceType"));
    if (!type)
        return false;
    adherence_item_t item = {0};
    if (strcmp(type, "Task") == 0) {
        item.due_us = last_instant(json_object_get(
            json_object_get(json_object_get(resource, "restriction"), "period"), "end"));
        item.done = status_is(resource, completed);
        int64_t end =
            first_instant(json_object_get(json_object_get(resource, "executionPeriod"), "end"));
        item.done_us = item.done ? (end ? end : status_since_us) : 0;
    } else if (strcmp(type, "ServiceRequest") == 0) {
        json_t *at = json_object_get(resource, "occurrenceDateTime");
        item.due_us = at ? last_instant(at)
                         : last_instant(json_object_get(
                               json_object_get(resource, "occurrencePeriod"), "end"));
        item.done = status_is(resource, completed);
        item.done_us = item.done ? status_since_us : 0;
    } else if (strcmp(type, "Appointment") == 0) {
        item.due_us = last_instant(json_object_get(resource, "start"));
        item.done = status_is(resource, kept);
    } else if (strcmp(type, "MedicationRequest") == 0) {
        item.due_us = last_instant(json_object_get(
            json_object_get(json_object_get(resource, "dispenseRequest"), "validityPeriod"),
            "start"));
        item.done = status_is(resource, in_effect);
        item.done_us = item.done ? status_since_us : 0;
    } else {
        return false;
    }
    decide(&item, now_us);
    *out = item;
    return true;
}

void care_adherence_judge_detail(const json_t *detail, int64_t now_us, adherence_item_t *out)
{
    static const char *const completed[] = {"completed", NULL};
    adherence_item_t item = {0};
    item.due_us = last_instant(json_object_get(json_object_get(detail, "scheduledPeriod"), "end"));
    item.done = status_is(detail, completed);
    decide(&item, now_us);
    *out = item;
}

void care_adherence_count(adherence_counts_t *counts, const adherence_item_t *item)
{
    switch (item->outcome) {
    case ADHERENCE_ON_TIME: counts->on_time++; break;
    case ADHERENCE_LATE: counts->late++; break;
    case ADHERENCE_NOT_DONE: counts->not_done++; break;
    case ADHERENCE_NOT_YET_DUE: counts->not_yet_due++; break;
    case ADHERENCE_NO_DUE_TIME: counts->no_due_time++; break;
    }
}

bool care_adherence_rate(const adherence_counts_t *counts, char *out, size_t size)
{
    int64_t due = counts->on_time + counts->late + counts->not_done;
    if (!due)
        return false;
    /* rounded half up to hundredths in integers: no floating point in a reported figure */
    int64_t hundredths = (counts->on_time * 200 + due) / (2 * due);
    snprintf(out, size, "%lld.%02lld", (long long)(hundredths / 100),
             (long long)(hundredths % 100));
    return true;
}

status_t care_adherence_status_since(store_conn_t *conn, const char *type, const char *id,
                                     int64_t version, const char *status, arena_t *arena,
                                     int64_t *out_us, err_t *err)
{
    *out_us = 0;
    int64_t since = 0;
    for (int64_t v = version; v >= 1 && version - v < HISTORY_LIMIT; v--) {
        store_version_t stored;
        status_t rc = store_read(conn, type, id, v, arena, &stored, err);
        if (rc == ERR_NOT_FOUND || rc == ERR_GONE) {
            err_reset(err);
            break;
        }
        if (rc)
            return rc;
        if (stored.deleted)
            break;
        json_t *resource = jv_parse(stored.json, stored.json_len, err);
        if (!resource)
            return err->code;
        const char *s = json_string_value(json_object_get(resource, "status"));
        bool same = s && strcmp(s, status) == 0;
        json_decref(resource);
        if (!same)
            break;
        since = stored.updated_us;
        if (v == 1 || version - v == HISTORY_LIMIT - 1) {
            /* the first version, or as far back as we look: reached the start of the run */
            if (version - v == HISTORY_LIMIT - 1)
                since = 0;
            break;
        }
    }
    *out_us = since;
    return ERR_OK;
}
