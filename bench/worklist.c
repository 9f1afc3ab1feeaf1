/*
 * worklist.c - how long a coordinator's worklist takes (care/worklist.h, GET Task/$worklist
 * without the HTTP around it): a throw-away database of BENCH_PATIENTS patients (default
 * 2000) in care teams of four coordinators, each patient with ten open Tasks (eight owned by
 * the coordinator, one on hold, one waiting unowned in the coordinators' role pool), two
 * completed ones and a RiskAssessment; so the measured coordinator has a quarter of it: 500
 * patients and 5,000 open Tasks of 20,000. Wall-clock latency of worklist_run as that
 * coordinator (staff, user/ scopes: the access policy applies), p50 and p99 over the runs,
 * against the 10 ms target.
 *
 *   make bench-worklist && build/bench/worklist
 *
 * BENCH_RUNS (default 200) is the number of measured runs; BENCH_STORE=postgresql://... runs
 * it on that (empty) PostgreSQL database instead of a SQLite file; BENCH_KEEP=1 keeps the
 * SQLite file (its path is printed) for EXPLAIN QUERY PLAN.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/jv.h"
#include "care/worklist.h"
#include "repo/access.h"
#include "repo/repo.h"
#include "repo/scope.h"

#include "bench.h"

#define COORDINATORS     4
#define OPEN_PER_PATIENT 10
#define DONE_PER_PATIENT 2
#define TARGET_MS        10.0

typedef struct {
    repo_write_t *writes;
    size_t n;
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

static void instant(int64_t us, char out[32])
{
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

#define ROLE "{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":\"768820003\"}]}"

/* The resources of patient p (and, for p < COORDINATORS, coordinator p's own): the Patient,
 * its care team, its risk, its Tasks. Appends JSON texts, one per line. */
static void patient_resources(buf_t *b, int p, int64_t now_us)
{
    int c = p % COORDINATORS;
    if (p < COORDINATORS)
        buf_addf(b,
                 "{\"resourceType\":\"Practitioner\",\"id\":\"c%d\"}\n"
                 "{\"resourceType\":\"PractitionerRole\",\"id\":\"cr%d\",\"practitioner\":{"
                 "\"reference\":\"Practitioner/c%d\"},\"code\":[" ROLE "]}\n",
                 p, p, p);
    buf_addf(b, "{\"resourceType\":\"Patient\",\"id\":\"p%d\",\"name\":[{\"family\":\"F%d\"}]}\n",
             p, p);
    buf_addf(b,
             "{\"resourceType\":\"CareTeam\",\"id\":\"ct%d\",\"status\":\"active\",\"subject\":{"
             "\"reference\":\"Patient/p%d\"},\"participant\":[{\"role\":[" ROLE
             "],\"member\":{\"reference\":\"Practitioner/c%d\"}}]}\n",
             p, p, c);
    buf_addf(b,
             "{\"resourceType\":\"RiskAssessment\",\"id\":\"r%d\",\"status\":\"final\","
             "\"subject\":{\"reference\":\"Patient/p%d\"},\"occurrenceDateTime\":"
             "\"2026-01-%02d\",\"prediction\":[{\"probabilityDecimal\":0.%02d}]}\n",
             p, p, 1 + p % 28, p % 100);
    static const char *const priorities[] = {"routine", "routine", "urgent", "asap", "stat"};
    for (int k = 0; k < OPEN_PER_PATIENT + DONE_PER_PATIENT; k++) {
        int n = p * (OPEN_PER_PATIENT + DONE_PER_PATIENT) + k;
        const char *status = k >= OPEN_PER_PATIENT ? "completed"
                             : k == 8              ? "on-hold"
                             : k == 9              ? "requested"
                                                   : "ready";
        /* due from three days ago to ten days ahead, every seventh without one */
        char due[32];
        instant(now_us + (int64_t)((n * 7919) % (13 * 24) - 72) * 3600 * 1000000, due);
        buf_addf(b,
                 "{\"resourceType\":\"Task\",\"id\":\"t%d\",\"status\":\"%s\",\"intent\":"
                 "\"order\",\"priority\":\"%s\",\"code\":{\"coding\":[{\"system\":\"urn:bench\","
                 "\"code\":\"k%d\"}]},\"description\":\"Follow-up call %d\",\"for\":{"
                 "\"reference\":\"Patient/p%d\"},\"authoredOn\":\"2026-01-01T10:00:00Z\"",
                 n, status, priorities[n % 5], k, n, p);
        if (k == 9)
            buf_addstr(b, ",\"performerType\":[" ROLE "]");
        else
            buf_addf(b, ",\"owner\":{\"reference\":\"Practitioner/c%d\"}", c);
        if (n % 7)
            buf_addf(b, ",\"restriction\":{\"period\":{\"end\":\"%s\"}}", due);
        buf_addstr(b, "}\n");
    }
}

static void load(store_t *store, int npatients, int64_t now_us)
{
    enum { PATIENTS_PER_BATCH = 40 };
    for (int from = 0; from < npatients; from += PATIENTS_PER_BATCH) {
        arena_t arena;
        arena_init(&arena);
        buf_t text = BUF_INIT;
        for (int p = from; p < from + PATIENTS_PER_BATCH && p < npatients; p++)
            patient_resources(&text, p, now_us);
        size_t lines = 0;
        for (size_t i = 0; i < text.len; i++)
            lines += text.ptr[i] == '\n';
        batch_t b = {.writes = arena_zalloc(&arena, lines * sizeof(repo_write_t))};
        err_t err = ERR_INIT;
        for (char *line = text.ptr, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
            json_t *json = jv_parse(line, (size_t)(nl - line), &err);
            if (!json)
                bench_die("parse", &err);
            const char *id = json_string_value(json_object_get(json, "id"));
            if (repo_prepare_resource(&b.writes[b.n++], REPO_UPDATE, json, id, 0, &arena, &err))
                bench_die("prepare", &err);
            json_decref(json);
        }
        if (store_run(store, batch_txn, &b, &err))
            bench_die("load", &err);
        err_release(&err);
        buf_release(&text);
        arena_release(&arena);
    }
}

static status_t analyze_txn(store_txn_t *txn, void *arg, err_t *err)
{
    (void)arg;
    return store_txn_analyze(txn, err);
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(void)
{
    const char *env = getenv("BENCH_PATIENTS");
    int npatients = env ? atoi(env) : 2000;
    if (npatients < COORDINATORS)
        npatients = COORDINATORS;
    env = getenv("BENCH_RUNS");
    int runs = env && atoi(env) > 0 ? atoi(env) : 200;
    const char *name;
    store_t *store = bench_open_store(STORE_SYNC_OFF, &name, NULL);
    err_t err = ERR_INIT;
    int64_t now_us = clock_now_us();
    int64_t load_start = clock_mono_us();
    load(store, npatients, now_us);
    if (store_run(store, analyze_txn, NULL, &err))
        bench_die("analyze", &err);
    printf("%s: %d patients, %d open Tasks (%d of them on hold, %d unowned), %d completed; "
           "loaded in %.1f s\n",
           name, npatients, npatients * OPEN_PER_PATIENT, npatients, npatients,
           npatients * DONE_PER_PATIENT, (double)(clock_mono_us() - load_start) / 1e6);

    arena_t arena;
    arena_init(&arena);
    scope_set_t user_all;
    scope_parse(&arena, "user/*.cruds", 12, &user_all);
    repo_caller_t coordinator = {.kind = REPO_CALLER_STAFF,
                                 .account_id = "acct-c0",
                                 .username = "c0",
                                 .role = "coordinator",
                                 .practitioner_id = "c0",
                                 .practitioner_role_id = "cr0",
                                 .scopes = &user_all};
    store_conn_t *conn;
    if (store_connect(store, &conn, &err))
        bench_die("connect", &err);
    double *ms = arena_alloc(&arena, (size_t)runs * sizeof(double));
    worklist_t last = {0};
    for (int i = -5; i < runs; i++) { /* five to warm up */
        arena_t a;
        arena_init(&a);
        worklist_query_t q = {.now_us = now_us, .caller = &coordinator};
        worklist_t w;
        int64_t start = clock_mono_us();
        if (worklist_run(conn, &q, &a, &w, &err))
            bench_die("worklist", &err);
        int64_t took = clock_mono_us() - start;
        if (i >= 0)
            ms[i] = (double)took / 1000.0;
        last = w; /* its counts only: the items go with the arena */
        arena_release(&a);
    }
    qsort(ms, (size_t)runs, sizeof(double), compare_double);
    double p50 = ms[runs / 2], p99 = ms[(runs * 99) / 100 < runs ? (runs * 99) / 100 : runs - 1];
    printf("the worklist of a coordinator with %d patients: %zu open Tasks (", npatients / 4,
           last.n);
    for (int b = 0; b < WORKLIST__COUNT; b++)
        printf("%s%s %zu", b ? ", " : "", worklist_bucket_code((worklist_bucket_t)b),
               last.total[b]);
    printf(")\n%d runs: p50 %.2f ms (%.2fx the %.0f ms target), p99 %.2f ms (%.2fx)\n", runs, p50,
           p50 / TARGET_MS, TARGET_MS, p99, p99 / TARGET_MS);
    store_disconnect(conn);
    arena_release(&arena);
    err_release(&err);
    return bench_close_store(store);
}
