/*
 * calendar.c - business days and deadlines (calendar.h).
 *
 * Holidays are kept as sorted, distinct day numbers (tz_days_from_civil) beside their names,
 * so a lookup is a binary search. The built-in US federal list is data/holidays/us-federal.tsv,
 * turned into a C string at build time ($(BUILD)/gen/us_federal_holidays.h, see the Makefile)
 * and parsed like any holidays file.
 */
#include "base/calendar.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/mem.h"
#include "us_federal_holidays.h"

#define DAY_US    (86400LL * 1000000)
#define HOUR_US   (3600LL * 1000000)
#define MINUTE_US (60LL * 1000000)
/* A holidays file longer than this is not a list of holidays. */
#define MAX_HOLIDAYS 100000

struct calendar {
    tz_t *zone;
    unsigned working;  /* 1 << weekday */
    int64_t *holidays; /* sorted, distinct day numbers */
    char **names;      /* of each holiday */
    size_t nholidays, cap;
    char *description;
    calendar_t *retired; /* an earlier default, kept reachable (calendar_set_default) */
};

static const char *const day_names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

static int day_of_name(const char *s, size_t len)
{
    if (len != 3)
        return -1;
    for (int i = 0; i < 7; i++)
        if (strncasecmp(s, day_names[i], 3) == 0)
            return i;
    return -1;
}

status_t calendar_parse_working_days(const char *spec, unsigned *out_days, err_t *err)
{
    unsigned days = 0;
    const char *p = spec;
    while (*p) {
        const char *item = p;
        while (*p && *p != ',')
            p++;
        const char *item_end = p;
        if (*p == ',')
            p++;
        while (item < item_end && isspace((unsigned char)*item))
            item++;
        while (item_end > item && isspace((unsigned char)item_end[-1]))
            item_end--;
        const char *dash = memchr(item, '-', (size_t)(item_end - item));
        int first = day_of_name(item, (size_t)((dash ? dash : item_end) - item));
        int last = dash ? day_of_name(dash + 1, (size_t)(item_end - dash - 1)) : first;
        if (first < 0 || last < 0)
            return err_set(err, ERR_INVALID, NULL,
                           "working days \"%s\": \"%.*s\" is not a day (Mon, Tue, Wed, Thu, Fri, "
                           "Sat, Sun) or a range of days (Mon-Fri)",
                           spec, (int)(item_end - item), item);
        for (int d = first;; d = (d + 1) % 7) {
            days |= 1u << d;
            if (d == last)
                break;
        }
    }
    if (!days)
        return err_set(err, ERR_INVALID, NULL,
                       "working days \"%s\": name at least one day, such as Mon-Fri", spec);
    *out_days = days;
    return ERR_OK;
}

/* "Mon-Fri" or "Mon,Wed,Fri" for the description. */
static void describe_days(unsigned days, char *out, size_t size)
{
    static const int order[] = {1, 2, 3, 4, 5, 6, 0}; /* Monday first */
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < 7;) {
        if (!(days & (1u << order[i]))) {
            i++;
            continue;
        }
        int j = i;
        while (j + 1 < 7 && (days & (1u << order[j + 1])))
            j++;
        n += (size_t)snprintf(out + n, size - n, "%s%s", n ? "," : "", day_names[order[i]]);
        if (j > i)
            n += (size_t)snprintf(out + n, size - n, "%s%s", j > i + 1 ? "-" : ",",
                                  day_names[order[j]]);
        i = j + 1;
    }
}

/* Binary search: the index of day, or of where it would go. */
static size_t holiday_index(const calendar_t *cal, int64_t day)
{
    size_t lo = 0, hi = cal->nholidays;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cal->holidays[mid] < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void add_holiday(calendar_t *cal, int64_t day, const char *name, size_t name_len)
{
    size_t i = holiday_index(cal, day);
    if (i < cal->nholidays && cal->holidays[i] == day)
        return; /* a date listed twice keeps its first name */
    if (cal->nholidays == cal->cap) {
        cal->cap = cal->cap ? cal->cap * 2 : 64;
        cal->holidays = xrealloc(cal->holidays, cal->cap * sizeof(*cal->holidays));
        cal->names = xrealloc(cal->names, cal->cap * sizeof(*cal->names));
    }
    memmove(cal->holidays + i + 1, cal->holidays + i, (cal->nholidays - i) * sizeof(int64_t));
    memmove(cal->names + i + 1, cal->names + i, (cal->nholidays - i) * sizeof(char *));
    cal->holidays[i] = day;
    cal->names[i] = xstrndup(name, name_len);
    cal->nholidays++;
}

static bool parse_date(const char *s, size_t len, int *y, int *m, int *d)
{
    if (len != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (size_t i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
            return false;
    *y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    *m = (s[5] - '0') * 10 + (s[6] - '0');
    *d = (s[8] - '0') * 10 + (s[9] - '0');
    return tz_valid_date(*y, *m, *d);
}

/* Lines "YYYY-MM-DD<TAB or spaces>name" of text[0..len), from source (for messages). */
static status_t parse_holidays(calendar_t *cal, const char *source, const char *text, size_t len,
                               err_t *err)
{
    const char *p = text, *end = text + len;
    int lineno = 0;
    while (p < end) {
        const char *line = p;
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        p = eol < end ? eol + 1 : end;
        lineno++;
        const char *line_end = eol;
        if (line_end > line && line_end[-1] == '\r')
            line_end--;
        while (line < line_end && (*line == ' ' || *line == '\t'))
            line++;
        if (line == line_end || *line == '#')
            continue;
        const char *date_end = line;
        while (date_end < line_end && *date_end != '\t' && *date_end != ' ')
            date_end++;
        const char *name = date_end;
        while (name < line_end && (*name == '\t' || *name == ' '))
            name++;
        const char *name_end = line_end;
        while (name_end > name && isspace((unsigned char)name_end[-1]))
            name_end--;
        int y, m, d;
        if (!parse_date(line, (size_t)(date_end - line), &y, &m, &d))
            return err_set(err, ERR_INVALID, NULL,
                           "holidays %s line %d: \"%.*s\" is not a date (YYYY-MM-DD)", source,
                           lineno, (int)(date_end - line), line);
        if (name == name_end)
            return err_set(err, ERR_INVALID, NULL,
                           "holidays %s line %d: the date needs a name after a tab", source,
                           lineno);
        for (const char *c = name; c < name_end; c++)
            if ((unsigned char)*c < 0x20)
                return err_set(err, ERR_INVALID, NULL,
                               "holidays %s line %d: the name holds a control character", source,
                               lineno);
        if (cal->nholidays >= MAX_HOLIDAYS)
            return err_set(err, ERR_INVALID, NULL, "holidays %s: more than %d dates", source,
                           MAX_HOLIDAYS);
        add_holiday(cal, tz_days_from_civil(y, m, d), name, (size_t)(name_end - name));
    }
    return ERR_OK;
}

static status_t load_holidays(calendar_t *cal, const char *holidays, err_t *err)
{
    if (strcmp(holidays, "none") == 0 || !*holidays)
        return ERR_OK;
    if (strcmp(holidays, "us-federal") == 0)
        return parse_holidays(cal, "us-federal", calendar__us_federal_tsv,
                              sizeof(calendar__us_federal_tsv) - 1, err);
    FILE *f = fopen(holidays, "rb");
    if (!f)
        return err_set(err, ERR_INVALID, NULL,
                       "could not open the holidays file \"%s\" (or name us-federal or none)",
                       holidays);
    char *text = NULL;
    size_t len = 0, cap = 0;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (len + n > (size_t)16 * 1024 * 1024) {
            fclose(f);
            free(text);
            return err_set(err, ERR_INVALID, NULL, "the holidays file \"%s\" is over 16 MiB",
                           holidays);
        }
        if (len + n > cap) {
            cap = (len + n) * 2;
            text = xrealloc(text, cap);
        }
        memcpy(text + len, chunk, n);
        len += n;
    }
    bool failed = ferror(f) != 0;
    fclose(f);
    status_t rc;
    if (failed) {
        rc = err_set(err, ERR_INVALID, NULL, "could not read the holidays file \"%s\"", holidays);
    } else {
        char *source = xasprintf("\"%s\"", holidays);
        rc = parse_holidays(cal, source, text ? text : "", len, err);
        free(source);
    }
    free(text);
    return rc;
}

status_t calendar_new(const char *zone, const char *working_days, const char *holidays,
                      calendar_t **out, err_t *err)
{
    *out = NULL;
    calendar_t *cal = xcalloc(1, sizeof(*cal));
    status_t rc = calendar_parse_working_days(working_days, &cal->working, err);
    if (!rc)
        rc = tz_load(zone, &cal->zone, err);
    if (!rc)
        rc = load_holidays(cal, holidays, err);
    if (rc) {
        calendar_free(cal);
        return rc;
    }
    char days[64];
    describe_days(cal->working, days, sizeof(days));
    int first, last;
    calendar_holiday_years(cal, &first, &last);
    if (cal->nholidays)
        cal->description = xasprintf("%s, %s, holidays %s (%d-%d)", zone, days,
                                     strchr(holidays, '/') ? "from a file" : holidays, first, last);
    else
        cal->description = xasprintf("%s, %s, no holidays", zone, days);
    *out = cal;
    return ERR_OK;
}

void calendar_free(calendar_t *cal)
{
    while (cal) {
        calendar_t *next = cal->retired;
        tz_free(cal->zone);
        for (size_t i = 0; i < cal->nholidays; i++)
            free(cal->names[i]);
        free(cal->names);
        free(cal->holidays);
        free(cal->description);
        free(cal);
        cal = next;
    }
}

const tz_t *calendar_zone(const calendar_t *cal)
{
    return cal->zone;
}

unsigned calendar_working_days(const calendar_t *cal)
{
    return cal->working;
}

const char *calendar_describe(const calendar_t *cal)
{
    return cal->description;
}

void calendar_holiday_years(const calendar_t *cal, int *out_first, int *out_last)
{
    *out_first = *out_last = 0;
    if (!cal->nholidays)
        return;
    int m, d;
    tz_civil_from_days(cal->holidays[0], out_first, &m, &d);
    tz_civil_from_days(cal->holidays[cal->nholidays - 1], out_last, &m, &d);
}

static const char *holiday_of_day(const calendar_t *cal, int64_t day)
{
    size_t i = holiday_index(cal, day);
    return i < cal->nholidays && cal->holidays[i] == day ? cal->names[i] : NULL;
}

static bool business_day(const calendar_t *cal, int64_t day)
{
    return (cal->working & (1u << tz_weekday(day))) && !holiday_of_day(cal, day);
}

const char *calendar_holiday(const calendar_t *cal, int year, int month, int day)
{
    return holiday_of_day(cal, tz_days_from_civil(year, month, day));
}

bool calendar_is_business_day(const calendar_t *cal, int year, int month, int day)
{
    return business_day(cal, tz_days_from_civil(year, month, day));
}

/* ---- durations and deadlines ---------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static bool word_is(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

status_t calendar_duration_parse(const char *text, size_t len, calendar_duration_t *out, err_t *err)
{
    const char *p = text, *end = text + len;
    while (p < end && *p == ' ')
        p++;
    while (end > p && end[-1] == ' ')
        end--;
    calendar_duration_t d = {0};
    bool iso = p < end && *p == 'P';
    bool time_part = false;
    if (iso) {
        p++;
        if (p < end && *p == 'T') {
            time_part = true;
            p++;
        }
    }
    const char *digits = p;
    int64_t n = 0;
    while (p < end && *p >= '0' && *p <= '9' && n <= 100000000)
        n = n * 10 + (*p++ - '0');
    if (p == digits || (p < end && *p >= '0' && *p <= '9'))
        goto bad;
    if (iso) {
        if (end - p != 1)
            goto bad;
        if (time_part && *p == 'H')
            d.unit = CALENDAR_HOURS;
        else if (time_part && *p == 'M')
            d.unit = CALENDAR_MINUTES;
        else if (!time_part && *p == 'D')
            d.unit = CALENDAR_DAYS;
        else if (!time_part && *p == 'W') {
            d.unit = CALENDAR_DAYS;
            n *= 7;
        } else
            goto bad;
    } else {
        if (p == end || *p != ' ')
            goto bad;
        while (p < end && *p == ' ')
            p++;
        const char *unit = p;
        size_t unit_len = (size_t)(end - p);
        /* one space between "calendar"/"business" and "day(s)" */
        if (word_is(unit, unit_len, "minute") || word_is(unit, unit_len, "minutes"))
            d.unit = CALENDAR_MINUTES;
        else if (word_is(unit, unit_len, "hour") || word_is(unit, unit_len, "hours"))
            d.unit = CALENDAR_HOURS;
        else if (word_is(unit, unit_len, "day") || word_is(unit, unit_len, "days") ||
                 word_is(unit, unit_len, "calendar day") ||
                 word_is(unit, unit_len, "calendar days"))
            d.unit = CALENDAR_DAYS;
        else if (word_is(unit, unit_len, "business day") ||
                 word_is(unit, unit_len, "business days"))
            d.unit = CALENDAR_BUSINESS_DAYS;
        else
            goto bad;
    }
    int64_t max = d.unit == CALENDAR_MINUTES ? (int64_t)CALENDAR_MAX_DAYS * 24 * 60
                  : d.unit == CALENDAR_HOURS ? (int64_t)CALENDAR_MAX_DAYS * 24
                                             : CALENDAR_MAX_DAYS;
    if (n > max)
        return err_set(err, ERR_VALUE, NULL, "the duration \"%.*s\" is too long (at most %d days)",
                       (int)len, text, CALENDAR_MAX_DAYS);
    d.amount = n;
    *out = d;
    return ERR_OK;
bad:
    return err_set(err, ERR_VALUE, NULL,
                   "\"%.*s\" is not a duration: write \"N hours\", \"N minutes\", \"N calendar "
                   "days\" or \"N business days\", or ISO 8601 PTnH, PTnM, PnD or PnW",
                   (int)len, text);
}

/* The instant of local midnight starting day (moved forward when midnight is in a gap). */
static int64_t start_of_day_us(const calendar_t *cal, int64_t day)
{
    tz_civil_t local = {0};
    tz_civil_from_days(day, &local.year, &local.month, &local.day);
    return tz_from_local(cal->zone, &local, NULL) * 1000000;
}

int64_t calendar_add_days(const calendar_t *cal, int64_t from_us, int64_t days)
{
    int64_t seconds = floor_div(from_us, 1000000), micros = from_us - seconds * 1000000;
    tz_civil_t local;
    tz_to_local(cal->zone, seconds, &local, NULL);
    int64_t day = tz_days_from_civil(local.year, local.month, local.day) + days;
    tz_civil_from_days(day, &local.year, &local.month, &local.day);
    return tz_from_local(cal->zone, &local, NULL) * 1000000 + micros;
}

int64_t calendar_add_business_days(const calendar_t *cal, int64_t from_us, int64_t days)
{
    tz_civil_t local;
    tz_to_local(cal->zone, floor_div(from_us, 1000000), &local, NULL);
    int64_t day = tz_days_from_civil(local.year, local.month, local.day);
    if (days == 0) {
        while (!business_day(cal, day))
            day++;
    } else {
        for (int64_t counted = 0; counted < days;)
            if (business_day(cal, ++day))
                counted++;
    }
    return start_of_day_us(cal, day + 1) - 1;
}

int64_t calendar_add(const calendar_t *cal, int64_t from_us, const calendar_duration_t *duration)
{
    switch (duration->unit) {
    case CALENDAR_MINUTES: return from_us + duration->amount * MINUTE_US;
    case CALENDAR_HOURS: return from_us + duration->amount * HOUR_US;
    case CALENDAR_DAYS: return calendar_add_days(cal, from_us, duration->amount);
    case CALENDAR_BUSINESS_DAYS:
    default: return calendar_add_business_days(cal, from_us, duration->amount);
    }
}

/* ---- the process's calendar --------------------------------------------------------- */

static _Atomic(calendar_t *) default_calendar;
static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;

const calendar_t *calendar_default(void)
{
    calendar_t *cal = atomic_load(&default_calendar);
    if (cal)
        return cal;
    pthread_mutex_lock(&default_lock);
    cal = atomic_load(&default_calendar);
    if (!cal) {
        err_t err = ERR_INIT;
        if (calendar_new(CALENDAR_DEFAULT_ZONE, CALENDAR_DEFAULT_WORKING_DAYS,
                         CALENDAR_DEFAULT_HOLIDAYS, &cal, &err))
            die("the default calendar: %s", err_message(&err));
        err_release(&err);
        atomic_store(&default_calendar, cal);
    }
    pthread_mutex_unlock(&default_lock);
    return cal;
}

void calendar_set_default(calendar_t *cal)
{
    pthread_mutex_lock(&default_lock);
    cal->retired = atomic_load(&default_calendar);
    atomic_store(&default_calendar, cal);
    pthread_mutex_unlock(&default_lock);
}
