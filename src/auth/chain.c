/*
 * chain.c - the audit hash chain over libsodium's SHA-256 (chain.h).
 */
#include "auth/chain.h"

#include <sodium.h>
#include <string.h>

#include "auth/random.h"

const unsigned char CHAIN_GENESIS[CHAIN_HASH_SIZE] = {0};

static void add_u64(buf_t *out, uint64_t v)
{
    unsigned char bytes[8];
    for (int i = 7; i >= 0; i--) {
        bytes[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
    buf_add(out, bytes, sizeof(bytes));
}

static void add_text(buf_t *out, const char *s)
{
    if (!s) {
        buf_addch(out, 0);
        return;
    }
    size_t len = strlen(s);
    unsigned char head[5] = {1, (unsigned char)(len >> 24), (unsigned char)(len >> 16),
                             (unsigned char)(len >> 8), (unsigned char)len};
    buf_add(out, head, sizeof(head));
    buf_add(out, s, len);
}

void chain_canonical(const chain_record_t *r, buf_t *out)
{
    buf_addch(out, 1);
    add_u64(out, (uint64_t)r->seq);
    add_u64(out, (uint64_t)r->time_us);
    const char *const fields[] = {r->user, r->role,  r->client,  r->patient, r->action, r->type,
                                  r->id,   r->query, r->outcome, r->source,  r->detail};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        add_text(out, fields[i]);
}

void chain_hash(const unsigned char previous[CHAIN_HASH_SIZE], const chain_record_t *record,
                unsigned char out[CHAIN_HASH_SIZE])
{
    auth__sodium_ready();
    buf_t bytes = BUF_INIT;
    chain_canonical(record, &bytes);
    crypto_hash_sha256_state state;
    crypto_hash_sha256_init(&state);
    crypto_hash_sha256_update(&state, previous, CHAIN_HASH_SIZE);
    crypto_hash_sha256_update(&state, (const unsigned char *)bytes.ptr, bytes.len);
    crypto_hash_sha256_final(&state, out);
    buf_release(&bytes);
}

chain_fault_t chain_verify(int64_t first_seq, const unsigned char previous[CHAIN_HASH_SIZE],
                           chain_next_fn next, void *context, const unsigned char *expected_last,
                           chain_report_t *report)
{
    memset(report, 0, sizeof(*report));
    memcpy(report->last_hash, previous, CHAIN_HASH_SIZE);
    int64_t expected = first_seq, last_seq = first_seq - 1;
    chain_record_t record;
    unsigned char stored[CHAIN_HASH_SIZE], computed[CHAIN_HASH_SIZE];
    while (next(context, &record, stored)) {
        if (record.seq != expected) {
            report->fault = record.seq > expected ? CHAIN_MISSING : CHAIN_OUT_OF_ORDER;
            report->seq = record.seq > expected ? expected : record.seq;
            report->expected = expected;
            report->found = record.seq;
            return report->fault;
        }
        chain_hash(report->last_hash, &record, computed);
        if (sodium_memcmp(computed, stored, CHAIN_HASH_SIZE) != 0) {
            report->fault = CHAIN_ALTERED;
            report->seq = record.seq;
            return report->fault;
        }
        memcpy(report->last_hash, computed, CHAIN_HASH_SIZE);
        report->checked++;
        last_seq = record.seq;
        expected++;
    }
    if (expected_last && sodium_memcmp(report->last_hash, expected_last, CHAIN_HASH_SIZE) != 0) {
        report->fault = CHAIN_END_CHANGED;
        report->seq = last_seq;
    }
    return report->fault;
}

void chain_describe(const chain_report_t *report, buf_t *out)
{
    long long seq = (long long)report->seq, found = (long long)report->found;
    switch (report->fault) {
    case CHAIN_INTACT:
        buf_addf(out, "audit trail intact: %lld records verified", (long long)report->checked);
        break;
    case CHAIN_ALTERED:
        buf_addf(out,
                 "audit record %lld is altered: its stored hash does not follow from its "
                 "content and the record before it",
                 seq);
        break;
    case CHAIN_MISSING:
        buf_addf(out, "audit record %lld is missing: record %lld comes where it should be", seq,
                 found);
        break;
    case CHAIN_OUT_OF_ORDER:
        buf_addf(out, "audit record %lld is out of order: it comes where record %lld should be",
                 seq, (long long)report->expected);
        break;
    case CHAIN_END_CHANGED:
        buf_addf(out,
                 "audit trail ends at record %lld with a hash that is not the anchored one: "
                 "the newest records were removed or rewritten",
                 seq);
        break;
    }
}
