/*
 * outbox.c - what the outbox costs a write, and how fast workers drain it.
 *
 * Writes BENCH_WRITES versions (default 50,000; 500 per transaction) of a 1.2 KB resource with
 * 40 token index rows, on a throw-away database with synchronous=off, through the real driver
 * and through the same driver with the outbox insert left out, alternating, BENCH_ROUNDS times
 * (default 5); then claims and acknowledges every event (100 per claim, the acknowledgements
 * of a claim in one transaction). Figures are per second of CPU time of the process (all
 * threads), so they measure work, not fsync or the neighbours on a shared machine.
 *
 *   make bench-outbox && build/bench/outbox
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store_int.h"

#define PER_TXN 500
#define ROWS    40

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static status_t no_outbox(void *conn, const store_event_t *event, err_t *err)
{
    (void)conn, (void)event, (void)err;
    return ERR_OK;
}

static char json[1240];
static fhir_index_row_t rows[ROWS];
static char codes[ROWS][16];

typedef struct {
    int next;
} writes_t;

static status_t write_txn(store_txn_t *txn, void *arg, err_t *err)
{
    writes_t *w = arg;
    fhir_index_rows_t index = {.rows = rows, .n = ROWS, .cap = ROWS};
    for (int i = 0; i < PER_TXN; i++, w->next++) {
        char id[32];
        snprintf(id, sizeof(id), "p%d", w->next);
        store_put_t put = {.type = "Patient",
                           .id = id,
                           .version = 1,
                           .method = "POST",
                           .status = 201,
                           .json = json,
                           .json_len = strlen(json),
                           .index = &index};
        status_t rc = store_txn_put(txn, &put, NULL, err);
        if (rc)
            return rc;
    }
    return ERR_OK;
}

typedef struct {
    arena_t arena;
    store_event_t *events;
    size_t n;
} drain_t;

static status_t claim_txn(store_txn_t *txn, void *arg, err_t *err)
{
    drain_t *d = arg;
    store_claim_t claim = {
        .consumer = "bench", .max = 100, .now_us = 1, .lease_us = 60000000, .max_attempts = 5};
    return store_txn_outbox_claim(txn, &claim, &d->arena, &d->events, &d->n, err);
}

static status_t ack_txn(store_txn_t *txn, void *arg, err_t *err)
{
    drain_t *d = arg;
    for (size_t i = 0; i < d->n; i++) {
        status_t rc = store_txn_outbox_ack(txn, d->events[i].event_id, "bench", err);
        if (rc)
            return rc;
    }
    return ERR_OK;
}

static void check(status_t rc, err_t *err)
{
    if (rc) {
        fprintf(stderr, "outbox bench: %s\n", err_message(err));
        exit(1);
    }
}

/* Writes `writes` versions into a fresh database; returns CPU seconds. Drains the outbox
 * afterwards when drain_seconds is not NULL. */
static double run(const store_driver_t *driver, const char *path, int writes, double *drain)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -f '%s' '%s-wal' '%s-shm'", path, path, path);
    if (system(cmd) != 0)
        exit(1);
    store_options_t options;
    store_options_init(&options);
    options.synchronous = STORE_SYNC_OFF;
    store_t *store;
    err_t err = ERR_INIT;
    check(store__open_driver(driver, path, &options, &store, &err), &err);
    writes_t w = {0};
    double start = cpu_seconds();
    for (int i = 0; i < writes / PER_TXN; i++)
        check(store_run(store, write_txn, &w, &err), &err);
    double seconds = cpu_seconds() - start;
    if (drain) {
        start = cpu_seconds();
        size_t total = 0;
        while (1) {
            drain_t d;
            arena_init(&d.arena);
            check(store_run(store, claim_txn, &d, &err), &err);
            if (d.n)
                check(store_run(store, ack_txn, &d, &err), &err);
            total += d.n;
            arena_release(&d.arena);
            if (!d.n)
                break;
        }
        *drain = cpu_seconds() - start;
        if (total != (size_t)writes) {
            fprintf(stderr, "outbox bench: drained %zu events of %d\n", total, writes);
            exit(1);
        }
    }
    store_close(store);
    err_release(&err);
    return seconds;
}

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void)
{
    const char *env = getenv("BENCH_WRITES");
    int writes = env ? atoi(env) : 50000;
    writes -= writes % PER_TXN;
    env = getenv("BENCH_ROUNDS");
    int rounds = env ? atoi(env) : 5;
    if (writes <= 0 || rounds <= 0 || rounds > 50)
        return 2;
    memset(json, 'x', sizeof(json) - 1);
    memcpy(json, "{\"a\":\"", 6);
    memcpy(json + sizeof(json) - 3, "\"}", 2);
    json[sizeof(json) - 1] = '\0';
    for (int i = 0; i < ROWS; i++) {
        snprintf(codes[i], sizeof(codes[i]), "code-%d", i);
        rows[i] = (fhir_index_row_t){
            .param = "identifier",
            .value = {.kind = FHIR_INDEX_TOKEN,
                      .as.token = {.system = "http://example.org", .code = codes[i]}}};
    }
    char dir[] = "/tmp/concerto-bench-outbox-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char path[128];
    snprintf(path, sizeof(path), "%s/bench.db", dir);
    store_driver_t without = store__sqlite_driver;
    without.outbox_add = no_outbox;

    double with_s[50], without_s[50], drain_s[50];
    for (int r = 0; r < rounds; r++) {
        without_s[r] = run(&without, path, writes, NULL);
        with_s[r] = run(&store__sqlite_driver, path, writes, &drain_s[r]);
    }
    qsort(with_s, (size_t)rounds, sizeof(double), compare);
    qsort(without_s, (size_t)rounds, sizeof(double), compare);
    qsort(drain_s, (size_t)rounds, sizeof(double), compare);
    double w = with_s[rounds / 2], wo = without_s[rounds / 2], d = drain_s[rounds / 2];
    printf("%d writes of 1.2 KB with %d index rows, %d per transaction, synchronous=off; "
           "medians of %d rounds, CPU time\n",
           writes, ROWS, PER_TXN, rounds);
    printf("  writes without the outbox  %8.0f /s of CPU  %6.2f us each\n", writes / wo,
           wo * 1e6 / writes);
    printf("  writes with the outbox     %8.0f /s of CPU  %6.2f us each  (+%.2f us, %+.1f%%)\n",
           writes / w, w * 1e6 / writes, (w - wo) * 1e6 / writes, (w / wo - 1) * 100);
    printf("  claim + acknowledge        %8.0f events/s of CPU (100 per claim)\n", writes / d);
    snprintf(path, sizeof(path), "rm -rf '%s'", dir);
    return system(path) == 0 ? 0 : 1;
}
