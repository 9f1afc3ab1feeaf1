/*
 * sqlite_int.h - what the files of the SQLite driver share: the connection with its cached
 * statements, error translation, and the search entry point (sqlite_search.c). Only
 * src/store/sqlite*.c include it.
 *
 * A connection caches the fixed statements by number and the statements a search builds by
 * their text (a small cache: searches of one shape reuse their statement). Every statement
 * is reset and its bindings cleared before a function returns.
 */
#ifndef CONCERTO_STORE_SQLITE_INT_H
#define CONCERTO_STORE_SQLITE_INT_H

#include <sqlite3.h>

#include "store/store_int.h"

enum {
    STMT_READ_CURRENT,
    STMT_READ_VERSION,
    STMT_CURRENT,
    STMT_INSERT_VERSION,
    STMT_UPSERT_CURRENT,
    STMT_COUNT_TYPE,
    STMT_COUNT_ALL,
    STMT_RID,
    STMT_SCAN,
    STMT_CONTAINED_LIST,   /* the contained resources of a container */
    STMT_CONTAINED_DELETE, /* ... and their removal */
    STMT_CONTAINED_INSERT,
    STMT_SCAN_TYPE,
    /* the writer's transaction control, prepared once rather than parsed at every use */
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_SAVEPOINT,
    STMT_RELEASE,
    STMT_ROLLBACK_TO,
    /* per index table, in fhir_index_kind_t order: insert a row, delete a resource's rows;
       and for an update, the resource's rows equal to one given, all its rows, one row */
    STMT_INSERT_INDEX,
    STMT_DELETE_INDEX = STMT_INSERT_INDEX + FHIR_INDEX_KIND_COUNT,
    STMT_MATCH_INDEX = STMT_DELETE_INDEX + FHIR_INDEX_KIND_COUNT,
    STMT_LIST_INDEX = STMT_MATCH_INDEX + FHIR_INDEX_KIND_COUNT,
    STMT_DROP_INDEX_ROW = STMT_LIST_INDEX + FHIR_INDEX_KIND_COUNT,
    STMT__COUNT = STMT_DROP_INDEX_ROW + FHIR_INDEX_KIND_COUNT
};

#define SQLITE_CACHED_STATEMENTS 32

typedef struct {
    char *sql; /* NULL: free slot */
    sqlite3_stmt *stmt;
    uint64_t used;
} sqlite_cached_t;

/* The statements of the queues (sqlite_queue.c), prepared on first use. */
#define SQLITE_QUEUE_STATEMENTS 24

#define SQLITE_TYPE_COUNTS 8

/* How many current resources a type has, as a search last counted them (an estimate). */
typedef struct {
    char type[64]; /* "": every type */
    int64_t count;
    int64_t at; /* seconds of the monotonic clock; 0: never */
} sqlite_type_count_t;

/* A change of the full text (ix_text) that waits for the end of its transaction
 * (sqlite_text.c): rid's old text goes unless is_new, its words (sql_text.h, joined; NULL:
 * none) come. */
typedef struct {
    int64_t rid;
    bool is_new;
    char *content, *narrative;
    size_t level;      /* the savepoint it belongs to: 0 the transaction, 1 the first, ... */
    size_t written_at; /* (flushed) the savepoint it was written in */
} sqlite_text_op_t;

typedef struct {
    sqlite_text_op_t *ops; /* waiting, in the order made */
    size_t n, cap;
    /* written before the transaction's end, inside a savepoint that belongs to a level
       deeper than theirs: they wait again if it is rolled back */
    sqlite_text_op_t *flushed;
    size_t nflushed, flushed_cap;
    size_t depth; /* savepoints open */
} sqlite_text_log_t;

typedef struct {
    sqlite3 *handle;
    sqlite3_stmt *statements[STMT__COUNT];
    bool writer;
    bool full_sync;   /* synchronous=FULL is the connection's setting */
    bool relaxed_now; /* synchronous=NORMAL for the transaction that is open (begin_relaxed) */
    /* the writer's, with synchronous=FULL asked for: its commits write the WAL without
       syncing it and sync_commits syncs this descriptor of the WAL (-1: the commits sync) */
    int wal_fd;
    sqlite_text_log_t text; /* the writer's full text, written at the commit */
    sqlite_cached_t cache[SQLITE_CACHED_STATEMENTS];
    uint64_t clock;
    sqlite_type_count_t type_counts[SQLITE_TYPE_COUNTS];
    sqlite3_stmt *queue_statements[SQLITE_QUEUE_STATEMENTS];
    sqlite3_stmt *auth_statements[STORE_AUTH_STATEMENTS]; /* sqlite_auth.c */
    /* per statement of sqlite_auth.c: its parameters are $1, $2, ... in this order, so they
       are bound by position (a lookup by name is a walk of the list) */
    bool auth_positional[STORE_AUTH_STATEMENTS];
} sqlite_conn_t;

/* sqlite_text.c: the full text of rid is to be the words of content and narrative (NULL:
 * none; fhir_index_rows_t's); in the writer's transaction, written by sqlite__text_commit
 * (or before a statement of it reads ix_text: sqlite__text_flush_open), else at once. The
 * savepoint functions follow the writer's savepoints; sqlite__text_clear its rollback. */
status_t sqlite__text_write(sqlite_conn_t *conn, int64_t rid, bool is_new, const char *content,
                            const char *narrative, err_t *err);
void sqlite__text_savepoint(sqlite_conn_t *conn);
void sqlite__text_release(sqlite_conn_t *conn);
void sqlite__text_rollback_to(sqlite_conn_t *conn);
status_t sqlite__text_commit(sqlite_conn_t *conn, err_t *err);
status_t sqlite__text_flush_open(sqlite_conn_t *conn, err_t *err);
void sqlite__text_clear(sqlite_conn_t *conn);
void sqlite__text_free(sqlite_conn_t *conn);

/* Translates an SQLite result code into a status with a message, the driver text logged. */
status_t sqlite__fail(sqlite3 *handle, int code, err_t *err, const char *doing);

/* A statement for sql from the connection's cache (prepared on a miss, the least recently
 * used one finalized when the cache is full). Reset it before returning. */
status_t sqlite__prepare_cached(sqlite_conn_t *conn, const char *sql, sqlite3_stmt **out,
                                err_t *err);

/* A copy of column `column` as text in arena (NULL for NULL); *out_len its length. */
const char *sqlite__column_text(sqlite3_stmt *stmt, int column, arena_t *arena, size_t *out_len);

/* The search driver (sqlite_search.c). */
status_t sqlite__search(void *conn, const store_search_t *query, arena_t *arena,
                        store_search_result_t *out, err_t *err);
/* The same on the writer's connection, inside its open transaction (no BEGIN of its own). */
status_t sqlite__txn_search(void *conn, const store_search_t *query, arena_t *arena,
                            store_search_result_t *out, err_t *err);

/* The switches of the search SQL both drivers share (sql_search.h), by their former names. */
#define sqlite__search_walks        sql__search_walks
#define sqlite__search_merges_dates sql__search_merges_dates
extern bool sql__search_walks;
extern bool sql__search_merges_dates;

/* The connection as a runner of the SQL both drivers share (sql_search.h, sql_copy.h). */
void sqlite__sql_driver(void *conn, struct sql_driver *out);

/* store_everything (sqlite_everything.c). */
status_t sqlite__everything(void *conn, const store_everything_t *query, arena_t *arena,
                            store_search_result_t *out, err_t *err);

/* The text of the page query of a search (its first page), for EXPLAIN in tests. */
status_t sqlite__search_sql(const store_search_t *query, arena_t *arena, const char **out_sql);

/* The queues: outbox, jobs, leases (sqlite_queue.c); see store_driver_t. */
status_t sqlite__outbox_add(void *conn, const store_event_t *event, err_t *err);
status_t sqlite__outbox_claim(void *conn, const store_claim_t *claim, arena_t *arena,
                              store_event_t **out_events, size_t *out_n, err_t *err);
status_t sqlite__outbox_ack(void *conn, int64_t event_id, const char *consumer, err_t *err);
status_t sqlite__outbox_fail(void *conn, int64_t event_id, const store_failure_t *failure,
                             bool *out_dead, err_t *err);
status_t sqlite__outbox_replay(void *conn, int64_t event_id, int64_t now_us, err_t *err);
status_t sqlite__outbox_dead(void *conn, int64_t after_event_id, size_t count, arena_t *arena,
                             store_event_t **out_events, size_t *out_n, err_t *err);
status_t sqlite__outbox_counts(void *conn, int64_t *out_pending, int64_t *out_dead, err_t *err);
status_t sqlite__outbox_claimed(void *conn, int64_t now_us, int64_t *out_claimed, err_t *err);
status_t sqlite__outbox_replay_all(void *conn, int64_t now_us, int64_t *out_n, err_t *err);
status_t sqlite__job_schedule(void *conn, const char *kind, const char *key, int64_t run_at_us,
                              const char *payload, int64_t *out_job_id, err_t *err);
status_t sqlite__job_cancel(void *conn, const char *kind, const char *key, err_t *err);
status_t sqlite__job_claim(void *conn, const store_claim_t *claim, arena_t *arena,
                           store_job_t **out_jobs, size_t *out_n, err_t *err);
status_t sqlite__job_complete(void *conn, const store_job_t *job, const char *consumer,
                              int64_t next_run_us, const char *next_payload, err_t *err);
status_t sqlite__job_fail(void *conn, const store_job_t *job, const store_failure_t *failure,
                          bool *out_dead, err_t *err);
status_t sqlite__job_replay(void *conn, int64_t job_id, int64_t now_us, err_t *err);
status_t sqlite__job_list(void *conn, const store_job_query_t *query, arena_t *arena,
                          store_job_t **out_jobs, size_t *out_n, err_t *err);
status_t sqlite__lease_acquire(void *conn, const char *name, const char *holder, int64_t until_us,
                               int64_t now_us, bool *out_held, err_t *err);
status_t sqlite__lease_renew(void *conn, const char *name, const char *holder, int64_t until_us,
                             int64_t now_us, bool *out_held, err_t *err);
status_t sqlite__lease_release(void *conn, const char *name, const char *holder, err_t *err);

/* The statements of the accounts, clients and tokens (sqlite_auth.c); see store_driver_t. */
status_t sqlite__run_auth(void *conn, int which, const char *sql, const store__value_t *params,
                          size_t nparams, arena_t *arena, store__rows_t *out, err_t *err);

/* The names of the index tables, in fhir_index_kind_t order ("ix_string", ...). */
extern const char *const sqlite__index_tables[FHIR_INDEX_KIND_COUNT];

/* Registers the SQL functions searches use on a new connection: concerto_distance(lat1,
 * lon1, lat2, lon2), the great-circle distance in kilometres (near). */
void sqlite__search_functions(sqlite3 *handle);

/* The name of the driver's file layer (sqlite_vfs.c) for sqlite3_open_v2, registered on first
 * use; NULL (SQLite's default) when it could not be. */
const char *sqlite__vfs(void);

#endif
