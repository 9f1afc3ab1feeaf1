/*
 * audit.c - the HTTP side of the audit trail (auth/audit.h): the rows each interaction that
 * touches health data queues (one per distinct patient among the resources of its response),
 * and the read-only AuditEvent API rendered from the rows (docs/api.md, "AuditEvent").
 *
 * The trail is not a resource table: GET /fhir/AuditEvent and /fhir/AuditEvent/[id] read the
 * audit rows through the store, newest first, paged by the row id; nothing writes to it over
 * HTTP. Only administrators (and the server itself, a NULL caller) may read it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/audit.h"
#include "base/clock.h"
#include "fhir/search.h"
#include "http/http_int.h"
#include "repo/bundle.h"
#include "repo/repo.h"

#define AUDIT_DEFAULT_COUNT 50
#define AUDIT_MAX_COUNT     1000

/* ---- recording --------------------------------------------------------------------------- */

void http__audit_patient_add(arena_t *arena, http_audit_patients_t *p, const char *type,
                             const char *id, const char *json, size_t len)
{
    const char *patient = repo_patient_of_json(type, id, json, len, arena);
    if (!patient)
        return;
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->ids[i], patient) == 0)
            return;
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 8;
        const char **more = arena_alloc(arena, cap * sizeof(*more));
        if (p->n)
            memcpy(more, p->ids, p->n * sizeof(*more));
        p->ids = more;
        p->cap = cap;
    }
    p->ids[p->n++] = patient;
}

void http__audit_entries(arena_t *arena, http_audit_patients_t *p,
                         const store_search_result_t *result)
{
    for (size_t i = 0; i < result->n; i++) {
        const store_version_t *v = &result->entries[i].version;
        http__audit_patient_add(arena, p, v->type, v->id, v->json, v->json_len);
    }
}

const char *http__peer_address(h2o_req_t *req, arena_t *arena)
{
    if (!req || !req->conn || !req->conn->callbacks->get_peername)
        return NULL;
    struct sockaddr_storage sa;
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&sa);
    char text[NI_MAXHOST];
    size_t n = len ? h2o_socket_getnumerichost((struct sockaddr *)&sa, len, text) : SIZE_MAX;
    return n == SIZE_MAX ? NULL : arena_strndup(arena, text, n);
}

void http__audit(http_server_t *server, const http_audit_t *what,
                 const http_audit_patients_t *patients)
{
    if (!server->audit)
        return;
    arena_t arena;
    arena_init(&arena);
    store_audit_row_t base;
    repo_audit_row(what->caller, &base);
    if (!base.source)
        base.source = http__peer_address(what->req, &arena);
    base.time_us = clock_now_us();
    base.action = what->action;
    base.type = what->type;
    base.resource_id = what->id;
    base.query = what->query && *what->query ? what->query : NULL;
    base.outcome = arena_printf(&arena, "%d", what->status);
    if ((!patients || !patients->n) && what->type && what->id && !strcmp(what->type, "Patient"))
        base.patient = what->id; /* a Patient's id names the patient even when it failed */
    size_t n = patients && patients->n ? patients->n : 1;
    store_audit_row_t *rows = arena_alloc(&arena, n * sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        rows[i] = base;
        if (patients && patients->n)
            rows[i].patient = patients->ids[i];
    }
    auth_audit_record(server->audit, rows, n);
    arena_release(&arena);
}

/* ---- actions and their codes ------------------------------------------------------------- */

typedef struct {
    const char *action;  /* as recorded */
    const char *subtype; /* restful-interaction code, or NULL: an auth event */
    char code;           /* AuditEvent.action */
} action_t;

static const action_t actions[] = {
    {"read", "read", 'R'},
    {"vread", "vread", 'R'},
    {"history", "history-instance", 'R'},
    {"search", "search-type", 'R'},
    {"everything", "operation", 'E'},
    {"create", "create", 'C'},
    {"update", "update", 'U'},
    {"patch", "patch", 'U'},
    {"delete", "delete", 'D'},
    {"transaction", "transaction", 'E'},
    {"login", NULL, 'E'},
    {"login-failed", NULL, 'E'},
    {"lockout", NULL, 'E'},
    {"logout", NULL, 'E'},
    {"token-issued", NULL, 'E'},
    {"token-revoked", NULL, 'E'},
    {"emergency-access", NULL, 'E'},
    {"denied", NULL, 'E'},
    {"queue-replay", NULL, 'E'},
    {"apply", "operation", 'E'},
};
#define NACTIONS (sizeof(actions) / sizeof(actions[0]))
typedef uint32_t action_set_t;
#define ALL_ACTIONS ((action_set_t)((1u << NACTIONS) - 1))

static const action_t *action_find(const char *name)
{
    for (size_t i = 0; name && i < NACTIONS; i++)
        if (strcmp(actions[i].action, name) == 0)
            return &actions[i];
    return NULL;
}

/* The login events are DICOM's User Authentication (110114); every other is a RESTful
 * operation. */
static bool is_authentication(const char *action)
{
    return action && (strcmp(action, "login") == 0 || strcmp(action, "login-failed") == 0 ||
                      strcmp(action, "lockout") == 0 || strcmp(action, "logout") == 0);
}

#define TYPE_SYSTEM    "http://terminology.hl7.org/CodeSystem/audit-event-type"
#define DICOM_SYSTEM   "http://dicom.nema.org/resources/ontology/DCM"
#define SUBTYPE_SYSTEM "http://hl7.org/fhir/restful-interaction"
#define ACTION_SYSTEM  "urn:concerto:audit-action"

/* ---- rendering ----------------------------------------------------------------------------- */

static void add_string(buf_t *out, const char *s)
{
    buf_addch(out, '"');
    buf_add_json_escaped(out, s, strlen(s));
    buf_addch(out, '"');
}

/* base64Binary: RFC 4648 base64 with padding. */
static void add_base64(buf_t *out, const char *data, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = (const unsigned char *)data;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        buf_addch(out, alphabet[(v >> 18) & 63]);
        buf_addch(out, alphabet[(v >> 12) & 63]);
        buf_addch(out, i + 1 < len ? alphabet[(v >> 6) & 63] : '=');
        buf_addch(out, i + 2 < len ? alphabet[v & 63] : '=');
    }
}

static void add_instant(buf_t *out, int64_t us)
{
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    buf_addf(out, "\"%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ\"", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)(us % 1000000));
}

static const char *outcome_code(int status)
{
    if (status > 0 && status < 400)
        return "0"; /* success */
    if (status >= 400 && status < 500)
        return "4"; /* minor failure: the request was refused */
    if (status == 503)
        return "8"; /* serious failure: try again */
    return "12";    /* major failure */
}

/* Who the user is, when an account of that name is known: "Practitioner/x", "Patient/y". */
typedef struct {
    const char *username;
    const char *reference;
} who_t;

static const char *who_reference(store_conn_t *conn, arena_t *arena, who_t *cache, size_t *ncache,
                                 const char *username)
{
    for (size_t i = 0; i < *ncache; i++)
        if (strcmp(cache[i].username, username) == 0)
            return cache[i].reference;
    store_account_t account;
    err_t err = ERR_INIT;
    const char *reference = NULL;
    if (store_account_get(conn, username, arena, &account, &err) == ERR_OK) {
        if (account.practitioner_id)
            reference = arena_printf(arena, "Practitioner/%s", account.practitioner_id);
        else if (account.patient_id)
            reference = arena_printf(arena, "Patient/%s", account.patient_id);
    }
    err_release(&err);
    if (*ncache < AUDIT_MAX_COUNT)
        cache[(*ncache)++] = (who_t){username, reference};
    return reference;
}

static void render(const store_audit_row_t *row, const char *who, buf_t *out)
{
    int status = row->outcome ? atoi(row->outcome) : 0;
    const action_t *a = action_find(row->action);
    buf_addf(out, "{\"resourceType\":\"AuditEvent\",\"id\":\"%lld\",\"type\":", (long long)row->id);
    if (is_authentication(row->action))
        buf_addstr(out, "{\"system\":\"" DICOM_SYSTEM "\",\"code\":\"110114\","
                        "\"display\":\"User Authentication\"}");
    else
        buf_addstr(out, "{\"system\":\"" TYPE_SYSTEM "\",\"code\":\"rest\","
                        "\"display\":\"RESTful Operation\"}");
    if (row->action) {
        buf_addstr(out, ",\"subtype\":[{\"system\":\"");
        const char *subtype = a && a->subtype ? a->subtype : row->action;
        if (a && a->subtype && strcmp(row->action, "history") == 0 && !row->resource_id)
            subtype = row->type ? "history-type" : "history-system";
        if (a && a->subtype && strcmp(row->action, "search") == 0 && !row->type)
            subtype = "search-system";
        buf_addstr(out, a && a->subtype ? SUBTYPE_SYSTEM : ACTION_SYSTEM);
        buf_addstr(out, "\",\"code\":");
        add_string(out, subtype);
        buf_addch(out, '}');
        buf_addch(out, ']');
        buf_addf(out, ",\"action\":\"%c\"", a ? a->code : 'E');
    }
    buf_addstr(out, ",\"recorded\":");
    add_instant(out, row->time_us);
    buf_addf(out, ",\"outcome\":\"%s\",\"outcomeDesc\":", outcome_code(status));
    add_string(out, status ? repo_status_text(status) : (row->outcome ? row->outcome : ""));
    /* the user, then the client app */
    buf_addstr(out, ",\"agent\":[{\"type\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/"
                    "CodeSystem/extra-security-role-type\",\"code\":\"humanuser\","
                    "\"display\":\"human user\"}]}");
    if (row->role) {
        buf_addstr(out, ",\"role\":[{\"text\":");
        add_string(out, row->role);
        buf_addstr(out, "}]");
    }
    if (row->user || who) {
        buf_addstr(out, ",\"who\":{");
        if (who) {
            buf_addstr(out, "\"reference\":");
            add_string(out, who);
        }
        if (row->user) {
            buf_addstr(out, who ? ",\"display\":" : "\"display\":");
            add_string(out, row->user);
        }
        buf_addch(out, '}');
    }
    if (row->user) {
        buf_addstr(out, ",\"name\":");
        add_string(out, row->user);
    }
    buf_addstr(out, ",\"requestor\":true");
    if (row->source) {
        buf_addstr(out, ",\"network\":{\"address\":");
        add_string(out, row->source);
        buf_addstr(out, ",\"type\":\"2\"}");
    }
    buf_addch(out, '}');
    if (row->client) {
        buf_addstr(out, ",{\"type\":{\"coding\":[{\"system\":\"" DICOM_SYSTEM "\",\"code\":"
                        "\"110150\",\"display\":\"Application\"}]},\"who\":{\"identifier\":"
                        "{\"value\":");
        add_string(out, row->client);
        buf_addstr(out, "},\"display\":");
        add_string(out, row->client);
        buf_addstr(out, "},\"requestor\":false}");
    }
    buf_addstr(out, "],\"source\":{\"observer\":{\"display\":\"Concerto\"},\"type\":[{\"system\":"
                    "\"http://terminology.hl7.org/CodeSystem/security-source-type\",\"code\":"
                    "\"4\",\"display\":\"Application Server\"}]}");
    /* entities: the patient, then the resource (its query, the detail, the chain seal) */
    buf_addstr(out, ",\"entity\":[");
    bool first = true;
    if (row->patient) {
        buf_addstr(out, "{\"what\":{\"reference\":\"Patient/");
        buf_add_json_escaped(out, row->patient, strlen(row->patient));
        buf_addstr(out, "\"},\"type\":{\"system\":\"http://terminology.hl7.org/CodeSystem/"
                        "audit-entity-type\",\"code\":\"1\",\"display\":\"Person\"},\"role\":"
                        "{\"system\":\"http://terminology.hl7.org/CodeSystem/object-role\","
                        "\"code\":\"1\",\"display\":\"Patient\"}}");
        first = false;
    }
    buf_addstr(out, first ? "{" : ",{");
    bool member = false;
    if (row->type) {
        buf_addstr(out, "\"what\":{\"reference\":\"");
        buf_add_json_escaped(out, row->type, strlen(row->type));
        if (row->resource_id) {
            buf_addch(out, '/');
            buf_add_json_escaped(out, row->resource_id, strlen(row->resource_id));
        }
        buf_addstr(out, "\"}");
        member = true;
    }
    buf_addf(out,
             "%s\"type\":{\"system\":\"http://terminology.hl7.org/CodeSystem/"
             "audit-entity-type\",\"code\":\"2\",\"display\":\"System Object\"}",
             member ? "," : "");
    if (row->query) {
        buf_addstr(out, ",\"query\":\"");
        add_base64(out, row->query, strlen(row->query));
        buf_addch(out, '"');
    }
    if (row->detail || row->seq) { /* no empty arrays */
        buf_addstr(out, ",\"detail\":[");
        if (row->detail) {
            buf_addstr(out, "{\"type\":\"reason\",\"valueString\":");
            add_string(out, row->detail);
            buf_addstr(out, row->seq ? "}," : "}");
        }
        if (row->seq) {
            buf_addf(out, "{\"type\":\"chain-seq\",\"valueString\":\"%lld\"}", (long long)row->seq);
            buf_addstr(out, ",{\"type\":\"chain-hash\",\"valueString\":");
            add_string(out, row->hash ? row->hash : "");
            buf_addch(out, '}');
        }
        buf_addch(out, ']');
    }
    buf_addstr(out, "}]}");
}

/* ---- the API ------------------------------------------------------------------------------ */

/* One date clause narrows [*from, *to). */
static status_t date_clause(const char *value, int64_t *from, int64_t *to, err_t *err)
{
    const char *prefix = "eq";
    const char *date = value;
    if (strlen(value) > 2 && value[0] >= 'a' && value[0] <= 'z' && value[1] >= 'a' &&
        value[1] <= 'z') {
        prefix = value;
        date = value + 2;
    }
    int64_t lo, hi;
    if (!fhir_date_range(date, strlen(date), &lo, &hi, NULL, NULL))
        return err_set(err, ERR_INVALID, "date",
                       "date must be a FHIR date or dateTime such as 2026-03-01 or "
                       "2026-03-01T10:00:00Z, with an optional prefix eq, ge, le, gt or lt, "
                       "not \"%s\"",
                       value);
    int64_t new_from = INT64_MIN, new_to = INT64_MAX;
    if (!strncmp(prefix, "eq", 2)) {
        new_from = lo;
        new_to = hi;
    } else if (!strncmp(prefix, "ge", 2)) {
        new_from = lo;
    } else if (!strncmp(prefix, "gt", 2)) {
        new_from = hi;
    } else if (!strncmp(prefix, "le", 2)) {
        new_to = hi;
    } else if (!strncmp(prefix, "lt", 2)) {
        new_to = lo;
    } else {
        return err_set(err, ERR_INVALID, "date",
                       "the date prefix \"%.2s\" is not supported on AuditEvent (supported: eq, "
                       "ge, le, gt, lt)",
                       prefix);
    }
    if (new_from > *from)
        *from = new_from;
    if (new_to < *to)
        *to = new_to;
    return ERR_OK;
}

/* The actions a comma-separated list of values selects; *out_ok false when one is unknown. */
static action_set_t select_actions(const char *name, const char *list, err_t *err, bool *ok)
{
    action_set_t set = 0;
    const char *p = list;
    *ok = true;
    while (*ok) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char value[64];
        if (len == 0 || len >= sizeof(value)) {
            *ok = false;
            break;
        }
        memcpy(value, p, len);
        value[len] = '\0';
        const char *code = strchr(value, '|') ? strchr(value, '|') + 1 : value;
        action_set_t one = 0;
        for (size_t i = 0; i < NACTIONS; i++) {
            const action_t *a = &actions[i];
            bool match = false;
            if (strcmp(name, "action") == 0)
                match = strlen(code) == 1 && a->code == code[0];
            else if (strcmp(name, "type") == 0)
                match = strcmp(code, is_authentication(a->action) ? "110114" : "rest") == 0;
            else if (a->subtype) /* subtype */
                match = strcmp(code, a->subtype) == 0 || strcmp(code, a->action) == 0 ||
                        (strcmp(a->action, "history") == 0 && !strncmp(code, "history-", 8)) ||
                        (strcmp(a->action, "search") == 0 && !strncmp(code, "search-", 7));
            else
                match = strcmp(code, a->action) == 0;
            if (match)
                one |= (action_set_t)1 << i;
        }
        if (!one)
            *ok = false;
        set |= one;
        if (!comma)
            break;
        p = comma + 1;
    }
    if (!*ok)
        err_set(err, ERR_INVALID, name, "\"%s\" is not a value of the AuditEvent parameter %s",
                list, name);
    return set;
}

/* Who may read the audit trail: administrators, and backend services (a security
 * information system, say) whose token names AuditEvent itself in a system/ scope that reads
 * and searches: a wildcard type is not enough. */
static bool may_read_audit(const repo_caller_t *caller)
{
    if (!caller || caller->kind == REPO_CALLER_ADMIN)
        return true;
    if (caller->kind != REPO_CALLER_SERVICE || !caller->scopes)
        return false;
    for (size_t i = 0; i < caller->scopes->nresources; i++) {
        const scope_resource_t *scope = &caller->scopes->resources[i];
        if (scope->context == SCOPE_SYSTEM && strcmp(scope->type, "AuditEvent") == 0 &&
            !scope->query && (scope->perms & (SCOPE_R | SCOPE_S)) == (SCOPE_R | SCOPE_S))
            return true;
    }
    return false;
}

static void add_query_value(buf_t *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~' || *p == ':' || *p == ',') {
            buf_addch(out, (char)*p);
        } else {
            buf_addch(out, '%');
            buf_addch(out, hex[*p >> 4]);
            buf_addch(out, hex[*p & 15]);
        }
    }
}

/* base/AuditEvent?params (without _page)[&_page=cursor] as a JSON string's content. */
static void add_link(buf_t *out, const http_audit_request_t *r, const char *relation,
                     int64_t cursor)
{
    buf_t url = BUF_INIT;
    buf_addstr(&url, r->base);
    buf_addstr(&url, "/AuditEvent");
    char sep = '?';
    for (size_t i = 0; i < r->nparams; i++) {
        if (!strcmp(r->params[i].name, "_page"))
            continue;
        buf_addch(&url, sep);
        add_query_value(&url, r->params[i].name);
        buf_addch(&url, '=');
        add_query_value(&url, r->params[i].value);
        sep = '&';
    }
    if (cursor)
        buf_addf(&url, "%c_page=%lld", sep, (long long)cursor);
    buf_addf(out, "{\"relation\":\"%s\",\"url\":", relation);
    add_string(out, url.ptr);
    buf_addch(out, '}');
    buf_release(&url);
}

static status_t search(const http_audit_request_t *r, buf_t *out, err_t *err)
{
    store_audit_query_t q = {
        .from_us = INT64_MIN, .to_us = INT64_MAX, .count = AUDIT_DEFAULT_COUNT};
    action_set_t set = ALL_ACTIONS;
    int64_t page = 0;
    for (size_t i = 0; i < r->nparams; i++) {
        const char *name = r->params[i].name, *value = r->params[i].value;
        bool ok = true;
        if (!strcmp(name, "patient")) {
            const char *slash = strstr(value, "Patient/");
            q.patient = slash ? slash + 8 : value;
        } else if (!strcmp(name, "agent")) {
            q.user = value;
        } else if (!strcmp(name, "date")) {
            status_t rc = date_clause(value, &q.from_us, &q.to_us, err);
            if (rc)
                return rc;
        } else if (!strcmp(name, "action") || !strcmp(name, "type") || !strcmp(name, "subtype")) {
            set &= select_actions(name, value, err, &ok);
            if (!ok)
                return err->code;
        } else if (!strcmp(name, "_count")) {
            char *end;
            long n = strtol(value, &end, 10);
            if (!*value || *end || n < 0)
                return err_set(err, ERR_INVALID, "_count",
                               "_count must be a non-negative integer, not \"%s\"", value);
            q.count = n > AUDIT_MAX_COUNT ? AUDIT_MAX_COUNT : (size_t)n;
        } else if (!strcmp(name, "_page")) {
            char *end;
            page = strtoll(value, &end, 10);
            if (!*value || *end || page <= 0)
                return err_set(err, ERR_INVALID, "_page", "the paging cursor \"%s\" is not valid",
                               value);
        } else if (strcmp(name, "_format") && strcmp(name, "_pretty")) {
            return err_set(err, ERR_INVALID, name,
                           "AuditEvent does not support the search parameter \"%s\" "
                           "(supported: patient, agent, date, action, type, subtype, _count)",
                           name);
        }
    }
    q.before_id = page;
    if (set != ALL_ACTIONS) {
        buf_t list = BUF_INIT;
        buf_addch(&list, ',');
        for (size_t i = 0; i < NACTIONS; i++)
            if (set & ((action_set_t)1 << i))
                buf_addf(&list, "%s,", actions[i].action);
        q.actions = arena_strdup(r->arena, list.ptr);
        buf_release(&list);
    }
    store_audit_row_t *rows = NULL;
    size_t n = 0;
    bool more = false;
    if (set && q.count && q.from_us < q.to_us) {
        q.count++; /* one more tells whether there is a next page */
        status_t rc = store_audit_search(r->conn, &q, r->arena, &rows, &n, err);
        if (rc)
            return rc;
        q.count--;
        more = n > q.count;
        if (more)
            n = q.count;
    }
    buf_addstr(out, "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"link\":[");
    add_link(out, r, "self", page);
    if (more) {
        buf_addch(out, ',');
        add_link(out, r, "next", rows[n - 1].id);
    }
    buf_addch(out, ']');
    who_t *cache = arena_alloc(r->arena, (n + 1) * sizeof(*cache));
    size_t ncache = 0;
    for (size_t i = 0; i < n; i++) {
        buf_addstr(out, i ? ",{\"fullUrl\":" : ",\"entry\":[{\"fullUrl\":");
        add_string(out,
                   arena_printf(r->arena, "%s/AuditEvent/%lld", r->base, (long long)rows[i].id));
        buf_addstr(out, ",\"resource\":");
        const char *who =
            rows[i].user ? who_reference(r->conn, r->arena, cache, &ncache, rows[i].user) : NULL;
        render(&rows[i], who, out);
        buf_addstr(out, ",\"search\":{\"mode\":\"match\"}}");
    }
    buf_addstr(out, n ? "]}" : "}");
    return ERR_OK;
}

status_t http__audit_api(const http_audit_request_t *r, buf_t *out, err_t *err)
{
    if (!may_read_audit(r->caller))
        return err_set(err, ERR_FORBIDDEN, NULL,
                       "only administrators, and backend services granted "
                       "system/AuditEvent.rs, may read the audit trail");
    if (!r->id)
        return search(r, out, err);
    char *end;
    long long id = strtoll(r->id, &end, 10);
    if (!*r->id || *end || id <= 0)
        return err_set(err, ERR_NOT_FOUND, NULL, "AuditEvent/%s is not known", r->id);
    store_audit_row_t row;
    status_t rc = store_audit_get(r->conn, id, r->arena, &row, err);
    if (rc == ERR_NOT_FOUND) {
        err_reset(err);
        return err_set(err, ERR_NOT_FOUND, NULL, "AuditEvent/%s is not known", r->id);
    }
    if (rc)
        return rc;
    who_t cache[1];
    size_t ncache = 0;
    render(&row, row.user ? who_reference(r->conn, r->arena, cache, &ncache, row.user) : NULL, out);
    return ERR_OK;
}

void http__audit_capability(buf_t *out)
{
    static const struct {
        const char *name, *type;
    } params[] = {
        {"patient", "reference"}, {"agent", "reference"}, {"date", "date"},
        {"action", "token"},      {"type", "token"},      {"subtype", "token"},
    };
    buf_addstr(out,
               "{\"type\":\"AuditEvent\",\"profile\":\"http://hl7.org/fhir/StructureDefinition/"
               "AuditEvent\",\"documentation\":\"The audit trail, read-only: every read, "
               "search and write of health data and every login, newest first; "
               "administrators only.\",\"interaction\":[{\"code\":\"read\"},{\"code\":"
               "\"search-type\"}],\"searchParam\":[");
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
        buf_addf(out,
                 "%s{\"name\":\"%s\",\"definition\":\"http://hl7.org/fhir/SearchParameter/"
                 "AuditEvent-%s\",\"type\":\"%s\"}",
                 i ? "," : "", params[i].name, params[i].name, params[i].type);
    buf_addstr(out, "]}");
}
