/*
 * store.h - the one storage interface. Drivers (sqlite now, postgres next) sit behind a table
 * of functions; nothing above src/store sees SQL, a driver handle or a driver's error codes.
 *
 * Model: every version of every resource is kept (a delete is a version without content);
 * `resource` holds the current version of each (type, id). Each version has a global sequence
 * number `seq` that orders history and pages it stably while data changes.
 *
 * Reads go through a store_conn_t, one per thread. Writes are transactions: a caller hands the
 * store a function to run inside a transaction (store_submit, or store_run to wait for it).
 * The sqlite driver runs all writes on one writer thread and commits whatever has queued up
 * together, so concurrent commits share one fsync (group commit); each transaction runs in a
 * savepoint so a failing one rolls back alone.
 */
#ifndef CONCERTO_STORE_STORE_H
#define CONCERTO_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"
#include "fhir/index.h"
#include "fhir/search.h"

typedef struct store store_t;
typedef struct store_conn store_conn_t;
typedef struct store_txn store_txn_t;

typedef enum { STORE_SYNC_FULL, STORE_SYNC_NORMAL, STORE_SYNC_OFF } store_sync_t;

typedef struct {
    store_sync_t synchronous; /* STORE_SYNC_FULL by default: a 201 survives power loss */
    int busy_timeout_ms;      /* how long a reader waits for a lock */
    bool create;              /* create the database if it does not exist */
    /* PostgreSQL only: the URI of a hot standby of the database, from which the connections
       of store_connect_replica read (NULL: none); store_open refuses one on SQLite */
    const char *replica;
    /* when the replica is further behind than this, its connections read from the primary
       until it has caught up (0: no limit) */
    int64_t replica_max_lag_us;
} store_options_t;

void store_options_init(store_options_t *options);

/* True when location is a PostgreSQL connection URI (postgresql:// or postgres://). */
bool store_location_is_postgres(const char *location);

/*
 * Opens the database named by `location` (a file path for sqlite, a postgresql:// URI for
 * PostgreSQL) and brings its schema to the
 * current version (migrations run in one transaction). Starts the writer. *out is new; close
 * it with store_close, which finishes queued writes first.
 */
status_t store_open(const char *location, const store_options_t *options, store_t **out,
                    err_t *err);
void store_close(store_t *store);
/* The schema version the database is at. */
int store_schema_version(store_t *store);
/* A short name of the driver ("sqlite") and its location, for logs and /healthz. */
const char *store_driver_name(const store_t *store);

/* ---- reading ------------------------------------------------------------------------- */

/* A connection for reads; one per thread, not shared. */
status_t store_connect(store_t *store, store_conn_t **out, err_t *err);
void store_disconnect(store_conn_t *conn);

/*
 * A connection for reads that may lag the primary by the replica's delay: searches, history,
 * $everything, counts. Its store_read, store_history, store_count, store_scan, store_search
 * and store_everything run on the store's read replica (store_options_t.replica) while the
 * replica can be reached and is no more than replica_max_lag_us behind (looked at once a
 * second at most), and on `primary` otherwise: when a read fails on the replica (it cannot be
 * reached, or reports an error) the same read runs on `primary` at once, so a replica that is
 * down never fails a read; a warning is logged once when the replica goes out of use and a
 * note when it comes back. The work queues' reads (store_outbox_*, store_job_list) always run
 * on `primary`. Without a replica every read runs on `primary`. `primary` is borrowed, a
 * connection of the same thread: disconnect *out before it. The replica being unreachable at
 * the time is not an error: the connection reads from `primary` until it is back.
 */
status_t store_connect_replica(store_conn_t *primary, store_conn_t **out, err_t *err);
/* The store a connection belongs to (borrowed). */
store_t *store_conn_store(store_conn_t *conn);
/* The connection reads that must see the latest writes use: `primary` of a connection of
 * store_connect_replica, conn itself otherwise. Borrowed. */
store_conn_t *store_conn_primary(store_conn_t *conn);

typedef struct {
    const char *type;
    const char *id;
    int64_t version;          /* 1, 2, ... */
    int64_t seq;              /* global order of versions */
    int64_t updated_us;       /* lastUpdated in microseconds since the epoch */
    const char *last_updated; /* lastUpdated as a FHIR instant */
    const char *method;       /* "POST", "PUT", "DELETE" (how the version was made) */
    int status;               /* the HTTP status the write answered: 201, 200 or 204 */
    bool deleted;             /* a delete: json is NULL */
    const char *json;         /* the stored resource, meta included; NULL for a delete */
    size_t json_len;
    /* who wrote it (store_put_t.author), or NULL (none recorded, written before migration 18);
       set by store_read, store_txn_read and store_history; NULL elsewhere (searches and batch
       reads, whose stored JSON carries it in meta anyway) */
    const char *author;
} store_version_t;

/*
 * Reads the current version (version == 0) or a given version of type/id into *out; strings
 * are copied into `arena`. ERR_NOT_FOUND when there is no such resource or version. A deleted
 * current version is returned with out->deleted set (the caller decides on 410).
 */
status_t store_read(store_conn_t *conn, const char *type, const char *id, int64_t version,
                    arena_t *arena, store_version_t *out, err_t *err);

/*
 * What a caller may see (the access policy of src/repo decides it; docs/security.md, "Access
 * policy"). A search, a history or an everything given one returns only the resources it
 * allows, in its SQL, so that pages, counts and totals hold only those:
 *  - a resource of a type outside `types` (when types_limited) is never visible;
 *  - a resource of a type in open_types is visible;
 *  - a Patient is visible when its id is in `patients`;
 *  - a resource of a patient-linked type (one of member_types) is visible when one of its
 *    references through the parameter member_params[i] of its type names a Patient of
 *    `patients` (by type and id, or by this server's absolute url under `base`), or, with
 *    `unlinked`, when none of them names any Patient at all;
 *  - a resource of any other type (shared: Practitioner, Organization, ...) is visible.
 * Membership is read from the search index rows of the current version: a deleted resource
 * of a patient-linked type is visible to no restricted caller (its history neither).
 */
typedef struct {
    const char *const *types; /* the types the caller may read, when types_limited */
    size_t ntypes;
    bool types_limited;
    const char *const *open_types; /* types visible whole */
    size_t nopen_types;
    const char *const *patients; /* the visible Patients (ids) */
    size_t npatients;
    const char *const *member_types; /* (type, reference parameter) pairs: patient-linked */
    const char *const *member_params;
    size_t nmembers;
    bool unlinked;    /* a patient-linked resource that refers to no Patient is visible */
    const char *base; /* the server's base url (absolute references to itself), or NULL */
} store_visibility_t;

typedef struct {
    const char *type;   /* NULL: every type (system history) */
    const char *id;     /* NULL: every resource of the type */
    int64_t since_us;   /* INT64_MIN: no lower bound */
    int64_t before_seq; /* page older than this seq (exclusive); INT64_MAX: from the newest */
    int64_t after_seq;  /* page newer than this seq (exclusive); 0: not used */
    size_t count;       /* page size */
    bool want_total;    /* also count all matching versions */
    /* only versions of resources it makes visible (their current version decides), NULL:
       every version */
    const store_visibility_t *visibility;
} store_history_query_t;

typedef struct {
    store_version_t *versions; /* newest first */
    size_t n;
    bool more_older; /* there are versions older than the last one returned */
    bool more_newer; /* there are versions newer than the first one returned */
    int64_t total;   /* -1 unless want_total */
} store_history_t;

status_t store_history(store_conn_t *conn, const store_history_query_t *query, arena_t *arena,
                       store_history_t *out, err_t *err);

/* Number of current, non-deleted resources of a type (NULL: all). */
status_t store_count(store_conn_t *conn, const char *type, int64_t *out, err_t *err);

/* ---- writing ------------------------------------------------------------------------- */

/*
 * A unit of work run inside a transaction, on the store's writer. It must not block or wait
 * for anything outside the store. Returning non-zero rolls back what it wrote (and only that).
 */
typedef status_t (*store_txn_fn)(store_txn_t *txn, void *arg, err_t *err);
/*
 * Called once the transaction is durable (rc 0) or rolled back (rc and err say why). Runs on
 * the writer thread: hand the result to your own thread and return quickly. err is borrowed
 * for the call; move what you need out of it (err_move).
 */
typedef void (*store_done_fn)(void *arg, status_t rc, err_t *err);

/*
 * Queues fn(txn, fn_arg) to run in a transaction and returns at once; done(done_arg, ...)
 * follows. After store_close has begun, done is called at once with ERR_UNAVAILABLE.
 */
void store_submit(store_t *store, store_txn_fn fn, void *fn_arg, store_done_fn done,
                  void *done_arg);
/* Runs fn in a transaction and waits until it is durable or rolled back. */
status_t store_run(store_t *store, store_txn_fn fn, void *arg, err_t *err);
/*
 * store_run for records that may wait for their durability (the audit trail's reads): waits
 * until the transaction is committed or rolled back, but when it commits in a batch of such
 * transactions alone (none of store_run or store_submit), the commit does not wait for the
 * disk. It survives a crash of the process, and a crash of the machine once any later
 * durable commit has returned: such a commit makes every earlier one durable (SQLite: the
 * WAL synced up to it; PostgreSQL: synchronous_commit off for the transaction, the WAL
 * flushed up to it). Where the store is not synchronous=full anyway, the same as store_run.
 */
status_t store_run_relaxed(store_t *store, store_txn_fn fn, void *arg, err_t *err);

/*
 * store_run (relaxed: store_run_relaxed) on conn itself rather than on the store's writer,
 * where the driver lets several connections write at once (PostgreSQL): a transaction of its
 * own, committed on its own, concurrently with the writer's and with other callers'. For a
 * thread with a connection of its own and many small transactions to run in parallel with
 * others (the HL7 feed's workers). Where one connection writes (SQLite), the same as
 * store_run. Its commit hooks run on the caller's thread after the commit. conn must not be
 * in use elsewhere meanwhile; a replica connection writes on its primary.
 */
status_t store_run_on(store_conn_t *conn, store_txn_fn fn, void *arg, bool relaxed, err_t *err);

/* The time of this transaction: every version it writes gets it as lastUpdated. */
int64_t store_txn_time_us(store_txn_t *txn);
/* The same time as a FHIR instant, e.g. "2026-11-22T15:04:05.123Z" (borrowed from txn). */
const char *store_txn_time_text(store_txn_t *txn);

typedef struct {
    int64_t version; /* 0 when the resource has never existed */
    bool deleted;
} store_current_t;

/*
 * Runs fn(txn, arg) in a nested savepoint: when it fails, only what it wrote is rolled back
 * and the enclosing transaction goes on (a batch's entries). Returns fn's status.
 */
status_t store_txn_nested(store_txn_t *txn, store_txn_fn fn, void *arg, err_t *err);

/*
 * Runs fn(arg) on the writer once the transaction that called this is durable, before any
 * done callback of its batch; never when what called it is rolled back (its own transaction,
 * or the nested savepoint it ran in). For effects outside the database that must follow a
 * commit (the search parameters of a SearchParameter write). fn must be quick and must not
 * submit to the store and wait; arg is borrowed and must live until the done callback.
 */
typedef void (*store_commit_fn)(void *arg);
void store_txn_on_commit(store_txn_t *txn, store_commit_fn fn, void *arg);

/* store_read inside the transaction: sees what the transaction has written so far. */
status_t store_txn_read(store_txn_t *txn, const char *type, const char *id, int64_t version,
                        arena_t *arena, store_version_t *out, err_t *err);

/* The current version number of type/id as seen inside the transaction. */
status_t store_txn_current(store_txn_t *txn, const char *type, const char *id, store_current_t *out,
                           err_t *err);

typedef struct {
    const char *type;
    const char *id;
    int64_t version;    /* must be current + 1 */
    const char *method; /* "POST", "PUT", "DELETE" */
    int status;         /* the HTTP status of the write: 201 created, 200 updated, 204 deleted */
    const char *json;   /* the resource with meta filled in; NULL for a delete */
    size_t json_len;
    const fhir_index_rows_t *index; /* its search index rows (NULL: none); they replace the
                                       rows of the previous version, and a delete has none */
    /* who wrote it: the version-author's valueReference as JSON text ({"reference":
       "Practitioner/x"} or {"display":"name"}), or NULL */
    const char *author;
} store_put_t;

/* Writes a new version and makes it current, with its index rows. out_seq (may be NULL) gets
 * its seq. */
status_t store_txn_put(store_txn_t *txn, const store_put_t *put, int64_t *out_seq, err_t *err);

/*
 * Replaces the index rows of the current version of type/id (reindexing). ERR_NOT_FOUND
 * when there is no such resource; a deleted one keeps no rows whatever rows says.
 */
status_t store_txn_reindex(store_txn_t *txn, const char *type, const char *id,
                           const fhir_index_rows_t *rows, err_t *err);

/*
 * Bulk loads. Maintaining the search indexes row by row costs most of a write; building them
 * from the finished tables costs a fraction of that. store_txn_defer_indexes drops the
 * indexes of the search index tables and keeps their definitions in the database; the next
 * store_open builds them and refreshes the planner's statistics (so close the store and open
 * it again at the end of the load; should the process stop before, the next open builds them
 * all the same). Searches in between are right but scan. The rows written are the same either
 * way. The PostgreSQL driver keeps its indexes (a no-op there).
 */
status_t store_txn_defer_indexes(store_txn_t *txn, err_t *err);

/* Refreshes the statistics the database's query planner uses (from a sample of each index):
 * after a large load, whose searches could otherwise be planned as if the tables were empty. */
status_t store_txn_analyze(store_txn_t *txn, err_t *err);

/*
 * Holds the lock named key until the transaction ends, waiting while another transaction
 * holds it: for writers in several processes that check something and then write on the
 * strength of it (the engine's "is there a CarePlan of this protocol for this patient yet"),
 * which read-committed isolation alone lets two of them answer "no" at once. SQLite has one
 * writer at a time, so there it is a no-op; PostgreSQL takes a transaction advisory lock on a
 * 64-bit hash of key (two keys sharing a hash only wait for each other).
 */
status_t store_txn_lock(store_txn_t *txn, const char *key, err_t *err);

/* ---- scanning ------------------------------------------------------------------------ */

typedef struct {
    int64_t rid; /* the resource's key: scan order */
    const char *type, *id;
    int64_t version;
    const char *json; /* the current version */
    size_t json_len;
} store_scan_row_t;

/*
 * Up to `count` current, non-deleted resources of `type` (NULL: every type) with a key above
 * after_rid (0: from the start), in key order; strings in arena. *out_n is the number read
 * (0: the end).
 */
status_t store_scan(store_conn_t *conn, const char *type, int64_t after_rid, size_t count,
                    arena_t *arena, store_scan_row_t **out_rows, size_t *out_n, err_t *err);

/*
 * The current versions of type/ids[0..n) in one statement: out[i] (out holds n) is that of
 * ids[i], strings in arena; a resource that is missing or deleted gets out[i].deleted set
 * and json NULL.
 */
status_t store_read_batch(store_conn_t *conn, const char *type, const char *const *ids, size_t n,
                          arena_t *arena, store_version_t *out, err_t *err);

/* ---- Task work rows ---------------------------------------------------------------------- */

/*
 * Every open Task (a status that is not final) has a work row, written with its index rows
 * in the same transaction by every writer of them (fhir_task_work_t of the rows; a write, a
 * delete, a reindex, a copy): its patient, owner, status, priority rank, due time, and for
 * an unowned one its role pools. A worklist reads these instead of every Task
 * (docs/internals/store.md, "Task work rows").
 */
typedef struct {
    /* owned by one of these (as stored: "Type/id", or an absolute url) */
    const char *const *owners;
    size_t nowners;
    /* or unowned and in one of these pools ("system|code") */
    const char *const *pools;
    size_t npools;
    /* only Tasks of these patients (Task.for as stored); NULL: any */
    const char *const *patients;
    size_t npatients;
    int priority; /* only this priority rank; -1: any */
    /* only Tasks it makes visible (store_visibility_t), NULL: every one */
    const store_visibility_t *visibility;
} store_task_work_query_t;

typedef struct {
    const char *id;      /* the Task's id */
    const char *patient; /* Task.for as stored ("Patient/id" or an absolute url), or NULL */
    const char *owner;   /* "Type/id", an absolute url, "" for an owner without a reference;
                            NULL: unowned */
    const char *status;
    int priority;     /* rank 0 (routine) to 3 (stat); -1: none */
    int64_t due_us;   /* INT64_MAX: no due time */
    const char *pool; /* an unowned Task: the pool of the query it is in (a Task in several
                         comes once per pool), else NULL */
} store_task_work_t;

/* The work rows the query selects, in no order; in arena. */
status_t store_task_work(store_conn_t *conn, const store_task_work_query_t *query, arena_t *arena,
                         store_task_work_t **out, size_t *out_n, err_t *err);

/* ---- Risk rows ----------------------------------------------------------------------------- */

/*
 * Every RiskAssessment about a Patient that is not withdrawn has a risk row, written with its
 * index rows by every writer of them like a Task's work row (fhir_risk_row_t of the rows):
 * its patient, occurrence time and risk. A worklist ranks patients by the latest
 * (docs/internals/store.md, "Risk rows").
 */
typedef struct {
    const char *patient; /* RiskAssessment.subject as stored ("Patient/id" or an absolute url) */
    int64_t when_us;     /* the start of occurrenceDateTime; INT64_MIN: none */
    int64_t seq;         /* the sequence number of the version: the last written is the highest */
    double risk;         /* 0 to 1; -1: none */
} store_risk_t;

/* The risk rows of the patients (subject as stored: "Patient/id", an absolute url), in no
 * order (the latest of a patient: the latest occurrence time, then the last written); in
 * arena. */
status_t store_patient_risks(store_conn_t *conn, const char *const *patients, size_t n,
                             arena_t *arena, store_risk_t **out, size_t *out_n, err_t *err);

/* ---- Care team member rows ------------------------------------------------------------------ */

/*
 * Every active CareTeam about a Patient has a member row per role coding of each participant
 * with a member reference, written with its index rows by every writer of them
 * (fhir_care_members_t of the rows). A worklist reads the caller's roles in their patients'
 * teams from these (docs/internals/store.md, "Care team member rows").
 */
typedef struct {
    const char *patient; /* "Patient/id" of the team */
    const char *role;    /* "system|code" */
} store_care_role_t;

/* The roles that members (participant.member.reference exactly as written) hold at now_us in
 * the active CareTeams, with each team's patient, in no order (a role held twice comes twice);
 * in arena. */
status_t store_care_roles(store_conn_t *conn, const char *const *members, size_t n, int64_t now_us,
                          arena_t *arena, store_care_role_t **out, size_t *out_n, err_t *err);

/* ---- searching ----------------------------------------------------------------------- */

/* Most resources _include and _revinclude may add to one page, and rounds of :iterate. */
#define STORE_SEARCH_MAX_INCLUDE 1000
#define STORE_SEARCH_MAX_ROUNDS  4

typedef struct {
    const fhir_search_plan_t *plan;
    const char *base; /* the server's base url: absolute references under it are local; NULL */
    const char *page; /* a cursor from a previous result's next or previous, NULL: first page
                         (plan->offset applies only then) */
    /* a compartment search (Patient/123/Observation): resources that refer to
       compartment_type/compartment_id through one of the params (codes on the branch type),
       and the compartment's own resource when the branch is of its type */
    const char *compartment_type, *compartment_id;
    const char *const *compartment_params;
    size_t ncompartment_params;
    /* only what it makes visible: matches, includes, the targets of chains and the sources
       of _has, totals; NULL: everything */
    const store_visibility_t *visibility;
} store_search_t;

typedef struct {
    store_version_t version;  /* the current version (never a delete) */
    bool included;            /* search mode include (else match) */
    const char *contained_id; /* _containedType=contained: the match is the resource of
                                 version.json's contained with this id; else NULL */
} store_search_entry_t;

typedef struct {
    store_search_entry_t *entries; /* the page's matches in order, then what they include */
    size_t n, nmatch;
    int64_t total;           /* all matches (accurate), or -1 when the plan did not ask */
    const char *next;        /* the cursor of the next page, or NULL when there is none */
    const char *previous;    /* the cursor of the previous page, or NULL */
    bool includes_truncated; /* more would have been included than STORE_SEARCH_MAX_INCLUDE */
} store_search_result_t;

/*
 * Runs a search plan: the matches of the page in the plan's sort order (default: the order
 * resources were first created), the resources they include, the total when asked. Paging
 * is by keyset: a cursor carries the last (or first) sort key values and key of the page, so
 * pages stay consistent while data changes. Strings are in arena. Errors: ERR_INVALID for a
 * malformed cursor or a clause the driver cannot run (store_search_unsupported says which
 * beforehand), storage errors.
 */
status_t store_search(store_conn_t *conn, const store_search_t *query, arena_t *arena,
                      store_search_result_t *out, err_t *err);

/* ---- a compartment's everything (Patient/$everything) ------------------------------ */

typedef struct {
    const char *compartment_type; /* "Patient" */
    const char *id;               /* the compartment's resource, or NULL: all of its type */
    /* members: resources of member_types[i] that refer to the compartment's resource through
       the reference parameter member_params[i]; and the compartment's resource itself */
    const char *const *member_types;
    const char *const *member_params;
    size_t nmembers;
    /* and the resources of these types that members refer to (local references) */
    const char *const *referenced;
    size_t nreferenced;
    const char *const *types; /* only resources of these types (_type), or ntypes 0: all */
    size_t ntypes;
    int64_t since_us; /* only resources last updated at or after this time; 0: all */
    uint32_t count;   /* page size, at least 1 */
    const char *page; /* the cursor of a previous result's next, or NULL: the first page */
    /* only what it makes visible; with id NULL, the compartments of its patients only (the
       compartment type must be Patient); NULL: everything */
    const store_visibility_t *visibility;
} store_everything_t;

/*
 * One page of a compartment's everything, in the order resources were first created, each
 * once: members are entries in search mode match, referenced resources in mode include.
 * Paging is by keyset (the cursor holds the last resource's key), so pages stay consistent
 * while data changes: a resource is never on two pages, and one created meanwhile comes
 * last. Only `next` is set. Errors: ERR_INVALID for a malformed cursor, storage errors.
 */
status_t store_everything(store_conn_t *conn, const store_everything_t *query, arena_t *arena,
                          store_search_result_t *out, err_t *err);

/*
 * store_search inside a transaction, on the writer: the same search, seeing what the
 * transaction (and the transactions committed with it) wrote so far, and atomic with what the
 * transaction writes next. For the decisions of conditional writes (If-None-Exist, conditional
 * update and delete, conditional references of a transaction Bundle) and searches in
 * transactions. It runs on the one writer: keep it to small result sets.
 */
status_t store_txn_search(store_txn_t *txn, const store_search_t *query, arena_t *arena,
                          store_search_result_t *out, err_t *err);

/*
 * Why a clause of a plan cannot be run by the store (a message naming the parameter), or
 * NULL when it can: terminology modifiers (:in, :not-in, :above and :below on tokens) whose
 * codes were not resolved (clause->codes NULL), special parameters other than near, a near
 * distance that is not a UCUM length, functional lists ($name). Nested clauses of chains and
 * _has are checked too.
 */
const char *store_search_unsupported(const fhir_search_clause_t *clause, arena_t *arena);

/* ---- work queues: the outbox, jobs, singleton leases ------------------------------------ */

/*
 * Work that must happen because of a change, or at a time, is kept in the database so that
 * nothing is lost in a crash, and handed to workers at least once: a worker claims items with
 * a lease (claimed_by, claim_until), handles them, and acknowledges (the item goes) or fails
 * (it comes back after the caller's back-off, or goes dead after max_attempts). A worker that
 * dies leaves its claims to expire; the items are then claimed again. So handlers must be
 * idempotent. Every claim counts as an attempt, so an item that keeps killing its worker goes
 * dead too. Two workers never hold the same item while a lease holds.
 *
 * Writes (claim, acknowledge, fail, schedule, ...) are store_txn_* functions: run them in a
 * transaction on the writer (store_run, store_submit). A handler whose effects are writes to
 * the store may acknowledge in the same transaction as those writes. Time is the caller's
 * (now_us), so that tests and back-off are in the caller's hands. Worker names (`consumer`)
 * must be unique per worker: a host, process and thread, say.
 */

typedef enum {
    STORE_EVENT_CREATE = 1,
    STORE_EVENT_UPDATE = 2,
    STORE_EVENT_DELETE = 3,
} store_event_action_t;

/* "create", "update" or "delete". */
const char *store_event_action_name(store_event_action_t action);

/* An outbox event: one per version written. */
typedef struct {
    int64_t event_id; /* increasing, never reused */
    int64_t seq;      /* the version's seq */
    const char *type;
    const char *id;
    int64_t version;
    store_event_action_t action;
    int64_t time_us;        /* when the version was written (its lastUpdated) */
    int64_t available_us;   /* not claimed before this time (a retry's back-off) */
    int64_t attempts;       /* claims so far, the current one included */
    const char *claimed_by; /* the last claimant, or NULL */
    int64_t claim_until_us; /* its lease ends then */
    const char *last_error; /* the last failure's text, or NULL */
    bool dead;
} store_event_t;

/* What a claim asks for (outbox events or jobs). */
typedef struct {
    const char *consumer; /* the worker claiming */
    size_t max;           /* up to this many items */
    int64_t now_us;
    int64_t lease_us;     /* the claims hold until now_us + lease_us */
    int64_t max_attempts; /* an item already claimed this many times, whose last lease ran out
                             unanswered, goes dead ("the lease expired") instead of out again */
    const char *kind;     /* jobs: only this kind, or NULL: any */
} store_claim_t;

/* How a failed item is retried. */
typedef struct {
    const char *consumer; /* the worker that held the claim */
    const char *error;    /* why, kept as last_error (for the dead list) */
    int64_t retry_at_us;  /* when it may be claimed again (the caller's back-off) */
    int64_t max_attempts; /* when attempts has reached this, the item goes dead instead */
} store_failure_t;

/*
 * Claims up to claim->max available events (not dead, available_us and any earlier lease
 * passed) in event order, for claim->consumer until now_us + lease_us. *out_events (in arena)
 * gets them with attempts counted; *out_n how many (0: none available).
 */
status_t store_txn_outbox_claim(store_txn_t *txn, const store_claim_t *claim, arena_t *arena,
                                store_event_t **out_events, size_t *out_n, err_t *err);
/* Done: removes the event. ERR_CONFLICT when consumer no longer holds it (another worker
 * claimed it after the lease ran out, or it is gone already). */
status_t store_txn_outbox_ack(store_txn_t *txn, int64_t event_id, const char *consumer, err_t *err);
/* Failed: the event comes back at retry_at_us, or goes dead (*out_dead, may be NULL) once it
 * has had max_attempts. ERR_CONFLICT when consumer no longer holds it. */
status_t store_txn_outbox_fail(store_txn_t *txn, int64_t event_id, const store_failure_t *failure,
                               bool *out_dead, err_t *err);
/* A dead event back to available at now_us with no attempts (last_error stays).
 * ERR_NOT_FOUND when there is no such dead event. */
status_t store_txn_outbox_replay(store_txn_t *txn, int64_t event_id, int64_t now_us, err_t *err);
/* Up to count dead events with an id above after_event_id (0: from the first), in order. */
status_t store_outbox_dead(store_conn_t *conn, int64_t after_event_id, size_t count, arena_t *arena,
                           store_event_t **out_events, size_t *out_n, err_t *err);
/* Events not yet handled (claimed or not, not dead), and dead ones. */
status_t store_outbox_counts(store_conn_t *conn, int64_t *out_pending, int64_t *out_dead,
                             err_t *err);

/* The outbox at a glance, for an admin: events waiting (not claimed, or a lease that ran
 * out), claimed (a lease holding at now_us), dead. */
typedef struct {
    int64_t pending;
    int64_t claimed;
    int64_t dead;
} store_outbox_stats_t;
status_t store_outbox_stats(store_conn_t *conn, int64_t now_us, store_outbox_stats_t *out,
                            err_t *err);
/* Every dead event back to available at now_us with no attempts (store_txn_outbox_replay for
 * all); *out_n (may be NULL): how many. */
status_t store_txn_outbox_replay_dead(store_txn_t *txn, int64_t now_us, int64_t *out_n, err_t *err);

typedef enum {
    STORE_JOB_SCHEDULED = 0, /* waiting for its time, or claimed */
    STORE_JOB_DEAD = 1,      /* failed max_attempts times */
} store_job_state_t;

typedef struct {
    int64_t job_id;
    const char *kind;    /* what to do, e.g. "task-escalation" */
    const char *key;     /* which one: unique per kind */
    int64_t run_at_us;   /* due then */
    const char *payload; /* JSON text, or NULL */
    int64_t attempts;
    const char *claimed_by;
    int64_t claim_until_us;
    const char *last_error;
    store_job_state_t state;
    int64_t revision; /* grows with every schedule of kind+key */
} store_job_t;

/*
 * Schedules kind+key to run at run_at_us with payload (JSON text, may be NULL): a new job,
 * or the existing one of that kind and key updated (idempotent: never two jobs of one kind and
 * key). Updating makes it scheduled again with no attempts; a claim it has stays, and the
 * claimant's complete then leaves the new schedule in place. *out_job_id (may be NULL).
 */
status_t store_txn_job_schedule(store_txn_t *txn, const char *kind, const char *key,
                                int64_t run_at_us, const char *payload, int64_t *out_job_id,
                                err_t *err);
/* Removes the job kind+key. ERR_NOT_FOUND when there is none. */
status_t store_txn_job_cancel(store_txn_t *txn, const char *kind, const char *key, err_t *err);
/* Claims up to claim->max due jobs (run_at_us <= now_us, scheduled, no lease holding), of
 * claim->kind when set, earliest first. Same shape as store_txn_outbox_claim. */
status_t store_txn_job_claim(store_txn_t *txn, const store_claim_t *claim, arena_t *arena,
                             store_job_t **out_jobs, size_t *out_n, err_t *err);
/*
 * Done with the run of `job` (as claimed: its id and revision). next_run_us 0: a one-off job,
 * removed; else a recurring one, scheduled again for next_run_us with no attempts. When the
 * job was scheduled again during the run (its revision moved), that schedule stands and only
 * the claim is dropped. ERR_CONFLICT when consumer no longer holds the job.
 */
status_t store_txn_job_complete(store_txn_t *txn, const store_job_t *job, const char *consumer,
                                int64_t next_run_us, err_t *err);
/*
 * A long job's run did a part: `job` (as claimed) runs again at run_at_us with payload (JSON
 * text saying where it got to) and no attempts, unless it was scheduled again during the run,
 * whose schedule then stands (the work starts over as that schedule says). ERR_CONFLICT when
 * consumer no longer holds the job.
 */
status_t store_txn_job_continue(store_txn_t *txn, const store_job_t *job, const char *consumer,
                                int64_t run_at_us, const char *payload, err_t *err);
/* Failed (`job` as claimed): runs again at retry_at_us, or goes dead (*out_dead, may be NULL)
 * once it has had max_attempts; when it was scheduled again during the run, that schedule
 * stands. ERR_CONFLICT when failure->consumer no longer holds it. */
status_t store_txn_job_fail(store_txn_t *txn, const store_job_t *job,
                            const store_failure_t *failure, bool *out_dead, err_t *err);
/* A dead job scheduled again at now_us with no attempts. ERR_NOT_FOUND when there is no such
 * dead job. */
status_t store_txn_job_replay(store_txn_t *txn, int64_t job_id, int64_t now_us, err_t *err);

typedef struct {
    const char *kind;     /* only this kind, or NULL */
    bool dead_only;       /* only dead jobs */
    int64_t after_job_id; /* page after this id (0: from the first) */
    size_t count;
} store_job_query_t;

/* Jobs in id order, for an admin view. */
status_t store_job_list(store_conn_t *conn, const store_job_query_t *query, arena_t *arena,
                        store_job_t **out_jobs, size_t *out_n, err_t *err);

/*
 * Singleton leases: work that must run in one process only takes the lease `name` as
 * `holder` for duration_us, renews it well before it runs out, and stops when a renewal
 * fails. They run on the writer (they wait for it). *out_held says whether holder has the
 * lease afterwards: acquire takes a free or expired lease, or extends holder's own; renew only
 * extends a lease holder has and that has not run out; release gives it up (a no-op when
 * holder does not have it).
 */
status_t store_lease_acquire(store_t *store, const char *name, const char *holder,
                             int64_t duration_us, int64_t now_us, bool *out_held, err_t *err);
status_t store_lease_renew(store_t *store, const char *name, const char *holder,
                           int64_t duration_us, int64_t now_us, bool *out_held, err_t *err);
status_t store_lease_release(store_t *store, const char *name, const char *holder, err_t *err);

/* ---- copying a whole database (concerto migrate-data) ------------------------------------ */

/*
 * What a copy needs: every stored row read back in key order, written into an empty database
 * as it was (the same keys, times, statuses and claims), and the key counters carried over.
 * The search index is not read: the writer extracts the rows of each current version again
 * (fhir_index_extract) and hands them to store_txn_load_versions.
 */

/*
 * ERR_CONFLICT (with a message that says so) when another process has the database at
 * `location` open: for SQLite, a connection of another process (a running concerto serve, a
 * command) holds a lock on its file. Call it before this process opens the database: the test
 * cannot see this process's own connections. For PostgreSQL, a database server shared by
 * design, nothing can tell: ERR_OK.
 */
status_t store_check_unused(const char *location, err_t *err);

/*
 * Begins a snapshot on conn: every read on conn until store_snapshot_end sees the database as
 * it was at this call, whatever is written meanwhile. lock_writers: no other connection (of
 * this process or another) can write until then either (SQLite: the write lock, so a server
 * started meanwhile cannot write; PostgreSQL: SHARE locks on the tables of versions, current
 * resources and the queues). Only reads that run no transaction of their own may run on conn
 * in between: store_read, store_history, store_count, store_scan, store_scan_versions,
 * store_outbox_scan, store_job_list, store_lease_list, store_last_keys (not store_search).
 */
status_t store_snapshot_begin(store_conn_t *conn, bool lock_writers, err_t *err);
void store_snapshot_end(store_conn_t *conn);

/* A version as stored, with what a copy needs beside it. */
typedef struct {
    store_version_t version;        /* type, id and every stored column, seq included */
    int64_t rid;                    /* the key of its resource when this is the resource's
                                       current version (a delete too), else 0 */
    const fhir_index_rows_t *index; /* store_txn_load_versions: the search index rows of a
                                       current version that is not a delete (NULL: none);
                                       store_scan_versions leaves it NULL */
} store_copy_version_t;

/*
 * Up to `count` versions with a seq above after_seq (0: from the first), in seq order, every
 * one of them (deletes, versions that are no longer current); strings in arena. *out_n is the
 * number read (0: the end).
 */
status_t store_scan_versions(store_conn_t *conn, int64_t after_seq, size_t count, arena_t *arena,
                             store_copy_version_t **out_versions, size_t *out_n, err_t *err);

/*
 * Writes versions exactly as given, seq and lastUpdated included, for a copy into an empty
 * database: a version with a rid becomes the current version of its resource under that key
 * (with its index rows, its full text and its contained resources). Writes no outbox event
 * (store_txn_load_events copies them) and checks no version order. Storage errors, among them
 * a seq, a version of type/id or a rid that is taken.
 */
status_t store_txn_load_versions(store_txn_t *txn, const store_copy_version_t *versions, size_t n,
                                 err_t *err);

/* Up to count outbox events with an id above after_event_id (0: from the first), in id order:
 * every one, pending, claimed or dead. */
status_t store_outbox_scan(store_conn_t *conn, int64_t after_event_id, size_t count, arena_t *arena,
                           store_event_t **out_events, size_t *out_n, err_t *err);
/* Writes outbox events exactly as given: ids, attempts, claims, errors, dead. */
status_t store_txn_load_events(store_txn_t *txn, const store_event_t *events, size_t n, err_t *err);
/* Writes jobs exactly as given (as store_job_list reads them): ids, states, claims, revisions. */
status_t store_txn_load_jobs(store_txn_t *txn, const store_job_t *jobs, size_t n, err_t *err);

/* A singleton lease as stored. */
typedef struct {
    const char *name;
    const char *holder;
    int64_t until_us;
} store_lease_t;

/* Every singleton lease, by name (held or run out); strings in arena. */
status_t store_lease_list(store_conn_t *conn, arena_t *arena, store_lease_t **out_leases,
                          size_t *out_n, err_t *err);
/* Writes leases exactly as given. */
status_t store_txn_load_leases(store_txn_t *txn, const store_lease_t *leases, size_t n, err_t *err);

/* The keys the database has handed out: the last of each (0: none yet). A key is never handed
 * out twice, even when its row is gone (an acknowledged outbox event, a completed job). */
typedef struct {
    int64_t seq;      /* versions */
    int64_t rid;      /* resources */
    int64_t event_id; /* outbox events */
    int64_t job_id;   /* jobs */
} store_keys_t;

status_t store_last_keys(store_conn_t *conn, store_keys_t *out, err_t *err);
/*
 * Makes the next key of each kind follow both `keys` and the rows the database holds (after a
 * load: PostgreSQL's identity sequences do not move when rows are written with their keys).
 * SQLite hands out the keys of versions and resources after the highest row, which a copy
 * carries over (those rows are never removed); its outbox and job counters are set.
 */
status_t store_txn_load_keys(store_txn_t *txn, const store_keys_t *keys, err_t *err);

/* ---- accounts, OAuth clients, tokens ------------------------------------------------------ */

/*
 * The rows behind logins and SMART on FHIR authorization (docs/internals/auth.md). The store
 * keeps what src/auth decides: it hashes, encrypts and checks nothing itself. Secrets arrive
 * here already protected: password and client secret hashes (argon2id), TOTP secrets sealed
 * with the server key, recovery codes and tokens as hashes only. Times are the caller's, in
 * microseconds since 1970.
 *
 * Writes are store_txn_* functions, to run in a transaction on the writer (store_run) so that
 * they are atomic with the reads and writes around them; lookups take a store_conn_t and
 * always read the primary (a token revoked a moment ago must not be found valid on a lagging
 * replica). Strings of rows read are in the caller's arena. Usernames are stored as given:
 * the caller lower-cases them (src/auth does), which is what makes them unique whatever the
 * case.
 */

typedef struct {
    const char *account_id; /* a UUID made by the caller */
    const char *username;   /* lower case, unique */
    const char *role;       /* "admin", "nurse", ..., "patient", "service" (src/auth's list) */
    /* what the account is: a staff account's Practitioner (and optionally its
       PractitionerRole), a patient account's Patient; NULL when none */
    const char *practitioner_id;
    const char *practitioner_role_id;
    const char *patient_id;
    const char *password_hash; /* argon2id string, or NULL: no password login */
    bool disabled;
    int64_t failed_logins;       /* failures since the last success */
    int64_t locked_until_us;     /* logins refused until then; 0: not locked */
    int64_t last_login_us;       /* 0: never */
    int64_t password_changed_us; /* when password_hash was last set */
    const char *totp_secret;     /* sealed with the server key, or NULL: no second factor */
    bool totp_confirmed;         /* a code was verified after enrolment: the factor is on */
    int64_t totp_last_step;      /* the last TOTP step accepted (-1: none), against replays */
    int64_t recovery_codes;      /* read only: how many unused recovery codes are left */
    int64_t created_us, updated_us;
} store_account_t;

/* Adds an account (all of *account but recovery_codes; created_us and updated_us are taken
 * as given). ERR_CONFLICT when the username (or id) is taken. */
status_t store_txn_account_create(store_txn_t *txn, const store_account_t *account, err_t *err);
/* The account of username (as stored: lower case), or ERR_NOT_FOUND. */
status_t store_account_get(store_conn_t *conn, const char *username, arena_t *arena,
                           store_account_t *out, err_t *err);
/* The same by account id. */
status_t store_account_get_id(store_conn_t *conn, const char *account_id, arena_t *arena,
                              store_account_t *out, err_t *err);
/* store_account_get inside a transaction: on PostgreSQL the row stays locked until the
 * transaction ends, so a read-modify-write (counting a failed login) cannot lose an update. */
status_t store_txn_account_get(store_txn_t *txn, const char *username, arena_t *arena,
                               store_account_t *out, err_t *err);
/* Every account, ordered by username. *out (in arena), *out_n. */
status_t store_account_list(store_conn_t *conn, arena_t *arena, store_account_t **out,
                            size_t *out_n, err_t *err);
/* Writes every field of *account but account_id, username, created_us and recovery_codes
 * over the row of account->account_id. ERR_NOT_FOUND when there is none. */
status_t store_txn_account_update(store_txn_t *txn, const store_account_t *account, err_t *err);

/* Replaces the recovery code hashes of an account with hashes[0..n) (n 0: removes them). */
status_t store_txn_recovery_set(store_txn_t *txn, const char *account_id, const char *const *hashes,
                                size_t n, err_t *err);
/* The recovery code hashes of an account, in the transaction. */
status_t store_txn_recovery_list(store_txn_t *txn, const char *account_id, arena_t *arena,
                                 const char ***out, size_t *out_n, err_t *err);
/* Removes one hash, which is what makes a code single-use. *out_used: whether it was there
 * (false: another request used it first). */
status_t store_txn_recovery_use(store_txn_t *txn, const char *account_id, const char *hash,
                                bool *out_used, err_t *err);

typedef enum {
    STORE_CLIENT_PUBLIC = 1,       /* no secret: authorization code with PKCE only */
    STORE_CLIENT_CONFIDENTIAL = 2, /* client_secret_basic / client_secret_post */
    STORE_CLIENT_JWT = 3,          /* private_key_jwt against its JWK Set */
} store_client_kind_t;

/* "public", "confidential", "private_key_jwt"; store_client_kind_parse the reverse (false for
 * any other name). */
const char *store_client_kind_name(store_client_kind_t kind);
bool store_client_kind_parse(const char *name, store_client_kind_t *out);

typedef struct {
    const char *client_id;
    const char *name; /* for people, or NULL */
    store_client_kind_t kind;
    const char *secret_hash;   /* confidential: argon2id string; else NULL */
    const char *jwks;          /* private_key_jwt: the JWK Set, JSON text; else NULL */
    const char *scopes;        /* the scopes it may be granted, space-separated */
    const char *redirect_uris; /* registered redirect URIs, space-separated ("" none) */
    bool disabled;
    int64_t created_us, updated_us;
} store_client_t;

/* Registers a client. ERR_CONFLICT when client_id is taken. */
status_t store_txn_client_create(store_txn_t *txn, const store_client_t *client, err_t *err);
/* The client of client_id, or ERR_NOT_FOUND. */
status_t store_client_get(store_conn_t *conn, const char *client_id, arena_t *arena,
                          store_client_t *out, err_t *err);
/* Every client, ordered by client_id. */
status_t store_client_list(store_conn_t *conn, arena_t *arena, store_client_t **out, size_t *out_n,
                           err_t *err);
/* Removes a client with its tokens and the assertion ids kept for it. ERR_NOT_FOUND. */
status_t store_txn_client_delete(store_txn_t *txn, const char *client_id, err_t *err);
/* Disables or enables a client (tokens are the caller's to revoke). ERR_NOT_FOUND. */
status_t store_txn_client_set_disabled(store_txn_t *txn, const char *client_id, bool disabled,
                                       int64_t now_us, err_t *err);
/*
 * Records the jti of a client's signed assertion (private_key_jwt) until expires_us, when
 * the assertion expires. *out_fresh is false when the client used that jti before and the
 * record has not expired at now_us: a replay, to refuse.
 */
status_t store_txn_client_assertion_use(store_txn_t *txn, const char *client_id, const char *jti,
                                        int64_t expires_us, int64_t now_us, bool *out_fresh,
                                        err_t *err);

typedef enum {
    STORE_TOKEN_CODE = 1,    /* an authorization code, exchanged once */
    STORE_TOKEN_ACCESS = 2,  /* a bearer token for the API */
    STORE_TOKEN_REFRESH = 3, /* exchanged once for a new access and refresh token */
} store_token_kind_t;

/* What a token row says at a time, from the most to the least decisive. */
typedef enum {
    STORE_TOKEN_ACTIVE,
    STORE_TOKEN_REVOKED, /* revoked_us is set */
    STORE_TOKEN_USED,    /* a code or refresh token already exchanged (used_us is set) */
    STORE_TOKEN_EXPIRED, /* now >= expires_us */
} store_token_state_t;

typedef struct {
    const char *hash; /* the key: the token's SHA-256, as its caller spells it (never the token) */
    store_token_kind_t kind;
    const char *client_id;
    const char *account_id; /* NULL for a client's own token (client_credentials) */
    const char *scopes;     /* granted, space-separated */
    const char *patient_id; /* launch context, or NULL */
    /* the grant the token belongs to: every code, access and refresh token descending from one
       authorization shares it, so that a replayed code or refresh token revokes them all */
    const char *family_id;
    const char *code_challenge; /* codes: the PKCE S256 challenge */
    const char *redirect_uri;   /* codes: the redirect_uri of the authorization request */
    const char *nonce;          /* codes: the OpenID Connect nonce of the request, or NULL */
    int64_t expires_us, created_us;
    int64_t used_us;    /* codes and refresh tokens: when exchanged; 0: not yet */
    int64_t revoked_us; /* 0: not revoked */
} store_token_t;

/* The state of a token at now_us: revoked, else used, else expired, else active. */
store_token_state_t store_token_state(const store_token_t *token, int64_t now_us);

/* Stores a token (all of *token but used_us and revoked_us). */
status_t store_txn_token_issue(store_txn_t *txn, const store_token_t *token, err_t *err);
/* The token of hash, whatever its state (store_token_state says), or ERR_NOT_FOUND. */
status_t store_token_get(store_conn_t *conn, const char *hash, arena_t *arena, store_token_t *out,
                         err_t *err);
/* The same in a transaction (the row locked on PostgreSQL until it ends). */
status_t store_txn_token_get(store_txn_t *txn, const char *hash, arena_t *arena, store_token_t *out,
                             err_t *err);
/* Marks a code or refresh token exchanged at now_us. *out_first is false when it was used or
 * revoked already (a replay: the caller revokes its family). ERR_NOT_FOUND. */
status_t store_txn_token_use(store_txn_t *txn, const char *hash, int64_t now_us, bool *out_first,
                             err_t *err);
/* Revokes one token (a no-op when it is revoked already). ERR_NOT_FOUND. */
status_t store_txn_token_revoke(store_txn_t *txn, const char *hash, int64_t now_us, err_t *err);
/* Revokes every token not yet revoked of a family, of an account, of a client; *out_n (may be
 * NULL) how many. */
status_t store_txn_token_revoke_family(store_txn_t *txn, const char *family_id, int64_t now_us,
                                       int64_t *out_n, err_t *err);
status_t store_txn_token_revoke_account(store_txn_t *txn, const char *account_id, int64_t now_us,
                                        int64_t *out_n, err_t *err);
status_t store_txn_token_revoke_client(store_txn_t *txn, const char *client_id, int64_t now_us,
                                       int64_t *out_n, err_t *err);
/* Removes the tokens and assertion ids that expired at or before now_us (revoked or not: past
 * their expiry a token fails anyway, and a replayed one is refused as unknown). *out_n (may
 * be NULL): the tokens removed. */
status_t store_txn_token_purge(store_txn_t *txn, int64_t now_us, int64_t *out_n, err_t *err);

/*
 * Copying the accounts, clients, tokens and the audit trail with a database (concerto
 * migrate-data): the STORE_AUTH_TABLES tables (account, account_recovery, client,
 * client_assertion, token, audit, audit_head) as stored, row by row in key order, every cell
 * as text (integers in decimal) or NULL. A scan reads a whole table (run it on the connection
 * of the copy's snapshot); a load writes rows as a scan returned them into the same table of
 * another database, which must not hold them yet. The audit records keep their ids, sequence
 * numbers and hashes, so the chain verifies on the copy; the load of audit_head replaces the
 * empty head of a new database and moves the id counter past the copied records.
 */
#define STORE_AUTH_TABLES 7
/* "account", ...; table < STORE_AUTH_TABLES. */
const char *store_auth_table_name(size_t table);
status_t store_auth_table_scan(store_conn_t *conn, size_t table, arena_t *arena,
                               const char ***out_cells, size_t *out_nrows, size_t *out_ncols,
                               err_t *err);
status_t store_txn_auth_table_load(store_txn_t *txn, size_t table, const char *const *cells,
                                   size_t nrows, err_t *err);

/* ---- browser sessions ------------------------------------------------------------------- */

/*
 * The sessions of the sign-in pages (/oauth2/authorize) and the authorization requests
 * waiting in them (docs/security.md, "Signing in"). Transient: concerto migrate-data does not
 * copy them. A session is keyed by the SHA-256 of its cookie value (the store never sees the
 * cookie); its CSRF token is the value the pages' forms must send back. Times are the
 * caller's; expiry is the caller's to check (store_txn_session_purge removes what expired).
 */

typedef enum {
    STORE_SESSION_ANONYMOUS = 0, /* nobody signed in yet (a login page was shown) */
    STORE_SESSION_CODE = 1,      /* username's password was right: a TOTP or recovery code is
                                    asked */
    STORE_SESSION_ENROLL = 2,    /* username's password was right: enrolment is under way */
    STORE_SESSION_SIGNED_IN = 3, /* account_id is signed in */
} store_session_state_t;

typedef struct {
    const char *session_id; /* the cookie value's SHA-256, in hex */
    const char *account_id; /* signed in: the account; else NULL */
    const char *username;   /* of the sign-in under way or done; NULL when anonymous */
    store_session_state_t state;
    const char *csrf;     /* the token the session's forms carry */
    int64_t created_us;   /* when the session began */
    int64_t last_seen_us; /* its last request (the idle timeout counts from here) */
    int64_t expires_us;   /* its absolute end */
} store_session_t;

/* Adds a session (every field as given). */
status_t store_txn_session_create(store_txn_t *txn, const store_session_t *session, err_t *err);
/* The session of session_id, whatever its times, or ERR_NOT_FOUND. Strings in arena. */
status_t store_session_get(store_conn_t *conn, const char *session_id, arena_t *arena,
                           store_session_t *out, err_t *err);
/* Writes account_id, username, state, csrf and last_seen_us over the row of
 * session->session_id. ERR_NOT_FOUND when it is gone. */
status_t store_txn_session_update(store_txn_t *txn, const store_session_t *session, err_t *err);
/* Gives the session of old_session_id the id session->session_id (a new cookie, so that a
 * session id known before signing in is worth nothing after it), moves its authorization
 * requests along and writes the fields store_txn_session_update writes. The old id finds
 * nothing afterwards. ERR_NOT_FOUND when the old session is gone. */
status_t store_txn_session_renew(store_txn_t *txn, const char *old_session_id,
                                 const store_session_t *session, err_t *err);
/* Ends a session with its authorization requests (a no-op when it is gone). */
status_t store_txn_session_delete(store_txn_t *txn, const char *session_id, err_t *err);
/* Ends every session of an account (a disabled account, a reset password); *out_n (may be
 * NULL) how many. */
status_t store_txn_session_delete_account(store_txn_t *txn, const char *account_id, int64_t *out_n,
                                          err_t *err);
/* Removes the sessions that expired at or before now_us and the authorization requests that
 * expired or whose session is gone; *out_n (may be NULL) the sessions removed. */
status_t store_txn_session_purge(store_txn_t *txn, int64_t now_us, int64_t *out_n, err_t *err);

/* An authorization request checked by /oauth2/authorize and waiting for its session to sign
 * in (and, for staff, to choose a patient). */
typedef struct {
    const char *request_id; /* random, carried by the pages' forms */
    const char *session_id; /* the session it was made in: only that session may complete it */
    const char *client_id;
    const char *redirect_uri;   /* exactly a registered one */
    const char *scope;          /* the scopes to grant (asked for and allowed), space-separated */
    const char *state;          /* the client's, or NULL */
    const char *code_challenge; /* PKCE S256 */
    const char *nonce;          /* OpenID Connect's, or NULL */
    const char *aud;            /* as given, or NULL */
    int64_t created_us, expires_us;
} store_authz_request_t;

/* Adds a request (every field as given). */
status_t store_txn_authz_request_create(store_txn_t *txn, const store_authz_request_t *request,
                                        err_t *err);
/* The request of request_id, whatever its expiry, or ERR_NOT_FOUND. Strings in arena. */
status_t store_authz_request_get(store_conn_t *conn, const char *request_id, arena_t *arena,
                                 store_authz_request_t *out, err_t *err);
/* Removes a request; *out_deleted (may be NULL) false when it was gone already (completed by
 * another request: a request is completed once). */
status_t store_txn_authz_request_delete(store_txn_t *txn, const char *request_id, bool *out_deleted,
                                        err_t *err);

/* ---- the audit trail ---------------------------------------------------------------------- */

/*
 * Who did what to whose record (docs/security.md, "Audit trail"). A write's row is added
 * unsealed (seq 0, hash NULL) by the write's own transaction and sealed later by src/auth
 * (auth/audit.h) in a transaction of its own; the rows of src/auth's queue of reads are
 * inserted sealed. Either way they are numbered 1, 2, 3, ... without gaps in the order of
 * sealing and hashed into the chain (auth/chain.h). The table is
 * not a FHIR resource table: it has no versions, no index rows and no outbox events.
 */
typedef struct {
    int64_t id;       /* insertion order (the AuditEvent id); set by the store */
    int64_t seq;      /* position in the chain; 0 until sealed */
    const char *hash; /* the chain hash as 64 lower-case hex digits; NULL until sealed */
    int64_t time_us;  /* when, in microseconds since 1970 UTC */
    const char *user; /* the account's username, or the client id of a client alone */
    const char *role;
    const char *client;
    const char *patient; /* the Patient id the record is about, or NULL */
    const char *action;  /* read, vread, history, search, everything, create, ..., login */
    const char *type;    /* resource type */
    const char *resource_id;
    const char *query;   /* a search's query string */
    const char *outcome; /* the HTTP status, e.g. "200" */
    const char *source;  /* the caller's network address */
    const char *detail;  /* e.g. an emergency access reason */
} store_audit_row_t;

/* Adds rows[0..n) (their id is ignored): a row with seq > 0 sealed with that seq and hash
 * (the caller, src/auth, keeps the chain and moves its head), the others unsealed. Up to 32
 * rows per statement. Rolled back with the transaction. */
status_t store_txn_audit_add(store_txn_t *txn, const store_audit_row_t *rows, size_t n, err_t *err);
/* Up to limit unsealed rows that the transaction sees, in insertion order; in arena. */
status_t store_txn_audit_unsealed(store_txn_t *txn, size_t limit, arena_t *arena,
                                  store_audit_row_t **out, size_t *out_n, err_t *err);
/* The chain head: the last seq sealed (0: none) and its hash (NULL: none). On PostgreSQL the
 * head row stays locked until the transaction ends, which makes sealers in several processes
 * take turns. */
status_t store_txn_audit_head(store_txn_t *txn, arena_t *arena, int64_t *out_seq,
                              const char **out_hash, err_t *err);
/* Seals row id with seq and hash (hex). ERR_CONFLICT when it is sealed already. */
status_t store_txn_audit_seal(store_txn_t *txn, int64_t id, int64_t seq, const char *hash,
                              err_t *err);
/* Moves the chain head to seq and hash. */
status_t store_txn_audit_head_set(store_txn_t *txn, int64_t seq, const char *hash, err_t *err);
/* The chain head as committed (without a lock). */
status_t store_audit_head(store_conn_t *conn, arena_t *arena, int64_t *out_seq,
                          const char **out_hash, err_t *err);
/* Up to limit sealed rows with a seq above after_seq, in seq order; in arena (for verify). */
status_t store_audit_scan(store_conn_t *conn, int64_t after_seq, size_t limit, arena_t *arena,
                          store_audit_row_t **out, size_t *out_n, err_t *err);

typedef struct {
    const char *patient;    /* NULL: any */
    const char *user;       /* NULL: any */
    const char *actions;    /* NULL: any; else a comma-separated list with a comma at each end,
                               ",create,update," */
    const char *type;       /* NULL: any */
    int64_t from_us, to_us; /* time_us in [from_us, to_us) */
    int64_t before_id;      /* a page of rows with a smaller id (0: from the newest) */
    bool oldest_first;      /* instead: rows with an id above after_id, oldest first */
    int64_t after_id;
    size_t count;
} store_audit_query_t;

/* Rows sealed or not that match query, newest (highest id) first (or oldest first); in arena.
 * Reads the primary. */
status_t store_audit_search(store_conn_t *conn, const store_audit_query_t *query, arena_t *arena,
                            store_audit_row_t **out, size_t *out_n, err_t *err);
/* The row of id, or ERR_NOT_FOUND. */
status_t store_audit_get(store_conn_t *conn, int64_t id, arena_t *arena, store_audit_row_t *out,
                         err_t *err);

/* ---- the server's keys ---------------------------------------------------------------------- */

/*
 * Keys of the server itself kept in the database, so that every server on it uses the same
 * one: STORE_SIGNING_KEY, the key that signs id_tokens (src/auth/idtoken.h), when the servers
 * have no key file. As with the accounts' second factors, the store keeps what src/auth gives
 * it: the private key sealed with the server's secrets key (never in the clear), and the
 * key's public id.
 */
#define STORE_SIGNING_KEY "signing"

typedef struct {
    const char *name;   /* STORE_SIGNING_KEY */
    const char *kid;    /* the key's public id (the kid of its JWK) */
    int64_t created_us; /* when it was made */
    const char *sealed; /* the private key, sealed (auth_secrets_seal) */
} store_server_key_t;

/* The key called name, strings in arena; *out_found false (and *out untouched) when there is
 * none. */
status_t store_server_key_get(store_conn_t *conn, const char *name, arena_t *arena,
                              store_server_key_t *out, bool *out_found, err_t *err);
/*
 * Adds key unless the database holds a key of its name already (*out_added, may be NULL, says
 * which): of servers that start at once on one database and each add a key of their own, one
 * adds it, and all of them read back that one with store_server_key_get after their commit.
 * Also the load of a copy (concerto migrate-data).
 */
status_t store_txn_server_key_add(store_txn_t *txn, const store_server_key_t *key, bool *out_added,
                                  err_t *err);
/* Every key, by name, strings in arena (copying a database). */
status_t store_server_key_list(store_conn_t *conn, arena_t *arena, store_server_key_t **out,
                               size_t *out_n, err_t *err);

/* ---- HL7 messages ------------------------------------------------------------------------ */

/*
 * The HL7 v2 messages received over MLLP (src/hl7), each stored as it came before anything is
 * done with it, with what became of it. (sender, control_id) is unique among messages with a
 * control id, so a redelivery finds the first delivery's row and its ACK.
 */
#define STORE_HL7_RECEIVED                                                                     \
    "received"                          /* stored, not processed yet (or its processing failed \
                                           for a reason that may pass: it is tried again) */
#define STORE_HL7_PROCESSED "processed" /* mapped into the record */
#define STORE_HL7_ERROR     "error"     /* refused by the application (an AE): reason says why */
#define STORE_HL7_REJECTED                                              \
    "rejected" /* refused as a message (an AR): unreadable, unsupported \
                  version or type, over the size limit */

typedef struct {
    int64_t id;
    int64_t received_us;
    const char *peer;       /* the address it came from */
    const char *sender;     /* MSH-3 and MSH-4, "application|facility" */
    const char *control_id; /* MSH-10 ("" when it has none) */
    const char *type;       /* MSH-9, "ADT^A01" */
    const char *status;     /* STORE_HL7_* */
    const char *reason;     /* why it is error or rejected, else NULL */
    const char *ack;        /* the reply sent, or NULL */
    int64_t processed_us;   /* 0 until processed */
    int64_t attempts;       /* times its processing ran */
    const char *patient;    /* "Patient/x" it was about, once mapped */
    const char *encounter;  /* "Encounter/y" */
    const char *encoding;   /* how it is kept: "text" or "base64" (store.c's business) */
    const char *text;       /* the message as received (NULL in lists) */
    size_t text_len;
} store_hl7_message_t;

/* Adds a message (received_us, peer, sender, control_id, type, status, reason, ack,
 * processed_us, text) unless one with the same sender and control id exists: *out_new says
 * which, *out_id the new row's id (0 when not new). */
status_t store_txn_hl7_insert(store_txn_t *txn, const store_hl7_message_t *m, int64_t *out_id,
                              bool *out_new, err_t *err);
/* The message with this sender and control id, inside the transaction; *out_found. */
status_t store_txn_hl7_by_control(store_txn_t *txn, const char *sender, const char *control_id,
                                  arena_t *arena, store_hl7_message_t *out, bool *out_found,
                                  err_t *err);
/* The message of id inside the transaction, locked until it ends on PostgreSQL. */
status_t store_txn_hl7_get(store_txn_t *txn, int64_t id, arena_t *arena, store_hl7_message_t *out,
                           bool *out_found, err_t *err);
/* The message of id; ERR_NOT_FOUND. */
status_t store_hl7_get(store_conn_t *conn, int64_t id, arena_t *arena, store_hl7_message_t *out,
                       err_t *err);

/* What became of a message. */
typedef struct {
    int64_t id;
    const char *status, *reason, *ack;
    int64_t processed_us;
    const char *patient, *encounter; /* may be NULL */
} store_hl7_finish_t;
/* Records it (and counts an attempt); ERR_NOT_FOUND. */
status_t store_txn_hl7_finish(store_txn_t *txn, const store_hl7_finish_t *f, err_t *err);

typedef struct {
    const char *status, *type, *sender, *patient, *control_id; /* NULL: any; type "ADT" or
                                                                  "ADT^A03" */
    int64_t from_us, to_us; /* received in [from_us, to_us); to_us 0: no end */
    int64_t before_id;      /* a page of messages with a smaller id (0: from the newest) */
    size_t count;           /* 0: 50 */
} store_hl7_query_t;
/* The messages that match, newest first, without their text; in arena. */
status_t store_hl7_list(store_conn_t *conn, const store_hl7_query_t *q, arena_t *arena,
                        store_hl7_message_t **out, size_t *out_n, err_t *err);

typedef struct {
    const char *status;
    int64_t count;
} store_hl7_count_t;
/* How many messages are in each status. */
status_t store_hl7_counts(store_conn_t *conn, arena_t *arena, store_hl7_count_t **out,
                          size_t *out_n, err_t *err);

/* Copying a database: up to count messages with an id above after_id, in id order, whole; and
 * a load of such messages keeping their ids, into a database that holds none of them. */
status_t store_hl7_scan(store_conn_t *conn, int64_t after_id, size_t count, arena_t *arena,
                        store_hl7_message_t **out, size_t *out_n, err_t *err);
status_t store_txn_hl7_load(store_txn_t *txn, const store_hl7_message_t *messages, size_t n,
                            err_t *err);

#endif
