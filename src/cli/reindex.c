/*
 * reindex.c - `concerto reindex`: rebuilds every search index row of a database, with
 * progress on stderr. For when search parameters change, or for a database written before
 * the index tables existed.
 */
#include <stdio.h>
#include <time.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "repo/repo.h"

static const char help[] =
    "usage: concerto reindex [--db FILE] [--config FILE]\n"
    "\n"
    "Rebuilds the search index rows of every current resource in the database FILE: run it\n"
    "after the search parameters change, or on a database written before search existed.\n"
    "The R4 search parameters and the SearchParameter resources of the database (status\n"
    "active or draft) are indexed.\n"
    "Progress goes to stderr. It may run while a server uses the database: a resource the\n"
    "server writes meanwhile keeps the rows of that write.\n"
    "\n"
    "  --db FILE        the SQLite database file (default: concerto.db; env CONCERTO_DB), or\n"
    "                   a PostgreSQL URI postgresql://USER@HOST:PORT/DATABASE\n"
    "  --synchronous MODE  full (default), normal or off (see concerto serve --help)\n"
    "  --config FILE    read settings from FILE (lines \"name = value\"; env CONCERTO_CONFIG)\n";

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static bool progress(void *arg, int64_t done, int64_t total)
{
    const struct timespec *start = arg;
    fprintf(stderr, "concerto reindex: %lld of %lld resources (%.1f s)\n", (long long)done,
            (long long)total, seconds_since(start));
    return true;
}

int cli_reindex(int argc, char **argv)
{
    static const char *const known[] = {"db", "synchronous", NULL};
    settings_t s;
    int status = cli_settings("reindex", help, argc, argv, known, NULL, &s);
    if (status >= 0)
        goto out;
    if (s.nargs) {
        fprintf(stderr, "concerto reindex: unexpected argument \"%s\" (see --help)\n", s.args[0]);
        status = 2;
        goto out;
    }
    err_t err = ERR_INIT;
    store_t *store;
    store_options_t options;
    if (cli_store_options(&s, &options, &err)) {
        cli_report("reindex", &err);
        err_release(&err);
        status = 2;
        goto out;
    }
    options.create = false;
    if (cli_open_store(&s, &options, &store, &err)) {
        cli_report("reindex", &err);
        err_release(&err);
        status = 1;
        goto out;
    }
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int64_t count = 0;
    status_t rc = repo_reindex(store, progress, &start, &count, &err);
    cli_close_store(store, true);
    if (rc) {
        cli_report("reindex", &err);
        status = 1;
    } else {
        double secs = seconds_since(&start);
        fprintf(stderr, "concerto reindex: %lld resources reindexed in %.1f s (%.0f/s)\n",
                (long long)count, secs, secs > 0 ? (double)count / secs : 0.0);
        status = 0;
    }
    err_release(&err);
out:
    settings_release(&s);
    return status;
}
