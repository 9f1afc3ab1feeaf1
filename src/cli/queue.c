/*
 * queue.c - `concerto queue list` and `concerto queue replay`: the work queue for an admin
 * (docs/operations.md, "The work queue"). list shows how many outbox events wait, are being
 * handled and are dead, and each dead event; replay makes dead events available again with
 * their attempts reset, for the workers of the servers on the database to handle.
 * Exit status: 0 done, 1 the work failed (or no such dead event), 2 a usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "cli/commands.h"
#include "cli/common.h"

#define DB_HELP                                                                                 \
    "  --db FILE        the SQLite database file (default: concerto.db; env CONCERTO_DB), or\n" \
    "                   a PostgreSQL URI postgresql://USER@HOST:PORT/DATABASE\n"                \
    "  --config FILE    read settings from FILE (lines \"name = value\"; env CONCERTO_CONFIG)\n"

static const char queue_help[] =
    "usage: concerto queue SUBCOMMAND [options]   (concerto queue SUBCOMMAND --help for more)\n"
    "\n"
    "The work queue: every change makes an outbox event that the servers' workers handle.\n"
    "An event whose handling failed ten times is dead: it waits for an admin to look at the\n"
    "error, fix the cause and replay it.\n"
    "\n"
    "subcommands:\n"
    "  list     how many events wait, are being handled and are dead; the dead ones\n"
    "  replay   make dead events available again\n";

static const char list_help[] =
    "usage: concerto queue list [--db FILE] [--config FILE]\n"
    "\n"
    "Prints the number of outbox events waiting, being handled (a worker's claim holds) and\n"
    "dead, then one line per dead event, oldest first: its id, the version it is about\n"
    "(TYPE/ID/_history/VERSION) and what happened to it, the attempts, when the version\n"
    "was written, and the last error.\n"
    "\n" DB_HELP;

static const char replay_help[] =
    "usage: concerto queue replay ID|--all [--db FILE] [--config FILE]\n"
    "\n"
    "Makes the dead outbox event ID (as list shows it), or with --all every dead event,\n"
    "available again with its attempts reset: a running server's worker handles it within\n"
    "seconds. The last error stays until the event is handled.\n"
    "\n"
    "  --all            every dead event\n" DB_HELP;

static int queue_list(int argc, char **argv)
{
    static const char *const known[] = {"db", NULL};
    settings_t s = {0};
    store_t *store = NULL;
    store_conn_t *conn = NULL;
    err_t err = ERR_INIT;
    int status =
        cli_start("queue list", list_help, argc, argv, known, NULL, &s, false, &store, &err);
    if (status >= 0)
        goto out;
    status = 1;
    if (s.nargs) {
        fprintf(stderr, "concerto queue list: unexpected argument \"%s\" (see --help)\n",
                s.args[0]);
        status = 2;
        goto out;
    }
    store_outbox_stats_t stats;
    if (store_connect(store, &conn, &err) ||
        store_outbox_stats(conn, clock_now_us(), &stats, &err)) {
        cli_report("queue list", &err);
        goto out;
    }
    printf("pending: %lld\nclaimed: %lld\ndead: %lld\n", (long long)stats.pending,
           (long long)stats.claimed, (long long)stats.dead);
    int64_t after = 0;
    for (;;) {
        arena_t arena;
        arena_init(&arena);
        store_event_t *events;
        size_t n;
        status_t rc = store_outbox_dead(conn, after, 500, &arena, &events, &n, &err);
        for (size_t i = 0; !rc && i < n; i++) {
            const store_event_t *e = &events[i];
            char when[80];
            cli_format_utc(e->time_us, when, sizeof(when));
            printf("%lld %s/%s/_history/%lld %s attempts=%lld %s %s\n", (long long)e->event_id,
                   e->type, e->id, (long long)e->version, store_event_action_name(e->action),
                   (long long)e->attempts, when, e->last_error ? e->last_error : "");
            after = e->event_id;
        }
        arena_release(&arena);
        if (rc) {
            cli_report("queue list", &err);
            goto out;
        }
        if (n < 500)
            break;
    }
    status = 0;
out:
    if (conn)
        store_disconnect(conn);
    if (store)
        store_close(store);
    err_release(&err);
    settings_release(&s);
    return status;
}

typedef struct {
    int64_t event_id; /* 0: every dead event */
    int64_t count;
} replay_t;

static status_t replay_txn(store_txn_t *txn, void *arg, err_t *err)
{
    replay_t *r = arg;
    if (!r->event_id)
        return store_txn_outbox_replay_dead(txn, clock_now_us(), &r->count, err);
    r->count = 1;
    return store_txn_outbox_replay(txn, r->event_id, clock_now_us(), err);
}

static int queue_replay(int argc, char **argv)
{
    static const char *const known[] = {"db", NULL};
    static const char *const switches[] = {"all", NULL};
    settings_t s = {0};
    store_t *store = NULL;
    err_t err = ERR_INIT;
    int status = cli_start("queue replay", replay_help, argc, argv, known, switches, &s, false,
                           &store, &err);
    if (status >= 0)
        goto out;
    bool all = settings_get(&s, "all", NULL) != NULL;
    replay_t r = {0};
    if (all == (s.nargs == 1) || s.nargs > 1) {
        fprintf(stderr, "concerto queue replay: give one event id, or --all (see --help)\n");
        status = 2;
        goto out;
    }
    if (!all) {
        char *end;
        long long id = strtoll(s.args[0], &end, 10);
        if (*end || id <= 0) {
            fprintf(stderr,
                    "concerto queue replay: \"%s\" is not an event id (a number, as queue "
                    "list shows it)\n",
                    s.args[0]);
            status = 2;
            goto out;
        }
        r.event_id = id;
    }
    if (store_run(store, replay_txn, &r, &err)) {
        cli_report("queue replay", &err);
        status = 1;
        goto out;
    }
    printf("replayed %lld dead event(s)\n", (long long)r.count);
    status = 0;
out:
    if (store)
        store_close(store);
    err_release(&err);
    settings_release(&s);
    return status;
}

int cli_queue(int argc, char **argv)
{
    static const cli_subcommand_t subs[] = {{"list", queue_list}, {"replay", queue_replay}};
    return cli_dispatch("queue", queue_help, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
