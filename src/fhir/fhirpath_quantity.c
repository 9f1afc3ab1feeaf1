/*
 * fhirpath_quantity.c - quantities and the UCUM units FHIR data uses: unit expressions with
 * prefixes, exponents, products, quotients, parentheses and annotations are reduced to a
 * factor (an exact decimal) and a vector of base dimensions, so 4 'g' = 4000 'mg' and
 * 185 '[lb_av]' compares with kilograms. Calendar durations (1 week, 3 days) equal their
 * UCUM counterparts from week down; year and month are only comparable with each other
 * (1 year = 12 months) for =, and with 'a' and 'mo' for ~, as the specification says.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/fhirpath_int.h"

enum { DIM_M, DIM_G, DIM_S, DIM_RAD, DIM_K, DIM_C, DIM_CD, DIM_MOL, DIM_IU, DIM_CALMONTH, NDIM };

/* A unit as factor (num / den, kept apart so conversions stay exact) times base dimensions. */
typedef struct {
    fp_decimal_t num, den;
    int8_t dim[NDIM];
    int special; /* 1 Cel, 2 [degF]: offset scales, only alone */
} canon_t;

typedef struct {
    const char *code;
    bool metric; /* takes prefixes */
    const char *factor;
    const char *definition; /* NULL: a base unit, dimension in base */
    int base;
} atom_t;

static const atom_t atoms[] = {
    {"m", true, "1", NULL, DIM_M},
    {"g", true, "1", NULL, DIM_G},
    {"s", true, "1", NULL, DIM_S},
    {"rad", true, "1", NULL, DIM_RAD},
    {"K", true, "1", NULL, DIM_K},
    {"C", true, "1", NULL, DIM_C},
    {"cd", true, "1", NULL, DIM_CD},
    {"mol", true, "1", NULL, DIM_MOL},
    {"[iU]", true, "1", NULL, DIM_IU},
    {"[IU]", true, "1", NULL, DIM_IU},
    {"eq", true, "1", "mol", 0},
    {"osm", true, "1", "mol", 0},
    {"kat", true, "1", "mol/s", 0},
    {"U", true, "1", "umol/min", 0},
    {"l", true, "1", "dm3", 0},
    {"L", true, "1", "dm3", 0},
    {"ar", true, "100", "m2", 0},
    {"t", true, "1000", "kg", 0},
    {"Hz", true, "1", "s-1", 0},
    {"N", true, "1", "kg.m/s2", 0},
    {"Pa", true, "1", "N/m2", 0},
    {"J", true, "1", "N.m", 0},
    {"W", true, "1", "J/s", 0},
    {"A", true, "1", "C/s", 0},
    {"V", true, "1", "J/C", 0},
    {"Ohm", true, "1", "V/A", 0},
    {"Bq", true, "1", "s-1", 0},
    {"Gy", true, "1", "J/kg", 0},
    {"Sv", true, "1", "J/kg", 0},
    {"bar", true, "100000", "Pa", 0},
    {"cal", true, "4.184", "J", 0},
    {"m[Hg]", true, "133.322", "kPa", 0},
    {"m[H2O]", true, "9.80665", "kPa", 0},
    {"atm", false, "101325", "Pa", 0},
    {"%", false, "0.01", "1", 0},
    {"[ppth]", false, "0.001", "1", 0},
    {"[ppm]", false, "0.000001", "1", 0},
    {"[ppb]", false, "0.000000001", "1", 0},
    {"min", false, "60", "s", 0},
    {"h", false, "60", "min", 0},
    {"d", false, "24", "h", 0},
    {"wk", false, "7", "d", 0},
    {"a", false, "365.25", "d", 0},
    {"a_j", false, "365.25", "d", 0},
    {"a_g", false, "365.2425", "d", 0},
    {"a_t", false, "365.24219", "d", 0},
    {"mo", false, "30.4375", "d", 0},
    {"mo_j", false, "30.4375", "d", 0},
    {"mo_g", false, "30.436875", "d", 0},
    {"mo_s", false, "29.53059", "d", 0},
    {"[in_i]", false, "2.54", "cm", 0},
    {"[ft_i]", false, "12", "[in_i]", 0},
    {"[yd_i]", false, "3", "[ft_i]", 0},
    {"[mi_i]", false, "5280", "[ft_i]", 0},
    {"[nmi_i]", false, "1852", "m", 0},
    {"Ao", false, "0.1", "nm", 0},
    {"[lb_av]", false, "453.59237", "g", 0},
    {"[oz_av]", false, "28.349523125", "g", 0},
    {"[gr]", false, "64.79891", "mg", 0},
    {"[ston_av]", false, "100", "[lb_av]", 0},
    {"[lbf_av]", false, "4.4482216152605", "N", 0},
    {"[psi]", false, "1", "[lbf_av]/[in_i]2", 0},
    {"[gal_us]", false, "231", "[in_i]3", 0},
    {"[qt_us]", false, "0.25", "[gal_us]", 0},
    {"[pt_us]", false, "0.5", "[qt_us]", 0},
    {"[foz_us]", false, "29.5735295625", "mL", 0},
    {"[cup_us]", false, "236.5882365", "mL", 0},
    {"[tbs_us]", false, "14.78676478125", "mL", 0},
    {"[tsp_us]", false, "4.92892159375", "mL", 0},
    {"[drp]", false, "0.05", "mL", 0},
    {"deg", false, "0.0174532925199432957692369", "rad", 0},
    {"Cel", false, "1", "K", 0},
    {"[degF]", false, "0.5555555555555555555555556", "K", 0},
    {"[pi]", false, "3.1415926535897932384626434", "1", 0},
};

static const struct {
    const char *code;
    const char *factor;
} prefixes[] = {
    {"Y", "1000000000000000000000000"},
    {"Z", "1000000000000000000000"},
    {"E", "1000000000000000000"},
    {"P", "1000000000000000"},
    {"T", "1000000000000"},
    {"G", "1000000000"},
    {"M", "1000000"},
    {"k", "1000"},
    {"h", "100"},
    {"da", "10"},
    {"d", "0.1"},
    {"c", "0.01"},
    {"m", "0.001"},
    {"u", "0.000001"},
    {"n", "0.000000001"},
    {"p", "0.000000000001"},
    {"f", "0.000000000000001"},
    {"a", "0.000000000000000001"},
    {"z", "0.000000000000000000001"},
    {"y", "0.000000000000000000000001"},
};

static fp_decimal_t dec(const char *text)
{
    fp_decimal_t d = {0, 0};
    fhirpath__decimal_parse(text, strlen(text), &d);
    return d;
}

static void canon_unity(canon_t *c)
{
    memset(c, 0, sizeof(*c));
    c->num = fhirpath__decimal_from_int(1);
    c->den = fhirpath__decimal_from_int(1);
}

static bool mul_into(fp_decimal_t *acc, fp_decimal_t by)
{
    fp_decimal_t r;
    if (!fhirpath__decimal_mul(*acc, by, &r))
        return false;
    *acc = fhirpath__decimal_trim(r, 0);
    return true;
}

/* factor *= (num / den)^exp; false on overflow */
static bool scale_by(canon_t *c, fp_decimal_t num, fp_decimal_t den, int exp)
{
    int n = exp < 0 ? -exp : exp;
    for (int i = 0; i < n; i++) {
        if (!mul_into(exp > 0 ? &c->num : &c->den, num) ||
            !mul_into(exp > 0 ? &c->den : &c->num, den))
            return false;
    }
    return true;
}

static bool parse_term(const char **p, const char *end, canon_t *out, int depth);

static const atom_t *atom_find(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof(atoms) / sizeof(atoms[0]); i++)
        if (strlen(atoms[i].code) == n && memcmp(atoms[i].code, s, n) == 0)
            return &atoms[i];
    return NULL;
}

static bool atom_canon(const atom_t *a, canon_t *out, int depth)
{
    canon_unity(out);
    out->num = dec(a->factor);
    if (!a->definition) {
        out->dim[a->base] = 1;
        return true;
    }
    const char *p = a->definition, *end = p + strlen(p);
    canon_t def;
    if (!parse_term(&p, end, &def, depth + 1) || p != end)
        return false;
    for (int i = 0; i < NDIM; i++)
        out->dim[i] = def.dim[i];
    if (!scale_by(out, def.num, def.den, 1))
        return false;
    if (strcmp(a->code, "Cel") == 0)
        out->special = 1;
    else if (strcmp(a->code, "[degF]") == 0)
        out->special = 2;
    return true;
}

/* A unit symbol with an optional prefix: "mg", "kPa", "[lb_av]", "10*3". */
static bool symbol_canon(const char *s, size_t n, canon_t *out, int depth)
{
    if (n == 0)
        return false;
    bool all_digits = true;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            all_digits = false;
    if (all_digits) {
        canon_unity(out);
        return fhirpath__decimal_parse(s, n, &out->num);
    }
    if (n > 3 && memcmp(s, "10", 2) == 0 && (s[2] == '*' || s[2] == '^')) {
        int e = 0;
        bool negative = false;
        size_t i = 3;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            negative = s[i++] == '-';
        if (i == n)
            return false;
        for (; i < n; i++) {
            if (s[i] < '0' || s[i] > '9' || e > 30)
                return false;
            e = e * 10 + (s[i] - '0');
        }
        canon_unity(out);
        return scale_by(out, dec("10"), dec("1"), negative ? -e : e);
    }
    const atom_t *a = atom_find(s, n);
    if (a)
        return atom_canon(a, out, depth);
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t pl = strlen(prefixes[i].code);
        if (pl < n && memcmp(prefixes[i].code, s, pl) == 0) {
            a = atom_find(s + pl, n - pl);
            if (a && a->metric) {
                if (!atom_canon(a, out, depth) || out->special)
                    return false;
                return scale_by(out, dec(prefixes[i].factor), dec("1"), 1);
            }
        }
    }
    return false;
}

static void skip_annotation(const char **p, const char *end)
{
    while (*p < end && **p != '}')
        (*p)++;
    if (*p < end)
        (*p)++;
}

/* component: '(' term ')' | symbol exponent? annotation? | annotation */
static bool parse_component(const char **p, const char *end, canon_t *out, int depth)
{
    if (depth > 16 || *p >= end)
        return false;
    if (**p == '(') {
        (*p)++;
        if (!parse_term(p, end, out, depth + 1) || *p >= end || **p != ')')
            return false;
        (*p)++;
    } else if (**p == '{') {
        const char *start = *p;
        skip_annotation(p, end);
        if ((*p)[-1] != '}' || *p - start < 2)
            return false;
        canon_unity(out);
        return true;
    } else {
        const char *start = *p;
        int brackets = 0;
        while (*p < end) {
            char c = **p;
            if (c == '[')
                brackets++;
            else if (c == ']')
                brackets--;
            else if (brackets == 0 && (c == '.' || c == '/' || c == '(' || c == ')' || c == '{'))
                break;
            (*p)++;
        }
        const char *tok_end = *p;
        /* a trailing exponent: digits, optionally signed, after a non-digit symbol */
        const char *e = tok_end;
        while (e > start && e[-1] >= '0' && e[-1] <= '9')
            e--;
        const char *exp_start = e;
        if (e > start && (e[-1] == '-' || e[-1] == '+'))
            exp_start = e - 1;
        int exponent = 1;
        size_t sym_len = (size_t)(tok_end - start);
        bool is_ten_power =
            sym_len > 3 && memcmp(start, "10", 2) == 0 && (start[2] == '*' || start[2] == '^');
        if (e < tok_end && exp_start > start && !is_ten_power) {
            bool symbol_digits = true;
            for (const char *q = start; q < exp_start; q++)
                if (*q < '0' || *q > '9')
                    symbol_digits = false;
            if (!symbol_digits) {
                exponent = 0;
                for (const char *q = e; q < tok_end; q++) {
                    exponent = exponent * 10 + (*q - '0');
                    if (exponent > 20)
                        return false;
                }
                if (*exp_start == '-')
                    exponent = -exponent;
                sym_len = (size_t)(exp_start - start);
            }
        }
        canon_t sym;
        if (!symbol_canon(start, sym_len, &sym, depth))
            return false;
        if (exponent != 1 && sym.special)
            return false;
        canon_unity(out);
        out->special = sym.special;
        for (int i = 0; i < NDIM; i++)
            out->dim[i] = (int8_t)(sym.dim[i] * exponent);
        if (!scale_by(out, sym.num, sym.den, exponent))
            return false;
    }
    if (*p < end && **p == '{')
        skip_annotation(p, end);
    return true;
}

static bool combine(canon_t *acc, const canon_t *c, bool divide)
{
    for (int i = 0; i < NDIM; i++)
        acc->dim[i] = (int8_t)(acc->dim[i] + (divide ? -c->dim[i] : c->dim[i]));
    if (c->special || acc->special)
        acc->special = -1; /* offset units cannot be combined */
    return scale_by(acc, c->num, c->den, divide ? -1 : 1);
}

static bool parse_term(const char **p, const char *end, canon_t *out, int depth)
{
    canon_unity(out);
    bool divide = false;
    if (*p < end && **p == '/') {
        divide = true;
        (*p)++;
    }
    bool first = true;
    while (1) {
        canon_t c;
        if (!parse_component(p, end, &c, depth))
            return false;
        if (first && !divide) {
            *out = c;
        } else if (!combine(out, &c, divide)) {
            return false;
        }
        first = false;
        if (*p < end && (**p == '.' || **p == '/')) {
            divide = **p == '/';
            (*p)++;
            continue;
        }
        return true;
    }
}

static bool ucum_canon(const char *unit, size_t len, canon_t *out)
{
    const char *p = unit, *end = unit + len;
    if (len == 0) {
        canon_unity(out);
        return true;
    }
    if (!parse_term(&p, end, out, 0) || p != end || out->special < 0)
        return false;
    return true;
}

bool fhirpath__ucum_valid(const char *unit, size_t len)
{
    canon_t c;
    return ucum_canon(unit, len, &c);
}

int fhirpath__calendar_unit(const char *word, size_t len, bool *out_week)
{
    static const struct {
        const char *name;
        int unit;
    } words[] = {
        {"year", FP_PREC_YEAR},
        {"month", FP_PREC_MONTH},
        {"week", 0},
        {"day", FP_PREC_DAY},
        {"hour", FP_PREC_HOUR},
        {"minute", FP_PREC_MINUTE},
        {"second", FP_PREC_SECOND},
        {"millisecond", FP_PREC_MILLISECOND},
    };
    if (len > 0 && word[len - 1] == 's')
        len--;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strlen(words[i].name) == len && memcmp(words[i].name, word, len) == 0) {
            if (out_week)
                *out_week = words[i].unit == 0;
            return words[i].unit;
        }
    }
    return -1;
}

/* The canonical form of a quantity's unit; calendar units map to UCUM durations, except
 * year and month for =, which have a calendar dimension of their own. */
static bool quantity_canon(const fp_quantity_t *q, bool equivalent, canon_t *out)
{
    if (!q->calendar)
        return ucum_canon(q->unit, q->unit_len, out);
    bool week = false;
    int unit = fhirpath__calendar_unit(q->unit, q->unit_len, &week);
    static const char *ucum[] = {"wk", "a", "mo", "d", "h", "min", "s", "ms"};
    if (week)
        return ucum_canon("wk", 2, out);
    if (unit < 0)
        return false;
    if ((unit == FP_PREC_YEAR || unit == FP_PREC_MONTH) && !equivalent) {
        canon_unity(out);
        out->dim[DIM_CALMONTH] = 1;
        out->num = fhirpath__decimal_from_int(unit == FP_PREC_YEAR ? 12 : 1);
        return true;
    }
    return ucum_canon(ucum[unit], strlen(ucum[unit]), out);
}

/* The value in canonical units as a fraction *out_num / *out_den; false on overflow. */
static bool to_canonical(const fp_quantity_t *q, const canon_t *c, fp_decimal_t *out_num,
                         fp_decimal_t *out_den)
{
    fp_decimal_t v = q->value;
    *out_den = fhirpath__decimal_from_int(1);
    if (c->special == 1)
        return fhirpath__decimal_add(v, dec("273.15"), out_num);
    if (c->special == 2) {
        /* (F + 459.67) * 5 / 9 */
        fp_decimal_t t;
        *out_den = fhirpath__decimal_from_int(9);
        return fhirpath__decimal_add(v, dec("459.67"), &t) &&
               fhirpath__decimal_mul(t, fhirpath__decimal_from_int(5), out_num);
    }
    *out_den = c->den;
    return fhirpath__decimal_mul(v, c->num, out_num);
}

/* The canonical value as one decimal (for rounding to a precision). */
static bool canonical_value(const fp_quantity_t *q, const canon_t *c, fp_decimal_t *out)
{
    fp_decimal_t num, den;
    if (!to_canonical(q, c, &num, &den))
        return false;
    return fhirpath__decimal_div(num, den, 20, out);
}

/* Compares the canonical values of a and b exactly (cross-multiplied). */
static bool canonical_cmp(const fp_quantity_t *a, const canon_t *ca, const fp_quantity_t *b,
                          const canon_t *cb, int *out)
{
    fp_decimal_t an, ad, bn, bd, left, right;
    if (!to_canonical(a, ca, &an, &ad) || !to_canonical(b, cb, &bn, &bd))
        return false;
    if (fhirpath__decimal_mul(an, bd, &left) && fhirpath__decimal_mul(bn, ad, &right)) {
        *out = fhirpath__decimal_cmp(left, right);
        return true;
    }
    fp_decimal_t va, vb;
    if (!fhirpath__decimal_div(an, ad, 20, &va) || !fhirpath__decimal_div(bn, bd, 20, &vb))
        return false;
    *out = fhirpath__decimal_cmp(va, vb);
    return true;
}

static bool same_dims(const canon_t *a, const canon_t *b)
{
    return memcmp(a->dim, b->dim, sizeof(a->dim)) == 0;
}

int fhirpath__quantity_equal(const fp_quantity_t *a, const fp_quantity_t *b, bool equivalent)
{
    canon_t ca, cb;
    if (!quantity_canon(a, equivalent, &ca) || !quantity_canon(b, equivalent, &cb) ||
        !same_dims(&ca, &cb))
        return -1;
    if (equivalent) {
        fp_decimal_t va, vb;
        if (!canonical_value(a, &ca, &va) || !canonical_value(b, &cb, &vb))
            return -1;
        int scale = va.scale < vb.scale ? va.scale : vb.scale;
        return fhirpath__decimal_cmp(fhirpath__decimal_round(va, scale),
                                     fhirpath__decimal_round(vb, scale)) == 0;
    }
    int c;
    if (!canonical_cmp(a, &ca, b, &cb, &c))
        return -1;
    return c == 0;
}

fp_cmp_t fhirpath__quantity_compare(const fp_quantity_t *a, const fp_quantity_t *b)
{
    canon_t ca, cb;
    if (!quantity_canon(a, false, &ca) || !quantity_canon(b, false, &cb) || !same_dims(&ca, &cb))
        return FP_CMP_UNKNOWN;
    int c;
    if (!canonical_cmp(a, &ca, b, &cb, &c))
        return FP_CMP_UNKNOWN;
    return (fp_cmp_t)c;
}

bool fhirpath__quantity_add(const fp_quantity_t *a, const fp_quantity_t *b, bool subtract,
                            arena_t *arena, fp_quantity_t *out)
{
    (void)arena;
    fp_decimal_t bv = b->value;
    bool same_unit = a->calendar == b->calendar && a->unit_len == b->unit_len &&
                     memcmp(a->unit, b->unit, a->unit_len) == 0;
    if (!same_unit) {
        canon_t ca, cb;
        if (!quantity_canon(a, false, &ca) || !quantity_canon(b, false, &cb) ||
            !same_dims(&ca, &cb) || ca.special || cb.special)
            return false;
        /* b in a's unit: b.value * b.num * a.den / (b.den * a.num) */
        fp_decimal_t bn, bd, top, bottom;
        if (!to_canonical(b, &cb, &bn, &bd) || !fhirpath__decimal_mul(bn, ca.den, &top) ||
            !fhirpath__decimal_mul(bd, ca.num, &bottom) ||
            !fhirpath__decimal_div(top, bottom, 20, &bv))
            return false;
        int keep = a->value.scale > b->value.scale ? a->value.scale : b->value.scale;
        bv = fhirpath__decimal_trim(bv, keep);
    }
    *out = *a;
    return subtract ? fhirpath__decimal_sub(a->value, bv, &out->value)
                    : fhirpath__decimal_add(a->value, bv, &out->value);
}

static const char *ucum_of(const fp_quantity_t *q, size_t *out_len)
{
    if (!q->calendar) {
        *out_len = q->unit_len;
        return q->unit;
    }
    bool week = false;
    int unit = fhirpath__calendar_unit(q->unit, q->unit_len, &week);
    static const char *ucum[] = {"wk", "a", "mo", "d", "h", "min", "s", "ms"};
    const char *u = week ? "wk" : unit >= 0 ? ucum[unit] : "1";
    *out_len = strlen(u);
    return u;
}

static bool simple_unit(const char *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (u[i] == '.' || u[i] == '/')
            return false;
    return true;
}

bool fhirpath__quantity_mul(const fp_quantity_t *a, const fp_quantity_t *b, bool divide,
                            arena_t *arena, fp_quantity_t *out)
{
    size_t la, lb;
    const char *ua = ucum_of(a, &la), *ub = ucum_of(b, &lb);
    canon_t ca, cb;
    if (!ucum_canon(ua, la, &ca) || !ucum_canon(ub, lb, &cb) || ca.special || cb.special)
        return false;
    memset(out, 0, sizeof(*out));
    bool ok = divide ? fhirpath__decimal_div(a->value, b->value, FP_DIVISION_SCALE, &out->value)
                     : fhirpath__decimal_mul(a->value, b->value, &out->value);
    if (!ok)
        return false;
    bool a_one = la == 0 || (la == 1 && ua[0] == '1');
    bool b_one = lb == 0 || (lb == 1 && ub[0] == '1');
    buf_t unit = BUF_INIT;
    if (a_one && b_one) {
        buf_addch(&unit, '1');
    } else if (b_one) {
        buf_add(&unit, ua, la);
    } else if (a_one && !divide) {
        buf_add(&unit, ub, lb);
    } else {
        if (a_one)
            buf_addch(&unit, '1');
        else
            buf_add(&unit, ua, la);
        buf_addch(&unit, divide ? '/' : '.');
        bool wrap = !simple_unit(ub, lb);
        if (wrap)
            buf_addch(&unit, '(');
        buf_add(&unit, ub, lb);
        if (wrap)
            buf_addch(&unit, ')');
    }
    out->unit = arena_strndup(arena, unit.ptr, unit.len);
    out->unit_len = (uint32_t)unit.len;
    buf_release(&unit);
    return true;
}

void fhirpath__quantity_text(const fp_quantity_t *q, buf_t *out)
{
    fhirpath__decimal_text(q->value, out);
    buf_addstr(out, " '");
    buf_add(out, q->unit, q->unit_len);
    buf_addch(out, '\'');
}

/* ---- canonical forms for search ---------------------------------------------------------- */

static double decimal_double(fp_decimal_t d)
{
    buf_t text = BUF_INIT;
    fhirpath__decimal_text(d, &text);
    double v = strtod(text.ptr, NULL);
    buf_release(&text);
    return v;
}

bool fhirpath_ucum_canonical(const char *unit, double value, double *out_value, char *out_code,
                             size_t cap)
{
    static const char *const names[NDIM] = {"m", "g",  "s",   "rad",  "K",
                                            "C", "cd", "mol", "[IU]", "mo"};
    canon_t c;
    if (!unit || !ucum_canon(unit, strlen(unit), &c) || c.dim[DIM_CALMONTH])
        return false;
    size_t len = 0;
    out_code[0] = '\0';
    for (int i = 0; i < NDIM && !c.special; i++) {
        if (!c.dim[i])
            continue;
        int n =
            c.dim[i] == 1
                ? snprintf(out_code + len, cap - len, "%s%s", len ? "." : "", names[i])
                : snprintf(out_code + len, cap - len, "%s%s%d", len ? "." : "", names[i], c.dim[i]);
        if (n < 0 || (size_t)n >= cap - len)
            return false;
        len += (size_t)n;
    }
    if (c.special || !len) {
        const char *code = c.special ? "K" : "1";
        if (strlen(code) >= cap)
            return false;
        strcpy(out_code, code);
    }
    if (c.special == 1) {
        *out_value = value + 273.15;
        return true;
    }
    if (c.special == 2) {
        *out_value = (value + 459.67) * 5.0 / 9.0;
        return true;
    }
    /* exact decimals when the value allows, so 5 mg and 0.005 g give the same double */
    double approximate =
        value * fhirpath__decimal_to_double(c.num) / fhirpath__decimal_to_double(c.den);
    fp_decimal_t v, num, q;
    if (isfinite(value) && fabs(approximate) >= 1e-6 && fhirpath__decimal_from_double(value, &v) &&
        fhirpath__decimal_mul(v, c.num, &num) && fhirpath__decimal_div(num, c.den, 20, &q)) {
        *out_value = decimal_double(fhirpath__decimal_trim(q, 0));
        return true;
    }
    *out_value = approximate;
    return true;
}
