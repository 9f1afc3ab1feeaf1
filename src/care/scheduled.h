/*
 * scheduled.h - the scheduler of protocols' scheduled actions (a periodic trigger named
 * "scheduled"): each recurs per enrolled patient (one with an active EpisodeOfCare), anchored
 * at their enrolment, as a job in the work queue per plan, action and patient that makes
 * each occurrence (care_protocols_fire_occurrence) and asks for the next. A patient's
 * enrolment schedules the jobs of every active protocol's scheduled actions; a protocol with
 * scheduled actions written active schedules every enrolled patient, page by page, in a job
 * of its own. Each run checks everything again (the plan still active with the action, the
 * patient still enrolled), so ending an enrolment or retiring a plan stops the recurrence at
 * its next time. docs/protocols.md, "Scheduled actions".
 */
#ifndef CONCERTO_CARE_SCHEDULED_H
#define CONCERTO_CARE_SCHEDULED_H

#include "base/arena.h"
#include "base/err.h"
#include "repo/worker.h"
#include "store/store.h"

/* One scheduled action for one patient: key "<plan id>/<action id>/Patient/<id>", payload
 * {"episode": "<EpisodeOfCare id>", "anchor": <µs>, "since": <µs>}: the enrolment, the
 * instant occurrences count from, and the time before which no occurrence is made. */
#define CARE_JOB_OCCURRENCE "protocol-occurrence"
/* Scheduling every enrolled patient for a protocol: key "<plan id>", payload
 * {"after": <the last EpisodeOfCare's scan key done>, "since": <µs>}. */
#define CARE_JOB_ENROLMENT "protocol-enrolment"

/* Registers the handlers of EpisodeOfCare and PlanDefinition changes and of both job kinds
 * (from care_engine_register). */
void care_scheduled_register(void);

/* The change handler of EpisodeOfCare: on patient-enrolled, schedules the occurrence job of
 * each scheduled action of each active protocol for the patient, the first one period after
 * the enrolment (period.start, else the event's time). */
status_t care_on_episode(store_t *store, const store_event_t *event, void *arg, err_t *err);

/* The change handler of PlanDefinition: an active protocol with a scheduled action schedules
 * its protocol-enrolment job now. */
status_t care_on_plan(store_t *store, const store_event_t *event, void *arg, err_t *err);

/* The run of a protocol-occurrence job: makes the latest occurrence that has come (when it is
 * not before the job's "since") and asks to run at the next; ends when the plan is no longer
 * active or no longer has the scheduled action, or the patient is no longer enrolled. */
status_t care_occurrence_run(store_t *store, const store_job_t *job, int64_t now_us, arena_t *arena,
                             repo_job_next_t *next, void *arg, err_t *err);

/* The run of a protocol-enrolment job: schedules the occurrence jobs of up to 200 active
 * EpisodeOfCare, and continues with the next page at once. */
status_t care_enrolment_run(store_t *store, const store_job_t *job, int64_t now_us, arena_t *arena,
                            repo_job_next_t *next, void *arg, err_t *err);

#endif
