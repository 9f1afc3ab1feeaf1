/*
 * listener.h - the MLLP listener: accepts TCP connections from HL7 v2 senders, cuts their
 * byte streams into messages (mllp.h) and hands each message to a handler on a worker thread,
 * then writes the handler's reply back framed.
 *
 * One I/O thread (epoll) owns every socket; `workers` threads run the handler, each with its own
 * store connection. A connection has at most one message in flight: its next message is handed
 * over only once the reply to the previous one is queued, so replies come back in order and a
 * sender that waits for each ACK sees the usual MLLP exchange.
 */
#ifndef CONCERTO_HL7_LISTENER_H
#define CONCERTO_HL7_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "store/store.h"

typedef struct hl7_listener hl7_listener_t;

typedef struct {
    const char *host;    /* "127.0.0.1"; NULL or "" listens on every address */
    int port;            /* 0 picks a free one */
    size_t max_message;  /* default 1 MiB */
    int idle_timeout_ms; /* a connection with no traffic and nothing in flight for this long is
                            closed; default 300000, 0: never */
    int max_connections; /* over it, a new connection is closed at once (logged); default 512 */
    int workers;         /* threads that run the handler, each with its own store connection;
                            default 4 */
} hl7_listener_config_t;

/* Sets the defaults above (host "127.0.0.1", port 2575). */
void hl7_listener_config_init(hl7_listener_config_t *c);

typedef struct {
    const char *peer; /* "127.0.0.1:40122" */
    const char *text; /* the message without framing (not NUL-terminated) */
    size_t len;
    bool too_large; /* text is only the first max_message bytes of a longer frame */
} hl7_inbound_t;

/*
 * Runs on a worker thread with that worker's store connection; appends the reply (one
 * message, unframed) to reply, or leaves reply empty to answer nothing. Must be thread-safe.
 * `in` and what it points to are borrowed for the call only.
 */
typedef void (*hl7_handler_fn)(void *arg, store_conn_t *conn, const hl7_inbound_t *in,
                               buf_t *reply);

/*
 * Listens and starts the I/O thread and the workers; returns once listening. *out is new;
 * hl7_listener_stop frees it. Errors: ERR_INVALID for a host that does not resolve or a bad
 * configuration, ERR_UNAVAILABLE when the address cannot be bound, what store_connect returns.
 */
status_t hl7_listener_start(store_t *store, const hl7_listener_config_t *config, hl7_handler_fn fn,
                            void *arg, hl7_listener_t **out, err_t *err);

/* The port listened on (the one picked when config->port was 0). */
int hl7_listener_port(const hl7_listener_t *l);

/*
 * Stops accepting, lets the messages in flight finish and their replies go out (bounded wait,
 * a few seconds), closes every connection, joins the threads, frees.
 */
void hl7_listener_stop(hl7_listener_t *l);

/* Counters since start, for the admin API and the metrics. */
typedef struct {
    uint64_t connections_open; /* connections now open */
    uint64_t accepted;         /* connections accepted in total (refused ones not counted) */
    uint64_t refused;          /* connections closed at once: over max_connections */
    uint64_t messages;         /* messages handed to the handler (too_large ones included) */
    uint64_t too_large;        /* of them, frames over max_message */
    uint64_t garbage_bytes;    /* bytes received outside any frame */
    uint64_t dropped_partial;  /* frames begun and never finished: the peer closed, or a VT
                                  restarted the frame */
} hl7_listener_stats_t;

/* A snapshot of the counters; thread-safe. */
void hl7_listener_stats(const hl7_listener_t *l, hl7_listener_stats_t *out);

#endif
