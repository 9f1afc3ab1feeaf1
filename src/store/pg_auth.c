/*
 * pg_auth.c - the PostgreSQL side of the accounts, clients and tokens: runs the statements of
 * sql_auth.c, each prepared once per connection (PG_AUTH + its number), parameters and
 * results as text like every statement of this driver.
 */
#include <stdlib.h>
#include <string.h>

#include "store/pg_int.h"

status_t pg__run_auth(void *opaque, int which, const char *sql, const store__value_t *params,
                      size_t nparams, arena_t *arena, store__rows_t *out, err_t *err)
{
    pg_conn_t *conn = opaque;
    *out = (store__rows_t){0};
    PGresult *res = NULL;
    status_t rc;
    if (nparams > PG_MAX_PARAMS) {
        /* an insert of several rows: the values in the arena */
        const char **values = arena_alloc(arena, nparams * sizeof(*values));
        for (size_t i = 0; i < nparams; i++) {
            if (params[i].kind == STORE__INT)
                values[i] = arena_printf(arena, "%lld", (long long)params[i].integer);
            else
                values[i] = params[i].kind == STORE__TEXT ? params[i].text : NULL;
        }
        rc = pg__run_named_values(conn, PG_AUTH + which, sql, (int)nparams, values, &res, err);
    } else {
        pg_params_t p = {.n = 0};
        for (size_t i = 0; i < nparams; i++) {
            if (params[i].kind == STORE__INT)
                pg__int(&p, params[i].integer);
            else
                pg__text(&p, params[i].kind == STORE__TEXT ? params[i].text : NULL);
        }
        rc = pg__run_named(conn, PG_AUTH + which, sql, &p, &res, err);
    }
    if (rc)
        return rc;
    if (!res)
        return ERR_OK;
    size_t nrows = (size_t)PQntuples(res), ncols = (size_t)PQnfields(res);
    const char **cells = arena_alloc(arena, nrows * ncols * sizeof(*cells) + 1);
    for (size_t r = 0; r < nrows; r++)
        for (size_t c = 0; c < ncols; c++)
            cells[r * ncols + c] = pg__text_at(res, (int)r, (int)c, arena, NULL);
    out->cells = cells;
    out->nrows = nrows;
    out->ncols = ncols;
    out->changes = ncols ? 0 : pg__changes(res);
    PQclear(res);
    return ERR_OK;
}
