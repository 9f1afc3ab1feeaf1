/*
 * fhirpath_temporal.c - Date, DateTime and Time with partial precision: parsing (FHIR JSON
 * and FHIRPath literals), text, comparison and calendar arithmetic.
 *
 * Comparison goes precision by precision (seconds and milliseconds count as one precision,
 * so 10:30:00 equals 10:30:00.0); when one value stops before the other and all common
 * precisions agree the answer is unknown, which the operators turn into an empty result.
 * Values with offsets are compared in UTC.
 */
#include <stdio.h>
#include <string.h>

#include "fhir/fhirpath_int.h"

static int digits(const char *p, size_t n, size_t count, int *out)
{
    if (n < count)
        return 0;
    int v = 0;
    for (size_t i = 0; i < count; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

static bool leap(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int month_days(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month == 2 && leap(year))
        return 29;
    return days[month - 1];
}

/* Parses the date part; returns bytes used or 0. */
static size_t parse_date_part(const char *s, size_t n, fp_temporal_t *out)
{
    int v;
    memset(out, 0, sizeof(*out));
    if (!digits(s, n, 4, &v))
        return 0;
    out->year = (int16_t)v;
    out->month = 1;
    out->day = 1;
    out->precision = FP_PREC_YEAR;
    size_t i = 4;
    if (i < n && s[i] == '-') {
        if (!digits(s + i + 1, n - i - 1, 2, &v) || v < 1 || v > 12)
            return 0;
        out->month = (int8_t)v;
        out->precision = FP_PREC_MONTH;
        i += 3;
        if (i < n && s[i] == '-') {
            if (!digits(s + i + 1, n - i - 1, 2, &v) || v < 1 ||
                v > month_days(out->year, out->month))
                return 0;
            out->day = (int8_t)v;
            out->precision = FP_PREC_DAY;
            i += 3;
        }
    }
    return i;
}

/* Parses hh[:mm[:ss[.fff]]] into out; returns bytes used or 0. */
static size_t parse_time_part(const char *s, size_t n, fp_temporal_t *out)
{
    int v;
    if (!digits(s, n, 2, &v) || v > 23)
        return 0;
    out->hour = (int8_t)v;
    out->precision = FP_PREC_HOUR;
    size_t i = 2;
    if (i < n && s[i] == ':') {
        if (!digits(s + i + 1, n - i - 1, 2, &v) || v > 59)
            return 0;
        out->minute = (int8_t)v;
        out->precision = FP_PREC_MINUTE;
        i += 3;
        if (i < n && s[i] == ':') {
            if (!digits(s + i + 1, n - i - 1, 2, &v) || v > 60)
                return 0;
            out->second = (int8_t)(v == 60 ? 59 : v);
            out->precision = FP_PREC_SECOND;
            i += 3;
            if (i < n && s[i] == '.') {
                size_t j = i + 1;
                int ms = 0, count = 0;
                while (j < n && s[j] >= '0' && s[j] <= '9') {
                    if (count < 3)
                        ms = ms * 10 + (s[j] - '0');
                    count++;
                    j++;
                }
                if (count == 0)
                    return 0;
                for (int k = count; k < 3; k++)
                    ms *= 10;
                out->millisecond = (int16_t)ms;
                out->precision = FP_PREC_MILLISECOND;
                i = j;
            }
        }
    }
    return i;
}

bool fhirpath__date_parse(const char *text, size_t len, fp_temporal_t *out)
{
    size_t used = parse_date_part(text, len, out);
    return used && used == len;
}

bool fhirpath__datetime_parse(const char *text, size_t len, fp_temporal_t *out)
{
    size_t i = parse_date_part(text, len, out);
    if (!i)
        return false;
    if (i == len)
        return true;
    if (text[i] != 'T')
        return false;
    i++;
    if (i == len)
        return true; /* "@2015T": a DateTime with only a date */
    if (out->precision != FP_PREC_DAY)
        return false;
    size_t used = parse_time_part(text + i, len - i, out);
    if (!used)
        return false;
    i += used;
    if (i == len)
        return true;
    if (text[i] == 'Z' && i + 1 == len) {
        out->has_tz = out->tz_z = true;
        out->tz_minutes = 0;
        return true;
    }
    if (text[i] == '+' || text[i] == '-') {
        int h, m;
        if (len - i != 6 || !digits(text + i + 1, 2, 2, &h) || text[i + 3] != ':' ||
            !digits(text + i + 4, 2, 2, &m) || h > 14 || m > 59)
            return false;
        out->has_tz = true;
        out->tz_minutes = (int16_t)((h * 60 + m) * (text[i] == '-' ? -1 : 1));
        return true;
    }
    return false;
}

bool fhirpath__time_parse(const char *text, size_t len, fp_temporal_t *out)
{
    memset(out, 0, sizeof(*out));
    size_t used = parse_time_part(text, len, out);
    return used && used == len;
}

void fhirpath__temporal_text(const fp_temporal_t *v, fhirpath_kind_t kind, buf_t *out)
{
    if (kind != FHIRPATH_TIME) {
        buf_addf(out, "%04d", v->year);
        if (v->precision >= FP_PREC_MONTH)
            buf_addf(out, "-%02d", v->month);
        if (v->precision >= FP_PREC_DAY)
            buf_addf(out, "-%02d", v->day);
        if (kind == FHIRPATH_DATE || v->precision < FP_PREC_HOUR)
            return;
        buf_addch(out, 'T');
    }
    buf_addf(out, "%02d", v->hour);
    if (v->precision >= FP_PREC_MINUTE)
        buf_addf(out, ":%02d", v->minute);
    if (v->precision >= FP_PREC_SECOND)
        buf_addf(out, ":%02d", v->second);
    if (v->precision >= FP_PREC_MILLISECOND)
        buf_addf(out, ".%03d", v->millisecond);
    if (kind == FHIRPATH_DATETIME && v->has_tz) {
        if (v->tz_z && v->tz_minutes == 0) {
            buf_addch(out, 'Z');
        } else {
            int m = v->tz_minutes < 0 ? -v->tz_minutes : v->tz_minutes;
            buf_addf(out, "%c%02d:%02d", v->tz_minutes < 0 ? '-' : '+', m / 60, m % 60);
        }
    }
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int64_t to_ms(const fp_temporal_t *v)
{
    int64_t days = days_from_civil(v->year, v->month, v->day);
    return ((days * 24 + v->hour) * 60 + v->minute) * 60000 + v->second * 1000 + v->millisecond;
}

static bool from_ms(int64_t ms, fp_temporal_t *v)
{
    int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    int64_t rest = ms - days * 86400000;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 1 || y > 9999)
        return false;
    v->year = (int16_t)y;
    v->month = (int8_t)m;
    v->day = (int8_t)d;
    v->hour = (int8_t)(rest / 3600000);
    v->minute = (int8_t)(rest / 60000 % 60);
    v->second = (int8_t)(rest / 1000 % 60);
    v->millisecond = (int16_t)(rest % 1000);
    return true;
}

/* Shifts a value with an offset to UTC (only meaningful with a time of day). */
static fp_temporal_t utc(const fp_temporal_t *v)
{
    fp_temporal_t r = *v;
    if (!v->has_tz || v->precision < FP_PREC_HOUR || v->tz_minutes == 0)
        return r;
    if (!from_ms(to_ms(v) - (int64_t)v->tz_minutes * 60000, &r))
        return *v;
    r.tz_minutes = 0;
    return r;
}

static int field(const fp_temporal_t *v, int precision)
{
    switch (precision) {
    case FP_PREC_YEAR: return v->year;
    case FP_PREC_MONTH: return v->month;
    case FP_PREC_DAY: return v->day;
    case FP_PREC_HOUR: return v->hour;
    case FP_PREC_MINUTE: return v->minute;
    default: return v->second * 1000 + v->millisecond;
    }
}

fp_cmp_t fhirpath__temporal_compare(const fp_temporal_t *a, const fp_temporal_t *b)
{
    fp_temporal_t x = *a, y = *b;
    if (a->has_tz && b->has_tz) {
        x = utc(a);
        y = utc(b);
    }
    int pa = x.precision > FP_PREC_SECOND ? FP_PREC_SECOND : x.precision;
    int pb = y.precision > FP_PREC_SECOND ? FP_PREC_SECOND : y.precision;
    int common = pa < pb ? pa : pb;
    /* a Time's date fields are zero in both values, so they compare equal */
    for (int p = FP_PREC_YEAR; p <= common; p++) {
        int fa = field(&x, p), fb = field(&y, p);
        if (fa != fb)
            return fa < fb ? FP_CMP_LT : FP_CMP_GT;
    }
    return pa == pb ? FP_CMP_EQ : FP_CMP_UNKNOWN;
}

int fhirpath__temporal_equal(const fp_temporal_t *a, const fp_temporal_t *b)
{
    if (a->has_tz != b->has_tz) {
        if (a->precision < FP_PREC_HOUR || b->precision < FP_PREC_HOUR)
            return 0;
        return -1;
    }
    fp_cmp_t c = fhirpath__temporal_compare(a, b);
    if (c == FP_CMP_UNKNOWN)
        return -1;
    return c == FP_CMP_EQ;
}

bool fhirpath__temporal_equivalent(const fp_temporal_t *a, const fp_temporal_t *b)
{
    if (a->has_tz != b->has_tz)
        return false;
    return fhirpath__temporal_compare(a, b) == FP_CMP_EQ;
}

bool fhirpath__temporal_add(fp_temporal_t *v, fhirpath_kind_t kind, int unit, int64_t amount)
{
    if (amount > 100000000000LL || amount < -100000000000LL)
        return false;
    if (kind == FHIRPATH_TIME) {
        if (unit < FP_PREC_HOUR)
            return false;
    }
    int precision = v->precision;
    if (unit <= FP_PREC_MONTH) {
        if (kind == FHIRPATH_TIME)
            return false;
        int64_t months = unit == FP_PREC_YEAR ? amount * 12 : amount;
        if (precision == FP_PREC_YEAR)
            months = months / 12 * 12;
        int64_t total = (int64_t)v->year * 12 + (v->month - 1) + months;
        int64_t year = total >= 0 ? total / 12 : -((-total + 11) / 12);
        int month = (int)(total - year * 12) + 1;
        if (year < 1 || year > 9999)
            return false;
        v->year = (int16_t)year;
        v->month = (int8_t)month;
        if (v->day > month_days(v->year, v->month))
            v->day = (int8_t)month_days(v->year, v->month);
        return true;
    }
    static const int64_t unit_ms[] = {0, 0, 0, 86400000, 3600000, 60000, 1000, 1};
    int64_t ms = amount * unit_ms[unit];
    if (kind != FHIRPATH_TIME && precision <= FP_PREC_MONTH) {
        /* a year or month value moves by whole years or months */
        int64_t days = ms / 86400000;
        if (precision == FP_PREC_YEAR)
            return fhirpath__temporal_add(v, kind, FP_PREC_YEAR, days / 365);
        return fhirpath__temporal_add(v, kind, FP_PREC_MONTH, days / 30);
    }
    int p = precision > FP_PREC_MILLISECOND ? FP_PREC_MILLISECOND : precision;
    ms = ms / unit_ms[p] * unit_ms[p];
    if (kind == FHIRPATH_TIME) {
        int64_t t =
            ((int64_t)v->hour * 60 + v->minute) * 60000 + v->second * 1000 + v->millisecond + ms;
        t %= 86400000;
        if (t < 0)
            t += 86400000;
        v->hour = (int8_t)(t / 3600000);
        v->minute = (int8_t)(t / 60000 % 60);
        v->second = (int8_t)(t / 1000 % 60);
        v->millisecond = (int16_t)(t % 1000);
        return true;
    }
    fp_temporal_t r = *v;
    if (!from_ms(to_ms(v) + ms, &r))
        return false;
    *v = r;
    return true;
}
