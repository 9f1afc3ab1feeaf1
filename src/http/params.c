/*
 * params.c - the Parameters body of an operation called by POST ($everything, $worklist,
 * $apply): checked once here, its parameters handed to the operation one by one.
 */
#include <string.h>

#include "base/jv.h"
#include "http/http_int.h"

status_t http__parameters_body(const http_search_request_t *r, const char *operation,
                               http_parameter_fn fn, void *arg, err_t *err)
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
        rc = err_set(err, ERR_INVALID, NULL, "%s by POST takes a Parameters resource (or no body)",
                     operation);
        goto out;
    }
    size_t i;
    json_t *p;
    json_array_foreach(params, i, p)
    {
        json_t *name = json_object_get(p, "name");
        const char *where = arena_printf(r->arena, "Parameters.parameter[%zu]", i);
        if ((rc = fn(arg, jv_is_string(name) ? json_string_value(name) : "", p, where, err)))
            break;
    }
out:
    json_decref(body);
    return rc;
}
