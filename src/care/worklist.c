/*
 * worklist.c - the caller's worklist: their roles in their care teams (the store's member
 * rows), the work rows of the open Tasks they own or that wait in their role pools (one read
 * of the store's Task work rows,
 * with the caller's visibility of Task, so the access policy hides exactly what it hides
 * from a search of Task), the patients' latest risk assessments (the store's risk rows), then
 * bucketing and ordering in memory, and one read of the stored Tasks the buckets show.
 */
#include "care/worklist.h"

#include <stdlib.h>
#include <string.h>

#include "base/jv.h"
#include "base/tz.h"
#include "base/url.h"
#include "fhir/defs.h"
#include "fhir/index.h"
#include "fhir/workflow.h"
#include "repo/repo.h"

#define OPEN_STATUSES "draft,requested,received,accepted,ready,in-progress,on-hold"

static const char *const bucket_codes[WORKLIST__COUNT] = {"overdue", "due-today", "upcoming",
                                                          "on-hold", "unassigned"};
static const char *const bucket_displays[WORKLIST__COUNT] = {"Overdue", "Due today", "Upcoming",
                                                             "On hold", "Unassigned"};

const char *worklist_bucket_code(worklist_bucket_t bucket)
{
    return bucket < WORKLIST__COUNT ? bucket_codes[bucket] : "";
}

const char *worklist_bucket_display(worklist_bucket_t bucket)
{
    return bucket < WORKLIST__COUNT ? bucket_displays[bucket] : "";
}

bool worklist_bucket_parse(const char *code, worklist_bucket_t *out)
{
    for (int i = 0; i < WORKLIST__COUNT; i++)
        if (strcmp(code, bucket_codes[i]) == 0) {
            *out = (worklist_bucket_t)i;
            return true;
        }
    return false;
}

/* ---- bucketing and order ------------------------------------------------------------- */

int64_t worklist_today_end(const calendar_t *calendar, int64_t now_us)
{
    const tz_t *zone = calendar_zone(calendar);
    int64_t secs = now_us >= 0 ? now_us / 1000000 : -((-now_us + 999999) / 1000000);
    tz_civil_t local;
    tz_to_local(zone, secs, &local, NULL);
    local.day += 1; /* normalized by tz_from_local */
    local.hour = local.minute = local.second = 0;
    return tz_from_local(zone, &local, NULL) * 1000000;
}

void worklist_classify(worklist_item_t *item, int64_t now_us, int64_t today_end_us)
{
    item->overdue = item->due_us != WORKLIST_NO_DUE && item->due_us <= now_us;
    if (item->on_hold)
        item->bucket = WORKLIST_ON_HOLD;
    else if (!item->owned)
        item->bucket = WORKLIST_UNASSIGNED;
    else if (item->overdue)
        item->bucket = WORKLIST_OVERDUE;
    else if (item->due_us < today_end_us)
        item->bucket = WORKLIST_DUE_TODAY;
    else
        item->bucket = WORKLIST_UPCOMING;
}

const char *worklist_item_id(const worklist_item_t *item)
{
    return item->id ? item->id : item->task ? item->task->id : "";
}

int worklist_compare(const void *pa, const void *pb)
{
    const worklist_item_t *a = pa, *b = pb;
    if (a->overdue != b->overdue)
        return a->overdue ? -1 : 1;
    if (a->priority != b->priority)
        return a->priority > b->priority ? -1 : 1;
    if (a->risk != b->risk)
        return a->risk > b->risk ? -1 : 1;
    if (a->due_us != b->due_us)
        return a->due_us < b->due_us ? -1 : 1;
    return strcmp(worklist_item_id(a), worklist_item_id(b));
}

/* Bucket first, then the worklist's order. */
static int compare_bucketed(const void *pa, const void *pb)
{
    const worklist_item_t *a = pa, *b = pb;
    if (a->bucket != b->bucket)
        return a->bucket < b->bucket ? -1 : 1;
    return worklist_compare(a, b);
}

/* "Patient/id" of a reference to a Patient (relative, or absolute ending in one), in arena. */
static const char *patient_reference(const json_t *reference, arena_t *arena)
{
    const char *ref = json_string_value(json_object_get(reference, "reference"));
    if (!ref)
        return NULL;
    const char *at = strstr(ref, "Patient/");
    if (!at || (at != ref && at[-1] != '/'))
        return NULL;
    const char *id = at + 8;
    size_t len = strcspn(id, "/");
    if (!repo_id_valid(id, len))
        return NULL;
    return arena_strndup(arena, at, 8 + len);
}

void worklist_item_from_task(worklist_item_t *item, const json_t *task, arena_t *arena)
{
    item->patient = patient_reference(json_object_get(task, "for"), arena);
    item->owned = json_object_get(task, "owner") != NULL;
    const char *status = json_string_value(json_object_get(task, "status"));
    item->on_hold = status && strcmp(status, "on-hold") == 0;
    const char *priority = json_string_value(json_object_get(task, "priority"));
    int rank = priority ? task_priority_rank(priority) : 0;
    item->priority = rank < 0 ? 0 : rank;
    int64_t due;
    item->due_us = fhir_task_due(task, &due) ? due : WORKLIST_NO_DUE;
}

double worklist_risk_of(const json_t *risk_assessment)
{
    double risk = fhir_risk_value(risk_assessment);
    return risk < 0 ? WORKLIST_NO_RISK : risk;
}

/* ---- parameters ---------------------------------------------------------------------- */

static bool whole_number(const char *s, uint32_t max, uint32_t *out)
{
    uint64_t n = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        n = n * 10 + (uint64_t)(*s - '0');
        if (n > max)
            return false;
    }
    *out = (uint32_t)n;
    return true;
}

status_t worklist_param(worklist_query_t *q, const char *name, const char *value, arena_t *arena,
                        err_t *err)
{
    const char **slot = NULL;
    bool repeated = false;
    if (strcmp(name, "patient") == 0) {
        repeated = q->patient_id != NULL;
        const char *id = strncmp(value, "Patient/", 8) == 0 ? value + 8 : value;
        if (!repeated && !repo_id_valid(id, strlen(id)))
            return err_set(err, ERR_INVALID, "patient",
                           "patient must be a Patient id or Patient/[id], not \"%s\"", value);
        slot = &q->patient_id;
        value = id;
    } else if (strcmp(name, "code") == 0) {
        repeated = q->code != NULL;
        if (!repeated && !*value)
            return err_set(err, ERR_INVALID, "code",
                           "code must be a token: [system]|[code] or [code], not empty");
        slot = &q->code;
    } else if (strcmp(name, "priority") == 0) {
        repeated = q->priority != NULL;
        if (!repeated && task_priority_rank(value) < 0)
            return err_set(err, ERR_INVALID, "priority",
                           "priority must be routine, urgent, asap or stat, not \"%s\"", value);
        slot = &q->priority;
    } else if (strcmp(name, "team") == 0) {
        repeated = q->team_id != NULL;
        const char *id = strncmp(value, "CareTeam/", 9) == 0 ? value + 9 : value;
        if (!repeated && !repo_id_valid(id, strlen(id)))
            return err_set(err, ERR_INVALID, "team", "team must be a CareTeam id, not \"%s\"",
                           value);
        slot = &q->team_id;
        value = id;
    } else if (strcmp(name, "bucket") == 0) {
        repeated = q->bucket_set;
        if (!repeated && !worklist_bucket_parse(value, &q->bucket))
            return err_set(err, ERR_INVALID, "bucket",
                           "bucket must be one of overdue, due-today, upcoming, on-hold, "
                           "unassigned, not \"%s\"",
                           value);
        q->bucket_set = true;
    } else if (strcmp(name, "_count") == 0) {
        repeated = q->count_set;
        if (!repeated && !whole_number(value, WORKLIST_MAX_COUNT, &q->count))
            return err_set(err, ERR_INVALID, "_count",
                           "_count must be a whole number from 0 to %d, not \"%s\"",
                           WORKLIST_MAX_COUNT, value);
        q->count_set = true;
    } else {
        return err_set(err, ERR_INVALID, name,
                       "$worklist has no parameter \"%s\" (patient, code, priority, team, "
                       "bucket, _count)",
                       name);
    }
    if (repeated)
        return err_set(err, ERR_INVALID, name, "the %s parameter is given more than once", name);
    if (slot)
        *slot = arena_strdup(arena, value);
    return ERR_OK;
}

/* ---- gathering ----------------------------------------------------------------------- */

/* A growable list of strings in an arena. */
typedef struct {
    const char **v;
    size_t n, cap;
} strs_t;

static bool strs_has(const strs_t *s, const char *x)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], x) == 0)
            return true;
    return false;
}

static void strs_push(strs_t *s, arena_t *arena, const char *x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        const char **v = arena_alloc(arena, cap * sizeof(*v));
        if (s->n)
            memcpy(v, s->v, s->n * sizeof(*v));
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
}

static void strs_add(strs_t *s, arena_t *arena, const char *x)
{
    if (x && !strs_has(s, x))
        strs_push(s, arena, x);
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts the strings and drops the repeated ones. */
static void strs_unique(strs_t *s)
{
    if (!s->n)
        return;
    qsort(s->v, s->n, sizeof(*s->v), compare_strings);
    size_t kept = 1;
    for (size_t i = 1; i < s->n; i++)
        if (strcmp(s->v[i], s->v[kept - 1]) != 0)
            s->v[kept++] = s->v[i];
    s->n = kept;
}

/* The strings joined by commas, in arena. */
static const char *strs_join(const strs_t *s, size_t from, size_t to, arena_t *arena)
{
    buf_t b = BUF_INIT;
    for (size_t i = from; i < to && i < s->n; i++) {
        if (i > from)
            buf_addch(&b, ',');
        buf_addstr(&b, s->v[i]);
    }
    const char *out = arena_strndup(arena, b.ptr, b.len);
    buf_release(&b);
    return out;
}

/* A set of strings (pointers kept, not copied) in an arena: open addressing, for the ids and
 * patients of thousands of work rows, where a list's linear test would be quadratic. */
typedef struct {
    const char **slots;
    size_t mask;
} strset_t;

static void strset_init(strset_t *set, arena_t *arena, size_t most)
{
    size_t size = 16;
    while (size < most * 2)
        size *= 2;
    set->slots = arena_zalloc(arena, size * sizeof(*set->slots));
    set->mask = size - 1;
}

/* Adds x; false when it was there already. */
static bool strset_add(strset_t *set, const char *x)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *c = (const unsigned char *)x; *c; c++)
        h = (h ^ *c) * 1099511628211ULL;
    for (size_t at = (size_t)h & set->mask;; at = (at + 1) & set->mask) {
        if (!set->slots[at]) {
            set->slots[at] = x;
            return true;
        }
        if (strcmp(set->slots[at], x) == 0)
            return false;
    }
}

/* "system|code" of every coding of a CodeableConcept (or an array of them), added to s.
 * Commas and backslashes would change the meaning of a search token: those are escaped. */
static void add_codings(strs_t *s, arena_t *arena, const json_t *concept)
{
    if (json_is_array(concept)) {
        size_t i;
        const json_t *one;
        json_array_foreach(concept, i, one) add_codings(s, arena, one);
        return;
    }
    size_t i;
    const json_t *coding;
    json_array_foreach(json_object_get(concept, "coding"), i, coding)
    {
        const char *system = json_string_value(json_object_get(coding, "system"));
        const char *code = json_string_value(json_object_get(coding, "code"));
        if (!code || strpbrk(code, ",|\\$") || (system && strpbrk(system, ",|\\$")))
            continue;
        strs_add(s, arena, arena_printf(arena, "%s|%s", system ? system : "", code));
    }
}

/* A role pool: a role (system|code) a caller holds, for one patient or (patient NULL) all. */
typedef struct {
    const char *patient;
    strs_t roles;
} pool_t;

typedef struct {
    pool_t *v;
    size_t n, cap;
} pools_t;

static pool_t *pool_of(pools_t *p, arena_t *arena, const char *patient)
{
    for (size_t i = 0; i < p->n; i++)
        if ((!patient && !p->v[i].patient) ||
            (patient && p->v[i].patient && strcmp(patient, p->v[i].patient) == 0))
            return &p->v[i];
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        pool_t *v = arena_zalloc(arena, cap * sizeof(*v));
        if (p->n)
            memcpy(v, p->v, p->n * sizeof(*v));
        p->v = v;
        p->cap = cap;
    }
    pool_t *pool = &p->v[p->n++];
    *pool = (pool_t){.patient = patient};
    return pool;
}

/* Whether pool (system|code) is one of the caller's for the patient ("Patient/id" or NULL). */
static bool in_pool(const pools_t *pools, const char *pool, const char *patient)
{
    for (size_t i = 0; i < pools->n; i++) {
        const pool_t *p = &pools->v[i];
        if (p->patient && (!patient || strcmp(p->patient, patient) != 0))
            continue;
        if (strs_has(&p->roles, pool))
            return true;
    }
    return false;
}

/* Runs a search to its end, every page: calls fn on each match. */
typedef status_t (*match_fn)(void *arg, const store_version_t *v, arena_t *arena, err_t *err);

static status_t search_all(store_conn_t *conn, const repo_search_t *search, arena_t *arena,
                           match_fn fn, void *arg, err_t *err)
{
    fhir_search_plan_t *plan;
    store_search_t query;
    status_t rc = repo_search_plan(conn, search, arena, &plan, &query, err);
    while (rc == ERR_OK) {
        store_search_result_t found;
        if ((rc = store_search(conn, &query, arena, &found, err)))
            break;
        for (size_t i = 0; i < found.nmatch && rc == ERR_OK; i++)
            rc = fn(arg, &found.entries[i].version, arena, err);
        if (!found.next)
            break;
        query.page = found.next;
    }
    return rc;
}

static const fhir_type_t *type_named(const char *name)
{
    return fhir_resource_type_find(name, strlen(name));
}

/* The risk of each patient: from their latest RiskAssessment, by occurrenceDateTime and then
 * by the version last written (the store's risk rows, sorted in memory). */
typedef struct {
    const char *patient; /* first: a key of bsearch is a pointer to the patient */
    int64_t when_us;     /* occurrenceDateTime (its start), or INT64_MIN */
    int64_t seq;         /* then the newest version written */
    double risk;
} patient_risk_t;

static int compare_patient_risk(const void *pa, const void *pb)
{
    const patient_risk_t *a = pa, *b = pb;
    int c = strcmp(a->patient, b->patient);
    if (c)
        return c;
    /* the latest first */
    if (a->when_us != b->when_us)
        return a->when_us > b->when_us ? -1 : 1;
    return a->seq > b->seq ? -1 : a->seq < b->seq;
}

static int compare_patient_key(const void *key, const void *entry)
{
    return strcmp(*(const char *const *)key, ((const patient_risk_t *)entry)->patient);
}

typedef struct {
    patient_risk_t *v;
    size_t n, cap;
} risks_t;

/* The ids of the open Tasks a search by code finds (the code parameter has the search's
 * syntax: several values, modifiers), as the caller may see them. */
static status_t on_code_match(void *arg, const store_version_t *v, arena_t *arena, err_t *err)
{
    (void)err;
    strs_push(arg, arena, v->id);
    return ERR_OK;
}

static status_t code_matches(store_conn_t *conn, const worklist_query_t *q, arena_t *arena,
                             strs_t *out, err_t *err)
{
    fhir_search_pair_t pairs[] = {url_pair("status", OPEN_STATUSES), url_pair("code", q->code),
                                  url_pair("_count", "1000")};
    repo_search_t s = {.type = type_named("Task"),
                       .pairs = pairs,
                       .npairs = 3,
                       .strict = true,
                       .now_us = q->now_us,
                       .base = q->base,
                       .caller = q->caller};
    status_t rc = search_all(conn, &s, arena, on_code_match, out, err);
    if (!rc)
        strs_unique(out);
    return rc;
}

/* A reference as the work rows may hold it: relative, and absolute under the server's base. */
static void add_reference_forms(strs_t *s, arena_t *arena, const char *reference, const char *base)
{
    strs_add(s, arena, reference);
    if (!base || !*base)
        return;
    size_t n = strlen(base);
    if (strncmp(reference, base, n) == 0 && reference[n] == '/')
        strs_add(s, arena, arena_strdup(arena, reference + n + 1));
    else if (!strstr(reference, "://"))
        strs_add(s, arena, arena_printf(arena, "%s/%s", base, reference));
}

/* "Patient/id" of Task.for as the work row holds it, or NULL. */
static const char *patient_key(const char *stored, arena_t *arena)
{
    if (!stored)
        return NULL;
    const char *at = strstr(stored, "Patient/");
    if (!at || (at != stored && at[-1] != '/'))
        return NULL;
    const char *id = at + 8;
    size_t len = strcspn(id, "/");
    if (!repo_id_valid(id, len))
        return NULL;
    return at == stored && !id[len] ? stored : arena_strndup(arena, at, 8 + len);
}

static int compare_ids(const void *key, const void *entry)
{
    return strcmp(*(const char *const *)key, *(const char *const *)entry);
}

static status_t on_member_role(void *arg, const store_version_t *v, arena_t *arena, err_t *err)
{
    (void)err;
    strs_add(arg, arena, arena_printf(arena, "PractitionerRole/%s", v->id));
    return ERR_OK;
}

/* The team view: its patient, its current members, their roles. */
static status_t read_team(store_conn_t *conn, const worklist_query_t *q, arena_t *arena,
                          const char **out_patient, strs_t *owners, pools_t *pools, err_t *err)
{
    store_version_t v;
    status_t rc = repo_read_as(conn, q->caller, "CareTeam", q->team_id, 0, arena, &v, NULL, err);
    if (rc)
        return rc;
    json_t *team = jv_parse(v.json, v.json_len, err);
    if (!team)
        return err->code;
    *out_patient = patient_reference(json_object_get(team, "subject"), arena);
    if (!*out_patient) {
        json_decref(team);
        return err_set(err, ERR_INVALID, "team",
                       "CareTeam/%s has no Patient as its subject: it has no worklist", q->team_id);
    }
    pool_t *pool = pool_of(pools, arena, *out_patient);
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(team, "participant"), i, p)
    {
        if (!fhir_period_current(json_object_get(p, "period"), q->now_us))
            continue;
        const char *member =
            json_string_value(json_object_get(json_object_get(p, "member"), "reference"));
        if (member && !strpbrk(member, ",\\$"))
            strs_add(owners, arena, arena_strdup(arena, member));
        add_codings(&pool->roles, arena, json_object_get(p, "role"));
    }
    json_decref(team);
    /* and the PractitionerRoles of the members who are Practitioners */
    strs_t practitioners = {0};
    for (size_t k = 0; k < owners->n; k++)
        if (strncmp(owners->v[k], "Practitioner/", 13) == 0)
            strs_push(&practitioners, arena, owners->v[k]);
    if (!practitioners.n)
        return ERR_OK;
    fhir_search_pair_t pairs[] = {
        url_pair("practitioner", strs_join(&practitioners, 0, practitioners.n, arena)),
        url_pair("_count", "1000")};
    repo_search_t roles = {.type = type_named("PractitionerRole"),
                           .pairs = pairs,
                           .npairs = 2,
                           .strict = true,
                           .now_us = q->now_us,
                           .base = q->base};
    return search_all(conn, &roles, arena, on_member_role, owners, err);
}

/* Each bucket's total, first item and how many it shows. */
static void count_buckets(worklist_t *out, uint32_t count)
{
    memset(out->total, 0, sizeof(out->total));
    memset(out->first, 0, sizeof(out->first));
    for (size_t i = out->n; i-- > 0;) {
        worklist_bucket_t b = out->items[i].bucket;
        out->total[b]++;
        out->first[b] = i;
    }
    for (int b = 0; b < WORKLIST__COUNT; b++)
        out->shown[b] = out->total[b] < count ? out->total[b] : count;
}

/* Reads the stored Tasks the buckets show, in one statement. One deleted or closed since its
 * work row was read (by a write in between) leaves the worklist, and the next one moves up. */
static status_t read_shown(store_conn_t *conn, worklist_t *out, uint32_t count, arena_t *arena,
                           err_t *err)
{
    for (;;) {
        size_t nshown = 0;
        for (int b = 0; b < WORKLIST__COUNT; b++)
            nshown += out->shown[b];
        if (!nshown)
            return ERR_OK;
        const char **ids = arena_alloc(arena, nshown * sizeof(*ids));
        worklist_item_t **shown = arena_alloc(arena, nshown * sizeof(*shown));
        size_t k = 0;
        for (int b = 0; b < WORKLIST__COUNT; b++)
            for (size_t i = 0; i < out->shown[b]; i++) {
                shown[k] = &out->items[out->first[b] + i];
                ids[k] = shown[k]->id;
                k++;
            }
        store_version_t *versions = arena_alloc(arena, nshown * sizeof(*versions));
        status_t rc = store_read_batch(conn, "Task", ids, nshown, arena, versions, err);
        if (rc)
            return rc;
        bool gone = false;
        for (k = 0; k < nshown; k++) {
            shown[k]->task = versions[k].deleted ? NULL : &versions[k];
            if (!shown[k]->task) {
                shown[k]->id = NULL; /* gone */
                gone = true;
            }
        }
        if (!gone)
            return ERR_OK;
        size_t kept = 0;
        for (size_t i = 0; i < out->n; i++)
            if (out->items[i].id)
                out->items[kept++] = out->items[i];
        out->n = kept;
        count_buckets(out, count);
    }
}

status_t worklist_run(store_conn_t *conn, const worklist_query_t *q, arena_t *arena,
                      worklist_t *out, err_t *err)
{
    memset(out, 0, sizeof(*out));
    const repo_caller_t *c = q->caller;
    if (!c || c->kind == REPO_CALLER_PATIENT)
        return err_set(err, ERR_FORBIDDEN, NULL,
                       "a patient account has no worklist: $worklist lists the work of staff "
                       "(their own Tasks and their role pools')");
    if (c->kind == REPO_CALLER_SERVICE || (!c->practitioner_id && !c->practitioner_role_id))
        return err_set(err, ERR_FORBIDDEN, NULL,
                       "$worklist lists a staff member's work, and this account is linked to no "
                       "Practitioner or PractitionerRole");
    status_t rc;
    strs_t me = {0}, owners = {0}, patients = {0};
    pools_t pools = {0};
    if (c->practitioner_id)
        strs_add(&me, arena, arena_printf(arena, "Practitioner/%s", c->practitioner_id));
    if (c->practitioner_role_id)
        strs_add(&me, arena, arena_printf(arena, "PractitionerRole/%s", c->practitioner_role_id));

    const char *patient = q->patient_id ? arena_printf(arena, "Patient/%s", q->patient_id) : NULL;
    if (q->team_id) {
        const char *team_patient = NULL;
        if ((rc = read_team(conn, q, arena, &team_patient, &owners, &pools, err)))
            return rc;
        if (patient && strcmp(patient, team_patient) != 0)
            goto done; /* another patient's team: nothing in both */
        patient = team_patient;
    } else {
        for (size_t i = 0; i < me.n; i++)
            strs_add(&owners, arena, me.v[i]);
        /* the roles of their PractitionerRole, for every patient */
        if (c->practitioner_role_id) {
            store_version_t v;
            rc = store_read(conn, "PractitionerRole", c->practitioner_role_id, 0, arena, &v, err);
            if (rc == ERR_OK && !v.deleted) {
                json_t *role = jv_parse(v.json, v.json_len, err);
                if (!role)
                    return err->code;
                add_codings(&pool_of(&pools, arena, NULL)->roles, arena,
                            json_object_get(role, "code"));
                json_decref(role);
            } else if (rc == ERR_NOT_FOUND || rc == ERR_GONE) {
                err_reset(err);
            } else if (rc) {
                return rc;
            }
        }
        /* their roles in the patients' active care teams: the store's member rows */
        store_care_role_t *held;
        size_t nheld;
        if ((rc = store_care_roles(conn, me.v, me.n, q->now_us, arena, &held, &nheld, err)))
            return rc;
        for (size_t i = 0; i < nheld; i++)
            strs_add(&pool_of(&pools, arena, held[i].patient)->roles, arena, held[i].role);
    }

    /* the Tasks they own, and those in their pools: their work rows */
    const store_visibility_t *visibility = NULL;
    if ((rc = repo_access_scope(c, "Task", SCOPE_S, err)) ||
        (rc = repo_access_visibility(conn, c, "Task", SCOPE_S, q->base, NULL, arena, &visibility,
                                     err)))
        return rc;
    strs_t owner_forms = {0}, roles = {0}, patient_forms = {0}, coded = {0};
    for (size_t i = 0; i < owners.n; i++)
        add_reference_forms(&owner_forms, arena, owners.v[i], q->base);
    for (size_t i = 0; i < pools.n; i++)
        for (size_t k = 0; k < pools.v[i].roles.n; k++)
            strs_add(&roles, arena, pools.v[i].roles.v[k]);
    if (patient)
        add_reference_forms(&patient_forms, arena, patient, q->base);
    store_task_work_query_t wq = {.owners = owner_forms.v,
                                  .nowners = owner_forms.n,
                                  .pools = roles.v,
                                  .npools = roles.n,
                                  .patients = patient ? patient_forms.v : NULL,
                                  .npatients = patient_forms.n,
                                  .priority = q->priority ? task_priority_rank(q->priority) : -1,
                                  .visibility = visibility};
    store_task_work_t *rows;
    size_t nrows;
    if ((rc = store_task_work(conn, &wq, arena, &rows, &nrows, err)))
        return rc;
    if (q->code && nrows && (rc = code_matches(conn, q, arena, &coded, err)))
        return rc;

    worklist_item_t *items = arena_alloc(arena, (nrows ? nrows : 1) * sizeof(*items));
    size_t n = 0;
    /* the unowned Tasks listed (a Task in several of the pools comes once per pool), and the
       patients of those listed */
    strset_t seen, patient_set;
    strset_init(&seen, arena, nrows);
    strset_init(&patient_set, arena, nrows);
    for (size_t i = 0; i < nrows; i++) {
        const store_task_work_t *row = &rows[i];
        const char *for_patient = patient_key(row->patient, arena);
        if (!row->owner && !in_pool(&pools, row->pool, for_patient))
            continue;
        if (q->code && !bsearch(&row->id, coded.v, coded.n, sizeof(*coded.v), compare_ids))
            continue;
        if (!row->owner && !strset_add(&seen, row->id))
            continue;
        items[n++] = (worklist_item_t){.id = row->id,
                                       .patient = for_patient,
                                       .owned = row->owner != NULL,
                                       .on_hold = strcmp(row->status, "on-hold") == 0,
                                       .priority = row->priority < 0 ? 0 : row->priority,
                                       .risk = WORKLIST_NO_RISK,
                                       .due_us = row->due_us};
        if (for_patient && strset_add(&patient_set, for_patient))
            strs_push(&patients, arena, for_patient);
    }

    /* the patients' risk: their risk rows (the patients are those of Tasks the caller sees) */
    risks_t risks = {0};
    if (patients.n) {
        /* each "Patient/id" (each once), and under the server's base: all different */
        strs_t forms = {0};
        bool with_base = q->base && *q->base;
        for (size_t i = 0; i < patients.n; i++) {
            strs_push(&forms, arena, patients.v[i]);
            if (with_base)
                strs_push(&forms, arena, arena_printf(arena, "%s/%s", q->base, patients.v[i]));
        }
        store_risk_t *rows_of_risk;
        size_t nrisk;
        if ((rc = store_patient_risks(conn, forms.v, forms.n, arena, &rows_of_risk, &nrisk, err)))
            return rc;
        risks.v = arena_alloc(arena, (nrisk ? nrisk : 1) * sizeof(*risks.v));
        for (size_t i = 0; i < nrisk; i++) {
            const char *key = patient_key(rows_of_risk[i].patient, arena);
            if (key)
                risks.v[risks.n++] = (patient_risk_t){key, rows_of_risk[i].when_us,
                                                      rows_of_risk[i].seq, rows_of_risk[i].risk};
        }
    }

    /* buckets and order */
    const calendar_t *calendar = q->calendar ? q->calendar : calendar_default();
    int64_t today_end = worklist_today_end(calendar, q->now_us);
    /* each patient's latest comes first */
    if (risks.n)
        qsort(risks.v, risks.n, sizeof(*risks.v), compare_patient_risk);
    size_t latest = 0;
    for (size_t k = 0; k < risks.n; k++)
        if (!latest || strcmp(risks.v[k].patient, risks.v[latest - 1].patient) != 0)
            risks.v[latest++] = risks.v[k];
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        worklist_item_t *item = &items[i];
        const patient_risk_t *found =
            item->patient && latest
                ? bsearch(&item->patient, risks.v, latest, sizeof(*risks.v), compare_patient_key)
                : NULL;
        if (found)
            item->risk = found->risk;
        worklist_classify(item, q->now_us, today_end);
        if (q->bucket_set && item->bucket != q->bucket)
            continue;
        items[kept++] = *item;
    }
    qsort(items, kept, sizeof(*items), compare_bucketed);
    out->items = items;
    out->n = kept;
done:
    count_buckets(out, q->count_set ? q->count : WORKLIST_DEFAULT_COUNT);
    return read_shown(conn, out, q->count_set ? q->count : WORKLIST_DEFAULT_COUNT, arena, err);
}
