/*
 * fhirpath_regex.c - regular expressions for matches() and replaceMatches() over POSIX
 * <regex.h> (extended syntax). The PCRE-style escapes that FHIR expressions use (\d \w \s
 * and their negations, inside and outside brackets) and non-capturing groups are rewritten
 * into their POSIX forms before compiling; everything else is passed through.
 */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "fhir/fhirpath_int.h"

struct fp_regex {
    regex_t re;
};

static void translate(const char *p, size_t n, buf_t *out)
{
    bool in_bracket = false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char e = p[++i];
            const char *inside = NULL, *outside = NULL;
            switch (e) {
            case 'd': inside = "0-9"; outside = "[0-9]"; break;
            case 'D': outside = "[^0-9]"; break;
            case 'w': inside = "A-Za-z0-9_"; outside = "[A-Za-z0-9_]"; break;
            case 'W': outside = "[^A-Za-z0-9_]"; break;
            case 's': inside = "[:space:]"; outside = "[[:space:]]"; break;
            case 'S': outside = "[^[:space:]]"; break;
            case 'n': buf_addch(out, '\n'); continue;
            case 't': buf_addch(out, '\t'); continue;
            case 'r': buf_addch(out, '\r'); continue;
            default: break;
            }
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
        if (!in_bracket && c == '[') {
            in_bracket = true;
            buf_addch(out, c);
            if (i + 1 < n && p[i + 1] == '^')
                buf_addch(out, p[++i]);
            if (i + 1 < n && p[i + 1] == ']')
                buf_addch(out, p[++i]);
            continue;
        }
        if (in_bracket && c == '[' && i + 1 < n && p[i + 1] == ':') {
            const char *close = strstr(p + i, ":]");
            if (close && close < p + n) {
                buf_add(out, p + i, (size_t)(close + 2 - (p + i)));
                i = (size_t)(close + 1 - p);
                continue;
            }
        }
        if (in_bracket && c == ']') {
            in_bracket = false;
            buf_addch(out, c);
            continue;
        }
        if (!in_bracket && c == '(' && i + 2 < n && p[i + 1] == '?' && p[i + 2] == ':') {
            buf_addch(out, '(');
            i += 2;
            continue;
        }
        buf_addch(out, c);
    }
}

fp_regex_t *fhirpath__regex_compile(const char *pattern, size_t len, arena_t *arena,
                                    const char **out_error)
{
    buf_t b = BUF_INIT;
    translate(pattern, len, &b);
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
