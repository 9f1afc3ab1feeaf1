/*
 * engine.c - the engine's event handlers. Each is idempotent: it works out what the event
 * asks for from the record as it is, so an event handled twice (at-least-once delivery) or
 * after a crash changes nothing the first run did not.
 */
#include "care/engine.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/jv.h"
#include "base/log.h"
#include "care/care_int.h"
#include "care/overdue.h"
#include "care/protocols.h"
#include "care/scheduled.h"
#include "care/transitions.h"
#include "fhir/defs.h"
#include "fhir/workflow.h"
#include "repo/repo.h"
#include "repo/worker.h"

static arena_t engine_arena;
static scope_set_t engine_scopes;
static repo_caller_t engine;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

static void engine_init(void)
{
    arena_init(&engine_arena);
    static const char SCOPES[] = "system/*.cruds";
    scope_parse(&engine_arena, SCOPES, sizeof(SCOPES) - 1, &engine_scopes);
    engine = (repo_caller_t){.kind = REPO_CALLER_SERVICE,
                             .username = CARE_ENGINE_NAME,
                             .client_id = CARE_ENGINE_NAME,
                             .scopes = &engine_scopes,
                             .source = "engine"};
    repo_worker_on_event("CareTeam", care_on_care_team, NULL);
    care_overdue_register();
    care_protocols_register();
    care_scheduled_register();
    care_transitions_register();
}

void care_engine_register(void)
{
    pthread_once(&engine_once, engine_init);
}

const repo_caller_t *care_engine_caller(void)
{
    pthread_once(&engine_once, engine_init);
    return &engine;
}

/* ---- coordinator handover ------------------------------------------------------------------ */

/* The primary coordinator of a version of a team at now_us, or NULL when it is not an active
 * coordination team or has not exactly one. */
static const char *primary_of(const json_t *team, int64_t now_us)
{
    const char *first;
    if (!team || !fhir_care_team_coordinating(team))
        return NULL;
    return fhir_care_team_coordinators(team, now_us, &first) == 1 ? first : NULL;
}

typedef struct {
    repo_write_t *writes;
    size_t n;
} handover_t;

static status_t handover_txn(store_txn_t *txn, void *arg, err_t *err)
{
    handover_t *h = arg;
    for (size_t i = 0; i < h->n; i++) {
        status_t rc = repo_write_txn(txn, &h->writes[i], err);
        if (rc)
            return rc;
    }
    return ERR_OK;
}

/* The Task with its owner set to `to` and a note of why (a new value in arena's care). */
static json_t *handed_over(const store_version_t *task, const char *from, const char *to,
                           const char *patient, const char *team_id, int64_t time_us, err_t *err)
{
    json_t *t = jv_parse(task->json, task->json_len, err);
    if (!t)
        return NULL;
    json_object_del(t, "meta");
    json_object_set_new(t, "owner", json_pack("{s:s}", "reference", to));
    char when[32], text[512];
    time_t secs = (time_t)(time_us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(text, sizeof(text),
             "Handed over from %s to %s: the primary coordinator of %s changed "
             "(CareTeam/%s).",
             from, to, patient, team_id);
    json_t *notes = json_object_get(t, "note");
    if (!json_is_array(notes)) {
        notes = json_array();
        json_object_set_new(t, "note", notes);
    }
    json_array_append_new(notes, json_pack("{s:s,s:s,s:s}", "authorString", "Concerto engine",
                                           "time", when, "text", text));
    return t;
}

status_t care_on_care_team(store_t *store, const store_event_t *event, void *arg, err_t *err)
{
    (void)arg;
    if (event->action == STORE_EVENT_DELETE || event->version < 2)
        return ERR_OK;
    arena_t arena;
    arena_init(&arena);
    store_conn_t *conn = NULL;
    json_t *before = NULL, *after = NULL;
    status_t rc = store_connect(store, &conn, err);
    if (rc == ERR_OK)
        rc = care__read(conn, "CareTeam", event->id, event->version - 1, &arena, &before, err);
    if (rc == ERR_OK)
        rc = care__read(conn, "CareTeam", event->id, event->version, &arena, &after, err);
    const char *from = primary_of(before, event->time_us);
    const char *to = primary_of(after, event->time_us);
    const char *patient =
        after ? json_string_value(json_object_get(json_object_get(after, "subject"), "reference"))
              : NULL;
    if (rc || !from || !to || !patient || strcmp(from, to) == 0)
        goto done;

    /* the open Tasks of the patient that the old coordinator owns */
    fhir_search_pair_t pairs[] = {
        url_pair("subject", patient),
        url_pair("owner", from),
        url_pair("status", "draft,requested,received,accepted,ready,in-progress,on-hold"),
        url_pair("_count", "1000"),
    };
    repo_search_t search = {.type = fhir_resource_type_find("Task", 4),
                            .pairs = pairs,
                            .npairs = sizeof(pairs) / sizeof(pairs[0]),
                            .now_us = event->time_us};
    fhir_search_plan_t *plan;
    store_search_t query;
    store_search_result_t found;
    if ((rc = repo_search_plan(conn, &search, &arena, &plan, &query, err)) ||
        (rc = store_search(conn, &query, &arena, &found, err)))
        goto done;
    handover_t h = {arena_alloc(&arena, (found.nmatch + 1) * sizeof(repo_write_t)), 0};
    for (size_t i = 0; i < found.nmatch; i++) {
        const store_version_t *task = &found.entries[i].version;
        json_t *t = handed_over(task, from, to, patient, event->id, event->time_us, err);
        if (!t) {
            rc = err->code;
            goto done;
        }
        repo_write_t *w = &h.writes[h.n++];
        rc = repo_prepare_resource(w, REPO_UPDATE, t, task->id, task->version, &arena, err);
        json_decref(t);
        if (rc)
            goto done;
        w->caller = care_engine_caller();
        w->access_ready = true; /* a service: nothing is hidden from it */
    }
    if (h.n) {
        /* a Task changed since the search: If-Match fails the whole handover, the event
           comes back and the next run sees the Tasks as they are then */
        rc = store_run_relaxed(store, handover_txn, &h, err);
        if (rc == ERR_OK)
            log_info("engine: handed %zu open Task(s) of %s over from %s to %s", h.n, patient, from,
                     to);
    }
done:
    if (conn)
        store_disconnect(conn);
    arena_release(&arena);
    return rc;
}
