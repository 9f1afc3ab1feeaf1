/*
 * sqlite_auth.c - the SQLite side of the accounts, clients and tokens: runs the statements of
 * sql_auth.c. They are written with $N parameters, which SQLite reads as named ones, so each
 * is bound by its name ("$3") rather than its position: a statement may use its parameters in
 * any order. Rows come back as text in the caller's arena.
 */
#include <stdio.h>
#include <string.h>

#include "store/sqlite_int.h"

/* True when the statement's parameters are $1, $2, ... at the indexes 1, 2, ... */
static bool positional(sqlite3_stmt *stmt)
{
    int count = sqlite3_bind_parameter_count(stmt);
    for (int i = 1; i <= count; i++) {
        char name[32];
        snprintf(name, sizeof(name), "$%d", i);
        const char *actual = sqlite3_bind_parameter_name(stmt, i);
        if (!actual || strcmp(actual, name) != 0)
            return false;
    }
    return true;
}

status_t sqlite__run_auth(void *opaque, int which, const char *sql, const store__value_t *params,
                          size_t nparams, arena_t *arena, store__rows_t *out, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    *out = (store__rows_t){0};
    sqlite3_stmt **slot = &conn->auth_statements[which];
    if (!*slot) {
        int rc = sqlite3_prepare_v3(conn->handle, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
        if (rc != SQLITE_OK)
            return sqlite__fail(conn->handle, rc, err, sql);
        conn->auth_positional[which] = positional(*slot);
    }
    sqlite3_stmt *stmt = *slot;
    int count = sqlite3_bind_parameter_count(stmt);
    for (size_t i = 0; i < nparams; i++) {
        int index;
        if (conn->auth_positional[which]) {
            index = (int)i + 1 <= count ? (int)i + 1 : 0;
        } else {
            char name[32];
            snprintf(name, sizeof(name), "$%u", (unsigned)(i + 1));
            index = sqlite3_bind_parameter_index(stmt, name);
        }
        if (index == 0)
            continue;
        const store__value_t *v = &params[i];
        if (v->kind == STORE__INT)
            sqlite3_bind_int64(stmt, index, v->integer);
        else if (v->kind == STORE__TEXT)
            sqlite3_bind_text(stmt, index, v->text, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(stmt, index);
    }
    size_t ncols = (size_t)sqlite3_column_count(stmt), cap = 0;
    const char **cells = NULL;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (out->nrows == cap) {
            cap = cap ? 2 * cap : 8;
            const char **more = arena_alloc(arena, cap * ncols * sizeof(*more) + 1);
            if (out->nrows)
                memcpy(more, cells, out->nrows * ncols * sizeof(*more));
            cells = more;
        }
        for (size_t c = 0; c < ncols; c++)
            cells[out->nrows * ncols + c] = sqlite__column_text(stmt, (int)c, arena, NULL);
        out->nrows++;
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (rc != SQLITE_DONE) {
        *out = (store__rows_t){0};
        return sqlite__fail(conn->handle, rc, err, sql);
    }
    out->cells = cells;
    out->ncols = ncols;
    out->changes = ncols ? 0 : sqlite3_changes64(conn->handle);
    return ERR_OK;
}
