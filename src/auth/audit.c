/*
 * audit.c - the audit trail's queue, its thread, sealing and verification (audit.h).
 *
 * The queue is a ring of heap copies of rows behind one mutex. The thread takes up to a
 * batch at a time and stores it with a sealing round in one transaction through store_run;
 * producers wait on `room` when the ring is full, auth_audit_flush on `stored`. Sealing reads
 * the unsealed rows in insertion order and chains them after the head: the chain's order is
 * the order of sealing, not of the transactions' start, so a write whose transaction commits
 * late is sealed by a later round and no write waits for the chain.
 */
#include "auth/audit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"

#define SEAL_ROUND    4096 /* rows read per statement while sealing */
#define STORE_RETRIES 3    /* a refused batch at close is tried this often before it is lost */

struct auth_audit {
    store_t *store;
    auth_audit_options_t options;
    pthread_mutex_t lock;
    pthread_cond_t wake;   /* to the thread: work, or stop */
    pthread_cond_t room;   /* to producers: the ring has room */
    pthread_cond_t stored; /* to auth_audit_flush: a batch is stored */
    store_audit_row_t **ring;
    size_t head, n;
    uint64_t queued, done; /* rows ever queued, rows ever stored (or given up) */
    uint64_t flush_wanted; /* store at once up to this many queued */
    int64_t oldest_us;     /* monotonic time the oldest queued row arrived */
    status_t last_rc;      /* of the last batch */
    bool stopping;
    pthread_t thread;
};

void auth_audit_options_init(auth_audit_options_t *o)
{
    o->queue_max = 65536;
    o->batch = 1024;
    o->flush_us = 5000;
    o->seal_us = 100000;
}

/* ---- hex ------------------------------------------------------------------------------ */

void auth_audit_hex(const unsigned char hash[CHAIN_HASH_SIZE], char out[2 * CHAIN_HASH_SIZE + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < CHAIN_HASH_SIZE; i++) {
        out[2 * i] = digits[hash[i] >> 4];
        out[2 * i + 1] = digits[hash[i] & 15];
    }
    out[2 * CHAIN_HASH_SIZE] = '\0';
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool auth_audit_hex_parse(const char *text, unsigned char out[CHAIN_HASH_SIZE])
{
    if (!text || strlen(text) != 2 * CHAIN_HASH_SIZE)
        return false;
    for (size_t i = 0; i < CHAIN_HASH_SIZE; i++) {
        int hi = hex_digit(text[2 * i]), lo = hex_digit(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

/* ---- sealing -------------------------------------------------------------------------- */

static void to_record(const store_audit_row_t *row, int64_t seq, chain_record_t *out)
{
    *out = (chain_record_t){.seq = seq,
                            .time_us = row->time_us,
                            .user = row->user,
                            .role = row->role,
                            .client = row->client,
                            .patient = row->patient,
                            .action = row->action,
                            .type = row->type,
                            .id = row->resource_id,
                            .query = row->query,
                            .outcome = row->outcome,
                            .source = row->source,
                            .detail = row->detail};
}

status_t auth_audit_seal_txn(store_txn_t *txn, int64_t *out_sealed, err_t *err)
{
    int64_t sealed = 0;
    arena_t arena;
    arena_init(&arena);
    store_audit_row_t *rows;
    size_t n;
    /* nothing to seal: no lock taken (an idle trail costs one indexed read) */
    status_t rc = store_txn_audit_unsealed(txn, 1, &arena, &rows, &n, err);
    if (rc || n == 0)
        goto out;
    int64_t seq;
    const char *head_hash;
    if ((rc = store_txn_audit_head(txn, &arena, &seq, &head_hash, err)))
        goto out;
    unsigned char previous[CHAIN_HASH_SIZE];
    memcpy(previous, CHAIN_GENESIS, CHAIN_HASH_SIZE);
    if (seq > 0 && !auth_audit_hex_parse(head_hash, previous)) {
        rc = err_set(err, ERR_INTERNAL, NULL, "the audit chain head holds no valid hash");
        goto out;
    }
    char hex[2 * CHAIN_HASH_SIZE + 1] = "";
    do {
        /* read again under the head's lock: another sealer may have sealed them meanwhile */
        if ((rc = store_txn_audit_unsealed(txn, SEAL_ROUND, &arena, &rows, &n, err)))
            goto out;
        for (size_t i = 0; i < n; i++) {
            chain_record_t record;
            to_record(&rows[i], ++seq, &record);
            chain_hash(previous, &record, previous);
            auth_audit_hex(previous, hex);
            if ((rc = store_txn_audit_seal(txn, rows[i].id, seq, hex, err)))
                goto out;
            sealed++;
        }
    } while (n == SEAL_ROUND);
    if (sealed)
        rc = store_txn_audit_head_set(txn, seq, hex, err);
out:
    arena_release(&arena);
    if (out_sealed)
        *out_sealed = rc ? 0 : sealed;
    return rc;
}

typedef struct {
    int64_t sealed;
} seal_arg_t;

static status_t seal_fn(store_txn_t *txn, void *arg, err_t *err)
{
    seal_arg_t *a = arg;
    return auth_audit_seal_txn(txn, &a->sealed, err);
}

status_t auth_audit_seal(store_t *store, int64_t *out_sealed, err_t *err)
{
    seal_arg_t a = {0};
    status_t rc = store_run(store, seal_fn, &a, err);
    if (out_sealed)
        *out_sealed = rc ? 0 : a.sealed;
    return rc;
}

/* ---- the queue ------------------------------------------------------------------------ */

/* A heap copy of row: one block, its strings after the struct. */
static store_audit_row_t *row_copy(const store_audit_row_t *row, int64_t now_us)
{
    const char *const *texts[] = {&row->user,    &row->role,   &row->client,      &row->patient,
                                  &row->action,  &row->type,   &row->resource_id, &row->query,
                                  &row->outcome, &row->source, &row->detail};
    enum { NTEXTS = sizeof(texts) / sizeof(texts[0]) };
    size_t size = sizeof(store_audit_row_t);
    for (size_t i = 0; i < NTEXTS; i++)
        if (*texts[i])
            size += strlen(*texts[i]) + 1;
    store_audit_row_t *copy = xmalloc(size);
    memset(copy, 0, sizeof(*copy));
    copy->time_us = row->time_us ? row->time_us : now_us;
    const char **dest[] = {&copy->user,    &copy->role,   &copy->client,      &copy->patient,
                           &copy->action,  &copy->type,   &copy->resource_id, &copy->query,
                           &copy->outcome, &copy->source, &copy->detail};
    char *p = (char *)(copy + 1);
    for (size_t i = 0; i < NTEXTS; i++) {
        if (!*texts[i])
            continue;
        size_t len = strlen(*texts[i]) + 1;
        memcpy(p, *texts[i], len);
        *dest[i] = p;
        p += len;
    }
    return copy;
}

void auth_audit_record(auth_audit_t *audit, const store_audit_row_t *rows, size_t n)
{
    int64_t now = clock_now_us();
    for (size_t i = 0; i < n; i++) {
        store_audit_row_t *copy = row_copy(&rows[i], now);
        pthread_mutex_lock(&audit->lock);
        while (audit->n == audit->options.queue_max)
            pthread_cond_wait(&audit->room, &audit->lock);
        if (audit->n == 0)
            audit->oldest_us = clock_mono_us();
        audit->ring[(audit->head + audit->n) % audit->options.queue_max] = copy;
        audit->n++;
        audit->queued++;
        if (audit->n == audit->options.batch || audit->n == 1)
            pthread_cond_signal(&audit->wake);
        pthread_mutex_unlock(&audit->lock);
    }
}

void auth_audit_event(auth_audit_t *audit, const char *action, const char *user, const char *role,
                      const char *client, const char *source, const char *outcome,
                      const char *detail)
{
    store_audit_row_t row = {.user = user,
                             .role = role,
                             .client = client,
                             .action = action,
                             .outcome = outcome,
                             .source = source,
                             .detail = detail};
    auth_audit_record(audit, &row, 1);
}

typedef struct {
    store_audit_row_t **rows;
    size_t n;
} batch_t;

static status_t store_batch_fn(store_txn_t *txn, void *arg, err_t *err)
{
    batch_t *b = arg;
    status_t rc = ERR_OK;
    for (size_t i = 0; !rc && i < b->n; i++)
        rc = store_txn_audit_add(txn, b->rows[i], 1, err);
    return rc ? rc : auth_audit_seal_txn(txn, NULL, err);
}

/* Stores rows[0..n) and seals; tries again while the store refuses (at close: a few times). */
static void store_batch(auth_audit_t *audit, store_audit_row_t **rows, size_t n)
{
    batch_t b = {rows, n};
    for (int attempt = 1;; attempt++) {
        err_t err = ERR_INIT;
        status_t rc = store_run(audit->store, store_batch_fn, &b, &err);
        if (rc) {
            log_error("audit: could not store %zu records (attempt %d): %s%s%s", n, attempt,
                      err_message(&err), err.log_detail ? ": " : "",
                      err.log_detail ? err.log_detail : "");
        }
        err_release(&err);
        pthread_mutex_lock(&audit->lock);
        audit->last_rc = rc;
        bool stopping = audit->stopping;
        pthread_mutex_unlock(&audit->lock);
        if (!rc)
            return;
        if (stopping && attempt >= STORE_RETRIES) {
            log_error("audit: %zu records are lost: the store refused them at shutdown", n);
            return;
        }
        usleep(100000);
    }
}

static void *audit_thread(void *arg)
{
    auth_audit_t *audit = arg;
    size_t max = audit->options.batch * 4;
    store_audit_row_t **taken = xmalloc(max * sizeof(*taken));
    int64_t next_seal = clock_mono_us() + audit->options.seal_us;
    pthread_mutex_lock(&audit->lock);
    for (;;) {
        int64_t now = clock_mono_us();
        bool due = audit->n && (audit->n >= audit->options.batch || audit->stopping ||
                                audit->flush_wanted > audit->done ||
                                now - audit->oldest_us >= audit->options.flush_us);
        if (due) {
            size_t m = audit->n < max ? audit->n : max;
            for (size_t i = 0; i < m; i++) {
                taken[i] = audit->ring[audit->head];
                audit->head = (audit->head + 1) % audit->options.queue_max;
            }
            audit->n -= m;
            if (audit->n)
                audit->oldest_us = now; /* the rest waited no longer than this */
            pthread_cond_broadcast(&audit->room);
            pthread_mutex_unlock(&audit->lock);
            store_batch(audit, taken, m);
            for (size_t i = 0; i < m; i++)
                free(taken[i]);
            next_seal = clock_mono_us() + audit->options.seal_us;
            pthread_mutex_lock(&audit->lock);
            audit->done += m;
            pthread_cond_broadcast(&audit->stored);
            continue;
        }
        if (audit->stopping)
            break;
        if (now >= next_seal) {
            /* the rows writes added in their own transactions */
            pthread_mutex_unlock(&audit->lock);
            err_t err = ERR_INIT;
            if (auth_audit_seal(audit->store, NULL, &err))
                log_error("audit: could not seal: %s%s%s", err_message(&err),
                          err.log_detail ? ": " : "", err.log_detail ? err.log_detail : "");
            err_release(&err);
            next_seal = clock_mono_us() + audit->options.seal_us;
            pthread_mutex_lock(&audit->lock);
            continue;
        }
        int64_t until = next_seal;
        if (audit->n && audit->oldest_us + audit->options.flush_us < until)
            until = audit->oldest_us + audit->options.flush_us;
        int64_t wait_us = until - now;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (wait_us % 1000000) * 1000;
        ts.tv_sec += (time_t)(wait_us / 1000000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&audit->wake, &audit->lock, &ts);
    }
    pthread_mutex_unlock(&audit->lock);
    free(taken);
    /* what writes added up to the end */
    err_t err = ERR_INIT;
    if (auth_audit_seal(audit->store, NULL, &err))
        log_error("audit: could not seal at shutdown: %s", err_message(&err));
    err_release(&err);
    return NULL;
}

status_t auth_audit_open(store_t *store, const auth_audit_options_t *options, auth_audit_t **out,
                         err_t *err)
{
    auth_audit_t *audit = xcalloc(1, sizeof(*audit));
    audit->store = store;
    if (options)
        audit->options = *options;
    else
        auth_audit_options_init(&audit->options);
    if (audit->options.queue_max < 1)
        audit->options.queue_max = 1;
    if (audit->options.batch < 1 || audit->options.batch > audit->options.queue_max)
        audit->options.batch = audit->options.queue_max;
    audit->ring = xcalloc(audit->options.queue_max, sizeof(*audit->ring));
    pthread_mutex_init(&audit->lock, NULL);
    pthread_cond_init(&audit->wake, NULL);
    pthread_cond_init(&audit->room, NULL);
    pthread_cond_init(&audit->stored, NULL);
    if (pthread_create(&audit->thread, NULL, audit_thread, audit) != 0) {
        free(audit->ring);
        free(audit);
        return err_set(err, ERR_INTERNAL, NULL, "could not start the audit trail's thread");
    }
    *out = audit;
    return ERR_OK;
}

status_t auth_audit_flush(auth_audit_t *audit, err_t *err)
{
    pthread_mutex_lock(&audit->lock);
    uint64_t target = audit->queued;
    if (audit->flush_wanted < target)
        audit->flush_wanted = target;
    pthread_cond_signal(&audit->wake);
    while (audit->done < target)
        pthread_cond_wait(&audit->stored, &audit->lock);
    status_t rc = audit->last_rc;
    pthread_mutex_unlock(&audit->lock);
    if (rc)
        return err_set(err, rc, NULL, "the audit trail could not store its records");
    /* the writes' own rows too */
    return auth_audit_seal(audit->store, NULL, err);
}

void auth_audit_close(auth_audit_t *audit)
{
    if (!audit)
        return;
    pthread_mutex_lock(&audit->lock);
    audit->stopping = true;
    pthread_cond_signal(&audit->wake);
    pthread_mutex_unlock(&audit->lock);
    pthread_join(audit->thread, NULL);
    pthread_mutex_destroy(&audit->lock);
    pthread_cond_destroy(&audit->wake);
    pthread_cond_destroy(&audit->room);
    pthread_cond_destroy(&audit->stored);
    free(audit->ring);
    free(audit);
}

/* ---- verification --------------------------------------------------------------------- */

typedef struct {
    store_conn_t *conn;
    arena_t arena;
    store_audit_row_t *rows;
    size_t n, i;
    int64_t after;
    int64_t head_seq;
    unsigned char head_hash[CHAIN_HASH_SIZE];
    bool head_seen, head_matches;
    status_t rc;
    err_t *err;
} walk_t;

static bool walk_next(void *context, chain_record_t *out, unsigned char hash[CHAIN_HASH_SIZE])
{
    walk_t *w = context;
    if (w->i == w->n) {
        if (w->rc)
            return false;
        arena_release(&w->arena);
        arena_init(&w->arena);
        w->i = 0;
        w->rc = store_audit_scan(w->conn, w->after, 1000, &w->arena, &w->rows, &w->n, w->err);
        if (w->rc || w->n == 0)
            return false;
    }
    const store_audit_row_t *row = &w->rows[w->i++];
    to_record(row, row->seq, out);
    if (!auth_audit_hex_parse(row->hash, hash))
        memset(hash, 0, CHAIN_HASH_SIZE); /* a mangled hash verifies as altered */
    if (row->seq == w->head_seq) {
        w->head_seen = true;
        w->head_matches = memcmp(hash, w->head_hash, CHAIN_HASH_SIZE) == 0;
    }
    w->after = row->seq;
    return true;
}

status_t auth_audit_verify(store_conn_t *conn, const unsigned char *expected_last,
                           chain_report_t *report, err_t *err)
{
    walk_t w = {.conn = conn, .err = err};
    arena_init(&w.arena);
    const char *head_hash;
    status_t rc = store_audit_head(conn, &w.arena, &w.head_seq, &head_hash, err);
    if (rc) {
        arena_release(&w.arena);
        return rc;
    }
    if (w.head_seq > 0 && !auth_audit_hex_parse(head_hash, w.head_hash))
        memset(w.head_hash, 0, CHAIN_HASH_SIZE);
    chain_fault_t fault = chain_verify(1, CHAIN_GENESIS, walk_next, &w, expected_last, report);
    arena_release(&w.arena);
    if (w.rc)
        return w.rc;
    /* the head the database keeps is an anchor of its own: the walk must pass it intact */
    if (fault == CHAIN_INTACT && w.head_seq > 0 && (!w.head_seen || !w.head_matches)) {
        report->fault = CHAIN_END_CHANGED;
        report->seq = w.head_seen ? w.head_seq : report->checked;
    }
    return ERR_OK;
}
