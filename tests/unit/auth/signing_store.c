/*
 * Tests for the signing key kept in the database (auth_signing_key_from_store, idtoken.h) on
 * both drivers: the first call makes it and stores it sealed, later calls (another server, a
 * restart) get the same key, and a server with another secrets key is refused.
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

#include "auth/idtoken.h"
#include "store/store.h"
#include "unit/store/drivers.h"

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

static void test_made_once_sealed_and_kept(void **state)
{
    (void)state;
    unsigned char bytes[AUTH_SECRETS_KEY_SIZE];
    memset(bytes, 7, sizeof(bytes));
    auth_secrets_t *secrets = auth_secrets_new(bytes);
    err_t err = ERR_INIT;
    jose_key_t *first = NULL, *again = NULL;
    bool created = false;
    assert_int_equal(auth_signing_key_from_store(store, secrets, 1000, &first, &created, &err),
                     ERR_OK);
    assert_true(created);
    assert_true(jose_key_fits(first, AUTH_SIGNING_ALG));

    /* stored sealed: the kid in the clear, the private key not */
    arena_t arena;
    arena_init(&arena);
    store_server_key_t row;
    bool found = false;
    assert_int_equal(store_server_key_get(conn, STORE_SIGNING_KEY, &arena, &row, &found, &err),
                     ERR_OK);
    assert_true(found);
    assert_string_equal(row.kid, jose_key_kid(first));
    assert_int_equal(row.created_us, 1000);
    assert_true(strncmp(row.sealed, "v1.", 3) == 0);
    assert_null(strstr(row.sealed, "PRIVATE KEY"));
    buf_t opened = BUF_INIT;
    assert_true(
        auth_secrets_open(secrets, "server_key:signing", row.sealed, strlen(row.sealed), &opened));
    assert_non_null(strstr(opened.ptr, "PRIVATE KEY"));
    buf_release(&opened);

    /* another server on the database, or a restart: the same key */
    store_t *other;
    test_store_open(&other, NULL);
    assert_int_equal(auth_signing_key_from_store(other, secrets, 2000, &again, &created, &err),
                     ERR_OK);
    assert_false(created);
    assert_string_equal(jose_key_kid(again), jose_key_kid(first));
    jose_key_free(again);
    again = NULL;

    /* another secrets key does not open it: refused, and the stored key stays */
    memset(bytes, 8, sizeof(bytes));
    auth_secrets_t *wrong = auth_secrets_new(bytes);
    assert_int_equal(auth_signing_key_from_store(other, wrong, 3000, &again, &created, &err),
                     ERR_INVALID);
    assert_null(again);
    assert_non_null(strstr(err_message(&err), "does not open with this --secrets-key"));
    err_reset(&err);
    assert_int_equal(store_server_key_get(conn, STORE_SIGNING_KEY, &arena, &row, &found, &err),
                     ERR_OK);
    assert_string_equal(row.kid, jose_key_kid(first));
    store_close(other);
    auth_secrets_free(wrong);
    auth_secrets_free(secrets);
    jose_key_free(first);
    arena_release(&arena);
    err_release(&err);
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_made_once_sealed_and_kept, setup, teardown),
    };
    return test_run_on_drivers("auth/signing_store", both, TEST_COUNT(both), NULL, 0, NULL, 0);
}
