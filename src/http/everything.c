/*
 * everything.c - Patient/[id]/$everything and Patient/$everything over HTTP (GET, and POST
 * with the parameters in the query or in a Parameters body): the parameters _since, _type,
 * _count and _page become a repo_everything query, the page a searchset Bundle built from the
 * stored JSON of each entry, with a next link carrying the store's cursor in _page.
 */
#include <string.h>

#include "base/jv.h"
#include "http/http_int.h"
#include "repo/repo.h"

/* Appends s percent-encoded for a query value. */
static void add_query_value(buf_t *out, const char *s)
{
    for (const char *c = s; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            strchr("-._~:,", *c))
            buf_addch(out, *c);
        else
            buf_addf(out, "%%%02X", (unsigned char)*c);
    }
}

static void add_link(buf_t *out, const char *relation, const char *url_head,
                     const http_everything_t *e, const char *page)
{
    buf_addf(out, "{\"relation\":\"%s\",\"url\":\"", relation);
    buf_add_json_escaped(out, url_head, strlen(url_head));
    const char *names[] = {"_since", "_type", "_count", "_page"};
    const char *values[] = {e->since, e->types, e->count, page};
    char sep = '?';
    for (int i = 0; i < 4; i++) {
        if (!values[i])
            continue;
        buf_addf(out, "%c%s=", sep, names[i]);
        add_query_value(out, values[i]);
        sep = '&';
    }
    buf_addstr(out, "\"}");
}

typedef struct {
    const http_search_request_t *r;
    http_everything_t *e;
} body_t;

/* One parameter of a POST body: _since, _type or _count. */
static status_t body_param(void *arg, const char *n, const json_t *p, const char *where, err_t *err)
{
    body_t *b = arg;
    json_t *v = NULL;
    const char **slot = NULL;
    if (!strcmp(n, "_since")) {
        slot = &b->e->since;
        v = json_object_get(p, "valueInstant");
        if (!v)
            v = json_object_get(p, "valueDateTime");
    } else if (!strcmp(n, "_type")) {
        slot = &b->e->types;
        v = json_object_get(p, "valueString");
        if (!v)
            v = json_object_get(p, "valueCode");
    } else if (!strcmp(n, "_count")) {
        slot = &b->e->count;
        v = json_object_get(p, "valueInteger");
        if (json_is_integer(v)) {
            b->e->count = arena_printf(b->r->arena, "%lld", (long long)json_integer_value(v));
            return ERR_OK;
        }
    } else {
        return err_set(err, ERR_INVALID, where,
                       "$everything has no parameter \"%s\" (_since, _type, _count)", n);
    }
    if (!jv_is_string(v))
        return err_set(err, ERR_INVALID, where, "the %s parameter has no value of the right type",
                       n);
    *slot = arena_strdup(b->r->arena, json_string_value(v));
    return ERR_OK;
}

/* The parameters of a POST body: a Parameters resource. */
static status_t read_body(const http_search_request_t *r, http_everything_t *e, err_t *err)
{
    body_t b = {r, e};
    return http__parameters_body(r, "$everything", body_param, &b, err);
}

status_t http__everything(const http_search_request_t *r, http_everything_t *e, buf_t *out,
                          err_t *err)
{
    status_t rc;
    if (e->post && (rc = read_body(r, e, err)))
        return rc;
    repo_everything_t q = {.patient_id = e->patient_id,
                           .types = e->types,
                           .count = e->count,
                           .page = e->page,
                           .caller = r->caller};
    if (e->since && !http__parse_instant(e->since, &q.since_us))
        return err_set(err, ERR_INVALID, "_since",
                       "_since must be an instant such as 2024-01-31T12:00:00Z, not \"%s\"",
                       e->since);
    store_search_result_t res;
    if ((rc = repo_everything(r->thread->search_conn, &q, r->arena, &res, err)))
        return rc;
    const char *url_head =
        e->patient_id ? arena_printf(r->arena, "%s/Patient/%s/$everything", r->base, e->patient_id)
                      : arena_printf(r->arena, "%s/Patient/$everything", r->base);
    buf_addstr(out, "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"link\":[");
    add_link(out, "self", url_head, e, e->page);
    if (res.next) {
        buf_addch(out, ',');
        add_link(out, "next", url_head, e, res.next);
    }
    buf_addch(out, ']'); /* and "entry" only when there is one: no empty arrays */
    for (size_t i = 0; i < res.n; i++) {
        const store_version_t *v = &res.entries[i].version;
        buf_addstr(out, i ? ",{\"fullUrl\":\"" : ",\"entry\":[{\"fullUrl\":\"");
        buf_add_json_escaped(out, r->base, strlen(r->base));
        buf_addf(out, "/%s/%s\",\"resource\":", v->type, v->id);
        buf_add(out, v->json, v->json_len);
        buf_addf(out, ",\"search\":{\"mode\":\"%s\"}}",
                 res.entries[i].included ? "include" : "match");
    }
    buf_addstr(out, res.n ? "]}" : "}");
    if (r->result)
        *r->result = res;
    return ERR_OK;
}
