/*
 * admin.c - what the administrators' JSON endpoints share (/admin/queue, /admin/hl7): the
 * administrator check, JSON bodies and errors, ids in paths.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "fhir/outcome.h"
#include "http/http_int.h"

void http__admin_header(h2o_req_t *req, const char *name, const char *value)
{
    size_t len = strlen(value);
    char *copy = h2o_mem_alloc_pool(&req->pool, len + 1);
    memcpy(copy, value, len + 1);
    h2o_set_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 1, copy, len, 1);
}

void http__admin_send(h2o_req_t *req, int status, const char *type, const buf_t *body)
{
    char *copy = h2o_mem_alloc_pool(&req->pool, body->len + 1);
    memcpy(copy, body->ptr, body->len + 1);
    req->res.status = status;
    req->res.reason = status == 200 ? "OK" : "Error";
    http__admin_header(req, "content-type", type);
    req->res.content_length = body->len;
    h2o_send_inline(req, copy, body->len);
}

void http__admin_error(h2o_req_t *req, err_t *err)
{
    int status = err_http_status(err->code);
    log_info("%.*s %.*s: %d %s", (int)req->method.len, req->method.base, (int)req->path.len,
             req->path.base, status, err_message(err));
    buf_t body = BUF_INIT;
    fhir_outcome_json(err, SEVERITY_ERROR, "error", &body);
    http__admin_send(req, status, "application/fhir+json", &body);
    buf_release(&body);
}

void http__json_time(buf_t *out, const char *key, int64_t us)
{
    if (!us) {
        buf_addf(out, ",\"%s\":null", key);
        return;
    }
    time_t seconds = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&seconds, &tm);
    buf_addf(out, ",\"%s\":\"%04d-%02d-%02dT%02d:%02d:%02dZ\"", key, tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void http__json_string(buf_t *out, const char *key, const char *value)
{
    buf_addf(out, ",\"%s\":", key);
    if (!value) {
        buf_addstr(out, "null");
        return;
    }
    buf_addch(out, '"');
    buf_add_json_escaped(out, value, strlen(value));
    buf_addch(out, '"');
}

bool http__parse_id(const char *text, size_t len, int64_t *out)
{
    if (len == 0 || len > 18)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return false;
        v = v * 10 + (text[i] - '0');
    }
    *out = v;
    return v > 0;
}

status_t http__admin_caller(http_thread_t *thread, h2o_req_t *req, arena_t *arena, const char *what,
                            const repo_caller_t **out, err_t *err)
{
    const char *challenge = NULL;
    status_t rc = http__bearer_caller(thread, req, arena, out, &challenge, err);
    if (rc) {
        if (challenge)
            http__admin_header(req, "www-authenticate", challenge);
        return rc;
    }
    const repo_caller_t *caller = *out;
    if (caller->kind == REPO_CALLER_ADMIN)
        return ERR_OK;
    auth_audit_event(thread->server->audit, "denied", caller->username, caller->role,
                     caller->client_id,
                     caller->source ? caller->source : http__peer_address(req, arena), "403",
                     arena_strndup(arena, req->path_normalized.base, req->path_normalized.len));
    return err_set(err, ERR_FORBIDDEN, NULL, "only administrators may %s", what);
}
