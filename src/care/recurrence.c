/*
 * recurrence.c - a scheduled action's recurrence: parsing timingTiming and the occurrence
 * arithmetic on the business calendar (each occurrence counted from the anchor, never from
 * the one before, so a month clamped to its end does not shorten the months after it).
 */
#include "care/recurrence.h"

#include <string.h>

#include "base/jv.h"
#include "base/tz.h"

#define SECOND_US  1000000LL
#define HOUR_US    (3600 * SECOND_US)
#define DAY_US     (24 * HOUR_US)
#define MAX_MONTHS (CALENDAR_MAX_DAYS / 30) /* ten years */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* A whole number of a JSON number (1 or 1.0) from 0, or -1. */
static int64_t whole(const json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v);
    /* a decimal (jv.h) with nothing but zeros after the point: 90.0 */
    size_t len;
    const char *text = jv_decimal_text(v, &len);
    if (!text)
        return -1;
    int64_t n = 0;
    size_t i = 0;
    for (; i < len && text[i] >= '0' && text[i] <= '9' && n < 1000000000; i++)
        n = n * 10 + (text[i] - '0');
    if (i == 0 || i == len || text[i] != '.')
        return -1;
    for (i++; i < len; i++)
        if (text[i] != '0')
            return -1;
    return n;
}

status_t care_recurrence_parse(const json_t *timing, const char *where, arena_t *arena,
                               care_recurrence_t *out, err_t *err)
{
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)timing, key, value)
    {
        if (strcmp(key, "repeat") != 0 && strcmp(key, "id") != 0 && strcmp(key, "extension") != 0)
            return err_set(err, ERR_RULE, arena_printf(arena, "%s.%s", where, key),
                           "a scheduled action recurs by repeat.period and repeat.periodUnit "
                           "alone; %s.%s is not supported",
                           where, key);
    }
    const json_t *repeat = json_object_get(timing, "repeat");
    if (!json_is_object(repeat))
        return err_set(err, ERR_REQUIRED, arena_printf(arena, "%s.repeat", where),
                       "a periodic trigger needs timingTiming.repeat with a period and a "
                       "periodUnit");
    json_object_foreach((json_t *)repeat, key, value)
    {
        if (strcmp(key, "frequency") != 0 && strcmp(key, "period") != 0 &&
            strcmp(key, "periodUnit") != 0 && strcmp(key, "id") != 0 &&
            strcmp(key, "extension") != 0)
            return err_set(err, ERR_RULE, arena_printf(arena, "%s.repeat.%s", where, key),
                           "a scheduled action recurs by repeat.period and repeat.periodUnit "
                           "alone; repeat.%s is not supported",
                           key);
    }
    const json_t *frequency = json_object_get(repeat, "frequency");
    if (frequency && whole(frequency) != 1)
        return err_set(err, ERR_RULE, arena_printf(arena, "%s.repeat.frequency", where),
                       "a scheduled action runs once per period: repeat.frequency must be 1 "
                       "(or absent); for more often, make the period shorter");
    const json_t *period = json_object_get(repeat, "period");
    const char *unit = json_string_value(json_object_get(repeat, "periodUnit"));
    if (!period)
        return err_set(err, ERR_REQUIRED, arena_printf(arena, "%s.repeat.period", where),
                       "a periodic trigger needs repeat.period (how many periodUnits apart)");
    int64_t amount = whole(period);
    if (amount < 1)
        return err_set(err, ERR_RULE, arena_printf(arena, "%s.repeat.period", where),
                       "repeat.period must be a whole number from 1");
    if (!unit)
        return err_set(err, ERR_REQUIRED, arena_printf(arena, "%s.repeat.periodUnit", where),
                       "a periodic trigger needs repeat.periodUnit (h, d, wk, mo or a)");
    care_recurrence_t r;
    int64_t days; /* the span, to bound it */
    if (strcmp(unit, "h") == 0) {
        r = (care_recurrence_t){CARE_EVERY_HOURS, amount};
        days = amount / 24;
    } else if (strcmp(unit, "d") == 0) {
        r = (care_recurrence_t){CARE_EVERY_DAYS, amount};
        days = amount;
    } else if (strcmp(unit, "wk") == 0) {
        r = (care_recurrence_t){CARE_EVERY_DAYS, amount * 7};
        days = amount * 7;
    } else if (strcmp(unit, "mo") == 0) {
        r = (care_recurrence_t){CARE_EVERY_MONTHS, amount};
        days = amount * 30;
    } else if (strcmp(unit, "a") == 0) {
        r = (care_recurrence_t){CARE_EVERY_MONTHS, amount * 12};
        days = amount * 360;
    } else {
        return err_set(err, ERR_RULE, arena_printf(arena, "%s.repeat.periodUnit", where),
                       "repeat.periodUnit must be h, d, wk, mo or a, not \"%s\"", unit);
    }
    if (days > CALENDAR_MAX_DAYS || (r.unit == CARE_EVERY_MONTHS && r.amount > MAX_MONTHS))
        return err_set(err, ERR_RULE, arena_printf(arena, "%s.repeat.period", where),
                       "a scheduled action recurs at least every ten years");
    *out = r;
    return ERR_OK;
}

static int days_in_month(int year, int month)
{
    static const int DAYS[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : DAYS[month - 1];
}

int64_t care_recurrence_at(const calendar_t *cal, int64_t anchor_us, const care_recurrence_t *r,
                           int64_t n)
{
    switch (r->unit) {
    case CARE_EVERY_HOURS: return anchor_us + n * r->amount * HOUR_US;
    case CARE_EVERY_DAYS: return calendar_add_days(cal, anchor_us, n * r->amount);
    case CARE_EVERY_MONTHS:
    default: break;
    }
    int64_t seconds = floor_div(anchor_us, SECOND_US), micros = anchor_us - seconds * SECOND_US;
    tz_civil_t local;
    tz_to_local(calendar_zone(cal), seconds, &local, NULL);
    int64_t months = (int64_t)local.year * 12 + (local.month - 1) + n * r->amount;
    local.year = (int)floor_div(months, 12);
    local.month = (int)(months - (int64_t)local.year * 12) + 1;
    int last = days_in_month(local.year, local.month);
    if (local.day > last)
        local.day = last;
    return tz_from_local(calendar_zone(cal), &local, NULL) * SECOND_US + micros;
}

int64_t care_recurrence_index(const calendar_t *cal, int64_t anchor_us, const care_recurrence_t *r,
                              int64_t t_us)
{
    if (t_us <= anchor_us)
        return 0;
    /* an estimate from the mean length of a period, then corrected: local days are 23 to 25
       hours and months 28 to 31 days, so it is off by at most a few */
    int64_t mean_us = r->unit == CARE_EVERY_HOURS  ? HOUR_US
                      : r->unit == CARE_EVERY_DAYS ? DAY_US
                                                   : (int64_t)(30.436875 * DAY_US);
    int64_t n = (t_us - anchor_us) / (mean_us * r->amount);
    while (n > 0 && care_recurrence_at(cal, anchor_us, r, n) > t_us)
        n--;
    while (care_recurrence_at(cal, anchor_us, r, n + 1) <= t_us)
        n++;
    return n;
}

int64_t care_recurrence_next(const calendar_t *cal, int64_t anchor_us, const care_recurrence_t *r,
                             int64_t t_us)
{
    return care_recurrence_at(cal, anchor_us, r,
                              care_recurrence_index(cal, anchor_us, r, t_us - 1) + 1);
}

const char *care_recurrence_key(const calendar_t *cal, const care_recurrence_t *r, int64_t at_us,
                                arena_t *arena)
{
    tz_civil_t local;
    tz_to_local(calendar_zone(cal), floor_div(at_us, SECOND_US), &local, NULL);
    if (r->unit == CARE_EVERY_HOURS)
        return arena_printf(arena, "%04d-%02d-%02dT%02d:%02d", local.year, local.month, local.day,
                            local.hour, local.minute);
    return arena_printf(arena, "%04d-%02d-%02d", local.year, local.month, local.day);
}
