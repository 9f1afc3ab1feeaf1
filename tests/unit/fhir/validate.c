/*
 * validate.c - tests of src/fhir/validate.c and the model lookups of src/fhir/defs.c.
 *
 * Small resources written inline, each asserting the exact issue code and expression (and
 * the message where its wording matters), then the data-driven cases of tests/data/validate:
 * every valid/NAME.json must have no issue, and every invalid/NAME.json must give exactly the
 * issues listed in invalid/NAME.expected, one per line: CODE<TAB>expression<TAB>message.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/jv.h"
#include "base/mem.h"
#include "fhir/defs.h"
#include "fhir/validate.h"

#define DATA_DIR "tests/data/validate"

/* Parses and validates text; fails the test when the JSON itself does not parse. */
static void run(const char *text, err_t *err)
{
    err_init(err);
    json_t *resource = jv_parse(text, strlen(text), err);
    if (!resource)
        fail_msg("test JSON does not parse: %s\n%s", err_message(err), text);
    status_t rc = fhir_validate(resource, err);
    assert_int_equal(rc, err->nissues ? err->issues[0].code : ERR_OK);
    json_decref(resource);
}

static void print_issues(const err_t *err)
{
    for (size_t i = 0; i < err->nissues; i++) {
        print_message("  issue %zu: %s [%s] %s\n", i, err_name(err->issues[i].code),
                      err->issues[i].expression ? err->issues[i].expression : "(null)",
                      err->issues[i].message);
    }
}

static void expect_valid(const char *text)
{
    err_t err;
    run(text, &err);
    if (err.nissues) {
        print_issues(&err);
        fail_msg("expected no issue for %s", text);
    }
    err_release(&err);
}

/* Exactly one issue, with this code, expression and (unless NULL) message. */
static void expect_issue(const char *text, status_t code, const char *expression,
                         const char *message)
{
    err_t err;
    run(text, &err);
    if (err.nissues != 1 || err.issues[0].code != code ||
        (expression == NULL) != (err.issues[0].expression == NULL) ||
        (expression && strcmp(expression, err.issues[0].expression) != 0) ||
        (message && strcmp(message, err.issues[0].message) != 0)) {
        print_issues(&err);
        fail_msg("expected one %s issue at %s (%s) for %s", err_name(code),
                 expression ? expression : "(null)", message ? message : "any message", text);
    }
    err_release(&err);
}

/* --- model ----------------------------------------------------------------------------- */

static void test_model_lookups(void **state)
{
    (void)state;
    assert_int_equal(fhir_resource_type_count, 146);
    const fhir_type_t *patient = fhir_resource_type_find("Patient", 7);
    assert_non_null(patient);
    assert_int_equal(patient->kind, FHIR_KIND_RESOURCE);
    assert_string_equal(patient->base->name, "DomainResource");
    assert_true(fhir_type_is_a(patient, fhir_type_resource));
    assert_false(fhir_type_is_a(fhir_type_resource, patient));
    assert_null(fhir_resource_type_find("DomainResource", 14));
    assert_null(fhir_resource_type_find("Pat", 3));
    assert_non_null(fhir_type_find("DomainResource", 14));
    assert_int_equal(fhir_type_find("DomainResource", 14)->kind, FHIR_KIND_ABSTRACT);
    assert_null(fhir_resource_type_find("vitalsigns", 10)); /* a profile, not a type */
    for (size_t i = 1; i < fhir_resource_type_count; i++)
        assert_true(strcmp(fhir_resource_types[i - 1]->name, fhir_resource_types[i]->name) < 0);

    const fhir_type_t *contact = fhir_type_find("Patient.contact", 15);
    assert_non_null(contact);
    assert_int_equal(contact->kind, FHIR_KIND_BACKBONE);
    assert_non_null(fhir_type_find("Bundle.entry.request", 20));
    assert_int_equal(fhir_type_find("date", 4)->primitive, FHIR_PRIM_DATE);
    assert_int_equal(fhir_type_find("Timing.repeat", 13)->kind, FHIR_KIND_BACKBONE);
    assert_string_equal(fhir_type_find("SimpleQuantity", 14)->base->name, "Quantity");

    /* inherited elements are listed, sorted by name */
    const fhir_type_t *out;
    const fhir_element_t *e = fhir_element_find(patient, "meta", 4, &out);
    assert_non_null(e);
    assert_string_equal(out->name, "Meta");
    assert_non_null(fhir_element_find(patient, "modifierExtension", 17, &out));
    assert_non_null(fhir_element_find(patient, "contained", 9, &out));
    assert_true(out == fhir_type_resource);
    for (size_t i = 1; i < patient->nelements; i++)
        assert_true(strcmp(patient->elements[i - 1].name, patient->elements[i].name) < 0);
    e = fhir_element_find(patient, "id", 2, &out);
    assert_string_equal(out->name, "id"); /* Resource.id is an id */
    e = fhir_element_find(contact, "id", 2, &out);
    assert_string_equal(out->name, "string"); /* Element.id is a string */

    /* choice elements */
    e = fhir_element_find(patient, "deceasedDateTime", 16, &out);
    assert_non_null(e);
    assert_true(e->choice);
    assert_string_equal(e->name, "deceased");
    assert_string_equal(out->name, "dateTime");
    assert_int_equal(e->ntypes, 2);
    assert_null(fhir_element_find(patient, "deceased", 8, &out));
    assert_null(fhir_element_find(patient, "deceasedString", 14, &out));
    assert_null(fhir_element_find(patient, "deceaseddateTime", 16, &out));
    const fhir_type_t *observation = fhir_resource_type_find("Observation", 11);
    e = fhir_element_find(observation, "valueCodeableConcept", 20, &out);
    assert_non_null(e);
    assert_string_equal(out->name, "CodeableConcept");

    /* contentReference: Questionnaire.item.item is a Questionnaire.item */
    const fhir_type_t *item = fhir_type_find("Questionnaire.item", 18);
    e = fhir_element_find(item, "item", 4, &out);
    assert_non_null(e);
    assert_true(out == item);
    assert_string_equal(e->content_reference, "#Questionnaire.item");

    /* cardinality and bindings */
    e = fhir_element_find(observation, "status", 6, &out);
    assert_int_equal(e->min, 1);
    assert_int_equal(e->max, 1);
    assert_non_null(e->binding);
    assert_true(fhir_valueset_contains(e->binding, NULL, "final"));
    assert_true(fhir_valueset_contains(e->binding, "http://hl7.org/fhir/observation-status",
                                       "final"));
    assert_false(fhir_valueset_contains(e->binding, "http://example.org", "final"));
    assert_false(fhir_valueset_contains(e->binding, NULL, "finalx"));
    assert_string_equal(e->binding->codes[e->binding->order[0]], "registered");
    e = fhir_element_find(patient, "name", 4, &out);
    assert_int_equal(e->max, FHIR_MAX_MANY);
    assert_null(e->binding);
    /* is-a hierarchy: nested concepts are in the value set */
    const fhir_type_t *condition = fhir_resource_type_find("Condition", 9);
    e = fhir_element_find(condition, "clinicalStatus", 14, &out);
    assert_non_null(e->binding);
    assert_true(fhir_valueset_contains(e->binding, NULL, "recurrence"));
    /* mime types are not in the package: no binding */
    const fhir_type_t *attachment = fhir_type_find("Attachment", 10);
    e = fhir_element_find(attachment, "contentType", 11, &out);
    assert_null(e->binding);
}

/* --- structure ------------------------------------------------------------------------- */

static void test_valid_resources(void **state)
{
    (void)state;
    expect_valid("{\"resourceType\":\"Patient\"}");
    expect_valid("{\"resourceType\":\"Patient\",\"id\":\"a-1.B\",\"active\":true,"
                 "\"name\":[{\"family\":\"Chalmers\",\"given\":[\"Peter\",\"James\"]}],"
                 "\"gender\":\"male\",\"birthDate\":\"1974-12-25\",\"deceasedBoolean\":false,"
                 "\"multipleBirthInteger\":2,"
                 "\"meta\":{\"lastUpdated\":\"2024-01-02T03:04:05.678Z\",\"versionId\":\"1\"},"
                 "\"text\":{\"status\":\"generated\",\"div\":\"<div xmlns=\\\"http://www.w3.org/"
                 "1999/xhtml\\\">x</div>\"}}");
    expect_valid("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":"
                 "\"weight\"},\"valueQuantity\":{\"value\":72.50,\"unit\":\"kg\"}}");
    /* a primitive's extension without a value */
    expect_valid("{\"resourceType\":\"Observation\",\"_status\":{\"extension\":[{\"url\":"
                 "\"http://hl7.org/fhir/StructureDefinition/data-absent-reason\","
                 "\"valueCode\":\"unknown\"}]},\"code\":{\"text\":\"x\"}}");
    /* repeating primitives with extensions aligned by nulls */
    expect_valid("{\"resourceType\":\"Patient\",\"name\":[{\"given\":[\"a\",null],"
                 "\"_given\":[null,{\"extension\":[{\"url\":\"http://x\",\"valueString\":"
                 "\"b\"}]}]}]}");
    expect_valid("{\"resourceType\":\"Patient\",\"name\":[{\"_given\":[{\"id\":\"1\"}]}]}");
    /* recursion through contentReference */
    expect_valid("{\"resourceType\":\"Questionnaire\",\"status\":\"active\",\"item\":[{"
                 "\"linkId\":\"1\",\"type\":\"group\",\"item\":[{\"linkId\":\"1.1\",\"type\":"
                 "\"string\",\"item\":[{\"linkId\":\"1.1.1\",\"type\":\"display\"}]}]}]}");
    /* CodeableConcept with a required binding: one coding from the value set is enough */
    expect_valid("{\"resourceType\":\"Condition\",\"subject\":{\"reference\":\"Patient/1\"},"
                 "\"clinicalStatus\":{\"coding\":[{\"system\":\"http://example.org\",\"code\":"
                 "\"x\"},{\"system\":\"http://terminology.hl7.org/CodeSystem/"
                 "condition-clinical\",\"code\":\"active\"}]}}");
    expect_valid("{\"resourceType\":\"Condition\",\"subject\":{\"reference\":\"Patient/1\"},"
                 "\"clinicalStatus\":{\"text\":\"active\"}}");
}

static void test_resource_root(void **state)
{
    (void)state;
    expect_issue("[]", ERR_STRUCTURE, NULL, "a resource must be a JSON object, not an array");
    expect_issue("{}", ERR_STRUCTURE, NULL, "the resource has no resourceType");
    expect_issue("{\"resourceType\":\"Foo\"}", ERR_STRUCTURE, NULL,
                 "unknown resource type \"Foo\"");
    expect_issue("{\"resourceType\":\"DomainResource\"}", ERR_STRUCTURE, NULL,
                 "unknown resource type \"DomainResource\"");
    expect_issue("{\"resourceType\":\"vitalsigns\"}", ERR_STRUCTURE, NULL, NULL);
    expect_issue("{\"resourceType\":1}", ERR_STRUCTURE, NULL,
                 "resourceType must be a JSON string, not a number");
    /* resourceType belongs to a resource's root only */
    expect_issue("{\"resourceType\":\"Patient\",\"name\":[{\"resourceType\":\"HumanName\"}]}",
                 ERR_STRUCTURE, "Patient.name[0].resourceType",
                 "unknown element \"resourceType\" in Patient.name");
}

static void test_unknown_elements(void **state)
{
    (void)state;
    expect_issue("{\"resourceType\":\"Patient\",\"foo\":1}", ERR_STRUCTURE, "Patient.foo",
                 "unknown element \"foo\" in Patient");
    expect_issue("{\"resourceType\":\"Patient\",\"fhir_comments\":[\"x\"]}", ERR_STRUCTURE,
                 "Patient.fhir_comments", "unknown element \"fhir_comments\" in Patient");
    expect_issue("{\"resourceType\":\"Patient\",\"contact\":[{\"nam\":{}}]}", ERR_STRUCTURE,
                 "Patient.contact[0].nam", "unknown element \"nam\" in Patient.contact");
    /* choice elements: the type suffix must be an allowed type, capitalised */
    expect_issue("{\"resourceType\":\"Patient\",\"deceasedString\":\"x\"}", ERR_STRUCTURE,
                 "Patient.deceasedString", NULL);
    expect_issue("{\"resourceType\":\"Patient\",\"deceased\":true}", ERR_STRUCTURE,
                 "Patient.deceased", NULL);
    expect_issue("{\"resourceType\":\"Patient\",\"deceasedboolean\":true}", ERR_STRUCTURE,
                 "Patient.deceasedboolean", NULL);
    /* _name belongs to primitives only */
    expect_issue("{\"resourceType\":\"Patient\",\"_name\":[{\"id\":\"1\"}]}", ERR_STRUCTURE,
                 "Patient._name", "unknown element \"_name\" in Patient");
    expect_issue("{\"resourceType\":\"Patient\",\"_foo\":{}}", ERR_STRUCTURE, "Patient._foo",
                 NULL);
    /* Element.id and Extension.url are XML attributes: no extensions of their own */
    expect_issue("{\"resourceType\":\"Patient\",\"name\":[{\"id\":\"n1\",\"_id\":{"
                 "\"extension\":[{\"url\":\"http://x\",\"valueString\":\"y\"}]}}]}",
                 ERR_STRUCTURE, "Patient.name[0]._id", "unknown element \"_id\" in Patient.name");
    expect_issue("{\"resourceType\":\"Patient\",\"extension\":[{\"url\":\"http://x\","
                 "\"_url\":{\"id\":\"1\"},\"valueString\":\"y\"}]}",
                 ERR_STRUCTURE, "Patient.extension[0]._url", NULL);
    expect_valid("{\"resourceType\":\"Patient\",\"id\":\"p1\",\"_id\":{\"id\":\"x\"}}");
    /* inside a primitive's extension object only id and extension are allowed */
    expect_issue("{\"resourceType\":\"Patient\",\"_birthDate\":{\"value\":\"x\"}}",
                 ERR_STRUCTURE, "Patient.birthDate.value",
                 "unknown element \"value\" in Patient._birthDate");
    /* two types for one choice */
    expect_issue("{\"resourceType\":\"Patient\",\"deceasedBoolean\":true,"
                 "\"deceasedDateTime\":\"2020\"}",
                 ERR_STRUCTURE, "Patient.deceased",
                 "Patient.deceased[x] has more than one type (boolean and dateTime)");
    expect_valid("{\"resourceType\":\"Patient\",\"deceasedBoolean\":true,"
                 "\"_deceasedBoolean\":{\"id\":\"a\"}}");
}

static void test_json_shapes(void **state)
{
    (void)state;
    expect_issue("{\"resourceType\":\"Patient\",\"active\":\"true\"}", ERR_STRUCTURE,
                 "Patient.active", "Patient.active must be a JSON boolean, not a string");
    expect_issue("{\"resourceType\":\"Patient\",\"name\":{\"family\":\"x\"}}", ERR_STRUCTURE,
                 "Patient.name", "Patient.name must be an array");
    expect_issue("{\"resourceType\":\"Patient\",\"gender\":[\"male\"]}", ERR_STRUCTURE,
                 "Patient.gender", "Patient.gender must not be an array");
    expect_issue("{\"resourceType\":\"Patient\",\"name\":[]}", ERR_STRUCTURE, "Patient.name",
                 "Patient.name must not be an empty array");
    expect_issue("{\"resourceType\":\"Patient\",\"name\":[{}]}", ERR_STRUCTURE,
                 "Patient.name[0]", "Patient.name must not be an empty object");
    expect_issue("{\"resourceType\":\"Patient\",\"gender\":\"\"}", ERR_STRUCTURE,
                 "Patient.gender", "Patient.gender must not be an empty string");
    expect_issue("{\"resourceType\":\"Patient\",\"gender\":null}", ERR_STRUCTURE,
                 "Patient.gender", "Patient.gender must not be null");
    expect_issue("{\"resourceType\":\"Patient\",\"name\":[null]}", ERR_STRUCTURE,
                 "Patient.name[0]", "Patient.name must not be null");
    expect_issue("{\"resourceType\":\"Patient\",\"name\":[{\"given\":[\"a\",null]}]}",
                 ERR_STRUCTURE, "Patient.name[0].given[1]", "Patient.name.given must not be null");
    expect_issue("{\"resourceType\":\"Patient\",\"name\":[\"x\"]}", ERR_STRUCTURE,
                 "Patient.name[0]", "Patient.name must be a JSON object, not a string");
    expect_issue("{\"resourceType\":\"Patient\",\"maritalStatus\":{\"coding\":{}}}",
                 ERR_STRUCTURE, "Patient.maritalStatus.coding",
                 "Patient.maritalStatus.coding must be an array");
    expect_issue("{\"resourceType\":\"Patient\",\"birthDate\":19741225}", ERR_STRUCTURE,
                 "Patient.birthDate", "Patient.birthDate must be a JSON string, not a number");
    expect_issue("{\"resourceType\":\"Patient\",\"birthDate\":1974.5}", ERR_STRUCTURE,
                 "Patient.birthDate", "Patient.birthDate must be a JSON string, not a number");
    expect_issue("{\"resourceType\":\"Patient\",\"multipleBirthInteger\":\"2\"}", ERR_STRUCTURE,
                 "Patient.multipleBirth.ofType(integer)",
                 "Patient.multipleBirthInteger must be a JSON number, not a string");
    expect_issue("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":"
                 "\"x\"},\"valueQuantity\":{\"value\":\"1.5\"}}",
                 ERR_STRUCTURE, "Observation.value.ofType(Quantity).value",
                 "Observation.valueQuantity.value must be a JSON number, not a string");
    expect_issue("{\"resourceType\":\"Patient\",\"contact\":[{\"name\":[{\"family\":\"x\"}]}]}",
                 ERR_STRUCTURE, "Patient.contact[0].name",
                 "Patient.contact.name must not be an array");
}

static void test_primitive_extensions(void **state)
{
    (void)state;
    expect_valid("{\"resourceType\":\"Patient\",\"birthDate\":\"1974-12-25\",\"_birthDate\":"
                 "{\"extension\":[{\"url\":\"http://hl7.org/fhir/StructureDefinition/"
                 "patient-birthTime\",\"valueDateTime\":\"1974-12-25T14:35:45-05:00\"}]}}");
    expect_issue("{\"resourceType\":\"Patient\",\"_birthDate\":[{\"id\":\"1\"}]}",
                 ERR_STRUCTURE, "Patient.birthDate", "Patient._birthDate must not be an array");
    expect_issue("{\"resourceType\":\"Patient\",\"_birthDate\":null}", ERR_STRUCTURE,
                 "Patient.birthDate", "Patient._birthDate must not be null");
    expect_issue("{\"resourceType\":\"Patient\",\"_birthDate\":{}}", ERR_STRUCTURE,
                 "Patient.birthDate", "Patient._birthDate must not be an empty object");
    expect_issue("{\"resourceType\":\"Patient\",\"_birthDate\":\"x\"}", ERR_STRUCTURE,
                 "Patient.birthDate",
                 "Patient._birthDate must be a JSON object, not a string");
    expect_issue("{\"resourceType\":\"Patient\",\"_birthDate\":{\"extension\":[{\"valueString\":"
                 "\"x\"}]}}",
                 ERR_REQUIRED, "Patient.birthDate.extension[0].url",
                 "Patient._birthDate.extension.url is required");
    expect_issue("{\"resourceType\":\"Patient\",\"name\":[{\"given\":[\"a\"],\"_given\":"
                 "{\"id\":\"1\"}}]}",
                 ERR_STRUCTURE, "Patient.name[0].given", "Patient.name._given must be an array");
    /* null in both halves at the same index */
    expect_issue("{\"resourceType\":\"Patient\",\"name\":[{\"given\":[\"a\",null],"
                 "\"_given\":[null,null]}]}",
                 ERR_STRUCTURE, "Patient.name[0].given[1]", "Patient.name.given must not be null");
    expect_issue("{\"resourceType\":\"Patient\",\"name\":[{\"_given\":[null]}]}", ERR_STRUCTURE,
                 "Patient.name[0].given[0]", "Patient.name._given must not be null");
    /* the halves must align */
    expect_issue("{\"resourceType\":\"Patient\",\"name\":[{\"given\":[\"a\",\"b\"],"
                 "\"_given\":[{\"id\":\"1\"}]}]}",
                 ERR_STRUCTURE, "Patient.name[0].given",
                 "Patient.name._given must have as many items as given (1, not 2)");
    /* null is allowed in the value array where the extension array has an item */
    expect_valid("{\"resourceType\":\"Patient\",\"name\":[{\"_given\":[{\"id\":\"1\"},null],"
                 "\"given\":[null,\"b\"]}]}");
}

static void test_required(void **state)
{
    (void)state;
    expect_issue("{\"resourceType\":\"Observation\",\"code\":{\"text\":\"x\"}}", ERR_REQUIRED,
                 "Observation.status", "Observation.status is required");
    expect_issue("{\"resourceType\":\"Patient\",\"extension\":[{\"valueString\":\"x\"}]}",
                 ERR_REQUIRED, "Patient.extension[0].url", "Patient.extension.url is required");
    expect_issue("{\"resourceType\":\"Patient\",\"modifierExtension\":[{\"valueString\":\"x\"}]}",
                 ERR_REQUIRED, "Patient.modifierExtension[0].url",
                 "Patient.modifierExtension.url is required");
    /* a required choice element */
    expect_issue("{\"resourceType\":\"Patient\",\"link\":[{\"type\":\"seealso\"}]}",
                 ERR_REQUIRED, "Patient.link[0].other", "Patient.link.other is required");
    expect_issue("{\"resourceType\":\"Patient\",\"text\":{\"status\":\"generated\"}}",
                 ERR_REQUIRED, "Patient.text.div", "Patient.text.div is required");
    expect_issue("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":"
                 "\"x\"},\"component\":[{\"valueString\":\"x\"}]}",
                 ERR_REQUIRED, "Observation.component[0].code",
                 "Observation.component.code is required");
    expect_issue("{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[{\"request\":"
                 "{\"method\":\"GET\"}}]}",
                 ERR_REQUIRED, "Bundle.entry[0].request.url",
                 "Bundle.entry.request.url is required");
    expect_issue("{\"resourceType\":\"Task\",\"status\":\"draft\",\"intent\":\"order\","
                 "\"input\":[{\"type\":{\"text\":\"x\"}}]}",
                 ERR_REQUIRED, "Task.input[0].value", "Task.input.value[x] is required");
}

static void test_bindings(void **state)
{
    (void)state;
    expect_issue("{\"resourceType\":\"Observation\",\"status\":\"finalx\",\"code\":{\"text\":"
                 "\"x\"}}",
                 ERR_CODE_INVALID, "Observation.status",
                 "\"finalx\" is not a valid code for Observation.status (allowed: registered, "
                 "preliminary, final, amended, ...)");
    expect_issue("{\"resourceType\":\"Patient\",\"gender\":\"m\"}", ERR_CODE_INVALID,
                 "Patient.gender",
                 "\"m\" is not a valid code for Patient.gender (allowed: male, female, other, "
                 "unknown)");
    expect_issue("{\"resourceType\":\"Patient\",\"name\":[{\"use\":\"nick\"}]}",
                 ERR_CODE_INVALID, "Patient.name[0].use", NULL);
    expect_issue("{\"resourceType\":\"Patient\",\"text\":{\"status\":\"done\",\"div\":"
                 "\"<div>x</div>\"}}",
                 ERR_CODE_INVALID, "Patient.text.status", NULL);
    /* codes are case sensitive */
    expect_issue("{\"resourceType\":\"Patient\",\"gender\":\"Male\"}", ERR_CODE_INVALID,
                 "Patient.gender", NULL);
    /* a repeating code */
    expect_issue("{\"resourceType\":\"CapabilityStatement\",\"status\":\"active\",\"date\":"
                 "\"2020\",\"kind\":\"instance\",\"fhirVersion\":\"4.0.1\",\"format\":[\"json\"],"
                 "\"rest\":[{\"mode\":\"server\",\"resource\":[{\"type\":\"Patient\","
                 "\"interaction\":[{\"code\":\"read\"},{\"code\":\"reed\"}]}]}]}",
                 ERR_CODE_INVALID, "CapabilityStatement.rest[0].resource[0].interaction[1].code",
                 NULL);
    /* CodeableConcept: codings given, none from the value set */
    expect_issue("{\"resourceType\":\"Condition\",\"subject\":{\"reference\":\"Patient/1\"},"
                 "\"clinicalStatus\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/"
                 "CodeSystem/condition-clinical\",\"code\":\"gone\"}]}}",
                 ERR_CODE_INVALID, "Condition.clinicalStatus",
                 "Condition.clinicalStatus has no code from its required value set "
                 "http://hl7.org/fhir/ValueSet/condition-clinical (allowed: active, recurrence, "
                 "relapse, inactive, remission, resolved)");
    /* the right code from the wrong system */
    expect_issue("{\"resourceType\":\"Condition\",\"subject\":{\"reference\":\"Patient/1\"},"
                 "\"clinicalStatus\":{\"coding\":[{\"system\":\"http://example.org\","
                 "\"code\":\"active\"}]}}",
                 ERR_CODE_INVALID, "Condition.clinicalStatus", NULL);
    /* an invalid code is reported once, as a format problem */
    expect_issue("{\"resourceType\":\"Patient\",\"gender\":\" male\"}", ERR_VALUE,
                 "Patient.gender", NULL);
    /* a code without a required binding can be anything well-formed */
    expect_valid("{\"resourceType\":\"Patient\",\"language\":\"xx-YY\"}");
    expect_valid("{\"resourceType\":\"Patient\",\"photo\":[{\"contentType\":\"image/x-new\"}]}");
}

/* --- primitive formats ----------------------------------------------------------------- */

typedef struct {
    const char *type;  /* the suffix of Extension.value[x] */
    const char *value; /* JSON text */
    status_t code;     /* ERR_OK when valid */
} primitive_case_t;

static const primitive_case_t primitive_cases[] = {
    {"Boolean", "true", ERR_OK},
    {"Boolean", "false", ERR_OK},
    {"Boolean", "\"true\"", ERR_STRUCTURE},
    {"Boolean", "1", ERR_STRUCTURE},
    {"Integer", "0", ERR_OK},
    {"Integer", "-2147483648", ERR_OK},
    {"Integer", "2147483647", ERR_OK},
    {"Integer", "2147483648", ERR_VALUE},
    {"Integer", "-2147483649", ERR_VALUE},
    {"Integer", "99999999999999999999999", ERR_VALUE},
    {"Integer", "1.0", ERR_VALUE},
    {"Integer", "1e2", ERR_VALUE},
    {"Integer", "\"1\"", ERR_STRUCTURE},
    {"PositiveInt", "1", ERR_OK},
    {"PositiveInt", "0", ERR_VALUE},
    {"PositiveInt", "-1", ERR_VALUE},
    {"UnsignedInt", "0", ERR_OK},
    {"UnsignedInt", "2147483647", ERR_OK},
    {"UnsignedInt", "-1", ERR_VALUE},
    {"Decimal", "0", ERR_OK},
    {"Decimal", "-1.50", ERR_OK},
    {"Decimal", "1e-3", ERR_OK},
    {"Decimal", "123456789012345678901234567890.5", ERR_OK},
    {"Decimal", "\"1.5\"", ERR_STRUCTURE},
    {"String", "\"a b\\tc\\r\\nd\"", ERR_OK},
    {"String", "\"\\u00e9\\u4e2d\"", ERR_OK},
    {"String", "\"\"", ERR_STRUCTURE},
    {"String", "\" \"", ERR_OK},
    {"String", "\"a\\u0001b\"", ERR_VALUE},
    {"String", "\"a\\u001fb\"", ERR_VALUE},
    {"String", "12", ERR_STRUCTURE},
    {"Markdown", "\"# title\\n\\n* item\"", ERR_OK},
    {"Markdown", "\"a\\u0007\"", ERR_VALUE},
    {"Code", "\"final\"", ERR_OK},
    {"Code", "\"a b c\"", ERR_OK},
    {"Code", "\" a\"", ERR_VALUE},
    {"Code", "\"a \"", ERR_VALUE},
    {"Code", "\"a  b\"", ERR_VALUE},
    {"Code", "\"a\\tb\"", ERR_VALUE},
    {"Code", "\"a\\nb\"", ERR_VALUE},
    {"Id", "\"a-Z.09\"", ERR_OK},
    {"Id", "\"1234567890123456789012345678901234567890123456789012345678901234\"", ERR_OK},
    {"Id", "\"12345678901234567890123456789012345678901234567890123456789012345\"", ERR_VALUE},
    {"Id", "\"a_b\"", ERR_VALUE},
    {"Id", "\"a b\"", ERR_VALUE},
    {"Id", "\"a/b\"", ERR_VALUE},
    {"Uri", "\"http://example.org/a?b=c#d\"", ERR_OK},
    {"Uri", "\"urn:x\"", ERR_OK},
    {"Uri", "\"http://example.org/a b\"", ERR_VALUE},
    {"Url", "\"http://x/\\ty\"", ERR_VALUE},
    {"Canonical", "\"http://hl7.org/fhir/ValueSet/x|4.0.1\"", ERR_OK},
    {"Canonical", "\"a b\"", ERR_VALUE},
    {"Oid", "\"urn:oid:1.2.3.4\"", ERR_OK},
    {"Oid", "\"urn:oid:2.16.840.1.113883\"", ERR_OK},
    {"Oid", "\"urn:oid:0.0\"", ERR_OK},
    {"Oid", "\"urn:oid:1\"", ERR_VALUE},
    {"Oid", "\"urn:oid:3.1\"", ERR_VALUE},
    {"Oid", "\"urn:oid:1.02\"", ERR_VALUE},
    {"Oid", "\"urn:oid:1..2\"", ERR_VALUE},
    {"Oid", "\"urn:oid:1.2.\"", ERR_VALUE},
    {"Oid", "\"1.2.3\"", ERR_VALUE},
    {"Uuid", "\"urn:uuid:c757873d-ec9a-4326-a141-556f43239520\"", ERR_OK},
    {"Uuid", "\"urn:uuid:C757873D-EC9A-4326-A141-556F43239520\"", ERR_VALUE},
    {"Uuid", "\"urn:uuid:c757873d-ec9a-4326-a141-556f4323952\"", ERR_VALUE},
    {"Uuid", "\"urn:uuid:c757873dec9a-4326-a141-556f43239520-\"", ERR_VALUE},
    {"Uuid", "\"c757873d-ec9a-4326-a141-556f43239520\"", ERR_VALUE},
    {"Base64Binary", "\"aGVsbG8=\"", ERR_OK},
    {"Base64Binary", "\"aGVs bG8=\"", ERR_OK},
    {"Base64Binary", "\"aGVs\\nbG8=\\n\"", ERR_OK},
    {"Base64Binary", "\"aGVsbG8\"", ERR_VALUE},
    {"Base64Binary", "\"aGV sbG8=\"", ERR_VALUE},
    {"Base64Binary", "\"aGVsbG8*\"", ERR_VALUE},
    {"Base64Binary", "\" \"", ERR_VALUE},
    {"Date", "\"2024\"", ERR_OK},
    {"Date", "\"2024-02\"", ERR_OK},
    {"Date", "\"2024-02-29\"", ERR_OK},
    {"Date", "\"2000-02-29\"", ERR_OK},
    {"Date", "\"0001-01-01\"", ERR_OK},
    {"Date", "\"2023-02-29\"", ERR_VALUE},
    {"Date", "\"1900-02-29\"", ERR_VALUE},
    {"Date", "\"2024-04-31\"", ERR_VALUE},
    {"Date", "\"2024-13-01\"", ERR_VALUE},
    {"Date", "\"2024-00\"", ERR_VALUE},
    {"Date", "\"2024-01-00\"", ERR_VALUE},
    {"Date", "\"0000\"", ERR_VALUE},
    {"Date", "\"24\"", ERR_VALUE},
    {"Date", "\"2024-1-1\"", ERR_VALUE},
    {"Date", "\"2024-01-01T00:00:00Z\"", ERR_VALUE},
    {"Date", "\"2024-01-01 \"", ERR_VALUE},
    {"DateTime", "\"2024\"", ERR_OK},
    {"DateTime", "\"2024-05\"", ERR_OK},
    {"DateTime", "\"2024-05-06\"", ERR_OK},
    {"DateTime", "\"2024-05-06T07:08:09Z\"", ERR_OK},
    {"DateTime", "\"2024-05-06T07:08:09.123+14:00\"", ERR_OK},
    {"DateTime", "\"2024-05-06T23:59:60-13:59\"", ERR_OK},
    {"DateTime", "\"2024-05-06T07:08:09\"", ERR_VALUE},
    {"DateTime", "\"2024-05-06T07:08Z\"", ERR_VALUE},
    {"DateTime", "\"2024-05-06T24:00:00Z\"", ERR_VALUE},
    {"DateTime", "\"2024-05-06T07:60:00Z\"", ERR_VALUE},
    {"DateTime", "\"2024-05-06T07:08:61Z\"", ERR_VALUE},
    {"DateTime", "\"2024-05-06T07:08:09.Z\"", ERR_VALUE},
    {"DateTime", "\"2024-05-06T07:08:09+14:01\"", ERR_VALUE},
    {"DateTime", "\"2024-05-06T07:08:09+15:00\"", ERR_VALUE},
    {"DateTime", "\"2024-05-06T07:08:09+0100\"", ERR_VALUE},
    {"DateTime", "\"2024-05T07:08:09Z\"", ERR_VALUE},
    {"DateTime", "\"2024-05-06t07:08:09Z\"", ERR_VALUE},
    {"Instant", "\"2024-05-06T07:08:09.123Z\"", ERR_OK},
    {"Instant", "\"2024-05-06T07:08:09+01:00\"", ERR_OK},
    {"Instant", "\"2024-05-06T07:08:09\"", ERR_VALUE},
    {"Instant", "\"2024-05-06\"", ERR_VALUE},
    {"Instant", "\"2024\"", ERR_VALUE},
    {"Time", "\"07:08:09\"", ERR_OK},
    {"Time", "\"23:59:60.5\"", ERR_OK},
    {"Time", "\"07:08\"", ERR_VALUE},
    {"Time", "\"24:00:00\"", ERR_VALUE},
    {"Time", "\"07:08:09Z\"", ERR_VALUE},
};

static void test_primitive_formats(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(primitive_cases) / sizeof(primitive_cases[0]); i++) {
        const primitive_case_t *c = &primitive_cases[i];
        char text[512], expression[128];
        snprintf(text, sizeof(text),
                 "{\"resourceType\":\"Basic\",\"code\":{\"text\":\"x\"},\"extension\":"
                 "[{\"url\":\"http://example.org/x\",\"value%s\":%s}]}",
                 c->type, c->value);
        if (c->code == ERR_OK) {
            expect_valid(text);
            continue;
        }
        char type_name[32];
        snprintf(type_name, sizeof(type_name), "%s", c->type);
        /* the FHIR type names are the suffixes with a lower-case first letter */
        type_name[0] = (char)(type_name[0] - 'A' + 'a');
        snprintf(expression, sizeof(expression), "Basic.extension[0].value.ofType(%s)",
                 type_name);
        expect_issue(text, c->code, expression, NULL);
    }
}

static void test_messages(void **state)
{
    (void)state;
    expect_issue("{\"resourceType\":\"Patient\",\"birthDate\":\"2024-13-01\"}", ERR_VALUE,
                 "Patient.birthDate",
                 "could not parse Patient.birthDate: \"2024-13-01\" is not a valid date");
    expect_issue("{\"resourceType\":\"Patient\",\"deceasedDateTime\":\"2024-01-01T10:00:00\"}",
                 ERR_VALUE, "Patient.deceased.ofType(dateTime)",
                 "could not parse Patient.deceasedDateTime: \"2024-01-01T10:00:00\" is not a "
                 "valid dateTime: a time needs a timezone");
    expect_issue("{\"resourceType\":\"Patient\",\"id\":\"a_b\"}", ERR_VALUE, "Patient.id",
                 "could not parse Patient.id: \"a_b\" is not a valid id: only letters, digits, "
                 "'-' and '.' are allowed");
    expect_issue("{\"resourceType\":\"Patient\",\"multipleBirthInteger\":3000000000}",
                 ERR_VALUE, "Patient.multipleBirth.ofType(integer)",
                 "could not parse Patient.multipleBirthInteger: 3000000000 is out of range for "
                 "integer");
}

/* A user's long value is shortened in messages; quotes and controls are escaped. */
static void test_message_quoting(void **state)
{
    (void)state;
    expect_issue("{\"resourceType\":\"Patient\",\"gender\":\"\\\"x\"}", ERR_CODE_INVALID,
                 "Patient.gender",
                 "\"\\\"x\" is not a valid code for Patient.gender (allowed: male, female, "
                 "other, unknown)");
    expect_issue("{\"resourceType\":\"Patient\",\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
                 ERR_VALUE, "Patient.id",
                 "could not parse Patient.id: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                 "aaaaaaaaaaaaaaa...\" is not a valid id: it is longer than 64 characters");
}

static void test_narrative(void **state)
{
    (void)state;
    expect_issue("{\"resourceType\":\"Patient\",\"text\":{\"status\":\"generated\",\"div\":"
                 "\"<p>x</p>\"}}",
                 ERR_VALUE, "Patient.text.div",
                 "could not parse Patient.text.div: \"<p>x</p>\" is not a valid xhtml: it must "
                 "start with <div");
    expect_issue("{\"resourceType\":\"Patient\",\"text\":{\"status\":\"generated\",\"div\":"
                 "\"\"}}",
                 ERR_STRUCTURE, "Patient.text.div", "Patient.text.div must not be an empty string");
    expect_issue("{\"resourceType\":\"Patient\",\"text\":{\"status\":\"generated\",\"div\":"
                 "{}}}",
                 ERR_STRUCTURE, "Patient.text.div",
                 "Patient.text.div must be a JSON string, not an object");
}

static void test_nested_resources(void **state)
{
    (void)state;
    expect_issue("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
                 "{\"resource\":{\"resourceType\":\"Patient\"}},"
                 "{\"resource\":{\"resourceType\":\"Patient\"}},"
                 "{\"resource\":{\"resourceType\":\"Patient\",\"birthDate\":\"2024-13-01\"}}]}",
                 ERR_VALUE, "Bundle.entry[2].resource.ofType(Patient).birthDate",
                 "could not parse Patient.birthDate: \"2024-13-01\" is not a valid date");
    expect_issue("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
                 "{\"resource\":{\"resourceType\":\"Foo\"}}]}",
                 ERR_STRUCTURE, "Bundle.entry[0].resource", "unknown resource type \"Foo\"");
    expect_issue("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
                 "{\"resource\":{\"id\":\"1\"}}]}",
                 ERR_STRUCTURE, "Bundle.entry[0].resource",
                 "Bundle.entry.resource has no resourceType");
    expect_issue("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
                 "{\"resource\":{\"resourceType\":[\"Patient\"]}}]}",
                 ERR_STRUCTURE, "Bundle.entry[0].resource",
                 "Bundle.entry.resource.resourceType must be a JSON string, not an array");
    expect_issue("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
                 "{\"resource\":[]}]}",
                 ERR_STRUCTURE, "Bundle.entry[0].resource",
                 "Bundle.entry.resource must not be an array");
    expect_issue("{\"resourceType\":\"Patient\",\"contained\":[{\"resourceType\":"
                 "\"Observation\",\"id\":\"o1\",\"code\":{\"text\":\"x\"}}]}",
                 ERR_REQUIRED, "Patient.contained[0].ofType(Observation).status",
                 "Observation.status is required");
    expect_issue("{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"p\","
                 "\"resource\":{\"resourceType\":\"Patient\",\"foo\":1}}]}",
                 ERR_STRUCTURE, "Parameters.parameter[0].resource.ofType(Patient).foo",
                 "unknown element \"foo\" in Patient");
    /* a Bundle in a Bundle, and the path after the inner resource */
    expect_issue("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"resource\":"
                 "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"resource\":"
                 "{\"resourceType\":\"Patient\",\"active\":1}}]}}]}",
                 ERR_STRUCTURE,
                 "Bundle.entry[0].resource.ofType(Bundle).entry[0].resource.ofType(Patient).active",
                 "Patient.active must be a JSON boolean, not a number");
    expect_issue("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"resource\":"
                 "{\"resourceType\":\"Patient\"},\"fullUrl\":\"a b\"}]}",
                 ERR_VALUE, "Bundle.entry[0].fullUrl", NULL);
}

static void test_many_issues(void **state)
{
    (void)state;
    /* keeps going after the first, and stops at the cap */
    err_t err;
    run("{\"resourceType\":\"Patient\",\"active\":1,\"gender\":\"x\",\"foo\":1,"
        "\"birthDate\":\"2024-02-30\"}",
        &err);
    assert_int_equal(err.nissues, 4);
    assert_int_equal(err.code, ERR_STRUCTURE);
    assert_int_equal(err.issues[1].code, ERR_CODE_INVALID);
    assert_int_equal(err.issues[2].code, ERR_STRUCTURE);
    assert_int_equal(err.issues[3].code, ERR_VALUE);
    err_release(&err);

    buf_t text = BUF_INIT;
    buf_addstr(&text, "{\"resourceType\":\"Patient\",\"name\":[");
    for (int i = 0; i < 500; i++)
        buf_addstr(&text, i ? ",{\"use\":\"x\"}" : "{\"use\":\"x\"}");
    buf_addstr(&text, "]}");
    run(text.ptr, &err);
    assert_int_equal(err.nissues, FHIR_VALIDATE_MAX_ISSUES);
    assert_string_equal(err.issues[99].expression, "Patient.name[99].use");
    err_release(&err);
    buf_release(&text);
}

/* A string may hold 1,048,576 characters, however many bytes they take. */
static void test_string_length(void **state)
{
    (void)state;
    const size_t max = 1024 * 1024;
    buf_t text = BUF_INIT;
    buf_addstr(&text, "{\"resourceType\":\"Patient\",\"name\":[{\"text\":\"");
    for (size_t i = 0; i < max; i++)
        buf_addstr(&text, "\xc3\xa9"); /* U+00E9, two bytes */
    buf_addstr(&text, "\"}]}");
    expect_valid(text.ptr);
    buf_reset(&text);
    buf_addstr(&text, "{\"resourceType\":\"Patient\",\"name\":[{\"text\":\"");
    for (size_t i = 0; i <= max; i++)
        buf_addch(&text, 'a');
    buf_addstr(&text, "\"}]}");
    expect_issue(text.ptr, ERR_VALUE, "Patient.name[0].text",
                 "could not parse Patient.name.text: the string is longer than 1048576 "
                 "characters");
    buf_release(&text);
}

/* Values built by code rather than jv_parse may nest deeper than the parser allows. */
static void test_deep_nesting(void **state)
{
    (void)state;
    json_t *root = json_pack("{s:s, s:s}", "resourceType", "Questionnaire", "status", "draft");
    json_t *parent = root;
    for (int i = 0; i < 400; i++) {
        json_t *item = json_pack("{s:s, s:s}", "linkId", "x", "type", "group");
        json_object_set_new(parent, "item", json_pack("[o]", item));
        parent = item;
    }
    err_t err = ERR_INIT;
    assert_int_equal(fhir_validate(root, &err), ERR_STRUCTURE);
    assert_int_equal(err.nissues, 1);
    assert_non_null(strstr(err.issues[0].message, "is nested too deeply"));
    err_release(&err);
    json_decref(root);
}

/* --- data-driven cases ----------------------------------------------------------------- */

static bool read_file(const char *path, buf_t *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(out, chunk, n);
    fclose(f);
    return true;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted *.json names of a directory (the caller frees each and the array). */
static char **list_json(const char *dir_path, size_t *out_n)
{
    DIR *dir = opendir(dir_path);
    assert_non_null(dir);
    char **names = NULL;
    size_t n = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        size_t len = strlen(entry->d_name);
        if (len > 5 && strcmp(entry->d_name + len - 5, ".json") == 0) {
            names = xrealloc(names, (n + 1) * sizeof(*names));
            names[n++] = xstrdup(entry->d_name);
        }
    }
    closedir(dir);
    qsort(names, n, sizeof(*names), compare_names);
    *out_n = n;
    return names;
}

static void test_data_valid(void **state)
{
    (void)state;
    size_t n;
    char **names = list_json(DATA_DIR "/valid", &n);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        buf_t path = BUF_INIT, text = BUF_INIT;
        buf_addf(&path, DATA_DIR "/valid/%s", names[i]);
        assert_true(read_file(path.ptr, &text));
        err_t err;
        run(text.ptr, &err);
        if (err.nissues) {
            print_issues(&err);
            fail_msg("%s: expected no issue", path.ptr);
        }
        err_release(&err);
        buf_release(&path);
        buf_release(&text);
        free(names[i]);
    }
    free(names);
}

static void test_data_invalid(void **state)
{
    (void)state;
    size_t n;
    char **names = list_json(DATA_DIR "/invalid", &n);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        buf_t path = BUF_INIT, text = BUF_INIT, expected = BUF_INIT, actual = BUF_INIT;
        buf_addf(&path, DATA_DIR "/invalid/%s", names[i]);
        assert_true(read_file(path.ptr, &text));
        buf_setlen(&path, path.len - 5);
        buf_addstr(&path, ".expected");
        if (!read_file(path.ptr, &expected))
            fail_msg("%s is missing", path.ptr);
        err_t err;
        run(text.ptr, &err);
        for (size_t k = 0; k < err.nissues; k++) {
            buf_addf(&actual, "%s\t%s\t%s\n", err_name(err.issues[k].code),
                     err.issues[k].expression ? err.issues[k].expression : "",
                     err.issues[k].message);
        }
        if (strcmp(expected.ptr, actual.ptr) != 0)
            fail_msg("%s: expected\n%sgot\n%s", path.ptr, expected.ptr, actual.ptr);
        err_release(&err);
        buf_release(&path);
        buf_release(&text);
        buf_release(&expected);
        buf_release(&actual);
        free(names[i]);
    }
    free(names);
}

/* Validates a typical resource many times and prints the rate (not a pass/fail figure). */
static void test_throughput(void **state)
{
    (void)state;
    buf_t text = BUF_INIT;
    assert_true(read_file(DATA_DIR "/valid/observation-vitals.json", &text));
    err_t err = ERR_INIT;
    json_t *resource = jv_parse(text.ptr, text.len, &err);
    assert_non_null(resource);
    const int rounds = 20000;
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int i = 0; i < rounds; i++)
        assert_int_equal(fhir_validate(resource, &err), ERR_OK);
    clock_gettime(CLOCK_MONOTONIC, &end);
    double seconds = (double)(end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
    printf("throughput: %zu-byte resource validated %.0f times per second\n", text.len,
           rounds / seconds);
    json_decref(resource);
    buf_release(&text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_lookups),
        cmocka_unit_test(test_valid_resources),
        cmocka_unit_test(test_resource_root),
        cmocka_unit_test(test_unknown_elements),
        cmocka_unit_test(test_json_shapes),
        cmocka_unit_test(test_primitive_extensions),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_bindings),
        cmocka_unit_test(test_primitive_formats),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_message_quoting),
        cmocka_unit_test(test_narrative),
        cmocka_unit_test(test_nested_resources),
        cmocka_unit_test(test_many_issues),
        cmocka_unit_test(test_string_length),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_data_valid),
        cmocka_unit_test(test_data_invalid),
        cmocka_unit_test(test_throughput),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
