/*
 * params.c - the custom search parameters of the database a process works on: the registry
 * loaded from the stored SearchParameter resources, kept in step with SearchParameter writes
 * (checked in their transaction, applied once durable), and the background thread that
 * reindexes the resource types a change affects.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/jv.h"
#include "base/log.h"
#include "base/mem.h"
#include "repo/repo.h"

#define LOAD_BATCH 200

static struct {
    pthread_mutex_t lock; /* guards the queue and busy */
    pthread_cond_t cond;  /* work queued, or a reindex finished */
    fhir_search_registry_t *registry;
    store_t *store;
    pthread_t worker;
    bool running;
    char **types; /* queued types (each once) */
    size_t ntypes, cap;
    bool all;          /* a reindex of every type is queued */
    size_t busy;       /* types being reindexed now (1 for every type) */
    bool stopping;     /* no more work after what is queued */
    atomic_bool abort; /* stop the reindex in progress at its next batch */
} params = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

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

/* ---- the background reindex -------------------------------------------------------------- */

static bool is_common_base(const char *base)
{
    return strcmp(base, "Resource") == 0 || strcmp(base, "DomainResource") == 0;
}

/* Queues the bases of resource (a SearchParameter) for reindexing. Called with lock held. */
static void queue_bases(const json_t *resource)
{
    const json_t *bases = json_object_get(resource, "base");
    if (!json_is_array(bases))
        return;
    size_t i;
    const json_t *b;
    json_array_foreach(bases, i, b)
    {
        if (!jv_is_string(b))
            continue;
        const char *base = json_string_value(b);
        if (is_common_base(base)) {
            params.all = true;
            continue;
        }
        if (!fhir_resource_type_find(base, strlen(base)))
            continue;
        bool queued = false;
        for (size_t k = 0; k < params.ntypes && !queued; k++)
            queued = strcmp(params.types[k], base) == 0;
        if (queued)
            continue;
        if (params.ntypes == params.cap) {
            params.cap = params.cap ? params.cap * 2 : 8;
            params.types = xrealloc(params.types, params.cap * sizeof(*params.types));
        }
        params.types[params.ntypes++] = xstrdup(base);
    }
}

typedef struct {
    const char *what;
    struct timespec start;
} progress_t;

static bool log_progress(void *arg, int64_t done, int64_t total)
{
    const progress_t *p = arg;
    log_info("reindex of %s after a search parameter change: %lld of %lld resources", p->what,
             (long long)done, (long long)total);
    return !atomic_load(&params.abort);
}

static void *worker_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&params.lock);
    for (;;) {
        while (!params.ntypes && !params.all && !params.stopping)
            pthread_cond_wait(&params.cond, &params.lock);
        if (!params.ntypes && !params.all)
            break;
        bool all = params.all;
        char **types = params.types;
        size_t ntypes = params.ntypes;
        params.types = NULL;
        params.ntypes = params.cap = 0;
        params.all = false;
        params.busy = all ? 1 : ntypes;
        pthread_mutex_unlock(&params.lock);

        buf_t what = BUF_INIT;
        if (all)
            buf_addstr(&what, "every type");
        for (size_t i = 0; i < ntypes && !all; i++)
            buf_addf(&what, "%s%s", i ? ", " : "", types[i]);
        progress_t progress = {.what = what.ptr};
        err_t err = ERR_INIT;
        int64_t count = 0;
        if (!atomic_load(&params.abort)) {
            log_info("reindex of %s after a search parameter change: started", what.ptr);
            if (repo_reindex_types(params.store, (const char *const *)types, all ? 0 : ntypes,
                                   log_progress, &progress, &count, &err))
                log_error("reindex of %s after a search parameter change failed: %s", what.ptr,
                          err_message(&err));
            else
                log_info("reindex of %s after a search parameter change: done, %lld resources",
                         what.ptr, (long long)count);
        }
        err_release(&err);
        buf_release(&what);
        for (size_t i = 0; i < ntypes; i++)
            free(types[i]);
        free(types);

        pthread_mutex_lock(&params.lock);
        params.busy = 0;
        pthread_cond_broadcast(&params.cond);
    }
    pthread_mutex_unlock(&params.lock);
    return NULL;
}

size_t repo_params_reindex_pending(void)
{
    pthread_mutex_lock(&params.lock);
    size_t n = params.ntypes + params.busy + (params.all ? 1 : 0);
    pthread_mutex_unlock(&params.lock);
    return n;
}

void repo_params_reindex_wait(void)
{
    pthread_mutex_lock(&params.lock);
    while (params.running && (params.ntypes || params.all || params.busy))
        pthread_cond_wait(&params.cond, &params.lock);
    pthread_mutex_unlock(&params.lock);
}

/* ---- loading and closing ----------------------------------------------------------------- */

/* Registers the stored SearchParameters; those that fail (a composite whose component is
 * registered later) are tried again while that makes progress. */
static status_t load(store_conn_t *conn, err_t *err)
{
    json_t *pending = json_array();
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
            if (resource && is_live(resource))
                json_array_append(pending, resource);
            json_decref(resource);
        }
        arena_release(&arena);
        if (rc || n == 0)
            break;
    }
    for (bool progress = true; progress && json_array_size(pending) && !rc;) {
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
    return rc;
}

status_t repo_params_open(store_t *store, err_t *err)
{
    if (params.registry)
        die("repo_params_open called twice");
    params.registry = fhir_search_registry_new();
    params.store = store;
    store_conn_t *conn;
    status_t rc = store_connect(store, &conn, err);
    if (!rc) {
        rc = load(conn, err);
        store_disconnect(conn);
    }
    if (rc) {
        fhir_search_registry_free(params.registry);
        params.registry = NULL;
        params.store = NULL;
        return rc;
    }
    atomic_store(&params.abort, false);
    params.stopping = false;
    if (pthread_create(&params.worker, NULL, worker_main, NULL) != 0)
        die("could not start the reindex thread");
    params.running = true;
    return ERR_OK;
}

void repo_params_close(bool wait)
{
    if (!params.registry)
        return;
    pthread_mutex_lock(&params.lock);
    params.stopping = true;
    if (!wait) {
        atomic_store(&params.abort, true);
        if (params.ntypes || params.all)
            log_warning("a reindex after a search parameter change was left undone: run "
                        "concerto reindex");
        for (size_t i = 0; i < params.ntypes; i++)
            free(params.types[i]);
        params.ntypes = 0;
        params.all = false;
    }
    pthread_cond_broadcast(&params.cond);
    pthread_mutex_unlock(&params.lock);
    pthread_join(params.worker, NULL);
    params.running = false;
    free(params.types);
    params.types = NULL;
    params.cap = 0;
    fhir_search_registry_free(params.registry);
    params.registry = NULL;
    params.store = NULL;
}

/* ---- SearchParameter writes -------------------------------------------------------------- */

typedef struct {
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
    if (!params.registry)
        return;
    const char *old_url = c->previous ? url_of(c->previous) : NULL;
    const char *new_url = c->resource ? url_of(c->resource) : NULL;
    if (old_url && (!new_url || strcmp(old_url, new_url) != 0 || !is_live(c->resource)))
        fhir_search_registry_remove(params.registry, old_url);
    if (c->resource && new_url) {
        if (is_live(c->resource)) {
            err_t err = ERR_INIT;
            if (fhir_search_registry_put(params.registry, c->resource, &err))
                log_warning("SearchParameter/%s is not used: %s",
                            json_string_value(json_object_get(c->resource, "id")),
                            err_message(&err));
            err_release(&err);
        } else {
            fhir_search_registry_remove(params.registry, new_url);
        }
    }
    if (same_indexing(c->previous, c->resource))
        return;
    pthread_mutex_lock(&params.lock);
    if (c->previous && is_live(c->previous))
        queue_bases(c->previous);
    if (c->resource && is_live(c->resource))
        queue_bases(c->resource);
    pthread_cond_broadcast(&params.cond);
    pthread_mutex_unlock(&params.lock);
}

status_t repo__params_write(store_txn_t *txn, const char *id, const char *json, size_t json_len,
                            arena_t *arena, err_t *err)
{
    change_t *c = arena_zalloc(arena, sizeof(*c));
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
    store_txn_on_commit(txn, apply_change, c);
    return ERR_OK;
}
