/*
 * init.c - `concerto init`: creates a database or brings an existing one to the current schema.
 */
#include <stdio.h>

#include "cli/commands.h"
#include "cli/common.h"

static const char help[] =
    "usage: concerto init [--db FILE] [--config FILE]\n"
    "\n"
    "Creates the database FILE with Concerto's schema, or upgrades an existing one to the\n"
    "current schema version (migrations run in one transaction). Running it twice is harmless.\n"
    "\n"
    "  --db FILE        the SQLite database file (default: concerto.db; env CONCERTO_DB),\n"
    "                   or a PostgreSQL URI postgresql://USER@HOST:PORT/DATABASE\n"
    "  --synchronous MODE  full (default), normal or off: how writes reach the disk\n"
    "                   (see concerto serve --help; env CONCERTO_SYNCHRONOUS)\n"
    "  --config FILE    read settings from FILE (lines \"name = value\"; env CONCERTO_CONFIG)\n";

int cli_init(int argc, char **argv)
{
    static const char *const known[] = {"db", "synchronous", NULL};
    settings_t s;
    int status = cli_settings("init", help, argc, argv, known, NULL, &s);
    if (status >= 0)
        goto out;
    if (s.nargs) {
        fprintf(stderr, "concerto init: unexpected argument \"%s\" (see --help)\n", s.args[0]);
        status = 2;
        goto out;
    }
    err_t err = ERR_INIT;
    store_t *store;
    store_options_t options;
    if (cli_store_options(&s, &options, &err)) {
        cli_report("init", &err);
        err_release(&err);
        status = 2;
        goto out;
    }
    if (cli_open_store(&s, &options, &store, &err)) {
        cli_report("init", &err);
        err_release(&err);
        status = 1;
        goto out;
    }
    printf("%s: schema version %d\n", settings_get(&s, "db", CLI_DEFAULT_DB),
           store_schema_version(store));
    cli_close_store(store, true);
    err_release(&err);
    status = 0;
out:
    settings_release(&s);
    return status;
}
