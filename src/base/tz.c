/*
 * tz.c - the TZif reader, the POSIX TZ rule of a file's footer, and civil-time arithmetic
 * (tz.h).
 *
 * A loaded zone is a sorted table of transitions (instant -> local time type) plus the footer
 * rule for instants after the last one. Every bound is checked while parsing, so a tz_t in
 * memory is consistent: indices in range, transitions strictly increasing, offsets within a
 * day and a few hours of UTC.
 */
#include "base/tz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/mem.h"

/* Offsets and rule times beyond these are not time zones. */
#define MAX_OFFSET    (26 * 3600)
#define MAX_RULE_TIME (167 * 3600)
/* The largest zone file read (the biggest in tzdata are under 4 KiB). */
#define MAX_FILE (1024 * 1024)
#define DAY      86400

typedef struct {
    int32_t offset;
    bool dst;
} tz_type_t;

/* One end of a daylight-saving period in a POSIX rule. */
typedef enum { RULE_JULIAN_NO_LEAP, RULE_DAY_OF_YEAR, RULE_MONTH_WEEK_DAY } rule_kind_t;
typedef struct {
    rule_kind_t kind;
    int day, month, week; /* Jn: day 1-365; n: day 0-365; Mm.w.d: month, week 1-5, day 0-6 */
    int32_t time;         /* local time of day of the change, in seconds (may exceed a day) */
} rule_date_t;

typedef struct {
    bool present;
    int32_t std_offset, dst_offset; /* east of UTC, in seconds */
    bool has_dst;
    rule_date_t start, end; /* with has_dst */
} rule_t;

struct tz {
    char *name;
    int64_t *times;         /* ntimes transition instants, strictly increasing */
    unsigned char *type_of; /* the type each transition starts */
    size_t ntimes;
    tz_type_t *types;
    size_t ntypes;
    rule_t rule; /* after the last transition */
};

/* ---- civil dates ---------------------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
    return a - floor_div(a, b) * b;
}

/*
 * Counts in 400-year eras of 146097 days, with years starting on 1 March so that the leap
 * day is the last day of a year; 719468 is the day number of 1970-01-01 from 0000-03-01.
 */
int64_t tz_days_from_civil(int year, int month, int day)
{
    int64_t y = (int64_t)year + floor_div((int64_t)month - 1, 12);
    int64_t m = floor_mod((int64_t)month - 1, 12) + 1;
    if (m <= 2)
        y--;
    int64_t era = floor_div(y, 400);
    int64_t year_of_era = y - era * 400;
    int64_t month_from_march = (m + 9) % 12;
    int64_t day_of_year = (153 * month_from_march + 2) / 5 + (int64_t)day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

void tz_civil_from_days(int64_t days, int *out_year, int *out_month, int *out_day)
{
    int64_t z = days + 719468;
    int64_t era = floor_div(z, 146097);
    int64_t day_of_era = z - era * 146097;
    int64_t year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    int64_t month_from_march = (5 * day_of_year + 2) / 153;
    int64_t d = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    int64_t m = month_from_march < 10 ? month_from_march + 3 : month_from_march - 9;
    int64_t y = year_of_era + era * 400 + (m <= 2);
    *out_year = (int)y;
    *out_month = (int)m;
    *out_day = (int)d;
}

int tz_weekday(int64_t days)
{
    return (int)floor_mod(days + 4, 7); /* 1970-01-01 was a Thursday */
}

static bool is_leap(int64_t year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int month_length(int64_t year, int month)
{
    static const int lengths[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && is_leap(year) ? 29 : lengths[month - 1];
}

bool tz_valid_date(int year, int month, int day)
{
    return month >= 1 && month <= 12 && day >= 1 && day <= month_length(year, month);
}

/* ---- the POSIX TZ rule -------------------------------------------------------------- */

/* An abbreviation: three or more letters, or <...> of letters, digits, '+' and '-'. */
static bool parse_abbreviation(const char **p)
{
    const char *s = *p;
    if (*s == '<') {
        s++;
        const char *start = s;
        while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
               *s == '+' || *s == '-')
            s++;
        if (*s != '>' || s - start < 3)
            return false;
        *p = s + 1;
        return true;
    }
    const char *start = s;
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
        s++;
    if (s - start < 3)
        return false;
    *p = s;
    return true;
}

/* [+-]hh[:mm[:ss]] with hh up to max_hours, as signed seconds. */
static bool parse_hms(const char **p, int max_hours, int32_t *out)
{
    const char *s = *p;
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    int parts[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (*s != ':')
                break;
            s++;
        }
        if (*s < '0' || *s > '9')
            return false;
        int n = 0, digits = 0;
        while (*s >= '0' && *s <= '9' && digits < 3) {
            n = n * 10 + (*s++ - '0');
            digits++;
        }
        parts[i] = n;
    }
    if (parts[0] > max_hours || parts[1] > 59 || parts[2] > 59)
        return false;
    *out = sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]);
    *p = s;
    return true;
}

static bool parse_number(const char **p, int min, int max, int *out)
{
    const char *s = *p;
    if (*s < '0' || *s > '9')
        return false;
    int n = 0;
    while (*s >= '0' && *s <= '9') {
        n = n * 10 + (*s++ - '0');
        if (n > max)
            return false;
    }
    if (n < min)
        return false;
    *out = n;
    *p = s;
    return true;
}

static bool parse_rule_date(const char **p, rule_date_t *out)
{
    const char *s = *p;
    if (*s == 'J') {
        s++;
        out->kind = RULE_JULIAN_NO_LEAP;
        if (!parse_number(&s, 1, 365, &out->day))
            return false;
    } else if (*s == 'M') {
        s++;
        out->kind = RULE_MONTH_WEEK_DAY;
        if (!parse_number(&s, 1, 12, &out->month) || *s++ != '.' ||
            !parse_number(&s, 1, 5, &out->week) || *s++ != '.' ||
            !parse_number(&s, 0, 6, &out->day))
            return false;
    } else {
        out->kind = RULE_DAY_OF_YEAR;
        if (!parse_number(&s, 0, 365, &out->day))
            return false;
    }
    out->time = 7200; /* 02:00 unless given */
    if (*s == '/') {
        s++;
        if (!parse_hms(&s, MAX_RULE_TIME / 3600, &out->time))
            return false;
    }
    *p = s;
    return true;
}

/* A TZ string such as "EST5EDT,M3.2.0,M11.1.0" (POSIX offsets count west, ours east). */
static bool parse_rule(const char *s, rule_t *out)
{
    memset(out, 0, sizeof(*out));
    int32_t west;
    if (!parse_abbreviation(&s) || !parse_hms(&s, 24, &west))
        return false;
    out->std_offset = -west;
    out->present = true;
    if (!*s)
        return true;
    if (!parse_abbreviation(&s))
        return false;
    out->has_dst = true;
    out->dst_offset = out->std_offset + 3600;
    if (*s && *s != ',') {
        if (!parse_hms(&s, 24, &west))
            return false;
        out->dst_offset = -west;
    }
    /* a zone with daylight-saving time and no rule for it is not something a footer says */
    if (*s++ != ',' || !parse_rule_date(&s, &out->start) || *s++ != ',' ||
        !parse_rule_date(&s, &out->end) || *s)
        return false;
    return true;
}

/* The day number of a rule's date in year. */
static int64_t rule_day(const rule_date_t *r, int64_t year)
{
    int64_t jan1 = tz_days_from_civil((int)year, 1, 1);
    switch (r->kind) {
    case RULE_JULIAN_NO_LEAP: return jan1 + r->day - 1 + (is_leap(year) && r->day >= 60 ? 1 : 0);
    case RULE_DAY_OF_YEAR: return jan1 + r->day;
    case RULE_MONTH_WEEK_DAY:
    default: {
        int64_t first = tz_days_from_civil((int)year, r->month, 1);
        int64_t day = first + floor_mod(r->day - tz_weekday(first), 7) + (int64_t)(r->week - 1) * 7;
        while (day >= first + month_length(year, r->month))
            day -= 7; /* week 5: the last such weekday */
        return day;
    }
    }
}

static bool rule_dst_at(const rule_t *rule, int64_t t)
{
    if (!rule->has_dst)
        return false;
    int year, month, day;
    tz_civil_from_days(floor_div(t + rule->std_offset, DAY), &year, &month, &day);
    /* daylight time starts at a local standard time and ends at a local daylight time */
    int64_t start = rule_day(&rule->start, year) * DAY + rule->start.time - rule->std_offset;
    int64_t end = rule_day(&rule->end, year) * DAY + rule->end.time - rule->dst_offset;
    if (start < end)
        return t >= start && t < end;
    return !(t >= end && t < start); /* the southern hemisphere: DST spans the new year */
}

/* ---- lookup ------------------------------------------------------------------------ */

static void info_at(const tz_t *tz, int64_t t, int32_t *out_offset, bool *out_dst)
{
    if (tz->ntimes == 0 || t >= tz->times[tz->ntimes - 1]) {
        if (tz->rule.present) {
            bool dst = rule_dst_at(&tz->rule, t);
            *out_offset = dst ? tz->rule.dst_offset : tz->rule.std_offset;
            *out_dst = dst;
            return;
        }
        const tz_type_t *type = &tz->types[tz->ntimes ? tz->type_of[tz->ntimes - 1] : 0];
        *out_offset = type->offset;
        *out_dst = type->dst;
        return;
    }
    if (t < tz->times[0]) {
        *out_offset = tz->types[0].offset;
        *out_dst = tz->types[0].dst;
        return;
    }
    /* the last transition at or before t */
    size_t lo = 0, hi = tz->ntimes - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        if (tz->times[mid] <= t)
            lo = mid;
        else
            hi = mid - 1;
    }
    const tz_type_t *type = &tz->types[tz->type_of[lo]];
    *out_offset = type->offset;
    *out_dst = type->dst;
}

int32_t tz_offset_at(const tz_t *tz, int64_t t)
{
    int32_t offset;
    bool dst;
    info_at(tz, t, &offset, &dst);
    return offset;
}

bool tz_is_dst_at(const tz_t *tz, int64_t t)
{
    int32_t offset;
    bool dst;
    info_at(tz, t, &offset, &dst);
    return dst;
}

void tz_to_local(const tz_t *tz, int64_t t, tz_civil_t *out, int32_t *out_offset)
{
    int32_t offset = tz_offset_at(tz, t);
    int64_t local = t + offset;
    int64_t days = floor_div(local, DAY), seconds = local - days * DAY;
    tz_civil_from_days(days, &out->year, &out->month, &out->day);
    out->hour = (int)(seconds / 3600);
    out->minute = (int)(seconds / 60 % 60);
    out->second = (int)(seconds % 60);
    if (out_offset)
        *out_offset = offset;
}

int64_t tz_from_local(const tz_t *tz, const tz_civil_t *local, tz_local_kind_t *out_kind)
{
    int64_t l = tz_days_from_civil(local->year, local->month, local->day) * DAY +
                (int64_t)local->hour * 3600 + (int64_t)local->minute * 60 + local->second;
    /* The instant is within MAX_OFFSET of l: the candidates are the offsets in force
     * anywhere in that window, those of the table's transitions in it and, past the table,
     * both offsets of the footer's rule. Each is kept when it maps back to l. */
    int64_t low = l - MAX_OFFSET - 3600, high = l + MAX_OFFSET + 3600;
    int32_t before = tz_offset_at(tz, low);
    int32_t candidates[24];
    int ncandidates = 0;
    candidates[ncandidates++] = before;
    candidates[ncandidates++] = tz_offset_at(tz, high);
    size_t i = 0, hi = tz->ntimes;
    while (i < hi) { /* the first transition after low */
        size_t mid = i + (hi - i) / 2;
        if (tz->times[mid] <= low)
            i = mid + 1;
        else
            hi = mid;
    }
    for (; i < tz->ntimes && tz->times[i] < high && ncandidates < 20; i++)
        candidates[ncandidates++] = tz->types[tz->type_of[i]].offset;
    if (tz->rule.present && (tz->ntimes == 0 || high >= tz->times[tz->ntimes - 1])) {
        candidates[ncandidates++] = tz->rule.std_offset;
        candidates[ncandidates++] = tz->rule.dst_offset;
    }
    int64_t found[24];
    int nfound = 0;
    for (int c = 0; c < ncandidates; c++) {
        int64_t t = l - candidates[c];
        if (tz_offset_at(tz, t) != candidates[c])
            continue;
        bool seen = false;
        for (int j = 0; j < nfound; j++)
            seen = seen || found[j] == t;
        if (!seen)
            found[nfound++] = t;
    }
    if (nfound == 0) {
        if (out_kind)
            *out_kind = TZ_LOCAL_GAP;
        return l - before;
    }
    int64_t earliest = found[0];
    for (int j = 1; j < nfound; j++)
        if (found[j] < earliest)
            earliest = found[j];
    if (out_kind)
        *out_kind = nfound > 1 ? TZ_LOCAL_OVERLAP : TZ_LOCAL_UNIQUE;
    return earliest;
}

/* ---- TZif ------------------------------------------------------------------------- */

typedef struct {
    const unsigned char *p, *end;
} reader_t;

static bool take(reader_t *r, size_t n, const unsigned char **out)
{
    if ((size_t)(r->end - r->p) < n)
        return false;
    *out = r->p;
    r->p += n;
    return true;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

typedef struct {
    int version; /* 1, 2, 3, 4 */
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} header_t;

static bool read_header(reader_t *r, header_t *h)
{
    const unsigned char *p;
    if (!take(r, 44, &p) || memcmp(p, "TZif", 4) != 0)
        return false;
    h->version = p[4] == 0 ? 1 : p[4] >= '2' && p[4] <= '9' ? p[4] - '0' : 0;
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    return h->version != 0;
}

static size_t block_size(const header_t *h, size_t time_size)
{
    return (size_t)h->timecnt * time_size + h->timecnt + (size_t)h->typecnt * 6 + h->charcnt +
           (size_t)h->leapcnt * (time_size + 4) + h->isstdcnt + h->isutcnt;
}

static status_t bad(err_t *err, const char *name, const char *what)
{
    return err_set(err, ERR_VALUE, NULL, "the zone file of \"%s\" is not valid TZif: %s", name,
                   what);
}

/* The data block of h (time_size 4 or 8) into tz. */
static status_t read_block(reader_t *r, const header_t *h, size_t time_size, tz_t *tz,
                           const char *name, err_t *err)
{
    if (h->typecnt == 0 || h->typecnt > 256)
        return bad(err, name, "it needs 1 to 256 local time types");
    if ((h->isstdcnt && h->isstdcnt != h->typecnt) || (h->isutcnt && h->isutcnt != h->typecnt))
        return bad(err, name, "the standard/wall and UT/local indicators do not match the types");
    if (h->leapcnt)
        return bad(err, name, "zones with leap seconds are not supported");
    if ((size_t)(r->end - r->p) < block_size(h, time_size))
        return bad(err, name, "it is shorter than its header says");
    const unsigned char *times = NULL, *indices = NULL, *types = NULL, *rest = NULL;
    take(r, (size_t)h->timecnt * time_size, &times);
    take(r, h->timecnt, &indices);
    take(r, (size_t)h->typecnt * 6, &types);

    take(r, (size_t)h->charcnt + h->isstdcnt + h->isutcnt, &rest);

    tz->ntimes = h->timecnt;
    tz->times = xcalloc(h->timecnt ? h->timecnt : 1, sizeof(int64_t));
    tz->type_of = xcalloc(h->timecnt ? h->timecnt : 1, 1);
    for (size_t i = 0; i < h->timecnt; i++) {
        tz->times[i] = time_size == 8 ? be64(times + 8 * i) : (int32_t)be32(times + 4 * i);
        if (i > 0 && tz->times[i] <= tz->times[i - 1])
            return bad(err, name, "its transition times are not in increasing order");
        if (indices[i] >= h->typecnt)
            return bad(err, name, "a transition names a local time type that does not exist");
        tz->type_of[i] = indices[i];
    }
    tz->ntypes = h->typecnt;
    tz->types = xcalloc(h->typecnt, sizeof(tz_type_t));
    for (size_t i = 0; i < h->typecnt; i++) {
        int32_t offset = (int32_t)be32(types + 6 * i);
        if (offset < -MAX_OFFSET || offset > MAX_OFFSET)
            return bad(err, name, "a UTC offset is more than 26 hours");
        if (types[6 * i + 4] > 1)
            return bad(err, name, "a daylight-saving indicator is neither 0 nor 1");
        if (h->charcnt && types[6 * i + 5] >= h->charcnt)
            return bad(err, name, "an abbreviation index is out of range");
        tz->types[i] = (tz_type_t){.offset = offset, .dst = types[6 * i + 4] == 1};
    }
    return ERR_OK;
}

status_t tz_parse(const char *name, const void *data, size_t len, tz_t **out, err_t *err)
{
    *out = NULL;
    reader_t r = {.p = data, .end = (const unsigned char *)data + len};
    header_t h;
    if (!read_header(&r, &h))
        return bad(err, name, "it does not start with a TZif header");
    tz_t *tz = xcalloc(1, sizeof(*tz));
    tz->name = xstrdup(name);
    status_t rc;
    if (h.version == 1) {
        rc = read_block(&r, &h, 4, tz, name, err);
    } else {
        /* skip the 32-bit block: the 64-bit one after it says everything */
        const unsigned char *skip;
        if (block_size(&h, 4) > (size_t)(r.end - r.p) || !take(&r, block_size(&h, 4), &skip) ||
            !read_header(&r, &h)) {
            rc = bad(err, name, "its second header is missing");
            goto out;
        }
        rc = read_block(&r, &h, 8, tz, name, err);
        if (rc)
            goto out;
        /* the footer: "\n" TZ-string "\n" (an empty string: no rule) */
        const unsigned char *nl;
        if (!take(&r, 1, &nl) || *nl != '\n') {
            rc = bad(err, name, "its footer is missing");
            goto out;
        }
        const unsigned char *start = r.p;
        while (r.p < r.end && *r.p != '\n') {
            if (*r.p < 0x20 || *r.p > 0x7e) {
                rc = bad(err, name, "its footer is not printable text");
                goto out;
            }
            r.p++;
        }
        if (r.p == r.end || r.p - start > 255) {
            rc = bad(err, name, "its footer is not a line of at most 255 characters");
            goto out;
        }
        if (r.p > start) {
            char footer[256];
            memcpy(footer, start, (size_t)(r.p - start));
            footer[r.p - start] = '\0';
            if (!parse_rule(footer, &tz->rule)) {
                rc = err_set(err, ERR_VALUE, NULL,
                             "the zone file of \"%s\" is not valid TZif: its TZ rule \"%s\" "
                             "cannot be read",
                             name, footer);
                goto out;
            }
        }
    }
out:
    if (rc) {
        tz_free(tz);
        return rc;
    }
    *out = tz;
    return ERR_OK;
}

tz_t *tz_new_utc(void)
{
    tz_t *tz = xcalloc(1, sizeof(*tz));
    tz->name = xstrdup("UTC");
    tz->ntypes = 1;
    tz->types = xcalloc(1, sizeof(tz_type_t));
    return tz;
}

static bool valid_zone_name(const char *name)
{
    if (!*name || name[0] == '/' || strlen(name) > 200)
        return false;
    for (const char *p = name; *p; p++) {
        bool ok = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                  (*p >= '0' && *p <= '9') || *p == '/' || *p == '_' || *p == '-' || *p == '+';
        if (!ok)
            return false;
        if (*p == '/' && p[1] == '/')
            return false;
    }
    return strstr(name, "..") == NULL;
}

status_t tz_load_dir(const char *dir, const char *name, tz_t **out, err_t *err)
{
    *out = NULL;
    if (!valid_zone_name(name))
        return err_set(err, ERR_INVALID, NULL,
                       "\"%s\" is not a time zone name (such as America/New_York or UTC)", name);
    char *path = xasprintf("%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        free(path);
        return err_set(err, ERR_INVALID, NULL, "unknown time zone \"%s\"%s%s", name,
                       fd < 0 && saved != ENOENT ? ": " : "",
                       fd < 0 && saved != ENOENT ? strerror(saved) : "");
    }
    if (st.st_size > MAX_FILE) {
        close(fd);
        free(path);
        return bad(err, name, "it is over a megabyte");
    }
    size_t len = (size_t)st.st_size;
    unsigned char *data = xmalloc(len ? len : 1);
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, data + got, len - got);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    status_t rc = got == len ? tz_parse(name, data, len, out, err)
                             : err_set(err, ERR_INVALID, NULL, "could not read %s", path);
    free(data);
    free(path);
    return rc;
}

status_t tz_load(const char *name, tz_t **out, err_t *err)
{
    return tz_load_dir(TZ_DIR, name, out, err);
}

void tz_free(tz_t *tz)
{
    if (!tz)
        return;
    free(tz->name);
    free(tz->times);
    free(tz->type_of);
    free(tz->types);
    free(tz);
}

const char *tz_name(const tz_t *tz)
{
    return tz->name;
}
