/*
 * jv.c - strict JSON parser producing jansson values, compact and pretty serializers.
 *
 * The parser is recursive descent over (ptr, len) with an explicit depth limit; it keeps a
 * stack of the member names and indexes it is inside so an error can say where it happened.
 */
#include "base/jv.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

typedef struct {
    bool array;
    const char *key; /* in an object: the member being parsed, or NULL before its name */
    size_t key_len;
    size_t index; /* in an array: the element being parsed */
} frame_t;

typedef struct {
    const char *start, *p, *end;
    err_t *err;
    int depth;
    frame_t stack[JV_MAX_DEPTH + 1];
    buf_t scratch;
} parser_t;

static void describe_path(parser_t *ps, buf_t *out)
{
    buf_addch(out, '$');
    for (int i = 0; i < ps->depth; i++) {
        frame_t *f = &ps->stack[i];
        if (f->array) {
            buf_addf(out, "[%zu]", f->index);
        } else if (f->key) {
            buf_addch(out, '.');
            buf_add(out, f->key, f->key_len > 64 ? 64 : f->key_len);
        }
    }
}

static json_t *fail(parser_t *ps, const char *what)
{
    if (ps->err->code != ERR_OK)
        return NULL;
    size_t line = 1, column = 1;
    for (const char *q = ps->start; q < ps->p; q++) {
        if (*q == '\n') {
            line++;
            column = 1;
        } else if (((unsigned char)*q & 0xC0) != 0x80) {
            column++;
        }
    }
    buf_t path = BUF_INIT;
    describe_path(ps, &path);
    err_set(ps->err, ERR_SYNTAX, NULL, "could not parse JSON at line %zu, column %zu (%s): %s",
            line, column, path.ptr, what);
    buf_release(&path);
    return NULL;
}

static void skip_ws(parser_t *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

/* Length of the UTF-8 sequence at s (max n bytes), or 0 when it is invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

bool jv_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_seq(p + i, len - i);
        if (!n)
            return false;
        i += n;
    }
    return true;
}

static void add_utf8(buf_t *b, uint32_t cp)
{
    char out[4];
    size_t n;
    if (cp < 0x80) {
        out[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    buf_add(b, out, n);
}

static int hex4(const char *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Parses a string at ps->p (on the opening quote) into ps->scratch. */
static int parse_string_into_scratch(parser_t *ps)
{
    buf_reset(&ps->scratch);
    ps->p++; /* opening quote */
    const char *run = ps->p;
    while (1) {
        if (ps->p >= ps->end) {
            fail(ps, "unterminated string");
            return -1;
        }
        unsigned char c = (unsigned char)*ps->p;
        if (c == '"') {
            buf_add(&ps->scratch, run, (size_t)(ps->p - run));
            ps->p++;
            return 0;
        }
        if (c < 0x20) {
            fail(ps, "control character in string (escape it)");
            return -1;
        }
        if (c == '\\') {
            buf_add(&ps->scratch, run, (size_t)(ps->p - run));
            if (ps->end - ps->p < 2) {
                fail(ps, "unterminated escape");
                return -1;
            }
            char e = ps->p[1];
            ps->p += 2;
            switch (e) {
            case '"': buf_addch(&ps->scratch, '"'); break;
            case '\\': buf_addch(&ps->scratch, '\\'); break;
            case '/': buf_addch(&ps->scratch, '/'); break;
            case 'b': buf_addch(&ps->scratch, '\b'); break;
            case 'f': buf_addch(&ps->scratch, '\f'); break;
            case 'n': buf_addch(&ps->scratch, '\n'); break;
            case 'r': buf_addch(&ps->scratch, '\r'); break;
            case 't': buf_addch(&ps->scratch, '\t'); break;
            case 'u': {
                uint32_t cp;
                if (ps->end - ps->p < 4 || hex4(ps->p, &cp) < 0) {
                    fail(ps, "\\u must be followed by 4 hex digits");
                    return -1;
                }
                ps->p += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    uint32_t low;
                    if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' ||
                        hex4(ps->p + 2, &low) < 0 || low < 0xDC00 || low > 0xDFFF) {
                        fail(ps, "unpaired UTF-16 surrogate in \\u escape");
                        return -1;
                    }
                    ps->p += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    fail(ps, "unpaired UTF-16 surrogate in \\u escape");
                    return -1;
                } else if (cp == 0) {
                    fail(ps, "U+0000 is not allowed in strings");
                    return -1;
                }
                add_utf8(&ps->scratch, cp);
                break;
            }
            default:
                ps->p -= 1;
                fail(ps, "invalid escape sequence");
                return -1;
            }
            run = ps->p;
            continue;
        }
        if (c >= 0x80) {
            size_t n = utf8_seq((const unsigned char *)ps->p, (size_t)(ps->end - ps->p));
            if (!n) {
                fail(ps, "invalid UTF-8 in string");
                return -1;
            }
            ps->p += n;
            continue;
        }
        ps->p++;
    }
}

static json_t *parse_value(parser_t *ps);

static json_t *parse_number(parser_t *ps)
{
    const char *s = ps->p;
    bool integral = true;
    if (ps->p < ps->end && *ps->p == '-')
        ps->p++;
    if (ps->p >= ps->end)
        return fail(ps, "expected a digit");
    if (*ps->p == '0') {
        ps->p++;
        if (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            return fail(ps, "numbers must not have leading zeros");
    } else if (*ps->p >= '1' && *ps->p <= '9') {
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    } else {
        return fail(ps, "expected a digit");
    }
    if (ps->p < ps->end && *ps->p == '.') {
        integral = false;
        ps->p++;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
            return fail(ps, "expected a digit after the decimal point");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        integral = false;
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
            ps->p++;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
            return fail(ps, "expected a digit in the exponent");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    }
    size_t len = (size_t)(ps->p - s);
    if (integral && len < 20) {
        char tmp[24];
        memcpy(tmp, s, len);
        tmp[len] = '\0';
        errno = 0;
        long long v = strtoll(tmp, NULL, 10);
        if (errno == 0 && !(v == 0 && s[0] == '-'))
            return json_integer(v);
    }
    return jv_decimal(s, len);
}

static json_t *parse_object(parser_t *ps)
{
    json_t *obj = json_object();
    ps->p++; /* { */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return obj;
    }
    frame_t *frame = &ps->stack[ps->depth - 1];
    while (1) {
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != '"') {
            fail(ps, "expected a member name in double quotes");
            goto bad;
        }
        if (parse_string_into_scratch(ps) < 0)
            goto bad;
        char *key = xstrndup(ps->scratch.ptr, ps->scratch.len);
        size_t key_len = ps->scratch.len;
        if (json_object_get(obj, key)) {
            frame->key = key;
            frame->key_len = key_len;
            fail(ps, "duplicate member name");
            frame->key = NULL;
            free(key);
            goto bad;
        }
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') {
            free(key);
            fail(ps, "expected ':' after member name");
            goto bad;
        }
        ps->p++;
        skip_ws(ps);
        frame->key = key;
        frame->key_len = key_len;
        json_t *v = parse_value(ps);
        frame->key = NULL;
        if (!v) {
            free(key);
            goto bad;
        }
        json_object_set_new(obj, key, v);
        free(key);
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            return obj;
        }
        fail(ps, "expected ',' or '}' after an object member");
        goto bad;
    }
bad:
    json_decref(obj);
    return NULL;
}

static json_t *parse_array(parser_t *ps)
{
    json_t *arr = json_array();
    ps->p++; /* [ */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return arr;
    }
    frame_t *frame = &ps->stack[ps->depth - 1];
    for (size_t i = 0;; i++) {
        skip_ws(ps);
        frame->index = i;
        json_t *v = parse_value(ps);
        if (!v)
            goto bad;
        json_array_append_new(arr, v);
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            return arr;
        }
        fail(ps, "expected ',' or ']' after an array element");
        goto bad;
    }
bad:
    json_decref(arr);
    return NULL;
}

static bool literal(parser_t *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, word, n) == 0) {
        ps->p += n;
        return true;
    }
    return false;
}

static json_t *parse_value(parser_t *ps)
{
    if (ps->p >= ps->end)
        return fail(ps, "unexpected end of input");
    switch (*ps->p) {
    case '{':
    case '[': {
        if (ps->depth >= JV_MAX_DEPTH)
            return fail(ps, "nesting is deeper than the limit of 200");
        frame_t *f = &ps->stack[ps->depth++];
        f->array = *ps->p == '[';
        f->key = NULL;
        f->key_len = 0;
        f->index = 0;
        json_t *v = *ps->p == '{' ? parse_object(ps) : parse_array(ps);
        if (v)
            ps->depth--;
        return v;
    }
    case '"':
        if (parse_string_into_scratch(ps) < 0)
            return NULL;
        return json_stringn_nocheck(ps->scratch.ptr, ps->scratch.len);
    case 't':
        if (literal(ps, "true"))
            return json_true();
        break;
    case 'f':
        if (literal(ps, "false"))
            return json_false();
        break;
    case 'n':
        if (literal(ps, "null"))
            return json_null();
        break;
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
            return parse_number(ps);
    }
    return fail(ps, "expected a value (object, array, string, number, true, false or null)");
}

json_t *jv_parse(const char *text, size_t len, err_t *err)
{
    parser_t *ps = xmalloc(sizeof(*ps));
    ps->start = ps->p = text;
    ps->end = text + len;
    ps->err = err;
    ps->depth = 0;
    buf_init(&ps->scratch, 0);
    json_t *v = NULL;
    /* a UTF-8 byte order mark is tolerated, as many clients send one */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        ps->p += 3;
    skip_ws(ps);
    if (ps->p >= ps->end) {
        fail(ps, "the body is empty");
        goto out;
    }
    v = parse_value(ps);
    if (v) {
        skip_ws(ps);
        if (ps->p != ps->end) {
            fail(ps, "unexpected data after the JSON value");
            json_decref(v);
            v = NULL;
        }
    }
out:
    buf_release(&ps->scratch);
    free(ps);
    return v;
}

bool jv_is_decimal(const json_t *value)
{
    return json_is_string(value) && json_string_length(value) > 1 &&
           json_string_value(value)[0] == '\0';
}

const char *jv_decimal_text(const json_t *value, size_t *out_len)
{
    if (!jv_is_decimal(value))
        return NULL;
    if (out_len)
        *out_len = json_string_length(value) - 1;
    return json_string_value(value) + 1;
}

json_t *jv_decimal(const char *text, size_t len)
{
    char *tmp = xmalloc(len + 1);
    tmp[0] = '\0';
    memcpy(tmp + 1, text, len);
    json_t *v = json_stringn_nocheck(tmp, len + 1);
    free(tmp);
    return v;
}

bool jv_is_string(const json_t *value)
{
    return json_is_string(value) && !jv_is_decimal(value);
}

bool jv_is_number(const json_t *value)
{
    return json_is_number(value) || jv_is_decimal(value);
}

double jv_number_value(const json_t *value)
{
    if (json_is_integer(value))
        return (double)json_integer_value(value);
    if (json_is_real(value))
        return json_real_value(value);
    size_t len;
    const char *text = jv_decimal_text(value, &len);
    if (!text)
        return 0;
    char tmp[64];
    if (len >= sizeof(tmp)) {
        char *big = xstrndup(text, len);
        double d = strtod(big, NULL);
        free(big);
        return d;
    }
    memcpy(tmp, text, len);
    tmp[len] = '\0';
    return strtod(tmp, NULL);
}

static void dump(const json_t *v, buf_t *out)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *member;
        bool first = true;
        buf_addch(out, '{');
        json_object_foreach((json_t *)v, key, member)
        {
            if (!first)
                buf_addch(out, ',');
            first = false;
            buf_addch(out, '"');
            buf_add_json_escaped(out, key, strlen(key));
            buf_add(out, "\":", 2);
            dump(member, out);
        }
        buf_addch(out, '}');
        break;
    }
    case JSON_ARRAY: {
        buf_addch(out, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                buf_addch(out, ',');
            dump(json_array_get(v, i), out);
        }
        buf_addch(out, ']');
        break;
    }
    case JSON_STRING: {
        size_t len;
        const char *text = jv_decimal_text(v, &len);
        if (text) {
            buf_add(out, text, len);
        } else {
            buf_addch(out, '"');
            buf_add_json_escaped(out, json_string_value(v), json_string_length(v));
            buf_addch(out, '"');
        }
        break;
    }
    case JSON_INTEGER: buf_addf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
    case JSON_REAL: {
        /* shortest text that reads back as the same double */
        char tmp[40];
        double d = json_real_value(v);
        for (int precision = 15; precision <= 17; precision++) {
            snprintf(tmp, sizeof(tmp), "%.*g", precision, d);
            if (strtod(tmp, NULL) == d)
                break;
        }
        buf_addstr(out, tmp);
        if (!strpbrk(tmp, ".eEn"))
            buf_add(out, ".0", 2);
        break;
    }
    case JSON_TRUE: buf_add(out, "true", 4); break;
    case JSON_FALSE: buf_add(out, "false", 5); break;
    case JSON_NULL: buf_add(out, "null", 4); break;
    }
}

void jv_dump(const json_t *value, buf_t *out)
{
    dump(value, out);
}

static void newline(buf_t *out, int level)
{
    buf_addch(out, '\n');
    for (int i = 0; i < level; i++)
        buf_add(out, "  ", 2);
}

void jv_pretty(const char *text, size_t len, buf_t *out)
{
    int level = 0;
    size_t i = 0;
    while (i < len) {
        char c = text[i];
        switch (c) {
        case '"': {
            size_t start = i++;
            while (i < len && text[i] != '"') {
                if (text[i] == '\\')
                    i++;
                i++;
            }
            i++;
            buf_add(out, text + start, (i > len ? len : i) - start);
            continue;
        }
        case '{':
        case '[': {
            /* keep empty containers on one line */
            size_t j = i + 1;
            while (j < len &&
                   (text[j] == ' ' || text[j] == '\n' || text[j] == '\r' || text[j] == '\t'))
                j++;
            if (j < len && (text[j] == '}' || text[j] == ']')) {
                buf_addch(out, c);
                buf_addch(out, text[j]);
                i = j + 1;
                continue;
            }
            buf_addch(out, c);
            newline(out, ++level);
            break;
        }
        case '}':
        case ']':
            newline(out, --level);
            buf_addch(out, c);
            break;
        case ',':
            buf_addch(out, ',');
            newline(out, level);
            break;
        case ':': buf_add(out, ": ", 2); break;
        case ' ':
        case '\n':
        case '\r':
        case '\t': break;
        default: buf_addch(out, c);
        }
        i++;
    }
}
