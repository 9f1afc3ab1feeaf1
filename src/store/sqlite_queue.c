/*
 * sqlite_queue.c - the work queues of the SQLite driver: the outbox, jobs, singleton leases
 * (docs/internals/store.md, "Work queues").
 *
 * Every write runs on the writer's connection inside its open transaction; SQLite has one
 * writer, so claims never race. The SQL is the SQL the PostgreSQL driver runs, less its
 * FOR UPDATE SKIP LOCKED in the subquery that picks what to claim: a claim is one UPDATE ...
 * WHERE key IN (SELECT ... LIMIT n) RETURNING. "Answered" claims (acknowledged items go, failed
 * ones get claim_until_us 0) are told apart from claims that ran out by claim_until_us > 0.
 */
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_int.h"

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

_Static_assert(Q__COUNT <= SQLITE_QUEUE_STATEMENTS, "raise SQLITE_QUEUE_STATEMENTS");

#define EVENT_COLUMNS                                                                         \
    "event_id, seq, type, id, version, action, time_us, available_us, attempts, claimed_by, " \
    "claim_until_us, last_error, dead"
#define JOB_COLUMNS                                                                             \
    "job_id, kind, key, run_at_us, payload, attempts, claimed_by, claim_until_us, last_error, " \
    "state, revision"

/* A claim that ran out unanswered after max_attempts claims: the item goes dead instead. */
#define RAN_OUT "(claim_until_us > 0 AND ?5 > 0 AND attempts >= ?5)"
#define CLAIM_SET                                                                              \
    "claimed_by = CASE WHEN " RAN_OUT " THEN claimed_by ELSE ?1 END, "                         \
    "claim_until_us = CASE WHEN " RAN_OUT " THEN 0 ELSE ?2 END, "                              \
    "attempts = CASE WHEN " RAN_OUT " THEN attempts ELSE attempts + 1 END, "                   \
    "last_error = CASE WHEN " RAN_OUT " THEN 'the lease ran out with no answer ' || attempts " \
    "|| ' times' ELSE last_error END, "

static const char *const queue_sql[Q__COUNT] = {
    [Q_OUTBOX_ADD] = "INSERT INTO outbox (seq, type, id, version, action, time_us) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    /* ?1 consumer, ?2 claim until, ?3 now, ?4 how many, ?5 max attempts */
    [Q_OUTBOX_CLAIM] = "UPDATE outbox SET " CLAIM_SET "dead = " RAN_OUT " "
                       "WHERE event_id IN (SELECT event_id FROM outbox WHERE dead = 0 "
                       "AND available_us <= ?3 AND claim_until_us <= ?3 "
                       "ORDER BY event_id LIMIT ?4) RETURNING " EVENT_COLUMNS,
    [Q_OUTBOX_ACK] = "DELETE FROM outbox WHERE event_id = ?1 AND claimed_by = ?2 "
                     "AND claim_until_us > 0 AND dead = 0",
    /* ?1 event, ?2 consumer, ?3 error, ?4 retry at, ?5 max attempts */
    [Q_OUTBOX_FAIL] = "UPDATE outbox SET last_error = ?3, available_us = ?4, claim_until_us = 0, "
                      "dead = (?5 > 0 AND attempts >= ?5) "
                      "WHERE event_id = ?1 AND claimed_by = ?2 AND claim_until_us > 0 "
                      "AND dead = 0 RETURNING dead",
    [Q_OUTBOX_REPLAY] = "UPDATE outbox SET dead = 0, attempts = 0, available_us = ?2, "
                        "claimed_by = NULL, claim_until_us = 0 WHERE event_id = ?1 AND dead = 1",
    [Q_OUTBOX_DEAD] = "SELECT " EVENT_COLUMNS " FROM outbox WHERE dead = 1 AND event_id > ?1 "
                      "ORDER BY event_id LIMIT ?2",
    [Q_OUTBOX_COUNTS] = "SELECT count(*), coalesce(sum(dead), 0) FROM outbox",
    [Q_OUTBOX_CLAIMED] = "SELECT count(*) FROM outbox WHERE dead = 0 AND claimed_by IS NOT NULL "
                         "AND claim_until_us > ?1",
    [Q_OUTBOX_REPLAY_ALL] = "UPDATE outbox SET dead = 0, attempts = 0, available_us = ?1, "
                            "claimed_by = NULL, claim_until_us = 0 WHERE dead = 1",
    [Q_JOB_SCHEDULE] = "INSERT INTO job (kind, key, run_at_us, payload) VALUES (?1, ?2, ?3, ?4) "
                       "ON CONFLICT (kind, key) DO UPDATE SET run_at_us = excluded.run_at_us, "
                       "payload = excluded.payload, attempts = 0, last_error = NULL, state = 0, "
                       "revision = job.revision + 1 RETURNING job_id",
    [Q_JOB_CANCEL] = "DELETE FROM job WHERE kind = ?1 AND key = ?2",
    /* ?1 consumer, ?2 claim until, ?3 now, ?4 how many, ?5 max attempts, ?6 kind or NULL */
    [Q_JOB_CLAIM] = "UPDATE job SET " CLAIM_SET "state = " RAN_OUT " "
                    "WHERE job_id IN (SELECT job_id FROM job WHERE state = 0 "
                    "AND run_at_us <= ?3 AND claim_until_us <= ?3 AND (?6 IS NULL OR kind = ?6) "
                    "ORDER BY run_at_us, job_id LIMIT ?4) RETURNING " JOB_COLUMNS,
    /* ?1 job, ?2 consumer, ?3 revision as claimed */
    [Q_JOB_DONE] = "DELETE FROM job WHERE job_id = ?1 AND claimed_by = ?2 AND claim_until_us > 0 "
                   "AND state = 0 AND revision = ?3",
    /* ?4 next run, ?5 its payload (NULL: the same) */
    [Q_JOB_NEXT] = "UPDATE job SET run_at_us = ?4, payload = coalesce(?5, payload), "
                   "attempts = 0, last_error = NULL, "
                   "claim_until_us = 0 WHERE job_id = ?1 AND claimed_by = ?2 "
                   "AND claim_until_us > 0 AND state = 0 AND revision = ?3",
    [Q_JOB_UNCLAIM] = "UPDATE job SET claim_until_us = 0 "
                      "WHERE job_id = ?1 AND claimed_by = ?2 AND claim_until_us > 0",
    /* ?1 job, ?2 consumer, ?3 error, ?4 retry at, ?5 max attempts, ?6 revision as claimed */
    [Q_JOB_FAIL] = "UPDATE job SET last_error = ?3, claim_until_us = 0, "
                   "run_at_us = CASE WHEN revision = ?6 THEN ?4 ELSE run_at_us END, "
                   "state = (revision = ?6 AND ?5 > 0 AND attempts >= ?5) "
                   "WHERE job_id = ?1 AND claimed_by = ?2 AND claim_until_us > 0 AND state = 0 "
                   "RETURNING state",
    [Q_JOB_REPLAY] = "UPDATE job SET state = 0, attempts = 0, run_at_us = ?2, claimed_by = NULL, "
                     "claim_until_us = 0 WHERE job_id = ?1 AND state = 1",
    [Q_JOB_LIST] = "SELECT " JOB_COLUMNS " FROM job WHERE job_id > ?1 "
                   "AND (?2 IS NULL OR kind = ?2) AND (?3 = 0 OR state = 1) "
                   "ORDER BY job_id LIMIT ?4",
    [Q_LEASE_ACQUIRE] = "INSERT INTO lease (name, holder, until_us) VALUES (?1, ?2, ?3) "
                        "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                        "until_us = excluded.until_us "
                        "WHERE lease.holder = excluded.holder OR lease.until_us <= ?4 "
                        "RETURNING holder",
    [Q_LEASE_RENEW] = "UPDATE lease SET until_us = ?3 "
                      "WHERE name = ?1 AND holder = ?2 AND until_us > ?4",
    [Q_LEASE_RELEASE] = "DELETE FROM lease WHERE name = ?1 AND holder = ?2",
};

static status_t prepare(sqlite_conn_t *conn, int which, sqlite3_stmt **out, err_t *err)
{
    if (!conn->queue_statements[which]) {
        int rc = sqlite3_prepare_v3(conn->handle, queue_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
                                    &conn->queue_statements[which], NULL);
        if (rc != SQLITE_OK)
            return sqlite__fail(conn->handle, rc, err, queue_sql[which]);
    }
    *out = conn->queue_statements[which];
    return ERR_OK;
}

static void done(sqlite3_stmt *stmt)
{
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
}

static void bind_text(sqlite3_stmt *stmt, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(stmt, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, i);
}

/* Steps a statement that returns no row; *out_changes (may be NULL) gets the rows it changed. */
static status_t step_done(sqlite_conn_t *conn, sqlite3_stmt *stmt, int64_t *out_changes,
                          const char *doing, err_t *err)
{
    int rc = sqlite3_step(stmt);
    done(stmt);
    if (rc != SQLITE_DONE)
        return sqlite__fail(conn->handle, rc, err, doing);
    if (out_changes)
        *out_changes = sqlite3_changes64(conn->handle);
    return ERR_OK;
}

/* Steps a statement that returns at most one row of one integer: *out_found, *out_value. */
static status_t step_one(sqlite_conn_t *conn, sqlite3_stmt *stmt, bool *out_found,
                         int64_t *out_value, const char *doing, err_t *err)
{
    int rc = sqlite3_step(stmt);
    *out_found = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW) {
        *out_value = sqlite3_column_int64(stmt, 0);
        rc = sqlite3_step(stmt);
    }
    done(stmt);
    if (rc != SQLITE_DONE)
        return sqlite__fail(conn->handle, rc, err, doing);
    return ERR_OK;
}

/* ---- outbox ---------------------------------------------------------------------------- */

status_t sqlite__outbox_add(void *opaque, const store_event_t *event, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt = NULL;
    status_t status = prepare(conn, Q_OUTBOX_ADD, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_int64(stmt, 1, event->seq);
    sqlite3_bind_text(stmt, 2, event->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, event->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, event->version);
    sqlite3_bind_int(stmt, 5, (int)event->action);
    sqlite3_bind_int64(stmt, 6, event->time_us);
    return step_done(conn, stmt, NULL, "insert outbox event", err);
}

static void row_to_event(sqlite3_stmt *stmt, arena_t *arena, store_event_t *out)
{
    out->event_id = sqlite3_column_int64(stmt, 0);
    out->seq = sqlite3_column_int64(stmt, 1);
    out->type = sqlite__column_text(stmt, 2, arena, NULL);
    out->id = sqlite__column_text(stmt, 3, arena, NULL);
    out->version = sqlite3_column_int64(stmt, 4);
    out->action = (store_event_action_t)sqlite3_column_int(stmt, 5);
    out->time_us = sqlite3_column_int64(stmt, 6);
    out->available_us = sqlite3_column_int64(stmt, 7);
    out->attempts = sqlite3_column_int64(stmt, 8);
    out->claimed_by = sqlite__column_text(stmt, 9, arena, NULL);
    out->claim_until_us = sqlite3_column_int64(stmt, 10);
    out->last_error = sqlite__column_text(stmt, 11, arena, NULL);
    out->dead = sqlite3_column_int(stmt, 12) != 0;
}

static int compare_events(const void *a, const void *b)
{
    int64_t x = ((const store_event_t *)a)->event_id, y = ((const store_event_t *)b)->event_id;
    return (x > y) - (x < y);
}

static void bind_claim(sqlite3_stmt *stmt, const store_claim_t *claim, int64_t want)
{
    sqlite3_bind_text(stmt, 1, claim->consumer, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, claim->now_us + claim->lease_us);
    sqlite3_bind_int64(stmt, 3, claim->now_us);
    sqlite3_bind_int64(stmt, 4, want);
    sqlite3_bind_int64(stmt, 5, claim->max_attempts);
}

/*
 * Claims in rounds: the rows of a round that go dead instead (their last lease ran out at
 * max_attempts) leave room for more, so a short answer means nothing more is available.
 */
status_t sqlite__outbox_claim(void *opaque, const store_claim_t *claim, arena_t *arena,
                              store_event_t **out_events, size_t *out_n, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    store_event_t *events = arena_alloc(arena, (claim->max ? claim->max : 1) * sizeof(*events));
    size_t n = 0;
    status_t status = ERR_OK;
    while (n < claim->max) {
        sqlite3_stmt *stmt = NULL;
        if ((status = prepare(conn, Q_OUTBOX_CLAIM, &stmt, err)))
            break;
        bind_claim(stmt, claim, (int64_t)(claim->max - n));
        size_t rows = 0, went_dead = 0;
        int rc;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            rows++;
            row_to_event(stmt, arena, &events[n]);
            if (events[n].dead)
                went_dead++;
            else
                n++;
        }
        done(stmt);
        if (rc != SQLITE_DONE) {
            status = sqlite__fail(conn->handle, rc, err, "claim outbox events");
            break;
        }
        if (!went_dead || rows == 0)
            break;
    }
    qsort(events, n, sizeof(*events), compare_events);
    *out_events = events;
    *out_n = status ? 0 : n;
    return status;
}

static status_t not_held(err_t *err, const char *what, int64_t key, const char *consumer)
{
    return err_set(err, ERR_CONFLICT, NULL, "%s %lld is not claimed by \"%s\"", what,
                   (long long)key, consumer);
}

status_t sqlite__outbox_ack(void *opaque, int64_t event_id, const char *consumer, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt = NULL;
    status_t status = prepare(conn, Q_OUTBOX_ACK, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_int64(stmt, 1, event_id);
    sqlite3_bind_text(stmt, 2, consumer, -1, SQLITE_STATIC);
    int64_t changes = 0;
    if ((status = step_done(conn, stmt, &changes, "acknowledge outbox event", err)))
        return status;
    return changes ? ERR_OK : not_held(err, "outbox event", event_id, consumer);
}

status_t sqlite__outbox_fail(void *opaque, int64_t event_id, const store_failure_t *failure,
                             bool *out_dead, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt = NULL;
    status_t status = prepare(conn, Q_OUTBOX_FAIL, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_int64(stmt, 1, event_id);
    sqlite3_bind_text(stmt, 2, failure->consumer, -1, SQLITE_STATIC);
    bind_text(stmt, 3, failure->error);
    sqlite3_bind_int64(stmt, 4, failure->retry_at_us);
    sqlite3_bind_int64(stmt, 5, failure->max_attempts);
    bool found;
    int64_t dead = 0;
    if ((status = step_one(conn, stmt, &found, &dead, "fail outbox event", err)))
        return status;
    if (!found)
        return not_held(err, "outbox event", event_id, failure->consumer);
    *out_dead = dead != 0;
    return ERR_OK;
}

status_t sqlite__outbox_replay(void *opaque, int64_t event_id, int64_t now_us, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt = NULL;
    status_t status = prepare(conn, Q_OUTBOX_REPLAY, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_int64(stmt, 1, event_id);
    sqlite3_bind_int64(stmt, 2, now_us);
    int64_t changes = 0;
    if ((status = step_done(conn, stmt, &changes, "replay outbox event", err)))
        return status;
    if (!changes)
        return err_set(err, ERR_NOT_FOUND, NULL, "there is no dead outbox event %lld",
                       (long long)event_id);
    return ERR_OK;
}

status_t sqlite__outbox_dead(void *opaque, int64_t after_event_id, size_t count, arena_t *arena,
                             store_event_t **out_events, size_t *out_n, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt = NULL;
    *out_n = 0;
    status_t status = prepare(conn, Q_OUTBOX_DEAD, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_int64(stmt, 1, after_event_id);
    sqlite3_bind_int64(stmt, 2, (int64_t)count);
    store_event_t *events = arena_alloc(arena, (count ? count : 1) * sizeof(*events));
    size_t n = 0;
    int rc = SQLITE_DONE;
    while (n < count && (rc = sqlite3_step(stmt)) == SQLITE_ROW)
        row_to_event(stmt, arena, &events[n++]);
    if (n < count && rc != SQLITE_DONE)
        status = sqlite__fail(conn->handle, rc, err, "list dead outbox events");
    done(stmt);
    *out_events = events;
    *out_n = status ? 0 : n;
    return status;
}

status_t sqlite__outbox_counts(void *opaque, int64_t *out_pending, int64_t *out_dead, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt = NULL;
    status_t status = prepare(conn, Q_OUTBOX_COUNTS, &stmt, err);
    if (status)
        return status;
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        int64_t dead = sqlite3_column_int64(stmt, 1);
        *out_pending = sqlite3_column_int64(stmt, 0) - dead;
        *out_dead = dead;
    } else {
        status = sqlite__fail(conn->handle, rc, err, "count outbox events");
    }
    done(stmt);
    return status;
}

status_t sqlite__outbox_claimed(void *opaque, int64_t now_us, int64_t *out_claimed, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt = NULL;
    *out_claimed = 0;
    status_t status = prepare(conn, Q_OUTBOX_CLAIMED, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_int64(stmt, 1, now_us);
    bool found;
    return step_one(conn, stmt, &found, out_claimed, "count claimed outbox events", err);
}

status_t sqlite__outbox_replay_all(void *opaque, int64_t now_us, int64_t *out_n, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt = NULL;
    status_t status = prepare(conn, Q_OUTBOX_REPLAY_ALL, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_int64(stmt, 1, now_us);
    return step_done(conn, stmt, out_n, "replay dead outbox events", err);
}

/* ---- jobs ------------------------------------------------------------------------------ */

status_t sqlite__job_schedule(void *opaque, const char *kind, const char *key, int64_t run_at_us,
                              const char *payload, int64_t *out_job_id, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt = NULL;
    status_t status = prepare(conn, Q_JOB_SCHEDULE, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_text(stmt, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, run_at_us);
    bind_text(stmt, 4, payload);
    bool found;
    if ((status = step_one(conn, stmt, &found, out_job_id, "schedule job", err)))
        return status;
    return found ? ERR_OK : err_set(err, ERR_INTERNAL, NULL, "scheduling a job returned no id");
}

status_t sqlite__job_cancel(void *opaque, const char *kind, const char *key, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt = NULL;
    status_t status = prepare(conn, Q_JOB_CANCEL, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_text(stmt, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
    int64_t changes = 0;
    if ((status = step_done(conn, stmt, &changes, "cancel job", err)))
        return status;
    if (!changes)
        return err_set(err, ERR_NOT_FOUND, NULL, "there is no job \"%s\" of kind \"%s\"", key,
                       kind);
    return ERR_OK;
}

static void row_to_job(sqlite3_stmt *stmt, arena_t *arena, store_job_t *out)
{
    out->job_id = sqlite3_column_int64(stmt, 0);
    out->kind = sqlite__column_text(stmt, 1, arena, NULL);
    out->key = sqlite__column_text(stmt, 2, arena, NULL);
    out->run_at_us = sqlite3_column_int64(stmt, 3);
    out->payload = sqlite__column_text(stmt, 4, arena, NULL);
    out->attempts = sqlite3_column_int64(stmt, 5);
    out->claimed_by = sqlite__column_text(stmt, 6, arena, NULL);
    out->claim_until_us = sqlite3_column_int64(stmt, 7);
    out->last_error = sqlite__column_text(stmt, 8, arena, NULL);
    out->state = sqlite3_column_int(stmt, 9) ? STORE_JOB_DEAD : STORE_JOB_SCHEDULED;
    out->revision = sqlite3_column_int64(stmt, 10);
}

static int compare_jobs(const void *a, const void *b)
{
    const store_job_t *x = a, *y = b;
    if (x->run_at_us != y->run_at_us)
        return (x->run_at_us > y->run_at_us) - (x->run_at_us < y->run_at_us);
    return (x->job_id > y->job_id) - (x->job_id < y->job_id);
}

status_t sqlite__job_claim(void *opaque, const store_claim_t *claim, arena_t *arena,
                           store_job_t **out_jobs, size_t *out_n, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    store_job_t *jobs = arena_alloc(arena, (claim->max ? claim->max : 1) * sizeof(*jobs));
    size_t n = 0;
    status_t status = ERR_OK;
    while (n < claim->max) {
        sqlite3_stmt *stmt = NULL;
        if ((status = prepare(conn, Q_JOB_CLAIM, &stmt, err)))
            break;
        bind_claim(stmt, claim, (int64_t)(claim->max - n));
        bind_text(stmt, 6, claim->kind);
        size_t rows = 0, went_dead = 0;
        int rc;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            rows++;
            row_to_job(stmt, arena, &jobs[n]);
            if (jobs[n].state == STORE_JOB_DEAD)
                went_dead++;
            else
                n++;
        }
        done(stmt);
        if (rc != SQLITE_DONE) {
            status = sqlite__fail(conn->handle, rc, err, "claim jobs");
            break;
        }
        if (!went_dead || rows == 0)
            break;
    }
    qsort(jobs, n, sizeof(*jobs), compare_jobs);
    *out_jobs = jobs;
    *out_n = status ? 0 : n;
    return status;
}

status_t sqlite__job_complete(void *opaque, const store_job_t *job, const char *consumer,
                              int64_t next_run_us, const char *next_payload, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt = NULL;
    int which = next_run_us ? Q_JOB_NEXT : Q_JOB_DONE;
    status_t status = prepare(conn, which, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_int64(stmt, 1, job->job_id);
    sqlite3_bind_text(stmt, 2, consumer, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, job->revision);
    if (next_run_us) {
        sqlite3_bind_int64(stmt, 4, next_run_us);
        if (next_payload)
            sqlite3_bind_text(stmt, 5, next_payload, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(stmt, 5);
    }
    int64_t changes = 0;
    if ((status = step_done(conn, stmt, &changes, "complete job", err)))
        return status;
    if (changes)
        return ERR_OK;
    /* scheduled again during the run: that schedule stands, the claim goes */
    if ((status = prepare(conn, Q_JOB_UNCLAIM, &stmt, err)))
        return status;
    sqlite3_bind_int64(stmt, 1, job->job_id);
    sqlite3_bind_text(stmt, 2, consumer, -1, SQLITE_STATIC);
    if ((status = step_done(conn, stmt, &changes, "complete job", err)))
        return status;
    return changes ? ERR_OK : not_held(err, "job", job->job_id, consumer);
}

status_t sqlite__job_fail(void *opaque, const store_job_t *job, const store_failure_t *failure,
                          bool *out_dead, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt = NULL;
    status_t status = prepare(conn, Q_JOB_FAIL, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_int64(stmt, 1, job->job_id);
    sqlite3_bind_text(stmt, 2, failure->consumer, -1, SQLITE_STATIC);
    bind_text(stmt, 3, failure->error);
    sqlite3_bind_int64(stmt, 4, failure->retry_at_us);
    sqlite3_bind_int64(stmt, 5, failure->max_attempts);
    sqlite3_bind_int64(stmt, 6, job->revision);
    bool found;
    int64_t state = 0;
    if ((status = step_one(conn, stmt, &found, &state, "fail job", err)))
        return status;
    if (!found)
        return not_held(err, "job", job->job_id, failure->consumer);
    *out_dead = state != 0;
    return ERR_OK;
}

status_t sqlite__job_replay(void *opaque, int64_t job_id, int64_t now_us, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt = NULL;
    status_t status = prepare(conn, Q_JOB_REPLAY, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_int64(stmt, 1, job_id);
    sqlite3_bind_int64(stmt, 2, now_us);
    int64_t changes = 0;
    if ((status = step_done(conn, stmt, &changes, "replay job", err)))
        return status;
    if (!changes)
        return err_set(err, ERR_NOT_FOUND, NULL, "there is no dead job %lld", (long long)job_id);
    return ERR_OK;
}

status_t sqlite__job_list(void *opaque, const store_job_query_t *query, arena_t *arena,
                          store_job_t **out_jobs, size_t *out_n, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt = NULL;
    *out_n = 0;
    status_t status = prepare(conn, Q_JOB_LIST, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_int64(stmt, 1, query->after_job_id);
    bind_text(stmt, 2, query->kind);
    sqlite3_bind_int(stmt, 3, query->dead_only);
    sqlite3_bind_int64(stmt, 4, (int64_t)query->count);
    store_job_t *jobs = arena_alloc(arena, (query->count ? query->count : 1) * sizeof(*jobs));
    size_t n = 0;
    int rc = SQLITE_DONE;
    while (n < query->count && (rc = sqlite3_step(stmt)) == SQLITE_ROW)
        row_to_job(stmt, arena, &jobs[n++]);
    if (n < query->count && rc != SQLITE_DONE)
        status = sqlite__fail(conn->handle, rc, err, "list jobs");
    done(stmt);
    *out_jobs = jobs;
    *out_n = status ? 0 : n;
    return status;
}

/* ---- singleton leases ------------------------------------------------------------------ */

status_t sqlite__lease_acquire(void *opaque, const char *name, const char *holder, int64_t until_us,
                               int64_t now_us, bool *out_held, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt = NULL;
    status_t status = prepare(conn, Q_LEASE_ACQUIRE, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, holder, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, until_us);
    sqlite3_bind_int64(stmt, 4, now_us);
    int rc = sqlite3_step(stmt);
    *out_held = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW)
        rc = sqlite3_step(stmt);
    done(stmt);
    if (rc != SQLITE_DONE)
        return sqlite__fail(conn->handle, rc, err, "acquire lease");
    return ERR_OK;
}

status_t sqlite__lease_renew(void *opaque, const char *name, const char *holder, int64_t until_us,
                             int64_t now_us, bool *out_held, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt = NULL;
    status_t status = prepare(conn, Q_LEASE_RENEW, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, holder, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, until_us);
    sqlite3_bind_int64(stmt, 4, now_us);
    int64_t changes = 0;
    if ((status = step_done(conn, stmt, &changes, "renew lease", err)))
        return status;
    *out_held = changes > 0;
    return ERR_OK;
}

status_t sqlite__lease_release(void *opaque, const char *name, const char *holder, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt = NULL;
    status_t status = prepare(conn, Q_LEASE_RELEASE, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, holder, -1, SQLITE_STATIC);
    return step_done(conn, stmt, NULL, "release lease", err);
}
