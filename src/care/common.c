/*
 * common.c - what the engine's handlers share (care_int.h).
 */
#include "care/care_int.h"

#include <string.h>

#include "base/jv.h"
#include "base/tz.h"
#include "base/url.h"
#include "fhir/defs.h"
#include "fhir/workflow.h"
#include "repo/repo.h"

const char *care__str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void release_json(void *p)
{
    json_decref(p);
}

json_t *care__owned(arena_t *arena, json_t *value)
{
    if (value)
        arena_cleanup_add(arena, release_json, value);
    return value;
}

json_t *care__json_in(arena_t *arena, const char *text, size_t len, err_t *err)
{
    return care__owned(arena, jv_parse(text, len, err));
}

status_t care__search(store_conn_t *conn, store_txn_t *txn, const char *type,
                      fhir_search_pair_t *pairs, size_t n, int64_t now_us, arena_t *arena,
                      store_search_result_t *out, err_t *err)
{
    repo_search_t s = {.type = fhir_resource_type_find(type, strlen(type)),
                       .pairs = pairs,
                       .npairs = n,
                       .now_us = now_us};
    fhir_search_plan_t *plan;
    store_search_t query;
    status_t rc = repo_search_plan(conn, &s, arena, &plan, &query, err);
    if (rc)
        return rc;
    return txn ? store_txn_search(txn, &query, arena, out, err)
               : store_search(conn, &query, arena, out, err);
}

status_t care__gather(store_conn_t *conn, const repo_search_t *search, size_t max,
                      const char *too_many, arena_t *arena, json_t *array, err_t *err)
{
    fhir_search_plan_t *plan;
    store_search_t query;
    status_t rc = repo_search_plan(conn, search, arena, &plan, &query, err);
    while (rc == ERR_OK) {
        store_search_result_t found;
        if ((rc = store_search(conn, &query, arena, &found, err)))
            break;
        for (size_t i = 0; i < found.nmatch; i++) {
            if (json_array_size(array) >= max)
                return err_set(err, ERR_TOO_LARGE, NULL, "%s", too_many);
            const store_version_t *v = &found.entries[i].version;
            json_t *resource = jv_parse(v->json, v->json_len, err);
            if (!resource)
                return err->code;
            json_array_append_new(array, resource);
        }
        if (!found.next)
            break;
        query.page = found.next;
    }
    return rc;
}

const char *care__utc_value(arena_t *arena, const char *prefix, int64_t us)
{
    int64_t secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t rest = secs - days * 86400;
    int y, m, d;
    tz_civil_from_days(days, &y, &m, &d);
    return arena_printf(arena, "%s%04d-%02d-%02dT%02d:%02d:%02dZ", prefix, y, m, d,
                        (int)(rest / 3600), (int)(rest % 3600 / 60), (int)(rest % 60));
}

status_t care__read(store_conn_t *conn, const char *type, const char *id, int64_t version,
                    arena_t *arena, json_t **out, err_t *err)
{
    *out = NULL;
    store_version_t v;
    status_t rc = store_read(conn, type, id, version, arena, &v, err);
    if (rc == ERR_NOT_FOUND || rc == ERR_GONE || (rc == ERR_OK && v.deleted)) {
        err_reset(err);
        return ERR_OK;
    }
    if (rc)
        return rc;
    return (*out = care__json_in(arena, v.json, v.json_len, err)) ? ERR_OK : err->code;
}

status_t care__coordination_team(store_conn_t *conn, const char *patient, int64_t now_us,
                                 arena_t *arena, json_t **out, err_t *err)
{
    *out = NULL;
    if (!patient)
        return ERR_OK;
    fhir_search_pair_t pairs[] = {
        url_pair("subject", patient),
        url_pair("status", "active"),
        url_pair("category", CARE_LOINC_SYSTEM "|" CARE_TEAM_COORDINATION),
        url_pair("_count", "1"),
    };
    store_search_result_t found;
    status_t rc = care__search(conn, NULL, "CareTeam", pairs, 4, now_us, arena, &found, err);
    if (rc || !found.nmatch)
        return rc;
    const store_version_t *v = &found.entries[0].version;
    return (*out = care__json_in(arena, v->json, v->json_len, err)) ? ERR_OK : err->code;
}
