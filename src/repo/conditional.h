/*
 * conditional.h - conditional create, update and delete (FHIR R4 http.html): writes whose
 * target a search decides.
 *
 * Like every write, a conditional one is prepared on the caller's thread (the body parsed,
 * validated and serialized, the criteria parsed into a search plan) and committed by the
 * store's writer. The search that decides runs there, inside the write's transaction
 * (store_txn_search), so the decision and the write are atomic: two conditional creates with
 * the same criteria, sent at once, create one resource.
 *
 * Criteria are always strict: a parameter that is unknown, malformed or that this server
 * cannot run is refused (400, naming it) rather than ignored, since an ignored criterion would
 * widen the match. Result parameters (_count, _sort, _include, ...) are refused too: they do
 * not select resources.
 */
#ifndef CONCERTO_REPO_CONDITIONAL_H
#define CONCERTO_REPO_CONDITIONAL_H

#include <stdbool.h>
#include <stddef.h>

#include "base/arena.h"
#include "base/err.h"
#include "fhir/defs.h"
#include "fhir/search.h"
#include "repo/repo.h"
#include "store/store.h"

/* Most resources one conditional delete removes (with multiple deletes allowed); more
 * matches than this: 412 and nothing is deleted. */
#define REPO_CONDITIONAL_MAX_DELETE 1000

/* The criteria of a conditional request or reference, parsed. */
typedef struct {
    const fhir_type_t *type;
    const char *text; /* the criteria as given ("identifier=http://x|1"), for messages */
    fhir_search_plan_t *plan;
    /* what the matches are taken from (repo_condition_restrict); NULL: every resource */
    const store_visibility_t *visibility;
} repo_condition_t;

/*
 * Parses criteria: query (len bytes) is the query part of a URL, percent-encoded ('+' is a
 * space), optionally preceded by "?" or "[type]?" (an If-None-Exist or ifNoneExist may be
 * "Patient?identifier=..."). _format and _pretty are skipped. Errors (ERR_INVALID, one issue
 * per problem, naming the parameter): no criterion at all, a result parameter, a parameter
 * that is unknown, malformed or not supported, a type before "?" other than `type`. With conn,
 * token :in, :not-in, :above and :below are resolved against the terminology stored then
 * (repo__terminology_resolve); terminology that is not on the server is refused. Without,
 * they are refused.
 */
status_t repo_condition_parse(repo_condition_t *cond, const fhir_type_t *type, const char *query,
                              size_t len, store_conn_t *conn, arena_t *arena, err_t *err);

/*
 * Restricts the matches of cond to what `caller` may see (access.h; NULL: nothing to do): the
 * criteria are a search, so the caller's scopes must allow searching the type (ERR_FORBIDDEN,
 * naming the scope), and a resource outside the caller's visibility never matches. On the
 * caller's thread (conn works out the caller's patients); strings in arena.
 */
status_t repo_condition_restrict(repo_condition_t *cond, store_conn_t *conn,
                                 const repo_caller_t *caller, const char *base, arena_t *arena,
                                 err_t *err);

/*
 * The matches of cond inside txn (only visible ones when cond was restricted), seeing what the
 * transaction wrote: at most `limit` current versions in the order resources were created,
 * *out_more set when there are more. base is the server's base url (absolute references under it
 * are local), or NULL.
 */
status_t repo_condition_find(store_txn_t *txn, const repo_condition_t *cond, const char *base,
                             size_t limit, arena_t *arena, store_version_t **out, size_t *out_n,
                             bool *out_more, err_t *err);

/* A conditional write. */
typedef struct {
    /* inputs */
    repo_write_t *write; /* prepared: REPO_CREATE (If-None-Exist), REPO_UPDATE (see
                            repo_prepare_cond_update) or REPO_DELETE (id NULL) */
    repo_condition_t condition;
    const char *base;  /* the server's base url, or NULL */
    bool body_id;      /* REPO_UPDATE: the body carried an id (write->id is it) */
    bool multiple;     /* REPO_DELETE: several matches are all deleted, else 412 */
    bool access_ready; /* repo_cond_prepare_access ran (needed when write->caller is set) */

    /* outputs of repo_cond_resolve */
    size_t nmatches;
    bool matched;          /* REPO_CREATE with one match: nothing is written and
                              write->result is the match (200) */
    repo_write_t *deletes; /* REPO_DELETE of several matches: one write each */
    size_t ndeletes;
} repo_cond_t;

/*
 * Prepares the body of a conditional update (PUT [type]?criteria) as repo_prepare_update
 * does, keeping the body's id when it has one (*out_body_id) and else giving the resource a
 * provisional new id; repo_cond_resolve settles the id. The _resource variant takes a parsed
 * resource (borrowed).
 */
status_t repo_prepare_cond_update(repo_write_t *write, const char *type, const char *body,
                                  size_t len, int64_t if_match, arena_t *arena, bool *out_body_id,
                                  err_t *err);
status_t repo_prepare_cond_update_resource(repo_write_t *write, json_t *resource, int64_t if_match,
                                           arena_t *arena, bool *out_body_id, err_t *err);

/*
 * For a conditional write made for write->caller (NULL: nothing to do), after the write is
 * prepared and before it is committed, on the caller's thread: the criteria restricted to what
 * the caller may see (repo_condition_restrict) and the write's access worked out
 * (repo_access_prepare_write). A conditional write of a caller without it is refused
 * (ERR_INTERNAL) rather than run unchecked. ERR_FORBIDDEN when the scopes do not allow it.
 */
status_t repo_cond_prepare_access(store_conn_t *conn, repo_cond_t *cond, err_t *err);

/*
 * Runs the search of a conditional write inside txn and decides what it does (no writes):
 *   create: no match: create; one: the match is the answer, nothing is written; several: 412.
 *   update: no match: create, with the body's id (409 when a resource that does not match has
 *           it) or a new one; one: update it (the body's id, when given, must be its id, else
 *           400); several: 412.
 *   delete: no match: nothing (write->noop); one: delete it; several: delete them all when
 *           `multiple` (at most REPO_CONDITIONAL_MAX_DELETE; If-Match then is 412), else 412.
 * Resources the caller may not see are not matches: they are neither updated, deleted nor
 * returned. Each write is checked against the caller as a single one is (repo_write_txn).
 * Errors: ERR_MULTIPLE_MATCHES, ERR_INVALID, ERR_CONFLICT, ERR_FORBIDDEN, storage errors.
 */
status_t repo_cond_resolve(store_txn_t *txn, repo_cond_t *cond, err_t *err);
/* Performs what repo_cond_resolve decided (repo_write_txn for each write; If-Match holds). */
status_t repo_cond_apply(store_txn_t *txn, repo_cond_t *cond, err_t *err);
/* The store transaction of a conditional write: resolve, then apply (arg is the repo_cond_t). */
status_t repo_cond_txn(store_txn_t *txn, void *arg, err_t *err);

#endif
