/*
 * purge.h - the recurring job that removes what the sign-in and token work leaves behind once
 * it has expired: tokens and codes (revoked or not), the client assertion ids kept against
 * replays, browser sessions past their end and authorization requests that expired or whose
 * session is gone. Nothing it removes can still be used: an expired row only refuses.
 *
 * The job is one row of the work queue (repo/worker.h), kind AUTH_PURGE_KIND and key
 * AUTH_PURGE_KEY, so there is never more than one however many processes schedule it; it
 * runs once at each serve start and then every AUTH_PURGE_INTERVAL_US, in whichever process
 * claims it.
 */
#ifndef CONCERTO_AUTH_PURGE_H
#define CONCERTO_AUTH_PURGE_H

#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"
#include "repo/worker.h"
#include "store/store.h"

#define AUTH_PURGE_KIND        "auth-purge"
#define AUTH_PURGE_KEY         "expired"
#define AUTH_PURGE_INTERVAL_US ((int64_t)3600 * 1000000)

/* How many rows a purge removed. */
typedef struct {
    int64_t tokens;   /* tokens and codes (the assertion ids go with them, uncounted) */
    int64_t sessions; /* browser sessions (their authorization requests go with them) */
} auth_purge_counts_t;

/* Removes, in one transaction, everything listed above that expired at or before now_us.
 * *out (may be NULL): the counts. */
status_t auth_purge(store_t *store, int64_t now_us, auth_purge_counts_t *out, err_t *err);

/* The job's handler (repo_job_fn): auth_purge at now_us, then the next run
 * AUTH_PURGE_INTERVAL_US later. */
status_t auth_purge_job(store_t *store, const store_job_t *job, int64_t now_us, arena_t *arena,
                        repo_job_next_t *next, void *arg, err_t *err);

/* Registers auth_purge_job with the worker (once per process; before repo_worker_start) and
 * schedules its run at now_us (serve's start): the one job of AUTH_PURGE_KIND and
 * AUTH_PURGE_KEY, made or moved to now_us. */
status_t auth_purge_start(store_t *store, int64_t now_us, err_t *err);

#endif
