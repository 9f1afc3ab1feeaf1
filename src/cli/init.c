/*
 * init.c - `concerto init`: creates a database or brings an existing one to the current schema.
 */
#include <stdio.h>
#include <string.h>

#include "care/builtin.h"
#include "cli/commands.h"
#include "cli/common.h"

static const char help[] =
    "usage: concerto init [--db FILE] [--no-protocols] [--config FILE]\n"
    "\n"
    "Creates the database FILE with Concerto's schema, or upgrades an existing one to the\n"
    "current schema version (migrations run in one transaction), and loads the built-in\n"
    "protocols (PlanDefinitions and ActivityDefinitions: new patient intake, periodic care\n"
    "plan review, specialist referral, missed appointment outreach, emergency department\n"
    "visit follow-up, routine follow-up) that the database does not hold yet: a protocol an\n"
    "administrator changed, retired or deleted stays as they left it. Running it twice is\n"
    "harmless.\n"
    "\n"
    "  --db FILE        the SQLite database file (default: concerto.db; env CONCERTO_DB),\n"
    "                   or a PostgreSQL URI postgresql://USER@HOST:PORT/DATABASE\n"
    "  --no-protocols   do not load the built-in protocols (for the empty target of\n"
    "                   concerto migrate-data)\n"
    "  --synchronous MODE  full (default), normal or off: how writes reach the disk\n"
    "                   (see concerto serve --help; env CONCERTO_SYNCHRONOUS)\n"
    "  --config FILE    read settings from FILE (lines \"name = value\"; env CONCERTO_CONFIG)\n";

int cli_init(int argc, char **argv)
{
    static const char *const known[] = {"db", "synchronous", "no-protocols", NULL};
    static const char *const switches[] = {"no-protocols", NULL};
    settings_t s;
    int status = cli_settings("init", help, argc, argv, known, switches, &s);
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
    const char *db = settings_get(&s, "db", CLI_DEFAULT_DB);
    printf("%s: schema version %d\n", db, store_schema_version(store));
    status = 0;
    const char *skip = settings_get(&s, "no-protocols", "false");
    if (strcmp(skip, "true") != 0 && strcmp(skip, "false") != 0) {
        fprintf(stderr, "concerto init: no-protocols is true or false, not \"%s\"\n", skip);
        status = 2;
    } else if (strcmp(skip, "false") == 0) {
        care_builtin_report_t report;
        if (care_builtin_load(store, &report, &err)) {
            cli_report("init", &err);
            status = 1;
        } else {
            printf("%s: built-in protocols: %zu definitions loaded, %zu already there\n", db,
                   report.created, report.present);
        }
    }
    cli_close_store(store, true);
    err_release(&err);
out:
    settings_release(&s);
    return status;
}
