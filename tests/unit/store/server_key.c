/*
 * Tests for the server's keys (store.h, "the server's keys") on each driver: a key is added
 * only when none of its name is there, so that servers starting at once on one database
 * agree on the first one added; it reads back as it was given, and lists for a copy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
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
    store_t *store;
    store_server_key_t key;
    bool added;
    pthread_barrier_t *start;
} add_arg_t;

static status_t add_txn(store_txn_t *txn, void *arg, err_t *err)
{
    add_arg_t *a = arg;
    return store_txn_server_key_add(txn, &a->key, &a->added, err);
}

static bool add(store_t *on, const char *name, const char *kid, const char *sealed,
                int64_t created_us)
{
    add_arg_t a = {.key = {.name = name, .kid = kid, .created_us = created_us, .sealed = sealed}};
    err_t err = ERR_INIT;
    assert_int_equal(store_run(on, add_txn, &a, &err), ERR_OK);
    err_release(&err);
    return a.added;
}

static void test_added_once_and_read_back(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    arena_t arena;
    arena_init(&arena);
    store_server_key_t key;
    bool found = true;
    assert_int_equal(store_server_key_get(conn, STORE_SIGNING_KEY, &arena, &key, &found, &err),
                     ERR_OK);
    assert_false(found);

    assert_true(add(store, STORE_SIGNING_KEY, "kid-1", "v1.sealed-one", 1000));
    /* a second key of the same name is not added: the first stays */
    assert_false(add(store, STORE_SIGNING_KEY, "kid-2", "v1.sealed-two", 2000));
    assert_int_equal(store_server_key_get(conn, STORE_SIGNING_KEY, &arena, &key, &found, &err),
                     ERR_OK);
    assert_true(found);
    assert_string_equal(key.name, STORE_SIGNING_KEY);
    assert_string_equal(key.kid, "kid-1");
    assert_string_equal(key.sealed, "v1.sealed-one");
    assert_int_equal(key.created_us, 1000);

    /* another name is another key */
    assert_true(add(store, "other", "kid-3", "v1.sealed-three", 3000));
    store_server_key_t *rows;
    size_t n = 0;
    assert_int_equal(store_server_key_list(conn, &arena, &rows, &n, &err), ERR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].name, "other");
    assert_string_equal(rows[1].name, STORE_SIGNING_KEY);
    assert_string_equal(rows[1].sealed, "v1.sealed-one");

    /* a restart keeps it */
    store_disconnect(conn);
    store_close(store);
    test_store_open(&store, &conn);
    assert_int_equal(store_server_key_get(conn, STORE_SIGNING_KEY, &arena, &key, &found, &err),
                     ERR_OK);
    assert_true(found);
    assert_string_equal(key.kid, "kid-1");
    err_release(&err);
    arena_release(&arena);
}

static void *racer(void *arg)
{
    add_arg_t *a = arg;
    pthread_barrier_wait(a->start);
    err_t err = ERR_INIT;
    status_t rc = store_run(a->store, add_txn, a, &err);
    err_release(&err);
    return rc == ERR_OK ? a : NULL;
}

/* Servers that start at once on one database: each adds a key of its own; one is added, and
 * both read back that one. */
static void test_servers_starting_at_once_agree(void **state)
{
    (void)state;
    enum { SERVERS = 4 };
    store_t *stores[SERVERS];
    add_arg_t args[SERVERS];
    pthread_t threads[SERVERS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, SERVERS);
    char kids[SERVERS][32], sealed[SERVERS][32];
    for (int i = 0; i < SERVERS; i++) {
        test_store_open(&stores[i], NULL);
        snprintf(kids[i], sizeof(kids[i]), "kid-%d", i);
        snprintf(sealed[i], sizeof(sealed[i]), "v1.key-%d", i);
        args[i] = (add_arg_t){.store = stores[i],
                              .key = {.name = STORE_SIGNING_KEY,
                                      .kid = kids[i],
                                      .created_us = i,
                                      .sealed = sealed[i]},
                              .start = &start};
    }
    for (int i = 0; i < SERVERS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, racer, &args[i]), 0);
    int added = -1, count = 0;
    for (int i = 0; i < SERVERS; i++) {
        void *result = NULL;
        pthread_join(threads[i], &result);
        assert_non_null(result);
        if (args[i].added) {
            added = i;
            count++;
        }
    }
    pthread_barrier_destroy(&start);
    assert_int_equal(count, 1);
    err_t err = ERR_INIT;
    arena_t arena;
    arena_init(&arena);
    for (int i = 0; i < SERVERS; i++) {
        store_conn_t *c;
        assert_int_equal(store_connect(stores[i], &c, &err), ERR_OK);
        store_server_key_t key;
        bool found = false;
        assert_int_equal(store_server_key_get(c, STORE_SIGNING_KEY, &arena, &key, &found, &err),
                         ERR_OK);
        assert_true(found);
        assert_string_equal(key.kid, kids[added]);
        assert_string_equal(key.sealed, sealed[added]);
        store_disconnect(c);
        store_close(stores[i]);
    }
    err_release(&err);
    arena_release(&arena);
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_added_once_and_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_servers_starting_at_once_agree, setup, teardown),
    };
    return test_run_on_drivers("store/server_key", both, TEST_COUNT(both), NULL, 0, NULL, 0);
}
