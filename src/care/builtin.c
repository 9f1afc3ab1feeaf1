/*
 * builtin.c - loads the built-in protocols (builtin.h). The files are compiled in by the
 * Makefile as C strings ($(BUILD)/gen/builtin_protocols.h), so that the program needs no data
 * directory at run time.
 */
#include "care/builtin.h"

#include <string.h>

#include "base/jv.h"
#include "base/url.h"
#include "fhir/defs.h"
#include "repo/repo.h"

#include "builtin_protocols.h" /* care__protocols[], care__nprotocols */

size_t care_builtin_count(void)
{
    return care__nprotocols;
}

const char *care_builtin_name(size_t i)
{
    return i < care__nprotocols ? care__protocols[i].name : NULL;
}

typedef struct {
    arena_t *arena;
    care_builtin_report_t report;
} load_t;

/* Whether a resource of type has canonical url (in any version or status). */
static status_t url_taken(store_txn_t *txn, const char *type, const char *url, arena_t *arena,
                          bool *out, err_t *err)
{
    fhir_search_pair_t pairs[] = {url_pair("url", url), url_pair("_count", "1")};
    repo_search_t search = {.type = fhir_resource_type_find(type, strlen(type)),
                            .pairs = pairs,
                            .npairs = sizeof(pairs) / sizeof(pairs[0]),
                            .now_us = store_txn_time_us(txn)};
    fhir_search_plan_t *plan;
    store_search_t query;
    store_search_result_t found;
    status_t rc = repo_search_plan(NULL, &search, arena, &plan, &query, err);
    if (rc == ERR_OK && (rc = store_txn_search(txn, &query, arena, &found, err)) == ERR_OK)
        *out = found.nmatch > 0;
    return rc;
}

static status_t load_one(store_txn_t *txn, load_t *load, const char *name, json_t *resource,
                         err_t *err)
{
    const char *type = json_string_value(json_object_get(resource, "resourceType"));
    const char *url = json_string_value(json_object_get(resource, "url"));
    const char *id = json_string_value(json_object_get(resource, "id"));
    if (!type || !url || !id || !fhir_resource_type_find(type, strlen(type)))
        return err_set(err, ERR_INTERNAL, NULL,
                       "the built-in protocol %s has an entry without resourceType, url or id",
                       name);
    /* there already: a resource with its url, or its id in any state (deleted included) */
    bool taken;
    store_current_t current;
    status_t rc = url_taken(txn, type, url, load->arena, &taken, err);
    if (rc || (rc = store_txn_current(txn, type, id, &current, err)))
        return rc;
    if (taken || current.version > 0) {
        load->report.present++;
        return ERR_OK;
    }
    repo_write_t w;
    err_t why = ERR_INIT;
    rc = repo_prepare_resource(&w, REPO_UPDATE, resource, id, 0, load->arena, &why);
    w.author = "built-in protocols"; /* the version-author (repo/author.h) */
    if (rc == ERR_OK)
        rc = repo_write_txn(txn, &w, &why);
    if (rc) {
        /* the code stays (a busy database is retried); the message says where */
        const char *expression = why.nissues ? why.issues[0].expression : NULL;
        rc = err_set(err, rc, expression, "the built-in protocol %s, %s/%s: %s", name, type, id,
                     err_message(&why));
    } else {
        load->report.created++;
    }
    err_release(&why);
    return rc;
}

static status_t load_txn(store_txn_t *txn, void *arg, err_t *err)
{
    load_t *load = arg;
    load->report = (care_builtin_report_t){0, 0};
    for (size_t i = 0; i < care__nprotocols; i++) {
        const char *name = care__protocols[i].name;
        err_t why = ERR_INIT;
        json_t *bundle = jv_parse(care__protocols[i].json, strlen(care__protocols[i].json), &why);
        if (!bundle) {
            status_t rc = err_set(err, ERR_INTERNAL, NULL, "the built-in protocol %s: %s", name,
                                  err_message(&why));
            err_release(&why);
            return rc;
        }
        status_t rc = ERR_OK;
        size_t j;
        json_t *entry;
        json_array_foreach(json_object_get(bundle, "entry"), j, entry)
        {
            json_t *resource = json_object_get(entry, "resource");
            if ((rc = load_one(txn, load, name, resource, err)))
                break;
        }
        json_decref(bundle);
        if (rc)
            return rc;
    }
    return ERR_OK;
}

status_t care_builtin_load(store_t *store, care_builtin_report_t *out, err_t *err)
{
    arena_t arena;
    arena_init(&arena);
    load_t load = {.arena = &arena};
    status_t rc = store_run(store, load_txn, &load, err);
    if (rc == ERR_OK && out)
        *out = load.report;
    arena_release(&arena);
    return rc;
}
