/*
 * tcm.c - tests of the TCM report (src/care/tcm.c): the interactive contact, the face-to-face
 * visit and medication reconciliation met, pending and missed at their boundaries (across
 * weekends, holidays and a change of clocks), two unsuccessful attempts, the complexity, 99495
 * against 99496, provisional and final, and the one-TCM-per-30-days rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/jv.h"
#include "care/tcm.h"
#include "fhir/workflow.h"

#define ACTION "http://concerto.dev/fhir/StructureDefinition/protocol-action"

static calendar_t *calendar;
static arena_t arena;

static int setup(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    if (calendar_new("America/New_York", "Mon-Fri", "us-federal", &calendar, &err))
        return -1;
    arena_init(&arena);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    arena_release(&arena);
    calendar_free(calendar);
    return 0;
}

/* The first instant of a dateTime text. */
static int64_t at(const char *text)
{
    json_t *s = json_string(text);
    int64_t low, high;
    if (!fhir_date_bounds(s, &low, &high))
        fail_msg("bad test time: %s", text);
    json_decref(s);
    return low;
}

/* An episode being built: the discharge Encounter/d and the arrays. */
typedef struct {
    json_t *encounter, *tasks, *communications, *encounters;
} built_t;

static json_t *parsef(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *parsef(const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    err_t err = ERR_INIT;
    json_t *j = jv_parse(text, strlen(text), &err);
    if (!j)
        fail_msg("bad test JSON: %s", text);
    return j;
}

/* A discharge Encounter/id of Patient/p: start, end, and more members (",..." or ""). */
static json_t *stay(const char *id, const char *start, const char *end, const char *more)
{
    return parsef("{\"resourceType\":\"Encounter\",\"id\":\"%s\",\"status\":\"finished\","
                  "\"class\":{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ActCode\","
                  "\"code\":\"IMP\"},\"subject\":{\"reference\":\"Patient/p\"},"
                  "\"period\":{\"start\":\"%s\",\"end\":\"%s\"}%s}",
                  id, start, end, more);
}

static void begin(built_t *b, const char *start, const char *end, const char *more)
{
    b->encounter = stay("d", start, end, more);
    b->tasks = json_array();
    b->communications = json_array();
    b->encounters = json_array();
    json_array_append(b->encounters, b->encounter);
}

static void end(built_t *b)
{
    json_decref(b->encounter);
    json_decref(b->tasks);
    json_decref(b->communications);
    json_decref(b->encounters);
}

/* A Task of the transitional-care protocol's action about Encounter/d; done: completed with
 * executionPeriod.end then (NULL: ready). */
static void task(built_t *b, const char *id, const char *action, const char *done)
{
    char execution[128] = "";
    if (done)
        snprintf(execution, sizeof(execution), ",\"executionPeriod\":{\"end\":\"%s\"}", done);
    json_array_append_new(
        b->tasks,
        parsef("{\"resourceType\":\"Task\",\"id\":\"%s\",\"status\":\"%s\",\"intent\":\"order\","
               "\"focus\":{\"reference\":\"Encounter/d\"},\"extension\":[{\"url\":\"" ACTION "\","
               "\"valueString\":\"" TCM_PROTOCOL_URL "#%s\"}]%s}",
               id, done ? "completed" : "ready", action, execution));
}

/* A Communication partOf Task/contact: status completed or not-done, sent, medium code. */
static void contact(built_t *b, const char *id, const char *status, const char *sent,
                    const char *medium)
{
    json_array_append_new(
        b->communications,
        parsef(
            "{\"resourceType\":\"Communication\",\"id\":\"%s\",\"status\":\"%s\","
            "\"partOf\":[{\"reference\":\"Task/contact\"}],"
            "\"subject\":{\"reference\":\"Patient/p\"},\"sent\":\"%s\","
            "\"medium\":[{\"coding\":[{\"system\":"
            "\"http://terminology.hl7.org/CodeSystem/v3-ParticipationMode\",\"code\":\"%s\"}]}]}",
            id, status, sent, medium));
}

/* An Encounter of the patient: class, status, start. */
static void visit(built_t *b, const char *id, const char *cls, const char *status,
                  const char *start)
{
    json_array_append_new(
        b->encounters,
        parsef("{\"resourceType\":\"Encounter\",\"id\":\"%s\",\"status\":\"%s\","
               "\"class\":{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ActCode\","
               "\"code\":\"%s\"},\"subject\":{\"reference\":\"Patient/p\"},"
               "\"period\":{\"start\":\"%s\"}}",
               id, status, cls, start));
}

static tcm_report_t judge(const built_t *b, const char *now)
{
    tcm_episode_t e = {b->encounter, b->tasks, b->communications, b->encounters};
    tcm_report_t r;
    care_tcm_judge(&e, calendar, at(now), &arena, &r);
    return r;
}

/* Discharged Friday 2026-03-06 at 14:00 EST; the clocks go forward on Sunday 8 March. */
#define START     "2026-03-04T09:00:00-05:00"
#define DISCHARGE "2026-03-06T14:00:00-05:00"

static void test_discharged(void **state)
{
    (void)state;
    const char *problem, *where;
    json_t *e = stay("d", START, DISCHARGE, "");
    assert_true(care_tcm_discharged(e, &problem, &where));
    json_object_set_new(e, "status", json_string("in-progress"));
    assert_false(care_tcm_discharged(e, &problem, &where));
    assert_string_equal(where, "Encounter.status");
    json_object_set_new(e, "status", json_string("finished"));
    json_object_del(json_object_get(e, "period"), "end");
    assert_false(care_tcm_discharged(e, &problem, &where));
    assert_string_equal(where, "Encounter.period.end");
    json_decref(e);
}

static void test_contact_deadline_and_boundaries(void **state)
{
    (void)state;
    built_t b;
    begin(&b, START, DISCHARGE, "");
    task(&b, "contact", "interactive-contact", NULL);
    /* the end of Tuesday, the 2nd business day after a Friday, in daylight time */
    tcm_report_t r = judge(&b, "2026-03-09T10:00:00-04:00");
    assert_int_equal(r.contact.deadline_us, at("2026-03-11T00:00:00-04:00") - 1);
    assert_int_equal(r.discharge_us, at(DISCHARGE));
    assert_int_equal(r.contact.status, TCM_PENDING);
    assert_string_equal(r.contact.task, "Task/contact");
    assert_int_equal(r.contact.nevidence, 0);
    /* a contact a second after the deadline does not count; before the discharge neither */
    contact(&b, "late", "completed", "2026-03-11T00:00:00-04:00", "PHONE");
    contact(&b, "early", "completed", "2026-03-06T13:00:00-05:00", "PHONE");
    r = judge(&b, "2026-03-10T23:59:59-04:00");
    assert_int_equal(r.contact.status, TCM_PENDING);
    r = judge(&b, "2026-03-11T00:00:00-04:00");
    assert_int_equal(r.contact.status, TCM_MISSED);
    assert_int_equal(r.successful, 0);
    /* a written message is no interactive contact */
    contact(&b, "letter", "completed", "2026-03-09T09:00:00-04:00", "WRITTEN");
    assert_int_equal(judge(&b, "2026-03-12T00:00:00-04:00").contact.status, TCM_MISSED);
    /* the last minute of the deadline does */
    contact(&b, "call", "completed", "2026-03-10T23:59:00-04:00", "PHONE");
    r = judge(&b, "2026-03-20T12:00:00-04:00");
    assert_int_equal(r.contact.status, TCM_MET);
    assert_int_equal(r.contact.nevidence, 1);
    assert_string_equal(r.contact.evidence[0], "Communication/call");
    assert_int_equal(r.contact.met_us, at("2026-03-10T23:59:00-04:00"));
    assert_int_equal(r.successful, 1);
    end(&b);
}

static void test_two_unsuccessful_attempts(void **state)
{
    (void)state;
    built_t b;
    begin(&b, START, DISCHARGE, "");
    task(&b, "contact", "interactive-contact", NULL);
    contact(&b, "a1", "not-done", "2026-03-06T16:00:00-05:00", "PHONE");
    tcm_report_t r = judge(&b, "2026-03-09T10:00:00-04:00");
    assert_int_equal(r.contact.status, TCM_PENDING);
    assert_int_equal(r.attempts, 1);
    /* a second attempt after the deadline is not timely */
    contact(&b, "a-late", "not-done", "2026-03-11T09:00:00-04:00", "PHONE");
    r = judge(&b, "2026-03-11T10:00:00-04:00");
    assert_int_equal(r.contact.status, TCM_MISSED);
    assert_int_equal(r.attempts, 1);
    /* a timely second one: met at it, both named */
    contact(&b, "a2", "not-done", "2026-03-09T11:00:00-04:00", "VIDEOCONF");
    r = judge(&b, "2026-03-11T10:00:00-04:00");
    assert_int_equal(r.contact.status, TCM_MET);
    assert_int_equal(r.attempts, 2);
    assert_int_equal(r.contact.nevidence, 2);
    assert_string_equal(r.contact.evidence[0], "Communication/a1");
    assert_string_equal(r.contact.evidence[1], "Communication/a2");
    assert_int_equal(r.contact.met_us, at("2026-03-09T11:00:00-04:00"));
    end(&b);
}

static void test_contact_by_task_or_about_the_encounter(void **state)
{
    (void)state;
    built_t b;
    begin(&b, START, DISCHARGE, "");
    task(&b, "contact", "interactive-contact", "2026-03-10T15:00:00-04:00");
    tcm_report_t r = judge(&b, "2026-03-12T10:00:00-04:00");
    assert_int_equal(r.contact.status, TCM_MET);
    assert_string_equal(r.contact.evidence[0], "Task/contact");
    end(&b);

    begin(&b, START, DISCHARGE, "");
    task(&b, "contact", "interactive-contact", "2026-03-11T08:00:00-04:00"); /* too late */
    json_array_append_new(
        b.communications,
        parsef(
            "{\"resourceType\":\"Communication\",\"id\":\"c\",\"status\":\"completed\","
            "\"about\":[{\"reference\":\"Encounter/d\"}],\"sent\":\"2026-03-07T10:00:00-05:00\"}"));
    r = judge(&b, "2026-03-12T10:00:00-04:00");
    assert_int_equal(r.contact.status, TCM_MET);
    assert_string_equal(r.contact.evidence[0], "Communication/c");
    end(&b);
}

static void test_holiday_deadline(void **state)
{
    (void)state;
    built_t b;
    /* Wednesday before Thanksgiving: Thursday is a holiday, Friday the 1st business day,
       Monday the 2nd */
    begin(&b, "2026-11-20T09:00:00-05:00", "2026-11-25T18:00:00-05:00", "");
    tcm_report_t r = judge(&b, "2026-11-27T10:00:00-05:00");
    assert_int_equal(r.contact.deadline_us, at("2026-12-01T00:00:00-05:00") - 1);
    assert_int_equal(r.contact.status, TCM_PENDING);
    /* the period: 30 days */
    assert_int_equal(r.period_end_us, at("2026-12-25T18:00:00-05:00"));
    end(&b);
}

static void test_complexity(void **state)
{
    (void)state;
    built_t b;
    begin(&b, "2026-03-03T23:00:00-05:00", DISCHARGE, ""); /* 3 days */
    tcm_report_t r = judge(&b, "2026-03-07T10:00:00-05:00");
    assert_false(r.high_complexity);
    assert_int_equal(r.visit.deadline_us, at("2026-03-21T00:00:00-04:00") - 1);
    end(&b);
    begin(&b, "2026-03-02T23:00:00-05:00", DISCHARGE, ""); /* 4 days */
    r = judge(&b, "2026-03-07T10:00:00-05:00");
    assert_true(r.high_complexity);
    assert_string_equal(r.complexity_reason, "a stay of 4 days");
    assert_int_equal(r.visit.deadline_us, at("2026-03-14T00:00:00-04:00") - 1);
    end(&b);
    begin(&b, START, DISCHARGE,
          ",\"priority\":{\"coding\":[{\"system\":"
          "\"http://terminology.hl7.org/CodeSystem/v3-ActPriority\",\"code\":\"EM\"}]}");
    assert_true(judge(&b, "2026-03-07T10:00:00-05:00").high_complexity);
    end(&b);
    begin(&b, START, DISCHARGE,
          ",\"diagnosis\":[{\"condition\":{\"reference\":\"Condition/1\"}},"
          "{\"condition\":{\"reference\":\"Condition/2\"}},"
          "{\"condition\":{\"reference\":\"Condition/3\"}}]");
    assert_true(judge(&b, "2026-03-07T10:00:00-05:00").high_complexity);
    /* the protocol's Task decides over the rule */
    task(&b, "f2f", "face-to-face-14", NULL);
    r = judge(&b, "2026-03-07T10:00:00-05:00");
    assert_false(r.high_complexity);
    assert_string_equal(r.complexity_reason, "the protocol's Task Task/f2f (face-to-face-14)");
    end(&b);
}

static void test_visit_boundaries(void **state)
{
    (void)state;
    built_t b;
    begin(&b, START, DISCHARGE, "");
    /* moderate: the 14th day, 2026-03-20, counts to its end */
    tcm_report_t r = judge(&b, "2026-03-20T23:00:00-04:00");
    assert_int_equal(r.visit.status, TCM_PENDING);
    r = judge(&b, "2026-03-21T00:00:00-04:00");
    assert_int_equal(r.visit.status, TCM_MISSED);
    /* an office visit of another patient's kind does not count: an inpatient one, or one
       cancelled */
    visit(&b, "inpatient", "IMP", "finished", "2026-03-10T10:00:00-04:00");
    visit(&b, "cancelled", "AMB", "cancelled", "2026-03-10T10:00:00-04:00");
    assert_null(judge(&b, "2026-03-21T00:00:00-04:00").visit_ref);
    visit(&b, "on-day-14", "AMB", "finished", "2026-03-20T23:30:00-04:00");
    r = judge(&b, "2026-03-22T00:00:00-04:00");
    assert_int_equal(r.visit.status, TCM_MET);
    assert_string_equal(r.visit.evidence[0], "Encounter/on-day-14");
    end(&b);

    begin(&b, START, DISCHARGE, "");
    visit(&b, "on-day-15", "HH", "finished", "2026-03-21T08:00:00-04:00");
    r = judge(&b, "2026-03-21T09:00:00-04:00");
    assert_int_equal(r.visit.status, TCM_MISSED);
    assert_string_equal(r.visit_ref, "Encounter/on-day-15");
    end(&b);
}

/* Discharge with all three met: contact on Monday, reconciliation the day before the visit. */
static void all_met(built_t *b, const char *f2f_action, const char *visit_start)
{
    begin(b, START, DISCHARGE, "");
    task(b, "contact", "interactive-contact", NULL);
    task(b, "f2f", f2f_action, NULL);
    contact(b, "call", "completed", "2026-03-09T10:00:00-04:00", "PHONE");
    task(b, "medrec",
         strcmp(f2f_action, "face-to-face-7") == 0 ? "medication-reconciliation-7"
                                                   : "medication-reconciliation-14",
         "2026-03-12T10:00:00-04:00");
    visit(b, "visit", "AMB", "finished", visit_start);
}

static void test_codes(void **state)
{
    (void)state;
    built_t b;
    all_met(&b, "face-to-face-7", "2026-03-13T10:00:00-04:00"); /* day 7 */
    tcm_report_t r = judge(&b, "2026-03-13T12:00:00-04:00");
    assert_int_equal(r.code, TCM_CODE_99496);
    assert_true(r.final);
    assert_int_equal(r.reconciliation.status, TCM_MET);
    assert_string_equal(r.reconciliation.evidence[0], "Task/medrec");
    end(&b);

    /* high complexity, visit on day 8: the 7-day visit is missed, 99495 is what it supports */
    all_met(&b, "face-to-face-7", "2026-03-14T10:00:00-04:00");
    r = judge(&b, "2026-03-14T12:00:00-04:00");
    assert_int_equal(r.visit.status, TCM_MISSED);
    assert_int_equal(r.code, TCM_CODE_99495);
    assert_true(r.final);
    end(&b);

    /* moderate: 99495 */
    all_met(&b, "face-to-face-14", "2026-03-13T10:00:00-04:00");
    r = judge(&b, "2026-03-13T12:00:00-04:00");
    assert_int_equal(r.code, TCM_CODE_99495);
    assert_true(r.final);
    end(&b);

    /* reconciliation after the visit's day: none, finally */
    all_met(&b, "face-to-face-14", "2026-03-11T10:00:00-04:00");
    r = judge(&b, "2026-03-13T12:00:00-04:00");
    assert_int_equal(r.reconciliation.status, TCM_MISSED);
    assert_int_equal(r.reconciliation.deadline_us, at("2026-03-12T00:00:00-04:00") - 1);
    assert_int_equal(r.code, TCM_CODE_NONE);
    assert_true(r.final);
    assert_string_equal(r.reason, "missed: medication reconciliation by the visit");
    end(&b);

    /* on the visit's own date, later in the day, still counts */
    all_met(&b, "face-to-face-14", "2026-03-12T08:00:00-04:00");
    assert_int_equal(judge(&b, "2026-03-13T12:00:00-04:00").code, TCM_CODE_99495);
    end(&b);
}

static void test_provisional(void **state)
{
    (void)state;
    built_t b;
    begin(&b, START, DISCHARGE, "");
    task(&b, "contact", "interactive-contact", NULL);
    task(&b, "f2f", "face-to-face-7", NULL);
    task(&b, "medrec", "medication-reconciliation-7", NULL);
    tcm_report_t r = judge(&b, "2026-03-07T10:00:00-05:00");
    assert_int_equal(r.code, TCM_CODE_NONE);
    assert_false(r.final);
    assert_int_equal(r.reachable, TCM_CODE_99496);
    assert_int_equal(r.reconciliation.status, TCM_PENDING);
    assert_int_equal(r.reconciliation.deadline_us, at("2026-03-14T00:00:00-04:00") - 1);
    /* day 8 without a visit: 99496 is out of reach, 99495 not yet; reconciliation is now due
       by the 14th day */
    r = judge(&b, "2026-03-14T10:00:00-04:00");
    assert_int_equal(r.visit.status, TCM_MISSED);
    assert_int_equal(r.contact.status, TCM_MISSED);
    assert_int_equal(r.reachable, TCM_CODE_NONE);
    assert_true(r.final);
    /* with the contact made, 99495 stays reachable on day 8 */
    contact(&b, "call", "completed", "2026-03-09T10:00:00-04:00", "FACE");
    r = judge(&b, "2026-03-14T10:00:00-04:00");
    assert_false(r.final);
    assert_int_equal(r.reachable, TCM_CODE_99495);
    assert_int_equal(r.reconciliation.deadline_us, at("2026-03-21T00:00:00-04:00") - 1);
    assert_string_equal(r.reason, "pending: face-to-face visit, medication reconciliation; "
                                  "99495 is still reachable");
    /* and after the 14th day, none */
    r = judge(&b, "2026-03-21T00:00:00-04:00");
    assert_int_equal(r.code, TCM_CODE_NONE);
    assert_true(r.final);
    end(&b);
}

static void test_not_eligible(void **state)
{
    (void)state;
    built_t b;
    begin(&b, START, DISCHARGE,
          ",\"hospitalization\":{\"dischargeDisposition\":{\"coding\":[{\"system\":"
          "\"http://terminology.hl7.org/CodeSystem/discharge-disposition\",\"code\":\"snf\"}]}}");
    tcm_report_t r = judge(&b, "2026-03-07T10:00:00-05:00");
    assert_false(r.eligible);
    assert_true(r.final);
    assert_int_equal(r.code, TCM_CODE_NONE);
    assert_string_equal(r.reason,
                        "the patient was discharged to \"snf\", not to a community setting");
    end(&b);
    begin(&b, START, DISCHARGE, "");
    json_object_set_new(json_object_get(b.encounter, "class"), "code", json_string("AMB"));
    r = judge(&b, "2026-03-07T10:00:00-05:00");
    assert_false(r.eligible);
    end(&b);
}

static void test_one_per_30_days(void **state)
{
    (void)state;
    built_t first;
    all_met(&first, "face-to-face-14", "2026-03-13T10:00:00-04:00");
    tcm_report_t earlier = judge(&first, "2026-04-01T10:00:00-04:00");
    assert_int_equal(earlier.code, TCM_CODE_99495);

    built_t b;
    /* discharged again 29 days later: within the first one's period */
    begin(&b, "2026-04-02T10:00:00-04:00", "2026-04-04T14:00:00-04:00", "");
    tcm_report_t r = judge(&b, "2026-04-05T10:00:00-04:00");
    assert_false(r.final);
    assert_true(care_tcm_supersede(&r, &earlier, "Encounter/d", calendar, &arena));
    assert_int_equal(r.code, TCM_CODE_NONE);
    assert_int_equal(r.reachable, TCM_CODE_NONE);
    assert_true(r.final);
    assert_string_equal(r.reason, "one TCM per patient per 30 days: Encounter/d, discharged "
                                  "2026-03-06T14:00:00.000-05:00, already supports 99495");
    end(&b);
    /* 30 days and more later: its own */
    begin(&b, "2026-04-02T10:00:00-04:00", "2026-04-05T14:00:00-04:00", "");
    r = judge(&b, "2026-04-06T10:00:00-04:00");
    assert_false(care_tcm_supersede(&r, &earlier, "Encounter/d", calendar, &arena));
    assert_false(r.final);
    end(&b);
    /* an earlier discharge that supports nothing does not count */
    tcm_report_t nothing = earlier;
    nothing.code = TCM_CODE_NONE;
    begin(&b, "2026-03-20T10:00:00-04:00", "2026-03-22T14:00:00-04:00", "");
    r = judge(&b, "2026-03-23T10:00:00-04:00");
    assert_false(care_tcm_supersede(&r, &nothing, "Encounter/d", calendar, &arena));
    end(&b);
    end(&first);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discharged),
        cmocka_unit_test(test_contact_deadline_and_boundaries),
        cmocka_unit_test(test_two_unsuccessful_attempts),
        cmocka_unit_test(test_contact_by_task_or_about_the_encounter),
        cmocka_unit_test(test_holiday_deadline),
        cmocka_unit_test(test_complexity),
        cmocka_unit_test(test_visit_boundaries),
        cmocka_unit_test(test_codes),
        cmocka_unit_test(test_provisional),
        cmocka_unit_test(test_not_eligible),
        cmocka_unit_test(test_one_per_30_days),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
