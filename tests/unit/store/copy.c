/*
 * Tests for copying a database through the store (store.h, "copying a whole database"): the
 * scan of every version with the keys of the current ones, loads that write rows with their
 * keys, the queues' scans and loads, key counters that go on after a copy, snapshots, and the
 * test that another process has an SQLite database open. The copies go from an SQLite source
 * (as concerto migrate-data's) into the database of the driver under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/jv.h"
#include "fhir/index.h"
#include "fhir/search.h"
#include "drivers.h"
#include "store/store.h"

static char source_dir[64];
static char source_path[160];
static store_t *target; /* the driver under test */
static store_t *source; /* SQLite */

static store_t *open_store(const char *location)
{
    err_t err = ERR_INIT;
    store_options_t options;
    store_options_init(&options);
    options.synchronous = STORE_SYNC_OFF;
    options.busy_timeout_ms = 200;
    store_t *store = NULL;
    assert_int_equal(store_open(location, &options, &store, &err), ERR_OK);
    err_release(&err);
    return store;
}

static int setup(void **state)
{
    test_db_setup(state);
    snprintf(source_dir, sizeof(source_dir), "/tmp/concerto-copy-XXXXXX");
    assert_non_null(mkdtemp(source_dir));
    snprintf(source_path, sizeof(source_path), "%s/source.db", source_dir);
    target = open_store(test_location);
    source = NULL;
    return 0;
}

static int teardown(void **state)
{
    if (source)
        store_close(source);
    store_close(target);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", source_dir);
    assert_int_equal(system(cmd), 0);
    return test_db_teardown(state);
}

/* ---- writing through the ordinary interface ------------------------------------------------ */

typedef struct {
    const char *type, *id, *json; /* json NULL: a delete */
    const char *author;           /* NULL: none */
} put_arg_t;

static status_t put_txn(store_txn_t *txn, void *arg, err_t *err)
{
    put_arg_t *a = arg;
    arena_t arena;
    arena_init(&arena);
    store_current_t current;
    status_t rc = store_txn_current(txn, a->type, a->id, &current, err);
    fhir_index_rows_t rows = {0};
    if (!rc && a->json) {
        json_t *resource = jv_parse(a->json, strlen(a->json), err);
        assert_non_null(resource);
        rc = fhir_index_extract(NULL, resource, &arena, &rows, err);
        json_decref(resource);
    }
    store_put_t put = {.type = a->type,
                       .id = a->id,
                       .version = current.version + 1,
                       .method = a->json ? (current.version ? "PUT" : "POST") : "DELETE",
                       .status = a->json ? (current.version ? 200 : 201) : 204,
                       .json = a->json,
                       .json_len = a->json ? strlen(a->json) : 0,
                       .index = a->json ? &rows : NULL,
                       .author = a->author};
    if (!rc)
        rc = store_txn_put(txn, &put, NULL, err);
    arena_release(&arena);
    return rc;
}

static void put_by(store_t *store, const char *type, const char *id, const char *json,
                   const char *author)
{
    put_arg_t a = {type, id, json, author};
    err_t err = ERR_INIT;
    assert_int_equal(store_run(store, put_txn, &a, &err), ERR_OK);
    err_release(&err);
}

static void put(store_t *store, const char *type, const char *id, const char *json)
{
    put_by(store, type, id, json, NULL);
}

static const char nurse[] = "{\"reference\":\"Practitioner/n1\"}";
static const char feed[] = "{\"display\":\"hl7-feed\"}";

static const char patient_a1[] =
    "{\"resourceType\":\"Patient\",\"id\":\"a\",\"name\":[{\"family\":\"Alpha\"}]}";
static const char patient_a2[] =
    "{\"resourceType\":\"Patient\",\"id\":\"a\",\"name\":[{\"family\":\"Alpher\"}]}";
static const char patient_c[] =
    "{\"resourceType\":\"Patient\",\"id\":\"c\",\"name\":[{\"family\":\"Gamma\"}],"
    "\"contained\":[{\"resourceType\":\"Organization\",\"id\":\"o1\",\"name\":\"Inner\"}],"
    "\"managingOrganization\":{\"reference\":\"#o1\"}}";
static const char observation_b[] =
    "{\"resourceType\":\"Observation\",\"id\":\"b\",\"status\":\"final\","
    "\"code\":{\"text\":\"weight\"},\"subject\":{\"reference\":\"Patient/c\"}}";

/* Patient/a twice then deleted, Observation/b, Patient/c (with a contained resource); the
 * first and the delete of Patient/a have authors, the others none. */
static void write_sample(store_t *store)
{
    put_by(store, "Patient", "a", patient_a1, nurse);
    put(store, "Patient", "a", patient_a2);
    put(store, "Observation", "b", observation_b);
    put_by(store, "Patient", "a", NULL, feed);
    put(store, "Patient", "c", patient_c);
}

/* ---- the scan ------------------------------------------------------------------------------ */

static void test_scan_versions_in_seq_order_with_current_keys(void **state)
{
    (void)state;
    write_sample(target);
    err_t err = ERR_INIT;
    store_conn_t *conn;
    assert_int_equal(store_connect(target, &conn, &err), ERR_OK);
    arena_t arena;
    arena_init(&arena);
    /* pages of two */
    store_copy_version_t all[8];
    size_t total = 0;
    int64_t after = 0;
    for (;;) {
        store_copy_version_t *rows;
        size_t n;
        assert_int_equal(store_scan_versions(conn, after, 2, &arena, &rows, &n, &err), ERR_OK);
        assert_true(n <= 2);
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            assert_true(rows[i].version.seq > after);
            after = rows[i].version.seq;
            assert_null(rows[i].index);
            all[total++] = rows[i];
        }
    }
    assert_int_equal(total, 5);
    const struct {
        const char *type, *id;
        int64_t version;
        const char *method;
        int status;
        bool current;
    } want[] = {{"Patient", "a", 1, "POST", 201, false},
                {"Patient", "a", 2, "PUT", 200, false},
                {"Observation", "b", 1, "POST", 201, true},
                {"Patient", "a", 3, "DELETE", 204, true},
                {"Patient", "c", 1, "POST", 201, true}};
    for (size_t i = 0; i < 5; i++) {
        const store_version_t *v = &all[i].version;
        assert_string_equal(v->type, want[i].type);
        assert_string_equal(v->id, want[i].id);
        assert_int_equal(v->version, want[i].version);
        assert_string_equal(v->method, want[i].method);
        assert_int_equal(v->status, want[i].status);
        assert_int_equal(all[i].rid != 0, want[i].current);
        /* the same as a read of that version */
        store_version_t read;
        assert_int_equal(store_read(conn, v->type, v->id, v->version, &arena, &read, &err), ERR_OK);
        assert_int_equal(read.seq, v->seq);
        assert_int_equal(read.updated_us, v->updated_us);
        assert_string_equal(read.last_updated, v->last_updated);
        assert_int_equal(read.deleted, v->deleted);
        if (v->deleted) {
            assert_null(v->json);
        } else {
            assert_int_equal(read.json_len, v->json_len);
            assert_memory_equal(read.json, v->json, v->json_len);
        }
    }
    /* the keys of two resources differ */
    assert_true(all[2].rid != all[4].rid);
    arena_release(&arena);
    store_disconnect(conn);
    err_release(&err);
}

/* ---- a copy from SQLite into the driver under test ----------------------------------------- */

typedef struct {
    store_conn_t *from;
} copy_arg_t;

/* Everything the source holds, as concerto migrate-data copies it (small pages, to page). */
static status_t copy_txn(store_txn_t *txn, void *arg, err_t *err)
{
    copy_arg_t *a = arg;
    status_t rc = ERR_OK;
    for (int64_t after = 0; !rc;) {
        arena_t arena;
        arena_init(&arena);
        store_copy_version_t *rows;
        size_t n = 0;
        rc = store_scan_versions(a->from, after, 2, &arena, &rows, &n, err);
        for (size_t i = 0; i < n && !rc; i++) {
            after = rows[i].version.seq;
            if (!rows[i].rid || rows[i].version.deleted)
                continue;
            json_t *resource = jv_parse(rows[i].version.json, rows[i].version.json_len, err);
            assert_non_null(resource);
            fhir_index_rows_t *index = arena_zalloc(&arena, sizeof(*index));
            rc = fhir_index_extract(NULL, resource, &arena, index, err);
            json_decref(resource);
            rows[i].index = index;
        }
        if (!rc && n)
            rc = store_txn_load_versions(txn, rows, n, err);
        arena_release(&arena);
        if (n == 0)
            break;
    }
    for (int64_t after = 0; !rc;) {
        arena_t arena;
        arena_init(&arena);
        store_event_t *events;
        size_t n = 0;
        rc = store_outbox_scan(a->from, after, 2, &arena, &events, &n, err);
        if (!rc && n) {
            after = events[n - 1].event_id;
            rc = store_txn_load_events(txn, events, n, err);
        }
        arena_release(&arena);
        if (n == 0)
            break;
    }
    arena_t arena;
    arena_init(&arena);
    store_job_t *jobs;
    size_t njobs = 0, nleases = 0;
    store_job_query_t query = {.count = 100};
    store_lease_t *leases;
    store_keys_t keys;
    if (!rc)
        rc = store_job_list(a->from, &query, &arena, &jobs, &njobs, err);
    if (!rc)
        rc = store_txn_load_jobs(txn, jobs, njobs, err);
    if (!rc)
        rc = store_lease_list(a->from, &arena, &leases, &nleases, err);
    if (!rc)
        rc = store_txn_load_leases(txn, leases, nleases, err);
    if (!rc)
        rc = store_last_keys(a->from, &keys, err);
    if (!rc)
        rc = store_txn_load_keys(txn, &keys, err);
    arena_release(&arena);
    return rc;
}

static void copy_source_to_target(void)
{
    err_t err = ERR_INIT;
    store_conn_t *from;
    assert_int_equal(store_connect(source, &from, &err), ERR_OK);
    assert_int_equal(store_snapshot_begin(from, true, &err), ERR_OK);
    copy_arg_t a = {from};
    assert_int_equal(store_run(target, copy_txn, &a, &err), ERR_OK);
    store_snapshot_end(from);
    store_disconnect(from);
    err_release(&err);
}

/* Every version of a store, as the scan reads it (in arena). */
static store_copy_version_t *all_versions(store_t *store, arena_t *arena, size_t *out_n)
{
    err_t err = ERR_INIT;
    store_conn_t *conn;
    assert_int_equal(store_connect(store, &conn, &err), ERR_OK);
    store_copy_version_t *rows;
    assert_int_equal(store_scan_versions(conn, 0, 1000, arena, &rows, out_n, &err), ERR_OK);
    store_disconnect(conn);
    err_release(&err);
    return rows;
}

static int64_t search_count(store_t *store, const char *type, const char *name, const char *value,
                            const char *contained)
{
    arena_t arena;
    arena_init(&arena);
    fhir_search_pair_t pairs[2] = {{name, strlen(name), value, strlen(value)}};
    size_t npairs = 1;
    if (contained)
        pairs[npairs++] = (fhir_search_pair_t){"_contained", 10, contained, strlen(contained)};
    fhir_search_query_t q = {.pairs = pairs, .npairs = npairs, .strict = true};
    fhir_search_plan_t *plan;
    err_t err = ERR_INIT;
    assert_int_equal(fhir_search_parse(NULL, fhir_resource_type_find(type, strlen(type)), &q,
                                       &arena, &plan, &err),
                     ERR_OK);
    plan->count = 10;
    store_conn_t *conn;
    assert_int_equal(store_connect(store, &conn, &err), ERR_OK);
    store_search_t query = {.plan = plan};
    store_search_result_t res;
    assert_int_equal(store_search(conn, &query, &arena, &res, &err), ERR_OK);
    int64_t n = (int64_t)res.nmatch;
    store_disconnect(conn);
    arena_release(&arena);
    err_release(&err);
    return n;
}

static void test_load_versions_as_they_are(void **state)
{
    (void)state;
    source = open_store(source_path);
    write_sample(source);
    copy_source_to_target();

    arena_t arena;
    arena_init(&arena);
    size_t ns, nt;
    store_copy_version_t *s = all_versions(source, &arena, &ns);
    store_copy_version_t *t = all_versions(target, &arena, &nt);
    assert_int_equal(ns, 5);
    assert_int_equal(nt, ns);
    for (size_t i = 0; i < ns; i++) {
        const store_version_t *a = &s[i].version, *b = &t[i].version;
        assert_string_equal(a->type, b->type);
        assert_string_equal(a->id, b->id);
        assert_int_equal(a->version, b->version);
        assert_int_equal(a->seq, b->seq);
        assert_int_equal(a->updated_us, b->updated_us);
        assert_string_equal(a->last_updated, b->last_updated);
        assert_string_equal(a->method, b->method);
        assert_int_equal(a->status, b->status);
        assert_int_equal(a->deleted, b->deleted);
        assert_int_equal(a->json_len, b->json_len);
        if (a->json)
            assert_memory_equal(a->json, b->json, a->json_len);
        else
            assert_null(b->json);
        assert_int_equal(s[i].rid, t[i].rid);
        if (a->author)
            assert_string_equal(a->author, b->author);
        else
            assert_null(b->author);
    }
    assert_string_equal(s[0].version.author, nurse);
    assert_null(s[1].version.author);
    assert_string_equal(s[3].version.author, feed);

    err_t err = ERR_INIT;
    store_conn_t *conn;
    assert_int_equal(store_connect(target, &conn, &err), ERR_OK);
    /* the current state: a read, a count, a delete that stays one */
    store_version_t v;
    assert_int_equal(store_read(conn, "Patient", "a", 0, &arena, &v, &err), ERR_OK);
    assert_true(v.deleted);
    assert_int_equal(v.version, 3);
    int64_t count;
    assert_int_equal(store_count(conn, "Patient", &count, &err), ERR_OK);
    assert_int_equal(count, 1);
    store_history_query_t hq = {.type = "Patient",
                                .id = "a",
                                .since_us = INT64_MIN,
                                .before_seq = INT64_MAX,
                                .count = 10,
                                .want_total = true};
    store_history_t h;
    assert_int_equal(store_history(conn, &hq, &arena, &h, &err), ERR_OK);
    assert_int_equal(h.total, 3);
    assert_int_equal(h.versions[0].status, 204);
    store_disconnect(conn);

    /* the index: the current versions only, contained resources too */
    assert_int_equal(search_count(target, "Patient", "name", "Gamma", NULL), 1);
    assert_int_equal(search_count(target, "Patient", "name", "Alpher", NULL), 0);
    assert_int_equal(search_count(target, "Observation", "subject", "Patient/c", NULL), 1);
    assert_int_equal(search_count(target, "Organization", "name", "Inner", "true"), 1);

    /* the next write goes on from the copied keys */
    put(target, "Patient", "d", patient_a1);
    assert_int_equal(store_connect(target, &conn, &err), ERR_OK);
    assert_int_equal(store_read(conn, "Patient", "d", 0, &arena, &v, &err), ERR_OK);
    assert_true(v.seq > s[ns - 1].version.seq);
    put(target, "Patient", "c", patient_a2); /* an update of a copied resource */
    assert_int_equal(store_read(conn, "Patient", "c", 0, &arena, &v, &err), ERR_OK);
    assert_int_equal(v.version, 2);
    assert_int_equal(search_count(target, "Organization", "name", "Inner", "true"), 0);
    store_disconnect(conn);
    arena_release(&arena);
    err_release(&err);
}

/* ---- the queues ---------------------------------------------------------------------------- */

/* Claims the first event and fails the second to death, acknowledges the third (its key is
 * then gone but handed out), schedules two jobs, claims one, completes a third one-off job,
 * and takes a lease. */
static status_t queues_txn(store_txn_t *txn, void *arg, err_t *err)
{
    (void)arg;
    arena_t arena;
    arena_init(&arena);
    const int64_t now = 1800000000LL * 1000000;
    store_claim_t claim = {
        .consumer = "w1", .max = 3, .now_us = now, .lease_us = 60000000, .max_attempts = 5};
    store_event_t *events;
    size_t n;
    status_t rc = store_txn_outbox_claim(txn, &claim, &arena, &events, &n, err);
    assert_int_equal(n, 3);
    store_failure_t failure = {
        .consumer = "w1", .error = "no good", .retry_at_us = now, .max_attempts = 1};
    bool dead = false;
    if (!rc)
        rc = store_txn_outbox_fail(txn, events[1].event_id, &failure, &dead, err);
    assert_true(dead);
    if (!rc)
        rc = store_txn_outbox_ack(txn, events[2].event_id, "w1", err);
    if (!rc)
        rc = store_txn_job_schedule(txn, "remind", "k1", now, "{\"a\":1}", NULL, err);
    if (!rc)
        rc = store_txn_job_schedule(txn, "remind", "k2", now + 1, NULL, NULL, err);
    if (!rc)
        rc = store_txn_job_schedule(txn, "once", "k3", now, NULL, NULL, err);
    store_job_t *jobs;
    claim.kind = "once";
    claim.max = 1;
    if (!rc)
        rc = store_txn_job_claim(txn, &claim, &arena, &jobs, &n, err);
    if (!rc)
        rc = store_txn_job_complete(txn, &jobs[0], "w1", 0, err);
    claim.kind = "remind";
    if (!rc)
        rc = store_txn_job_claim(txn, &claim, &arena, &jobs, &n, err);
    arena_release(&arena);
    return rc;
}

static status_t schedule_txn(store_txn_t *txn, void *arg, err_t *err)
{
    return store_txn_job_schedule(txn, "new", "k", 0, NULL, arg, err);
}

static void test_queues_and_keys_carry_over(void **state)
{
    (void)state;
    source = open_store(source_path);
    write_sample(source);
    err_t err = ERR_INIT;
    assert_int_equal(store_run(source, queues_txn, NULL, &err), ERR_OK);
    bool held = false;
    assert_int_equal(store_lease_acquire(source, "scheduler", "host-1", 60000000,
                                         1800000000LL * 1000000, &held, &err),
                     ERR_OK);
    assert_true(held);
    copy_source_to_target();

    store_conn_t *from, *to;
    assert_int_equal(store_connect(source, &from, &err), ERR_OK);
    assert_int_equal(store_connect(target, &to, &err), ERR_OK);
    arena_t arena;
    arena_init(&arena);
    /* events: every field */
    store_event_t *a, *b;
    size_t na, nb;
    assert_int_equal(store_outbox_scan(from, 0, 100, &arena, &a, &na, &err), ERR_OK);
    assert_int_equal(store_outbox_scan(to, 0, 100, &arena, &b, &nb, &err), ERR_OK);
    assert_int_equal(na, 4); /* five versions, one event acknowledged */
    assert_int_equal(nb, na);
    for (size_t i = 0; i < na; i++) {
        assert_int_equal(a[i].event_id, b[i].event_id);
        assert_int_equal(a[i].seq, b[i].seq);
        assert_string_equal(a[i].type, b[i].type);
        assert_string_equal(a[i].id, b[i].id);
        assert_int_equal(a[i].version, b[i].version);
        assert_int_equal(a[i].action, b[i].action);
        assert_int_equal(a[i].time_us, b[i].time_us);
        assert_int_equal(a[i].available_us, b[i].available_us);
        assert_int_equal(a[i].attempts, b[i].attempts);
        assert_int_equal(a[i].claim_until_us, b[i].claim_until_us);
        assert_int_equal(a[i].dead, b[i].dead);
        assert_int_equal(a[i].claimed_by == NULL, b[i].claimed_by == NULL);
        if (a[i].claimed_by)
            assert_string_equal(a[i].claimed_by, b[i].claimed_by);
        assert_int_equal(a[i].last_error == NULL, b[i].last_error == NULL);
        if (a[i].last_error)
            assert_string_equal(a[i].last_error, b[i].last_error);
    }
    assert_true(b[1].dead);
    assert_string_equal(b[0].claimed_by, "w1");
    int64_t pending, dead;
    assert_int_equal(store_outbox_counts(to, &pending, &dead, &err), ERR_OK);
    assert_int_equal(pending, 3);
    assert_int_equal(dead, 1);
    /* jobs */
    store_job_t *ja, *jb;
    store_job_query_t query = {.count = 100};
    assert_int_equal(store_job_list(from, &query, &arena, &ja, &na, &err), ERR_OK);
    assert_int_equal(store_job_list(to, &query, &arena, &jb, &nb, &err), ERR_OK);
    assert_int_equal(na, 2);
    assert_int_equal(nb, 2);
    for (size_t i = 0; i < na; i++) {
        assert_int_equal(ja[i].job_id, jb[i].job_id);
        assert_string_equal(ja[i].kind, jb[i].kind);
        assert_string_equal(ja[i].key, jb[i].key);
        assert_int_equal(ja[i].run_at_us, jb[i].run_at_us);
        assert_int_equal(ja[i].payload == NULL, jb[i].payload == NULL);
        assert_int_equal(ja[i].attempts, jb[i].attempts);
        assert_int_equal(ja[i].claim_until_us, jb[i].claim_until_us);
        assert_int_equal(ja[i].state, jb[i].state);
        assert_int_equal(ja[i].revision, jb[i].revision);
    }
    assert_string_equal(jb[0].payload, "{\"a\":1}");
    assert_string_equal(jb[0].claimed_by, "w1");
    /* leases */
    store_lease_t *la, *lb;
    assert_int_equal(store_lease_list(from, &arena, &la, &na, &err), ERR_OK);
    assert_int_equal(store_lease_list(to, &arena, &lb, &nb, &err), ERR_OK);
    assert_int_equal(na, 1);
    assert_int_equal(nb, 1);
    assert_string_equal(lb[0].name, "scheduler");
    assert_string_equal(lb[0].holder, "host-1");
    assert_int_equal(lb[0].until_us, la[0].until_us);
    /* keys: the target's counters are the source's, including the keys whose rows are gone */
    store_keys_t ks, kt;
    assert_int_equal(store_last_keys(from, &ks, &err), ERR_OK);
    assert_int_equal(store_last_keys(to, &kt, &err), ERR_OK);
    assert_int_equal(ks.seq, 5);
    assert_int_equal(ks.event_id, 5);
    assert_int_equal(ks.job_id, 3);
    assert_int_equal(kt.seq, ks.seq);
    assert_int_equal(kt.rid, ks.rid);
    assert_int_equal(kt.event_id, ks.event_id);
    assert_int_equal(kt.job_id, ks.job_id);
    store_disconnect(from);
    store_disconnect(to);
    arena_release(&arena);

    /* new rows on the target get keys after every key the source handed out: the job's
       after job 3, which is gone (completed) */
    put(target, "Patient", "e", patient_a1);
    int64_t job_id = 0;
    assert_int_equal(store_run(target, schedule_txn, &job_id, &err), ERR_OK);
    assert_int_equal(job_id, 4);
    assert_int_equal(store_connect(target, &to, &err), ERR_OK);
    arena_init(&arena);
    assert_int_equal(store_outbox_scan(to, 0, 100, &arena, &b, &nb, &err), ERR_OK);
    assert_int_equal(nb, 5);
    assert_int_equal(b[4].event_id, 6);
    assert_int_equal(b[4].seq, 6);
    store_disconnect(to);
    arena_release(&arena);
    err_release(&err);
}

/* ---- snapshots ----------------------------------------------------------------------------- */

static int64_t version_total(store_conn_t *conn)
{
    arena_t arena;
    arena_init(&arena);
    err_t err = ERR_INIT;
    store_history_query_t q = {
        .since_us = INT64_MIN, .before_seq = INT64_MAX, .count = 1, .want_total = true};
    store_history_t h;
    assert_int_equal(store_history(conn, &q, &arena, &h, &err), ERR_OK);
    arena_release(&arena);
    err_release(&err);
    return h.total;
}

static void test_snapshot_sees_one_state(void **state)
{
    (void)state;
    put(target, "Patient", "a", patient_a1);
    err_t err = ERR_INIT;
    store_conn_t *conn;
    assert_int_equal(store_connect(target, &conn, &err), ERR_OK);
    assert_int_equal(store_snapshot_begin(conn, false, &err), ERR_OK);
    assert_int_equal(version_total(conn), 1);
    put(target, "Patient", "a", patient_a2); /* another connection writes meanwhile */
    assert_int_equal(version_total(conn), 1);
    arena_t arena;
    arena_init(&arena);
    store_version_t v;
    assert_int_equal(store_read(conn, "Patient", "a", 0, &arena, &v, &err), ERR_OK);
    assert_int_equal(v.version, 1);
    arena_release(&arena);
    store_snapshot_end(conn);
    assert_int_equal(version_total(conn), 2);
    store_disconnect(conn);
    err_release(&err);
}

/* SQLite: a snapshot that locks writers keeps the writer out until it ends. */
static void test_snapshot_locks_writers(void **state)
{
    (void)state;
    put(target, "Patient", "a", patient_a1);
    err_t err = ERR_INIT;
    store_conn_t *conn;
    assert_int_equal(store_connect(target, &conn, &err), ERR_OK);
    assert_int_equal(store_snapshot_begin(conn, true, &err), ERR_OK);
    put_arg_t a = {"Patient", "a", patient_a2, NULL};
    assert_int_equal(store_run(target, put_txn, &a, &err), ERR_UNAVAILABLE); /* busy */
    err_release(&err);
    store_snapshot_end(conn);
    put(target, "Patient", "a", patient_a2);
    assert_int_equal(version_total(conn), 2);
    store_disconnect(conn);
}

/* ---- in use by another process ------------------------------------------------------------- */

static void test_check_unused(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    /* a database no process has open (the target store of this test is another file) */
    source = open_store(source_path);
    store_close(source);
    source = NULL;
    assert_int_equal(store_check_unused(source_path, &err), ERR_OK);
    /* a missing file is not in use either (opening it is what fails) */
    char missing[200];
    snprintf(missing, sizeof(missing), "%s/missing.db", source_dir);
    assert_int_equal(store_check_unused(missing, &err), ERR_OK);

    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        /* another process with the database open, idle, as a server between requests */
        sqlite3 *db;
        if (sqlite3_open(source_path, &db) != SQLITE_OK ||
            sqlite3_exec(db, "SELECT count(*) FROM resource", NULL, NULL, NULL) != SQLITE_OK)
            _exit(1);
        if (write(ready[1], "x", 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(store_check_unused(source_path, &err), ERR_CONFLICT);
    assert_non_null(strstr(err_message(&err), "in use by another process"));
    err_reset(&err);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    close(ready[0]);
    close(ready[1]);
    assert_int_equal(store_check_unused(source_path, &err), ERR_OK);
    /* PostgreSQL cannot tell */
    assert_int_equal(store_check_unused("postgresql://nobody@127.0.0.1:1/none", &err), ERR_OK);
    err_release(&err);
}

/* The author of each version: written by store_txn_put, read back by store_read (current and
 * by version), store_txn_read and store_history; none where the put gave none. */
static status_t read_in_txn(store_txn_t *txn, void *arg, err_t *err)
{
    arena_t arena;
    arena_init(&arena);
    store_version_t v;
    status_t rc = store_txn_read(txn, "Patient", "a", 0, &arena, &v, err);
    if (!rc)
        *(bool *)arg = v.author && strcmp(v.author, feed) == 0;
    arena_release(&arena);
    return rc;
}

static void test_author_through_put_read_history(void **state)
{
    (void)state;
    write_sample(target);
    err_t err = ERR_INIT;
    store_conn_t *conn;
    assert_int_equal(store_connect(target, &conn, &err), ERR_OK);
    arena_t arena;
    arena_init(&arena);
    store_version_t v;
    assert_int_equal(store_read(conn, "Patient", "a", 1, &arena, &v, &err), ERR_OK);
    assert_string_equal(v.author, nurse);
    assert_int_equal(store_read(conn, "Patient", "a", 2, &arena, &v, &err), ERR_OK);
    assert_null(v.author);
    assert_int_equal(store_read(conn, "Patient", "a", 0, &arena, &v, &err), ERR_OK);
    assert_true(v.deleted);
    assert_string_equal(v.author, feed);
    assert_int_equal(store_read(conn, "Observation", "b", 0, &arena, &v, &err), ERR_OK);
    assert_null(v.author);
    bool seen = false;
    assert_int_equal(store_run(target, read_in_txn, &seen, &err), ERR_OK);
    assert_true(seen);
    store_history_query_t hq = {
        .type = "Patient", .id = "a", .since_us = INT64_MIN, .before_seq = INT64_MAX, .count = 10};
    store_history_t h;
    assert_int_equal(store_history(conn, &hq, &arena, &h, &err), ERR_OK);
    assert_int_equal(h.n, 3);
    assert_string_equal(h.versions[0].author, feed);
    assert_null(h.versions[1].author);
    assert_string_equal(h.versions[2].author, nurse);
    hq.type = hq.id = NULL; /* the system's history */
    assert_int_equal(store_history(conn, &hq, &arena, &h, &err), ERR_OK);
    assert_int_equal(h.n, 5);
    assert_string_equal(h.versions[1].author, feed);
    assert_string_equal(h.versions[4].author, nurse);
    store_disconnect(conn);
    arena_release(&arena);
    err_release(&err);
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_scan_versions_in_seq_order_with_current_keys, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_load_versions_as_they_are, setup, teardown),
        cmocka_unit_test_setup_teardown(test_author_through_put_read_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queues_and_keys_carry_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_sees_one_state, setup, teardown),
    };
    const struct CMUnitTest sqlite_only[] = {
        cmocka_unit_test_setup_teardown(test_snapshot_locks_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_unused, setup, teardown),
    };
    return test_run_on_drivers("store/copy", both, TEST_COUNT(both), sqlite_only,
                               TEST_COUNT(sqlite_only), NULL, 0);
}
