/*
 * terminology.c - token :in, :not-in, :above and :below against the ValueSets and
 * CodeSystems stored on this server. A clause's ValueSets (or a code's ancestors or
 * descendants) become the list of (system, code) pairs it stands for, which the store tests
 * as one list (clause->codes). The terminology resources are ordinary resources, read
 * through the store at search time, so a search sees the current versions.
 */
#include <stdlib.h>
#include <string.h>

#include "base/jv.h"
#include "repo/repo.h"

typedef struct {
    const char *system, *code;
} code_t;

typedef struct {
    code_t *items;
    size_t n, cap;
} codes_t;

/* A CodeSystem's concepts and the hierarchy between them. */
typedef struct {
    const char *code;
    const json_t *concept;
} concept_t;

typedef struct {
    size_t parent, child;
} edge_t;

typedef struct codesystem {
    const char *canonical; /* as asked: url or url|version */
    const json_t *resource;
    const char *url;
    concept_t *concepts; /* sorted by code */
    size_t n;
    edge_t *down, *up; /* edges sorted by parent, and by child */
    size_t nedges;
    struct codesystem *next;
} codesystem_t;

/* A ValueSet's codes, once expanded (a ValueSet included twice is expanded once). */
typedef struct expanded {
    const char *reference;
    codes_t codes; /* sorted, unique */
    struct expanded *next;
} expanded_t;

typedef struct {
    store_conn_t *conn;
    arena_t *arena;
    codesystem_t *codesystems; /* loaded so far */
    expanded_t *valuesets;     /* expanded so far */
    int loads;                 /* resources read, at most REPO_TERMINOLOGY_MAX_RESOURCES */
    const char *missing;       /* why the clause cannot be resolved (unknown terminology) */
} resolver_t;

static void decref(void *p)
{
    json_decref(p);
}

/* ---- code lists ---------------------------------------------------------------------- */

static void codes_add(resolver_t *r, codes_t *c, const char *system, const char *code)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        code_t *items = arena_alloc(r->arena, cap * sizeof(*items));
        if (c->n)
            memcpy(items, c->items, c->n * sizeof(*items));
        c->items = items;
        c->cap = cap;
    }
    c->items[c->n++] = (code_t){system, code};
}

static int code_cmp(const void *a, const void *b)
{
    const code_t *x = a, *y = b;
    int s = strcmp(x->system, y->system);
    return s ? s : strcmp(x->code, y->code);
}

static void codes_unique(codes_t *c)
{
    if (c->n < 2)
        return;
    qsort(c->items, c->n, sizeof(*c->items), code_cmp);
    size_t k = 1;
    for (size_t i = 1; i < c->n; i++)
        if (code_cmp(&c->items[i], &c->items[k - 1]))
            c->items[k++] = c->items[i];
    c->n = k;
}

/* Keeps the codes of c that are (keep true) or are not (keep false) in sorted, unique s. */
static void codes_filter(codes_t *c, const codes_t *s, bool keep)
{
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++) {
        bool in = s->n && bsearch(&c->items[i], s->items, s->n, sizeof(*s->items), code_cmp);
        if (in == keep)
            c->items[k++] = c->items[i];
    }
    c->n = k;
}

static void codes_append(resolver_t *r, codes_t *c, const codes_t *more)
{
    for (size_t i = 0; i < more->n; i++)
        codes_add(r, c, more->items[i].system, more->items[i].code);
}

static status_t codes_check(const codes_t *c, const char *what, err_t *err)
{
    if (c->n > REPO_TERMINOLOGY_MAX_CODES)
        return err_set(err, ERR_INVALID, NULL,
                       "%s has more than %d codes, more than a search can test", what,
                       REPO_TERMINOLOGY_MAX_CODES);
    return ERR_OK;
}

/* ---- reading stored terminology ------------------------------------------------------- */

static const char *string_member(const json_t *object, const char *name)
{
    const json_t *v = json_object_get(object, name);
    return jv_is_string(v) ? json_string_value(v) : NULL;
}

/* s (len bytes) as one search value: the characters search syntax gives a meaning (, $ | \)
 * escaped. */
static const char *search_escape(arena_t *arena, const char *s, size_t len, size_t *out_len)
{
    char *out = arena_alloc(arena, 2 * len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] && strchr(",$|\\", s[i]))
            out[n++] = '\\';
        out[n++] = s[i];
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

/* The current resource of `type` with canonical "url[|version]" (the one updated last when
 * several match), or "Type/id"; NULL when there is none. */
static status_t load(resolver_t *r, const char *type, const char *reference, json_t **out,
                     err_t *err)
{
    *out = NULL;
    if (++r->loads > REPO_TERMINOLOGY_MAX_RESOURCES)
        return err_set(err, ERR_INVALID, NULL,
                       "reading %s \"%s\" would pass the %d ValueSets and CodeSystems one "
                       "search parameter may read",
                       type, reference, REPO_TERMINOLOGY_MAX_RESOURCES);
    size_t tlen = strlen(type);
    const char *json = NULL;
    size_t json_len = 0;
    status_t rc;
    if (strncmp(reference, type, tlen) == 0 && reference[tlen] == '/') {
        const char *id = reference + tlen + 1;
        if (!repo_id_valid(id, strlen(id)))
            return ERR_OK; /* no such resource */
        store_version_t v;
        err_t read_err = ERR_INIT;
        rc = repo_read(r->conn, type, id, 0, r->arena, &v, &read_err);
        if (rc == ERR_NOT_FOUND || rc == ERR_GONE) {
            err_release(&read_err);
            return ERR_OK;
        }
        if (rc) {
            err_move(err, &read_err);
            return rc;
        }
        json = v.json;
        json_len = v.json_len;
    } else {
        const char *bar = strchr(reference, '|');
        size_t url_len, version_len = 0;
        const char *url = search_escape(
            r->arena, reference, bar ? (size_t)(bar - reference) : strlen(reference), &url_len);
        const char *version =
            bar ? search_escape(r->arena, bar + 1, strlen(bar + 1), &version_len) : "";
        fhir_search_pair_t pairs[4] = {
            {"url", 3, url, url_len},
            {"_sort", 5, "-_lastUpdated", 13},
            {"_count", 6, "1", 1},
            {"version", 7, version, version_len},
        };
        fhir_search_query_t query = {.pairs = pairs, .npairs = bar ? 4 : 3, .strict = true};
        fhir_search_plan_t *plan;
        if ((rc = fhir_search_parse(repo_params_registry(), fhir_type_find(type, tlen), &query,
                                    r->arena, &plan, err)))
            return rc;
        store_search_t search = {.plan = plan};
        store_search_result_t result;
        if ((rc = store_search(r->conn, &search, r->arena, &result, err)))
            return rc;
        if (result.nmatch == 0)
            return ERR_OK;
        json = result.entries[0].version.json;
        json_len = result.entries[0].version.json_len;
    }
    err_t parse_err = ERR_INIT;
    json_t *resource = jv_parse(json, json_len, &parse_err);
    err_release(&parse_err);
    if (!resource)
        return ERR_OK;
    arena_cleanup_add(r->arena, decref, resource);
    *out = resource;
    return ERR_OK;
}

static int concept_cmp(const void *a, const void *b)
{
    return strcmp(((const concept_t *)a)->code, ((const concept_t *)b)->code);
}

static int down_cmp(const void *a, const void *b)
{
    const edge_t *x = a, *y = b;
    return x->parent < y->parent ? -1 : x->parent > y->parent;
}

static int up_cmp(const void *a, const void *b)
{
    const edge_t *x = a, *y = b;
    return x->child < y->child ? -1 : x->child > y->child;
}

static void collect_concepts(resolver_t *r, const json_t *concepts, codes_t *flat,
                             const json_t ***owners, size_t *cap)
{
    size_t i;
    const json_t *c;
    json_array_foreach(concepts, i, c)
    {
        const char *code = string_member(c, "code");
        if (!code)
            continue;
        if (flat->n == *cap) {
            size_t ncap = *cap ? 2 * *cap : 64;
            const json_t **o = arena_alloc(r->arena, ncap * sizeof(*o));
            if (flat->n)
                memcpy(o, *owners, flat->n * sizeof(*o));
            *owners = o;
            *cap = ncap;
        }
        (*owners)[flat->n] = c;
        codes_add(r, flat, "", code);
        collect_concepts(r, json_object_get(c, "concept"), flat, owners, cap);
    }
}

static ssize_t concept_find(const codesystem_t *cs, const char *code)
{
    concept_t key = {.code = code};
    const concept_t *hit = bsearch(&key, cs->concepts, cs->n, sizeof(key), concept_cmp);
    return hit ? hit - cs->concepts : -1;
}

/* The code of a property value (valueCode, valueCoding.code, valueString, ...), or NULL. */
static const char *property_value(resolver_t *r, const json_t *property)
{
    const char *s;
    if ((s = string_member(property, "valueCode")) || (s = string_member(property, "valueString")))
        return s;
    const json_t *coding = json_object_get(property, "valueCoding");
    if (coding)
        return string_member(coding, "code");
    const json_t *b = json_object_get(property, "valueBoolean");
    if (json_is_boolean(b))
        return json_is_true(b) ? "true" : "false";
    const json_t *i = json_object_get(property, "valueInteger");
    if (json_is_integer(i))
        return arena_printf(r->arena, "%lld", (long long)json_integer_value(i));
    const json_t *d = json_object_get(property, "valueDecimal");
    if (d && jv_is_decimal(d)) {
        size_t len;
        const char *text = jv_decimal_text(d, &len);
        return arena_strndup(r->arena, text, len);
    }
    return NULL;
}

/* Adds the edge for each concept of concepts (nested in parent, or top level when parent is
 * (size_t)-1) and its subconcepts. */
static void nested_edges(resolver_t *r, codesystem_t *cs, const json_t *concepts, ssize_t parent,
                         edge_t *edges, size_t *n)
{
    size_t i;
    const json_t *c;
    json_array_foreach(concepts, i, c)
    {
        const char *code = string_member(c, "code");
        if (!code)
            continue;
        ssize_t at = concept_find(cs, code);
        if (parent >= 0 && at >= 0)
            edges[(*n)++] = (edge_t){(size_t)parent, (size_t)at};
        nested_edges(r, cs, json_object_get(c, "concept"), at, edges, n);
    }
}

static size_t count_edges(const json_t *concepts)
{
    size_t n = 0, i;
    const json_t *c;
    json_array_foreach(concepts, i, c)
    {
        n += 1 + count_edges(json_object_get(c, "concept"));
        n += json_array_size(json_object_get(c, "property"));
    }
    return n;
}

/* The stored CodeSystem with canonical url[|version], its hierarchy from nested concepts and
 * the parent, child and subsumedBy properties; NULL when there is none. */
static status_t codesystem(resolver_t *r, const char *canonical, codesystem_t **out, err_t *err)
{
    *out = NULL;
    for (codesystem_t *cs = r->codesystems; cs; cs = cs->next)
        if (strcmp(cs->canonical, canonical) == 0) {
            *out = cs;
            return ERR_OK;
        }
    json_t *resource;
    status_t rc = load(r, "CodeSystem", canonical, &resource, err);
    if (rc || !resource)
        return rc;
    codesystem_t *cs = arena_zalloc(r->arena, sizeof(*cs));
    cs->canonical = arena_strdup(r->arena, canonical);
    cs->resource = resource;
    cs->url = string_member(resource, "url");
    const json_t *concepts = json_object_get(resource, "concept");
    codes_t flat = {0};
    const json_t **owners = NULL;
    size_t cap = 0;
    collect_concepts(r, concepts, &flat, &owners, &cap);
    cs->concepts = arena_alloc(r->arena, (flat.n ? flat.n : 1) * sizeof(*cs->concepts));
    for (size_t i = 0; i < flat.n; i++)
        cs->concepts[i] = (concept_t){flat.items[i].code, owners[i]};
    qsort(cs->concepts, flat.n, sizeof(*cs->concepts), concept_cmp);
    /* a code defined twice keeps its first definition */
    size_t k = 0;
    for (size_t i = 0; i < flat.n; i++)
        if (!k || strcmp(cs->concepts[i].code, cs->concepts[k - 1].code))
            cs->concepts[k++] = cs->concepts[i];
    cs->n = k;

    size_t max = count_edges(concepts) + 1, n = 0;
    edge_t *edges = arena_alloc(r->arena, max * sizeof(*edges));
    nested_edges(r, cs, concepts, -1, edges, &n);
    for (size_t i = 0; i < cs->n; i++) {
        size_t j;
        const json_t *p;
        json_array_foreach(json_object_get(cs->concepts[i].concept, "property"), j, p)
        {
            const char *name = string_member(p, "code");
            const char *value = property_value(r, p);
            if (!name || !value)
                continue;
            bool up = strcmp(name, "parent") == 0 || strcmp(name, "subsumedBy") == 0;
            bool down = strcmp(name, "child") == 0;
            ssize_t other = (up || down) ? concept_find(cs, value) : -1;
            if (other >= 0 && n < max)
                edges[n++] = up ? (edge_t){(size_t)other, i} : (edge_t){i, (size_t)other};
        }
    }
    cs->nedges = n;
    cs->down = edges;
    cs->up = arena_alloc(r->arena, (n ? n : 1) * sizeof(*edges));
    memcpy(cs->up, edges, n * sizeof(*edges));
    qsort(cs->down, n, sizeof(*edges), down_cmp);
    qsort(cs->up, n, sizeof(*edges), up_cmp);
    cs->next = r->codesystems;
    r->codesystems = cs;
    *out = cs;
    return ERR_OK;
}

/* The concepts reachable from `from` going down (descendants) or up (ancestors), `from`
 * included when self. */
static void closure(resolver_t *r, const codesystem_t *cs, size_t from, bool down, bool self,
                    codes_t *out)
{
    bool *seen = arena_zalloc(r->arena, cs->n ? cs->n : 1);
    size_t *queue = arena_alloc(r->arena, (cs->n ? cs->n : 1) * sizeof(*queue));
    size_t head = 0, tail = 0;
    queue[tail++] = from;
    seen[from] = true;
    const edge_t *edges = down ? cs->down : cs->up;
    while (head < tail) {
        size_t at = queue[head++];
        if (at != from || self)
            codes_add(r, out, cs->url, cs->concepts[at].code);
        /* the edges of `at`: a binary search for the first, then the run */
        size_t lo = 0, hi = cs->nedges;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            size_t key = down ? edges[mid].parent : edges[mid].child;
            if (key < at)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (size_t e = lo; e < cs->nedges; e++) {
            size_t key = down ? edges[e].parent : edges[e].child;
            if (key != at)
                break;
            size_t next = down ? edges[e].child : edges[e].parent;
            if (!seen[next]) {
                seen[next] = true;
                queue[tail++] = next;
            }
        }
    }
}

/* A CodeSystem stored without its concepts (content not-present) cannot answer. */
static status_t check_content(const codesystem_t *cs, const char *what, err_t *err)
{
    const char *content = string_member(cs->resource, "content");
    if (content && strcmp(content, "not-present") == 0)
        return err_set(err, ERR_INVALID, NULL,
                       "%s needs the concepts of CodeSystem \"%s\", which is stored without them "
                       "(content not-present)",
                       what, cs->url ? cs->url : "");
    return ERR_OK;
}

static void all_codes(resolver_t *r, const codesystem_t *cs, codes_t *out)
{
    for (size_t i = 0; i < cs->n; i++)
        codes_add(r, out, cs->url, cs->concepts[i].code);
}

/* ---- ValueSets ------------------------------------------------------------------------ */

static status_t valueset_codes(resolver_t *r, const char *reference, int depth, codes_t *out,
                               err_t *err);

static void expansion_codes(resolver_t *r, const json_t *contains, codes_t *out)
{
    size_t i;
    const json_t *c;
    json_array_foreach(contains, i, c)
    {
        const char *system = string_member(c, "system"), *code = string_member(c, "code");
        if (system && code)
            codes_add(r, out, system, code);
        expansion_codes(r, json_object_get(c, "contains"), out);
    }
}

/* The codes of one filter of an include of system cs. */
static status_t filter_codes(resolver_t *r, const char *name, const codesystem_t *cs,
                             const json_t *filter, codes_t *out, err_t *err)
{
    const char *property = string_member(filter, "property");
    const char *op = string_member(filter, "op");
    const char *value = string_member(filter, "value");
    if (!property || !op || !value)
        return err_set(err, ERR_INVALID, NULL,
                       "ValueSet \"%s\" has a filter without property, op or value", name);
    bool hierarchy = strcmp(property, "concept") == 0 || strcmp(property, "code") == 0;
    if (hierarchy && (strcmp(op, "is-a") == 0 || strcmp(op, "descendent-of") == 0 ||
                      strcmp(op, "is-not-a") == 0)) {
        ssize_t at = concept_find(cs, value);
        codes_t below = {0};
        if (at >= 0)
            closure(r, cs, (size_t)at, true, strcmp(op, "descendent-of") != 0, &below);
        if (strcmp(op, "is-not-a") != 0) {
            codes_append(r, out, &below);
            return ERR_OK;
        }
        codes_t all = {0};
        all_codes(r, cs, &all);
        codes_unique(&below);
        codes_filter(&all, &below, false);
        codes_append(r, out, &all);
        return ERR_OK;
    }
    if (!hierarchy && strcmp(op, "=") == 0) {
        bool known = false;
        size_t i;
        const json_t *p;
        json_array_foreach(json_object_get(cs->resource, "property"), i, p)
        {
            const char *code = string_member(p, "code");
            known = known || (code && strcmp(code, property) == 0);
        }
        for (size_t c = 0; c < cs->n; c++) {
            json_array_foreach(json_object_get(cs->concepts[c].concept, "property"), i, p)
            {
                const char *code = string_member(p, "code");
                if (!code || strcmp(code, property) != 0)
                    continue;
                known = true;
                const char *v = property_value(r, p);
                if (v && strcmp(v, value) == 0) {
                    codes_add(r, out, cs->url, cs->concepts[c].code);
                    break;
                }
            }
        }
        if (!known)
            return err_set(err, ERR_INVALID, NULL,
                           "ValueSet \"%s\" filters on property \"%s\", which CodeSystem \"%s\" "
                           "does not define",
                           name, property, cs->url);
        return ERR_OK;
    }
    return err_set(err, ERR_INVALID, NULL,
                   "ValueSet \"%s\" has the filter \"%s %s %s\", which this server cannot "
                   "compute (is-a, descendent-of and is-not-a on concept, = on a property)",
                   name, property, op, value);
}

/* The codes of one compose.include or compose.exclude. */
static status_t include_codes(resolver_t *r, const char *name, const json_t *include, int depth,
                              codes_t *out, err_t *err)
{
    const char *system = string_member(include, "system");
    const char *version = string_member(include, "version");
    const json_t *concepts = json_object_get(include, "concept");
    const json_t *filters = json_object_get(include, "filter");
    const json_t *valuesets = json_object_get(include, "valueSet");
    status_t rc;
    if (!system && !json_array_size(valuesets))
        return err_set(err, ERR_INVALID, NULL,
                       "ValueSet \"%s\" has an include or exclude with neither system nor "
                       "valueSet",
                       name);
    codes_t set = {0};
    bool have = false;
    if (system) {
        if (json_array_size(concepts)) {
            size_t i;
            const json_t *c;
            json_array_foreach(concepts, i, c)
            {
                const char *code = string_member(c, "code");
                if (code)
                    codes_add(r, &set, system, code);
            }
        }
        if (!json_array_size(concepts) || json_array_size(filters)) {
            const char *canonical =
                version ? arena_printf(r->arena, "%s|%s", system, version) : system;
            codesystem_t *cs;
            if ((rc = codesystem(r, canonical, &cs, err)))
                return rc;
            if (!cs) {
                r->missing = arena_printf(r->arena,
                                          "ValueSet \"%s\" includes code system \"%s\", which "
                                          "has no CodeSystem on this server",
                                          name, canonical);
                return ERR_OK;
            }
            if ((rc = check_content(cs, arena_printf(r->arena, "ValueSet \"%s\"", name), err)))
                return rc;
            if (!json_array_size(concepts))
                all_codes(r, cs, &set);
            size_t i;
            const json_t *f;
            json_array_foreach(filters, i, f)
            {
                codes_t matched = {0};
                if ((rc = filter_codes(r, name, cs, f, &matched, err)))
                    return rc;
                codes_unique(&matched);
                codes_filter(&set, &matched, true);
            }
        }
        have = true;
    }
    size_t i;
    const json_t *v;
    json_array_foreach(valuesets, i, v)
    {
        if (!jv_is_string(v))
            continue;
        codes_t other = {0};
        if ((rc = valueset_codes(r, json_string_value(v), depth + 1, &other, err)))
            return rc;
        if (r->missing)
            return ERR_OK;
        codes_unique(&other);
        if (have) {
            codes_filter(&set, &other, true);
        } else {
            set = other;
            have = true;
        }
    }
    codes_unique(&set);
    if ((rc = codes_check(&set, arena_printf(r->arena, "ValueSet \"%s\"", name), err)))
        return rc;
    codes_append(r, out, &set);
    return ERR_OK;
}

static status_t valueset_expand(resolver_t *r, const char *reference, int depth, codes_t *out,
                                err_t *err)
{
    if (depth > REPO_TERMINOLOGY_MAX_DEPTH)
        return err_set(err, ERR_INVALID, NULL,
                       "ValueSet \"%s\" is included more than %d ValueSets deep (a cycle?)",
                       reference, REPO_TERMINOLOGY_MAX_DEPTH);
    json_t *vs;
    status_t rc = load(r, "ValueSet", reference, &vs, err);
    if (rc)
        return rc;
    if (!vs) {
        r->missing = arena_printf(r->arena, "ValueSet \"%s\" is not on this server", reference);
        return ERR_OK;
    }
    const json_t *expansion = json_object_get(vs, "expansion");
    if (expansion) {
        expansion_codes(r, json_object_get(expansion, "contains"), out);
        return ERR_OK;
    }
    const json_t *compose = json_object_get(vs, "compose");
    codes_t included = {0}, excluded = {0};
    size_t i;
    const json_t *part;
    json_array_foreach(json_object_get(compose, "include"), i, part)
    {
        if ((rc = include_codes(r, reference, part, depth, &included, err)) || r->missing)
            return rc;
        codes_unique(&included);
        if ((rc =
                 codes_check(&included, arena_printf(r->arena, "ValueSet \"%s\"", reference), err)))
            return rc;
    }
    json_array_foreach(json_object_get(compose, "exclude"), i, part)
    {
        if ((rc = include_codes(r, reference, part, depth, &excluded, err)) || r->missing)
            return rc;
    }
    codes_unique(&excluded);
    codes_filter(&included, &excluded, false);
    codes_append(r, out, &included);
    return ERR_OK;
}

/* A ValueSet's codes, appended to out: expanded once per clause, then remembered. */
static status_t valueset_codes(resolver_t *r, const char *reference, int depth, codes_t *out,
                               err_t *err)
{
    for (expanded_t *e = r->valuesets; e; e = e->next)
        if (strcmp(e->reference, reference) == 0) {
            codes_append(r, out, &e->codes);
            return ERR_OK;
        }
    codes_t codes = {0};
    status_t rc = valueset_expand(r, reference, depth, &codes, err);
    if (rc || r->missing)
        return rc;
    codes_unique(&codes);
    expanded_t *e = arena_zalloc(r->arena, sizeof(*e));
    e->reference = arena_strdup(r->arena, reference);
    e->codes = codes;
    e->next = r->valuesets;
    r->valuesets = e;
    codes_append(r, out, &codes);
    return ERR_OK;
}

/* ---- clauses -------------------------------------------------------------------------- */

static bool is_terminology(const fhir_search_clause_t *clause)
{
    fhir_search_modifier_t m = clause->modifier;
    return clause->kind == FHIR_SEARCH_CLAUSE_PARAM && clause->param->type == FHIR_SEARCH_TOKEN &&
           (m == FHIR_SEARCH_MOD_IN || m == FHIR_SEARCH_MOD_NOT_IN || m == FHIR_SEARCH_MOD_ABOVE ||
            m == FHIR_SEARCH_MOD_BELOW);
}

/* The codes of one :above or :below value: the code and its ancestors or descendants. */
static status_t hierarchy_codes(resolver_t *r, const fhir_search_clause_t *clause,
                                const fhir_search_value_t *v, codes_t *out, err_t *err)
{
    const char *modifier = fhir_search_modifier_name(clause->modifier);
    if (!v->as.token.system || !*v->as.token.system || !v->as.token.code) {
        r->missing = arena_printf(r->arena, "\"%s:%s\" needs system|code, not \"%s\"",
                                  clause->param->code, modifier, v->text);
        return ERR_OK;
    }
    codesystem_t *cs;
    status_t rc = codesystem(r, v->as.token.system, &cs, err);
    if (rc)
        return rc;
    if (!cs) {
        r->missing = arena_printf(r->arena,
                                  "code system \"%s\" of \"%s:%s\" has no CodeSystem on this "
                                  "server",
                                  v->as.token.system, clause->param->code, modifier);
        return ERR_OK;
    }
    if ((rc = check_content(cs, arena_printf(r->arena, "\"%s:%s\"", clause->param->code, modifier),
                            err)))
        return rc;
    ssize_t at = concept_find(cs, v->as.token.code);
    if (at < 0)
        codes_add(r, out, v->as.token.system, v->as.token.code);
    else
        closure(r, cs, (size_t)at, clause->modifier == FHIR_SEARCH_MOD_BELOW, true, out);
    return ERR_OK;
}

static status_t resolve(resolver_t *r, fhir_search_clause_t *clause, err_t *err)
{
    status_t rc;
    if (clause->kind == FHIR_SEARCH_CLAUSE_CHAIN || clause->kind == FHIR_SEARCH_CLAUSE_HAS) {
        for (size_t i = 0; i < clause->nnext && !r->missing; i++)
            if ((rc = resolve(r, &clause->next[i], err)))
                return rc;
        return ERR_OK;
    }
    if (!is_terminology(clause) || clause->codes)
        return ERR_OK;
    codes_t codes = {0};
    bool in = clause->modifier == FHIR_SEARCH_MOD_IN || clause->modifier == FHIR_SEARCH_MOD_NOT_IN;
    for (size_t i = 0; i < clause->nvalues && !r->missing; i++) {
        const fhir_search_value_t *v = &clause->values[i];
        rc = in ? valueset_codes(r, v->as.uri.value, 0, &codes, err)
                : hierarchy_codes(r, clause, v, &codes, err);
        if (rc)
            return rc;
        codes_unique(&codes);
        if ((rc = codes_check(
                 &codes, arena_printf(r->arena, "\"%s\"", in ? v->as.uri.value : v->text), err)))
            return rc;
    }
    if (r->missing) {
        if (in)
            r->missing = arena_printf(r->arena, "%s (\"%s:%s\")", r->missing, clause->param->code,
                                      fhir_search_modifier_name(clause->modifier));
        return ERR_OK;
    }
    json_t *array = json_array();
    for (size_t i = 0; i < codes.n; i++)
        json_array_append_new(array, json_pack("[ss]", codes.items[i].system, codes.items[i].code));
    char *text = json_dumps(array, JSON_COMPACT);
    json_decref(array);
    clause->codes = arena_strdup(r->arena, text);
    clause->ncodes = codes.n;
    free(text);
    return ERR_OK;
}

status_t repo__terminology_resolve(store_conn_t *conn, fhir_search_clause_t *clause, arena_t *arena,
                                   const char **out_missing, err_t *err)
{
    resolver_t r = {.conn = conn, .arena = arena};
    *out_missing = NULL;
    status_t rc = resolve(&r, clause, err);
    if (rc)
        return rc;
    *out_missing = r.missing;
    return ERR_OK;
}
