/*
 * search_values.c - how many values a search parameter can give one resource, read from its
 * FHIRPath expression and the element definitions of the type model (defs.h).
 *
 * Only a narrow grammar is understood: a path of element names from the base type, with
 * where(...) filters, and a type selection at the end (.as(T), .ofType(T), (path as T));
 * a union is single only when its members select distinct types of one element of one path.
 * Anything else is SEVERAL: the answer lets a driver test two clauses on one index row, so
 * it must never say ONE when a resource can have two values. Built-in parameters are
 * answered once and remembered (the table is static); custom ones are answered at each call
 * (a few microseconds).
 */
#include "fhir/search_int.h"

#include <stdatomic.h>
#include <string.h>

#define MAX_MEMBERS 8

/* One union member as far as it was understood. */
typedef struct {
    bool ok;          /* a path the grammar understands, at most one value */
    const char *path; /* the path text before the type selection */
    size_t path_len;
    const fhir_element_t *element; /* the last element of the path */
    const fhir_type_t *selected;   /* the type selected at the end, or NULL */
    bool has_timing, all_short;    /* over the types the member can give */
} member_t;

static bool ident_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static bool space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The offset of the ')' closing the '(' at s[open], outside string literals, or 0. */
static size_t closing(const char *s, size_t len, size_t open)
{
    int depth = 0;
    char quote = 0;
    for (size_t i = open; i < len; i++) {
        char c = s[i];
        if (quote) {
            if (c == '\\')
                i++;
            else if (c == quote)
                quote = 0;
        } else if (c == '\'' || c == '`') {
            quote = c;
        } else if (c == '(') {
            depth++;
        } else if (c == ')' && --depth == 0) {
            return i;
        }
    }
    return 0;
}

/* An element of a type by its name in the definition ("effective" for effective[x]). */
static const fhir_element_t *element_named(const fhir_type_t *type, const char *name, size_t len)
{
    for (size_t i = 0; i < type->nelements; i++) {
        const fhir_element_t *e = &type->elements[i];
        if (strlen(e->name) == len && memcmp(e->name, name, len) == 0)
            return e;
    }
    return NULL;
}

static bool short_date(const fhir_type_t *type)
{
    return type->primitive == FHIR_PRIM_DATE || type->primitive == FHIR_PRIM_DATE_TIME ||
           type->primitive == FHIR_PRIM_INSTANT;
}

/* The type named by s[0..len) among the element's types, or NULL. */
static const fhir_type_t *select_type(const fhir_element_t *element, const char *s, size_t len)
{
    while (len && space(*s))
        s++, len--;
    while (len && space(s[len - 1]))
        len--;
    if (len > 5 && memcmp(s, "FHIR.", 5) == 0)
        s += 5, len -= 5;
    for (uint16_t i = 0; element && i < element->ntypes; i++)
        if (strlen(element->types[i]->name) == len && memcmp(element->types[i]->name, s, len) == 0)
            return element->types[i];
    return NULL;
}

/* Reads one member: "(path as T)", "path.as(T)", "path.ofType(T)", "path", where path is
 * Root(.name | .where(...))*. */
static member_t read_member(const char *s, size_t len, const fhir_type_t *root)
{
    member_t m = {0};
    while (len && space(*s))
        s++, len--;
    while (len && space(s[len - 1]))
        len--;
    const char *as_type = NULL;
    size_t as_len = 0;
    if (len >= 2 && s[0] == '(' && closing(s, len, 0) == len - 1) {
        /* "(path as T)" or a parenthesized member */
        s++, len -= 2;
        const char *kw = NULL;
        for (size_t i = 0; i + 4 <= len; i++)
            if (memcmp(s + i, " as ", 4) == 0)
                kw = s + i;
        if (kw) {
            as_type = kw + 4;
            as_len = (size_t)(s + len - as_type);
            len = (size_t)(kw - s);
        }
    }
    size_t i = 0;
    while (i < len && ident_char(s[i]))
        i++;
    if (!i || !fhir_type_is_a(root, fhir_type_find(s, i)))
        return m;
    const fhir_type_t *type = root;
    const fhir_element_t *element = NULL;
    size_t path_end = i;
    while (i < len) {
        if (s[i] != '.')
            return m;
        size_t start = ++i;
        while (i < len && ident_char(s[i]))
            i++;
        size_t name_len = i - start;
        if (i < len && s[i] == '(') {
            size_t close = closing(s, len, i);
            if (!close)
                return m;
            const char *fn = s + start;
            if (name_len == 5 && memcmp(fn, "where", 5) == 0) {
                /* a filter: never more values than its input */
                i = close + 1;
                path_end = i;
                continue;
            }
            bool is_as = name_len == 2 && memcmp(fn, "as", 2) == 0;
            bool is_of = name_len == 6 && memcmp(fn, "ofType", 6) == 0;
            if ((!is_as && !is_of) || close + 1 != len || as_type)
                return m;
            as_type = s + i + 1;
            as_len = close - i - 1;
            break;
        }
        if (!name_len || !type || type->kind == FHIR_KIND_PRIMITIVE)
            return m;
        element = element_named(type, s + start, name_len);
        if (!element || element->max != 1)
            return m;
        /* a choice can be followed only by a type selection; an element's own type is its
           only one (a backbone type names itself by path) */
        type = element->ntypes == 1 && !element->choice ? element->types[0] : NULL;
        path_end = i;
    }
    if (!element)
        return m;
    m.path = s;
    m.path_len = path_end;
    m.element = element;
    if (as_type) {
        m.selected = select_type(element, as_type, as_len);
        if (!m.selected)
            return m; /* a type the element cannot have: conservatively unknown */
        m.has_timing = strcmp(m.selected->name, "Timing") == 0;
        m.all_short = short_date(m.selected);
    } else {
        m.all_short = element->ntypes > 0;
        for (uint16_t t = 0; t < element->ntypes; t++) {
            if (strcmp(element->types[t]->name, "Timing") == 0)
                m.has_timing = true;
            if (!short_date(element->types[t]))
                m.all_short = false;
        }
    }
    m.ok = true;
    return m;
}

static fhir_search_values_t expression_values(const char *expression, const fhir_type_t *root)
{
    if (!expression || !root)
        return FHIR_SEARCH_VALUES_SEVERAL;
    size_t spans[MAX_MEMBERS][2];
    size_t n = fhir__search_union_members(expression, spans, MAX_MEMBERS);
    if (!n)
        return FHIR_SEARCH_VALUES_SEVERAL;
    member_t members[MAX_MEMBERS];
    bool all_short = true;
    for (size_t i = 0; i < n; i++) {
        members[i] = read_member(expression + spans[i][0], spans[i][1] - spans[i][0], root);
        member_t *m = &members[i];
        /* a Timing gives one value per event */
        if (!m->ok || m->has_timing)
            return FHIR_SEARCH_VALUES_SEVERAL;
        all_short = all_short && m->all_short;
        /* members are exclusive only when each selects another type of the same element
           reached by the same path: an element holds one value of one type */
        for (size_t k = 0; k < i && n > 1; k++) {
            const member_t *o = &members[k];
            if (!m->selected || !o->selected || m->selected == o->selected ||
                m->element != o->element || m->path_len != o->path_len ||
                memcmp(m->path, o->path, m->path_len) != 0)
                return FHIR_SEARCH_VALUES_SEVERAL;
        }
    }
    return all_short ? FHIR_SEARCH_VALUES_ONE_SHORT : FHIR_SEARCH_VALUES_ONE;
}

static const fhir_type_t *root_of(const fhir_search_param_t *param)
{
    return fhir_type_find(param->base, strlen(param->base));
}

/* 0: not known yet; else the answer + 1. */
#define MEMO_SIZE 4096
static _Atomic unsigned char memo_own[MEMO_SIZE];
static _Atomic unsigned char memo_common[64];

fhir_search_values_t fhir_search_param_values(const fhir_search_param_t *param)
{
    _Atomic unsigned char *slot = NULL;
    if (param >= fhir__search_params && param < fhir__search_params + fhir__search_param_count &&
        (size_t)(param - fhir__search_params) < MEMO_SIZE)
        slot = &memo_own[param - fhir__search_params];
    else if (param >= fhir__search_common &&
             param < fhir__search_common + fhir__search_common_count &&
             (size_t)(param - fhir__search_common) < sizeof(memo_common))
        slot = &memo_common[param - fhir__search_common];
    unsigned char known = slot ? atomic_load_explicit(slot, memory_order_relaxed) : 0;
    if (known)
        return (fhir_search_values_t)(known - 1);
    fhir_search_values_t values = expression_values(param->expression, root_of(param));
    /* racing threads compute the same answer */
    if (slot)
        atomic_store_explicit(slot, (unsigned char)(values + 1), memory_order_relaxed);
    return values;
}
