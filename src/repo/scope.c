/*
 * scope.c - parsing, querying and intersecting SMART scopes (scope.h).
 */
#include "repo/scope.h"

#include <string.h>

#include "fhir/defs.h"

static const struct {
    const char *name;
    unsigned flag;
} flag_names[] = {
    {"openid", SCOPE_OPENID},
    {"fhirUser", SCOPE_FHIR_USER},
    {"profile", SCOPE_PROFILE},
    {"launch", SCOPE_LAUNCH},
    {"launch/patient", SCOPE_LAUNCH_PATIENT},
    {"launch/encounter", SCOPE_LAUNCH_ENCOUNTER},
    {"offline_access", SCOPE_OFFLINE_ACCESS},
    {"online_access", SCOPE_ONLINE_ACCESS},
};

static const char *const context_names[] = {"patient", "user", "system"};

static bool is_equal(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(s, word, len) == 0;
}

/* v2 permissions: letters of "cruds", in that order, each once, at least one. */
static bool parse_v2_perms(const char *s, size_t len, unsigned *out)
{
    static const char order[] = "cruds";
    size_t next = 0;
    unsigned perms = 0;
    for (size_t i = 0; i < len; i++) {
        const char *at = memchr(order + next, s[i], sizeof(order) - 1 - next);
        if (!at || s[i] == '\0')
            return false;
        next = (size_t)(at - order) + 1;
        perms |= 1u << (at - order);
    }
    *out = perms;
    return len > 0;
}

/* One resource scope; false when the token is not one. */
static bool parse_resource(arena_t *arena, const char *token, size_t len, scope_resource_t *out)
{
    memset(out, 0, sizeof(*out));
    const char *slash = memchr(token, '/', len);
    if (!slash)
        return false;
    size_t context_len = (size_t)(slash - token);
    int context = -1;
    for (int i = 0; i < 3; i++)
        if (is_equal(token, context_len, context_names[i]))
            context = i;
    if (context < 0)
        return false;
    const char *rest = slash + 1, *end = token + len;
    const char *question = memchr(rest, '?', (size_t)(end - rest));
    const char *scope_end = question ? question : end;
    const char *dot = memchr(rest, '.', (size_t)(scope_end - rest));
    if (!dot)
        return false;
    size_t type_len = (size_t)(dot - rest);
    if (!is_equal(rest, type_len, "*") && !fhir_resource_type_find(rest, type_len))
        return false;
    const char *perms = dot + 1;
    size_t perms_len = (size_t)(scope_end - perms);
    if (is_equal(perms, perms_len, "read")) {
        out->perms = SCOPE_R | SCOPE_S;
        out->v1 = true;
    } else if (is_equal(perms, perms_len, "write")) {
        out->perms = SCOPE_C | SCOPE_U | SCOPE_D;
        out->v1 = true;
    } else if (is_equal(perms, perms_len, "*")) {
        out->perms = SCOPE_CRUDS;
        out->v1 = true;
    } else if (!parse_v2_perms(perms, perms_len, &out->perms)) {
        return false;
    }
    if (question) {
        /* restrictions are a v2 feature, and each needs a name and a value */
        size_t query_len = (size_t)(end - question - 1);
        if (out->v1 || query_len == 0)
            return false;
        out->nparams = url_query_split(arena, question + 1, query_len, &out->params);
        if (out->nparams == 0)
            return false;
        for (size_t i = 0; i < out->nparams; i++)
            if (out->params[i].name_len == 0 || out->params[i].value_len == 0)
                return false;
        out->query = arena_strndup(arena, question + 1, query_len);
    }
    out->context = (scope_context_t)context;
    out->type = arena_strndup(arena, rest, type_len);
    out->text = arena_strndup(arena, token, len);
    return true;
}

/* RFC 6749 section 3.3: a scope token is printable ASCII without space, '"' and '\'. */
static bool token_chars_valid(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\\')
            return false;
    }
    return true;
}

void scope_parse(arena_t *arena, const char *text, size_t len, scope_set_t *out)
{
    memset(out, 0, sizeof(*out));
    size_t tokens = 1;
    for (size_t i = 0; i < len; i++)
        tokens += text[i] == ' ';
    out->resources = arena_alloc(arena, tokens * sizeof(*out->resources));
    out->unknown = arena_alloc(arena, tokens * sizeof(*out->unknown));
    size_t i = 0;
    while (i < len) {
        if (text[i] == ' ') {
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && text[i] != ' ')
            i++;
        const char *token = text + start;
        size_t token_len = i - start;
        bool known = false;
        for (size_t f = 0; f < sizeof(flag_names) / sizeof(flag_names[0]) && !known; f++) {
            if (is_equal(token, token_len, flag_names[f].name)) {
                out->flags |= flag_names[f].flag;
                known = true;
            }
        }
        if (!known && token_chars_valid(token, token_len) &&
            parse_resource(arena, token, token_len, &out->resources[out->nresources]))
            known = true, out->nresources++;
        if (!known)
            out->unknown[out->nunknown++] = arena_strndup(arena, token, token_len);
    }
}

scope_grant_t scope_allows(const scope_set_t *set, scope_context_t context, const char *type,
                           unsigned interactions)
{
    scope_grant_t best = SCOPE_DENIED;
    for (size_t i = 0; i < set->nresources; i++) {
        const scope_resource_t *r = &set->resources[i];
        if (r->context != context || (r->perms & interactions) != interactions)
            continue;
        if (strcmp(r->type, "*") != 0 && strcmp(r->type, type) != 0)
            continue;
        if (r->nparams == 0)
            return SCOPE_PERMITTED;
        best = SCOPE_RESTRICTED;
    }
    return best;
}

static void render(const scope_resource_t *r, buf_t *out)
{
    buf_addf(out, "%s/%s.", context_names[r->context], r->type);
    for (int bit = 0; bit < 5; bit++)
        if (r->perms & (1u << bit))
            buf_addch(out, "cruds"[bit]);
    if (r->query)
        buf_addf(out, "?%s", r->query);
}

static bool same_grant(const scope_resource_t *a, const scope_resource_t *b)
{
    return a->context == b->context && a->perms == b->perms && strcmp(a->type, b->type) == 0 &&
           ((!a->query && !b->query) || (a->query && b->query && strcmp(a->query, b->query) == 0));
}

void scope_intersect(arena_t *arena, const scope_set_t *requested, const scope_set_t *allowed,
                     scope_set_t *out)
{
    memset(out, 0, sizeof(*out));
    out->flags = requested->flags & allowed->flags;
    size_t cap = requested->nresources * allowed->nresources;
    out->resources = arena_alloc(arena, (cap ? cap : 1) * sizeof(*out->resources));
    out->unknown = arena_alloc(arena, (requested->nunknown + 1) * sizeof(*out->unknown));
    if (requested->nunknown > 0)
        memcpy(out->unknown, requested->unknown, requested->nunknown * sizeof(*out->unknown));
    out->nunknown = requested->nunknown;
    for (size_t i = 0; i < requested->nresources; i++) {
        const scope_resource_t *r = &requested->resources[i];
        for (size_t j = 0; j < allowed->nresources; j++) {
            const scope_resource_t *a = &allowed->resources[j];
            if (r->context != a->context)
                continue;
            const char *type;
            if (strcmp(a->type, "*") == 0 || strcmp(a->type, r->type) == 0)
                type = r->type;
            else if (strcmp(r->type, "*") == 0)
                type = a->type;
            else
                continue;
            unsigned perms = r->perms & a->perms;
            if (perms == 0)
                continue;
            scope_resource_t g = *r;
            g.type = type;
            g.perms = perms;
            if (a->nparams > 0) {
                /* both restrictions hold */
                g.params = arena_alloc(arena, (r->nparams + a->nparams) * sizeof(*g.params));
                if (r->nparams > 0)
                    memcpy(g.params, r->params, r->nparams * sizeof(*g.params));
                memcpy(g.params + r->nparams, a->params, a->nparams * sizeof(*g.params));
                g.nparams = r->nparams + a->nparams;
                g.query = r->query ? arena_printf(arena, "%s&%s", r->query, a->query) : a->query;
            }
            if (type != r->type || perms != r->perms || a->nparams > 0) {
                g.text = NULL;
                g.v1 = false;
            }
            bool duplicate = false;
            for (size_t k = 0; k < out->nresources && !duplicate; k++)
                duplicate = same_grant(&out->resources[k], &g);
            if (!duplicate)
                out->resources[out->nresources++] = g;
        }
    }
}

void scope_format(const scope_set_t *set, buf_t *out)
{
    size_t start = out->len;
    for (size_t f = 0; f < sizeof(flag_names) / sizeof(flag_names[0]); f++) {
        if (set->flags & flag_names[f].flag) {
            if (out->len > start)
                buf_addch(out, ' ');
            buf_addstr(out, flag_names[f].name);
        }
    }
    for (size_t i = 0; i < set->nresources; i++) {
        if (out->len > start)
            buf_addch(out, ' ');
        if (set->resources[i].text)
            buf_addstr(out, set->resources[i].text);
        else
            render(&set->resources[i], out);
    }
}

const char *scope_query_unsupported(arena_t *arena, const scope_set_t *requested,
                                    const scope_set_t *granted)
{
    const scope_set_t *sets[] = {requested, granted};
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; sets[k] && i < sets[k]->nresources; i++) {
            const scope_resource_t *r = &sets[k]->resources[i];
            if (!r->query)
                continue;
            if (r->text)
                return arena_strdup(arena, r->text);
            buf_t text = BUF_INIT;
            render(r, &text);
            const char *copy = arena_strndup(arena, text.ptr, text.len);
            buf_release(&text);
            return copy;
        }
    }
    return NULL;
}
