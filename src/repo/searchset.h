/*
 * searchset.h - the searchset Bundle of a search result (GET [type]?... and the searches of
 * batch and transaction Bundles).
 */
#ifndef CONCERTO_REPO_SEARCHSET_H
#define CONCERTO_REPO_SEARCHSET_H

#include "base/buf.h"
#include "fhir/search.h"
#include "store/store.h"

typedef struct {
    const char *base;     /* the server's base url, for fullUrl */
    const char *url_head; /* what the links' urls start with: "[base]/Patient" */
    const char *page;     /* the cursor of this page (in the self link), or NULL */
    const char *extra;    /* appended to every link's query, already encoded
                             ("_format=json&_pretty=true"), or NULL */
} repo_searchset_links_t;

/*
 * Appends the searchset Bundle of res, a page of plan: total when asked, links self, next
 * and previous (the parameters applied, in canonical order, and the cursors), the entries
 * with fullUrl, resource (trimmed by _summary and _elements) and search.mode, and an outcome
 * entry for what a lenient search ignored or includes that were cut.
 */
void repo_searchset(const fhir_search_plan_t *plan, const store_search_result_t *res,
                    const repo_searchset_links_t *links, buf_t *out);

#endif
