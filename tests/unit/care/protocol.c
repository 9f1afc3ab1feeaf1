/*
 * protocol.c - tests of protocols (src/care/protocol.c): what compiling refuses and where it
 * says the problem is, and the exact Task, CommunicationRequest and Flag an action makes for
 * an event: owner by role or the role pool, due times on the business calendar.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/jv.h"
#include "care/protocol.h"

#define EXT "http://concerto.dev/fhir/StructureDefinition/"

static json_t *parse(const char *text)
{
    err_t err = ERR_INIT;
    json_t *j = jv_parse(text, strlen(text), &err);
    if (!j)
        fail_msg("bad test JSON: %s", text);
    return j;
}

#define PLAN(actions)                                                                          \
    "{\"resourceType\":\"PlanDefinition\",\"id\":\"pd1\",\"meta\":{\"versionId\":\"3\"},"      \
    "\"url\":\"urn:pd\",\"status\":\"active\",\"title\":\"Referrals\",\"type\":{\"coding\":[{" \
    "\"system\":\"http://terminology.hl7.org/CodeSystem/plan-definition-type\",\"code\":"      \
    "\"workflow-definition\"}]},\"action\":[" actions "]}"
#define TRIGGER(name) "\"trigger\":[{\"type\":\"named-event\",\"name\":\"" name "\"}]"
#define CONDITION(expr)                                                        \
    "\"condition\":[{\"kind\":\"applicability\",\"expression\":{\"language\":" \
    "\"text/fhirpath\",\"expression\":\"" expr "\"}}]"

static const char *AD_TASK =
    "{\"resourceType\":\"ActivityDefinition\",\"id\":\"ad1\",\"url\":\"urn:ad\",\"version\":"
    "\"2\",\"status\":\"active\",\"kind\":\"Task\",\"code\":{\"text\":\"call\"},\"description\":"
    "\"Call the patient\",\"priority\":\"urgent\",\"participant\":[{\"type\":\"practitioner\","
    "\"role\":{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":\"768820003\"}]}}],"
    "\"extension\":[{\"url\":\"" EXT "due\",\"valueString\":\"2 business days\"}]}";

/* Compiles plan with the activities given; returns the status and the first issue's
 * expression and message in *out_where and *out_message (static). */
static status_t compile(const char *plan, const char *activity, care_protocol_t **out,
                        const char **out_where, const char **out_message)
{
    static char where[256], message[512];
    json_t *p = parse(plan), *a = activity ? parse(activity) : NULL;
    const json_t *activities[] = {a};
    err_t err = ERR_INIT;
    care_protocol_t *protocol = NULL;
    status_t rc = care_protocol_compile(p, activities, a ? 1 : 0, 0, &protocol, &err);
    where[0] = message[0] = '\0';
    if (rc) {
        snprintf(where, sizeof(where), "%s",
                 err.issues[0].expression ? err.issues[0].expression : "");
        snprintf(message, sizeof(message), "%s", err_message(&err));
    }
    if (out_where)
        *out_where = where;
    if (out_message)
        *out_message = message;
    err_release(&err);
    json_decref(p);
    json_decref(a);
    if (out)
        *out = protocol;
    else
        care_protocol_free(protocol);
    return rc;
}

static void refused(const char *plan, const char *activity, const char *where, const char *text)
{
    const char *w, *m;
    status_t rc = compile(plan, activity, NULL, &w, &m);
    if (rc == ERR_OK)
        fail_msg("compiled: %s", plan);
    assert_string_equal(w, where);
    if (!strstr(m, text))
        fail_msg("\"%s\" not in \"%s\"", text, m);
}

static void test_compile_errors(void **state)
{
    (void)state;
    refused(PLAN("{\"id\":\"a\"," TRIGGER("referral-sent") ",\"definitionCanonical\":\"urn:ad\"}"),
            AD_TASK, "PlanDefinition.action[0].trigger[0].name",
            "no named event \"referral-sent\"");
    refused(PLAN("{\"id\":\"a\"," TRIGGER("referral-created") "," CONDITION(
                "code.text = ") ",\"definitionCanonical\":\"urn:ad\"}"),
            AD_TASK, "PlanDefinition.action[0].condition[0].expression.expression",
            "does not compile");
    refused(
        PLAN("{\"id\":\"a\"," TRIGGER("referral-created") ",\"definitionCanonical\":\"urn:x\"}"),
        AD_TASK, "PlanDefinition.action[0].definitionCanonical",
        "no active ActivityDefinition urn:x");
    /* a version that is not the one given */
    refused(
        PLAN("{\"id\":\"a\"," TRIGGER("referral-created") ",\"definitionCanonical\":\"urn:ad|1\"}"),
        AD_TASK, "PlanDefinition.action[0].definitionCanonical", "urn:ad|1");
    refused(
        PLAN("{\"id\":\"a\"," TRIGGER("referral-created") ",\"definitionCanonical\":\"urn:ad\"},{"
                                                          "\"id\":\"b\",\"relatedAction\":[{"
                                                          "\"actionId\":\"z\",\"relationship\":"
                                                          "\"after-end\"}],\"definitionCanonical\":"
                                                          "\"urn:ad\"}"),
        AD_TASK, "PlanDefinition.action[1].relatedAction[0].actionId", "no action \"z\"");
    refused(PLAN("{\"id\":\"a\",\"relatedAction\":[{\"actionId\":\"b\",\"relationship\":"
                 "\"after-end\"}],\"definitionCanonical\":\"urn:ad\"},{\"id\":\"b\","
                 "\"relatedAction\":[{\"actionId\":\"a\",\"relationship\":\"after-end\"}],"
                 "\"definitionCanonical\":\"urn:ad\"}"),
            AD_TASK, "PlanDefinition.action[0].relatedAction", "make a cycle");
    refused(PLAN("{\"id\":\"a\",\"relatedAction\":[{\"actionId\":\"a\",\"relationship\":"
                 "\"after-end\"}],\"definitionCanonical\":\"urn:ad\"}"),
            AD_TASK, "PlanDefinition.action[0].relatedAction", "make a cycle");
    refused(PLAN("{\"id\":\"a\",\"definitionCanonical\":\"urn:ad\"}"), AD_TASK,
            "PlanDefinition.action[0].trigger", "neither a trigger nor a relatedAction");
    /* an activity that cannot run, named by the plan */
    refused(
        PLAN("{\"id\":\"a\"," TRIGGER("referral-created") ",\"definitionCanonical\":\"urn:ad\"}"),
        "{\"resourceType\":\"ActivityDefinition\",\"url\":\"urn:ad\",\"kind\":"
        "\"MedicationRequest\"}",
        "PlanDefinition.action[0]", "not \"MedicationRequest\" at ActivityDefinition.kind");

    /* the checks at write time leave definitions unresolved */
    json_t *p = parse(PLAN("{\"id\":\"a\"," TRIGGER("task-overdue") ",\"definitionCanonical\":"
                                                                    "\"urn:later\"}"));
    err_t err = ERR_INIT;
    care_protocol_t *protocol;
    assert_int_equal(care_protocol_compile(p, NULL, 0, CARE_PROTOCOL_UNRESOLVED, &protocol, &err),
                     ERR_OK);
    assert_null(protocol->actions[0].activity);
    assert_int_equal(protocol->actions[0].triggers, 1u << CARE_TASK_OVERDUE);
    care_protocol_free(protocol);
    json_decref(p);
}

static void activity_refused(const char *ad, const char *where, const char *text)
{
    json_t *a = parse(ad);
    err_t err = ERR_INIT;
    if (care_activity_check(a, &err) == ERR_OK)
        fail_msg("accepted: %s", ad);
    assert_string_equal(err.issues[0].expression ? err.issues[0].expression : "", where);
    if (!strstr(err_message(&err), text))
        fail_msg("\"%s\" not in \"%s\"", text, err_message(&err));
    err_release(&err);
    json_decref(a);
}

#define AD(extensions)                                                               \
    "{\"resourceType\":\"ActivityDefinition\",\"url\":\"urn:ad\",\"kind\":\"Task\"," \
    "\"extension\":[" extensions "]}"

static void test_activity_checks(void **state)
{
    (void)state;
    json_t *good = parse(AD_TASK);
    err_t err = ERR_INIT;
    assert_int_equal(care_activity_check(good, &err), ERR_OK);
    json_decref(good);
    activity_refused(AD("{\"url\":\"" EXT "due\",\"valueString\":\"2 fortnights\"}"),
                     "ActivityDefinition.extension('" EXT "due').valueString", "2 fortnights");
    activity_refused(AD("{\"url\":\"" EXT "due\",\"valueString\":\"PT4H\"},{\"url\":\"" EXT
                        "due-from\",\"valueString\":\"period.end.\"}"),
                     "ActivityDefinition.extension('" EXT "due-from').valueString",
                     "does not compile");
    activity_refused(AD("{\"url\":\"" EXT "due\",\"valueString\":\"PT4H\"},{\"url\":\"" EXT
                        "escalation\",\"extension\":[{\"url\":\"priority\",\"valueCode\":"
                        "\"stat\"}]}"),
                     "ActivityDefinition.extension[1]", "has no after");
    activity_refused(AD("{\"url\":\"" EXT "due\",\"valueString\":\"PT4H\"},{\"url\":\"" EXT
                        "escalation\",\"extension\":[{\"url\":\"after\",\"valueString\":"
                        "\"PT0H\"},{\"url\":\"wake\",\"valueString\":\"x\"}]}"),
                     "ActivityDefinition.extension[1].extension[1]", "unknown part \"wake\"");
    activity_refused("{\"resourceType\":\"ActivityDefinition\",\"url\":\"urn:ad\",\"kind\":"
                     "\"Task\",\"participant\":[{\"type\":\"practitioner\",\"role\":{\"text\":"
                     "\"nurse\"}}]}",
                     "ActivityDefinition.participant[0].role", "SNOMED CT");
    activity_refused("{\"resourceType\":\"ActivityDefinition\",\"url\":\"urn:ad\",\"kind\":"
                     "\"Task\",\"participant\":[{\"role\":{\"coding\":[{\"system\":\"http://"
                     "snomed.info/sct\",\"code\":\"768820003\"}]}},{\"role\":{\"text\":\"x\"}}]}",
                     "ActivityDefinition.participant[1].role", "SNOMED CT");
    activity_refused(AD("{\"url\":\"" EXT "questionnaire\",\"valueString\":\"urn:q\"}"),
                     "ActivityDefinition.extension('" EXT "questionnaire').valueCanonical",
                     "needs a valueCanonical");
    activity_refused("{\"resourceType\":\"ActivityDefinition\",\"url\":\"urn:ad\",\"kind\":"
                     "\"CommunicationRequest\",\"extension\":[{\"url\":\"" EXT
                     "questionnaire\",\"valueCanonical\":\"urn:q\"}]}",
                     "ActivityDefinition.extension('" EXT "questionnaire')",
                     "not a CommunicationRequest");
}

#define TEAM                                                                                 \
    "{\"resourceType\":\"CareTeam\",\"status\":\"active\",\"category\":[{\"coding\":[{"      \
    "\"system\":\"http://loinc.org\",\"code\":\"LA28865-6\"}]}],\"subject\":{\"reference\":" \
    "\"Patient/p1\"},\"participant\":[{\"role\":[{\"coding\":[{\"system\":"                  \
    "\"http://snomed.info/sct\",\"code\":\"768820003\"}]}],\"member\":{\"reference\":"       \
    "\"Practitioner/old\"},\"period\":{\"end\":\"2020-01-01\"}},{\"role\":[{\"coding\":[{"   \
    "\"system\":\"http://snomed.info/sct\",\"code\":\"768820003\"}]}],\"member\":{"          \
    "\"reference\":\"Practitioner/c1\"}}]}"

/* 2031-01-10 (a Friday) 15:00 UTC, 10:00 in New York */
#define FRIDAY_US (INT64_C(1925823600) * 1000000)

static char *dump(const json_t *j)
{
    static char out[4096];
    char *text = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    snprintf(out, sizeof(out), "%s", text);
    free(text);
    return out;
}

static void test_instantiate_task(void **state)
{
    (void)state;
    calendar_t *cal;
    err_t err = ERR_INIT;
    assert_int_equal(calendar_new("America/New_York", "Mon-Fri", "us-federal", &cal, &err), ERR_OK);
    care_protocol_t *p;
    assert_int_equal(
        compile(PLAN("{\"id\":\"call\"," TRIGGER("referral-created") "," CONDITION(
                    "code.text = 'x' and %patient.gender = 'female'") ",\"definitionCanonical\":"
                                                                      "\"urn:ad|2\"}"),
                AD_TASK, &p, NULL, NULL),
        ERR_OK);
    json_t *sr = parse("{\"resourceType\":\"ServiceRequest\",\"id\":\"sr1\",\"code\":{\"text\":"
                       "\"x\"},\"subject\":{\"reference\":\"Patient/p1\"}}");
    json_t *patient = parse("{\"resourceType\":\"Patient\",\"id\":\"p1\",\"gender\":\"female\"}");
    json_t *team = parse(TEAM);
    care_event_t event = {.type = "ServiceRequest",
                          .id = "sr1",
                          .version = 4,
                          .resource = sr,
                          .patient = patient,
                          .patient_id = "p1",
                          .team = team,
                          .calendar = cal,
                          .time_us = FRIDAY_US,
                          .careplan = "CarePlan/cp1"};
    arena_t arena;
    arena_init(&arena);
    bool applies;
    assert_int_equal(care_action_applies(p, &p->actions[0], &event, &arena, &applies, &err),
                     ERR_OK);
    assert_true(applies);
    json_t *task;
    assert_int_equal(care_action_instantiate(p, &p->actions[0], &event, &arena, &task, &err),
                     ERR_OK);
    assert_string_equal(
        dump(task),
        "{\"authoredOn\":\"2031-01-10T10:00:00.000-05:00\",\"basedOn\":[{\"reference\":"
        "\"CarePlan/cp1\"}],\"code\":{\"text\":\"call\"},\"description\":\"Call the patient\","
        "\"extension\":[{\"url\":\"" EXT "protocol-action\",\"valueString\":\"urn:pd#call\"}],"
        "\"focus\":{\"reference\":\"ServiceRequest/sr1\"},\"for\":{\"reference\":\"Patient/p1\"},"
        "\"identifier\":[{\"system\":\"urn:concerto:protocol-action\",\"value\":"
        "\"pd1/call/ServiceRequest/sr1/_history/4\"}],\"instantiatesCanonical\":\"urn:ad|2\","
        "\"intent\":\"order\",\"owner\":{\"reference\":\"Practitioner/c1\"},\"performerType\":[{"
        "\"coding\":[{\"code\":\"768820003\",\"system\":\"http://snomed.info/sct\"}]}],"
        "\"priority\":\"urgent\",\"resourceType\":\"Task\",\"restriction\":{\"period\":{\"end\":"
        "\"2031-01-14T23:59:59.999-05:00\"}},\"status\":\"ready\"}");
    json_decref(task);

    /* nobody in the role: no owner, requested, in the pool */
    event.team = NULL;
    assert_int_equal(care_action_instantiate(p, &p->actions[0], &event, &arena, &task, &err),
                     ERR_OK);
    assert_null(json_object_get(task, "owner"));
    assert_string_equal(json_string_value(json_object_get(task, "status")), "requested");
    assert_non_null(json_object_get(task, "performerType"));
    json_decref(task);

    /* a condition that does not hold */
    json_object_set_new(patient, "gender", json_string("male"));
    assert_int_equal(care_action_applies(p, &p->actions[0], &event, &arena, &applies, &err),
                     ERR_OK);
    assert_false(applies);

    care_protocol_free(p);
    json_decref(sr);
    json_decref(patient);
    json_decref(team);
    arena_release(&arena);
    calendar_free(cal);
}

static void test_due_from_and_communication(void **state)
{
    (void)state;
    calendar_t *cal;
    err_t err = ERR_INIT;
    assert_int_equal(calendar_new("America/New_York", "Mon-Fri", "us-federal", &cal, &err), ERR_OK);
    const char *ad = "{\"resourceType\":\"ActivityDefinition\",\"url\":\"urn:cr\",\"kind\":"
                     "\"CommunicationRequest\",\"description\":\"Tell the PCP\",\"extension\":[{"
                     "\"url\":\"" EXT "due\",\"valueString\":\"2 business days\"},{\"url\":\"" EXT
                     "due-from\",\"valueString\":\"period.end\"}]}";
    care_protocol_t *p;
    assert_int_equal(compile(PLAN("{\"id\":\"tell\"," TRIGGER(
                                 "encounter-discharged") ",\"definitionCanonical\":\"urn:cr\"}"),
                             ad, &p, NULL, NULL),
                     ERR_OK);
    /* discharged on Friday 2031-01-17 at 18:00 local; MLK day is Monday 2031-01-20: two
       business days are Tuesday and Wednesday */
    json_t *enc = parse("{\"resourceType\":\"Encounter\",\"id\":\"e1\",\"period\":{\"end\":"
                        "\"2031-01-17T18:00:00-05:00\"}}");
    care_event_t event = {.type = "Encounter",
                          .id = "e1",
                          .version = 2,
                          .resource = enc,
                          .patient_id = "p1",
                          .calendar = cal,
                          .time_us = FRIDAY_US + INT64_C(14) * 86400 * 1000000};
    arena_t arena;
    arena_init(&arena);
    json_t *cr;
    assert_int_equal(care_action_instantiate(p, &p->actions[0], &event, &arena, &cr, &err), ERR_OK);
    assert_string_equal(json_string_value(json_object_get(cr, "occurrenceDateTime")),
                        "2031-01-22T23:59:59.999-05:00");
    assert_string_equal(json_string_value(json_object_get(cr, "status")), "active");
    assert_null(json_object_get(cr, "recipient"));
    assert_string_equal(dump(json_object_get(cr, "payload")),
                        "[{\"contentString\":\"Tell the PCP\"}]");
    json_decref(cr);
    /* no period.end: the action cannot be made, and says why */
    json_object_del(enc, "period");
    assert_int_equal(care_action_instantiate(p, &p->actions[0], &event, &arena, &cr, &err),
                     ERR_RULE);
    assert_non_null(strstr(err_message(&err), "gives no single dateTime for Encounter/e1"));
    err_release(&err);
    care_protocol_free(p);
    json_decref(enc);
    arena_release(&arena);
    calendar_free(cal);
}

/* a nurse first, the coordinator when the team has no nurse; a form to fill in */
static const char *AD_NURSE =
    "{\"resourceType\":\"ActivityDefinition\",\"id\":\"ad2\",\"url\":\"urn:ad2\",\"status\":"
    "\"active\",\"kind\":\"Task\",\"participant\":[{\"type\":\"practitioner\",\"role\":{"
    "\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":\"224535009\"}]}},{\"type\":"
    "\"practitioner\",\"role\":{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":"
    "\"768820003\"}]}}],\"extension\":[{\"url\":\"" EXT
    "questionnaire\",\"valueCanonical\":\"urn:q|1\"}]}";

#define NURSE_TEAM                                                                          \
    "{\"resourceType\":\"CareTeam\",\"participant\":[{\"role\":[{\"coding\":[{\"system\":"  \
    "\"http://snomed.info/sct\",\"code\":\"768820003\"}]}],\"member\":{\"reference\":"      \
    "\"Practitioner/c1\"}},{\"role\":[{\"coding\":[{\"system\":\"http://snomed.info/sct\"," \
    "\"code\":\"224535009\"}]}],\"member\":{\"reference\":\"Practitioner/n1\"}}]}"

static void test_fallback_role_and_questionnaire(void **state)
{
    (void)state;
    calendar_t *cal;
    err_t err = ERR_INIT;
    assert_int_equal(calendar_new("America/New_York", "Mon-Fri", "us-federal", &cal, &err), ERR_OK);
    care_protocol_t *p;
    assert_int_equal(compile(PLAN("{\"id\":\"med\"," TRIGGER(
                                 "encounter-discharged") ",\"definitionCanonical\":\"urn:ad2\"}"),
                             AD_NURSE, &p, NULL, NULL),
                     ERR_OK);
    json_t *enc = parse("{\"resourceType\":\"Encounter\",\"id\":\"e1\"}");
    json_t *with_nurse = parse(NURSE_TEAM), *without = parse(TEAM);
    care_event_t event = {.type = "Encounter",
                          .id = "e1",
                          .version = 2,
                          .resource = enc,
                          .patient_id = "p1",
                          .team = with_nurse,
                          .calendar = cal,
                          .time_us = FRIDAY_US};
    arena_t arena;
    arena_init(&arena);
    json_t *task;
    assert_int_equal(care_action_instantiate(p, &p->actions[0], &event, &arena, &task, &err),
                     ERR_OK);
    assert_string_equal(dump(json_object_get(task, "owner")),
                        "{\"reference\":\"Practitioner/n1\"}");
    assert_string_equal(dump(json_object_get(task, "performerType")),
                        "[{\"coding\":[{\"code\":\"224535009\",\"system\":"
                        "\"http://snomed.info/sct\"}]}]");
    assert_string_equal(dump(json_object_get(task, "input")),
                        "[{\"type\":{\"text\":\"questionnaire\"},\"valueCanonical\":\"urn:q|1\"}]");
    json_decref(task);
    /* no nurse on the team: the coordinator, in the coordinator's role */
    event.team = without;
    assert_int_equal(care_action_instantiate(p, &p->actions[0], &event, &arena, &task, &err),
                     ERR_OK);
    assert_string_equal(dump(json_object_get(task, "owner")),
                        "{\"reference\":\"Practitioner/c1\"}");
    assert_string_equal(dump(json_object_get(task, "performerType")),
                        "[{\"coding\":[{\"code\":\"768820003\",\"system\":"
                        "\"http://snomed.info/sct\"}]}]");
    json_decref(task);
    /* nobody at all: the first role's pool */
    event.team = NULL;
    assert_int_equal(care_action_instantiate(p, &p->actions[0], &event, &arena, &task, &err),
                     ERR_OK);
    assert_null(json_object_get(task, "owner"));
    assert_string_equal(json_string_value(json_object_get(task, "status")), "requested");
    assert_string_equal(dump(json_object_get(task, "performerType")),
                        "[{\"coding\":[{\"code\":\"224535009\",\"system\":"
                        "\"http://snomed.info/sct\"}]}]");
    json_decref(task);
    care_protocol_free(p);
    json_decref(enc);
    json_decref(with_nurse);
    json_decref(without);
    arena_release(&arena);
    calendar_free(cal);
}

static void test_flag_and_canonicals(void **state)
{
    (void)state;
    assert_true(care_canonical_matches("urn:ad", "urn:ad", "2"));
    assert_true(care_canonical_matches("urn:ad|2", "urn:ad", "2"));
    assert_false(care_canonical_matches("urn:ad|1", "urn:ad", "2"));
    assert_false(care_canonical_matches("urn:ad|2", "urn:ad", NULL));
    assert_false(care_canonical_matches("urn:adx", "urn:ad", NULL));
    calendar_t *cal;
    err_t err = ERR_INIT;
    assert_int_equal(calendar_new("UTC", "Mon-Fri", "none", &cal, &err), ERR_OK);
    care_protocol_t *p;
    assert_int_equal(
        compile(
            PLAN("{\"id\":\"f\"," TRIGGER(
                "appointment-noshow") ",\"extension\":[{\"url\":\"" EXT "flag\","
                                      "\"valueCodeableConcept\":{\"text\":\"missed visit\"}}]}"),
            NULL, &p, NULL, NULL),
        ERR_OK);
    json_t *appt = parse("{\"resourceType\":\"Appointment\",\"id\":\"a1\"}");
    care_event_t event = {.type = "Appointment",
                          .id = "a1",
                          .version = 1,
                          .resource = appt,
                          .patient_id = "p1",
                          .calendar = cal,
                          .time_us = FRIDAY_US};
    arena_t arena;
    arena_init(&arena);
    json_t *flag = care_action_flag(p, &p->actions[0], &event, &arena);
    assert_string_equal(
        dump(flag),
        "{\"code\":{\"text\":\"missed visit\"},\"extension\":[{\"url\":\"" EXT "protocol-action\","
        "\"valueString\":\"urn:pd#f\"}],\"identifier\":[{\"system\":"
        "\"urn:concerto:protocol-action\",\"value\":\"pd1/f/Appointment/a1/_history/1\"}],"
        "\"period\":{\"start\":\"2031-01-10T15:00:00.000Z\"},\"resourceType\":\"Flag\","
        "\"status\":\"active\",\"subject\":{\"reference\":\"Patient/p1\"}}");
    json_decref(flag);
    care_protocol_free(p);
    json_decref(appt);
    arena_release(&arena);
    calendar_free(cal);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_activity_checks),
        cmocka_unit_test(test_fallback_role_and_questionnaire),
        cmocka_unit_test(test_instantiate_task),
        cmocka_unit_test(test_due_from_and_communication),
        cmocka_unit_test(test_flag_and_canonicals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
