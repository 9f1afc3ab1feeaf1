/*
 * careplan.c - the shared care plan's contributions (docs/coordination.md, "Shared care
 * plans"): every note, activity, goal and addressed problem a person adds to a CarePlan records
 * who added it, and what someone contributed stays theirs.
 *
 * Runs in the write's transaction, comparing the version about to be stored with the one it
 * replaces. Contributions are recognised by content: an entry equal to one of the previous
 * version is kept, anything else is new and stamped with the caller. Writers that are not a
 * person (the server itself, services: import, the engine) write entries as they are.
 */
#include <string.h>

#include "base/jv.h"
#include "repo/author.h"
#include "repo/repo.h"

#define EXT_BASE        "http://concerto.dev/fhir/StructureDefinition/"
#define EXT_CONTRIBUTOR EXT_BASE "contributor"
#define EXT_CONTRIBUTED EXT_BASE "contributed"

/* The lists whose entries carry a contributor stamp (extensions), beside note[] (author). */
static const char *const stamped_lists[] = {"activity", "goal", "addresses"};

/* The caller's own reference as an author ("Practitioner/x", ...), or NULL when the caller is
 * not a person or is linked to no Practitioner, PractitionerRole or Patient. */
static const char *caller_reference(const repo_caller_t *caller, arena_t *arena)
{
    if (!caller)
        return NULL;
    switch (caller->kind) {
    case REPO_CALLER_PATIENT:
        return caller->patient_id ? arena_printf(arena, "Patient/%s", caller->patient_id) : NULL;
    case REPO_CALLER_STAFF:
    case REPO_CALLER_ADMIN:
        if (caller->practitioner_id)
            return arena_printf(arena, "Practitioner/%s", caller->practitioner_id);
        if (caller->practitioner_role_id)
            return arena_printf(arena, "PractitionerRole/%s", caller->practitioner_role_id);
        return NULL;
    case REPO_CALLER_SERVICE: return NULL;
    }
    return NULL;
}

/* Whether reference (a Reference object) names the caller: their Practitioner, their
 * PractitionerRole or their Patient. */
static bool names_caller(const repo_caller_t *caller, const json_t *reference)
{
    const char *ref = json_string_value(json_object_get(reference, "reference"));
    if (!ref)
        return false;
    if (caller->kind == REPO_CALLER_PATIENT)
        return caller->patient_id && strncmp(ref, "Patient/", 8) == 0 &&
               strcmp(ref + 8, caller->patient_id) == 0;
    if (caller->practitioner_id && strncmp(ref, "Practitioner/", 13) == 0 &&
        strcmp(ref + 13, caller->practitioner_id) == 0)
        return true;
    return caller->practitioner_role_id && strncmp(ref, "PractitionerRole/", 17) == 0 &&
           strcmp(ref + 17, caller->practitioner_role_id) == 0;
}

/* The value of the extension url of element (borrowed), or NULL. */
static json_t *extension_value(const json_t *element, const char *url, const char *value_key)
{
    size_t i;
    json_t *ext;
    json_array_foreach(json_object_get(element, "extension"), i, ext)
    {
        const char *u = json_string_value(json_object_get(ext, "url"));
        if (u && strcmp(u, url) == 0)
            return json_object_get(ext, value_key);
    }
    return NULL;
}

/* Removes the extensions with url from element (an emptied extension array goes too). */
static void extension_remove(json_t *element, const char *url)
{
    json_t *list = json_object_get(element, "extension");
    if (!json_is_array(list))
        return;
    for (size_t i = json_array_size(list); i-- > 0;) {
        const char *u = json_string_value(json_object_get(json_array_get(list, i), "url"));
        if (u && strcmp(u, url) == 0)
            json_array_remove(list, i);
    }
    if (!json_array_size(list))
        json_object_del(element, "extension");
}

static void extension_add(json_t *element, const char *url, const char *value_key, json_t *value)
{
    json_t *list = json_object_get(element, "extension");
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(element, "extension", list);
    }
    json_t *ext = json_object();
    json_object_set_new(ext, "url", json_string(url));
    json_object_set_new(ext, value_key, value);
    json_array_append_new(list, ext);
}

/* Whether list (an array, or NULL) holds a value equal to entry. */
static bool holds(const json_t *list, const json_t *entry)
{
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        if (json_equal(item, entry))
            return true;
    }
    return false;
}

/* Who an entry of the previous version is attributed to, for the message; NULL when no one. */
static const char *attribution(const json_t *entry, bool note)
{
    if (note) {
        const char *ref = json_string_value(
            json_object_get(json_object_get(entry, "authorReference"), "reference"));
        return ref ? ref : json_string_value(json_object_get(entry, "authorString"));
    }
    json_t *who = extension_value(entry, EXT_CONTRIBUTOR, "valueReference");
    return who ? json_string_value(json_object_get(who, "reference")) : NULL;
}

/* Whether the attributed entry was contributed by the caller. */
static bool own(const repo_caller_t *caller, const json_t *entry, bool note)
{
    if (note)
        return names_caller(caller, json_object_get(entry, "authorReference"));
    return names_caller(caller, extension_value(entry, EXT_CONTRIBUTOR, "valueReference"));
}

typedef struct {
    const repo_caller_t *caller;
    const char *author; /* the caller's reference, or NULL */
    const char *now;    /* the transaction's time */
    arena_t *arena;
    bool changed; /* a stamp was added */
} stamping_t;

/* The entries of list `name` in next that are not in old are the caller's: check what they
 * state and stamp them; the entries of old attributed to someone else must still be there. */
static status_t stamp_list(stamping_t *s, const char *name, const json_t *old, json_t *next,
                           err_t *err)
{
    bool note = strcmp(name, "note") == 0;
    json_t *old_list = json_object_get(old, name);
    json_t *list = json_object_get(next, name);
    size_t i;
    json_t *entry;
    json_array_foreach(old_list, i, entry)
    {
        const char *who = attribution(entry, note);
        if (holds(list, entry) || (who && own(s->caller, entry, note)))
            continue;
        if (who)
            return err_set(err, ERR_RULE, arena_printf(s->arena, "CarePlan.%s[%zu]", name, i),
                           "CarePlan.%s[%zu] was contributed by %s and cannot be changed or "
                           "removed by anyone else",
                           name, i, who);
        /* an entry from before contributions were recorded: staff may edit it */
        if (s->caller->kind == REPO_CALLER_PATIENT)
            return err_set(err, ERR_FORBIDDEN, arena_printf(s->arena, "CarePlan.%s[%zu]", name, i),
                           "a patient may change or withdraw their own notes only, not "
                           "CarePlan.%s[%zu]",
                           name, i);
    }
    json_array_foreach(list, i, entry)
    {
        if (!json_is_object(entry) || holds(old_list, entry))
            continue;
        const char *path = arena_printf(s->arena, "CarePlan.%s[%zu]", name, i);
        if (!s->author)
            return err_set(err, ERR_FORBIDDEN, path,
                           "contributions to a CarePlan record their author, and your account "
                           "is linked to no Practitioner, PractitionerRole or Patient");
        if (note) {
            json_t *stated = json_object_get(entry, "authorReference");
            if (json_object_get(entry, "authorString"))
                return err_set(err, ERR_RULE, arena_printf(s->arena, "%s.authorString", path),
                               "%s states its author as text; the author of a note is the "
                               "account that writes it (%s): leave author out",
                               path, s->author);
            if (stated && !names_caller(s->caller, stated))
                return err_set(err, ERR_RULE, arena_printf(s->arena, "%s.authorReference", path),
                               "%s names %s as its author, but it is written by %s; a note "
                               "can only be written in its author's name",
                               path,
                               json_string_value(json_object_get(stated, "reference"))
                                   ? json_string_value(json_object_get(stated, "reference"))
                                   : "someone else",
                               s->author);
            if (!stated) {
                json_t *ref = json_object();
                json_object_set_new(ref, "reference", json_string(s->author));
                json_object_set_new(entry, "authorReference", ref);
                s->changed = true;
            }
            if (!json_object_get(entry, "time")) {
                json_object_set_new(entry, "time", json_string(s->now));
                s->changed = true;
            }
            continue;
        }
        json_t *stated = extension_value(entry, EXT_CONTRIBUTOR, "valueReference");
        if (stated && !names_caller(s->caller, stated))
            return err_set(err, ERR_RULE, arena_printf(s->arena, "%s.extension", path),
                           "%s names %s as its contributor, but it is written by %s; a "
                           "contribution can only be made in its contributor's name",
                           path,
                           json_string_value(json_object_get(stated, "reference"))
                               ? json_string_value(json_object_get(stated, "reference"))
                               : "someone else",
                           s->author);
        /* the contributor and the time are the server's: whatever was stated is replaced */
        extension_remove(entry, EXT_CONTRIBUTOR);
        extension_remove(entry, EXT_CONTRIBUTED);
        json_t *ref = json_object();
        json_object_set_new(ref, "reference", json_string(s->author));
        extension_add(entry, EXT_CONTRIBUTOR, "valueReference", ref);
        extension_add(entry, EXT_CONTRIBUTED, "valueDateTime", json_string(s->now));
        s->changed = true;
    }
    return ERR_OK;
}

/* A patient may add notes to their CarePlan and change or withdraw their own; everything else
 * stays as it is. The first member that differs is named. */
static status_t patient_limits(const repo_write_t *w, const json_t *old, const json_t *next,
                               err_t *err)
{
    if (!old)
        return err_set(err, ERR_FORBIDDEN, NULL,
                       "a patient cannot create a CarePlan; their care team makes it, and the "
                       "patient adds notes to it");
    const char *key;
    json_t *value;
    const json_t *pair[2] = {old, next};
    for (int side = 0; side < 2; side++) {
        json_object_foreach((json_t *)pair[side], key, value)
        {
            if (strcmp(key, "note") == 0 || strcmp(key, "meta") == 0)
                continue;
            if (!json_equal(value, json_object_get(pair[1 - side], key)))
                return err_set(err, ERR_FORBIDDEN, arena_printf(w->arena, "CarePlan.%s", key),
                               "a patient may add notes to their CarePlan (and change or "
                               "withdraw their own), not change CarePlan.%s",
                               key);
        }
    }
    json_t *old_meta = json_object_get(old, "meta"), *meta = json_object_get(next, "meta");
    json_object_foreach(meta, key, value)
    {
        /* the version-author extension names each version's writer */
        if (strcmp(key, "extension") == 0
                ? !repo_author_extensions_equal(value, json_object_get(old_meta, key))
                : strcmp(key, "versionId") != 0 && strcmp(key, "lastUpdated") != 0 &&
                      !json_equal(value, json_object_get(old_meta, key)))
            return err_set(err, ERR_FORBIDDEN, arena_printf(w->arena, "CarePlan.meta.%s", key),
                           "a patient may add notes to their CarePlan, not change "
                           "CarePlan.meta.%s",
                           key);
    }
    return ERR_OK;
}

status_t repo__care_plan_contributions(store_txn_t *txn, repo_write_t *w,
                                       const store_current_t *current, const char *json,
                                       size_t json_len, bool *out_changed, err_t *err)
{
    *out_changed = false;
    const repo_caller_t *caller = w->caller;
    if (!caller || caller->kind == REPO_CALLER_SERVICE)
        return ERR_OK;
    bool exists = current->version && !current->deleted;
    if (w->action == REPO_DELETE) {
        if (caller->kind == REPO_CALLER_PATIENT && exists)
            return err_set(err, ERR_FORBIDDEN, NULL,
                           "a patient cannot delete their CarePlan (CarePlan/%s)", w->id);
        return ERR_OK;
    }
    json_t *old = NULL, *next = NULL;
    status_t rc = ERR_OK;
    if (exists) {
        store_version_t prev;
        if ((rc = store_txn_read(txn, w->type, w->id, 0, w->arena, &prev, err)))
            return rc;
        if (!(old = jv_parse(prev.json, prev.json_len, err)))
            return err->code;
    }
    if (!(next = jv_parse(json, json_len, err))) {
        rc = err->code;
        goto out;
    }
    if (caller->kind == REPO_CALLER_PATIENT && (rc = patient_limits(w, old, next, err)))
        goto out;
    stamping_t s = {.caller = caller,
                    .author = caller_reference(caller, w->arena),
                    .now = store_txn_time_text(txn),
                    .arena = w->arena};
    if ((rc = stamp_list(&s, "note", old, next, err)))
        goto out;
    for (size_t i = 0; i < sizeof(stamped_lists) / sizeof(stamped_lists[0]); i++)
        if ((rc = stamp_list(&s, stamped_lists[i], old, next, err)))
            goto out;
    if (s.changed) {
        /* serialized again without meta.versionId and lastUpdated, which the write adds */
        if (!(rc = repo_write_refresh(w, next, err)))
            *out_changed = true;
    }
out:
    json_decref(old);
    json_decref(next);
    return rc;
}
