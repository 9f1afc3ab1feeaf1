/*
 * ingest.h - what is done with each message the listener receives: stored as it came before
 * anything else, checked (readable, a version, type and event Concerto reads, a control id),
 * applied to the record (adt.h) once per sender and control id, and acknowledged as MSH-15 and
 * MSH-16 ask. docs/hl7.md describes it for integration engineers.
 */
#ifndef CONCERTO_HL7_INGEST_H
#define CONCERTO_HL7_INGEST_H

#include "base/arena.h"
#include "base/err.h"
#include "base/tz.h"
#include "hl7/listener.h"
#include "repo/access.h"
#include "store/store.h"

typedef struct hl7_ingest hl7_ingest_t;

/* The feed of store; times without an offset are read in zone (borrowed: it must outlive the
 * feed). */
hl7_ingest_t *hl7_ingest_new(store_t *store, const tz_t *zone);
void hl7_ingest_free(hl7_ingest_t *ingest);

/* The service caller the feed writes as ("hl7-feed"). */
const repo_caller_t *hl7_ingest_caller(void);

/* The listener's handler (hl7_handler_fn): arg is the hl7_ingest_t. */
void hl7_ingest_handle(void *arg, store_conn_t *conn, const hl7_inbound_t *in, buf_t *reply);

/*
 * Processes stored message id again, whatever became of it before (an admin's reprocess after
 * a fix): applied to the record as if it came now, its status, reason and ACK replaced (the
 * ACK a redelivery gets from then on). *out (in arena) is the message afterwards.
 * ERR_NOT_FOUND; ERR_CONFLICT for a message that was rejected as unreadable or unsupported.
 */
status_t hl7_ingest_reprocess(hl7_ingest_t *ingest, store_conn_t *conn, int64_t id, arena_t *arena,
                              store_hl7_message_t *out, err_t *err);

#endif
