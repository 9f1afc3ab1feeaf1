/*
 * search.c - tests of the search driver (store_search on SQLite): plans from the query
 * parser run over a throw-away database of a few patients, practitioners and observations
 * whose index rows come from fhir_index_extract. Expected results are worked out by hand
 * from the resources below and docs/internals/search.md; EXPLAIN QUERY PLAN checks that
 * indexed searches read the index tables through their indexes.
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

#include "base/buf.h"
#include "base/jv.h"
#include "fhir/index.h"
#include "fhir/search.h"
#include "store/sql_search.h"
#include "store/sqlite_int.h"
#include "drivers.h"

static char path[512];
static store_t *store;
static store_conn_t *conn;

/* 2024-06-15T12:00:00Z, for ap */
#define NOW_US 1718452800000000LL

static const char *const resources[] = {
    "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"active\":true,"
    "\"identifier\":[{\"type\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/"
    "v2-0203\",\"code\":\"MR\"}]},\"system\":\"http://mrn\",\"value\":\"111\"}],"
    "\"name\":[{\"family\":\"M\xc3\xbcller\",\"given\":[\"Anna\"]}],"
    "\"telecom\":[{\"system\":\"phone\",\"value\":\"555-1000\"}],\"gender\":\"female\","
    "\"birthDate\":\"1980-02-14\",\"address\":[{\"city\":\"K\xc3\xb6ln\"}],"
    "\"generalPractitioner\":[{\"reference\":\"Practitioner/dr1\"}],"
    "\"managingOrganization\":{\"reference\":\"Organization/o1\"}}",
    "{\"resourceType\":\"Patient\",\"id\":\"p2\",\"identifier\":[{\"system\":\"http://mrn\","
    "\"value\":\"222\"}],\"name\":[{\"family\":\"Muller\",\"given\":[\"Bert\"]}],"
    "\"gender\":\"male\",\"birthDate\":\"1980-02\",\"address\":[{\"city\":\"Berlin\"}],"
    "\"generalPractitioner\":[{\"reference\":\"Practitioner/dr2\"}]}",
    "{\"resourceType\":\"Patient\",\"id\":\"p3\",\"name\":[{\"family\":\"Smith\","
    "\"given\":[\"Carla\"]}],\"gender\":\"female\",\"birthDate\":\"1975\","
    "\"deceasedBoolean\":true,\"managingOrganization\":{\"reference\":"
    "\"http://other.example/fhir/Organization/o9\"}}",
    "{\"resourceType\":\"Patient\",\"id\":\"p4\",\"name\":[{\"family\":\"\xc3\x98stergaard\","
    "\"given\":[\"Dag\",\"Ellen\"]}],\"gender\":\"other\",\"birthDate\":\"1999-12-31\","
    "\"generalPractitioner\":[{\"reference\":\"Practitioner/dr1/_history/3\"}],"
    "\"managingOrganization\":{\"reference\":\"http://localhost/fhir/Organization/o1\"}}",
    "{\"resourceType\":\"Practitioner\",\"id\":\"dr1\",\"name\":[{\"family\":\"Jones\"}]}",
    "{\"resourceType\":\"Practitioner\",\"id\":\"dr2\",\"name\":[{\"family\":\"Brown\"}]}",
    "{\"resourceType\":\"Organization\",\"id\":\"o1\",\"name\":\"Acme Health\"}",
    "{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":\"final\","
    "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"2345-7\","
    "\"display\":\"Glucose\"}]},\"subject\":{\"reference\":\"Patient/p1\"},"
    "\"effectiveDateTime\":\"2024-01-10T08:00:00Z\",\"valueQuantity\":{\"value\":5.4,"
    "\"unit\":\"mg/dL\",\"system\":\"http://unitsofmeasure.org\",\"code\":\"mg/dL\"}}",
    "{\"resourceType\":\"Observation\",\"id\":\"o2\",\"status\":\"final\","
    "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"2345-7\","
    "\"display\":\"Glucose\"}]},\"subject\":{\"reference\":\"Patient/p1\"},"
    "\"effectiveDateTime\":\"2024-03-05T09:30:00+01:00\",\"valueQuantity\":{\"value\":7.9,"
    "\"unit\":\"mg/dL\",\"system\":\"http://unitsofmeasure.org\",\"code\":\"mg/dL\"}}",
    "{\"resourceType\":\"Observation\",\"id\":\"o3\",\"status\":\"preliminary\","
    "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8480-6\"}]},"
    "\"subject\":{\"reference\":\"Patient/p2\"},\"effectivePeriod\":{\"start\":\"2024-02-01\","
    "\"end\":\"2024-02-03\"},\"valueQuantity\":{\"value\":120,\"unit\":\"mmHg\","
    "\"system\":\"http://unitsofmeasure.org\",\"code\":\"mm[Hg]\"}}",
    "{\"resourceType\":\"Observation\",\"id\":\"o4\",\"status\":\"final\","
    "\"code\":{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":\"1234\"}]},"
    "\"subject\":{\"reference\":\"Patient/p3\"},\"effectiveDateTime\":\"2023\"}",
};

typedef struct {
    const char *type, *id, *json;
    const fhir_index_rows_t *rows;
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
                       .method = a->json ? "PUT" : "DELETE",
                       .status = a->json ? 200 : 204,
                       .json = a->json,
                       .json_len = a->json ? strlen(a->json) : 0,
                       .index = a->rows};
    int64_t seq;
    return store_txn_put(txn, &put, &seq, err);
}

static void put(const char *json)
{
    err_t err = ERR_INIT;
    json_t *resource = jv_parse(json, strlen(json), &err);
    assert_non_null(resource);
    arena_t arena;
    arena_init(&arena);
    fhir_index_rows_t rows;
    assert_int_equal(fhir_index_extract(NULL, resource, &arena, &rows, &err), ERR_OK);
    put_arg_t a = {.type = json_string_value(json_object_get(resource, "resourceType")),
                   .id = json_string_value(json_object_get(resource, "id")),
                   .json = json,
                   .rows = &rows};
    assert_int_equal(store_run(store, put_txn, &a, &err), ERR_OK);
    arena_release(&arena);
    json_decref(resource);
    err_release(&err);
}

static void delete (const char *type, const char *id)
{
    err_t err = ERR_INIT;
    put_arg_t a = {.type = type, .id = id};
    assert_int_equal(store_run(store, put_txn, &a, &err), ERR_OK);
    err_release(&err);
}

static int setup(void **state)
{
    test_db_setup(state);
    snprintf(path, sizeof(path), "%s", test_location);
    err_t err = ERR_INIT;
    assert_int_equal(store_open(path, NULL, &store, &err), ERR_OK);
    assert_int_equal(store_connect(store, &conn, &err), ERR_OK);
    for (size_t i = 0; i < sizeof(resources) / sizeof(resources[0]); i++)
        put(resources[i]);
    err_release(&err);
    return 0;
}

static int teardown(void **state)
{
    store_disconnect(conn);
    store_close(store);
    return test_db_teardown(state);
}

/* Splits "Type?a=1&b=2" (not percent-encoded) into a type and pairs. */
static const fhir_type_t *split(arena_t *arena, const char *text, fhir_search_pair_t *pairs,
                                size_t *npairs)
{
    const char *q = strchr(text, '?');
    assert_non_null(q);
    const fhir_type_t *type = q > text ? fhir_resource_type_find(text, (size_t)(q - text)) : NULL;
    *npairs = 0;
    for (const char *p = q + 1; *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        assert_non_null(eq);
        fhir_search_pair_t *pair = &pairs[(*npairs)++];
        pair->name = arena_strndup(arena, p, (size_t)(eq - p));
        pair->name_len = (size_t)(eq - p);
        pair->value = arena_strndup(arena, eq + 1, len - (size_t)(eq - p) - 1);
        pair->value_len = len - (size_t)(eq - p) - 1;
        p += len + (amp ? 1 : 0);
    }
    return type;
}

typedef struct {
    const char *compartment_id;
    const char *const *compartment_params;
    size_t ncompartment_params;
    const char *page;
} extra_t;

/* Runs a search; returns the match ids (then "+Type/id" of what is included), space
 * separated, and the result (for paging) in *out when given. */
/* Terminology modifiers as the repo layer resolves them: here always the codes c0 and c2 of
 * http://loinc.org. */
static void resolve_terminology(fhir_search_plan_t *plan)
{
    for (size_t b = 0; b < plan->nbranches; b++)
        for (size_t c = 0; c < plan->branches[b].nclauses; c++) {
            fhir_search_clause_t *clause = &plan->branches[b].clauses[c];
            fhir_search_modifier_t m = clause->modifier;
            if (m == FHIR_SEARCH_MOD_IN || m == FHIR_SEARCH_MOD_NOT_IN ||
                m == FHIR_SEARCH_MOD_ABOVE || m == FHIR_SEARCH_MOD_BELOW) {
                clause->codes = "[[\"http://loinc.org\",\"c0\"],[\"http://loinc.org\",\"c2\"]]";
                clause->ncodes = 2;
            }
        }
}

static const char *run(arena_t *arena, const char *text, const extra_t *extra,
                       store_search_result_t *out)
{
    fhir_search_pair_t pairs[16];
    size_t npairs;
    const fhir_type_t *type = split(arena, text, pairs, &npairs);
    fhir_search_query_t query = {
        .pairs = pairs, .npairs = npairs, .strict = true, .now_us = NOW_US};
    fhir_search_plan_t *plan;
    err_t err = ERR_INIT;
    if (fhir_search_parse(NULL, type, &query, arena, &plan, &err))
        fail_msg("%s: %s", text, err_message(&err));
    resolve_terminology(plan);
    store_search_t search = {.plan = plan, .base = "http://localhost/fhir"};
    if (extra) {
        search.page = extra->page;
        if (extra->compartment_id) {
            search.compartment_type = "Patient";
            search.compartment_id = extra->compartment_id;
            search.compartment_params = extra->compartment_params;
            search.ncompartment_params = extra->ncompartment_params;
        }
    }
    store_search_result_t result;
    if (store_search(conn, &search, arena, &result, &err))
        fail_msg("%s: %s", text, err_message(&err));
    err_release(&err);
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < result.n; i++) {
        if (i)
            buf_addch(&b, ' ');
        if (result.entries[i].included)
            buf_addf(&b, "+%s/", result.entries[i].version.type);
        buf_addstr(&b, result.entries[i].version.id);
        if (result.entries[i].contained_id)
            buf_addf(&b, "#%s", result.entries[i].contained_id);
    }
    if (out)
        *out = result;
    const char *s = arena_strndup(arena, b.ptr, b.len);
    buf_release(&b);
    return s;
}

typedef struct {
    const char *query;
    const char *expected;
} case_t;

static void check_cases(const case_t *cases, size_t n)
{
    size_t failures = 0;
    for (size_t i = 0; i < n; i++) {
        arena_t arena;
        arena_init(&arena);
        const char *got = run(&arena, cases[i].query, NULL, NULL);
        if (strcmp(got, cases[i].expected) != 0) {
            print_error("%s\n  expected: %s\n  got:      %s\n", cases[i].query, cases[i].expected,
                        got);
            failures++;
        }
        arena_release(&arena);
    }
    assert_int_equal(failures, 0);
}

static void test_strings_and_tokens(void **state)
{
    (void)state;
    static const case_t cases[] = {
        {"Patient?family=muller", "p1 p2"},
        {"Patient?family=M\xc3\x9cL", "p1 p2"},
        {"Patient?family:exact=Muller", "p2"},
        {"Patient?family:exact=muller", ""},
        {"Patient?family:contains=erg", "p4"},
        {"Patient?family:contains=%", ""},
        {"Patient?name=ell", "p4"},
        {"Patient?family=smith,jones", "p3"},
        {"Patient?family=muller&gender=male", "p2"},
        {"Patient?address-city=koln", "p1"},
        {"Patient?gender=female", "p1 p3"},
        {"Patient?gender=http://hl7.org/fhir/administrative-gender|male", "p2"},
        {"Patient?gender=|female", ""},
        {"Patient?gender:not=female", "p2 p4"},
        {"Patient?identifier=http://mrn|111", "p1"},
        {"Patient?identifier=222", "p2"},
        {"Patient?identifier=http://mrn|", "p1 p2"},
        {"Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|111", "p1"},
        {"Patient?phone=555-1000", "p1"},
        {"Patient?deceased=true", "p3"},
        {"Patient?active:missing=true", "p2 p3 p4"},
        {"Patient?_id=p1,p3", "p1 p3"},
        {"Patient?_id:missing=false", "p1 p2 p3 p4"},
        {"Observation?code=2345-7", "o1 o2"},
        {"Observation?code=http://loinc.org|8480-6", "o3"},
        {"Observation?code:text=gluc", "o1 o2"},
        {"Observation?status=final,preliminary&code=http://snomed.info/sct|", "o4"},
    };
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_dates_numbers_quantities(void **state)
{
    (void)state;
    static const case_t cases[] = {
        {"Patient?birthdate=1980", "p1 p2"},
        {"Patient?birthdate=1980-02", "p1 p2"},
        {"Patient?birthdate=1980-02-14", "p1"},
        {"Patient?birthdate=gt1980-02-14", "p2 p4"},
        {"Patient?birthdate=lt1980", "p3"},
        {"Patient?birthdate=ge1980", "p1 p2 p4"},
        {"Patient?birthdate=le1980-02-14", "p1 p2 p3"},
        {"Patient?birthdate=sa1980", "p4"},
        {"Patient?birthdate=eb1980", "p3"},
        {"Patient?birthdate=ne1980", "p3 p4"},
        {"Patient?birthdate=ge1980&birthdate=lt1990", "p1 p2"},
        {"Observation?date=2024-03-05", "o2"},
        {"Observation?date=2024-03-05T09:30:00+01:00", "o2"},
        {"Observation?date=2024-03-05T08:30Z", "o2"},
        {"Observation?date=2024-03-05T10:30:00+01:00", ""},
        {"Observation?date=2024-02", "o3"},
        {"Observation?date=2024-02-02", ""},
        {"Observation?date=ap2024-02-02", "o3"},
        {"Observation?date=ge2024-02-01", "o2 o3"},
        {"Observation?date=2023", "o4"},
        {"Observation?value-quantity=5.4", "o1"},
        {"Observation?value-quantity=gt5.4", "o2 o3"},
        {"Observation?value-quantity=le7.9", "o1 o2"},
        /* gt and le compare with the exact value, not the range [4.5, 5.5) of "5" */
        {"Observation?value-quantity=gt5", "o1 o2 o3"},
        {"Observation?value-quantity=le5", ""},
        {"Observation?value-quantity=120|http://unitsofmeasure.org|mm[Hg]", "o3"},
        {"Observation?value-quantity=120|http://unitsofmeasure.org|mg/dL", ""},
        {"Observation?value-quantity=5.4||mg/dL", "o1"},
        {"Observation?value-quantity=lt100||mm[Hg]", ""},
        {"Observation?value-quantity=ap120", "o3"},
        {"Observation?value-quantity:missing=true", "o4"},
        {"Observation?code-value-quantity=http://loinc.org|2345-7$gt6", "o2"},
        {"Observation?code-value-quantity=http://loinc.org|2345-7$lt6", "o1"},
        {"Observation?code-value-quantity=http://loinc.org|8480-6$lt6", ""},
        {"Patient?_lastUpdated=gt2000", "p1 p2 p3 p4"},
        {"Patient?_lastUpdated=lt2000", ""},
    };
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_references_chains_has(void **state)
{
    (void)state;
    static const case_t cases[] = {
        {"Patient?general-practitioner=Practitioner/dr1", "p1 p4"},
        {"Patient?general-practitioner=dr1", "p1 p4"},
        {"Patient?general-practitioner=Practitioner/dr1/_history/3", "p4"},
        {"Patient?general-practitioner:Practitioner=dr2", "p2"},
        {"Patient?organization=http://other.example/fhir/Organization/o9", "p3"},
        {"Patient?organization=Organization/o1", "p1 p4"},
        {"Patient?organization=o1", "p1 p4"}, /* an id alone: this server's absolute url too */
        {"Patient?organization=http://localhost/fhir/Organization/o1", "p1 p4"},
        {"Patient?organization:missing=true", "p2"},
        {"Patient?general-practitioner.family=jones", "p1 p4"},
        {"Patient?general-practitioner:Practitioner.name=brown", "p2"},
        {"Observation?subject:Patient.gender=female&code=2345-7", "o1 o2"},
        {"Observation?subject:Patient.general-practitioner.family=brown", "o3"},
        {"Patient?_has:Observation:patient:code=http://loinc.org|2345-7", "p1"},
        {"Patient?_has:Observation:subject:status=preliminary", "p2"},
        {"Practitioner?_has:Patient:general-practitioner:_has:Observation:patient:status="
         "preliminary",
         "dr2"},
        {"?_type=Patient,Practitioner&_id=dr1,p2", "p2 dr1"},
        {"?_id=o1", "o1 o1"}, /* Organization/o1 and Observation/o1 */
        {"Observation?code=8480-6&_include=Observation:subject", "o3 +Patient/p2"},
        {"Observation?code=2345-7&_include=Observation:subject", "o1 o2 +Patient/p1"},
        {"Patient?_id=p1&_revinclude=Observation:subject", "p1 +Observation/o1 +Observation/o2"},
        {"Observation?_id=o3&_include=Observation:subject&_include:iterate=Patient:general-"
         "practitioner",
         "o3 +Patient/p2 +Practitioner/dr2"},
        {"Patient?_id=p2&_include=*", "p2 +Practitioner/dr2"},
        {"Observation?_id=o4&_include=Observation:subject:Group", "o4"},
    };
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* References written as absolute urls of this server (p4's organization): followed by
 * chains, _has and includes; another server's (p3's) are not. */
static void test_absolute_references_followed(void **state)
{
    (void)state;
    static const case_t cases[] = {
        {"Patient?organization.name=acme", "p1 p4"},
        {"Patient?organization:Organization.name=acme&family=ost", "p4"},
        {"Organization?_has:Patient:organization:family=ostergaard", "o1"},
        {"Organization?_has:Patient:organization:family=smith", ""},
        {"Patient?_id=p4&_include=Patient:organization", "p4 +Organization/o1"},
        {"Patient?_id=p4&_include=*", "p4 +Practitioner/dr1 +Organization/o1"},
        {"Patient?_id=p3&_include=Patient:organization", "p3"},
        {"Organization?_id=o1&_revinclude=Patient:organization", "o1 +Patient/p1 +Patient/p4"},
        {"Organization?_id=o1&_revinclude=Patient:*", "o1 +Patient/p1 +Patient/p4"},
    };
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* Contained resources: their own rows (by their own type, apart from top-level ones), the
 * container or the contained resource as the match, chains through "#id", and rows that
 * follow updates and deletes of the container. Written here and deleted at the end, so the
 * other tests do not see them. */
static void test_contained(void **state)
{
    (void)state;
    put("{\"resourceType\":\"MedicationRequest\",\"id\":\"mr1\",\"status\":\"active\","
        "\"intent\":\"order\",\"subject\":{\"reference\":\"Patient/p1\"},"
        "\"medicationReference\":{\"reference\":\"#med1\"},\"contained\":["
        "{\"resourceType\":\"Medication\",\"id\":\"med1\",\"code\":{\"coding\":[{"
        "\"system\":\"http://rx\",\"code\":\"ctd-9\"}]}},"
        "{\"resourceType\":\"Medication\",\"id\":\"med2\",\"code\":{\"coding\":[{"
        "\"system\":\"http://rx\",\"code\":\"ctd-8\"}]}},"
        "{\"resourceType\":\"Patient\",\"code\":\"no id: left out\"}]}");
    put("{\"resourceType\":\"Medication\",\"id\":\"m-top\",\"code\":{\"coding\":[{"
        "\"system\":\"http://rx\",\"code\":\"ctd-9\"}]}}");
    put("{\"resourceType\":\"MedicationRequest\",\"id\":\"mr2\",\"status\":\"active\","
        "\"intent\":\"order\",\"subject\":{\"reference\":\"Patient/p2\"},"
        "\"medicationReference\":{\"reference\":\"Medication/m-top\"}}");
    static const case_t cases[] = {
        {"Medication?code=ctd-9", "m-top"},
        {"Medication?code=ctd-8", ""},
        {"Medication?code=ctd-9&_contained=true", "mr1"},
        {"Medication?code=ctd-8,ctd-9&_contained=true", "mr1"},
        {"Medication?code=ctd-9&_contained=true&_containedType=contained", "mr1#med1"},
        {"Medication?code=ctd-8,ctd-9&_contained=true&_containedType=contained",
         "mr1#med1 mr1#med2"},
        {"Medication?code=ctd-9&_contained=both", "mr1 m-top"}, /* in the order of creation */
        {"Medication?code=ctd-9&_contained=both&_containedType=contained", "m-top mr1#med1"},
        {"Medication?_id=med2&_contained=true&_containedType=contained", "mr1#med2"},
        {"Medication?code=ctd-8,ctd-9&_contained=true&_containedType=contained&_sort=-code",
         "mr1#med1 mr1#med2"},
        {"Medication?_contained=true&_containedType=contained&_count=1", "mr1#med1"},
        {"Patient?_contained=true", ""},
        {"MedicationRequest?medication.code=ctd-9", "mr1 mr2"},
        {"MedicationRequest?medication.code=ctd-8", ""}, /* med2 is not the medication */
        {"MedicationRequest?medication:Medication.code=http://rx|ctd-9&subject=Patient/p1", "mr1"},
        {"MedicationRequest?subject:missing=true", ""},
    };
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
    /* the rows follow the container */
    put("{\"resourceType\":\"MedicationRequest\",\"id\":\"mr1\",\"status\":\"active\","
        "\"intent\":\"order\",\"subject\":{\"reference\":\"Patient/p1\"},"
        "\"medicationReference\":{\"reference\":\"#med2\"},\"contained\":["
        "{\"resourceType\":\"Medication\",\"id\":\"med2\",\"code\":{\"coding\":[{"
        "\"system\":\"http://rx\",\"code\":\"ctd-8\"}]}}]}");
    static const case_t updated[] = {
        {"Medication?code=ctd-9&_contained=true", ""},
        {"Medication?code=ctd-8&_contained=true&_containedType=contained", "mr1#med2"},
        {"MedicationRequest?medication.code=ctd-8", "mr1"},
        {"MedicationRequest?medication.code=ctd-9", "mr2"},
    };
    check_cases(updated, sizeof(updated) / sizeof(updated[0]));
    delete ("MedicationRequest", "mr1");
    delete ("MedicationRequest", "mr2");
    delete ("Medication", "m-top");
    static const case_t deleted[] = {
        {"Medication?code=ctd-8&_contained=both", ""},
        {"MedicationRequest?medication.code=ctd-8", ""},
    };
    check_cases(deleted, sizeof(deleted) / sizeof(deleted[0]));
    /* nothing of them is left in the index */
    static const char leftovers[] = "SELECT (SELECT count(*) FROM resource_contained) + "
                                    "(SELECT count(*) FROM ix_token WHERE type LIKE '#%') + "
                                    "(SELECT count(*) FROM ix_reference WHERE rid < 0)";
    if (test_is_pg()) {
        assert_int_equal(test_pg_query(leftovers), 0);
        return;
    }
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *stmt;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT (SELECT count(*) FROM resource_contained) + "
                                        "(SELECT count(*) FROM ix_token WHERE type LIKE '#%') + "
                                        "(SELECT count(*) FROM ix_reference WHERE rid < 0)",
                                        -1, &stmt, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(stmt, 0), 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

static void test_sort(void **state)
{
    (void)state;
    static const case_t cases[] = {
        {"Patient?_sort=birthdate", "p3 p2 p1 p4"},
        {"Patient?_sort=-birthdate", "p4 p1 p2 p3"},
        {"Patient?_sort=family", "p1 p2 p4 p3"},
        {"Patient?_sort=-family,birthdate", "p3 p4 p2 p1"},
        {"Patient?_sort=gender,-birthdate", "p1 p3 p2 p4"},
        {"Observation?_sort=-value-quantity", "o3 o2 o1 o4"},
        {"Observation?_sort=value-quantity", "o1 o2 o3 o4"},
        {"Observation?_sort=-date", "o2 o3 o1 o4"},
        {"Patient?_sort=-_id", "p4 p3 p2 p1"},
        {"Patient?_sort=_lastUpdated", "p1 p2 p3 p4"},
        {"Patient?_count=2", "p1 p2"},
        {"Patient?_count=0", ""},
        {"Patient?_offset=3", "p4"},
    };
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static const char *walk(arena_t *arena, const char *query, bool backwards_too);

/* Strings sort and match prefixes by the bytes of their keys on both drivers, whatever the
 * database's collation: tools/pg-cluster makes its databases with ICU's en-US, where 'a' <
 * 'B' < 'b' and '_' < '-', and every case below would come out otherwise there. */
static void test_byte_order(void **state)
{
    (void)state;
    if (test_is_pg())
        assert_int_equal(test_pg_query("SELECT ('a' < 'B')::int"), 1); /* not a byte order */
    put("{\"resourceType\":\"Patient\",\"id\":\"a1\",\"name\":[{\"family\":\"a_c\"}],"
        "\"identifier\":[{\"value\":\"b\"}]}");
    put("{\"resourceType\":\"Patient\",\"id\":\"B1\",\"name\":[{\"family\":\"a-b\"}],"
        "\"identifier\":[{\"value\":\"B\"}]}");
    put("{\"resourceType\":\"Patient\",\"id\":\"b2\",\"name\":[{\"family\":\"ab\"}],"
        "\"identifier\":[{\"value\":\"a\"}]}");
    put("{\"resourceType\":\"ValueSet\",\"id\":\"vs1\",\"url\":\"http://x/Ab\"}");
    put("{\"resourceType\":\"ValueSet\",\"id\":\"vs2\",\"url\":\"http://x/ab\"}");
    put("{\"resourceType\":\"ValueSet\",\"id\":\"vs3\",\"url\":\"http://x/b\"}");
    put("{\"resourceType\":\"Observation\",\"id\":\"ot1\",\"status\":\"final\","
        "\"code\":{\"text\":\"a-b\"}}");
    put("{\"resourceType\":\"Observation\",\"id\":\"ot2\",\"status\":\"final\","
        "\"code\":{\"text\":\"a_c\"}}");
    static const case_t cases[] = {
        {"Patient?_id=a1,B1,b2&_sort=_id", "B1 a1 b2"},
        {"Patient?_id=a1,B1,b2&_sort=-_id", "b2 a1 B1"},
        {"Patient?_id=a1,B1,b2&_sort=identifier", "B1 b2 a1"},
        {"Patient?_id=a1,B1,b2&_sort=family", "B1 a1 b2"},
        {"Patient?family=a_", "a1"},
        {"Patient?family=a-", "B1"},
        {"ValueSet?_sort=url", "vs1 vs2 vs3"},
        {"ValueSet?_sort=-url", "vs3 vs2 vs1"},
        {"ValueSet?url:below=http://x/a", "vs2"},
        {"ValueSet?url:below=http://x/A", "vs1"},
        {"Observation?code:text=a_", "ot2"},
        {"Observation?code:text=a-", "ot1"},
    };
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
    /* the same through pages: the cursors compare in byte order too */
    arena_t arena;
    arena_init(&arena);
    assert_string_equal(walk(&arena, "Patient?_id=a1,B1,b2&_sort=identifier&_count=1", true),
                        "B1 | b2 | a1 << | b2 | B1");
    assert_string_equal(walk(&arena, "ValueSet?_sort=url&_count=1", true),
                        "vs1 | vs2 | vs3 << | vs2 | vs1");
    assert_string_equal(walk(&arena, "Patient?_id=a1,B1,b2&_sort=-_id&_count=2", true),
                        "b2 a1 | B1 << | b2 a1");
    arena_release(&arena);
}

static void test_total_and_summary(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    store_search_result_t r;
    assert_string_equal(run(&arena, "Patient?gender=female&_total=accurate&_count=1", NULL, &r),
                        "p1");
    assert_int_equal(r.total, 2);
    assert_string_equal(run(&arena, "Patient?_summary=count", NULL, &r), "");
    assert_int_equal(r.total, 4);
    assert_string_equal(run(&arena, "Patient?gender=female", NULL, &r), "p1 p3");
    assert_int_equal(r.total, -1);
    assert_null(r.next);
    assert_null(r.previous);
    arena_release(&arena);
}

static void test_compartment(void **state)
{
    (void)state;
    static const char *const params[] = {"subject", "performer"};
    extra_t extra = {
        .compartment_id = "p1", .compartment_params = params, .ncompartment_params = 2};
    arena_t arena;
    arena_init(&arena);
    assert_string_equal(run(&arena, "Observation?", &extra, NULL), "o1 o2");
    assert_string_equal(run(&arena, "Observation?date=2024-03", &extra, NULL), "o2");
    extra.compartment_id = "p4";
    assert_string_equal(run(&arena, "Observation?", &extra, NULL), "");
    arena_release(&arena);
}

/* Follows next links from the first page; returns the pages joined with " | ". */
static const char *walk(arena_t *arena, const char *query, bool backwards_too)
{
    buf_t b = BUF_INIT;
    store_search_result_t r;
    extra_t extra = {0};
    const char *page = run(arena, query, NULL, &r);
    buf_addstr(&b, page);
    const char *last_previous = NULL;
    while (r.next) {
        extra.page = r.next;
        page = run(arena, query, &extra, &r);
        buf_addf(&b, " | %s", page);
        last_previous = r.previous;
    }
    if (backwards_too) {
        r.previous = last_previous;
        buf_addstr(&b, " <<");
        while (r.previous) {
            extra.page = r.previous;
            page = run(arena, query, &extra, &r);
            buf_addf(&b, " | %s", page);
        }
    }
    const char *s = arena_strndup(arena, b.ptr, b.len);
    buf_release(&b);
    return s;
}

static void test_paging(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    assert_string_equal(walk(&arena, "Patient?_count=2", true), "p1 p2 | p3 p4 << | p1 p2");
    assert_string_equal(walk(&arena, "Patient?_sort=-birthdate&_count=1", true),
                        "p4 | p1 | p2 | p3 << | p2 | p1 | p4");
    assert_string_equal(walk(&arena, "Patient?_sort=gender,-family&_count=3", true),
                        "p3 p1 p2 | p4 << | p3 p1 p2");
    assert_string_equal(walk(&arena, "Observation?_sort=value-quantity&_count=3", true),
                        "o1 o2 o3 | o4 << | o1 o2 o3");
    assert_string_equal(walk(&arena, "Observation?_sort=-value-quantity&_count=1", false),
                        "o3 | o2 | o1 | o4");

    /* writes between pages: a new first resource and a deleted later one do not disturb the
     * pages still to come */
    store_search_result_t r;
    assert_string_equal(run(&arena, "Patient?_sort=-birthdate&_count=2", NULL, &r), "p4 p1");
    put("{\"resourceType\":\"Patient\",\"id\":\"p0\",\"birthDate\":\"2001\"}");
    put("{\"resourceType\":\"Patient\",\"id\":\"p5\",\"birthDate\":\"1970\"}");
    extra_t extra = {.page = r.next};
    assert_string_equal(run(&arena, "Patient?_sort=-birthdate&_count=2", &extra, &r), "p2 p3");
    extra.page = r.next;
    assert_string_equal(run(&arena, "Patient?_sort=-birthdate&_count=2", &extra, &r), "p5");
    assert_null(r.next);
    delete ("Patient", "p0");
    delete ("Patient", "p5");

    extra.page = "x_1";
    err_t err = ERR_INIT;
    fhir_search_pair_t pair = {"_count", 6, "2", 1};
    fhir_search_query_t query = {.pairs = &pair, .npairs = 1, .now_us = NOW_US};
    fhir_search_plan_t *plan;
    assert_int_equal(
        fhir_search_parse(NULL, fhir_resource_type_find("Patient", 7), &query, &arena, &plan, &err),
        ERR_OK);
    static const char *const bad[] = {"x_1", "a", "a_", "a_i1_2", "a_zz", "a_-3", "b_s4_1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        store_search_t search = {.plan = plan, .page = bad[i]};
        store_search_result_t result;
        assert_int_equal(store_search(conn, &search, &arena, &result, &err), ERR_INVALID);
        err_reset(&err);
    }
    err_release(&err);
    arena_release(&arena);
}

static void test_writes_change_rows(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    put("{\"resourceType\":\"Patient\",\"id\":\"p9\",\"gender\":\"female\","
        "\"name\":[{\"family\":\"Nine\"}]}");
    assert_string_equal(run(&arena, "Patient?family=nine", NULL, NULL), "p9");
    put("{\"resourceType\":\"Patient\",\"id\":\"p9\",\"gender\":\"male\","
        "\"name\":[{\"family\":\"Neun\"}]}");
    assert_string_equal(run(&arena, "Patient?family=nine", NULL, NULL), "");
    assert_string_equal(run(&arena, "Patient?family=neun&gender=male", NULL, NULL), "p9");
    delete ("Patient", "p9");
    assert_string_equal(run(&arena, "Patient?family=neun", NULL, NULL), "");
    assert_string_equal(run(&arena, "Patient?_id=p9", NULL, NULL), "");
    arena_release(&arena);
}

/* _content and _text over ix_text: words, phrases, prefixes, AND, OR, parentheses, case and
 * accents; rows replaced by updates and removed by deletes. */
static void test_fulltext(void **state)
{
    (void)state;
    put("{\"resourceType\":\"Basic\",\"id\":\"t1\",\"code\":{\"text\":\"Bone metastases\"},"
        "\"text\":{\"status\":\"generated\",\"div\":\"<div xmlns=\\\"http://www.w3.org/1999/"
        "xhtml\\\"><p>Bone &amp; liver metastases</p><p>Cr\xc3\xa8me br\xc3\xbbl\xc3\xa9"
        "e&#33;</p></div>\"}}");
    put("{\"resourceType\":\"Basic\",\"id\":\"t2\",\"code\":{\"text\":\"Heart failure\"},"
        "\"text\":{\"status\":\"generated\",\"div\":\"<div xmlns=\\\"http://www.w3.org/1999/"
        "xhtml\\\">Chronic heart failure, NYHA III</div>\"}}");
    put("{\"resourceType\":\"Basic\",\"id\":\"t3\",\"code\":{\"text\":\"Liver cirrhosis\"}}");
    static const case_t cases[] = {
        {"Basic?_content=liver", "t1 t3"},
        {"Basic?_text=liver", "t1"},
        {"Basic?_text=LIVER", "t1"},
        {"Basic?_text=creme", "t1"},
        {"Basic?_text=BR\xc3\x9bL*", "t1"},
        {"Basic?_text=brul", ""},
        {"Basic?_content=heart OR cirrhosis", "t2 t3"},
        {"Basic?_content=(bone OR heart) and failure", "t2"},
        {"Basic?_content=(bone or heart) AND (metastases OR nyha)", "t1 t2"},
        {"Basic?_content=\"liver metastases\"", "t1"},
        {"Basic?_content=\"metastases liver\"", ""},
        {"Basic?_content=liver,heart", "t1 t2 t3"},
        {"Basic?_content=liver heart", ""},
        {"Basic?_content=liver cirrhosis", "t3"},
        {"Basic?_content=nyha", "t2"},
        {"Basic?_text=cirrhosis", ""},
        {"Basic?_content=generated", "t1 t2"},
        {"Basic?_content=xhtml", ""},
        {"Basic?_content=\"-\" OR \"*\"", ""},
        {"Basic?_content=\"NEAR(a b)\" OR \"x\"\"y\"", ""},
        {"Basic?_content=liver&_text=bone", "t1"},
        {"Patient?_content=liver", ""},
    };
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));

    /* what the user cannot write: an error naming the query, never a query error */
    static const struct {
        const char *query, *message;
    } errors[] = {
        {"Basic?_content=\"", "cannot read the _content query \"?\": a quote is not closed"},
        {"Basic?_content=AND(", "cannot read the _content query \"AND(\": a term is missing "
                                "before \"AND\""},
        {"Basic?_content=(liver", "cannot read the _content query \"(liver\": a \"(\" is not "
                                  "closed"},
        {"Basic?_content=liver)", "cannot read the _content query \"liver)\": a \")\" has no "
                                  "\"(\""},
        {"Basic?_content=liver OR", "cannot read the _content query \"liver OR\": a term is "
                                    "missing at the end"},
        {"Basic?_text:exact=liver", "modifier \":exact\" does not apply to \"_text\""},
    };
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        arena_t arena;
        arena_init(&arena);
        fhir_search_pair_t pairs[4];
        size_t npairs;
        const fhir_type_t *type = split(&arena, errors[i].query, pairs, &npairs);
        fhir_search_query_t query = {.pairs = pairs, .npairs = npairs, .strict = true};
        fhir_search_plan_t *plan;
        err_t err = ERR_INIT;
        assert_int_equal(fhir_search_parse(NULL, type, &query, &arena, &plan, &err), ERR_INVALID);
        assert_string_equal(err_message(&err), errors[i].message);
        err_release(&err);
        arena_release(&arena);
    }

    arena_t arena;
    arena_init(&arena);
    put("{\"resourceType\":\"Basic\",\"id\":\"t1\",\"code\":{\"text\":\"Fracture\"}}");
    assert_string_equal(run(&arena, "Basic?_content=liver", NULL, NULL), "t3");
    assert_string_equal(run(&arena, "Basic?_text=bone", NULL, NULL), "");
    assert_string_equal(run(&arena, "Basic?_content=fracture", NULL, NULL), "t1");
    delete ("Basic", "t3");
    assert_string_equal(run(&arena, "Basic?_content=liver", NULL, NULL), "");
    delete ("Basic", "t1");
    delete ("Basic", "t2");
    assert_string_equal(run(&arena, "Basic?_content=heart OR fracture", NULL, NULL), "");
    arena_release(&arena);
}

/* Words are split and folded by Concerto on both drivers (sql_text.h): e-mail addresses,
 * urls, hyphens and decimals are words apart, accents and case fold, and each query finds
 * the same resources on SQLite and PostgreSQL. */
static void test_fulltext_words(void **state)
{
    (void)state;
    put("{\"resourceType\":\"Basic\",\"id\":\"w1\",\"code\":{\"text\":\"Contact "
        "J.Doe@Example.org, see https://example.org/care-plan?id=42 for the follow-up; dose "
        "2.5 mg, ICD-10 C50.9\"},\"text\":{\"status\":\"generated\",\"div\":\"<div "
        "xmlns=\\\"http://www.w3.org/1999/xhtml\\\">\xc3\x86r\xc3\xb8 Stra\xc3\x9f"
        "e \xe2\x80\x93 \xce\x95\xce\xbb\xce\xad\xce\xbd\xce\xb7\xe2\x80\xa6 120/80"
        "</div>\"}}");
    put("{\"resourceType\":\"Basic\",\"id\":\"w2\",\"code\":{\"text\":\"well-known "
        "plan 25 mg\"}}");
    static const case_t cases[] = {
        {"Basic?_content=doe", "w1"},
        {"Basic?_content=j.doe@example.org", "w1"},
        {"Basic?_content=\"doe example\"", "w1"},
        {"Basic?_content=j.doe@example.com", ""},
        {"Basic?_content=example", "w1"},
        {"Basic?_content=care", "w1"},
        {"Basic?_content=org/care-plan", "w1"},
        {"Basic?_content=https", "w1"},
        {"Basic?_content=42", "w1"},
        {"Basic?_content=plan", "w1 w2"},
        {"Basic?_content=follow", "w1"},
        {"Basic?_content=follow-up", "w1"},
        {"Basic?_content=\"follow up\"", "w1"},
        {"Basic?_content=followup", ""},
        {"Basic?_content=well", "w2"},
        {"Basic?_content=known", "w2"},
        {"Basic?_content=well-known", "w2"},
        {"Basic?_content=5", "w1"},
        {"Basic?_content=2.5", "w1"},
        {"Basic?_content=25", "w2"},
        {"Basic?_content=2*", "w1 w2"},
        {"Basic?_content=icd-10", "w1"},
        {"Basic?_content=icd10", ""},
        {"Basic?_content=c50", "w1"},
        {"Basic?_content=c50.9", "w1"},
        {"Basic?_text=aero strasse", "w1"},
        {"Basic?_text=\xc3\x86R\xc3\x98", "w1"},
        {"Basic?_text=STRASSE", "w1"},
        {"Basic?_text=\xce\xb5\xce\xbb\xce\xb5\xce\xbd\xce\xb7", "w1"},
        {"Basic?_text=\"strasse \xce\xb5\xce\xbb\xce\xb5\xce\xbd\xce\xb7\"", "w1"},
        {"Basic?_text=\"aero \xce\xb5\xce\xbb\xce\xb5\xce\xbd\xce\xb7\"", ""},
        {"Basic?_text=120", "w1"},
        {"Basic?_text=\"120 80\"", "w1"},
        {"Basic?_text=doe", ""},
        {"Basic?_content=\"--\" OR well", "w2"},
        {"Basic?_content=\"--\" AND well", ""},
    };
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* A database whose full text was written before schema version 9 (the database's own
 * splitting) gets its words split by Concerto when it is opened. */
static void test_fulltext_migrated(void **state)
{
    (void)state;
    put("{\"resourceType\":\"Basic\",\"id\":\"w1\",\"code\":{\"text\":\"Contact "
        "J.Doe@Example.org, dose 2.5 mg\"},\"text\":{\"status\":\"generated\",\"div\":"
        "\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\">Cr\xc3\xa8me br\xc3\xbbl"
        "\xc3\xa9"
        "e</div>\"}}");
    store_disconnect(conn);
    store_close(store);
    /* the full text as version 8 kept it (without the later migrations: the tables of 10 and later
     * go) */
    if (test_is_pg()) {
        test_pg_query("ALTER TABLE ix_text DROP COLUMN words;"
                      "ALTER TABLE ix_text ADD COLUMN words tsvector GENERATED ALWAYS AS ("
                      "setweight(to_tsvector('simple', coalesce(concerto_fold(narrative), "
                      "'')), 'A') || setweight(to_tsvector('simple', "
                      "coalesce(concerto_fold(content), '')), 'B')) STORED;"
                      "DROP TABLE account, account_recovery, client, client_assertion, token;"
                      "DROP TABLE login_session, authz_request;"
                      "DROP TABLE audit, audit_head;"
                      "DROP TABLE task_work, task_work_pool, risk_work, care_member;"
                      "DROP TABLE hl7_message;"
                      "DROP TABLE server_key;"
                      "ALTER TABLE resource_version DROP COLUMN author;"
                      "DELETE FROM schema_migration WHERE version >= 9");
        assert_int_equal(test_pg_query("SELECT count(*) FROM ix_text WHERE words @@ "
                                       "'doe'::tsquery"),
                         0);
    } else {
        sqlite3 *db;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(
            sqlite3_exec(db,
                         "CREATE VIRTUAL TABLE ix_text_old USING fts5(content, narrative, "
                         "tokenize = 'unicode61 remove_diacritics 2');"
                         "INSERT INTO ix_text_old (rowid, content, narrative) VALUES ((SELECT "
                         "rid FROM resource WHERE id = 'w1'), 'Contact J.Doe@Example.org, dose "
                         "2.5 mg Cr\xc3\xa8me br\xc3\xbbl\xc3\xa9"
                         "e', 'Cr\xc3\xa8me br\xc3\xbbl\xc3\xa9"
                         "e');"
                         "DROP TABLE ix_text; ALTER TABLE ix_text_old RENAME TO ix_text;"
                         "DROP TABLE account; DROP TABLE account_recovery; DROP TABLE client;"
                         "DROP TABLE client_assertion; DROP TABLE token;"
                         "DROP TABLE login_session; DROP TABLE authz_request;"
                         "DROP TABLE audit; DROP TABLE audit_head;"
                         "DROP TABLE task_work; DROP TABLE task_work_pool; DROP TABLE risk_work;"
                         "DROP TABLE care_member; DROP TABLE hl7_message;"
                         "DROP TABLE server_key;"
                         "ALTER TABLE resource_version DROP COLUMN author;"
                         "DELETE FROM schema_migration WHERE version >= 9",
                         NULL, NULL, NULL),
            SQLITE_OK);
        sqlite3_close(db);
    }
    err_t err = ERR_INIT;
    assert_int_equal(store_open(path, NULL, &store, &err), ERR_OK);
    assert_int_equal(store_connect(store, &conn, &err), ERR_OK);
    err_release(&err);
    static const case_t cases[] = {
        {"Basic?_content=doe", "w1"}, {"Basic?_content=j.doe@example.org", "w1"},
        {"Basic?_content=5", "w1"},   {"Basic?_text=creme", "w1"},
        {"Basic?_text=doe", ""},      {"Basic?_content=\"dose 2.5 mg\"", "w1"},
    };
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* Includes stop at STORE_SEARCH_MAX_INCLUDE resources, and say so only when there were more:
 * the statements read no more rows than that (docs/internals/store.md). */
typedef struct {
    put_arg_t *puts;
    size_t n;
} put_many_t;

static status_t put_many_txn(store_txn_t *txn, void *arg, err_t *err)
{
    put_many_t *m = arg;
    status_t rc = ERR_OK;
    for (size_t i = 0; i < m->n && !rc; i++)
        rc = put_txn(txn, &m->puts[i], err);
    return rc;
}

/* Observations z<from>.. z<to - 1> of Patient pz, in one transaction. */
static void put_observations_of_pz(arena_t *arena, int from, int to)
{
    put_many_t m = {arena_zalloc(arena, (size_t)(to - from) * sizeof(put_arg_t)), 0};
    err_t err = ERR_INIT;
    for (int i = from; i < to; i++) {
        put_arg_t *a = &m.puts[m.n++];
        a->type = "Observation";
        a->id = arena_printf(arena, "z%d", i);
        a->json = arena_printf(arena,
                               "{\"resourceType\":\"Observation\",\"id\":\"%s\",\"status\":"
                               "\"final\",\"code\":{\"text\":\"x\"},\"subject\":"
                               "{\"reference\":\"Patient/pz\"}}",
                               a->id);
        json_t *resource = jv_parse(a->json, strlen(a->json), &err);
        fhir_index_rows_t *rows = arena_zalloc(arena, sizeof(*rows));
        assert_int_equal(fhir_index_extract(NULL, resource, arena, rows, &err), ERR_OK);
        json_decref(resource);
        a->rows = rows;
    }
    assert_int_equal(store_run(store, put_many_txn, &m, &err), ERR_OK);
    err_release(&err);
}

/* Includes stop at STORE_SEARCH_MAX_INCLUDE resources, and say so only when there were more:
 * the statements read no more rows than that (docs/internals/store.md). */
static void test_includes_capped(void **state)
{
    (void)state;
    put("{\"resourceType\":\"Patient\",\"id\":\"pz\"}");
    arena_t arena;
    arena_init(&arena);
    put_observations_of_pz(&arena, 0, STORE_SEARCH_MAX_INCLUDE);
    store_search_result_t r;
    run(&arena, "Patient?_id=pz&_revinclude=Observation:subject", NULL, &r);
    assert_int_equal(r.n, 1 + STORE_SEARCH_MAX_INCLUDE);
    assert_false(r.includes_truncated);
    /* o1 and o2 of p1 too: 1002 is more than fits */
    run(&arena, "Patient?_id=pz,p1&_revinclude=Observation:subject", NULL, &r);
    assert_int_equal(r.n, 2 + STORE_SEARCH_MAX_INCLUDE);
    assert_true(r.includes_truncated);
    /* the ones already kept do not count against the cap: _include:iterate comes back to pz */
    run(&arena,
        "Patient?_id=pz&_revinclude=Observation:subject&_include:iterate=Observation:subject", NULL,
        &r);
    assert_int_equal(r.n, 1 + STORE_SEARCH_MAX_INCLUDE);
    assert_false(r.includes_truncated);
    put_observations_of_pz(&arena, STORE_SEARCH_MAX_INCLUDE, STORE_SEARCH_MAX_INCLUDE + 1);
    run(&arena, "Patient?_id=pz&_revinclude=Observation:subject", NULL, &r);
    assert_int_equal(r.n, 1 + STORE_SEARCH_MAX_INCLUDE);
    assert_true(r.includes_truncated);
    arena_release(&arena);
}

/* The ids of every page of query (with _count=3 added), following next links. */
static const char *all_pages(arena_t *arena, const char *query)
{
    buf_t b = BUF_INIT;
    store_search_result_t r;
    extra_t extra = {0};
    const char *q = arena_printf(arena, "%s&_count=3", query);
    const char *page = run(arena, q, NULL, &r);
    buf_addstr(&b, page);
    while (r.next) {
        extra.page = r.next;
        page = run(arena, q, &extra, &r);
        if (*page)
            buf_addf(&b, "%s%s", b.len ? " " : "", page);
    }
    const char *out = arena_strndup(arena, b.ptr, b.len);
    buf_release(&b);
    return out;
}

/*
 * With many resources and small pages the driver tests unselective clauses per resource
 * (EXISTS) instead of listing their rids; the results must be the same either way: every
 * query here gives the same ids in pages of 3 (probes) as in one page of 1000 (lists).
 */
/* 120 patients and their observations (each test starts from the few resources[]). */
static void put_population(void)
{
    static const char *const genders[] = {"female", "male", "other"};
    for (int i = 0; i < 120; i++) {
        char json[1024];
        snprintf(json, sizeof(json),
                 "{\"resourceType\":\"Patient\",\"id\":\"q%d\",%s"
                 "\"identifier\":[{\"system\":\"urn:q\",\"value\":\"%d\"}],"
                 "\"name\":[{\"family\":\"Fam%d\",\"given\":[\"G%d\"]}],"
                 "\"gender\":\"%s\",\"birthDate\":\"19%02d-0%d\""
                 "%s}",
                 i, i % 4 ? "\"active\":true," : "", i % 7, i % 10, i % 3, genders[i % 3], i % 100,
                 1 + i % 9,
                 i % 5 ? ",\"generalPractitioner\":[{\"reference\":\"Practitioner/dr1\"}]" : "");
        put(json);
        snprintf(json, sizeof(json),
                 "{\"resourceType\":\"Observation\",\"id\":\"qo%d\",\"status\":\"%s\","
                 "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"c%d\"}]},"
                 "\"subject\":{\"reference\":\"Patient/q%d\"},"
                 "\"effectiveDateTime\":\"2024-0%d-1%d\",\"valueQuantity\":{\"value\":%d,"
                 "\"system\":\"http://unitsofmeasure.org\",\"code\":\"kg\"}}",
                 i, i % 2 ? "final" : "amended", i % 3, i, 1 + i % 9, i % 10, i);
        put(json);
    }
}

static void test_probes_match_lists(void **state)
{
    (void)state;
    put_population();
    /* a new connection: the type counts the estimates use are remembered per connection */
    err_t err = ERR_INIT;
    store_disconnect(conn);
    assert_int_equal(store_connect(store, &conn, &err), ERR_OK);
    err_release(&err);
    static const char *const queries[] = {
        "Patient?gender=female",
        "Patient?gender:not=female",
        "Patient?gender=male,other&active=true",
        "Patient?active:missing=true",
        "Patient?active:missing=false&gender=female",
        "Patient?family=fam1",
        "Patient?family:contains=am&given=g1",
        "Patient?identifier=urn:q|",
        "Patient?identifier=urn:q|3,urn:q|4&gender=male",
        "Patient?birthdate=ge1950",
        "Patient?birthdate=lt1950&birthdate=ge1920",
        "Patient?birthdate=ne1950-02",
        "Patient?general-practitioner=Practitioner/dr1",
        "Patient?general-practitioner=Practitioner/dr1&gender:not=male",
        "Patient?general-practitioner=dr1&gender:not=male",
        "Patient?general-practitioner:missing=true",
        "Patient?general-practitioner.family=jones&active=true",
        "Patient?_has:Observation:subject:status=final&gender=female",
        "Patient?_has:Observation:subject:status=final",
        "Patient?_has:Observation:patient:code=http://loinc.org|c1",
        "Patient?_has:Observation:subject:value-quantity=gt50&active=true",
        "Patient?_has:Observation:subject:code=c2,c0&_has:Observation:subject:status=amended",
        "Observation?status=final",
        "Observation?status=final&code=c1",
        "Observation?value-quantity=gt50",
        "Observation?value-quantity=gt49.5&value-quantity=le60",
        "Observation?value-quantity=lt30||kg&status:not=final",
        "Observation?date=ge2024-05&code=http://loinc.org|c2",
        "Observation?code-value-quantity=http://loinc.org|c0$gt20",
        "Observation?subject:Patient.gender=other&value-quantity=ge10",
        "Observation?code:in=http://example.org/vs",
        "Observation?code:not-in=http://example.org/vs&status=final",
        "Observation?code:below=http://loinc.org|c0&value-quantity=lt60",
        "Observation?value-quantity=gt50000|http://unitsofmeasure.org|g",
        "Observation?value-quantity=ne30|http://unitsofmeasure.org|kg&status=amended",
    };
    arena_t arena;
    arena_init(&arena);
    size_t failures = 0;
    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        const char *listed =
            run(&arena, arena_printf(&arena, "%s&_count=1000", queries[i]), NULL, NULL);
        const char *probed = all_pages(&arena, queries[i]);
        if (strcmp(listed, probed) != 0 || !*listed) {
            print_error("%s\n  one page: %s\n  pages:    %s\n", queries[i], listed, probed);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
    arena_release(&arena);
}

/* Every page of query forward with _count=4, then back from the last page, as "ids | ids <<
 * ids | ids". */
static const char *both_ways(arena_t *arena, const char *query)
{
    return walk(arena, arena_printf(arena, "%s&_count=4", query), true);
}

/*
 * A sorted search walks the index of its first key (values in index order, then the
 * resources without one); the pages must be those of sorting every match, both ways, with
 * NULLs last, ties broken by the next keys and the rid.
 */
static void test_walks_match_sorts(void **state)
{
    (void)state;
    put_population();
    static const char *const queries[] = {
        "Patient?_sort=birthdate",
        "Patient?_sort=-birthdate",
        "Patient?_sort=family,-birthdate",
        "Patient?_sort=-family,given",
        "Patient?gender=female&_sort=birthdate",
        "Patient?_sort=gender,-_id",
        "Patient?_sort=-active,family",
        "Patient?_sort=address-city",
        "Patient?_sort=-address-city,-birthdate",
        "Observation?_sort=-value-quantity",
        "Observation?_sort=date&status=final",
        "Observation?_sort=-date,code",
        "Observation?code=c1&_sort=value-quantity",
        "Patient?_sort=-_lastUpdated",
        "Patient?gender=male&_sort=_id",
        "Observation?_sort=-_lastUpdated,code",
        "Patient?_sort=-_id,birthdate",
    };
    arena_t arena;
    arena_init(&arena);
    size_t failures = 0;
    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        sqlite__search_walks = false;
        const char *sorted = both_ways(&arena, queries[i]);
        sqlite__search_walks = true;
        const char *walked = both_ways(&arena, queries[i]);
        if (strcmp(sorted, walked) != 0 || strlen(sorted) < 20) {
            print_error("%s\n  sorted: %s\n  walked: %s\n", queries[i], sorted, walked);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
    arena_release(&arena);
}

/*
 * Two bounds of a date parameter with at most one value per resource are tested on one
 * index row: the same matches as each bound alone, and for a parameter with several values
 * a resource whose values meet each bound with another value still matches. 40 patients
 * more let the driver test the merged clause per resource (small pages).
 */
static void test_date_bounds_merged(void **state)
{
    (void)state;
    static const char *const extra[] = {
        "{\"resourceType\":\"Patient\",\"id\":\"p5\",\"birthDate\":\"2032-02-29\"}",
        "{\"resourceType\":\"Patient\",\"id\":\"p6\",\"birthDate\":\"2035\"}",
        "{\"resourceType\":\"Patient\",\"id\":\"p7\",\"birthDate\":\"2032-02\"}",
        "{\"resourceType\":\"Encounter\",\"id\":\"e1\",\"status\":\"finished\",\"class\":{"
        "\"code\":\"AMB\"},\"period\":{\"start\":\"2024-01-01\",\"end\":\"2024-01-05\"}}",
        "{\"resourceType\":\"Encounter\",\"id\":\"e2\",\"status\":\"in-progress\",\"class\":{"
        "\"code\":\"IMP\"},\"period\":{\"start\":\"2023-12-01\"}}",
        "{\"resourceType\":\"Encounter\",\"id\":\"e3\",\"status\":\"finished\",\"class\":{"
        "\"code\":\"AMB\"},\"period\":{\"start\":\"2024-02-10T10:00:00Z\",\"end\":"
        "\"2024-02-10T12:00:00Z\"}}",
        /* Observation.date has one value per event of a Timing: 2024-01-01 is before
           2024-01-25, 2024-02-01 after 2024-01-20 */
        "{\"resourceType\":\"Observation\",\"id\":\"o5\",\"status\":\"final\",\"code\":{"
        "\"text\":\"timed\"},\"effectiveTiming\":{\"event\":[\"2024-01-01\",\"2024-02-01\"]}}",
    };
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
        put(extra[i]);
    for (int i = 0; i < 40; i++) {
        char json[128];
        snprintf(json, sizeof(json),
                 "{\"resourceType\":\"Patient\",\"id\":\"bd%d\",\"birthDate\":\"2041-%02d-%02d\"}",
                 i, 1 + i / 28, 1 + i % 28);
        put(json);
    }
    static const case_t cases[] = {
        {"Patient?birthdate=ge2032-02-01&birthdate=lt2032-03-01", "p5 p7"},
        {"Patient?birthdate=ge2032-02-14&birthdate=le2032-02-14", "p7"},
        {"Patient?birthdate=gt2035-06-01&birthdate=lt2035-07-01", "p6"}, /* a year's range */
        {"Patient?birthdate=sa2031&birthdate=eb2033", "p5 p7"},
        {"Patient?birthdate=eq2032&birthdate=lt2032-02-20", "p7"},
        {"Patient?birthdate=ge2040&birthdate=le2030", ""},
        {"Patient?birthdate=ge2032-02-10&birthdate=lt2035-03-01&birthdate=le2099", "p5 p6 p7"},
        {"Patient?birthdate=ge2041-02-01&birthdate=lt2041-02-03", "bd28 bd29"},
        {"Patient?birthdate=ge2041-01-27&birthdate=lt2041-02-02&_count=2", "bd26 bd27"},
        /* tested per resource: 43 of 167 patients match, a page of one */
        {"Patient?birthdate=ge2030&birthdate=lt2050&_count=1", "p5"},
        {"Patient?birthdate=ge2030&birthdate=lt2050&_sort=-birthdate&_count=1", "bd39"},
        /* not merged: two values, a modifier */
        {"Patient?birthdate=ge2032-02-01,ge2099&birthdate=lt2032-03-01", "p5 p7"},
        {"Patient?birthdate=ge2032-02-01&birthdate:missing=false&birthdate=lt2032-03-01", "p5 p7"},
        {"Encounter?date=sa2024-01-01&date=eb2024-03-01", "e3"},
        {"Encounter?date=ge2024-01-03&date=lt2024-01-04", "e1 e2"},
        {"Encounter?date=eq2024-02-10&date=ge2024-02-10T11:00:00Z", "e3"},
        {"Observation?date=ge2024-01-20&date=lt2024-01-25", "o5"},
        {"Observation?date=ge2024-01-20&date=lt2024-01-25&status=final", "o5"},
    };
    size_t failures = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        arena_t arena;
        arena_init(&arena);
        sqlite__search_merges_dates = false;
        const char *apart = run(&arena, cases[i].query, NULL, NULL);
        sqlite__search_merges_dates = true;
        const char *merged = run(&arena, cases[i].query, NULL, NULL);
        if (strcmp(apart, cases[i].expected) != 0 || strcmp(merged, cases[i].expected) != 0) {
            print_error("%s\n  expected: %s\n  apart:    %s\n  merged:   %s\n", cases[i].query,
                        cases[i].expected, apart, merged);
            failures++;
        }
        arena_release(&arena);
    }
    delete ("Patient", "p5");
    delete ("Patient", "p6");
    delete ("Patient", "p7");
    delete ("Encounter", "e1");
    delete ("Encounter", "e2");
    delete ("Encounter", "e3");
    delete ("Observation", "o5");
    for (int i = 0; i < 40; i++) {
        char id[16];
        snprintf(id, sizeof(id), "bd%d", i);
        delete ("Patient", id);
    }
    assert_int_equal(failures, 0);
}

/* The plan SQLite chooses for a search's page query. */
static const char *query_plan(arena_t *arena, const char *text)
{
    fhir_search_pair_t pairs[16];
    size_t npairs;
    const fhir_type_t *type = split(arena, text, pairs, &npairs);
    fhir_search_query_t query = {
        .pairs = pairs, .npairs = npairs, .strict = true, .now_us = NOW_US};
    fhir_search_plan_t *plan;
    err_t err = ERR_INIT;
    assert_int_equal(fhir_search_parse(NULL, type, &query, arena, &plan, &err), ERR_OK);
    resolve_terminology(plan);
    store_search_t search = {.plan = plan, .base = "http://localhost/fhir"};
    const char *sql;
    assert_int_equal(sqlite__search_sql(&search, arena, &sql), ERR_OK);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite__search_functions(db);
    char *explain = arena_printf(arena, "EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(db, explain, -1, &stmt, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sqlite3_errmsg(db), sql);
    buf_t b = BUF_INIT;
    while (sqlite3_step(stmt) == SQLITE_ROW)
        buf_addf(&b, "%s\n", sqlite3_column_text(stmt, 3));
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    const char *out = arena_strndup(arena, b.ptr, b.len);
    buf_release(&b);
    err_release(&err);
    return out;
}

static void test_indexes_are_used(void **state)
{
    (void)state;
    static const struct {
        const char *query, *index;
    } cases[] = {
        {"Observation?code=http://loinc.org|2345-7", "ix_token_value"},
        {"Patient?birthdate=1980-02", "ix_date_low"},
        {"Patient?birthdate=gt1980", "ix_date_high"},
        {"Observation?subject=Patient/p1", "ix_reference_target"},
        {"Patient?family=mul", "ix_string_value"},
        {"Observation?value-quantity=5.4", "ix_quantity_value"},
        {"Patient?general-practitioner.family=jones", "ix_string_value"},
        {"Patient?_has:Observation:patient:code=2345-7", "ix_token_value"},
        {"Patient?_count=10", "resource_type_live"},
        {"Patient?gender=female&_sort=-birthdate", "ix_date_rid"},
        {"Observation?code-value-quantity=http://loinc.org|2345-7$gt6", "ix_composite_value"},
        {"Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|1",
         "ix_of_type_value"},
        {"Patient?organization=http://other.example/fhir/Organization/o9", "ix_reference_url"},
        {"Patient?_lastUpdated=gt2024", "resource_type_updated"},
        /* chains and _has keep their relative paths, with the absolute url and contained
           arms through indexes of their own */
        {"Patient?general-practitioner.family=jones", "ix_reference_target"},
        {"Patient?organization.name=acme", "ix_reference_url"},
        {"Patient?organization.name=acme", "ix_reference_rid"},
        {"Organization?_has:Patient:organization:family=ost", "ix_reference_rid"},
        {"Medication?code=ctd-9&_contained=true", "ix_token_value"},
        {"Medication?code=ctd-9&_contained=both&_containedType=contained", "ix_token_value"},
        {"MedicationRequest?medication.code=ctd-9", "resource_contained_type"},
        /* terminology: the resolved codes, one lookup each */
        {"Observation?code:in=http://example.org/vs", "ix_token_value"},
        {"Observation?code:below=http://loinc.org|2345-7", "ix_token_value"},
        /* UCUM quantities in canonical units */
        {"Observation?value-quantity=5.4|http://unitsofmeasure.org|mg",
         "ix_quantity_canonical_low"},
        {"Observation?value-quantity=gt5|http://unitsofmeasure.org|mg",
         "ix_quantity_canonical_high"},
        /* near: the latitude band */
        {"Location?near=52.37|4.89|10|km", "ix_position_value"},
    };
    arena_t arena;
    arena_init(&arena);
    size_t failures = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *plan = query_plan(&arena, cases[i].query);
        if (getenv("CONCERTO_SHOW_PLANS"))
            print_message("%s\n%s", cases[i].query, plan);
        /* a "SCAN ix_..." without an index would read a whole index table */
        bool full_scan = false;
        for (const char *p = plan; (p = strstr(p, "SCAN ix_")); p++) {
            const char *eol = strchr(p, '\n');
            const char *using = strstr(p, "USING");
            if (!using || (eol && using > eol))
                full_scan = true;
        }
        if (!strstr(plan, cases[i].index) || full_scan) {
            print_error("%s: expected %s and no full scan of an index table:\n%s", cases[i].query,
                        cases[i].index, plan);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
    arena_release(&arena);
}

/* Two bounds of a date with one value per resource are one range of ix_date_low, bounded on
 * both sides; a parameter with several values keeps a range per bound. */
static void test_date_bounds_plan(void **state)
{
    (void)state;
    static const struct {
        const char *query;
        int ranges;
    } cases[] = {
        {"Patient?birthdate=ge1980-02-01&birthdate=lt1980-03-01", 1},
        {"Patient?birthdate=gt1980&birthdate=le1990-06", 1},
        {"Encounter?date=sa2024-01-01&date=eb2024-03-01", 1},
        {"Observation?date=ge2024-01-20&date=lt2024-01-25", 2},
    };
    arena_t arena;
    arena_init(&arena);
    size_t failures = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *plan = query_plan(&arena, cases[i].query);
        if (getenv("CONCERTO_SHOW_PLANS"))
            print_message("%s\n%s", cases[i].query, plan);
        int ranges = 0;
        for (const char *p = plan; (p = strstr(p, "SEARCH ix_date")); p++)
            ranges++;
        bool bounded = strstr(plan, "ix_date_low (type=? AND param=? AND low>? AND low<?)");
        if (ranges != cases[i].ranges || (cases[i].ranges == 1 && !bounded)) {
            print_error("%s: expected %d range(s) of ix_date%s:\n%s", cases[i].query,
                        cases[i].ranges, cases[i].ranges == 1 ? ", bounded both ways" : "", plan);
            failures++;
        }
    }
    /* _lastUpdated is a column of the resource: its bounds are one range already */
    const char *plan = query_plan(&arena, "Patient?_lastUpdated=ge2024&_lastUpdated=lt2025-03");
    if (!strstr(plan, "resource_type_updated (type=? AND deleted=? AND updated_us>? AND "
                      "updated_us<?)")) {
        print_error("_lastUpdated, two bounds:\n%s", plan);
        failures++;
    }
    assert_int_equal(failures, 0);
    arena_release(&arena);
}

/* The plan PostgreSQL chooses for a search's page query, sequential scans discouraged: the
 * tables of a test are too small for an index to be worth it, so this tells whether an index
 * can serve each condition (the types of the parameters and columns agree, the conditions
 * are written so that an index applies). */
static const char *pg_query_plan(arena_t *arena, const char *text)
{
    fhir_search_pair_t pairs[16];
    size_t npairs;
    const fhir_type_t *type = split(arena, text, pairs, &npairs);
    fhir_search_query_t query = {
        .pairs = pairs, .npairs = npairs, .strict = true, .now_us = NOW_US};
    fhir_search_plan_t *plan;
    err_t err = ERR_INIT;
    assert_int_equal(fhir_search_parse(NULL, type, &query, arena, &plan, &err), ERR_OK);
    resolve_terminology(plan);
    store_search_t search = {.plan = plan, .base = "http://localhost/fhir"};
    sql_stmt_t stmt;
    sql__search_page(&sql__postgres, &search, arena, &stmt);
    const char **values = arena_zalloc(arena, (stmt.nbinds + 1) * sizeof(*values));
    for (size_t i = 0; i < stmt.nbinds; i++) {
        const sql_bind_t *b = &stmt.binds[i];
        values[i] = b->kind == SQL_BIND_TEXT  ? b->text
                    : b->kind == SQL_BIND_INT ? arena_printf(arena, "%lld", (long long)b->i)
                                              : arena_printf(arena, "%.17g", b->d);
    }
    PGconn *pg = PQconnectdb(test_location);
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    PQclear(PQexec(pg, "SET enable_seqscan = off"));
    PGresult *res = PQexecParams(pg, arena_printf(arena, "EXPLAIN %s", stmt.sql), (int)stmt.nbinds,
                                 NULL, values, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", PQresultErrorMessage(res), stmt.sql);
    buf_t b = BUF_INIT;
    for (int i = 0; i < PQntuples(res); i++)
        buf_addf(&b, "%s\n", PQgetvalue(res, i, 0));
    PQclear(res);
    PQfinish(pg);
    const char *out = arena_strndup(arena, b.ptr, b.len);
    buf_release(&b);
    err_release(&err);
    return out;
}

static void test_pg_indexes_are_used(void **state)
{
    (void)state;
    static const struct {
        const char *query, *index;
    } cases[] = {
        {"Observation?code=http://loinc.org|2345-7", "ix_token_value"},
        {"Patient?birthdate=1980-02", "ix_date_low"},
        {"Observation?subject=Patient/p1", "ix_reference_target"},
        {"Patient?family=mul", "ix_string_value"},
        /* the prefix bounds the index, not a filter after it */
        {"Patient?family=mul", "AND (normalized ~>=~ 'mul'::text) AND (normalized ~<~ 'mum'"},
        {"Observation?value-quantity=5.4", "ix_quantity_value"},
        {"Patient?general-practitioner.family=jones", "ix_string_value"},
        {"Patient?_has:Observation:patient:code=2345-7", "ix_token_value"},
        {"Patient?_lastUpdated=lt2000", "resource_type_updated"},
        {"Patient?organization=http://other.example/fhir/Organization/o9", "ix_reference_absolute"},
        {"Observation?code:in=http://example.org/vs", "ix_token_value"},
        /* the columns collate "C": a prefix range still bounds an index, not a filter */
        {"ValueSet?url:below=http://x/a", "AND (value >= 'http://x/a'::text) AND (value < "},
    };
    /* enough rows, and statistics, for the planner to prefer the selective way in */
    put_population();
    test_pg_query("ANALYZE");
    arena_t arena;
    arena_init(&arena);
    size_t failures = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *plan = pg_query_plan(&arena, cases[i].query);
        if (getenv("CONCERTO_SHOW_PLANS"))
            print_message("%s\n%s", cases[i].query, plan);
        if (!strstr(plan, cases[i].index) || strstr(plan, "Seq Scan on ix_")) {
            print_error("%s: expected %s and no sequential scan of an index table:\n%s",
                        cases[i].query, cases[i].index, plan);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
    arena_release(&arena);
}

/* ---- full text across savepoints and batches ---------------------------------------- */

/* A Basic whose full text is word, in txn, written and indexed as put() does. */
static status_t put_word(store_txn_t *txn, const char *id, const char *word, err_t *err)
{
    arena_t arena;
    arena_init(&arena);
    const char *json = arena_printf(
        &arena, "{\"resourceType\":\"Basic\",\"id\":\"%s\",\"code\":{\"text\":\"%s\"}}", id, word);
    json_t *resource = jv_parse(json, strlen(json), err);
    assert_non_null(resource);
    fhir_index_rows_t rows;
    assert_int_equal(fhir_index_extract(NULL, resource, &arena, &rows, err), ERR_OK);
    put_arg_t a = {.type = "Basic", .id = id, .json = json, .rows = &rows};
    status_t rc = put_txn(txn, &a, err);
    json_decref(resource);
    arena_release(&arena);
    return rc;
}

/* The ids a search inside txn finds (Basic?_content=word). */
static const char *txn_ids(store_txn_t *txn, arena_t *arena, const char *word)
{
    fhir_search_pair_t pairs[1];
    size_t npairs;
    const fhir_type_t *type =
        split(arena, arena_printf(arena, "Basic?_content=%s", word), pairs, &npairs);
    fhir_search_query_t query = {.pairs = pairs, .npairs = npairs, .strict = true};
    fhir_search_plan_t *plan;
    err_t err = ERR_INIT;
    assert_int_equal(fhir_search_parse(NULL, type, &query, arena, &plan, &err), ERR_OK);
    store_search_t search = {.plan = plan};
    store_search_result_t result;
    if (store_txn_search(txn, &search, arena, &result, &err))
        fail_msg("%s: %s", word, err_message(&err));
    err_release(&err);
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < result.n; i++)
        buf_addf(&b, "%s%s", i ? " " : "", result.entries[i].version.id);
    const char *ids = arena_strndup(arena, b.ptr ? b.ptr : "", b.len);
    buf_release(&b);
    return ids;
}

/* What the transactions below found that they should not have (checked on the test's
 * thread: they run on the writer's). */
static buf_t txn_mismatches = BUF_INIT;

static void expect_ids(store_txn_t *txn, arena_t *arena, const char *word, const char *expected)
{
    const char *got = txn_ids(txn, arena, word);
    if (strcmp(got, expected) != 0)
        buf_addf(&txn_mismatches, "_content=%s: expected \"%s\", got \"%s\"\n", word, expected,
                 got);
}

static void expect_rule(status_t rc)
{
    if (rc != ERR_RULE)
        buf_addf(&txn_mismatches, "a savepoint ended with %d, not ERR_RULE\n", (int)rc);
}

static status_t inner_fails(store_txn_t *txn, void *arg, err_t *err)
{
    arena_t *arena = arg;
    if (put_word(txn, "f3", "charlie", err))
        return err->code;
    /* what the transaction and its open savepoints wrote, seen from the innermost */
    expect_ids(txn, arena, "alpha", "f1");
    expect_ids(txn, arena, "bravo", "f2");
    expect_ids(txn, arena, "charlie", "f3");
    return err_set(err, ERR_RULE, NULL, "inner failure");
}

static status_t outer_fails(store_txn_t *txn, void *arg, err_t *err)
{
    arena_t *arena = arg;
    if (put_word(txn, "f2", "bravo", err))
        return err->code;
    expect_rule(store_txn_nested(txn, inner_fails, arena, err));
    err_reset(err);
    /* the inner savepoint's text is gone, the rest is still there */
    expect_ids(txn, arena, "charlie", "");
    expect_ids(txn, arena, "bravo", "f2");
    expect_ids(txn, arena, "alpha", "f1");
    if (put_word(txn, "f4", "delta", err))
        return err->code;
    return err_set(err, ERR_RULE, NULL, "outer failure");
}

static status_t savepoints_txn(store_txn_t *txn, void *arg, err_t *err)
{
    arena_t *arena = arg;
    if (put_word(txn, "f1", "alpha", err))
        return err->code;
    expect_rule(store_txn_nested(txn, outer_fails, arena, err));
    err_reset(err);
    expect_ids(txn, arena, "alpha", "f1");
    expect_ids(txn, arena, "bravo", "");
    expect_ids(txn, arena, "delta", "");
    if (put_word(txn, "f5", "echo", err))
        return err->code;
    if (put_word(txn, "f1", "foxtrot", err))
        return err->code; /* replaced */
    return ERR_OK;
}

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int remaining, failures;
} words_batch_t;

typedef struct {
    char id[16], word[32];
    bool fails;
} word_arg_t;

static status_t word_txn(store_txn_t *txn, void *arg, err_t *err)
{
    word_arg_t *w = arg;
    status_t rc = put_word(txn, w->id, w->word, err);
    if (!rc && w->fails)
        rc = err_set(err, ERR_RULE, NULL, "failing on purpose");
    return rc;
}

static void word_done(void *arg, status_t rc, err_t *err)
{
    (void)err;
    words_batch_t *b = arg;
    pthread_mutex_lock(&b->lock);
    b->failures += rc != ERR_OK;
    if (--b->remaining == 0)
        pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

/* The full text a transaction writes is searchable once it commits, inside it as soon as it
 * is written, and gone with any savepoint or transaction rolled back (on SQLite it waits in
 * memory until the commit: sqlite_text.c). */
static void test_fulltext_follows_transactions(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    err_t err = ERR_INIT;
    buf_reset(&txn_mismatches);
    assert_int_equal(store_run(store, savepoints_txn, &arena, &err), ERR_OK);
    assert_string_equal(txn_mismatches.ptr ? txn_mismatches.ptr : "", "");
    buf_release(&txn_mismatches);
    static const case_t after[] = {
        {"Basic?_content=alpha", ""}, {"Basic?_content=foxtrot", "f1"},
        {"Basic?_content=bravo", ""}, {"Basic?_content=charlie", ""},
        {"Basic?_content=delta", ""}, {"Basic?_content=echo", "f5"},
    };
    check_cases(after, sizeof(after) / sizeof(after[0]));

    /* many transactions at once, committed together by the writer, every third failing */
    enum { N = 90 };
    static word_arg_t args[N];
    words_batch_t b = {.remaining = N};
    pthread_mutex_init(&b.lock, NULL);
    pthread_cond_init(&b.cond, NULL);
    for (int i = 0; i < N; i++) {
        snprintf(args[i].id, sizeof(args[i].id), "w%d", i);
        snprintf(args[i].word, sizeof(args[i].word), "word%d", i);
        args[i].fails = i % 3 == 0;
        store_submit(store, word_txn, &args[i], word_done, &b);
    }
    pthread_mutex_lock(&b.lock);
    while (b.remaining)
        pthread_cond_wait(&b.cond, &b.lock);
    pthread_mutex_unlock(&b.lock);
    assert_int_equal(b.failures, N / 3);
    for (int i = 0; i < N; i++) {
        const char *got = run(&arena, arena_printf(&arena, "Basic?_content=word%d", i), NULL, NULL);
        assert_string_equal(got, i % 3 == 0 ? "" : args[i].id);
    }
    pthread_mutex_destroy(&b.lock);
    pthread_cond_destroy(&b.cond);
    err_release(&err);
    arena_release(&arena);
}

int main(void)
{
#define BOTH(test) cmocka_unit_test_setup_teardown(test, setup, teardown)
    const struct CMUnitTest both[] = {
        BOTH(test_strings_and_tokens),
        BOTH(test_fulltext),
        BOTH(test_fulltext_words),
        BOTH(test_fulltext_migrated),
        BOTH(test_fulltext_follows_transactions),
        BOTH(test_includes_capped),
        BOTH(test_dates_numbers_quantities),
        BOTH(test_references_chains_has),
        BOTH(test_sort),
        BOTH(test_byte_order),
        BOTH(test_total_and_summary),
        BOTH(test_compartment),
        BOTH(test_paging),
        BOTH(test_writes_change_rows),
        BOTH(test_probes_match_lists),
        BOTH(test_walks_match_sorts),
        BOTH(test_absolute_references_followed),
        BOTH(test_contained),
        BOTH(test_date_bounds_merged),
    };
    const struct CMUnitTest sqlite_only[] = {
        BOTH(test_indexes_are_used),
        BOTH(test_date_bounds_plan),
    };
    const struct CMUnitTest pg_only[] = {
        BOTH(test_pg_indexes_are_used),
    };
#undef BOTH
    return test_run_on_drivers("store/search", both, TEST_COUNT(both), sqlite_only,
                               TEST_COUNT(sqlite_only), pg_only, TEST_COUNT(pg_only));
}
