/*
 * population.c - search latencies over a database holding the population that
 * gen-population wrote and `concerto import` loaded (bench/population runs all three).
 *
 *   population DB PATIENTS
 *
 * For each kind of search (token, reference, date range, string prefix, chained, _has,
 * _include, _sort and combinations) it runs BENCH_RUNS searches (default 200), each with other
 * values drawn from a fixed seed (another patient, code, day, name), through repo_search as
 * the server does, reading the page's resources, and prints the p50 and p95 of their wall
 * time, the matches on a page and the SQLite query plan of the first one (EXPLAIN QUERY PLAN
 * of the page query). A plan step that scans a table or an index from end to end, or reads
 * every entry of a parameter in an index table, is flagged "SCAN!". Then it times
 * BENCH_BUNDLES (default 30) transaction Bundles of 100 entries (a Patient and 99 Observations
 * that refer to it by its urn:uuid fullUrl), written durably (synchronous=full). BENCH_ONLY=KIND
 * runs only the kinds whose name starts with KIND (and no Bundles unless KIND starts
 * "transaction"). Exit status 3
 * when a target is missed (indexed single-parameter p50 under 5 ms, chained and _has p50 under 20
 * ms) or a plan scans.
 */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/jv.h"
#include "fhir/search.h"
#include "repo/bundle.h"
#include "repo/repo.h"
#include "store/sqlite_int.h"

static uint64_t rng = 88172645463325252ULL;

static int pick(int n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (int)(rng % (uint64_t)n);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int npatients;

static const char *const loinc[] = {"8867-4", "8480-6", "29463-7", "8302-2", "39156-5",
                                    "2339-0", "4548-4", "2093-3",  "718-7"};
static const char *const snomed[] = {"44054006", "38341003", "195967001", "49436004",
                                     "35489007", "55822004", "15777000"};
static const char *const prefixes[] = {"mül", "ngu", "kow", "dvo", "ång", "gar",
                                       "smi", "ok",  "ch",  "lef", "yıl", "pap"};
static const char *const task_status[] = {"requested", "in-progress", "on-hold", "completed",
                                          "cancelled"};

/* Fills text with the kind's query, with values drawn afresh. */
typedef void (*query_fn)(char *text, size_t size);

static void q_token(char *t, size_t n)
{
    snprintf(t, n, "Observation?code=http://loinc.org|%s", loinc[pick(9)]);
}
static void q_token_condition(char *t, size_t n)
{
    snprintf(t, n, "Condition?code=http://snomed.info/sct|%s", snomed[pick(7)]);
}
static void q_identifier(char *t, size_t n)
{
    snprintf(t, n, "Patient?identifier=urn:oid:2.16.840.1.113883.19.5|MRN%08d", pick(npatients));
}
static void q_reference(char *t, size_t n)
{
    snprintf(t, n, "Observation?subject=Patient/pt%d", pick(npatients));
}
static void q_reference_encounter(char *t, size_t n)
{
    snprintf(t, n, "Encounter?patient=pt%d", pick(npatients));
}
static void q_date(char *t, size_t n)
{
    int y = 2012 + pick(13), m = 1 + pick(12), d = 1 + pick(20);
    snprintf(t, n, "Observation?date=ge%d-%02d-%02d&date=lt%d-%02d-%02d", y, m, d, y, m, d + 7);
}
static void q_date_code(char *t, size_t n)
{
    int y = 2012 + pick(13), m = 1 + pick(12);
    snprintf(t, n, "Observation?code=http://loinc.org|%s&date=%d-%02d", loinc[pick(9)], y, m);
}
static void q_date_month(char *t, size_t n)
{
    snprintf(t, n, "Observation?date=%d-%02d", 2012 + pick(13), 1 + pick(12));
}
static void q_date_day(char *t, size_t n)
{
    snprintf(t, n, "Encounter?date=%d-%02d-%02d", 2012 + pick(13), 1 + pick(12), 1 + pick(28));
}
static void q_birthdate_month(char *t, size_t n)
{
    snprintf(t, n, "Patient?birthdate=%d-%02d", 1930 + pick(85), 1 + pick(12));
}
static void q_birthdate(char *t, size_t n)
{
    int y = 1930 + pick(85), m = 1 + pick(12);
    snprintf(t, n, "Patient?birthdate=ge%d-%02d-01&birthdate=le%d-%02d-28", y, m, y, m);
}
static void q_string(char *t, size_t n)
{
    snprintf(t, n, "Patient?family=%s", prefixes[pick(12)]);
}
static void q_string_name(char *t, size_t n)
{
    static const char *const given[] = {"sø", "zo", "jü", "hél", "mał", "ľu", "ren", "ki"};
    snprintf(t, n, "Patient?name=%s", given[pick(8)]);
}
static void q_token_reference(char *t, size_t n)
{
    snprintf(t, n, "Task?owner=Practitioner/pr%d&status=%s",
             pick(npatients / 100 < 10 ? 10 : npatients / 100), task_status[pick(5)]);
}
static void q_chain(char *t, size_t n)
{
    snprintf(t, n, "Observation?subject:Patient.identifier=urn:oid:2.16.840.1.113883.19.5|MRN%08d",
             pick(npatients));
}
static void q_chain_practitioner(char *t, size_t n)
{
    int npract = npatients / 100 < 10 ? 10 : npatients / 100;
    snprintf(t, n,
             "Encounter?participant:Practitioner.identifier=http://hl7.org/fhir/sid/us-npi|%010d",
             1000000000 + pick(npract) * 7);
}
static void q_chain_family(char *t, size_t n)
{
    snprintf(t, n, "Observation?subject:Patient.family=%s&code=%s", prefixes[pick(12)],
             loinc[pick(9)]);
}
static void q_has(char *t, size_t n)
{
    snprintf(t, n, "Patient?_has:Condition:patient:code=http://snomed.info/sct|%s",
             snomed[pick(7)]);
}
static void q_has_selective(char *t, size_t n)
{
    snprintf(t, n, "Patient?_has:Observation:patient:_id=ob%d-0-0", pick(npatients));
}
static void q_has_combined(char *t, size_t n)
{
    snprintf(t, n, "Patient?family=%s&_has:Condition:patient:code=%s", prefixes[pick(12)],
             snomed[pick(7)]);
}
static void q_include(char *t, size_t n)
{
    snprintf(t, n, "Observation?subject=Patient/pt%d&_include=Observation:subject",
             pick(npatients));
}
static void q_include_code(char *t, size_t n)
{
    snprintf(t, n, "Observation?code=%s&_include=Observation:subject&_count=20", loinc[pick(9)]);
}
static void q_revinclude(char *t, size_t n)
{
    snprintf(t, n, "Encounter?subject=Patient/pt%d&_revinclude=Observation:encounter",
             pick(npatients));
}
static void q_sort(char *t, size_t n)
{
    snprintf(t, n, "Observation?subject=Patient/pt%d&_sort=-date", pick(npatients));
}
static void q_sort_code(char *t, size_t n)
{
    snprintf(t, n, "Observation?code=http://loinc.org|%s&_sort=-date&_count=20", loinc[pick(9)]);
}
static void q_sort_family(char *t, size_t n)
{
    snprintf(t, n, "Patient?family=%s&_sort=birthdate&_count=20", prefixes[pick(12)]);
}
static void q_sort_all(char *t, size_t n)
{
    (void)pick(2);
    snprintf(t, n, "Patient?_sort=-birthdate&_count=20");
}

typedef enum { TARGET_NONE, TARGET_5MS, TARGET_20MS } target_t;

static const struct {
    const char *kind;
    query_fn fn;
    target_t target;
} kinds[] = {
    {"token", q_token, TARGET_5MS},
    {"token", q_token_condition, TARGET_5MS},
    {"token (identifier)", q_identifier, TARGET_5MS},
    {"reference", q_reference, TARGET_5MS},
    {"reference", q_reference_encounter, TARGET_5MS},
    {"date range", q_date_month, TARGET_5MS},
    {"date range", q_date_day, TARGET_5MS},
    {"date range", q_birthdate_month, TARGET_5MS},
    {"date, two bounds", q_date, TARGET_NONE},
    {"date, two bounds", q_birthdate, TARGET_5MS}, /* one value per patient: one range */
    {"string prefix", q_string, TARGET_5MS},
    {"string prefix", q_string_name, TARGET_5MS},
    {"token + date", q_date_code, TARGET_NONE},
    {"reference + token", q_token_reference, TARGET_NONE},
    {"chained", q_chain, TARGET_20MS},
    {"chained", q_chain_practitioner, TARGET_20MS},
    {"chained + token", q_chain_family, TARGET_NONE},
    {"_has", q_has, TARGET_20MS},
    {"_has", q_has_selective, TARGET_20MS},
    {"_has + string", q_has_combined, TARGET_NONE},
    {"_include", q_include, TARGET_NONE},
    {"_include", q_include_code, TARGET_NONE},
    {"_revinclude", q_revinclude, TARGET_NONE},
    {"_sort", q_sort, TARGET_NONE},
    {"_sort", q_sort_code, TARGET_NONE},
    {"_sort", q_sort_family, TARGET_NONE},
    {"_sort", q_sort_all, TARGET_NONE},
};

static const fhir_type_t *split(arena_t *arena, const char *text, fhir_search_pair_t *pairs,
                                size_t *npairs)
{
    const char *q = strchr(text, '?');
    const fhir_type_t *type = fhir_resource_type_find(text, (size_t)(q - text));
    char *copy = arena_strdup(arena, q + 1);
    *npairs = 0;
    for (char *p = copy; p && *p;) {
        char *amp = strchr(p, '&');
        if (amp)
            *amp = '\0';
        char *eq = strchr(p, '=');
        *eq = '\0';
        pairs[(*npairs)++] = (fhir_search_pair_t){p, strlen(p), eq + 1, strlen(eq + 1)};
        p = amp ? amp + 1 : NULL;
    }
    return type;
}

/* Prints the plan of text's page query; returns the number of steps that scan. */
static int print_plan(sqlite3 *db, const char *text)
{
    arena_t arena;
    arena_init(&arena);
    fhir_search_pair_t pairs[16];
    size_t npairs;
    const fhir_type_t *type = split(&arena, text, pairs, &npairs);
    fhir_search_query_t query = {.pairs = pairs, .npairs = npairs, .strict = true};
    fhir_search_plan_t *plan;
    err_t err = ERR_INIT;
    const char *sql;
    int scans = 0;
    if (fhir_search_parse(NULL, type, &query, &arena, &plan, &err) ||
        sqlite__search_sql(&(store_search_t){.plan = plan, .base = "http://localhost/fhir"}, &arena,
                           &sql)) {
        printf("    (no plan: %s)\n", err_message(&err));
        goto out;
    }
    if (getenv("BENCH_SQL"))
        printf("    %s\n", sql);
    sqlite3_stmt *stmt;
    char *explain = arena_printf(&arena, "EXPLAIN QUERY PLAN %s", sql);
    if (sqlite3_prepare_v2(db, explain, -1, &stmt, NULL) != SQLITE_OK) {
        printf("    (no plan: %s)\n", sqlite3_errmsg(db));
        goto out;
    }
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        const char *step = (const char *)sqlite3_column_text(stmt, 3);
        /* "SCAN t" reads a table or an index from end to end; "SCAN t USING INDEX" as well,
           unless it is the walk of a sort key's index that stops when the page is full */
        bool scan = (strncmp(step, "SCAN ", 5) == 0 && !strstr(step, "CONSTANT ROW") &&
                     !strstr(step, "sqlite_stat")) ||
                    /* every entry of a parameter: a scan of its part of the index */
                    (strncmp(step, "SEARCH ix_", 10) == 0 && strstr(step, "(type=? AND param=?)"));
        printf("    %s%s\n", scan ? "SCAN! " : "      ", step);
        scans += scan;
    }
    sqlite3_finalize(stmt);
out:
    err_release(&err);
    arena_release(&arena);
    return scans;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int runs_of(const char *name, int fallback)
{
    const char *s = getenv(name);
    int v = s ? atoi(s) : 0;
    return v > 0 ? v : fallback;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: population DB PATIENTS\n");
        return 2;
    }
    npatients = atoi(argv[2]);
    int runs = runs_of("BENCH_RUNS", 200), nbundles = runs_of("BENCH_BUNDLES", 30);
    store_options_t options;
    store_options_init(&options);
    options.create = false;
    store_t *store;
    err_t err = ERR_INIT;
    if (store_open(argv[1], &options, &store, &err)) {
        fprintf(stderr, "population: %s\n", err_message(&err));
        return 1;
    }
    store_conn_t *conn;
    if (store_connect(store, &conn, &err))
        return 1;
    sqlite3 *db;
    if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        return 1;

    bool missed = false;
    int total_scans = 0;
    double *times = calloc((size_t)runs, sizeof(double));
    printf("%-20s %-90s %8s %8s %6s\n", "kind", "first query", "p50 ms", "p95 ms", "page");
    const char *only = getenv("BENCH_ONLY"); /* kinds whose name starts so, for profiling */
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        if (only && strncmp(kinds[k].kind, only, strlen(only)) != 0)
            continue;
        char first[512] = "", text[512];
        double matches = 0;
        for (int r = 0; r < runs; r++) {
            kinds[k].fn(text, sizeof(text));
            if (r == 0)
                memcpy(first, text, sizeof(first));
            arena_t arena;
            arena_init(&arena);
            fhir_search_pair_t pairs[16];
            size_t npairs;
            double start = now_ms();
            const fhir_type_t *type = split(&arena, text, pairs, &npairs);
            repo_search_t search = {.type = type,
                                    .pairs = pairs,
                                    .npairs = npairs,
                                    .strict = true,
                                    .base = "http://localhost/fhir"};
            fhir_search_plan_t *plan;
            store_search_result_t result;
            if (repo_search(conn, &search, &arena, &plan, &result, &err)) {
                fprintf(stderr, "population: %s: %s\n", text, err_message(&err));
                return 1;
            }
            times[r] = now_ms() - start;
            matches += (double)result.n;
            arena_release(&arena);
        }
        qsort(times, (size_t)runs, sizeof(double), compare_double);
        double p50 = times[runs / 2], p95 = times[runs * 95 / 100];
        bool miss = (kinds[k].target == TARGET_5MS && p50 >= 5) ||
                    (kinds[k].target == TARGET_20MS && p50 >= 20);
        missed |= miss;
        printf("%-20s %-90s %8.3f %8.3f %6.1f%s\n", kinds[k].kind, first, p50, p95, matches / runs,
               kinds[k].target == TARGET_NONE  ? ""
               : miss                          ? "  MISSED"
               : kinds[k].target == TARGET_5MS ? "  (< 5 ms)"
                                               : "  (< 20 ms)");
        total_scans += print_plan(db, first);
        fflush(stdout);
    }

    /* transaction Bundles of 100 entries */
    if (only && strncmp("transaction", only, strlen(only)) != 0)
        nbundles = 0;
    double *btimes = calloc((size_t)nbundles, sizeof(double));
    for (int b = 0; b < nbundles; b++) {
        buf_t body = BUF_INIT;
        buf_addf(&body,
                 "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":["
                 "{\"fullUrl\":\"urn:uuid:4f8b0c4e-0000-4000-8000-%012d\",\"resource\":"
                 "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Bündel\","
                 "\"given\":[\"Test\"]}],\"gender\":\"other\",\"birthDate\":"
                 "\"1990-01-01\"},\"request\":{\"method\":\"POST\",\"url\":\"Patient\"}}",
                 b);
        for (int e = 1; e < 100; e++)
            buf_addf(&body,
                     ",{\"fullUrl\":\"urn:uuid:4f8b0c4e-%04d-4000-8000-%012d\",\"resource\":{"
                     "\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{"
                     "\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"%s\"}]},"
                     "\"subject\":{\"reference\":\"urn:uuid:4f8b0c4e-0000-4000-8000-%012d\"},"
                     "\"effectiveDateTime\":\"2025-01-%02dT10:00:00Z\",\"valueQuantity\":{"
                     "\"value\":%d,\"unit\":\"/min\",\"system\":\"http://unitsofmeasure.org\","
                     "\"code\":\"/min\"}},\"request\":{\"method\":\"POST\",\"url\":"
                     "\"Observation\"}}",
                     e, b, loinc[e % 9], b, 1 + e % 28, 50 + e);
        buf_addstr(&body, "]}");
        arena_t arena;
        arena_init(&arena);
        repo_bundle_t bundle;
        double start = now_ms();
        if (repo_bundle_prepare(&bundle, body.ptr, body.len, "", false, conn, &arena, &err) ||
            store_run(store, repo_bundle_txn, &bundle, &err)) {
            fprintf(stderr, "population: bundle: %s\n", err_message(&err));
            return 1;
        }
        btimes[b] = now_ms() - start;
        repo_bundle_release(&bundle);
        arena_release(&arena);
        buf_release(&body);
    }
    qsort(btimes, (size_t)nbundles, sizeof(double), compare_double);
    if (nbundles)
        printf("%-20s %-90s %8.3f %8.3f %6d\n", "transaction",
               "Bundle of 100 entries (1 Patient, 99 "
               "Observations; prepare + durable commit)",
               btimes[nbundles / 2], btimes[nbundles * 95 / 100], 100);
    printf("plan steps that scan: %d\n", total_scans);
    free(times);
    free(btimes);
    sqlite3_close(db);
    store_disconnect(conn);
    store_close(store);
    err_release(&err);
    return missed || total_scans ? 3 : 0;
}
