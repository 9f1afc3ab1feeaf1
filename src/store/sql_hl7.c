/*
 * sql_hl7.c - the HL7 v2 messages received (store.h, "HL7 messages"): their table and
 * statements, one SQL text for both drivers where they agree, run through the drivers'
 * run_auth like sql_auth.c's (statement numbers from STORE_HL7_FIRST on).
 *
 * A message is stored as it came, before anything is done with it: the text itself when it is
 * UTF-8 without NUL bytes, else its bytes in base64url (encoding "base64"), so that nothing
 * received is changed or refused by the database's text type. (sender, control_id) is unique
 * among messages that have a control id: a redelivery finds the row of the first delivery.
 */
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "store/store_int.h"

#define COLUMNS_SCHEMA                                                                   \
    "  received_us BIGINT NOT NULL,"                                                     \
    "  peer TEXT NOT NULL,"                                                              \
    "  sender TEXT NOT NULL,"                                                            \
    "  control_id TEXT NOT NULL,"                                                        \
    "  type TEXT NOT NULL,"                                                              \
    "  status TEXT NOT NULL,"                                                            \
    "  reason TEXT,"                                                                     \
    "  ack TEXT,"                                                                        \
    "  processed_us BIGINT,"                                                             \
    "  attempts INTEGER NOT NULL,"                                                       \
    "  patient TEXT,"                                                                    \
    "  encounter TEXT,"                                                                  \
    "  encoding TEXT NOT NULL,"                                                          \
    "  message TEXT NOT NULL);"                                                          \
    "CREATE UNIQUE INDEX hl7_message_control ON hl7_message (sender, control_id) WHERE " \
    "control_id <> '';"                                                                  \
    "CREATE INDEX hl7_message_status ON hl7_message (status, id);"                       \
    "CREATE INDEX hl7_message_received ON hl7_message (received_us);"                    \
    "CREATE INDEX hl7_message_patient ON hl7_message (patient, id);"

/* Migration 17 of SQLite: AUTOINCREMENT so that an id is never handed out twice. */
const char sql__hl7_schema_sqlite[] =
    "CREATE TABLE hl7_message (id INTEGER PRIMARY KEY AUTOINCREMENT," COLUMNS_SCHEMA;
/* Migration 17 of PostgreSQL. */
const char sql__hl7_schema_pg[] =
    "CREATE TABLE hl7_message (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " " COLUMNS_SCHEMA;

enum {
    H_INSERT = STORE_HL7_FIRST,
    H_BY_CONTROL,
    H_GET,
    H_GET_TXN,
    H_FINISH,
    H_LIST,
    H_SCAN,
    H_LOAD,
    H_RESEQ,
    H_COUNTS,
    H__END
};

_Static_assert(H__END <= STORE_AUTH_STATEMENTS, "raise STORE_AUTH_STATEMENTS");

#define COLUMNS                                                                            \
    "id, received_us, peer, sender, control_id, type, status, reason, ack, processed_us, " \
    "attempts, patient, encounter, encoding, message"
/* the same without the message, for lists */
#define SUMMARY_COLUMNS                                                                    \
    "id, received_us, peer, sender, control_id, type, status, reason, ack, processed_us, " \
    "attempts, patient, encounter, encoding, NULL"

static const store__fixed_t statements[H__END - STORE_HL7_FIRST] = {
    [H_INSERT - STORE_HL7_FIRST] =
        {"INSERT INTO hl7_message (received_us, peer, sender, control_id, type, status, reason, "
         "ack, processed_us, attempts, patient, encounter, encoding, message) VALUES ($1, $2, $3, "
         "$4, $5, $6, $7, $8, $9, 0, NULL, NULL, $10, $11) ON CONFLICT (sender, control_id) WHERE "
         "control_id <> '' DO NOTHING RETURNING id"},
    [H_BY_CONTROL - STORE_HL7_FIRST] = {"SELECT " COLUMNS " FROM hl7_message WHERE sender = $1 "
                                        "AND control_id = $2 AND control_id <> ''"},
    [H_GET - STORE_HL7_FIRST] = {"SELECT " COLUMNS " FROM hl7_message WHERE id = $1"},
    [H_GET_TXN - STORE_HL7_FIRST] = {"SELECT " COLUMNS " FROM hl7_message WHERE id = $1",
                                     "SELECT " COLUMNS " FROM hl7_message WHERE id = $1 FOR "
                                     "UPDATE"},
    [H_FINISH - STORE_HL7_FIRST] = {"UPDATE hl7_message SET status = $2, reason = $3, ack = $4, "
                                    "processed_us = $5, attempts = attempts + 1, patient = $6, "
                                    "encounter = $7 WHERE id = $1"},
    /* newest first; each filter applies when its parameter is not NULL */
    [H_LIST - STORE_HL7_FIRST] =
        {"SELECT " SUMMARY_COLUMNS " FROM hl7_message WHERE ($1 = 0 OR id < $1) AND "
         "(CAST($2 AS TEXT) IS NULL OR status = $2) AND (CAST($3 AS TEXT) IS NULL OR type = $3 OR "
         "type LIKE $3 || '^%') AND (CAST($4 AS TEXT) IS NULL OR sender = $4) AND (CAST($5 AS "
         "TEXT) IS NULL OR patient = $5) AND (CAST($6 AS TEXT) IS NULL OR control_id = $6) AND "
         "received_us >= $7 AND received_us < $8 ORDER BY id DESC LIMIT $9"},
    [H_SCAN - STORE_HL7_FIRST] = {"SELECT " COLUMNS " FROM hl7_message WHERE id > $1 ORDER BY id "
                                  "LIMIT $2"},
    [H_LOAD - STORE_HL7_FIRST] = {"INSERT INTO hl7_message (" COLUMNS ") VALUES ($1, $2, $3, $4, "
                                  "$5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                                  "INSERT INTO hl7_message (" COLUMNS ") OVERRIDING SYSTEM VALUE "
                                  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
                                  "$13, $14, $15)"},
    /* after a load: the id counter past the loaded rows (SQLite's AUTOINCREMENT follows
       explicit ids by itself) */
    [H_RESEQ - STORE_HL7_FIRST] = {"SELECT 1",
                                   "SELECT setval(pg_get_serial_sequence('hl7_message', 'id'), "
                                   "(SELECT max(id) FROM hl7_message)) WHERE EXISTS (SELECT 1 "
                                   "FROM hl7_message)"},
    [H_COUNTS - STORE_HL7_FIRST] = {"SELECT status, count(*) FROM hl7_message GROUP BY status "
                                    "ORDER BY status"},
};

static const store__fixed_t *statement(int which)
{
    return &statements[which - STORE_HL7_FIRST];
}

static status_t run_conn(store_conn_t *conn, int which, const store__params_t *p, arena_t *arena,
                         store__rows_t *out, err_t *err)
{
    return store__fixed_conn(conn, which, statement(which), p, arena, out, err);
}

static status_t run_txn(store_txn_t *txn, int which, const store__params_t *p, arena_t *arena,
                        store__rows_t *out, err_t *err)
{
    return store__fixed_txn(txn, which, statement(which), p, arena, out, err);
}

/* True when the bytes are UTF-8 (no overlongs, no surrogates) without a NUL byte. */
static bool plain_text(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        if (c == 0)
            return false;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t n = c >= 0xF0 && c <= 0xF4 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 && c < 0xE0 ? 1 : 0;
        if (n == 0 || (size_t)(end - p) <= n)
            return false;
        unsigned cp = c & (0x3F >> n);
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        p += n + 1;
    }
    return true;
}

/* A row of COLUMNS (or SUMMARY_COLUMNS) into out, the message decoded. */
static void row_of(const store__rows_t *rows, size_t r, arena_t *arena, store_hl7_message_t *out)
{
    memset(out, 0, sizeof(*out));
    out->id = store__cell_int(rows, r, 0);
    out->received_us = store__cell_int(rows, r, 1);
    out->peer = store__cell(rows, r, 2);
    out->sender = store__cell(rows, r, 3);
    out->control_id = store__cell(rows, r, 4);
    out->type = store__cell(rows, r, 5);
    out->status = store__cell(rows, r, 6);
    out->reason = store__cell(rows, r, 7);
    out->ack = store__cell(rows, r, 8);
    out->processed_us = store__cell_int(rows, r, 9);
    out->attempts = store__cell_int(rows, r, 10);
    out->patient = store__cell(rows, r, 11);
    out->encounter = store__cell(rows, r, 12);
    out->encoding = store__cell(rows, r, 13);
    const char *text = store__cell(rows, r, 14);
    if (!text)
        return;
    if (out->encoding && strcmp(out->encoding, "base64") == 0) {
        buf_t bytes = BUF_INIT;
        if (b64url_decode(text, strlen(text), &bytes)) {
            char *copy = arena_alloc(arena, bytes.len + 1);
            memcpy(copy, bytes.ptr, bytes.len + 1);
            out->text = copy;
            out->text_len = bytes.len;
        }
        buf_release(&bytes);
        return;
    }
    out->text = text;
    out->text_len = strlen(text);
}

/* The message's text as it is stored, and its encoding. */
static const char *stored_text(const char *text, size_t len, arena_t *arena, const char **encoding)
{
    if (plain_text(text, len)) {
        *encoding = "text";
        char *copy = arena_alloc(arena, len + 1);
        memcpy(copy, text, len);
        copy[len] = '\0';
        return copy;
    }
    *encoding = "base64";
    buf_t b = BUF_INIT;
    b64url_encode(text, len, &b);
    char *copy = arena_strndup(arena, b.ptr, b.len);
    buf_release(&b);
    return copy;
}

status_t store_txn_hl7_insert(store_txn_t *txn, const store_hl7_message_t *m, int64_t *out_id,
                              bool *out_new, err_t *err)
{
    arena_t arena;
    arena_init(&arena);
    const char *encoding;
    const char *text = stored_text(m->text, m->text_len, &arena, &encoding);
    store__params_t p = {.n = 0};
    store__p_int(&p, m->received_us);
    store__p_text(&p, m->peer ? m->peer : "");
    store__p_text(&p, m->sender ? m->sender : "");
    store__p_text(&p, m->control_id ? m->control_id : "");
    store__p_text(&p, m->type ? m->type : "");
    store__p_text(&p, m->status ? m->status : STORE_HL7_RECEIVED);
    store__p_text(&p, m->reason);
    store__p_text(&p, m->ack);
    if (m->processed_us)
        store__p_int(&p, m->processed_us);
    else
        store__p_text(&p, NULL);
    store__p_text(&p, encoding);
    store__p_text(&p, text);
    store__rows_t rows = {0};
    status_t rc = run_txn(txn, H_INSERT, &p, &arena, &rows, err);
    if (!rc) {
        *out_new = rows.nrows == 1;
        *out_id = rows.nrows == 1 ? store__cell_int(&rows, 0, 0) : 0;
    }
    arena_release(&arena);
    return rc;
}

static status_t one_row(status_t rc, const store__rows_t *rows, arena_t *arena,
                        store_hl7_message_t *out, bool *out_found)
{
    if (rc)
        return rc;
    *out_found = rows->nrows > 0;
    if (*out_found)
        row_of(rows, 0, arena, out);
    return ERR_OK;
}

status_t store_txn_hl7_by_control(store_txn_t *txn, const char *sender, const char *control_id,
                                  arena_t *arena, store_hl7_message_t *out, bool *out_found,
                                  err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_text(&p, sender);
    store__p_text(&p, control_id);
    store__rows_t rows = {0};
    return one_row(run_txn(txn, H_BY_CONTROL, &p, arena, &rows, err), &rows, arena, out, out_found);
}

status_t store_txn_hl7_get(store_txn_t *txn, int64_t id, arena_t *arena, store_hl7_message_t *out,
                           bool *out_found, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_int(&p, id);
    store__rows_t rows = {0};
    return one_row(run_txn(txn, H_GET_TXN, &p, arena, &rows, err), &rows, arena, out, out_found);
}

status_t store_hl7_get(store_conn_t *conn, int64_t id, arena_t *arena, store_hl7_message_t *out,
                       err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_int(&p, id);
    store__rows_t rows = {0};
    bool found = false;
    status_t rc = one_row(run_conn(conn, H_GET, &p, arena, &rows, err), &rows, arena, out, &found);
    if (!rc && !found)
        return err_set(err, ERR_NOT_FOUND, NULL, "there is no HL7 message %lld", (long long)id);
    return rc;
}

status_t store_txn_hl7_finish(store_txn_t *txn, const store_hl7_finish_t *f, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_int(&p, f->id);
    store__p_text(&p, f->status);
    store__p_text(&p, f->reason);
    store__p_text(&p, f->ack);
    store__p_int(&p, f->processed_us);
    store__p_text(&p, f->patient);
    store__p_text(&p, f->encounter);
    int64_t changes = 0;
    status_t rc = store__fixed_write(txn, H_FINISH, statement(H_FINISH), &p, &changes, err);
    if (!rc && changes == 0)
        return err_set(err, ERR_NOT_FOUND, NULL, "there is no HL7 message %lld", (long long)f->id);
    return rc;
}

static status_t many_rows(status_t rc, const store__rows_t *rows, arena_t *arena,
                          store_hl7_message_t **out, size_t *out_n)
{
    *out = NULL;
    *out_n = 0;
    if (rc)
        return rc;
    if (rows->nrows) {
        *out = arena_alloc(arena, rows->nrows * sizeof(**out));
        for (size_t r = 0; r < rows->nrows; r++)
            row_of(rows, r, arena, &(*out)[r]);
    }
    *out_n = rows->nrows;
    return ERR_OK;
}

status_t store_hl7_list(store_conn_t *conn, const store_hl7_query_t *q, arena_t *arena,
                        store_hl7_message_t **out, size_t *out_n, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_int(&p, q->before_id);
    store__p_text(&p, q->status);
    store__p_text(&p, q->type);
    store__p_text(&p, q->sender);
    store__p_text(&p, q->patient);
    store__p_text(&p, q->control_id);
    store__p_int(&p, q->from_us);
    store__p_int(&p, q->to_us ? q->to_us : INT64_MAX);
    store__p_int(&p, (int64_t)(q->count ? q->count : 50));
    store__rows_t rows = {0};
    return many_rows(run_conn(conn, H_LIST, &p, arena, &rows, err), &rows, arena, out, out_n);
}

status_t store_hl7_scan(store_conn_t *conn, int64_t after_id, size_t count, arena_t *arena,
                        store_hl7_message_t **out, size_t *out_n, err_t *err)
{
    store__params_t p = {.n = 0};
    store__p_int(&p, after_id);
    store__p_int(&p, (int64_t)count);
    store__rows_t rows = {0};
    return many_rows(run_conn(conn, H_SCAN, &p, arena, &rows, err), &rows, arena, out, out_n);
}

status_t store_txn_hl7_load(store_txn_t *txn, const store_hl7_message_t *messages, size_t n,
                            err_t *err)
{
    status_t rc = ERR_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        const store_hl7_message_t *m = &messages[i];
        arena_t arena;
        arena_init(&arena);
        const char *encoding;
        const char *text = stored_text(m->text ? m->text : "", m->text_len, &arena, &encoding);
        store__params_t p = {.n = 0};
        store__p_int(&p, m->id);
        store__p_int(&p, m->received_us);
        store__p_text(&p, m->peer ? m->peer : "");
        store__p_text(&p, m->sender ? m->sender : "");
        store__p_text(&p, m->control_id ? m->control_id : "");
        store__p_text(&p, m->type ? m->type : "");
        store__p_text(&p, m->status);
        store__p_text(&p, m->reason);
        store__p_text(&p, m->ack);
        if (m->processed_us)
            store__p_int(&p, m->processed_us);
        else
            store__p_text(&p, NULL);
        store__p_int(&p, m->attempts);
        store__p_text(&p, m->patient);
        store__p_text(&p, m->encounter);
        store__p_text(&p, encoding);
        store__p_text(&p, text);
        rc = store__fixed_write(txn, H_LOAD, statement(H_LOAD), &p, NULL, err);
        arena_release(&arena);
    }
    if (!rc && n) {
        store__params_t p = {.n = 0};
        arena_t arena;
        arena_init(&arena);
        store__rows_t rows = {0};
        rc = run_txn(txn, H_RESEQ, &p, &arena, &rows, err);
        arena_release(&arena);
    }
    return rc;
}

status_t store_hl7_counts(store_conn_t *conn, arena_t *arena, store_hl7_count_t **out,
                          size_t *out_n, err_t *err)
{
    store__params_t p = {.n = 0};
    store__rows_t rows = {0};
    *out = NULL;
    *out_n = 0;
    status_t rc = run_conn(conn, H_COUNTS, &p, arena, &rows, err);
    if (rc)
        return rc;
    if (rows.nrows) {
        *out = arena_alloc(arena, rows.nrows * sizeof(**out));
        for (size_t r = 0; r < rows.nrows; r++) {
            (*out)[r].status = store__cell(&rows, r, 0);
            (*out)[r].count = store__cell_int(&rows, r, 1);
        }
    }
    *out_n = rows.nrows;
    return ERR_OK;
}
