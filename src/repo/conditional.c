/*
 * conditional.c - conditional create, update and delete: the criteria become a strict search
 * plan on the caller's thread; the writer runs it inside the write's transaction and decides.
 */
#include "repo/conditional.h"

#include <string.h>

#include "base/clock.h"
#include "base/jv.h"
#include "base/url.h"

/* ---- criteria ------------------------------------------------------------------------ */

/* Result parameters: they shape a page of results and select nothing. */
static bool is_result_parameter(const char *name, size_t len)
{
    static const char *const names[] = {"_include",   "_revinclude",    "_count",    "_offset",
                                        "_sort",      "_summary",       "_elements", "_total",
                                        "_contained", "_containedType", "_page",     "_type"};
    const char *colon = memchr(name, ':', len);
    if (colon)
        len = (size_t)(colon - name);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == len && memcmp(name, names[i], len) == 0)
            return true;
    return false;
}

status_t repo_condition_parse(repo_condition_t *cond, const fhir_type_t *type, const char *query,
                              size_t len, store_conn_t *conn, arena_t *arena, err_t *err)
{
    memset(cond, 0, sizeof(*cond));
    cond->type = type;
    const char *q = query, *end = query + len;
    const char *mark = memchr(q, '?', len);
    if (mark) {
        /* "?criteria" or "Type?criteria" */
        size_t tlen = (size_t)(mark - q);
        if (tlen && (tlen != strlen(type->name) || memcmp(q, type->name, tlen) != 0))
            return err_set(err, ERR_INVALID, NULL,
                           "the criteria \"%.*s\" are for %.*s, but the request is for %s",
                           (int)len, query, (int)tlen, q, type->name);
        q = mark + 1;
    }
    cond->text = arena_strndup(arena, q, (size_t)(end - q));

    url_pair_t *all;
    size_t nall = url_query_split(arena, q, (size_t)(end - q), &all);
    fhir_search_pair_t *pairs = arena_zalloc(arena, (nall ? nall : 1) * sizeof(*pairs));
    size_t n = 0;
    status_t rc = ERR_OK;
    for (size_t i = 0; i < nall; i++) {
        const url_pair_t *pair = &all[i];
        if ((pair->name_len == 7 && !memcmp(pair->name, "_format", 7)) ||
            (pair->name_len == 7 && !memcmp(pair->name, "_pretty", 7))) {
            /* response parameters of the URL, not criteria */
        } else if (is_result_parameter(pair->name, pair->name_len)) {
            rc = err_set(err, ERR_INVALID, NULL,
                         "\"%s\" is not a search criterion: the criteria of a conditional "
                         "request select resources, they do not shape results",
                         pair->name);
        } else {
            pairs[n++] = *pair;
        }
    }
    if (n == 0)
        return rc ? rc
                  : err_set(err, ERR_INVALID, NULL,
                            "a conditional request needs at least one search criterion (\"%s\" "
                            "has none)",
                            cond->text);
    fhir_search_query_t sq = {
        .pairs = pairs, .npairs = n, .strict = true, .now_us = clock_now_us()};
    status_t parsed = fhir_search_parse(repo_params_registry(), type, &sq, arena, &cond->plan, err);
    if (rc || parsed)
        return err->code;
    /* what the parser accepts but the store cannot run: refused, never left out */
    fhir_search_plan_t *plan = cond->plan;
    for (size_t b = 0; b < plan->nbranches; b++)
        for (size_t c = 0; c < plan->branches[b].nclauses; c++) {
            const char *reason = NULL;
            status_t resolved = conn ? repo__terminology_resolve(
                                           conn, &plan->branches[b].clauses[c], arena, &reason, err)
                                     : ERR_OK;
            if (resolved)
                return resolved;
            if (!reason)
                reason = store_search_unsupported(&plan->branches[b].clauses[c], arena);
            if (reason)
                rc = err_set(err, ERR_INVALID, NULL, "%s", reason);
        }
    if (rc)
        return rc;
    plan->total = FHIR_SEARCH_TOTAL_NONE;
    plan->summary = FHIR_SEARCH_SUMMARY_NONE;
    return ERR_OK;
}

status_t repo_condition_restrict(repo_condition_t *cond, store_conn_t *conn,
                                 const repo_caller_t *caller, const char *base, arena_t *arena,
                                 err_t *err)
{
    cond->visibility = NULL;
    if (!caller)
        return ERR_OK;
    if (!conn)
        return err_set(err, ERR_INTERNAL, NULL,
                       "the criteria of a caller's conditional request need a connection");
    return repo_access_visibility(conn, caller, cond->type->name, SCOPE_S, base, NULL, arena,
                                  &cond->visibility, err);
}

status_t repo_condition_find(store_txn_t *txn, const repo_condition_t *cond, const char *base,
                             size_t limit, arena_t *arena, store_version_t **out, size_t *out_n,
                             bool *out_more, err_t *err)
{
    fhir_search_plan_t *plan = cond->plan;
    plan->count = (uint32_t)(limit + 1);
    store_search_t query = {.plan = plan, .base = base, .visibility = cond->visibility};
    store_search_result_t result;
    status_t rc = store_txn_search(txn, &query, arena, &result, err);
    if (rc)
        return rc;
    size_t n = result.nmatch < limit ? result.nmatch : limit;
    store_version_t *versions = arena_alloc(arena, (n ? n : 1) * sizeof(*versions));
    for (size_t i = 0; i < n; i++)
        versions[i] = result.entries[i].version;
    *out = versions;
    *out_n = n;
    *out_more = result.nmatch > limit || result.next != NULL;
    return ERR_OK;
}

/* ---- conditional writes -------------------------------------------------------------- */

status_t repo_prepare_cond_update_resource(repo_write_t *write, json_t *resource, int64_t if_match,
                                           arena_t *arena, bool *out_body_id, err_t *err)
{
    json_t *id = json_object_get(resource, "id");
    *out_body_id = id != NULL;
    if (id && !jv_is_string(id)) {
        memset(write, 0, sizeof(*write));
        return err_set(err, ERR_STRUCTURE, NULL, "the resource's id must be a string");
    }
    if (id)
        return repo_prepare_resource(write, REPO_UPDATE, resource, json_string_value(id), if_match,
                                     arena, err);
    /* no id: a provisional new one, settled in the transaction */
    status_t rc = repo_prepare_resource(write, REPO_CREATE, resource, NULL, if_match, arena, err);
    write->action = REPO_UPDATE;
    return rc;
}

status_t repo_prepare_cond_update(repo_write_t *write, const char *type, const char *body,
                                  size_t len, int64_t if_match, arena_t *arena, bool *out_body_id,
                                  err_t *err)
{
    *out_body_id = false;
    json_t *resource = jv_parse(body, len, err);
    if (!resource)
        return err->code;
    status_t rc;
    json_t *rt = json_object_get(resource, "resourceType");
    if (!json_is_object(resource))
        rc = err_set(err, ERR_STRUCTURE, NULL, "the body must be a JSON object (a resource)");
    else if (!rt)
        rc = err_set(err, ERR_STRUCTURE, NULL, "the resource has no resourceType");
    else if (jv_is_string(rt) && strcmp(json_string_value(rt), type) != 0)
        rc = err_set(err, ERR_INVALID, NULL, "the resource is a %s but the request is for %s",
                     json_string_value(rt), type);
    else
        rc = repo_prepare_cond_update_resource(write, resource, if_match, arena, out_body_id, err);
    json_decref(resource);
    return rc;
}

status_t repo_cond_prepare_access(store_conn_t *conn, repo_cond_t *c, err_t *err)
{
    repo_write_t *w = c->write;
    c->access_ready = true;
    if (!w->caller)
        return ERR_OK;
    status_t rc = repo_condition_restrict(&c->condition, conn, w->caller, c->base, w->arena, err);
    if (!rc)
        rc = repo_access_prepare_write(conn, w, err);
    return rc;
}

static status_t several(const repo_cond_t *c, err_t *err)
{
    const repo_write_t *w = c->write;
    return err_set(err, ERR_MULTIPLE_MATCHES, NULL,
                   "the criteria \"%s\" match more than one %s resource: a conditional %s "
                   "needs at most one match%s",
                   c->condition.text, c->condition.type->name,
                   w->action == REPO_CREATE   ? "create"
                   : w->action == REPO_UPDATE ? "update"
                                              : "delete",
                   w->action == REPO_DELETE ? " (deleting several is a setting of the server: "
                                              "conditional-delete = multiple)"
                                            : "");
}

status_t repo_cond_resolve(store_txn_t *txn, repo_cond_t *c, err_t *err)
{
    repo_write_t *w = c->write;
    bool deletes_all = w->action == REPO_DELETE && c->multiple;
    size_t limit = deletes_all ? REPO_CONDITIONAL_MAX_DELETE : 1;
    store_version_t *found;
    size_t n;
    bool more;
    c->matched = false;
    c->deletes = NULL;
    c->ndeletes = 0;
    if (w->caller && !c->access_ready)
        return err_set(err, ERR_INTERNAL, NULL,
                       "the access of the conditional %s of %s was not worked out",
                       w->action == REPO_DELETE ? "delete" : "write", w->type);
    status_t rc =
        repo_condition_find(txn, &c->condition, c->base, limit, w->arena, &found, &n, &more, err);
    if (rc)
        return rc;
    c->nmatches = n + (more ? 1 : 0);
    if (more && !deletes_all)
        return several(c, err);
    if (more)
        return err_set(err, ERR_MULTIPLE_MATCHES, NULL,
                       "the criteria \"%s\" match more than %d %s resources, the most one "
                       "conditional delete removes: nothing was deleted; narrow the criteria",
                       c->condition.text, REPO_CONDITIONAL_MAX_DELETE, c->condition.type->name);
    switch (w->action) {
    case REPO_CREATE:
        if (n == 1) {
            c->matched = true;
            w->result = found[0];
        }
        return ERR_OK;
    case REPO_UPDATE:
        if (n == 1) {
            if (c->body_id && strcmp(w->id, found[0].id) != 0)
                return err_set(err, ERR_INVALID, arena_printf(w->arena, "%s.id", w->type),
                               "the resource's id \"%s\" is not the id of the resource the "
                               "criteria \"%s\" match (%s/%s)",
                               w->id, c->condition.text, found[0].type, found[0].id);
            if (strcmp(w->id, found[0].id) != 0)
                repo_write_set_id(w, found[0].id);
            return ERR_OK;
        }
        if (c->body_id) {
            store_current_t current;
            if ((rc = store_txn_current(txn, w->type, w->id, &current, err)))
                return rc;
            if (current.version && !current.deleted && w->caller && c->condition.visibility &&
                !repo_access_emergency(w->caller)) {
                /* a resource the caller may not see never matched: whether it exists is
                   answered as a read of it would be, not with the conflict below */
                bool visible;
                if ((rc = repo__access_visible_txn(txn, c->condition.visibility, w->type, w->id,
                                                   w->arena, &visible, err)))
                    return rc;
                if (!visible)
                    return repo_access_denied(w->caller, w->type, w->id, err);
            }
            if (current.version && !current.deleted)
                return err_set(err, ERR_CONFLICT, NULL,
                               "nothing matches the criteria \"%s\", and %s/%s, the id of the "
                               "resource, is another resource",
                               c->condition.text, w->type, w->id);
        } else {
            /* no match and no id: a create with the provisional id */
            w->action = REPO_CREATE;
        }
        return ERR_OK;
    case REPO_DELETE:
        if (n == 0) {
            w->noop = true;
            return ERR_OK;
        }
        if (n == 1) {
            repo_write_set_id(w, found[0].id);
            return ERR_OK;
        }
        if (!c->multiple)
            return several(c, err);
        if (w->if_match)
            return err_set(err, ERR_VERSION_CONFLICT, NULL,
                           "If-Match names one version, but the criteria \"%s\" match %zu %s "
                           "resources",
                           c->condition.text, n, c->condition.type->name);
        c->deletes = arena_zalloc(w->arena, n * sizeof(*c->deletes));
        c->ndeletes = n;
        for (size_t i = 0; i < n; i++) {
            repo_write_t *d = &c->deletes[i];
            repo_prepare_delete(d, w->type, found[i].id, 0, w->arena, err);
            /* each deletion is checked as the caller's */
            d->caller = w->caller;
            d->access = w->access;
            d->access_ready = w->access_ready;
        }
        return ERR_OK;
    case REPO_PATCH: break;
    }
    return err_set(err, ERR_INTERNAL, NULL, "a conditional patch is not supported");
}

status_t repo_cond_apply(store_txn_t *txn, repo_cond_t *c, err_t *err)
{
    repo_write_t *w = c->write;
    if (c->matched || w->noop)
        return ERR_OK;
    if (c->ndeletes) {
        for (size_t i = 0; i < c->ndeletes; i++) {
            c->deletes[i].caller = w->caller;
            status_t rc = repo_write_txn(txn, &c->deletes[i], err);
            if (rc)
                return rc;
        }
        /* the write stands for them all: the last deletion is its result */
        w->id = c->deletes[c->ndeletes - 1].id;
        w->result = c->deletes[c->ndeletes - 1].result;
        return ERR_OK;
    }
    return repo_write_txn(txn, w, err);
}

status_t repo_cond_txn(store_txn_t *txn, void *arg, err_t *err)
{
    repo_cond_t *c = arg;
    status_t rc = repo_cond_resolve(txn, c, err);
    if (!rc)
        rc = repo_cond_apply(txn, c, err);
    return rc;
}
