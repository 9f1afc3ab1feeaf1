/*
 * Tests for the access policy (src/repo/access.c) on each driver: who sees which patients'
 * records through reads, searches (matches, includes, totals, chains, _has, compartments),
 * history and $everything; who may write what; scopes narrowing; emergency access.
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

#include "base/clock.h"
#include "repo/access.h"
#include "repo/bundle.h"
#include "repo/conditional.h"
#include "repo/repo.h"
#include "store/store.h"
#include "../store/drivers.h"

static store_t *store;
static store_conn_t *conn;
static arena_t arena;
static scope_set_t user_all, patient_all, system_all, patient_obs_read;

static void put(const char *type, const char *id, const char *json)
{
    repo_write_t w;
    err_t err = ERR_INIT;
    assert_int_equal(repo_prepare_update(&w, type, id, json, strlen(json), 0, &arena, &err),
                     ERR_OK);
    assert_int_equal(repo_commit(store, &w, &err), ERR_OK);
    err_release(&err);
}

static int setup(void **state)
{
    test_db_setup(state);
    test_store_open(&store, &conn);
    arena_init(&arena);
    repo_access_invalidate();
    scope_parse(&arena, "user/*.cruds", 12, &user_all);
    scope_parse(&arena, "patient/*.cruds", 15, &patient_all);
    scope_parse(&arena, "system/*.cruds", 14, &system_all);
    scope_parse(&arena, "patient/Observation.read", 24, &patient_obs_read);
    put("Organization", "org1", "{\"resourceType\":\"Organization\",\"id\":\"org1\"}");
    put("Practitioner", "doc", "{\"resourceType\":\"Practitioner\",\"id\":\"doc\"}");
    put("Practitioner", "other", "{\"resourceType\":\"Practitioner\",\"id\":\"other\"}");
    put("Practitioner", "orgdoc", "{\"resourceType\":\"Practitioner\",\"id\":\"orgdoc\"}");
    put("PractitionerRole", "role1",
        "{\"resourceType\":\"PractitionerRole\",\"id\":\"role1\",\"practitioner\":{\"reference\":"
        "\"Practitioner/orgdoc\"},\"organization\":{\"reference\":\"Organization/org1\"}}");
    put("Patient", "p1",
        "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"name\":[{\"family\":\"One\"}]}");
    put("Patient", "p2",
        "{\"resourceType\":\"Patient\",\"id\":\"p2\",\"name\":[{\"family\":\"Two\"}]}");
    put("CareTeam", "ct1",
        "{\"resourceType\":\"CareTeam\",\"id\":\"ct1\",\"status\":\"active\",\"subject\":{"
        "\"reference\":\"Patient/p1\"},\"participant\":[{\"member\":{\"reference\":"
        "\"Practitioner/doc\"}},{\"member\":{\"reference\":\"Organization/org1\"}}]}");
    put("CareTeam", "ct2",
        "{\"resourceType\":\"CareTeam\",\"id\":\"ct2\",\"status\":\"inactive\",\"subject\":{"
        "\"reference\":\"Patient/p2\"},\"participant\":[{\"member\":{\"reference\":"
        "\"Practitioner/doc\"}}]}");
#define OBS                                                                                        \
    "{\"resourceType\":\"Observation\",\"id\":\"%s\",\"status\":\"final\",\"code\":{\"coding\":[{" \
    "\"system\":\"http://x\",\"code\":\"X\"}]},\"subject\":{\"reference\":\"Patient/%s\"},"        \
    "\"performer\":[{\"reference\":\"Practitioner/doc\"}]}"
    put("Observation", "o1", arena_printf(&arena, OBS, "o1", "p1"));
    put("Observation", "o2", arena_printf(&arena, OBS, "o2", "p2"));
    put("Task", "t0",
        "{\"resourceType\":\"Task\",\"id\":\"t0\",\"status\":\"requested\",\"intent\":"
        "\"order\"}");
    return 0;
}

static int teardown(void **state)
{
    arena_release(&arena);
    store_disconnect(conn);
    store_close(store);
    return test_db_teardown(state);
}

static repo_caller_t staff(const char *practitioner, const scope_set_t *scopes)
{
    return (repo_caller_t){.kind = REPO_CALLER_STAFF,
                           .account_id = arena_printf(&arena, "acct-%s", practitioner),
                           .username = practitioner,
                           .practitioner_id = practitioner,
                           .scopes = scopes};
}

static repo_caller_t patient(const char *id, const scope_set_t *scopes)
{
    return (repo_caller_t){.kind = REPO_CALLER_PATIENT,
                           .account_id = arena_printf(&arena, "acct-%s", id),
                           .patient_id = id,
                           .scopes = scopes};
}

static status_t read_as(const repo_caller_t *caller, const char *type, const char *id,
                        repo_access_note_t *note)
{
    store_version_t v;
    err_t err = ERR_INIT;
    status_t rc = repo_read_as(conn, caller, type, id, 0, &arena, &v, note, &err);
    if (rc && getenv("ACCESS_DEBUG"))
        fprintf(stderr, "%s/%s: %s\n", type, id, err_message(&err));
    err_release(&err);
    return rc;
}

/* A search's matches as "Type/id" joined by spaces, "+" before included ones; *total. */
static const char *search(const repo_caller_t *caller, const char *type, const char *query,
                          int64_t *total)
{
    url_pair_t *pairs;
    size_t n = url_query_split(&arena, query, strlen(query), &pairs);
    repo_search_t s = {.type = type ? fhir_resource_type_find(type, strlen(type)) : NULL,
                       .pairs = pairs,
                       .npairs = n,
                       .now_us = clock_now_us(),
                       .caller = caller};
    if (strncmp(query, "@", 1) == 0) {
        s.compartment_type = "Patient";
        s.compartment_id = query + 1;
        s.npairs = 0;
    }
    fhir_search_plan_t *plan;
    store_search_result_t out;
    err_t err = ERR_INIT;
    status_t rc = repo_search(conn, &s, &arena, &plan, &out, &err);
    if (rc)
        fail_msg("search %s?%s: %s", type, query, err_message(&err));
    err_release(&err);
    if (total)
        *total = out.total;
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < out.n; i++)
        buf_addf(&b, "%s%s%s/%s", i ? " " : "", out.entries[i].included ? "+" : "",
                 out.entries[i].version.type, out.entries[i].version.id);
    const char *text = arena_strndup(&arena, b.ptr ? b.ptr : "", b.len);
    buf_release(&b);
    return text;
}

static status_t write_as(const repo_caller_t *caller, const char *type, const char *id,
                         const char *json)
{
    repo_write_t w;
    err_t err = ERR_INIT;
    status_t rc = id ? repo_prepare_update(&w, type, id, json, strlen(json), 0, &arena, &err)
                     : repo_prepare_create(&w, type, json, strlen(json), &arena, &err);
    assert_int_equal(rc, ERR_OK);
    w.caller = caller;
    rc = repo_access_prepare_write(conn, &w, &err);
    if (!rc)
        rc = repo_commit(store, &w, &err);
    err_release(&err);
    return rc;
}

static void test_reads(void **state)
{
    (void)state;
    repo_caller_t doc = staff("doc", &user_all), other = staff("other", &user_all),
                  orgdoc = staff("orgdoc", &user_all);
    assert_int_equal(read_as(&doc, "Observation", "o1", NULL), ERR_OK);
    assert_int_equal(read_as(&doc, "Observation", "o2", NULL), ERR_FORBIDDEN); /* inactive team */
    assert_int_equal(read_as(&doc, "Patient", "p2", NULL), ERR_FORBIDDEN);
    assert_int_equal(read_as(&other, "Observation", "o1", NULL), ERR_FORBIDDEN);
    assert_int_equal(read_as(&orgdoc, "Observation", "o1", NULL), ERR_OK);  /* by organization */
    assert_int_equal(read_as(&other, "Practitioner", "doc", NULL), ERR_OK); /* shared */
    repo_caller_t p1 = patient("p1", &patient_all);
    assert_int_equal(read_as(&p1, "Observation", "o1", NULL), ERR_OK);
    assert_int_equal(read_as(&p1, "Observation", "o2", NULL), ERR_NOT_FOUND);
    assert_int_equal(read_as(&p1, "Patient", "p2", NULL), ERR_NOT_FOUND);
    assert_int_equal(read_as(&p1, "Practitioner", "doc", NULL), ERR_OK);
    assert_int_equal(read_as(&p1, "Task", "t0", NULL), ERR_NOT_FOUND); /* no patient: staff only */
    assert_int_equal(read_as(&doc, "Task", "t0", NULL), ERR_OK);
    repo_caller_t svc = {.kind = REPO_CALLER_SERVICE, .scopes = &system_all};
    assert_int_equal(read_as(&svc, "Observation", "o2", NULL), ERR_OK);
    repo_caller_t admin = staff("other", &user_all);
    admin.kind = REPO_CALLER_ADMIN;
    assert_int_equal(read_as(&admin, "Patient", "p2", NULL), ERR_OK);
    assert_int_equal(read_as(&admin, "CareTeam", "ct1", NULL), ERR_OK);
    assert_int_equal(read_as(&admin, "Observation", "o2", NULL), ERR_FORBIDDEN);
}

static void test_searches(void **state)
{
    (void)state;
    repo_caller_t doc = staff("doc", &user_all), p2 = patient("p2", &patient_all);
    repo_caller_t svc = {.kind = REPO_CALLER_SERVICE, .scopes = &system_all};
    int64_t total;
    assert_string_equal(search(&doc, "Observation", "code=X&_total=accurate", &total),
                        "Observation/o1");
    assert_int_equal(total, 1);
    assert_string_equal(search(&p2, "Observation", "code=X", NULL), "Observation/o2");
    assert_string_equal(search(&svc, "Observation", "code=X", NULL),
                        "Observation/o1 Observation/o2");
    assert_string_equal(search(&doc, "Observation", "_summary=count", &total), "");
    assert_int_equal(total, 1);
    assert_string_equal(search(&doc, "Patient", "_has:Observation:subject:code=X", NULL),
                        "Patient/p1");
    assert_string_equal(search(&doc, "Observation", "subject:Patient.name=Two", NULL), "");
    assert_string_equal(search(&svc, "Observation", "subject:Patient.name=Two", NULL),
                        "Observation/o2");
    assert_string_equal(search(&doc, "Observation", "_include=Observation:subject", NULL),
                        "Observation/o1 +Patient/p1");
    assert_string_equal(
        search(&doc, "Practitioner", "_id=doc&_revinclude=Observation:performer", NULL),
        "Practitioner/doc +Observation/o1");
    assert_string_equal(search(&doc, "Observation", "@p2", NULL), "");
    assert_string_equal(search(&doc, "Observation", "@p1", NULL), "Observation/o1");
    assert_string_equal(search(&p2, NULL, "_type=Patient,Observation", NULL),
                        "Patient/p2 Observation/o2");
    assert_string_equal(search(&p2, "Task", "", NULL), "");
    assert_string_equal(search(&doc, "Task", "", NULL), "Task/t0");
    repo_caller_t admin = staff("other", &user_all);
    admin.kind = REPO_CALLER_ADMIN;
    assert_string_equal(search(&admin, "Patient", "_revinclude=Observation:subject", NULL),
                        "Patient/p1 Patient/p2");
}

static void test_history_and_everything(void **state)
{
    (void)state;
    repo_caller_t doc = staff("doc", &user_all);
    store_history_query_t q = {.type = "Observation",
                               .since_us = INT64_MIN,
                               .before_seq = INT64_MAX,
                               .count = 10,
                               .want_total = true};
    store_history_t h;
    err_t err = ERR_INIT;
    assert_int_equal(repo_history(conn, &doc, &q, &arena, &h, NULL, &err), ERR_OK);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.versions[0].id, "o1");
    assert_int_equal(h.total, 1);
    q.type = NULL;
    assert_int_equal(repo_history(conn, &doc, &q, &arena, &h, NULL, &err), ERR_OK);
    for (size_t i = 0; i < h.n; i++)
        assert_false(strcmp(h.versions[i].id, "o2") == 0 || strcmp(h.versions[i].id, "p2") == 0);
    q.type = "Observation";
    q.id = "o2";
    assert_int_equal(repo_history(conn, &doc, &q, &arena, &h, NULL, &err), ERR_FORBIDDEN);
    err_reset(&err);
    repo_everything_t e = {.patient_id = "p2", .caller = &doc};
    store_search_result_t out;
    assert_int_equal(repo_everything(conn, &e, &arena, &out, &err), ERR_FORBIDDEN);
    err_reset(&err);
    e.patient_id = NULL;
    assert_int_equal(repo_everything(conn, &e, &arena, &out, &err), ERR_OK);
    bool p1 = false;
    for (size_t i = 0; i < out.n; i++) {
        assert_string_not_equal(out.entries[i].version.id, "o2");
        assert_string_not_equal(out.entries[i].version.id, "p2");
        p1 |= strcmp(out.entries[i].version.id, "p1") == 0;
    }
    assert_true(p1);
    err_release(&err);
}

static void test_writes(void **state)
{
    (void)state;
    repo_caller_t doc = staff("doc", &user_all);
#define WOBS                                                                              \
    "{\"resourceType\":\"Observation\",%s\"status\":\"final\",\"code\":{\"text\":\"y\"}," \
    "\"subject\":{\"reference\":\"Patient/%s\"}}"
    assert_int_equal(write_as(&doc, "Observation", NULL, arena_printf(&arena, WOBS, "", "p1")),
                     ERR_OK);
    assert_int_equal(write_as(&doc, "Observation", NULL, arena_printf(&arena, WOBS, "", "p2")),
                     ERR_FORBIDDEN);
    /* moving o1 to an invisible patient, or updating another's */
    assert_int_equal(
        write_as(&doc, "Observation", "o1", arena_printf(&arena, WOBS, "\"id\":\"o1\",", "p2")),
        ERR_FORBIDDEN);
    assert_int_equal(
        write_as(&doc, "Observation", "o2", arena_printf(&arena, WOBS, "\"id\":\"o2\",", "p1")),
        ERR_FORBIDDEN);
    assert_int_equal(read_as(NULL, "Observation", "o2", NULL), ERR_OK);
    assert_int_equal(write_as(&doc, "Practitioner", NULL, "{\"resourceType\":\"Practitioner\"}"),
                     ERR_FORBIDDEN);
    repo_caller_t admin = staff("other", &user_all);
    admin.kind = REPO_CALLER_ADMIN;
    assert_int_equal(write_as(&admin, "Practitioner", NULL, "{\"resourceType\":\"Practitioner\"}"),
                     ERR_OK);
    /* enrolment: a new Patient, and a first CareTeam for someone without one */
    assert_int_equal(
        write_as(&doc, "Patient", "p3", "{\"resourceType\":\"Patient\",\"id\":\"p3\"}"), ERR_OK);
#define TEAM                                                                           \
    "{\"resourceType\":\"CareTeam\",\"status\":\"active\",\"subject\":{\"reference\":" \
    "\"Patient/%s\"},\"participant\":[{\"member\":{\"reference\":\"Practitioner/doc\"}}]}"
    assert_int_equal(write_as(&doc, "CareTeam", NULL, arena_printf(&arena, TEAM, "p3")), ERR_OK);
    assert_int_equal(read_as(&doc, "Patient", "p3", NULL), ERR_OK); /* the cache was emptied */
    repo_caller_t other = staff("other", &user_all);
    assert_int_equal(write_as(&other, "CareTeam", NULL, arena_printf(&arena, TEAM, "p3")),
                     ERR_FORBIDDEN);
    repo_caller_t p1 = patient("p1", &patient_all);
    assert_int_equal(write_as(&p1, "Observation", NULL, arena_printf(&arena, WOBS, "", "p1")),
                     ERR_OK);
    assert_int_equal(write_as(&p1, "Observation", NULL, arena_printf(&arena, WOBS, "", "p2")),
                     ERR_FORBIDDEN);
}

static void test_scopes_narrow(void **state)
{
    (void)state;
    repo_caller_t p1 = patient("p1", &patient_obs_read);
    assert_int_equal(read_as(&p1, "Observation", "o1", NULL), ERR_OK);
    assert_int_equal(read_as(&p1, "Task", "t0", NULL), ERR_FORBIDDEN);
    assert_int_equal(write_as(&p1, "Observation", "o1",
                              "{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":"
                              "\"final\",\"code\":{\"text\":\"z\"},\"subject\":{\"reference\":"
                              "\"Patient/p1\"}}"),
                     ERR_FORBIDDEN);
    /* a staff token with patient/ scopes: the launch patient only */
    repo_caller_t doc = staff("doc", &patient_all);
    doc.launch_patient = "p1";
    assert_int_equal(read_as(&doc, "Observation", "o1", NULL), ERR_OK);
    doc.launch_patient = "p2";
    assert_int_equal(read_as(&doc, "Observation", "o1", NULL), ERR_FORBIDDEN);
}

static size_t count_flags(void)
{
    int64_t total;
    const char *found = search(NULL, "Flag", "_total=accurate", &total);
    (void)found;
    return (size_t)total;
}

static void test_emergency_access(void **state)
{
    (void)state;
    repo_caller_t doc = staff("doc", &user_all);
    doc.emergency_reason = "unconscious in the ER";
    repo_access_note_t note = {0};
    assert_int_equal(count_flags(), 0);
    assert_int_equal(read_as(&doc, "Observation", "o2", &note), ERR_OK);
    assert_non_null(note.emergency_patient);
    assert_string_equal(note.emergency_patient, "p2");
    assert_int_equal(count_flags(), 1);
    memset(&note, 0, sizeof(note));
    assert_int_equal(read_as(&doc, "Patient", "p2", &note), ERR_OK);
    assert_int_equal(count_flags(), 1); /* once per account, patient and day */
    store_version_t v;
    err_t err = ERR_INIT;
    const char *flag = search(NULL, "Flag", "subject=Patient/p2", NULL);
    assert_string_not_equal(flag, "");
    assert_int_equal(repo_read(conn, "Flag", flag + 5, 0, &arena, &v, &err), ERR_OK);
    assert_non_null(strstr(v.json, "Emergency access to the record by doc: unconscious"));
    assert_non_null(strstr(v.json, "urn:concerto:emergency-access"));
    assert_non_null(strstr(v.json, "Practitioner/doc"));
    err_release(&err);
    /* a search gains nothing unless it names the patient */
    assert_string_equal(search(&doc, "Observation", "code=X", NULL), "Observation/o1");
    assert_string_equal(search(&doc, "Observation", "subject=Patient/p2", NULL), "Observation/o2");
    /* a patient has no emergency access */
    repo_caller_t p1 = patient("p1", &patient_all);
    p1.emergency_reason = "please";
    assert_int_equal(read_as(&p1, "Observation", "o2", NULL), ERR_NOT_FOUND);
}

/* ---- Bundles and conditional writes ------------------------------------------------------- */

/* Prepares and runs a Bundle (entries: a JSON array) as caller; *b holds the outcome. */
static status_t bundle_as(const repo_caller_t *caller, const char *type, const char *entries,
                          repo_bundle_t *b, err_t *err)
{
    const char *json = arena_printf(
        &arena, "{\"resourceType\":\"Bundle\",\"type\":\"%s\",\"entry\":%s}", type, entries);
    *b = (repo_bundle_t){.caller = caller};
    status_t rc =
        repo_bundle_prepare(b, json, strlen(json), "http://x/fhir", true, conn, &arena, err);
    if (!rc)
        rc = store_run(store, repo_bundle_txn, b, err);
    if (rc && getenv("ACCESS_DEBUG"))
        fprintf(stderr, "bundle: %s\n", err_message(err));
    return rc;
}

#define POST_OBS(patient)                                                                        \
    "{\"request\":{\"method\":\"POST\",\"url\":\"Observation\"},\"resource\":{\"resourceType\":" \
    "\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"b\"},\"subject\":{"               \
    "\"reference\":\"Patient/" patient "\"}}}"
#define GET(url) "{\"request\":{\"method\":\"GET\",\"url\":\"" url "\"}}"

static int64_t total_of(const char *type, const char *query)
{
    int64_t total;
    search(NULL, type, arena_printf(&arena, "%s%s_total=accurate", query, *query ? "&" : ""),
           &total);
    return total;
}

static void test_batch(void **state)
{
    (void)state;
    repo_caller_t doc = staff("doc", &user_all);
    repo_bundle_t b;
    err_t err = ERR_INIT;
    int64_t before = total_of("Observation", "code:text=b");
    assert_int_equal(
        bundle_as(
            &doc, "batch",
            "[" POST_OBS("p1") "," POST_OBS("p2") "," GET("Observation/o1") "," GET(
                "Observation/"
                "o2") "," GET("Observation?code=X&_total=accurate") "," GET("Patient/p1/"
                                                                            "Observation") ","
                                                                                           "{\"requ"
                                                                                           "est"
                                                                                           "\":{"
                                                                                           "\"metho"
                                                                                           "d\""
                                                                                           ":\"DELE"
                                                                                           "TE"
                                                                                           "\","
                                                                                           "\"url\""
                                                                                           ":"
                                                                                           "\"Obser"
                                                                                           "vat"
                                                                                           "ion/"
                                                                                           "o2\"}}"
                                                                                           "]",
            &b, &err),
        ERR_OK);
    assert_int_equal(b.entries[0].rc, ERR_OK);
    assert_true(b.entries[0].write.created);
    assert_int_equal(b.entries[1].rc, ERR_FORBIDDEN);
    assert_non_null(strstr(err_message(&b.entries[1].err), "outside your care teams"));
    assert_int_equal(b.entries[2].rc, ERR_OK);
    assert_string_equal(b.entries[2].read.id, "o1");
    assert_int_equal(b.entries[3].rc, ERR_FORBIDDEN);
    assert_int_equal(b.entries[4].rc, ERR_OK);
    assert_int_equal(b.entries[4].found.n, 1);
    assert_string_equal(b.entries[4].found.entries[0].version.id, "o1");
    assert_int_equal(b.entries[4].found.total, 1);
    assert_int_equal(b.entries[5].rc, ERR_OK);
    assert_int_equal(b.entries[5].found.n, 2); /* o1 and entry 0's */
    assert_int_equal(b.entries[6].rc, ERR_FORBIDDEN);
    /* the batch's response says so, entry by entry */
    buf_t out = BUF_INIT;
    repo_bundle_response(&b, "http://x/fhir", false, &out);
    assert_non_null(strstr(out.ptr, "403 Forbidden"));
    buf_release(&out);
    repo_bundle_release(&b);
    assert_int_equal(total_of("Observation", "code:text=b"), before + 1);
    assert_int_equal(read_as(NULL, "Observation", "o2", NULL), ERR_OK);
    /* a patient: what is not theirs is not known */
    repo_caller_t p1 = patient("p1", &patient_all);
    assert_int_equal(bundle_as(&p1, "batch",
                               "[" GET("Observation/o2") "," GET("Observation/o1") "," GET(
                                   "Observation?code=X") "]",
                               &b, &err),
                     ERR_OK);
    assert_int_equal(b.entries[0].rc, ERR_NOT_FOUND);
    assert_int_equal(b.entries[1].rc, ERR_OK);
    assert_int_equal(b.entries[2].found.n, 1);
    assert_string_equal(b.entries[2].found.entries[0].version.id, "o1");
    repo_bundle_release(&b);
    /* scopes: a read-only token's write entry is refused, its read is not */
    repo_caller_t ro = patient("p1", &patient_obs_read);
    assert_int_equal(
        bundle_as(&ro, "batch", "[" POST_OBS("p1") "," GET("Observation/o1") "]", &b, &err),
        ERR_OK);
    assert_int_equal(b.entries[0].rc, ERR_FORBIDDEN);
    assert_int_equal(b.entries[1].rc, ERR_OK);
    repo_bundle_release(&b);
    err_release(&err);
}

static void test_transaction(void **state)
{
    (void)state;
    repo_caller_t doc = staff("doc", &user_all);
    repo_bundle_t b;
    err_t err = ERR_INIT;
    int64_t before = total_of("Observation", "code:text=b");
    /* a denied write fails it whole, naming the entry */
    assert_int_equal(
        bundle_as(&doc, "transaction", "[" POST_OBS("p1") "," POST_OBS("p2") "]", &b, &err),
        ERR_FORBIDDEN);
    assert_non_null(strstr(err_message(&err), "entry 1 (POST Observation)"));
    repo_bundle_release(&b);
    err_reset(&err);
    assert_int_equal(total_of("Observation", "code:text=b"), before);
    /* so does a denied read */
    assert_int_equal(
        bundle_as(&doc, "transaction", "[" POST_OBS("p1") "," GET("Observation/o2") "]", &b, &err),
        ERR_FORBIDDEN);
    assert_non_null(strstr(err_message(&err), "entry 1 (GET Observation/o2)"));
    repo_bundle_release(&b);
    err_reset(&err);
    assert_int_equal(total_of("Observation", "code:text=b"), before);
    /* an update that moves a visible resource to an invisible patient */
    assert_int_equal(
        bundle_as(
            &doc, "transaction",
            "[" POST_OBS(
                "p1") ",{\"request\":{\"method\":\"PUT\",\"url\":\"Observation/"
                      "o1\"},\"resource\":{\"resourceType\":\"Observation\",\"id\":\"o1\","
                      "\"status\":\"final\",\"code\":{\"text\":\"m\"},\"subject\":{\"reference\":"
                      "\"Patient/p2\"}}}]",
            &b, &err),
        ERR_FORBIDDEN);
    assert_non_null(strstr(err_message(&err), "entry 1 (PUT Observation/o1)"));
    repo_bundle_release(&b);
    err_reset(&err);
    assert_int_equal(total_of("Observation", "code:text=b"), before);
    /* allowed entries: written, and the search sees only the caller's */
    assert_int_equal(
        bundle_as(&doc, "transaction",
                  "[" POST_OBS("p1") "," GET("Observation/o1") "," GET("Observation?code=X") "]",
                  &b, &err),
        ERR_OK);
    assert_int_equal(b.entries[0].rc, ERR_OK);
    assert_int_equal(b.entries[2].found.n, 1);
    assert_string_equal(b.entries[2].found.entries[0].version.id, "o1");
    repo_bundle_release(&b);
    assert_int_equal(total_of("Observation", "code:text=b"), before + 1);
    /* a conditional reference does not find what the caller cannot see */
#define POST_REF(criteria)                                                             \
    "[{\"request\":{\"method\":\"POST\",\"url\":\"Observation\"},\"resource\":{"       \
    "\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"b\"}," \
    "\"subject\":{\"reference\":\"Patient?" criteria "\"}}}]"
    assert_int_equal(bundle_as(&doc, "transaction", POST_REF("name=Two"), &b, &err), ERR_INVALID);
    assert_non_null(strstr(err_message(&err), "matches no Patient"));
    repo_bundle_release(&b);
    err_reset(&err);
    assert_int_equal(bundle_as(&doc, "transaction", POST_REF("name=One"), &b, &err), ERR_OK);
    assert_non_null(strstr(b.entries[0].write.result.json, "Patient/p1"));
    repo_bundle_release(&b);
    /* the server itself sees both: two matches */
    assert_int_equal(bundle_as(NULL, "transaction", POST_REF("name:missing=false"), &b, &err),
                     ERR_MULTIPLE_MATCHES);
    repo_bundle_release(&b);
    err_reset(&err);
    /* a caller set after prepare is refused rather than run unchecked */
    const char *json =
        "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[" GET("Observation/o2") "]}";
    assert_int_equal(
        repo_bundle_prepare(&b, json, strlen(json), "http://x/fhir", false, conn, &arena, &err),
        ERR_OK);
    b.caller = &doc;
    assert_int_equal(store_run(store, repo_bundle_txn, &b, &err), ERR_INTERNAL);
    repo_bundle_release(&b);
    err_release(&err);
}

/* A conditional write as caller: action, the criteria, the body (NULL for a delete). */
static status_t cond_as(const repo_caller_t *caller, repo_action_t action, const char *criteria,
                        const char *body, bool multiple, repo_cond_t *c, err_t *err)
{
    repo_write_t *w = arena_zalloc(&arena, sizeof(*w));
    const fhir_type_t *type = fhir_resource_type_find("Observation", 11);
    *c = (repo_cond_t){.write = w, .multiple = multiple};
    status_t rc =
        repo_condition_parse(&c->condition, type, criteria, strlen(criteria), conn, &arena, err);
    assert_int_equal(rc, ERR_OK);
    if (action == REPO_CREATE)
        rc = repo_prepare_create(w, "Observation", body, strlen(body), &arena, err);
    else if (action == REPO_UPDATE)
        rc = repo_prepare_cond_update(w, "Observation", body, strlen(body), 0, &arena, &c->body_id,
                                      err);
    else
        rc = repo_prepare_delete(w, "Observation", "", 0, &arena, err);
    assert_int_equal(rc, ERR_OK);
    w->caller = caller;
    rc = repo_cond_prepare_access(conn, c, err);
    if (!rc)
        rc = store_run(store, repo_cond_txn, c, err);
    if (rc && getenv("ACCESS_DEBUG"))
        fprintf(stderr, "conditional: %s\n", err_message(err));
    return rc;
}

static int64_t version_of(const char *type, const char *id)
{
    store_version_t v;
    err_t err = ERR_INIT;
    status_t rc = repo_read(conn, type, id, 0, &arena, &v, &err);
    err_release(&err);
    return rc == ERR_OK ? v.version : rc == ERR_GONE ? -1 : 0;
}

static void test_conditional(void **state)
{
    (void)state;
    repo_caller_t doc = staff("doc", &user_all);
    repo_cond_t c;
    err_t err = ERR_INIT;
    const char *mine = arena_printf(&arena, WOBS, "", "p1");
    /* If-None-Exist: o2 is not a match for doc, so code=X matches o1 alone (not 412) */
    assert_int_equal(cond_as(&doc, REPO_CREATE, "code=X", mine, false, &c, &err), ERR_OK);
    assert_true(c.matched);
    assert_string_equal(c.write->result.id, "o1");
    assert_int_equal(cond_as(&doc, REPO_CREATE, "_id=o2", mine, false, &c, &err), ERR_OK);
    assert_false(c.matched);
    assert_true(c.write->created);
    assert_string_not_equal(c.write->id, "o2");
    assert_int_equal(cond_as(NULL, REPO_CREATE, "code=X", mine, false, &c, &err),
                     ERR_MULTIPLE_MATCHES);
    err_reset(&err);
    /* conditional update: the invisible o2 is not updated; a new resource is created */
    assert_int_equal(cond_as(&doc, REPO_UPDATE, "_id=o2", mine, false, &c, &err), ERR_OK);
    assert_true(c.write->created);
    assert_string_not_equal(c.write->id, "o2");
    assert_int_equal(version_of("Observation", "o2"), 1);
    /* conditional delete: only what doc sees */
    assert_int_equal(cond_as(&doc, REPO_DELETE, "_id=o2", NULL, false, &c, &err), ERR_OK);
    assert_true(c.write->noop);
    assert_int_equal(cond_as(&doc, REPO_DELETE, "code=X", NULL, true, &c, &err), ERR_OK);
    assert_int_equal(c.nmatches, 1);
    assert_int_equal(version_of("Observation", "o1"), -1);
    assert_int_equal(version_of("Observation", "o2"), 1);
    /* a patient's If-None-Exist does not find another's; their scopes must allow searching */
    repo_caller_t p2 = patient("p2", &patient_all);
    assert_int_equal(cond_as(&p2, REPO_DELETE, "code=X", NULL, true, &c, &err), ERR_OK);
    assert_int_equal(version_of("Observation", "o2"), -1);
    repo_caller_t ro = patient("p1", &patient_obs_read);
    assert_int_equal(cond_as(&ro, REPO_DELETE, "code=X", NULL, false, &c, &err), ERR_FORBIDDEN);
    err_reset(&err);
    /* a caller's conditional write whose access was not worked out is refused */
    repo_write_t w;
    assert_int_equal(repo_prepare_delete(&w, "Observation", "", 0, &arena, &err), ERR_OK);
    c = (repo_cond_t){.write = &w};
    assert_int_equal(repo_condition_parse(&c.condition, fhir_resource_type_find("Observation", 11),
                                          "code=X", 6, conn, &arena, &err),
                     ERR_OK);
    w.caller = &doc;
    assert_int_equal(store_run(store, repo_cond_txn, &c, &err), ERR_INTERNAL);
    err_reset(&err);
    /* in a Bundle too: a conditional PUT does not reach o2 (restored by the server) */
    put("Observation", "o2", arena_printf(&arena, OBS, "o2", "p2"));
    repo_bundle_t b;
    assert_int_equal(
        bundle_as(&doc, "transaction",
                  "[{\"request\":{\"method\":\"PUT\",\"url\":\"Observation?_id=o2\"},"
                  "\"resource\":{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{"
                  "\"text\":\"c\"},\"subject\":{\"reference\":\"Patient/p1\"}}},"
                  "{\"request\":{\"method\":\"DELETE\",\"url\":\"Observation?subject=Patient/"
                  "p2\"}}]",
                  &b, &err),
        ERR_OK);
    assert_true(b.entries[0].write.created);
    assert_string_not_equal(b.entries[0].write.id, "o2");
    assert_true(b.entries[1].write.noop);
    repo_bundle_release(&b);
    assert_true(version_of("Observation", "o2") > 0);
    err_release(&err);
}

/* One page of a search as caller (cursor NULL: the first), its matches as in search(). */
static const char *page_of(const repo_caller_t *caller, const char *type, const char *query,
                           const char *cursor, store_search_result_t *out)
{
    url_pair_t *pairs;
    size_t n = url_query_split(&arena, query, strlen(query), &pairs);
    repo_search_t s = {.type = fhir_resource_type_find(type, strlen(type)),
                       .pairs = pairs,
                       .npairs = n,
                       .now_us = clock_now_us(),
                       .page = cursor,
                       .caller = caller};
    fhir_search_plan_t *plan;
    err_t err = ERR_INIT;
    if (repo_search(conn, &s, &arena, &plan, out, &err))
        fail_msg("search %s?%s: %s", type, query, err_message(&err));
    err_release(&err);
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < out->nmatch; i++)
        buf_addf(&b, "%s%s", i ? " " : "", out->entries[i].version.id);
    const char *text = arena_strndup(&arena, b.ptr ? b.ptr : "", b.len);
    buf_release(&b);
    return text;
}

static void test_paging_and_iterate(void **state)
{
    (void)state;
    repo_caller_t doc = staff("doc", &user_all);
    put("Patient", "p3", "{\"resourceType\":\"Patient\",\"id\":\"p3\"}");
    put("CareTeam", "ct3",
        "{\"resourceType\":\"CareTeam\",\"id\":\"ct3\",\"status\":\"active\",\"subject\":{"
        "\"reference\":\"Patient/p3\"},\"participant\":[{\"member\":{\"reference\":"
        "\"Practitioner/doc\"}}]}");
    /* 18 more: visible ones (p1, p3) interleaved with p2's */
    const char *owners[] = {"p1", "p2", "p3"};
    buf_t expected = BUF_INIT;
    buf_addstr(&expected, " o1 ");
    for (int i = 0; i < 18; i++) {
        const char *id = arena_printf(&arena, "x%02d", i);
        put("Observation", id, arena_printf(&arena, OBS, id, owners[i % 3]));
        if (i % 3 != 1)
            buf_addf(&expected, "%s ", id);
    }
    /* a staff member pages through their patients' Observations only: 13 of 20 */
    for (int sorted = 0; sorted < 2; sorted++) {
        const char *query = sorted ? "code=X&_count=4&_total=accurate&_sort=-_lastUpdated"
                                   : "code=X&_count=4&_total=accurate";
        store_search_result_t r;
        const char *cursor = NULL, *first = NULL, *second_previous = NULL;
        buf_t seen = BUF_INIT;
        size_t pages = 0, matches = 0;
        buf_addch(&seen, ' ');
        do {
            const char *ids = page_of(&doc, "Observation", query, cursor, &r);
            assert_int_equal(r.total, 13);
            assert_true(r.nmatch <= 4);
            if (!first)
                first = ids;
            else if (!second_previous)
                second_previous = r.previous;
            for (size_t i = 0; i < r.nmatch; i++) {
                const char *id = r.entries[i].version.id;
                /* each once, and each theirs */
                assert_null(strstr(seen.ptr, arena_printf(&arena, " %s ", id)));
                assert_non_null(strstr(expected.ptr, arena_printf(&arena, " %s ", id)));
                buf_addf(&seen, "%s ", id);
            }
            matches += r.nmatch;
            pages++;
            cursor = r.next;
        } while (cursor);
        assert_int_equal(matches, 13);
        assert_int_equal(pages, 4);
        /* the second page's previous link leads back to the first page */
        assert_non_null(second_previous);
        assert_string_equal(page_of(&doc, "Observation", query, second_previous, &r), first);
        buf_release(&seen);
    }
    buf_release(&expected);
    /* a patient pages through their own: 7 (o1 and six of the new ones) */
    repo_caller_t p1 = patient("p1", &patient_all);
    store_search_result_t r;
    page_of(&p1, "Observation", "code=X&_count=5&_total=accurate", NULL, &r);
    assert_int_equal(r.total, 7);
    assert_int_equal(r.nmatch, 5);
    assert_non_null(r.next);
    page_of(&p1, "Observation", "code=X&_count=5&_total=accurate", r.next, &r);
    assert_int_equal(r.nmatch, 2);
    assert_null(r.next);

    /* :iterate reaches nothing invisible: o1 has a member of p2's, and p2's o2 and p1's m1
       have o1 as a member */
#define MEMBER                                                                                 \
    "{\"resourceType\":\"Observation\",\"id\":\"%s\",\"status\":\"final\",\"code\":{\"text\":" \
    "\"g\"},\"subject\":{\"reference\":\"Patient/%s\"},\"hasMember\":[{\"reference\":"         \
    "\"Observation/%s\"}]}"
    put("Observation", "o1", arena_printf(&arena, MEMBER, "o1", "p1", "x01"));
    put("Observation", "o2", arena_printf(&arena, MEMBER, "o2", "p2", "o1"));
    put("Observation", "m1", arena_printf(&arena, MEMBER, "m1", "p1", "o1"));
    const char *q =
        "_id=p1&_revinclude=Observation:subject&_include:iterate=Observation:has-member";
    const char *all = search(NULL, "Patient", q, NULL);
    assert_non_null(strstr(all, "+Observation/x01"));
    const char *mine = search(&doc, "Patient", q, NULL);
    assert_non_null(strstr(mine, "+Observation/o1"));
    assert_null(strstr(mine, "x01"));
    q = "_id=p1&_revinclude=Observation:subject&_revinclude:iterate=Observation:has-member";
    all = search(NULL, "Patient", q, NULL);
    assert_non_null(strstr(all, "+Observation/o2"));
    mine = search(&doc, "Patient", q, NULL);
    assert_non_null(strstr(mine, "+Observation/m1"));
    assert_null(strstr(mine, "Observation/o2"));
    q = "_id=o1&_revinclude:iterate=Observation:has-member";
    assert_string_equal(search(&doc, "Observation", q, NULL), "Observation/o1 +Observation/m1");
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_searches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_and_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scopes_narrow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_emergency_access, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conditional, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging_and_iterate, setup, teardown),
    };
    return test_run_on_drivers("repo/access", both, TEST_COUNT(both), NULL, 0, NULL, 0);
}
