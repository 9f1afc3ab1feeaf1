/*
 * engine.c - how many change events per second the coordination engine handles.
 *
 * A throw-away database with the built-in protocols (care/builtin.h) and BENCH_PATIENTS
 * patients (default 500), each with a care coordination team whose primary coordinator is
 * one of four Practitioners. Once the worker has handled what the setup wrote, the worker is
 * stopped and, per patient, three changes are written: a referral ServiceRequest made active
 * (the specialist-referral protocol makes a Task and the patient's CarePlan), an Appointment
 * that became noshow (missed-appointment-outreach: another Task, the same kind of CarePlan)
 * and a normal Observation (no protocol fires: the engine reads it and does nothing). Then
 * the worker is started again and timed until the outbox is empty, with what follows from the
 * engine's own writes (the Tasks' due-time jobs, their owners' notifications, the CarePlans'
 * versions). Prints the events handled per second of wall time and of CPU time, and the
 * protocol runs (Tasks made) per second.
 *
 *   make bench-engine && build/bench/engine
 *
 * BENCH_STORE=postgresql://... runs it on that (empty) PostgreSQL database instead of a
 * SQLite file; BENCH_SYNC=normal or off: the store's synchronous setting (default full, the
 * server's default: every commit waits for the disk).
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
#include "base/log.h"
#include "base/url.h"
#include "care/builtin.h"
#include "care/engine.h"
#include "fhir/defs.h"
#include "repo/repo.h"
#include "repo/worker.h"

#include "bench.h"

#define COORDINATORS 4

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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

/* Writes the resources of text (one JSON per line, each with its id), 200 per transaction. */
static void write_lines(store_t *store, const buf_t *text)
{
    enum { PER_TXN = 200 };
    const char *line = text->ptr;
    while (line && *line) {
        arena_t arena;
        arena_init(&arena);
        batch_t b = {.writes = arena_zalloc(&arena, PER_TXN * sizeof(repo_write_t))};
        err_t err = ERR_INIT;
        const char *nl;
        while (b.n < PER_TXN && (nl = strchr(line, '\n'))) {
            json_t *json = jv_parse(line, (size_t)(nl - line), &err);
            if (!json)
                bench_die("parse", &err);
            const char *id = json_string_value(json_object_get(json, "id"));
            if (repo_prepare_resource(&b.writes[b.n++], REPO_UPDATE, json, id, 0, &arena, &err))
                bench_die("prepare", &err);
            json_decref(json);
            line = nl + 1;
        }
        if (store_run(store, batch_txn, &b, &err))
            bench_die("write", &err);
        err_release(&err);
        arena_release(&arena);
    }
}

#define COORDINATOR "{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":\"768820003\"}]}"
#define TEAM        "{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"LA28865-6\"}]}"

static void setup_resources(buf_t *b, int npatients)
{
    for (int c = 0; c < COORDINATORS; c++)
        buf_addf(b, "{\"resourceType\":\"Practitioner\",\"id\":\"c%d\"}\n", c);
    for (int p = 0; p < npatients; p++) {
        buf_addf(b,
                 "{\"resourceType\":\"Patient\",\"id\":\"p%d\",\"name\":[{\"family\":\"F%d\"}]}\n",
                 p, p);
        buf_addf(b,
                 "{\"resourceType\":\"CareTeam\",\"id\":\"ct%d\",\"status\":\"active\","
                 "\"category\":[" TEAM "],\"subject\":{\"reference\":\"Patient/p%d\"},"
                 "\"participant\":[{\"role\":[" COORDINATOR "],\"member\":{\"reference\":"
                 "\"Practitioner/c%d\"}}]}\n",
                 p, p, p % COORDINATORS);
    }
}

static void event_resources(buf_t *b, int npatients)
{
    for (int p = 0; p < npatients; p++) {
        buf_addf(b,
                 "{\"resourceType\":\"ServiceRequest\",\"id\":\"sr%d\",\"status\":\"active\","
                 "\"intent\":\"order\",\"category\":[{\"coding\":[{\"system\":"
                 "\"http://snomed.info/sct\",\"code\":\"3457005\"}]}],\"code\":{\"text\":"
                 "\"Cardiology consultation\"},\"subject\":{\"reference\":\"Patient/p%d\"}}\n",
                 p, p);
        buf_addf(b,
                 "{\"resourceType\":\"Appointment\",\"id\":\"ap%d\",\"status\":\"noshow\","
                 "\"start\":\"2026-11-20T14:00:00Z\",\"end\":\"2026-11-20T14:30:00Z\","
                 "\"participant\":[{\"actor\":{\"reference\":\"Patient/p%d\"},\"status\":"
                 "\"accepted\"}]}\n",
                 p, p);
        buf_addf(
            b,
            "{\"resourceType\":\"Observation\",\"id\":\"ob%d\",\"status\":\"final\","
            "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8867-4\"}]},"
            "\"subject\":{\"reference\":\"Patient/p%d\"},\"valueQuantity\":{\"value\":72,"
            "\"unit\":\"/min\",\"system\":\"http://unitsofmeasure.org\",\"code\":\"/min\"},"
            "\"referenceRange\":[{\"low\":{\"value\":50,\"unit\":\"/min\",\"system\":"
            "\"http://unitsofmeasure.org\",\"code\":\"/min\"},\"high\":{\"value\":100,"
            "\"unit\":\"/min\",\"system\":\"http://unitsofmeasure.org\",\"code\":\"/min\"}}]}\n",
            p, p);
    }
}

/* Waits until no outbox event is waiting or claimed; the wall seconds it took. */
static double drain(store_t *store)
{
    int64_t start = clock_mono_us();
    err_t err = ERR_INIT;
    store_conn_t *conn;
    if (store_connect(store, &conn, &err))
        bench_die("connect", &err);
    for (;;) {
        store_outbox_stats_t s;
        if (store_outbox_stats(conn, clock_now_us(), &s, &err))
            bench_die("outbox", &err);
        if (s.dead)
            fprintf(stderr, "bench: %lld dead events\n", (long long)s.dead);
        if (s.pending == 0 && s.claimed == 0)
            break;
        usleep(2000);
    }
    store_disconnect(conn);
    return (double)(clock_mono_us() - start) / 1e6;
}

static long long count_of(store_t *store, const char *type, const char *name, const char *value)
{
    err_t err = ERR_INIT;
    arena_t arena;
    arena_init(&arena);
    store_conn_t *conn;
    fhir_search_pair_t pairs[] = {url_pair(name, value), url_pair("_summary", "count")};
    repo_search_t search = {.type = fhir_resource_type_find(type, strlen(type)),
                            .pairs = pairs,
                            .npairs = 2,
                            .now_us = clock_now_us()};
    fhir_search_plan_t *plan;
    store_search_t query;
    store_search_result_t found;
    if (store_connect(store, &conn, &err) ||
        repo_search_plan(conn, &search, &arena, &plan, &query, &err) ||
        store_search(conn, &query, &arena, &found, &err))
        bench_die("count", &err);
    long long n = (long long)found.total;
    store_disconnect(conn);
    arena_release(&arena);
    return n;
}

int main(void)
{
    int npatients = (int)bench_env_long("BENCH_PATIENTS", 500);
    log_set_level(LOG_WARNING); /* not a line per Task made */
    const char *name, *sync;
    store_t *store = bench_open_store(STORE_SYNC_FULL, &name, &sync);
    err_t err = ERR_INIT;
    care_builtin_report_t loaded;
    if (care_builtin_load(store, &loaded, &err))
        bench_die("protocols", &err);
    care_engine_register();
    repo_worker_config_t config;
    repo_worker_config_init(&config);
    config.poll_us = 5000;

    buf_t text = BUF_INIT;
    setup_resources(&text, npatients);
    write_lines(store, &text);
    if (repo_worker_start(store, &config, &err))
        bench_die("worker", &err);
    double setup_s = drain(store);
    repo_worker_stop();
    printf("%s, synchronous=%s: %zu protocol definitions, %d patients with a coordination "
           "team; the setup's events handled in %.1f s\n",
           name, sync ? sync : "full", loaded.created, npatients, setup_s);

    buf_reset(&text);
    event_resources(&text, npatients);
    write_lines(store, &text);
    long long tasks_before = count_of(store, "Task", "status", "ready,requested");
    repo_worker_stats_t before, after;
    repo_worker_stats(&before);
    double cpu0 = cpu_seconds();
    int64_t start = clock_mono_us();
    if (repo_worker_start(store, &config, &err))
        bench_die("worker", &err);
    drain(store);
    double wall = (double)(clock_mono_us() - start) / 1e6;
    double cpu = cpu_seconds() - cpu0;
    repo_worker_stop();
    repo_worker_stats(&after);
    long long tasks = count_of(store, "Task", "status", "ready,requested") - tasks_before;
    long long handled = after.events_handled - before.events_handled;
    long long failed = after.events_failed - before.events_failed;
    printf("%d changes written (%d referrals, %d missed appointments, %d normal results)\n",
           3 * npatients, npatients, npatients, npatients);
    printf("%lld events handled (%lld failed attempts) in %.2f s: %.0f events/s of wall time, "
           "%.0f per CPU second (%.0f µs of CPU each)\n",
           handled, failed, wall, (double)handled / wall, (double)handled / cpu,
           cpu * 1e6 / (double)handled);
    printf("%lld Tasks made by protocols: %.0f per second\n", tasks, (double)tasks / wall);
    buf_release(&text);
    err_release(&err);
    return bench_close_store(store);
}
