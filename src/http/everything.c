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

/* The parameters of a POST body: a Parameters resource with _since, _type, _count. */
static status_t read_body(const http_search_request_t *r, http_everything_t *e, err_t *err)
{
    h2o_req_t *req = r->req;
    if (!req->entity.base || req->entity.len == 0)
        return ERR_OK;
    size_t max = r->thread->server->config.max_body;
    if (req->entity.len > max)
        return err_set(err, ERR_TOO_LARGE, NULL,
                       "the body is %zu bytes, over the limit of %zu bytes (setting max-body)",
                       req->entity.len, max);
    json_t *body = jv_parse(req->entity.base, req->entity.len, err);
    if (!body)
        return err->code;
    status_t rc = ERR_OK;
    json_t *rt = json_object_get(body, "resourceType");
    json_t *params = json_object_get(body, "parameter");
    if (!jv_is_string(rt) || strcmp(json_string_value(rt), "Parameters") != 0 ||
        (params && !json_is_array(params))) {
        rc = err_set(err, ERR_INVALID, NULL,
                     "$everything by POST takes a Parameters resource (or no body)");
        goto out;
    }
    size_t i;
    json_t *p;
    json_array_foreach(params, i, p)
    {
        json_t *name = json_object_get(p, "name");
        const char *n = jv_is_string(name) ? json_string_value(name) : "";
        json_t *v = NULL;
        const char **slot = NULL;
        if (!strcmp(n, "_since")) {
            slot = &e->since;
            v = json_object_get(p, "valueInstant");
            if (!v)
                v = json_object_get(p, "valueDateTime");
        } else if (!strcmp(n, "_type")) {
            slot = &e->types;
            v = json_object_get(p, "valueString");
            if (!v)
                v = json_object_get(p, "valueCode");
        } else if (!strcmp(n, "_count")) {
            slot = &e->count;
            v = json_object_get(p, "valueInteger");
            if (json_is_integer(v)) {
                e->count = arena_printf(r->arena, "%lld", (long long)json_integer_value(v));
                continue;
            }
        } else {
            rc = err_set(err, ERR_INVALID, arena_printf(r->arena, "Parameters.parameter[%zu]", i),
                         "$everything has no parameter \"%s\" (_since, _type, _count)", n);
            goto out;
        }
        if (!jv_is_string(v)) {
            rc = err_set(err, ERR_INVALID, arena_printf(r->arena, "Parameters.parameter[%zu]", i),
                         "the %s parameter has no value of the right type", n);
            goto out;
        }
        *slot = arena_strdup(r->arena, json_string_value(v));
    }
out:
    json_decref(body);
    return rc;
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
