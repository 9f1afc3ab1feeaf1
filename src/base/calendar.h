/*
 * calendar.h - the organisation's business calendar: a time zone, the working days of the
 * week and the holidays (dates), and the deadline arithmetic of the coordination engine:
 * "+ 4 hours", "+ 7 calendar days", "+ 2 business days" from an event's instant.
 *
 * A calendar_t is immutable once made, so threads share one freely. Instants are microseconds
 * since the Unix epoch (clock.h). docs/internals/time.md states the conventions exactly.
 *
 * Business days are the working days (Monday to Friday by default) that are not holidays.
 * Holidays are data: the US federal holidays (observed dates) of the years in
 * data/holidays/us-federal.tsv are built in as "us-federal"; any other list is a file of lines
 * "YYYY-MM-DD<TAB>name". Outside the years a list covers, only the working days count.
 */
#ifndef CONCERTO_BASE_CALENDAR_H
#define CONCERTO_BASE_CALENDAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/tz.h"

typedef struct calendar calendar_t;

/* Working days as bits: 1 << 0 Sunday ... 1 << 6 Saturday (tz_weekday's numbers). */
#define CALENDAR_MON_FRI 0x3e

/* The calendar of a server that configures none: the organisation's time zone is New York's,
 * Monday to Friday, US federal holidays. */
#define CALENDAR_DEFAULT_ZONE         "America/New_York"
#define CALENDAR_DEFAULT_WORKING_DAYS "Mon-Fri"
#define CALENDAR_DEFAULT_HOLIDAYS     "us-federal"

/*
 * A new calendar of the time zone zone (tz_load), the working days working_days (as
 * calendar_parse_working_days) and the holidays of holidays: "us-federal" (built in), "none",
 * or the path of a file of lines "YYYY-MM-DD<TAB>name" (blank lines and lines starting with
 * '#' are skipped). *out is new: free it with calendar_free. Errors: ERR_INVALID naming the
 * setting that is wrong (an unknown zone, a bad day list, an unreadable file, a line of the
 * file that is not a date and a name).
 */
status_t calendar_new(const char *zone, const char *working_days, const char *holidays,
                      calendar_t **out, err_t *err);
void calendar_free(calendar_t *cal);

/* "Mon-Fri", "Sun-Thu", "Mon,Tue,Thu", "Mon-Wed,Fri" (three-letter English names, any case;
 * a range may wrap, "Fri-Mon") as working-day bits. Errors: ERR_INVALID. */
status_t calendar_parse_working_days(const char *spec, unsigned *out_days, err_t *err);

/* The calendar's zone. Borrowed. */
const tz_t *calendar_zone(const calendar_t *cal);
/* The working-day bits. */
unsigned calendar_working_days(const calendar_t *cal);
/* A one-line description for logs: "America/New_York, Mon-Fri, us-federal holidays
 * 2020-2040". Borrowed. */
const char *calendar_describe(const calendar_t *cal);
/* The first and last year of the holidays (0 and 0 when there are none). */
void calendar_holiday_years(const calendar_t *cal, int *out_first, int *out_last);

/* The name of the holiday on a local date, or NULL. Borrowed. */
const char *calendar_holiday(const calendar_t *cal, int year, int month, int day);
/* Whether a local date is a working day and not a holiday. */
bool calendar_is_business_day(const calendar_t *cal, int year, int month, int day);

/* How a deadline is counted. */
typedef enum {
    CALENDAR_MINUTES,       /* exact elapsed time */
    CALENDAR_HOURS,         /* exact elapsed time: 4 hours is 4 hours even across a DST change */
    CALENDAR_DAYS,          /* calendar days: the same local wall time N days later */
    CALENDAR_BUSINESS_DAYS, /* the end of the Nth business day after the local date */
} calendar_unit_t;

typedef struct {
    calendar_unit_t unit;
    int64_t amount; /* 0 to CALENDAR_MAX_DAYS days' worth */
} calendar_duration_t;

/* The longest duration accepted (ten years and a bit, in days; in hours and minutes the same
 * span). */
#define CALENDAR_MAX_DAYS 3660

/*
 * Parses a duration of a protocol definition or of a test clock's advance, text[0..len):
 *   "N minutes", "N hours", "N calendar days" (also "N days"), "N business days" (singular
 *   forms too: "1 business day"), or ISO 8601 with one component: "PTnM", "PTnH", "PnD",
 *   "PnW" (n weeks: 7n calendar days).
 * N is a whole number from 0. Errors: ERR_VALUE quoting the text.
 */
status_t calendar_duration_parse(const char *text, size_t len, calendar_duration_t *out,
                                 err_t *err);

/*
 * The deadline duration after the instant from_us:
 * - minutes and hours: from_us plus the exact time;
 * - calendar days: the same local wall time (and sub-second part) N days later in the zone;
 *   where that time does not exist or exists twice on the day reached, tz_from_local's rule
 *   decides (moved forward by the gap; the earlier of two);
 * - business days: the end of the Nth business day after the local date of from_us (what
 *   "contact within 2 business days after discharge" means): the last microsecond before
 *   the following local midnight, 23:59:59.999999. A Friday event + 2 is the end of Tuesday;
 *   an event on a Saturday counts Monday as the first. N = 0 is the end of the event's own
 *   date when it is a business day, else of the next business day.
 * A task due at the result is overdue once the clock is past it.
 */
int64_t calendar_add(const calendar_t *cal, int64_t from_us, const calendar_duration_t *duration);
int64_t calendar_add_days(const calendar_t *cal, int64_t from_us, int64_t days);
int64_t calendar_add_business_days(const calendar_t *cal, int64_t from_us, int64_t days);

/*
 * The process's calendar (the organisation's): the one set with calendar_set_default, or
 * else, on first use, CALENDAR_DEFAULT_ZONE, _WORKING_DAYS and _HOLIDAYS (the process dies
 * when the system has no zone file for it: tzdata is a dependency). Thread-safe.
 */
const calendar_t *calendar_default(void);
/* Makes cal (taken; it lives as long as the process) the process's calendar. Call it before
 * starting the threads that use calendar_default. */
void calendar_set_default(calendar_t *cal);

#endif
