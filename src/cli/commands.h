/*
 * commands.h - the subcommands of the `concerto` program. Each takes the arguments after its
 * name (argv[0] is the subcommand) and returns the process exit status: 0 success, 1 the
 * work failed, 2 a usage error. Messages go to stderr, results to stdout.
 */
#ifndef CONCERTO_CLI_COMMANDS_H
#define CONCERTO_CLI_COMMANDS_H

/* concerto fhirpath [--check] [--pretty] EXPRESSION FILE.json: prints the result as JSON. */
int cli_fhirpath(int argc, char **argv);

#endif
