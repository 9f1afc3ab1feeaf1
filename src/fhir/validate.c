/*
 * validate.c - walks a resource's JSON and the type model side by side.
 *
 * The walk keeps a stack of frames (member name, array index, chosen type, resource type)
 * and renders an expression or a message path from it only when an issue is reported, so a
 * valid resource is checked without allocating. Recursion follows the JSON, whose depth
 * jv_parse caps; the frame stack is capped as well for values built elsewhere.
 */
#include "fhir/validate.h"

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/jv.h"
#include "fhir/defs.h"

#define MAX_FRAMES 256
#define NO_INDEX SIZE_MAX
#define STRING_MAX_CHARS (1024 * 1024) /* R4 string: at most 1MB (characters) */
#define QUOTE_MAX 64                   /* bytes of a user's value shown in a message */

typedef struct {
    const char *key;             /* JSON member name without its '_' */
    size_t key_len;              /* "valueQuantity" */
    size_t name_len;             /* the element's name within key: "value" */
    const fhir_type_t *choice;   /* the type a choice element holds, or NULL */
    const fhir_type_t *resource; /* the resource type held here (a root, a contained...) */
    size_t index;                /* position in an array, or NO_INDEX */
    bool underscore;             /* the member is "_key": a primitive's id and extensions */
    bool whole_choice;           /* names a choice element as a whole: "value[x]" */
} frame_t;

typedef struct {
    err_t *err;
    status_t first;
    size_t nissues;
    bool full; /* FHIR_VALIDATE_MAX_ISSUES reached: stop walking */
    size_t depth;
    frame_t frames[MAX_FRAMES];
    buf_t expression, message, where, quote;
} validator_t;

static void validate_object(validator_t *v, const json_t *object, const fhir_type_t *type,
                            bool resource_root);
static void validate_resource(validator_t *v, const json_t *value);

/* --- reporting ------------------------------------------------------------------------- */

static void render_expression(const validator_t *v, buf_t *out)
{
    for (size_t i = 0; i < v->depth; i++) {
        const frame_t *f = &v->frames[i];
        if (i > 0)
            buf_addch(out, '.');
        buf_add(out, f->key, f->name_len);
        if (f->index != NO_INDEX)
            buf_addf(out, "[%zu]", f->index);
        if (f->choice)
            buf_addf(out, ".ofType(%s)", f->choice->name);
        if (f->resource && i > 0)
            buf_addf(out, ".ofType(%s)", f->resource->name);
    }
}

/* The message path: JSON names from the innermost resource, without indexes. */
static const char *where(validator_t *v)
{
    buf_reset(&v->where);
    size_t start = 0;
    for (size_t i = v->depth; i-- > 0;) {
        if (v->frames[i].resource) {
            start = i;
            break;
        }
    }
    for (size_t i = start; i < v->depth; i++) {
        const frame_t *f = &v->frames[i];
        if (i == start && f->resource) {
            buf_addstr(&v->where, f->resource->name);
            continue;
        }
        if (i > start)
            buf_addch(&v->where, '.');
        if (f->underscore)
            buf_addch(&v->where, '_');
        buf_add(&v->where, f->key, f->key_len);
        if (f->whole_choice)
            buf_addstr(&v->where, "[x]");
    }
    return v->where.ptr;
}

/* Appends s as a quoted, escaped, possibly shortened string. */
static void add_quoted(buf_t *out, const char *s, size_t len)
{
    bool cut = len > QUOTE_MAX;
    if (cut) {
        len = QUOTE_MAX;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--; /* do not split a UTF-8 sequence */
    }
    buf_addch(out, '"');
    buf_add_json_escaped(out, s, len);
    if (cut)
        buf_addstr(out, "...");
    buf_addch(out, '"');
}

/* The user's value for a message: a quoted string, or a number as written. */
static const char *quoted(validator_t *v, const json_t *value)
{
    buf_reset(&v->quote);
    size_t len;
    const char *text = jv_decimal_text(value, &len);
    if (text)
        buf_add(&v->quote, text, len < QUOTE_MAX ? len : QUOTE_MAX);
    else if (json_is_integer(value))
        buf_addf(&v->quote, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
    else if (json_is_real(value)) /* built by code rather than parsed */
        buf_addf(&v->quote, "%.17g", json_real_value(value));
    else if (json_is_string(value))
        add_quoted(&v->quote, json_string_value(value), json_string_length(value));
    return v->quote.ptr;
}

static const char *json_kind(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return jv_is_decimal(value) ? "a number" : "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        break;
    }
    return "null";
}

static void issue(validator_t *v, status_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void issue(validator_t *v, status_t code, const char *fmt, ...)
{
    if (v->full)
        return;
    buf_reset(&v->expression);
    render_expression(v, &v->expression);
    buf_reset(&v->message);
    va_list ap;
    va_start(ap, fmt);
    buf_vaddf(&v->message, fmt, ap);
    va_end(ap);
    err_set(v->err, code, v->depth ? v->expression.ptr : NULL, "%s", v->message.ptr);
    if (v->first == ERR_OK)
        v->first = code;
    if (++v->nissues >= FHIR_VALIDATE_MAX_ISSUES)
        v->full = true;
}

/* Pushes a frame for a member; false (with an issue) when the nesting is too deep. */
static bool push(validator_t *v, const char *key, size_t key_len, size_t name_len)
{
    if (v->depth == MAX_FRAMES) {
        issue(v, ERR_STRUCTURE, "%s is nested too deeply", where(v));
        return false;
    }
    v->frames[v->depth++] = (frame_t){key, key_len, name_len, NULL, NULL, NO_INDEX, false,
                                      false};
    return true;
}

static void pop(validator_t *v)
{
    v->depth--;
}

static frame_t *top(validator_t *v)
{
    return &v->frames[v->depth - 1];
}

/* --- primitive formats (the regexes of the R4 primitive StructureDefinitions) ---------- */

/*
 * Each checker gets a non-empty string and returns NULL when it is valid, else the problem:
 * BAD_FORMAT for a plain "is not a valid <type>", or a detail the message adds after it.
 */
static const char BAD_FORMAT[] = "";

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads exactly n digits at *p as a number; false when they are not there. */
static bool digits(const char **p, const char *end, int n, int *out)
{
    int value = 0;
    for (int i = 0; i < n; i++) {
        if (*p >= end || !is_digit(**p))
            return false;
        value = value * 10 + (**p - '0');
        (*p)++;
    }
    *out = value;
    return true;
}

static bool expect(const char **p, const char *end, char c)
{
    if (*p >= end || **p != c)
        return false;
    (*p)++;
    return true;
}

static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month == 2 && year % 4 == 0 && (year % 100 != 0 || year % 400 == 0))
        return 29;
    return days[month - 1];
}

/* hh:mm:ss(.f+)? with hh 00-23, mm 00-59, ss 00-60 (a leap second). */
static bool time_part(const char **p, const char *end)
{
    int hour, minute, second;
    if (!digits(p, end, 2, &hour) || hour > 23 || !expect(p, end, ':') ||
        !digits(p, end, 2, &minute) || minute > 59 || !expect(p, end, ':') ||
        !digits(p, end, 2, &second) || second > 60)
        return false;
    if (expect(p, end, '.')) {
        if (*p >= end || !is_digit(**p))
            return false;
        while (*p < end && is_digit(**p))
            (*p)++;
    }
    return true;
}

/* Z, or an offset from -14:00 to +14:00: hours 00-13 with any minutes, or 14:00. */
static bool timezone_part(const char **p, const char *end)
{
    if (expect(p, end, 'Z'))
        return true;
    if (!expect(p, end, '+') && !expect(p, end, '-'))
        return false;
    int hour, minute;
    if (!digits(p, end, 2, &hour) || !expect(p, end, ':') || !digits(p, end, 2, &minute) ||
        minute > 59)
        return false;
    return hour < 14 || (hour == 14 && minute == 0);
}

typedef enum { DATE_ONLY, DATE_TIME, DATE_INSTANT } date_kind_t;

/*
 * date: YYYY, YYYY-MM or YYYY-MM-DD; dateTime: one of those, or a full date with a time and a
 * timezone; instant: always the full form. Year 0000 does not exist and days follow the
 * month, leap years included.
 */
static const char *check_date(const char *s, size_t len, date_kind_t kind)
{
    const char *p = s, *end = s + len;
    int year, month, day;
    if (!digits(&p, end, 4, &year) || year == 0)
        return BAD_FORMAT;
    if (p == end)
        return kind == DATE_INSTANT ? BAD_FORMAT : NULL;
    if (!expect(&p, end, '-') || !digits(&p, end, 2, &month) || month < 1 || month > 12)
        return BAD_FORMAT;
    if (p == end)
        return kind == DATE_INSTANT ? BAD_FORMAT : NULL;
    if (!expect(&p, end, '-') || !digits(&p, end, 2, &day) || day < 1 ||
        day > days_in_month(year, month))
        return BAD_FORMAT;
    if (p == end)
        return kind == DATE_INSTANT ? "it needs a time and a timezone" : NULL;
    if (kind == DATE_ONLY || !expect(&p, end, 'T') || !time_part(&p, end))
        return BAD_FORMAT;
    if (p == end)
        return "a time needs a timezone";
    if (!timezone_part(&p, end) || p != end)
        return BAD_FORMAT;
    return NULL;
}

static const char *check_time(const char *s, size_t len)
{
    const char *p = s, *end = s + len;
    return time_part(&p, end) && p == end ? NULL : BAD_FORMAT;
}

static bool is_space(char c) /* \s in the R4 regexes (ASCII whitespace, as in Java) */
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* [A-Za-z0-9\-\.]{1,64} */
static const char *check_id(const char *s, size_t len)
{
    if (len > 64)
        return "it is longer than 64 characters";
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '-' ||
              c == '.'))
            return "only letters, digits, '-' and '.' are allowed";
    }
    return NULL;
}

/* [^\s]+(\s[^\s]+)*, narrowed by the R4 text to single spaces inside. */
static const char *check_code(const char *s, size_t len)
{
    if (is_space(s[0]) || is_space(s[len - 1]))
        return "it has leading or trailing whitespace";
    for (size_t i = 0; i < len; i++) {
        if (is_space(s[i]) && (s[i] != ' ' || s[i + 1] == ' '))
            return "whitespace inside a code must be a single space";
    }
    return NULL;
}

/* \S* (uri, url, canonical) */
static const char *check_uri(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (is_space(s[i]))
            return "it contains whitespace";
    }
    return NULL;
}

/* urn:oid:[0-2](\.(0|[1-9][0-9]*))+ */
static const char *check_oid(const char *s, size_t len)
{
    static const char prefix[] = "urn:oid:";
    const size_t plen = sizeof(prefix) - 1;
    const char *p = s + plen, *end = s + len;
    if (len < plen || memcmp(s, prefix, plen) != 0)
        return "it must start with urn:oid:";
    if (p >= end || *p < '0' || *p > '2')
        return BAD_FORMAT;
    p++;
    if (p == end)
        return BAD_FORMAT; /* at least two arcs */
    while (p < end) {
        if (!expect(&p, end, '.') || p == end || !is_digit(*p))
            return BAD_FORMAT;
        if (*p == '0') {
            p++;
        } else {
            while (p < end && is_digit(*p))
                p++;
        }
    }
    return NULL;
}

static bool is_lower_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f');
}

/* urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12} */
static const char *check_uuid(const char *s, size_t len)
{
    static const char prefix[] = "urn:uuid:";
    static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    const size_t plen = sizeof(prefix) - 1, slen = sizeof(shape) - 1;
    if (len < plen || memcmp(s, prefix, plen) != 0)
        return "it must start with urn:uuid:";
    if (len != plen + slen)
        return BAD_FORMAT;
    for (size_t i = 0; i < slen; i++) {
        char c = s[plen + i];
        if (shape[i] == '-' ? c != '-' : !is_lower_hex(c))
            return BAD_FORMAT;
    }
    return NULL;
}

static bool is_base64(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '+' ||
           c == '/' || c == '=';
}

/* (\s*([0-9a-zA-Z\+/=]){4}\s*)+ : runs of the alphabet, each a multiple of 4 long,
 * separated by whitespace. */
static const char *check_base64(const char *s, size_t len)
{
    size_t run = 0, total = 0;
    for (size_t i = 0; i < len; i++) {
        if (is_base64(s[i])) {
            run++;
            total++;
        } else if (is_space(s[i])) {
            if (run % 4 != 0)
                return BAD_FORMAT;
            run = 0;
        } else {
            return BAD_FORMAT;
        }
    }
    return run % 4 == 0 && total > 0 ? NULL : BAD_FORMAT;
}

static const char *check_xhtml(const char *s, size_t len)
{
    return len >= 4 && memcmp(s, "<div", 4) == 0 ? NULL : "it must start with <div";
}

/* Counts UTF-8 characters (the input is valid UTF-8: jv_parse checked it). */
static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* --- values ---------------------------------------------------------------------------- */

/* Lists the first codes of a value set in its own order: "a, b, c, ...". */
static const char *allowed_codes(validator_t *v, const fhir_valueset_t *valueset)
{
    buf_reset(&v->quote);
    size_t show = valueset->ncodes <= 6 ? valueset->ncodes : 4;
    for (size_t k = 0; k < show; k++) {
        if (k)
            buf_addstr(&v->quote, ", ");
        buf_addstr(&v->quote, valueset->codes[valueset->order[k]]);
    }
    if (show < valueset->ncodes)
        buf_addstr(&v->quote, ", ...");
    return v->quote.ptr;
}

static void check_code_binding(validator_t *v, const json_t *value,
                               const fhir_valueset_t *valueset)
{
    const char *code = json_string_value(value);
    if (fhir_valueset_contains(valueset, NULL, code))
        return;
    buf_t quote = BUF_INIT;
    add_quoted(&quote, code, json_string_length(value));
    issue(v, ERR_CODE_INVALID, "%s is not a valid code for %s (allowed: %s)", quote.ptr,
          where(v), allowed_codes(v, valueset));
    buf_release(&quote);
}

/* The code and system of a Coding object when both are strings (system may be NULL). */
static const char *coding_code(const json_t *coding, const char **out_system)
{
    const json_t *code = json_object_get(coding, "code");
    const json_t *system = json_object_get(coding, "system");
    *out_system = jv_is_string(system) ? json_string_value(system) : NULL;
    return jv_is_string(code) && json_string_length(code) > 0 ? json_string_value(code) : NULL;
}

static void check_coding_binding(validator_t *v, const json_t *coding,
                                 const fhir_valueset_t *valueset)
{
    const char *system;
    const char *code = coding_code(coding, &system);
    if (!code || fhir_valueset_contains(valueset, system, code))
        return;
    buf_t token = BUF_INIT;
    if (system) {
        buf_addstr(&token, system);
        buf_addch(&token, '|');
    }
    buf_addstr(&token, code);
    buf_t quote = BUF_INIT;
    add_quoted(&quote, token.ptr, token.len);
    if (push(v, "code", 4, 4)) {
        issue(v, ERR_CODE_INVALID, "%s is not a valid code for %s (allowed: %s)", quote.ptr,
              where(v), allowed_codes(v, valueset));
        pop(v);
    }
    buf_release(&quote);
    buf_release(&token);
}

/* A CodeableConcept meets a required binding when one of its codings is in the value set;
 * one with text and no coding is left alone. */
static void check_concept_binding(validator_t *v, const json_t *concept,
                                  const fhir_valueset_t *valueset)
{
    const json_t *codings = json_object_get(concept, "coding");
    if (!json_is_array(codings))
        return;
    size_t ncoded = 0;
    for (size_t i = 0; i < json_array_size(codings); i++) {
        const json_t *coding = json_array_get(codings, i);
        const char *system;
        const char *code = json_is_object(coding) ? coding_code(coding, &system) : NULL;
        if (!code)
            continue;
        if (fhir_valueset_contains(valueset, system, code))
            return;
        ncoded++;
    }
    if (ncoded > 0) {
        issue(v, ERR_CODE_INVALID, "%s has no code from its required value set %s "
              "(allowed: %s)", where(v), valueset->url, allowed_codes(v, valueset));
    }
}

static void validate_integer(validator_t *v, const json_t *value, const fhir_type_t *type)
{
    if (json_is_integer(value)) {
        json_int_t n = json_integer_value(value);
        json_int_t low = type->primitive == FHIR_PRIM_INTEGER        ? INT32_MIN
                         : type->primitive == FHIR_PRIM_POSITIVE_INT ? 1
                                                                     : 0;
        if (n < low || n > INT32_MAX) {
            issue(v, ERR_VALUE, "could not parse %s: %s is out of range for %s", where(v),
                  quoted(v, value), type->name);
        }
        return;
    }
    size_t len;
    const char *text = jv_decimal_text(value, &len);
    if (text || json_is_real(value)) {
        bool whole = text != NULL; /* an integer too large for int64 is kept as text too */
        for (size_t i = text && text[0] == '-'; whole && i < len; i++)
            whole = is_digit(text[i]);
        issue(v, ERR_VALUE, "could not parse %s: %s %s %s", where(v), quoted(v, value),
              whole ? "is out of range for" : "is not a valid", type->name);
        return;
    }
    issue(v, ERR_STRUCTURE, "%s must be a JSON number, not %s", where(v), json_kind(value));
}

static void validate_primitive(validator_t *v, const json_t *value, const fhir_type_t *type,
                               const fhir_element_t *element)
{
    switch (type->primitive) {
    case FHIR_PRIM_BOOLEAN:
        if (!json_is_boolean(value))
            issue(v, ERR_STRUCTURE, "%s must be a JSON boolean, not %s", where(v),
                  json_kind(value));
        return;
    case FHIR_PRIM_INTEGER:
    case FHIR_PRIM_UNSIGNED_INT:
    case FHIR_PRIM_POSITIVE_INT:
        validate_integer(v, value, type);
        return;
    case FHIR_PRIM_DECIMAL:
        /* JSON's number grammar is the decimal regex: any number is a valid decimal */
        if (!jv_is_number(value))
            issue(v, ERR_STRUCTURE, "%s must be a JSON number, not %s", where(v),
                  json_kind(value));
        return;
    default:
        break;
    }
    if (!jv_is_string(value)) {
        issue(v, ERR_STRUCTURE, "%s must be a JSON string, not %s", where(v),
              json_kind(value));
        return;
    }
    const char *s = json_string_value(value);
    size_t len = json_string_length(value);
    if (len == 0) {
        issue(v, ERR_STRUCTURE, "%s must not be an empty string", where(v));
        return;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 && c != '\t' && c != '\r' && c != '\n') {
            issue(v, ERR_VALUE, "could not parse %s: %s contains the control character U+%04X",
                  where(v), quoted(v, value), c);
            return;
        }
    }
    const char *problem = NULL;
    switch (type->primitive) {
    case FHIR_PRIM_STRING:
        if (len > STRING_MAX_CHARS && utf8_chars(s, len) > STRING_MAX_CHARS) {
            issue(v, ERR_VALUE, "could not parse %s: the string is longer than %d characters",
                  where(v), STRING_MAX_CHARS);
            return;
        }
        break;
    case FHIR_PRIM_CODE:
        problem = check_code(s, len);
        break;
    case FHIR_PRIM_ID:
        problem = check_id(s, len);
        break;
    case FHIR_PRIM_URI:
    case FHIR_PRIM_URL:
    case FHIR_PRIM_CANONICAL:
        problem = check_uri(s, len);
        break;
    case FHIR_PRIM_OID:
        problem = check_oid(s, len);
        break;
    case FHIR_PRIM_UUID:
        problem = check_uuid(s, len);
        break;
    case FHIR_PRIM_BASE64_BINARY:
        problem = check_base64(s, len);
        break;
    case FHIR_PRIM_INSTANT:
        problem = check_date(s, len, DATE_INSTANT);
        break;
    case FHIR_PRIM_DATE:
        problem = check_date(s, len, DATE_ONLY);
        break;
    case FHIR_PRIM_DATE_TIME:
        problem = check_date(s, len, DATE_TIME);
        break;
    case FHIR_PRIM_TIME:
        problem = check_time(s, len);
        break;
    case FHIR_PRIM_XHTML:
        problem = check_xhtml(s, len);
        break;
    default: /* markdown: only the string rules */
        break;
    }
    if (problem) {
        issue(v, ERR_VALUE, "could not parse %s: %s is not a valid %s%s%s", where(v),
              quoted(v, value), type->name, problem[0] ? ": " : "", problem);
        return;
    }
    if (element->binding)
        check_code_binding(v, value, element->binding);
}

/* One value of an element: a single value or an array item (not null, not an array). */
static void validate_value(validator_t *v, const json_t *value, const fhir_element_t *element,
                           const fhir_type_t *type, bool underscore)
{
    if (underscore) {
        /* a primitive's id and extensions */
        if (!json_is_object(value)) {
            issue(v, ERR_STRUCTURE, "%s must be a JSON object, not %s", where(v),
                  json_kind(value));
            return;
        }
        validate_object(v, value, type, false);
        return;
    }
    if (type->kind == FHIR_KIND_PRIMITIVE) {
        validate_primitive(v, value, type, element);
        return;
    }
    if (!json_is_object(value)) {
        issue(v, ERR_STRUCTURE, "%s must be a JSON object, not %s", where(v), json_kind(value));
        return;
    }
    if (type == fhir_type_resource || type->kind == FHIR_KIND_RESOURCE) {
        validate_resource(v, value);
        return;
    }
    validate_object(v, value, type, false);
    if (element->binding) {
        if (type == fhir_type_coding)
            check_coding_binding(v, value, element->binding);
        else if (type == fhir_type_codeable_concept)
            check_concept_binding(v, value, element->binding);
    }
}

/* The other half of a primitive: "_given" for "given" and the reverse, or NULL. */
static const json_t *counterpart(const json_t *object, const frame_t *f)
{
    char key[256];
    if (f->key_len + 2 > sizeof(key))
        return NULL;
    size_t n = 0;
    if (!f->underscore)
        key[n++] = '_';
    memcpy(key + n, f->key, f->key_len);
    key[n + f->key_len] = '\0';
    return json_object_get(object, key);
}

/* A null array item is allowed where the other half of a primitive has a value. */
static bool null_allowed(const json_t *object, const frame_t *f, const fhir_type_t *type,
                         size_t index)
{
    if (type->kind != FHIR_KIND_PRIMITIVE)
        return false;
    const json_t *other = counterpart(object, f);
    if (!json_is_array(other))
        return false;
    const json_t *item = json_array_get(other, index);
    if (item && !json_is_null(item))
        return true;
    /* both null: report it once, on the value's side when there is one */
    return f->underscore && index < json_array_size(other);
}

static void validate_member(validator_t *v, const json_t *object, const json_t *value,
                            const fhir_element_t *element, const fhir_type_t *type,
                            bool underscore)
{
    if (element->max <= 1) {
        if (json_is_array(value))
            issue(v, ERR_STRUCTURE, "%s must not be an array", where(v));
        else if (json_is_null(value))
            issue(v, ERR_STRUCTURE, "%s must not be null", where(v));
        else
            validate_value(v, value, element, type, underscore);
        return;
    }
    if (!json_is_array(value)) {
        issue(v, ERR_STRUCTURE, "%s must be an array", where(v));
        return;
    }
    size_t n = json_array_size(value);
    if (n == 0) {
        issue(v, ERR_STRUCTURE, "%s must not be an empty array", where(v));
        return;
    }
    if (n > element->max) {
        issue(v, ERR_STRUCTURE, "%s has %zu items, at most %u are allowed", where(v), n,
              (unsigned)element->max);
    }
    frame_t *f = top(v);
    for (size_t i = 0; i < n && !v->full; i++) {
        const json_t *item = json_array_get(value, i);
        f->index = i;
        if (json_is_null(item)) {
            if (!null_allowed(object, f, type, i))
                issue(v, ERR_STRUCTURE, "%s must not be null", where(v));
            continue;
        }
        validate_value(v, item, element, type, underscore);
    }
    f->index = NO_INDEX;
    if (underscore) {
        const json_t *values = counterpart(object, f);
        if (json_is_array(values) && json_array_size(values) != n) {
            issue(v, ERR_STRUCTURE, "%s must have as many items as %.*s (%zu, not %zu)",
                  where(v), (int)f->key_len, f->key, n, json_array_size(values));
        }
    }
}

typedef struct {
    size_t element;
    const fhir_type_t *type;
} choice_seen_t;

static void unknown_member(validator_t *v, const char *key, size_t len)
{
    const char *in = where(v);
    if (!push(v, key, len, len))
        return;
    buf_t quote = BUF_INIT;
    add_quoted(&quote, key, len);
    issue(v, ERR_STRUCTURE, "unknown element %s in %s", quote.ptr, in);
    buf_release(&quote);
    pop(v);
}

static void validate_object(validator_t *v, const json_t *object, const fhir_type_t *type,
                            bool resource_root)
{
    if (json_object_size(object) == 0) {
        issue(v, ERR_STRUCTURE, "%s must not be an empty object", where(v));
        return;
    }
    uint64_t seen[FHIR_MAX_ELEMENTS / 64] = {0};
    choice_seen_t choices[FHIR_MAX_CHOICES];
    size_t nchoices = 0;
    json_t *mutable_object = (json_t *)object; /* jansson's iterators are not const */
    for (void *it = json_object_iter(mutable_object); it && !v->full;
         it = json_object_iter_next(mutable_object, it)) {
        const char *key = json_object_iter_key(it);
        size_t len = json_object_iter_key_len(it);
        const json_t *value = json_object_iter_value(it);
        if (resource_root && len == 12 && memcmp(key, "resourceType", 12) == 0)
            continue;
        bool underscore = len > 1 && key[0] == '_';
        const char *name = key + underscore;
        size_t name_len = len - underscore;
        const fhir_type_t *chosen = NULL;
        const fhir_element_t *element = fhir_element_find(type, name, name_len, &chosen);
        if (!element ||
            (underscore && (chosen->kind != FHIR_KIND_PRIMITIVE || element->xml_attribute))) {
            unknown_member(v, key, len);
            continue;
        }
        size_t index = (size_t)(element - type->elements);
        if (element->choice) {
            size_t k = 0;
            while (k < nchoices && choices[k].element != index)
                k++;
            if (k == nchoices) {
                choices[nchoices++] = (choice_seen_t){index, chosen};
            } else if (choices[k].type != chosen) {
                if (push(v, element->name, strlen(element->name), strlen(element->name))) {
                    top(v)->whole_choice = true;
                    issue(v, ERR_STRUCTURE, "%s has more than one type (%s and %s)",
                          where(v), choices[k].type->name, chosen->name);
                    pop(v);
                }
                continue;
            }
        }
        seen[index / 64] |= UINT64_C(1) << (index % 64);
        if (!push(v, name, name_len, element->choice ? strlen(element->name) : name_len))
            return;
        top(v)->underscore = underscore;
        top(v)->choice = element->choice ? chosen : NULL;
        validate_member(v, object, value, element, chosen, underscore);
        pop(v);
    }
    for (size_t i = 0; i < type->nelements && !v->full; i++) {
        const fhir_element_t *element = &type->elements[i];
        if (element->min == 0 || (seen[i / 64] & (UINT64_C(1) << (i % 64))))
            continue;
        size_t len = strlen(element->name);
        if (!push(v, element->name, len, len))
            return;
        top(v)->whole_choice = element->choice;
        issue(v, ERR_REQUIRED, "%s is required", where(v));
        pop(v);
    }
}

/* A resource inside an element (contained, Bundle.entry.resource, ...) or at the root. */
static void validate_resource(validator_t *v, const json_t *value)
{
    const json_t *name = json_object_get(value, "resourceType");
    if (!name) {
        issue(v, ERR_STRUCTURE, "%s has no resourceType", v->depth ? where(v) : "the resource");
        return;
    }
    if (!jv_is_string(name)) {
        issue(v, ERR_STRUCTURE, "%s%sresourceType must be a JSON string, not %s",
              v->depth ? where(v) : "", v->depth ? "." : "", json_kind(name));
        return;
    }
    const fhir_type_t *type =
        fhir_resource_type_find(json_string_value(name), json_string_length(name));
    if (!type) {
        issue(v, ERR_STRUCTURE, "unknown resource type %s", quoted(v, name));
        return;
    }
    if (v->depth == 0) {
        if (!push(v, type->name, strlen(type->name), strlen(type->name)))
            return;
        top(v)->resource = type;
        validate_object(v, value, type, true);
        pop(v);
        return;
    }
    top(v)->resource = type;
    validate_object(v, value, type, true);
    top(v)->resource = NULL;
}

status_t fhir_validate(const json_t *resource, err_t *err)
{
    validator_t validator = {.err = err, .first = ERR_OK};
    validator_t *v = &validator;
    buf_init(&v->expression, 0);
    buf_init(&v->message, 0);
    buf_init(&v->where, 0);
    buf_init(&v->quote, 0);
    if (!json_is_object(resource))
        issue(v, ERR_STRUCTURE, "a resource must be a JSON object, not %s", json_kind(resource));
    else
        validate_resource(v, resource);
    buf_release(&v->expression);
    buf_release(&v->message);
    buf_release(&v->where);
    buf_release(&v->quote);
    return v->first;
}
