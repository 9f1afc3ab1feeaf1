/*
 * triggers.h - the named events of the coordination engine that a change in the record makes
 * (a discharge, a new referral, a missed appointment, ...), worked out from the version before
 * and the version after a change. Pure: no I/O. Protocols (PlanDefinition.action.trigger,
 * type named-event) name them. task-overdue fires when the engine's due-time job marks a Task
 * overdue (extension EXT/overdue appears: overdue.h); scheduled comes from the scheduler
 * rather than from a change.
 */
#ifndef CONCERTO_CARE_TRIGGERS_H
#define CONCERTO_CARE_TRIGGERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    CARE_PATIENT_ENROLLED,     /* an EpisodeOfCare became active */
    CARE_REFERRAL_CREATED,     /* a referral ServiceRequest became active */
    CARE_APPOINTMENT_NOSHOW,   /* an Appointment became noshow */
    CARE_TASK_OVERDUE,         /* a Task was marked overdue (EXT/overdue appeared) */
    CARE_TASK_COMPLETED,       /* a Task became completed */
    CARE_ENCOUNTER_DISCHARGED, /* a hospital, observation or emergency Encounter finished */
    CARE_OBSERVATION_ABNORMAL, /* a final Observation became abnormal */
    CARE_SCHEDULED,            /* a protocol's recurring time came (scheduler) */
    CARE_ENCOUNTER_ADMITTED,   /* an inpatient, observation or short stay Encounter began */
    CARE_ENCOUNTER_EMERGENCY,  /* an emergency Encounter began (the patient registered in the ED) */
    CARE_TRIGGER__COUNT
} care_trigger_t;

/* "patient-enrolled", ... (the TriggerDefinition.name a protocol uses). */
const char *care_trigger_name(care_trigger_t trigger);
/* The trigger of name; -1 when none. */
int care_trigger_find(const char *name);

/* The SNOMED CT code of ServiceRequest.category for a referral (Patient referral). */
#define CARE_REFERRAL_CATEGORY "3457005"

/*
 * The triggers a change of one resource of type makes: before is the version it replaced
 * (NULL when created, or when the change was a delete of it), after the new one (NULL for a
 * delete). A trigger fires when its state is reached, not while it holds: a Task already
 * completed that is edited again fires nothing. A stay that goes from finished back to
 * in-progress (a cancelled discharge) is not an admission: encounter-admitted and
 * encounter-emergency do not fire for it. Writes up to max triggers into out and
 * returns how many.
 */
size_t care_triggers_of(const char *type, const json_t *before, const json_t *after,
                        care_trigger_t *out, size_t max);

/*
 * Whether an Observation is an abnormal result: its status is final, amended or corrected, and
 * an interpretation is one of HL7 v3 ObservationInterpretation's abnormal codes (A, AA, H, HH,
 * HU, L, LL, LU) or its valueQuantity is below a referenceRange's low or above its high (in
 * the same unit code, or with no code on either side).
 */
bool care_observation_abnormal(const json_t *observation);

#endif
