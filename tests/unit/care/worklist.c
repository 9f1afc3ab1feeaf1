/*
 * worklist.c - tests of the worklist's pure parts (src/care/worklist.c): which bucket a Task
 * falls in, the order inside a bucket, the end of "today" in the organisation's zone, the
 * fields read from a Task and a RiskAssessment, and the parameters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/jv.h"
#include "care/worklist.h"

#define HOUR (INT64_C(3600) * 1000000)
/* 2026-03-04T15:00:00Z, a Wednesday: 10:00 in New York (EST) */
#define NOW (INT64_C(1772636400) * 1000000)

static worklist_item_t item(bool owned, bool on_hold, int64_t due_us)
{
    return (worklist_item_t){
        .owned = owned, .on_hold = on_hold, .due_us = due_us, .risk = WORKLIST_NO_RISK};
}

static void test_buckets(void **state)
{
    (void)state;
    int64_t end = NOW + 14 * HOUR;
    struct {
        worklist_item_t item;
        worklist_bucket_t bucket;
        bool overdue;
    } cases[] = {
        {item(true, false, NOW - 1), WORKLIST_OVERDUE, true},
        {item(true, false, NOW), WORKLIST_OVERDUE, true}, /* due now: the overdue mark's rule */
        {item(true, false, NOW + 1), WORKLIST_DUE_TODAY, false},
        {item(true, false, end - 1), WORKLIST_DUE_TODAY, false},
        {item(true, false, end), WORKLIST_UPCOMING, false},
        {item(true, false, WORKLIST_NO_DUE), WORKLIST_UPCOMING, false},
        /* on hold comes first, whatever the due time and owner */
        {item(true, true, NOW - HOUR), WORKLIST_ON_HOLD, true},
        {item(false, true, WORKLIST_NO_DUE), WORKLIST_ON_HOLD, false},
        /* then no owner */
        {item(false, false, NOW - HOUR), WORKLIST_UNASSIGNED, true},
        {item(false, false, NOW + HOUR), WORKLIST_UNASSIGNED, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        worklist_classify(&cases[i].item, NOW, end);
        assert_int_equal(cases[i].item.bucket, cases[i].bucket);
        assert_int_equal(cases[i].item.overdue, cases[i].overdue);
    }
}

static void test_order(void **state)
{
    (void)state;
    store_version_t v[8] = {{.id = "a"}, {.id = "b"}, {.id = "c"}, {.id = "d"},
                            {.id = "e"}, {.id = "f"}, {.id = "g"}, {.id = "h"}};
    /* given in the reverse of the expected order */
    worklist_item_t items[] = {
        {.task = &v[7], .priority = 0, .risk = WORKLIST_NO_RISK, .due_us = WORKLIST_NO_DUE},
        {.task = &v[6], .priority = 0, .risk = WORKLIST_NO_RISK, .due_us = NOW + 2 * HOUR},
        {.task = &v[5], .priority = 0, .risk = WORKLIST_NO_RISK, .due_us = NOW + HOUR},
        {.task = &v[4], .priority = 0, .risk = WORKLIST_NO_RISK, .due_us = NOW + HOUR},
        {.task = &v[3], .priority = 0, .risk = 0.2, .due_us = NOW + 3 * HOUR},
        {.task = &v[2], .priority = 0, .risk = 0.9, .due_us = WORKLIST_NO_DUE},
        {.task = &v[1], .priority = 3, .risk = WORKLIST_NO_RISK, .due_us = NOW + 9 * HOUR},
        /* overdue beats a stat */
        {.task = &v[0], .priority = 0, .risk = WORKLIST_NO_RISK, .due_us = NOW - HOUR},
    };
    size_t n = sizeof(items) / sizeof(items[0]);
    for (size_t i = 0; i < n; i++)
        worklist_classify(&items[i], NOW, NOW + 14 * HOUR);
    qsort(items, n, sizeof(items[0]), worklist_compare);
    const char *expected = "abcdefgh";
    for (size_t i = 0; i < n; i++)
        assert_int_equal(items[i].task->id[0], expected[i]);
}

static void test_today_end(void **state)
{
    (void)state;
    calendar_t *cal;
    err_t err = ERR_INIT;
    assert_int_equal(calendar_new("America/New_York", "Mon-Fri", "none", &cal, &err), ERR_OK);
    /* 10:00 EST -> midnight EST, 05:00Z the next day */
    assert_int_equal(worklist_today_end(cal, NOW), NOW + 14 * HOUR);
    /* 23:30 EST is still the same day; 00:30 EST is the next */
    assert_int_equal(worklist_today_end(cal, NOW + 13 * HOUR + HOUR / 2), NOW + 14 * HOUR);
    assert_int_equal(worklist_today_end(cal, NOW + 14 * HOUR + HOUR / 2), NOW + 38 * HOUR);
    /* the day the clocks spring forward (2026-03-08) has 23 hours */
    int64_t sunday_morning = NOW + 4 * 24 * HOUR - 2 * HOUR; /* 2026-03-08T13:00Z, 09:00 EDT */
    assert_int_equal(worklist_today_end(cal, sunday_morning), sunday_morning + 15 * HOUR);
    calendar_free(cal);
    err_release(&err);
}

static json_t *parse(const char *text)
{
    err_t err = ERR_INIT;
    json_t *v = jv_parse(text, strlen(text), &err);
    assert_non_null(v);
    err_release(&err);
    return v;
}

static void test_item_from_task(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    json_t *t = parse("{\"resourceType\":\"Task\",\"status\":\"on-hold\",\"priority\":\"asap\","
                      "\"for\":{\"reference\":\"http://x.org/fhir/Patient/p1\"},"
                      "\"owner\":{\"reference\":\"Practitioner/a\"},"
                      "\"restriction\":{\"period\":{\"end\":\"2026-03-04T15:00:00Z\"}}}");
    worklist_item_t it = {0};
    worklist_item_from_task(&it, t, &arena);
    assert_string_equal(it.patient, "Patient/p1");
    assert_true(it.owned && it.on_hold);
    assert_int_equal(it.priority, 2);
    assert_int_equal(it.due_us, NOW); /* that instant, as the overdue mark reads it */
    json_decref(t);
    /* a date alone is due at its end; no priority counts as routine; no owner, no patient */
    t = parse("{\"resourceType\":\"Task\",\"status\":\"ready\",\"for\":{\"reference\":"
              "\"Group/g\"},\"restriction\":{\"period\":{\"end\":\"2026-03-04\"}}}");
    worklist_item_from_task(&it, t, &arena);
    assert_null(it.patient);
    assert_false(it.owned || it.on_hold);
    assert_int_equal(it.priority, 0);
    assert_int_equal(it.due_us, INT64_C(1772668800) * 1000000 - 1);
    json_decref(t);
    t = parse("{\"resourceType\":\"Task\",\"status\":\"ready\"}");
    worklist_item_from_task(&it, t, &arena);
    assert_int_equal(it.due_us, WORKLIST_NO_DUE);
    json_decref(t);
    arena_release(&arena);
}

static void test_risk(void **state)
{
    (void)state;
    json_t *r = parse("{\"prediction\":[{\"probabilityDecimal\":0.35}]}");
    assert_float_equal(worklist_risk_of(r), 0.35, 1e-9);
    json_decref(r);
    r = parse("{\"prediction\":[{\"qualitativeRisk\":{\"coding\":[{\"system\":"
              "\"http://terminology.hl7.org/CodeSystem/risk-probability\",\"code\":\"high\"}]}}]}");
    assert_float_equal(worklist_risk_of(r), 0.75, 1e-9);
    json_decref(r);
    r = parse("{\"prediction\":[{\"outcome\":{\"text\":\"readmission\"}}]}");
    assert_true(worklist_risk_of(r) == WORKLIST_NO_RISK);
    json_decref(r);
}

static void test_params(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    worklist_query_t q = {0};
    err_t err = ERR_INIT;
    assert_int_equal(worklist_param(&q, "patient", "Patient/p1", &arena, &err), ERR_OK);
    assert_string_equal(q.patient_id, "p1");
    assert_int_equal(worklist_param(&q, "bucket", "due-today", &arena, &err), ERR_OK);
    assert_true(q.bucket_set && q.bucket == WORKLIST_DUE_TODAY);
    assert_int_equal(worklist_param(&q, "_count", "0", &arena, &err), ERR_OK);
    assert_true(q.count_set && q.count == 0);
    struct {
        const char *name, *value;
    } bad[] = {{"patient", "x"}, {"_count", "1001"}, {"_count", "1e3"}, {"priority", "low"},
               {"team", "a/b"},  {"code", ""},       {"sort", "due"},   {"bucket", "today"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        worklist_query_t fresh = {.patient_id = strcmp(bad[i].name, "patient") ? NULL : "p"};
        assert_int_equal(worklist_param(&fresh, bad[i].name, bad[i].value, &arena, &err),
                         ERR_INVALID);
        assert_string_equal(err.issues[0].expression, bad[i].name);
        err_reset(&err);
    }
    err_release(&err);
    arena_release(&arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),   cmocka_unit_test(test_order),
        cmocka_unit_test(test_today_end), cmocka_unit_test(test_item_from_task),
        cmocka_unit_test(test_risk),      cmocka_unit_test(test_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
