/*
 * bundle.c - batch and transaction Bundles.
 *
 * Invariants: prepare never touches the store; the transaction function only runs entries
 * that prepare accepted, in the order the specification gives for transactions (DELETE, POST,
 * PUT and PATCH, then GET and HEAD; run_transaction says how references to conditional
 * entries and conditional references refine it) and in Bundle order for batches; the
 * response lists the entries in Bundle order whatever order they ran in.
 */
#include "repo/bundle.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/jv.h"
#include "base/mem.h"
#include "base/url.h"
#include "fhir/defs.h"
#include "fhir/outcome.h"
#include "repo/searchset.h"

typedef struct {
    const char *from; /* a fullUrl */
    const char *to;   /* "Type/id" */
} mapping_t;

const char *repo_status_text(int status)
{
    switch (status) {
    case 200: return "200 OK";
    case 201: return "201 Created";
    case 204: return "204 No Content";
    case 400: return "400 Bad Request";
    case 401: return "401 Unauthorized";
    case 403: return "403 Forbidden";
    case 404: return "404 Not Found";
    case 405: return "405 Method Not Allowed";
    case 409: return "409 Conflict";
    case 410: return "410 Gone";
    case 412: return "412 Precondition Failed";
    case 413: return "413 Payload Too Large";
    case 415: return "415 Unsupported Media Type";
    case 422: return "422 Unprocessable Entity";
    case 503: return "503 Service Unavailable";
    default: return status >= 500 ? "500 Internal Server Error" : "400 Bad Request";
    }
}

static void release_json(void *data)
{
    json_decref(data);
}

static const char *string_member(const json_t *object, const char *name)
{
    json_t *v = json_object_get(object, name);
    return jv_is_string(v) ? json_string_value(v) : NULL;
}

/* The path of request.url in segments: "Type", "Type/id", "Type/id/_history/N",
 * "Type/id/Type2" (a compartment), or none (a search of all types). */
typedef struct {
    const char *parts[4];
    size_t lens[4], n;
} path_t;

static status_t split_path(const char *url, size_t len, path_t *out, err_t *err)
{
    out->n = 0;
    const char *p = url, *end = url + len;
    while (p < end && *p == '/')
        p++;
    while (p < end) {
        if (out->n == 4)
            return err_set(err, ERR_INVALID, NULL, "\"%s\" is not a request URL this server knows",
                           url);
        const char *slash = memchr(p, '/', (size_t)(end - p));
        size_t n = slash ? (size_t)(slash - p) : (size_t)(end - p);
        out->parts[out->n] = p;
        out->lens[out->n++] = n;
        p += n;
        while (p < end && *p == '/')
            p++;
    }
    return ERR_OK;
}

static status_t check_id(const char *s, size_t len, err_t *err)
{
    if (!repo_id_valid(s, len))
        return err_set(err, ERR_INVALID, NULL,
                       "\"%.*s\" is not a valid id (1 to 64 of A-Z a-z 0-9 - .)", (int)len, s);
    return ERR_OK;
}

static status_t resource_type(const char *s, size_t len, const fhir_type_t **out, err_t *err)
{
    *out = fhir_resource_type_find(s, len);
    if (!*out)
        return err_set(err, ERR_NOT_FOUND, NULL, "\"%.*s\" is not a FHIR R4 resource type",
                       (int)len, s);
    return ERR_OK;
}

/* Plans the search of a GET entry: path (all types, a type, or a compartment) and query. */
static status_t plan_search(repo_bundle_t *bundle, repo_entry_t *e, const path_t *path,
                            const char *query, size_t len, err_t *err)
{
    arena_t *arena = bundle->arena;
    repo_search_t search = {
        .now_us = clock_now_us(), .base = bundle->base, .caller = bundle->caller, .note = &e->note};
    status_t rc;
    const fhir_type_t *type = NULL, *compartment = NULL;
    if (path->n >= 1 && (rc = resource_type(path->parts[0], path->lens[0], &type, err)))
        return rc;
    if (path->n == 3) {
        compartment = type;
        if ((rc = check_id(path->parts[1], path->lens[1], err)) ||
            (rc = resource_type(path->parts[2], path->lens[2], &type, err)))
            return rc;
        search.compartment_type = compartment->name;
        search.compartment_id = arena_strndup(arena, path->parts[1], path->lens[1]);
    }
    search.type = type;
    url_pair_t *all;
    size_t nall = url_query_split(arena, query, len, &all);
    fhir_search_pair_t *pairs = arena_zalloc(arena, (nall ? nall : 1) * sizeof(*pairs));
    size_t n = 0;
    for (size_t i = 0; i < nall; i++) {
        if (all[i].name_len == 5 && !memcmp(all[i].name, "_page", 5))
            search.page = all[i].value;
        else
            pairs[n++] = all[i];
    }
    search.pairs = pairs;
    search.npairs = n;
    if ((rc = repo_search_plan(bundle->conn, &search, arena, &e->plan, &e->query, err)))
        return rc;
    e->search_url = compartment ? arena_printf(arena, "%s/%s/%s/%s", bundle->base,
                                               compartment->name, search.compartment_id, type->name)
                    : type      ? arena_printf(arena, "%s/%s", bundle->base, type->name)
                                : bundle->base;
    e->type = type ? type->name : NULL;
    e->kind = REPO_ENTRY_SEARCH;
    return ERR_OK;
}

/*
 * Checks an entry's request and decides what it is: a read, a search (planned here), a write
 * or a conditional write (its criteria parsed here); the resource is prepared later.
 */
static status_t classify(repo_bundle_t *bundle, repo_entry_t *e, const json_t *entry, err_t *err)
{
    arena_t *arena = bundle->arena;
    json_t *request = json_object_get(entry, "request");
    if (!json_is_object(request))
        return err_set(err, ERR_INVALID, NULL, "the entry has no request");
    e->method = string_member(request, "method");
    e->url = string_member(request, "url");
    if (!e->method || !e->url)
        return err_set(err, ERR_INVALID, NULL, "request.method and request.url are required");
    const char *m = e->method, *url = e->url;
    bool get = !strcmp(m, "GET") || !strcmp(m, "HEAD");
    if (!get && strcmp(m, "POST") && strcmp(m, "PUT") && strcmp(m, "DELETE") && strcmp(m, "PATCH"))
        return err_set(err, ERR_INVALID, NULL, "\"%s\" is not an HTTP method of FHIR", m);
    const char *mark = strchr(url, '?');
    size_t path_len = mark ? (size_t)(mark - url) : strlen(url);
    const char *scheme = strstr(url, "://");
    if (scheme && scheme < url + path_len)
        return err_set(err, ERR_INVALID, NULL,
                       "request.url must be relative to the base (\"Patient/123\"), not \"%s\"",
                       url);
    const char *query = mark ? mark + 1 : NULL;
    size_t query_len = query ? strlen(query) : 0;
    path_t path;
    status_t rc = split_path(url, path_len, &path, err);
    if (rc)
        return rc;
    const char *if_none_exist = string_member(request, "ifNoneExist");
    if (if_none_exist && strcmp(m, "POST") != 0)
        return err_set(err, ERR_INVALID, NULL, "request.ifNoneExist belongs to a POST, not a %s",
                       m);

    bool history = path.n >= 3 && path.lens[2] == 8 && !memcmp(path.parts[2], "_history", 8);
    if (history && path.n == 3)
        return err_set(err, ERR_INVALID, NULL,
                       "history (\"%s\") is not available in a Bundle: GET it on its own", url);
    if (get && (path.n == 2 || history)) {
        /* a read or a vread */
        if (query_len)
            return err_set(err, ERR_INVALID, NULL,
                           "a read in a Bundle takes no parameters (\"%s\")", url);
        const fhir_type_t *type;
        if ((rc = resource_type(path.parts[0], path.lens[0], &type, err)) ||
            (rc = check_id(path.parts[1], path.lens[1], err)))
            return rc;
        e->type = type->name;
        e->id = arena_strndup(arena, path.parts[1], path.lens[1]);
        if (history) {
            char *end;
            char *text = arena_strndup(arena, path.parts[3], path.lens[3]);
            long long v = strtoll(text, &end, 10);
            if (!*text || *end || v <= 0)
                return err_set(err, ERR_INVALID, NULL, "\"%s\" is not a version id", text);
            e->version = v;
        }
        e->kind = REPO_ENTRY_READ;
        if (bundle->caller && !bundle->conn)
            return err_set(err, ERR_INTERNAL, NULL, "a caller's Bundle needs a connection");
        /* a read of the caller's: scopes now, what they may see in the transaction */
        return repo_access_visibility(bundle->conn, bundle->caller, e->type, SCOPE_R, NULL, NULL,
                                      arena, &e->access, err);
    }
    if (get) {
        if (path.n == 0 || path.n == 1 || path.n == 3)
            return plan_search(bundle, e, &path, query ? query : "", query_len, err);
        return err_set(err, ERR_INVALID, NULL, "\"%s\" is not a request URL this server knows",
                       url);
    }

    /* writes: [type] (POST, conditional PUT and DELETE) or [type]/[id] */
    e->kind = REPO_ENTRY_WRITE;
    if (path.n == 0 || path.n > 2)
        return err_set(err, ERR_INVALID, NULL, "\"%s\" is not a request URL this server knows",
                       url);
    const fhir_type_t *type;
    if ((rc = resource_type(path.parts[0], path.lens[0], &type, err)))
        return rc;
    e->type = type->name;
    if (strcmp(e->type, "AuditEvent") == 0)
        return err_set(err, ERR_METHOD, NULL,
                       "the audit trail cannot be changed: AuditEvent is read-only");
    if (path.n == 2) {
        if ((rc = check_id(path.parts[1], path.lens[1], err)))
            return rc;
        e->id = arena_strndup(arena, path.parts[1], path.lens[1]);
    }
    bool has_id = e->id != NULL;
    if (!strcmp(m, "POST")) {
        if (has_id)
            return err_set(err, ERR_INVALID, NULL, "POST goes to a type (\"%s\"), not to an id",
                           url);
        if (mark)
            return err_set(err, ERR_INVALID, NULL,
                           "POST takes no parameters (\"%s\"): the criteria of a conditional "
                           "create go in request.ifNoneExist",
                           url);
        if (if_none_exist) {
            e->cond = arena_zalloc(arena, sizeof(*e->cond));
            return repo_condition_parse(&e->cond->condition, type, if_none_exist,
                                        strlen(if_none_exist), bundle->conn, arena, err);
        }
        return ERR_OK;
    }
    if (!strcmp(m, "PATCH")) {
        if (!has_id || mark)
            return err_set(err, ERR_INVALID, NULL,
                           "PATCH needs an id (\"%s\"): conditional PATCH is not supported", url);
        return ERR_OK;
    }
    /* PUT, DELETE */
    if (has_id && mark)
        return err_set(err, ERR_INVALID, NULL,
                       "\"%s\" has both an id and search criteria: %s takes one or the other", url,
                       m);
    if (!has_id && !mark)
        return err_set(err, ERR_INVALID, NULL,
                       "%s needs an id (\"%s/[id]\") or search criteria (\"%s?identifier=...\")", m,
                       url, url);
    if (mark) {
        e->cond = arena_zalloc(arena, sizeof(*e->cond));
        e->cond->multiple = !strcmp(m, "DELETE") && bundle->multiple_delete;
        return repo_condition_parse(&e->cond->condition, type, query, query_len, bundle->conn,
                                    arena, err);
    }
    return ERR_OK;
}

static int64_t parse_if_match(const json_t *request, bool *ok)
{
    *ok = true;
    const char *s = string_member(request, "ifMatch");
    if (!s)
        return 0;
    if ((s[0] == 'W' || s[0] == 'w') && s[1] == '/')
        s += 2;
    if (*s == '"')
        s++;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (v <= 0 || (*end && !(end[0] == '"' && end[1] == '\0'))) {
        *ok = false;
        return 0;
    }
    return v;
}

/*
 * A reference settled when its entry runs: one to the fullUrl of a conditional entry (whose
 * id the transaction decides), or a conditional reference ("Patient?identifier=...").
 */
struct repo_late_ref {
    json_t *value;              /* the reference's string, in the Bundle */
    const char *text;           /* the reference as written */
    size_t target;              /* the entry whose fullUrl it names, or SIZE_MAX */
    repo_condition_t condition; /* a conditional reference */
};

/* What rewriting the references of one entry's resource needs. */
typedef struct {
    repo_bundle_t *bundle;
    repo_entry_t *e;
    const mapping_t *map; /* fullUrls whose ids prepare knows */
    size_t nmap;
    const char **late_urls; /* per entry: its fullUrl when the transaction decides its id */
    size_t cap;
    status_t rc;
} refs_t;

/* The type of a conditional reference "Type?criteria", else NULL. */
static const fhir_type_t *conditional_reference_type(const char *ref)
{
    const char *mark = strchr(ref, '?');
    if (!mark || mark == ref || memchr(ref, '/', (size_t)(mark - ref)) ||
        memchr(ref, ':', (size_t)(mark - ref)))
        return NULL;
    return fhir_resource_type_find(ref, (size_t)(mark - ref));
}

static repo_late_ref_t *add_late(refs_t *r, json_t *value, const char *text)
{
    repo_entry_t *e = r->e;
    if (e->nlate == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4;
        repo_late_ref_t *late = arena_zalloc(r->bundle->arena, cap * sizeof(*late));
        if (e->nlate)
            memcpy(late, e->late, e->nlate * sizeof(*late));
        e->late = late;
        r->cap = cap;
    }
    repo_late_ref_t *l = &e->late[e->nlate++];
    l->value = value;
    l->text = arena_strdup(r->bundle->arena, text);
    l->target = SIZE_MAX;
    return l;
}

static void reference(refs_t *r, json_t *value)
{
    const char *ref = json_string_value(value);
    for (size_t i = 0; i < r->nmap; i++) {
        if (!strcmp(ref, r->map[i].from)) {
            json_string_set(value, r->map[i].to);
            return;
        }
    }
    for (size_t i = 0; r->late_urls && i < r->bundle->nentries; i++) {
        if (r->late_urls[i] && !strcmp(ref, r->late_urls[i])) {
            add_late(r, value, ref)->target = i;
            return;
        }
    }
    const fhir_type_t *type = conditional_reference_type(ref);
    if (!type || r->rc)
        return;
    repo_entry_t *e = r->e;
    if (!r->bundle->transaction) {
        r->rc = err_set(&e->err, ERR_INVALID, NULL,
                        "the conditional reference \"%s\" can only be resolved in a transaction, "
                        "not in a batch",
                        ref);
        return;
    }
    repo_late_ref_t *l = add_late(r, value, ref);
    err_t err = ERR_INIT;
    if (repo_condition_parse(&l->condition, type, ref, strlen(ref), r->bundle->conn,
                             r->bundle->arena, &err)) {
        for (size_t i = 0; i < err.nissues; i++)
            err_add(&e->err, err.issues[i].code, err.issues[i].severity, NULL,
                    "the conditional reference \"%s\": %s", ref, err.issues[i].message);
        r->rc = e->err.code;
    } else if (repo_condition_restrict(&l->condition, r->bundle->conn, r->bundle->caller,
                                       r->bundle->base, r->bundle->arena, &err)) {
        for (size_t i = 0; i < err.nissues; i++)
            err_add(&e->err, err.issues[i].code, err.issues[i].severity, NULL,
                    "the conditional reference \"%s\": %s", ref, err.issues[i].message);
        r->rc = e->err.code;
    }
    err_release(&err);
    e->conditional_refs = true;
}

/* Rewrites the references of an entry's resource to fullUrls whose ids are known, and lists
 * the ones the transaction settles. */
static void scan_references(refs_t *r, json_t *value)
{
    if (json_is_object(value)) {
        const char *key;
        json_t *member;
        json_object_foreach(value, key, member)
        {
            if (!strcmp(key, "reference") && jv_is_string(member))
                reference(r, member);
            else
                scan_references(r, member);
        }
    } else if (json_is_array(value)) {
        for (size_t i = 0; i < json_array_size(value); i++)
            scan_references(r, json_array_get(value, i));
    }
}

/* Decodes standard base64 (padding optional); NULL when malformed. */
static char *base64_decode(arena_t *arena, const char *in, size_t *out_len)
{
    size_t len = strlen(in);
    char *out = arena_alloc(arena, len / 4 * 3 + 4);
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+')
            v = 62;
        else if (c == '/')
            v = 63;
        else if (c == '=')
            break;
        else
            return NULL;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (char)((acc >> bits) & 0xFF);
        }
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

/* Prepares a write entry's resource (after references were rewritten). */
static status_t prepare_write(repo_bundle_t *bundle, repo_entry_t *e, json_t *entry,
                              const char *new_id, int64_t if_match, err_t *err)
{
    arena_t *arena = bundle->arena;
    if (e->cond) {
        e->cond->write = &e->write;
        e->cond->base = bundle->base;
    }
    json_t *resource = json_object_get(entry, "resource");
    const char *m = e->method;
    if (!strcmp(m, "DELETE"))
        return repo_prepare_delete(&e->write, e->type, e->id ? e->id : "", if_match, arena, err);
    if (!json_is_object(resource))
        return err_set(err, ERR_INVALID, NULL, "%s needs a resource in the entry", m);
    e->resource = resource;
    if (!strcmp(m, "PATCH")) {
        const char *rt = string_member(resource, "resourceType");
        /* a FHIRPath Patch is a Parameters resource */
        if (rt && strcmp(rt, "Parameters") == 0)
            return repo_prepare_fhirpath_patch(&e->write, e->type, e->id, resource, if_match, arena,
                                               err);
        /* a JSON Patch travels as a Binary */
        const char *content_type = string_member(resource, "contentType");
        const char *data = string_member(resource, "data");
        if (!rt || strcmp(rt, "Binary") != 0 || !content_type ||
            strncmp(content_type, "application/json-patch+json", 27) != 0 || !data)
            return err_set(err, ERR_MEDIA_TYPE, NULL,
                           "PATCH in a Bundle takes a Parameters resource (a FHIRPath Patch) "
                           "or a Binary with contentType application/json-patch+json and the "
                           "patch in data");
        size_t len;
        char *patch = base64_decode(arena, data, &len);
        if (!patch)
            return err_set(err, ERR_INVALID, NULL, "Binary.data is not valid base64");
        return repo_prepare_patch(&e->write, e->type, e->id, patch, len, if_match, arena, err);
    }
    const char *rt = string_member(resource, "resourceType");
    if (!rt || strcmp(rt, e->type) != 0)
        return err_set(err, ERR_INVALID, NULL, "the resource is a %s but the request is for %s",
                       rt ? rt : "resource without resourceType", e->type);
    if (!strcmp(m, "POST"))
        return repo_prepare_resource(&e->write, REPO_CREATE, resource, new_id, 0, arena, err);
    if (e->cond)
        return repo_prepare_cond_update_resource(&e->write, resource, if_match, arena,
                                                 &e->cond->body_id, err);
    return repo_prepare_resource(&e->write, REPO_UPDATE, resource, e->id, if_match, arena, err);
}

/* A write entry of the caller's: checked as theirs in the transaction, its criteria
 * restricted to what they may see. */
static status_t prepare_access(repo_bundle_t *bundle, repo_entry_t *e, err_t *err)
{
    repo_write_t *w = &e->write;
    w->caller = bundle->caller;
    if (w->caller && !bundle->conn)
        return err_set(err, ERR_INTERNAL, NULL, "a caller's Bundle needs a connection");
    if (e->cond)
        return repo_cond_prepare_access(bundle->conn, e->cond, err);
    return repo_access_prepare_write(bundle->conn, w, err);
}

/* Moves the issues of src into dst with "entry N (METHOD url): " before each message. */
static void name_entry(err_t *dst, const repo_entry_t *e, err_t *src)
{
    for (size_t i = 0; i < src->nissues; i++) {
        err_issue_t *issue = &src->issues[i];
        err_add(dst, issue->code, issue->severity, issue->expression, "entry %zu (%s %s): %s",
                e->index, e->method ? e->method : "?", e->url ? e->url : "?", issue->message);
    }
    if (src->log_detail && !dst->log_detail)
        err_log_detail(dst, "%s", src->log_detail);
    err_reset(src);
}

status_t repo_bundle_prepare(repo_bundle_t *bundle, const char *body, size_t len, const char *base,
                             bool multiple_delete, store_conn_t *conn, arena_t *arena, err_t *err)
{
    const repo_caller_t *caller = bundle->caller;
    memset(bundle, 0, sizeof(*bundle));
    bundle->caller = caller;
    bundle->conn = conn;
    bundle->arena = arena;
    bundle->base = base;
    bundle->multiple_delete = multiple_delete;
    json_t *root = jv_parse(body, len, err);
    if (!root)
        return err->code;
    arena_cleanup_add(arena, release_json, root);
    if (!json_is_object(root))
        return err_set(err, ERR_STRUCTURE, NULL, "the body must be a JSON object (a Bundle)");
    const char *rt = string_member(root, "resourceType");
    if (!rt || strcmp(rt, "Bundle") != 0)
        return err_set(err, ERR_INVALID, NULL,
                       "POST to the base URL takes a Bundle of type batch or transaction, "
                       "not a %s",
                       rt ? rt : "resource without resourceType");
    const char *type = string_member(root, "type");
    if (!type || (strcmp(type, "batch") != 0 && strcmp(type, "transaction") != 0))
        return err_set(err, ERR_INVALID, "Bundle.type",
                       "POST to the base URL takes a Bundle of type batch or transaction, not "
                       "\"%s\"",
                       type ? type : "(none)");
    bundle->transaction = !strcmp(type, "transaction");
    json_t *entries = json_object_get(root, "entry");
    if (entries && !json_is_array(entries))
        return err_set(err, ERR_STRUCTURE, "Bundle.entry", "Bundle.entry must be an array");
    size_t n = json_array_size(entries);
    bundle->nentries = n;
    bundle->entries = arena_zalloc(arena, (n ? n : 1) * sizeof(repo_entry_t));
    mapping_t *map = arena_zalloc(arena, (n ? n : 1) * sizeof(mapping_t));
    size_t nmap = 0;
    const char **new_ids = arena_zalloc(arena, (n ? n : 1) * sizeof(char *));
    const char **late_urls = NULL;

    /* 1: requests, ids, and the fullUrl map */
    for (size_t i = 0; i < n; i++) {
        repo_entry_t *e = &bundle->entries[i];
        e->index = i;
        err_init(&e->err);
        json_t *entry = json_array_get(entries, i);
        if (!json_is_object(entry))
            e->rc = err_set(&e->err, ERR_STRUCTURE, NULL, "the entry must be an object");
        else
            e->rc = classify(bundle, e, entry, &e->err);
        if (e->rc)
            continue;
        const char *full_url = string_member(entry, "fullUrl");
        if (!strcmp(e->method, "POST"))
            new_ids[i] = repo_new_id(arena);
        if (!full_url || !bundle->transaction || e->kind != REPO_ENTRY_WRITE ||
            !strcmp(e->method, "DELETE"))
            continue;
        if (e->cond) {
            /* the transaction decides its id: references to it are settled then */
            if (!late_urls)
                late_urls = arena_zalloc(arena, n * sizeof(char *));
            late_urls[i] = full_url;
        } else {
            map[nmap].from = full_url;
            map[nmap].to = arena_printf(arena, "%s/%s", e->type, new_ids[i] ? new_ids[i] : e->id);
            nmap++;
        }
    }
    /* 2: a transaction may not touch one resource twice */
    for (size_t i = 0; bundle->transaction && i < n; i++) {
        repo_entry_t *a = &bundle->entries[i];
        if (a->rc || !a->id || a->kind != REPO_ENTRY_WRITE)
            continue;
        for (size_t j = i + 1; j < n; j++) {
            repo_entry_t *b = &bundle->entries[j];
            if (!b->rc && b->id && b->kind == REPO_ENTRY_WRITE && !strcmp(a->type, b->type) &&
                !strcmp(a->id, b->id))
                b->rc = err_set(&b->err, ERR_INVALID, NULL,
                                "%s/%s is also written by entry %zu: a transaction may write a "
                                "resource only once",
                                b->type, b->id, a->index);
        }
    }
    /* 3: references between entries, then each resource */
    for (size_t i = 0; i < n; i++) {
        repo_entry_t *e = &bundle->entries[i];
        if (e->rc || e->kind != REPO_ENTRY_WRITE)
            continue;
        json_t *entry = json_array_get(entries, i);
        json_t *resource = json_object_get(entry, "resource");
        if (resource) {
            refs_t r = {.bundle = bundle, .e = e, .map = map, .nmap = nmap, .late_urls = late_urls};
            scan_references(&r, resource);
            if ((e->rc = r.rc))
                continue;
        }
        bool ok;
        int64_t if_match = parse_if_match(json_object_get(entry, "request"), &ok);
        if (!ok)
            e->rc = err_set(&e->err, ERR_INVALID, NULL,
                            "request.ifMatch must be an ETag such as W/\"3\"");
        else
            e->rc = prepare_write(bundle, e, entry, new_ids[i], if_match, &e->err);
        if (!e->rc)
            e->rc = prepare_access(bundle, e, &e->err);
    }
    bundle->access_for = caller;
    for (size_t i = 0; i < n; i++) {
        repo_entry_t *e = &bundle->entries[i];
        e->prepared = e->rc == ERR_OK;
        if (e->rc && bundle->transaction) {
            bundle->failed = i;
            name_entry(err, e, &e->err);
            return err->code;
        }
    }
    return ERR_OK;
}

/* The reference to what an entry that ran wrote or matched: "Type/id". */
static const char *target_reference(const repo_bundle_t *bundle, const repo_entry_t *t)
{
    const repo_write_t *w = &t->write;
    const char *id = t->cond && t->cond->matched ? w->result.id : w->id;
    return arena_printf(bundle->arena, "%s/%s", w->type, id);
}

/* Settles the entry's late references and serializes its resource again. */
static status_t resolve_late(store_txn_t *txn, repo_bundle_t *bundle, repo_entry_t *e, err_t *err)
{
    for (size_t i = 0; i < e->nlate; i++) {
        repo_late_ref_t *l = &e->late[i];
        if (l->target != SIZE_MAX) {
            const repo_entry_t *t = &bundle->entries[l->target];
            if (!t->ran)
                return err_set(err, ERR_INVALID, NULL,
                               "the reference \"%s\" names entry %zu, whose id is not known yet",
                               l->text, t->index);
            json_string_set(l->value, target_reference(bundle, t));
            continue;
        }
        store_version_t *found;
        size_t n;
        bool more;
        status_t rc = repo_condition_find(txn, &l->condition, bundle->base, 1, bundle->arena,
                                          &found, &n, &more, err);
        if (rc)
            return rc;
        if (more)
            return err_set(err, ERR_MULTIPLE_MATCHES, NULL,
                           "the conditional reference \"%s\" matches more than one %s resource",
                           l->text, l->condition.type->name);
        if (n == 0)
            return err_set(err, ERR_INVALID, NULL,
                           "the conditional reference \"%s\" matches no %s resource", l->text,
                           l->condition.type->name);
        json_string_set(l->value, arena_printf(bundle->arena, "%s/%s", found[0].type, found[0].id));
    }
    return repo_write_refresh(&e->write, e->resource, err);
}

/* Whether entry f (not e) writes type/id: its own id, or the one its conditional settled. */
static bool writes(const repo_entry_t *f, const char *type, const char *id)
{
    if (f->kind != REPO_ENTRY_WRITE || !f->prepared || strcmp(f->type, type) != 0)
        return false;
    if (!f->cond)
        return f->id && !strcmp(f->id, id);
    if (!f->ran || f->write.noop || f->cond->matched || f->write.action == REPO_CREATE)
        return false;
    if (f->cond->ndeletes) {
        for (size_t i = 0; i < f->cond->ndeletes; i++)
            if (!strcmp(f->cond->deletes[i].id, id))
                return true;
        return false;
    }
    return !strcmp(f->write.id, id);
}

/* A transaction's conditional update or delete may not settle on a resource that another
 * entry writes. */
static status_t check_identity(const repo_bundle_t *bundle, const repo_entry_t *e, err_t *err)
{
    const repo_cond_t *c = e->cond;
    const repo_write_t *w = &e->write;
    if (w->noop || c->matched || w->action == REPO_CREATE)
        return ERR_OK;
    size_t nids = c->ndeletes ? c->ndeletes : 1;
    for (size_t k = 0; k < nids; k++) {
        const char *id = c->ndeletes ? c->deletes[k].id : w->id;
        for (size_t i = 0; i < bundle->nentries; i++) {
            const repo_entry_t *f = &bundle->entries[i];
            if (f != e && writes(f, w->type, id))
                return err_set(err, ERR_INVALID, NULL,
                               "the criteria \"%s\" settle on %s/%s, which entry %zu also "
                               "writes: a transaction may write a resource only once",
                               c->condition.text, w->type, id, f->index);
        }
    }
    return ERR_OK;
}

typedef struct {
    repo_bundle_t *bundle;
    repo_entry_t *e;
} run_t;

static status_t run_entry(store_txn_t *txn, void *arg, err_t *err)
{
    run_t *run = arg;
    repo_bundle_t *bundle = run->bundle;
    repo_entry_t *e = run->e;
    e->ran = true;
    status_t rc;
    switch (e->kind) {
    case REPO_ENTRY_SEARCH: return store_txn_search(txn, &e->query, bundle->arena, &e->found, err);
    case REPO_ENTRY_READ:
        if (bundle->caller)
            return repo__access_read_txn(txn, bundle->caller, e->access, e->type, e->id, e->version,
                                         bundle->arena, &e->read, &e->note, err);
        rc = store_txn_read(txn, e->type, e->id, e->version, bundle->arena, &e->read, err);
        if (!rc && e->read.deleted)
            rc = err_set(err, ERR_GONE, NULL, "%s/%s is deleted", e->type, e->id);
        return rc;
    case REPO_ENTRY_WRITE: break;
    }
    if (!e->write.caller)
        e->write.caller = bundle->caller; /* recorded in the audit trail as the Bundle's */
    if (e->nlate && (rc = resolve_late(txn, bundle, e, err)))
        return rc;
    if (!e->cond)
        return repo_write_txn(txn, &e->write, err);
    if ((rc = repo_cond_resolve(txn, e->cond, err)))
        return rc;
    if (bundle->transaction && (rc = check_identity(bundle, e, err)))
        return rc;
    return repo_cond_apply(txn, e->cond, err);
}

/* Transaction order: DELETE, POST, PUT and PATCH, GET and HEAD. */
static int phase(const repo_entry_t *e)
{
    if (e->kind != REPO_ENTRY_WRITE)
        return 3;
    if (!strcmp(e->method, "DELETE"))
        return 0;
    if (!strcmp(e->method, "POST"))
        return 1;
    return 2;
}

/* The entries whose ids e's references wait for have run. */
static bool ready(const repo_bundle_t *bundle, const repo_entry_t *e)
{
    for (size_t i = 0; i < e->nlate; i++)
        if (e->late[i].target != SIZE_MAX && !bundle->entries[e->late[i].target].ran)
            return false;
    return true;
}

static status_t run_in_transaction(store_txn_t *txn, repo_bundle_t *bundle, repo_entry_t *e,
                                   err_t *err)
{
    run_t run = {bundle, e};
    e->rc = run_entry(txn, &run, &e->err);
    if (e->rc) {
        bundle->failed = e->index;
        name_entry(err, e, &e->err);
        return err->code;
    }
    return ERR_OK;
}

/*
 * A transaction runs its writes by phase (DELETE, POST, PUT and PATCH), in Bundle order within
 * a phase, with two refinements: an entry whose references name a conditional entry waits
 * until that entry has run (even into a later phase), and within a phase the entries with
 * conditional references run after the others, so their searches see what the phase created.
 * Then the reads and searches, in Bundle order.
 */
static status_t run_transaction(store_txn_t *txn, repo_bundle_t *bundle, err_t *err)
{
    status_t rc;
    for (int p = 0; p < 3; p++) {
        for (;;) {
            bool ran = false;
            for (size_t i = 0; i < bundle->nentries; i++) {
                repo_entry_t *e = &bundle->entries[i];
                if (e->ran || phase(e) > p || e->conditional_refs || !ready(bundle, e))
                    continue;
                if ((rc = run_in_transaction(txn, bundle, e, err)))
                    return rc;
                ran = true;
            }
            if (ran)
                continue;
            for (size_t i = 0; i < bundle->nentries && !ran; i++) {
                repo_entry_t *e = &bundle->entries[i];
                if (e->ran || phase(e) > p || !e->conditional_refs || !ready(bundle, e))
                    continue;
                if ((rc = run_in_transaction(txn, bundle, e, err)))
                    return rc;
                ran = true;
            }
            if (!ran)
                break;
        }
    }
    for (size_t i = 0; i < bundle->nentries; i++) {
        repo_entry_t *e = &bundle->entries[i];
        if (e->ran || phase(e) == 3)
            continue;
        /* waits for an entry that waits for it */
        e->rc = err_set(&e->err, ERR_INVALID, NULL,
                        "its references name conditional entries whose references name it in "
                        "turn: a transaction cannot settle such a cycle");
        bundle->failed = i;
        name_entry(err, e, &e->err);
        return err->code;
    }
    for (size_t i = 0; i < bundle->nentries; i++) {
        repo_entry_t *e = &bundle->entries[i];
        if (phase(e) == 3 && (rc = run_in_transaction(txn, bundle, e, err)))
            return rc;
    }
    return ERR_OK;
}

status_t repo_bundle_txn(store_txn_t *txn, void *arg, err_t *err)
{
    repo_bundle_t *bundle = arg;
    if (bundle->caller != bundle->access_for)
        return err_set(err, ERR_INTERNAL, NULL,
                       "the access of the Bundle's entries was not worked out (the caller was "
                       "set after repo_bundle_prepare)");
    for (size_t i = 0; i < bundle->nentries; i++)
        bundle->entries[i].write.arena = bundle->arena;
    if (bundle->transaction)
        return run_transaction(txn, bundle, err);
    for (size_t i = 0; i < bundle->nentries; i++) {
        repo_entry_t *e = &bundle->entries[i];
        if (!e->prepared)
            continue;
        run_t run = {bundle, e};
        e->rc = store_txn_nested(txn, run_entry, &run, &e->err);
    }
    return ERR_OK;
}

void repo_bundle_release(repo_bundle_t *bundle)
{
    for (size_t i = 0; i < bundle->nentries; i++)
        err_release(&bundle->entries[i].err);
}

void repo_bundle_response(const repo_bundle_t *bundle, const char *base, bool with_resources,
                          buf_t *out)
{
    buf_addf(out, "{\"resourceType\":\"Bundle\",\"type\":\"%s\"%s",
             bundle->transaction ? "transaction-response" : "batch-response",
             bundle->nentries ? ",\"entry\":[" : ""); /* no empty arrays */
    for (size_t i = 0; i < bundle->nentries; i++) {
        const repo_entry_t *e = &bundle->entries[i];
        if (i)
            buf_addch(out, ',');
        buf_addch(out, '{');
        if (e->rc) {
            buf_addf(out, "\"response\":{\"status\":\"%s\",\"outcome\":",
                     repo_status_text(err_http_status(e->rc)));
            fhir_outcome_json(&e->err, SEVERITY_ERROR, "error", out);
            buf_addstr(out, "}}");
            continue;
        }
        if (e->kind == REPO_ENTRY_SEARCH) {
            repo_searchset_links_t links = {
                .base = base, .url_head = e->search_url, .page = e->query.page};
            buf_addstr(out, "\"resource\":");
            repo_searchset(e->plan, &e->found, &links, out);
            buf_addstr(out, ",\"response\":{\"status\":\"200 OK\"}}");
            continue;
        }
        const store_version_t *v = e->kind == REPO_ENTRY_WRITE ? &e->write.result : &e->read;
        bool matched = e->cond && e->cond->matched;
        /* nothing written, or several resources deleted: no one version to show */
        bool noop =
            e->kind == REPO_ENTRY_WRITE && (e->write.noop || (e->cond && e->cond->ndeletes));
        if (!noop && v->json) {
            buf_addstr(out, "\"fullUrl\":\"");
            buf_add_json_escaped(out, base, strlen(base));
            buf_addf(out, "/%s/%s\",", v->type, v->id);
            if (with_resources || e->kind == REPO_ENTRY_READ) {
                buf_addstr(out, "\"resource\":");
                buf_add(out, v->json, v->json_len);
                buf_addch(out, ',');
            }
        }
        int status = e->kind == REPO_ENTRY_READ || matched ? 200 : noop ? 204 : v->status;
        buf_addf(out, "\"response\":{\"status\":\"%s\"", repo_status_text(status));
        if (!noop) {
            if (e->kind == REPO_ENTRY_WRITE)
                buf_addf(out, ",\"location\":\"%s/%s/_history/%lld\"", v->type, v->id,
                         (long long)v->version);
            buf_addf(out, ",\"etag\":\"W/\\\"%lld\\\"\",\"lastModified\":\"%s\"",
                     (long long)v->version, v->last_updated);
        }
        buf_addstr(out, "}}");
    }
    buf_addstr(out, bundle->nentries ? "]}" : "}");
}
