/*
 * sql_server_key.c - the server's own keys kept in the database (store.h, "the server's
 * keys"): their table and statements, one SQL text for both drivers, run through the drivers'
 * run_auth like sql_auth.c's (statement numbers from STORE_SERVER_KEY_FIRST on).
 *
 * A key is added only when none of its name is there (ON CONFLICT DO NOTHING), so that two
 * servers that start at once on one database each try to add theirs and then both read back
 * the one that was added first. The store keeps what it is given: the key sealed by the
 * caller, never a key in the clear.
 */
#include <string.h>

#include "store/store_int.h"

/* Migration 19 of both drivers. */
const char sql__server_key_schema[] = "CREATE TABLE server_key (name TEXT PRIMARY KEY,"
                                      "  kid TEXT NOT NULL,"
                                      "  created_us BIGINT NOT NULL,"
                                      "  sealed TEXT NOT NULL);";

enum { K_ADD = STORE_SERVER_KEY_FIRST, K_GET, K_LIST, K__END };

_Static_assert(K__END <= STORE_AUTH_STATEMENTS, "raise STORE_AUTH_STATEMENTS");

#define COLUMNS "name, kid, created_us, sealed"

static const store__fixed_t statements[K__END - STORE_SERVER_KEY_FIRST] = {
    [K_ADD - STORE_SERVER_KEY_FIRST] = {"INSERT INTO server_key (" COLUMNS ") VALUES ($1, $2, $3, "
                                        "$4) ON CONFLICT (name) DO NOTHING"},
    [K_GET - STORE_SERVER_KEY_FIRST] = {"SELECT " COLUMNS " FROM server_key WHERE name = $1"},
    [K_LIST - STORE_SERVER_KEY_FIRST] = {"SELECT " COLUMNS " FROM server_key ORDER BY name"},
};

static const store__fixed_t *statement(int which)
{
    return &statements[which - STORE_SERVER_KEY_FIRST];
}

static void row_of(const store__rows_t *rows, size_t r, store_server_key_t *out)
{
    memset(out, 0, sizeof(*out));
    out->name = store__cell(rows, r, 0);
    out->kid = store__cell(rows, r, 1);
    out->created_us = store__cell_int(rows, r, 2);
    out->sealed = store__cell(rows, r, 3);
}

status_t store_txn_server_key_add(store_txn_t *txn, const store_server_key_t *key, bool *out_added,
                                  err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, key->name);
    store__p_text(&p, key->kid);
    store__p_int(&p, key->created_us);
    store__p_text(&p, key->sealed);
    int64_t changes = 0;
    status_t rc = store__fixed_write(txn, K_ADD, statement(K_ADD), &p, &changes, err);
    if (out_added)
        *out_added = !rc && changes == 1;
    return rc;
}

status_t store_server_key_get(store_conn_t *conn, const char *name, arena_t *arena,
                              store_server_key_t *out, bool *out_found, err_t *err)
{
    *out_found = false;
    store__params_t p = {.n = 0};
    store__p_text(&p, name);
    store__rows_t rows = {0};
    status_t rc = store__fixed_conn(conn, K_GET, statement(K_GET), &p, arena, &rows, err);
    if (rc)
        return rc;
    if (rows.nrows > 0) {
        row_of(&rows, 0, out);
        *out_found = true;
    }
    return ERR_OK;
}

status_t store_server_key_list(store_conn_t *conn, arena_t *arena, store_server_key_t **out,
                               size_t *out_n, err_t *err)
{
    *out = NULL;
    *out_n = 0;
    store__params_t p = {.n = 0};
    store__rows_t rows = {0};
    status_t rc = store__fixed_conn(conn, K_LIST, statement(K_LIST), &p, arena, &rows, err);
    if (rc)
        return rc;
    if (rows.nrows) {
        *out = arena_alloc(arena, rows.nrows * sizeof(**out));
        for (size_t r = 0; r < rows.nrows; r++)
            row_of(&rows, r, &(*out)[r]);
    }
    *out_n = rows.nrows;
    return ERR_OK;
}
