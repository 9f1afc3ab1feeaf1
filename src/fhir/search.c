/*
 * search.c - the search query parser: decoded name/value pairs in, a plan out.
 *
 * Each pair is a result parameter (_count, _sort, _include, ...) or a criterion, which
 * becomes one clause in every branch (AND). A pair is parsed whole before anything of it is
 * kept: on any problem it is reported (strict) or listed as ignored (lenient), and the plan is
 * as if it had not been sent. Arrays are sized from the query before they are filled, so
 * nothing grows; everything comes from the caller's arena.
 */
#include "fhir/search_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/jv.h"
#include "fhir/fhirpath.h"
#include "fhir/index.h"

typedef struct {
    const char *ptr;
    size_t len;
} span_t;

typedef struct {
    arena_t *arena;
    const fhir_search_snapshot_t *snapshot;
    const fhir_search_query_t *query;
    fhir_search_plan_t *plan;
    err_t *err;
    span_t name;   /* the name of the pair being parsed, for messages */
    size_t budget; /* clauses the current pair may still create */
    bool seen[16]; /* result parameters already applied (each may appear once) */
    size_t problems;
} parser_t;

/* --- small helpers ------------------------------------------------------------------------ */

static bool span_is(span_t s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

static bool starts_with(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

static const char *reasonf(parser_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static const char *reasonf(parser_t *p, const char *fmt, ...)
{
    buf_t b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    const char *s = arena_strndup(p->arena, b.ptr, b.len);
    buf_release(&b);
    return s;
}

/* A user's text for a message: at most 64 bytes (cut at a character boundary, then "..."),
 * double quotes and control characters replaced so the message stays one clean line. */
static const char *quoted(parser_t *p, const char *s, size_t len)
{
    size_t n = len;
    if (n > 64) {
        n = 64;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    char *out = arena_alloc(p->arena, n + 4);
    for (size_t i = 0; i < n; i++)
        out[i] = ((unsigned char)s[i] < 0x20 || s[i] == '"') ? '?' : s[i];
    if (n < len) {
        memcpy(out + n, "...", 4);
    } else {
        out[n] = '\0';
    }
    return out;
}

static const char *type_label(const fhir_type_t *type)
{
    return type ? type->name : "a search of all resource types";
}

/* Splits s at every `sep` not escaped by a backslash. Pieces keep their escapes. */
static span_t *split(parser_t *p, const char *s, size_t len, char sep, size_t *out_n)
{
    size_t n = 1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == sep)
            n++;
    }
    span_t *pieces = arena_alloc(p->arena, n * sizeof(*pieces));
    size_t k = 0, start = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\') {
            i++;
        } else if (s[i] == sep) {
            pieces[k++] = (span_t){s + start, i - start};
            start = i + 1;
        }
    }
    pieces[k++] = (span_t){s + start, len - start};
    *out_n = n;
    return pieces;
}

/* The text of a piece with the escapes \, \$ \| \\ removed (other backslashes kept). */
static char *unescape(parser_t *p, span_t s)
{
    char *out = arena_alloc(p->arena, s.len + 1);
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] == '\\' && i + 1 < s.len &&
            (s.ptr[i + 1] == ',' || s.ptr[i + 1] == '$' || s.ptr[i + 1] == '|' ||
             s.ptr[i + 1] == '\\'))
            i++;
        out[n++] = s.ptr[i];
    }
    out[n] = '\0';
    return out;
}

static bool valid_id(const char *s, size_t len)
{
    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return false;
    }
    return true;
}

/* True when a reference parameter may point at type (no targets listed: any). */
static bool targets_allow(const fhir_search_param_t *param, const fhir_type_t *type)
{
    if (param->ntargets == 0)
        return true;
    for (size_t i = 0; i < param->ntargets; i++) {
        if (strcmp(param->targets[i], type->name) == 0)
            return true;
    }
    return false;
}

/* --- values ------------------------------------------------------------------------------- */

/* A prefix at the start of a number, date or quantity value; *s and *len move past it. */
static const char *take_prefix(parser_t *p, const fhir_search_param_t *param, const char **s,
                               size_t *len, fhir_search_prefix_t *out)
{
    *out = FHIR_SEARCH_PREFIX_EQ;
    if (*len < 2 || (*s)[0] < 'a' || (*s)[0] > 'z')
        return NULL;
    for (int k = FHIR_SEARCH_PREFIX_EQ; k <= FHIR_SEARCH_PREFIX_AP; k++) {
        if (memcmp(*s, fhir_search_prefix_name((fhir_search_prefix_t)k), 2) != 0)
            continue;
        if (param->comparators && !(param->comparators & FHIR_SEARCH_BIT(k)))
            return reasonf(p, "prefix \"%s\" is not supported by %s",
                           fhir_search_prefix_name((fhir_search_prefix_t)k), param->code);
        *out = (fhir_search_prefix_t)k;
        *s += 2;
        *len -= 2;
        return NULL;
    }
    return NULL;
}

static const char *invalid(parser_t *p, const char *what, const char *code, span_t raw)
{
    return reasonf(p, "\"%s\" is not a valid %s for %s", quoted(p, raw.ptr, raw.len), what, code);
}

static const char *parse_token(parser_t *p, const char *code, span_t raw, fhir_search_value_t *v)
{
    size_t n;
    span_t *parts = split(p, raw.ptr, raw.len, '|', &n);
    if (n == 1) {
        v->as.token.system = NULL;
        v->as.token.code = unescape(p, parts[0]);
        return NULL;
    }
    if (n != 2 || (parts[0].len == 0 && parts[1].len == 0))
        return invalid(p, "token", code, raw);
    v->as.token.system = unescape(p, parts[0]);
    v->as.token.code = parts[1].len ? unescape(p, parts[1]) : NULL;
    return NULL;
}

static const char *parse_date_value(parser_t *p, const fhir_search_param_t *param, span_t raw,
                                    fhir_search_value_t *v)
{
    const char *s = raw.ptr;
    size_t len = raw.len;
    const char *why = take_prefix(p, param, &s, &len, &v->prefix);
    if (why)
        return why;
    if (fhir__search_parse_date(s, len, v))
        return invalid(p, "date", param->code, raw);
    if (v->prefix == FHIR_SEARCH_PREFIX_AP)
        fhir__search_date_approximate(v, p->query->now_us);
    return NULL;
}

static const char *parse_number_text(parser_t *p, const char *code, const char *what, span_t raw,
                                     const char *s, size_t len, bool approximate,
                                     fhir_search_number_t *out)
{
    const char *why = fhir__search_parse_number(p->arena, s, len, approximate, out);
    if (!why)
        return NULL;
    if (strcmp(why, "is out of range") == 0)
        return reasonf(p, "\"%s\" is out of range for %s", quoted(p, raw.ptr, raw.len), code);
    return invalid(p, what, code, raw);
}

static const char *parse_number_value(parser_t *p, const fhir_search_param_t *param, span_t raw,
                                      fhir_search_value_t *v)
{
    const char *s = raw.ptr;
    size_t len = raw.len;
    const char *why = take_prefix(p, param, &s, &len, &v->prefix);
    if (why)
        return why;
    return parse_number_text(p, param->code, "number", raw, s, len,
                             v->prefix == FHIR_SEARCH_PREFIX_AP, &v->as.number);
}

static const char *parse_quantity(parser_t *p, const fhir_search_param_t *param, span_t raw,
                                  fhir_search_value_t *v)
{
    const char *s = raw.ptr;
    size_t len = raw.len;
    const char *why = take_prefix(p, param, &s, &len, &v->prefix);
    if (why)
        return why;
    size_t n;
    span_t *parts = split(p, s, len, '|', &n);
    if (n != 1 && n != 3)
        return invalid(p, "quantity", param->code, raw);
    why = parse_number_text(p, param->code, "quantity", raw, parts[0].ptr, parts[0].len,
                            v->prefix == FHIR_SEARCH_PREFIX_AP, &v->as.quantity.number);
    if (why)
        return why;
    v->as.quantity.system = n == 3 && parts[1].len ? unescape(p, parts[1]) : NULL;
    v->as.quantity.code = n == 3 && parts[2].len ? unescape(p, parts[2]) : NULL;
    /* a UCUM unit: also in canonical units, to compare with the canonical form indexed */
    const fhir_search_number_t *number = &v->as.quantity.number;
    fhir_search_number_t *canonical = &v->as.quantity.canonical;
    char code[FHIR_INDEX_MAX_UCUM];
    if (v->as.quantity.system && v->as.quantity.code &&
        strcmp(v->as.quantity.system, FHIR_UCUM_SYSTEM) == 0 &&
        fhirpath_ucum_canonical(v->as.quantity.code, number->value, &canonical->value, code,
                                sizeof(code)) &&
        fhirpath_ucum_canonical(v->as.quantity.code, number->low_value, &canonical->low_value, code,
                                sizeof(code)) &&
        fhirpath_ucum_canonical(v->as.quantity.code, number->high_value, &canonical->high_value,
                                code, sizeof(code))) {
        canonical->text = number->text;
        canonical->low = number->low;
        canonical->high = number->high;
        v->as.quantity.canonical_code = arena_strdup(p->arena, code);
    }
    return NULL;
}

/* Reads Type/id or Type/id/_history/version from segments [at, n): n - at is 2 or 4. */
static bool type_and_id(parser_t *p, const span_t *seg, size_t at, size_t n, fhir_search_value_t *v)
{
    if (!(n - at == 2 || (n - at == 4 && span_is(seg[at + 2], "_history"))))
        return false;
    const fhir_type_t *type = fhir_resource_type_find(seg[at].ptr, seg[at].len);
    if (!type || !valid_id(seg[at + 1].ptr, seg[at + 1].len))
        return false;
    if (n - at == 4 && !valid_id(seg[n - 1].ptr, seg[n - 1].len))
        return false;
    v->as.reference.type = type;
    v->as.reference.id = arena_strndup(p->arena, seg[at + 1].ptr, seg[at + 1].len);
    v->as.reference.version =
        n - at == 4 ? arena_strndup(p->arena, seg[n - 1].ptr, seg[n - 1].len) : NULL;
    return true;
}

static const char *parse_reference(parser_t *p, const fhir_search_param_t *param,
                                   const fhir_type_t *modifier_type, span_t raw,
                                   fhir_search_value_t *v)
{
    char *text = unescape(p, raw);
    size_t len = strlen(text);
    size_t n;
    if (strstr(text, "://") || starts_with(text, len, "urn:")) {
        /* absolute: [base/]Type/id[/_history/version] when it has that shape, and a
         * canonical's "|version" */
        char *bar = strrchr(text, '|');
        if (bar) {
            v->as.reference.canonical_version = bar + 1;
            *bar = '\0';
            len = (size_t)(bar - text);
        }
        v->as.reference.url = text;
        span_t *seg = split(p, text, len, '/', &n);
        if (!(n >= 4 && type_and_id(p, seg, n - 4, n, v)) && n >= 2)
            type_and_id(p, seg, n - 2, n, v);
    } else if (strchr(text, '/')) {
        span_t *seg = split(p, text, len, '/', &n);
        if (!type_and_id(p, seg, 0, n, v))
            return invalid(p, "reference", param->code, raw);
    } else {
        if (!valid_id(text, len))
            return invalid(p, "reference", param->code, raw);
        v->as.reference.id = text;
        if (modifier_type) {
            v->as.reference.type = modifier_type;
        } else if (param->ntargets == 1) {
            v->as.reference.type =
                fhir_resource_type_find(param->targets[0], strlen(param->targets[0]));
        }
    }
    const fhir_type_t *type = v->as.reference.type;
    if (modifier_type && type && type != modifier_type)
        return reasonf(p, "\"%s\" is not a %s for %s:%s", quoted(p, raw.ptr, raw.len),
                       modifier_type->name, param->code, modifier_type->name);
    if (type && !targets_allow(param, type))
        return reasonf(p,
                       "\"%s\" is not a valid reference for %s: %s is not one of its target "
                       "types",
                       quoted(p, raw.ptr, raw.len), param->code, type->name);
    return NULL;
}

static const char *parse_near(parser_t *p, const fhir_search_param_t *param, span_t raw,
                              fhir_search_value_t *v)
{
    size_t n;
    span_t *parts = split(p, raw.ptr, raw.len, '|', &n);
    if (n < 2 || n > 4)
        return invalid(p, "position (latitude|longitude|distance|units)", param->code, raw);
    fhir_search_number_t lat, lon;
    if (fhir__search_parse_number(p->arena, parts[0].ptr, parts[0].len, false, &lat) ||
        fhir__search_parse_number(p->arena, parts[1].ptr, parts[1].len, false, &lon) ||
        lat.value < -90 || lat.value > 90 || lon.value < -180 || lon.value > 180)
        return invalid(p, "position (latitude|longitude|distance|units)", param->code, raw);
    v->as.near.latitude = lat.value;
    v->as.near.longitude = lon.value;
    if (n >= 3 && parts[2].len) {
        if (fhir__search_parse_number(p->arena, parts[2].ptr, parts[2].len, false,
                                      &v->as.near.distance) ||
            v->as.near.distance.value < 0)
            return invalid(p, "distance", param->code, raw);
        v->as.near.has_distance = true;
    }
    v->as.near.units = n == 4 && parts[3].len ? unescape(p, parts[3]) : NULL;
    return NULL;
}

/* The length of s (len bytes) cut at FHIR_INDEX_MAX_STRING bytes on a character boundary,
 * as the index cuts what it stores. */
static size_t index_cut(const char *s, size_t len)
{
    if (len > FHIR_INDEX_MAX_STRING) {
        len = FHIR_INDEX_MAX_STRING;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
    }
    return len;
}

/* The value and its normalized form, each cut as the index cuts them: a value longer than
 * what is stored is compared up to the cut. */
static void string_value(parser_t *p, span_t raw, fhir_search_value_t *v)
{
    const char *s = unescape(p, raw);
    size_t n = strlen(s);
    buf_t b = BUF_INIT;
    fhir_search_normalize(s, n, &b);
    v->as.string.value = arena_strndup(p->arena, s, index_cut(s, n));
    v->as.string.normalized = arena_strndup(p->arena, b.ptr, index_cut(b.ptr, b.len));
    buf_release(&b);
}

/* A value of a parameter of type `type` (the component type inside a composite). */
static const char *parse_typed(parser_t *p, const fhir_search_param_t *param,
                               fhir_search_type_t type, fhir_search_modifier_t modifier,
                               const fhir_type_t *modifier_type, span_t raw,
                               fhir_search_value_t *v);

static const char *parse_composite(parser_t *p, const fhir_search_param_t *param, span_t raw,
                                   fhir_search_value_t *v)
{
    size_t n;
    span_t *parts = split(p, raw.ptr, raw.len, '$', &n);
    if (n != param->ncomponents)
        return reasonf(p,
                       "\"%s\" is not a valid value for %s: it needs %u parts separated by "
                       "\"$\"",
                       quoted(p, raw.ptr, raw.len), param->code, (unsigned)param->ncomponents);
    fhir_search_value_t *c = arena_zalloc(p->arena, n * sizeof(*c));
    for (size_t i = 0; i < n; i++) {
        const fhir_search_component_t *k = &param->components[i];
        /* prefixes and messages follow the component's own parameter */
        fhir_search_param_t component = {.code = k->code, .type = k->type};
        if (parts[i].len == 0)
            return reasonf(p, "\"%s\" is not a valid value for %s: part %zu is empty",
                           quoted(p, raw.ptr, raw.len), param->code, i + 1);
        const char *why =
            parse_typed(p, &component, k->type, FHIR_SEARCH_MOD_NONE, NULL, parts[i], &c[i]);
        if (why)
            return why;
    }
    v->as.composite.components = c;
    v->as.composite.ncomponents = n;
    return NULL;
}

static const char *parse_typed(parser_t *p, const fhir_search_param_t *param,
                               fhir_search_type_t type, fhir_search_modifier_t modifier,
                               const fhir_type_t *modifier_type, span_t raw, fhir_search_value_t *v)
{
    v->text = unescape(p, raw);
    v->prefix = FHIR_SEARCH_PREFIX_EQ;
    if (modifier == FHIR_SEARCH_MOD_MISSING) {
        if (span_is(raw, "true") || span_is(raw, "false")) {
            v->as.missing = span_is(raw, "true");
            return NULL;
        }
        return reasonf(p, "\"%s\" is not a valid value for %s:missing (true or false)",
                       quoted(p, raw.ptr, raw.len), param->code);
    }
    switch (type) {
    case FHIR_SEARCH_STRING: string_value(p, raw, v); return NULL;
    case FHIR_SEARCH_TOKEN:
        switch (modifier) {
        case FHIR_SEARCH_MOD_TEXT: string_value(p, raw, v); return NULL;
        case FHIR_SEARCH_MOD_IN:
        case FHIR_SEARCH_MOD_NOT_IN: v->as.uri.value = v->text; return NULL;
        case FHIR_SEARCH_MOD_OF_TYPE: {
            size_t n;
            span_t *parts = split(p, raw.ptr, raw.len, '|', &n);
            if (n != 3 || !parts[0].len || !parts[1].len || !parts[2].len)
                return invalid(p, ":of-type value (system|code|value)", param->code, raw);
            v->as.of_type.type_system = unescape(p, parts[0]);
            v->as.of_type.type_code = unescape(p, parts[1]);
            v->as.of_type.value = unescape(p, parts[2]);
            return NULL;
        }
        default: return parse_token(p, param->code, raw, v);
        }
    case FHIR_SEARCH_DATE: return parse_date_value(p, param, raw, v);
    case FHIR_SEARCH_NUMBER: return parse_number_value(p, param, raw, v);
    case FHIR_SEARCH_QUANTITY: return parse_quantity(p, param, raw, v);
    case FHIR_SEARCH_REFERENCE:
        if (modifier == FHIR_SEARCH_MOD_IDENTIFIER)
            return parse_token(p, param->code, raw, v);
        return parse_reference(p, param, modifier_type, raw, v);
    case FHIR_SEARCH_URI: v->as.uri.value = v->text; return NULL;
    case FHIR_SEARCH_COMPOSITE: return parse_composite(p, param, raw, v);
    case FHIR_SEARCH_SPECIAL: return parse_near(p, param, raw, v);
    }
    return invalid(p, "value", param->code, raw);
}

/* --- criteria ----------------------------------------------------------------------------- */

/* The type of a simple path ("Patient.identifier", "Patient.contact.name"): 1 when every
 * member of the union ends at an Identifier, 0 when one does not, -1 when that cannot be
 * told without evaluating FHIRPath. */
static int expression_is_identifier(const fhir_type_t *type, const char *expression)
{
    if (!type || !expression || strpbrk(expression, "()'"))
        return -1;
    const char *s = expression;
    int answer = 1;
    for (;;) {
        while (*s == ' ' || *s == '|')
            s++;
        if (!*s)
            break;
        const char *end = s;
        while (*end && *end != ' ' && *end != '|')
            end++;
        size_t n = strlen(type->name);
        if ((size_t)(end - s) <= n || memcmp(s, type->name, n) != 0 || s[n] != '.')
            return -1;
        const fhir_type_t *cur = type;
        const char *seg = s + n + 1;
        while (seg < end) {
            const char *dot = memchr(seg, '.', (size_t)(end - seg));
            size_t len = dot ? (size_t)(dot - seg) : (size_t)(end - seg);
            const fhir_element_t *e = NULL;
            for (size_t i = 0; i < cur->nelements; i++) {
                if (strlen(cur->elements[i].name) == len &&
                    memcmp(cur->elements[i].name, seg, len) == 0)
                    e = &cur->elements[i];
            }
            if (!e || e->ntypes != 1)
                return -1;
            cur = e->types[0];
            seg += len + (dot ? 1 : 0);
            if (!dot)
                break;
        }
        if (strcmp(cur->name, "Identifier") != 0)
            answer = 0;
        s = end;
    }
    return answer;
}

/* Which modifiers each parameter type takes (besides :missing, which all take but special). */
static bool modifier_applies(fhir_search_type_t type, fhir_search_modifier_t m)
{
    if (m == FHIR_SEARCH_MOD_MISSING)
        return type != FHIR_SEARCH_SPECIAL;
    switch (type) {
    case FHIR_SEARCH_STRING: return m == FHIR_SEARCH_MOD_EXACT || m == FHIR_SEARCH_MOD_CONTAINS;
    case FHIR_SEARCH_TOKEN:
        return m == FHIR_SEARCH_MOD_NOT || m == FHIR_SEARCH_MOD_TEXT || m == FHIR_SEARCH_MOD_IN ||
               m == FHIR_SEARCH_MOD_NOT_IN || m == FHIR_SEARCH_MOD_ABOVE ||
               m == FHIR_SEARCH_MOD_BELOW || m == FHIR_SEARCH_MOD_OF_TYPE;
    case FHIR_SEARCH_REFERENCE: return m == FHIR_SEARCH_MOD_TYPE || m == FHIR_SEARCH_MOD_IDENTIFIER;
    case FHIR_SEARCH_URI: return m == FHIR_SEARCH_MOD_ABOVE || m == FHIR_SEARCH_MOD_BELOW;
    default: return false;
    }
}

static const char *parse_criterion(parser_t *p, const fhir_type_t *type, const char *name,
                                   size_t len, span_t value, int depth, fhir_search_clause_t *out);

/* --- full text ------------------------------------------------------------------------------ */

typedef struct {
    parser_t *p;
    const char *code;
    const char *s; /* the value, unescaped */
    size_t at, nterms;
    int depth;
    const char *error;
} text_parser_t;

static bool text_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void text_skip(text_parser_t *t)
{
    while (text_space(t->s[t->at]))
        t->at++;
}

/* The length of the word at t->at (up to a space, a parenthesis or a quote). */
static size_t text_word(const text_parser_t *t)
{
    size_t n = 0;
    for (char c; (c = t->s[t->at + n]) && !text_space(c) && c != '(' && c != ')' && c != '"';)
        n++;
    return n;
}

static bool text_keyword(const text_parser_t *t, const char *keyword)
{
    size_t n = text_word(t);
    return n == strlen(keyword) && strncasecmp(t->s + t->at, keyword, n) == 0;
}

static const fhir_search_text_t *text_fail(text_parser_t *t, const char *what)
{
    if (!t->error)
        t->error = reasonf(t->p, "cannot read the %s query \"%s\": %s", t->code,
                           quoted(t->p, t->s, strlen(t->s)), what);
    return NULL;
}

static const fhir_search_text_t *text_or(text_parser_t *t);

static const fhir_search_text_t *text_primary(text_parser_t *t)
{
    text_skip(t);
    char c = t->s[t->at];
    if (!c)
        return text_fail(t, "a term is missing at the end");
    if (c == ')')
        return text_fail(t, "a term is missing before \")\"");
    if (c == '(') {
        if (++t->depth > 16)
            return text_fail(t, "parentheses are nested too deeply");
        t->at++;
        const fhir_search_text_t *inner = text_or(t);
        if (!inner)
            return NULL;
        text_skip(t);
        if (t->s[t->at] != ')')
            return text_fail(t, "a \"(\" is not closed");
        t->at++;
        t->depth--;
        return inner;
    }
    if (text_keyword(t, "and") || text_keyword(t, "or"))
        return text_fail(t, arena_printf(t->p->arena, "a term is missing before \"%.*s\"",
                                         (int)text_word(t), t->s + t->at));
    if (++t->nterms > FHIR_SEARCH_TEXT_MAX_TERMS)
        return text_fail(t, "it has too many terms");
    fhir_search_text_t *node = arena_zalloc(t->p->arena, sizeof(*node));
    node->kind = FHIR_SEARCH_TEXT_TERM;
    if (c == '"') {
        const char *end = strchr(t->s + t->at + 1, '"');
        if (!end)
            return text_fail(t, "a quote is not closed");
        node->term = arena_strndup(t->p->arena, t->s + t->at + 1, (size_t)(end - t->s) - t->at - 1);
        t->at = (size_t)(end - t->s) + 1;
        return node;
    }
    size_t n = text_word(t);
    node->prefix = n > 1 && t->s[t->at + n - 1] == '*';
    node->term = arena_strndup(t->p->arena, t->s + t->at, node->prefix ? n - 1 : n);
    t->at += n;
    return node;
}

static const fhir_search_text_t *text_join(text_parser_t *t, fhir_search_text_kind_t kind,
                                           const fhir_search_text_t *left,
                                           const fhir_search_text_t *right)
{
    if (!left || !right)
        return NULL;
    fhir_search_text_t *node = arena_zalloc(t->p->arena, sizeof(*node));
    node->kind = kind;
    node->left = left;
    node->right = right;
    return node;
}

static const fhir_search_text_t *text_and(text_parser_t *t)
{
    const fhir_search_text_t *left = text_primary(t);
    for (;;) {
        if (!left)
            return NULL;
        text_skip(t);
        char c = t->s[t->at];
        if (!c || c == ')' || text_keyword(t, "or"))
            return left;
        if (text_keyword(t, "and"))
            t->at += 3;
        left = text_join(t, FHIR_SEARCH_TEXT_AND, left, text_primary(t));
    }
}

static const fhir_search_text_t *text_or(text_parser_t *t)
{
    const fhir_search_text_t *left = text_and(t);
    for (;;) {
        if (!left)
            return NULL;
        text_skip(t);
        if (!text_keyword(t, "or"))
            return left;
        t->at += 2;
        left = text_join(t, FHIR_SEARCH_TEXT_OR, left, text_and(t));
    }
}

/* _content and _text: each comma-separated value a full-text query (OR). */
static const char *parse_fulltext(parser_t *p, const char *code, span_t modifier, span_t value,
                                  fhir_search_clause_t *out)
{
    if (modifier.len)
        return reasonf(p, "modifier \":%s\" does not apply to \"%s\"",
                       quoted(p, modifier.ptr, modifier.len), code);
    if (!value.len)
        return reasonf(p, "search parameter \"%s\" has no value", code);
    size_t n;
    span_t *pieces = split(p, value.ptr, value.len, ',', &n);
    out->values = arena_zalloc(p->arena, n * sizeof(*out->values));
    out->nvalues = n;
    for (size_t i = 0; i < n; i++) {
        fhir_search_value_t *v = &out->values[i];
        v->text = unescape(p, pieces[i]);
        text_parser_t t = {.p = p, .code = code, .s = v->text};
        v->as.text = text_or(&t);
        if (v->as.text) {
            text_skip(&t);
            if (t.s[t.at] == ')')
                text_fail(&t, "a \")\" has no \"(\"");
        }
        if (t.error)
            return t.error;
        if (!v->as.text)
            return reasonf(p, "search parameter \"%s\" has an empty value", code);
    }
    return NULL;
}

static const char *unknown_param(parser_t *p, const fhir_type_t *type, const char *code, size_t len)
{
    return reasonf(p, "unknown search parameter \"%s\" for %s", quoted(p, code, len),
                   type_label(type));
}

static const char *parse_has(parser_t *p, const fhir_type_t *type, const char *name, size_t len,
                             span_t value, int depth, fhir_search_clause_t *out)
{
    /* _has:Type:param:rest */
    const char *s = name + 5, *end = name + len;
    const char *c1 = memchr(s, ':', (size_t)(end - s));
    const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(end - c1 - 1)) : NULL;
    if (!c1 || !c2 || c2 + 1 >= end)
        return reasonf(p,
                       "\"%s\" is not a valid _has parameter: use "
                       "_has:Type:reference:parameter",
                       quoted(p, name, len));
    const fhir_type_t *source = fhir_resource_type_find(s, (size_t)(c1 - s));
    if (!source)
        return reasonf(p, "unknown resource type \"%s\" in %s", quoted(p, s, (size_t)(c1 - s)),
                       quoted(p, name, len));
    const char *code = c1 + 1;
    size_t code_len = (size_t)(c2 - code);
    const fhir_search_param_t *ref = fhir_search_snapshot_find(p->snapshot, source, code, code_len);
    if (!ref)
        return unknown_param(p, source, code, code_len);
    if (ref->type != FHIR_SEARCH_REFERENCE)
        return reasonf(p, "search parameter \"%s\" of %s is not a reference", ref->code,
                       source->name);
    if (type && !targets_allow(ref, type))
        return reasonf(p, "search parameter \"%s\" of %s cannot refer to %s", ref->code,
                       source->name, type->name);
    out->kind = FHIR_SEARCH_CLAUSE_HAS;
    out->type = type;
    out->param = ref;
    out->next = arena_zalloc(p->arena, sizeof(*out->next));
    out->nnext = 1;
    return parse_criterion(p, source, c2 + 1, (size_t)(end - c2 - 1), value, depth + 1, out->next);
}

static const char *parse_chain(parser_t *p, const fhir_type_t *type,
                               const fhir_search_param_t *param, span_t modifier, const char *rest,
                               size_t rest_len, span_t value, int depth, fhir_search_clause_t *out)
{
    if (param->type != FHIR_SEARCH_REFERENCE)
        return reasonf(p,
                       "search parameter \"%s\" of %s is not a reference and cannot be "
                       "chained",
                       param->code, type_label(type));
    if (rest_len == 0)
        return reasonf(p, "the chain after \"%s\" is empty", param->code);
    const fhir_type_t **candidates;
    size_t ncandidates = 0;
    if (modifier.len) {
        const fhir_type_t *t = fhir_resource_type_find(modifier.ptr, modifier.len);
        if (!t)
            return reasonf(p,
                           "modifier \":%s\" cannot be used in a chain: only a resource "
                           "type can",
                           quoted(p, modifier.ptr, modifier.len));
        if (!targets_allow(param, t))
            return reasonf(p, "%s is not a target type of \"%s\"", t->name, param->code);
        candidates = arena_alloc(p->arena, sizeof(*candidates));
        candidates[ncandidates++] = t;
    } else {
        size_t n = param->ntargets ? param->ntargets : fhir_resource_type_count;
        candidates = arena_alloc(p->arena, n * sizeof(*candidates));
        /* the next link's code: up to '.', or ':' of a modifier */
        size_t code_len = 0;
        while (code_len < rest_len && rest[code_len] != '.' && rest[code_len] != ':')
            code_len++;
        bool has = starts_with(rest, rest_len, "_has:");
        for (size_t i = 0; i < n; i++) {
            const fhir_type_t *t =
                param->ntargets
                    ? fhir_resource_type_find(param->targets[i], strlen(param->targets[i]))
                    : fhir_resource_types[i];
            if (t && (has || fhir_search_snapshot_find(p->snapshot, t, rest, code_len)))
                candidates[ncandidates++] = t;
        }
        if (ncandidates == 0)
            return reasonf(p, "unknown search parameter \"%s\" for the target types of \"%s\"",
                           quoted(p, rest, code_len), param->code);
    }
    out->kind = FHIR_SEARCH_CLAUSE_CHAIN;
    out->type = type;
    out->param = param;
    out->next = arena_zalloc(p->arena, ncandidates * sizeof(*out->next));
    out->nnext = 0;
    /* Without a type the chain is an OR over the targets on which the rest of it is valid;
     * it fails only when it is valid on none (with the first target's reason). */
    const char *first_why = NULL;
    for (size_t i = 0; i < ncandidates; i++) {
        fhir_search_clause_t *next = &out->next[out->nnext];
        const char *why = parse_criterion(p, candidates[i], rest, rest_len, value, depth + 1, next);
        if (!why)
            out->nnext++;
        else if (!first_why)
            first_why = why;
        if (why && (modifier.len || p->budget == 0))
            return why;
        if (why)
            memset(next, 0, sizeof(*next));
    }
    return out->nnext ? NULL : first_why;
}

static const char *parse_list(parser_t *p, span_t value, fhir_search_clause_t *out)
{
    size_t n;
    span_t *pieces = split(p, value.ptr, value.len, ',', &n);
    const fhir_type_t *list = fhir_resource_type_find("List", 4);
    out->kind = FHIR_SEARCH_CLAUSE_LIST;
    out->values = arena_zalloc(p->arena, n * sizeof(*out->values));
    out->nvalues = n;
    for (size_t i = 0; i < n; i++) {
        char *id = unescape(p, pieces[i]);
        size_t len = strlen(id);
        bool functional = len > 1 && id[0] == '$' && valid_id(id + 1, len - 1);
        if (!functional && !valid_id(id, len))
            return invalid(p, "List id", "_list", pieces[i]);
        out->values[i].text = id;
        out->values[i].as.reference.type = list;
        out->values[i].as.reference.id = id;
    }
    return NULL;
}

static const char *parse_leaf(parser_t *p, const fhir_type_t *type,
                              const fhir_search_param_t *param, span_t modifier, span_t value,
                              fhir_search_clause_t *out)
{
    const char *code = param->code;
    out->kind = FHIR_SEARCH_CLAUSE_PARAM;
    out->type = type;
    out->param = param;
    if (!param->url) {
        if (strcmp(code, "_list") == 0 && !modifier.len) {
            if (!value.len)
                return reasonf(p, "search parameter \"_list\" has no value");
            return parse_list(p, value, out);
        }
        if (strcmp(code, "_has") == 0)
            return reasonf(p, "\"_has\" needs the form _has:Type:reference:parameter");
        return reasonf(p, "search parameter \"%s\" cannot be used here", code);
    }
    if (strcmp(code, "_text") == 0 || strcmp(code, "_content") == 0)
        return parse_fulltext(p, code, modifier, value, out);
    if (param->type == FHIR_SEARCH_SPECIAL && param->xpath_usage != FHIR_SEARCH_XPATH_NEARBY)
        return reasonf(p, "search parameter \"%s\" is not supported", code);
    if (!param->expression)
        return reasonf(p, "search parameter \"%s\" is not supported", code);

    fhir_search_modifier_t m = FHIR_SEARCH_MOD_NONE;
    if (modifier.len) {
        for (int k = FHIR_SEARCH_MOD_MISSING; k < FHIR_SEARCH_MOD_TYPE; k++) {
            if (span_is(modifier, fhir_search_modifier_name((fhir_search_modifier_t)k)))
                m = (fhir_search_modifier_t)k;
        }
        if (m == FHIR_SEARCH_MOD_NONE) {
            out->modifier_type = fhir_resource_type_find(modifier.ptr, modifier.len);
            if (!out->modifier_type)
                return reasonf(p, "unknown modifier \":%s\" on \"%s\"",
                               quoted(p, modifier.ptr, modifier.len), code);
            m = FHIR_SEARCH_MOD_TYPE;
        }
        if (!modifier_applies(param->type, m))
            return reasonf(p, "modifier \":%s\" does not apply to %s parameter \"%s\"",
                           quoted(p, modifier.ptr, modifier.len),
                           fhir_search_type_name(param->type), code);
        if (param->modifiers && !(param->modifiers & FHIR_SEARCH_BIT(m)))
            return reasonf(p, "modifier \":%s\" is not supported by \"%s\"",
                           quoted(p, modifier.ptr, modifier.len), code);
        if (m == FHIR_SEARCH_MOD_TYPE && !targets_allow(param, out->modifier_type))
            return reasonf(p, "%s is not a target type of \"%s\"", out->modifier_type->name, code);
        if (m == FHIR_SEARCH_MOD_OF_TYPE && expression_is_identifier(type, param->expression) == 0)
            return reasonf(p, "modifier \":of-type\" applies to identifiers, not to \"%s\"", code);
    }
    out->modifier = m;
    if (!value.len)
        return reasonf(p, "search parameter \"%s\" has no value", code);
    size_t n;
    span_t *pieces = split(p, value.ptr, value.len, ',', &n);
    out->values = arena_zalloc(p->arena, n * sizeof(*out->values));
    out->nvalues = n;
    for (size_t i = 0; i < n; i++) {
        if (!pieces[i].len)
            return reasonf(p, "search parameter \"%s\" has an empty value in \"%s\"", code,
                           quoted(p, value.ptr, value.len));
        const char *why =
            parse_typed(p, param, param->type, m, out->modifier_type, pieces[i], &out->values[i]);
        if (why)
            return why;
    }
    return NULL;
}

static const char *parse_criterion(parser_t *p, const fhir_type_t *type, const char *name,
                                   size_t len, span_t value, int depth, fhir_search_clause_t *out)
{
    if (depth > FHIR_SEARCH_MAX_CHAIN)
        return reasonf(p, "\"%s\" follows more than %d references",
                       quoted(p, p->name.ptr, p->name.len), FHIR_SEARCH_MAX_CHAIN);
    if (p->budget == 0)
        return reasonf(p,
                       "\"%s\" reaches too many resource types: name a target type, as in "
                       "subject:Patient.name",
                       quoted(p, p->name.ptr, p->name.len));
    p->budget--;
    if (starts_with(name, len, "_has:"))
        return parse_has(p, type, name, len, value, depth, out);
    const char *dot = memchr(name, '.', len);
    size_t link_len = dot ? (size_t)(dot - name) : len;
    const char *colon = memchr(name, ':', link_len);
    size_t code_len = colon ? (size_t)(colon - name) : link_len;
    span_t modifier = {colon ? colon + 1 : name, colon ? link_len - code_len - 1 : 0};
    if (colon && modifier.len == 0)
        return reasonf(p, "empty modifier in \"%s\"", quoted(p, name, len));
    const fhir_search_param_t *param = fhir_search_snapshot_find(p->snapshot, type, name, code_len);
    if (!param)
        return unknown_param(p, type, name, code_len);
    if (dot)
        return parse_chain(p, type, param, modifier, dot + 1, len - link_len - 1, value, depth,
                           out);
    return parse_leaf(p, type, param, modifier, value, out);
}

/* --- result parameters -------------------------------------------------------------------- */

enum {
    SEEN_COUNT,
    SEEN_OFFSET,
    SEEN_SORT,
    SEEN_SUMMARY,
    SEEN_ELEMENTS,
    SEEN_TOTAL,
    SEEN_CONTAINED,
    SEEN_CONTAINED_TYPE,
};

static const char *parse_unsigned(parser_t *p, const char *name, span_t v, uint32_t max,
                                  uint32_t *out)
{
    uint64_t n = 0;
    if (v.len == 0 || v.len > 9)
        return reasonf(p, "\"%s\" is not a valid value for %s", quoted(p, v.ptr, v.len), name);
    for (size_t i = 0; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9')
            return reasonf(p, "\"%s\" is not a valid value for %s", quoted(p, v.ptr, v.len), name);
        n = n * 10 + (uint64_t)(v.ptr[i] - '0');
    }
    *out = n > max ? max : (uint32_t)n;
    return NULL;
}

/* One of the words of an enumeration, or a reason listing them. */
static const char *parse_word(parser_t *p, const char *name, span_t v, const char *const *words,
                              size_t n, int *out)
{
    for (size_t i = 0; i < n; i++) {
        if (span_is(v, words[i])) {
            *out = (int)i;
            return NULL;
        }
    }
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < n; i++)
        buf_addf(&b, "%s%s", i ? ", " : "", words[i]);
    const char *why =
        reasonf(p, "\"%s\" is not a valid value for %s (%s)", quoted(p, v.ptr, v.len), name, b.ptr);
    buf_release(&b);
    return why;
}

static const char *parse_sort(parser_t *p, span_t v)
{
    size_t n;
    span_t *keys = split(p, v.ptr, v.len, ',', &n);
    fhir_search_plan_t *plan = p->plan;
    fhir_search_sort_t **sorts = arena_alloc(p->arena, plan->nbranches * sizeof(*sorts));
    for (size_t b = 0; b < plan->nbranches; b++) {
        const fhir_type_t *type = plan->branches[b].type;
        sorts[b] = arena_zalloc(p->arena, n * sizeof(**sorts));
        for (size_t i = 0; i < n; i++) {
            span_t k = keys[i];
            bool descending = k.len && k.ptr[0] == '-';
            if (descending) {
                k.ptr++;
                k.len--;
            }
            if (!k.len)
                return reasonf(p, "\"%s\" is not a valid value for _sort", quoted(p, v.ptr, v.len));
            const fhir_search_param_t *param =
                fhir_search_snapshot_find(p->snapshot, type, k.ptr, k.len);
            if (!param)
                return unknown_param(p, type, k.ptr, k.len);
            if (param->type == FHIR_SEARCH_COMPOSITE || param->type == FHIR_SEARCH_SPECIAL ||
                !param->expression)
                return reasonf(p, "cannot sort by %s parameter \"%s\"",
                               fhir_search_type_name(param->type), param->code);
            sorts[b][i].param = param;
            sorts[b][i].descending = descending;
        }
    }
    for (size_t b = 0; b < plan->nbranches; b++) {
        plan->branches[b].sort = sorts[b];
        plan->branches[b].nsort = n;
    }
    return NULL;
}

static bool has_element(const fhir_type_t *type, span_t name)
{
    for (size_t i = 0; i < type->nelements; i++) {
        if (span_is(name, type->elements[i].name))
            return true;
    }
    return false;
}

static const char *parse_elements(parser_t *p, span_t v)
{
    size_t n;
    span_t *names = split(p, v.ptr, v.len, ',', &n);
    const char **out = arena_alloc(p->arena, n * sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        bool ok = names[i].len > 0;
        for (size_t k = 0; ok && k < names[i].len; k++) {
            char c = names[i].ptr[k];
            ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (k && c >= '0' && c <= '9');
        }
        if (!ok)
            return reasonf(p, "\"%s\" is not a valid value for _elements", quoted(p, v.ptr, v.len));
        bool known = p->plan->branches[0].type == NULL;
        for (size_t b = 0; b < p->plan->nbranches && !known; b++)
            known = has_element(p->plan->branches[b].type, names[i]);
        if (!known)
            return reasonf(p, "unknown element \"%s\" in _elements for %s",
                           quoted(p, names[i].ptr, names[i].len),
                           type_label(p->plan->branches[0].type));
        out[i] = arena_strndup(p->arena, names[i].ptr, names[i].len);
    }
    p->plan->elements = out;
    p->plan->nelements = n;
    return NULL;
}

static bool searched(const fhir_search_plan_t *plan, const fhir_type_t *type)
{
    for (size_t b = 0; b < plan->nbranches; b++) {
        if (!plan->branches[b].type || plan->branches[b].type == type)
            return true;
    }
    return false;
}

static const char *parse_include(parser_t *p, bool reverse, span_t modifier, span_t v)
{
    const char *name = reverse ? "_revinclude" : "_include";
    fhir_search_include_t inc = {.reverse = reverse};
    if (modifier.len) {
        if (!span_is(modifier, "iterate") && !span_is(modifier, "recurse"))
            return reasonf(p, "unknown modifier \":%s\" on \"%s\"",
                           quoted(p, modifier.ptr, modifier.len), name);
        inc.iterate = true;
    }
    size_t n;
    span_t *parts = split(p, v.ptr, v.len, ':', &n);
    fhir_search_plan_t *plan = p->plan;
    if (n == 1 && span_is(parts[0], "*") && !reverse) {
        if (plan->nbranches != 1 || !plan->branches[0].type)
            return reasonf(p, "_include=* needs the type searched: use Type:*");
        inc.source = plan->branches[0].type;
    } else {
        if (n < 2 || n > 3)
            return reasonf(p, "\"%s\" is not a valid value for %s: use Type:parameter[:Target]",
                           quoted(p, v.ptr, v.len), name);
        inc.source = fhir_resource_type_find(parts[0].ptr, parts[0].len);
        if (!inc.source)
            return reasonf(p, "unknown resource type \"%s\" in %s",
                           quoted(p, parts[0].ptr, parts[0].len), name);
        if (!span_is(parts[1], "*")) {
            inc.param =
                fhir_search_snapshot_find(p->snapshot, inc.source, parts[1].ptr, parts[1].len);
            if (!inc.param)
                return unknown_param(p, inc.source, parts[1].ptr, parts[1].len);
            if (inc.param->type != FHIR_SEARCH_REFERENCE)
                return reasonf(p, "search parameter \"%s\" of %s is not a reference",
                               inc.param->code, inc.source->name);
        }
        if (n == 3) {
            inc.target = fhir_resource_type_find(parts[2].ptr, parts[2].len);
            if (!inc.target)
                return reasonf(p, "unknown resource type \"%s\" in %s",
                               quoted(p, parts[2].ptr, parts[2].len), name);
            if (inc.param && !targets_allow(inc.param, inc.target))
                return reasonf(p, "%s is not a target type of \"%s\"", inc.target->name,
                               inc.param->code);
        }
    }
    /* Without :iterate an include starts from the resources searched, a revinclude ends at
     * them; one that cannot do so would do nothing, which a client should hear about. */
    if (!inc.iterate && !reverse && !searched(plan, inc.source))
        return reasonf(p, "%s \"%s\" does not start from %s, the type searched", name,
                       quoted(p, v.ptr, v.len), type_label(plan->branches[0].type));
    if (!inc.iterate && reverse && plan->nbranches == 1 && plan->branches[0].type) {
        const fhir_type_t *t = plan->branches[0].type;
        if ((inc.param && !targets_allow(inc.param, t)) || (inc.target && inc.target != t))
            return reasonf(p, "%s \"%s\" cannot refer to %s, the type searched", name,
                           quoted(p, v.ptr, v.len), t->name);
    }
    plan->includes[plan->nincludes++] = inc;
    return NULL;
}

/* Handles a result parameter; *handled false when name is not one. */
static const char *parse_result(parser_t *p, span_t code, span_t modifier, span_t v, bool *handled,
                                const char **applied_value)
{
    static const char *const summaries[] = {"true", "text", "data", "count", "false"};
    static const char *const totals[] = {"none", "estimate", "accurate"};
    static const char *const containeds[] = {"false", "true", "both"};
    static const char *const contained_types[] = {"container", "contained"};
    static const char *const names[] = {"_count",    "_offset", "_sort",      "_summary",
                                        "_elements", "_total",  "_contained", "_containedType"};
    *handled = true;
    if (span_is(code, "_include") || span_is(code, "_revinclude")) {
        if (!v.len)
            return reasonf(p, "search parameter \"%s\" has no value", code.ptr);
        return parse_include(p, span_is(code, "_revinclude"), modifier, v);
    }
    int which = -1;
    for (int i = 0; i < 8; i++) {
        if (span_is(code, names[i]))
            which = i;
    }
    if (which < 0) {
        *handled = false;
        return NULL;
    }
    const char *name = names[which];
    if (modifier.len)
        return reasonf(p, "unknown modifier \":%s\" on \"%s\"",
                       quoted(p, modifier.ptr, modifier.len), name);
    if (p->seen[which])
        return reasonf(p, "\"%s\" may appear only once", name);
    if (!v.len)
        return reasonf(p, "search parameter \"%s\" has no value", name);
    fhir_search_plan_t *plan = p->plan;
    const char *why = NULL;
    int word = 0;
    switch (which) {
    case SEEN_COUNT: {
        uint32_t count;
        if ((why = parse_unsigned(p, name, v, FHIR_SEARCH_MAX_COUNT, &count)))
            break;
        plan->count = count;
        *applied_value = reasonf(p, "%u", count);
        break;
    }
    case SEEN_OFFSET: {
        uint32_t offset;
        if ((why = parse_unsigned(p, name, v, UINT32_MAX, &offset)))
            break;
        if (offset > FHIR_SEARCH_MAX_OFFSET) {
            why =
                reasonf(p, "_offset %u is over the maximum of %d", offset, FHIR_SEARCH_MAX_OFFSET);
            break;
        }
        plan->offset = offset;
        break;
    }
    case SEEN_SORT: why = parse_sort(p, v); break;
    case SEEN_SUMMARY:
        if (!(why = parse_word(p, name, v, summaries, 5, &word)))
            plan->summary = (fhir_search_summary_t)(FHIR_SEARCH_SUMMARY_TRUE + word);
        break;
    case SEEN_ELEMENTS: why = parse_elements(p, v); break;
    case SEEN_TOTAL:
        if (!(why = parse_word(p, name, v, totals, 3, &word)))
            plan->total = (fhir_search_total_t)(FHIR_SEARCH_TOTAL_NONE + word);
        break;
    case SEEN_CONTAINED:
        if (!(why = parse_word(p, name, v, containeds, 3, &word)))
            plan->contained = (fhir_search_contained_t)word;
        break;
    default:
        if (!(why = parse_word(p, name, v, contained_types, 2, &word)))
            plan->contained_type = (fhir_search_contained_type_t)word;
        break;
    }
    if (!why)
        p->seen[which] = true;
    return why;
}

/* --- the query ---------------------------------------------------------------------------- */

static void problem(parser_t *p, const fhir_search_pair_t *pair, const char *reason)
{
    p->problems++;
    if (p->query->strict) {
        err_set(p->err, ERR_INVALID, NULL, "%s", reason);
        return;
    }
    fhir_search_ignored_t *ig = &p->plan->ignored[p->plan->nignored++];
    ig->name = arena_strndup(p->arena, pair->name, pair->name_len);
    ig->value = arena_strndup(p->arena, pair->value, pair->value_len);
    ig->reason = reason;
}

static void apply(parser_t *p, const fhir_search_pair_t *pair, const char *value)
{
    fhir_search_pair_t *a = &p->plan->applied[p->plan->napplied++];
    a->name = arena_strndup(p->arena, pair->name, pair->name_len);
    a->name_len = pair->name_len;
    a->value = value ? value : arena_strndup(p->arena, pair->value, pair->value_len);
    a->value_len = value ? strlen(value) : pair->value_len;
}

static void snapshot_cleanup(void *snapshot)
{
    fhir_search_snapshot_release(snapshot);
}

/* The types of every _type pair (system search), deduplicated in query order. */
static status_t read_types(parser_t *p, const fhir_type_t ***out, size_t *out_n)
{
    const fhir_search_query_t *q = p->query;
    size_t cap = 0;
    for (size_t i = 0; i < q->npairs; i++) {
        if (starts_with(q->pairs[i].name, q->pairs[i].name_len, "_type"))
            cap += q->pairs[i].value_len + 1;
    }
    const fhir_type_t **types = arena_alloc(p->arena, (cap + 1) * sizeof(*types));
    size_t n = 0;
    bool asked = false;
    for (size_t i = 0; i < q->npairs; i++) {
        const fhir_search_pair_t *pair = &q->pairs[i];
        span_t name = {pair->name, pair->name_len};
        if (!span_is(name, "_type"))
            continue;
        asked = true;
        size_t k;
        span_t *names = split(p, pair->value, pair->value_len, ',', &k);
        const char *why = NULL;
        size_t before = n;
        for (size_t j = 0; j < k && !why; j++) {
            const fhir_type_t *t = fhir_resource_type_find(names[j].ptr, names[j].len);
            if (!t) {
                why = reasonf(p, "unknown resource type \"%s\" in _type",
                              quoted(p, names[j].ptr, names[j].len));
                break;
            }
            bool dup = false;
            for (size_t m = 0; m < n; m++)
                dup = dup || types[m] == t;
            if (!dup)
                types[n++] = t;
        }
        if (why) {
            n = before;
            problem(p, pair, why);
        } else {
            apply(p, pair, NULL);
        }
    }
    if (asked && n == 0 && !q->strict)
        return err_set(p->err, ERR_INVALID, NULL, "_type names no known resource type");
    *out = types;
    *out_n = n;
    return ERR_OK;
}

status_t fhir_search_parse(fhir_search_registry_t *registry, const fhir_type_t *type,
                           const fhir_search_query_t *query, arena_t *arena,
                           fhir_search_plan_t **out_plan, err_t *err)
{
    *out_plan = NULL;
    if (query->npairs > FHIR_SEARCH_MAX_PAIRS)
        return err_set(err, ERR_INVALID, NULL, "too many search parameters (%zu, at most %d)",
                       query->npairs, FHIR_SEARCH_MAX_PAIRS);
    for (size_t i = 0; i < query->npairs; i++) {
        const fhir_search_pair_t *pair = &query->pairs[i];
        if (!jv_utf8_valid(pair->name, pair->name_len) ||
            !jv_utf8_valid(pair->value, pair->value_len) ||
            memchr(pair->name, '\0', pair->name_len) || memchr(pair->value, '\0', pair->value_len))
            return err_set(err, ERR_INVALID, NULL, "search parameter %zu is not valid UTF-8 text",
                           i + 1);
    }

    parser_t p = {.arena = arena, .query = query, .err = err};
    fhir_search_plan_t *plan = arena_zalloc(arena, sizeof(*plan));
    p.plan = plan;
    p.snapshot = registry ? fhir_search_registry_acquire(registry) : fhir_search_builtin();
    arena_cleanup_add(arena, snapshot_cleanup, (void *)p.snapshot);
    plan->snapshot = p.snapshot;
    plan->count = FHIR_SEARCH_DEFAULT_COUNT;
    size_t n = query->npairs;
    plan->ignored = arena_zalloc(arena, (n + 1) * sizeof(*plan->ignored));
    plan->applied = arena_zalloc(arena, (n + 1) * sizeof(*plan->applied));
    plan->includes = arena_zalloc(arena, (n + 1) * sizeof(*plan->includes));

    const fhir_type_t **types = NULL;
    size_t ntypes = 0;
    if (!type) {
        status_t rc = read_types(&p, &types, &ntypes);
        if (rc)
            return rc;
    }
    plan->nbranches = ntypes ? ntypes : 1;
    plan->branches = arena_zalloc(arena, plan->nbranches * sizeof(*plan->branches));
    for (size_t b = 0; b < plan->nbranches; b++) {
        plan->branches[b].type = ntypes ? types[b] : type;
        plan->branches[b].clauses = arena_zalloc(arena, (n + 1) * sizeof(fhir_search_clause_t));
    }
    fhir_search_clause_t *pending = arena_zalloc(arena, plan->nbranches * sizeof(*pending));

    for (size_t i = 0; i < n; i++) {
        const fhir_search_pair_t *pair = &query->pairs[i];
        span_t name = {pair->name, pair->name_len}, value = {pair->value, pair->value_len};
        if (span_is(name, "_format") || span_is(name, "_pretty"))
            continue;
        if (span_is(name, "_type")) {
            if (type)
                problem(&p, pair,
                        "search parameter \"_type\" applies to a search of all resource types "
                        "only");
            continue; /* read_types took it */
        }
        const char *colon = memchr(name.ptr, ':', name.len);
        span_t code = {name.ptr, colon ? (size_t)(colon - name.ptr) : name.len};
        span_t modifier = {colon ? colon + 1 : name.ptr, colon ? name.len - code.len - 1 : 0};
        bool handled;
        const char *applied_value = NULL;
        const char *why = NULL;
        if (!memchr(name.ptr, '.', name.len) || span_is(code, "_include") ||
            span_is(code, "_revinclude")) {
            /* _include values hold ':' but names never hold '.', so this is unambiguous */
            char *code_text = arena_strndup(arena, code.ptr, code.len);
            code.ptr = code_text;
            why = parse_result(&p, code, modifier, value, &handled, &applied_value);
        } else {
            handled = false;
        }
        if (!handled) {
            p.name = name;
            for (size_t b = 0; b < plan->nbranches && !why; b++) {
                p.budget = FHIR_SEARCH_MAX_CLAUSES;
                memset(&pending[b], 0, sizeof(pending[b]));
                why = parse_criterion(&p, plan->branches[b].type, name.ptr, name.len, value, 0,
                                      &pending[b]);
            }
            if (!why) {
                for (size_t b = 0; b < plan->nbranches; b++)
                    plan->branches[b].clauses[plan->branches[b].nclauses++] = pending[b];
            }
        }
        if (why)
            problem(&p, pair, why);
        else
            apply(&p, pair, applied_value);
    }
    if (p.problems && query->strict)
        return err->code ? err->code : ERR_INVALID;
    *out_plan = plan;
    return ERR_OK;
}

/* --- rendering ---------------------------------------------------------------------------- */

static void add_encoded(buf_t *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            strchr("-._~:/,$@!*'();", c) != NULL) {
            buf_addch(out, (char)c);
        } else {
            buf_addch(out, '%');
            buf_addch(out, hex[c >> 4]);
            buf_addch(out, hex[c & 15]);
        }
    }
}

static int pair_name_compare(const fhir_search_pair_t *a, const fhir_search_pair_t *b)
{
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int c = memcmp(a->name, b->name, n);
    return c ? c : (a->name_len > b->name_len) - (a->name_len < b->name_len);
}

void fhir_search_plan_render(const fhir_search_plan_t *plan, buf_t *out)
{
    size_t n = plan->napplied;
    if (n == 0)
        return;
    /* a stable insertion sort of indexes: at most FHIR_SEARCH_MAX_PAIRS */
    size_t order[FHIR_SEARCH_MAX_PAIRS];
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        while (j > 0 && pair_name_compare(&plan->applied[order[j - 1]], &plan->applied[i]) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    for (size_t i = 0; i < n; i++) {
        const fhir_search_pair_t *a = &plan->applied[order[i]];
        if (i)
            buf_addch(out, '&');
        add_encoded(out, a->name, a->name_len);
        buf_addch(out, '=');
        add_encoded(out, a->value, a->value_len);
    }
}
