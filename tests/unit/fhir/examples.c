/*
 * examples.c - validates every official example of the FHIR R4 package.
 *
 * Each *.json of the package directory (CONCERTO_FHIR_PACKAGE, default
 * build/fhir/hl7.fhir.r4.examples/package; package.json and .index.json files excluded) is
 * parsed with jv_parse and validated. tests/data/invalid-examples.txt lists the examples that
 * are themselves invalid, with the reason; the test fails when an unlisted example has an
 * issue or a listed one has none. Without the package the test prints "skipped" and passes.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/jv.h"
#include "base/mem.h"
#include "fhir/validate.h"

#define DEFAULT_PACKAGE "build/fhir/hl7.fhir.r4.examples/package"
#define INVALID_LIST "tests/data/invalid-examples.txt"

static const char *package_dir;

typedef struct {
    char **names;
    size_t n, cap;
} names_t;

static void names_add(names_t *list, const char *name, size_t len)
{
    if (list->n == list->cap) {
        list->cap = list->cap ? list->cap * 2 : 64;
        list->names = xrealloc(list->names, list->cap * sizeof(*list->names));
    }
    list->names[list->n++] = xstrndup(name, len);
}

static void names_release(names_t *list)
{
    for (size_t i = 0; i < list->n; i++)
        free(list->names[i]);
    free(list->names);
}

static int name_compare(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool names_contain(const names_t *list, const char *name)
{
    return list->n &&
           bsearch(&name, list->names, list->n, sizeof(*list->names), name_compare) != NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool read_file(const char *path, buf_t *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(out, chunk, n);
    bool ok = !ferror(f);
    fclose(f);
    return ok;
}

/* The file names of tests/data/invalid-examples.txt: "Name.json  reason", '#' comments. */
static void load_invalid_list(names_t *list)
{
    buf_t text = BUF_INIT;
    assert_true(read_file(INVALID_LIST, &text));
    const char *p = text.ptr, *end = text.ptr + text.len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        const char *q = p;
        while (q < eol && *q != ' ' && *q != '\t')
            q++;
        if (q > p && *p != '#') {
            assert_true(q < eol); /* every entry gives its reason */
            names_add(list, p, (size_t)(q - p));
        }
        p = eol + 1;
    }
    buf_release(&text);
    if (list->n)
        qsort(list->names, list->n, sizeof(*list->names), name_compare);
}

static void test_examples(void **state)
{
    (void)state;
    names_t files = {0}, invalid = {0}, used = {0};
    DIR *dir = opendir(package_dir);
    assert_non_null(dir);
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        const char *name = entry->d_name;
        if (!ends_with(name, ".json") || ends_with(name, ".index.json") ||
            strcmp(name, "package.json") == 0)
            continue;
        names_add(&files, name, strlen(name));
    }
    closedir(dir);
    qsort(files.names, files.n, sizeof(*files.names), name_compare);
    load_invalid_list(&invalid);

    size_t failures = 0, flagged = 0;
    buf_t text = BUF_INIT, path = BUF_INIT;
    for (size_t i = 0; i < files.n; i++) {
        const char *name = files.names[i];
        buf_reset(&path);
        buf_addf(&path, "%s/%s", package_dir, name);
        buf_reset(&text);
        assert_true(read_file(path.ptr, &text));
        err_t err = ERR_INIT;
        json_t *resource = jv_parse(text.ptr, text.len, &err);
        if (resource)
            fhir_validate(resource, &err);
        json_decref(resource);
        bool listed = names_contain(&invalid, name);
        if (listed) {
            names_add(&used, name, strlen(name));
            flagged++;
        }
        if (err.nissues > 0 && !listed) {
            failures++;
            for (size_t k = 0; k < err.nissues && k < 5; k++) {
                printf("FAIL %s: %s [%s] (%s)\n", name, err.issues[k].message,
                       err.issues[k].expression ? err.issues[k].expression : "",
                       err_name(err.issues[k].code));
            }
            if (err.nissues > 5)
                printf("FAIL %s: ... %zu issues in all\n", name, err.nissues);
        } else if (err.nissues == 0 && listed) {
            failures++;
            printf("FAIL %s: listed in %s but valid\n", name, INVALID_LIST);
        }
        err_release(&err);
    }
    if (used.n)
        qsort(used.names, used.n, sizeof(*used.names), name_compare);
    for (size_t i = 0; i < invalid.n; i++) {
        if (!names_contain(&used, invalid.names[i])) {
            failures++;
            printf("FAIL %s: listed in %s but not in the package\n", invalid.names[i],
                   INVALID_LIST);
        }
    }
    printf("examples: %zu checked, %zu listed as invalid, %zu failures\n", files.n, flagged,
           failures);
    buf_release(&text);
    buf_release(&path);
    names_release(&files);
    names_release(&invalid);
    names_release(&used);
    assert_int_equal(failures, 0);
}

int main(void)
{
    package_dir = getenv("CONCERTO_FHIR_PACKAGE");
    if (!package_dir || !*package_dir)
        package_dir = DEFAULT_PACKAGE;
    struct stat st;
    if (stat(package_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("skipped: package not found\n");
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
