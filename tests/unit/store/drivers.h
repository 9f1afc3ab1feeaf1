/*
 * drivers.h - runs the tests of a store test program on each driver: on SQLite (a database
 * file in a temporary directory) and on PostgreSQL when CONCERTO_TEST_PG is the connection URI
 * of a database the tests may wipe: each test starts from an empty schema (DROP SCHEMA public
 * CASCADE). Without CONCERTO_TEST_PG the PostgreSQL runs are reported as skipped.
 *
 * A test's setup calls test_db_setup(state) first: *state is the driver of the run (the
 * test's initial state), the database's location is then in test_location.
 */
#ifndef CONCERTO_TESTS_STORE_DRIVERS_H
#define CONCERTO_TESTS_STORE_DRIVERS_H

#include <libpq-fe.h>

#include "store/store_int.h"

typedef struct {
    const char *name; /* as store_driver_name says */
    const store_driver_t *driver;
} test_driver_t;

static const test_driver_t test_sqlite = {"sqlite", &store__sqlite_driver};
static const test_driver_t test_pg = {"postgresql", &store__pg_driver};

static const test_driver_t *test_driver; /* of the running test */
static char test_dir[64];
static char test_location[512];

static bool test_is_pg(void)
{
    return test_driver == &test_pg;
}

static void test_quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* "drop cascades to ..." */
}

/* Runs sql on the PostgreSQL test database (for checks of what the driver wrote); the result
 * is the first column of the first row as an integer, or -1 when there is none. */
static long long test_pg_query(const char *sql)
{
    PGconn *pg = PQconnectdb(test_location);
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    PQsetNoticeProcessor(pg, test_quiet_notice, NULL);
    PGresult *res = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(res));
    long long value =
        st == PGRES_TUPLES_OK && PQntuples(res) > 0 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    PQclear(res);
    PQfinish(pg);
    return value;
}

/* Empties the database of the running test: a new file, or an empty schema. */
static void test_db_wipe(void)
{
    if (test_is_pg()) {
        test_pg_query("DROP SCHEMA public CASCADE; CREATE SCHEMA public");
    } else {
        static const char *const suffixes[] = {"", "-wal", "-shm"};
        for (size_t i = 0; i < 3; i++) {
            char file[160];
            snprintf(file, sizeof(file), "%s/test.db%s", test_dir, suffixes[i]);
            unlink(file);
        }
    }
}

static int test_db_setup(void **state)
{
    test_driver = *state ? *state : &test_sqlite;
    if (test_is_pg()) {
        snprintf(test_location, sizeof(test_location), "%s", getenv("CONCERTO_TEST_PG"));
        test_db_wipe();
    } else {
        snprintf(test_dir, sizeof(test_dir), "/tmp/concerto-store-XXXXXX");
        assert_non_null(mkdtemp(test_dir));
        snprintf(test_location, sizeof(test_location), "%s/test.db", test_dir);
    }
    return 0;
}

static int test_db_teardown(void **state)
{
    (void)state;
    if (test_is_pg())
        return 0;
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", test_dir);
    return system(cmd);
}

/* Opens the running test's database with synchronous off (fast; nothing here needs a power
 * loss survived) and, when out_conn is not NULL, a reader's connection. */
static inline void test_store_open(store_t **out, store_conn_t **out_conn)
{
    err_t err = ERR_INIT;
    store_options_t options;
    store_options_init(&options);
    options.synchronous = STORE_SYNC_OFF;
    assert_int_equal(store_open(test_location, &options, out, &err), ERR_OK);
    if (out_conn)
        assert_int_equal(store_connect(*out, out_conn, &err), ERR_OK);
    err_release(&err);
}

static void test_skip_pg(void **state)
{
    (void)state;
    print_message("CONCERTO_TEST_PG is not set: PostgreSQL is not tested\n");
    skip();
}

/*
 * Runs both[] on SQLite and PostgreSQL, sqlite_only[] on SQLite and pg_only[] on PostgreSQL,
 * as one group (one XML report). The PostgreSQL runs are named "postgresql: NAME".
 */
static int test_run_on_drivers(const char *group, const struct CMUnitTest *both, size_t nboth,
                               const struct CMUnitTest *sqlite_only, size_t nsqlite,
                               const struct CMUnitTest *pg_only, size_t npg)
{
    bool pg = getenv("CONCERTO_TEST_PG") && *getenv("CONCERTO_TEST_PG");
    size_t n = 0;
    struct CMUnitTest *tests = calloc(2 * nboth + nsqlite + npg, sizeof(*tests));
    char **names = calloc(nboth + npg + 1, sizeof(*names));
    for (size_t i = 0; i < nboth; i++) {
        tests[n] = both[i];
        tests[n++].initial_state = (void *)&test_sqlite;
    }
    for (size_t i = 0; i < nsqlite; i++) {
        tests[n] = sqlite_only[i];
        tests[n++].initial_state = (void *)&test_sqlite;
    }
    for (size_t i = 0; i < nboth + npg; i++) {
        const struct CMUnitTest *test = i < nboth ? &both[i] : &pg_only[i - nboth];
        size_t size = strlen(test->name) + 16;
        names[i] = malloc(size);
        snprintf(names[i], size, "postgresql: %s", test->name);
        tests[n] = *test;
        tests[n].name = names[i];
        tests[n].initial_state = (void *)&test_pg;
        if (!pg) {
            tests[n].test_func = test_skip_pg;
            tests[n].setup_func = NULL;
            tests[n].teardown_func = NULL;
        }
        n++;
    }
    int failed = _cmocka_run_group_tests(group, tests, n, NULL, NULL);
    for (size_t i = 0; i < nboth + npg; i++)
        free(names[i]);
    free(names);
    free(tests);
    return failed;
}

#define TEST_COUNT(tests) (sizeof(tests) / sizeof(tests[0]))

#endif
