/*
 * index.c - tests of search index extraction (src/fhir/index.c).
 *
 * The data-driven cases of tests/data/index are resources (NAME.json; four are official R4
 * examples, the others written to reach the edges: partial dates, zones, open periods,
 * Timing, comparators, Range, Money, versioned and absolute references, contained ones,
 * identifiers with a type, unicode names, meta) beside the rows they must give
 * (NAME.expected: fhir_index_row_render lines, sorted in byte order), checked by hand.
 * Inline cases check limits, failures and concurrent use of the compiled-expression memo.
 */
#include <dirent.h>
#include <pthread.h>
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
#include "base/err.h"
#include "base/jv.h"
#include "base/mem.h"
#include "fhir/index.h"
#include "fhir/search.h"

#define DATA_DIR "tests/data/index"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    buf_t b = BUF_INIT;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(&b, chunk, n);
    fclose(f);
    return buf_detach(&b, NULL);
}

static json_t *parse(const char *text)
{
    err_t err = ERR_INIT;
    json_t *j = jv_parse(text, strlen(text), &err);
    if (!j)
        fail_msg("%s", err_message(&err));
    err_release(&err);
    return j;
}

static int compare_lines(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The rows of resource rendered one per line, sorted; the caller frees the string. */
static char *rendered_rows(json_t *resource, size_t *out_failed)
{
    arena_t arena;
    arena_init(&arena);
    fhir_index_rows_t rows;
    err_t err = ERR_INIT;
    assert_int_equal(fhir_index_extract(NULL, resource, &arena, &rows, &err), ERR_OK);
    err_release(&err);
    char **lines = xcalloc(rows.n + 1, sizeof(char *));
    for (size_t i = 0; i < rows.n; i++) {
        buf_t line = BUF_INIT;
        fhir_index_row_render(&rows.rows[i], &line);
        lines[i] = buf_detach(&line, NULL);
    }
    qsort(lines, rows.n, sizeof(char *), compare_lines);
    buf_t out = BUF_INIT;
    for (size_t i = 0; i < rows.n; i++) {
        buf_addstr(&out, lines[i]);
        buf_addch(&out, '\n');
        free(lines[i]);
    }
    free(lines);
    if (out_failed)
        *out_failed = rows.nfailed;
    arena_release(&arena);
    return buf_detach(&out, NULL);
}

static void test_data_cases(void **state)
{
    (void)state;
    DIR *dir = opendir(DATA_DIR);
    assert_non_null(dir);
    size_t cases = 0, failures = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        char path[512], expected_path[512];
        snprintf(path, sizeof(path), "%s/%s", DATA_DIR, e->d_name);
        snprintf(expected_path, sizeof(expected_path), "%s/%.*s.expected", DATA_DIR, (int)(len - 5),
                 e->d_name);
        char *text = slurp(path), *expected = slurp(expected_path);
        assert_non_null(text);
        if (!expected)
            fail_msg("%s has no .expected beside it", path);
        json_t *resource = parse(text);
        size_t failed;
        char *got = rendered_rows(resource, &failed);
        cases++;
        if (strcmp(got, expected) != 0 || failed) {
            print_error("%s: rows differ (%zu expressions failed)\n--- expected\n%s--- got\n%s",
                        e->d_name, failed, expected, got);
            failures++;
        }
        free(got);
        free(expected);
        free(text);
        json_decref(resource);
    }
    closedir(dir);
    assert_true(cases >= 9);
    assert_int_equal(failures, 0);
}

static void test_not_a_resource(void **state)
{
    (void)state;
    json_t *j = parse("{\"resourceType\":\"Nonsense\"}");
    arena_t arena;
    arena_init(&arena);
    fhir_index_rows_t rows;
    err_t err = ERR_INIT;
    assert_int_equal(fhir_index_extract(NULL, j, &arena, &rows, &err), ERR_INVALID);
    err_release(&err);
    arena_release(&arena);
    json_decref(j);
}

static void test_too_many_rows(void **state)
{
    (void)state;
    buf_t b = BUF_INIT;
    buf_addstr(&b, "{\"resourceType\":\"Patient\",\"identifier\":[");
    for (int i = 0; i < FHIR_INDEX_MAX_ROWS + 1; i++)
        buf_addf(&b, "%s{\"value\":\"%d\"}", i ? "," : "", i);
    buf_addstr(&b, "]}");
    json_t *j = parse(b.ptr);
    arena_t arena;
    arena_init(&arena);
    fhir_index_rows_t rows;
    err_t err = ERR_INIT;
    assert_int_equal(fhir_index_extract(NULL, j, &arena, &rows, &err), ERR_TOO_LARGE);
    err_release(&err);
    arena_release(&arena);
    json_decref(j);
    buf_release(&b);
}

static void test_long_string_is_cut(void **state)
{
    (void)state;
    buf_t b = BUF_INIT;
    buf_addstr(&b, "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"");
    for (int i = 0; i < FHIR_INDEX_MAX_STRING; i++)
        buf_addstr(&b, "\xc3\xa9"); /* e with acute: two bytes each */
    buf_addstr(&b, "\"}]}");
    json_t *j = parse(b.ptr);
    arena_t arena;
    arena_init(&arena);
    fhir_index_rows_t rows;
    err_t err = ERR_INIT;
    assert_int_equal(fhir_index_extract(NULL, j, &arena, &rows, &err), ERR_OK);
    bool found = false;
    for (size_t i = 0; i < rows.n; i++) {
        if (strcmp(rows.rows[i].param, "family") != 0)
            continue;
        found = true;
        assert_int_equal(strlen(rows.rows[i].value.as.string.exact), FHIR_INDEX_MAX_STRING);
        /* normalized from the whole text (1,024 "e") and then cut, so that a search value
         * normalized and cut the same way is a prefix of it */
        assert_int_equal(strlen(rows.rows[i].value.as.string.normalized), FHIR_INDEX_MAX_STRING);
    }
    assert_true(found);
    err_release(&err);
    arena_release(&arena);
    json_decref(j);
    buf_release(&b);
}

/* Contained resources: rows of their own by their own type, apart from the container's;
 * the container's references "#id" as local_refs; none without an id or a known type. */
static void test_contained(void **state)
{
    (void)state;
    json_t *j =
        parse("{\"resourceType\":\"MedicationRequest\",\"status\":\"active\",\"intent\":\"order\","
              "\"subject\":{\"reference\":\"#p\"},\"medicationReference\":{\"reference\":\"#m\"},"
              "\"supportingInformation\":[{\"reference\":\"#m\"},{\"reference\":\"#\"}],"
              "\"contained\":[{\"resourceType\":\"Medication\",\"id\":\"m\",\"code\":{"
              "\"coding\":[{\"system\":\"http://rx\",\"code\":\"42\"}]}},"
              "{\"resourceType\":\"Patient\",\"id\":\"p\",\"name\":[{\"family\":\"Chalmers\"}]},"
              "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"No Id\"}]},"
              "{\"resourceType\":\"Nonsense\",\"id\":\"x\"}]}");
    arena_t arena;
    arena_init(&arena);
    fhir_index_rows_t rows;
    err_t err = ERR_INIT;
    assert_int_equal(fhir_index_extract(NULL, j, &arena, &rows, &err), ERR_OK);
    /* the container's rows hold no "#" reference and nothing of the contained ones */
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < rows.n; i++) {
        fhir_index_row_render(&rows.rows[i], &b);
        buf_addch(&b, '\n');
    }
    assert_null(strstr(b.ptr, "#"));
    assert_null(strstr(b.ptr, "chalmers"));
    assert_null(strstr(b.ptr, "42"));
    buf_reset(&b);
    /* local references: per parameter and id, once; a lone "#" is not one */
    for (size_t i = 0; i < rows.nlocal_refs; i++) {
        buf_addf(&b, "%s ", rows.local_refs[i].param);
        fhir_index_row_render(&rows.local_refs[i], &b);
        buf_addch(&b, '\n');
    }
    assert_non_null(strstr(b.ptr, "medication reference medication url=#m\n"));
    assert_non_null(strstr(b.ptr, "subject reference subject url=#p\n"));
    assert_null(strstr(b.ptr, "url=#\n"));
    buf_reset(&b);
    assert_int_equal(rows.ncontained, 2);
    assert_string_equal(rows.contained[0].type, "Medication");
    assert_string_equal(rows.contained[0].id, "m");
    assert_string_equal(rows.contained[1].type, "Patient");
    assert_string_equal(rows.contained[1].id, "p");
    for (size_t i = 0; i < rows.contained[0].n; i++) {
        fhir_index_row_render(&rows.contained[0].rows[i], &b);
        buf_addch(&b, '\n');
    }
    assert_non_null(strstr(b.ptr, "token code http://rx|42\n"));
    buf_reset(&b);
    for (size_t i = 0; i < rows.contained[1].n; i++) {
        fhir_index_row_render(&rows.contained[1].rows[i], &b);
        buf_addch(&b, '\n');
    }
    assert_non_null(strstr(b.ptr, "string family \"chalmers\" exact=\"Chalmers\"\n"));
    buf_release(&b);
    err_release(&err);
    arena_release(&arena);
    json_decref(j);
}

static void test_custom_parameter(void **state)
{
    (void)state;
    fhir_search_registry_t *registry = fhir_search_registry_new();
    err_t err = ERR_INIT;
    json_t *sp =
        parse("{\"resourceType\":\"SearchParameter\",\"url\":\"http://example.org/sp/nick\","
              "\"name\":\"nick\",\"status\":\"active\",\"code\":\"nick\","
              "\"base\":[\"Patient\"],\"type\":\"string\","
              "\"expression\":\"Patient.name.where(use = 'nickname').given\"}");
    assert_int_equal(fhir_search_registry_put(registry, sp, &err), ERR_OK);
    json_t *broken =
        parse("{\"resourceType\":\"SearchParameter\",\"url\":\"http://example.org/sp/b\","
              "\"name\":\"b\",\"status\":\"active\",\"code\":\"broken\","
              "\"base\":[\"Patient\"],\"type\":\"string\","
              "\"expression\":\"Patient.name.given + 1\"}");
    assert_int_equal(fhir_search_registry_put(registry, broken, &err), ERR_OK);
    json_t *patient = parse("{\"resourceType\":\"Patient\",\"name\":[{\"use\":\"nickname\","
                            "\"given\":[\"Bo\"]},{\"given\":[\"Robert\"]}]}");
    const fhir_search_snapshot_t *snapshot = fhir_search_registry_acquire(registry);
    arena_t arena;
    arena_init(&arena);
    fhir_index_rows_t rows;
    assert_int_equal(fhir_index_extract(snapshot, patient, &arena, &rows, &err), ERR_OK);
    size_t nick = 0;
    for (size_t i = 0; i < rows.n; i++)
        if (strcmp(rows.rows[i].param, "nick") == 0) {
            nick++;
            assert_string_equal(rows.rows[i].value.as.string.exact, "Bo");
        }
    assert_int_equal(nick, 1);
    assert_int_equal(rows.nfailed, 1); /* "broken" adds a number to strings */
    arena_release(&arena);
    fhir_search_snapshot_release(snapshot);
    fhir_search_registry_free(registry);
    err_release(&err);
    json_decref(sp);
    json_decref(broken);
    json_decref(patient);
}

/* Several threads extract at once: the memo compiles each expression once, safely. */
static void *extract_many(void *arg)
{
    json_t *resource = arg;
    for (int i = 0; i < 200; i++) {
        arena_t arena;
        arena_init(&arena);
        fhir_index_rows_t rows;
        err_t err = ERR_INIT;
        if (fhir_index_extract(NULL, resource, &arena, &rows, &err) || rows.n != 33)
            return (void *)1;
        err_release(&err);
        arena_release(&arena);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    char *text = slurp(DATA_DIR "/observation-blood-pressure.json");
    json_t *resource = parse(text);
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&threads[i], NULL, extract_many, resource);
    for (int i = 0; i < 4; i++) {
        void *rc;
        pthread_join(threads[i], &rc);
        assert_null(rc);
    }
    json_decref(resource);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_cases),       cmocka_unit_test(test_not_a_resource),
        cmocka_unit_test(test_too_many_rows),    cmocka_unit_test(test_long_string_is_cut),
        cmocka_unit_test(test_custom_parameter), cmocka_unit_test(test_threads),
        cmocka_unit_test(test_contained),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
