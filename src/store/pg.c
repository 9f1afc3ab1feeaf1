/*
 * pg.c - the PostgreSQL driver: Concerto on more than one machine.
 *
 * The location is a libpq connection URI (postgresql://user@host:port/db?...). The schema is
 * the SQLite driver's, table for table and column for column, with PostgreSQL's types, so the
 * SQL above the driver stays the same; migrations carry the same numbers in both drivers.
 *
 * One connection per thread, as with SQLite. Writers of several processes meet in the
 * database: the current-version read of a write locks the resource's row (FOR UPDATE), so two
 * processes updating one resource serialize and the second sees the first's version (an
 * If-Match on the old version then fails with 412); two creates of one new id collide on the
 * unique key and the second fails with a version conflict. Migrations take an advisory lock,
 * so processes starting together migrate once.
 *
 * A lost connection is re-established before the next statement outside a transaction; a
 * transaction that loses its connection fails as a whole with ERR_UNAVAILABLE (503 with
 * Retry-After above), and nothing of it is committed.
 *
 * The work queues are in pg_queue.c, $everything in pg_everything.c, search (not yet) in
 * pg_search.c; docs/internals/store.md describes the driver. A read replica is a second pg_db_t
 * with the hot standby's URI (pg_connect_replica), which pg_replica_lag asks how far behind it
 * is.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "store/pg_int.h"
#include "store/sql_search.h"
#include "store/sql_text.h"
#include "store/sql_work.h"

struct pg_db {
    char *uri;
    store_options_t options;
    pg_db_t *replica; /* the read replica's (its uri; options->replica is not kept), or NULL */
};

/* The key of the advisory lock migrations hold ("concerto" in ASCII, as a number). */
#define MIGRATION_LOCK "7164093491627649135"

#define COMPOSITE_COLUMNS(i) "c" #i "_system, c" #i "_value, c" #i "_low, c" #i "_high"

/* The rows of one kind in one insert: rid and type, then one array per column. */
#define UNNEST "SELECT $1::bigint, $2::text, * FROM unnest("
/* The rows of one kind of several resources in one insert: one array per column. */
#define UNNEST_ROWS "SELECT * FROM unnest($1::bigint[], $2::text[], "

static const char *const statement_sql[PG__COUNT] = {
    [PG_READ_CURRENT] = "SELECT v.version, v.seq, v.updated_us, v.last_updated, v.method, "
                        "v.status, v.deleted, v.json, v.author "
                        "FROM resource r JOIN resource_version v ON v.seq = r.seq "
                        "WHERE r.type = $1 AND r.id = $2",
    [PG_READ_VERSION] =
        "SELECT version, seq, updated_us, last_updated, method, status, deleted, json, author "
        "FROM resource_version WHERE type = $1 AND id = $2 AND version = $3",
    /* on the writer only: the row stays locked until the transaction ends */
    [PG_CURRENT] = "SELECT version, deleted FROM resource WHERE type = $1 AND id = $2 FOR UPDATE",
    [PG_INSERT_VERSION] =
        "INSERT INTO resource_version (type, id, version, updated_us, last_updated, method, "
        "deleted, json, status, author) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
        "RETURNING seq",
    [PG_UPSERT_CURRENT] =
        "INSERT INTO resource (type, id, version, seq, deleted, updated_us) "
        "VALUES ($1, $2, $3, $4, $5, $6) "
        "ON CONFLICT (type, id) DO UPDATE SET version = excluded.version, seq = excluded.seq, "
        "deleted = excluded.deleted, updated_us = excluded.updated_us RETURNING rid",
    [PG_COUNT_TYPE] = "SELECT count(*) FROM resource WHERE type = $1 AND deleted = 0",
    [PG_COUNT_ALL] = "SELECT count(*) FROM resource WHERE deleted = 0",
    [PG_RID] = "SELECT rid, deleted FROM resource WHERE type = $1 AND id = $2 FOR UPDATE",
    [PG_SCAN] = "SELECT r.rid, r.type, r.id, v.json, r.version FROM resource r "
                "JOIN resource_version v ON v.seq = r.seq "
                "WHERE r.rid > $1 AND r.deleted = 0 ORDER BY r.rid LIMIT $2",
    [PG_SCAN_TYPE] = "SELECT r.rid, r.type, r.id, v.json, r.version FROM resource r "
                     "JOIN resource_version v ON v.seq = r.seq "
                     "WHERE r.type = $3 AND r.deleted = 0 AND r.rid > $1 ORDER BY r.rid LIMIT $2",
    [PG_CONTAINED_LIST] = "SELECT rid FROM resource_contained WHERE container = $1 LIMIT 1",
    [PG_CONTAINED_INSERT] =
        "INSERT INTO resource_contained (container, type, id) VALUES ($1, $2, $3) RETURNING rid",
    [PG_DELETE_TEXT] = "DELETE FROM ix_text WHERE rid = $1",
    [PG_INSERT_TEXT] = "INSERT INTO ix_text (rid, content, narrative, words) "
                       "VALUES ($1, $2, $3, $4::tsvector)",
    [PG_INSERT_INDEX + FHIR_INDEX_STRING] =
        "INSERT INTO ix_string (rid, type, param, normalized, exact) VALUES ($1, $2, $3, $4, $5)",
    [PG_INSERT_INDEX + FHIR_INDEX_TOKEN] = "INSERT INTO ix_token (rid, type, param, system, code, "
                                           "text) VALUES ($1, $2, $3, $4, $5, $6)",
    [PG_INSERT_INDEX + FHIR_INDEX_DATE] =
        "INSERT INTO ix_date (rid, type, param, low, high) VALUES ($1, $2, $3, $4, $5)",
    [PG_INSERT_INDEX + FHIR_INDEX_NUMBER] =
        "INSERT INTO ix_number (rid, type, param, low, high) VALUES ($1, $2, $3, $4, $5)",
    [PG_INSERT_INDEX + FHIR_INDEX_QUANTITY] =
        "INSERT INTO ix_quantity (rid, type, param, system, code, unit, low, high, "
        "canonical_code, canonical_low, canonical_high) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    [PG_INSERT_INDEX + FHIR_INDEX_REFERENCE] =
        "INSERT INTO ix_reference (rid, type, param, target_type, target_id, version, url, "
        "identifier_system, identifier_value) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    [PG_INSERT_INDEX + FHIR_INDEX_URI] =
        "INSERT INTO ix_uri (rid, type, param, value) VALUES ($1, $2, $3, $4)",
    [PG_INSERT_INDEX + FHIR_INDEX_COMPOSITE] =
        "INSERT INTO ix_composite (rid, type, param, " COMPOSITE_COLUMNS(0) ", " COMPOSITE_COLUMNS(
            1) ", " COMPOSITE_COLUMNS(2) ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
                                         "$12, $13, $14, $15)",
    [PG_INSERT_INDEX + FHIR_INDEX_OF_TYPE] =
        "INSERT INTO ix_of_type (rid, type, param, type_system, type_code, value) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
    [PG_INSERT_INDEX + FHIR_INDEX_POSITION] =
        "INSERT INTO ix_position (rid, type, param, latitude, longitude) "
        "VALUES ($1, $2, $3, $4, $5)",
    [PG_DELETE_INDEX + FHIR_INDEX_STRING] = "DELETE FROM ix_string WHERE rid = $1",
    [PG_DELETE_INDEX + FHIR_INDEX_TOKEN] = "DELETE FROM ix_token WHERE rid = $1",
    [PG_DELETE_INDEX + FHIR_INDEX_DATE] = "DELETE FROM ix_date WHERE rid = $1",
    [PG_DELETE_INDEX + FHIR_INDEX_NUMBER] = "DELETE FROM ix_number WHERE rid = $1",
    [PG_DELETE_INDEX + FHIR_INDEX_QUANTITY] = "DELETE FROM ix_quantity WHERE rid = $1",
    [PG_DELETE_INDEX + FHIR_INDEX_REFERENCE] = "DELETE FROM ix_reference WHERE rid = $1",
    [PG_DELETE_INDEX + FHIR_INDEX_URI] = "DELETE FROM ix_uri WHERE rid = $1",
    [PG_DELETE_INDEX + FHIR_INDEX_COMPOSITE] = "DELETE FROM ix_composite WHERE rid = $1",
    [PG_DELETE_INDEX + FHIR_INDEX_OF_TYPE] = "DELETE FROM ix_of_type WHERE rid = $1",
    [PG_DELETE_INDEX + FHIR_INDEX_POSITION] = "DELETE FROM ix_position WHERE rid = $1",
    [PG_DELETE_CONTAINED_INDEX + FHIR_INDEX_STRING] =
        "DELETE FROM ix_string WHERE rid IN "
        "(SELECT rid FROM resource_contained WHERE container = $1)",
    [PG_DELETE_CONTAINED_INDEX + FHIR_INDEX_TOKEN] =
        "DELETE FROM ix_token WHERE rid IN "
        "(SELECT rid FROM resource_contained WHERE container = $1)",
    [PG_DELETE_CONTAINED_INDEX + FHIR_INDEX_DATE] =
        "DELETE FROM ix_date WHERE rid IN "
        "(SELECT rid FROM resource_contained WHERE container = $1)",
    [PG_DELETE_CONTAINED_INDEX + FHIR_INDEX_NUMBER] =
        "DELETE FROM ix_number WHERE rid IN "
        "(SELECT rid FROM resource_contained WHERE container = $1)",
    [PG_DELETE_CONTAINED_INDEX + FHIR_INDEX_QUANTITY] =
        "DELETE FROM ix_quantity WHERE rid IN "
        "(SELECT rid FROM resource_contained WHERE container = $1)",
    [PG_DELETE_CONTAINED_INDEX + FHIR_INDEX_REFERENCE] =
        "DELETE FROM ix_reference WHERE rid IN "
        "(SELECT rid FROM resource_contained WHERE container = $1)",
    [PG_DELETE_CONTAINED_INDEX + FHIR_INDEX_URI] =
        "DELETE FROM ix_uri WHERE rid IN "
        "(SELECT rid FROM resource_contained WHERE container = $1)",
    [PG_DELETE_CONTAINED_INDEX + FHIR_INDEX_COMPOSITE] =
        "DELETE FROM ix_composite WHERE rid IN "
        "(SELECT rid FROM resource_contained WHERE container = $1)",
    [PG_DELETE_CONTAINED_INDEX + FHIR_INDEX_OF_TYPE] =
        "DELETE FROM ix_of_type WHERE rid IN "
        "(SELECT rid FROM resource_contained WHERE container = $1)",
    [PG_DELETE_CONTAINED_INDEX + FHIR_INDEX_POSITION] =
        "DELETE FROM ix_position WHERE rid IN "
        "(SELECT rid FROM resource_contained WHERE container = $1)",
    [PG_DELETE_CONTAINED_REFS] = "DELETE FROM ix_reference WHERE rid IN "
                                 "(SELECT -rid FROM resource_contained WHERE container = $1)",
    [PG_DELETE_CONTAINED] = "DELETE FROM resource_contained WHERE container = $1",
#define BATCH_INDEX(kind, insert, arrays)           \
    [PG_BATCH_INDEX + kind] = insert UNNEST arrays, \
                      [PG_LOAD_INDEX + kind] = insert UNNEST_ROWS arrays
    BATCH_INDEX(FHIR_INDEX_STRING, "INSERT INTO ix_string (rid, type, param, normalized, exact) ",
                "$3::text[], $4::text[], $5::text[])"),
    BATCH_INDEX(FHIR_INDEX_TOKEN, "INSERT INTO ix_token (rid, type, param, system, code, text) ",
                "$3::text[], $4::text[], $5::text[], $6::text[])"),
    BATCH_INDEX(FHIR_INDEX_DATE, "INSERT INTO ix_date (rid, type, param, low, high) ",
                "$3::text[], $4::bigint[], $5::bigint[])"),
    BATCH_INDEX(FHIR_INDEX_NUMBER, "INSERT INTO ix_number (rid, type, param, low, high) ",
                "$3::text[], $4::float8[], $5::float8[])"),
    BATCH_INDEX(FHIR_INDEX_QUANTITY,
                "INSERT INTO ix_quantity (rid, type, param, system, code, unit, low, high, "
                "canonical_code, canonical_low, canonical_high) ",
                "$3::text[], $4::text[], $5::text[], $6::text[], $7::float8[], $8::float8[], "
                "$9::text[], $10::float8[], $11::float8[])"),
    BATCH_INDEX(FHIR_INDEX_REFERENCE,
                "INSERT INTO ix_reference (rid, type, param, target_type, target_id, version, "
                "url, identifier_system, identifier_value) ",
                "$3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], "
                "$9::text[])"),
    BATCH_INDEX(FHIR_INDEX_URI, "INSERT INTO ix_uri (rid, type, param, value) ",
                "$3::text[], $4::text[])"),
    BATCH_INDEX(FHIR_INDEX_COMPOSITE,
                "INSERT INTO ix_composite (rid, type, param, " COMPOSITE_COLUMNS(
                    0) ", " COMPOSITE_COLUMNS(1) ", " COMPOSITE_COLUMNS(2) ") ",
                "$3::text[], $4::text[], $5::text[], $6::numeric[], $7::numeric[], $8::text[], "
                "$9::text[], $10::numeric[], $11::numeric[], $12::text[], $13::text[], "
                "$14::numeric[], $15::numeric[])"),
    BATCH_INDEX(FHIR_INDEX_OF_TYPE,
                "INSERT INTO ix_of_type (rid, type, param, type_system, type_code, value) ",
                "$3::text[], $4::text[], $5::text[], $6::text[])"),
    BATCH_INDEX(FHIR_INDEX_POSITION,
                "INSERT INTO ix_position (rid, type, param, latitude, "
                "longitude) ",
                "$3::text[], $4::float8[], $5::float8[])"),
#undef BATCH_INDEX
    [PG_LOAD_TEXT] = "INSERT INTO ix_text (rid, content, narrative, words) "
                     "SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::tsvector[])",
};

/* ---- schema -------------------------------------------------------------------------- */

/* Migration i brings the schema to version i + 1, as in the SQLite driver (same numbers, same
 * tables and columns). Never edit one that has shipped: add a new one. Integers are BIGINT;
 * the untyped low and high of composite components (dates in microseconds or numbers) are
 * NUMERIC, which holds both exactly. */
static const char *const migrations[] = {
    /* 1: versions and current resources */
    "CREATE TABLE resource_version ("
    "  seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  type TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  version BIGINT NOT NULL,"
    "  updated_us BIGINT NOT NULL,"
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
    "  rid BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  type TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  version BIGINT NOT NULL,"
    "  seq BIGINT NOT NULL,"
    "  deleted INTEGER NOT NULL,"
    "  UNIQUE (type, id)"
    ");",
    /* 2: search: lastUpdated on the current row, and the index tables */
    "ALTER TABLE resource ADD COLUMN updated_us BIGINT NOT NULL DEFAULT 0;"
    "UPDATE resource SET updated_us ="
    "  (SELECT v.updated_us FROM resource_version v WHERE v.seq = resource.seq);"
    "CREATE INDEX resource_type_live ON resource (type, deleted);"
    "CREATE INDEX resource_type_updated ON resource (type, deleted, updated_us);"
    "CREATE TABLE ix_string (rid BIGINT NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,"
    "  normalized TEXT NOT NULL, exact TEXT NOT NULL);"
    "CREATE INDEX ix_string_value ON ix_string (type, param, normalized text_pattern_ops, rid);"
    "CREATE INDEX ix_string_rid ON ix_string (rid, param, normalized);"
    "CREATE TABLE ix_token (rid BIGINT NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,"
    "  system TEXT, code TEXT, text TEXT);"
    "CREATE INDEX ix_token_value ON ix_token (type, param, code, system, rid);"
    "CREATE INDEX ix_token_rid ON ix_token (rid, param, code, system);"
    "CREATE TABLE ix_date (rid BIGINT NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,"
    "  low BIGINT NOT NULL, high BIGINT NOT NULL);"
    "CREATE INDEX ix_date_low ON ix_date (type, param, low, high, rid);"
    "CREATE INDEX ix_date_high ON ix_date (type, param, high, low, rid);"
    "CREATE INDEX ix_date_rid ON ix_date (rid, param, low, high);"
    "CREATE TABLE ix_number (rid BIGINT NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,"
    "  low DOUBLE PRECISION NOT NULL, high DOUBLE PRECISION NOT NULL);"
    "CREATE INDEX ix_number_value ON ix_number (type, param, low, high, rid);"
    "CREATE INDEX ix_number_rid ON ix_number (rid, param, low, high);"
    "CREATE TABLE ix_quantity (rid BIGINT NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,"
    "  system TEXT, code TEXT, unit TEXT, low DOUBLE PRECISION NOT NULL,"
    "  high DOUBLE PRECISION NOT NULL);"
    "CREATE INDEX ix_quantity_value ON ix_quantity (type, param, low, high, code, system, unit, "
    "rid);"
    "CREATE INDEX ix_quantity_high ON ix_quantity (type, param, high, low, code, system, unit, "
    "rid);"
    "CREATE INDEX ix_quantity_rid ON ix_quantity (rid, param, low, high, code, system, unit);"
    "CREATE TABLE ix_reference (rid BIGINT NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,"
    "  target_type TEXT, target_id TEXT, version TEXT, url TEXT,"
    "  identifier_system TEXT, identifier_value TEXT);"
    "CREATE INDEX ix_reference_target ON ix_reference (type, param, target_id, target_type, "
    "version, rid);"
    "CREATE INDEX ix_reference_url ON ix_reference (type, param, url, version, rid);"
    "CREATE INDEX ix_reference_back ON ix_reference (target_id, target_type);"
    "CREATE INDEX ix_reference_rid ON ix_reference (rid, param, target_id, target_type, version, "
    "url);"
    "CREATE TABLE ix_uri (rid BIGINT NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,"
    "  value TEXT NOT NULL);"
    "CREATE INDEX ix_uri_value ON ix_uri (type, param, value, rid);"
    "CREATE INDEX ix_uri_rid ON ix_uri (rid, param, value);"
    "CREATE TABLE ix_composite (rid BIGINT NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,"
    "  c0_system TEXT, c0_value TEXT, c0_low NUMERIC, c0_high NUMERIC,"
    "  c1_system TEXT, c1_value TEXT, c1_low NUMERIC, c1_high NUMERIC,"
    "  c2_system TEXT, c2_value TEXT, c2_low NUMERIC, c2_high NUMERIC);"
    "CREATE INDEX ix_composite_value ON ix_composite (type, param, c0_value, c0_system, c1_low,"
    "  c1_high, c1_value, c1_system, rid);"
    "CREATE INDEX ix_composite_rid ON ix_composite (rid, param);"
    "CREATE TABLE ix_of_type (rid BIGINT NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,"
    "  type_system TEXT, type_code TEXT, value TEXT NOT NULL);"
    "CREATE INDEX ix_of_type_value ON ix_of_type (type, param, value, type_code, type_system, rid);"
    "CREATE INDEX ix_of_type_rid ON ix_of_type (rid, param);",
    /* 3: full text (_content, _text): one row per current resource, keyed by rid, filled by
       writes and reindex as in SQLite. `words` is the tsvector of both texts in the `simple`
       configuration (no stemming, no stop words, as SQLite's unicode61), folded by
       concerto_fold: lower case without accents when the unaccent extension can be had (it
       is trusted: a database owner may create it), lower case only otherwise. The narrative's
       words have weight A, the content's weight B, so one GIN index serves both: _text asks
       for A only. */
    "DO $$ DECLARE nsp text; BEGIN"
    "  BEGIN CREATE EXTENSION IF NOT EXISTS unaccent;"
    "  EXCEPTION WHEN OTHERS THEN NULL; END;"
    "  SELECT n.nspname INTO nsp FROM pg_extension e JOIN pg_namespace n"
    "    ON n.oid = e.extnamespace WHERE e.extname = 'unaccent';"
    "  IF nsp IS NOT NULL THEN"
    "    EXECUTE format('CREATE FUNCTION concerto_fold(text) RETURNS text LANGUAGE sql"
    "      IMMUTABLE STRICT PARALLEL SAFE AS %L',"
    "      format('SELECT lower(%I.unaccent(%L::regdictionary, $1))', nsp,"
    "             quote_ident(nsp) || '.unaccent'));"
    "  ELSE"
    "    CREATE FUNCTION concerto_fold(text) RETURNS text LANGUAGE sql IMMUTABLE STRICT"
    "      PARALLEL SAFE AS 'SELECT lower($1)';"
    "  END IF;"
    "END $$;"
    "CREATE TABLE ix_text (rid BIGINT PRIMARY KEY, content TEXT, narrative TEXT,"
    "  words tsvector GENERATED ALWAYS AS ("
    "    setweight(to_tsvector('simple'::regconfig, coalesce(concerto_fold(narrative), '')), 'A')"
    "    || setweight(to_tsvector('simple'::regconfig, coalesce(concerto_fold(content), '')),"
    "    'B')) STORED);"
    "CREATE INDEX ix_text_words ON ix_text USING GIN (words);",
    /* 4 is another change's in SQLite (import speed): empty here */
    "SELECT 1",
    /* 5: contained resources, as SQLite's 5: keys from 2^62 up (never a resource's rid),
       index rows of type '#' and the contained type, the container's references to them
       keyed by minus the contained resource's key; absolute urls found by
       ix_reference_absolute. */
    "CREATE TABLE resource_contained ("
    "  rid BIGINT GENERATED ALWAYS AS IDENTITY (START WITH 4611686018427387904) PRIMARY KEY,"
    "  container BIGINT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  id TEXT NOT NULL);"
    "CREATE INDEX resource_contained_container ON resource_contained (container);"
    "CREATE INDEX resource_contained_type ON resource_contained (type);"
    "CREATE INDEX ix_reference_absolute ON ix_reference (url) WHERE url IS NOT NULL;",
    /* 6: the work queues, as SQLite's 6, with identity keys (never reused) and booleans for
       `dead`; `state` stays an integer (an enum). */
    "CREATE TABLE outbox ("
    "  event_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  seq BIGINT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  version BIGINT NOT NULL,"
    "  action INTEGER NOT NULL,"
    "  time_us BIGINT NOT NULL,"
    "  available_us BIGINT NOT NULL DEFAULT 0,"
    "  attempts BIGINT NOT NULL DEFAULT 0,"
    "  claimed_by TEXT,"
    "  claim_until_us BIGINT NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  dead BOOLEAN NOT NULL DEFAULT false);"
    "CREATE INDEX outbox_dead ON outbox (event_id) WHERE dead;"
    "CREATE TABLE job ("
    "  job_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  kind TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  run_at_us BIGINT NOT NULL,"
    "  payload TEXT,"
    "  attempts BIGINT NOT NULL DEFAULT 0,"
    "  claimed_by TEXT,"
    "  claim_until_us BIGINT NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  state INTEGER NOT NULL DEFAULT 0,"
    "  revision BIGINT NOT NULL DEFAULT 1,"
    "  UNIQUE (kind, key));"
    "CREATE INDEX job_due ON job (state, run_at_us);"
    "CREATE TABLE lease ("
    "  name TEXT PRIMARY KEY,"
    "  holder TEXT NOT NULL,"
    "  until_us BIGINT NOT NULL);",
    /* 7: UCUM quantities also in canonical units, and positions (Location near), as
       SQLite's 7 */
    "ALTER TABLE ix_quantity ADD COLUMN canonical_code TEXT;"
    "ALTER TABLE ix_quantity ADD COLUMN canonical_low DOUBLE PRECISION;"
    "ALTER TABLE ix_quantity ADD COLUMN canonical_high DOUBLE PRECISION;"
    "CREATE INDEX ix_quantity_canonical_low ON ix_quantity (type, param, canonical_code, "
    "canonical_low, canonical_high, rid) WHERE canonical_code IS NOT NULL;"
    "CREATE INDEX ix_quantity_canonical_high ON ix_quantity (type, param, canonical_code, "
    "canonical_high, canonical_low, rid) WHERE canonical_code IS NOT NULL;"
    "CREATE TABLE ix_position (rid BIGINT NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,"
    "  latitude DOUBLE PRECISION NOT NULL, longitude DOUBLE PRECISION NOT NULL);"
    "CREATE INDEX ix_position_value ON ix_position (type, param, latitude, longitude, rid);"
    "CREATE INDEX ix_position_rid ON ix_position (rid, param, latitude, longitude);",
    /* 8: strings in byte order whatever the database's collation, as SQLite compares them:
       the string columns of the resources and the index rows collate "C", so that _sort,
       the prefix ranges (string, token :text, uri :below) and the page cursors order and
       match as SQLite does. Changing a column's collation keeps its data and rebuilds its
       indexes, which then serve the comparisons as before. */
    "ALTER TABLE resource ALTER type TYPE TEXT COLLATE \"C\", ALTER id TYPE TEXT COLLATE \"C\";"
    "ALTER TABLE resource_version ALTER type TYPE TEXT COLLATE \"C\", ALTER id TYPE TEXT "
    "COLLATE \"C\";"
    "ALTER TABLE resource_contained ALTER type TYPE TEXT COLLATE \"C\", ALTER id TYPE TEXT "
    "COLLATE \"C\";"
    "ALTER TABLE ix_string ALTER type TYPE TEXT COLLATE \"C\", ALTER param TYPE TEXT COLLATE "
    "\"C\", ALTER normalized TYPE TEXT COLLATE \"C\", ALTER exact TYPE TEXT COLLATE \"C\";"
    "ALTER TABLE ix_token ALTER type TYPE TEXT COLLATE \"C\", ALTER param TYPE TEXT COLLATE "
    "\"C\", ALTER system TYPE TEXT COLLATE \"C\", ALTER code TYPE TEXT COLLATE \"C\", ALTER "
    "text TYPE TEXT COLLATE \"C\";"
    "ALTER TABLE ix_date ALTER type TYPE TEXT COLLATE \"C\", ALTER param TYPE TEXT COLLATE "
    "\"C\";"
    "ALTER TABLE ix_number ALTER type TYPE TEXT COLLATE \"C\", ALTER param TYPE TEXT COLLATE "
    "\"C\";"
    "ALTER TABLE ix_quantity ALTER type TYPE TEXT COLLATE \"C\", ALTER param TYPE TEXT COLLATE "
    "\"C\", ALTER system TYPE TEXT COLLATE \"C\", ALTER code TYPE TEXT COLLATE \"C\", ALTER "
    "unit TYPE TEXT COLLATE \"C\", ALTER canonical_code TYPE TEXT COLLATE \"C\";"
    "ALTER TABLE ix_reference ALTER type TYPE TEXT COLLATE \"C\", ALTER param TYPE TEXT COLLATE "
    "\"C\", ALTER target_type TYPE TEXT COLLATE \"C\", ALTER target_id TYPE TEXT COLLATE \"C\", "
    "ALTER version TYPE TEXT COLLATE \"C\", ALTER url TYPE TEXT COLLATE \"C\", ALTER "
    "identifier_system TYPE TEXT COLLATE \"C\", ALTER identifier_value TYPE TEXT COLLATE \"C\";"
    "ALTER TABLE ix_uri ALTER type TYPE TEXT COLLATE \"C\", ALTER param TYPE TEXT COLLATE "
    "\"C\", ALTER value TYPE TEXT COLLATE \"C\";"
    "ALTER TABLE ix_composite ALTER type TYPE TEXT COLLATE \"C\", ALTER param TYPE TEXT COLLATE "
    "\"C\", ALTER c0_system TYPE TEXT COLLATE \"C\", ALTER c0_value TYPE TEXT COLLATE \"C\", "
    "ALTER c1_system TYPE TEXT COLLATE \"C\", ALTER c1_value TYPE TEXT COLLATE \"C\", ALTER "
    "c2_system TYPE TEXT COLLATE \"C\", ALTER c2_value TYPE TEXT COLLATE \"C\";"
    "ALTER TABLE ix_of_type ALTER type TYPE TEXT COLLATE \"C\", ALTER param TYPE TEXT COLLATE "
    "\"C\", ALTER type_system TYPE TEXT COLLATE \"C\", ALTER type_code TYPE TEXT COLLATE \"C\", "
    "ALTER value TYPE TEXT COLLATE \"C\";"
    "ALTER TABLE ix_position ALTER type TYPE TEXT COLLATE \"C\", ALTER param TYPE TEXT COLLATE "
    "\"C\";",
    /* 9: full text split into words by Concerto (sql_text.h), as SQLite's 9: `words` is
       written with the row instead of generated by PostgreSQL's parser; migrate_words
       fills it for the rows written before. */
    "ALTER TABLE ix_text DROP COLUMN words;"
    "ALTER TABLE ix_text ADD COLUMN words tsvector;"
    "CREATE INDEX ix_text_words ON ix_text USING GIN (words);",
    /* 10: accounts, OAuth clients and tokens (sql_auth.c), the same in both drivers */
    sql__auth_schema,
    /* 11: browser sessions and pending authorization requests (sql_session.c), the same in
       both drivers */
    sql__session_schema,
    /* 12: the audit trail and its chain head (sql_audit.c) */
    sql__audit_schema_pg,
    /* 13: an authorization code keeps its request's OpenID Connect nonce (sql_auth.c) */
    sql__auth_nonce_schema,
    /* 14: index the resources stored before the mark of those linked to no patient */
    sql__unlinked_reindex_schema,
    /* 15: the work rows of open Tasks and the role pools of unowned ones (sql_work.c), filled
       for the Tasks stored before by a reindex of Task */
    "CREATE TABLE task_work (rid BIGINT PRIMARY KEY, id TEXT COLLATE \"C\" NOT NULL, unlinked "
    "INTEGER NOT NULL, patient TEXT COLLATE \"C\","
    "  owner TEXT COLLATE \"C\", status TEXT COLLATE \"C\" NOT NULL, priority INTEGER,"
    "  due_us BIGINT);"
    "CREATE INDEX task_work_owner ON task_work (owner);"
    "CREATE INDEX task_work_patient ON task_work (patient);"
    "CREATE TABLE task_work_pool (pool TEXT COLLATE \"C\" NOT NULL, rid BIGINT NOT NULL,"
    "  PRIMARY KEY (pool, rid));"
    "CREATE INDEX task_work_pool_rid ON task_work_pool (rid);" SQL_TASK_WORK_REINDEX,
    /* 16: the risk rows of RiskAssessments (sql_work.c), filled for those stored before by a
       reindex of RiskAssessment */
    "CREATE TABLE risk_work (rid BIGINT PRIMARY KEY, patient TEXT COLLATE \"C\" NOT NULL,"
    "  when_us BIGINT, risk DOUBLE PRECISION);"
    "CREATE INDEX risk_work_patient ON risk_work (patient, when_us);"
    "CREATE TABLE care_member (member TEXT COLLATE \"C\" NOT NULL, rid BIGINT NOT NULL,"
    "  patient TEXT COLLATE \"C\" NOT NULL, role TEXT COLLATE \"C\" NOT NULL, from_us BIGINT,"
    "  until_us BIGINT);"
    "CREATE INDEX care_member_member ON care_member (member);"
    "CREATE INDEX care_member_rid ON care_member (rid);" SQL_RISK_WORK_REINDEX,
    /* 17: the HL7 v2 messages received, stored before they are processed (sql_hl7.c) */
    sql__hl7_schema_pg,
    /* 18: the author of each version (store_put_t.author); NULL for those written before */
    "ALTER TABLE resource_version ADD COLUMN author TEXT;",
    /* 19: the server's own keys, sealed (sql_server_key.c) */
    sql__server_key_schema,
};

/* ---- parameters and results ---------------------------------------------------------- */

void pg__text(pg_params_t *p, const char *s)
{
    if (p->n < PG_MAX_PARAMS)
        p->values[p->n++] = s;
}

void pg__int(pg_params_t *p, int64_t i)
{
    if (p->n >= PG_MAX_PARAMS)
        return;
    snprintf(p->numbers[p->n], sizeof(p->numbers[0]), "%lld", (long long)i);
    p->values[p->n] = p->numbers[p->n];
    p->n++;
}

void pg__double(pg_params_t *p, double d)
{
    if (p->n >= PG_MAX_PARAMS)
        return;
    if (isinf(d))
        snprintf(p->numbers[p->n], sizeof(p->numbers[0]), "%s", d < 0 ? "-Infinity" : "Infinity");
    else
        snprintf(p->numbers[p->n], sizeof(p->numbers[0]), "%.17g", d);
    p->values[p->n] = p->numbers[p->n];
    p->n++;
}

const char *pg__text_at(const PGresult *res, int row, int column, arena_t *arena, size_t *out_len)
{
    if (PQgetisnull(res, row, column)) {
        if (out_len)
            *out_len = 0;
        return NULL;
    }
    size_t len = (size_t)PQgetlength(res, row, column);
    if (out_len)
        *out_len = len;
    return arena_strndup(arena, PQgetvalue(res, row, column), len);
}

int64_t pg__int_at(const PGresult *res, int row, int column)
{
    if (PQgetisnull(res, row, column))
        return 0;
    return strtoll(PQgetvalue(res, row, column), NULL, 10);
}

/* ---- errors -------------------------------------------------------------------------- */

const char *pg__sqlstate(const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return state ? state : "";
}

status_t pg__fail(pg_conn_t *conn, PGresult *res, err_t *err, const char *doing)
{
    const char *state = pg__sqlstate(res);
    bool lost = !conn->pg || PQstatus(conn->pg) != CONNECTION_OK;
    status_t status;
    const char *message;
    if (lost || !strncmp(state, "08", 2) || !strncmp(state, "57P", 3)) {
        status = ERR_UNAVAILABLE;
        message = "the database cannot be reached; retry later";
    } else if (!strcmp(state, "40001") || !strcmp(state, "40P01") || !strcmp(state, "55P03")) {
        status = ERR_UNAVAILABLE;
        message = "the database gave way to a concurrent transaction; retry later";
    } else if (!strncmp(state, "53", 2)) {
        status = ERR_UNAVAILABLE;
        message = "the database is out of resources (disk, memory or connections); retry later";
    } else {
        status = ERR_STORAGE;
        message = "the database reported an error";
    }
    err_set(err, status, NULL, "%s", message);
    const char *text = res ? PQresultErrorMessage(res) : NULL;
    if (!text || !*text)
        text = conn->pg ? PQerrorMessage(conn->pg) : "no connection";
    err_log_detail(err, "postgresql: %s: %s [%s]", doing, text, state);
    return status;
}

/* ---- connections --------------------------------------------------------------------- */

static void notice_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* NOTICEs (e.g. "relation already exists, skipping") are not errors */
}

static status_t connect_handle(pg_db_t *db, PGconn **out, err_t *err)
{
    PGconn *pg = PQconnectdb(db->uri);
    if (!pg || PQstatus(pg) != CONNECTION_OK) {
        err_set(err, ERR_UNAVAILABLE, NULL, "could not connect to the PostgreSQL database");
        err_log_detail(err, "postgresql: connect: %s", pg ? PQerrorMessage(pg) : "out of memory");
        PQfinish(pg);
        return ERR_UNAVAILABLE;
    }
    PQsetNoticeProcessor(pg, notice_quiet, NULL);
    /* synchronous full: a commit waits for the WAL flush (the server's setting, normally on);
       normal or off: it does not, so a crash of PostgreSQL's machine may lose the last
       acknowledged commits but never leaves one half-written */
    PGresult *res = PQexec(pg, db->options.synchronous == STORE_SYNC_FULL
                                   ? "SET client_encoding = 'UTF8'; SET TIME ZONE 'UTC';"
                                     "SET application_name = 'concerto'"
                                   : "SET client_encoding = 'UTF8'; SET TIME ZONE 'UTC';"
                                     "SET application_name = 'concerto';"
                                     "SET synchronous_commit = off");
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
        err_set(err, ERR_STORAGE, NULL, "could not set up the PostgreSQL session");
        err_log_detail(err, "postgresql: session: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return ERR_STORAGE;
    }
    *out = pg;
    return ERR_OK;
}

/* Drops the shapes prepared on a connection that is gone (pg__run_shape). */
static void forget_shapes(pg_conn_t *conn)
{
    for (int i = 0; i < conn->nshapes; i++)
        free(conn->shapes[i]);
    conn->nshapes = 0;
}

/* Makes sure the connection is up: outside a transaction a lost one is re-established (and
 * its statements prepared again as they are used). */
static status_t ensure(pg_conn_t *conn, err_t *err)
{
    if (conn->pg && PQstatus(conn->pg) == CONNECTION_OK)
        return ERR_OK;
    if (conn->in_txn)
        return err_set(err, ERR_UNAVAILABLE, NULL,
                       "the connection to the database was lost; retry later");
    PQfinish(conn->pg);
    conn->pg = NULL;
    memset(conn->prepared, 0, sizeof(conn->prepared));
    forget_shapes(conn);
    status_t rc = connect_handle(conn->db, &conn->pg, err);
    if (!rc)
        log_info("postgresql: reconnected");
    return rc;
}

static status_t check_result(pg_conn_t *conn, PGresult *res, PGresult **out, err_t *err,
                             const char *doing)
{
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (out)
            *out = res;
        else
            PQclear(res);
        return ERR_OK;
    }
    status_t rc = pg__fail(conn, res, err, doing);
    PQclear(res);
    return rc;
}

/* Sends a statement: fixed statement `which` (prepared once per connection from sql, or
 * statement_sql[which] when sql is NULL), or sql with params, or sql as a script (params
 * NULL, which < 0). */
static PGresult *send(pg_conn_t *conn, int which, const char *sql, bool with_params, int n,
                      const char *const *values, err_t *err, status_t *rc)
{
    *rc = ensure(conn, err);
    if (*rc)
        return NULL;
    if (which >= 0) {
        char name[16];
        snprintf(name, sizeof(name), "s%d", which);
        if (!conn->prepared[which]) {
            PGresult *res = PQprepare(conn->pg, name, sql ? sql : statement_sql[which], 0, NULL);
            if (PQresultStatus(res) != PGRES_COMMAND_OK)
                return res;
            PQclear(res);
            conn->prepared[which] = true;
        }
        return PQexecPrepared(conn->pg, name, n, values, NULL, NULL, 0);
    }
    if (!with_params)
        return PQexec(conn->pg, sql);
    return PQexecParams(conn->pg, sql, n, NULL, values, NULL, NULL, 0);
}

/*
 * Runs a statement and checks its result. A connection found broken outside a transaction
 * (the server restarted since the last statement) is re-established and the statement sent
 * once more: nothing of it can have run.
 */
static status_t execute_values(pg_conn_t *conn, int which, const char *sql, bool with_params, int n,
                               const char *const *values, PGresult **out, err_t *err)
{
    for (int attempt = 0;; attempt++) {
        status_t rc;
        PGresult *res = send(conn, which, sql, with_params, n, values, err, &rc);
        if (!res && rc)
            return rc;
        if (attempt == 0 && !conn->in_txn && PQstatus(conn->pg) == CONNECTION_BAD) {
            PQclear(res);
            continue;
        }
        return check_result(conn, res, out, err, sql ? sql : statement_sql[which]);
    }
}

static status_t execute(pg_conn_t *conn, int which, const char *sql, const pg_params_t *params,
                        PGresult **out, err_t *err)
{
    return execute_values(conn, which, sql, params != NULL, params ? params->n : 0,
                          params ? params->values : NULL, out, err);
}

status_t pg__run(pg_conn_t *conn, int which, const pg_params_t *params, PGresult **out, err_t *err)
{
    return execute(conn, which, NULL, params, out, err);
}

status_t pg__run_named(pg_conn_t *conn, int which, const char *sql, const pg_params_t *params,
                       PGresult **out, err_t *err)
{
    return execute(conn, which, sql, params, out, err);
}

status_t pg__run_named_values(pg_conn_t *conn, int which, const char *sql, int n,
                              const char *const *values, PGresult **out, err_t *err)
{
    return execute_values(conn, which, sql, true, n, values, out, err);
}

int64_t pg__changes(const PGresult *res)
{
    const char *n = PQcmdTuples((PGresult *)res);
    return n && *n ? strtoll(n, NULL, 10) : 0;
}

status_t pg__run_sql(pg_conn_t *conn, const char *sql, const pg_params_t *params, PGresult **out,
                     err_t *err)
{
    pg_params_t none = {0};
    return execute(conn, -1, sql, params ? params : &none, out, err);
}

status_t pg__run_values(pg_conn_t *conn, const char *sql, int n, const char *const *values,
                        PGresult **out, err_t *err)
{
    for (int attempt = 0;; attempt++) {
        status_t rc = ensure(conn, err);
        if (rc)
            return rc;
        PGresult *res = PQexecParams(conn->pg, sql, n, NULL, values, NULL, NULL, 0);
        if (attempt == 0 && !conn->in_txn && PQstatus(conn->pg) == CONNECTION_BAD) {
            PQclear(res);
            continue;
        }
        return check_result(conn, res, out, err, sql);
    }
}

/* The name ("p<n>") of the shape sql prepared on the connection, preparing it the first time;
 * false when the connection holds PG_SHAPES others (sql runs unprepared), or *out_res set to
 * the failed preparation's result. */
static bool shape_name(pg_conn_t *conn, const char *sql, char *name, size_t size,
                       PGresult **out_res)
{
    *out_res = NULL;
    int at = 0;
    while (at < conn->nshapes && strcmp(conn->shapes[at], sql) != 0)
        at++;
    if (at == PG_SHAPES)
        return false;
    snprintf(name, size, "p%d", at);
    if (at < conn->nshapes)
        return true;
    PGresult *res = PQprepare(conn->pg, name, sql, 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        *out_res = res;
        return false;
    }
    PQclear(res);
    conn->shapes[conn->nshapes++] = xstrdup(sql);
    return true;
}

status_t pg__run_shape(pg_conn_t *conn, const char *sql, int n, const char *const *values,
                       PGresult **out, err_t *err)
{
    for (int attempt = 0;; attempt++) {
        status_t rc = ensure(conn, err);
        if (rc)
            return rc;
        char name[16];
        PGresult *res;
        if (shape_name(conn, sql, name, sizeof(name), &res))
            res = PQexecPrepared(conn->pg, name, n, values, NULL, NULL, 0);
        else if (!res)
            res = PQexecParams(conn->pg, sql, n, NULL, values, NULL, NULL, 0);
        if (attempt == 0 && !conn->in_txn && PQstatus(conn->pg) == CONNECTION_BAD) {
            PQclear(res);
            continue;
        }
        return check_result(conn, res, out, err, sql);
    }
}

static status_t exec(pg_conn_t *conn, const char *sql, err_t *err)
{
    return execute(conn, -1, sql, NULL, NULL, err);
}

static status_t pg_open(const char *location, const store_options_t *options, void **out_db,
                        err_t *err)
{
    pg_db_t *db = xcalloc(1, sizeof(*db));
    db->uri = xstrdup(location);
    db->options = *options;
    PGconn *pg;
    status_t rc = connect_handle(db, &pg, err);
    if (rc) {
        free(db->uri);
        free(db);
        return rc;
    }
    PQfinish(pg);
    if (options->replica) {
        /* not connected now: a replica that is down must not keep the server from starting */
        db->replica = xcalloc(1, sizeof(*db->replica));
        db->replica->uri = xstrdup(options->replica);
        db->replica->options = *options;
        db->replica->options.replica = NULL;
        db->options.replica = NULL;
    }
    *out_db = db;
    return ERR_OK;
}

static void pg_close(void *opaque)
{
    pg_db_t *db = opaque;
    if (db->replica)
        pg_close(db->replica);
    free(db->uri);
    free(db);
}

static status_t pg_connect(void *opaque, bool writer, void **out_conn, err_t *err)
{
    pg_conn_t *conn = xcalloc(1, sizeof(*conn));
    conn->db = opaque;
    conn->writer = writer;
    status_t rc = connect_handle(conn->db, &conn->pg, err);
    if (rc) {
        free(conn);
        return rc;
    }
    *out_conn = conn;
    return ERR_OK;
}

static status_t pg_connect_replica(void *opaque, void **out_conn, err_t *err)
{
    pg_db_t *db = opaque;
    if (!db->replica)
        return err_set(err, ERR_INTERNAL, NULL, "the store has no read replica");
    return pg_connect(db->replica, false, out_conn, err);
}

/*
 * How far a hot standby is behind. The time of the last transaction it replayed says how old
 * its data is only while there is something to replay: on an idle primary that time stands
 * still while the standby is fully caught up. So a standby that streams from its primary and
 * has replayed all it received is not behind at all; otherwise the lag is the age of the last
 * replayed transaction (unknown when it has replayed none since it started).
 */
static status_t pg_replica_lag(void *opaque, int64_t *out_lag_us, err_t *err)
{
    pg_conn_t *conn = opaque;
    PGresult *res;
    status_t rc = pg__run_sql(
        conn,
        "SELECT pg_is_in_recovery(),"
        " coalesce(pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(), false)"
        "  AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver),"
        " greatest(0, (extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000000)"
        "  ::bigint)",
        NULL, &res, err);
    if (rc)
        return rc;
    bool standby = !strcmp(PQgetvalue(res, 0, 0), "t");
    bool caught_up = !strcmp(PQgetvalue(res, 0, 1), "t");
    if (!standby || caught_up)
        *out_lag_us = 0;
    else if (PQgetisnull(res, 0, 2))
        *out_lag_us = INT64_MAX;
    else
        *out_lag_us = pg__int_at(res, 0, 2);
    PQclear(res);
    return ERR_OK;
}

static bool pg_park(void *opaque)
{
    pg_conn_t *conn = opaque;
    return !conn->writer && PQstatus(conn->pg) == CONNECTION_OK &&
           PQtransactionStatus(conn->pg) == PQTRANS_IDLE;
}

static void pg_disconnect(void *opaque)
{
    pg_conn_t *conn = opaque;
    if (!conn)
        return;
    PQfinish(conn->pg);
    forget_shapes(conn);
    free(conn);
}

/* Migration 9: the words of the full text written before it, as write_text writes them now
 * (500 rows at a time). */
static status_t migrate_words(pg_conn_t *conn, err_t *err)
{
    int64_t after = INT64_MIN;
    for (;;) {
        pg_params_t p = {0};
        pg__int(&p, after);
        PGresult *res;
        status_t rc = pg__run_sql(conn,
                                  "SELECT rid, narrative, content FROM ix_text WHERE rid > "
                                  "$1::bigint ORDER BY rid LIMIT 500",
                                  &p, &res, err);
        if (rc)
            return rc;
        int n = PQntuples(res);
        for (int i = 0; i < n && !rc; i++) {
            after = pg__int_at(res, i, 0);
            buf_t words = BUF_INIT;
            sql__text_tsvector(PQgetisnull(res, i, 1) ? NULL : PQgetvalue(res, i, 1),
                               PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2), &words);
            pg_params_t u = {0};
            pg__int(&u, after);
            pg__text(&u, words.ptr);
            rc = pg__run_sql(conn, "UPDATE ix_text SET words = $2::tsvector WHERE rid = $1::bigint",
                             &u, NULL, err);
            buf_release(&words);
        }
        PQclear(res);
        if (rc || n < 500)
            return rc;
    }
}

static status_t pg_migrate(void *opaque, int *out_version, err_t *err)
{
    pg_conn_t conn = {.db = opaque};
    status_t rc = connect_handle(conn.db, &conn.pg, err);
    if (rc)
        return rc;
    int latest = (int)(sizeof(migrations) / sizeof(migrations[0]));
    PGresult *res = NULL;
    rc = exec(&conn,
              "BEGIN; SELECT pg_advisory_xact_lock(" MIGRATION_LOCK ");"
              "CREATE TABLE IF NOT EXISTS schema_migration ("
              "  version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);",
              err);
    if (rc)
        goto out;
    conn.in_txn = true;
    rc = pg__run_sql(&conn, "SELECT coalesce(max(version), 0) FROM schema_migration", NULL, &res,
                     err);
    if (rc)
        goto rollback;
    int version = (int)pg__int_at(res, 0, 0);
    PQclear(res);
    if (version > latest) {
        rc = err_set(err, ERR_STORAGE, NULL,
                     "the database is at schema version %d, newer than this Concerto (%d)", version,
                     latest);
        goto rollback;
    }
    for (int v = version; v < latest; v++) {
        if ((rc = exec(&conn, migrations[v], err)))
            goto rollback;
        if (v + 1 == 9 && (rc = migrate_words(&conn, err)))
            goto rollback;
        pg_params_t p = {0};
        pg__int(&p, v + 1);
        rc = pg__run_sql(&conn,
                         "INSERT INTO schema_migration VALUES ($1::integer, "
                         "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))",
                         &p, NULL, err);
        if (rc)
            goto rollback;
    }
    if ((rc = exec(&conn, "COMMIT", err)))
        goto out;
    *out_version = latest;
    goto out;
rollback:
    PQclear(PQexec(conn.pg, "ROLLBACK"));
out:
    PQfinish(conn.pg);
    return rc;
}

/* ---- reading ------------------------------------------------------------------------- */

/* Columns from `first`: version, seq, updated_us, last_updated, method, status, deleted, json,
 * author. */
static void row_to_version(const PGresult *res, int row, int first, arena_t *arena,
                           store_version_t *out)
{
    out->version = pg__int_at(res, row, first + 0);
    out->seq = pg__int_at(res, row, first + 1);
    out->updated_us = pg__int_at(res, row, first + 2);
    out->last_updated = pg__text_at(res, row, first + 3, arena, NULL);
    out->method = pg__text_at(res, row, first + 4, arena, NULL);
    out->status = (int)pg__int_at(res, row, first + 5);
    out->deleted = pg__int_at(res, row, first + 6) != 0;
    out->json = pg__text_at(res, row, first + 7, arena, &out->json_len);
    out->author = pg__text_at(res, row, first + 8, arena, NULL);
}

static status_t pg_read(void *opaque, const char *type, const char *id, int64_t version,
                        arena_t *arena, store_version_t *out, err_t *err)
{
    pg_conn_t *conn = opaque;
    pg_params_t p = {0};
    pg__text(&p, type);
    pg__text(&p, id);
    if (version)
        pg__int(&p, version);
    PGresult *res;
    status_t rc = pg__run(conn, version ? PG_READ_VERSION : PG_READ_CURRENT, &p, &res, err);
    if (rc)
        return rc;
    if (PQntuples(res) == 0) {
        rc = version ? err_set(err, ERR_NOT_FOUND, NULL, "%s/%s has no version %lld", type, id,
                               (long long)version)
                     : err_set(err, ERR_NOT_FOUND, NULL, "%s/%s is not known", type, id);
    } else {
        out->type = arena_strdup(arena, type);
        out->id = arena_strdup(arena, id);
        row_to_version(res, 0, 0, arena, out);
    }
    PQclear(res);
    return rc;
}

static status_t pg_history(void *opaque, const store_history_query_t *q, arena_t *arena,
                           store_history_t *out, err_t *err)
{
    pg_conn_t *conn = opaque;
    /* The WHERE clause is assembled from fixed fragments; every value is a parameter. */
    char where[256];
    pg_params_t p = {0};
    int n = 0;
    size_t len = 0;
    where[0] = 0;
#define WHERE_ADD(fmt, ...) \
    len += (size_t)snprintf(where + len, sizeof(where) - len, fmt, __VA_ARGS__)
    if (q->type) {
        pg__text(&p, q->type);
        WHERE_ADD(" AND type = $%d", ++n);
    }
    if (q->id) {
        pg__text(&p, q->id);
        WHERE_ADD(" AND id = $%d", ++n);
    }
    if (q->since_us != INT64_MIN) {
        pg__int(&p, q->since_us);
        WHERE_ADD(" AND updated_us >= $%d", ++n);
    }
    const char *visible = "";
    if (q->visibility) {
        /* the version's resource is visible */
        const char *binds[SQL_VISIBLE_BINDS];
        buf_t b = BUF_INIT;
        buf_addstr(&b, " AND EXISTS (SELECT 1 FROM resource a WHERE a.type = "
                       "resource_version.type AND a.id = resource_version.id AND ");
        sql__visible(&sql__postgres, q->visibility, "a", n + 1, arena, &b, binds);
        buf_addch(&b, ')');
        visible = arena_strndup(arena, b.ptr, b.len);
        buf_release(&b);
        for (int i = 0; i < SQL_VISIBLE_BINDS; i++)
            pg__text(&p, binds[i]);
        n += SQL_VISIBLE_BINDS;
    }
    int nfilter = n;
    bool newer = q->after_seq > 0;
    pg__int(&p, newer ? q->after_seq : q->before_seq);
    WHERE_ADD(newer ? " AND seq > $%d" : " AND seq < $%d", ++n);
#undef WHERE_ADD
    pg__int(&p, (int64_t)q->count + 1);
    const char *sql = arena_printf(
        arena,
        "SELECT type, id, version, seq, updated_us, last_updated, method, status, deleted, "
        "json, author FROM resource_version WHERE true%s%s ORDER BY seq %s LIMIT $%d",
        visible, where, newer ? "ASC" : "DESC", n + 1);
    PGresult *res;
    status_t rc = pg__run_sql(conn, sql, &p, &res, err);
    if (rc)
        return rc;
    int rows = PQntuples(res);
    out->versions = arena_alloc(arena, (q->count + 1) * sizeof(store_version_t));
    out->n = 0;
    out->total = -1;
    bool extra = rows > (int)q->count;
    for (int r = 0; r < rows && out->n < q->count; r++) {
        store_version_t *v = &out->versions[out->n++];
        v->type = pg__text_at(res, r, 0, arena, NULL);
        v->id = pg__text_at(res, r, 1, arena, NULL);
        row_to_version(res, r, 2, arena, v);
    }
    PQclear(res);
    if (newer) {
        /* fetched oldest first: put newest first like every page */
        for (size_t i = 0; i < out->n / 2; i++) {
            store_version_t tmp = out->versions[i];
            out->versions[i] = out->versions[out->n - 1 - i];
            out->versions[out->n - 1 - i] = tmp;
        }
        out->more_newer = extra;
        out->more_older = true;
    } else {
        out->more_older = extra;
        out->more_newer = q->before_seq != INT64_MAX;
    }
    if (q->want_total) {
        /* the same filters without the page bounds: the first nfilter parameters */
        char *cut = strstr(where, newer ? " AND seq >" : " AND seq <");
        if (cut)
            *cut = 0;
        sql = arena_printf(arena, "SELECT count(*) FROM resource_version WHERE true%s%s", visible,
                           where);
        p.n = nfilter;
        if ((rc = pg__run_sql(conn, sql, &p, &res, err)))
            return rc;
        out->total = pg__int_at(res, 0, 0);
        PQclear(res);
    }
    return ERR_OK;
}

static status_t pg_count(void *opaque, const char *type, int64_t *out, err_t *err)
{
    pg_conn_t *conn = opaque;
    pg_params_t p = {0};
    if (type)
        pg__text(&p, type);
    PGresult *res;
    status_t rc = pg__run(conn, type ? PG_COUNT_TYPE : PG_COUNT_ALL, &p, &res, err);
    if (rc)
        return rc;
    *out = pg__int_at(res, 0, 0);
    PQclear(res);
    return ERR_OK;
}

static status_t pg_scan(void *opaque, const char *type, int64_t after_rid, size_t count,
                        arena_t *arena, store_scan_row_t **out_rows, size_t *out_n, err_t *err)
{
    pg_conn_t *conn = opaque;
    pg_params_t p = {0};
    pg__int(&p, after_rid);
    pg__int(&p, (int64_t)count);
    if (type)
        pg__text(&p, type);
    PGresult *res;
    status_t rc = pg__run(conn, type ? PG_SCAN_TYPE : PG_SCAN, &p, &res, err);
    if (rc)
        return rc;
    size_t n = (size_t)PQntuples(res);
    if (n > count)
        n = count;
    store_scan_row_t *rows = arena_alloc(arena, (count ? count : 1) * sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        store_scan_row_t *row = &rows[i];
        row->rid = pg__int_at(res, (int)i, 0);
        row->type = pg__text_at(res, (int)i, 1, arena, NULL);
        row->id = pg__text_at(res, (int)i, 2, arena, NULL);
        row->json = pg__text_at(res, (int)i, 3, arena, &row->json_len);
        row->version = pg__int_at(res, (int)i, 4);
    }
    PQclear(res);
    *out_rows = rows;
    *out_n = n;
    return ERR_OK;
}

/* ---- transactions -------------------------------------------------------------------- */

static status_t pg_begin(void *opaque, err_t *err)
{
    pg_conn_t *conn = opaque;
    status_t rc = exec(conn, "BEGIN", err);
    if (!rc)
        conn->in_txn = true;
    return rc;
}

/* synchronous_commit off for this transaction alone: its commit does not wait for the WAL
 * flush; the WAL writer flushes it within a few hundred ms, and any synchronous commit after
 * it flushes the WAL up to its own record, so this one's too. */
static status_t pg_begin_relaxed(void *opaque, err_t *err)
{
    pg_conn_t *conn = opaque;
    status_t rc = exec(conn, "BEGIN; SET LOCAL synchronous_commit = off", err);
    if (!rc)
        conn->in_txn = true;
    return rc;
}

static status_t pg_commit(void *opaque, err_t *err)
{
    pg_conn_t *conn = opaque;
    status_t rc = ensure(conn, err);
    if (rc)
        return rc;
    PGresult *res = PQexec(conn->pg, "COMMIT");
    /* a transaction left in an aborted state answers COMMIT with ROLLBACK */
    bool rolled_back =
        PQresultStatus(res) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(res), "ROLLBACK") == 0;
    rc = check_result(conn, res, NULL, err, "COMMIT");
    if (!rc && rolled_back)
        rc = err_set(err, ERR_STORAGE, NULL, "the transaction was rolled back by the database");
    if (!rc || PQtransactionStatus(conn->pg) == PQTRANS_IDLE)
        conn->in_txn = false;
    return rc;
}

static void pg_rollback(void *opaque)
{
    pg_conn_t *conn = opaque;
    if (conn->pg && PQstatus(conn->pg) == CONNECTION_OK &&
        PQtransactionStatus(conn->pg) != PQTRANS_IDLE)
        PQclear(PQexec(conn->pg, "ROLLBACK"));
    conn->in_txn = false;
}

static status_t pg_savepoint(void *opaque, err_t *err)
{
    return exec(opaque, "SAVEPOINT txn", err);
}

static status_t pg_release(void *opaque, err_t *err)
{
    return exec(opaque, "RELEASE SAVEPOINT txn", err);
}

static void pg_rollback_to(void *opaque)
{
    pg_conn_t *conn = opaque;
    if (conn->pg && PQstatus(conn->pg) == CONNECTION_OK)
        PQclear(PQexec(conn->pg, "ROLLBACK TO SAVEPOINT txn"));
}

static status_t pg_current(void *opaque, const char *type, const char *id, store_current_t *out,
                           err_t *err)
{
    pg_conn_t *conn = opaque;
    pg_params_t p = {0};
    pg__text(&p, type);
    pg__text(&p, id);
    PGresult *res;
    status_t rc = pg__run(conn, PG_CURRENT, &p, &res, err);
    if (rc)
        return rc;
    if (PQntuples(res) > 0) {
        out->version = pg__int_at(res, 0, 0);
        out->deleted = pg__int_at(res, 0, 1) != 0;
    } else {
        out->version = 0;
        out->deleted = false;
    }
    PQclear(res);
    return ERR_OK;
}

/* The four parameters of one component of a composite row. */
static void component_params(pg_params_t *p, const fhir_index_value_t *v)
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
    pg__text(p, system);
    pg__text(p, value);
    switch (v->kind) {
    case FHIR_INDEX_DATE:
        pg__int(p, v->as.date.low);
        pg__int(p, v->as.date.high);
        break;
    case FHIR_INDEX_NUMBER:
        pg__double(p, v->as.number.low);
        pg__double(p, v->as.number.high);
        break;
    case FHIR_INDEX_QUANTITY:
        pg__double(p, v->as.quantity.low);
        pg__double(p, v->as.quantity.high);
        break;
    default: pg__text(p, NULL); pg__text(p, NULL);
    }
}

/* The parameters of the insert of one index row: rid, type, param and the kind's columns. */
static void row_params(pg_params_t *pp, int64_t rid, const char *type, const fhir_index_row_t *row)
{
    const fhir_index_value_t *v = &row->value;
    pg_params_t p = {0};
    pg__int(&p, rid);
    pg__text(&p, type);
    pg__text(&p, row->param);
    switch (v->kind) {
    case FHIR_INDEX_STRING:
        pg__text(&p, v->as.string.normalized);
        pg__text(&p, v->as.string.exact);
        break;
    case FHIR_INDEX_TOKEN:
        pg__text(&p, v->as.token.system);
        pg__text(&p, v->as.token.code);
        pg__text(&p, v->as.token.text);
        break;
    case FHIR_INDEX_DATE:
        pg__int(&p, v->as.date.low);
        pg__int(&p, v->as.date.high);
        break;
    case FHIR_INDEX_NUMBER:
        pg__double(&p, v->as.number.low);
        pg__double(&p, v->as.number.high);
        break;
    case FHIR_INDEX_QUANTITY:
        pg__text(&p, v->as.quantity.system);
        pg__text(&p, v->as.quantity.code);
        pg__text(&p, v->as.quantity.unit);
        pg__double(&p, v->as.quantity.low);
        pg__double(&p, v->as.quantity.high);
        pg__text(&p, v->as.quantity.canonical_code);
        if (v->as.quantity.canonical_code) {
            pg__double(&p, v->as.quantity.canonical_low);
            pg__double(&p, v->as.quantity.canonical_high);
        } else {
            pg__text(&p, NULL);
            pg__text(&p, NULL);
        }
        break;
    case FHIR_INDEX_POSITION:
        pg__double(&p, v->as.position.latitude);
        pg__double(&p, v->as.position.longitude);
        break;
    case FHIR_INDEX_REFERENCE:
        pg__text(&p, v->as.reference.type);
        pg__text(&p, v->as.reference.id);
        pg__text(&p, v->as.reference.version);
        pg__text(&p, v->as.reference.url);
        pg__text(&p, v->as.reference.identifier_system);
        pg__text(&p, v->as.reference.identifier_value);
        break;
    case FHIR_INDEX_URI: pg__text(&p, v->as.uri.value); break;
    case FHIR_INDEX_COMPOSITE:
        for (size_t i = 0; i < 3; i++) {
            if (i < v->as.composite.ncomponents) {
                component_params(&p, &v->as.composite.components[i]);
            } else {
                for (int k = 0; k < 4; k++)
                    pg__text(&p, NULL);
            }
        }
        break;
    case FHIR_INDEX_OF_TYPE:
        pg__text(&p, v->as.of_type.type_system);
        pg__text(&p, v->as.of_type.type_code);
        pg__text(&p, v->as.of_type.value);
        break;
    }
    *pp = p;
    /* the numbers are in p's own buffers: point at pp's */
    for (int i = 0; i < pp->n; i++)
        if (p.values[i] == p.numbers[i])
            pp->values[i] = pp->numbers[i];
}

static status_t insert_row(pg_conn_t *conn, int64_t rid, const char *type,
                           const fhir_index_row_t *row, err_t *err)
{
    pg_params_t p;
    row_params(&p, rid, type, row);
    return pg__run(conn, PG_INSERT_INDEX + row->value.kind, &p, NULL, err);
}

/* Appends a value to an array literal being built ("{" already there): quoted, with " and \
 * escaped, or NULL. */
static void array_add(buf_t *array, const char *value)
{
    if (array->len > 1)
        buf_addch(array, ',');
    if (!value) {
        buf_addstr(array, "NULL");
        return;
    }
    buf_addch(array, '"');
    for (const char *c = value; *c; c++) {
        if (*c == '"' || *c == '\\')
            buf_addch(array, '\\');
        buf_addch(array, *c);
    }
    buf_addch(array, '"');
}

/*
 * Inserts the index rows of one resource (rid, type): the rows of each kind in one statement
 * (arrays of the columns, unnest), so that a version costs a round trip per kind of row it
 * has rather than one per row.
 */
static status_t insert_rows(pg_conn_t *conn, int64_t rid, const char *type,
                            const fhir_index_rows_t *rows, err_t *err)
{
    for (int k = 0; k < FHIR_INDEX_KIND_COUNT; k++) {
        size_t n = 0;
        const fhir_index_row_t *only = NULL;
        for (size_t i = 0; i < rows->n; i++)
            if ((int)rows->rows[i].value.kind == k) {
                n++;
                only = &rows->rows[i];
            }
        if (n == 0)
            continue;
        if (n == 1) {
            status_t rc = insert_row(conn, rid, type, only, err);
            if (rc)
                return rc;
            continue;
        }
        buf_t columns[PG_MAX_PARAMS];
        int ncolumns = 0;
        for (size_t i = 0; i < rows->n; i++) {
            if ((int)rows->rows[i].value.kind != k)
                continue;
            pg_params_t p;
            row_params(&p, rid, type, &rows->rows[i]);
            if (!ncolumns) {
                ncolumns = p.n - 2;
                for (int c = 0; c < ncolumns; c++) {
                    columns[c] = (buf_t)BUF_INIT;
                    buf_addch(&columns[c], '{');
                }
            }
            for (int c = 0; c < ncolumns; c++)
                array_add(&columns[c], p.values[2 + c]);
        }
        pg_params_t p = {0};
        pg__int(&p, rid);
        pg__text(&p, type);
        for (int c = 0; c < ncolumns; c++) {
            buf_addch(&columns[c], '}');
            pg__text(&p, columns[c].ptr);
        }
        status_t rc = pg__run(conn, PG_BATCH_INDEX + k, &p, NULL, err);
        for (int c = 0; c < ncolumns; c++)
            buf_release(&columns[c]);
        if (rc)
            return rc;
    }
    return ERR_OK;
}

/* Runs a fixed statement that takes one integer and returns no row. */
static status_t run_with_id(pg_conn_t *conn, int which, int64_t value, err_t *err)
{
    pg_params_t p = {0};
    pg__int(&p, value);
    return pg__run(conn, which, &p, NULL, err);
}

/* The index type of the rows of a contained resource of `type`, or of a container's
 * references to its contained resources: "#" and the type. */
static const char *contained_type(char *out, size_t size, const char *type)
{
    snprintf(out, size, "#%s", type);
    return out;
}

/* Removes the contained resources of container with their rows (as the SQLite driver, with
 * one statement per table for all of them). */
static status_t delete_contained(pg_conn_t *conn, int64_t container, err_t *err)
{
    pg_params_t p = {0};
    pg__int(&p, container);
    PGresult *res;
    status_t rc = pg__run(conn, PG_CONTAINED_LIST, &p, &res, err);
    if (rc)
        return rc;
    bool any = PQntuples(res) > 0;
    PQclear(res);
    if (!any)
        return ERR_OK;
    for (int k = 0; k < FHIR_INDEX_KIND_COUNT && !rc; k++)
        rc = run_with_id(conn, PG_DELETE_CONTAINED_INDEX + k, container, err);
    if (!rc)
        rc = run_with_id(conn, PG_DELETE_CONTAINED_REFS, container, err);
    if (!rc)
        rc = run_with_id(conn, PG_DELETE_CONTAINED, container, err);
    return rc;
}

/* Writes the contained resources of container and their rows, and the container's references
 * to them (reference rows of type "#" and the container's type, keyed by minus the contained
 * resource's key), as the SQLite driver does. */
static status_t insert_contained(pg_conn_t *conn, int64_t container, const char *type,
                                 const fhir_index_rows_t *rows, err_t *err)
{
    char prefixed[96], container_type[96];
    status_t rc;
    contained_type(container_type, sizeof(container_type), type);
    for (size_t c = 0; c < rows->ncontained; c++) {
        const fhir_index_contained_t *contained = &rows->contained[c];
        pg_params_t p = {0};
        pg__int(&p, container);
        pg__text(&p, contained->type);
        pg__text(&p, contained->id);
        PGresult *res;
        if ((rc = pg__run(conn, PG_CONTAINED_INSERT, &p, &res, err)))
            return rc;
        int64_t rid = pg__int_at(res, 0, 0);
        PQclear(res);
        contained_type(prefixed, sizeof(prefixed), contained->type);
        for (size_t i = 0; i < contained->n; i++)
            if ((rc = insert_row(conn, rid, prefixed, &contained->rows[i], err)))
                return rc;
        for (size_t i = 0; i < rows->nlocal_refs; i++) {
            const fhir_index_row_t *ref = &rows->local_refs[i];
            if (strcmp(ref->value.as.reference.url + 1, contained->id) == 0 &&
                (rc = insert_row(conn, -rid, container_type, ref, err)))
                return rc;
        }
    }
    return ERR_OK;
}

/* Replaces the full text of rid (ix_text; the tsvector of its words, sql_text.h). */
static status_t write_text(pg_conn_t *conn, int64_t rid, bool is_new, const fhir_index_rows_t *rows,
                           err_t *err)
{
    status_t rc;
    if (!is_new && (rc = run_with_id(conn, PG_DELETE_TEXT, rid, err)))
        return rc;
    if (!rows || (!rows->content && !rows->narrative))
        return ERR_OK;
    pg_params_t p = {0};
    pg__int(&p, rid);
    pg__text(&p, rows->content);
    pg__text(&p, rows->narrative);
    buf_t words = BUF_INIT;
    sql__text_tsvector(rows->narrative, rows->content, &words);
    pg__text(&p, words.ptr);
    rc = pg__run(conn, PG_INSERT_TEXT, &p, NULL, err);
    buf_release(&words);
    return rc;
}

/* Replaces the index rows of rid: the old ones go (unless the resource is new), the new ones
 * come (unless it is deleted); with them its full text and contained resources. */
/*
 * The work rows (sql_work.c's tables: store.h "Task work rows", "Risk rows", "Care team member
 * rows") of a version, in one prepared statement each, the round trip a Task write pays for
 * them: the row upserted and the pools not kept deleted beside the insert of the new ones
 * (CTEs); a row gone deleted. The shared SQL of sql_work.c (two deletes and an insert per row)
 * remains the SQLite driver's, whose statements cost no round trip.
 */
static const char task_work_write_sql[] =
    "WITH w AS (INSERT INTO task_work (rid, id, unlinked, patient, owner, status, priority, "
    "due_us) VALUES ($1::bigint, $2, $3::integer, $4, $5, $6, $7::integer, $8::bigint) ON "
    "CONFLICT (rid) DO UPDATE SET id = EXCLUDED.id, unlinked = EXCLUDED.unlinked, patient = "
    "EXCLUDED.patient, owner = EXCLUDED.owner, status = EXCLUDED.status, priority = "
    "EXCLUDED.priority, due_us = EXCLUDED.due_us), d AS (DELETE FROM task_work_pool WHERE rid = "
    "$1::bigint AND pool <> ALL ($9::text[])) INSERT INTO task_work_pool (pool, rid) SELECT "
    "DISTINCT unnest($9::text[]), $1::bigint ON CONFLICT DO NOTHING";
static const char task_work_clear_sql[] =
    "WITH w AS (DELETE FROM task_work WHERE rid = $1::bigint) DELETE FROM task_work_pool WHERE "
    "rid = $1::bigint";
static const char risk_write_sql[] =
    "INSERT INTO risk_work (rid, patient, when_us, risk) VALUES ($1::bigint, $2, $3::bigint, "
    "$4::double precision) ON CONFLICT (rid) DO UPDATE SET patient = EXCLUDED.patient, when_us "
    "= EXCLUDED.when_us, risk = EXCLUDED.risk";
static const char risk_clear_sql[] = "DELETE FROM risk_work WHERE rid = $1::bigint";
/* care_member has no unique key: the delete (of the rows before, by the statement's snapshot)
   and the insert of the new ones do not meet */
static const char care_write_sql[] =
    "WITH d AS (DELETE FROM care_member WHERE rid = $1::bigint) INSERT INTO care_member (rid, "
    "patient, member, role, from_us, until_us) SELECT $1::bigint, $2, m, r, f, u FROM "
    "unnest($3::text[], $4::text[], $5::bigint[], $6::bigint[]) AS x (m, r, f, u)";

static const char *array_text(buf_t *array)
{
    buf_addch(array, '}');
    return array->ptr;
}

static status_t write_work(pg_conn_t *conn, int64_t rid, const char *type, const char *id,
                           bool is_new, const fhir_index_rows_t *rows, err_t *err)
{
    pg_params_t p = {0};
    pg__int(&p, rid);
    status_t rc = ERR_OK;
    if (strcmp(type, "Task") == 0) {
        const fhir_task_work_t *w = rows ? rows->task_work : NULL;
        if (!w)
            return is_new ? ERR_OK
                          : pg__run_named(conn, PG_TASK_WORK_CLEAR, task_work_clear_sql, &p, NULL,
                                          err);
        buf_t pools = BUF_INIT;
        buf_addch(&pools, '{');
        for (size_t i = 0; i < w->npools; i++)
            array_add(&pools, w->pools[i]);
        pg__text(&p, id);
        pg__int(&p, w->unlinked);
        pg__text(&p, w->patient);
        pg__text(&p, w->owner);
        pg__text(&p, w->status);
        if (w->priority >= 0)
            pg__int(&p, w->priority);
        else
            pg__text(&p, NULL);
        if (w->due_us != INT64_MAX)
            pg__int(&p, w->due_us);
        else
            pg__text(&p, NULL);
        pg__text(&p, array_text(&pools));
        rc = pg__run_named(conn, PG_TASK_WORK_WRITE, task_work_write_sql, &p, NULL, err);
        buf_release(&pools);
    } else if (strcmp(type, "RiskAssessment") == 0) {
        const fhir_risk_row_t *r = rows ? rows->risk_row : NULL;
        if (!r)
            return is_new ? ERR_OK
                          : pg__run_named(conn, PG_RISK_CLEAR, risk_clear_sql, &p, NULL, err);
        pg__text(&p, r->patient);
        if (r->when_us != INT64_MIN)
            pg__int(&p, r->when_us);
        else
            pg__text(&p, NULL);
        if (r->risk >= 0)
            pg__double(&p, r->risk);
        else
            pg__text(&p, NULL);
        rc = pg__run_named(conn, PG_RISK_WRITE, risk_write_sql, &p, NULL, err);
    } else if (strcmp(type, "CareTeam") == 0) {
        const fhir_care_members_t *m = rows ? rows->care_members : NULL;
        if (is_new && (!m || !m->n))
            return ERR_OK;
        buf_t cols[4] = {BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT};
        for (int c = 0; c < 4; c++)
            buf_addch(&cols[c], '{');
        for (size_t i = 0; m && i < m->n; i++) {
            char from[32], until[32];
            snprintf(from, sizeof(from), "%lld", (long long)m->v[i].from_us);
            snprintf(until, sizeof(until), "%lld", (long long)m->v[i].until_us);
            array_add(&cols[0], m->v[i].member);
            array_add(&cols[1], m->v[i].role);
            array_add(&cols[2], m->v[i].from_us != INT64_MIN ? from : NULL);
            array_add(&cols[3], m->v[i].until_us != INT64_MAX ? until : NULL);
        }
        pg__text(&p, m ? m->patient : "");
        for (int c = 0; c < 4; c++)
            pg__text(&p, array_text(&cols[c]));
        rc = pg__run_named(conn, PG_CARE_WRITE, care_write_sql, &p, NULL, err);
        for (int c = 0; c < 4; c++)
            buf_release(&cols[c]);
    }
    return rc;
}

static status_t write_index(pg_conn_t *conn, int64_t rid, const char *type, const char *id,
                            bool is_new, const fhir_index_rows_t *rows, err_t *err)
{
    status_t rc;
    if (!is_new && (rc = delete_contained(conn, rid, err)))
        return rc;
    if (!is_new) {
        for (int k = 0; k < FHIR_INDEX_KIND_COUNT; k++)
            if ((rc = run_with_id(conn, PG_DELETE_INDEX + k, rid, err)))
                return rc;
    }
    if (rows && (rc = insert_rows(conn, rid, type, rows, err)))
        return rc;
    if ((rc = write_text(conn, rid, is_new, rows, err)))
        return rc;
    if (rows && rows->ncontained && (rc = insert_contained(conn, rid, type, rows, err)))
        return rc;
    return write_work(conn, rid, type, id, is_new, rows, err);
}

static status_t pg_put(void *opaque, const store_put_t *put, int64_t updated_us,
                       const char *last_updated, int64_t *out_seq, err_t *err)
{
    pg_conn_t *conn = opaque;
    bool deleted = put->json == NULL;
    /* the stored text is NUL-terminated where it is built; a copy makes sure */
    char *json = NULL;
    if (!deleted) {
        json = xmalloc(put->json_len + 1);
        memcpy(json, put->json, put->json_len);
        json[put->json_len] = 0;
    }
    pg_params_t p = {0};
    pg__text(&p, put->type);
    pg__text(&p, put->id);
    pg__int(&p, put->version);
    pg__int(&p, updated_us);
    pg__text(&p, last_updated);
    pg__text(&p, put->method);
    pg__int(&p, deleted);
    pg__text(&p, json);
    pg__int(&p, put->status);
    pg__text(&p, put->author);
    PGresult *res;
    status_t rc = pg__run(conn, PG_INSERT_VERSION, &p, &res, err);
    free(json);
    if (rc) {
        if (err->log_detail && strstr(err->log_detail, "[23505]")) {
            err_reset(err);
            return err_set(err, ERR_VERSION_CONFLICT, NULL,
                           "%s/%s version %lld was written concurrently", put->type, put->id,
                           (long long)put->version);
        }
        return rc;
    }
    int64_t seq = pg__int_at(res, 0, 0);
    PQclear(res);
    p.n = 0;
    pg__text(&p, put->type);
    pg__text(&p, put->id);
    pg__int(&p, put->version);
    pg__int(&p, seq);
    pg__int(&p, deleted);
    pg__int(&p, updated_us);
    if ((rc = pg__run(conn, PG_UPSERT_CURRENT, &p, &res, err)))
        return rc;
    int64_t rid = pg__int_at(res, 0, 0);
    PQclear(res);
    rc = write_index(conn, rid, put->type, put->id, put->version == 1, deleted ? NULL : put->index,
                     err);
    if (rc)
        return rc;
    *out_seq = seq;
    return ERR_OK;
}

static status_t pg_reindex(void *opaque, const char *type, const char *id,
                           const fhir_index_rows_t *rows, err_t *err)
{
    pg_conn_t *conn = opaque;
    pg_params_t p = {0};
    pg__text(&p, type);
    pg__text(&p, id);
    PGresult *res;
    status_t rc = pg__run(conn, PG_RID, &p, &res, err);
    if (rc)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return err_set(err, ERR_NOT_FOUND, NULL, "%s/%s is not known", type, id);
    }
    int64_t rid = pg__int_at(res, 0, 0);
    bool deleted = pg__int_at(res, 0, 1) != 0;
    PQclear(res);
    return write_index(conn, rid, type, id, false, deleted ? NULL : rows, err);
}

/* PostgreSQL keeps its indexes through a bulk load: it maintains them well enough row by
 * row, and dropping them would take a lock every other process waits on. */
static status_t pg_defer_indexes(void *opaque, err_t *err)
{
    (void)opaque;
    (void)err;
    return ERR_OK;
}

/* Planner statistics after a large load (in the transaction: ANALYZE may run inside one). */
static status_t pg_analyze(void *opaque, err_t *err)
{
    return exec(opaque, "ANALYZE", err);
}

static status_t pg_lock(void *opaque, const char *key, err_t *err)
{
    pg_params_t p = {0};
    pg__text(&p, key);
    PGresult *res;
    status_t rc =
        pg__run_sql(opaque, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &p, &res, err);
    if (rc == ERR_OK)
        PQclear(res);
    return rc;
}

/* ---- copying a database ---------------------------------------------------------------- */

/* A database server is shared by design: which processes use it cannot be told. */
static status_t pg_check_unused(const char *location, err_t *err)
{
    (void)location;
    (void)err;
    return ERR_OK;
}

/* REPEATABLE READ: one snapshot, taken by the first query; with lock_writers the tables that
 * writes touch are locked in SHARE mode first (writers wait, readers do not). */
static status_t pg_snapshot_begin(void *opaque, bool lock_writers, err_t *err)
{
    pg_conn_t *conn = opaque;
    status_t rc = exec(conn,
                       lock_writers ? "BEGIN ISOLATION LEVEL REPEATABLE READ;"
                                      "LOCK TABLE resource_version, resource, outbox, job, lease "
                                      "IN SHARE MODE;"
                                      "SELECT count(*) FROM schema_migration"
                                    : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
                                      "SELECT count(*) FROM schema_migration",
                       err);
    if (rc) {
        if (conn->pg && PQtransactionStatus(conn->pg) != PQTRANS_IDLE)
            PQclear(PQexec(conn->pg, "ROLLBACK"));
        return rc;
    }
    conn->in_txn = true;
    return ERR_OK;
}

static void pg_snapshot_end(void *opaque)
{
    pg_rollback(opaque);
}

/* The rows of each kind of every resource in one insert (arrays of every column, rid and type
 * included), their full text in one more; contained resources one by one (each takes a key of
 * its own). A batch costs a round trip per kind rather than one per kind and resource. */
static status_t pg_load_index(void *opaque, const store_copy_version_t *versions, size_t n,
                              err_t *err)
{
    pg_conn_t *conn = opaque;
    status_t rc = ERR_OK;
    for (int k = 0; k < FHIR_INDEX_KIND_COUNT && !rc; k++) {
        buf_t columns[PG_MAX_PARAMS];
        int ncolumns = 0;
        for (size_t i = 0; i < n; i++) {
            const store_copy_version_t *v = &versions[i];
            if (!v->rid || v->version.deleted || !v->index)
                continue;
            for (size_t r = 0; r < v->index->n; r++) {
                const fhir_index_row_t *row = &v->index->rows[r];
                if ((int)row->value.kind != k)
                    continue;
                pg_params_t p;
                row_params(&p, v->rid, v->version.type, row);
                if (!ncolumns) {
                    ncolumns = p.n;
                    for (int c = 0; c < ncolumns; c++) {
                        columns[c] = (buf_t)BUF_INIT;
                        buf_addch(&columns[c], '{');
                    }
                }
                for (int c = 0; c < ncolumns; c++)
                    array_add(&columns[c], p.values[c]);
            }
        }
        if (!ncolumns)
            continue;
        pg_params_t p = {0};
        for (int c = 0; c < ncolumns; c++) {
            buf_addch(&columns[c], '}');
            pg__text(&p, columns[c].ptr);
        }
        rc = pg__run(conn, PG_LOAD_INDEX + k, &p, NULL, err);
        for (int c = 0; c < ncolumns; c++)
            buf_release(&columns[c]);
    }
    buf_t text[4] = {BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT}, words = BUF_INIT;
    for (int c = 0; c < 4; c++)
        buf_addch(&text[c], '{');
    bool any_text = false;
    for (size_t i = 0; i < n && !rc; i++) {
        const store_copy_version_t *v = &versions[i];
        if (!v->rid || v->version.deleted || !v->index)
            continue;
        if (v->index->content || v->index->narrative) {
            char rid[32];
            snprintf(rid, sizeof(rid), "%lld", (long long)v->rid);
            array_add(&text[0], rid);
            array_add(&text[1], v->index->content);
            array_add(&text[2], v->index->narrative);
            /* the words as write_text gives them (sql_text.h) */
            buf_reset(&words);
            sql__text_tsvector(v->index->narrative, v->index->content, &words);
            array_add(&text[3], words.ptr ? words.ptr : "");
            any_text = true;
        }
        if (v->index->ncontained)
            rc = insert_contained(conn, v->rid, v->version.type, v->index, err);
        if (!rc)
            rc = write_work(conn, v->rid, v->version.type, v->version.id, true, v->index, err);
    }
    if (!rc && any_text) {
        pg_params_t p = {0};
        for (int c = 0; c < 4; c++) {
            buf_addch(&text[c], '}');
            pg__text(&p, text[c].ptr);
        }
        rc = pg__run(conn, PG_LOAD_TEXT, &p, NULL, err);
    }
    for (int c = 0; c < 4; c++)
        buf_release(&text[c]);
    buf_release(&words);
    return rc;
}

/* The identity sequence of each key, and the highest key of its table (a sequence that was
 * never used has no last value). */
#define KEY_SEQUENCE(table, column) "pg_get_serial_sequence('" table "', '" column "')"
#define LAST_KEY(table, column)                               \
    "greatest(coalesce(pg_sequence_last_value(" KEY_SEQUENCE( \
        table, column) "::regclass), 0), "                    \
                       "(SELECT coalesce(max(" column "), 0) FROM " table "))"

static status_t pg_last_keys(void *opaque, store_keys_t *out, err_t *err)
{
    PGresult *res;
    status_t rc = pg__run_sql(
        opaque,
        "SELECT " LAST_KEY("resource_version", "seq") ", " LAST_KEY(
            "resource", "rid") ", " LAST_KEY("outbox", "event_id") ", " LAST_KEY("job", "job_id"),
        NULL, &res, err);
    if (rc)
        return rc;
    out->seq = pg__int_at(res, 0, 0);
    out->rid = pg__int_at(res, 0, 1);
    out->event_id = pg__int_at(res, 0, 2);
    out->job_id = pg__int_at(res, 0, 3);
    PQclear(res);
    return ERR_OK;
}

/* Each sequence to the greater of the key given and the highest row (is_called false when
 * both are 0: the next key is then 1). */
#define SET_KEY(table, column, param)                                                  \
    "setval(" KEY_SEQUENCE(table, column) ", greatest(" param                          \
                                          "::bigint, (SELECT coalesce(max(" column     \
                                          "), 0) FROM " table "), 1), greatest(" param \
                                          "::bigint, (SELECT coalesce(max(" column     \
                                          "), 0) FROM " table ")) > 0)"

static status_t pg_load_keys(void *opaque, const store_keys_t *keys, err_t *err)
{
    pg_params_t p = {0};
    pg__int(&p, keys->seq);
    pg__int(&p, keys->rid);
    pg__int(&p, keys->event_id);
    pg__int(&p, keys->job_id);
    PGresult *res;
    status_t rc = pg__run_sql(
        opaque,
        "SELECT " SET_KEY("resource_version", "seq", "$1") ", " SET_KEY(
            "resource", "rid", "$2") ", " SET_KEY("outbox", "event_id",
                                                  "$3") ", " SET_KEY("job", "job_id", "$4"),
        &p, &res, err);
    if (!rc)
        PQclear(res);
    return rc;
}

const store_driver_t store__pg_driver = {
    .name = "postgresql",
    .concurrent_writers = true,
    .open = pg_open,
    .close = pg_close,
    .migrate = pg_migrate,
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .park = pg_park,
    .connect_replica = pg_connect_replica,
    .replica_lag = pg_replica_lag,
    .read = pg_read,
    .history = pg_history,
    .count = pg_count,
    .begin = pg_begin,
    .begin_relaxed = pg_begin_relaxed,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .savepoint = pg_savepoint,
    .release = pg_release,
    .rollback_to = pg_rollback_to,
    .current = pg_current,
    .put = pg_put,
    .reindex = pg_reindex,
    .scan = pg_scan,
    .search = pg__search,
    .txn_search = pg__txn_search,
    .everything = pg__everything,
    .outbox_add = pg__outbox_add,
    .outbox_claim = pg__outbox_claim,
    .outbox_ack = pg__outbox_ack,
    .outbox_fail = pg__outbox_fail,
    .outbox_replay = pg__outbox_replay,
    .outbox_dead = pg__outbox_dead,
    .outbox_counts = pg__outbox_counts,
    .outbox_claimed = pg__outbox_claimed,
    .outbox_replay_all = pg__outbox_replay_all,
    .job_schedule = pg__job_schedule,
    .job_cancel = pg__job_cancel,
    .job_claim = pg__job_claim,
    .job_complete = pg__job_complete,
    .job_fail = pg__job_fail,
    .job_replay = pg__job_replay,
    .job_list = pg__job_list,
    .lease_acquire = pg__lease_acquire,
    .lease_renew = pg__lease_renew,
    .lease_release = pg__lease_release,
    .defer_indexes = pg_defer_indexes,
    .analyze = pg_analyze,
    .lock = pg_lock,
    .check_unused = pg_check_unused,
    .snapshot_begin = pg_snapshot_begin,
    .snapshot_end = pg_snapshot_end,
    .sql = pg__sql_driver,
    .load_index = pg_load_index,
    .last_keys = pg_last_keys,
    .load_keys = pg_load_keys,
    .run_auth = pg__run_auth,
};
