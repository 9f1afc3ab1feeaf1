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

typedef struct {
    const http_search_request_t *r;
    care_apply_t *a;
} body_t;

/* One parameter of a POST body: subject or dryRun. */
static status_t body_param(void *arg, const char *name, const json_t *p, const char *where,
                           err_t *err)
{
    body_t *b = arg;
    if (strcmp(name, "subject") == 0) {
        json_t *v = json_object_get(p, "valueString");
        if (!v)
            v = json_object_get(json_object_get(p, "valueReference"), "reference");
        if (!jv_is_string(v))
            return err_set(err, ERR_INVALID, where,
                           "subject is a valueString or valueReference naming a Patient");
        b->a->subject = arena_strdup(b->r->arena, json_string_value(v));
    } else if (strcmp(name, "dryRun") == 0) {
        json_t *v = json_object_get(p, "valueBoolean");
        if (!json_is_boolean(v))
            return err_set(err, ERR_INVALID, where, "dryRun is a valueBoolean");
        b->a->dry_run = json_is_true(v);
    } else {
        return err_set(err, ERR_INVALID, where, "$apply has no parameter \"%s\" (subject, dryRun)",
                       name);
    }
    return ERR_OK;
}

/* The parameters of a POST body: a Parameters resource with subject and dryRun. */
static status_t read_body(const http_search_request_t *r, care_apply_t *a, err_t *err)
{
    body_t b = {r, a};
    return http__parameters_body(r, "$apply", body_param, &b, err);
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
