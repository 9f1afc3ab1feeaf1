/*
 * hl7.c - ADT messages per second through the HL7 feed end to end: framed over MLLP on
 * loopback, stored as received, applied to the record (Patient, Encounter, diagnoses) and
 * acknowledged, as `concerto serve --mllp` does it (the listener and the feed of src/hl7 on a
 * throw-away database).
 *
 * BENCH_CONNECTIONS senders (default 16) each send, one message at a time waiting for its ACK,
 * the stays of their own patients: an admission (A01, a new patient), an update (A08) and a
 * discharge (A03, with two diagnoses), until BENCH_MESSAGES messages (default 15,000) have
 * been acknowledged. Prints messages per second of wall time, the latency of an exchange
 * (p50, p99) and the ratio to the target of 2,000 messages per second. Every ACK must be AA.
 *
 *   make bench-hl7 && build/bench/hl7
 *
 * BENCH_STORE=postgresql://... runs it on that (empty) PostgreSQL database instead of a SQLite
 * file; BENCH_SYNC=normal or off: the store's synchronous setting (default full, the server's);
 * BENCH_WORKERS: the listener's worker threads (default 4, the server's default).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/calendar.h"
#include "base/log.h"
#include "hl7/ingest.h"
#include "hl7/listener.h"
#include "repo/repo.h"

#include "bench.h"

#define TARGET 2000.0

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int port;
static atomic_long remaining;
static atomic_long refused;

typedef struct {
    int index;
    double *latencies; /* seconds, one per exchange */
    size_t n;
} sender_t;

/* The n-th message of sender s: admissions, updates and discharges of its patients in turn. */
static void message_of(int s, long n, buf_t *out)
{
    long patient = n / 3;
    int step = (int)(n % 3);
    static const char *const events[] = {"A01", "A08", "A03"};
    buf_addf(out,
             "MSH|^~\\&|EPIC|GENHOSP|CONCERTO|CLINIC|20261120101500-0500||ADT^%s^ADT_%s|B%d-%ld|"
             "P|2.5.1\rEVN|%s|20261120101500\r"
             "PID|1||S%dP%ld^^^GENHOSP&2.16.840.1.113883.19.5&ISO^MR||Bench^Patient%ld^Q||"
             "19500101|F|||1 Main St^^Springfield^IL^62701^USA^H||^PRN^PH^^^217^5550100\r"
             "PV1|1|I|4N^%ld^A^GENHOSP|E|||1234^Okafor^Grace^^^Dr|||MED||||7|||||S%dV%ld|||||||||||"
             "||||||||%s||||||||202611181430|%s\r",
             events[step], events[step], s, n, events[step], s, patient, patient, patient % 40, s,
             patient, step == 2 ? "01" : "", step == 2 ? "202611201100" : "");
    if (step == 2)
        buf_addstr(out, "DG1|1||I50.9^Heart failure^I10||20261118|F\r"
                        "DG1|2||E11.9^Type 2 diabetes^I10||20261118|A\r");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void *sender_main(void *arg)
{
    sender_t *s = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
        bench_die("connect", NULL);
    buf_t msg = BUF_INIT, in = BUF_INIT;
    char chunk[8192];
    for (long n = 0; atomic_fetch_sub(&remaining, 1) > 0; n++) {
        buf_reset(&msg);
        buf_addch(&msg, 0x0b);
        message_of(s->index, n, &msg);
        buf_addch(&msg, 0x1c);
        buf_addch(&msg, 0x0d);
        double t0 = now_s();
        if (send(fd, msg.ptr, msg.len, MSG_NOSIGNAL) != (ssize_t)msg.len)
            bench_die("send", NULL);
        buf_reset(&in);
        while (!(in.len >= 2 && in.ptr[in.len - 2] == 0x1c && in.ptr[in.len - 1] == 0x0d)) {
            ssize_t got = recv(fd, chunk, sizeof(chunk), 0);
            if (got <= 0)
                bench_die("receive", NULL);
            buf_add(&in, chunk, (size_t)got);
        }
        s->latencies[s->n++] = now_s() - t0;
        if (!strstr(in.ptr, "\rMSA|AA|")) {
            if (atomic_fetch_add(&refused, 1) == 0)
                fprintf(stderr, "bench: not accepted: %s\n", in.ptr + 1);
        }
    }
    close(fd);
    buf_release(&msg);
    buf_release(&in);
    return NULL;
}

int main(void)
{
    /* by default as `concerto serve` runs the feed: 32 workers with SQLite, 4 with PostgreSQL,
       and twice as many senders as workers */
    const char *location = getenv("BENCH_STORE");
    bool postgres = location && *location && store_location_is_postgres(location);
    int workers = (int)bench_env_long("BENCH_WORKERS", postgres ? 4 : 32);
    int nsenders = (int)bench_env_long("BENCH_CONNECTIONS", 2 * workers);
    long total = bench_env_long("BENCH_MESSAGES", 15000);
    log_set_level(LOG_WARNING);
    const char *name, *sync;
    store_t *store = bench_open_store(STORE_SYNC_FULL, &name, &sync);
    err_t err = ERR_INIT;
    if (repo_params_open(store, &err))
        bench_die("search parameters", &err);
    hl7_ingest_t *ingest = hl7_ingest_new(store, calendar_zone(calendar_default()));
    hl7_listener_config_t config;
    hl7_listener_config_init(&config);
    config.port = 0;
    config.workers = workers;
    hl7_listener_t *listener;
    if (hl7_listener_start(store, &config, hl7_ingest_handle, ingest, &listener, &err))
        bench_die("listen", &err);
    port = hl7_listener_port(listener);

    atomic_init(&remaining, total);
    atomic_init(&refused, 0);
    sender_t *senders = calloc((size_t)nsenders, sizeof(*senders));
    pthread_t *threads = calloc((size_t)nsenders, sizeof(*threads));
    double started = now_s();
    for (int i = 0; i < nsenders; i++) {
        senders[i].index = i;
        senders[i].latencies = calloc((size_t)total, sizeof(double));
        pthread_create(&threads[i], NULL, sender_main, &senders[i]);
    }
    for (int i = 0; i < nsenders; i++)
        pthread_join(threads[i], NULL);
    double wall = now_s() - started;

    double *all = calloc((size_t)total, sizeof(double));
    size_t n = 0;
    for (int i = 0; i < nsenders; i++) {
        memcpy(all + n, senders[i].latencies, senders[i].n * sizeof(double));
        n += senders[i].n;
        free(senders[i].latencies);
    }
    qsort(all, n, sizeof(double), cmp_double);
    double rate = (double)n / wall;
    printf("%s, synchronous=%s, %d connections, %d workers: %zu ADT messages (A01, A08, A03) "
           "stored, applied and acknowledged in %.2f s\n",
           name, sync ? sync : "full", nsenders, workers, n, wall);
    printf("  %.0f messages/s; exchange p50 %.2f ms, p99 %.2f ms\n", rate, all[n / 2] * 1e3,
           all[(size_t)((double)n * 0.99)] * 1e3);
    printf("  ratio to the target of %.0f messages/s: %.2f (%s)\n", TARGET, rate / TARGET,
           rate >= TARGET ? "PASS" : "MISS");
    hl7_listener_stop(listener);
    hl7_ingest_free(ingest);
    repo_params_close();
    int status = bench_close_store(store);
    free(all);
    free(senders);
    free(threads);
    long bad = atomic_load(&refused);
    if (bad) {
        fprintf(stderr, "bench: %ld messages were not accepted (AA)\n", bad);
        return 1;
    }
    return status;
}
