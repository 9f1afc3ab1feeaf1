/*
 * hl7.c - `concerto hl7 list|show|reprocess`: the HL7 v2 messages received over MLLP, for an
 * admin (docs/hl7.md, "Stored messages"). list searches them, newest first; show prints one
 * with its text and ACK; reprocess applies stored messages to the record again (one, or every
 * message in a status), as the server's feed does.
 * Exit status: 0 done, 1 the work failed (or no such message), 2 a usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/calendar.h"
#include "base/jv.h"
#include "base/mem.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "fhir/search.h"
#include "hl7/ingest.h"

#define DB_HELP                                                                                 \
    "  --db FILE        the SQLite database file (default: concerto.db; env CONCERTO_DB), or\n" \
    "                   a PostgreSQL URI postgresql://USER@HOST:PORT/DATABASE\n"                \
    "  --config FILE    read settings from FILE (lines \"name = value\"; env CONCERTO_CONFIG)\n"

static const char hl7_help[] =
    "usage: concerto hl7 SUBCOMMAND [options]   (concerto hl7 SUBCOMMAND --help for more)\n"
    "\n"
    "The HL7 v2 messages the server received over MLLP (serve --mllp). Each is stored as it\n"
    "came, before anything is done with it, with its status: received (not applied yet),\n"
    "processed, error (the record refused it: the reason says why) or rejected (unreadable,\n"
    "or a type, event or version not read here).\n"
    "\n"
    "subcommands:\n"
    "  list        the messages, newest first, by status, type, sender, patient, time\n"
    "  show        one message: its text, the ACK sent and what became of it\n"
    "  reprocess   apply stored messages to the record again\n";

static const char list_help[] =
    "usage: concerto hl7 list [--status S] [--type T] [--sender S] [--patient P]\n"
    "                         [--since DATE] [--until DATE] [--limit N] [--db FILE]\n"
    "\n"
    "Prints one line per message, newest first: its id, when it came, its status, type\n"
    "(ADT^A03), sender (application|facility), control id, the patient it was about, and\n"
    "the reason of an error.\n"
    "\n"
    "  --status S       received, processed, error or rejected\n"
    "  --type T         ADT, or ADT^A03\n"
    "  --sender S       APPLICATION|FACILITY as list shows it\n"
    "  --patient P      Patient/ID\n"
    "  --since DATE     received on or after DATE (a FHIR date or instant)\n"
    "  --until DATE     received on or before DATE\n"
    "  --limit N        at most N messages (default: 100)\n" DB_HELP;

static const char show_help[] =
    "usage: concerto hl7 show ID [--db FILE] [--config FILE]\n"
    "\n"
    "Prints message ID (as list shows it): what became of it, then its text and the ACK\n"
    "sent, segments one per line.\n"
    "\n" DB_HELP;

static const char reprocess_help[] =
    "usage: concerto hl7 reprocess ID...|--status S [--db FILE] [--config FILE]\n"
    "\n"
    "Applies the messages ID... (or every message in status S, oldest first) to the record\n"
    "again, as if they came now: a message that was refused (error) once what it needed is\n"
    "fixed, or one left received by a failure of the database. Its status, reason and ACK\n"
    "are replaced (the ACK a redelivery gets from then on). Applying a processed message\n"
    "again changes nothing that it already set. Rejected messages cannot be reprocessed.\n"
    "Prints one line per message with its new status.\n"
    "\n"
    "  --status S       every message in status S (received or error)\n"
    "  --calendar-timezone ZONE\n"
    "                   the zone of times without an offset (default: America/New_York;\n"
    "                   as serve)\n" DB_HELP;

static void print_line(const store_hl7_message_t *m)
{
    char when[40];
    cli_format_utc(m->received_us, when, sizeof(when));
    printf("%lld %s %s %s %s %s %s%s%s\n", (long long)m->id, when, m->status,
           *m->type ? m->type : "-", m->sender, *m->control_id ? m->control_id : "-",
           m->patient ? m->patient : "-", m->reason ? " " : "", m->reason ? m->reason : "");
}

static bool parse_id(const char *s, int64_t *out)
{
    char *end;
    long long id = strtoll(s, &end, 10);
    if (!*s || *end || id <= 0)
        return false;
    *out = id;
    return true;
}

static int hl7_list(int argc, char **argv)
{
    static const char *const known[] = {"db",    "status", "type",  "sender", "patient",
                                        "since", "until",  "limit", NULL};
    settings_t s = {0};
    store_t *store = NULL;
    store_conn_t *conn = NULL;
    err_t err = ERR_INIT;
    arena_t arena;
    arena_init(&arena);
    int status = cli_start("hl7 list", list_help, argc, argv, known, NULL, &s, false, &store, &err);
    if (status >= 0)
        goto out;
    status = 2;
    store_hl7_query_t q = {.status = settings_get(&s, "status", NULL),
                           .type = settings_get(&s, "type", NULL),
                           .sender = settings_get(&s, "sender", NULL),
                           .patient = settings_get(&s, "patient", NULL)};
    const char *since = settings_get(&s, "since", NULL), *until = settings_get(&s, "until", NULL);
    int64_t high, limit = 100;
    const char *limit_text = settings_get(&s, "limit", NULL);
    if (s.nargs) {
        fprintf(stderr, "concerto hl7 list: unexpected argument \"%s\" (see --help)\n", s.args[0]);
        goto out;
    }
    if ((since && !fhir_date_range(since, strlen(since), &q.from_us, &high, NULL, NULL)) ||
        (until && !fhir_date_range(until, strlen(until), &high, &q.to_us, NULL, NULL))) {
        fprintf(stderr, "concerto hl7 list: --since and --until take a date or an instant\n");
        goto out;
    }
    if (limit_text && (!parse_id(limit_text, &limit) || limit > 100000)) {
        fprintf(stderr, "concerto hl7 list: --limit takes a number from 1 to 100000\n");
        goto out;
    }
    status = 1;
    if (store_connect(store, &conn, &err)) {
        cli_report("hl7 list", &err);
        goto out;
    }
    for (int64_t shown = 0; shown < limit;) {
        q.count = (size_t)(limit - shown < 500 ? limit - shown : 500);
        store_hl7_message_t *rows;
        size_t n;
        if (store_hl7_list(conn, &q, &arena, &rows, &n, &err)) {
            cli_report("hl7 list", &err);
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            print_line(&rows[i]);
        shown += (int64_t)n;
        if (n < q.count)
            break;
        q.before_id = rows[n - 1].id;
    }
    status = 0;
out:
    if (conn)
        store_disconnect(conn);
    if (store)
        store_close(store);
    arena_release(&arena);
    err_release(&err);
    settings_release(&s);
    return status;
}

/* Prints text with its segments one per line; bytes that are not UTF-8 (a message in ISO
 * 8859-1, say) as \xHH. */
static void print_segments(const char *text, size_t len)
{
    bool utf8 = jv_utf8_valid(text, len);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\r')
            putchar('\n');
        else if ((!utf8 && c >= 0x80) || (c < 0x20 && c != '\n' && c != '\t'))
            printf("\\x%02X", c);
        else
            putchar(c);
    }
    if (len && text[len - 1] != '\r' && text[len - 1] != '\n')
        putchar('\n');
}

static int hl7_show(int argc, char **argv)
{
    static const char *const known[] = {"db", NULL};
    settings_t s = {0};
    store_t *store = NULL;
    store_conn_t *conn = NULL;
    err_t err = ERR_INIT;
    arena_t arena;
    arena_init(&arena);
    int status = cli_start("hl7 show", show_help, argc, argv, known, NULL, &s, false, &store, &err);
    if (status >= 0)
        goto out;
    int64_t id;
    if (s.nargs != 1 || !parse_id(s.args[0], &id)) {
        fprintf(stderr, "concerto hl7 show: give one message id, as list shows it\n");
        status = 2;
        goto out;
    }
    status = 1;
    store_hl7_message_t m;
    if (store_connect(store, &conn, &err) || store_hl7_get(conn, id, &arena, &m, &err)) {
        cli_report("hl7 show", &err);
        goto out;
    }
    print_line(&m);
    char when[40];
    cli_format_utc(m.processed_us, when, sizeof(when));
    printf("peer: %s\nprocessed: %s (attempts: %lld)\nencounter: %s\n\n", m.peer, when,
           (long long)m.attempts, m.encounter ? m.encounter : "-");
    print_segments(m.text, m.text_len);
    if (m.ack) {
        printf("\nACK:\n");
        print_segments(m.ack, strlen(m.ack));
    }
    status = 0;
out:
    if (conn)
        store_disconnect(conn);
    if (store)
        store_close(store);
    arena_release(&arena);
    err_release(&err);
    settings_release(&s);
    return status;
}

static int hl7_reprocess(int argc, char **argv)
{
    static const char *const known[] = {"db", "status", "calendar-timezone", NULL};
    settings_t s = {0};
    store_t *store = NULL;
    store_conn_t *conn = NULL;
    hl7_ingest_t *ingest = NULL;
    calendar_t *calendar = NULL;
    err_t err = ERR_INIT;
    int status =
        cli_start("hl7 reprocess", reprocess_help, argc, argv, known, NULL, &s, true, &store, &err);
    if (status >= 0)
        goto out;
    status = 2;
    const char *which = settings_get(&s, "status", NULL);
    if ((which != NULL) == (s.nargs > 0)) {
        fprintf(stderr, "concerto hl7 reprocess: give message ids, or --status (see --help)\n");
        goto out;
    }
    if (which && strcmp(which, STORE_HL7_RECEIVED) != 0 && strcmp(which, STORE_HL7_ERROR) != 0) {
        fprintf(stderr, "concerto hl7 reprocess: --status takes received or error\n");
        goto out;
    }
    size_t nids = (size_t)s.nargs, cap = s.nargs ? (size_t)s.nargs : 16;
    int64_t *ids = xcalloc(cap, sizeof(*ids));
    for (size_t i = 0; i < nids; i++)
        if (!parse_id(s.args[i], &ids[i])) {
            fprintf(stderr, "concerto hl7 reprocess: \"%s\" is not a message id\n", s.args[i]);
            free(ids);
            goto out;
        }
    status = 1;
    if (calendar_new(settings_get(&s, "calendar-timezone", CALENDAR_DEFAULT_ZONE),
                     CALENDAR_DEFAULT_WORKING_DAYS, "none", &calendar, &err) ||
        store_connect(store, &conn, &err)) {
        cli_report("hl7 reprocess", &err);
        free(ids);
        goto out;
    }
    if (which) {
        /* the messages in that status now, oldest first */
        store_hl7_query_t q = {.status = which, .count = 500};
        for (;;) {
            arena_t arena;
            arena_init(&arena);
            store_hl7_message_t *rows;
            size_t n = 0;
            status_t rc = store_hl7_list(conn, &q, &arena, &rows, &n, &err);
            for (size_t i = 0; !rc && i < n; i++) {
                if (nids == cap)
                    ids = xrealloc(ids, (cap *= 2) * sizeof(*ids));
                ids[nids++] = rows[i].id;
            }
            if (n)
                q.before_id = rows[n - 1].id;
            arena_release(&arena);
            if (rc) {
                cli_report("hl7 reprocess", &err);
                free(ids);
                goto out;
            }
            if (n < q.count)
                break;
        }
        for (size_t i = 0; i < nids / 2; i++) {
            int64_t t = ids[i];
            ids[i] = ids[nids - 1 - i];
            ids[nids - 1 - i] = t;
        }
    }
    ingest = hl7_ingest_new(store, calendar_zone(calendar));
    size_t failed = 0, done = 0;
    for (size_t i = 0; i < nids; i++) {
        arena_t arena;
        arena_init(&arena);
        store_hl7_message_t m;
        if (hl7_ingest_reprocess(ingest, conn, ids[i], &arena, &m, &err)) {
            fprintf(stderr, "concerto hl7 reprocess: %lld: %s\n", (long long)ids[i],
                    err_message(&err));
            err_reset(&err);
            failed++;
        } else {
            print_line(&m);
            done++;
        }
        arena_release(&arena);
    }
    free(ids);
    if (failed)
        printf("reprocessed %zu message(s), %zu failed\n", done, failed);
    else
        printf("reprocessed %zu message(s)\n", done);
    status = failed ? 1 : 0;
out:
    hl7_ingest_free(ingest);
    if (conn)
        store_disconnect(conn);
    if (store)
        cli_close_store(store, false);
    calendar_free(calendar);
    err_release(&err);
    settings_release(&s);
    return status;
}

int cli_hl7(int argc, char **argv)
{
    static const cli_subcommand_t subs[] = {
        {"list", hl7_list}, {"show", hl7_show}, {"reprocess", hl7_reprocess}};
    return cli_dispatch("hl7", hl7_help, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
