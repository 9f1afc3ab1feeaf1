/*
 * fhirpath_package.c - the FHIRPath expressions of the FHIR R4 package through the engine,
 * over the package's own examples (CONCERTO_FHIR_PACKAGE, default
 * build/fhir/hl7.fhir.r4.examples/package). Without the package the tests print "skipped".
 *
 * Search parameters: each expression must compile, pass the strict check for each base
 * resource type, and evaluate without error over every example of those types (what the
 * indexer will do). Invariants: each constraint of a resource's elements must compile and
 * evaluate without error on every element it applies to in the examples; an example that
 * breaks an invariant is the example's business (several break warning-level ones).
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/jv.h"
#include "base/mem.h"
#include "fhir/fhirpath.h"

#define DEFAULT_PACKAGE "build/fhir/hl7.fhir.r4.examples/package"

typedef struct {
    json_t **items;
    size_t n, cap;
} list_t;

static const char *package_dir;
static list_t params, examples, definitions;

static json_t *load(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    buf_t b = BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(&b, chunk, n);
    fclose(f);
    err_t err = ERR_INIT;
    json_t *j = jv_parse(b.ptr, b.len, &err);
    err_release(&err);
    buf_release(&b);
    return j;
}

static void push(list_t *l, json_t *j)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->items = xrealloc(l->items, l->cap * sizeof(*l->items));
    }
    l->items[l->n++] = j;
}

static int setup(void **state)
{
    (void)state;
    package_dir = getenv("CONCERTO_FHIR_PACKAGE");
    if (!package_dir)
        package_dir = DEFAULT_PACKAGE;
    DIR *d = opendir(package_dir);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0 || e->d_name[0] == '.' ||
            strcmp(e->d_name, "package.json") == 0)
            continue;
        json_t *j = load(package_dir, e->d_name);
        if (!j)
            continue;
        const char *rt = json_string_value(json_object_get(j, "resourceType"));
        const char *kind = json_string_value(json_object_get(j, "kind"));
        const char *derivation = json_string_value(json_object_get(j, "derivation"));
        if (rt && strcmp(rt, "StructureDefinition") == 0 && kind && derivation &&
            strcmp(kind, "resource") == 0 && strcmp(derivation, "specialization") == 0)
            push(&definitions, json_incref(j)); /* and an example too, below */
        if (rt && strcmp(rt, "SearchParameter") == 0 && json_object_get(j, "expression"))
            push(&params, j);
        else if (rt)
            push(&examples, j);
        else
            json_decref(j);
    }
    closedir(d);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < params.n; i++)
        json_decref(params.items[i]);
    for (size_t i = 0; i < examples.n; i++)
        json_decref(examples.items[i]);
    for (size_t i = 0; i < definitions.n; i++)
        json_decref(definitions.items[i]);
    free(params.items);
    free(examples.items);
    free(definitions.items);
    return 0;
}

static void test_search_parameters(void **state)
{
    (void)state;
    if (params.n == 0) {
        print_message("skipped: no SearchParameter in %s (run tools/install-deps)\n", package_dir);
        skip();
    }
    size_t failures = 0, evaluations = 0;
    for (size_t i = 0; i < params.n; i++) {
        json_t *p = params.items[i];
        const char *text = json_string_value(json_object_get(p, "expression"));
        const char *id = json_string_value(json_object_get(p, "id"));
        err_t err = ERR_INIT;
        fhirpath_t *expr = fhirpath_compile(text, strlen(text), &err);
        if (!expr) {
            print_error("%s: %s: %s\n", id, text, err_message(&err));
            failures++;
            err_release(&err);
            continue;
        }
        json_t *bases = json_object_get(p, "base");
        for (size_t b = 0; b < json_array_size(bases); b++) {
            const char *base = json_string_value(json_array_get(bases, b));
            if (strcmp(base, "Resource") == 0 || strcmp(base, "DomainResource") == 0)
                continue;
            if (fhirpath_check(expr, base, 0, &err)) {
                print_error("%s (%s): %s: %s\n", id, base, text, err_message(&err));
                failures++;
                err_reset(&err);
            }
            for (size_t k = 0; k < examples.n; k++) {
                json_t *ex = examples.items[k];
                if (strcmp(json_string_value(json_object_get(ex, "resourceType")), base) != 0)
                    continue;
                arena_t arena;
                arena_init(&arena);
                fhirpath_env_t env;
                fhirpath_env_init(&env, ex);
                fhirpath_result_t *result;
                evaluations++;
                if (fhirpath_eval(expr, &env, &arena, &result, &err)) {
                    print_error("%s over %s/%s: %s: %s\n", id, base,
                                json_string_value(json_object_get(ex, "id")), text,
                                err_message(&err));
                    failures++;
                    err_reset(&err);
                }
                arena_release(&arena);
            }
        }
        fhirpath_free(expr);
        err_release(&err);
    }
    print_message("%zu search parameters, %zu evaluations over the examples\n", params.n,
                  evaluations);
    assert_int_equal(failures, 0);
}

/* Evaluates "PATH.select(EXPR)" over every example of type; returns the failures. */
static size_t invariant_over_examples(const char *type, const char *path, const char *key,
                                      const char *text, size_t *evaluations)
{
    size_t failures = 0;
    char *wrapped = xasprintf("%s.select(%s)", path, text);
    err_t err = ERR_INIT;
    fhirpath_t *expr = fhirpath_compile(wrapped, strlen(wrapped), &err);
    if (!expr) {
        print_error("%s (%s): %s: %s\n", key, path, text, err_message(&err));
        failures++;
        goto out;
    }
    for (size_t k = 0; k < examples.n; k++) {
        json_t *ex = examples.items[k];
        if (strcmp(json_string_value(json_object_get(ex, "resourceType")), type) != 0)
            continue;
        arena_t arena;
        arena_init(&arena);
        fhirpath_env_t env;
        fhirpath_env_init(&env, ex);
        fhirpath_result_t *result;
        (*evaluations)++;
        if (fhirpath_eval(expr, &env, &arena, &result, &err)) {
            print_error("%s over %s/%s: %s: %s\n", key, type,
                        json_string_value(json_object_get(ex, "id")), text, err_message(&err));
            failures++;
            err_reset(&err);
        }
        arena_release(&arena);
    }
out:
    fhirpath_free(expr);
    err_release(&err);
    free(wrapped);
    return failures;
}

static void test_invariants(void **state)
{
    (void)state;
    if (definitions.n == 0) {
        print_message("skipped: no StructureDefinition in %s (run tools/install-deps)\n",
                      package_dir);
        skip();
    }
    size_t failures = 0, evaluations = 0, invariants = 0;
    for (size_t i = 0; i < definitions.n; i++) {
        json_t *sd = definitions.items[i];
        const char *type = json_string_value(json_object_get(sd, "type"));
        json_t *elements = json_object_get(json_object_get(sd, "snapshot"), "element");
        for (size_t e = 0; e < json_array_size(elements); e++) {
            json_t *el = json_array_get(elements, e);
            const char *path = json_string_value(json_object_get(el, "path"));
            /* choice elements are reached by their FHIRPath name, not value[x] */
            if (!path || strstr(path, "[x]") || strncmp(path, type, strlen(type)) != 0)
                continue;
            json_t *constraints = json_object_get(el, "constraint");
            for (size_t c = 0; c < json_array_size(constraints); c++) {
                json_t *con = json_array_get(constraints, c);
                const char *key = json_string_value(json_object_get(con, "key"));
                const char *text = json_string_value(json_object_get(con, "expression"));
                /* ele-1 and ext-1 are on every element: the data types' tests have them */
                if (!key || !text || strncmp(key, "ele-", 4) == 0 || strncmp(key, "ext-", 4) == 0)
                    continue;
                invariants++;
                failures += invariant_over_examples(type, path, key, text, &evaluations);
            }
        }
    }
    print_message("%zu invariants, %zu evaluations over the examples\n", invariants, evaluations);
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_search_parameters),
        cmocka_unit_test(test_invariants),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
