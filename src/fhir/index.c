/*
 * index.c - search index extraction: parameters' FHIRPath over a resource, values to rows.
 *
 * Each parameter's expression is compiled once per process (a memo keyed by the expression's
 * text, behind a read-write lock: compiles are rare, lookups many) and evaluated over the
 * resource with fhirpath_resolve_shallow, which answers "Type/id" with a shallow resource of that
 * type, so the `where(resolve() is Patient)` of the R4 expressions works without reading the
 * database. The FHIR type of each item found decides how it becomes rows of the parameter's kind.
 * Rows are distinct within a parameter (a set of their text keys).
 */
#include "fhir/index.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/jv.h"
#include "base/mem.h"
#include "fhir/compartment.h"
#include "fhir/fhirpath.h"
#include "fhir/search_int.h"

/* ---- the memo of compiled expressions ------------------------------------------------ */

typedef struct {
    char *text;
    fhirpath_t *expr; /* NULL: the text does not compile */
} memo_entry_t;

static struct {
    pthread_rwlock_t lock;
    memo_entry_t *slots; /* open addressing, cap a power of two */
    size_t n, cap;
} memo = {.lock = PTHREAD_RWLOCK_INITIALIZER};

static uint64_t hash_text(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static memo_entry_t *memo_find(const char *text, uint64_t h)
{
    if (!memo.cap)
        return NULL;
    for (size_t i = h & (memo.cap - 1);; i = (i + 1) & (memo.cap - 1)) {
        if (!memo.slots[i].text)
            return NULL;
        if (strcmp(memo.slots[i].text, text) == 0)
            return &memo.slots[i];
    }
}

static void memo_insert(char *text, fhirpath_t *expr)
{
    if ((memo.n + 1) * 2 > memo.cap) {
        size_t cap = memo.cap ? memo.cap * 2 : 256;
        memo_entry_t *slots = xcalloc(cap, sizeof(*slots));
        for (size_t k = 0; k < memo.cap; k++) {
            if (!memo.slots[k].text)
                continue;
            size_t i = hash_text(memo.slots[k].text) & (cap - 1);
            while (slots[i].text)
                i = (i + 1) & (cap - 1);
            slots[i] = memo.slots[k];
        }
        free(memo.slots);
        memo.slots = slots;
        memo.cap = cap;
    }
    size_t i = hash_text(text) & (memo.cap - 1);
    while (memo.slots[i].text)
        i = (i + 1) & (memo.cap - 1);
    memo.slots[i].text = text;
    memo.slots[i].expr = expr;
    memo.n++;
}

/* The compiled form of text, compiling it on first use; NULL when it does not compile. */
static const fhirpath_t *compiled(const char *text)
{
    uint64_t h = hash_text(text);
    pthread_rwlock_rdlock(&memo.lock);
    memo_entry_t *e = memo_find(text, h);
    const fhirpath_t *expr = e ? e->expr : NULL;
    bool known = e != NULL;
    pthread_rwlock_unlock(&memo.lock);
    if (known)
        return expr;
    err_t err = ERR_INIT;
    fhirpath_t *made = fhirpath_compile(text, strlen(text), &err);
    err_release(&err);
    pthread_rwlock_wrlock(&memo.lock);
    e = memo_find(text, h);
    if (e) { /* another thread was quicker */
        fhirpath_free(made);
        expr = e->expr;
    } else {
        memo_insert(xstrdup(text), made);
        expr = made;
    }
    pthread_rwlock_unlock(&memo.lock);
    return expr;
}

/* ---- extraction state ---------------------------------------------------------------- */

typedef struct {
    fhir_index_value_t *items;
    size_t n, cap;
} values_t;

typedef struct {
    arena_t *arena;   /* the rows' */
    arena_t *scratch; /* evaluation results, released per resource */
    json_t *resource;
    fhir_index_rows_t *out;
    buf_t key;
    const char **seen; /* the set of row keys: open addressing */
    size_t nseen, capseen;
    bool too_many;
    const char *ref_param;        /* the reference parameter being extracted, else NULL */
    fhir_index_row_t *local_refs; /* references "#id" to contained resources */
    size_t nlocal_refs, caplocal_refs;
} extract_t;

static void note_local_ref(extract_t *x, const char *ref);

static void values_push(extract_t *x, values_t *v, const fhir_index_value_t *value)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        fhir_index_value_t *items = arena_alloc(x->scratch, cap * sizeof(*items));
        if (v->n)
            memcpy(items, v->items, v->n * sizeof(*items));
        v->items = items;
        v->cap = cap;
    }
    v->items[v->n++] = *value;
}

/* A copy of s (len bytes) in the rows' arena, cut at FHIR_INDEX_MAX_STRING bytes on a
 * character boundary. */
static const char *keep(extract_t *x, const char *s, size_t len)
{
    if (!s)
        return NULL;
    if (len > FHIR_INDEX_MAX_STRING) {
        len = FHIR_INDEX_MAX_STRING;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
    }
    return arena_strndup(x->arena, s, len);
}

static const char *keep_str(extract_t *x, const char *s)
{
    return s ? keep(x, s, strlen(s)) : NULL;
}

static const char *normalized(extract_t *x, const char *s)
{
    buf_t b = BUF_INIT;
    fhir_search_normalize(s, strlen(s), &b);
    const char *out = keep(x, b.ptr, b.len);
    buf_release(&b);
    return out;
}

/* The text of a JSON primitive member, or NULL. */
static const char *member_text(const json_t *object, const char *name)
{
    json_t *v = json_object_get(object, name);
    return jv_is_string(v) ? json_string_value(v) : NULL;
}

/* A JSON primitive's text: strings, booleans, integers, decimals; in the scratch arena. */
static const char *json_text(extract_t *x, const json_t *v)
{
    if (!v)
        return NULL;
    if (jv_is_string(v))
        return json_string_value(v);
    if (json_is_true(v))
        return "true";
    if (json_is_false(v))
        return "false";
    if (json_is_integer(v))
        return arena_printf(x->scratch, "%lld", (long long)json_integer_value(v));
    size_t n;
    const char *d = jv_decimal_text(v, &n);
    if (d)
        return arena_strndup(x->scratch, d, n);
    return NULL;
}

static bool number_of(const json_t *v, double *out)
{
    if (json_is_integer(v)) {
        *out = (double)json_integer_value(v);
        return true;
    }
    size_t n;
    const char *d = jv_decimal_text(v, &n);
    if (!d)
        return false;
    char tmp[80];
    if (n >= sizeof(tmp))
        return false;
    memcpy(tmp, d, n);
    tmp[n] = '\0';
    char *end;
    double value = strtod(tmp, &end);
    if (*end || !isfinite(value))
        return false;
    *out = value;
    return true;
}

/* ---- conversions by FHIR type -------------------------------------------------------- */

static const char *type_name_of(const fhirpath_item_t *item)
{
    if (fhirpath_item_kind(item) != FHIRPATH_NODE)
        return NULL;
    const fhir_type_t *t = fhirpath_item_fhir_type(item);
    return t ? t->name : NULL;
}

static bool is_quantity_type(const char *name)
{
    static const char *const names[] = {
        "Quantity", "Age", "Count", "Distance", "Duration", "SimpleQuantity", "MoneyQuantity"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

/* The text of a primitive node or a System value, or NULL for complex nodes. */
static const char *item_text(extract_t *x, const fhirpath_item_t *item)
{
    fhirpath_kind_t kind = fhirpath_item_kind(item);
    if (kind == FHIRPATH_NODE) {
        const fhir_type_t *t = fhirpath_item_fhir_type(item);
        if (t && t->kind != FHIR_KIND_PRIMITIVE)
            return NULL;
        return json_text(x, fhirpath_item_json(item));
    }
    if (kind == FHIRPATH_TYPEINFO || kind == FHIRPATH_QUANTITY)
        return NULL;
    return fhirpath_item_text(item, x->scratch);
}

static void add_string(extract_t *x, values_t *out, const char *s)
{
    if (!s || !*s)
        return;
    fhir_index_value_t v = {.kind = FHIR_INDEX_STRING};
    v.as.string.exact = keep_str(x, s);
    /* normalized from the whole text, then cut: the cut of the normalized form is what a
     * search value's normalized form, cut the same way, is a prefix of */
    v.as.string.normalized = normalized(x, s);
    values_push(x, out, &v);
}

static void add_string_members(extract_t *x, values_t *out, const json_t *object,
                               const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(object, names[i]);
        if (json_is_array(v)) {
            for (size_t k = 0; k < json_array_size(v); k++)
                add_string(x, out, json_text(x, json_array_get(v, k)));
        } else {
            add_string(x, out, json_text(x, v));
        }
    }
}

static void to_string(extract_t *x, const fhirpath_item_t *item, values_t *out)
{
    const char *text = item_text(x, item);
    if (text) {
        add_string(x, out, text);
        return;
    }
    const char *type = type_name_of(item);
    json_t *json = fhirpath_item_json(item);
    if (!type || !json_is_object(json))
        return;
    if (strcmp(type, "HumanName") == 0) {
        static const char *const names[] = {"family", "given", "prefix", "suffix", "text"};
        add_string_members(x, out, json, names, 5);
    } else if (strcmp(type, "Address") == 0) {
        static const char *const names[] = {"line",       "city",    "district", "state",
                                            "postalCode", "country", "text"};
        add_string_members(x, out, json, names, 7);
    } else {
        /* another data type: its own string members (Annotation.text, ContactPoint.value) */
        const char *key;
        json_t *v;
        json_object_foreach(json, key, v)
        {
            if (jv_is_string(v) && strcmp(key, "id") != 0 && strcmp(key, "url") != 0)
                add_string(x, out, json_string_value(v));
        }
    }
}

static void add_token(extract_t *x, values_t *out, const char *system, const char *code,
                      const char *text)
{
    if (!code && !system && !(text && *text))
        return;
    fhir_index_value_t v = {.kind = FHIR_INDEX_TOKEN};
    v.as.token.system = keep_str(x, system);
    v.as.token.code = keep_str(x, code);
    v.as.token.text = text && *text ? normalized(x, text) : NULL;
    values_push(x, out, &v);
}

static void add_coding(extract_t *x, values_t *out, const json_t *coding)
{
    const char *code = member_text(coding, "code");
    const char *system = member_text(coding, "system");
    const char *display = member_text(coding, "display");
    if (code || system)
        add_token(x, out, system, code, display);
    else if (display)
        add_token(x, out, NULL, NULL, display);
}

/*
 * The system of a code whose element has a required binding to codes of one code system
 * (Patient.gender: http://hl7.org/fhir/administrative-gender), found by walking the item's
 * path through the model; NULL when there is none.
 */
static const char *implicit_system(extract_t *x, const fhirpath_item_t *item, const char *code)
{
    const fhir_type_t *t = fhirpath_item_fhir_type(item);
    if (!t || t->primitive != FHIR_PRIM_CODE)
        return NULL;
    const char *path = fhirpath_item_path(item, x->scratch);
    const fhir_element_t *element = NULL;
    const fhir_type_t *type = NULL;
    for (const char *p = path; p && *p;) {
        const char *end = p + strcspn(p, ".[");
        if (!type) {
            type = fhir_type_find(p, (size_t)(end - p));
        } else {
            element = fhir_element_find(type, p, (size_t)(end - p), &type);
            if (element && element->content_reference)
                type = element->types[0];
        }
        if (!type)
            return NULL;
        p = end;
        if (*p == '[')
            p = strchr(p, ']') ? strchr(p, ']') + 1 : NULL;
        if (p && *p == '.')
            p++;
    }
    const fhir_valueset_t *vs = element ? element->binding : NULL;
    if (!vs)
        return NULL;
    size_t lo = 0, hi = vs->ncodes;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(vs->codes[mid], code);
        if (c == 0)
            return vs->systems[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static void to_token(extract_t *x, const fhirpath_item_t *item, values_t *out, values_t *of_type)
{
    const char *text = item_text(x, item);
    if (text) {
        add_token(x, out, implicit_system(x, item, text), text, NULL);
        return;
    }
    const char *type = type_name_of(item);
    json_t *json = fhirpath_item_json(item);
    if (!type || !json_is_object(json))
        return;
    if (strcmp(type, "Coding") == 0) {
        add_coding(x, out, json);
    } else if (strcmp(type, "CodeableConcept") == 0) {
        json_t *codings = json_object_get(json, "coding");
        for (size_t i = 0; i < json_array_size(codings); i++)
            add_coding(x, out, json_array_get(codings, i));
        const char *cc_text = member_text(json, "text");
        if (cc_text)
            add_token(x, out, NULL, NULL, cc_text);
    } else if (strcmp(type, "Identifier") == 0) {
        const char *value = member_text(json, "value");
        json_t *id_type = json_object_get(json, "type");
        add_token(x, out, member_text(json, "system"), value, member_text(id_type, "text"));
        json_t *codings = json_object_get(id_type, "coding");
        for (size_t i = 0; value && of_type && i < json_array_size(codings); i++) {
            json_t *c = json_array_get(codings, i);
            const char *code = member_text(c, "code");
            if (!code)
                continue;
            fhir_index_value_t v = {.kind = FHIR_INDEX_OF_TYPE};
            v.as.of_type.type_system = keep_str(x, member_text(c, "system"));
            v.as.of_type.type_code = keep_str(x, code);
            v.as.of_type.value = keep_str(x, value);
            values_push(x, of_type, &v);
        }
    } else if (strcmp(type, "ContactPoint") == 0) {
        const char *value = member_text(json, "value");
        if (value)
            add_token(x, out, NULL, value, NULL);
    } else if (strcmp(type, "Reference") == 0) {
        /* a token over a Reference (rare): its identifier */
        json_t *identifier = json_object_get(json, "identifier");
        if (json_is_object(identifier))
            add_token(x, out, member_text(identifier, "system"), member_text(identifier, "value"),
                      NULL);
    }
}

/* [low, high) of a FHIR date, dateTime or instant; false when it does not parse. */
static bool date_range(const char *text, int64_t *low, int64_t *high)
{
    fhir_search_value_t v;
    if (!text || fhir__search_parse_date(text, strlen(text), &v))
        return false;
    *low = v.as.date.low;
    *high = v.as.date.high;
    return true;
}

/* Ranges keep low <= high: a Period that ends before it starts or a Range whose low is above
 * its high break R4's invariants (per-1, rng-2), which validation does not check; such a
 * range is indexed with its bounds swapped. */
static void add_date(extract_t *x, values_t *out, int64_t low, int64_t high)
{
    if (low > high) {
        int64_t t = low;
        low = high;
        high = t;
    }
    fhir_index_value_t v = {.kind = FHIR_INDEX_DATE};
    v.as.date.low = low;
    v.as.date.high = high;
    values_push(x, out, &v);
}

static void add_period(extract_t *x, values_t *out, const json_t *period)
{
    int64_t low = FHIR_INDEX_DATE_MIN, high = FHIR_INDEX_DATE_MAX, ignored;
    const char *start = member_text(period, "start"), *end = member_text(period, "end");
    if (!start && !end)
        return;
    if (start && !date_range(start, &low, &ignored))
        return;
    if (end && !date_range(end, &ignored, &high))
        return;
    add_date(x, out, low, high);
}

static void to_date(extract_t *x, const fhirpath_item_t *item, values_t *out)
{
    int64_t low, high;
    const char *text = item_text(x, item);
    if (text) {
        if (date_range(text, &low, &high))
            add_date(x, out, low, high);
        return;
    }
    const char *type = type_name_of(item);
    json_t *json = fhirpath_item_json(item);
    if (!type || !json_is_object(json))
        return;
    if (strcmp(type, "Period") == 0) {
        add_period(x, out, json);
    } else if (strcmp(type, "Timing") == 0) {
        json_t *events = json_object_get(json, "event");
        for (size_t i = 0; i < json_array_size(events); i++)
            if (date_range(json_text(x, json_array_get(events, i)), &low, &high))
                add_date(x, out, low, high);
        json_t *bounds = json_object_get(json_object_get(json, "repeat"), "boundsPeriod");
        if (json_array_size(events) == 0 && json_is_object(bounds))
            add_period(x, out, bounds);
    }
}

static void add_number(extract_t *x, values_t *out, double low, double high)
{
    if (low > high) {
        double t = low;
        low = high;
        high = t;
    }
    fhir_index_value_t v = {.kind = FHIR_INDEX_NUMBER};
    v.as.number.low = low;
    v.as.number.high = high;
    values_push(x, out, &v);
}

static void to_number(extract_t *x, const fhirpath_item_t *item, values_t *out)
{
    fhirpath_kind_t kind = fhirpath_item_kind(item);
    double value;
    if (kind == FHIRPATH_INTEGER || kind == FHIRPATH_DECIMAL) {
        const char *text = fhirpath_item_text(item, x->scratch);
        char *end;
        value = text ? strtod(text, &end) : NAN;
        if (text && !*end && isfinite(value))
            add_number(x, out, value, value);
        return;
    }
    json_t *json = fhirpath_item_json(item);
    if (kind != FHIRPATH_NODE || !json)
        return;
    if (number_of(json, &value)) {
        add_number(x, out, value, value);
        return;
    }
    const char *type = type_name_of(item);
    if (type && strcmp(type, "Range") == 0) {
        double low = -INFINITY, high = INFINITY;
        json_t *l = json_object_get(json_object_get(json, "low"), "value");
        json_t *h = json_object_get(json_object_get(json, "high"), "value");
        bool has_low = number_of(l, &low), has_high = number_of(h, &high);
        if (has_low || has_high)
            add_number(x, out, low, high);
    } else if (type && is_quantity_type(type)) {
        if (number_of(json_object_get(json, "value"), &value))
            add_number(x, out, value, value);
    }
}

static void add_quantity(extract_t *x, values_t *out, double low, double high, const char *system,
                         const char *code, const char *unit)
{
    fhir_index_value_t v = {.kind = FHIR_INDEX_QUANTITY};
    v.as.quantity.low = low < high ? low : high;
    v.as.quantity.high = low < high ? high : low;
    v.as.quantity.system = keep_str(x, system);
    v.as.quantity.code = keep_str(x, code);
    v.as.quantity.unit = keep_str(x, unit);
    char canonical[FHIR_INDEX_MAX_UCUM];
    if (system && code && strcmp(system, FHIR_UCUM_SYSTEM) == 0 &&
        fhirpath_ucum_canonical(code, v.as.quantity.low, &v.as.quantity.canonical_low, canonical,
                                sizeof(canonical)) &&
        fhirpath_ucum_canonical(code, v.as.quantity.high, &v.as.quantity.canonical_high, canonical,
                                sizeof(canonical)))
        v.as.quantity.canonical_code = keep_str(x, canonical);
    values_push(x, out, &v);
}

static void to_quantity(extract_t *x, const fhirpath_item_t *item, values_t *out)
{
    fhirpath_kind_t kind = fhirpath_item_kind(item);
    if (kind == FHIRPATH_QUANTITY) {
        json_t *q = fhirpath_item_to_json(item);
        double value;
        const char *unit = member_text(q, "unit");
        if (number_of(json_object_get(q, "value"), &value))
            add_quantity(x, out, value, value, NULL, unit, unit);
        json_decref(q);
        return;
    }
    if (kind == FHIRPATH_INTEGER || kind == FHIRPATH_DECIMAL) {
        values_t numbers = {0};
        to_number(x, item, &numbers);
        for (size_t i = 0; i < numbers.n; i++)
            add_quantity(x, out, numbers.items[i].as.number.low, numbers.items[i].as.number.high,
                         NULL, NULL, NULL);
        return;
    }
    const char *type = type_name_of(item);
    json_t *json = fhirpath_item_json(item);
    if (!type || !json_is_object(json))
        return;
    double value;
    if (is_quantity_type(type)) {
        if (!number_of(json_object_get(json, "value"), &value))
            return;
        double low = value, high = value;
        const char *comparator = member_text(json, "comparator");
        if (comparator && comparator[0] == '<')
            low = -INFINITY;
        else if (comparator && comparator[0] == '>')
            high = INFINITY;
        add_quantity(x, out, low, high, member_text(json, "system"), member_text(json, "code"),
                     member_text(json, "unit"));
    } else if (strcmp(type, "Money") == 0) {
        if (number_of(json_object_get(json, "value"), &value)) {
            const char *currency = member_text(json, "currency");
            add_quantity(x, out, value, value, currency ? "urn:iso:std:iso:4217" : NULL, currency,
                         currency);
        }
    } else if (strcmp(type, "Range") == 0) {
        json_t *l = json_object_get(json, "low"), *h = json_object_get(json, "high");
        double low = -INFINITY, high = INFINITY;
        bool has_low = number_of(json_object_get(l, "value"), &low);
        bool has_high = number_of(json_object_get(h, "value"), &high);
        if (!has_low && !has_high)
            return;
        json_t *u = has_low ? l : h;
        add_quantity(x, out, low, high, member_text(u, "system"), member_text(u, "code"),
                     member_text(u, "unit"));
    }
}

static bool id_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.';
}

static bool valid_id(const char *s, size_t len)
{
    if (len < 1 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!id_char(s[i]))
            return false;
    return true;
}

typedef struct {
    const fhir_type_t *type;
    const char *id, *version; /* in the given arena */
} local_ref_t;

/* Parses a relative reference "Type/id" or "Type/id/_history/version". */
static bool parse_local(arena_t *arena, const char *s, local_ref_t *out)
{
    const char *slash = strchr(s, '/');
    if (!slash)
        return false;
    const fhir_type_t *type = fhir_resource_type_find(s, (size_t)(slash - s));
    if (!type)
        return false;
    const char *id = slash + 1;
    const char *end = strchr(id, '/');
    size_t idlen = end ? (size_t)(end - id) : strlen(id);
    if (!valid_id(id, idlen))
        return false;
    const char *version = NULL;
    if (end) {
        if (strncmp(end, "/_history/", 10) != 0)
            return false;
        version = end + 10;
        if (!valid_id(version, strlen(version)))
            return false;
    }
    out->type = type;
    out->id = arena_strndup(arena, id, idlen);
    out->version = version ? arena_strdup(arena, version) : NULL;
    return true;
}

static bool is_absolute(const char *s)
{
    if (strncmp(s, "urn:", 4) == 0)
        return true;
    const char *colon = strstr(s, "://");
    return colon && colon > s;
}

static void add_reference_text(extract_t *x, values_t *out, const char *ref,
                               const json_t *identifier)
{
    fhir_index_value_t v = {.kind = FHIR_INDEX_REFERENCE};
    if (ref && ref[0] == '#')
        note_local_ref(x, ref);
    if (ref && ref[0] != '#' && *ref) {
        local_ref_t local;
        if (!is_absolute(ref) && parse_local(x->arena, ref, &local)) {
            v.as.reference.type = local.type->name;
            v.as.reference.id = local.id;
            v.as.reference.version = local.version;
        } else {
            /* an absolute url (maybe with /_history/version), a urn, a canonical with
             * |version, or an unusual relative one */
            const char *bar = strchr(ref, '|');
            const char *history = strstr(ref, "/_history/");
            const char *cut = bar ? bar : history;
            v.as.reference.url = keep(x, ref, cut ? (size_t)(cut - ref) : strlen(ref));
            if (bar && bar[1])
                v.as.reference.version = keep_str(x, bar + 1);
            else if (!bar && history && history[10])
                v.as.reference.version = keep_str(x, history + 10);
        }
    }
    if (json_is_object(identifier)) {
        v.as.reference.identifier_system = keep_str(x, member_text(identifier, "system"));
        v.as.reference.identifier_value = keep_str(x, member_text(identifier, "value"));
    }
    if (v.as.reference.type || v.as.reference.url || v.as.reference.identifier_value)
        values_push(x, out, &v);
}

static void to_reference(extract_t *x, const fhirpath_item_t *item, values_t *out)
{
    const char *text = item_text(x, item);
    if (text) {
        add_reference_text(x, out, text, NULL);
        return;
    }
    const char *type = type_name_of(item);
    json_t *json = fhirpath_item_json(item);
    if (!type || !json_is_object(json))
        return;
    if (strcmp(type, "Reference") == 0)
        add_reference_text(x, out, member_text(json, "reference"),
                           json_object_get(json, "identifier"));
}

static void to_uri(extract_t *x, const fhirpath_item_t *item, values_t *out)
{
    const char *text = item_text(x, item);
    if (!text || !*text)
        return;
    fhir_index_value_t v = {.kind = FHIR_INDEX_URI};
    v.as.uri.value = keep_str(x, text);
    values_push(x, out, &v);
    /* a canonical with |version also matches its url alone */
    const fhir_type_t *t = fhirpath_item_fhir_type(item);
    const char *bar = strchr(text, '|');
    if (t && t->primitive == FHIR_PRIM_CANONICAL && bar && bar > text) {
        v.as.uri.value = keep(x, text, (size_t)(bar - text));
        values_push(x, out, &v);
    }
}

/* A position (Location.position): latitude within ±90 and longitude within ±180. */
static void to_position(extract_t *x, const fhirpath_item_t *item, values_t *out)
{
    json_t *json = fhirpath_item_json(item);
    double latitude, longitude;
    if (!json_is_object(json) || !number_of(json_object_get(json, "latitude"), &latitude) ||
        !number_of(json_object_get(json, "longitude"), &longitude) || fabs(latitude) > 90 ||
        fabs(longitude) > 180)
        return;
    fhir_index_value_t v = {.kind = FHIR_INDEX_POSITION};
    v.as.position.latitude = latitude;
    v.as.position.longitude = longitude;
    values_push(x, out, &v);
}

static void convert(extract_t *x, fhir_index_kind_t kind, const fhirpath_item_t *item,
                    values_t *out, values_t *of_type)
{
    switch (kind) {
    case FHIR_INDEX_STRING: to_string(x, item, out); break;
    case FHIR_INDEX_TOKEN: to_token(x, item, out, of_type); break;
    case FHIR_INDEX_DATE: to_date(x, item, out); break;
    case FHIR_INDEX_NUMBER: to_number(x, item, out); break;
    case FHIR_INDEX_QUANTITY: to_quantity(x, item, out); break;
    case FHIR_INDEX_REFERENCE: to_reference(x, item, out); break;
    case FHIR_INDEX_URI: to_uri(x, item, out); break;
    case FHIR_INDEX_POSITION: to_position(x, item, out); break;
    case FHIR_INDEX_COMPOSITE:
    case FHIR_INDEX_OF_TYPE: break;
    }
}

/* ---- rows ---------------------------------------------------------------------------- */

static void key_str(buf_t *b, const char *s)
{
    if (s)
        buf_addstr(b, s);
    else
        buf_addch(b, '\x01');
    buf_addch(b, '\x1f');
}

static void key_value(buf_t *b, const fhir_index_value_t *v)
{
    buf_addf(b, "%d\x1f", (int)v->kind);
    switch (v->kind) {
    case FHIR_INDEX_STRING: key_str(b, v->as.string.exact); break;
    case FHIR_INDEX_TOKEN:
        key_str(b, v->as.token.system);
        key_str(b, v->as.token.code);
        key_str(b, v->as.token.text);
        break;
    case FHIR_INDEX_DATE:
        buf_addf(b, "%lld\x1f%lld\x1f", (long long)v->as.date.low, (long long)v->as.date.high);
        break;
    case FHIR_INDEX_NUMBER: buf_addf(b, "%a\x1f%a\x1f", v->as.number.low, v->as.number.high); break;
    case FHIR_INDEX_QUANTITY:
        buf_addf(b, "%a\x1f%a\x1f", v->as.quantity.low, v->as.quantity.high);
        key_str(b, v->as.quantity.system);
        key_str(b, v->as.quantity.code);
        key_str(b, v->as.quantity.unit);
        break;
    case FHIR_INDEX_REFERENCE:
        key_str(b, v->as.reference.type);
        key_str(b, v->as.reference.id);
        key_str(b, v->as.reference.version);
        key_str(b, v->as.reference.url);
        key_str(b, v->as.reference.identifier_system);
        key_str(b, v->as.reference.identifier_value);
        break;
    case FHIR_INDEX_URI: key_str(b, v->as.uri.value); break;
    case FHIR_INDEX_COMPOSITE:
        for (size_t i = 0; i < v->as.composite.ncomponents; i++)
            key_value(b, &v->as.composite.components[i]);
        break;
    case FHIR_INDEX_OF_TYPE:
        key_str(b, v->as.of_type.type_system);
        key_str(b, v->as.of_type.type_code);
        key_str(b, v->as.of_type.value);
        break;
    case FHIR_INDEX_POSITION:
        buf_addf(b, "%a\x1f%a\x1f", v->as.position.latitude, v->as.position.longitude);
        break;
    }
}

/* True when the key is new (and remembers it). */
static bool seen_add(extract_t *x, const char *key, size_t len)
{
    if ((x->nseen + 1) * 2 > x->capseen) {
        size_t cap = x->capseen ? x->capseen * 2 : 64;
        const char **slots = arena_zalloc(x->scratch, cap * sizeof(*slots));
        for (size_t k = 0; k < x->capseen; k++) {
            if (!x->seen[k])
                continue;
            size_t i = hash_text(x->seen[k]) & (cap - 1);
            while (slots[i])
                i = (i + 1) & (cap - 1);
            slots[i] = x->seen[k];
        }
        x->seen = slots;
        x->capseen = cap;
    }
    size_t i = hash_text(key) & (x->capseen - 1);
    for (; x->seen[i]; i = (i + 1) & (x->capseen - 1))
        if (strcmp(x->seen[i], key) == 0)
            return false;
    x->seen[i] = arena_strndup(x->scratch, key, len);
    x->nseen++;
    return true;
}

static void add_row(extract_t *x, const char *param, const fhir_index_value_t *value)
{
    buf_reset(&x->key);
    key_str(&x->key, param);
    key_value(&x->key, value);
    /* keys hold no NUL: every part is text or formatted numbers */
    if (!seen_add(x, x->key.ptr, x->key.len))
        return;
    fhir_index_rows_t *out = x->out;
    if (out->n >= FHIR_INDEX_MAX_ROWS) {
        x->too_many = true;
        return;
    }
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 32;
        fhir_index_row_t *rows = arena_alloc(x->arena, cap * sizeof(*rows));
        if (out->n)
            memcpy(rows, out->rows, out->n * sizeof(*rows));
        out->rows = rows;
        out->cap = cap;
    }
    out->rows[out->n].param = param;
    out->rows[out->n].value = *value;
    out->n++;
}

/* ---- evaluation ---------------------------------------------------------------------- */

static status_t evaluate(extract_t *x, const char *text, json_t *context,
                         const fhir_type_t *context_type, fhirpath_result_t **out)
{
    const fhirpath_t *expr = compiled(text);
    if (!expr)
        return ERR_INVALID;
    fhirpath_env_t env;
    fhirpath_env_init(&env, x->resource);
    if (context) {
        env.context = context;
        env.context_type = context_type;
    }
    env.resolve = fhirpath_resolve_shallow;
    err_t err = ERR_INIT;
    status_t rc = fhirpath_eval(expr, &env, x->scratch, out, &err);
    err_release(&err);
    return rc;
}

static void extract_composite(extract_t *x, const fhir_search_param_t *param,
                              const fhirpath_result_t *elements)
{
    size_t nc = param->ncomponents;
    values_t *lists = arena_zalloc(x->scratch, nc * sizeof(*lists));
    for (size_t e = 0; e < fhirpath_result_count(elements); e++) {
        const fhirpath_item_t *element = fhirpath_result_item(elements, e);
        json_t *json = fhirpath_item_json(element);
        if (fhirpath_item_kind(element) != FHIRPATH_NODE || !json)
            continue;
        bool empty = false;
        for (size_t c = 0; c < nc && !empty; c++) {
            const fhir_search_component_t *component = &param->components[c];
            int kind = fhir_index_kind_of(component->type);
            lists[c].n = 0;
            fhirpath_result_t *found;
            if (kind < 0 || kind == FHIR_INDEX_COMPOSITE ||
                evaluate(x, component->expression, json, fhirpath_item_fhir_type(element),
                         &found)) {
                empty = true;
                break;
            }
            values_t all = {0};
            for (size_t i = 0; i < fhirpath_result_count(found); i++)
                convert(x, (fhir_index_kind_t)kind, fhirpath_result_item(found, i), &all, NULL);
            for (size_t i = 0; i < all.n; i++) /* a text alone does not pair with anything */
                if (all.items[i].kind != FHIR_INDEX_TOKEN || all.items[i].as.token.code)
                    values_push(x, &lists[c], &all.items[i]);
            empty = lists[c].n == 0;
        }
        if (empty)
            continue;
        /* every combination, first component slowest, up to the cap */
        size_t total = 1;
        for (size_t c = 0; c < nc; c++)
            total = total * lists[c].n > FHIR_INDEX_MAX_COMPOSITE ? FHIR_INDEX_MAX_COMPOSITE
                                                                  : total * lists[c].n;
        for (size_t k = 0; k < total; k++) {
            fhir_index_value_t v = {.kind = FHIR_INDEX_COMPOSITE};
            v.as.composite.ncomponents = nc;
            v.as.composite.components = arena_alloc(x->arena, nc * sizeof(fhir_index_value_t));
            size_t rest = k;
            for (size_t c = nc; c-- > 0;) {
                v.as.composite.components[c] = lists[c].items[rest % lists[c].n];
                rest /= lists[c].n;
            }
            add_row(x, param->code, &v);
        }
    }
}

static void extract_param(extract_t *x, const fhir_search_param_t *param)
{
    fhirpath_result_t *result;
    x->ref_param = NULL;
    if (evaluate(x, param->expression, NULL, NULL, &result)) {
        x->out->nfailed++;
        return;
    }
    int kind = fhir_index_kind_of(param->type);
    if (kind == FHIR_INDEX_COMPOSITE) {
        extract_composite(x, param, result);
        return;
    }
    if (kind == FHIR_INDEX_REFERENCE)
        x->ref_param = param->code;
    values_t values = {0}, of_type = {0};
    for (size_t i = 0; i < fhirpath_result_count(result); i++)
        convert(x, (fhir_index_kind_t)kind, fhirpath_result_item(result, i), &values, &of_type);
    for (size_t i = 0; i < values.n; i++)
        add_row(x, param->code, &values.items[i]);
    for (size_t i = 0; i < of_type.n; i++)
        add_row(x, param->code, &of_type.items[i]);
}

/* ---- contained resources ------------------------------------------------------------ */

/* A reference "#id" met while extracting a reference parameter: a row of local_refs (url
 * "#id"), once per parameter and id. A lone "#" (the container itself) is not one. */
static void note_local_ref(extract_t *x, const char *ref)
{
    if (!x->ref_param || !ref[1])
        return;
    buf_reset(&x->key);
    buf_addstr(&x->key, "#\x1f");
    key_str(&x->key, x->ref_param);
    key_str(&x->key, ref);
    if (!seen_add(x, x->key.ptr, x->key.len))
        return;
    if (x->nlocal_refs == x->caplocal_refs) {
        size_t cap = x->caplocal_refs ? x->caplocal_refs * 2 : 4;
        fhir_index_row_t *rows = arena_alloc(x->arena, cap * sizeof(*rows));
        if (x->nlocal_refs)
            memcpy(rows, x->local_refs, x->nlocal_refs * sizeof(*rows));
        x->local_refs = rows;
        x->caplocal_refs = cap;
    }
    fhir_index_row_t *row = &x->local_refs[x->nlocal_refs++];
    memset(row, 0, sizeof(*row));
    row->param = x->ref_param;
    row->value.kind = FHIR_INDEX_REFERENCE;
    row->value.as.reference.url = keep_str(x, ref);
}

/*
 * The rows of each contained resource, by its own type, into out->contained. A contained
 * resource without an id (none can refer to it) or of an unknown type is left out. False
 * when the rows of the container and its contained resources pass FHIR_INDEX_MAX_ROWS.
 */
static bool extract_contained(const fhir_search_snapshot_t *snapshot, json_t *resource,
                              arena_t *arena, arena_t *scratch, fhir_index_rows_t *out)
{
    json_t *list = json_object_get(resource, "contained");
    size_t n = json_is_array(list) ? json_array_size(list) : 0;
    if (!n)
        return true;
    out->contained = arena_zalloc(arena, n * sizeof(*out->contained));
    size_t total = out->n;
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(list, i);
        json_t *rt = json_object_get(item, "resourceType");
        json_t *id = json_object_get(item, "id");
        const fhir_type_t *type = jv_is_string(rt) ? fhir_resource_type_find(json_string_value(rt),
                                                                             json_string_length(rt))
                                                   : NULL;
        if (!type || !jv_is_string(id) || json_string_length(id) == 0)
            continue;
        fhir_index_rows_t rows = {0};
        extract_t x = {.arena = arena, .scratch = scratch, .resource = item, .out = &rows};
        buf_init(&x.key, 0);
        fhir_search_iter_t it;
        fhir_search_iter_init(&it, snapshot, type);
        for (const fhir_search_param_t *p; (p = fhir_search_iter_next(&it)) && !x.too_many;) {
            if (!p->expression || strcmp(p->code, "_id") == 0 ||
                strcmp(p->code, "_lastUpdated") == 0)
                continue;
            extract_param(&x, p);
        }
        buf_release(&x.key);
        total += rows.n;
        if (x.too_many || total > FHIR_INDEX_MAX_ROWS)
            return false;
        fhir_index_contained_t *c = &out->contained[out->ncontained++];
        c->type = type->name;
        c->id = arena_strndup(arena, json_string_value(id), json_string_length(id));
        c->rows = rows.rows;
        c->n = rows.n;
        out->nfailed += rows.nfailed;
    }
    return true;
}

/* Whether the rows of a resource of `type` name a Patient through its patient links; true
 * for a type without them (nothing to mark). A reference by identifier only, or by an
 * absolute url to a Patient, names one (a patient no one may reach, but a patient). */
static bool names_patient(const fhir_type_t *type, const fhir_index_rows_t *rows)
{
    const char *const *params;
    size_t n;
    if (!fhir_patient_link_params(type, &params, &n))
        return true;
    for (size_t i = 0; i < rows->n; i++) {
        const fhir_index_row_t *row = &rows->rows[i];
        if (row->value.kind != FHIR_INDEX_REFERENCE)
            continue;
        bool linking = false;
        for (size_t k = 0; k < n && !linking; k++)
            linking = strcmp(params[k], row->param) == 0;
        if (!linking)
            continue;
        const char *rt = row->value.as.reference.type;
        const char *url = row->value.as.reference.url;
        if (rt ? strcmp(rt, "Patient") == 0 : !url || strstr(url, "Patient/"))
            return true;
    }
    return false;
}

status_t fhir_index_extract(const fhir_search_snapshot_t *snapshot, json_t *resource,
                            arena_t *arena, fhir_index_rows_t *out, err_t *err)
{
    memset(out, 0, sizeof(*out));
    json_t *rt = json_object_get(resource, "resourceType");
    const fhir_type_t *type =
        jv_is_string(rt) ? fhir_resource_type_find(json_string_value(rt), json_string_length(rt))
                         : NULL;
    if (!type)
        return err_set(err, ERR_INVALID, NULL, "cannot index a resource without a known type");
    if (!snapshot)
        snapshot = fhir_search_builtin();
    arena_t scratch;
    arena_init(&scratch);
    extract_t x = {.arena = arena, .scratch = &scratch, .resource = resource, .out = out};
    buf_init(&x.key, 0);
    fhir_search_iter_t it;
    fhir_search_iter_init(&it, snapshot, type);
    for (const fhir_search_param_t *p; (p = fhir_search_iter_next(&it));) {
        if (!p->expression || strcmp(p->code, "_id") == 0 || strcmp(p->code, "_lastUpdated") == 0)
            continue;
        extract_param(&x, p);
        if (x.too_many)
            break;
    }
    bool unlinked = false;
    if (!x.too_many && !names_patient(type, out)) {
        fhir_index_value_t none = {.kind = FHIR_INDEX_REFERENCE};
        add_row(&x, FHIR_INDEX_UNLINKED, &none);
        unlinked = true;
    }
    out->local_refs = x.local_refs;
    out->nlocal_refs = x.nlocal_refs;
    if (!x.too_many)
        x.too_many = !extract_contained(snapshot, resource, arena, &scratch, out);
    buf_release(&x.key);
    arena_release(&scratch);
    if (!x.too_many)
        fhir_index_text(resource, arena, &out->content, &out->narrative);
    if (x.too_many)
        return err_set(err, ERR_TOO_LARGE, NULL,
                       "the resource has more than %d search index values", FHIR_INDEX_MAX_ROWS);
    fhir_task_work_t *work = fhir_index_task_work(resource, arena);
    if (work)
        work->unlinked = unlinked;
    out->task_work = work;
    out->risk_row = fhir_index_risk_row(resource, arena);
    out->care_members = fhir_index_care_members(resource, arena);
    return ERR_OK;
}

status_t fhir_index_extract_only(const fhir_search_snapshot_t *snapshot, json_t *resource,
                                 const char *const *codes, size_t ncodes, arena_t *arena,
                                 fhir_index_rows_t *out, err_t *err)
{
    memset(out, 0, sizeof(*out));
    json_t *rt = json_object_get(resource, "resourceType");
    const fhir_type_t *type =
        jv_is_string(rt) ? fhir_resource_type_find(json_string_value(rt), json_string_length(rt))
                         : NULL;
    if (!type)
        return err_set(err, ERR_INVALID, NULL, "cannot index a resource without a known type");
    if (!snapshot)
        snapshot = fhir_search_builtin();
    arena_t scratch;
    arena_init(&scratch);
    extract_t x = {.arena = arena, .scratch = &scratch, .resource = resource, .out = out};
    buf_init(&x.key, 0);
    for (size_t i = 0; i < ncodes && !x.too_many; i++) {
        const fhir_search_param_t *p =
            fhir_search_snapshot_find(snapshot, type, codes[i], strlen(codes[i]));
        if (p && p->expression)
            extract_param(&x, p);
    }
    buf_release(&x.key);
    arena_release(&scratch);
    if (x.too_many)
        return err_set(err, ERR_TOO_LARGE, NULL,
                       "the resource has more than %d search index values", FHIR_INDEX_MAX_ROWS);
    return ERR_OK;
}

/* ---- names and text forms ------------------------------------------------------------ */

const char *fhir_index_kind_name(fhir_index_kind_t kind)
{
    static const char *const names[] = {"string",    "token", "date",      "number",  "quantity",
                                        "reference", "uri",   "composite", "of-type", "position"};
    return (size_t)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}

int fhir_index_kind_of(fhir_search_type_t type)
{
    switch (type) {
    case FHIR_SEARCH_NUMBER: return FHIR_INDEX_NUMBER;
    case FHIR_SEARCH_DATE: return FHIR_INDEX_DATE;
    case FHIR_SEARCH_STRING: return FHIR_INDEX_STRING;
    case FHIR_SEARCH_TOKEN: return FHIR_INDEX_TOKEN;
    case FHIR_SEARCH_REFERENCE: return FHIR_INDEX_REFERENCE;
    case FHIR_SEARCH_COMPOSITE: return FHIR_INDEX_COMPOSITE;
    case FHIR_SEARCH_QUANTITY: return FHIR_INDEX_QUANTITY;
    case FHIR_SEARCH_URI: return FHIR_INDEX_URI;
    case FHIR_SEARCH_SPECIAL: return FHIR_INDEX_POSITION; /* near, the only one with rows */
    }
    return -1;
}

static void render_instant(int64_t us, buf_t *out)
{
    if (us == FHIR_INDEX_DATE_MIN) {
        buf_addstr(out, "-inf");
        return;
    }
    if (us == FHIR_INDEX_DATE_MAX) {
        buf_addstr(out, "+inf");
        return;
    }
    int64_t secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    int64_t frac = us - secs * 1000000;
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t rem = secs - days * 86400;
    /* civil from days (Howard Hinnant's algorithm) */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2)
        y++;
    buf_addf(out, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld", (long long)y, (long long)m,
             (long long)d, (long long)(rem / 3600), (long long)(rem / 60 % 60),
             (long long)(rem % 60));
    if (frac)
        buf_addf(out, ".%06lld", (long long)frac);
    buf_addch(out, 'Z');
}

static void render_opt(buf_t *out, const char *label, const char *s)
{
    if (s)
        buf_addf(out, " %s=%s", label, s);
}

static void render_value(const fhir_index_value_t *v, buf_t *out)
{
    switch (v->kind) {
    case FHIR_INDEX_STRING:
        buf_addf(out, "\"%s\" exact=\"%s\"", v->as.string.normalized, v->as.string.exact);
        break;
    case FHIR_INDEX_TOKEN:
        if (v->as.token.system)
            buf_addf(out, "%s|", v->as.token.system);
        buf_addstr(out, v->as.token.code ? v->as.token.code : "(none)");
        if (v->as.token.text)
            buf_addf(out, " text=\"%s\"", v->as.token.text);
        break;
    case FHIR_INDEX_DATE:
        buf_addch(out, '[');
        render_instant(v->as.date.low, out);
        buf_addstr(out, ", ");
        render_instant(v->as.date.high, out);
        buf_addch(out, ')');
        break;
    case FHIR_INDEX_NUMBER: buf_addf(out, "[%g, %g]", v->as.number.low, v->as.number.high); break;
    case FHIR_INDEX_QUANTITY:
        buf_addf(out, "[%g, %g]", v->as.quantity.low, v->as.quantity.high);
        render_opt(out, "system", v->as.quantity.system);
        render_opt(out, "code", v->as.quantity.code);
        render_opt(out, "unit", v->as.quantity.unit);
        break;
    case FHIR_INDEX_REFERENCE:
        if (v->as.reference.type)
            buf_addf(out, "%s/%s", v->as.reference.type, v->as.reference.id);
        else if (v->as.reference.url)
            buf_addf(out, "url=%s", v->as.reference.url);
        else
            buf_addstr(out, "(none)");
        render_opt(out, "version", v->as.reference.version);
        if (v->as.reference.identifier_value || v->as.reference.identifier_system)
            buf_addf(out, " identifier=%s|%s",
                     v->as.reference.identifier_system ? v->as.reference.identifier_system : "",
                     v->as.reference.identifier_value ? v->as.reference.identifier_value : "");
        break;
    case FHIR_INDEX_URI: buf_addstr(out, v->as.uri.value); break;
    case FHIR_INDEX_COMPOSITE:
        for (size_t i = 0; i < v->as.composite.ncomponents; i++) {
            if (i)
                buf_addstr(out, " $ ");
            render_value(&v->as.composite.components[i], out);
        }
        break;
    case FHIR_INDEX_OF_TYPE:
        buf_addf(out, "%s|%s|%s", v->as.of_type.type_system ? v->as.of_type.type_system : "",
                 v->as.of_type.type_code, v->as.of_type.value);
        break;
    case FHIR_INDEX_POSITION:
        buf_addf(out, "%g|%g", v->as.position.latitude, v->as.position.longitude);
        break;
    }
}

void fhir_index_row_render(const fhir_index_row_t *row, buf_t *out)
{
    buf_addf(out, "%s %s ", fhir_index_kind_name(row->value.kind), row->param);
    render_value(&row->value, out);
}
