/*
 * Tests for the purge of expired tokens, assertion ids, sessions and authorization requests
 * (src/auth/purge.c) on both drivers: what has expired goes, what is live stays, the job
 * asks for its next run an hour later, and scheduling it again never makes a second job.
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

#include "auth/purge.h"
#include "store/store.h"
#include "unit/store/drivers.h"

#define SECOND 1000000LL
#define T0     (1800000000LL * SECOND)

static store_t *store;
static store_conn_t *conn;
static arena_t arena;

static int setup(void **state)
{
    test_db_setup(state);
    test_store_open(&store, &conn);
    arena_init(&arena);
    return 0;
}

static int teardown(void **state)
{
    arena_release(&arena);
    store_disconnect(conn);
    store_close(store);
    return test_db_teardown(state);
}

/* Two of each: one expired at T0 + 10 s, one live until T0 + 1 hour. */
static status_t fill_txn(store_txn_t *txn, void *arg, err_t *err)
{
    (void)arg;
    status_t rc = ERR_OK;
    const char *names[] = {"old", "new"};
    int64_t ends[] = {T0 + 10 * SECOND, T0 + 3600 * SECOND};
    for (int i = 0; i < 2 && !rc; i++) {
        store_token_t token = {.hash = names[i],
                               .kind = STORE_TOKEN_ACCESS,
                               .client_id = "app",
                               .scopes = "patient/*.rs",
                               .expires_us = ends[i],
                               .created_us = T0};
        store_session_t session = {.session_id = names[i],
                                   .state = STORE_SESSION_ANONYMOUS,
                                   .csrf = "csrf",
                                   .created_us = T0,
                                   .last_seen_us = T0,
                                   .expires_us = ends[i]};
        store_authz_request_t request = {.request_id = names[i],
                                         .session_id = "new",
                                         .client_id = "app",
                                         .redirect_uri = "https://app.example/cb",
                                         .scope = "openid",
                                         .code_challenge = "challenge",
                                         .created_us = T0,
                                         .expires_us = ends[i]};
        bool fresh;
        if (!(rc = store_txn_token_issue(txn, &token, err)) &&
            !(rc = store_txn_session_create(txn, &session, err)) &&
            !(rc = store_txn_authz_request_create(txn, &request, err)))
            rc = store_txn_client_assertion_use(txn, "app", names[i], ends[i], T0, &fresh, err);
    }
    return rc;
}

static bool token_exists(const char *hash)
{
    err_t err = ERR_INIT;
    store_token_t row;
    status_t rc = store_token_get(conn, hash, &arena, &row, &err);
    err_release(&err);
    assert_true(rc == ERR_OK || rc == ERR_NOT_FOUND);
    return rc == ERR_OK;
}

static bool session_exists(const char *id)
{
    err_t err = ERR_INIT;
    store_session_t row;
    status_t rc = store_session_get(conn, id, &arena, &row, &err);
    err_release(&err);
    assert_true(rc == ERR_OK || rc == ERR_NOT_FOUND);
    return rc == ERR_OK;
}

static bool request_exists(const char *id)
{
    err_t err = ERR_INIT;
    store_authz_request_t row;
    status_t rc = store_authz_request_get(conn, id, &arena, &row, &err);
    err_release(&err);
    assert_true(rc == ERR_OK || rc == ERR_NOT_FOUND);
    return rc == ERR_OK;
}

typedef struct {
    const char *jti;
    int64_t now_us;
    bool fresh;
} assertion_arg_t;

static status_t assertion_txn(store_txn_t *txn, void *arg, err_t *err)
{
    assertion_arg_t *a = arg;
    return store_txn_client_assertion_use(txn, "app", a->jti, a->now_us + 60 * SECOND, a->now_us,
                                          &a->fresh, err);
}

/* Whether the assertion id is still recorded as used at now_us (a second use is refused). */
static bool assertion_recorded(const char *jti, int64_t now_us)
{
    assertion_arg_t a = {jti, now_us, false};
    err_t err = ERR_INIT;
    assert_int_equal(store_run(store, assertion_txn, &a, &err), ERR_OK);
    err_release(&err);
    return !a.fresh;
}

static void test_the_job_removes_what_expired(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    assert_int_equal(store_run(store, fill_txn, NULL, &err), ERR_OK);

    /* before anything expires, nothing goes */
    store_job_t job = {.kind = AUTH_PURGE_KIND, .key = AUTH_PURGE_KEY};
    repo_job_next_t next = {0};
    assert_int_equal(auth_purge_job(store, &job, T0 + 5 * SECOND, &arena, &next, NULL, &err),
                     ERR_OK);
    assert_int_equal(next.next_run_us, T0 + 5 * SECOND + AUTH_PURGE_INTERVAL_US);
    assert_true(token_exists("old") && session_exists("old") && request_exists("old"));

    auth_purge_counts_t counts;
    assert_int_equal(auth_purge(store, T0 + 20 * SECOND, &counts, &err), ERR_OK);
    assert_int_equal(counts.tokens, 1);
    assert_int_equal(counts.sessions, 1);
    assert_false(token_exists("old"));
    assert_true(token_exists("new"));
    assert_false(session_exists("old"));
    assert_true(session_exists("new"));
    assert_false(request_exists("old"));
    assert_true(request_exists("new"));
    /* a live assertion id is kept: using it again is still a replay */
    assert_true(assertion_recorded("new", T0 + 20 * SECOND));
    assert_int_equal(auth_purge(store, T0 + 20 * SECOND, &counts, &err), ERR_OK);
    assert_int_equal(counts.tokens, 0);
    err_release(&err);
}

static void test_scheduling_makes_one_job(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    assert_int_equal(auth_purge_start(store, T0, &err), ERR_OK);
    assert_int_equal(auth_purge_start(store, T0 + SECOND, &err), ERR_OK);
    store_job_query_t query = {.kind = AUTH_PURGE_KIND, .count = 10};
    store_job_t *jobs;
    size_t n;
    assert_int_equal(store_job_list(conn, &query, &arena, &jobs, &n, &err), ERR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(jobs[0].key, AUTH_PURGE_KEY);
    assert_int_equal(jobs[0].run_at_us, T0 + SECOND);
    err_release(&err);
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_the_job_removes_what_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scheduling_makes_one_job, setup, teardown),
    };
    return test_run_on_drivers("auth/purge", both, TEST_COUNT(both), NULL, 0, NULL, 0);
}
