/*
 * Tests for src/auth/audit.c and the audit rows of src/store and src/repo on both drivers:
 * queued records stored and sealed into one contiguous chain that verifies, concurrent
 * writers (and, on PostgreSQL, two processes' trails) sealing one chain, the verifier's
 * verdict on records changed, removed or renumbered with raw SQL, a full queue that makes its
 * caller wait, close storing what is queued, and a write's row in its own transaction.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/audit.h"
#include "repo/repo.h"
#include "repo/scope.h"
#include "store/store.h"
#include "unit/store/drivers.h"

static store_t *store;
static store_conn_t *conn;
static arena_t arena;

static int setup(void **state)
{
    test_db_setup(state);
    test_store_open(&store, &conn);
    arena_init(&arena);
    return 0;
}

static int teardown(void **state)
{
    arena_release(&arena);
    store_disconnect(conn);
    store_close(store);
    return test_db_teardown(state);
}

/* Raw SQL on the test database, as someone with access to it would tamper. */
static void raw(const char *sql)
{
    if (test_is_pg()) {
        test_pg_query(sql);
        return;
    }
    sqlite3 *db;
    assert_int_equal(sqlite3_open(test_location, &db), SQLITE_OK);
    char *message = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &message) != SQLITE_OK)
        fail_msg("%s: %s", sql, message);
    sqlite3_close(db);
}

static void record(auth_audit_t *audit, const char *user, const char *patient, int i)
{
    char id[32];
    snprintf(id, sizeof(id), "o%d", i);
    store_audit_row_t row = {.user = user,
                             .role = "nurse",
                             .client = "app",
                             .patient = patient,
                             .action = "read",
                             .type = "Observation",
                             .resource_id = id,
                             .outcome = "200",
                             .source = "192.0.2.7"};
    auth_audit_record(audit, &row, 1);
}

/* Every row, sealed or not, newest first. */
static size_t all_rows(store_audit_row_t **out)
{
    store_audit_query_t q = {.from_us = INT64_MIN, .to_us = INT64_MAX, .count = 1000000};
    size_t n;
    err_t err = ERR_INIT;
    assert_int_equal(store_audit_search(conn, &q, &arena, out, &n, &err), ERR_OK);
    err_release(&err);
    return n;
}

/* Every sealed row has a seq of 1..n, none twice. */
static void assert_contiguous(size_t expected)
{
    store_audit_row_t *rows;
    size_t n = all_rows(&rows);
    assert_int_equal(n, expected);
    char *seen = calloc(n + 1, 1);
    for (size_t i = 0; i < n; i++) {
        assert_true(rows[i].seq >= 1 && rows[i].seq <= (int64_t)n);
        assert_int_equal(seen[rows[i].seq], 0);
        seen[rows[i].seq] = 1;
        assert_non_null(rows[i].hash);
    }
    free(seen);
}

static chain_report_t verify(const unsigned char *expected_last)
{
    chain_report_t report;
    err_t err = ERR_INIT;
    assert_int_equal(auth_audit_verify(conn, expected_last, &report, &err), ERR_OK);
    err_release(&err);
    return report;
}

static void test_sealed_contiguous_and_verified(void **state)
{
    (void)state;
    auth_audit_t *audit;
    err_t err = ERR_INIT;
    assert_int_equal(auth_audit_open(store, NULL, &audit, &err), ERR_OK);
    for (int i = 0; i < 25; i++)
        record(audit, "jane", "pat1", i);
    assert_int_equal(auth_audit_flush(audit, &err), ERR_OK);
    assert_contiguous(25);
    chain_report_t report = verify(NULL);
    assert_int_equal(report.fault, CHAIN_INTACT);
    assert_int_equal(report.checked, 25);
    /* the head the database keeps is the last record's hash */
    int64_t seq;
    const char *head;
    assert_int_equal(store_audit_head(conn, &arena, &seq, &head, &err), ERR_OK);
    assert_int_equal(seq, 25);
    char hex[65];
    auth_audit_hex(report.last_hash, hex);
    assert_string_equal(head, hex);
    /* sealed in insertion order: seq 1 is the first recorded */
    store_audit_row_t *rows;
    size_t n = all_rows(&rows);
    assert_int_equal(rows[n - 1].seq, 1);
    assert_string_equal(rows[n - 1].resource_id, "o0");
    assert_string_equal(rows[n - 1].source, "192.0.2.7");
    /* an anchored hash must be where the walk ends */
    assert_int_equal(verify(report.last_hash).fault, CHAIN_INTACT);
    unsigned char other[CHAIN_HASH_SIZE] = {7};
    report = verify(other);
    assert_int_equal(report.fault, CHAIN_END_CHANGED);
    assert_int_equal(report.seq, 25);
    auth_audit_close(audit);
    err_release(&err);
}

/* ---- concurrent writers ---------------------------------------------------------------- */

#define WRITERS     4
#define PER_WRITER  300
#define DIRECT_ROWS 40

static void *writer(void *arg)
{
    auth_audit_t *audit = arg;
    for (int i = 0; i < PER_WRITER; i++)
        record(audit, "omar", "pat2", i);
    return NULL;
}

static status_t direct_txn(store_txn_t *txn, void *arg, err_t *err)
{
    (void)arg;
    store_audit_row_t row = {.time_us = store_txn_time_us(txn),
                             .user = "li",
                             .action = "create",
                             .type = "Observation",
                             .outcome = "201"};
    return store_txn_audit_add(txn, &row, 1, err);
}

static void *direct_writer(void *arg)
{
    store_t *s = arg;
    for (int i = 0; i < DIRECT_ROWS; i++) {
        err_t err = ERR_INIT;
        assert_int_equal(store_run(s, direct_txn, NULL, &err), ERR_OK);
        err_release(&err);
    }
    return NULL;
}

static void test_concurrent_writers_one_chain(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    auth_audit_options_t options;
    auth_audit_options_init(&options);
    options.batch = 64;
    auth_audit_t *audit;
    assert_int_equal(auth_audit_open(store, &options, &audit, &err), ERR_OK);
    /* on PostgreSQL a second store is a second process on the same database */
    store_t *other = NULL;
    auth_audit_t *other_audit = NULL;
    if (test_is_pg()) {
        store_options_t so;
        store_options_init(&so);
        assert_int_equal(store_open(test_location, &so, &other, &err), ERR_OK);
        assert_int_equal(auth_audit_open(other, &options, &other_audit, &err), ERR_OK);
    }
    pthread_t threads[WRITERS + 2];
    for (int i = 0; i < WRITERS; i++)
        pthread_create(&threads[i], NULL, writer, i % 2 && other_audit ? other_audit : audit);
    pthread_create(&threads[WRITERS], NULL, direct_writer, store);
    pthread_create(&threads[WRITERS + 1], NULL, direct_writer, other ? other : store);
    for (int i = 0; i < WRITERS + 2; i++)
        pthread_join(threads[i], NULL);
    if (other_audit) {
        assert_int_equal(auth_audit_flush(other_audit, &err), ERR_OK);
        auth_audit_close(other_audit);
        store_close(other);
    }
    assert_int_equal(auth_audit_flush(audit, &err), ERR_OK);
    size_t total = WRITERS * PER_WRITER + 2 * DIRECT_ROWS;
    assert_contiguous(total);
    chain_report_t report = verify(NULL);
    assert_int_equal(report.fault, CHAIN_INTACT);
    assert_int_equal(report.checked, (int64_t)total);
    auth_audit_close(audit);
    err_release(&err);
}

/* ---- tampering ------------------------------------------------------------------------- */

static void trail_of(int n)
{
    auth_audit_t *audit;
    err_t err = ERR_INIT;
    assert_int_equal(auth_audit_open(store, NULL, &audit, &err), ERR_OK);
    for (int i = 0; i < n; i++)
        record(audit, "ana", "pat3", i);
    auth_audit_close(audit);
    err_release(&err);
    assert_int_equal(verify(NULL).fault, CHAIN_INTACT);
}

static const char *describe(const chain_report_t *report)
{
    buf_t out = BUF_INIT;
    chain_describe(report, &out);
    const char *s = arena_strdup(&arena, out.ptr);
    buf_release(&out);
    return s;
}

static void test_tampering_found(void **state)
{
    (void)state;
    trail_of(10);
    /* a changed field */
    raw("UPDATE audit SET username = 'mallory' WHERE seq = 3");
    chain_report_t report = verify(NULL);
    assert_int_equal(report.fault, CHAIN_ALTERED);
    assert_int_equal(report.seq, 3);
    assert_int_equal(report.checked, 2);
    assert_string_equal(describe(&report),
                        "audit record 3 is altered: its stored hash does not follow from its "
                        "content and the record before it");
    raw("UPDATE audit SET username = 'ana' WHERE seq = 3");
    assert_int_equal(verify(NULL).fault, CHAIN_INTACT);
    /* seq numbers swapped: the record at 6 does not belong there */
    raw("UPDATE audit SET seq = -6 WHERE seq = 6");
    raw("UPDATE audit SET seq = 6 WHERE seq = 7");
    raw("UPDATE audit SET seq = 7 WHERE seq = -6");
    report = verify(NULL);
    assert_int_equal(report.fault, CHAIN_ALTERED);
    assert_int_equal(report.seq, 6);
    raw("UPDATE audit SET seq = -6 WHERE seq = 6");
    raw("UPDATE audit SET seq = 6 WHERE seq = 7");
    raw("UPDATE audit SET seq = 7 WHERE seq = -6");
    assert_int_equal(verify(NULL).fault, CHAIN_INTACT);
    /* a deleted record */
    raw("DELETE FROM audit WHERE seq = 5");
    report = verify(NULL);
    assert_int_equal(report.fault, CHAIN_MISSING);
    assert_int_equal(report.seq, 5);
    assert_int_equal(report.found, 6);
    assert_string_equal(describe(&report),
                        "audit record 5 is missing: record 6 comes where it should be");
}

static void test_newest_removed(void **state)
{
    (void)state;
    trail_of(8);
    unsigned char anchor[CHAIN_HASH_SIZE];
    memcpy(anchor, verify(NULL).last_hash, CHAIN_HASH_SIZE);
    raw("DELETE FROM audit WHERE seq = 8");
    /* the chain head in the database still says 8 */
    chain_report_t report = verify(NULL);
    assert_int_equal(report.fault, CHAIN_END_CHANGED);
    assert_int_equal(report.seq, 7);
    /* and with the head rewritten too, the anchor kept elsewhere still tells */
    raw("UPDATE audit_head SET last_seq = 7, last_hash = (SELECT hash FROM audit WHERE seq = 7)");
    assert_int_equal(verify(NULL).fault, CHAIN_INTACT);
    report = verify(anchor);
    assert_int_equal(report.fault, CHAIN_END_CHANGED);
    assert_int_equal(report.seq, 7);
}

/* ---- a full queue ---------------------------------------------------------------------- */

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open, gate_entered;

/* Holds the store's writer until the gate opens, so that the trail cannot store. */
static status_t gate_txn(store_txn_t *txn, void *arg, err_t *err)
{
    (void)txn;
    (void)arg;
    (void)err;
    pthread_mutex_lock(&gate_lock);
    gate_entered = true;
    pthread_cond_broadcast(&gate_cond);
    while (!gate_open)
        pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
    return ERR_OK;
}

static void gate_done(void *arg, status_t rc, err_t *err)
{
    (void)arg;
    (void)rc;
    (void)err;
}

static atomic_int produced;

static void *producer(void *arg)
{
    auth_audit_t *audit = arg;
    for (int i = 0; i < 20; i++) {
        record(audit, "sam", "pat4", i);
        atomic_fetch_add(&produced, 1);
    }
    return NULL;
}

static void test_full_queue_waits(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    auth_audit_options_t options;
    auth_audit_options_init(&options);
    options.queue_max = 8;
    options.batch = 4;
    auth_audit_t *audit;
    assert_int_equal(auth_audit_open(store, &options, &audit, &err), ERR_OK);
    gate_open = gate_entered = false;
    store_submit(store, gate_txn, NULL, gate_done, NULL);
    pthread_mutex_lock(&gate_lock);
    while (!gate_entered)
        pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
    atomic_store(&produced, 0);
    pthread_t thread;
    pthread_create(&thread, NULL, producer, audit);
    usleep(300000);
    /* the thread holds a batch it cannot store, the ring is full: the producer waits */
    int stuck = atomic_load(&produced);
    assert_true(stuck < 20);
    assert_true(stuck >= 8);
    pthread_mutex_lock(&gate_lock);
    gate_open = true;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
    pthread_join(thread, NULL);
    assert_int_equal(atomic_load(&produced), 20);
    assert_int_equal(auth_audit_flush(audit, &err), ERR_OK);
    assert_contiguous(20);
    auth_audit_close(audit);
    err_release(&err);
}

static void test_close_stores_everything(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    auth_audit_options_t options;
    auth_audit_options_init(&options);
    options.flush_us = 10 * 1000000; /* nothing would be stored before close */
    options.seal_us = 10 * 1000000;
    options.batch = 100000;
    auth_audit_t *audit;
    assert_int_equal(auth_audit_open(store, &options, &audit, &err), ERR_OK);
    for (int i = 0; i < 3000; i++)
        record(audit, "kim", "pat5", i);
    auth_audit_close(audit);
    assert_contiguous(3000);
    chain_report_t report = verify(NULL);
    assert_int_equal(report.fault, CHAIN_INTACT);
    assert_int_equal(report.checked, 3000);
    err_release(&err);
}

/* ---- a write's own row ----------------------------------------------------------------- */

static void test_write_rows_in_their_transaction(void **state)
{
    (void)state;
    /* a caller the access policy lets write anything (a service with system/ scopes): the
       row records whatever the caller carries */
    scope_set_t scopes;
    scope_parse(&arena, "system/*.cruds", strlen("system/*.cruds"), &scopes);
    repo_caller_t caller = {.kind = REPO_CALLER_SERVICE,
                            .scopes = &scopes,
                            .username = "jane",
                            .role = "nurse",
                            .client_id = "app",
                            .source = "198.51.100.4",
                            .emergency_reason = "unconscious in the ED"};
    const char *body = "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":"
                       "\"pulse\"},\"subject\":{\"reference\":\"Patient/pat9\"}}";
    repo_write_t w;
    err_t err = ERR_INIT;
    assert_int_equal(repo_prepare_create(&w, "Observation", body, strlen(body), &arena, &err),
                     ERR_OK);
    w.caller = &caller;
    assert_int_equal(repo_commit(store, &w, &err), ERR_OK);
    /* a write that fails leaves no row */
    repo_write_t again = w;
    again.action = REPO_CREATE;
    assert_int_equal(repo_commit(store, &again, &err), ERR_CONFLICT);
    err_reset(&err);
    /* the server's own write leaves none either */
    repo_write_t server;
    assert_int_equal(repo_prepare_create(&server, "Observation", body, strlen(body), &arena, &err),
                     ERR_OK);
    assert_int_equal(repo_commit(store, &server, &err), ERR_OK);
    repo_write_t del;
    repo_prepare_delete(&del, "Observation", w.id, 0, &arena, &err);
    del.caller = &caller;
    assert_int_equal(repo_commit(store, &del, &err), ERR_OK);
    store_audit_row_t *rows;
    assert_int_equal(all_rows(&rows), 2);
    assert_string_equal(rows[1].action, "create");
    assert_string_equal(rows[1].outcome, "201");
    assert_string_equal(rows[1].patient, "pat9");
    assert_string_equal(rows[1].user, "jane");
    assert_string_equal(rows[1].role, "nurse");
    assert_string_equal(rows[1].client, "app");
    assert_string_equal(rows[1].source, "198.51.100.4");
    assert_string_equal(rows[1].detail, "unconscious in the ED");
    assert_string_equal(rows[1].resource_id, w.id);
    assert_int_equal(rows[1].seq, 0); /* not sealed yet */
    assert_string_equal(rows[0].action, "delete");
    assert_string_equal(rows[0].outcome, "204");
    assert_string_equal(rows[0].patient, "pat9");
    int64_t sealed;
    assert_int_equal(auth_audit_seal(store, &sealed, &err), ERR_OK);
    assert_int_equal(sealed, 2);
    assert_int_equal(auth_audit_seal(store, &sealed, &err), ERR_OK);
    assert_int_equal(sealed, 0);
    assert_int_equal(verify(NULL).checked, 2);
    err_release(&err);
}

/* ---- a batch inserted sealed ----------------------------------------------------------- */

#define BATCH_ROWS 45 /* one insert of 32 rows, one of 8, five of one */

typedef struct {
    const store_audit_row_t *rows;
    size_t n;
} sealed_arg_t;

static status_t sealed_txn(store_txn_t *txn, void *arg, err_t *err)
{
    sealed_arg_t *a = arg;
    return auth_audit_add_sealed_txn(txn, a->rows, a->n, err);
}

static void test_batch_inserted_sealed_after_writes(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    /* three writes' rows, unsealed */
    for (int i = 0; i < 3; i++)
        assert_int_equal(store_run(store, direct_txn, NULL, &err), ERR_OK);
    store_audit_row_t batch[BATCH_ROWS];
    char ids[BATCH_ROWS][16];
    char *long_query = calloc(1, 3001);
    memset(long_query, 'q', 3000);
    for (int i = 0; i < BATCH_ROWS; i++) {
        snprintf(ids[i], sizeof(ids[i]), "b%d", i);
        batch[i] = (store_audit_row_t){.seq = 999, /* ignored: the chain numbers it */
                                       .hash = "not a hash",
                                       .time_us = 1700000000000000 + i,
                                       .user = i % 2 ? "ana" : NULL,
                                       .client = "app",
                                       .patient = i % 3 ? "pat7" : NULL,
                                       .action = i % 5 ? "read" : "search",
                                       .type = "Observation",
                                       .resource_id = ids[i],
                                       .query = i == 40 ? long_query : NULL,
                                       .outcome = "200",
                                       .source = "192.0.2.9"};
    }
    sealed_arg_t a = {batch, BATCH_ROWS};
    assert_int_equal(store_run(store, sealed_txn, &a, &err), ERR_OK);
    store_audit_row_t *rows;
    size_t n = all_rows(&rows);
    assert_int_equal(n, 3 + BATCH_ROWS);
    assert_contiguous(3 + BATCH_ROWS);
    /* newest first: the batch in order after the writes' rows, which were sealed first */
    for (size_t k = 0; k < n; k++) {
        const store_audit_row_t *r = &rows[n - 1 - k];
        assert_int_equal(r->seq, (int64_t)k + 1);
        if (k < 3) {
            assert_string_equal(r->action, "create");
            continue;
        }
        int i = (int)k - 3;
        assert_string_equal(r->resource_id, ids[i]);
        assert_int_equal(r->time_us, batch[i].time_us);
        if (batch[i].user)
            assert_string_equal(r->user, batch[i].user);
        else
            assert_null(r->user);
        if (batch[i].patient)
            assert_string_equal(r->patient, "pat7");
        else
            assert_null(r->patient);
        assert_string_equal(r->action, batch[i].action);
        if (i == 40)
            assert_string_equal(r->query, long_query);
        else
            assert_null(r->query);
    }
    chain_report_t report = verify(NULL);
    assert_int_equal(report.fault, CHAIN_INTACT);
    assert_int_equal(report.checked, 3 + BATCH_ROWS);
    /* an empty batch changes nothing */
    a.n = 0;
    assert_int_equal(store_run(store, sealed_txn, &a, &err), ERR_OK);
    assert_int_equal(verify(NULL).checked, 3 + BATCH_ROWS);
    /* a changed field of a row inserted sealed is found */
    raw("UPDATE audit SET resource_id = 'b99' WHERE seq = 20");
    report = verify(NULL);
    assert_int_equal(report.fault, CHAIN_ALTERED);
    assert_int_equal(report.seq, 20);
    free(long_query);
    err_release(&err);
}

/* Rows longer than a queue slot (their strings in a block of their own) come out whole, and
 * the records of relaxed batches are stored and durable once the trail is flushed. */
static void test_queue_long_rows_and_relaxed_batches(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    auth_audit_options_t options;
    auth_audit_options_init(&options);
    options.queue_max = 4; /* slots reused many times */
    options.batch = 2;
    options.durable_us = 20000;
    auth_audit_t *audit;
    assert_int_equal(auth_audit_open(store, &options, &audit, &err), ERR_OK);
    char detail[1200];
    memset(detail, 'd', sizeof(detail) - 1);
    detail[sizeof(detail) - 1] = '\0';
    for (int i = 0; i < 30; i++) {
        char id[16];
        snprintf(id, sizeof(id), "x%d", i);
        store_audit_row_t row = {.user = "lee",
                                 .action = "read",
                                 .type = "Patient",
                                 .resource_id = id,
                                 .outcome = "200",
                                 .detail = i % 3 == 0 ? detail : "short"};
        auth_audit_record(audit, &row, 1);
        if (i == 10)
            usleep(50000); /* a durable round between batches */
    }
    assert_int_equal(auth_audit_flush(audit, &err), ERR_OK);
    store_audit_row_t *rows;
    size_t n = all_rows(&rows);
    assert_int_equal(n, 30);
    for (size_t k = 0; k < n; k++) {
        int i = (int)(n - 1 - k);
        char id[16];
        snprintf(id, sizeof(id), "x%d", i);
        assert_string_equal(rows[k].resource_id, id);
        assert_string_equal(rows[k].detail, i % 3 == 0 ? detail : "short");
        assert_int_equal(rows[k].seq, i + 1);
    }
    assert_int_equal(verify(NULL).checked, 30);
    auth_audit_close(audit);
    err_release(&err);
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_sealed_contiguous_and_verified, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers_one_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampering_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newest_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_queue_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_stores_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_rows_in_their_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_inserted_sealed_after_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_long_rows_and_relaxed_batches, setup, teardown),
    };
    return test_run_on_drivers("auth/audit", both, TEST_COUNT(both), NULL, 0, NULL, 0);
}
