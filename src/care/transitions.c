/*
 * transitions.c - the engine's Encounter handler (transitions.h): cancelling the work of a
 * cancelled admission or discharge, and flagging readmissions. Each run works out what is
 * left to do from the record as it is, and writes it in one transaction whose updates carry
 * If-Match: a resource changed meanwhile fails the run, the event comes back, and the next
 * run sees the change.
 */
#include "care/transitions.h"

#include <stdlib.h>
#include <string.h>

#include "base/jv.h"
#include "base/log.h"
#include "base/mem.h"
#include "care/care_int.h"
#include "care/engine.h"
#include "care/ext.h"
#include "care/protocol.h"
#include "care/triggers.h"
#include "fhir/workflow.h"
#include "repo/repo.h"
#include "repo/worker.h"

#define MAX_WRITES 256

typedef struct {
    arena_t *arena;
    repo_write_t writes[MAX_WRITES];
    size_t n;
    const char *absent; /* a Flag identifier that must not exist yet (system|value), or NULL */
    bool done;          /* the Flag existed: another run did the work */
} writes_t;

/* Adds resource (borrowed) as a create (if_match 0, a new id) or an update of id. */
static status_t add(writes_t *ws, json_t *resource, const char *id, int64_t if_match, err_t *err)
{
    if (ws->n == MAX_WRITES)
        return err_set(err, ERR_RULE, NULL,
                       "one Encounter change would change more than %d "
                       "resources",
                       MAX_WRITES);
    repo_write_t *w = &ws->writes[ws->n];
    const char *the_id = id ? id : repo_new_id(ws->arena);
    json_object_set_new(resource, "id", json_string(the_id));
    status_t rc = repo_prepare_resource(w, if_match ? REPO_UPDATE : REPO_CREATE, resource, the_id,
                                        if_match, ws->arena, err);
    if (rc)
        return rc;
    w->caller = care_engine_caller();
    w->access_ready = true; /* a service: nothing is hidden from it */
    ws->n++;
    return ERR_OK;
}

static status_t writes_txn(store_txn_t *txn, void *arg, err_t *err)
{
    writes_t *ws = arg;
    status_t rc;
    if (ws->absent) {
        fhir_search_pair_t pairs[] = {url_pair("identifier", ws->absent), url_pair("_count", "1")};
        store_search_result_t found;
        if ((rc = care__search(NULL, txn, "Flag", pairs, 2, store_txn_time_us(txn), ws->arena,
                               &found, err)))
            return rc;
        if (found.nmatch) {
            ws->done = true;
            return ERR_OK;
        }
    }
    for (size_t i = 0; i < ws->n; i++)
        if ((rc = repo_write_txn(txn, &ws->writes[i], err)))
            return rc;
    return ERR_OK;
}

static bool status_is(const json_t *r, const char *status)
{
    const char *s = care__str(r, "status");
    return s && strcmp(s, status) == 0;
}

/* A parsed copy of a stored version, without meta, released with arena. */
static json_t *editable(arena_t *arena, const store_version_t *v, err_t *err)
{
    json_t *r = care__json_in(arena, v->json, v->json_len, err);
    if (r)
        json_object_del(r, "meta");
    return r;
}

/* ---- undo ---------------------------------------------------------------------------------- */

/* Whether resource was made by a protocol for Encounter/<id> at a version in [from, to]. */
static bool made_for(const json_t *resource, const char *id, int64_t from, int64_t to,
                     arena_t *arena)
{
    const char *needle = arena_printf(arena, "/Encounter/%s/_history/", id);
    size_t i;
    const json_t *ident;
    json_array_foreach(json_object_get(resource, "identifier"), i, ident)
    {
        const char *system = care__str(ident, "system"), *value = care__str(ident, "value");
        if (!system || !value || strcmp(system, CARE_PROTOCOL_ACTION_SYSTEM) != 0)
            continue;
        const char *at = strstr(value, needle);
        if (!at)
            continue;
        char *end;
        long long version = strtoll(at + strlen(needle), &end, 10);
        if (*end == '\0' && version >= from && version <= to)
            return true;
    }
    return false;
}

static bool about(const json_t *request, const char *ref)
{
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(request, "about"), i, a)
    {
        const char *r = care__str(a, "reference");
        if (r && strcmp(r, ref) == 0)
            return true;
    }
    return false;
}

/* Adds the cancellation of what the protocols made for the Encounter at versions [from, to]
 * that is still open. */
static status_t plan_undo(store_conn_t *conn, writes_t *ws, const char *id, const char *patient,
                          int64_t from, int64_t to, const char *why, int64_t now_us, err_t *err)
{
    arena_t *arena = ws->arena;
    const char *ref = arena_printf(arena, "Encounter/%s", id);
    fhir_search_pair_t tasks[] = {
        url_pair("focus", ref),
        url_pair("status", "draft,requested,received,accepted,ready,in-progress,on-hold"),
        url_pair("_count", "1000"),
    };
    store_search_result_t found;
    status_t rc = care__search(conn, NULL, "Task", tasks, 3, now_us, arena, &found, err);
    for (size_t i = 0; rc == ERR_OK && i < found.nmatch; i++) {
        const store_version_t *v = &found.entries[i].version;
        json_t *t = editable(arena, v, err);
        if (!t)
            return err->code;
        task_status_t status;
        if (!made_for(t, id, from, to, arena) ||
            !task_status_parse(care__str(t, "status"), &status) ||
            !task_move_allowed(status, TASK_CANCELLED))
            continue;
        json_object_set_new(t, "status", json_string("cancelled"));
        json_object_set_new(t, "statusReason", json_pack("{s:s}", "text", why));
        rc = add(ws, t, v->id, v->version, err);
    }
    if (rc || !patient)
        return rc;
    fhir_search_pair_t requests[] = {
        url_pair("subject", patient),
        url_pair("status", "active,on-hold,draft"),
        url_pair("_count", "1000"),
    };
    rc = care__search(conn, NULL, "CommunicationRequest", requests, 3, now_us, arena, &found, err);
    for (size_t i = 0; rc == ERR_OK && i < found.nmatch; i++) {
        const store_version_t *v = &found.entries[i].version;
        json_t *cr = editable(arena, v, err);
        if (!cr)
            return err->code;
        if (!about(cr, ref) || !made_for(cr, id, from, to, arena))
            continue;
        json_object_set_new(cr, "status", json_string("revoked"));
        json_object_set_new(cr, "statusReason", json_pack("{s:s}", "text", why));
        rc = add(ws, cr, v->id, v->version, err);
    }
    return rc;
}

/* Adds the withdrawal of the readmission Flag of a cancelled admission. */
static status_t plan_unflag(store_conn_t *conn, writes_t *ws, const char *id, int64_t now_us,
                            err_t *err)
{
    fhir_search_pair_t pairs[] = {
        url_pair("identifier",
                 arena_printf(ws->arena, CARE_READMISSION_SYSTEM "|Encounter/%s", id)),
        url_pair("_count", "10"),
    };
    store_search_result_t found;
    status_t rc = care__search(conn, NULL, "Flag", pairs, 2, now_us, ws->arena, &found, err);
    for (size_t i = 0; rc == ERR_OK && i < found.nmatch; i++) {
        const store_version_t *v = &found.entries[i].version;
        json_t *f = editable(ws->arena, v, err);
        if (!f)
            return err->code;
        if (!status_is(f, "active"))
            continue;
        json_object_set_new(f, "status", json_string("entered-in-error"));
        rc = add(ws, f, v->id, v->version, err);
    }
    return rc;
}

/* The first version of the run of finished versions that ends at version `last`. */
static status_t discharged_at(store_conn_t *conn, const char *id, int64_t last, arena_t *arena,
                              int64_t *out, err_t *err)
{
    *out = last;
    for (int64_t v = last - 1; v >= 1; v--) {
        json_t *r;
        status_t rc = care__read(conn, "Encounter", id, v, arena, &r, err);
        if (rc)
            return rc;
        if (!r || !status_is(r, "finished"))
            break;
        *out = v;
    }
    return ERR_OK;
}

/* ---- readmission --------------------------------------------------------------------------- */

static bool stay_class(const json_t *enc)
{
    static const char *const STAY[] = {"IMP", "ACUTE", "NONAC", "OBSENC", "SS"};
    const char *code = care__str(json_object_get(enc, "class"), "code");
    for (size_t i = 0; code && i < sizeof(STAY) / sizeof(STAY[0]); i++)
        if (strcmp(code, STAY[i]) == 0)
            return true;
    return false;
}

static bool has_readmission_mark(const json_t *enc)
{
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(enc, "extension"), i, e)
    {
        const char *url = care__str(e, "url");
        if (url && strcmp(url, CARE_EXT_READMISSION) == 0)
            return true;
    }
    return false;
}

/* Adds the Flag and the mark of a readmission when the admitted Encounter (the current
 * version cur) is one. */
static status_t plan_readmission(store_conn_t *conn, writes_t *ws, const store_version_t *cur,
                                 json_t *enc, const char *patient, int64_t event_us, err_t *err)
{
    arena_t *arena = ws->arena;
    const calendar_t *cal = calendar_default();
    const char *start_text = care__str(json_object_get(enc, "period"), "start");
    int64_t start;
    if (!start_text || !care_datetime_parse(cal, start_text, &start))
        start = event_us;
    fhir_search_pair_t pairs[] = {
        url_pair("subject", patient),
        url_pair("status", "finished"),
        url_pair("_count", "1000"),
    };
    store_search_result_t found;
    status_t rc = care__search(conn, NULL, "Encounter", pairs, 3, event_us, arena, &found, err);
    if (rc)
        return rc;
    calendar_duration_t window;
    static const char WINDOW[] = "30 days";
    if ((rc = calendar_duration_parse(WINDOW, sizeof(WINDOW) - 1, &window, err)))
        return rc;
    const char *earlier = NULL;
    int64_t earlier_end = 0;
    for (size_t i = 0; i < found.nmatch; i++) {
        const store_version_t *v = &found.entries[i].version;
        if (strcmp(v->id, cur->id) == 0)
            continue;
        json_t *prior = care__json_in(arena, v->json, v->json_len, err);
        if (!prior)
            return err->code;
        const char *end_text = care__str(json_object_get(prior, "period"), "end");
        int64_t end;
        if (!stay_class(prior) || !end_text || !care_datetime_parse(cal, end_text, &end) ||
            end > start || calendar_add(cal, end, &window) < start)
            continue;
        if (!earlier || end > earlier_end) {
            earlier = v->id;
            earlier_end = end;
        }
    }
    if (!earlier)
        return ERR_OK;
    const char *earlier_ref = arena_printf(arena, "Encounter/%s", earlier);
    const char *ref = arena_printf(arena, "Encounter/%s", cur->id);
    ws->absent = arena_printf(arena, CARE_READMISSION_SYSTEM "|%s", ref);
    json_t *flag = care__owned(
        arena,
        json_pack("{s:s,s:[{s:s,s:{s:s}}],s:[{s:s,s:s}],s:s,s:[{s:[{s:s,s:s,s:s}]}],"
                  "s:{s:[{s:s,s:s,s:s}],s:s},s:{s:s},s:{s:s},s:{s:s}}",
                  "resourceType", "Flag", "extension", "url", CARE_EXT_READMISSION,
                  "valueReference", "reference", earlier_ref, "identifier", "system",
                  CARE_READMISSION_SYSTEM, "value", ref, "status", "active", "category", "coding",
                  "system", "http://terminology.hl7.org/CodeSystem/flag-category", "code",
                  "clinical", "display", "Clinical", "code", "coding", "system", CARE_SNOMED_SYSTEM,
                  "code", CARE_READMISSION_CODE, "display", "Hospital re-admission", "text",
                  "Readmitted within 30 days of a discharge", "subject", "reference", patient,
                  "period", "start",
                  start_text ? start_text : care_format_instant(cal, start, arena), "encounter",
                  "reference", ref));
    if (!flag)
        return err_set(err, ERR_INTERNAL, NULL, "could not make the readmission Flag");
    if ((rc = add(ws, flag, NULL, 0, err)))
        return rc;
    if (has_readmission_mark(enc))
        return ERR_OK;
    json_t *extensions = json_object_get(enc, "extension");
    if (!json_is_array(extensions)) {
        extensions = json_array();
        json_object_set_new(enc, "extension", extensions);
    }
    json_array_append_new(extensions, json_pack("{s:s,s:{s:s}}", "url", CARE_EXT_READMISSION,
                                                "valueReference", "reference", earlier_ref));
    json_object_del(enc, "meta");
    return add(ws, enc, cur->id, cur->version, err);
}

/* ---- events that still stand --------------------------------------------------------------- */

status_t care_encounter_event_stands(store_conn_t *conn, const char *id, int64_t version,
                                     care_trigger_t trigger, arena_t *arena, bool *out, err_t *err)
{
    *out = true;
    if (trigger != CARE_ENCOUNTER_ADMITTED && trigger != CARE_ENCOUNTER_EMERGENCY &&
        trigger != CARE_ENCOUNTER_DISCHARGED)
        return ERR_OK;
    store_version_t cur;
    status_t rc = store_read(conn, "Encounter", id, 0, arena, &cur, err);
    if (rc == ERR_NOT_FOUND || rc == ERR_GONE) {
        err_reset(err);
        return ERR_OK;
    }
    if (rc)
        return rc;
    int64_t last = cur.version - version > 64 ? version + 64 : cur.version;
    for (int64_t v = version + 1; v <= last && *out; v++) {
        json_t *r;
        if ((rc = care__read(conn, "Encounter", id, v, arena, &r, err)))
            return rc;
        if (!r)
            continue; /* a delete: nothing is made for a deleted stay anyway */
        if (trigger == CARE_ENCOUNTER_DISCHARGED)
            *out = status_is(r, "finished");
        else
            *out = !status_is(r, "cancelled") && !status_is(r, "entered-in-error");
    }
    return ERR_OK;
}

/* ---- the handler --------------------------------------------------------------------------- */

status_t care_on_encounter(store_t *store, const store_event_t *event, void *arg, err_t *err)
{
    (void)arg;
    if (event->action == STORE_EVENT_DELETE)
        return ERR_OK;
    arena_t arena;
    arena_init(&arena);
    store_conn_t *conn = NULL;
    json_t *before = NULL, *after = NULL;
    writes_t *ws = NULL;
    const char *what = NULL;
    status_t rc = store_connect(store, &conn, err);
    if (rc == ERR_OK && event->version > 1)
        rc = care__read(conn, "Encounter", event->id, event->version - 1, &arena, &before, err);
    if (rc == ERR_OK)
        rc = care__read(conn, "Encounter", event->id, event->version, &arena, &after, err);
    if (rc || !after)
        goto out;
    const char *patient = care__str(json_object_get(after, "subject"), "reference");
    if (patient && strncmp(patient, "Patient/", 8) != 0)
        patient = NULL;
    ws = xcalloc(1, sizeof(*ws));
    ws->arena = &arena;
    care_trigger_t triggers[CARE_TRIGGER__COUNT];
    size_t ntriggers = care_triggers_of("Encounter", before, after, triggers, CARE_TRIGGER__COUNT);
    /* a readmission shows at the admission, or at the discharge of a stay whose admission
       never came (the feed sent the discharge only) */
    bool admitted = false;
    for (size_t i = 0; i < ntriggers; i++)
        admitted |= triggers[i] == CARE_ENCOUNTER_ADMITTED ||
                    (triggers[i] == CARE_ENCOUNTER_DISCHARGED && stay_class(after));

    if (before && status_is(after, "cancelled") && !status_is(before, "cancelled")) {
        what = "the admission was cancelled";
        rc = plan_undo(conn, ws, event->id, patient, 1, event->version - 1, what, event->time_us,
                       err);
        if (rc == ERR_OK)
            rc = plan_unflag(conn, ws, event->id, event->time_us, err);
    } else if (before && status_is(before, "finished") && status_is(after, "in-progress")) {
        what = "the discharge was cancelled";
        int64_t from;
        rc = discharged_at(conn, event->id, event->version - 1, &arena, &from, err);
        if (rc == ERR_OK)
            rc = plan_undo(conn, ws, event->id, patient, from, event->version - 1, what,
                           event->time_us, err);
    } else if (admitted && patient) {
        /* the mark goes on the Encounter as it is now (a later version may have come) */
        store_version_t cur;
        rc = store_read(conn, "Encounter", event->id, 0, &arena, &cur, err);
        if (rc == ERR_NOT_FOUND || rc == ERR_GONE || (rc == ERR_OK && cur.deleted)) {
            err_reset(err);
            rc = ERR_OK;
            goto out;
        }
        json_t *enc = rc ? NULL : care__json_in(&arena, cur.json, cur.json_len, err);
        if (rc == ERR_OK && !enc)
            rc = err->code;
        if (rc == ERR_OK && !status_is(enc, "cancelled")) {
            what = "readmission";
            rc = plan_readmission(conn, ws, &cur, enc, patient, event->time_us, err);
        }
    }
    if (rc == ERR_OK && ws->n) {
        rc = store_run_relaxed(store, writes_txn, ws, err);
        if (rc == ERR_OK && !ws->done)
            log_info("engine: Encounter/%s/_history/%lld (%s): %zu resource(s) written", event->id,
                     (long long)event->version, what, ws->n);
    }
out:
    free(ws);
    if (conn)
        store_disconnect(conn);
    arena_release(&arena);
    return rc;
}

void care_transitions_register(void)
{
    repo_worker_on_event("Encounter", care_on_encounter, NULL);
}
