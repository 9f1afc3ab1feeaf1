/*
 * chain.h - the hash chain that makes the audit trail tamper-evident.
 *
 * Each audit record is hashed with the hash of the record before it:
 * hash = SHA-256(previous hash || canonical bytes of the record), the first record of a trail
 * following CHAIN_GENESIS (32 zero bytes). Changing, removing or reordering a stored record
 * breaks every hash after it. The canonical bytes are a fixed layout with a length before each
 * text field, so no value can be moved into its neighbour without changing the bytes.
 *
 * What the chain cannot show on its own: a rewrite of the newest records together with their
 * hashes, or their removal. Anchoring the latest hash outside the database (a log line, a
 * second system) and passing it to chain_verify as expected_last closes that.
 */
#ifndef CONCERTO_AUTH_CHAIN_H
#define CONCERTO_AUTH_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define CHAIN_HASH_SIZE 32

/* The hash before the first record of a trail: all zero. */
extern const unsigned char CHAIN_GENESIS[CHAIN_HASH_SIZE];

/* One audit record. Text fields are NUL-terminated UTF-8 or NULL when absent (absent and ""
 * hash differently). Borrowed: the record owns nothing. */
typedef struct {
    int64_t seq;         /* position in the trail: 1, 2, 3, ... without gaps */
    int64_t time_us;     /* when, in microseconds since 1970 UTC */
    const char *user;    /* who: the account or system user */
    const char *role;    /* in which role */
    const char *client;  /* through which OAuth client */
    const char *patient; /* whose record (Patient id), when one */
    const char *action;  /* read, vread, search, create, update, patch, delete, login, ... */
    const char *type;    /* resource type */
    const char *id;      /* resource id */
    const char *query;   /* search query string */
    const char *outcome; /* the result, e.g. the HTTP status */
    const char *source;  /* where from: the client's address */
    const char *detail;  /* what else the record must keep, e.g. an emergency access reason */
} chain_record_t;

/*
 * Appends the canonical bytes of record: the version byte 1, seq and time_us as 8-byte
 * big-endian two's complement, then for each text field in the order of the struct a byte 0
 * (absent) or 1 followed by the length as 4-byte big-endian and the bytes.
 */
void chain_canonical(const chain_record_t *record, buf_t *out);

/* out = SHA-256(previous || canonical bytes of record). */
void chain_hash(const unsigned char previous[CHAIN_HASH_SIZE], const chain_record_t *record,
                unsigned char out[CHAIN_HASH_SIZE]);

/*
 * The store's side of a walk: fills *out_record and its stored hash with the next record in
 * trail order and returns true, or returns false at the end. The record's strings must stay
 * valid until the next call.
 */
typedef bool (*chain_next_fn)(void *context, chain_record_t *out_record,
                              unsigned char out_hash[CHAIN_HASH_SIZE]);

typedef enum {
    CHAIN_INTACT,
    CHAIN_ALTERED,      /* the record's stored hash does not follow from it and the one before */
    CHAIN_MISSING,      /* a sequence number was skipped */
    CHAIN_OUT_OF_ORDER, /* a sequence number goes back or repeats */
    CHAIN_END_CHANGED,  /* the last hash is not expected_last: the newest records changed */
} chain_fault_t;

typedef struct {
    chain_fault_t fault;
    int64_t seq;      /* where: the altered record, the first missing number, the record that
                       * goes back, or the last record for CHAIN_END_CHANGED */
    int64_t expected; /* the sequence number expected where the fault was met */
    int64_t found;    /* the sequence number met there (MISSING, OUT_OF_ORDER) */
    int64_t checked;  /* records that verified before the fault */
    unsigned char last_hash[CHAIN_HASH_SIZE]; /* the hash of the last record that verified */
} chain_report_t;

/*
 * Walks the records from next, the first of which must have sequence number first_seq and
 * follow previous (CHAIN_GENESIS at the start of a trail, or a hash verified before), and
 * stops at the first fault. When expected_last is not NULL, the walk must end on that hash.
 * Returns the fault, also in report.
 */
chain_fault_t chain_verify(int64_t first_seq, const unsigned char previous[CHAIN_HASH_SIZE],
                           chain_next_fn next, void *context, const unsigned char *expected_last,
                           chain_report_t *report);

/* Appends a sentence for the log about report: "audit record 17 is altered: ...". */
void chain_describe(const chain_report_t *report, buf_t *out);

#endif
