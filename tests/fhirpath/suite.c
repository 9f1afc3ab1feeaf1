/*
 * suite.c - the engine side of the FHIRPath conformance runner (tests/fhirpath/run-suite).
 *
 * Reads one case per line on stdin as JSON {"expression", "input" (a file path), "strict",
 * "ordered_check"} and answers one JSON line per case: {"results": [{"type", "value"}]} or
 * {"error": "compile" | "check" | "eval", "message"}. Input files are parsed once and kept
 * for the whole run, so the suite runs in one process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/jv.h"
#include "base/mem.h"
#include "fhir/fhirpath.h"

typedef struct {
    char *path;
    json_t *json;
} loaded_t;

static loaded_t loaded[16];
static size_t nloaded;

static json_t *load(const char *path, err_t *err)
{
    for (size_t i = 0; i < nloaded; i++)
        if (strcmp(loaded[i].path, path) == 0)
            return loaded[i].json;
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_set(err, ERR_NOT_FOUND, NULL, "cannot open %s", path);
        return NULL;
    }
    buf_t b = BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(&b, chunk, n);
    fclose(f);
    json_t *json = jv_parse(b.ptr, b.len, err);
    buf_release(&b);
    if (json && nloaded < sizeof(loaded) / sizeof(loaded[0])) {
        loaded[nloaded].path = xstrdup(path);
        loaded[nloaded].json = json;
        nloaded++;
    }
    return json;
}

static void answer_error(const char *kind, const char *message)
{
    json_t *o = json_object();
    json_object_set_new(o, "error", json_string(kind));
    json_object_set_new(o, "message", json_string(message));
    char *text = json_dumps(o, JSON_COMPACT);
    printf("%s\n", text);
    free(text);
    json_decref(o);
}

static void run_case(json_t *c)
{
    const char *text = json_string_value(json_object_get(c, "expression"));
    const char *input = json_string_value(json_object_get(c, "input"));
    bool strict = json_is_true(json_object_get(c, "strict"));
    bool ordered = json_is_true(json_object_get(c, "ordered_check"));
    err_t err = ERR_INIT;
    arena_t arena;
    arena_init(&arena);
    fhirpath_t *expr = NULL;
    json_t *resource = input ? load(input, &err) : NULL;
    if (input && !resource) {
        answer_error("input", err_message(&err));
        goto out;
    }
    expr = fhirpath_compile(text ? text : "", text ? strlen(text) : 0, &err);
    if (!expr) {
        answer_error("compile", err_message(&err));
        goto out;
    }
    if (strict && resource) {
        const char *type = json_string_value(json_object_get(resource, "resourceType"));
        if (fhirpath_check(expr, type, ordered ? FHIRPATH_CHECK_ORDERED : 0, &err)) {
            answer_error("check", err_message(&err));
            goto out;
        }
    }
    fhirpath_env_t env;
    fhirpath_env_init(&env, resource);
    fhirpath_result_t *result;
    if (fhirpath_eval(expr, &env, &arena, &result, &err)) {
        answer_error("eval", err_message(&err));
        goto out;
    }
    json_t *o = json_object(), *items = json_array();
    for (size_t i = 0; i < fhirpath_result_count(result); i++) {
        const fhirpath_item_t *item = fhirpath_result_item(result, i);
        json_t *entry = json_object();
        const char *type = fhirpath_item_type_name(item);
        json_object_set_new(entry, "type", type ? json_string(type) : json_null());
        const char *value = fhirpath_item_text(item, &arena);
        json_object_set_new(entry, "value", value ? json_string(value) : json_null());
        json_array_append_new(items, entry);
    }
    json_object_set_new(o, "results", items);
    char *dumped = json_dumps(o, JSON_COMPACT);
    printf("%s\n", dumped);
    free(dumped);
    json_decref(o);
out:
    fflush(stdout);
    fhirpath_free(expr);
    arena_release(&arena);
    err_release(&err);
}

int main(void)
{
    /* the first line tells the runner whether the model is linked (strict cases need it) */
    err_t err = ERR_INIT;
    fhirpath_t *probe = fhirpath_compile("Patient", 7, &err);
    bool model = probe && fhirpath_check(probe, "Patient", 0, &err) == ERR_OK &&
                 fhirpath_check(probe, "NoSuchType", 0, &err) != ERR_OK;
    fhirpath_free(probe);
    err_release(&err);
    printf("{\"model\":%s}\n", model ? "true" : "false");
    fflush(stdout);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        json_error_t jerr;
        json_t *c = json_loadb(line, (size_t)n, 0, &jerr);
        if (!c) {
            answer_error("protocol", jerr.text);
            continue;
        }
        run_case(c);
        json_decref(c);
    }
    free(line);
    for (size_t i = 0; i < nloaded; i++) {
        free(loaded[i].path);
        json_decref(loaded[i].json);
    }
    return 0;
}
