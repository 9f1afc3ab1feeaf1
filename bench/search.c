/*
 * search.c - what search costs: writes with their index rows against the same writes
 * without, and searches of each kind against reading one resource by id, on a throw-away
 * database of BENCH_PATIENTS patients (default 5000) with three observations each.
 * Everything goes through repo (prepare on this thread, commit through the writer in
 * batches, as the server does with concurrent requests); synchronous=off and rates per second
 * of CPU time (the process's, all threads), so the figures are work, not fsync or waiting.
 *
 *   make bench-search && build/bench/search
 *
 * BENCH_STORE=postgresql://... runs it on that (empty) PostgreSQL database instead of a
 * SQLite file. The database server's work is then in another process, so the rates are per
 * second of wall time (BENCH_CLOCK=wall does the same on SQLite, for a side-by-side
 * comparison: bench/drivers); run it on a quiet machine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/jv.h"
#include "base/mem.h"
#include "fhir/search.h"
#include "repo/repo.h"

/* CPU time of the process (every thread): on a shared machine wall time measures the
 * neighbours too. */
static clockid_t bench_clock = CLOCK_PROCESS_CPUTIME_ID;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(bench_clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const families[] = {"Smith",  "Johnson", "Müller",   "García", "Nguyen",
                                       "Okafor", "Rossi",   "Kowalski", "Dubois", "Tanaka"};
static const char *const givens[] = {"Anna", "Ben", "Chloé", "David", "Eva", "Farid", "Grete"};

static void patient_json(buf_t *b, int i)
{
    buf_addf(b,
             "{\"resourceType\":\"Patient\",\"id\":\"p%d\",\"active\":%s,"
             "\"identifier\":[{\"system\":\"urn:mrn\",\"value\":\"%d\"}],"
             "\"name\":[{\"family\":\"%s%d\",\"given\":[\"%s\"]}],\"gender\":\"%s\","
             "\"birthDate\":\"%d-%02d-%02d\",\"address\":[{\"city\":\"City%d\"}],"
             "\"telecom\":[{\"system\":\"phone\",\"value\":\"555-%04d\"}]}",
             i, i % 5 ? "true" : "false", i, families[i % 10], i / 10 % 100, givens[i % 7],
             i % 2 ? "male" : "female", 1930 + i % 80, 1 + i % 12, 1 + i % 28, i % 50, i % 10000);
}

static void observation_json(buf_t *b, int i, int k)
{
    static const char *const codes[] = {"29463-7", "8302-2", "8867-4"};
    static const char *const units[] = {"kg", "cm", "/min"};
    buf_addf(b,
             "{\"resourceType\":\"Observation\",\"id\":\"o%d-%d\",\"status\":\"final\","
             "\"category\":[{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/"
             "observation-category\",\"code\":\"vital-signs\"}]}],"
             "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"%s\"}]},"
             "\"subject\":{\"reference\":\"Patient/p%d\"},"
             "\"effectiveDateTime\":\"2024-%02d-%02dT%02d:00:00Z\","
             "\"valueQuantity\":{\"value\":%d.%d,\"unit\":\"%s\","
             "\"system\":\"http://unitsofmeasure.org\",\"code\":\"%s\"}}",
             i, k, codes[k], i, 1 + i % 12, 1 + i % 28, i % 24, 40 + i % 160, i % 10, units[k],
             units[k]);
}

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

/* Writes every resource (patients, then their observations) in batches of 500; returns
 * resources per second. with_index false drops the rows after prepare. */
static double load(store_t *store, int npatients, bool with_index, const char *prefix)
{
    enum { BATCH = 500 };
    double start = now_seconds();
    int total = npatients * 4, done = 0;
    while (done < total) {
        arena_t arena;
        arena_init(&arena);
        batch_t b = {.writes = arena_zalloc(&arena, BATCH * sizeof(repo_write_t))};
        for (; b.n < BATCH && done < total; done++) {
            buf_t text = BUF_INIT;
            int i = done % npatients, k = done / npatients - 1;
            if (k < 0)
                patient_json(&text, i);
            else
                observation_json(&text, i, k);
            if (prefix) {
                /* another set of ids: "pX" becomes "<prefix>pX" in ids and references */
                buf_t renamed = BUF_INIT;
                for (const char *p = text.ptr; *p; p++) {
                    if ((p[0] == '"' && (p[1] == 'p' || p[1] == 'o') && p[2] >= '0' &&
                         p[2] <= '9') ||
                        (p[0] == '/' && p[1] == 'p' && p[2] >= '0' && p[2] <= '9')) {
                        buf_addch(&renamed, p[0]);
                        buf_addstr(&renamed, prefix);
                        continue;
                    }
                    buf_addch(&renamed, *p);
                }
                buf_release(&text);
                text = renamed;
            }
            err_t err = ERR_INIT;
            json_t *json = jv_parse(text.ptr, text.len, &err);
            const char *id = json_string_value(json_object_get(json, "id"));
            repo_write_t *w = &b.writes[b.n++];
            if (!json ||
                repo_prepare_resource(w, REPO_UPDATE, json, id, 0, &arena, &err) != ERR_OK) {
                fprintf(stderr, "bench: %s\n", err_message(&err));
                exit(1);
            }
            if (!with_index)
                memset(&w->index, 0, sizeof(w->index));
            json_decref(json);
            buf_release(&text);
            err_release(&err);
        }
        err_t err = ERR_INIT;
        if (store_run(store, batch_txn, &b, &err)) {
            fprintf(stderr, "bench: %s\n", err_message(&err));
            exit(1);
        }
        err_release(&err);
        arena_release(&arena);
    }
    return total / (now_seconds() - start);
}

static double bench_seconds(void)
{
    const char *s = getenv("BENCH_SECONDS");
    double v = s ? strtod(s, NULL) : 0;
    return v > 0 ? v : 1.0;
}

/* Searches per second of query ("Type?a=b&c=d", not encoded); *out_n the matches of one. */
static double searches(store_conn_t *conn, const char *query, size_t *out_n)
{
    double limit = bench_seconds(), start = now_seconds(), end;
    long n = 0;
    do {
        arena_t arena;
        arena_init(&arena);
        fhir_search_pair_t pairs[16];
        size_t npairs = 0;
        const char *q = strchr(query, '?');
        const fhir_type_t *type = fhir_resource_type_find(query, (size_t)(q - query));
        char *copy = arena_strdup(&arena, q + 1);
        for (char *p = copy; p && *p;) {
            char *amp = strchr(p, '&');
            if (amp)
                *amp = '\0';
            char *eq = strchr(p, '=');
            *eq = '\0';
            pairs[npairs++] = (fhir_search_pair_t){p, strlen(p), eq + 1, strlen(eq + 1)};
            p = amp ? amp + 1 : NULL;
        }
        repo_search_t search = {.type = type, .pairs = pairs, .npairs = npairs, .strict = true};
        fhir_search_plan_t *plan;
        store_search_result_t result;
        err_t err = ERR_INIT;
        if (repo_search(conn, &search, &arena, &plan, &result, &err)) {
            fprintf(stderr, "bench: %s: %s\n", query, err_message(&err));
            exit(1);
        }
        *out_n = result.nmatch;
        err_release(&err);
        arena_release(&arena);
        n++;
        end = now_seconds();
    } while (end - start < limit);
    return n / (end - start);
}

static double reads(store_conn_t *conn, int npatients)
{
    double limit = bench_seconds(), start = now_seconds(), end;
    long n = 0;
    char id[32];
    do {
        arena_t arena;
        arena_init(&arena);
        snprintf(id, sizeof(id), "p%ld", n * 7919 % npatients);
        store_version_t v;
        err_t err = ERR_INIT;
        if (repo_read(conn, "Patient", id, 0, &arena, &v, &err)) {
            fprintf(stderr, "bench: read %s: %s\n", id, err_message(&err));
            exit(1);
        }
        err_release(&err);
        arena_release(&arena);
        n++;
        end = now_seconds();
    } while (end - start < limit);
    return n / (end - start);
}

static status_t analyze_txn(store_txn_t *txn, void *arg, err_t *err)
{
    (void)arg;
    return store_txn_analyze(txn, err);
}

int main(void)
{
    const char *env = getenv("BENCH_PATIENTS");
    int npatients = env ? atoi(env) : 5000;
    if (npatients < 100)
        npatients = 100;
    char dir[] = "/tmp/concerto-bench-XXXXXX";
    char path[256];
    const char *reuse = getenv("BENCH_DB"); /* a database kept by BENCH_KEEP: no load */
    const char *location = getenv("BENCH_STORE");
    const char *clock_name = getenv("BENCH_CLOCK");
    if (location || (clock_name && strcmp(clock_name, "wall") == 0))
        bench_clock = CLOCK_MONOTONIC;
    printf("%s, rates per second of %s time\n", location ? location : "SQLite",
           bench_clock == CLOCK_MONOTONIC ? "wall" : "CPU");
    if (reuse) {
        snprintf(path, sizeof(path), "%s", reuse);
    } else if (location) {
        snprintf(path, sizeof(path), "%s", location);
    } else {
        if (!mkdtemp(dir))
            return 1;
        snprintf(path, sizeof(path), "%s/bench.db", dir);
    }
    store_options_t options;
    store_options_init(&options);
    options.synchronous = STORE_SYNC_OFF;
    store_t *store;
    err_t err = ERR_INIT;
    if (store_open(path, &options, &store, &err)) {
        fprintf(stderr, "bench: %s\n", err_message(&err));
        return 1;
    }
    const char *only = getenv("BENCH_QUERY"); /* one query only, for profiling */
    if (!reuse) {
        double without = load(store, npatients / 5, false, "x");
        double with = load(store, npatients, true, NULL);
        /* the planner's statistics, as import and autovacuum give a real database */
        if (store_run(store, analyze_txn, NULL, &err)) {
            fprintf(stderr, "bench: %s\n", err_message(&err));
            return 1;
        }
        printf("%d patients, %d observations\n", npatients, 3 * npatients);
        printf("%-62s %9.0f /s  (baseline)\n", "write without index rows (prepare + commit)",
               without);
        printf("%-62s %9.0f /s  %5.2fx baseline\n", "write with index rows (extract + insert)",
               with, with / without);
    }

    store_conn_t *conn;
    if (store_connect(store, &conn, &err))
        return 1;
    double read = reads(conn, npatients);
    printf("%-62s %9.0f /s  (baseline)\n", "read Patient by id", read);
    static const char *const queries[] = {
        "Patient?family=smith1",
        "Patient?family:exact=Müller3",
        "Patient?identifier=urn:mrn|4242",
        "Patient?gender=female&birthdate=1970",
        "Patient?birthdate=ge2000-06-01",
        "Patient?address-city=city7&active=false",
        "Observation?subject=Patient/p123",
        "Observation?code=http://loinc.org|29463-7&date=2024-03",
        "Observation?value-quantity=gt190||kg",
        "Observation?code-value-quantity=http://loinc.org|8302-2$ge199",
        "Observation?subject:Patient.family=nguyen4&code=8867-4",
        "Patient?_has:Observation:patient:value-quantity=gt199.5",
        "Patient?_count=50",
        "Patient?_sort=-birthdate&_count=50",
        "Patient?_sort=-_lastUpdated&_count=50",
        "Patient?gender=male&_sort=family,-birthdate&_count=20",
        "Observation?code=29463-7&_include=Observation:subject&_count=20",
        "Patient?gender=female&_total=accurate&_count=10",
    };
    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        if (only && strcmp(only, queries[i]) != 0)
            continue;
        size_t n;
        double rate = searches(conn, queries[i], &n);
        printf("%-52s (%4zu) %9.0f /s  %6.3fx baseline\n", queries[i], n, rate, rate / read);
    }
    store_disconnect(conn);
    store_close(store);
    err_release(&err);
    if (reuse || location)
        return 0;
    if (getenv("BENCH_KEEP")) {
        printf("database kept: %s\n", path);
        return 0;
    }
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
