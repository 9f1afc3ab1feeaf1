/*
 * fhirpath_eval.c - the evaluator: navigation over jansson values typed by the model,
 * collections, empty propagation, three-valued logic, equality, ordering and arithmetic.
 *
 * Everything is allocated from the evaluation's arena. Items are small values; FHIR nodes
 * are created on navigation and point at the JSON they describe (borrowed). FHIR primitives
 * become System values only where an operator or function needs their value.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/clock.h"
#include "base/jv.h"
#include "fhir/fhirpath_int.h"

/* ---- collections ---- */

void fhirpath__coll_init(fp_coll_t *c)
{
    c->items = NULL;
    c->count = c->cap = 0;
}

static bool over_budget(fp_eval_t *ev)
{
    return ++ev->budget > FHIRPATH_MAX_ITEMS;
}

void fhirpath__coll_push(fp_eval_t *ev, fp_coll_t *c, const fp_item_t *item)
{
    if (c->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4;
        fp_item_t *items = arena_alloc(ev->arena, cap * sizeof(*items));
        if (c->count)
            memcpy(items, c->items, c->count * sizeof(*items));
        c->items = items;
        c->cap = cap;
    }
    c->items[c->count++] = *item;
    over_budget(ev);
}

bool fhirpath__coll_has(fp_eval_t *ev, const fp_coll_t *c, const fp_item_t *item)
{
    ev->work += c->count;
    for (size_t i = 0; i < c->count; i++)
        if (fhirpath__items_equal(&c->items[i], item) == 1)
            return true;
    return false;
}

/* ---- hashed sets: a hash that equal (=) items share, so dedupe is not quadratic ---- */

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
}

static uint64_t bytes_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

/* Follows json_equal: same type and content; members in any order. */
static uint64_t json_hash(json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        uint64_t h = 7;
        const char *key;
        json_t *value;
        json_object_foreach(j, key, value)
        {
            h += mix(bytes_hash(key, strlen(key)), json_hash(value));
        }
        return h;
    }
    case JSON_ARRAY: {
        uint64_t h = 11;
        for (size_t i = 0; i < json_array_size(j); i++)
            h = mix(h, json_hash(json_array_get(j, i)));
        return h;
    }
    case JSON_STRING: return bytes_hash(json_string_value(j), json_string_length(j));
    case JSON_INTEGER: return mix(13, (uint64_t)json_integer_value(j));
    default: return (uint64_t)json_typeof(j) * 17;
    }
}

static uint64_t item_hash(const fp_item_t *item)
{
    fp_item_t v;
    if (!fhirpath__system_value(item, &v))
        return 1; /* a primitive without a value equals nothing */
    switch (v.kind) {
    case FHIRPATH_NODE: return v.u.node->json ? json_hash(v.u.node->json) : 3;
    case FHIRPATH_BOOLEAN: return 5 + v.u.boolean;
    case FHIRPATH_INTEGER:
    case FHIRPATH_DECIMAL: {
        /* 1 = 1.0 = 1.00: hash the value without trailing zeros */
        fp_decimal_t d = v.kind == FHIRPATH_INTEGER ? fhirpath__decimal_from_int(v.u.integer)
                                                    : fhirpath__decimal_trim(v.u.decimal, 0);
        unsigned __int128 c = (unsigned __int128)d.coef;
        return mix(mix((uint64_t)c, (uint64_t)(c >> 64)), (uint64_t)d.scale);
    }
    case FHIRPATH_STRING: return bytes_hash(v.u.string.ptr, v.u.string.len);
    case FHIRPATH_TYPEINFO: return bytes_hash(v.u.type.name, strlen(v.u.type.name));
    default:
        /* dates (offsets, precisions) and quantities (units) compare by conversion: one
         * bucket per kind keeps them correct */
        return 100 + v.kind;
    }
}

void fhirpath__set_init(fp_eval_t *ev, fp_set_t *set, fp_coll_t *coll, size_t expected)
{
    size_t nb = 16;
    while (nb < expected * 2 && nb < ((size_t)1 << 24))
        nb *= 2;
    set->coll = coll;
    set->nbuckets = nb;
    set->heads = arena_zalloc(ev->arena, nb * sizeof(*set->heads));
    set->next = NULL;
    set->hashes = NULL;
    set->cap = 0;
    set->indexed = 0;
    for (size_t i = 0; i < coll->count; i++)
        fhirpath__set_index(ev, set, i);
}

void fhirpath__set_index(fp_eval_t *ev, fp_set_t *set, size_t i)
{
    if (i >= set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 16;
        while (cap <= i)
            cap *= 2;
        uint32_t *next = arena_alloc(ev->arena, cap * sizeof(*next));
        uint64_t *hashes = arena_alloc(ev->arena, cap * sizeof(*hashes));
        if (set->cap) {
            memcpy(next, set->next, set->cap * sizeof(*next));
            memcpy(hashes, set->hashes, set->cap * sizeof(*hashes));
        }
        set->next = next;
        set->hashes = hashes;
        set->cap = cap;
    }
    uint64_t h = item_hash(&set->coll->items[i]);
    size_t b = (size_t)(h & (set->nbuckets - 1));
    set->hashes[i] = h;
    set->next[i] = set->heads[b];
    set->heads[b] = (uint32_t)(i + 1);
    set->indexed = i + 1;
}

void fhirpath__union(fp_eval_t *ev, const fp_coll_t *a, const fp_coll_t *b, fp_coll_t *out)
{
    fp_set_t set;
    fhirpath__set_init(ev, &set, out, out->count + a->count + b->count);
    for (size_t i = 0; i < a->count; i++)
        if (!fhirpath__set_has(ev, &set, &a->items[i]))
            fhirpath__set_push(ev, &set, &a->items[i]);
    for (size_t i = 0; i < b->count; i++)
        if (!fhirpath__set_has(ev, &set, &b->items[i]))
            fhirpath__set_push(ev, &set, &b->items[i]);
}

bool fhirpath__set_has(fp_eval_t *ev, const fp_set_t *set, const fp_item_t *item)
{
    uint64_t h = item_hash(item);
    for (uint32_t k = set->heads[h & (set->nbuckets - 1)]; k; k = set->next[k - 1]) {
        ev->work++;
        if (set->hashes[k - 1] == h && fhirpath__items_equal(&set->coll->items[k - 1], item) == 1)
            return true;
    }
    return false;
}

void fhirpath__set_push(fp_eval_t *ev, fp_set_t *set, const fp_item_t *item)
{
    fhirpath__coll_push(ev, set->coll, item);
    fhirpath__set_index(ev, set, set->coll->count - 1);
}

void fhirpath__coll_append(fp_eval_t *ev, fp_coll_t *c, const fp_coll_t *more)
{
    for (size_t i = 0; i < more->count; i++)
        fhirpath__coll_push(ev, c, &more->items[i]);
}

void fhirpath__push_boolean(fp_eval_t *ev, fp_coll_t *c, bool value)
{
    fp_item_t it = {.kind = FHIRPATH_BOOLEAN};
    it.u.boolean = value;
    fhirpath__coll_push(ev, c, &it);
}

void fhirpath__push_integer(fp_eval_t *ev, fp_coll_t *c, int64_t value)
{
    fp_item_t it = {.kind = FHIRPATH_INTEGER};
    it.u.integer = value;
    fhirpath__coll_push(ev, c, &it);
}

void fhirpath__push_decimal(fp_eval_t *ev, fp_coll_t *c, fp_decimal_t value)
{
    fp_item_t it = {.kind = FHIRPATH_DECIMAL};
    it.u.decimal = value;
    fhirpath__coll_push(ev, c, &it);
}

void fhirpath__push_string(fp_eval_t *ev, fp_coll_t *c, const char *s, size_t len)
{
    fp_item_t it = {.kind = FHIRPATH_STRING};
    it.u.string.ptr = s;
    it.u.string.len = len;
    fhirpath__coll_push(ev, c, &it);
}

status_t fhirpath__fail(fp_eval_t *ev, const fp_ast_t *node, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (node)
        return err_set(ev->err, ERR_INVALID, NULL, "could not evaluate FHIRPath at column %u: %s",
                       node->position + 1, what);
    return err_set(ev->err, ERR_INVALID, NULL, "could not evaluate FHIRPath: %s", what);
}

static const char *kind_name(int kind)
{
    static const char *names[] = {"node", "Boolean",  "Integer", "Decimal",  "String",
                                  "Date", "DateTime", "Time",    "Quantity", "TypeInfo"};
    return kind >= 0 && kind <= FHIRPATH_TYPEINFO ? names[kind] : "?";
}

/* Name of an item's type for messages. */
static const char *item_type_for_message(const fp_item_t *item)
{
    if (item->kind == FHIRPATH_NODE)
        return item->u.node->type_name ? item->u.node->type_name : "Element";
    return kind_name(item->kind);
}

status_t fhirpath__check_budget(fp_eval_t *ev, const fp_ast_t *node)
{
    if (ev->budget > FHIRPATH_MAX_ITEMS)
        return fhirpath__fail(ev, node, "evaluation made more than %zu items", FHIRPATH_MAX_ITEMS);
    if (ev->work > FHIRPATH_MAX_WORK)
        return fhirpath__fail(ev, node, "evaluation needs more than %llu comparisons",
                              (unsigned long long)FHIRPATH_MAX_WORK);
    return ERR_OK;
}

/* ---- nodes ---- */

static const char *json_type_name(json_t *json)
{
    if (!json)
        return NULL;
    if (json_is_boolean(json))
        return "boolean";
    if (json_is_integer(json))
        return "integer";
    if (jv_is_decimal(json) || json_is_real(json))
        return "decimal";
    if (json_is_string(json))
        return "string";
    if (json_is_object(json)) {
        json_t *rt = json_object_get(json, "resourceType");
        if (jv_is_string(rt))
            return json_string_value(rt);
    }
    return NULL;
}

static fp_node_t *make_node(fp_eval_t *ev, json_t *json, json_t *ext, const fhir_type_t *type,
                            const char *type_name, const fp_node_t *parent, const char *name,
                            int32_t index)
{
    fp_node_t *n = arena_alloc(ev->arena, sizeof(*n));
    n->json = json;
    n->ext = json_is_object(ext) ? ext : NULL;
    n->parent = parent;
    n->name = name;
    n->index = index;
    n->choice = false;
    /* a resource inside another (contained, Bundle.entry.resource) is its own type */
    if (json_is_object(json)) {
        json_t *rt = json_object_get(json, "resourceType");
        if (jv_is_string(rt) &&
            (!type || type->kind == FHIR_KIND_ABSTRACT || type->kind == FHIR_KIND_RESOURCE)) {
            const char *rname = json_string_value(rt);
            const fhir_type_t *rtype = fhirpath__model_resource_type(rname, strlen(rname));
            type = rtype;
            type_name = rname;
        }
    }
    n->type = type;
    n->type_name = type ? type->name : type_name ? type_name : json_type_name(json);
    return n;
}

static void push_node(fp_eval_t *ev, fp_coll_t *out, const fp_node_t *node)
{
    fp_item_t it = {.kind = FHIRPATH_NODE};
    it.u.node = node;
    fhirpath__coll_push(ev, out, &it);
}

const fp_node_t *fhirpath__root_node(fp_eval_t *ev, json_t *json, const char *name)
{
    const char *type_name = json_type_name(json);
    fp_node_t *n = make_node(ev, json, NULL, NULL, type_name, NULL, name ? name : type_name, -1);
    return n;
}

/* The nodes of one JSON member (key) of obj, with `_key` merged in for primitives. */
static void member_nodes(fp_eval_t *ev, const fp_node_t *parent, json_t *obj, const char *key,
                         size_t key_len, const char *elem_name, const fhir_type_t *type,
                         const char *type_name, bool choice, fp_coll_t *out)
{
    char local[128];
    char *uname = local;
    if (key_len + 2 > sizeof(local))
        uname = arena_alloc(ev->arena, key_len + 2);
    uname[0] = '_';
    memcpy(uname + 1, key, key_len);
    uname[key_len + 1] = '\0';
    json_t *value = json_object_getn(obj, key, key_len);
    json_t *ext = json_object_getn(obj, uname, key_len + 1);
    if (!value && !ext)
        return;
    const char *name = elem_name ? elem_name : arena_strndup(ev->arena, key, key_len);
    if (json_is_array(value) || (!value && json_is_array(ext))) {
        size_t n = value ? json_array_size(value) : json_array_size(ext);
        for (size_t i = 0; i < n; i++) {
            json_t *v = value ? json_array_get(value, i) : NULL;
            json_t *e = json_is_array(ext) ? json_array_get(ext, i) : NULL;
            if (json_is_null(v))
                v = NULL;
            if (!v && !json_is_object(e))
                continue;
            fp_node_t *node = make_node(ev, v, e, type, type_name, parent, name, (int32_t)i);
            node->choice = choice;
            push_node(ev, out, node);
        }
        return;
    }
    if (json_is_null(value))
        value = NULL;
    if (!value && !json_is_object(ext))
        return;
    fp_node_t *node = make_node(ev, value, ext, type, type_name, parent, name, -1);
    node->choice = choice;
    push_node(ev, out, node);
}

/* The JSON object that holds a node's members: its value, or for a primitive its "_x". */
static json_t *members_of(const fp_node_t *node)
{
    if (json_is_object(node->json))
        return node->json;
    return node->ext;
}

/* "Quantity" -> "Quantity", "String" -> "string", "DateTime" -> "dateTime" */
static const char *suffix_type_name(fp_eval_t *ev, const char *suffix, size_t len)
{
    char *lower = arena_strndup(ev->arena, suffix, len);
    lower[0] = (char)tolower((unsigned char)lower[0]);
    if (fhirpath__primitive_name_kind(lower) >= 0)
        return lower;
    return arena_strndup(ev->arena, suffix, len);
}

void fhirpath__member(fp_eval_t *ev, const fp_item_t *item, const char *name, size_t len,
                      fp_coll_t *out)
{
    if (item->kind == FHIRPATH_TYPEINFO) {
        if (len == 9 && memcmp(name, "namespace", 9) == 0)
            fhirpath__push_string(ev, out, item->u.type.namespace_,
                                  strlen(item->u.type.namespace_));
        else if (len == 4 && memcmp(name, "name", 4) == 0)
            fhirpath__push_string(ev, out, item->u.type.name, strlen(item->u.type.name));
        return;
    }
    if (item->kind != FHIRPATH_NODE)
        return;
    const fp_node_t *node = item->u.node;
    json_t *obj = members_of(node);
    if (!obj)
        return;
    const fhir_element_t *el = fhirpath__model_element_named(node->type, name, len);
    if (el) {
        if (el->choice) {
            for (uint16_t t = 0; t < el->ntypes; t++) {
                const char *tn = el->types[t]->name;
                size_t tl = strlen(tn);
                char local[160];
                if (len + tl + 1 > sizeof(local))
                    continue;
                memcpy(local, name, len);
                memcpy(local + len, tn, tl);
                local[len] = (char)toupper((unsigned char)local[len]);
                size_t before = out->count;
                member_nodes(ev, node, obj, local, len + tl, NULL, el->types[t], NULL, true, out);
                if (out->count > before)
                    return;
            }
            return;
        }
        member_nodes(ev, node, obj, name, len, el->name, el->ntypes == 1 ? el->types[0] : NULL,
                     NULL, false, out);
        return;
    }
    if (node->type) {
        /* "valueQuantity" is JSON, not a FHIRPath name: Observation.value is the element */
        const fhir_type_t *chosen;
        if (fhirpath__model_element(node->type, name, len, &chosen))
            return;
    }
    /* content the model does not describe is still reachable by its JSON name */
    size_t before = out->count;
    member_nodes(ev, node, obj, name, len, NULL, NULL, NULL, false, out);
    if (out->count > before || node->type)
        return;
    /* a node of a type the model does not know: a choice element is the name followed by a
     * type name */
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value)
    {
        size_t kl = strlen(key);
        if (kl > len && memcmp(key, name, len) == 0 && key[len] >= 'A' && key[len] <= 'Z') {
            const char *tn = suffix_type_name(ev, key + len, kl - len);
            member_nodes(ev, node, obj, key, kl, NULL, NULL, tn, true, out);
            return;
        }
    }
}

void fhirpath__children(fp_eval_t *ev, const fp_node_t *node, fp_coll_t *out)
{
    json_t *obj = members_of(node);
    if (!obj)
        return;
    const char *member;
    json_t *value;
    json_object_foreach(obj, member, value)
    {
        /* json_object_foreach steps on from `member`: it must stay the object's own key */
        const char *key = member;
        size_t kl = strlen(key);
        if (strcmp(key, "resourceType") == 0)
            continue;
        if (key[0] == '_') {
            /* only when the primitive itself is absent */
            if (json_object_getn(obj, key + 1, kl - 1))
                continue;
            key++;
            kl--;
        }
        const fhir_type_t *type = NULL;
        bool choice = false;
        if (node->type) {
            const fhir_element_t *el = fhirpath__model_element(node->type, key, kl, &type);
            choice = el && el->choice;
        }
        member_nodes(ev, node, obj, key, kl, key, type, NULL, choice, out);
    }
}

/* ---- System values ---- */

#define UCUM_SYSTEM "http://unitsofmeasure.org"

static bool quantity_from_json(json_t *obj, fp_item_t *out)
{
    json_t *value = json_object_get(obj, "value");
    fp_decimal_t d;
    if (json_is_integer(value)) {
        d = fhirpath__decimal_from_int(json_integer_value(value));
    } else {
        size_t len;
        const char *text = jv_decimal_text(value, &len);
        if (!text || !fhirpath__decimal_parse(text, len, &d))
            return false;
    }
    json_t *code = json_object_get(obj, "code");
    json_t *unit = json_object_get(obj, "unit");
    json_t *system = json_object_get(obj, "system");
    const char *u = "1";
    size_t ul = 1;
    bool ucum_system =
        !system || (jv_is_string(system) && strcmp(json_string_value(system), UCUM_SYSTEM) == 0);
    if (jv_is_string(code) && ucum_system) {
        u = json_string_value(code);
        ul = json_string_length(code);
    } else if (jv_is_string(unit)) {
        u = json_string_value(unit);
        ul = json_string_length(unit);
    }
    memset(out, 0, sizeof(*out));
    out->kind = FHIRPATH_QUANTITY;
    out->u.quantity.value = d;
    out->u.quantity.unit = u;
    out->u.quantity.unit_len = (uint32_t)ul;
    int cal = fhirpath__calendar_unit(u, ul, NULL);
    out->u.quantity.calendar = cal >= 0 && !fhirpath__ucum_valid(u, ul);
    return true;
}

/* The System kind a node's value has, or -1 for complex nodes. */
static int node_kind(const fp_node_t *node)
{
    if (node->type && node->type->kind == FHIR_KIND_PRIMITIVE)
        return fhirpath__primitive_kind(node->type->primitive);
    if (node->type)
        return -1;
    int k = fhirpath__primitive_name_kind(node->type_name);
    if (k >= 0)
        return k;
    json_t *j = node->json;
    if (json_is_boolean(j))
        return FHIRPATH_BOOLEAN;
    if (json_is_integer(j))
        return FHIRPATH_INTEGER;
    if (jv_is_decimal(j))
        return FHIRPATH_DECIMAL;
    if (json_is_string(j))
        return FHIRPATH_STRING;
    return -1;
}

static bool node_is_quantity(const fp_node_t *node)
{
    if (!json_is_object(node->json))
        return false;
    if (node->type) {
        for (const fhir_type_t *t = node->type; t; t = t->base)
            if (strcmp(t->name, "Quantity") == 0)
                return true;
        return false;
    }
    return fhirpath__is_quantity_type(node->type_name);
}

bool fhirpath__system_value(const fp_item_t *item, fp_item_t *out)
{
    if (item->kind != FHIRPATH_NODE) {
        *out = *item;
        return true;
    }
    const fp_node_t *node = item->u.node;
    json_t *j = node->json;
    int kind = node_kind(node);
    if (kind < 0) {
        if (node_is_quantity(node))
            return quantity_from_json(j, out);
        *out = *item;
        return true;
    }
    if (!j)
        return false;
    memset(out, 0, sizeof(*out));
    out->kind = (uint8_t)kind;
    switch (kind) {
    case FHIRPATH_BOOLEAN:
        if (!json_is_boolean(j))
            return false;
        out->u.boolean = json_is_true(j);
        return true;
    case FHIRPATH_INTEGER:
        if (!json_is_integer(j))
            return false;
        out->u.integer = json_integer_value(j);
        return true;
    case FHIRPATH_DECIMAL: {
        if (json_is_integer(j)) {
            out->u.decimal = fhirpath__decimal_from_int(json_integer_value(j));
            return true;
        }
        size_t len;
        const char *text = jv_decimal_text(j, &len);
        return text && fhirpath__decimal_parse(text, len, &out->u.decimal);
    }
    case FHIRPATH_STRING:
        if (!jv_is_string(j))
            return false;
        out->u.string.ptr = json_string_value(j);
        out->u.string.len = json_string_length(j);
        return true;
    case FHIRPATH_DATE:
    case FHIRPATH_DATETIME:
    case FHIRPATH_TIME: {
        if (!jv_is_string(j))
            return false;
        const char *s = json_string_value(j);
        size_t len = json_string_length(j);
        if (kind == FHIRPATH_DATE)
            return fhirpath__date_parse(s, len, &out->u.temporal);
        if (kind == FHIRPATH_TIME)
            return fhirpath__time_parse(s, len, &out->u.temporal);
        return fhirpath__datetime_parse(s, len, &out->u.temporal);
    }
    default: return false;
    }
}

const char *fhirpath__string_of(const fp_item_t *item, size_t *out_len)
{
    fp_item_t v;
    if (!fhirpath__system_value(item, &v) || v.kind != FHIRPATH_STRING)
        return NULL;
    *out_len = v.u.string.len;
    return v.u.string.ptr;
}

static bool is_numeric(int kind)
{
    return kind == FHIRPATH_INTEGER || kind == FHIRPATH_DECIMAL;
}

static fp_decimal_t as_decimal(const fp_item_t *v)
{
    return v->kind == FHIRPATH_INTEGER ? fhirpath__decimal_from_int(v->u.integer) : v->u.decimal;
}

static bool is_temporal_date(int kind)
{
    return kind == FHIRPATH_DATE || kind == FHIRPATH_DATETIME;
}

/* Collapses whitespace and lowercases for string equivalence. */
static bool strings_equivalent(const char *a, size_t al, const char *b, size_t bl)
{
    size_t i = 0, j = 0;
    while (i < al && isspace((unsigned char)a[i]))
        i++;
    while (j < bl && isspace((unsigned char)b[j]))
        j++;
    while (al > i && isspace((unsigned char)a[al - 1]))
        al--;
    while (bl > j && isspace((unsigned char)b[bl - 1]))
        bl--;
    while (i < al && j < bl) {
        if (isspace((unsigned char)a[i]) && isspace((unsigned char)b[j])) {
            while (i < al && isspace((unsigned char)a[i]))
                i++;
            while (j < bl && isspace((unsigned char)b[j]))
                j++;
            continue;
        }
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[j]))
            return false;
        i++;
        j++;
    }
    return i == al && j == bl;
}

static bool json_equivalent(json_t *a, json_t *b);

int fhirpath__items_equal(const fp_item_t *a, const fp_item_t *b)
{
    fp_item_t x, y;
    if (!fhirpath__system_value(a, &x) || !fhirpath__system_value(b, &y))
        return -1;
    if (x.kind == FHIRPATH_NODE || y.kind == FHIRPATH_NODE) {
        if (x.kind != y.kind)
            return 0;
        const fp_node_t *na = x.u.node, *nb = y.u.node;
        if (na->json == nb->json)
            return 1;
        return na->json && nb->json && json_equal(na->json, nb->json);
    }
    if (is_numeric(x.kind) && is_numeric(y.kind)) {
        if (x.kind == FHIRPATH_INTEGER && y.kind == FHIRPATH_INTEGER)
            return x.u.integer == y.u.integer;
        return fhirpath__decimal_cmp(as_decimal(&x), as_decimal(&y)) == 0;
    }
    if (is_temporal_date(x.kind) && is_temporal_date(y.kind))
        return fhirpath__temporal_equal(&x.u.temporal, &y.u.temporal);
    if (x.kind != y.kind)
        return 0;
    switch (x.kind) {
    case FHIRPATH_BOOLEAN: return x.u.boolean == y.u.boolean;
    case FHIRPATH_STRING:
        return x.u.string.len == y.u.string.len &&
               memcmp(x.u.string.ptr, y.u.string.ptr, x.u.string.len) == 0;
    case FHIRPATH_TIME: return fhirpath__temporal_equal(&x.u.temporal, &y.u.temporal);
    case FHIRPATH_QUANTITY: return fhirpath__quantity_equal(&x.u.quantity, &y.u.quantity, false);
    case FHIRPATH_TYPEINFO:
        return strcmp(x.u.type.name, y.u.type.name) == 0 &&
               strcmp(x.u.type.namespace_, y.u.type.namespace_) == 0;
    default: return 0;
    }
}

bool fhirpath__items_equivalent(const fp_item_t *a, const fp_item_t *b)
{
    fp_item_t x, y;
    bool okx = fhirpath__system_value(a, &x), oky = fhirpath__system_value(b, &y);
    if (!okx || !oky)
        return !okx && !oky;
    if (x.kind == FHIRPATH_NODE || y.kind == FHIRPATH_NODE) {
        if (x.kind != y.kind)
            return false;
        return json_equivalent(x.u.node->json, y.u.node->json);
    }
    if (is_numeric(x.kind) && is_numeric(y.kind)) {
        fp_decimal_t dx = as_decimal(&x), dy = as_decimal(&y);
        int scale = dx.scale < dy.scale ? dx.scale : dy.scale;
        return fhirpath__decimal_cmp(fhirpath__decimal_round(dx, scale),
                                     fhirpath__decimal_round(dy, scale)) == 0;
    }
    if (is_temporal_date(x.kind) && is_temporal_date(y.kind))
        return fhirpath__temporal_equivalent(&x.u.temporal, &y.u.temporal);
    if (x.kind != y.kind)
        return false;
    switch (x.kind) {
    case FHIRPATH_BOOLEAN: return x.u.boolean == y.u.boolean;
    case FHIRPATH_STRING:
        return strings_equivalent(x.u.string.ptr, x.u.string.len, y.u.string.ptr, y.u.string.len);
    case FHIRPATH_TIME: return fhirpath__temporal_equivalent(&x.u.temporal, &y.u.temporal);
    case FHIRPATH_QUANTITY:
        return fhirpath__quantity_equal(&x.u.quantity, &y.u.quantity, true) == 1;
    case FHIRPATH_TYPEINFO: return fhirpath__items_equal(&x, &y) == 1;
    default: return false;
    }
}

static bool json_equivalent(json_t *a, json_t *b)
{
    if (a == b)
        return true;
    if (!a || !b)
        return false;
    if (jv_is_string(a) && jv_is_string(b))
        return strings_equivalent(json_string_value(a), json_string_length(a), json_string_value(b),
                                  json_string_length(b));
    if (json_is_object(a) && json_is_object(b)) {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *key;
        json_t *v;
        json_object_foreach(a, key, v)
        {
            if (strcmp(key, "id") == 0)
                continue;
            if (!json_equivalent(v, json_object_get(b, key)))
                return false;
        }
        return true;
    }
    if (json_is_array(a) && json_is_array(b)) {
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!json_equivalent(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    return json_equal(a, b);
}

/* ---- singletons ---- */

status_t fhirpath__singleton(fp_eval_t *ev, const fp_ast_t *node, const char *what,
                             const fp_coll_t *c, const fp_item_t **out)
{
    if (c->count == 0) {
        *out = NULL;
        return ERR_OK;
    }
    if (c->count > 1)
        return fhirpath__fail(ev, node, "%s expects a single item, got %zu", what, c->count);
    fp_item_t *v = arena_alloc(ev->arena, sizeof(*v));
    if (!fhirpath__system_value(&c->items[0], v)) {
        *out = NULL;
        return ERR_OK;
    }
    *out = v;
    return ERR_OK;
}

int fhirpath__string_to_boolean(const char *s, size_t n)
{
    static const char *truths[] = {"true", "t", "yes", "y", "1", "1.0"};
    static const char *lies[] = {"false", "f", "no", "n", "0", "0.0"};
    for (size_t i = 0; i < sizeof(truths) / sizeof(truths[0]); i++) {
        if (strlen(truths[i]) == n && strncasecmp(truths[i], s, n) == 0)
            return 1;
        if (strlen(lies[i]) == n && strncasecmp(lies[i], s, n) == 0)
            return 0;
    }
    return -1;
}

status_t fhirpath__singleton_boolean(fp_eval_t *ev, const fp_ast_t *node, const fp_coll_t *c,
                                     int *out)
{
    *out = -1;
    if (c->count == 0)
        return ERR_OK;
    if (c->count > 1)
        return fhirpath__fail(ev, node, "expected a single boolean, got %zu items", c->count);
    fp_item_t v;
    if (!fhirpath__system_value(&c->items[0], &v))
        return ERR_OK;
    switch (v.kind) {
    case FHIRPATH_BOOLEAN: *out = v.u.boolean; break;
    case FHIRPATH_INTEGER:
        if (v.u.integer == 0 || v.u.integer == 1)
            *out = (int)v.u.integer;
        break;
    case FHIRPATH_STRING: *out = fhirpath__string_to_boolean(v.u.string.ptr, v.u.string.len); break;
    default: break;
    }
    return ERR_OK;
}

/* ---- types ---- */

static const char *system_name(int kind)
{
    return kind_name(kind);
}

void fhirpath__type_of(const fp_item_t *item, fp_typeinfo_t *out)
{
    if (item->kind == FHIRPATH_NODE) {
        out->namespace_ = "FHIR";
        const fp_node_t *node = item->u.node;
        const char *tn = node->type_name;
        /* an inline element's type is its path in the model, BackboneElement in FHIRPath */
        if (node->type && node->type->kind == FHIR_KIND_BACKBONE)
            tn = node->type->base ? node->type->base->name : "BackboneElement";
        out->name = tn ? tn : "Element";
        return;
    }
    out->namespace_ = "System";
    out->name = system_name(item->kind);
}

bool fhirpath__is_type(const fp_item_t *item, const fp_typespec_t *type)
{
    if (item->kind == FHIRPATH_NODE) {
        if (type->namespace_ && strcmp(type->namespace_, "System") == 0)
            return false;
        const fp_node_t *node = item->u.node;
        if (node->type) {
            for (const fhir_type_t *t = node->type; t; t = t->base)
                if (strcmp(t->name, type->name) == 0)
                    return true;
            return false;
        }
        if (!node->type_name)
            return false;
        if (strcmp(node->type_name, type->name) == 0)
            return true;
        /* a type the model does not know: resources are Resources, profiles of Quantity are
         * Quantities */
        if (json_is_object(node->json) && json_object_get(node->json, "resourceType"))
            return strcmp(type->name, "Resource") == 0 || strcmp(type->name, "DomainResource") == 0;
        return strcmp(type->name, "Quantity") == 0 && fhirpath__is_quantity_type(node->type_name);
    }
    if (type->namespace_ && strcmp(type->namespace_, "FHIR") == 0)
        return false;
    return type->system_kind == item->kind;
}

/* ---- the clock ---- */

status_t fhirpath__now(fp_eval_t *ev, fp_temporal_t *out)
{
    if (!ev->have_now) {
        int64_t ms;
        int offset = ev->env->tz_offset_minutes;
        if (offset < -14 * 60 || offset > 14 * 60)
            offset = 0;
        if (ev->env->now_set) {
            ms = ev->env->now_ms;
        } else {
            ms = clock_now_us() / 1000; /* a test server's clock moves now() too */
        }
        int64_t local = ms + (int64_t)offset * 60000;
        time_t secs = (time_t)(local >= 0 ? local / 1000 : (local - 999) / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        fp_temporal_t *t = &ev->now;
        memset(t, 0, sizeof(*t));
        t->year = (int16_t)(tm.tm_year + 1900);
        t->month = (int8_t)(tm.tm_mon + 1);
        t->day = (int8_t)tm.tm_mday;
        t->hour = (int8_t)tm.tm_hour;
        t->minute = (int8_t)tm.tm_min;
        t->second = (int8_t)tm.tm_sec;
        t->millisecond = (int16_t)(((local % 1000) + 1000) % 1000);
        t->precision = FP_PREC_MILLISECOND;
        t->has_tz = true;
        t->tz_z = offset == 0;
        t->tz_minutes = (int16_t)offset;
        ev->have_now = true;
    }
    *out = ev->now;
    return ERR_OK;
}

/* ---- operators ---- */

static status_t eval_equality(fp_eval_t *ev, fp_op_t op, const fp_coll_t *l, const fp_coll_t *r,
                              fp_coll_t *out)
{
    if (op == FP_OP_EQ || op == FP_OP_NE) {
        if (l->count == 0 || r->count == 0)
            return ERR_OK;
        int result = 1;
        if (l->count != r->count) {
            result = 0;
        } else {
            for (size_t i = 0; i < l->count && result != 0; i++) {
                int e = fhirpath__items_equal(&l->items[i], &r->items[i]);
                if (e == 0)
                    result = 0;
                else if (e < 0)
                    result = -1;
            }
        }
        if (result < 0)
            return ERR_OK;
        fhirpath__push_boolean(ev, out, op == FP_OP_EQ ? result == 1 : result == 0);
        return ERR_OK;
    }
    /* ~ and !~: order does not matter, empty ~ empty */
    bool result = l->count == r->count;
    if (result && l->count) {
        bool *used = arena_zalloc(ev->arena, r->count);
        for (size_t i = 0; i < l->count && result; i++) {
            bool found = false;
            for (size_t j = 0; j < r->count && !found; j++) {
                if (!used[j] && fhirpath__items_equivalent(&l->items[i], &r->items[j]))
                    used[j] = found = true;
            }
            result = found;
        }
    }
    fhirpath__push_boolean(ev, out, op == FP_OP_EQUIV ? result : !result);
    return ERR_OK;
}

static const char *op_text(fp_op_t op)
{
    static const char *texts[] = {
        [FP_OP_MUL] = "*",      [FP_OP_DIV] = "/",
        [FP_OP_DIVINT] = "div", [FP_OP_MOD] = "mod",
        [FP_OP_ADD] = "+",      [FP_OP_SUB] = "-",
        [FP_OP_CONCAT] = "&",   [FP_OP_UNION] = "|",
        [FP_OP_LT] = "<",       [FP_OP_LE] = "<=",
        [FP_OP_GT] = ">",       [FP_OP_GE] = ">=",
        [FP_OP_IS] = "is",      [FP_OP_AS] = "as",
        [FP_OP_EQ] = "=",       [FP_OP_EQUIV] = "~",
        [FP_OP_NE] = "!=",      [FP_OP_NEQUIV] = "!~",
        [FP_OP_IN] = "in",      [FP_OP_CONTAINS] = "contains",
        [FP_OP_AND] = "and",    [FP_OP_OR] = "or",
        [FP_OP_XOR] = "xor",    [FP_OP_IMPLIES] = "implies",
        [FP_OP_NEG] = "-",      [FP_OP_POS] = "+",
    };
    return op < sizeof(texts) / sizeof(texts[0]) && texts[op] ? texts[op] : "?";
}

static status_t type_error(fp_eval_t *ev, const fp_ast_t *node, const fp_item_t *a,
                           const fp_item_t *b)
{
    return fhirpath__fail(ev, node, "cannot apply '%s' to %s and %s", op_text(node->op),
                          item_type_for_message(a), item_type_for_message(b));
}

static status_t eval_compare(fp_eval_t *ev, const fp_ast_t *node, const fp_coll_t *l,
                             const fp_coll_t *r, fp_coll_t *out)
{
    const fp_item_t *a, *b;
    status_t rc;
    if ((rc = fhirpath__singleton(ev, node->left, "comparison", l, &a)) ||
        (rc = fhirpath__singleton(ev, node->right, "comparison", r, &b)))
        return rc;
    if (!a || !b)
        return ERR_OK;
    fp_item_t x = *a, y = *b;
    fp_cmp_t c;
    if (is_numeric(x.kind) && is_numeric(y.kind)) {
        c = (fp_cmp_t)fhirpath__decimal_cmp(as_decimal(&x), as_decimal(&y));
    } else if (x.kind == FHIRPATH_STRING && y.kind == FHIRPATH_STRING) {
        size_t n = x.u.string.len < y.u.string.len ? x.u.string.len : y.u.string.len;
        int m = memcmp(x.u.string.ptr, y.u.string.ptr, n);
        if (m == 0)
            m = x.u.string.len < y.u.string.len ? -1 : x.u.string.len > y.u.string.len;
        c = m < 0 ? FP_CMP_LT : m > 0 ? FP_CMP_GT : FP_CMP_EQ;
    } else if ((is_temporal_date(x.kind) && is_temporal_date(y.kind)) ||
               (x.kind == FHIRPATH_TIME && y.kind == FHIRPATH_TIME)) {
        c = fhirpath__temporal_compare(&x.u.temporal, &y.u.temporal);
    } else if (x.kind == FHIRPATH_QUANTITY && y.kind == FHIRPATH_QUANTITY) {
        c = fhirpath__quantity_compare(&x.u.quantity, &y.u.quantity);
    } else {
        return type_error(ev, node, &x, &y);
    }
    if (c == FP_CMP_UNKNOWN)
        return ERR_OK;
    bool result;
    switch (node->op) {
    case FP_OP_LT: result = c == FP_CMP_LT; break;
    case FP_OP_LE: result = c != FP_CMP_GT; break;
    case FP_OP_GT: result = c == FP_CMP_GT; break;
    default: result = c != FP_CMP_LT; break;
    }
    fhirpath__push_boolean(ev, out, result);
    return ERR_OK;
}

/* A quantity's unit as a calendar step for date arithmetic: FP_PREC_* and a multiplier. */
static bool temporal_step(const fp_quantity_t *q, int *out_unit, int64_t *out_multiplier)
{
    bool week = false;
    int unit = -1;
    *out_multiplier = 1;
    if (q->calendar) {
        unit = fhirpath__calendar_unit(q->unit, q->unit_len, &week);
    } else {
        static const struct {
            const char *code;
            int unit;
        } codes[] = {{"a", FP_PREC_YEAR},   {"mo", FP_PREC_MONTH},      {"wk", 0},
                     {"d", FP_PREC_DAY},    {"h", FP_PREC_HOUR},        {"min", FP_PREC_MINUTE},
                     {"s", FP_PREC_SECOND}, {"ms", FP_PREC_MILLISECOND}};
        for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
            if (strlen(codes[i].code) == q->unit_len &&
                memcmp(codes[i].code, q->unit, q->unit_len) == 0) {
                unit = codes[i].unit;
                week = unit == 0;
            }
        }
    }
    if (week) {
        *out_unit = FP_PREC_DAY;
        *out_multiplier = 7;
        return true;
    }
    *out_unit = unit;
    return unit > 0;
}

static status_t eval_arithmetic(fp_eval_t *ev, const fp_ast_t *node, const fp_coll_t *l,
                                const fp_coll_t *r, fp_coll_t *out)
{
    const fp_item_t *a, *b;
    status_t rc;
    if (node->op == FP_OP_CONCAT) {
        const char *sa = "", *sb = "";
        size_t la = 0, lb = 0;
        if ((rc = fhirpath__singleton(ev, node->left, "'&'", l, &a)) ||
            (rc = fhirpath__singleton(ev, node->right, "'&'", r, &b)))
            return rc;
        if ((a && a->kind != FHIRPATH_STRING) || (b && b->kind != FHIRPATH_STRING)) {
            fp_item_t empty = {.kind = FHIRPATH_STRING};
            return type_error(ev, node, a ? a : &empty, b ? b : &empty);
        }
        if (a) {
            sa = a->u.string.ptr;
            la = a->u.string.len;
        }
        if (b) {
            sb = b->u.string.ptr;
            lb = b->u.string.len;
        }
        char *s = arena_alloc(ev->arena, la + lb + 1);
        memcpy(s, sa, la);
        memcpy(s + la, sb, lb);
        s[la + lb] = '\0';
        fhirpath__push_string(ev, out, s, la + lb);
        return ERR_OK;
    }
    if ((rc = fhirpath__singleton(ev, node->left, op_text(node->op), l, &a)) ||
        (rc = fhirpath__singleton(ev, node->right, op_text(node->op), r, &b)))
        return rc;
    if (!a || !b)
        return ERR_OK;
    fp_item_t x = *a, y = *b;
    fp_op_t op = node->op;
    if (x.kind == FHIRPATH_INTEGER && y.kind == FHIRPATH_INTEGER && op != FP_OP_DIV) {
        int64_t v;
        bool ok = true;
        switch (op) {
        case FP_OP_ADD: ok = !__builtin_add_overflow(x.u.integer, y.u.integer, &v); break;
        case FP_OP_SUB: ok = !__builtin_sub_overflow(x.u.integer, y.u.integer, &v); break;
        case FP_OP_MUL: ok = !__builtin_mul_overflow(x.u.integer, y.u.integer, &v); break;
        case FP_OP_DIVINT:
        case FP_OP_MOD:
            if (y.u.integer == 0 || (x.u.integer == INT64_MIN && y.u.integer == -1))
                return ERR_OK;
            v = op == FP_OP_DIVINT ? x.u.integer / y.u.integer : x.u.integer % y.u.integer;
            break;
        default: ok = false; break;
        }
        if (ok)
            fhirpath__push_integer(ev, out, v);
        return ERR_OK;
    }
    if (is_numeric(x.kind) && is_numeric(y.kind)) {
        fp_decimal_t dx = as_decimal(&x), dy = as_decimal(&y), v;
        bool ok;
        switch (op) {
        case FP_OP_ADD: ok = fhirpath__decimal_add(dx, dy, &v); break;
        case FP_OP_SUB: ok = fhirpath__decimal_sub(dx, dy, &v); break;
        case FP_OP_MUL: ok = fhirpath__decimal_mul(dx, dy, &v); break;
        case FP_OP_DIV: ok = fhirpath__decimal_div(dx, dy, FP_DIVISION_SCALE, &v); break;
        case FP_OP_DIVINT: {
            ok = fhirpath__decimal_divint(dx, dy, &v);
            int64_t i;
            if (ok && fhirpath__decimal_to_int64(v, &i)) {
                fhirpath__push_integer(ev, out, i);
                return ERR_OK;
            }
            break;
        }
        case FP_OP_MOD: ok = fhirpath__decimal_mod(dx, dy, &v); break;
        default: ok = false; break;
        }
        if (ok)
            fhirpath__push_decimal(ev, out, v);
        return ERR_OK;
    }
    if (x.kind == FHIRPATH_STRING && y.kind == FHIRPATH_STRING && op == FP_OP_ADD) {
        char *s = arena_alloc(ev->arena, x.u.string.len + y.u.string.len + 1);
        memcpy(s, x.u.string.ptr, x.u.string.len);
        memcpy(s + x.u.string.len, y.u.string.ptr, y.u.string.len);
        s[x.u.string.len + y.u.string.len] = '\0';
        fhirpath__push_string(ev, out, s, x.u.string.len + y.u.string.len);
        return ERR_OK;
    }
    if ((is_temporal_date(x.kind) || x.kind == FHIRPATH_TIME) && y.kind == FHIRPATH_QUANTITY &&
        (op == FP_OP_ADD || op == FP_OP_SUB)) {
        int unit;
        int64_t multiplier, amount;
        if (!temporal_step(&y.u.quantity, &unit, &multiplier))
            return fhirpath__fail(ev, node, "cannot add a quantity in '%.*s' to a %s",
                                  (int)y.u.quantity.unit_len, y.u.quantity.unit, kind_name(x.kind));
        fp_decimal_t whole = fhirpath__decimal_trunc(y.u.quantity.value);
        /* beyond a hundred billion units no date stays in range */
        if (!fhirpath__decimal_to_int64(whole, &amount) || amount > 100000000000LL ||
            amount < -100000000000LL)
            return ERR_OK;
        amount *= multiplier;
        if (op == FP_OP_SUB)
            amount = -amount;
        fp_item_t r2 = x;
        if (fhirpath__temporal_add(&r2.u.temporal, (fhirpath_kind_t)x.kind, unit, amount))
            fhirpath__coll_push(ev, out, &r2);
        return ERR_OK;
    }
    if (x.kind == FHIRPATH_QUANTITY || y.kind == FHIRPATH_QUANTITY) {
        fp_item_t qx = x, qy = y;
        /* a number next to a quantity is a quantity of unit '1' */
        for (fp_item_t *q = &qx; q; q = q == &qx ? &qy : NULL) {
            if (is_numeric(q->kind)) {
                fp_decimal_t d = as_decimal(q);
                memset(q, 0, sizeof(*q));
                q->kind = FHIRPATH_QUANTITY;
                q->u.quantity.value = d;
                q->u.quantity.unit = "1";
                q->u.quantity.unit_len = 1;
            }
        }
        if (qx.kind == FHIRPATH_QUANTITY && qy.kind == FHIRPATH_QUANTITY) {
            fp_item_t r2 = {.kind = FHIRPATH_QUANTITY};
            bool ok = false;
            if (op == FP_OP_ADD || op == FP_OP_SUB) {
                if ((x.kind == FHIRPATH_QUANTITY) != (y.kind == FHIRPATH_QUANTITY))
                    return type_error(ev, node, &x, &y);
                ok = fhirpath__quantity_add(&qx.u.quantity, &qy.u.quantity, op == FP_OP_SUB,
                                            ev->arena, &r2.u.quantity);
            } else if (op == FP_OP_MUL || op == FP_OP_DIV) {
                ok = fhirpath__quantity_mul(&qx.u.quantity, &qy.u.quantity, op == FP_OP_DIV,
                                            ev->arena, &r2.u.quantity);
            } else {
                return type_error(ev, node, &x, &y);
            }
            if (ok)
                fhirpath__coll_push(ev, out, &r2);
            return ERR_OK;
        }
    }
    return type_error(ev, node, &x, &y);
}

static status_t eval_logic(fp_eval_t *ev, const fp_frame_t *frame, const fp_ast_t *node,
                           fp_coll_t *out)
{
    fp_coll_t l, r;
    fhirpath__coll_init(&l);
    fhirpath__coll_init(&r);
    status_t rc;
    int a, b;
    if ((rc = fhirpath__eval_node(ev, frame, node->left, &l)) ||
        (rc = fhirpath__singleton_boolean(ev, node->left, &l, &a)))
        return rc;
    /* short cuts that do not need the right side */
    if ((node->op == FP_OP_AND && a == 0) || (node->op == FP_OP_OR && a == 1)) {
        fhirpath__push_boolean(ev, out, a == 1);
        return ERR_OK;
    }
    if (node->op == FP_OP_IMPLIES && a == 0) {
        fhirpath__push_boolean(ev, out, true);
        return ERR_OK;
    }
    if ((rc = fhirpath__eval_node(ev, frame, node->right, &r)) ||
        (rc = fhirpath__singleton_boolean(ev, node->right, &r, &b)))
        return rc;
    int result = -1;
    switch (node->op) {
    case FP_OP_AND: result = b == 0 ? 0 : (a == 1 && b == 1) ? 1 : -1; break;
    case FP_OP_OR: result = b == 1 ? 1 : (a == 0 && b == 0) ? 0 : -1; break;
    case FP_OP_XOR: result = (a < 0 || b < 0) ? -1 : a != b; break;
    default: /* implies, a is 1 or empty */ result = b == 1 ? 1 : a == 1 ? b : -1; break;
    }
    if (result >= 0)
        fhirpath__push_boolean(ev, out, result == 1);
    return ERR_OK;
}

static bool coll_contains(fp_eval_t *ev, const fp_coll_t *c, const fp_item_t *item)
{
    return fhirpath__coll_has(ev, c, item);
}

static status_t eval_binary(fp_eval_t *ev, const fp_frame_t *frame, const fp_ast_t *node,
                            fp_coll_t *out)
{
    switch (node->op) {
    case FP_OP_AND:
    case FP_OP_OR:
    case FP_OP_XOR:
    case FP_OP_IMPLIES: return eval_logic(ev, frame, node, out);
    default: break;
    }
    fp_coll_t l, r;
    fhirpath__coll_init(&l);
    fhirpath__coll_init(&r);
    status_t rc;
    if ((rc = fhirpath__eval_node(ev, frame, node->left, &l)) ||
        (rc = fhirpath__eval_node(ev, frame, node->right, &r)))
        return rc;
    switch (node->op) {
    case FP_OP_EQ:
    case FP_OP_NE:
    case FP_OP_EQUIV:
    case FP_OP_NEQUIV: return eval_equality(ev, node->op, &l, &r, out);
    case FP_OP_LT:
    case FP_OP_LE:
    case FP_OP_GT:
    case FP_OP_GE: return eval_compare(ev, node, &l, &r, out);
    case FP_OP_UNION: fhirpath__union(ev, &l, &r, out); return ERR_OK;
    case FP_OP_IN:
    case FP_OP_CONTAINS: {
        const fp_coll_t *needle = node->op == FP_OP_IN ? &l : &r;
        const fp_coll_t *hay = node->op == FP_OP_IN ? &r : &l;
        if (needle->count == 0)
            return ERR_OK;
        if (needle->count > 1)
            return fhirpath__fail(ev, node, "'%s' expects a single item, got %zu",
                                  op_text(node->op), needle->count);
        fhirpath__push_boolean(ev, out, coll_contains(ev, hay, &needle->items[0]));
        return ERR_OK;
    }
    default: return eval_arithmetic(ev, node, &l, &r, out);
    }
}

static status_t eval_unary(fp_eval_t *ev, const fp_frame_t *frame, const fp_ast_t *node,
                           fp_coll_t *out)
{
    fp_coll_t c;
    fhirpath__coll_init(&c);
    status_t rc = fhirpath__eval_node(ev, frame, node->left, &c);
    const fp_item_t *v;
    if (rc || (rc = fhirpath__singleton(ev, node, "unary operator", &c, &v)))
        return rc;
    if (!v)
        return ERR_OK;
    fp_item_t r = *v;
    if (node->op == FP_OP_POS && (is_numeric(r.kind) || r.kind == FHIRPATH_QUANTITY)) {
        fhirpath__coll_push(ev, out, &r);
        return ERR_OK;
    }
    switch (r.kind) {
    case FHIRPATH_INTEGER:
        if (r.u.integer == INT64_MIN)
            return ERR_OK;
        r.u.integer = -r.u.integer;
        break;
    case FHIRPATH_DECIMAL: r.u.decimal = fhirpath__decimal_neg(r.u.decimal); break;
    case FHIRPATH_QUANTITY: r.u.quantity.value = fhirpath__decimal_neg(r.u.quantity.value); break;
    default:
        return fhirpath__fail(ev, node, "cannot apply unary '%s' to %s", op_text(node->op),
                              item_type_for_message(v));
    }
    fhirpath__coll_push(ev, out, &r);
    return ERR_OK;
}

/* ---- variables ---- */

static void push_json(fp_eval_t *ev, json_t *value, const char *name, fp_coll_t *out)
{
    if (json_is_array(value)) {
        for (size_t i = 0; i < json_array_size(value); i++)
            push_json(ev, json_array_get(value, i), name, out);
        return;
    }
    if (!value || json_is_null(value))
        return;
    if (json_is_object(value)) {
        push_node(ev, out, fhirpath__root_node(ev, value, name));
        return;
    }
    fp_item_t it;
    fp_node_t tmp = {.json = value, .index = -1};
    tmp.type_name = json_type_name(value);
    fp_item_t node_item = {.kind = FHIRPATH_NODE};
    node_item.u.node = &tmp;
    if (fhirpath__system_value(&node_item, &it))
        fhirpath__coll_push(ev, out, &it);
}

static status_t eval_variable(fp_eval_t *ev, const fp_ast_t *node, fp_coll_t *out)
{
    const char *name = node->name;
    size_t len = node->name_len;
#define IS(s) (len == sizeof(s) - 1 && memcmp(name, s, len) == 0)
    if (IS("context")) {
        fhirpath__coll_append(ev, out, &ev->context);
        return ERR_OK;
    }
    if (IS("resource")) {
        fhirpath__coll_append(ev, out, &ev->resource);
        return ERR_OK;
    }
    if (IS("rootResource")) {
        fhirpath__coll_append(ev, out, &ev->root_resource);
        return ERR_OK;
    }
    for (size_t i = 0; i < ev->env->nvars; i++) {
        const fhirpath_var_t *v = &ev->env->vars[i];
        if (strlen(v->name) == len && memcmp(v->name, name, len) == 0) {
            push_json(ev, v->value, v->name, out);
            return ERR_OK;
        }
    }
    const char *value = NULL;
    if (IS("ucum"))
        value = "http://unitsofmeasure.org";
    else if (IS("sct"))
        value = "http://snomed.info/sct";
    else if (IS("loinc"))
        value = "http://loinc.org";
    else if (IS("us-zip"))
        value = "[0-9]{5}(-[0-9]{4}){0,1}"; /* FHIR R4 2.16.3 */
    if (value) {
        fhirpath__push_string(ev, out, value, strlen(value));
        return ERR_OK;
    }
    if (len > 3 && (memcmp(name, "vs-", 3) == 0 || memcmp(name, "ext-", 4) == 0)) {
        bool vs = name[0] == 'v';
        const char *base =
            vs ? "http://hl7.org/fhir/ValueSet/" : "http://hl7.org/fhir/StructureDefinition/";
        const char *rest = name + (vs ? 3 : 4);
        char *url =
            arena_printf(ev->arena, "%s%.*s", base, (int)(len - (size_t)(rest - name)), rest);
        fhirpath__push_string(ev, out, url, strlen(url));
        return ERR_OK;
    }
#undef IS
    return fhirpath__fail(ev, node, "unknown variable %%%.*s", (int)len, name);
}

/* ---- the dispatcher ---- */

static void this_collection(fp_eval_t *ev, const fp_frame_t *frame, fp_coll_t *out)
{
    if (frame->this_item) {
        fhirpath__coll_push(ev, out, frame->this_item);
    } else {
        fhirpath__coll_append(ev, out, frame->this_coll);
    }
}

static bool names_type(const fp_item_t *item, const char *name)
{
    if (item->kind != FHIRPATH_NODE || !json_is_object(item->u.node->json) ||
        !json_object_get(item->u.node->json, "resourceType"))
        return false;
    fp_typespec_t spec = {NULL, name, -1};
    return fhirpath__is_type(item, &spec);
}

static status_t eval_ident(fp_eval_t *ev, const fp_frame_t *frame, const fp_ast_t *node,
                           fp_coll_t *out)
{
    fp_coll_t focus;
    fhirpath__coll_init(&focus);
    this_collection(ev, frame, &focus);
    /* a path may start with the type of its context: Patient.name */
    if (node->name[0] >= 'A' && node->name[0] <= 'Z') {
        bool any = false;
        for (size_t i = 0; i < focus.count; i++) {
            if (names_type(&focus.items[i], node->name)) {
                fhirpath__coll_push(ev, out, &focus.items[i]);
                any = true;
            }
        }
        if (any)
            return ERR_OK;
    }
    for (size_t i = 0; i < focus.count; i++)
        fhirpath__member(ev, &focus.items[i], node->name, node->name_len, out);
    return ERR_OK;
}

status_t fhirpath__eval_node(fp_eval_t *ev, const fp_frame_t *frame, const fp_ast_t *node,
                             fp_coll_t *out)
{
    status_t rc = ERR_OK;
    if ((rc = fhirpath__check_budget(ev, node)))
        return rc;
    if (++ev->depth > FP_MAX_DEPTH * 4) {
        ev->depth--;
        return fhirpath__fail(ev, node, "evaluation nested too deeply");
    }
    switch (node->kind) {
    case FP_N_EMPTY: break;
    case FP_N_LITERAL: fhirpath__coll_push(ev, out, &node->literal); break;
    case FP_N_IDENT: rc = eval_ident(ev, frame, node, out); break;
    case FP_N_MEMBER: {
        fp_coll_t left;
        fhirpath__coll_init(&left);
        if ((rc = fhirpath__eval_node(ev, frame, node->left, &left)))
            break;
        for (size_t i = 0; i < left.count; i++)
            fhirpath__member(ev, &left.items[i], node->name, node->name_len, out);
        break;
    }
    case FP_N_CALL: {
        fp_coll_t input;
        fhirpath__coll_init(&input);
        if (node->left)
            rc = fhirpath__eval_node(ev, frame, node->left, &input);
        else
            this_collection(ev, frame, &input);
        if (!rc)
            rc = node->function->fn(ev, frame, node, &input, out);
        break;
    }
    case FP_N_THIS: this_collection(ev, frame, out); break;
    case FP_N_INDEX:
        if (frame->this_item)
            fhirpath__push_integer(ev, out, frame->index);
        break;
    case FP_N_TOTAL:
        if (frame->total)
            fhirpath__coll_append(ev, out, frame->total);
        break;
    case FP_N_VARIABLE: rc = eval_variable(ev, node, out); break;
    case FP_N_INDEXER: {
        fp_coll_t left, index;
        fhirpath__coll_init(&left);
        fhirpath__coll_init(&index);
        const fp_item_t *i;
        if ((rc = fhirpath__eval_node(ev, frame, node->left, &left)) ||
            (rc = fhirpath__eval_node(ev, frame, node->right, &index)) ||
            (rc = fhirpath__singleton(ev, node->right, "index", &index, &i)))
            break;
        if (!i)
            break;
        if (i->kind != FHIRPATH_INTEGER) {
            rc = fhirpath__fail(ev, node->right, "an index must be an Integer, not %s",
                                item_type_for_message(i));
            break;
        }
        if (i->u.integer >= 0 && (uint64_t)i->u.integer < left.count)
            fhirpath__coll_push(ev, out, &left.items[i->u.integer]);
        break;
    }
    case FP_N_UNARY: rc = eval_unary(ev, frame, node, out); break;
    case FP_N_BINARY: rc = eval_binary(ev, frame, node, out); break;
    case FP_N_TYPE: {
        fp_coll_t left;
        fhirpath__coll_init(&left);
        if ((rc = fhirpath__eval_node(ev, frame, node->left, &left)))
            break;
        if (node->op == FP_OP_IS) {
            if (left.count > 1) {
                rc = fhirpath__fail(ev, node, "'is' expects a single item, got %zu", left.count);
                break;
            }
            if (left.count == 1)
                fhirpath__push_boolean(ev, out, fhirpath__is_type(&left.items[0], &node->type));
        } else {
            for (size_t k = 0; k < left.count; k++)
                if (fhirpath__is_type(&left.items[k], &node->type))
                    fhirpath__coll_push(ev, out, &left.items[k]);
        }
        break;
    }
    }
    ev->depth--;
    if (!rc)
        rc = fhirpath__check_budget(ev, node);
    return rc;
}

/* ---- the API ---- */

void fhirpath_env_init(fhirpath_env_t *env, json_t *resource)
{
    memset(env, 0, sizeof(*env));
    env->resource = resource;
}

static void root_collection(fp_eval_t *ev, json_t *json, fp_coll_t *out)
{
    fhirpath__coll_init(out);
    if (json)
        push_json(ev, json, NULL, out);
}

status_t fhirpath_eval(const fhirpath_t *expr, const fhirpath_env_t *env, arena_t *arena,
                       fhirpath_result_t **out, err_t *err)
{
    fp_eval_t ev = {0};
    ev.expr = expr;
    ev.env = env;
    ev.arena = arena;
    ev.err = err;
    root_collection(&ev, env->resource, &ev.resource);
    root_collection(&ev, env->root_resource ? env->root_resource : env->resource,
                    &ev.root_resource);
    if (env->context && env->context != env->resource) {
        root_collection(&ev, env->context, &ev.context);
        /* an element as context: its type comes from the caller, its path starts there */
        if (env->context_type && ev.context.count == 1 &&
            ev.context.items[0].kind == FHIRPATH_NODE) {
            fp_node_t *typed = make_node(&ev, env->context, NULL, env->context_type, NULL, NULL,
                                         env->context_type->name, -1);
            ev.context.items[0].u.node = typed;
        }
    } else {
        ev.context = ev.resource;
    }
    fp_frame_t frame = {0};
    frame.this_coll = &ev.context;
    fp_coll_t *result = arena_alloc(arena, sizeof(*result));
    fhirpath__coll_init(result);
    status_t rc = fhirpath__eval_node(&ev, &frame, expr->root, result);
    if (rc) {
        *out = NULL;
        return rc;
    }
    *out = result;
    return ERR_OK;
}

status_t fhirpath_eval_condition(const fhirpath_t *expr, const fhirpath_env_t *env, arena_t *arena,
                                 int *out_value, err_t *err)
{
    fhirpath_result_t *result;
    *out_value = -1;
    status_t rc = fhirpath_eval(expr, env, arena, &result, err);
    if (rc)
        return rc;
    if (result->count == 1) {
        fp_item_t v;
        if (fhirpath__system_value(&result->items[0], &v) && v.kind == FHIRPATH_BOOLEAN)
            *out_value = v.u.boolean;
    }
    return ERR_OK;
}
