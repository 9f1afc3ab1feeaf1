/*
 * search_defs.c - the search parameter registry: lookups over the generated table
 * (search_gen.c) and the snapshots that add custom parameters on top of it.
 *
 * A snapshot is immutable once published. It owns its custom parameters (copied into its own
 * arena) sorted by (group, code), where the group is the base type's name, or "" for the
 * parameters of all resources. The registry points at the current snapshot and holds one
 * reference to it; acquire copies the pointer and counts a reference under a mutex, a writer
 * builds the next snapshot outside that mutex (under its own) and swaps the pointer, and the
 * last release frees a snapshot. The built-in snapshot is static and never counted.
 */
#include "fhir/search_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/jv.h"
#include "base/mem.h"
#include "fhir/fhirpath.h"

/* --- names ------------------------------------------------------------------------------ */

static const char *const type_names[] = {"number",    "date",     "string", "token",  "reference",
                                         "composite", "quantity", "uri",    "special"};
static const char *const modifier_names[] = {"",        "missing",    "exact", "contains", "text",
                                             "not",     "above",      "below", "in",       "not-in",
                                             "of-type", "identifier", "type"};
static const char *const prefix_names[] = {"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"};

const char *fhir_search_type_name(fhir_search_type_t type)
{
    return type_names[type];
}

const char *fhir_search_modifier_name(fhir_search_modifier_t modifier)
{
    return modifier_names[modifier];
}

const char *fhir_search_prefix_name(fhir_search_prefix_t prefix)
{
    return prefix_names[prefix];
}

/* --- built-in lookups ------------------------------------------------------------------- */

typedef struct {
    const char *ptr;
    size_t len;
} name_key_t;

/* strcmp order between a (ptr, len) key and a NUL-terminated string. */
static int key_compare(const name_key_t *key, const char *s)
{
    size_t n = strlen(s);
    int c = memcmp(key->ptr, s, key->len < n ? key->len : n);
    if (c != 0)
        return c;
    return key->len < n ? -1 : key->len > n ? 1 : 0;
}

static int param_compare(const void *k, const void *member)
{
    return key_compare(k, ((const fhir_search_param_t *)member)->code);
}

static int type_compare(const void *k, const void *member)
{
    return key_compare(k, ((const fhir__search_type_t *)member)->name);
}

static const fhir__search_type_t *builtin_type(const fhir_type_t *type)
{
    if (!type)
        return NULL;
    name_key_t key = {type->name, strlen(type->name)};
    return bsearch(&key, fhir__search_types, fhir__search_type_count, sizeof(fhir__search_types[0]),
                   type_compare);
}

bool fhir__search_common_applies(const fhir_search_param_t *param, const fhir_type_t *type)
{
    if (!type || strcmp(param->base, "Resource") == 0)
        return true;
    const fhir_type_t *base = fhir_type_find(param->base, strlen(param->base));
    return base && fhir_type_is_a(type, base);
}

static const fhir_search_param_t *builtin_own(const fhir_type_t *type, const char *code, size_t len)
{
    const fhir__search_type_t *t = builtin_type(type);
    if (!t)
        return NULL;
    name_key_t key = {code, len};
    return bsearch(&key, t->params, t->nparams, sizeof(t->params[0]), param_compare);
}

static const fhir_search_param_t *builtin_common(const fhir_type_t *type, const char *code,
                                                 size_t len)
{
    name_key_t key = {code, len};
    const fhir_search_param_t *p = bsearch(&key, fhir__search_common, fhir__search_common_count,
                                           sizeof(fhir__search_common[0]), param_compare);
    return p && fhir__search_common_applies(p, type) ? p : NULL;
}

const fhir_search_param_t *fhir_search_param_find(const fhir_type_t *type, const char *code,
                                                  size_t len)
{
    const fhir_search_param_t *p = builtin_own(type, code, len);
    return p ? p : builtin_common(type, code, len);
}

void fhir_search_builtin_counts(fhir_search_counts_t *out)
{
    memset(out, 0, sizeof(*out));
    out->definitions = fhir__search_definition_count;
    out->parameters = fhir__search_param_count;
    out->common = fhir__search_common_count;
    out->composite_definitions = fhir__search_composite_definition_count;
    for (size_t i = 0; i < fhir__search_param_count; i++)
        out->by_type[fhir__search_params[i].type]++;
}

/* --- expressions ------------------------------------------------------------------------ */

size_t fhir__search_union_members(const char *e, size_t (*spans)[2], size_t max)
{
    size_t n = 0, start = 0, len = strlen(e);
    int depth = 0;
    char quote = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = e[i];
        if (quote && c) {
            if (c == '\\')
                i++;
            else if (c == quote)
                quote = 0;
            continue;
        }
        if (c == '\'' || c == '`') {
            quote = c;
        } else if (c == '(') {
            depth++;
        } else if (c == ')') {
            if (--depth < 0)
                return 0;
        } else if ((c == '|' && depth == 0) || c == '\0') {
            if (c == '\0' && (depth != 0 || quote))
                return 0;
            if (n == max)
                return 0;
            size_t a = start, b = i;
            while (a < b && (e[a] == ' ' || e[a] == '\t' || e[a] == '\n' || e[a] == '\r'))
                a++;
            while (b > a &&
                   (e[b - 1] == ' ' || e[b - 1] == '\t' || e[b - 1] == '\n' || e[b - 1] == '\r'))
                b--;
            spans[n][0] = a;
            spans[n][1] = b;
            n++;
            start = i + 1;
        }
    }
    return n;
}

static bool is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_alnum(char c)
{
    return is_alpha(c) || (c >= '0' && c <= '9');
}

static size_t index_of(const char *const *names, size_t n, const char *s, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
            return i;
    }
    return n;
}

/*
 * For member m (len bytes): *root is the index in bases of the identifier the member starts
 * with (after any '('), or nbases; returns how many different bases start paths in it.
 */
static size_t member_bases(const char *m, size_t len, const char *const *bases, size_t nbases,
                           size_t *root)
{
    size_t i = 0;
    while (i < len && m[i] == '(')
        i++;
    size_t s = i;
    while (i < len && is_alnum(m[i]))
        i++;
    *root = (i < len && m[i] == '.' && s < i && is_alpha(m[s]))
                ? index_of(bases, nbases, m + s, i - s)
                : nbases;
    bool seen[64] = {false};
    size_t count = 0;
    char quote = 0;
    for (i = 0; i < len; i++) {
        char c = m[i];
        if (quote) {
            if (c == '\\')
                i++;
            else if (c == quote)
                quote = 0;
            continue;
        }
        if (c == '\'' || c == '`') {
            quote = c;
            continue;
        }
        bool starts = i == 0 || m[i - 1] == ' ' || m[i - 1] == '\t' || m[i - 1] == '(' ||
                      m[i - 1] == '|' || m[i - 1] == ',';
        if (!starts || !(c >= 'A' && c <= 'Z'))
            continue;
        size_t j = i;
        while (j < len && is_alnum(m[j]))
            j++;
        if (j < len && m[j] == '.') {
            size_t b = index_of(bases, nbases, m + i, j - i);
            if (b < nbases && b < 64 && !seen[b]) {
                seen[b] = true;
                count++;
            }
        }
        i = j - 1;
    }
    return count;
}

const char *fhir__search_restrict(arena_t *arena, const char *expression, const char *base,
                                  const char *const *bases, size_t nbases)
{
    if (!expression || nbases < 2 || nbases > 64)
        return expression;
    size_t spans[256][2];
    size_t n = fhir__search_union_members(expression, spans, 256);
    if (n == 0)
        return expression;
    size_t me = index_of(bases, nbases, base, strlen(base));
    buf_t out = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        const char *m = expression + spans[i][0];
        size_t len = spans[i][1] - spans[i][0], root;
        if (member_bases(m, len, bases, nbases, &root) > 1 || root == nbases) {
            buf_release(&out);
            return expression;
        }
        if (root != me)
            continue;
        if (out.len)
            buf_addstr(&out, " | ");
        buf_add(&out, m, len);
    }
    const char *kept = out.len ? arena_strndup(arena, out.ptr, out.len) : expression;
    buf_release(&out);
    return kept;
}

/* --- snapshots -------------------------------------------------------------------------- */

typedef struct {
    const char *group; /* base type name, or "" for the parameters of all resources */
    fhir_search_param_t *param;
    size_t order; /* insertion order while a snapshot is built: the later one of a key wins */
} custom_t;

struct fhir_search_snapshot {
    atomic_size_t refs;
    bool is_static;
    custom_t *customs; /* sorted by (group, code) */
    size_t ncustoms;
    arena_t arena; /* the custom parameters and their strings */
};

static const fhir_search_snapshot_t builtin_snapshot = {.is_static = true};

const fhir_search_snapshot_t *fhir_search_builtin(void)
{
    return &builtin_snapshot;
}

void fhir_search_snapshot_release(const fhir_search_snapshot_t *snapshot)
{
    if (!snapshot || snapshot->is_static)
        return;
    fhir_search_snapshot_t *s = (fhir_search_snapshot_t *)snapshot;
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(s->customs);
    arena_release(&s->arena);
    free(s);
}

static bool is_common_base(const char *base)
{
    return strcmp(base, "Resource") == 0 || strcmp(base, "DomainResource") == 0;
}

static int custom_compare_keys(const char *group_a, const char *code_a, const char *group_b,
                               const char *code_b)
{
    int c = strcmp(group_a, group_b);
    return c ? c : strcmp(code_a, code_b);
}

static int custom_compare(const void *a, const void *b)
{
    const custom_t *x = a, *y = b;
    return custom_compare_keys(x->group, x->param->code, y->group, y->param->code);
}

static int custom_order_compare(const void *a, const void *b)
{
    int c = custom_compare(a, b);
    if (c)
        return c;
    const custom_t *x = a, *y = b;
    return x->order < y->order ? -1 : x->order > y->order;
}

typedef struct {
    const char *group;
    name_key_t code;
} custom_key_t;

static int custom_key_compare(const void *k, const void *member)
{
    const custom_key_t *key = k;
    const custom_t *c = member;
    int r = strcmp(key->group, c->group);
    return r ? r : key_compare(&key->code, c->param->code);
}

static const fhir_search_param_t *custom_find(const fhir_search_snapshot_t *s, const char *group,
                                              const char *code, size_t len)
{
    if (!s->ncustoms)
        return NULL;
    custom_key_t key = {group, {code, len}};
    const custom_t *c =
        bsearch(&key, s->customs, s->ncustoms, sizeof(s->customs[0]), custom_key_compare);
    return c ? c->param : NULL;
}

const fhir_search_param_t *fhir_search_snapshot_find(const fhir_search_snapshot_t *snapshot,
                                                     const fhir_type_t *type, const char *code,
                                                     size_t len)
{
    const fhir_search_param_t *p;
    if (type && (p = custom_find(snapshot, type->name, code, len)))
        return p;
    if ((p = builtin_own(type, code, len)))
        return p;
    p = custom_find(snapshot, "", code, len);
    if (p && fhir__search_common_applies(p, type))
        return p;
    return builtin_common(type, code, len);
}

const fhir_search_param_t *fhir_search_snapshot_find_url(const fhir_search_snapshot_t *snapshot,
                                                         const char *base, const char *url)
{
    for (size_t i = 0; i < snapshot->ncustoms; i++) {
        const fhir_search_param_t *p = snapshot->customs[i].param;
        if (p->url && strcmp(p->url, url) == 0 && (!base || strcmp(p->base, base) == 0))
            return p;
    }
    return NULL;
}

/* --- iteration --------------------------------------------------------------------------- */

/* The range of customs in a group: [*first, *end). */
static void custom_range(const fhir_search_snapshot_t *s, const char *group, size_t *first,
                         size_t *end)
{
    size_t lo = 0, hi = s->ncustoms;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(s->customs[mid].group, group) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *first = lo;
    while (hi < s->ncustoms && strcmp(s->customs[hi].group, group) == 0)
        hi++;
    *end = hi < lo ? lo : hi;
}

/* Cursors: 0 own custom, 1 own built-in, 2 common custom, 3 common built-in (priority order). */
static const fhir_search_param_t *cursor_at(const fhir_search_iter_t *it, size_t source)
{
    const fhir_search_snapshot_t *s = it->snapshot;
    size_t first, end;
    switch (source) {
    case 0:
        if (!it->type)
            return NULL;
        custom_range(s, it->type->name, &first, &end);
        return first + it->at[0] < end ? s->customs[first + it->at[0]].param : NULL;
    case 1: {
        const fhir__search_type_t *t = builtin_type(it->type);
        return t && it->at[1] < t->nparams ? &t->params[it->at[1]] : NULL;
    }
    case 2:
        custom_range(s, "", &first, &end);
        return first + it->at[2] < end ? s->customs[first + it->at[2]].param : NULL;
    default: return it->at[3] < fhir__search_common_count ? &fhir__search_common[it->at[3]] : NULL;
    }
}

void fhir_search_iter_init(fhir_search_iter_t *it, const fhir_search_snapshot_t *snapshot,
                           const fhir_type_t *type)
{
    memset(it, 0, sizeof(*it));
    it->snapshot = snapshot;
    it->type = type;
}

const fhir_search_param_t *fhir_search_iter_next(fhir_search_iter_t *it)
{
    for (;;) {
        const fhir_search_param_t *best = NULL;
        for (size_t i = 0; i < 4; i++) {
            const fhir_search_param_t *p = cursor_at(it, i);
            if (p && (!best || strcmp(p->code, best->code) < 0))
                best = p;
        }
        if (!best)
            return NULL;
        /* advance every cursor that stands on this code: the first in priority order wins */
        const char *code = best->code;
        const fhir_search_param_t *chosen = NULL;
        for (size_t i = 0; i < 4; i++) {
            const fhir_search_param_t *p = cursor_at(it, i);
            if (p && strcmp(p->code, code) == 0) {
                if (!chosen && (i < 2 || fhir__search_common_applies(p, it->type)))
                    chosen = p;
                it->at[i]++;
            }
        }
        if (chosen)
            return chosen;
    }
}

/* --- the registry ------------------------------------------------------------------------ */

struct fhir_search_registry {
    pthread_mutex_t lock;            /* guards `current` and the count of its references */
    pthread_mutex_t write_lock;      /* one writer at a time */
    fhir_search_snapshot_t *current; /* holds one reference (none for the static one) */
};

fhir_search_registry_t *fhir_search_registry_new(void)
{
    fhir_search_registry_t *r = xcalloc(1, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->write_lock, NULL);
    r->current = (fhir_search_snapshot_t *)&builtin_snapshot;
    return r;
}

void fhir_search_registry_free(fhir_search_registry_t *registry)
{
    if (!registry)
        return;
    fhir_search_snapshot_release(registry->current);
    pthread_mutex_destroy(&registry->lock);
    pthread_mutex_destroy(&registry->write_lock);
    free(registry);
}

const fhir_search_snapshot_t *fhir_search_registry_acquire(fhir_search_registry_t *registry)
{
    pthread_mutex_lock(&registry->lock);
    fhir_search_snapshot_t *s = registry->current;
    if (!s->is_static)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&registry->lock);
    return s;
}

/* Publishes next as the current snapshot and drops the registry's reference to the old one.
 * Called with write_lock held. */
static void publish(fhir_search_registry_t *registry, fhir_search_snapshot_t *next)
{
    pthread_mutex_lock(&registry->lock);
    fhir_search_snapshot_t *old = registry->current;
    registry->current = next;
    pthread_mutex_unlock(&registry->lock);
    fhir_search_snapshot_release(old);
}

static fhir_search_snapshot_t *snapshot_new(void)
{
    fhir_search_snapshot_t *s = xcalloc(1, sizeof(*s));
    atomic_init(&s->refs, 1);
    arena_init(&s->arena);
    return s;
}

static const char *copy_str(arena_t *arena, const char *s)
{
    return s ? arena_strdup(arena, s) : NULL;
}

/* A deep copy of p in arena. */
static fhir_search_param_t *param_copy(arena_t *arena, const fhir_search_param_t *p)
{
    fhir_search_param_t *c = arena_alloc(arena, sizeof(*c));
    *c = *p;
    c->code = copy_str(arena, p->code);
    c->base = copy_str(arena, p->base);
    c->url = copy_str(arena, p->url);
    c->expression = copy_str(arena, p->expression);
    if (p->ntargets) {
        const char **t = arena_alloc(arena, p->ntargets * sizeof(*t));
        for (size_t i = 0; i < p->ntargets; i++)
            t[i] = copy_str(arena, p->targets[i]);
        c->targets = t;
    }
    if (p->ncomponents) {
        fhir_search_component_t *k = arena_alloc(arena, p->ncomponents * sizeof(*k));
        for (size_t i = 0; i < p->ncomponents; i++) {
            k[i] = p->components[i];
            k[i].definition = copy_str(arena, p->components[i].definition);
            k[i].code = copy_str(arena, p->components[i].code);
            k[i].expression = copy_str(arena, p->components[i].expression);
        }
        c->components = k;
    }
    return c;
}

/*
 * The next snapshot: the customs of `from` whose url is not drop_url, plus `add` (n params,
 * any arena; copied). A later one of the same (group, code) replaces an earlier one.
 */
static fhir_search_snapshot_t *snapshot_build(const fhir_search_snapshot_t *from,
                                              const char *drop_url, fhir_search_param_t *const *add,
                                              size_t n)
{
    fhir_search_snapshot_t *s = snapshot_new();
    size_t cap = from->ncustoms + n;
    s->customs = cap ? xcalloc(cap, sizeof(custom_t)) : NULL;
    for (size_t i = 0; i < from->ncustoms; i++) {
        const fhir_search_param_t *p = from->customs[i].param;
        if (drop_url && p->url && strcmp(p->url, drop_url) == 0)
            continue;
        custom_t *c = &s->customs[s->ncustoms];
        c->param = param_copy(&s->arena, p);
        c->group = is_common_base(p->base) ? "" : c->param->base;
        c->order = s->ncustoms++;
    }
    for (size_t i = 0; i < n; i++) {
        custom_t *c = &s->customs[s->ncustoms];
        c->param = param_copy(&s->arena, add[i]);
        c->group = is_common_base(add[i]->base) ? "" : c->param->base;
        c->order = s->ncustoms++;
    }
    /* sorted by key then insertion order; of equal keys only the last is kept */
    if (s->ncustoms > 1) {
        qsort(s->customs, s->ncustoms, sizeof(s->customs[0]), custom_order_compare);
        size_t w = 0;
        for (size_t i = 0; i < s->ncustoms; i++) {
            if (i + 1 < s->ncustoms && custom_compare(&s->customs[i], &s->customs[i + 1]) == 0)
                continue;
            s->customs[w++] = s->customs[i];
        }
        s->ncustoms = w;
    }
    return s;
}

bool fhir_search_registry_remove(fhir_search_registry_t *registry, const char *url)
{
    pthread_mutex_lock(&registry->write_lock);
    fhir_search_snapshot_t *cur = registry->current; /* stable: only writers change it */
    bool found = fhir_search_snapshot_find_url(cur, NULL, url) != NULL;
    if (found)
        publish(registry, snapshot_build(cur, url, NULL, 0));
    pthread_mutex_unlock(&registry->write_lock);
    return found;
}

/* --- custom parameters from SearchParameter resources ------------------------------------ */

static const char *member_string(const json_t *object, const char *name)
{
    const json_t *v = json_object_get(object, name);
    return v && jv_is_string(v) ? json_string_value(v) : NULL;
}

static bool valid_code(const char *code)
{
    if (!code || !is_alnum(code[0]))
        return false;
    for (const char *p = code; *p; p++) {
        if (!is_alnum(*p) && *p != '-' && *p != '_')
            return false;
    }
    return strlen(code) <= 64;
}

static bool name_in(const char *name, const char *const *names, size_t n, size_t *out)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = i;
            return true;
        }
    }
    return false;
}

/* An array member of strings (absent: empty); false when it is not one. */
static bool string_array(arena_t *arena, const json_t *object, const char *name, const char ***out,
                         size_t *n)
{
    const json_t *a = json_object_get(object, name);
    *out = NULL;
    *n = 0;
    if (!a)
        return true;
    if (!json_is_array(a) || json_array_size(a) > 200)
        return false;
    const char **v = arena_alloc(arena, (json_array_size(a) + 1) * sizeof(*v));
    for (size_t i = 0; i < json_array_size(a); i++) {
        const json_t *x = json_array_get(a, i);
        if (!jv_is_string(x))
            return false;
        v[i] = json_string_value(x);
    }
    *out = v;
    *n = json_array_size(a);
    return true;
}

static int str_ptr_compare(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const fhir_search_param_t *fhir_search_builtin_find_url(const char *url)
{
    for (size_t i = 0; i < fhir__search_param_count; i++) {
        if (fhir__search_params[i].url && strcmp(fhir__search_params[i].url, url) == 0)
            return &fhir__search_params[i];
    }
    for (size_t i = 0; i < fhir__search_common_count; i++) {
        if (fhir__search_common[i].url && strcmp(fhir__search_common[i].url, url) == 0)
            return &fhir__search_common[i];
    }
    return NULL;
}

/* Resolves a component's definition url to (code, type): registered first, then built in. */
static bool component_resolve(const fhir_search_snapshot_t *s, const char *url,
                              fhir_search_component_t *out)
{
    const fhir_search_param_t *p = fhir_search_snapshot_find_url(s, NULL, url);
    for (size_t i = 0; i < fhir__search_param_count && !p; i++) {
        if (fhir__search_params[i].url && strcmp(fhir__search_params[i].url, url) == 0)
            p = &fhir__search_params[i];
    }
    for (size_t i = 0; i < fhir__search_common_count && !p; i++) {
        if (fhir__search_common[i].url && strcmp(fhir__search_common[i].url, url) == 0)
            p = &fhir__search_common[i];
    }
    if (!p || p->type == FHIR_SEARCH_COMPOSITE || p->type == FHIR_SEARCH_SPECIAL)
        return false;
    out->definition = url;
    out->code = p->code;
    out->type = p->type;
    return true;
}

/* put and check: the rules, and the new snapshot published when apply is set. */
static status_t registry_put(fhir_search_registry_t *registry, const json_t *resource, bool apply,
                             err_t *err)
{
    status_t rc = ERR_OK;
    arena_t arena;
    arena_init(&arena);
    pthread_mutex_lock(&registry->write_lock);
    const fhir_search_snapshot_t *cur = registry->current;

    const char *rt = member_string(resource, "resourceType");
    const char *url = member_string(resource, "url");
    const char *code = member_string(resource, "code");
    const char *type_name = member_string(resource, "type");
    const char *status = member_string(resource, "status");
    const char *expression = member_string(resource, "expression");
    const char *usage = member_string(resource, "xpathUsage");
    if (!json_is_object(resource) || !rt || strcmp(rt, "SearchParameter") != 0) {
        rc = err_set(err, ERR_RULE, NULL,
                     "cannot register a search parameter: not a "
                     "SearchParameter");
        goto out;
    }
    if (!url) {
        rc = err_set(err, ERR_RULE, "SearchParameter.url",
                     "cannot register a search parameter without a url");
        goto out;
    }
    if (status && strcmp(status, "retired") == 0) {
        if (apply && fhir_search_snapshot_find_url(cur, NULL, url))
            publish(registry, snapshot_build(cur, url, NULL, 0));
        goto out;
    }
    if (!valid_code(code)) {
        rc = err_set(err, ERR_RULE, "SearchParameter.code",
                     "cannot register search parameter %s: code \"%s\" is not a valid "
                     "parameter name",
                     url, code ? code : "");
        goto out;
    }
    size_t type = 0;
    if (!type_name || !name_in(type_name, type_names, 9, &type)) {
        rc = err_set(err, ERR_RULE, "SearchParameter.type",
                     "cannot register search parameter \"%s\": unknown type \"%s\"", code,
                     type_name ? type_name : "");
        goto out;
    }
    size_t xpath = 0;
    static const char *const usages[] = {"normal", "phonetic", "nearby", "distance", "other"};
    if (usage && !name_in(usage, usages, 5, &xpath)) {
        rc = err_set(err, ERR_RULE, "SearchParameter.xpathUsage",
                     "cannot register search parameter \"%s\": unknown xpathUsage \"%s\"", code,
                     usage);
        goto out;
    }
    if (!expression && type != FHIR_SEARCH_SPECIAL) {
        rc = err_set(err, ERR_RULE, "SearchParameter.expression",
                     "cannot register search parameter \"%s\": it has no expression", code);
        goto out;
    }
    if (expression) {
        err_t compile = ERR_INIT;
        fhirpath_t *compiled = fhirpath_compile(expression, strlen(expression), &compile);
        if (!compiled) {
            rc = err_set(err, ERR_RULE, "SearchParameter.expression",
                         "cannot register search parameter \"%s\": its expression is not valid "
                         "FHIRPath: %s",
                         code, err_message(&compile));
            err_release(&compile);
            goto out;
        }
        fhirpath_free(compiled);
        err_release(&compile);
    }
    const char **bases, **targets, **comparators, **modifiers;
    size_t nbases, ntargets, ncomparators, nmodifiers;
    if (!string_array(&arena, resource, "base", &bases, &nbases) || nbases == 0) {
        rc = err_set(err, ERR_RULE, "SearchParameter.base",
                     "cannot register search parameter \"%s\": it has no base", code);
        goto out;
    }
    for (size_t i = 0; i < nbases; i++) {
        if (!is_common_base(bases[i]) && !fhir_resource_type_find(bases[i], strlen(bases[i]))) {
            rc = err_set(err, ERR_RULE, "SearchParameter.base",
                         "cannot register search parameter \"%s\": \"%s\" is not a resource "
                         "type",
                         code, bases[i]);
            goto out;
        }
    }
    if (!string_array(&arena, resource, "target", &targets, &ntargets) ||
        (ntargets && type != FHIR_SEARCH_REFERENCE)) {
        rc = err_set(err, ERR_RULE, "SearchParameter.target",
                     "cannot register search parameter \"%s\": targets are for reference "
                     "parameters",
                     code);
        goto out;
    }
    for (size_t i = 0; i < ntargets; i++) {
        if (!fhir_resource_type_find(targets[i], strlen(targets[i]))) {
            rc = err_set(err, ERR_RULE, "SearchParameter.target",
                         "cannot register search parameter \"%s\": target \"%s\" is not a "
                         "resource type",
                         code, targets[i]);
            goto out;
        }
    }
    if (ntargets > 1)
        qsort(targets, ntargets, sizeof(*targets), str_ptr_compare);
    uint16_t comparator_bits = 0, modifier_bits = 0;
    if (!string_array(&arena, resource, "comparator", &comparators, &ncomparators) ||
        !string_array(&arena, resource, "modifier", &modifiers, &nmodifiers)) {
        rc = err_set(err, ERR_RULE, NULL,
                     "cannot register search parameter \"%s\": malformed comparator or "
                     "modifier list",
                     code);
        goto out;
    }
    for (size_t i = 0; i < ncomparators; i++) {
        size_t k;
        if (!name_in(comparators[i], prefix_names, 9, &k)) {
            rc = err_set(err, ERR_RULE, "SearchParameter.comparator",
                         "cannot register search parameter \"%s\": unknown comparator \"%s\"", code,
                         comparators[i]);
            goto out;
        }
        comparator_bits |= (uint16_t)FHIR_SEARCH_BIT(k);
    }
    for (size_t i = 0; i < nmodifiers; i++) {
        size_t k;
        const char *m = strcmp(modifiers[i], "ofType") == 0 ? "of-type" : modifiers[i];
        if (!name_in(m, modifier_names + 1, 12, &k)) {
            rc = err_set(err, ERR_RULE, "SearchParameter.modifier",
                         "cannot register search parameter \"%s\": unknown modifier \"%s\"", code,
                         modifiers[i]);
            goto out;
        }
        modifier_bits |= (uint16_t)FHIR_SEARCH_BIT(k + 1);
    }

    fhir_search_param_t proto = {
        .code = code,
        .type = (fhir_search_type_t)type,
        .url = url,
        .xpath_usage = (fhir_search_xpath_usage_t)xpath,
        .comparators = comparator_bits,
        .modifiers = modifier_bits,
        .targets = targets,
        .ntargets = (uint16_t)ntargets,
        .multiple_or = !json_is_false(json_object_get(resource, "multipleOr")),
        .multiple_and = !json_is_false(json_object_get(resource, "multipleAnd")),
    };
    const json_t *components = json_object_get(resource, "component");
    if (type == FHIR_SEARCH_COMPOSITE) {
        if (!json_is_array(components) || json_array_size(components) < 2 ||
            json_array_size(components) > 8) {
            rc = err_set(err, ERR_RULE, "SearchParameter.component",
                         "cannot register composite search parameter \"%s\": it needs 2 to 8 "
                         "components",
                         code);
            goto out;
        }
        size_t n = json_array_size(components);
        fhir_search_component_t *k = arena_zalloc(&arena, n * sizeof(*k));
        for (size_t i = 0; i < n; i++) {
            const json_t *c = json_array_get(components, i);
            const char *definition = json_is_object(c) ? member_string(c, "definition") : NULL;
            const char *cexpr = json_is_object(c) ? member_string(c, "expression") : NULL;
            if (!definition || !cexpr || !component_resolve(cur, definition, &k[i])) {
                rc = err_set(err, ERR_RULE, "SearchParameter.component",
                             "cannot register composite search parameter \"%s\": component "
                             "\"%s\" is not a known search parameter",
                             code, definition ? definition : "");
                goto out;
            }
            k[i].expression = cexpr;
        }
        proto.components = k;
        proto.ncomponents = (uint16_t)n;
    } else if (components) {
        rc = err_set(err, ERR_RULE, "SearchParameter.component",
                     "cannot register search parameter \"%s\": components are for composite "
                     "parameters",
                     code);
        goto out;
    }

    fhir_search_param_t **add = arena_alloc(&arena, nbases * sizeof(*add));
    for (size_t i = 0; i < nbases; i++) {
        add[i] = arena_alloc(&arena, sizeof(*add[i]));
        *add[i] = proto;
        add[i]->base = bases[i];
        add[i]->expression = fhir__search_restrict(&arena, expression, bases[i], bases, nbases);
    }
    if (apply)
        publish(registry, snapshot_build(cur, url, add, nbases));
out:
    pthread_mutex_unlock(&registry->write_lock);
    arena_release(&arena);
    return rc;
}

status_t fhir_search_registry_put(fhir_search_registry_t *registry, const json_t *resource,
                                  err_t *err)
{
    return registry_put(registry, resource, true, err);
}

status_t fhir_search_registry_check(fhir_search_registry_t *registry, const json_t *resource,
                                    err_t *err)
{
    return registry_put(registry, resource, false, err);
}
