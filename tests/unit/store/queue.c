/*
 * Tests for the work queues of the store: the outbox (one event per version, in the version's
 * transaction), jobs and singleton leases, with time given by the test so that leases run out
 * and a week of a recurring job passes in a moment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "drivers.h"

#define SECOND 1000000LL
#define MINUTE (60 * SECOND)
#define DAY    (24 * 60 * MINUTE)
#define T0     (1800000000LL * SECOND)

static store_t *store;

static int setup(void **state)
{
    test_db_setup(state);
    test_store_open(&store, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    store_close(store);
    return test_db_teardown(state);
}

/* ---- writing versions ------------------------------------------------------------------- */

typedef struct {
    const char *type, *id, *json; /* json NULL: a delete */
    bool fail;                    /* fail after writing */
} put_arg_t;

static status_t put_txn(store_txn_t *txn, void *arg, err_t *err)
{
    put_arg_t *a = arg;
    store_current_t current;
    status_t rc = store_txn_current(txn, a->type, a->id, &current, err);
    if (rc)
        return rc;
    store_put_t put = {.type = a->type,
                       .id = a->id,
                       .version = current.version + 1,
                       .method = a->json ? (current.version ? "PUT" : "POST") : "DELETE",
                       .status = a->json ? (current.version ? 200 : 201) : 204,
                       .json = a->json,
                       .json_len = a->json ? strlen(a->json) : 0};
    if ((rc = store_txn_put(txn, &put, NULL, err)))
        return rc;
    if (a->fail)
        return err_set(err, ERR_RULE, NULL, "failing on purpose");
    return ERR_OK;
}

static status_t put(const char *type, const char *id, const char *json, bool fail)
{
    put_arg_t a = {type, id, json, fail};
    err_t err = ERR_INIT;
    status_t rc = store_run(store, put_txn, &a, &err);
    err_release(&err);
    return rc;
}

/* ---- outbox operations, each in a transaction of its own --------------------------------- */

typedef struct {
    store_claim_t claim;
    arena_t *arena;
    store_event_t *events;
    size_t n;
} claim_arg_t;

static status_t claim_txn(store_txn_t *txn, void *arg, err_t *err)
{
    claim_arg_t *a = arg;
    return store_txn_outbox_claim(txn, &a->claim, a->arena, &a->events, &a->n, err);
}

/* Claims up to max events for consumer at now with a lease of lease_us; *out_events. */
static size_t claim(const char *consumer, size_t max, int64_t now, int64_t lease_us,
                    int64_t max_attempts, arena_t *arena, store_event_t **out_events)
{
    claim_arg_t a = {.claim = {.consumer = consumer,
                               .max = max,
                               .now_us = now,
                               .lease_us = lease_us,
                               .max_attempts = max_attempts},
                     .arena = arena};
    err_t err = ERR_INIT;
    assert_int_equal(store_run(store, claim_txn, &a, &err), ERR_OK);
    err_release(&err);
    if (out_events)
        *out_events = a.events;
    return a.n;
}

typedef struct {
    int64_t id;
    const char *consumer;
    store_failure_t failure;
    int64_t now;
    bool dead;
} event_op_t;

static status_t ack_txn(store_txn_t *txn, void *arg, err_t *err)
{
    event_op_t *a = arg;
    return store_txn_outbox_ack(txn, a->id, a->consumer, err);
}

static status_t fail_txn(store_txn_t *txn, void *arg, err_t *err)
{
    event_op_t *a = arg;
    return store_txn_outbox_fail(txn, a->id, &a->failure, &a->dead, err);
}

static status_t replay_txn(store_txn_t *txn, void *arg, err_t *err)
{
    event_op_t *a = arg;
    return store_txn_outbox_replay(txn, a->id, a->now, err);
}

static status_t run(store_txn_fn fn, void *arg)
{
    err_t err = ERR_INIT;
    status_t rc = store_run(store, fn, arg, &err);
    err_release(&err);
    return rc;
}

static status_t ack(int64_t id, const char *consumer)
{
    event_op_t a = {.id = id, .consumer = consumer};
    return run(ack_txn, &a);
}

/* Fails event id held by consumer; returns whether it went dead (asserting success). */
static bool fail_event(int64_t id, const char *consumer, const char *error, int64_t retry_at,
                       int64_t max_attempts)
{
    event_op_t a = {.id = id,
                    .failure = {.consumer = consumer,
                                .error = error,
                                .retry_at_us = retry_at,
                                .max_attempts = max_attempts}};
    assert_int_equal(run(fail_txn, &a), ERR_OK);
    return a.dead;
}

static void counts(int64_t expect_pending, int64_t expect_dead)
{
    store_conn_t *conn;
    err_t err = ERR_INIT;
    assert_int_equal(store_connect(store, &conn, &err), ERR_OK);
    int64_t pending = -1, dead = -1;
    assert_int_equal(store_outbox_counts(conn, &pending, &dead, &err), ERR_OK);
    assert_int_equal(pending, expect_pending);
    assert_int_equal(dead, expect_dead);
    store_disconnect(conn);
    err_release(&err);
}

/* ---- outbox ---------------------------------------------------------------------------- */

typedef struct {
    put_arg_t outer, inner;
    status_t inner_rc;
} nested_arg_t;

static status_t nested_txn(store_txn_t *txn, void *arg, err_t *err)
{
    nested_arg_t *a = arg;
    status_t rc = put_txn(txn, &a->outer, err);
    if (rc)
        return rc;
    err_t inner_err = ERR_INIT;
    a->inner_rc = store_txn_nested(txn, put_txn, &a->inner, &inner_err);
    err_release(&inner_err);
    return ERR_OK;
}

static void test_every_version_has_an_event(void **state)
{
    (void)state;
    assert_int_equal(put("Patient", "p1", "{\"v\":1}", false), ERR_OK);
    assert_int_equal(put("Patient", "p1", "{\"v\":2}", false), ERR_OK);
    assert_int_equal(put("Observation", "o1", "{}", false), ERR_OK);
    assert_int_equal(put("Patient", "p1", NULL, false), ERR_OK);
    /* rolled back: no version, no event */
    assert_int_equal(put("Patient", "gone", "{}", true), ERR_RULE);
    /* a nested part that fails takes its event with it; the rest of the transaction stays */
    nested_arg_t nested = {.outer = {"Encounter", "e1", "{}", false},
                           .inner = {"Encounter", "e2", "{}", true}};
    assert_int_equal(run(nested_txn, &nested), ERR_OK);
    assert_int_equal(nested.inner_rc, ERR_RULE);
    counts(5, 0);

    arena_t arena;
    arena_init(&arena);
    store_event_t *events;
    size_t n = claim("w1", 100, T0, MINUTE, 5, &arena, &events);
    assert_int_equal(n, 5);
    static const struct {
        const char *type, *id;
        int64_t version;
        store_event_action_t action;
    } expect[] = {
        {"Patient", "p1", 1, STORE_EVENT_CREATE},     {"Patient", "p1", 2, STORE_EVENT_UPDATE},
        {"Observation", "o1", 1, STORE_EVENT_CREATE}, {"Patient", "p1", 3, STORE_EVENT_DELETE},
        {"Encounter", "e1", 1, STORE_EVENT_CREATE},
    };
    store_conn_t *conn;
    err_t err = ERR_INIT;
    assert_int_equal(store_connect(store, &conn, &err), ERR_OK);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(events[i].type, expect[i].type);
        assert_string_equal(events[i].id, expect[i].id);
        assert_int_equal(events[i].version, expect[i].version);
        assert_int_equal(events[i].action, expect[i].action);
        assert_int_equal(events[i].attempts, 1);
        assert_string_equal(events[i].claimed_by, "w1");
        assert_int_equal(events[i].claim_until_us, T0 + MINUTE);
        assert_false(events[i].dead);
        if (i)
            assert_true(events[i].event_id > events[i - 1].event_id);
        /* the event names its version: same seq and time */
        store_version_t v;
        assert_int_equal(
            store_read(conn, events[i].type, events[i].id, events[i].version, &arena, &v, &err),
            ERR_OK);
        assert_int_equal(v.seq, events[i].seq);
        assert_int_equal(v.updated_us, events[i].time_us);
    }
    assert_string_equal(store_event_action_name(STORE_EVENT_DELETE), "delete");
    store_disconnect(conn);
    err_release(&err);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ack(events[i].event_id, "w1"), ERR_OK);
    counts(0, 0);

    /* ids are never reused, even once the table is empty */
    int64_t last = events[n - 1].event_id;
    assert_int_equal(put("Patient", "p2", "{}", false), ERR_OK);
    n = claim("w1", 10, T0, MINUTE, 5, &arena, &events);
    assert_int_equal(n, 1);
    assert_true(events[0].event_id > last);
    arena_release(&arena);
}

static void test_claim_ack_fail_dead_replay(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof(id), "t%d", i);
        assert_int_equal(put("Task", id, "{}", false), ERR_OK);
    }
    arena_t arena;
    arena_init(&arena);
    store_event_t *a, *b;
    assert_int_equal(claim("a", 2, T0, 30 * SECOND, 2, &arena, &a), 2);
    assert_int_equal(claim("b", 10, T0, 30 * SECOND, 2, &arena, &b), 1);
    assert_true(b[0].event_id > a[1].event_id);
    assert_int_equal(claim("c", 10, T0, 30 * SECOND, 2, &arena, NULL), 0);

    /* acknowledged: gone; only the holder may answer */
    assert_int_equal(ack(a[0].event_id, "a"), ERR_OK);
    assert_int_equal(ack(a[0].event_id, "a"), ERR_CONFLICT);
    assert_int_equal(ack(b[0].event_id, "a"), ERR_CONFLICT);
    counts(2, 0);

    /* failed: back after the back-off, then dead at the second attempt */
    int64_t failed = a[1].event_id;
    assert_false(fail_event(failed, "a", "the handler failed", T0 + 10 * SECOND, 2));
    event_op_t not_held = {.id = failed, .failure = {.consumer = "a", .max_attempts = 2}};
    assert_int_equal(run(fail_txn, &not_held), ERR_CONFLICT); /* answered already */
    assert_int_equal(ack(failed, "a"), ERR_CONFLICT);
    assert_int_equal(claim("c", 10, T0 + 5 * SECOND, 30 * SECOND, 2, &arena, NULL), 0);
    store_event_t *again;
    assert_int_equal(claim("c", 10, T0 + 10 * SECOND, 30 * SECOND, 2, &arena, &again), 1);
    assert_int_equal(again[0].event_id, failed);
    assert_int_equal(again[0].attempts, 2);
    assert_string_equal(again[0].last_error, "the handler failed");
    assert_true(fail_event(failed, "c", "failed again", T0 + 20 * SECOND, 2));
    assert_int_equal(claim("c", 10, T0 + DAY, 30 * SECOND, 2, &arena, NULL), 1); /* b's, expired */
    counts(1, 1);

    store_conn_t *conn;
    err_t err = ERR_INIT;
    assert_int_equal(store_connect(store, &conn, &err), ERR_OK);
    store_event_t *dead;
    size_t ndead;
    assert_int_equal(store_outbox_dead(conn, 0, 10, &arena, &dead, &ndead, &err), ERR_OK);
    assert_int_equal(ndead, 1);
    assert_int_equal(dead[0].event_id, failed);
    assert_true(dead[0].dead);
    assert_int_equal(dead[0].attempts, 2);
    assert_string_equal(dead[0].last_error, "failed again");
    assert_int_equal(store_outbox_dead(conn, failed, 10, &arena, &dead, &ndead, &err), ERR_OK);
    assert_int_equal(ndead, 0);

    /* replayed: available again with no attempts */
    event_op_t replay = {.id = failed, .now = T0 + DAY};
    assert_int_equal(run(replay_txn, &replay), ERR_OK);
    assert_int_equal(run(replay_txn, &replay), ERR_NOT_FOUND);
    counts(2, 0);
    assert_int_equal(claim("d", 10, T0 + DAY, 30 * SECOND, 2, &arena, &again), 1);
    assert_int_equal(again[0].event_id, failed);
    assert_int_equal(again[0].attempts, 1);
    assert_int_equal(ack(failed, "d"), ERR_OK);
    store_disconnect(conn);
    err_release(&err);
    arena_release(&arena);
}

static status_t replay_all_txn(store_txn_t *txn, void *arg, err_t *err)
{
    event_op_t *a = arg;
    int64_t n = -1;
    status_t rc = store_txn_outbox_replay_dead(txn, a->now, &n, err);
    a->id = n;
    return rc;
}

static store_outbox_stats_t stats(int64_t now)
{
    store_conn_t *conn;
    err_t err = ERR_INIT;
    assert_int_equal(store_connect(store, &conn, &err), ERR_OK);
    store_outbox_stats_t out;
    assert_int_equal(store_outbox_stats(conn, now, &out, &err), ERR_OK);
    store_disconnect(conn);
    err_release(&err);
    return out;
}

static void test_stats_and_replay_of_every_dead_event(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++) {
        char id[16];
        snprintf(id, sizeof(id), "t%d", i);
        assert_int_equal(put("Task", id, "{}", false), ERR_OK);
    }
    arena_t arena;
    arena_init(&arena);
    store_event_t *events;
    store_outbox_stats_t s = stats(T0);
    assert_int_equal(s.pending, 4);
    assert_int_equal(s.claimed, 0);
    assert_int_equal(s.dead, 0);
    assert_int_equal(claim("a", 3, T0, 10 * SECOND, 1, &arena, &events), 3);
    s = stats(T0 + SECOND);
    assert_int_equal(s.pending, 1);
    assert_int_equal(s.claimed, 3);
    /* a claim whose lease ran out is waiting again */
    s = stats(T0 + 10 * SECOND);
    assert_int_equal(s.pending, 4);
    assert_int_equal(s.claimed, 0);
    assert_true(fail_event(events[0].event_id, "a", "broken", T0 + SECOND, 1));
    assert_true(fail_event(events[1].event_id, "a", "broken", T0 + SECOND, 1));
    s = stats(T0 + SECOND);
    assert_int_equal(s.pending, 1);
    assert_int_equal(s.claimed, 1);
    assert_int_equal(s.dead, 2);

    event_op_t replay = {.now = T0 + MINUTE};
    assert_int_equal(run(replay_all_txn, &replay), ERR_OK);
    assert_int_equal(replay.id, 2);
    assert_int_equal(run(replay_all_txn, &replay), ERR_OK);
    assert_int_equal(replay.id, 0);
    s = stats(T0 + 2 * SECOND);
    assert_int_equal(s.dead, 0);
    assert_int_equal(s.claimed, 1);
    assert_int_equal(s.pending, 3);
    /* available at the replay's time, with the attempts reset */
    assert_int_equal(claim("b", 10, T0 + 30 * SECOND, 10 * SECOND, 1, &arena, &events), 1);
    assert_int_equal(claim("b", 10, T0 + MINUTE, 10 * SECOND, 1, &arena, &events), 2);
    assert_int_equal(events[0].attempts, 1);
    assert_string_equal(events[0].last_error, "broken");
    arena_release(&arena);
}

static void test_leases_run_out(void **state)
{
    (void)state;
    assert_int_equal(put("Task", "t", "{}", false), ERR_OK);
    arena_t arena;
    arena_init(&arena);
    store_event_t *events;
    assert_int_equal(claim("a", 10, T0, 10 * SECOND, 3, &arena, &events), 1);
    int64_t id = events[0].event_id;
    /* held while the lease holds */
    assert_int_equal(claim("b", 10, T0 + 9 * SECOND, 10 * SECOND, 3, &arena, NULL), 0);
    /* a's worker died: once the lease runs out b gets the event */
    assert_int_equal(claim("b", 10, T0 + 10 * SECOND, 10 * SECOND, 3, &arena, &events), 1);
    assert_int_equal(events[0].event_id, id);
    assert_int_equal(events[0].attempts, 2);
    assert_string_equal(events[0].claimed_by, "b");
    /* a comes back late: its answer is refused, b's counts */
    assert_int_equal(ack(id, "a"), ERR_CONFLICT);
    /* b dies too, and c: after the third claim ran out the event goes dead, not out again */
    assert_int_equal(claim("c", 10, T0 + 20 * SECOND, 10 * SECOND, 3, &arena, &events), 1);
    assert_int_equal(events[0].attempts, 3);
    assert_int_equal(claim("d", 10, T0 + 30 * SECOND, 10 * SECOND, 3, &arena, NULL), 0);
    counts(0, 1);
    store_conn_t *conn;
    err_t err = ERR_INIT;
    assert_int_equal(store_connect(store, &conn, &err), ERR_OK);
    size_t n;
    assert_int_equal(store_outbox_dead(conn, 0, 10, &arena, &events, &n, &err), ERR_OK);
    assert_int_equal(n, 1);
    assert_non_null(strstr(events[0].last_error, "the lease ran out"));
    store_disconnect(conn);
    err_release(&err);

    /* a claim that goes dead leaves room: the claim still fills up with live events */
    event_op_t replay = {.id = id, .now = T0};
    assert_int_equal(run(replay_txn, &replay), ERR_OK);
    assert_int_equal(claim("a", 1, T0, 10 * SECOND, 1, &arena, NULL), 1);
    assert_int_equal(put("Task", "t2", "{}", false), ERR_OK);
    assert_int_equal(claim("b", 1, T0 + 10 * SECOND, 10 * SECOND, 1, &arena, &events), 1);
    assert_true(events[0].event_id > id);
    counts(1, 1);
    arena_release(&arena);
}

/* ---- several workers claiming at once --------------------------------------------------- */

enum { EVENTS = 2000, WORKERS = 4 };

static int seen[EVENTS + 1];
static int64_t first_id;

typedef struct {
    char name[32];
    size_t handled;
} worker_t;

static status_t many_txn(store_txn_t *txn, void *arg, err_t *err)
{
    int *next = arg;
    for (int i = 0; i < 100; i++, (*next)++) {
        char id[16];
        snprintf(id, sizeof(id), "m%d", *next);
        store_put_t p = {.type = "Task",
                         .id = id,
                         .version = 1,
                         .method = "POST",
                         .status = 201,
                         .json = "{}",
                         .json_len = 2};
        status_t rc = store_txn_put(txn, &p, NULL, err);
        if (rc)
            return rc;
    }
    return ERR_OK;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    arena_t arena;
    arena_init(&arena);
    while (1) {
        store_event_t *events;
        size_t n = claim(w->name, 7, T0, DAY, 5, &arena, &events);
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            int64_t k = events[i].event_id - first_id + 1;
            assert_true(k >= 1 && k <= EVENTS);
            __atomic_add_fetch(&seen[k], 1, __ATOMIC_SEQ_CST);
            assert_int_equal(ack(events[i].event_id, w->name), ERR_OK);
        }
        w->handled += n;
        arena_release(&arena);
        arena_init(&arena);
    }
    arena_release(&arena);
    return NULL;
}

static void test_concurrent_claims_are_disjoint(void **state)
{
    (void)state;
    memset(seen, 0, sizeof(seen));
    int next = 0;
    for (int i = 0; i < EVENTS / 100; i++)
        assert_int_equal(run(many_txn, &next), ERR_OK);
    counts(EVENTS, 0);
    /* the first event's id */
    arena_t arena;
    arena_init(&arena);
    store_event_t *events;
    assert_int_equal(claim("probe", 1, T0, 0, 5, &arena, &events), 1);
    first_id = events[0].event_id;
    arena_release(&arena);

    pthread_t threads[WORKERS];
    worker_t workers[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        workers[i] = (worker_t){.handled = 0};
        snprintf(workers[i].name, sizeof(workers[i].name), "worker-%d", i);
        assert_int_equal(pthread_create(&threads[i], NULL, worker_main, &workers[i]), 0);
    }
    size_t total = 0;
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(threads[i], NULL);
        total += workers[i].handled;
    }
    assert_int_equal(total, EVENTS);
    for (int k = 1; k <= EVENTS; k++)
        assert_int_equal(seen[k], 1);
    counts(0, 0);
}

/* ---- jobs ------------------------------------------------------------------------------ */

typedef struct {
    const char *kind, *key, *payload;
    int64_t run_at;
    int64_t job_id;
} schedule_arg_t;

static status_t schedule_txn(store_txn_t *txn, void *arg, err_t *err)
{
    schedule_arg_t *a = arg;
    return store_txn_job_schedule(txn, a->kind, a->key, a->run_at, a->payload, &a->job_id, err);
}

static int64_t schedule(const char *kind, const char *key, int64_t run_at, const char *payload)
{
    schedule_arg_t a = {kind, key, payload, run_at, 0};
    assert_int_equal(run(schedule_txn, &a), ERR_OK);
    return a.job_id;
}

static status_t cancel_txn(store_txn_t *txn, void *arg, err_t *err)
{
    schedule_arg_t *a = arg;
    return store_txn_job_cancel(txn, a->kind, a->key, err);
}

typedef struct {
    store_claim_t claim;
    arena_t *arena;
    store_job_t *jobs;
    size_t n;
} job_claim_arg_t;

static status_t job_claim_txn(store_txn_t *txn, void *arg, err_t *err)
{
    job_claim_arg_t *a = arg;
    return store_txn_job_claim(txn, &a->claim, a->arena, &a->jobs, &a->n, err);
}

static size_t claim_jobs(const char *consumer, const char *kind, int64_t now, arena_t *arena,
                         store_job_t **out_jobs)
{
    job_claim_arg_t a = {.claim = {.consumer = consumer,
                                   .max = 10,
                                   .now_us = now,
                                   .lease_us = MINUTE,
                                   .max_attempts = 3,
                                   .kind = kind},
                         .arena = arena};
    assert_int_equal(run(job_claim_txn, &a), ERR_OK);
    if (out_jobs)
        *out_jobs = a.jobs;
    return a.n;
}

typedef struct {
    const store_job_t *job;
    const char *consumer;
    int64_t next;
    const char *payload; /* continue: the next run's */
    store_failure_t failure;
    bool dead;
} job_op_t;

static status_t complete_txn(store_txn_t *txn, void *arg, err_t *err)
{
    job_op_t *a = arg;
    return store_txn_job_complete(txn, a->job, a->consumer, a->next, err);
}

static status_t continue_txn(store_txn_t *txn, void *arg, err_t *err)
{
    job_op_t *a = arg;
    return store_txn_job_continue(txn, a->job, a->consumer, a->next, a->payload, err);
}

static status_t job_fail_txn(store_txn_t *txn, void *arg, err_t *err)
{
    job_op_t *a = arg;
    return store_txn_job_fail(txn, a->job, &a->failure, &a->dead, err);
}

static status_t job_replay_txn(store_txn_t *txn, void *arg, err_t *err)
{
    job_op_t *a = arg;
    return store_txn_job_replay(txn, a->job->job_id, a->next, err);
}

static status_t complete(const store_job_t *job, const char *consumer, int64_t next)
{
    job_op_t a = {.job = job, .consumer = consumer, .next = next};
    return run(complete_txn, &a);
}

static status_t continue_job(const store_job_t *job, const char *consumer, int64_t next,
                             const char *payload)
{
    job_op_t a = {.job = job, .consumer = consumer, .next = next, .payload = payload};
    return run(continue_txn, &a);
}

static size_t list_jobs(const char *kind, bool dead_only, arena_t *arena, store_job_t **out)
{
    store_conn_t *conn;
    err_t err = ERR_INIT;
    assert_int_equal(store_connect(store, &conn, &err), ERR_OK);
    store_job_query_t query = {.kind = kind, .dead_only = dead_only, .count = 100};
    size_t n = 0;
    assert_int_equal(store_job_list(conn, &query, arena, out, &n, &err), ERR_OK);
    store_disconnect(conn);
    err_release(&err);
    return n;
}

static void test_jobs_schedule_claim_complete(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    store_job_t *jobs;
    /* scheduling one kind and key twice updates it */
    int64_t id = schedule("reminder", "Appointment/a1", T0 + DAY, "{\"n\":1}");
    assert_int_equal(schedule("reminder", "Appointment/a1", T0 + 2 * DAY, "{\"n\":2}"), id);
    assert_true(schedule("reminder", "Appointment/a2", T0 + 3 * DAY, NULL) != id);
    assert_true(schedule("escalate", "Appointment/a1", T0 + DAY, NULL) != id);
    assert_int_equal(list_jobs("reminder", false, &arena, &jobs), 2);
    assert_int_equal(jobs[0].job_id, id);
    assert_int_equal(jobs[0].run_at_us, T0 + 2 * DAY);
    assert_string_equal(jobs[0].payload, "{\"n\":2}");
    assert_int_equal(jobs[0].revision, 2);
    assert_null(jobs[1].payload);
    assert_int_equal(list_jobs(NULL, false, &arena, &jobs), 3);

    /* due by time, earliest first, of a kind when asked */
    assert_int_equal(claim_jobs("w", NULL, T0, &arena, NULL), 0);
    assert_int_equal(claim_jobs("w", "reminder", T0 + DAY, &arena, NULL), 0);
    assert_int_equal(claim_jobs("w", NULL, T0 + 2 * DAY - 1, &arena, &jobs), 1);
    assert_string_equal(jobs[0].kind, "escalate");
    assert_int_equal(complete(&jobs[0], "w", 0), ERR_OK); /* one-off: gone */
    assert_int_equal(complete(&jobs[0], "w", 0), ERR_CONFLICT);
    assert_int_equal(claim_jobs("w", NULL, T0 + 4 * DAY, &arena, &jobs), 2);
    assert_int_equal(jobs[0].job_id, id);
    assert_int_equal(jobs[0].attempts, 1);
    assert_string_equal(jobs[1].key, "Appointment/a2");
    assert_int_equal(complete(&jobs[1], "someone else", 0), ERR_CONFLICT);

    /* scheduled again while it runs: the new schedule stands after the run completes */
    assert_int_equal(schedule("reminder", "Appointment/a1", T0 + 9 * DAY, "{\"n\":3}"), id);
    assert_int_equal(claim_jobs("x", NULL, T0 + 4 * DAY, &arena, NULL), 0); /* still claimed */
    assert_int_equal(complete(&jobs[0], "w", 0), ERR_OK);
    assert_int_equal(complete(&jobs[1], "w", 0), ERR_OK);
    assert_int_equal(list_jobs(NULL, false, &arena, &jobs), 1);
    assert_int_equal(jobs[0].run_at_us, T0 + 9 * DAY);
    assert_int_equal(jobs[0].attempts, 0);
    assert_int_equal(claim_jobs("w", NULL, T0 + 9 * DAY, &arena, &jobs), 1);
    assert_string_equal(jobs[0].payload, "{\"n\":3}");

    /* cancel */
    schedule_arg_t c = {.kind = "reminder", .key = "Appointment/a1"};
    assert_int_equal(run(cancel_txn, &c), ERR_OK);
    assert_int_equal(run(cancel_txn, &c), ERR_NOT_FOUND);
    assert_int_equal(list_jobs(NULL, false, &arena, &jobs), 0);
    arena_release(&arena);
}

/* A long job done in parts: each run continues with a payload saying where it got to, unless
 * a write scheduled the job again meanwhile, whose schedule (start over) then stands. */
static void test_job_continues_in_parts(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    store_job_t *jobs;
    int64_t id = schedule("reindex", "Observation", T0, NULL);
    assert_int_equal(claim_jobs("w", NULL, T0, &arena, &jobs), 1);
    assert_null(jobs[0].payload);
    assert_int_equal(continue_job(&jobs[0], "someone else", T0, "{\"after\":1}"), ERR_CONFLICT);
    assert_int_equal(continue_job(&jobs[0], "w", T0 + 1, "{\"after\":500}"), ERR_OK);
    assert_int_equal(continue_job(&jobs[0], "w", T0 + 1, "{\"after\":500}"), ERR_CONFLICT);

    /* the next part, possibly in another worker, starts where the last one stopped */
    assert_int_equal(claim_jobs("x", NULL, T0 + 1, &arena, &jobs), 1);
    assert_int_equal(jobs[0].job_id, id);
    assert_int_equal(jobs[0].attempts, 1);
    assert_string_equal(jobs[0].payload, "{\"after\":500}");

    /* scheduled again during this part: the continuation is dropped, the restart stands */
    assert_int_equal(schedule("reindex", "Observation", T0 + 2, NULL), id);
    assert_int_equal(continue_job(&jobs[0], "x", T0 + 1, "{\"after\":1000}"), ERR_OK);
    assert_int_equal(claim_jobs("w", NULL, T0 + 1, &arena, &jobs), 0);
    assert_int_equal(claim_jobs("w", NULL, T0 + 2, &arena, &jobs), 1);
    assert_null(jobs[0].payload);
    assert_int_equal(jobs[0].attempts, 1);

    /* a continuation without a payload keeps the one it has */
    assert_int_equal(continue_job(&jobs[0], "w", T0 + 3, "{\"after\":7}"), ERR_OK);
    assert_int_equal(claim_jobs("w", NULL, T0 + 3, &arena, &jobs), 1);
    assert_int_equal(continue_job(&jobs[0], "w", T0 + 4, NULL), ERR_OK);
    assert_int_equal(claim_jobs("w", NULL, T0 + 4, &arena, &jobs), 1);
    assert_string_equal(jobs[0].payload, "{\"after\":7}");
    assert_int_equal(complete(&jobs[0], "w", 0), ERR_OK);
    assert_int_equal(list_jobs(NULL, false, &arena, &jobs), 0);
    arena_release(&arena);
}

static void test_recurring_job_for_a_week(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    schedule("daily-digest", "all", T0 + DAY, NULL);
    int runs = 0;
    /* a worker waking every hour for a week */
    for (int64_t now = T0; now <= T0 + 7 * DAY; now += 60 * MINUTE) {
        store_job_t *jobs;
        size_t n = claim_jobs("w", NULL, now, &arena, &jobs);
        if (n) {
            assert_int_equal(n, 1);
            assert_int_equal(jobs[0].run_at_us, T0 + (runs + 1) * DAY);
            assert_int_equal(complete(&jobs[0], "w", jobs[0].run_at_us + DAY), ERR_OK);
            runs++;
        }
        arena_release(&arena);
        arena_init(&arena);
    }
    assert_int_equal(runs, 7);
    store_job_t *jobs;
    assert_int_equal(list_jobs(NULL, false, &arena, &jobs), 1);
    assert_int_equal(jobs[0].run_at_us, T0 + 8 * DAY);
    assert_int_equal(jobs[0].attempts, 0);
    arena_release(&arena);
}

static void test_job_back_off_and_dead(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    schedule("send", "m1", T0, "{}");
    int64_t now = T0, backoff = MINUTE;
    store_job_t *jobs;
    for (int attempt = 1; attempt <= 3; attempt++) {
        if (attempt > 1) /* not due before its back-off has passed */
            assert_int_equal(claim_jobs("w", NULL, now - 1, &arena, NULL), 0);
        assert_int_equal(claim_jobs("w", NULL, now, &arena, &jobs), 1);
        assert_int_equal(jobs[0].attempts, attempt);
        job_op_t f = {.job = &jobs[0],
                      .failure = {.consumer = "w",
                                  .error = "the peer did not answer",
                                  .retry_at_us = now + backoff,
                                  .max_attempts = 3}};
        assert_int_equal(run(job_fail_txn, &f), ERR_OK);
        assert_int_equal(f.dead, attempt == 3);
        now += backoff;
        backoff *= 2;
    }
    assert_int_equal(claim_jobs("w", NULL, now + DAY, &arena, NULL), 0);
    assert_int_equal(list_jobs(NULL, true, &arena, &jobs), 1);
    assert_int_equal(jobs[0].state, STORE_JOB_DEAD);
    assert_string_equal(jobs[0].last_error, "the peer did not answer");
    job_op_t replay = {.job = &jobs[0], .next = now + DAY};
    assert_int_equal(run(job_replay_txn, &replay), ERR_OK);
    assert_int_equal(run(job_replay_txn, &replay), ERR_NOT_FOUND);
    assert_int_equal(list_jobs(NULL, true, &arena, &jobs), 0);
    assert_int_equal(claim_jobs("w", NULL, now + DAY, &arena, &jobs), 1);
    assert_int_equal(jobs[0].attempts, 1);
    /* a claim that runs out unanswered counts as an attempt */
    assert_int_equal(claim_jobs("w", NULL, now + DAY + MINUTE, &arena, &jobs), 1);
    assert_int_equal(jobs[0].attempts, 2);
    assert_int_equal(claim_jobs("w", NULL, now + DAY + 2 * MINUTE, &arena, &jobs), 1);
    assert_int_equal(claim_jobs("w", NULL, now + DAY + 3 * MINUTE, &arena, NULL), 0);
    assert_int_equal(list_jobs(NULL, true, &arena, &jobs), 1);
    arena_release(&arena);
}

/* ---- singleton leases ------------------------------------------------------------------ */

static bool lease(int op, const char *holder, int64_t now)
{
    err_t err = ERR_INIT;
    bool held = false;
    status_t rc = ERR_OK;
    switch (op) {
    case 'a': rc = store_lease_acquire(store, "escalator", holder, MINUTE, now, &held, &err); break;
    case 'r': rc = store_lease_renew(store, "escalator", holder, MINUTE, now, &held, &err); break;
    case 'x': rc = store_lease_release(store, "escalator", holder, &err); break;
    }
    assert_int_equal(rc, ERR_OK);
    err_release(&err);
    return held;
}

static void test_singleton_leases(void **state)
{
    (void)state;
    assert_true(lease('a', "p1", T0));
    assert_false(lease('a', "p2", T0 + 1));
    assert_true(lease('a', "p1", T0 + 30 * SECOND)); /* its own: extended */
    assert_true(lease('r', "p1", T0 + 60 * SECOND)); /* until T0 + 2 minutes */
    assert_false(lease('a', "p2", T0 + 2 * MINUTE - 1));
    assert_false(lease('r', "p2", T0 + MINUTE)); /* cannot renew what it does not hold */
    /* p1 stalls: the lease runs out, p2 takes it, p1's renewal fails */
    assert_true(lease('a', "p2", T0 + 2 * MINUTE));
    assert_false(lease('r', "p1", T0 + 2 * MINUTE + 1));
    assert_false(lease('x', "p1", T0 + 2 * MINUTE + 2)); /* releasing what it lost: no-op */
    assert_false(lease('a', "p3", T0 + 2 * MINUTE + 3));
    lease('x', "p2", T0 + 2 * MINUTE + 4);
    assert_true(lease('a', "p3", T0 + 2 * MINUTE + 5));
    /* a renewal after the lease ran out fails even when nobody took it */
    assert_false(lease('r', "p3", T0 + 4 * MINUTE));
    /* other names are other leases */
    err_t err = ERR_INIT;
    bool held = false;
    assert_int_equal(store_lease_acquire(store, "other", "p1", MINUTE, T0, &held, &err), ERR_OK);
    assert_true(held);
    err_release(&err);
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_every_version_has_an_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_ack_fail_dead_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leases_run_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_and_replay_of_every_dead_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_claims_are_disjoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobs_schedule_claim_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_continues_in_parts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recurring_job_for_a_week, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_back_off_and_dead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_singleton_leases, setup, teardown),
    };
    return test_run_on_drivers("store/queue", both, TEST_COUNT(both), NULL, 0, NULL, 0);
}
