/*
 * patch.c - FHIRPath Patch: a Parameters resource of operations applied to a resource.
 *
 * The operations run one after the other on a copy of the resource, so a failing operation
 * leaves the caller's resource as it was. A path is evaluated by the FHIRPath engine and its
 * nodes are turned back into places in the JSON (fhirpath_item_location: the object holding
 * the member, the member's name and its position in an array), where the change is made.
 * A primitive's "_name" member (its id and extensions) moves with the value: in a list the
 * "_name" array stays aligned with the values, padded with nulls.
 */
#include "fhir/patch.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/jv.h"
#include "fhir/defs.h"
#include "fhir/fhirpath.h"

typedef enum { OP_ADD, OP_INSERT, OP_DELETE, OP_REPLACE, OP_MOVE, OP__COUNT } op_type_t;

static const char *const op_names[OP__COUNT] = {"add", "insert", "delete", "replace", "move"};

enum {
    PART_TYPE,
    PART_PATH,
    PART_NAME,
    PART_VALUE,
    PART_INDEX,
    PART_SOURCE,
    PART_DESTINATION,
    PART__COUNT
};

static const char *const part_names[PART__COUNT] = {"type",  "path",   "name",       "value",
                                                    "index", "source", "destination"};

#define BIT(p) (1u << (p))
/* The parts each operation takes (all of them are required). */
static const unsigned op_parts[OP__COUNT] = {
    [OP_ADD] = BIT(PART_TYPE) | BIT(PART_PATH) | BIT(PART_NAME) | BIT(PART_VALUE),
    [OP_INSERT] = BIT(PART_TYPE) | BIT(PART_PATH) | BIT(PART_VALUE) | BIT(PART_INDEX),
    [OP_DELETE] = BIT(PART_TYPE) | BIT(PART_PATH),
    [OP_REPLACE] = BIT(PART_TYPE) | BIT(PART_PATH) | BIT(PART_VALUE),
    [OP_MOVE] = BIT(PART_TYPE) | BIT(PART_PATH) | BIT(PART_SOURCE) | BIT(PART_DESTINATION),
};

/* One operation, as read from its parameter. */
typedef struct {
    size_t at;     /* position in Parameters.parameter */
    int type;      /* op_type_t, or -1 before the type part is read */
    bool checking; /* fhir_patch_check: errors point into the Parameters */
    const char *path;
    const char *name;
    const json_t *value; /* the value part (borrowed) */
    int64_t index, source, destination;
    arena_t *arena;
    err_t *err;
} op_t;

static status_t op_fail(const op_t *op, status_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static status_t op_fail(const op_t *op, status_t code, const char *fmt, ...)
{
    buf_t msg = BUF_INIT;
    buf_addf(&msg, "patch operation %zu", op->at);
    if (op->type >= 0) {
        buf_addf(&msg, " (%s", op_names[op->type]);
        if (op->path && !op->checking)
            buf_addf(&msg, " %s", op->path);
        buf_addch(&msg, ')');
    }
    buf_addstr(&msg, ": ");
    va_list ap;
    va_start(ap, fmt);
    char text[512];
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    buf_addstr(&msg, text);
    const char *expression = op->path && !op->checking
                                 ? op->path
                                 : arena_printf(op->arena, "Parameters.parameter[%zu]", op->at);
    err_set(op->err, code, expression, "%s", msg.ptr);
    buf_release(&msg);
    return code;
}

/* The value[x] member of a parameter or part ("valueString"), or NULL. */
static const char *value_key(const json_t *part)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)part, key, value)
    {
        if (strncmp(key, "value", 5) == 0 && isupper((unsigned char)key[5]))
            return key;
    }
    return NULL;
}

/* ---- reading the Parameters ---------------------------------------------------------- */

static status_t read_string(op_t *op, const json_t *part, const char *name, bool code,
                            const char **out)
{
    const json_t *v = json_object_get(part, code ? "valueCode" : "valueString");
    if (!v && code)
        v = json_object_get(part, "valueString");
    if (!jv_is_string(v) || json_string_length(v) == 0)
        return op_fail(op, ERR_INVALID, "the %s part needs a %s", name,
                       code ? "valueCode" : "non-empty valueString");
    *out = json_string_value(v);
    return ERR_OK;
}

static status_t read_integer(op_t *op, const json_t *part, const char *name, int64_t *out)
{
    const json_t *v = json_object_get(part, "valueInteger");
    if (!json_is_integer(v))
        return op_fail(op, ERR_INVALID, "the %s part needs a valueInteger", name);
    if (json_integer_value(v) < 0)
        return op_fail(op, ERR_INVALID, "%s must be 0 or more, not %lld", name,
                       (long long)json_integer_value(v));
    *out = json_integer_value(v);
    return ERR_OK;
}

static status_t op_read(const json_t *param, size_t at, bool checking, arena_t *arena, op_t *op,
                        err_t *err)
{
    memset(op, 0, sizeof(*op));
    op->at = at;
    op->type = -1;
    op->checking = checking;
    op->arena = arena;
    op->err = err;
    if (!json_is_object(param))
        return op_fail(op, ERR_INVALID, "a parameter must be an object");
    const json_t *name = json_object_get(param, "name");
    if (!jv_is_string(name) || strcmp(json_string_value(name), "operation") != 0)
        return op_fail(op, ERR_INVALID,
                       "parameter \"%s\" is not an operation (the parameters of a FHIRPath Patch "
                       "are all named \"operation\")",
                       jv_is_string(name) ? json_string_value(name) : "");
    if (value_key(param) || json_object_get(param, "resource"))
        return op_fail(op, ERR_INVALID, "an operation has parts, not a value");
    const json_t *parts = json_object_get(param, "part");
    if (!json_is_array(parts))
        return op_fail(op, ERR_INVALID, "an operation needs its parts (type, path, ...)");
    const json_t *found[PART__COUNT] = {0};
    size_t i;
    const json_t *part;
    json_array_foreach(parts, i, part)
    {
        const json_t *pn = json_object_get(part, "name");
        if (!jv_is_string(pn))
            return op_fail(op, ERR_INVALID, "part %zu has no name", i);
        int p = 0;
        while (p < PART__COUNT && strcmp(part_names[p], json_string_value(pn)) != 0)
            p++;
        if (p == PART__COUNT)
            return op_fail(op, ERR_INVALID,
                           "unknown part \"%s\" (type, path, name, value, index, source, "
                           "destination)",
                           json_string_value(pn));
        if (found[p])
            return op_fail(op, ERR_INVALID, "the %s part is given twice", part_names[p]);
        found[p] = part;
    }
    if (!found[PART_TYPE])
        return op_fail(op, ERR_INVALID, "no type part (add, insert, delete, replace, move)");
    const char *type;
    status_t rc = read_string(op, found[PART_TYPE], "type", true, &type);
    if (rc)
        return rc;
    int t = 0;
    while (t < OP__COUNT && strcmp(op_names[t], type) != 0)
        t++;
    if (t == OP__COUNT)
        return op_fail(op, ERR_INVALID,
                       "unknown operation type \"%s\" (add, insert, delete, replace, move)", type);
    op->type = t;
    for (int p = 0; p < PART__COUNT; p++) {
        bool wanted = op_parts[t] & BIT(p);
        if (wanted && !found[p])
            return op_fail(op, ERR_INVALID, "no %s part", part_names[p]);
        if (!wanted && found[p])
            return op_fail(op, ERR_INVALID, "%s takes no %s part", op_names[t], part_names[p]);
    }
    if ((rc = read_string(op, found[PART_PATH], "path", false, &op->path)))
        return rc;
    if (found[PART_NAME] && (rc = read_string(op, found[PART_NAME], "name", false, &op->name)))
        return rc;
    if (found[PART_INDEX] && (rc = read_integer(op, found[PART_INDEX], "index", &op->index)))
        return rc;
    if (found[PART_SOURCE] && (rc = read_integer(op, found[PART_SOURCE], "source", &op->source)))
        return rc;
    if (found[PART_DESTINATION] &&
        (rc = read_integer(op, found[PART_DESTINATION], "destination", &op->destination)))
        return rc;
    if (found[PART_VALUE]) {
        op->value = found[PART_VALUE];
        if (!value_key(op->value) && !json_is_array(json_object_get(op->value, "part")))
            return op_fail(op, ERR_INVALID, "the value part has neither a value[x] nor parts");
    }
    return ERR_OK;
}

/* Reads and checks every operation; *out_ops in arena. */
static status_t read_all(const json_t *parameters, bool checking, arena_t *arena, op_t **out_ops,
                         size_t *out_n, err_t *err)
{
    const json_t *rt = json_object_get(parameters, "resourceType");
    if (!json_is_object(parameters) || !jv_is_string(rt) ||
        strcmp(json_string_value(rt), "Parameters") != 0)
        return err_set(err, ERR_INVALID, NULL, "a FHIRPath Patch must be a Parameters resource");
    const json_t *params = json_object_get(parameters, "parameter");
    if (params && !json_is_array(params))
        return err_set(err, ERR_INVALID, "Parameters.parameter",
                       "Parameters.parameter must be an array");
    size_t n = json_array_size(params);
    if (n > FHIR_PATCH_MAX_OPERATIONS)
        return err_set(err, ERR_INVALID, NULL,
                       "a FHIRPath Patch may have at most %d operations, not %zu",
                       FHIR_PATCH_MAX_OPERATIONS, n);
    op_t *ops = arena_alloc(arena, (n ? n : 1) * sizeof(*ops));
    for (size_t i = 0; i < n; i++) {
        status_t rc = op_read(json_array_get(params, i), i, checking, arena, &ops[i], err);
        if (rc)
            return rc;
        err_t local = ERR_INIT;
        fhirpath_t *expr = fhirpath_compile(ops[i].path, strlen(ops[i].path), &local);
        fhirpath_free(expr);
        if (!expr) {
            bool was = ops[i].checking;
            ops[i].checking = true;
            rc = op_fail(&ops[i], ERR_INVALID, "%s", err_message(&local));
            ops[i].checking = was;
            err_release(&local);
            return rc;
        }
        err_release(&local);
    }
    *out_ops = ops;
    *out_n = n;
    return ERR_OK;
}

status_t fhir_patch_check(const json_t *parameters, err_t *err)
{
    arena_t arena;
    arena_init(&arena);
    op_t *ops;
    size_t n;
    status_t rc = read_all(parameters, true, &arena, &ops, &n, err);
    arena_release(&arena);
    return rc;
}

/* ---- the model ----------------------------------------------------------------------- */

/* The element of type named `name`: a plain one, or a choice by its base name ("value"). */
static const fhir_element_t *element_named(const fhir_type_t *type, const char *name)
{
    if (!type)
        return NULL;
    for (size_t i = 0; i < type->nelements; i++)
        if (strcmp(type->elements[i].name, name) == 0)
            return &type->elements[i];
    return NULL;
}

/* The type name of a value[x] suffix: "String" -> "string", "Quantity" -> "Quantity". */
static const char *suffix_type(arena_t *arena, const char *suffix)
{
    char *lower = arena_strdup(arena, suffix);
    lower[0] = (char)tolower((unsigned char)lower[0]);
    const fhir_type_t *t = fhir_type_find(lower, strlen(lower));
    if (t && t->kind == FHIR_KIND_PRIMITIVE)
        return lower;
    return suffix;
}

/* "valueQuantity" for a choice named "value" holding a "Quantity". */
static const char *choice_key(arena_t *arena, const char *base, const char *type_name)
{
    char *key = arena_printf(arena, "%s%s", base, type_name);
    size_t n = strlen(base);
    key[n] = (char)toupper((unsigned char)key[n]);
    return key;
}

/* How an element named `name` of `type` (NULL: unknown) is written for a value of
 * value_type (NULL: built from parts): its JSON key, whether it is a list, its type. */
typedef struct {
    const char *key;
    bool list;
    bool choice;
    const fhir_type_t *type;
} member_t;

static status_t member_of(op_t *op, const fhir_type_t *type, const char *name,
                          const char *value_type, member_t *out)
{
    memset(out, 0, sizeof(*out));
    out->key = name;
    const fhir_element_t *el = element_named(type, name);
    const fhir_type_t *chosen = NULL;
    if (!el && type)
        el = fhir_element_find(type, name, strlen(name), &chosen);
    if (!el)
        return ERR_OK; /* unknown to the model: validation of the result reports it */
    out->list = el->max > 1;
    if (el->choice && !chosen) {
        if (!value_type)
            return op_fail(op, ERR_INVALID,
                           "%s is a choice of types: give its value as a value[x] that names "
                           "the type",
                           name);
        out->key = choice_key(op->arena, name, value_type);
        out->choice = true;
        out->type = fhir_type_find(value_type, strlen(value_type));
        return ERR_OK;
    }
    out->choice = el->choice;
    out->type = chosen ? chosen : el->ntypes == 1 ? el->types[0] : NULL;
    return ERR_OK;
}

/* ---- lists and their "_name" arrays -------------------------------------------------- */

static const char *ext_key(arena_t *arena, const char *key)
{
    return arena_printf(arena, "_%s", key);
}

static bool all_null(const json_t *array)
{
    size_t i;
    const json_t *v;
    json_array_foreach(array, i, v)
    {
        if (!json_is_null(v))
            return false;
    }
    return true;
}

/* The items of the list holder[key], counting those that have only extensions. */
static size_t list_size(arena_t *arena, const json_t *holder, const char *key)
{
    size_t n = json_array_size(json_object_get(holder, key));
    size_t e = json_array_size(json_object_get(holder, ext_key(arena, key)));
    return n > e ? n : e;
}

static json_t *list_array(json_t *holder, const char *key, size_t size)
{
    json_t *array = json_object_get(holder, key);
    if (!json_is_array(array)) {
        array = json_array();
        json_object_set_new(holder, key, array);
    }
    while (json_array_size(array) < size)
        json_array_append_new(array, json_null());
    return array;
}

/* Drops a list's "_name" array when it holds nothing, and the list when it is empty. */
static void list_tidy(arena_t *arena, json_t *holder, const char *key)
{
    const char *ukey = ext_key(arena, key);
    json_t *ext = json_object_get(holder, ukey);
    if (json_is_array(ext) && all_null(ext)) {
        json_object_del(holder, ukey);
        ext = NULL;
    }
    json_t *values = json_object_get(holder, key);
    if (json_is_array(values) && (json_array_size(values) == 0 || (!ext && all_null(values))))
        json_object_del(holder, key);
}

/* Inserts value and ext (both taken; ext may be NULL) at position i of the list. */
static void list_insert(arena_t *arena, json_t *holder, const char *key, size_t i, json_t *value,
                        json_t *ext)
{
    size_t n = list_size(arena, holder, key);
    const char *ukey = ext_key(arena, key);
    json_array_insert_new(list_array(holder, key, n), i, value);
    if (ext || json_is_array(json_object_get(holder, ukey)))
        json_array_insert_new(list_array(holder, ukey, n), i, ext ? ext : json_null());
    list_tidy(arena, holder, key);
}

/* Takes item i out of the list: *out_value and *out_ext are new references (or NULL). */
static void list_remove(arena_t *arena, json_t *holder, const char *key, size_t i,
                        json_t **out_value, json_t **out_ext)
{
    const char *ukey = ext_key(arena, key);
    json_t *values = json_object_get(holder, key);
    json_t *ext = json_object_get(holder, ukey);
    json_t *v = json_is_array(values) ? json_array_get(values, i) : NULL;
    json_t *e = json_is_array(ext) ? json_array_get(ext, i) : NULL;
    if (out_value)
        *out_value = v && !json_is_null(v) ? json_incref(v) : NULL;
    if (out_ext)
        *out_ext = e && !json_is_null(e) ? json_incref(e) : NULL;
    if (json_is_array(values) && i < json_array_size(values))
        json_array_remove(values, i);
    if (json_is_array(ext) && i < json_array_size(ext))
        json_array_remove(ext, i);
    list_tidy(arena, holder, key);
}

/* ---- values -------------------------------------------------------------------------- */

/*
 * The JSON of a value part for an element of `type` (NULL: unknown): a copy of its value[x],
 * with *out_type the type it names and *out_ext a copy of its "_value[x]" (or NULL); or an
 * object built from its parts, with *out_type NULL. Returns a new reference, or NULL.
 */
static json_t *build_value(op_t *op, const json_t *part, const fhir_type_t *type,
                           const char **out_type, json_t **out_ext)
{
    *out_type = NULL;
    *out_ext = NULL;
    const char *key = value_key(part);
    if (key) {
        *out_type = suffix_type(op->arena, key + 5);
        json_t *ext = json_object_get(part, ext_key(op->arena, key));
        if (json_is_object(ext))
            *out_ext = json_deep_copy(ext);
        return json_deep_copy(json_object_get(part, key));
    }
    const json_t *parts = json_object_get(part, "part");
    if (!json_is_array(parts) || json_array_size(parts) == 0) {
        op_fail(op, ERR_INVALID, "a value part has neither a value[x] nor parts");
        return NULL;
    }
    json_t *object = json_object();
    size_t i;
    const json_t *sub;
    json_array_foreach(parts, i, sub)
    {
        const json_t *name = json_object_get(sub, "name");
        if (!jv_is_string(name) || json_string_length(name) == 0) {
            op_fail(op, ERR_INVALID, "a part of the value has no name");
            goto fail;
        }
        const char *sub_key = value_key(sub);
        const char *sub_type = sub_key ? suffix_type(op->arena, sub_key + 5) : NULL;
        member_t m;
        if (member_of(op, type, json_string_value(name), sub_type, &m))
            goto fail;
        const char *vt;
        json_t *ext;
        json_t *value = build_value(op, sub, m.type, &vt, &ext);
        if (!value)
            goto fail;
        json_t *existing = json_object_get(object, m.key);
        if (m.list || (!type && existing)) {
            if (existing && !json_is_array(existing)) {
                json_t *array = json_array();
                json_array_append(array, existing);
                json_object_set_new(object, m.key, array);
                json_t *old_ext = json_object_get(object, ext_key(op->arena, m.key));
                if (old_ext) {
                    json_t *ext_array = json_array();
                    json_array_append(ext_array, old_ext);
                    json_object_set_new(object, ext_key(op->arena, m.key), ext_array);
                }
            }
            list_insert(op->arena, object, m.key, list_size(op->arena, object, m.key), value, ext);
        } else {
            if (existing) {
                json_decref(value);
                json_decref(ext);
                op_fail(op, ERR_INVALID,
                        "the value has two parts named \"%s\", which is not a list",
                        json_string_value(name));
                goto fail;
            }
            json_object_set_new(object, m.key, value);
            if (ext)
                json_object_set_new(object, ext_key(op->arena, m.key), ext);
        }
    }
    return object;
fail:
    json_decref(object);
    return NULL;
}

/* ---- evaluating paths ---------------------------------------------------------------- */

static status_t eval_text(op_t *op, const char *text, json_t *resource, fhirpath_result_t **out)
{
    err_t local = ERR_INIT;
    status_t rc = ERR_OK;
    fhirpath_t *expr = fhirpath_compile(text, strlen(text), &local);
    if (!expr) {
        rc = op_fail(op, ERR_INVALID, "%s", err_message(&local));
        goto out;
    }
    fhirpath_env_t env;
    fhirpath_env_init(&env, resource);
    if (fhirpath_eval(expr, &env, op->arena, out, &local))
        rc = op_fail(op, ERR_RULE, "could not evaluate the path: %s", err_message(&local));
out:
    fhirpath_free(expr);
    err_release(&local);
    return rc;
}

/* Where one element is: the path must match exactly one node. */
typedef struct {
    const fhirpath_item_t *item;
    json_t *holder; /* NULL for the resource itself */
    const char *key;
    int index;
    bool choice;
} place_t;

static status_t single(op_t *op, json_t *resource, place_t *out)
{
    fhirpath_result_t *result;
    status_t rc = eval_text(op, op->path, resource, &result);
    if (rc)
        return rc;
    size_t n = fhirpath_result_count(result);
    if (n == 0)
        return op_fail(op, ERR_RULE, "the path matches nothing");
    if (n > 1)
        return op_fail(op, ERR_RULE, "the path matches %zu elements where one is needed", n);
    memset(out, 0, sizeof(*out));
    out->item = fhirpath_result_item(result, 0);
    if (fhirpath_item_kind(out->item) != FHIRPATH_NODE)
        return op_fail(op, ERR_RULE, "the path gives a computed %s, not an element",
                       fhirpath_item_type_name(out->item));
    if (!fhirpath_item_location(out->item, &out->holder, &out->key, &out->index, &out->choice))
        out->holder = NULL;
    return ERR_OK;
}

/* The last step of a path "X.name": sets *out_parent to "X" and *out_name to "name". */
static bool split_last_step(arena_t *arena, const char *path, const char **out_parent,
                            const char **out_name)
{
    int depth = 0;
    char quote = 0;
    const char *dot = NULL;
    for (const char *p = path; *p; p++) {
        if (quote) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == quote)
                quote = 0;
        } else if (*p == '\'' || *p == '`') {
            quote = *p;
        } else if (*p == '(' || *p == '[') {
            depth++;
        } else if (*p == ')' || *p == ']') {
            depth--;
        } else if (*p == '.' && depth == 0) {
            dot = p;
        }
    }
    if (!dot || dot == path)
        return false;
    const char *name = dot + 1;
    if (!isalpha((unsigned char)*name) && *name != '_')
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return false;
    *out_parent = arena_strndup(arena, path, (size_t)(dot - path));
    *out_name = name;
    return true;
}

/* A list named by a path: the holder object and the list's key. */
typedef struct {
    json_t *holder;
    const char *key;
    const fhir_type_t *item_type;
} list_t;

static status_t find_list(op_t *op, json_t *resource, list_t *out)
{
    memset(out, 0, sizeof(*out));
    fhirpath_result_t *result;
    status_t rc = eval_text(op, op->path, resource, &result);
    if (rc)
        return rc;
    size_t n = fhirpath_result_count(result);
    for (size_t i = 0; i < n; i++) {
        const fhirpath_item_t *item = fhirpath_result_item(result, i);
        json_t *holder;
        const char *key;
        int index;
        bool choice;
        if (fhirpath_item_kind(item) != FHIRPATH_NODE ||
            !fhirpath_item_location(item, &holder, &key, &index, &choice) || index < 0)
            return op_fail(op, ERR_RULE, "the path does not name a list");
        if (i == 0) {
            out->holder = holder;
            out->key = key;
            out->item_type = fhirpath_item_fhir_type(item);
        } else if (holder != out->holder || strcmp(key, out->key) != 0) {
            return op_fail(op, ERR_RULE, "the path matches elements of more than one list");
        }
    }
    if (n)
        return ERR_OK;
    /* an empty list: the element that would hold it must exist */
    const char *parent_path, *name;
    if (!split_last_step(op->arena, op->path, &parent_path, &name))
        return op_fail(op, ERR_RULE, "the path matches nothing");
    if ((rc = eval_text(op, parent_path, resource, &result)))
        return rc;
    if (fhirpath_result_count(result) != 1)
        return op_fail(op, ERR_RULE, "the path matches nothing and %s matches %zu elements",
                       parent_path, fhirpath_result_count(result));
    const fhirpath_item_t *parent = fhirpath_result_item(result, 0);
    json_t *holder = fhirpath_item_json(parent);
    if (fhirpath_item_kind(parent) != FHIRPATH_NODE || !json_is_object(holder))
        return op_fail(op, ERR_RULE, "the path matches nothing");
    const fhir_element_t *el = element_named(fhirpath_item_fhir_type(parent), name);
    if (el && el->max <= 1)
        return op_fail(op, ERR_RULE, "%s is not a list", name);
    out->holder = holder;
    out->key = name;
    out->item_type = el && el->ntypes == 1 ? el->types[0] : NULL;
    return ERR_OK;
}

/* ---- the operations ------------------------------------------------------------------ */

static status_t op_add(op_t *op, json_t *resource)
{
    place_t at;
    status_t rc = single(op, resource, &at);
    if (rc)
        return rc;
    json_t *container = fhirpath_item_json(at.item);
    if (!json_is_object(container))
        return op_fail(op, ERR_RULE, "the path names a %s, which has no elements to add to",
                       fhirpath_item_type_name(at.item) ? fhirpath_item_type_name(at.item)
                                                        : "primitive");
    const fhir_type_t *type = fhirpath_item_fhir_type(at.item);
    const char *key = value_key(op->value);
    member_t m;
    if ((rc = member_of(op, type, op->name, key ? suffix_type(op->arena, key + 5) : NULL, &m)))
        return rc;
    const char *vt;
    json_t *ext;
    json_t *value = build_value(op, op->value, m.type, &vt, &ext);
    if (!value)
        return op->err->code;
    if (m.list) {
        if (json_object_get(container, m.key) && !json_is_array(json_object_get(container, m.key)))
            goto exists;
        list_insert(op->arena, container, m.key, list_size(op->arena, container, m.key), value,
                    ext);
        return ERR_OK;
    }
    /* a single element: it must not have a value yet, under any type of a choice */
    const char *k;
    json_t *v;
    json_object_foreach(container, k, v)
    {
        const char *name = k[0] == '_' ? k + 1 : k;
        if (strcmp(name, m.key) == 0)
            goto exists;
        if (m.choice && type) {
            const fhir_type_t *chosen;
            const fhir_element_t *el = fhir_element_find(type, name, strlen(name), &chosen);
            if (el && el->choice && element_named(type, op->name) == el)
                goto exists;
        }
    }
    json_object_set_new(container, m.key, value);
    if (ext)
        json_object_set_new(container, ext_key(op->arena, m.key), ext);
    return ERR_OK;
exists:
    json_decref(value);
    json_decref(ext);
    return op_fail(op, ERR_RULE,
                   "%s already has a value and is not a list: replace it, or delete it first",
                   op->name);
}

static status_t op_insert(op_t *op, json_t *resource)
{
    list_t list;
    status_t rc = find_list(op, resource, &list);
    if (rc)
        return rc;
    size_t n = list_size(op->arena, list.holder, list.key);
    if ((uint64_t)op->index > n)
        return op_fail(op, ERR_RULE, "index %lld is out of range: the list has %zu item%s",
                       (long long)op->index, n, n == 1 ? "" : "s");
    const char *vt;
    json_t *ext;
    json_t *value = build_value(op, op->value, list.item_type, &vt, &ext);
    if (!value)
        return op->err->code;
    list_insert(op->arena, list.holder, list.key, (size_t)op->index, value, ext);
    return ERR_OK;
}

static status_t op_move(op_t *op, json_t *resource)
{
    list_t list;
    status_t rc = find_list(op, resource, &list);
    if (rc)
        return rc;
    size_t n = list_size(op->arena, list.holder, list.key);
    if ((uint64_t)op->source >= n)
        return op_fail(op, ERR_RULE, "source %lld is out of range: the list has %zu item%s",
                       (long long)op->source, n, n == 1 ? "" : "s");
    if ((uint64_t)op->destination >= n)
        return op_fail(op, ERR_RULE, "destination %lld is out of range: the list has %zu item%s",
                       (long long)op->destination, n, n == 1 ? "" : "s");
    json_t *value, *ext;
    list_remove(op->arena, list.holder, list.key, (size_t)op->source, &value, &ext);
    list_insert(op->arena, list.holder, list.key, (size_t)op->destination,
                value ? value : json_null(), ext);
    return ERR_OK;
}

static status_t op_delete(op_t *op, json_t *resource)
{
    fhirpath_result_t *result;
    status_t rc = eval_text(op, op->path, resource, &result);
    if (rc)
        return rc;
    size_t n = fhirpath_result_count(result);
    if (n == 0)
        return ERR_OK;
    if (n > 1)
        return op_fail(op, ERR_RULE, "the path matches %zu elements where one is needed", n);
    place_t at = {.item = fhirpath_result_item(result, 0)};
    if (fhirpath_item_kind(at.item) != FHIRPATH_NODE)
        return op_fail(op, ERR_RULE, "the path gives a computed %s, not an element",
                       fhirpath_item_type_name(at.item));
    if (!fhirpath_item_location(at.item, &at.holder, &at.key, &at.index, &at.choice))
        return op_fail(op, ERR_RULE, "the resource itself cannot be deleted");
    if (at.index >= 0) {
        list_remove(op->arena, at.holder, at.key, (size_t)at.index, NULL, NULL);
    } else {
        json_object_del(at.holder, ext_key(op->arena, at.key));
        json_object_del(at.holder, at.key);
    }
    return ERR_OK;
}

static status_t op_replace(op_t *op, json_t *resource)
{
    place_t at;
    status_t rc = single(op, resource, &at);
    if (rc)
        return rc;
    if (!at.holder)
        return op_fail(op, ERR_RULE, "the resource itself cannot be replaced");
    const char *vt;
    json_t *ext;
    json_t *value = build_value(op, op->value, fhirpath_item_fhir_type(at.item), &vt, &ext);
    if (!value)
        return op->err->code;
    if (at.index >= 0) {
        size_t n = list_size(op->arena, at.holder, at.key);
        json_array_set_new(list_array(at.holder, at.key, n), (size_t)at.index, value);
        const char *ukey = ext_key(op->arena, at.key);
        if (ext)
            json_array_set_new(list_array(at.holder, ukey, n), (size_t)at.index, ext);
        return ERR_OK;
    }
    const char *key = at.key;
    const char *old_type = fhirpath_item_type_name(at.item);
    if (at.choice && vt && old_type) {
        /* Observation.value: "valueQuantity" becomes "valueString" for a string */
        size_t kl = strlen(key), tl = strlen(old_type);
        if (kl > tl) {
            const char *base = arena_strndup(op->arena, key, kl - tl);
            key = choice_key(op->arena, base, vt);
        }
    }
    if (strcmp(key, at.key) != 0) {
        json_object_del(at.holder, ext_key(op->arena, at.key));
        json_object_del(at.holder, at.key);
    }
    /* a primitive keeps its extensions unless the value brings its own */
    json_object_set_new(at.holder, key, value);
    if (ext)
        json_object_set_new(at.holder, ext_key(op->arena, key), ext);
    return ERR_OK;
}

/* Removes what a delete left empty: objects without members, empty arrays, "_name" arrays
 * of nulls. */
static void prune(json_t *value, bool in_ext_array)
{
    if (json_is_object(value)) {
        const char *key;
        json_t *member;
        void *tmp;
        json_object_foreach_safe(value, tmp, key, member)
        {
            prune(member, key[0] == '_' && json_is_array(member));
            if ((json_is_object(member) && json_object_size(member) == 0) ||
                (json_is_array(member) &&
                 (json_array_size(member) == 0 || (key[0] == '_' && all_null(member)))))
                json_object_del(value, key);
        }
    } else if (json_is_array(value)) {
        for (size_t i = 0; i < json_array_size(value);) {
            json_t *item = json_array_get(value, i);
            prune(item, false);
            if (json_is_object(item) && json_object_size(item) == 0) {
                if (in_ext_array) {
                    json_array_set_new(value, i, json_null());
                } else {
                    json_array_remove(value, i);
                    continue;
                }
            }
            i++;
        }
    }
}

status_t fhir_patch_apply(json_t **resource, const json_t *parameters, err_t *err)
{
    arena_t arena;
    arena_init(&arena);
    op_t *ops;
    size_t n;
    json_t *copy = NULL;
    status_t rc = read_all(parameters, false, &arena, &ops, &n, err);
    if (rc)
        goto out;
    copy = json_deep_copy(*resource);
    for (size_t i = 0; i < n && !rc; i++) {
        switch (ops[i].type) {
        case OP_ADD: rc = op_add(&ops[i], copy); break;
        case OP_INSERT: rc = op_insert(&ops[i], copy); break;
        case OP_DELETE: rc = op_delete(&ops[i], copy); break;
        case OP_REPLACE: rc = op_replace(&ops[i], copy); break;
        default: rc = op_move(&ops[i], copy); break;
        }
    }
    if (rc)
        goto out;
    prune(copy, false);
    json_decref(*resource);
    *resource = copy;
    copy = NULL;
out:
    json_decref(copy);
    arena_release(&arena);
    return rc;
}
