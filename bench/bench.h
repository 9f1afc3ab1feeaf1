/*
 * bench.h - what the benchmarks that open a store share: BENCH_STORE (a PostgreSQL URI, else a
 * new SQLite file in a temporary directory), BENCH_SYNC (normal or off: the store's synchronous
 * setting), BENCH_KEEP (the SQLite file is kept) and whole-number settings from the environment.
 */
#ifndef CONCERTO_BENCH_BENCH_H
#define CONCERTO_BENCH_BENCH_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "store/store.h"

static inline void bench_die(const char *what, err_t *err)
{
    fprintf(stderr, "bench: %s: %s\n", what, err ? err_message(err) : "failed");
    exit(1);
}

/* The positive whole number in the environment variable name, else fallback. */
static inline long bench_env_long(const char *name, long fallback)
{
    const char *v = getenv(name);
    return v && atol(v) > 0 ? atol(v) : fallback;
}

static char bench_dir_[32];   /* the SQLite file's temporary directory, or "" */
static char bench_path_[256]; /* the store's location */

/* The store of the bench: BENCH_STORE's PostgreSQL database (empty), else a new SQLite file;
 * synchronous per BENCH_SYNC, else sync. *out_name (may be NULL): "PostgreSQL" or "SQLite";
 * *out_sync (may be NULL): BENCH_SYNC as given, or NULL. Dies when it cannot be opened. */
static inline store_t *bench_open_store(store_sync_t sync, const char **out_name,
                                        const char **out_sync)
{
    const char *location = getenv("BENCH_STORE");
    char *path = bench_path_;
    if (location) {
        snprintf(path, sizeof(bench_path_), "%s", location);
    } else {
        snprintf(bench_dir_, sizeof(bench_dir_), "/tmp/concerto-bench-XXXXXX");
        if (!mkdtemp(bench_dir_))
            bench_die("a temporary directory", NULL);
        snprintf(path, sizeof(bench_path_), "%s/bench.db", bench_dir_);
    }
    store_options_t options;
    store_options_init(&options);
    const char *given = getenv("BENCH_SYNC");
    options.synchronous = given && strcmp(given, "normal") == 0 ? STORE_SYNC_NORMAL
                          : given && strcmp(given, "off") == 0  ? STORE_SYNC_OFF
                          : given && strcmp(given, "full") == 0 ? STORE_SYNC_FULL
                                                                : sync;
    store_t *store;
    err_t err = ERR_INIT;
    if (store_open(path, &options, &store, &err))
        bench_die("open", &err);
    if (out_name)
        *out_name = location ? "PostgreSQL" : "SQLite";
    if (out_sync)
        *out_sync = given;
    return store;
}

/* Closes the store and removes a SQLite file made for the bench (kept with BENCH_KEEP set:
 * its path is printed). Returns the exit status. */
static inline int bench_close_store(store_t *store)
{
    store_close(store);
    if (!bench_dir_[0])
        return 0;
    if (getenv("BENCH_KEEP")) {
        printf("kept %s\n", bench_path_);
        return 0;
    }
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", bench_dir_);
    return system(cmd) == 0 ? 0 : 1;
}

#endif
