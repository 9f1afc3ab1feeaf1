/*
 * queue.c - the work queue's admin endpoints (docs/api.md, "Work queue"): GET /admin/queue
 * shows the outbox at a glance and its dead events (those that failed max_attempts times),
 * POST /admin/queue/dead/{id}/replay makes one available again with its attempts reset.
 *
 * Administrators only. A replay is recorded in the audit trail ("queue-replay") and wakes
 * this process's worker so that the event is handled at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "fhir/outcome.h"
#include "http/http_int.h"
#include "repo/worker.h"

#define PREFIX     "/admin/queue"
#define PAGE_COUNT 100

static void add_header(h2o_req_t *req, const char *name, const char *value)
{
    size_t len = strlen(value);
    char *copy = h2o_mem_alloc_pool(&req->pool, len + 1);
    memcpy(copy, value, len + 1);
    h2o_set_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 1, copy, len, 1);
}

static void send_body(h2o_req_t *req, int status, const char *type, const buf_t *body)
{
    char *copy = h2o_mem_alloc_pool(&req->pool, body->len + 1);
    memcpy(copy, body->ptr, body->len + 1);
    req->res.status = status;
    req->res.reason = status == 200 ? "OK" : "Error";
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
    send_body(req, status, "application/fhir+json", &body);
    buf_release(&body);
}

/* "2026-03-08T06:59:00Z" */
static void format_utc(int64_t us, char *out, size_t size)
{
    time_t seconds = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&seconds, &tm);
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void add_string(buf_t *out, const char *key, const char *value)
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

/* The number in text (len bytes) when it is all digits and positive. */
static bool parse_id(const char *text, size_t len, int64_t *out)
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

static status_t list(http_thread_t *thread, h2o_req_t *req, arena_t *arena, buf_t *out, err_t *err)
{
    int64_t after = 0;
    if (req->query_at != SIZE_MAX) {
        const char *q = req->path.base + req->query_at + 1;
        size_t qlen = req->path.len - req->query_at - 1;
        if (qlen < 6 || memcmp(q, "after=", 6) != 0 || !parse_id(q + 6, qlen - 6, &after))
            return err_set(err, ERR_INVALID, NULL,
                           "the only parameter is after=ID, the id of the last dead event of "
                           "the previous page");
    }
    store_outbox_stats_t stats;
    store_event_t *events;
    size_t n;
    status_t rc = store_outbox_stats(thread->conn, clock_now_us(), &stats, err);
    if (!rc)
        rc = store_outbox_dead(thread->conn, after, PAGE_COUNT, arena, &events, &n, err);
    if (rc)
        return rc;
    buf_addf(out, "{\"pending\":%lld,\"claimed\":%lld,\"dead\":%lld,\"deadEvents\":[",
             (long long)stats.pending, (long long)stats.claimed, (long long)stats.dead);
    for (size_t i = 0; i < n; i++) {
        const store_event_t *e = &events[i];
        char when[80];
        format_utc(e->time_us, when, sizeof(when));
        buf_addf(out, "%s{\"id\":%lld", i ? "," : "", (long long)e->event_id);
        add_string(
            out, "resource",
            arena_printf(arena, "%s/%s/_history/%lld", e->type, e->id, (long long)e->version));
        add_string(out, "action", store_event_action_name(e->action));
        buf_addf(out, ",\"attempts\":%lld", (long long)e->attempts);
        add_string(out, "lastError", e->last_error);
        add_string(out, "time", when);
        buf_addch(out, '}');
    }
    buf_addch(out, ']');
    if (n == PAGE_COUNT)
        buf_addf(out, ",\"next\":\"" PREFIX "?after=%lld\"", (long long)events[n - 1].event_id);
    buf_addch(out, '}');
    return ERR_OK;
}

typedef struct {
    int64_t event_id;
    int64_t now_us;
} replay_t;

static status_t replay_txn(store_txn_t *txn, void *arg, err_t *err)
{
    replay_t *r = arg;
    return store_txn_outbox_replay(txn, r->event_id, r->now_us, err);
}

static status_t replay(http_thread_t *thread, h2o_req_t *req, const repo_caller_t *caller,
                       int64_t event_id, arena_t *arena, buf_t *out, err_t *err)
{
    replay_t r = {.event_id = event_id, .now_us = clock_now_us()};
    status_t rc = store_run(thread->server->store, replay_txn, &r, err);
    const char *source = caller->source ? caller->source : http__peer_address(req, arena);
    auth_audit_event(thread->server->audit, "queue-replay", caller->username, caller->role,
                     caller->client_id, source, rc ? (rc == ERR_NOT_FOUND ? "404" : "500") : "200",
                     arena_printf(arena, "outbox event %lld", (long long)event_id));
    if (rc)
        return rc;
    log_info("queue: %s replayed dead outbox event %lld", caller->username ? caller->username : "?",
             (long long)event_id);
    repo_worker_wake();
    buf_addf(out, "{\"replayed\":%lld}", (long long)event_id);
    return ERR_OK;
}

bool http__queue_route(http_thread_t *thread, h2o_req_t *req, arena_t *arena)
{
    h2o_iovec_t path = req->path_normalized;
    size_t plen = sizeof(PREFIX) - 1;
    if (path.len < plen || memcmp(path.base, PREFIX, plen) != 0 ||
        (path.len > plen && path.base[plen] != '/'))
        return false;
    const char *rest = path.base + plen;
    size_t rest_len = path.len - plen;
    bool listing = rest_len == 0 || (rest_len == 1 && *rest == '/');
    int64_t event_id = 0;
    bool replaying = false;
    if (!listing && rest_len > 6 + 7 && memcmp(rest, "/dead/", 6) == 0 &&
        memcmp(rest + rest_len - 7, "/replay", 7) == 0)
        replaying = parse_id(rest + 6, rest_len - 13, &event_id);
    err_t err = ERR_INIT;
    buf_t body = BUF_INIT;
    const repo_caller_t *caller = NULL;
    const char *challenge = NULL;
    const char *want = listing ? "GET" : "POST";
    if (!listing && !replaying) {
        err_set(&err, ERR_NOT_FOUND, NULL,
                "no such endpoint: %.*s (the work queue has GET " PREFIX " and POST " PREFIX
                "/dead/ID/replay)",
                (int)path.len, path.base);
    } else if (!h2o_memis(req->method.base, req->method.len, want, strlen(want))) {
        add_header(req, "allow", want);
        err_set(&err, ERR_METHOD, NULL, "%.*s takes %s only", (int)path.len, path.base, want);
    } else if (http__bearer_caller(thread, req, arena, &caller, &challenge, &err)) {
        if (challenge)
            add_header(req, "www-authenticate", challenge);
    } else if (caller->kind != REPO_CALLER_ADMIN) {
        err_set(&err, ERR_FORBIDDEN, NULL, "only administrators may see and replay the work queue");
        auth_audit_event(thread->server->audit, "denied", caller->username, caller->role,
                         caller->client_id,
                         caller->source ? caller->source : http__peer_address(req, arena), "403",
                         arena_strndup(arena, path.base, path.len));
    } else if (listing) {
        list(thread, req, arena, &body, &err);
    } else {
        replay(thread, req, caller, event_id, arena, &body, &err);
    }
    if (err.code != ERR_OK)
        send_error(req, &err);
    else
        send_body(req, 200, "application/json; charset=utf-8", &body);
    buf_release(&body);
    err_release(&err);
    return true;
}
