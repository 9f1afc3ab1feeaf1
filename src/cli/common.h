/*
 * common.h - what the commands share: opening the store from settings, reporting errors.
 */
#ifndef CONCERTO_CLI_COMMON_H
#define CONCERTO_CLI_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "cli/settings.h"
#include "store/store.h"

#define CLI_DEFAULT_DB "concerto.db"

/* Prints err's issues to stderr as "concerto COMMAND: message" lines (and the log detail). */
void cli_report(const char *command, const err_t *err);
/*
 * Parses settings for a command; on --help prints `help` to stdout. Returns -1 when the
 * command should go on, otherwise the exit status to return.
 */
int cli_settings(const char *command, const char *help, int argc, char **argv,
                 const char *const *known, const char *const *switches, settings_t *s);
/* Reads the "synchronous" setting into options (ERR_INVALID when it is not a mode). */
status_t cli_store_options(const settings_t *s, store_options_t *options, err_t *err);
/* Opens the store named by the "db" setting with options from cli_store_options, and loads
 * its custom search parameters (repo_params_open). */
status_t cli_open_store(const settings_t *s, const store_options_t *options, store_t **out,
                        err_t *err);
/*
 * A command on an existing database: parses settings (cli_settings), then opens the store of
 * the "db" setting without creating it: with its search parameters (cli_open_store, closed
 * with cli_close_store) when params, else bare (store_close). Returns -1 when the command
 * should go on with *store open, else the exit status (1 when the store could not be opened,
 * reported as "concerto NAME: ...").
 */
int cli_start(const char *name, const char *help, int argc, char **argv, const char *const *known,
              const char *const *switches, settings_t *s, bool params, store_t **store, err_t *err);
/* "2026-03-08T06:59:00Z" (UTC, seconds), or "-" for 0. */
void cli_format_utc(int64_t us, char *out, size_t size);
/* A subcommand of a command ("concerto queue list"): its name and what runs it with the
 * arguments after it. */
typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
} cli_subcommand_t;
/*
 * Runs the subcommand argv[0] of command ("queue"): with no argument, help goes to stderr
 * (status 2); with --help or -h to stdout (0); an unknown name is a usage error (2).
 */
int cli_dispatch(const char *command, const char *help, const cli_subcommand_t *subs, size_t n,
                 int argc, char **argv);
/* Closes what cli_open_store opened; finish_reindex: first run the reindex jobs that
 * SearchParameter writes scheduled (else a server's worker runs them later). */
void cli_close_store(store_t *store, bool finish_reindex);

#endif
