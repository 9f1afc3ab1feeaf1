/*
 * adherence.h - care plan adherence (docs/coordination.md, "Adherence"): of the planned
 * activities of a CarePlan whose due time has passed, how many were done on time.
 *
 * The judging is pure (a resource or an activity's detail, the time its current status began,
 * and now in; a due time, whether and when it was done, and an outcome out) so that it can be
 * tested alone; care_adherence_status_since reads the history it needs through the store.
 */
#ifndef CONCERTO_CARE_ADHERENCE_H
#define CONCERTO_CARE_ADHERENCE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"
#include "store/store.h"

typedef enum {
    ADHERENCE_ON_TIME,     /* done at or before its due time */
    ADHERENCE_LATE,        /* done after it */
    ADHERENCE_NOT_DONE,    /* due time passed, not done */
    ADHERENCE_NOT_YET_DUE, /* not done, due later */
    ADHERENCE_NO_DUE_TIME, /* nothing says when it is due: not counted */
} adherence_outcome_t;

/* "on-time", "late", "not-done", "not-yet-due", "no-due-time". */
const char *care_adherence_outcome_code(adherence_outcome_t outcome);

typedef struct {
    int64_t due_us; /* the last instant it is on time at; 0: no due time */
    bool done;
    int64_t done_us; /* when it was done; 0: not known (counts as on time when done) */
    adherence_outcome_t outcome;
} adherence_item_t;

/*
 * Judges a referenced resource at now_us: a Task (due restriction.period.end; done when
 * completed, at executionPeriod.end, else when it became completed), a ServiceRequest (due
 * occurrenceDateTime or occurrencePeriod.end; done when completed), an Appointment (due start;
 * done when arrived, checked-in or fulfilled, on time however late the patient came), a
 * MedicationRequest (due dispenseRequest.validityPeriod.start; done when active or completed).
 * status_since_us is when the resource's current status began (0: not known). false, with
 * *out untouched, for any other type.
 */
bool care_adherence_judge(const json_t *resource, int64_t status_since_us, int64_t now_us,
                          adherence_item_t *out);

/* Judges a CarePlan.activity.detail: due scheduledPeriod.end (scheduledTiming and
 * scheduledString are not a due time), done when its status is completed (when is not known). */
void care_adherence_judge_detail(const json_t *detail, int64_t now_us, adherence_item_t *out);

typedef struct {
    int64_t on_time, late, not_done, not_yet_due, no_due_time;
} adherence_counts_t;

/* Counts item's outcome into counts. */
void care_adherence_count(adherence_counts_t *counts, const adherence_item_t *item);

/* The adherence rate, on time / due (on time + late + not done), as a decimal with two
 * places ("0.67") in out; false when nothing is due yet. */
bool care_adherence_rate(const adherence_counts_t *counts, char *out, size_t size);

/*
 * When version `version` of type/id got the status it has (*out_us: the lastUpdated of the
 * earliest version of the run of versions with that status ending at `version`), reading at
 * most 100 versions back through conn. *out_us 0 when the history is not there to say.
 */
status_t care_adherence_status_since(store_conn_t *conn, const char *type, const char *id,
                                     int64_t version, const char *status, arena_t *arena,
                                     int64_t *out_us, err_t *err);

#endif
