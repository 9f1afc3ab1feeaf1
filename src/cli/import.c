/*
 * import.c - `concerto import`: loads NDJSON files and Bundles into a database at full speed.
 *
 * Two passes over the files. The first reads every resource to count them and to learn the
 * identifiers they carry, so that conditional references between files
 * ("Practitioner?identifier=system|value") resolve whatever the order of the files. The second
 * rewrites such references (and urn:uuid: fullUrls of Bundle entries) to Type/id, validates and
 * serializes each resource, and writes them in transactions of --batch resources, keeping one
 * batch committing while the next is prepared. Resources keep their ids (an update that creates
 * them), so references by id resolve too and importing the same files again makes new versions
 * rather than duplicates. Invalid resources are reported with their file and line and left
 * out; the rest goes in. At the end every reference of the imported resources is checked.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/jv.h"
#include "base/mem.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/import.h"
#include "repo/repo.h"

static const char help[] =
    "usage: concerto import [--db FILE] [--batch N] FILE...\n"
    "\n"
    "Loads FHIR resources from NDJSON files (one resource per line, as a bulk export writes\n"
    "them) and JSON files (a Bundle of any type, or a single resource). Resources keep their\n"
    "ids; conditional references between the files (Type?identifier=system|value) and\n"
    "urn:uuid: references inside a Bundle are resolved to Type/id. Every resource is validated;\n"
    "invalid ones are reported with file and line and left out. Progress goes to stderr, a\n"
    "summary to stdout. Exit status 1 when a resource was refused or a reference does not\n"
    "resolve. The custom search parameters stored in the database are used to index;\n"
    "imported SearchParameter resources (status active or draft) are too, and the types\n"
    "they apply to are reindexed before the import ends.\n"
    "\n"
    "  --db FILE       the SQLite database (default: concerto.db; env CONCERTO_DB), or a\n"
    "                  PostgreSQL URI postgresql://USER@HOST:PORT/DATABASE\n"
    "  --batch N       resources per transaction (default: 1000)\n"
    "  --synchronous MODE  full (default), normal or off\n"
    "  --rebuild-indexes WHEN  auto (default), yes or no: drop the search indexes during the\n"
    "                  import and build them at the end, which is several times faster for a\n"
    "                  large import; auto does it when the files hold at least 1000 resources\n"
    "                  and at least as many as the database already has\n"
    "  --config FILE   read settings from FILE\n";

/* Calls fn for every resource of a file; a Bundle's entries are its resources. */
typedef void (*resource_fn)(void *ctx, const char *path, size_t line, json_t *resource,
                            json_t *bundle_map);

typedef struct {
    size_t files_failed;
    size_t read_errors;
} scan_t;

static void report_item(const char *path, size_t line, const char *message)
{
    fprintf(stderr, "concerto import: %s:%zu: %s\n", path, line, message);
}

/* A Bundle: urn:uuid fullUrls -> Type/id, giving new ids to entries without one. */
static json_t *bundle_map(json_t *bundle)
{
    json_t *map = json_object();
    json_t *entries = json_object_get(bundle, "entry");
    for (size_t i = 0; i < json_array_size(entries); i++) {
        json_t *entry = json_array_get(entries, i);
        json_t *resource = json_object_get(entry, "resource");
        json_t *full_url = json_object_get(entry, "fullUrl");
        json_t *type = json_object_get(resource, "resourceType");
        if (!jv_is_string(type))
            continue;
        json_t *id = json_object_get(resource, "id");
        if (!jv_is_string(id)) {
            arena_t arena;
            arena_init(&arena);
            json_object_set_new(resource, "id", json_string(repo_new_id(&arena)));
            arena_release(&arena);
            id = json_object_get(resource, "id");
        }
        if (jv_is_string(full_url)) {
            char *to = xasprintf("%s/%s", json_string_value(type), json_string_value(id));
            json_object_set_new(map, json_string_value(full_url), json_string(to));
            free(to);
        }
    }
    return map;
}

/* Called with each line of an NDJSON file (without its line end) instead of parsing it. */
typedef void (*line_fn)(void *ctx, const char *path, size_t line, const char *text, size_t len);

/* fn for each resource of a file; for NDJSON files, on_line (when not NULL) for each line. */
static int for_each_resource(const char *path, resource_fn fn, line_fn on_line, void *ctx,
                             scan_t *scan)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "concerto import: could not open \"%s\": %s\n", path, strerror(errno));
        scan->files_failed++;
        return -1;
    }
    size_t len = strlen(path);
    bool ndjson = len > 7 && strcmp(path + len - 7, ".ndjson") == 0;
    err_t err = ERR_INIT;
    if (ndjson) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        size_t lineno = 0;
        while ((n = getline(&line, &cap, f)) >= 0) {
            lineno++;
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                n--;
            if (n == 0)
                continue;
            if (on_line) {
                on_line(ctx, path, lineno, line, (size_t)n);
                continue;
            }
            json_t *resource = jv_parse(line, (size_t)n, &err);
            if (!resource) {
                report_item(path, lineno, err_message(&err));
                scan->read_errors++;
                err_reset(&err);
                continue;
            }
            fn(ctx, path, lineno, resource, NULL);
            json_decref(resource);
        }
        free(line);
    } else {
        buf_t text = BUF_INIT;
        char chunk[65536];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
            buf_add(&text, chunk, n);
        json_t *root = jv_parse(text.ptr, text.len, &err);
        buf_release(&text);
        if (!root) {
            report_item(path, 1, err_message(&err));
            scan->read_errors++;
        } else {
            json_t *type = json_object_get(root, "resourceType");
            if (jv_is_string(type) && strcmp(json_string_value(type), "Bundle") == 0 &&
                json_object_get(root, "entry")) {
                json_t *map = bundle_map(root);
                json_t *entries = json_object_get(root, "entry");
                for (size_t i = 0; i < json_array_size(entries); i++) {
                    json_t *resource = json_object_get(json_array_get(entries, i), "resource");
                    if (json_is_object(resource))
                        fn(ctx, path, i + 1, resource, map);
                }
                json_decref(map);
            } else {
                fn(ctx, path, 1, root, NULL);
            }
            json_decref(root);
        }
    }
    err_release(&err);
    fclose(f);
    return 0;
}

/* ---- pass 1: count and learn identifiers --------------------------------------------- */

typedef struct {
    size_t total;
    json_t *identifiers; /* "Type|system|value" -> "Type/id" (json null when ambiguous) */
} pass1_t;

static void learn(void *opaque, const char *path, size_t line, json_t *resource, json_t *map)
{
    (void)path;
    (void)line;
    (void)map;
    pass1_t *p = opaque;
    p->total++;
    json_t *type = json_object_get(resource, "resourceType");
    json_t *id = json_object_get(resource, "id");
    if (!jv_is_string(type) || !jv_is_string(id))
        return;
    json_t *identifiers = json_object_get(resource, "identifier");
    for (size_t i = 0; i < json_array_size(identifiers); i++) {
        json_t *identifier = json_array_get(identifiers, i);
        json_t *system = json_object_get(identifier, "system");
        json_t *value = json_object_get(identifier, "value");
        if (!jv_is_string(value))
            continue;
        char *key = xasprintf("%s|%s|%s", json_string_value(type),
                              jv_is_string(system) ? json_string_value(system) : "",
                              json_string_value(value));
        char *target = xasprintf("%s/%s", json_string_value(type), json_string_value(id));
        json_t *known = json_object_get(p->identifiers, key);
        if (!known)
            json_object_set_new(p->identifiers, key, json_string(target));
        else if (jv_is_string(known) && strcmp(json_string_value(known), target) != 0)
            json_object_set_new(p->identifiers, key, json_null());
        free(key);
        free(target);
    }
}

/* A line without "identifier" teaches nothing: counted, not parsed (pass 2 reports the lines
 * that do not parse). */
static void learn_line(void *opaque, const char *path, size_t line, const char *text, size_t len)
{
    pass1_t *p = opaque;
    if (!memmem(text, len, "\"identifier\"", 12)) {
        p->total++;
        return;
    }
    err_t err = ERR_INIT;
    json_t *resource = jv_parse(text, len, &err);
    if (resource)
        learn(p, path, line, resource, NULL);
    else
        p->total++;
    json_decref(resource);
    err_release(&err);
}

/* ---- pass 2: rewrite, prepare, write -------------------------------------------------- */

/*
 * Pass 2 is a pipeline. This thread reads the files into batches of --batch items (NDJSON
 * lines as text, a Bundle's resources parsed); preparing threads each take a batch, parse,
 * rewrite, validate, serialize and extract it; batches then go to the store in the order they
 * were read, one committing while the next ones are prepared.
 */
typedef struct {
    const char *path;
    size_t line;      /* NDJSON line, or entry number + 1 in a Bundle */
    const char *text; /* an NDJSON line (in the batch's arena), or NULL */
    size_t len;
    json_t *resource; /* a Bundle's resource (a reference), or NULL */
    json_t *map;      /* that Bundle's fullUrl map (a reference) */
} item_t;

typedef struct batch {
    struct batch *next;
    size_t seq; /* order of reading */
    item_t *items;
    size_t nitems;
    repo_write_t *writes;
    size_t n;
    arena_t arena;
    /* what preparing it found, added to the totals in order */
    size_t refused, unreadable, unresolved_conditional;
    json_t *counts;     /* type -> number */
    json_t *references; /* "Type/id" -> true */
} batch_t;

static status_t batch_txn(store_txn_t *txn, void *arg, err_t *err)
{
    batch_t *b = arg;
    for (size_t i = 0; i < b->n; i++) {
        status_t rc = repo_write_txn(txn, &b->writes[i], err);
        if (rc)
            return rc;
    }
    return ERR_OK;
}

#define MAX_PREPARERS 4

typedef struct {
    store_t *store;
    json_t *identifiers;
    size_t batch_size;
    size_t total;
    batch_t *filling;    /* the batch being read */
    batch_t *committing; /* the batch handed to the store last (at most one in flight) */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* in_flight, queue and order changes */
    bool in_flight;
    /* batches read and not yet taken by a preparing thread */
    batch_t *queue, *queue_tail;
    size_t queued, read_seq, next_submit;
    bool reading_done;
    pthread_t preparers[MAX_PREPARERS];
    size_t npreparers;
    /* figures */
    size_t written, refused, unreadable, unresolved_conditional;
    json_t *counts;     /* type -> number */
    json_t *references; /* "Type/id" referenced -> true */
    struct timespec started;
    double last_report;
    const cli_import_hooks_t *hooks;
    status_t failure;
    err_t failure_err;
} pass2_t;

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static void progress(pass2_t *p, bool final)
{
    double t = seconds_since(&p->started);
    if (!final && t - p->last_report < 1.0)
        return;
    p->last_report = t;
    size_t done = p->written + p->refused + p->unreadable;
    if (p->hooks && p->hooks->progress) {
        p->hooks->progress(p->hooks->ctx, done, p->total);
        return;
    }
    fprintf(stderr, "\rconcerto import: %zu of %zu resources (%.0f%%), %.0f/s   ", done, p->total,
            p->total ? 100.0 * (double)done / (double)p->total : 100.0,
            t > 0 ? (double)done / t : 0);
    if (final)
        fputc('\n', stderr);
}

static void batch_done(void *arg, status_t rc, err_t *err)
{
    pass2_t *p = arg;
    pthread_mutex_lock(&p->lock);
    if (rc && !p->failure) {
        p->failure = rc;
        err_move(&p->failure_err, err);
    }
    p->in_flight = false;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static batch_t *batch_new(size_t size)
{
    batch_t *b = xcalloc(1, sizeof(*b));
    b->items = xcalloc(size, sizeof(item_t));
    b->writes = xcalloc(size, sizeof(repo_write_t));
    arena_init(&b->arena);
    b->counts = json_object();
    b->references = json_object();
    return b;
}

static void batch_free(batch_t *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->nitems; i++) {
        json_decref(b->items[i].resource);
        json_decref(b->items[i].map);
    }
    arena_release(&b->arena);
    json_decref(b->counts);
    json_decref(b->references);
    free(b->items);
    free(b->writes);
    free(b);
}

/* Rewrites conditional references and Bundle fullUrls; counts the ones that stay. */
static void rewrite(pass2_t *p, batch_t *b, json_t *value, json_t *map)
{
    if (json_is_object(value)) {
        const char *key;
        json_t *member;
        json_object_foreach(value, key, member)
        {
            if (strcmp(key, "reference") == 0 && jv_is_string(member)) {
                const char *ref = json_string_value(member);
                json_t *to = map ? json_object_get(map, ref) : NULL;
                const char *q = strchr(ref, '?');
                if (!to && q && strncmp(q + 1, "identifier=", 11) == 0) {
                    const char *token = q + 12;
                    const char *bar = strchr(token, '|');
                    char *k = bar ? xasprintf("%.*s|%s", (int)(q - ref), ref, token)
                                  : xasprintf("%.*s||%s", (int)(q - ref), ref, token);
                    to = json_object_get(p->identifiers, k);
                    free(k);
                    if (!jv_is_string(to))
                        to = NULL;
                    if (!to)
                        b->unresolved_conditional++;
                }
                if (to)
                    json_string_set(member, json_string_value(to));
                ref = json_string_value(member);
                if (strncmp(ref, "#", 1) != 0 && !strchr(ref, '?') && !strstr(ref, "://") &&
                    strncmp(ref, "urn:", 4) != 0)
                    json_object_set_new(b->references, ref, json_true());
            } else {
                rewrite(p, b, member, map);
            }
        }
    } else if (json_is_array(value)) {
        for (size_t i = 0; i < json_array_size(value); i++)
            rewrite(p, b, json_array_get(value, i), map);
    }
}

/* Parses (an NDJSON line), rewrites and prepares every item of b: on a preparing thread. */
static void prepare_batch(pass2_t *p, batch_t *b)
{
    for (size_t i = 0; i < b->nitems; i++) {
        item_t *it = &b->items[i];
        err_t err = ERR_INIT;
        json_t *resource = it->resource ? json_incref(it->resource) : NULL;
        if (!resource) {
            resource = jv_parse(it->text, it->len, &err);
            if (!resource) {
                report_item(it->path, it->line, err_message(&err));
                b->unreadable++;
                err_release(&err);
                continue;
            }
        }
        rewrite(p, b, resource, it->map);
        json_t *id = json_object_get(resource, "id");
        repo_write_t *w = &b->writes[b->n];
        status_t rc = repo_prepare_resource(
            w, jv_is_string(id) ? REPO_UPDATE : REPO_CREATE, resource,
            jv_is_string(id) ? json_string_value(id) : NULL, 0, &b->arena, &err);
        if (rc) {
            for (size_t k = 0; k < err.nissues; k++) {
                char *message =
                    err.issues[k].expression
                        ? xasprintf("%s (at %s)", err.issues[k].message, err.issues[k].expression)
                        : xstrdup(err.issues[k].message);
                report_item(it->path, it->line, message);
                free(message);
            }
            b->refused++;
        } else {
            w->author = "import"; /* the version-author of what the command loads */
            b->n++;
            json_t *count = json_object_get(b->counts, w->type);
            json_object_set_new(b->counts, w->type,
                                json_integer(count ? json_integer_value(count) + 1 : 1));
        }
        json_decref(resource);
        err_release(&err);
    }
}

/* Hands a prepared batch to the store once the one before it is durable (called with the
 * batches in reading order, with p->lock held). */
static void submit(pass2_t *p, batch_t *b)
{
    while (p->in_flight)
        pthread_cond_wait(&p->cond, &p->lock);
    batch_free(p->committing); /* durable: its memory can go */
    p->committing = b;
    p->refused += b->refused;
    p->unreadable += b->unreadable;
    p->unresolved_conditional += b->unresolved_conditional;
    const char *key;
    json_t *value;
    json_object_foreach(b->counts, key, value)
    {
        json_t *count = json_object_get(p->counts, key);
        json_object_set_new(
            p->counts, key,
            json_integer((count ? json_integer_value(count) : 0) + json_integer_value(value)));
    }
    json_object_update(p->references, b->references);
    progress(p, false);
    if (p->failure || b->n == 0)
        return;
    p->written += b->n;
    p->in_flight = true;
    pthread_mutex_unlock(&p->lock);
    store_submit(p->store, batch_txn, b, batch_done, p);
    pthread_mutex_lock(&p->lock);
}

static void *preparer_main(void *arg)
{
    pass2_t *p = arg;
    pthread_mutex_lock(&p->lock);
    while (1) {
        while (!p->queue && !p->reading_done)
            pthread_cond_wait(&p->cond, &p->lock);
        batch_t *b = p->queue;
        if (!b)
            break;
        p->queue = b->next;
        if (!p->queue)
            p->queue_tail = NULL;
        p->queued--;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        prepare_batch(p, b);
        pthread_mutex_lock(&p->lock);
        while (p->next_submit != b->seq)
            pthread_cond_wait(&p->cond, &p->lock);
        submit(p, b);
        p->next_submit++;
        pthread_cond_broadcast(&p->cond);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Queues the batch being read for preparing (waiting while enough are queued). */
static void flush(pass2_t *p)
{
    batch_t *b = p->filling;
    if (!b || b->nitems == 0)
        return;
    p->filling = NULL;
    pthread_mutex_lock(&p->lock);
    while (p->queued >= 2 * p->npreparers)
        pthread_cond_wait(&p->cond, &p->lock);
    b->seq = p->read_seq++;
    if (p->queue_tail)
        p->queue_tail->next = b;
    else
        p->queue = b;
    p->queue_tail = b;
    p->queued++;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static item_t *next_item(pass2_t *p)
{
    if (!p->filling)
        p->filling = batch_new(p->batch_size);
    return &p->filling->items[p->filling->nitems++];
}

static void item_added(pass2_t *p)
{
    if (p->filling->nitems == p->batch_size)
        flush(p);
}

static void read_line(void *opaque, const char *path, size_t line, const char *text, size_t len)
{
    pass2_t *p = opaque;
    item_t *it = next_item(p);
    *it = (item_t){.path = path,
                   .line = line,
                   .text = arena_strndup(&p->filling->arena, text, len),
                   .len = len};
    item_added(p);
}

static void read_resource(void *opaque, const char *path, size_t line, json_t *resource,
                          json_t *map)
{
    pass2_t *p = opaque;
    item_t *it = next_item(p);
    *it = (item_t){.path = path,
                   .line = line,
                   .resource = json_incref(resource),
                   .map = map ? json_incref(map) : NULL};
    item_added(p);
}

static bool failed(pass2_t *p)
{
    pthread_mutex_lock(&p->lock);
    bool f = p->failure != ERR_OK;
    pthread_mutex_unlock(&p->lock);
    return f;
}

static status_t analyze_txn(store_txn_t *txn, void *arg, err_t *err)
{
    (void)arg;
    return store_txn_analyze(txn, err);
}

static status_t defer_indexes_txn(store_txn_t *txn, void *arg, err_t *err)
{
    (void)arg;
    return store_txn_defer_indexes(txn, err);
}

/* Whether to build the search indexes after the import rather than row by row. */
static status_t want_rebuild(store_t *store, const char *when, size_t total, bool *out, err_t *err)
{
    *out = false;
    if (strcmp(when, "no") == 0)
        return ERR_OK;
    if (strcmp(when, "yes") == 0) {
        *out = true;
        return ERR_OK;
    }
    if (total < 1000)
        return ERR_OK;
    store_conn_t *conn;
    if (store_connect(store, &conn, err))
        return err->code;
    int64_t stored = 0;
    status_t rc = store_count(conn, NULL, &stored, err);
    store_disconnect(conn);
    *out = !rc && (int64_t)total >= stored;
    return rc;
}

static size_t check_references(store_t *store, json_t *references, err_t *err)
{
    store_conn_t *conn;
    if (store_connect(store, &conn, err))
        return SIZE_MAX;
    size_t missing = 0, shown = 0;
    const char *ref;
    json_t *ignored;
    arena_t arena;
    arena_init(&arena);
    json_object_foreach(references, ref, ignored)
    {
        const char *slash = strchr(ref, '/');
        if (!slash)
            continue;
        char *type = arena_strndup(&arena, ref, (size_t)(slash - ref));
        const char *id = slash + 1;
        if (strchr(id, '/')) /* Type/id/_history/n */
            id = arena_strndup(&arena, id, (size_t)(strchr(id, '/') - id));
        store_version_t v;
        err_t e = ERR_INIT;
        if (store_read(conn, type, id, 0, &arena, &v, &e) || v.deleted) {
            missing++;
            if (shown++ < 10)
                fprintf(stderr, "concerto import: reference \"%s\" does not resolve\n", ref);
        }
        err_release(&e);
    }
    arena_release(&arena);
    store_disconnect(conn);
    return missing;
}

int cli__import_files(const settings_t *settings, char *const *files, int nfiles,
                      cli_import_hooks_t *hooks)
{
    int status = 2;
    err_t err = ERR_INIT;
    store_t *store = NULL;
    store_options_t options;
    bool quiet = hooks && hooks->quiet;
    char *end;
    long batch = strtol(settings_get(settings, "batch", "1000"), &end, 10);
    if (*end || batch < 1 || batch > 100000) {
        err_set(&err, ERR_INVALID, NULL, "--batch must be a number from 1 to 100000");
        goto out;
    }
    const char *rebuild_when = settings_get(settings, "rebuild-indexes", "auto");
    if (strcmp(rebuild_when, "auto") != 0 && strcmp(rebuild_when, "yes") != 0 &&
        strcmp(rebuild_when, "no") != 0) {
        err_set(&err, ERR_INVALID, NULL, "--rebuild-indexes must be auto, yes or no");
        goto out;
    }
    if (cli_store_options(settings, &options, &err))
        goto out;
    status = 1;
    if (cli_open_store(settings, &options, &store, &err))
        goto out;

    struct timespec started;
    clock_gettime(CLOCK_MONOTONIC, &started);
    scan_t scan = {0};
    pass1_t p1 = {.identifiers = json_object()};
    for (int i = 0; i < nfiles; i++)
        for_each_resource(files[i], learn, learn_line, &p1, &scan);

    bool rebuild = false;
    if (want_rebuild(store, rebuild_when, p1.total, &rebuild, &err) ||
        (rebuild && store_run(store, defer_indexes_txn, NULL, &err))) {
        json_decref(p1.identifiers);
        goto out;
    }

    pass2_t p2 = {.store = store,
                  .identifiers = p1.identifiers,
                  .batch_size = (size_t)batch,
                  .total = p1.total,
                  .counts = json_object(),
                  .references = json_object(),
                  .hooks = hooks};
    pthread_mutex_init(&p2.lock, NULL);
    pthread_cond_init(&p2.cond, NULL);
    err_init(&p2.failure_err);
    clock_gettime(CLOCK_MONOTONIC, &p2.started);
    /* one preparing thread per core: the writer's share of a core is small next to them */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    p2.npreparers = cores < 1 ? 1 : cores > MAX_PREPARERS ? MAX_PREPARERS : (size_t)cores;
    for (size_t i = 0; i < p2.npreparers; i++)
        if (pthread_create(&p2.preparers[i], NULL, preparer_main, &p2) != 0)
            die("could not start a thread");
    scan_t scan2 = {0};
    for (int i = 0; i < nfiles && !failed(&p2); i++)
        for_each_resource(files[i], read_resource, read_line, &p2, &scan2);
    flush(&p2);
    pthread_mutex_lock(&p2.lock);
    p2.reading_done = true;
    pthread_cond_broadcast(&p2.cond);
    pthread_mutex_unlock(&p2.lock);
    for (size_t i = 0; i < p2.npreparers; i++)
        pthread_join(p2.preparers[i], NULL);
    pthread_mutex_lock(&p2.lock);
    while (p2.in_flight)
        pthread_cond_wait(&p2.cond, &p2.lock);
    pthread_mutex_unlock(&p2.lock);
    batch_free(p2.committing);
    batch_free(p2.filling);
    progress(&p2, true);
    if (!rebuild && !p2.failure && p2.written >= 1000) {
        /* statistics for the planner (the rebuild below refreshes them too) */
        err_t e = ERR_INIT;
        if (store_run(store, analyze_txn, NULL, &e)) {
            p2.failure = e.code;
            err_move(&p2.failure_err, &e);
        }
        err_release(&e);
    }
    if (rebuild) {
        struct timespec index_started;
        clock_gettime(CLOCK_MONOTONIC, &index_started);
        if (!quiet)
            fprintf(stderr, "concerto import: building the search indexes\n");
        /* opening the store builds them (a search parameter's reindex finishes first) */
        cli_close_store(store, true);
        store = NULL;
        err_t e = ERR_INIT;
        if (cli_open_store(settings, &options, &store, &e) && !p2.failure) {
            p2.failure = e.code;
            err_move(&p2.failure_err, &e);
        }
        err_release(&e);
        if (!quiet)
            fprintf(stderr, "concerto import: search indexes built in %.1f s\n",
                    seconds_since(&index_started));
    }
    double seconds = seconds_since(&started);

    if (p2.failure) {
        err_move(&err, &p2.failure_err);
        p2.written = 0;
    }
    size_t missing = p2.failure ? 0 : check_references(store, p2.references, &err);
    if (hooks) {
        hooks->written = p2.written;
        hooks->seconds = seconds;
    }
    if (!quiet) {
        printf("imported %zu resources in %.1f s (%.0f/s)", p2.written, seconds,
               seconds > 0 ? (double)p2.written / seconds : 0.0);
        printf("; refused %zu; unreadable %zu; references checked %zu, unresolved %zu "
               "(conditional %zu)\n",
               p2.refused, scan.read_errors + p2.unreadable, json_object_size(p2.references),
               missing == SIZE_MAX ? 0 : missing, p2.unresolved_conditional);
        const char *type;
        json_t *count;
        json_object_foreach(p2.counts, type, count)
            printf("  %-28s %lld\n", type, (long long)json_integer_value(count));
    }
    if (!p2.failure && !p2.refused && !scan.read_errors && !p2.unreadable && !scan.files_failed &&
        missing == 0 && !p2.unresolved_conditional)
        status = 0;
    json_decref(p1.identifiers);
    json_decref(p2.counts);
    json_decref(p2.references);
    pthread_mutex_destroy(&p2.lock);
    pthread_cond_destroy(&p2.cond);
    err_release(&p2.failure_err);
out:
    if (err.nissues)
        cli_report("import", &err);
    err_release(&err);
    if (store)
        cli_close_store(store, true);
    return status;
}

int cli_import(int argc, char **argv)
{
    static const char *const known[] = {"db", "batch", "synchronous", "rebuild-indexes", NULL};
    settings_t s;
    int status = cli_settings("import", help, argc, argv, known, NULL, &s);
    if (status >= 0)
        goto out;
    if (s.nargs == 0) {
        fprintf(stderr, "concerto import: name at least one file to import (see --help)\n");
        status = 2;
        goto out;
    }
    status = cli__import_files(&s, s.args, s.nargs, NULL);
out:
    settings_release(&s);
    return status;
}
