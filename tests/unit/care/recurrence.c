/*
 * recurrence.c - tests of scheduled actions' recurrence (src/care/recurrence.c): what a
 * periodic trigger's timingTiming may say, occurrences on local time across daylight saving
 * changes and month ends, which occurrence a time falls in, and occurrence keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/jv.h"
#include "care/protocol.h"
#include "care/recurrence.h"

#define S 1000000LL

static json_t *parse(const char *text)
{
    err_t err = ERR_INIT;
    json_t *j = jv_parse(text, strlen(text), &err);
    if (!j)
        fail_msg("bad test JSON: %s", text);
    return j;
}

/* Parses timing text; returns the status and, on error, checks the expression named. */
static status_t parsed(const char *text, const char *expression, care_recurrence_t *out)
{
    arena_t arena;
    arena_init(&arena);
    json_t *timing = parse(text);
    err_t err = ERR_INIT;
    care_recurrence_t r = {0};
    status_t rc = care_recurrence_parse(timing, "T", &arena, &r, &err);
    if (rc) {
        assert_non_null(err.issues[0].expression);
        assert_string_equal(err.issues[0].expression, expression);
    }
    if (out)
        *out = r;
    err_release(&err);
    json_decref(timing);
    arena_release(&arena);
    return rc;
}

static void test_parse(void **state)
{
    (void)state;
    care_recurrence_t r;
    assert_int_equal(
        parsed("{\"repeat\":{\"frequency\":1,\"period\":7,\"periodUnit\":\"d\"}}", NULL, &r),
        ERR_OK);
    assert_int_equal(r.unit, CARE_EVERY_DAYS);
    assert_int_equal(r.amount, 7);
    assert_int_equal(parsed("{\"repeat\":{\"period\":2,\"periodUnit\":\"wk\"}}", NULL, &r), ERR_OK);
    assert_int_equal(r.unit, CARE_EVERY_DAYS);
    assert_int_equal(r.amount, 14);
    assert_int_equal(parsed("{\"repeat\":{\"period\":1.0,\"periodUnit\":\"a\"}}", NULL, &r),
                     ERR_OK);
    assert_int_equal(r.unit, CARE_EVERY_MONTHS);
    assert_int_equal(r.amount, 12);
    assert_int_equal(parsed("{\"repeat\":{\"period\":12,\"periodUnit\":\"h\"}}", NULL, &r), ERR_OK);
    assert_int_equal(r.unit, CARE_EVERY_HOURS);

    assert_int_equal(parsed("{\"repeat\":{\"frequency\":2,\"period\":1,\"periodUnit\":\"d\"}}",
                            "T.repeat.frequency", NULL),
                     ERR_RULE);
    assert_int_equal(
        parsed("{\"repeat\":{\"period\":1,\"periodUnit\":\"s\"}}", "T.repeat.periodUnit", NULL),
        ERR_RULE);
    assert_int_equal(
        parsed("{\"repeat\":{\"period\":0,\"periodUnit\":\"d\"}}", "T.repeat.period", NULL),
        ERR_RULE);
    assert_int_equal(
        parsed("{\"repeat\":{\"period\":1.5,\"periodUnit\":\"d\"}}", "T.repeat.period", NULL),
        ERR_RULE);
    assert_int_equal(parsed("{\"repeat\":{\"periodUnit\":\"d\"}}", "T.repeat.period", NULL),
                     ERR_REQUIRED);
    assert_int_equal(parsed("{\"repeat\":{\"period\":3}}", "T.repeat.periodUnit", NULL),
                     ERR_REQUIRED);
    assert_int_equal(parsed("{\"repeat\":{\"period\":3,\"periodUnit\":\"d\",\"count\":4}}",
                            "T.repeat.count", NULL),
                     ERR_RULE);
    assert_int_equal(parsed("{\"event\":[\"2027-01-01\"]}", "T.event", NULL), ERR_RULE);
    assert_int_equal(parsed("{}", "T.repeat", NULL), ERR_REQUIRED);
    assert_int_equal(
        parsed("{\"repeat\":{\"period\":11,\"periodUnit\":\"a\"}}", "T.repeat.period", NULL),
        ERR_RULE);
}

static calendar_t *new_york(void)
{
    calendar_t *cal;
    err_t err = ERR_INIT;
    assert_int_equal(calendar_new("America/New_York", "Mon-Fri", "us-federal", &cal, &err), ERR_OK);
    return cal;
}

static void test_weekly_keeps_local_time_across_dst(void **state)
{
    (void)state;
    calendar_t *cal = new_york();
    care_recurrence_t week = {CARE_EVERY_DAYS, 7};
    int64_t monday = 1835964000LL * S; /* 2028-03-06 09:00 EST */
    assert_int_equal(care_recurrence_at(cal, monday, &week, 0), monday);
    /* New York springs forward on 2028-03-12: still 09:00 local, an hour less elapsed */
    assert_int_equal(care_recurrence_at(cal, monday, &week, 1), 1836565200LL * S);
    assert_int_equal(care_recurrence_at(cal, monday, &week, 2), 1837170000LL * S);
    assert_int_equal(care_recurrence_index(cal, monday, &week, monday), 0);
    assert_int_equal(care_recurrence_index(cal, monday, &week, 1836565200LL * S - 1), 0);
    assert_int_equal(care_recurrence_index(cal, monday, &week, 1836565200LL * S), 1);
    assert_int_equal(care_recurrence_index(cal, monday, &week, 1837170000LL * S + 3600 * S), 2);
    assert_int_equal(care_recurrence_next(cal, monday, &week, monday), 1836565200LL * S);
    assert_int_equal(care_recurrence_next(cal, monday, &week, 1836565200LL * S), 1836565200LL * S);
    assert_int_equal(care_recurrence_next(cal, monday, &week, 1836565200LL * S + 1),
                     1837170000LL * S);

    arena_t arena;
    arena_init(&arena);
    assert_string_equal(care_recurrence_key(cal, &week, 1836565200LL * S, &arena), "2028-03-13");
    care_recurrence_t hours = {CARE_EVERY_HOURS, 12};
    assert_string_equal(care_recurrence_key(cal, &hours, 1836565200LL * S, &arena),
                        "2028-03-13T09:00");
    /* hours are elapsed time: 12 hours after 2028-03-11 21:00 EST is 10:00 EDT */
    assert_int_equal(care_recurrence_at(cal, 1836439200LL * S, &hours, 1), 1836482400LL * S);
    /* a local time that does not exist moves forward by the gap */
    care_recurrence_t day = {CARE_EVERY_DAYS, 1};
    assert_int_equal(care_recurrence_at(cal, 1836372600LL * S, &day, 1), 1836459000LL * S);
    arena_release(&arena);
    calendar_free(cal);
}

static void test_months_clamp_to_the_end_without_drifting(void **state)
{
    (void)state;
    calendar_t *cal = new_york();
    care_recurrence_t month = {CARE_EVERY_MONTHS, 1};
    int64_t jan31 = 1801407600LL * S; /* 2027-01-31 10:00 EST */
    assert_int_equal(care_recurrence_at(cal, jan31, &month, 1), 1803826800LL * S);  /* Feb 28 */
    assert_int_equal(care_recurrence_at(cal, jan31, &month, 2), 1806501600LL * S);  /* Mar 31 EDT */
    assert_int_equal(care_recurrence_at(cal, jan31, &month, 13), 1835449200LL * S); /* 2028-02-29 */
    for (int64_t n = 0; n < 40; n++) {
        int64_t at = care_recurrence_at(cal, jan31, &month, n);
        assert_int_equal(care_recurrence_index(cal, jan31, &month, at), n);
        if (n > 0)
            assert_int_equal(care_recurrence_index(cal, jan31, &month, at - 1), n - 1);
    }
    care_recurrence_t quarter = {CARE_EVERY_DAYS, 90};
    for (int64_t n = 0; n < 30; n++) {
        int64_t at = care_recurrence_at(cal, jan31, &quarter, n);
        assert_int_equal(care_recurrence_index(cal, jan31, &quarter, at + 5 * S), n);
    }
    calendar_free(cal);
}

static json_t *periodic_plan(int frequency)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "{\"resourceType\":\"PlanDefinition\",\"id\":\"p\",\"url\":\"urn:p\","
             "\"status\":\"active\",\"type\":{\"coding\":[{\"system\":"
             "\"http://terminology.hl7.org/CodeSystem/plan-definition-type\",\"code\":"
             "\"workflow-definition\"}]},\"action\":[{\"id\":\"a\",\"definitionCanonical\":"
             "\"urn:ad\",\"trigger\":[{\"type\":\"periodic\",\"name\":\"scheduled\","
             "\"timingTiming\":{\"repeat\":{\"frequency\":%d,\"period\":1,"
             "\"periodUnit\":\"d\"}}}]}]}",
             frequency);
    return parse(text);
}

static void test_periodic_trigger_checked_at_compile(void **state)
{
    (void)state;
    json_t *plan = periodic_plan(3);
    care_protocol_t *p;
    err_t err = ERR_INIT;
    assert_int_equal(care_protocol_compile(plan, NULL, 0, CARE_PROTOCOL_UNRESOLVED, &p, &err),
                     ERR_RULE);
    assert_string_equal(err.issues[0].expression,
                        "PlanDefinition.action[0].trigger[0].timingTiming.repeat.frequency");
    err_release(&err);
    json_decref(plan);
    plan = periodic_plan(1);
    err_t ok = ERR_INIT;
    assert_int_equal(care_protocol_compile(plan, NULL, 0, CARE_PROTOCOL_UNRESOLVED, &p, &ok),
                     ERR_OK);
    assert_int_equal(p->actions[0].every.unit, CARE_EVERY_DAYS);
    assert_int_equal(p->actions[0].every.amount, 1);
    /* an occurrence's identifier names the occurrence, not a version */
    arena_t arena;
    arena_init(&arena);
    care_event_t event = {.type = "Patient", .id = "x", .version = 3, .occurrence = "2028-03-13"};
    assert_string_equal(care_action_key(p, &p->actions[0], &event, &arena),
                        "p/a/Patient/x/_occurrence/2028-03-13");
    event.occurrence = NULL;
    assert_string_equal(care_action_key(p, &p->actions[0], &event, &arena),
                        "p/a/Patient/x/_history/3");
    arena_release(&arena);
    care_protocol_free(p);
    json_decref(plan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_weekly_keeps_local_time_across_dst),
        cmocka_unit_test(test_months_clamp_to_the_end_without_drifting),
        cmocka_unit_test(test_periodic_trigger_checked_at_compile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
