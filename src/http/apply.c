/*
 * apply.c - PlanDefinition/[id]/$apply over HTTP (GET with the parameters in the query, POST
 * with them in the query or in a Parameters body): subject (Patient/x, required) and
 * Concerto's dryRun (boolean). The parameters are read on the request's loop; the run itself
 * is the engine's (care/protocols.h), on a worker of offload.c; its answer is the CarePlan,
 * or with dryRun a collection Bundle of what would be made.
 */
#include <string.h>

#include "base/clock.h"
#include "base/jv.h"
#include "care/protocols.h"
#include "http/http_int.h"

static const char *query_param(const http_search_request_t *r, const char *name)
{
    for (size_t i = 0; i < r->nparams; i++)
        if (strcmp(r->params[i].name, name) == 0)
            return r->params[i].value;
    return NULL;
}

static status_t parse_bool(const char *text, bool *out, err_t *err)
{
    if (strcmp(text, "true") == 0)
        *out = true;
    else if (strcmp(text, "false") == 0)
        *out = false;
    else
        return err_set(err, ERR_INVALID, "dryRun", "dryRun is true or false, not \"%s\"", text);
    return ERR_OK;
}

/* The parameters of a POST body: a Parameters resource with subject and dryRun. */
static status_t read_body(const http_search_request_t *r, care_apply_t *a, err_t *err)
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
    json_t *params = json_object_get(body, "parameter");
    if (!jv_is_string(json_object_get(body, "resourceType")) ||
        strcmp(json_string_value(json_object_get(body, "resourceType")), "Parameters") != 0 ||
        (params && !json_is_array(params))) {
        rc = err_set(err, ERR_INVALID, NULL, "$apply by POST takes a Parameters resource");
        goto out;
    }
    size_t i;
    json_t *p;
    json_array_foreach(params, i, p)
    {
        const char *name = json_string_value(json_object_get(p, "name"));
        const char *where = arena_printf(r->arena, "Parameters.parameter[%zu]", i);
        if (name && strcmp(name, "subject") == 0) {
            json_t *v = json_object_get(p, "valueString");
            if (!v)
                v = json_object_get(json_object_get(p, "valueReference"), "reference");
            if (!jv_is_string(v)) {
                rc = err_set(err, ERR_INVALID, where,
                             "subject is a valueString or valueReference naming a Patient");
                goto out;
            }
            a->subject = arena_strdup(r->arena, json_string_value(v));
        } else if (name && strcmp(name, "dryRun") == 0) {
            json_t *v = json_object_get(p, "valueBoolean");
            if (!json_is_boolean(v)) {
                rc = err_set(err, ERR_INVALID, where, "dryRun is a valueBoolean");
                goto out;
            }
            a->dry_run = json_is_true(v);
        } else {
            rc = err_set(err, ERR_INVALID, where,
                         "$apply has no parameter \"%s\" (subject, dryRun)", name ? name : "");
            goto out;
        }
    }
out:
    json_decref(body);
    return rc;
}

status_t http__apply_parse(const http_search_request_t *r, const char *plan_id, bool post,
                           care_apply_t *out, err_t *err)
{
    *out = (care_apply_t){.plan_id = plan_id,
                          .subject = query_param(r, "subject"),
                          .caller = r->caller,
                          .now_us = clock_now_us()};
    const char *dry = query_param(r, "dryRun");
    status_t rc;
    if (dry && (rc = parse_bool(dry, &out->dry_run, err)))
        return rc;
    for (size_t i = 0; i < r->nparams; i++)
        if (strcmp(r->params[i].name, "subject") != 0 && strcmp(r->params[i].name, "dryRun") != 0 &&
            r->params[i].name[0] != '_')
            return err_set(err, ERR_INVALID, r->params[i].name,
                           "$apply has no parameter \"%s\" (subject, dryRun)", r->params[i].name);
    if (post && (rc = read_body(r, out, err)))
        return rc;
    return ERR_OK;
}
