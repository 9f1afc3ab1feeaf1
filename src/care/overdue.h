/*
 * overdue.h - the engine's handling of Tasks over time: a due-time job per open Task with a
 * due time (restriction.period.end) that marks it overdue when the time passes, then applies
 * the escalation steps of its ActivityDefinition (escalation.h) one by one at their times;
 * and the notifications (Communication, category notification) of a Task assigned to someone
 * and of an escalation step.
 *
 * Everything is worked out from the Task as it is, and each change is one version written
 * with If-Match, together with its Communications: a job or event handled again, or after a
 * crash, changes nothing more (docs/coordination.md, "Overdue tasks and escalation").
 */
#ifndef CONCERTO_CARE_OVERDUE_H
#define CONCERTO_CARE_OVERDUE_H

#include "base/arena.h"
#include "base/err.h"
#include "care/ext.h"
#include "repo/worker.h"
#include "store/store.h"

/* The job kind (key "Task/<id>") that runs at a Task's due time and at each escalation step's. */
#define CARE_JOB_TASK_DUE "task-due"

/* Registers care_on_task and care_task_due_run with the worker (from care_engine_register). */
void care_overdue_register(void);

/*
 * The handler of a Task's change event: notifies a person who became the Task's owner by
 * someone else's change (not their own claim), removes the overdue mark of a Task whose due
 * time moved past it, and schedules (or cancels) the Task's task-due job for its next time.
 */
status_t care_on_task(store_t *store, const store_event_t *event, void *arg, err_t *err);

/*
 * The run of a task-due job: when the Task is still open and its due time has come, marks it
 * overdue (extension EXT/overdue, a note) and applies the escalation steps whose time has
 * come (EXT/escalated counts them), in one version; then asks to run again at the next
 * step's time. A Task that is finished, gone or not yet due ends the job (or moves it).
 */
status_t care_task_due_run(store_t *store, const store_job_t *job, int64_t now_us, arena_t *arena,
                           repo_job_next_t *next, void *arg, err_t *err);

#endif
