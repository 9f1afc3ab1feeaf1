/*
 * scheduled.c - the jobs of scheduled actions. The state of a recurrence is its job: the
 * next run time and the enrolment it counts from. What an occurrence makes carries the
 * occurrence's key in its identifier, so a run repeated (at-least-once delivery, a crash
 * between making it and asking for the next run) finds it made and makes nothing more.
 */
#include "care/scheduled.h"

#include <string.h>

#include "base/calendar.h"
#include "base/jv.h"
#include "base/log.h"
#include "care/care_int.h"
#include "care/protocol.h"
#include "care/protocols.h"
#include "care/recurrence.h"
#include "care/triggers.h"
#include "fhir/defs.h"
#include "fhir/workflow.h"
#include "repo/repo.h"

#define ENROLMENT_PAGE 200 /* EpisodeOfCare per run of a protocol-enrolment job */

void care_scheduled_register(void)
{
    repo_worker_on_event("EpisodeOfCare", care_on_episode, NULL);
    repo_worker_on_event("PlanDefinition", care_on_plan, NULL);
    repo_worker_on_job(CARE_JOB_OCCURRENCE, care_occurrence_run, NULL);
    repo_worker_on_job(CARE_JOB_ENROLMENT, care_enrolment_run, NULL);
}

/* ---- helpers ------------------------------------------------------------------------------ */

/* The patient id of an EpisodeOfCare, or NULL. */
static const char *patient_of(const json_t *episode)
{
    const char *ref = care__str(json_object_get(episode, "patient"), "reference");
    if (!ref || strncmp(ref, "Patient/", 8) != 0 || !repo_id_valid(ref + 8, strlen(ref + 8)))
        return NULL;
    return ref + 8;
}

static bool active(const json_t *r)
{
    const char *status = care__str(r, "status");
    return status && strcmp(status, "active") == 0;
}

/* Where an enrolment's recurrence counts from: its period.start, else fallback_us. */
static int64_t anchor_of(const json_t *episode, int64_t fallback_us)
{
    const char *start = care__str(json_object_get(episode, "period"), "start");
    int64_t at;
    return start && care_datetime_parse(calendar_default(), start, &at) ? at : fallback_us;
}

/* The key of the occurrence job of action a of p for a patient. */
static const char *job_key(arena_t *arena, const care_protocol_t *p, const care_action_t *a,
                           const char *patient_id)
{
    return arena_printf(arena, "%s/%s/Patient/%s", p->id, a->id, patient_id);
}

static const char *occurrence_payload(arena_t *arena, const char *episode, int64_t anchor_us,
                                      int64_t since_us)
{
    json_t *j = json_pack("{s:s,s:I,s:I}", "episode", episode, "anchor", (json_int_t)anchor_us,
                          "since", (json_int_t)since_us);
    buf_t b = BUF_INIT;
    jv_dump(j, &b);
    json_decref(j);
    const char *text = arena_strdup(arena, b.ptr);
    buf_release(&b);
    return text;
}

static int64_t int_of(const json_t *payload, const char *key)
{
    const json_t *v = json_object_get(payload, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

typedef struct {
    const char *kind, *key, *payload;
    int64_t run_at_us;
} schedule_t;

typedef struct {
    schedule_t *items;
    size_t n, cap;
    arena_t *arena;
} schedules_t;

static void schedules_add(schedules_t *s, const char *kind, const char *key, int64_t run_at_us,
                          const char *payload)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        schedule_t *items = arena_zalloc(s->arena, cap * sizeof(*items));
        if (s->n)
            memcpy(items, s->items, s->n * sizeof(*items));
        s->items = items;
        s->cap = cap;
    }
    s->items[s->n++] = (schedule_t){kind, key, payload, run_at_us};
}

static status_t schedules_txn(store_txn_t *txn, void *arg, err_t *err)
{
    schedules_t *s = arg;
    for (size_t i = 0; i < s->n; i++) {
        status_t rc = store_txn_job_schedule(txn, s->items[i].kind, s->items[i].key,
                                             s->items[i].run_at_us, s->items[i].payload, NULL, err);
        if (rc)
            return rc;
    }
    return ERR_OK;
}

static status_t schedules_commit(store_t *store, schedules_t *s, err_t *err)
{
    return s->n ? store_run_relaxed(store, schedules_txn, s, err) : ERR_OK;
}

/* Adds the occurrence jobs of p's scheduled actions for an enrolment: each first runs at its
 * first occurrence at or after since_us. */
static void schedule_enrolment(schedules_t *s, const care_protocol_t *p, const char *patient_id,
                               const char *episode, int64_t anchor_us, int64_t since_us)
{
    const calendar_t *cal = calendar_default();
    for (size_t k = 0; k < p->nactions; k++) {
        const care_action_t *a = &p->actions[k];
        if (!(a->triggers & (1u << CARE_SCHEDULED)))
            continue;
        int64_t first = care_recurrence_next(cal, anchor_us, &a->every, since_us);
        schedules_add(s, CARE_JOB_OCCURRENCE, job_key(s->arena, p, a, patient_id), first,
                      occurrence_payload(s->arena, episode, anchor_us, since_us));
    }
}

/* ---- change events ------------------------------------------------------------------------ */

status_t care_on_episode(store_t *store, const store_event_t *event, void *arg, err_t *err)
{
    (void)arg;
    if (event->action == STORE_EVENT_DELETE)
        return ERR_OK; /* its jobs find no enrolment and end */
    arena_t arena;
    arena_init(&arena);
    store_conn_t *conn = NULL;
    json_t *before = NULL, *after = NULL;
    status_t rc = store_connect(store, &conn, err);
    if (rc == ERR_OK && event->version > 1)
        rc = care__read(conn, "EpisodeOfCare", event->id, event->version - 1, &arena, &before, err);
    if (rc == ERR_OK)
        rc = care__read(conn, "EpisodeOfCare", event->id, event->version, &arena, &after, err);
    if (rc)
        goto out;
    care_trigger_t triggers[CARE_TRIGGER__COUNT];
    size_t n = care_triggers_of("EpisodeOfCare", before, after, triggers, CARE_TRIGGER__COUNT);
    bool enrolled = false;
    for (size_t i = 0; i < n; i++)
        enrolled |= triggers[i] == CARE_PATIENT_ENROLLED;
    const char *patient_id = after ? patient_of(after) : NULL;
    if (!enrolled || !patient_id)
        goto out;
    const care_protocol_t **plans;
    size_t nplans;
    if ((rc = care_protocols_scheduled(conn, event->time_us, &arena, &plans, &nplans, err)))
        goto out;
    schedules_t s = {.arena = &arena};
    int64_t anchor = anchor_of(after, event->time_us);
    for (size_t i = 0; i < nplans; i++)
        schedule_enrolment(&s, plans[i], patient_id, event->id, anchor, event->time_us);
    rc = schedules_commit(store, &s, err);
    if (rc == ERR_OK && s.n)
        log_info("engine: EpisodeOfCare/%s enrolled Patient/%s: %zu scheduled action(s)", event->id,
                 patient_id, s.n);
out:
    if (conn)
        store_disconnect(conn);
    arena_release(&arena);
    return rc;
}

/* Whether a PlanDefinition is an active protocol with a periodic trigger. */
static bool has_schedule(const json_t *plan)
{
    if (!active(plan) || !fhir_concept_has(json_object_get(plan, "type"), CARE_PLAN_TYPE_SYSTEM,
                                           CARE_PLAN_TYPE_WORKFLOW))
        return false;
    size_t i, k;
    const json_t *action, *trigger;
    json_array_foreach(json_object_get(plan, "action"), i, action)
    {
        json_array_foreach(json_object_get(action, "trigger"), k, trigger)
        {
            const char *type = care__str(trigger, "type");
            if (type && strcmp(type, "periodic") == 0)
                return true;
        }
    }
    return false;
}

status_t care_on_plan(store_t *store, const store_event_t *event, void *arg, err_t *err)
{
    (void)arg;
    if (event->action == STORE_EVENT_DELETE)
        return ERR_OK; /* its jobs find no plan and end */
    arena_t arena;
    arena_init(&arena);
    store_conn_t *conn = NULL;
    json_t *plan = NULL;
    status_t rc = store_connect(store, &conn, err);
    if (rc == ERR_OK)
        rc = care__read(conn, "PlanDefinition", event->id, event->version, &arena, &plan, err);
    if (conn)
        store_disconnect(conn);
    if (rc == ERR_OK && plan && has_schedule(plan)) {
        schedules_t s = {.arena = &arena};
        schedules_add(
            &s, CARE_JOB_ENROLMENT, event->id, event->time_us,
            arena_printf(&arena, "{\"after\":0,\"since\":%lld}", (long long)event->time_us));
        rc = schedules_commit(store, &s, err);
    }
    arena_release(&arena);
    return rc;
}

/* ---- jobs --------------------------------------------------------------------------------- */

/* The patient's enrolment: the EpisodeOfCare of the payload when it is still active, else
 * another active one of the patient (its period.start, else its last update, is the anchor).
 * *out_episode NULL: not enrolled. */
static status_t enrolment_of(store_conn_t *conn, const char *patient_id, const char *episode,
                             int64_t anchor_us, int64_t now_us, arena_t *arena,
                             const char **out_episode, int64_t *out_anchor, err_t *err)
{
    *out_episode = NULL;
    json_t *e = NULL;
    status_t rc = episode ? care__read(conn, "EpisodeOfCare", episode, 0, arena, &e, err) : ERR_OK;
    if (rc)
        return rc;
    if (e && active(e) && patient_of(e) && strcmp(patient_of(e), patient_id) == 0) {
        *out_episode = episode;
        *out_anchor = anchor_of(e, anchor_us);
        return ERR_OK;
    }
    fhir_search_pair_t pairs[] = {
        url_pair("patient", arena_printf(arena, "Patient/%s", patient_id)),
        url_pair("status", "active"),
        url_pair("_count", "1"),
    };
    repo_search_t s = {.type = fhir_resource_type_find("EpisodeOfCare", 13),
                       .pairs = pairs,
                       .npairs = 3,
                       .now_us = now_us};
    fhir_search_plan_t *plan;
    store_search_t query;
    store_search_result_t found;
    if ((rc = repo_search_plan(conn, &s, arena, &plan, &query, err)) ||
        (rc = store_search(conn, &query, arena, &found, err)) || !found.nmatch)
        return rc;
    const store_version_t *v = &found.entries[0].version;
    json_t *other = care__json_in(arena, v->json, v->json_len, err);
    if (!other)
        return err->code;
    *out_episode = v->id;
    *out_anchor = anchor_of(other, v->updated_us);
    return ERR_OK;
}

status_t care_occurrence_run(store_t *store, const store_job_t *job, int64_t now_us, arena_t *arena,
                             repo_job_next_t *next, void *arg, err_t *err)
{
    (void)arg;
    next->next_run_us = 0;
    /* "<plan id>/<action id>/Patient/<patient id>": ids have no '/', an action id may */
    const char *slash = strchr(job->key, '/');
    const char *patient = NULL;
    for (const char *at = job->key; (at = strstr(at, "/Patient/")); at++)
        patient = at;
    if (!slash || !patient || patient <= slash)
        return ERR_OK;
    const char *plan_id = arena_strndup(arena, job->key, (size_t)(slash - job->key));
    const char *action_id = arena_strndup(arena, slash + 1, (size_t)(patient - slash - 1));
    const char *patient_id = patient + strlen("/Patient/");
    json_t *payload =
        job->payload ? care__json_in(arena, job->payload, strlen(job->payload), err) : NULL;
    if (!payload) {
        err_reset(err);
        return ERR_OK;
    }
    int64_t anchor = int_of(payload, "anchor"), since = int_of(payload, "since");
    const char *episode = care__str(payload, "episode");

    store_conn_t *conn;
    status_t rc = store_connect(store, &conn, err);
    if (rc)
        return rc;
    const care_protocol_t *p;
    int k;
    if ((rc = care_protocols_get(conn, plan_id, now_us, arena, &p, err)))
        goto out;
    if (!p || (k = care_protocol_action_find(p, action_id)) < 0 ||
        !(p->actions[k].triggers & (1u << CARE_SCHEDULED))) {
        log_info("engine: scheduled action %s#%s ends for Patient/%s: the plan is no longer "
                 "active or has it no more",
                 plan_id, action_id, patient_id);
        goto out;
    }
    const care_action_t *a = &p->actions[k];
    if ((rc = enrolment_of(conn, patient_id, episode, anchor, now_us, arena, &episode, &anchor,
                           err)))
        goto out;
    if (!episode) {
        log_info("engine: scheduled action %s#%s ends for Patient/%s: no longer enrolled", p->url,
                 a->id, patient_id);
        goto out;
    }
    const calendar_t *cal = calendar_default();
    int64_t n = care_recurrence_index(cal, anchor, &a->every, now_us);
    int64_t at = care_recurrence_at(cal, anchor, &a->every, n);
    if (n >= 1 && at >= since) {
        /* the latest occurrence that has come; earlier ones missed while no worker ran are
           not made again */
        const char *key = care_recurrence_key(cal, &a->every, at, arena);
        if ((rc = care_protocols_fire_occurrence(store, p, a, patient_id, at, key, NULL, err)))
            goto out;
    }
    next->next_run_us = care_recurrence_at(cal, anchor, &a->every, n + 1);
    next->next_payload = occurrence_payload(arena, episode, anchor, since);
out:
    store_disconnect(conn);
    return rc;
}

status_t care_enrolment_run(store_t *store, const store_job_t *job, int64_t now_us, arena_t *arena,
                            repo_job_next_t *next, void *arg, err_t *err)
{
    (void)arg;
    next->next_run_us = 0;
    json_t *payload =
        job->payload ? care__json_in(arena, job->payload, strlen(job->payload), err) : NULL;
    if (!payload) {
        err_reset(err);
        return ERR_OK;
    }
    int64_t after = int_of(payload, "after"), since = int_of(payload, "since");
    if (after < 0 || since < 0)
        return ERR_OK;
    store_conn_t *conn;
    status_t rc = store_connect(store, &conn, err);
    if (rc)
        return rc;
    const care_protocol_t *p;
    store_scan_row_t *rows = NULL;
    size_t n = 0;
    if ((rc = care_protocols_get(conn, job->key, now_us, arena, &p, err)) || !p)
        goto out;
    if ((rc = store_scan(conn, "EpisodeOfCare", after, ENROLMENT_PAGE, arena, &rows, &n, err)))
        goto out;
    schedules_t s = {.arena = arena};
    for (size_t i = 0; i < n; i++) {
        json_t *e = care__json_in(arena, rows[i].json, rows[i].json_len, err);
        if (!e) {
            rc = err->code;
            goto out;
        }
        const char *patient_id = patient_of(e);
        if (!active(e) || !patient_id)
            continue;
        int64_t updated;
        const char *last = care__str(json_object_get(e, "meta"), "lastUpdated");
        if (!last || !care_datetime_parse(calendar_default(), last, &updated))
            updated = since;
        schedule_enrolment(&s, p, patient_id, rows[i].id, anchor_of(e, updated), since);
    }
    if ((rc = schedules_commit(store, &s, err)))
        goto out;
    if (s.n)
        log_info("engine: %s: %zu scheduled action(s) of enrolled patients scheduled", p->url, s.n);
    if (n == ENROLMENT_PAGE) {
        next->next_run_us = now_us;
        next->next_payload = arena_printf(arena, "{\"after\":%lld,\"since\":%lld}",
                                          (long long)rows[n - 1].rid, (long long)since);
    }
out:
    store_disconnect(conn);
    return rc;
}
