/*
 * purge.c - the recurring purge of expired tokens, assertion ids, sessions and authorization
 * requests (purge.h), as a job of the work queue.
 */
#include <inttypes.h>
#include <stdbool.h>

#include "auth/purge.h"
#include "base/log.h"

typedef struct {
    int64_t now_us;
    auth_purge_counts_t counts;
} purge_arg_t;

static status_t purge_txn(store_txn_t *txn, void *arg, err_t *err)
{
    purge_arg_t *a = arg;
    status_t rc = store_txn_token_purge(txn, a->now_us, &a->counts.tokens, err);
    if (!rc)
        rc = store_txn_session_purge(txn, a->now_us, &a->counts.sessions, err);
    return rc;
}

status_t auth_purge(store_t *store, int64_t now_us, auth_purge_counts_t *out, err_t *err)
{
    purge_arg_t arg = {now_us, {0, 0}};
    status_t rc = store_run(store, purge_txn, &arg, err);
    if (out)
        *out = rc ? (auth_purge_counts_t){0, 0} : arg.counts;
    return rc;
}

status_t auth_purge_job(store_t *store, const store_job_t *job, int64_t now_us, arena_t *arena,
                        repo_job_next_t *next, void *arg, err_t *err)
{
    (void)job;
    (void)arena;
    (void)arg;
    auth_purge_counts_t counts;
    status_t rc = auth_purge(store, now_us, &counts, err);
    if (rc)
        return rc;
    if (counts.tokens || counts.sessions)
        log_info("removed %" PRId64 " expired tokens and %" PRId64 " expired sessions",
                 counts.tokens, counts.sessions);
    next->next_run_us = now_us + AUTH_PURGE_INTERVAL_US;
    next->next_payload = NULL;
    return ERR_OK;
}

static status_t schedule_txn(store_txn_t *txn, void *arg, err_t *err)
{
    const int64_t *now_us = arg;
    return store_txn_job_schedule(txn, AUTH_PURGE_KIND, AUTH_PURGE_KEY, *now_us, NULL, NULL, err);
}

status_t auth_purge_start(store_t *store, int64_t now_us, err_t *err)
{
    static bool registered;
    if (!registered) {
        repo_worker_on_job(AUTH_PURGE_KIND, auth_purge_job, NULL);
        registered = true;
    }
    return store_run(store, schedule_txn, &now_us, err);
}
