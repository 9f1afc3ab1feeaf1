/*
 * commands.h - the subcommands of `concerto`. Each takes the arguments after its name and
 * returns the process exit status: 0 success, 1 the work failed, 2 a usage error. Messages go
 * to stderr, results to stdout.
 */
#ifndef CONCERTO_CLI_COMMANDS_H
#define CONCERTO_CLI_COMMANDS_H

int cli_init(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_errors(int argc, char **argv);
int cli_import(int argc, char **argv);
/* concerto demo [--patients N] [--seed S] ...: a synthetic population (cli/demo.c). */
int cli_demo(int argc, char **argv);
/* concerto reindex [--db FILE]: rebuilds every search index row, progress on stderr. */
int cli_reindex(int argc, char **argv);
/* concerto migrate-data --from FILE.db --to postgresql://URI: copies a whole database into an
 * empty one in one transaction, then compares the two (cli/migrate.c). */
int cli_migrate_data(int argc, char **argv);
/* concerto fhirpath [--check] [--pretty] EXPRESSION FILE.json: prints the result as JSON. */
int cli_fhirpath(int argc, char **argv);
/* concerto user add|list|disable|enable|reset-password|mfa-reset ...: user accounts. */
int cli_user(int argc, char **argv);
/* concerto client add|list|remove ...: OAuth clients. */
int cli_client(int argc, char **argv);
/* concerto audit verify|export ...: the audit trail's chain check and CSV export. */
int cli_audit(int argc, char **argv);
/* concerto queue list|replay ...: the work queue's counts and dead events, replaying them. */
int cli_queue(int argc, char **argv);
/* concerto hl7 list|show|reprocess ...: the HL7 v2 messages received over MLLP. */
int cli_hl7(int argc, char **argv);

#endif
