/*
 * overdue.c - due-time jobs, overdue marks, escalation steps and notifications of Tasks.
 *
 * The state lives on the Task: EXT/overdue (the due time it passed) and EXT/escalated (how
 * many escalation steps it has had). A change is one Task version written with If-Match on
 * the version read, in one transaction with the Communications it sends, so a run that
 * repeats (at-least-once delivery, a crash after the commit) finds the work done. A
 * Communication's identifier names the version that caused it, and none is written twice.
 */
#include "care/overdue.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/calendar.h"
#include "base/clock.h"
#include "base/jv.h"
#include "base/log.h"
#include "base/url.h"
#include "care/care_int.h"
#include "care/engine.h"
#include "care/escalation.h"
#include "fhir/defs.h"
#include "fhir/workflow.h"
#include "repo/repo.h"

void care_overdue_register(void)
{
    repo_worker_on_event("Task", care_on_task, NULL);
    repo_worker_on_job(CARE_JOB_TASK_DUE, care_task_due_run, NULL);
}

/* ---- small helpers ------------------------------------------------------------------------ */

static const char *str_at(const json_t *r, const char *member, const char *sub)
{
    const json_t *v = json_object_get(r, member);
    return json_string_value(sub ? json_object_get(v, sub) : v);
}

/* The current (version 0) or a given version of Task/id, parsed and owned by arena; NULL
 * when there is none (never written, deleted, version 0 asked of a delete). */
static status_t read_task(store_conn_t *conn, const char *id, int64_t version, arena_t *arena,
                          int64_t *out_version, json_t **out, err_t *err)
{
    *out = NULL;
    store_version_t v;
    status_t rc = store_read(conn, "Task", id, version, arena, &v, err);
    if (rc == ERR_NOT_FOUND || rc == ERR_GONE || (rc == ERR_OK && v.deleted)) {
        err_reset(err);
        return ERR_OK;
    }
    if (rc)
        return rc;
    if (out_version)
        *out_version = v.version;
    *out = care__json_in(arena, v.json, v.json_len, err);
    return *out ? ERR_OK : err->code;
}

static bool task_open(const json_t *task)
{
    task_status_t status;
    return task_status_parse(str_at(task, "status", NULL), &status) && !task_status_final(status);
}

/* The instant of a dateTime text as a due time (fhir_task_due's reading); false when not one. */
static bool instant_of(const char *text, int64_t *out_us)
{
    json_t *probe = json_pack("{s:{s:{s:s}}}", "restriction", "period", "end", text ? text : "");
    bool ok = probe && fhir_task_due(probe, out_us);
    json_decref(probe);
    return ok;
}

/* "2026-11-27 17:00 America/New_York": an instant in the organisation's local time. */
static const char *local_text(arena_t *arena, int64_t us)
{
    const calendar_t *cal = calendar_default();
    tz_civil_t c;
    int64_t secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    tz_to_local(calendar_zone(cal), secs, &c, NULL);
    return arena_printf(arena, "%04d-%02d-%02d %02d:%02d %s", c.year, c.month, c.day, c.hour,
                        c.minute, tz_name(calendar_zone(cal)));
}

/* An instant as a FHIR dateTime in UTC, to the second. */
static const char *utc_text(arena_t *arena, int64_t us)
{
    char out[32];
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, sizeof(out), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return arena_strdup(arena, out);
}

/* What a Task is about, for people: its description, or its code's text, display or code. */
static const char *task_label(const json_t *task)
{
    const char *s = str_at(task, "description", NULL);
    const json_t *code = json_object_get(task, "code");
    const json_t *coding = json_array_get(json_object_get(code, "coding"), 0);
    if (!s)
        s = str_at(code, "text", NULL);
    if (!s)
        s = str_at(coding, "display", NULL);
    if (!s)
        s = str_at(coding, "code", NULL);
    return s ? s : "a task";
}

static void add_note(json_t *task, const char *time_text, const char *text)
{
    json_t *notes = json_object_get(task, "note");
    if (!json_is_array(notes)) {
        notes = json_array();
        json_object_set_new(task, "note", notes);
    }
    json_array_append_new(notes, json_pack("{s:s,s:s,s:s}", "authorString", "Concerto engine",
                                           "time", time_text, "text", text));
}

/* Removes every extension of url from r. */
static void drop_extension(json_t *r, const char *url)
{
    json_t *exts = json_object_get(r, "extension");
    for (size_t i = json_array_size(exts); i-- > 0;) {
        const char *u = str_at(json_array_get(exts, i), "url", NULL);
        if (u && strcmp(u, url) == 0)
            json_array_remove(exts, i);
    }
    if (exts && json_array_size(exts) == 0)
        json_object_del(r, "extension");
}

/* Sets the one extension of url on r to value (taken) as member valueX. */
static void set_extension(json_t *r, const char *url, const char *member, json_t *value)
{
    drop_extension(r, url);
    json_t *exts = json_object_get(r, "extension");
    if (!json_is_array(exts)) {
        exts = json_array();
        json_object_set_new(r, "extension", exts);
    }
    json_t *ext = json_pack("{s:s}", "url", url);
    json_object_set_new(ext, member, value);
    json_array_append_new(exts, ext);
}

/* ---- writing: a Task version and its Communications in one transaction --------------------- */

typedef struct {
    repo_write_t writes[CARE_ESCALATION_MAX + 2];
    const char *identifiers[CARE_ESCALATION_MAX + 2]; /* a Communication's, or NULL */
    size_t n;
    arena_t *arena;
    size_t sent; /* Communications written */
} batch_t;

static status_t batch_add(batch_t *b, repo_action_t action, json_t *resource, const char *id,
                          int64_t if_match, const char *identifier, err_t *err)
{
    repo_write_t *w = &b->writes[b->n];
    status_t rc = repo_prepare_resource(w, action, resource, id, if_match, b->arena, err);
    if (rc)
        return rc;
    w->caller = care_engine_caller();
    w->access_ready = true; /* a service: nothing is hidden from it */
    b->identifiers[b->n++] = identifier;
    return ERR_OK;
}

static status_t batch_txn(store_txn_t *txn, void *arg, err_t *err)
{
    batch_t *b = arg;
    b->sent = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->identifiers[i]) {
            fhir_search_pair_t pairs[] = {
                url_pair("identifier",
                         arena_printf(b->arena, CARE_NOTIFICATION_SYSTEM "|%s", b->identifiers[i])),
                url_pair("_count", "1"),
            };
            store_search_result_t found;
            status_t rc = care__search(NULL, txn, "Communication", pairs, 2, store_txn_time_us(txn),
                                       b->arena, &found, err);
            if (rc)
                return rc;
            if (found.nmatch)
                continue; /* sent already: never two */
            b->sent++;
        }
        status_t rc = repo_write_txn(txn, &b->writes[i], err);
        if (rc)
            return rc;
    }
    return ERR_OK;
}

/* A notification to recipient about Task/task_id (a new value, owned by arena). */
static json_t *notification(arena_t *arena, const char *identifier, const char *recipient,
                            const json_t *task, const char *task_id, int64_t sent_us,
                            const char *text)
{
    json_t *c =
        json_pack("{s:s,s:[{s:s,s:s}],s:s,s:[{s:[{s:s,s:s}]}],s:[{s:s}],s:[{s:s}],s:s,s:[{s:s}]}",
                  "resourceType", "Communication", "identifier", "system", CARE_NOTIFICATION_SYSTEM,
                  "value", identifier, "status", "completed", "category", "coding", "system",
                  CARE_EXT_COMMUNICATION_CATEGORY, "code", "notification", "recipient", "reference",
                  recipient, "about", "reference", arena_printf(arena, "Task/%s", task_id), "sent",
                  utc_text(arena, sent_us), "payload", "contentString", text);
    const char *patient = str_at(task, "for", "reference");
    if (patient)
        json_object_set_new(c, "subject", json_pack("{s:s}", "reference", patient));
    return care__owned(arena, c);
}

/* ", due 2026-11-27 17:00 America/New_York" or "" when the Task has no due time. */
static const char *due_clause(arena_t *arena, const json_t *task)
{
    int64_t due;
    return fhir_task_due(task, &due) ? arena_printf(arena, ", due %s", local_text(arena, due)) : "";
}

/* ---- assignment notifications --------------------------------------------------------------- */

static bool is_person(const char *ref)
{
    return ref &&
           (strncmp(ref, "Practitioner/", 13) == 0 || strncmp(ref, "PractitionerRole/", 17) == 0);
}

/*
 * Whether the version of Task/id written at time_us was written by the account whose
 * Practitioner or PractitionerRole is owner: its audit record (written in the version's own
 * transaction, at the same time) names the account. Without one (the server itself wrote it:
 * import) or for a client without an account, it was not.
 */
static status_t claimed_by_owner(store_conn_t *conn, const char *id, int64_t time_us,
                                 const char *owner, arena_t *arena, bool *out, err_t *err)
{
    *out = false;
    store_audit_query_t q = {.type = "Task",
                             .actions = ",create,update,patch,",
                             .from_us = time_us,
                             .to_us = time_us + 1,
                             .count = 100};
    store_audit_row_t *rows;
    size_t n;
    status_t rc = store_audit_search(conn, &q, arena, &rows, &n, err);
    if (rc)
        return rc;
    const char *user = NULL;
    for (size_t i = 0; i < n && !user; i++)
        if (rows[i].resource_id && strcmp(rows[i].resource_id, id) == 0)
            user = rows[i].user;
    if (!user)
        return ERR_OK;
    store_account_t account;
    rc = store_account_get(conn, user, arena, &account, err);
    if (rc == ERR_NOT_FOUND) {
        err_reset(err);
        return ERR_OK;
    }
    if (rc)
        return rc;
    const char *p = account.practitioner_id, *pr = account.practitioner_role_id;
    *out = (p && strncmp(owner, "Practitioner/", 13) == 0 && strcmp(owner + 13, p) == 0) ||
           (pr && strncmp(owner, "PractitionerRole/", 17) == 0 && strcmp(owner + 17, pr) == 0);
    return ERR_OK;
}

static status_t notify_assignment(store_t *store, store_conn_t *conn, const store_event_t *event,
                                  arena_t *arena, err_t *err)
{
    json_t *after, *before = NULL;
    status_t rc = read_task(conn, event->id, event->version, arena, NULL, &after, err);
    if (rc || !after)
        return rc;
    if (event->version > 1 &&
        (rc = read_task(conn, event->id, event->version - 1, arena, NULL, &before, err)))
        return rc;
    const char *owner = str_at(after, "owner", "reference");
    const char *was = before ? str_at(before, "owner", "reference") : NULL;
    if (!is_person(owner) || (was && strcmp(was, owner) == 0))
        return ERR_OK;
    bool claim;
    if ((rc = claimed_by_owner(conn, event->id, event->time_us, owner, arena, &claim, err)) ||
        claim)
        return rc;
    const char *identifier =
        arena_printf(arena, "Task/%s/_history/%lld", event->id, (long long)event->version);
    const char *patient = str_at(after, "for", "reference");
    const char *text =
        arena_printf(arena, "Task assigned to you: %s%s%s%s.", task_label(after),
                     patient ? " for " : "", patient ? patient : "", due_clause(arena, after));
    batch_t *b = arena_zalloc(arena, sizeof(*b));
    b->arena = arena;
    json_t *c = notification(arena, identifier, owner, after, event->id, event->time_us, text);
    if ((rc = batch_add(b, REPO_CREATE, c, NULL, 0, identifier, err)) ||
        (rc = store_run_relaxed(store, batch_txn, b, err)))
        return rc;
    if (b->sent)
        log_info("engine: notified %s of Task/%s (version %lld)", owner, event->id,
                 (long long)event->version);
    return ERR_OK;
}

/* ---- escalation ----------------------------------------------------------------------------- */

/* The escalation steps of the ActivityDefinition the Task instantiates (none when it names
 * none, it is not on the server, or its steps do not parse: logged, the Task is only marked). */
static status_t load_escalation(store_conn_t *conn, const char *task_id, const json_t *task,
                                int64_t now_us, arena_t *arena, care_escalation_t *out, err_t *err)
{
    out->steps = NULL;
    out->n = 0;
    const char *canonical = str_at(task, "instantiatesCanonical", NULL);
    if (!canonical)
        return ERR_OK;
    const char *bar = strchr(canonical, '|');
    const char *url = bar ? arena_strndup(arena, canonical, (size_t)(bar - canonical)) : canonical;
    fhir_search_pair_t pairs[] = {url_pair("url", url), url_pair("_count", "100")};
    store_search_result_t found;
    status_t rc =
        care__search(conn, NULL, "ActivityDefinition", pairs, 2, now_us, arena, &found, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < found.nmatch; i++) {
        const store_version_t *v = &found.entries[i].version;
        json_t *ad = care__json_in(arena, v->json, v->json_len, err);
        if (!ad)
            return err->code;
        const char *version = str_at(ad, "version", NULL);
        if (bar && (!version || strcmp(version, bar + 1) != 0))
            continue;
        err_t bad = ERR_INIT;
        if (care_escalation_parse(ad, arena, out, &bad)) {
            log_warning("engine: Task/%s: ActivityDefinition/%s has escalation steps that cannot "
                        "be read (%s); it is only marked overdue",
                        task_id, v->id, err_message(&bad));
            out->n = 0;
        }
        err_release(&bad);
        return ERR_OK;
    }
    return ERR_OK;
}

static int escalated_of(const json_t *task)
{
    const json_t *v = care_extension_value(task, CARE_EXT_ESCALATED, "valueInteger");
    return json_is_integer(v) && json_integer_value(v) > 0 ? (int)json_integer_value(v) : 0;
}

/* The next time the Task's job has work (0: none): its due time until it is marked, then the
 * time of its next escalation step. */
static int64_t next_time(const json_t *task, int64_t due, const care_escalation_t *esc)
{
    if (!care_extension_value(task, CARE_EXT_OVERDUE, "valueDateTime"))
        return due;
    size_t k = (size_t)escalated_of(task);
    return k < esc->n ? care_escalation_time(calendar_default(), due, &esc->steps[k]) : 0;
}

typedef struct {
    store_conn_t *conn;
    arena_t *arena;
    const char *id;
    int64_t version; /* the Task version read; the update makes version + 1 */
    int64_t now_us, due_us;
    json_t *task; /* the new version being built */
    json_t *team; /* loaded on first need */
    bool team_loaded;
    batch_t *batch;
} escalating_t;

static status_t team_of(escalating_t *e, const json_t **out, err_t *err)
{
    if (!e->team_loaded) {
        status_t rc = care__coordination_team(e->conn, str_at(e->task, "for", "reference"),
                                              e->now_us, e->arena, &e->team, err);
        if (rc)
            return rc;
        e->team_loaded = true;
    }
    *out = e->team;
    return ERR_OK;
}

static const char *role_text(arena_t *arena, const care_role_t *role)
{
    return arena_printf(arena, "%s%s%s", role->system ? role->system : "", role->system ? "|" : "",
                        role->code);
}

/* Applies step number k (0-based) to e->task; its text goes to out (a note). */
static status_t apply_step(escalating_t *e, const care_escalation_step_t *step, size_t k,
                           buf_t *out, err_t *err)
{
    arena_t *a = e->arena;
    buf_addf(out, "Escalated (step %zu): overdue since %s", k + 1, local_text(a, e->due_us));
    if (step->priority) {
        const char *now = str_at(e->task, "priority", NULL);
        if (task_priority_rank(step->priority) > task_priority_rank(now ? now : "routine")) {
            json_object_set_new(e->task, "priority", json_string(step->priority));
            buf_addf(out, "; priority raised to %s", step->priority);
        } else {
            buf_addf(out, "; priority stays %s", now ? now : "routine");
        }
    }
    if (step->reassign.code) {
        const json_t *team;
        status_t rc = team_of(e, &team, err);
        if (rc)
            return rc;
        const char *to = fhir_care_team_member_in_role(team, step->reassign.system,
                                                       step->reassign.code, e->now_us);
        const char *from = str_at(e->task, "owner", "reference");
        from = from ? arena_strdup(a, from) : NULL;
        if (to && from && strcmp(from, to) == 0) {
            buf_addf(out, "; stays with %s", to);
        } else if (to) {
            json_object_set_new(e->task, "owner", json_pack("{s:s}", "reference", to));
            buf_addf(out, "; reassigned from %s to %s", from ? from : "nobody", to);
        } else {
            json_object_del(e->task, "owner");
            json_t *coding = json_pack("{s:s}", "code", step->reassign.code);
            if (step->reassign.system)
                json_object_set_new(coding, "system", json_string(step->reassign.system));
            json_object_set_new(e->task, "performerType", json_pack("[{s:[o]}]", "coding", coding));
            buf_addf(out,
                     "; nobody on the care team holds role %s: owner %s removed, the "
                     "Task waits for that role",
                     role_text(a, &step->reassign), from ? from : "(none)");
        }
    }
    if (step->notify_owner || step->notify.code) {
        const char *to = NULL;
        if (step->notify_owner) {
            to = str_at(e->task, "owner", "reference");
        } else {
            const json_t *team;
            status_t rc = team_of(e, &team, err);
            if (rc)
                return rc;
            to = fhir_care_team_member_in_role(team, step->notify.system, step->notify.code,
                                               e->now_us);
        }
        if (to) {
            const char *identifier = arena_printf(a, "Task/%s/_history/%lld/escalation/%zu", e->id,
                                                  (long long)(e->version + 1), k + 1);
            const char *patient = str_at(e->task, "for", "reference");
            const char *text = arena_printf(
                a, "Task overdue: %s%s%s, due %s; escalation step %zu.", task_label(e->task),
                patient ? " for " : "", patient ? patient : "", local_text(a, e->due_us), k + 1);
            json_t *c = notification(a, identifier, to, e->task, e->id, e->now_us, text);
            status_t rc = batch_add(e->batch, REPO_CREATE, c, NULL, 0, identifier, err);
            if (rc)
                return rc;
            buf_addf(out, "; notified %s", to);
        } else {
            buf_addf(out, "; nobody to notify (%s)",
                     step->notify_owner
                         ? "the Task has no owner"
                         : arena_printf(a, "nobody holds role %s", role_text(a, &step->notify)));
        }
    }
    buf_addch(out, '.');
    return ERR_OK;
}

/* One look at Task/id at now_us: mark, escalate, and say when to look again. */
static status_t due_once(store_t *store, store_conn_t *conn, const char *id, int64_t now_us,
                         arena_t *arena, int64_t *out_next, err_t *err)
{
    *out_next = 0;
    json_t *task;
    int64_t version, due;
    status_t rc = read_task(conn, id, 0, arena, &version, &task, err);
    if (rc || !task || !task_open(task) || !fhir_task_due(task, &due))
        return rc; /* finished, gone or without a due time: nothing to do, the job goes */
    if (now_us < due) {
        *out_next = due;
        return ERR_OK;
    }
    care_escalation_t esc;
    if ((rc = load_escalation(conn, id, task, now_us, arena, &esc, err)))
        return rc;
    const calendar_t *cal = calendar_default();
    bool marked = care_extension_value(task, CARE_EXT_OVERDUE, "valueDateTime") != NULL;
    size_t k = (size_t)escalated_of(task), first = k;
    bool step_due = k < esc.n && care_escalation_time(cal, due, &esc.steps[k]) <= now_us;
    if (marked && !step_due) {
        *out_next = next_time(task, due, &esc);
        return ERR_OK;
    }

    escalating_t e = {.conn = conn,
                      .arena = arena,
                      .id = id,
                      .version = version,
                      .now_us = now_us,
                      .due_us = due};
    e.task = care__owned(arena, json_deep_copy(task));
    json_object_del(e.task, "meta");
    e.batch = arena_zalloc(arena, sizeof(batch_t));
    e.batch->arena = arena;
    const char *now_text = utc_text(arena, now_us);
    if (!marked) {
        const char *end = json_string_value(json_object_get(
            json_object_get(json_object_get(task, "restriction"), "period"), "end"));
        set_extension(e.task, CARE_EXT_OVERDUE, "valueDateTime", json_string(end));
        add_note(e.task, now_text,
                 arena_printf(arena, "Overdue: it was due %s and is still %s.",
                              local_text(arena, due), str_at(task, "status", NULL)));
    }
    for (; k < esc.n && care_escalation_time(cal, due, &esc.steps[k]) <= now_us; k++) {
        buf_t note;
        buf_init(&note, 0);
        rc = apply_step(&e, &esc.steps[k], k, &note, err);
        if (rc == ERR_OK)
            add_note(e.task, now_text, note.ptr);
        buf_release(&note);
        if (rc)
            return rc;
    }
    if (k > first)
        set_extension(e.task, CARE_EXT_ESCALATED, "valueInteger", json_integer((json_int_t)k));
    /* one transaction: when If-Match fails, none of the step's Communications is sent */
    if ((rc = batch_add(e.batch, REPO_UPDATE, e.task, id, version, NULL, err)) ||
        (rc = store_run_relaxed(store, batch_txn, e.batch, err)))
        return rc;
    log_info("engine: Task/%s overdue since %s; %zu escalation step(s) applied now, %zu in all", id,
             local_text(arena, due), k - first, k);
    *out_next = next_time(e.task, due, &esc);
    return ERR_OK;
}

status_t care_task_due_run(store_t *store, const store_job_t *job, int64_t now_us, arena_t *arena,
                           repo_job_next_t *next, void *arg, err_t *err)
{
    (void)arg;
    next->next_run_us = 0;
    if (strncmp(job->key, "Task/", 5) != 0)
        return ERR_OK;
    store_conn_t *conn;
    status_t rc = store_connect(store, &conn, err);
    if (rc)
        return rc;
    /* a Task written between the read and the update: read it again (a few times, then the
       job's back-off takes over) */
    for (int attempt = 0; attempt < 3; attempt++) {
        rc = due_once(store, conn, job->key + 5, now_us, arena, &next->next_run_us, err);
        if (rc != ERR_VERSION_CONFLICT)
            break;
        err_reset(err);
    }
    store_disconnect(conn);
    return rc;
}

/* ---- the Task change event -------------------------------------------------------------- */

typedef struct {
    const char *key;
    int64_t run_at_us; /* 0: cancel */
} schedule_t;

static status_t schedule_txn(store_txn_t *txn, void *arg, err_t *err)
{
    schedule_t *s = arg;
    if (s->run_at_us)
        return store_txn_job_schedule(txn, CARE_JOB_TASK_DUE, s->key, s->run_at_us, NULL, NULL,
                                      err);
    status_t rc = store_txn_job_cancel(txn, CARE_JOB_TASK_DUE, s->key, err);
    if (rc == ERR_NOT_FOUND) {
        err_reset(err);
        rc = ERR_OK;
    }
    return rc;
}

/* The Task's due time moved past its overdue mark: a new deadline, so the mark and the count
 * of escalation steps go (they come again if the new time passes too). */
static status_t unmark(store_t *store, arena_t *arena, const char *id, const json_t *task,
                       int64_t version, int64_t due, err_t *err)
{
    json_t *t = care__owned(arena, json_deep_copy(task));
    json_object_del(t, "meta");
    drop_extension(t, CARE_EXT_OVERDUE);
    drop_extension(t, CARE_EXT_ESCALATED);
    add_note(
        t, utc_text(arena, clock_now_us()),
        arena_printf(arena, "Due time moved to %s: no longer overdue.", local_text(arena, due)));
    batch_t *b = arena_zalloc(arena, sizeof(*b));
    b->arena = arena;
    status_t rc = batch_add(b, REPO_UPDATE, t, id, version, NULL, err);
    return rc ? rc : store_run_relaxed(store, batch_txn, b, err);
}

status_t care_on_task(store_t *store, const store_event_t *event, void *arg, err_t *err)
{
    (void)arg;
    if (event->action == STORE_EVENT_DELETE)
        return ERR_OK; /* its job finds it gone and goes */
    arena_t arena;
    arena_init(&arena);
    store_conn_t *conn = NULL;
    status_t rc = store_connect(store, &conn, err);
    if (rc == ERR_OK)
        rc = notify_assignment(store, conn, event, &arena, err);

    json_t *task = NULL, *previous = NULL;
    int64_t version = 0, due, was_due;
    if (rc == ERR_OK)
        rc = read_task(conn, event->id, 0, &arena, &version, &task, err);
    if (rc == ERR_OK && event->version > 1)
        rc = read_task(conn, event->id, event->version - 1, &arena, NULL, &previous, err);
    if (rc || !task)
        goto done;
    schedule_t s = {.key = arena_printf(&arena, "Task/%s", event->id)};
    if (task_open(task) && fhir_task_due(task, &due)) {
        int64_t mark;
        const char *marked =
            json_string_value(care_extension_value(task, CARE_EXT_OVERDUE, "valueDateTime"));
        if (marked && instant_of(marked, &mark) && due > mark) {
            rc = unmark(store, &arena, event->id, task, version, due, err);
            goto done; /* that version's event schedules the job */
        }
        care_escalation_t esc = {0};
        if (marked &&
            (rc = load_escalation(conn, event->id, task, clock_now_us(), &arena, &esc, err)))
            goto done;
        s.run_at_us = next_time(task, due, &esc);
    } else if (!fhir_task_due(task, &due) && !(previous && fhir_task_due(previous, &was_due))) {
        goto done; /* never had a job */
    }
    rc = store_run_relaxed(store, schedule_txn, &s, err);
done:
    if (conn)
        store_disconnect(conn);
    arena_release(&arena);
    return rc;
}
