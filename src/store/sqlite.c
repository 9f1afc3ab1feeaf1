/*
 * sqlite.c - the SQLite driver: the embedded default.
 *
 * WAL journal, synchronous=FULL unless configured otherwise, one connection per thread
 * (opened NOMUTEX: each is used by one thread at a time), prepared statements cached per
 * connection and reset before returning. The writer's connection takes the write lock with
 * BEGIN IMMEDIATE. SQLite result codes become status_t here and nowhere else; SQLite's own
 * text goes to the log-only detail.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "store/sqlite_int.h"
#include "store/sql_search.h"
#include "store/sql_text.h"
#include "store/sql_work.h"

/*
 * The WAL is checkpointed by a thread of its own rather than by the writer's commits (SQLite's
 * automatic checkpoint runs inside the commit that passes 1,000 pages, fsyncs the database
 * file and holds up every write queued behind it): the writer's WAL hook wakes the
 * checkpointer each time the WAL has grown by CHECKPOINT_FRAMES frames, and it copies them
 * into the database with a PASSIVE checkpoint (which never blocks readers or the writer) on
 * its own connection. The writer starts the WAL over once a checkpoint has copied all of it;
 * when the checkpointer falls behind (WAL_MAX_FRAMES), the writer checkpoints itself, so the
 * WAL stays bounded under any load.
 */
#define CHECKPOINT_FRAMES 2000
#define WAL_MAX_FRAMES    8000

typedef struct {
    char *path;
    store_options_t options;
    /* the checkpointer (started with the first writer connection) */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    sqlite3 *checkpoint_handle;
    bool started, stopping, due;
    int woken_at; /* the WAL's frames when the writer last woke it (the writer's alone) */
} sqlite_db_t;

const char *const sqlite__index_tables[FHIR_INDEX_KIND_COUNT] = {
    [FHIR_INDEX_STRING] = "ix_string",     [FHIR_INDEX_TOKEN] = "ix_token",
    [FHIR_INDEX_DATE] = "ix_date",         [FHIR_INDEX_NUMBER] = "ix_number",
    [FHIR_INDEX_QUANTITY] = "ix_quantity", [FHIR_INDEX_REFERENCE] = "ix_reference",
    [FHIR_INDEX_URI] = "ix_uri",           [FHIR_INDEX_COMPOSITE] = "ix_composite",
    [FHIR_INDEX_OF_TYPE] = "ix_of_type",   [FHIR_INDEX_POSITION] = "ix_position",
};

#define COMPOSITE_COLUMNS(i) "c" #i "_system, c" #i "_value, c" #i "_low, c" #i "_high"

static const char *const statement_sql[STMT__COUNT] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_SAVEPOINT] = "SAVEPOINT txn",
    [STMT_RELEASE] = "RELEASE txn",
    [STMT_ROLLBACK_TO] = "ROLLBACK TO txn",
    [STMT_READ_CURRENT] = "SELECT v.version, v.seq, v.updated_us, v.last_updated, v.method, "
                          "v.status, v.deleted, v.json, v.author "
                          "FROM resource r JOIN resource_version v ON v.seq = r.seq "
                          "WHERE r.type = ?1 AND r.id = ?2",
    [STMT_READ_VERSION] =
        "SELECT version, seq, updated_us, last_updated, method, status, deleted, json, author "
        "FROM resource_version WHERE type = ?1 AND id = ?2 AND version = ?3",
    [STMT_CURRENT] = "SELECT version, deleted FROM resource WHERE type = ?1 AND id = ?2",
    [STMT_INSERT_VERSION] =
        "INSERT INTO resource_version (type, id, version, updated_us, last_updated, method, "
        "deleted, json, status, author) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [STMT_UPSERT_CURRENT] =
        "INSERT INTO resource (type, id, version, seq, deleted, updated_us) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
        "ON CONFLICT (type, id) DO UPDATE SET version = excluded.version, seq = excluded.seq, "
        "deleted = excluded.deleted, updated_us = excluded.updated_us RETURNING rid",
    [STMT_COUNT_TYPE] = "SELECT count(*) FROM resource WHERE type = ?1 AND deleted = 0",
    [STMT_COUNT_ALL] = "SELECT count(*) FROM resource WHERE deleted = 0",
    [STMT_RID] = "SELECT rid, deleted FROM resource WHERE type = ?1 AND id = ?2",
    [STMT_SCAN] = "SELECT r.rid, r.type, r.id, v.json, r.version FROM resource r "
                  "JOIN resource_version v ON v.seq = r.seq "
                  "WHERE r.rid > ?1 AND r.deleted = 0 ORDER BY r.rid LIMIT ?2",
    [STMT_CONTAINED_LIST] = "SELECT rid FROM resource_contained WHERE container = ?1",
    [STMT_CONTAINED_DELETE] = "DELETE FROM resource_contained WHERE container = ?1",
    [STMT_CONTAINED_INSERT] =
        "INSERT INTO resource_contained (container, type, id) VALUES (?1, ?2, ?3)",
    [STMT_SCAN_TYPE] = "SELECT r.rid, r.type, r.id, v.json, r.version FROM resource r "
                       "JOIN resource_version v ON v.seq = r.seq "
                       "WHERE r.type = ?3 AND r.deleted = 0 AND r.rid > ?1 ORDER BY r.rid LIMIT ?2",
    [STMT_INSERT_INDEX + FHIR_INDEX_STRING] =
        "INSERT INTO ix_string (rid, type, param, normalized, exact) VALUES (?1, ?2, ?3, ?4, ?5)",
    [STMT_INSERT_INDEX + FHIR_INDEX_TOKEN] =
        "INSERT INTO ix_token (rid, type, param, system, code, text) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [STMT_INSERT_INDEX + FHIR_INDEX_DATE] =
        "INSERT INTO ix_date (rid, type, param, low, high) VALUES (?1, ?2, ?3, ?4, ?5)",
    [STMT_INSERT_INDEX + FHIR_INDEX_NUMBER] =
        "INSERT INTO ix_number (rid, type, param, low, high) VALUES (?1, ?2, ?3, ?4, ?5)",
    [STMT_INSERT_INDEX + FHIR_INDEX_QUANTITY] =
        "INSERT INTO ix_quantity (rid, type, param, system, code, unit, low, high, "
        "canonical_code, canonical_low, canonical_high) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [STMT_INSERT_INDEX + FHIR_INDEX_REFERENCE] =
        "INSERT INTO ix_reference (rid, type, param, target_type, target_id, version, url, "
        "identifier_system, identifier_value) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [STMT_INSERT_INDEX + FHIR_INDEX_URI] =
        "INSERT INTO ix_uri (rid, type, param, value) VALUES (?1, ?2, ?3, ?4)",
    [STMT_INSERT_INDEX + FHIR_INDEX_COMPOSITE] =
        "INSERT INTO ix_composite (rid, type, param, " COMPOSITE_COLUMNS(0) ", " COMPOSITE_COLUMNS(
            1) ", " COMPOSITE_COLUMNS(2) ") "
                                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
                                         "?12, ?13, ?14, ?15)",
    [STMT_INSERT_INDEX + FHIR_INDEX_OF_TYPE] =
        "INSERT INTO ix_of_type (rid, type, param, type_system, type_code, value) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [STMT_INSERT_INDEX + FHIR_INDEX_POSITION] =
        "INSERT INTO ix_position (rid, type, param, latitude, longitude) "
        "VALUES (?1, ?2, ?3, ?4, ?5)",
    [STMT_MATCH_INDEX + FHIR_INDEX_STRING] =
        "SELECT rowid FROM ix_string WHERE rid = ?1 AND type = ?2 "
        "AND param = ?3 AND normalized IS ?4 AND exact IS ?5",
    [STMT_MATCH_INDEX + FHIR_INDEX_TOKEN] =
        "SELECT rowid FROM ix_token WHERE rid = ?1 AND type = ?2 "
        "AND param = ?3 AND system IS ?4 AND code IS ?5 AND text IS ?6",
    [STMT_MATCH_INDEX + FHIR_INDEX_DATE] = "SELECT rowid FROM ix_date WHERE rid = ?1 AND type = ?2 "
                                           "AND param = ?3 AND low IS ?4 AND high IS ?5",
    [STMT_MATCH_INDEX + FHIR_INDEX_NUMBER] =
        "SELECT rowid FROM ix_number WHERE rid = ?1 AND type = ?2 "
        "AND param = ?3 AND low IS ?4 AND high IS ?5",
    [STMT_MATCH_INDEX + FHIR_INDEX_QUANTITY] =
        "SELECT rowid FROM ix_quantity WHERE rid = ?1 AND type = ?2 "
        "AND param = ?3 AND system IS ?4 AND code IS ?5 AND unit IS ?6 AND low IS ?7 AND high IS "
        "?8 AND canonical_code IS ?9 AND canonical_low IS ?10 AND canonical_high IS ?11",
    [STMT_MATCH_INDEX + FHIR_INDEX_REFERENCE] =
        "SELECT rowid FROM ix_reference WHERE rid = ?1 AND type = ?2 "
        "AND param = ?3 AND target_type IS ?4 AND target_id IS ?5 AND version IS ?6 AND url IS ?7 "
        "AND identifier_system IS ?8 AND identifier_value IS ?9",
    [STMT_MATCH_INDEX + FHIR_INDEX_URI] = "SELECT rowid FROM ix_uri WHERE rid = ?1 AND type = ?2 "
                                          "AND param = ?3 AND value IS ?4",
    [STMT_MATCH_INDEX + FHIR_INDEX_COMPOSITE] =
        "SELECT rowid FROM ix_composite WHERE rid = ?1 AND type = ?2 "
        "AND param = ?3 AND c0_system IS ?4 AND c0_value IS ?5 AND c0_low IS ?6 AND c0_high IS ?7 "
        "AND c1_system IS ?8 AND c1_value IS ?9 AND c1_low IS ?10 AND c1_high IS ?11 AND c2_system "
        "IS ?12 AND c2_value IS ?13 AND c2_low IS ?14 AND c2_high IS ?15",
    [STMT_MATCH_INDEX + FHIR_INDEX_OF_TYPE] =
        "SELECT rowid FROM ix_of_type WHERE rid = ?1 AND type = ?2 "
        "AND param = ?3 AND type_system IS ?4 AND type_code IS ?5 AND value IS ?6",
    [STMT_MATCH_INDEX + FHIR_INDEX_POSITION] =
        "SELECT rowid FROM ix_position WHERE rid = ?1 AND type = ?2 "
        "AND param = ?3 AND latitude IS ?4 AND longitude IS ?5",
    [STMT_LIST_INDEX + FHIR_INDEX_STRING] =
        "SELECT rowid FROM ix_string WHERE rid = ?1 ORDER BY rowid",
    [STMT_LIST_INDEX + FHIR_INDEX_TOKEN] =
        "SELECT rowid FROM ix_token WHERE rid = ?1 ORDER BY rowid",
    [STMT_LIST_INDEX + FHIR_INDEX_DATE] = "SELECT rowid FROM ix_date WHERE rid = ?1 ORDER BY rowid",
    [STMT_LIST_INDEX + FHIR_INDEX_NUMBER] =
        "SELECT rowid FROM ix_number WHERE rid = ?1 ORDER BY rowid",
    [STMT_LIST_INDEX + FHIR_INDEX_QUANTITY] =
        "SELECT rowid FROM ix_quantity WHERE rid = ?1 ORDER BY rowid",
    [STMT_LIST_INDEX + FHIR_INDEX_REFERENCE] =
        "SELECT rowid FROM ix_reference WHERE rid = ?1 ORDER BY rowid",
    [STMT_LIST_INDEX + FHIR_INDEX_URI] = "SELECT rowid FROM ix_uri WHERE rid = ?1 ORDER BY rowid",
    [STMT_LIST_INDEX + FHIR_INDEX_COMPOSITE] =
        "SELECT rowid FROM ix_composite WHERE rid = ?1 ORDER BY rowid",
    [STMT_LIST_INDEX + FHIR_INDEX_OF_TYPE] =
        "SELECT rowid FROM ix_of_type WHERE rid = ?1 ORDER BY rowid",
    [STMT_LIST_INDEX + FHIR_INDEX_POSITION] =
        "SELECT rowid FROM ix_position WHERE rid = ?1 ORDER BY rowid",
    [STMT_DROP_INDEX_ROW + FHIR_INDEX_STRING] = "DELETE FROM ix_string WHERE rowid = ?1",
    [STMT_DROP_INDEX_ROW + FHIR_INDEX_TOKEN] = "DELETE FROM ix_token WHERE rowid = ?1",
    [STMT_DROP_INDEX_ROW + FHIR_INDEX_DATE] = "DELETE FROM ix_date WHERE rowid = ?1",
    [STMT_DROP_INDEX_ROW + FHIR_INDEX_NUMBER] = "DELETE FROM ix_number WHERE rowid = ?1",
    [STMT_DROP_INDEX_ROW + FHIR_INDEX_QUANTITY] = "DELETE FROM ix_quantity WHERE rowid = ?1",
    [STMT_DROP_INDEX_ROW + FHIR_INDEX_REFERENCE] = "DELETE FROM ix_reference WHERE rowid = ?1",
    [STMT_DROP_INDEX_ROW + FHIR_INDEX_URI] = "DELETE FROM ix_uri WHERE rowid = ?1",
    [STMT_DROP_INDEX_ROW + FHIR_INDEX_COMPOSITE] = "DELETE FROM ix_composite WHERE rowid = ?1",
    [STMT_DROP_INDEX_ROW + FHIR_INDEX_OF_TYPE] = "DELETE FROM ix_of_type WHERE rowid = ?1",
    [STMT_DROP_INDEX_ROW + FHIR_INDEX_POSITION] = "DELETE FROM ix_position WHERE rowid = ?1",
    [STMT_DELETE_INDEX + FHIR_INDEX_STRING] = "DELETE FROM ix_string WHERE rid = ?1",
    [STMT_DELETE_INDEX + FHIR_INDEX_TOKEN] = "DELETE FROM ix_token WHERE rid = ?1",
    [STMT_DELETE_INDEX + FHIR_INDEX_DATE] = "DELETE FROM ix_date WHERE rid = ?1",
    [STMT_DELETE_INDEX + FHIR_INDEX_NUMBER] = "DELETE FROM ix_number WHERE rid = ?1",
    [STMT_DELETE_INDEX + FHIR_INDEX_QUANTITY] = "DELETE FROM ix_quantity WHERE rid = ?1",
    [STMT_DELETE_INDEX + FHIR_INDEX_REFERENCE] = "DELETE FROM ix_reference WHERE rid = ?1",
    [STMT_DELETE_INDEX + FHIR_INDEX_URI] = "DELETE FROM ix_uri WHERE rid = ?1",
    [STMT_DELETE_INDEX + FHIR_INDEX_COMPOSITE] = "DELETE FROM ix_composite WHERE rid = ?1",
    [STMT_DELETE_INDEX + FHIR_INDEX_OF_TYPE] = "DELETE FROM ix_of_type WHERE rid = ?1",
    [STMT_DELETE_INDEX + FHIR_INDEX_POSITION] = "DELETE FROM ix_position WHERE rid = ?1",
};

/* ---- errors -------------------------------------------------------------------------- */

status_t sqlite__fail(sqlite3 *handle, int code, err_t *err, const char *doing)
{
    int primary = code & 0xFF;
    status_t status;
    const char *message;
    switch (primary) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        status = ERR_UNAVAILABLE;
        message = "the database is busy; retry later";
        break;
    case SQLITE_FULL:
        status = ERR_UNAVAILABLE;
        message = "the database could not grow: the disk is full";
        break;
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
        status = ERR_STORAGE;
        message = "the database cannot be opened for writing";
        break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        status = ERR_STORAGE;
        message = "the database file is damaged or not a Concerto database";
        break;
    default: status = ERR_STORAGE; message = "the database reported an error";
    }
    err_set(err, status, NULL, "%s", message);
    err_log_detail(err, "sqlite: %s: %s (%d)", doing,
                   handle ? sqlite3_errmsg(handle) : sqlite3_errstr(code), code);
    return status;
}

/* ---- schema -------------------------------------------------------------------------- */

/* Migrations in order; migration i brings the schema to version i + 1. Never edit one that
 * has shipped: add a new one. */
static const char *const migrations[] = {
    /* 1: versions and current resources */
    "CREATE TABLE resource_version ("
    "  seq INTEGER PRIMARY KEY,"
    "  type TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  updated_us INTEGER NOT NULL,"
    "  last_updated TEXT NOT NULL,"
    "  method TEXT NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  deleted INTEGER NOT NULL,"
    "  json TEXT,"
    "  UNIQUE (type, id, version)"
    ");"
    "CREATE INDEX resource_version_type_seq ON resource_version (type, seq);"
    "CREATE INDEX resource_version_updated ON resource_version (updated_us);"
    "CREATE TABLE resource ("
    "  rid INTEGER PRIMARY KEY," /* the key index rows refer to */
    "  type TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  deleted INTEGER NOT NULL,"
    "  UNIQUE (type, id)"
    ");",
    /* 2: search: lastUpdated on the current row, and the index tables. Every index row has
       the resource's key (rid), its type and the parameter's code; the (type, param, value)
       indexes serve searches and hold the rid and the columns a search tests (covering: a
       search reads no table row), the (rid, param) ones serve rewriting and sorting. */
    "ALTER TABLE resource ADD COLUMN updated_us INTEGER NOT NULL DEFAULT 0;"
    "UPDATE resource SET updated_us ="
    "  (SELECT v.updated_us FROM resource_version v WHERE v.seq = resource.seq);"
    "CREATE INDEX resource_type_live ON resource (type, deleted);"
    "CREATE INDEX resource_type_updated ON resource (type, deleted, updated_us);"
    "CREATE TABLE ix_string (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,"
    "  normalized TEXT NOT NULL, exact TEXT NOT NULL);"
    "CREATE INDEX ix_string_value ON ix_string (type, param, normalized, rid);"
    "CREATE INDEX ix_string_rid ON ix_string (rid, param, normalized);"
    "CREATE TABLE ix_token (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,"
    "  system TEXT, code TEXT, text TEXT);"
    "CREATE INDEX ix_token_value ON ix_token (type, param, code, system, rid);"
    "CREATE INDEX ix_token_rid ON ix_token (rid, param, code, system);"
    "CREATE TABLE ix_date (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,"
    "  low INTEGER NOT NULL, high INTEGER NOT NULL);"
    "CREATE INDEX ix_date_low ON ix_date (type, param, low, high, rid);"
    "CREATE INDEX ix_date_high ON ix_date (type, param, high, low, rid);"
    "CREATE INDEX ix_date_rid ON ix_date (rid, param, low, high);"
    "CREATE TABLE ix_number (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,"
    "  low REAL NOT NULL, high REAL NOT NULL);"
    "CREATE INDEX ix_number_value ON ix_number (type, param, low, high, rid);"
    "CREATE INDEX ix_number_rid ON ix_number (rid, param, low, high);"
    "CREATE TABLE ix_quantity (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,"
    "  system TEXT, code TEXT, unit TEXT, low REAL NOT NULL, high REAL NOT NULL);"
    "CREATE INDEX ix_quantity_value ON ix_quantity (type, param, low, high, code, system, unit, "
    "rid);"
    "CREATE INDEX ix_quantity_high ON ix_quantity (type, param, high, low, code, system, unit, "
    "rid);"
    "CREATE INDEX ix_quantity_rid ON ix_quantity (rid, param, low, high, code, system, unit);"
    "CREATE TABLE ix_reference (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,"
    "  target_type TEXT, target_id TEXT, version TEXT, url TEXT,"
    "  identifier_system TEXT, identifier_value TEXT);"
    "CREATE INDEX ix_reference_target ON ix_reference (type, param, target_id, target_type, "
    "version, rid);"
    "CREATE INDEX ix_reference_url ON ix_reference (type, param, url, version, rid);"
    "CREATE INDEX ix_reference_back ON ix_reference (target_id, target_type);"
    "CREATE INDEX ix_reference_rid ON ix_reference (rid, param, target_id, target_type, version, "
    "url);"
    "CREATE TABLE ix_uri (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,"
    "  value TEXT NOT NULL);"
    "CREATE INDEX ix_uri_value ON ix_uri (type, param, value, rid);"
    "CREATE INDEX ix_uri_rid ON ix_uri (rid, param, value);"
    "CREATE TABLE ix_composite (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,"
    "  c0_system TEXT, c0_value TEXT, c0_low, c0_high, c1_system TEXT, c1_value TEXT, c1_low,"
    "  c1_high, c2_system TEXT, c2_value TEXT, c2_low, c2_high);"
    "CREATE INDEX ix_composite_value ON ix_composite (type, param, c0_value, c0_system, c1_low,"
    "  c1_high, c1_value, c1_system, rid);"
    "CREATE INDEX ix_composite_rid ON ix_composite (rid, param);"
    "CREATE TABLE ix_of_type (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,"
    "  type_system TEXT, type_code TEXT, value TEXT NOT NULL);"
    "CREATE INDEX ix_of_type_value ON ix_of_type (type, param, value, type_code, type_system, rid);"
    "CREATE INDEX ix_of_type_rid ON ix_of_type (rid, param);",
    /* 3: full text (_content, _text): one row per current resource, rowid = rid; unicode61
       folds case and (remove_diacritics 2) accents. Filled by writes and reindex: a database
       from before needs `concerto reindex` for resources written before it. */
    "CREATE VIRTUAL TABLE ix_text USING fts5(content, narrative, "
    "tokenize = 'unicode61 remove_diacritics 2');",
    /* 4: bulk loads: the definitions of the search indexes a load dropped, to build them
       again after it (or at the next open, when the load was interrupted) */
    "CREATE TABLE deferred_index (name TEXT PRIMARY KEY, sql TEXT NOT NULL);",
    /* 5: contained resources and absolute references to this server. A contained resource
       gets a key of its own in resource_contained, from 2^62 up so that it never meets a
       resource's rid, and index rows of its own type prefixed with '#' ("#Patient"): the
       (type, param, ...) indexes of top-level searches never reach them. The references of
       a container to its contained resources ("#id") are reference rows of type '#' and the
       container's type, keyed by minus the contained resource's key (so no lookup by a
       resource's key meets them). ix_reference_absolute finds the references
       written as absolute urls (_revinclude of any parameter). */
    "CREATE TABLE resource_contained ("
    "  rid INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  container INTEGER NOT NULL,"
    "  type TEXT NOT NULL,"
    "  id TEXT NOT NULL);"
    "INSERT INTO sqlite_sequence (name, seq) VALUES ('resource_contained', 4611686018427387903);"
    "CREATE INDEX resource_contained_container ON resource_contained (container);"
    "CREATE INDEX resource_contained_type ON resource_contained (type);"
    "CREATE INDEX ix_reference_absolute ON ix_reference (url) WHERE url IS NOT NULL;",
    /* 6: the work queues (docs/internals/store.md, "Work queues"). outbox: one event per
       version, written in its transaction, removed when handled; claimed in event_id order
       by a scan of the key (the table holds only what is not yet handled), so the insert
       touches no other index; dead events are few and found by a partial index. job: one
       row per kind and key, due ones found by (state, run_at_us). lease: singleton leases.
       claim_until_us > 0 marks a claim not yet answered. */
    "CREATE TABLE outbox ("
    "  event_id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  seq INTEGER NOT NULL,"
    "  type TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  action INTEGER NOT NULL,"
    "  time_us INTEGER NOT NULL,"
    "  available_us INTEGER NOT NULL DEFAULT 0,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  claimed_by TEXT,"
    "  claim_until_us INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  dead INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX outbox_dead ON outbox (event_id) WHERE dead = 1;"
    "CREATE TABLE job ("
    "  job_id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  kind TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  run_at_us INTEGER NOT NULL,"
    "  payload TEXT,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  claimed_by TEXT,"
    "  claim_until_us INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  state INTEGER NOT NULL DEFAULT 0,"
    "  revision INTEGER NOT NULL DEFAULT 1,"
    "  UNIQUE (kind, key));"
    "CREATE INDEX job_due ON job (state, run_at_us);"
    "CREATE TABLE lease ("
    "  name TEXT PRIMARY KEY,"
    "  holder TEXT NOT NULL,"
    "  until_us INTEGER NOT NULL);",
    /* 7: UCUM quantities also in canonical units (5.4 mg is 0.0054 g), so that a search in
       one unit finds values in another; positions (Location near), by latitude for the
       bounding box of a search. Rows written before need `concerto reindex`. */
    "ALTER TABLE ix_quantity ADD COLUMN canonical_code TEXT;"
    "ALTER TABLE ix_quantity ADD COLUMN canonical_low REAL;"
    "ALTER TABLE ix_quantity ADD COLUMN canonical_high REAL;"
    "CREATE INDEX ix_quantity_canonical_low ON ix_quantity (type, param, canonical_code, "
    "canonical_low, canonical_high, rid) WHERE canonical_code IS NOT NULL;"
    "CREATE INDEX ix_quantity_canonical_high ON ix_quantity (type, param, canonical_code, "
    "canonical_high, canonical_low, rid) WHERE canonical_code IS NOT NULL;"
    "CREATE TABLE ix_position (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,"
    "  latitude REAL NOT NULL, longitude REAL NOT NULL);"
    "CREATE INDEX ix_position_value ON ix_position (type, param, latitude, longitude, rid);"
    "CREATE INDEX ix_position_rid ON ix_position (rid, param, latitude, longitude);",
    /* 8: PostgreSQL's strings in byte order; SQLite's compare so already */
    "SELECT 1",
    /* 9: full text split into words by Concerto (sql_text.h), as PostgreSQL's 9: the FTS5
       columns hold the words joined by spaces, which the ascii tokenizer splits at the
       spaces only; the rows written before are split by concerto_words (migrate). */
    "ALTER TABLE ix_text RENAME TO ix_text_unicode61;"
    "CREATE VIRTUAL TABLE ix_text USING fts5(content, narrative, tokenize = 'ascii');"
    "INSERT INTO ix_text (rowid, content, narrative) SELECT rowid, concerto_words(content), "
    "concerto_words(narrative) FROM ix_text_unicode61;"
    "DROP TABLE ix_text_unicode61;",
    /* 10: accounts, OAuth clients and tokens (sql_auth.c), the same in both drivers */
    sql__auth_schema,
    /* 11: browser sessions and pending authorization requests (sql_session.c), the same in
       both drivers */
    sql__session_schema,
    /* 12: the audit trail and its chain head (sql_audit.c) */
    sql__audit_schema_sqlite,
    /* 13: an authorization code keeps its request's OpenID Connect nonce (sql_auth.c) */
    sql__auth_nonce_schema,
    /* 14: index the resources stored before the mark of those linked to no patient */
    sql__unlinked_reindex_schema,
    /* 15: the work rows of open Tasks and the role pools of unowned ones (sql_work.c), filled
       for the Tasks stored before by a reindex of Task */
    "CREATE TABLE task_work (rid INTEGER PRIMARY KEY, id TEXT NOT NULL, unlinked INTEGER NOT NULL, "
    "patient TEXT, owner TEXT,"
    "  status TEXT NOT NULL, priority INTEGER, due_us INTEGER);"
    "CREATE INDEX task_work_owner ON task_work (owner);"
    "CREATE INDEX task_work_patient ON task_work (patient);"
    "CREATE TABLE task_work_pool (pool TEXT NOT NULL, rid INTEGER NOT NULL,"
    "  PRIMARY KEY (pool, rid)) WITHOUT ROWID;"
    "CREATE INDEX task_work_pool_rid ON task_work_pool (rid);" SQL_TASK_WORK_REINDEX,
    /* 16: the risk rows of RiskAssessments (sql_work.c), filled for those stored before by a
       reindex of RiskAssessment */
    "CREATE TABLE risk_work (rid INTEGER PRIMARY KEY, patient TEXT NOT NULL, when_us INTEGER,"
    "  risk REAL);"
    "CREATE INDEX risk_work_patient ON risk_work (patient, when_us);"
    "CREATE TABLE care_member (member TEXT NOT NULL, rid INTEGER NOT NULL, patient TEXT NOT NULL,"
    "  role TEXT NOT NULL, from_us INTEGER, until_us INTEGER);"
    "CREATE INDEX care_member_member ON care_member (member);"
    "CREATE INDEX care_member_rid ON care_member (rid);" SQL_RISK_WORK_REINDEX,
    /* 17: the HL7 v2 messages received, stored before they are processed (sql_hl7.c) */
    sql__hl7_schema_sqlite,
    /* 18: the author of each version (store_put_t.author); NULL for those written before */
    "ALTER TABLE resource_version ADD COLUMN author TEXT;",
    /* 19: the server's own keys, sealed (sql_server_key.c) */
    sql__server_key_schema,
};

static status_t exec(sqlite3 *handle, const char *sql, err_t *err)
{
    int rc = sqlite3_exec(handle, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sqlite__fail(handle, rc, err, sql);
    return ERR_OK;
}

static status_t open_handle(sqlite_db_t *db, bool create, sqlite3 **out, err_t *err)
{
    sqlite3 *handle = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(db->path, &handle, flags, sqlite__vfs());
    if (rc != SQLITE_OK) {
        if (rc == SQLITE_CANTOPEN) {
            err_set(err, ERR_STORAGE, NULL, "could not open the database \"%s\"", db->path);
            err_log_detail(err, "sqlite: %s", handle ? sqlite3_errmsg(handle) : "cannot open");
        } else {
            sqlite__fail(handle, rc, err, "open");
        }
        sqlite3_close(handle);
        return err->code;
    }
    sqlite3_extended_result_codes(handle, 1);
    sqlite3_busy_timeout(handle, db->options.busy_timeout_ms);
    sqlite__search_functions(handle);
    static const char *const sync_names[] = {"FULL", "NORMAL", "OFF"};
    char pragmas[256];
    snprintf(pragmas, sizeof(pragmas),
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=OFF;"
             "PRAGMA cache_size=-8000; PRAGMA temp_store=MEMORY;",
             sync_names[db->options.synchronous]);
    status_t status = exec(handle, pragmas, err);
    if (status) {
        sqlite3_close(handle);
        return status;
    }
    *out = handle;
    return ERR_OK;
}

static status_t sqlite_open(const char *location, const store_options_t *options, void **out_db,
                            err_t *err)
{
    sqlite_db_t *db = xcalloc(1, sizeof(*db));
    db->path = xstrdup(location);
    db->options = *options;
    pthread_mutex_init(&db->lock, NULL);
    pthread_cond_init(&db->wake, NULL);
    /* open once to create the file and check that it is a database we can write */
    sqlite3 *handle;
    status_t rc = open_handle(db, options->create, &handle, err);
    if (rc) {
        pthread_cond_destroy(&db->wake);
        pthread_mutex_destroy(&db->lock);
        free(db->path);
        free(db);
        return rc;
    }
    sqlite3_close(handle);
    *out_db = db;
    return ERR_OK;
}

static void *checkpointer_main(void *arg)
{
    sqlite_db_t *db = arg;
    pthread_mutex_lock(&db->lock);
    for (;;) {
        while (!db->due && !db->stopping)
            pthread_cond_wait(&db->wake, &db->lock);
        if (db->stopping)
            break;
        db->due = false;
        pthread_mutex_unlock(&db->lock);
        int log_frames = 0, done = 0;
        int rc = sqlite3_wal_checkpoint_v2(db->checkpoint_handle, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                           &log_frames, &done);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
            log_warning("sqlite: checkpoint of the WAL failed: %s",
                        sqlite3_errmsg(db->checkpoint_handle));
        pthread_mutex_lock(&db->lock);
    }
    pthread_mutex_unlock(&db->lock);
    return NULL;
}

/* The writer's WAL hook: the WAL has nframes frames after a commit. */
static int wal_hook(void *arg, sqlite3 *handle, const char *name, int nframes)
{
    sqlite_db_t *db = arg;
    if (nframes >= WAL_MAX_FRAMES) {
        /* the checkpointer cannot keep up (the WAL starts over only once a checkpoint has
           copied all of it): the writer copies what is left itself, as SQLite would */
        sqlite3_wal_checkpoint_v2(handle, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    } else if (nframes < db->woken_at) {
        db->woken_at = 0; /* the WAL started over */
    } else if (nframes >= CHECKPOINT_FRAMES && nframes - db->woken_at >= CHECKPOINT_FRAMES) {
        /* every CHECKPOINT_FRAMES new frames, not after every commit: a page written again and
           again (the last leaf of a table that grows, the B-trees' upper levels) is copied
           once per checkpoint */
        db->woken_at = nframes;
        pthread_mutex_lock(&db->lock);
        db->due = true;
        pthread_cond_signal(&db->wake);
        pthread_mutex_unlock(&db->lock);
    }
    return SQLITE_OK;
}

/* Hands the checkpoints of the writer's handle to the checkpointer (started on first use);
 * when it cannot start, the writer keeps SQLite's automatic checkpoints. */
static void checkpoint_apart(sqlite_db_t *db, sqlite3 *writer)
{
    pthread_mutex_lock(&db->lock);
    bool ok = db->started;
    if (!ok && !db->stopping) {
        err_t err = ERR_INIT;
        if (open_handle(db, false, &db->checkpoint_handle, &err) == ERR_OK) {
            if (pthread_create(&db->thread, NULL, checkpointer_main, db) == 0) {
                db->started = ok = true;
            } else {
                sqlite3_close(db->checkpoint_handle);
                db->checkpoint_handle = NULL;
            }
        }
        err_release(&err);
    }
    pthread_mutex_unlock(&db->lock);
    if (ok) {
        sqlite3_wal_autocheckpoint(writer, 0);
        sqlite3_wal_hook(writer, wal_hook, db);
    }
}

static void sqlite_close(void *opaque)
{
    sqlite_db_t *db = opaque;
    pthread_mutex_lock(&db->lock);
    db->stopping = true;
    pthread_cond_signal(&db->wake);
    bool started = db->started;
    pthread_mutex_unlock(&db->lock);
    if (started) {
        pthread_join(db->thread, NULL);
        sqlite3_close(db->checkpoint_handle);
    }
    pthread_cond_destroy(&db->wake);
    pthread_mutex_destroy(&db->lock);
    free(db->path);
    free(db);
}

static status_t restore_indexes(sqlite3 *handle, int64_t *out_count, err_t *err);

static status_t sqlite_migrate(void *opaque, int *out_version, err_t *err)
{
    sqlite_db_t *db = opaque;
    sqlite3 *handle;
    status_t rc = open_handle(db, false, &handle, err);
    if (rc)
        return rc;
    /* Search indexes to build (a bulk load deferred them): without other connections, with a
     * rollback journal rather than the WAL, which would write every new page twice. When
     * another process has the database open the mode stays WAL. */
    bool rejournal = false;
    sqlite3_stmt *pending;
    if (sqlite3_prepare_v2(handle, "SELECT 1 FROM deferred_index LIMIT 1", -1, &pending, NULL) ==
        SQLITE_OK) {
        if (sqlite3_step(pending) == SQLITE_ROW)
            rejournal = true;
        sqlite3_finalize(pending);
    }
    if (rejournal)
        rejournal =
            sqlite3_exec(handle, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) == SQLITE_OK;
    rc = exec(handle,
              "BEGIN IMMEDIATE;"
              "CREATE TABLE IF NOT EXISTS schema_migration ("
              "  version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);",
              err);
    if (rc)
        goto out;
    sqlite3_stmt *stmt;
    int version = 0;
    if (sqlite3_prepare_v2(handle, "SELECT coalesce(max(version), 0) FROM schema_migration", -1,
                           &stmt, NULL) != SQLITE_OK) {
        rc = sqlite__fail(handle, sqlite3_errcode(handle), err, "read schema version");
        goto rollback;
    }
    if (sqlite3_step(stmt) == SQLITE_ROW)
        version = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    int latest = (int)(sizeof(migrations) / sizeof(migrations[0]));
    if (version > latest) {
        rc = err_set(err, ERR_STORAGE, NULL,
                     "the database is at schema version %d, newer than this Concerto (%d)", version,
                     latest);
        goto rollback;
    }
    if (version >= 1 && version < 2) {
        /* the index tables start empty: say how to fill them */
        sqlite3_stmt *count;
        if (sqlite3_prepare_v2(handle, "SELECT count(*) FROM resource", -1, &count, NULL) ==
                SQLITE_OK &&
            sqlite3_step(count) == SQLITE_ROW && sqlite3_column_int64(count, 0) > 0)
            log_info("%s: search indexes are new in schema version 2: run concerto reindex "
                     "to index the resources already stored",
                     db->path);
        sqlite3_finalize(count);
    }
    if (version >= 1 && version < 5) {
        sqlite3_stmt *count;
        if (sqlite3_prepare_v2(handle, "SELECT count(*) FROM resource", -1, &count, NULL) ==
                SQLITE_OK &&
            sqlite3_step(count) == SQLITE_ROW && sqlite3_column_int64(count, 0) > 0)
            log_info("%s: contained resources are indexed from schema version 5: run concerto "
                     "reindex to index those already stored",
                     db->path);
        sqlite3_finalize(count);
    }
    for (int v = version; v < latest; v++) {
        rc = exec(handle, migrations[v], err);
        if (rc)
            goto rollback;
        char record[160];
        snprintf(record, sizeof(record),
                 "INSERT INTO schema_migration VALUES (%d, strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ'))",
                 v + 1);
        rc = exec(handle, record, err);
        if (rc)
            goto rollback;
    }
    /* a bulk load that stopped before it rebuilt the search indexes: build them now */
    int64_t deferred = 0;
    rc = restore_indexes(handle, &deferred, err);
    if (rc)
        goto rollback;
    rc = exec(handle, "COMMIT", err);
    if (rc)
        goto rollback;
    if (deferred)
        log_info("%s: built %lld search indexes that a bulk load had deferred", db->path,
                 (long long)deferred);
    *out_version = latest;
    goto out;
rollback:
    sqlite3_exec(handle, "ROLLBACK", NULL, NULL, NULL);
out:
    if (rejournal)
        sqlite3_exec(handle, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    sqlite3_close(handle);
    return rc;
}

static void defer_sync(sqlite_db_t *db, sqlite_conn_t *conn);

static status_t sqlite_connect(void *opaque, bool writer, void **out_conn, err_t *err)
{
    sqlite_db_t *db = opaque;
    sqlite_conn_t *conn = xcalloc(1, sizeof(*conn));
    status_t rc = open_handle(db, false, &conn->handle, err);
    if (rc) {
        free(conn);
        return rc;
    }
    conn->writer = writer;
    conn->full_sync = db->options.synchronous == STORE_SYNC_FULL;
    conn->wal_fd = -1;
    if (writer) {
        checkpoint_apart(db, conn->handle);
        if (conn->full_sync)
            defer_sync(db, conn);
    }
    *out_conn = conn;
    return ERR_OK;
}

/*
 * With synchronous=FULL, every commit syncs the WAL before it returns, and the writer waits
 * for the disk doing nothing. Instead the writer's commits are made with synchronous=NORMAL
 * (written to the WAL, not synced) and the store syncs the WAL on a thread of its own
 * (sync_commits) before it reports any of them done: the writer runs the next transaction
 * meanwhile, and a report still means durable. The WAL is a log whose frames count only up
 * to the last intact commit, so a crash loses no commit that was reported, and the commits
 * it may lose come after every reported one. Checkpoints sync the WAL before they copy it
 * (NORMAL does too). Left as it is when the WAL cannot be opened (a database not in WAL
 * mode).
 */
static void defer_sync(sqlite_db_t *db, sqlite_conn_t *conn)
{
    char *wal = xasprintf("%s-wal", db->path);
    int fd = open(wal, O_RDWR | O_CLOEXEC);
    free(wal);
    if (fd < 0)
        return;
    if (sqlite3_exec(conn->handle, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK) {
        close(fd);
        return;
    }
    conn->wal_fd = fd;
    conn->full_sync = false; /* begin_relaxed has nothing to relax */
}

static bool sqlite_defers_sync(void *opaque)
{
    return ((sqlite_conn_t *)opaque)->wal_fd >= 0;
}

static status_t sqlite_sync_commits(void *opaque, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    if (fdatasync(conn->wal_fd) != 0)
        return err_set(err, ERR_STORAGE, NULL, "could not sync the database's log: %s",
                       strerror(errno));
    return ERR_OK;
}

static void sqlite_disconnect(void *opaque)
{
    sqlite_conn_t *conn = opaque;
    for (int i = 0; i < STMT__COUNT; i++)
        sqlite3_finalize(conn->statements[i]);
    for (int i = 0; i < SQLITE_QUEUE_STATEMENTS; i++)
        sqlite3_finalize(conn->queue_statements[i]);
    for (int i = 0; i < STORE_AUTH_STATEMENTS; i++)
        sqlite3_finalize(conn->auth_statements[i]);
    for (int i = 0; i < SQLITE_CACHED_STATEMENTS; i++) {
        sqlite3_finalize(conn->cache[i].stmt);
        free(conn->cache[i].sql);
    }
    sqlite3_close(conn->handle);
    if (conn->wal_fd >= 0)
        close(conn->wal_fd);
    sqlite__text_free(conn);
    free(conn);
}

static bool sqlite_park(void *opaque)
{
    sqlite_conn_t *conn = opaque;
    if (conn->writer || !sqlite3_get_autocommit(conn->handle))
        return false;
    sqlite3_db_release_memory(conn->handle); /* its page cache; the parsed schema stays */
    return true;
}

static status_t prepare(sqlite_conn_t *conn, int which, sqlite3_stmt **out, err_t *err)
{
    if (!conn->statements[which]) {
        int rc = sqlite3_prepare_v3(conn->handle, statement_sql[which], -1,
                                    SQLITE_PREPARE_PERSISTENT, &conn->statements[which], NULL);
        if (rc != SQLITE_OK)
            return sqlite__fail(conn->handle, rc, err, statement_sql[which]);
    }
    *out = conn->statements[which];
    return ERR_OK;
}

/* Runs one of the statements that return no row (transaction control). */
static status_t step_simple(sqlite_conn_t *conn, int which, err_t *err)
{
    sqlite3_stmt *stmt = NULL;
    status_t status = prepare(conn, which, &stmt, err);
    if (status)
        return status;
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE)
        return sqlite__fail(conn->handle, rc, err, statement_sql[which]);
    return ERR_OK;
}

status_t sqlite__prepare_cached(sqlite_conn_t *conn, const char *sql, sqlite3_stmt **out,
                                err_t *err)
{
    sqlite_cached_t *victim = &conn->cache[0];
    for (int i = 0; i < SQLITE_CACHED_STATEMENTS; i++) {
        sqlite_cached_t *c = &conn->cache[i];
        if (c->sql && strcmp(c->sql, sql) == 0) {
            c->used = ++conn->clock;
            *out = c->stmt;
            return ERR_OK;
        }
        if (!c->sql || (victim->sql && c->used < victim->used))
            victim = c;
    }
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v3(conn->handle, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
    if (rc != SQLITE_OK)
        return sqlite__fail(conn->handle, rc, err, sql);
    sqlite3_finalize(victim->stmt);
    free(victim->sql);
    victim->sql = xstrdup(sql);
    victim->stmt = stmt;
    victim->used = ++conn->clock;
    *out = stmt;
    return ERR_OK;
}

const char *sqlite__column_text(sqlite3_stmt *stmt, int column, arena_t *arena, size_t *out_len)
{
    const unsigned char *text = sqlite3_column_text(stmt, column);
    size_t len = (size_t)sqlite3_column_bytes(stmt, column);
    if (out_len)
        *out_len = len;
    if (!text)
        return NULL;
    return arena_strndup(arena, (const char *)text, len);
}

/* Columns: version, seq, updated_us, last_updated, method, status, deleted, json, author. */
static void row_to_version(sqlite3_stmt *stmt, int first, arena_t *arena, store_version_t *out)
{
    out->version = sqlite3_column_int64(stmt, first + 0);
    out->seq = sqlite3_column_int64(stmt, first + 1);
    out->updated_us = sqlite3_column_int64(stmt, first + 2);
    out->last_updated = sqlite__column_text(stmt, first + 3, arena, NULL);
    out->method = sqlite__column_text(stmt, first + 4, arena, NULL);
    out->status = sqlite3_column_int(stmt, first + 5);
    out->deleted = sqlite3_column_int(stmt, first + 6) != 0;
    out->json = sqlite__column_text(stmt, first + 7, arena, &out->json_len);
    if (!out->json)
        out->json_len = 0;
    out->author = sqlite__column_text(stmt, first + 8, arena, NULL);
}

static status_t sqlite_read(void *opaque, const char *type, const char *id, int64_t version,
                            arena_t *arena, store_version_t *out, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt;
    status_t status = prepare(conn, version ? STMT_READ_VERSION : STMT_READ_CURRENT, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_text(stmt, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, id, -1, SQLITE_STATIC);
    if (version)
        sqlite3_bind_int64(stmt, 3, version);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        out->type = arena_strdup(arena, type);
        out->id = arena_strdup(arena, id);
        row_to_version(stmt, 0, arena, out);
        status = ERR_OK;
    } else if (rc == SQLITE_DONE) {
        status = version ? err_set(err, ERR_NOT_FOUND, NULL, "%s/%s has no version %lld", type, id,
                                   (long long)version)
                         : err_set(err, ERR_NOT_FOUND, NULL, "%s/%s is not known", type, id);
    } else {
        status = sqlite__fail(conn->handle, rc, err, "read");
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return status;
}

/* ` AND the version's resource is visible` (?7 on), and its binds. */
static const char *history_visible(const store_history_query_t *q, arena_t *arena,
                                   const char *binds[SQL_VISIBLE_BINDS])
{
    if (!q->visibility)
        return "";
    buf_t b = BUF_INIT;
    buf_addstr(&b, " AND EXISTS (SELECT 1 FROM resource a WHERE a.type = resource_version.type "
                   "AND a.id = resource_version.id AND ");
    sql__visible(&sql__sqlite, q->visibility, "a", 7, arena, &b, binds);
    buf_addch(&b, ')');
    const char *out = arena_strndup(arena, b.ptr, b.len);
    buf_release(&b);
    return out;
}

static void history_bind_visible(sqlite3_stmt *stmt, const store_history_query_t *q,
                                 const char *const binds[SQL_VISIBLE_BINDS])
{
    if (!q->visibility)
        return;
    for (int i = 0; i < SQL_VISIBLE_BINDS; i++)
        sqlite3_bind_text(stmt, 7 + i, binds[i], -1, SQLITE_STATIC);
}

static status_t sqlite_history(void *opaque, const store_history_query_t *q, arena_t *arena,
                               store_history_t *out, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    /* The WHERE clause is assembled from fixed fragments; every value is a bound parameter. */
    const char *vbinds[SQL_VISIBLE_BINDS];
    const char *visible = history_visible(q, arena, vbinds);
    bool newer = q->after_seq > 0;
    const char *sql = arena_printf(
        arena,
        "SELECT type, id, version, seq, updated_us, last_updated, method, status, deleted, json, "
        "author FROM resource_version WHERE 1=1%s%s%s%s%s ORDER BY seq %s LIMIT ?6",
        q->type ? " AND type = ?1" : "", q->id ? " AND id = ?2" : "",
        q->since_us != INT64_MIN ? " AND updated_us >= ?3" : "",
        newer ? " AND seq > ?5" : " AND seq < ?4", visible, newer ? "ASC" : "DESC");
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v2(conn->handle, sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return sqlite__fail(conn->handle, rc, err, "history");
    if (q->type)
        sqlite3_bind_text(stmt, 1, q->type, -1, SQLITE_STATIC);
    if (q->id)
        sqlite3_bind_text(stmt, 2, q->id, -1, SQLITE_STATIC);
    if (q->since_us != INT64_MIN)
        sqlite3_bind_int64(stmt, 3, q->since_us);
    sqlite3_bind_int64(stmt, 4, q->before_seq);
    sqlite3_bind_int64(stmt, 5, q->after_seq);
    sqlite3_bind_int64(stmt, 6, (sqlite3_int64)q->count + 1);
    history_bind_visible(stmt, q, vbinds);

    out->versions = arena_alloc(arena, (q->count + 1) * sizeof(store_version_t));
    out->n = 0;
    out->total = -1;
    bool extra = false;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (out->n == q->count) {
            extra = true;
            break;
        }
        store_version_t *v = &out->versions[out->n++];
        v->type = sqlite__column_text(stmt, 0, arena, NULL);
        v->id = sqlite__column_text(stmt, 1, arena, NULL);
        row_to_version(stmt, 2, arena, v);
    }
    status_t status = ERR_OK;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        status = sqlite__fail(conn->handle, rc, err, "history");
    sqlite3_finalize(stmt);
    if (status)
        return status;
    if (newer) {
        /* fetched oldest first: put newest first like every page */
        for (size_t i = 0; i < out->n / 2; i++) {
            store_version_t tmp = out->versions[i];
            out->versions[i] = out->versions[out->n - 1 - i];
            out->versions[out->n - 1 - i] = tmp;
        }
        out->more_newer = extra;
        out->more_older = true; /* we came from an older page */
    } else {
        out->more_older = extra;
        out->more_newer = q->before_seq != INT64_MAX;
    }
    if (q->want_total) {
        sql = arena_printf(arena, "SELECT count(*) FROM resource_version WHERE 1=1%s%s%s%s",
                           q->type ? " AND type = ?1" : "", q->id ? " AND id = ?2" : "",
                           q->since_us != INT64_MIN ? " AND updated_us >= ?3" : "", visible);
        rc = sqlite3_prepare_v2(conn->handle, sql, -1, &stmt, NULL);
        if (rc != SQLITE_OK)
            return sqlite__fail(conn->handle, rc, err, "history count");
        if (q->type)
            sqlite3_bind_text(stmt, 1, q->type, -1, SQLITE_STATIC);
        if (q->id)
            sqlite3_bind_text(stmt, 2, q->id, -1, SQLITE_STATIC);
        if (q->since_us != INT64_MIN)
            sqlite3_bind_int64(stmt, 3, q->since_us);
        history_bind_visible(stmt, q, vbinds);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
            out->total = sqlite3_column_int64(stmt, 0);
        else
            status = sqlite__fail(conn->handle, rc, err, "history count");
        sqlite3_finalize(stmt);
    }
    return status;
}

static status_t sqlite_count(void *opaque, const char *type, int64_t *out, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt;
    status_t status = prepare(conn, type ? STMT_COUNT_TYPE : STMT_COUNT_ALL, &stmt, err);
    if (status)
        return status;
    if (type)
        sqlite3_bind_text(stmt, 1, type, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(stmt, 0);
    else
        status = sqlite__fail(conn->handle, rc, err, "count");
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return status;
}

/* ---- transactions -------------------------------------------------------------------- */

static status_t sqlite_begin(void *opaque, err_t *err)
{
    return step_simple(opaque, STMT_BEGIN, err);
}

/* In WAL mode synchronous=NORMAL commits without syncing the WAL; the next commit with
 * synchronous=FULL syncs it up to its own frames, so the earlier commits with them. The level
 * cannot change inside a transaction: it is set before BEGIN and put back after its end. */
static status_t sqlite_begin_relaxed(void *opaque, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    if (!conn->full_sync)
        return sqlite_begin(opaque, err);
    status_t rc = exec(conn->handle, "PRAGMA synchronous=NORMAL", err);
    if (rc)
        return rc;
    conn->relaxed_now = true;
    if ((rc = sqlite_begin(opaque, err))) {
        sqlite3_exec(conn->handle, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
        conn->relaxed_now = false;
    }
    return rc;
}

static void end_relaxed(sqlite_conn_t *conn)
{
    if (conn->relaxed_now && sqlite3_get_autocommit(conn->handle)) {
        sqlite3_exec(conn->handle, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
        conn->relaxed_now = false;
    }
}

static status_t sqlite_commit(void *opaque, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    status_t rc = sqlite__text_commit(conn, err);
    if (!rc)
        rc = step_simple(conn, STMT_COMMIT, err);
    end_relaxed(conn);
    return rc;
}

static void sqlite_rollback(void *opaque)
{
    sqlite_conn_t *conn = opaque;
    sqlite__text_clear(conn);
    if (!sqlite3_get_autocommit(conn->handle))
        sqlite3_exec(conn->handle, "ROLLBACK", NULL, NULL, NULL);
    end_relaxed(conn);
}

static status_t sqlite_savepoint(void *opaque, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    status_t rc = step_simple(conn, STMT_SAVEPOINT, err);
    if (!rc)
        sqlite__text_savepoint(conn);
    return rc;
}

static status_t sqlite_release(void *opaque, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    status_t rc = step_simple(conn, STMT_RELEASE, err);
    if (!rc)
        sqlite__text_release(conn);
    return rc;
}

/* (the savepoint stays open: a release follows) */
static void sqlite_rollback_to(void *opaque)
{
    sqlite_conn_t *conn = opaque;
    sqlite__text_rollback_to(conn);
    err_t ignored = ERR_INIT;
    step_simple(conn, STMT_ROLLBACK_TO, &ignored);
    err_release(&ignored);
}

static status_t sqlite_current(void *opaque, const char *type, const char *id, store_current_t *out,
                               err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt;
    status_t status = prepare(conn, STMT_CURRENT, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_text(stmt, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        out->version = sqlite3_column_int64(stmt, 0);
        out->deleted = sqlite3_column_int(stmt, 1) != 0;
    } else if (rc == SQLITE_DONE) {
        out->version = 0;
        out->deleted = false;
    } else {
        status = sqlite__fail(conn->handle, rc, err, "current version");
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return status;
}

static void bind_opt_text(sqlite3_stmt *stmt, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(stmt, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, i);
}

/* Doubles outside SQLite's range of REAL are its infinities already; NaN never reaches here. */
static void bind_double(sqlite3_stmt *stmt, int i, double d)
{
    sqlite3_bind_double(stmt, i, d);
}

/* The four columns of one component of a composite row, from parameter `first`. */
static void bind_component(sqlite3_stmt *stmt, int first, const fhir_index_value_t *v)
{
    const char *system = NULL, *value = NULL;
    switch (v->kind) {
    case FHIR_INDEX_STRING: value = v->as.string.normalized; break;
    case FHIR_INDEX_TOKEN:
        system = v->as.token.system;
        value = v->as.token.code;
        break;
    case FHIR_INDEX_QUANTITY:
        system = v->as.quantity.system;
        value = v->as.quantity.code;
        break;
    case FHIR_INDEX_REFERENCE:
        system = v->as.reference.type;
        value = v->as.reference.type ? v->as.reference.id : v->as.reference.url;
        break;
    case FHIR_INDEX_URI: value = v->as.uri.value; break;
    default: break;
    }
    bind_opt_text(stmt, first, system);
    bind_opt_text(stmt, first + 1, value);
    switch (v->kind) {
    case FHIR_INDEX_DATE:
        sqlite3_bind_int64(stmt, first + 2, v->as.date.low);
        sqlite3_bind_int64(stmt, first + 3, v->as.date.high);
        break;
    case FHIR_INDEX_NUMBER:
        bind_double(stmt, first + 2, v->as.number.low);
        bind_double(stmt, first + 3, v->as.number.high);
        break;
    case FHIR_INDEX_QUANTITY:
        bind_double(stmt, first + 2, v->as.quantity.low);
        bind_double(stmt, first + 3, v->as.quantity.high);
        break;
    default: sqlite3_bind_null(stmt, first + 2); sqlite3_bind_null(stmt, first + 3);
    }
}

/* Binds row of resource rid to stmt: rid, type, param, then the columns of its kind (the
 * parameters of an insert and of a match). */
static void bind_row(sqlite3_stmt *stmt, int64_t rid, const char *type, const fhir_index_row_t *row)
{
    const fhir_index_value_t *v = &row->value;
    sqlite3_bind_int64(stmt, 1, rid);
    sqlite3_bind_text(stmt, 2, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, row->param, -1, SQLITE_STATIC);
    switch (v->kind) {
    case FHIR_INDEX_STRING:
        sqlite3_bind_text(stmt, 4, v->as.string.normalized, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 5, v->as.string.exact, -1, SQLITE_STATIC);
        break;
    case FHIR_INDEX_TOKEN:
        bind_opt_text(stmt, 4, v->as.token.system);
        bind_opt_text(stmt, 5, v->as.token.code);
        bind_opt_text(stmt, 6, v->as.token.text);
        break;
    case FHIR_INDEX_DATE:
        sqlite3_bind_int64(stmt, 4, v->as.date.low);
        sqlite3_bind_int64(stmt, 5, v->as.date.high);
        break;
    case FHIR_INDEX_NUMBER:
        bind_double(stmt, 4, v->as.number.low);
        bind_double(stmt, 5, v->as.number.high);
        break;
    case FHIR_INDEX_QUANTITY:
        bind_opt_text(stmt, 4, v->as.quantity.system);
        bind_opt_text(stmt, 5, v->as.quantity.code);
        bind_opt_text(stmt, 6, v->as.quantity.unit);
        bind_double(stmt, 7, v->as.quantity.low);
        bind_double(stmt, 8, v->as.quantity.high);
        bind_opt_text(stmt, 9, v->as.quantity.canonical_code);
        if (v->as.quantity.canonical_code) {
            bind_double(stmt, 10, v->as.quantity.canonical_low);
            bind_double(stmt, 11, v->as.quantity.canonical_high);
        } else {
            sqlite3_bind_null(stmt, 10);
            sqlite3_bind_null(stmt, 11);
        }
        break;
    case FHIR_INDEX_REFERENCE:
        bind_opt_text(stmt, 4, v->as.reference.type);
        bind_opt_text(stmt, 5, v->as.reference.id);
        bind_opt_text(stmt, 6, v->as.reference.version);
        bind_opt_text(stmt, 7, v->as.reference.url);
        bind_opt_text(stmt, 8, v->as.reference.identifier_system);
        bind_opt_text(stmt, 9, v->as.reference.identifier_value);
        break;
    case FHIR_INDEX_URI: sqlite3_bind_text(stmt, 4, v->as.uri.value, -1, SQLITE_STATIC); break;
    case FHIR_INDEX_POSITION:
        bind_double(stmt, 4, v->as.position.latitude);
        bind_double(stmt, 5, v->as.position.longitude);
        break;
    case FHIR_INDEX_COMPOSITE:
        for (size_t i = 0; i < 3; i++) {
            if (i < v->as.composite.ncomponents) {
                bind_component(stmt, 4 + 4 * (int)i, &v->as.composite.components[i]);
            } else {
                for (int k = 0; k < 4; k++)
                    sqlite3_bind_null(stmt, 4 + 4 * (int)i + k);
            }
        }
        break;
    case FHIR_INDEX_OF_TYPE:
        bind_opt_text(stmt, 4, v->as.of_type.type_system);
        bind_opt_text(stmt, 5, v->as.of_type.type_code);
        sqlite3_bind_text(stmt, 6, v->as.of_type.value, -1, SQLITE_STATIC);
        break;
    }
}

static status_t insert_row(sqlite_conn_t *conn, int64_t rid, const char *type,
                           const fhir_index_row_t *row, err_t *err)
{
    sqlite3_stmt *stmt = NULL;
    status_t status = prepare(conn, STMT_INSERT_INDEX + row->value.kind, &stmt, err);
    if (status)
        return status;
    bind_row(stmt, rid, type, row);
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (rc != SQLITE_DONE)
        return sqlite__fail(conn->handle, rc, err, "insert index row");
    return ERR_OK;
}

typedef struct {
    int64_t *rowid; /* ascending */
    bool *kept;
    size_t n, cap;
} index_rows_t;

static int rowid_cmp(const void *key, const void *item)
{
    int64_t a = *(const int64_t *)key, b = *(const int64_t *)item;
    return a < b ? -1 : a > b;
}

/* Adds the rowids stmt (bound) returns to out, and resets it. */
static status_t list_rows(sqlite_conn_t *conn, sqlite3_stmt *stmt, index_rows_t *out,
                          const char *what, err_t *err)
{
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (out->n == out->cap) {
            out->cap = out->cap ? 2 * out->cap : 32;
            out->rowid = xrealloc(out->rowid, out->cap * sizeof(*out->rowid));
            out->kept = xrealloc(out->kept, out->cap * sizeof(*out->kept));
        }
        out->kept[out->n] = false;
        out->rowid[out->n++] = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return rc == SQLITE_DONE ? ERR_OK : sqlite__fail(conn->handle, rc, err, what);
}

/*
 * The index rows of an updated resource: the rows it had that equal a new one stay, the others
 * go, and only the new rows that equal none are inserted. An update mostly changes a few
 * values (a status, a date), and every row deleted and inserted again costs a change to each
 * of its table's indexes, most of them on a page of their own.
 */
static status_t update_index(sqlite_conn_t *conn, int64_t rid, const char *type,
                             const fhir_index_rows_t *rows, err_t *err)
{
    size_t n = rows ? rows->n : 0;
    bool *insert = n ? xcalloc(n, sizeof(*insert)) : NULL;
    index_rows_t had = {0};
    status_t status = ERR_OK;
    for (int k = 0; k < FHIR_INDEX_KIND_COUNT && !status; k++) {
        had.n = 0;
        sqlite3_stmt *stmt = NULL;
        if ((status = prepare(conn, STMT_LIST_INDEX + k, &stmt, err)))
            break;
        sqlite3_bind_int64(stmt, 1, rid);
        if ((status = list_rows(conn, stmt, &had, "list index rows", err)))
            break;
        index_rows_t same = {0};
        for (size_t i = 0; i < n && !status; i++) {
            const fhir_index_row_t *row = &rows->rows[i];
            if ((int)row->value.kind != k)
                continue;
            insert[i] = true;
            if (!had.n)
                continue;
            if ((status = prepare(conn, STMT_MATCH_INDEX + k, &stmt, err)))
                break;
            bind_row(stmt, rid, type, row);
            same.n = 0;
            if ((status = list_rows(conn, stmt, &same, "match index rows", err)))
                break;
            /* the first equal row not kept for another new row (a value can repeat) */
            for (size_t j = 0; j < same.n; j++) {
                int64_t *at =
                    bsearch(&same.rowid[j], had.rowid, had.n, sizeof(*had.rowid), rowid_cmp);
                if (at && !had.kept[at - had.rowid]) {
                    had.kept[at - had.rowid] = true;
                    insert[i] = false;
                    break;
                }
            }
        }
        free(same.rowid);
        free(same.kept);
        for (size_t j = 0; j < had.n && !status; j++) {
            if (had.kept[j])
                continue;
            if ((status = prepare(conn, STMT_DROP_INDEX_ROW + k, &stmt, err)))
                break;
            sqlite3_bind_int64(stmt, 1, had.rowid[j]);
            int rc = sqlite3_step(stmt);
            sqlite3_reset(stmt);
            sqlite3_clear_bindings(stmt);
            if (rc != SQLITE_DONE)
                status = sqlite__fail(conn->handle, rc, err, "delete index row");
        }
    }
    for (size_t i = 0; i < n && !status; i++)
        if (insert[i])
            status = insert_row(conn, rid, type, &rows->rows[i], err);
    free(had.rowid);
    free(had.kept);
    free(insert);
    return status;
}

/* Runs a fixed statement that takes one integer and returns no row. */
static status_t step_with_id(sqlite_conn_t *conn, int which, int64_t value, err_t *err)
{
    sqlite3_stmt *stmt = NULL;
    status_t status = prepare(conn, which, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_int64(stmt, 1, value);
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (rc != SQLITE_DONE)
        return sqlite__fail(conn->handle, rc, err, statement_sql[which]);
    return ERR_OK;
}

/* The index type of the rows of a contained resource of `type`, or of a container's
 * references to its contained resources: "#" and the type. */
static const char *contained_type(char *out, size_t size, const char *type)
{
    snprintf(out, size, "#%s", type);
    return out;
}

/* Removes the contained resources of container with their rows. */
static status_t delete_contained(sqlite_conn_t *conn, int64_t container, err_t *err)
{
    sqlite3_stmt *stmt;
    status_t status = prepare(conn, STMT_CONTAINED_LIST, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_int64(stmt, 1, container);
    int64_t *rids = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            rids = xrealloc(rids, cap * sizeof(*rids));
        }
        rids[n++] = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (rc != SQLITE_DONE) {
        free(rids);
        return sqlite__fail(conn->handle, rc, err, "list contained resources");
    }
    for (size_t i = 0; i < n && !status; i++) {
        for (int k = 0; k < FHIR_INDEX_KIND_COUNT && !status; k++)
            status = step_with_id(conn, STMT_DELETE_INDEX + k, rids[i], err);
        if (!status) /* the container's references to it */
            status = step_with_id(conn, STMT_DELETE_INDEX + FHIR_INDEX_REFERENCE, -rids[i], err);
    }
    free(rids);
    if (!status && n)
        status = step_with_id(conn, STMT_CONTAINED_DELETE, container, err);
    return status;
}

/*
 * Writes the contained resources of container and their rows, and the container's
 * references to them: reference rows of type "#" and the container's type, keyed by minus
 * the contained resource's key, so that no search or probe by a resource's key meets them.
 */
static status_t insert_contained(sqlite_conn_t *conn, int64_t container, const char *type,
                                 const fhir_index_rows_t *rows, err_t *err)
{
    char prefixed[96], container_type[96];
    status_t status;
    contained_type(container_type, sizeof(container_type), type);
    for (size_t c = 0; c < rows->ncontained; c++) {
        const fhir_index_contained_t *contained = &rows->contained[c];
        sqlite3_stmt *stmt;
        if ((status = prepare(conn, STMT_CONTAINED_INSERT, &stmt, err)))
            return status;
        sqlite3_bind_int64(stmt, 1, container);
        sqlite3_bind_text(stmt, 2, contained->type, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, contained->id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(stmt);
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
        if (rc != SQLITE_DONE)
            return sqlite__fail(conn->handle, rc, err, "insert contained resource");
        int64_t rid = sqlite3_last_insert_rowid(conn->handle);
        contained_type(prefixed, sizeof(prefixed), contained->type);
        for (size_t i = 0; i < contained->n; i++)
            if ((status = insert_row(conn, rid, prefixed, &contained->rows[i], err)))
                return status;
        for (size_t i = 0; i < rows->nlocal_refs; i++) {
            const fhir_index_row_t *ref = &rows->local_refs[i];
            if (strcmp(ref->value.as.reference.url + 1, contained->id) == 0 &&
                (status = insert_row(conn, -rid, container_type, ref, err)))
                return status;
        }
    }
    return ERR_OK;
}

/* Replaces the index rows of rid: the old ones go (unless the resource is new), the new ones
 * come (unless it is deleted). */
static status_t write_index(sqlite_conn_t *conn, int64_t rid, const char *type, const char *id,
                            bool is_new, const fhir_index_rows_t *rows, err_t *err)
{
    status_t status = ERR_OK;
    if (!is_new && (status = delete_contained(conn, rid, err)))
        return status;
    if (!is_new)
        status = update_index(conn, rid, type, rows, err);
    for (size_t i = 0; is_new && rows && i < rows->n && !status; i++)
        status = insert_row(conn, rid, type, &rows->rows[i], err);
    if (!status)
        status = sqlite__text_write(conn, rid, is_new, rows ? rows->content : NULL,
                                    rows ? rows->narrative : NULL, err);
    if (!status && rows && rows->ncontained)
        status = insert_contained(conn, rid, type, rows, err);
    if (!status && strcmp(type, "Task") == 0) {
        sql_driver_t sql;
        sqlite__sql_driver(conn, &sql);
        status = sql__task_work_write(&sql, rid, id, is_new, rows ? rows->task_work : NULL, err);
    }
    if (!status && strcmp(type, "RiskAssessment") == 0) {
        sql_driver_t sql;
        sqlite__sql_driver(conn, &sql);
        status = sql__risk_write(&sql, rid, is_new, rows ? rows->risk_row : NULL, err);
    }
    if (!status && strcmp(type, "CareTeam") == 0) {
        sql_driver_t sql;
        sqlite__sql_driver(conn, &sql);
        status = sql__care_members_write(&sql, rid, is_new, rows ? rows->care_members : NULL, err);
    }
    return status;
}

static status_t sqlite_put(void *opaque, const store_put_t *put, int64_t updated_us,
                           const char *last_updated, int64_t *out_seq, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt;
    status_t status = prepare(conn, STMT_INSERT_VERSION, &stmt, err);
    if (status)
        return status;
    bool deleted = put->json == NULL;
    sqlite3_bind_text(stmt, 1, put->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, put->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, put->version);
    sqlite3_bind_int64(stmt, 4, updated_us);
    sqlite3_bind_text(stmt, 5, last_updated, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 6, put->method, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 7, deleted);
    if (deleted)
        sqlite3_bind_null(stmt, 8);
    else
        sqlite3_bind_text(stmt, 8, put->json, (int)put->json_len, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 9, put->status);
    if (put->author)
        sqlite3_bind_text(stmt, 10, put->author, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, 10);
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (rc != SQLITE_DONE) {
        if ((rc & 0xFF) == SQLITE_CONSTRAINT)
            return err_set(err, ERR_VERSION_CONFLICT, NULL,
                           "%s/%s version %lld was written concurrently", put->type, put->id,
                           (long long)put->version);
        return sqlite__fail(conn->handle, rc, err, "insert version");
    }
    int64_t seq = sqlite3_last_insert_rowid(conn->handle);
    status = prepare(conn, STMT_UPSERT_CURRENT, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_text(stmt, 1, put->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, put->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, put->version);
    sqlite3_bind_int64(stmt, 4, seq);
    sqlite3_bind_int(stmt, 5, deleted);
    sqlite3_bind_int64(stmt, 6, updated_us);
    rc = sqlite3_step(stmt);
    int64_t rid = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    if (rc == SQLITE_ROW)
        rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (rc != SQLITE_DONE)
        return sqlite__fail(conn->handle, rc, err, "update current");
    status = write_index(conn, rid, put->type, put->id, put->version == 1,
                         deleted ? NULL : put->index, err);
    if (status)
        return status;
    *out_seq = seq;
    return ERR_OK;
}

static status_t sqlite_reindex(void *opaque, const char *type, const char *id,
                               const fhir_index_rows_t *rows, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt;
    status_t status = prepare(conn, STMT_RID, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_text(stmt, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    int64_t rid = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    bool deleted = rc == SQLITE_ROW && sqlite3_column_int(stmt, 1) != 0;
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (rc == SQLITE_DONE)
        return err_set(err, ERR_NOT_FOUND, NULL, "%s/%s is not known", type, id);
    if (rc != SQLITE_ROW)
        return sqlite__fail(conn->handle, rc, err, "reindex");
    return write_index(conn, rid, type, id, false, deleted ? NULL : rows, err);
}

static status_t sqlite_scan(void *opaque, const char *type, int64_t after_rid, size_t count,
                            arena_t *arena, store_scan_row_t **out_rows, size_t *out_n, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt;
    status_t status = prepare(conn, type ? STMT_SCAN_TYPE : STMT_SCAN, &stmt, err);
    if (status)
        return status;
    sqlite3_bind_int64(stmt, 1, after_rid);
    sqlite3_bind_int64(stmt, 2, (sqlite3_int64)count);
    if (type)
        sqlite3_bind_text(stmt, 3, type, -1, SQLITE_STATIC);
    store_scan_row_t *rows = arena_alloc(arena, (count ? count : 1) * sizeof(*rows));
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && n < count) {
        store_scan_row_t *row = &rows[n++];
        row->rid = sqlite3_column_int64(stmt, 0);
        row->type = sqlite__column_text(stmt, 1, arena, NULL);
        row->id = sqlite__column_text(stmt, 2, arena, NULL);
        row->json = sqlite__column_text(stmt, 3, arena, &row->json_len);
        row->version = sqlite3_column_int64(stmt, 4);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        status = sqlite__fail(conn->handle, rc, err, "scan");
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    *out_rows = rows;
    *out_n = n;
    return status;
}

/* ---- bulk loads ---------------------------------------------------------------------- */

/* The indexes of the search index tables, which a bulk load drops (not the tables' own),
 * except those by resource (ix_*_rid): an update of a stored resource deletes its old rows by
 * rid, and without them each delete would read the whole table (a load of updates would take
 * time growing with the square of its size). */
static const char deferrable_sql[] =
    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    " AND tbl_name IN ('ix_string', 'ix_token', 'ix_date', 'ix_number', 'ix_quantity',"
    " 'ix_reference', 'ix_uri', 'ix_composite', 'ix_of_type', 'ix_position')"
    " AND name <> tbl_name || '_rid' ORDER BY name";

static status_t sqlite_defer_indexes(void *opaque, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v2(conn->handle, deferrable_sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return sqlite__fail(conn->handle, rc, err, "list search indexes");
    buf_t drops = BUF_INIT;
    sqlite3_stmt *keep = NULL;
    rc = sqlite3_prepare_v2(conn->handle, "INSERT INTO deferred_index (name, sql) VALUES (?1, ?2)",
                            -1, &keep, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(stmt, 0);
        sqlite3_bind_text(keep, 1, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(keep, 2, (const char *)sqlite3_column_text(stmt, 1), -1,
                          SQLITE_TRANSIENT);
        rc = sqlite3_step(keep);
        sqlite3_reset(keep);
        if (rc != SQLITE_DONE)
            break;
        rc = SQLITE_OK;
        buf_addf(&drops, "DROP INDEX \"%s\";", name);
    }
    status_t status = ERR_OK;
    if (rc != SQLITE_DONE)
        status = sqlite__fail(conn->handle, rc, err, "keep search index definitions");
    sqlite3_finalize(stmt);
    sqlite3_finalize(keep);
    if (!status && drops.len)
        status = exec(conn->handle, drops.ptr, err);
    buf_release(&drops);
    return status;
}

static status_t restore_indexes(sqlite3 *handle, int64_t *out_count, err_t *err)
{
    *out_count = 0;
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v2(handle, "SELECT name, sql FROM deferred_index ORDER BY name", -1,
                                &stmt, NULL);
    if (rc != SQLITE_OK)
        return sqlite__fail(handle, rc, err, "list deferred search indexes");
    buf_t creates = BUF_INIT;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        buf_addf(&creates, "%s;", (const char *)sqlite3_column_text(stmt, 1));
        ++*out_count;
    }
    status_t status = ERR_OK;
    if (rc != SQLITE_DONE)
        status = sqlite__fail(handle, rc, err, "list deferred search indexes");
    sqlite3_finalize(stmt);
    if (!status && creates.len) {
        /* sorting each index's entries is the work: give the sorter two threads and
           memory; ANALYZE's statistics from a sample of each index */
        sqlite3_exec(handle, "PRAGMA threads=2; PRAGMA cache_size=-524288;", NULL, NULL, NULL);
        status = exec(handle, creates.ptr, err);
        if (!status)
            status = exec(handle,
                          "DELETE FROM deferred_index; PRAGMA analysis_limit=1000; ANALYZE;", err);
        sqlite3_exec(handle, "PRAGMA threads=0; PRAGMA cache_size=-8000;", NULL, NULL, NULL);
    }
    buf_release(&creates);
    return status;
}

static status_t sqlite_analyze(void *opaque, err_t *err)
{
    return exec(((sqlite_conn_t *)opaque)->handle, "PRAGMA analysis_limit=1000; ANALYZE;", err);
}

/* ---- copying a database ---------------------------------------------------------------- */

/* The byte ranges of SQLite's locks (os_unix.c): the database file's pending, reserved and
 * shared bytes, which every connection in WAL mode holds a read lock on while it is open, and
 * the -shm file's "DMS" byte, which every connection that maps it holds too. */
#define LOCK_FIRST   0x40000000
#define LOCK_BYTES   512
#define SHM_DMS_BYTE 128

/* The process, other than this one, holding a lock that conflicts with a write lock on the
 * range (0: none). A test, never a lock: closing the descriptor would release this process's
 * own locks on the file, so it is done only before this process opens the database. */
static pid_t lock_holder(const char *path, off_t start, off_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    pid_t holder = 0;
    if (fcntl(fd, F_GETLK, &lock) == 0 && lock.l_type != F_UNLCK)
        holder = lock.l_pid > 0 ? lock.l_pid : -1;
    close(fd);
    return holder;
}

static status_t sqlite_check_unused(const char *location, err_t *err)
{
    pid_t holder = lock_holder(location, LOCK_FIRST, LOCK_BYTES);
    if (!holder) {
        char *shm = xasprintf("%s-shm", location);
        holder = lock_holder(shm, SHM_DMS_BYTE, 1);
        free(shm);
    }
    if (!holder)
        return ERR_OK;
    if (holder > 0)
        return err_set(err, ERR_CONFLICT, NULL,
                       "the database \"%s\" is in use by another process (pid %ld, a running "
                       "concerto serve?): stop it first",
                       location, (long)holder);
    return err_set(err, ERR_CONFLICT, NULL,
                   "the database \"%s\" is in use by another process (a running concerto "
                   "serve?): stop it first",
                   location);
}

/* A snapshot is a read transaction pinned by a first read (WAL: the snapshot is taken there),
 * or a write transaction that holds the write lock until it ends and writes nothing. */
static status_t sqlite_snapshot_begin(void *opaque, bool lock_writers, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    status_t rc = exec(conn->handle, lock_writers ? "BEGIN IMMEDIATE" : "BEGIN", err);
    if (!rc)
        rc = exec(conn->handle, "SELECT count(*) FROM schema_migration", err);
    if (rc && !sqlite3_get_autocommit(conn->handle))
        sqlite3_exec(conn->handle, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static void sqlite_snapshot_end(void *opaque)
{
    sqlite_conn_t *conn = opaque;
    if (!sqlite3_get_autocommit(conn->handle))
        sqlite3_exec(conn->handle, "ROLLBACK", NULL, NULL, NULL);
}

static status_t sqlite_load_index(void *opaque, const store_copy_version_t *versions, size_t n,
                                  err_t *err)
{
    for (size_t i = 0; i < n; i++) {
        const store_copy_version_t *v = &versions[i];
        if (!v->rid || v->version.deleted || !v->index)
            continue;
        status_t rc =
            write_index(opaque, v->rid, v->version.type, v->version.id, true, v->index, err);
        if (rc)
            return rc;
    }
    return ERR_OK;
}

/* Versions and resources are INTEGER PRIMARY KEY without AUTOINCREMENT (the next key follows
 * the highest row, and none is ever removed); the queues' keys are AUTOINCREMENT, their
 * counters in sqlite_sequence. */
static status_t sqlite_last_keys(void *opaque, store_keys_t *out, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    sqlite3_stmt *stmt;
    status_t status = sqlite__prepare_cached(
        conn,
        "SELECT (SELECT coalesce(max(seq), 0) FROM resource_version),"
        " (SELECT coalesce(max(rid), 0) FROM resource),"
        " max((SELECT coalesce(max(event_id), 0) FROM outbox),"
        "     coalesce((SELECT max(seq) FROM sqlite_sequence WHERE name = 'outbox'), 0)),"
        " max((SELECT coalesce(max(job_id), 0) FROM job),"
        "     coalesce((SELECT max(seq) FROM sqlite_sequence WHERE name = 'job'), 0))",
        &stmt, err);
    if (status)
        return status;
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        out->seq = sqlite3_column_int64(stmt, 0);
        out->rid = sqlite3_column_int64(stmt, 1);
        out->event_id = sqlite3_column_int64(stmt, 2);
        out->job_id = sqlite3_column_int64(stmt, 3);
    } else {
        status = sqlite__fail(conn->handle, rc, err, "last keys");
    }
    sqlite3_reset(stmt);
    return status;
}

static status_t sqlite_load_keys(void *opaque, const store_keys_t *keys, err_t *err)
{
    sqlite_conn_t *conn = opaque;
    static const char *const sql[] = {
        "UPDATE sqlite_sequence SET seq = max(seq, ?2) WHERE name = ?1",
        "INSERT INTO sqlite_sequence (name, seq) SELECT ?1, ?2 WHERE ?2 > 0 AND NOT EXISTS "
        "(SELECT 1 FROM sqlite_sequence WHERE name = ?1)",
    };
    const struct {
        const char *table;
        int64_t key;
    } counters[] = {{"outbox", keys->event_id}, {"job", keys->job_id}};
    for (size_t c = 0; c < 2; c++) {
        for (size_t s = 0; s < 2; s++) {
            sqlite3_stmt *stmt;
            status_t status = sqlite__prepare_cached(conn, sql[s], &stmt, err);
            if (status)
                return status;
            sqlite3_bind_text(stmt, 1, counters[c].table, -1, SQLITE_STATIC);
            sqlite3_bind_int64(stmt, 2, counters[c].key);
            int rc = sqlite3_step(stmt);
            sqlite3_reset(stmt);
            sqlite3_clear_bindings(stmt);
            if (rc != SQLITE_DONE)
                return sqlite__fail(conn->handle, rc, err, "load key counters");
        }
    }
    return ERR_OK;
}

const store_driver_t store__sqlite_driver = {
    .name = "sqlite",
    .open = sqlite_open,
    .close = sqlite_close,
    .migrate = sqlite_migrate,
    .connect = sqlite_connect,
    .disconnect = sqlite_disconnect,
    .park = sqlite_park,
    .read = sqlite_read,
    .history = sqlite_history,
    .count = sqlite_count,
    .begin = sqlite_begin,
    .begin_relaxed = sqlite_begin_relaxed,
    .commit = sqlite_commit,
    .defers_sync = sqlite_defers_sync,
    .sync_commits = sqlite_sync_commits,
    .rollback = sqlite_rollback,
    .savepoint = sqlite_savepoint,
    .release = sqlite_release,
    .rollback_to = sqlite_rollback_to,
    .current = sqlite_current,
    .put = sqlite_put,
    .reindex = sqlite_reindex,
    .scan = sqlite_scan,
    .search = sqlite__search,
    .txn_search = sqlite__txn_search,
    .everything = sqlite__everything,
    .outbox_add = sqlite__outbox_add,
    .outbox_claim = sqlite__outbox_claim,
    .outbox_ack = sqlite__outbox_ack,
    .outbox_fail = sqlite__outbox_fail,
    .outbox_replay = sqlite__outbox_replay,
    .outbox_dead = sqlite__outbox_dead,
    .outbox_counts = sqlite__outbox_counts,
    .outbox_claimed = sqlite__outbox_claimed,
    .outbox_replay_all = sqlite__outbox_replay_all,
    .job_schedule = sqlite__job_schedule,
    .job_cancel = sqlite__job_cancel,
    .job_claim = sqlite__job_claim,
    .job_complete = sqlite__job_complete,
    .job_fail = sqlite__job_fail,
    .job_replay = sqlite__job_replay,
    .job_list = sqlite__job_list,
    .lease_acquire = sqlite__lease_acquire,
    .lease_renew = sqlite__lease_renew,
    .lease_release = sqlite__lease_release,
    .defer_indexes = sqlite_defer_indexes,
    .analyze = sqlite_analyze,
    .check_unused = sqlite_check_unused,
    .snapshot_begin = sqlite_snapshot_begin,
    .snapshot_end = sqlite_snapshot_end,
    .sql = sqlite__sql_driver,
    .load_index = sqlite_load_index,
    .last_keys = sqlite_last_keys,
    .load_keys = sqlite_load_keys,
    .run_auth = sqlite__run_auth,
};
