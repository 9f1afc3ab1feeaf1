/*
 * adherence.c - tests of judging a care plan's activities against their due times
 * (src/care/adherence.c): on time, late, not done, not yet due, per resource type, and the
 * rate.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/jv.h"
#include "care/adherence.h"

#define SECOND 1000000LL
#define HOUR   (3600 * SECOND)
/* 2026-03-02T00:00:00Z */
#define DAY0 (1772409600LL * SECOND)

static json_t *parse(const char *text)
{
    err_t err = ERR_INIT;
    json_t *j = jv_parse(text, strlen(text), &err);
    if (!j)
        fail_msg("bad test JSON: %s", text);
    return j;
}

/* The outcome code of resource (JSON text) judged at now with its status since `since`. */
static const char *judged(const char *text, int64_t since, int64_t now, adherence_item_t *out)
{
    json_t *r = parse(text);
    adherence_item_t item;
    bool known = care_adherence_judge(r, since, now, &item);
    json_decref(r);
    if (!known)
        return "not judged";
    if (out)
        *out = item;
    return care_adherence_outcome_code(item.outcome);
}

#define TASK(status, extra)                                                             \
    "{\"resourceType\":\"Task\",\"status\":\"" status "\",\"restriction\":{\"period\":" \
    "{\"end\":\"2026-03-02T12:00:00Z\"}}" extra "}"

static void test_task(void **state)
{
    (void)state;
    int64_t due = DAY0 + 12 * HOUR;
    adherence_item_t item;
    assert_string_equal(judged(TASK("ready", ""), 0, due, &item), "not-yet-due");
    assert_int_equal(item.due_us, due + SECOND - 1); /* the last instant of 12:00:00 */
    assert_string_equal(judged(TASK("ready", ""), 0, due + SECOND, NULL), "not-done");
    assert_string_equal(judged(TASK("in-progress", ""), 0, due + HOUR, NULL), "not-done");
    /* completed: when it became completed decides, unless executionPeriod.end says */
    assert_string_equal(judged(TASK("completed", ""), due - HOUR, due + HOUR, &item), "on-time");
    assert_int_equal(item.done_us, due - HOUR);
    assert_string_equal(judged(TASK("completed", ""), due + HOUR, due + 2 * HOUR, NULL), "late");
    assert_string_equal(judged(TASK("completed", ",\"executionPeriod\":"
                                                 "{\"end\":\"2026-03-02T11:00:00Z\"}"),
                               due + HOUR, due + 2 * HOUR, &item),
                        "on-time");
    assert_int_equal(item.done_us, DAY0 + 11 * HOUR);
    /* done before it is due: on time at once; done with no known time: on time */
    assert_string_equal(judged(TASK("completed", ""), due - HOUR, due - HOUR, NULL), "on-time");
    assert_string_equal(judged(TASK("completed", ""), 0, due + HOUR, NULL), "on-time");
    /* a cancelled one is not done */
    assert_string_equal(judged(TASK("cancelled", ""), 0, due + HOUR, NULL), "not-done");
    assert_string_equal(judged("{\"resourceType\":\"Task\",\"status\":\"ready\"}", 0, due, NULL),
                        "no-due-time");
    /* a date is due through its whole day (UTC) */
    assert_string_equal(judged("{\"resourceType\":\"Task\",\"status\":\"ready\",\"restriction\":"
                               "{\"period\":{\"end\":\"2026-03-02\"}}}",
                               0, DAY0 + 23 * HOUR, NULL),
                        "not-yet-due");
}

static void test_other_types(void **state)
{
    (void)state;
    int64_t due = DAY0 + 12 * HOUR, after = due + HOUR;
    assert_string_equal(judged("{\"resourceType\":\"ServiceRequest\",\"status\":\"completed\","
                               "\"occurrenceDateTime\":\"2026-03-02T12:00:00Z\"}",
                               due + 2 * HOUR, due + 3 * HOUR, NULL),
                        "late");
    assert_string_equal(judged("{\"resourceType\":\"ServiceRequest\",\"status\":\"active\","
                               "\"occurrencePeriod\":{\"end\":\"2026-03-02T12:00:00Z\"}}",
                               0, after, NULL),
                        "not-done");
    static const char *const kept[] = {"arrived", "checked-in", "fulfilled"};
    for (size_t i = 0; i < 3; i++) {
        char text[160];
        snprintf(text, sizeof(text),
                 "{\"resourceType\":\"Appointment\",\"status\":\"%s\","
                 "\"start\":\"2026-03-02T12:00:00Z\"}",
                 kept[i]);
        assert_string_equal(judged(text, due + HOUR, after, NULL), "on-time");
    }
    assert_string_equal(judged("{\"resourceType\":\"Appointment\",\"status\":\"noshow\","
                               "\"start\":\"2026-03-02T12:00:00Z\"}",
                               0, after, NULL),
                        "not-done");
    assert_string_equal(judged("{\"resourceType\":\"MedicationRequest\",\"status\":\"active\","
                               "\"dispenseRequest\":{\"validityPeriod\":"
                               "{\"start\":\"2026-03-02T12:00:00Z\"}}}",
                               due - HOUR, after, NULL),
                        "on-time");
    assert_string_equal(judged("{\"resourceType\":\"MedicationRequest\",\"status\":\"draft\","
                               "\"dispenseRequest\":{\"validityPeriod\":"
                               "{\"start\":\"2026-03-02T12:00:00Z\"}}}",
                               0, after, NULL),
                        "not-done");
    assert_string_equal(
        judged("{\"resourceType\":\"Observation\",\"status\":\"final\"}", 0, after, NULL),
        "not judged");
}

static void test_detail(void **state)
{
    (void)state;
    adherence_item_t item;
    json_t *d = parse("{\"status\":\"completed\",\"scheduledPeriod\":"
                      "{\"end\":\"2026-03-02T12:00:00Z\"}}");
    care_adherence_judge_detail(d, DAY0 + 13 * HOUR, &item);
    assert_int_equal(item.outcome, ADHERENCE_ON_TIME);
    json_decref(d);
    d = parse("{\"status\":\"scheduled\",\"scheduledPeriod\":{\"end\":\"2026-03-02T12:00:00Z\"}}");
    care_adherence_judge_detail(d, DAY0 + 13 * HOUR, &item);
    assert_int_equal(item.outcome, ADHERENCE_NOT_DONE);
    json_decref(d);
    d = parse("{\"status\":\"scheduled\",\"scheduledString\":\"every Monday\"}");
    care_adherence_judge_detail(d, DAY0 + 13 * HOUR, &item);
    assert_int_equal(item.outcome, ADHERENCE_NO_DUE_TIME);
    json_decref(d);
}

static void test_counts_and_rate(void **state)
{
    (void)state;
    adherence_counts_t c = {0};
    char rate[16];
    adherence_item_t item = {.outcome = ADHERENCE_NOT_YET_DUE};
    care_adherence_count(&c, &item);
    item.outcome = ADHERENCE_NO_DUE_TIME;
    care_adherence_count(&c, &item);
    assert_false(care_adherence_rate(&c, rate, sizeof(rate)));
    item.outcome = ADHERENCE_ON_TIME;
    care_adherence_count(&c, &item);
    care_adherence_count(&c, &item);
    item.outcome = ADHERENCE_LATE;
    care_adherence_count(&c, &item);
    assert_true(care_adherence_rate(&c, rate, sizeof(rate)));
    assert_string_equal(rate, "0.67");
    item.outcome = ADHERENCE_NOT_DONE;
    care_adherence_count(&c, &item);
    care_adherence_count(&c, &item);
    care_adherence_count(&c, &item);
    assert_true(care_adherence_rate(&c, rate, sizeof(rate)));
    assert_string_equal(rate, "0.33"); /* 2 of 6 */
    assert_int_equal(c.not_yet_due, 1);
    assert_int_equal(c.no_due_time, 1);
    adherence_counts_t all = {.on_time = 3};
    assert_true(care_adherence_rate(&all, rate, sizeof(rate)));
    assert_string_equal(rate, "1.00");
    adherence_counts_t eighth = {.on_time = 1, .not_done = 7};
    assert_true(care_adherence_rate(&eighth, rate, sizeof(rate)));
    assert_string_equal(rate, "0.13"); /* 0.125 rounds half up */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_task),
        cmocka_unit_test(test_other_types),
        cmocka_unit_test(test_detail),
        cmocka_unit_test(test_counts_and_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
