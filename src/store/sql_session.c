/*
 * sql_session.c - browser sessions and pending authorization requests (store.h, "browser
 * sessions"): their tables and statements, one SQL text for both drivers, run through the
 * drivers' run_auth like sql_auth.c's (statement numbers from STORE_SESSION_FIRST on).
 *
 * Both tables are transient: a row lives minutes to hours, nothing refers to it from the
 * health data, and concerto migrate-data does not copy them (signing in again is the cost).
 * Deleting a session deletes the authorization requests made in it.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

/* The login migration of both drivers (sqlite.c and pg.c list it). */
const char sql__session_schema[] =
    "CREATE TABLE login_session ("
    "  session_id TEXT PRIMARY KEY,"
    "  account_id TEXT,"
    "  username TEXT,"
    "  state INTEGER NOT NULL,"
    "  csrf TEXT NOT NULL,"
    "  created_us BIGINT NOT NULL,"
    "  last_seen_us BIGINT NOT NULL,"
    "  expires_us BIGINT NOT NULL);"
    "CREATE INDEX login_session_expires ON login_session (expires_us);"
    "CREATE INDEX login_session_account ON login_session (account_id);"
    "CREATE TABLE authz_request ("
    "  request_id TEXT PRIMARY KEY,"
    "  session_id TEXT NOT NULL,"
    "  client_id TEXT NOT NULL,"
    "  redirect_uri TEXT NOT NULL,"
    "  scope TEXT NOT NULL,"
    "  state TEXT,"
    "  code_challenge TEXT NOT NULL,"
    "  nonce TEXT,"
    "  aud TEXT,"
    "  created_us BIGINT NOT NULL,"
    "  expires_us BIGINT NOT NULL);"
    "CREATE INDEX authz_request_session ON authz_request (session_id);"
    "CREATE INDEX authz_request_expires ON authz_request (expires_us);";

enum {
    S_CREATE,
    S_GET,
    S_UPDATE,
    S_DELETE,
    S_DELETE_REQUESTS,
    S_DELETE_ACCOUNT,
    S_PURGE,
    S_RENAME,
    Q_CREATE,
    Q_GET,
    Q_DELETE,
    Q_PURGE,
    Q_MOVE,
    Q__COUNT
};

_Static_assert(STORE_SESSION_FIRST + Q__COUNT <= STORE_AUDIT_FIRST,
               "raise STORE_AUDIT_FIRST and STORE_AUTH_STATEMENTS");

#define SESSION_COLUMNS \
    "session_id, account_id, username, state, csrf, created_us, last_seen_us, expires_us"
#define REQUEST_COLUMNS                                                                      \
    "request_id, session_id, client_id, redirect_uri, scope, state, code_challenge, nonce, " \
    "aud, created_us, expires_us"

static const store__fixed_t statements[Q__COUNT] = {
    [S_CREATE] = {"INSERT INTO login_session (" SESSION_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, "
                  "$7, $8)"},
    [S_GET] = {"SELECT " SESSION_COLUMNS " FROM login_session WHERE session_id = $1"},
    [S_UPDATE] = {"UPDATE login_session SET account_id = $2, username = $3, state = $4, csrf = $5, "
                  "last_seen_us = $6 WHERE session_id = $1"},
    [S_DELETE] = {"DELETE FROM login_session WHERE session_id = $1"},
    [S_DELETE_REQUESTS] = {"DELETE FROM authz_request WHERE session_id = $1"},
    [S_DELETE_ACCOUNT] = {"DELETE FROM login_session WHERE account_id = $1"},
    [S_PURGE] = {"DELETE FROM login_session WHERE expires_us <= $1"},
    [S_RENAME] = {"UPDATE login_session SET session_id = $2 WHERE session_id = $1"},
    [Q_CREATE] = {"INSERT INTO authz_request (" REQUEST_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, "
                  "$7, $8, $9, $10, $11)"},
    [Q_GET] = {"SELECT " REQUEST_COLUMNS " FROM authz_request WHERE request_id = $1"},
    [Q_DELETE] = {"DELETE FROM authz_request WHERE request_id = $1"},
    [Q_PURGE] = {"DELETE FROM authz_request WHERE expires_us <= $1 OR session_id NOT IN "
                 "(SELECT session_id FROM login_session)"},
    [Q_MOVE] = {"UPDATE authz_request SET session_id = $2 WHERE session_id = $1"},
};

static status_t run_conn(store_conn_t *conn, int which, const store__params_t *p, arena_t *arena,
                         store__rows_t *out, err_t *err)
{
    return store__fixed_conn(conn, STORE_SESSION_FIRST + which, &statements[which], p, arena, out,
                             err);
}

/* A statement that returns no rows, in a transaction; *out_changes (may be NULL). */
static status_t write_txn(store_txn_t *txn, int which, const store__params_t *p,
                          int64_t *out_changes, err_t *err)
{
    return store__fixed_write(txn, STORE_SESSION_FIRST + which, &statements[which], p, out_changes,
                              err);
}

/* The first row's cells. */
static const char *cell(const store__rows_t *rows, size_t column)
{
    return store__cell(rows, 0, column);
}

static int64_t cell_int(const store__rows_t *rows, size_t column)
{
    return store__cell_int(rows, 0, column);
}

/* ---- sessions --------------------------------------------------------------------------- */

status_t store_txn_session_create(store_txn_t *txn, const store_session_t *s, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, s->session_id);
    store__p_text(&p, s->account_id);
    store__p_text(&p, s->username);
    store__p_int(&p, s->state);
    store__p_text(&p, s->csrf);
    store__p_int(&p, s->created_us);
    store__p_int(&p, s->last_seen_us);
    store__p_int(&p, s->expires_us);
    return write_txn(txn, S_CREATE, &p, NULL, err);
}

status_t store_session_get(store_conn_t *conn, const char *session_id, arena_t *arena,
                           store_session_t *out, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, session_id);
    store__rows_t rows = {0};
    status_t rc = run_conn(conn, S_GET, &p, arena, &rows, err);
    if (rc)
        return rc;
    /* the id is not repeated: it is what a cookie is looked up by */
    if (rows.nrows == 0)
        return err_set(err, ERR_NOT_FOUND, NULL, "there is no such session");
    out->session_id = cell(&rows, 0);
    out->account_id = cell(&rows, 1);
    out->username = cell(&rows, 2);
    out->state = (store_session_state_t)cell_int(&rows, 3);
    out->csrf = cell(&rows, 4);
    out->created_us = cell_int(&rows, 5);
    out->last_seen_us = cell_int(&rows, 6);
    out->expires_us = cell_int(&rows, 7);
    return ERR_OK;
}

status_t store_txn_session_update(store_txn_t *txn, const store_session_t *s, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, s->session_id);
    store__p_text(&p, s->account_id);
    store__p_text(&p, s->username);
    store__p_int(&p, s->state);
    store__p_text(&p, s->csrf);
    store__p_int(&p, s->last_seen_us);
    int64_t changes = 0;
    status_t rc = write_txn(txn, S_UPDATE, &p, &changes, err);
    if (!rc && changes == 0)
        return err_set(err, ERR_NOT_FOUND, NULL, "there is no such session");
    return rc;
}

status_t store_txn_session_renew(store_txn_t *txn, const char *old_session_id,
                                 const store_session_t *s, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, old_session_id);
    store__p_text(&p, s->session_id);
    int64_t changes = 0;
    status_t rc = write_txn(txn, S_RENAME, &p, &changes, err);
    if (rc)
        return rc;
    if (changes == 0)
        return err_set(err, ERR_NOT_FOUND, NULL, "there is no such session");
    if ((rc = write_txn(txn, Q_MOVE, &p, NULL, err)))
        return rc;
    return store_txn_session_update(txn, s, err);
}

status_t store_txn_session_delete(store_txn_t *txn, const char *session_id, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, session_id);
    status_t rc = write_txn(txn, S_DELETE_REQUESTS, &p, NULL, err);
    return rc ? rc : write_txn(txn, S_DELETE, &p, NULL, err);
}

status_t store_txn_session_delete_account(store_txn_t *txn, const char *account_id, int64_t *out_n,
                                          err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, account_id);
    int64_t changes = 0;
    status_t rc = write_txn(txn, S_DELETE_ACCOUNT, &p, &changes, err);
    if (out_n)
        *out_n = changes;
    return rc;
}

status_t store_txn_session_purge(store_txn_t *txn, int64_t now_us, int64_t *out_n, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_int(&p, now_us);
    int64_t changes = 0;
    status_t rc = write_txn(txn, S_PURGE, &p, &changes, err);
    if (!rc)
        rc = write_txn(txn, Q_PURGE, &p, NULL, err);
    if (out_n)
        *out_n = rc ? 0 : changes;
    return rc;
}

/* ---- authorization requests ------------------------------------------------------------- */

status_t store_txn_authz_request_create(store_txn_t *txn, const store_authz_request_t *r,
                                        err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, r->request_id);
    store__p_text(&p, r->session_id);
    store__p_text(&p, r->client_id);
    store__p_text(&p, r->redirect_uri);
    store__p_text(&p, r->scope ? r->scope : "");
    store__p_text(&p, r->state);
    store__p_text(&p, r->code_challenge);
    store__p_text(&p, r->nonce);
    store__p_text(&p, r->aud);
    store__p_int(&p, r->created_us);
    store__p_int(&p, r->expires_us);
    return write_txn(txn, Q_CREATE, &p, NULL, err);
}

status_t store_authz_request_get(store_conn_t *conn, const char *request_id, arena_t *arena,
                                 store_authz_request_t *out, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, request_id);
    store__rows_t rows = {0};
    status_t rc = run_conn(conn, Q_GET, &p, arena, &rows, err);
    if (rc)
        return rc;
    if (rows.nrows == 0)
        return err_set(err, ERR_NOT_FOUND, NULL, "there is no such authorization request");
    out->request_id = cell(&rows, 0);
    out->session_id = cell(&rows, 1);
    out->client_id = cell(&rows, 2);
    out->redirect_uri = cell(&rows, 3);
    out->scope = cell(&rows, 4);
    out->state = cell(&rows, 5);
    out->code_challenge = cell(&rows, 6);
    out->nonce = cell(&rows, 7);
    out->aud = cell(&rows, 8);
    out->created_us = cell_int(&rows, 9);
    out->expires_us = cell_int(&rows, 10);
    return ERR_OK;
}

status_t store_txn_authz_request_delete(store_txn_t *txn, const char *request_id, bool *out_deleted,
                                        err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, request_id);
    int64_t changes = 0;
    status_t rc = write_txn(txn, Q_DELETE, &p, &changes, err);
    if (out_deleted)
        *out_deleted = !rc && changes > 0;
    return rc;
}
