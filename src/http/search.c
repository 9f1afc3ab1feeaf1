/*
 * search.c - FHIR search over HTTP: GET [type]?..., POST [type]/_search (form body),
 * GET ?_type=... and POST _search (all types), GET [compartment]/[id]/[type]?... .
 *
 * The query (and the form of a POST) becomes decoded pairs for repo_search; the result
 * becomes a searchset Bundle (repo/searchset.h) whose links keep the client's _format and
 * _pretty. Errors travel back to fhir.c, which answers them as OperationOutcomes.
 */
#include <string.h>

#include "base/clock.h"
#include "base/url.h"
#include "fhir/compartment.h"
#include "fhir/defs.h"
#include "http/http_int.h"
#include "repo/repo.h"
#include "repo/searchset.h"

#define FORM_TYPE "application/x-www-form-urlencoded"

static bool segment_is(arena_t *arena, h2o_iovec_t seg, const char *s)
{
    return strcmp(url_decode(arena, seg.base, seg.len, false, NULL), s) == 0;
}

static const fhir_type_t *segment_type(arena_t *arena, h2o_iovec_t seg)
{
    size_t n;
    const char *name = url_decode(arena, seg.base, seg.len, false, &n);
    return fhir_resource_type_find(name, n);
}

static bool method_is(h2o_req_t *req, const char *m)
{
    return req->method.len == strlen(m) && memcmp(req->method.base, m, req->method.len) == 0;
}

/* What a search request names: the type, a compartment, whether the body is a form. */
typedef struct {
    bool search;
    bool form;
    const fhir_type_t *type;
    const char *compartment, *compartment_id;
} target_t;

static target_t classify(arena_t *arena, h2o_req_t *req, const h2o_iovec_t *seg, size_t nseg)
{
    target_t t = {0};
    bool get = method_is(req, "GET") || method_is(req, "HEAD");
    bool post = method_is(req, "POST");
    size_t n = nseg;
    if (post) {
        /* POST .../_search: the same search with its parameters in a form */
        if (n == 0 || !segment_is(arena, seg[n - 1], "_search"))
            return t;
        n--;
        t.form = true;
    } else if (!get) {
        return t;
    }
    if (n == 0) {
        t.search = true;
    } else if (n == 1) {
        t.type = segment_type(arena, seg[0]);
        t.search = t.type != NULL;
    } else if (n == 3) {
        const fhir_type_t *compartment = segment_type(arena, seg[0]);
        size_t idlen;
        const char *id = url_decode(arena, seg[1].base, seg[1].len, false, &idlen);
        t.type = segment_type(arena, seg[2]);
        t.search = compartment && t.type && fhir_compartment_exists(compartment->name) &&
                   repo_id_valid(id, idlen);
        t.compartment = compartment ? compartment->name : NULL;
        t.compartment_id = id;
    }
    return t;
}

bool http__is_search(h2o_req_t *req, const h2o_iovec_t *seg, size_t nseg)
{
    arena_t arena;
    arena_init(&arena);
    bool search = classify(&arena, req, seg, nseg).search;
    arena_release(&arena);
    return search;
}

/* ---- pairs --------------------------------------------------------------------------- */

typedef struct {
    fhir_search_pair_t *items;
    size_t n, cap;
    const char *page;   /* _page: the cursor */
    const char *format; /* _format and _pretty, kept for the links */
    const char *pretty;
} pairs_t;

static void pairs_add(arena_t *arena, pairs_t *p, const char *name, size_t name_len,
                      const char *value, size_t value_len)
{
    if (name_len == 5 && memcmp(name, "_page", 5) == 0) {
        p->page = value;
        return;
    }
    if (name_len == 7 && memcmp(name, "_format", 7) == 0)
        p->format = value;
    if (name_len == 7 && memcmp(name, "_pretty", 7) == 0)
        p->pretty = value;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        fhir_search_pair_t *items = arena_alloc(arena, cap * sizeof(*items));
        if (p->n)
            memcpy(items, p->items, p->n * sizeof(*items));
        p->items = items;
        p->cap = cap;
    }
    p->items[p->n++] = (fhir_search_pair_t){name, name_len, value, value_len};
}

/* Splits an application/x-www-form-urlencoded body into pairs. */
static void parse_form(arena_t *arena, const char *s, size_t len, pairs_t *out)
{
    url_pair_t *pairs;
    size_t n = url_query_split(arena, s, len, &pairs);
    for (size_t i = 0; i < n; i++)
        pairs_add(arena, out, pairs[i].name, pairs[i].name_len, pairs[i].value, pairs[i].value_len);
}

static h2o_iovec_t header_value(h2o_req_t *req, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (i < 0)
        return h2o_iovec_init(NULL, 0);
    return req->headers.entries[i].value;
}

static status_t read_form(const http_search_request_t *r, pairs_t *out, err_t *err)
{
    h2o_req_t *req = r->req;
    size_t max = r->thread->server->config.max_body;
    if (req->entity.len > max)
        return err_set(err, ERR_TOO_LARGE, NULL,
                       "the body is %zu bytes, over the limit of %zu bytes (setting max-body)",
                       req->entity.len, max);
    h2o_iovec_t type = header_value(req, "content-type");
    if (type.base) {
        size_t n = 0;
        while (n < type.len && type.base[n] != ';' && type.base[n] != ' ')
            n++;
        if (n != strlen(FORM_TYPE) || strncasecmp(type.base, FORM_TYPE, n) != 0)
            return err_set(err, ERR_MEDIA_TYPE, NULL,
                           "a search by POST sends its parameters as " FORM_TYPE ", not \"%s\"",
                           arena_strndup(r->arena, type.base, type.len));
    }
    if (req->entity.base && req->entity.len)
        parse_form(r->arena, req->entity.base, req->entity.len, out);
    return ERR_OK;
}

/* Prefer: handling=strict (the default is lenient). */
static bool strict_handling(h2o_req_t *req)
{
    for (ssize_t i = -1; (i = h2o_find_header_by_str(&req->headers, "prefer", 6, i)) >= 0;) {
        h2o_iovec_t v = req->headers.entries[i].value;
        for (size_t k = 0; k + 15 <= v.len; k++)
            if (strncasecmp(v.base + k, "handling=strict", 15) == 0)
                return true;
    }
    return false;
}

/* ---- the Bundle ---------------------------------------------------------------------- */

/* _format and _pretty as the client sent them, kept in every link. */
static const char *link_extra(arena_t *arena, const pairs_t *pairs)
{
    static const char *const kept[] = {"_format", "_pretty"};
    const char *values[] = {pairs->format, pairs->pretty};
    buf_t out = BUF_INIT;
    for (int i = 0; i < 2; i++) {
        if (!values[i])
            continue;
        buf_addf(&out, "%s%s=", out.len ? "&" : "", kept[i]);
        for (const char *c = values[i]; *c; c++) {
            if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                *c == '/' || *c == '-' || *c == '.')
                buf_addch(&out, *c);
            else
                buf_addf(&out, "%%%02X", (unsigned char)*c);
        }
    }
    const char *extra = out.len ? arena_strndup(arena, out.ptr, out.len) : NULL;
    buf_release(&out);
    return extra;
}

static void bundle(const http_search_request_t *r, const target_t *t, const pairs_t *pairs,
                   const fhir_search_plan_t *plan, const store_search_result_t *res, buf_t *out)
{
    arena_t *arena = r->arena;
    repo_searchset_links_t links = {
        .base = r->base,
        .url_head = t->compartment ? arena_printf(arena, "%s/%s/%s/%s", r->base, t->compartment,
                                                  t->compartment_id, t->type->name)
                    : t->type      ? arena_printf(arena, "%s/%s", r->base, t->type->name)
                                   : r->base,
        .page = pairs->page,
        .extra = link_extra(arena, pairs),
    };
    repo_searchset(plan, res, &links, out);
}

status_t http__search(const http_search_request_t *r, const h2o_iovec_t *seg, size_t nseg,
                      buf_t *out, err_t *err)
{
    target_t t = classify(r->arena, r->req, seg, nseg);
    if (!t.search)
        return err_set(err, ERR_NOT_FOUND, NULL, "no such search");
    pairs_t pairs = {0};
    for (size_t i = 0; i < r->nparams; i++)
        pairs_add(r->arena, &pairs, r->params[i].name, r->params[i].name_len, r->params[i].value,
                  r->params[i].value_len);
    status_t rc;
    if (t.form && (rc = read_form(r, &pairs, err)))
        return rc;
    repo_search_t search = {.type = t.type,
                            .pairs = pairs.items,
                            .npairs = pairs.n,
                            .strict = strict_handling(r->req),
                            .now_us = clock_now_us(),
                            .base = r->base,
                            .page = pairs.page,
                            .compartment_type = t.compartment,
                            .compartment_id = t.compartment_id,
                            .caller = r->caller};
    fhir_search_plan_t *plan;
    store_search_result_t result;
    if ((rc = repo_search(r->thread->search_conn, &search, r->arena, &plan, &result, err)))
        return rc;
    bundle(r, &t, &pairs, plan, &result, out);
    if (r->result)
        *r->result = result;
    return ERR_OK;
}
