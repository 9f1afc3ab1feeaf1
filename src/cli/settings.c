/*
 * settings.c - flags, CONCERTO_* environment variables and a config file, in that order.
 */
#include "cli/settings.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

static bool listed(const char *const *names, const char *name, size_t len)
{
    for (int i = 0; names && names[i]; i++)
        if (strlen(names[i]) == len && strncmp(names[i], name, len) == 0)
            return true;
    return false;
}

static status_t load_file(settings_t *s, const char *path, err_t *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return err_set(err, ERR_INVALID, NULL, "could not open the config file \"%s\"", path);
    char line[1024];
    int lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (!*p || *p == '#')
            continue;
        char *eq = strchr(p, '=');
        if (!eq) {
            fclose(f);
            return err_set(err, ERR_INVALID, NULL, "%s:%d: expected \"name = value\"", path,
                           lineno);
        }
        char *key_end = eq;
        while (key_end > p && isspace((unsigned char)key_end[-1]))
            key_end--;
        char *value = eq + 1;
        while (isspace((unsigned char)*value))
            value++;
        char *value_end = value + strlen(value);
        while (value_end > value && isspace((unsigned char)value_end[-1]))
            value_end--;
        s->file_keys = xrealloc(s->file_keys, (size_t)(s->nfile + 1) * sizeof(char *));
        s->file_values = xrealloc(s->file_values, (size_t)(s->nfile + 1) * sizeof(char *));
        s->file_keys[s->nfile] = xstrndup(p, (size_t)(key_end - p));
        s->file_values[s->nfile] = xstrndup(value, (size_t)(value_end - value));
        s->nfile++;
    }
    fclose(f);
    return ERR_OK;
}

status_t settings_parse(settings_t *s, int argc, char **argv, const char *const *known,
                        const char *const *switches, bool *out_help, err_t *err)
{
    memset(s, 0, sizeof(*s));
    *out_help = false;
    char **args = xcalloc((size_t)argc + 1, sizeof(char *));
    int nargs = 0;
    s->args = args;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            *out_help = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            args[nargs++] = a;
            s->nargs = nargs;
            continue;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const char *value;
        if (listed(switches, name, len)) {
            value = eq ? eq + 1 : "true";
        } else if (listed(known, name, len) || (len == 6 && strncmp(name, "config", 6) == 0)) {
            if (eq) {
                value = eq + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                return err_set(err, ERR_INVALID, NULL, "--%.*s needs a value", (int)len, name);
            }
        } else {
            return err_set(err, ERR_INVALID, NULL, "unknown option --%.*s (see --help)", (int)len,
                           name);
        }
        if (s->nflags == (int)(sizeof(s->flags) / sizeof(s->flags[0]))) {
            return err_set(err, ERR_INVALID, NULL, "too many options");
        }
        s->flags[s->nflags].name = xstrndup(name, len);
        s->flags[s->nflags].value = value;
        s->nflags++;
    }
    const char *config = settings_get(s, "config", NULL);
    if (config) {
        s->config_path = config;
        status_t rc = load_file(s, config, err);
        if (rc)
            return rc;
    }
    return ERR_OK;
}

const char *settings_get(const settings_t *s, const char *name, const char *fallback)
{
    for (int i = s->nflags - 1; i >= 0; i--)
        if (strcmp(s->flags[i].name, name) == 0)
            return s->flags[i].value;
    char env[96] = "CONCERTO_";
    size_t n = strlen(env);
    for (const char *p = name; *p && n < sizeof(env) - 1; p++)
        env[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    env[n] = '\0';
    const char *v = getenv(env);
    if (v && *v)
        return v;
    for (int i = s->nfile - 1; i >= 0; i--)
        if (strcmp(s->file_keys[i], name) == 0)
            return s->file_values[i];
    return fallback;
}

void settings_release(settings_t *s)
{
    for (int i = 0; i < s->nflags; i++)
        free((char *)s->flags[i].name);
    for (int i = 0; i < s->nfile; i++) {
        free(s->file_keys[i]);
        free(s->file_values[i]);
    }
    free(s->file_keys);
    free(s->file_values);
    free(s->args);
    memset(s, 0, sizeof(*s));
}
