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

static status_t list(http_thread_t *thread, h2o_req_t *req, arena_t *arena, buf_t *out, err_t *err)
{
    int64_t after = 0;
    if (req->query_at != SIZE_MAX) {
        const char *q = req->path.base + req->query_at + 1;
        size_t qlen = req->path.len - req->query_at - 1;
        if (qlen < 6 || memcmp(q, "after=", 6) != 0 || !http__parse_id(q + 6, qlen - 6, &after))
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
        buf_addf(out, "%s{\"id\":%lld", i ? "," : "", (long long)e->event_id);
        http__json_string(
            out, "resource",
            arena_printf(arena, "%s/%s/_history/%lld", e->type, e->id, (long long)e->version));
        http__json_string(out, "action", store_event_action_name(e->action));
        buf_addf(out, ",\"attempts\":%lld", (long long)e->attempts);
        http__json_string(out, "lastError", e->last_error);
        http__json_time(out, "time", e->time_us);
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
        replaying = http__parse_id(rest + 6, rest_len - 13, &event_id);
    err_t err = ERR_INIT;
    buf_t body = BUF_INIT;
    const repo_caller_t *caller = NULL;
    const char *want = listing ? "GET" : "POST";
    if (!listing && !replaying) {
        err_set(&err, ERR_NOT_FOUND, NULL,
                "no such endpoint: %.*s (the work queue has GET " PREFIX " and POST " PREFIX
                "/dead/ID/replay)",
                (int)path.len, path.base);
    } else if (!h2o_memis(req->method.base, req->method.len, want, strlen(want))) {
        http__admin_header(req, "allow", want);
        err_set(&err, ERR_METHOD, NULL, "%.*s takes %s only", (int)path.len, path.base, want);
    } else if (http__admin_caller(thread, req, arena, "see and replay the work queue", &caller,
                                  &err)) {
        /* answered below */
    } else if (listing) {
        list(thread, req, arena, &body, &err);
    } else {
        replay(thread, req, caller, event_id, arena, &body, &err);
    }
    if (err.code != ERR_OK)
        http__admin_error(req, &err);
    else
        http__admin_send(req, 200, "application/json; charset=utf-8", &body);
    buf_release(&body);
    err_release(&err);
    return true;
}
