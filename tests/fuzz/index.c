/*
 * libFuzzer harness for search index extraction: any JSON object that the validator accepts
 * (what a write stores) must give index rows or a clean error, and every row must be well
 * formed: a known kind, ranges with low <= high, strings that are not NULL where a kind
 * requires them. Invalid resources are extracted too (a crash is a bug whatever the input).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/jv.h"
#include "fhir/index.h"
#include "fhir/validate.h"

static void check_value(const fhir_index_value_t *v)
{
    switch (v->kind) {
    case FHIR_INDEX_STRING:
        if (!v->as.string.exact || !v->as.string.normalized)
            abort();
        break;
    case FHIR_INDEX_DATE:
        if (v->as.date.low > v->as.date.high)
            abort();
        break;
    case FHIR_INDEX_NUMBER:
        if (!(v->as.number.low <= v->as.number.high))
            abort();
        break;
    case FHIR_INDEX_QUANTITY:
        if (!(v->as.quantity.low <= v->as.quantity.high))
            abort();
        break;
    case FHIR_INDEX_URI:
        if (!v->as.uri.value)
            abort();
        break;
    case FHIR_INDEX_OF_TYPE:
        if (!v->as.of_type.type_code || !v->as.of_type.value)
            abort();
        break;
    case FHIR_INDEX_COMPOSITE:
        for (size_t i = 0; i < v->as.composite.ncomponents; i++)
            check_value(&v->as.composite.components[i]);
        break;
    case FHIR_INDEX_TOKEN:
    case FHIR_INDEX_REFERENCE: break;
    default: abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    err_t err = ERR_INIT;
    json_t *value = jv_parse((const char *)data, size, &err);
    if (!value || !json_is_object(value)) {
        json_decref(value);
        err_release(&err);
        return 0;
    }
    fhir_validate(value, &err);
    err_reset(&err);
    arena_t arena;
    arena_init(&arena);
    fhir_index_rows_t rows;
    if (fhir_index_extract(NULL, value, &arena, &rows, &err) == ERR_OK) {
        for (size_t i = 0; i < rows.n; i++) {
            if (!rows.rows[i].param)
                abort();
            check_value(&rows.rows[i].value);
        }
    }
    arena_release(&arena);
    json_decref(value);
    err_release(&err);
    return 0;
}
