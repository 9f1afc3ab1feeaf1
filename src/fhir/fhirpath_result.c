/*
 * fhirpath_result.c - what callers see of a result: items, their kinds, types, paths and
 * text, and the result as JSON (nodes as their own JSON, System values as JSON scalars,
 * quantities as {"value":..,"unit":..}, decimals with their exact text).
 */
#include <string.h>

#include "base/jv.h"
#include "fhir/fhirpath_int.h"

size_t fhirpath_result_count(const fhirpath_result_t *result)
{
    return result ? result->count : 0;
}

const fhirpath_item_t *fhirpath_result_item(const fhirpath_result_t *result, size_t i)
{
    return &result->items[i];
}

fhirpath_kind_t fhirpath_item_kind(const fhirpath_item_t *item)
{
    return (fhirpath_kind_t)item->kind;
}

json_t *fhirpath_item_json(const fhirpath_item_t *item)
{
    return item->kind == FHIRPATH_NODE ? item->u.node->json : NULL;
}

const fhir_type_t *fhirpath_item_fhir_type(const fhirpath_item_t *item)
{
    return item->kind == FHIRPATH_NODE ? item->u.node->type : NULL;
}

const char *fhirpath_item_type_name(const fhirpath_item_t *item)
{
    if (item->kind == FHIRPATH_NODE)
        return item->u.node->type_name;
    fp_typeinfo_t t;
    fhirpath__type_of(item, &t);
    return t.name;
}

static void add_path(const fp_node_t *node, buf_t *out)
{
    if (node->parent) {
        add_path(node->parent, out);
        buf_addch(out, '.');
    }
    buf_addstr(out, node->name ? node->name : "?");
    if (node->index >= 0)
        buf_addf(out, "[%d]", node->index);
}

const char *fhirpath_item_path(const fhirpath_item_t *item, arena_t *arena)
{
    if (item->kind != FHIRPATH_NODE)
        return NULL;
    buf_t b = BUF_INIT;
    add_path(item->u.node, &b);
    char *path = arena_strndup(arena, b.ptr, b.len);
    buf_release(&b);
    return path;
}

bool fhirpath_item_location(const fhirpath_item_t *item, json_t **out_holder, const char **out_key,
                            int *out_index, bool *out_choice)
{
    if (item->kind != FHIRPATH_NODE)
        return false;
    const fp_node_t *node = item->u.node;
    if (!node->parent || !node->name)
        return false;
    /* members of a primitive live in its "_name" object (see members_of in fhirpath_eval.c) */
    json_t *holder = json_is_object(node->parent->json) ? node->parent->json : node->parent->ext;
    if (!json_is_object(holder))
        return false;
    *out_holder = holder;
    *out_key = node->name;
    *out_index = node->index;
    *out_choice = node->choice;
    return true;
}

const char *fhirpath_item_text(const fhirpath_item_t *item, arena_t *arena)
{
    fp_eval_t ev = {0};
    ev.arena = arena;
    const char *s;
    size_t n;
    if (item->kind == FHIRPATH_TYPEINFO)
        return arena_printf(arena, "%s.%s", item->u.type.namespace_, item->u.type.name);
    if (!fhirpath__item_to_string(&ev, item, &s, &n))
        return NULL;
    return arena_strndup(arena, s, n);
}

static json_t *decimal_json(fp_decimal_t d)
{
    buf_t b = BUF_INIT;
    fhirpath__decimal_text(d, &b);
    json_t *j;
    if (d.scale == 0) {
        int64_t i;
        j = fhirpath__decimal_to_int64(d, &i) ? json_integer(i) : jv_decimal(b.ptr, b.len);
    } else {
        j = jv_decimal(b.ptr, b.len);
    }
    buf_release(&b);
    return j;
}

json_t *fhirpath_item_to_json(const fhirpath_item_t *item)
{
    buf_t b = BUF_INIT;
    json_t *j = NULL;
    switch (item->kind) {
    case FHIRPATH_NODE:
        if (item->u.node->json)
            return json_incref(item->u.node->json);
        return item->u.node->ext ? json_incref(item->u.node->ext) : json_null();
    case FHIRPATH_BOOLEAN: return json_boolean(item->u.boolean);
    case FHIRPATH_INTEGER: return json_integer(item->u.integer);
    case FHIRPATH_DECIMAL: return decimal_json(item->u.decimal);
    case FHIRPATH_STRING: return json_stringn(item->u.string.ptr, item->u.string.len);
    case FHIRPATH_DATE:
    case FHIRPATH_DATETIME:
    case FHIRPATH_TIME:
        fhirpath__temporal_text(&item->u.temporal, (fhirpath_kind_t)item->kind, &b);
        j = json_stringn(b.ptr, b.len);
        break;
    case FHIRPATH_QUANTITY:
        j = json_object();
        json_object_set_new(j, "value", decimal_json(item->u.quantity.value));
        json_object_set_new(j, "unit",
                            json_stringn(item->u.quantity.unit, item->u.quantity.unit_len));
        break;
    case FHIRPATH_TYPEINFO:
        j = json_object();
        json_object_set_new(j, "namespace", json_string(item->u.type.namespace_));
        json_object_set_new(j, "name", json_string(item->u.type.name));
        break;
    default: j = json_null(); break;
    }
    buf_release(&b);
    return j;
}

json_t *fhirpath_result_to_json(const fhirpath_result_t *result)
{
    json_t *array = json_array();
    for (size_t i = 0; result && i < result->count; i++)
        json_array_append_new(array, fhirpath_item_to_json(&result->items[i]));
    return array;
}

void fhirpath_result_dump(const fhirpath_result_t *result, buf_t *out)
{
    json_t *array = fhirpath_result_to_json(result);
    jv_dump(array, out);
    json_decref(array);
}
