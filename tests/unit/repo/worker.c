/*
 * Tests for the work queue runner: change events reach the handlers of their type once and
 * are acknowledged, a failing handler's event comes back after its back-off, and jobs run in
 * parts and drain. (Several workers sharing one database: tests/integration/test_processes.py.)
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

#include "base/clock.h"
#include "repo/worker.h"
#include "store/store.h"
#include "../store/drivers.h"

#define MAX_EVENTS 4096

static store_t *store;

/* what the handlers saw, by event id */
static struct {
    pthread_mutex_t lock;
    int patient[MAX_EVENTS]; /* calls of the Patient handler */
    int any[MAX_EVENTS];     /* calls of the handler of every type */
    int fail_once_attempts;  /* attempts at the event of Patient/fail-once */
    int parts;               /* runs of the "part" job */
} seen = {.lock = PTHREAD_MUTEX_INITIALIZER};

static status_t on_patient(store_t *s, const store_event_t *event, void *arg, err_t *err)
{
    (void)s;
    (void)arg;
    assert_string_equal(event->type, "Patient");
    assert_true(event->event_id < MAX_EVENTS);
    pthread_mutex_lock(&seen.lock);
    bool fail = false;
    if (strcmp(event->id, "fail-once") == 0) {
        seen.fail_once_attempts++;
        fail = event->attempts == 1;
    }
    if (!fail)
        seen.patient[event->event_id]++;
    pthread_mutex_unlock(&seen.lock);
    return fail ? err_set(err, ERR_INTERNAL, NULL, "failing the first attempt") : ERR_OK;
}

static status_t on_any(store_t *s, const store_event_t *event, void *arg, err_t *err)
{
    (void)s;
    (void)arg;
    (void)err;
    assert_true(event->event_id < MAX_EVENTS);
    pthread_mutex_lock(&seen.lock);
    seen.any[event->event_id]++;
    pthread_mutex_unlock(&seen.lock);
    return ERR_OK;
}

/* A job done in four parts: the payload counts them. */
static status_t on_part(store_t *s, const store_job_t *job, int64_t now_us, arena_t *arena,
                        repo_job_next_t *next, void *arg, err_t *err)
{
    (void)s;
    (void)arg;
    (void)err;
    int part = job->payload ? atoi(job->payload) : 0;
    seen.parts++;
    if (part < 3) {
        next->next_run_us = now_us;
        next->next_payload = arena_printf(arena, "%d", part + 1);
    }
    return ERR_OK;
}

static int setup(void **state)
{
    test_db_setup(state);
    test_store_open(&store, NULL);
    pthread_mutex_lock(&seen.lock);
    memset(seen.patient, 0, sizeof(seen.patient));
    memset(seen.any, 0, sizeof(seen.any));
    seen.fail_once_attempts = seen.parts = 0;
    pthread_mutex_unlock(&seen.lock);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    store_close(store);
    return test_db_teardown(state);
}

typedef struct {
    const char *type, *id;
} put_arg_t;

static status_t put_txn(store_txn_t *txn, void *arg, err_t *err)
{
    put_arg_t *a = arg;
    store_current_t current;
    status_t rc = store_txn_current(txn, a->type, a->id, &current, err);
    if (rc)
        return rc;
    char json[160];
    snprintf(json, sizeof(json), "{\"resourceType\":\"%s\",\"id\":\"%s\"}", a->type, a->id);
    store_put_t put = {.type = a->type,
                       .id = a->id,
                       .version = current.version + 1,
                       .method = current.version ? "PUT" : "POST",
                       .status = current.version ? 200 : 201,
                       .json = json,
                       .json_len = strlen(json)};
    return store_txn_put(txn, &put, NULL, err);
}

static void put(const char *type, const char *id)
{
    put_arg_t a = {type, id};
    err_t err = ERR_INIT;
    assert_int_equal(store_run(store, put_txn, &a, &err), ERR_OK);
    err_release(&err);
}

static int64_t pending(void)
{
    store_conn_t *conn;
    err_t err = ERR_INIT;
    assert_int_equal(store_connect(store, &conn, &err), ERR_OK);
    int64_t n = -1, dead = -1;
    assert_int_equal(store_outbox_counts(conn, &n, &dead, &err), ERR_OK);
    assert_int_equal(dead, 0);
    store_disconnect(conn);
    err_release(&err);
    return n;
}

/* Waits up to seconds for the outbox to empty; true when it did. */
static bool drained(int seconds)
{
    for (int i = 0; i < seconds * 50; i++) {
        if (pending() == 0)
            return true;
        usleep(20000);
    }
    return false;
}

static void start(const char *name)
{
    repo_worker_config_t config;
    repo_worker_config_init(&config);
    config.name = name;
    config.poll_us = 20000;
    config.batch = 7; /* several batches */
    err_t err = ERR_INIT;
    assert_int_equal(repo_worker_start(store, &config, &err), ERR_OK);
    err_release(&err);
}

static void test_events_reach_their_handlers_once(void **state)
{
    (void)state;
    repo_worker_stats_t before, after;
    repo_worker_stats(&before);
    char id[32];
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof(id), "p%d", i);
        put("Patient", id);
        if (i % 2 == 0)
            put("Observation", id);
    }
    put("Patient", "p0"); /* a second version: an event of its own */
    start(NULL);
    assert_true(drained(20));
    repo_worker_stop();
    int patient = 0, any = 0;
    for (int i = 0; i < MAX_EVENTS; i++) {
        assert_true(seen.patient[i] <= 1);
        assert_true(seen.any[i] <= 1);
        patient += seen.patient[i];
        any += seen.any[i];
    }
    assert_int_equal(patient, 41);
    assert_int_equal(any, 61);
    repo_worker_stats(&after);
    assert_int_equal(after.events_handled - before.events_handled, 61);
    assert_int_equal(after.events_failed, before.events_failed);
}

static void test_a_failed_event_comes_back(void **state)
{
    (void)state;
    put("Patient", "fail-once");
    start(NULL);
    assert_true(drained(20)); /* the retry comes after a second's back-off */
    repo_worker_stop();
    assert_int_equal(seen.fail_once_attempts, 2);
    int handled = 0;
    for (int i = 0; i < MAX_EVENTS; i++)
        handled += seen.patient[i];
    assert_int_equal(handled, 1);
}

static status_t schedule_txn(store_txn_t *txn, void *arg, err_t *err)
{
    (void)arg;
    return store_txn_job_schedule(txn, "part", "one", clock_now_us(), NULL, NULL, err);
}

static void test_a_job_runs_in_parts_and_drains(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    assert_int_equal(store_run(store, schedule_txn, NULL, &err), ERR_OK);
    size_t runs = 0;
    assert_int_equal(repo_worker_drain(store, "part", &runs, &err), ERR_OK);
    assert_int_equal(runs, 4);
    assert_int_equal(seen.parts, 4);
    /* done: nothing left to run */
    assert_int_equal(repo_worker_drain(store, NULL, &runs, &err), ERR_OK);
    assert_int_equal(runs, 0);
    err_release(&err);
}

int main(void)
{
    repo_worker_on_event("Patient", on_patient, NULL);
    repo_worker_on_event(NULL, on_any, NULL);
    repo_worker_on_job("part", on_part, NULL);
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_events_reach_their_handlers_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_event_comes_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_job_runs_in_parts_and_drains, setup, teardown),
    };
    return test_run_on_drivers("repo/worker", both, TEST_COUNT(both), NULL, 0, NULL, 0);
}
