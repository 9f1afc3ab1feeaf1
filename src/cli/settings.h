/*
 * settings.h - command settings from flags, environment and a config file.
 *
 * Precedence: a command-line flag, then the environment variable CONCERTO_<NAME> (upper case,
 * '-' as '_'), then the config file (--config FILE or CONCERTO_CONFIG; lines "name = value",
 * '#' comments), then the built-in default.
 */
#ifndef CONCERTO_CLI_SETTINGS_H
#define CONCERTO_CLI_SETTINGS_H

#include <stdbool.h>

#include "base/err.h"

typedef struct {
    const char *name;  /* "db", "listen", ... */
    const char *value; /* from a flag, or NULL */
} setting_flag_t;

typedef struct {
    setting_flag_t flags[32];
    int nflags;
    char **file_keys, **file_values;
    int nfile;
    const char *config_path;
    char **args; /* positional arguments (pointers into argv) */
    int nargs;
} settings_t;

/*
 * Parses argv (after the command name): --name VALUE or --name=VALUE for each name in
 * `known` (NULL-terminated), --help, and positional arguments returned in *out_args.
 * Boolean flags are listed in `switches`. Positional arguments are left in s->args.
 * Returns ERR_INVALID with a message on an unknown flag or a missing value; call
 * settings_release in every case.
 */
status_t settings_parse(settings_t *s, int argc, char **argv, const char *const *known,
                        const char *const *switches, bool *out_help, err_t *err);
/* The value of name by precedence, or fallback. Borrowed. */
const char *settings_get(const settings_t *s, const char *name, const char *fallback);
void settings_release(settings_t *s);

#endif
