/*
 * worker.h - the work queue runner of a process: hands the outbox's change events and the due
 * jobs (store.h, "work queues") to the handlers registered for them, at least once, and
 * acknowledges, retries with back-off, or lets them go dead.
 *
 * Every `concerto serve` runs one worker thread. With several processes on one PostgreSQL
 * database, their workers share the queues: an event or a job is claimed by one worker at a
 * time (FOR UPDATE SKIP LOCKED), so each is handled once while its handler succeeds within
 * the lease; a worker that dies leaves its claims to run out, and another worker then takes
 * them again. Handlers must therefore be idempotent.
 *
 * Handlers are registered before repo_worker_start (by the layers above: the engine, the HL7
 * feed) and stay for the life of the process. An event no handler wants is acknowledged as
 * it is claimed, so the outbox never grows without bound.
 */
#ifndef CONCERTO_REPO_WORKER_H
#define CONCERTO_REPO_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"
#include "store/store.h"

/*
 * Handles one change event. An error makes the event come back after a back-off (doubling
 * from one second, at most an hour), and go dead after max_attempts; its message is kept as
 * the event's last_error.
 */
typedef status_t (*repo_event_fn)(store_t *store, const store_event_t *event, void *arg,
                                  err_t *err);

/* What a job's run asks for once it returns ERR_OK. */
typedef struct {
    int64_t next_run_us;      /* 0: the job is done and goes; else it runs again then */
    const char *next_payload; /* with next_run_us: that run's payload (NULL: the same);
                                 in the arena the handler was given */
} repo_job_next_t;

/*
 * Runs one claimed job. The lease is the worker's: a handler keeps a run well within it (a
 * long job does a part, then asks to continue with a payload saying where it got to). When
 * the job is scheduled again during the run (by a write that needs it redone), that schedule
 * stands and `next` is dropped. Errors: as for events.
 */
typedef status_t (*repo_job_fn)(store_t *store, const store_job_t *job, int64_t now_us,
                                arena_t *arena, repo_job_next_t *next, void *arg, err_t *err);

/* Handlers of the events of one resource type (NULL: of every type). */
void repo_worker_on_event(const char *type, repo_event_fn fn, void *arg);
/* The handler of the jobs of one kind (one per kind). */
void repo_worker_on_job(const char *kind, repo_job_fn fn, void *arg);

typedef struct {
    const char *name;     /* the worker's name in claims; NULL: "HOST:PID" */
    int64_t lease_us;     /* how long a claim holds (default 60 s) */
    int64_t poll_us;      /* how often an idle worker looks for work (default 200 ms) */
    size_t batch;         /* events per claim (default 500) */
    int64_t max_attempts; /* claims of one item before it goes dead (default 10) */
} repo_worker_config_t;

void repo_worker_config_init(repo_worker_config_t *config);

/* Starts the worker thread on store. */
status_t repo_worker_start(store_t *store, const repo_worker_config_t *config, err_t *err);
/* Stops it after the item in progress (its claims on the rest run out and others take them)
 * and waits for the thread. A no-op when it is not running. */
void repo_worker_stop(void);

/* Makes the worker look for work now rather than at its next poll (after the wall clock
 * moved forward, say: jobs may have come due). Thread-safe; a no-op when it is not running. */
void repo_worker_wake(void);

/*
 * Runs the due jobs of kind (NULL: of every kind with a handler) on the calling thread until
 * none is due, as the worker would: for commands that do not serve (import, init) and finish
 * what their writes scheduled. *out_runs (may be NULL): runs made.
 */
status_t repo_worker_drain(store_t *store, const char *kind, size_t *out_runs, err_t *err);

/* Counts since the process started, for logs and metrics. */
typedef struct {
    int64_t events_handled; /* acknowledged by this process */
    int64_t events_failed;  /* failed attempts (retried or dead) */
    int64_t jobs_run;       /* runs that returned ERR_OK */
    int64_t jobs_failed;
} repo_worker_stats_t;
void repo_worker_stats(repo_worker_stats_t *out);

#endif
