/*
 * pg_everything.c - a compartment's everything (Patient/$everything) in PostgreSQL: the SQL of
 * sqlite_everything.c, with the lists as jsonb arrays (jsonb_array_elements instead of
 * json_each) and booleans cast to integers. Membership is an ix_reference row of a (type,
 * param) pair of the compartment pointing at the compartment's resource; referenced resources
 * come from the members' own reference rows; pages are keyset pages by rid.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "store/pg_int.h"
#include "store/sql_search.h"

/* The same columns as a search entry, on resource a and its version v. */
static const char entry_columns[] =
    "a.type, a.id, v.version, v.seq, v.updated_us, v.last_updated, v.method, v.status, "
    "v.deleted, v.json";

/*
 * Parameters: $1 the member pairs [[type, param], ...], $2 the compartment type, $3 the
 * referenced types, $4 the cursor's rid, $5 since, $6 the _type list or NULL, $7 count + 1,
 * and for one compartment $8 its id.
 */
#define PAIRS                                               \
    "p(t, c) AS (SELECT value ->> 0, value ->> 1 "          \
    "FROM jsonb_array_elements($1::jsonb) AS pair(value))," \
    " referenced_types(t) AS (SELECT jsonb_array_elements_text($3::jsonb))"

#define TYPES_FILTER \
    "  AND ($6::jsonb IS NULL OR a.type IN (SELECT jsonb_array_elements_text($6::jsonb)))"

/* Resource `r` refers to a resource of the compartment's type ($2) as a member. */
#define MEMBER_OF_ANY(r)                                                                   \
    "EXISTS (SELECT 1 FROM ix_reference x JOIN p ON x.type = p.t AND x.param = p.c WHERE " \
    "x.rid = " r " AND x.target_type = $2)"

static const char one_sql[] =
    "WITH " PAIRS ", member(rid) AS ("
    "  SELECT x.rid FROM p JOIN ix_reference x ON x.type = p.t AND x.param = p.c"
    "   WHERE x.target_id IN (SELECT jsonb_array_elements_text($8::jsonb)) AND x.target_type = $2"
    "  UNION SELECT rid FROM resource WHERE type = $2"
    "   AND id IN (SELECT jsonb_array_elements_text($8::jsonb))),"
    " referenced(rid) AS ("
    "  SELECT b.rid FROM ix_reference y JOIN resource b ON b.type = y.target_type"
    "   AND b.id = y.target_id"
    "   WHERE y.rid IN (SELECT rid FROM member)"
    "   AND y.target_type IN (SELECT t FROM referenced_types))"
    " SELECT a.rid, (a.rid NOT IN (SELECT rid FROM member))::int, %s"
    " FROM resource a JOIN resource_version v ON v.seq = a.seq"
    " WHERE a.rid IN (SELECT rid FROM member UNION SELECT rid FROM referenced)"
    "  AND a.rid > $4 AND a.deleted = 0 AND a.updated_us >= $5" TYPES_FILTER "%s"
    " ORDER BY a.rid LIMIT $7";

static const char all_sql[] = "WITH " PAIRS " SELECT a.rid, (NOT (a.type = $2 OR " MEMBER_OF_ANY(
    "a.rid") "))::int, %s"
             " FROM resource a JOIN resource_version v ON v.seq = a.seq"
             " WHERE a.rid > $4 AND a.deleted = 0 AND a.updated_us >= $5" TYPES_FILTER
             "  AND (a.type = $2 OR " MEMBER_OF_ANY(
                 "a.rid") " OR"
                          "   (a.type IN (SELECT t FROM referenced_types) AND EXISTS ("
                          "     SELECT 1 FROM ix_reference y JOIN resource z ON z.rid = y.rid"
                          "      WHERE y.target_id = a.id AND y.target_type = a.type AND z.deleted "
                          "= 0"
                          "      AND (z.type = $2 OR " MEMBER_OF_ANY(
                              "y.rid") "))))"
                                       " ORDER BY a.rid LIMIT $7";

status_t pg__everything(void *opaque, const store_everything_t *query, arena_t *arena,
                        store_search_result_t *out, err_t *err)
{
    pg_conn_t *conn = opaque;
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
        /* one_sql over the visible patients' compartments, each resource visible ($9 on) */
        buf_t b = BUF_INIT;
        buf_addstr(&b, " AND ");
        sql__visible(&sql__postgres, vis, "a", 9, arena, &b, vbinds);
        visible = arena_strndup(arena, b.ptr, b.len);
        buf_release(&b);
    }
    const char *sql = one ? arena_printf(arena, one_sql, entry_columns, visible)
                          : arena_printf(arena, all_sql, entry_columns);
    uint32_t count = query->count ? query->count : 1;
    pg_params_t p = {0};
    pg__text(&p, pairs_text);
    pg__text(&p, query->compartment_type);
    pg__text(&p, store__json_list(arena, query->referenced, query->nreferenced));
    pg__int(&p, after);
    pg__int(&p, query->since_us);
    pg__text(&p, query->ntypes ? store__json_list(arena, query->types, query->ntypes) : NULL);
    pg__int(&p, (int64_t)count + 1);
    if (query->id)
        pg__text(&p, store__json_list(arena, &query->id, 1));
    else if (vis)
        pg__text(&p, store__json_list(arena, vis->patients, vis->npatients));
    for (int i = 0; vis && i < SQL_VISIBLE_BINDS; i++)
        pg__text(&p, vbinds[i]);
    PGresult *res;
    if ((rc = pg__run_sql(conn, sql, &p, &res, err)))
        return rc;
    int rows = PQntuples(res);
    out->entries = arena_zalloc(arena, (size_t)count * sizeof(*out->entries));
    int64_t last = 0;
    for (int r = 0; r < rows; r++) {
        if (out->n == count) {
            out->next = arena_printf(arena, "r%lld", (long long)last);
            break;
        }
        store_search_entry_t *e = &out->entries[out->n++];
        last = pg__int_at(res, r, 0);
        e->included = pg__int_at(res, r, 1) != 0;
        store_version_t *v = &e->version;
        v->type = pg__text_at(res, r, 2, arena, NULL);
        v->id = pg__text_at(res, r, 3, arena, NULL);
        v->version = pg__int_at(res, r, 4);
        v->seq = pg__int_at(res, r, 5);
        v->updated_us = pg__int_at(res, r, 6);
        v->last_updated = pg__text_at(res, r, 7, arena, NULL);
        v->method = pg__text_at(res, r, 8, arena, NULL);
        v->status = (int)pg__int_at(res, r, 9);
        v->deleted = pg__int_at(res, r, 10) != 0;
        v->json = pg__text_at(res, r, 11, arena, &v->json_len);
    }
    PQclear(res);
    out->nmatch = out->n;
    return ERR_OK;
}
