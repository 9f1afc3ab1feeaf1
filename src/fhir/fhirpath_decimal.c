/*
 * fhirpath_decimal.c - exact decimal arithmetic for FHIRPath: a 128-bit coefficient and a
 * decimal scale, so 0.1 + 0.2 is 0.3 and "1.50" keeps its two places.
 *
 * Invariants: |coef| < 10^38 and 0 <= scale <= FP_DECIMAL_MAX_SCALE; every operation that
 * could leave that range reports overflow instead of wrapping. Only the transcendental
 * functions (exp, ln, log, power with a fractional exponent, sqrt) go through double.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/fhirpath_int.h"

typedef __int128 i128;

/* 10^38, the bound of a coefficient */
static i128 limit_(void)
{
    return (i128)10000000000000000000ULL * (i128)10000000000000000000ULL;
}

/* 10^n, saturated at 10^38 (which no coefficient reaches, so a product with it overflows) */
static i128 pow10_(int n)
{
    if (n >= 38)
        return limit_();
    i128 p = 1;
    while (n-- > 0)
        p *= 10;
    return p;
}

static i128 abs_(i128 v)
{
    return v < 0 ? -v : v;
}

static bool in_range(i128 v)
{
    return abs_(v) < limit_();
}

/* a * b without overflow past the limit */
static bool mul_checked(i128 a, i128 b, i128 *out)
{
    if (a == 0 || b == 0) {
        *out = 0;
        return true;
    }
    if (abs_(a) > (limit_() - 1) / abs_(b))
        return false;
    *out = a * b;
    return true;
}

/* Brings a value to a larger scale; false on overflow. */
static bool upscale(i128 coef, int from, int to, i128 *out)
{
    if (to > FP_DECIMAL_MAX_SCALE)
        return false;
    return mul_checked(coef, pow10_(to - from), out);
}

/* Divides by 10^n rounding half away from zero. */
static i128 downscale_round(i128 coef, int n)
{
    if (n <= 0)
        return coef;
    if (n > 38)
        return 0;
    i128 p = pow10_(n);
    i128 q = coef / p, r = coef % p;
    if (abs_(r) * 2 >= p)
        q += coef < 0 ? -1 : 1;
    return q;
}

fp_decimal_t fhirpath__decimal_from_int(int64_t value)
{
    fp_decimal_t d = {value, 0};
    return d;
}

bool fhirpath__decimal_parse(const char *text, size_t len, fp_decimal_t *out)
{
    size_t i = 0;
    bool negative = false;
    if (i < len && (text[i] == '+' || text[i] == '-'))
        negative = text[i++] == '-';
    i128 coef = 0;
    int scale = 0, digits = 0;
    bool point = false;
    for (; i < len; i++) {
        char c = text[i];
        if (c >= '0' && c <= '9') {
            if (coef || c != '0')
                digits++;
            if (digits > 38)
                return false;
            coef = coef * 10 + (c - '0');
            if (point)
                scale++;
        } else if (c == '.' && !point && i > 0 && text[i - 1] >= '0' && text[i - 1] <= '9' &&
                   i + 1 < len && text[i + 1] >= '0' && text[i + 1] <= '9') {
            point = true;
        } else {
            break;
        }
    }
    if (i == 0 || !(text[i - 1] >= '0' && text[i - 1] <= '9'))
        return false;
    if (i < len && (text[i] == 'e' || text[i] == 'E')) {
        i++;
        bool exp_negative = false;
        if (i < len && (text[i] == '+' || text[i] == '-'))
            exp_negative = text[i++] == '-';
        if (i >= len)
            return false;
        int exponent = 0;
        for (; i < len && text[i] >= '0' && text[i] <= '9'; i++) {
            exponent = exponent * 10 + (text[i] - '0');
            if (exponent > 100)
                return false;
        }
        if (exp_negative) {
            scale += exponent;
        } else {
            while (exponent > 0 && scale > 0) {
                scale--;
                exponent--;
            }
            if (exponent > 0 && !mul_checked(coef, pow10_(exponent > 38 ? 39 : exponent), &coef))
                return false;
        }
    }
    if (i != len)
        return false;
    if (scale > FP_DECIMAL_MAX_SCALE) {
        coef = downscale_round(coef, scale - FP_DECIMAL_MAX_SCALE);
        scale = FP_DECIMAL_MAX_SCALE;
    }
    if (!in_range(coef))
        return false;
    out->coef = negative ? -coef : coef;
    out->scale = scale;
    return true;
}

void fhirpath__decimal_text(fp_decimal_t value, buf_t *out)
{
    char digits[64];
    int n = 0;
    i128 v = abs_(value.coef);
    do {
        digits[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v);
    while (n <= value.scale)
        digits[n++] = '0';
    if (value.coef < 0)
        buf_addch(out, '-');
    for (int i = n - 1; i >= 0; i--) {
        buf_addch(out, digits[i]);
        if (i == value.scale && i > 0)
            buf_addch(out, '.');
    }
}

static bool align(fp_decimal_t *a, fp_decimal_t *b)
{
    if (a->scale == b->scale)
        return true;
    fp_decimal_t *lo = a->scale < b->scale ? a : b, *hi = lo == a ? b : a;
    if (!upscale(lo->coef, lo->scale, hi->scale, &lo->coef))
        return false;
    lo->scale = hi->scale;
    return true;
}

bool fhirpath__decimal_add(fp_decimal_t a, fp_decimal_t b, fp_decimal_t *out)
{
    if (!align(&a, &b))
        return false;
    i128 sum = a.coef + b.coef;
    if (!in_range(sum))
        return false;
    out->coef = sum;
    out->scale = a.scale;
    return true;
}

bool fhirpath__decimal_sub(fp_decimal_t a, fp_decimal_t b, fp_decimal_t *out)
{
    return fhirpath__decimal_add(a, fhirpath__decimal_neg(b), out);
}

bool fhirpath__decimal_mul(fp_decimal_t a, fp_decimal_t b, fp_decimal_t *out)
{
    i128 product;
    int scale = a.scale + b.scale;
    /* drop trailing zeros first so exact products fit more often */
    a = fhirpath__decimal_trim(a, 0);
    b = fhirpath__decimal_trim(b, 0);
    int trimmed = a.scale + b.scale;
    if (!mul_checked(a.coef, b.coef, &product))
        return false;
    while (trimmed > FP_DECIMAL_MAX_SCALE) {
        product = downscale_round(product, 1);
        trimmed--;
    }
    /* restore the scale the operands imply when it fits */
    fp_decimal_t r = {product, trimmed};
    if (scale > FP_DECIMAL_MAX_SCALE)
        scale = FP_DECIMAL_MAX_SCALE;
    if (scale > trimmed && upscale(product, trimmed, scale, &product)) {
        r.coef = product;
        r.scale = scale;
    }
    *out = r;
    return true;
}

bool fhirpath__decimal_div(fp_decimal_t a, fp_decimal_t b, int scale, fp_decimal_t *out)
{
    if (b.coef == 0)
        return false;
    int keep = a.scale > b.scale ? a.scale : b.scale;
    if (scale < keep)
        scale = keep;
    if (scale > FP_DECIMAL_MAX_SCALE)
        scale = FP_DECIMAL_MAX_SCALE;
    /* a/b = (a.coef * 10^(scale + 1 + b.scale - a.scale)) / b.coef / 10^(scale + 1) */
    for (int s = scale; s >= 0; s--) {
        int shift = s + 1 + b.scale - a.scale;
        i128 numerator = a.coef, denominator = b.coef;
        if (shift >= 0) {
            if (!mul_checked(numerator, pow10_(shift), &numerator))
                continue; /* try fewer places */
        } else if (!mul_checked(denominator, pow10_(-shift), &denominator)) {
            return false;
        }
        i128 q = numerator / denominator;
        q = downscale_round(q, 1);
        if (!in_range(q))
            return false;
        fp_decimal_t r = {q, s};
        *out = fhirpath__decimal_trim(r, keep < s ? keep : s);
        return true;
    }
    return false;
}

bool fhirpath__decimal_divint(fp_decimal_t a, fp_decimal_t b, fp_decimal_t *out)
{
    if (b.coef == 0 || !align(&a, &b))
        return false;
    out->coef = a.coef / b.coef;
    out->scale = 0;
    return true;
}

bool fhirpath__decimal_mod(fp_decimal_t a, fp_decimal_t b, fp_decimal_t *out)
{
    if (b.coef == 0 || !align(&a, &b))
        return false;
    out->coef = a.coef % b.coef;
    out->scale = a.scale;
    return true;
}

int fhirpath__decimal_sign(fp_decimal_t a)
{
    return a.coef < 0 ? -1 : a.coef > 0;
}

fp_decimal_t fhirpath__decimal_neg(fp_decimal_t a)
{
    a.coef = -a.coef;
    return a;
}

int fhirpath__decimal_cmp(fp_decimal_t a, fp_decimal_t b)
{
    int sa = fhirpath__decimal_sign(a), sb = fhirpath__decimal_sign(b);
    if (sa != sb)
        return sa < sb ? -1 : 1;
    a = fhirpath__decimal_trim(a, 0);
    b = fhirpath__decimal_trim(b, 0);
    fp_decimal_t x = a, y = b;
    if (align(&x, &y))
        return x.coef < y.coef ? -1 : x.coef > y.coef;
    /* the integer parts decide when alignment does not fit */
    i128 ia = a.coef / pow10_(a.scale), ib = b.coef / pow10_(b.scale);
    if (ia != ib)
        return ia < ib ? -1 : 1;
    double da = fhirpath__decimal_to_double(a), db = fhirpath__decimal_to_double(b);
    return da < db ? -1 : da > db;
}

fp_decimal_t fhirpath__decimal_round(fp_decimal_t a, int digits)
{
    if (digits < 0)
        digits = 0;
    if (a.scale <= digits)
        return a;
    a.coef = downscale_round(a.coef, a.scale - digits);
    a.scale = digits;
    return a;
}

fp_decimal_t fhirpath__decimal_trunc(fp_decimal_t a)
{
    a.coef /= pow10_(a.scale);
    a.scale = 0;
    return a;
}

fp_decimal_t fhirpath__decimal_floor(fp_decimal_t a)
{
    i128 p = pow10_(a.scale);
    i128 q = a.coef / p;
    if (a.coef % p != 0 && a.coef < 0)
        q--;
    fp_decimal_t r = {q, 0};
    return r;
}

fp_decimal_t fhirpath__decimal_ceil(fp_decimal_t a)
{
    i128 p = pow10_(a.scale);
    i128 q = a.coef / p;
    if (a.coef % p != 0 && a.coef > 0)
        q++;
    fp_decimal_t r = {q, 0};
    return r;
}

fp_decimal_t fhirpath__decimal_trim(fp_decimal_t a, int min_scale)
{
    while (a.scale > min_scale && a.coef % 10 == 0) {
        a.coef /= 10;
        a.scale--;
    }
    return a;
}

bool fhirpath__decimal_rescale(fp_decimal_t a, int scale, fp_decimal_t *out)
{
    if (scale >= a.scale) {
        if (!upscale(a.coef, a.scale, scale, &a.coef))
            return false;
        a.scale = scale;
        *out = a;
        return true;
    }
    fp_decimal_t t = fhirpath__decimal_trim(a, scale);
    if (t.scale != scale)
        return false;
    *out = t;
    return true;
}

bool fhirpath__decimal_to_int64(fp_decimal_t a, int64_t *out)
{
    fp_decimal_t t = fhirpath__decimal_trim(a, 0);
    if (t.scale != 0 || t.coef > INT64_MAX || t.coef < INT64_MIN)
        return false;
    *out = (int64_t)t.coef;
    return true;
}

double fhirpath__decimal_to_double(fp_decimal_t a)
{
    buf_t b = BUF_INIT;
    fhirpath__decimal_text(a, &b);
    double d = strtod(b.ptr, NULL);
    buf_release(&b);
    return d;
}

bool fhirpath__decimal_from_double(double value, fp_decimal_t *out)
{
    if (!isfinite(value) || fabs(value) >= 1e30)
        return false;
    char text[64];
    snprintf(text, sizeof(text), "%.14e", value);
    fp_decimal_t d;
    if (!fhirpath__decimal_parse(text, strlen(text), &d))
        return false;
    *out = fhirpath__decimal_trim(d, 0);
    return true;
}
