/*
 * fhirpath_regex.c - regular expressions for matches() and replaceMatches() over POSIX
 * <regex.h> (extended syntax). The PCRE-style escapes that FHIR expressions use (\d \w \s
 * and their negations, inside and outside brackets) and non-capturing groups are rewritten
 * into their POSIX forms before compiling; everything else is passed through. What glibc
 * would run in exponential time or memory (stacked quantifiers, back-references, nested
 * repeat counts that multiply past 1000) is refused with an error, since patterns may come
 * from stored rules.
 */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "fhir/fhirpath_int.h"

struct fp_regex {
    regex_t re;
};

#define MAX_PATTERN   1024
#define MAX_EXPANSION 1000
#define MAX_GROUPS    32

/* glibc copies a bounded repeat's operand count times, so nested bounds multiply: the
 * product along any nesting ("expansion") is capped. */
typedef struct {
    long inner[MAX_GROUPS + 1]; /* largest expansion inside each open group */
    int depth;
    long pending; /* expansion of the last complete atom, not yet folded in */
} expansion_t;

static void fold(expansion_t *x)
{
    if (x->pending > x->inner[x->depth])
        x->inner[x->depth] = x->pending;
    x->pending = 0;
}

/*
 * Translates a PCRE-style bracket expression starting after its '[' at p[*i] into a POSIX
 * one. PCRE escapes inside (\] \- \\ \d \w \s) have no POSIX spelling, so the set is
 * rebuilt: ']' first, then ranges and classes, then other characters, '^' not first and
 * '-' last, as POSIX wants. Leaves *i on the closing ']'.
 */
static const char *translate_bracket(const char *p, size_t n, size_t *i, buf_t *out)
{
    buf_t items = BUF_INIT;
    bool negated = false, close = false, dash = false, caret = false;
    size_t k = *i;
    if (k < n && p[k] == '^') {
        negated = true;
        k++;
    }
    bool first = true;
    const char *error = NULL;
    for (; k < n; k++, first = false) {
        char c = p[k];
        if (c == ']' && !first)
            break;
        if (c == '[' && k + 1 < n && (p[k + 1] == ':' || p[k + 1] == '.' || p[k + 1] == '=')) {
            char kind = p[k + 1];
            size_t j = k + 2;
            while (j + 1 < n && !(p[j] == kind && p[j + 1] == ']'))
                j++;
            if (j + 1 >= n) {
                error = "unterminated character class";
                break;
            }
            buf_add(&items, p + k, j + 2 - k);
            k = j + 1;
            continue;
        }
        if (c == '\\' && k + 1 < n) {
            char e = p[++k];
            switch (e) {
            case 'd': buf_addstr(&items, "0-9"); continue;
            case 'w': buf_addstr(&items, "A-Za-z0-9_"); continue;
            case 's': buf_addstr(&items, "[:space:]"); continue;
            case 'D':
            case 'W':
            case 'S': error = "\\D, \\W and \\S inside brackets are not supported"; break;
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            default: c = e; break;
            }
            if (error)
                break;
        }
        /* a range c-d (d may be escaped); a '-' at either end is a literal */
        if (k + 2 < n && p[k + 1] == '-' && p[k + 2] != ']') {
            char d = p[k + 2];
            size_t used = 2;
            if (d == '\\' && k + 3 < n) {
                d = p[k + 3];
                used = 3;
            }
            if ((unsigned char)d < (unsigned char)c) {
                error = "a range ends before it starts";
                break;
            }
            buf_addch(&items, c);
            buf_addch(&items, '-');
            buf_addch(&items, d);
            k += used;
            continue;
        }
        if (c == ']')
            close = true;
        else if (c == '-')
            dash = true;
        else if (c == '^')
            caret = true;
        else
            buf_addch(&items, c);
    }
    if (!error && k >= n)
        error = "unterminated character class";
    if (!error) {
        if (!negated && caret && !close && items.len == 0 && !dash) {
            buf_addstr(out, "\\^"); /* only a caret: outside brackets it is one escaped */
        } else {
            buf_addch(out, '[');
            if (negated)
                buf_addch(out, '^');
            if (close)
                buf_addch(out, ']');
            buf_add(out, items.ptr, items.len);
            if (caret)
                buf_addch(out, '^');
            if (dash)
                buf_addch(out, '-');
            buf_addch(out, ']');
        }
        *i = k;
    }
    buf_release(&items);
    return error;
}

/* Rewrites pattern into POSIX ERE; returns an error text for what POSIX cannot take safely:
 * stacked quantifiers ("a++", undefined in ERE and exponential in glibc), back-references
 * and repeat counts whose nesting multiplies past MAX_EXPANSION. */
static const char *translate(const char *p, size_t n, buf_t *out)
{
    bool after_quantifier = false; /* the last thing written was a quantifier */
    expansion_t x = {{1}, 0, 0};
    if (n > MAX_PATTERN)
        return "pattern is too long";
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        bool quantifier = false;
        if (c == '\\' && i + 1 < n) {
            char e = p[++i];
            const char *posix = NULL;
            switch (e) {
            case 'd': posix = "[0-9]"; break;
            case 'D': posix = "[^0-9]"; break;
            case 'w': posix = "[A-Za-z0-9_]"; break;
            case 'W': posix = "[^A-Za-z0-9_]"; break;
            case 's': posix = "[[:space:]]"; break;
            case 'S': posix = "[^[:space:]]"; break;
            case 'n': posix = "\n"; break;
            case 't': posix = "\t"; break;
            case 'r': posix = "\r"; break;
            default: break;
            }
            if (e >= '1' && e <= '9')
                return "back-references are not supported";
            fold(&x);
            x.pending = 1;
            after_quantifier = false;
            if (posix) {
                buf_addstr(out, posix);
            } else {
                buf_addch(out, '\\');
                buf_addch(out, e);
            }
            continue;
        }
        if (c == '[') {
            fold(&x);
            x.pending = 1;
            i++;
            const char *error = translate_bracket(p, n, &i, out);
            if (error)
                return error;
            after_quantifier = false;
            continue;
        }
        if (c == '(') {
            fold(&x);
            if (x.depth == MAX_GROUPS)
                return "groups are nested too deeply";
            x.inner[++x.depth] = 1;
            buf_addch(out, '(');
            if (i + 2 < n && p[i + 1] == '?' && p[i + 2] == ':')
                i += 2;
            after_quantifier = false;
            continue;
        }
        if (c == ')' && x.depth > 0) {
            fold(&x);
            x.pending = x.inner[x.depth--];
            buf_addch(out, ')');
            after_quantifier = false;
            continue;
        }
        if (c == '|') {
            fold(&x);
            buf_addch(out, c);
            after_quantifier = false;
            continue;
        }
        if (c == '*' || c == '+' || c == '?') {
            if (after_quantifier) {
                if (c == '?')
                    continue; /* a lazy quantifier matches the same strings greedily */
                return "stacked quantifiers are not supported";
            }
            quantifier = true;
        } else if (c == '{') {
            size_t j = i + 1;
            long count = 0, largest = 0;
            bool digits = false;
            for (; j < n && (p[j] == ',' || (p[j] >= '0' && p[j] <= '9')); j++) {
                if (p[j] == ',') {
                    count = 0;
                    continue;
                }
                digits = true;
                count = count * 10 + (p[j] - '0');
                if (count > MAX_EXPANSION)
                    return "repeat counts above 1000 are not supported";
                if (count > largest)
                    largest = count;
            }
            if (digits && j < n && p[j] == '}') {
                if (after_quantifier)
                    return "stacked quantifiers are not supported";
                long operand = x.pending ? x.pending : 1;
                if (largest > 0 && operand * largest > MAX_EXPANSION)
                    return "nested repeat counts multiply past 1000";
                x.pending = operand * (largest > 0 ? largest : 1);
                buf_add(out, p + i, j + 1 - i);
                i = j;
                after_quantifier = true;
                continue;
            }
        }
        if (!quantifier) {
            fold(&x);
            x.pending = 1;
        }
        buf_addch(out, c);
        after_quantifier = quantifier;
    }
    return NULL;
}

fp_regex_t *fhirpath__regex_compile(const char *pattern, size_t len, arena_t *arena,
                                    const char **out_error)
{
    buf_t b = BUF_INIT;
    const char *unsupported = translate(pattern, len, &b);
    if (unsupported) {
        buf_release(&b);
        *out_error = unsupported;
        return NULL;
    }
    fp_regex_t *re = xmalloc(sizeof(*re));
    int rc = regcomp(&re->re, b.ptr, REG_EXTENDED);
    buf_release(&b);
    if (rc != 0) {
        char message[128];
        regerror(rc, &re->re, message, sizeof(message));
        *out_error = arena_strdup(arena, message);
        free(re);
        return NULL;
    }
    return re;
}

bool fhirpath__regex_search(fp_regex_t *re, const char *subject, size_t offset,
                            size_t group_start[10], size_t group_end[10], bool *group_set)
{
    regmatch_t m[10];
    int flags = offset > 0 ? REG_NOTBOL : 0;
    if (regexec(&re->re, subject + offset, 10, m, flags) != 0)
        return false;
    for (int i = 0; i < 10; i++) {
        group_set[i] = m[i].rm_so >= 0;
        group_start[i] = group_set[i] ? offset + (size_t)m[i].rm_so : 0;
        group_end[i] = group_set[i] ? offset + (size_t)m[i].rm_eo : 0;
    }
    return true;
}

void fhirpath__regex_free(fp_regex_t *re)
{
    if (!re)
        return;
    regfree(&re->re);
    free(re);
}
