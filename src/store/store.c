/*
 * store.c - the driver-independent part of the store: dispatch to the driver, and the writer.
 *
 * The writer is one thread with one connection. Callers queue transactions; the writer takes
 * everything queued (up to WRITER_BATCH), runs each in its own savepoint inside one database
 * transaction, commits once, and only then reports each result. So a done callback with rc 0
 * always means durable, and concurrent writers share one fsync. Transaction times are assigned
 * here, strictly increasing, so versions order the same by time and by seq.
 */
#include "store/store_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "fhir/fhirpath.h"
#include "fhir/index.h"
#include "store/sql_copy.h"
#include "store/sql_work.h"

#define WRITER_BATCH 512

/* How often a replica connection looks at its replica again (reachable, how far behind). */
#define REPLICA_CHECK_US 1000000

/* The read replica's state as last logged (one warning per outage, not one per thread). */
enum { REPLICA_IN_USE, REPLICA_DOWN, REPLICA_BEHIND };

typedef struct txn_item {
    struct txn_item *next;
    store_txn_fn fn;
    void *fn_arg;
    store_done_fn done;
    void *done_arg;
    bool relaxed; /* store_run_relaxed */
    status_t rc;  /* committed, waiting for the sync: its result */
    err_t err;
} txn_item_t;

/* Idle readers' connections kept for reuse, at most. */
#define STORE_IDLE_MAX 4

struct store {
    const store_driver_t *driver;
    void *db;
    int schema_version;
    char *location;

    pthread_t writer;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    txn_item_t *head, *tail;
    bool closing;
    void *writer_conn;
    /* the driver's commits on writer_conn leave the sync to driver->sync_commits: the
       syncer thread syncs and reports the committed transactions, while the writer goes on */
    bool syncing;
    pthread_t syncer;
    pthread_mutex_t sync_lock;
    pthread_cond_t sync_wake;
    txn_item_t *unsynced, *unsynced_tail;
    bool sync_closing;
    _Atomic int64_t last_time_us; /* of the last transaction begun (the writer's or
                                     store_run_on's) */

    bool has_replica;
    int64_t replica_max_lag_us;
    atomic_int replica_state;

    /* readers' connections that store_disconnect kept for the next store_connect: opening one
       costs a parse of the schema (SQLite) or a round of authentication (PostgreSQL), which
       the engine's handlers and the HTTP offload workers would otherwise pay per event */
    pthread_mutex_t idle_lock;
    void *idle[STORE_IDLE_MAX];
    int nidle;
};

struct store_conn {
    store_t *store;
    void *conn;            /* the driver's; NULL: a replica connection not connected yet */
    store_conn_t *primary; /* a connection of store_connect_replica: its fallback; else NULL */
    int64_t checked_us;    /* when the replica was last looked at (monotonic; 0: never) */
    bool use_replica;      /* what that look found */
};

typedef struct {
    store_commit_fn fn;
    void *arg;
} commit_hook_t;

/* The commit hooks of a batch, in the order they were added. */
typedef struct {
    commit_hook_t *items;
    size_t n, cap;
} commit_hooks_t;

struct store_txn {
    store_t *store;
    void *conn;
    int64_t time_us;
    char time_text[32];
    commit_hooks_t *hooks; /* the batch's */
};

void store_options_init(store_options_t *options)
{
    options->synchronous = STORE_SYNC_FULL;
    options->busy_timeout_ms = 5000;
    options->create = true;
    options->replica = NULL;
    options->replica_max_lag_us = 10 * (int64_t)1000000;
}

void store__format_instant(int64_t us, char out[32])
{
    time_t secs = (time_t)(us / 1000000);
    int frac = (int)(us % 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%06dZ", frac);
}

/* The wall clock of transactions (lastUpdated): clock.h's, so that a test clock moves it. */
static int64_t now_us(void)
{
    return clock_now_us();
}

static void *writer_main(void *arg);
static void *syncer_main(void *arg);

/* The time of a transaction that begins now: after every earlier one's, so that lastUpdated
 * grows with seq in one process. */
static int64_t next_time(store_t *store)
{
    int64_t t = now_us();
    int64_t last = atomic_load(&store->last_time_us);
    for (;;) {
        int64_t mine = t > last ? t : last + 1;
        if (atomic_compare_exchange_weak(&store->last_time_us, &last, mine))
            return mine;
    }
}

bool store_location_is_postgres(const char *location)
{
    return !strncmp(location, "postgresql://", 13) || !strncmp(location, "postgres://", 11);
}

status_t store_open(const char *location, const store_options_t *options, store_t **out, err_t *err)
{
    const store_driver_t *driver =
        store_location_is_postgres(location) ? &store__pg_driver : &store__sqlite_driver;
    return store__open_driver(driver, location, options, out, err);
}

status_t store__open_driver(const store_driver_t *driver, const char *location,
                            const store_options_t *options, store_t **out, err_t *err)
{
    store_options_t defaults;
    if (!options) {
        store_options_init(&defaults);
        options = &defaults;
    }
    if (options->replica && !driver->connect_replica)
        return err_set(err, ERR_INVALID, NULL, "a read replica needs a PostgreSQL database, not %s",
                       driver->name);
    if (options->replica && !store_location_is_postgres(options->replica))
        return err_set(err, ERR_INVALID, NULL,
                       "the read replica must be a PostgreSQL URI (postgresql://...)");
    store_t *store = xcalloc(1, sizeof(*store));
    atomic_init(&store->last_time_us, 0);
    store->driver = driver;
    store->location = xstrdup(location);
    store->has_replica = options->replica != NULL;
    store->replica_max_lag_us = options->replica_max_lag_us;
    atomic_init(&store->replica_state, REPLICA_IN_USE);
    status_t rc = store->driver->open(location, options, &store->db, err);
    if (rc)
        goto fail;
    rc = store->driver->migrate(store->db, &store->schema_version, err);
    if (rc)
        goto fail_db;
    rc = store->driver->connect(store->db, true, &store->writer_conn, err);
    if (rc)
        goto fail_db;
    pthread_mutex_init(&store->lock, NULL);
    pthread_mutex_init(&store->idle_lock, NULL);
    pthread_cond_init(&store->wake, NULL);
    store->syncing = driver->defers_sync && driver->defers_sync(store->writer_conn);
    if (store->syncing) {
        pthread_mutex_init(&store->sync_lock, NULL);
        pthread_cond_init(&store->sync_wake, NULL);
        if (pthread_create(&store->syncer, NULL, syncer_main, store) != 0)
            die("could not start the store syncer thread");
    }
    if (pthread_create(&store->writer, NULL, writer_main, store) != 0)
        die("could not start the store writer thread");
    *out = store;
    return ERR_OK;
fail_db:
    store->driver->close(store->db);
fail:
    free(store->location);
    free(store);
    return rc;
}

void store_close(store_t *store)
{
    pthread_mutex_lock(&store->lock);
    store->closing = true;
    pthread_cond_signal(&store->wake);
    pthread_mutex_unlock(&store->lock);
    pthread_join(store->writer, NULL);
    if (store->syncing) {
        pthread_mutex_lock(&store->sync_lock);
        store->sync_closing = true;
        pthread_cond_signal(&store->sync_wake);
        pthread_mutex_unlock(&store->sync_lock);
        pthread_join(store->syncer, NULL);
        pthread_mutex_destroy(&store->sync_lock);
        pthread_cond_destroy(&store->sync_wake);
    }
    store->driver->disconnect(store->writer_conn);
    for (int i = 0; i < store->nidle; i++)
        store->driver->disconnect(store->idle[i]);
    pthread_mutex_destroy(&store->idle_lock);
    store->driver->close(store->db);
    pthread_mutex_destroy(&store->lock);
    pthread_cond_destroy(&store->wake);
    free(store->location);
    free(store);
}

int store_schema_version(store_t *store)
{
    return store->schema_version;
}

const char *store_driver_name(const store_t *store)
{
    return store->driver->name;
}

store_t *store_conn_store(store_conn_t *conn)
{
    return conn->store;
}

status_t store_connect(store_t *store, store_conn_t **out, err_t *err)
{
    void *conn = NULL;
    pthread_mutex_lock(&store->idle_lock);
    if (store->nidle)
        conn = store->idle[--store->nidle];
    pthread_mutex_unlock(&store->idle_lock);
    if (!conn) {
        status_t rc = store->driver->connect(store->db, false, &conn, err);
        if (rc)
            return rc;
    }
    store_conn_t *c = xcalloc(1, sizeof(*c));
    c->store = store;
    c->conn = conn;
    *out = c;
    return ERR_OK;
}

void store_disconnect(store_conn_t *conn)
{
    if (!conn)
        return;
    store_t *store = conn->store;
    bool kept = false;
    if (conn->conn && !conn->primary && store->driver->park && store->driver->park(conn->conn)) {
        pthread_mutex_lock(&store->idle_lock);
        if (store->nidle < STORE_IDLE_MAX) {
            store->idle[store->nidle++] = conn->conn;
            kept = true;
        }
        pthread_mutex_unlock(&store->idle_lock);
    }
    if (conn->conn && !kept)
        store->driver->disconnect(conn->conn);
    free(conn);
}

/* ---- the read replica ------------------------------------------------------------------ */

status_t store_connect_replica(store_conn_t *primary, store_conn_t **out, err_t *err)
{
    (void)err; /* a replica that cannot be reached now is tried again on use */
    store_conn_t *c = xcalloc(1, sizeof(*c));
    c->store = primary->store;
    c->primary = primary;
    *out = c;
    return ERR_OK;
}

store_conn_t *store_conn_primary(store_conn_t *conn)
{
    return conn->primary ? conn->primary : conn;
}

void *store__conn_driver(store_conn_t *conn, const store_driver_t **out_driver)
{
    *out_driver = conn->store->driver;
    return store_conn_primary(conn)->conn;
}

void *store__txn_driver(store_txn_t *txn, const store_driver_t **out_driver)
{
    *out_driver = txn->store->driver;
    return txn->conn;
}

/* Logs a change of the replica's state, once for all the connections that see it. */
static void replica_note(store_t *store, int state, const err_t *why, int64_t lag_us)
{
    if (atomic_exchange(&store->replica_state, state) == state)
        return;
    if (state == REPLICA_IN_USE)
        log_info("the read replica is back: searches read from it again");
    else if (state == REPLICA_BEHIND && lag_us == INT64_MAX)
        log_warning("the read replica cannot tell how far behind it is: searches read from the "
                    "primary until it has caught up");
    else if (state == REPLICA_BEHIND)
        log_warning("the read replica is %.1f s behind (more than %.1f s): searches read from "
                    "the primary until it catches up",
                    (double)lag_us / 1e6, (double)store->replica_max_lag_us / 1e6);
    else
        log_warning("the read replica cannot be used: searches read from the primary until it "
                    "is back (%s%s%s)",
                    err_message(why), why->log_detail ? ": " : "",
                    why->log_detail ? why->log_detail : "");
}

/* Looks at the replica of conn: connects when it is not connected, and asks how far behind it
 * is. True when reads may go to it. */
static bool replica_check(store_conn_t *conn)
{
    store_t *store = conn->store;
    err_t err = ERR_INIT;
    int64_t lag = 0;
    status_t rc = ERR_OK;
    if (!conn->conn)
        rc = store->driver->connect_replica(store->db, &conn->conn, &err);
    if (!rc)
        rc = store->driver->replica_lag(conn->conn, &lag, &err);
    bool usable = false;
    if (rc) {
        replica_note(store, REPLICA_DOWN, &err, 0);
    } else if (store->replica_max_lag_us > 0 && lag > store->replica_max_lag_us) {
        replica_note(store, REPLICA_BEHIND, &err, lag);
    } else {
        replica_note(store, REPLICA_IN_USE, &err, 0);
        usable = true;
    }
    err_release(&err);
    return usable;
}

/* The driver connection a read on conn runs on: a replica connection's replica when it is
 * in use (looked at again once a second), else the primary's. */
static void *reader(store_conn_t *conn)
{
    if (!conn->primary)
        return conn->conn;
    if (!conn->store->has_replica)
        return conn->primary->conn;
    int64_t now = clock_mono_us();
    if (!conn->checked_us || now - conn->checked_us >= REPLICA_CHECK_US) {
        conn->checked_us = now;
        conn->use_replica = replica_check(conn);
    }
    return conn->use_replica ? conn->conn : conn->primary->conn;
}

/* After a read that ran on `used` failed with rc: true when it should run again on the
 * primary (it ran on the replica and failed as a server does, not because of the request);
 * the replica is then out of use until the next look, err is emptied for the second run. */
static bool fall_back(store_conn_t *conn, void *used, status_t rc, err_t *err)
{
    if (!conn->primary || used == conn->primary->conn ||
        (rc != ERR_UNAVAILABLE && rc != ERR_STORAGE && rc != ERR_INTERNAL))
        return false;
    replica_note(conn->store, REPLICA_DOWN, err, 0);
    conn->use_replica = false;
    conn->checked_us = clock_mono_us();
    err_reset(err);
    return true;
}

/* Runs a read on reader(conn), and again on the primary when it failed on the replica; returns
 * its status from the enclosing function. */
#define REPLICA_READ(conn, err, call)               \
    do {                                            \
        void *c_ = reader(conn);                    \
        status_t rc_ = (call);                      \
        if (rc_ && fall_back(conn, c_, rc_, err)) { \
            c_ = (conn)->primary->conn;             \
            rc_ = (call);                           \
        }                                           \
        return rc_;                                 \
    } while (0)

status_t store_read(store_conn_t *conn, const char *type, const char *id, int64_t version,
                    arena_t *arena, store_version_t *out, err_t *err)
{
    REPLICA_READ(conn, err, conn->store->driver->read(c_, type, id, version, arena, out, err));
}

status_t store_history(store_conn_t *conn, const store_history_query_t *query, arena_t *arena,
                       store_history_t *out, err_t *err)
{
    REPLICA_READ(conn, err, conn->store->driver->history(c_, query, arena, out, err));
}

status_t store_count(store_conn_t *conn, const char *type, int64_t *out, err_t *err)
{
    REPLICA_READ(conn, err, conn->store->driver->count(c_, type, out, err));
}

status_t store_scan(store_conn_t *conn, const char *type, int64_t after_rid, size_t count,
                    arena_t *arena, store_scan_row_t **out_rows, size_t *out_n, err_t *err)
{
    REPLICA_READ(
        conn, err,
        conn->store->driver->scan(c_, type, after_rid, count, arena, out_rows, out_n, err));
}

static status_t read_batch_on(const store_driver_t *driver, void *c, const char *type,
                              const char *const *ids, size_t n, arena_t *arena,
                              store_version_t *out, err_t *err)
{
    sql_driver_t sql;
    driver->sql(c, &sql);
    return sql__read_batch(&sql, type, ids, n, arena, out, err);
}

status_t store_read_batch(store_conn_t *conn, const char *type, const char *const *ids, size_t n,
                          arena_t *arena, store_version_t *out, err_t *err)
{
    REPLICA_READ(conn, err, read_batch_on(conn->store->driver, c_, type, ids, n, arena, out, err));
}

static status_t task_work_on(const store_driver_t *driver, void *c,
                             const store_task_work_query_t *query, arena_t *arena,
                             store_task_work_t **out, size_t *out_n, err_t *err)
{
    sql_driver_t sql;
    driver->sql(c, &sql);
    return sql__task_work_select(&sql, query, arena, out, out_n, err);
}

status_t store_task_work(store_conn_t *conn, const store_task_work_query_t *query, arena_t *arena,
                         store_task_work_t **out, size_t *out_n, err_t *err)
{
    REPLICA_READ(conn, err, task_work_on(conn->store->driver, c_, query, arena, out, out_n, err));
}

static status_t risks_on(const store_driver_t *driver, void *c, const char *const *patients,
                         size_t n, arena_t *arena, store_risk_t **out, size_t *out_n, err_t *err)
{
    sql_driver_t sql;
    driver->sql(c, &sql);
    return sql__risk_select(&sql, patients, n, arena, out, out_n, err);
}

status_t store_patient_risks(store_conn_t *conn, const char *const *patients, size_t n,
                             arena_t *arena, store_risk_t **out, size_t *out_n, err_t *err)
{
    REPLICA_READ(conn, err, risks_on(conn->store->driver, c_, patients, n, arena, out, out_n, err));
}

static status_t care_roles_on(const store_driver_t *driver, void *c, const char *const *members,
                              size_t n, int64_t now_us, arena_t *arena, store_care_role_t **out,
                              size_t *out_n, err_t *err)
{
    sql_driver_t sql;
    driver->sql(c, &sql);
    return sql__care_roles_select(&sql, members, n, now_us, arena, out, out_n, err);
}

status_t store_care_roles(store_conn_t *conn, const char *const *members, size_t n, int64_t now_us,
                          arena_t *arena, store_care_role_t **out, size_t *out_n, err_t *err)
{
    REPLICA_READ(
        conn, err,
        care_roles_on(conn->store->driver, c_, members, n, now_us, arena, out, out_n, err));
}

const char *store_search_unsupported(const fhir_search_clause_t *clause, arena_t *arena)
{
    const fhir_search_param_t *param = clause->param;
    switch (clause->kind) {
    case FHIR_SEARCH_CLAUSE_PARAM:
        if (param->type == FHIR_SEARCH_SPECIAL && strcmp(param->code, "near") != 0)
            return arena_printf(arena, "search parameter \"%s\" is not supported", param->code);
        for (size_t i = 0; param->type == FHIR_SEARCH_SPECIAL && i < clause->nvalues; i++) {
            const fhir_search_value_t *v = &clause->values[i];
            double meters;
            char code[FHIR_INDEX_MAX_UCUM];
            if (clause->modifier == FHIR_SEARCH_MOD_MISSING || !v->as.near.has_distance)
                continue;
            if (!fhirpath_ucum_canonical(v->as.near.units ? v->as.near.units : "km",
                                         v->as.near.distance.value, &meters, code, sizeof(code)) ||
                strcmp(code, "m") != 0 || !(meters >= 0))
                return arena_printf(arena,
                                    "\"%s\" is not a valid distance for near: a distance of zero "
                                    "or more in a UCUM unit of length (km, m, [mi_i]) is",
                                    v->text);
        }
        if (param->type == FHIR_SEARCH_TOKEN &&
            (clause->modifier == FHIR_SEARCH_MOD_IN || clause->modifier == FHIR_SEARCH_MOD_NOT_IN ||
             clause->modifier == FHIR_SEARCH_MOD_ABOVE ||
             clause->modifier == FHIR_SEARCH_MOD_BELOW) &&
            !clause->codes)
            return arena_printf(arena,
                                "modifier \":%s\" of \"%s\" needs a terminology service, which "
                                "this server does not have",
                                fhir_search_modifier_name(clause->modifier), param->code);
        if (param->type == FHIR_SEARCH_COMPOSITE && param->ncomponents > 3)
            return arena_printf(arena, "composite parameter \"%s\" has too many components",
                                param->code);
        return NULL;
    case FHIR_SEARCH_CLAUSE_LIST:
        for (size_t i = 0; i < clause->nvalues; i++)
            if (clause->values[i].text && clause->values[i].text[0] == '$')
                return arena_printf(arena, "functional list \"%s\" is not supported",
                                    clause->values[i].text);
        return NULL;
    case FHIR_SEARCH_CLAUSE_CHAIN:
    case FHIR_SEARCH_CLAUSE_HAS:
        for (size_t i = 0; i < clause->nnext; i++) {
            const char *reason = store_search_unsupported(&clause->next[i], arena);
            if (reason)
                return reason;
        }
        return NULL;
    }
    return NULL;
}

status_t store_search(store_conn_t *conn, const store_search_t *query, arena_t *arena,
                      store_search_result_t *out, err_t *err)
{
    REPLICA_READ(conn, err, conn->store->driver->search(c_, query, arena, out, err));
}

status_t store_everything(store_conn_t *conn, const store_everything_t *query, arena_t *arena,
                          store_search_result_t *out, err_t *err)
{
    REPLICA_READ(conn, err, conn->store->driver->everything(c_, query, arena, out, err));
}

/* ---- writer -------------------------------------------------------------------------- */

static void submit(store_t *store, store_txn_fn fn, void *fn_arg, store_done_fn done,
                   void *done_arg, bool relaxed)
{
    txn_item_t *item = xmalloc(sizeof(*item));
    item->next = NULL;
    item->relaxed = relaxed;
    item->fn = fn;
    item->fn_arg = fn_arg;
    item->done = done;
    item->done_arg = done_arg;
    pthread_mutex_lock(&store->lock);
    if (store->closing) {
        pthread_mutex_unlock(&store->lock);
        err_t err = ERR_INIT;
        err_set(&err, ERR_UNAVAILABLE, NULL, "the server is shutting down; retry later");
        done(done_arg, err.code, &err);
        err_release(&err);
        free(item);
        return;
    }
    if (store->tail)
        store->tail->next = item;
    else
        store->head = item;
    store->tail = item;
    pthread_cond_signal(&store->wake);
    pthread_mutex_unlock(&store->lock);
}

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool finished;
    status_t rc;
    err_t *err;
} sync_wait_t;

static void sync_done(void *arg, status_t rc, err_t *err)
{
    sync_wait_t *wait = arg;
    err_move(wait->err, err);
    pthread_mutex_lock(&wait->lock);
    wait->rc = rc;
    wait->finished = true;
    pthread_cond_signal(&wait->cond);
    pthread_mutex_unlock(&wait->lock);
}

void store_submit(store_t *store, store_txn_fn fn, void *fn_arg, store_done_fn done, void *done_arg)
{
    submit(store, fn, fn_arg, done, done_arg, false);
}

static status_t run(store_t *store, store_txn_fn fn, void *arg, bool relaxed, err_t *err)
{
    sync_wait_t wait = {.finished = false, .rc = ERR_OK, .err = err};
    pthread_mutex_init(&wait.lock, NULL);
    pthread_cond_init(&wait.cond, NULL);
    submit(store, fn, arg, sync_done, &wait, relaxed);
    pthread_mutex_lock(&wait.lock);
    while (!wait.finished)
        pthread_cond_wait(&wait.cond, &wait.lock);
    pthread_mutex_unlock(&wait.lock);
    pthread_mutex_destroy(&wait.lock);
    pthread_cond_destroy(&wait.cond);
    return wait.rc;
}

status_t store_run(store_t *store, store_txn_fn fn, void *arg, err_t *err)
{
    return run(store, fn, arg, false, err);
}

status_t store_run_relaxed(store_t *store, store_txn_fn fn, void *arg, err_t *err)
{
    return run(store, fn, arg, true, err);
}

status_t store_run_on(store_conn_t *conn, store_txn_fn fn, void *arg, bool relaxed, err_t *err)
{
    store_t *store = conn->store;
    const store_driver_t *d = store->driver;
    if (!d->concurrent_writers)
        return relaxed ? store_run_relaxed(store, fn, arg, err) : store_run(store, fn, arg, err);
    store_conn_t *primary = conn->primary ? conn->primary : conn;
    void *dc = primary->conn;
    commit_hooks_t hooks = {0};
    store_txn_t txn = {.store = store, .conn = dc, .hooks = &hooks};
    txn.time_us = next_time(store);
    store__format_instant(txn.time_us, txn.time_text);
    status_t rc = relaxed && d->begin_relaxed ? d->begin_relaxed(dc, err) : d->begin(dc, err);
    if (rc)
        return rc;
    rc = fn(&txn, arg, err);
    if (rc && err->code == ERR_OK)
        err_set(err, rc, NULL, "the transaction failed");
    if (rc) {
        d->rollback(dc);
    } else if ((rc = d->commit(dc, err))) {
        d->rollback(dc);
    } else {
        for (size_t k = 0; k < hooks.n; k++)
            hooks.items[k].fn(hooks.items[k].arg);
    }
    free(hooks.items);
    return rc;
}

int64_t store_txn_time_us(store_txn_t *txn)
{
    return txn->time_us;
}

const char *store_txn_time_text(store_txn_t *txn)
{
    return txn->time_text;
}

void store_txn_on_commit(store_txn_t *txn, store_commit_fn fn, void *arg)
{
    commit_hooks_t *h = txn->hooks;
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 4;
        h->items = xrealloc(h->items, h->cap * sizeof(*h->items));
    }
    h->items[h->n++] = (commit_hook_t){fn, arg};
}

status_t store_txn_nested(store_txn_t *txn, store_txn_fn fn, void *arg, err_t *err)
{
    const store_driver_t *d = txn->store->driver;
    status_t rc = d->savepoint(txn->conn, err);
    if (rc)
        return rc;
    size_t hooks = txn->hooks->n;
    rc = fn(txn, arg, err);
    if (rc) {
        txn->hooks->n = hooks; /* what it asked for is rolled back too */
        d->rollback_to(txn->conn);
        err_t ignored = ERR_INIT;
        d->release(txn->conn, &ignored);
        err_release(&ignored);
        return rc;
    }
    return d->release(txn->conn, err);
}

status_t store_txn_read(store_txn_t *txn, const char *type, const char *id, int64_t version,
                        arena_t *arena, store_version_t *out, err_t *err)
{
    return txn->store->driver->read(txn->conn, type, id, version, arena, out, err);
}

status_t store_txn_current(store_txn_t *txn, const char *type, const char *id, store_current_t *out,
                           err_t *err)
{
    return txn->store->driver->current(txn->conn, type, id, out, err);
}

/* The outbox event of a version, in the version's transaction: a crash loses neither or both. */
static status_t outbox_add(store_txn_t *txn, const store_put_t *put, int64_t seq, err_t *err)
{
    store_event_t event = {
        .seq = seq,
        .type = put->type,
        .id = put->id,
        .version = put->version,
        .action = !put->json                                ? STORE_EVENT_DELETE
                  : put->version == 1 || put->status == 201 ? STORE_EVENT_CREATE
                                                            : STORE_EVENT_UPDATE,
        .time_us = txn->time_us,
    };
    return txn->store->driver->outbox_add(txn->conn, &event, err);
}

status_t store_txn_put(store_txn_t *txn, const store_put_t *put, int64_t *out_seq, err_t *err)
{
    int64_t seq = 0;
    status_t rc = txn->store->driver->put(txn->conn, put, txn->time_us, txn->time_text, &seq, err);
    if (!rc)
        rc = outbox_add(txn, put, seq, err);
    if (!rc && out_seq)
        *out_seq = seq;
    return rc;
}

status_t store_txn_search(store_txn_t *txn, const store_search_t *query, arena_t *arena,
                          store_search_result_t *out, err_t *err)
{
    return txn->store->driver->txn_search(txn->conn, query, arena, out, err);
}

status_t store_txn_reindex(store_txn_t *txn, const char *type, const char *id,
                           const fhir_index_rows_t *rows, err_t *err)
{
    return txn->store->driver->reindex(txn->conn, type, id, rows, err);
}

/* ---- work queues ----------------------------------------------------------------------- */

const char *store_event_action_name(store_event_action_t action)
{
    switch (action) {
    case STORE_EVENT_CREATE: return "create";
    case STORE_EVENT_UPDATE: return "update";
    case STORE_EVENT_DELETE: return "delete";
    }
    return "unknown";
}

status_t store_txn_outbox_claim(store_txn_t *txn, const store_claim_t *claim, arena_t *arena,
                                store_event_t **out_events, size_t *out_n, err_t *err)
{
    return txn->store->driver->outbox_claim(txn->conn, claim, arena, out_events, out_n, err);
}

status_t store_txn_outbox_ack(store_txn_t *txn, int64_t event_id, const char *consumer, err_t *err)
{
    return txn->store->driver->outbox_ack(txn->conn, event_id, consumer, err);
}

status_t store_txn_outbox_fail(store_txn_t *txn, int64_t event_id, const store_failure_t *failure,
                               bool *out_dead, err_t *err)
{
    bool dead = false;
    status_t rc = txn->store->driver->outbox_fail(txn->conn, event_id, failure, &dead, err);
    if (out_dead)
        *out_dead = dead;
    return rc;
}

status_t store_txn_outbox_replay(store_txn_t *txn, int64_t event_id, int64_t now_us, err_t *err)
{
    return txn->store->driver->outbox_replay(txn->conn, event_id, now_us, err);
}

status_t store_outbox_dead(store_conn_t *conn, int64_t after_event_id, size_t count, arena_t *arena,
                           store_event_t **out_events, size_t *out_n, err_t *err)
{
    return conn->store->driver->outbox_dead(store_conn_primary(conn)->conn, after_event_id, count,
                                            arena, out_events, out_n, err);
}

status_t store_outbox_counts(store_conn_t *conn, int64_t *out_pending, int64_t *out_dead,
                             err_t *err)
{
    return conn->store->driver->outbox_counts(store_conn_primary(conn)->conn, out_pending, out_dead,
                                              err);
}

status_t store_outbox_stats(store_conn_t *conn, int64_t now_us, store_outbox_stats_t *out,
                            err_t *err)
{
    memset(out, 0, sizeof(*out));
    void *primary = store_conn_primary(conn)->conn;
    int64_t unhandled, claimed;
    status_t rc = conn->store->driver->outbox_counts(primary, &unhandled, &out->dead, err);
    if (!rc)
        rc = conn->store->driver->outbox_claimed(primary, now_us, &claimed, err);
    if (rc)
        return rc;
    out->claimed = claimed;
    out->pending = unhandled - claimed;
    return ERR_OK;
}

status_t store_txn_outbox_replay_dead(store_txn_t *txn, int64_t now_us, int64_t *out_n, err_t *err)
{
    int64_t n = 0;
    status_t rc = txn->store->driver->outbox_replay_all(txn->conn, now_us, &n, err);
    if (out_n)
        *out_n = n;
    return rc;
}

status_t store_txn_job_schedule(store_txn_t *txn, const char *kind, const char *key,
                                int64_t run_at_us, const char *payload, int64_t *out_job_id,
                                err_t *err)
{
    int64_t job_id = 0;
    status_t rc =
        txn->store->driver->job_schedule(txn->conn, kind, key, run_at_us, payload, &job_id, err);
    if (!rc && out_job_id)
        *out_job_id = job_id;
    return rc;
}

status_t store_txn_job_cancel(store_txn_t *txn, const char *kind, const char *key, err_t *err)
{
    return txn->store->driver->job_cancel(txn->conn, kind, key, err);
}

status_t store_txn_job_claim(store_txn_t *txn, const store_claim_t *claim, arena_t *arena,
                             store_job_t **out_jobs, size_t *out_n, err_t *err)
{
    return txn->store->driver->job_claim(txn->conn, claim, arena, out_jobs, out_n, err);
}

status_t store_txn_job_complete(store_txn_t *txn, const store_job_t *job, const char *consumer,
                                int64_t next_run_us, err_t *err)
{
    return txn->store->driver->job_complete(txn->conn, job, consumer, next_run_us, NULL, err);
}

status_t store_txn_job_continue(store_txn_t *txn, const store_job_t *job, const char *consumer,
                                int64_t run_at_us, const char *payload, err_t *err)
{
    return txn->store->driver->job_complete(txn->conn, job, consumer, run_at_us, payload, err);
}

status_t store_txn_job_fail(store_txn_t *txn, const store_job_t *job,
                            const store_failure_t *failure, bool *out_dead, err_t *err)
{
    bool dead = false;
    status_t rc = txn->store->driver->job_fail(txn->conn, job, failure, &dead, err);
    if (out_dead)
        *out_dead = dead;
    return rc;
}

status_t store_txn_job_replay(store_txn_t *txn, int64_t job_id, int64_t now_us, err_t *err)
{
    return txn->store->driver->job_replay(txn->conn, job_id, now_us, err);
}

status_t store_job_list(store_conn_t *conn, const store_job_query_t *query, arena_t *arena,
                        store_job_t **out_jobs, size_t *out_n, err_t *err)
{
    return conn->store->driver->job_list(store_conn_primary(conn)->conn, query, arena, out_jobs,
                                         out_n, err);
}

typedef enum { LEASE_ACQUIRE, LEASE_RENEW, LEASE_RELEASE } lease_op_t;

typedef struct {
    lease_op_t op;
    const char *name, *holder;
    int64_t until_us, now_us;
    bool held;
} lease_arg_t;

static status_t lease_txn(store_txn_t *txn, void *arg, err_t *err)
{
    lease_arg_t *a = arg;
    const store_driver_t *d = txn->store->driver;
    switch (a->op) {
    case LEASE_ACQUIRE:
        return d->lease_acquire(txn->conn, a->name, a->holder, a->until_us, a->now_us, &a->held,
                                err);
    case LEASE_RENEW:
        return d->lease_renew(txn->conn, a->name, a->holder, a->until_us, a->now_us, &a->held, err);
    case LEASE_RELEASE:
        a->held = false;
        return d->lease_release(txn->conn, a->name, a->holder, err);
    }
    return ERR_OK;
}

static status_t lease_run(store_t *store, lease_arg_t *arg, bool *out_held, err_t *err)
{
    status_t rc = store_run(store, lease_txn, arg, err);
    if (out_held)
        *out_held = !rc && arg->held;
    return rc;
}

status_t store_lease_acquire(store_t *store, const char *name, const char *holder,
                             int64_t duration_us, int64_t now_us, bool *out_held, err_t *err)
{
    lease_arg_t arg = {LEASE_ACQUIRE, name, holder, now_us + duration_us, now_us, false};
    return lease_run(store, &arg, out_held, err);
}

status_t store_lease_renew(store_t *store, const char *name, const char *holder,
                           int64_t duration_us, int64_t now_us, bool *out_held, err_t *err)
{
    lease_arg_t arg = {LEASE_RENEW, name, holder, now_us + duration_us, now_us, false};
    return lease_run(store, &arg, out_held, err);
}

status_t store_lease_release(store_t *store, const char *name, const char *holder, err_t *err)
{
    lease_arg_t arg = {LEASE_RELEASE, name, holder, 0, 0, false};
    return lease_run(store, &arg, NULL, err);
}

status_t store_txn_defer_indexes(store_txn_t *txn, err_t *err)
{
    return txn->store->driver->defer_indexes(txn->conn, err);
}

status_t store_txn_analyze(store_txn_t *txn, err_t *err)
{
    return txn->store->driver->analyze(txn->conn, err);
}

status_t store_txn_lock(store_txn_t *txn, const char *key, err_t *err)
{
    return txn->store->driver->lock ? txn->store->driver->lock(txn->conn, key, err) : ERR_OK;
}

static void run_batch(store_t *store, txn_item_t *items)
{
    const store_driver_t *d = store->driver;
    size_t n = 0;
    for (txn_item_t *it = items; it; it = it->next)
        n++;
    status_t *rcs = xcalloc(n, sizeof(*rcs));
    err_t *errs = xcalloc(n, sizeof(*errs));

    /* A lone transaction runs without a savepoint: rolling back the database transaction
     * undoes the same writes, and SQLite keeps no sub-journal of every page it changes (with
     * a savepoint open, each statement of a large transaction pays for the size of that
     * journal: a bulk import slowed down as its batches grew). */
    bool alone = n == 1;
    /* durable unless every transaction of the batch may wait for it */
    bool relaxed = d->begin_relaxed != NULL;
    for (txn_item_t *it = items; relaxed && it; it = it->next)
        relaxed = it->relaxed;
    err_t batch_err = ERR_INIT;
    commit_hooks_t hooks = {0};
    status_t batch_rc = relaxed ? d->begin_relaxed(store->writer_conn, &batch_err)
                                : d->begin(store->writer_conn, &batch_err);
    if (!batch_rc) {
        size_t i = 0;
        for (txn_item_t *it = items; it; it = it->next, i++) {
            store_txn_t txn = {.store = store, .conn = store->writer_conn, .hooks = &hooks};
            size_t first_hook = hooks.n;
            int64_t t = next_time(store);
            txn.time_us = t;
            store__format_instant(t, txn.time_text);
            rcs[i] = alone ? ERR_OK : d->savepoint(store->writer_conn, &errs[i]);
            if (!rcs[i]) {
                rcs[i] = it->fn(&txn, it->fn_arg, &errs[i]);
                if (rcs[i] && errs[i].code == ERR_OK)
                    err_set(&errs[i], rcs[i], NULL, "the transaction failed");
                if (alone) {
                    /* the commit or rollback below ends it */
                } else if (rcs[i]) {
                    d->rollback_to(store->writer_conn);
                    err_t ignored = ERR_INIT;
                    d->release(store->writer_conn, &ignored);
                    err_release(&ignored);
                } else {
                    rcs[i] = d->release(store->writer_conn, &errs[i]);
                }
            }
            if (rcs[i])
                hooks.n = first_hook;
        }
        if (alone && rcs[0]) {
            d->rollback(store->writer_conn);
        } else {
            batch_rc = d->commit(store->writer_conn, &batch_err);
            if (batch_rc)
                d->rollback(store->writer_conn);
        }
    }
    if (!batch_rc) {
        for (size_t k = 0; k < hooks.n; k++)
            hooks.items[k].fn(hooks.items[k].arg);
    }
    free(hooks.items);
    size_t i = 0;
    txn_item_t *unsynced = NULL, *unsynced_last = NULL;
    for (txn_item_t *it = items; it;) {
        txn_item_t *next = it->next;
        if (batch_rc && !rcs[i]) {
            err_reset(&errs[i]);
            err_set(&errs[i], batch_rc, NULL, "%s", err_message(&batch_err));
            if (batch_err.log_detail)
                err_log_detail(&errs[i], "%s", batch_err.log_detail);
            rcs[i] = batch_rc;
        }
        if (store->syncing && !rcs[i] && !it->relaxed) {
            /* committed: reported once the syncer has it on the disk */
            it->rc = ERR_OK;
            err_init(&it->err);
            err_move(&it->err, &errs[i]);
            err_release(&errs[i]);
            it->next = NULL;
            if (unsynced_last)
                unsynced_last->next = it;
            else
                unsynced = it;
            unsynced_last = it;
        } else {
            it->done(it->done_arg, rcs[i], &errs[i]);
            err_release(&errs[i]);
            free(it);
        }
        it = next;
        i++;
    }
    if (unsynced) {
        pthread_mutex_lock(&store->sync_lock);
        if (store->unsynced_tail)
            store->unsynced_tail->next = unsynced;
        else
            store->unsynced = unsynced;
        store->unsynced_tail = unsynced_last;
        pthread_cond_signal(&store->sync_wake);
        pthread_mutex_unlock(&store->sync_lock);
    }
    err_release(&batch_err);
    free(rcs);
    free(errs);
}

static void *writer_main(void *arg)
{
    store_t *store = arg;
    pthread_mutex_lock(&store->lock);
    while (1) {
        while (!store->head && !store->closing)
            pthread_cond_wait(&store->wake, &store->lock);
        if (!store->head && store->closing)
            break;
        /* take up to WRITER_BATCH items */
        txn_item_t *batch = store->head, *last = batch;
        size_t n = 1;
        while (last->next && n < WRITER_BATCH) {
            last = last->next;
            n++;
        }
        store->head = last->next;
        if (!store->head)
            store->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&store->lock);
        run_batch(store, batch);
        pthread_mutex_lock(&store->lock);
    }
    pthread_mutex_unlock(&store->lock);
    return NULL;
}

/* Syncs what the writer has committed and reports it, as long as the writer runs: one sync
 * for everything committed since the last one began (the writer goes on meanwhile). */
static void *syncer_main(void *arg)
{
    store_t *store = arg;
    pthread_mutex_lock(&store->sync_lock);
    while (1) {
        while (!store->unsynced && !store->sync_closing)
            pthread_cond_wait(&store->sync_wake, &store->sync_lock);
        if (!store->unsynced)
            break;
        txn_item_t *items = store->unsynced;
        store->unsynced = store->unsynced_tail = NULL;
        pthread_mutex_unlock(&store->sync_lock);
        err_t err = ERR_INIT;
        status_t rc = store->driver->sync_commits(store->writer_conn, &err);
        if (rc)
            log_error("store: %s", err_message(&err));
        for (txn_item_t *it = items; it;) {
            txn_item_t *next = it->next;
            if (rc) {
                err_reset(&it->err);
                err_set(&it->err, rc, NULL, "%s", err_message(&err));
            }
            it->done(it->done_arg, rc, &it->err);
            err_release(&it->err);
            free(it);
            it = next;
        }
        err_release(&err);
        pthread_mutex_lock(&store->sync_lock);
    }
    pthread_mutex_unlock(&store->sync_lock);
    return NULL;
}

/* ---- copying a whole database ---------------------------------------------------------- */

status_t store_check_unused(const char *location, err_t *err)
{
    const store_driver_t *driver =
        store_location_is_postgres(location) ? &store__pg_driver : &store__sqlite_driver;
    return driver->check_unused(location, err);
}

status_t store_snapshot_begin(store_conn_t *conn, bool lock_writers, err_t *err)
{
    return conn->store->driver->snapshot_begin(conn->conn, lock_writers, err);
}

void store_snapshot_end(store_conn_t *conn)
{
    conn->store->driver->snapshot_end(conn->conn);
}

status_t store_scan_versions(store_conn_t *conn, int64_t after_seq, size_t count, arena_t *arena,
                             store_copy_version_t **out_versions, size_t *out_n, err_t *err)
{
    sql_driver_t sql;
    conn->store->driver->sql(conn->conn, &sql);
    return sql__scan_versions(&sql, after_seq, count, arena, out_versions, out_n, err);
}

status_t store_txn_load_versions(store_txn_t *txn, const store_copy_version_t *versions, size_t n,
                                 err_t *err)
{
    const store_driver_t *d = txn->store->driver;
    sql_driver_t sql;
    d->sql(txn->conn, &sql);
    status_t rc = sql__load_versions(&sql, versions, n, err);
    return rc ? rc : d->load_index(txn->conn, versions, n, err);
}

status_t store_outbox_scan(store_conn_t *conn, int64_t after_event_id, size_t count, arena_t *arena,
                           store_event_t **out_events, size_t *out_n, err_t *err)
{
    sql_driver_t sql;
    conn->store->driver->sql(conn->conn, &sql);
    return sql__outbox_scan(&sql, after_event_id, count, arena, out_events, out_n, err);
}

status_t store_txn_load_events(store_txn_t *txn, const store_event_t *events, size_t n, err_t *err)
{
    sql_driver_t sql;
    txn->store->driver->sql(txn->conn, &sql);
    return sql__load_events(&sql, events, n, err);
}

status_t store_txn_load_jobs(store_txn_t *txn, const store_job_t *jobs, size_t n, err_t *err)
{
    sql_driver_t sql;
    txn->store->driver->sql(txn->conn, &sql);
    return sql__load_jobs(&sql, jobs, n, err);
}

status_t store_lease_list(store_conn_t *conn, arena_t *arena, store_lease_t **out_leases,
                          size_t *out_n, err_t *err)
{
    sql_driver_t sql;
    conn->store->driver->sql(conn->conn, &sql);
    return sql__lease_list(&sql, arena, out_leases, out_n, err);
}

status_t store_txn_load_leases(store_txn_t *txn, const store_lease_t *leases, size_t n, err_t *err)
{
    sql_driver_t sql;
    txn->store->driver->sql(txn->conn, &sql);
    return sql__load_leases(&sql, leases, n, err);
}

status_t store_last_keys(store_conn_t *conn, store_keys_t *out, err_t *err)
{
    memset(out, 0, sizeof(*out));
    return conn->store->driver->last_keys(conn->conn, out, err);
}

status_t store_txn_load_keys(store_txn_t *txn, const store_keys_t *keys, err_t *err)
{
    return txn->store->driver->load_keys(txn->conn, keys, err);
}

/* ---- $everything: what both drivers pass to their SQL -------------------------------- */

static void add_json_string(buf_t *out, const char *s)
{
    buf_addch(out, '"');
    buf_add_json_escaped(out, s, strlen(s));
    buf_addch(out, '"');
}

char *store__json_list(arena_t *arena, const char *const *items, size_t n)
{
    buf_t b = BUF_INIT;
    buf_addch(&b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_addch(&b, ',');
        add_json_string(&b, items[i]);
    }
    buf_addch(&b, ']');
    char *text = arena_strndup(arena, b.ptr, b.len);
    buf_release(&b);
    return text;
}

char *store__everything_members(const store_everything_t *query, arena_t *arena)
{
    buf_t b = BUF_INIT;
    buf_addch(&b, '[');
    for (size_t i = 0; i < query->nmembers; i++) {
        buf_addstr(&b, i ? ",[" : "[");
        add_json_string(&b, query->member_types[i]);
        buf_addch(&b, ',');
        add_json_string(&b, query->member_params[i]);
        buf_addch(&b, ']');
    }
    buf_addch(&b, ']');
    char *text = arena_strndup(arena, b.ptr, b.len);
    buf_release(&b);
    return text;
}

status_t store__everything_cursor(const store_everything_t *query, int64_t *out_rid, err_t *err)
{
    *out_rid = 0;
    const char *page = query->page;
    if (!page || !*page)
        return ERR_OK;
    char *end = NULL;
    long long rid = page[0] == 'r' ? strtoll(page + 1, &end, 10) : -1;
    if (page[0] != 'r' || !end || *end || end == page + 1 || rid < 0)
        return err_set(err, ERR_INVALID, "_page",
                       "the paging cursor \"%s\" is not one this server made", page);
    *out_rid = rid;
    return ERR_OK;
}
