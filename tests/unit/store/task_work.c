/*
 * Tests for the Task work rows (store.h, "Task work rows") and store_read_batch, on each
 * driver: the row follows a Task through writes, a close, a delete and a reindex; the select
 * by owner and by pool with the patient and priority filters and a visibility; the batch read
 * of current versions; the risk rows of RiskAssessments and the member rows of CareTeams.
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
#include "base/jv.h"
#include "drivers.h"
#include "fhir/index.h"
#include "store/store.h"

static store_t *store;
static store_conn_t *conn;

static int setup(void **state)
{
    test_db_setup(state);
    test_store_open(&store, &conn);
    return 0;
}

static int teardown(void **state)
{
    store_disconnect(conn);
    store_close(store);
    return test_db_teardown(state);
}

typedef struct {
    const char *type, *id, *json; /* json NULL: a delete */
    bool reindex;                 /* replace the index rows of the current version with json's */
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
                       .index = a->json ? &rows : NULL};
    if (!rc)
        rc = a->reindex ? store_txn_reindex(txn, a->type, a->id, &rows, err)
                        : store_txn_put(txn, &put, NULL, err);
    arena_release(&arena);
    return rc;
}

static void put_as(const char *type, const char *id, const char *json, bool reindex)
{
    put_arg_t a = {type, id, json, reindex};
    err_t err = ERR_INIT;
    assert_int_equal(store_run(store, put_txn, &a, &err), ERR_OK);
    err_release(&err);
}

static void put(const char *id, const char *json, bool reindex)
{
    put_as("Task", id, json, reindex);
}

#define TASK(id, rest)                                                                          \
    "{\"resourceType\":\"Task\",\"id\":\"" id "\",\"intent\":\"order\",\"for\":{\"reference\":" \
    "\"Patient/p1\"}," rest "}"
#define POOL "{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":\"224535009\"}]}"

static const char *const me[] = {"Practitioner/c1"};
static const char *const nurses[] = {"http://snomed.info/sct|224535009"};

/* The rows of owner c1 or the nurses' pool, with the query's other fields as given. */
static size_t select_rows(const store_task_work_query_t *extra, arena_t *arena,
                          store_task_work_t **out)
{
    store_task_work_query_t q = extra ? *extra : (store_task_work_query_t){.priority = -1};
    q.owners = me;
    q.nowners = 1;
    q.pools = nurses;
    q.npools = 1;
    size_t n;
    err_t err = ERR_INIT;
    if (store_task_work(conn, &q, arena, out, &n, &err))
        fail_msg("%s: %s", err_message(&err), err.log_detail ? err.log_detail : "");
    err_release(&err);
    return n;
}

static void test_the_row_follows_the_task(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    store_task_work_t *rows;
    put("t1",
        TASK("t1", "\"status\":\"ready\",\"priority\":\"urgent\",\"owner\":{\"reference\":"
                   "\"Practitioner/c1/_history/2\"},\"restriction\":{\"period\":{\"end\":"
                   "\"2026-01-02T03:04:05Z\"}}"),
        false);
    assert_int_equal(select_rows(NULL, &arena, &rows), 1);
    assert_string_equal(rows[0].id, "t1");
    assert_string_equal(rows[0].owner, "Practitioner/c1");
    assert_string_equal(rows[0].patient, "Patient/p1");
    assert_string_equal(rows[0].status, "ready");
    assert_int_equal(rows[0].priority, 1);
    assert_int_equal(rows[0].due_us, 1767323045000000LL);
    assert_null(rows[0].pool);
    /* unowned, in the nurses' pool, no due time, no priority */
    put("t1", TASK("t1", "\"status\":\"requested\",\"performerType\":[" POOL "]"), false);
    assert_int_equal(select_rows(NULL, &arena, &rows), 1);
    assert_null(rows[0].owner);
    assert_string_equal(rows[0].pool, nurses[0]);
    assert_int_equal(rows[0].priority, -1);
    assert_true(rows[0].due_us == INT64_MAX);
    /* another pool instead: not in the nurses' any more; both: once, in theirs */
    put("t1",
        TASK("t1", "\"status\":\"requested\",\"performerType\":[{\"coding\":[{\"code\":\"x\"}]}]"),
        false);
    assert_int_equal(select_rows(NULL, &arena, &rows), 0);
    put("t1",
        TASK("t1",
             "\"status\":\"requested\",\"performerType\":[{\"coding\":[{\"code\":\"x\"}]}," POOL
             "]"),
        false);
    assert_int_equal(select_rows(NULL, &arena, &rows), 1);
    assert_string_equal(rows[0].pool, nurses[0]);
    /* closed: no row; open again: a row; deleted: none */
    put("t1", TASK("t1", "\"status\":\"completed\",\"owner\":{\"reference\":\"Practitioner/c1\"}"),
        false);
    assert_int_equal(select_rows(NULL, &arena, &rows), 0);
    put("t1", TASK("t1", "\"status\":\"on-hold\",\"owner\":{\"reference\":\"Practitioner/c1\"}"),
        false);
    assert_int_equal(select_rows(NULL, &arena, &rows), 1);
    assert_string_equal(rows[0].status, "on-hold");
    put("t1", NULL, false);
    assert_int_equal(select_rows(NULL, &arena, &rows), 0);
    /* a reindex writes the row of the current version (rows of another content here: what
       a reindex after a change of extraction would give) */
    put("t2", TASK("t2", "\"status\":\"completed\",\"owner\":{\"reference\":\"Practitioner/c1\"}"),
        false);
    assert_int_equal(select_rows(NULL, &arena, &rows), 0);
    put("t2", TASK("t2", "\"status\":\"ready\",\"owner\":{\"reference\":\"Practitioner/c1\"}"),
        true);
    assert_int_equal(select_rows(NULL, &arena, &rows), 1);
    assert_string_equal(rows[0].id, "t2");
    arena_release(&arena);
}

static void test_filters_and_visibility(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    store_task_work_t *rows;
    put("a",
        TASK("a", "\"status\":\"ready\",\"priority\":\"stat\",\"owner\":{\"reference\":"
                  "\"Practitioner/c1\"}"),
        false);
    put("b",
        "{\"resourceType\":\"Task\",\"id\":\"b\",\"intent\":\"order\",\"status\":\"ready\","
        "\"for\":{\"reference\":\"http://x.test/fhir/Patient/p2\"},\"owner\":{\"reference\":"
        "\"Practitioner/c1\"}}",
        false);
    put("c",
        "{\"resourceType\":\"Task\",\"id\":\"c\",\"intent\":\"order\",\"status\":\"ready\","
        "\"owner\":{\"reference\":\"Practitioner/c1\"}}",
        false);
    put("d", TASK("d", "\"status\":\"ready\",\"owner\":{\"reference\":\"Practitioner/c2\"}"),
        false);
    put("e", TASK("e", "\"status\":\"requested\",\"performerType\":[" POOL "]"), false);
    assert_int_equal(select_rows(NULL, &arena, &rows), 4); /* a, b, c, e */
    store_task_work_query_t q = {.priority = 3};
    assert_int_equal(select_rows(&q, &arena, &rows), 1);
    assert_string_equal(rows[0].id, "a");
    static const char *const p2[] = {"http://x.test/fhir/Patient/p2"};
    q = (store_task_work_query_t){.priority = -1, .patients = p2, .npatients = 1};
    assert_int_equal(select_rows(&q, &arena, &rows), 1);
    assert_string_equal(rows[0].id, "b");
    /* a staff member's view: Task is patient-linked; patient p2 under the server's base */
    static const char *const visible[] = {"p2"};
    static const char *const member_types[] = {"Task"}, *const member_params[] = {"patient"};
    store_visibility_t v = {.patients = visible,
                            .npatients = 1,
                            .member_types = member_types,
                            .member_params = member_params,
                            .nmembers = 1,
                            .base = "http://x.test/fhir"};
    q = (store_task_work_query_t){.priority = -1, .visibility = &v};
    assert_int_equal(select_rows(&q, &arena, &rows), 1);
    assert_string_equal(rows[0].id, "b");
    /* with the Tasks that name no patient */
    v.unlinked = true;
    assert_int_equal(select_rows(&q, &arena, &rows), 2);
    /* Task outside the types the caller may read: none */
    static const char *const types[] = {"Patient"};
    v.types = types;
    v.ntypes = 1;
    v.types_limited = true;
    assert_int_equal(select_rows(&q, &arena, &rows), 0);
    arena_release(&arena);
}

static void test_read_batch(void **state)
{
    (void)state;
    put("a", TASK("a", "\"status\":\"ready\""), false);
    put("a", TASK("a", "\"status\":\"in-progress\""), false);
    put("b", TASK("b", "\"status\":\"ready\""), false);
    put("b", NULL, false);
    arena_t arena;
    arena_init(&arena);
    const char *ids[] = {"a", "none", "b", "a"};
    store_version_t v[4];
    err_t err = ERR_INIT;
    assert_int_equal(store_read_batch(conn, "Task", ids, 4, &arena, v, &err), ERR_OK);
    assert_false(v[0].deleted);
    assert_int_equal(v[0].version, 2);
    assert_non_null(strstr(v[0].json, "in-progress"));
    assert_true(v[1].deleted && !v[1].json);
    assert_true(v[2].deleted && !v[2].json);
    assert_int_equal(v[3].version, 2);
    assert_string_equal(v[3].id, "a");
    err_release(&err);
    arena_release(&arena);
}

#define RISK(id, subject, rest)                                                                    \
    "{\"resourceType\":\"RiskAssessment\",\"id\":\"" id "\",\"subject\":{\"reference\":\"" subject \
    "\"}," rest "}"

/* The risk rows of the patients, sorted by the RiskAssessment's rid. */
static size_t risks(const char *const *patients, size_t n, arena_t *arena, store_risk_t **out)
{
    size_t got;
    err_t err = ERR_INIT;
    if (store_patient_risks(conn, patients, n, arena, out, &got, &err))
        fail_msg("%s: %s", err_message(&err), err.log_detail ? err.log_detail : "");
    err_release(&err);
    return got;
}

static void test_risk_rows(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    store_risk_t *r;
    static const char *const p1[] = {"Patient/p1"};
    static const char *const both[] = {"Patient/p1", "http://x.test/fhir/Patient/p2"};
    put_as("RiskAssessment", "a",
           RISK("a", "Patient/p1/_history/3",
                "\"status\":\"final\",\"occurrenceDateTime\":\"2024-01-01\",\"prediction\":"
                "[{\"probabilityDecimal\":0.75}]"),
           false);
    assert_int_equal(risks(p1, 1, &arena, &r), 1);
    assert_string_equal(r[0].patient, "Patient/p1");
    assert_int_equal(r[0].when_us, 1704067200000000LL);
    assert_true(r[0].risk > 0.749 && r[0].risk < 0.751);
    int64_t first_seq = r[0].seq;
    /* rewritten: qualitative, no occurrence; the row follows, the last written seq higher */
    put_as("RiskAssessment", "a",
           RISK("a", "Patient/p1",
                "\"status\":\"final\",\"prediction\":[{\"qualitativeRisk\":{\"coding\":[{"
                "\"code\":\"low\"}]}}]"),
           false);
    assert_int_equal(risks(p1, 1, &arena, &r), 1);
    assert_true(r[0].when_us == INT64_MIN);
    assert_true(r[0].risk > 0.249 && r[0].risk < 0.251);
    assert_true(r[0].seq > first_seq);
    /* no prediction: a row without a risk; an absolute subject as written */
    put_as("RiskAssessment", "b",
           RISK("b", "http://x.test/fhir/Patient/p2", "\"status\":\"final\""), false);
    assert_int_equal(risks(both, 2, &arena, &r), 2);
    const store_risk_t *b = strcmp(r[0].patient, "Patient/p1") == 0 ? &r[1] : &r[0];
    assert_string_equal(b->patient, "http://x.test/fhir/Patient/p2");
    assert_true(b->risk < 0);
    /* withdrawn, or about no Patient: no row; deleted: none */
    put_as("RiskAssessment", "b",
           RISK("b", "http://x.test/fhir/Patient/p2", "\"status\":\"entered-in-error\""), false);
    assert_int_equal(risks(both, 2, &arena, &r), 1);
    put_as("RiskAssessment", "c", RISK("c", "Group/g1", "\"status\":\"final\""), false);
    put_as("RiskAssessment", "a", NULL, false);
    assert_int_equal(risks(both, 2, &arena, &r), 0);
    /* a reindex writes the row of the current version */
    put_as("RiskAssessment", "b", RISK("b", "Patient/p1", "\"status\":\"final\""), true);
    assert_int_equal(risks(p1, 1, &arena, &r), 1);
    arena_release(&arena);
}

#define TEAM(id, status, rest)                                                                 \
    "{\"resourceType\":\"CareTeam\",\"id\":\"" id "\",\"status\":\"" status "\",\"subject\":{" \
    "\"reference\":\"Patient/p1\"},\"participant\":[" rest "]}"
#define NURSE_ROLE                                                                            \
    "\"role\":[{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":\"224535009\"},{" \
    "\"code\":\"local\"}]}]"

/* The roles of Practitioner/c1 at now_us, as "patient role" sorted. */
static const char *roles_at(int64_t now_us, arena_t *arena)
{
    static const char *const c1[] = {"Practitioner/c1"};
    store_care_role_t *r;
    size_t n;
    err_t err = ERR_INIT;
    if (store_care_roles(conn, c1, 1, now_us, arena, &r, &n, &err))
        fail_msg("%s: %s", err_message(&err), err.log_detail ? err.log_detail : "");
    err_release(&err);
    const char **v = arena_alloc(arena, (n + 1) * sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = arena_printf(arena, "%s %s", r[i].patient, r[i].role);
    for (size_t i = 1; i < n; i++) /* insertion sort: a few */
        for (size_t k = i; k > 0 && strcmp(v[k - 1], v[k]) > 0; k--) {
            const char *t = v[k];
            v[k] = v[k - 1];
            v[k - 1] = t;
        }
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < n; i++)
        buf_addf(&b, "%s%s", i ? "," : "", v[i]);
    const char *out = arena_strndup(arena, b.ptr ? b.ptr : "", b.len);
    buf_release(&b);
    return out;
}

static void test_care_member_rows(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    const int64_t jan2 = 1767312000000000LL; /* 2026-01-02T00:00:00Z */
    put_as("CareTeam", "t1",
           TEAM("t1", "active",
                "{\"member\":{\"reference\":\"Practitioner/c1\"}," NURSE_ROLE
                ",\"period\":{\"start\":\"2026-01-01\",\"end\":\"2026-01-02\"}},"
                "{\"member\":{\"reference\":\"Practitioner/c2\"}," NURSE_ROLE "}"),
           false);
    /* the period: from the start's first moment to the end's last */
    assert_string_equal(roles_at(jan2 - 86400000000LL - 1, &arena), "");
    assert_string_equal(roles_at(jan2 - 86400000000LL, &arena),
                        "Patient/p1 http://snomed.info/sct|224535009,Patient/p1 |local");
    assert_string_equal(roles_at(jan2 + 86400000000LL - 1, &arena),
                        "Patient/p1 http://snomed.info/sct|224535009,Patient/p1 |local");
    assert_string_equal(roles_at(jan2 + 86400000000LL, &arena), "");
    /* rewritten: a care coordinator, no period; a member by an absolute url is not the same */
    put_as("CareTeam", "t1",
           TEAM("t1", "active",
                "{\"member\":{\"reference\":\"Practitioner/c1\"},\"role\":[{\"coding\":[{"
                "\"system\":\"http://snomed.info/sct\",\"code\":\"768820003\"}]}]},"
                "{\"member\":{\"reference\":\"http://x.test/fhir/Practitioner/c1\"}," NURSE_ROLE
                "}"),
           false);
    assert_string_equal(roles_at(jan2, &arena), "Patient/p1 http://snomed.info/sct|768820003");
    /* a team that is not active, or deleted: none */
    put_as(
        "CareTeam", "t1",
        TEAM("t1", "inactive", "{\"member\":{\"reference\":\"Practitioner/c1\"}," NURSE_ROLE "}"),
        false);
    assert_string_equal(roles_at(jan2, &arena), "");
    put_as("CareTeam", "t2",
           TEAM("t2", "active", "{\"member\":{\"reference\":\"Practitioner/c1\"}," NURSE_ROLE "}"),
           false);
    assert_string_equal(roles_at(jan2, &arena),
                        "Patient/p1 http://snomed.info/sct|224535009,Patient/p1 |local");
    put_as("CareTeam", "t2", NULL, false);
    assert_string_equal(roles_at(jan2, &arena), "");
    /* a reindex writes the rows of the current version */
    put_as("CareTeam", "t1",
           TEAM("t1", "active", "{\"member\":{\"reference\":\"Practitioner/c1\"}," NURSE_ROLE "}"),
           true);
    assert_string_equal(roles_at(jan2, &arena),
                        "Patient/p1 http://snomed.info/sct|224535009,Patient/p1 |local");
    arena_release(&arena);
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_the_row_follows_the_task, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filters_and_visibility, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_risk_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_care_member_rows, setup, teardown),
    };
    return test_run_on_drivers("store/task_work", both, TEST_COUNT(both), NULL, 0, NULL, 0);
}
