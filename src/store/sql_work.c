/*
 * sql_work.c - the work rows of open Tasks (store.h, "Task work rows"), in the SQL both
 * drivers share: task_work holds one row per open Task (its key the resource's, so it goes
 * with the resource), task_work_pool one row per role pool of an unowned one. They are
 * written by each driver's write_index beside the search index rows, from the rows'
 * task_work (fhir/index.h), so every writer of index rows keeps them: a write, a delete, a
 * reindex, the load of a copy. Reads select by owner or pool with the caller's visibility.
 */
#include <string.h>

#include "base/buf.h"
#include "store/sql_search.h"
#include "store/sql_work.h"

static sql_bind_t bind_text(const char *text)
{
    return (sql_bind_t){.kind = SQL_BIND_TEXT, .text = text};
}

static sql_bind_t bind_int(int64_t i)
{
    return (sql_bind_t){.kind = SQL_BIND_INT, .i = i};
}

/* A placeholder: ?n on SQLite, $n (cast as given) on PostgreSQL. */
static void placeholder(const sql_driver_t *d, buf_t *sql, int n, const char *cast)
{
    if (d->dialect->kind == SQL_POSTGRES)
        buf_addf(sql, "$%d%s", n, cast ? cast : "");
    else
        buf_addf(sql, "?%d", n);
}

/* A list of strings to bind: a JSON array on SQLite (json_each), an array literal on
 * PostgreSQL (text[]: the planner sees how many values it holds, and tests them by hash). */
static const char *list_value(const sql_driver_t *d, arena_t *arena, const char *const *v, size_t n)
{
    if (d->dialect->kind != SQL_POSTGRES)
        return store__json_list(arena, v, n);
    buf_t b = BUF_INIT;
    buf_addch(&b, '{');
    for (size_t i = 0; i < n; i++) {
        buf_addstr(&b, i ? ",\"" : "\"");
        for (const char *c = v[i]; *c; c++) {
            if (*c == '"' || *c == '\\')
                buf_addch(&b, '\\');
            buf_addch(&b, *c);
        }
        buf_addch(&b, '"');
    }
    buf_addch(&b, '}');
    const char *out = arena_strndup(arena, b.ptr, b.len);
    buf_release(&b);
    return out;
}

/* `column` is one of the list bound at n (list_value). On PostgreSQL a short list (owners,
 * pools) is `= ANY`, which the planner estimates value by value, so it picks an index for a
 * selective one; a long list (hundreds of patients) is a hashed subquery, whose planning does
 * not cost a look at the statistics per value (5 ms for 1,000). */
static void in_list(const sql_driver_t *d, buf_t *sql, const char *column, int n, bool long_list)
{
    if (d->dialect->kind != SQL_POSTGRES)
        buf_addf(sql, "%s IN (SELECT value FROM json_each(?%d))", column, n);
    else if (long_list)
        buf_addf(sql, "%s IN (SELECT unnest($%d::text[]))", column, n);
    else
        buf_addf(sql, "%s = ANY($%d::text[])", column, n);
}

static bool no_rows(void *ctx, const sql_row_t *row)
{
    (void)ctx;
    (void)row;
    return true;
}

static status_t run(const sql_driver_t *d, const char *sql, const sql_bind_t *binds, size_t n,
                    const char *doing, sql_row_fn fn, void *ctx, err_t *err)
{
    sql_stmt_t stmt = {.sql = sql, .binds = binds, .nbinds = n};
    return d->run(d->conn, &stmt, doing, fn ? fn : no_rows, ctx, err);
}

/* The same for a read of the worklist's, run again and again in a few shapes: prepared once
 * per connection (sql_stmt_t.prepare). */
static status_t run_shape(const sql_driver_t *d, const char *sql, const sql_bind_t *binds, size_t n,
                          const char *doing, sql_row_fn fn, void *ctx, err_t *err)
{
    sql_stmt_t stmt = {.sql = sql, .binds = binds, .nbinds = n, .prepare = true};
    return d->run(d->conn, &stmt, doing, fn, ctx, err);
}

status_t sql__task_work_write(const sql_driver_t *d, int64_t rid, const char *id, bool is_new,
                              const fhir_task_work_t *work, err_t *err)
{
    bool pg = d->dialect->kind == SQL_POSTGRES;
    sql_bind_t key = bind_int(rid);
    status_t rc;
    if (!is_new) {
        if ((rc = run(d,
                      pg ? "DELETE FROM task_work WHERE rid = $1"
                         : "DELETE FROM task_work "
                           "WHERE rid = ?1",
                      &key, 1, "delete task work row", NULL, NULL, err)))
            return rc;
        if ((rc = run(d,
                      pg ? "DELETE FROM task_work_pool WHERE rid = $1"
                         : "DELETE FROM task_work_pool WHERE rid = ?1",
                      &key, 1, "delete task work pools", NULL, NULL, err)))
            return rc;
    }
    if (!work)
        return ERR_OK;
    sql_bind_t row[] = {key,
                        bind_text(id),
                        bind_int(work->unlinked),
                        bind_text(work->patient),
                        bind_text(work->owner),
                        bind_text(work->status),
                        work->priority >= 0 ? bind_int(work->priority) : bind_text(NULL),
                        work->due_us != INT64_MAX ? bind_int(work->due_us) : bind_text(NULL)};
    if ((rc = run(d,
                  pg ? "INSERT INTO task_work (rid, id, unlinked, patient, owner, status, "
                       "priority, due_us) VALUES ($1, $2, $3, $4, $5, $6, $7::integer, $8::bigint)"
                     : "INSERT INTO task_work (rid, id, unlinked, patient, owner, status, "
                       "priority, due_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                  row, 8, "insert task work row", NULL, NULL, err)))
        return rc;
    for (size_t i = 0; i < work->npools; i++) {
        sql_bind_t pool[] = {key, bind_text(work->pools[i])};
        if ((rc = run(d,
                      pg ? "INSERT INTO task_work_pool (rid, pool) VALUES ($1, $2)"
                         : "INSERT INTO task_work_pool (rid, pool) VALUES (?1, ?2)",
                      pool, 2, "insert task work pool", NULL, NULL, err)))
            return rc;
    }
    return ERR_OK;
}

/* ---- reading --------------------------------------------------------------------------- */

/*
 * On PostgreSQL, where each value of a result costs its conversion to text and back (a
 * worklist reads thousands of rows), the owner, the status and the priority come as one
 * integer: the status's place in open_statuses (1 on; 0: another, then in a column of its
 * own), 16 times the priority rank plus one (0: none), 128 times the owner's place in the
 * query's owners (0: unowned).
 */
static const char *const open_statuses[] = {"draft", "requested",   "received", "accepted",
                                            "ready", "in-progress", "on-hold"};
#define OPEN_STATUSES_SQL "'{draft,requested,received,accepted,ready,in-progress,on-hold}'"
#define PACK_PRIORITY     16
#define PACK_OWNER        128

typedef struct {
    const sql_driver_t *d;
    arena_t *arena;
    const store_task_work_query_t *q;
    store_task_work_t *v;
    size_t n, cap;
} work_ctx_t;

/* id, patient, packed (above), due_us, pool, status (when not one of open_statuses) */
static void work_row_packed(work_ctx_t *c, const sql_row_t *row, store_task_work_t *w)
{
    const sql_driver_t *d = c->d;
    w->id = d->text_at(row, 0, c->arena, NULL);
    w->patient = d->text_at(row, 1, c->arena, NULL);
    int64_t packed = d->int_at(row, 2);
    int64_t status = packed % PACK_PRIORITY, rank = packed % PACK_OWNER / PACK_PRIORITY,
            owner = packed / PACK_OWNER;
    w->status = status >= 1 && status <= (int64_t)(sizeof(open_statuses) / sizeof(*open_statuses))
                    ? open_statuses[status - 1]
                    : d->text_at(row, 5, c->arena, NULL);
    w->priority = (int)rank - 1;
    w->owner = owner >= 1 && (size_t)owner <= c->q->nowners ? c->q->owners[owner - 1] : NULL;
    sql_bind_t value;
    d->value_at(row, 3, c->arena, &value);
    w->due_us = value.kind == SQL_BIND_INT ? value.i : INT64_MAX;
    w->pool = d->text_at(row, 4, c->arena, NULL);
}

static bool work_row(void *opaque, const sql_row_t *row)
{
    work_ctx_t *c = opaque;
    const sql_driver_t *d = c->d;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        store_task_work_t *grown = arena_alloc(c->arena, cap * sizeof(*grown));
        if (c->n)
            memcpy(grown, c->v, c->n * sizeof(*grown));
        c->v = grown;
        c->cap = cap;
    }
    store_task_work_t *w = &c->v[c->n++];
    if (d->dialect->kind == SQL_POSTGRES) {
        work_row_packed(c, row, w);
        return true;
    }
    sql_bind_t value;
    w->id = d->text_at(row, 0, c->arena, NULL);
    w->patient = d->text_at(row, 1, c->arena, NULL);
    w->owner = d->text_at(row, 2, c->arena, NULL);
    w->status = d->text_at(row, 3, c->arena, NULL);
    d->value_at(row, 4, c->arena, &value);
    w->priority = value.kind == SQL_BIND_INT ? (int)value.i : -1;
    d->value_at(row, 5, c->arena, &value);
    w->due_us = value.kind == SQL_BIND_INT ? value.i : INT64_MAX;
    w->pool = d->text_at(row, 6, c->arena, NULL);
    return true;
}

static bool listed(const char *const *list, size_t n, const char *x)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], x) == 0)
            return true;
    return false;
}

/*
 * What a visibility (store.h) lets through of Task, from the work row: Task's only patient
 * link is Task.for (fhir/compartment.c), which the row holds as the index rows hold it, and
 * the row carries the mark of a Task linked to no patient. The same as the condition of a
 * search (sql_search.c), without a probe of the reference rows per Task. *out_none when no
 * Task is visible; *out_patients the Task.for values visible ("Patient/id" and the absolute
 * url under the base), NULL when every Task is.
 */
static void task_visibility(const sql_driver_t *d, const store_visibility_t *v, arena_t *arena,
                            bool *out_none, const char **out_patients, bool *out_unlinked)
{
    *out_none = false;
    *out_patients = NULL;
    *out_unlinked = false;
    if (!v)
        return;
    if (v->types_limited && !listed(v->types, v->ntypes, "Task")) {
        *out_none = true;
        return;
    }
    if (listed(v->open_types, v->nopen_types, "Task") ||
        !listed(v->member_types, v->nmembers, "Task"))
        return;
    size_t per = v->base && *v->base ? 2 : 1;
    const char **forms = arena_alloc(arena, (v->npatients * per + 1) * sizeof(*forms));
    size_t n = 0;
    for (size_t i = 0; i < v->npatients; i++) {
        forms[n++] = arena_printf(arena, "Patient/%s", v->patients[i]);
        if (per == 2)
            forms[n++] = arena_printf(arena, "%s/Patient/%s", v->base, v->patients[i]);
    }
    *out_patients = list_value(d, arena, forms, n);
    *out_unlinked = v->unlinked;
}

/* The conditions both halves of the select share, after their own. */
static void add_filters(const sql_driver_t *d, buf_t *sql, int patients_at, int priority_at,
                        int visible_at, bool unlinked)
{
    if (patients_at) {
        buf_addstr(sql, " AND ");
        in_list(d, sql, "w.patient", patients_at, false);
    }
    if (priority_at) {
        buf_addstr(sql, " AND w.priority = ");
        placeholder(d, sql, priority_at, "::integer");
    }
    if (visible_at) {
        buf_addstr(sql, " AND (");
        in_list(d, sql, "w.patient", visible_at, true);
        buf_addstr(sql, unlinked ? " OR w.unlinked = 1)" : ")");
    }
}

status_t sql__task_work_select(const sql_driver_t *d, const store_task_work_query_t *q,
                               arena_t *arena, store_task_work_t **out, size_t *out_n, err_t *err)
{
    *out = NULL;
    *out_n = 0;
    bool none, unlinked;
    const char *visible;
    task_visibility(d, q->visibility, arena, &none, &visible, &unlinked);
    if (none || (!q->nowners && !q->npools))
        return ERR_OK;
    sql_bind_t binds[5];
    int n = 0, owners_at = 0, pools_at = 0, patients_at = 0, priority_at = 0, visible_at = 0;
    if (q->nowners) {
        binds[n++] = bind_text(list_value(d, arena, q->owners, q->nowners));
        owners_at = n;
    }
    if (q->npools) {
        binds[n++] = bind_text(list_value(d, arena, q->pools, q->npools));
        pools_at = n;
    }
    if (q->patients) {
        binds[n++] = bind_text(list_value(d, arena, q->patients, q->npatients));
        patients_at = n;
    }
    if (q->priority >= 0) {
        binds[n++] = bind_int(q->priority);
        priority_at = n;
    }
    if (visible) {
        binds[n++] = bind_text(visible);
        visible_at = n;
    }
    /* CROSS JOIN: SQLite joins in the order written, from the pools the list selects (it
       cannot tell how many a JSON list holds); PostgreSQL plans it as any inner join. Only an
       unowned Task has pool rows (fhir_index_task_work): `w.owner IS NULL` says so to
       PostgreSQL, which then reads the unowned ones by the owner index instead of every row. */
    bool pg = d->dialect->kind == SQL_POSTGRES;
    buf_t sql = BUF_INIT;
    if (owners_at) {
        if (pg)
            buf_addf(&sql,
                     "SELECT w.id, w.patient, coalesce(array_position(" OPEN_STATUSES_SQL
                     "::text[], w.status), 0) + %d * coalesce(w.priority + 1, 0) + %d * "
                     "array_position($%d::text[], w.owner), w.due_us, NULL, CASE WHEN NOT "
                     "w.status = ANY(" OPEN_STATUSES_SQL "::text[]) THEN w.status END "
                     "FROM task_work w WHERE ",
                     PACK_PRIORITY, PACK_OWNER, owners_at);
        else
            buf_addstr(&sql, "SELECT w.id, w.patient, w.owner, w.status, w.priority, w.due_us, "
                             "NULL FROM task_work w WHERE ");
        in_list(d, &sql, "w.owner", owners_at, false);
        add_filters(d, &sql, patients_at, priority_at, visible_at, unlinked);
    }
    if (pools_at) {
        if (owners_at)
            buf_addstr(&sql, " UNION ALL ");
        if (pg)
            buf_addf(&sql,
                     "SELECT w.id, w.patient, coalesce(array_position(" OPEN_STATUSES_SQL
                     "::text[], w.status), 0) + %d * coalesce(w.priority + 1, 0), w.due_us, "
                     "p.pool, CASE WHEN NOT w.status = ANY(" OPEN_STATUSES_SQL
                     "::text[]) THEN w.status END FROM task_work_pool p CROSS JOIN task_work w "
                     "WHERE w.rid = p.rid AND w.owner IS NULL AND ",
                     PACK_PRIORITY);
        else
            buf_addstr(&sql, "SELECT w.id, w.patient, NULL, w.status, w.priority, w.due_us, "
                             "p.pool FROM task_work_pool p CROSS JOIN task_work w WHERE w.rid = "
                             "p.rid AND ");
        in_list(d, &sql, "p.pool", pools_at, false);
        add_filters(d, &sql, patients_at, priority_at, visible_at, unlinked);
    }
    work_ctx_t c = {.d = d, .arena = arena, .q = q};
    status_t rc = run(d, arena_strndup(arena, sql.ptr, sql.len), binds, (size_t)n, "task work",
                      work_row, &c, err);
    buf_release(&sql);
    if (rc)
        return rc;
    *out = c.v;
    *out_n = c.n;
    return ERR_OK;
}

/* ---- risk rows -------------------------------------------------------------------------- */

status_t sql__risk_write(const sql_driver_t *d, int64_t rid, bool is_new,
                         const fhir_risk_row_t *row, err_t *err)
{
    bool pg = d->dialect->kind == SQL_POSTGRES;
    sql_bind_t key = bind_int(rid);
    status_t rc;
    if (!is_new && (rc = run(d,
                             pg ? "DELETE FROM risk_work WHERE rid = $1"
                                : "DELETE FROM risk_work WHERE rid = ?1",
                             &key, 1, "delete risk row", NULL, NULL, err)))
        return rc;
    if (!row)
        return ERR_OK;
    sql_bind_t binds[] = {key, bind_text(row->patient),
                          row->when_us != INT64_MIN ? bind_int(row->when_us) : bind_text(NULL),
                          row->risk >= 0 ? (sql_bind_t){.kind = SQL_BIND_REAL, .d = row->risk}
                                         : bind_text(NULL)};
    return run(d,
               pg ? "INSERT INTO risk_work (rid, patient, when_us, risk) VALUES ($1, $2, "
                    "$3::bigint, $4::double precision)"
                  : "INSERT INTO risk_work (rid, patient, when_us, risk) VALUES (?1, ?2, ?3, ?4)",
               binds, 4, "insert risk row", NULL, NULL, err);
}

typedef struct {
    const sql_driver_t *d;
    arena_t *arena;
    store_risk_t *v;
    size_t n, cap;
} risk_ctx_t;

static bool risk_row(void *opaque, const sql_row_t *row)
{
    risk_ctx_t *c = opaque;
    const sql_driver_t *d = c->d;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 128;
        store_risk_t *grown = arena_alloc(c->arena, cap * sizeof(*grown));
        if (c->n)
            memcpy(grown, c->v, c->n * sizeof(*grown));
        c->v = grown;
        c->cap = cap;
    }
    store_risk_t *r = &c->v[c->n++];
    sql_bind_t value;
    r->patient = d->text_at(row, 0, c->arena, NULL);
    d->value_at(row, 1, c->arena, &value);
    r->when_us = value.kind == SQL_BIND_INT ? value.i : INT64_MIN;
    r->seq = d->int_at(row, 2);
    d->value_at(row, 3, c->arena, &value);
    r->risk = value.kind == SQL_BIND_REAL  ? value.d
              : value.kind == SQL_BIND_INT ? (double)value.i
                                           : -1;
    return true;
}

status_t sql__risk_select(const sql_driver_t *d, const char *const *patients, size_t n,
                          arena_t *arena, store_risk_t **out, size_t *out_n, err_t *err)
{
    *out = NULL;
    *out_n = 0;
    if (!n)
        return ERR_OK;
    sql_bind_t list = bind_text(list_value(d, arena, patients, n));
    risk_ctx_t c = {.d = d, .arena = arena};
    status_t rc =
        run_shape(d,
                  d->dialect->kind == SQL_POSTGRES
                      ? "SELECT k.patient, k.when_us, r.seq, k.risk FROM risk_work k JOIN "
                        "resource r ON r.rid = k.rid WHERE k.patient IN (SELECT "
                        "unnest($1::text[]))"
                      : "SELECT k.patient, k.when_us, r.seq, k.risk FROM risk_work k JOIN "
                        "resource r ON r.rid = k.rid WHERE k.patient IN (SELECT value FROM "
                        "json_each(?1))",
                  &list, 1, "risk rows", risk_row, &c, err);
    if (rc)
        return rc;
    *out = c.v;
    *out_n = c.n;
    return ERR_OK;
}

/* ---- care team member rows ------------------------------------------------------------ */

status_t sql__care_members_write(const sql_driver_t *d, int64_t rid, bool is_new,
                                 const fhir_care_members_t *members, err_t *err)
{
    bool pg = d->dialect->kind == SQL_POSTGRES;
    sql_bind_t key = bind_int(rid);
    status_t rc;
    if (!is_new && (rc = run(d,
                             pg ? "DELETE FROM care_member WHERE rid = $1"
                                : "DELETE FROM care_member WHERE rid = ?1",
                             &key, 1, "delete care team member rows", NULL, NULL, err)))
        return rc;
    for (size_t i = 0; members && i < members->n; i++) {
        const fhir_care_member_t *m = &members->v[i];
        sql_bind_t row[] = {key,
                            bind_text(m->member),
                            bind_text(members->patient),
                            bind_text(m->role),
                            m->from_us != INT64_MIN ? bind_int(m->from_us) : bind_text(NULL),
                            m->until_us != INT64_MAX ? bind_int(m->until_us) : bind_text(NULL)};
        if ((rc = run(d,
                      pg ? "INSERT INTO care_member (rid, member, patient, role, from_us, "
                           "until_us) VALUES ($1, $2, $3, $4, $5::bigint, $6::bigint)"
                         : "INSERT INTO care_member (rid, member, patient, role, from_us, "
                           "until_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                      row, 6, "insert care team member row", NULL, NULL, err)))
            return rc;
    }
    return ERR_OK;
}

typedef struct {
    const sql_driver_t *d;
    arena_t *arena;
    store_care_role_t *v;
    size_t n, cap;
} care_ctx_t;

static bool care_row(void *opaque, const sql_row_t *row)
{
    care_ctx_t *c = opaque;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        store_care_role_t *grown = arena_alloc(c->arena, cap * sizeof(*grown));
        if (c->n)
            memcpy(grown, c->v, c->n * sizeof(*grown));
        c->v = grown;
        c->cap = cap;
    }
    store_care_role_t *r = &c->v[c->n++];
    r->patient = c->d->text_at(row, 0, c->arena, NULL);
    r->role = c->d->text_at(row, 1, c->arena, NULL);
    return true;
}

status_t sql__care_roles_select(const sql_driver_t *d, const char *const *members, size_t n,
                                int64_t now_us, arena_t *arena, store_care_role_t **out,
                                size_t *out_n, err_t *err)
{
    *out = NULL;
    *out_n = 0;
    if (!n)
        return ERR_OK;
    sql_bind_t binds[] = {bind_text(list_value(d, arena, members, n)), bind_int(now_us)};
    care_ctx_t c = {.d = d, .arena = arena};
    status_t rc =
        run_shape(d,
                  d->dialect->kind == SQL_POSTGRES
                      ? "SELECT patient, role FROM care_member WHERE member = ANY($1::text[]) "
                        "AND (from_us IS NULL OR "
                        "from_us <= $2::bigint) AND (until_us IS NULL OR until_us > "
                        "$2::bigint)"
                      : "SELECT patient, role FROM care_member WHERE member IN (SELECT value "
                        "FROM json_each(?1)) AND (from_us IS NULL OR from_us <= ?2) AND "
                        "(until_us IS NULL OR until_us > ?2)",
                  binds, 2, "care team roles", care_row, &c, err);
    if (rc)
        return rc;
    *out = c.v;
    *out_n = c.n;
    return ERR_OK;
}

typedef struct {
    const sql_driver_t *d;
    arena_t *arena;
    const char *type;
    const char *const *ids;
    size_t n;
    store_version_t *out;
} batch_ctx_t;

static bool batch_row(void *opaque, const sql_row_t *row)
{
    batch_ctx_t *c = opaque;
    const sql_driver_t *d = c->d;
    const char *id = d->text_at(row, 0, c->arena, NULL);
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->ids[i], id) != 0)
            continue;
        store_version_t *v = &c->out[i];
        v->type = c->type;
        v->id = c->ids[i];
        v->version = d->int_at(row, 1);
        v->seq = d->int_at(row, 2);
        v->updated_us = d->int_at(row, 3);
        v->last_updated = d->text_at(row, 4, c->arena, NULL);
        v->method = d->text_at(row, 5, c->arena, NULL);
        v->status = (int)d->int_at(row, 6);
        v->deleted = d->int_at(row, 7) != 0;
        v->json = d->text_at(row, 8, c->arena, &v->json_len);
        if (!v->json) {
            v->json_len = 0;
            v->deleted = true;
        }
    }
    return true;
}

status_t sql__read_batch(const sql_driver_t *d, const char *type, const char *const *ids, size_t n,
                         arena_t *arena, store_version_t *out, err_t *err)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (store_version_t){.type = type, .id = ids[i], .deleted = true};
    if (!n)
        return ERR_OK;
    sql_bind_t binds[] = {bind_text(type), bind_text(store__json_list(arena, ids, n))};
    batch_ctx_t c = {.d = d, .arena = arena, .type = type, .ids = ids, .n = n, .out = out};
    return run(d,
               d->dialect->kind == SQL_POSTGRES
                   ? "SELECT r.id, v.version, v.seq, v.updated_us, v.last_updated, v.method, "
                     "v.status, v.deleted, v.json FROM resource r JOIN resource_version v ON "
                     "v.seq = r.seq WHERE r.type = $1 AND r.id IN (SELECT "
                     "jsonb_array_elements_text($2::jsonb))"
                   : "SELECT r.id, v.version, v.seq, v.updated_us, v.last_updated, v.method, "
                     "v.status, v.deleted, v.json FROM resource r JOIN resource_version v ON "
                     "v.seq = r.seq WHERE r.type = ?1 AND r.id IN (SELECT value FROM "
                     "json_each(?2))",
               binds, 2, "read a batch", batch_row, &c, err);
}
