/*
 * subset.c - tests of _summary and _elements over a resource (src/fhir/subset.c), on the
 * official Patient example (tests/data/index/patient-example.json): which members stay, by
 * the isSummary flags and cardinalities of R4 (checked against the Patient definition).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/jv.h"
#include "fhir/subset.h"

static json_t *patient;

static int setup(void **state)
{
    (void)state;
    FILE *f = fopen("tests/data/index/patient-example.json", "rb");
    if (!f)
        return -1;
    buf_t b = BUF_INIT;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(&b, chunk, n);
    fclose(f);
    err_t err = ERR_INIT;
    patient = jv_parse(b.ptr, b.len, &err);
    err_release(&err);
    buf_release(&b);
    return patient ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(patient);
    return 0;
}

/* The member names of j joined with ",". */
static void names(const json_t *j, char *out, size_t size)
{
    buf_t b = BUF_INIT;
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)j, key, value)
    {
        buf_addstr(&b, b.len ? "," : "");
        buf_addstr(&b, key);
    }
    snprintf(out, size, "%s", b.ptr);
    buf_release(&b);
}

static bool subsetted(const json_t *j)
{
    json_t *tags = json_object_get(json_object_get(j, "meta"), "tag");
    for (size_t i = 0; i < json_array_size(tags); i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(tags, i), "code")),
                   "SUBSETTED") == 0)
            return true;
    return false;
}

static void test_summary_modes(void **state)
{
    (void)state;
    char got[512];
    json_t *j = fhir_subset(patient, FHIR_SEARCH_SUMMARY_TRUE, NULL, 0);
    names(j, got, sizeof(got));
    assert_string_equal(got, "resourceType,id,identifier,active,name,telecom,gender,birthDate,"
                             "_birthDate,deceasedBoolean,address,managingOrganization,meta");
    assert_true(subsetted(j));
    json_decref(j);
    j = fhir_subset(patient, FHIR_SEARCH_SUMMARY_TEXT, NULL, 0);
    names(j, got, sizeof(got));
    assert_string_equal(got, "resourceType,id,text,meta");
    json_decref(j);
    j = fhir_subset(patient, FHIR_SEARCH_SUMMARY_DATA, NULL, 0);
    assert_null(json_object_get(j, "text"));
    assert_non_null(json_object_get(j, "contact"));
    json_decref(j);
    assert_null(fhir_subset(patient, FHIR_SEARCH_SUMMARY_FALSE, NULL, 0));
    assert_null(fhir_subset(patient, FHIR_SEARCH_SUMMARY_NONE, NULL, 0));
    /* the original is untouched */
    assert_false(subsetted(patient));
}

static void test_elements(void **state)
{
    (void)state;
    static const char *const elements[] = {"name", "birthDate", "deceased"};
    char got[512];
    json_t *j = fhir_subset(patient, FHIR_SEARCH_SUMMARY_NONE, elements, 3);
    names(j, got, sizeof(got));
    assert_string_equal(got, "resourceType,id,name,birthDate,_birthDate,deceasedBoolean,meta");
    assert_true(subsetted(j));
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_summary_modes),
        cmocka_unit_test(test_elements),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
