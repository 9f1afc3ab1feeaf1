/*
 * reindex.c - rebuilds the search index rows of every current resource, batch by batch: a
 * scan on the caller's connection, extraction on the caller's thread, one writer
 * transaction per batch that replaces the rows of each resource still at the version read.
 */
#include <string.h>

#include "base/clock.h"
#include "base/jv.h"
#include "repo/repo.h"

#define REINDEX_BATCH 500

typedef struct {
    const char *type, *id;
    int64_t version;
    fhir_index_rows_t rows;
} reindex_item_t;

typedef struct {
    reindex_item_t *items;
    size_t n;
    size_t written;
} reindex_batch_t;

static status_t reindex_txn(store_txn_t *txn, void *arg, err_t *err)
{
    reindex_batch_t *batch = arg;
    batch->written = 0;
    for (size_t i = 0; i < batch->n; i++) {
        reindex_item_t *item = &batch->items[i];
        store_current_t current;
        status_t rc = store_txn_current(txn, item->type, item->id, &current, err);
        if (rc)
            return rc;
        if (current.version != item->version || current.deleted)
            continue; /* written since it was read: that write indexed it */
        if ((rc = store_txn_reindex(txn, item->type, item->id, &item->rows, err)))
            return rc;
        batch->written++;
    }
    return ERR_OK;
}

/*
 * Reindexes the resources of one type (NULL: every type) with a rid above *after, batch by
 * batch, advancing *after, until there are no more (*finished) or progress says stop or the
 * monotonic clock passes deadline_us (0: none). *done grows by the resources reindexed.
 */
static status_t reindex_scan(store_t *store, store_conn_t *conn,
                             const fhir_search_snapshot_t *snapshot, const char *type,
                             int64_t *after, int64_t deadline_us, repo_progress_fn progress,
                             void *arg, int64_t *done, int64_t total, bool *finished, err_t *err)
{
    status_t rc = ERR_OK;
    *finished = false;
    for (;;) {
        arena_t arena;
        arena_init(&arena);
        store_scan_row_t *rows;
        size_t n;
        rc = store_scan(conn, type, *after, REINDEX_BATCH, &arena, &rows, &n, err);
        if (rc || n == 0) {
            *finished = !rc;
            arena_release(&arena);
            break;
        }
        reindex_batch_t batch = {.items = arena_zalloc(&arena, n * sizeof(reindex_item_t))};
        int64_t last = *after;
        for (size_t i = 0; i < n && !rc; i++) {
            last = rows[i].rid;
            json_t *resource = jv_parse(rows[i].json, rows[i].json_len, err);
            if (!resource) {
                rc = err->code;
                break;
            }
            reindex_item_t *item = &batch.items[batch.n++];
            item->type = rows[i].type;
            item->id = rows[i].id;
            item->version = rows[i].version;
            rc = fhir_index_extract(snapshot, resource, &arena, &item->rows, err);
            json_decref(resource);
        }
        if (!rc)
            rc = store_run(store, reindex_txn, &batch, err);
        arena_release(&arena);
        if (rc)
            break;
        *after = last;
        *done += (int64_t)n;
        bool go_on = !progress || progress(arg, *done, total);
        if (n < REINDEX_BATCH) {
            *finished = true;
            break;
        }
        if (!go_on || (deadline_us && clock_mono_us() >= deadline_us))
            break;
    }
    return rc;
}

status_t repo_reindex(store_t *store, repo_progress_fn progress, void *arg, int64_t *out_count,
                      err_t *err)
{
    return repo_reindex_types(store, NULL, 0, progress, arg, out_count, err);
}

status_t repo_reindex_types(store_t *store, const char *const *types, size_t ntypes,
                            repo_progress_fn progress, void *arg, int64_t *out_count, err_t *err)
{
    store_conn_t *conn;
    status_t rc = store_connect(store, &conn, err);
    if (rc)
        return rc;
    const fhir_search_snapshot_t *snapshot = repo_params_acquire();
    int64_t total = 0, done = 0;
    for (size_t t = 0; t < (ntypes ? ntypes : 1) && !rc; t++) {
        int64_t count = 0;
        rc = store_count(conn, ntypes ? types[t] : NULL, &count, err);
        total += count;
    }
    bool finished = true;
    for (size_t t = 0; t < (ntypes ? ntypes : 1) && !rc && finished; t++) {
        const char *type = ntypes ? types[t] : NULL;
        int64_t after = 0;
        rc = reindex_scan(store, conn, snapshot, type, &after, 0, progress, arg, &done, total,
                          &finished, err);
    }
    fhir_search_snapshot_release(snapshot);
    store_disconnect(conn);
    if (out_count)
        *out_count = done;
    return rc;
}

status_t repo_reindex_part(store_t *store, const char *type, int64_t *after, int64_t deadline_us,
                           int64_t *out_count, bool *out_finished, err_t *err)
{
    store_conn_t *conn;
    status_t rc = store_connect(store, &conn, err);
    if (rc)
        return rc;
    const fhir_search_snapshot_t *snapshot = repo_params_acquire();
    int64_t done = 0;
    rc = reindex_scan(store, conn, snapshot, type, after, deadline_us, NULL, NULL, &done, 0,
                      out_finished, err);
    fhir_search_snapshot_release(snapshot);
    store_disconnect(conn);
    *out_count = done;
    return rc;
}
