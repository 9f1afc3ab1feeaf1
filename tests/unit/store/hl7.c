/*
 * Tests for the HL7 messages' rows (store.h, "HL7 messages") on each driver: a message is
 * stored once per sender and control id, its outcome recorded, listed by filters, kept byte
 * for byte whatever its encoding, and copied with its id.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers.h"
#include "store/store.h"

static store_t *store;
static store_conn_t *conn;

static int setup(void **state)
{
    test_db_setup(state);
    test_store_open(&store, &conn);
    return 0;
}

static int teardown(void **state)
{
    store_disconnect(conn);
    store_close(store);
    return test_db_teardown(state);
}

typedef struct {
    store_hl7_message_t m;
    int64_t id;
    bool fresh;
} insert_arg_t;

static status_t insert_txn(store_txn_t *txn, void *arg, err_t *err)
{
    insert_arg_t *a = arg;
    return store_txn_hl7_insert(txn, &a->m, &a->id, &a->fresh, err);
}

static int64_t insert(const char *sender, const char *control, const char *type, const char *text,
                      size_t len, int64_t at_us, bool *fresh)
{
    insert_arg_t a = {.m = {.received_us = at_us,
                            .peer = "127.0.0.1:5000",
                            .sender = sender,
                            .control_id = control,
                            .type = type,
                            .text = text,
                            .text_len = len}};
    err_t err = ERR_INIT;
    assert_int_equal(store_run(store, insert_txn, &a, &err), ERR_OK);
    err_release(&err);
    *fresh = a.fresh;
    return a.id;
}

static status_t finish_txn(store_txn_t *txn, void *arg, err_t *err)
{
    return store_txn_hl7_finish(txn, arg, err);
}

typedef struct {
    const char *sender, *control;
    arena_t *arena;
    store_hl7_message_t out;
    bool found;
} find_arg_t;

static status_t find_txn(store_txn_t *txn, void *arg, err_t *err)
{
    find_arg_t *a = arg;
    return store_txn_hl7_by_control(txn, a->sender, a->control, a->arena, &a->out, &a->found, err);
}

#define MSG "MSH|^~\\&|EPIC|GENHOSP|CONCERTO|CLINIC|20261120101500||ADT^A03|M1|P|2.5.1\rPID|1\r"

static void test_once_per_control_id(void **state)
{
    (void)state;
    bool fresh;
    int64_t id = insert("EPIC|GENHOSP", "M1", "ADT^A03", MSG, strlen(MSG), 1000, &fresh);
    assert_true(fresh);
    assert_true(id > 0);
    /* the same control id from the same sender: not stored again */
    int64_t again = insert("EPIC|GENHOSP", "M1", "ADT^A03", MSG, strlen(MSG), 2000, &fresh);
    assert_false(fresh);
    assert_int_equal(again, 0);
    /* from another sender, or without a control id: a message of its own */
    int64_t other = insert("CERNER|MERCY", "M1", "ADT^A03", MSG, strlen(MSG), 3000, &fresh);
    assert_true(fresh);
    assert_true(other > id);
    int64_t none1 = insert("CERNER|MERCY", "", "", "garbage", 7, 4000, &fresh);
    assert_true(fresh);
    int64_t none2 = insert("CERNER|MERCY", "", "", "garbage", 7, 5000, &fresh);
    assert_true(fresh);
    assert_true(none2 > none1);

    arena_t arena;
    arena_init(&arena);
    err_t err = ERR_INIT;
    store_hl7_message_t m;
    assert_int_equal(store_hl7_get(conn, id, &arena, &m, &err), ERR_OK);
    assert_string_equal(m.status, STORE_HL7_RECEIVED);
    assert_string_equal(m.sender, "EPIC|GENHOSP");
    assert_string_equal(m.type, "ADT^A03");
    assert_int_equal(m.received_us, 1000);
    assert_int_equal(m.text_len, strlen(MSG));
    assert_memory_equal(m.text, MSG, strlen(MSG));
    assert_null(m.ack);
    assert_int_equal(m.attempts, 0);

    store_hl7_finish_t f = {.id = id,
                            .status = STORE_HL7_PROCESSED,
                            .ack = "MSH|^~\\&|ACK\rMSA|AA|M1\r",
                            .processed_us = 1500,
                            .patient = "Patient/p1",
                            .encounter = "Encounter/e1"};
    assert_int_equal(store_run(store, finish_txn, &f, &err), ERR_OK);
    find_arg_t find = {.sender = "EPIC|GENHOSP", .control = "M1", .arena = &arena};
    assert_int_equal(store_run(store, find_txn, &find, &err), ERR_OK);
    assert_true(find.found);
    assert_int_equal(find.out.id, id);
    assert_string_equal(find.out.status, STORE_HL7_PROCESSED);
    assert_string_equal(find.out.ack, "MSH|^~\\&|ACK\rMSA|AA|M1\r");
    assert_string_equal(find.out.patient, "Patient/p1");
    assert_int_equal(find.out.attempts, 1);
    /* messages without a control id are never found by it */
    find_arg_t blank = {.sender = "CERNER|MERCY", .control = "", .arena = &arena};
    assert_int_equal(store_run(store, find_txn, &blank, &err), ERR_OK);
    assert_false(blank.found);
    /* an unknown id */
    store_hl7_finish_t missing = {.id = 999999, .status = STORE_HL7_ERROR, .processed_us = 1};
    assert_int_equal(store_run(store, finish_txn, &missing, &err), ERR_NOT_FOUND);
    err_reset(&err);
    assert_int_equal(store_hl7_get(conn, 999999, &arena, &m, &err), ERR_NOT_FOUND);
    err_release(&err);
    arena_release(&arena);
}

static void test_any_bytes_kept(void **state)
{
    (void)state;
    /* Latin-1, a NUL byte, invalid UTF-8: kept as they came */
    static const char latin1[] = "MSH|^~\\&|A|B|C|D|2026||ADT^A08|L1|P|2.3|||||||8859/1\rPID|1||"
                                 "1^^^H||M\xfcller^J\xf6rg\r";
    static const char nul[] = "MSH|^~\\&|A|B\0C|D";
    static const char utf8[] = "MSH|^~\\&|A|B|C|D|2026||ADT^A08|U1|P|2.5\rPID|1||1^^^H||"
                               "M\xc3\xbcller\r";
    const char *texts[] = {latin1, nul, utf8};
    size_t lens[] = {sizeof(latin1) - 1, sizeof(nul) - 1, sizeof(utf8) - 1};
    arena_t arena;
    arena_init(&arena);
    err_t err = ERR_INIT;
    for (size_t i = 0; i < 3; i++) {
        bool fresh;
        char control[8];
        snprintf(control, sizeof(control), "B%zu", i);
        int64_t id = insert("A|B", control, "ADT^A08", texts[i], lens[i], 10, &fresh);
        store_hl7_message_t m;
        assert_int_equal(store_hl7_get(conn, id, &arena, &m, &err), ERR_OK);
        assert_int_equal(m.text_len, lens[i]);
        assert_memory_equal(m.text, texts[i], lens[i]);
        assert_string_equal(m.encoding, i == 2 ? "text" : "base64");
    }
    err_release(&err);
    arena_release(&arena);
}

static void test_list_filters(void **state)
{
    (void)state;
    bool fresh;
    int64_t a01 = insert("EPIC|GEN", "1", "ADT^A01", MSG, strlen(MSG), 100, &fresh);
    int64_t a03 = insert("EPIC|GEN", "2", "ADT^A03", MSG, strlen(MSG), 200, &fresh);
    int64_t other = insert("CERNER|MERCY", "1", "ADT^A03", MSG, strlen(MSG), 300, &fresh);
    int64_t orm = insert("CERNER|MERCY", "2", "ORM^O01", MSG, strlen(MSG), 400, &fresh);
    err_t err = ERR_INIT;
    store_hl7_finish_t f = {.id = a03,
                            .status = STORE_HL7_ERROR,
                            .reason = "PID-3 has no identifier",
                            .ack = "ack",
                            .processed_us = 250};
    assert_int_equal(store_run(store, finish_txn, &f, &err), ERR_OK);
    store_hl7_finish_t g = {.id = a01,
                            .status = STORE_HL7_PROCESSED,
                            .ack = "ack",
                            .processed_us = 150,
                            .patient = "Patient/p9"};
    assert_int_equal(store_run(store, finish_txn, &g, &err), ERR_OK);

    arena_t arena;
    arena_init(&arena);
    store_hl7_message_t *rows;
    size_t n;
    store_hl7_query_t all = {0};
    assert_int_equal(store_hl7_list(conn, &all, &arena, &rows, &n, &err), ERR_OK);
    assert_int_equal(n, 4);
    assert_int_equal(rows[0].id, orm); /* newest first */
    assert_int_equal(rows[3].id, a01);
    assert_null(rows[0].text);
    store_hl7_query_t errors = {.status = STORE_HL7_ERROR};
    assert_int_equal(store_hl7_list(conn, &errors, &arena, &rows, &n, &err), ERR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].id, a03);
    assert_string_equal(rows[0].reason, "PID-3 has no identifier");
    store_hl7_query_t adt = {.type = "ADT"};
    assert_int_equal(store_hl7_list(conn, &adt, &arena, &rows, &n, &err), ERR_OK);
    assert_int_equal(n, 3);
    store_hl7_query_t a03s = {.type = "ADT^A03", .sender = "CERNER|MERCY"};
    assert_int_equal(store_hl7_list(conn, &a03s, &arena, &rows, &n, &err), ERR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].id, other);
    store_hl7_query_t patient = {.patient = "Patient/p9"};
    assert_int_equal(store_hl7_list(conn, &patient, &arena, &rows, &n, &err), ERR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].id, a01);
    store_hl7_query_t window = {.from_us = 200, .to_us = 400};
    assert_int_equal(store_hl7_list(conn, &window, &arena, &rows, &n, &err), ERR_OK);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].id, other);
    assert_int_equal(rows[1].id, a03);
    /* pages */
    store_hl7_query_t page = {.count = 2};
    assert_int_equal(store_hl7_list(conn, &page, &arena, &rows, &n, &err), ERR_OK);
    assert_int_equal(n, 2);
    page.before_id = rows[1].id;
    assert_int_equal(store_hl7_list(conn, &page, &arena, &rows, &n, &err), ERR_OK);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].id, a03);
    assert_int_equal(rows[1].id, a01);
    store_hl7_query_t control = {.control_id = "2", .sender = "EPIC|GEN"};
    assert_int_equal(store_hl7_list(conn, &control, &arena, &rows, &n, &err), ERR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].id, a03);

    store_hl7_count_t *counts;
    assert_int_equal(store_hl7_counts(conn, &arena, &counts, &n, &err), ERR_OK);
    assert_int_equal(n, 3);
    assert_string_equal(counts[0].status, STORE_HL7_ERROR);
    assert_int_equal(counts[0].count, 1);
    assert_string_equal(counts[1].status, STORE_HL7_PROCESSED);
    assert_string_equal(counts[2].status, STORE_HL7_RECEIVED);
    assert_int_equal(counts[2].count, 2);
    err_release(&err);
    arena_release(&arena);
}

typedef struct {
    store_hl7_message_t *messages;
    size_t n;
} load_arg_t;

static status_t load_txn(store_txn_t *txn, void *arg, err_t *err)
{
    load_arg_t *a = arg;
    return store_txn_hl7_load(txn, a->messages, a->n, err);
}

static void test_scan_and_load(void **state)
{
    (void)state;
    bool fresh;
    static const char bin[] = "MSH|^~\\&|A\0B";
    int64_t first = insert("EPIC|GEN", "1", "ADT^A01", MSG, strlen(MSG), 100, &fresh);
    int64_t second = insert("EPIC|GEN", "2", "ADT^A01", bin, sizeof(bin) - 1, 200, &fresh);
    arena_t arena;
    arena_init(&arena);
    err_t err = ERR_INIT;
    store_hl7_message_t *rows;
    size_t n;
    assert_int_equal(store_hl7_scan(conn, 0, 10, &arena, &rows, &n, &err), ERR_OK);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].id, first);
    assert_int_equal(rows[1].id, second);
    assert_int_equal(rows[1].text_len, sizeof(bin) - 1);
    assert_int_equal(store_hl7_scan(conn, first, 10, &arena, &rows, &n, &err), ERR_OK);
    assert_int_equal(n, 1);

    /* into an empty database: the same rows with the same ids, and new ids after them */
    assert_int_equal(store_hl7_scan(conn, 0, 10, &arena, &rows, &n, &err), ERR_OK);
    store_disconnect(conn);
    store_close(store);
    test_db_wipe();
    test_store_open(&store, &conn);
    load_arg_t load = {rows, n};
    assert_int_equal(store_run(store, load_txn, &load, &err), ERR_OK);
    store_hl7_message_t m;
    assert_int_equal(store_hl7_get(conn, second, &arena, &m, &err), ERR_OK);
    assert_int_equal(m.text_len, sizeof(bin) - 1);
    assert_memory_equal(m.text, bin, sizeof(bin) - 1);
    assert_int_equal(m.received_us, 200);
    int64_t next = insert("EPIC|GEN", "3", "ADT^A01", MSG, strlen(MSG), 300, &fresh);
    assert_true(next > second);
    /* the sender's control ids came along */
    int64_t dup = insert("EPIC|GEN", "1", "ADT^A01", MSG, strlen(MSG), 400, &fresh);
    assert_false(fresh);
    assert_int_equal(dup, 0);
    err_release(&err);
    arena_release(&arena);
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_once_per_control_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_any_bytes_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_and_load, setup, teardown),
    };
    return test_run_on_drivers("store/hl7", both, TEST_COUNT(both), NULL, 0, NULL, 0);
}
