/*
 * author.c - the version-author extension (author.h).
 */
#include "repo/author.h"

#include <string.h>

#include "base/buf.h"

static const char *reference_of(const repo_caller_t *caller, arena_t *arena)
{
    if (caller->kind == REPO_CALLER_PATIENT && caller->patient_id)
        return arena_printf(arena, "Patient/%s", caller->patient_id);
    if (caller->practitioner_id)
        return arena_printf(arena, "Practitioner/%s", caller->practitioner_id);
    if (caller->practitioner_role_id)
        return arena_printf(arena, "PractitionerRole/%s", caller->practitioner_role_id);
    return NULL;
}

const char *repo_author_value(const repo_caller_t *caller, const char *fallback, arena_t *arena)
{
    const char *key = "display", *value = fallback;
    if (caller) {
        const char *reference = reference_of(caller, arena);
        if (reference) {
            key = "reference";
            value = reference;
        } else {
            value = caller->username ? caller->username : caller->client_id;
        }
    }
    if (!value || !*value)
        return NULL;
    buf_t b = BUF_INIT;
    buf_addstr(&b, "{\"");
    buf_addstr(&b, key);
    buf_addstr(&b, "\":\"");
    buf_add_json_escaped(&b, value, strlen(value));
    buf_addstr(&b, "\"}");
    char *out = arena_strndup(arena, b.ptr, b.len);
    buf_release(&b);
    return out;
}

bool repo_author_is(const json_t *ext)
{
    const char *url = json_string_value(json_object_get(ext, "url"));
    return url && strcmp(url, REPO_AUTHOR_URL) == 0;
}

/* The next entry of array from *i on that is not a version-author extension, or NULL. */
static const json_t *next_other(const json_t *array, size_t *i)
{
    size_t n = json_is_array(array) ? json_array_size(array) : 0;
    while (*i < n) {
        const json_t *e = json_array_get(array, (*i)++);
        if (!repo_author_is(e))
            return e;
    }
    return NULL;
}

bool repo_author_extensions_equal(const json_t *a, const json_t *b)
{
    if (a && !json_is_array(a))
        return b && json_equal(a, b);
    if (b && !json_is_array(b))
        return false;
    size_t i = 0, j = 0;
    for (;;) {
        const json_t *x = next_other(a, &i), *y = next_other(b, &j);
        if (!x || !y)
            return !x && !y;
        if (!json_equal(x, y))
            return false;
    }
}
