/*
 * hl7.c - the HL7 feed's admin endpoints (docs/api.md, "HL7 feed"): GET /admin/hl7 (the
 * listener's counters and the messages by status), GET /admin/hl7/messages (a search of the
 * stored messages, newest first), GET /admin/hl7/messages/{id} (one, with its text and ACK),
 * POST /admin/hl7/messages/{id}/reprocess (applied again, e.g. after a fix of the record).
 *
 * Administrators only; a reprocess is recorded in the audit trail ("hl7-reprocess").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/url.h"
#include "fhir/search.h"
#include "hl7/ingest.h"
#include "hl7/listener.h"
#include "http/http_int.h"

#define PREFIX     "/admin/hl7"
#define PAGE_COUNT 100

static void message_json(buf_t *out, const store_hl7_message_t *m, bool whole)
{
    buf_addf(out, "{\"id\":%lld", (long long)m->id);
    http__json_time(out, "received", m->received_us);
    http__json_string(out, "peer", m->peer);
    http__json_string(out, "sender", m->sender);
    http__json_string(out, "controlId", m->control_id);
    http__json_string(out, "type", m->type);
    http__json_string(out, "status", m->status);
    http__json_string(out, "reason", m->reason);
    http__json_time(out, "processed", m->processed_us);
    buf_addf(out, ",\"attempts\":%lld", (long long)m->attempts);
    http__json_string(out, "patient", m->patient);
    http__json_string(out, "encounter", m->encounter);
    if (whole) {
        buf_addstr(out, ",\"message\":\"");
        buf_add_json_escaped(out, m->text ? m->text : "", m->text ? m->text_len : 0);
        buf_addch(out, '"');
        http__json_string(out, "ack", m->ack);
    }
    buf_addch(out, '}');
}

static status_t overview(http_thread_t *thread, arena_t *arena, buf_t *out, err_t *err)
{
    store_hl7_count_t *counts;
    size_t n;
    status_t rc = store_hl7_counts(thread->conn, arena, &counts, &n, err);
    if (rc)
        return rc;
    buf_addstr(out, "{\"listener\":");
    hl7_listener_t *listener = thread->server->config.mllp;
    if (listener) {
        hl7_listener_stats_t s;
        hl7_listener_stats(listener, &s);
        buf_addf(out,
                 "{\"port\":%d,\"connections\":%llu,\"accepted\":%llu,\"refused\":%llu,"
                 "\"messages\":%llu,\"tooLarge\":%llu,\"garbageBytes\":%llu,"
                 "\"droppedPartial\":%llu}",
                 hl7_listener_port(listener), (unsigned long long)s.connections_open,
                 (unsigned long long)s.accepted, (unsigned long long)s.refused,
                 (unsigned long long)s.messages, (unsigned long long)s.too_large,
                 (unsigned long long)s.garbage_bytes, (unsigned long long)s.dropped_partial);
    } else {
        buf_addstr(out, "null");
    }
    buf_addstr(out, ",\"messages\":{");
    static const char *const statuses[] = {STORE_HL7_RECEIVED, STORE_HL7_PROCESSED, STORE_HL7_ERROR,
                                           STORE_HL7_REJECTED};
    for (size_t i = 0; i < 4; i++) {
        int64_t count = 0;
        for (size_t k = 0; k < n; k++)
            if (strcmp(counts[k].status, statuses[i]) == 0)
                count = counts[k].count;
        buf_addf(out, "%s\"%s\":%lld", i ? "," : "", statuses[i], (long long)count);
    }
    buf_addstr(out, "}}");
    return ERR_OK;
}

static status_t time_param(const char *name, const char *value, bool upper, int64_t *out,
                           err_t *err)
{
    int64_t low, high;
    if (!fhir_date_range(value, strlen(value), &low, &high, NULL, NULL))
        return err_set(err, ERR_INVALID, NULL, "%s must be a date or an instant, not \"%s\"", name,
                       value);
    *out = upper ? high : low;
    return ERR_OK;
}

static status_t search(http_thread_t *thread, h2o_req_t *req, arena_t *arena, buf_t *out,
                       err_t *err)
{
    store_hl7_query_t q = {.count = PAGE_COUNT};
    url_pair_t *pairs = NULL;
    size_t n = 0;
    if (req->query_at != SIZE_MAX)
        n = url_query_split(arena, req->path.base + req->query_at + 1,
                            req->path.len - req->query_at - 1, &pairs);
    status_t rc = ERR_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        const char *name = pairs[i].name, *value = pairs[i].value;
        if (strcmp(name, "status") == 0) {
            if (strcmp(value, STORE_HL7_RECEIVED) && strcmp(value, STORE_HL7_PROCESSED) &&
                strcmp(value, STORE_HL7_ERROR) && strcmp(value, STORE_HL7_REJECTED))
                rc = err_set(err, ERR_INVALID, NULL,
                             "status must be received, processed, error or rejected, not "
                             "\"%s\"",
                             value);
            q.status = value;
        } else if (strcmp(name, "type") == 0) {
            q.type = value;
        } else if (strcmp(name, "sender") == 0) {
            q.sender = value;
        } else if (strcmp(name, "patient") == 0) {
            q.patient = value;
        } else if (strcmp(name, "control-id") == 0) {
            q.control_id = value;
        } else if (strcmp(name, "since") == 0) {
            rc = time_param(name, value, false, &q.from_us, err);
        } else if (strcmp(name, "until") == 0) {
            rc = time_param(name, value, true, &q.to_us, err);
        } else if (strcmp(name, "before") == 0) {
            if (!http__parse_id(value, strlen(value), &q.before_id))
                rc = err_set(err, ERR_INVALID, NULL, "before must be a message id, not \"%s\"",
                             value);
        } else if (strcmp(name, "count") == 0) {
            int64_t c;
            if (!http__parse_id(value, strlen(value), &c) || c > 1000)
                rc = err_set(err, ERR_INVALID, NULL, "count must be from 1 to 1000, not \"%s\"",
                             value);
            q.count = (size_t)c;
        } else {
            rc = err_set(err, ERR_INVALID, NULL,
                         "unknown parameter \"%s\" (the messages are searched by status, type, "
                         "sender, patient, control-id, since, until, before and count)",
                         name);
        }
    }
    store_hl7_message_t *rows = NULL;
    size_t nrows = 0;
    if (!rc)
        rc = store_hl7_list(thread->conn, &q, arena, &rows, &nrows, err);
    if (rc)
        return rc;
    buf_addstr(out, "{\"messages\":[");
    for (size_t i = 0; i < nrows; i++) {
        if (i)
            buf_addch(out, ',');
        message_json(out, &rows[i], false);
    }
    buf_addch(out, ']');
    if (nrows == q.count) {
        /* the same search, the page after the last message shown */
        buf_addf(out, ",\"next\":\"" PREFIX "/messages?before=%lld&count=%zu",
                 (long long)rows[nrows - 1].id, q.count);
        for (size_t i = 0; i < n; i++)
            if (strcmp(pairs[i].name, "before") != 0 && strcmp(pairs[i].name, "count") != 0) {
                buf_addch(out, '&');
                url_encode(out, pairs[i].name);
                buf_addch(out, '=');
                url_encode(out, pairs[i].value);
            }
        buf_addch(out, '"');
    }
    buf_addch(out, '}');
    return ERR_OK;
}

static status_t reprocess(http_thread_t *thread, h2o_req_t *req, const repo_caller_t *caller,
                          int64_t id, arena_t *arena, buf_t *out, err_t *err)
{
    hl7_ingest_t *ingest = thread->server->config.hl7;
    status_t rc;
    store_hl7_message_t m;
    if (!ingest)
        rc = err_set(err, ERR_CONFLICT, NULL,
                     "this server has no HL7 feed (start it with --mllp) to reprocess with");
    else
        rc = hl7_ingest_reprocess(ingest, thread->conn, id, arena, &m, err);
    const char *source = caller->source ? caller->source : http__peer_address(req, arena);
    auth_audit_event(thread->server->audit, "hl7-reprocess", caller->username, caller->role,
                     caller->client_id, source,
                     rc ? arena_printf(arena, "%d", err_http_status(rc)) : "200",
                     arena_printf(arena, "HL7 message %lld", (long long)id));
    if (rc)
        return rc;
    message_json(out, &m, true);
    return ERR_OK;
}

bool http__hl7_route(http_thread_t *thread, h2o_req_t *req, arena_t *arena)
{
    h2o_iovec_t path = req->path_normalized;
    size_t plen = sizeof(PREFIX) - 1;
    if (path.len < plen || memcmp(path.base, PREFIX, plen) != 0 ||
        (path.len > plen && path.base[plen] != '/'))
        return false;
    const char *rest = path.base + plen;
    size_t rest_len = path.len - plen;
    if (rest_len && rest[rest_len - 1] == '/')
        rest_len--;
    enum { NONE, OVERVIEW, SEARCH, ONE, REPROCESS } what = NONE;
    int64_t id = 0;
    static const char MESSAGES[] = "/messages", AGAIN[] = "/reprocess";
    size_t ml = sizeof(MESSAGES) - 1, al = sizeof(AGAIN) - 1;
    if (rest_len == 0) {
        what = OVERVIEW;
    } else if (rest_len == ml && memcmp(rest, MESSAGES, ml) == 0) {
        what = SEARCH;
    } else if (rest_len > ml + 1 && memcmp(rest, MESSAGES, ml) == 0 && rest[ml] == '/') {
        const char *tail = rest + ml + 1;
        size_t tail_len = rest_len - ml - 1;
        if (tail_len > al && memcmp(tail + tail_len - al, AGAIN, al) == 0 &&
            http__parse_id(tail, tail_len - al, &id))
            what = REPROCESS;
        else if (http__parse_id(tail, tail_len, &id))
            what = ONE;
    }
    err_t err = ERR_INIT;
    buf_t body = BUF_INIT;
    const repo_caller_t *caller = NULL;
    const char *want = what == REPROCESS ? "POST" : "GET";
    if (what == NONE) {
        err_set(&err, ERR_NOT_FOUND, NULL,
                "no such endpoint: %.*s (the HL7 feed has GET " PREFIX ", GET " PREFIX
                "/messages, GET " PREFIX "/messages/ID and POST " PREFIX "/messages/ID/reprocess)",
                (int)path.len, path.base);
    } else if (!h2o_memis(req->method.base, req->method.len, want, strlen(want))) {
        http__admin_header(req, "allow", want);
        err_set(&err, ERR_METHOD, NULL, "%.*s takes %s only", (int)path.len, path.base, want);
    } else if (http__admin_caller(thread, req, arena, "see and reprocess HL7 messages", &caller,
                                  &err)) {
        /* answered below */
    } else if (what == OVERVIEW) {
        overview(thread, arena, &body, &err);
    } else if (what == SEARCH) {
        search(thread, req, arena, &body, &err);
    } else if (what == ONE) {
        store_hl7_message_t m;
        if (store_hl7_get(thread->conn, id, arena, &m, &err) == ERR_OK)
            message_json(&body, &m, true);
    } else {
        reprocess(thread, req, caller, id, arena, &body, &err);
    }
    if (err.code != ERR_OK)
        http__admin_error(req, &err);
    else
        http__admin_send(req, 200, "application/json; charset=utf-8", &body);
    buf_release(&body);
    err_release(&err);
    return true;
}
