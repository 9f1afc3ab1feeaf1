/*
 * audit.c - `concerto audit verify` and `concerto audit export`: the auditor's commands over
 * the audit trail (auth/audit.h, docs/security.md "Audit trail").
 *
 * verify walks the sealed records in seq order and checks the hash chain; its last line (the
 * number of records, the last seq and hash) is what to anchor outside the database and give
 * back with --expect-last. export writes the records as CSV (RFC 4180), oldest first.
 * Exit status: 0 done (the trail intact), 1 the trail is not intact or the work failed, 2 a
 * usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/audit.h"
#include "base/buf.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "fhir/search.h"

#define DB_HELP                                                                                 \
    "  --db FILE        the SQLite database file (default: concerto.db; env CONCERTO_DB), or\n" \
    "                   a PostgreSQL URI postgresql://USER@HOST:PORT/DATABASE\n"                \
    "  --config FILE    read settings from FILE (lines \"name = value\"; env CONCERTO_CONFIG)\n"

static const char audit_help[] =
    "usage: concerto audit SUBCOMMAND [options]   (concerto audit SUBCOMMAND --help for more)\n"
    "\n"
    "Checks and exports the audit trail: every read, search and write of health data, every\n"
    "failed request and every login, sealed into a hash chain.\n"
    "\n"
    "subcommands:\n"
    "  verify   check that no record was changed, removed or reordered\n"
    "  export   write the records as CSV\n";

static const char verify_help[] =
    "usage: concerto audit verify [--db FILE] [--expect-last HASH] [--config FILE]\n"
    "\n"
    "Walks the sealed audit records in order and checks that each record's hash follows from\n"
    "its content and the record before it, that no sequence number is missing or out of\n"
    "order, and that the trail ends on the chain head the database keeps. On success prints\n"
    "how many records verified and the last sequence number and hash: keep that hash\n"
    "somewhere else (a log, a ticket, another system) and give it back with --expect-last to\n"
    "find the newest records removed or rewritten together with the head. Exit status 0 when\n"
    "the trail is intact, 1 naming the first bad record and what is wrong with it.\n"
    "Records written in the last moments may not be sealed yet; they are checked next time.\n"
    "\n"
    "  --expect-last HASH  the hash (64 hex digits) a previous verify printed, or a later\n"
    "                   one: the trail must end on it\n" DB_HELP;

static const char export_help[] =
    "usage: concerto audit export [--db FILE] [--from DATE] [--to DATE] [--patient ID]\n"
    "                             [--user NAME] [--output FILE] [--config FILE]\n"
    "\n"
    "Writes the audit records as CSV (RFC 4180, a header row, CRLF line ends), oldest first:\n"
    "seq, time (ISO 8601, UTC), user, role, client, patient, action, type, id, query,\n"
    "outcome, source, detail, hash. seq and hash are empty for a record not sealed yet.\n"
    "\n"
    "  --from DATE      records at or after DATE (2026-03, 2026-03-01 or 2026-03-01T08:00:00Z)\n"
    "  --to DATE        records up to the end of DATE (2026-03 includes all of March)\n"
    "  --patient ID     records about Patient ID\n"
    "  --user NAME      records of the user NAME\n"
    "  --output FILE    write to FILE instead of stdout\n" DB_HELP;

static int start(const char *name, const char *help, int argc, char **argv,
                 const char *const *known, settings_t *s, store_t **store, store_conn_t **conn,
                 err_t *err)
{
    int status = cli_settings(name, help, argc, argv, known, NULL, s);
    if (status >= 0)
        return status;
    if (s->nargs) {
        fprintf(stderr, "concerto %s: unexpected argument \"%s\" (see --help)\n", name, s->args[0]);
        return 2;
    }
    store_options_t options;
    store_options_init(&options);
    options.create = false;
    if (store_open(settings_get(s, "db", CLI_DEFAULT_DB), &options, store, err) ||
        store_connect(*store, conn, err)) {
        cli_report(name, err);
        return 1;
    }
    return -1;
}

static void finish(settings_t *s, store_t *store, store_conn_t *conn, err_t *err)
{
    if (conn)
        store_disconnect(conn);
    if (store)
        store_close(store);
    err_release(err);
    settings_release(s);
}

static int audit_verify(int argc, char **argv)
{
    static const char *const known[] = {"db", "expect-last", NULL};
    settings_t s = {0};
    store_t *store = NULL;
    store_conn_t *conn = NULL;
    err_t err = ERR_INIT;
    int status = start("audit verify", verify_help, argc, argv, known, &s, &store, &conn, &err);
    if (status >= 0)
        goto out;
    const char *expect = settings_get(&s, "expect-last", NULL);
    unsigned char expected[CHAIN_HASH_SIZE];
    if (expect && !auth_audit_hex_parse(expect, expected)) {
        fprintf(stderr,
                "concerto audit verify: --expect-last must be a hash of 64 hex digits, not "
                "\"%s\"\n",
                expect);
        status = 2;
        goto out;
    }
    chain_report_t report;
    if (auth_audit_verify(conn, expect ? expected : NULL, &report, &err)) {
        cli_report("audit verify", &err);
        status = 1;
        goto out;
    }
    buf_t text = BUF_INIT;
    chain_describe(&report, &text);
    char hex[2 * CHAIN_HASH_SIZE + 1];
    auth_audit_hex(report.last_hash, hex);
    if (report.fault == CHAIN_INTACT) {
        printf("%s\nlast record: %lld\nlast hash: %s\n", text.ptr, (long long)report.checked,
               report.checked ? hex : "none");
        status = 0;
    } else {
        fprintf(stderr, "concerto audit verify: %s\n", text.ptr);
        fprintf(stderr,
                "concerto audit verify: %lld records verified before it, the last "
                "with hash %s\n",
                (long long)report.checked, hex);
        status = 1;
    }
    buf_release(&text);
out:
    finish(&s, store, conn, &err);
    return status;
}

/* One CSV field: quoted when it holds a comma, a quote or a line end (RFC 4180). */
static void csv_field(FILE *out, const char *s, bool last)
{
    if (s && strpbrk(s, ",\"\r\n")) {
        fputc('"', out);
        for (const char *p = s; *p; p++) {
            if (*p == '"')
                fputc('"', out);
            fputc(*p, out);
        }
        fputc('"', out);
    } else if (s) {
        fputs(s, out);
    }
    fputs(last ? "\r\n" : ",", out);
}

static void csv_row(FILE *out, const store_audit_row_t *r)
{
    char seq[24] = "", when[80];
    if (r->seq)
        snprintf(seq, sizeof(seq), "%lld", (long long)r->seq);
    time_t secs = (time_t)(r->time_us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long long)(r->time_us % 1000000));
    const char *fields[] = {seq,        when,      r->user,   r->role,        r->client,
                            r->patient, r->action, r->type,   r->resource_id, r->query,
                            r->outcome, r->source, r->detail, r->hash};
    size_t n = sizeof(fields) / sizeof(fields[0]);
    for (size_t i = 0; i < n; i++)
        csv_field(out, fields[i], i + 1 == n);
}

static int audit_export(int argc, char **argv)
{
    static const char *const known[] = {"db", "from", "to", "patient", "user", "output", NULL};
    settings_t s = {0};
    store_t *store = NULL;
    store_conn_t *conn = NULL;
    err_t err = ERR_INIT;
    FILE *out = NULL;
    int status = start("audit export", export_help, argc, argv, known, &s, &store, &conn, &err);
    if (status >= 0)
        goto out;
    store_audit_query_t q = {.from_us = INT64_MIN,
                             .to_us = INT64_MAX,
                             .patient = settings_get(&s, "patient", NULL),
                             .user = settings_get(&s, "user", NULL),
                             .oldest_first = true,
                             .count = 1000};
    const char *from = settings_get(&s, "from", NULL), *to = settings_get(&s, "to", NULL);
    int64_t lo, hi;
    if (from) {
        if (!fhir_date_range(from, strlen(from), &lo, &hi, NULL, NULL)) {
            fprintf(stderr,
                    "concerto audit export: --from must be a date such as 2026-03-01 or "
                    "a time such as such as 2026-03-01T08:00:00Z, not \"%s\"\n",
                    from);
            status = 2;
            goto out;
        }
        q.from_us = lo;
    }
    if (to) {
        if (!fhir_date_range(to, strlen(to), &lo, &hi, NULL, NULL)) {
            fprintf(stderr,
                    "concerto audit export: --to must be a date such as 2026-03-31 or "
                    "a time such as such as 2026-03-31T18:00:00Z, not \"%s\"\n",
                    to);
            status = 2;
            goto out;
        }
        q.to_us = hi;
    }
    const char *path = settings_get(&s, "output", NULL);
    out = path ? fopen(path, "w") : stdout;
    if (!out) {
        fprintf(stderr, "concerto audit export: could not write \"%s\"\n", path);
        status = 1;
        goto out;
    }
    fputs("seq,time,user,role,client,patient,action,type,id,query,outcome,source,detail,hash\r\n",
          out);
    for (;;) {
        arena_t arena;
        arena_init(&arena);
        store_audit_row_t *rows;
        size_t n;
        status_t rc = store_audit_search(conn, &q, &arena, &rows, &n, &err);
        for (size_t i = 0; !rc && i < n; i++)
            csv_row(out, &rows[i]);
        if (n)
            q.after_id = rows[n - 1].id;
        arena_release(&arena);
        if (rc) {
            cli_report("audit export", &err);
            status = 1;
            goto out;
        }
        if (n < q.count)
            break;
    }
    status = 0;
    if (fflush(out) != 0 || ferror(out)) {
        fprintf(stderr, "concerto audit export: could not write \"%s\"\n", path ? path : "stdout");
        status = 1;
    }
out:
    if (out && out != stdout)
        fclose(out);
    finish(&s, store, conn, &err);
    return status;
}

int cli_audit(int argc, char **argv)
{
    static const cli_subcommand_t subs[] = {{"verify", audit_verify}, {"export", audit_export}};
    return cli_dispatch("audit", audit_help, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
