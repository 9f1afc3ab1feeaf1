/*
 * workflow.c - tests of the Task state machine (src/fhir/workflow.c) against DOMAIN.md: every
 * one of the 144 pairs of statuses, the text that names the allowed moves, the order of
 * priorities, and the Period and CodeableConcept tests of the care team rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "base/jv.h"
#include "fhir/workflow.h"

/* DOMAIN.md, written out pair by pair: "from to" for every allowed move between two
 * different statuses. */
static const char *const ALLOWED[] = {
    "draft requested", "draft ready", "requested received", "received accepted",
    "requested rejected", "received rejected", "accepted in-progress", "ready in-progress",
    "in-progress on-hold", "on-hold in-progress", "in-progress completed", "in-progress failed",
    /* anything not yet finished -> cancelled */
    "draft cancelled", "requested cancelled", "received cancelled", "accepted cancelled",
    "ready cancelled", "in-progress cancelled", "on-hold cancelled",
    /* anything -> entered-in-error */
    "draft entered-in-error", "requested entered-in-error", "received entered-in-error",
    "accepted entered-in-error", "rejected entered-in-error", "ready entered-in-error",
    "cancelled entered-in-error", "in-progress entered-in-error", "on-hold entered-in-error",
    "failed entered-in-error", "completed entered-in-error"};

static bool listed(const char *from, const char *to)
{
    char pair[64];
    snprintf(pair, sizeof(pair), "%s %s", from, to);
    for (size_t i = 0; i < sizeof(ALLOWED) / sizeof(ALLOWED[0]); i++)
        if (strcmp(ALLOWED[i], pair) == 0)
            return true;
    return false;
}

static void test_every_pair(void **state)
{
    (void)state;
    int allowed = 0;
    for (int f = 0; f < TASK__COUNT; f++)
        for (int t = 0; t < TASK__COUNT; t++) {
            const char *from = task_status_code((task_status_t)f);
            const char *to = task_status_code((task_status_t)t);
            bool want = f == t || listed(from, to);
            if (task_move_allowed((task_status_t)f, (task_status_t)t) != want)
                fail_msg("%s -> %s: expected %s", from, to, want ? "allowed" : "refused");
            allowed += f != t && want;
        }
    assert_int_equal(allowed, (int)(sizeof(ALLOWED) / sizeof(ALLOWED[0])));
}

static void test_parse_and_final(void **state)
{
    (void)state;
    task_status_t s;
    assert_true(task_status_parse("in-progress", &s));
    assert_int_equal(s, TASK_IN_PROGRESS);
    assert_string_equal(task_status_code(s), "in-progress");
    assert_false(task_status_parse("done", &s));
    assert_false(task_status_parse("", &s));
    assert_false(task_status_parse(NULL, &s));
    int finals = 0;
    for (int i = 0; i < TASK__COUNT; i++)
        finals += task_status_final((task_status_t)i);
    assert_int_equal(finals, 5);
    assert_true(task_status_final(TASK_COMPLETED));
    assert_false(task_status_final(TASK_ON_HOLD));
}

static void test_moves_text(void **state)
{
    (void)state;
    char text[160];
    task_moves_text(TASK_IN_PROGRESS, text, sizeof(text));
    assert_string_equal(text, "cancelled, on-hold, failed, completed or entered-in-error");
    task_moves_text(TASK_READY, text, sizeof(text));
    assert_string_equal(text, "cancelled, in-progress or entered-in-error");
    task_moves_text(TASK_COMPLETED, text, sizeof(text));
    assert_string_equal(text, "only entered-in-error (completed is final)");
    task_moves_text(TASK_ENTERED_IN_ERROR, text, sizeof(text));
    assert_string_equal(text, "none (entered-in-error is final)");
    /* a short buffer is cut, never overrun */
    char small[8];
    task_moves_text(TASK_IN_PROGRESS, small, sizeof(small));
    assert_int_equal(strlen(small), 7);
}

static void test_priority(void **state)
{
    (void)state;
    assert_int_equal(task_priority_rank("routine"), 0);
    assert_int_equal(task_priority_rank("urgent"), 1);
    assert_int_equal(task_priority_rank("asap"), 2);
    assert_int_equal(task_priority_rank("stat"), 3);
    assert_int_equal(task_priority_rank("high"), -1);
    assert_int_equal(task_priority_rank(NULL), -1);
}

static bool current(const char *period_json, const char *now)
{
    err_t err = ERR_INIT;
    json_t *period = jv_parse(period_json, strlen(period_json), &err);
    assert_non_null(period);
    struct tm tm = {0};
    assert_non_null(strptime(now, "%Y-%m-%dT%H:%M:%S", &tm));
    bool held = fhir_period_current(period, (int64_t)timegm(&tm) * 1000000);
    json_decref(period);
    return held;
}

static void test_period_current(void **state)
{
    (void)state;
    assert_true(current("{}", "2026-11-23T12:00:00"));
    assert_true(current("{\"start\":\"2026-11-23\"}", "2026-11-23T00:00:00"));
    assert_false(current("{\"start\":\"2026-11-24\"}", "2026-11-23T23:59:59"));
    /* an end date lasts through its day */
    assert_true(current("{\"end\":\"2026-11-23\"}", "2026-11-23T23:59:59"));
    assert_false(current("{\"end\":\"2026-11-23\"}", "2026-11-24T00:00:00"));
    /* a zone is honoured: 09:00 in New York is 14:00 UTC */
    assert_false(current("{\"start\":\"2026-11-23T09:00:00-05:00\"}", "2026-11-23T13:59:59"));
    assert_true(current("{\"start\":\"2026-11-23T09:00:00-05:00\"}", "2026-11-23T14:00:00"));
    assert_true(current("{\"start\":\"2020\",\"end\":\"2030-06\"}", "2030-06-30T23:00:00"));
    /* what is not a dateTime counts as absent */
    assert_true(current("{\"start\":\"soon\"}", "2026-11-23T12:00:00"));
}

static void test_concepts(void **state)
{
    (void)state;
    const char *text = "[{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"x\"}]},"
                       "{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":"
                       "\"768820003\"}]}]";
    err_t err = ERR_INIT;
    json_t *concepts = jv_parse(text, strlen(text), &err);
    assert_true(fhir_concept_has(concepts, CARE_SNOMED_SYSTEM, CARE_ROLE_COORDINATOR));
    assert_true(fhir_concept_has(json_array_get(concepts, 1), CARE_SNOMED_SYSTEM, "768820003"));
    assert_false(fhir_concept_has(concepts, CARE_LOINC_SYSTEM, "768820003"));
    assert_false(fhir_concept_has(NULL, CARE_LOINC_SYSTEM, "x"));
    json_decref(concepts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_pair),     cmocka_unit_test(test_parse_and_final),
        cmocka_unit_test(test_moves_text),     cmocka_unit_test(test_priority),
        cmocka_unit_test(test_period_current), cmocka_unit_test(test_concepts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
