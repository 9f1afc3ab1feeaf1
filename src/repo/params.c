/*
 * params.c - the custom search parameters of the database a process works on: the registry
 * loaded from the stored SearchParameter resources, kept in step with SearchParameter writes
 * made here (checked in their transaction, applied once durable) and elsewhere (other
 * processes on the same database: repo_params_refresh follows the SearchParameter history),
 * and the "reindex" jobs that rebuild the index rows of the types a change affects.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/jv.h"
#include "base/log.h"
#include "base/mem.h"
#include "repo/repo.h"
#include "repo/worker.h"

#define LOAD_BATCH    200
#define REFRESH_PAGE  200
#define REFRESH_PAGES 10      /* more changes than this many pages: load everything again */
#define REINDEX_PART  2000000 /* microseconds of reindexing per run of a reindex job */
#define REINDEX_KIND  "reindex"
#define REINDEX_ALL   "*"

static struct {
    pthread_mutex_t sync; /* one update of the registry and by_id at a time */
    fhir_search_registry_t *registry;
    json_t *by_id;    /* id -> url of each stored SearchParameter registered */
    int64_t seen_seq; /* the newest SearchParameter version applied (0: there was none) */
} params = {.sync = PTHREAD_MUTEX_INITIALIZER};

fhir_search_registry_t *repo_params_registry(void)
{
    return params.registry;
}

const fhir_search_snapshot_t *repo_params_acquire(void)
{
    return params.registry ? fhir_search_registry_acquire(params.registry) : fhir_search_builtin();
}

static const char *url_of(const json_t *resource)
{
    const json_t *url = json_object_get(resource, "url");
    return jv_is_string(url) ? json_string_value(url) : NULL;
}

/* Whether a SearchParameter defines a custom parameter: active and draft ones do, retired and
 * unknown ones do not, nor one with the url of a built-in R4 parameter (the R4 definitions
 * themselves: the built-in parameter stays in effect). */
static bool is_live(const json_t *resource)
{
    const json_t *status = json_object_get(resource, "status");
    const char *s = jv_is_string(status) ? json_string_value(status) : "";
    if (strcmp(s, "active") != 0 && strcmp(s, "draft") != 0)
        return false;
    const char *url = url_of(resource);
    return !url || !fhir_search_builtin_find_url(url);
}

/* ---- keeping the registry in step --------------------------------------------------- */

/* Applies one stored SearchParameter (resource NULL: deleted) with this id. Called with sync. */
static void apply_resource(const char *id, const json_t *resource)
{
    const json_t *old = json_object_get(params.by_id, id);
    const char *old_url = old ? json_string_value(old) : NULL;
    const char *new_url = resource && is_live(resource) ? url_of(resource) : NULL;
    if (old_url && (!new_url || strcmp(old_url, new_url) != 0))
        fhir_search_registry_remove(params.registry, old_url);
    if (!new_url) {
        /* retired (or a built-in url): a registered definition of that url goes too */
        const char *url = resource ? url_of(resource) : NULL;
        if (url && !(old_url && strcmp(old_url, url) == 0))
            fhir_search_registry_remove(params.registry, url);
        json_object_del(params.by_id, id);
        return;
    }
    err_t err = ERR_INIT;
    if (fhir_search_registry_put(params.registry, resource, &err))
        log_warning("SearchParameter/%s is not used: %s", id, err_message(&err));
    err_release(&err);
    json_object_set_new(params.by_id, id, json_string(new_url));
}

/* The seq of the newest SearchParameter version (0: none). */
static status_t newest_seq(store_conn_t *conn, int64_t *out, err_t *err)
{
    arena_t arena;
    arena_init(&arena);
    store_history_query_t q = {
        .type = "SearchParameter", .since_us = INT64_MIN, .before_seq = INT64_MAX, .count = 1};
    store_history_t h;
    status_t rc = store_history(conn, &q, &arena, &h, err);
    *out = !rc && h.n ? h.versions[0].seq : 0;
    arena_release(&arena);
    return rc;
}

/*
 * Registers every stored SearchParameter (those that fail, a composite whose component comes
 * later, are tried again while that makes progress) and drops the registered ones no longer
 * stored. Called with sync.
 */
static status_t load(store_conn_t *conn, err_t *err)
{
    json_t *pending = json_array(), *by_id = json_object();
    int64_t after = 0;
    status_t rc = ERR_OK;
    for (;;) {
        arena_t arena;
        arena_init(&arena);
        store_scan_row_t *rows;
        size_t n;
        rc = store_scan(conn, "SearchParameter", after, LOAD_BATCH, &arena, &rows, &n, err);
        for (size_t i = 0; i < n && !rc; i++) {
            after = rows[i].rid;
            err_t parse = ERR_INIT;
            json_t *resource = jv_parse(rows[i].json, rows[i].json_len, &parse);
            err_release(&parse);
            if (resource && is_live(resource)) {
                json_array_append(pending, resource);
                json_object_set_new(by_id, rows[i].id, json_string(url_of(resource)));
            }
            json_decref(resource);
        }
        arena_release(&arena);
        if (rc || n == 0)
            break;
    }
    if (rc) {
        json_decref(pending);
        json_decref(by_id);
        return rc;
    }
    /* what was registered and is stored no more */
    const char *id;
    json_t *url;
    json_object_foreach(params.by_id, id, url)
    {
        const json_t *now = json_object_get(by_id, id);
        if (!now || strcmp(json_string_value(now), json_string_value(url)) != 0)
            fhir_search_registry_remove(params.registry, json_string_value(url));
    }
    for (bool progress = true; progress && json_array_size(pending);) {
        progress = false;
        json_t *failed = json_array();
        size_t i;
        json_t *resource;
        json_array_foreach(pending, i, resource)
        {
            err_t put = ERR_INIT;
            if (fhir_search_registry_put(params.registry, resource, &put) == ERR_OK)
                progress = true;
            else
                json_array_append(failed, resource);
            err_release(&put);
        }
        json_decref(pending);
        pending = failed;
    }
    size_t i;
    json_t *resource;
    json_array_foreach(pending, i, resource)
    {
        err_t put = ERR_INIT;
        fhir_search_registry_put(params.registry, resource, &put);
        log_warning("SearchParameter/%s is not used: %s",
                    json_string_value(json_object_get(resource, "id")), err_message(&put));
        err_release(&put);
    }
    json_decref(pending);
    json_decref(params.by_id);
    params.by_id = by_id;
    return ERR_OK;
}

/* Applies the SearchParameter versions written since seen_seq, oldest first; more than a
 * few pages of them: everything again. Called with sync. */
static status_t catch_up(store_conn_t *conn, bool *changed, err_t *err)
{
    for (int page = 0; params.seen_seq > 0; page++) {
        if (page == REFRESH_PAGES)
            break;
        arena_t arena;
        arena_init(&arena);
        store_history_query_t q = {.type = "SearchParameter",
                                   .since_us = INT64_MIN,
                                   .before_seq = INT64_MAX,
                                   .after_seq = params.seen_seq,
                                   .count = REFRESH_PAGE};
        store_history_t h;
        status_t rc = store_history(conn, &q, &arena, &h, err);
        for (size_t i = h.n; i-- > 0 && !rc;) {
            const store_version_t *v = &h.versions[i];
            json_t *resource = NULL;
            if (!v->deleted) {
                err_t parse = ERR_INIT;
                resource = jv_parse(v->json, v->json_len, &parse);
                err_release(&parse);
            }
            apply_resource(v->id, resource);
            json_decref(resource);
            params.seen_seq = v->seq;
            *changed = true;
        }
        bool more = !rc && h.n && h.more_newer;
        arena_release(&arena);
        if (rc)
            return rc;
        if (!more)
            return ERR_OK;
    }
    /* none seen when loaded, or too many changes: load everything as it is now */
    int64_t newest;
    status_t rc = newest_seq(conn, &newest, err);
    if (rc || newest == params.seen_seq)
        return rc;
    if ((rc = load(conn, err)))
        return rc;
    params.seen_seq = newest;
    *changed = true;
    return ERR_OK;
}

status_t repo_params_refresh(store_conn_t *conn, bool *out_changed, err_t *err)
{
    bool changed = false;
    status_t rc = ERR_OK;
    if (params.registry) {
        pthread_mutex_lock(&params.sync);
        rc = catch_up(conn, &changed, err);
        pthread_mutex_unlock(&params.sync);
    }
    if (out_changed)
        *out_changed = changed;
    return rc;
}

/* ---- the reindex jobs -------------------------------------------------------------------- */

static bool is_common_base(const char *base)
{
    return strcmp(base, "Resource") == 0 || strcmp(base, "DomainResource") == 0;
}

/* Schedules a reindex of the bases of resource (a SearchParameter), in txn. */
static status_t schedule_bases(store_txn_t *txn, const json_t *resource, err_t *err)
{
    const json_t *bases = json_object_get(resource, "base");
    if (!json_is_array(bases))
        return ERR_OK;
    int64_t now = clock_now_us();
    size_t i;
    const json_t *b;
    json_array_foreach(bases, i, b)
    {
        if (!jv_is_string(b))
            continue;
        const char *base = json_string_value(b);
        const char *key = is_common_base(base) ? REINDEX_ALL : base;
        if (key == base && !fhir_resource_type_find(base, strlen(base)))
            continue;
        status_t rc = store_txn_job_schedule(txn, REINDEX_KIND, key, now, NULL, NULL, err);
        if (rc)
            return rc;
    }
    return ERR_OK;
}

/*
 * A run of the reindex job of one type (key: the type, or "*" for every type): up to
 * REINDEX_PART of work from where the payload says the last run got to ({"after": rid,
 * "done": count, "why": the reason logged}; none: from the start, after a search parameter
 * change), then continues in another run, which another process may take.
 */
static status_t reindex_job(store_t *store, const store_job_t *job, int64_t now_us, arena_t *arena,
                            repo_job_next_t *next, void *arg, err_t *err)
{
    (void)arg;
    const char *type = strcmp(job->key, REINDEX_ALL) == 0 ? NULL : job->key;
    const char *what = type ? type : "every type";
    int64_t after = 0, done = 0;
    const char *why = "a search parameter change";
    if (job->payload) {
        err_t perr = ERR_INIT;
        json_t *payload = jv_parse(job->payload, strlen(job->payload), &perr);
        err_release(&perr);
        after = json_integer_value(json_object_get(payload, "after"));
        done = json_integer_value(json_object_get(payload, "done"));
        const char *text = json_string_value(json_object_get(payload, "why"));
        if (text)
            why = arena_strdup(arena, text);
        json_decref(payload);
    }
    /* this process may not have seen the change that scheduled the job yet */
    store_conn_t *conn;
    status_t rc = store_connect(store, &conn, err);
    if (rc)
        return rc;
    rc = repo_params_refresh(conn, NULL, err);
    store_disconnect(conn);
    if (rc)
        return rc;
    if (after == 0)
        log_info("reindex of %s after %s: started", what, why);
    int64_t count = 0;
    bool finished = false;
    rc = repo_reindex_part(store, type, &after, clock_mono_us() + REINDEX_PART, &count, &finished,
                           err);
    if (rc)
        return rc;
    done += count;
    if (finished) {
        log_info("reindex of %s after %s: done, %" PRId64 " resources", what, why, done);
        next->next_run_us = 0;
        return ERR_OK;
    }
    log_info("reindex of %s after %s: %" PRId64 " resources so far", what, why, done);
    next->next_run_us = now_us;
    json_t *payload = json_pack("{s:I,s:I,s:s}", "after", (json_int_t)after, "done",
                                (json_int_t)done, "why", why);
    char *text = json_dumps(payload, JSON_COMPACT);
    next->next_payload = text ? arena_strdup(arena, text) : NULL;
    free(text);
    json_decref(payload);
    if (!next->next_payload)
        return err_set(err, ERR_INTERNAL, NULL, "out of memory");
    return ERR_OK;
}

/* ---- opening and closing ----------------------------------------------------------------- */

status_t repo_params_open(store_t *store, err_t *err)
{
    if (params.registry)
        die("repo_params_open called twice");
    static bool registered;
    if (!registered) {
        repo_worker_on_job(REINDEX_KIND, reindex_job, NULL);
        registered = true;
    }
    params.registry = fhir_search_registry_new();
    params.by_id = json_object();
    params.seen_seq = 0;
    store_conn_t *conn;
    status_t rc = store_connect(store, &conn, err);
    if (!rc) {
        pthread_mutex_lock(&params.sync);
        /* the newest version first: a change made while loading is applied again later */
        rc = newest_seq(conn, &params.seen_seq, err);
        if (!rc)
            rc = load(conn, err);
        pthread_mutex_unlock(&params.sync);
        store_disconnect(conn);
    }
    if (rc) {
        repo_params_close();
        return rc;
    }
    return ERR_OK;
}

void repo_params_close(void)
{
    pthread_mutex_lock(&params.sync);
    fhir_search_registry_free(params.registry);
    params.registry = NULL;
    json_decref(params.by_id);
    params.by_id = NULL;
    params.seen_seq = 0;
    pthread_mutex_unlock(&params.sync);
}

/* ---- SearchParameter writes -------------------------------------------------------------- */

typedef struct {
    const char *id;
    json_t *resource; /* the new version; NULL for a delete */
    json_t *previous; /* the version it replaces; NULL when there was none */
} change_t;

static void release_json(void *data)
{
    json_decref(data);
}

/* Whether a change leaves what indexing depends on as it was. */
static bool same_indexing(const json_t *a, const json_t *b)
{
    static const char *const members[] = {"url", "code", "type", "base", "component", "expression"};
    if (!a || !b || is_live(a) != is_live(b))
        return false;
    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
        const json_t *x = json_object_get(a, members[i]), *y = json_object_get(b, members[i]);
        if ((x || y) && !(x && y && json_equal(x, y)))
            return false;
    }
    return true;
}

/* On the writer, once the write is durable. */
static void apply_change(void *arg)
{
    change_t *c = arg;
    pthread_mutex_lock(&params.sync);
    if (params.registry)
        apply_resource(c->id, c->resource);
    pthread_mutex_unlock(&params.sync);
}

status_t repo__params_write(store_txn_t *txn, const char *id, const char *json, size_t json_len,
                            arena_t *arena, err_t *err)
{
    change_t *c = arena_zalloc(arena, sizeof(*c));
    c->id = arena_strdup(arena, id);
    if (json) {
        c->resource = jv_parse(json, json_len, err);
        if (!c->resource)
            return err->code;
        arena_cleanup_add(arena, release_json, c->resource);
        if (is_live(c->resource)) {
            fhir_search_registry_t *scratch = params.registry ? NULL : fhir_search_registry_new();
            status_t rc = fhir_search_registry_check(params.registry ? params.registry : scratch,
                                                     c->resource, err);
            fhir_search_registry_free(scratch);
            if (rc)
                return rc;
        }
    }
    store_version_t previous;
    err_t read_err = ERR_INIT;
    status_t rc = store_txn_read(txn, "SearchParameter", id, 0, arena, &previous, &read_err);
    if (rc == ERR_OK && !previous.deleted && previous.json) {
        c->previous = jv_parse(previous.json, previous.json_len, &read_err);
        if (c->previous)
            arena_cleanup_add(arena, release_json, c->previous);
    } else if (rc && rc != ERR_NOT_FOUND) {
        err_move(err, &read_err);
        return rc;
    }
    err_release(&read_err);
    if (!same_indexing(c->previous, c->resource)) {
        status_t rc2 = ERR_OK;
        if (c->previous && is_live(c->previous))
            rc2 = schedule_bases(txn, c->previous, err);
        if (!rc2 && c->resource && is_live(c->resource))
            rc2 = schedule_bases(txn, c->resource, err);
        if (rc2)
            return rc2;
    }
    store_txn_on_commit(txn, apply_change, c);
    return ERR_OK;
}
