/*
 * recurrence.h - the recurrence of a protocol's scheduled action (a periodic trigger's
 * timingTiming: every N hours, days, weeks, months or years) and its arithmetic on the
 * business calendar's local time: occurrence n of a recurrence anchored at an instant, and
 * which occurrence a time falls in. Pure: no I/O. docs/protocols.md, "Scheduled actions".
 */
#ifndef CONCERTO_CARE_RECURRENCE_H
#define CONCERTO_CARE_RECURRENCE_H

#include <jansson.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/calendar.h"
#include "base/err.h"

typedef enum {
    CARE_EVERY_HOURS,  /* exact elapsed time */
    CARE_EVERY_DAYS,   /* calendar days (weeks are 7): the same local wall time */
    CARE_EVERY_MONTHS, /* months (years are 12): the same local day and time, clamped to the
                          month's last day */
} care_every_t;

typedef struct {
    care_every_t unit;
    int64_t amount; /* at least 1 */
} care_recurrence_t;

/*
 * Parses a periodic trigger's timingTiming (where: its path, for errors, e.g.
 * "PlanDefinition.action[0].trigger[0].timingTiming"): repeat.period a whole number from 1,
 * repeat.periodUnit h, d, wk, mo or a (at most ten years' worth), repeat.frequency absent or
 * 1; nothing else in repeat or beside it. Errors: ERR_REQUIRED or ERR_RULE naming the
 * element (where.repeat.frequency, ...); paths are in arena.
 */
status_t care_recurrence_parse(const json_t *timing, const char *where, arena_t *arena,
                               care_recurrence_t *out, err_t *err);

/* Occurrence n (n >= 0; 0 is the anchor itself) of r anchored at anchor_us: anchor plus n
 * periods, days and months counted on cal's local time (calendar_add_days' rule where the
 * wall time does not exist or exists twice; a month's day past its end is its last day). */
int64_t care_recurrence_at(const calendar_t *cal, int64_t anchor_us, const care_recurrence_t *r,
                           int64_t n);

/* The number of the last occurrence at or before t_us (0 when t_us is before occurrence 1). */
int64_t care_recurrence_index(const calendar_t *cal, int64_t anchor_us, const care_recurrence_t *r,
                              int64_t t_us);

/* The first occurrence (n >= 1) at or after t_us. */
int64_t care_recurrence_next(const calendar_t *cal, int64_t anchor_us, const care_recurrence_t *r,
                             int64_t t_us);

/* An occurrence's key (in arena): its local date "2027-03-15" on cal, and for an hourly
 * recurrence its local date and time "2027-03-15T09:00". */
const char *care_recurrence_key(const calendar_t *cal, const care_recurrence_t *r, int64_t at_us,
                                arena_t *arena);

#endif
