/*
 * txn_search.c - tests of store_txn_search: a search on the writer inside a transaction sees
 * what the transaction wrote before it (and what transactions committed together with it
 * wrote), is atomic with what it writes next, and is refused outside a transaction. The
 * conditional-create pattern (search, then create when nothing matches) run from many threads
 * at once creates one resource.
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

#include "base/jv.h"
#include "fhir/index.h"
#include "fhir/search.h"
#include "drivers.h"
#include "store/store.h"

static char path[512];
static store_t *store;
static store_conn_t *conn;

static int setup(void **state)
{
    test_db_setup(state);
    snprintf(path, sizeof(path), "%s", test_location);
    err_t err = ERR_INIT;
    assert_int_equal(store_open(path, NULL, &store, &err), ERR_OK);
    assert_int_equal(store_connect(store, &conn, &err), ERR_OK);
    err_release(&err);
    return 0;
}

static int teardown(void **state)
{
    store_disconnect(conn);
    store_close(store);
    return test_db_teardown(state);
}

/* A plan for Patient?identifier=VALUE (system http://mrn). */
static fhir_search_plan_t *mrn_plan(const char *value, arena_t *arena)
{
    const char *text = arena_printf(arena, "http://mrn|%s", value);
    fhir_search_pair_t pair = {"identifier", 10, text, strlen(text)};
    fhir_search_query_t q = {.pairs = &pair, .npairs = 1, .strict = true};
    fhir_search_plan_t *plan;
    err_t err = ERR_INIT;
    assert_int_equal(
        fhir_search_parse(NULL, fhir_resource_type_find("Patient", 7), &q, arena, &plan, &err),
        ERR_OK);
    err_release(&err);
    plan->count = 10;
    return plan;
}

/* Puts Patient/id with identifier http://mrn|value inside txn. */
static status_t put_patient(store_txn_t *txn, const char *id, const char *value, arena_t *arena,
                            err_t *err)
{
    const char *json = arena_printf(arena,
                                    "{\"resourceType\":\"Patient\",\"id\":\"%s\",\"identifier\":"
                                    "[{\"system\":\"http://mrn\",\"value\":\"%s\"}]}",
                                    id, value);
    json_t *resource = jv_parse(json, strlen(json), err);
    assert_non_null(resource);
    fhir_index_rows_t rows;
    assert_int_equal(fhir_index_extract(NULL, resource, arena, &rows, err), ERR_OK);
    json_decref(resource);
    store_current_t current;
    status_t rc = store_txn_current(txn, "Patient", id, &current, err);
    if (rc)
        return rc;
    store_put_t put = {.type = "Patient",
                       .id = id,
                       .version = current.version + 1,
                       .method = "PUT",
                       .status = current.version ? 200 : 201,
                       .json = json,
                       .json_len = strlen(json),
                       .index = &rows};
    return store_txn_put(txn, &put, NULL, err);
}

/* ---- a transaction sees its own writes ----------------------------------------------- */

typedef struct {
    size_t before, after; /* matches before and after the put */
    const char *id;       /* the id of the match after */
} own_t;

static status_t own_writes_txn(store_txn_t *txn, void *arg, err_t *err)
{
    own_t *o = arg;
    arena_t arena;
    arena_init(&arena);
    fhir_search_plan_t *plan = mrn_plan("own", &arena);
    store_search_t query = {.plan = plan};
    store_search_result_t res;
    status_t rc = store_txn_search(txn, &query, &arena, &res, err);
    if (!rc) {
        o->before = res.nmatch;
        rc = put_patient(txn, "own1", "own", &arena, err);
    }
    if (!rc)
        rc = store_txn_search(txn, &query, &arena, &res, err);
    if (!rc) {
        o->after = res.nmatch;
        o->id = res.nmatch ? strdup(res.entries[0].version.id) : NULL;
        assert_int_equal(res.entries[0].version.version, 1);
        assert_non_null(res.entries[0].version.json);
        assert_false(res.entries[0].included);
    }
    arena_release(&arena);
    return rc;
}

static void test_sees_its_own_writes(void **state)
{
    (void)state;
    own_t o = {0};
    err_t err = ERR_INIT;
    assert_int_equal(store_run(store, own_writes_txn, &o, &err), ERR_OK);
    assert_int_equal(o.before, 0);
    assert_int_equal(o.after, 1);
    assert_string_equal(o.id, "own1");
    free((char *)o.id);
    /* and a reader sees it once committed */
    arena_t arena;
    arena_init(&arena);
    store_search_t query = {.plan = mrn_plan("own", &arena)};
    store_search_result_t res;
    assert_int_equal(store_search(conn, &query, &arena, &res, &err), ERR_OK);
    assert_int_equal(res.nmatch, 1);
    arena_release(&arena);
    err_release(&err);
}

/* ---- a rolled-back write is not seen ------------------------------------------------- */

static status_t failing_txn(store_txn_t *txn, void *arg, err_t *err)
{
    (void)arg;
    arena_t arena;
    arena_init(&arena);
    status_t rc = put_patient(txn, "gone1", "gone", &arena, err);
    arena_release(&arena);
    if (rc)
        return rc;
    return err_set(err, ERR_CONFLICT, NULL, "fails on purpose");
}

static status_t count_txn(store_txn_t *txn, void *arg, err_t *err)
{
    size_t *n = arg;
    arena_t arena;
    arena_init(&arena);
    store_search_t query = {.plan = mrn_plan("gone", &arena)};
    store_search_result_t res;
    status_t rc = store_txn_search(txn, &query, &arena, &res, err);
    if (!rc)
        *n = res.nmatch;
    arena_release(&arena);
    return rc;
}

static void test_rolled_back_writes_are_not_seen(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    assert_int_equal(store_run(store, failing_txn, NULL, &err), ERR_CONFLICT);
    err_reset(&err);
    size_t n = 99;
    assert_int_equal(store_run(store, count_txn, &n, &err), ERR_OK);
    assert_int_equal(n, 0);
    err_release(&err);
}

/* ---- the conditional-create pattern from many threads -------------------------------- */

#define THREADS 8
#define ROUNDS  20

typedef struct {
    int created; /* this transaction created the resource */
    int thread, round;
} cond_t;

static status_t cond_create_txn(store_txn_t *txn, void *arg, err_t *err)
{
    cond_t *c = arg;
    arena_t arena;
    arena_init(&arena);
    store_search_t query = {.plan = mrn_plan("race", &arena)};
    store_search_result_t res;
    status_t rc = store_txn_search(txn, &query, &arena, &res, err);
    if (!rc && res.nmatch == 0) {
        char id[32];
        snprintf(id, sizeof(id), "race-%d-%d", c->thread, c->round);
        rc = put_patient(txn, id, "race", &arena, err);
        c->created = !rc;
    }
    arena_release(&arena);
    return rc;
}

typedef struct {
    int thread;
    int created;
} worker_t;

static void *worker(void *arg)
{
    worker_t *w = arg;
    for (int r = 0; r < ROUNDS; r++) {
        cond_t c = {.thread = w->thread, .round = r};
        err_t err = ERR_INIT;
        if (store_run(store, cond_create_txn, &c, &err) == ERR_OK)
            w->created += c.created;
        err_release(&err);
    }
    return NULL;
}

static void test_conditional_create_pattern_is_atomic(void **state)
{
    (void)state;
    pthread_t threads[THREADS];
    worker_t workers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (worker_t){.thread = i};
        assert_int_equal(pthread_create(&threads[i], NULL, worker, &workers[i]), 0);
    }
    int created = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        created += workers[i].created;
    }
    assert_int_equal(created, 1);
    arena_t arena;
    arena_init(&arena);
    err_t err = ERR_INIT;
    store_search_t query = {.plan = mrn_plan("race", &arena)};
    store_search_result_t res;
    assert_int_equal(store_search(conn, &query, &arena, &res, &err), ERR_OK);
    assert_int_equal(res.nmatch, 1);
    arena_release(&arena);
    err_release(&err);
}

/* ---- limits and paging work as with store_search --------------------------------------- */

static status_t many_txn(store_txn_t *txn, void *arg, err_t *err)
{
    (void)arg;
    arena_t arena;
    arena_init(&arena);
    status_t rc = ERR_OK;
    for (int i = 0; i < 5 && !rc; i++)
        rc = put_patient(txn, arena_printf(&arena, "many%d", i), "many", &arena, err);
    if (rc) {
        arena_release(&arena);
        return rc;
    }
    fhir_search_plan_t *plan = mrn_plan("many", &arena);
    plan->count = 2;
    store_search_t query = {.plan = plan};
    store_search_result_t res;
    const char *ids[5];
    size_t n = 0;
    do {
        rc = store_txn_search(txn, &query, &arena, &res, err);
        for (size_t i = 0; !rc && i < res.nmatch; i++)
            ids[n++] = res.entries[i].version.id;
        query.page = res.next;
    } while (!rc && res.next && n < 5);
    assert_int_equal(n, 5);
    for (int i = 0; i < 5; i++)
        assert_string_equal(ids[i], arena_printf(&arena, "many%d", i));
    arena_release(&arena);
    return rc;
}

static void test_pages_inside_a_transaction(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    assert_int_equal(store_run(store, many_txn, NULL, &err), ERR_OK);
    err_release(&err);
}

static void test_refused_outside_a_transaction(void **state)
{
    (void)state;
    /* the driver's function on a connection in autocommit mode */
    void *raw;
    err_t err = ERR_INIT;
    void *c;
    const store_driver_t *driver = test_driver->driver;
    store_options_t options;
    store_options_init(&options);
    assert_int_equal(driver->open(path, &options, &raw, &err), ERR_OK);
    assert_int_equal(driver->connect(raw, false, &c, &err), ERR_OK);
    arena_t arena;
    arena_init(&arena);
    store_search_t query = {.plan = mrn_plan("own", &arena)};
    store_search_result_t res;
    assert_int_equal(driver->txn_search(c, &query, &arena, &res, &err), ERR_INTERNAL);
    arena_release(&arena);
    driver->disconnect(c);
    driver->close(raw);
    err_release(&err);
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_sees_its_own_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rolled_back_writes_are_not_seen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conditional_create_pattern_is_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pages_inside_a_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_outside_a_transaction, setup, teardown),
    };
    return test_run_on_drivers("store/txn_search", both, TEST_COUNT(both), NULL, 0, NULL, 0);
}
