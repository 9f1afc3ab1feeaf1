/*
 * demo.c - `concerto demo`: a synthetic population for trying Concerto, loaded the way
 * `concerto import` loads data.
 *
 * The population (demo_gen.c) is written as NDJSON, one file per resource type, one patient at
 * a time, so memory does not grow with its size; the files are then imported (cli/import.h),
 * so every resource is validated and indexed as an import would. The history is imported
 * first (the care teams in a second import, after_indexes) and the outbox events it made are
 * acknowledged: it stands for work already done, and
 * a server started on the database does not run the protocols over years of old stays. The
 * recent hospital stays and emergency visits are imported after, so that the engine acts on
 * them as on any new Encounter. The built-in protocols are loaded first, as `concerto init`
 * loads them. Last the sign-ins are made, with passwords from libsodium
 * (not from the seed), written only to the --credentials file unless asked.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/accounts.h"
#include "auth/random.h"
#include "care/builtin.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/jv.h"
#include "base/mem.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/demo_gen.h"
#include "cli/import.h"

static const char help[] =
    "usage: concerto demo [--db FILE|URI] [--patients N] [--seed S] [--as-of YYYY-MM-DD]\n"
    "                     [--credentials FILE] [--ndjson DIR] [--force]\n"
    "\n"
    "Fills a database with a synthetic but realistic care-management population: patients\n"
    "(mostly 50 to 90 years old) with chronic conditions (ICD-10-CM), medications (RxNorm),\n"
    "allergies, vitals and laboratory results (LOINC), visits, hospital stays and emergency\n"
    "visits, care coordination teams with a primary coordinator, care plans with goals,\n"
    "referrals, appointments, messages and Tasks in every status with due dates around the\n"
    "as-of date; the staff (Practitioners) and two Organizations; and a sign-in for each\n"
    "staff role and two patients. The same seed, number of patients and as-of date give the\n"
    "same resources, byte for byte. Resources are loaded as `concerto import` loads them\n"
    "(validated, indexed). Progress goes to stderr, a summary to stdout. See docs/demo.md.\n"
    "\n"
    "  --db FILE|URI       the database (default: concerto.db; env CONCERTO_DB): an SQLite\n"
    "                      file, created when new, or a PostgreSQL URI\n"
    "                      postgresql://USER@HOST:PORT/DATABASE (an existing database; its\n"
    "                      tables are made when it has none); it gets the built-in protocols\n"
    "                      as `concerto init` loads them; one that holds resources besides\n"
    "                      protocol definitions is refused (exit status 2)\n"
    "  --patients N        how many patients, 1 to 1000000 (default: 1000)\n"
    "  --seed S            the seed, a number (default: 1)\n"
    "  --as-of DATE        the day the data is current at (default: today, UTC): dates are\n"
    "                      placed relative to it\n"
    "  --credentials FILE  write the sign-ins as username=password lines to FILE (mode 0600)\n"
    "  --print-credentials also print them on stdout\n"
    "  --ndjson DIR        keep the generated NDJSON files in DIR (created if missing)\n"
    "  --force             add the population to a database that already holds resources\n"
    "                      (existing demo accounts get new passwords)\n"
    "  --synchronous MODE  full (default), normal or off\n"
    "  --config FILE       read settings from FILE\n";

/* ---- progress ---------------------------------------------------------------------------- */

typedef struct {
    bool tty;
    int last_step; /* non-tty: the last quarter printed */
    double last_draw;
    struct timespec started;
    const char *phase;
    double from, to; /* the share of the whole bar this phase covers */
} progress_t;

static double now_seconds(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static void progress_phase(progress_t *p, const char *phase, double from, double to)
{
    p->phase = phase;
    p->from = from;
    p->to = to;
}

/* done of total in the current phase. */
static void progress_show(progress_t *p, size_t done, size_t total)
{
    double fraction = p->from + (p->to - p->from) * (total ? (double)done / (double)total : 1.0);
    int percent = (int)(fraction * 100.0);
    if (p->tty) {
        double t = now_seconds(&p->started);
        if (t - p->last_draw < 0.1 && fraction < 1.0)
            return;
        p->last_draw = t;
        char bar[41];
        int filled = (int)(fraction * 40.0);
        for (int i = 0; i < 40; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[40] = '\0';
        fprintf(stderr, "\r[%s] %3d%% %-28s", bar, percent, p->phase);
        fflush(stderr);
        return;
    }
    int step = percent / 25;
    if (step > p->last_step) {
        p->last_step = step;
        fprintf(stderr, "concerto demo: %d%% (%s)\n", step * 25, p->phase);
    }
}

static void progress_end(progress_t *p)
{
    if (p->tty)
        fputc('\n', stderr);
}

static void import_progress(void *ctx, size_t done, size_t total)
{
    progress_show(ctx, done, total);
}

/* ---- writing the files ------------------------------------------------------------------- */

#define MAX_FILES 32

typedef struct {
    const char *dir;
    char *names[MAX_FILES]; /* resource types */
    char *paths[MAX_FILES];
    FILE *files[MAX_FILES];
    size_t counts[MAX_FILES];
    size_t nfiles;
    char *recent_path;
    FILE *recent;
    size_t recent_count;
    buf_t line;
    bool failed;
} writer_t;

static FILE *open_output(writer_t *w, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "concerto demo: could not create \"%s\": %s\n", path, strerror(errno));
        w->failed = true;
    }
    return f;
}

static void write_line(writer_t *w, FILE *f, json_t *resource)
{
    buf_reset(&w->line);
    jv_dump(resource, &w->line);
    buf_addch(&w->line, '\n');
    if (f && fwrite(w->line.ptr, 1, w->line.len, f) != w->line.len)
        w->failed = true;
}

static void emit(void *ctx, demo_phase_t phase, json_t *resource)
{
    writer_t *w = ctx;
    if (w->failed)
        return;
    if (phase == DEMO_RECENT) {
        if (!w->recent)
            w->recent = open_output(w, w->recent_path);
        write_line(w, w->recent, resource);
        w->recent_count++;
        return;
    }
    const char *type = json_string_value(json_object_get(resource, "resourceType"));
    size_t i = 0;
    while (i < w->nfiles && strcmp(w->names[i], type) != 0)
        i++;
    if (i == w->nfiles) {
        if (w->nfiles == MAX_FILES)
            die("the demo population has more than %d resource types", MAX_FILES);
        w->names[i] = xstrdup(type);
        w->paths[i] = xasprintf("%s/%s.ndjson", w->dir, type);
        w->files[i] = open_output(w, w->paths[i]);
        w->nfiles++;
    }
    write_line(w, w->files[i], resource);
    w->counts[i]++;
}

static bool writer_close(writer_t *w)
{
    for (size_t i = 0; i < w->nfiles; i++)
        if (w->files[i] && fclose(w->files[i]) != 0)
            w->failed = true;
    if (w->recent && fclose(w->recent) != 0)
        w->failed = true;
    w->recent = NULL;
    memset(w->files, 0, sizeof(w->files));
    return !w->failed;
}

static void writer_release(writer_t *w, bool remove_files)
{
    for (size_t i = 0; i < w->nfiles; i++) {
        if (remove_files)
            unlink(w->paths[i]);
        free(w->names[i]);
        free(w->paths[i]);
    }
    if (remove_files) {
        if (w->recent_path)
            unlink(w->recent_path);
        rmdir(w->dir);
    }
    free(w->recent_path);
    buf_release(&w->line);
}

/*
 * Types imported in a second step, once the first has built the search indexes: writing a care
 * coordination team searches for the patient's other active team (repo/rules.c), and while a
 * large import has its indexes deferred each of those searches reads a whole index table, so
 * the teams would cost the square of the population. What refers to the teams goes with them
 * (each import checks that its references resolve).
 */
static bool after_indexes(const char *type)
{
    return strcmp(type, "CareTeam") == 0 || strcmp(type, "EpisodeOfCare") == 0 ||
           strcmp(type, "CarePlan") == 0;
}

/* ---- the outbox of the history ------------------------------------------------------------ */

typedef struct {
    size_t acknowledged;
    size_t claimed; /* by the last claim */
} drain_t;

static status_t drain_txn(store_txn_t *txn, void *arg, err_t *err)
{
    drain_t *d = arg;
    arena_t arena;
    arena_init(&arena);
    store_claim_t claim = {.consumer = "concerto-demo",
                           .max = 2000,
                           .now_us = clock_now_us(),
                           .lease_us = 60 * 1000000LL,
                           .max_attempts = 10};
    store_event_t *events;
    size_t n = 0;
    status_t rc = store_txn_outbox_claim(txn, &claim, &arena, &events, &n, err);
    for (size_t i = 0; !rc && i < n; i++)
        rc = store_txn_outbox_ack(txn, events[i].event_id, claim.consumer, err);
    d->claimed = rc ? 0 : n;
    arena_release(&arena);
    return rc;
}

/* Acknowledges every event waiting in the outbox: the imported history counts as worked. */
static status_t drain_outbox(const settings_t *s, size_t *out_n, err_t *err)
{
    store_options_t options;
    store_t *store;
    status_t rc = cli_store_options(s, &options, err);
    if (!rc)
        rc = store_open(settings_get(s, "db", CLI_DEFAULT_DB), &options, &store, err);
    if (rc)
        return rc;
    drain_t d = {0};
    do {
        rc = store_run(store, drain_txn, &d, err);
        d.acknowledged += d.claimed;
    } while (!rc && d.claimed > 0);
    store_close(store);
    *out_n = d.acknowledged;
    return rc;
}

/* ---- sign-ins ----------------------------------------------------------------------------- */

static status_t make_accounts(const settings_t *s, bool force, FILE *credentials, bool print,
                              size_t *out_n, err_t *err)
{
    store_options_t options;
    store_t *store = NULL;
    password_dict_t *dict = NULL;
    status_t rc = cli_store_options(s, &options, err);
    if (!rc)
        rc = store_open(settings_get(s, "db", CLI_DEFAULT_DB), &options, &store, err);
    if (!rc)
        rc = password_dict_load(PASSWORD_DICT_PATH, &dict, err);
    if (rc) {
        if (store)
            store_close(store);
        return rc;
    }
    auth_accounts_t accounts;
    auth_accounts_init(&accounts, store);
    accounts.policy.dict = dict;
    size_t n;
    const demo_account_t *list = demo_gen_accounts(&n);
    *out_n = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char bytes[12];
        char password[2 * sizeof(bytes) + 1];
        auth_random_bytes(bytes, sizeof(bytes));
        for (size_t k = 0; k < sizeof(bytes); k++)
            snprintf(password + 2 * k, 3, "%02x", bytes[k]);
        auth_account_new_t in = {.username = list[i].username,
                                 .role = list[i].role,
                                 .practitioner_id = list[i].practitioner_id,
                                 .patient_id = list[i].patient_id,
                                 .password = password,
                                 .password_len = strlen(password)};
        arena_t arena;
        arena_init(&arena);
        const char *id;
        rc = auth_account_create(&accounts, &in, clock_now_us(), &arena, &id, err);
        if (rc == ERR_CONFLICT && force) {
            err_reset(err);
            rc = auth_account_set_password(&accounts, list[i].username, password, strlen(password),
                                           clock_now_us(), err);
        }
        arena_release(&arena);
        if (!rc) {
            if (credentials)
                fprintf(credentials, "%s=%s\n", list[i].username, password);
            if (print)
                printf("%s=%s\n", list[i].username, password);
            (*out_n)++;
        }
        explicit_bzero(password, sizeof(password));
    }
    auth_accounts_release(&accounts);
    password_dict_free(dict);
    store_close(store);
    return rc;
}

/* ---- the command -------------------------------------------------------------------------- */

static bool flag_set(const settings_t *s, const char *name)
{
    const char *v = settings_get(s, name, NULL);
    return v && strcmp(v, "false") != 0;
}

static bool parse_count(const char *text, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    if (!*text || *text == '-' || *text == '+')
        return false;
    unsigned long long v = strtoull(text, &end, 10);
    if (*end || errno || v > max)
        return false;
    *out = v;
    return true;
}

static int usage_error(const char *message, const char *value)
{
    if (value)
        fprintf(stderr, "concerto demo: %s, not \"%s\" (see --help)\n", message, value);
    else
        fprintf(stderr, "concerto demo: %s (see --help)\n", message);
    return 2;
}

/* How many resources the database of the "db" setting holds, besides the definitions of the
 * protocols (`concerto init` loads the built-in ones); creates it when new. */
static status_t count_resources(const settings_t *s, int64_t *out_n, err_t *err)
{
    store_options_t options;
    store_t *store;
    store_conn_t *conn;
    status_t rc = cli_store_options(s, &options, err);
    if (!rc)
        rc = store_open(settings_get(s, "db", CLI_DEFAULT_DB), &options, &store, err);
    if (rc)
        return rc;
    if (!(rc = store_connect(store, &conn, err))) {
        int64_t plans = 0, activities = 0;
        rc = store_count(conn, NULL, out_n, err);
        if (!rc)
            rc = store_count(conn, "PlanDefinition", &plans, err);
        if (!rc)
            rc = store_count(conn, "ActivityDefinition", &activities, err);
        *out_n -= plans + activities;
        store_disconnect(conn);
    }
    store_close(store);
    return rc;
}

/* Loads the built-in protocols as `concerto init` does (nothing when they are there). */
static status_t load_protocols(const settings_t *s, err_t *err)
{
    store_options_t options;
    store_t *store;
    status_t rc = cli_store_options(s, &options, err);
    if (!rc)
        rc = cli_open_store(s, &options, &store, err);
    if (rc)
        return rc;
    care_builtin_report_t report;
    rc = care_builtin_load(store, &report, err);
    cli_close_store(store, true);
    return rc;
}

int cli_demo(int argc, char **argv)
{
    static const char *const known[] = {"db",     "patients",    "seed",        "as-of",
                                        "ndjson", "credentials", "synchronous", NULL};
    static const char *const switches[] = {"force", "print-credentials", NULL};
    settings_t s;
    err_t err = ERR_INIT;
    writer_t w = {0};
    bool remove_files = false;
    FILE *credentials = NULL;
    char *tmp_template = NULL;
    int status = cli_settings("demo", help, argc, argv, known, switches, &s);
    if (status >= 0)
        goto out_settings;
    status = 2;
    if (s.nargs > 0) {
        status = usage_error("unexpected argument", s.args[0]);
        goto out_settings;
    }
    unsigned long long patients, seed;
    const char *text = settings_get(&s, "patients", "1000");
    if (!parse_count(text, 1000000, &patients) || patients < 1) {
        status = usage_error("--patients must be a number from 1 to 1000000", text);
        goto out_settings;
    }
    text = settings_get(&s, "seed", "1");
    if (!parse_count(text, UINT64_MAX, &seed)) {
        status = usage_error("--seed must be a non-negative number", text);
        goto out_settings;
    }
    int64_t as_of;
    text = settings_get(&s, "as-of", NULL);
    if (text && !demo_parse_date(text, &as_of)) {
        status = usage_error("--as-of must be a date YYYY-MM-DD", text);
        goto out_settings;
    }
    if (!text)
        as_of = clock_real_us() / 1000000 / 86400;
    bool force = flag_set(&s, "force");
    const char *db = settings_get(&s, "db", CLI_DEFAULT_DB);
    const char *credentials_path = settings_get(&s, "credentials", NULL);
    const char *keep = settings_get(&s, "ndjson", NULL);

    /* an empty database only, unless asked */
    int64_t existing = 0;
    if (count_resources(&s, &existing, &err)) {
        status = 1;
        goto out;
    }
    if (existing > 0 && !force) {
        fprintf(stderr,
                "concerto demo: \"%s\" already holds %lld resources; the demo population goes "
                "into an empty database (or add --force to add it anyway)\n",
                db, (long long)existing);
        goto out;
    }
    if (load_protocols(&s, &err)) {
        status = 1;
        goto out;
    }
    if (credentials_path) {
        int fd = open(credentials_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || fchmod(fd, 0600) != 0 || !(credentials = fdopen(fd, "w"))) {
            fprintf(stderr, "concerto demo: could not write \"%s\": %s\n", credentials_path,
                    strerror(errno));
            if (fd >= 0)
                close(fd);
            status = 1;
            goto out;
        }
    }

    status = 1;
    const char *tmpdir = getenv("TMPDIR");
    tmp_template = xasprintf("%s/concerto-demo-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (keep) {
        if (mkdir(keep, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "concerto demo: could not create \"%s\": %s\n", keep, strerror(errno));
            goto out;
        }
        w.dir = keep;
    } else {
        w.dir = mkdtemp(tmp_template);
        if (!w.dir) {
            fprintf(stderr, "concerto demo: could not make a temporary directory: %s\n",
                    strerror(errno));
            goto out;
        }
        remove_files = true;
    }
    w.recent_path = xasprintf("%s/recent.ndjson", w.dir);
    buf_init(&w.line, 0);

    progress_t progress = {.tty = isatty(STDERR_FILENO), .last_step = 0};
    clock_gettime(CLOCK_MONOTONIC, &progress.started);
    if (!progress.tty)
        fprintf(stderr, "concerto demo: 0%% (generating %llu patients)\n", patients);

    /* generate */
    demo_gen_t g;
    demo_gen_init(&g, seed, as_of, (size_t)patients);
    progress_phase(&progress, "generating", 0.0, 0.25);
    demo_gen_staff(&g, emit, &w);
    for (size_t i = 0; i < g.patients && !w.failed; i++) {
        demo_gen_patient(&g, i, emit, &w);
        if (i % 64 == 0)
            progress_show(&progress, i, g.patients);
    }
    progress_show(&progress, g.patients, g.patients);
    double generated_at = now_seconds(&progress.started);
    if (!writer_close(&w)) {
        progress_end(&progress);
        fprintf(stderr, "concerto demo: could not write the NDJSON files in \"%s\"\n", w.dir);
        goto out;
    }

    /* load the history (the care teams and what refers to them last), mark its events as
       worked, then load the recent events */
    char *first[MAX_FILES], *second[MAX_FILES];
    int nfirst = 0, nsecond = 0;
    for (size_t i = 0; i < w.nfiles; i++) {
        if (after_indexes(w.names[i]))
            second[nsecond++] = w.paths[i];
        else
            first[nfirst++] = w.paths[i];
    }
    cli_import_hooks_t hooks = {.progress = import_progress, .ctx = &progress, .quiet = true};
    progress_phase(&progress, "loading", 0.25, 0.85);
    int rc = cli__import_files(&s, first, nfirst, &hooks);
    size_t written = hooks.written;
    if (rc == 0 && nsecond > 0) {
        progress_phase(&progress, "loading care teams", 0.85, 0.95);
        rc = cli__import_files(&s, second, nsecond, &hooks);
        written += hooks.written;
    }
    size_t drained = 0;
    if (rc == 0 && drain_outbox(&s, &drained, &err))
        rc = 1;
    if (rc == 0 && w.recent_count > 0) {
        progress_phase(&progress, "loading recent events", 0.95, 0.97);
        rc = cli__import_files(&s, &w.recent_path, 1, &hooks);
        written += hooks.written;
    }
    size_t naccounts = 0;
    if (rc == 0) {
        progress_phase(&progress, "making the sign-ins", 0.97, 1.0);
        progress_show(&progress, 0, 1);
        if (make_accounts(&s, force, credentials, flag_set(&s, "print-credentials"), &naccounts,
                          &err))
            rc = 1;
        else
            progress_show(&progress, 1, 1);
    }
    progress_end(&progress);
    if (rc != 0) {
        fprintf(stderr, "concerto demo: the population was not loaded completely into \"%s\"\n",
                db);
        goto out;
    }
    double seconds = now_seconds(&progress.started);
    printf("demo population of %llu patients (seed %llu) loaded into %s: %zu resources in "
           "%.1f s (generated in %.1f s)\n",
           patients, seed, db, written, seconds, generated_at);
    for (size_t i = 0; i < w.nfiles; i++)
        printf("  %-28s %zu\n", w.names[i], w.counts[i]);
    printf("  %-28s %zu (recent Encounters, left for the engine; %zu earlier events marked "
           "as worked)\n",
           "recent events", w.recent_count, drained);
    printf("%zu sign-ins", naccounts);
    if (credentials_path)
        printf(", passwords in %s", credentials_path);
    else if (!flag_set(&s, "print-credentials"))
        printf(" (passwords not kept: set them with concerto user reset-password)");
    printf("\n");
    if (keep)
        printf("NDJSON files in %s\n", keep);
    status = 0;
out:
    if (err.nissues)
        cli_report("demo", &err);
    err_release(&err);
    if (credentials && fclose(credentials) != 0 && status == 0) {
        fprintf(stderr, "concerto demo: could not write \"%s\"\n", credentials_path);
        status = 1;
    }
    if (w.dir)
        writer_release(&w, remove_files);
    free(tmp_template);
out_settings:
    settings_release(&s);
    return status;
}
