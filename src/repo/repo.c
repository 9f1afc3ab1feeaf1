/*
 * repo.c - FHIR create, read, update, delete over the store.
 *
 * Invariants: a stored resource always starts with resourceType, id and meta, and meta
 * always starts with versionId and lastUpdated, which only the server writes, then the
 * version-author extension (author.h) as the first entry of meta.extension. Validation
 * happens before anything reaches the store, so nothing invalid is ever half-written.
 */
#include "repo/repo.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "base/buf.h"
#include "base/jpatch.h"
#include "base/jv.h"
#include "base/mem.h"
#include "fhir/defs.h"
#include "fhir/patch.h"
#include "fhir/validate.h"
#include "repo/author.h"

bool repo_id_valid(const char *s, size_t len)
{
    if (len < 1 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return false;
    }
    return true;
}

char *repo_new_id(arena_t *arena)
{
    /* UUID version 7: 48 bits of milliseconds, then random bits; sorts by creation time,
     * which keeps index inserts local. */
    unsigned char b[16];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    if (getrandom(b + 6, 10, 0) != 10)
        die("getrandom failed");
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0F));
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3F));
    static const char hex[] = "0123456789abcdef";
    char *out = arena_alloc(arena, 37);
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 15];
    }
    *p = '\0';
    return out;
}

static void add_member(buf_t *out, const char *key, const json_t *value)
{
    buf_addstr(out, ",\"");
    buf_add_json_escaped(out, key, strlen(key));
    buf_add(out, "\":", 2);
    jv_dump(value, out);
}

/* The serialized text up to meta's first member. */
static void add_head(buf_t *out, const char *type, const char *id)
{
    buf_addstr(out, "{\"resourceType\":\"");
    buf_add_json_escaped(out, type, strlen(type));
    buf_addstr(out, "\",\"id\":\"");
    buf_add_json_escaped(out, id, strlen(id));
    buf_addstr(out, "\",\"meta\":{");
}

/* Serializes resource into write->head, write->extensions and write->tail around the server's
 * meta fields. */
static void serialize(repo_write_t *write, const json_t *resource, const char *type, const char *id)
{
    buf_t out = BUF_INIT;
    add_head(&out, type, id);
    write->head_len = out.len;

    json_t *meta = json_object_get(resource, "meta");
    const char *key;
    json_t *value;
    buf_t ext = BUF_INIT;
    if (json_is_object(meta)) {
        json_object_foreach(meta, key, value)
        {
            if (strcmp(key, "extension") == 0 && json_is_array(value)) {
                /* the server's version-author entry goes first; a client's is dropped */
                size_t i;
                json_t *e;
                json_array_foreach(value, i, e)
                {
                    if (repo_author_is(e))
                        continue;
                    if (ext.len)
                        buf_addch(&ext, ',');
                    jv_dump(e, &ext);
                }
            } else if (strcmp(key, "versionId") != 0 && strcmp(key, "lastUpdated") != 0) {
                add_member(&out, key, value);
            }
        }
    }
    write->extensions = arena_strndup(write->arena, ext.len ? ext.ptr : "", ext.len);
    write->extensions_len = ext.len;
    buf_release(&ext);
    buf_addch(&out, '}');
    json_object_foreach((json_t *)resource, key, value)
    {
        if (strcmp(key, "resourceType") != 0 && strcmp(key, "id") != 0 && strcmp(key, "meta") != 0)
            add_member(&out, key, value);
    }
    buf_addch(&out, '}');

    char *text = arena_strndup(write->arena, out.ptr, out.len);
    buf_release(&out);
    write->head = text;
    write->tail = text + write->head_len;
    write->tail_len = strlen(write->tail);
}

static void release_snapshot(void *snapshot)
{
    fhir_search_snapshot_release(snapshot);
}

/* The current search parameters, held until arena is released: index rows borrow the names
 * of their parameters from the snapshot. */
static const fhir_search_snapshot_t *arena_snapshot(arena_t *arena)
{
    const fhir_search_snapshot_t *snapshot = repo_params_acquire();
    arena_cleanup_add(arena, release_snapshot, (void *)snapshot);
    return snapshot;
}

void repo_write_set_id(repo_write_t *write, const char *id)
{
    write->id = arena_strdup(write->arena, id);
    if (!write->head)
        return; /* a delete: nothing serialized */
    buf_t out = BUF_INIT;
    add_head(&out, write->type, write->id);
    write->head_len = out.len;
    write->head = arena_strndup(write->arena, out.ptr, out.len);
    buf_release(&out);
}

status_t repo_write_refresh(repo_write_t *write, json_t *resource, err_t *err)
{
    serialize(write, resource, write->type, write->id);
    return fhir_index_extract(arena_snapshot(write->arena), resource, write->arena, &write->index,
                              err);
}

static status_t check_resource(const json_t *resource, const char *type, err_t *err)
{
    if (!json_is_object(resource))
        return err_set(err, ERR_STRUCTURE, NULL, "the body must be a JSON object (a resource)");
    json_t *rt = json_object_get(resource, "resourceType");
    if (!rt)
        return err_set(err, ERR_STRUCTURE, NULL, "the resource has no resourceType");
    if (!jv_is_string(rt))
        return err_set(err, ERR_STRUCTURE, NULL, "resourceType must be a string");
    if (strcmp(json_string_value(rt), type) != 0)
        return err_set(err, ERR_INVALID, NULL, "the resource is a %s but the request is for %s",
                       json_string_value(rt), type);
    return fhir_validate(resource, err);
}

status_t repo_prepare_resource(repo_write_t *write, repo_action_t action, json_t *resource,
                               const char *id, int64_t if_match, arena_t *arena, err_t *err)
{
    memset(write, 0, sizeof(*write));
    write->arena = arena;
    write->action = action;
    write->if_match = if_match;
    json_t *rt = json_object_get(resource, "resourceType");
    const char *type = jv_is_string(rt) ? json_string_value(rt) : "";
    if (!fhir_resource_type_find(type, strlen(type))) {
        if (!json_is_object(resource) || !rt)
            return check_resource(resource, "", err);
        return err_set(err, ERR_STRUCTURE, NULL, "\"%s\" is not a FHIR R4 resource type", type);
    }
    status_t rc = check_resource(resource, type, err);
    if (rc)
        return rc;
    write->type = arena_strdup(arena, type);
    if (action == REPO_UPDATE) {
        json_t *body_id = json_object_get(resource, "id");
        if (!body_id)
            return err_set(err, ERR_INVALID, arena_printf(arena, "%s.id", type),
                           "the resource has no id: an update must carry the id of the URL "
                           "(\"%s\")",
                           id);
        if (!jv_is_string(body_id) || strcmp(json_string_value(body_id), id) != 0)
            return err_set(err, ERR_INVALID, arena_printf(arena, "%s.id", type),
                           "the resource's id does not match the id in the URL (\"%s\")", id);
    }
    write->id = id ? arena_strdup(arena, id) : repo_new_id(arena);
    if (!repo_id_valid(write->id, strlen(write->id)))
        return err_set(err, ERR_INVALID, NULL,
                       "\"%s\" is not a valid id (1 to 64 of A-Z a-z 0-9 - .)", write->id);
    serialize(write, resource, write->type, write->id);
    return fhir_index_extract(arena_snapshot(arena), resource, arena, &write->index, err);
}

static status_t prepare_body(repo_write_t *write, repo_action_t action, const char *type,
                             const char *id, const char *body, size_t len, int64_t if_match,
                             arena_t *arena, err_t *err)
{
    json_t *resource = jv_parse(body, len, err);
    if (!resource)
        return err->code;
    status_t rc;
    if (!json_is_object(resource)) {
        rc = err_set(err, ERR_STRUCTURE, NULL, "the body must be a JSON object (a resource)");
    } else {
        json_t *rt = json_object_get(resource, "resourceType");
        if (jv_is_string(rt) && strcmp(json_string_value(rt), type) != 0)
            rc = err_set(err, ERR_INVALID, NULL, "the resource is a %s but the request is for %s",
                         json_string_value(rt), type);
        else if (!rt)
            rc = err_set(err, ERR_STRUCTURE, NULL, "the resource has no resourceType");
        else
            rc = repo_prepare_resource(write, action, resource, id, if_match, arena, err);
    }
    json_decref(resource);
    return rc;
}

status_t repo_prepare_create(repo_write_t *write, const char *type, const char *body, size_t len,
                             arena_t *arena, err_t *err)
{
    return prepare_body(write, REPO_CREATE, type, NULL, body, len, 0, arena, err);
}

status_t repo_prepare_update(repo_write_t *write, const char *type, const char *id,
                             const char *body, size_t len, int64_t if_match, arena_t *arena,
                             err_t *err)
{
    return prepare_body(write, REPO_UPDATE, type, id, body, len, if_match, arena, err);
}

static void release_json(void *data)
{
    json_decref(data);
}

status_t repo_prepare_patch(repo_write_t *write, const char *type, const char *id,
                            const char *patch, size_t len, int64_t if_match, arena_t *arena,
                            err_t *err)
{
    memset(write, 0, sizeof(*write));
    write->arena = arena;
    write->action = REPO_PATCH;
    write->type = arena_strdup(arena, type);
    write->id = arena_strdup(arena, id);
    write->if_match = if_match;
    write->patch = jv_parse(patch, len, err);
    if (!write->patch)
        return err->code;
    arena_cleanup_add(arena, release_json, write->patch);
    if (!json_is_array(write->patch))
        return err_set(err, ERR_INVALID, NULL, "a JSON Patch must be an array of operations");
    return ERR_OK;
}

status_t repo_prepare_fhirpath_patch(repo_write_t *write, const char *type, const char *id,
                                     const json_t *parameters, int64_t if_match, arena_t *arena,
                                     err_t *err)
{
    memset(write, 0, sizeof(*write));
    write->arena = arena;
    write->action = REPO_PATCH;
    write->type = arena_strdup(arena, type);
    write->id = arena_strdup(arena, id);
    write->if_match = if_match;
    status_t rc = fhir_patch_check(parameters, err);
    if (rc)
        return rc;
    write->patch = json_incref((json_t *)parameters);
    arena_cleanup_add(arena, release_json, write->patch);
    return ERR_OK;
}

status_t repo_prepare_fhirpath_patch_body(repo_write_t *write, const char *type, const char *id,
                                          const char *body, size_t len, int64_t if_match,
                                          arena_t *arena, err_t *err)
{
    json_t *parameters = jv_parse(body, len, err);
    if (!parameters)
        return err->code;
    status_t rc = repo_prepare_fhirpath_patch(write, type, id, parameters, if_match, arena, err);
    json_decref(parameters);
    return rc;
}

/* Applies the patch to the current version inside the transaction and prepares the result. */
static status_t apply_patch(store_txn_t *txn, repo_write_t *w, err_t *err)
{
    store_version_t current;
    status_t rc = store_txn_read(txn, w->type, w->id, 0, w->arena, &current, err);
    if (rc)
        return rc;
    if (current.deleted)
        return err_set(err, ERR_GONE, NULL, "%s/%s was deleted (version %lld)", w->type, w->id,
                       (long long)current.version);
    json_t *resource = jv_parse(current.json, current.json_len, err);
    if (!resource)
        return err_set(err, ERR_INTERNAL, NULL, "the stored %s/%s could not be read", w->type,
                       w->id);
    /* a JSON Patch is an array of operations, a FHIRPath Patch a Parameters resource */
    if (json_is_array(w->patch))
        rc = jpatch_apply(&resource, w->patch, err);
    else
        rc = fhir_patch_apply(&resource, w->patch, err);
    if (!rc) {
        json_t *rt = json_object_get(resource, "resourceType");
        json_t *id = json_object_get(resource, "id");
        if (!jv_is_string(rt) || strcmp(json_string_value(rt), w->type) != 0 || !jv_is_string(id) ||
            strcmp(json_string_value(id), w->id) != 0)
            rc = err_set(err, ERR_INVALID, NULL,
                         "a patch must not change the resourceType or the id of %s/%s", w->type,
                         w->id);
    }
    if (!rc)
        rc = check_resource(resource, w->type, err);
    if (!rc)
        serialize(w, resource, w->type, w->id);
    /* the patched resource exists only here, on the writer: its index rows too */
    if (!rc)
        rc = fhir_index_extract(arena_snapshot(w->arena), resource, w->arena, &w->index, err);
    json_decref(resource);
    return rc;
}

status_t repo_prepare_delete(repo_write_t *write, const char *type, const char *id,
                             int64_t if_match, arena_t *arena, err_t *err)
{
    (void)err;
    memset(write, 0, sizeof(*write));
    write->arena = arena;
    write->action = REPO_DELETE;
    write->type = arena_strdup(arena, type);
    write->id = arena_strdup(arena, id);
    write->if_match = if_match;
    return ERR_OK;
}

/* A CareTeam or PractitionerRole changed: who reaches which patients may have too. */
static void invalidate_access(void *arg)
{
    (void)arg;
    repo_access_invalidate();
}

/* The text of the version to store: head, the server's meta fields (author: the
 * version-author's valueReference, or NULL), the resource's meta.extension entries, tail (in
 * w's arena). */
static char *stored_text(const repo_write_t *w, int64_t version, const char *time_text,
                         const char *author, size_t *out_len)
{
    buf_t b = BUF_INIT;
    buf_add(&b, w->head, w->head_len);
    buf_addf(&b, "\"versionId\":\"%lld\",\"lastUpdated\":\"%s\"", (long long)version, time_text);
    if (author || w->extensions_len) {
        buf_addstr(&b, ",\"extension\":[");
        if (author) {
            buf_addstr(&b, "{\"url\":\"" REPO_AUTHOR_URL "\",\"valueReference\":");
            buf_addstr(&b, author);
            buf_addch(&b, '}');
            if (w->extensions_len)
                buf_addch(&b, ',');
        }
        buf_add(&b, w->extensions, w->extensions_len);
        buf_addch(&b, ']');
    }
    buf_add(&b, w->tail, w->tail_len);
    char *json = arena_strndup(w->arena, b.ptr, b.len);
    *out_len = b.len;
    buf_release(&b);
    return json;
}

status_t repo_write_txn(store_txn_t *txn, void *arg, err_t *err)
{
    repo_write_t *w = arg;
    store_current_t current;
    status_t rc = store_txn_current(txn, w->type, w->id, &current, err);
    if (rc)
        return rc;
    if (w->if_match && (current.version != w->if_match || current.deleted)) {
        if (current.version == 0)
            return err_set(err, ERR_VERSION_CONFLICT, NULL,
                           "If-Match asks for version %lld of %s/%s, which does not exist",
                           (long long)w->if_match, w->type, w->id);
        return err_set(err, ERR_VERSION_CONFLICT, NULL,
                       "If-Match asks for version %lld of %s/%s but the current version is %lld%s",
                       (long long)w->if_match, w->type, w->id, (long long)current.version,
                       current.deleted ? " (deleted)" : "");
    }
    const char *method = "PUT";
    switch (w->action) {
    case REPO_PATCH:
        if (current.version == 0)
            return err_set(err, ERR_NOT_FOUND, NULL, "%s/%s is not known", w->type, w->id);
        rc = apply_patch(txn, w, err);
        if (rc)
            return rc;
        break;
    case REPO_CREATE:
        if (current.version)
            return err_set(err, ERR_CONFLICT, NULL, "%s/%s already exists", w->type, w->id);
        w->created = true;
        method = "POST";
        break;
    case REPO_UPDATE: w->created = current.version == 0 || current.deleted; break;
    case REPO_DELETE:
        if (current.version == 0 || current.deleted) {
            w->noop = true;
            return ERR_OK;
        }
        method = "DELETE";
        break;
    }
    if (w->caller && (rc = repo__access_write(txn, w, &current, err)))
        return rc;
    if (strcmp(w->type, "CareTeam") == 0 || strcmp(w->type, "PractitionerRole") == 0)
        store_txn_on_commit(txn, invalidate_access, NULL);
    int64_t version = current.version + 1;
    const char *time_text = store_txn_time_text(txn);
    const char *author = repo_author_value(w->caller, w->author, w->arena);
    char *json = NULL;
    size_t json_len = 0;
    if (w->action != REPO_DELETE)
        json = stored_text(w, version, time_text, author, &json_len);
    if (strcmp(w->type, "CarePlan") == 0) {
        bool stamped;
        if ((rc = repo__care_plan_contributions(txn, w, &current, json, json_len, &stamped, err)))
            return rc;
        if (stamped)
            json = stored_text(w, version, time_text, author, &json_len);
    }
    if ((rc = repo__rules_check(txn, w, &current, json, json_len, err)))
        return rc;
    if (strcmp(w->type, "SearchParameter") == 0 &&
        (rc = repo__params_write(txn, w->id, json, json_len, w->arena, err)))
        return rc;
    /* the audit row names the patient; a delete's is in the version it deletes */
    const char *patient = NULL;
    if (w->caller && w->action == REPO_DELETE && strcmp(w->type, "Patient") != 0) {
        store_version_t gone;
        if (store_txn_read(txn, w->type, w->id, 0, w->arena, &gone, err) == ERR_OK)
            patient = repo_patient_of_json(w->type, w->id, gone.json, gone.json_len, w->arena);
        err_reset(err);
    } else if (w->caller) {
        patient = repo_patient_of(w->type, w->id, &w->index);
    }
    store_put_t put = {
        .type = w->type,
        .id = w->id,
        .version = version,
        .method = method,
        .status = w->action == REPO_DELETE ? 204
                  : w->created             ? 201
                                           : 200,
        .json = json,
        .json_len = json_len,
        .index = w->action == REPO_DELETE ? NULL : &w->index,
        .author = author,
    };
    int64_t seq;
    rc = store_txn_put(txn, &put, &seq, err);
    if (rc)
        return rc;
    store_version_t *r = &w->result;
    r->type = w->type;
    r->id = w->id;
    r->version = version;
    r->seq = seq;
    r->updated_us = store_txn_time_us(txn);
    r->last_updated = arena_strdup(w->arena, time_text);
    r->method = method;
    r->status = put.status;
    r->deleted = w->action == REPO_DELETE;
    r->json = json;
    r->json_len = json_len;
    r->author = author;
    return w->caller ? repo__audit_write(txn, w, patient, err) : ERR_OK;
}

status_t repo_commit(store_t *store, repo_write_t *write, err_t *err)
{
    if (write->caller && !write->access_ready) {
        store_conn_t *conn;
        status_t rc = store_connect(store, &conn, err);
        if (rc)
            return rc;
        rc = repo_access_prepare_write(conn, write, err);
        store_disconnect(conn);
        if (rc)
            return rc;
    }
    return store_run(store, repo_write_txn, write, err);
}

status_t repo_read(store_conn_t *conn, const char *type, const char *id, int64_t version,
                   arena_t *arena, store_version_t *out, err_t *err)
{
    status_t rc = store_read(conn, type, id, version, arena, out, err);
    if (rc)
        return rc;
    if (out->deleted) {
        if (version)
            return err_set(err, ERR_GONE, NULL, "version %lld of %s/%s is a deletion",
                           (long long)version, type, id);
        return err_set(err, ERR_GONE, NULL, "%s/%s was deleted (version %lld)", type, id,
                       (long long)out->version);
    }
    return ERR_OK;
}
