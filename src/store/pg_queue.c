/*
 * pg_queue.c - the work queues of the PostgreSQL driver: the outbox, jobs, singleton leases
 * (docs/internals/store.md, "Work queues"), the statements of sqlite_queue.c.
 *
 * Several processes may claim at once, each on its own writer: a claim's subquery takes the
 * rows it picks with FOR UPDATE SKIP LOCKED, so concurrent claims pass over each other's rows
 * instead of waiting for them, and a row that another claim changed and committed meanwhile
 * is tested again (READ COMMITTED re-checks the WHERE clause of a locked row) and dropped:
 * claims are disjoint. Acknowledge, fail, replay and the leases are statements on one row
 * keyed by id and holder, which PostgreSQL's row locks serialize. Leases are rows with an
 * expiry, as in SQLite: a lease held by a process that died is free once it has run out.
 */
#include <stdlib.h>
#include <string.h>

#include "store/pg_int.h"

enum {
    Q_OUTBOX_ADD,
    Q_OUTBOX_CLAIM,
    Q_OUTBOX_ACK,
    Q_OUTBOX_FAIL,
    Q_OUTBOX_REPLAY,
    Q_OUTBOX_DEAD,
    Q_OUTBOX_COUNTS,
    Q_OUTBOX_CLAIMED,
    Q_OUTBOX_REPLAY_ALL,
    Q_JOB_SCHEDULE,
    Q_JOB_CANCEL,
    Q_JOB_CLAIM,
    Q_JOB_DONE,
    Q_JOB_NEXT,
    Q_JOB_UNCLAIM,
    Q_JOB_FAIL,
    Q_JOB_REPLAY,
    Q_JOB_LIST,
    Q_LEASE_ACQUIRE,
    Q_LEASE_RENEW,
    Q_LEASE_RELEASE,
    Q__COUNT
};

_Static_assert(PG_QUEUE + Q__COUNT <= PG__COUNT, "raise the queue statements in pg_int.h");

#define EVENT_COLUMNS                                                                         \
    "event_id, seq, type, id, version, action, time_us, available_us, attempts, claimed_by, " \
    "claim_until_us, last_error, dead::int"
#define JOB_COLUMNS                                                                             \
    "job_id, kind, key, run_at_us, payload, attempts, claimed_by, claim_until_us, last_error, " \
    "state, revision"

/* A claim that ran out unanswered after max_attempts claims: the item goes dead instead. */
#define RAN_OUT "(claim_until_us > 0 AND $5::bigint > 0 AND attempts >= $5::bigint)"
#define CLAIM_SET                                                                              \
    "claimed_by = CASE WHEN " RAN_OUT " THEN claimed_by ELSE $1::text END, "                   \
    "claim_until_us = CASE WHEN " RAN_OUT " THEN 0 ELSE $2::bigint END, "                      \
    "attempts = CASE WHEN " RAN_OUT " THEN attempts ELSE attempts + 1 END, "                   \
    "last_error = CASE WHEN " RAN_OUT " THEN 'the lease ran out with no answer ' || attempts " \
    "|| ' times' ELSE last_error END, "

static const char *const queue_sql[Q__COUNT] = {
    [Q_OUTBOX_ADD] = "INSERT INTO outbox (seq, type, id, version, action, time_us) "
                     "VALUES ($1, $2, $3, $4, $5, $6)",
    /* $1 consumer, $2 claim until, $3 now, $4 how many, $5 max attempts */
    [Q_OUTBOX_CLAIM] = "UPDATE outbox SET " CLAIM_SET "dead = " RAN_OUT " "
                       "WHERE event_id IN (SELECT event_id FROM outbox WHERE NOT dead "
                       "AND available_us <= $3::bigint AND claim_until_us <= $3::bigint "
                       "ORDER BY event_id LIMIT $4 FOR UPDATE SKIP LOCKED) "
                       "RETURNING " EVENT_COLUMNS,
    [Q_OUTBOX_ACK] = "DELETE FROM outbox WHERE event_id = $1 AND claimed_by = $2 "
                     "AND claim_until_us > 0 AND NOT dead",
    /* $1 event, $2 consumer, $3 error, $4 retry at, $5 max attempts */
    [Q_OUTBOX_FAIL] = "UPDATE outbox SET last_error = $3, available_us = $4, claim_until_us = 0, "
                      "dead = ($5::bigint > 0 AND attempts >= $5::bigint) "
                      "WHERE event_id = $1 AND claimed_by = $2 AND claim_until_us > 0 "
                      "AND NOT dead RETURNING dead::int",
    [Q_OUTBOX_REPLAY] = "UPDATE outbox SET dead = false, attempts = 0, available_us = $2, "
                        "claimed_by = NULL, claim_until_us = 0 WHERE event_id = $1 AND dead",
    [Q_OUTBOX_DEAD] = "SELECT " EVENT_COLUMNS " FROM outbox WHERE dead AND event_id > $1 "
                      "ORDER BY event_id LIMIT $2",
    [Q_OUTBOX_COUNTS] = "SELECT count(*), count(*) FILTER (WHERE dead) FROM outbox",
    [Q_OUTBOX_CLAIMED] = "SELECT count(*) FROM outbox WHERE NOT dead AND claimed_by IS NOT NULL "
                         "AND claim_until_us > $1",
    [Q_OUTBOX_REPLAY_ALL] = "UPDATE outbox SET dead = false, attempts = 0, available_us = $1, "
                            "claimed_by = NULL, claim_until_us = 0 WHERE dead",
    [Q_JOB_SCHEDULE] = "INSERT INTO job (kind, key, run_at_us, payload) VALUES ($1, $2, $3, $4) "
                       "ON CONFLICT (kind, key) DO UPDATE SET run_at_us = excluded.run_at_us, "
                       "payload = excluded.payload, attempts = 0, last_error = NULL, state = 0, "
                       "revision = job.revision + 1 RETURNING job_id",
    [Q_JOB_CANCEL] = "DELETE FROM job WHERE kind = $1 AND key = $2",
    /* $1 consumer, $2 claim until, $3 now, $4 how many, $5 max attempts, $6 kind or NULL */
    [Q_JOB_CLAIM] = "UPDATE job SET " CLAIM_SET "state = (" RAN_OUT ")::int "
                    "WHERE job_id IN (SELECT job_id FROM job WHERE state = 0 "
                    "AND run_at_us <= $3::bigint AND claim_until_us <= $3::bigint "
                    "AND ($6::text IS NULL OR kind = $6::text) "
                    "ORDER BY run_at_us, job_id LIMIT $4 FOR UPDATE SKIP LOCKED) "
                    "RETURNING " JOB_COLUMNS,
    /* $1 job, $2 consumer, $3 revision as claimed */
    [Q_JOB_DONE] = "DELETE FROM job WHERE job_id = $1 AND claimed_by = $2 AND claim_until_us > 0 "
                   "AND state = 0 AND revision = $3",
    /* $4 next run, $5 its payload (NULL: the same) */
    [Q_JOB_NEXT] = "UPDATE job SET run_at_us = $4, payload = coalesce($5, payload), "
                   "attempts = 0, last_error = NULL, "
                   "claim_until_us = 0 WHERE job_id = $1 AND claimed_by = $2 "
                   "AND claim_until_us > 0 AND state = 0 AND revision = $3",
    [Q_JOB_UNCLAIM] = "UPDATE job SET claim_until_us = 0 "
                      "WHERE job_id = $1 AND claimed_by = $2 AND claim_until_us > 0",
    /* $1 job, $2 consumer, $3 error, $4 retry at, $5 max attempts, $6 revision as claimed */
    [Q_JOB_FAIL] = "UPDATE job SET last_error = $3, claim_until_us = 0, "
                   "run_at_us = CASE WHEN revision = $6::bigint THEN $4::bigint ELSE run_at_us "
                   "END, state = (revision = $6::bigint AND $5::bigint > 0 "
                   "AND attempts >= $5::bigint)::int "
                   "WHERE job_id = $1 AND claimed_by = $2 AND claim_until_us > 0 AND state = 0 "
                   "RETURNING state",
    [Q_JOB_REPLAY] = "UPDATE job SET state = 0, attempts = 0, run_at_us = $2, claimed_by = NULL, "
                     "claim_until_us = 0 WHERE job_id = $1 AND state = 1",
    [Q_JOB_LIST] = "SELECT " JOB_COLUMNS " FROM job WHERE job_id > $1 "
                   "AND ($2::text IS NULL OR kind = $2::text) AND ($3::int = 0 OR state = 1) "
                   "ORDER BY job_id LIMIT $4",
    [Q_LEASE_ACQUIRE] = "INSERT INTO lease (name, holder, until_us) VALUES ($1, $2, $3) "
                        "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                        "until_us = excluded.until_us "
                        "WHERE lease.holder = excluded.holder OR lease.until_us <= $4::bigint "
                        "RETURNING holder",
    [Q_LEASE_RENEW] = "UPDATE lease SET until_us = $3 "
                      "WHERE name = $1 AND holder = $2 AND until_us > $4::bigint",
    [Q_LEASE_RELEASE] = "DELETE FROM lease WHERE name = $1 AND holder = $2",
};

static status_t run(pg_conn_t *conn, int which, const pg_params_t *p, PGresult **out, err_t *err)
{
    return pg__run_named(conn, PG_QUEUE + which, queue_sql[which], p, out, err);
}

/* Runs a statement and gives the number of rows it changed. */
static status_t run_changes(pg_conn_t *conn, int which, const pg_params_t *p, int64_t *out,
                            err_t *err)
{
    PGresult *res;
    status_t rc = run(conn, which, p, &res, err);
    if (rc)
        return rc;
    *out = pg__changes(res);
    PQclear(res);
    return ERR_OK;
}

/* Runs a statement that returns at most one row of one integer: *out_found, *out_value. */
static status_t run_one(pg_conn_t *conn, int which, const pg_params_t *p, bool *out_found,
                        int64_t *out_value, err_t *err)
{
    PGresult *res;
    status_t rc = run(conn, which, p, &res, err);
    if (rc)
        return rc;
    *out_found = PQntuples(res) > 0;
    if (*out_found)
        *out_value = pg__int_at(res, 0, 0);
    PQclear(res);
    return ERR_OK;
}

static status_t not_held(err_t *err, const char *what, int64_t key, const char *consumer)
{
    return err_set(err, ERR_CONFLICT, NULL, "%s %lld is not claimed by \"%s\"", what,
                   (long long)key, consumer);
}

/* ---- outbox ---------------------------------------------------------------------------- */

status_t pg__outbox_add(void *opaque, const store_event_t *event, err_t *err)
{
    pg_params_t p = {0};
    pg__int(&p, event->seq);
    pg__text(&p, event->type);
    pg__text(&p, event->id);
    pg__int(&p, event->version);
    pg__int(&p, (int64_t)event->action);
    pg__int(&p, event->time_us);
    return run(opaque, Q_OUTBOX_ADD, &p, NULL, err);
}

static void row_to_event(const PGresult *res, int row, arena_t *arena, store_event_t *out)
{
    out->event_id = pg__int_at(res, row, 0);
    out->seq = pg__int_at(res, row, 1);
    out->type = pg__text_at(res, row, 2, arena, NULL);
    out->id = pg__text_at(res, row, 3, arena, NULL);
    out->version = pg__int_at(res, row, 4);
    out->action = (store_event_action_t)pg__int_at(res, row, 5);
    out->time_us = pg__int_at(res, row, 6);
    out->available_us = pg__int_at(res, row, 7);
    out->attempts = pg__int_at(res, row, 8);
    out->claimed_by = pg__text_at(res, row, 9, arena, NULL);
    out->claim_until_us = pg__int_at(res, row, 10);
    out->last_error = pg__text_at(res, row, 11, arena, NULL);
    out->dead = pg__int_at(res, row, 12) != 0;
}

static int compare_events(const void *a, const void *b)
{
    int64_t x = ((const store_event_t *)a)->event_id, y = ((const store_event_t *)b)->event_id;
    return (x > y) - (x < y);
}

static void claim_params(pg_params_t *p, const store_claim_t *claim, int64_t want)
{
    pg__text(p, claim->consumer);
    pg__int(p, claim->now_us + claim->lease_us);
    pg__int(p, claim->now_us);
    pg__int(p, want);
    pg__int(p, claim->max_attempts);
}

/*
 * Claims in rounds: the rows of a round that go dead instead (their last lease ran out at
 * max_attempts) leave room for more, so a short answer means nothing more is available to
 * this claim (rows locked by concurrent claims are passed over).
 */
status_t pg__outbox_claim(void *opaque, const store_claim_t *claim, arena_t *arena,
                          store_event_t **out_events, size_t *out_n, err_t *err)
{
    pg_conn_t *conn = opaque;
    store_event_t *events = arena_alloc(arena, (claim->max ? claim->max : 1) * sizeof(*events));
    size_t n = 0;
    status_t status = ERR_OK;
    while (n < claim->max) {
        pg_params_t p = {0};
        claim_params(&p, claim, (int64_t)(claim->max - n));
        PGresult *res;
        if ((status = run(conn, Q_OUTBOX_CLAIM, &p, &res, err)))
            break;
        int rows = PQntuples(res);
        size_t went_dead = 0;
        for (int r = 0; r < rows && n < claim->max; r++) {
            row_to_event(res, r, arena, &events[n]);
            if (events[n].dead)
                went_dead++;
            else
                n++;
        }
        PQclear(res);
        if (!went_dead || rows == 0)
            break;
    }
    qsort(events, n, sizeof(*events), compare_events);
    *out_events = events;
    *out_n = status ? 0 : n;
    return status;
}

status_t pg__outbox_ack(void *opaque, int64_t event_id, const char *consumer, err_t *err)
{
    pg_params_t p = {0};
    pg__int(&p, event_id);
    pg__text(&p, consumer);
    int64_t changes = 0;
    status_t status = run_changes(opaque, Q_OUTBOX_ACK, &p, &changes, err);
    if (status)
        return status;
    return changes ? ERR_OK : not_held(err, "outbox event", event_id, consumer);
}

status_t pg__outbox_fail(void *opaque, int64_t event_id, const store_failure_t *failure,
                         bool *out_dead, err_t *err)
{
    pg_params_t p = {0};
    pg__int(&p, event_id);
    pg__text(&p, failure->consumer);
    pg__text(&p, failure->error);
    pg__int(&p, failure->retry_at_us);
    pg__int(&p, failure->max_attempts);
    bool found;
    int64_t dead = 0;
    status_t status = run_one(opaque, Q_OUTBOX_FAIL, &p, &found, &dead, err);
    if (status)
        return status;
    if (!found)
        return not_held(err, "outbox event", event_id, failure->consumer);
    *out_dead = dead != 0;
    return ERR_OK;
}

status_t pg__outbox_replay(void *opaque, int64_t event_id, int64_t now_us, err_t *err)
{
    pg_params_t p = {0};
    pg__int(&p, event_id);
    pg__int(&p, now_us);
    int64_t changes = 0;
    status_t status = run_changes(opaque, Q_OUTBOX_REPLAY, &p, &changes, err);
    if (status)
        return status;
    if (!changes)
        return err_set(err, ERR_NOT_FOUND, NULL, "there is no dead outbox event %lld",
                       (long long)event_id);
    return ERR_OK;
}

status_t pg__outbox_dead(void *opaque, int64_t after_event_id, size_t count, arena_t *arena,
                         store_event_t **out_events, size_t *out_n, err_t *err)
{
    *out_n = 0;
    pg_params_t p = {0};
    pg__int(&p, after_event_id);
    pg__int(&p, (int64_t)count);
    PGresult *res;
    status_t status = run(opaque, Q_OUTBOX_DEAD, &p, &res, err);
    if (status)
        return status;
    store_event_t *events = arena_alloc(arena, (count ? count : 1) * sizeof(*events));
    size_t n = 0;
    for (int r = 0; r < PQntuples(res) && n < count; r++)
        row_to_event(res, r, arena, &events[n++]);
    PQclear(res);
    *out_events = events;
    *out_n = n;
    return ERR_OK;
}

status_t pg__outbox_counts(void *opaque, int64_t *out_pending, int64_t *out_dead, err_t *err)
{
    PGresult *res;
    status_t status = run(opaque, Q_OUTBOX_COUNTS, NULL, &res, err);
    if (status)
        return status;
    int64_t dead = pg__int_at(res, 0, 1);
    *out_pending = pg__int_at(res, 0, 0) - dead;
    *out_dead = dead;
    PQclear(res);
    return ERR_OK;
}

status_t pg__outbox_claimed(void *opaque, int64_t now_us, int64_t *out_claimed, err_t *err)
{
    pg_params_t p = {0};
    pg__int(&p, now_us);
    PGresult *res;
    status_t status = run(opaque, Q_OUTBOX_CLAIMED, &p, &res, err);
    if (status)
        return status;
    *out_claimed = pg__int_at(res, 0, 0);
    PQclear(res);
    return ERR_OK;
}

status_t pg__outbox_replay_all(void *opaque, int64_t now_us, int64_t *out_n, err_t *err)
{
    pg_params_t p = {0};
    pg__int(&p, now_us);
    return run_changes(opaque, Q_OUTBOX_REPLAY_ALL, &p, out_n, err);
}

/* ---- jobs ------------------------------------------------------------------------------ */

status_t pg__job_schedule(void *opaque, const char *kind, const char *key, int64_t run_at_us,
                          const char *payload, int64_t *out_job_id, err_t *err)
{
    pg_params_t p = {0};
    pg__text(&p, kind);
    pg__text(&p, key);
    pg__int(&p, run_at_us);
    pg__text(&p, payload);
    bool found;
    status_t status = run_one(opaque, Q_JOB_SCHEDULE, &p, &found, out_job_id, err);
    if (status)
        return status;
    return found ? ERR_OK : err_set(err, ERR_INTERNAL, NULL, "scheduling a job returned no id");
}

status_t pg__job_cancel(void *opaque, const char *kind, const char *key, err_t *err)
{
    pg_params_t p = {0};
    pg__text(&p, kind);
    pg__text(&p, key);
    int64_t changes = 0;
    status_t status = run_changes(opaque, Q_JOB_CANCEL, &p, &changes, err);
    if (status)
        return status;
    if (!changes)
        return err_set(err, ERR_NOT_FOUND, NULL, "there is no job \"%s\" of kind \"%s\"", key,
                       kind);
    return ERR_OK;
}

static void row_to_job(const PGresult *res, int row, arena_t *arena, store_job_t *out)
{
    out->job_id = pg__int_at(res, row, 0);
    out->kind = pg__text_at(res, row, 1, arena, NULL);
    out->key = pg__text_at(res, row, 2, arena, NULL);
    out->run_at_us = pg__int_at(res, row, 3);
    out->payload = pg__text_at(res, row, 4, arena, NULL);
    out->attempts = pg__int_at(res, row, 5);
    out->claimed_by = pg__text_at(res, row, 6, arena, NULL);
    out->claim_until_us = pg__int_at(res, row, 7);
    out->last_error = pg__text_at(res, row, 8, arena, NULL);
    out->state = pg__int_at(res, row, 9) ? STORE_JOB_DEAD : STORE_JOB_SCHEDULED;
    out->revision = pg__int_at(res, row, 10);
}

static int compare_jobs(const void *a, const void *b)
{
    const store_job_t *x = a, *y = b;
    if (x->run_at_us != y->run_at_us)
        return (x->run_at_us > y->run_at_us) - (x->run_at_us < y->run_at_us);
    return (x->job_id > y->job_id) - (x->job_id < y->job_id);
}

status_t pg__job_claim(void *opaque, const store_claim_t *claim, arena_t *arena,
                       store_job_t **out_jobs, size_t *out_n, err_t *err)
{
    pg_conn_t *conn = opaque;
    store_job_t *jobs = arena_alloc(arena, (claim->max ? claim->max : 1) * sizeof(*jobs));
    size_t n = 0;
    status_t status = ERR_OK;
    while (n < claim->max) {
        pg_params_t p = {0};
        claim_params(&p, claim, (int64_t)(claim->max - n));
        pg__text(&p, claim->kind);
        PGresult *res;
        if ((status = run(conn, Q_JOB_CLAIM, &p, &res, err)))
            break;
        int rows = PQntuples(res);
        size_t went_dead = 0;
        for (int r = 0; r < rows && n < claim->max; r++) {
            row_to_job(res, r, arena, &jobs[n]);
            if (jobs[n].state == STORE_JOB_DEAD)
                went_dead++;
            else
                n++;
        }
        PQclear(res);
        if (!went_dead || rows == 0)
            break;
    }
    qsort(jobs, n, sizeof(*jobs), compare_jobs);
    *out_jobs = jobs;
    *out_n = status ? 0 : n;
    return status;
}

status_t pg__job_complete(void *opaque, const store_job_t *job, const char *consumer,
                          int64_t next_run_us, const char *next_payload, err_t *err)
{
    pg_conn_t *conn = opaque;
    pg_params_t p = {0};
    pg__int(&p, job->job_id);
    pg__text(&p, consumer);
    pg__int(&p, job->revision);
    if (next_run_us) {
        pg__int(&p, next_run_us);
        pg__text(&p, next_payload);
    }
    int64_t changes = 0;
    status_t status = run_changes(conn, next_run_us ? Q_JOB_NEXT : Q_JOB_DONE, &p, &changes, err);
    if (status)
        return status;
    if (changes)
        return ERR_OK;
    /* scheduled again during the run: that schedule stands, the claim goes */
    p.n = 2;
    if ((status = run_changes(conn, Q_JOB_UNCLAIM, &p, &changes, err)))
        return status;
    return changes ? ERR_OK : not_held(err, "job", job->job_id, consumer);
}

status_t pg__job_fail(void *opaque, const store_job_t *job, const store_failure_t *failure,
                      bool *out_dead, err_t *err)
{
    pg_params_t p = {0};
    pg__int(&p, job->job_id);
    pg__text(&p, failure->consumer);
    pg__text(&p, failure->error);
    pg__int(&p, failure->retry_at_us);
    pg__int(&p, failure->max_attempts);
    pg__int(&p, job->revision);
    bool found;
    int64_t state = 0;
    status_t status = run_one(opaque, Q_JOB_FAIL, &p, &found, &state, err);
    if (status)
        return status;
    if (!found)
        return not_held(err, "job", job->job_id, failure->consumer);
    *out_dead = state != 0;
    return ERR_OK;
}

status_t pg__job_replay(void *opaque, int64_t job_id, int64_t now_us, err_t *err)
{
    pg_params_t p = {0};
    pg__int(&p, job_id);
    pg__int(&p, now_us);
    int64_t changes = 0;
    status_t status = run_changes(opaque, Q_JOB_REPLAY, &p, &changes, err);
    if (status)
        return status;
    if (!changes)
        return err_set(err, ERR_NOT_FOUND, NULL, "there is no dead job %lld", (long long)job_id);
    return ERR_OK;
}

status_t pg__job_list(void *opaque, const store_job_query_t *query, arena_t *arena,
                      store_job_t **out_jobs, size_t *out_n, err_t *err)
{
    *out_n = 0;
    pg_params_t p = {0};
    pg__int(&p, query->after_job_id);
    pg__text(&p, query->kind);
    pg__int(&p, query->dead_only);
    pg__int(&p, (int64_t)query->count);
    PGresult *res;
    status_t status = run(opaque, Q_JOB_LIST, &p, &res, err);
    if (status)
        return status;
    store_job_t *jobs = arena_alloc(arena, (query->count ? query->count : 1) * sizeof(*jobs));
    size_t n = 0;
    for (int r = 0; r < PQntuples(res) && n < query->count; r++)
        row_to_job(res, r, arena, &jobs[n++]);
    PQclear(res);
    *out_jobs = jobs;
    *out_n = n;
    return ERR_OK;
}

/* ---- singleton leases ------------------------------------------------------------------ */

status_t pg__lease_acquire(void *opaque, const char *name, const char *holder, int64_t until_us,
                           int64_t now_us, bool *out_held, err_t *err)
{
    pg_params_t p = {0};
    pg__text(&p, name);
    pg__text(&p, holder);
    pg__int(&p, until_us);
    pg__int(&p, now_us);
    PGresult *res;
    status_t status = run(opaque, Q_LEASE_ACQUIRE, &p, &res, err);
    if (status)
        return status;
    *out_held = PQntuples(res) > 0;
    PQclear(res);
    return ERR_OK;
}

status_t pg__lease_renew(void *opaque, const char *name, const char *holder, int64_t until_us,
                         int64_t now_us, bool *out_held, err_t *err)
{
    pg_params_t p = {0};
    pg__text(&p, name);
    pg__text(&p, holder);
    pg__int(&p, until_us);
    pg__int(&p, now_us);
    int64_t changes = 0;
    status_t status = run_changes(opaque, Q_LEASE_RENEW, &p, &changes, err);
    if (status)
        return status;
    *out_held = changes > 0;
    return ERR_OK;
}

status_t pg__lease_release(void *opaque, const char *name, const char *holder, err_t *err)
{
    pg_params_t p = {0};
    pg__text(&p, name);
    pg__text(&p, holder);
    return run(opaque, Q_LEASE_RELEASE, &p, NULL, err);
}
