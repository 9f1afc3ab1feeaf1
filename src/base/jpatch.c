/*
 * jpatch.c - JSON Patch. The operations run on a deep copy that replaces the document only
 * when every operation succeeded, so a failing patch changes nothing.
 */
#include "base/jpatch.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/jv.h"
#include "base/mem.h"

typedef struct {
    size_t index; /* operation number, from 0 */
    const char *op;
    err_t *err;
} ctx_t;

static status_t fail(ctx_t *c, status_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Every message reads "patch operation N (op): ..." */
static status_t fail(ctx_t *c, status_t code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *detail = xvasprintf(fmt, ap);
    va_end(ap);
    err_set(c->err, code, NULL, "patch operation %zu (%s): %s", c->index, c->op ? c->op : "?",
            detail);
    free(detail);
    return c->err->code;
}

/* Splits a JSON Pointer into unescaped tokens; returns the count or -1 when malformed. */
static int split_pointer(const char *pointer, char ***out_tokens)
{
    *out_tokens = NULL;
    if (pointer[0] == '\0')
        return 0;
    if (pointer[0] != '/')
        return -1;
    int n = 0;
    for (const char *p = pointer; *p; p++)
        if (*p == '/')
            n++;
    char **tokens = xcalloc((size_t)n, sizeof(char *));
    const char *p = pointer + 1;
    for (int i = 0; i < n; i++) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char *t = xmalloc(len + 1), *q = t;
        for (size_t k = 0; k < len; k++) {
            if (p[k] == '~') {
                if (k + 1 < len && p[k + 1] == '0') {
                    *q++ = '~';
                    k++;
                } else if (k + 1 < len && p[k + 1] == '1') {
                    *q++ = '/';
                    k++;
                } else {
                    free(t);
                    for (int j = 0; j < i; j++)
                        free(tokens[j]);
                    free(tokens);
                    return -1;
                }
            } else {
                *q++ = p[k];
            }
        }
        *q = '\0';
        tokens[i] = t;
        p = end ? end + 1 : p + len;
    }
    *out_tokens = tokens;
    return n;
}

static void free_tokens(char **tokens, int n)
{
    for (int i = 0; i < n; i++)
        free(tokens[i]);
    free(tokens);
}

/* An array index token: digits without leading zeros. */
static bool parse_index(const char *token, size_t *out)
{
    if (!*token || (token[0] == '0' && token[1]) || strlen(token) > 9)
        return false;
    size_t n = 0;
    for (const char *p = token; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        n = n * 10 + (size_t)(*p - '0');
    }
    *out = n;
    return true;
}

static json_t *child(json_t *parent, const char *token)
{
    if (json_is_object(parent))
        return json_object_get(parent, token);
    size_t index;
    if (json_is_array(parent) && parse_index(token, &index))
        return json_array_get(parent, index);
    return NULL;
}

/* Resolves all tokens but the last; NULL when a step does not exist. */
static json_t *resolve_parent(json_t *doc, char **tokens, int n)
{
    json_t *v = doc;
    for (int i = 0; i < n - 1 && v; i++)
        v = child(v, tokens[i]);
    return v;
}

static json_t *resolve(json_t *doc, char **tokens, int n)
{
    json_t *v = doc;
    for (int i = 0; i < n && v; i++)
        v = child(v, tokens[i]);
    return v;
}

/* add: takes a reference to value. */
static status_t do_add(ctx_t *c, json_t **doc, const char *path, json_t *value)
{
    char **tokens;
    int n = split_pointer(path, &tokens);
    status_t rc = ERR_OK;
    if (n < 0) {
        json_decref(value);
        return fail(c, ERR_INVALID, "\"%s\" is not a JSON Pointer", path);
    }
    if (n == 0) {
        json_decref(*doc);
        *doc = value;
        goto out;
    }
    json_t *parent = resolve_parent(*doc, tokens, n);
    const char *last = tokens[n - 1];
    if (json_is_object(parent)) {
        json_object_set_new(parent, last, value);
    } else if (json_is_array(parent)) {
        size_t index;
        if (strcmp(last, "-") == 0) {
            json_array_append_new(parent, value);
        } else if (parse_index(last, &index) && index <= json_array_size(parent)) {
            json_array_insert_new(parent, index, value);
        } else {
            json_decref(value);
            rc = fail(c, ERR_RULE, "path \"%s\" is outside the array", path);
        }
    } else {
        json_decref(value);
        rc = fail(c, ERR_RULE, "the parent of path \"%s\" does not exist", path);
    }
out:
    free_tokens(tokens, n);
    return rc;
}

static status_t do_remove(ctx_t *c, json_t **doc, const char *path)
{
    char **tokens;
    int n = split_pointer(path, &tokens);
    if (n < 0)
        return fail(c, ERR_INVALID, "\"%s\" is not a JSON Pointer", path);
    if (n == 0) {
        free_tokens(tokens, n);
        return fail(c, ERR_RULE, "the whole document cannot be removed");
    }
    status_t rc = ERR_OK;
    json_t *parent = resolve_parent(*doc, tokens, n);
    const char *last = tokens[n - 1];
    size_t index;
    if (json_is_object(parent) && json_object_get(parent, last))
        json_object_del(parent, last);
    else if (json_is_array(parent) && parse_index(last, &index) && index < json_array_size(parent))
        json_array_remove(parent, index);
    else
        rc = fail(c, ERR_RULE, "path \"%s\" does not exist", path);
    free_tokens(tokens, n);
    return rc;
}

/* replace: the value keeps its place among its siblings. Takes a reference to value. */
static status_t do_replace(ctx_t *c, json_t **doc, const char *path, json_t *value)
{
    char **tokens;
    int n = split_pointer(path, &tokens);
    if (n < 0) {
        json_decref(value);
        return fail(c, ERR_INVALID, "\"%s\" is not a JSON Pointer", path);
    }
    status_t rc = ERR_OK;
    if (n == 0) {
        json_decref(*doc);
        *doc = value;
        goto out;
    }
    json_t *parent = resolve_parent(*doc, tokens, n);
    const char *last = tokens[n - 1];
    size_t index;
    if (json_is_object(parent) && json_object_get(parent, last)) {
        json_object_set_new(parent, last, value);
    } else if (json_is_array(parent) && parse_index(last, &index) &&
               index < json_array_size(parent)) {
        json_array_set_new(parent, index, value);
    } else {
        json_decref(value);
        rc = fail(c, ERR_RULE, "path \"%s\" does not exist", path);
    }
out:
    free_tokens(tokens, n);
    return rc;
}

/* A borrowed reference to the value at path, or NULL with an error. */
static json_t *get(ctx_t *c, json_t *doc, const char *path)
{
    char **tokens;
    int n = split_pointer(path, &tokens);
    if (n < 0) {
        fail(c, ERR_INVALID, "\"%s\" is not a JSON Pointer", path);
        return NULL;
    }
    json_t *v = resolve(doc, tokens, n);
    free_tokens(tokens, n);
    if (!v)
        fail(c, ERR_RULE, "path \"%s\" does not exist", path);
    return v;
}

static const char *string_member(ctx_t *c, const json_t *op, const char *name)
{
    json_t *v = json_object_get(op, name);
    if (!jv_is_string(v)) {
        fail(c, ERR_INVALID, "\"%s\" is missing or not a string", name);
        return NULL;
    }
    return json_string_value(v);
}

static status_t apply_one(ctx_t *c, json_t **doc, const json_t *op)
{
    if (!json_is_object(op))
        return fail(c, ERR_INVALID, "an operation must be a JSON object");
    c->op = NULL;
    const char *name = string_member(c, op, "op");
    if (!name)
        return c->err->code;
    c->op = name;
    const char *path = string_member(c, op, "path");
    if (!path)
        return c->err->code;
    json_t *value = json_object_get(op, "value");
    bool needs_value = !strcmp(name, "add") || !strcmp(name, "replace") || !strcmp(name, "test");
    if (needs_value && !value)
        return fail(c, ERR_INVALID, "\"value\" is missing");

    if (!strcmp(name, "add"))
        return do_add(c, doc, path, json_deep_copy(value));
    if (!strcmp(name, "remove"))
        return do_remove(c, doc, path);
    if (!strcmp(name, "replace"))
        return do_replace(c, doc, path, json_deep_copy(value));
    if (!strcmp(name, "test")) {
        json_t *current = get(c, *doc, path);
        if (!current)
            return c->err->code;
        if (!json_equal(current, value))
            return fail(c, ERR_RULE, "the value at \"%s\" is not the expected one", path);
        return ERR_OK;
    }
    if (!strcmp(name, "move") || !strcmp(name, "copy")) {
        const char *from = string_member(c, op, "from");
        if (!from)
            return c->err->code;
        json_t *source = get(c, *doc, from);
        if (!source)
            return c->err->code;
        json_t *moved = json_deep_copy(source);
        if (!strcmp(name, "move")) {
            size_t from_len = strlen(from);
            if (strncmp(path, from, from_len) == 0 && path[from_len] == '/') {
                json_decref(moved);
                return fail(c, ERR_RULE, "cannot move a value into itself (\"%s\")", path);
            }
            status_t rc = do_remove(c, doc, from);
            if (rc) {
                json_decref(moved);
                return rc;
            }
        }
        return do_add(c, doc, path, moved);
    }
    return fail(c, ERR_INVALID, "unknown operation \"%s\"", name);
}

status_t jpatch_apply(json_t **document, const json_t *patch, err_t *err)
{
    ctx_t c = {.index = 0, .op = NULL, .err = err};
    if (!json_is_array(patch))
        return fail(&c, ERR_INVALID, "a JSON Patch must be an array of operations");
    json_t *doc = json_deep_copy(*document);
    for (size_t i = 0; i < json_array_size(patch); i++) {
        c.index = i;
        status_t rc = apply_one(&c, &doc, json_array_get(patch, i));
        if (rc) {
            json_decref(doc);
            return rc;
        }
    }
    json_decref(*document);
    *document = doc;
    return ERR_OK;
}
