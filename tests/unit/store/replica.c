/*
 * Tests of the connections of store_connect_replica: which database their reads go to, and
 * that a replica that cannot be used never fails a read. A real hot standby needs a second
 * PostgreSQL server (tests/integration/test_replica.py has one); here a second database of the
 * test's cluster stands in for it, with other contents, so that each read shows where it ran.
 * The PostgreSQL tests need CONCERTO_TEST_PG (drivers.h) and are skipped without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "fhir/defs.h"
#include "fhir/search.h"
#include "drivers.h"

#define STAND_IN "concerto_replica_test"

static char stand_in_location[600];

static int setup(void **state)
{
    return test_db_setup(state);
}

static int teardown(void **state)
{
    return test_db_teardown(state);
}

static store_t *open_store(const char *location, const char *replica)
{
    store_t *store;
    err_t err = ERR_INIT;
    store_options_t options;
    store_options_init(&options);
    options.synchronous = STORE_SYNC_OFF;
    options.replica = replica;
    if (store_open(location, &options, &store, &err))
        fail_msg("store_open: %s", err_message(&err));
    err_release(&err);
    return store;
}

static status_t put_txn(store_txn_t *txn, void *arg, err_t *err)
{
    const char *id = arg;
    char json[128];
    snprintf(json, sizeof(json), "{\"resourceType\":\"Patient\",\"id\":\"%s\"}", id);
    store_put_t put = {.type = "Patient",
                       .id = id,
                       .version = 1,
                       .method = "PUT",
                       .status = 201,
                       .json = json,
                       .json_len = strlen(json)};
    return store_txn_put(txn, &put, NULL, err);
}

static void put_patient(store_t *store, const char *id)
{
    err_t err = ERR_INIT;
    if (store_run(store, put_txn, (void *)id, &err))
        fail_msg("put %s: %s", id, err_message(&err));
    err_release(&err);
}

/* The ids of every Patient a search on conn finds, space separated (in arena). */
static const char *search_patients(store_conn_t *conn, arena_t *arena)
{
    fhir_search_query_t query = {.now_us = 0};
    fhir_search_plan_t *plan;
    err_t err = ERR_INIT;
    const fhir_type_t *type = fhir_resource_type_find("Patient", 7);
    if (fhir_search_parse(NULL, type, &query, arena, &plan, &err))
        fail_msg("parse: %s", err_message(&err));
    store_search_t search = {.plan = plan, .base = "http://localhost/fhir"};
    store_search_result_t result;
    if (store_search(conn, &search, arena, &result, &err))
        fail_msg("search: %s", err_message(&err));
    err_release(&err);
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < result.n; i++)
        buf_addf(&b, "%s%s", i ? " " : "", result.entries[i].version.id);
    const char *ids = arena_strndup(arena, b.ptr, b.len);
    buf_release(&b);
    return ids;
}

static int64_t count_patients(store_conn_t *conn)
{
    int64_t n = -1;
    err_t err = ERR_INIT;
    if (store_count(conn, "Patient", &n, &err))
        fail_msg("count: %s", err_message(&err));
    err_release(&err);
    return n;
}

/* The newest version in the system history on conn: its id. */
static const char *newest_id(store_conn_t *conn, arena_t *arena)
{
    store_history_query_t q = {
        .since_us = INT64_MIN, .before_seq = INT64_MAX, .after_seq = 0, .count = 1};
    store_history_t h;
    err_t err = ERR_INIT;
    if (store_history(conn, &q, arena, &h, &err))
        fail_msg("history: %s", err_message(&err));
    err_release(&err);
    return h.n ? h.versions[0].id : "";
}

/* Without a replica a replica connection reads what its primary reads. */
static void test_without_replica_reads_the_primary(void **state)
{
    (void)state;
    store_t *store = open_store(test_location, NULL);
    put_patient(store, "a");
    put_patient(store, "b");
    store_conn_t *primary, *replica;
    err_t err = ERR_INIT;
    assert_int_equal(store_connect(store, &primary, &err), ERR_OK);
    assert_int_equal(store_connect_replica(primary, &replica, &err), ERR_OK);
    assert_ptr_equal(store_conn_primary(replica), primary);
    assert_ptr_equal(store_conn_primary(primary), primary);
    arena_t arena;
    arena_init(&arena);
    assert_string_equal(search_patients(replica, &arena), "a b");
    assert_int_equal(count_patients(replica), 2);
    assert_string_equal(newest_id(replica, &arena), "b");
    store_version_t v;
    assert_int_equal(store_read(replica, "Patient", "a", 0, &arena, &v, &err), ERR_OK);
    put_patient(store, "c"); /* at once */
    assert_string_equal(search_patients(replica, &arena), "a b c");
    arena_release(&arena);
    store_disconnect(replica);
    store_disconnect(primary);
    store_close(store);
    err_release(&err);
}

static void test_sqlite_refuses_a_replica(void **state)
{
    (void)state;
    store_options_t options;
    store_options_init(&options);
    options.replica = "postgresql://concerto@127.0.0.1:1/none";
    store_t *store = NULL;
    err_t err = ERR_INIT;
    assert_int_equal(store_open(test_location, &options, &store, &err), ERR_INVALID);
    assert_null(store);
    assert_non_null(strstr(err_message(&err), "PostgreSQL"));
    err_release(&err);
}

/* test_location with the stand-in database's name in place of the test database's. */
static const char *stand_in(void)
{
    const char *scheme = strstr(test_location, "://");
    assert_non_null(scheme);
    const char *slash = strchr(scheme + 3, '/');
    assert_non_null(slash);
    const char *params = strchr(slash, '?');
    snprintf(stand_in_location, sizeof(stand_in_location), "%.*s/" STAND_IN "%s",
             (int)(slash - test_location), test_location, params ? params : "");
    return stand_in_location;
}

static void stand_in_create(void)
{
    test_pg_query("DROP DATABASE IF EXISTS " STAND_IN " WITH (FORCE)");
    test_pg_query("CREATE DATABASE " STAND_IN);
}

/* Runs sql on the stand-in database. */
static void stand_in_exec(const char *sql)
{
    PGconn *pg = PQconnectdb(stand_in());
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    PGresult *res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
    PQfinish(pg);
}

/* Searches, history, counts and scans of a replica connection read the replica, reads of
 * its primary and the work queues' reads the primary; when the replica fails, the same read
 * runs on the primary and answers. */
static void test_reads_go_to_the_replica(void **state)
{
    (void)state;
    stand_in_create();
    store_t *other = open_store(stand_in(), NULL);
    put_patient(other, "r1");
    put_patient(other, "r2");
    store_close(other);

    store_t *store = open_store(test_location, stand_in());
    put_patient(store, "p1");
    store_conn_t *primary, *replica;
    err_t err = ERR_INIT;
    assert_int_equal(store_connect(store, &primary, &err), ERR_OK);
    assert_int_equal(store_connect_replica(primary, &replica, &err), ERR_OK);
    arena_t arena;
    arena_init(&arena);
    assert_string_equal(search_patients(replica, &arena), "r1 r2");
    assert_string_equal(search_patients(primary, &arena), "p1");
    assert_int_equal(count_patients(replica), 2);
    assert_string_equal(newest_id(replica, &arena), "r2");
    store_version_t v;
    assert_int_equal(store_read(replica, "Patient", "p1", 0, &arena, &v, &err), ERR_NOT_FOUND);
    err_reset(&err);
    assert_int_equal(store_read(primary, "Patient", "p1", 0, &arena, &v, &err), ERR_OK);
    store_scan_row_t *rows;
    size_t n;
    assert_int_equal(store_scan(replica, "Patient", 0, 10, &arena, &rows, &n, &err), ERR_OK);
    assert_int_equal(n, 2);
    /* the outbox of the primary: one event */
    int64_t pending = -1, dead = -1;
    assert_int_equal(store_outbox_counts(replica, &pending, &dead, &err), ERR_OK);
    assert_int_equal(pending, 1);

    /* the replica fails its reads: they run on the primary */
    stand_in_exec("DROP TABLE resource CASCADE");
    assert_string_equal(search_patients(replica, &arena), "p1");
    assert_int_equal(count_patients(replica), 1);
    /* and go on doing so until the replica works again (looked at once a second) */
    assert_int_equal(count_patients(replica), 1);
    store_disconnect(replica);
    store_disconnect(primary);
    store_close(store);
    arena_release(&arena);
    err_release(&err);
    test_pg_query("DROP DATABASE " STAND_IN " WITH (FORCE)");
}

/* A replica that cannot be reached, from the start: the store opens, and every read of a
 * replica connection answers from the primary. */
static void test_unreachable_replica_reads_the_primary(void **state)
{
    (void)state;
    store_t *store =
        open_store(test_location, "postgresql://concerto@127.0.0.1:1/none?connect_timeout=2");
    put_patient(store, "p1");
    put_patient(store, "p2");
    store_conn_t *primary, *replica;
    err_t err = ERR_INIT;
    assert_int_equal(store_connect(store, &primary, &err), ERR_OK);
    assert_int_equal(store_connect_replica(primary, &replica, &err), ERR_OK);
    arena_t arena;
    arena_init(&arena);
    assert_string_equal(search_patients(replica, &arena), "p1 p2");
    assert_int_equal(count_patients(replica), 2);
    assert_string_equal(newest_id(replica, &arena), "p2");
    put_patient(store, "p3");
    assert_string_equal(search_patients(replica, &arena), "p1 p2 p3");
    arena_release(&arena);
    store_disconnect(replica);
    store_disconnect(primary);
    store_close(store);
    err_release(&err);
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_without_replica_reads_the_primary, setup, teardown),
    };
    const struct CMUnitTest sqlite_only[] = {
        cmocka_unit_test_setup_teardown(test_sqlite_refuses_a_replica, setup, teardown),
    };
    const struct CMUnitTest pg_only[] = {
        cmocka_unit_test_setup_teardown(test_reads_go_to_the_replica, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_replica_reads_the_primary, setup,
                                        teardown),
    };
    return test_run_on_drivers("store/replica", both, TEST_COUNT(both), sqlite_only,
                               TEST_COUNT(sqlite_only), pg_only, TEST_COUNT(pg_only));
}
