/*
 * fhirpath_parse.c - lexer and parser: FHIRPath text to the compiled tree.
 *
 * Recursive descent with precedence climbing over the FHIRPath 2.0 grammar. Literals are
 * turned into values and function names into table entries here, once, so evaluation never
 * looks at text again. The operator precedence is that of the grammar except that `is`
 * binds below `|` and the comparisons, as the published test suite reads `1 > 2 is Boolean`
 * and `1 | 1 is Integer`; `as` keeps its place (`a < b as Quantity` casts b). Every error
 * names the column and what was expected.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/jv.h"
#include "base/mem.h"
#include "fhir/fhirpath_int.h"

typedef enum {
    T_END,
    T_IDENT,     /* plain identifier or keyword */
    T_DELIMITED, /* `identifier` */
    T_STRING,
    T_NUMBER,
    T_DATE,    /* @... literal; value decided by the parser */
    T_SPECIAL, /* $this, $index, $total */
    T_PERCENT,
    T_PUNCT, /* one of . [ ] ( ) , { } */
    T_OP,    /* + - * / & | = != ~ !~ < <= > >= */
} token_kind_t;

typedef struct {
    token_kind_t kind;
    const char *start;
    size_t len;
    char *value; /* unescaped text of strings and delimited identifiers */
    size_t value_len;
} token_t;

typedef struct {
    const char *text, *p, *end;
    arena_t *arena;
    err_t *err;
    token_t tok;
    int depth;
    bool failed;
} parser_t;

static size_t column_of(parser_t *ps, const char *at)
{
    size_t column = 1;
    for (const char *q = ps->text; q < at && q < ps->end; q++)
        if (((unsigned char)*q & 0xC0) != 0x80)
            column++;
    return column;
}

static void fail_at(parser_t *ps, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_at(parser_t *ps, const char *at, const char *fmt, ...)
{
    if (ps->failed)
        return;
    ps->failed = true;
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    err_set(ps->err, ERR_INVALID, NULL, "could not parse FHIRPath at column %zu: %s",
            column_of(ps, at), what);
}

/* A short quotation of the current token for messages. */
static const char *describe(parser_t *ps)
{
    if (ps->tok.kind == T_END)
        return "the end of the expression";
    size_t n = ps->tok.len > 24 ? 24 : ps->tok.len;
    return arena_printf(ps->arena, "'%.*s'", (int)n, ps->tok.start);
}

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static void add_utf8(buf_t *b, unsigned cp)
{
    if (cp < 0x80) {
        buf_addch(b, (char)cp);
    } else if (cp < 0x800) {
        buf_addch(b, (char)(0xC0 | (cp >> 6)));
        buf_addch(b, (char)(0x80 | (cp & 0x3F)));
    } else {
        buf_addch(b, (char)(0xE0 | (cp >> 12)));
        buf_addch(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        buf_addch(b, (char)(0x80 | (cp & 0x3F)));
    }
}

/* Scans a quoted string or delimited identifier at ps->p; q is the quote character. */
static bool scan_quoted(parser_t *ps, char q)
{
    const char *start = ps->p;
    buf_t b = BUF_INIT;
    ps->p++;
    while (1) {
        if (ps->p >= ps->end) {
            fail_at(ps, start,
                    q == '\'' ? "unterminated string literal"
                              : "unterminated delimited identifier");
            buf_release(&b);
            return false;
        }
        char c = *ps->p;
        if (c == q) {
            ps->p++;
            break;
        }
        if (c == '\\') {
            if (ps->p + 1 >= ps->end) {
                fail_at(ps, ps->p, "unterminated escape sequence");
                buf_release(&b);
                return false;
            }
            char e = ps->p[1];
            ps->p += 2;
            switch (e) {
            case '\'': buf_addch(&b, '\''); break;
            case '"': buf_addch(&b, '"'); break;
            case '`': buf_addch(&b, '`'); break;
            case '\\': buf_addch(&b, '\\'); break;
            case '/': buf_addch(&b, '/'); break;
            case 'f': buf_addch(&b, '\f'); break;
            case 'n': buf_addch(&b, '\n'); break;
            case 'r': buf_addch(&b, '\r'); break;
            case 't': buf_addch(&b, '\t'); break;
            case 'u': {
                unsigned cp = 0;
                for (int i = 0; i < 4; i++) {
                    char h = ps->p < ps->end ? *ps->p : 0;
                    unsigned v;
                    if (h >= '0' && h <= '9')
                        v = (unsigned)(h - '0');
                    else if (h >= 'a' && h <= 'f')
                        v = (unsigned)(h - 'a' + 10);
                    else if (h >= 'A' && h <= 'F')
                        v = (unsigned)(h - 'A' + 10);
                    else {
                        fail_at(ps, ps->p, "expected 4 hex digits after \\u");
                        buf_release(&b);
                        return false;
                    }
                    cp = cp * 16 + v;
                    ps->p++;
                }
                if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) {
                    fail_at(ps, ps->p - 6, "\\u%04x is not allowed in a string", cp);
                    buf_release(&b);
                    return false;
                }
                add_utf8(&b, cp);
                break;
            }
            default:
                fail_at(ps, ps->p - 2, "invalid escape sequence '\\%c'", e);
                buf_release(&b);
                return false;
            }
            continue;
        }
        buf_addch(&b, c);
        ps->p++;
    }
    if (!jv_utf8_valid(b.ptr, b.len)) {
        fail_at(ps, start, "invalid UTF-8 in string");
        buf_release(&b);
        return false;
    }
    ps->tok.value = arena_strndup(ps->arena, b.ptr, b.len);
    ps->tok.value_len = b.len;
    buf_release(&b);
    return true;
}

static size_t scan_digits(const char *p, const char *end, size_t max)
{
    size_t n = 0;
    while (p + n < end && n < max && is_digit(p[n]))
        n++;
    return n;
}

/* Scans the body of an @ literal (after the @). */
static void scan_temporal(parser_t *ps)
{
    const char *p = ps->p, *end = ps->end;
    bool time_only = p < end && *p == 'T';
    if (!time_only) {
        p += scan_digits(p, end, 4);
        for (int i = 0; i < 2 && p + 2 < end && *p == '-' && is_digit(p[1]); i++)
            p += 1 + scan_digits(p + 1, end, 2);
        if (p < end && *p == 'T')
            p++;
        else {
            ps->p = p;
            return;
        }
    } else {
        p++;
    }
    if (p < end && is_digit(*p)) {
        p += scan_digits(p, end, 2);
        for (int i = 0; i < 2 && p + 1 < end && *p == ':' && is_digit(p[1]); i++)
            p += 1 + scan_digits(p + 1, end, 2);
        if (p + 1 < end && *p == '.' && is_digit(p[1])) {
            p++;
            p += scan_digits(p, end, 9);
        }
        if (!time_only) {
            if (p < end && *p == 'Z')
                p++;
            else if (p + 5 < end && (*p == '+' || *p == '-') && is_digit(p[1]) && is_digit(p[2]) &&
                     p[3] == ':' && is_digit(p[4]) && is_digit(p[5]))
                p += 6;
        }
    }
    ps->p = p;
}

static void skip_space(parser_t *ps)
{
    while (ps->p < ps->end) {
        char c = *ps->p;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            ps->p++;
        } else if (c == '/' && ps->p + 1 < ps->end && ps->p[1] == '/') {
            while (ps->p < ps->end && *ps->p != '\n')
                ps->p++;
        } else if (c == '/' && ps->p + 1 < ps->end && ps->p[1] == '*') {
            const char *start = ps->p;
            ps->p += 2;
            while (ps->p + 1 < ps->end && !(ps->p[0] == '*' && ps->p[1] == '/'))
                ps->p++;
            if (ps->p + 1 >= ps->end) {
                fail_at(ps, start, "unterminated comment");
                ps->p = ps->end;
                return;
            }
            ps->p += 2;
        } else {
            return;
        }
    }
}

static void next(parser_t *ps)
{
    skip_space(ps);
    token_t *t = &ps->tok;
    t->start = ps->p;
    t->value = NULL;
    t->value_len = 0;
    if (ps->failed || ps->p >= ps->end) {
        t->kind = T_END;
        t->len = 0;
        return;
    }
    char c = *ps->p;
    if (is_ident_start(c)) {
        while (ps->p < ps->end && (is_ident_start(*ps->p) || is_digit(*ps->p)))
            ps->p++;
        t->kind = T_IDENT;
    } else if (is_digit(c)) {
        ps->p += scan_digits(ps->p, ps->end, SIZE_MAX);
        if (ps->p + 1 < ps->end && *ps->p == '.' && is_digit(ps->p[1])) {
            ps->p++;
            ps->p += scan_digits(ps->p, ps->end, SIZE_MAX);
        }
        t->kind = T_NUMBER;
    } else if (c == '\'' || c == '`') {
        t->kind = c == '\'' ? T_STRING : T_DELIMITED;
        if (!scan_quoted(ps, c)) {
            t->kind = T_END;
            return;
        }
    } else if (c == '@') {
        ps->p++;
        scan_temporal(ps);
        t->kind = T_DATE;
    } else if (c == '$') {
        ps->p++;
        while (ps->p < ps->end && is_ident_start(*ps->p))
            ps->p++;
        t->kind = T_SPECIAL;
    } else if (c == '%') {
        ps->p++;
        t->kind = T_PERCENT;
    } else if (strchr(".[](),{}", c)) {
        ps->p++;
        t->kind = T_PUNCT;
    } else if (strchr("+-*/&|=~<>!", c)) {
        ps->p++;
        if ((c == '!' || c == '<' || c == '>') && ps->p < ps->end && *ps->p == '=')
            ps->p++;
        else if (c == '!' && ps->p < ps->end && *ps->p == '~')
            ps->p++;
        else if (c == '!') {
            fail_at(ps, t->start, "expected '=' or '~' after '!'");
            t->kind = T_END;
            return;
        }
        t->kind = T_OP;
    } else {
        fail_at(ps, t->start, "unexpected character '%c'", c >= 0x20 && c < 0x7f ? c : '?');
        t->kind = T_END;
        t->len = 0;
        return;
    }
    t->len = (size_t)(ps->p - t->start);
}

static bool tok_is(parser_t *ps, token_kind_t kind, const char *text)
{
    return ps->tok.kind == kind && strlen(text) == ps->tok.len &&
           memcmp(ps->tok.start, text, ps->tok.len) == 0;
}

static bool punct(parser_t *ps, char c)
{
    return ps->tok.kind == T_PUNCT && ps->tok.start[0] == c;
}

static fp_ast_t *new_node(parser_t *ps, fp_node_kind_t kind, const char *at)
{
    fp_ast_t *n = arena_zalloc(ps->arena, sizeof(*n));
    n->kind = kind;
    n->position = (uint32_t)(at - ps->text);
    return n;
}

static fp_ast_t *parse_expression(parser_t *ps, int min_prec);

/* An identifier token's text (plain or delimited) copied into the arena. */
static bool take_identifier(parser_t *ps, const char **out, size_t *out_len)
{
    if (ps->tok.kind == T_IDENT) {
        *out = arena_strndup(ps->arena, ps->tok.start, ps->tok.len);
        *out_len = ps->tok.len;
    } else if (ps->tok.kind == T_DELIMITED) {
        *out = ps->tok.value;
        *out_len = ps->tok.value_len;
    } else {
        return false;
    }
    next(ps);
    return true;
}

static const struct {
    const char *name;
    int kind;
} system_types[] = {
    {"Boolean", FHIRPATH_BOOLEAN}, {"Integer", FHIRPATH_INTEGER},   {"Decimal", FHIRPATH_DECIMAL},
    {"String", FHIRPATH_STRING},   {"Date", FHIRPATH_DATE},         {"DateTime", FHIRPATH_DATETIME},
    {"Time", FHIRPATH_TIME},       {"Quantity", FHIRPATH_QUANTITY},
};

static int system_kind(const char *name)
{
    for (size_t i = 0; i < sizeof(system_types) / sizeof(system_types[0]); i++)
        if (strcmp(system_types[i].name, name) == 0)
            return system_types[i].kind;
    return -1;
}

/* typeSpecifier: identifier ('.' identifier)? */
static bool parse_type(parser_t *ps, fp_typespec_t *out)
{
    const char *at = ps->tok.start;
    const char *first;
    size_t len;
    if (!take_identifier(ps, &first, &len)) {
        fail_at(ps, ps->tok.start, "expected a type name, found %s", describe(ps));
        return false;
    }
    out->namespace_ = NULL;
    out->name = first;
    if (punct(ps, '.') && (strcmp(first, "System") == 0 || strcmp(first, "FHIR") == 0)) {
        next(ps);
        const char *second;
        if (!take_identifier(ps, &second, &len)) {
            fail_at(ps, ps->tok.start, "expected a type name after '%s.'", first);
            return false;
        }
        out->namespace_ = first;
        out->name = second;
    }
    out->system_kind = system_kind(out->name);
    bool fhir_ns = out->namespace_ && strcmp(out->namespace_, "FHIR") == 0;
    if (fhir_ns)
        out->system_kind = -1;
    /* a misspelt type would silently match nothing: only System.X may name no type */
    bool system_ns = out->namespace_ && !fhir_ns;
    if (!system_ns && out->system_kind < 0 && !fhirpath__model_type(out->name, strlen(out->name))) {
        fail_at(ps, at, "unknown type '%s%s'", fhir_ns ? "FHIR." : "", out->name);
        return false;
    }
    return true;
}

static fp_ast_t *parse_call(parser_t *ps, fp_ast_t *focus, const char *name, size_t len,
                            const char *at)
{
    fp_ast_t *n = new_node(ps, FP_N_CALL, at);
    n->left = focus;
    n->name = name;
    n->name_len = len;
    n->function = fhirpath__function_find(name, len);
    if (!n->function) {
        fail_at(ps, at, "unknown function '%s'", name);
        return NULL;
    }
    next(ps); /* ( */
    fp_ast_t *args[8];
    size_t nargs = 0;
    if (n->function->type_arg) {
        if (!parse_type(ps, &n->type))
            return NULL;
        nargs = 1;
    } else if (!punct(ps, ')')) {
        while (1) {
            if (nargs == sizeof(args) / sizeof(args[0])) {
                fail_at(ps, ps->tok.start, "too many arguments to %s()", name);
                return NULL;
            }
            fp_ast_t *arg = parse_expression(ps, 1);
            if (!arg)
                return NULL;
            args[nargs++] = arg;
            if (!punct(ps, ','))
                break;
            next(ps);
        }
    }
    if (!punct(ps, ')')) {
        fail_at(ps, ps->tok.start, "expected ')' after function arguments, found %s", describe(ps));
        return NULL;
    }
    next(ps);
    if (nargs < n->function->min_args || nargs > n->function->max_args) {
        if (n->function->min_args == n->function->max_args)
            fail_at(ps, at, "%s() takes %u argument%s, not %zu", name, n->function->min_args,
                    n->function->min_args == 1 ? "" : "s", nargs);
        else
            fail_at(ps, at, "%s() takes %u to %u arguments, not %zu", name, n->function->min_args,
                    n->function->max_args, nargs);
        return NULL;
    }
    if (!n->function->type_arg) {
        n->nargs = nargs;
        n->args = arena_alloc(ps->arena, sizeof(fp_ast_t *) * (nargs ? nargs : 1));
        memcpy(n->args, args, sizeof(fp_ast_t *) * nargs);
    }
    return n;
}

static fp_ast_t *literal(parser_t *ps, const char *at, fhirpath_kind_t kind)
{
    fp_ast_t *n = new_node(ps, FP_N_LITERAL, at);
    n->literal.kind = (uint8_t)kind;
    return n;
}

static fp_ast_t *parse_number(parser_t *ps)
{
    const char *at = ps->tok.start;
    size_t len = ps->tok.len;
    fp_ast_t *n;
    if (memchr(at, '.', len)) {
        n = literal(ps, at, FHIRPATH_DECIMAL);
        if (!fhirpath__decimal_parse(at, len, &n->literal.u.decimal)) {
            fail_at(ps, at, "decimal literal out of range");
            return NULL;
        }
    } else {
        n = literal(ps, at, FHIRPATH_INTEGER);
        int64_t v = 0;
        for (size_t i = 0; i < len; i++) {
            if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, at[i] - '0', &v)) {
                fail_at(ps, at, "integer literal out of range");
                return NULL;
            }
        }
        n->literal.u.integer = v;
    }
    next(ps);
    /* a quantity: the number followed by a unit string or a calendar duration keyword */
    const char *unit = NULL;
    size_t unit_len = 0;
    bool calendar = false;
    if (ps->tok.kind == T_STRING) {
        unit = ps->tok.value;
        unit_len = ps->tok.value_len;
        if (!fhirpath__ucum_valid(unit, unit_len)) {
            fail_at(ps, ps->tok.start, "'%s' is not a UCUM unit", unit);
            return NULL;
        }
    } else if (ps->tok.kind == T_IDENT &&
               fhirpath__calendar_unit(ps->tok.start, ps->tok.len, NULL) >= 0) {
        unit = arena_strndup(ps->arena, ps->tok.start, ps->tok.len);
        unit_len = ps->tok.len;
        calendar = true;
    }
    if (unit) {
        fp_decimal_t value = n->literal.kind == FHIRPATH_INTEGER
                                 ? fhirpath__decimal_from_int(n->literal.u.integer)
                                 : n->literal.u.decimal;
        n->literal.kind = FHIRPATH_QUANTITY;
        n->literal.u.quantity.value = value;
        n->literal.u.quantity.unit = unit;
        n->literal.u.quantity.unit_len = (uint32_t)unit_len;
        n->literal.u.quantity.calendar = calendar;
        next(ps);
    }
    return n;
}

static fp_ast_t *parse_temporal(parser_t *ps)
{
    const char *at = ps->tok.start;
    const char *body = at + 1;
    size_t len = ps->tok.len - 1;
    fp_ast_t *n;
    if (len > 0 && body[0] == 'T') {
        n = literal(ps, at, FHIRPATH_TIME);
        if (!fhirpath__time_parse(body + 1, len - 1, &n->literal.u.temporal)) {
            fail_at(ps, at, "invalid time literal '%.*s'", (int)ps->tok.len, at);
            return NULL;
        }
    } else if (memchr(body, 'T', len)) {
        n = literal(ps, at, FHIRPATH_DATETIME);
        if (!fhirpath__datetime_parse(body, len, &n->literal.u.temporal)) {
            fail_at(ps, at, "invalid date-time literal '%.*s'", (int)ps->tok.len, at);
            return NULL;
        }
    } else {
        n = literal(ps, at, FHIRPATH_DATE);
        if (!fhirpath__date_parse(body, len, &n->literal.u.temporal)) {
            fail_at(ps, at, "invalid date literal '%.*s'", (int)ps->tok.len, at);
            return NULL;
        }
    }
    next(ps);
    return n;
}

static fp_ast_t *parse_term(parser_t *ps)
{
    const char *at = ps->tok.start;
    switch (ps->tok.kind) {
    case T_NUMBER: return parse_number(ps);
    case T_STRING: {
        fp_ast_t *n = literal(ps, at, FHIRPATH_STRING);
        n->literal.u.string.ptr = ps->tok.value;
        n->literal.u.string.len = ps->tok.value_len;
        next(ps);
        return n;
    }
    case T_DATE: return parse_temporal(ps);
    case T_SPECIAL: {
        fp_ast_t *n;
        if (tok_is(ps, T_SPECIAL, "$this"))
            n = new_node(ps, FP_N_THIS, at);
        else if (tok_is(ps, T_SPECIAL, "$index"))
            n = new_node(ps, FP_N_INDEX, at);
        else if (tok_is(ps, T_SPECIAL, "$total"))
            n = new_node(ps, FP_N_TOTAL, at);
        else {
            fail_at(ps, at, "unknown special variable %s", describe(ps));
            return NULL;
        }
        next(ps);
        return n;
    }
    case T_PERCENT: {
        next(ps);
        fp_ast_t *n = new_node(ps, FP_N_VARIABLE, at);
        if (ps->tok.kind == T_STRING) {
            n->name = ps->tok.value;
            n->name_len = ps->tok.value_len;
            next(ps);
        } else if (!take_identifier(ps, &n->name, &n->name_len)) {
            fail_at(ps, ps->tok.start, "expected a variable name after '%%'");
            return NULL;
        }
        return n;
    }
    case T_PUNCT:
        if (punct(ps, '(')) {
            next(ps);
            fp_ast_t *inner = parse_expression(ps, 1);
            if (!inner)
                return NULL;
            if (!punct(ps, ')')) {
                fail_at(ps, ps->tok.start, "expected ')' to close '(' at column %zu, found %s",
                        column_of(ps, at), describe(ps));
                return NULL;
            }
            next(ps);
            return inner;
        }
        if (punct(ps, '{')) {
            next(ps);
            if (!punct(ps, '}')) {
                fail_at(ps, ps->tok.start, "expected '}' after '{'");
                return NULL;
            }
            next(ps);
            return new_node(ps, FP_N_EMPTY, at);
        }
        break;
    case T_IDENT:
        if (tok_is(ps, T_IDENT, "true") || tok_is(ps, T_IDENT, "false")) {
            fp_ast_t *n = literal(ps, at, FHIRPATH_BOOLEAN);
            n->literal.u.boolean = ps->tok.start[0] == 't';
            next(ps);
            return n;
        }
        /* fall through */
    case T_DELIMITED: {
        bool plain = ps->tok.kind == T_IDENT;
        const char *name;
        size_t len;
        take_identifier(ps, &name, &len);
        if (plain && punct(ps, '('))
            return parse_call(ps, NULL, name, len, at);
        fp_ast_t *n = new_node(ps, FP_N_IDENT, at);
        n->name = name;
        n->name_len = len;
        return n;
    }
    default: break;
    }
    fail_at(ps, at, "expected an expression, found %s", describe(ps));
    return NULL;
}

/* term followed by any number of .member, .function(...) and [index] */
static fp_ast_t *parse_postfix(parser_t *ps)
{
    fp_ast_t *n = parse_term(ps);
    while (n && !ps->failed) {
        if (punct(ps, '.')) {
            next(ps);
            const char *at = ps->tok.start;
            bool plain = ps->tok.kind == T_IDENT;
            const char *name;
            size_t len;
            if (!take_identifier(ps, &name, &len)) {
                fail_at(ps, at, "expected an identifier or function after '.', found %s",
                        describe(ps));
                return NULL;
            }
            if (plain && punct(ps, '(')) {
                n = parse_call(ps, n, name, len, at);
            } else {
                fp_ast_t *m = new_node(ps, FP_N_MEMBER, at);
                m->left = n;
                m->name = name;
                m->name_len = len;
                n = m;
            }
        } else if (punct(ps, '[')) {
            const char *at = ps->tok.start;
            next(ps);
            fp_ast_t *index = parse_expression(ps, 1);
            if (!index)
                return NULL;
            if (!punct(ps, ']')) {
                fail_at(ps, ps->tok.start, "expected ']' after index, found %s", describe(ps));
                return NULL;
            }
            next(ps);
            fp_ast_t *m = new_node(ps, FP_N_INDEXER, at);
            m->left = n;
            m->right = index;
            n = m;
        } else {
            break;
        }
    }
    return n;
}

static fp_ast_t *parse_unary(parser_t *ps)
{
    if (ps->tok.kind == T_OP && ps->tok.len == 1 &&
        (ps->tok.start[0] == '-' || ps->tok.start[0] == '+')) {
        const char *at = ps->tok.start;
        fp_op_t op = ps->tok.start[0] == '-' ? FP_OP_NEG : FP_OP_POS;
        next(ps);
        if (++ps->depth > FP_MAX_DEPTH) {
            fail_at(ps, at, "expression nested too deeply");
            return NULL;
        }
        fp_ast_t *operand = parse_unary(ps);
        ps->depth--;
        if (!operand)
            return NULL;
        fp_ast_t *n = new_node(ps, FP_N_UNARY, at);
        n->op = op;
        n->left = operand;
        return n;
    }
    return parse_postfix(ps);
}

/* Binding strength (higher binds tighter); 0 when the token is not a binary operator. */
static int binary_op(parser_t *ps, fp_op_t *out)
{
    static const struct {
        token_kind_t kind;
        const char *text;
        fp_op_t op;
        int prec;
    } ops[] = {
        {T_OP, "*", FP_OP_MUL, 22},         {T_OP, "/", FP_OP_DIV, 22},
        {T_IDENT, "div", FP_OP_DIVINT, 22}, {T_IDENT, "mod", FP_OP_MOD, 22},
        {T_OP, "+", FP_OP_ADD, 20},         {T_OP, "-", FP_OP_SUB, 20},
        {T_OP, "&", FP_OP_CONCAT, 20},      {T_IDENT, "as", FP_OP_AS, 19},
        {T_OP, "|", FP_OP_UNION, 18},       {T_OP, "<", FP_OP_LT, 16},
        {T_OP, "<=", FP_OP_LE, 16},         {T_OP, ">", FP_OP_GT, 16},
        {T_OP, ">=", FP_OP_GE, 16},         {T_IDENT, "is", FP_OP_IS, 14},
        {T_OP, "=", FP_OP_EQ, 12},          {T_OP, "~", FP_OP_EQUIV, 12},
        {T_OP, "!=", FP_OP_NE, 12},         {T_OP, "!~", FP_OP_NEQUIV, 12},
        {T_IDENT, "in", FP_OP_IN, 10},      {T_IDENT, "contains", FP_OP_CONTAINS, 10},
        {T_IDENT, "and", FP_OP_AND, 8},     {T_IDENT, "or", FP_OP_OR, 6},
        {T_IDENT, "xor", FP_OP_XOR, 6},     {T_IDENT, "implies", FP_OP_IMPLIES, 4},
    };
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (tok_is(ps, ops[i].kind, ops[i].text)) {
            *out = ops[i].op;
            return ops[i].prec;
        }
    }
    return 0;
}

static fp_ast_t *parse_expression(parser_t *ps, int min_prec)
{
    if (++ps->depth > FP_MAX_DEPTH) {
        fail_at(ps, ps->tok.start, "expression nested too deeply");
        return NULL;
    }
    fp_ast_t *left = parse_unary(ps);
    while (left && !ps->failed) {
        fp_op_t op;
        const char *at = ps->tok.start;
        int prec = binary_op(ps, &op);
        if (prec == 0 || prec < min_prec)
            break;
        next(ps);
        if (op == FP_OP_IS || op == FP_OP_AS) {
            fp_ast_t *n = new_node(ps, FP_N_TYPE, at);
            n->op = op;
            n->left = left;
            if (!parse_type(ps, &n->type)) {
                left = NULL;
                break;
            }
            left = n;
            continue;
        }
        /* implies is right-associative, the others left */
        fp_ast_t *right = parse_expression(ps, op == FP_OP_IMPLIES ? prec : prec + 1);
        if (!right) {
            left = NULL;
            break;
        }
        fp_ast_t *n = new_node(ps, FP_N_BINARY, at);
        n->op = op;
        n->left = left;
        n->right = right;
        left = n;
    }
    ps->depth--;
    return left;
}

fhirpath_t *fhirpath_compile(const char *text, size_t len, err_t *err)
{
    if (len > FHIRPATH_MAX_TEXT) {
        err_set(err, ERR_INVALID, NULL,
                "could not parse FHIRPath: expression is longer than %zu bytes", FHIRPATH_MAX_TEXT);
        return NULL;
    }
    fhirpath_t *expr = xcalloc(1, sizeof(*expr));
    arena_init(&expr->arena);
    expr->text = arena_strndup(&expr->arena, text, len);
    expr->len = len;
    parser_t ps = {0};
    ps.text = expr->text;
    ps.p = expr->text;
    ps.end = expr->text + len;
    ps.arena = &expr->arena;
    ps.err = err;
    if (memchr(text, '\0', len)) {
        fail_at(&ps, ps.text + strlen(ps.text), "NUL character in expression");
    } else if (!jv_utf8_valid(text, len)) {
        fail_at(&ps, ps.text, "expression is not valid UTF-8");
    } else {
        next(&ps);
        if (ps.tok.kind == T_END && !ps.failed)
            fail_at(&ps, ps.p, "expected an expression, found the end of the expression");
        else
            expr->root = parse_expression(&ps, 1);
        if (!ps.failed && ps.tok.kind != T_END)
            fail_at(&ps, ps.tok.start, "expected an operator or the end, found %s", describe(&ps));
    }
    if (ps.failed || !expr->root) {
        if (!ps.failed)
            err_set(err, ERR_INVALID, NULL, "could not parse FHIRPath");
        fhirpath_free(expr);
        return NULL;
    }
    return expr;
}

void fhirpath_free(fhirpath_t *expr)
{
    if (!expr)
        return;
    arena_release(&expr->arena);
    free(expr);
}

const char *fhirpath_text(const fhirpath_t *expr)
{
    return expr->text;
}
