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

/* Rewrites pattern into POSIX ERE; returns an error text for what POSIX cannot take safely:
 * stacked quantifiers ("a++", undefined in ERE and exponential in glibc), back-references
 * and repeat counts whose nesting multiplies past MAX_EXPANSION. */
static const char *translate(const char *p, size_t n, buf_t *out)
{
    bool in_bracket = false;
    bool after_quantifier = false; /* the last thing written was a quantifier */
    expansion_t x = {{1}, 0, 0};
    if (n > MAX_PATTERN)
        return "pattern is too long";
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        bool quantifier = false;
        if (c == '\\' && i + 1 < n) {
            char e = p[++i];
            const char *inside = NULL, *outside = NULL;
            switch (e) {
            case 'd':
                inside = "0-9";
                outside = "[0-9]";
                break;
            case 'D': outside = "[^0-9]"; break;
            case 'w':
                inside = "A-Za-z0-9_";
                outside = "[A-Za-z0-9_]";
                break;
            case 'W': outside = "[^A-Za-z0-9_]"; break;
            case 's':
                inside = "[:space:]";
                outside = "[[:space:]]";
                break;
            case 'S': outside = "[^[:space:]]"; break;
            default: break;
            }
            if (!in_bracket) {
                fold(&x);
                x.pending = 1;
                after_quantifier = false;
            }
            if (e == 'n' || e == 't' || e == 'r') {
                buf_addch(out, e == 'n' ? '\n' : e == 't' ? '\t' : '\r');
                continue;
            }
            if (!in_bracket && e >= '1' && e <= '9')
                return "back-references are not supported";
            if (in_bracket && inside) {
                buf_addstr(out, inside);
            } else if (!in_bracket && outside) {
                buf_addstr(out, outside);
            } else if (in_bracket) {
                /* POSIX brackets have no escapes: the character stands for itself */
                buf_addch(out, e);
            } else {
                buf_addch(out, '\\');
                buf_addch(out, e);
            }
            continue;
        }
        if (in_bracket) {
            if (c == '[' && i + 1 < n && (p[i + 1] == ':' || p[i + 1] == '.' || p[i + 1] == '=')) {
                char kind = p[i + 1];
                size_t j = i + 2;
                while (j + 1 < n && !(p[j] == kind && p[j + 1] == ']'))
                    j++;
                if (j + 1 < n) {
                    buf_add(out, p + i, j + 2 - i);
                    i = j + 1;
                    continue;
                }
            }
            if (c == ']')
                in_bracket = false;
            buf_addch(out, c);
            continue;
        }
        if (c == '[') {
            fold(&x);
            x.pending = 1;
            in_bracket = true;
            buf_addch(out, c);
            if (i + 1 < n && p[i + 1] == '^')
                buf_addch(out, p[++i]);
            if (i + 1 < n && p[i + 1] == ']')
                buf_addch(out, p[++i]);
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
