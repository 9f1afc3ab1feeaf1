/*
 * common.c - helpers shared by the commands.
 */
#include "cli/common.h"

#include <stdio.h>
#include <time.h>
#include <string.h>

#include "base/log.h"
#include "repo/repo.h"
#include "repo/worker.h"

void cli_report(const char *command, const err_t *err)
{
    for (size_t i = 0; i < err->nissues; i++) {
        const err_issue_t *issue = &err->issues[i];
        if (issue->expression)
            fprintf(stderr, "concerto %s: %s: %s (at %s)\n", command,
                    severity_name(issue->severity), issue->message, issue->expression);
        else
            fprintf(stderr, "concerto %s: %s: %s\n", command, severity_name(issue->severity),
                    issue->message);
    }
    if (err->log_detail)
        fprintf(stderr, "concerto %s: detail: %s\n", command, err->log_detail);
}

int cli_settings(const char *command, const char *help, int argc, char **argv,
                 const char *const *known, const char *const *switches, settings_t *s)
{
    err_t err = ERR_INIT;
    bool want_help = false;
    status_t rc = settings_parse(s, argc, argv, known, switches, &want_help, &err);
    if (want_help) {
        fputs(help, stdout);
        err_release(&err);
        return 0;
    }
    if (rc) {
        cli_report(command, &err);
        err_release(&err);
        return 2;
    }
    err_release(&err);
    return -1;
}

status_t cli_store_options(const settings_t *s, store_options_t *options, err_t *err)
{
    store_options_init(options);
    const char *sync = settings_get(s, "synchronous", "full");
    if (strcmp(sync, "full") == 0)
        options->synchronous = STORE_SYNC_FULL;
    else if (strcmp(sync, "normal") == 0)
        options->synchronous = STORE_SYNC_NORMAL;
    else if (strcmp(sync, "off") == 0)
        options->synchronous = STORE_SYNC_OFF;
    else
        return err_set(err, ERR_INVALID, NULL,
                       "--synchronous must be full, normal or off, not \"%s\"", sync);
    return ERR_OK;
}

status_t cli_open_store(const settings_t *s, const store_options_t *options, store_t **out,
                        err_t *err)
{
    status_t rc = store_open(settings_get(s, "db", CLI_DEFAULT_DB), options, out, err);
    if (rc)
        return rc;
    if ((rc = repo_params_open(*out, err))) {
        store_close(*out);
        *out = NULL;
    }
    return rc;
}

void cli_close_store(store_t *store, bool finish_reindex)
{
    if (finish_reindex) {
        err_t err = ERR_INIT;
        size_t runs = 0;
        if (repo_worker_drain(store, "reindex", &runs, &err))
            log_error("the reindex after a search parameter change stopped: %s (it goes on "
                      "when a server runs on this database, or run concerto reindex)",
                      err_message(&err));
        err_release(&err);
    }
    repo_params_close();
    store_close(store);
}

int cli_start(const char *name, const char *help, int argc, char **argv, const char *const *known,
              const char *const *switches, settings_t *s, bool params, store_t **store, err_t *err)
{
    *store = NULL;
    int status = cli_settings(name, help, argc, argv, known, switches, s);
    if (status >= 0)
        return status;
    store_options_t options;
    store_options_init(&options);
    options.create = false;
    status_t rc = params ? cli_open_store(s, &options, store, err)
                         : store_open(settings_get(s, "db", CLI_DEFAULT_DB), &options, store, err);
    if (rc) {
        *store = NULL;
        cli_report(name, err);
        return 1;
    }
    return -1;
}

void cli_format_utc(int64_t us, char *out, size_t size)
{
    if (!us) {
        snprintf(out, size, "-");
        return;
    }
    time_t seconds = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&seconds, &tm);
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int cli_dispatch(const char *command, const char *help, const cli_subcommand_t *subs, size_t n,
                 int argc, char **argv)
{
    const char *sub = argc > 0 ? argv[0] : NULL;
    if (!sub || strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        fputs(help, sub ? stdout : stderr);
        return sub ? 0 : 2;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(sub, subs[i].name) == 0)
            return subs[i].run(argc - 1, argv + 1);
    fprintf(stderr, "concerto %s: unknown subcommand \"%s\" (see --help)\n", command, sub);
    return 2;
}
