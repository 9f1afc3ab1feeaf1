/*
 * triggers.c - tests of the engine's named events (src/care/triggers.c): each fires when a
 * change brings a resource into its state, once, and not for look-alikes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/jv.h"
#include "care/triggers.h"

static json_t *parse(const char *text)
{
    if (!text)
        return NULL;
    err_t err = ERR_INIT;
    json_t *j = jv_parse(text, strlen(text), &err);
    if (!j)
        fail_msg("bad test JSON: %s", text);
    return j;
}

/* The names of the triggers of a change, space-separated ("" for none). */
static const char *fired(const char *type, const char *before, const char *after)
{
    static char out[256];
    json_t *b = parse(before), *a = parse(after);
    care_trigger_t t[CARE_TRIGGER__COUNT];
    size_t n = care_triggers_of(type, b, a, t, CARE_TRIGGER__COUNT);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s", i ? " " : "",
                 care_trigger_name(t[i]));
    json_decref(b);
    json_decref(a);
    return out;
}

#define TASK(s) "{\"resourceType\":\"Task\",\"status\":\"" s "\"}"

static void test_task_completed(void **state)
{
    (void)state;
    assert_string_equal(fired("Task", TASK("in-progress"), TASK("completed")), "task-completed");
    assert_string_equal(fired("Task", NULL, TASK("completed")), "task-completed");
    /* an edit of a completed Task is not a second completion; a delete fires nothing */
    assert_string_equal(fired("Task", TASK("completed"), TASK("completed")), "");
    assert_string_equal(fired("Task", TASK("completed"), NULL), "");
    assert_string_equal(fired("Task", TASK("ready"), TASK("in-progress")), "");
}

#define OVERDUE_TASK(s)                                                        \
    "{\"resourceType\":\"Task\",\"status\":\"" s "\",\"extension\":[{\"url\":" \
    "\"http://concerto.dev/fhir/StructureDefinition/"                          \
    "overdue\",\"valueDateTime\":\"2026-11-27T17:00:"                          \
    "00-05:00\"}]}"

static void test_task_overdue(void **state)
{
    (void)state;
    /* the engine's mark appearing is the event; keeping or dropping it is not */
    assert_string_equal(fired("Task", TASK("ready"), OVERDUE_TASK("ready")), "task-overdue");
    assert_string_equal(fired("Task", OVERDUE_TASK("ready"), OVERDUE_TASK("in-progress")), "");
    assert_string_equal(fired("Task", OVERDUE_TASK("ready"), TASK("ready")), "");
    assert_string_equal(fired("Task", OVERDUE_TASK("in-progress"), OVERDUE_TASK("completed")),
                        "task-completed");
    assert_string_equal(fired("Appointment", NULL, OVERDUE_TASK("ready")), "");
}

#define REFERRAL(s, code)                                                                    \
    "{\"resourceType\":\"ServiceRequest\",\"status\":\"" s "\",\"category\":[{\"coding\":[{" \
    "\"system\":\"http://snomed.info/sct\",\"code\":\"" code "\"}]}]}"

static void test_referral_created(void **state)
{
    (void)state;
    assert_string_equal(fired("ServiceRequest", NULL, REFERRAL("active", "3457005")),
                        "referral-created");
    /* a draft becomes a referral when it is sent */
    assert_string_equal(fired("ServiceRequest", NULL, REFERRAL("draft", "3457005")), "");
    assert_string_equal(
        fired("ServiceRequest", REFERRAL("draft", "3457005"), REFERRAL("active", "3457005")),
        "referral-created");
    /* a lab order is not a referral */
    assert_string_equal(fired("ServiceRequest", NULL, REFERRAL("active", "108252007")), "");
}

#define ENC(status, cls)                                                               \
    "{\"resourceType\":\"Encounter\",\"status\":\"" status "\",\"class\":{\"system\":" \
    "\"http://terminology.hl7.org/CodeSystem/v3-ActCode\",\"code\":\"" cls "\"}}"

static void test_encounter_discharged(void **state)
{
    (void)state;
    assert_string_equal(fired("Encounter", ENC("in-progress", "IMP"), ENC("finished", "IMP")),
                        "encounter-discharged");
    assert_string_equal(fired("Encounter", NULL, ENC("finished", "EMER")), "encounter-discharged");
    assert_string_equal(fired("Encounter", NULL, ENC("finished", "OBSENC")),
                        "encounter-discharged");
    /* an office visit ending is not a discharge */
    assert_string_equal(fired("Encounter", ENC("in-progress", "AMB"), ENC("finished", "AMB")), "");
    assert_string_equal(fired("Encounter", ENC("in-progress", "IMP"), ENC("in-progress", "IMP")),
                        "");
}

static void test_encounter_admitted(void **state)
{
    (void)state;
    /* admitted: created in-progress, or a pre-admission that begins */
    assert_string_equal(fired("Encounter", NULL, ENC("in-progress", "IMP")), "encounter-admitted");
    assert_string_equal(fired("Encounter", ENC("planned", "PRENC"), ENC("in-progress", "IMP")),
                        "encounter-admitted");
    assert_string_equal(fired("Encounter", ENC("planned", "IMP"), ENC("in-progress", "OBSENC")),
                        "encounter-admitted");
    assert_string_equal(fired("Encounter", NULL, ENC("in-progress", "SS")), "encounter-admitted");
    /* an emergency or outpatient visit that becomes an inpatient stay */
    assert_string_equal(fired("Encounter", ENC("in-progress", "EMER"), ENC("in-progress", "IMP")),
                        "encounter-admitted");
    assert_string_equal(fired("Encounter", ENC("in-progress", "AMB"), ENC("in-progress", "ACUTE")),
                        "encounter-admitted");
    /* an update during the stay, a planned stay, an office visit: nothing */
    assert_string_equal(fired("Encounter", ENC("in-progress", "IMP"), ENC("in-progress", "IMP")),
                        "");
    assert_string_equal(fired("Encounter", NULL, ENC("planned", "IMP")), "");
    assert_string_equal(fired("Encounter", NULL, ENC("in-progress", "AMB")), "");
    /* a cancelled discharge resumes the stay: not a new admission */
    assert_string_equal(fired("Encounter", ENC("finished", "IMP"), ENC("in-progress", "IMP")), "");
    assert_string_equal(fired("Encounter", ENC("cancelled", "IMP"), ENC("in-progress", "IMP")),
                        "encounter-admitted");
    /* the same states on another type are nothing */
    assert_string_equal(fired("EpisodeOfCare", NULL, ENC("in-progress", "IMP")), "");
}

static void test_encounter_emergency(void **state)
{
    (void)state;
    assert_string_equal(fired("Encounter", NULL, ENC("in-progress", "EMER")),
                        "encounter-emergency");
    assert_string_equal(fired("Encounter", ENC("planned", "EMER"), ENC("in-progress", "EMER")),
                        "encounter-emergency");
    /* admitted from the emergency department: the admission, not a second ED visit */
    assert_string_equal(fired("Encounter", ENC("in-progress", "EMER"), ENC("in-progress", "IMP")),
                        "encounter-admitted");
    assert_string_equal(fired("Encounter", ENC("in-progress", "EMER"), ENC("in-progress", "EMER")),
                        "");
    assert_string_equal(fired("Encounter", ENC("finished", "EMER"), ENC("in-progress", "EMER")),
                        "");
    /* an ED visit that ends is a discharge */
    assert_string_equal(fired("Encounter", ENC("in-progress", "EMER"), ENC("finished", "EMER")),
                        "encounter-discharged");
    assert_string_equal(fired("Encounter", NULL, ENC("cancelled", "EMER")), "");
}

static void test_others(void **state)
{
    (void)state;
    assert_string_equal(
        fired("EpisodeOfCare", "{\"status\":\"planned\"}", "{\"status\":\"active\"}"),
        "patient-enrolled");
    assert_string_equal(
        fired("EpisodeOfCare", "{\"status\":\"active\"}", "{\"status\":\"active\"}"), "");
    assert_string_equal(fired("Appointment", "{\"status\":\"booked\"}", "{\"status\":\"noshow\"}"),
                        "appointment-noshow");
    /* the same status on another type is nothing */
    assert_string_equal(fired("Encounter", NULL, "{\"status\":\"active\"}"), "");
    assert_string_equal(fired("Patient", NULL, "{\"active\":true}"), "");
}

#define OBS(status, extra)                                                                      \
    "{\"resourceType\":\"Observation\",\"status\":\"" status "\",\"valueQuantity\":{\"value\":" \
    "182,\"unit\":\"mmHg\",\"code\":\"mm[Hg]\"}" extra "}"
#define HIGH                                                                                    \
    ",\"interpretation\":[{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-" \
    "ObservationInterpretation\",\"code\":\"H\"}]}]"
#define RANGE(high, code) \
    ",\"referenceRange\":[{\"high\":{\"value\":" high ",\"code\":\"" code "\"}}]"

static void test_observation_abnormal(void **state)
{
    (void)state;
    assert_string_equal(fired("Observation", NULL, OBS("final", HIGH)), "observation-abnormal");
    assert_string_equal(fired("Observation", NULL, OBS("final", RANGE("140", "mm[Hg]"))),
                        "observation-abnormal");
    /* within range, another unit, not yet final: nothing */
    assert_string_equal(fired("Observation", NULL, OBS("final", RANGE("190", "mm[Hg]"))), "");
    assert_string_equal(fired("Observation", NULL, OBS("final", RANGE("140", "kPa"))), "");
    assert_string_equal(fired("Observation", NULL, OBS("preliminary", HIGH)), "");
    assert_string_equal(fired("Observation", OBS("preliminary", HIGH), OBS("final", HIGH)),
                        "observation-abnormal");
    /* a correction of a result already abnormal does not fire again */
    assert_string_equal(fired("Observation", OBS("final", HIGH), OBS("corrected", HIGH)), "");
}

static void test_names(void **state)
{
    (void)state;
    for (int i = 0; i < CARE_TRIGGER__COUNT; i++)
        assert_int_equal(care_trigger_find(care_trigger_name((care_trigger_t)i)), i);
    assert_int_equal(care_trigger_find("patient-discharged"), -1);
    assert_int_equal(care_trigger_find(NULL), -1);
    assert_string_equal(care_trigger_name(CARE_TASK_OVERDUE), "task-overdue");
    assert_int_equal(care_trigger_find("encounter-admitted"), CARE_ENCOUNTER_ADMITTED);
    assert_int_equal(care_trigger_find("encounter-emergency"), CARE_ENCOUNTER_EMERGENCY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_task_completed),       cmocka_unit_test(test_referral_created),
        cmocka_unit_test(test_encounter_discharged), cmocka_unit_test(test_others),
        cmocka_unit_test(test_observation_abnormal), cmocka_unit_test(test_names),
        cmocka_unit_test(test_task_overdue),         cmocka_unit_test(test_encounter_admitted),
        cmocka_unit_test(test_encounter_emergency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
