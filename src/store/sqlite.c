/*
 * sqlite.c - the SQLite driver: the embedded default.
 *
 * WAL journal, synchronous=FULL unless configured otherwise, one connection per thread
 * (opened NOMUTEX: each is used by one thread at a time), prepared statements cached per
 * connection and reset before returning. The writer's connection takes the write lock with
 * BEGIN IMMEDIATE. SQLite result codes become status_t here and nowhere else; SQLite's own
 * text goes to the log-only detail.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "store/store_int.h"

typedef struct {
    char *path;
    store_options_t options;
} sqlite_db_t;

enum {
    STMT_READ_CURRENT,
    STMT_READ_VERSION,
    STMT_CURRENT,
    STMT_INSERT_VERSION,
    STMT_UPSERT_CURRENT,
    STMT_COUNT_TYPE,
    STMT_COUNT_ALL,
    STMT__COUNT
};

static const char *const statement_sql[STMT__COUNT] = {
    [STMT_READ_CURRENT] = "SELECT v.version, v.seq, v.updated_us, v.last_updated, v.method, "
                          "v.status, v.deleted, v.json "
                          "FROM resource r JOIN resource_version v ON v.seq = r.seq "
                          "WHERE r.type = ?1 AND r.id = ?2",
    [STMT_READ_VERSION] =
        "SELECT version, seq, updated_us, last_updated, method, status, deleted, json "
        "FROM resource_version WHERE type = ?1 AND id = ?2 AND version = ?3",
    [STMT_CURRENT] = "SELECT version, deleted FROM resource WHERE type = ?1 AND id = ?2",
    [STMT_INSERT_VERSION] =
        "INSERT INTO resource_version (type, id, version, updated_us, last_updated, method, "
        "deleted, json, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [STMT_UPSERT_CURRENT] =
        "INSERT INTO resource (type, id, version, seq, deleted) VALUES (?1, ?2, ?3, ?4, ?5) "
        "ON CONFLICT (type, id) DO UPDATE SET version = excluded.version, seq = excluded.seq, "
        "deleted = excluded.deleted",
    [STMT_COUNT_TYPE] = "SELECT count(*) FROM resource WHERE type = ?1 AND deleted = 0",
    [STMT_COUNT_ALL] = "SELECT count(*) FROM resource WHERE deleted = 0",
};

typedef struct {
    sqlite3 *handle;
    sqlite3_stmt *statements[STMT__COUNT];
    bool writer;
} sqlite_conn_t;

/* ---- errors -------------------------------------------------------------------------- */

static status_t fail(sqlite3 *handle, int code, err_t *err, const char *doing)
{
    int primary = code & 0xFF;
    status_t status;
    const char *message;
    switch (primary) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        status = ERR_UNAVAILABLE;
        message = "the database is busy; retry later";
        break;
    case SQLITE_FULL:
        status = ERR_UNAVAILABLE;
        message = "the database could not grow: the disk is full";
        break;
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
        status = ERR_STORAGE;
        message = "the database cannot be opened for writing";
        break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        status = ERR_STORAGE;
        message = "the database file is damaged or not a Concerto database";
        break;
    default: status = ERR_STORAGE; message = "the database reported an error";
    }
    err_set(err, status, NULL, "%s", message);
    err_log_detail(err, "sqlite: %s: %s (%d)", doing,
                   handle ? sqlite3_errmsg(handle) : sqlite3_errstr(code), code);
    return status;
}

/* ---- schema -------------------------------------------------------------------------- */

/* Migrations in order; migration i brings the schema to version i + 1. Never edit one that
 * has shipped: add a new one. */
static const char *const migrations[] = {
    /* 1: versions and current resources */
    "CREATE TABLE resource_version ("
    "  seq INTEGER PRIMARY KEY,"
    "  type TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  updated_us INTEGER NOT NULL,"
    "  last_updated TEXT NOT NULL,"
    "  method TEXT NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  deleted INTEGER NOT NULL,"
    "  json TEXT,"
    "  UNIQUE (type, id, version)"
    ");"
    "CREATE INDEX resource_version_type_seq ON resource_version (type, seq);"
    "CREATE INDEX resource_version_updated ON resource_version (updated_us);"
    "CREATE TABLE resource ("
    "  rid INTEGER PRIMARY KEY," /* the key index rows refer to */
    "  type TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  deleted INTEGER NOT NULL,"
    "  UNIQUE (type, id)"
    ");",
};

static status_t exec(sqlite3 *handle, const char *sql, err_t *err)
{
    int rc = sqlite3_exec(handle, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return fail(handle, rc, err, sql);
    return ERR_OK;
}

static status_t open_handle(sqlite_db_t *db, bool create, sqlite3 **out, err_t *err)
{
    sqlite3 *handle = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(db->path, &handle, flags, NULL);
    if (rc != SQLITE_OK) {
        if (rc == SQLITE_CANTOPEN) {
            err_set(err, ERR_STORAGE, NULL, "could not open the database \"%s\"", db->path);
            err_log_detail(err, "sqlite: %s", handle ? sqlite3_errmsg(handle) : "cannot open");
        } else {
            fail(handle, rc, err, "open");
        }
        sqlite3_close(handle);
        return err->code;
    }
    sqlite3_extended_result_codes(handle, 1);
    sqlite3_busy_timeout(handle, db->options.busy_timeout_ms);
    static const char *const sync_names[] = {"FULL", "NORMAL", "OFF"};
    char pragmas[256];
    snprintf(pragmas, sizeof(pragmas),
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=OFF;"
             "PRAGMA cache_size=-8000; PRAGMA temp_store=MEMORY;",
             sync_names[db->options.synchronous]);
    status_t status = exec(handle, pragmas, err);
    if (status) {
        sqlite3_close(handle);
        return status;
    }
    *out = handle;
    return ERR_OK;
}

static status_t sqlite_open(const char *location, const store_options_t *options, void **out_db,
                            err_t *err)
{
    sqlite_db_t *db = xcalloc(1, sizeof(*db));
    db->path = xstrdup(location);
    db->options = *options;
    /* open once to create the file and check that it is a database we can write */
    sqlite3 *handle;
    status_t rc = open_handle(db, options->create, &handle, err);
    if (rc) {
        free(db->path);
        free(db);
        return rc;
    }
    sqlite3_close(handle);
    *out_db = db;
    return ERR_OK;
}

static void sqlite_close(void *opaque)
{
    sqlite_db_t *db = opaque;
    free(db->path);
    free(db);
}

static status_t sqlite_migrate(void *opaque, int *out_version, err_t *err)
{
    sqlite_db_t *db = opaque;
    sqlite3 *handle;
    status_t rc = open_handle(db, false, &handle, err);
    if (rc)
        return rc;
    rc = exec(handle,
              "BEGIN IMMEDIATE;"
              "CREATE TABLE IF NOT EXISTS schema_migration ("
              "  version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);",
              err);
    if (rc)
        goto out;
    sqlite3_stmt *stmt;
    int version = 0;
    if (sqlite3_prepare_v2(handle, "SELECT coalesce(max(version), 0) FROM schema_migration", -1,
                           &stmt, NULL) != SQLITE_OK) {
        rc = fail(handle, sqlite3_errcode(handle), err, "read schema version");
        goto rollback;
    }
    if (sqlite3_step(stmt) == SQLITE_ROW)
        version = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    int latest = (int)(sizeof(migrations) / sizeof(migrations[0]));
    if (version > latest) {
        rc = err_set(err, ERR_STORAGE, NULL,
                     "the database is at schema version %d, newer than this Concerto (%d)", version,
                     latest);
        goto rollback;
    }
    for (int v = version; v < latest; v++) {
        rc = exec(handle, migrations[v], err);
        if (rc)
            goto rollback;
        char record[160];
        snprintf(record, sizeof(record),
                 "INSERT INTO schema_migration VALUES (%d, strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ'))",
                 v + 1);
        rc = exec(handle, record, err);
        if (rc)
            goto rollback;
    }
    rc = exec(handle, "COMMIT", err);
    if (rc)
        goto rollback;
    *out_version = latest;
    goto out;
rollback:
    sqlite3_exec(handle, "ROLLBACK", NULL, NULL, NULL);
out:
    sqlite3_close(handle);
    return rc;
}

static status_t sqlite_connect(void *opaque, bool writer, void **out_conn, err_t *err)
{
    sqlite_db_t *db = opaque;
    sqlite_conn_t *conn = xcalloc(1, sizeof(*conn));
    status_t rc = open_handle(db, false, &conn->handle, err);
    if (rc) {
        free(conn);
        return rc;
    }
    conn->writer = writer;
    *out_conn = conn;
    return ERR_OK;
}

static void sqlite_disconnect(void *opaque)
{
    sqlite_conn_t *conn = opaque;
    for (int i = 0; i < STMT__COUNT; i++)
        sqlite3_finalize(conn->statements[i]);
    sqlite3_close(conn->handle);
    free(conn);
}

static status_t prepare(sqlite_conn_t *conn, int which, sqlite3_stmt **out, err_t *err)
{
    if (!conn->statements[which]) {
        int rc = sqlite3_prepare_v3(conn->handle, statement_sql[which], -1,
                                    SQLITE_PREPARE_PERSISTENT, &conn->statements[which], NULL);
        if (rc != SQLITE_OK)
            return fail(conn->handle, rc, err, statement_sql[which]);
    }
    *out = conn->statements[which];
    return ERR_OK;
}

static const char *column_text(sqlite3_stmt *stmt, int column, arena_t *arena, size_t *out_len)
{
    const unsigned char *text = sqlite3_column_text(stmt, column);
    size_t len = (size_t)sqlite3_column_bytes(stmt, column);
    if (out_len)
        *out_len = len;
    if (!text)
        return NULL;
    return arena_strndup(arena, (const char *)text, len);
}

/* Columns: version, seq, updated_us, last_updated, method, status, deleted, json. */
static void row_to_version(sqlite3_stmt *stmt, int first, arena_t *arena, store_version_t *out)
{
    out->version = sqlite3_column_int64(stmt, first + 0);
    out->seq = sqlite3_column_int64(stmt, first + 1);
    out->updated_us = sqlite3_column_int64(stmt, first + 2);
    out->last_updated = column_text(stmt, first + 3, arena, NULL);
    out->method = column_text(stmt, first + 4, arena, NULL);
    out->status = sqlite3_column_int(stmt, first + 5);
    out->deleted = sqlite3_column_int(stmt, first + 6) != 0;
    out->json = column_text(stmt, first + 7, arena, &out->json_len);
    if (!out->json)
        out->json_len = 0;
}

static status_t sqlite_read(void *opaque, const char *type, const char *id, int64_t version,
                            arena_t *arena, store_version_t *out, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt;
    status_t status = prepare(conn, version ? STMT_READ_VERSION : STMT_READ_CURRENT, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_text(stmt, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, id, -1, SQLITE_STATIC);
    if (version)
        sqlite3_bind_int64(stmt, 3, version);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        out->type = arena_strdup(arena, type);
        out->id = arena_strdup(arena, id);
        row_to_version(stmt, 0, arena, out);
        status = ERR_OK;
    } else if (rc == SQLITE_DONE) {
        status = version ? err_set(err, ERR_NOT_FOUND, NULL, "%s/%s has no version %lld", type, id,
                                   (long long)version)
                         : err_set(err, ERR_NOT_FOUND, NULL, "%s/%s is not known", type, id);
    } else {
        status = fail(conn->handle, rc, err, "read");
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return status;
}

static status_t sqlite_history(void *opaque, const store_history_query_t *q, arena_t *arena,
                               store_history_t *out, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    /* The WHERE clause is assembled from fixed fragments; every value is a bound parameter. */
    char sql[768];
    bool newer = q->after_seq > 0;
    snprintf(
        sql, sizeof(sql),
        "SELECT type, id, version, seq, updated_us, last_updated, method, status, deleted, json "
        "FROM resource_version WHERE 1=1%s%s%s%s ORDER BY seq %s LIMIT ?6",
        q->type ? " AND type = ?1" : "", q->id ? " AND id = ?2" : "",
        q->since_us != INT64_MIN ? " AND updated_us >= ?3" : "",
        newer ? " AND seq > ?5" : " AND seq < ?4", newer ? "ASC" : "DESC");
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v2(conn->handle, sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return fail(conn->handle, rc, err, "history");
    if (q->type)
        sqlite3_bind_text(stmt, 1, q->type, -1, SQLITE_STATIC);
    if (q->id)
        sqlite3_bind_text(stmt, 2, q->id, -1, SQLITE_STATIC);
    if (q->since_us != INT64_MIN)
        sqlite3_bind_int64(stmt, 3, q->since_us);
    sqlite3_bind_int64(stmt, 4, q->before_seq);
    sqlite3_bind_int64(stmt, 5, q->after_seq);
    sqlite3_bind_int64(stmt, 6, (sqlite3_int64)q->count + 1);

    out->versions = arena_alloc(arena, (q->count + 1) * sizeof(store_version_t));
    out->n = 0;
    out->total = -1;
    bool extra = false;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (out->n == q->count) {
            extra = true;
            break;
        }
        store_version_t *v = &out->versions[out->n++];
        v->type = column_text(stmt, 0, arena, NULL);
        v->id = column_text(stmt, 1, arena, NULL);
        row_to_version(stmt, 2, arena, v);
    }
    status_t status = ERR_OK;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        status = fail(conn->handle, rc, err, "history");
    sqlite3_finalize(stmt);
    if (status)
        return status;
    if (newer) {
        /* fetched oldest first: put newest first like every page */
        for (size_t i = 0; i < out->n / 2; i++) {
            store_version_t tmp = out->versions[i];
            out->versions[i] = out->versions[out->n - 1 - i];
            out->versions[out->n - 1 - i] = tmp;
        }
        out->more_newer = extra;
        out->more_older = true; /* we came from an older page */
    } else {
        out->more_older = extra;
        out->more_newer = q->before_seq != INT64_MAX;
    }
    if (q->want_total) {
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM resource_version WHERE 1=1%s%s%s",
                 q->type ? " AND type = ?1" : "", q->id ? " AND id = ?2" : "",
                 q->since_us != INT64_MIN ? " AND updated_us >= ?3" : "");
        rc = sqlite3_prepare_v2(conn->handle, sql, -1, &stmt, NULL);
        if (rc != SQLITE_OK)
            return fail(conn->handle, rc, err, "history count");
        if (q->type)
            sqlite3_bind_text(stmt, 1, q->type, -1, SQLITE_STATIC);
        if (q->id)
            sqlite3_bind_text(stmt, 2, q->id, -1, SQLITE_STATIC);
        if (q->since_us != INT64_MIN)
            sqlite3_bind_int64(stmt, 3, q->since_us);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
            out->total = sqlite3_column_int64(stmt, 0);
        else
            status = fail(conn->handle, rc, err, "history count");
        sqlite3_finalize(stmt);
    }
    return status;
}

static status_t sqlite_count(void *opaque, const char *type, int64_t *out, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt;
    status_t status = prepare(conn, type ? STMT_COUNT_TYPE : STMT_COUNT_ALL, &stmt, err);
    if (status)
        return status;
    if (type)
        sqlite3_bind_text(stmt, 1, type, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(stmt, 0);
    else
        status = fail(conn->handle, rc, err, "count");
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return status;
}

/* ---- transactions -------------------------------------------------------------------- */

static status_t sqlite_begin(void *opaque, err_t *err)
{
    return exec(((sqlite_conn_t *)opaque)->handle, "BEGIN IMMEDIATE", err);
}

static status_t sqlite_commit(void *opaque, err_t *err)
{
    return exec(((sqlite_conn_t *)opaque)->handle, "COMMIT", err);
}

static void sqlite_rollback(void *opaque)
{
    sqlite_conn_t *conn = opaque;
    if (!sqlite3_get_autocommit(conn->handle))
        sqlite3_exec(conn->handle, "ROLLBACK", NULL, NULL, NULL);
}

static status_t sqlite_savepoint(void *opaque, err_t *err)
{
    return exec(((sqlite_conn_t *)opaque)->handle, "SAVEPOINT txn", err);
}

static status_t sqlite_release(void *opaque, err_t *err)
{
    return exec(((sqlite_conn_t *)opaque)->handle, "RELEASE txn", err);
}

static void sqlite_rollback_to(void *opaque)
{
    sqlite3_exec(((sqlite_conn_t *)opaque)->handle, "ROLLBACK TO txn", NULL, NULL, NULL);
}

static status_t sqlite_current(void *opaque, const char *type, const char *id, store_current_t *out,
                               err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt;
    status_t status = prepare(conn, STMT_CURRENT, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_text(stmt, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        out->version = sqlite3_column_int64(stmt, 0);
        out->deleted = sqlite3_column_int(stmt, 1) != 0;
    } else if (rc == SQLITE_DONE) {
        out->version = 0;
        out->deleted = false;
    } else {
        status = fail(conn->handle, rc, err, "current version");
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return status;
}

static status_t sqlite_put(void *opaque, const store_put_t *put, int64_t updated_us,
                           const char *last_updated, int64_t *out_seq, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt;
    status_t status = prepare(conn, STMT_INSERT_VERSION, &stmt, err);
    if (status)
        return status;
    bool deleted = put->json == NULL;
    sqlite3_bind_text(stmt, 1, put->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, put->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, put->version);
    sqlite3_bind_int64(stmt, 4, updated_us);
    sqlite3_bind_text(stmt, 5, last_updated, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 6, put->method, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 7, deleted);
    if (deleted)
        sqlite3_bind_null(stmt, 8);
    else
        sqlite3_bind_text(stmt, 8, put->json, (int)put->json_len, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 9, put->status);
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (rc != SQLITE_DONE) {
        if ((rc & 0xFF) == SQLITE_CONSTRAINT)
            return err_set(err, ERR_VERSION_CONFLICT, NULL,
                           "%s/%s version %lld was written concurrently", put->type, put->id,
                           (long long)put->version);
        return fail(conn->handle, rc, err, "insert version");
    }
    int64_t seq = sqlite3_last_insert_rowid(conn->handle);
    status = prepare(conn, STMT_UPSERT_CURRENT, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_text(stmt, 1, put->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, put->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, put->version);
    sqlite3_bind_int64(stmt, 4, seq);
    sqlite3_bind_int(stmt, 5, deleted);
    rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (rc != SQLITE_DONE)
        return fail(conn->handle, rc, err, "update current");
    *out_seq = seq;
    return ERR_OK;
}

const store_driver_t store__sqlite_driver = {
    .name = "sqlite",
    .open = sqlite_open,
    .close = sqlite_close,
    .migrate = sqlite_migrate,
    .connect = sqlite_connect,
    .disconnect = sqlite_disconnect,
    .read = sqlite_read,
    .history = sqlite_history,
    .count = sqlite_count,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .savepoint = sqlite_savepoint,
    .release = sqlite_release,
    .rollback_to = sqlite_rollback_to,
    .current = sqlite_current,
    .put = sqlite_put,
};
