/*
 * clock.c - the test clock's endpoint, /admin/clock: only with `serve --test-clock`
 * (config.test_clock); otherwise the path does not exist (404 like any unknown one).
 *
 * GET answers the server's time and what its work queues hold now (outbox events not yet
 * handled, jobs due: a test waits for both to be 0 before it looks at the engine's work); POST
 * {"now": INSTANT} or {"advance": DURATION} moves the wall clock (base/clock.h) forward, never
 * back, and wakes the work queue worker so that jobs that came due run at once. Only administrators
 * and backend services with system write scopes on every type may call it.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "base/calendar.h"
#include "base/clock.h"
#include "base/jv.h"
#include "base/log.h"
#include "fhir/outcome.h"
#include "http/http_int.h"
#include "repo/scope.h"
#include "repo/worker.h"

/* A body larger than this is not a clock setting. */
#define MAX_BODY 4096

static void add_header(h2o_req_t *req, const char *name, const char *value)
{
    size_t len = strlen(value);
    char *copy = h2o_mem_alloc_pool(&req->pool, len + 1);
    memcpy(copy, value, len + 1);
    h2o_set_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 1, copy, len, 1);
}

static void send_body(h2o_req_t *req, int status, const char *reason, const char *type,
                      const buf_t *body)
{
    char *copy = h2o_mem_alloc_pool(&req->pool, body->len + 1);
    memcpy(copy, body->ptr, body->len + 1);
    req->res.status = status;
    req->res.reason = reason;
    add_header(req, "content-type", type);
    req->res.content_length = body->len;
    h2o_send_inline(req, copy, body->len);
}

static void send_error(h2o_req_t *req, err_t *err)
{
    int status = err_http_status(err->code);
    log_info("%.*s %.*s: %d %s", (int)req->method.len, req->method.base, (int)req->path.len,
             req->path.base, status, err_message(err));
    buf_t body = BUF_INIT;
    fhir_outcome_json(err, SEVERITY_ERROR, "error", &body);
    send_body(req, status, status == 401 ? "Unauthorized" : "Error", "application/fhir+json",
              &body);
    buf_release(&body);
}

/* "2026-03-08T06:59:00.000000Z" */
static void format_utc(int64_t us, char *out, size_t size)
{
    int64_t seconds = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    tz_civil_t c;
    tz_t *utc = tz_new_utc();
    tz_to_local(utc, seconds, &c, NULL);
    tz_free(utc);
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", c.year, c.month, c.day, c.hour,
             c.minute, c.second, (int)(us - seconds * 1000000));
}

/* "2026-03-08T01:59:00-05:00" in the calendar's zone */
static void format_local(const tz_t *zone, int64_t us, char *out, size_t size)
{
    int64_t seconds = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    tz_civil_t c;
    int32_t offset;
    tz_to_local(zone, seconds, &c, &offset);
    int32_t a = offset < 0 ? -offset : offset;
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", c.year, c.month, c.day, c.hour,
             c.minute, c.second, offset < 0 ? '-' : '+', a / 3600, a / 60 % 60);
}

/* Jobs due at now_us (scheduled, run_at_us reached: waiting or being run), counted over the
 * job list a page at a time. */
static status_t count_due_jobs(store_conn_t *conn, int64_t now_us, int64_t *out, err_t *err)
{
    *out = 0;
    store_job_query_t query = {.count = 200};
    for (;;) {
        arena_t arena;
        arena_init(&arena);
        store_job_t *jobs;
        size_t n;
        status_t rc = store_job_list(conn, &query, &arena, &jobs, &n, err);
        if (!rc) {
            for (size_t i = 0; i < n; i++)
                if (jobs[i].state == STORE_JOB_SCHEDULED && jobs[i].run_at_us <= now_us)
                    (*out)++;
            if (n == query.count)
                query.after_job_id = jobs[n - 1].job_id;
        }
        arena_release(&arena);
        if (rc || n < query.count)
            return rc;
    }
}

static void send_time(http_thread_t *thread, h2o_req_t *req)
{
    const calendar_t *cal = calendar_default();
    int64_t now = clock_now_us();
    /* the work queues at now: what a test waits for before it looks at the engine's work */
    int64_t events = 0, dead = 0, jobs = 0;
    err_t err = ERR_INIT;
    if (store_outbox_counts(thread->conn, &events, &dead, &err) ||
        count_due_jobs(thread->conn, now, &jobs, &err)) {
        send_error(req, &err);
        err_release(&err);
        return;
    }
    char utc[40], local[40];
    format_utc(now, utc, sizeof(utc));
    format_local(calendar_zone(cal), now, local, sizeof(local));
    buf_t body = BUF_INIT;
    buf_addf(&body, "{\"now\":\"%s\",\"local\":\"%s\",\"timeZone\":\"", utc, local);
    const char *zone = tz_name(calendar_zone(cal));
    buf_add_json_escaped(&body, zone, strlen(zone));
    buf_addf(&body, "\",\"offsetSeconds\":%lld,\"work\":{\"events\":%lld,\"jobsDue\":%lld}}",
             (long long)(clock_offset_us() / 1000000), (long long)events, (long long)jobs);
    send_body(req, 200, "OK", "application/json; charset=utf-8", &body);
    buf_release(&body);
}

/* Administrators, and backend services granted writes on every type (system/ *.cruds). */
static bool may_set_clock(const repo_caller_t *caller)
{
    if (caller->kind == REPO_CALLER_ADMIN)
        return true;
    if (caller->kind != REPO_CALLER_SERVICE || !caller->scopes)
        return false;
    for (size_t i = 0; i < caller->scopes->nresources; i++) {
        const scope_resource_t *scope = &caller->scopes->resources[i];
        if (scope->context == SCOPE_SYSTEM && strcmp(scope->type, "*") == 0 && !scope->query &&
            (scope->perms & (SCOPE_C | SCOPE_U | SCOPE_D)) == (SCOPE_C | SCOPE_U | SCOPE_D))
            return true;
    }
    return false;
}

/* A full date and time with its offset: what "now" must be. */
static bool is_instant_text(const char *s)
{
    size_t n = strlen(s);
    if (n < 20 || s[10] != 'T')
        return false;
    return s[n - 1] == 'Z' || strchr(s + 19, '+') || strchr(s + 19, '-');
}

/* Moves the clock as the body says; ERR_OK when it answered nothing yet. */
static status_t move_clock(h2o_req_t *req, err_t *err)
{
    if (req->entity.len > MAX_BODY)
        return err_set(err, ERR_TOO_LARGE, NULL, "the body is over %d bytes", MAX_BODY);
    json_error_t json_error;
    json_t *body = req->entity.base ? json_loadb(req->entity.base, req->entity.len,
                                                 JSON_REJECT_DUPLICATES, &json_error)
                                    : NULL;
    status_t rc = ERR_OK;
    json_t *now = body ? json_object_get(body, "now") : NULL;
    json_t *advance = body ? json_object_get(body, "advance") : NULL;
    if (!body || !json_is_object(body) || json_object_size(body) != 1 || (!now && !advance)) {
        rc = err_set(err, ERR_INVALID, NULL,
                     "the body must be {\"now\": \"INSTANT\"} or {\"advance\": \"DURATION\"}");
        goto out;
    }
    const calendar_t *cal = calendar_default();
    int64_t before = clock_now_us(), after;
    if (now) {
        const char *text = json_string_value(now);
        int64_t target;
        if (!text || !is_instant_text(text) || !http__parse_instant(text, &target)) {
            rc = err_set(err, ERR_VALUE, "now",
                         "\"now\" must be an instant with its offset, such as "
                         "2026-03-08T01:59:00-05:00");
            goto out;
        }
        if (!clock_set_us(target, &after)) {
            char current[40];
            format_utc(after, current, sizeof(current));
            rc = err_set(err, ERR_CONFLICT, "now",
                         "cannot move the clock back: \"%s\" is before the server's time %s", text,
                         current);
            goto out;
        }
    } else {
        const char *text = json_string_value(advance);
        calendar_duration_t duration;
        if (!text) {
            rc = err_set(err, ERR_VALUE, "advance",
                         "\"advance\" must be a duration such as \"P1D\" or \"4 hours\"");
            goto out;
        }
        if ((rc = calendar_duration_parse(text, strlen(text), &duration, err)))
            goto out;
        if (!clock_set_us(calendar_add(cal, before, &duration), &after))
            after = clock_now_us(); /* zero or less: nothing moves */
    }
    char text[40];
    format_utc(after, text, sizeof(text));
    log_warning("the test clock moved forward by %lld s to %s",
                (long long)((after - before) / 1000000), text);
    repo_worker_wake();
out:
    json_decref(body);
    return rc;
}

bool http__clock_route(http_thread_t *thread, h2o_req_t *req, arena_t *arena)
{
    h2o_iovec_t path = req->path_normalized;
    if (!thread->server->config.test_clock || path.len != 12 ||
        memcmp(path.base, "/admin/clock", 12) != 0)
        return false;
    err_t err = ERR_INIT;
    bool is_get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"));
    bool is_post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
    const repo_caller_t *caller = NULL;
    const char *challenge = NULL;
    if (!is_get && !is_post) {
        add_header(req, "allow", "GET, POST");
        err_set(&err, ERR_METHOD, NULL, "the test clock takes GET and POST");
    } else if (http__bearer_caller(thread, req, arena, &caller, &challenge, &err)) {
        if (challenge)
            add_header(req, "www-authenticate", challenge);
    } else if (!may_set_clock(caller)) {
        err_set(&err, ERR_FORBIDDEN, NULL,
                "only administrators and backend services with system/*.cruds may use the "
                "test clock");
    } else if (is_post) {
        move_clock(req, &err);
    }
    if (err.code != ERR_OK)
        send_error(req, &err);
    else
        send_time(thread, req);
    err_release(&err);
    return true;
}
