/*
 * fhirpath.c - `concerto fhirpath`: evaluates a FHIRPath expression over a resource file and
 * prints the result collection as JSON, for people who write protocols, care-gap rules and
 * search parameters. Pure glue over src/fhir/fhirpath.h; the file is read whole (up to
 * MAX_INPUT bytes) and parsed with the strict JSON parser.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/jv.h"
#include "cli/commands.h"
#include "fhir/fhirpath.h"

#define MAX_INPUT ((size_t)64 * 1024 * 1024)

static const char usage[] =
    "usage: concerto fhirpath [--check] [--pretty] EXPRESSION FILE.json\n"
    "\n"
    "Evaluates a FHIRPath expression over a FHIR R4 resource (JSON) and prints the result\n"
    "collection as a JSON array: elements of the resource as their JSON, strings, numbers and\n"
    "booleans as themselves, dates and times as strings, quantities as {\"value\", \"unit\"}.\n"
    "FILE may be - to read standard input. %resource and %context are the resource.\n"
    "\n"
    "options:\n"
    "  --check    first check every path of the expression against the FHIR model for the\n"
    "             resource's type (reports misspelt elements such as name.given1)\n"
    "  --pretty   print the JSON indented, one member per line\n"
    "  -h, --help show this help\n"
    "  --         ends the options (for an expression that starts with '-')\n"
    "\n"
    "examples:\n"
    "  concerto fhirpath \"Patient.name.where(use = 'official').given\" patient.json\n"
    "  concerto fhirpath \"Observation.value as Quantity > 80 'kg'\" observation.json\n"
    "\n"
    "exit status: 0 evaluated, 1 the expression or the file could not be used, 2 usage\n";

static int read_input(const char *path, buf_t *out, err_t *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        err_set(err, ERR_NOT_FOUND, NULL, "could not open \"%s\": %s", path, strerror(errno));
        return -1;
    }
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(out, chunk, n);
    bool failed = ferror(f);
    if (f != stdin)
        fclose(f);
    if (failed) {
        err_set(err, ERR_INTERNAL, NULL, "could not read \"%s\"", path);
        return -1;
    }
    if (out->toobig) {
        err_set(err, ERR_TOO_LARGE, NULL, "\"%s\" is larger than %zu MB", path,
                MAX_INPUT / (1024 * 1024));
        return -1;
    }
    return 0;
}

int cli_fhirpath(int argc, char **argv)
{
    bool check = false, pretty = false;
    const char *args[2];
    int nargs = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--check") == 0) {
            check = true;
        } else if (strcmp(a, "--pretty") == 0) {
            pretty = true;
        } else if (strcmp(a, "--") == 0 && i + 1 < argc) {
            while (++i < argc && nargs < 2)
                args[nargs++] = argv[i];
            if (i < argc)
                nargs = 3;
            break;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "concerto fhirpath: unknown option \"%s\" (see --help)\n", a);
            return 2;
        } else if (nargs < 2) {
            args[nargs++] = a;
        } else {
            nargs = 3;
        }
    }
    if (nargs != 2) {
        fprintf(stderr, "concerto fhirpath: expected an EXPRESSION and a FILE (see --help)\n");
        return 2;
    }

    int status = 1;
    err_t err = ERR_INIT;
    arena_t arena;
    arena_init(&arena);
    buf_t input, text = BUF_INIT;
    buf_init(&input, MAX_INPUT);
    json_t *resource = NULL;
    fhirpath_t *expr = fhirpath_compile(args[0], strlen(args[0]), &err);
    if (!expr)
        goto out;
    if (read_input(args[1], &input, &err) < 0)
        goto out;
    resource = jv_parse(input.ptr, input.len, &err);
    if (!resource)
        goto out;
    if (check) {
        json_t *type = json_object_get(resource, "resourceType");
        if (!jv_is_string(type)) {
            err_set(&err, ERR_STRUCTURE, NULL, "cannot check: \"%s\" has no resourceType", args[1]);
            goto out;
        }
        if (fhirpath_check(expr, json_string_value(type), 0, &err))
            goto out;
    }
    fhirpath_env_t env;
    fhirpath_env_init(&env, resource);
    fhirpath_result_t *result;
    if (fhirpath_eval(expr, &env, &arena, &result, &err))
        goto out;
    buf_t compact = BUF_INIT;
    fhirpath_result_dump(result, &compact);
    if (pretty)
        jv_pretty(compact.ptr, compact.len, &text);
    else
        buf_add(&text, compact.ptr, compact.len);
    buf_release(&compact);
    fwrite(text.ptr, 1, text.len, stdout);
    fputc('\n', stdout);
    status = fflush(stdout) == 0 ? 0 : 1;
out:
    if (status != 0 && err.code != ERR_OK)
        fprintf(stderr, "concerto fhirpath: %s\n", err_message(&err));
    json_decref(resource);
    fhirpath_free(expr);
    buf_release(&input);
    buf_release(&text);
    arena_release(&arena);
    err_release(&err);
    return status;
}
