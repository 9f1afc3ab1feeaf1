/*
 * bundle.c - batch and transaction Bundles.
 *
 * Invariants: prepare never touches the store; the transaction function only runs entries
 * that prepare accepted, in the order the specification gives for transactions (DELETE, POST,
 * PUT and PATCH, then GET and HEAD) and in Bundle order for batches; the response lists the
 * entries in Bundle order whatever order they ran in.
 */
#include "repo/bundle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/jv.h"
#include "base/mem.h"
#include "fhir/defs.h"
#include "fhir/outcome.h"

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

/* Parses request.url: "Type", "Type/id", "Type/id/_history/N". */
static status_t parse_url(repo_entry_t *e, arena_t *arena, err_t *err)
{
    const char *url = e->url;
    if (strchr(url, '?'))
        return err_set(err, ERR_INVALID, NULL,
                       "conditional requests (\"%s\") are not supported in Bundles yet", url);
    if (strstr(url, "://"))
        return err_set(err, ERR_INVALID, NULL,
                       "request.url must be relative to the base (\"Patient/123\"), not \"%s\"",
                       url);
    const char *parts[5];
    size_t lens[5], n = 0;
    const char *p = url;
    while (*p == '/')
        p++;
    while (*p && n < 5) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        parts[n] = p;
        lens[n++] = len;
        p += len;
        while (*p == '/')
            p++;
    }
    if (n == 0 || *p)
        return err_set(err, ERR_INVALID, NULL, "\"%s\" is not a request URL this server knows",
                       url);
    const fhir_type_t *type = fhir_resource_type_find(parts[0], lens[0]);
    if (!type)
        return err_set(err, ERR_NOT_FOUND, NULL, "\"%.*s\" is not a FHIR R4 resource type",
                       (int)lens[0], parts[0]);
    e->type = type->name;
    if (n >= 2) {
        if (!repo_id_valid(parts[1], lens[1]))
            return err_set(err, ERR_INVALID, NULL,
                           "\"%.*s\" is not a valid id (1 to 64 of A-Z a-z 0-9 - .)", (int)lens[1],
                           parts[1]);
        e->id = arena_strndup(arena, parts[1], lens[1]);
    }
    if (n == 3 || (n == 4 && (lens[2] != 8 || memcmp(parts[2], "_history", 8) != 0)) || n > 4)
        return err_set(err, ERR_INVALID, NULL, "\"%s\" is not a request URL this server knows",
                       url);
    if (n == 4) {
        char *end;
        char *text = arena_strndup(arena, parts[3], lens[3]);
        long long v = strtoll(text, &end, 10);
        if (!*text || *end || v <= 0)
            return err_set(err, ERR_INVALID, NULL, "\"%s\" is not a version id", text);
        e->version = v;
    }
    return ERR_OK;
}

/* Checks an entry's request and decides what it is; the resource is prepared later. */
static status_t classify(repo_entry_t *e, const json_t *entry, arena_t *arena, err_t *err)
{
    json_t *request = json_object_get(entry, "request");
    if (!json_is_object(request))
        return err_set(err, ERR_INVALID, NULL, "the entry has no request");
    e->method = string_member(request, "method");
    e->url = string_member(request, "url");
    if (!e->method || !e->url)
        return err_set(err, ERR_INVALID, NULL, "request.method and request.url are required");
    status_t rc = parse_url(e, arena, err);
    if (rc)
        return rc;
    const char *m = e->method;
    bool has_id = e->id != NULL;
    if (!strcmp(m, "GET") || !strcmp(m, "HEAD")) {
        if (!has_id)
            return err_set(err, ERR_INVALID, NULL,
                           "searches (\"%s\") are not supported in Bundles yet", e->url);
        e->kind = REPO_ENTRY_READ;
        return ERR_OK;
    }
    e->kind = REPO_ENTRY_WRITE;
    if (e->version)
        return err_set(err, ERR_INVALID, NULL, "%s cannot name a version (\"%s\")", m, e->url);
    if (!strcmp(m, "POST")) {
        if (has_id)
            return err_set(err, ERR_INVALID, NULL, "POST goes to a type (\"%s\"), not to an id",
                           e->url);
    } else if (!strcmp(m, "PUT") || !strcmp(m, "DELETE") || !strcmp(m, "PATCH")) {
        if (!has_id)
            return err_set(err, ERR_INVALID, NULL,
                           "%s needs an id (\"%s\"): conditional %s is "
                           "not supported in Bundles yet",
                           m, e->url, m);
    } else {
        return err_set(err, ERR_INVALID, NULL, "\"%s\" is not an HTTP method of FHIR", m);
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

/* Replaces every "reference" whose value is a mapped fullUrl. */
static void rewrite_references(json_t *value, const mapping_t *map, size_t n)
{
    if (json_is_object(value)) {
        const char *key;
        json_t *member;
        json_object_foreach(value, key, member)
        {
            if (!strcmp(key, "reference") && jv_is_string(member)) {
                const char *ref = json_string_value(member);
                for (size_t i = 0; i < n; i++) {
                    if (!strcmp(ref, map[i].from)) {
                        json_string_set(member, map[i].to);
                        break;
                    }
                }
            } else {
                rewrite_references(member, map, n);
            }
        }
    } else if (json_is_array(value)) {
        for (size_t i = 0; i < json_array_size(value); i++)
            rewrite_references(json_array_get(value, i), map, n);
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
static status_t prepare_write(repo_entry_t *e, json_t *entry, const char *new_id, int64_t if_match,
                              arena_t *arena, err_t *err)
{
    json_t *resource = json_object_get(entry, "resource");
    const char *m = e->method;
    if (!strcmp(m, "DELETE"))
        return repo_prepare_delete(&e->write, e->type, e->id, if_match, arena, err);
    if (!json_is_object(resource))
        return err_set(err, ERR_INVALID, NULL, "%s needs a resource in the entry", m);
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
    return repo_prepare_resource(&e->write, REPO_UPDATE, resource, e->id, if_match, arena, err);
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

status_t repo_bundle_prepare(repo_bundle_t *bundle, const char *body, size_t len, arena_t *arena,
                             err_t *err)
{
    memset(bundle, 0, sizeof(*bundle));
    bundle->arena = arena;
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

    /* 1: requests, ids, and the fullUrl map */
    for (size_t i = 0; i < n; i++) {
        repo_entry_t *e = &bundle->entries[i];
        e->index = i;
        err_init(&e->err);
        json_t *entry = json_array_get(entries, i);
        if (!json_is_object(entry))
            e->rc = err_set(&e->err, ERR_STRUCTURE, NULL, "the entry must be an object");
        else
            e->rc = classify(e, entry, arena, &e->err);
        if (e->rc)
            continue;
        const char *full_url = string_member(entry, "fullUrl");
        if (!strcmp(e->method, "POST"))
            new_ids[i] = repo_new_id(arena);
        if (full_url && bundle->transaction && e->kind == REPO_ENTRY_WRITE &&
            strcmp(e->method, "DELETE") != 0) {
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
        if (nmap && resource)
            rewrite_references(resource, map, nmap);
        bool ok;
        int64_t if_match = parse_if_match(json_object_get(entry, "request"), &ok);
        if (!ok)
            e->rc = err_set(&e->err, ERR_INVALID, NULL,
                            "request.ifMatch must be an ETag such as W/\"3\"");
        else
            e->rc = prepare_write(e, entry, new_ids[i], if_match, arena, &e->err);
    }
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

static status_t run_entry(store_txn_t *txn, void *arg, err_t *err)
{
    repo_entry_t *e = arg;
    if (e->kind == REPO_ENTRY_WRITE)
        return repo_write_txn(txn, &e->write, err);
    status_t rc = store_txn_read(txn, e->type, e->id, e->version, e->write.arena, &e->read, err);
    if (!rc && e->read.deleted)
        rc = err_set(err, ERR_GONE, NULL, "%s/%s is deleted", e->type, e->id);
    return rc;
}

/* Transaction order: DELETE, POST, PUT and PATCH, GET and HEAD. */
static int phase(const repo_entry_t *e)
{
    if (!strcmp(e->method, "DELETE"))
        return 0;
    if (!strcmp(e->method, "POST"))
        return 1;
    if (e->kind == REPO_ENTRY_WRITE)
        return 2;
    return 3;
}

status_t repo_bundle_txn(store_txn_t *txn, void *arg, err_t *err)
{
    repo_bundle_t *bundle = arg;
    if (!bundle->transaction) {
        for (size_t i = 0; i < bundle->nentries; i++) {
            repo_entry_t *e = &bundle->entries[i];
            if (!e->prepared)
                continue;
            e->write.arena = bundle->arena;
            e->rc = store_txn_nested(txn, run_entry, e, &e->err);
        }
        return ERR_OK;
    }
    for (int p = 0; p < 4; p++) {
        for (size_t i = 0; i < bundle->nentries; i++) {
            repo_entry_t *e = &bundle->entries[i];
            if (phase(e) != p)
                continue;
            e->write.arena = bundle->arena;
            e->rc = run_entry(txn, e, &e->err);
            if (e->rc) {
                bundle->failed = i;
                name_entry(err, e, &e->err);
                return err->code;
            }
        }
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
    buf_addf(out, "{\"resourceType\":\"Bundle\",\"type\":\"%s\",\"entry\":[",
             bundle->transaction ? "transaction-response" : "batch-response");
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
        const store_version_t *v = e->kind == REPO_ENTRY_WRITE ? &e->write.result : &e->read;
        bool noop = e->kind == REPO_ENTRY_WRITE && e->write.noop;
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
        int status = e->kind == REPO_ENTRY_READ ? 200 : noop ? 204 : v->status;
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
    buf_addstr(out, "]}");
}
