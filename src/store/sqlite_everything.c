/*
 * sqlite_everything.c - a compartment's everything (Patient/$everything) in SQLite.
 *
 * Membership is what a compartment search tests, for all member types at once: an
 * ix_reference row of a (type, param) pair of the compartment that points at the
 * compartment's resource. The resources members refer to come from their own ix_reference
 * rows. A page is the next `count` resources by rid after the cursor's rid (keyset paging,
 * as in sqlite_search.c): for one compartment the members are gathered first (few, through
 * the reference index), for all compartments of a type each resource after the cursor is
 * tested in rid order so a page stops reading when it is full.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "store/sql_search.h"
#include "store/sqlite_int.h"

/* The same columns as a search entry (sqlite_search.c), on resource a and its version v. */
static const char entry_columns[] =
    "a.type, a.id, v.version, v.seq, v.updated_us, v.last_updated, v.method, v.status, "
    "v.deleted, v.json";

static void read_entry(sqlite3_stmt *stmt, int first, arena_t *arena, store_version_t *v)
{
    v->type = sqlite__column_text(stmt, first, arena, NULL);
    v->id = sqlite__column_text(stmt, first + 1, arena, NULL);
    v->version = sqlite3_column_int64(stmt, first + 2);
    v->seq = sqlite3_column_int64(stmt, first + 3);
    v->updated_us = sqlite3_column_int64(stmt, first + 4);
    v->last_updated = sqlite__column_text(stmt, first + 5, arena, NULL);
    v->method = sqlite__column_text(stmt, first + 6, arena, NULL);
    v->status = sqlite3_column_int(stmt, first + 7);
    v->deleted = sqlite3_column_int(stmt, first + 8) != 0;
    v->json = sqlite__column_text(stmt, first + 9, arena, &v->json_len);
}

/*
 * Parameters: ?1 the member pairs [[type, param], ...], ?2 the id, ?3 the compartment type,
 * ?4 the referenced types, ?5 the cursor's rid, ?6 since, ?7 the _type list or NULL,
 * ?8 count + 1, ?9 on the visibility's (store.h; one_sql only). ?2 is a JSON array of ids: one
 * compartment's, or the visible patients' when the caller's visibility restricts a search of
 * every compartment.
 */
#define PAIRS "p(t, c) AS (SELECT value ->> 0, value ->> 1 FROM json_each(?1))"

/* Resource `r` refers to a resource of the compartment's type (?3) as a member. */
#define MEMBER_OF_ANY(r)                                                                   \
    "EXISTS (SELECT 1 FROM ix_reference x JOIN p ON x.type = p.t AND x.param = p.c WHERE " \
    "x.rid = " r " AND x.target_type = ?3)"

static const char one_sql[] =
    "WITH " PAIRS ","
    " member(rid) AS ("
    "  SELECT x.rid FROM p JOIN ix_reference x ON x.type = p.t AND x.param = p.c"
    "   WHERE x.target_id IN (SELECT value FROM json_each(?2)) AND x.target_type = ?3"
    "  UNION SELECT rid FROM resource WHERE type = ?3 AND id IN (SELECT value FROM json_each(?2))),"
    " referenced(rid) AS ("
    "  SELECT b.rid FROM ix_reference y JOIN resource b ON b.type = y.target_type"
    "   AND b.id = y.target_id"
    "   WHERE y.rid IN (SELECT rid FROM member)"
    "   AND y.target_type IN (SELECT value FROM json_each(?4)))"
    " SELECT a.rid, a.rid NOT IN (SELECT rid FROM member), %s"
    " FROM resource a JOIN resource_version v ON v.seq = a.seq"
    " WHERE a.rid IN (SELECT rid FROM member UNION SELECT rid FROM referenced)"
    "  AND a.rid > ?5 AND a.deleted = 0 AND a.updated_us >= ?6"
    "  AND (?7 IS NULL OR a.type IN (SELECT value FROM json_each(?7)))%s"
    " ORDER BY a.rid LIMIT ?8";

static const char all_sql[] = "WITH " PAIRS " SELECT a.rid, NOT (a.type = ?3 OR " MEMBER_OF_ANY(
    "a.rid") "), %s"
             " FROM resource a JOIN resource_version v ON v.seq = a.seq"
             " WHERE a.rid > ?5 AND a.deleted = 0 AND a.updated_us >= ?6"
             "  AND (?7 IS NULL OR a.type IN (SELECT value FROM json_each(?7)))"
             "  AND (a.type = ?3 OR " MEMBER_OF_ANY(
                 "a.rid") " OR"
                          "   (a.type IN (SELECT value FROM json_each(?4)) AND EXISTS ("
                          "     SELECT 1 FROM ix_reference y JOIN resource z ON z.rid = y.rid"
                          "      WHERE y.target_id = a.id AND y.target_type = a.type AND z.deleted "
                          "= 0"
                          "      AND (z.type = ?3 OR " MEMBER_OF_ANY(
                              "y.rid") "))))"
                                       " ORDER BY a.rid LIMIT ?8";

status_t sqlite__everything(void *opaque, const store_everything_t *query, arena_t *arena,
                            store_search_result_t *out, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    memset(out, 0, sizeof(*out));
    out->total = -1;
    int64_t after;
    status_t rc = store__everything_cursor(query, &after, err);
    if (rc)
        return rc;
    const char *pairs_text = store__everything_members(query, arena);
    const store_visibility_t *vis = query->visibility;
    bool one = query->id || vis;
    const char *vbinds[SQL_VISIBLE_BINDS];
    const char *visible = "";
    if (vis) {
        buf_t b = BUF_INIT;
        buf_addstr(&b, " AND ");
        sql__visible(&sql__sqlite, vis, "a", 9, arena, &b, vbinds);
        visible = arena_strndup(arena, b.ptr, b.len);
        buf_release(&b);
    }
    const char *sql = one ? arena_printf(arena, one_sql, entry_columns, visible)
                          : arena_printf(arena, all_sql, entry_columns);
    sqlite3_stmt *stmt;
    if ((rc = sqlite__prepare_cached(conn, sql, &stmt, err)))
        return rc;
    sqlite3_bind_text(stmt, 1, pairs_text, -1, SQLITE_STATIC);
    if (query->id)
        sqlite3_bind_text(stmt, 2, store__json_list(arena, &query->id, 1), -1, SQLITE_STATIC);
    else if (vis)
        sqlite3_bind_text(stmt, 2, store__json_list(arena, vis->patients, vis->npatients), -1,
                          SQLITE_STATIC);
    for (int i = 0; vis && i < SQL_VISIBLE_BINDS; i++)
        sqlite3_bind_text(stmt, 9 + i, vbinds[i], -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, query->compartment_type, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, store__json_list(arena, query->referenced, query->nreferenced), -1,
                      SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 5, after);
    sqlite3_bind_int64(stmt, 6, query->since_us);
    if (query->ntypes)
        sqlite3_bind_text(stmt, 7, store__json_list(arena, query->types, query->ntypes), -1,
                          SQLITE_STATIC);
    uint32_t count = query->count ? query->count : 1;
    sqlite3_bind_int64(stmt, 8, (int64_t)count + 1);
    out->entries = arena_zalloc(arena, (size_t)count * sizeof(*out->entries));
    int step;
    int64_t last = 0;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (out->n == count) {
            out->next = arena_printf(arena, "r%lld", (long long)last);
            break;
        }
        store_search_entry_t *e = &out->entries[out->n++];
        last = sqlite3_column_int64(stmt, 0);
        e->included = sqlite3_column_int(stmt, 1) != 0;
        read_entry(stmt, 2, arena, &e->version);
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return sqlite__fail(conn->handle, step, err, "everything");
    out->nmatch = out->n;
    return ERR_OK;
}
