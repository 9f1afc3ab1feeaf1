/*
 * Tests for src/auth/scope.c: SMART v1 and v2 scope syntax, what a scope set allows, what a
 * client is granted, and the scope string given back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "repo/scope.h"

static arena_t arena;

static int setup(void **state)
{
    (void)state;
    arena_init(&arena);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    arena_release(&arena);
    return 0;
}

static scope_set_t parse(const char *text)
{
    scope_set_t set;
    scope_parse(&arena, text, strlen(text), &set);
    return set;
}

static void test_parse_v1_and_v2(void **state)
{
    (void)state;
    scope_set_t s = parse("patient/Observation.read user/*.write system/*.* "
                          "patient/Observation.rs user/Task.cruds user/Patient.s");
    assert_int_equal(s.nunknown, 0);
    assert_int_equal(s.nresources, 6);
    const struct {
        scope_context_t context;
        const char *type;
        unsigned perms;
        bool v1;
    } expected[] = {
        {SCOPE_PATIENT, "Observation", SCOPE_R | SCOPE_S, true},
        {SCOPE_USER, "*", SCOPE_C | SCOPE_U | SCOPE_D, true},
        {SCOPE_SYSTEM, "*", SCOPE_CRUDS, true},
        {SCOPE_PATIENT, "Observation", SCOPE_R | SCOPE_S, false},
        {SCOPE_USER, "Task", SCOPE_CRUDS, false},
        {SCOPE_USER, "Patient", SCOPE_S, false},
    };
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(s.resources[i].context, expected[i].context);
        assert_string_equal(s.resources[i].type, expected[i].type);
        assert_int_equal(s.resources[i].perms, expected[i].perms);
        assert_int_equal(s.resources[i].v1, expected[i].v1);
        assert_null(s.resources[i].query);
    }
    assert_string_equal(s.resources[1].text, "user/*.write");
}

static void test_parse_flags_and_restrictions(void **state)
{
    (void)state;
    scope_set_t s = parse("  openid fhirUser  profile launch launch/patient launch/encounter "
                          "offline_access online_access "
                          "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/"
                          "observation-category|laboratory&status=final");
    assert_int_equal(s.flags, SCOPE_OPENID | SCOPE_FHIR_USER | SCOPE_PROFILE | SCOPE_LAUNCH |
                                  SCOPE_LAUNCH_PATIENT | SCOPE_LAUNCH_ENCOUNTER |
                                  SCOPE_OFFLINE_ACCESS | SCOPE_ONLINE_ACCESS);
    assert_int_equal(s.nunknown, 0);
    assert_int_equal(s.nresources, 1);
    const scope_resource_t *r = &s.resources[0];
    assert_int_equal(r->nparams, 2);
    assert_string_equal(r->params[0].name, "category");
    assert_string_equal(r->params[0].value,
                        "http://terminology.hl7.org/CodeSystem/observation-category|laboratory");
    assert_string_equal(r->params[1].name, "status");
    assert_string_equal(r->params[1].value, "final");
    assert_string_equal(r->query, "category=http://terminology.hl7.org/CodeSystem/"
                                  "observation-category|laboratory&status=final");
    /* percent-encoded values are decoded */
    s = parse("user/Condition.rs?code=a%7Cb");
    assert_int_equal(s.nresources, 1);
    assert_string_equal(s.resources[0].params[0].value, "a|b");
}

static void test_parse_unknown_and_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "patient/Observation.sr",    /* out of order */
        "patient/Observation.rr",    /* twice */
        "patient/Observation.x",     /* not a permission */
        "patient/Observation.",      /* none */
        "patient/Observation",       /* no dot */
        "patient/Observations.read", /* not a resource type */
        "patient/observation.read",  /* case matters */
        "practitioner/*.read",       /* not a context */
        "Patient/*.read",            /* case matters */
        "patient/*.read?category=x", /* a restriction in v1 syntax */
        "patient/*.rs?",             /* an empty restriction */
        "patient/*.rs?category",     /* without a value */
        "patient/*.rs?=x",           /* without a name */
        "launch/location",           /* not a SMART context */
        "OpenID",                    /* case matters */
        "email",                     /* another server's scope */
        "patient/*.r\x7fs",          /* not a scope-token character */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        scope_set_t s = parse(bad[i]);
        if (s.nresources != 0 || s.flags != 0 || s.nunknown != 1)
            fail_msg("\"%s\" was understood", bad[i]);
        assert_string_equal(s.unknown[0], bad[i]);
    }
    scope_set_t s = parse("openid email patient/*.read junk");
    assert_int_equal(s.flags, SCOPE_OPENID);
    assert_int_equal(s.nresources, 1);
    assert_int_equal(s.nunknown, 2);
    assert_string_equal(s.unknown[0], "email");
    assert_string_equal(s.unknown[1], "junk");
    s = parse("");
    assert_int_equal(s.nresources + s.nunknown + s.flags, 0);
}

static void test_allows(void **state)
{
    (void)state;
    scope_set_t s = parse("patient/Observation.rs user/*.cud patient/Condition.r "
                          "patient/DiagnosticReport.rs?category=LAB");
    assert_int_equal(scope_allows(&s, SCOPE_PATIENT, "Observation", SCOPE_R), SCOPE_PERMITTED);
    assert_int_equal(scope_allows(&s, SCOPE_PATIENT, "Observation", SCOPE_S), SCOPE_PERMITTED);
    assert_int_equal(scope_allows(&s, SCOPE_PATIENT, "Observation", SCOPE_R | SCOPE_S),
                     SCOPE_PERMITTED);
    assert_int_equal(scope_allows(&s, SCOPE_PATIENT, "Observation", SCOPE_C), SCOPE_DENIED);
    assert_int_equal(scope_allows(&s, SCOPE_PATIENT, "Patient", SCOPE_R), SCOPE_DENIED);
    /* read without search */
    assert_int_equal(scope_allows(&s, SCOPE_PATIENT, "Condition", SCOPE_R), SCOPE_PERMITTED);
    assert_int_equal(scope_allows(&s, SCOPE_PATIENT, "Condition", SCOPE_S), SCOPE_DENIED);
    /* the wildcard type, and contexts that do not stand in for each other */
    assert_int_equal(scope_allows(&s, SCOPE_USER, "Task", SCOPE_U), SCOPE_PERMITTED);
    assert_int_equal(scope_allows(&s, SCOPE_USER, "Task", SCOPE_R), SCOPE_DENIED);
    assert_int_equal(scope_allows(&s, SCOPE_PATIENT, "Task", SCOPE_U), SCOPE_DENIED);
    assert_int_equal(scope_allows(&s, SCOPE_SYSTEM, "Observation", SCOPE_R), SCOPE_DENIED);
    assert_int_equal(scope_allows(&s, SCOPE_USER, "Observation", SCOPE_C | SCOPE_R), SCOPE_DENIED);
    /* a restricted scope allows only what it selects */
    assert_int_equal(scope_allows(&s, SCOPE_PATIENT, "DiagnosticReport", SCOPE_R),
                     SCOPE_RESTRICTED);
    scope_set_t both = parse("patient/DiagnosticReport.rs?category=LAB patient/*.r");
    assert_int_equal(scope_allows(&both, SCOPE_PATIENT, "DiagnosticReport", SCOPE_R),
                     SCOPE_PERMITTED);
    assert_int_equal(scope_allows(&both, SCOPE_PATIENT, "DiagnosticReport", SCOPE_S),
                     SCOPE_RESTRICTED);
    /* v1 and v2 mean the same */
    scope_set_t v1 = parse("user/*.write"), v2 = parse("user/*.cud");
    for (unsigned bit = 1; bit <= SCOPE_S; bit <<= 1)
        assert_int_equal(scope_allows(&v1, SCOPE_USER, "Task", bit),
                         scope_allows(&v2, SCOPE_USER, "Task", bit));
    scope_set_t none = parse("openid fhirUser");
    assert_int_equal(scope_allows(&none, SCOPE_USER, "Patient", SCOPE_R), SCOPE_DENIED);
}

static const char *granted(const char *requested, const char *allowed)
{
    scope_set_t r = parse(requested), a = parse(allowed), g;
    scope_intersect(&arena, &r, &a, &g);
    buf_t out = BUF_INIT;
    scope_format(&g, &out);
    char *text = arena_strdup(&arena, out.ptr);
    buf_release(&out);
    return text;
}

static void test_intersect_and_format(void **state)
{
    (void)state;
    /* unchanged scopes come back as written, v1 included */
    assert_string_equal(granted("launch/patient openid fhirUser patient/Observation.read",
                                "openid fhirUser launch/patient patient/*.*"),
                        "openid fhirUser launch/patient patient/Observation.read");
    /* narrowed: type from the allowed side, permissions of both */
    assert_string_equal(granted("patient/*.rs", "patient/Observation.cruds patient/Patient.r"),
                        "patient/Observation.rs patient/Patient.r");
    assert_string_equal(granted("user/*.write", "user/Task.cu"), "user/Task.cu");
    assert_string_equal(granted("user/Task.cruds", "user/*.read"), "user/Task.rs");
    /* nothing in common: different context, type or permissions */
    assert_string_equal(granted("patient/Observation.rs", "user/Observation.rs"), "");
    assert_string_equal(granted("patient/Observation.rs", "patient/Condition.rs"), "");
    assert_string_equal(granted("patient/Observation.c", "patient/Observation.rs"), "");
    /* flags only when both have them; unknown tokens are not granted */
    assert_string_equal(granted("openid offline_access email", "openid online_access"), "openid");
    scope_set_t r = parse("openid email patient/Foo.read"), a = parse("openid"), g;
    scope_intersect(&arena, &r, &a, &g);
    assert_int_equal(g.nunknown, 2);
    assert_string_equal(g.unknown[0], "email");
    assert_string_equal(g.unknown[1], "patient/Foo.read");
    /* restrictions of both sides hold */
    assert_string_equal(granted("patient/Observation.rs?category=vital-signs", "patient/*.rs"),
                        "patient/Observation.rs?category=vital-signs");
    assert_string_equal(granted("patient/Observation.rs", "patient/Observation.rs?status=final"),
                        "patient/Observation.rs?status=final");
    assert_string_equal(
        granted("patient/Observation.rs?category=laboratory", "patient/*.r?status=final"),
        "patient/Observation.r?category=laboratory&status=final");
    r = parse("patient/Observation.rs");
    a = parse("patient/Observation.rs?status=final");
    scope_intersect(&arena, &r, &a, &g);
    assert_int_equal(g.nresources, 1);
    assert_int_equal(scope_allows(&g, SCOPE_PATIENT, "Observation", SCOPE_R), SCOPE_RESTRICTED);
    /* the same grant from two allowed scopes appears once */
    assert_string_equal(granted("patient/Observation.rs", "patient/*.rs patient/Observation.rs"),
                        "patient/Observation.rs");
    /* the granted set answers queries as the scopes it shows */
    r = parse("user/*.cruds");
    a = parse("user/Task.cruds user/Patient.rs");
    scope_intersect(&arena, &r, &a, &g);
    assert_int_equal(scope_allows(&g, SCOPE_USER, "Task", SCOPE_D), SCOPE_PERMITTED);
    assert_int_equal(scope_allows(&g, SCOPE_USER, "Patient", SCOPE_S), SCOPE_PERMITTED);
    assert_int_equal(scope_allows(&g, SCOPE_USER, "Patient", SCOPE_U), SCOPE_DENIED);
    assert_int_equal(scope_allows(&g, SCOPE_USER, "Observation", SCOPE_R), SCOPE_DENIED);
}

static void test_query_scopes_are_named(void **state)
{
    (void)state;
    scope_set_t r = parse("openid patient/*.rs"), a = parse("patient/*.rs"), g;
    scope_intersect(&arena, &r, &a, &g);
    assert_null(scope_query_unsupported(&arena, &r, &g));
    assert_null(scope_query_unsupported(&arena, NULL, NULL));
    /* asked for: named as written */
    r = parse("openid patient/Patient.rs patient/Observation.rs?category=laboratory");
    scope_intersect(&arena, &r, &a, &g);
    assert_string_equal(scope_query_unsupported(&arena, &r, &g),
                        "patient/Observation.rs?category=laboratory");
    /* from the client's registration: named as granted */
    r = parse("patient/*.rs");
    a = parse("patient/Observation.cruds?status=final");
    scope_intersect(&arena, &r, &a, &g);
    assert_string_equal(scope_query_unsupported(&arena, &r, &g),
                        "patient/Observation.rs?status=final");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_v1_and_v2),
        cmocka_unit_test(test_parse_flags_and_restrictions),
        cmocka_unit_test(test_parse_unknown_and_malformed),
        cmocka_unit_test(test_allows),
        cmocka_unit_test(test_intersect_and_format),
        cmocka_unit_test(test_query_scopes_are_named),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
