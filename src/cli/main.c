/*
 * main.c - the `concerto` command: dispatches to a subcommand.
 */
#include <stdio.h>
#include <string.h>

#include "base/version.h"
#include "cli/commands.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"init", cli_init, "create or upgrade a database"},
    {"serve", cli_serve, "serve the FHIR API over HTTP"},
    {"import", cli_import, "load NDJSON files and Bundles"},
    {"demo", cli_demo, "fill a database with a synthetic demo population"},
    {"errors", cli_errors, "list the error codes and their HTTP statuses"},
    {"reindex", cli_reindex, "rebuild the search index of a database"},
    {"migrate-data", cli_migrate_data, "copy a database into an empty one (SQLite to PostgreSQL)"},
    {"fhirpath", cli_fhirpath, "evaluate a FHIRPath expression over a resource file"},
    {"user", cli_user, "add, list, disable and reset user accounts"},
    {"client", cli_client, "register, list and remove OAuth clients"},
    {"audit", cli_audit, "verify the audit trail's hash chain, export it as CSV"},
    {"queue", cli_queue, "the work queue: counts, dead events, replay"},
    {"hl7", cli_hl7, "the HL7 v2 messages received: list, show, reprocess"},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: concerto COMMAND [options]   (concerto COMMAND --help for more)\n\n"
            "Concerto %s, a care coordination server (FHIR R4).\n\ncommands:\n",
            CONCERTO_VERSION);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-13s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-13s %s\n", "version", "print the version");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(name, "version") == 0 || strcmp(name, "--version") == 0) {
        printf("concerto %s\n", CONCERTO_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "concerto: unknown command \"%s\"\n\n", name);
    usage(stderr);
    return 2;
}
