/*
 * access.c - the access policy (access.h; docs/security.md, "Access policy"): which patients a
 * caller's account reaches, what its token's scopes allow, and the visibility the store
 * applies in its SQL.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/jv.h"
#include "base/mem.h"
#include "fhir/compartment.h"
#include "repo/access.h"
#include "repo/repo.h"

/* ---- which resources are patient-linked -------------------------------------------------- */

static pthread_once_t members_once = PTHREAD_ONCE_INIT;
static const char **member_types, **member_params;
static size_t nmembers;

/* Patient itself is linked by its id only: its `link` does not open another's record */
static void members_init(void)
{
    size_t cap = 0;
    for (size_t i = 0; i < fhir_resource_type_count; i++) {
        const char *const *params;
        size_t n;
        if (fhir_patient_link_params(fhir_resource_types[i], &params, &n))
            cap += n;
    }
    member_types = xcalloc(cap, sizeof(*member_types));
    member_params = xcalloc(cap, sizeof(*member_params));
    for (size_t i = 0; i < fhir_resource_type_count; i++) {
        const char *const *params;
        size_t n;
        if (!fhir_patient_link_params(fhir_resource_types[i], &params, &n))
            continue;
        for (size_t k = 0; k < n; k++) {
            member_types[nmembers] = fhir_resource_types[i]->name;
            member_params[nmembers++] = params[k];
        }
    }
}

void repo_access_members(const char *const **types, const char *const **params, size_t *n)
{
    pthread_once(&members_once, members_init);
    *types = member_types;
    *params = member_params;
    *n = nmembers;
}

/* Whether resources of type are patient-linked (Patient included). */
static bool linked_type(const char *type)
{
    if (strcmp(type, "Patient") == 0)
        return true;
    const char *const *types, *const *params;
    size_t n;
    repo_access_members(&types, &params, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(types[i], type) == 0)
            return true;
    return false;
}

/* Types an admin manages (creates, updates) whatever patient they concern. */
static bool admin_managed(const char *type)
{
    static const char *const managed[] = {"Patient",          "CareTeam",     "Practitioner",
                                          "PractitionerRole", "Organization", "Location"};
    for (size_t i = 0; i < sizeof(managed) / sizeof(managed[0]); i++)
        if (strcmp(managed[i], type) == 0)
            return true;
    return !linked_type(type);
}

/* ---- scopes ------------------------------------------------------------------------------ */

static const char *perm_letter(unsigned interaction)
{
    switch (interaction) {
    case SCOPE_C: return "c";
    case SCOPE_R: return "r";
    case SCOPE_U: return "u";
    case SCOPE_D: return "d";
    case SCOPE_S: return "s";
    default: return "cruds";
    }
}

static const char *context_name(const repo_caller_t *caller)
{
    switch (caller->kind) {
    case REPO_CALLER_SERVICE: return "system";
    case REPO_CALLER_PATIENT: return "patient";
    default: return "user";
    }
}

/* The grants of each context for the interaction on type. */
typedef struct {
    scope_grant_t patient, user, system;
} grants_t;

static grants_t grants_of(const repo_caller_t *caller, const char *type, unsigned interaction)
{
    grants_t g = {SCOPE_DENIED, SCOPE_DENIED, SCOPE_DENIED};
    if (!caller->scopes)
        return g;
    g.patient = scope_allows(caller->scopes, SCOPE_PATIENT, type, interaction);
    g.user = scope_allows(caller->scopes, SCOPE_USER, type, interaction);
    if (caller->kind == REPO_CALLER_SERVICE)
        g.system = scope_allows(caller->scopes, SCOPE_SYSTEM, type, interaction);
    return g;
}

status_t repo_access_scope(const repo_caller_t *caller, const char *type, unsigned interaction,
                           err_t *err)
{
    if (!caller)
        return ERR_OK;
    grants_t g = grants_of(caller, type, interaction);
    if (g.patient == SCOPE_PERMITTED || g.user == SCOPE_PERMITTED || g.system == SCOPE_PERMITTED)
        return ERR_OK;
    if (g.patient == SCOPE_RESTRICTED || g.user == SCOPE_RESTRICTED || g.system == SCOPE_RESTRICTED)
        return err_set(err, ERR_FORBIDDEN, NULL,
                       "the token's scopes allow %s on %s only with a query, which this server "
                       "does not apply: a scope such as %s/%s.%s would allow it",
                       perm_letter(interaction), type, context_name(caller), type,
                       perm_letter(interaction));
    return err_set(err, ERR_FORBIDDEN, NULL,
                   "the token's scopes do not allow this interaction on %s: it needs %s/%s.%s",
                   type, context_name(caller), type, perm_letter(interaction));
}

/* ---- the patients an account reaches ----------------------------------------------------- */

#define CACHE_SLOTS 64
#define CACHE_US    1000000

typedef struct {
    char *account;
    int64_t at_us;
    uint64_t generation;
    char **ids;
    size_t n;
} cache_entry_t;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cache_entry_t cache[CACHE_SLOTS];
static uint64_t cache_generation;

void repo_access_invalidate(void)
{
    pthread_mutex_lock(&cache_lock);
    cache_generation++;
    pthread_mutex_unlock(&cache_lock);
}

static void entry_clear(cache_entry_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->ids[i]);
    free(e->ids);
    free(e->account);
    memset(e, 0, sizeof(*e));
}

static bool cache_get(const char *account, arena_t *arena, const char ***out, size_t *out_n,
                      uint64_t *out_generation)
{
    bool found = false;
    int64_t now = clock_mono_us();
    pthread_mutex_lock(&cache_lock);
    *out_generation = cache_generation;
    for (size_t i = 0; i < CACHE_SLOTS && !found; i++) {
        cache_entry_t *e = &cache[i];
        if (!e->account || strcmp(e->account, account) != 0)
            continue;
        if (e->generation != cache_generation || now - e->at_us > CACHE_US)
            break;
        const char **ids = arena_alloc(arena, (e->n + 1) * sizeof(*ids));
        for (size_t k = 0; k < e->n; k++)
            ids[k] = arena_strdup(arena, e->ids[k]);
        *out = ids;
        *out_n = e->n;
        found = true;
    }
    pthread_mutex_unlock(&cache_lock);
    return found;
}

static void cache_put(const char *account, const char *const *ids, size_t n, uint64_t generation)
{
    int64_t now = clock_mono_us();
    pthread_mutex_lock(&cache_lock);
    if (generation == cache_generation) {
        size_t slot = 0;
        for (size_t i = 0; i < CACHE_SLOTS; i++) {
            if (cache[i].account && strcmp(cache[i].account, account) == 0) {
                slot = i;
                break;
            }
            if (cache[i].at_us < cache[slot].at_us)
                slot = i;
        }
        cache_entry_t *e = &cache[slot];
        entry_clear(e);
        e->account = xstrdup(account);
        e->at_us = now;
        e->generation = generation;
        e->ids = xcalloc(n ? n : 1, sizeof(*e->ids));
        for (size_t i = 0; i < n; i++)
            e->ids[i] = xstrdup(ids[i]);
        e->n = n;
    }
    pthread_mutex_unlock(&cache_lock);
}

typedef struct {
    const char **items;
    size_t n, cap;
} strs_t;

static void strs_add(arena_t *arena, strs_t *s, const char *v)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->items[i], v) == 0)
            return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        const char **items = arena_alloc(arena, cap * sizeof(*items));
        if (s->n)
            memcpy(items, s->items, s->n * sizeof(*items));
        s->items = items;
        s->cap = cap;
    }
    s->items[s->n++] = v;
}

/* The id of a reference "Type/id" of the given type, or NULL. */
static const char *ref_id(const json_t *reference, const char *type, arena_t *arena)
{
    const char *ref = json_string_value(json_object_get(reference, "reference"));
    size_t tl = strlen(type);
    if (!ref || strncmp(ref, type, tl) != 0 || ref[tl] != '/' || !ref[tl + 1] ||
        strchr(ref + tl + 1, '/'))
        return NULL;
    return arena_strdup(arena, ref + tl + 1);
}

/* Every current resource a search finds (all pages), each passed to fn. */
typedef void (*each_fn)(void *ctx, json_t *resource);

static status_t search_all(store_conn_t *conn, const char *type, const fhir_search_pair_t *pairs,
                           size_t npairs, arena_t *arena, each_fn fn, void *ctx, err_t *err)
{
    repo_search_t search = {.type = fhir_resource_type_find(type, strlen(type)),
                            .pairs = pairs,
                            .npairs = npairs,
                            .now_us = clock_now_us()};
    for (;;) {
        fhir_search_plan_t *plan;
        store_search_result_t found;
        status_t rc = repo_search(conn, &search, arena, &plan, &found, err);
        if (rc)
            return rc;
        for (size_t i = 0; i < found.n; i++) {
            if (found.entries[i].included)
                continue;
            json_t *r =
                jv_parse(found.entries[i].version.json, found.entries[i].version.json_len, err);
            if (!r)
                return err->code;
            fn(ctx, r);
            json_decref(r);
        }
        if (!found.next)
            return ERR_OK;
        search.page = found.next;
    }
}

typedef struct {
    arena_t *arena;
    strs_t *roles, *orgs, *patients;
} collect_t;

static void collect_role(void *ctx, json_t *role)
{
    collect_t *c = ctx;
    strs_add(c->arena, c->roles,
             arena_strdup(c->arena, json_string_value(json_object_get(role, "id"))));
    const char *org = ref_id(json_object_get(role, "organization"), "Organization", c->arena);
    if (org)
        strs_add(c->arena, c->orgs, org);
}

static void collect_team(void *ctx, json_t *team)
{
    collect_t *c = ctx;
    const char *patient = ref_id(json_object_get(team, "subject"), "Patient", c->arena);
    if (patient)
        strs_add(c->arena, c->patients, patient);
}

/* The subjects of the active CareTeams of a staff member or admin. */
static status_t care_team_patients(store_conn_t *conn, const repo_caller_t *caller, arena_t *arena,
                                   strs_t *patients, err_t *err)
{
    strs_t roles = {0}, orgs = {0};
    collect_t c = {arena, &roles, &orgs, patients};
    status_t rc;
    if (caller->practitioner_id) {
        fhir_search_pair_t p[2] = {url_pair("practitioner", arena_printf(arena, "Practitioner/%s",
                                                                         caller->practitioner_id)),
                                   url_pair("_count", "1000")};
        if ((rc = search_all(conn, "PractitionerRole", p, 2, arena, collect_role, &c, err)))
            return rc;
    }
    if (caller->practitioner_role_id) {
        store_version_t v;
        err_t ignored = ERR_INIT;
        if (repo_read(conn, "PractitionerRole", caller->practitioner_role_id, 0, arena, &v,
                      &ignored) == ERR_OK) {
            json_t *role = jv_parse(v.json, v.json_len, &ignored);
            if (role) {
                collect_role(&c, role);
                json_decref(role);
            }
        } else {
            strs_add(arena, &roles, caller->practitioner_role_id);
        }
        err_release(&ignored);
    }
    buf_t members = BUF_INIT;
    if (caller->practitioner_id)
        buf_addf(&members, "Practitioner/%s", caller->practitioner_id);
    for (size_t i = 0; i < roles.n; i++)
        buf_addf(&members, "%sPractitionerRole/%s", members.len ? "," : "", roles.items[i]);
    for (size_t i = 0; i < orgs.n; i++)
        buf_addf(&members, "%sOrganization/%s", members.len ? "," : "", orgs.items[i]);
    if (!members.len) {
        buf_release(&members);
        return ERR_OK;
    }
    const char *list = arena_strndup(arena, members.ptr, members.len);
    buf_release(&members);
    fhir_search_pair_t p[3] = {url_pair("status", "active"), url_pair("participant", list),
                               url_pair("_count", "1000")};
    return search_all(conn, "CareTeam", p, 3, arena, collect_team, &c, err);
}

status_t repo_access_patients(store_conn_t *conn, const repo_caller_t *caller, arena_t *arena,
                              const char *const **out, size_t *out_n, bool *out_all, err_t *err)
{
    *out = NULL;
    *out_n = 0;
    *out_all = false;
    if (!caller || caller->kind == REPO_CALLER_SERVICE) {
        *out_all = true;
        return ERR_OK;
    }
    if (caller->kind == REPO_CALLER_PATIENT) {
        if (caller->patient_id) {
            const char **ids = arena_alloc(arena, sizeof(*ids));
            ids[0] = caller->patient_id;
            *out = ids;
            *out_n = 1;
        }
        return ERR_OK;
    }
    const char *key = caller->account_id ? caller->account_id : caller->username;
    const char **ids;
    size_t n;
    uint64_t generation = 0;
    if (key && cache_get(key, arena, &ids, &n, &generation)) {
        *out = ids;
        *out_n = n;
        return ERR_OK;
    }
    strs_t patients = {0};
    status_t rc = care_team_patients(conn, caller, arena, &patients, err);
    if (rc)
        return rc;
    if (key)
        cache_put(key, patients.items, patients.n, generation);
    *out = patients.items;
    *out_n = patients.n;
    return ERR_OK;
}

/* ---- visibility -------------------------------------------------------------------------- */

bool repo_access_emergency(const repo_caller_t *caller)
{
    return caller && caller->emergency_reason && *caller->emergency_reason &&
           (caller->kind == REPO_CALLER_STAFF || caller->kind == REPO_CALLER_ADMIN);
}

static bool has(const char *const *list, size_t n, const char *v)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], v) == 0)
            return true;
    return false;
}

status_t repo_access_visibility(store_conn_t *conn, const repo_caller_t *caller, const char *type,
                                unsigned interaction, const char *base,
                                const char *emergency_patient, arena_t *arena,
                                const store_visibility_t **out, err_t *err)
{
    *out = NULL;
    if (!caller)
        return ERR_OK;
    status_t rc;
    if (type && (rc = repo_access_scope(caller, type, interaction, err)))
        return rc;
    /* the contexts that allow it: on the type, or (several types) on any type */
    bool by_patient = false, by_user = false, by_system = false;
    store_visibility_t *v = arena_zalloc(arena, sizeof(*v));
    const char **types = arena_alloc(arena, fhir_resource_type_count * sizeof(*types));
    for (size_t i = 0; i < fhir_resource_type_count; i++) {
        const char *name = fhir_resource_types[i]->name;
        if (type && strcmp(name, type) != 0 && interaction != SCOPE_S)
            continue;
        grants_t g = grants_of(caller, name, interaction == SCOPE_S ? SCOPE_S : SCOPE_R);
        bool any = g.patient == SCOPE_PERMITTED || g.user == SCOPE_PERMITTED ||
                   g.system == SCOPE_PERMITTED;
        if (!any)
            continue;
        types[v->ntypes++] = name;
        if (!type || strcmp(name, type) == 0) {
            by_patient |= g.patient == SCOPE_PERMITTED;
            by_user |= g.user == SCOPE_PERMITTED;
            by_system |= g.system == SCOPE_PERMITTED;
        }
    }
    v->types = types;
    v->types_limited = true;
    if (by_system && v->ntypes == fhir_resource_type_count)
        return ERR_OK; /* a service with system/ scopes on every type */
    const char *const *account;
    size_t naccount;
    bool all = false;
    if ((rc = repo_access_patients(conn, caller, arena, &account, &naccount, &all, err)))
        return rc;
    strs_t patients = {0};
    bool every = by_system || (by_user && all);
    if (by_user)
        for (size_t i = 0; i < naccount; i++)
            strs_add(arena, &patients, account[i]);
    if (by_patient) {
        /* the launch patient, when the account reaches it (a patient's own) */
        const char *launch =
            caller->kind == REPO_CALLER_PATIENT ? caller->patient_id : caller->launch_patient;
        if (launch && (all || has(account, naccount, launch)))
            strs_add(arena, &patients, launch);
    }
    if (emergency_patient && repo_access_emergency(caller))
        strs_add(arena, &patients, emergency_patient);
    if (every) {
        v->patients = NULL;
        /* every type, or the one type of an interaction other than a search (whose includes
           may reach other types): nothing is hidden */
        if (v->ntypes == fhir_resource_type_count || (type && interaction != SCOPE_S))
            return ERR_OK;
        /* every patient, but only some types: shared and linked alike by type */
        repo_access_members(&v->member_types, &v->member_params, &v->nmembers);
        v->open_types = types;
        v->nopen_types = v->ntypes;
        v->base = base;
        *out = v;
        return ERR_OK;
    }
    v->patients = patients.items;
    v->npatients = patients.n;
    repo_access_members(&v->member_types, &v->member_params, &v->nmembers);
    v->unlinked = by_user && caller->kind != REPO_CALLER_PATIENT;
    if (caller->kind == REPO_CALLER_ADMIN && by_user &&
        (interaction == SCOPE_R || interaction == SCOPE_S)) {
        static const char *const open[] = {"Patient", "CareTeam"};
        v->open_types = open;
        v->nopen_types = 2;
    }
    v->base = base;
    *out = v;
    return ERR_OK;
}

status_t repo_access_denied(const repo_caller_t *caller, const char *type, const char *id,
                            err_t *err)
{
    if (caller && caller->kind == REPO_CALLER_PATIENT)
        return err_set(err, ERR_NOT_FOUND, NULL, "%s/%s is not known", type, id);
    return err_set(err, ERR_FORBIDDEN, NULL,
                   "%s/%s is outside your care teams; in an emergency, state the reason in the "
                   "X-Emergency-Access header to reach it",
                   type, id);
}

/* ---- emergency access ---------------------------------------------------------------------- */

/* A stable id for a dedup key (FNV-1a 64, twice with different bases). */
static const char *flag_id(const char *key, arena_t *arena)
{
    uint64_t h1 = 0xcbf29ce484222325ULL, h2 = 0x84222325cbf29ce4ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h1 = (h1 ^ *p) * 0x100000001b3ULL;
        h2 = (h2 ^ *p) * 0x100000001b3ULL;
    }
    return arena_printf(arena, "emergency-%016llx%016llx", (unsigned long long)h1,
                        (unsigned long long)h2);
}

static status_t flag_create(store_txn_t *txn, void *arg, err_t *err)
{
    return repo_write_txn(txn, arg, err);
}

status_t repo_access_flag_txn(store_txn_t *txn, const repo_caller_t *caller, const char *patient_id,
                              arena_t *arena, err_t *err)
{
    time_t now = (time_t)(store_txn_time_us(txn) / 1000000);
    struct tm tm;
    gmtime_r(&now, &tm);
    char date[16];
    strftime(date, sizeof(date), "%Y-%m-%d", &tm);
    const char *account = caller->account_id ? caller->account_id : "";
    const char *key = arena_printf(arena, "%s|%s|%s", account, patient_id, date);
    const char *id = flag_id(key, arena);
    store_current_t current;
    status_t rc = store_txn_current(txn, "Flag", id, &current, err);
    if (rc || (current.version && !current.deleted))
        return rc;
    const char *user = caller->username ? caller->username : account;
    json_t *flag = json_pack(
        "{s:s, s:[{s:s, s:s}], s:s, s:[{s:[{s:s, s:s, s:s}]}], s:{s:s}, s:{s:s}, s:{s:s}}",
        "resourceType", "Flag", "identifier", "system", "urn:concerto:emergency-access", "value",
        key, "status", "active", "category", "coding", "system",
        "http://terminology.hl7.org/CodeSystem/flag-category", "code", "admin", "display",
        "Administrative", "code", "text",
        arena_printf(arena, "Emergency access to the record by %s: %s", user,
                     caller->emergency_reason),
        "subject", "reference", arena_printf(arena, "Patient/%s", patient_id), "period", "start",
        store_txn_time_text(txn));
    if (caller->practitioner_id)
        json_object_set_new(
            flag, "author",
            json_pack("{s:s}", "reference",
                      arena_printf(arena, "Practitioner/%s", caller->practitioner_id)));
    json_object_set_new(flag, "id", json_string(id));
    repo_write_t w;
    rc = repo_prepare_resource(&w, REPO_UPDATE, flag, id, 0, arena, err);
    w.author = "emergency access"; /* the server raises it: its version-author (author.h) */
    json_decref(flag);
    if (rc)
        return rc;
    /* a concurrent request may raise it first: that one stands */
    err_t lost = ERR_INIT;
    rc = store_txn_nested(txn, flag_create, &w, &lost);
    err_release(&lost);
    (void)rc;
    return ERR_OK;
}

typedef struct {
    const repo_caller_t *caller;
    const char *patient_id;
    arena_t *arena;
} flag_arg_t;

static status_t flag_txn(store_txn_t *txn, void *arg, err_t *err)
{
    flag_arg_t *a = arg;
    return repo_access_flag_txn(txn, a->caller, a->patient_id, a->arena, err);
}

status_t repo_access_flag(store_t *store, const repo_caller_t *caller, const char *patient_id,
                          err_t *err)
{
    arena_t arena;
    arena_init(&arena);
    flag_arg_t a = {caller, patient_id, &arena};
    status_t rc = store_run(store, flag_txn, &a, err);
    arena_release(&arena);
    return rc;
}

/* ---- reads, history, writes ---------------------------------------------------------------- */

/* Whether type/id (current) is visible under v, by the store's own test. txn or conn. */
static status_t visible_by_id(store_conn_t *conn, store_txn_t *txn, const store_visibility_t *v,
                              const char *type, const char *id, arena_t *arena, bool *out,
                              err_t *err)
{
    *out = true;
    if (!v)
        return ERR_OK;
    fhir_search_pair_t p = url_pair("_id", id);
    repo_search_t search = {.type = fhir_resource_type_find(type, strlen(type)),
                            .pairs = &p,
                            .npairs = 1,
                            .now_us = clock_now_us()};
    if (!search.type)
        return err_set(err, ERR_NOT_FOUND, NULL, "%s is not a resource type", type);
    fhir_search_plan_t *plan;
    store_search_t query;
    status_t rc = repo_search_plan(NULL, &search, arena, &plan, &query, err);
    if (rc)
        return rc;
    query.visibility = v;
    store_search_result_t found;
    rc = txn ? store_txn_search(txn, &query, arena, &found, err)
             : store_search(conn, &query, arena, &found, err);
    if (rc)
        return rc;
    *out = found.nmatch > 0;
    return ERR_OK;
}

/* The Patient a resource of type is about when it names exactly one (for emergency access):
 * Patient/id itself, or the one Patient its linking references name. */
static const char *patient_of_json(const char *type, const char *id, const char *json, size_t len,
                                   arena_t *arena)
{
    if (strcmp(type, "Patient") == 0)
        return id;
    err_t e = ERR_INIT;
    json_t *r = jv_parse(json, len, &e);
    err_release(&e);
    if (!r)
        return NULL;
    fhir_index_rows_t rows;
    const char *found = NULL;
    const fhir_search_snapshot_t *snapshot = repo_params_acquire();
    status_t rc = fhir_index_extract(snapshot, r, arena, &rows, &e);
    if (rc == ERR_OK) {
        const char *const *types, *const *params;
        size_t n;
        repo_access_members(&types, &params, &n);
        for (size_t i = 0; i < rows.n; i++) {
            const fhir_index_row_t *row = &rows.rows[i];
            if (row->value.kind != FHIR_INDEX_REFERENCE || !row->value.as.reference.type ||
                strcmp(row->value.as.reference.type, "Patient") != 0)
                continue;
            for (size_t k = 0; k < n; k++)
                if (strcmp(types[k], type) == 0 && strcmp(params[k], row->param) == 0) {
                    if (found && strcmp(found, row->value.as.reference.id) != 0) {
                        found = NULL;
                        goto done;
                    }
                    found = row->value.as.reference.id;
                }
        }
    }
done:
    fhir_search_snapshot_release(snapshot);
    err_release(&e);
    json_decref(r);
    return found;
}

/* Where a read runs: on a connection, or inside a transaction (a Bundle's entry). */
typedef struct {
    store_conn_t *conn;
    store_txn_t *txn;
} where_t;

/* v with `patient` visible too (emergency access). */
static const store_visibility_t *with_patient(const store_visibility_t *v, const char *patient,
                                              arena_t *arena)
{
    store_visibility_t *w = arena_alloc(arena, sizeof(*w));
    *w = *v;
    const char **patients = arena_alloc(arena, (v->npatients + 1) * sizeof(*patients));
    for (size_t i = 0; i < v->npatients; i++)
        patients[i] = v->patients[i];
    patients[v->npatients] = patient;
    w->patients = patients;
    w->npatients = v->npatients + 1;
    return w;
}

/* Whether a read by id (rc and *out: what it found; err holds its error) may be shown to
 * caller under v, their visibility for reading type (NULL: nothing hidden), on a connection or
 * in a transaction: rc when it may, else the denial. The scopes were checked. */
static status_t read_visible(where_t at, const repo_caller_t *caller, const store_visibility_t *v,
                             const char *type, const char *id, int64_t version, arena_t *arena,
                             status_t rc, const store_version_t *out, repo_access_note_t *note,
                             err_t *err)
{
    if (!caller || !v || (rc && rc != ERR_GONE))
        return rc;
    status_t arc;
    bool visible = true;
    store_version_t current = *out;
    if (version) {
        err_t ignored = ERR_INIT;
        status_t crc = at.conn ? store_read(at.conn, type, id, 0, arena, &current, &ignored)
                               : store_txn_read(at.txn, type, id, 0, arena, &current, &ignored);
        if (crc != ERR_OK)
            current.deleted = true;
        err_release(&ignored);
    }
    if (current.deleted) {
        /* nothing tells whose it was: only a type visible whole, or shared */
        visible = !linked_type(type) || (strcmp(type, "Patient") == 0 && v->npatients &&
                                         has(v->patients, v->npatients, id));
        for (size_t i = 0; i < v->nopen_types && !visible; i++)
            visible = strcmp(v->open_types[i], type) == 0;
    } else {
        err_t verr = ERR_INIT;
        arc = visible_by_id(at.conn, at.txn, v, type, id, arena, &visible, &verr);
        if (arc) {
            err_move(err, &verr);
            return arc;
        }
        err_release(&verr);
    }
    if (!visible && repo_access_emergency(caller) && !current.deleted) {
        const char *patient = patient_of_json(type, id, current.json, current.json_len, arena);
        if (patient) {
            err_t verr = ERR_INIT;
            arc = visible_by_id(at.conn, at.txn, with_patient(v, patient, arena), type, id, arena,
                                &visible, &verr);
            err_release(&verr);
            if (!arc && visible) {
                arc = at.conn ? repo_access_flag(store_conn_store(store_conn_primary(at.conn)),
                                                 caller, patient, err)
                              : repo_access_flag_txn(at.txn, caller, patient, arena, err);
                if (arc)
                    return arc;
                if (note)
                    note->emergency_patient = patient;
            }
        }
    }
    if (!visible) {
        err_reset(err);
        return repo_access_denied(caller, type, id, err);
    }
    return rc;
}

status_t repo_read_as(store_conn_t *conn, const repo_caller_t *caller, const char *type,
                      const char *id, int64_t version, arena_t *arena, store_version_t *out,
                      repo_access_note_t *note, err_t *err)
{
    status_t rc;
    const store_visibility_t *v = NULL;
    if (caller && (rc = repo_access_scope(caller, type, SCOPE_R, err)))
        return rc;
    rc = repo_read(conn, type, id, version, arena, out, err);
    if (!caller || (rc && rc != ERR_GONE))
        return rc;
    err_t verr = ERR_INIT;
    status_t arc =
        repo_access_visibility(conn, caller, type, SCOPE_R, NULL, NULL, arena, &v, &verr);
    if (arc) {
        err_reset(err);
        err_move(err, &verr);
        return arc;
    }
    err_release(&verr);
    where_t at = {.conn = conn};
    return read_visible(at, caller, v, type, id, version, arena, rc, out, note, err);
}

status_t repo__access_read_txn(store_txn_t *txn, const repo_caller_t *caller,
                               const store_visibility_t *v, const char *type, const char *id,
                               int64_t version, arena_t *arena, store_version_t *out,
                               repo_access_note_t *note, err_t *err)
{
    where_t at = {.txn = txn};
    status_t rc = store_txn_read(txn, type, id, version, arena, out, err);
    if (!rc && out->deleted)
        rc = err_set(err, ERR_GONE, NULL, "%s/%s is deleted", type, id);
    return read_visible(at, caller, v, type, id, version, arena, rc, out, note, err);
}

status_t repo__access_visible_txn(store_txn_t *txn, const store_visibility_t *v, const char *type,
                                  const char *id, arena_t *arena, bool *out_visible, err_t *err)
{
    return visible_by_id(NULL, txn, v, type, id, arena, out_visible, err);
}

status_t repo_history(store_conn_t *conn, const repo_caller_t *caller,
                      const store_history_query_t *query, arena_t *arena, store_history_t *out,
                      repo_access_note_t *note, err_t *err)
{
    store_history_query_t q = *query;
    status_t rc;
    if (caller && q.type && q.id) {
        store_version_t v;
        rc = repo_read_as(conn, caller, q.type, q.id, 0, arena, &v, note, err);
        if (rc && rc != ERR_GONE)
            return rc;
        err_reset(err);
    } else if (caller) {
        if ((rc = repo_access_visibility(conn, caller, q.type, SCOPE_R, NULL, NULL, arena,
                                         &q.visibility, err)))
            return rc;
    }
    if (!q.count) {
        memset(out, 0, sizeof(*out));
        out->total = -1;
        return ERR_OK;
    }
    return store_history(conn, &q, arena, out, err);
}

/* The Patients the linking references of rows name (type's parameters); a reference by
 * identifier only, or to a Patient elsewhere, counts as a Patient no caller reaches ("?"). */
static void linked_patients(const char *type, const fhir_index_rows_t *rows, arena_t *arena,
                            strs_t *out)
{
    const char *const *types, *const *params;
    size_t n;
    repo_access_members(&types, &params, &n);
    for (size_t i = 0; i < rows->n; i++) {
        const fhir_index_row_t *row = &rows->rows[i];
        if (row->value.kind != FHIR_INDEX_REFERENCE)
            continue;
        bool linking = false;
        for (size_t k = 0; k < n && !linking; k++)
            linking = strcmp(types[k], type) == 0 && strcmp(params[k], row->param) == 0;
        if (!linking)
            continue;
        const char *rt = row->value.as.reference.type;
        const char *url = row->value.as.reference.url;
        if (rt && strcmp(rt, "Patient") == 0)
            strs_add(arena, out, row->value.as.reference.id);
        else if (!rt && (!url || strstr(url, "Patient/")))
            strs_add(arena, out, "?");
    }
}

static void release_snapshot(void *snapshot)
{
    fhir_search_snapshot_release(snapshot);
}

static status_t rows_of_current(store_txn_t *txn, const char *type, const char *id, arena_t *arena,
                                fhir_index_rows_t *rows, err_t *err)
{
    store_version_t old;
    status_t rc = store_txn_read(txn, type, id, 0, arena, &old, err);
    if (rc)
        return rc;
    json_t *r = jv_parse(old.json, old.json_len, err);
    if (!r)
        return err->code;
    const fhir_search_snapshot_t *snapshot = repo_params_acquire();
    /* the rows borrow parameter names from the snapshot: it goes with the arena */
    arena_cleanup_add(arena, release_snapshot, (void *)snapshot);
    rc = fhir_index_extract(snapshot, r, arena, rows, err);
    json_decref(r);
    return rc;
}

/* Whether Patient/patient has an active CareTeam, seen from the transaction. */
static status_t has_active_team(store_txn_t *txn, const char *patient, arena_t *arena, bool *out,
                                err_t *err)
{
    fhir_search_pair_t p[2] = {url_pair("subject", arena_printf(arena, "Patient/%s", patient)),
                               url_pair("status", "active")};
    repo_search_t search = {.type = fhir_resource_type_find("CareTeam", 8),
                            .pairs = p,
                            .npairs = 2,
                            .now_us = clock_now_us()};
    fhir_search_plan_t *plan;
    store_search_t query;
    status_t rc = repo_search_plan(NULL, &search, arena, &plan, &query, err);
    if (rc)
        return rc;
    store_search_result_t found;
    if ((rc = store_txn_search(txn, &query, arena, &found, err)))
        return rc;
    *out = found.nmatch > 0;
    return ERR_OK;
}

static unsigned write_interaction(const repo_write_t *w)
{
    switch (w->action) {
    case REPO_CREATE: return SCOPE_C;
    case REPO_DELETE: return SCOPE_D;
    default: return SCOPE_U;
    }
}

status_t repo_access_prepare_write(store_conn_t *conn, repo_write_t *w, err_t *err)
{
    w->access = NULL;
    w->access_ready = true;
    if (!w->caller)
        return ERR_OK;
    return repo_access_visibility(conn, w->caller, w->type, write_interaction(w), NULL, NULL,
                                  w->arena, &w->access, err);
}

status_t repo__access_write(store_txn_t *txn, repo_write_t *w, const store_current_t *current,
                            err_t *err)
{
    const repo_caller_t *caller = w->caller;
    if (!caller)
        return ERR_OK;
    if (!w->access_ready)
        return err_set(err, ERR_INTERNAL, NULL, "the access to %s/%s was not worked out", w->type,
                       w->id);
    status_t rc = repo_access_scope(caller, w->type, write_interaction(w), err);
    const store_visibility_t *v = w->access;
    if (rc || !v)
        return rc;
    bool staff = caller->kind == REPO_CALLER_STAFF || caller->kind == REPO_CALLER_ADMIN;
    if (caller->kind == REPO_CALLER_ADMIN && admin_managed(w->type))
        return ERR_OK;
    if (!linked_type(w->type))
        return err_set(err, ERR_FORBIDDEN, NULL, "only admins and services write %s resources",
                       w->type);
    bool exists = current->version && !current->deleted;
    if (staff && strcmp(w->type, "Patient") == 0 && !exists && w->action != REPO_DELETE)
        return ERR_OK; /* enrolment */
    strs_t patients = {0};
    if (strcmp(w->type, "Patient") == 0) {
        strs_add(w->arena, &patients, w->id);
    } else {
        if (exists) {
            fhir_index_rows_t old;
            if ((rc = rows_of_current(txn, w->type, w->id, w->arena, &old, err)))
                return rc;
            linked_patients(w->type, &old, w->arena, &patients);
        }
        if (w->action != REPO_DELETE)
            linked_patients(w->type, &w->index, w->arena, &patients);
    }
    if (staff && strcmp(w->type, "CareTeam") == 0 && !exists && w->action != REPO_DELETE &&
        patients.n == 1 && strcmp(patients.items[0], "?") != 0) {
        bool active;
        if ((rc = has_active_team(txn, patients.items[0], w->arena, &active, err)))
            return rc;
        if (!active)
            return ERR_OK; /* a coordinator's first CareTeam for someone */
    }
    if (!patients.n)
        return v->unlinked ? ERR_OK
                           : err_set(err, ERR_FORBIDDEN, NULL,
                                     "%s/%s refers to no patient of yours", w->type, w->id);
    const char *outside = NULL;
    bool several = false;
    for (size_t i = 0; i < patients.n; i++) {
        if (has(v->patients, v->npatients, patients.items[i]))
            continue;
        if (outside && strcmp(outside, patients.items[i]) != 0)
            several = true;
        outside = patients.items[i];
    }
    if (!outside)
        return ERR_OK;
    if (!several && strcmp(outside, "?") != 0 && repo_access_emergency(caller)) {
        if ((rc = repo_access_flag_txn(txn, caller, outside, w->arena, err)))
            return rc;
        w->emergency_patient = outside;
        return ERR_OK;
    }
    if (strcmp(outside, "?") == 0)
        return err_set(err, ERR_FORBIDDEN, NULL,
                       "%s/%s refers to a patient by identifier or on another server, which the "
                       "access policy cannot place",
                       w->type, w->id);
    if (caller->kind == REPO_CALLER_PATIENT)
        return err_set(err, ERR_FORBIDDEN, NULL, "%s/%s concerns a patient other than you", w->type,
                       w->id);
    return err_set(err, ERR_FORBIDDEN, NULL,
                   "%s/%s concerns Patient/%s, outside your care teams; in an emergency, state "
                   "the reason in the X-Emergency-Access header",
                   w->type, w->id, outside);
}

/* ---- searches and $everything -------------------------------------------------------------- */

/* The one Patient a search names for emergency access: its compartment, or a patient= or
 * subject= naming one Patient. */
static const char *search_patient(const repo_search_t *search, arena_t *arena)
{
    if (search->compartment_type && strcmp(search->compartment_type, "Patient") == 0)
        return search->compartment_id;
    const char *found = NULL;
    for (size_t i = 0; i < search->npairs; i++) {
        const fhir_search_pair_t *p = &search->pairs[i];
        bool patient = p->name_len == 7 && memcmp(p->name, "patient", 7) == 0;
        bool subject = p->name_len == 7 && memcmp(p->name, "subject", 7) == 0;
        if (!patient && !subject)
            continue;
        const char *value = arena_strndup(arena, p->value, p->value_len);
        if (strchr(value, ','))
            return NULL;
        if (strncmp(value, "Patient/", 8) == 0)
            value += 8;
        else if (subject)
            return NULL;
        if (!*value || strchr(value, '/') || (found && strcmp(found, value) != 0))
            return NULL;
        found = value;
    }
    return found;
}

/* Emergency access to patient under v: the visibility with it, the Flag, the note. */
static status_t emergency(store_conn_t *conn, const repo_caller_t *caller, const char *type,
                          unsigned interaction, const char *base, const char *patient,
                          repo_access_note_t *note, arena_t *arena, const store_visibility_t **v,
                          err_t *err)
{
    if (!patient || !*v || !repo_access_emergency(caller) ||
        has((*v)->patients, (*v)->npatients, patient))
        return ERR_OK;
    status_t rc;
    if ((rc =
             repo_access_visibility(conn, caller, type, interaction, base, patient, arena, v, err)))
        return rc;
    if ((rc = repo_access_flag(store_conn_store(store_conn_primary(conn)), caller, patient, err)))
        return rc;
    if (note)
        note->emergency_patient = patient;
    return ERR_OK;
}

status_t repo__access_search(store_conn_t *conn, const repo_search_t *search,
                             const fhir_search_plan_t *plan, arena_t *arena,
                             const store_visibility_t **out, err_t *err)
{
    *out = NULL;
    const repo_caller_t *caller = search->caller;
    if (!caller)
        return ERR_OK;
    if (!conn)
        return err_set(err, ERR_INTERNAL, NULL, "a search for a caller needs a connection");
    status_t rc;
    for (size_t b = 0; b < plan->nbranches; b++)
        if (plan->branches[b].type &&
            (rc = repo_access_scope(caller, plan->branches[b].type->name, SCOPE_S, err)))
            return rc;
    const char *type =
        plan->nbranches == 1 && plan->branches[0].type ? plan->branches[0].type->name : NULL;
    if ((rc = repo_access_visibility(conn, caller, type, SCOPE_S, search->base, NULL, arena, out,
                                     err)))
        return rc;
    return emergency(conn, caller, type, SCOPE_S, search->base, search_patient(search, arena),
                     search->note, arena, out, err);
}

status_t repo__access_everything(store_conn_t *conn, const repo_everything_t *query, arena_t *arena,
                                 const store_visibility_t **out, err_t *err)
{
    *out = NULL;
    const repo_caller_t *caller = query->caller;
    if (!caller)
        return ERR_OK;
    status_t rc;
    if ((rc = repo_access_scope(caller, "Patient", SCOPE_R, err)) ||
        (rc = repo_access_visibility(conn, caller, NULL, SCOPE_S, NULL, NULL, arena, out, err)))
        return rc;
    if (!*out || !query->patient_id)
        return ERR_OK;
    if ((rc = emergency(conn, caller, NULL, SCOPE_S, NULL, query->patient_id, query->note, arena,
                        out, err)))
        return rc;
    /* an admin reads every Patient, but a record only through the staff rule */
    if (!has((*out)->patients, (*out)->npatients, query->patient_id))
        return repo_access_denied(caller, "Patient", query->patient_id, err);
    return ERR_OK;
}
