/*
 * fhirpath_package.c - the FHIRPath expressions of the FHIR R4 package through the engine,
 * over the package's own examples (CONCERTO_FHIR_PACKAGE, default
 * build/fhir/hl7.fhir.r4.examples/package). Without the package the tests print "skipped".
 *
 * Search parameters: each expression must compile, pass the strict check for each base
 * resource type, and evaluate without error over every example of those types (what the
 * indexer will do). Invariants: each constraint of a resource's elements must compile and
 * evaluate without error on every element it applies to in the examples, and so must the
 * invariants of the data types, on the elements of that type (the first 2,000 of each) with
 * the element as a typed %context; an example that breaks an invariant is the example's
 * business (several break warning-level ones).
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
            strcmp(derivation, "specialization") == 0 &&
            (strcmp(kind, "resource") == 0 || strcmp(kind, "complex-type") == 0))
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
                env.resolve = fhirpath_resolve_shallow; /* as the indexer will */
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
        if (strcmp(json_string_value(json_object_get(sd, "kind")), "resource") != 0)
            continue;
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

/* The invariants of one data type, compiled once. */
typedef struct {
    const fhir_type_t *type;
    const char *keys[16];
    fhirpath_t *exprs[16];
    size_t n;
    size_t elements; /* elements checked so far; MAX_ELEMENTS_PER_TYPE keeps the test short */
} type_rules_t;

#define MAX_ELEMENTS_PER_TYPE 2000

/* Data type invariants (Period per-1, Quantity qty-3, ElementDefinition eld-*, ...) on every
 * element of that type in the examples, each evaluated with the element as a typed %context,
 * as a validator would. */
static void test_datatype_invariants(void **state)
{
    (void)state;
    if (definitions.n == 0) {
        print_message("skipped: no StructureDefinition in %s\n", package_dir);
        skip();
    }
    type_rules_t rules[64];
    size_t nrules = 0, failures = 0, evaluations = 0, too_large = 0;
    for (size_t i = 0; i < definitions.n && nrules < 64; i++) {
        json_t *sd = definitions.items[i];
        if (strcmp(json_string_value(json_object_get(sd, "kind")), "complex-type") != 0)
            continue;
        const char *type = json_string_value(json_object_get(sd, "type"));
        type_rules_t *r = &rules[nrules];
        r->type = fhir_type_find(type, strlen(type));
        r->n = 0;
        r->elements = 0;
        json_t *snapshot = json_object_get(sd, "snapshot");
        json_t *root = json_array_get(json_object_get(snapshot, "element"), 0);
        json_t *constraints = json_object_get(root, "constraint");
        for (size_t c = 0; c < json_array_size(constraints) && r->n < 16; c++) {
            json_t *con = json_array_get(constraints, c);
            const char *key = json_string_value(json_object_get(con, "key"));
            const char *text = json_string_value(json_object_get(con, "expression"));
            if (!key || !text || strncmp(key, "ele-", 4) == 0 || strncmp(key, "ext-", 4) == 0)
                continue;
            err_t err = ERR_INIT;
            fhirpath_t *expr = fhirpath_compile(text, strlen(text), &err);
            if (!expr) {
                print_error("%s: %s: %s\n", key, text, err_message(&err));
                failures++;
            } else {
                r->keys[r->n] = key;
                r->exprs[r->n++] = expr;
            }
            err_release(&err);
        }
        if (r->type && r->n)
            nrules++;
    }
    err_t compile_err = ERR_INIT;
    fhirpath_t *all = fhirpath_compile("descendants()", 13, &compile_err);
    assert_non_null(all);
    err_release(&compile_err);
    for (size_t k = 0; k < examples.n; k++) {
        arena_t arena;
        arena_init(&arena);
        err_t err = ERR_INIT;
        fhirpath_env_t env;
        fhirpath_env_init(&env, examples.items[k]);
        fhirpath_result_t *nodes;
        if (fhirpath_eval(all, &env, &arena, &nodes, &err)) {
            too_large++; /* a few StructureDefinitions pass the item budget */
            err_release(&err);
            arena_release(&arena);
            continue;
        }
        for (size_t i = 0; i < fhirpath_result_count(nodes); i++) {
            const fhirpath_item_t *node = fhirpath_result_item(nodes, i);
            const fhir_type_t *type = fhirpath_item_fhir_type(node);
            for (size_t r = 0; r < nrules && type; r++) {
                if (rules[r].type != type || rules[r].elements++ >= MAX_ELEMENTS_PER_TYPE)
                    continue;
                fhirpath_env_t element;
                fhirpath_env_init(&element, examples.items[k]);
                element.context = fhirpath_item_json(node);
                element.context_type = type;
                for (size_t e = 0; e < rules[r].n; e++) {
                    fhirpath_result_t *result;
                    evaluations++;
                    if (fhirpath_eval(rules[r].exprs[e], &element, &arena, &result, &err)) {
                        print_error("%s at %s: %s\n", rules[r].keys[e],
                                    fhirpath_item_path(node, &arena), err_message(&err));
                        failures++;
                        err_reset(&err);
                    }
                }
            }
        }
        err_release(&err);
        arena_release(&arena);
    }
    for (size_t r = 0; r < nrules; r++)
        for (size_t e = 0; e < rules[r].n; e++)
            fhirpath_free(rules[r].exprs[e]);
    fhirpath_free(all);
    print_message("%zu data types with invariants, %zu evaluations, %zu examples too large "
                  "for descendants()\n",
                  nrules, evaluations, too_large);
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_search_parameters),
        cmocka_unit_test(test_invariants),
        cmocka_unit_test(test_datatype_invariants),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
