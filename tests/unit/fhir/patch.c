/*
 * patch.c - tests of FHIRPath Patch (src/fhir/patch.c): each operation of the specification's
 * table with its edges (nested elements, lists, choice types, values built from parts,
 * primitive extensions), and the errors, with the exact JSON each patch leaves.
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
#include "fhir/patch.h"

static json_t *parse(const char *text)
{
    err_t err = ERR_INIT;
    json_t *j = jv_parse(text, strlen(text), &err);
    if (!j)
        fail_msg("bad test JSON: %s: %s", err_message(&err), text);
    err_release(&err);
    return j;
}

/* A Parameters resource from the text of its parameter array. */
static json_t *params(const char *operations)
{
    char *text = NULL;
    if (asprintf(&text, "{\"resourceType\":\"Parameters\",\"parameter\":%s}", operations) < 0)
        abort();
    json_t *p = parse(text);
    free(text);
    return p;
}

static char result[4096];
static err_t last_err;

/* Applies operations to resource: 0 and the compact result in `result`, or the status with
 * the first message in `result` (and the error in last_err); the resource must be unchanged
 * on failure. */
static status_t apply(const char *resource, const char *operations)
{
    json_t *r = parse(resource);
    json_t *before = r;
    json_incref(before);
    json_t *p = params(operations);
    err_release(&last_err);
    err_init(&last_err);
    status_t rc = fhir_patch_apply(&r, p, &last_err);
    buf_t out = BUF_INIT;
    if (rc) {
        assert_ptr_equal(r, before);
        buf_addstr(&out, err_message(&last_err));
        /* all or nothing: the original is untouched */
        buf_t again = BUF_INIT;
        jv_dump(r, &again);
        assert_string_equal(again.ptr, resource);
        buf_release(&again);
    } else {
        jv_dump(r, &out);
    }
    snprintf(result, sizeof(result), "%s", out.ptr);
    buf_release(&out);
    json_decref(before);
    json_decref(r);
    json_decref(p);
    return rc;
}

#define OK(resource, ops, expected)                   \
    do {                                              \
        status_t rc_ = apply(resource, ops);          \
        if (rc_)                                      \
            fail_msg("unexpected error: %s", result); \
        assert_string_equal(result, expected);        \
    } while (0)

#define FAILS(resource, ops, code, message)                \
    do {                                                   \
        status_t rc_ = apply(resource, ops);               \
        if (rc_ == ERR_OK)                                 \
            fail_msg("expected an error, got %s", result); \
        assert_int_equal(rc_, code);                       \
        assert_string_equal(result, message);              \
    } while (0)

#define PATIENT "{\"resourceType\":\"Patient\",\"id\":\"p\""

static void test_add(void **state)
{
    (void)state;
    /* the specification's example: add a birthDate */
    OK(PATIENT "}",
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"add\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient\"},"
       "{\"name\":\"name\",\"valueString\":\"birthDate\"},"
       "{\"name\":\"value\",\"valueDate\":\"1930-01-01\"}]}]",
       PATIENT ",\"birthDate\":\"1930-01-01\"}");
    /* to a list: appended; to a nested element */
    OK(PATIENT ",\"name\":[{\"given\":[\"A\"]}]}",
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"add\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient.name[0]\"},"
       "{\"name\":\"name\",\"valueString\":\"given\"},"
       "{\"name\":\"value\",\"valueString\":\"B\"}]},"
       "{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"add\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient.name.first()\"},"
       "{\"name\":\"name\",\"valueString\":\"family\"},"
       "{\"name\":\"value\",\"valueString\":\"F\"}]}]",
       PATIENT ",\"name\":[{\"given\":[\"A\",\"B\"],\"family\":\"F\"}]}");
    /* a complex value built from parts: a list element of a part is an array */
    OK(PATIENT "}",
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"add\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient\"},"
       "{\"name\":\"name\",\"valueString\":\"name\"},"
       "{\"name\":\"value\",\"part\":[{\"name\":\"family\",\"valueString\":\"Doe\"},"
       "{\"name\":\"given\",\"valueString\":\"J\"},{\"name\":\"given\",\"valueString\":\"K\"},"
       "{\"name\":\"period\",\"part\":[{\"name\":\"start\",\"valueDateTime\":\"2020\"}]}]}]}]",
       PATIENT ",\"name\":[{\"family\":\"Doe\",\"given\":[\"J\",\"K\"],"
               "\"period\":{\"start\":\"2020\"}}]}");
    /* a Coding from parts, into a CodeableConcept */
    OK("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"}}",
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"add\"},"
       "{\"name\":\"path\",\"valueString\":\"Observation.code\"},"
       "{\"name\":\"name\",\"valueString\":\"coding\"},"
       "{\"name\":\"value\",\"part\":[{\"name\":\"system\",\"valueUri\":\"http://loinc.org\"},"
       "{\"name\":\"code\",\"valueCode\":\"1-8\"}]}]}]",
       "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\","
       "\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"1-8\"}]}}");
    /* a choice element takes its JSON name from the value's type */
    OK("{\"resourceType\":\"Observation\",\"status\":\"final\"}",
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"add\"},"
       "{\"name\":\"path\",\"valueString\":\"Observation\"},"
       "{\"name\":\"name\",\"valueString\":\"value\"},"
       "{\"name\":\"value\",\"valueQuantity\":{\"value\":1.50,\"unit\":\"mg\"}}]}]",
       "{\"resourceType\":\"Observation\",\"status\":\"final\","
       "\"valueQuantity\":{\"value\":1.50,\"unit\":\"mg\"}}");
    /* a primitive's extension travels with its value */
    OK(PATIENT "}",
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"add\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient\"},"
       "{\"name\":\"name\",\"valueString\":\"gender\"},"
       "{\"name\":\"value\",\"valueCode\":\"other\",\"_valueCode\":{\"id\":\"g\"}}]}]",
       PATIENT ",\"gender\":\"other\",\"_gender\":{\"id\":\"g\"}}");
}

static void test_add_errors(void **state)
{
    (void)state;
    FAILS(PATIENT ",\"birthDate\":\"1970\"}",
          "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"add\"},"
          "{\"name\":\"path\",\"valueString\":\"Patient\"},"
          "{\"name\":\"name\",\"valueString\":\"birthDate\"},"
          "{\"name\":\"value\",\"valueDate\":\"1930\"}]}]",
          ERR_RULE,
          "patch operation 0 (add Patient): birthDate already has a value and is not a list: "
          "replace it, or delete it first");
    assert_string_equal(last_err.issues[0].expression, "Patient");
    /* another type of the same choice is a value too */
    FAILS("{\"resourceType\":\"Observation\",\"valueString\":\"x\"}",
          "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"add\"},"
          "{\"name\":\"path\",\"valueString\":\"Observation\"},"
          "{\"name\":\"name\",\"valueString\":\"value\"},"
          "{\"name\":\"value\",\"valueBoolean\":true}]}]",
          ERR_RULE,
          "patch operation 0 (add Observation): value already has a value and is not a list: "
          "replace it, or delete it first");
    FAILS(PATIENT ",\"name\":[{\"family\":\"A\"},{\"family\":\"B\"}]}",
          "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"add\"},"
          "{\"name\":\"path\",\"valueString\":\"Patient.name\"},"
          "{\"name\":\"name\",\"valueString\":\"given\"},"
          "{\"name\":\"value\",\"valueString\":\"X\"}]}]",
          ERR_RULE,
          "patch operation 0 (add Patient.name): the path matches 2 elements where one is "
          "needed");
    FAILS(PATIENT "}",
          "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"add\"},"
          "{\"name\":\"path\",\"valueString\":\"Patient.contact\"},"
          "{\"name\":\"name\",\"valueString\":\"gender\"},"
          "{\"name\":\"value\",\"valueCode\":\"male\"}]}]",
          ERR_RULE, "patch operation 0 (add Patient.contact): the path matches nothing");
    FAILS(PATIENT "}",
          "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"add\"},"
          "{\"name\":\"path\",\"valueString\":\"Patient.id\"},"
          "{\"name\":\"name\",\"valueString\":\"x\"},"
          "{\"name\":\"value\",\"valueCode\":\"male\"}]}]",
          ERR_RULE,
          "patch operation 0 (add Patient.id): the path names a id, which has no elements to "
          "add to");
    FAILS("{\"resourceType\":\"Observation\"}",
          "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"add\"},"
          "{\"name\":\"path\",\"valueString\":\"Observation\"},"
          "{\"name\":\"name\",\"valueString\":\"value\"},"
          "{\"name\":\"value\",\"part\":[{\"name\":\"value\",\"valueDecimal\":1}]}]}]",
          ERR_INVALID,
          "patch operation 0 (add Observation): value is a choice of types: give its value as "
          "a value[x] that names the type");
}

static const char IDENTIFIERS[] =
    PATIENT ",\"identifier\":[{\"value\":\"a\"},{\"value\":\"b\"},{\"value\":\"c\"}]}";

static void test_insert(void **state)
{
    (void)state;
    OK(IDENTIFIERS,
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"insert\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient.identifier\"},"
       "{\"name\":\"index\",\"valueInteger\":1},"
       "{\"name\":\"value\",\"valueIdentifier\":{\"value\":\"new\"}}]}]",
       PATIENT ",\"identifier\":[{\"value\":\"a\"},{\"value\":\"new\"},{\"value\":\"b\"},"
               "{\"value\":\"c\"}]}");
    /* at the end */
    OK(IDENTIFIERS,
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"insert\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient.identifier\"},"
       "{\"name\":\"index\",\"valueInteger\":3},"
       "{\"name\":\"value\",\"part\":[{\"name\":\"value\",\"valueString\":\"d\"}]}]}]",
       PATIENT ",\"identifier\":[{\"value\":\"a\"},{\"value\":\"b\"},{\"value\":\"c\"},"
               "{\"value\":\"d\"}]}");
    /* into a list that does not exist yet */
    OK(PATIENT ",\"name\":[{\"family\":\"F\"}]}",
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"insert\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient.name[0].given\"},"
       "{\"name\":\"index\",\"valueInteger\":0},"
       "{\"name\":\"value\",\"valueString\":\"G\"}]}]",
       PATIENT ",\"name\":[{\"family\":\"F\",\"given\":[\"G\"]}]}");
    /* a primitive list with extensions: the "_given" array stays aligned */
    OK(PATIENT ",\"name\":[{\"given\":[\"A\",\"B\"],\"_given\":[null,{\"id\":\"b\"}]}]}",
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"insert\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient.name.given\"},"
       "{\"name\":\"index\",\"valueInteger\":0},"
       "{\"name\":\"value\",\"valueString\":\"Z\"}]}]",
       PATIENT
       ",\"name\":[{\"given\":[\"Z\",\"A\",\"B\"],\"_given\":[null,null,{\"id\":\"b\"}]}]}");
    FAILS(IDENTIFIERS,
          "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"insert\"},"
          "{\"name\":\"path\",\"valueString\":\"Patient.identifier\"},"
          "{\"name\":\"index\",\"valueInteger\":4},"
          "{\"name\":\"value\",\"valueIdentifier\":{\"value\":\"x\"}}]}]",
          ERR_RULE,
          "patch operation 0 (insert Patient.identifier): index 4 is out of range: the list "
          "has 3 items");
    FAILS(PATIENT ",\"birthDate\":\"1970\"}",
          "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"insert\"},"
          "{\"name\":\"path\",\"valueString\":\"Patient.birthDate\"},"
          "{\"name\":\"index\",\"valueInteger\":0},"
          "{\"name\":\"value\",\"valueDate\":\"1980\"}]}]",
          ERR_RULE, "patch operation 0 (insert Patient.birthDate): the path does not name a list");
    FAILS(PATIENT "}",
          "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"insert\"},"
          "{\"name\":\"path\",\"valueString\":\"Patient.gender\"},"
          "{\"name\":\"index\",\"valueInteger\":0},"
          "{\"name\":\"value\",\"valueCode\":\"male\"}]}]",
          ERR_RULE, "patch operation 0 (insert Patient.gender): gender is not a list");
}

static void test_delete(void **state)
{
    (void)state;
    /* a primitive with its extensions */
    OK(PATIENT ",\"birthDate\":\"1970\",\"_birthDate\":{\"id\":\"x\"},\"active\":true}",
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"delete\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient.birthDate\"}]}]",
       PATIENT ",\"active\":true}");
    /* nothing matches: nothing to do */
    OK(PATIENT ",\"active\":true}",
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"delete\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient.name.where(family='X')\"}]}]",
       PATIENT ",\"active\":true}");
    /* an item of a list, chosen with where(); the list's "_given" stays aligned */
    OK(PATIENT ",\"name\":[{\"given\":[\"A\",\"B\",\"C\"],\"_given\":[null,{\"id\":\"b\"},{\"id\":"
               "\"c\"}]}]}",
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"delete\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient.name.given.where($this='B')\"}]}]",
       PATIENT ",\"name\":[{\"given\":[\"A\",\"C\"],\"_given\":[null,{\"id\":\"c\"}]}]}");
    /* the last extension gone, the "_given" array goes too */
    OK(PATIENT ",\"name\":[{\"given\":[\"A\",\"B\"],\"_given\":[null,{\"id\":\"b\"}]}]}",
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"delete\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient.name.given[1]\"}]}]",
       PATIENT ",\"name\":[{\"given\":[\"A\"]}]}");
    /* an element left empty goes with its last member */
    OK(PATIENT ",\"name\":[{\"family\":\"F\"},{\"family\":\"G\"}]}",
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"delete\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient.name[0].family\"}]}]",
       PATIENT ",\"name\":[{\"family\":\"G\"}]}");
    /* an extension of a primitive */
    OK(PATIENT ",\"birthDate\":\"1970\",\"_birthDate\":{\"extension\":[{\"url\":\"http://e\","
               "\"valueString\":\"v\"}]}}",
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"delete\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient.birthDate.extension('http://e')\"}]}]",
       PATIENT ",\"birthDate\":\"1970\"}");
    /* a choice element by its FHIRPath name */
    OK("{\"resourceType\":\"Observation\",\"valueString\":\"x\",\"status\":\"final\"}",
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"delete\"},"
       "{\"name\":\"path\",\"valueString\":\"Observation.value\"}]}]",
       "{\"resourceType\":\"Observation\",\"status\":\"final\"}");
    FAILS(PATIENT ",\"name\":[{\"family\":\"F\"},{\"family\":\"G\"}]}",
          "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"delete\"},"
          "{\"name\":\"path\",\"valueString\":\"Patient.name\"}]}]",
          ERR_RULE,
          "patch operation 0 (delete Patient.name): the path matches 2 elements where one is "
          "needed");
    FAILS(PATIENT "}",
          "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"delete\"},"
          "{\"name\":\"path\",\"valueString\":\"Patient\"}]}]",
          ERR_RULE, "patch operation 0 (delete Patient): the resource itself cannot be deleted");
}

static void test_replace(void **state)
{
    (void)state;
    /* in place, keeping the order of members and the primitive's extensions */
    OK(PATIENT ",\"birthDate\":\"1970\",\"_birthDate\":{\"id\":\"x\"},\"active\":true}",
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"replace\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient.birthDate\"},"
       "{\"name\":\"value\",\"valueDate\":\"1980-02-03\"}]}]",
       PATIENT ",\"birthDate\":\"1980-02-03\",\"_birthDate\":{\"id\":\"x\"},\"active\":true}");
    /* an item of a list found with where() */
    OK(IDENTIFIERS,
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"replace\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient.identifier.where(value='b').value\"},"
       "{\"name\":\"value\",\"valueString\":\"B\"}]}]",
       PATIENT ",\"identifier\":[{\"value\":\"a\"},{\"value\":\"B\"},{\"value\":\"c\"}]}");
    OK(IDENTIFIERS,
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"replace\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient.identifier[2]\"},"
       "{\"name\":\"value\",\"part\":[{\"name\":\"system\",\"valueUri\":\"urn:s\"},"
       "{\"name\":\"value\",\"valueString\":\"C\"}]}]}]",
       PATIENT ",\"identifier\":[{\"value\":\"a\"},{\"value\":\"b\"},"
               "{\"system\":\"urn:s\",\"value\":\"C\"}]}");
    /* a choice changes type: the JSON name follows */
    OK("{\"resourceType\":\"Observation\",\"valueQuantity\":{\"value\":1},\"status\":\"final\"}",
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"replace\"},"
       "{\"name\":\"path\",\"valueString\":\"Observation.value\"},"
       "{\"name\":\"value\",\"valueString\":\"high\"}]}]",
       "{\"resourceType\":\"Observation\",\"status\":\"final\",\"valueString\":\"high\"}");
    /* a primitive item of a list with extensions */
    OK(PATIENT ",\"name\":[{\"given\":[\"A\",\"B\"],\"_given\":[{\"id\":\"a\"},null]}]}",
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"replace\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient.name.given[1]\"},"
       "{\"name\":\"value\",\"valueString\":\"C\",\"_valueString\":{\"id\":\"c\"}}]}]",
       PATIENT ",\"name\":[{\"given\":[\"A\",\"C\"],\"_given\":[{\"id\":\"a\"},{\"id\":\"c\"}]}]}");
    FAILS(PATIENT "}",
          "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"replace\"},"
          "{\"name\":\"path\",\"valueString\":\"Patient.birthDate\"},"
          "{\"name\":\"value\",\"valueDate\":\"1980\"}]}]",
          ERR_RULE, "patch operation 0 (replace Patient.birthDate): the path matches nothing");
    FAILS(PATIENT ",\"active\":true}",
          "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"replace\"},"
          "{\"name\":\"path\",\"valueString\":\"Patient.active.not()\"},"
          "{\"name\":\"value\",\"valueBoolean\":true}]}]",
          ERR_RULE,
          "patch operation 0 (replace Patient.active.not()): the path gives a computed "
          "Boolean, not an element");
}

static void test_move(void **state)
{
    (void)state;
    OK(IDENTIFIERS,
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"move\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient.identifier\"},"
       "{\"name\":\"source\",\"valueInteger\":0},{\"name\":\"destination\",\"valueInteger\":2}]}]",
       PATIENT ",\"identifier\":[{\"value\":\"b\"},{\"value\":\"c\"},{\"value\":\"a\"}]}");
    OK(IDENTIFIERS,
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"move\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient.identifier\"},"
       "{\"name\":\"source\",\"valueInteger\":2},{\"name\":\"destination\",\"valueInteger\":0}]}]",
       PATIENT ",\"identifier\":[{\"value\":\"c\"},{\"value\":\"a\"},{\"value\":\"b\"}]}");
    /* extensions move with their values, an item with only extensions too */
    OK(PATIENT ",\"name\":[{\"given\":[\"A\",null],\"_given\":[null,{\"id\":\"b\"}]}]}",
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"move\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient.name.given\"},"
       "{\"name\":\"source\",\"valueInteger\":1},{\"name\":\"destination\",\"valueInteger\":0}]}]",
       PATIENT ",\"name\":[{\"given\":[null,\"A\"],\"_given\":[{\"id\":\"b\"},null]}]}");
    FAILS(IDENTIFIERS,
          "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"move\"},"
          "{\"name\":\"path\",\"valueString\":\"Patient.identifier\"},"
          "{\"name\":\"source\",\"valueInteger\":0},"
          "{\"name\":\"destination\",\"valueInteger\":3}]}]",
          ERR_RULE,
          "patch operation 0 (move Patient.identifier): destination 3 is out of range: the "
          "list has 3 items");
    FAILS(PATIENT "}",
          "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"move\"},"
          "{\"name\":\"path\",\"valueString\":\"Patient.identifier\"},"
          "{\"name\":\"source\",\"valueInteger\":0},"
          "{\"name\":\"destination\",\"valueInteger\":0}]}]",
          ERR_RULE,
          "patch operation 0 (move Patient.identifier): source 0 is out of range: the list has "
          "0 items");
}

static void test_sequence_all_or_nothing(void **state)
{
    (void)state;
    /* later operations see what earlier ones did */
    OK(PATIENT "}",
       "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"add\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient\"},{\"name\":\"name\",\"valueString\":"
       "\"contact\"},{\"name\":\"value\",\"part\":[{\"name\":\"gender\",\"valueCode\":\"male\"}]}]}"
       ","
       "{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"add\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient.contact\"},{\"name\":\"name\",\"valueString\":"
       "\"name\"},{\"name\":\"value\",\"valueHumanName\":{\"family\":\"C\"}}]},"
       "{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"replace\"},"
       "{\"name\":\"path\",\"valueString\":\"Patient.contact.name.family\"},"
       "{\"name\":\"value\",\"valueString\":\"D\"}]}]",
       PATIENT ",\"contact\":[{\"gender\":\"male\",\"name\":{\"family\":\"D\"}}]}");
    /* the second fails: the first is not kept (apply() checks the resource is unchanged) */
    FAILS(PATIENT ",\"active\":true}",
          "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"delete\"},"
          "{\"name\":\"path\",\"valueString\":\"Patient.active\"}]},"
          "{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"replace\"},"
          "{\"name\":\"path\",\"valueString\":\"Patient.active\"},"
          "{\"name\":\"value\",\"valueBoolean\":false}]}]",
          ERR_RULE, "patch operation 1 (replace Patient.active): the path matches nothing");
    /* an empty patch changes nothing */
    OK(PATIENT ",\"active\":true}", "[]", PATIENT ",\"active\":true}");
}

static void check_fails(const char *operations, const char *message, const char *expression)
{
    json_t *p = params(operations);
    err_t err = ERR_INIT;
    assert_int_equal(fhir_patch_check(p, &err), ERR_INVALID);
    assert_string_equal(err_message(&err), message);
    if (expression)
        assert_string_equal(err.issues[0].expression, expression);
    err_release(&err);
    json_decref(p);
}

static void test_malformed(void **state)
{
    (void)state;
    json_t *p = parse("{\"resourceType\":\"Patient\"}");
    err_t err = ERR_INIT;
    assert_int_equal(fhir_patch_check(p, &err), ERR_INVALID);
    assert_string_equal(err_message(&err), "a FHIRPath Patch must be a Parameters resource");
    err_release(&err);
    json_decref(p);
    check_fails("[{\"name\":\"op\",\"part\":[]}]",
                "patch operation 0: parameter \"op\" is not an operation (the parameters of a "
                "FHIRPath Patch are all named \"operation\")",
                "Parameters.parameter[0]");
    check_fails(
        "[{\"name\":\"operation\",\"part\":[{\"name\":\"path\",\"valueString\":\"Patient\"}]}]",
        "patch operation 0: no type part (add, insert, delete, replace, move)", NULL);
    check_fails("[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"copy\"}]}]",
                "patch operation 0: unknown operation type \"copy\" (add, insert, delete, "
                "replace, move)",
                NULL);
    check_fails("[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"delete\"},"
                "{\"name\":\"path\",\"valueString\":\"Patient.a\"}]},"
                "{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"add\"},"
                "{\"name\":\"path\",\"valueString\":\"Patient\"},"
                "{\"name\":\"value\",\"valueString\":\"x\"}]}]",
                "patch operation 1 (add): no name part", "Parameters.parameter[1]");
    check_fails("[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"delete\"},"
                "{\"name\":\"path\",\"valueString\":\"Patient.a\"},"
                "{\"name\":\"index\",\"valueInteger\":1}]}]",
                "patch operation 0 (delete): delete takes no index part", NULL);
    check_fails(
        "[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"insert\"},"
        "{\"name\":\"path\",\"valueString\":\"Patient.a\"},"
        "{\"name\":\"index\",\"valueInteger\":-1},{\"name\":\"value\",\"valueString\":\"x\"}]}]",
        "patch operation 0 (insert): index must be 0 or more, not -1", NULL);
    check_fails("[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"delete\"},"
                "{\"name\":\"path\",\"valueString\":\"Patient.a\"},"
                "{\"name\":\"path\",\"valueString\":\"Patient.b\"}]}]",
                "patch operation 0: the path part is given twice", NULL);
    check_fails("[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"delete\"},"
                "{\"name\":\"where\",\"valueString\":\"Patient.a\"}]}]",
                "patch operation 0: unknown part \"where\" (type, path, name, value, index, "
                "source, destination)",
                NULL);
    check_fails("[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"replace\"},"
                "{\"name\":\"path\",\"valueString\":\"Patient.a\"},{\"name\":\"value\"}]}]",
                "patch operation 0 (replace): the value part has neither a value[x] nor parts",
                NULL);
    check_fails("[{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"delete\"},"
                "{\"name\":\"path\",\"valueString\":\"Patient.name.where(\"}]}]",
                "patch operation 0 (delete): could not parse FHIRPath at column 20: expected an "
                "expression, found the end of the expression",
                "Parameters.parameter[0]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_add_errors),
        cmocka_unit_test(test_insert),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_replace),
        cmocka_unit_test(test_move),
        cmocka_unit_test(test_sequence_all_or_nothing),
        cmocka_unit_test(test_malformed),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    err_release(&last_err);
    return rc;
}
