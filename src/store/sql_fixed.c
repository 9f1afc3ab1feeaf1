/*
 * sql_fixed.c - running the fixed statements of sql_auth.c, sql_session.c and sql_audit.c
 * (the same SQL on both drivers, or a PostgreSQL variant) through the driver's run_auth, and
 * reading their rows.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

void store__p_text(store__params_t *p, const char *s)
{
    p->values[p->n++] = (store__value_t){s ? STORE__TEXT : STORE__NULL, 0, s};
}

void store__p_int(store__params_t *p, int64_t i)
{
    p->values[p->n++] = (store__value_t){STORE__INT, i, NULL};
}

static const char *sql_for(const store_driver_t *driver, const store__fixed_t *statement)
{
    return statement->pg && strcmp(driver->name, "postgresql") == 0 ? statement->pg
                                                                    : statement->sql;
}

status_t store__fixed_conn(store_conn_t *conn, int which, const store__fixed_t *statement,
                           const store__params_t *p, arena_t *arena, store__rows_t *out, err_t *err)
{
    const store_driver_t *driver;
    void *dconn = store__conn_driver(conn, &driver);
    return driver->run_auth(dconn, which, sql_for(driver, statement), p->values, p->n, arena, out,
                            err);
}

status_t store__fixed_txn(store_txn_t *txn, int which, const store__fixed_t *statement,
                          const store__params_t *p, arena_t *arena, store__rows_t *out, err_t *err)
{
    const store_driver_t *driver;
    void *dconn = store__txn_driver(txn, &driver);
    return driver->run_auth(dconn, which, sql_for(driver, statement), p->values, p->n, arena, out,
                            err);
}

status_t store__fixed_write(store_txn_t *txn, int which, const store__fixed_t *statement,
                            const store__params_t *p, int64_t *out_changes, err_t *err)
{
    store__rows_t rows = {0};
    arena_t arena;
    arena_init(&arena);
    status_t rc = store__fixed_txn(txn, which, statement, p, &arena, &rows, err);
    arena_release(&arena);
    if (out_changes)
        *out_changes = rc ? 0 : rows.changes;
    return rc;
}

const char *store__cell(const store__rows_t *rows, size_t row, size_t column)
{
    return rows->cells[row * rows->ncols + column];
}

int64_t store__cell_int(const store__rows_t *rows, size_t row, size_t column)
{
    const char *s = store__cell(rows, row, column);
    return s ? strtoll(s, NULL, 10) : 0;
}
