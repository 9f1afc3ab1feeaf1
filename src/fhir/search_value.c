/*
 * search_value.c - the values of search parameters that need arithmetic: dates into
 * microsecond ranges, decimals into the exact range of their precision, and the normalized
 * form of strings.
 *
 * Numbers are kept as decimal digits and an exponent, never through a double, so that the
 * bounds of "100.00" are exactly 99.995 and 100.005; doubles are derived from that text at the
 * end. Dates are proleptic Gregorian, years 0001 to 9999; a value without a zone is UTC.
 */
#include "fhir/search_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- dates -------------------------------------------------------------------------------- */

#define US_PER_SECOND INT64_C(1000000)
#define US_PER_DAY    (INT64_C(86400) * US_PER_SECOND)

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int64_t fhir__search_epoch_us(int year, int month, int day, int hour, int minute, int second)
{
    return days_from_civil(year, month, day) * US_PER_DAY +
           ((int64_t)hour * 3600 + minute * 60 + second) * US_PER_SECOND;
}

static bool leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap_year(y) ? 29 : days[m - 1];
}

/* Reads exactly n digits at s[*i]; -1 when they are not there. */
static int digits(const char *s, size_t len, size_t *i, int n)
{
    int v = 0;
    for (int k = 0; k < n; k++, (*i)++) {
        if (*i >= len || s[*i] < '0' || s[*i] > '9')
            return -1;
        v = v * 10 + (s[*i] - '0');
    }
    return v;
}

fhir__reason_t fhir__search_parse_date(const char *s, size_t len, fhir_search_value_t *out)
{
    static const char *const invalid = "is not a valid date";
    size_t i = 0;
    int year = digits(s, len, &i, 4), month = 1, day = 1, hour = 0, minute = 0, second = 0;
    int64_t fraction_us = 0, unit_us = 0;
    fhir_search_precision_t precision = FHIR_SEARCH_PRECISION_YEAR;
    if (year < 1)
        return invalid;
    if (i < len && s[i] == '-') {
        i++;
        month = digits(s, len, &i, 2);
        if (month < 1 || month > 12)
            return invalid;
        precision = FHIR_SEARCH_PRECISION_MONTH;
        if (i < len && s[i] == '-') {
            i++;
            day = digits(s, len, &i, 2);
            if (day < 1 || day > days_in_month(year, month))
                return invalid;
            precision = FHIR_SEARCH_PRECISION_DAY;
        }
    }
    bool zone = false;
    int64_t offset_us = 0;
    if (i < len && s[i] == 'T') {
        if (precision != FHIR_SEARCH_PRECISION_DAY)
            return invalid;
        i++;
        hour = digits(s, len, &i, 2);
        if (hour < 0 || hour > 23 || i >= len || s[i] != ':')
            return invalid;
        i++;
        minute = digits(s, len, &i, 2);
        if (minute < 0 || minute > 59)
            return invalid;
        precision = FHIR_SEARCH_PRECISION_MINUTE;
        if (i < len && s[i] == ':') {
            i++;
            second = digits(s, len, &i, 2);
            if (second < 0 || second > 60)
                return invalid;
            /* a leap second (R4 allows :60): the epoch counts none, so it is read as the
             * last second of its minute and stays in its minute, day and year */
            if (second == 60)
                second = 59;
            precision = FHIR_SEARCH_PRECISION_SECOND;
            if (i < len && s[i] == '.') {
                i++;
                size_t start = i;
                int64_t scale = 100000;
                while (i < len && s[i] >= '0' && s[i] <= '9') {
                    if (scale > 0) {
                        fraction_us += (s[i] - '0') * scale;
                        unit_us = scale;
                        scale /= 10;
                    }
                    i++;
                }
                if (i == start)
                    return invalid;
                precision = FHIR_SEARCH_PRECISION_FRACTION;
            }
        }
        /* '+' arrives as a space when a client forgets to encode it in a query string */
        if (i < len && s[i] == 'Z') {
            zone = true;
            i++;
        } else if (i < len && (s[i] == '+' || s[i] == '-' || s[i] == ' ')) {
            int sign = s[i] == '-' ? -1 : 1;
            i++;
            int oh = digits(s, len, &i, 2);
            if (oh < 0 || i >= len || s[i] != ':')
                return invalid;
            i++;
            int om = digits(s, len, &i, 2);
            if (om < 0 || om > 59 || oh > 14 || (oh == 14 && om > 0))
                return invalid;
            zone = true;
            offset_us = sign * ((int64_t)oh * 3600 + om * 60) * US_PER_SECOND;
        }
    }
    if (i != len)
        return invalid;

    int64_t low =
        fhir__search_epoch_us(year, month, day, hour, minute, second) + fraction_us - offset_us;
    int64_t high;
    switch (precision) {
    case FHIR_SEARCH_PRECISION_YEAR: high = fhir__search_epoch_us(year + 1, 1, 1, 0, 0, 0); break;
    case FHIR_SEARCH_PRECISION_MONTH:
        high = month == 12 ? fhir__search_epoch_us(year + 1, 1, 1, 0, 0, 0)
                           : fhir__search_epoch_us(year, month + 1, 1, 0, 0, 0);
        break;
    case FHIR_SEARCH_PRECISION_DAY: high = low + US_PER_DAY; break;
    case FHIR_SEARCH_PRECISION_MINUTE: high = low + 60 * US_PER_SECOND; break;
    case FHIR_SEARCH_PRECISION_SECOND: high = low + US_PER_SECOND; break;
    default: high = low + unit_us; break;
    }
    out->as.date.low = low;
    out->as.date.high = high;
    out->as.date.precision = precision;
    out->as.date.utc_assumed = !zone;
    return NULL;
}

bool fhir_date_range(const char *s, size_t len, int64_t *low, int64_t *high,
                     fhir_search_precision_t *precision, bool *zoned)
{
    fhir_search_value_t v;
    if (fhir__search_parse_date(s, len, &v))
        return false;
    *low = v.as.date.low;
    *high = v.as.date.high;
    if (precision)
        *precision = v.as.date.precision;
    if (zoned)
        *zoned = v.as.date.precision >= FHIR_SEARCH_PRECISION_MINUTE && !v.as.date.utc_assumed;
    return true;
}

void fhir__search_date_approximate(fhir_search_value_t *value, int64_t now_us)
{
    int64_t low = value->as.date.low;
    int64_t gap = now_us > low ? now_us - low : low - now_us;
    value->as.date.low -= gap / 10;
    value->as.date.high += gap / 10;
}

/* --- numbers ------------------------------------------------------------------------------ */

#define NUMBER_MAX_TEXT     64
#define NUMBER_MAX_EXPONENT 400

/* An integer of arbitrary size: decimal digits, most significant first, no leading zeros
 * ("0" for zero), and a sign. */
typedef struct {
    bool negative;
    char *digits;
    size_t len;
} bigint_t;

static int magnitude_compare(const bigint_t *a, const bigint_t *b)
{
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return memcmp(a->digits, b->digits, a->len);
}

static void strip_zeros(bigint_t *v)
{
    size_t z = 0;
    while (z + 1 < v->len && v->digits[z] == '0')
        z++;
    v->digits += z;
    v->len -= z;
    if (v->len == 1 && v->digits[0] == '0')
        v->negative = false;
}

/* a + b, allocated from arena. */
static bigint_t bigint_add(arena_t *arena, const bigint_t *a, const bigint_t *b)
{
    size_t n = (a->len > b->len ? a->len : b->len) + 1;
    bigint_t r = {false, arena_alloc(arena, n + 1), n};
    r.digits[n] = '\0';
    if (a->negative == b->negative) {
        int carry = 0;
        for (size_t k = 0; k < n; k++) {
            int x = k < a->len ? a->digits[a->len - 1 - k] - '0' : 0;
            int y = k < b->len ? b->digits[b->len - 1 - k] - '0' : 0;
            int sum = x + y + carry;
            r.digits[n - 1 - k] = (char)('0' + sum % 10);
            carry = sum / 10;
        }
        r.negative = a->negative;
    } else {
        const bigint_t *big = a, *small = b;
        if (magnitude_compare(a, b) < 0) {
            big = b;
            small = a;
        }
        int borrow = 0;
        for (size_t k = 0; k < n; k++) {
            int x = k < big->len ? big->digits[big->len - 1 - k] - '0' : 0;
            int y = k < small->len ? small->digits[small->len - 1 - k] - '0' : 0;
            int diff = x - y - borrow;
            borrow = diff < 0;
            r.digits[n - 1 - k] = (char)('0' + (diff + 10) % 10);
        }
        r.negative = big->negative;
    }
    strip_zeros(&r);
    return r;
}

/* The text of v x 10^exponent. */
static const char *bigint_text(arena_t *arena, const bigint_t *v, int exponent)
{
    buf_t b = BUF_INIT;
    if (v->negative)
        buf_addch(&b, '-');
    if (exponent >= 0) {
        buf_add(&b, v->digits, v->len);
        if (!(v->len == 1 && v->digits[0] == '0')) {
            for (int k = 0; k < exponent; k++)
                buf_addch(&b, '0');
        }
    } else {
        size_t frac = (size_t)-exponent;
        if (v->len > frac) {
            buf_add(&b, v->digits, v->len - frac);
            buf_addch(&b, '.');
            buf_add(&b, v->digits + v->len - frac, frac);
        } else {
            buf_addstr(&b, "0.");
            for (size_t k = v->len; k < frac; k++)
                buf_addch(&b, '0');
            buf_add(&b, v->digits, v->len);
        }
        /* the same number without trailing zeros: 2.20 is 2.2 */
        while (b.ptr[b.len - 1] == '0')
            buf_setlen(&b, b.len - 1);
        if (b.ptr[b.len - 1] == '.')
            buf_setlen(&b, b.len - 1);
    }
    const char *text = arena_strndup(arena, b.ptr, b.len);
    buf_release(&b);
    return text;
}

fhir__reason_t fhir__search_parse_number(arena_t *arena, const char *s, size_t len,
                                         bool approximate, fhir_search_number_t *out)
{
    static const char *const invalid = "is not a valid number";
    if (len == 0 || len > NUMBER_MAX_TEXT)
        return invalid;
    size_t i = 0;
    bool negative = false;
    if (s[i] == '-') {
        negative = true;
        i++;
    }
    char *digits_buf = arena_alloc(arena, len + 2);
    size_t ndigits = 0, nint = 0, nfrac = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        digits_buf[ndigits++] = s[i++];
        nint++;
    }
    if (nint == 0)
        return invalid;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            digits_buf[ndigits++] = s[i++];
            nfrac++;
        }
        if (nfrac == 0)
            return invalid;
    }
    long exponent = 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        int sign = 1;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            sign = s[i++] == '-' ? -1 : 1;
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (exponent < 100000)
                exponent = exponent * 10 + (s[i] - '0');
            i++;
        }
        if (i == start)
            return invalid;
        exponent *= sign;
    }
    if (i != len)
        return invalid;
    /* the value is digits x 10^unit; the precision is one unit of the last digit given */
    long unit = exponent - (long)nfrac;
    if (unit > NUMBER_MAX_EXPONENT || unit < -NUMBER_MAX_EXPONENT)
        return "is out of range";

    /* scaled: the value in tenths of a unit, so that half a unit is the integer 5 */
    digits_buf[ndigits++] = '0';
    digits_buf[ndigits] = '\0';
    bigint_t scaled = {negative, digits_buf, ndigits};
    strip_zeros(&scaled);
    bigint_t half = {false, "5", 1};
    bigint_t minus_half = {true, "5", 1};
    bigint_t low = bigint_add(arena, &scaled, &minus_half);
    bigint_t high = bigint_add(arena, &scaled, &half);
    if (approximate) {
        /* 10% of |value| is the value's digits in tenths of a unit */
        bigint_t tenth = {false, digits_buf, ndigits - 1};
        strip_zeros(&tenth);
        bigint_t minus_tenth = tenth;
        minus_tenth.negative = !(tenth.len == 1 && tenth.digits[0] == '0');
        low = bigint_add(arena, &low, &minus_tenth);
        high = bigint_add(arena, &high, &tenth);
    }
    out->text = arena_strndup(arena, s, len);
    out->low = bigint_text(arena, &low, (int)unit - 1);
    out->high = bigint_text(arena, &high, (int)unit - 1);
    out->value = strtod(out->text, NULL);
    out->low_value = strtod(out->low, NULL);
    out->high_value = strtod(out->high, NULL);
    if (!isfinite(out->value) || !isfinite(out->low_value) || !isfinite(out->high_value))
        return "is out of range";
    return NULL;
}

/* --- strings ------------------------------------------------------------------------------ */

/* U+00C0 to U+017F: the lower-case base letters, "" to keep the character as it is. */
/* clang-format off */
static const char *const latin[192] = {
    /* C0 */ "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    /* D0 */ "d", "n", "o", "o", "o", "o", "o", "", "o", "u", "u", "u", "u", "y", "th", "ss",
    /* E0 */ "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    /* F0 */ "d", "n", "o", "o", "o", "o", "o", "", "o", "u", "u", "u", "u", "y", "th", "y",
    /* 100 */ "a", "a", "a", "a", "a", "a", "c", "c", "c", "c", "c", "c", "c", "c", "d", "d",
    /* 110 */ "d", "d", "e", "e", "e", "e", "e", "e", "e", "e", "e", "e", "g", "g", "g", "g",
    /* 120 */ "g", "g", "g", "g", "h", "h", "h", "h", "i", "i", "i", "i", "i", "i", "i", "i",
    /* 130 */ "i", "i", "ij", "ij", "j", "j", "k", "k", "k", "l", "l", "l", "l", "l", "l", "l",
    /* 140 */ "l", "l", "l", "n", "n", "n", "n", "n", "n", "n", "n", "n", "o", "o", "o", "o",
    /* 150 */ "o", "o", "oe", "oe", "r", "r", "r", "r", "r", "r", "s", "s", "s", "s", "s", "s",
    /* 160 */ "s", "s", "t", "t", "t", "t", "t", "t", "u", "u", "u", "u", "u", "u", "u", "u",
    /* 170 */ "u", "u", "u", "u", "w", "w", "y", "y", "y", "z", "z", "z", "z", "z", "z", "s",
};
/* clang-format on */

/* Greek with tonos or dialytika to the plain lower-case letter; 0 when not in the table. */
static uint32_t greek_plain(uint32_t c)
{
    switch (c) {
    case 0x386:
    case 0x3AC: return 0x3B1; /* alpha */
    case 0x388:
    case 0x3AD: return 0x3B5; /* epsilon */
    case 0x389:
    case 0x3AE: return 0x3B7; /* eta */
    case 0x38A:
    case 0x3AF:
    case 0x3AA:
    case 0x3CA:
    case 0x390: return 0x3B9; /* iota */
    case 0x38C:
    case 0x3CC: return 0x3BF; /* omicron */
    case 0x38E:
    case 0x3CD:
    case 0x3AB:
    case 0x3CB:
    case 0x3B0: return 0x3C5; /* upsilon */
    case 0x38F:
    case 0x3CE: return 0x3C9; /* omega */
    case 0x3C2: return 0x3C3; /* final sigma */
    default: return 0;
    }
}

static void add_utf8(buf_t *out, uint32_t c)
{
    char b[4];
    if (c < 0x80) {
        buf_addch(out, (char)c);
    } else if (c < 0x800) {
        b[0] = (char)(0xC0 | (c >> 6));
        b[1] = (char)(0x80 | (c & 0x3F));
        buf_add(out, b, 2);
    } else if (c < 0x10000) {
        b[0] = (char)(0xE0 | (c >> 12));
        b[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        b[2] = (char)(0x80 | (c & 0x3F));
        buf_add(out, b, 3);
    } else {
        b[0] = (char)(0xF0 | (c >> 18));
        b[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((c >> 6) & 0x3F));
        b[3] = (char)(0x80 | (c & 0x3F));
        buf_add(out, b, 4);
    }
}

void fhir_search_normalize(const char *s, size_t len, buf_t *out)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        uint32_t c = *p;
        size_t n = 1;
        if (c >= 0xF0 && end - p >= 4) {
            c = ((c & 0x07) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) |
                (p[3] & 0x3Fu);
            n = 4;
        } else if (c >= 0xE0 && end - p >= 3) {
            c = ((c & 0x0F) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
            n = 3;
        } else if (c >= 0xC0 && end - p >= 2) {
            c = ((c & 0x1F) << 6) | (p[1] & 0x3Fu);
            n = 2;
        }
        p += n;
        if (c < 0x80) {
            buf_addch(out, (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
        } else if (c >= 0xC0 && c <= 0x17F) {
            const char *plain = latin[c - 0xC0];
            if (*plain)
                buf_addstr(out, plain);
            else
                add_utf8(out, c);
        } else if (c >= 0x300 && c <= 0x36F) {
            /* combining marks: the accents of decomposed text */
        } else if (greek_plain(c)) {
            add_utf8(out, greek_plain(c));
        } else if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) {
            add_utf8(out, c + 0x20); /* Greek capitals */
        } else if (c == 0x401 || c == 0x451) {
            add_utf8(out, 0x435); /* yo -> ye */
        } else if (c >= 0x400 && c <= 0x40F) {
            add_utf8(out, c + 0x50);
        } else if (c >= 0x410 && c <= 0x42F) {
            add_utf8(out, c + 0x20); /* Cyrillic capitals */
        } else {
            add_utf8(out, c);
        }
    }
}
