/*
 * search.c - tests of the search parameter registry (src/fhir/search_defs.c, the generated
 * search_gen.c): counts and order of the tables, lookups, restricted expressions, custom
 * parameters and snapshots read by several threads.
 */
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
#include "fhir/defs.h"
#include "fhir/search.h"
#include "fhir/search_int.h"

static const fhir_type_t *type_of(const char *name)
{
    const fhir_type_t *t = fhir_resource_type_find(name, strlen(name));
    assert_non_null(t);
    return t;
}

/* --- the registry ------------------------------------------------------------------------ */

static void test_counts(void **state)
{
    (void)state;
    fhir_search_counts_t c;
    fhir_search_builtin_counts(&c);
    /* 1,400 SearchParameter files: 24 experimental ones left out */
    assert_int_equal(c.definitions, 1376);
    assert_int_equal(c.parameters, 1697);
    assert_int_equal(c.common, 13);
    assert_int_equal(c.composite_definitions, 46);
    assert_int_equal(c.by_type[FHIR_SEARCH_NUMBER], 6);
    assert_int_equal(c.by_type[FHIR_SEARCH_DATE], 139);
    assert_int_equal(c.by_type[FHIR_SEARCH_STRING], 199);
    assert_int_equal(c.by_type[FHIR_SEARCH_TOKEN], 668);
    assert_int_equal(c.by_type[FHIR_SEARCH_REFERENCE], 517);
    assert_int_equal(c.by_type[FHIR_SEARCH_COMPOSITE], 72);
    assert_int_equal(c.by_type[FHIR_SEARCH_QUANTITY], 40);
    assert_int_equal(c.by_type[FHIR_SEARCH_URI], 55);
    assert_int_equal(c.by_type[FHIR_SEARCH_SPECIAL], 1);
    size_t total = 0;
    for (int t = 0; t <= FHIR_SEARCH_SPECIAL; t++)
        total += c.by_type[t];
    assert_int_equal(total, c.parameters);
}

/* The tables are sorted, every target names a resource type and every component names a
 * parameter of the same base. */
static void test_tables(void **state)
{
    (void)state;
    assert_int_equal(fhir__search_type_count, fhir_resource_type_count);
    for (size_t i = 0; i < fhir__search_type_count; i++) {
        const fhir__search_type_t *t = &fhir__search_types[i];
        assert_string_equal(t->name, fhir_resource_types[i]->name);
        for (size_t k = 0; k < t->nparams; k++) {
            const fhir_search_param_t *p = &t->params[k];
            assert_string_equal(p->base, t->name);
            if (k)
                assert_true(strcmp(t->params[k - 1].code, p->code) < 0);
            assert_non_null(p->url);
            if (p->type != FHIR_SEARCH_SPECIAL)
                assert_non_null(p->expression);
            for (size_t j = 0; j < p->ntargets; j++) {
                assert_non_null(fhir_resource_type_find(p->targets[j], strlen(p->targets[j])));
                if (j)
                    assert_true(strcmp(p->targets[j - 1], p->targets[j]) < 0);
            }
            assert_int_equal(p->ncomponents > 0, p->type == FHIR_SEARCH_COMPOSITE);
            for (size_t j = 0; j < p->ncomponents; j++) {
                const fhir_search_param_t *c = fhir_search_param_find(
                    fhir_resource_types[i], p->components[j].code, strlen(p->components[j].code));
                assert_non_null(c);
                assert_int_equal(c->type, p->components[j].type);
            }
            /* a union restricted to this base (or written for it) names it */
            if (p->expression && strchr(p->expression, '|') && strchr(p->expression, '.'))
                assert_non_null(strstr(p->expression, t->name));
        }
    }
    for (size_t i = 1; i < fhir__search_common_count; i++)
        assert_true(strcmp(fhir__search_common[i - 1].code, fhir__search_common[i].code) < 0);
}

static void test_builtin_lookups(void **state)
{
    (void)state;
    const fhir_type_t *patient = type_of("Patient");
    const fhir_search_param_t *p = fhir_search_param_find(patient, "birthdate", 9);
    assert_non_null(p);
    assert_int_equal(p->type, FHIR_SEARCH_DATE);
    assert_string_equal(p->expression, "Patient.birthDate");
    assert_string_equal(p->url, "http://hl7.org/fhir/SearchParameter/individual-birthdate");
    assert_int_equal(p->comparators, 0x1FF); /* all nine prefixes listed */
    assert_null(fhir_search_param_find(patient, "birth", 5));
    assert_null(fhir_search_param_find(patient, "birthdatex", 10));

    /* a union over many bases keeps the members of the base, qualifiers intact */
    p = fhir_search_param_find(type_of("CarePlan"), "patient", 7);
    assert_string_equal(p->expression, "CarePlan.subject.where(resolve() is Patient)");
    assert_int_equal(p->ntargets, 2); /* targets are the definition's, not restricted */
    assert_string_equal(p->targets[0], "Group");
    assert_string_equal(p->targets[1], "Patient");
    p = fhir_search_param_find(type_of("DeviceRequest"), "code", 4);
    assert_string_equal(p->expression, "(DeviceRequest.code as CodeableConcept)");
    p = fhir_search_param_find(type_of("ValueSet"), "context-quantity", 16);
    assert_string_equal(p->expression,
                        "(ValueSet.useContext.value as Quantity) | (ValueSet.useContext.value as "
                        "Range)");
    p = fhir_search_param_find(type_of("Observation"), "date", 4);
    assert_string_equal(p->expression, "Observation.effective");
    /* a single base keeps its expression as written, even a relative one */
    p = fhir_search_param_find(type_of("InsurancePlan"), "name", 4);
    assert_string_equal(p->expression, "name | alias");

    p = fhir_search_param_find(type_of("Observation"), "code-value-quantity", 19);
    assert_int_equal(p->type, FHIR_SEARCH_COMPOSITE);
    assert_int_equal(p->ncomponents, 2);
    assert_string_equal(p->components[0].code, "code");
    assert_int_equal(p->components[0].type, FHIR_SEARCH_TOKEN);
    assert_string_equal(p->components[0].definition,
                        "http://hl7.org/fhir/SearchParameter/clinical-code");
    assert_string_equal(p->components[1].code, "value-quantity");
    assert_int_equal(p->components[1].type, FHIR_SEARCH_QUANTITY);
    assert_string_equal(p->components[1].expression, "value.as(Quantity)");
    assert_false(p->multiple_or);
    assert_true(p->multiple_and);

    p = fhir_search_param_find(type_of("Observation"), "subject", 7);
    assert_int_equal(p->ntargets, 4);
    assert_string_equal(p->targets[0], "Device");
    assert_string_equal(p->targets[3], "Patient");
    p = fhir_search_param_find(type_of("Location"), "near", 4);
    assert_int_equal(p->type, FHIR_SEARCH_SPECIAL);
    assert_int_equal(p->xpath_usage, FHIR_SEARCH_XPATH_NEARBY);
    p = fhir_search_param_find(patient, "phonetic", 8);
    assert_int_equal(p->xpath_usage, FHIR_SEARCH_XPATH_PHONETIC);

    /* parameters for all resources */
    p = fhir_search_param_find(patient, "_id", 3);
    assert_string_equal(p->base, "Resource");
    assert_int_equal(p->type, FHIR_SEARCH_TOKEN);
    assert_string_equal(p->expression, "Resource.id");
    assert_non_null(fhir_search_param_find(patient, "_text", 5));
    assert_null(fhir_search_param_find(type_of("Bundle"), "_text", 5)); /* not a DomainResource */
    assert_non_null(fhir_search_param_find(type_of("Bundle"), "_lastUpdated", 12));
    assert_non_null(fhir_search_param_find(NULL, "_tag", 4));
    assert_null(fhir_search_param_find(NULL, "name", 4));
    p = fhir_search_param_find(NULL, "_has", 4);
    assert_null(p->url);
    assert_int_equal(p->type, FHIR_SEARCH_SPECIAL);
    p = fhir_search_param_find(NULL, "_profile", 8);
    assert_int_equal(p->type, FHIR_SEARCH_URI);
    /* a type without parameters of its own still has the common ones */
    assert_non_null(fhir_search_param_find(type_of("Binary"), "_id", 3));
    assert_null(fhir_search_param_find(type_of("Binary"), "contenttype", 11));
}

static void test_restrict(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    const char *const bases[] = {"AllergyIntolerance", "CarePlan", "Condition"};
    const char *e = "AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient) | "
                    "Condition.subject.where(resolve() is Patient)";
    assert_string_equal(fhir__search_restrict(&arena, e, "CarePlan", bases, 3),
                        "CarePlan.subject.where(resolve() is Patient)");
    assert_string_equal(fhir__search_restrict(&arena, e, "AllergyIntolerance", bases, 3),
                        "AllergyIntolerance.patient");
    /* members in parentheses, and a '|' inside a string literal */
    e = "(CarePlan.x as Reference) | Condition.extension('http://a|b').value | "
        "(CarePlan.y as Quantity)";
    assert_string_equal(fhir__search_restrict(&arena, e, "CarePlan", bases, 3),
                        "(CarePlan.x as Reference) | (CarePlan.y as Quantity)");
    assert_string_equal(fhir__search_restrict(&arena, e, "Condition", bases, 3),
                        "Condition.extension('http://a|b').value");
    /* kept whole: a member rooted elsewhere, a member naming two bases, unbalanced text, a
     * base without members */
    e = "CarePlan.x | subject";
    assert_ptr_equal(fhir__search_restrict(&arena, e, "CarePlan", bases, 3), e);
    e = "(CarePlan.x | Condition.y).first()";
    assert_ptr_equal(fhir__search_restrict(&arena, e, "CarePlan", bases, 3), e);
    e = "CarePlan.x | (Condition.y";
    assert_ptr_equal(fhir__search_restrict(&arena, e, "CarePlan", bases, 3), e);
    e = "CarePlan.x | Condition.y";
    assert_ptr_equal(fhir__search_restrict(&arena, e, "AllergyIntolerance", bases, 3), e);
    /* one base: as written */
    e = "CarePlan.x | Other.y";
    assert_ptr_equal(fhir__search_restrict(&arena, e, "CarePlan", bases, 1), e);
    arena_release(&arena);
}

/* The restriction of custom parameters agrees with the generator: for every definition with
 * several bases, the union of what each base kept, restricted again, gives each base's
 * expression back. */
static void test_restrict_matches_generator(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    size_t checked = 0;
    for (size_t i = 0; i < fhir__search_param_count; i++) {
        const fhir_search_param_t *p = &fhir__search_params[i];
        const char *bases[64];
        const char *expressions[64];
        size_t n = 0;
        bool first = true;
        for (size_t k = 0; k < fhir__search_param_count && n < 64; k++) {
            const fhir_search_param_t *q = &fhir__search_params[k];
            if (strcmp(q->url, p->url) != 0)
                continue;
            first = first && k >= i;
            bases[n] = q->base;
            expressions[n++] = q->expression;
        }
        if (n < 2 || !first)
            continue;
        buf_t all = BUF_INIT;
        for (size_t k = 0; k < n; k++)
            buf_addf(&all, "%s%s", k ? " | " : "", expressions[k]);
        for (size_t k = 0; k < n; k++) {
            const char *got = fhir__search_restrict(&arena, all.ptr, bases[k], bases, n);
            if (strcmp(got, expressions[k]) != 0)
                fail_msg("%s on %s: %s, generated %s", p->url, bases[k], got, expressions[k]);
        }
        buf_release(&all);
        checked++;
    }
    assert_int_equal(checked, 37); /* the R4 definitions with several bases */
    arena_release(&arena);
}

static void test_iteration(void **state)
{
    (void)state;
    const fhir_type_t *patient = type_of("Patient");
    fhir_search_iter_t it;
    fhir_search_iter_init(&it, fhir_search_builtin(), patient);
    size_t n = 0;
    const char *last = "";
    bool saw_birthdate = false, saw_text = false, saw_id = false;
    for (const fhir_search_param_t *p; (p = fhir_search_iter_next(&it));) {
        assert_true(strcmp(last, p->code) < 0);
        last = p->code;
        saw_birthdate |= strcmp(p->code, "birthdate") == 0;
        saw_text |= strcmp(p->code, "_text") == 0;
        saw_id |= strcmp(p->code, "_id") == 0;
        n++;
    }
    /* Patient's 23 own parameters and the 13 for all resources */
    assert_int_equal(n, 23 + 13);
    assert_true(saw_birthdate && saw_text && saw_id);

    fhir_search_iter_init(&it, fhir_search_builtin(), type_of("Bundle"));
    n = 0;
    for (const fhir_search_param_t *p; (p = fhir_search_iter_next(&it));) {
        assert_string_not_equal(p->code, "_text");
        n++;
    }
    assert_int_equal(n, 5 + 12); /* composition, identifier, message, timestamp, type */
    fhir_search_iter_init(&it, fhir_search_builtin(), NULL);
    n = 0;
    while (fhir_search_iter_next(&it))
        n++;
    assert_int_equal(n, 13);
}

/* --- custom parameters ------------------------------------------------------------------- */

static json_t *json(const char *text)
{
    err_t err = ERR_INIT;
    json_t *v = jv_parse(text, strlen(text), &err);
    if (!v)
        fail_msg("bad test JSON: %s", err_message(&err));
    err_release(&err);
    return v;
}

static status_t put(fhir_search_registry_t *r, const char *text, err_t *err)
{
    json_t *v = json(text);
    status_t rc = fhir_search_registry_put(r, v, err);
    json_decref(v);
    return rc;
}

#define EYE_COLOR                                                                          \
    "{\"resourceType\":\"SearchParameter\",\"url\":\"http://example.org/sp/eye-color\","   \
    "\"name\":\"eye\",\"status\":\"active\",\"code\":\"eye-color\",\"base\":[\"Patient\"," \
    "\"Practitioner\"],\"type\":\"token\",\"expression\":\"Patient.extension('http://"     \
    "example.org/eye').value | Practitioner.extension('http://example.org/eye').value\"}"

static void test_custom_parameters(void **state)
{
    (void)state;
    fhir_search_registry_t *r = fhir_search_registry_new();
    const fhir_type_t *patient = type_of("Patient"), *practitioner = type_of("Practitioner");
    const fhir_search_snapshot_t *before = fhir_search_registry_acquire(r);
    assert_ptr_equal(before, fhir_search_builtin());
    err_t err = ERR_INIT;
    assert_int_equal(put(r, EYE_COLOR, &err), ERR_OK);
    const fhir_search_snapshot_t *after = fhir_search_registry_acquire(r);
    /* the old snapshot does not see it, the new one does, restricted per base */
    assert_null(fhir_search_snapshot_find(before, patient, "eye-color", 9));
    const fhir_search_param_t *p = fhir_search_snapshot_find(after, patient, "eye-color", 9);
    assert_non_null(p);
    assert_string_equal(p->expression, "Patient.extension('http://example.org/eye').value");
    p = fhir_search_snapshot_find(after, practitioner, "eye-color", 9);
    assert_string_equal(p->expression, "Practitioner.extension('http://example.org/eye').value");
    assert_null(fhir_search_snapshot_find(after, type_of("Observation"), "eye-color", 9));
    assert_non_null(fhir_search_snapshot_find(after, patient, "birthdate", 9));
    assert_non_null(
        fhir_search_snapshot_find_url(after, "Patient", "http://example.org/sp/eye-color"));
    fhir_search_snapshot_release(before);

    /* a custom parameter hides the built-in one of the same code; iteration shows it once */
    assert_int_equal(put(r,
                         "{\"resourceType\":\"SearchParameter\",\"url\":\"http://example.org/"
                         "sp/name\",\"status\":\"draft\",\"code\":\"name\",\"base\":["
                         "\"Patient\"],\"type\":\"string\",\"expression\":\"Patient.name."
                         "family\"}",
                         &err),
                     ERR_OK);
    const fhir_search_snapshot_t *third = fhir_search_registry_acquire(r);
    assert_string_equal(fhir_search_snapshot_find(third, patient, "name", 4)->expression,
                        "Patient.name.family");
    assert_string_equal(fhir_search_snapshot_find(after, patient, "name", 4)->expression,
                        "Patient.name");
    fhir_search_iter_t it;
    fhir_search_iter_init(&it, third, patient);
    size_t n = 0, names = 0;
    for (const fhir_search_param_t *q; (q = fhir_search_iter_next(&it));) {
        n++;
        if (strcmp(q->code, "name") == 0) {
            names++;
            assert_string_equal(q->expression, "Patient.name.family");
        }
    }
    assert_int_equal(names, 1);
    assert_int_equal(n, 23 + 13 + 1); /* eye-color is new, name replaced */

    /* a custom composite resolves its components, built-in or custom */
    assert_int_equal(put(r,
                         "{\"resourceType\":\"SearchParameter\",\"url\":\"http://example.org/"
                         "sp/eye-birth\",\"status\":\"active\",\"code\":\"eye-birth\","
                         "\"base\":[\"Patient\"],\"type\":\"composite\",\"expression\":"
                         "\"Patient\",\"component\":[{\"definition\":\"http://example.org/sp/"
                         "eye-color\",\"expression\":\"extension('http://example.org/eye')."
                         "value\"},{\"definition\":\"http://hl7.org/fhir/SearchParameter/"
                         "individual-birthdate\",\"expression\":\"birthDate\"}]}",
                         &err),
                     ERR_OK);

    /* replacing a url drops what it had: now on Patient only */
    assert_int_equal(put(r,
                         "{\"resourceType\":\"SearchParameter\",\"url\":\"http://example.org/"
                         "sp/eye-color\",\"status\":\"active\",\"code\":\"eye-color\","
                         "\"base\":[\"Patient\"],\"type\":\"token\",\"expression\":"
                         "\"Patient.extension('http://example.org/eye2').value\"}",
                         &err),
                     ERR_OK);
    const fhir_search_snapshot_t *fourth = fhir_search_registry_acquire(r);
    assert_null(fhir_search_snapshot_find(fourth, practitioner, "eye-color", 9));
    assert_string_equal(fhir_search_snapshot_find(fourth, patient, "eye-color", 9)->expression,
                        "Patient.extension('http://example.org/eye2').value");

    /* retired removes; remove() too; a parameter for all resources */
    assert_int_equal(put(r,
                         "{\"resourceType\":\"SearchParameter\",\"url\":\"http://example.org/"
                         "sp/name\",\"status\":\"retired\"}",
                         &err),
                     ERR_OK);
    assert_int_equal(put(r,
                         "{\"resourceType\":\"SearchParameter\",\"url\":\"http://example.org/"
                         "sp/batch\",\"status\":\"active\",\"code\":\"batch\",\"base\":["
                         "\"DomainResource\"],\"type\":\"token\",\"expression\":\""
                         "DomainResource.meta.tag.where(system='batch').code\"}",
                         &err),
                     ERR_OK);
    assert_true(fhir_search_registry_remove(r, "http://example.org/sp/eye-birth"));
    assert_false(fhir_search_registry_remove(r, "http://example.org/sp/eye-birth"));
    const fhir_search_snapshot_t *fifth = fhir_search_registry_acquire(r);
    assert_string_equal(fhir_search_snapshot_find(fifth, patient, "name", 4)->expression,
                        "Patient.name");
    assert_null(fhir_search_snapshot_find(fifth, patient, "eye-birth", 9));
    assert_non_null(fhir_search_snapshot_find(fifth, patient, "batch", 5));
    assert_non_null(fhir_search_snapshot_find(fifth, NULL, "batch", 5));
    assert_null(fhir_search_snapshot_find(fifth, type_of("Bundle"), "batch", 5));
    fhir_search_iter_init(&it, fifth, NULL);
    n = 0;
    while (fhir_search_iter_next(&it))
        n++;
    assert_int_equal(n, 14);
    assert_int_equal(err.nissues, 0);

    fhir_search_snapshot_release(after);
    fhir_search_snapshot_release(third);
    fhir_search_snapshot_release(fourth);
    fhir_search_registry_free(r); /* fifth outlives the registry */
    assert_non_null(fhir_search_snapshot_find(fifth, patient, "eye-color", 9));
    fhir_search_snapshot_release(fifth);
    err_release(&err);
}

static void expect_put_error(const char *text, const char *message)
{
    fhir_search_registry_t *r = fhir_search_registry_new();
    err_t err = ERR_INIT;
    assert_int_equal(put(r, text, &err), ERR_RULE);
    assert_string_equal(err_message(&err), message);
    const fhir_search_snapshot_t *s = fhir_search_registry_acquire(r);
    assert_ptr_equal(s, fhir_search_builtin()); /* nothing changed */
    fhir_search_snapshot_release(s);
    err_release(&err);
    fhir_search_registry_free(r);
}

#define SP(rest) "{\"resourceType\":\"SearchParameter\",\"url\":\"http://x/sp\"," rest "}"

static void test_custom_errors(void **state)
{
    (void)state;
    expect_put_error("{\"resourceType\":\"Patient\"}",
                     "cannot register a search parameter: not a SearchParameter");
    expect_put_error("{\"resourceType\":\"SearchParameter\",\"code\":\"x\"}",
                     "cannot register a search parameter without a url");
    expect_put_error(SP("\"code\":\"a.b\",\"base\":[\"Patient\"],\"type\":\"token\","
                        "\"expression\":\"Patient.x\""),
                     "cannot register search parameter http://x/sp: code \"a.b\" is not a valid "
                     "parameter name");
    expect_put_error(SP("\"code\":\"x\",\"base\":[\"Patient\"],\"type\":\"fuzzy\","
                        "\"expression\":\"Patient.x\""),
                     "cannot register search parameter \"x\": unknown type \"fuzzy\"");
    expect_put_error(SP("\"code\":\"x\",\"base\":[\"Patient\"],\"type\":\"token\""),
                     "cannot register search parameter \"x\": it has no expression");
    expect_put_error(SP("\"code\":\"x\",\"base\":[\"Patients\"],\"type\":\"token\","
                        "\"expression\":\"Patient.x\""),
                     "cannot register search parameter \"x\": \"Patients\" is not a resource "
                     "type");
    expect_put_error(SP("\"code\":\"x\",\"type\":\"token\",\"expression\":\"Patient.x\""),
                     "cannot register search parameter \"x\": it has no base");
    expect_put_error(SP("\"code\":\"x\",\"base\":[\"Patient\"],\"type\":\"reference\","
                        "\"expression\":\"Patient.x\",\"target\":[\"Nobody\"]"),
                     "cannot register search parameter \"x\": target \"Nobody\" is not a "
                     "resource type");
    expect_put_error(SP("\"code\":\"x\",\"base\":[\"Patient\"],\"type\":\"composite\","
                        "\"expression\":\"Patient\",\"component\":[{\"definition\":\"http://"
                        "nowhere\",\"expression\":\"a\"},{\"definition\":\"http://hl7.org/fhir/"
                        "SearchParameter/individual-birthdate\",\"expression\":\"birthDate\"}]"),
                     "cannot register composite search parameter \"x\": component "
                     "\"http://nowhere\" is not a known search parameter");
    expect_put_error(SP("\"code\":\"x\",\"base\":[\"Patient\"],\"type\":\"date\","
                        "\"expression\":\"Patient.x\",\"comparator\":[\"about\"]"),
                     "cannot register search parameter \"x\": unknown comparator \"about\"");
}

/* Readers acquire, look up and release while a writer registers and removes parameters. */
typedef struct {
    fhir_search_registry_t *registry;
    size_t seen;
} reader_t;

static void *reader_main(void *arg)
{
    reader_t *reader = arg;
    const fhir_type_t *patient = fhir_resource_type_find("Patient", 7);
    for (int i = 0; i < 20000; i++) {
        const fhir_search_snapshot_t *s = fhir_search_registry_acquire(reader->registry);
        const fhir_search_param_t *p = fhir_search_snapshot_find(s, patient, "eye-color", 9);
        if (p) {
            if (strncmp(p->expression, "Patient.extension", 17) != 0)
                abort();
            reader->seen++;
        }
        if (!fhir_search_snapshot_find(s, patient, "birthdate", 9))
            abort();
        fhir_search_snapshot_release(s);
    }
    return NULL;
}

static void test_concurrent_readers(void **state)
{
    (void)state;
    fhir_search_registry_t *r = fhir_search_registry_new();
    reader_t readers[3] = {{r, 0}, {r, 0}, {r, 0}};
    pthread_t threads[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, reader_main, &readers[i]), 0);
    err_t err = ERR_INIT;
    for (int i = 0; i < 300; i++) {
        assert_int_equal(put(r, EYE_COLOR, &err), ERR_OK);
        if (i % 3 == 2)
            fhir_search_registry_remove(r, "http://example.org/sp/eye-color");
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    err_release(&err);
    fhir_search_registry_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_builtin_lookups),
        cmocka_unit_test(test_restrict),
        cmocka_unit_test(test_restrict_matches_generator),
        cmocka_unit_test(test_iteration),
        cmocka_unit_test(test_custom_parameters),
        cmocka_unit_test(test_custom_errors),
        cmocka_unit_test(test_concurrent_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
