/*
 * libFuzzer harness for FHIRPath Patch: any JSON (a Parameters resource or not) applied to a
 * fixed Patient must either patch it or fail cleanly, and a failure must leave the resource
 * exactly as it was (all or nothing). A success gives a JSON object that is still a Patient.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/jv.h"
#include "fhir/patch.h"

static const char patient_text[] =
    "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"active\":true,"
    "\"identifier\":[{\"system\":\"http://acme.org/mrn\",\"value\":\"123\"}],"
    "\"name\":[{\"use\":\"official\",\"family\":\"Chalmers\",\"given\":[\"Peter\",\"James\"]},"
    "{\"use\":\"usual\",\"given\":[\"Jim\"]}],"
    "\"telecom\":[{\"system\":\"phone\",\"value\":\"555\"}],\"gender\":\"male\","
    "\"birthDate\":\"1974-12-25\",\"_birthDate\":{\"extension\":[{\"url\":\"http://x\","
    "\"valueDateTime\":\"1974-12-25T14:35:45-05:00\"}]},\"deceasedBoolean\":false,"
    "\"address\":[{\"line\":[\"534 Erewhon St\"],\"city\":\"PleasantVille\"}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    err_t err = ERR_INIT;
    json_t *parameters = jv_parse((const char *)data, size, &err);
    err_release(&err);
    if (!parameters)
        return 0;
    err = (err_t)ERR_INIT;
    json_t *patient = jv_parse(patient_text, sizeof(patient_text) - 1, &err);
    if (!patient)
        abort();
    char *before = json_dumps(patient, JSON_COMPACT | JSON_SORT_KEYS);
    json_t *resource = patient;
    json_incref(resource);
    status_t rc = fhir_patch_apply(&resource, parameters, &err);
    if (rc) {
        if (resource != patient || err.code == ERR_OK)
            abort();
        char *after = json_dumps(patient, JSON_COMPACT | JSON_SORT_KEYS);
        if (strcmp(before, after) != 0)
            abort(); /* a failed patch changed the resource */
        free(after);
    } else {
        if (!json_is_object(resource) ||
            !json_is_string(json_object_get(resource, "resourceType")) ||
            strcmp(json_string_value(json_object_get(resource, "resourceType")), "Patient") != 0)
            abort();
    }
    free(before);
    json_decref(resource);
    json_decref(patient);
    json_decref(parameters);
    err_release(&err);
    return 0;
}
