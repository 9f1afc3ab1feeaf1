/*
 * sql_audit.c - the audit trail's rows (store.h, "the audit trail"): the audit table, its
 * chain head, and their statements, run through each driver's run_auth like sql_auth.c's.
 *
 * A write's row is added unsealed (seq and hash NULL) and sealed later by src/auth, which
 * numbers it and hashes it into the chain; the rows of src/auth's queue come sealed already
 * (numbered and hashed under the head's lock by the transaction that inserts them), up to 32
 * rows per INSERT. The head row (id 1) holds the last seq and hash; on PostgreSQL
 * reading it for sealing locks it (FOR UPDATE) until the transaction ends, so that sealers in
 * several processes take turns and the numbers stay contiguous. Rows of transactions that
 * have not committed are invisible to a sealer and are sealed by a later round.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

/* Migration 12 of SQLite: AUTOINCREMENT so that an id is never handed out twice, even after
 * the newest row was deleted. */
const char sql__audit_schema_sqlite[] =
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  seq INTEGER UNIQUE,"
    "  hash TEXT,"
    "  time_us INTEGER NOT NULL,"
    "  username TEXT, role TEXT, client TEXT, patient TEXT, action TEXT, type TEXT,"
    "  resource_id TEXT, query TEXT, outcome TEXT, source TEXT, detail TEXT);"
    "CREATE INDEX audit_unsealed ON audit (id) WHERE seq IS NULL;"
    "CREATE INDEX audit_patient ON audit (patient, id);"
    "CREATE INDEX audit_user ON audit (username, id);"
    "CREATE INDEX audit_time ON audit (time_us);"
    "CREATE TABLE audit_head (id INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL, last_hash TEXT);"
    "INSERT INTO audit_head VALUES (1, 0, NULL);";

/* Migration 12 of PostgreSQL: the same columns. */
const char sql__audit_schema_pg[] =
    "CREATE TABLE audit ("
    "  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  seq BIGINT UNIQUE,"
    "  hash TEXT,"
    "  time_us BIGINT NOT NULL,"
    "  username TEXT, role TEXT, client TEXT, patient TEXT, action TEXT, type TEXT,"
    "  resource_id TEXT, query TEXT, outcome TEXT, source TEXT, detail TEXT);"
    "CREATE INDEX audit_unsealed ON audit (id) WHERE seq IS NULL;"
    "CREATE INDEX audit_patient ON audit (patient, id);"
    "CREATE INDEX audit_user ON audit (username, id);"
    "CREATE INDEX audit_time ON audit (time_us);"
    "CREATE TABLE audit_head (id INTEGER PRIMARY KEY, last_seq BIGINT NOT NULL, last_hash TEXT);"
    "INSERT INTO audit_head VALUES (1, 0, NULL);";

enum {
    U_ADD = STORE_AUDIT_FIRST,
    U_ADD_8,  /* eight rows in one statement */
    U_ADD_32, /* thirty-two */
    U_UNSEALED,
    U_SEAL,
    U_HEAD,
    U_HEAD_LOCKED,
    U_HEAD_SET,
    U_SCAN,
    U_SEARCH,
    U_GET,
    U_EXPORT,
    U__END
};

_Static_assert(U__END <= STORE_HL7_FIRST, "raise STORE_HL7_FIRST and STORE_AUTH_STATEMENTS");

#define COLUMNS                                                                            \
    "id, seq, hash, time_us, username, role, client, patient, action, type, resource_id, " \
    "query, outcome, source, detail"

static const store__fixed_t statements[U__END - STORE_AUDIT_FIRST] = {
    [U_UNSEALED - STORE_AUDIT_FIRST] = {"SELECT " COLUMNS
                                        " FROM audit WHERE seq IS NULL ORDER BY id LIMIT $1"},
    [U_SEAL - STORE_AUDIT_FIRST] = {"UPDATE audit SET seq = $2, hash = $3 WHERE id = $1 "
                                    "AND seq IS NULL"},
    [U_HEAD - STORE_AUDIT_FIRST] = {"SELECT last_seq, last_hash FROM audit_head WHERE id = 1"},
    [U_HEAD_LOCKED - STORE_AUDIT_FIRST] = {"SELECT last_seq, last_hash FROM audit_head "
                                           "WHERE id = 1",
                                           "SELECT last_seq, last_hash FROM audit_head "
                                           "WHERE id = 1 FOR UPDATE"},
    [U_HEAD_SET - STORE_AUDIT_FIRST] = {"UPDATE audit_head SET last_seq = $1, last_hash = $2 "
                                        "WHERE id = 1"},
    [U_SCAN -
        STORE_AUDIT_FIRST] = {"SELECT " COLUMNS " FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2"},
    /* $1 patient, $2 user, $3 from, $4 to, $5 actions (",read,vread,"), $6 type, $7 below id,
       $8 count; a NULL filter matches every row */
    [U_SEARCH - STORE_AUDIT_FIRST] =
        {"SELECT " COLUMNS " FROM audit WHERE (CAST($1 AS TEXT) IS NULL OR patient = $1) "
         "AND (CAST($2 AS TEXT) IS NULL OR username = $2) AND time_us >= $3 AND time_us < $4 "
         "AND (CAST($5 AS TEXT) IS NULL OR $5 LIKE '%,' || action || ',%') "
         "AND (CAST($6 AS TEXT) IS NULL OR type = $6) AND id < $7 ORDER BY id DESC LIMIT $8"},
    [U_GET - STORE_AUDIT_FIRST] = {"SELECT " COLUMNS " FROM audit WHERE id = $1"},
    /* the same filters, oldest first from above id $7 */
    [U_EXPORT - STORE_AUDIT_FIRST] =
        {"SELECT " COLUMNS " FROM audit WHERE (CAST($1 AS TEXT) IS NULL OR patient = $1) "
         "AND (CAST($2 AS TEXT) IS NULL OR username = $2) AND time_us >= $3 AND time_us < $4 "
         "AND (CAST($5 AS TEXT) IS NULL OR $5 LIKE '%,' || action || ',%') "
         "AND (CAST($6 AS TEXT) IS NULL OR type = $6) AND id > $7 ORDER BY id LIMIT $8"},
};

/* (on a reader's connection: the primary, so that an audit search sees what was just
   recorded) */
static status_t run_conn(store_conn_t *conn, int which, const store__params_t *p, arena_t *arena,
                         store__rows_t *out, err_t *err)
{
    return store__fixed_conn(conn, which, &statements[which - STORE_AUDIT_FIRST], p, arena, out,
                             err);
}

static status_t run_txn(store_txn_t *txn, int which, const store__params_t *p, arena_t *arena,
                        store__rows_t *out, err_t *err)
{
    return store__fixed_txn(txn, which, &statements[which - STORE_AUDIT_FIRST], p, arena, out, err);
}

/* The columns a row is inserted with, ADD_PARAMS parameters each. */
#define ADD_COLUMNS                                                                          \
    "INSERT INTO audit (seq, hash, time_us, username, role, client, patient, action, type, " \
    "resource_id, query, outcome, source, detail) VALUES "
#define ADD_PARAMS 14

/* The text of the insert of n rows: ($1, ..., $14), ($15, ...), ... (placeholders only; the
 * values are bound). */
static char add_sql[3][256 + 32 * ADD_PARAMS * 8];
static const size_t add_rows[3] = {1, 8, 32};
static pthread_once_t add_once = PTHREAD_ONCE_INIT;

static void add_sql_init(void)
{
    for (size_t k = 0; k < 3; k++) {
        char *p = add_sql[k], *end = add_sql[k] + sizeof(add_sql[k]);
        p += snprintf(p, (size_t)(end - p), "%s", ADD_COLUMNS);
        for (size_t r = 0; r < add_rows[k]; r++)
            for (size_t c = 0; c < ADD_PARAMS; c++)
                p += snprintf(p, (size_t)(end - p), "%s$%zu%s",
                              c   ? ""
                              : r ? ", ("
                                  : "(",
                              r * ADD_PARAMS + c + 1, c + 1 < ADD_PARAMS ? ", " : ")");
    }
}

static void to_rows(const store__rows_t *rows, arena_t *arena, store_audit_row_t **out,
                    size_t *out_n)
{
    store_audit_row_t *r = arena_zalloc(arena, (rows->nrows + 1) * sizeof(*r));
    for (size_t i = 0; i < rows->nrows; i++) {
        r[i].id = store__cell_int(rows, i, 0);
        r[i].seq = store__cell_int(rows, i, 1);
        r[i].hash = store__cell(rows, i, 2);
        r[i].time_us = store__cell_int(rows, i, 3);
        r[i].user = store__cell(rows, i, 4);
        r[i].role = store__cell(rows, i, 5);
        r[i].client = store__cell(rows, i, 6);
        r[i].patient = store__cell(rows, i, 7);
        r[i].action = store__cell(rows, i, 8);
        r[i].type = store__cell(rows, i, 9);
        r[i].resource_id = store__cell(rows, i, 10);
        r[i].query = store__cell(rows, i, 11);
        r[i].outcome = store__cell(rows, i, 12);
        r[i].source = store__cell(rows, i, 13);
        r[i].detail = store__cell(rows, i, 14);
    }
    *out = r;
    *out_n = rows->nrows;
}

status_t store_txn_audit_add(store_txn_t *txn, const store_audit_row_t *rows, size_t n, err_t *err)
{
    pthread_once(&add_once, add_sql_init);
    const store_driver_t *driver;
    void *dconn = store__txn_driver(txn, &driver);
    store__value_t values[32 * ADD_PARAMS];
    arena_t arena;
    arena_init(&arena);
    status_t rc = ERR_OK;
    for (size_t done = 0; !rc && done < n;) {
        size_t k = n - done >= 32 ? 2 : n - done >= 8 ? 1 : 0, m = add_rows[k];
        store__params_t p = {.n = 0};
        store__value_t *v = values;
        for (size_t i = 0; i < m; i++) {
            const store_audit_row_t *r = &rows[done + i];
            p.n = 0;
            if (r->seq > 0)
                store__p_int(&p, r->seq);
            else
                store__p_text(&p, NULL);
            store__p_text(&p, r->seq > 0 ? r->hash : NULL);
            store__p_int(&p, r->time_us);
            store__p_text(&p, r->user);
            store__p_text(&p, r->role);
            store__p_text(&p, r->client);
            store__p_text(&p, r->patient);
            store__p_text(&p, r->action);
            store__p_text(&p, r->type);
            store__p_text(&p, r->resource_id);
            store__p_text(&p, r->query);
            store__p_text(&p, r->outcome);
            store__p_text(&p, r->source);
            store__p_text(&p, r->detail);
            memcpy(v, p.values, ADD_PARAMS * sizeof(*v));
            v += ADD_PARAMS;
        }
        store__rows_t out = {0};
        rc = driver->run_auth(dconn, U_ADD + (int)k, add_sql[k], values, m * ADD_PARAMS, &arena,
                              &out, err);
        done += m;
    }
    arena_release(&arena);
    return rc;
}

status_t store_txn_audit_unsealed(store_txn_t *txn, size_t limit, arena_t *arena,
                                  store_audit_row_t **out, size_t *out_n, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_int(&p, (int64_t)limit);
    store__rows_t rows = {0};
    *out_n = 0;
    status_t rc = run_txn(txn, U_UNSEALED, &p, arena, &rows, err);
    if (!rc)
        to_rows(&rows, arena, out, out_n);
    return rc;
}

status_t store_txn_audit_seal(store_txn_t *txn, int64_t id, int64_t seq, const char *hash,
                              err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_int(&p, id);
    store__p_int(&p, seq);
    store__p_text(&p, hash);
    store__rows_t rows = {0};
    arena_t arena;
    arena_init(&arena);
    status_t rc = run_txn(txn, U_SEAL, &p, &arena, &rows, err);
    arena_release(&arena);
    if (!rc && rows.changes != 1)
        return err_set(err, ERR_CONFLICT, NULL, "audit row %lld is sealed already", (long long)id);
    return rc;
}

static status_t head_of(status_t rc, const store__rows_t *rows, int64_t *out_seq,
                        const char **out_hash, err_t *err)
{
    if (rc)
        return rc;
    if (rows->nrows != 1)
        return err_set(err, ERR_INTERNAL, NULL, "the audit chain head is missing");
    *out_seq = store__cell_int(rows, 0, 0);
    *out_hash = store__cell(rows, 0, 1);
    return ERR_OK;
}

status_t store_txn_audit_head(store_txn_t *txn, arena_t *arena, int64_t *out_seq,
                              const char **out_hash, err_t *err)
{
    store__params_t p = {.n = 0};
    store__rows_t rows = {0};
    status_t rc = run_txn(txn, U_HEAD_LOCKED, &p, arena, &rows, err);
    return head_of(rc, &rows, out_seq, out_hash, err);
}

status_t store_txn_audit_head_set(store_txn_t *txn, int64_t seq, const char *hash, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_int(&p, seq);
    store__p_text(&p, hash);
    store__rows_t rows = {0};
    arena_t arena;
    arena_init(&arena);
    status_t rc = run_txn(txn, U_HEAD_SET, &p, &arena, &rows, err);
    arena_release(&arena);
    return rc;
}

status_t store_audit_head(store_conn_t *conn, arena_t *arena, int64_t *out_seq,
                          const char **out_hash, err_t *err)
{
    store__params_t p = {.n = 0};
    store__rows_t rows = {0};
    status_t rc = run_conn(conn, U_HEAD, &p, arena, &rows, err);
    return head_of(rc, &rows, out_seq, out_hash, err);
}

status_t store_audit_scan(store_conn_t *conn, int64_t after_seq, size_t limit, arena_t *arena,
                          store_audit_row_t **out, size_t *out_n, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_int(&p, after_seq);
    store__p_int(&p, (int64_t)limit);
    store__rows_t rows = {0};
    *out_n = 0;
    status_t rc = run_conn(conn, U_SCAN, &p, arena, &rows, err);
    if (!rc)
        to_rows(&rows, arena, out, out_n);
    return rc;
}

status_t store_audit_search(store_conn_t *conn, const store_audit_query_t *query, arena_t *arena,
                            store_audit_row_t **out, size_t *out_n, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, query->patient);
    store__p_text(&p, query->user);
    store__p_int(&p, query->from_us);
    store__p_int(&p, query->to_us);
    store__p_text(&p, query->actions);
    store__p_text(&p, query->type);
    if (query->oldest_first)
        store__p_int(&p, query->after_id);
    else
        store__p_int(&p, query->before_id > 0 ? query->before_id : INT64_MAX);
    store__p_int(&p, (int64_t)query->count);
    store__rows_t rows = {0};
    *out_n = 0;
    status_t rc = run_conn(conn, query->oldest_first ? U_EXPORT : U_SEARCH, &p, arena, &rows, err);
    if (!rc)
        to_rows(&rows, arena, out, out_n);
    return rc;
}

status_t store_audit_get(store_conn_t *conn, int64_t id, arena_t *arena, store_audit_row_t *out,
                         err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_int(&p, id);
    store__rows_t rows = {0};
    status_t rc = run_conn(conn, U_GET, &p, arena, &rows, err);
    if (rc)
        return rc;
    if (rows.nrows == 0)
        return err_set(err, ERR_NOT_FOUND, NULL, "there is no audit record %lld", (long long)id);
    store_audit_row_t *r;
    size_t n;
    to_rows(&rows, arena, &r, &n);
    *out = r[0];
    return ERR_OK;
}
