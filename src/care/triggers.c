/*
 * triggers.c - from a change to the named events of the engine: each trigger is a state of a
 * resource ("a referral that is active"); it fires when the new version is in that state and
 * the version before was not.
 */
#include "care/triggers.h"

#include <string.h>

#include "base/jv.h"
#include "care/escalation.h"
#include "fhir/workflow.h"

static const char *const NAMES[CARE_TRIGGER__COUNT] = {
    [CARE_PATIENT_ENROLLED] = "patient-enrolled",
    [CARE_REFERRAL_CREATED] = "referral-created",
    [CARE_APPOINTMENT_NOSHOW] = "appointment-noshow",
    [CARE_TASK_OVERDUE] = "task-overdue",
    [CARE_TASK_COMPLETED] = "task-completed",
    [CARE_ENCOUNTER_DISCHARGED] = "encounter-discharged",
    [CARE_ENCOUNTER_ADMITTED] = "encounter-admitted",
    [CARE_ENCOUNTER_EMERGENCY] = "encounter-emergency",
    [CARE_OBSERVATION_ABNORMAL] = "observation-abnormal",
    [CARE_SCHEDULED] = "scheduled",
};

const char *care_trigger_name(care_trigger_t trigger)
{
    return trigger < CARE_TRIGGER__COUNT ? NAMES[trigger] : "?";
}

int care_trigger_find(const char *name)
{
    for (int i = 0; i < CARE_TRIGGER__COUNT; i++)
        if (name && strcmp(name, NAMES[i]) == 0)
            return i;
    return -1;
}

static bool status_is(const json_t *r, const char *status)
{
    const char *s = json_string_value(json_object_get(r, "status"));
    return s && strcmp(s, status) == 0;
}

static const char *const ABNORMAL[] = {"A", "AA", "H", "HH", "HU", "L", "LL", "LU"};
#define INTERPRETATION "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"

/* The unit code of a Quantity ("" when none). */
static const char *unit_of(const json_t *quantity)
{
    const char *code = json_string_value(json_object_get(quantity, "code"));
    return code ? code : "";
}

static bool outside_range(const json_t *obs)
{
    const json_t *q = json_object_get(obs, "valueQuantity");
    const json_t *value = json_object_get(q, "value");
    if (!jv_is_number(value))
        return false;
    double v = jv_number_value(value);
    size_t i;
    const json_t *range;
    json_array_foreach(json_object_get(obs, "referenceRange"), i, range)
    {
        const json_t *low = json_object_get(range, "low"), *high = json_object_get(range, "high");
        const json_t *lv = json_object_get(low, "value"), *hv = json_object_get(high, "value");
        if (jv_is_number(lv) && strcmp(unit_of(low), unit_of(q)) == 0 && v < jv_number_value(lv))
            return true;
        if (jv_is_number(hv) && strcmp(unit_of(high), unit_of(q)) == 0 && v > jv_number_value(hv))
            return true;
    }
    return false;
}

bool care_observation_abnormal(const json_t *obs)
{
    if (!obs ||
        !(status_is(obs, "final") || status_is(obs, "amended") || status_is(obs, "corrected")))
        return false;
    for (size_t i = 0; i < sizeof(ABNORMAL) / sizeof(ABNORMAL[0]); i++)
        if (fhir_concept_has(json_object_get(obs, "interpretation"), INTERPRETATION, ABNORMAL[i]))
            return true;
    return outside_range(obs);
}

/* Whether an Encounter's class code is one of classes[0..n). */
static bool class_in(const json_t *enc, const char *const *classes, size_t n)
{
    const char *code = json_string_value(json_object_get(json_object_get(enc, "class"), "code"));
    for (size_t i = 0; code && i < n; i++)
        if (strcmp(code, classes[i]) == 0)
            return true;
    return false;
}

/* Encounter classes of a hospital stay: inpatient (and its acute and non-acute kinds),
 * observation and short stay. */
static const char *const STAY[] = {"IMP", "ACUTE", "NONAC", "OBSENC", "SS"};
#define NSTAY (sizeof(STAY) / sizeof(STAY[0]))

/* A stay or visit after which the patient goes home: a hospital stay or an emergency visit,
 * finished. */
static bool discharged(const json_t *enc)
{
    static const char *const EMERGENCY[] = {"EMER"};
    return enc && status_is(enc, "finished") &&
           (class_in(enc, STAY, NSTAY) || class_in(enc, EMERGENCY, 1));
}

/* A hospital stay under way. */
static bool admitted(const json_t *enc)
{
    return enc && status_is(enc, "in-progress") && class_in(enc, STAY, NSTAY);
}

/* An emergency visit under way. */
static bool in_emergency(const json_t *enc)
{
    static const char *const EMERGENCY[] = {"EMER"};
    return enc && status_is(enc, "in-progress") && class_in(enc, EMERGENCY, 1);
}

static bool referral(const json_t *sr)
{
    return sr && status_is(sr, "active") &&
           fhir_concept_has(json_object_get(sr, "category"), CARE_SNOMED_SYSTEM,
                            CARE_REFERRAL_CATEGORY);
}

/* The engine's due-time job marks an open Task that passed its due time with this extension
 * (care/escalation.h, CARE_EXT_OVERDUE), so task-overdue fires from the ordinary change. */
static bool overdue_marked(const json_t *task)
{
    return care_extension_value(task, CARE_EXT_OVERDUE, "valueDateTime") != NULL;
}

/* Whether r is in the state of trigger t (for a resource of type). */
static bool in_state(care_trigger_t t, const char *type, const json_t *r)
{
    if (!r)
        return false;
    switch (t) {
    case CARE_PATIENT_ENROLLED: return strcmp(type, "EpisodeOfCare") == 0 && status_is(r, "active");
    case CARE_REFERRAL_CREATED: return strcmp(type, "ServiceRequest") == 0 && referral(r);
    case CARE_APPOINTMENT_NOSHOW: return strcmp(type, "Appointment") == 0 && status_is(r, "noshow");
    case CARE_TASK_COMPLETED: return strcmp(type, "Task") == 0 && status_is(r, "completed");
    case CARE_ENCOUNTER_DISCHARGED: return strcmp(type, "Encounter") == 0 && discharged(r);
    case CARE_ENCOUNTER_ADMITTED: return strcmp(type, "Encounter") == 0 && admitted(r);
    case CARE_ENCOUNTER_EMERGENCY: return strcmp(type, "Encounter") == 0 && in_emergency(r);
    case CARE_OBSERVATION_ABNORMAL:
        return strcmp(type, "Observation") == 0 && care_observation_abnormal(r);
    case CARE_TASK_OVERDUE: return strcmp(type, "Task") == 0 && overdue_marked(r);
    case CARE_SCHEDULED:
    case CARE_TRIGGER__COUNT: return false;
    }
    return false;
}

size_t care_triggers_of(const char *type, const json_t *before, const json_t *after,
                        care_trigger_t *out, size_t max)
{
    size_t n = 0;
    /* a discharge cancelled (finished back to in-progress) resumes the stay: no new start */
    bool reopened = strcmp(type, "Encounter") == 0 && before && status_is(before, "finished");
    for (int t = 0; t < CARE_TRIGGER__COUNT && n < max; t++) {
        if (reopened && (t == CARE_ENCOUNTER_ADMITTED || t == CARE_ENCOUNTER_EMERGENCY))
            continue;
        if (in_state((care_trigger_t)t, type, after) && !in_state((care_trigger_t)t, type, before))
            out[n++] = (care_trigger_t)t;
    }
    return n;
}
