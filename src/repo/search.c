/*
 * search.c - FHIR search over the store: the query becomes a plan (fhir/search.h), the
 * parts the store cannot run are set aside (ignored when lenient, refused when strict), a
 * compartment becomes the list of reference parameters that make a resource a member, and
 * the store runs the rest.
 */
#include <string.h>

#include "fhir/compartment.h"
#include "repo/repo.h"

/* Result parameters: the applied pairs that are not criteria (they have no clause). */
static bool is_result_parameter(const fhir_search_pair_t *pair)
{
    static const char *const names[] = {"_include",   "_revinclude",    "_count",    "_offset",
                                        "_sort",      "_summary",       "_elements", "_total",
                                        "_contained", "_containedType", "_type"};
    size_t n = pair->name_len;
    const char *colon = memchr(pair->name, ':', n);
    if (colon)
        n = (size_t)(colon - pair->name);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == n && memcmp(pair->name, names[i], n) == 0)
            return true;
    return false;
}

/* Moves applied pair `at` to the ignored ones (or fails a strict search). */
static status_t set_aside(fhir_search_plan_t *plan, size_t at, const char *reason, bool strict,
                          arena_t *arena, err_t *err)
{
    const fhir_search_pair_t *pair = &plan->applied[at];
    if (strict)
        return err_set(err, ERR_INVALID, NULL, "%s", reason);
    fhir_search_ignored_t *ig = &plan->ignored[plan->nignored++];
    ig->name = arena_strndup(arena, pair->name, pair->name_len);
    ig->value = arena_strndup(arena, pair->value, pair->value_len);
    ig->reason = reason;
    memmove(&plan->applied[at], &plan->applied[at + 1],
            (plan->napplied - at - 1) * sizeof(*plan->applied));
    plan->napplied--;
    return ERR_OK;
}

/* Sets aside the clauses the store cannot run, with the pairs that made them. With a
 * connection, terminology modifiers are resolved first (terminology.c); without one they stay
 * unsupported. */
static status_t screen(store_conn_t *conn, fhir_search_plan_t *plan, bool strict, arena_t *arena,
                       err_t *err)
{
    size_t criterion = 0;
    status_t rc = ERR_OK;
    for (size_t at = 0; at < plan->napplied;) {
        const fhir_search_pair_t *pair = &plan->applied[at];
        if (is_result_parameter(pair)) {
            at++;
            continue;
        }
        const char *reason = NULL;
        for (size_t b = 0; b < plan->nbranches && conn && !reason; b++) {
            status_t resolved = ERR_OK;
            if (criterion < plan->branches[b].nclauses &&
                (resolved = repo__terminology_resolve(conn, &plan->branches[b].clauses[criterion],
                                                      arena, &reason, err)))
                return resolved;
        }
        for (size_t b = 0; b < plan->nbranches && !reason; b++)
            if (criterion < plan->branches[b].nclauses)
                reason = store_search_unsupported(&plan->branches[b].clauses[criterion], arena);
        if (!reason) {
            criterion++;
            at++;
            continue;
        }
        for (size_t b = 0; b < plan->nbranches; b++) {
            fhir_search_branch_t *branch = &plan->branches[b];
            if (criterion >= branch->nclauses)
                continue;
            memmove(&branch->clauses[criterion], &branch->clauses[criterion + 1],
                    (branch->nclauses - criterion - 1) * sizeof(*branch->clauses));
            branch->nclauses--;
        }
        if (set_aside(plan, at, reason, strict, arena, err)) {
            rc = ERR_INVALID;
            at++;
        }
    }
    return rc;
}

static status_t plan_search(store_conn_t *conn, const repo_search_t *search, arena_t *arena,
                            fhir_search_plan_t **out_plan, store_search_t *out_query, err_t *err)
{
    store_search_t query = {.base = search->base, .page = search->page};
    if (search->compartment_type) {
        if (!fhir_compartment_exists(search->compartment_type))
            return err_set(err, ERR_NOT_FOUND, NULL, "%s has no compartment",
                           search->compartment_type);
        if (!search->type)
            return err_set(err, ERR_INVALID, NULL,
                           "a compartment search needs a resource type: %s/%s/[type]",
                           search->compartment_type, search->compartment_id);
        if (!fhir_compartment_params(search->compartment_type, search->type,
                                     &query.compartment_params, &query.ncompartment_params))
            return err_set(err, ERR_INVALID, NULL, "%s resources are not in the %s compartment",
                           search->type->name, search->compartment_type);
        query.compartment_type = search->compartment_type;
        query.compartment_id = search->compartment_id;
    }
    fhir_search_query_t q = {.pairs = search->pairs,
                             .npairs = search->npairs,
                             .strict = search->strict,
                             .now_us = search->now_us};
    fhir_search_plan_t *plan = NULL;
    status_t rc = fhir_search_parse(repo_params_registry(), search->type, &q, arena, &plan, err);
    if (rc || plan->nignored) {
        /* a parameter this process does not know may have been defined through another one
         * on the same database since it last looked */
        bool changed = false;
        err_t refresh = ERR_INIT;
        if (repo_params_refresh(store_conn_primary(conn), &changed, &refresh) == ERR_OK &&
            changed) {
            err_reset(err);
            rc = fhir_search_parse(repo_params_registry(), search->type, &q, arena, &plan, err);
        }
        err_release(&refresh);
        if (rc)
            return rc;
    }
    if ((rc = screen(conn, plan, search->strict, arena, err)))
        return rc;
    if (search->caller &&
        (rc = repo__access_search(conn, search, plan, arena, &query.visibility, err)))
        return rc;
    query.plan = plan;
    *out_plan = plan;
    *out_query = query;
    return ERR_OK;
}

status_t repo_search_plan(store_conn_t *conn, const repo_search_t *search, arena_t *arena,
                          fhir_search_plan_t **out_plan, store_search_t *out_query, err_t *err)
{
    return plan_search(conn, search, arena, out_plan, out_query, err);
}

status_t repo_search(store_conn_t *conn, const repo_search_t *search, arena_t *arena,
                     fhir_search_plan_t **out_plan, store_search_result_t *out, err_t *err)
{
    store_search_t query;
    status_t rc = plan_search(conn, search, arena, out_plan, &query, err);
    if (rc)
        return rc;
    return store_search(conn, &query, arena, out, err);
}
