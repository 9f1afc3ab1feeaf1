/*
 * import.h - the work of `concerto import` for other commands (`concerto demo` loads what it
 * generates through it): the same two passes, validation, indexing and reference check.
 */
#ifndef CONCERTO_CLI_IMPORT_H
#define CONCERTO_CLI_IMPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "cli/settings.h"

typedef struct {
    /* called about once a second and at the end instead of the progress line (may be NULL) */
    void (*progress)(void *ctx, size_t done, size_t total);
    void *ctx;
    bool quiet; /* no summary on stdout and no index-building lines on stderr */
    /* outputs */
    size_t written;
    double seconds;
} cli_import_hooks_t;

/*
 * Imports files[0..nfiles) (NDJSON by their .ndjson suffix, else JSON) into the database of
 * the "db" setting, with the settings "batch", "synchronous" and "rebuild-indexes" as
 * `concerto import` reads them, creating the database when it is new. Refused resources and
 * unresolved references are reported on stderr. Returns the exit status: 0 everything went
 * in and resolves, 1 otherwise, 2 a bad setting. hooks may be NULL.
 */
int cli__import_files(const settings_t *settings, char *const *files, int nfiles,
                      cli_import_hooks_t *hooks);

#endif
