/*
 * access.c - what the access policy's filter costs a search: the same searches for the server
 * itself (no caller), for a service (system/ scopes: nothing hidden) and for a staff member
 * whose care teams hold 50 of the patients (user/ scopes: the visibility condition in the
 * SQL), on a throw-away SQLite database of BENCH_PATIENTS patients (default 2000) with three
 * observations each. Rates per second of CPU time (the process's, all threads).
 *
 *   make bench-access && build/bench/access
 *
 * BENCH_SECONDS (default 1) is how long each search is repeated; BENCH_KEEP=1 keeps the
 * database (its path is printed) for EXPLAIN QUERY PLAN in the sqlite3 shell.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/jv.h"
#include "fhir/search.h"
#include "repo/access.h"
#include "repo/repo.h"
#include "repo/scope.h"

#define TEAM 50 /* patients on the staff member's care teams */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, err_t *err)
{
    fprintf(stderr, "bench: %s: %s\n", what, err_message(err));
    exit(1);
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

/* The resource number `i` of the load: patients, their observations, then the care teams. */
static void resource_json(buf_t *b, int i, int npatients)
{
    static const char *const codes[] = {"29463-7", "8302-2", "8867-4"};
    if (i == 0) {
        buf_addstr(b, "{\"resourceType\":\"Practitioner\",\"id\":\"doc\"}");
    } else if (i <= npatients) {
        buf_addf(b, "{\"resourceType\":\"Patient\",\"id\":\"p%d\",\"name\":[{\"family\":\"F%d\"}]}",
                 i - 1, i - 1);
    } else if (i <= 4 * npatients) {
        int k = (i - npatients - 1) / npatients, p = (i - npatients - 1) % npatients;
        buf_addf(b,
                 "{\"resourceType\":\"Observation\",\"id\":\"o%d-%d\",\"status\":\"final\","
                 "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"%s\"}]},"
                 "\"subject\":{\"reference\":\"Patient/p%d\"},"
                 "\"effectiveDateTime\":\"2024-%02d-%02dT10:00:00Z\"}",
                 p, k, codes[k], p, 1 + p % 12, 1 + p % 28);
    } else {
        /* every (npatients / TEAM)th patient is on a care team of doc's */
        int t = i - 4 * npatients - 1;
        buf_addf(b,
                 "{\"resourceType\":\"CareTeam\",\"id\":\"ct%d\",\"status\":\"active\","
                 "\"subject\":{\"reference\":\"Patient/p%d\"},\"participant\":[{\"member\":{"
                 "\"reference\":\"Practitioner/doc\"}}]}",
                 t, t * (npatients / TEAM));
    }
}

static void load(store_t *store, int npatients)
{
    enum { BATCH = 500 };
    int total = 4 * npatients + 1 + TEAM, done = 0;
    while (done < total) {
        arena_t arena;
        arena_init(&arena);
        batch_t b = {.writes = arena_zalloc(&arena, BATCH * sizeof(repo_write_t))};
        err_t err = ERR_INIT;
        for (; b.n < BATCH && done < total; done++) {
            buf_t text = BUF_INIT;
            resource_json(&text, done, npatients);
            json_t *json = jv_parse(text.ptr, text.len, &err);
            if (!json)
                die("parse", &err);
            const char *id = json_string_value(json_object_get(json, "id"));
            if (repo_prepare_resource(&b.writes[b.n++], REPO_UPDATE, json, id, 0, &arena, &err))
                die("prepare", &err);
            json_decref(json);
            buf_release(&text);
        }
        if (store_run(store, batch_txn, &b, &err))
            die("load", &err);
        err_release(&err);
        arena_release(&arena);
    }
}

static status_t analyze_txn(store_txn_t *txn, void *arg, err_t *err)
{
    (void)arg;
    return store_txn_analyze(txn, err);
}

/* Searches per second of query ("Type?a=b&c=d", not encoded) as caller; *out_n the matches
 * of one, *out_total its total (-1 when not asked). */
static double searches(store_conn_t *conn, const repo_caller_t *caller, const char *query,
                       size_t *out_n, int64_t *out_total)
{
    const char *s = getenv("BENCH_SECONDS");
    double limit = s && strtod(s, NULL) > 0 ? strtod(s, NULL) : 1.0;
    double start = now_seconds(), end;
    long n = 0;
    do {
        arena_t arena;
        arena_init(&arena);
        fhir_search_pair_t pairs[8];
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
        repo_search_t search = {
            .type = type, .pairs = pairs, .npairs = npairs, .strict = true, .caller = caller};
        fhir_search_plan_t *plan;
        store_search_result_t result;
        err_t err = ERR_INIT;
        if (repo_search(conn, &search, &arena, &plan, &result, &err))
            die(query, &err);
        *out_n = result.nmatch;
        *out_total = result.total;
        err_release(&err);
        arena_release(&arena);
        n++;
        end = now_seconds();
    } while (end - start < limit);
    return n / (end - start);
}

int main(void)
{
    const char *env = getenv("BENCH_PATIENTS");
    int npatients = env ? atoi(env) : 2000;
    if (npatients < 2 * TEAM)
        npatients = 2 * TEAM;
    char dir[] = "/tmp/concerto-bench-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char path[256];
    snprintf(path, sizeof(path), "%s/bench.db", dir);
    store_options_t options;
    store_options_init(&options);
    options.synchronous = STORE_SYNC_OFF;
    store_t *store;
    err_t err = ERR_INIT;
    if (store_open(path, &options, &store, &err))
        die("open", &err);
    load(store, npatients);
    if (store_run(store, analyze_txn, NULL, &err))
        die("analyze", &err);
    printf("SQLite, %d patients, %d observations, a staff member with %d patients; searches "
           "per second of CPU time\n",
           npatients, 3 * npatients, TEAM);

    arena_t arena;
    arena_init(&arena);
    scope_set_t user_all, system_all;
    scope_parse(&arena, "user/*.cruds", 12, &user_all);
    scope_parse(&arena, "system/*.cruds", 14, &system_all);
    repo_caller_t service = {
        .kind = REPO_CALLER_SERVICE, .client_id = "svc", .scopes = &system_all};
    repo_caller_t staff = {.kind = REPO_CALLER_STAFF,
                           .account_id = "acct-doc",
                           .username = "doc",
                           .role = "nurse",
                           .practitioner_id = "doc",
                           .scopes = &user_all};
    const struct {
        const char *name;
        const repo_caller_t *caller;
    } callers[] = {{"none", NULL}, {"service", &service}, {"staff", &staff}};
    /* p0 is on a care team; p1 is not (the staff member finds nothing there) */
    static const char *const queries[] = {
        "Observation?patient=Patient/p0",
        "Observation?patient=Patient/p1",
        "Observation?code=29463-7&_count=20",
        "Observation?code=29463-7&_count=20&_total=accurate",
        "Observation?code=29463-7&_include=Observation:subject&_count=20",
        "Patient?_count=20",
    };
    store_conn_t *conn;
    if (store_connect(store, &conn, &err))
        die("connect", &err);
    /* the policy's part alone: the visibility worked out (patients cached for a second) */
    {
        double start = now_seconds(), end;
        long n = 0;
        do {
            arena_t a;
            arena_init(&a);
            const store_visibility_t *v;
            if (repo_access_visibility(conn, &staff, "Observation", SCOPE_S, NULL, NULL, &a, &v,
                                       &err))
                die("visibility", &err);
            arena_release(&a);
            n++;
            end = now_seconds();
        } while (end - start < 1.0);
        printf("%-64s %-8s %10.0f\n", "the visibility alone (repo_access_visibility)", "staff",
               n / (end - start));
    }
    printf("%-64s %-8s %10s %8s %8s\n", "query", "caller", "/s", "matches", "total");
    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        double base = 0;
        for (size_t c = 0; c < sizeof(callers) / sizeof(callers[0]); c++) {
            size_t n;
            int64_t total;
            double rate = searches(conn, callers[c].caller, queries[i], &n, &total);
            if (c == 0)
                base = rate;
            printf("%-64s %-8s %10.0f %8zu %8lld  %5.2fx\n", c ? "" : queries[i], callers[c].name,
                   rate, n, (long long)total, rate / base);
        }
    }
    store_disconnect(conn);
    store_close(store);
    arena_release(&arena);
    err_release(&err);
    if (getenv("BENCH_KEEP")) {
        printf("kept %s\n", path);
        return 0;
    }
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
