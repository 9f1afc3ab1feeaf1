/*
 * defs.c - lookups over the generated type model (defs_gen.c).
 *
 * Types, resource types, elements and value set codes are all sorted by name in the tables,
 * so every lookup is a bsearch over (ptr, len) keys; nothing here allocates or keeps state.
 */
#include "fhir/defs_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *ptr;
    size_t len;
} name_key_t;

/* strcmp order between a (ptr, len) key and a NUL-terminated name. */
static int key_compare(const name_key_t *key, const char *name)
{
    size_t n = strlen(name);
    int c = memcmp(key->ptr, name, key->len < n ? key->len : n);
    if (c != 0)
        return c;
    return key->len < n ? -1 : key->len > n ? 1 : 0;
}

static int type_compare(const void *k, const void *member)
{
    return key_compare(k, ((const fhir_type_t *)member)->name);
}

static int type_ref_compare(const void *k, const void *member)
{
    return key_compare(k, (*(const fhir_type_t *const *)member)->name);
}

static int element_compare(const void *k, const void *member)
{
    return key_compare(k, ((const fhir_element_t *)member)->name);
}

const fhir_type_t *fhir_type_find(const char *name, size_t len)
{
    name_key_t key = {name, len};
    return bsearch(&key, fhir__types, fhir__type_count, sizeof(fhir__types[0]), type_compare);
}

const fhir_type_t *fhir_resource_type_find(const char *name, size_t len)
{
    name_key_t key = {name, len};
    const fhir_type_t *const *found =
        bsearch(&key, fhir_resource_types, fhir_resource_type_count,
                sizeof(fhir_resource_types[0]), type_ref_compare);
    return found ? *found : NULL;
}

static const fhir_element_t *element_exact(const fhir_type_t *type, const char *name,
                                           size_t len)
{
    name_key_t key = {name, len};
    return bsearch(&key, type->elements, type->nelements, sizeof(type->elements[0]),
                   element_compare);
}

/* The allowed type of a choice element whose capitalised name is suffix, or NULL. */
static const fhir_type_t *choice_type(const fhir_element_t *element, const char *suffix,
                                      size_t len)
{
    for (uint16_t i = 0; i < element->ntypes; i++) {
        const char *tname = element->types[i]->name;
        if (strlen(tname) != len)
            continue;
        /* JSON names capitalise the type's first letter: valueString, valueQuantity */
        char first = tname[0];
        if (first >= 'a' && first <= 'z')
            first = (char)(first - 'a' + 'A');
        if (suffix[0] == first && memcmp(suffix + 1, tname + 1, len - 1) == 0)
            return element->types[i];
    }
    return NULL;
}

const fhir_element_t *fhir_element_find(const fhir_type_t *type, const char *name, size_t len,
                                        const fhir_type_t **out_type)
{
    const fhir_element_t *element = element_exact(type, name, len);
    if (element) {
        if (element->choice)
            return NULL; /* "value" alone is not a JSON member name */
        *out_type = element->types[0];
        return element;
    }
    /* A choice is written base name + type name, and type names start with a letter that
     * is capitalised there: try each upper-case letter as the start of the suffix. */
    for (size_t i = 1; i < len; i++) {
        if (name[i] < 'A' || name[i] > 'Z')
            continue;
        element = element_exact(type, name, i);
        if (!element || !element->choice)
            continue;
        const fhir_type_t *chosen = choice_type(element, name + i, len - i);
        if (chosen) {
            *out_type = chosen;
            return element;
        }
    }
    return NULL;
}

static int code_compare(const void *k, const void *member)
{
    return strcmp(k, *(const char *const *)member);
}

bool fhir_valueset_contains(const fhir_valueset_t *valueset, const char *system,
                            const char *code)
{
    const char *const *found = bsearch(code, valueset->codes, valueset->ncodes,
                                       sizeof(valueset->codes[0]), code_compare);
    if (!found)
        return false;
    if (!system)
        return true;
    /* The same code may come from several systems: they sit next to each other. */
    size_t i = (size_t)(found - valueset->codes);
    while (i > 0 && strcmp(valueset->codes[i - 1], code) == 0)
        i--;
    for (; i < valueset->ncodes && strcmp(valueset->codes[i], code) == 0; i++) {
        if (strcmp(valueset->systems[i], system) == 0)
            return true;
    }
    return false;
}

bool fhir_type_is_a(const fhir_type_t *type, const fhir_type_t *ancestor)
{
    for (; type; type = type->base) {
        if (type == ancestor)
            return true;
    }
    return false;
}
