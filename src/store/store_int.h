/*
 * store_int.h - what a storage driver provides to store.c. Only files in src/store include it.
 *
 * A driver has database-wide state (`db`) and connections (`conn`), each used by one thread at a
 * time. store.c owns the writer thread and its queue and calls the transaction functions on the
 * writer's connection; the read functions run on each reader's connection. Drivers translate
 * their library's error codes into status_t here, at the edge, and put the driver's own text in
 * err's log-only detail.
 */
#ifndef CONCERTO_STORE_STORE_INT_H
#define CONCERTO_STORE_STORE_INT_H

#include "store/store.h"

struct sql_driver;

/* A parameter of a fixed statement: SQL NULL, an integer or text (borrowed). */
typedef enum { STORE__NULL, STORE__INT, STORE__TEXT } store__value_kind_t;
typedef struct {
    store__value_kind_t kind;
    int64_t integer;
    const char *text;
} store__value_t;

/* What a fixed statement returned: nrows rows of ncols cells, row by row, each a copy in the
 * caller's arena as text (integers in decimal) or NULL for SQL NULL; and the rows it changed. */
typedef struct {
    const char **cells;
    size_t nrows, ncols;
    int64_t changes;
} store__rows_t;

/* The statements of sql_auth.c (the accounts, clients and tokens), from STORE_SESSION_FIRST
 * on those of sql_session.c (browser sessions), from STORE_AUDIT_FIRST on those of
 * sql_audit.c (the audit trail), from STORE_HL7_FIRST on those of sql_hl7.c (the HL7
 * messages) and from STORE_SERVER_KEY_FIRST on those of sql_server_key.c (the server's keys),
 * all run by run_auth. */
#define STORE_AUTH_STATEMENTS  88
#define STORE_SESSION_FIRST    44
#define STORE_AUDIT_FIRST      60
#define STORE_HL7_FIRST        72
#define STORE_SERVER_KEY_FIRST 84

typedef struct {
    const char *name;
    /* Several connections may each run a write transaction at once (store_run_on); false:
       the writer's connection is the only one that writes (SQLite) */
    bool concurrent_writers;
    status_t (*open)(const char *location, const store_options_t *options, void **out_db,
                     err_t *err);
    void (*close)(void *db);
    /* Applies pending migrations; *out_version is the schema version afterwards. */
    status_t (*migrate)(void *db, int *out_version, err_t *err);
    status_t (*connect)(void *db, bool writer, void **out_conn, err_t *err);
    void (*disconnect)(void *conn);
    /* Readies a reader's connection that its user is done with to wait for the next one
       (store_disconnect keeps a few): false when it cannot serve again as it is (not
       connected, a transaction left open); else it gives back the memory it caches. */
    bool (*park)(void *conn);
    /* A reader's connection to the read replica of options->replica (disconnect as any);
       NULL in a driver that cannot have one (store_open then refuses options->replica). */
    status_t (*connect_replica)(void *db, void **out_conn, err_t *err);
    /* How far the replica of a connect_replica connection is behind its primary, in
       microseconds: 0 when it has replayed all it received from a primary it streams from, or
       when it is no standby at all; INT64_MAX when it cannot tell. */
    status_t (*replica_lag)(void *conn, int64_t *out_lag_us, err_t *err);

    status_t (*read)(void *conn, const char *type, const char *id, int64_t version, arena_t *arena,
                     store_version_t *out, err_t *err);
    status_t (*history)(void *conn, const store_history_query_t *query, arena_t *arena,
                        store_history_t *out, err_t *err);
    status_t (*count)(void *conn, const char *type, int64_t *out, err_t *err);

    /* Transaction control on the writer connection. */
    status_t (*begin)(void *conn, err_t *err);
    /* A transaction whose commit need not reach the disk before it returns: it does with the
       next durable commit (NULL: begin). */
    status_t (*begin_relaxed)(void *conn, err_t *err);
    status_t (*commit)(void *conn, err_t *err);
    /* Makes every commit of the writer's connection conn so far durable, when its commits
       leave that to it (they return before the disk has them); false when they sync
       themselves, or in a driver that never defers it (NULL). Called on a thread of its own
       while the writer goes on with the next transaction. */
    bool (*defers_sync)(void *conn);
    status_t (*sync_commits)(void *conn, err_t *err);
    void (*rollback)(void *conn);
    status_t (*savepoint)(void *conn, err_t *err);
    status_t (*release)(void *conn, err_t *err);
    void (*rollback_to)(void *conn);

    status_t (*current)(void *conn, const char *type, const char *id, store_current_t *out,
                        err_t *err);
    status_t (*put)(void *conn, const store_put_t *put, int64_t updated_us,
                    const char *last_updated, int64_t *out_seq, err_t *err);
    status_t (*reindex)(void *conn, const char *type, const char *id, const fhir_index_rows_t *rows,
                        err_t *err);

    status_t (*scan)(void *conn, const char *type, int64_t after_rid, size_t count, arena_t *arena,
                     store_scan_row_t **out_rows, size_t *out_n, err_t *err);
    status_t (*search)(void *conn, const store_search_t *query, arena_t *arena,
                       store_search_result_t *out, err_t *err);
    /* search on the writer's connection inside the open transaction: no transaction of its
       own, and it sees what the transaction has written */
    status_t (*txn_search)(void *conn, const store_search_t *query, arena_t *arena,
                           store_search_result_t *out, err_t *err);
    status_t (*everything)(void *conn, const store_everything_t *query, arena_t *arena,
                           store_search_result_t *out, err_t *err);
    /* The queues: writes on the writer's connection inside the open transaction, reads
       (outbox_dead, outbox_counts, job_list) on a reader's. outbox_add is called by
       store_txn_put for every version, right after put. */
    status_t (*outbox_add)(void *conn, const store_event_t *event, err_t *err);
    status_t (*outbox_claim)(void *conn, const store_claim_t *claim, arena_t *arena,
                             store_event_t **out_events, size_t *out_n, err_t *err);
    status_t (*outbox_ack)(void *conn, int64_t event_id, const char *consumer, err_t *err);
    status_t (*outbox_fail)(void *conn, int64_t event_id, const store_failure_t *failure,
                            bool *out_dead, err_t *err);
    status_t (*outbox_replay)(void *conn, int64_t event_id, int64_t now_us, err_t *err);
    status_t (*outbox_dead)(void *conn, int64_t after_event_id, size_t count, arena_t *arena,
                            store_event_t **out_events, size_t *out_n, err_t *err);
    status_t (*outbox_counts)(void *conn, int64_t *out_pending, int64_t *out_dead, err_t *err);
    status_t (*outbox_claimed)(void *conn, int64_t now_us, int64_t *out_claimed, err_t *err);
    status_t (*outbox_replay_all)(void *conn, int64_t now_us, int64_t *out_n, err_t *err);
    status_t (*job_schedule)(void *conn, const char *kind, const char *key, int64_t run_at_us,
                             const char *payload, int64_t *out_job_id, err_t *err);
    status_t (*job_cancel)(void *conn, const char *kind, const char *key, err_t *err);
    status_t (*job_claim)(void *conn, const store_claim_t *claim, arena_t *arena,
                          store_job_t **out_jobs, size_t *out_n, err_t *err);
    status_t (*job_complete)(void *conn, const store_job_t *job, const char *consumer,
                             int64_t next_run_us, const char *next_payload, err_t *err);
    status_t (*job_fail)(void *conn, const store_job_t *job, const store_failure_t *failure,
                         bool *out_dead, err_t *err);
    status_t (*job_replay)(void *conn, int64_t job_id, int64_t now_us, err_t *err);
    status_t (*job_list)(void *conn, const store_job_query_t *query, arena_t *arena,
                         store_job_t **out_jobs, size_t *out_n, err_t *err);
    /* Singleton leases, on the writer's connection inside the open transaction (a driver
       with session locks may keep them on a connection of its own instead). */
    status_t (*lease_acquire)(void *conn, const char *name, const char *holder, int64_t until_us,
                              int64_t now_us, bool *out_held, err_t *err);
    status_t (*lease_renew)(void *conn, const char *name, const char *holder, int64_t until_us,
                            int64_t now_us, bool *out_held, err_t *err);
    status_t (*lease_release)(void *conn, const char *name, const char *holder, err_t *err);

    status_t (*defer_indexes)(void *conn, err_t *err);
    status_t (*analyze)(void *conn, err_t *err);
    /* store_txn_lock; NULL where the writer is alone anyway (SQLite) */
    status_t (*lock)(void *conn, const char *key, err_t *err);

    /* Copying a database: see store.h. The scans and loads whose SQL both drivers share are
       sql_copy.c's, run on the connection as `sql` describes it; the rest differs. */
    status_t (*check_unused)(const char *location, err_t *err);
    status_t (*snapshot_begin)(void *conn, bool lock_writers, err_t *err);
    void (*snapshot_end)(void *conn);
    /* The connection as a runner of the SQL both drivers share (sql_search.h). */
    void (*sql)(void *conn, struct sql_driver *out);
    /* Writes the index rows, full text and contained resources of the current versions among
       versions[0..n) that are not deletes (their rid, their index), resources that have none
       yet (a load), on the writer's connection inside the open transaction. */
    status_t (*load_index)(void *conn, const store_copy_version_t *versions, size_t n, err_t *err);
    status_t (*last_keys)(void *conn, store_keys_t *out, err_t *err);
    status_t (*load_keys)(void *conn, const store_keys_t *keys, err_t *err);

    /* Runs the fixed statement `which` (< STORE_AUTH_STATEMENTS) of sql_auth.c, whose text is
       sql, with params, on a reader's connection or on the writer's inside its transaction;
       prepared once per connection. */
    status_t (*run_auth)(void *conn, int which, const char *sql, const store__value_t *params,
                         size_t nparams, arena_t *arena, store__rows_t *out, err_t *err);
} store_driver_t;

/* ---- the fixed statements of sql_auth.c, sql_session.c and sql_audit.c (sql_fixed.c) ---- */

/* A statement's text: the same on both drivers, or PostgreSQL's own (pg, else NULL). */
typedef struct {
    const char *sql;
    const char *pg;
} store__fixed_t;

/* Its parameters, $1 to $20. */
typedef struct {
    store__value_t values[20];
    size_t n;
} store__params_t;

/* Appends a text (NULL: SQL NULL) or an integer parameter. */
void store__p_text(store__params_t *p, const char *s);
void store__p_int(store__params_t *p, int64_t i);
/* Runs statement number `which` (< STORE_AUTH_STATEMENTS: its prepared slot) on a reader's
 * connection, or inside the transaction on the writer's. */
status_t store__fixed_conn(store_conn_t *conn, int which, const store__fixed_t *statement,
                           const store__params_t *p, arena_t *arena, store__rows_t *out,
                           err_t *err);
status_t store__fixed_txn(store_txn_t *txn, int which, const store__fixed_t *statement,
                          const store__params_t *p, arena_t *arena, store__rows_t *out, err_t *err);
/* One that returns no rows, in a transaction; *out_changes (may be NULL): rows changed. */
status_t store__fixed_write(store_txn_t *txn, int which, const store__fixed_t *statement,
                            const store__params_t *p, int64_t *out_changes, err_t *err);
/* A cell of the rows (NULL for SQL NULL), and one read as an integer (0 for NULL). */
const char *store__cell(const store__rows_t *rows, size_t row, size_t column);
int64_t store__cell_int(const store__rows_t *rows, size_t row, size_t column);

extern const store_driver_t store__sqlite_driver;
extern const store_driver_t store__pg_driver;

/* store_open with a given driver: for tests that wrap a driver to inject faults. */
status_t store__open_driver(const store_driver_t *driver, const char *location,
                            const store_options_t *options, store_t **out, err_t *err);

/* The driver and the driver's connection behind a reader's connection (its primary, for reads
 * that must see the latest writes) and behind a transaction: for the files of the store other
 * than store.c. */
void *store__conn_driver(store_conn_t *conn, const store_driver_t **out_driver);
void *store__txn_driver(store_txn_t *txn, const store_driver_t **out_driver);

/* The SQL of the accounts, clients and tokens (sql_auth.c): the migration that creates their
 * tables, the same in both drivers. */
extern const char sql__auth_schema[];
/* Migration 13: the nonce column of the token table. */
extern const char sql__auth_nonce_schema[];
/* Migration 14 (sql_search.c): a reindex of every type ("reindex" job, key "*") in a database
 * that holds resources, so that those stored before index rows marked resources linked to no
 * patient (FHIR_INDEX_UNLINKED) get the mark the access policy looks for. */
extern const char sql__unlinked_reindex_schema[];
/* The end of migration 15 of each driver (the Task work rows, sql_work.c): a reindex of Task
 * ("reindex" job, key "Task") in a database that holds Tasks, so that those stored before
 * get their work rows. */
#define SQL_TASK_WORK_REINDEX                                                        \
    "INSERT INTO job (kind, key, run_at_us, payload) SELECT 'reindex', 'Task', 0, "  \
    "'{\"why\":\"the work rows of Tasks, schema 15\"}' WHERE EXISTS (SELECT 1 FROM " \
    "resource WHERE type = 'Task') ON CONFLICT (kind, key) DO NOTHING;"
/* Migration 16 (both drivers) schedules a reindex of RiskAssessment and of CareTeam, so that
   those stored before get their risk rows and member rows (sql_work.c). */
#define SQL_RISK_WORK_REINDEX                                                                 \
    "INSERT INTO job (kind, key, run_at_us, payload) SELECT 'reindex', 'RiskAssessment', 0, " \
    "'{\"why\":\"the risk rows of RiskAssessments, schema 16\"}' WHERE EXISTS (SELECT 1 "     \
    "FROM resource WHERE type = 'RiskAssessment') ON CONFLICT (kind, key) DO NOTHING;"        \
    "INSERT INTO job (kind, key, run_at_us, payload) SELECT 'reindex', 'CareTeam', 0, "       \
    "'{\"why\":\"the member rows of CareTeams, schema 16\"}' WHERE EXISTS (SELECT 1 FROM "    \
    "resource WHERE type = 'CareTeam') ON CONFLICT (kind, key) DO NOTHING;"
/* The same for the browser sessions and authorization requests (sql_session.c). */
extern const char sql__session_schema[];
/* The audit trail's tables (sql_audit.c): migration 12 of each driver. */
extern const char sql__audit_schema_sqlite[];
extern const char sql__audit_schema_pg[];

/* The HL7 messages' table (sql_hl7.c): migration 17 of each driver. */
extern const char sql__hl7_schema_sqlite[];
extern const char sql__hl7_schema_pg[];

/* The server's keys' table (sql_server_key.c): migration 19 of each driver. */
extern const char sql__server_key_schema[];

/* Formats microseconds since the epoch as a FHIR instant with milliseconds, UTC ("Z"). */
void store__format_instant(int64_t us, char out[32]);

/* What both drivers pass to their $everything SQL: a JSON array of strings; the compartment's
 * (type, parameter) members as a JSON array of pairs; the key after which the page starts
 * (0: the first page), read from query->page ("r<key>"; ERR_INVALID when malformed). */
char *store__json_list(arena_t *arena, const char *const *items, size_t n);
char *store__everything_members(const store_everything_t *query, arena_t *arena);
status_t store__everything_cursor(const store_everything_t *query, int64_t *out_rid, err_t *err);

#endif
