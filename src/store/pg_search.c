/*
 * pg_search.c - runs search plans on PostgreSQL: the statements of sql_search.c in
 * PostgreSQL's dialect, each value a text parameter its placeholder casts, in one read-only
 * REPEATABLE READ transaction (the total, the estimates, the page and the includes see one
 * snapshot); inside the writer's transaction for the searches of conditional writes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/mem.h"
#include "store/pg_int.h"
#include "store/sql_search.h"

/* A row: a result and the row's number in it. */
typedef struct {
    const PGresult *res;
    int row;
} pg_row_t;

static const pg_row_t *as_row(const sql_row_t *row)
{
    return (const pg_row_t *)row;
}

static int64_t row_int(const sql_row_t *row, int column)
{
    return pg__int_at(as_row(row)->res, as_row(row)->row, column);
}

static const char *row_text(const sql_row_t *row, int column, arena_t *arena, size_t *out_len)
{
    return pg__text_at(as_row(row)->res, as_row(row)->row, column, arena, out_len);
}

/* Type OIDs of pg_type.h (catalog/pg_type_d.h is not installed with libpq). */
enum {
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_FLOAT4 = 700,
    OID_FLOAT8 = 701,
    OID_NUMERIC = 1700
};

static void row_value(const sql_row_t *row, int column, arena_t *arena, sql_bind_t *out)
{
    const PGresult *res = as_row(row)->res;
    int r = as_row(row)->row;
    memset(out, 0, sizeof(*out));
    out->kind = SQL_BIND_TEXT;
    if (PQgetisnull(res, r, column))
        return;
    switch (PQftype(res, column)) {
    case OID_INT8:
    case OID_INT2:
    case OID_INT4:
        out->kind = SQL_BIND_INT;
        out->i = strtoll(PQgetvalue(res, r, column), NULL, 10);
        break;
    case OID_FLOAT4:
    case OID_FLOAT8:
    case OID_NUMERIC:
        out->kind = SQL_BIND_REAL;
        out->d = strtod(PQgetvalue(res, r, column), NULL);
        break;
    default: out->text = pg__text_at(res, r, column, arena, NULL);
    }
}

static status_t run(void *opaque, const sql_stmt_t *q, const char *doing, sql_row_fn fn, void *ctx,
                    err_t *err)
{
    (void)doing; /* pg__fail says what failed with the statement's text */
    pg_conn_t *conn = opaque;
    const char **values = xcalloc(q->nbinds ? q->nbinds : 1, sizeof(*values));
    char(*numbers)[32] = xcalloc(q->nbinds ? q->nbinds : 1, sizeof(*numbers));
    for (size_t i = 0; i < q->nbinds; i++) {
        const sql_bind_t *b = &q->binds[i];
        switch (b->kind) {
        case SQL_BIND_TEXT: values[i] = b->text; break;
        case SQL_BIND_INT:
            snprintf(numbers[i], sizeof(numbers[i]), "%lld", (long long)b->i);
            values[i] = numbers[i];
            break;
        case SQL_BIND_REAL:
            snprintf(numbers[i], sizeof(numbers[i]), "%.17g", b->d);
            values[i] = numbers[i];
            break;
        }
    }
    PGresult *res = NULL;
    status_t rc = q->prepare ? pg__run_shape(conn, q->sql, (int)q->nbinds, values, &res, err)
                             : pg__run_values(conn, q->sql, (int)q->nbinds, values, &res, err);
    free(values);
    free(numbers);
    if (rc)
        return rc;
    int n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        pg_row_t row = {res, i};
        if (!fn(ctx, (const sql_row_t *)&row))
            break;
    }
    PQclear(res);
    return ERR_OK;
}

/* Current resources of a type (every type: NULL), counted up to cap (an index-only count of
 * the (type, deleted) index), remembered for a few seconds per connection as SQLite's driver
 * does: an estimate is all that is needed. */
static status_t type_rows(void *opaque, const fhir_type_t *type, int64_t cap, int64_t *out,
                          err_t *err)
{
    pg_conn_t *conn = opaque;
    const char *name = type ? type->name : "";
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec;
    pg_type_count_t *slot = &conn->type_counts[0];
    for (int i = 0; i < PG_TYPE_COUNTS; i++) {
        pg_type_count_t *c = &conn->type_counts[i];
        if (strcmp(c->type, name) == 0 && c->at > 0 && now - c->at < 10) {
            *out = c->count;
            return ERR_OK;
        }
        if (c->at < slot->at)
            slot = c;
    }
    pg_params_t p = {0};
    pg__int(&p, cap);
    if (type)
        pg__text(&p, type->name);
    PGresult *res;
    status_t rc = pg__run_sql(
        conn,
        type ? "SELECT count(*) FROM (SELECT 1 FROM resource WHERE type = $2 AND deleted = 0 "
               "LIMIT $1) s"
             : "SELECT count(*) FROM (SELECT 1 FROM resource WHERE deleted = 0 LIMIT $1) s",
        &p, &res, err);
    if (rc)
        return rc;
    *out = pg__int_at(res, 0, 0);
    PQclear(res);
    snprintf(slot->type, sizeof(slot->type), "%s", name);
    slot->count = *out;
    slot->at = now;
    return ERR_OK;
}

void pg__sql_driver(void *conn, struct sql_driver *out)
{
    *out = (sql_driver_t){
        .dialect = &sql__postgres,
        .conn = conn,
        .run = run,
        .int_at = row_int,
        .text_at = row_text,
        .value_at = row_value,
        .type_rows = type_rows,
    };
}

static status_t search_snapshot(pg_conn_t *conn, const store_search_t *query, arena_t *arena,
                                store_search_result_t *out, err_t *err)
{
    sql_driver_t driver;
    pg__sql_driver(conn, &driver);
    return sql__search(&driver, query, arena, out, err);
}

status_t pg__search(void *opaque, const store_search_t *query, arena_t *arena,
                    store_search_result_t *out, err_t *err)
{
    pg_conn_t *conn = opaque;
    PGresult *res;
    status_t rc =
        pg__run_sql(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL, &res, err);
    if (rc)
        return rc;
    PQclear(res);
    conn->in_txn = true;
    rc = search_snapshot(conn, query, arena, out, err);
    err_t ignored = ERR_INIT;
    if (pg__run_sql(conn, rc ? "ROLLBACK" : "COMMIT", NULL, &res, &ignored) == ERR_OK)
        PQclear(res);
    err_release(&ignored);
    conn->in_txn = false;
    return rc;
}

/* Inside the writer's transaction, which already sees one state of the database. */
status_t pg__txn_search(void *opaque, const store_search_t *query, arena_t *arena,
                        store_search_result_t *out, err_t *err)
{
    pg_conn_t *conn = opaque;
    if (!conn->in_txn)
        return err_set(err, ERR_INTERNAL, NULL, "a search inside a transaction ran outside one");
    return search_snapshot(conn, query, arena, out, err);
}
