/*
 * Tests for src/store: the drivers behind store.h (SQLite, and PostgreSQL when
 * CONCERTO_TEST_PG is set: drivers.h), the writer's group commit, and faults: a driver that
 * fails its Nth call must leave the database intact and report errors.
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
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/buf.h"
#include "base/jv.h"
#include "store/store_int.h"
#include "drivers.h"

static int setup(void **state)
{
    return test_db_setup(state);
}

static int teardown(void **state)
{
    return test_db_teardown(state);
}

typedef struct {
    const char *type, *id, *json;
    int64_t expect_version; /* 0: any */
    status_t fail_with;     /* make the transaction fail after writing */
    int64_t version;        /* out */
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
                       .method = current.version ? "PUT" : "POST",
                       .json = a->json,
                       .json_len = a->json ? strlen(a->json) : 0};
    int64_t seq;
    rc = store_txn_put(txn, &put, &seq, err);
    if (rc)
        return rc;
    a->version = put.version;
    if (a->fail_with)
        return err_set(err, a->fail_with, NULL, "failing on purpose");
    return ERR_OK;
}

static void put_ok(store_t *store, const char *type, const char *id, const char *json,
                   int64_t expect_version)
{
    put_arg_t a = {.type = type, .id = id, .json = json};
    err_t err = ERR_INIT;
    assert_int_equal(store_run(store, put_txn, &a, &err), ERR_OK);
    assert_int_equal(a.version, expect_version);
    err_release(&err);
}

static void test_open_migrate_reopen(void **state)
{
    (void)state;
    store_t *store;
    err_t err = ERR_INIT;
    assert_int_equal(store_open(test_location, NULL, &store, &err), ERR_OK);
    int version = store_schema_version(store);
    assert_true(version >= 1);
    assert_string_equal(store_driver_name(store), test_driver->name);
    store_close(store);
    assert_int_equal(store_open(test_location, NULL, &store, &err), ERR_OK);
    assert_int_equal(store_schema_version(store), version);
    store_close(store);
    err_release(&err);
}

static void test_open_failure_is_an_error(void **state)
{
    (void)state;
    store_t *store;
    err_t err = ERR_INIT;
    assert_int_equal(store_open("/nonexistent-dir/x.db", NULL, &store, &err), ERR_STORAGE);
    assert_non_null(strstr(err_message(&err), "could not open the database"));
    err_release(&err);
}

static void test_versions_read_and_history(void **state)
{
    (void)state;
    store_t *store;
    err_t err = ERR_INIT;
    assert_int_equal(store_open(test_location, NULL, &store, &err), ERR_OK);
    put_ok(store, "Patient", "p1", "{\"v\":1}", 1);
    put_ok(store, "Patient", "p1", "{\"v\":2}", 2);
    put_ok(store, "Patient", "p2", "{\"v\":1}", 1);
    put_ok(store, "Observation", "o1", "{\"v\":1}", 1);
    put_ok(store, "Patient", "p1", NULL, 3); /* delete */

    store_conn_t *conn;
    assert_int_equal(store_connect(store, &conn, &err), ERR_OK);
    arena_t arena;
    arena_init(&arena);
    store_version_t v;
    assert_int_equal(store_read(conn, "Patient", "p1", 0, &arena, &v, &err), ERR_OK);
    assert_true(v.deleted);
    assert_int_equal(v.version, 3);
    assert_null(v.json);
    assert_string_equal(v.method, "PUT");
    assert_int_equal(store_read(conn, "Patient", "p1", 2, &arena, &v, &err), ERR_OK);
    assert_string_equal(v.json, "{\"v\":2}");
    assert_false(v.deleted);
    assert_int_equal(store_read(conn, "Patient", "p1", 9, &arena, &v, &err), ERR_NOT_FOUND);
    err_reset(&err);
    assert_int_equal(store_read(conn, "Patient", "nope", 0, &arena, &v, &err), ERR_NOT_FOUND);
    err_reset(&err);

    int64_t count;
    assert_int_equal(store_count(conn, "Patient", &count, &err), ERR_OK);
    assert_int_equal(count, 1); /* p1 is deleted */
    assert_int_equal(store_count(conn, NULL, &count, &err), ERR_OK);
    assert_int_equal(count, 2);

    /* instance history, newest first, with total */
    store_history_query_t q = {.type = "Patient",
                               .id = "p1",
                               .since_us = INT64_MIN,
                               .before_seq = INT64_MAX,
                               .count = 2,
                               .want_total = true};
    store_history_t h;
    assert_int_equal(store_history(conn, &q, &arena, &h, &err), ERR_OK);
    assert_int_equal(h.total, 3);
    assert_int_equal(h.n, 2);
    assert_int_equal(h.versions[0].version, 3);
    assert_int_equal(h.versions[1].version, 2);
    assert_true(h.more_older);
    assert_false(h.more_newer);
    /* next page */
    q.before_seq = h.versions[1].seq;
    assert_int_equal(store_history(conn, &q, &arena, &h, &err), ERR_OK);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.versions[0].version, 1);
    assert_false(h.more_older);
    assert_true(h.more_newer);
    /* back again */
    q.after_seq = h.versions[0].seq;
    q.before_seq = INT64_MAX;
    assert_int_equal(store_history(conn, &q, &arena, &h, &err), ERR_OK);
    assert_int_equal(h.n, 2);
    assert_int_equal(h.versions[0].version, 3);

    /* system history sees all five versions; times strictly increase with seq */
    store_history_query_t all = {.since_us = INT64_MIN, .before_seq = INT64_MAX, .count = 10};
    assert_int_equal(store_history(conn, &all, &arena, &h, &err), ERR_OK);
    assert_int_equal(h.n, 5);
    for (size_t i = 1; i < h.n; i++) {
        assert_true(h.versions[i - 1].seq > h.versions[i].seq);
        assert_true(h.versions[i - 1].updated_us > h.versions[i].updated_us);
    }
    /* _since keeps the newer ones */
    all.since_us = h.versions[1].updated_us;
    assert_int_equal(store_history(conn, &all, &arena, &h, &err), ERR_OK);
    assert_int_equal(h.n, 2);

    arena_release(&arena);
    store_disconnect(conn);
    store_close(store);
    err_release(&err);
}

static status_t fail_txn(store_txn_t *txn, void *arg, err_t *err)
{
    return put_txn(txn, arg, err);
}

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int remaining;
    int failures;
} batch_t;

static void batch_done(void *arg, status_t rc, err_t *err)
{
    (void)err;
    batch_t *b = arg;
    pthread_mutex_lock(&b->lock);
    if (rc)
        b->failures++;
    b->remaining--;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

static void test_failing_transaction_rolls_back_alone(void **state)
{
    (void)state;
    store_t *store;
    err_t err = ERR_INIT;
    assert_int_equal(store_open(test_location, NULL, &store, &err), ERR_OK);
    enum { N = 200 };
    static put_arg_t args[N];
    static char ids[N][16];
    batch_t b = {.remaining = N};
    pthread_mutex_init(&b.lock, NULL);
    pthread_cond_init(&b.cond, NULL);
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof(ids[i]), "b%d", i);
        args[i] = (put_arg_t){.type = "Task",
                              .id = ids[i],
                              .json = "{}",
                              .fail_with = i % 3 == 0 ? ERR_RULE : ERR_OK};
        store_submit(store, fail_txn, &args[i], batch_done, &b);
    }
    pthread_mutex_lock(&b.lock);
    while (b.remaining)
        pthread_cond_wait(&b.cond, &b.lock);
    pthread_mutex_unlock(&b.lock);
    assert_int_equal(b.failures, (N + 2) / 3);

    store_conn_t *conn;
    assert_int_equal(store_connect(store, &conn, &err), ERR_OK);
    arena_t arena;
    arena_init(&arena);
    for (int i = 0; i < N; i++) {
        store_version_t v;
        status_t rc = store_read(conn, "Task", ids[i], 0, &arena, &v, &err);
        assert_int_equal(rc, i % 3 == 0 ? ERR_NOT_FOUND : ERR_OK);
        err_reset(&err);
    }
    arena_release(&arena);
    store_disconnect(conn);
    store_close(store);
    err_release(&err);
}

/* Transactions still queued, or committed and waiting for the sync of the WAL (SQLite's
 * writer goes on while a thread of its own syncs), when the store closes: each is reported,
 * and what was reported done is in the database when it is opened again. */
static void test_close_reports_every_transaction(void **state)
{
    (void)state;
    store_t *store;
    err_t err = ERR_INIT;
    assert_int_equal(store_open(test_location, NULL, &store, &err), ERR_OK);
    enum { N = 300 };
    static put_arg_t args[N];
    static char ids[N][16];
    batch_t b = {.remaining = N};
    pthread_mutex_init(&b.lock, NULL);
    pthread_cond_init(&b.cond, NULL);
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof(ids[i]), "c%d", i);
        args[i] = (put_arg_t){.type = "Basic", .id = ids[i], .json = "{}"};
        store_submit(store, put_txn, &args[i], batch_done, &b);
    }
    store_close(store);
    pthread_mutex_lock(&b.lock);
    assert_int_equal(b.remaining, 0);
    assert_int_equal(b.failures, 0);
    pthread_mutex_unlock(&b.lock);

    assert_int_equal(store_open(test_location, NULL, &store, &err), ERR_OK);
    store_conn_t *conn;
    assert_int_equal(store_connect(store, &conn, &err), ERR_OK);
    arena_t arena;
    arena_init(&arena);
    for (int i = 0; i < N; i++) {
        store_version_t v;
        assert_int_equal(store_read(conn, "Basic", ids[i], 0, &arena, &v, &err), ERR_OK);
    }
    arena_release(&arena);
    store_disconnect(conn);
    store_close(store);
    pthread_mutex_destroy(&b.lock);
    pthread_cond_destroy(&b.cond);
    err_release(&err);
}

/* ---- commit hooks and scans by type ---------------------------------------------------- */

typedef struct {
    const char *id;
    bool nested_fails; /* a nested savepoint asks for a hook, then fails */
    bool fails;        /* the transaction fails after asking for a hook */
    int *ran;          /* incremented by the hook */
} hook_arg_t;

static void count_hook(void *arg)
{
    (*(int *)arg)++;
}

static status_t failing_nested(store_txn_t *txn, void *arg, err_t *err)
{
    store_txn_on_commit(txn, count_hook, arg);
    return err_set(err, ERR_RULE, NULL, "nested failure");
}

static status_t hook_txn(store_txn_t *txn, void *arg, err_t *err)
{
    hook_arg_t *a = arg;
    put_arg_t put = {.type = "Basic", .id = a->id, .json = "{}"};
    status_t rc = put_txn(txn, &put, err);
    if (rc)
        return rc;
    if (a->nested_fails) {
        assert_int_equal(store_txn_nested(txn, failing_nested, a->ran, err), ERR_RULE);
        err_reset(err);
    }
    store_txn_on_commit(txn, count_hook, a->ran);
    if (a->fails)
        return err_set(err, ERR_RULE, NULL, "failing on purpose");
    return ERR_OK;
}

static void test_commit_hooks_follow_the_commit(void **state)
{
    (void)state;
    store_t *store;
    err_t err = ERR_INIT;
    assert_int_equal(store_open(test_location, NULL, &store, &err), ERR_OK);
    int ran = 0;
    hook_arg_t ok = {.id = "a", .ran = &ran};
    assert_int_equal(store_run(store, hook_txn, &ok, &err), ERR_OK);
    assert_int_equal(ran, 1);
    /* the hook of a nested savepoint that failed does not run; the enclosing one does */
    hook_arg_t nested = {.id = "b", .nested_fails = true, .ran = &ran};
    assert_int_equal(store_run(store, hook_txn, &nested, &err), ERR_OK);
    assert_int_equal(ran, 2);
    /* a transaction rolled back runs none */
    hook_arg_t failing = {.id = "c", .fails = true, .ran = &ran};
    assert_int_equal(store_run(store, hook_txn, &failing, &err), ERR_RULE);
    err_reset(&err);
    assert_int_equal(ran, 2);

    /* scans: every type, or one */
    put_ok(store, "Patient", "p1", "{}", 1);
    put_ok(store, "Basic", "d", "{}", 1);
    store_conn_t *conn;
    assert_int_equal(store_connect(store, &conn, &err), ERR_OK);
    arena_t arena;
    arena_init(&arena);
    store_scan_row_t *rows;
    size_t n;
    assert_int_equal(store_scan(conn, NULL, 0, 10, &arena, &rows, &n, &err), ERR_OK);
    assert_int_equal(n, 4);
    assert_int_equal(store_scan(conn, "Basic", 0, 10, &arena, &rows, &n, &err), ERR_OK);
    assert_int_equal(n, 3);
    assert_string_equal(rows[0].id, "a");
    assert_string_equal(rows[2].id, "d");
    assert_int_equal(store_scan(conn, "Basic", rows[1].rid, 10, &arena, &rows, &n, &err), ERR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].id, "d");
    assert_int_equal(store_scan(conn, "Patient", 0, 10, &arena, &rows, &n, &err), ERR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].id, "p1");
    assert_int_equal(store_scan(conn, "Observation", 0, 10, &arena, &rows, &n, &err), ERR_OK);
    assert_int_equal(n, 0);
    arena_release(&arena);
    store_disconnect(conn);
    store_close(store);
    err_release(&err);
}

/* ---- faults: a driver whose Nth transaction-test_location call fails -------------------- */

static store_driver_t faulty;
static int calls_left;

static bool fault_now(void)
{
    return __atomic_sub_fetch(&calls_left, 1, __ATOMIC_SEQ_CST) == 0;
}

static status_t faulty_put(void *conn, const store_put_t *put, int64_t us, const char *text,
                           int64_t *seq, err_t *err)
{
    if (fault_now())
        return err_set(err, ERR_STORAGE, NULL, "injected fault in put");
    return test_driver->driver->put(conn, put, us, text, seq, err);
}

static status_t faulty_commit(void *conn, err_t *err)
{
    if (fault_now())
        return err_set(err, ERR_STORAGE, NULL, "injected fault in commit");
    return test_driver->driver->commit(conn, err);
}

static status_t faulty_begin(void *conn, err_t *err)
{
    if (fault_now())
        return err_set(err, ERR_STORAGE, NULL, "injected fault in begin");
    return test_driver->driver->begin(conn, err);
}

static void test_faults_leave_database_intact(void **state)
{
    (void)state;
    faulty = *test_driver->driver;
    faulty.put = faulty_put;
    faulty.commit = faulty_commit;
    faulty.begin = faulty_begin;
    /* for each position of the fault in a sequence of writes, every write either succeeded
     * completely or left nothing, and the store reports exactly what happened */
    for (int n = 1; n <= 12; n++) {
        test_db_wipe();
        store_t *store;
        err_t err = ERR_INIT;
        calls_left = 1000000;
        assert_int_equal(store__open_driver(&faulty, test_location, NULL, &store, &err), ERR_OK);
        calls_left = n;
        char ids[4][16];
        status_t results[4];
        for (int i = 0; i < 4; i++) {
            snprintf(ids[i], sizeof(ids[i]), "f%d", i);
            put_arg_t a = {.type = "Patient", .id = ids[i], .json = "{\"ok\":true}"};
            results[i] = store_run(store, put_txn, &a, &err);
            err_reset(&err);
        }
        calls_left = 1000000;
        store_conn_t *conn;
        assert_int_equal(store_connect(store, &conn, &err), ERR_OK);
        arena_t arena;
        arena_init(&arena);
        int failures = 0;
        for (int i = 0; i < 4; i++) {
            store_version_t v;
            status_t rc = store_read(conn, "Patient", ids[i], 0, &arena, &v, &err);
            err_reset(&err);
            if (results[i]) {
                failures++;
                assert_int_equal(rc, ERR_NOT_FOUND);
            } else {
                assert_int_equal(rc, ERR_OK);
                assert_string_equal(v.json, "{\"ok\":true}");
            }
        }
        if (n <= 12)
            assert_int_equal(failures, 1);
        /* the store still works after the fault */
        put_ok(store, "Patient", "after", "{}", 1);
        arena_release(&arena);
        store_disconnect(conn);
        store_close(store);
        err_release(&err);
    }
}

/* ---- bulk loads: dropping the search indexes and building them again ---------------- */

typedef struct {
    bool defer;
    int first, count;
} bulk_arg_t;

static const char *bulk_resource(arena_t *arena, int i)
{
    return arena_printf(arena,
                        "{\"resourceType\":\"Observation\",\"id\":\"o%d\",\"status\":\"final\","
                        "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":"
                        "\"%d-7\"}],\"text\":\"Größe %d\"},\"subject\":{\"reference\":"
                        "\"Patient/p%d\"},\"effectiveDateTime\":\"2024-0%d-1%dT10:00:00Z\","
                        "\"valueQuantity\":{\"value\":%d.5,\"unit\":\"kg\",\"system\":"
                        "\"http://unitsofmeasure.org\",\"code\":\"kg\"}}",
                        i, i % 7, i, i % 5, 1 + i % 9, i % 10, 40 + i);
}

static status_t bulk_txn(store_txn_t *txn, void *arg, err_t *err)
{
    bulk_arg_t *a = arg;
    status_t rc;
    if (a->defer && (rc = store_txn_defer_indexes(txn, err)))
        return rc;
    for (int i = a->first; i < a->first + a->count; i++) {
        arena_t arena;
        arena_init(&arena);
        const char *text = bulk_resource(&arena, i);
        json_t *json = jv_parse(text, strlen(text), err);
        assert_non_null(json);
        fhir_index_rows_t rows;
        assert_int_equal(fhir_index_extract(NULL, json, &arena, &rows, err), ERR_OK);
        store_current_t current;
        const char *id = arena_printf(&arena, "o%d", i);
        assert_int_equal(store_txn_current(txn, "Observation", id, &current, err), ERR_OK);
        store_put_t put = {.type = "Observation",
                           .id = id,
                           .version = current.version + 1,
                           .method = "PUT",
                           .status = current.version ? 200 : 201,
                           .json = text,
                           .json_len = strlen(text),
                           .index = &rows};
        rc = store_txn_put(txn, &put, NULL, err);
        json_decref(json);
        arena_release(&arena);
        if (rc)
            return rc;
    }
    return ERR_OK;
}

/* Every index row and every index definition of the database at db_path, as text. */
static char *dump_index(const char *db_path)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    buf_t b = BUF_INIT;
    static const char *const queries[] = {
        "SELECT name || ': ' || sql FROM sqlite_master WHERE type = 'index' ORDER BY name",
        "SELECT 'string', rid, type, param, normalized, exact FROM ix_string ORDER BY 2, 3, 4, 5, "
        "6",
        "SELECT 'token', rid, type, param, system, code, text FROM ix_token ORDER BY 2, 3, 4, 5, "
        "6, 7",
        "SELECT 'date', * FROM ix_date ORDER BY 2, 3, 4, 5, 6",
        "SELECT 'quantity', * FROM ix_quantity ORDER BY 2, 3, 4, 5, 6, 7, 8, 9",
        "SELECT 'reference', * FROM ix_reference ORDER BY 2, 3, 4, 5, 6",
        "SELECT 'composite', * FROM ix_composite ORDER BY 2, 3, 4, 5, 6, 7",
        "SELECT 'deferred', * FROM deferred_index",
    };
    for (size_t q = 0; q < sizeof(queries) / sizeof(queries[0]); q++) {
        sqlite3_stmt *stmt;
        assert_int_equal(sqlite3_prepare_v2(db, queries[q], -1, &stmt, NULL), SQLITE_OK);
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            for (int c = 0; c < sqlite3_column_count(stmt); c++) {
                const unsigned char *t = sqlite3_column_text(stmt, c);
                buf_addf(&b, "%s|", t ? (const char *)t : "NULL");
            }
            buf_addch(&b, '\n');
        }
        sqlite3_finalize(stmt);
    }
    sqlite3_close(db);
    char *out = strdup(b.ptr ? b.ptr : "");
    buf_release(&b);
    return out;
}

static void bulk_run(store_t *store, bool defer, int first, int count)
{
    bulk_arg_t a = {.defer = defer, .first = first, .count = count};
    err_t err = ERR_INIT;
    assert_int_equal(store_run(store, bulk_txn, &a, &err), ERR_OK);
    err_release(&err);
}

static void test_bulk_load_writes_the_same_index(void **state)
{
    (void)state;
    char other[160];
    snprintf(other, sizeof(other), "%s/other.db", test_dir);
    store_t *normal, *bulk;
    err_t err = ERR_INIT;
    assert_int_equal(store_open(test_location, NULL, &normal, &err), ERR_OK);
    assert_int_equal(store_open(other, NULL, &bulk, &err), ERR_OK);
    /* the same writes, and updates of some: row by row, and with the indexes dropped and
       built again when the store is opened again */
    bulk_run(normal, false, 0, 40);
    bulk_run(normal, false, 30, 20);
    bulk_run(bulk, true, 0, 40);
    char *during = dump_index(other);
    assert_null(strstr(during, "ix_token_value:"));
    assert_non_null(strstr(during, "deferred|ix_token_value|"));
    /* the indexes by resource stay: the updates below delete their old rows through them */
    assert_non_null(strstr(during, "ix_token_rid: CREATE INDEX"));
    assert_null(strstr(during, "deferred|ix_token_rid|"));
    free(during);
    bulk_run(bulk, false, 30, 20);
    store_close(normal);
    store_close(bulk);
    assert_int_equal(store_open(other, NULL, &bulk, &err), ERR_OK);
    store_close(bulk);
    char *a = dump_index(test_location), *b = dump_index(other);
    assert_non_null(strstr(a, "ix_token_value:"));
    assert_non_null(strstr(a, "token|1|Observation|code|http://loinc.org|0-7|"));
    assert_string_equal(a, b);
    free(a);
    free(b);
    err_release(&err);
}

static status_t put_json_txn(store_txn_t *txn, void *arg, err_t *err)
{
    const char *const *a = arg; /* id, json */
    arena_t arena;
    arena_init(&arena);
    json_t *json = jv_parse(a[1], strlen(a[1]), err);
    assert_non_null(json);
    fhir_index_rows_t rows;
    assert_int_equal(fhir_index_extract(NULL, json, &arena, &rows, err), ERR_OK);
    store_current_t current;
    assert_int_equal(store_txn_current(txn, "Observation", a[0], &current, err), ERR_OK);
    store_put_t put = {.type = "Observation",
                       .id = a[0],
                       .version = current.version + 1,
                       .method = "PUT",
                       .status = current.version ? 200 : 201,
                       .json = a[1],
                       .json_len = strlen(a[1]),
                       .index = &rows};
    status_t rc = store_txn_put(txn, &put, NULL, err);
    json_decref(json);
    arena_release(&arena);
    return rc;
}

static void put_json(store_t *store, const char *id, const char *json)
{
    const char *arg[] = {id, json};
    err_t err = ERR_INIT;
    assert_int_equal(store_run(store, put_json_txn, arg, &err), ERR_OK);
    err_release(&err);
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The index rows of Observation/id in every index table, without rid, sorted; with rowids
 * when with_rowid. */
static char *index_rows_of(const char *id, bool with_rowid)
{
    static const char *const tables[] = {"ix_string",   "ix_token",     "ix_date", "ix_number",
                                         "ix_quantity", "ix_reference", "ix_uri",  "ix_composite",
                                         "ix_of_type",  "ix_position"};
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(test_location, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    buf_t b = BUF_INIT;
    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "SELECT x.rowid, x.* FROM %s x JOIN resource r ON r.rid = x.rid "
                 "WHERE r.type = 'Observation' AND r.id = ?1",
                 tables[t]);
        sqlite3_stmt *stmt;
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
        sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
        char *lines[256];
        size_t n = 0;
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            buf_t line = BUF_INIT;
            buf_addf(&line, "%s", tables[t]);
            for (int c = 0; c < sqlite3_column_count(stmt); c++) {
                if (c == 1 || (c == 0 && !with_rowid))
                    continue; /* rid; rowid */
                const unsigned char *v = sqlite3_column_text(stmt, c);
                buf_addf(&line, "|%s", v ? (const char *)v : "NULL");
            }
            assert_true(n < 256);
            lines[n++] = strdup(line.ptr);
            buf_release(&line);
        }
        sqlite3_finalize(stmt);
        qsort(lines, n, sizeof(*lines), compare_strings);
        for (size_t i = 0; i < n; i++) {
            buf_addf(&b, "%s\n", lines[i]);
            free(lines[i]);
        }
    }
    sqlite3_close(db);
    char *out = strdup(b.ptr ? b.ptr : "");
    buf_release(&b);
    return out;
}

#define OBSERVATION(id, status, coding2, date, value, component2)                                \
    "{\"resourceType\":\"Observation\",\"id\":\"" id "\",\"status\":\"" status "\","             \
    "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"85354-9\"},"              \
    "{\"system\":\"http://loinc.org\",\"code\":\"85354-9\"}," coding2 "]},"                      \
    "\"subject\":{\"reference\":\"Patient/p1\"},\"effectiveDateTime\":\"" date "\","             \
    "\"valueQuantity\":{\"value\":" value ",\"unit\":\"mmHg\",\"system\":"                       \
    "\"http://unitsofmeasure.org\",\"code\":\"mm[Hg]\"},\"component\":[{\"code\":{\"coding\":"   \
    "[{\"system\":\"http://loinc.org\",\"code\":\"8480-6\"}]},\"valueQuantity\":{\"value\":120," \
    "\"system\":\"http://unitsofmeasure.org\",\"code\":\"mm[Hg]\"}}" component2 "]}"

/* An update keeps the index rows that stay equal (same rowid: not deleted and written again)
 * and leaves exactly the rows a first write of the new version makes: changed values replaced,
 * removed ones gone, a component and a coding less, none at all, and back. */
static void test_an_update_rewrites_only_the_index_rows_that_change(void **state)
{
    (void)state;
    store_t *store;
    err_t err = ERR_INIT;
    assert_int_equal(store_open(test_location, NULL, &store, &err), ERR_OK);
    const char *v1 = OBSERVATION("a", "preliminary",
                                 "{\"system\":\"http://snomed.info/sct\",\"code\":\"75367002\"}",
                                 "2026-11-20T10:00:00Z", "97.5",
                                 ",{\"code\":{\"coding\":[{\"system\":\"http://loinc.org\","
                                 "\"code\":\"8462-4\"}]},\"valueQuantity\":{\"value\":80}}");
    const char *v2 =
        OBSERVATION("a", "final", "{\"system\":\"http://loinc.org\",\"code\":\"85354-9\"}",
                    "2026-11-21T09:30:00Z", "97.5", "");
    const char *empty = "{\"resourceType\":\"Observation\",\"id\":\"a\",\"status\":\"final\","
                        "\"code\":{\"text\":\"none\"}}";
    put_json(store, "a", v1);
    char *before = index_rows_of("a", true);
    put_json(store, "a", v2);
    char *after = index_rows_of("a", true);
    /* the same as a first write of v2 */
    char *fresh_text = strdup(v2);
    memcpy(strstr(fresh_text, "\"id\":\"a\"") + 6, "b", 1);
    put_json(store, "b", fresh_text);
    char *updated = index_rows_of("a", false), *fresh = index_rows_of("b", false);
    assert_string_equal(updated, fresh);
    /* the subject's reference row and the value's quantity row stayed where they were */
    const char *subject = strstr(before, "ix_reference|");
    assert_non_null(subject);
    char kept[256];
    snprintf(kept, sizeof(kept), "%.*s", (int)(strchr(subject, '\n') - subject), subject);
    assert_non_null(strstr(after, kept));
    const char *quantity = strstr(before, "ix_quantity|");
    snprintf(kept, sizeof(kept), "%.*s", (int)(strchr(quantity, '\n') - quantity), quantity);
    assert_non_null(strstr(kept, "97.5"));
    assert_non_null(strstr(after, kept));
    /* the status row changed, so it was written anew */
    assert_non_null(strstr(before, "|status|http://hl7.org/fhir/observation-status|preliminary|"));
    assert_null(strstr(after, "preliminary"));
    /* to nothing indexed but the status and the code's text (and no patient), and back */
    put_json(store, "a", empty);
    char *none = index_rows_of("a", false);
    assert_null(strstr(none, "|subject|"));
    assert_non_null(strstr(none, "ix_reference|Observation|_unlinked|"));
    assert_null(strstr(none, "ix_quantity"));
    put_json(store, "a", v2);
    char *again = index_rows_of("a", false);
    assert_string_equal(again, fresh);
    free(before);
    free(after);
    free(fresh_text);
    free(updated);
    free(fresh);
    free(none);
    free(again);
    store_close(store);
    err_release(&err);
}

static void test_interrupted_bulk_load_is_repaired_at_open(void **state)
{
    (void)state;
    store_t *normal, *bulk;
    err_t err = ERR_INIT;
    char other[160];
    snprintf(other, sizeof(other), "%s/other.db", test_dir);
    assert_int_equal(store_open(test_location, NULL, &normal, &err), ERR_OK);
    bulk_run(normal, false, 0, 10);
    store_close(normal);
    /* dropped and written in one transaction, then the process stops (a child that exits
       without closing the store) */
    pid_t child = fork();
    if (child == 0) {
        assert_int_equal(store_open(other, NULL, &bulk, &err), ERR_OK);
        bulk_run(bulk, true, 0, 10);
        _exit(0);
    }
    int wstatus;
    assert_int_equal(waitpid(child, &wstatus, 0), child);
    assert_true(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
    char *before = dump_index(other);
    assert_null(strstr(before, "ix_date_low:"));
    free(before);
    assert_int_equal(store_open(other, NULL, &bulk, &err), ERR_OK);
    store_close(bulk);
    char *a = dump_index(test_location), *b = dump_index(other);
    assert_string_equal(a, b);
    free(a);
    free(b);
    err_release(&err);
}

typedef struct {
    store_t *store;
    int index;
} runner_t;

static void *run_on_thread(void *arg)
{
    runner_t *r = arg;
    store_conn_t *conn;
    err_t err = ERR_INIT;
    assert_int_equal(store_connect(r->store, &conn, &err), ERR_OK);
    for (int i = 0; i < 25; i++) {
        char id[32];
        snprintf(id, sizeof(id), "r%d-%d", r->index, i);
        put_arg_t a = {.type = "Basic", .id = id, .json = "{\"resourceType\":\"Basic\"}"};
        assert_int_equal(store_run_on(conn, put_txn, &a, i % 2 == 0, &err), ERR_OK);
        assert_int_equal(a.version, 1);
    }
    /* a failing transaction leaves nothing */
    put_arg_t bad = {.type = "Basic", .id = "never", .json = "{}", .fail_with = ERR_RULE};
    char id[32];
    snprintf(id, sizeof(id), "never-%d", r->index);
    bad.id = id;
    assert_int_equal(store_run_on(conn, put_txn, &bad, false, &err), ERR_RULE);
    err_release(&err);
    store_disconnect(conn);
    return NULL;
}

/* Transactions run on callers' own connections (store_run_on) at once, alongside the
 * writer's: every one committed or rolled back alone, their times distinct. */
static void test_run_on_connections(void **state)
{
    (void)state;
    store_t *store;
    err_t err = ERR_INIT;
    assert_int_equal(store_open(test_location, NULL, &store, &err), ERR_OK);
    pthread_t threads[4];
    runner_t runners[4];
    for (int i = 0; i < 4; i++) {
        runners[i] = (runner_t){store, i};
        pthread_create(&threads[i], NULL, run_on_thread, &runners[i]);
    }
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof(id), "w%d", i);
        put_ok(store, "Basic", id, "{\"resourceType\":\"Basic\"}", 1);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    store_conn_t *conn;
    assert_int_equal(store_connect(store, &conn, &err), ERR_OK);
    int64_t count = 0;
    assert_int_equal(store_count(conn, "Basic", &count, &err), ERR_OK);
    assert_int_equal(count, 4 * 25 + 10);
    arena_t arena;
    arena_init(&arena);
    store_version_t v;
    assert_int_equal(store_read(conn, "Basic", "never-0", 0, &arena, &v, &err), ERR_NOT_FOUND);
    err_reset(&err);
    /* every version has a time of its own */
    store_history_query_t q = {.since_us = INT64_MIN, .before_seq = INT64_MAX, .count = 200};
    store_history_t h;
    assert_int_equal(store_history(conn, &q, &arena, &h, &err), ERR_OK);
    assert_int_equal(h.n, 110);
    for (size_t i = 0; i < h.n; i++)
        for (size_t j = i + 1; j < h.n; j++)
            assert_true(h.versions[i].updated_us != h.versions[j].updated_us);
    arena_release(&arena);
    store_disconnect(conn);
    store_close(store);
    err_release(&err);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* The writer's commits leave the WAL to the checkpointer: it is copied into the database as it
 * grows, and however much is written it stays under about 8,000 pages (the writer copies what
 * is left itself past that); the database file holds the data. */
static void test_the_wal_is_checkpointed_apart(void **state)
{
    (void)state;
    store_t *store;
    err_t err = ERR_INIT;
    assert_int_equal(store_open(test_location, NULL, &store, &err), ERR_OK);
    char wal[600];
    snprintf(wal, sizeof(wal), "%s-wal", test_location);
    /* about 100 MB of pages through the WAL, in 2,000 commits */
    char *json = malloc(60000);
    for (int i = 0; i < 2000; i++) {
        int n = snprintf(json, 60000,
                         "{\"resourceType\":\"Basic\",\"id\":\"b%d\",\"code\":{"
                         "\"text\":\"",
                         i);
        memset(json + n, 'a' + i % 26, 50000);
        strcpy(json + n + 50000, "\"}}");
        char id[16];
        snprintf(id, sizeof(id), "b%d", i);
        put_ok(store, "Basic", id, json, 1);
    }
    free(json);
    /* a checkpoint may still be running: give it a moment */
    for (int i = 0; i < 50 && file_size(wal) > 40L << 20; i++)
        usleep(100000);
    assert_true(file_size(wal) < 40L << 20);
    assert_true(file_size(test_location) > 90L << 20);
    store_close(store);
    err_release(&err);
}

/* With synchronous=FULL the writer's commits leave the WAL's sync to the store's syncer
 * thread (sync_commits); with NORMAL or OFF there is nothing to sync. */
static void test_the_writer_leaves_the_sync_to_the_syncer(void **state)
{
    (void)state;
    static const struct {
        store_sync_t sync;
        bool defers;
    } cases[] = {{STORE_SYNC_FULL, true}, {STORE_SYNC_NORMAL, false}, {STORE_SYNC_OFF, false}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const store_driver_t *d = &store__sqlite_driver;
        store_options_t options;
        store_options_init(&options);
        options.synchronous = cases[i].sync;
        err_t err = ERR_INIT;
        void *db, *conn;
        int version;
        assert_int_equal(d->open(test_location, &options, &db, &err), ERR_OK);
        assert_int_equal(d->migrate(db, &version, &err), ERR_OK);
        assert_int_equal(d->connect(db, true, &conn, &err), ERR_OK);
        assert_int_equal(d->defers_sync(conn), cases[i].defers);
        assert_int_equal(d->begin(conn, &err), ERR_OK);
        assert_int_equal(d->commit(conn, &err), ERR_OK);
        if (cases[i].defers)
            assert_int_equal(d->sync_commits(conn, &err), ERR_OK);
        d->disconnect(conn);
        d->close(db);
        err_release(&err);
    }
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_open_migrate_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_versions_read_and_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_transaction_rolls_back_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_reports_every_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_hooks_follow_the_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faults_leave_database_intact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_on_connections, setup, teardown),
    };
    const struct CMUnitTest sqlite_only[] = {
        cmocka_unit_test(test_open_failure_is_an_error),
        cmocka_unit_test_setup_teardown(test_bulk_load_writes_the_same_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_update_rewrites_only_the_index_rows_that_change,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_bulk_load_is_repaired_at_open, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_wal_is_checkpointed_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_writer_leaves_the_sync_to_the_syncer, setup,
                                        teardown),
    };
    return test_run_on_drivers("store/sqlite", both, TEST_COUNT(both), sqlite_only,
                               TEST_COUNT(sqlite_only), NULL, 0);
}
