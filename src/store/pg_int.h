/*
 * pg_int.h - what the files of the PostgreSQL driver share: the connection with its prepared
 * statements, parameters as text, error translation. Only src/store/pg*.c include it.
 *
 * Every value travels as text (libpq's text format): integers and doubles are formatted here
 * and parsed back from results, so no binary layouts cross the wire. A connection prepares
 * each fixed statement once (named "s<number>") and again after a reconnect.
 */
#ifndef CONCERTO_STORE_PG_INT_H
#define CONCERTO_STORE_PG_INT_H

#include <libpq-fe.h>

#include "store/store_int.h"

typedef struct pg_db pg_db_t;

enum {
    PG_READ_CURRENT,
    PG_READ_VERSION,
    PG_CURRENT,
    PG_INSERT_VERSION,
    PG_UPSERT_CURRENT,
    PG_COUNT_TYPE,
    PG_COUNT_ALL,
    PG_RID,
    PG_SCAN,
    PG_SCAN_TYPE,
    PG_CONTAINED_LIST,
    PG_CONTAINED_INSERT,
    PG_DELETE_TEXT,
    PG_INSERT_TEXT,
    /* one insert and one delete per index table, in fhir_index_kind_t order */
    PG_INSERT_INDEX,
    PG_DELETE_INDEX = PG_INSERT_INDEX + FHIR_INDEX_KIND_COUNT,
    /* the delete of the rows of a container's contained resources, one per index table */
    PG_DELETE_CONTAINED_INDEX = PG_DELETE_INDEX + FHIR_INDEX_KIND_COUNT,
    PG_DELETE_CONTAINED_REFS = PG_DELETE_CONTAINED_INDEX + FHIR_INDEX_KIND_COUNT,
    PG_DELETE_CONTAINED,
    /* the insert of several rows of one kind, in fhir_index_kind_t order */
    PG_BATCH_INDEX,
    /* the same for the rows of several resources (a load: rid and type per row), and their
       full text */
    PG_LOAD_INDEX = PG_BATCH_INDEX + FHIR_INDEX_KIND_COUNT,
    PG_LOAD_TEXT = PG_LOAD_INDEX + FHIR_INDEX_KIND_COUNT,
    /* the work rows of a Task, a RiskAssessment, a CareTeam: each written in one statement
       (pg.c, write_work) */
    PG_TASK_WORK_WRITE,
    PG_TASK_WORK_CLEAR,
    PG_RISK_WRITE,
    PG_RISK_CLEAR,
    PG_CARE_WRITE,
    /* the statements of pg_queue.c, which passes their SQL itself (pg__run_named) */
    PG_QUEUE,
    /* the statements of sql_auth.c (pg_auth.c) */
    PG_AUTH = PG_QUEUE + 24,
    PG__COUNT = PG_AUTH + STORE_AUTH_STATEMENTS
};

#define PG_TYPE_COUNTS 8

/* Statements of the shared SQL marked to prepare (sql_stmt_t.prepare), prepared once per
 * connection by their text, as "p0", "p1"...; one more is run unprepared. */
#define PG_SHAPES 32

/* How many current resources a type has, as a search last counted them (an estimate). */
typedef struct {
    char type[64]; /* "": every type */
    int64_t count;
    int64_t at; /* seconds of the monotonic clock; 0: never */
} pg_type_count_t;

typedef struct {
    pg_db_t *db;
    PGconn *pg;
    bool writer;
    bool in_txn; /* between begin and commit or rollback */
    bool prepared[PG__COUNT];
    pg_type_count_t type_counts[PG_TYPE_COUNTS]; /* pg_search.c */
    char *shapes[PG_SHAPES];                     /* the SQL of each prepared shape */
    int nshapes;
} pg_conn_t;

/* Up to PG_MAX_PARAMS parameters of one statement, as text (NULL: SQL NULL). */
#define PG_MAX_PARAMS 20

typedef struct {
    const char *values[PG_MAX_PARAMS];
    char numbers[PG_MAX_PARAMS][32];
    int n;
} pg_params_t;

void pg__text(pg_params_t *p, const char *s);
void pg__int(pg_params_t *p, int64_t i);
void pg__double(pg_params_t *p, double d);

/*
 * Translates a failed result (res may be NULL when the connection failed) into a status with
 * a message; PostgreSQL's own text goes to the log-only detail. Connection loss, shutdown,
 * serialization failures and deadlocks are ERR_UNAVAILABLE (retry later); the rest
 * ERR_STORAGE.
 */
status_t pg__fail(pg_conn_t *conn, PGresult *res, err_t *err, const char *doing);

/* The SQLSTATE of a failed result ("" when there is none). */
const char *pg__sqlstate(const PGresult *res);

/* The search driver (pg_search.c). */
status_t pg__search(void *conn, const store_search_t *query, arena_t *arena,
                    store_search_result_t *out, err_t *err);
status_t pg__txn_search(void *conn, const store_search_t *query, arena_t *arena,
                        store_search_result_t *out, err_t *err);

/* The connection as a runner of the SQL both drivers share (sql_search.h, sql_copy.h). */
void pg__sql_driver(void *conn, struct sql_driver *out);

/* A compartment's everything (pg_everything.c). */
status_t pg__everything(void *conn, const store_everything_t *query, arena_t *arena,
                        store_search_result_t *out, err_t *err);

/* The work queues (pg_queue.c): as the SQLite driver's (sqlite_queue.c). */
status_t pg__outbox_add(void *conn, const store_event_t *event, err_t *err);
status_t pg__outbox_claim(void *conn, const store_claim_t *claim, arena_t *arena,
                          store_event_t **out_events, size_t *out_n, err_t *err);
status_t pg__outbox_ack(void *conn, int64_t event_id, const char *consumer, err_t *err);
status_t pg__outbox_fail(void *conn, int64_t event_id, const store_failure_t *failure,
                         bool *out_dead, err_t *err);
status_t pg__outbox_replay(void *conn, int64_t event_id, int64_t now_us, err_t *err);
status_t pg__outbox_dead(void *conn, int64_t after_event_id, size_t count, arena_t *arena,
                         store_event_t **out_events, size_t *out_n, err_t *err);
status_t pg__outbox_counts(void *conn, int64_t *out_pending, int64_t *out_dead, err_t *err);
status_t pg__outbox_claimed(void *conn, int64_t now_us, int64_t *out_claimed, err_t *err);
status_t pg__outbox_replay_all(void *conn, int64_t now_us, int64_t *out_n, err_t *err);
status_t pg__job_schedule(void *conn, const char *kind, const char *key, int64_t run_at_us,
                          const char *payload, int64_t *out_job_id, err_t *err);
status_t pg__job_cancel(void *conn, const char *kind, const char *key, err_t *err);
status_t pg__job_claim(void *conn, const store_claim_t *claim, arena_t *arena,
                       store_job_t **out_jobs, size_t *out_n, err_t *err);
status_t pg__job_complete(void *conn, const store_job_t *job, const char *consumer,
                          int64_t next_run_us, const char *next_payload, err_t *err);
status_t pg__job_fail(void *conn, const store_job_t *job, const store_failure_t *failure,
                      bool *out_dead, err_t *err);
status_t pg__job_replay(void *conn, int64_t job_id, int64_t now_us, err_t *err);
status_t pg__job_list(void *conn, const store_job_query_t *query, arena_t *arena,
                      store_job_t **out_jobs, size_t *out_n, err_t *err);
status_t pg__lease_acquire(void *conn, const char *name, const char *holder, int64_t until_us,
                           int64_t now_us, bool *out_held, err_t *err);
status_t pg__lease_renew(void *conn, const char *name, const char *holder, int64_t until_us,
                         int64_t now_us, bool *out_held, err_t *err);
status_t pg__lease_release(void *conn, const char *name, const char *holder, err_t *err);

/* The statements of the accounts, clients and tokens (pg_auth.c); see store_driver_t. */
status_t pg__run_auth(void *conn, int which, const char *sql, const store__value_t *params,
                      size_t nparams, arena_t *arena, store__rows_t *out, err_t *err);

/*
 * Runs the fixed statement `which` with params; *out is the result (PGresult to PQclear) when
 * it succeeded. Reconnects first when the connection was lost outside a transaction.
 */
status_t pg__run(pg_conn_t *conn, int which, const pg_params_t *params, PGresult **out, err_t *err);

/* Runs sql as the prepared statement `which` (PG_QUEUE + n: prepared once per connection from
 * this sql); as pg__run. */
status_t pg__run_named(pg_conn_t *conn, int which, const char *sql, const pg_params_t *params,
                       PGresult **out, err_t *err);

/* The number of rows a statement changed (of its command status). */
int64_t pg__changes(const PGresult *res);

/* Runs sql (not prepared) with params; as pg__run. */
status_t pg__run_sql(pg_conn_t *conn, const char *sql, const pg_params_t *params, PGresult **out,
                     err_t *err);

/* Runs sql (not prepared) with any number of parameters as text (NULL: SQL NULL); as
 * pg__run. */
/* pg__run_named with any number of parameters as text (NULL: SQL NULL): for statements with
 * more than PG_MAX_PARAMS (an insert of several rows). */
status_t pg__run_named_values(pg_conn_t *conn, int which, const char *sql, int n,
                              const char *const *values, PGresult **out, err_t *err);
status_t pg__run_values(pg_conn_t *conn, const char *sql, int n, const char *const *values,
                        PGresult **out, err_t *err);
/* pg__run_values, the statement prepared once per connection by its text (the first
 * PG_SHAPES texts; the others run unprepared). */
status_t pg__run_shape(pg_conn_t *conn, const char *sql, int n, const char *const *values,
                       PGresult **out, err_t *err);

/* Column values of a result row: text copied into arena (NULL for NULL), integers, booleans. */
const char *pg__text_at(const PGresult *res, int row, int column, arena_t *arena, size_t *out_len);
int64_t pg__int_at(const PGresult *res, int row, int column);

#endif
