/*
 * adt.c - an ADT message into the record (adt.h).
 *
 * Everything is written through repo as the feed's service caller, inside the transaction of
 * the message's processing (ingest.c), in a nested savepoint: a message is applied whole or
 * not at all. The Patient is found by the identifiers of PID-3 (each system worked out from
 * its assigning authority, the sending facility when it names none); the Encounter by the
 * visit number of PV1-19; an encounter diagnosis (a Condition) by an identifier made of the
 * Encounter and the code. A value the message leaves empty keeps what the record holds; the
 * HL7 explicit null ("") removes it.
 *
 * Messages may come out of order: the Encounter keeps the time of the newest event applied to
 * it (EXT/hl7-event-time); an older message fills in what is missing but changes nothing
 * else. An admission never reopens a finished or cancelled stay; only A13 (cancel discharge)
 * reopens one, and only A11 cancels one.
 */
#include "hl7/adt.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/jv.h"
#include "base/url.h"
#include "fhir/defs.h"
#include "repo/repo.h"

#define EXT                "http://concerto.dev/fhir/StructureDefinition/"
#define EXT_EVENT_TIME     EXT "hl7-event-time"
#define SYS_V2(table)      "http://terminology.hl7.org/CodeSystem/v2-" table
#define SYS_ACT_CODE       "http://terminology.hl7.org/CodeSystem/v3-ActCode"
#define SYS_PRIORITY       "http://terminology.hl7.org/CodeSystem/v3-ActPriority"
#define SYS_PARTICIPATION  "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
#define SYS_DISPOSITION    "http://terminology.hl7.org/CodeSystem/discharge-disposition"
#define SYS_DIAGNOSIS_ROLE "http://terminology.hl7.org/CodeSystem/diagnosis-role"
#define SYS_CONDITION_CAT  "http://terminology.hl7.org/CodeSystem/condition-category"
#define SYS_CLINICAL       "http://terminology.hl7.org/CodeSystem/condition-clinical"
#define SYS_VERIFICATION   "http://terminology.hl7.org/CodeSystem/condition-ver-status"
#define SYS_DIAGNOSIS_ID   "urn:concerto:hl7:encounter-diagnosis"
#define SYS_MERGE_FLAG     "urn:concerto:hl7:merge"
#define SYS_FLAG_CATEGORY  "http://terminology.hl7.org/CodeSystem/flag-category"
#define AUTHORITY_PREFIX   "urn:concerto:hl7:authority:"
#define MAX_IDS            16

/* ---- reading values -------------------------------------------------------------------- */

/* A value decoded, or NULL when empty (or absent). */
static const char *val(const hl7_adt_t *a, const hl7_segment_t *seg, size_t field, size_t rep,
                       size_t comp, size_t sub)
{
    if (!seg)
        return NULL;
    const char *s = hl7_get(a->msg, a->arena, seg, field, rep, comp, sub);
    return *s && !hl7_is_null(a->msg, seg, field, rep, comp, sub) ? s : NULL;
}

/* True when the field is the explicit null: remove what the record holds. */
static bool nulled(const hl7_adt_t *a, const hl7_segment_t *seg, size_t field)
{
    return seg && hl7_is_null(a->msg, seg, field, 0, 0, 0);
}

static status_t problem(hl7_adt_t *a, hl7_error_code_t code, const hl7_segment_t *seg, size_t field,
                        err_t *err, status_t status, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
static status_t problem(hl7_adt_t *a, hl7_error_code_t code, const hl7_segment_t *seg, size_t field,
                        err_t *err, status_t status, const char *fmt, ...)
{
    a->problem.code = code;
    memset(&a->problem.where, 0, sizeof(a->problem.where));
    if (seg) {
        memcpy(a->problem.where.segment, seg->id, sizeof(seg->id));
        a->problem.where.sequence = seg->number;
        a->problem.where.offset = seg->offset;
    }
    a->problem.where.field = field;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    return err_set(err, status, NULL, "%s", text);
}

static void release_json(void *p)
{
    json_decref(p);
}

static json_t *owned(arena_t *arena, json_t *v)
{
    if (v)
        arena_cleanup_add(arena, release_json, v);
    return v;
}

static json_t *coding(const char *system, const char *code, const char *display)
{
    json_t *c = json_object();
    if (system)
        json_object_set_new(c, "system", json_string(system));
    json_object_set_new(c, "code", json_string(code));
    if (display)
        json_object_set_new(c, "display", json_string(display));
    return c;
}

static json_t *concept1(const char *system, const char *code, const char *display)
{
    json_t *cc = json_object();
    json_t *codings = json_array();
    json_array_append_new(codings, coding(system, code, display));
    json_object_set_new(cc, "coding", codings);
    return cc;
}

/* ---- times ------------------------------------------------------------------------------ */

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

static int num(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

bool hl7_dtm_to_fhir(const char *s, const tz_t *zone, arena_t *arena, const char **out,
                     int64_t *out_us)
{
    size_t len = strlen(s), body = len;
    const char *offset = NULL;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '+' || s[i] == '-') {
            offset = s + i;
            body = i;
            break;
        }
    if (offset && (strlen(offset) != 5 || !digits(offset + 1, 4)))
        return false;
    /* the digits (and a fraction after seconds) */
    size_t whole = body;
    const char *dot = memchr(s, '.', body);
    if (dot)
        whole = (size_t)(dot - s);
    if (!(whole == 4 || whole == 6 || whole == 8 || whole == 10 || whole == 12 || whole == 14) ||
        !digits(s, whole))
        return false;
    if (dot && (whole != 14 || body - whole < 2 || !digits(dot + 1, body - whole - 1)))
        return false;
    int year = num(s, 4), month = whole >= 6 ? num(s + 4, 2) : 1,
        day = whole >= 8 ? num(s + 6, 2) : 1;
    int hour = whole >= 10 ? num(s + 8, 2) : 0, minute = whole >= 12 ? num(s + 10, 2) : 0;
    int second = whole >= 14 ? num(s + 12, 2) : 0;
    if (month < 1 || month > 12 || !tz_valid_date(year, month, day) || hour > 23 || minute > 59 ||
        second > 59)
        return false;
    int64_t micros = 0;
    if (dot) {
        size_t n = body - whole - 1;
        for (size_t i = 0; i < 6; i++)
            micros = micros * 10 + (i < n ? dot[1 + i] - '0' : 0);
    }
    if (whole <= 8) {
        /* a date (or year, year and month) */
        if (whole == 4)
            *out = arena_printf(arena, "%04d", year);
        else if (whole == 6)
            *out = arena_printf(arena, "%04d-%02d", year, month);
        else
            *out = arena_printf(arena, "%04d-%02d-%02d", year, month, day);
        tz_civil_t local = {.year = year, .month = month, .day = day};
        if (out_us)
            *out_us = tz_from_local(zone, &local, NULL);
        return true;
    }
    int32_t off_s;
    int64_t t;
    int64_t days = tz_days_from_civil(year, month, day);
    int64_t civil_s = days * 86400 + hour * 3600 + minute * 60 + second;
    if (offset) {
        off_s = (num(offset + 1, 2) * 3600 + num(offset + 3, 2) * 60) * (offset[0] == '-' ? -1 : 1);
        t = (civil_s - off_s) * 1000000 + micros;
    } else {
        tz_civil_t local = {.year = year,
                            .month = month,
                            .day = day,
                            .hour = hour,
                            .minute = minute,
                            .second = second};
        t = tz_from_local(zone, &local, NULL) + micros;
        off_s = tz_offset_at(zone, t);
    }
    int32_t a_off = off_s < 0 ? -off_s : off_s;
    char frac[16] = "";
    if (dot)
        snprintf(frac, sizeof(frac), ".%03d", (int)(micros / 1000));
    *out = arena_printf(arena, "%04d-%02d-%02dT%02d:%02d:%02d%s%c%02d:%02d", year, month, day, hour,
                        minute, second, frac, off_s < 0 ? '-' : '+', a_off / 3600,
                        (a_off % 3600) / 60);
    if (out_us)
        *out_us = t;
    return true;
}

/* ---- identifiers ----------------------------------------------------------------------- */

const char *hl7_authority_system(const char *namespace_id, const char *universal_id,
                                 const char *universal_type, arena_t *arena)
{
    if (universal_id && *universal_id) {
        const char *type = universal_type ? universal_type : "";
        if (strcasecmp(type, "ISO") == 0)
            return arena_printf(arena, "urn:oid:%s", universal_id);
        if (strcasecmp(type, "UUID") == 0)
            return arena_printf(arena, "urn:uuid:%s", universal_id);
        if (strcasecmp(type, "URI") == 0 || strcasecmp(type, "URL") == 0)
            return arena_strdup(arena, universal_id);
    }
    const char *name = namespace_id && *namespace_id ? namespace_id : universal_id;
    if (!name || !*name)
        return NULL;
    buf_t b = BUF_INIT;
    buf_addstr(&b, AUTHORITY_PREFIX);
    url_encode(&b, name);
    const char *system = arena_strndup(arena, b.ptr, b.len);
    buf_release(&b);
    return system;
}

/* The system of a CX's assigning authority (component 4), or of the sending facility. */
static const char *cx_system(hl7_adt_t *a, const hl7_segment_t *seg, size_t field, size_t rep)
{
    const char *system =
        hl7_authority_system(val(a, seg, field, rep, 4, 1), val(a, seg, field, rep, 4, 2),
                             val(a, seg, field, rep, 4, 3), a->arena);
    if (system)
        return system;
    const hl7_segment_t *msh = hl7_segment(a->msg, "MSH", 0);
    system = hl7_authority_system(val(a, msh, 4, 0, 1, 0), val(a, msh, 4, 0, 2, 0),
                                  val(a, msh, 4, 0, 3, 0), a->arena);
    return system ? system : AUTHORITY_PREFIX "unknown";
}

typedef struct {
    const char *system, *value, *type;
} ident_t;

/* The identifiers of a CX field (PID-3, MRG-1), Social Security numbers left out. */
static size_t cx_list(hl7_adt_t *a, const hl7_segment_t *seg, size_t field, ident_t *out,
                      size_t max)
{
    size_t n = 0, reps = seg ? hl7_repetitions(a->msg, seg, field) : 0;
    for (size_t r = 0; r < reps && n < max; r++) {
        const char *value = val(a, seg, field, r, 1, 0);
        const char *type = val(a, seg, field, r, 5, 0);
        if (!value || (type && strcmp(type, "SS") == 0))
            continue;
        out[n++] = (ident_t){cx_system(a, seg, field, r), value, type};
    }
    return n;
}

static json_t *identifier_json(const ident_t *id, const char *use)
{
    json_t *o = json_object();
    if (use)
        json_object_set_new(o, "use", json_string(use));
    if (id->type)
        json_object_set_new(o, "type", concept1(SYS_V2("0203"), id->type, NULL));
    json_object_set_new(o, "system", json_string(id->system));
    json_object_set_new(o, "value", json_string(id->value));
    return o;
}

static bool has_identifier(const json_t *resource, const char *system, const char *value)
{
    size_t i;
    json_t *id;
    json_array_foreach(json_object_get(resource, "identifier"), i, id)
    {
        const char *s = json_string_value(json_object_get(id, "system"));
        const char *v = json_string_value(json_object_get(id, "value"));
        if (s && v && strcmp(s, system) == 0 && strcmp(v, value) == 0)
            return true;
    }
    return false;
}

/* ---- the record ------------------------------------------------------------------------- */

typedef struct {
    const char *id;
    int64_t version; /* 0: none */
    json_t *json;    /* parsed, owned by the arena */
} found_t;

/* The resources of type with identifier system|value (up to max): inside txn, or, planning
 * (txn NULL), on the connection, remembering a search that found none. */
static status_t find_by_identifier(hl7_adt_t *a, store_txn_t *txn, const char *type,
                                   const char *system, const char *value, found_t *out, size_t max,
                                   size_t *out_n, err_t *err)
{
    *out_n = 0;
    const char *token = arena_printf(a->arena, "%s|%s", system, value);
    fhir_search_pair_t pairs[] = {url_pair("identifier", token), url_pair("_count", "10")};
    repo_search_t s = {.type = fhir_resource_type_find(type, strlen(type)),
                       .pairs = pairs,
                       .npairs = 2,
                       .now_us = txn ? store_txn_time_us(txn) : a->now_us};
    fhir_search_plan_t *plan;
    store_search_t query;
    store_search_result_t found;
    status_t rc = repo_search_plan(a->conn, &s, a->arena, &plan, &query, err);
    if (!rc)
        rc = txn ? store_txn_search(txn, &query, a->arena, &found, err)
                 : store_search(a->conn, &query, a->arena, &found, err);
    if (!rc && !txn && found.nmatch == 0) {
        /* planned on a snapshot: the commit checks that it is still absent */
        if (a->nabsent == a->absent_cap) {
            a->absent_cap = a->absent_cap ? 2 * a->absent_cap : 8;
            hl7_absent_t *grown = arena_alloc(a->arena, a->absent_cap * sizeof(*grown));
            if (a->nabsent)
                memcpy(grown, a->absent, a->nabsent * sizeof(*grown));
            a->absent = grown;
        }
        a->absent[a->nabsent++] = (hl7_absent_t){type, query};
    }
    for (size_t i = 0; !rc && i < found.nmatch && *out_n < max; i++) {
        const store_version_t *v = &found.entries[i].version;
        json_t *json = owned(a->arena, jv_parse(v->json, v->json_len, err));
        if (!json)
            return err->code;
        out[(*out_n)++] = (found_t){v->id, v->version, json};
    }
    return rc;
}

static status_t read_current(hl7_adt_t *a, store_txn_t *txn, const char *type, const char *id,
                             found_t *out, err_t *err)
{
    store_version_t v;
    status_t rc = txn ? store_txn_read(txn, type, id, 0, a->arena, &v, err)
                      : store_read(a->conn, type, id, 0, a->arena, &v, err);
    if (rc == ERR_NOT_FOUND || rc == ERR_GONE || (!rc && v.deleted)) {
        err_reset(err);
        *out = (found_t){0};
        return ERR_OK;
    }
    if (rc)
        return rc;
    json_t *json = owned(a->arena, jv_parse(v.json, v.json_len, err));
    if (!json)
        return err->code;
    *out = (found_t){v.id, v.version, json};
    return ERR_OK;
}

/* Writes resource (a new one when f->version is 0) as the feed; f gets the stored version.
 * Planning (txn NULL), the write is prepared and kept for the commit, and f gets the version
 * it will have. */
static status_t write(hl7_adt_t *a, store_txn_t *txn, const char *type, found_t *f,
                      json_t *resource, err_t *err)
{
    repo_write_t w;
    bool create = f->version == 0;
    const char *id = f->id ? f->id : repo_new_id(a->arena);
    json_object_set_new(resource, "resourceType", json_string(type));
    json_object_set_new(resource, "id", json_string(id));
    json_object_del(resource, "meta");
    status_t rc = repo_prepare_resource(&w, create ? REPO_CREATE : REPO_UPDATE, resource, id,
                                        create ? 0 : f->version, a->arena, err);
    if (rc)
        return rc;
    w.caller = a->caller;
    w.access_ready = true; /* a service: nothing is hidden from it */
    f->id = id;
    f->json = resource;
    if (!txn) {
        if (a->nwrites == HL7_MAX_WRITES)
            return err_set(err, ERR_INVALID, NULL, "the message would make more than %d writes",
                           HL7_MAX_WRITES);
        a->writes[a->nwrites++] = w;
        f->version++;
        return ERR_OK;
    }
    if ((rc = repo_write_txn(txn, &w, err)))
        return rc;
    f->version = w.result.version;
    return ERR_OK;
}

/* ---- the Patient ------------------------------------------------------------------------ */

static const char *name_use(const char *code)
{
    static const char *const map[][2] = {{"L", "official"},  {"D", "usual"},     {"M", "maiden"},
                                         {"N", "nickname"},  {"A", "anonymous"}, {"B", "official"},
                                         {"C", "official"},  {"U", "temp"},      {"T", "temp"},
                                         {"S", "anonymous"}, {"P", "usual"}};
    for (size_t i = 0; code && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(code, map[i][0]) == 0)
            return map[i][1];
    return "official";
}

/* PID-5: the names, each with its use (legal when the message says none). */
static json_t *names_of(hl7_adt_t *a, const hl7_segment_t *pid)
{
    json_t *names = json_array();
    size_t reps = hl7_repetitions(a->msg, pid, 5);
    for (size_t r = 0; r < reps; r++) {
        const char *family = val(a, pid, 5, r, 1, 1);
        const char *given = val(a, pid, 5, r, 2, 0), *middle = val(a, pid, 5, r, 3, 0);
        if (!family && !given)
            continue;
        json_t *n = json_object();
        json_object_set_new(n, "use", json_string(name_use(val(a, pid, 5, r, 7, 0))));
        if (family)
            json_object_set_new(n, "family", json_string(family));
        if (given || middle) {
            json_t *g = json_array();
            if (given)
                json_array_append_new(g, json_string(given));
            if (middle)
                json_array_append_new(g, json_string(middle));
            json_object_set_new(n, "given", g);
        }
        const char *suffix = val(a, pid, 5, r, 4, 0), *prefix = val(a, pid, 5, r, 5, 0);
        if (suffix)
            json_object_set_new(n, "suffix", json_pack("[s]", suffix));
        if (prefix)
            json_object_set_new(n, "prefix", json_pack("[s]", prefix));
        json_array_append_new(names, n);
    }
    return names;
}

static const char *address_use(const char *code)
{
    if (!code)
        return "home";
    if (strcmp(code, "B") == 0 || strcmp(code, "O") == 0)
        return "work";
    if (strcmp(code, "C") == 0 || strcmp(code, "TMP") == 0)
        return "temp";
    if (strcmp(code, "BA") == 0 || strcmp(code, "OLD") == 0)
        return "old";
    return "home"; /* H, M (mailing), P (permanent), and the rest */
}

/* PID-11: the addresses. */
static json_t *addresses_of(hl7_adt_t *a, const hl7_segment_t *pid)
{
    json_t *list = json_array();
    size_t reps = hl7_repetitions(a->msg, pid, 11);
    for (size_t r = 0; r < reps; r++) {
        const char *line1 = val(a, pid, 11, r, 1, 1), *line2 = val(a, pid, 11, r, 2, 0);
        const char *city = val(a, pid, 11, r, 3, 0), *state = val(a, pid, 11, r, 4, 0);
        const char *zip = val(a, pid, 11, r, 5, 0), *country = val(a, pid, 11, r, 6, 0);
        if (!line1 && !line2 && !city && !state && !zip)
            continue;
        json_t *o = json_object();
        const char *type = val(a, pid, 11, r, 7, 0);
        json_object_set_new(o, "use", json_string(address_use(type)));
        if (type && strcmp(type, "M") == 0)
            json_object_set_new(o, "type", json_string("postal"));
        if (line1 || line2) {
            json_t *lines = json_array();
            if (line1)
                json_array_append_new(lines, json_string(line1));
            if (line2)
                json_array_append_new(lines, json_string(line2));
            json_object_set_new(o, "line", lines);
        }
        if (city)
            json_object_set_new(o, "city", json_string(city));
        if (state)
            json_object_set_new(o, "state", json_string(state));
        if (zip)
            json_object_set_new(o, "postalCode", json_string(zip));
        if (country)
            json_object_set_new(o, "country", json_string(country));
        json_array_append_new(list, o);
    }
    return list;
}

/* PID-13 (home) and PID-14 (work): phones and e-mail addresses. */
static void telecoms_of(hl7_adt_t *a, const hl7_segment_t *pid, size_t field, const char *use,
                        json_t *list)
{
    size_t reps = hl7_repetitions(a->msg, pid, field);
    for (size_t r = 0; r < reps; r++) {
        const char *equipment = val(a, pid, field, r, 3, 0);
        const char *email = val(a, pid, field, r, 4, 0);
        const char *number = val(a, pid, field, r, 1, 0);
        const char *area = val(a, pid, field, r, 6, 0), *local = val(a, pid, field, r, 7, 0);
        const char *use_code = val(a, pid, field, r, 2, 0);
        json_t *o = json_object();
        if (email || (equipment && strcmp(equipment, "Internet") == 0)) {
            json_object_set_new(o, "system", json_string("email"));
            json_object_set_new(o, "value", json_string(email ? email : number ? number : ""));
        } else {
            const char *system = equipment && strcmp(equipment, "FX") == 0   ? "fax"
                                 : equipment && strcmp(equipment, "BP") == 0 ? "pager"
                                                                             : "phone";
            json_object_set_new(o, "system", json_string(system));
            const char *value = number;
            if (!value && local)
                value = area ? arena_printf(a->arena, "(%s) %s", area, local) : local;
            json_object_set_new(o, "value", json_string(value ? value : ""));
        }
        const char *u = use;
        if (equipment && strcmp(equipment, "CP") == 0)
            u = "mobile";
        else if (use_code && strcmp(use_code, "WPN") == 0)
            u = "work";
        json_object_set_new(o, "use", json_string(u));
        if (*json_string_value(json_object_get(o, "value")))
            json_array_append_new(list, o);
        else
            json_decref(o);
    }
}

/* Replaces the members of list whose `key` equals that of a member of fresh, and adds the rest
 * of fresh: what the feed sends replaces its own kind, other entries (a mobile number a
 * coordinator added) stay. */
static const char *member_or(const json_t *o, const char *key, const char *fallback)
{
    const char *v = key ? json_string_value(json_object_get(o, key)) : NULL;
    return v ? v : fallback;
}

static json_t *merge_by(json_t *old, json_t *fresh, const char *key, const char *key2,
                        const char *fallback)
{
    json_t *out = json_array();
    size_t i, j;
    json_t *o, *f;
    json_array_foreach(old, i, o)
    {
        bool replaced = false;
        json_array_foreach(fresh, j, f)
        {
            const char *a1 = member_or(o, key, key2 ? NULL : fallback);
            const char *b1 = member_or(f, key, key2 ? NULL : fallback);
            const char *a2 = member_or(o, key2, fallback);
            const char *b2 = member_or(f, key2, fallback);
            if (a1 && b1 && strcmp(a1, b1) == 0 && (!key2 || (a2 && b2 && strcmp(a2, b2) == 0)))
                replaced = true;
        }
        if (!replaced)
            json_array_append(out, o);
    }
    json_array_extend(out, fresh);
    return out;
}

static const char *gender_of(const char *code)
{
    if (!code)
        return NULL;
    switch (code[0]) {
    case 'M': return "male";
    case 'F': return "female";
    case 'O':
    case 'A': return "other";
    case 'U':
    case 'N': return "unknown";
    }
    return NULL;
}

/* PID's demographics onto patient (a new one or the record's). */
static status_t apply_pid(hl7_adt_t *a, const hl7_segment_t *pid, json_t *patient,
                          const ident_t *ids, size_t nids, err_t *err)
{
    for (size_t i = 0; i < nids; i++)
        if (!has_identifier(patient, ids[i].system, ids[i].value)) {
            json_t *list = json_object_get(patient, "identifier");
            if (!list) {
                list = json_array();
                json_object_set_new(patient, "identifier", list);
            }
            json_array_append_new(list, identifier_json(&ids[i], "usual"));
        }
    json_t *names = names_of(a, pid);
    if (json_array_size(names))
        json_object_set_new(
            patient, "name",
            merge_by(json_object_get(patient, "name"), names, "use", NULL, "official"));
    json_decref(names);

    const char *sex = val(a, pid, 8, 0, 1, 0);
    if (sex) {
        const char *gender = gender_of(sex);
        if (!gender)
            return problem(a, HL7_ERR_TABLE_VALUE, pid, 8, err, ERR_CODE_INVALID,
                           "PID-8 administrative sex \"%s\" is not one of M, F, O, U, A, N", sex);
        json_object_set_new(patient, "gender", json_string(gender));
    } else if (nulled(a, pid, 8))
        json_object_del(patient, "gender");

    const char *birth = val(a, pid, 7, 0, 1, 0);
    if (birth) {
        const char *date;
        char day[16];
        snprintf(day, sizeof(day), "%.8s", birth);
        if (!hl7_dtm_to_fhir(day, a->zone, a->arena, &date, NULL))
            return problem(a, HL7_ERR_DATA_TYPE, pid, 7, err, ERR_VALUE,
                           "PID-7 date of birth \"%s\" is not a date (YYYYMMDD)", birth);
        json_object_set_new(patient, "birthDate", json_string(date));
    } else if (nulled(a, pid, 7))
        json_object_del(patient, "birthDate");

    json_t *addresses = addresses_of(a, pid);
    if (json_array_size(addresses))
        json_object_set_new(
            patient, "address",
            merge_by(json_object_get(patient, "address"), addresses, "use", NULL, "home"));
    else if (nulled(a, pid, 11))
        json_object_del(patient, "address");
    json_decref(addresses);

    json_t *telecom = json_array();
    telecoms_of(a, pid, 13, "home", telecom);
    telecoms_of(a, pid, 14, "work", telecom);
    if (json_array_size(telecom))
        json_object_set_new(
            patient, "telecom",
            merge_by(json_object_get(patient, "telecom"), telecom, "system", "use", "home"));
    json_decref(telecom);

    const char *language = val(a, pid, 15, 0, 1, 0);
    if (language) {
        json_t *comm = json_object();
        json_object_set_new(comm, "language",
                            concept1("urn:ietf:bcp:47", language, val(a, pid, 15, 0, 2, 0)));
        json_object_set_new(comm, "preferred", json_true());
        json_object_set_new(patient, "communication", json_pack("[o]", comm));
    }

    const char *death = val(a, pid, 29, 0, 1, 0), *dead = val(a, pid, 30, 0, 1, 0);
    if (death) {
        const char *when;
        if (!hl7_dtm_to_fhir(death, a->zone, a->arena, &when, NULL))
            return problem(a, HL7_ERR_DATA_TYPE, pid, 29, err, ERR_VALUE,
                           "PID-29 death date and time \"%s\" is not a date and time", death);
        json_object_del(patient, "deceasedBoolean");
        json_object_set_new(patient, "deceasedDateTime", json_string(when));
    } else if (dead && (dead[0] == 'Y' || dead[0] == 'N')) {
        json_object_del(patient, "deceasedDateTime");
        json_object_set_new(patient, "deceasedBoolean", json_boolean(dead[0] == 'Y'));
    }
    if (!json_object_get(patient, "active"))
        json_object_set_new(patient, "active", json_true());
    return ERR_OK;
}

/* The Patient a linked record was replaced by (Patient.link type replaced-by), or NULL. */
static const char *replaced_by(const json_t *patient)
{
    size_t i;
    json_t *link;
    json_array_foreach(json_object_get(patient, "link"), i, link)
    {
        const char *type = json_string_value(json_object_get(link, "type"));
        const char *ref =
            json_string_value(json_object_get(json_object_get(link, "other"), "reference"));
        if (type && ref && strcmp(type, "replaced-by") == 0 && strncmp(ref, "Patient/", 8) == 0)
            return ref + 8;
    }
    return NULL;
}

/* The one Patient the identifiers name (following merges), or none (*out zeroed). */
static status_t match_patient(hl7_adt_t *a, store_txn_t *txn, const hl7_segment_t *seg,
                              size_t field, const ident_t *ids, size_t nids, found_t *out,
                              err_t *err)
{
    *out = (found_t){0};
    for (size_t i = 0; i < nids; i++) {
        found_t hits[4];
        size_t n;
        status_t rc =
            find_by_identifier(a, txn, "Patient", ids[i].system, ids[i].value, hits, 4, &n, err);
        if (rc)
            return rc;
        for (size_t k = 0; k < n; k++) {
            found_t p = hits[k];
            /* a merged record leads to the one that replaced it (a few hops at most) */
            for (int hop = 0; hop < 4 && replaced_by(p.json); hop++) {
                found_t next;
                if ((rc = read_current(a, txn, "Patient", replaced_by(p.json), &next, err)))
                    return rc;
                if (!next.version)
                    break;
                p = next;
            }
            if (out->version && strcmp(out->id, p.id) != 0)
                return problem(a, HL7_ERR_DUPLICATE_KEY, seg, field, err, ERR_MULTIPLE_MATCHES,
                               "%s-%zu identifiers match more than one patient (Patient/%s and "
                               "Patient/%s)",
                               seg->id, field, out->id, p.id);
            *out = p;
        }
    }
    return ERR_OK;
}

static const char *patient_ref(hl7_adt_t *a, const found_t *p)
{
    return arena_printf(a->arena, "Patient/%s", p->id);
}

/* PID: the Patient found or made, its demographics updated when the message carries them. */
static status_t upsert_patient(hl7_adt_t *a, store_txn_t *txn, found_t *patient, err_t *err)
{
    const hl7_segment_t *pid = hl7_segment(a->msg, "PID", 0);
    if (!pid)
        return problem(a, HL7_ERR_SEGMENT_SEQUENCE, hl7_segment(a->msg, "MSH", 0), 0, err,
                       ERR_REQUIRED, "the message has no PID segment");
    ident_t ids[MAX_IDS];
    size_t nids = cx_list(a, pid, 3, ids, MAX_IDS);
    if (nids == 0)
        nids = cx_list(a, pid, 2, ids, MAX_IDS); /* v2.3's external id */
    if (nids == 0)
        return problem(a, HL7_ERR_REQUIRED_MISSING, pid, 3, err, ERR_REQUIRED,
                       "PID-3 has no patient identifier");
    status_t rc = match_patient(a, txn, pid, 3, ids, nids, patient, err);
    if (rc)
        return rc;
    json_t *json = patient->version ? json_deep_copy(patient->json) : json_object();
    owned(a->arena, json);
    if ((rc = apply_pid(a, pid, json, ids, nids, err)))
        return rc;
    if (patient->version && json_equal(json, patient->json))
        return ERR_OK; /* nothing new */
    return write(a, txn, "Patient", patient, json, err);
}

/* A40: the Patient of MRG-1 is merged into that of PID-3. */
static status_t merge_patients(hl7_adt_t *a, store_txn_t *txn, found_t *survivor, err_t *err)
{
    const hl7_segment_t *mrg = hl7_segment(a->msg, "MRG", 0);
    if (!mrg)
        return problem(a, HL7_ERR_SEGMENT_SEQUENCE, hl7_segment(a->msg, "PID", 0), 0, err,
                       ERR_REQUIRED, "an A40 needs an MRG segment naming the patient merged");
    ident_t ids[MAX_IDS];
    size_t nids = cx_list(a, mrg, 1, ids, MAX_IDS);
    if (nids == 0)
        return problem(a, HL7_ERR_REQUIRED_MISSING, mrg, 1, err, ERR_REQUIRED,
                       "MRG-1 has no prior patient identifier");
    status_t rc = upsert_patient(a, txn, survivor, err);
    if (rc)
        return rc;
    /* the prior record, searched without following merges */
    found_t prior = {0};
    for (size_t i = 0; i < nids && !prior.version; i++) {
        found_t hits[4];
        size_t n;
        if ((rc = find_by_identifier(a, txn, "Patient", ids[i].system, ids[i].value, hits, 4, &n,
                                     err)))
            return rc;
        for (size_t k = 0; k < n; k++)
            if (strcmp(hits[k].id, survivor->id) != 0) {
                prior = hits[k];
                break;
            }
    }
    /* the survivor answers to the prior identifiers from now on */
    json_t *s = owned(a->arena, json_deep_copy(survivor->json));
    json_t *list = json_object_get(s, "identifier");
    for (size_t i = 0; i < nids; i++)
        if (!has_identifier(s, ids[i].system, ids[i].value))
            json_array_append_new(list, identifier_json(&ids[i], "old"));
    if (prior.version) {
        const char *prior_ref = patient_ref(a, &prior);
        bool linked = false;
        size_t i;
        json_t *link;
        json_array_foreach(json_object_get(s, "link"), i, link)
        {
            const char *ref =
                json_string_value(json_object_get(json_object_get(link, "other"), "reference"));
            linked |= ref && strcmp(ref, prior_ref) == 0;
        }
        if (!linked) {
            if (!json_object_get(s, "link"))
                json_object_set_new(s, "link", json_array());
            json_array_append_new(
                json_object_get(s, "link"),
                json_pack("{s{ss}ss}", "other", "reference", prior_ref, "type", "replaces"));
        }
        json_t *p = owned(a->arena, json_deep_copy(prior.json));
        if (!replaced_by(p)) {
            if (!json_object_get(p, "link"))
                json_object_set_new(p, "link", json_array());
            json_array_append_new(json_object_get(p, "link"),
                                  json_pack("{s{ss}ss}", "other", "reference",
                                            patient_ref(a, survivor), "type", "replaced-by"));
        }
        json_object_set_new(p, "active", json_false());
        if (!json_equal(p, prior.json) && (rc = write(a, txn, "Patient", &prior, p, err)))
            return rc;
    }
    if (!json_equal(s, survivor->json) && (rc = write(a, txn, "Patient", survivor, s, err)))
        return rc;
    if (!prior.version)
        return ERR_OK;
    /* the care teams of both records see it: a flag on each */
    const char *facility = val(a, hl7_segment(a->msg, "MSH", 0), 4, 0, 1, 0);
    const char *texts[2] = {
        arena_printf(a->arena,
                     "Merged record: the hospital (%s) merged Patient/%s into this record; what "
                     "the care team keeps on Patient/%s (care team, care plan, tasks) is to be "
                     "reviewed",
                     facility ? facility : "ADT A40", prior.id, prior.id),
        arena_printf(a->arena,
                     "Merged record: the hospital (%s) merged this record into Patient/%s, which "
                     "replaces it; move what the care team keeps here to that record",
                     facility ? facility : "ADT A40", survivor->id)};
    const found_t *who[2] = {survivor, &prior};
    for (int i = 0; i < 2; i++) {
        const char *key = arena_printf(a->arena, "%s-%s-%d", prior.id, survivor->id, i);
        found_t hits[1];
        size_t n;
        if ((rc = find_by_identifier(a, txn, "Flag", SYS_MERGE_FLAG, key, hits, 1, &n, err)))
            return rc;
        if (n)
            continue;
        json_t *flag = owned(a->arena, json_object());
        json_object_set_new(flag, "identifier",
                            json_pack("[{ssss}]", "system", SYS_MERGE_FLAG, "value", key));
        json_object_set_new(flag, "status", json_string("active"));
        json_object_set_new(
            flag, "category",
            json_pack("[o]", concept1(SYS_FLAG_CATEGORY, "admin", "Administrative")));
        json_object_set_new(flag, "code", json_pack("{ss}", "text", texts[i]));
        json_object_set_new(flag, "subject",
                            json_pack("{ss}", "reference", patient_ref(a, who[i])));
        json_object_set_new(flag, "period", json_pack("{ss}", "start", a->now_text));
        found_t none = {0};
        if ((rc = write(a, txn, "Flag", &none, flag, err)))
            return rc;
    }
    return ERR_OK;
}

/* ---- the Encounter ---------------------------------------------------------------------- */

static json_t *class_of(const char *pv1_2, const char *patient_type)
{
    if (patient_type && strcasecmp(patient_type, "OBS") == 0)
        return coding(SYS_ACT_CODE, "OBSENC", "observation encounter");
    static const char *const map[][3] = {
        {"E", "EMER", "emergency"},          {"I", "IMP", "inpatient encounter"},
        {"B", "IMP", "inpatient encounter"}, {"O", "AMB", "ambulatory"},
        {"R", "AMB", "ambulatory"},          {"P", "PRENC", "pre-admission"}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(pv1_2, map[i][0]) == 0)
            return coding(SYS_ACT_CODE, map[i][1], map[i][2]);
    return coding(SYS_V2("0004"), pv1_2, NULL);
}

static const char *priority_of(const char *pv1_4)
{
    static const char *const map[][2] = {{"E", "EM"}, {"A", "EM"}, {"U", "UR"},
                                         {"L", "UR"}, {"R", "R"},  {"C", "EL"}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(pv1_4, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

/* PV1-36 (HL7 table 0112) as the FHIR discharge-disposition code. */
static const char *disposition_of(const char *code)
{
    static const char *const map[][2] = {
        {"01", "home"}, {"06", "home"},      {"08", "home"},      {"02", "hosp"},
        {"03", "snf"},  {"04", "other-hcf"}, {"05", "other-hcf"}, {"07", "aadvice"},
        {"09", "oth"},  {"20", "exp"},       {"40", "exp"},       {"41", "exp"},
        {"42", "exp"},  {"43", "hosp"},      {"50", "alt-home"},  {"51", "other-hcf"},
        {"61", "snf"},  {"62", "rehab"},     {"63", "long"},      {"64", "snf"},
        {"65", "psy"},  {"66", "hosp"},      {"70", "other-hcf"}};
    char two[3] = {0};
    if (strlen(code) == 1) {
        two[0] = '0';
        two[1] = code[0];
        code = two;
    }
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(code, map[i][0]) == 0)
            return map[i][1];
    return "oth";
}

/* PV1-3: "4N, room 412, bed B (GENHOSP)". */
static const char *location_of(hl7_adt_t *a, const hl7_segment_t *pv1)
{
    const char *unit = val(a, pv1, 3, 0, 1, 0), *room = val(a, pv1, 3, 0, 2, 0);
    const char *bed = val(a, pv1, 3, 0, 3, 0), *facility = val(a, pv1, 3, 0, 4, 1);
    const char *building = val(a, pv1, 3, 0, 7, 0), *floor = val(a, pv1, 3, 0, 8, 0);
    if (!unit && !room && !bed)
        return NULL;
    buf_t b = BUF_INIT;
    if (building)
        buf_addf(&b, "building %s, ", building);
    if (floor)
        buf_addf(&b, "floor %s, ", floor);
    if (unit)
        buf_addf(&b, "%s, ", unit);
    if (room)
        buf_addf(&b, "room %s, ", room);
    if (bed)
        buf_addf(&b, "bed %s, ", bed);
    buf_setlen(&b, b.len - 2);
    if (facility)
        buf_addf(&b, " (%s)", facility);
    const char *s = arena_strndup(a->arena, b.ptr, b.len);
    buf_release(&b);
    return s;
}

/* An XCN (a doctor of PV1-7, -8, -17) as a participant with its type. */
static json_t *participant_of(hl7_adt_t *a, const hl7_segment_t *pv1, size_t field,
                              const char *type, const char *display)
{
    const char *id = val(a, pv1, field, 0, 1, 0), *family = val(a, pv1, field, 0, 2, 1);
    const char *given = val(a, pv1, field, 0, 3, 0), *prefix = val(a, pv1, field, 0, 6, 0);
    if (!id && !family)
        return NULL;
    json_t *who = json_object();
    if (family || given) {
        const char *name =
            arena_printf(a->arena, "%s%s%s%s%s", prefix ? prefix : "", prefix ? " " : "",
                         given ? given : "", given && family ? " " : "", family ? family : "");
        json_object_set_new(who, "display", json_string(name));
    }
    if (id) {
        json_t *ident = json_object();
        json_object_set_new(ident, "system", json_string(cx_system(a, pv1, field, 0)));
        json_object_set_new(ident, "value", json_string(id));
        json_object_set_new(who, "identifier", ident);
    }
    json_t *p = json_object();
    json_object_set_new(p, "type", json_pack("[o]", concept1(SYS_PARTICIPATION, type, display)));
    json_object_set_new(p, "individual", who);
    return p;
}

/* The time of the event: EVN-2 (recorded), else MSH-7; 0 when neither reads. */
static int64_t event_time(hl7_adt_t *a, const char **out_text)
{
    const hl7_segment_t *evn = hl7_segment(a->msg, "EVN", 0);
    const hl7_segment_t *msh = hl7_segment(a->msg, "MSH", 0);
    const char *candidates[] = {val(a, evn, 6, 0, 1, 0), val(a, evn, 2, 0, 1, 0),
                                val(a, msh, 7, 0, 1, 0)};
    for (size_t i = 0; i < 3; i++) {
        int64_t us;
        if (candidates[i] && hl7_dtm_to_fhir(candidates[i], a->zone, a->arena, out_text, &us))
            return us;
    }
    *out_text = NULL;
    return 0;
}

static int64_t stored_event_time(hl7_adt_t *a, const json_t *encounter)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(encounter, "extension"), i, e)
    {
        const char *url = json_string_value(json_object_get(e, "url"));
        const char *when = json_string_value(json_object_get(e, "valueDateTime"));
        int64_t us, high;
        if (url && when && strcmp(url, EXT_EVENT_TIME) == 0 &&
            fhir_date_range(when, strlen(when), &us, &high, NULL, NULL))
            return us;
    }
    (void)a;
    return 0;
}

static void set_event_time(json_t *encounter, const char *when)
{
    json_t *list = json_object_get(encounter, "extension");
    json_t *keep = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        const char *url = json_string_value(json_object_get(e, "url"));
        if (!url || strcmp(url, EXT_EVENT_TIME) != 0)
            json_array_append(keep, e);
    }
    json_array_append_new(keep, json_pack("{ssss}", "url", EXT_EVENT_TIME, "valueDateTime", when));
    json_object_set_new(encounter, "extension", keep);
}

/* A time field of PV1 (44, 45) as a FHIR dateTime, NULL when empty; an error when unreadable. */
static status_t pv1_time(hl7_adt_t *a, const hl7_segment_t *pv1, size_t field, const char **out,
                         int64_t *out_us, err_t *err)
{
    *out = NULL;
    const char *s = val(a, pv1, field, 0, 1, 0);
    if (s && !hl7_dtm_to_fhir(s, a->zone, a->arena, out, out_us))
        return problem(a, HL7_ERR_DATA_TYPE, pv1, field, err, ERR_VALUE,
                       "PV1-%zu \"%s\" is not a date and time (YYYYMMDDHHMM[SS][+ZZZZ])", field, s);
    return ERR_OK;
}

static json_t *object_at(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_object(v)) {
        v = json_object();
        json_object_set_new(o, key, v);
    }
    return v;
}

/* The diagnoses of the DG1 segments: a Condition each (found by its identifier, made when
 * new) and Encounter.diagnosis listing them. */
static status_t apply_diagnoses(hl7_adt_t *a, store_txn_t *txn, const found_t *patient,
                                found_t *encounter, json_t *enc, err_t *err)
{
    size_t n = hl7_segment_count(a->msg, "DG1");
    if (n == 0)
        return ERR_OK;
    json_t *list = json_array();
    json_object_set_new(enc, "diagnosis", list);
    const char **keys = arena_zalloc(a->arena, n * sizeof(*keys));
    const char *enc_ref = arena_printf(a->arena, "Encounter/%s", encounter->id);
    for (size_t i = 0; i < n; i++) {
        const hl7_segment_t *dg1 = hl7_segment(a->msg, "DG1", i);
        const char *code = val(a, dg1, 3, 0, 1, 0);
        if (!code)
            return problem(a, HL7_ERR_REQUIRED_MISSING, dg1, 3, err, ERR_REQUIRED,
                           "DG1-3 has no diagnosis code");
        const char *text = val(a, dg1, 3, 0, 2, 0), *cs = val(a, dg1, 3, 0, 3, 0);
        if (!text)
            text = val(a, dg1, 4, 0, 1, 0); /* v2.3's description */
        const char *system = "urn:concerto:hl7:code-system:local";
        if (cs && (strcmp(cs, "I10") == 0 || strcmp(cs, "I10C") == 0 || strcmp(cs, "ICD10CM") == 0))
            system = "http://hl7.org/fhir/sid/icd-10-cm";
        else if (cs && (strcmp(cs, "I9") == 0 || strcmp(cs, "I9C") == 0))
            system = "http://hl7.org/fhir/sid/icd-9-cm";
        else if (cs &&
                 (strcmp(cs, "SCT") == 0 || strcmp(cs, "SNM") == 0 || strcmp(cs, "SNOMEDCT") == 0))
            system = "http://snomed.info/sct";
        else if (cs)
            system = arena_printf(a->arena, "urn:concerto:hl7:code-system:%s", cs);
        const char *type = val(a, dg1, 6, 0, 1, 0);
        /* no '|' or ',' in a token's value: they separate system and alternatives */
        const char *key = arena_printf(a->arena, "%s#%s#%s", enc_ref, system, code);
        for (char *c = (char *)key; *c; c++)
            if (*c == '|' || *c == ',' || *c == '\\' || *c == '$')
                *c = '_';
        /* the same code twice in one message: one Condition */
        bool repeated = false;
        for (size_t k = 0; k < i && !repeated; k++)
            repeated = keys[k] && strcmp(keys[k], key) == 0;
        keys[i] = key;
        if (repeated)
            continue;
        found_t hits[1];
        size_t nhits;
        status_t rc =
            find_by_identifier(a, txn, "Condition", SYS_DIAGNOSIS_ID, key, hits, 1, &nhits, err);
        if (rc)
            return rc;
        found_t cond = nhits ? hits[0] : (found_t){0};
        const char *verification = type && strcmp(type, "F") == 0 ? "confirmed" : "provisional";
        json_t *c = owned(a->arena, cond.version ? json_deep_copy(cond.json) : json_object());
        if (!cond.version) {
            json_object_set_new(c, "identifier",
                                json_pack("[{ssss}]", "system", SYS_DIAGNOSIS_ID, "value", key));
            json_object_set_new(c, "clinicalStatus", concept1(SYS_CLINICAL, "active", NULL));
            json_object_set_new(c, "category",
                                json_pack("[o]", concept1(SYS_CONDITION_CAT, "encounter-diagnosis",
                                                          "Encounter Diagnosis")));
            json_t *cc = concept1(system, code, text);
            if (text)
                json_object_set_new(cc, "text", json_string(text));
            json_object_set_new(c, "code", cc);
            json_object_set_new(c, "subject",
                                json_pack("{ss}", "reference", patient_ref(a, patient)));
            json_object_set_new(c, "encounter", json_pack("{ss}", "reference", enc_ref));
            const char *recorded;
            const char *when = val(a, dg1, 5, 0, 1, 0);
            if (when && hl7_dtm_to_fhir(when, a->zone, a->arena, &recorded, NULL))
                json_object_set_new(c, "recordedDate", json_string(recorded));
        }
        json_object_set_new(c, "verificationStatus",
                            concept1(SYS_VERIFICATION, verification, NULL));
        if (!cond.version || !json_equal(c, cond.json))
            if ((rc = write(a, txn, "Condition", &cond, c, err)))
                return rc;
        json_t *d = json_object();
        json_object_set_new(
            d, "condition",
            json_pack("{ss}", "reference", arena_printf(a->arena, "Condition/%s", cond.id)));
        const char *role = type && strcmp(type, "A") == 0   ? "AD"
                           : type && strcmp(type, "F") == 0 ? "DD"
                                                            : "billing";
        json_object_set_new(d, "use", concept1(SYS_DIAGNOSIS_ROLE, role, NULL));
        const char *rank = val(a, dg1, 15, 0, 1, 0);
        if (rank && digits(rank, strlen(rank)) && strlen(rank) < 6 && atoi(rank) > 0)
            json_object_set_new(d, "rank", json_integer(atoi(rank)));
        json_array_append_new(list, d);
    }
    return ERR_OK;
}

typedef enum { ST_KEEP, ST_PLANNED, ST_ACTIVE, ST_FINISHED, ST_CANCELLED, ST_REOPEN } status_move_t;

static status_move_t move_of(const char *event)
{
    if (strcmp(event, "A05") == 0)
        return ST_PLANNED;
    if (strcmp(event, "A03") == 0)
        return ST_FINISHED;
    if (strcmp(event, "A11") == 0)
        return ST_CANCELLED;
    if (strcmp(event, "A13") == 0)
        return ST_REOPEN;
    if (strcmp(event, "A08") == 0 || strcmp(event, "A12") == 0)
        return ST_KEEP;
    return ST_ACTIVE; /* A01, A02, A04, A06, A07 */
}

/* PV1: the Encounter of the visit, made or brought up to date. */
static status_t upsert_encounter(hl7_adt_t *a, store_txn_t *txn, const found_t *patient,
                                 found_t *encounter, err_t *err)
{
    const hl7_segment_t *pv1 = hl7_segment(a->msg, "PV1", 0);
    if (!pv1)
        return problem(a, HL7_ERR_SEGMENT_SEQUENCE, hl7_segment(a->msg, "PID", 0), 0, err,
                       ERR_REQUIRED, "an %s needs a PV1 segment", a->event);
    const char *visit = val(a, pv1, 19, 0, 1, 0);
    if (!visit)
        return problem(a, HL7_ERR_REQUIRED_MISSING, pv1, 19, err, ERR_REQUIRED,
                       "PV1-19 has no visit number");
    ident_t vid = {cx_system(a, pv1, 19, 0), visit, "VN"};
    found_t hits[2];
    size_t n;
    status_t rc = find_by_identifier(a, txn, "Encounter", vid.system, vid.value, hits, 2, &n, err);
    if (rc)
        return rc;
    *encounter = n ? hits[0] : (found_t){0};
    const char *pref = patient_ref(a, patient);
    if (encounter->version) {
        const char *subject = json_string_value(
            json_object_get(json_object_get(encounter->json, "subject"), "reference"));
        /* a visit moves to the surviving record of a merge; any other patient is an error */
        if (subject && strcmp(subject, pref) != 0) {
            found_t other;
            if ((rc = read_current(a, txn, "Patient", subject + 8, &other, err)))
                return rc;
            const char *by = other.version ? replaced_by(other.json) : NULL;
            if (!by || strcmp(by, patient->id) != 0)
                return problem(a, HL7_ERR_UNKNOWN_KEY, pv1, 19, err, ERR_CONFLICT,
                               "PV1-19 visit %s belongs to %s, not to the patient of PID-3 (%s)",
                               visit, subject, pref);
        }
    }
    json_t *enc =
        owned(a->arena, encounter->version ? json_deep_copy(encounter->json) : json_object());
    const char *when_text;
    int64_t when = event_time(a, &when_text);
    int64_t last = encounter->version ? stored_event_time(a, encounter->json) : 0;
    bool stale = encounter->version && when && last && when < last;
    const char *status = json_string_value(json_object_get(enc, "status"));
    status_move_t move = move_of(a->event);

    /* status */
    const char *next = status;
    switch (move) {
    case ST_PLANNED:
        if (!status || (!stale && strcmp(status, "cancelled") == 0))
            next = "planned";
        break;
    case ST_ACTIVE:
        if (!status ||
            (!stale && (strcmp(status, "planned") == 0 || strcmp(status, "cancelled") == 0 ||
                        strcmp(status, "arrived") == 0)))
            next = "in-progress";
        break;
    case ST_FINISHED: next = "finished"; break;
    case ST_CANCELLED: next = "cancelled"; break;
    case ST_REOPEN: next = "in-progress"; break;
    case ST_KEEP:
        if (!status)
            next = val(a, pv1, 45, 0, 1, 0) ? "finished" : "in-progress";
        break;
    }
    next = arena_strdup(a->arena, next); /* the old value goes with the line below */
    json_object_set_new(enc, "status", json_string(next));

    /* what the message says of the stay; an older message only fills in what is missing */
    bool fresh = !stale;
    if (!encounter->version)
        json_object_set_new(enc, "identifier", json_pack("[o]", identifier_json(&vid, "official")));
    json_object_set_new(enc, "subject", json_pack("{ss}", "reference", pref));
    const char *pclass = val(a, pv1, 2, 0, 1, 0);
    if (pclass && (fresh || !json_object_get(enc, "class")))
        json_object_set_new(enc, "class", class_of(pclass, val(a, pv1, 18, 0, 1, 0)));
    if (!json_object_get(enc, "class"))
        return problem(a, HL7_ERR_REQUIRED_MISSING, pv1, 2, err, ERR_REQUIRED,
                       "PV1-2 has no patient class");
    const char *admission_type = val(a, pv1, 4, 0, 1, 0);
    if (admission_type && (fresh || !json_object_get(enc, "priority"))) {
        const char *priority = priority_of(admission_type);
        json_t *cc = priority ? concept1(SYS_PRIORITY, priority, NULL) : json_object();
        json_t *codings = json_object_get(cc, "coding");
        if (!codings) {
            codings = json_array();
            json_object_set_new(cc, "coding", codings);
        }
        json_array_append_new(codings, coding(SYS_V2("0007"), admission_type, NULL));
        json_object_set_new(enc, "priority", cc);
    }
    const char *service = val(a, pv1, 10, 0, 1, 0);
    if (service && (fresh || !json_object_get(enc, "serviceType")))
        json_object_set_new(enc, "serviceType", concept1(SYS_V2("0069"), service, NULL));
    const char *location = location_of(a, pv1);
    if (location && (fresh || !json_object_get(enc, "location")))
        json_object_set_new(
            enc, "location",
            json_pack("[{s{ss}ss}]", "location", "display", location, "status", "active"));
    const hl7_segment_t *msh = hl7_segment(a->msg, "MSH", 0);
    const char *facility = val(a, pv1, 3, 0, 4, 1);
    if (!facility)
        facility = val(a, msh, 4, 0, 1, 0);
    if (facility && !json_object_get(enc, "serviceProvider"))
        json_object_set_new(enc, "serviceProvider", json_pack("{ss}", "display", facility));
    if (fresh) {
        json_t *participants = json_array();
        json_t *p;
        if ((p = participant_of(a, pv1, 7, "ATND", "attender")))
            json_array_append_new(participants, p);
        if ((p = participant_of(a, pv1, 8, "REF", "referrer")))
            json_array_append_new(participants, p);
        if ((p = participant_of(a, pv1, 17, "ADM", "admitter")))
            json_array_append_new(participants, p);
        if (json_array_size(participants))
            json_object_set_new(enc, "participant", participants);
        else
            json_decref(participants);
    }

    /* the period */
    const char *start, *end;
    int64_t start_us = 0, end_us = 0;
    if ((rc = pv1_time(a, pv1, 44, &start, &start_us, err)) ||
        (rc = pv1_time(a, pv1, 45, &end, &end_us, err)))
        return rc;
    json_t *period = object_at(enc, "period");
    if (start && (fresh || !json_object_get(period, "start")))
        json_object_set_new(period, "start", json_string(start));
    if (move == ST_REOPEN) {
        json_object_del(period, "end");
    } else if (strcmp(next, "finished") == 0) {
        if (!end && move == ST_FINISHED && !json_object_get(period, "end"))
            end = when_text; /* a discharge without PV1-45: the event's time */
        if (end && (move == ST_FINISHED || !json_object_get(period, "end")))
            json_object_set_new(period, "end", json_string(end));
        if (!json_object_get(period, "end"))
            return problem(a, HL7_ERR_REQUIRED_MISSING, pv1, 45, err, ERR_REQUIRED,
                           "PV1-45 has no discharge date and time");
    }
    if (json_object_size(period) == 0)
        json_object_del(enc, "period");
    const char *ps = json_string_value(json_object_get(period, "start"));
    const char *pe = json_string_value(json_object_get(period, "end"));
    int64_t s_us, e_us, high;
    if (ps && pe && fhir_date_range(ps, strlen(ps), &s_us, &high, NULL, NULL) &&
        fhir_date_range(pe, strlen(pe), &e_us, &high, NULL, NULL) && e_us < s_us)
        return problem(a, HL7_ERR_DATA_TYPE, pv1, 45, err, ERR_VALUE,
                       "PV1-45 discharge (%s) is before PV1-44 admission (%s)", pe, ps);

    /* the hospital stay */
    json_t *hosp = object_at(enc, "hospitalization");
    const char *source = val(a, pv1, 14, 0, 1, 0);
    if (source && (fresh || !json_object_get(hosp, "admitSource")))
        json_object_set_new(hosp, "admitSource", concept1(SYS_V2("0023"), source, NULL));
    const char *disposition = val(a, pv1, 36, 0, 1, 0);
    if (move == ST_REOPEN) {
        json_object_del(hosp, "dischargeDisposition");
    } else if (disposition &&
               (move == ST_FINISHED || fresh || !json_object_get(hosp, "dischargeDisposition"))) {
        json_t *cc = concept1(SYS_DISPOSITION, disposition_of(disposition), NULL);
        json_array_append_new(json_object_get(cc, "coding"),
                              coding(SYS_V2("0112"), disposition, NULL));
        json_object_set_new(hosp, "dischargeDisposition", cc);
    }
    if (json_object_size(hosp) == 0)
        json_object_del(enc, "hospitalization");

    /* the diagnoses refer to the visit: a new one gets its id first */
    if (!encounter->version)
        encounter->id = repo_new_id(a->arena);
    if ((rc = apply_diagnoses(a, txn, patient, encounter, enc, err)))
        return rc;
    /* a message that changes nothing of the stay writes nothing (its time is not kept: a
       later message that changes something records its own) */
    if (encounter->version && json_equal(enc, encounter->json))
        return ERR_OK;
    if (when_text && !stale)
        set_event_time(enc, when_text);
    return write(a, txn, "Encounter", encounter, enc, err);
}

/* ---- the message ------------------------------------------------------------------------- */

static const char *const PATIENT_ONLY[] = {"A28", "A31"};
static const char *const WITH_VISIT[] = {"A01", "A02", "A03", "A04", "A05", "A06",
                                         "A07", "A08", "A11", "A12", "A13"};

static bool listed(const char *event, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(event, list[i]) == 0)
            return true;
    return false;
}

bool hl7_adt_event_supported(const char *event)
{
    return listed(event, PATIENT_ONLY, 2) || listed(event, WITH_VISIT, 11) ||
           strcmp(event, "A40") == 0;
}

/* The mapping itself: inside txn, or planned on the connection (txn NULL). */
static status_t map(store_txn_t *txn, hl7_adt_t *a, err_t *err)
{
    found_t patient = {0}, encounter = {0};
    status_t rc;
    if (strcmp(a->event, "A40") == 0)
        rc = merge_patients(a, txn, &patient, err);
    else
        rc = upsert_patient(a, txn, &patient, err);
    if (!rc && listed(a->event, WITH_VISIT, 11) &&
        !(strcmp(a->event, "A08") == 0 && !hl7_segment(a->msg, "PV1", 0)))
        rc = upsert_encounter(a, txn, &patient, &encounter, err);
    if (!rc) {
        a->patient = patient.id ? patient_ref(a, &patient) : NULL;
        a->encounter = encounter.id ? arena_printf(a->arena, "Encounter/%s", encounter.id) : NULL;
    }
    return rc;
}

static void reset(hl7_adt_t *a)
{
    a->patient = a->encounter = NULL;
    a->problem = (hl7_problem_t){0};
    a->nwrites = a->nabsent = 0;
}

status_t hl7_adt_plan(hl7_adt_t *a, err_t *err)
{
    reset(a);
    if (!hl7_adt_event_supported(a->event))
        return problem(a, HL7_ERR_UNSUPPORTED_EVENT, hl7_segment(a->msg, "MSH", 0), 9, err,
                       ERR_INVALID, "ADT^%s is not an event Concerto reads", a->event);
    status_t rc = map(NULL, a, err);
    if (rc && !a->problem.code)
        a->problem.code = rc == ERR_STORAGE || rc == ERR_INTERNAL || rc == ERR_UNAVAILABLE
                              ? HL7_ERR_INTERNAL
                              : HL7_ERR_DATA_TYPE;
    return rc;
}

static status_t commit_txn(store_txn_t *txn, void *arg, err_t *err)
{
    hl7_adt_t *a = arg;
    /* what the plan found absent is still absent (else another message made it meanwhile:
       plan again) */
    for (size_t i = 0; i < a->nabsent; i++) {
        store_search_result_t found;
        status_t rc = store_txn_search(txn, &a->absent[i].query, a->arena, &found, err);
        if (rc)
            return rc;
        if (found.nmatch)
            return err_set(err, ERR_VERSION_CONFLICT, NULL,
                           "a %s this message would make was made meanwhile", a->absent[i].type);
    }
    for (size_t i = 0; i < a->nwrites; i++) {
        status_t rc = repo_write_txn(txn, &a->writes[i], err);
        if (rc)
            return rc;
    }
    return ERR_OK;
}

status_t hl7_adt_commit(store_txn_t *txn, hl7_adt_t *a, err_t *err)
{
    status_t rc = store_txn_nested(txn, commit_txn, a, err);
    if (rc && !a->problem.code && rc != ERR_VERSION_CONFLICT)
        /* a write refused by the record's rules */
        a->problem.code = rc == ERR_STORAGE || rc == ERR_INTERNAL || rc == ERR_UNAVAILABLE
                              ? HL7_ERR_INTERNAL
                              : HL7_ERR_DATA_TYPE;
    return rc;
}
