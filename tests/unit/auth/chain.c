/*
 * Tests for src/auth/chain.c: the canonical bytes of an audit record, the chained hash, and
 * the verifier's report of altered, missing, reordered and truncated trails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "auth/chain.h"

static void test_canonical_bytes(void **state)
{
    (void)state;
    chain_record_t r = {.seq = 1,
                        .time_us = 1700000000123456,
                        .user = "jane",
                        .role = "",
                        .action = "read",
                        .type = "Patient",
                        .id = "p1",
                        .outcome = "200"};
    buf_t out = BUF_INIT;
    chain_canonical(&r, &out);
    static const unsigned char expected[] = {
        1,                                                   /* version */
        0,    0,    0,    0,    0,    0,    0,    1,         /* seq */
        0x00, 0x06, 0x0a, 0x24, 0x18, 0x20, 0x22, 0x40,      /* time_us */
        1,    0,    0,    0,    4,    'j',  'a',  'n',  'e', /* user */
        1,    0,    0,    0,    0,                           /* role: "" */
        0,                                                   /* client: absent */
        0,                                                   /* patient */
        1,    0,    0,    0,    4,    'r',  'e',  'a',  'd', 1, 0, 0,   0,   7, 'P',
        'a',  't',  'i',  'e',  'n',  't',  1,    0,    0,   0, 2, 'p', '1', 0, /* query */
        1,    0,    0,    0,    3,    '2',  '0',  '0',  0,                      /* source */
        0,                                                                      /* detail */
    };
    assert_int_equal(out.len, sizeof(expected));
    assert_memory_equal(out.ptr, expected, sizeof(expected));
    /* SHA-256 of 32 zero bytes followed by those bytes, computed independently */
    unsigned char hash[CHAIN_HASH_SIZE];
    chain_hash(CHAIN_GENESIS, &r, hash);
    static const unsigned char expected_hash[] = {0x74, 0x65, 0xfd, 0x38, 0x36, 0xaf, 0x7d, 0x99,
                                                  0x2d, 0x29, 0x89, 0x58, 0x9e, 0x8a, 0xf0, 0x2b,
                                                  0x66, 0xc3, 0xc9, 0x8b, 0xe7, 0x78, 0xde, 0x5e,
                                                  0x3a, 0xdb, 0xd2, 0x1a, 0x36, 0x26, 0xf0, 0x4a};
    assert_memory_equal(hash, expected_hash, CHAIN_HASH_SIZE);
    buf_release(&out);
}

static void test_fields_cannot_bleed(void **state)
{
    (void)state;
    unsigned char a[CHAIN_HASH_SIZE], b[CHAIN_HASH_SIZE];
    chain_record_t r1 = {.seq = 5, .user = "ab", .role = "c"};
    chain_record_t r2 = {.seq = 5, .user = "a", .role = "bc"};
    chain_hash(CHAIN_GENESIS, &r1, a);
    chain_hash(CHAIN_GENESIS, &r2, b);
    assert_memory_not_equal(a, b, CHAIN_HASH_SIZE);
    /* absent is not empty */
    chain_record_t r3 = {.seq = 5, .patient = ""}, r4 = {.seq = 5};
    chain_hash(CHAIN_GENESIS, &r3, a);
    chain_hash(CHAIN_GENESIS, &r4, b);
    assert_memory_not_equal(a, b, CHAIN_HASH_SIZE);
    /* the previous hash counts */
    unsigned char other[CHAIN_HASH_SIZE];
    memset(other, 1, sizeof(other));
    chain_hash(other, &r4, a);
    assert_memory_not_equal(a, b, CHAIN_HASH_SIZE);
    /* every field counts, seq and time included */
    chain_record_t base = {.seq = 9, .time_us = 7};
    unsigned char h0[CHAIN_HASH_SIZE];
    chain_hash(CHAIN_GENESIS, &base, h0);
    for (int i = 0; i < 13; i++) {
        chain_record_t r = base;
        const char **fields[] = {&r.user, &r.role,  &r.client,  &r.patient, &r.action, &r.type,
                                 &r.id,   &r.query, &r.outcome, &r.source,  &r.detail};
        if (i < 11)
            *fields[i] = "x";
        else if (i == 11)
            r.seq = 10;
        else
            r.time_us = 8;
        chain_hash(CHAIN_GENESIS, &r, a);
        assert_memory_not_equal(a, h0, CHAIN_HASH_SIZE);
    }
}

/* A trail in memory, as the store will feed it. */
#define TRAIL 6
typedef struct {
    chain_record_t records[TRAIL + 1];
    unsigned char hashes[TRAIL + 1][CHAIN_HASH_SIZE];
    size_t n, next;
} trail_t;

static const char *const users[] = {"jane", "omar", "li", "ana", "sam", "kim", "raj"};

static void build(trail_t *t)
{
    memset(t, 0, sizeof(*t));
    const unsigned char *previous = CHAIN_GENESIS;
    for (size_t i = 0; i < TRAIL; i++) {
        chain_record_t *r = &t->records[i];
        r->seq = (int64_t)i + 1;
        r->time_us = 1700000000000000 + (int64_t)i * 1000;
        r->user = users[i];
        r->action = i % 2 ? "search" : "read";
        r->type = "Observation";
        r->query = i % 2 ? "patient=Patient/7&code=1234-5" : NULL;
        r->patient = "7";
        r->outcome = "200";
        r->source = "192.0.2.10";
        chain_hash(previous, r, t->hashes[i]);
        previous = t->hashes[i];
    }
    t->n = TRAIL;
}

static bool next_record(void *context, chain_record_t *out, unsigned char hash[CHAIN_HASH_SIZE])
{
    trail_t *t = context;
    if (t->next == t->n)
        return false;
    *out = t->records[t->next];
    memcpy(hash, t->hashes[t->next], CHAIN_HASH_SIZE);
    t->next++;
    return true;
}

static void remove_at(trail_t *t, size_t i)
{
    memmove(&t->records[i], &t->records[i + 1], (t->n - i - 1) * sizeof(t->records[0]));
    memmove(&t->hashes[i], &t->hashes[i + 1], (t->n - i - 1) * CHAIN_HASH_SIZE);
    t->n--;
}

static const char *describe(const chain_report_t *report)
{
    static char text[256];
    buf_t b = BUF_INIT;
    chain_describe(report, &b);
    snprintf(text, sizeof(text), "%s", b.ptr);
    buf_release(&b);
    return text;
}

static void test_verify(void **state)
{
    (void)state;
    trail_t t;
    chain_report_t report;
    build(&t);
    assert_int_equal(chain_verify(1, CHAIN_GENESIS, next_record, &t, t.hashes[TRAIL - 1], &report),
                     CHAIN_INTACT);
    assert_int_equal(report.checked, TRAIL);
    assert_memory_equal(report.last_hash, t.hashes[TRAIL - 1], CHAIN_HASH_SIZE);
    assert_string_equal(describe(&report), "audit trail intact: 6 records verified");

    /* from a checkpoint: record 4 onwards, after record 3's hash */
    build(&t);
    t.next = 3;
    assert_int_equal(chain_verify(4, t.hashes[2], next_record, &t, NULL, &report), CHAIN_INTACT);
    assert_int_equal(report.checked, 3);

    /* a field changed in place */
    build(&t);
    t.records[2].outcome = "403";
    assert_int_equal(chain_verify(1, CHAIN_GENESIS, next_record, &t, NULL, &report), CHAIN_ALTERED);
    assert_int_equal(report.seq, 3);
    assert_int_equal(report.checked, 2);
    assert_memory_equal(report.last_hash, t.hashes[1], CHAIN_HASH_SIZE);
    assert_string_equal(describe(&report),
                        "audit record 3 is altered: its stored hash does not follow from its "
                        "content and the record before it");

    /* changed and re-hashed: the next record shows it */
    build(&t);
    t.records[2].user = "mallory";
    chain_hash(t.hashes[1], &t.records[2], t.hashes[2]);
    assert_int_equal(chain_verify(1, CHAIN_GENESIS, next_record, &t, NULL, &report), CHAIN_ALTERED);
    assert_int_equal(report.seq, 4);

    /* a record deleted */
    build(&t);
    remove_at(&t, 3);
    assert_int_equal(chain_verify(1, CHAIN_GENESIS, next_record, &t, NULL, &report), CHAIN_MISSING);
    assert_int_equal(report.seq, 4);
    assert_int_equal(report.found, 5);
    assert_string_equal(describe(&report),
                        "audit record 4 is missing: record 5 comes where it should be");

    /* a record repeated */
    build(&t);
    t.records[TRAIL] = t.records[2];
    memcpy(t.hashes[TRAIL], t.hashes[2], CHAIN_HASH_SIZE);
    t.n = TRAIL + 1;
    assert_int_equal(chain_verify(1, CHAIN_GENESIS, next_record, &t, NULL, &report),
                     CHAIN_OUT_OF_ORDER);
    assert_int_equal(report.seq, 3);
    assert_int_equal(report.expected, 7);
    assert_string_equal(describe(&report),
                        "audit record 3 is out of order: it comes where record 7 should be");

    /* two records swapped: the first number skipped is reported */
    build(&t);
    chain_record_t r = t.records[1];
    t.records[1] = t.records[2];
    t.records[2] = r;
    assert_int_equal(chain_verify(1, CHAIN_GENESIS, next_record, &t, NULL, &report), CHAIN_MISSING);
    assert_int_equal(report.seq, 2);
    assert_int_equal(report.found, 3);

    /* the newest record removed: only the anchor shows it */
    build(&t);
    unsigned char anchor[CHAIN_HASH_SIZE];
    memcpy(anchor, t.hashes[TRAIL - 1], CHAIN_HASH_SIZE);
    t.n--;
    assert_int_equal(chain_verify(1, CHAIN_GENESIS, next_record, &t, NULL, &report), CHAIN_INTACT);
    t.next = 0;
    assert_int_equal(chain_verify(1, CHAIN_GENESIS, next_record, &t, anchor, &report),
                     CHAIN_END_CHANGED);
    assert_int_equal(report.seq, TRAIL - 1);
    assert_string_equal(describe(&report),
                        "audit trail ends at record 5 with a hash that is not the anchored one: "
                        "the newest records were removed or rewritten");

    /* an empty trail is intact and ends on the hash it started from */
    build(&t);
    t.n = 0;
    assert_int_equal(chain_verify(1, CHAIN_GENESIS, next_record, &t, CHAIN_GENESIS, &report),
                     CHAIN_INTACT);
    assert_int_equal(report.checked, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_bytes),
        cmocka_unit_test(test_fields_cannot_bleed),
        cmocka_unit_test(test_verify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
