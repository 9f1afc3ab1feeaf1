/*
 * fhirpath.c - libFuzzer harness for the FHIRPath engine: every input is an expression,
 * compiled, checked against the model and evaluated over a small Bundle (a Patient with
 * contained and extension content, an Observation with a quantity), then rendered as JSON.
 * Errors are expected answers; crashes, leaks and undefined behaviour are the findings.
 *
 *   make fuzz && build/fuzz/fhirpath tests/fuzz/corpus/fhirpath
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/jv.h"
#include "fhir/fhirpath.h"

static const char bundle_text[] =
    "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
    "{\"fullUrl\":\"http://example.org/fhir/Patient/p1\",\"resource\":{"
    "\"resourceType\":\"Patient\",\"id\":\"p1\","
    "\"contained\":[{\"resourceType\":\"Organization\",\"id\":\"org\",\"name\":\"Acme\"}],"
    "\"extension\":[{\"url\":\"http://example.org/ext\",\"valueCode\":\"x\"}],"
    "\"active\":true,\"gender\":\"female\",\"birthDate\":\"1980-02-29\","
    "\"_birthDate\":{\"extension\":[{\"url\":\"http://example.org/time\","
    "\"valueDateTime\":\"1980-02-29T10:00:00Z\"}]},"
    "\"name\":[{\"use\":\"official\",\"family\":\"Doe\",\"given\":[\"Jane\",\"Q\"]}],"
    "\"telecom\":[{\"system\":\"phone\",\"value\":\"555-1234\",\"rank\":1}],"
    "\"managingOrganization\":{\"reference\":\"#org\"}}},"
    "{\"fullUrl\":\"urn:uuid:o1\",\"resource\":{\"resourceType\":\"Observation\",\"id\":\"o1\","
    "\"status\":\"final\",\"code\":{\"coding\":[{\"system\":\"http://loinc.org\","
    "\"code\":\"8867-4\"}]},\"subject\":{\"reference\":\"Patient/p1\"},"
    "\"effectiveDateTime\":\"2020-01-01T08:00:00+01:00\","
    "\"valueQuantity\":{\"value\":72.50,\"unit\":\"/min\",\"system\":"
    "\"http://unitsofmeasure.org\",\"code\":\"/min\"},"
    "\"component\":[{\"code\":{\"text\":\"a\"},\"valueString\":\"b\"}]}}]}";

static json_t *bundle;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!bundle) {
        err_t err = ERR_INIT;
        bundle = jv_parse(bundle_text, sizeof(bundle_text) - 1, &err);
        err_release(&err);
        if (!bundle)
            __builtin_trap();
    }
    if (size > 4096)
        return 0;
    err_t err = ERR_INIT;
    json_t *resource = NULL;
    const uint8_t *nul = memchr(data, 0, size);
    if (nul) {
        resource = jv_parse((const char *)nul + 1, size - (size_t)(nul + 1 - data), &err);
        if (!resource) {
            err_release(&err);
            return 0;
        }
        size = (size_t)(nul - data);
    }
    fhirpath_t *expr = fhirpath_compile((const char *)data, size, &err);
    if (!expr) {
        if (err.code == ERR_OK)
            __builtin_trap(); /* a failed compile must say why */
        err_release(&err);
        json_decref(resource);
        return 0;
    }
    fhirpath_check(expr, "Bundle", FHIRPATH_CHECK_ORDERED, &err);
    err_reset(&err);
    arena_t arena;
    arena_init(&arena);
    fhirpath_env_t env;
    fhirpath_env_init(&env, resource ? resource : bundle);
    env.now_set = true;
    env.now_ms = 1600000000000LL;
    fhirpath_result_t *result;
    if (fhirpath_eval(expr, &env, &arena, &result, &err) == ERR_OK) {
        buf_t out = BUF_INIT;
        fhirpath_result_dump(result, &out);
        for (size_t i = 0; i < fhirpath_result_count(result); i++) {
            const fhirpath_item_t *item = fhirpath_result_item(result, i);
            fhirpath_item_path(item, &arena);
            fhirpath_item_text(item, &arena);
        }
        buf_release(&out);
    } else if (err.code == ERR_OK) {
        __builtin_trap();
    }
    arena_release(&arena);
    fhirpath_free(expr);
    err_release(&err);
    json_decref(resource);
    return 0;
}
