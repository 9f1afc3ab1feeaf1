/*
 * sql_copy.c - the scans and loads of a database copy in the SQL both drivers share
 * (sql_copy.h). A scan is one fixed statement that pages by its key; a load writes as many rows
 * per INSERT as a limit on values allows (a round trip per hundred rows, not per row).
 */
#include "store/sql_copy.h"

#include <string.h>

#include "base/buf.h"

/* The statement text in the driver's dialect: written with $n, which SQLite spells ?n. */
static const char *dialect_text(const sql_driver_t *driver, const char *sql, arena_t *arena)
{
    if (driver->dialect->numbered)
        return sql;
    char *text = arena_strdup(arena, sql);
    for (char *p = text; *p; p++)
        if (*p == '$' && p[1] >= '0' && p[1] <= '9')
            *p = '?';
    return text;
}

static sql_bind_t bind_text(const char *text)
{
    return (sql_bind_t){.kind = SQL_BIND_TEXT, .text = text};
}

static sql_bind_t bind_int(int64_t i)
{
    return (sql_bind_t){.kind = SQL_BIND_INT, .i = i};
}

static status_t run(const sql_driver_t *driver, const char *sql, const sql_bind_t *binds,
                    size_t nbinds, const char *doing, sql_row_fn fn, void *ctx, arena_t *arena,
                    err_t *err)
{
    sql_stmt_t stmt = {.sql = dialect_text(driver, sql, arena), .binds = binds, .nbinds = nbinds};
    return driver->run(driver->conn, &stmt, doing, fn, ctx, err);
}

static bool no_rows(void *ctx, const sql_row_t *row)
{
    (void)ctx;
    (void)row;
    return true;
}

/* ---- versions -------------------------------------------------------------------------- */

typedef struct {
    const sql_driver_t *driver;
    arena_t *arena;
    store_copy_version_t *rows;
    size_t n, cap;
} versions_ctx_t;

static bool version_row(void *opaque, const sql_row_t *row)
{
    versions_ctx_t *c = opaque;
    const sql_driver_t *d = c->driver;
    if (c->n == c->cap)
        return false;
    store_copy_version_t *out = &c->rows[c->n++];
    memset(out, 0, sizeof(*out));
    store_version_t *v = &out->version;
    v->type = d->text_at(row, 0, c->arena, NULL);
    v->id = d->text_at(row, 1, c->arena, NULL);
    v->version = d->int_at(row, 2);
    v->seq = d->int_at(row, 3);
    v->updated_us = d->int_at(row, 4);
    v->last_updated = d->text_at(row, 5, c->arena, NULL);
    v->method = d->text_at(row, 6, c->arena, NULL);
    v->status = (int)d->int_at(row, 7);
    v->deleted = d->int_at(row, 8) != 0;
    v->json = d->text_at(row, 9, c->arena, &v->json_len);
    if (!v->json)
        v->json_len = 0;
    v->author = d->text_at(row, 10, c->arena, NULL);
    out->rid = d->int_at(row, 11);
    return true;
}

status_t sql__scan_versions(const sql_driver_t *driver, int64_t after_seq, size_t count,
                            arena_t *arena, store_copy_version_t **out_versions, size_t *out_n,
                            err_t *err)
{
    versions_ctx_t c = {.driver = driver,
                        .arena = arena,
                        .rows = arena_alloc(arena, (count ? count : 1) * sizeof(*c.rows)),
                        .cap = count};
    sql_bind_t binds[] = {bind_int(after_seq), bind_int((int64_t)count)};
    status_t rc =
        run(driver,
            "SELECT v.type, v.id, v.version, v.seq, v.updated_us, v.last_updated, v.method, "
            "v.status, v.deleted, v.json, v.author, r.rid FROM resource_version v "
            "LEFT JOIN resource r ON r.type = v.type AND r.id = v.id AND r.seq = v.seq "
            "WHERE v.seq > $1 ORDER BY v.seq LIMIT $2",
            binds, 2, "scan versions", version_row, &c, arena, err);
    *out_versions = c.rows;
    *out_n = rc ? 0 : c.n;
    return rc;
}

/* Values per INSERT of a load: well under either database's limit on parameters. */
#define LOAD_VALUES 1000

/*
 * Inserts nrows rows of ncolumns values each (binds, row after row) with `insert` ("INSERT
 * INTO table (columns) VALUES "), as many rows per statement as LOAD_VALUES allows.
 */
static status_t insert_rows(const sql_driver_t *driver, const char *insert, int ncolumns,
                            const sql_bind_t *binds, size_t nrows, const char *doing, err_t *err)
{
    size_t per = LOAD_VALUES / (size_t)ncolumns;
    status_t rc = ERR_OK;
    buf_t sql = BUF_INIT;
    for (size_t start = 0; start < nrows && !rc; start += per) {
        size_t k = nrows - start < per ? nrows - start : per;
        buf_reset(&sql);
        buf_addstr(&sql, insert);
        for (size_t row = 0; row < k; row++) {
            buf_addstr(&sql, row ? ", (" : "(");
            for (int c = 0; c < ncolumns; c++)
                buf_addf(&sql, "%s$%d", c ? ", " : "", (int)row * ncolumns + c + 1);
            buf_addch(&sql, ')');
        }
        arena_t arena;
        arena_init(&arena);
        rc = run(driver, sql.ptr, binds + start * (size_t)ncolumns, k * (size_t)ncolumns, doing,
                 no_rows, NULL, &arena, err);
        arena_release(&arena);
    }
    buf_release(&sql);
    return rc;
}

status_t sql__load_versions(const sql_driver_t *driver, const store_copy_version_t *versions,
                            size_t n, err_t *err)
{
    arena_t arena;
    arena_init(&arena);
    sql_bind_t *binds = arena_alloc(&arena, (n ? n : 1) * 11 * sizeof(*binds));
    size_t nbinds = 0, ncurrent = 0;
    for (size_t i = 0; i < n; i++) {
        const store_version_t *v = &versions[i].version;
        /* the stored text, NUL-terminated for the bind */
        const char *json = v->json ? arena_strndup(&arena, v->json, v->json_len) : NULL;
        binds[nbinds++] = bind_int(v->seq);
        binds[nbinds++] = bind_text(v->type);
        binds[nbinds++] = bind_text(v->id);
        binds[nbinds++] = bind_int(v->version);
        binds[nbinds++] = bind_int(v->updated_us);
        binds[nbinds++] = bind_text(v->last_updated);
        binds[nbinds++] = bind_text(v->method);
        binds[nbinds++] = bind_int(v->status);
        binds[nbinds++] = bind_int(v->deleted);
        binds[nbinds++] = bind_text(json);
        binds[nbinds++] = bind_text(v->author);
        ncurrent += versions[i].rid != 0;
    }
    status_t rc = insert_rows(driver,
                              "INSERT INTO resource_version (seq, type, id, version, updated_us, "
                              "last_updated, method, status, deleted, json, author) VALUES ",
                              11, binds, n, "load versions", err);
    nbinds = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const store_version_t *v = &versions[i].version;
        if (!versions[i].rid)
            continue;
        binds[nbinds++] = bind_int(versions[i].rid);
        binds[nbinds++] = bind_text(v->type);
        binds[nbinds++] = bind_text(v->id);
        binds[nbinds++] = bind_int(v->version);
        binds[nbinds++] = bind_int(v->seq);
        binds[nbinds++] = bind_int(v->deleted);
        binds[nbinds++] = bind_int(v->updated_us);
    }
    if (!rc)
        rc = insert_rows(driver,
                         "INSERT INTO resource (rid, type, id, version, seq, deleted, updated_us) "
                         "VALUES ",
                         7, binds, ncurrent, "load current resources", err);
    arena_release(&arena);
    return rc;
}

/* ---- the queues ------------------------------------------------------------------------ */

typedef struct {
    const sql_driver_t *driver;
    arena_t *arena;
    store_event_t *events;
    size_t n, cap;
} events_ctx_t;

static bool event_row(void *opaque, const sql_row_t *row)
{
    events_ctx_t *c = opaque;
    const sql_driver_t *d = c->driver;
    if (c->n == c->cap)
        return false;
    store_event_t *e = &c->events[c->n++];
    e->event_id = d->int_at(row, 0);
    e->seq = d->int_at(row, 1);
    e->type = d->text_at(row, 2, c->arena, NULL);
    e->id = d->text_at(row, 3, c->arena, NULL);
    e->version = d->int_at(row, 4);
    e->action = (store_event_action_t)d->int_at(row, 5);
    e->time_us = d->int_at(row, 6);
    e->available_us = d->int_at(row, 7);
    e->attempts = d->int_at(row, 8);
    e->claimed_by = d->text_at(row, 9, c->arena, NULL);
    e->claim_until_us = d->int_at(row, 10);
    e->last_error = d->text_at(row, 11, c->arena, NULL);
    e->dead = d->int_at(row, 12) != 0;
    return true;
}

status_t sql__outbox_scan(const sql_driver_t *driver, int64_t after_event_id, size_t count,
                          arena_t *arena, store_event_t **out_events, size_t *out_n, err_t *err)
{
    events_ctx_t c = {.driver = driver,
                      .arena = arena,
                      .events = arena_alloc(arena, (count ? count : 1) * sizeof(*c.events)),
                      .cap = count};
    sql_bind_t binds[] = {bind_int(after_event_id), bind_int((int64_t)count)};
    /* dead is an integer in SQLite and a boolean in PostgreSQL: read as 0 or 1 in both */
    status_t rc = run(driver,
                      "SELECT event_id, seq, type, id, version, action, time_us, available_us, "
                      "attempts, claimed_by, claim_until_us, last_error, "
                      "CASE WHEN dead THEN 1 ELSE 0 END FROM outbox "
                      "WHERE event_id > $1 ORDER BY event_id LIMIT $2",
                      binds, 2, "scan outbox", event_row, &c, arena, err);
    *out_events = c.events;
    *out_n = rc ? 0 : c.n;
    return rc;
}

/* PostgreSQL's identity keys of the queues are GENERATED ALWAYS: a key given needs this. */
static const char *overriding(const sql_driver_t *driver)
{
    return driver->dialect->kind == SQL_POSTGRES ? " OVERRIDING SYSTEM VALUE" : "";
}

status_t sql__load_events(const sql_driver_t *driver, const store_event_t *events, size_t n,
                          err_t *err)
{
    arena_t arena;
    arena_init(&arena);
    sql_bind_t *binds = arena_alloc(&arena, (n ? n : 1) * 13 * sizeof(*binds));
    size_t nbinds = 0;
    for (size_t i = 0; i < n; i++) {
        const store_event_t *e = &events[i];
        binds[nbinds++] = bind_int(e->event_id);
        binds[nbinds++] = bind_int(e->seq);
        binds[nbinds++] = bind_text(e->type);
        binds[nbinds++] = bind_text(e->id);
        binds[nbinds++] = bind_int(e->version);
        binds[nbinds++] = bind_int((int64_t)e->action);
        binds[nbinds++] = bind_int(e->time_us);
        binds[nbinds++] = bind_int(e->available_us);
        binds[nbinds++] = bind_int(e->attempts);
        binds[nbinds++] = bind_text(e->claimed_by);
        binds[nbinds++] = bind_int(e->claim_until_us);
        binds[nbinds++] = bind_text(e->last_error);
        /* 0 or 1: SQLite's integer; PostgreSQL reads '0' and '1' as booleans */
        binds[nbinds++] = bind_int(e->dead ? 1 : 0);
    }
    const char *insert = arena_printf(
        &arena,
        "INSERT INTO outbox (event_id, seq, type, id, version, action, time_us, available_us, "
        "attempts, claimed_by, claim_until_us, last_error, dead)%s VALUES ",
        overriding(driver));
    status_t rc = insert_rows(driver, insert, 13, binds, n, "load outbox events", err);
    arena_release(&arena);
    return rc;
}

status_t sql__load_jobs(const sql_driver_t *driver, const store_job_t *jobs, size_t n, err_t *err)
{
    arena_t arena;
    arena_init(&arena);
    sql_bind_t *binds = arena_alloc(&arena, (n ? n : 1) * 11 * sizeof(*binds));
    size_t nbinds = 0;
    for (size_t i = 0; i < n; i++) {
        const store_job_t *j = &jobs[i];
        binds[nbinds++] = bind_int(j->job_id);
        binds[nbinds++] = bind_text(j->kind);
        binds[nbinds++] = bind_text(j->key);
        binds[nbinds++] = bind_int(j->run_at_us);
        binds[nbinds++] = bind_text(j->payload);
        binds[nbinds++] = bind_int(j->attempts);
        binds[nbinds++] = bind_text(j->claimed_by);
        binds[nbinds++] = bind_int(j->claim_until_us);
        binds[nbinds++] = bind_text(j->last_error);
        binds[nbinds++] = bind_int((int64_t)j->state);
        binds[nbinds++] = bind_int(j->revision);
    }
    const char *insert = arena_printf(
        &arena,
        "INSERT INTO job (job_id, kind, key, run_at_us, payload, attempts, claimed_by, "
        "claim_until_us, last_error, state, revision)%s VALUES ",
        overriding(driver));
    status_t rc = insert_rows(driver, insert, 11, binds, n, "load jobs", err);
    arena_release(&arena);
    return rc;
}

typedef struct {
    const sql_driver_t *driver;
    arena_t *arena;
    store_lease_t *leases;
    size_t n, cap;
} leases_ctx_t;

static bool lease_row(void *opaque, const sql_row_t *row)
{
    leases_ctx_t *c = opaque;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        store_lease_t *grown = arena_alloc(c->arena, cap * sizeof(*grown));
        if (c->n)
            memcpy(grown, c->leases, c->n * sizeof(*grown));
        c->leases = grown;
        c->cap = cap;
    }
    store_lease_t *l = &c->leases[c->n++];
    l->name = c->driver->text_at(row, 0, c->arena, NULL);
    l->holder = c->driver->text_at(row, 1, c->arena, NULL);
    l->until_us = c->driver->int_at(row, 2);
    return true;
}

status_t sql__lease_list(const sql_driver_t *driver, arena_t *arena, store_lease_t **out_leases,
                         size_t *out_n, err_t *err)
{
    leases_ctx_t c = {.driver = driver, .arena = arena};
    status_t rc = run(driver, "SELECT name, holder, until_us FROM lease ORDER BY name", NULL, 0,
                      "list leases", lease_row, &c, arena, err);
    *out_leases = c.leases;
    *out_n = rc ? 0 : c.n;
    return rc;
}

status_t sql__load_leases(const sql_driver_t *driver, const store_lease_t *leases, size_t n,
                          err_t *err)
{
    arena_t arena;
    arena_init(&arena);
    sql_bind_t *binds = arena_alloc(&arena, (n ? n : 1) * 3 * sizeof(*binds));
    for (size_t i = 0; i < n; i++) {
        binds[3 * i] = bind_text(leases[i].name);
        binds[3 * i + 1] = bind_text(leases[i].holder);
        binds[3 * i + 2] = bind_int(leases[i].until_us);
    }
    status_t rc = insert_rows(driver, "INSERT INTO lease (name, holder, until_us) VALUES ", 3,
                              binds, n, "load leases", err);
    arena_release(&arena);
    return rc;
}
