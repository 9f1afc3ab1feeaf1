/*
 * migrate.c - `concerto migrate-data`: copies a whole database into an empty one (an SQLite
 * deployment to PostgreSQL), then reads both back and compares them.
 *
 * The source is read in one snapshot that also holds its write lock, after a check that no
 * other process has it open. The copy is one transaction on the target: versions in seq order
 * with their keys (the current ones with their resource's key and search index rows extracted
 * again with the source's search parameters), then the outbox, the jobs, the leases, the
 * accounts, clients and tokens, the HL7 messages, the server's keys (sealed as they are), and
 * the key counters. A failure or Ctrl-C rolls it back
 * whole. The verification reads both databases through the store and compares counts per type
 * and SHA-256 checksums of canonical streams.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/digest.h"
#include "base/buf.h"
#include "base/jv.h"
#include "base/mem.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "repo/repo.h"

static const char help[] =
    "usage: concerto migrate-data --from FILE.db --to postgresql://URI [--batch N]\n"
    "\n"
    "Copies a whole Concerto database into an empty one: an SQLite deployment to PostgreSQL\n"
    "(docs/configuration.md, \"Moving a deployment to PostgreSQL\"). Everything comes over as\n"
    "it is stored: every version of every resource (ids, version ids, lastUpdated, deletes,\n"
    "the status each write answered, contained resources), the current resources under the\n"
    "same keys, the outbox events not yet handled, the jobs and the singleton leases as they\n"
    "stand (claims, attempts, dead ones), the user accounts, OAuth clients and tokens (hashes,\n"
    "lockouts, sealed second factors as they are), the server's signing key when the\n"
    "database keeps it (sealed, as PostgreSQL servers keep it; it opens with the same\n"
    "--secrets-key), and the key counters, which go on after the copied keys. An SQLite\n"
    "server's key file (FILE.db.signing.pem) is not in the database: start the servers on\n"
    "the target with --signing-key and that file to keep signing with it, or they make a\n"
    "key of their own in the target. The search index is built again on the target from\n"
    "each current version with the search parameters of the source (R4's and the source's\n"
    "SearchParameter resources), so searches answer as on the source.\n"
    "\n"
    "The source must not be in use: an SQLite file that another process has open (a running\n"
    "server) is refused, and its write lock is held while it is read, so the copy is one\n"
    "consistent snapshot. The source is not changed (but an older schema is brought up to\n"
    "date, as every command does). The target must hold no resources, outbox events, jobs,\n"
    "leases, accounts, clients, tokens or server keys; a database without the schema gets\n"
    "it first. The\n"
    "copy is one transaction on the target: when it fails or is interrupted (Ctrl-C) the\n"
    "target holds nothing of it.\n"
    "Progress goes to stderr. At the end both databases are read back and compared: versions\n"
    "and current resources per type, outbox events, jobs, leases and the rows of each account,\n"
    "client and token table, and SHA-256 checksums of every version, event, job, lease and\n"
    "of those rows; the comparison goes to stdout. Exit status 1 when the source or the\n"
    "target is refused, the copy fails or is interrupted, or the\n"
    "target does not match the source; 2 for a usage error.\n"
    "\n"
    "  --from LOCATION  the database to copy: an SQLite file (a postgresql:// URI works too)\n"
    "                   (env CONCERTO_FROM)\n"
    "  --to LOCATION    the database to fill: a postgresql:// URI (an SQLite file works too)\n"
    "                   (env CONCERTO_TO)\n"
    "  --batch N        versions read and written at a time (default: 500)\n"
    "  --config FILE    read settings from FILE (lines \"name = value\"; env CONCERTO_CONFIG)\n";

static volatile sig_atomic_t interrupted;

/* The first Ctrl-C (or SIGTERM) asks the copy to stop after its batch and roll back; the
 * handler is reset, so a second one ends the process at once (the database rolls back an
 * unfinished transaction all the same). */
static void on_signal(int sig)
{
    interrupted = sig;
    signal(sig, SIG_DFL);
}

static void catch_signals(bool on)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on ? on_signal : SIG_DFL;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* A location for messages: a URI's password (user:PASSWORD@ or password=PASSWORD) is not
 * shown. */
static char *shown(const char *location)
{
    const char *scheme = strstr(location, "://");
    if (!scheme)
        return xstrdup(location);
    buf_t out = BUF_INIT;
    const char *at = strchr(scheme + 3, '@');
    const char *colon = at ? memchr(scheme + 3, ':', (size_t)(at - (scheme + 3))) : NULL;
    const char *rest = location;
    if (colon) {
        buf_add(&out, location, (size_t)(colon - location));
        buf_addstr(&out, ":***");
        rest = at;
    }
    const char *password;
    while ((password = strstr(rest, "password=")) != NULL) {
        buf_add(&out, rest, (size_t)(password - rest) + 9);
        buf_addstr(&out, "***");
        rest = password + 9 + strcspn(password + 9, "&");
    }
    buf_addstr(&out, rest);
    return buf_detach(&out, NULL);
}

/* ---- the copy ---------------------------------------------------------------------------- */

typedef struct {
    store_conn_t *source;
    const fhir_search_snapshot_t *params;
    size_t batch;
    int64_t total; /* versions in the source */
    int64_t versions, resources, events, jobs, leases, hl7, server_keys;
    int64_t auth_rows[STORE_AUTH_TABLES];
    struct timespec started;
    double last_report;
} copy_t;

/* Every second, and at the start and the end (final: with its line end). */
static void progress(copy_t *c, bool now, bool final)
{
    double t = seconds_since(&c->started);
    if (!now && t - c->last_report < 1.0)
        return;
    c->last_report = t;
    fprintf(stderr, "\rconcerto migrate-data: %lld of %lld versions (%.0f%%), %.0f/s   ",
            (long long)c->versions, (long long)c->total,
            c->total ? 100.0 * (double)c->versions / (double)c->total : 100.0,
            t > 0 ? (double)c->versions / t : 0.0);
    if (final)
        fputc('\n', stderr);
}

static status_t stop_if_interrupted(err_t *err)
{
    if (!interrupted)
        return ERR_OK;
    return err_set(err, ERR_UNAVAILABLE, NULL, "interrupted (%s)",
                   interrupted == SIGINT ? "Ctrl-C" : "SIGTERM");
}

/* The index rows of the current versions of a batch, extracted with the source's parameters. */
static status_t index_batch(copy_t *c, store_copy_version_t *rows, size_t n, arena_t *arena,
                            err_t *err)
{
    for (size_t i = 0; i < n; i++) {
        store_copy_version_t *row = &rows[i];
        if (!row->rid || row->version.deleted || !row->version.json)
            continue;
        json_t *resource = jv_parse(row->version.json, row->version.json_len, err);
        if (!resource)
            return err_set(err, ERR_STORAGE, NULL, "%s/%s version %lld is not JSON: %s",
                           row->version.type, row->version.id, (long long)row->version.version,
                           err_message(err));
        fhir_index_rows_t *index = arena_zalloc(arena, sizeof(*index));
        status_t rc = fhir_index_extract(c->params, resource, arena, index, err);
        json_decref(resource);
        if (rc) {
            err_t cause = ERR_INIT;
            err_move(&cause, err);
            err_set(err, rc, NULL, "could not index %s/%s: %s", row->version.type, row->version.id,
                    err_message(&cause));
            err_release(&cause);
            return rc;
        }
        row->index = index;
        c->resources++;
    }
    return ERR_OK;
}

static status_t copy_versions(store_txn_t *txn, copy_t *c, err_t *err)
{
    int64_t after = 0;
    for (;;) {
        status_t rc = stop_if_interrupted(err);
        if (rc)
            return rc;
        arena_t arena;
        arena_init(&arena);
        store_copy_version_t *rows;
        size_t n;
        rc = store_scan_versions(c->source, after, c->batch, &arena, &rows, &n, err);
        if (!rc && n) {
            after = rows[n - 1].version.seq;
            rc = index_batch(c, rows, n, &arena, err);
        }
        if (!rc && n)
            rc = store_txn_load_versions(txn, rows, n, err);
        arena_release(&arena);
        if (rc || n == 0)
            return rc;
        c->versions += (int64_t)n;
        progress(c, false, false);
    }
}

static status_t copy_queues(store_txn_t *txn, copy_t *c, err_t *err)
{
    status_t rc = ERR_OK;
    for (int64_t after = 0; !rc;) {
        arena_t arena;
        arena_init(&arena);
        store_event_t *events;
        size_t n = 0;
        rc = stop_if_interrupted(err);
        if (!rc)
            rc = store_outbox_scan(c->source, after, c->batch, &arena, &events, &n, err);
        if (!rc && n) {
            after = events[n - 1].event_id;
            rc = store_txn_load_events(txn, events, n, err);
            c->events += (int64_t)n;
        }
        arena_release(&arena);
        if (n == 0)
            break;
    }
    for (int64_t after = 0; !rc;) {
        arena_t arena;
        arena_init(&arena);
        store_job_t *jobs;
        size_t n = 0;
        store_job_query_t query = {.after_job_id = after, .count = c->batch};
        rc = stop_if_interrupted(err);
        if (!rc)
            rc = store_job_list(c->source, &query, &arena, &jobs, &n, err);
        if (!rc && n) {
            after = jobs[n - 1].job_id;
            rc = store_txn_load_jobs(txn, jobs, n, err);
            c->jobs += (int64_t)n;
        }
        arena_release(&arena);
        if (n == 0)
            break;
    }
    if (!rc) {
        arena_t arena;
        arena_init(&arena);
        store_lease_t *leases;
        size_t n = 0;
        rc = store_lease_list(c->source, &arena, &leases, &n, err);
        if (!rc)
            rc = store_txn_load_leases(txn, leases, n, err);
        c->leases = (int64_t)n;
        arena_release(&arena);
    }
    for (size_t t = 0; t < STORE_AUTH_TABLES && !rc; t++) {
        arena_t arena;
        arena_init(&arena);
        const char **cells = NULL;
        size_t nrows = 0, ncols = 0;
        rc = store_auth_table_scan(c->source, t, &arena, &cells, &nrows, &ncols, err);
        if (!rc)
            rc = store_txn_auth_table_load(txn, t, cells, nrows, err);
        c->auth_rows[t] = (int64_t)nrows;
        arena_release(&arena);
    }
    for (int64_t after = 0; !rc;) {
        arena_t arena;
        arena_init(&arena);
        store_hl7_message_t *messages;
        size_t n = 0;
        rc = stop_if_interrupted(err);
        if (!rc)
            rc = store_hl7_scan(c->source, after, c->batch, &arena, &messages, &n, err);
        if (!rc && n) {
            after = messages[n - 1].id;
            rc = store_txn_hl7_load(txn, messages, n, err);
            c->hl7 += (int64_t)n;
        }
        arena_release(&arena);
        if (n == 0)
            break;
    }
    if (!rc) {
        arena_t arena;
        arena_init(&arena);
        store_server_key_t *keys;
        size_t n = 0;
        rc = store_server_key_list(c->source, &arena, &keys, &n, err);
        for (size_t i = 0; i < n && !rc; i++) {
            bool added = false;
            rc = store_txn_server_key_add(txn, &keys[i], &added, err);
            if (!rc && !added)
                rc = err_set(err, ERR_CONFLICT, NULL, "the target holds a server key \"%s\"",
                             keys[i].name);
        }
        c->server_keys = (int64_t)n;
        arena_release(&arena);
    }
    store_keys_t keys;
    if (!rc)
        rc = store_last_keys(c->source, &keys, err);
    if (!rc)
        rc = store_txn_load_keys(txn, &keys, err);
    return rc;
}

static status_t copy_txn(store_txn_t *txn, void *arg, err_t *err)
{
    copy_t *c = arg;
    c->versions = c->resources = c->events = c->jobs = c->leases = c->hl7 = c->server_keys = 0;
    progress(c, true, false);
    status_t rc = copy_versions(txn, c, err);
    progress(c, true, true);
    if (!rc)
        rc = copy_queues(txn, c, err);
    if (!rc)
        rc = stop_if_interrupted(err);
    if (!rc)
        fprintf(stderr, "concerto migrate-data: committing\n");
    return rc;
}

/* ---- reading a database back: counts and checksums --------------------------------------- */

typedef struct {
    json_t *types; /* type -> [versions, current versions (scan), current resources (count)] */
    int64_t versions, current, deleted;
    int64_t events, dead_events, jobs, leases, hl7, server_keys;
    int64_t auth_rows[STORE_AUTH_TABLES];
    unsigned char auth_sha[DIGEST_SHA256_BYTES];
    unsigned char server_keys_sha[DIGEST_SHA256_BYTES];
    unsigned char hl7_sha[DIGEST_SHA256_BYTES];
    unsigned char versions_sha[DIGEST_SHA256_BYTES];
    unsigned char outbox_sha[DIGEST_SHA256_BYTES];
    unsigned char jobs_sha[DIGEST_SHA256_BYTES];
    unsigned char leases_sha[DIGEST_SHA256_BYTES];
    store_keys_t keys;
} summary_t;

/* The canonical stream: each field of a row in a fixed order, an integer as its decimal
 * digits and ';', a text as its length in bytes, ':' and its bytes, NULL as '~'; a row ends
 * with '\n'. Unambiguous, so equal checksums mean equal rows. */
static void hash_int(digest_sha256_t *h, int64_t i)
{
    char text[32];
    int n = snprintf(text, sizeof(text), "%lld;", (long long)i);
    digest_sha256_update(h, (const unsigned char *)text, n);
}

static void hash_text(digest_sha256_t *h, const char *s, size_t len)
{
    if (!s) {
        digest_sha256_update(h, "~", 1);
        return;
    }
    char prefix[32];
    int n = snprintf(prefix, sizeof(prefix), "%zu:", len);
    digest_sha256_update(h, (const unsigned char *)prefix, n);
    digest_sha256_update(h, s, len);
}

static void hash_str(digest_sha256_t *h, const char *s)
{
    hash_text(h, s, s ? strlen(s) : 0);
}

static void hash_end(digest_sha256_t *h)
{
    digest_sha256_update(h, "\n", 1);
}

static void count_type(summary_t *s, const char *type, int slot)
{
    json_t *counts = json_object_get(s->types, type);
    if (!counts) {
        counts = json_pack("[iii]", 0, 0, 0);
        json_object_set_new(s->types, type, counts);
    }
    json_t *value = json_array_get(counts, (size_t)slot);
    json_integer_set(value, json_integer_value(value) + 1);
}

static status_t summarize_versions(store_conn_t *conn, size_t batch, summary_t *s, err_t *err)
{
    digest_sha256_t h;
    digest_sha256_init(&h);
    int64_t after = 0;
    status_t rc = ERR_OK;
    for (;;) {
        arena_t arena;
        arena_init(&arena);
        store_copy_version_t *rows;
        size_t n = 0;
        rc = store_scan_versions(conn, after, batch, &arena, &rows, &n, err);
        for (size_t i = 0; i < n && !rc; i++) {
            const store_version_t *v = &rows[i].version;
            hash_str(&h, v->type);
            hash_str(&h, v->id);
            hash_int(&h, v->version);
            hash_int(&h, v->seq);
            hash_int(&h, v->updated_us);
            hash_str(&h, v->last_updated);
            hash_str(&h, v->method);
            hash_int(&h, v->status);
            hash_int(&h, v->deleted);
            hash_text(&h, v->json, v->json_len);
            hash_int(&h, rows[i].rid);
            hash_end(&h);
            s->versions++;
            count_type(s, v->type, 0);
            if (rows[i].rid && v->deleted)
                s->deleted++;
            if (rows[i].rid && !v->deleted) {
                s->current++;
                count_type(s, v->type, 1);
            }
            after = v->seq;
        }
        arena_release(&arena);
        if (rc || n == 0)
            break;
    }
    digest_sha256_final(&h, s->versions_sha);
    /* the current resources as the store counts them (its table of current resources) */
    const char *type;
    json_t *counts;
    json_object_foreach(s->types, type, counts)
    {
        int64_t count = 0;
        if (!rc)
            rc = store_count(conn, type, &count, err);
        json_array_set_new(counts, 2, json_integer(count));
    }
    return rc;
}

static status_t summarize_queues(store_conn_t *conn, size_t batch, summary_t *s, err_t *err)
{
    digest_sha256_t h;
    digest_sha256_init(&h);
    status_t rc = ERR_OK;
    for (int64_t after = 0; !rc;) {
        arena_t arena;
        arena_init(&arena);
        store_event_t *events;
        size_t n = 0;
        rc = store_outbox_scan(conn, after, batch, &arena, &events, &n, err);
        for (size_t i = 0; i < n && !rc; i++) {
            const store_event_t *e = &events[i];
            hash_int(&h, e->event_id);
            hash_int(&h, e->seq);
            hash_str(&h, e->type);
            hash_str(&h, e->id);
            hash_int(&h, e->version);
            hash_int(&h, (int64_t)e->action);
            hash_int(&h, e->time_us);
            hash_int(&h, e->available_us);
            hash_int(&h, e->attempts);
            hash_str(&h, e->claimed_by);
            hash_int(&h, e->claim_until_us);
            hash_str(&h, e->last_error);
            hash_int(&h, e->dead);
            hash_end(&h);
            s->events++;
            s->dead_events += e->dead;
            after = e->event_id;
        }
        arena_release(&arena);
        if (n == 0)
            break;
    }
    digest_sha256_final(&h, s->outbox_sha);

    digest_sha256_init(&h);
    for (int64_t after = 0; !rc;) {
        arena_t arena;
        arena_init(&arena);
        store_job_t *jobs;
        size_t n = 0;
        store_job_query_t query = {.after_job_id = after, .count = batch};
        rc = store_job_list(conn, &query, &arena, &jobs, &n, err);
        for (size_t i = 0; i < n && !rc; i++) {
            const store_job_t *j = &jobs[i];
            hash_int(&h, j->job_id);
            hash_str(&h, j->kind);
            hash_str(&h, j->key);
            hash_int(&h, j->run_at_us);
            hash_str(&h, j->payload);
            hash_int(&h, j->attempts);
            hash_str(&h, j->claimed_by);
            hash_int(&h, j->claim_until_us);
            hash_str(&h, j->last_error);
            hash_int(&h, (int64_t)j->state);
            hash_int(&h, j->revision);
            hash_end(&h);
            s->jobs++;
            after = j->job_id;
        }
        arena_release(&arena);
        if (n == 0)
            break;
    }
    digest_sha256_final(&h, s->jobs_sha);

    digest_sha256_init(&h);
    if (!rc) {
        arena_t arena;
        arena_init(&arena);
        store_lease_t *leases;
        size_t n = 0;
        rc = store_lease_list(conn, &arena, &leases, &n, err);
        for (size_t i = 0; i < n && !rc; i++) {
            hash_str(&h, leases[i].name);
            hash_str(&h, leases[i].holder);
            hash_int(&h, leases[i].until_us);
            hash_end(&h);
        }
        s->leases = (int64_t)n;
        arena_release(&arena);
    }
    digest_sha256_final(&h, s->leases_sha);

    /* the accounts, clients and tokens: each table's name, then its rows cell by cell */
    digest_sha256_init(&h);
    for (size_t t = 0; t < STORE_AUTH_TABLES && !rc; t++) {
        arena_t arena;
        arena_init(&arena);
        const char **cells = NULL;
        size_t nrows = 0, ncols = 0;
        rc = store_auth_table_scan(conn, t, &arena, &cells, &nrows, &ncols, err);
        hash_str(&h, store_auth_table_name(t));
        hash_end(&h);
        for (size_t r = 0; r < nrows && !rc; r++) {
            for (size_t k = 0; k < ncols; k++)
                hash_str(&h, cells[r * ncols + k]);
            hash_end(&h);
        }
        s->auth_rows[t] = (int64_t)nrows;
        arena_release(&arena);
    }
    digest_sha256_final(&h, s->auth_sha);

    /* the HL7 messages, whole */
    digest_sha256_init(&h);
    for (int64_t after = 0; !rc;) {
        arena_t arena;
        arena_init(&arena);
        store_hl7_message_t *m;
        size_t n = 0;
        rc = store_hl7_scan(conn, after, batch, &arena, &m, &n, err);
        for (size_t i = 0; i < n && !rc; i++) {
            hash_int(&h, m[i].id);
            hash_int(&h, m[i].received_us);
            const char *cells[] = {m[i].peer, m[i].sender,  m[i].control_id,
                                   m[i].type, m[i].status,  m[i].reason,
                                   m[i].ack,  m[i].patient, m[i].encounter};
            for (size_t k = 0; k < sizeof(cells) / sizeof(cells[0]); k++)
                hash_str(&h, cells[k]);
            hash_int(&h, m[i].processed_us);
            hash_int(&h, m[i].attempts);
            hash_text(&h, m[i].text, m[i].text_len);
            hash_end(&h);
        }
        s->hl7 += (int64_t)n;
        if (n)
            after = m[n - 1].id;
        arena_release(&arena);
        if (n == 0)
            break;
    }
    digest_sha256_final(&h, s->hl7_sha);

    /* the server's keys, as they are stored (sealed) */
    digest_sha256_init(&h);
    if (!rc) {
        arena_t arena;
        arena_init(&arena);
        store_server_key_t *keys;
        size_t n = 0;
        rc = store_server_key_list(conn, &arena, &keys, &n, err);
        for (size_t i = 0; i < n && !rc; i++) {
            hash_str(&h, keys[i].name);
            hash_str(&h, keys[i].kid);
            hash_int(&h, keys[i].created_us);
            hash_str(&h, keys[i].sealed);
            hash_end(&h);
        }
        s->server_keys = (int64_t)n;
        arena_release(&arena);
    }
    digest_sha256_final(&h, s->server_keys_sha);
    if (!rc)
        rc = store_last_keys(conn, &s->keys, err);
    return rc;
}

/* Reads a whole database back; conn holds a snapshot (the caller's). */
static status_t summarize(store_conn_t *conn, size_t batch, summary_t *s, err_t *err)
{
    memset(s, 0, sizeof(*s));
    s->types = json_object();
    status_t rc = summarize_versions(conn, batch, s, err);
    if (!rc)
        rc = summarize_queues(conn, batch, s, err);
    return rc;
}

static void summary_release(summary_t *s)
{
    json_decref(s->types);
    s->types = NULL;
}

static void hex(const unsigned char *sha, char out[2 * DIGEST_SHA256_BYTES + 1])
{
    digest_hex(sha, DIGEST_SHA256_BYTES, out);
}

static int64_t type_count(const summary_t *s, const char *type, int slot)
{
    return json_integer_value(json_array_get(json_object_get(s->types, type), (size_t)slot));
}

/* Prints the comparison table; returns the number of differences (each also named on
 * stderr). */
static size_t compare(const summary_t *a, const summary_t *b)
{
    size_t differences = 0;
    printf("%-28s %10s %10s %10s %10s\n", "", "versions", "", "current", "");
    printf("%-28s %10s %10s %10s %10s\n", "type", "source", "target", "source", "target");
    /* every type of either, in name order */
    json_t *names = json_array();
    const char *type;
    json_t *value;
    json_object_foreach(a->types, type, value) json_array_append_new(names, json_string(type));
    json_object_foreach(b->types, type, value) if (!json_object_get(a->types, type))
        json_array_append_new(names, json_string(type));
    size_t n = json_array_size(names);
    const char **sorted = xcalloc(n ? n : 1, sizeof(*sorted));
    for (size_t i = 0; i < n; i++)
        sorted[i] = json_string_value(json_array_get(names, i));
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0 && strcmp(sorted[k - 1], sorted[k]) > 0; k--) {
            const char *t = sorted[k];
            sorted[k] = sorted[k - 1];
            sorted[k - 1] = t;
        }
    for (size_t i = 0; i < n; i++) {
        const char *t = sorted[i];
        int64_t av = type_count(a, t, 0), bv = type_count(b, t, 0);
        int64_t ac = type_count(a, t, 2), bc = type_count(b, t, 2);
        /* the scan's current versions and the store's count agree on each side */
        bool same = av == bv && ac == bc && ac == type_count(a, t, 1) && bc == type_count(b, t, 1);
        printf("%-28s %10lld %10lld %10lld %10lld   %s\n", t, (long long)av, (long long)bv,
               (long long)ac, (long long)bc, same ? "ok" : "DIFFERENT");
        if (!same) {
            differences++;
            fprintf(stderr,
                    "concerto migrate-data: %s: %lld versions and %lld current resources in the "
                    "source, %lld and %lld in the target\n",
                    t, (long long)av, (long long)ac, (long long)bv, (long long)bc);
        }
    }
    free(sorted);
    json_decref(names);
    bool same = a->versions == b->versions && a->current == b->current;
    printf("%-28s %10lld %10lld %10lld %10lld   %s\n", "all types", (long long)a->versions,
           (long long)b->versions, (long long)a->current, (long long)b->current,
           same ? "ok" : "DIFFERENT");
    differences += !same;
    printf("%-28s %10lld %10lld %10s %10s   %s\n", "deleted (current is a delete)",
           (long long)a->deleted, (long long)b->deleted, "", "",
           a->deleted == b->deleted ? "ok" : "DIFFERENT");
    differences += a->deleted != b->deleted;
    const struct {
        const char *what;
        int64_t a, b;
    } rows[] = {{"outbox events", a->events, b->events},
                {"  of them dead", a->dead_events, b->dead_events},
                {"jobs", a->jobs, b->jobs},
                {"leases", a->leases, b->leases},
                {"accounts", a->auth_rows[0], b->auth_rows[0]},
                {"  their recovery codes", a->auth_rows[1], b->auth_rows[1]},
                {"OAuth clients", a->auth_rows[2], b->auth_rows[2]},
                {"  client assertion ids", a->auth_rows[3], b->auth_rows[3]},
                {"tokens", a->auth_rows[4], b->auth_rows[4]},
                {"audit records", a->auth_rows[5], b->auth_rows[5]},
                {"HL7 messages", a->hl7, b->hl7},
                {"server keys (sealed)", a->server_keys, b->server_keys}};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        printf("%-28s %10lld %10lld %10s %10s   %s\n", rows[i].what, (long long)rows[i].a,
               (long long)rows[i].b, "", "", rows[i].a == rows[i].b ? "ok" : "DIFFERENT");
        if (rows[i].a != rows[i].b) {
            differences++;
            fprintf(stderr, "concerto migrate-data: %s: %lld in the source, %lld in the target\n",
                    rows[i].what, (long long)rows[i].a, (long long)rows[i].b);
        }
    }
    const struct {
        const char *what;
        const unsigned char *a, *b;
    } sums[] = {{"versions", a->versions_sha, b->versions_sha},
                {"outbox", a->outbox_sha, b->outbox_sha},
                {"jobs", a->jobs_sha, b->jobs_sha},
                {"leases", a->leases_sha, b->leases_sha},
                {"accounts, tokens, audit", a->auth_sha, b->auth_sha},
                {"HL7 messages", a->hl7_sha, b->hl7_sha},
                {"server keys", a->server_keys_sha, b->server_keys_sha}};
    for (size_t i = 0; i < sizeof(sums) / sizeof(sums[0]); i++) {
        char ha[2 * DIGEST_SHA256_BYTES + 1], hb[2 * DIGEST_SHA256_BYTES + 1];
        hex(sums[i].a, ha);
        hex(sums[i].b, hb);
        bool equal = memcmp(sums[i].a, sums[i].b, DIGEST_SHA256_BYTES) == 0;
        printf("SHA-256 of %-9s source %s\n", sums[i].what, ha);
        printf("%-20s target %s   %s\n", "", hb, equal ? "ok" : "DIFFERENT");
        if (!equal) {
            differences++;
            fprintf(stderr,
                    "concerto migrate-data: the %s of the target differ from the source's "
                    "(SHA-256 %s, not %s)\n",
                    sums[i].what, hb, ha);
        }
    }
    /* the target hands out keys after every key the source handed out */
    bool keys_ok = b->keys.seq >= a->keys.seq && b->keys.rid >= a->keys.rid &&
                   b->keys.event_id >= a->keys.event_id && b->keys.job_id >= a->keys.job_id;
    printf("%-28s %10s %10s %10s %10s   %s\n", "last keys (version, resource,", "", "", "", "", "");
    printf("%-28s %10lld %10lld %10lld %10lld   source\n", "  outbox event, job)",
           (long long)a->keys.seq, (long long)a->keys.rid, (long long)a->keys.event_id,
           (long long)a->keys.job_id);
    printf("%-28s %10lld %10lld %10lld %10lld   target %s\n", "", (long long)b->keys.seq,
           (long long)b->keys.rid, (long long)b->keys.event_id, (long long)b->keys.job_id,
           keys_ok ? "ok" : "BEHIND");
    if (!keys_ok) {
        differences++;
        fprintf(stderr, "concerto migrate-data: the target's key counters are behind the "
                        "source's: new keys could repeat old ones\n");
    }
    return differences;
}

/* ---- the command ------------------------------------------------------------------------- */

/* A description of what a database holds (NULL when it holds nothing: a target may be used). */
static char *contents(store_conn_t *conn, err_t *err)
{
    arena_t arena;
    arena_init(&arena);
    store_history_query_t history = {
        .since_us = INT64_MIN, .before_seq = INT64_MAX, .count = 1, .want_total = true};
    store_history_t versions = {0};
    int64_t pending = 0, dead = 0;
    store_job_t *jobs;
    size_t njobs = 0, nleases = 0;
    store_lease_t *leases;
    store_job_query_t job_query = {.count = 1};
    char *found = NULL;
    if (store_history(conn, &history, &arena, &versions, err) ||
        store_outbox_counts(conn, &pending, &dead, err) ||
        store_job_list(conn, &job_query, &arena, &jobs, &njobs, err) ||
        store_lease_list(conn, &arena, &leases, &nleases, err))
        goto out;
    size_t auth[STORE_AUTH_TABLES] = {0};
    for (size_t t = 0; t < STORE_AUTH_TABLES; t++) {
        const char **cells;
        size_t ncols;
        if (store_auth_table_scan(conn, t, &arena, &cells, &auth[t], &ncols, err))
            goto out;
    }
    store_hl7_message_t *messages;
    size_t nmessages = 0;
    if (store_hl7_scan(conn, 0, 1, &arena, &messages, &nmessages, err))
        goto out;
    store_server_key_t *server_keys;
    size_t nserver_keys = 0;
    if (store_server_key_list(conn, &arena, &server_keys, &nserver_keys, err))
        goto out;
    /* (audit_head, the last table, has its one row in every database) */
    bool accounts = auth[0] || auth[1] || auth[2] || auth[3] || auth[4] || auth[5];
    if (!versions.total && !pending && !dead && !njobs && !nleases && !accounts && !nmessages &&
        !nserver_keys)
        goto out;
    buf_t text = BUF_INIT;
    if (versions.total)
        buf_addf(&text, "%lld resource versions (the newest: %s/%s)", (long long)versions.total,
                 versions.versions[0].type, versions.versions[0].id);
    if (pending || dead)
        buf_addf(&text, "%s%lld outbox events", text.len ? ", " : "", (long long)(pending + dead));
    if (njobs)
        buf_addf(&text, "%sscheduled jobs", text.len ? ", " : "");
    if (nleases)
        buf_addf(&text, "%s%zu leases", text.len ? ", " : "", nleases);
    if (accounts)
        buf_addf(&text, "%s%zu accounts, %zu OAuth clients, %zu tokens, %zu audit records",
                 text.len ? ", " : "", auth[0], auth[2], auth[4], auth[5]);
    if (nmessages)
        buf_addf(&text, "%sHL7 messages", text.len ? ", " : "");
    if (nserver_keys)
        buf_addf(&text, "%s%zu server keys", text.len ? ", " : "", nserver_keys);
    found = buf_detach(&text, NULL);
out:
    arena_release(&arena);
    return found;
}

typedef struct {
    const char *from, *to;
    size_t batch;
    store_t *source, *target;
    store_conn_t *source_conn, *target_conn;
    bool source_params; /* repo_params_open on the source */
} migrate_t;

static void close_all(migrate_t *m)
{
    if (m->source_conn) {
        store_snapshot_end(m->source_conn);
        store_disconnect(m->source_conn);
    }
    if (m->target_conn) {
        store_snapshot_end(m->target_conn);
        store_disconnect(m->target_conn);
    }
    if (m->source_params)
        repo_params_close();
    if (m->source)
        store_close(m->source);
    if (m->target)
        store_close(m->target);
    m->source_conn = m->target_conn = NULL;
    m->source = m->target = NULL;
    m->source_params = false;
}

/* Opens the source (its search parameters loaded) in a locked snapshot, and the target (its
 * schema made) after checking that it holds nothing. */
static status_t open_both(migrate_t *m, err_t *err)
{
    status_t rc = store_check_unused(m->from, err);
    if (rc)
        return rc;
    store_options_t options;
    store_options_init(&options);
    options.create = false;
    char *from = shown(m->from), *to = shown(m->to);
    if ((rc = store_open(m->from, &options, &m->source, err))) {
        err_t cause = ERR_INIT;
        err_move(&cause, err);
        err_set(err, rc, NULL, "could not open the source \"%s\": %s", from, err_message(&cause));
        if (cause.log_detail)
            err_log_detail(err, "%s", cause.log_detail);
        err_release(&cause);
        goto out;
    }
    if ((rc = repo_params_open(m->source, err)))
        goto out;
    m->source_params = true;
    if ((rc = store_connect(m->source, &m->source_conn, err)) ||
        (rc = store_snapshot_begin(m->source_conn, true, err)))
        goto out;

    store_options_init(&options);
    if ((rc = store_open(m->to, &options, &m->target, err))) {
        err_t cause = ERR_INIT;
        err_move(&cause, err);
        err_set(err, rc, NULL, "could not open the target \"%s\": %s", to, err_message(&cause));
        if (cause.log_detail)
            err_log_detail(err, "%s", cause.log_detail);
        err_release(&cause);
        goto out;
    }
    if ((rc = store_connect(m->target, &m->target_conn, err)))
        goto out;
    char *found = contents(m->target_conn, err);
    if (err->code) {
        rc = err->code;
    } else if (found) {
        rc = err_set(
            err, ERR_CONFLICT, NULL,
            "the target \"%s\" is not empty: it holds %s; migrate-data copies only into "
            "a database without resources (use a new database, or one made with concerto init "
            "--no-protocols)",
            to, found);
        free(found);
    }
out:
    free(from);
    free(to);
    return rc;
}

static size_t parse_batch(const settings_t *s, err_t *err)
{
    char *end;
    const char *text = settings_get(s, "batch", "500");
    long batch = strtol(text, &end, 10);
    if (*end || end == text || batch < 1 || batch > 100000) {
        err_set(err, ERR_INVALID, NULL, "--batch must be a number from 1 to 100000, not \"%s\"",
                text);
        return 0;
    }
    return (size_t)batch;
}

static int migrate(migrate_t *m, err_t *err)
{
    struct timespec started;
    clock_gettime(CLOCK_MONOTONIC, &started);
    if (open_both(m, err)) {
        close_all(m);
        return 1;
    }

    char *from = shown(m->from), *to = shown(m->to);
    copy_t copy = {.source = m->source_conn, .batch = m->batch};
    int status = 1;
    store_history_query_t all = {
        .since_us = INT64_MIN, .before_seq = INT64_MAX, .count = 1, .want_total = true};
    store_history_t history;
    arena_t arena;
    arena_init(&arena);
    status_t rc = store_history(m->source_conn, &all, &arena, &history, err);
    arena_release(&arena);
    if (rc)
        goto out;
    copy.total = history.total;
    fprintf(stderr, "concerto migrate-data: copying %lld versions from %s to %s\n",
            (long long)copy.total, from, to);
    copy.params = repo_params_acquire();
    clock_gettime(CLOCK_MONOTONIC, &copy.started);
    rc = store_run(m->target, copy_txn, &copy, err);
    fhir_search_snapshot_release(copy.params);
    if (rc) {
        fprintf(stderr, "concerto migrate-data: the copy %s: the target holds nothing of it\n",
                interrupted ? "was interrupted" : "failed");
        goto out;
    }
    /* committed: from here on an interruption only stops the verification */
    catch_signals(false);
    double copy_seconds = seconds_since(&copy.started);
    fprintf(stderr,
            "concerto migrate-data: copied %lld versions of %lld resources, %lld outbox events, "
            "%lld jobs and %lld leases in %.1f s (%.0f versions/s); verifying\n",
            (long long)copy.versions, (long long)copy.resources, (long long)copy.events,
            (long long)copy.jobs, (long long)copy.leases, copy_seconds,
            copy_seconds > 0 ? (double)copy.versions / copy_seconds : 0.0);

    /* both read back: the source in its snapshot still, the target in one of its own */
    summary_t source = {0}, target = {0};
    if ((rc = store_snapshot_begin(m->target_conn, false, err)) ||
        (rc = summarize(m->source_conn, m->batch, &source, err)) ||
        (rc = summarize(m->target_conn, m->batch, &target, err))) {
        fprintf(stderr, "concerto migrate-data: the copy was committed but could not be "
                        "verified\n");
        summary_release(&source);
        summary_release(&target);
        goto out;
    }
    size_t differences = compare(&source, &target);
    summary_release(&source);
    summary_release(&target);
    double seconds = seconds_since(&started);
    if (differences) {
        err_set(err, ERR_STORAGE, NULL,
                "the target does not match the source (%zu differences above): do not use it; "
                "empty it (a new database) and run migrate-data again",
                differences);
        goto out;
    }
    printf("migrated %lld versions of %lld resources, %lld outbox events, %lld jobs and %lld "
           "leases from %s to %s in %.1f s (copy %.1f s, %.0f versions/s): the target matches "
           "the source\n",
           (long long)copy.versions, (long long)copy.resources, (long long)copy.events,
           (long long)copy.jobs, (long long)copy.leases, from, to, seconds, copy_seconds,
           copy_seconds > 0 ? (double)copy.versions / copy_seconds : 0.0);
    status = 0;
out:
    close_all(m);
    /* a process that opened the source while it was read will write what the target lacks */
    err_t check = ERR_INIT;
    if (status == 0 && store_check_unused(m->from, &check))
        fprintf(stderr,
                "concerto migrate-data: warning: %s; what it writes to the source from now on "
                "is not in the target\n",
                err_message(&check));
    err_release(&check);
    free(from);
    free(to);
    return status;
}

int cli_migrate_data(int argc, char **argv)
{
    static const char *const known[] = {"from", "to", "batch", NULL};
    settings_t s;
    int status = cli_settings("migrate-data", help, argc, argv, known, NULL, &s);
    if (status >= 0)
        goto out_settings;
    err_t err = ERR_INIT;
    status = 2;
    migrate_t m = {.from = settings_get(&s, "from", NULL), .to = settings_get(&s, "to", NULL)};
    if (s.nargs) {
        err_set(&err, ERR_INVALID, NULL, "unexpected argument \"%s\" (see --help)", s.args[0]);
        goto out;
    }
    if (!m.from || !*m.from || !m.to || !*m.to) {
        err_set(&err, ERR_INVALID, NULL,
                "name the database to copy (--from FILE.db) and the one to fill "
                "(--to postgresql://...)");
        goto out;
    }
    if (strcmp(m.from, m.to) == 0) {
        err_set(&err, ERR_INVALID, NULL, "--from and --to name the same database");
        goto out;
    }
    if (!(m.batch = parse_batch(&s, &err)))
        goto out;
    interrupted = 0;
    catch_signals(true);
    status = migrate(&m, &err);
    catch_signals(false);
out:
    if (err.nissues)
        cli_report("migrate-data", &err);
    err_release(&err);
out_settings:
    settings_release(&s);
    return status;
}
