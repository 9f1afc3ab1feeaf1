/*
 * sql_auth.c - accounts, OAuth clients and tokens (store.h, "accounts, OAuth clients,
 * tokens"): their tables and statements, one SQL text for both drivers.
 *
 * The statements are written once, with PostgreSQL's $N parameters (SQLite reads $N as a named
 * parameter and binds it by name), integer columns for flags, and CAST where PostgreSQL could
 * not tell a parameter's type; only the reads that lock a row differ (FOR UPDATE on
 * PostgreSQL; SQLite's one writer needs no lock). Each driver runs them through run_auth, which
 * hands back rows as text in the caller's arena; this file turns them into the store's structs.
 * Uniqueness (usernames, client ids) is decided by INSERT ... ON CONFLICT DO NOTHING and the
 * number of rows it changed, so a duplicate never aborts a PostgreSQL transaction.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

/* Migration 10 of both drivers. BIGINT is INTEGER to SQLite; every key is text. */
const char sql__auth_schema[] =
    "CREATE TABLE account ("
    "  account_id TEXT PRIMARY KEY,"
    "  username TEXT NOT NULL UNIQUE,"
    "  role TEXT NOT NULL,"
    "  practitioner_id TEXT,"
    "  practitioner_role_id TEXT,"
    "  patient_id TEXT,"
    "  password_hash TEXT,"
    "  disabled INTEGER NOT NULL DEFAULT 0,"
    "  failed_logins BIGINT NOT NULL DEFAULT 0,"
    "  locked_until_us BIGINT NOT NULL DEFAULT 0,"
    "  last_login_us BIGINT NOT NULL DEFAULT 0,"
    "  password_changed_us BIGINT NOT NULL DEFAULT 0,"
    "  totp_secret TEXT,"
    "  totp_confirmed INTEGER NOT NULL DEFAULT 0,"
    "  totp_last_step BIGINT NOT NULL DEFAULT -1,"
    "  created_us BIGINT NOT NULL,"
    "  updated_us BIGINT NOT NULL);"
    "CREATE TABLE account_recovery ("
    "  account_id TEXT NOT NULL,"
    "  code_hash TEXT NOT NULL,"
    "  PRIMARY KEY (account_id, code_hash));"
    "CREATE TABLE client ("
    "  client_id TEXT PRIMARY KEY,"
    "  name TEXT,"
    "  kind INTEGER NOT NULL,"
    "  secret_hash TEXT,"
    "  jwks TEXT,"
    "  scopes TEXT NOT NULL,"
    "  redirect_uris TEXT NOT NULL,"
    "  disabled INTEGER NOT NULL DEFAULT 0,"
    "  created_us BIGINT NOT NULL,"
    "  updated_us BIGINT NOT NULL);"
    "CREATE TABLE client_assertion ("
    "  client_id TEXT NOT NULL,"
    "  jti TEXT NOT NULL,"
    "  expires_us BIGINT NOT NULL,"
    "  PRIMARY KEY (client_id, jti));"
    "CREATE INDEX client_assertion_expires ON client_assertion (expires_us);"
    "CREATE TABLE token ("
    "  token_hash TEXT PRIMARY KEY,"
    "  kind INTEGER NOT NULL,"
    "  client_id TEXT NOT NULL,"
    "  account_id TEXT,"
    "  scopes TEXT NOT NULL,"
    "  patient_id TEXT,"
    "  family_id TEXT,"
    "  code_challenge TEXT,"
    "  redirect_uri TEXT,"
    "  expires_us BIGINT NOT NULL,"
    "  created_us BIGINT NOT NULL,"
    "  used_us BIGINT NOT NULL DEFAULT 0,"
    "  revoked_us BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX token_family ON token (family_id);"
    "CREATE INDEX token_account ON token (account_id);"
    "CREATE INDEX token_client ON token (client_id);"
    "CREATE INDEX token_expires ON token (expires_us);";

/* Migration 13 of both drivers: an authorization code keeps the OpenID Connect nonce of its
   request, for the id_token it is exchanged for. */
const char sql__auth_nonce_schema[] = "ALTER TABLE token ADD COLUMN nonce TEXT;";

enum {
    A_CREATE,
    A_GET,
    A_GET_LOCKED,
    A_GET_ID,
    A_LIST,
    A_UPDATE,
    R_CLEAR,
    R_ADD,
    R_LIST,
    R_USE,
    C_CREATE,
    C_GET,
    C_LIST,
    C_DELETE,
    C_DELETE_TOKENS,
    C_DELETE_ASSERTIONS,
    C_DISABLE,
    J_USE,
    J_PURGE,
    T_ISSUE,
    T_GET,
    T_GET_LOCKED,
    T_USE,
    T_REVOKE,
    T_REVOKE_FAMILY,
    T_REVOKE_ACCOUNT,
    T_REVOKE_CLIENT,
    T_PURGE,
    /* the copy of each table, scan and load, in the order of store_auth_table_name */
    X_SCAN,
    X_LOAD = X_SCAN + STORE_AUTH_TABLES,
    S__COUNT = X_LOAD + STORE_AUTH_TABLES
};

_Static_assert(S__COUNT <= STORE_SESSION_FIRST, "raise STORE_SESSION_FIRST");

#define ACCOUNT_COLUMNS                                                                          \
    "account_id, username, role, practitioner_id, practitioner_role_id, patient_id, "            \
    "password_hash, disabled, failed_logins, locked_until_us, last_login_us, "                   \
    "password_changed_us, totp_secret, totp_confirmed, totp_last_step, created_us, updated_us, " \
    "(SELECT count(*) FROM account_recovery r WHERE r.account_id = account.account_id)"
#define CLIENT_COLUMNS                                                                        \
    "client_id, name, kind, secret_hash, jwks, scopes, redirect_uris, disabled, created_us, " \
    "updated_us"
#define AUDIT_COLUMNS                                                                      \
    "id, seq, hash, time_us, username, role, client, patient, action, type, resource_id, " \
    "query, outcome, source, detail"

#define TOKEN_COLUMNS                                                                          \
    "token_hash, kind, client_id, account_id, scopes, patient_id, family_id, code_challenge, " \
    "redirect_uri, expires_us, created_us, used_us, revoked_us, nonce"

static const store__fixed_t statements[S__COUNT] = {
    [A_CREATE] = {"INSERT INTO account (account_id, username, role, practitioner_id, "
                  "practitioner_role_id, patient_id, password_hash, disabled, failed_logins, "
                  "locked_until_us, last_login_us, password_changed_us, totp_secret, "
                  "totp_confirmed, totp_last_step, created_us, updated_us) VALUES ($1, $2, $3, "
                  "$4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) "
                  "ON CONFLICT DO NOTHING"},
    [A_GET] = {"SELECT " ACCOUNT_COLUMNS " FROM account WHERE username = $1"},
    [A_GET_LOCKED] = {"SELECT " ACCOUNT_COLUMNS " FROM account WHERE username = $1",
                      "SELECT " ACCOUNT_COLUMNS " FROM account WHERE username = $1 FOR UPDATE"},
    [A_GET_ID] = {"SELECT " ACCOUNT_COLUMNS " FROM account WHERE account_id = $1"},
    [A_LIST] = {"SELECT " ACCOUNT_COLUMNS " FROM account"},
    [A_UPDATE] = {"UPDATE account SET role = $2, practitioner_id = $3, practitioner_role_id = $4, "
                  "patient_id = $5, password_hash = $6, disabled = $7, failed_logins = $8, "
                  "locked_until_us = $9, last_login_us = $10, password_changed_us = $11, "
                  "totp_secret = $12, totp_confirmed = $13, totp_last_step = $14, "
                  "updated_us = $15 WHERE account_id = $1"},
    [R_CLEAR] = {"DELETE FROM account_recovery WHERE account_id = $1"},
    [R_ADD] = {"INSERT INTO account_recovery (account_id, code_hash) VALUES ($1, $2) "
               "ON CONFLICT DO NOTHING"},
    [R_LIST] = {"SELECT code_hash FROM account_recovery WHERE account_id = $1"},
    [R_USE] = {"DELETE FROM account_recovery WHERE account_id = $1 AND code_hash = $2"},
    [C_CREATE] = {"INSERT INTO client (" CLIENT_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7, "
                  "$8, $9, $10) ON CONFLICT DO NOTHING"},
    [C_GET] = {"SELECT " CLIENT_COLUMNS " FROM client WHERE client_id = $1"},
    [C_LIST] = {"SELECT " CLIENT_COLUMNS " FROM client"},
    [C_DELETE] = {"DELETE FROM client WHERE client_id = $1"},
    [C_DELETE_TOKENS] = {"DELETE FROM token WHERE client_id = $1"},
    [C_DELETE_ASSERTIONS] = {"DELETE FROM client_assertion WHERE client_id = $1"},
    [C_DISABLE] = {"UPDATE client SET disabled = $2, updated_us = $3 WHERE client_id = $1"},
    /* $1 client, $2 jti, $3 expires, $4 now: a record that has expired may be taken again */
    [J_USE] = {"INSERT INTO client_assertion (client_id, jti, expires_us) VALUES ($1, $2, $3) "
               "ON CONFLICT (client_id, jti) DO UPDATE SET expires_us = excluded.expires_us "
               "WHERE client_assertion.expires_us <= CAST($4 AS BIGINT)"},
    [J_PURGE] = {"DELETE FROM client_assertion WHERE expires_us <= $1"},
    [T_ISSUE] = {"INSERT INTO token (token_hash, kind, client_id, account_id, scopes, patient_id, "
                 "family_id, code_challenge, redirect_uri, expires_us, created_us, nonce) "
                 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"},
    [T_GET] = {"SELECT " TOKEN_COLUMNS " FROM token WHERE token_hash = $1"},
    [T_GET_LOCKED] = {"SELECT " TOKEN_COLUMNS " FROM token WHERE token_hash = $1",
                      "SELECT " TOKEN_COLUMNS " FROM token WHERE token_hash = $1 FOR UPDATE"},
    [T_USE] = {"UPDATE token SET used_us = $2 WHERE token_hash = $1 AND used_us = 0 "
               "AND revoked_us = 0"},
    [T_REVOKE] = {"UPDATE token SET revoked_us = CASE WHEN revoked_us = 0 THEN CAST($2 AS BIGINT) "
                  "ELSE revoked_us END WHERE token_hash = $1"},
    [T_REVOKE_FAMILY] = {"UPDATE token SET revoked_us = $2 WHERE family_id = $1 "
                         "AND revoked_us = 0"},
    [T_REVOKE_ACCOUNT] = {"UPDATE token SET revoked_us = $2 WHERE account_id = $1 "
                          "AND revoked_us = 0"},
    [T_REVOKE_CLIENT] = {"UPDATE token SET revoked_us = $2 WHERE client_id = $1 "
                         "AND revoked_us = 0"},
    [T_PURGE] = {"DELETE FROM token WHERE expires_us <= $1"},
    [X_SCAN + 0] = {"SELECT account_id, username, role, practitioner_id, practitioner_role_id, "
                    "patient_id, password_hash, disabled, failed_logins, locked_until_us, "
                    "last_login_us, password_changed_us, totp_secret, totp_confirmed, "
                    "totp_last_step, created_us, updated_us FROM account ORDER BY account_id"},
    [X_SCAN + 1] = {"SELECT account_id, code_hash FROM account_recovery "
                    "ORDER BY account_id, code_hash"},
    [X_SCAN + 2] = {"SELECT " CLIENT_COLUMNS " FROM client ORDER BY client_id"},
    [X_SCAN + 3] = {"SELECT client_id, jti, expires_us FROM client_assertion "
                    "ORDER BY client_id, jti"},
    [X_SCAN + 4] = {"SELECT " TOKEN_COLUMNS " FROM token ORDER BY token_hash"},
    [X_LOAD + 0] = {"INSERT INTO account (account_id, username, role, practitioner_id, "
                    "practitioner_role_id, patient_id, password_hash, disabled, failed_logins, "
                    "locked_until_us, last_login_us, password_changed_us, totp_secret, "
                    "totp_confirmed, totp_last_step, created_us, updated_us) VALUES ($1, $2, $3, "
                    "$4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"},
    [X_LOAD + 1] = {"INSERT INTO account_recovery (account_id, code_hash) VALUES ($1, $2)"},
    [X_LOAD + 2] = {"INSERT INTO client (" CLIENT_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7, "
                    "$8, $9, $10)"},
    [X_LOAD + 3] = {"INSERT INTO client_assertion (client_id, jti, expires_us) "
                    "VALUES ($1, $2, $3)"},
    [X_LOAD + 4] = {"INSERT INTO token (" TOKEN_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7, "
                    "$8, $9, $10, $11, $12, $13, $14)"},
    [X_SCAN + 5] = {"SELECT " AUDIT_COLUMNS " FROM audit ORDER BY id"},
    [X_SCAN + 6] = {"SELECT id, last_seq, last_hash FROM audit_head ORDER BY id"},
    [X_LOAD + 5] = {"INSERT INTO audit (" AUDIT_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
                    "$9, $10, $11, $12, $13, $14, $15)",
                    "INSERT INTO audit (" AUDIT_COLUMNS ") OVERRIDING SYSTEM VALUE VALUES ($1, $2, "
                    "$3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"},
    /* after the records: SQLite's AUTOINCREMENT counter follows explicit ids by itself;
       PostgreSQL's identity is moved past them */
    [X_LOAD + 6] = {"INSERT INTO audit_head (id, last_seq, last_hash) VALUES ($1, $2, $3) "
                    "ON CONFLICT (id) DO UPDATE SET last_seq = excluded.last_seq, "
                    "last_hash = excluded.last_hash",
                    "WITH counter AS (SELECT setval(pg_get_serial_sequence('audit', 'id'), "
                    "(SELECT coalesce(max(id), 0) + 1 FROM audit), false)) "
                    "INSERT INTO audit_head (id, last_seq, last_hash) SELECT $1, $2, $3 "
                    "FROM counter ON CONFLICT (id) DO UPDATE SET last_seq = excluded.last_seq, "
                    "last_hash = excluded.last_hash"},
};

/* ---- running statements ---------------------------------------------------------------- */

static status_t run_conn(store_conn_t *conn, int which, const store__params_t *p, arena_t *arena,
                         store__rows_t *out, err_t *err)
{
    return store__fixed_conn(conn, which, &statements[which], p, arena, out, err);
}

static status_t run_txn(store_txn_t *txn, int which, const store__params_t *p, arena_t *arena,
                        store__rows_t *out, err_t *err)
{
    return store__fixed_txn(txn, which, &statements[which], p, arena, out, err);
}

static status_t write_txn(store_txn_t *txn, int which, const store__params_t *p,
                          int64_t *out_changes, err_t *err)
{
    return store__fixed_write(txn, which, &statements[which], p, out_changes, err);
}

/* ---- accounts -------------------------------------------------------------------------- */

static void row_to_account(const store__rows_t *rows, size_t r, store_account_t *out)
{
    out->account_id = store__cell(rows, r, 0);
    out->username = store__cell(rows, r, 1);
    out->role = store__cell(rows, r, 2);
    out->practitioner_id = store__cell(rows, r, 3);
    out->practitioner_role_id = store__cell(rows, r, 4);
    out->patient_id = store__cell(rows, r, 5);
    out->password_hash = store__cell(rows, r, 6);
    out->disabled = store__cell_int(rows, r, 7) != 0;
    out->failed_logins = store__cell_int(rows, r, 8);
    out->locked_until_us = store__cell_int(rows, r, 9);
    out->last_login_us = store__cell_int(rows, r, 10);
    out->password_changed_us = store__cell_int(rows, r, 11);
    out->totp_secret = store__cell(rows, r, 12);
    out->totp_confirmed = store__cell_int(rows, r, 13) != 0;
    out->totp_last_step = store__cell_int(rows, r, 14);
    out->created_us = store__cell_int(rows, r, 15);
    out->updated_us = store__cell_int(rows, r, 16);
    out->recovery_codes = store__cell_int(rows, r, 17);
}

static status_t one_account(status_t rc, const store__rows_t *rows, const char *what,
                            store_account_t *out, err_t *err)
{
    if (rc)
        return rc;
    if (rows->nrows == 0)
        return err_set(err, ERR_NOT_FOUND, NULL, "there is no account \"%s\"", what);
    row_to_account(rows, 0, out);
    return ERR_OK;
}

status_t store_txn_account_create(store_txn_t *txn, const store_account_t *a, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, a->account_id);
    store__p_text(&p, a->username);
    store__p_text(&p, a->role);
    store__p_text(&p, a->practitioner_id);
    store__p_text(&p, a->practitioner_role_id);
    store__p_text(&p, a->patient_id);
    store__p_text(&p, a->password_hash);
    store__p_int(&p, a->disabled);
    store__p_int(&p, a->failed_logins);
    store__p_int(&p, a->locked_until_us);
    store__p_int(&p, a->last_login_us);
    store__p_int(&p, a->password_changed_us);
    store__p_text(&p, a->totp_secret);
    store__p_int(&p, a->totp_confirmed);
    store__p_int(&p, a->totp_last_step);
    store__p_int(&p, a->created_us);
    store__p_int(&p, a->updated_us);
    int64_t changes = 0;
    status_t rc = write_txn(txn, A_CREATE, &p, &changes, err);
    if (!rc && changes == 0)
        return err_set(err, ERR_CONFLICT, NULL, "the user name \"%s\" is taken", a->username);
    return rc;
}

status_t store_account_get(store_conn_t *conn, const char *username, arena_t *arena,
                           store_account_t *out, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, username);
    store__rows_t rows = {0};
    status_t rc = run_conn(conn, A_GET, &p, arena, &rows, err);
    return one_account(rc, &rows, username, out, err);
}

status_t store_account_get_id(store_conn_t *conn, const char *account_id, arena_t *arena,
                              store_account_t *out, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, account_id);
    store__rows_t rows = {0};
    status_t rc = run_conn(conn, A_GET_ID, &p, arena, &rows, err);
    return one_account(rc, &rows, account_id, out, err);
}

status_t store_txn_account_get(store_txn_t *txn, const char *username, arena_t *arena,
                               store_account_t *out, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, username);
    store__rows_t rows = {0};
    status_t rc = run_txn(txn, A_GET_LOCKED, &p, arena, &rows, err);
    return one_account(rc, &rows, username, out, err);
}

static int compare_accounts(const void *a, const void *b)
{
    return strcmp(((const store_account_t *)a)->username, ((const store_account_t *)b)->username);
}

status_t store_account_list(store_conn_t *conn, arena_t *arena, store_account_t **out,
                            size_t *out_n, err_t *err)
{
    store__params_t p = {.n = 0};
    store__rows_t rows = {0};
    *out_n = 0;
    status_t rc = run_conn(conn, A_LIST, &p, arena, &rows, err);
    if (rc)
        return rc;
    store_account_t *accounts = arena_zalloc(arena, (rows.nrows + 1) * sizeof(*accounts));
    for (size_t i = 0; i < rows.nrows; i++)
        row_to_account(&rows, i, &accounts[i]);
    qsort(accounts, rows.nrows, sizeof(*accounts), compare_accounts);
    *out = accounts;
    *out_n = rows.nrows;
    return ERR_OK;
}

status_t store_txn_account_update(store_txn_t *txn, const store_account_t *a, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, a->account_id);
    store__p_text(&p, a->role);
    store__p_text(&p, a->practitioner_id);
    store__p_text(&p, a->practitioner_role_id);
    store__p_text(&p, a->patient_id);
    store__p_text(&p, a->password_hash);
    store__p_int(&p, a->disabled);
    store__p_int(&p, a->failed_logins);
    store__p_int(&p, a->locked_until_us);
    store__p_int(&p, a->last_login_us);
    store__p_int(&p, a->password_changed_us);
    store__p_text(&p, a->totp_secret);
    store__p_int(&p, a->totp_confirmed);
    store__p_int(&p, a->totp_last_step);
    store__p_int(&p, a->updated_us);
    int64_t changes = 0;
    status_t rc = write_txn(txn, A_UPDATE, &p, &changes, err);
    if (!rc && changes == 0)
        return err_set(err, ERR_NOT_FOUND, NULL, "there is no account \"%s\"", a->account_id);
    return rc;
}

status_t store_txn_recovery_set(store_txn_t *txn, const char *account_id, const char *const *hashes,
                                size_t n, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, account_id);
    status_t rc = write_txn(txn, R_CLEAR, &p, NULL, err);
    for (size_t i = 0; !rc && i < n; i++) {
        store__params_t q = {.n = 0};
        store__p_text(&q, account_id);
        store__p_text(&q, hashes[i]);
        rc = write_txn(txn, R_ADD, &q, NULL, err);
    }
    return rc;
}

status_t store_txn_recovery_list(store_txn_t *txn, const char *account_id, arena_t *arena,
                                 const char ***out, size_t *out_n, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, account_id);
    store__rows_t rows = {0};
    *out_n = 0;
    status_t rc = run_txn(txn, R_LIST, &p, arena, &rows, err);
    if (rc)
        return rc;
    const char **hashes = arena_zalloc(arena, (rows.nrows + 1) * sizeof(*hashes));
    for (size_t i = 0; i < rows.nrows; i++)
        hashes[i] = store__cell(&rows, i, 0);
    *out = hashes;
    *out_n = rows.nrows;
    return ERR_OK;
}

status_t store_txn_recovery_use(store_txn_t *txn, const char *account_id, const char *hash,
                                bool *out_used, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, account_id);
    store__p_text(&p, hash);
    int64_t changes = 0;
    status_t rc = write_txn(txn, R_USE, &p, &changes, err);
    *out_used = !rc && changes > 0;
    return rc;
}

/* ---- clients --------------------------------------------------------------------------- */

const char *store_client_kind_name(store_client_kind_t kind)
{
    switch (kind) {
    case STORE_CLIENT_PUBLIC: return "public";
    case STORE_CLIENT_CONFIDENTIAL: return "confidential";
    case STORE_CLIENT_JWT: return "private_key_jwt";
    }
    return "unknown";
}

bool store_client_kind_parse(const char *name, store_client_kind_t *out)
{
    static const store_client_kind_t kinds[] = {STORE_CLIENT_PUBLIC, STORE_CLIENT_CONFIDENTIAL,
                                                STORE_CLIENT_JWT};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(name, store_client_kind_name(kinds[i])) == 0) {
            *out = kinds[i];
            return true;
        }
    return false;
}

static void row_to_client(const store__rows_t *rows, size_t r, store_client_t *out)
{
    out->client_id = store__cell(rows, r, 0);
    out->name = store__cell(rows, r, 1);
    out->kind = (store_client_kind_t)store__cell_int(rows, r, 2);
    out->secret_hash = store__cell(rows, r, 3);
    out->jwks = store__cell(rows, r, 4);
    out->scopes = store__cell(rows, r, 5);
    out->redirect_uris = store__cell(rows, r, 6);
    out->disabled = store__cell_int(rows, r, 7) != 0;
    out->created_us = store__cell_int(rows, r, 8);
    out->updated_us = store__cell_int(rows, r, 9);
}

status_t store_txn_client_create(store_txn_t *txn, const store_client_t *c, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, c->client_id);
    store__p_text(&p, c->name);
    store__p_int(&p, c->kind);
    store__p_text(&p, c->secret_hash);
    store__p_text(&p, c->jwks);
    store__p_text(&p, c->scopes ? c->scopes : "");
    store__p_text(&p, c->redirect_uris ? c->redirect_uris : "");
    store__p_int(&p, c->disabled);
    store__p_int(&p, c->created_us);
    store__p_int(&p, c->updated_us);
    int64_t changes = 0;
    status_t rc = write_txn(txn, C_CREATE, &p, &changes, err);
    if (!rc && changes == 0)
        return err_set(err, ERR_CONFLICT, NULL, "the client id \"%s\" is taken", c->client_id);
    return rc;
}

status_t store_client_get(store_conn_t *conn, const char *client_id, arena_t *arena,
                          store_client_t *out, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, client_id);
    store__rows_t rows = {0};
    status_t rc = run_conn(conn, C_GET, &p, arena, &rows, err);
    if (rc)
        return rc;
    if (rows.nrows == 0)
        return err_set(err, ERR_NOT_FOUND, NULL, "there is no client \"%s\"", client_id);
    row_to_client(&rows, 0, out);
    return ERR_OK;
}

static int compare_clients(const void *a, const void *b)
{
    return strcmp(((const store_client_t *)a)->client_id, ((const store_client_t *)b)->client_id);
}

status_t store_client_list(store_conn_t *conn, arena_t *arena, store_client_t **out, size_t *out_n,
                           err_t *err)
{
    store__params_t p = {.n = 0};
    store__rows_t rows = {0};
    *out_n = 0;
    status_t rc = run_conn(conn, C_LIST, &p, arena, &rows, err);
    if (rc)
        return rc;
    store_client_t *clients = arena_zalloc(arena, (rows.nrows + 1) * sizeof(*clients));
    for (size_t i = 0; i < rows.nrows; i++)
        row_to_client(&rows, i, &clients[i]);
    qsort(clients, rows.nrows, sizeof(*clients), compare_clients);
    *out = clients;
    *out_n = rows.nrows;
    return ERR_OK;
}

status_t store_txn_client_delete(store_txn_t *txn, const char *client_id, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, client_id);
    int64_t changes = 0;
    status_t rc = write_txn(txn, C_DELETE, &p, &changes, err);
    if (rc)
        return rc;
    if (changes == 0)
        return err_set(err, ERR_NOT_FOUND, NULL, "there is no client \"%s\"", client_id);
    if ((rc = write_txn(txn, C_DELETE_TOKENS, &p, NULL, err)))
        return rc;
    return write_txn(txn, C_DELETE_ASSERTIONS, &p, NULL, err);
}

status_t store_txn_client_set_disabled(store_txn_t *txn, const char *client_id, bool disabled,
                                       int64_t now_us, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, client_id);
    store__p_int(&p, disabled);
    store__p_int(&p, now_us);
    int64_t changes = 0;
    status_t rc = write_txn(txn, C_DISABLE, &p, &changes, err);
    if (!rc && changes == 0)
        return err_set(err, ERR_NOT_FOUND, NULL, "there is no client \"%s\"", client_id);
    return rc;
}

status_t store_txn_client_assertion_use(store_txn_t *txn, const char *client_id, const char *jti,
                                        int64_t expires_us, int64_t now_us, bool *out_fresh,
                                        err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, client_id);
    store__p_text(&p, jti);
    store__p_int(&p, expires_us);
    store__p_int(&p, now_us);
    int64_t changes = 0;
    status_t rc = write_txn(txn, J_USE, &p, &changes, err);
    *out_fresh = !rc && changes > 0;
    return rc;
}

/* ---- tokens ---------------------------------------------------------------------------- */

store_token_state_t store_token_state(const store_token_t *token, int64_t now_us)
{
    if (token->revoked_us)
        return STORE_TOKEN_REVOKED;
    if (token->used_us)
        return STORE_TOKEN_USED;
    if (now_us >= token->expires_us)
        return STORE_TOKEN_EXPIRED;
    return STORE_TOKEN_ACTIVE;
}

static void row_to_token(const store__rows_t *rows, size_t r, store_token_t *out)
{
    out->hash = store__cell(rows, r, 0);
    out->kind = (store_token_kind_t)store__cell_int(rows, r, 1);
    out->client_id = store__cell(rows, r, 2);
    out->account_id = store__cell(rows, r, 3);
    out->scopes = store__cell(rows, r, 4);
    out->patient_id = store__cell(rows, r, 5);
    out->family_id = store__cell(rows, r, 6);
    out->code_challenge = store__cell(rows, r, 7);
    out->redirect_uri = store__cell(rows, r, 8);
    out->expires_us = store__cell_int(rows, r, 9);
    out->created_us = store__cell_int(rows, r, 10);
    out->used_us = store__cell_int(rows, r, 11);
    out->revoked_us = store__cell_int(rows, r, 12);
    out->nonce = store__cell(rows, r, 13);
}

status_t store_txn_token_issue(store_txn_t *txn, const store_token_t *t, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, t->hash);
    store__p_int(&p, t->kind);
    store__p_text(&p, t->client_id);
    store__p_text(&p, t->account_id);
    store__p_text(&p, t->scopes ? t->scopes : "");
    store__p_text(&p, t->patient_id);
    store__p_text(&p, t->family_id);
    store__p_text(&p, t->code_challenge);
    store__p_text(&p, t->redirect_uri);
    store__p_int(&p, t->expires_us);
    store__p_int(&p, t->created_us);
    store__p_text(&p, t->nonce);
    return write_txn(txn, T_ISSUE, &p, NULL, err);
}

static status_t one_token(status_t rc, const store__rows_t *rows, store_token_t *out, err_t *err)
{
    if (rc)
        return rc;
    /* the hash is not repeated: it is what a token is looked up by, and stays in logs */
    if (rows->nrows == 0)
        return err_set(err, ERR_NOT_FOUND, NULL, "there is no such token");
    row_to_token(rows, 0, out);
    return ERR_OK;
}

status_t store_token_get(store_conn_t *conn, const char *hash, arena_t *arena, store_token_t *out,
                         err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, hash);
    store__rows_t rows = {0};
    return one_token(run_conn(conn, T_GET, &p, arena, &rows, err), &rows, out, err);
}

status_t store_txn_token_get(store_txn_t *txn, const char *hash, arena_t *arena, store_token_t *out,
                             err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, hash);
    store__rows_t rows = {0};
    return one_token(run_txn(txn, T_GET_LOCKED, &p, arena, &rows, err), &rows, out, err);
}

status_t store_txn_token_use(store_txn_t *txn, const char *hash, int64_t now_us, bool *out_first,
                             err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, hash);
    store__p_int(&p, now_us);
    int64_t changes = 0;
    *out_first = false;
    status_t rc = write_txn(txn, T_USE, &p, &changes, err);
    if (rc)
        return rc;
    if (changes) {
        *out_first = true;
        return ERR_OK;
    }
    arena_t arena;
    arena_init(&arena);
    store_token_t token;
    rc = store_txn_token_get(txn, hash, &arena, &token, err);
    arena_release(&arena);
    return rc;
}

status_t store_txn_token_revoke(store_txn_t *txn, const char *hash, int64_t now_us, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, hash);
    store__p_int(&p, now_us);
    int64_t changes = 0;
    status_t rc = write_txn(txn, T_REVOKE, &p, &changes, err);
    if (!rc && changes == 0)
        return err_set(err, ERR_NOT_FOUND, NULL, "there is no such token");
    return rc;
}

static status_t revoke_by(store_txn_t *txn, int which, const char *key, int64_t now_us,
                          int64_t *out_n, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, key);
    store__p_int(&p, now_us);
    int64_t changes = 0;
    status_t rc = write_txn(txn, which, &p, &changes, err);
    if (out_n)
        *out_n = rc ? 0 : changes;
    return rc;
}

status_t store_txn_token_revoke_family(store_txn_t *txn, const char *family_id, int64_t now_us,
                                       int64_t *out_n, err_t *err)
{
    return revoke_by(txn, T_REVOKE_FAMILY, family_id, now_us, out_n, err);
}

status_t store_txn_token_revoke_account(store_txn_t *txn, const char *account_id, int64_t now_us,
                                        int64_t *out_n, err_t *err)
{
    return revoke_by(txn, T_REVOKE_ACCOUNT, account_id, now_us, out_n, err);
}

status_t store_txn_token_revoke_client(store_txn_t *txn, const char *client_id, int64_t now_us,
                                       int64_t *out_n, err_t *err)
{
    return revoke_by(txn, T_REVOKE_CLIENT, client_id, now_us, out_n, err);
}

status_t store_txn_token_purge(store_txn_t *txn, int64_t now_us, int64_t *out_n, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_int(&p, now_us);
    int64_t changes = 0;
    status_t rc = write_txn(txn, T_PURGE, &p, &changes, err);
    if (!rc)
        rc = write_txn(txn, J_PURGE, &p, NULL, err);
    if (out_n)
        *out_n = rc ? 0 : changes;
    return rc;
}

/* ---- copying ------------------------------------------------------------------------------ */

const char *store_auth_table_name(size_t table)
{
    static const char *const names[STORE_AUTH_TABLES] = {
        "account", "account_recovery", "client", "client_assertion", "token",
        "audit",   "audit_head"};
    return table < STORE_AUTH_TABLES ? names[table] : "unknown";
}

status_t store_auth_table_scan(store_conn_t *conn, size_t table, arena_t *arena,
                               const char ***out_cells, size_t *out_nrows, size_t *out_ncols,
                               err_t *err)
{
    store__params_t p = {.n = 0};
    store__rows_t rows = {0};
    *out_nrows = *out_ncols = 0;
    status_t rc = run_conn(conn, X_SCAN + (int)table, &p, arena, &rows, err);
    if (rc)
        return rc;
    *out_cells = rows.cells;
    *out_nrows = rows.nrows;
    *out_ncols = rows.ncols;
    return ERR_OK;
}

/* The number of parameters of each load. */
static const size_t load_columns[STORE_AUTH_TABLES] = {17, 2, 10, 3, 14, 15, 3};

status_t store_txn_auth_table_load(store_txn_t *txn, size_t table, const char *const *cells,
                                   size_t nrows, err_t *err)
{
    size_t ncols = load_columns[table];
    for (size_t r = 0; r < nrows; r++) {
        store__params_t p = {.n = 0};
        for (size_t c = 0; c < ncols; c++)
            store__p_text(&p, cells[r * ncols + c]);
        status_t rc = write_txn(txn, X_LOAD + (int)table, &p, NULL, err);
        if (rc)
            return rc;
    }
    return ERR_OK;
}
