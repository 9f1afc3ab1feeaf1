/*
 * compartment.c - tests of the generated compartment table (src/fhir/compartment.c,
 * compartment_gen.c): members and their parameters as the R4 CompartmentDefinitions say.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fhir/compartment.h"
#include "fhir/search.h"

static const fhir_type_t *type_of(const char *name)
{
    const fhir_type_t *t = fhir_resource_type_find(name, strlen(name));
    assert_non_null(t);
    return t;
}

static void test_patient_compartment(void **state)
{
    (void)state;
    assert_true(fhir_compartment_exists("Patient"));
    assert_true(fhir_compartment_exists("Encounter"));
    assert_true(fhir_compartment_exists("RelatedPerson"));
    assert_true(fhir_compartment_exists("Practitioner"));
    assert_true(fhir_compartment_exists("Device"));
    assert_false(fhir_compartment_exists("Observation"));
    const char *const *params;
    size_t n;
    assert_true(fhir_compartment_params("Patient", type_of("Observation"), &params, &n));
    assert_int_equal(n, 2);
    assert_string_equal(params[0], "subject");
    assert_string_equal(params[1], "performer");
    assert_true(fhir_compartment_params("Patient", type_of("AllergyIntolerance"), &params, &n));
    assert_int_equal(n, 3);
    assert_true(fhir_compartment_params("Patient", type_of("Patient"), &params, &n));
    assert_int_equal(n, 1);
    assert_string_equal(params[0], "link");
    assert_false(fhir_compartment_params("Patient", type_of("Organization"), &params, &n));
    assert_int_equal(n, 0);
    /* Encounter is in its own compartment through {def}: no parameter */
    assert_true(fhir_compartment_params("Encounter", type_of("Encounter"), &params, &n));
    assert_int_equal(n, 0);
    assert_false(fhir_compartment_params("Nothing", type_of("Observation"), &params, &n));
}

/* Every parameter named is a reference parameter of its type in the registry. */
static void test_parameters_exist(void **state)
{
    (void)state;
    static const char *const compartments[] = {"Patient", "Encounter", "RelatedPerson",
                                               "Practitioner", "Device"};
    size_t checked = 0;
    for (size_t c = 0; c < 5; c++) {
        for (size_t i = 0; i < fhir_resource_type_count; i++) {
            const char *const *params;
            size_t n;
            if (!fhir_compartment_params(compartments[c], fhir_resource_types[i], &params, &n))
                continue;
            for (size_t k = 0; k < n; k++) {
                const fhir_search_param_t *p =
                    fhir_search_param_find(fhir_resource_types[i], params[k], strlen(params[k]));
                assert_non_null(p);
                assert_int_equal(p->type, FHIR_SEARCH_REFERENCE);
                checked++;
            }
        }
    }
    assert_true(checked > 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patient_compartment),
        cmocka_unit_test(test_parameters_exist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
