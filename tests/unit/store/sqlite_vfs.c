/*
 * Tests for src/store/sqlite_vfs.c, the SQLite driver's file layer: a commit's WAL frames go
 * to the file in a few writes, and the file holds exactly what SQLite wrote wherever anything
 * looks at it: a reader on SQLite's own files sees every commit as soon as it returns (also
 * from a process killed right after), spilled frames are read back, rolled back and written
 * over, and the WAL starts over after a checkpoint.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/sqlite_int.h"

typedef struct {
    char dir[64];
    char path[96];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/concerto-vfs-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/t.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static void exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
}

static int64_t single(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *stmt;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return v;
}

/* The writer's handle, on the driver's file layer, as the driver opens it. */
static sqlite3 *open_writer(const char *path)
{
    const char *vfs = sqlite__vfs();
    assert_non_null(vfs);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs),
                     SQLITE_OK);
    exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY;"
             "PRAGMA cache_size=-8000;"
             "PRAGMA wal_autocheckpoint=0;" /* checkpoints run apart, as in the driver */
             "CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v BLOB);"
             "CREATE INDEX IF NOT EXISTS t_v ON t (v);");
    return db;
}

/* A reader on SQLite's own files, as another process would be. */
static sqlite3 *open_reader(const char *path)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    return db;
}

/* n rows of size bytes each, keys from first, random contents (pages all over the index). */
static void insert(sqlite3 *db, int first, int n, int size)
{
    char sql[160];
    snprintf(sql, sizeof(sql),
             "WITH RECURSIVE c(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM c WHERE i < %d) "
             "INSERT INTO t SELECT i, randomblob(%d) FROM c",
             first, first + n - 1, size);
    exec(db, sql);
}

/* The write system calls this process has made (/proc/self/io). */
static long write_calls(void)
{
    FILE *io = fopen("/proc/self/io", "r");
    assert_non_null(io);
    char line[128];
    long n = -1;
    while (fgets(line, sizeof(line), io))
        if (sscanf(line, "syscw: %ld", &n) == 1)
            break;
    fclose(io);
    assert_true(n >= 0);
    return n;
}

static void test_commits_are_seen_at_once_and_written_in_few_calls(void **state)
{
    fixture_t *f = *state;
    sqlite3 *w = open_writer(f->path);
    sqlite3 *r = open_reader(f->path);
    int64_t rows = 0;
    for (int round = 0; round < 20; round++) {
        long before = write_calls();
        exec(w, "BEGIN");
        insert(w, (int)rows + 1, 400, 300); /* about 200 pages of table and index */
        exec(w, "COMMIT");
        long calls = write_calls() - before;
        rows += 400;
        /* SQLite alone writes each frame in two calls: 400 and more here */
        assert_true(calls < 40);
        assert_int_equal(single(r, "SELECT count(*) FROM t"), rows);
    }
    /* a commit larger than what is kept in memory (16 MiB) */
    exec(w, "BEGIN");
    insert(w, (int)rows + 1, 30, 1024 * 1024);
    exec(w, "COMMIT");
    rows += 30;
    assert_int_equal(single(r, "SELECT count(*) FROM t"), rows);
    assert_int_equal(single(r, "SELECT sum(length(v)) FROM t"),
                     (int64_t)20 * 400 * 300 + (int64_t)30 * 1024 * 1024);
    sqlite3_close(r);
    sqlite3_close(w);
}

static void test_spilled_frames_are_read_back_and_rolled_back(void **state)
{
    fixture_t *f = *state;
    sqlite3 *w = open_writer(f->path);
    exec(w, "PRAGMA cache_size=20"); /* the transaction spills its pages into the WAL */
    insert(w, 1, 100, 200);
    exec(w, "BEGIN");
    insert(w, 101, 3000, 500);
    /* the pages it wrote out come back from the WAL */
    assert_int_equal(single(w, "SELECT count(*) FROM t"), 3100);
    assert_int_equal(single(w, "SELECT sum(length(v)) FROM t"), 100 * 200 + 3000 * 500);
    exec(w, "ROLLBACK");
    assert_int_equal(single(w, "SELECT count(*) FROM t"), 100);
    /* the next commit writes over the rolled-back frames */
    exec(w, "BEGIN");
    insert(w, 101, 1000, 500);
    exec(w, "UPDATE t SET v = randomblob(300) WHERE k % 7 = 0");
    exec(w, "COMMIT");
    sqlite3 *r = open_reader(f->path);
    assert_int_equal(single(r, "SELECT count(*) FROM t"), 1100);
    assert_int_equal(single(r, "SELECT count(*) FROM t WHERE length(v) = 300"), 1100 / 7);
    sqlite3_stmt *check;
    assert_int_equal(sqlite3_prepare_v2(r, "PRAGMA integrity_check", -1, &check, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(check), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(check, 0), "ok");
    sqlite3_finalize(check);
    sqlite3_close(r);
    sqlite3_close(w);
}

static void test_the_wal_starts_over_after_a_checkpoint(void **state)
{
    fixture_t *f = *state;
    sqlite3 *w = open_writer(f->path);
    sqlite3 *r = open_reader(f->path);
    int64_t rows = 0;
    for (int round = 0; round < 6; round++) {
        insert(w, (int)rows + 1, 500, 100);
        rows += 500;
        /* copied into the database, then written from the start of the WAL again */
        exec(r, round % 2 ? "PRAGMA wal_checkpoint(RESTART)" : "PRAGMA wal_checkpoint(TRUNCATE)");
        insert(w, (int)rows + 1, 500, 100);
        rows += 500;
        assert_int_equal(single(r, "SELECT count(*) FROM t"), rows);
    }
    sqlite3_close(r);
    sqlite3_close(w);
    /* and everything is there for whoever opens it next */
    r = open_reader(f->path);
    assert_int_equal(single(r, "SELECT count(*) FROM t"), rows);
    sqlite3_close(r);
}

static void test_a_commit_survives_the_process_killed_after_it(void **state)
{
    fixture_t *f = *state;
    sqlite3_close(open_writer(f->path));
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        sqlite3 *w = open_writer(f->path);
        for (int i = 0; i < 25; i++) {
            exec(w, "BEGIN");
            insert(w, i * 100 + 1, 100, 400);
            exec(w, "COMMIT");
        }
        exec(w, "BEGIN");
        insert(w, 100000, 100, 400); /* not committed */
        _exit(0);                    /* killed: nothing closed, nothing written at the end */
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    sqlite3 *r = open_reader(f->path);
    assert_int_equal(single(r, "SELECT count(*) FROM t"), 2500);
    assert_int_equal(single(r, "SELECT max(k) FROM t"), 2500);
    sqlite3_close(r);
}

/* A transaction that spilled pages and wrote them again, killed after its commit: SQLite
 * rewrote the frames' checksums after the commit frame, and a database opened afresh (which
 * recovers the WAL, checking every checksum) has all of it. */
static void test_a_spilled_commit_survives_the_process_killed_after_it(void **state)
{
    fixture_t *f = *state;
    sqlite3_close(open_writer(f->path));
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        sqlite3 *w = open_writer(f->path);
        exec(w, "PRAGMA cache_size=20");
        insert(w, 1, 200, 200);
        exec(w, "BEGIN");
        insert(w, 201, 3000, 400);
        exec(w, "UPDATE t SET v = randomblob(100) WHERE k % 3 = 0");
        exec(w, "COMMIT");
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    sqlite3 *r = open_reader(f->path);
    assert_int_equal(single(r, "SELECT count(*) FROM t"), 3200);
    assert_int_equal(single(r, "SELECT count(*) FROM t WHERE length(v) = 100"), 3200 / 3);
    sqlite3_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commits_are_seen_at_once_and_written_in_few_calls,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_spilled_frames_are_read_back_and_rolled_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_wal_starts_over_after_a_checkpoint, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_commit_survives_the_process_killed_after_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_spilled_commit_survives_the_process_killed_after_it,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
