/*
 * fhirpath_model.c - the FHIR type model as the engine sees it.
 *
 * Element types, choice types and base types come from the generated model (defs.h). What
 * the model does not describe (a resourceType it does not know, the value of an environment
 * variable) is typed from the shape of its JSON: a JSON boolean is a FHIR boolean, an object
 * with resourceType is that resource, a choice element is found by its suffix.
 */
#include <string.h>

#include "fhir/fhirpath_int.h"

const fhir_type_t *fhirpath__model_type(const char *name, size_t len)
{
    return fhir_type_find(name, len);
}

const fhir_type_t *fhirpath__model_resource_type(const char *name, size_t len)
{
    return fhir_resource_type_find(name, len);
}

const fhir_element_t *fhirpath__model_element(const fhir_type_t *type, const char *name, size_t len,
                                              const fhir_type_t **out_type)
{
    *out_type = NULL;
    /* "_name" is a primitive's extension object, never an element (defs.h asks for this) */
    if (!type || len == 0 || name[0] == '_')
        return NULL;
    return fhir_element_find(type, name, len, out_type);
}

bool fhirpath__model_is_a(const fhir_type_t *type, const fhir_type_t *ancestor)
{
    return fhir_type_is_a(type, ancestor);
}

const fhir_element_t *fhirpath__model_element_named(const fhir_type_t *type, const char *name,
                                                    size_t len)
{
    if (!type)
        return NULL;
    size_t lo = 0, hi = type->nelements;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *e = type->elements[mid].name;
        int c = strncmp(e, name, len);
        if (c == 0 && e[len] != '\0')
            c = 1;
        if (c == 0)
            return &type->elements[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int fhirpath__primitive_kind(fhir_primitive_t primitive)
{
    switch (primitive) {
    case FHIR_PRIM_NONE: return -1;
    case FHIR_PRIM_BOOLEAN: return FHIRPATH_BOOLEAN;
    case FHIR_PRIM_INTEGER:
    case FHIR_PRIM_UNSIGNED_INT:
    case FHIR_PRIM_POSITIVE_INT: return FHIRPATH_INTEGER;
    case FHIR_PRIM_DECIMAL: return FHIRPATH_DECIMAL;
    case FHIR_PRIM_DATE: return FHIRPATH_DATE;
    case FHIR_PRIM_DATE_TIME:
    case FHIR_PRIM_INSTANT: return FHIRPATH_DATETIME;
    case FHIR_PRIM_TIME: return FHIRPATH_TIME;
    default: return FHIRPATH_STRING;
    }
}

static const struct {
    const char *name;
    int kind;
} primitive_names[] = {
    {"base64Binary", FHIRPATH_STRING}, {"boolean", FHIRPATH_BOOLEAN},
    {"canonical", FHIRPATH_STRING},    {"code", FHIRPATH_STRING},
    {"date", FHIRPATH_DATE},           {"dateTime", FHIRPATH_DATETIME},
    {"decimal", FHIRPATH_DECIMAL},     {"id", FHIRPATH_STRING},
    {"instant", FHIRPATH_DATETIME},    {"integer", FHIRPATH_INTEGER},
    {"markdown", FHIRPATH_STRING},     {"oid", FHIRPATH_STRING},
    {"positiveInt", FHIRPATH_INTEGER}, {"string", FHIRPATH_STRING},
    {"time", FHIRPATH_TIME},           {"unsignedInt", FHIRPATH_INTEGER},
    {"uri", FHIRPATH_STRING},          {"url", FHIRPATH_STRING},
    {"uuid", FHIRPATH_STRING},         {"xhtml", FHIRPATH_STRING},
};

int fhirpath__primitive_name_kind(const char *name)
{
    if (!name)
        return -1;
    for (size_t i = 0; i < sizeof(primitive_names) / sizeof(primitive_names[0]); i++)
        if (strcmp(primitive_names[i].name, name) == 0)
            return primitive_names[i].kind;
    return -1;
}

bool fhirpath__is_quantity_type(const char *name)
{
    static const char *names[] = {"Quantity",       "Age",          "Distance", "Duration", "Count",
                                  "SimpleQuantity", "MoneyQuantity"};
    if (!name)
        return false;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}
