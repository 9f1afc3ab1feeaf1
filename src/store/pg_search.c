/*
 * pg_search.c - runs search plans on PostgreSQL.
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
