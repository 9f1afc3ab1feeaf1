/*
 * readmissions.c - the 30-day readmission measure (readmissions.h): the period of two local
 * dates, the pure counting of the populations, and the gathering of the stays and readmission
 * Flags through repo searches as the caller searches.
 */
#include "care/readmissions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/tz.h"
#include "base/url.h"
#include "care/care_int.h"
#include "care/ext.h"
#include "care/protocol.h"
#include "care/transitions.h"
#include "fhir/defs.h"
#include "repo/repo.h"

#define DISPOSITION "http://terminology.hl7.org/CodeSystem/discharge-disposition"

/* The stay classes, as transitions.c flags readmissions after them. */
#define STAY_CLASSES "IMP,ACUTE,NONAC,OBSENC,SS"

static bool is(const char *s, const char *value)
{
    return s && strcmp(s, value) == 0;
}

/* ---- the period --------------------------------------------------------------------------- */

/* A date YYYY-MM-DD (exactly) as its civil fields. */
static bool parse_date(const char *s, tz_civil_t *out)
{
    memset(out, 0, sizeof(*out));
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (size_t i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return false;
    out->year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    out->month = (s[5] - '0') * 10 + (s[6] - '0');
    out->day = (s[8] - '0') * 10 + (s[9] - '0');
    return out->year >= 1 && tz_valid_date(out->year, out->month, out->day);
}

status_t care_readmissions_period(const calendar_t *calendar, const char *start, const char *end,
                                  readmissions_period_t *out, err_t *err)
{
    memset(out, 0, sizeof(*out));
    const char *names[] = {"periodStart", "periodEnd"};
    const char *values[] = {start, end};
    tz_civil_t dates[2];
    for (int i = 0; i < 2; i++) {
        if (!values[i] || !*values[i])
            return err_set(err, ERR_INVALID, names[i],
                           "the parameter %s is missing: $readmissions needs periodStart and "
                           "periodEnd (dates YYYY-MM-DD, both included)",
                           names[i]);
        if (!parse_date(values[i], &dates[i]))
            return err_set(err, ERR_INVALID, names[i],
                           "the parameter %s (\"%s\") is not a date YYYY-MM-DD", names[i],
                           values[i]);
    }
    const tz_t *zone = calendar_zone(calendar);
    out->start_date = start;
    out->end_date = end;
    out->start_us = tz_from_local(zone, &dates[0], NULL) * 1000000;
    tz_civil_t after = dates[1];
    after.day += 1;
    out->end_us = tz_from_local(zone, &after, NULL) * 1000000;
    if (out->end_us <= out->start_us)
        return err_set(err, ERR_INVALID, names[1],
                       "the parameter periodEnd (%s) is before periodStart (%s)", end, start);
    out->closes_us = calendar_add_days(calendar, out->end_us, CARE_READMISSION_DAYS);
    return ERR_OK;
}

/* ---- counting ----------------------------------------------------------------------------- */

/* A hospital stay by its class code, whatever the system, as transitions.c flags readmissions
 * after them. */
static bool stay_class(const json_t *encounter)
{
    const char *code = care__str(json_object_get(encounter, "class"), "code");
    static const char *const stays[] = {"IMP", "ACUTE", "NONAC", "OBSENC", "SS"};
    for (size_t i = 0; code && i < sizeof(stays) / sizeof(stays[0]); i++)
        if (strcmp(code, stays[i]) == 0)
            return true;
    return false;
}

/* Discharged dead or against medical advice. */
static bool excluded(const json_t *encounter)
{
    size_t i;
    json_t *coding;
    json_array_foreach(
        json_object_get(
            json_object_get(json_object_get(encounter, "hospitalization"), "dischargeDisposition"),
            "coding"),
        i, coding)
    {
        const char *code = care__str(coding, "code");
        if (is(care__str(coding, "system"), DISPOSITION) &&
            (is(code, "exp") || is(code, "aadvice")))
            return true;
    }
    return false;
}

/* Whether a Flag is a readmission Flag that stands. */
static bool readmission_flag(const json_t *flag)
{
    if (!is(care__str(flag, "resourceType"), "Flag") ||
        is(care__str(flag, "status"), "entered-in-error"))
        return false;
    size_t i;
    json_t *ident;
    json_array_foreach(json_object_get(flag, "identifier"), i, ident)
    {
        if (is(care__str(ident, "system"), CARE_READMISSION_SYSTEM))
            return true;
    }
    return false;
}

/* The id of the Encounter a readmission Flag names as the earlier stay ("Encounter/x" or an
 * absolute url ending in "/Encounter/x"), or NULL. */
static const char *earlier_stay(const json_t *flag)
{
    size_t i;
    json_t *ext;
    json_array_foreach(json_object_get(flag, "extension"), i, ext)
    {
        if (!is(care__str(ext, "url"), CARE_EXT_READMISSION))
            continue;
        const char *ref = care__str(json_object_get(ext, "valueReference"), "reference");
        if (!ref)
            return NULL;
        const char *at = strstr(ref, "Encounter/");
        while (at) {
            const char *next = strstr(at + 1, "Encounter/");
            if (!next)
                break;
            at = next;
        }
        if (!at || (at != ref && at[-1] != '/') || strchr(at + 10, '/') || !at[10])
            return NULL;
        return at + 10;
    }
    return NULL;
}

/* A stay or a Flag, by the id of the stay. */
typedef struct {
    const char *stay;
    const json_t *resource;
    int64_t start_us; /* a Flag's period.start */
} keyed_t;

static int compare_keyed(const void *pa, const void *pb)
{
    const keyed_t *a = pa, *b = pb;
    int c = strcmp(a->stay, b->stay);
    return c ? c : a->start_us < b->start_us ? -1 : a->start_us > b->start_us;
}

void care_readmissions_count(const json_t *stays, const json_t *flags,
                             const readmissions_period_t *period, const calendar_t *calendar,
                             arena_t *arena, readmissions_counts_t *out)
{
    memset(out, 0, sizeof(*out));
    /* the stays discharged in the period, by id; the Flags, by the stay they name: both sorted,
       then walked together */
    size_t nstays = 0, nflags = 0;
    keyed_t *in = arena_alloc(arena, (json_array_size(stays) + 1) * sizeof(*in));
    keyed_t *named = arena_alloc(arena, (json_array_size(flags) + 1) * sizeof(*named));
    size_t i;
    json_t *r;
    json_array_foreach(stays, i, r)
    {
        const char *id = care__str(r, "id");
        const char *end_text = care__str(json_object_get(r, "period"), "end");
        int64_t end;
        if (id && stay_class(r) && is(care__str(r, "status"), "finished") && end_text &&
            care_datetime_parse(calendar, end_text, &end) && end >= period->start_us &&
            end < period->end_us)
            in[nstays++] = (keyed_t){id, r, 0};
    }
    json_array_foreach(flags, i, r)
    {
        const char *stay = earlier_stay(r);
        const char *start_text = care__str(json_object_get(r, "period"), "start");
        int64_t start;
        if (!start_text || !care_datetime_parse(calendar, start_text, &start))
            start = INT64_MAX;
        if (stay && care__str(r, "id") && readmission_flag(r))
            named[nflags++] = (keyed_t){stay, r, start};
    }
    qsort(in, nstays, sizeof(*in), compare_keyed);
    qsort(named, nflags, sizeof(*named), compare_keyed);
    out->flags = arena_alloc(arena, (nstays + 1) * sizeof(*out->flags));
    size_t f = 0;
    for (i = 0; i < nstays; i++) {
        /* the same stay twice (a search that returned it twice) counts once */
        if (i && strcmp(in[i].stay, in[i - 1].stay) == 0)
            continue;
        out->initial++;
        if (excluded(in[i].resource)) {
            out->excluded++;
            continue;
        }
        out->denominator++;
        while (f < nflags && strcmp(named[f].stay, in[i].stay) < 0)
            f++;
        if (f < nflags && strcmp(named[f].stay, in[i].stay) == 0) {
            /* the earliest readmission after it */
            out->numerator++;
            out->flags[out->nflags++] =
                arena_printf(arena, "Flag/%s", care__str(named[f].resource, "id"));
        }
    }
}

/* ---- gathering ---------------------------------------------------------------------------- */

/* Every match of search, at most READMISSIONS_MAX_GATHERED. */
static status_t gather(store_conn_t *conn, const repo_search_t *search, const char *what,
                       arena_t *arena, json_t *array, err_t *err)
{
    const char *too_many =
        arena_printf(arena, "the readmission measure reads at most %d %s; ask for a shorter period",
                     READMISSIONS_MAX_GATHERED, what);
    return care__gather(conn, search, READMISSIONS_MAX_GATHERED, too_many, arena, array, err);
}

status_t care_readmissions_gather(store_conn_t *conn, const repo_caller_t *caller,
                                  const readmissions_period_t *period, int64_t now_us,
                                  const char *base, arena_t *arena, json_t **out_stays,
                                  json_t **out_flags, err_t *err)
{
    *out_stays = care__owned(arena, json_array());
    *out_flags = care__owned(arena, json_array());
    fhir_search_pair_t stay_pairs[] = {
        url_pair("status", "finished"),
        url_pair("class", STAY_CLASSES),
        url_pair("date", care__utc_value(arena, "ge", period->start_us)),
        url_pair("date", care__utc_value(arena, "lt", period->end_us)),
        url_pair("_count", "1000"),
    };
    repo_search_t stays = {.type = fhir_resource_type_find("Encounter", 9),
                           .pairs = stay_pairs,
                           .npairs = sizeof(stay_pairs) / sizeof(stay_pairs[0]),
                           .strict = true,
                           .now_us = now_us,
                           .base = base,
                           .caller = caller};
    fhir_search_pair_t flag_pairs[] = {
        url_pair("identifier", CARE_READMISSION_SYSTEM "|"),
        url_pair("_count", "1000"),
    };
    repo_search_t flags = {.type = fhir_resource_type_find("Flag", 4),
                           .pairs = flag_pairs,
                           .npairs = sizeof(flag_pairs) / sizeof(flag_pairs[0]),
                           .strict = true,
                           .now_us = now_us,
                           .base = base,
                           .caller = caller};
    status_t rc = gather(conn, &stays, "stays", arena, *out_stays, err);
    if (!rc)
        rc = gather(conn, &flags, "readmission Flags", arena, *out_flags, err);
    return rc;
}
