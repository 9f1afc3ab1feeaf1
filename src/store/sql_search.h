/*
 * sql_search.h - the search SQL of both drivers: a plan (src/fhir/search.h) becomes statement
 * text built from fixed fragments and a list of typed binds, in the dialect of the driver
 * that runs it; and the search itself (totals, estimates, pages, cursors, includes) over a
 * driver's way of running a statement. Only the files of src/store include it.
 *
 * The dialect covers what differs between SQLite and PostgreSQL: placeholders (`?` or
 * `$n::type`), how a list is passed (json_each of a JSON array, or unnest of an array and
 * jsonb_array_elements), the key of an index row (rowid or ctid), the full-text match (FTS5's
 * MATCH or a tsquery on the tsvector column), the great-circle distance (a registered
 * function or the formula inline), the SQL of true and false, substring positions, a subquery's
 * alias, and the unary + that keeps SQLite off an index.
 */
#ifndef CONCERTO_STORE_SQL_SEARCH_H
#define CONCERTO_STORE_SQL_SEARCH_H

#include "store/store_int.h"

typedef enum { SQL_SQLITE, SQL_POSTGRES } sql_dialect_kind_t;

typedef struct {
    sql_dialect_kind_t kind;
    bool numbered;         /* placeholders $1::type ..., else ? */
    const char *true_sql;  /* a condition always true: "1" or "true" */
    const char *false_sql; /* "0" or "false" */
    const char *no_index;  /* before a column the planner should not look up by: "+" or "" */
    const char *row_key;   /* a row of an index table: "rowid" or "ctid" */
    const char *alias;     /* after a subquery in FROM that needs no name: "" or " s" */
} sql_dialect_t;

extern const sql_dialect_t sql__sqlite;
extern const sql_dialect_t sql__postgres;

typedef enum { SQL_BIND_TEXT, SQL_BIND_INT, SQL_BIND_REAL } sql_bind_kind_t;

/* A bound value; text NULL with kind SQL_BIND_TEXT is SQL NULL. */
typedef struct {
    sql_bind_kind_t kind;
    const char *text;
    int64_t i;
    double d;
} sql_bind_t;

/* A statement: its text and its binds in order (borrowed from the search's arena). */
typedef struct {
    const char *sql;
    const sql_bind_t *binds;
    size_t nbinds;
    /* one of a few shapes run again and again (the worklist's reads): PostgreSQL's driver
       prepares it once per connection instead of planning it at each run (SQLite's driver
       prepares every statement once) */
    bool prepare;
} sql_stmt_t;

/* A result row, as the driver that ran the statement knows it. */
typedef struct sql_row sql_row_t;

/* Called for each row of a statement; false stops reading. */
typedef bool (*sql_row_fn)(void *ctx, const sql_row_t *row);

/* How a driver runs the search's statements. */
typedef struct sql_driver {
    const sql_dialect_t *dialect;
    void *conn;
    /* Runs stmt, calling row for each row until it returns false; doing names the step for
     * errors ("search", "search total", ...). */
    status_t (*run)(void *conn, const sql_stmt_t *stmt, const char *doing, sql_row_fn row,
                    void *ctx, err_t *err);
    int64_t (*int_at)(const sql_row_t *row, int column);
    /* A copy in arena (NULL for NULL). */
    const char *(*text_at)(const sql_row_t *row, int column, arena_t *arena, size_t *out_len);
    /* The value as its type says: integer, real, text (copied in arena) or NULL. */
    void (*value_at)(const sql_row_t *row, int column, arena_t *arena, sql_bind_t *out);
    /* Current resources of a type (every type: NULL), counted up to cap: an estimate. */
    status_t (*type_rows)(void *conn, const fhir_type_t *type, int64_t cap, int64_t *out,
                          err_t *err);
} sql_driver_t;

/* A search on the driver's connection, in whatever transaction the caller holds. */
status_t sql__search(const sql_driver_t *driver, const store_search_t *query, arena_t *arena,
                     store_search_result_t *out, err_t *err);

/*
 * The condition that the row `alias` of `resource` is visible as v says (store.h), for a
 * driver's own statement: placeholders numbered from `first` (?N or $N::jsonb), whose values
 * (JSON arrays of strings) are binds[0..SQL_VISIBLE_BINDS), in arena.
 */
#define SQL_VISIBLE_BINDS 6
void sql__visible(const sql_dialect_t *d, const store_visibility_t *v, const char *alias, int first,
                  arena_t *arena, buf_t *sql, const char *binds[SQL_VISIBLE_BINDS]);

/* The page query of a search (its first page) in a dialect, for EXPLAIN in tests. */
void sql__search_page(const sql_dialect_t *dialect, const store_search_t *query, arena_t *arena,
                      sql_stmt_t *out);

/* The great-circle distance in kilometres between two positions in degrees (near). */
double sql__great_circle_km(double lat1, double lon1, double lat2, double lon2);

/* Whether a sorted search may walk the index of its first sort key (true; tests turn it off
 * to compare). */
extern bool sql__search_walks;
/* Whether the bounds of a date parameter with at most one value per resource are tested on
 * one index row (true; tests turn it off to compare with each clause written apart). */
extern bool sql__search_merges_dates;

#endif
