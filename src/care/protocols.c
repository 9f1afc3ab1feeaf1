/*
 * protocols.c - runs protocols for the engine and for $apply: finds the active protocols
 * (compiled ones cached by PlanDefinition id and version and the ids and versions of the
 * ActivityDefinitions they name, so a change of any of them compiles again, whichever server
 * wrote it), plans what the triggered actions make on a connection, and writes it in one
 * transaction that first checks, by identifier, that none of it exists yet.
 */
#include "care/protocols.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/calendar.h"
#include "base/jv.h"
#include "base/log.h"
#include "base/mem.h"
#include "care/care_int.h"
#include "care/engine.h"
#include "care/protocol.h"
#include "care/transitions.h"
#include "fhir/defs.h"
#include "fhir/workflow.h"
#include "repo/repo.h"
#include "repo/worker.h"

#define MAX_PLANS  200 /* active protocols looked at per event */
#define MAX_WRITES 256 /* resources one event makes */

/* The first current resource of type with identifier system|value, or NULL. */
static status_t find_by_identifier(store_conn_t *conn, store_txn_t *txn, const char *type,
                                   const char *system, const char *value, int64_t now_us,
                                   arena_t *arena, const store_version_t **out, err_t *err)
{
    *out = NULL;
    fhir_search_pair_t pairs[] = {
        url_pair("identifier", arena_printf(arena, "%s|%s", system, value)),
        url_pair("_count", "1"),
    };
    store_search_result_t found;
    status_t rc = care__search(conn, txn, type, pairs, 2, now_us, arena, &found, err);
    if (rc == ERR_OK && found.nmatch)
        *out = &found.entries[0].version;
    return rc;
}

/* ---- compiled protocols, cached ---------------------------------------------------------- */

typedef struct cached {
    char *plan_id;
    char *key; /* plan id, version, and the ids and versions of its ActivityDefinitions */
    care_protocol_t *protocol;
    int refs;
    bool stale; /* no longer in the list: freed by its last release */
    struct cached *next;
} cached_t;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cached_t *cache;

static void cached_free(cached_t *c)
{
    care_protocol_free(c->protocol);
    free(c->plan_id);
    free(c->key);
    free(c);
}

static void cached_release(void *p)
{
    cached_t *c = p;
    pthread_mutex_lock(&cache_lock);
    bool last = --c->refs == 0 && c->stale;
    pthread_mutex_unlock(&cache_lock);
    if (last)
        cached_free(c);
}

/* The compiled protocol of key, made by compiling plan with activities when it is not cached;
 * held until arena is released. */
static status_t protocol_get(const char *plan_id, const char *key, const json_t *plan,
                             const json_t *const *activities, size_t n, arena_t *arena,
                             const care_protocol_t **out, err_t *err)
{
    pthread_mutex_lock(&cache_lock);
    for (cached_t *c = cache; c; c = c->next)
        if (strcmp(c->key, key) == 0) {
            c->refs++;
            pthread_mutex_unlock(&cache_lock);
            arena_cleanup_add(arena, cached_release, c);
            *out = c->protocol;
            return ERR_OK;
        }
    pthread_mutex_unlock(&cache_lock);
    care_protocol_t *p;
    status_t rc = care_protocol_compile(plan, activities, n, CARE_PROTOCOL_UNRESOLVED, &p, err);
    if (rc)
        return rc;
    cached_t *c = xcalloc(1, sizeof(*c));
    c->plan_id = xstrdup(plan_id);
    c->key = xstrdup(key);
    c->protocol = p;
    c->refs = 1;
    pthread_mutex_lock(&cache_lock);
    /* the plan's older compilations leave the list */
    for (cached_t **at = &cache; *at;) {
        cached_t *old = *at;
        if (strcmp(old->plan_id, plan_id) == 0) {
            *at = old->next;
            old->stale = true;
            if (old->refs == 0)
                cached_free(old);
        } else {
            at = &old->next;
        }
    }
    c->next = cache;
    cache = c;
    pthread_mutex_unlock(&cache_lock);
    arena_cleanup_add(arena, cached_release, c);
    *out = p;
    return ERR_OK;
}

/* The active ActivityDefinition a canonical names (url or url|version), or NULL. */
static status_t activity_find(store_conn_t *conn, const char *canonical, int64_t now_us,
                              arena_t *arena, const store_version_t **out, err_t *err)
{
    *out = NULL;
    const char *bar = strchr(canonical, '|');
    const char *url = bar ? arena_strndup(arena, canonical, (size_t)(bar - canonical)) : canonical;
    fhir_search_pair_t pairs[4] = {url_pair("url", url), url_pair("status", "active"),
                                   url_pair("_count", "2")};
    size_t n = 3;
    if (bar)
        pairs[n++] = url_pair("version", bar + 1);
    store_search_result_t found;
    status_t rc =
        care__search(conn, NULL, "ActivityDefinition", pairs, n, now_us, arena, &found, err);
    if (rc == ERR_OK && found.nmatch)
        *out = &found.entries[0].version;
    return rc;
}

/* The compiled protocol of a stored PlanDefinition version, its ActivityDefinitions read; an
 * action naming one that is not there is left unresolved. */
static status_t protocol_of(store_conn_t *conn, const store_version_t *v, int64_t now_us,
                            arena_t *arena, const care_protocol_t **out, err_t *err)
{
    json_t *plan = care__json_in(arena, v->json, v->json_len, err);
    if (!plan)
        return err->code;
    json_t *actions = json_object_get(plan, "action");
    size_t nact = json_array_size(actions), n = 0;
    const json_t **activities = arena_zalloc(arena, (nact + 1) * sizeof(json_t *));
    buf_t key = BUF_INIT;
    buf_addf(&key, "%s/%lld", v->id, (long long)v->version);
    status_t rc = ERR_OK;
    for (size_t i = 0; i < nact && rc == ERR_OK; i++) {
        const char *canonical = care__str(json_array_get(actions, i), "definitionCanonical");
        if (!canonical)
            continue;
        const store_version_t *ad;
        if ((rc = activity_find(conn, canonical, now_us, arena, &ad, err)))
            break;
        if (!ad) {
            /* its action fails when it is to run (the event is retried, then dead); the
               other actions of the protocol run */
            buf_addstr(&key, ",-");
            continue;
        }
        json_t *j = care__json_in(arena, ad->json, ad->json_len, err);
        if (!j) {
            rc = err->code;
            break;
        }
        activities[n++] = j;
        buf_addf(&key, ",%s/%lld", ad->id, (long long)ad->version);
    }
    if (rc == ERR_OK)
        rc = protocol_get(v->id, key.ptr, plan, activities, n, arena, out, err);
    buf_release(&key);
    return rc;
}

/* ---- planning what a run makes ----------------------------------------------------------- */

typedef struct {
    const char *type;
    const char *system, *value; /* must not exist when the transaction runs */
} check_t;

typedef struct {
    arena_t *arena;
    store_conn_t *conn;
    const repo_caller_t *caller; /* NULL: the engine */
    int64_t now_us;
    repo_write_t writes[MAX_WRITES];
    json_t *made[MAX_WRITES]; /* what each write stores (for $apply's answer) */
    size_t nwrites;
    check_t checks[MAX_WRITES];
    size_t nchecks;
    bool dry_run;
    bool rolled_back; /* a dry run's transaction rolled back on purpose */
    json_t *careplan; /* the CarePlan of the last protocol planned (its JSON) */
} batch_t;

static status_t add_write(batch_t *b, repo_action_t action, json_t *resource, const char *id,
                          int64_t if_match, const char *check_system, const char *check_value,
                          err_t *err)
{
    if (b->nwrites == MAX_WRITES)
        return err_set(err, ERR_RULE, NULL, "one event would make more than %d resources",
                       MAX_WRITES);
    repo_write_t *w = &b->writes[b->nwrites];
    json_object_set_new(resource, "id", json_string(id));
    status_t rc = repo_prepare_resource(w, action, resource, id, if_match, b->arena, err);
    if (rc)
        return rc;
    if (b->caller) {
        w->caller = b->caller;
        if ((rc = repo_access_prepare_write(b->conn, w, err)))
            return rc;
    } else {
        w->caller = care_engine_caller();
        w->access_ready = true; /* a service: nothing is hidden from it */
    }
    care__owned(b->arena, json_incref(resource));
    b->made[b->nwrites++] = resource;
    if (check_system)
        b->checks[b->nchecks++] =
            (check_t){care__str(resource, "resourceType"), check_system, check_value};
    return ERR_OK;
}

/* What the actions of protocol p selected for the event make, added to b. always_careplan:
 * the CarePlan is made even when nothing else is ($apply). */
static status_t plan_protocol(batch_t *b, const care_protocol_t *p, const care_action_t **actions,
                              size_t n, care_event_t *event, bool always_careplan, err_t *err)
{
    arena_t *arena = b->arena;
    const char *cp_key = arena_printf(arena, "%s/Patient/%s", p->id, event->patient_id);
    const store_version_t *found;
    status_t rc = find_by_identifier(b->conn, NULL, "CarePlan", CARE_PROTOCOL_CAREPLAN_SYSTEM,
                                     cp_key, b->now_us, arena, &found, err);
    if (rc)
        return rc;
    json_t *careplan = NULL;
    const char *cp_id;
    if (found) {
        if (!(careplan = care__json_in(arena, found->json, found->json_len, err)))
            return err->code;
        cp_id = found->id;
    } else {
        cp_id = repo_new_id(arena);
    }
    event->careplan = arena_printf(arena, "CarePlan/%s", cp_id);
    json_t *activity = json_array();
    care__owned(arena, activity);
    for (size_t i = 0; i < n; i++) {
        const care_action_t *a = actions[i];
        bool applies;
        if ((rc = care_action_applies(p, a, event, arena, &applies, err)))
            return rc;
        if (!applies)
            continue;
        const char *key = care_action_key(p, a, event, arena);
        if (a->definition) {
            if (!a->activity)
                return err_set(err, ERR_RULE, NULL,
                               "action \"%s\" of %s names %s, which is not an active "
                               "ActivityDefinition",
                               a->id, p->url, a->definition);
            const char *type =
                a->activity->kind == CARE_KIND_TASK ? "Task" : "CommunicationRequest";
            const store_version_t *exists;
            if ((rc = find_by_identifier(b->conn, NULL, type, CARE_PROTOCOL_ACTION_SYSTEM, key,
                                         b->now_us, arena, &exists, err)))
                return rc;
            if (!exists) {
                json_t *r;
                if ((rc = care_action_instantiate(p, a, event, arena, &r, err)))
                    return rc;
                const char *id = repo_new_id(arena);
                rc = add_write(b, REPO_CREATE, r, id, 0, CARE_PROTOCOL_ACTION_SYSTEM, key, err);
                json_decref(r);
                if (rc)
                    return rc;
                json_array_append_new(activity, json_pack("{s:{s:s}}", "reference", "reference",
                                                          arena_printf(arena, "%s/%s", type, id)));
            }
        }
        if (a->flag) {
            const store_version_t *exists;
            if ((rc = find_by_identifier(b->conn, NULL, "Flag", CARE_PROTOCOL_ACTION_SYSTEM, key,
                                         b->now_us, arena, &exists, err)))
                return rc;
            if (!exists) {
                json_t *f = care_action_flag(p, a, event, arena);
                rc = add_write(b, REPO_CREATE, f, repo_new_id(arena), 0,
                               CARE_PROTOCOL_ACTION_SYSTEM, key, err);
                json_decref(f);
                if (rc)
                    return rc;
            }
        }
    }
    if (!careplan && (json_array_size(activity) || always_careplan || b->nwrites)) {
        careplan =
            json_pack("{s:s,s:[{s:s,s:s}],s:[s],s:s,s:s,s:{s:s}}", "resourceType", "CarePlan",
                      "identifier", "system", CARE_PROTOCOL_CAREPLAN_SYSTEM, "value", cp_key,
                      "instantiatesCanonical", p->url, "status", "active", "intent", "plan",
                      "subject", "reference", arena_printf(arena, "Patient/%s", event->patient_id));
        if (p->title)
            json_object_set_new(careplan, "title", json_string(p->title));
        if (json_array_size(activity))
            json_object_set(careplan, "activity", activity);
        rc = add_write(b, REPO_CREATE, careplan, cp_id, 0, CARE_PROTOCOL_CAREPLAN_SYSTEM, cp_key,
                       err);
        json_decref(careplan);
        if (rc)
            return rc;
    } else if (careplan && json_array_size(activity)) {
        json_t *next = json_deep_copy(careplan);
        json_object_del(next, "meta");
        json_t *list = json_object_get(next, "activity");
        if (!json_is_array(list)) {
            list = json_array();
            json_object_set_new(next, "activity", list);
        }
        json_array_extend(list, activity);
        rc = add_write(b, REPO_UPDATE, next, cp_id, found->version, NULL, NULL, err);
        json_decref(next);
        if (rc)
            return rc;
        careplan = b->made[b->nwrites - 1];
    }
    b->careplan = careplan;
    return ERR_OK;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Serializes the runs for one patient and protocol across processes (store_txn_lock): without
 * it two servers handling two events of the same patient at once could each find no CarePlan
 * of the protocol yet and make one. Every resource a run makes is for the CarePlans it checks,
 * so their locks cover the rest; taken in one order, so that two runs cannot deadlock. */
static status_t lock_careplans(store_txn_t *txn, batch_t *b, err_t *err)
{
    const char **keys = arena_alloc(b->arena, (b->nchecks + 1) * sizeof(*keys));
    size_t n = 0;
    for (size_t i = 0; i < b->nchecks; i++)
        if (strcmp(b->checks[i].system, CARE_PROTOCOL_CAREPLAN_SYSTEM) == 0)
            keys[n++] = b->checks[i].value;
    qsort(keys, n, sizeof(*keys), compare_strings);
    for (size_t i = 0; i < n; i++) {
        status_t rc = store_txn_lock(
            txn, arena_printf(b->arena, "%s|%s", CARE_PROTOCOL_CAREPLAN_SYSTEM, keys[i]), err);
        if (rc)
            return rc;
    }
    return ERR_OK;
}

static status_t batch_txn(store_txn_t *txn, void *arg, err_t *err)
{
    batch_t *b = arg;
    status_t rc = lock_careplans(txn, b, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < b->nchecks; i++) {
        const store_version_t *exists;
        if ((rc = find_by_identifier(NULL, txn, b->checks[i].type, b->checks[i].system,
                                     b->checks[i].value, store_txn_time_us(txn), b->arena, &exists,
                                     err)))
            return rc;
        if (exists)
            return err_set(err, ERR_CONFLICT, NULL,
                           "%s/%s with identifier %s|%s was made meanwhile; the run is redone",
                           exists->type, exists->id, b->checks[i].system, b->checks[i].value);
    }
    for (size_t i = 0; i < b->nwrites; i++)
        if ((rc = repo_write_txn(txn, &b->writes[i], err)))
            return rc;
    if (b->dry_run) {
        b->rolled_back = true; /* the writes were allowed; keep none of them */
        return err_set(err, ERR_CONFLICT, NULL, "a dry run");
    }
    return ERR_OK;
}

static status_t batch_commit(store_t *store, batch_t *b, err_t *err)
{
    if (b->nwrites == 0)
        return ERR_OK;
    /* The engine's own runs need not wait for the disk: the event or job that caused them is
       settled by a durable commit afterwards, which makes them durable too, and a crash
       before it brings the event back to a run that makes whatever was lost (store.h,
       store_run_relaxed). $apply answers a person: it waits. */
    status_t rc = b->caller ? store_run(store, batch_txn, b, err)
                            : store_run_relaxed(store, batch_txn, b, err);
    if (rc && b->rolled_back) {
        err_reset(err);
        return ERR_OK;
    }
    return rc;
}

/* ---- the event's patient and team -------------------------------------------------------- */

/* The id of ref when it is "Patient/<id>", in arena; NULL otherwise. */
static const char *patient_id_of(const char *ref, arena_t *arena)
{
    if (ref && strncmp(ref, "Patient/", 8) == 0 && repo_id_valid(ref + 8, strlen(ref + 8)))
        return arena_strdup(arena, ref + 8);
    return NULL;
}

/* The Patient id a resource is about: its own for a Patient, else the Patient of subject,
 * patient, for or beneficiary, or for an Appointment (which has none of them) the first
 * participant whose actor is a Patient; NULL when none. */
static const char *patient_of(const char *type, const json_t *r, arena_t *arena)
{
    if (strcmp(type, "Patient") == 0)
        return care__str(r, "id");
    static const char *const KEYS[] = {"subject", "patient", "for", "beneficiary"};
    for (size_t i = 0; i < sizeof(KEYS) / sizeof(KEYS[0]); i++) {
        const char *id = patient_id_of(care__str(json_object_get(r, KEYS[i]), "reference"), arena);
        if (id)
            return id;
    }
    if (strcmp(type, "Appointment") == 0) {
        size_t i;
        const json_t *p;
        json_array_foreach(json_object_get(r, "participant"), i, p)
        {
            const char *id =
                patient_id_of(care__str(json_object_get(p, "actor"), "reference"), arena);
            if (id)
                return id;
        }
    }
    return NULL;
}

/* ---- firing ------------------------------------------------------------------------------ */

/* The protocol url and action id of a Task a protocol made ("url#id"), or false. */
static bool made_by(const json_t *task, arena_t *arena, const char **out_url, const char **out_id)
{
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(task, "extension"), i, e)
    {
        const char *url = care__str(e, "url"), *value = care__str(e, "valueString");
        if (!url || !value || strcmp(url, CARE_EXT_PROTOCOL_ACTION) != 0)
            continue;
        const char *hash = strrchr(value, '#');
        if (!hash)
            return false;
        *out_url = arena_strndup(arena, value, (size_t)(hash - value));
        *out_id = hash + 1;
        return true;
    }
    return false;
}

status_t care_protocols_fire(store_t *store, care_trigger_t trigger, const char *type,
                             const char *id, int64_t version, int64_t time_us, err_t *err)
{
    arena_t arena;
    arena_init(&arena);
    store_conn_t *conn = NULL;
    batch_t *b = NULL;
    status_t rc = store_connect(store, &conn, err);
    if (rc)
        goto out;
    json_t *resource;
    if ((rc = care__read(conn, type, id, version, &arena, &resource, err)) || !resource)
        goto out;
    const char *patient_id = patient_of(type, resource, &arena);
    if (!patient_id)
        goto out;
    bool stands = true; /* a stay's admission or discharge taken back meanwhile: nothing */
    if (strcmp(type, "Encounter") == 0 &&
        ((rc = care_encounter_event_stands(conn, id, version, trigger, &arena, &stands, err)) ||
         !stands))
        goto out;
    const char *follows_url = NULL, *follows_action = NULL;
    if (trigger == CARE_TASK_COMPLETED && strcmp(type, "Task") == 0)
        made_by(resource, &arena, &follows_url, &follows_action);

    fhir_search_pair_t pairs[] = {
        url_pair("status", "active"),
        url_pair("type", CARE_PLAN_TYPE_SYSTEM "|" CARE_PLAN_TYPE_WORKFLOW),
        url_pair("_count", "200"),
    };
    store_search_result_t plans;
    if ((rc = care__search(conn, NULL, "PlanDefinition", pairs, 3, time_us, &arena, &plans, err)))
        goto out;
    care_event_t event = {.type = type,
                          .id = id,
                          .version = version,
                          .resource = resource,
                          .patient_id = patient_id,
                          .calendar = calendar_default(),
                          .time_us = time_us};
    bool loaded = false;
    b = xcalloc(1, sizeof(*b));
    *b = (batch_t){.arena = &arena, .conn = conn, .now_us = time_us};
    for (size_t i = 0; i < plans.nmatch && i < MAX_PLANS; i++) {
        const care_protocol_t *p;
        if ((rc = protocol_of(conn, &plans.entries[i].version, time_us, &arena, &p, err)))
            goto out;
        const care_action_t *selected[CARE_PROTOCOL_MAX_ACTIONS];
        size_t n = 0;
        int follows = follows_url && strcmp(follows_url, p->url) == 0
                          ? care_protocol_action_find(p, follows_action)
                          : -1;
        for (size_t k = 0; k < p->nactions; k++)
            if ((p->actions[k].triggers & (1u << trigger)) ||
                (follows >= 0 && p->actions[k].after == follows))
                selected[n++] = &p->actions[k];
        if (n == 0)
            continue;
        if (!loaded) {
            loaded = true;
            if ((rc = care__read(conn, "Patient", patient_id, 0, &arena, &event.patient, err)))
                goto out;
            if (!event.patient)
                goto out; /* the patient is gone: nothing to coordinate */
            json_t *team;
            if ((rc = care__coordination_team(conn, arena_printf(&arena, "Patient/%s", patient_id),
                                              time_us, &arena, &team, err)))
                goto out;
            event.team = team;
        }
        if ((rc = plan_protocol(b, p, selected, n, &event, false, err)))
            goto out;
    }
    rc = batch_commit(store, b, err);
    if (rc == ERR_OK && b->nwrites)
        log_info("engine: %s of %s/%s/_history/%lld made %zu resource(s) for Patient/%s",
                 care_trigger_name(trigger), type, id, (long long)version, b->nwrites, patient_id);
out:
    free(b);
    if (conn)
        store_disconnect(conn);
    arena_release(&arena);
    return rc;
}

/* ---- scheduled occurrences (care/scheduled.c) --------------------------------------------- */

status_t care_protocols_get(store_conn_t *conn, const char *plan_id, int64_t now_us, arena_t *arena,
                            const care_protocol_t **out, err_t *err)
{
    *out = NULL;
    store_version_t v;
    status_t rc = store_read(conn, "PlanDefinition", plan_id, 0, arena, &v, err);
    if (rc == ERR_NOT_FOUND || rc == ERR_GONE || (rc == ERR_OK && v.deleted)) {
        err_reset(err);
        return ERR_OK;
    }
    if (rc)
        return rc;
    json_t *plan = care__json_in(arena, v.json, v.json_len, err);
    if (!plan)
        return err->code;
    const char *status = care__str(plan, "status");
    if (!status || strcmp(status, "active") != 0 ||
        !fhir_concept_has(json_object_get(plan, "type"), CARE_PLAN_TYPE_SYSTEM,
                          CARE_PLAN_TYPE_WORKFLOW))
        return ERR_OK;
    return protocol_of(conn, &v, now_us, arena, out, err);
}

status_t care_protocols_scheduled(store_conn_t *conn, int64_t now_us, arena_t *arena,
                                  const care_protocol_t ***out, size_t *out_n, err_t *err)
{
    *out = NULL;
    *out_n = 0;
    fhir_search_pair_t pairs[] = {
        url_pair("status", "active"),
        url_pair("type", CARE_PLAN_TYPE_SYSTEM "|" CARE_PLAN_TYPE_WORKFLOW),
        url_pair("_count", "200"),
    };
    store_search_result_t plans;
    status_t rc = care__search(conn, NULL, "PlanDefinition", pairs, 3, now_us, arena, &plans, err);
    if (rc)
        return rc;
    const care_protocol_t **list = arena_zalloc(arena, (plans.nmatch + 1) * sizeof(*list));
    size_t n = 0;
    for (size_t i = 0; i < plans.nmatch && i < MAX_PLANS; i++) {
        const care_protocol_t *p;
        if ((rc = protocol_of(conn, &plans.entries[i].version, now_us, arena, &p, err)))
            return rc;
        for (size_t k = 0; k < p->nactions; k++)
            if (p->actions[k].triggers & (1u << CARE_SCHEDULED)) {
                list[n++] = p;
                break;
            }
    }
    *out = list;
    *out_n = n;
    return ERR_OK;
}

status_t care_protocols_fire_occurrence(store_t *store, const care_protocol_t *p,
                                        const care_action_t *a, const char *patient_id,
                                        int64_t time_us, const char *occurrence, size_t *out_made,
                                        err_t *err)
{
    if (out_made)
        *out_made = 0;
    arena_t arena;
    arena_init(&arena);
    store_conn_t *conn = NULL;
    batch_t *b = NULL;
    status_t rc = store_connect(store, &conn, err);
    if (rc)
        goto out;
    store_version_t pv;
    rc = store_read(conn, "Patient", patient_id, 0, &arena, &pv, err);
    if (rc == ERR_NOT_FOUND || rc == ERR_GONE || (rc == ERR_OK && pv.deleted)) {
        err_reset(err);
        rc = ERR_OK;
        goto out; /* the patient is gone: nothing to coordinate */
    }
    if (rc)
        goto out;
    json_t *patient = care__json_in(&arena, pv.json, pv.json_len, err);
    if (!patient) {
        rc = err->code;
        goto out;
    }
    json_t *team;
    if ((rc = care__coordination_team(conn, arena_printf(&arena, "Patient/%s", patient_id), time_us,
                                      &arena, &team, err)))
        goto out;
    care_event_t event = {.type = "Patient",
                          .id = patient_id,
                          .version = pv.version,
                          .resource = patient,
                          .patient = patient,
                          .patient_id = patient_id,
                          .team = team,
                          .calendar = calendar_default(),
                          .time_us = time_us,
                          .occurrence = occurrence};
    const care_action_t *selected[] = {a};
    b = xcalloc(1, sizeof(*b));
    *b = (batch_t){.arena = &arena, .conn = conn, .now_us = time_us};
    if ((rc = plan_protocol(b, p, selected, 1, &event, false, err)) ||
        (rc = batch_commit(store, b, err)))
        goto out;
    if (out_made)
        *out_made = b->nwrites;
    if (b->nwrites)
        log_info("engine: scheduled %s#%s of %s made %zu resource(s) for Patient/%s", p->url, a->id,
                 occurrence, b->nwrites, patient_id);
out:
    free(b);
    if (conn)
        store_disconnect(conn);
    arena_release(&arena);
    return rc;
}

/* Types whose changes can make a named event (triggers.h). */
static bool may_trigger(const char *type)
{
    static const char *const TYPES[] = {"EpisodeOfCare", "ServiceRequest", "Appointment",
                                        "Task",          "Encounter",      "Observation"};
    for (size_t i = 0; i < sizeof(TYPES) / sizeof(TYPES[0]); i++)
        if (strcmp(type, TYPES[i]) == 0)
            return true;
    return false;
}

status_t care_on_change(store_t *store, const store_event_t *event, void *arg, err_t *err)
{
    (void)arg;
    if (event->action == STORE_EVENT_DELETE || !may_trigger(event->type))
        return ERR_OK;
    arena_t arena;
    arena_init(&arena);
    store_conn_t *conn = NULL;
    json_t *before = NULL, *after = NULL;
    status_t rc = store_connect(store, &conn, err);
    if (rc == ERR_OK && event->version > 1)
        rc = care__read(conn, event->type, event->id, event->version - 1, &arena, &before, err);
    if (rc == ERR_OK)
        rc = care__read(conn, event->type, event->id, event->version, &arena, &after, err);
    if (conn)
        store_disconnect(conn);
    care_trigger_t triggers[CARE_TRIGGER__COUNT];
    size_t n = rc ? 0 : care_triggers_of(event->type, before, after, triggers, CARE_TRIGGER__COUNT);
    for (size_t i = 0; i < n && rc == ERR_OK; i++) {
        rc = care_protocols_fire(store, triggers[i], event->type, event->id, event->version,
                                 event->time_us, err);
        if (rc)
            log_warning("engine: %s of %s/%s/_history/%lld: %s", care_trigger_name(triggers[i]),
                        event->type, event->id, (long long)event->version, err_message(err));
    }
    arena_release(&arena);
    return rc;
}

/* ---- $apply ------------------------------------------------------------------------------ */

status_t care_protocols_apply(store_t *store, store_conn_t *conn, const care_apply_t *apply,
                              arena_t *arena, buf_t *out, err_t *err)
{
    const repo_caller_t *caller = apply->caller;
    const char *subject = apply->subject;
    if (!subject || strncmp(subject, "Patient/", 8) != 0 ||
        !repo_id_valid(subject + 8, strlen(subject + 8)))
        return err_set(err, ERR_INVALID, "subject",
                       "$apply needs a subject parameter naming a Patient (Patient/id), not "
                       "\"%s\"",
                       subject ? subject : "");
    if (caller && caller->kind == REPO_CALLER_PATIENT)
        return err_set(err, ERR_FORBIDDEN, NULL,
                       "a patient cannot apply a protocol; a coordinator or an admin can");
    status_t rc;
    store_version_t pv;
    if ((rc = repo_read_as(conn, caller, "PlanDefinition", apply->plan_id, 0, arena, &pv, NULL,
                           err)))
        return rc;
    json_t *plan = care__json_in(arena, pv.json, pv.json_len, err);
    if (!plan)
        return err->code;
    const char *status = care__str(plan, "status");
    if (!status || strcmp(status, "active") != 0)
        return err_set(err, ERR_RULE, "PlanDefinition.status",
                       "PlanDefinition/%s is %s; only an active protocol can be applied",
                       apply->plan_id, status ? status : "without a status");
    store_version_t patient_v;
    if ((rc = repo_read_as(conn, caller, "Patient", subject + 8, 0, arena, &patient_v, NULL, err)))
        return rc;
    json_t *patient = care__json_in(arena, patient_v.json, patient_v.json_len, err);
    if (!patient)
        return err->code;
    const care_protocol_t *p;
    if ((rc = protocol_of(conn, &pv, apply->now_us, arena, &p, err)))
        return rc;
    json_t *team;
    if ((rc = care__coordination_team(conn, subject, apply->now_us, arena, &team, err)))
        return rc;
    care_event_t event = {.type = "Patient",
                          .id = subject + 8,
                          .version = patient_v.version,
                          .resource = patient,
                          .patient = patient,
                          .patient_id = subject + 8,
                          .team = team,
                          .calendar = calendar_default(),
                          .time_us = apply->now_us};
    const care_action_t *entry[CARE_PROTOCOL_MAX_ACTIONS];
    size_t n = 0;
    for (size_t k = 0; k < p->nactions; k++)
        if (p->actions[k].after < 0)
            entry[n++] = &p->actions[k];
    batch_t *b = xcalloc(1, sizeof(*b));
    *b = (batch_t){.arena = arena,
                   .conn = conn,
                   .caller = caller,
                   .now_us = apply->now_us,
                   .dry_run = apply->dry_run};
    if ((rc = plan_protocol(b, p, entry, n, &event, true, err)) ||
        (rc = batch_commit(store, b, err)))
        goto out;
    if (apply->dry_run) {
        json_t *bundle =
            json_pack("{s:s,s:s,s:[]}", "resourceType", "Bundle", "type", "collection", "entry");
        json_t *entries = json_object_get(bundle, "entry");
        json_array_append_new(entries, json_pack("{s:O}", "resource", b->careplan));
        for (size_t i = 0; i < b->nwrites; i++)
            if (b->made[i] != b->careplan)
                json_array_append_new(entries, json_pack("{s:O}", "resource", b->made[i]));
        jv_dump(bundle, out);
        json_decref(bundle);
        goto out;
    }
    /* the CarePlan as stored: the write's result, or the one that was there */
    const char *cp_id = strchr(event.careplan, '/') + 1;
    store_version_t cp;
    if ((rc = store_read(store_conn_primary(conn), "CarePlan", cp_id, 0, arena, &cp, err)))
        goto out;
    buf_add(out, cp.json, cp.json_len);
out:
    free(b);
    return rc;
}

/* ---- checks when protocols are written --------------------------------------------------- */

static status_t check_plan(store_txn_t *txn, const repo_write_t *w, const char *json,
                           size_t json_len, err_t *err)
{
    (void)txn;
    json_t *plan = care__json_in(w->arena, json, json_len, err);
    if (!plan)
        return err->code;
    const json_t *type = json_object_get(plan, "type");
    if (!fhir_concept_has(type, CARE_PLAN_TYPE_SYSTEM, CARE_PLAN_TYPE_WORKFLOW))
        return ERR_OK; /* not a protocol: order sets and the like are only stored */
    care_protocol_t *p;
    status_t rc = care_protocol_compile(plan, NULL, 0, CARE_PROTOCOL_UNRESOLVED, &p, err);
    care_protocol_free(p);
    return rc;
}

static status_t check_activity(store_txn_t *txn, const repo_write_t *w, const char *json,
                               size_t json_len, err_t *err)
{
    (void)txn;
    json_t *ad = care__json_in(w->arena, json, json_len, err);
    if (!ad)
        return err->code;
    /* an ActivityDefinition is the engine's when it says how to schedule what it makes, or
       makes what the engine makes */
    bool ours = false;
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(ad, "extension"), i, e)
    {
        const char *url = care__str(e, "url");
        if (url && strncmp(url, CARE_EXT, strlen(CARE_EXT)) == 0)
            ours = true;
    }
    return ours ? care_activity_check(ad, err) : ERR_OK;
}

void care_protocols_register(void)
{
    repo_worker_on_event(NULL, care_on_change, NULL);
    repo_rules_register("PlanDefinition", check_plan);
    repo_rules_register("ActivityDefinition", check_activity);
}
