/*
 * worker.c - the work queue runner (worker.h): one thread per process that claims due jobs and
 * change events, runs their handlers outside any transaction, and settles each claim in a
 * writer transaction of its own.
 */
#include "repo/worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "repo/repo.h"

#define MAX_HANDLERS    32
#define BACKOFF_FIRST   1000000LL    /* a failed item's first retry after a second */
#define BACKOFF_MAX     3600000000LL /* and never later than an hour */
#define JOB_ROUNDS      16           /* job runs per kind between two event batches */
#define REFRESH_US      1000000LL    /* how often the search parameters are compared */
#define ERROR_PAUSE_US  1000000LL    /* after a failed claim (the database away, say) */
#define STOP_CHECK_EACH 64           /* events handled between two looks at the stop flag */

typedef struct {
    char *type; /* NULL: every type */
    repo_event_fn fn;
    void *arg;
} event_handler_t;

typedef struct {
    char *kind;
    repo_job_fn fn;
    void *arg;
} job_handler_t;

static struct {
    event_handler_t events[MAX_HANDLERS];
    size_t nevents;
    job_handler_t jobs[MAX_HANDLERS];
    size_t njobs;

    pthread_mutex_t lock; /* guards the stop flag's wait */
    pthread_cond_t cond;
    pthread_t thread;
    bool running;
    atomic_bool stopping;
    bool woken; /* under lock: repo_worker_wake was called since the last pause */
    store_t *store;
    repo_worker_config_t config;
    char name[300];

    atomic_llong events_handled, events_failed, jobs_run, jobs_failed;
} worker = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

void repo_worker_on_event(const char *type, repo_event_fn fn, void *arg)
{
    if (worker.nevents == MAX_HANDLERS)
        die("too many event handlers");
    worker.events[worker.nevents++] =
        (event_handler_t){.type = type ? xstrdup(type) : NULL, .fn = fn, .arg = arg};
}

void repo_worker_on_job(const char *kind, repo_job_fn fn, void *arg)
{
    for (size_t i = 0; i < worker.njobs; i++)
        if (strcmp(worker.jobs[i].kind, kind) == 0)
            die("two handlers for the jobs of kind %s", kind);
    if (worker.njobs == MAX_HANDLERS)
        die("too many job handlers");
    worker.jobs[worker.njobs++] = (job_handler_t){.kind = xstrdup(kind), .fn = fn, .arg = arg};
}

void repo_worker_config_init(repo_worker_config_t *config)
{
    *config = (repo_worker_config_t){
        .lease_us = 60000000, .poll_us = 200000, .batch = 500, .max_attempts = 10};
}

void repo_worker_stats(repo_worker_stats_t *out)
{
    out->events_handled = atomic_load(&worker.events_handled);
    out->events_failed = atomic_load(&worker.events_failed);
    out->jobs_run = atomic_load(&worker.jobs_run);
    out->jobs_failed = atomic_load(&worker.jobs_failed);
}

static int64_t backoff_us(int64_t attempts)
{
    int64_t delay = BACKOFF_FIRST;
    for (int64_t i = 1; i < attempts && delay < BACKOFF_MAX; i++)
        delay *= 2;
    return delay < BACKOFF_MAX ? delay : BACKOFF_MAX;
}

static void default_name(char *out, size_t size)
{
    char host[256];
    if (gethostname(host, sizeof(host)) != 0)
        strcpy(host, "localhost");
    host[sizeof(host) - 1] = '\0';
    snprintf(out, size, "%s:%ld", host, (long)getpid());
}

/* ---- jobs -------------------------------------------------------------------------------- */

typedef struct {
    const repo_worker_config_t *config;
    const char *consumer;
    const char *kind;
    arena_t *arena;
    int64_t now_us;
    store_job_t *jobs;
    size_t n;
} job_claim_t;

static status_t claim_job_txn(store_txn_t *txn, void *arg, err_t *err)
{
    job_claim_t *c = arg;
    store_claim_t claim = {.consumer = c->consumer,
                           .max = 1,
                           .now_us = c->now_us,
                           .lease_us = c->config->lease_us,
                           .max_attempts = c->config->max_attempts,
                           .kind = c->kind};
    return store_txn_job_claim(txn, &claim, c->arena, &c->jobs, &c->n, err);
}

typedef struct {
    const store_job_t *job;
    const char *consumer;
    status_t outcome; /* the handler's */
    const char *error;
    repo_job_next_t next;
    int64_t retry_at_us, max_attempts;
    bool dead;
} job_settle_t;

static status_t settle_job_txn(store_txn_t *txn, void *arg, err_t *err)
{
    job_settle_t *s = arg;
    if (s->outcome) {
        store_failure_t failure = {.consumer = s->consumer,
                                   .error = s->error,
                                   .retry_at_us = s->retry_at_us,
                                   .max_attempts = s->max_attempts};
        return store_txn_job_fail(txn, s->job, &failure, &s->dead, err);
    }
    if (s->next.next_payload)
        return store_txn_job_continue(txn, s->job, s->consumer, s->next.next_run_us,
                                      s->next.next_payload, err);
    return store_txn_job_complete(txn, s->job, s->consumer, s->next.next_run_us, err);
}

/* Claims and runs one due job of handler h. *out_ran: whether there was one. */
static status_t run_one_job(store_t *store, const repo_worker_config_t *config,
                            const char *consumer, const job_handler_t *h, bool *out_ran, err_t *err)
{
    arena_t arena;
    arena_init(&arena);
    job_claim_t claim = {.config = config,
                         .consumer = consumer,
                         .kind = h->kind,
                         .arena = &arena,
                         .now_us = clock_now_us()};
    status_t rc = store_run(store, claim_job_txn, &claim, err);
    *out_ran = !rc && claim.n > 0;
    if (!*out_ran) {
        arena_release(&arena);
        return rc;
    }
    const store_job_t *job = &claim.jobs[0];
    job_settle_t settle = {.job = job, .consumer = consumer, .max_attempts = config->max_attempts};
    err_t run_err = ERR_INIT;
    settle.outcome = h->fn(store, job, claim.now_us, &arena, &settle.next, h->arg, &run_err);
    if (settle.outcome) {
        settle.error = arena_strdup(&arena, err_message(&run_err));
        settle.retry_at_us = clock_now_us() + backoff_us(job->attempts);
        atomic_fetch_add(&worker.jobs_failed, 1);
    } else {
        atomic_fetch_add(&worker.jobs_run, 1);
    }
    err_t settle_err = ERR_INIT;
    status_t src = store_run(store, settle_job_txn, &settle, &settle_err);
    if (settle.outcome)
        log_warning("job %s %s (attempt %lld) failed%s: %s", job->kind, job->key,
                    (long long)job->attempts, settle.dead ? " and is dead" : ", will retry",
                    settle.error);
    if (src == ERR_CONFLICT)
        log_warning("job %s %s ran longer than its lease; another worker may have run it again",
                    job->kind, job->key);
    else if (src) {
        err_move(err, &settle_err);
        rc = src;
    }
    err_release(&settle_err);
    err_release(&run_err);
    arena_release(&arena);
    return rc;
}

/* Runs up to `rounds` due jobs of each kind with a handler (kind NULL) or of one kind, the
 * worker thread's (stoppable) until it is told to stop. *out_runs: how many. */
static status_t run_jobs(store_t *store, const repo_worker_config_t *config, const char *consumer,
                         const char *kind, size_t rounds, bool stoppable, size_t *out_runs,
                         err_t *err)
{
    *out_runs = 0;
    for (size_t i = 0; i < worker.njobs; i++) {
        if (kind && strcmp(kind, worker.jobs[i].kind) != 0)
            continue;
        for (size_t r = 0; r < rounds && !(stoppable && atomic_load(&worker.stopping)); r++) {
            bool ran;
            status_t rc = run_one_job(store, config, consumer, &worker.jobs[i], &ran, err);
            if (rc)
                return rc;
            if (!ran)
                break;
            (*out_runs)++;
        }
    }
    return ERR_OK;
}

status_t repo_worker_drain(store_t *store, const char *kind, size_t *out_runs, err_t *err)
{
    repo_worker_config_t config;
    repo_worker_config_init(&config);
    char name[300];
    default_name(name, sizeof(name));
    size_t total = 0;
    for (;;) {
        size_t runs;
        status_t rc = run_jobs(store, &config, name, kind, SIZE_MAX, false, &runs, err);
        total += runs;
        if (rc) {
            if (out_runs)
                *out_runs = total;
            return rc;
        }
        if (runs == 0)
            break;
    }
    if (out_runs)
        *out_runs = total;
    return ERR_OK;
}

/* ---- events ------------------------------------------------------------------------------ */

typedef struct {
    const repo_worker_config_t *config;
    const char *consumer;
    arena_t *arena;
    store_event_t *events;
    size_t n;
    status_t *outcomes;       /* per event: the first failing handler's status, or ERR_OK */
    const char **errors;      /* and its message */
    size_t acked, lost, dead; /* settled: acknowledged, lease lost, gone dead */
} event_batch_t;

static status_t claim_events_txn(store_txn_t *txn, void *arg, err_t *err)
{
    event_batch_t *b = arg;
    store_claim_t claim = {.consumer = b->consumer,
                           .max = b->config->batch,
                           .now_us = clock_now_us(),
                           .lease_us = b->config->lease_us,
                           .max_attempts = b->config->max_attempts};
    return store_txn_outbox_claim(txn, &claim, b->arena, &b->events, &b->n, err);
}

static status_t settle_events_txn(store_txn_t *txn, void *arg, err_t *err)
{
    event_batch_t *b = arg;
    b->acked = b->lost = b->dead = 0;
    int64_t now = clock_now_us();
    for (size_t i = 0; i < b->n; i++) {
        const store_event_t *e = &b->events[i];
        status_t rc;
        bool dead = false;
        if (b->outcomes[i] == ERR_OK) {
            rc = store_txn_outbox_ack(txn, e->event_id, b->consumer, err);
        } else {
            store_failure_t failure = {.consumer = b->consumer,
                                       .error = b->errors[i],
                                       .retry_at_us = now + backoff_us(e->attempts),
                                       .max_attempts = b->config->max_attempts};
            rc = store_txn_outbox_fail(txn, e->event_id, &failure, &dead, err);
        }
        if (rc == ERR_CONFLICT) {
            /* the lease ran out and another worker has the event now: it settles it */
            err_reset(err);
            b->outcomes[i] = ERR_CONFLICT;
            b->lost++;
            continue;
        }
        if (rc)
            return rc;
        if (b->outcomes[i] == ERR_OK)
            b->acked++;
        b->dead += dead;
    }
    return ERR_OK;
}

/* Claims a batch of events, hands each to its handlers and settles the batch. *out_n: events
 * claimed. */
static status_t run_events(store_t *store, const repo_worker_config_t *config, const char *consumer,
                           size_t *out_n, err_t *err)
{
    arena_t arena;
    arena_init(&arena);
    event_batch_t b = {.config = config, .consumer = consumer, .arena = &arena};
    status_t rc = store_run(store, claim_events_txn, &b, err);
    *out_n = rc ? 0 : b.n;
    if (rc || b.n == 0) {
        arena_release(&arena);
        return rc;
    }
    b.outcomes = arena_zalloc(&arena, b.n * sizeof(*b.outcomes));
    b.errors = arena_zalloc(&arena, b.n * sizeof(*b.errors));
    for (size_t i = 0; i < b.n; i++) {
        const store_event_t *e = &b.events[i];
        /* stopping: what is left is settled as it is (the claims run out, others take them) */
        if (i % STOP_CHECK_EACH == 0 && i && atomic_load(&worker.stopping)) {
            b.n = i;
            break;
        }
        for (size_t h = 0; h < worker.nevents && !b.outcomes[i]; h++) {
            const event_handler_t *handler = &worker.events[h];
            if (handler->type && strcmp(handler->type, e->type) != 0)
                continue;
            err_t herr = ERR_INIT;
            status_t hrc = handler->fn(store, e, handler->arg, &herr);
            if (hrc) {
                b.outcomes[i] = hrc;
                b.errors[i] = arena_strdup(&arena, err_message(&herr));
            }
            err_release(&herr);
        }
    }
    rc = store_run(store, settle_events_txn, &b, err);
    if (!rc) {
        for (size_t i = 0; i < b.n; i++) {
            const store_event_t *e = &b.events[i];
            if (b.outcomes[i] == ERR_OK)
                log_debug("outbox event %lld (%s %s/%s/_history/%lld) handled by %s",
                          (long long)e->event_id, store_event_action_name(e->action), e->type,
                          e->id, (long long)e->version, consumer);
            else if (b.outcomes[i] != ERR_CONFLICT)
                log_warning("outbox event %lld (%s %s/%s/_history/%lld, attempt %lld) failed: %s",
                            (long long)e->event_id, store_event_action_name(e->action), e->type,
                            e->id, (long long)e->version, (long long)e->attempts, b.errors[i]);
        }
        atomic_fetch_add(&worker.events_handled, (long long)b.acked);
        atomic_fetch_add(&worker.events_failed, (long long)(b.n - b.acked - b.lost));
        if (b.lost)
            log_warning("%zu outbox events were handled after their lease ran out; another "
                        "worker handles them again",
                        b.lost);
        if (b.dead)
            log_error("%zu outbox events failed %lld times and are dead", b.dead,
                      (long long)config->max_attempts);
    }
    arena_release(&arena);
    return rc;
}

/* ---- the thread -------------------------------------------------------------------------- */

/* Sleeps up to us, or until the worker is told to stop or woken (repo_worker_wake). */
static void pause_for(int64_t us)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    int64_t ns = until.tv_nsec + (us % 1000000) * 1000;
    until.tv_sec += us / 1000000 + ns / 1000000000;
    until.tv_nsec = ns % 1000000000;
    pthread_mutex_lock(&worker.lock);
    if (!atomic_load(&worker.stopping) && !worker.woken)
        pthread_cond_timedwait(&worker.cond, &worker.lock, &until);
    worker.woken = false;
    pthread_mutex_unlock(&worker.lock);
}

void repo_worker_wake(void)
{
    pthread_mutex_lock(&worker.lock);
    worker.woken = true;
    pthread_cond_broadcast(&worker.cond);
    pthread_mutex_unlock(&worker.lock);
}

static void *worker_main(void *arg)
{
    (void)arg;
    store_t *store = worker.store;
    const repo_worker_config_t *config = &worker.config;
    int64_t next_refresh = 0;
    bool failing = false;
    store_conn_t *conn = NULL;
    while (!atomic_load(&worker.stopping)) {
        err_t err = ERR_INIT;
        status_t rc = ERR_OK;
        if (!conn)
            rc = store_connect(store, &conn, &err);
        if (!rc && clock_mono_us() >= next_refresh) {
            rc = repo_params_refresh(conn, NULL, &err);
            next_refresh = clock_mono_us() + REFRESH_US;
        }
        size_t runs = 0, events = 0;
        if (!rc)
            rc = run_jobs(store, config, worker.name, NULL, JOB_ROUNDS, true, &runs, &err);
        if (!rc)
            rc = run_events(store, config, worker.name, &events, &err);
        if (rc) {
            if (!failing)
                log_warning("the work queues are not reachable: %s (trying again)",
                            err_message(&err));
            failing = true;
            err_release(&err);
            pause_for(ERROR_PAUSE_US);
            continue;
        }
        if (failing)
            log_info("the work queues are reachable again");
        failing = false;
        err_release(&err);
        if (runs == 0 && events < config->batch)
            pause_for(config->poll_us);
    }
    if (conn)
        store_disconnect(conn);
    return NULL;
}

status_t repo_worker_start(store_t *store, const repo_worker_config_t *config, err_t *err)
{
    if (worker.running)
        return err_set(err, ERR_INTERNAL, NULL, "the worker is running already");
    worker.store = store;
    worker.config = *config;
    if (config->name)
        snprintf(worker.name, sizeof(worker.name), "%s", config->name);
    else
        default_name(worker.name, sizeof(worker.name));
    worker.config.name = worker.name;
    atomic_store(&worker.stopping, false);
    if (pthread_create(&worker.thread, NULL, worker_main, NULL) != 0)
        return err_set(err, ERR_INTERNAL, NULL, "could not start the worker thread");
    worker.running = true;
    log_info("worker %s: %zu event handlers, %zu job kinds, leases of %lld s", worker.name,
             worker.nevents, worker.njobs, (long long)(config->lease_us / 1000000));
    return ERR_OK;
}

void repo_worker_stop(void)
{
    if (!worker.running)
        return;
    pthread_mutex_lock(&worker.lock);
    atomic_store(&worker.stopping, true);
    pthread_cond_broadcast(&worker.cond);
    pthread_mutex_unlock(&worker.lock);
    pthread_join(worker.thread, NULL);
    worker.running = false;
}
