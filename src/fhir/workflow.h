/*
 * workflow.h - the rules of work items that do not depend on storage: the R4 Task status codes
 * and which moves between them are allowed (DOMAIN.md, "Task"), and the order of Task
 * priorities. Static data, no state.
 */
#ifndef CONCERTO_FHIR_WORKFLOW_H
#define CONCERTO_FHIR_WORKFLOW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    TASK_DRAFT,
    TASK_REQUESTED,
    TASK_RECEIVED,
    TASK_ACCEPTED,
    TASK_REJECTED,
    TASK_READY,
    TASK_CANCELLED,
    TASK_IN_PROGRESS,
    TASK_ON_HOLD,
    TASK_FAILED,
    TASK_COMPLETED,
    TASK_ENTERED_IN_ERROR,
    TASK__COUNT
} task_status_t;

/* The status of code ("in-progress"); false when code is not one of R4's. */
bool task_status_parse(const char *code, task_status_t *out);
const char *task_status_code(task_status_t status);

/* Completed, cancelled, rejected, failed and entered-in-error: no move leads out of them. */
bool task_status_final(task_status_t status);

/* Whether a Task may go from `from` to `to`. Staying in a status is always allowed. */
bool task_move_allowed(task_status_t from, task_status_t to);

/*
 * The statuses `from` may move to, as text for an error message: "in-progress, cancelled or
 * entered-in-error", or "none (completed is final)". Writes at most size bytes with the NUL.
 */
void task_moves_text(task_status_t from, char *out, size_t size);

/* Task.priority (and the request priorities of R4): routine < urgent < asap < stat. The rank
 * of code from 0 (routine) to 3 (stat); -1 when code is none of them. */
int task_priority_rank(const char *code);

/*
 * Care teams (DOMAIN.md): a patient's care coordination team is their active CareTeam of
 * category LOINC LA28865-6 "Longitudinal care-coordination focused care team" (at most one
 * per patient); its primary coordinator is the one current participant with role SNOMED CT
 * 768820003 "Care coordinator".
 */
#define CARE_LOINC_SYSTEM      "http://loinc.org"
#define CARE_SNOMED_SYSTEM     "http://snomed.info/sct"
#define CARE_TEAM_COORDINATION "LA28865-6"
#define CARE_ROLE_COORDINATOR  "768820003"

/*
 * The current participants of team with the care coordinator role at now_us: returns how many,
 * and in *out_first the member reference ("Practitioner/1") of the first (NULL when none or it
 * has no reference). The primary coordinator when team is a coordination team.
 */
size_t fhir_care_team_coordinators(const json_t *team, int64_t now_us, const char **out_first);

/* Whether team is an active care coordination team (status active, category LA28865-6). */
bool fhir_care_team_coordinating(const json_t *team);

/* Whether a CodeableConcept (or an array of them) has a coding of system and code. */
bool fhir_concept_has(const json_t *concept, const char *system, const char *code);

/*
 * Whether a Period (may be NULL: always) holds at now_us: it has begun (no start, or the start's
 * earliest instant is not after now; a date alone begins at its first moment, read as UTC when
 * it has no zone) and not ended (no end, or now is before the end's latest instant: an end
 * of "2026-11-23" lasts through that day). A start or end that is not a dateTime counts as
 * absent.
 */
bool fhir_period_current(const json_t *period, int64_t now_us);

/* The same as bounds: the Period holds at now exactly when *out_from_us <= now and now <
 * *out_until_us (INT64_MIN and INT64_MAX for a start or end absent or not a dateTime). */
void fhir_period_bounds(const json_t *period, int64_t *out_from_us, int64_t *out_until_us);

/*
 * The due time of a Task (restriction.period.end) as an instant: a dateTime with a time of
 * day is that instant; a date alone (or a year and month) is due at the last microsecond it
 * lasts (read as UTC, like fhir_period_current). false when it has none or it is not a
 * dateTime. The Task is overdue once the clock reaches it.
 */
bool fhir_task_due(const json_t *task, int64_t *out_us);

/* The instants a date, dateTime or instant text (value, a JSON string) covers:
 * [*out_low, *out_high) in µs, a date alone read as UTC when it has no zone ("2026-11-23" is
 * that whole day). false when value is not one. */
bool fhir_date_bounds(const json_t *value, int64_t *out_low, int64_t *out_high);

/*
 * The member reference ("Practitioner/7") of team (a CareTeam) holding the role system|code
 * (system NULL: in any system) at now_us: the primary coordinator for SNOMED CT 768820003,
 * else the first participant with a coding of the role whose period holds. NULL when nobody
 * holds it (or team is NULL). Borrowed from team.
 */
const char *fhir_care_team_member_in_role(const json_t *team, const char *system, const char *code,
                                          int64_t now_us);

#endif
