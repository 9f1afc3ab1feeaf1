/*
 * sqlite_text.c - the full text (ix_text, FTS5) of the writer's transactions, written at their
 * end.
 *
 * FTS5 keeps the words of a transaction in memory and writes them out as a new segment of its
 * index whenever a savepoint begins or ends, and later merges the segments. The writer's
 * transactions open a savepoint per transaction of a batch and more inside (store_txn_nested),
 * so an HL7 message made several segments, a third of the writer's time. Here the full-text
 * changes wait in memory (sqlite_text_log_t) and are written once, just before the commit: one
 * segment per commit.
 *
 * Savepoints: each change has the level it belongs to (the depth of savepoints when it was
 * made, lowered as they are released); rolling back to a savepoint drops the changes of its
 * level and deeper. A statement of the transaction that reads ix_text (a search inside the
 * transaction, store_txn_search) must see them: they are written first
 * (sqlite__text_flush_open). Those written there belong to the transaction as a whole only
 * as long as the savepoint open at that time stands: when it is rolled back, SQLite undoes
 * them with everything else since it began, so the changes of outer levels among them wait
 * again (flushed).
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "store/sql_text.h"
#include "store/sqlite_int.h"

static void op_free(sqlite_text_op_t *op)
{
    free(op->content);
    free(op->narrative);
}

static void push(sqlite_text_op_t **items, size_t *n, size_t *cap, sqlite_text_op_t op)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        *items = xrealloc(*items, *cap * sizeof(**items));
    }
    (*items)[(*n)++] = op;
}

/* Replaces the full text of rid with the joined words content and narrative, now. */
static status_t write_now(sqlite_conn_t *conn, const sqlite_text_op_t *op, err_t *err)
{
    sqlite3_stmt *stmt;
    status_t status;
    int rc;
    if (!op->is_new) {
        status = sqlite__prepare_cached(conn, "DELETE FROM ix_text WHERE rowid = ?1", &stmt, err);
        if (status)
            return status;
        sqlite3_bind_int64(stmt, 1, op->rid);
        rc = sqlite3_step(stmt);
        sqlite3_reset(stmt);
        if (rc != SQLITE_DONE)
            return sqlite__fail(conn->handle, rc, err, "delete full text");
    }
    if (!op->content && !op->narrative)
        return ERR_OK;
    status = sqlite__prepare_cached(
        conn, "INSERT INTO ix_text (rowid, content, narrative) VALUES (?1, ?2, ?3)", &stmt, err);
    if (status)
        return status;
    sqlite3_bind_int64(stmt, 1, op->rid);
    if (op->content)
        sqlite3_bind_text(stmt, 2, op->content, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, 2);
    if (op->narrative)
        sqlite3_bind_text(stmt, 3, op->narrative, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, 3);
    rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (rc != SQLITE_DONE)
        return sqlite__fail(conn->handle, rc, err, "insert full text");
    return ERR_OK;
}

status_t sqlite__text_write(sqlite_conn_t *conn, int64_t rid, bool is_new, const char *content,
                            const char *narrative, err_t *err)
{
    /* the words, joined by spaces for FTS5's ascii tokenizer (sql_text.h) */
    sqlite_text_op_t op = {.rid = rid, .is_new = is_new};
    char **words[2] = {&op.content, &op.narrative};
    const char *lists[2] = {content, narrative};
    for (int k = 0; k < 2; k++) {
        if (!lists[k])
            continue;
        buf_t joined = BUF_INIT;
        sql__text_join(lists[k], &joined);
        *words[k] = xstrndup(joined.ptr ? joined.ptr : "", joined.len);
        buf_release(&joined);
    }
    sqlite_text_log_t *log = &conn->text;
    if (!conn->writer || sqlite3_get_autocommit(conn->handle)) {
        status_t status = write_now(conn, &op, err);
        op_free(&op);
        return status;
    }
    op.level = log->depth;
    push(&log->ops, &log->n, &log->cap, op);
    return ERR_OK;
}

void sqlite__text_savepoint(sqlite_conn_t *conn)
{
    conn->text.depth++;
}

void sqlite__text_release(sqlite_conn_t *conn)
{
    sqlite_text_log_t *log = &conn->text;
    if (!log->depth)
        return;
    /* the levels grow along the list: the deepest are last */
    for (size_t i = log->n; i > 0 && log->ops[i - 1].level == log->depth; i--)
        log->ops[i - 1].level--;
    size_t kept = 0;
    for (size_t i = 0; i < log->nflushed; i++) {
        sqlite_text_op_t *f = &log->flushed[i];
        if (f->level == log->depth)
            f->level--;
        if (f->written_at == log->depth)
            f->written_at--;
        /* undone only with its own level from now on: nothing to remember */
        if (f->written_at <= f->level)
            op_free(f);
        else
            log->flushed[kept++] = *f;
    }
    log->nflushed = kept;
    log->depth--;
}

void sqlite__text_rollback_to(sqlite_conn_t *conn)
{
    sqlite_text_log_t *log = &conn->text;
    size_t j = log->depth;
    while (log->n && log->ops[log->n - 1].level >= j)
        op_free(&log->ops[--log->n]);
    /* written inside the savepoint, so undone with it: those of outer levels wait again,
       before every change still waiting (they were made first) */
    sqlite_text_op_t *again = NULL;
    size_t nagain = 0, cap = 0, kept = 0;
    for (size_t i = 0; i < log->nflushed; i++) {
        sqlite_text_op_t *f = &log->flushed[i];
        if (f->written_at < j)
            log->flushed[kept++] = *f;
        else if (f->level < j)
            push(&again, &nagain, &cap, *f);
        else
            op_free(f);
    }
    log->nflushed = kept;
    if (nagain) {
        for (size_t i = 0; i < log->n; i++)
            push(&again, &nagain, &cap, log->ops[i]);
        free(log->ops);
        log->ops = again;
        log->n = nagain;
        log->cap = cap;
    }
}

void sqlite__text_clear(sqlite_conn_t *conn)
{
    sqlite_text_log_t *log = &conn->text;
    for (size_t i = 0; i < log->n; i++)
        op_free(&log->ops[i]);
    for (size_t i = 0; i < log->nflushed; i++)
        op_free(&log->flushed[i]);
    log->n = log->nflushed = 0;
    log->depth = 0;
}

void sqlite__text_free(sqlite_conn_t *conn)
{
    sqlite__text_clear(conn);
    free(conn->text.ops);
    free(conn->text.flushed);
}

/* Writes every waiting change; those of levels outside the innermost savepoint are kept in
 * flushed. When a write fails, it and those after it keep waiting (the rollback that follows
 * undoes what it did). */
static status_t flush(sqlite_conn_t *conn, err_t *err)
{
    sqlite_text_log_t *log = &conn->text;
    size_t i = 0;
    status_t status = ERR_OK;
    for (; i < log->n; i++) {
        sqlite_text_op_t *op = &log->ops[i];
        if ((status = write_now(conn, op, err)))
            break;
        if (op->level < log->depth) {
            op->written_at = log->depth;
            push(&log->flushed, &log->nflushed, &log->flushed_cap, *op);
        } else {
            op_free(op);
        }
    }
    if (i < log->n)
        memmove(log->ops, log->ops + i, (log->n - i) * sizeof(*log->ops));
    log->n -= i;
    return status;
}

status_t sqlite__text_commit(sqlite_conn_t *conn, err_t *err)
{
    status_t status = flush(conn, err);
    sqlite__text_clear(conn);
    return status;
}

status_t sqlite__text_flush_open(sqlite_conn_t *conn, err_t *err)
{
    return conn->text.n ? flush(conn, err) : ERR_OK;
}
