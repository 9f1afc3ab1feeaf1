/*
 * audit.c - the audit trail's queue, its thread, sealing and verification (audit.h).
 *
 * The queue is a ring of fixed-size slots behind one mutex, each a row with its strings
 * inline (a longer row's strings in a heap block of their own), allocated once: queuing a
 * record allocates nothing, so the HTTP threads' malloc arenas do not grow with the queue.
 * The thread takes up to a batch at a time, reads their slots outside the lock (the
 * producers write only past them until they are given back), and stores them in one
 * transaction that also seals: under the chain head's lock it seals the rows writes added
 * unsealed, then inserts the batch's rows numbered and hashed already, and moves the head
 * once. The chain's order is the order of sealing, not of the transactions' start, so a
 * write whose transaction commits late is sealed by a later round and no write waits for the
 * chain. Batches commit without waiting for the disk (store_run_relaxed); the next durable
 * commit makes them durable, and the thread makes one when none came for durable_us.
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
#define SLOT_TEXT     392  /* bytes of a row's strings kept in its slot (a slot: 512 bytes) */

typedef struct {
    store_audit_row_t row;
    char *spill; /* the strings when they do not fit in text (heap), else NULL */
    char text[SLOT_TEXT];
} slot_t;

struct auth_audit {
    store_t *store;
    auth_audit_options_t options;
    pthread_mutex_t lock;
    pthread_cond_t wake;   /* to the thread: work, or stop */
    pthread_cond_t room;   /* to producers: the ring has room */
    pthread_cond_t stored; /* to auth_audit_flush: a batch is stored */
    slot_t *ring;          /* queue_max slots */
    size_t head, n;        /* the queued slots: head, head + 1, ... (mod queue_max) */
    size_t taken;          /* slots before head the thread is storing: not to be reused yet */
    int64_t relaxed_since; /* monotonic time of the oldest batch not yet durable; 0: none */
    uint64_t queued, done; /* rows ever queued, rows ever stored (or given up) */
    uint64_t flush_wanted; /* store at once up to this many queued */
    int64_t oldest_us;     /* monotonic time the oldest queued row arrived */
    status_t last_rc;      /* of the last batch */
    bool stopping;
    pthread_t thread;
};

void auth_audit_options_init(auth_audit_options_t *o)
{
    o->queue_max = 4096;
    o->batch = 512;
    o->flush_us = 5000;
    o->seal_us = 100000;
    o->durable_us = 100000;
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

/* The chain's end as a sealing round holds it: the last seq and its hash. */
typedef struct {
    int64_t seq;
    unsigned char previous[CHAIN_HASH_SIZE];
    char hex[2 * CHAIN_HASH_SIZE + 1];
} chain_end_t;

/* Reads the chain head, locked until the transaction ends (PostgreSQL). */
static status_t end_read(store_txn_t *txn, arena_t *arena, chain_end_t *end, err_t *err)
{
    const char *head_hash;
    status_t rc = store_txn_audit_head(txn, arena, &end->seq, &head_hash, err);
    if (rc)
        return rc;
    memcpy(end->previous, CHAIN_GENESIS, CHAIN_HASH_SIZE);
    end->hex[0] = '\0';
    if (end->seq > 0) {
        if (!auth_audit_hex_parse(head_hash, end->previous))
            return err_set(err, ERR_INTERNAL, NULL, "the audit chain head holds no valid hash");
        memcpy(end->hex, head_hash, sizeof(end->hex));
    }
    return ERR_OK;
}

/* Numbers and hashes row after end, which moves on to it; row->seq and row->hash (in arena)
 * are set. */
static void end_append(chain_end_t *end, store_audit_row_t *row, arena_t *arena)
{
    chain_record_t record;
    to_record(row, ++end->seq, &record);
    chain_hash(end->previous, &record, end->previous);
    auth_audit_hex(end->previous, end->hex);
    row->seq = end->seq;
    row->hash = arena_strdup(arena, end->hex);
}

/* Seals every unsealed row the transaction sees after end, in insertion order. */
static status_t seal_unsealed(store_txn_t *txn, arena_t *arena, chain_end_t *end,
                              int64_t *out_sealed, err_t *err)
{
    store_audit_row_t *rows;
    size_t n;
    status_t rc;
    do {
        if ((rc = store_txn_audit_unsealed(txn, SEAL_ROUND, arena, &rows, &n, err)))
            return rc;
        for (size_t i = 0; i < n; i++) {
            end_append(end, &rows[i], arena);
            if ((rc = store_txn_audit_seal(txn, rows[i].id, rows[i].seq, rows[i].hash, err)))
                return rc;
            (*out_sealed)++;
        }
    } while (n == SEAL_ROUND);
    return ERR_OK;
}

/* A sealing round; with touch, the head is written even when nothing was sealed (a write,
 * so that the commit is a durable one). */
static status_t seal_round(store_txn_t *txn, bool touch, int64_t *out_sealed, err_t *err)
{
    int64_t sealed = 0;
    arena_t arena;
    arena_init(&arena);
    store_audit_row_t *rows;
    size_t n = 0;
    status_t rc = ERR_OK;
    /* nothing to seal: no lock taken (an idle trail costs one indexed read) */
    if (!touch && ((rc = store_txn_audit_unsealed(txn, 1, &arena, &rows, &n, err)) || n == 0))
        goto out;
    chain_end_t end;
    if ((rc = end_read(txn, &arena, &end, err)))
        goto out;
    /* read again under the head's lock: another sealer may have sealed them meanwhile */
    if ((rc = seal_unsealed(txn, &arena, &end, &sealed, err)))
        goto out;
    if (sealed || touch)
        rc = store_txn_audit_head_set(txn, end.seq, end.seq ? end.hex : NULL, err);
out:
    arena_release(&arena);
    if (out_sealed)
        *out_sealed = rc ? 0 : sealed;
    return rc;
}

status_t auth_audit_seal_txn(store_txn_t *txn, int64_t *out_sealed, err_t *err)
{
    return seal_round(txn, false, out_sealed, err);
}

typedef struct {
    bool touch;
    int64_t sealed;
} seal_arg_t;

static status_t seal_fn(store_txn_t *txn, void *arg, err_t *err)
{
    seal_arg_t *a = arg;
    return seal_round(txn, a->touch, &a->sealed, err);
}

status_t auth_audit_seal(store_t *store, int64_t *out_sealed, err_t *err)
{
    seal_arg_t a = {0};
    status_t rc = store_run(store, seal_fn, &a, err);
    if (out_sealed)
        *out_sealed = rc ? 0 : a.sealed;
    return rc;
}

/* A sealing round that commits durably whatever it finds: every batch before it is durable
 * when it returns. */
static status_t seal_durable(store_t *store, err_t *err)
{
    seal_arg_t a = {.touch = true};
    return store_run(store, seal_fn, &a, err);
}

status_t auth_audit_add_sealed_txn(store_txn_t *txn, const store_audit_row_t *rows, size_t n,
                                   err_t *err)
{
    arena_t arena;
    arena_init(&arena);
    chain_end_t end;
    int64_t sealed = 0;
    status_t rc = end_read(txn, &arena, &end, err);
    /* the writes' rows first: they were committed before these were taken from the queue */
    if (!rc)
        rc = seal_unsealed(txn, &arena, &end, &sealed, err);
    if (!rc && n > 0) {
        store_audit_row_t *copies = arena_alloc(&arena, n * sizeof(*copies));
        for (size_t i = 0; i < n; i++) {
            copies[i] = rows[i];
            end_append(&end, &copies[i], &arena);
        }
        rc = store_txn_audit_add(txn, copies, n, err);
    }
    if (!rc && (sealed || n > 0))
        rc = store_txn_audit_head_set(txn, end.seq, end.hex, err);
    arena_release(&arena);
    return rc;
}

/* ---- the queue ------------------------------------------------------------------------ */

/* Copies row into slot: its strings in the slot's text, or in one heap block when they do not
 * fit (the slot's previous block, if any, is freed). */
static void slot_fill(slot_t *slot, const store_audit_row_t *row, int64_t now_us)
{
    const char *const *texts[] = {&row->user,    &row->role,   &row->client,      &row->patient,
                                  &row->action,  &row->type,   &row->resource_id, &row->query,
                                  &row->outcome, &row->source, &row->detail};
    enum { NTEXTS = sizeof(texts) / sizeof(texts[0]) };
    size_t lens[NTEXTS], size = 0;
    for (size_t i = 0; i < NTEXTS; i++) {
        lens[i] = *texts[i] ? strlen(*texts[i]) + 1 : 0;
        size += lens[i];
    }
    free(slot->spill);
    slot->spill = size > SLOT_TEXT ? xmalloc(size) : NULL;
    store_audit_row_t *copy = &slot->row;
    memset(copy, 0, sizeof(*copy));
    copy->time_us = row->time_us ? row->time_us : now_us;
    const char **dest[] = {&copy->user,    &copy->role,   &copy->client,      &copy->patient,
                           &copy->action,  &copy->type,   &copy->resource_id, &copy->query,
                           &copy->outcome, &copy->source, &copy->detail};
    char *p = slot->spill ? slot->spill : slot->text;
    for (size_t i = 0; i < NTEXTS; i++) {
        if (!*texts[i])
            continue;
        memcpy(p, *texts[i], lens[i]);
        *dest[i] = p;
        p += lens[i];
    }
}

void auth_audit_record(auth_audit_t *audit, const store_audit_row_t *rows, size_t n)
{
    int64_t now = clock_now_us();
    size_t max = audit->options.queue_max;
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&audit->lock);
        while (audit->taken + audit->n == max)
            pthread_cond_wait(&audit->room, &audit->lock);
        if (audit->n == 0)
            audit->oldest_us = clock_mono_us();
        /* the slot is neither queued nor being stored: no one else reads it */
        slot_fill(&audit->ring[(audit->head + audit->n) % max], &rows[i], now);
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
    const store_audit_row_t *rows;
    size_t n;
} batch_t;

static status_t store_batch_fn(store_txn_t *txn, void *arg, err_t *err)
{
    batch_t *b = arg;
    return auth_audit_add_sealed_txn(txn, b->rows, b->n, err);
}

/* Stores rows[0..n) sealed; tries again while the store refuses (at close: a few times). The
 * commit is relaxed (store_run_relaxed) unless a batch has waited durable_us for a durable
 * one. */
static void store_batch(auth_audit_t *audit, const store_audit_row_t *rows, size_t n)
{
    batch_t b = {rows, n};
    for (int attempt = 1;; attempt++) {
        err_t err = ERR_INIT;
        int64_t now = clock_mono_us();
        bool durable =
            audit->options.durable_us <= 0 ||
            (audit->relaxed_since && now - audit->relaxed_since >= audit->options.durable_us);
        status_t rc = durable ? store_run(audit->store, store_batch_fn, &b, &err)
                              : store_run_relaxed(audit->store, store_batch_fn, &b, &err);
        if (!rc) {
            if (durable)
                audit->relaxed_since = 0;
            else if (!audit->relaxed_since)
                audit->relaxed_since = now;
        } else {
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

/* The durable sealing round of the thread: the rows writes added, and the batches stored
 * without waiting for the disk made durable. */
static void seal_now(auth_audit_t *audit, const char *when)
{
    err_t err = ERR_INIT;
    status_t rc;
    if (audit->relaxed_since) {
        rc = seal_durable(audit->store, &err);
        if (!rc)
            audit->relaxed_since = 0;
    } else {
        rc = auth_audit_seal(audit->store, NULL, &err);
    }
    if (rc)
        log_error("audit: could not seal%s: %s%s%s", when, err_message(&err),
                  err.log_detail ? ": " : "", err.log_detail ? err.log_detail : "");
    err_release(&err);
}

static void *audit_thread(void *arg)
{
    auth_audit_t *audit = arg;
    size_t max = audit->options.batch, qmax = audit->options.queue_max;
    store_audit_row_t *taken = xmalloc(max * sizeof(*taken));
    int64_t next_seal = clock_mono_us() + audit->options.seal_us;
    pthread_mutex_lock(&audit->lock);
    for (;;) {
        int64_t now = clock_mono_us();
        bool due = audit->n && (audit->n >= audit->options.batch || audit->stopping ||
                                audit->flush_wanted > audit->done ||
                                now - audit->oldest_us >= audit->options.flush_us);
        if (due) {
            size_t m = audit->n < max ? audit->n : max;
            size_t first = audit->head;
            audit->head = (audit->head + m) % qmax;
            audit->n -= m;
            audit->taken = m;
            if (audit->n)
                audit->oldest_us = now; /* the rest waited no longer than this */
            pthread_mutex_unlock(&audit->lock);
            /* the taken slots are ours until taken is 0 again */
            for (size_t i = 0; i < m; i++)
                taken[i] = audit->ring[(first + i) % qmax].row;
            store_batch(audit, taken, m);
            if (audit->relaxed_since)
                next_seal = audit->relaxed_since + audit->options.durable_us;
            else
                next_seal = clock_mono_us() + audit->options.seal_us;
            pthread_mutex_lock(&audit->lock);
            audit->taken = 0;
            audit->done += m;
            pthread_cond_broadcast(&audit->room);
            pthread_cond_broadcast(&audit->stored);
            continue;
        }
        if (audit->stopping)
            break;
        if (now >= next_seal) {
            /* the rows writes added in their own transactions */
            pthread_mutex_unlock(&audit->lock);
            seal_now(audit, "");
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
    /* what writes added up to the end, and every batch durable */
    seal_now(audit, " at shutdown");
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
    /* the writes' own rows too, and every batch durable */
    return seal_durable(audit->store, err);
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
    for (size_t i = 0; i < audit->options.queue_max; i++)
        free(audit->ring[i].spill);
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
