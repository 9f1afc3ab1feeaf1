/*
 * readmissions.h - the 30-day readmission measure (docs/transitions.md, "Readmissions in the
 * metrics"): of the hospital stays discharged in a period, how many were followed by a
 * readmission within 30 days, as transitions.c flags them.
 *
 * The counting (care_readmissions_count) is pure: the stays, the readmission Flags and the
 * period in, the populations out, so that it is tested alone. care_readmissions_gather reads
 * those stays and Flags through repo searches as the caller searches.
 */
#ifndef CONCERTO_CARE_READMISSIONS_H
#define CONCERTO_CARE_READMISSIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/calendar.h"
#include "base/err.h"
#include "repo/access.h"
#include "store/store.h"

/* The canonical url of the measure a report is of. */
#define READMISSIONS_MEASURE_URL "http://concerto.dev/fhir/Measure/readmission-30-day"

/* The most stays or Flags one report reads (ERR_TOO_LARGE beyond). */
#define READMISSIONS_MAX_GATHERED 20000

/* A period of local dates, both inclusive, as instants in the organisation's zone. */
typedef struct {
    const char *start_date, *end_date; /* "YYYY-MM-DD" */
    int64_t start_us;                  /* the first instant of start_date */
    int64_t end_us;                    /* the first instant of the day after end_date */
    int64_t closes_us; /* end_us + 30 days: from then on no readmission can still come */
} readmissions_period_t;

/*
 * The period of periodStart and periodEnd (either may be NULL: missing) in calendar's zone.
 * ERR_INVALID naming the parameter (as where and in the message) when one is missing or not a
 * date YYYY-MM-DD, or periodEnd is before periodStart.
 */
status_t care_readmissions_period(const calendar_t *calendar, const char *start, const char *end,
                                  readmissions_period_t *out, err_t *err);

typedef struct {
    size_t initial;     /* finished stays discharged in the period */
    size_t excluded;    /* of those, discharged dead (exp) or against medical advice (aadvice) */
    size_t denominator; /* initial - excluded */
    size_t numerator;   /* of the denominator, stays a readmission Flag points to */
    const char **flags; /* the numerator's Flags ("Flag/id"), one per readmitted stay */
    size_t nflags;
} readmissions_counts_t;

/*
 * Counts stays (an array of Encounters) and flags (an array of Flags) for period into *out
 * (strings borrowed from flags or in arena). A stay counts when its class is a hospital stay
 * (class code IMP, ACUTE, NONAC, OBSENC, SS, as transitions.c reads it), its status finished and
 * its period.end in [start_us, end_us). A Flag points to a stay when it is a readmission Flag
 * (identifier urn:concerto:readmission), its status is not entered-in-error, and its extension
 * readmission refers to the stay; several Flags pointing to one stay count it once (the earliest by
 * period.start is named).
 */
void care_readmissions_count(const json_t *stays, const json_t *flags,
                             const readmissions_period_t *period, const calendar_t *calendar,
                             arena_t *arena, readmissions_counts_t *out);

/*
 * The stays and readmission Flags the caller may see: Encounters of the stay classes with
 * status finished whose date overlaps the period, and readmission Flags not entered-in-error,
 * every page, as new arrays released with arena. Errors: ERR_FORBIDDEN when the caller's
 * scopes do not allow searching Encounter or Flag, ERR_TOO_LARGE past
 * READMISSIONS_MAX_GATHERED of either, storage errors.
 */
status_t care_readmissions_gather(store_conn_t *conn, const repo_caller_t *caller,
                                  const readmissions_period_t *period, int64_t now_us,
                                  const char *base, arena_t *arena, json_t **out_stays,
                                  json_t **out_flags, err_t *err);

#endif
