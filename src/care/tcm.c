/*
 * tcm.c - the TCM report of a discharge (tcm.h): the pure judging of the three requirements
 * and the code, then the gathering of what it judges (the Encounter read as the caller reads
 * it, the patient's Encounters and Communications since 30 days before the discharge, the
 * Tasks about each discharge) through the store.
 */
#include "care/tcm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/tz.h"
#include "base/url.h"
#include "care/care_int.h"
#include "care/ext.h"
#include "care/protocol.h"
#include "fhir/defs.h"
#include "fhir/workflow.h"
#include "repo/repo.h"

#define V3_ACT_CODE     "http://terminology.hl7.org/CodeSystem/v3-ActCode"
#define V3_ACT_PRIORITY "http://terminology.hl7.org/CodeSystem/v3-ActPriority"
#define V3_MODE         "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
#define DISPOSITION     "http://terminology.hl7.org/CodeSystem/discharge-disposition"

#define DAY_US ((int64_t)86400 * 1000000)

/* The most Encounters or Communications of the patient one report reads. */
#define MAX_GATHERED 1000

const char *care_tcm_code_text(tcm_code_t code)
{
    return code == TCM_CODE_99496 ? "99496" : code == TCM_CODE_99495 ? "99495" : "none";
}

const char *care_tcm_status_code(tcm_status_t status)
{
    return status == TCM_MET ? "met" : status == TCM_PENDING ? "pending" : "missed";
}

/* ---- small readers ----------------------------------------------------------------------- */

/* The first instant a date, dateTime or instant member covers. */
static bool instant_of(const json_t *value, int64_t *out_us)
{
    int64_t high;
    return value && fhir_date_bounds(value, out_us, &high);
}

static bool is(const char *s, const char *value)
{
    return s && strcmp(s, value) == 0;
}

/* The last microsecond of the local date of us in calendar's zone. */
static int64_t day_end(const calendar_t *calendar, int64_t us)
{
    const tz_t *zone = calendar_zone(calendar);
    int64_t secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    tz_civil_t local;
    tz_to_local(zone, secs, &local, NULL);
    local.day += 1;
    local.hour = local.minute = local.second = 0;
    return tz_from_local(zone, &local, NULL) * 1000000 - 1;
}

/* The local date of us as days since the epoch. */
static int64_t local_day(const calendar_t *calendar, int64_t us)
{
    int64_t secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    tz_civil_t local;
    tz_to_local(calendar_zone(calendar), secs, &local, NULL);
    return tz_days_from_civil(local.year, local.month, local.day);
}

/* "Type/id" of a resource, in arena; NULL when it has no id. */
static const char *reference_of(const json_t *resource, arena_t *arena)
{
    const char *type = care__str(resource, "resourceType"), *id = care__str(resource, "id");
    return type && id ? arena_printf(arena, "%s/%s", type, id) : NULL;
}

/* Whether a Reference, or an array of them, points at target ("Type/id"): relative, or an
 * absolute url ending in "/Type/id". */
static bool refers_to(const json_t *refs, const char *target)
{
    if (!target)
        return false;
    if (json_is_array(refs)) {
        size_t i;
        json_t *r;
        json_array_foreach(refs, i, r)
        {
            if (refers_to(r, target))
                return true;
        }
        return false;
    }
    const char *ref = care__str(refs, "reference");
    if (!ref)
        return false;
    size_t n = strlen(ref), t = strlen(target);
    return strcmp(ref, target) == 0 ||
           (n > t && ref[n - t - 1] == '/' && strcmp(ref + n - t, target) == 0);
}

/* The action id of a Task of the transitional-care protocol (its protocol-action extension
 * "<TCM_PROTOCOL_URL>#<action id>"), or NULL. */
static const char *tcm_action_of(const json_t *task)
{
    if (is(care__str(task, "status"), "entered-in-error") ||
        is(care__str(task, "status"), "cancelled"))
        return NULL;
    size_t i;
    json_t *ext;
    json_array_foreach(json_object_get(task, "extension"), i, ext)
    {
        if (!is(care__str(ext, "url"), CARE_EXT_PROTOCOL_ACTION))
            continue;
        const char *value = care__str(ext, "valueString");
        size_t n = strlen(TCM_PROTOCOL_URL);
        if (value && strncmp(value, TCM_PROTOCOL_URL, n) == 0 && value[n] == '#')
            return value + n + 1;
    }
    return NULL;
}

/* When a completed Task was done: executionPeriod.end, else lastModified, else when it was
 * last written. false when it is not completed or no time says. */
static bool task_done(const json_t *task, int64_t *out_us)
{
    if (!is(care__str(task, "status"), "completed"))
        return false;
    return instant_of(json_object_get(json_object_get(task, "executionPeriod"), "end"), out_us) ||
           instant_of(json_object_get(task, "lastModified"), out_us) ||
           instant_of(json_object_get(json_object_get(task, "meta"), "lastUpdated"), out_us);
}

/* The Encounter's class code in v3-ActCode (or without a system), or NULL. */
static const char *class_code(const json_t *encounter)
{
    const json_t *c = json_object_get(encounter, "class");
    const char *system = care__str(c, "system");
    return !system || strcmp(system, V3_ACT_CODE) == 0 ? care__str(c, "code") : NULL;
}

bool care_tcm_discharged(const json_t *encounter, const char **out_problem, const char **out_where)
{
    int64_t end;
    if (!is(care__str(encounter, "status"), "finished")) {
        *out_problem = "its status is not finished";
        *out_where = "Encounter.status";
        return false;
    }
    if (!instant_of(json_object_get(json_object_get(encounter, "period"), "end"), &end)) {
        *out_problem = "it has no period.end (the discharge time)";
        *out_where = "Encounter.period.end";
        return false;
    }
    return true;
}

/* ---- judging ------------------------------------------------------------------------------ */

/* Whether the stay and the disposition are ones TCM covers; *out_why says why not. */
static bool eligible(const json_t *encounter, arena_t *arena, const char **out_why)
{
    const char *cls = class_code(encounter);
    static const char *const stays[] = {"IMP", "ACUTE", "NONAC", "OBSENC", "SS"};
    bool stay = false;
    for (size_t i = 0; cls && i < sizeof(stays) / sizeof(stays[0]); i++)
        stay = stay || strcmp(cls, stays[i]) == 0;
    if (!stay) {
        *out_why =
            arena_printf(arena, "the stay was not inpatient, observation or short stay (class %s)",
                         cls ? cls : "unknown");
        return false;
    }
    size_t i;
    json_t *coding;
    json_array_foreach(
        json_object_get(
            json_object_get(json_object_get(encounter, "hospitalization"), "dischargeDisposition"),
            "coding"),
        i, coding)
    {
        if (!is(care__str(coding, "system"), DISPOSITION))
            continue;
        const char *code = care__str(coding, "code");
        if (!is(code, "home") && !is(code, "alt-home") && !is(code, "aadvice")) {
            *out_why = arena_printf(arena,
                                    "the patient was discharged to \"%s\", not to a "
                                    "community setting",
                                    code ? code : "");
            return false;
        }
    }
    return true;
}

/* High complexity: from the face-to-face Task the protocol made, else from the protocol's
 * rule (an emergent admission, a stay of 4 days or more, 3 or more diagnoses). */
static void judge_complexity(const tcm_episode_t *e, const calendar_t *calendar,
                             int64_t discharge_us, arena_t *arena, tcm_report_t *out)
{
    size_t i;
    json_t *task;
    json_array_foreach(e->tasks, i, task)
    {
        const char *action = tcm_action_of(task);
        if (is(action, "face-to-face-7") || is(action, "face-to-face-14")) {
            out->high_complexity = is(action, "face-to-face-7");
            out->complexity_reason = arena_printf(arena, "the protocol's Task %s (%s)",
                                                  reference_of(task, arena), action);
            return;
        }
    }
    const json_t *encounter = e->encounter;
    if (fhir_concept_has(json_object_get(encounter, "priority"), V3_ACT_PRIORITY, "EM")) {
        out->high_complexity = true;
        out->complexity_reason = "an emergent admission";
        return;
    }
    int64_t start;
    if (instant_of(json_object_get(json_object_get(encounter, "period"), "start"), &start)) {
        int64_t days = local_day(calendar, discharge_us) - local_day(calendar, start);
        if (days >= 4) {
            out->high_complexity = true;
            out->complexity_reason = arena_printf(arena, "a stay of %lld days", (long long)days);
            return;
        }
    }
    size_t diagnoses = json_array_size(json_object_get(encounter, "diagnosis"));
    if (diagnoses >= 3) {
        out->high_complexity = true;
        out->complexity_reason = arena_printf(arena, "%zu diagnoses", diagnoses);
        return;
    }
    out->high_complexity = false;
    out->complexity_reason =
        "no emergent admission, a stay of under 4 days and fewer than 3 diagnoses";
}

/* Whether a Communication's medium is one of an interactive contact (none given counts). */
static bool interactive_medium(const json_t *communication)
{
    const json_t *media = json_object_get(communication, "medium");
    if (!json_array_size(media))
        return true;
    static const char *const modes[] = {"PHONE", "VIDEOCONF", "FACE", "ELECTRONIC"};
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        if (fhir_concept_has(media, V3_MODE, modes[i]))
            return true;
    return false;
}

static void judge_contact(const tcm_episode_t *e, const calendar_t *calendar, int64_t now_us,
                          const char *encounter_ref, arena_t *arena, tcm_report_t *out)
{
    tcm_requirement_t *r = &out->contact;
    r->deadline_us = calendar_add_business_days(calendar, out->discharge_us, 2);
    /* the protocol's interactive-contact Tasks */
    const char *tasks[8];
    size_t ntasks = 0;
    int64_t task_done_us = INT64_MAX;
    const char *task_done_ref = NULL;
    size_t i;
    json_t *task;
    json_array_foreach(e->tasks, i, task)
    {
        if (!is(tcm_action_of(task), "interactive-contact"))
            continue;
        const char *ref = reference_of(task, arena);
        if (ntasks < sizeof(tasks) / sizeof(tasks[0]))
            tasks[ntasks++] = ref;
        int64_t done;
        if (task_done(task, &done) && done < task_done_us) {
            task_done_us = done;
            task_done_ref = ref;
        }
    }
    r->task = ntasks ? tasks[0] : NULL;
    /* the Communications of the contact: the earliest successful one, the two earliest
       unsuccessful attempts */
    int64_t success_us = INT64_MAX, attempt_us[2] = {INT64_MAX, INT64_MAX};
    const char *success_ref = NULL, *attempt_ref[2] = {NULL, NULL};
    json_t *c;
    json_array_foreach(e->communications, i, c)
    {
        bool about = refers_to(json_object_get(c, "about"), encounter_ref) ||
                     refers_to(json_object_get(c, "encounter"), encounter_ref);
        for (size_t k = 0; k < ntasks && !about; k++)
            about = refers_to(json_object_get(c, "partOf"), tasks[k]);
        int64_t sent;
        if (!about || !interactive_medium(c) || !instant_of(json_object_get(c, "sent"), &sent) ||
            sent < out->discharge_us || sent > r->deadline_us)
            continue;
        const char *status = care__str(c, "status");
        if (is(status, "completed")) {
            out->successful++;
            if (sent < success_us) {
                success_us = sent;
                success_ref = reference_of(c, arena);
            }
        } else if (is(status, "not-done")) {
            out->attempts++;
            if (sent < attempt_us[0]) {
                attempt_us[1] = attempt_us[0], attempt_ref[1] = attempt_ref[0];
                attempt_us[0] = sent, attempt_ref[0] = reference_of(c, arena);
            } else if (sent < attempt_us[1]) {
                attempt_us[1] = sent, attempt_ref[1] = reference_of(c, arena);
            }
        }
    }
    if (success_ref && (out->attempts < 2 || success_us <= attempt_us[1])) {
        r->status = TCM_MET;
        r->met_us = success_us;
        r->evidence[r->nevidence++] = success_ref;
    } else if (out->attempts >= 2) {
        r->status = TCM_MET;
        r->met_us = attempt_us[1];
        r->evidence[r->nevidence++] = attempt_ref[0];
        r->evidence[r->nevidence++] = attempt_ref[1];
    } else if (task_done_ref && task_done_us <= r->deadline_us) {
        r->status = TCM_MET;
        r->met_us = task_done_us;
        r->evidence[r->nevidence++] = task_done_ref;
    } else {
        r->status = now_us > r->deadline_us ? TCM_MISSED : TCM_PENDING;
    }
}

/* The first face-to-face visit after the discharge: an Encounter of class AMB or HH, status
 * finished, in-progress or arrived, starting after the discharge. */
static void find_visit(const tcm_episode_t *e, const char *encounter_ref, arena_t *arena,
                       tcm_report_t *out)
{
    size_t i;
    json_t *visit;
    json_array_foreach(e->encounters, i, visit)
    {
        const char *ref = reference_of(visit, arena);
        const char *cls = class_code(visit), *status = care__str(visit, "status");
        int64_t start;
        if (!ref || strcmp(ref, encounter_ref) == 0 || !(is(cls, "AMB") || is(cls, "HH")) ||
            !(is(status, "finished") || is(status, "in-progress") || is(status, "arrived")) ||
            !instant_of(json_object_get(json_object_get(visit, "period"), "start"), &start) ||
            start <= out->discharge_us)
            continue;
        if (!out->visit_ref || start < out->visit_us) {
            out->visit_ref = ref;
            out->visit_us = start;
        }
    }
}

static void judge_reconciliation(const tcm_episode_t *e, const calendar_t *calendar, int64_t now_us,
                                 int64_t day7_end, int64_t day14_end, arena_t *arena,
                                 tcm_report_t *out)
{
    tcm_requirement_t *r = &out->reconciliation;
    /* by the visit's date; with no visit yet, by the last day a visit still counts */
    r->deadline_us = out->visit_ref                               ? day_end(calendar, out->visit_us)
                     : out->high_complexity && now_us <= day7_end ? day7_end
                                                                  : day14_end;
    int64_t done_us = INT64_MAX;
    const char *done_ref = NULL;
    size_t i;
    json_t *task;
    json_array_foreach(e->tasks, i, task)
    {
        const char *action = tcm_action_of(task);
        if (!action || strncmp(action, "medication-reconciliation", 25) != 0)
            continue;
        const char *ref = reference_of(task, arena);
        if (!r->task)
            r->task = ref;
        int64_t done;
        if (task_done(task, &done) && done < done_us) {
            done_us = done;
            done_ref = ref;
        }
    }
    if (done_ref && done_us <= r->deadline_us) {
        r->status = TCM_MET;
        r->met_us = done_us;
        r->evidence[r->nevidence++] = done_ref;
    } else {
        r->status = done_ref || now_us > r->deadline_us ? TCM_MISSED : TCM_PENDING;
    }
}

/* Appends name to a list of names in arena ("a, b"). */
static const char *list_add(arena_t *arena, const char *list, const char *name)
{
    return list ? arena_printf(arena, "%s, %s", list, name) : name;
}

static void judge_code(int64_t now_us, int64_t day7_end, int64_t day14_end, arena_t *arena,
                       tcm_report_t *out)
{
    bool contact = out->contact.status == TCM_MET;
    bool reconciled = out->reconciliation.status == TCM_MET;
    bool visit7 = out->visit_ref && out->visit_us <= day7_end;
    bool visit14 = out->visit_ref && out->visit_us <= day14_end;
    out->code = out->high_complexity && contact && visit7 && reconciled ? TCM_CODE_99496
                : contact && visit14 && reconciled                      ? TCM_CODE_99495
                                                                        : TCM_CODE_NONE;
    bool contact_ok = out->contact.status != TCM_MISSED;
    bool reconciled_ok = out->reconciliation.status != TCM_MISSED;
    bool visit7_ok = visit7 || (!out->visit_ref && now_us <= day7_end);
    bool visit14_ok = visit14 || (!out->visit_ref && now_us <= day14_end);
    out->reachable = out->high_complexity && contact_ok && visit7_ok && reconciled_ok
                         ? TCM_CODE_99496
                     : contact_ok && visit14_ok && reconciled_ok ? TCM_CODE_99495
                                                                 : TCM_CODE_NONE;
    out->final = out->reachable == out->code;
    if (out->code == TCM_CODE_99496) {
        out->reason = "interactive contact in time, a face-to-face visit within 7 days, "
                      "medication reconciliation by the visit, high complexity";
        return;
    }
    if (out->code == TCM_CODE_99495) {
        out->reason = out->high_complexity
                          ? "interactive contact in time, a face-to-face visit within 14 days "
                            "(not within 7, which 99496 needs), medication reconciliation by "
                            "the visit"
                          : "interactive contact in time, a face-to-face visit within 14 days, "
                            "medication reconciliation by the visit, moderate complexity";
        if (!out->final)
            out->reason = arena_printf(arena, "%s; 99496 is still reachable", out->reason);
        return;
    }
    const char *missed = NULL, *pending = NULL;
    if (out->contact.status == TCM_MISSED)
        missed = list_add(arena, missed, "interactive contact");
    else if (out->contact.status == TCM_PENDING)
        pending = list_add(arena, pending, "interactive contact");
    if (!visit14 && (out->visit_ref || now_us > day14_end))
        missed = list_add(arena, missed, "face-to-face visit within 14 days");
    else if (!visit14)
        pending = list_add(arena, pending, "face-to-face visit");
    if (out->reconciliation.status == TCM_MISSED)
        missed = list_add(arena, missed, "medication reconciliation by the visit");
    else if (out->reconciliation.status == TCM_PENDING)
        pending = list_add(arena, pending, "medication reconciliation");
    if (out->final)
        out->reason = arena_printf(arena, "missed: %s", missed ? missed : "nothing");
    else
        out->reason =
            arena_printf(arena, "pending: %s; %s is still reachable", pending ? pending : "nothing",
                         care_tcm_code_text(out->reachable));
}

void care_tcm_judge(const tcm_episode_t *episode, const calendar_t *calendar, int64_t now_us,
                    arena_t *arena, tcm_report_t *out)
{
    memset(out, 0, sizeof(*out));
    const json_t *encounter = episode->encounter;
    const char *encounter_ref = reference_of(encounter, arena);
    if (!instant_of(json_object_get(json_object_get(encounter, "period"), "end"),
                    &out->discharge_us))
        abort(); /* the caller checks care_tcm_discharged */
    out->period_end_us = calendar_add_days(calendar, out->discharge_us, 30);
    judge_complexity(episode, calendar, out->discharge_us, arena, out);
    int64_t day7_end = day_end(calendar, calendar_add_days(calendar, out->discharge_us, 7));
    int64_t day14_end = day_end(calendar, calendar_add_days(calendar, out->discharge_us, 14));

    judge_contact(episode, calendar, now_us, encounter_ref, arena, out);

    find_visit(episode, encounter_ref, arena, out);
    tcm_requirement_t *v = &out->visit;
    v->deadline_us = out->high_complexity ? day7_end : day14_end;
    if (out->visit_ref && out->visit_us <= v->deadline_us) {
        v->status = TCM_MET;
        v->met_us = out->visit_us;
        v->evidence[v->nevidence++] = out->visit_ref;
    } else {
        v->status = out->visit_ref || now_us > v->deadline_us ? TCM_MISSED : TCM_PENDING;
    }

    judge_reconciliation(episode, calendar, now_us, day7_end, day14_end, arena, out);

    const char *why = NULL;
    out->eligible = eligible(encounter, arena, &why);
    if (!out->eligible) {
        out->code = out->reachable = TCM_CODE_NONE;
        out->final = true;
        out->reason = why;
        return;
    }
    judge_code(now_us, day7_end, day14_end, arena, out);
}

bool care_tcm_supersede(tcm_report_t *report, const tcm_report_t *earlier, const char *earlier_ref,
                        const calendar_t *calendar, arena_t *arena)
{
    if (earlier->code == TCM_CODE_NONE || earlier->discharge_us >= report->discharge_us ||
        report->discharge_us >= earlier->period_end_us)
        return false;
    report->code = report->reachable = TCM_CODE_NONE;
    report->final = true;
    report->reason = arena_printf(
        arena, "one TCM per patient per 30 days: %s, discharged %s, already supports %s",
        earlier_ref, care_format_instant(calendar, earlier->discharge_us, arena),
        care_tcm_code_text(earlier->code));
    return true;
}

/* ---- gathering ---------------------------------------------------------------------------- */

/* Every match of a search of type with pairs, at most MAX_GATHERED. */
static status_t gather(store_conn_t *conn, const char *type, fhir_search_pair_t *pairs, size_t n,
                       int64_t now_us, arena_t *arena, json_t *array, err_t *err)
{
    repo_search_t s = {.type = fhir_resource_type_find(type, strlen(type)),
                       .pairs = pairs,
                       .npairs = n,
                       .now_us = now_us};
    const char *too_many =
        arena_printf(arena, "the TCM report reads at most %d resources of type %s of the patient",
                     MAX_GATHERED, type);
    return care__gather(conn, &s, MAX_GATHERED, too_many, arena, array, err);
}

/* The Tasks whose focus is encounter_ref, into a new array in arena's care. */
static status_t gather_tasks(store_conn_t *conn, const char *encounter_ref, int64_t now_us,
                             arena_t *arena, json_t **out, err_t *err)
{
    *out = care__owned(arena, json_array());
    fhir_search_pair_t pairs[] = {url_pair("focus", encounter_ref), url_pair("_count", "100")};
    return gather(conn, "Task", pairs, 2, now_us, arena, *out, err);
}

status_t care_tcm_report(store_conn_t *conn, const repo_caller_t *caller, const char *id,
                         const calendar_t *calendar, int64_t now_us, arena_t *arena,
                         tcm_report_t *out, json_t **out_encounter, err_t *err)
{
    *out_encounter = NULL;
    store_version_t v;
    status_t rc = repo_read_as(conn, caller, "Encounter", id, 0, arena, &v, NULL, err);
    if (rc)
        return rc;
    json_t *encounter = care__json_in(arena, v.json, v.json_len, err);
    if (!encounter)
        return err->code;
    *out_encounter = encounter;
    const char *problem, *where;
    if (!care_tcm_discharged(encounter, &problem, &where))
        return err_set(err, ERR_RULE, where,
                       "Encounter/%s is not a discharge the TCM report can judge: %s", id, problem);
    const char *patient = care__str(json_object_get(encounter, "subject"), "reference");
    if (!patient || strncmp(patient, "Patient/", 8) != 0 || strchr(patient + 8, '/'))
        return err_set(err, ERR_RULE, "Encounter.subject",
                       "Encounter/%s is not a discharge the TCM report can judge: its subject "
                       "is not a Patient",
                       id);
    int64_t discharge_us;
    instant_of(json_object_get(json_object_get(encounter, "period"), "end"), &discharge_us);
    /* what the earlier discharges of the 30 days before need as well */
    const char *since = care__utc_value(arena, "ge", discharge_us - 31 * DAY_US);
    json_t *encounters = care__owned(arena, json_array());
    json_t *communications = care__owned(arena, json_array());
    json_t *tasks;
    fhir_search_pair_t encounter_pairs[] = {url_pair("subject", patient), url_pair("date", since),
                                            url_pair("_count", "200")};
    fhir_search_pair_t communication_pairs[] = {url_pair("subject", patient),
                                                url_pair("sent", since), url_pair("_count", "200")};
    const char *self = arena_printf(arena, "Encounter/%s", id);
    if ((rc = gather(conn, "Encounter", encounter_pairs, 3, now_us, arena, encounters, err)) ||
        (rc = gather(conn, "Communication", communication_pairs, 3, now_us, arena, communications,
                     err)) ||
        (rc = gather_tasks(conn, self, now_us, arena, &tasks, err)))
        return rc;
    tcm_episode_t episode = {encounter, tasks, communications, encounters};
    care_tcm_judge(&episode, calendar, now_us, arena, out);
    if (!out->eligible)
        return ERR_OK;
    /* the 30-day rule: an earlier discharge whose period this one falls in, supporting a code */
    size_t i;
    json_t *earlier;
    json_array_foreach(encounters, i, earlier)
    {
        const char *ref = reference_of(earlier, arena);
        int64_t end;
        if (!ref || strcmp(ref, self) == 0 || !care_tcm_discharged(earlier, &problem, &where) ||
            !instant_of(json_object_get(json_object_get(earlier, "period"), "end"), &end) ||
            end >= discharge_us || end < discharge_us - 31 * DAY_US)
            continue;
        json_t *earlier_tasks;
        if ((rc = gather_tasks(conn, ref, now_us, arena, &earlier_tasks, err)))
            return rc;
        tcm_episode_t e = {earlier, earlier_tasks, communications, encounters};
        tcm_report_t report;
        care_tcm_judge(&e, calendar, now_us, arena, &report);
        if (care_tcm_supersede(out, &report, ref, calendar, arena))
            break;
    }
    return ERR_OK;
}
