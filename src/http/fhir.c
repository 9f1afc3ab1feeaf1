/*
 * fhir.c - the FHIR REST API over HTTP: routing, content negotiation, headers, and turning
 * errors into OperationOutcomes. This is the boundary where err_t values become responses
 * and are logged.
 *
 * Reads answer at once from the thread's store connection and send the stored JSON as it is.
 * Writes are prepared here (parse, validate, serialize) and committed by the store's writer;
 * the response goes out when the writer reports the write durable, on the thread that took
 * the request. If the client went away meanwhile, the result is dropped (the write stands).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/arena.h"
#include "base/jv.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/url.h"
#include "care/protocols.h"
#include "fhir/defs.h"
#include "fhir/outcome.h"
#include "http/http_int.h"
#include "http/web.h"
#include "repo/bundle.h"
#include "repo/conditional.h"
#include "repo/repo.h"

#define FHIR_JSON             "application/fhir+json"
#define HISTORY_DEFAULT_COUNT 50
#define HISTORY_MAX_COUNT     1000

typedef enum { PREFER_REPRESENTATION, PREFER_MINIMAL, PREFER_OUTCOME } prefer_t;

typedef http_param_t param_t; /* decoded, in the arena */

/* What every response of a request shares: format and preferences. */
typedef struct {
    h2o_req_t *req;
    http_thread_t *thread;
    arena_t *arena;
    bool pretty;
    bool plain_json; /* the client asked for application/json rather than FHIR's type */
    prefer_t prefer;
    param_t *params;
    size_t nparams;
    const char *base;      /* e.g. http://127.0.0.1:8080/fhir */
    const char *type_name; /* the resource type and id of the URL, when it names them */
    const char *id;
    const repo_caller_t *caller; /* who asks: from the request's access token (bearer.c) */
    /* the audit trail: the interaction a failure is recorded as (NULL: not recorded), and a
       search's query string */
    const char *audit_action;
    const char *audit_query;
} ctx_t;

/* A write waiting for the store's writer. Heap-allocated: it may outlive the request. */
typedef struct pending pending_t;
typedef struct {
    pending_t *pending;
} pending_cell_t;

struct pending {
    h2o_multithread_message_t message;
    http_thread_t *thread;
    h2o_req_t *req; /* NULL once the request is gone */
    pending_cell_t *cell;
    arena_t arena;
    ctx_t ctx;
    repo_write_t write;   /* a single write, or */
    repo_cond_t cond;     /* a conditional one (is_cond: cond.write is write), or */
    repo_bundle_t bundle; /* a batch or transaction (is_bundle) */
    bool is_bundle;
    bool is_cond;
    status_t rc;
    err_t err;
};

/* ---- small helpers ------------------------------------------------------------------- */

static bool iov_eq(h2o_iovec_t v, const char *s)
{
    size_t n = strlen(s);
    return v.len == n && memcmp(v.base, s, n) == 0;
}

static h2o_iovec_t header(h2o_req_t *req, const h2o_token_t *token)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    if (i < 0)
        return h2o_iovec_init(NULL, 0);
    return req->headers.entries[i].value;
}

static h2o_iovec_t header_by_name(h2o_req_t *req, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (i < 0)
        return h2o_iovec_init(NULL, 0);
    return req->headers.entries[i].value;
}

static void parse_query(ctx_t *ctx)
{
    h2o_req_t *req = ctx->req;
    ctx->params = NULL;
    ctx->nparams = 0;
    if (req->query_at == SIZE_MAX)
        return;
    const char *q = req->path.base + req->query_at + 1;
    ctx->nparams = url_query_split(ctx->arena, q, req->path.len - req->query_at - 1, &ctx->params);
}

static const char *param(const ctx_t *ctx, const char *name)
{
    for (size_t i = 0; i < ctx->nparams; i++)
        if (strcmp(ctx->params[i].name, name) == 0)
            return ctx->params[i].value;
    return NULL;
}

static void http_date(int64_t us, char out[64])
{
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    snprintf(out, 64, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void set_header(ctx_t *ctx, const h2o_token_t *token, const char *value)
{
    h2o_req_t *req = ctx->req;
    size_t len = strlen(value);
    char *copy = h2o_mem_alloc_pool(&req->pool, len + 1);
    memcpy(copy, value, len + 1);
    h2o_set_header(&req->pool, &req->res.headers, token, copy, len, 1);
}

static void set_header_by_name(ctx_t *ctx, const char *name, const char *value)
{
    h2o_req_t *req = ctx->req;
    size_t len = strlen(value);
    char *copy = h2o_mem_alloc_pool(&req->pool, len + 1);
    memcpy(copy, value, len + 1);
    h2o_set_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 1, copy, len, 1);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 428: return "Precondition Required";
    case 503: return "Service Unavailable";
    default: return status >= 500 ? "Internal Server Error" : "Error";
    }
}

/* Records an interaction of this request in the audit trail. */
static void audit(ctx_t *ctx, const char *action, int status, const http_audit_patients_t *patients)
{
    http_audit_t what = {.caller = ctx->caller,
                         .req = ctx->req,
                         .action = action,
                         .type = ctx->type_name,
                         .id = ctx->id,
                         .query = ctx->audit_query,
                         .status = status};
    http__audit(ctx->thread->server, &what, patients);
}

/* Sends body (JSON text) with the request's format preferences. */
static void send_json(ctx_t *ctx, int status, const char *body, size_t len)
{
    h2o_req_t *req = ctx->req;
    req->res.status = status;
    req->res.reason = reason_phrase(status);
    if (status == 204 || !body) {
        req->res.content_length = 0;
        h2o_send_inline(req, "", 0);
        return;
    }
    set_header(ctx, H2O_TOKEN_CONTENT_TYPE,
               ctx->plain_json ? "application/json; charset=utf-8" : FHIR_JSON "; charset=utf-8");
    if (ctx->pretty) {
        buf_t pretty = BUF_INIT;
        jv_pretty(body, len, &pretty);
        buf_addch(&pretty, '\n');
        req->res.content_length = pretty.len;
        h2o_send_inline(req, pretty.ptr, pretty.len);
        buf_release(&pretty);
        return;
    }
    req->res.content_length = len;
    h2o_send_inline(req, body, len);
}

static void send_error(ctx_t *ctx, err_t *err)
{
    /* When a body has several problems, a malformed resource (400) outranks a well-formed one
     * that breaks a rule (422): the lowest status among the errors is the answer. */
    int status = err_http_status(err->code);
    for (size_t i = 0; i < err->nissues; i++) {
        int s = err_http_status(err->issues[i].code);
        if (err->issues[i].severity <= SEVERITY_ERROR && s >= 400 && s < status)
            status = s;
    }
    h2o_req_t *req = ctx->req;
    if (status >= 500)
        log_error("%.*s %.*s: %s%s%s", (int)req->method.len, req->method.base, (int)req->path.len,
                  req->path.base, err_message(err), err->log_detail ? ": " : "",
                  err->log_detail ? err->log_detail : "");
    else if (err->log_detail)
        log_info("%.*s %.*s: %d %s (%s)", (int)req->method.len, req->method.base,
                 (int)req->path.len, req->path.base, status, err_message(err), err->log_detail);
    if (err->code == ERR_UNAVAILABLE)
        set_header_by_name(ctx, "retry-after", "1");
    if (ctx->audit_action)
        audit(ctx, ctx->audit_action, status, NULL);
    buf_t body = BUF_INIT;
    fhir_outcome_json(err, SEVERITY_ERROR, "error", &body);
    send_json(ctx, status, body.ptr, body.len);
    buf_release(&body);
}

static void fail(ctx_t *ctx, status_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(ctx_t *ctx, status_t code, const char *fmt, ...)
{
    err_t err = ERR_INIT;
    va_list ap;
    va_start(ap, fmt);
    err_vset(&err, code, NULL, fmt, ap);
    va_end(ap);
    send_error(ctx, &err);
    err_release(&err);
}

static void set_version_headers(ctx_t *ctx, const store_version_t *v)
{
    char etag[48], date[64];
    snprintf(etag, sizeof(etag), "W/\"%lld\"", (long long)v->version);
    set_header(ctx, H2O_TOKEN_ETAG, etag);
    http_date(v->updated_us, date);
    set_header(ctx, H2O_TOKEN_LAST_MODIFIED, date);
}

/* Parses an ETag value (W/"3" or "3") into a version; 0 and an error when malformed. */
static int64_t parse_etag(h2o_iovec_t v, bool *ok)
{
    const char *s = v.base, *end = v.base + v.len;
    while (s < end && *s == ' ')
        s++;
    while (end > s && end[-1] == ' ')
        end--;
    if (end - s >= 2 && (s[0] == 'W' || s[0] == 'w') && s[1] == '/')
        s += 2;
    if (end - s >= 2 && *s == '"' && end[-1] == '"') {
        s++;
        end--;
    }
    int64_t n = 0;
    if (s == end || end - s > 18) {
        *ok = false;
        return 0;
    }
    for (; s < end; s++) {
        if (*s < '0' || *s > '9') {
            *ok = false;
            return 0;
        }
        n = n * 10 + (*s - '0');
    }
    *ok = n > 0;
    return n;
}

/* ---- negotiation --------------------------------------------------------------------- */

static bool json_media_type(const char *s, size_t len)
{
    static const char *const types[] = {"application/fhir+json", "application/json",
                                        "application/json+fhir", "json", "text/json"};
    /* compare the type up to ';' case-insensitively */
    size_t n = 0;
    while (n < len && s[n] != ';')
        n++;
    while (n > 0 && s[n - 1] == ' ')
        n--;
    while (n > 0 && *s == ' ') {
        s++;
        n--;
    }
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strlen(types[i]) == n && strncasecmp(s, types[i], n) == 0)
            return true;
    return false;
}

/* Decides the response format from _format and Accept; false (and a 406) when none fits. */
static bool negotiate(ctx_t *ctx)
{
    const char *format = param(ctx, "_format");
    if (format) {
        if (!json_media_type(format, strlen(format))) {
            fail(ctx, ERR_NOT_ACCEPTABLE,
                 "_format \"%s\" is not supported: this server speaks FHIR JSON "
                 "(application/fhir+json, json)",
                 format);
            return false;
        }
        ctx->plain_json = strncasecmp(format, "application/json", 16) == 0;
        return true;
    }
    h2o_iovec_t accept = header(ctx->req, H2O_TOKEN_ACCEPT);
    if (!accept.base || accept.len == 0)
        return true;
    bool any = false, fhir = false, plain = false;
    const char *p = accept.base, *end = accept.base + accept.len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        if (!comma)
            comma = end;
        const char *s = p;
        while (s < comma && *s == ' ')
            s++;
        size_t n = 0;
        while (s + n < comma && s[n] != ';' && s[n] != ' ')
            n++;
        if ((n == 3 && memcmp(s, "*/*", 3) == 0) ||
            (n == 13 && strncasecmp(s, "application/*", 13) == 0))
            any = true;
        else if (n == 16 && strncasecmp(s, "application/json", 16) == 0)
            plain = true;
        else if (json_media_type(s, n))
            fhir = true;
        p = comma + 1;
    }
    if (!any && !fhir && !plain) {
        fail(ctx, ERR_NOT_ACCEPTABLE,
             "none of the types in Accept (%s) can be produced: this server speaks "
             "application/fhir+json",
             arena_strndup(ctx->arena, accept.base, accept.len));
        return false;
    }
    ctx->plain_json = plain && !fhir && !any;
    return true;
}

static bool check_content_type(ctx_t *ctx)
{
    h2o_iovec_t type = header(ctx->req, H2O_TOKEN_CONTENT_TYPE);
    if (!type.base)
        return true; /* a body without a type is taken as FHIR JSON */
    if (json_media_type(type.base, type.len))
        return true;
    fail(ctx, ERR_MEDIA_TYPE, "Content-Type \"%s\" is not supported: send application/fhir+json",
         arena_strndup(ctx->arena, type.base, type.len));
    return false;
}

static void parse_prefer(ctx_t *ctx)
{
    h2o_iovec_t prefer = header_by_name(ctx->req, "prefer");
    ctx->prefer = PREFER_REPRESENTATION;
    if (!prefer.base)
        return;
    char *s = arena_strndup(ctx->arena, prefer.base, prefer.len);
    if (strstr(s, "return=minimal"))
        ctx->prefer = PREFER_MINIMAL;
    else if (strstr(s, "return=OperationOutcome"))
        ctx->prefer = PREFER_OUTCOME;
}

static bool parse_pretty(ctx_t *ctx)
{
    const char *pretty = param(ctx, "_pretty");
    if (!pretty)
        return true;
    if (strcmp(pretty, "true") == 0) {
        ctx->pretty = true;
        return true;
    }
    if (strcmp(pretty, "false") == 0)
        return true;
    fail(ctx, ERR_INVALID, "_pretty must be true or false, not \"%s\"", pretty);
    return false;
}

/* ---- reads --------------------------------------------------------------------------- */

static void respond_version(ctx_t *ctx, int status, const store_version_t *v, bool with_location)
{
    set_version_headers(ctx, v);
    if (with_location) {
        char *location = arena_printf(ctx->arena, "%s/%s/%s/_history/%lld", ctx->base, v->type,
                                      v->id, (long long)v->version);
        set_header(ctx, H2O_TOKEN_LOCATION, location);
        set_header_by_name(ctx, "content-location", location);
    }
    switch (ctx->prefer) {
    case PREFER_MINIMAL: send_json(ctx, status, NULL, 0); return;
    case PREFER_OUTCOME: {
        err_t info = ERR_INIT;
        err_add(&info, ERR_OK, SEVERITY_INFORMATION, NULL, "%s/%s version %lld %s", v->type, v->id,
                (long long)v->version,
                v->deleted      ? "deleted"
                : status == 201 ? "created"
                                : "stored");
        buf_t body = BUF_INIT;
        fhir_outcome_json(&info, SEVERITY_INFORMATION, "", &body);
        send_json(ctx, status, body.ptr, body.len);
        buf_release(&body);
        err_release(&info);
        return;
    }
    case PREFER_REPRESENTATION: send_json(ctx, status, v->json, v->json_len); return;
    }
}

static void handle_read(ctx_t *ctx, const char *type, const char *id, int64_t version)
{
    store_version_t v;
    err_t err = ERR_INIT;
    status_t rc =
        repo_read_as(ctx->thread->conn, ctx->caller, type, id, version, ctx->arena, &v, NULL, &err);
    if (rc == ERR_GONE)
        set_version_headers(ctx, &v);
    if (rc) {
        send_error(ctx, &err);
    } else {
        set_version_headers(ctx, &v);
        send_json(ctx, 200, v.json, v.json_len);
        http_audit_patients_t patients = {0};
        http__audit_patient_add(ctx->arena, &patients, type, id, v.json, v.json_len);
        audit(ctx, version ? "vread" : "read", 200, &patients);
    }
    err_release(&err);
}

/* An instant (YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm|-hh:mm)) or a day (its first moment). */
bool http__parse_instant(const char *s, int64_t *out_us)
{
    int64_t high;
    fhir_search_precision_t precision;
    bool zoned;
    if (!fhir_date_range(s, strlen(s), out_us, &high, &precision, &zoned))
        return false;
    return precision == FHIR_SEARCH_PRECISION_DAY ||
           (precision >= FHIR_SEARCH_PRECISION_SECOND && zoned);
}

static void history_link(ctx_t *ctx, buf_t *out, const char *relation, const char *path,
                         const char *since, size_t count, const char *cursor_name, int64_t cursor)
{
    buf_addf(out, "{\"relation\":\"%s\",\"url\":\"", relation);
    buf_add_json_escaped(out, ctx->base, strlen(ctx->base));
    buf_add_json_escaped(out, path, strlen(path));
    buf_addf(out, "?_count=%zu", count);
    if (since) {
        buf_addstr(out, "&_since=");
        for (const char *p = since; *p; p++) {
            if (*p == '+')
                buf_addstr(out, "%2B");
            else
                buf_addch(out, *p);
        }
    }
    if (cursor_name)
        buf_addf(out, "&%s=%lld", cursor_name, (long long)cursor);
    if (ctx->pretty)
        buf_addstr(out, "&_pretty=true");
    buf_addstr(out, "\"}");
}

static bool parse_count(ctx_t *ctx, const char *name, size_t *out)
{
    const char *s = param(ctx, name);
    if (!s)
        return true;
    char *end;
    long n = strtol(s, &end, 10);
    if (!*s || *end || n < 0) {
        fail(ctx, ERR_INVALID, "_count must be a non-negative integer, not \"%s\"", s);
        return false;
    }
    *out = n > HISTORY_MAX_COUNT ? HISTORY_MAX_COUNT : (size_t)n;
    return true;
}

static bool parse_cursor(ctx_t *ctx, const char *name, int64_t *out)
{
    const char *s = param(ctx, name);
    if (!s)
        return true;
    char *end;
    long long n = strtoll(s, &end, 10);
    if (!*s || *end || n <= 0) {
        fail(ctx, ERR_INVALID, "the paging cursor \"%s\" is not valid", s);
        return false;
    }
    *out = n;
    return true;
}

static void handle_history(ctx_t *ctx, const char *type, const char *id)
{
    store_history_query_t q = {.type = type,
                               .id = id,
                               .since_us = INT64_MIN,
                               .before_seq = INT64_MAX,
                               .after_seq = 0,
                               .count = HISTORY_DEFAULT_COUNT,
                               .want_total = id != NULL};
    const char *since = param(ctx, "_since");
    if (since && !http__parse_instant(since, &q.since_us)) {
        fail(ctx, ERR_INVALID, "_since must be an instant such as 2024-01-31T12:00:00Z, not \"%s\"",
             since);
        return;
    }
    if (!parse_count(ctx, "_count", &q.count) || !parse_cursor(ctx, "_before", &q.before_seq) ||
        !parse_cursor(ctx, "_after", &q.after_seq))
        return;
    for (size_t i = 0; i < ctx->nparams; i++) {
        const char *name = ctx->params[i].name;
        if (strcmp(name, "_since") && strcmp(name, "_count") && strcmp(name, "_before") &&
            strcmp(name, "_after") && strcmp(name, "_format") && strcmp(name, "_pretty")) {
            fail(ctx, ERR_INVALID,
                 "history does not support the parameter \"%s\" (supported: _count, _since)", name);
            return;
        }
    }
    if (id) {
        store_version_t v;
        err_t err = ERR_INIT;
        status_t rc = store_read(ctx->thread->conn, type, id, 0, ctx->arena, &v, &err);
        if (rc) {
            send_error(ctx, &err);
            err_release(&err);
            return;
        }
        err_release(&err);
    }
    store_history_t h;
    err_t err = ERR_INIT;
    /* _count=0: only the total */
    status_t rc =
        repo_history(ctx->thread->search_conn, ctx->caller, &q, ctx->arena, &h, NULL, &err);
    if (rc) {
        send_error(ctx, &err);
        err_release(&err);
        return;
    }
    err_release(&err);

    const char *path = id     ? arena_printf(ctx->arena, "/%s/%s/_history", type, id)
                       : type ? arena_printf(ctx->arena, "/%s/_history", type)
                              : "/_history";
    buf_t out = BUF_INIT;
    buf_addstr(&out, "{\"resourceType\":\"Bundle\",\"type\":\"history\"");
    if (h.total >= 0)
        buf_addf(&out, ",\"total\":%lld", (long long)h.total);
    buf_addstr(&out, ",\"link\":[");
    history_link(ctx, &out, "self", path, since, q.count,
                 q.after_seq                 ? "_after"
                 : q.before_seq != INT64_MAX ? "_before"
                                             : NULL,
                 q.after_seq ? q.after_seq : q.before_seq);
    if (h.n && h.more_older) {
        buf_addch(&out, ',');
        history_link(ctx, &out, "next", path, since, q.count, "_before", h.versions[h.n - 1].seq);
    }
    if (h.n && h.more_newer) {
        buf_addch(&out, ',');
        history_link(ctx, &out, "previous", path, since, q.count, "_after", h.versions[0].seq);
    }
    buf_addch(&out, ']'); /* and "entry" only when there is one: no empty arrays */
    for (size_t i = 0; i < h.n; i++) {
        store_version_t *v = &h.versions[i];
        buf_addstr(&out, i ? ",{\"fullUrl\":\"" : ",\"entry\":[{\"fullUrl\":\"");
        buf_add_json_escaped(&out, ctx->base, strlen(ctx->base));
        buf_addf(&out, "/%s/%s\"", v->type, v->id);
        if (!v->deleted) {
            buf_addstr(&out, ",\"resource\":");
            buf_add(&out, v->json, v->json_len);
        }
        bool post = strcmp(v->method, "POST") == 0;
        buf_addf(&out, ",\"request\":{\"method\":\"%s\",\"url\":\"%s", v->method, v->type);
        if (!post)
            buf_addf(&out, "/%s", v->id);
        buf_addf(&out,
                 "\"},\"response\":{\"status\":\"%d\",\"etag\":\"W/\\\"%lld\\\"\","
                 "\"lastModified\":\"%s\"}}",
                 v->status, (long long)v->version, v->last_updated);
    }
    buf_addstr(&out, h.n ? "]}" : "}");
    send_json(ctx, 200, out.ptr, out.len);
    buf_release(&out);
    http_audit_patients_t patients = {0};
    for (size_t i = 0; i < h.n; i++)
        if (!h.versions[i].deleted)
            http__audit_patient_add(ctx->arena, &patients, h.versions[i].type, h.versions[i].id,
                                    h.versions[i].json, h.versions[i].json_len);
    audit(ctx, "history", 200, &patients);
}

/* ---- writes -------------------------------------------------------------------------- */

static void pending_dispose(void *p)
{
    pending_cell_t *cell = p;
    if (cell->pending)
        cell->pending->req = NULL;
}

static void on_write_done(void *arg, status_t rc, err_t *err)
{
    /* on the store's writer thread: hand over to the request's thread */
    pending_t *pending = arg;
    pending->rc = rc;
    err_move(&pending->err, err);
    h2o_multithread_send_message(&pending->thread->done_receiver, &pending->message);
}

/* What a conditional write answers differently from a plain one; false: answer as a plain
 * write of the resource it settled on. */
static bool finish_conditional(pending_t *pending)
{
    ctx_t *ctx = &pending->ctx;
    repo_cond_t *c = &pending->cond;
    repo_write_t *w = &pending->write;
    if (w->action == REPO_CREATE && c->matched) {
        /* one match: nothing was created; the answer is the match */
        respond_version(ctx, 200, &w->result, true);
        return true;
    }
    if (w->action != REPO_DELETE || (c->nmatches == 1 && !w->noop))
        return false;
    if (ctx->prefer == PREFER_OUTCOME) {
        err_t info = ERR_INIT;
        if (c->ndeletes)
            err_add(&info, ERR_OK, SEVERITY_INFORMATION, NULL,
                    "%zu %s resources matching \"%s\" deleted", c->ndeletes, w->type,
                    c->condition.text);
        else
            err_add(&info, ERR_OK, SEVERITY_INFORMATION, NULL,
                    "no %s matches \"%s\": nothing was deleted", w->type, c->condition.text);
        buf_t body = BUF_INIT;
        fhir_outcome_json(&info, SEVERITY_INFORMATION, "", &body);
        send_json(ctx, 200, body.ptr, body.len);
        buf_release(&body);
        err_release(&info);
    } else {
        send_json(ctx, 204, NULL, 0);
    }
    return true;
}

/* The audit rows of a Bundle's entries: its reads and searches, and the writes that failed
 * (a write that stands recorded itself in the transaction). */
static void audit_bundle(ctx_t *ctx, const repo_bundle_t *bundle)
{
    for (size_t i = 0; i < bundle->nentries; i++) {
        const repo_entry_t *e = &bundle->entries[i];
        if (!e->ran && !e->rc)
            continue;
        int status = e->rc ? err_http_status(e->rc) : 200;
        ctx_t entry = *ctx;
        entry.type_name = e->type;
        entry.id = e->id;
        entry.audit_query = NULL;
        http_audit_patients_t patients = {0};
        const char *action;
        if (e->kind == REPO_ENTRY_READ) {
            action = e->version ? "vread" : "read";
            if (!e->rc)
                http__audit_patient_add(ctx->arena, &patients, e->read.type, e->read.id,
                                        e->read.json, e->read.json_len);
        } else if (e->kind == REPO_ENTRY_SEARCH) {
            action = "search";
            const char *mark = e->url ? strchr(e->url, '?') : NULL;
            entry.audit_query = mark ? mark + 1 : NULL;
            if (!e->rc)
                http__audit_entries(ctx->arena, &patients, &e->found);
        } else if (e->rc) {
            action = !strcmp(e->method, "POST")     ? "create"
                     : !strcmp(e->method, "PATCH")  ? "patch"
                     : !strcmp(e->method, "DELETE") ? "delete"
                                                    : "update";
        } else {
            continue;
        }
        audit(&entry, action, status, &patients);
    }
}

static void finish_write(pending_t *pending)
{
    ctx_t *ctx = &pending->ctx;
    ctx->req = pending->req;
    repo_write_t *w = &pending->write;
    if (pending->rc) {
        send_error(ctx, &pending->err);
        return;
    }
    if (pending->is_bundle) {
        buf_t out = BUF_INIT;
        repo_bundle_response(&pending->bundle, ctx->base, ctx->prefer != PREFER_MINIMAL, &out);
        send_json(ctx, 200, out.ptr, out.len);
        buf_release(&out);
        audit_bundle(ctx, &pending->bundle);
        return;
    }
    if (pending->is_cond && finish_conditional(pending))
        return;
    switch (w->action) {
    case REPO_CREATE: respond_version(ctx, 201, &w->result, true); break;
    case REPO_UPDATE:
    case REPO_PATCH: respond_version(ctx, w->created ? 201 : 200, &w->result, true); break;
    case REPO_DELETE:
        if (!w->noop)
            set_version_headers(ctx, &w->result);
        if (ctx->prefer == PREFER_OUTCOME) {
            err_t info = ERR_INIT;
            err_add(&info, ERR_OK, SEVERITY_INFORMATION, NULL,
                    w->noop ? "%s/%s did not exist or was already deleted" : "%s/%s deleted",
                    w->type, w->id);
            buf_t body = BUF_INIT;
            fhir_outcome_json(&info, SEVERITY_INFORMATION, "", &body);
            send_json(ctx, 200, body.ptr, body.len);
            buf_release(&body);
            err_release(&info);
        } else {
            send_json(ctx, 204, NULL, 0);
        }
        break;
    }
}

void http__on_writes_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *message =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&message->link);
        pending_t *pending = H2O_STRUCT_FROM_MEMBER(pending_t, message, message);
        pending->thread->pending--;
        if (pending->req) {
            pending->cell->pending = NULL;
            finish_write(pending);
        }
        if (pending->is_bundle)
            repo_bundle_release(&pending->bundle);
        arena_release(&pending->arena);
        err_release(&pending->err);
        free(pending);
    }
}

static pending_t *pending_new(ctx_t *ctx)
{
    pending_t *pending = xcalloc(1, sizeof(*pending));
    pending->thread = ctx->thread;
    pending->req = ctx->req;
    arena_init(&pending->arena);
    pending->ctx = *ctx;
    pending->ctx.arena = &pending->arena;
    pending->ctx.base = arena_strdup(&pending->arena, ctx->base);
    pending->ctx.params = NULL;
    pending->ctx.nparams = 0;
    /* what the audit of a failure reads when the request's arena is gone */
    pending->ctx.type_name = ctx->type_name ? arena_strdup(&pending->arena, ctx->type_name) : NULL;
    pending->ctx.id = ctx->id ? arena_strdup(&pending->arena, ctx->id) : NULL;
    pending->ctx.audit_query = NULL;
    pending->ctx.caller = http__caller_copy(&pending->arena, ctx->caller);
    err_init(&pending->err);
    return pending;
}

static void submit_write(pending_t *pending)
{
    pending->cell =
        h2o_mem_alloc_shared(&pending->req->pool, sizeof(pending_cell_t), pending_dispose);
    pending->cell->pending = pending;
    pending->thread->pending++;
    if (pending->is_bundle)
        store_submit(pending->thread->server->store, repo_bundle_txn, &pending->bundle,
                     on_write_done, pending);
    else if (pending->is_cond)
        store_submit(pending->thread->server->store, repo_cond_txn, &pending->cond, on_write_done,
                     pending);
    else
        store_submit(pending->thread->server->store, repo_write_txn, &pending->write, on_write_done,
                     pending);
}

/* Submits a prepared write, or answers with the error that preparing it gave (rc). The
 * write is the caller's (set after preparing, which fills the structs in): the access policy
 * works out here, on this thread, which patients it may write for, and checks it in the
 * transaction, where a write by a caller also adds its audit row (repo.h). */
static void submit_prepared(ctx_t *ctx, pending_t *pending, status_t rc, err_t *err)
{
    if (!rc) {
        pending->write.caller = pending->ctx.caller;
        if (pending->is_cond)
            rc = repo_cond_prepare_access(ctx->thread->conn, &pending->cond, err);
        else
            rc = repo_access_prepare_write(ctx->thread->conn, &pending->write, err);
    }
    if (rc) {
        send_error(ctx, err);
        err_release(err);
        arena_release(&pending->arena);
        free(pending);
        return;
    }
    err_release(err);
    submit_write(pending);
}

static bool check_body(ctx_t *ctx);

static void handle_bundle(ctx_t *ctx)
{
    if (!check_body(ctx))
        return;
    pending_t *pending = pending_new(ctx);
    pending->is_bundle = true;
    pending->bundle.caller = pending->ctx.caller; /* kept by prepare, which checks the entries */
    err_t err = ERR_INIT;
    if (repo_bundle_prepare(&pending->bundle, ctx->req->entity.base, ctx->req->entity.len,
                            pending->ctx.base, ctx->thread->server->config.multiple_delete,
                            ctx->thread->conn, &pending->arena, &err)) {
        send_error(ctx, &err);
        err_release(&err);
        repo_bundle_release(&pending->bundle);
        arena_release(&pending->arena);
        free(pending);
        return;
    }
    err_release(&err);
    submit_write(pending);
}

static bool read_if_match(ctx_t *ctx, int64_t *out)
{
    *out = 0;
    h2o_iovec_t v = header(ctx->req, H2O_TOKEN_IF_MATCH);
    if (!v.base)
        return true;
    bool ok;
    *out = parse_etag(v, &ok);
    if (!ok) {
        fail(ctx, ERR_INVALID, "If-Match must be an ETag such as W/\"3\", not %s",
             arena_strndup(ctx->arena, v.base, v.len));
        return false;
    }
    return true;
}

/* The body is there and within max-body; `what` says what it should hold. */
static bool check_body_size(ctx_t *ctx, const char *what)
{
    h2o_req_t *req = ctx->req;
    size_t max = ctx->thread->server->config.max_body;
    if (req->entity.len > max) {
        err_t err = ERR_INIT;
        err_set(&err, ERR_TOO_LARGE, NULL,
                "the body is %zu bytes, over the limit of %zu bytes (setting max-body)",
                req->entity.len, max);
        send_error(ctx, &err);
        err_release(&err);
        return false;
    }
    if (!req->entity.base || req->entity.len == 0) {
        fail(ctx, ERR_SYNTAX, "the request has no body: send %s", what);
        return false;
    }
    return true;
}

static bool check_body(ctx_t *ctx)
{
    return check_body_size(ctx, "a FHIR resource as JSON") && check_content_type(ctx);
}

static void handle_patch(ctx_t *ctx, const char *type, const char *id)
{
    int64_t if_match;
    if (!read_if_match(ctx, &if_match) ||
        !check_body_size(ctx, "a JSON Patch or a FHIRPath Patch (Parameters)"))
        return;
    h2o_iovec_t content_type = header(ctx->req, H2O_TOKEN_CONTENT_TYPE);
    bool json_patch = content_type.base && content_type.len >= 27 &&
                      strncasecmp(content_type.base, "application/json-patch+json", 27) == 0;
    /* FHIR JSON: a FHIRPath Patch, a Parameters resource */
    bool fhirpath_patch = content_type.base && json_media_type(content_type.base, content_type.len);
    if (!json_patch && !fhirpath_patch) {
        fail(ctx, ERR_MEDIA_TYPE,
             "PATCH takes a JSON Patch (Content-Type: application/json-patch+json) or a FHIRPath "
             "Patch (a Parameters resource as application/fhir+json), not \"%s\"",
             content_type.base ? arena_strndup(ctx->arena, content_type.base, content_type.len)
                               : "nothing");
        return;
    }
    pending_t *pending = pending_new(ctx);
    err_t err = ERR_INIT;
    status_t rc;
    if (json_patch)
        rc = repo_prepare_patch(&pending->write, type, id, ctx->req->entity.base,
                                ctx->req->entity.len, if_match, &pending->arena, &err);
    else
        rc =
            repo_prepare_fhirpath_patch_body(&pending->write, type, id, ctx->req->entity.base,
                                             ctx->req->entity.len, if_match, &pending->arena, &err);
    submit_prepared(ctx, pending, rc, &err);
}

/*
 * A conditional write: create with If-None-Exist, update or delete of [type]?criteria.
 * criteria (len bytes) is the query as sent (percent-encoded).
 */
static void handle_conditional(ctx_t *ctx, repo_action_t action, const fhir_type_t *type,
                               const char *criteria, size_t len)
{
    int64_t if_match;
    if (!read_if_match(ctx, &if_match))
        return;
    if (action != REPO_DELETE && !check_body(ctx))
        return;
    pending_t *pending = pending_new(ctx);
    pending->is_cond = true;
    repo_cond_t *c = &pending->cond;
    c->write = &pending->write;
    c->base = pending->ctx.base;
    c->multiple = action == REPO_DELETE && ctx->thread->server->config.multiple_delete;
    err_t err = ERR_INIT;
    h2o_iovec_t body = ctx->req->entity;
    status_t rc = repo_condition_parse(&c->condition, type, criteria, len, ctx->thread->conn,
                                       &pending->arena, &err);
    if (!rc) {
        switch (action) {
        case REPO_CREATE:
            rc = repo_prepare_create(&pending->write, type->name, body.base, body.len,
                                     &pending->arena, &err);
            break;
        case REPO_UPDATE:
            rc = repo_prepare_cond_update(&pending->write, type->name, body.base, body.len,
                                          if_match, &pending->arena, &c->body_id, &err);
            break;
        default:
            rc = repo_prepare_delete(&pending->write, type->name, "", if_match, &pending->arena,
                                     &err);
            break;
        }
    }
    submit_prepared(ctx, pending, rc, &err);
}

static void handle_write(ctx_t *ctx, repo_action_t action, const char *type, const char *id)
{
    if (action == REPO_CREATE) {
        h2o_iovec_t criteria = header_by_name(ctx->req, "if-none-exist");
        if (criteria.base) {
            handle_conditional(ctx, action, fhir_resource_type_find(type, strlen(type)),
                               criteria.base, criteria.len);
            return;
        }
    }
    int64_t if_match;
    if (!read_if_match(ctx, &if_match))
        return;
    if (action != REPO_DELETE && !check_body(ctx))
        return;
    pending_t *pending = pending_new(ctx);
    err_t err = ERR_INIT;
    status_t rc;
    h2o_iovec_t body = ctx->req->entity;
    switch (action) {
    case REPO_CREATE:
        rc = repo_prepare_create(&pending->write, type, body.base, body.len, &pending->arena, &err);
        break;
    case REPO_UPDATE:
        rc = repo_prepare_update(&pending->write, type, id, body.base, body.len, if_match,
                                 &pending->arena, &err);
        break;
    default:
        rc = repo_prepare_delete(&pending->write, type, id, if_match, &pending->arena, &err);
        break;
    }
    submit_prepared(ctx, pending, rc, &err);
}

/* What a search, $everything, $tcm or $apply needs of the request. */
static http_search_request_t search_request(ctx_t *ctx)
{
    return (http_search_request_t){.thread = ctx->thread,
                                   .req = ctx->req,
                                   .arena = ctx->arena,
                                   .base = ctx->base,
                                   .params = ctx->params,
                                   .nparams = ctx->nparams,
                                   .caller = ctx->caller};
}

/* ---- routing ------------------------------------------------------------------------- */

static void method_not_allowed(ctx_t *ctx, const char *allow, const char *what)
{
    set_header(ctx, H2O_TOKEN_ALLOW, allow);
    err_t err = ERR_INIT;
    err_set(&err, ERR_METHOD, NULL, "%.*s is not allowed on %s (allowed: %s)",
            (int)ctx->req->method.len, ctx->req->method.base, what, *allow ? allow : "none yet");
    send_error(ctx, &err);
    err_release(&err);
}

static bool is_get(h2o_req_t *req)
{
    return iov_eq(req->method, "GET") || iov_eq(req->method, "HEAD");
}

static const char *segment_copy(ctx_t *ctx, h2o_iovec_t seg)
{
    return url_decode(ctx->arena, seg.base, seg.len, false, NULL);
}

static const fhir_type_t *resource_type(ctx_t *ctx, const char *name)
{
    const fhir_type_t *type = fhir_resource_type_find(name, strlen(name));
    if (!type)
        fail(ctx, ERR_NOT_FOUND, "\"%s\" is not a FHIR R4 resource type", name);
    return type;
}

static bool valid_id(ctx_t *ctx, const char *id)
{
    if (repo_id_valid(id, strlen(id)))
        return true;
    fail(ctx, ERR_INVALID, "\"%s\" is not a valid id (1 to 64 of A-Z a-z 0-9 - .)", id);
    return false;
}

static void handle_search(ctx_t *ctx, const h2o_iovec_t *seg, size_t nseg)
{
    http_search_request_t r = search_request(ctx);
    store_search_result_t result = {0};
    r.result = &result;
    buf_t body = BUF_INIT;
    err_t err = ERR_INIT;
    if (http__search(&r, seg, nseg, &body, &err)) {
        send_error(ctx, &err);
    } else {
        send_json(ctx, 200, body.ptr, body.len);
        http_audit_patients_t patients = {0};
        http__audit_entries(ctx->arena, &patients, &result);
        audit(ctx, "search", 200, &patients);
    }
    buf_release(&body);
    err_release(&err);
}

/* GET or POST Patient/[id]/$everything, Patient/$everything (id NULL). */
static void handle_everything(ctx_t *ctx, const char *id)
{
    bool post = iov_eq(ctx->req->method, "POST");
    if (!is_get(ctx->req) && !post) {
        method_not_allowed(ctx, "GET, HEAD, POST", "$everything");
        return;
    }
    if (post && ctx->req->entity.len && !check_body(ctx))
        return;
    http_everything_t e = {.patient_id = id,
                           .post = post,
                           .since = param(ctx, "_since"),
                           .types = param(ctx, "_type"),
                           .count = param(ctx, "_count"),
                           .page = param(ctx, "_page")};
    http_search_request_t r = search_request(ctx);
    store_search_result_t result = {0};
    r.result = &result;
    buf_t body = BUF_INIT;
    err_t err = ERR_INIT;
    if (http__everything(&r, &e, &body, &err)) {
        send_error(ctx, &err);
    } else {
        send_json(ctx, 200, body.ptr, body.len);
        http_audit_patients_t patients = {0};
        http__audit_entries(ctx->arena, &patients, &result);
        audit(ctx, "everything", 200, &patients);
    }
    buf_release(&body);
    err_release(&err);
}

/* GET CarePlan/[id]/$adherence. */
static void handle_adherence(ctx_t *ctx, const char *id)
{
    if (!is_get(ctx->req)) {
        method_not_allowed(ctx, "GET, HEAD", "$adherence");
        return;
    }
    buf_t body = BUF_INIT;
    err_t err = ERR_INIT;
    http_audit_patients_t patients = {0};
    if (http__care_plan_adherence(ctx->thread, ctx->caller, id, ctx->arena, &body, &patients,
                                  &err)) {
        send_error(ctx, &err);
    } else {
        send_json(ctx, 200, body.ptr, body.len);
        audit(ctx, "read", 200, &patients);
    }
    buf_release(&body);
    err_release(&err);
}

/* An operation that answers from reads: Encounter/[id]/$tcm (id), Encounter/$readmissions
 * and Task/$worklist (id NULL). */
typedef status_t (*read_operation_fn)(const http_search_request_t *request, const char *id,
                                      bool post, buf_t *out, http_audit_patients_t *patients,
                                      err_t *err);

static status_t readmissions_op(const http_search_request_t *request, const char *id, bool post,
                                buf_t *out, http_audit_patients_t *patients, err_t *err)
{
    (void)id;
    return http__readmissions(request, post, out, patients, err);
}

static status_t worklist_op(const http_search_request_t *request, const char *id, bool post,
                            buf_t *out, http_audit_patients_t *patients, err_t *err)
{
    (void)id;
    return http__worklist(request, post, out, patients, err);
}

/*
 * GET (HEAD) or POST of a read operation named name: the answer of fn, audited as a read of
 * what it read, or, when search is set, as a search with the request's query.
 */
static void handle_read_operation(ctx_t *ctx, const char *name, read_operation_fn fn,
                                  const char *id, bool search)
{
    bool post = iov_eq(ctx->req->method, "POST");
    if (!is_get(ctx->req) && !post) {
        method_not_allowed(ctx, "GET, HEAD, POST", name);
        return;
    }
    if (post && ctx->req->entity.len && !check_body(ctx))
        return;
    const char *action = search ? "search" : "read";
    if (search) {
        ctx->audit_action = action;
        if (ctx->req->query_at != SIZE_MAX)
            ctx->audit_query =
                arena_strndup(ctx->arena, ctx->req->path.base + ctx->req->query_at + 1,
                              ctx->req->path.len - ctx->req->query_at - 1);
    }
    http_search_request_t r = search_request(ctx);
    buf_t body = BUF_INIT;
    err_t err = ERR_INIT;
    http_audit_patients_t patients = {0};
    if (fn(&r, id, post, &body, &patients, &err)) {
        send_error(ctx, &err);
    } else {
        send_json(ctx, 200, body.ptr, body.len);
        audit(ctx, action, 200, &patients);
    }
    buf_release(&body);
    err_release(&err);
}

/* PlanDefinition/[id]/$apply waiting for a worker of offload.c: its reads and its one
 * transaction do not hold up the event loop. Heap-allocated: it may outlive the request. */
typedef struct {
    http_job_t job;
    arena_t arena;
    ctx_t ctx;
    care_apply_t apply;
    buf_t body;
    err_t err;
    status_t rc;
} apply_job_t;

static void apply_work(http_job_t *job, store_conn_t *conn)
{
    apply_job_t *j = (apply_job_t *)job;
    j->rc = care_protocols_apply(j->ctx.thread->server->store, conn, &j->apply, &j->arena, &j->body,
                                 &j->err);
}

static void apply_done(http_job_t *job)
{
    apply_job_t *j = (apply_job_t *)job;
    if (job->req) {
        j->ctx.req = job->req;
        if (j->rc) {
            send_error(&j->ctx, &j->err);
        } else {
            send_json(&j->ctx, 200, j->body.ptr, j->body.len);
            audit(&j->ctx, "apply", 200, NULL);
        }
    }
    buf_release(&j->body);
    err_release(&j->err);
    arena_release(&j->arena);
    free(j);
}

/* GET or POST PlanDefinition/[id]/$apply (apply.c): the parameters are read here, the run is
 * a job. */
static void handle_apply(ctx_t *ctx, const char *id)
{
    bool post = iov_eq(ctx->req->method, "POST");
    if (!is_get(ctx->req) && !post) {
        method_not_allowed(ctx, "GET, POST", "$apply");
        return;
    }
    if (post && ctx->req->entity.len && !check_body(ctx))
        return;
    http_search_request_t r = search_request(ctx);
    care_apply_t apply;
    err_t err = ERR_INIT;
    if (http__apply_parse(&r, id, post, &apply, &err)) {
        send_error(ctx, &err);
        err_release(&err);
        return;
    }
    apply_job_t *j = xcalloc(1, sizeof(*j));
    arena_init(&j->arena);
    err_init(&j->err);
    j->ctx = *ctx;
    j->ctx.arena = &j->arena;
    j->ctx.base = arena_strdup(&j->arena, ctx->base);
    j->ctx.params = NULL;
    j->ctx.nparams = 0;
    j->ctx.type_name = ctx->type_name ? arena_strdup(&j->arena, ctx->type_name) : NULL;
    j->ctx.id = ctx->id ? arena_strdup(&j->arena, ctx->id) : NULL;
    j->ctx.audit_query = NULL;
    j->ctx.caller = http__caller_copy(&j->arena, ctx->caller);
    j->apply = apply;
    j->apply.plan_id = arena_strdup(&j->arena, apply.plan_id);
    j->apply.subject = apply.subject ? arena_strdup(&j->arena, apply.subject) : NULL;
    j->apply.caller = j->ctx.caller;
    j->job.work = apply_work;
    j->job.done = apply_done;
    http__job_submit(ctx->thread, ctx->req, &j->job);
}

/* GET AuditEvent and AuditEvent/[id]: the audit trail, read-only (audit.c). */
static void handle_audit_event(ctx_t *ctx, size_t nseg)
{
    if (!is_get(ctx->req)) {
        set_header(ctx, H2O_TOKEN_ALLOW, "GET, HEAD");
        fail(ctx, ERR_METHOD, "the audit trail cannot be changed: AuditEvent is read-only");
        return;
    }
    if (nseg > 2 || (nseg == 2 && !ctx->id)) {
        fail(ctx, ERR_NOT_FOUND,
             "the audit trail has neither history nor operations: read or search AuditEvent");
        return;
    }
    http_audit_request_t r = {.conn = ctx->thread->conn,
                              .arena = ctx->arena,
                              .base = ctx->base,
                              .params = ctx->params,
                              .nparams = ctx->nparams,
                              .caller = ctx->caller,
                              .id = ctx->id};
    buf_t body = BUF_INIT;
    err_t err = ERR_INIT;
    if (http__audit_api(&r, &body, &err)) {
        send_error(ctx, &err);
    } else {
        send_json(ctx, 200, body.ptr, body.len);
        audit(ctx, ctx->audit_action, 200, NULL);
    }
    buf_release(&body);
    err_release(&err);
}

/* What the audit trail records a request as until the route says more. */
static void audit_route(ctx_t *ctx, const h2o_iovec_t *seg, size_t nseg, bool search)
{
    h2o_req_t *req = ctx->req;
    ctx->audit_action = search                          ? "search"
                        : is_get(req)                   ? "read"
                        : iov_eq(req->method, "POST")   ? (nseg ? "create" : "transaction")
                        : iov_eq(req->method, "PATCH")  ? "patch"
                        : iov_eq(req->method, "DELETE") ? "delete"
                                                        : "update";
    if (nseg >= 1 && seg[0].len && seg[0].base[0] != '_' && seg[0].base[0] != '$')
        ctx->type_name = segment_copy(ctx, seg[0]);
    if (nseg >= 2 && seg[1].len && seg[1].base[0] != '_' && seg[1].base[0] != '$')
        ctx->id = segment_copy(ctx, seg[1]);
    if (nseg >= 3 && strcmp(segment_copy(ctx, seg[nseg - 1]), "_history") == 0)
        ctx->audit_action = "history";
    if (nseg >= 4 && !search)
        ctx->audit_action = "vread";
    if ((nseg == 2 || nseg == 3) && strcmp(segment_copy(ctx, seg[nseg - 1]), "$everything") == 0)
        ctx->audit_action = "everything";
    if (nseg == 3 && strcmp(segment_copy(ctx, seg[2]), "$apply") == 0)
        ctx->audit_action = "apply";
    if (nseg == 3 && strcmp(segment_copy(ctx, seg[2]), "$tcm") == 0)
        ctx->audit_action = "read"; /* a report on the Encounter, also by POST */
    if (nseg >= 1 && nseg <= 2 && strcmp(segment_copy(ctx, seg[nseg - 1]), "_history") == 0)
        ctx->audit_action = "history";
    if (search && req->query_at != SIZE_MAX)
        ctx->audit_query = arena_strndup(ctx->arena, req->path.base + req->query_at + 1,
                                         req->path.len - req->query_at - 1);
    if (nseg == 1 && strcmp(ctx->type_name ? ctx->type_name : "", "metadata") == 0)
        ctx->audit_action = NULL; /* no health data */
}

static void route_fhir(ctx_t *ctx, h2o_iovec_t *seg, size_t nseg)
{
    h2o_req_t *req = ctx->req;
    bool search = http__is_search(req, seg, nseg);
    audit_route(ctx, seg, nseg, search);
    if (nseg >= 1 && iov_eq(seg[0], "AuditEvent")) {
        handle_audit_event(ctx, nseg);
        return;
    }
    if (search) {
        handle_search(ctx, seg, nseg);
        return;
    }
    if (nseg == 0) {
        if (iov_eq(req->method, "POST"))
            handle_bundle(ctx);
        else
            method_not_allowed(ctx, "GET, HEAD, POST",
                               "the base URL: search with GET, POST a batch or transaction "
                               "Bundle");
        return;
    }
    const char *first = segment_copy(ctx, seg[0]);
    if (nseg == 1 && strcmp(first, "metadata") == 0) {
        if (!is_get(req)) {
            method_not_allowed(ctx, "GET", "/metadata");
            return;
        }
        size_t len;
        char *capability = http__capability(ctx->thread->server, &req->pool, ctx->base, &len);
        send_json(ctx, 200, capability, len);
        return;
    }
    if (nseg == 1 && strcmp(first, "_history") == 0) {
        if (!is_get(req))
            method_not_allowed(ctx, "GET", "/_history");
        else
            handle_history(ctx, NULL, NULL);
        return;
    }
    const fhir_type_t *type = resource_type(ctx, first);
    if (!type)
        return;
    const char *tname = type->name;
    if (nseg == 1) {
        /* PUT and DELETE on a type are conditional: the query holds the criteria */
        bool query = req->query_at != SIZE_MAX;
        const char *criteria = query ? req->path.base + req->query_at + 1 : NULL;
        size_t criteria_len = query ? req->path.len - req->query_at - 1 : 0;
        if (iov_eq(req->method, "POST"))
            handle_write(ctx, REPO_CREATE, tname, NULL);
        else if (query && iov_eq(req->method, "PUT"))
            handle_conditional(ctx, REPO_UPDATE, type, criteria, criteria_len);
        else if (query && iov_eq(req->method, "DELETE"))
            handle_conditional(ctx, REPO_DELETE, type, criteria, criteria_len);
        else
            method_not_allowed(ctx, "GET, HEAD, POST",
                               "a resource type (a conditional PUT or DELETE has search "
                               "criteria: [type]?identifier=...)");
        return;
    }
    const char *second = segment_copy(ctx, seg[1]);
    if (nseg == 2 && strcmp(second, "_history") == 0) {
        if (!is_get(req))
            method_not_allowed(ctx, "GET", "a type's history");
        else
            handle_history(ctx, tname, NULL);
        return;
    }
    if (nseg == 2 && strcmp(second, "$everything") == 0 &&
        type == fhir_resource_type_find("Patient", 7)) {
        handle_everything(ctx, NULL);
        return;
    }
    if (nseg == 2 && strcmp(second, "$worklist") == 0 &&
        type == fhir_resource_type_find("Task", 4)) {
        handle_read_operation(ctx, "$worklist", worklist_op, NULL, true);
        return;
    }
    if (nseg == 2 && strcmp(second, "$readmissions") == 0 &&
        type == fhir_resource_type_find("Encounter", 9)) {
        handle_read_operation(ctx, "$readmissions", readmissions_op, NULL, true);
        return;
    }
    if (!valid_id(ctx, second))
        return;
    if (nseg == 3 && type == fhir_resource_type_find("Patient", 7) &&
        strcmp(segment_copy(ctx, seg[2]), "$everything") == 0) {
        handle_everything(ctx, second);
        return;
    }
    if (nseg == 3 && type == fhir_resource_type_find("CarePlan", 8) &&
        strcmp(segment_copy(ctx, seg[2]), "$adherence") == 0) {
        handle_adherence(ctx, second);
        return;
    }
    if (nseg == 3 && type == fhir_resource_type_find("Encounter", 9) &&
        strcmp(segment_copy(ctx, seg[2]), "$tcm") == 0) {
        handle_read_operation(ctx, "$tcm", http__tcm, second, false);
        return;
    }
    if (nseg == 3 && type == fhir_resource_type_find("PlanDefinition", 14) &&
        strcmp(segment_copy(ctx, seg[2]), "$apply") == 0) {
        handle_apply(ctx, second);
        return;
    }
    if (nseg == 2) {
        if (is_get(req))
            handle_read(ctx, tname, second, 0);
        else if (iov_eq(req->method, "PUT"))
            handle_write(ctx, REPO_UPDATE, tname, second);
        else if (iov_eq(req->method, "DELETE"))
            handle_write(ctx, REPO_DELETE, tname, second);
        else if (iov_eq(req->method, "PATCH"))
            handle_patch(ctx, tname, second);
        else
            method_not_allowed(ctx, "GET, HEAD, PUT, PATCH, DELETE", "a resource");
        return;
    }
    const char *third = segment_copy(ctx, seg[2]);
    if (strcmp(third, "_history") != 0 || nseg > 4) {
        fail(ctx, ERR_NOT_FOUND, "no such endpoint: %s",
             arena_strndup(ctx->arena, req->path_normalized.base, req->path_normalized.len));
        return;
    }
    if (!is_get(req)) {
        method_not_allowed(ctx, "GET", "history");
        return;
    }
    if (nseg == 3) {
        handle_history(ctx, tname, second);
        return;
    }
    const char *vid = segment_copy(ctx, seg[3]);
    char *end;
    long long version = strtoll(vid, &end, 10);
    if (!*vid || *end || version <= 0) {
        fail(ctx, ERR_NOT_FOUND, "\"%s\" is not a version id (versions are 1, 2, ...)", vid);
        return;
    }
    handle_read(ctx, tname, second, version);
}

const char *http__base_url(http_server_t *server, h2o_req_t *req, arena_t *arena)
{
    if (server->config.base_url)
        return server->config.base_url;
    return arena_printf(arena, "%.*s://%.*s/fhir", (int)req->scheme->name.len,
                        req->scheme->name.base, (int)req->authority.len, req->authority.base);
}

/* Authenticates the request (bearer.c) into ctx->caller; false when it answered. */
static bool authenticate(ctx_t *ctx)
{
    const char *challenge = NULL;
    err_t err = ERR_INIT;
    status_t rc =
        http__bearer_caller(ctx->thread, ctx->req, ctx->arena, &ctx->caller, &challenge, &err);
    if (rc) {
        if (challenge)
            set_header(ctx, H2O_TOKEN_WWW_AUTHENTICATE, challenge);
        send_error(ctx, &err);
    }
    err_release(&err);
    return rc == ERR_OK;
}

int http__handle(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    arena_t arena;
    arena_init(&arena);
    ctx_t ctx = {.req = req, .thread = http__thread_of(req), .arena = &arena};
    h2o_iovec_t path = req->path_normalized;

    if (iov_eq(path, "/healthz")) {
        req->res.status = 200;
        req->res.reason = "OK";
        set_header(&ctx, H2O_TOKEN_CONTENT_TYPE, "text/plain; charset=utf-8");
        req->res.content_length = 3;
        h2o_send_inline(req, "ok\n", 3);
        goto out;
    }
    if (http__cors_path(path)) {
        http__cors_headers(req);
        /* a CORS preflight: OPTIONS naming the method it prepares for */
        if (iov_eq(req->method, "OPTIONS") &&
            header_by_name(req, "access-control-request-method").base) {
            http__cors_preflight(req);
            goto out;
        }
    }
    if (((path.len > 8 && memcmp(path.base, "/oauth2/", 8) == 0) ||
         iov_eq(path, "/fhir/.well-known/smart-configuration")) &&
        http__oauth_route(ctx.thread, req, &arena, http__base_url(ctx.thread->server, req, &arena)))
        goto out;
    if (http__login_route(req, &arena))
        goto out;
    if (http__clock_route(ctx.thread, req, &arena))
        goto out;
    if (http__queue_route(ctx.thread, req, &arena))
        goto out;
    if (http__hl7_route(ctx.thread, req, &arena))
        goto out;
    if (http__web_route(req))
        goto out;
    if (!(path.len >= 5 && memcmp(path.base, "/fhir", 5) == 0 &&
          (path.len == 5 || path.base[5] == '/'))) {
        fail(&ctx, ERR_NOT_FOUND, "no such endpoint: %s",
             arena_strndup(&arena, path.base, path.len));
        goto out;
    }
    parse_query(&ctx);
    parse_prefer(&ctx);
    if (!parse_pretty(&ctx) || !negotiate(&ctx))
        goto out;
    ctx.base = http__base_url(ctx.thread->server, req, &arena);

    /* split what follows /fhir into segments, ignoring empty ones (trailing slash) */
    h2o_iovec_t seg[8];
    size_t nseg = 0;
    const char *p = path.base + 5, *end = path.base + path.len;
    while (p < end) {
        while (p < end && *p == '/')
            p++;
        const char *s = p;
        while (p < end && *p != '/')
            p++;
        if (p > s) {
            if (nseg == 8) {
                fail(&ctx, ERR_NOT_FOUND, "no such endpoint: %s",
                     arena_strndup(&arena, path.base, path.len));
                goto out;
            }
            seg[nseg++] = h2o_iovec_init(s, (size_t)(p - s));
        }
    }
    /* the CapabilityStatement says how to get a token: it needs none */
    if (!(nseg == 1 && iov_eq(seg[0], "metadata") && is_get(req)) && !authenticate(&ctx))
        goto out;
    route_fhir(&ctx, seg, nseg);
out:
    arena_release(&arena);
    return 0;
}
