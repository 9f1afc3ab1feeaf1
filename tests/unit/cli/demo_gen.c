/*
 * Unit tests for src/cli/demo_gen.c: the calendar arithmetic, the seeded streams, and the
 * population's determinism and consistency: the same seed makes the same bytes, every
 * reference of a patient's resources points to a resource made before it, each care team has
 * exactly one primary coordinator, and the prevalence of the conditions follows the rules.
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
#include "cli/demo_gen.h"

static void test_dates(void **state)
{
    (void)state;
    assert_int_equal(demo_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(demo_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(demo_days_from_civil(2026, 11, 23), 20780);
    assert_int_equal(demo_days_from_civil(1948, 3, 12), -7965);
    for (int64_t d = -40000; d < 40000; d += 17) {
        int y, m, day;
        demo_civil_from_days(d, &y, &m, &day);
        assert_int_equal(demo_days_from_civil(y, m, day), d);
    }
    int64_t days;
    assert_true(demo_parse_date("2024-02-29", &days));
    assert_int_equal(days, demo_days_from_civil(2024, 2, 29));
    assert_false(demo_parse_date("2026-02-29", &days));
    assert_false(demo_parse_date("2026-13-01", &days));
    assert_false(demo_parse_date("2026-1-01", &days));
    assert_false(demo_parse_date("2026-01-01T00", &days));
    assert_false(demo_parse_date("", &days));
}

static void test_streams(void **state)
{
    (void)state;
    demo_rng_t a, b, c;
    demo_rng_seed(&a, 42, 3);
    demo_rng_seed(&b, 42, 3);
    demo_rng_seed(&c, 42, 4);
    int same = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = demo_rng_next(&a), y = demo_rng_next(&b), z = demo_rng_next(&c);
        assert_true(x == y);
        same += x == z;
    }
    assert_int_equal(same, 0);
    double sum = 0;
    for (int i = 0; i < 10000; i++) {
        double u = demo_rng_unit(&a);
        assert_true(u >= 0 && u < 1);
        int r = demo_rng_range(&a, 3, 5);
        assert_true(r >= 3 && r <= 5);
        sum += u;
    }
    assert_true(sum / 10000 > 0.48 && sum / 10000 < 0.52);
}

/* Collects what the generator emits: the NDJSON text and the ids seen so far. */
typedef struct {
    buf_t text;
    json_t *ids;      /* "Type/id" -> true */
    size_t dangling;  /* references to nothing emitted before */
    size_t resources;
    size_t coordinators_per_team_wrong;
} sink_t;

static void check_references(sink_t *s, const json_t *value)
{
    if (json_is_object(value)) {
        const char *key;
        json_t *member;
        json_object_foreach((json_t *)value, key, member)
        {
            if (strcmp(key, "reference") == 0 && json_is_string(member)) {
                if (!json_object_get(s->ids, json_string_value(member))) {
                    fprintf(stderr, "dangling %s\n", json_string_value(member));
                    s->dangling++;
                }
            } else {
                check_references(s, member);
            }
        }
    } else if (json_is_array(value)) {
        for (size_t i = 0; i < json_array_size(value); i++)
            check_references(s, json_array_get(value, i));
    }
}

static void collect(void *ctx, demo_phase_t phase, json_t *resource)
{
    (void)phase;
    sink_t *s = ctx;
    jv_dump(resource, &s->text);
    buf_addch(&s->text, '\n');
    check_references(s, resource);
    char key[160];
    snprintf(key, sizeof(key), "%s/%s",
             json_string_value(json_object_get(resource, "resourceType")),
             json_string_value(json_object_get(resource, "id")));
    json_object_set_new(s->ids, key, json_true());
    s->resources++;
    if (strcmp(json_string_value(json_object_get(resource, "resourceType")), "CareTeam") == 0) {
        size_t n = 0, i;
        json_t *p;
        json_array_foreach(json_object_get(resource, "participant"), i, p)
        {
            json_t *coding = json_array_get(
                json_object_get(json_array_get(json_object_get(p, "role"), 0), "coding"), 0);
            const char *code = json_string_value(json_object_get(coding, "code"));
            n += code && strcmp(code, "768820003") == 0;
        }
        s->coordinators_per_team_wrong += n != 1;
    }
}

static void make(sink_t *s, uint64_t seed, size_t patients)
{
    buf_init(&s->text, 0);
    s->ids = json_object();
    s->dangling = s->resources = s->coordinators_per_team_wrong = 0;
    demo_gen_t g;
    demo_gen_init(&g, seed, demo_days_from_civil(2026, 6, 15), patients);
    demo_gen_staff(&g, collect, s);
    for (size_t i = 0; i < patients; i++)
        demo_gen_patient(&g, i, collect, s);
}

static void release(sink_t *s)
{
    buf_release(&s->text);
    json_decref(s->ids);
}

static void test_population_is_deterministic_and_consistent(void **state)
{
    (void)state;
    sink_t a, b, c;
    make(&a, 11, 50);
    make(&b, 11, 50);
    make(&c, 12, 50);
    assert_int_equal(a.text.len, b.text.len);
    assert_memory_equal(a.text.ptr, b.text.ptr, a.text.len);
    assert_true(a.text.len != c.text.len || memcmp(a.text.ptr, c.text.ptr, a.text.len) != 0);
    assert_int_equal(a.dangling, 0);
    assert_int_equal(c.dangling, 0);
    assert_int_equal(a.coordinators_per_team_wrong, 0);
    assert_true(a.resources > 50 * 20);
    assert_non_null(json_object_get(a.ids, "Patient/maria-gonzalez"));
    assert_non_null(json_object_get(a.ids, "Practitioner/rn-lindqvist"));
    assert_non_null(json_object_get(a.ids, "CareTeam/maria-gonzalez-care-team"));
    release(&a);
    release(&b);
    release(&c);
}

static void test_traits_follow_the_rules(void **state)
{
    (void)state;
    demo_gen_t small, large;
    demo_gen_init(&small, 5, demo_days_from_civil(2026, 6, 15), 100);
    demo_gen_init(&large, 5, demo_days_from_civil(2026, 6, 15), 20000);
    size_t diabetic = 0, ckd_diabetic = 0, other = 0, ckd_other = 0, older = 0;
    for (size_t i = 0; i < 20000; i++) {
        demo_traits_t t;
        demo_gen_traits(&large, i, &t);
        if (i < 100) {
            demo_traits_t u;
            demo_gen_traits(&small, i, &u);
            assert_int_equal(t.age, u.age);
            assert_int_equal(t.conditions, u.conditions);
        }
        assert_true(t.conditions != 0);
        assert_true(t.age >= 18 && t.age <= 100);
        older += t.age >= 50 && t.age <= 90;
        if (t.conditions & DEMO_DIABETES) {
            diabetic++;
            ckd_diabetic += (t.conditions & DEMO_CKD) != 0;
        } else {
            other++;
            ckd_other += (t.conditions & DEMO_CKD) != 0;
        }
    }
    assert_true(older > 20000 * 0.75);
    assert_true(diabetic > 20000 * 0.3 && diabetic < 20000 * 0.55);
    /* CKD is more than twice as common with diabetes */
    assert_true((double)ckd_diabetic / (double)diabetic >
                2.0 * (double)ckd_other / (double)other);
    demo_traits_t maria;
    demo_gen_traits(&small, 0, &maria);
    assert_true(maria.female);
    assert_true(maria.conditions & DEMO_HEART_FAILURE);
    assert_true(maria.conditions & DEMO_DIABETES);
}

static void test_accounts_cover_the_staff_roles(void **state)
{
    (void)state;
    static const char *const roles[] = {"admin",      "coordinator",   "nurse",
                                        "physician",  "pharmacist",    "social-worker",
                                        "community-health-worker", "patient"};
    size_t n;
    const demo_account_t *accounts = demo_gen_accounts(&n);
    for (size_t r = 0; r < sizeof(roles) / sizeof(roles[0]); r++) {
        bool found = false;
        for (size_t i = 0; i < n; i++)
            found |= strcmp(accounts[i].role, roles[r]) == 0;
        assert_true(found);
    }
    /* staff other than the admin are linked to Practitioners the generator makes */
    sink_t s;
    make(&s, 1, 10);
    for (size_t i = 0; i < n; i++) {
        char key[96];
        if (accounts[i].practitioner_id) {
            snprintf(key, sizeof(key), "Practitioner/%s", accounts[i].practitioner_id);
            assert_non_null(json_object_get(s.ids, key));
        }
        if (accounts[i].patient_id) {
            snprintf(key, sizeof(key), "Patient/%s", accounts[i].patient_id);
            assert_non_null(json_object_get(s.ids, key));
        }
    }
    release(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_streams),
        cmocka_unit_test(test_population_is_deterministic_and_consistent),
        cmocka_unit_test(test_traits_follow_the_rules),
        cmocka_unit_test(test_accounts_cover_the_staff_roles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
