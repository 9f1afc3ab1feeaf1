/*
 * sqlite_search.c - runs search plans on SQLite: the statements of sql_search.c in SQLite's
 * dialect, prepared through the connection's statement cache, in one read transaction; the
 * distance function of near; the estimates of a type's size, remembered per connection.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store/sql_search.h"
#include "store/sql_text.h"
#include "store/sqlite_int.h"

static void distance_function(sqlite3_context *context, int argc, sqlite3_value **argv)
{
    (void)argc;
    for (int i = 0; i < 4; i++)
        if (sqlite3_value_type(argv[i]) == SQLITE_NULL) {
            sqlite3_result_null(context);
            return;
        }
    sqlite3_result_double(context, sql__great_circle_km(sqlite3_value_double(argv[0]),
                                                        sqlite3_value_double(argv[1]),
                                                        sqlite3_value_double(argv[2]),
                                                        sqlite3_value_double(argv[3])));
}

/* concerto_words(text): the words of a full text joined by spaces (sql_text.h), for the
 * migration that splits the text stored before it. */
static void words_function(sqlite3_context *context, int argc, sqlite3_value **argv)
{
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        sqlite3_result_null(context);
        return;
    }
    buf_t words = BUF_INIT;
    sql__text_join((const char *)sqlite3_value_text(argv[0]), &words);
    sqlite3_result_text(context, words.ptr, (int)words.len, SQLITE_TRANSIENT);
    buf_release(&words);
}

void sqlite__search_functions(sqlite3 *handle)
{
    sqlite3_create_function(handle, "concerto_words", 1,
                            SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                            words_function, NULL, NULL);
    sqlite3_create_function(handle, "concerto_distance", 4,
                            SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                            distance_function, NULL, NULL);
}

/* A row is the statement stepped onto it. */
static sqlite3_stmt *row_stmt(const sql_row_t *row)
{
    return (sqlite3_stmt *)row;
}

static int64_t row_int(const sql_row_t *row, int column)
{
    return sqlite3_column_int64(row_stmt(row), column);
}

static const char *row_text(const sql_row_t *row, int column, arena_t *arena, size_t *out_len)
{
    return sqlite__column_text(row_stmt(row), column, arena, out_len);
}

static void row_value(const sql_row_t *row, int column, arena_t *arena, sql_bind_t *out)
{
    sqlite3_stmt *stmt = row_stmt(row);
    memset(out, 0, sizeof(*out));
    switch (sqlite3_column_type(stmt, column)) {
    case SQLITE_INTEGER:
        out->kind = SQL_BIND_INT;
        out->i = sqlite3_column_int64(stmt, column);
        break;
    case SQLITE_FLOAT:
        out->kind = SQL_BIND_REAL;
        out->d = sqlite3_column_double(stmt, column);
        break;
    case SQLITE_TEXT:
        out->kind = SQL_BIND_TEXT;
        out->text = sqlite__column_text(stmt, column, arena, NULL);
        break;
    default: out->kind = SQL_BIND_TEXT;
    }
}

static status_t run(void *opaque, const sql_stmt_t *q, const char *doing, sql_row_fn fn, void *ctx,
                    err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt;
    status_t rc = ERR_OK;
    if (conn->text.n && strstr(q->sql, "ix_text")) /* the writer's own full text */
        rc = sqlite__text_flush_open(conn, err);
    if (!rc)
        rc = sqlite__prepare_cached(conn, q->sql, &stmt, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < q->nbinds; i++) {
        const sql_bind_t *b = &q->binds[i];
        int at = (int)i + 1;
        switch (b->kind) {
        case SQL_BIND_TEXT: sqlite3_bind_text(stmt, at, b->text, -1, SQLITE_STATIC); break;
        case SQL_BIND_INT: sqlite3_bind_int64(stmt, at, b->i); break;
        case SQL_BIND_REAL: sqlite3_bind_double(stmt, at, b->d); break;
        }
    }
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW)
        if (!fn(ctx, (const sql_row_t *)stmt))
            break;
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        rc = sqlite__fail(conn->handle, step, err, doing);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return rc;
}

/* Current resources of a type (every type: NULL), counted up to cap, remembered for a few
 * seconds per connection: an estimate is all that is needed. */
static status_t type_rows(void *opaque, const fhir_type_t *type, int64_t cap, int64_t *out,
                          err_t *err)
{
    sqlite_conn_t *conn = opaque;
    const char *name = type ? type->name : "";
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec;
    sqlite_type_count_t *slot = &conn->type_counts[0];
    for (int i = 0; i < SQLITE_TYPE_COUNTS; i++) {
        sqlite_type_count_t *c = &conn->type_counts[i];
        if (strcmp(c->type, name) == 0 && c->at > 0 && now - c->at < 10) {
            *out = c->count;
            return ERR_OK;
        }
        if (c->at < slot->at)
            slot = c;
    }
    sqlite3_stmt *stmt;
    status_t rc = sqlite__prepare_cached(
        conn,
        type ? "SELECT count(*) FROM (SELECT 1 FROM resource WHERE type = ?1 AND deleted = 0 "
               "LIMIT ?2)"
             : "SELECT count(*) FROM (SELECT 1 FROM resource WHERE deleted = 0 LIMIT ?2)",
        &stmt, err);
    if (rc)
        return rc;
    if (type)
        sqlite3_bind_text(stmt, 1, type->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, cap);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW)
        *out = sqlite3_column_int64(stmt, 0);
    else
        rc = sqlite__fail(conn->handle, step, err, "search estimate");
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (!rc) {
        snprintf(slot->type, sizeof(slot->type), "%s", name);
        slot->count = *out;
        slot->at = now;
    }
    return rc;
}

void sqlite__sql_driver(void *conn, struct sql_driver *out)
{
    *out = (sql_driver_t){
        .dialect = &sql__sqlite,
        .conn = conn,
        .run = run,
        .int_at = row_int,
        .text_at = row_text,
        .value_at = row_value,
        .type_rows = type_rows,
    };
}

static status_t search_snapshot(sqlite_conn_t *conn, const store_search_t *query, arena_t *arena,
                                store_search_result_t *out, err_t *err)
{
    sql_driver_t driver;
    sqlite__sql_driver(conn, &driver);
    return sql__search(&driver, query, arena, out, err);
}

/* One read transaction: the total, the estimates, the page and the includes see one state of
 * the database. */
status_t sqlite__search(void *opaque, const store_search_t *query, arena_t *arena,
                        store_search_result_t *out, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    int rc = sqlite3_exec(conn->handle, "BEGIN", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sqlite__fail(conn->handle, rc, err, "search: begin");
    status_t status = search_snapshot(conn, query, arena, out, err);
    sqlite3_exec(conn->handle, status ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL);
    return status;
}

/* Inside the writer's transaction: its savepoints already give one state of the database, and
 * a BEGIN there would fail. */
status_t sqlite__txn_search(void *opaque, const store_search_t *query, arena_t *arena,
                            store_search_result_t *out, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    if (sqlite3_get_autocommit(conn->handle))
        return err_set(err, ERR_INTERNAL, NULL, "a search inside a transaction ran outside one");
    return search_snapshot(conn, query, arena, out, err);
}

status_t sqlite__search_sql(const store_search_t *query, arena_t *arena, const char **out_sql)
{
    sql_stmt_t stmt;
    sql__search_page(&sql__sqlite, query, arena, &stmt);
    *out_sql = stmt.sql;
    return ERR_OK;
}
