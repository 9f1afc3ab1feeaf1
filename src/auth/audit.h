/*
 * audit.h - the audit trail: who read or changed whose health data, and the logins, sealed
 * into a hash chain (chain.h) so that a change, a removal or a reordering of stored records is
 * found by verification (docs/security.md, "Audit trail").
 *
 * Writes record themselves in their own transaction (repo.h, "the audit trail"), unsealed.
 * Reads, failed requests and auth events are handed to the trail here: copied into a bounded
 * queue in memory and stored by a background thread in one transaction per batch (every
 * ~5 ms, or at once when a batch is full), sealed as they are inserted, after the writes'
 * rows that transaction finds unsealed (auth_audit_add_sealed_txn). A record is never
 * dropped: when the queue is full the caller waits for room. At least every ~100 ms while
 * the trail is open the thread also seals what writes added (auth_audit_seal).
 *
 * Durability of the queued records: a batch commits without waiting for the disk
 * (store_run_relaxed); any later durable commit (a write's, or the thread's own) makes it
 * durable, and the thread makes a durable one within durable_us (100 ms) of the first batch
 * that is not yet. So a crash of the machine may lose the records of the last ~100 ms of
 * reads, as a crash of the process loses those still queued; never part of a batch, and
 * never a write's record (it is in the write's own durable transaction). auth_audit_flush
 * and auth_audit_close return once everything queued before them is stored, sealed and
 * durable.
 *
 * Auth events other parts record with auth_audit_event, by these action names:
 *   login          a successful login (outcome "200")
 *   login-failed   a wrong password or second factor (outcome "401")
 *   lockout        an account locked after too many failures
 *   logout         a browser session ended
 *   token-issued   an access token issued (client, user, scopes in detail)
 *   token-revoked  a token revoked
 *   emergency-access  a request under the emergency ("break-glass") rule (detail: the reason)
 *   denied         a request the access policy refused (outcome "403")
 *   queue-replay   an admin made a dead outbox event available again (detail: which)
 * Interactions: read, vread, history, search, everything, and for writes create, update,
 * patch, delete.
 */
#ifndef CONCERTO_AUTH_AUDIT_H
#define CONCERTO_AUTH_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/chain.h"
#include "base/err.h"
#include "store/store.h"

typedef struct auth_audit auth_audit_t;

typedef struct {
    size_t queue_max;   /* records waiting at most: 4096 (512 bytes each, allocated once) */
    size_t batch;       /* a batch is stored at once when this many wait, and a transaction
                           stores at most this many: 512 */
    int64_t flush_us;   /* the longest a record waits to be stored: 5 ms */
    int64_t seal_us;    /* how often unsealed records (a write's) are looked for: 100 ms */
    int64_t durable_us; /* the longest a stored batch waits to be durable: 100 ms (0: each
                           batch commits durably) */
} auth_audit_options_t;

void auth_audit_options_init(auth_audit_options_t *options);

/* Opens the trail over store (borrowed; it must outlive the trail) and starts its thread.
 * options NULL: the defaults. *out is new: close it with auth_audit_close. */
status_t auth_audit_open(store_t *store, const auth_audit_options_t *options, auth_audit_t **out,
                         err_t *err);
/* Stores and seals everything queued, stops the thread and frees the trail (NULL: nothing).
 * Call before store_close. A batch the store refuses is retried a few times, then logged as
 * lost with its number of records. */
void auth_audit_close(auth_audit_t *audit);

/*
 * Queues copies of rows[0..n) (their id, seq and hash are ignored; time_us 0 is now). Waits
 * while the queue is full. Thread-safe; never fails.
 */
void auth_audit_record(auth_audit_t *audit, const store_audit_row_t *rows, size_t n);

/* Queues one auth event (an action name of the list above). Any text may be NULL. */
void auth_audit_event(auth_audit_t *audit, const char *action, const char *user, const char *role,
                      const char *client, const char *source, const char *outcome,
                      const char *detail);

/* Waits until everything queued before the call is stored, sealed and durable. Errors: the
 * store's (the records stay queued and are tried again). */
status_t auth_audit_flush(auth_audit_t *audit, err_t *err);

/*
 * One sealing round in a transaction of its own: gives every unsealed row the transaction
 * sees the next seq and its chain hash, in insertion order, and moves the chain head. Rows of
 * transactions not yet committed are left for a later round. On PostgreSQL the chain head row
 * is locked for the round, so that sealers in several processes take turns. *out_sealed (may
 * be NULL): how many were sealed.
 */
status_t auth_audit_seal(store_t *store, int64_t *out_sealed, err_t *err);
/* The same inside a transaction that is open. */
status_t auth_audit_seal_txn(store_txn_t *txn, int64_t *out_sealed, err_t *err);
/*
 * What the queue's thread does with a batch, inside a transaction that is open: under the
 * chain head's lock, seals the unsealed rows the transaction sees, then inserts copies of
 * rows[0..n) (their id, seq and hash are ignored) numbered and hashed after them (multi-row
 * inserts), and moves the head once. One INSERT per up to 32 rows, no UPDATE of them.
 */
status_t auth_audit_add_sealed_txn(store_txn_t *txn, const store_audit_row_t *rows, size_t n,
                                   err_t *err);

/*
 * Verifies the sealed trail on conn from seq 1 in seq order with chain_verify: every hash
 * follows from its record and the one before, no seq is missing or out of order, the walk
 * ends on the chain head the database keeps, and, when expected_last is not NULL (a hash
 * anchored elsewhere), on that hash. Returns ERR_OK with the verdict in *report (fault
 * CHAIN_INTACT, checked = records verified = the last seq, last_hash its hash); errors are the
 * store's.
 */
status_t auth_audit_verify(store_conn_t *conn, const unsigned char *expected_last,
                           chain_report_t *report, err_t *err);

/* A chain hash as 64 lower-case hex digits and a NUL; auth_audit_hex_parse the reverse
 * (false unless exactly 64 hex digits). */
void auth_audit_hex(const unsigned char hash[CHAIN_HASH_SIZE], char out[2 * CHAIN_HASH_SIZE + 1]);
bool auth_audit_hex_parse(const char *text, unsigned char out[CHAIN_HASH_SIZE]);

#endif
