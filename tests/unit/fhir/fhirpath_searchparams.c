/*
 * fhirpath_searchparams.c - every search parameter of FHIR R4 through the FHIRPath engine.
 *
 * Each SearchParameter-*.json of the package (CONCERTO_FHIR_PACKAGE, default
 * build/fhir/hl7.fhir.r4.examples/package) with an expression must compile, pass the strict
 * check for each of its base resource types, and evaluate without error over every example
 * of those types in the package. This is what the indexer will do with real data. Without
 * the package the test prints "skipped" and passes.
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
static list_t params, examples;

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
    free(params.items);
    free(examples.items);
    return 0;
}

static void test_search_parameters(void **state)
{
    (void)state;
    if (params.n == 0) {
        print_message("skipped: no SearchParameter in %s (run tools/install-deps)\n",
                      package_dir);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_search_parameters),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
