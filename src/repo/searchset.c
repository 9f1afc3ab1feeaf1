/*
 * searchset.c - the searchset Bundle of a search result: built by concatenating the stored
 * JSON of each entry (never parsed, unless _summary or _elements trim it), with the self link
 * showing what was applied, next and previous links carrying the store's keyset cursor in
 * _page, and an outcome entry listing what a lenient search ignored. For GET [type]?... and
 * for searches inside batch and transaction Bundles.
 */
#include "repo/searchset.h"

#include <string.h>

#include "base/jv.h"
#include "fhir/subset.h"

static void add_json_string(buf_t *out, const char *s)
{
    buf_addch(out, '"');
    buf_add_json_escaped(out, s, strlen(s));
    buf_addch(out, '"');
}

/* The query of the links: what was applied, without _offset when a cursor follows. */
static void link_query(const fhir_search_plan_t *plan, bool for_cursor, buf_t *out)
{
    buf_t rendered = BUF_INIT;
    fhir_search_plan_render(plan, &rendered);
    const char *p = rendered.ptr;
    bool first = true;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        if (!(for_cursor && n >= 8 && strncmp(p, "_offset=", 8) == 0)) {
            if (!first)
                buf_addch(out, '&');
            buf_add(out, p, n);
            first = false;
        }
        p += n + (amp ? 1 : 0);
    }
    buf_release(&rendered);
}

static void add_link(buf_t *out, const char *relation, const repo_searchset_links_t *links,
                     const char *query, const char *page)
{
    buf_addf(out, "{\"relation\":\"%s\",\"url\":\"", relation);
    buf_add_json_escaped(out, links->url_head, strlen(links->url_head));
    bool any = *query != '\0';
    buf_addch(out, '?');
    buf_add_json_escaped(out, query, strlen(query));
    if (page) {
        buf_addstr(out, any ? "&_page=" : "_page=");
        buf_addstr(out, page); /* cursors are URL-safe */
        any = true;
    }
    if (links->extra && *links->extra) {
        if (any)
            buf_addch(out, '&');
        buf_add_json_escaped(out, links->extra, strlen(links->extra));
    }
    buf_addstr(out, "\"}");
}

static void add_outcome(buf_t *out, const fhir_search_plan_t *plan, bool truncated)
{
    buf_addstr(out, "{\"resource\":{\"resourceType\":\"OperationOutcome\",\"issue\":[");
    bool first = true;
    for (size_t i = 0; i < plan->nignored; i++) {
        const fhir_search_ignored_t *ig = &plan->ignored[i];
        buf_addstr(out, first ? "" : ",");
        first = false;
        buf_addstr(out, "{\"severity\":\"warning\",\"code\":\"not-supported\",\"diagnostics\":");
        const char *text =
            ig->reason ? ig->reason : "the parameter was not understood and was ignored";
        add_json_string(out, text);
        buf_addstr(out, ",\"expression\":[");
        add_json_string(out, ig->name);
        buf_addstr(out, "]}");
    }
    if (truncated) {
        buf_addstr(out, first ? "" : ",");
        buf_addf(out,
                 "{\"severity\":\"warning\",\"code\":\"too-costly\",\"diagnostics\":\"more "
                 "resources would have been included than the limit of %d: the page includes "
                 "the first %d\"}",
                 STORE_SEARCH_MAX_INCLUDE, STORE_SEARCH_MAX_INCLUDE);
    }
    buf_addstr(out, "]},\"search\":{\"mode\":\"outcome\"}}");
}

/* The stored JSON as it is, or what _summary and _elements leave of it (_elements applies to
 * the matches only). */
static void add_resource(buf_t *out, const store_version_t *v, const fhir_search_plan_t *plan,
                         bool included)
{
    size_t nelements = included ? 0 : plan->nelements;
    if (nelements || plan->summary == FHIR_SEARCH_SUMMARY_TRUE ||
        plan->summary == FHIR_SEARCH_SUMMARY_TEXT || plan->summary == FHIR_SEARCH_SUMMARY_DATA) {
        err_t err = ERR_INIT;
        json_t *resource = jv_parse(v->json, v->json_len, &err);
        err_release(&err);
        json_t *subset =
            resource ? fhir_subset(resource, plan->summary, plan->elements, nelements) : NULL;
        json_decref(resource);
        if (subset) {
            jv_dump(subset, out);
            json_decref(subset);
            return;
        }
    }
    buf_add(out, v->json, v->json_len);
}

/* A contained match: the resource of the container's contained with the id, trimmed like
 * any match; NULL when the container no longer holds it. New reference. */
static json_t *contained_resource(const store_version_t *v, const char *id,
                                  const fhir_search_plan_t *plan)
{
    err_t err = ERR_INIT;
    json_t *container = jv_parse(v->json, v->json_len, &err);
    err_release(&err);
    json_t *list = json_object_get(container, "contained"), *found = NULL;
    for (size_t i = 0; json_is_array(list) && i < json_array_size(list) && !found; i++) {
        json_t *item = json_array_get(list, i);
        json_t *item_id = json_object_get(item, "id");
        if (json_is_string(item_id) && strcmp(json_string_value(item_id), id) == 0)
            found = json_incref(item);
    }
    json_decref(container);
    if (found &&
        (plan->nelements || plan->summary == FHIR_SEARCH_SUMMARY_TRUE ||
         plan->summary == FHIR_SEARCH_SUMMARY_TEXT || plan->summary == FHIR_SEARCH_SUMMARY_DATA)) {
        json_t *subset = fhir_subset(found, plan->summary, plan->elements, plan->nelements);
        json_decref(found);
        found = subset;
    }
    return found;
}

void repo_searchset(const fhir_search_plan_t *plan, const store_search_result_t *res,
                    const repo_searchset_links_t *links, buf_t *out)
{
    buf_t self_query = BUF_INIT, cursor_query = BUF_INIT;
    link_query(plan, false, &self_query);
    link_query(plan, true, &cursor_query);
    buf_addstr(out, "{\"resourceType\":\"Bundle\",\"type\":\"searchset\"");
    if (res->total >= 0)
        buf_addf(out, ",\"total\":%lld", (long long)res->total);
    buf_addstr(out, ",\"link\":[");
    add_link(out, "self", links, self_query.ptr, links->page);
    if (res->next) {
        buf_addch(out, ',');
        add_link(out, "next", links, cursor_query.ptr, res->next);
    }
    if (res->previous) {
        buf_addch(out, ',');
        add_link(out, "previous", links, cursor_query.ptr, res->previous);
    }
    /* FHIR JSON has no empty arrays: "entry" only when there is one */
    buf_addch(out, ']');
    bool first = true;
    for (size_t i = 0; i < res->n; i++) {
        const store_version_t *v = &res->entries[i].version;
        const char *contained_id = res->entries[i].contained_id;
        json_t *contained = contained_id ? contained_resource(v, contained_id, plan) : NULL;
        if (contained_id && !contained)
            continue;
        buf_addstr(out, first ? ",\"entry\":[{\"fullUrl\":" : ",{\"fullUrl\":");
        first = false;
        buf_addch(out, '"');
        buf_add_json_escaped(out, links->base, strlen(links->base));
        buf_addf(out, "/%s/%s", v->type, v->id);
        if (contained) {
            buf_addch(out, '#');
            buf_add_json_escaped(out, contained_id, strlen(contained_id));
        }
        buf_addstr(out, "\",\"resource\":");
        if (contained) {
            jv_dump(contained, out);
            json_decref(contained);
        } else {
            add_resource(out, v, plan, res->entries[i].included);
        }
        buf_addf(out, ",\"search\":{\"mode\":\"%s\"}}",
                 res->entries[i].included ? "include" : "match");
    }
    if (plan->nignored || res->includes_truncated) {
        buf_addstr(out, first ? ",\"entry\":[" : ",");
        first = false;
        add_outcome(out, plan, res->includes_truncated);
    }
    buf_addstr(out, first ? "}" : "]}");
    buf_release(&self_query);
    buf_release(&cursor_query);
}
