/*
 * compartment.c - lookups in the generated compartment table.
 */
#include <string.h>

#include "fhir/compartment_int.h"

static const fhir__compartment_t *find(const char *compartment)
{
    for (size_t i = 0; i < fhir__compartment_count; i++)
        if (strcmp(fhir__compartments[i].code, compartment) == 0)
            return &fhir__compartments[i];
    return NULL;
}

bool fhir_compartment_exists(const char *compartment)
{
    return find(compartment) != NULL;
}

bool fhir_compartment_params(const char *compartment, const fhir_type_t *type,
                             const char *const **out_params, size_t *out_n)
{
    *out_params = NULL;
    *out_n = 0;
    const fhir__compartment_t *c = find(compartment);
    if (!c || !type)
        return false;
    size_t lo = 0, hi = c->nmembers;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = strcmp(c->members[mid].type, type->name);
        if (cmp == 0) {
            *out_params = c->members[mid].params;
            *out_n = c->members[mid].nparams;
            return true;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* Types about one patient that R4's Patient CompartmentDefinition leaves out. */
static const char *const patient_param[] = {"patient"};
static const char *const extra_links[] = {
    "Task",             /* Task.for */
    "GuidanceResponse", /* GuidanceResponse.subject */
    "Contract",         /* Contract.subject */
};

bool fhir_patient_link_params(const fhir_type_t *type, const char *const **out_params,
                              size_t *out_n)
{
    *out_params = NULL;
    *out_n = 0;
    if (!type || strcmp(type->name, "Patient") == 0)
        return false;
    for (size_t i = 0; i < sizeof(extra_links) / sizeof(extra_links[0]); i++)
        if (strcmp(type->name, extra_links[i]) == 0) {
            *out_params = patient_param;
            *out_n = 1;
            return true;
        }
    return fhir_compartment_params("Patient", type, out_params, out_n) && *out_n > 0;
}
