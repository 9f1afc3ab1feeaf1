/*
 * pg_search.c - runs search plans on PostgreSQL: not yet. The search SQL (sqlite_search.c) is
 * to be shared between the drivers; until then a search on PostgreSQL is a clear storage
 * error, and so are the searches of conditional writes inside a transaction.
 */
#include "store/pg_int.h"

status_t pg__search(void *conn, const store_search_t *query, arena_t *arena,
                    store_search_result_t *out, err_t *err)
{
    (void)conn;
    (void)query;
    (void)arena;
    (void)out;
    return err_set(err, ERR_STORAGE, NULL, "search on PostgreSQL is not available yet");
}

status_t pg__txn_search(void *conn, const store_search_t *query, arena_t *arena,
                        store_search_result_t *out, err_t *err)
{
    return pg__search(conn, query, arena, out, err);
}
