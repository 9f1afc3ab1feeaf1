/*
 * escalation.c - tests of an ActivityDefinition's escalation steps (src/care/escalation.c):
 * what is read from them, the errors that name the element at fault, when each step comes
 * due on the business calendar, and who in a care team holds a role.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/jv.h"
#include "care/escalation.h"
#include "fhir/workflow.h"

static json_t *parse(const char *text)
{
    err_t err = ERR_INIT;
    json_t *j = jv_parse(text, strlen(text), &err);
    if (!j)
        fail_msg("bad test JSON: %s", text);
    return j;
}

#define EXT  "http://concerto.dev/fhir/StructureDefinition/"
#define ROLE "{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":\"309377002\"}]}"
#define AD(steps)                                                                             \
    "{\"resourceType\":\"ActivityDefinition\",\"status\":\"active\",\"extension\":[{\"url\":" \
    "\"" EXT "due\",\"valueString\":\"2 business days\"}" steps "]}"
#define STEP(parts) ",{\"url\":\"" EXT "escalation\",\"extension\":[" parts "]}"
#define AFTER(text) "{\"url\":\"after\",\"valueString\":\"" text "\"}"

static void test_two_steps_in_order(void **state)
{
    (void)state;
    json_t *ad = parse(AD(STEP(AFTER("PT0H") ",{\"url\":\"priority\",\"valueCode\":\"urgent\"},"
                                             "{\"url\":\"notify\",\"valueCodeableConcept\":{"
                                             "\"coding\":[{\"system\":\"" EXT
                                             "notify-target\",\"code\":\"owner\"}]}}")
                              STEP(AFTER("1 business day") ",{\"url\":\"reassign\","
                                                           "\"valueCodeableConcept\":" ROLE "}")));
    arena_t arena;
    arena_init(&arena);
    care_escalation_t esc;
    err_t err = ERR_INIT;
    assert_int_equal(care_escalation_parse(ad, &arena, &esc, &err), ERR_OK);
    assert_int_equal(esc.n, 2);
    assert_int_equal(esc.steps[0].after.unit, CALENDAR_HOURS);
    assert_int_equal(esc.steps[0].after.amount, 0);
    assert_string_equal(esc.steps[0].priority, "urgent");
    assert_true(esc.steps[0].notify_owner);
    assert_null(esc.steps[0].notify.code);
    assert_null(esc.steps[0].reassign.code);
    assert_int_equal(esc.steps[1].after.unit, CALENDAR_BUSINESS_DAYS);
    assert_int_equal(esc.steps[1].after.amount, 1);
    assert_string_equal(esc.steps[1].after_text, "1 business day");
    assert_null(esc.steps[1].priority);
    assert_string_equal(esc.steps[1].reassign.system, "http://snomed.info/sct");
    assert_string_equal(esc.steps[1].reassign.code, "309377002");
    assert_false(esc.steps[1].notify_owner);
    json_decref(ad);

    /* no escalation at all is fine: nothing to do after the mark */
    ad = parse(AD(""));
    assert_int_equal(care_escalation_parse(ad, &arena, &esc, &err), ERR_OK);
    assert_int_equal(esc.n, 0);
    json_decref(ad);
    arena_release(&arena);
}

/* The error of parsing ad: its code, expression and message must be as given. */
static void refused(const char *text, const char *expression, const char *message)
{
    json_t *ad = parse(text);
    arena_t arena;
    arena_init(&arena);
    care_escalation_t esc;
    err_t err = ERR_INIT;
    assert_int_equal(care_escalation_parse(ad, &arena, &esc, &err), ERR_RULE);
    assert_non_null(err.issues);
    assert_string_equal(err.issues[0].expression, expression);
    if (!strstr(err_message(&err), message))
        fail_msg("\"%s\" does not say \"%s\"", err_message(&err), message);
    err_release(&err);
    json_decref(ad);
    arena_release(&arena);
}

static void test_errors_name_the_element(void **state)
{
    (void)state;
    refused(AD(STEP(AFTER("2 fortnights") ",{\"url\":\"priority\",\"valueCode\":\"stat\"}")),
            "ActivityDefinition.extension[1].extension[0]", "\"2 fortnights\" is not a duration");
    refused(AD(STEP(AFTER("PT1H") ",{\"url\":\"priority\",\"valueCode\":\"high\"}")),
            "ActivityDefinition.extension[1].extension[1]", "priority \"high\" is not routine");
    refused(AD(STEP("{\"url\":\"priority\",\"valueCode\":\"stat\"}")),
            "ActivityDefinition.extension[1]", "has no after");
    refused(AD(STEP(AFTER("PT1H"))), "ActivityDefinition.extension[1]", "does nothing");
    refused(AD(STEP(AFTER("PT1H") ",{\"url\":\"reassign\",\"valueString\":\"supervisor\"}")),
            "ActivityDefinition.extension[1].extension[1]",
            "reassign needs a valueCodeableConcept");
    refused(AD(STEP(AFTER("PT1H") ",{\"url\":\"page\",\"valueString\":\"x\"}")),
            "ActivityDefinition.extension[1].extension[1]", "unknown part \"page\"");
    refused(AD(STEP(AFTER("PT1H") ",{\"url\":\"priority\",\"valueCode\":\"stat\"}")
                   STEP("{\"url\":\"after\",\"valueInteger\":3}")),
            "ActivityDefinition.extension[2].extension[0]", "after needs a valueString");
}

static int64_t at(const char *text)
{
    json_t *task = parse(text);
    int64_t us = 0;
    assert_true(fhir_task_due(task, &us));
    json_decref(task);
    return us;
}

#define DUE(t) "{\"restriction\":{\"period\":{\"end\":\"" t "\"}}}"

static void test_step_times_on_the_business_calendar(void **state)
{
    (void)state;
    calendar_t *cal;
    err_t err = ERR_INIT;
    assert_int_equal(calendar_new("America/New_York", "Mon-Fri", "us-federal", &cal, &err), ERR_OK);
    care_escalation_step_t step = {0};
    /* PT0H: at the due time itself */
    int64_t due = at(DUE("2026-12-31T17:00:00-05:00"));
    assert_int_equal(calendar_duration_parse("PT0H", 4, &step.after, &err), ERR_OK);
    assert_int_equal(care_escalation_time(cal, due, &step), due);
    /* one business day after Thursday 31 December: New Year's Day is a holiday and then
       comes the weekend, so the end of Monday 4 January */
    assert_int_equal(calendar_duration_parse("1 business day", 14, &step.after, &err), ERR_OK);
    assert_int_equal(care_escalation_time(cal, due, &step),
                     at(DUE("2027-01-04T23:59:59.999999-05:00")));
    /* four hours are four hours, whatever the day */
    assert_int_equal(calendar_duration_parse("PT4H", 4, &step.after, &err), ERR_OK);
    assert_int_equal(care_escalation_time(cal, due, &step), at(DUE("2026-12-31T21:00:00-05:00")));
    /* a due date without a time lasts through its day (UTC) */
    assert_int_equal(at(DUE("2026-12-31")), at(DUE("2026-12-31T23:59:59.999999Z")));
    calendar_free(cal);
}

static void test_member_in_role(void **state)
{
    (void)state;
    json_t *team = parse(
        "{\"resourceType\":\"CareTeam\",\"participant\":["
        "{\"role\":[" ROLE "],\"member\":{\"reference\":\"Practitioner/old\"},"
        "\"period\":{\"end\":\"2020-01-01\"}},"
        "{\"role\":[{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":\"768820003\"}]}],"
        "\"member\":{\"reference\":\"Practitioner/coord\"}},"
        "{\"role\":[" ROLE "],\"member\":{\"reference\":\"PractitionerRole/sup\"}}]}");
    care_role_t supervisor = {"http://snomed.info/sct", "309377002"};
    care_role_t any_system = {NULL, "768820003"};
    care_role_t other_system = {"urn:local", "309377002"};
    care_role_t nobody = {"http://snomed.info/sct", "158965000"};
    int64_t now = at(DUE("2026-11-23T12:00:00Z"));
    /* the one whose period is over no longer holds it */
    assert_string_equal(
        fhir_care_team_member_in_role(team, supervisor.system, supervisor.code, now),
        "PractitionerRole/sup");
    assert_string_equal(
        fhir_care_team_member_in_role(team, any_system.system, any_system.code, now),
        "Practitioner/coord");
    assert_null(fhir_care_team_member_in_role(team, other_system.system, other_system.code, now));
    assert_null(fhir_care_team_member_in_role(team, nobody.system, nobody.code, now));
    assert_null(fhir_care_team_member_in_role(NULL, supervisor.system, supervisor.code, now));
    json_decref(team);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_steps_in_order),
        cmocka_unit_test(test_errors_name_the_element),
        cmocka_unit_test(test_step_times_on_the_business_calendar),
        cmocka_unit_test(test_member_in_role),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
