/*
 * Tests of what the PostgreSQL driver adds: several processes on one database (two stores
 * opened on one URI, as two servers would), where only the database serializes writers,
 * claims and leases; what it writes besides versions (full text, contained resources); and
 * a compartment's everything on both drivers. The PostgreSQL tests need CONCERTO_TEST_PG
 * (drivers.h) and are skipped without it.
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
#include <time.h>
#include <unistd.h>

#include "base/jv.h"
#include "fhir/index.h"
#include "drivers.h"

#define SECOND 1000000LL
#define T0     (1800000000LL * SECOND)

static int setup(void **state)
{
    return test_db_setup(state);
}

static int teardown(void **state)
{
    return test_db_teardown(state);
}

static store_t *open_store(void)
{
    store_t *store;
    test_store_open(&store, NULL);
    return store;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- writing ------------------------------------------------------------------------- */

typedef struct {
    const char *type, *id, *json;
    int64_t expect;  /* the version the writer saw (If-Match), or -1: any */
    int hold_ms;     /* sleep after reading the current version, inside the transaction */
    int64_t version; /* out: the version written */
} put_arg_t;

/* Puts type/id with its index rows (and full text) extracted from json. */
static status_t put_txn(store_txn_t *txn, void *arg, err_t *err)
{
    put_arg_t *a = arg;
    store_current_t current;
    status_t rc = store_txn_current(txn, a->type, a->id, &current, err);
    if (rc)
        return rc;
    if (a->hold_ms)
        sleep_ms(a->hold_ms);
    if (a->expect >= 0 && current.version != a->expect)
        return err_set(err, ERR_VERSION_CONFLICT, NULL, "%s/%s is at version %lld", a->type, a->id,
                       (long long)current.version);
    arena_t arena;
    arena_init(&arena);
    fhir_index_rows_t rows = {0};
    if (a->json) {
        json_t *resource = jv_parse(a->json, strlen(a->json), err);
        assert_non_null(resource);
        assert_int_equal(fhir_index_extract(NULL, resource, &arena, &rows, err), ERR_OK);
        json_decref(resource);
    }
    store_put_t put = {.type = a->type,
                       .id = a->id,
                       .version = current.version + 1,
                       .method = a->json ? (current.version ? "PUT" : "POST") : "DELETE",
                       .status = a->json ? (current.version ? 200 : 201) : 204,
                       .json = a->json,
                       .json_len = a->json ? strlen(a->json) : 0,
                       .index = &rows};
    rc = store_txn_put(txn, &put, NULL, err);
    arena_release(&arena);
    if (!rc)
        a->version = put.version;
    return rc;
}

static status_t put(store_t *store, put_arg_t *a)
{
    err_t err = ERR_INIT;
    status_t rc = store_run(store, put_txn, a, &err);
    err_release(&err);
    return rc;
}

static void put_ok(store_t *store, const char *type, const char *id, const char *json)
{
    put_arg_t a = {.type = type, .id = id, .json = json, .expect = -1};
    assert_int_equal(put(store, &a), ERR_OK);
}

/* ---- two processes: writers -------------------------------------------------------------- */

typedef struct {
    store_t *store;
    pthread_barrier_t *start;
    put_arg_t arg;
    status_t result;
} racer_t;

static void *racer_main(void *opaque)
{
    racer_t *r = opaque;
    pthread_barrier_wait(r->start);
    r->result = put(r->store, &r->arg);
    return NULL;
}

/* Two stores write type/id at once with args a and b; the results are in racers. */
static void race(store_t *stores[2], const put_arg_t *a, const put_arg_t *b, racer_t racers[2])
{
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) {
        racers[i] = (racer_t){.store = stores[i], .start = &start, .arg = i ? *b : *a};
        assert_int_equal(pthread_create(&threads[i], NULL, racer_main, &racers[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&start);
}

static int64_t current_version(store_t *store, const char *type, const char *id)
{
    store_conn_t *conn;
    err_t err = ERR_INIT;
    assert_int_equal(store_connect(store, &conn, &err), ERR_OK);
    arena_t arena;
    arena_init(&arena);
    store_version_t v;
    int64_t version = store_read(conn, type, id, 0, &arena, &v, &err) ? 0 : v.version;
    arena_release(&arena);
    store_disconnect(conn);
    err_release(&err);
    return version;
}

/* An update with If-Match from two processes at once: one wins, the other conflicts. */
static void test_two_processes_if_match(void **state)
{
    (void)state;
    store_t *stores[2] = {open_store(), open_store()};
    put_ok(stores[0], "Patient", "c1", "{\"resourceType\":\"Patient\",\"id\":\"c1\"}");
    put_arg_t a = {.type = "Patient",
                   .id = "c1",
                   .json = "{\"resourceType\":\"Patient\",\"id\":\"c1\",\"active\":true}",
                   .expect = 1,
                   .hold_ms = 100};
    racer_t racers[2];
    race(stores, &a, &a, racers);
    int ok = (racers[0].result == ERR_OK) + (racers[1].result == ERR_OK);
    int conflicts =
        (racers[0].result == ERR_VERSION_CONFLICT) + (racers[1].result == ERR_VERSION_CONFLICT);
    assert_int_equal(ok, 1);
    assert_int_equal(conflicts, 1);
    assert_int_equal(current_version(stores[1], "Patient", "c1"), 2);
    store_close(stores[0]);
    store_close(stores[1]);
}

/* Updates without a condition from two processes at once serialize on the resource's row:
 * both succeed, one after the other, as versions 2 and 3. */
static void test_two_processes_updates_serialize(void **state)
{
    (void)state;
    store_t *stores[2] = {open_store(), open_store()};
    put_ok(stores[0], "Patient", "s1", "{\"resourceType\":\"Patient\",\"id\":\"s1\"}");
    put_arg_t a = {.type = "Patient",
                   .id = "s1",
                   .json = "{\"resourceType\":\"Patient\",\"id\":\"s1\",\"active\":true}",
                   .expect = -1,
                   .hold_ms = 100};
    racer_t racers[2];
    race(stores, &a, &a, racers);
    assert_int_equal(racers[0].result, ERR_OK);
    assert_int_equal(racers[1].result, ERR_OK);
    assert_int_equal(racers[0].arg.version + racers[1].arg.version, 2 + 3);
    assert_int_equal(current_version(stores[0], "Patient", "s1"), 3);
    store_close(stores[0]);
    store_close(stores[1]);
}

/* Two processes create one new id at once: one creates it, the other conflicts (the unique
 * key of versions decides) and leaves nothing behind. */
static void test_two_processes_create_one_id(void **state)
{
    (void)state;
    store_t *stores[2] = {open_store(), open_store()};
    put_arg_t a = {.type = "Patient",
                   .id = "n1",
                   .json = "{\"resourceType\":\"Patient\",\"id\":\"n1\"}",
                   .expect = 0,
                   .hold_ms = 100};
    racer_t racers[2];
    race(stores, &a, &a, racers);
    int ok = (racers[0].result == ERR_OK) + (racers[1].result == ERR_OK);
    int conflicts =
        (racers[0].result == ERR_VERSION_CONFLICT) + (racers[1].result == ERR_VERSION_CONFLICT);
    assert_int_equal(ok, 1);
    assert_int_equal(conflicts, 1);
    assert_int_equal(current_version(stores[0], "Patient", "n1"), 1);
    assert_int_equal(test_pg_query("SELECT count(*) FROM resource_version WHERE id = 'n1'"), 1);
    assert_int_equal(test_pg_query("SELECT count(*) FROM outbox WHERE id = 'n1'"), 1);
    store_close(stores[0]);
    store_close(stores[1]);
}

/* store_txn_lock: two processes that check "is there one yet?" and then make one, at once.
 * Read committed lets both see none; the lock makes the second wait for the first's commit
 * and see what it made. */
typedef struct {
    store_t *store;
    pthread_barrier_t *start;
    const char *id;
    bool made;
    status_t result;
} lock_racer_t;

static status_t check_then_make_txn(store_txn_t *txn, void *arg, err_t *err)
{
    lock_racer_t *r = arg;
    status_t rc = store_txn_lock(txn, "test: one Patient of la and lb", err);
    store_current_t a, b;
    if (rc || (rc = store_txn_current(txn, "Patient", "la", &a, err)) ||
        (rc = store_txn_current(txn, "Patient", "lb", &b, err)))
        return rc;
    r->made = false;
    if (a.version || b.version)
        return ERR_OK;
    sleep_ms(150); /* the other one checks meanwhile */
    char json[64];
    snprintf(json, sizeof(json), "{\"resourceType\":\"Patient\",\"id\":\"%s\"}", r->id);
    put_arg_t put = {.type = "Patient", .id = r->id, .json = json, .expect = 0};
    if ((rc = put_txn(txn, &put, err)))
        return rc;
    r->made = true;
    return ERR_OK;
}

static void *lock_racer_main(void *opaque)
{
    lock_racer_t *r = opaque;
    pthread_barrier_wait(r->start);
    err_t err = ERR_INIT;
    r->result = store_run(r->store, check_then_make_txn, r, &err);
    err_release(&err);
    return NULL;
}

static void test_two_processes_lock(void **state)
{
    (void)state;
    store_t *stores[2] = {open_store(), open_store()};
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    lock_racer_t racers[2] = {{stores[0], &start, "la", false, ERR_OK},
                              {stores[1], &start, "lb", false, ERR_OK}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, lock_racer_main, &racers[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&start);
    assert_int_equal(racers[0].result, ERR_OK);
    assert_int_equal(racers[1].result, ERR_OK);
    assert_int_equal(racers[0].made + racers[1].made, 1);
    assert_int_equal(
        test_pg_query(
            "SELECT count(*) FROM resource WHERE type = 'Patient' AND id IN ('la', 'lb')"),
        1);
    store_close(stores[0]);
    store_close(stores[1]);
}

static void *open_main(void *opaque)
{
    store_t **out = opaque;
    *out = open_store();
    return NULL;
}

/* Two processes starting at once on an empty database migrate it once. */
static void test_two_processes_migrate_once(void **state)
{
    (void)state;
    store_t *stores[2];
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, open_main, &stores[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(store_schema_version(stores[0]), store_schema_version(stores[1]));
    assert_int_equal(test_pg_query("SELECT count(*) FROM schema_migration"),
                     store_schema_version(stores[0]));
    store_close(stores[0]);
    store_close(stores[1]);
}

/* ---- two processes: claims and leases ---------------------------------------------------- */

enum { EVENTS = 300 };

typedef struct {
    store_t *store;
    pthread_barrier_t *start;
    char consumer[32];
    int64_t *ids; /* the claimed event ids */
    size_t n;
} claimer_t;

typedef struct {
    claimer_t *claimer;
    size_t got;
} claim_arg_t;

static status_t claim_txn(store_txn_t *txn, void *opaque, err_t *err)
{
    claim_arg_t *a = opaque;
    claimer_t *c = a->claimer;
    store_claim_t claim = {.consumer = c->consumer,
                           .max = 7,
                           .now_us = T0,
                           .lease_us = 60 * SECOND,
                           .max_attempts = 5};
    arena_t arena;
    arena_init(&arena);
    store_event_t *events;
    status_t rc = store_txn_outbox_claim(txn, &claim, &arena, &events, &a->got, err);
    for (size_t i = 0; !rc && i < a->got; i++)
        c->ids[c->n++] = events[i].event_id;
    arena_release(&arena);
    if (!rc && a->got)
        sleep_ms(2); /* hold the claimed rows a moment: the other claims pass over them */
    return rc;
}

static void *claimer_main(void *opaque)
{
    claimer_t *c = opaque;
    pthread_barrier_wait(c->start);
    for (;;) {
        claim_arg_t a = {.claimer = c};
        err_t err = ERR_INIT;
        assert_int_equal(store_run(c->store, claim_txn, &a, &err), ERR_OK);
        err_release(&err);
        if (!a.got)
            break;
    }
    return NULL;
}

static status_t many_txn(store_txn_t *txn, void *opaque, err_t *err)
{
    (void)opaque;
    for (int i = 0; i < EVENTS; i++) {
        char id[16];
        snprintf(id, sizeof(id), "t%d", i);
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

static int compare_ids(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Two processes claiming the outbox at once get disjoint sets that cover every event once. */
static void test_two_processes_claim_disjoint(void **state)
{
    (void)state;
    store_t *stores[2] = {open_store(), open_store()};
    err_t err = ERR_INIT;
    assert_int_equal(store_run(stores[0], many_txn, NULL, &err), ERR_OK);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    claimer_t claimers[2];
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) {
        claimers[i] = (claimer_t){.store = stores[i], .start = &start};
        snprintf(claimers[i].consumer, sizeof(claimers[i].consumer), "process-%d", i);
        claimers[i].ids = calloc(EVENTS, sizeof(int64_t));
        assert_int_equal(pthread_create(&threads[i], NULL, claimer_main, &claimers[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&start);
    size_t total = claimers[0].n + claimers[1].n;
    assert_int_equal(total, EVENTS);
    assert_true(claimers[0].n > 0 && claimers[1].n > 0); /* both took part */
    int64_t *all = calloc(EVENTS, sizeof(int64_t));
    memcpy(all, claimers[0].ids, claimers[0].n * sizeof(int64_t));
    memcpy(all + claimers[0].n, claimers[1].ids, claimers[1].n * sizeof(int64_t));
    qsort(all, EVENTS, sizeof(int64_t), compare_ids);
    for (size_t i = 1; i < EVENTS; i++)
        assert_true(all[i] > all[i - 1]); /* no event twice */
    assert_int_equal(all[0], test_pg_query("SELECT min(event_id) FROM outbox"));
    assert_int_equal(all[EVENTS - 1], test_pg_query("SELECT max(event_id) FROM outbox"));
    assert_int_equal(test_pg_query("SELECT count(*) FROM outbox WHERE attempts = 1 AND "
                                   "claimed_by IN ('process-0', 'process-1')"),
                     EVENTS);
    free(all);
    free(claimers[0].ids);
    free(claimers[1].ids);
    store_close(stores[0]);
    store_close(stores[1]);
    err_release(&err);
}

/* A lease one process holds is refused to another until it runs out. */
static void test_two_processes_lease(void **state)
{
    (void)state;
    store_t *a = open_store(), *b = open_store();
    err_t err = ERR_INIT;
    bool held = false;
    assert_int_equal(store_lease_acquire(a, "sweep", "a", 10 * SECOND, T0, &held, &err), ERR_OK);
    assert_true(held);
    assert_int_equal(store_lease_acquire(b, "sweep", "b", 10 * SECOND, T0 + SECOND, &held, &err),
                     ERR_OK);
    assert_false(held);
    assert_int_equal(store_lease_renew(b, "sweep", "b", 10 * SECOND, T0 + SECOND, &held, &err),
                     ERR_OK);
    assert_false(held);
    assert_int_equal(store_lease_renew(a, "sweep", "a", 10 * SECOND, T0 + 5 * SECOND, &held, &err),
                     ERR_OK);
    assert_true(held); /* now until T0 + 15 s */
    assert_int_equal(
        store_lease_acquire(b, "sweep", "b", 10 * SECOND, T0 + 14 * SECOND, &held, &err), ERR_OK);
    assert_false(held);
    assert_int_equal(
        store_lease_acquire(b, "sweep", "b", 10 * SECOND, T0 + 15 * SECOND, &held, &err), ERR_OK);
    assert_true(held);
    assert_int_equal(store_lease_renew(a, "sweep", "a", 10 * SECOND, T0 + 16 * SECOND, &held, &err),
                     ERR_OK);
    assert_false(held);
    assert_int_equal(store_lease_release(a, "sweep", "a", &err), ERR_OK); /* not a's: no-op */
    assert_int_equal(
        store_lease_acquire(a, "sweep", "a", 10 * SECOND, T0 + 17 * SECOND, &held, &err), ERR_OK);
    assert_false(held);
    assert_int_equal(store_lease_release(b, "sweep", "b", &err), ERR_OK);
    assert_int_equal(
        store_lease_acquire(a, "sweep", "a", 10 * SECOND, T0 + 17 * SECOND, &held, &err), ERR_OK);
    assert_true(held);
    store_close(a);
    store_close(b);
    err_release(&err);
}

/* ---- what a write writes besides the version --------------------------------------------- */

static const char patient_with_contained[] =
    "{\"resourceType\":\"Patient\",\"id\":\"f1\","
    "\"text\":{\"status\":\"generated\",\"div\":\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\">"
    "\u00c9lodie M\u00fcller</div>\"},"
    "\"contained\":[{\"resourceType\":\"Practitioner\",\"id\":\"gp\","
    "\"name\":[{\"family\":\"Dubois\"}]}],"
    "\"generalPractitioner\":[{\"reference\":\"#gp\"}],"
    "\"name\":[{\"family\":\"M\u00fcller\",\"given\":[\"\u00c9lodie\"]}]}";

/* Full text rows (folded: no case, no accents) and contained resources (keys from 2^62,
 * the container's references to them keyed by minus that key), replaced by an update. */
static void test_full_text_and_contained_rows(void **state)
{
    (void)state;
    store_t *store = open_store();
    put_ok(store, "Patient", "f1", patient_with_contained);
    assert_int_equal(test_pg_query("SELECT count(*) FROM ix_text WHERE words @@ "
                                   "to_tsquery('simple', concerto_fold('ELODIE & muller'))"),
                     1);
    /* the narrative's words (weight A) for _text; a word only in the content does not match */
    assert_int_equal(test_pg_query("SELECT count(*) FROM ix_text WHERE words @@ "
                                   "to_tsquery('simple', 'elodie:A')"),
                     1);
    assert_int_equal(test_pg_query("SELECT count(*) FROM ix_text WHERE words @@ "
                                   "to_tsquery('simple', 'dubois:A')"),
                     0);
    assert_int_equal(test_pg_query("SELECT count(*) FROM ix_text WHERE words @@ "
                                   "to_tsquery('simple', 'dubois')"),
                     1);
    assert_int_equal(test_pg_query("SELECT count(*) FROM resource_contained "
                                   "WHERE rid >= 4611686018427387904 AND type = 'Practitioner' "
                                   "AND id = 'gp'"),
                     1);
    assert_true(test_pg_query("SELECT count(*) FROM ix_string WHERE type = '#Practitioner'") > 0);
    assert_int_equal(test_pg_query("SELECT count(*) FROM ix_reference r JOIN resource_contained "
                                   "c ON r.rid = -c.rid WHERE r.type = '#Patient'"),
                     1);
    /* an update without them takes them away; a new key next time */
    put_ok(store, "Patient", "f1", "{\"resourceType\":\"Patient\",\"id\":\"f1\"}");
    assert_int_equal(test_pg_query("SELECT count(*) FROM resource_contained"), 0);
    assert_int_equal(test_pg_query("SELECT count(*) FROM ix_string WHERE type = '#Practitioner'"),
                     0);
    assert_int_equal(test_pg_query("SELECT count(*) FROM ix_reference WHERE rid < 0"), 0);
    assert_int_equal(test_pg_query("SELECT count(*) FROM ix_text WHERE words @@ "
                                   "to_tsquery('simple', 'elodie')"),
                     0);
    put_ok(store, "Patient", "f1", patient_with_contained);
    assert_int_equal(test_pg_query("SELECT min(rid) FROM resource_contained"),
                     4611686018427387905LL);
    /* a delete leaves nothing to find */
    put_arg_t del = {.type = "Patient", .id = "f1", .json = NULL, .expect = -1};
    assert_int_equal(put(store, &del), ERR_OK);
    assert_int_equal(test_pg_query("SELECT count(*) FROM resource_contained"), 0);
    assert_int_equal(test_pg_query("SELECT count(*) FROM ix_text"), 0);
    store_close(store);
}

/* The rows of one kind go in one insert (arrays of the columns): values with quotes,
 * backslashes, commas, braces, the word NULL and missing values arrive as they were. */
static void test_index_rows_arrive_intact(void **state)
{
    (void)state;
    store_t *store = open_store();
    put_ok(store, "Patient", "q1",
           "{\"resourceType\":\"Patient\",\"id\":\"q1\",\"name\":[{\"family\":\"O\\\"Brien\\\\x\","
           "\"given\":[\"a,b\",\"{c}\",\"NULL\"]}],\"identifier\":[{\"value\":\"x1\"},"
           "{\"system\":\"http://s\",\"value\":\"x2\"}]}");
    assert_int_equal(test_pg_query("SELECT count(*) FROM ix_string WHERE param = 'family' AND "
                                   "exact = 'O\"Brien\\x'"),
                     1);
    assert_int_equal(test_pg_query("SELECT count(*) FROM ix_string WHERE param = 'given' AND "
                                   "exact = 'a,b'"),
                     1);
    assert_int_equal(test_pg_query("SELECT count(*) FROM ix_string WHERE param = 'given' AND "
                                   "exact = '{c}'"),
                     1);
    assert_int_equal(test_pg_query("SELECT count(*) FROM ix_string WHERE param = 'given' AND "
                                   "exact = 'NULL'"),
                     1);
    assert_int_equal(test_pg_query("SELECT count(*) FROM ix_token WHERE param = 'identifier' "
                                   "AND system IS NULL AND code = 'x1'"),
                     1);
    assert_int_equal(test_pg_query("SELECT count(*) FROM ix_token WHERE param = 'identifier' "
                                   "AND system = 'http://s' AND code = 'x2'"),
                     1);
    store_close(store);
}

static void test_unreachable_database_is_unavailable(void **state)
{
    (void)state;
    store_t *store;
    err_t err = ERR_INIT;
    assert_int_equal(
        store_open("postgresql://concerto@127.0.0.1:1/none?connect_timeout=2", NULL, &store, &err),
        ERR_UNAVAILABLE);
    assert_non_null(strstr(err_message(&err), "could not connect"));
    err_release(&err);
}

/* A transaction that loses its connection (PostgreSQL restarted, the backend was killed)
 * fails as a whole and leaves nothing; the next transaction reconnects. */
static status_t cut_txn(store_txn_t *txn, void *opaque, err_t *err)
{
    (void)opaque;
    store_put_t p = {.type = "Patient",
                     .id = "cut1",
                     .version = 1,
                     .method = "POST",
                     .status = 201,
                     .json = "{}",
                     .json_len = 2};
    status_t rc = store_txn_put(txn, &p, NULL, err);
    if (rc)
        return rc;
    /* every connection of the store goes (the writer's with this transaction) */
    assert_true(test_pg_query("SELECT sum(CASE WHEN application_name = 'concerto' AND pid <> "
                              "pg_backend_pid() THEN pg_terminate_backend(pid, 10000)::int "
                              "ELSE 0 END) FROM pg_stat_activity") >= 1);
    p.id = "cut2";
    return store_txn_put(txn, &p, NULL, err);
}

static void test_lost_connection_leaves_nothing(void **state)
{
    (void)state;
    store_t *store = open_store();
    put_ok(store, "Patient", "before", "{\"resourceType\":\"Patient\",\"id\":\"before\"}");
    err_t err = ERR_INIT;
    assert_int_equal(store_run(store, cut_txn, NULL, &err), ERR_UNAVAILABLE);
    err_release(&err);
    assert_int_equal(test_pg_query("SELECT count(*) FROM resource_version WHERE id LIKE 'cut%'"),
                     0);
    assert_int_equal(test_pg_query("SELECT count(*) FROM outbox WHERE id LIKE 'cut%'"), 0);
    /* the store carries on: writes and reads reconnect */
    put_ok(store, "Patient", "after", "{\"resourceType\":\"Patient\",\"id\":\"after\"}");
    assert_int_equal(current_version(store, "Patient", "before"), 1);
    assert_int_equal(current_version(store, "Patient", "after"), 1);
    store_close(store);
}

/* A statement the driver prepares once per connection (the worklist's risk rows) is prepared
 * again on the connection that replaces a lost one. */
static void risk_rows_ok(store_conn_t *conn)
{
    static const char *const patients[] = {"Patient/p1"};
    arena_t arena;
    arena_init(&arena);
    store_risk_t *rows;
    size_t n;
    err_t err = ERR_INIT;
    if (store_patient_risks(conn, patients, 1, &arena, &rows, &n, &err))
        fail_msg("%s: %s", err_message(&err), err.log_detail ? err.log_detail : "");
    assert_int_equal(n, 0);
    err_release(&err);
    arena_release(&arena);
}

static void test_prepared_reads_survive_a_lost_connection(void **state)
{
    (void)state;
    store_t *store = open_store();
    store_conn_t *conn;
    err_t err = ERR_INIT;
    assert_int_equal(store_connect(store, &conn, &err), ERR_OK);
    risk_rows_ok(conn);
    risk_rows_ok(conn); /* the prepared statement again */
    assert_true(test_pg_query("SELECT sum(CASE WHEN application_name = 'concerto' AND pid <> "
                              "pg_backend_pid() THEN pg_terminate_backend(pid, 10000)::int "
                              "ELSE 0 END) FROM pg_stat_activity") >= 1);
    risk_rows_ok(conn); /* reconnected, prepared anew */
    risk_rows_ok(conn);
    store_disconnect(conn);
    store_close(store);
    err_release(&err);
}

/* ---- a compartment's everything, on both drivers ------------------------------------------ */

static void test_everything(void **state)
{
    (void)state;
    store_t *store = open_store();
    put_ok(store, "Patient", "p1", "{\"resourceType\":\"Patient\",\"id\":\"p1\"}");
    put_ok(store, "Practitioner", "dr", "{\"resourceType\":\"Practitioner\",\"id\":\"dr\"}");
    put_ok(store, "Observation", "o1",
           "{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":\"final\","
           "\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":\"Patient/p1\"},"
           "\"performer\":[{\"reference\":\"Practitioner/dr\"}]}");
    put_ok(store, "Observation", "o2",
           "{\"resourceType\":\"Observation\",\"id\":\"o2\",\"status\":\"final\","
           "\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":\"Patient/p2\"}}");
    put_ok(store, "Patient", "p2", "{\"resourceType\":\"Patient\",\"id\":\"p2\"}");
    static const char *const member_types[] = {"Observation"};
    static const char *const member_params[] = {"subject"};
    static const char *const referenced[] = {"Practitioner"};
    store_everything_t query = {.compartment_type = "Patient",
                                .id = "p1",
                                .member_types = member_types,
                                .member_params = member_params,
                                .nmembers = 1,
                                .referenced = referenced,
                                .nreferenced = 1,
                                .since_us = 0,
                                .count = 2};
    store_conn_t *conn;
    err_t err = ERR_INIT;
    assert_int_equal(store_connect(store, &conn, &err), ERR_OK);
    arena_t arena;
    arena_init(&arena);
    /* pages of two: p1, dr (included), o1 in the order they were created */
    const char *expect[] = {"Patient/p1", "Practitioner/dr", "Observation/o1"};
    bool included[] = {false, true, false};
    size_t seen = 0;
    store_search_result_t res;
    do {
        assert_int_equal(store_everything(conn, &query, &arena, &res, &err), ERR_OK);
        for (size_t i = 0; i < res.n; i++, seen++) {
            assert_true(seen < 3);
            const char *name = arena_printf(&arena, "%s/%s", res.entries[i].version.type,
                                            res.entries[i].version.id);
            assert_string_equal(name, expect[seen]);
            assert_int_equal(res.entries[i].included, included[seen]);
            assert_non_null(res.entries[i].version.json);
        }
        query.page = res.next;
    } while (res.next);
    assert_int_equal(seen, 3);
    /* every compartment of the type, only Patients */
    static const char *const types[] = {"Patient"};
    query.id = NULL;
    query.page = NULL;
    query.count = 10;
    query.types = types;
    query.ntypes = 1;
    assert_int_equal(store_everything(conn, &query, &arena, &res, &err), ERR_OK);
    assert_int_equal(res.n, 2);
    assert_string_equal(res.entries[0].version.id, "p1");
    assert_string_equal(res.entries[1].version.id, "p2");
    /* a cursor not made here */
    query.page = "x1";
    assert_int_equal(store_everything(conn, &query, &arena, &res, &err), ERR_INVALID);
    arena_release(&arena);
    store_disconnect(conn);
    store_close(store);
    err_release(&err);
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_everything, setup, teardown),
    };
    const struct CMUnitTest pg_only[] = {
        cmocka_unit_test_setup_teardown(test_two_processes_migrate_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_processes_if_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_processes_updates_serialize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_processes_create_one_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_processes_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_processes_claim_disjoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_processes_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_connection_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepared_reads_survive_a_lost_connection, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_full_text_and_contained_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_rows_arrive_intact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_database_is_unavailable, setup, teardown),
    };
    return test_run_on_drivers("store/pg", both, TEST_COUNT(both), NULL, 0, pg_only,
                               TEST_COUNT(pg_only));
}
