/*
 * subset.c - _summary and _elements over a parsed resource: the top-level members of the
 * resource are kept or dropped by what the model says of their element (isSummary,
 * min >= 1) or by the names asked for; kept members are copied whole.
 */
#include "fhir/subset.h"

#include <string.h>

#include "base/jv.h"

#define SUBSETTED_SYSTEM "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"

static bool named(const char *name, const char *const *elements, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, elements[i]) == 0)
            return true;
    return false;
}

static bool keep(const fhir_type_t *type, const char *key, fhir_search_summary_t summary,
                 const char *const *elements, size_t nelements)
{
    if (strcmp(key, "resourceType") == 0 || strcmp(key, "id") == 0 || strcmp(key, "meta") == 0)
        return true;
    const char *name = key[0] == '_' ? key + 1 : key; /* a primitive's id and extensions */
    const fhir_type_t *chosen;
    const fhir_element_t *e = fhir_element_find(type, name, strlen(name), &chosen);
    if (nelements)
        return named(name, elements, nelements) || (e && named(e->name, elements, nelements));
    if (!e)
        return summary == FHIR_SEARCH_SUMMARY_DATA && strcmp(name, "text") != 0;
    switch (summary) {
    case FHIR_SEARCH_SUMMARY_TRUE: return e->summary;
    case FHIR_SEARCH_SUMMARY_TEXT: return strcmp(e->name, "text") == 0 || e->min >= 1;
    case FHIR_SEARCH_SUMMARY_DATA: return strcmp(e->name, "text") != 0;
    default: return true;
    }
}

json_t *fhir_subset(const json_t *resource, fhir_search_summary_t summary,
                    const char *const *elements, size_t nelements)
{
    if (!nelements && summary != FHIR_SEARCH_SUMMARY_TRUE && summary != FHIR_SEARCH_SUMMARY_TEXT &&
        summary != FHIR_SEARCH_SUMMARY_DATA)
        return NULL;
    json_t *rt = json_object_get(resource, "resourceType");
    const fhir_type_t *type =
        jv_is_string(rt) ? fhir_resource_type_find(json_string_value(rt), json_string_length(rt))
                         : NULL;
    if (!type)
        return NULL;
    json_t *out = json_object();
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)resource, key, value)
    {
        if (keep(type, key, summary, elements, nelements))
            json_object_set(out, key, value);
    }
    /* meta.tag SUBSETTED: a copy of meta, so the original is untouched */
    json_t *meta = json_object_get(out, "meta");
    meta = json_is_object(meta) ? json_deep_copy(meta) : json_object();
    json_t *tags = json_object_get(meta, "tag");
    if (!json_is_array(tags)) {
        tags = json_array();
        json_object_set_new(meta, "tag", tags);
    }
    json_t *tag = json_object();
    json_object_set_new(tag, "system", json_string(SUBSETTED_SYSTEM));
    json_object_set_new(tag, "code", json_string("SUBSETTED"));
    json_array_append_new(tags, tag);
    json_object_set_new(out, "meta", meta);
    return out;
}
