/*
 * sql_search.c - the search SQL of both drivers (sql_search.h): plans become statements in a
 * dialect, and the search runs them through a driver.
 *
 * A plan becomes one SELECT per branch over the current resources (`resource a`), each
 * clause a non-correlated `a.rid IN (SELECT rid FROM ix_<kind> WHERE type = ? AND param = ?
 * AND <value conditions OR'ed>)` so the database can drive from whichever index is most
 * selective; branches are joined with UNION ALL; sort keys are computed per resource from the
 * index rows (min for ascending, max for descending); pages are cut by keyset (the cursor
 * carries the last sort key values and rid). Statement text is built from fixed fragments
 * only: every value is a bound parameter. docs/internals/search.md describes the semantics.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "fhir/fhirpath.h"
#include "store/sql_search.h"
#include "store/sql_text.h"

const sql_dialect_t sql__sqlite = {
    .kind = SQL_SQLITE,
    .numbered = false,
    .true_sql = "1",
    .false_sql = "0",
    .no_index = "+",
    .row_key = "rowid",
    .alias = "",
};

const sql_dialect_t sql__postgres = {
    .kind = SQL_POSTGRES,
    .numbered = true,
    .true_sql = "true",
    .false_sql = "false",
    .no_index = "",
    .row_key = "ctid",
    .alias = " s",
};

static const char *const index_tables[FHIR_INDEX_KIND_COUNT] = {
    [FHIR_INDEX_STRING] = "ix_string",     [FHIR_INDEX_TOKEN] = "ix_token",
    [FHIR_INDEX_DATE] = "ix_date",         [FHIR_INDEX_NUMBER] = "ix_number",
    [FHIR_INDEX_QUANTITY] = "ix_quantity", [FHIR_INDEX_REFERENCE] = "ix_reference",
    [FHIR_INDEX_URI] = "ix_uri",           [FHIR_INDEX_COMPOSITE] = "ix_composite",
    [FHIR_INDEX_OF_TYPE] = "ix_of_type",   [FHIR_INDEX_POSITION] = "ix_position",
};

/* ---- statement building -------------------------------------------------------------- */

typedef struct {
    const sql_dialect_t *d;
    arena_t *arena;
    buf_t sql;
    sql_bind_t *binds;
    size_t nbinds, cap;
    int alias; /* the last alias number handed out */
    const store_search_t *query;
    const char ***how; /* how[b][c] for clause c of branch b: NULL as written, PROBE tested
                          per resource (EXISTS) */
    bool in_contained; /* the clauses written test contained resources (resource_contained,
                          index rows of type "#Type") */
    bool probing;      /* writing the condition of a per-resource probe (q_param_probe) */
} q_t;

bool sql__search_walks = true;
bool sql__search_merges_dates = true;

/* how[b][c]: the clause is tested per resource */
static const char PROBE[] = "probe";

static void q_init(q_t *q, const sql_dialect_t *d, const store_search_t *query, arena_t *arena)
{
    memset(q, 0, sizeof(*q));
    q->d = d;
    q->arena = arena;
    q->query = query;
    buf_init(&q->sql, 0);
}

static void q_release(q_t *q)
{
    buf_release(&q->sql);
}

static void q_add(q_t *q, const char *fragment)
{
    buf_addstr(&q->sql, fragment);
}

static void q_addf(q_t *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void q_addf(q_t *q, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vaddf(&q->sql, fmt, ap);
    va_end(ap);
}

/* A placeholder of the dialect for a value of kind; PostgreSQL's say their type, so that no
 * parameter's type has to be guessed (int4: an argument of substr and the like). */
static sql_bind_t *q_bind_as(q_t *q, sql_bind_kind_t kind, bool int4)
{
    if (q->nbinds == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 32;
        sql_bind_t *binds = arena_alloc(q->arena, cap * sizeof(*binds));
        if (q->nbinds)
            memcpy(binds, q->binds, q->nbinds * sizeof(*binds));
        q->binds = binds;
        q->cap = cap;
    }
    if (q->d->numbered) {
        static const char *const types[] = {
            [SQL_BIND_TEXT] = "text", [SQL_BIND_INT] = "bigint", [SQL_BIND_REAL] = "float8"};
        buf_addf(&q->sql, "$%zu::%s", q->nbinds + 1, int4 ? "int4" : types[kind]);
    } else {
        buf_addch(&q->sql, '?');
    }
    sql_bind_t *b = &q->binds[q->nbinds++];
    b->kind = kind;
    return b;
}

static void q_text(q_t *q, const char *s)
{
    q_bind_as(q, SQL_BIND_TEXT, false)->text = s;
}

static void q_int(q_t *q, int64_t i)
{
    q_bind_as(q, SQL_BIND_INT, false)->i = i;
}

/* An integer argument of a string function (substr, right). */
static void q_int4(q_t *q, int64_t i)
{
    q_bind_as(q, SQL_BIND_INT, true)->i = i;
}

static void q_value(q_t *q, const sql_bind_t *v)
{
    *q_bind_as(q, v->kind, false) = *v;
}

static void q_true(q_t *q)
{
    q_add(q, q->d->true_sql);
}

static void q_false(q_t *q)
{
    q_add(q, q->d->false_sql);
}

/* `SELECT value FROM json_each(?)` of SQLite: the values of a JSON array of rids, as rows. */
static void q_rid_list(q_t *q, const char *json)
{
    if (q->d->kind == SQL_POSTGRES) {
        /* "[1,2]" as an array literal "{1,2}" */
        size_t n = strlen(json);
        char *array = arena_strndup(q->arena, json, n);
        array[0] = '{';
        array[n - 1] = '}';
        q_add(q, "SELECT unnest(");
        q_text(q, array);
        q_add(q, "::bigint[])");
        return;
    }
    q_add(q, "SELECT value FROM json_each(");
    q_text(q, json);
    q_add(q, ")");
}

/* The strings of a JSON array, as rows. */
static void q_text_list(q_t *q, const char *json)
{
    if (q->d->kind == SQL_POSTGRES) {
        q_add(q, "SELECT jsonb_array_elements_text(");
        q_text(q, json);
        q_add(q, "::jsonb)");
        return;
    }
    q_add(q, "SELECT value FROM json_each(");
    q_text(q, json);
    q_add(q, ")");
}

/* ---- visibility (store_visibility_t) ------------------------------------------------- */

/* The lists a visibility condition reads, as JSON arrays of strings. */
typedef enum {
    VIS_TYPES,    /* the types the caller may read */
    VIS_OPEN,     /* types visible whole */
    VIS_PATIENTS, /* the visible Patients */
    VIS_LINKED,   /* the patient-linked types, Patient among them */
    VIS_PAIRS,    /* "Type param" of each (type, reference parameter) pair that links */
    VIS_URLS,     /* the absolute urls of the visible Patients under the base */
    VIS_NLISTS,
} vis_list_t;

static const char *json_strings(arena_t *arena, const char *const *items, size_t n,
                                const char *prefix, const char *const *seconds)
{
    buf_t b = BUF_INIT;
    buf_addch(&b, '[');
    for (size_t i = 0; i < n; i++) {
        buf_addstr(&b, i ? ",\"" : "\"");
        if (prefix)
            buf_add_json_escaped(&b, prefix, strlen(prefix));
        buf_add_json_escaped(&b, items[i], strlen(items[i]));
        if (seconds) {
            buf_addch(&b, ' ');
            buf_add_json_escaped(&b, seconds[i], strlen(seconds[i]));
        }
        buf_addch(&b, '"');
    }
    buf_addch(&b, ']');
    const char *out = arena_strndup(arena, b.ptr, b.len);
    buf_release(&b);
    return out;
}

/* One list of a visibility, as a JSON array of strings (vis_list_t). */
static const char *vis_list(arena_t *arena, const store_visibility_t *v, vis_list_t which)
{
    switch (which) {
    case VIS_TYPES: return json_strings(arena, v->types, v->ntypes, NULL, NULL);
    case VIS_OPEN: return json_strings(arena, v->open_types, v->nopen_types, NULL, NULL);
    case VIS_PATIENTS: return json_strings(arena, v->patients, v->npatients, NULL, NULL);
    case VIS_LINKED: {
        const char **linked = arena_alloc(arena, (v->nmembers + 1) * sizeof(*linked));
        size_t nlinked = 0;
        linked[nlinked++] = "Patient";
        for (size_t i = 0; i < v->nmembers; i++) {
            size_t k = 0;
            while (k < nlinked && strcmp(linked[k], v->member_types[i]) != 0)
                k++;
            if (k == nlinked)
                linked[nlinked++] = v->member_types[i];
        }
        return json_strings(arena, linked, nlinked, NULL, NULL);
    }
    case VIS_PAIRS:
        return json_strings(arena, v->member_types, v->nmembers, NULL, v->member_params);
    case VIS_URLS:
        return v->base && *v->base ? json_strings(arena, v->patients, v->npatients,
                                                  arena_printf(arena, "%s/Patient/", v->base), NULL)
                                   : "[]";
    case VIS_NLISTS: break;
    }
    abort();
}

static void vis_lists(arena_t *arena, const store_visibility_t *v, const char *out[VIS_NLISTS])
{
    for (int i = 0; i < VIS_NLISTS; i++)
        out[i] = vis_list(arena, v, (vis_list_t)i);
}

/* Where a visibility condition is written: a search's statement (binds as it goes) or a
 * driver's fixed statement (numbered placeholders). */
typedef struct vis_writer {
    void (*add)(struct vis_writer *w, const char *sql);
    void (*list)(struct vis_writer *w, vis_list_t which); /* the list's values, as rows */
    void *ctx;
} vis_writer_t;

static void vis_addf(vis_writer_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vis_addf(vis_writer_t *w, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    w->add(w, text);
}

/* `vx.type || ' ' || vx.param IN (pairs)`: the reference row vx links its resource. */
static void vis_linking_row(vis_writer_t *w)
{
    w->add(w, "(vx.type || ' ' || vx.param) IN (");
    w->list(w, VIS_PAIRS);
    w->add(w, ")");
}

/*
 * The condition that the resource row `alias` (rid, type, id, deleted of `resource`) is
 * visible, as store_visibility_t says. The references are read by the resource's key (the
 * (rid, ...) index of ix_reference).
 */
static void vis_condition(vis_writer_t *w, const store_visibility_t *v, const char *alias)
{
    w->add(w, "(");
    if (v->types_limited) {
        vis_addf(w, "%s.type IN (", alias);
        w->list(w, VIS_TYPES);
        w->add(w, ") AND ");
    }
    vis_addf(w, "(%s.type NOT IN (", alias);
    w->list(w, VIS_LINKED);
    w->add(w, ")");
    if (v->nopen_types) {
        vis_addf(w, " OR %s.type IN (", alias);
        w->list(w, VIS_OPEN);
        w->add(w, ")");
    }
    vis_addf(w, " OR (%s.type = 'Patient' AND %s.id IN (", alias, alias);
    w->list(w, VIS_PATIENTS);
    vis_addf(w, ")) OR EXISTS (SELECT 1 FROM ix_reference vx WHERE vx.rid = %s.rid AND ", alias);
    vis_linking_row(w);
    w->add(w, " AND ((vx.target_type = 'Patient' AND vx.target_id IN (");
    w->list(w, VIS_PATIENTS);
    w->add(w, ")) OR vx.url IN (");
    w->list(w, VIS_URLS);
    w->add(w, ")))");
    if (v->unlinked) {
        /* no reference that links names a Patient: marked when indexed (FHIR_INDEX_UNLINKED) */
        vis_addf(w,
                 " OR EXISTS (SELECT 1 FROM ix_reference vx WHERE vx.rid = %s.rid AND vx.param = "
                 "'" FHIR_INDEX_UNLINKED "')",
                 alias);
    }
    w->add(w, "))");
}

/* Writing into a search statement: every list is a bound JSON array. */
typedef struct {
    vis_writer_t w;
    q_t *q;
    const char *lists[VIS_NLISTS];
} q_vis_t;

static void q_vis_add(vis_writer_t *w, const char *sql)
{
    q_add(((q_vis_t *)w->ctx)->q, sql);
}

/* A list of the visibility, worked out the first time the statement names it. */
static const char *q_vis_get(q_vis_t *v, vis_list_t which)
{
    if (!v->lists[which])
        v->lists[which] = vis_list(v->q->arena, v->q->query->visibility, which);
    return v->lists[which];
}

static void q_vis_list(vis_writer_t *w, vis_list_t which)
{
    q_vis_t *v = w->ctx;
    q_text_list(v->q, q_vis_get(v, which));
}

static void q_vis_init(q_vis_t *v, q_t *q)
{
    memset(v, 0, sizeof(*v));
    v->q = q;
    v->w = (vis_writer_t){.add = q_vis_add, .list = q_vis_list, .ctx = v};
}

/* ` AND <resource `alias` is visible>`, when the search has a visibility. */
static void q_visible(q_t *q, const char *alias)
{
    if (!q->query->visibility)
        return;
    q_vis_t v;
    q_vis_init(&v, q);
    q_add(q, " AND ");
    vis_condition(&v.w, q->query->visibility, alias);
}

/* ` AND <the resource of key `rid` is visible>`. */
static void q_visible_rid(q_t *q, const char *rid)
{
    if (!q->query->visibility)
        return;
    q_addf(q, " AND EXISTS (SELECT 1 FROM resource w WHERE w.rid = %s", rid);
    q_visible(q, "w");
    q_add(q, ")");
}

static bool vis_has(const store_visibility_t *v, const char *const *list, size_t n,
                    const char *type)
{
    (void)v;
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], type) == 0)
            return true;
    return false;
}

/*
 * The visibility of branch `type`'s resources `a`: nothing for a type visible whole or shared;
 * for a patient-linked type, the resources whose linking references name a visible Patient
 * (by type and id, or by this server's absolute url) and, when the caller may see them, those
 * marked as naming none (FHIR_INDEX_UNLINKED). `drive` writes it as a set of rids the database
 * can start from (`a.rid IN (...)`, built once per statement from the visible Patients), for a
 * branch that nothing narrower lists; otherwise as a probe of each candidate's references
 * (correlated by `vx.rid = a.rid`), which costs nothing per statement.
 */
static void q_visible_branch(q_t *q, const fhir_search_branch_t *branch, bool drive)
{
    const store_visibility_t *v = q->query->visibility;
    const fhir_type_t *type = branch->type;
    if (!v)
        return;
    if (!type) {
        q_visible(q, "a");
        return;
    }
    const char *name = type->name;
    if (v->types_limited && !vis_has(v, v->types, v->ntypes, name)) {
        q_add(q, " AND ");
        q_false(q);
        return;
    }
    if (vis_has(v, v->open_types, v->nopen_types, name))
        return;
    q_vis_t vis;
    q_vis_init(&vis, q);
    if (strcmp(name, "Patient") == 0) {
        /* by the (type, id) key: the visible Patients' rids, rather than every Patient's id */
        q_add(q, drive ? " AND a.rid IN (SELECT p.rid FROM resource p WHERE p.type = 'Patient' "
                         "AND p.id IN ("
                       : " AND a.id IN (");
        q_text_list(q, q_vis_get(&vis, VIS_PATIENTS));
        q_add(q, drive ? "))" : ")");
        return;
    }
    const char **params = arena_alloc(q->arena, (v->nmembers + 1) * sizeof(*params));
    size_t nparams = 0;
    for (size_t i = 0; i < v->nmembers; i++)
        if (strcmp(v->member_types[i], name) == 0)
            params[nparams++] = v->member_params[i];
    if (!nparams)
        return; /* shared */
    const char *plist = json_strings(q->arena, params, nparams, NULL, NULL);
    bool urls = v->base && *v->base && v->npatients;
    if (!drive) {
        q_add(q, " AND EXISTS (SELECT 1 FROM ix_reference vx WHERE vx.rid = a.rid AND ((vx.param "
                 "IN (");
        q_text_list(q, plist);
        q_add(q, ") AND ((vx.target_type = 'Patient' AND vx.target_id IN (");
        q_text_list(q, q_vis_get(&vis, VIS_PATIENTS));
        q_add(q, "))");
        if (urls) {
            q_add(q, " OR vx.url IN (");
            q_text_list(q, q_vis_get(&vis, VIS_URLS));
            q_add(q, ")");
        }
        q_add(q, "))");
        if (v->unlinked)
            q_add(q, " OR vx.param = '" FHIR_INDEX_UNLINKED "'");
        q_add(q, "))");
        return;
    }
    q_add(q, " AND a.rid IN (SELECT rid FROM ix_reference WHERE type = ");
    q_text(q, name);
    q_add(q, " AND param IN (");
    q_text_list(q, plist);
    q_add(q, ") AND target_id IN (");
    q_text_list(q, q_vis_get(&vis, VIS_PATIENTS));
    q_add(q, ") AND target_type = 'Patient'");
    if (urls) {
        q_add(q, " UNION ALL SELECT rid FROM ix_reference WHERE type = ");
        q_text(q, name);
        q_add(q, " AND param IN (");
        q_text_list(q, plist);
        q_add(q, ") AND url IN (");
        q_text_list(q, q_vis_get(&vis, VIS_URLS));
        q_add(q, ")");
    }
    if (v->unlinked) {
        q_add(q, " UNION ALL SELECT rid FROM ix_reference WHERE type = ");
        q_text(q, name);
        q_add(q, " AND param = '" FHIR_INDEX_UNLINKED "'");
    }
    q_add(q, ")");
}

/* Writing into a driver's statement with numbered placeholders. */
typedef struct {
    vis_writer_t w;
    const sql_dialect_t *d;
    buf_t *sql;
    int first;
    unsigned used; /* the lists the condition names (bit per vis_list_t) */
} fixed_vis_t;

static void fixed_vis_add(vis_writer_t *w, const char *sql)
{
    buf_addstr(((fixed_vis_t *)w->ctx)->sql, sql);
}

static void fixed_vis_list(vis_writer_t *w, vis_list_t which)
{
    fixed_vis_t *v = w->ctx;
    v->used |= 1u << which;
    if (v->d->kind == SQL_POSTGRES)
        buf_addf(v->sql, "SELECT jsonb_array_elements_text($%d::jsonb)", v->first + (int)which);
    else
        buf_addf(v->sql, "SELECT value FROM json_each(?%d)", v->first + (int)which);
}

void sql__visible(const sql_dialect_t *d, const store_visibility_t *v, const char *alias, int first,
                  arena_t *arena, buf_t *sql, const char *binds[SQL_VISIBLE_BINDS])
{
    fixed_vis_t f = {.d = d, .sql = sql, .first = first};
    f.w = (vis_writer_t){.add = fixed_vis_add, .list = fixed_vis_list, .ctx = &f};
    vis_lists(arena, v, binds);
    buf_addch(sql, '(');
    vis_condition(&f.w, v, alias);
    buf_addch(sql, ')');
    /* PostgreSQL refuses a placeholder it cannot type, and the caller binds them all: the
       lists the condition leaves out are named where the planner folds them away */
    for (int i = 0; d->kind == SQL_POSTGRES && i < SQL_VISIBLE_BINDS; i++)
        if (!(f.used & (1u << i)))
            buf_addf(sql, " AND ($%d::jsonb IS NULL OR true)", first + i);
}

/* The function that finds a substring's position (1-based, 0 when it is not there), up to its
 * opening parenthesis: instr(haystack, needle) or strpos(haystack, needle). */
static const char *slash_in(q_t *q)
{
    return q->d->kind == SQL_POSTGRES ? "strpos(" : "instr(";
}

static void q_stmt(const q_t *q, sql_stmt_t *out)
{
    *out = (sql_stmt_t){.sql = arena_strndup(q->arena, q->sql.ptr, q->sql.len),
                        .binds = q->binds,
                        .nbinds = q->nbinds};
}

/* The smallest string above every string that starts with prefix (prefix not empty): the
 * prefix with its last byte raised. UTF-8 never holds 0xFF, so the byte can always rise. */
static const char *prefix_end(arena_t *arena, const char *prefix)
{
    size_t n = strlen(prefix);
    char *end = arena_strndup(arena, prefix, n);
    end[n - 1] = (char)((unsigned char)end[n - 1] + 1);
    return end;
}

/* `column >= ? AND column < ?`: the values that start with prefix (true when it is empty).
 * PostgreSQL's ix_string indexes `normalized` with text_pattern_ops, whose operators compare
 * bytes whatever the collation: ~>=~ and ~<~ there. */
static void q_starts_with(q_t *q, const char *column, const char *prefix)
{
    if (!prefix || !*prefix) {
        q_true(q);
        return;
    }
    bool bytes = q->d->kind == SQL_POSTGRES && strcmp(column, "normalized") == 0;
    q_addf(q, "(%s %s ", column, bytes ? "~>=~" : ">=");
    q_text(q, prefix);
    q_addf(q, " AND %s %s ", column, bytes ? "~<~" : "<");
    q_text(q, prefix_end(q->arena, prefix));
    q_add(q, ")");
}

/* A LIKE pattern matching s anywhere, with % _ and \ escaped by \. */
static const char *contains_pattern(arena_t *arena, const char *s)
{
    buf_t b = BUF_INIT;
    buf_addch(&b, '%');
    for (; *s; s++) {
        if (*s == '%' || *s == '_' || *s == '\\')
            buf_addch(&b, '\\');
        buf_addch(&b, *s);
    }
    buf_addch(&b, '%');
    const char *out = arena_strndup(arena, b.ptr, b.len);
    buf_release(&b);
    return out;
}

/* ---- values -------------------------------------------------------------------------- */

/* The columns a value condition reads; NULL where the table has none. */
typedef struct {
    const char *system, *value, *text, *exact, *unit, *low, *high;
} columns_t;

static const columns_t string_columns = {.value = "normalized", .exact = "exact"};
static const columns_t token_columns = {.system = "system", .value = "code", .text = "text"};
static const columns_t range_columns = {.low = "low", .high = "high"};
static const columns_t quantity_columns = {
    .system = "system", .value = "code", .unit = "unit", .low = "low", .high = "high"};
static const columns_t uri_columns = {.value = "value"};

/*
 * The prefix conditions of search.md over a stored range [lo, hi) (half_open, dates) or
 * [lo, hi] (numbers and quantities) against the search range [L, H).
 */
static void q_range(q_t *q, fhir_search_prefix_t prefix, const char *lo, const char *hi,
                    bool half_open, const sql_bind_t *L, const sql_bind_t *H)
{
    const char *hi_le_H = half_open ? "<=" : "<"; /* the value ends within the range */
    const char *hi_gt_H = half_open ? ">" : ">=";
    const char *hi_le_L = half_open ? "<=" : "<";
    const char *hi_gt_L = half_open ? ">" : ">=";
    switch (prefix) {
    case FHIR_SEARCH_PREFIX_EQ:
        /* lo < H follows from the others; said so that an index on lo is bounded */
        q_addf(q, "(%s >= ", lo);
        q_value(q, L);
        q_addf(q, " AND %s < ", lo);
        q_value(q, H);
        q_addf(q, " AND %s %s ", hi, hi_le_H);
        q_value(q, H);
        q_add(q, ")");
        break;
    case FHIR_SEARCH_PREFIX_NE:
        q_addf(q, "(%s < ", lo);
        q_value(q, L);
        q_addf(q, " OR %s %s ", hi, hi_gt_H);
        q_value(q, H);
        q_add(q, ")");
        break;
    case FHIR_SEARCH_PREFIX_GT:
        q_addf(q, "%s %s ", hi, hi_gt_H);
        q_value(q, H);
        break;
    case FHIR_SEARCH_PREFIX_LT:
        q_addf(q, "%s < ", lo);
        q_value(q, L);
        break;
    case FHIR_SEARCH_PREFIX_GE:
        q_addf(q, "(%s %s ", hi, hi_gt_H);
        q_value(q, H);
        q_addf(q, " OR (%s >= ", lo);
        q_value(q, L);
        q_addf(q, " AND %s %s ", hi, hi_le_H);
        q_value(q, H);
        q_add(q, "))");
        break;
    case FHIR_SEARCH_PREFIX_LE:
        q_addf(q, "(%s < ", lo);
        q_value(q, L);
        q_addf(q, " OR (%s >= ", lo);
        q_value(q, L);
        q_addf(q, " AND %s %s ", hi, hi_le_H);
        q_value(q, H);
        q_add(q, "))");
        break;
    case FHIR_SEARCH_PREFIX_SA:
        q_addf(q, "%s >= ", lo);
        q_value(q, H);
        break;
    case FHIR_SEARCH_PREFIX_EB:
        q_addf(q, "%s %s ", hi, hi_le_L);
        q_value(q, L);
        break;
    case FHIR_SEARCH_PREFIX_AP:
        q_addf(q, "(%s < ", lo);
        q_value(q, H);
        q_addf(q, " AND %s %s ", hi, hi_gt_L);
        q_value(q, L);
        q_add(q, ")");
        break;
    }
}

static void q_date(q_t *q, const fhir_search_value_t *v, const char *lo, const char *hi)
{
    sql_bind_t L = {.kind = SQL_BIND_INT, .i = v->as.date.low};
    sql_bind_t H = {.kind = SQL_BIND_INT, .i = v->as.date.high};
    q_range(q, v->prefix, lo, hi, true, &L, &H);
}

/*
 * eq, ne and ap compare with the implicit range of the search value's precision; the other
 * prefixes with the exact value, as the R4 examples say ("gt100: values that are greater
 * than exactly 100"): over the stored [lo, hi], gt is hi > v, ge hi >= v, lt lo < v, le
 * lo <= v, sa lo > v and eb hi < v.
 */
static void q_number(q_t *q, fhir_search_prefix_t prefix, const fhir_search_number_t *n,
                     const columns_t *c)
{
    const char *column = NULL, *op = NULL;
    switch (prefix) {
    case FHIR_SEARCH_PREFIX_GT: column = c->high, op = ">"; break;
    case FHIR_SEARCH_PREFIX_GE: column = c->high, op = ">="; break;
    case FHIR_SEARCH_PREFIX_LT: column = c->low, op = "<"; break;
    case FHIR_SEARCH_PREFIX_LE: column = c->low, op = "<="; break;
    case FHIR_SEARCH_PREFIX_SA: column = c->low, op = ">"; break;
    case FHIR_SEARCH_PREFIX_EB: column = c->high, op = "<"; break;
    default: break;
    }
    if (column) {
        sql_bind_t v = {.kind = SQL_BIND_REAL, .d = n->value};
        q_addf(q, "%s %s ", column, op);
        q_value(q, &v);
        return;
    }
    sql_bind_t L = {.kind = SQL_BIND_REAL, .d = n->low_value};
    sql_bind_t H = {.kind = SQL_BIND_REAL, .d = n->high_value};
    q_range(q, prefix, c->low, c->high, false, &L, &H);
}

/*
 * The prefix conditions for a stored instant u, the range [u, u + 1) of one microsecond,
 * written on the column alone so that an index on it serves (u + 1 > H is u >= H, ...).
 */
static void q_instant(q_t *q, const fhir_search_value_t *v, const char *u)
{
    int64_t L = v->as.date.low, H = v->as.date.high;
    switch (v->prefix) {
    case FHIR_SEARCH_PREFIX_EQ:
    case FHIR_SEARCH_PREFIX_AP:
        q_addf(q, "(%s >= ", u);
        q_int(q, L);
        q_addf(q, " AND %s < ", u);
        q_int(q, H);
        q_add(q, ")");
        break;
    case FHIR_SEARCH_PREFIX_NE:
        q_addf(q, "(%s < ", u);
        q_int(q, L);
        q_addf(q, " OR %s >= ", u);
        q_int(q, H);
        q_add(q, ")");
        break;
    case FHIR_SEARCH_PREFIX_GT:
    case FHIR_SEARCH_PREFIX_SA:
        q_addf(q, "%s >= ", u);
        q_int(q, H);
        break;
    case FHIR_SEARCH_PREFIX_LT:
    case FHIR_SEARCH_PREFIX_EB:
        q_addf(q, "%s < ", u);
        q_int(q, L);
        break;
    case FHIR_SEARCH_PREFIX_GE:
        q_addf(q, "%s >= ", u);
        q_int(q, L);
        break;
    case FHIR_SEARCH_PREFIX_LE:
        q_addf(q, "%s < ", u);
        q_int(q, H);
        break;
    }
}

/* system and code of a token (system NULL: any; "": none; code NULL: any) */
static void q_token(q_t *q, const char *system, const char *code, const char *system_column,
                    const char *code_column)
{
    q_add(q, "(");
    if (code) {
        q_addf(q, "%s = ", code_column);
        q_text(q, code);
    } else {
        q_true(q);
    }
    if (system && !*system) {
        q_addf(q, " AND %s IS NULL", system_column);
    } else if (system) {
        q_addf(q, " AND %s = ", system_column);
        q_text(q, system);
    }
    q_add(q, ")");
}

static void q_quantity(q_t *q, const fhir_search_value_t *v, const columns_t *c)
{
    if (v->as.quantity.canonical_code && c == &quantity_columns) {
        /* a UCUM unit: canonical with canonical, whatever unit each was written in */
        static const columns_t canonical = {.low = "canonical_low", .high = "canonical_high"};
        /* eq bounds low on both sides: the unary + keeps SQLite on the low index, where it
           would otherwise take the one-sided high < H */
        const columns_t canonical_eq = {.low = "canonical_low",
                                        .high = q->d->kind == SQL_SQLITE ? "+canonical_high"
                                                                         : "canonical_high"};
        q_add(q, "(canonical_code = ");
        q_text(q, v->as.quantity.canonical_code);
        q_add(q, " AND ");
        q_number(q, v->prefix, &v->as.quantity.canonical,
                 v->prefix == FHIR_SEARCH_PREFIX_EQ ? &canonical_eq : &canonical);
        q_add(q, ")");
        return;
    }
    q_add(q, "(");
    q_number(q, v->prefix, &v->as.quantity.number, c);
    if (v->as.quantity.system) {
        q_addf(q, " AND %s = ", c->system);
        q_text(q, v->as.quantity.system);
    }
    if (v->as.quantity.code) {
        if (v->as.quantity.system || !c->unit) {
            q_addf(q, " AND %s = ", c->value);
            q_text(q, v->as.quantity.code);
        } else {
            q_addf(q, " AND (%s = ", c->value);
            q_text(q, v->as.quantity.code);
            q_addf(q, " OR %s = ", c->unit);
            q_text(q, v->as.quantity.code);
            q_add(q, ")");
        }
    }
    q_add(q, ")");
}

static bool under_base(const char *base, const char *url)
{
    size_t n = base ? strlen(base) : 0;
    return n && strncmp(url, base, n) == 0 && url[n] == '/';
}

/* The url of an absolute reference without a trailing /_history/version. */
static const char *url_without_history(arena_t *arena, const char *url)
{
    const char *h = strstr(url, "/_history/");
    return h ? arena_strndup(arena, url, (size_t)(h - url)) : url;
}

/* A reference value is local (target type and id) unless it is an absolute url elsewhere. */
static bool reference_is_local(const q_t *q, const fhir_search_value_t *v)
{
    const char *url = v->as.reference.url;
    return v->as.reference.id && (!url || under_base(q->query->base, url));
}

/* A reference value against ix_reference's columns. url_form: for a local value, the
 * absolute url of this server that names the same resource, instead of type and id. */
static void q_reference(q_t *q, const fhir_search_value_t *v, bool url_form)
{
    const fhir_type_t *type = v->as.reference.type;
    const char *id = v->as.reference.id, *url = v->as.reference.url;
    const char *version = v->as.reference.version;
    if (!reference_is_local(q, v)) {
        if (!url) {
            q_false(q);
            return;
        }
        q_add(q, "(url = ");
        q_text(q, url_without_history(q->arena, url));
        const char *v_version = version ? version : v->as.reference.canonical_version;
        if (v_version) {
            q_add(q, " AND version = ");
            q_text(q, v_version);
        }
        q_add(q, ")");
        return;
    }
    if (url_form && type) {
        q_add(q, "(url = ");
        q_text(q, arena_printf(q->arena, "%s/%s/%s", q->query->base, type->name, id));
    } else if (url_form) {
        /* an id of any type: base/Type/id, with exactly one segment between base and id */
        int64_t nb = (int64_t)strlen(q->query->base), ni = (int64_t)strlen(id);
        q_add(q, "(");
        q_starts_with(q, "url", arena_printf(q->arena, "%s/", q->query->base));
        if (q->d->kind == SQL_POSTGRES) {
            q_add(q, " AND right(url, ");
            q_int4(q, ni + 1);
        } else {
            q_add(q, " AND substr(url, ");
            q_int(q, -(ni + 1));
        }
        q_add(q, ") = ");
        q_text(q, arena_printf(q->arena, "/%s", id));
        q_add(q, " AND length(url) > ");
        q_int(q, nb + ni + 2);
        q_addf(q, " AND %ssubstr(url, ", slash_in(q));
        q_int4(q, nb + 2);
        q_add(q, "), '/') = length(url) - ");
        q_int(q, nb + 1 + ni);
    } else {
        q_add(q, "(target_id = ");
        q_text(q, id);
        if (type) {
            q_add(q, " AND target_type = ");
            q_text(q, type->name);
        }
    }
    if (version) {
        q_add(q, " AND version = ");
        q_text(q, version);
    }
    q_add(q, ")");
}

static void q_uri(q_t *q, fhir_search_modifier_t modifier, const char *value, const char *column)
{
    switch (modifier) {
    case FHIR_SEARCH_MOD_BELOW: q_starts_with(q, column, value); break;
    case FHIR_SEARCH_MOD_ABOVE:
        q_add(q, "substr(");
        q_text(q, value);
        q_addf(q, ", 1, length(%s)) = %s", column, column);
        break;
    default: q_addf(q, "%s = ", column); q_text(q, value);
    }
}

static void q_component(q_t *q, fhir_search_type_t type, const fhir_search_value_t *v, int i)
{
    char system[16], value[16], low[16], high[16];
    snprintf(system, sizeof(system), "c%d_system", i);
    snprintf(value, sizeof(value), "c%d_value", i);
    snprintf(low, sizeof(low), "c%d_low", i);
    snprintf(high, sizeof(high), "c%d_high", i);
    columns_t c = {.system = system, .value = value, .low = low, .high = high};
    switch (type) {
    case FHIR_SEARCH_TOKEN: q_token(q, v->as.token.system, v->as.token.code, system, value); break;
    case FHIR_SEARCH_STRING: q_starts_with(q, value, v->as.string.normalized); break;
    case FHIR_SEARCH_DATE: q_date(q, v, low, high); break;
    case FHIR_SEARCH_NUMBER: q_number(q, v->prefix, &v->as.number, &c); break;
    case FHIR_SEARCH_QUANTITY: q_quantity(q, v, &c); break;
    case FHIR_SEARCH_URI: q_uri(q, FHIR_SEARCH_MOD_NONE, v->as.uri.value, value); break;
    case FHIR_SEARCH_REFERENCE:
        if (v->as.reference.id) {
            q_addf(q, "(%s = ", value);
            q_text(q, v->as.reference.id);
            if (v->as.reference.type) {
                q_addf(q, " AND %s = ", system);
                q_text(q, v->as.reference.type->name);
            }
            q_add(q, ")");
        } else if (v->as.reference.url) {
            q_addf(q, "%s = ", value);
            q_text(q, v->as.reference.url);
        } else {
            q_false(q);
        }
        break;
    default: q_false(q);
    }
}

/* ---- near ------------------------------------------------------------------------------ */

#define EARTH_RADIUS_KM    6371.0088 /* the mean radius (IUGG) */
#define NEAR_DEFAULT_KM    5.0       /* the distance when a search gives none */
#define DEGREES_PER_RADIAN (180.0 / M_PI)

double sql__great_circle_km(double lat1, double lon1, double lat2, double lon2)
{
    double p1 = lat1 / DEGREES_PER_RADIAN, p2 = lat2 / DEGREES_PER_RADIAN;
    double dp = p2 - p1, dl = (lon2 - lon1) / DEGREES_PER_RADIAN;
    double a = sin(dp / 2) * sin(dp / 2) + cos(p1) * cos(p2) * sin(dl / 2) * sin(dl / 2);
    return 2 * EARTH_RADIUS_KM * asin(sqrt(a < 1 ? a : 1)); /* haversine */
}

static bool near_km(const fhir_search_value_t *v, double *out_km)
{
    if (!v->as.near.has_distance) {
        *out_km = NEAR_DEFAULT_KM;
        return true;
    }
    double meters;
    char code[FHIR_INDEX_MAX_UCUM];
    if (!fhirpath_ucum_canonical(v->as.near.units ? v->as.near.units : "km",
                                 v->as.near.distance.value, &meters, code, sizeof(code)) ||
        strcmp(code, "m") != 0 || !(meters >= 0) || !isfinite(meters))
        return false;
    *out_km = meters / 1000;
    return true;
}

/* near: a bounding box on the indexed position (ix_position_value), then the exact
 * great-circle distance. */
static void q_near(q_t *q, const fhir_search_value_t *v)
{
    double km, lat = v->as.near.latitude, lon = v->as.near.longitude;
    if (!near_km(v, &km)) {
        q_false(q);
        return;
    }
    double angle = km / EARTH_RADIUS_KM; /* radians of arc */
    double dlat = angle * DEGREES_PER_RADIAN;
    sql_bind_t b = {.kind = SQL_BIND_REAL};
    q_add(q, "(latitude BETWEEN ");
    b.d = lat - dlat;
    q_value(q, &b);
    q_add(q, " AND ");
    b.d = lat + dlat;
    q_value(q, &b);
    /* longitude bounds, unless the circle reaches a pole or the antimeridian */
    double c = cos(lat / DEGREES_PER_RADIAN);
    if (angle < M_PI / 2 && lat + dlat < 90 && lat - dlat > -90 && sin(angle) < c) {
        double dlon = asin(sin(angle) / c) * DEGREES_PER_RADIAN;
        if (lon - dlon > -180 && lon + dlon < 180) {
            q_add(q, " AND longitude BETWEEN ");
            b.d = lon - dlon;
            q_value(q, &b);
            q_add(q, " AND ");
            b.d = lon + dlon;
            q_value(q, &b);
        }
    }
    if (q->d->kind == SQL_POSTGRES) {
        /* the haversine formula of sql__great_circle_km, inline */
        q_add(q, " AND 2 * 6371.0088 * asin(sqrt(least(1, power(sin(radians(latitude - ");
        b.d = lat;
        q_value(q, &b);
        q_add(q, ") / 2), 2) + cos(radians(latitude)) * cos(radians(");
        q_value(q, &b);
        q_add(q, ")) * power(sin(radians(longitude - ");
        b.d = lon;
        q_value(q, &b);
        q_add(q, ") / 2), 2)))) <= ");
    } else {
        q_add(q, " AND concerto_distance(latitude, longitude, ");
        b.d = lat;
        q_value(q, &b);
        q_add(q, ", ");
        b.d = lon;
        q_value(q, &b);
        q_add(q, ") <= ");
    }
    b.d = km;
    q_value(q, &b);
    q_add(q, ")");
}

/* One value of a PARAM clause over the columns of its table. */
static void q_value_condition(q_t *q, const fhir_search_clause_t *clause,
                              const fhir_search_value_t *v)
{
    const fhir_search_param_t *param = clause->param;
    switch (param->type) {
    case FHIR_SEARCH_STRING:
        if (clause->modifier == FHIR_SEARCH_MOD_EXACT) {
            q_add(q, "(normalized = ");
            q_text(q, v->as.string.normalized);
            q_add(q, " AND exact = ");
            q_text(q, v->as.string.value);
            q_add(q, ")");
        } else if (clause->modifier == FHIR_SEARCH_MOD_CONTAINS) {
            q_add(q, "normalized LIKE ");
            q_text(q, contains_pattern(q->arena, v->as.string.normalized));
            q_add(q, " ESCAPE '\\'");
        } else {
            q_starts_with(q, string_columns.value, v->as.string.normalized);
        }
        break;
    case FHIR_SEARCH_TOKEN:
        if (clause->modifier == FHIR_SEARCH_MOD_TEXT) {
            q_starts_with(q, token_columns.text, v->as.string.normalized);
        } else if (clause->modifier == FHIR_SEARCH_MOD_OF_TYPE) {
            q_add(q, "(type_system = ");
            q_text(q, v->as.of_type.type_system);
            q_add(q, " AND type_code = ");
            q_text(q, v->as.of_type.type_code);
            q_add(q, " AND value = ");
            q_text(q, v->as.of_type.value);
            q_add(q, ")");
        } else if (clause->codes) {
            /* :in, :not-in, :above, :below, resolved: a list of codes, each an index lookup
               on (code, system) when listing; when probing, the resource's few rows are
               looked up in the list instead (the unary + keeps SQLite from seeking every code
               of the list for every resource) */
            if (q->d->kind == SQL_POSTGRES) {
                q_add(q, "(code, system) IN (SELECT e ->> 1, e ->> 0 FROM "
                         "jsonb_array_elements(");
                q_text(q, clause->codes);
                q_add(q, "::jsonb) e)");
            } else {
                q_add(q, q->probing ? "(+code, +system)" : "(code, system)");
                q_add(q, " IN (SELECT json_extract(value, '$[1]'), "
                         "json_extract(value, '$[0]') FROM json_each(");
                q_text(q, clause->codes);
                q_add(q, "))");
            }
        } else {
            q_token(q, v->as.token.system, v->as.token.code, "system", "code");
        }
        break;
    case FHIR_SEARCH_DATE: q_date(q, v, "low", "high"); break;
    case FHIR_SEARCH_NUMBER: q_number(q, v->prefix, &v->as.number, &range_columns); break;
    case FHIR_SEARCH_QUANTITY: q_quantity(q, v, &quantity_columns); break;
    case FHIR_SEARCH_REFERENCE:
        if (clause->modifier == FHIR_SEARCH_MOD_IDENTIFIER)
            q_token(q, v->as.token.system, v->as.token.code, "identifier_system",
                    "identifier_value");
        else
            q_reference(q, v, false);
        break;
    case FHIR_SEARCH_URI: q_uri(q, clause->modifier, v->as.uri.value, uri_columns.value); break;
    case FHIR_SEARCH_COMPOSITE:
        q_add(q, "(");
        for (size_t i = 0; i < v->as.composite.ncomponents && i < param->ncomponents; i++) {
            if (i)
                q_add(q, " AND ");
            q_component(q, param->components[i].type, &v->as.composite.components[i], (int)i);
        }
        q_add(q, ")");
        break;
    case FHIR_SEARCH_SPECIAL: q_near(q, v); break;
    }
}

/* ---- clauses ------------------------------------------------------------------------- */

static void q_clause(q_t *q, const fhir_search_clause_t *clause, const char *alias);

/* The type of index rows: the type, or for contained resources "#" and the type. */
static const char *index_type(q_t *q, const fhir_type_t *type)
{
    return q->in_contained ? arena_printf(q->arena, "#%s", type->name) : type->name;
}

/* `[type = ? AND ]param = ?` of an index table (alias may be ""). */
static void q_table_key(q_t *q, const char *prefix, const fhir_type_t *type, const char *param)
{
    if (type) {
        q_addf(q, "%stype = ", prefix);
        q_text(q, index_type(q, type));
        q_add(q, " AND ");
    }
    q_addf(q, "%sparam = ", prefix);
    q_text(q, param);
}

static const char *table_of(const fhir_search_clause_t *clause)
{
    if (clause->modifier == FHIR_SEARCH_MOD_OF_TYPE)
        return index_tables[FHIR_INDEX_OF_TYPE];
    int kind = fhir_index_kind_of(clause->param->type);
    return kind >= 0 ? index_tables[kind] : NULL;
}

/* _id and _lastUpdated: columns of the resource row. */
static bool q_column_param(q_t *q, const fhir_search_clause_t *clause, const char *alias)
{
    const char *code = clause->param->code;
    bool is_id = strcmp(code, "_id") == 0, is_updated = strcmp(code, "_lastUpdated") == 0;
    if (!is_id && !is_updated)
        return false;
    if (clause->modifier == FHIR_SEARCH_MOD_MISSING) {
        /* always present */
        q_add(q,
              clause->nvalues && clause->values[0].as.missing ? q->d->false_sql : q->d->true_sql);
        return true;
    }
    if (is_id) {
        q_addf(q, "%s.id %sIN (", alias, clause->modifier == FHIR_SEARCH_MOD_NOT ? "NOT " : "");
        for (size_t i = 0; i < clause->nvalues; i++) {
            if (i)
                q_add(q, ", ");
            const char *id = clause->values[i].as.token.code;
            q_text(q, id ? id : "");
        }
        q_add(q, ")");
        return true;
    }
    char column[96];
    if (q->in_contained) /* a contained resource was last updated with its container */
        snprintf(column, sizeof(column),
                 "(SELECT u.updated_us FROM resource u WHERE u.rid = %s.container)", alias);
    else
        snprintf(column, sizeof(column), "%s.updated_us", alias);
    q_add(q, "(");
    for (size_t i = 0; i < clause->nvalues; i++) {
        if (i)
            q_add(q, " OR ");
        q_instant(q, &clause->values[i], column);
    }
    q_add(q, ")");
    return true;
}

/* :not, and :not-in: resources without a matching row (those with no code too). */
static bool is_negated(const fhir_search_clause_t *clause)
{
    return clause->modifier == FHIR_SEARCH_MOD_NOT ||
           (clause->modifier == FHIR_SEARCH_MOD_NOT_IN && clause->codes);
}

/* The rids whose rows match one of the values: one SELECT per value (and per form of a local
 * reference), so each uses its index. Resolved codes (clause->codes) are one SELECT. */
static void q_param_rids(q_t *q, const fhir_search_clause_t *clause, const char *table)
{
    bool first = true;
    for (size_t i = 0; i < (clause->codes ? 1 : clause->nvalues); i++) {
        const fhir_search_value_t *v = &clause->values[i];
        bool both_forms = clause->param->type == FHIR_SEARCH_REFERENCE &&
                          clause->modifier != FHIR_SEARCH_MOD_IDENTIFIER &&
                          reference_is_local(q, v) && q->query->base && *q->query->base;
        for (int form = 0; form < (both_forms ? 2 : 1); form++) {
            q_addf(q, "%sSELECT rid FROM %s WHERE ", first ? "" : " UNION ALL ", table);
            first = false;
            q_table_key(q, "", clause->type, clause->param->code);
            q_add(q, " AND ");
            if (form == 1)
                q_reference(q, v, true);
            else
                q_value_condition(q, clause, v);
        }
    }
}

static bool is_fulltext(const fhir_search_clause_t *clause)
{
    return strcmp(clause->param->code, "_content") == 0 ||
           strcmp(clause->param->code, "_text") == 0;
}

/* A clause that can be tested per resource: a parameter of an index table. */
static bool probe_capable(const fhir_search_clause_t *clause)
{
    return clause->kind == FHIR_SEARCH_CLAUSE_PARAM && strcmp(clause->param->code, "_id") != 0 &&
           strcmp(clause->param->code, "_lastUpdated") != 0 && !is_fulltext(clause) &&
           table_of(clause) != NULL;
}

/* The words of a full-text term, rendered in a dialect. */
typedef struct {
    buf_t *out;
    bool postgres;
    char weight; /* PostgreSQL: 'A' (the narrative's words) or 'B' (the content's) */
    size_t n;    /* words so far */
} term_words_t;

static void term_word(void *ctx, const char *word, size_t len)
{
    term_words_t *t = ctx;
    if (t->n++)
        buf_addstr(t->out, t->postgres ? " <-> " : " ");
    if (t->postgres)
        buf_addch(t->out, '\'');
    buf_add(t->out, word, len);
    if (t->postgres)
        buf_addstr(t->out, "':");
}

/*
 * A full-text query in the dialect's syntax, its terms split and folded into words as the
 * stored text is (sql_text.h): in FTS5 syntax a term is a quoted string of its words (a
 * phrase when there are several; `"w1 w2" *` when the last is a prefix), in PostgreSQL's
 * tsquery syntax the words quoted and joined by `<->` (a phrase), each with the weight of
 * the column searched (`'w1':B <-> 'w2':*B`). Words hold no quotes, so nothing the user
 * writes is syntax. False when the query can match nothing: a term without words (FTS5
 * finds nothing for it), an AND with such a term, an OR of such terms alone.
 */
static bool text_render(buf_t *out, const fhir_search_text_t *t, bool postgres, char weight)
{
    switch (t->kind) {
    case FHIR_SEARCH_TEXT_TERM: {
        buf_t words = BUF_INIT;
        term_words_t tw = {&words, postgres, weight, 0};
        sql__text_words(t->term, strlen(t->term), term_word, &tw);
        if (postgres && tw.n) {
            /* the weight (and the prefix of the last) after every word's "':" */
            buf_t term = BUF_INIT;
            const char *p = words.ptr, *end = words.ptr + words.len;
            while (p < end) {
                const char *mark = strstr(p, "':");
                buf_add(&term, p, (size_t)(mark - p) + 2);
                p = mark + 2;
                if (t->prefix && p == end)
                    buf_addch(&term, '*');
                buf_addch(&term, weight);
            }
            buf_addf(out, tw.n > 1 ? "(%s)" : "%s", term.ptr);
            buf_release(&term);
        } else if (tw.n) {
            buf_addf(out, "\"%s\"%s", words.ptr, t->prefix ? " *" : "");
        }
        buf_release(&words);
        return tw.n > 0;
    }
    case FHIR_SEARCH_TEXT_AND:
    case FHIR_SEARCH_TEXT_OR: {
        buf_t left = BUF_INIT, right = BUF_INIT;
        bool has_left = text_render(&left, t->left, postgres, weight);
        bool has_right = text_render(&right, t->right, postgres, weight);
        bool any = t->kind == FHIR_SEARCH_TEXT_AND ? has_left && has_right : has_left || has_right;
        if (has_left && has_right)
            buf_addf(out, "(%s %s %s)", left.ptr,
                     t->kind == FHIR_SEARCH_TEXT_AND ? (postgres ? "&" : "AND")
                                                     : (postgres ? "|" : "OR"),
                     right.ptr);
        else if (any)
            buf_addstr(out, has_left ? left.ptr : right.ptr);
        buf_release(&left);
        buf_release(&right);
        return any;
    }
    }
    return false;
}

/* _content and _text: the rids whose full text matches one of the values: on SQLite the FTS5
 * column (`content : (...)` or `narrative : (...)`), on PostgreSQL the tsvector's words of
 * weight B or A. False when no value can match anything. */
static void q_fulltext(q_t *q, const fhir_search_clause_t *clause, const char *alias)
{
    bool postgres = q->d->kind == SQL_POSTGRES;
    bool narrative = strcmp(clause->param->code, "_text") == 0;
    buf_t match = BUF_INIT;
    size_t n = 0;
    for (size_t i = 0; i < clause->nvalues; i++) {
        buf_t value = BUF_INIT;
        if (text_render(&value, clause->values[i].as.text, postgres, narrative ? 'A' : 'B'))
            buf_addf(&match, "%s%s", n++ ? (postgres ? " | " : " OR ") : "", value.ptr);
        buf_release(&value);
    }
    if (n == 0) {
        q_add(q, q->d->false_sql);
    } else if (postgres) {
        q_addf(q, "%s.rid IN (SELECT rid FROM ix_text WHERE words @@ ", alias);
        q_text(q, arena_strndup(q->arena, match.ptr, match.len));
        q_add(q, "::tsquery)");
    } else {
        q_addf(q, "%s.rid IN (SELECT rowid FROM ix_text WHERE ix_text MATCH ", alias);
        q_text(q,
               arena_printf(q->arena, "%s : (%s)", narrative ? "narrative" : "content", match.ptr));
        q_add(q, ")");
    }
    buf_release(&match);
}

/*
 * The clause tested per resource through the (rid, param) index: for clauses that match a
 * large share of the resources, where materializing their rids would cost more than
 * looking at the first resources in order until the page is full.
 */
static void q_param_probe(q_t *q, const fhir_search_clause_t *clause, const char *alias)
{
    const char *table = table_of(clause);
    bool missing = clause->modifier == FHIR_SEARCH_MOD_MISSING;
    bool negated = is_negated(clause);
    q->probing = true;
    q_add(q, "(");
    for (size_t i = 0; i < (missing ? clause->nvalues : 1); i++) {
        if (i)
            q_add(q, " OR ");
        bool none = missing ? clause->values[i].as.missing : negated;
        q_addf(q, "%sEXISTS (SELECT 1 FROM %s WHERE rid = %s.rid AND param = ", none ? "NOT " : "",
               table, alias);
        q_text(q, clause->param->code);
        if (!missing) {
            q_add(q, " AND (");
            for (size_t k = 0; k < (clause->codes ? 1 : clause->nvalues); k++) {
                const fhir_search_value_t *v = &clause->values[k];
                q_add(q, k ? " OR " : "");
                q_value_condition(q, clause, v);
                if (clause->param->type == FHIR_SEARCH_REFERENCE &&
                    clause->modifier != FHIR_SEARCH_MOD_IDENTIFIER && reference_is_local(q, v) &&
                    q->query->base && *q->query->base) {
                    q_add(q, " OR ");
                    q_reference(q, v, true);
                }
            }
            q_add(q, ")");
        }
        q_add(q, ")");
    }
    q_add(q, ")");
    q->probing = false;
}

static void q_param(q_t *q, const fhir_search_clause_t *clause, const char *alias)
{
    if (is_fulltext(clause)) {
        q_fulltext(q, clause, alias);
        return;
    }
    if (q_column_param(q, clause, alias))
        return;
    const char *table = table_of(clause);
    if (!table) {
        q_false(q);
        return;
    }
    if (clause->modifier == FHIR_SEARCH_MOD_MISSING) {
        q_add(q, "(");
        for (size_t i = 0; i < clause->nvalues; i++) {
            if (i)
                q_add(q, " OR ");
            q_addf(q, "%s.rid %sIN (SELECT rid FROM %s WHERE ", alias,
                   clause->values[i].as.missing ? "NOT " : "", table);
            q_table_key(q, "", clause->type, clause->param->code);
            q_add(q, ")");
        }
        q_add(q, ")");
        return;
    }
    q_addf(q, "%s.rid %sIN (", alias, is_negated(clause) ? "NOT " : "");
    q_param_rids(q, clause, table);
    q_add(q, ")");
}

/* ---- two bounds of one date on one index row ------------------------------------------ */

/*
 * Repeated clauses are AND: each may be met by another value of the resource, so each is a
 * subquery of its own. When the parameter gives at most one value per resource
 * (fhir_search_param_values), clauses of one value each that bound that value can be tested
 * on the same index row instead: one read of ix_date_low bounded on both sides, when the
 * clauses together bound `low` both ways. A clause bounds `low` from above with eq, lt, le
 * and eb, from below with eq and sa, and with ge and gt too when every value spans at most
 * FHIR_SEARCH_DATE_MAX_SPAN_US (dates, dateTimes and instants, not Periods): high > L then
 * gives low > L - span.
 */
/* A clause of one bounding value on an index table's date (its parameter's values are asked
 * once per group, by date_merge). */
static bool date_bound(const fhir_search_clause_t *clause)
{
    if (clause->kind != FHIR_SEARCH_CLAUSE_PARAM || !clause->type ||
        clause->modifier != FHIR_SEARCH_MOD_NONE || clause->nvalues != 1 ||
        clause->param->type != FHIR_SEARCH_DATE || !clause->param->expression ||
        strcmp(clause->param->code, "_lastUpdated") == 0)
        return false;
    fhir_search_prefix_t prefix = clause->values[0].prefix;
    return prefix != FHIR_SEARCH_PREFIX_NE && prefix != FHIR_SEARCH_PREFIX_AP;
}

static bool same_date_param(const fhir_search_clause_t *a, const fhir_search_clause_t *b)
{
    return a->param == b->param && a->type == b->type;
}

/* Narrows [*min, *max], the values of `low` a row meeting the clause can have. */
static void date_low_range(const fhir_search_clause_t *clause, bool short_span, int64_t *min,
                           int64_t *max)
{
    const fhir_search_value_t *v = &clause->values[0];
    int64_t L = v->as.date.low, H = v->as.date.high, from = INT64_MIN, to = INT64_MAX;
    switch (v->prefix) {
    case FHIR_SEARCH_PREFIX_EQ: from = L, to = H; break;
    case FHIR_SEARCH_PREFIX_LT:
    case FHIR_SEARCH_PREFIX_EB: to = L; break;
    case FHIR_SEARCH_PREFIX_LE: to = H; break;
    case FHIR_SEARCH_PREFIX_SA: from = H; break;
    case FHIR_SEARCH_PREFIX_GE:
        if (short_span)
            from = L - FHIR_SEARCH_DATE_MAX_SPAN_US;
        break;
    case FHIR_SEARCH_PREFIX_GT:
        if (short_span)
            from = H - FHIR_SEARCH_DATE_MAX_SPAN_US;
        break;
    default: break;
    }
    if (from > *min)
        *min = from;
    if (to < *max)
        *max = to;
}

/*
 * Clause c of the branch as a part of a merged date range: 0 when it is not one, 1 when it
 * leads one (the first of its clauses: [*min, *max] bounds `low`), -1 when it is merged
 * into an earlier clause (written there).
 */
static int date_merge(const fhir_search_branch_t *branch, size_t c, int64_t *min, int64_t *max)
{
    const fhir_search_clause_t *clause = &branch->clauses[c];
    if (!sql__search_merges_dates || !date_bound(clause))
        return 0;
    size_t lead = c, n = 0;
    for (size_t i = 0; i < branch->nclauses; i++) {
        const fhir_search_clause_t *other = &branch->clauses[i];
        if (same_date_param(clause, other) && date_bound(other) && !n++)
            lead = i;
    }
    fhir_search_values_t values =
        n < 2 ? FHIR_SEARCH_VALUES_SEVERAL : fhir_search_param_values(clause->param);
    if (values == FHIR_SEARCH_VALUES_SEVERAL)
        return 0;
    int64_t from = INT64_MIN, to = INT64_MAX;
    for (size_t i = lead; i < branch->nclauses; i++) {
        const fhir_search_clause_t *other = &branch->clauses[i];
        if (same_date_param(clause, other) && date_bound(other))
            date_low_range(other, values == FHIR_SEARCH_VALUES_ONE_SHORT, &from, &to);
    }
    if (from == INT64_MIN || to == INT64_MAX)
        return 0;
    if (min)
        *min = from;
    if (max)
        *max = to;
    return lead == c ? 1 : -1;
}

/* The conditions of every clause merged with clause c, each on the same row. */
static void q_date_merged_conditions(q_t *q, const fhir_search_branch_t *branch, size_t c)
{
    for (size_t i = c; i < branch->nclauses; i++) {
        const fhir_search_clause_t *other = &branch->clauses[i];
        if (!same_date_param(&branch->clauses[c], other) || !date_bound(other))
            continue;
        q_add(q, " AND ");
        q_value_condition(q, other, &other->values[0]);
    }
}

/* The rids with one row that meets every clause merged with clause c (which leads them). */
static void q_date_merged_rids(q_t *q, const fhir_search_branch_t *branch, size_t c)
{
    const fhir_search_clause_t *clause = &branch->clauses[c];
    int64_t min = 0, max = 0;
    date_merge(branch, c, &min, &max);
    q_add(q, "SELECT rid FROM ix_date WHERE ");
    q_table_key(q, "", clause->type, clause->param->code);
    q_add(q, " AND low >= ");
    q_int(q, min);
    q_add(q, " AND low <= ");
    q_int(q, max);
    q_date_merged_conditions(q, branch, c);
}

/* The merged clauses led by clause c, listed or tested per resource. */
static void q_date_merged(q_t *q, const fhir_search_branch_t *branch, size_t c, const char *alias,
                          bool probe)
{
    if (probe) {
        q_addf(q, "EXISTS (SELECT 1 FROM ix_date WHERE rid = %s.rid AND param = ", alias);
        q_text(q, branch->clauses[c].param->code);
        q_date_merged_conditions(q, branch, c);
    } else {
        q_addf(q, "%s.rid IN (", alias);
        q_date_merged_rids(q, branch, c);
    }
    q_add(q, ")");
}

/*
 * The arm of a chain through references written as absolute urls of this server
 * ("[base]/Type/id"): through the (type, param, url) index with the urls of the targets.
 */
static void q_chain_absolute(q_t *q, const fhir_search_clause_t *clause,
                             const fhir_search_clause_t *next, const char *base)
{
    bool contained = q->in_contained;
    int n = ++q->alias;
    char t[16];
    snprintf(t, sizeof(t), "t%d", n);
    q_add(q, " UNION ALL SELECT rid FROM ix_reference WHERE ");
    q_table_key(q, "", clause->type, clause->param->code);
    q_add(q, " AND url IN (SELECT ");
    q_text(q, arena_printf(q->arena, "%s/%s/", base, next->type->name));
    q_addf(q, " || %s.id FROM resource %s WHERE %s.type = ", t, t, t);
    q_text(q, next->type->name);
    q_addf(q, " AND %s.deleted = 0", t);
    q_visible(q, t);
    q_add(q, " AND ");
    q->in_contained = false;
    q_clause(q, next, t);
    q->in_contained = contained;
    q_add(q, ")");
}

/*
 * The arm of a chain into the resources contained in the resource itself (a reference
 * "#id"): the contained resources of next's type that match next, back to their containers
 * through the containers' rows of references to them (type "#Type", keyed by minus the
 * contained resource's key).
 */
static void q_chain_contained(q_t *q, const fhir_search_clause_t *clause,
                              const fhir_search_clause_t *next)
{
    int n = ++q->alias;
    char c[16], x[16];
    snprintf(c, sizeof(c), "c%d", n);
    snprintf(x, sizeof(x), "x%d", n);
    q_addf(q,
           " UNION ALL SELECT %s.container FROM resource_contained %s JOIN ix_reference %s ON "
           "%s.rid = -%s.rid WHERE %s.type = ",
           c, c, x, x, c, c);
    q_text(q, next->type->name);
    q->in_contained = true;
    /* unary +: the way in is the contained resource's key, not every such reference */
    q_addf(q, " AND %s%s.param = ", q->d->no_index, x);
    q_text(q, clause->param->code);
    if (clause->type) {
        q_addf(q, " AND %s%s.type = ", q->d->no_index, x);
        q_text(q, index_type(q, clause->type));
    }
    q_add(q, " AND ");
    q_clause(q, next, c);
    q->in_contained = false;
}

/*
 * A chain: the references of `param` whose target is a resource of next[i].type matching
 * next[i]. Written target-first (`target_id IN (SELECT id FROM resource ...)`), so the
 * index on (type, param, target_id, target_type) is probed with the few targets a chain
 * usually names.
 */
static void q_chain(q_t *q, const fhir_search_clause_t *clause, const char *alias)
{
    bool contained = q->in_contained;
    const char *base = q->query->base;
    q_addf(q, "%s.rid IN (", alias);
    for (size_t i = 0; i < clause->nnext; i++) {
        int n = ++q->alias;
        char t[16];
        snprintf(t, sizeof(t), "t%d", n);
        const char *target = clause->next[i].type ? clause->next[i].type->name : "";
        q_addf(q, "%sSELECT rid FROM ix_reference WHERE ", i ? " UNION ALL " : "");
        q_table_key(q, "", clause->type, clause->param->code);
        q_add(q, " AND target_type = ");
        q_text(q, target);
        q_addf(q, " AND target_id IN (SELECT %s.id FROM resource %s WHERE %s.type = ", t, t, t);
        q_text(q, target);
        q_addf(q, " AND %s.deleted = 0", t);
        q_visible(q, t);
        q_add(q, " AND ");
        q->in_contained = false;
        q_clause(q, &clause->next[i], t);
        q->in_contained = contained;
        q_add(q, ")");
        if (base && *base && clause->next[i].type)
            q_chain_absolute(q, clause, &clause->next[i], base);
        if (!contained && clause->next[i].type)
            q_chain_contained(q, clause, &clause->next[i]);
    }
    q_add(q, ")");
}

/* _has: resources named by the references `param` of resources of next[0].type that match
 * next[0]; written source-first (the unary + keeps SQLite from scanning every reference of
 * the parameter), the sources found through their own indexes. */
static void q_has_absolute(q_t *q, const fhir_search_clause_t *clause, const char *alias,
                           const char *base);

static void q_has(q_t *q, const fhir_search_clause_t *clause, const char *alias)
{
    if (!clause->nnext) {
        q_false(q);
        return;
    }
    if (clause->type && q->query->base && *q->query->base) {
        q_has_absolute(q, clause, alias, q->query->base);
        return;
    }
    bool contained = q->in_contained;
    int n = ++q->alias;
    char t[16], s[16];
    snprintf(t, sizeof(t), "t%d", n);
    snprintf(s, sizeof(s), "s%d", n);
    const char *source = clause->next[0].type ? clause->next[0].type->name : "";
    q_addf(q, "%s.rid IN (SELECT %s.rid FROM resource %s WHERE ", alias, t, t);
    if (clause->type) {
        q_addf(q, "%s.type = ", t);
        q_text(q, clause->type->name);
        q_add(q, " AND ");
    }
    q_addf(q,
           "%s.id IN (SELECT target_id FROM ix_reference WHERE rid IN (SELECT %s.rid FROM "
           "resource %s WHERE %s.type = ",
           t, s, s, s);
    q_text(q, source);
    q_addf(q, " AND %s.deleted = 0", s);
    q_visible(q, s);
    q_add(q, " AND ");
    q->in_contained = false;
    q_clause(q, &clause->next[0], s);
    q->in_contained = contained;
    q_addf(q, ") AND %stype = ", q->d->no_index);
    q_text(q, source);
    q_add(q, " AND param = ");
    q_text(q, clause->param->code);
    if (clause->type) {
        q_add(q, " AND target_type = ");
        q_text(q, clause->type->name);
    }
    q_add(q, "))");
}

/* _has where this server's base is known: the references of the sources name a resource by
 * type and id, or by an absolute url under the base ("[base]/Type/" and the id). */
static void q_has_absolute(q_t *q, const fhir_search_clause_t *clause, const char *alias,
                           const char *base)
{
    bool contained = q->in_contained;
    int n = ++q->alias;
    char t[16], s[16];
    snprintf(t, sizeof(t), "t%d", n);
    snprintf(s, sizeof(s), "s%d", n);
    const char *source = clause->next[0].type ? clause->next[0].type->name : "";
    const char *prefix = arena_printf(q->arena, "%s/%s/", base, clause->type->name);
    q_addf(q, "%s.rid IN (SELECT %s.rid FROM resource %s WHERE %s.type = ", alias, t, t, t);
    q_text(q, clause->type->name);
    q_addf(q, " AND %s.id IN (SELECT CASE WHEN target_type = ", t);
    q_text(q, clause->type->name);
    q_add(q, " THEN target_id ELSE substr(url, ");
    q_int4(q, (int64_t)strlen(prefix) + 1);
    q_addf(q,
           ") END FROM ix_reference WHERE rid IN (SELECT %s.rid FROM resource %s WHERE %s.type = ",
           s, s, s);
    q_text(q, source);
    q_addf(q, " AND %s.deleted = 0", s);
    q_visible(q, s);
    q_add(q, " AND ");
    q->in_contained = false;
    q_clause(q, &clause->next[0], s);
    q->in_contained = contained;
    q_addf(q, ") AND %stype = ", q->d->no_index);
    q_text(q, source);
    q_add(q, " AND param = ");
    q_text(q, clause->param->code);
    q_add(q, " AND (target_type = ");
    q_text(q, clause->type->name);
    q_add(q, " OR ");
    q_starts_with(q, "url", prefix);
    q_add(q, ")))");
}

/* A _has clause that can be tested per resource: one source type, whose own clause can be. */
static bool has_probe_capable(const fhir_search_clause_t *clause)
{
    if (clause->kind != FHIR_SEARCH_CLAUSE_HAS || clause->nnext != 1 || !clause->type ||
        !clause->next[0].type)
        return false;
    const fhir_search_clause_t *inner = &clause->next[0];
    return probe_capable(inner) && inner->modifier != FHIR_SEARCH_MOD_MISSING &&
           inner->modifier != FHIR_SEARCH_MOD_NOT;
}

/*
 * _has tested per resource: a reference of `param` from a resource of the source type to this
 * one (the (target_id, target_type) index) whose source matches the inner clause (its (rid,
 * param) index). Index rows belong to current resources only, so no deleted source counts.
 * For an inner clause that matches many sources, where materializing every target costs
 * more than looking at the first resources in order until the page is full. With a base,
 * references by absolute url under it count too, as in q_has_absolute.
 */
static void q_has_probe(q_t *q, const fhir_search_clause_t *clause, const char *alias)
{
    char h[16];
    snprintf(h, sizeof(h), "h%d", ++q->alias);
    q_addf(
        q,
        "(EXISTS (SELECT 1 FROM ix_reference %s WHERE %s.target_id = %s.id AND %s.target_type = ",
        h, h, alias, h);
    q_text(q, clause->type->name);
    q_addf(q, " AND %s.param = ", h);
    q_text(q, clause->param->code);
    q_addf(q, " AND %s%s.type = ", q->d->no_index, h);
    q_text(q, clause->next[0].type->name);
    q_add(q, " AND ");
    q_param_probe(q, &clause->next[0], h);
    q_visible_rid(q, arena_printf(q->arena, "%s.rid", h));
    q_add(q, ")");
    if (q->query->base && *q->query->base) {
        /* or by an absolute url under this server's base (the (type, param, url) index) */
        snprintf(h, sizeof(h), "h%d", ++q->alias);
        q_addf(q, " OR EXISTS (SELECT 1 FROM ix_reference %s WHERE %s.type = ", h, h);
        q_text(q, clause->next[0].type->name);
        q_addf(q, " AND %s.param = ", h);
        q_text(q, clause->param->code);
        q_addf(q, " AND %s.url = ", h);
        q_text(q, arena_printf(q->arena, "%s/%s/", q->query->base, clause->type->name));
        q_addf(q, " || %s.id AND ", alias);
        q_param_probe(q, &clause->next[0], h);
        q_visible_rid(q, arena_printf(q->arena, "%s.rid", h));
        q_add(q, ")");
    }
    q_add(q, ")");
}

static void q_list(q_t *q, const fhir_search_clause_t *clause, const char *alias)
{
    int n = ++q->alias;
    char x[16], t[16], l[16];
    snprintf(x, sizeof(x), "x%d", n);
    snprintf(t, sizeof(t), "t%d", n);
    snprintf(l, sizeof(l), "l%d", n);
    q_addf(q,
           "%s.rid IN (SELECT %s.rid FROM ix_reference %s JOIN resource %s ON %s.type = "
           "%s.target_type AND %s.id = %s.target_id JOIN resource %s ON %s.rid = %s.rid "
           "WHERE %s.type = 'List' AND %s.param = 'item' AND %s.id IN (",
           alias, t, x, t, t, x, t, x, l, l, x, x, x, l);
    for (size_t i = 0; i < clause->nvalues; i++) {
        if (i)
            q_add(q, ", ");
        const char *id = clause->values[i].as.reference.id;
        q_text(q, id ? id : clause->values[i].text);
    }
    q_add(q, ")");
    q_visible(q, l);
    q_add(q, ")");
}

static void q_clause(q_t *q, const fhir_search_clause_t *clause, const char *alias)
{
    switch (clause->kind) {
    case FHIR_SEARCH_CLAUSE_PARAM: q_param(q, clause, alias); break;
    case FHIR_SEARCH_CLAUSE_CHAIN: q_chain(q, clause, alias); break;
    case FHIR_SEARCH_CLAUSE_HAS: q_has(q, clause, alias); break;
    case FHIR_SEARCH_CLAUSE_LIST: q_list(q, clause, alias); break;
    }
}

/* ---- sort keys ----------------------------------------------------------------------- */

static void q_sort_key(q_t *q, const fhir_search_sort_t *sort, const char *alias)
{
    const char *code = sort->param->code;
    if (strcmp(code, "_id") == 0) {
        q_addf(q, "%s.id", alias);
        return;
    }
    if (strcmp(code, "_lastUpdated") == 0) {
        q_addf(q, "%s.updated_us", alias);
        return;
    }
    const char *fn = sort->descending ? "max" : "min";
    const char *column;
    int kind = fhir_index_kind_of(sort->param->type);
    switch (kind) {
    case FHIR_INDEX_STRING: column = "normalized"; break;
    case FHIR_INDEX_TOKEN: column = "code"; break;
    case FHIR_INDEX_DATE:
    case FHIR_INDEX_NUMBER:
    case FHIR_INDEX_QUANTITY: column = "low"; break;
    case FHIR_INDEX_REFERENCE: column = "coalesce(target_type || '/' || target_id, url)"; break;
    case FHIR_INDEX_URI: column = "value"; break;
    default: q_add(q, "NULL"); return;
    }
    q_addf(q, "(SELECT %s(%s) FROM %s WHERE rid = %s.rid AND param = ", fn, column,
           index_tables[kind], alias);
    q_text(q, code);
    q_add(q, ")");
}

/* ---- cursors ------------------------------------------------------------------------- */

/* A cursor: "a" (after) or "b" (before), then "_" and each sort key ("n" NULL, "i" and an
 * integer, "r" and the 16 hex digits of a double's bits, "s" and the hex of a string's
 * bytes), then "_" and the rid. Only URL-safe characters. */
typedef struct {
    bool before;
    sql_bind_t *keys; /* kind SQL_BIND_TEXT with text NULL: a NULL key */
    size_t nkeys;
    int64_t rid;
} cursor_t;

static void cursor_add_column(buf_t *out, const sql_driver_t *driver, const sql_row_t *row,
                              int column, arena_t *arena)
{
    sql_bind_t v;
    driver->value_at(row, column, arena, &v);
    buf_addch(out, '_');
    switch (v.kind) {
    case SQL_BIND_INT: buf_addf(out, "i%lld", (long long)v.i); break;
    case SQL_BIND_REAL: {
        uint64_t bits;
        memcpy(&bits, &v.d, sizeof(bits));
        buf_addf(out, "r%016" PRIx64, bits);
        break;
    }
    case SQL_BIND_TEXT:
        if (!v.text) {
            buf_addch(out, 'n');
            break;
        }
        buf_addch(out, 's');
        for (const unsigned char *s = (const unsigned char *)v.text; *s; s++)
            buf_addf(out, "%02x", *s);
        break;
    }
}

/* The cursor of a row: keys in columns 1..nkeys, rid in column 0. */
static const char *cursor_make(arena_t *arena, char direction, const sql_driver_t *driver,
                               const sql_row_t *row, size_t nkeys)
{
    buf_t b = BUF_INIT;
    buf_addch(&b, direction);
    for (size_t i = 0; i < nkeys; i++)
        cursor_add_column(&b, driver, row, 1 + (int)i, arena);
    buf_addf(&b, "_%lld", (long long)driver->int_at(row, 0));
    const char *out = arena_strndup(arena, b.ptr, b.len);
    buf_release(&b);
    return out;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static bool parse_int64(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 20)
        return false;
    char tmp[24];
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    long long v = strtoll(tmp, &end, 10);
    if (*end)
        return false;
    *out = v;
    return true;
}

static status_t cursor_parse(arena_t *arena, const char *text, size_t nkeys, cursor_t *out,
                             err_t *err)
{
    memset(out, 0, sizeof(*out));
    const char *p = text;
    if (*p != 'a' && *p != 'b')
        goto bad;
    out->before = *p == 'b';
    p++;
    out->keys = arena_zalloc(arena, (nkeys ? nkeys : 1) * sizeof(sql_bind_t));
    out->nkeys = nkeys;
    for (size_t i = 0; i < nkeys; i++) {
        if (*p != '_')
            goto bad;
        p++;
        size_t n = strcspn(p + 1, "_");
        sql_bind_t *k = &out->keys[i];
        switch (*p) {
        case 'n':
            if (n)
                goto bad;
            k->kind = SQL_BIND_TEXT;
            k->text = NULL;
            break;
        case 'i':
            k->kind = SQL_BIND_INT;
            if (!parse_int64(p + 1, n, &k->i))
                goto bad;
            break;
        case 'r': {
            if (n != 16)
                goto bad;
            uint64_t bits = 0;
            for (size_t d = 0; d < 16; d++) {
                int h = hex_digit(p[1 + d]);
                if (h < 0)
                    goto bad;
                bits = bits << 4 | (uint64_t)h;
            }
            k->kind = SQL_BIND_REAL;
            memcpy(&k->d, &bits, sizeof(bits));
            if (isnan(k->d))
                goto bad;
            break;
        }
        case 's': {
            if (n % 2)
                goto bad;
            char *s = arena_alloc(arena, n / 2 + 1);
            for (size_t d = 0; d < n / 2; d++) {
                int hi = hex_digit(p[1 + 2 * d]), lo = hex_digit(p[2 + 2 * d]);
                if (hi < 0 || lo < 0)
                    goto bad;
                s[d] = (char)(hi << 4 | lo);
            }
            s[n / 2] = '\0';
            if (strlen(s) != n / 2)
                goto bad;
            k->kind = SQL_BIND_TEXT;
            k->text = s;
            break;
        }
        default: goto bad;
        }
        p += 1 + n;
    }
    if (*p != '_')
        goto bad;
    p++;
    if (!parse_int64(p, strlen(p), &out->rid) || out->rid <= 0)
        goto bad;
    return ERR_OK;
bad:
    return err_set(err, ERR_INVALID, NULL,
                   "the paging cursor \"%s\" is not valid: follow the next and previous links "
                   "of a search as they are",
                   text);
}

/*
 * Rows after (forward) or before the cursor in the order of the keys: NULL keys sort last,
 * then the rid ascending. directions[i] is true for a descending key.
 */
static void q_keyset(q_t *q, const cursor_t *c, const bool *descending, size_t i, bool forward)
{
    if (i == c->nkeys) {
        q_addf(q, "m.rid %s ", forward ? ">" : "<");
        q_int(q, c->rid);
        return;
    }
    const sql_bind_t *k = &c->keys[i];
    bool null = k->kind == SQL_BIND_TEXT && !k->text;
    if (null) {
        if (forward) {
            q_addf(q, "(m.k%zu IS NULL AND ", i);
            q_keyset(q, c, descending, i + 1, forward);
            q_add(q, ")");
        } else {
            q_addf(q, "(m.k%zu IS NOT NULL OR ", i);
            q_keyset(q, c, descending, i + 1, forward);
            q_add(q, ")");
        }
        return;
    }
    /* in the key's own direction: greater for ascending after, less for descending after */
    const char *beyond = forward != descending[i] ? ">" : "<";
    if (forward)
        q_addf(q, "(m.k%zu IS NULL OR m.k%zu %s ", i, i, beyond);
    else
        q_addf(q, "(m.k%zu IS NOT NULL AND (m.k%zu %s ", i, i, beyond);
    q_value(q, k);
    q_addf(q, " OR (m.k%zu = ", i);
    q_value(q, k);
    q_add(q, " AND ");
    q_keyset(q, c, descending, i + 1, forward);
    q_add(q, forward ? "))" : ")))");
}

/* ---- the query ----------------------------------------------------------------------- */

static size_t sort_count(const fhir_search_plan_t *plan)
{
    size_t n = 0;
    for (size_t b = 0; b < plan->nbranches; b++)
        if (plan->branches[b].nsort > n)
            n = plan->branches[b].nsort;
    return n;
}

/* `[type = ? AND ]param IN (the compartment's parameters)` of ix_reference. */
static void q_compartment_key(q_t *q, const fhir_search_branch_t *branch, const char *params)
{
    if (branch->type) {
        q_add(q, "type = ");
        q_text(q, index_type(q, branch->type));
        q_add(q, " AND ");
    }
    q_add(q, "param IN (");
    q_text_list(q, params);
    q_add(q, ")");
}

/* ` AND (a refers to the compartment's resource [OR a is it])`: by type and id, or by this
 * server's absolute url of it. */
static void q_compartment(q_t *q, const fhir_search_branch_t *branch)
{
    const store_search_t *query = q->query;
    buf_t b = BUF_INIT;
    buf_addch(&b, '[');
    for (size_t i = 0; i < query->ncompartment_params; i++) {
        buf_addstr(&b, i ? ",\"" : "\"");
        const char *p = query->compartment_params[i];
        buf_add_json_escaped(&b, p, strlen(p));
        buf_addch(&b, '"');
    }
    buf_addch(&b, ']');
    const char *params = arena_strndup(q->arena, b.ptr, b.len);
    buf_release(&b);
    q_add(q, " AND (a.rid IN (SELECT rid FROM ix_reference WHERE ");
    q_compartment_key(q, branch, params);
    q_add(q, " AND target_id = ");
    q_text(q, query->compartment_id);
    q_add(q, " AND target_type = ");
    q_text(q, query->compartment_type);
    if (query->base && *query->base) {
        q_add(q, " UNION ALL SELECT rid FROM ix_reference WHERE ");
        q_compartment_key(q, branch, params);
        q_add(q, " AND url = ");
        q_text(q, arena_printf(q->arena, "%s/%s/%s", query->base, query->compartment_type,
                               query->compartment_id));
    }
    q_add(q, ")");
    /* the compartment's own resource is a member of it */
    if (!q->in_contained && branch->type &&
        strcmp(branch->type->name, query->compartment_type) == 0) {
        q_add(q, " OR a.id = ");
        q_text(q, query->compartment_id);
    }
    q_add(q, ")");
}

/* The conditions a resource `a` of branch b meets: its type, not deleted, the clauses (as
 * chosen: listed or probed), the compartment. */
static void q_branch_where(q_t *q, size_t b)
{
    const store_search_t *query = q->query;
    const fhir_search_branch_t *branch = &query->plan->branches[b];
    if (branch->type) {
        q_add(q, "a.type = ");
        q_text(q, branch->type->name);
        q_add(q, " AND ");
    }
    q_add(q, "a.deleted = 0");
    for (size_t c = 0; c < branch->nclauses; c++) {
        int merged = date_merge(branch, c, NULL, NULL);
        if (merged < 0)
            continue;
        q_add(q, " AND ");
        const char *how = q->how && q->how[b] ? q->how[b][c] : NULL;
        if (merged)
            q_date_merged(q, branch, c, "a", how == PROBE);
        else if (how == PROBE && branch->clauses[c].kind == FHIR_SEARCH_CLAUSE_HAS)
            q_has_probe(q, &branch->clauses[c], "a");
        else if (how == PROBE)
            q_param_probe(q, &branch->clauses[c], "a");
        else
            q_clause(q, &branch->clauses[c], "a");
    }
    bool listed = false;
    if (query->compartment_type && query->compartment_id) {
        q_compartment(q, branch);
        listed = true;
    }
    /* a clause listed as a set of rids is where the database starts: the visibility is then
       better tested per candidate than built as a second set */
    for (size_t c = 0; c < branch->nclauses && !listed; c++)
        listed = date_merge(branch, c, NULL, NULL) >= 0 &&
                 !(q->how && q->how[b] && q->how[b][c] == PROBE);
    q_visible_branch(q, branch, !listed);
}

/* The sort keys k1.. of branch b (k0 is the caller's). */
static void q_other_keys(q_t *q, size_t b, size_t nkeys)
{
    const fhir_search_branch_t *branch = &q->query->plan->branches[b];
    for (size_t k = 1; k < nkeys; k++) {
        q_add(q, ", ");
        if (k < branch->nsort)
            q_sort_key(q, &branch->sort[k], "a");
        else
            q_add(q, "NULL");
        q_addf(q, " AS k%zu", k);
    }
}

/* Whether key k of the plan sorts descending (the first branch that has the key says). */
static bool key_descending(const fhir_search_plan_t *plan, size_t k)
{
    for (size_t b = 0; b < plan->nbranches; b++)
        if (k < plan->branches[b].nsort)
            return plan->branches[b].sort[k].descending;
    return false;
}

/* The conditions a contained resource `a` (resource_contained) of branch b meets: its type,
 * the clauses (always listed), the compartment. */
static void q_contained_where(q_t *q, size_t b)
{
    const store_search_t *query = q->query;
    const fhir_search_branch_t *branch = &query->plan->branches[b];
    q->in_contained = true;
    if (branch->type) {
        q_add(q, "a.type = ");
        q_text(q, branch->type->name);
    } else {
        q_true(q);
    }
    for (size_t c = 0; c < branch->nclauses; c++) {
        int merged = date_merge(branch, c, NULL, NULL);
        if (merged < 0)
            continue;
        q_add(q, " AND ");
        if (merged)
            q_date_merged(q, branch, c, "a", false);
        else
            q_clause(q, &branch->clauses[c], "a");
    }
    if (query->compartment_type && query->compartment_id)
        q_compartment(q, branch);
    q->in_contained = false;
    q_visible_rid(q, "a.container");
}

/*
 * The matches of a search with _contained true or both: rows (rid, k0, ..., container,
 * cid). With _containedType=contained a contained resource is a row of its own (rid its key
 * in resource_contained, cid its id); with container, the containers of the matching
 * contained resources, once each (sort keys the lowest, or highest, of theirs).
 */
static void q_union_contained(q_t *q, size_t nkeys)
{
    const fhir_search_plan_t *plan = q->query->plan;
    bool containers = plan->contained_type == FHIR_SEARCH_CONTAINED_TYPE_CONTAINER;
    if (containers) {
        q_add(q, "SELECT g.rid AS rid");
        for (size_t k = 0; k < nkeys; k++)
            q_addf(q, ", %s(g.k%zu) AS k%zu", key_descending(plan, k) ? "max" : "min", k, k);
        q_add(q, ", g.rid AS container, NULL AS cid FROM (");
    }
    for (size_t b = 0; b < plan->nbranches; b++) {
        const fhir_search_branch_t *branch = &plan->branches[b];
        for (int part = plan->contained == FHIR_SEARCH_CONTAINED_BOTH ? 0 : 1; part < 2; part++) {
            if (b || part != (plan->contained == FHIR_SEARCH_CONTAINED_BOTH ? 0 : 1))
                q_add(q, " UNION ALL ");
            bool top = part == 0;
            q_addf(q, "SELECT a.%s AS rid", top || !containers ? "rid" : "container");
            if (nkeys) {
                q_add(q, ", ");
                if (branch->nsort)
                    q_sort_key(q, &branch->sort[0], "a");
                else
                    q_add(q, "NULL");
                q_add(q, " AS k0");
            }
            q_other_keys(q, b, nkeys);
            if (top) {
                q_add(q, ", a.rid AS container, NULL AS cid FROM resource a WHERE ");
                q_branch_where(q, b);
            } else {
                q_add(q, ", a.container AS container, a.id AS cid FROM resource_contained a "
                         "WHERE ");
                q_contained_where(q, b);
            }
        }
    }
    if (containers)
        q_add(q, ") g GROUP BY g.rid");
}

/* The union of the branches: rows (rid, k0, k1, ...). */
static void q_union(q_t *q, size_t nkeys)
{
    const fhir_search_plan_t *plan = q->query->plan;
    if (plan->contained != FHIR_SEARCH_CONTAINED_FALSE) {
        q_union_contained(q, nkeys);
        return;
    }
    for (size_t b = 0; b < plan->nbranches; b++) {
        const fhir_search_branch_t *branch = &plan->branches[b];
        if (b)
            q_add(q, " UNION ALL ");
        q_add(q, "SELECT a.rid AS rid");
        if (nkeys) {
            q_add(q, ", ");
            if (branch->nsort)
                q_sort_key(q, &branch->sort[0], "a");
            else
                q_add(q, "NULL");
            q_add(q, " AS k0");
        }
        q_other_keys(q, b, nkeys);
        q_add(q, " FROM resource a WHERE ");
        q_branch_where(q, b);
    }
}

/*
 * Walking the index of the first sort key (one branch): the matches that have a value, one
 * row each (the index row holding the resource's lowest value, or highest for a descending
 * key), in the order of that index, so a page stops reading when it is full; then, apart,
 * the matches without a value, which sort last.
 */
typedef struct {
    const char *table, *column; /* ix_date, low */
} walk_t;

static bool walk_of(const fhir_search_sort_t *sort, walk_t *out)
{
    const char *code = sort->param->code;
    if (!strcmp(code, "_id") || !strcmp(code, "_lastUpdated"))
        return false;
    int kind = fhir_index_kind_of(sort->param->type);
    switch (kind) {
    case FHIR_INDEX_STRING: out->column = "normalized"; break;
    case FHIR_INDEX_TOKEN: out->column = "code"; break;
    case FHIR_INDEX_DATE:
    case FHIR_INDEX_NUMBER:
    case FHIR_INDEX_QUANTITY: out->column = "low"; break;
    case FHIR_INDEX_URI: out->column = "value"; break;
    default: return false;
    }
    out->table = index_tables[kind];
    return true;
}

static void q_walk_values(q_t *q, const walk_t *w, size_t nkeys)
{
    const fhir_search_branch_t *branch = &q->query->plan->branches[0];
    const fhir_search_sort_t *key = &branch->sort[0];
    q_addf(q, "SELECT x.rid AS rid, x.%s AS k0", w->column);
    q_other_keys(q, 0, nkeys);
    q_addf(q, " FROM %s x JOIN resource a ON a.rid = x.rid WHERE x.type = ", w->table);
    q_text(q, branch->type->name);
    q_add(q, " AND x.param = ");
    q_text(q, key->param->code);
    q_add(q, " AND ");
    q_branch_where(q, 0);
    const char *key_column = q->d->row_key;
    q_addf(q,
           " AND x.%s = (SELECT y.%s FROM %s y WHERE y.rid = x.rid AND y.param = x.param "
           "AND y.%s IS NOT NULL ORDER BY y.%s %s, y.%s LIMIT 1)",
           key_column, key_column, w->table, w->column, w->column, key->descending ? "DESC" : "ASC",
           key_column);
    q_addf(q, " AND x.%s IS NOT NULL", w->column);
}

static void q_walk_nulls(q_t *q, const walk_t *w, size_t nkeys)
{
    const fhir_search_branch_t *branch = &q->query->plan->branches[0];
    q_add(q, "SELECT a.rid AS rid, NULL AS k0");
    q_other_keys(q, 0, nkeys);
    q_add(q, " FROM resource a WHERE ");
    q_branch_where(q, 0);
    q_addf(q, " AND NOT EXISTS (SELECT 1 FROM %s z WHERE z.rid = a.rid AND z.param = ", w->table);
    q_text(q, branch->sort[0].param->code);
    q_addf(q, " AND z.%s IS NOT NULL)", w->column);
}

static const char entry_columns[] =
    "r.type, r.id, v.version, v.seq, v.updated_us, v.last_updated, v.method, v.status, "
    "v.deleted, v.json";

/* Reads the entry columns starting at `first`. */
static void read_entry(const sql_driver_t *d, const sql_row_t *row, int first, arena_t *arena,
                       store_version_t *v)
{
    v->type = d->text_at(row, first, arena, NULL);
    v->id = d->text_at(row, first + 1, arena, NULL);
    v->version = d->int_at(row, first + 2);
    v->seq = d->int_at(row, first + 3);
    v->updated_us = d->int_at(row, first + 4);
    v->last_updated = d->text_at(row, first + 5, arena, NULL);
    v->method = d->text_at(row, first + 6, arena, NULL);
    v->status = (int)d->int_at(row, first + 7);
    v->deleted = d->int_at(row, first + 8) != 0;
    v->json = d->text_at(row, first + 9, arena, &v->json_len);
}

/* Reads one integer (a count) of a statement's first row. */
typedef struct {
    const sql_driver_t *driver;
    int64_t value;
} one_int_t;

static bool one_int_row(void *ctx, const sql_row_t *row)
{
    one_int_t *o = ctx;
    o->value = o->driver->int_at(row, 0);
    return false;
}

/* Runs the statement q holds (and releases q). */
static status_t q_run(q_t *q, const sql_driver_t *driver, const char *doing, sql_row_fn row,
                      void *ctx, err_t *err)
{
    sql_stmt_t stmt;
    q_stmt(q, &stmt);
    q_release(q);
    return driver->run(driver->conn, &stmt, doing, row, ctx, err);
}

typedef enum {
    SEGMENT_ALL,    /* the union of the branches, sorted as a whole */
    SEGMENT_VALUES, /* a walk: the matches with a first key, in its index's order */
    SEGMENT_NULLS,  /* a walk: the matches without one */
    SEGMENT_COLUMN, /* one branch sorted first by _id or _lastUpdated, never NULL: the
                       resource table's (type, id) or (type, deleted, updated_us) index */
} segment_t;

/* The page query: matches with their keys and entries, in order, count + 1 of them. */
static void q_page(q_t *q, const cursor_t *cursor, bool forward, const bool *descending,
                   size_t nkeys, uint32_t count, uint32_t offset, segment_t segment,
                   const walk_t *walk)
{
    bool contained = q->query->plan->contained != FHIR_SEARCH_CONTAINED_FALSE;
    q_add(q, "SELECT m.rid");
    for (size_t k = 0; k < nkeys; k++)
        q_addf(q, ", m.k%zu", k);
    q_addf(q, ", %s%s FROM (", entry_columns, contained ? ", m.cid" : "");
    if (segment == SEGMENT_VALUES)
        q_walk_values(q, walk, nkeys);
    else if (segment == SEGMENT_NULLS)
        q_walk_nulls(q, walk, nkeys);
    else
        q_union(q, nkeys);
    q_addf(q, ") m JOIN resource r ON r.rid = m.%s JOIN resource_version v ON v.seq = r.seq",
           contained ? "container" : "rid");
    if (cursor) {
        q_add(q, " WHERE ");
        q_keyset(q, cursor, descending, 0, forward);
        const sql_bind_t *k0 = &cursor->keys[0];
        if ((segment == SEGMENT_VALUES || segment == SEGMENT_COLUMN) &&
            !(k0->kind == SQL_BIND_TEXT && !k0->text)) {
            /* said apart so that the walk starts at the cursor in the index */
            q_addf(q, " AND m.k0 %s ", forward != descending[0] ? ">=" : "<=");
            q_value(q, k0);
        }
    }
    q_add(q, " ORDER BY ");
    for (size_t k = 0; k < nkeys; k++) {
        bool desc = descending[k] == forward; /* reversed when going backwards */
        if (k == 0 && segment == SEGMENT_NULLS)
            continue; /* all NULL */
        if (k > 0 || segment == SEGMENT_ALL)
            q_addf(q, "(m.k%zu IS NULL) %s, ", k, forward ? "ASC" : "DESC");
        q_addf(q, "m.k%zu %s, ", k, desc ? "DESC" : "ASC");
    }
    q_addf(q, "m.rid %s LIMIT ", forward ? "ASC" : "DESC");
    q_int(q, (int64_t)count + 1);
    if (!cursor && offset) {
        q_add(q, " OFFSET ");
        q_int(q, offset);
    }
}

static status_t run_total(const sql_driver_t *driver, const store_search_t *query, arena_t *arena,
                          int64_t *out, err_t *err)
{
    q_t q;
    q_init(&q, driver->dialect, query, arena);
    q_add(&q, "SELECT count(*) FROM (");
    q_union(&q, 0);
    q_addf(&q, ")%s", q.d->alias);
    one_int_t o = {.driver = driver, .value = 0};
    status_t rc = q_run(&q, driver, "search total", one_int_row, &o, err);
    *out = o.value;
    return rc;
}

/* ---- includes ------------------------------------------------------------------------ */

typedef struct {
    int64_t *rids;
    size_t n, cap;
} rids_t;

static void rids_add(arena_t *arena, rids_t *r, int64_t rid)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        int64_t *rids = arena_alloc(arena, cap * sizeof(*rids));
        if (r->n)
            memcpy(rids, r->rids, r->n * sizeof(*rids));
        r->rids = rids;
        r->cap = cap;
    }
    r->rids[r->n++] = rid;
}

static bool rids_has(const rids_t *r, int64_t rid)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->rids[i] == rid)
            return true;
    return false;
}

static const char *rids_json(arena_t *arena, const rids_t *r, size_t from)
{
    buf_t b = BUF_INIT;
    buf_addch(&b, '[');
    for (size_t i = from; i < r->n; i++)
        buf_addf(&b, "%s%lld", i > from ? "," : "", (long long)r->rids[i]);
    buf_addch(&b, ']');
    const char *out = arena_strndup(arena, b.ptr, b.len);
    buf_release(&b);
    return out;
}

/* `+x.type = source`: the include's source type, and in a search of contained resources
 * the same type of contained resources (the page holds them). */
static void q_include_source(q_t *q, const fhir_search_include_t *inc)
{
    q_addf(q, "%sx.type ", q->d->no_index);
    if (q->query->plan->contained == FHIR_SEARCH_CONTAINED_FALSE) {
        q_add(q, "= ");
        q_text(q, inc->source->name);
        return;
    }
    q_add(q, "IN (");
    q_text(q, inc->source->name);
    q_add(q, ", ");
    q_text(q, arena_printf(q->arena, "#%s", inc->source->name));
    q_add(q, ")");
}

/* _include through references written as this server's absolute urls: the type and id are
 * cut from the url ("[base]/Type/id"), so the resource table's (type, id) index finds them. */
static void q_include_absolute(q_t *q, const fhir_search_include_t *inc, const char *from,
                               const char *base)
{
    int64_t at = (int64_t)strlen(base) + 2; /* where Type starts, counting from 1 */
    q_add(q, " UNION SELECT t.rid FROM ix_reference x JOIN resource t ON t.type = substr(x.url, ");
    q_int4(q, at);
    q_addf(q, ", %ssubstr(x.url, ", slash_in(q));
    q_int4(q, at);
    q_add(q, "), '/') - 1) AND t.id = substr(x.url, ");
    q_int4(q, at);
    q_addf(q, " + %ssubstr(x.url, ", slash_in(q));
    q_int4(q, at);
    q_add(q, "), '/')) AND t.deleted = 0 WHERE x.rid IN (");
    q_rid_list(q, from);
    q_add(q, ") AND ");
    q_include_source(q, inc);
    if (inc->param) {
        q_add(q, " AND x.param = ");
        q_text(q, inc->param->code);
    }
    q_add(q, " AND ");
    q_starts_with(q, "x.url", arena_printf(q->arena, "%s/", base));
    if (inc->target) {
        q_add(q, " AND t.type = ");
        q_text(q, inc->target->name);
    }
}

/* _revinclude of references written as this server's absolute urls: by the url of each
 * resource of the page, through the (type, param, url) index, or the url index for any
 * parameter. */
static void q_revinclude_absolute(q_t *q, const fhir_search_include_t *inc, const char *from,
                                  const char *base)
{
    q_add(q, " UNION SELECT x.rid FROM resource t JOIN ix_reference x ON x.url = ");
    q_text(q, arena_printf(q->arena, "%s/", base));
    q_add(q, " || t.type || '/' || t.id WHERE t.rid IN (");
    q_rid_list(q, from);
    q_add(q, ") AND ");
    if (inc->param) {
        q_add(q, "x.type = ");
        q_text(q, inc->source->name);
        q_add(q, " AND x.param = ");
        q_text(q, inc->param->code);
    } else {
        q_addf(q, "%sx.type = ", q->d->no_index);
        q_text(q, inc->source->name);
    }
    if (inc->target) {
        q_add(q, " AND t.type = ");
        q_text(q, inc->target->name);
    }
}

/* The rids one include reaches from the resources in `from` (a JSON array of rids). The
 * unary + keeps SQLite from reading every reference of the parameter through the (type,
 * param, ...) index: a page's few rids are the way in. */
static void q_include(q_t *q, const fhir_search_include_t *inc, const char *from)
{
    if (!inc->reverse) {
        q_add(q, "SELECT DISTINCT t.rid FROM ix_reference x JOIN resource t ON t.type = "
                 "x.target_type AND t.id = x.target_id AND t.deleted = 0 WHERE x.rid IN (");
        q_rid_list(q, from);
        q_add(q, ") AND ");
        q_include_source(q, inc);
        if (inc->param) {
            q_add(q, " AND x.param = ");
            q_text(q, inc->param->code);
        }
        if (inc->target) {
            q_add(q, " AND x.target_type = ");
            q_text(q, inc->target->name);
        }
        if (q->query->base && *q->query->base)
            q_include_absolute(q, inc, from, q->query->base);
    } else {
        q_add(q, "SELECT DISTINCT x.rid FROM resource t JOIN ix_reference x ON x.target_id = "
                 "t.id AND x.target_type = t.type WHERE t.rid IN (");
        q_rid_list(q, from);
        q_addf(q, ") AND %sx.type = ", q->d->no_index);
        q_text(q, inc->source->name);
        if (inc->param) {
            q_add(q, " AND x.param = ");
            q_text(q, inc->param->code);
        }
        if (inc->target) {
            q_add(q, " AND t.type = ");
            q_text(q, inc->target->name);
        }
        if (q->query->base && *q->query->base)
            q_revinclude_absolute(q, inc, from, q->query->base);
    }
}

typedef struct {
    const sql_driver_t *driver;
    arena_t *arena;
    rids_t *seen, *added;
    bool *truncated;
} include_rows_t;

static bool include_row(void *ctx, const sql_row_t *row)
{
    include_rows_t *r = ctx;
    int64_t rid = r->driver->int_at(row, 0);
    if (rids_has(r->seen, rid))
        return true;
    if (r->added->n >= STORE_SEARCH_MAX_INCLUDE) {
        *r->truncated = true;
        return false;
    }
    rids_add(r->arena, r->seen, rid);
    rids_add(r->arena, r->added, rid);
    return true;
}

static status_t run_includes(const sql_driver_t *driver, const store_search_t *query,
                             arena_t *arena, rids_t *seen, size_t nmatch, rids_t *added,
                             bool *truncated, err_t *err)
{
    const fhir_search_plan_t *plan = query->plan;
    size_t round_start = 0, round_end = nmatch;
    include_rows_t rows = {driver, arena, seen, added, truncated};
    for (int round = 0; round < STORE_SEARCH_MAX_ROUNDS && round_end > round_start; round++) {
        const char *from = rids_json(arena, seen, round_start);
        for (size_t i = 0; i < plan->nincludes; i++) {
            const fhir_search_include_t *inc = &plan->includes[i];
            if (round > 0 && !inc->iterate)
                continue;
            q_t q;
            q_init(&q, driver->dialect, query, arena);
            if (query->visibility) {
                /* only what the caller may see is included, or reached by :iterate */
                q_add(&q, "SELECT w.rid FROM resource w WHERE w.rid IN (");
                q_include(&q, inc, from);
                q_add(&q, ")");
                q_visible(&q, "w");
            } else {
                q_include(&q, inc, from);
            }
            /* no more rows than can be kept: those already seen, what is left below the cap,
             * and one to tell that the cap was reached (PostgreSQL's client would read every
             * row of the statement before the first is looked at) */
            q_add(&q, " LIMIT ");
            q_int(&q, (int64_t)(seen->n + STORE_SEARCH_MAX_INCLUDE - added->n + 1));
            status_t rc = q_run(&q, driver, "search include", include_row, &rows, err);
            if (rc)
                return rc;
        }
        round_start = round_end;
        round_end = seen->n;
    }
    return ERR_OK;
}

typedef struct {
    const sql_driver_t *driver;
    arena_t *arena;
    store_search_result_t *out;
} included_rows_t;

static bool included_row(void *ctx, const sql_row_t *row)
{
    included_rows_t *r = ctx;
    store_search_entry_t *e = &r->out->entries[r->out->n++];
    read_entry(r->driver, row, 1, r->arena, &e->version);
    e->included = true;
    e->contained_id = NULL;
    return true;
}

static status_t read_included(const sql_driver_t *driver, const store_search_t *query,
                              arena_t *arena, const rids_t *added, store_search_result_t *out,
                              err_t *err)
{
    if (!added->n)
        return ERR_OK;
    store_search_entry_t *entries =
        arena_zalloc(arena, (out->n + added->n) * sizeof(store_search_entry_t));
    memcpy(entries, out->entries, out->n * sizeof(store_search_entry_t));
    out->entries = entries;
    q_t q;
    q_init(&q, driver->dialect, query, arena);
    q_addf(&q,
           "SELECT r.rid, %s FROM resource r JOIN resource_version v ON v.seq = r.seq "
           "WHERE r.rid IN (",
           entry_columns);
    q_rid_list(&q, rids_json(arena, added, 0));
    q_add(&q, ") AND r.deleted = 0 ORDER BY r.rid");
    included_rows_t rows = {driver, arena, out};
    return q_run(&q, driver, "search include", included_row, &rows, err);
}

/* ---- choosing how each clause is tested --------------------------------------------- */

/* Rows a clause's subquery yields, counted up to cap (an index-only count: cheaper than
 * materializing them). With a branch, clause c of it leads merged date clauses, counted
 * merged. */
static status_t clause_rows(const sql_driver_t *driver, const store_search_t *query,
                            const fhir_search_clause_t *clause, const fhir_search_branch_t *branch,
                            size_t c, int64_t cap, arena_t *arena, int64_t *out, err_t *err)
{
    q_t q;
    q_init(&q, driver->dialect, query, arena);
    q_add(&q, "SELECT count(*) FROM (");
    if (branch)
        q_date_merged_rids(&q, branch, c);
    else
        q_param_rids(&q, clause, table_of(clause));
    q_add(&q, " LIMIT ");
    q_int(&q, cap);
    q_addf(&q, ")%s", q.d->alias);
    one_int_t o = {.driver = driver, .value = 0};
    status_t rc = q_run(&q, driver, "search estimate", one_int_row, &o, err);
    *out = o.value;
    return rc;
}

#define TYPE_ESTIMATE_CAP 1000000
/* A probe (an index lookup by rid, then a test) costs about this many times what
 * materializing one matching rid does. */
#define PROBE_COST 4

/*
 * For a search read in the order of an index (rid order without sort keys, or the walk of
 * the first key's index): which clauses to test per resource instead of materializing their
 * rids. Materializing costs about the M rows a clause
 * matches; walking the resources in order and testing each costs about PROBE_COST * page * N
 * / M for N resources of the type. So a clause is probed when M exceeds T = sqrt(PROBE_COST *
 * page * N), which counting at most T + 1 of its index entries tells (an index-only count,
 * a fraction of what materializing would cost). :not and :missing match most resources by nature
 * and are always probed. When every clause is probed, the walk stops as soon as the page is full.
 * Small types (N below 16 pages) are not worth the reading.
 */
static status_t choose_probes(const sql_driver_t *driver, const store_search_t *query,
                              arena_t *arena, uint32_t count, const char ****out, err_t *err)
{
    const fhir_search_plan_t *plan = query->plan;
    const char ***how = arena_zalloc(arena, plan->nbranches * sizeof(*how));
    int64_t page = (int64_t)count + 1;
    for (size_t b = 0; b < plan->nbranches; b++) {
        const fhir_search_branch_t *branch = &plan->branches[b];
        how[b] = arena_zalloc(arena, (branch->nclauses ? branch->nclauses : 1) * sizeof(char *));
        int64_t n = -1;
        for (size_t c = 0; c < branch->nclauses; c++) {
            const fhir_search_clause_t *clause = &branch->clauses[c];
            /* a _has clause is estimated by the sources its inner clause matches: at most
               that many targets */
            bool has = has_probe_capable(clause);
            int merged = date_merge(branch, c, NULL, NULL);
            if ((!probe_capable(clause) && !has) || merged < 0)
                continue;
            if (clause->modifier == FHIR_SEARCH_MOD_MISSING || is_negated(clause)) {
                how[b][c] = PROBE;
                continue;
            }
            status_t rc;
            if (n < 0 &&
                (rc = driver->type_rows(driver->conn, branch->type, TYPE_ESTIMATE_CAP, &n, err)))
                return rc;
            if (n < 16 * page)
                continue;
            int64_t threshold = (int64_t)sqrt((double)PROBE_COST * (double)page * (double)n);
            int64_t m = 0;
            if ((rc = clause_rows(driver, query, has ? &clause->next[0] : clause,
                                  merged ? branch : NULL, c, threshold + 1, arena, &m, err)))
                return rc;
            how[b][c] = m > threshold ? PROBE : NULL;
        }
    }
    *out = how;
    return ERR_OK;
}

/* ---- the search ---------------------------------------------------------------------- */

typedef struct {
    const sql_driver_t *driver;
    arena_t *arena;
    store_search_result_t *out;
    uint32_t count;
    size_t nkeys;
    bool contained, more;
    rids_t *seen;
    const char **first_cursor, **last_cursor;
} page_rows_t;

static bool page_row(void *ctx, const sql_row_t *row)
{
    page_rows_t *p = ctx;
    store_search_result_t *out = p->out;
    if (out->n == p->count) {
        p->more = true;
        return false;
    }
    store_search_entry_t *e = &out->entries[out->n++];
    read_entry(p->driver, row, 1 + (int)p->nkeys, p->arena, &e->version);
    e->included = false;
    e->contained_id =
        p->contained ? p->driver->text_at(row, 11 + (int)p->nkeys, p->arena, NULL) : NULL;
    rids_add(p->arena, p->seen, p->driver->int_at(row, 0));
    if (out->n == 1)
        *p->first_cursor = cursor_make(p->arena, 'b', p->driver, row, p->nkeys);
    *p->last_cursor = cursor_make(p->arena, 'a', p->driver, row, p->nkeys);
    return true;
}

status_t sql__search(const sql_driver_t *driver, const store_search_t *query, arena_t *arena,
                     store_search_result_t *out, err_t *err)
{
    const fhir_search_plan_t *plan = query->plan;
    memset(out, 0, sizeof(*out));
    out->total = -1;
    size_t nkeys = sort_count(plan);
    bool *descending = arena_zalloc(arena, (nkeys ? nkeys : 1) * sizeof(bool));
    for (size_t k = 0; k < nkeys; k++)
        for (size_t b = 0; b < plan->nbranches; b++)
            if (k < plan->branches[b].nsort) {
                descending[k] = plan->branches[b].sort[k].descending;
                break;
            }
    cursor_t cursor;
    bool has_cursor = query->page && *query->page;
    status_t rc;
    if (has_cursor && (rc = cursor_parse(arena, query->page, nkeys, &cursor, err)))
        return rc;
    bool want_total = plan->total == FHIR_SEARCH_TOTAL_ACCURATE ||
                      plan->total == FHIR_SEARCH_TOTAL_ESTIMATE ||
                      plan->summary == FHIR_SEARCH_SUMMARY_COUNT;
    if (want_total && (rc = run_total(driver, query, arena, &out->total, err)))
        return rc;
    uint32_t count = plan->summary == FHIR_SEARCH_SUMMARY_COUNT ? 0 : plan->count;
    if (count == 0)
        return ERR_OK;

    /* the segments to read, in reading order */
    bool forward = !has_cursor || !cursor.before;
    walk_t walk;
    bool contained = plan->contained != FHIR_SEARCH_CONTAINED_FALSE;
    bool walking = sql__search_walks && !contained && nkeys && plan->nbranches == 1 &&
                   plan->branches[0].type && plan->branches[0].nsort && !plan->offset &&
                   walk_of(&plan->branches[0].sort[0], &walk);
    segment_t segments[2] = {SEGMENT_ALL, SEGMENT_ALL};
    size_t nsegments = 1;
    const fhir_search_sort_t *first_key =
        nkeys && plan->nbranches == 1 && plan->branches[0].type && plan->branches[0].nsort
            ? &plan->branches[0].sort[0]
            : NULL;
    if (!walking && sql__search_walks && !contained && first_key && !plan->offset &&
        (!strcmp(first_key->param->code, "_id") ||
         !strcmp(first_key->param->code, "_lastUpdated"))) {
        segments[0] = SEGMENT_COLUMN;
        walking = true; /* clauses as in an index walk */
    } else if (walking) {
        bool cursor_in_nulls =
            has_cursor && cursor.keys[0].kind == SQL_BIND_TEXT && !cursor.keys[0].text;
        nsegments = 0;
        /* values come before NULLs: forward reads values then NULLs, backward the reverse;
           a cursor among the NULLs has no values after it, one among values no NULLs before */
        if (forward) {
            if (!cursor_in_nulls)
                segments[nsegments++] = SEGMENT_VALUES;
            segments[nsegments++] = SEGMENT_NULLS;
        } else {
            if (cursor_in_nulls)
                segments[nsegments++] = SEGMENT_NULLS;
            segments[nsegments++] = SEGMENT_VALUES;
        }
    }
    /* in rid order or walking an index, unselective clauses are better tested per resource */
    const char ***how = NULL;
    if (!contained && (nkeys == 0 || walking) &&
        (rc = choose_probes(driver, query, arena, count, &how, err)))
        return rc;
    out->entries = arena_zalloc(arena, (size_t)count * sizeof(store_search_entry_t));
    rids_t seen = {0};
    bool more = false;
    const char *first_cursor = NULL, *last_cursor = NULL;
    page_rows_t rows = {.driver = driver,
                        .arena = arena,
                        .out = out,
                        .count = count,
                        .nkeys = nkeys,
                        .contained = contained,
                        .seen = &seen,
                        .first_cursor = &first_cursor,
                        .last_cursor = &last_cursor};
    for (size_t g = 0; g < nsegments && !rows.more; g++) {
        q_t q;
        q_init(&q, driver->dialect, query, arena);
        q.how = how;
        /* the cursor bounds the first segment read; the next one is read whole */
        const cursor_t *c = has_cursor && g == 0 ? &cursor : NULL;
        q_page(&q, c, forward, descending, nkeys, count, plan->offset, segments[g], &walk);
        if ((rc = q_run(&q, driver, "search", page_row, &rows, err)))
            return rc;
    }
    more = rows.more;
    if (!forward) {
        /* read in reverse order: put the page in order */
        for (size_t i = 0; i < out->n / 2; i++) {
            store_search_entry_t tmp = out->entries[i];
            out->entries[i] = out->entries[out->n - 1 - i];
            out->entries[out->n - 1 - i] = tmp;
            int64_t r = seen.rids[i];
            seen.rids[i] = seen.rids[out->n - 1 - i];
            seen.rids[out->n - 1 - i] = r;
        }
        /* the first row read is the page's last */
        const char *tmp = first_cursor;
        first_cursor = last_cursor;
        last_cursor = tmp;
    }
    out->nmatch = out->n;
    if (out->n) {
        /* each cursor was made for the direction of a forward read: turn them as needed */
        const char *prev = first_cursor, *next = last_cursor;
        if (prev[0] != 'b')
            prev = arena_printf(arena, "b%s", prev + 1);
        if (next[0] != 'a')
            next = arena_printf(arena, "a%s", next + 1);
        if (forward) {
            out->next = more ? next : NULL;
            out->previous = has_cursor || plan->offset ? prev : NULL;
        } else {
            out->previous = more ? prev : NULL;
            out->next = next;
        }
    } else if (has_cursor) {
        /* an empty page reached by a cursor: the way back is the cursor turned around */
        const char *turned = arena_printf(arena, "%c%s", forward ? 'b' : 'a', query->page + 1);
        if (forward)
            out->previous = turned;
        else
            out->next = turned;
    }
    if (plan->nincludes && out->n) {
        rids_t added = {0};
        rc = run_includes(driver, query, arena, &seen, out->nmatch, &added,
                          &out->includes_truncated, err);
        if (!rc)
            rc = read_included(driver, query, arena, &added, out, err);
        if (rc)
            return rc;
    }
    return ERR_OK;
}

void sql__search_page(const sql_dialect_t *dialect, const store_search_t *query, arena_t *arena,
                      sql_stmt_t *out)
{
    q_t q;
    q_init(&q, dialect, query, arena);
    size_t nkeys = sort_count(query->plan);
    bool *descending = arena_zalloc(arena, (nkeys ? nkeys : 1) * sizeof(bool));
    q_page(&q, NULL, true, descending, nkeys, query->plan->count, 0, SEGMENT_ALL, NULL);
    q_stmt(&q, out);
    q_release(&q);
}

const char sql__unlinked_reindex_schema[] =
    "INSERT INTO job (kind, key, run_at_us, payload) SELECT 'reindex', '*', 0, "
    "'{\"why\":\"the upgrade of the index to schema 14\"}' WHERE EXISTS (SELECT 1 FROM resource) "
    "ON CONFLICT (kind, key) DO NOTHING;";
