/*
 * fhirpath_func.c - the function library: existence, filtering, subsetting, combining,
 * conversion, strings, math, tree navigation, utility, types, aggregate and the FHIR
 * additions (extension, resolve, hasValue, getValue, htmlChecks, conformsTo, memberOf).
 *
 * Each function gets its input collection and the call node; arguments are evaluated on
 * demand, in the caller's frame, or per input item with $this and $index bound for the
 * functions that iterate (where, select, all, exists, repeat, aggregate).
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/jv.h"
#include "fhir/fhirpath_int.h"

#define FN(name)                                                                            \
    static status_t fn_##name(fp_eval_t *ev, const fp_frame_t *frame, const fp_ast_t *call, \
                              const fp_coll_t *input, fp_coll_t *out)

static status_t arg(fp_eval_t *ev, const fp_frame_t *frame, const fp_ast_t *call, size_t i,
                    fp_coll_t *out)
{
    fhirpath__coll_init(out);
    return fhirpath__eval_node(ev, frame, call->args[i], out);
}

/* Evaluates argument i with $this bound to item (index i). */
static status_t arg_for(fp_eval_t *ev, const fp_frame_t *frame, const fp_ast_t *call, size_t argi,
                        const fp_item_t *item, size_t index, fp_coll_t *out)
{
    fp_frame_t inner = {0};
    inner.outer = frame;
    inner.this_item = item;
    inner.index = (int64_t)index;
    inner.total = frame->total;
    fhirpath__coll_init(out);
    return fhirpath__eval_node(ev, &inner, call->args[argi], out);
}

static status_t arg_single(fp_eval_t *ev, const fp_frame_t *frame, const fp_ast_t *call, size_t i,
                           const fp_item_t **out)
{
    fp_coll_t c;
    status_t rc = arg(ev, frame, call, i, &c);
    if (rc)
        return rc;
    return fhirpath__singleton(ev, call->args[i], call->name, &c, out);
}

static status_t input_single(fp_eval_t *ev, const fp_ast_t *call, const fp_coll_t *input,
                             const fp_item_t **out)
{
    return fhirpath__singleton(ev, call, arena_printf(ev->arena, "%s()", call->name), input, out);
}

static status_t want(fp_eval_t *ev, const fp_ast_t *call, const fp_item_t *v, const char *what)
{
    fp_typeinfo_t t;
    fhirpath__type_of(v, &t);
    return fhirpath__fail(ev, call, "%s() expects %s, not %s", call->name, what, t.name);
}

/* Input string of a string function; *out NULL when the input is empty. */
static status_t input_string(fp_eval_t *ev, const fp_ast_t *call, const fp_coll_t *input,
                             const char **out, size_t *out_len)
{
    const fp_item_t *v;
    *out = NULL;
    status_t rc = input_single(ev, call, input, &v);
    if (rc || !v)
        return rc;
    if (v->kind != FHIRPATH_STRING)
        return want(ev, call, v, "a String");
    *out = v->u.string.ptr;
    *out_len = v->u.string.len;
    return ERR_OK;
}

static status_t arg_string(fp_eval_t *ev, const fp_frame_t *frame, const fp_ast_t *call, size_t i,
                           const char **out, size_t *out_len)
{
    const fp_item_t *v;
    *out = NULL;
    status_t rc = arg_single(ev, frame, call, i, &v);
    if (rc || !v)
        return rc;
    if (v->kind != FHIRPATH_STRING)
        return fhirpath__fail(ev, call->args[i], "argument %zu of %s() must be a String", i + 1,
                              call->name);
    *out = v->u.string.ptr;
    *out_len = v->u.string.len;
    return ERR_OK;
}

static status_t arg_integer(fp_eval_t *ev, const fp_frame_t *frame, const fp_ast_t *call, size_t i,
                            bool *out_present, int64_t *out)
{
    const fp_item_t *v;
    *out_present = false;
    status_t rc = arg_single(ev, frame, call, i, &v);
    if (rc || !v)
        return rc;
    if (v->kind != FHIRPATH_INTEGER)
        return fhirpath__fail(ev, call->args[i], "argument %zu of %s() must be an Integer", i + 1,
                              call->name);
    *out_present = true;
    *out = v->u.integer;
    return ERR_OK;
}

/* ---- existence ---- */

FN(empty)
{
    (void)frame;
    (void)call;
    fhirpath__push_boolean(ev, out, input->count == 0);
    return ERR_OK;
}

FN(not )
{
    (void)frame;
    int b;
    status_t rc = fhirpath__singleton_boolean(ev, call, input, &b);
    if (!rc && b >= 0)
        fhirpath__push_boolean(ev, out, !b);
    return rc;
}

static status_t criteria(fp_eval_t *ev, const fp_frame_t *frame, const fp_ast_t *call,
                         const fp_item_t *item, size_t index, int *out)
{
    fp_coll_t c;
    status_t rc = arg_for(ev, frame, call, 0, item, index, &c);
    if (rc)
        return rc;
    return fhirpath__singleton_boolean(ev, call->args[0], &c, out);
}

FN(exists)
{
    if (call->nargs == 0) {
        fhirpath__push_boolean(ev, out, input->count > 0);
        return ERR_OK;
    }
    for (size_t i = 0; i < input->count; i++) {
        int b;
        status_t rc = criteria(ev, frame, call, &input->items[i], i, &b);
        if (rc)
            return rc;
        if (b == 1) {
            fhirpath__push_boolean(ev, out, true);
            return ERR_OK;
        }
    }
    fhirpath__push_boolean(ev, out, false);
    return ERR_OK;
}

FN(all)
{
    for (size_t i = 0; i < input->count; i++) {
        int b;
        status_t rc = criteria(ev, frame, call, &input->items[i], i, &b);
        if (rc)
            return rc;
        if (b != 1) {
            fhirpath__push_boolean(ev, out, false);
            return ERR_OK;
        }
    }
    fhirpath__push_boolean(ev, out, true);
    return ERR_OK;
}

/* allTrue, anyTrue, allFalse, anyFalse */
static status_t booleans(fp_eval_t *ev, const fp_coll_t *input, bool want_true, bool all,
                         fp_coll_t *out)
{
    bool result = all;
    for (size_t i = 0; i < input->count; i++) {
        fp_item_t v;
        bool match = fhirpath__system_value(&input->items[i], &v) && v.kind == FHIRPATH_BOOLEAN &&
                     v.u.boolean == want_true;
        if (all && !match)
            result = false;
        if (!all && match)
            result = true;
    }
    fhirpath__push_boolean(ev, out, result);
    return ERR_OK;
}

FN(allTrue)
{
    (void)frame;
    (void)call;
    return booleans(ev, input, true, true, out);
}

FN(anyTrue)
{
    (void)frame;
    (void)call;
    return booleans(ev, input, true, false, out);
}

FN(allFalse)
{
    (void)frame;
    (void)call;
    return booleans(ev, input, false, true, out);
}

FN(anyFalse)
{
    (void)frame;
    (void)call;
    return booleans(ev, input, false, false, out);
}

static status_t subset(fp_eval_t *ev, const fp_frame_t *frame, const fp_ast_t *call,
                       const fp_coll_t *input, bool superset, fp_coll_t *out)
{
    fp_coll_t other;
    status_t rc = arg(ev, frame, call, 0, &other);
    if (rc)
        return rc;
    const fp_coll_t *small = superset ? &other : input;
    fp_coll_t big = superset ? *input : other;
    fp_set_t set;
    fhirpath__set_init(ev, &set, &big, big.count);
    bool result = true;
    for (size_t i = 0; i < small->count && result; i++)
        result = fhirpath__set_has(ev, &set, &small->items[i]);
    fhirpath__push_boolean(ev, out, result);
    return ERR_OK;
}

FN(subsetOf)
{
    return subset(ev, frame, call, input, false, out);
}

FN(supersetOf)
{
    return subset(ev, frame, call, input, true, out);
}

FN(count)
{
    (void)frame;
    (void)call;
    fhirpath__push_integer(ev, out, (int64_t)input->count);
    return ERR_OK;
}

FN(distinct)
{
    (void)frame;
    (void)call;
    fp_coll_t none;
    fhirpath__coll_init(&none);
    fhirpath__union(ev, input, &none, out);
    return ERR_OK;
}

FN(isDistinct)
{
    fp_coll_t d;
    fhirpath__coll_init(&d);
    status_t rc = fn_distinct(ev, frame, call, input, &d);
    if (!rc)
        fhirpath__push_boolean(ev, out, d.count == input->count);
    return rc;
}

/* ---- filtering ---- */

FN(where)
{
    for (size_t i = 0; i < input->count; i++) {
        int b;
        status_t rc = criteria(ev, frame, call, &input->items[i], i, &b);
        if (rc)
            return rc;
        if (b == 1)
            fhirpath__coll_push(ev, out, &input->items[i]);
    }
    return ERR_OK;
}

FN(select)
{
    for (size_t i = 0; i < input->count; i++) {
        fp_coll_t c;
        status_t rc = arg_for(ev, frame, call, 0, &input->items[i], i, &c);
        if (rc)
            return rc;
        fhirpath__coll_append(ev, out, &c);
    }
    return ERR_OK;
}

/* Identity for repeat(): the same JSON node, or an equal System value. */
static bool seen(fp_eval_t *ev, const fp_coll_t *c, const fp_item_t *item)
{
    ev->work += c->count;
    for (size_t i = 0; i < c->count; i++) {
        const fp_item_t *o = &c->items[i];
        if (item->kind == FHIRPATH_NODE || o->kind == FHIRPATH_NODE) {
            if (item->kind == o->kind && item->u.node->json == o->u.node->json &&
                item->u.node->ext == o->u.node->ext)
                return true;
        } else if (fhirpath__items_equal(o, item) == 1) {
            return true;
        }
    }
    return false;
}

FN(repeat)
{
    fp_coll_t work = *input;
    status_t rc;
    while (work.count) {
        fp_coll_t next;
        fhirpath__coll_init(&next);
        for (size_t i = 0; i < work.count; i++) {
            fp_coll_t c;
            if ((rc = arg_for(ev, frame, call, 0, &work.items[i], i, &c)))
                return rc;
            for (size_t k = 0; k < c.count; k++) {
                if (!seen(ev, out, &c.items[k])) {
                    fhirpath__coll_push(ev, out, &c.items[k]);
                    fhirpath__coll_push(ev, &next, &c.items[k]);
                }
            }
        }
        if ((rc = fhirpath__check_budget(ev, call)))
            return rc;
        work = next;
    }
    return ERR_OK;
}

FN(ofType)
{
    (void)frame;
    for (size_t i = 0; i < input->count; i++)
        if (fhirpath__is_type(&input->items[i], &call->type))
            fhirpath__coll_push(ev, out, &input->items[i]);
    return ERR_OK;
}

FN(is)
{
    (void)frame;
    if (input->count > 1)
        return fhirpath__fail(ev, call, "is() expects a single item, got %zu", input->count);
    if (input->count == 1)
        fhirpath__push_boolean(ev, out, fhirpath__is_type(&input->items[0], &call->type));
    return ERR_OK;
}

FN(as)
{
    return fn_ofType(ev, frame, call, input, out);
}

FN(type)
{
    (void)frame;
    (void)call;
    for (size_t i = 0; i < input->count; i++) {
        fp_item_t t = {.kind = FHIRPATH_TYPEINFO};
        fhirpath__type_of(&input->items[i], &t.u.type);
        fhirpath__coll_push(ev, out, &t);
    }
    return ERR_OK;
}

/* ---- subsetting ---- */

FN(single)
{
    (void)frame;
    if (input->count > 1)
        return fhirpath__fail(ev, call, "single() expects one item, got %zu", input->count);
    fhirpath__coll_append(ev, out, input);
    return ERR_OK;
}

FN(first)
{
    (void)frame;
    (void)call;
    if (input->count)
        fhirpath__coll_push(ev, out, &input->items[0]);
    return ERR_OK;
}

FN(last)
{
    (void)frame;
    (void)call;
    if (input->count)
        fhirpath__coll_push(ev, out, &input->items[input->count - 1]);
    return ERR_OK;
}

FN(tail)
{
    (void)frame;
    (void)call;
    for (size_t i = 1; i < input->count; i++)
        fhirpath__coll_push(ev, out, &input->items[i]);
    return ERR_OK;
}

FN(skip)
{
    bool present;
    int64_t n;
    status_t rc = arg_integer(ev, frame, call, 0, &present, &n);
    if (rc || !present)
        return rc;
    for (size_t i = n < 0 ? 0 : (size_t)n; i < input->count; i++)
        fhirpath__coll_push(ev, out, &input->items[i]);
    return ERR_OK;
}

FN(take)
{
    bool present;
    int64_t n;
    status_t rc = arg_integer(ev, frame, call, 0, &present, &n);
    if (rc || !present)
        return rc;
    for (size_t i = 0; i < input->count && (int64_t)i < n; i++)
        fhirpath__coll_push(ev, out, &input->items[i]);
    return ERR_OK;
}

FN(intersect)
{
    fp_coll_t other;
    status_t rc = arg(ev, frame, call, 0, &other);
    if (rc)
        return rc;
    fp_set_t others, seen_set;
    fhirpath__set_init(ev, &others, &other, other.count);
    fhirpath__set_init(ev, &seen_set, out, input->count);
    for (size_t i = 0; i < input->count; i++)
        if (fhirpath__set_has(ev, &others, &input->items[i]) &&
            !fhirpath__set_has(ev, &seen_set, &input->items[i]))
            fhirpath__set_push(ev, &seen_set, &input->items[i]);
    return ERR_OK;
}

FN(exclude)
{
    fp_coll_t other;
    status_t rc = arg(ev, frame, call, 0, &other);
    if (rc)
        return rc;
    fp_set_t others;
    fhirpath__set_init(ev, &others, &other, other.count);
    for (size_t i = 0; i < input->count; i++)
        if (!fhirpath__set_has(ev, &others, &input->items[i]))
            fhirpath__coll_push(ev, out, &input->items[i]);
    return ERR_OK;
}

/* ---- combining ---- */

FN(union)
{
    fp_coll_t other;
    status_t rc = arg(ev, frame, call, 0, &other);
    if (rc)
        return rc;
    fhirpath__union(ev, input, &other, out);
    return ERR_OK;
}

FN(combine)
{
    fp_coll_t other;
    status_t rc = arg(ev, frame, call, 0, &other);
    if (rc)
        return rc;
    fhirpath__coll_append(ev, out, input);
    fhirpath__coll_append(ev, out, &other);
    return ERR_OK;
}

/* ---- conversion ---- */

FN(iif)
{
    fp_frame_t focused = {0};
    const fp_frame_t *f = frame;
    if (call->left) {
        /* an explicit focus is what the criterion and results are evaluated on */
        focused.outer = frame;
        focused.this_coll = input;
        focused.total = frame->total;
        f = &focused;
    }
    fp_coll_t c;
    int b;
    status_t rc = arg(ev, f, call, 0, &c);
    if (rc || (rc = fhirpath__singleton_boolean(ev, call->args[0], &c, &b)))
        return rc;
    if (b == 1)
        return fhirpath__eval_node(ev, f, call->args[1], out);
    if (call->nargs > 2)
        return fhirpath__eval_node(ev, f, call->args[2], out);
    return ERR_OK;
}

static bool string_is_integer(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool negative = false;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        negative = s[i++] == '-';
    if (i == n)
        return false;
    int64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = negative ? -v : v;
    return true;
}

static bool string_is_decimal(const char *s, size_t n, fp_decimal_t *out)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == 'e' || s[i] == 'E')
            return false;
    return fhirpath__decimal_parse(s, n, out);
}

/* The conversions share one routine: convert v to `kind`, false when it does not convert. */
static bool convert(fp_eval_t *ev, const fp_item_t *v, int kind, fp_item_t *out)
{
    memset(out, 0, sizeof(*out));
    out->kind = (uint8_t)kind;
    switch (kind) {
    case FHIRPATH_BOOLEAN:
        switch (v->kind) {
        case FHIRPATH_BOOLEAN: *out = *v; return true;
        case FHIRPATH_INTEGER:
            if (v->u.integer != 0 && v->u.integer != 1)
                return false;
            out->u.boolean = v->u.integer == 1;
            return true;
        case FHIRPATH_DECIMAL: {
            int64_t i;
            if (!fhirpath__decimal_to_int64(v->u.decimal, &i) || (i != 0 && i != 1))
                return false;
            out->u.boolean = i == 1;
            return true;
        }
        case FHIRPATH_STRING: {
            int b = fhirpath__string_to_boolean(v->u.string.ptr, v->u.string.len);
            out->u.boolean = b == 1;
            return b >= 0;
        }
        default: return false;
        }
    case FHIRPATH_INTEGER:
        switch (v->kind) {
        case FHIRPATH_INTEGER: *out = *v; return true;
        case FHIRPATH_BOOLEAN: out->u.integer = v->u.boolean; return true;
        case FHIRPATH_STRING:
            return string_is_integer(v->u.string.ptr, v->u.string.len, &out->u.integer);
        default: return false;
        }
    case FHIRPATH_DECIMAL:
        switch (v->kind) {
        case FHIRPATH_DECIMAL: *out = *v; return true;
        case FHIRPATH_INTEGER:
            out->u.decimal = fhirpath__decimal_from_int(v->u.integer);
            return true;
        case FHIRPATH_BOOLEAN:
            out->u.decimal.coef = v->u.boolean ? 10 : 0;
            out->u.decimal.scale = 1;
            return true;
        case FHIRPATH_STRING:
            return string_is_decimal(v->u.string.ptr, v->u.string.len, &out->u.decimal);
        default: return false;
        }
    case FHIRPATH_STRING: {
        const char *s;
        size_t n;
        if (!fhirpath__item_to_string(ev, v, &s, &n))
            return false;
        out->u.string.ptr = s;
        out->u.string.len = n;
        return true;
    }
    case FHIRPATH_DATE:
        if (v->kind == FHIRPATH_DATE) {
            *out = *v;
            return true;
        }
        if (v->kind == FHIRPATH_DATETIME) {
            out->u.temporal = v->u.temporal;
            if (out->u.temporal.precision > FP_PREC_DAY)
                out->u.temporal.precision = FP_PREC_DAY;
            out->u.temporal.has_tz = false;
            return true;
        }
        if (v->kind == FHIRPATH_STRING) {
            if (fhirpath__date_parse(v->u.string.ptr, v->u.string.len, &out->u.temporal))
                return true;
            fp_temporal_t t;
            if (!fhirpath__datetime_parse(v->u.string.ptr, v->u.string.len, &t))
                return false;
            out->u.temporal = t;
            if (t.precision > FP_PREC_DAY)
                out->u.temporal.precision = FP_PREC_DAY;
            out->u.temporal.has_tz = false;
            return true;
        }
        return false;
    case FHIRPATH_DATETIME:
        if (v->kind == FHIRPATH_DATE || v->kind == FHIRPATH_DATETIME) {
            out->u.temporal = v->u.temporal;
            return true;
        }
        return v->kind == FHIRPATH_STRING &&
               fhirpath__datetime_parse(v->u.string.ptr, v->u.string.len, &out->u.temporal);
    case FHIRPATH_TIME:
        if (v->kind == FHIRPATH_TIME) {
            *out = *v;
            return true;
        }
        return v->kind == FHIRPATH_STRING &&
               fhirpath__time_parse(v->u.string.ptr, v->u.string.len, &out->u.temporal);
    case FHIRPATH_QUANTITY:
        switch (v->kind) {
        case FHIRPATH_QUANTITY: *out = *v; return true;
        case FHIRPATH_INTEGER:
        case FHIRPATH_DECIMAL:
        case FHIRPATH_BOOLEAN: {
            fp_item_t d;
            convert(ev, v, FHIRPATH_DECIMAL, &d);
            out->u.quantity.value = d.u.decimal;
            out->u.quantity.unit = "1";
            out->u.quantity.unit_len = 1;
            return true;
        }
        case FHIRPATH_STRING: {
            /* number, optional spaces, then 'ucum' or a calendar keyword */
            const char *s = v->u.string.ptr, *end = s + v->u.string.len;
            const char *p = s;
            if (p < end && (*p == '+' || *p == '-'))
                p++;
            while (p < end && (isdigit((unsigned char)*p) || *p == '.'))
                p++;
            if (!string_is_decimal(s, (size_t)(p - s), &out->u.quantity.value))
                return false;
            while (p < end && *p == ' ')
                p++;
            if (p == end) {
                out->u.quantity.unit = "1";
                out->u.quantity.unit_len = 1;
                return true;
            }
            if (*p == '\'') {
                const char *u = p + 1;
                const char *q = memchr(u, '\'', (size_t)(end - u));
                if (!q || q + 1 != end || !fhirpath__ucum_valid(u, (size_t)(q - u)))
                    return false;
                out->u.quantity.unit = u;
                out->u.quantity.unit_len = (uint32_t)(q - u);
                return true;
            }
            if (fhirpath__calendar_unit(p, (size_t)(end - p), NULL) < 0)
                return false;
            out->u.quantity.unit = p;
            out->u.quantity.unit_len = (uint32_t)(end - p);
            out->u.quantity.calendar = true;
            return true;
        }
        default: return false;
        }
    default: return false;
    }
}

static int conversion_kind(const char *name)
{
    const char *t = strncmp(name, "to", 2) == 0 ? name + 2 : name + 10; /* convertsTo */
    static const struct {
        const char *name;
        int kind;
    } kinds[] = {{"Boolean", FHIRPATH_BOOLEAN}, {"Integer", FHIRPATH_INTEGER},
                 {"Decimal", FHIRPATH_DECIMAL}, {"String", FHIRPATH_STRING},
                 {"Date", FHIRPATH_DATE},       {"DateTime", FHIRPATH_DATETIME},
                 {"Time", FHIRPATH_TIME},       {"Quantity", FHIRPATH_QUANTITY}};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(kinds[i].name, t) == 0)
            return kinds[i].kind;
    return -1;
}

/* toQuantity(unit): converts to the unit when it is comparable */
static bool to_unit(fp_eval_t *ev, fp_item_t *q, const char *unit, size_t len)
{
    fp_quantity_t target = {{0, 0}, unit, (uint32_t)len, false};
    if (fhirpath__calendar_unit(unit, len, NULL) >= 0 && !fhirpath__ucum_valid(unit, len))
        target.calendar = true;
    fp_quantity_t r;
    if (!fhirpath__quantity_add(&target, &q->u.quantity, false, ev->arena, &r))
        return false;
    q->u.quantity = r;
    return true;
}

static status_t conversion(fp_eval_t *ev, const fp_frame_t *frame, const fp_ast_t *call,
                           const fp_coll_t *input, bool test, fp_coll_t *out)
{
    const fp_item_t *v;
    status_t rc = input_single(ev, call, input, &v);
    if (rc || !v)
        return rc;
    int kind = conversion_kind(call->name);
    fp_item_t r;
    bool ok = convert(ev, v, kind, &r);
    if (ok && kind == FHIRPATH_QUANTITY && call->nargs == 1) {
        const char *unit;
        size_t len;
        if ((rc = arg_string(ev, frame, call, 0, &unit, &len)))
            return rc;
        ok = unit && to_unit(ev, &r, unit, len);
    }
    if (test)
        fhirpath__push_boolean(ev, out, ok);
    else if (ok)
        fhirpath__coll_push(ev, out, &r);
    return ERR_OK;
}

FN(to)
{
    return conversion(ev, frame, call, input, false, out);
}

FN(convertsTo)
{
    return conversion(ev, frame, call, input, true, out);
}

bool fhirpath__item_to_string(fp_eval_t *ev, const fp_item_t *item, const char **out,
                              size_t *out_len)
{
    fp_item_t v;
    if (!fhirpath__system_value(item, &v))
        return false;
    buf_t b = BUF_INIT;
    switch (v.kind) {
    case FHIRPATH_STRING:
        *out = v.u.string.ptr;
        *out_len = v.u.string.len;
        return true;
    case FHIRPATH_BOOLEAN:
        *out = v.u.boolean ? "true" : "false";
        *out_len = strlen(*out);
        return true;
    case FHIRPATH_INTEGER: buf_addf(&b, "%lld", (long long)v.u.integer); break;
    case FHIRPATH_DECIMAL: fhirpath__decimal_text(v.u.decimal, &b); break;
    case FHIRPATH_DATE:
    case FHIRPATH_DATETIME:
    case FHIRPATH_TIME: fhirpath__temporal_text(&v.u.temporal, (fhirpath_kind_t)v.kind, &b); break;
    case FHIRPATH_QUANTITY: fhirpath__quantity_text(&v.u.quantity, &b); break;
    default: return false;
    }
    *out = arena_strndup(ev->arena, b.ptr, b.len);
    *out_len = b.len;
    buf_release(&b);
    return true;
}

/* ---- strings (positions count characters, not bytes) ---- */

static size_t utf8_count(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            count++;
    return count;
}

/* Byte offset of character index chars (clamped to n). */
static size_t utf8_offset(const char *s, size_t n, size_t chars)
{
    size_t i = 0;
    while (i < n && chars > 0) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        chars--;
    }
    return i;
}

static const char *find(const char *hay, size_t hn, const char *needle, size_t nn)
{
    if (nn == 0)
        return hay;
    if (nn > hn)
        return NULL;
    for (size_t i = 0; i + nn <= hn; i++)
        if (memcmp(hay + i, needle, nn) == 0)
            return hay + i;
    return NULL;
}

FN(indexOf)
{
    const char *s, *sub;
    size_t n, sn;
    status_t rc;
    if ((rc = input_string(ev, call, input, &s, &n)) || !s ||
        (rc = arg_string(ev, frame, call, 0, &sub, &sn)) || !sub)
        return rc;
    const char *at = find(s, n, sub, sn);
    fhirpath__push_integer(ev, out, at ? (int64_t)utf8_count(s, (size_t)(at - s)) : -1);
    return ERR_OK;
}

FN(substring)
{
    const char *s;
    size_t n;
    bool has_start, has_length = false;
    int64_t start, length = INT64_MAX;
    status_t rc;
    if ((rc = input_string(ev, call, input, &s, &n)) || !s ||
        (rc = arg_integer(ev, frame, call, 0, &has_start, &start)) || !has_start)
        return rc;
    if (call->nargs > 1 && (rc = arg_integer(ev, frame, call, 1, &has_length, &length)))
        return rc;
    size_t chars = utf8_count(s, n);
    if (start < 0 || (uint64_t)start >= chars)
        return ERR_OK;
    if (!has_length)
        length = INT64_MAX;
    if (length < 0)
        length = 0;
    size_t from = utf8_offset(s, n, (size_t)start);
    size_t to = (uint64_t)length >= chars ? n : utf8_offset(s, n, (size_t)start + (size_t)length);
    fhirpath__push_string(ev, out, arena_strndup(ev->arena, s + from, to - from), to - from);
    return ERR_OK;
}

static status_t affix(fp_eval_t *ev, const fp_frame_t *frame, const fp_ast_t *call,
                      const fp_coll_t *input, int which, fp_coll_t *out)
{
    const char *s, *a;
    size_t n, an;
    status_t rc;
    if ((rc = input_string(ev, call, input, &s, &n)) || !s ||
        (rc = arg_string(ev, frame, call, 0, &a, &an)) || !a)
        return rc;
    bool r;
    if (which == 0)
        r = an <= n && memcmp(s, a, an) == 0;
    else if (which == 1)
        r = an <= n && memcmp(s + n - an, a, an) == 0;
    else
        r = find(s, n, a, an) != NULL;
    fhirpath__push_boolean(ev, out, r);
    return ERR_OK;
}

FN(startsWith)
{
    return affix(ev, frame, call, input, 0, out);
}

FN(endsWith)
{
    return affix(ev, frame, call, input, 1, out);
}

FN(contains)
{
    return affix(ev, frame, call, input, 2, out);
}

static status_t change_case(fp_eval_t *ev, const fp_ast_t *call, const fp_coll_t *input, bool upper,
                            fp_coll_t *out)
{
    const char *s;
    size_t n;
    status_t rc = input_string(ev, call, input, &s, &n);
    if (rc || !s)
        return rc;
    char *r = arena_strndup(ev->arena, s, n);
    for (size_t i = 0; i < n; i++)
        r[i] = (char)(upper ? toupper((unsigned char)r[i]) : tolower((unsigned char)r[i]));
    fhirpath__push_string(ev, out, r, n);
    return ERR_OK;
}

FN(upper)
{
    (void)frame;
    return change_case(ev, call, input, true, out);
}

FN(lower)
{
    (void)frame;
    return change_case(ev, call, input, false, out);
}

FN(replace)
{
    const char *s, *pattern, *with;
    size_t n, pn, wn;
    status_t rc;
    if ((rc = input_string(ev, call, input, &s, &n)) || !s ||
        (rc = arg_string(ev, frame, call, 0, &pattern, &pn)) || !pattern ||
        (rc = arg_string(ev, frame, call, 1, &with, &wn)) || !with)
        return rc;
    buf_t b = BUF_INIT;
    if (pn == 0) {
        buf_add(&b, with, wn);
        for (size_t i = 0; i < n;) {
            size_t next = utf8_offset(s + i, n - i, 1);
            buf_add(&b, s + i, next);
            buf_add(&b, with, wn);
            i += next;
        }
    } else {
        const char *p = s, *end = s + n;
        while (p < end) {
            const char *at = find(p, (size_t)(end - p), pattern, pn);
            if (!at) {
                buf_add(&b, p, (size_t)(end - p));
                break;
            }
            buf_add(&b, p, (size_t)(at - p));
            buf_add(&b, with, wn);
            p = at + pn;
        }
    }
    fhirpath__push_string(ev, out, arena_strndup(ev->arena, b.ptr, b.len), b.len);
    buf_release(&b);
    return ERR_OK;
}

static void regex_cleanup(void *re)
{
    fhirpath__regex_free(re);
}

static status_t regex_arg(fp_eval_t *ev, const fp_frame_t *frame, const fp_ast_t *call,
                          fp_regex_t **out)
{
    const char *pattern;
    size_t pn;
    *out = NULL;
    status_t rc = arg_string(ev, frame, call, 0, &pattern, &pn);
    if (rc || !pattern)
        return rc;
    const char *error = NULL;
    fp_regex_t *re = fhirpath__regex_compile(pattern, pn, ev->arena, &error);
    if (!re)
        return fhirpath__fail(ev, call->args[0], "invalid regular expression \"%s\": %s", pattern,
                              error ? error : "not supported");
    arena_cleanup_add(ev->arena, regex_cleanup, re);
    *out = re;
    return ERR_OK;
}

FN(matches)
{
    const char *s;
    size_t n;
    fp_regex_t *re;
    status_t rc;
    if ((rc = input_string(ev, call, input, &s, &n)) || !s ||
        (rc = regex_arg(ev, frame, call, &re)) || !re)
        return rc;
    size_t gs[10], ge[10];
    bool set[10];
    char *subject = arena_strndup(ev->arena, s, n);
    fhirpath__push_boolean(ev, out, fhirpath__regex_search(re, subject, 0, gs, ge, set));
    return ERR_OK;
}

FN(replaceMatches)
{
    const char *s, *with;
    size_t n, wn;
    fp_regex_t *re;
    status_t rc;
    if ((rc = input_string(ev, call, input, &s, &n)) || !s ||
        (rc = regex_arg(ev, frame, call, &re)) || !re ||
        (rc = arg_string(ev, frame, call, 1, &with, &wn)) || !with)
        return rc;
    char *subject = arena_strndup(ev->arena, s, n);
    buf_t b = BUF_INIT;
    size_t pos = 0;
    size_t gs[10], ge[10];
    bool set[10];
    while (pos <= n && fhirpath__regex_search(re, subject, pos, gs, ge, set)) {
        buf_add(&b, subject + pos, gs[0] - pos);
        for (size_t i = 0; i < wn; i++) {
            if (with[i] == '$' && i + 1 < wn && with[i + 1] >= '0' && with[i + 1] <= '9') {
                int g = with[i + 1] - '0';
                if (set[g])
                    buf_add(&b, subject + gs[g], ge[g] - gs[g]);
                i++;
            } else {
                buf_addch(&b, with[i]);
            }
        }
        if (ge[0] == gs[0]) {
            /* an empty match: copy one character and move on */
            if (gs[0] < n) {
                size_t step = utf8_offset(subject + gs[0], n - gs[0], 1);
                buf_add(&b, subject + gs[0], step);
                pos = gs[0] + step;
            } else {
                pos = n + 1;
            }
        } else {
            pos = ge[0];
        }
    }
    if (pos < n)
        buf_add(&b, subject + pos, n - pos);
    fhirpath__push_string(ev, out, arena_strndup(ev->arena, b.ptr, b.len), b.len);
    buf_release(&b);
    return ERR_OK;
}

FN(length)
{
    (void)frame;
    const char *s;
    size_t n;
    status_t rc = input_string(ev, call, input, &s, &n);
    if (!rc && s)
        fhirpath__push_integer(ev, out, (int64_t)utf8_count(s, n));
    return rc;
}

FN(toChars)
{
    (void)frame;
    const char *s;
    size_t n;
    status_t rc = input_string(ev, call, input, &s, &n);
    if (rc || !s)
        return rc;
    for (size_t i = 0; i < n;) {
        size_t step = utf8_offset(s + i, n - i, 1);
        fhirpath__push_string(ev, out, arena_strndup(ev->arena, s + i, step), step);
        i += step;
    }
    return ERR_OK;
}

FN(trim)
{
    (void)frame;
    const char *s;
    size_t n;
    status_t rc = input_string(ev, call, input, &s, &n);
    if (rc || !s)
        return rc;
    while (n && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    fhirpath__push_string(ev, out, arena_strndup(ev->arena, s, n), n);
    return ERR_OK;
}

FN(split)
{
    const char *s, *sep;
    size_t n, sn;
    status_t rc;
    if ((rc = input_string(ev, call, input, &s, &n)) || !s ||
        (rc = arg_string(ev, frame, call, 0, &sep, &sn)) || !sep)
        return rc;
    const char *p = s, *end = s + n;
    while (1) {
        const char *at = sn ? find(p, (size_t)(end - p), sep, sn) : NULL;
        const char *stop = at ? at : end;
        fhirpath__push_string(ev, out, arena_strndup(ev->arena, p, (size_t)(stop - p)),
                              (size_t)(stop - p));
        if (!at)
            break;
        p = at + sn;
    }
    return ERR_OK;
}

FN(join)
{
    const char *sep = "";
    size_t sn = 0;
    status_t rc;
    if (call->nargs && (rc = arg_string(ev, frame, call, 0, &sep, &sn)))
        return rc;
    if (!sep) {
        sep = "";
        sn = 0;
    }
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < input->count; i++) {
        size_t len;
        const char *s = fhirpath__string_of(&input->items[i], &len);
        if (!s) {
            buf_release(&b);
            return fhirpath__fail(ev, call, "join() expects Strings");
        }
        if (i)
            buf_add(&b, sep, sn);
        buf_add(&b, s, len);
    }
    fhirpath__push_string(ev, out, arena_strndup(ev->arena, b.ptr, b.len), b.len);
    buf_release(&b);
    return ERR_OK;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

static status_t codec(fp_eval_t *ev, const fp_frame_t *frame, const fp_ast_t *call,
                      const fp_coll_t *input, bool encode, fp_coll_t *out)
{
    const char *s, *format;
    size_t n, fn;
    status_t rc;
    if ((rc = input_string(ev, call, input, &s, &n)) || !s ||
        (rc = arg_string(ev, frame, call, 0, &format, &fn)) || !format)
        return rc;
    buf_t b = BUF_INIT;
    bool url = strcmp(format, "urlbase64") == 0;
    if (strcmp(format, "hex") == 0) {
        if (encode) {
            for (size_t i = 0; i < n; i++)
                buf_addf(&b, "%02x", (unsigned char)s[i]);
        } else {
            if (n % 2)
                goto bad;
            for (size_t i = 0; i < n; i += 2) {
                int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);
                if (hi < 0 || lo < 0)
                    goto bad;
                buf_addch(&b, (char)(hi * 16 + lo));
            }
        }
    } else if (url || strcmp(format, "base64") == 0) {
        if (encode) {
            for (size_t i = 0; i < n; i += 3) {
                unsigned v = (unsigned char)s[i] << 16;
                if (i + 1 < n)
                    v |= (unsigned char)s[i + 1] << 8;
                if (i + 2 < n)
                    v |= (unsigned char)s[i + 2];
                char quad[4] = {b64[(v >> 18) & 63], b64[(v >> 12) & 63],
                                i + 1 < n ? b64[(v >> 6) & 63] : '=',
                                i + 2 < n ? b64[v & 63] : '='};
                for (int k = 0; k < 4 && url; k++)
                    quad[k] = quad[k] == '+' ? '-' : quad[k] == '/' ? '_' : quad[k];
                buf_add(&b, quad, 4);
            }
        } else {
            unsigned v = 0;
            int bits = 0;
            for (size_t i = 0; i < n; i++) {
                if (s[i] == '=')
                    break;
                int d = b64_value(s[i], url);
                if (d < 0)
                    goto bad;
                v = (v << 6) | (unsigned)d;
                bits += 6;
                if (bits >= 8) {
                    bits -= 8;
                    buf_addch(&b, (char)((v >> bits) & 0xFF));
                }
            }
        }
    } else {
        buf_release(&b);
        return fhirpath__fail(ev, call, "unknown encoding '%s'", format);
    }
    if (!jv_utf8_valid(b.ptr, b.len) || memchr(b.ptr, '\0', b.len))
        goto bad;
    fhirpath__push_string(ev, out, arena_strndup(ev->arena, b.ptr, b.len), b.len);
bad:
    buf_release(&b);
    return ERR_OK;
}

FN(encode)
{
    return codec(ev, frame, call, input, true, out);
}

FN(decode)
{
    return codec(ev, frame, call, input, false, out);
}

static status_t escaping(fp_eval_t *ev, const fp_frame_t *frame, const fp_ast_t *call,
                         const fp_coll_t *input, bool escape, fp_coll_t *out)
{
    const char *s, *format;
    size_t n, fn;
    status_t rc;
    if ((rc = input_string(ev, call, input, &s, &n)) || !s ||
        (rc = arg_string(ev, frame, call, 0, &format, &fn)) || !format)
        return rc;
    bool html = strcmp(format, "html") == 0;
    if (!html && strcmp(format, "json") != 0)
        return fhirpath__fail(ev, call, "unknown escaping '%s'", format);
    static const struct {
        char c;
        const char *entity;
    } entities[] = {{'&', "&amp;"}, {'<', "&lt;"}, {'>', "&gt;"}, {'"', "&quot;"}, {'\'', "&#39;"}};
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (escape && html) {
            size_t k;
            for (k = 0; k < 5 && entities[k].c != c; k++)
                ;
            if (k < 5)
                buf_addstr(&b, entities[k].entity);
            else
                buf_addch(&b, c);
        } else if (escape) {
            if (c == '"' || c == '\\')
                buf_addch(&b, '\\');
            buf_addch(&b, c);
        } else if (html && c == '&') {
            size_t k;
            for (k = 0; k < 5; k++) {
                size_t el = strlen(entities[k].entity);
                if (n - i >= el && memcmp(s + i, entities[k].entity, el) == 0)
                    break;
            }
            if (k < 5) {
                buf_addch(&b, entities[k].c);
                i += strlen(entities[k].entity) - 1;
            } else {
                buf_addch(&b, c);
            }
        } else if (!html && c == '\\' && i + 1 < n) {
            char e = s[++i];
            buf_addch(&b, e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e);
        } else {
            buf_addch(&b, c);
        }
    }
    fhirpath__push_string(ev, out, arena_strndup(ev->arena, b.ptr, b.len), b.len);
    buf_release(&b);
    return ERR_OK;
}

FN(escape)
{
    return escaping(ev, frame, call, input, true, out);
}

FN(unescape)
{
    return escaping(ev, frame, call, input, false, out);
}

/* ---- math ---- */

static status_t input_number(fp_eval_t *ev, const fp_ast_t *call, const fp_coll_t *input,
                             const fp_item_t **out)
{
    status_t rc = input_single(ev, call, input, out);
    if (rc || !*out)
        return rc;
    int k = (*out)->kind;
    if (k != FHIRPATH_INTEGER && k != FHIRPATH_DECIMAL &&
        !(k == FHIRPATH_QUANTITY && strcmp(call->name, "abs") == 0))
        return want(ev, call, *out, "a number");
    return ERR_OK;
}

static fp_decimal_t to_dec(const fp_item_t *v)
{
    return v->kind == FHIRPATH_INTEGER ? fhirpath__decimal_from_int(v->u.integer) : v->u.decimal;
}

FN(abs)
{
    (void)frame;
    const fp_item_t *v;
    status_t rc = input_number(ev, call, input, &v);
    if (rc || !v)
        return rc;
    fp_item_t r = *v;
    if (r.kind == FHIRPATH_INTEGER) {
        if (r.u.integer == INT64_MIN)
            return ERR_OK;
        r.u.integer = r.u.integer < 0 ? -r.u.integer : r.u.integer;
    } else if (r.kind == FHIRPATH_DECIMAL) {
        if (r.u.decimal.coef < 0)
            r.u.decimal = fhirpath__decimal_neg(r.u.decimal);
    } else if (r.u.quantity.value.coef < 0) {
        r.u.quantity.value = fhirpath__decimal_neg(r.u.quantity.value);
    }
    fhirpath__coll_push(ev, out, &r);
    return ERR_OK;
}

static status_t rounding(fp_eval_t *ev, const fp_ast_t *call, const fp_coll_t *input, int mode,
                         fp_coll_t *out)
{
    const fp_item_t *v;
    status_t rc = input_number(ev, call, input, &v);
    if (rc || !v)
        return rc;
    if (v->kind == FHIRPATH_INTEGER) {
        fhirpath__coll_push(ev, out, v);
        return ERR_OK;
    }
    fp_decimal_t d = mode == 0   ? fhirpath__decimal_ceil(v->u.decimal)
                     : mode == 1 ? fhirpath__decimal_floor(v->u.decimal)
                                 : fhirpath__decimal_trunc(v->u.decimal);
    int64_t i;
    if (fhirpath__decimal_to_int64(d, &i))
        fhirpath__push_integer(ev, out, i);
    return ERR_OK;
}

FN(ceiling)
{
    (void)frame;
    return rounding(ev, call, input, 0, out);
}

FN(floor)
{
    (void)frame;
    return rounding(ev, call, input, 1, out);
}

FN(truncate)
{
    (void)frame;
    return rounding(ev, call, input, 2, out);
}

FN(round)
{
    const fp_item_t *v;
    bool present = false;
    int64_t digits = 0;
    status_t rc = input_number(ev, call, input, &v);
    if (rc || !v)
        return rc;
    if (call->nargs && (rc = arg_integer(ev, frame, call, 0, &present, &digits)))
        return rc;
    if (digits < 0)
        return fhirpath__fail(ev, call, "round() precision must not be negative");
    if (digits > FP_DECIMAL_MAX_SCALE)
        digits = FP_DECIMAL_MAX_SCALE;
    fhirpath__push_decimal(ev, out, fhirpath__decimal_round(to_dec(v), (int)digits));
    return ERR_OK;
}

static void push_double(fp_eval_t *ev, fp_coll_t *out, double d)
{
    fp_decimal_t r;
    if (fhirpath__decimal_from_double(d, &r))
        fhirpath__push_decimal(ev, out, r);
}

static status_t transcendental(fp_eval_t *ev, const fp_ast_t *call, const fp_coll_t *input,
                               double (*f)(double), fp_coll_t *out)
{
    const fp_item_t *v;
    status_t rc = input_number(ev, call, input, &v);
    if (rc || !v)
        return rc;
    push_double(ev, out, f(fhirpath__decimal_to_double(to_dec(v))));
    return ERR_OK;
}

FN(exp)
{
    (void)frame;
    return transcendental(ev, call, input, exp, out);
}

FN(ln)
{
    (void)frame;
    return transcendental(ev, call, input, log, out);
}

FN(sqrt)
{
    (void)frame;
    const fp_item_t *v;
    status_t rc = input_number(ev, call, input, &v);
    if (rc || !v)
        return rc;
    double d = fhirpath__decimal_to_double(to_dec(v));
    if (d >= 0)
        push_double(ev, out, sqrt(d));
    return ERR_OK;
}

FN(log)
{
    const fp_item_t *v, *base;
    status_t rc = input_number(ev, call, input, &v);
    if (rc || !v || (rc = arg_single(ev, frame, call, 0, &base)) || !base)
        return rc;
    if (base->kind != FHIRPATH_INTEGER && base->kind != FHIRPATH_DECIMAL)
        return fhirpath__fail(ev, call, "log() base must be a number");
    double x = fhirpath__decimal_to_double(to_dec(v));
    double b = fhirpath__decimal_to_double(to_dec(base));
    if (x > 0 && b > 0 && b != 1)
        push_double(ev, out, log(x) / log(b));
    return ERR_OK;
}

FN(power)
{
    const fp_item_t *v, *e;
    status_t rc = input_number(ev, call, input, &v);
    if (rc || !v || (rc = arg_single(ev, frame, call, 0, &e)) || !e)
        return rc;
    if (e->kind != FHIRPATH_INTEGER && e->kind != FHIRPATH_DECIMAL)
        return fhirpath__fail(ev, call, "power() exponent must be a number");
    if (e->kind == FHIRPATH_INTEGER && e->u.integer >= 0 && e->u.integer <= 1000) {
        if (v->kind == FHIRPATH_INTEGER) {
            int64_t r = 1;
            for (int64_t i = 0; i < e->u.integer; i++)
                if (__builtin_mul_overflow(r, v->u.integer, &r))
                    return ERR_OK;
            fhirpath__push_integer(ev, out, r);
            return ERR_OK;
        }
        fp_decimal_t r = fhirpath__decimal_from_int(1);
        for (int64_t i = 0; i < e->u.integer; i++)
            if (!fhirpath__decimal_mul(r, v->u.decimal, &r))
                return ERR_OK;
        fhirpath__push_decimal(ev, out, r);
        return ERR_OK;
    }
    double r = pow(fhirpath__decimal_to_double(to_dec(v)), fhirpath__decimal_to_double(to_dec(e)));
    if (isfinite(r))
        push_double(ev, out, r);
    return ERR_OK;
}

/* ---- tree navigation ---- */

FN(children)
{
    (void)frame;
    (void)call;
    for (size_t i = 0; i < input->count; i++)
        if (input->items[i].kind == FHIRPATH_NODE)
            fhirpath__children(ev, input->items[i].u.node, out);
    return ERR_OK;
}

FN(descendants)
{
    (void)frame;
    fp_coll_t work = *input;
    while (work.count) {
        fp_coll_t next;
        fhirpath__coll_init(&next);
        for (size_t i = 0; i < work.count; i++)
            if (work.items[i].kind == FHIRPATH_NODE)
                fhirpath__children(ev, work.items[i].u.node, &next);
        fhirpath__coll_append(ev, out, &next);
        if (ev->budget > FHIRPATH_MAX_ITEMS)
            return fhirpath__fail(ev, call, "descendants() made more than %zu items",
                                  FHIRPATH_MAX_ITEMS);
        work = next;
    }
    return ERR_OK;
}

/* ---- utility ---- */

FN(trace)
{
    const char *label;
    size_t ln;
    status_t rc = arg_string(ev, frame, call, 0, &label, &ln);
    if (rc)
        return rc;
    fhirpath__coll_append(ev, out, input);
    if (!ev->env->trace)
        return ERR_OK;
    fp_coll_t shown = *input;
    if (call->nargs > 1) {
        fhirpath__coll_init(&shown);
        for (size_t i = 0; i < input->count; i++) {
            fp_coll_t c;
            if ((rc = arg_for(ev, frame, call, 1, &input->items[i], i, &c)))
                return rc;
            fhirpath__coll_append(ev, &shown, &c);
        }
    }
    json_t *items = fhirpath_result_to_json(&shown);
    ev->env->trace(ev->env->trace_data, label ? label : "", items);
    json_decref(items);
    return ERR_OK;
}

FN(now)
{
    (void)frame;
    (void)call;
    (void)input;
    fp_item_t it = {.kind = FHIRPATH_DATETIME};
    fhirpath__now(ev, &it.u.temporal);
    fhirpath__coll_push(ev, out, &it);
    return ERR_OK;
}

FN(today)
{
    (void)frame;
    (void)call;
    (void)input;
    fp_item_t it = {.kind = FHIRPATH_DATE};
    fhirpath__now(ev, &it.u.temporal);
    it.u.temporal.precision = FP_PREC_DAY;
    it.u.temporal.has_tz = false;
    fhirpath__coll_push(ev, out, &it);
    return ERR_OK;
}

FN(timeOfDay)
{
    (void)frame;
    (void)call;
    (void)input;
    fp_item_t it = {.kind = FHIRPATH_TIME};
    fhirpath__now(ev, &it.u.temporal);
    it.u.temporal.year = 0;
    it.u.temporal.month = it.u.temporal.day = 0;
    it.u.temporal.has_tz = false;
    fhirpath__coll_push(ev, out, &it);
    return ERR_OK;
}

FN(aggregate)
{
    fp_coll_t total;
    fhirpath__coll_init(&total);
    status_t rc;
    if (call->nargs > 1 && (rc = arg(ev, frame, call, 1, &total)))
        return rc;
    for (size_t i = 0; i < input->count; i++) {
        fp_frame_t inner = {0};
        inner.outer = frame;
        inner.this_item = &input->items[i];
        inner.index = (int64_t)i;
        inner.total = &total;
        fp_coll_t next;
        fhirpath__coll_init(&next);
        if ((rc = fhirpath__eval_node(ev, &inner, call->args[0], &next)))
            return rc;
        total = next;
    }
    fhirpath__coll_append(ev, out, &total);
    return ERR_OK;
}

/* ---- FHIR additions ---- */

FN(extension)
{
    const char *url;
    size_t un;
    status_t rc = arg_string(ev, frame, call, 0, &url, &un);
    if (rc || !url)
        return rc;
    for (size_t i = 0; i < input->count; i++) {
        fp_coll_t ext;
        fhirpath__coll_init(&ext);
        fhirpath__member(ev, &input->items[i], "extension", 9, &ext);
        for (size_t k = 0; k < ext.count; k++) {
            json_t *j = ext.items[k].u.node->json;
            json_t *u = json_object_get(j, "url");
            if (jv_is_string(u) && json_string_length(u) == un &&
                memcmp(json_string_value(u), url, un) == 0)
                fhirpath__coll_push(ev, out, &ext.items[k]);
        }
    }
    return ERR_OK;
}

/* Not in FHIRPath 2.0, but an R4 search parameter (questionnaireresponse-item-subject) uses
 * it: extension(url).exists(). */
FN(hasExtension)
{
    fp_coll_t found;
    fhirpath__coll_init(&found);
    status_t rc = fn_extension(ev, frame, call, input, &found);
    if (!rc)
        fhirpath__push_boolean(ev, out, found.count > 0);
    return rc;
}

static bool is_primitive_node(const fp_item_t *item)
{
    if (item->kind != FHIRPATH_NODE)
        return false;
    const fp_node_t *n = item->u.node;
    if (n->type)
        return n->type->kind == FHIR_KIND_PRIMITIVE;
    return !json_is_object(n->json) && !json_is_array(n->json);
}

FN(hasValue)
{
    (void)frame;
    (void)call;
    bool r = input->count == 1 && is_primitive_node(&input->items[0]) &&
             input->items[0].u.node->json != NULL;
    fhirpath__push_boolean(ev, out, r);
    return ERR_OK;
}

FN(getValue)
{
    (void)frame;
    (void)call;
    if (input->count != 1 || !is_primitive_node(&input->items[0]))
        return ERR_OK;
    fp_item_t v;
    if (fhirpath__system_value(&input->items[0], &v) && v.kind != FHIRPATH_NODE)
        fhirpath__coll_push(ev, out, &v);
    return ERR_OK;
}

FN(htmlChecks)
{
    (void)frame;
    (void)call;
    /* the narrative must be a div without active content */
    bool ok = true;
    for (size_t i = 0; i < input->count && ok; i++) {
        size_t n;
        const char *s = fhirpath__string_of(&input->items[i], &n);
        if (!s)
            continue;
        ok = n >= 4 && strncmp(s, "<div", 4) == 0;
        for (size_t k = 0; k + 7 <= n && ok; k++)
            if (strncasecmp(s + k, "<script", 7) == 0 || strncasecmp(s + k, " onload", 7) == 0 ||
                strncasecmp(s + k, " onclic", 7) == 0)
                ok = false;
    }
    fhirpath__push_boolean(ev, out, ok);
    return ERR_OK;
}

#define SD_BASE "http://hl7.org/fhir/StructureDefinition/"

FN(conformsTo)
{
    const char *url;
    size_t un;
    status_t rc = arg_string(ev, frame, call, 0, &url, &un);
    if (rc || !url)
        return rc;
    size_t bl = strlen(SD_BASE);
    const char *type_name = un > bl && strncmp(url, SD_BASE, bl) == 0 ? url + bl : NULL;
    bool known = type_name && fhirpath__model_type(type_name, strlen(type_name));
    if (!known)
        return fhirpath__fail(ev, call->args[0],
                              "cannot check conformance to \"%s\": only the base definitions "
                              "of FHIR R4 are known",
                              url);
    fp_typespec_t spec = {NULL, type_name, -1};
    for (size_t i = 0; i < input->count; i++)
        fhirpath__push_boolean(ev, out, fhirpath__is_type(&input->items[i], &spec));
    return ERR_OK;
}

/* The reference text of a Reference node or a uri-ish string. */
static const char *reference_of(const fp_item_t *item, size_t *out_len)
{
    if (item->kind == FHIRPATH_NODE && json_is_object(item->u.node->json)) {
        json_t *r = json_object_get(item->u.node->json, "reference");
        if (!jv_is_string(r))
            return NULL;
        *out_len = json_string_length(r);
        return json_string_value(r);
    }
    return fhirpath__string_of(item, out_len);
}

static bool str_eq(json_t *j, const char *s, size_t n)
{
    return jv_is_string(j) && json_string_length(j) == n && memcmp(json_string_value(j), s, n) == 0;
}

/* "Type/id" (optionally after a base URL and before /_history) matches resource r. */
static bool reference_names(json_t *r, const char *ref, size_t n)
{
    const char *hist = NULL;
    for (size_t i = 0; i + 10 <= n; i++)
        if (memcmp(ref + i, "/_history/", 10) == 0)
            hist = ref + i;
    if (hist)
        n = (size_t)(hist - ref);
    json_t *type = json_object_get(r, "resourceType"), *id = json_object_get(r, "id");
    if (!jv_is_string(type) || !jv_is_string(id))
        return false;
    size_t tl = json_string_length(type), il = json_string_length(id);
    if (n < tl + il + 1)
        return false;
    const char *tail = ref + n - (tl + il + 1);
    if (tail > ref && tail[-1] != '/')
        return false;
    return memcmp(tail, json_string_value(type), tl) == 0 && tail[tl] == '/' &&
           memcmp(tail + tl + 1, json_string_value(id), il) == 0;
}

static json_t *find_in_bundle(json_t *bundle, const char *ref, size_t n)
{
    if (!json_is_object(bundle) || !str_eq(json_object_get(bundle, "resourceType"), "Bundle", 6))
        return NULL;
    json_t *entries = json_object_get(bundle, "entry");
    for (size_t i = 0; i < json_array_size(entries); i++) {
        json_t *entry = json_array_get(entries, i);
        json_t *resource = json_object_get(entry, "resource");
        if (!json_is_object(resource))
            continue;
        if (str_eq(json_object_get(entry, "fullUrl"), ref, n) || reference_names(resource, ref, n))
            return resource;
    }
    return NULL;
}

status_t fhirpath_resolve_shallow(void *data, const char *reference, size_t len,
                                  json_t **out_resource, err_t *err)
{
    (void)data;
    (void)err;
    *out_resource = NULL;
    for (size_t i = 0; i + 10 <= len; i++) {
        if (memcmp(reference + i, "/_history/", 10) == 0) {
            len = i;
            break;
        }
    }
    /* the last two segments: Type/id */
    size_t slash = len;
    while (slash > 0 && reference[slash - 1] != '/')
        slash--;
    if (slash < 2 || slash == len || len - slash > 64)
        return ERR_OK;
    const char *id = reference + slash;
    size_t id_len = len - slash;
    for (size_t i = 0; i < id_len; i++)
        if (!isalnum((unsigned char)id[i]) && id[i] != '-' && id[i] != '.')
            return ERR_OK;
    size_t type_start = slash - 1;
    while (type_start > 0 && reference[type_start - 1] != '/')
        type_start--;
    const fhir_type_t *type =
        fhirpath__model_resource_type(reference + type_start, slash - 1 - type_start);
    if (!type)
        return ERR_OK;
    *out_resource = json_object();
    json_object_set_new(*out_resource, "resourceType", json_string(type->name));
    json_object_set_new(*out_resource, "id", json_stringn(id, id_len));
    return ERR_OK;
}

static void resource_cleanup(void *json)
{
    json_decref(json);
}

FN(resolve)
{
    (void)frame;
    (void)call;
    for (size_t i = 0; i < input->count; i++) {
        size_t n;
        const char *ref = reference_of(&input->items[i], &n);
        if (!ref || n == 0)
            continue;
        json_t *found = NULL;
        const char *name = NULL;
        json_t *container = ev->resource.count && ev->resource.items[0].kind == FHIRPATH_NODE
                                ? ev->resource.items[0].u.node->json
                                : NULL;
        if (ref[0] == '#') {
            /* contained in %resource, or in the container of a contained %resource */
            json_t *root =
                ev->root_resource.count && ev->root_resource.items[0].kind == FHIRPATH_NODE
                    ? ev->root_resource.items[0].u.node->json
                    : NULL;
            if (root && str_eq(json_object_get(root, "resourceType"), "Bundle", 6))
                root = NULL;
            json_t *holders[2] = {container, root != container ? root : NULL};
            for (int h = 0; h < 2 && !found; h++) {
                if (!holders[h])
                    continue;
                if (n == 1) {
                    found = holders[h];
                    break;
                }
                json_t *contained = json_object_get(holders[h], "contained");
                for (size_t k = 0; k < json_array_size(contained) && !found; k++) {
                    json_t *c = json_array_get(contained, k);
                    if (str_eq(json_object_get(c, "id"), ref + 1, n - 1))
                        found = c;
                }
            }
            name = "contained";
        } else {
            json_t *root =
                ev->root_resource.count && ev->root_resource.items[0].kind == FHIRPATH_NODE
                    ? ev->root_resource.items[0].u.node->json
                    : NULL;
            found = find_in_bundle(root, ref, n);
            if (!found && container != root)
                found = find_in_bundle(container, ref, n);
            if (!found && ev->env->resolve) {
                json_t *fetched = NULL;
                status_t rc = ev->env->resolve(ev->env->resolve_data, ref, n, &fetched, ev->err);
                if (rc)
                    return rc;
                if (fetched) {
                    arena_cleanup_add(ev->arena, resource_cleanup, fetched);
                    found = fetched;
                }
            }
        }
        if (json_is_object(found)) {
            fp_item_t it = {.kind = FHIRPATH_NODE};
            it.u.node = fhirpath__root_node(ev, found, name);
            fhirpath__coll_push(ev, out, &it);
        }
    }
    return ERR_OK;
}

FN(memberOf)
{
    const char *url;
    size_t un;
    status_t rc = arg_string(ev, frame, call, 0, &url, &un);
    if (rc || !url)
        return rc;
    const fp_item_t *v;
    if ((rc = input_single(ev, call, input, &v)) || !v)
        return rc;
    if (!ev->env->member_of)
        return fhirpath__fail(ev, call, "memberOf() needs a terminology service, and none is set");
    /* collect (system, code) pairs: a code, a Coding, or a CodeableConcept's codings */
    const fp_item_t *item = &input->items[0];
    int result = 0;
    bool unknown = false;
    json_t *j = item->kind == FHIRPATH_NODE ? item->u.node->json : NULL;
    json_t *codings = NULL;
    if (json_is_object(j)) {
        codings = json_object_get(j, "coding");
        if (!codings && json_object_get(j, "code")) {
            codings = json_array();
            json_array_append(codings, j);
            arena_cleanup_add(ev->arena, resource_cleanup, codings);
        }
    }
    if (codings) {
        for (size_t i = 0; i < json_array_size(codings) && result != 1; i++) {
            json_t *c = json_array_get(codings, i);
            json_t *code = json_object_get(c, "code"), *system = json_object_get(c, "system");
            if (!jv_is_string(code))
                continue;
            int m = -1;
            if ((rc = ev->env->member_of(ev->env->member_of_data, url,
                                         jv_is_string(system) ? json_string_value(system) : NULL,
                                         json_string_value(code), &m, ev->err)))
                return rc;
            if (m == 1)
                result = 1;
            else if (m < 0)
                unknown = true;
        }
    } else if (v->kind == FHIRPATH_STRING) {
        int m = -1;
        if ((rc = ev->env->member_of(ev->env->member_of_data, url, NULL, v->u.string.ptr, &m,
                                     ev->err)))
            return rc;
        result = m == 1;
        unknown = m < 0;
    } else {
        return want(ev, call, v, "a code, Coding or CodeableConcept");
    }
    if (result == 1 || !unknown)
        fhirpath__push_boolean(ev, out, result == 1);
    return ERR_OK;
}

/* ---- the table ---- */

static const fp_function_t functions[] = {
    /* name, min, max, type_arg, iterates, fn */
    {"abs", 0, 0, false, false, fn_abs},
    {"aggregate", 1, 2, false, true, fn_aggregate},
    {"all", 1, 1, false, true, fn_all},
    {"allFalse", 0, 0, false, false, fn_allFalse},
    {"allTrue", 0, 0, false, false, fn_allTrue},
    {"anyFalse", 0, 0, false, false, fn_anyFalse},
    {"anyTrue", 0, 0, false, false, fn_anyTrue},
    {"as", 1, 1, true, false, fn_as},
    {"ceiling", 0, 0, false, false, fn_ceiling},
    {"children", 0, 0, false, false, fn_children},
    {"combine", 1, 1, false, false, fn_combine},
    {"conformsTo", 1, 1, false, false, fn_conformsTo},
    {"contains", 1, 1, false, false, fn_contains},
    {"convertsToBoolean", 0, 0, false, false, fn_convertsTo},
    {"convertsToDate", 0, 0, false, false, fn_convertsTo},
    {"convertsToDateTime", 0, 0, false, false, fn_convertsTo},
    {"convertsToDecimal", 0, 0, false, false, fn_convertsTo},
    {"convertsToInteger", 0, 0, false, false, fn_convertsTo},
    {"convertsToQuantity", 0, 1, false, false, fn_convertsTo},
    {"convertsToString", 0, 0, false, false, fn_convertsTo},
    {"convertsToTime", 0, 0, false, false, fn_convertsTo},
    {"count", 0, 0, false, false, fn_count},
    {"decode", 1, 1, false, false, fn_decode},
    {"descendants", 0, 0, false, false, fn_descendants},
    {"distinct", 0, 0, false, false, fn_distinct},
    {"empty", 0, 0, false, false, fn_empty},
    {"encode", 1, 1, false, false, fn_encode},
    {"endsWith", 1, 1, false, false, fn_endsWith},
    {"escape", 1, 1, false, false, fn_escape},
    {"exclude", 1, 1, false, false, fn_exclude},
    {"exists", 0, 1, false, true, fn_exists},
    {"exp", 0, 0, false, false, fn_exp},
    {"extension", 1, 1, false, false, fn_extension},
    {"first", 0, 0, false, false, fn_first},
    {"floor", 0, 0, false, false, fn_floor},
    {"getValue", 0, 0, false, false, fn_getValue},
    {"hasExtension", 1, 1, false, false, fn_hasExtension},
    {"hasValue", 0, 0, false, false, fn_hasValue},
    {"htmlChecks", 0, 0, false, false, fn_htmlChecks},
    {"iif", 2, 3, false, false, fn_iif},
    {"indexOf", 1, 1, false, false, fn_indexOf},
    {"intersect", 1, 1, false, false, fn_intersect},
    {"is", 1, 1, true, false, fn_is},
    {"isDistinct", 0, 0, false, false, fn_isDistinct},
    {"join", 0, 1, false, false, fn_join},
    {"last", 0, 0, false, false, fn_last},
    {"length", 0, 0, false, false, fn_length},
    {"ln", 0, 0, false, false, fn_ln},
    {"log", 1, 1, false, false, fn_log},
    {"lower", 0, 0, false, false, fn_lower},
    {"matches", 1, 1, false, false, fn_matches},
    {"memberOf", 1, 1, false, false, fn_memberOf},
    {"not", 0, 0, false, false, fn_not},
    {"now", 0, 0, false, false, fn_now},
    {"ofType", 1, 1, true, false, fn_ofType},
    {"power", 1, 1, false, false, fn_power},
    {"repeat", 1, 1, false, true, fn_repeat},
    {"replace", 2, 2, false, false, fn_replace},
    {"replaceMatches", 2, 2, false, false, fn_replaceMatches},
    {"resolve", 0, 0, false, false, fn_resolve},
    {"round", 0, 1, false, false, fn_round},
    {"select", 1, 1, false, true, fn_select},
    {"single", 0, 0, false, false, fn_single},
    {"skip", 1, 1, false, false, fn_skip},
    {"split", 1, 1, false, false, fn_split},
    {"sqrt", 0, 0, false, false, fn_sqrt},
    {"startsWith", 1, 1, false, false, fn_startsWith},
    {"subsetOf", 1, 1, false, false, fn_subsetOf},
    {"substring", 1, 2, false, false, fn_substring},
    {"supersetOf", 1, 1, false, false, fn_supersetOf},
    {"tail", 0, 0, false, false, fn_tail},
    {"take", 1, 1, false, false, fn_take},
    {"timeOfDay", 0, 0, false, false, fn_timeOfDay},
    {"toBoolean", 0, 0, false, false, fn_to},
    {"toChars", 0, 0, false, false, fn_toChars},
    {"toDate", 0, 0, false, false, fn_to},
    {"toDateTime", 0, 0, false, false, fn_to},
    {"toDecimal", 0, 0, false, false, fn_to},
    {"toInteger", 0, 0, false, false, fn_to},
    {"toQuantity", 0, 1, false, false, fn_to},
    {"toString", 0, 0, false, false, fn_to},
    {"toTime", 0, 0, false, false, fn_to},
    {"today", 0, 0, false, false, fn_today},
    {"trace", 1, 2, false, false, fn_trace},
    {"trim", 0, 0, false, false, fn_trim},
    {"truncate", 0, 0, false, false, fn_truncate},
    {"type", 0, 0, false, false, fn_type},
    {"unescape", 1, 1, false, false, fn_unescape},
    {"union", 1, 1, false, false, fn_union},
    {"upper", 0, 0, false, false, fn_upper},
    {"where", 1, 1, false, true, fn_where},
};

const fp_function_t *fhirpath__function_find(const char *name, size_t len)
{
    size_t lo = 0, hi = sizeof(functions) / sizeof(functions[0]);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strncmp(functions[mid].name, name, len);
        if (c == 0 && functions[mid].name[len] != '\0')
            c = 1;
        if (c == 0)
            return &functions[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
