/*
 * tz.h - time zones from the system's tz database (TZif files, RFC 8536, under
 * /usr/share/zoneinfo): the UTC offset at an instant, an instant as local civil time, and
 * local civil time as an instant.
 *
 * A tz_t is immutable once loaded, so any number of threads may use one at the same time; the
 * process's TZ variable and localtime() are never involved. Instants are seconds since the
 * Unix epoch (UTC, no leap seconds); past the last transition of the file's table the
 * POSIX TZ rule of its footer decides (so 2100 follows today's daylight-saving rule).
 */
#ifndef CONCERTO_BASE_TZ_H
#define CONCERTO_BASE_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/* Where tz_load looks for zone files. */
#define TZ_DIR "/usr/share/zoneinfo"

typedef struct tz tz_t;

/* A local (wall-clock) date and time, proleptic Gregorian. */
typedef struct {
    int year, month, day;     /* month 1-12, day 1-31 */
    int hour, minute, second; /* 0-23, 0-59, 0-59 */
} tz_civil_t;

/* How a local time maps to instants (tz_from_local). */
typedef enum {
    TZ_LOCAL_UNIQUE,  /* one instant */
    TZ_LOCAL_GAP,     /* none: the clocks jumped over it (spring forward) */
    TZ_LOCAL_OVERLAP, /* two: the clocks went back over it (fall back) */
} tz_local_kind_t;

/*
 * Loads the zone name ("America/New_York", "UTC") from TZ_DIR. *out is new: free it with
 * tz_free. Errors: ERR_INVALID when the name is not a zone name (empty, absolute, with "..")
 * or no such zone file exists, ERR_VALUE when the file is not a valid TZif file.
 */
status_t tz_load(const char *name, tz_t **out, err_t *err);
/* As tz_load, from the zone files under dir. */
status_t tz_load_dir(const char *dir, const char *name, tz_t **out, err_t *err);
/*
 * Parses the TZif data data[0..len) of the zone called name (for messages and tz_name).
 * Version 1 files use their 32-bit table; version 2 and later their 64-bit table and footer.
 * Files with leap-second records ("right/" zones) are refused. *out is new. Errors: ERR_VALUE
 * with what is wrong.
 */
status_t tz_parse(const char *name, const void *data, size_t len, tz_t **out, err_t *err);
/* The zone UTC (offset 0 at every instant), without reading a file. */
tz_t *tz_new_utc(void);
void tz_free(tz_t *tz);

/* The zone's name as it was loaded. Borrowed from tz. */
const char *tz_name(const tz_t *tz);

/* The offset of local time from UTC at instant t, in seconds (east positive: -18000 for
 * New York in winter). */
int32_t tz_offset_at(const tz_t *tz, int64_t t);
/* Whether daylight-saving time is in force at t. */
bool tz_is_dst_at(const tz_t *tz, int64_t t);

/* Instant t as local civil time in tz; *out_offset (may be NULL) gets the offset in force. */
void tz_to_local(const tz_t *tz, int64_t t, tz_civil_t *out, int32_t *out_offset);

/*
 * The instant of local civil time local in tz. Fields out of range are normalized first
 * (day 32 is the first of the next month; hour 24 the next day's midnight). Where the local
 * time does not exist (a gap), it is moved forward by the length of the gap: 02:30 on the
 * day New York springs forward is 03:30 EDT (the offset in force before the gap is used).
 * Where it exists twice (an overlap), the earlier instant is chosen: 01:30 on the day New
 * York falls back is 01:30 EDT. *out_kind (may be NULL) says which case it was.
 */
int64_t tz_from_local(const tz_t *tz, const tz_civil_t *local, tz_local_kind_t *out_kind);

/* ---- civil dates (no zone) ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (month and day may be out of range and
 * are carried over). */
int64_t tz_days_from_civil(int year, int month, int day);
/* The date of a day number from tz_days_from_civil. */
void tz_civil_from_days(int64_t days, int *out_year, int *out_month, int *out_day);
/* Day of the week of a day number: 0 Sunday ... 6 Saturday. */
int tz_weekday(int64_t days);
/* Whether year-month-day is a real date. */
bool tz_valid_date(int year, int month, int day);

#endif
