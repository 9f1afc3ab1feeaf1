/*
 * capability.c - the CapabilityStatement at /fhir/metadata, built at start-up from what the
 * server does: the resource types of the model, the interactions the router serves and the
 * search parameters (custom ones included: it is built again when they change). When the
 * router learns something new, this file says so in the same change.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/version.h"
#include "fhir/defs.h"
#include "fhir/search.h"
#include "http/http_int.h"
#include "repo/repo.h"

/* The parameters a search can use: those with an expression, and not special except near,
 * and the full-text ones. */
static bool searchable(const fhir_search_param_t *p)
{
    if (strcmp(p->code, "_content") == 0 || strcmp(p->code, "_text") == 0)
        return true;
    return p->expression && (p->type != FHIR_SEARCH_SPECIAL || strcmp(p->code, "near") == 0);
}

static bool targets(const fhir_search_param_t *p, const char *type)
{
    if (p->ntargets == 0)
        return true;
    for (size_t i = 0; i < p->ntargets; i++)
        if (strcmp(p->targets[i], type) == 0)
            return true;
    return false;
}

static void add_search_params(buf_t *out, const fhir_search_snapshot_t *snapshot,
                              const fhir_type_t *type)
{
    buf_addstr(out, "\"searchParam\":[");
    fhir_search_iter_t it;
    fhir_search_iter_init(&it, snapshot, type);
    bool first = true;
    for (const fhir_search_param_t *p; (p = fhir_search_iter_next(&it));) {
        if (!searchable(p))
            continue;
        buf_addf(out, "%s{\"name\":\"%s\",\"definition\":\"", first ? "" : ",", p->code);
        if (p->url)
            buf_add_json_escaped(out, p->url, strlen(p->url));
        buf_addf(out, "\",\"type\":\"%s\"}", fhir_search_type_name(p->type));
        first = false;
    }
    buf_addch(out, ']');
}

/* searchInclude: the type's reference parameters; searchRevInclude: the reference
 * parameters of every type that may point at it. */
static void add_includes(buf_t *out, const fhir_search_snapshot_t *snapshot,
                         const fhir_type_t *type)
{
    buf_addstr(out, ",\"searchInclude\":[");
    fhir_search_iter_t it;
    fhir_search_iter_init(&it, snapshot, type);
    bool first = true;
    for (const fhir_search_param_t *p; (p = fhir_search_iter_next(&it));) {
        if (p->type != FHIR_SEARCH_REFERENCE || !searchable(p))
            continue;
        buf_addf(out, "%s\"%s:%s\"", first ? "" : ",", type->name, p->code);
        first = false;
    }
    buf_addf(out, "%s\"%s:*\"],\"searchRevInclude\":[", first ? "" : ",", type->name);
    first = true;
    for (size_t i = 0; i < fhir_resource_type_count; i++) {
        const fhir_type_t *source = fhir_resource_types[i];
        fhir_search_iter_init(&it, snapshot, source);
        for (const fhir_search_param_t *p; (p = fhir_search_iter_next(&it));) {
            if (p->type != FHIR_SEARCH_REFERENCE || !searchable(p) || !targets(p, type->name))
                continue;
            buf_addf(out, "%s\"%s:%s\"", first ? "" : ",", source->name, p->code);
            first = false;
        }
    }
    buf_addch(out, ']');
}

/* Builds the statement for snapshot (held by the server from now on). */
static void build(http_server_t *server, const fhir_search_snapshot_t *snapshot)
{
    buf_t out = BUF_INIT;
    char date[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
    buf_addstr(&out, "{\"resourceType\":\"CapabilityStatement\",\"status\":\"active\",");
    buf_addf(&out, "\"date\":\"%s\",\"publisher\":\"Concerto\",\"kind\":\"instance\",", date);
    buf_addf(&out,
             "\"software\":{\"name\":\"Concerto\",\"version\":\"%s\"},"
             "\"implementation\":{\"description\":\"Concerto care coordination server\"",
             CONCERTO_VERSION);
    if (server->config.base_url) {
        buf_addstr(&out, ",\"url\":\"");
        buf_add_json_escaped(&out, server->config.base_url, strlen(server->config.base_url));
        buf_addch(&out, '"');
    }
    buf_addstr(&out,
               "},\"fhirVersion\":\"4.0.1\","
               "\"format\":[\"application/fhir+json\",\"json\"],"
               "\"rest\":[{\"mode\":\"server\","
               "\"documentation\":\"FHIR R4 REST API with JSON. Every version is kept; "
               "updates may create resources with a client-chosen id; If-Match is honoured "
               "on update and delete; conditional create (If-None-Exist), update and "
               "delete with strict criteria, also in Bundles, and conditional references "
               "in transactions. Search: every R4 search parameter of each type, "
               "chains, _has, _include and _revinclude (:iterate), following relative "
               "references and absolute ones to this server, custom SearchParameters, full text"
               " (_content, _text), _contained and "
               "_containedType, _sort, _count, _total, _summary, _elements; paging by "
               "cursor; lenient unless Prefer: handling=strict.\",\"resource\":[");
    for (size_t i = 0; i < fhir_resource_type_count; i++) {
        const char *name = fhir_resource_types[i]->name;
        if (i)
            buf_addch(&out, ',');
        if (strcmp(name, "AuditEvent") == 0) { /* the audit trail: read-only */
            http__audit_capability(&out);
            continue;
        }
        buf_addf(&out,
                 "{\"type\":\"%s\",\"profile\":\"http://hl7.org/fhir/StructureDefinition/%s\","
                 "\"interaction\":[{\"code\":\"read\"},{\"code\":\"vread\"},{\"code\":\"update\"},"
                 "{\"code\":\"patch\"},"
                 "{\"code\":\"delete\"},{\"code\":\"history-instance\"},"
                 "{\"code\":\"history-type\"},{\"code\":\"create\"},"
                 "{\"code\":\"search-type\"}],"
                 "\"versioning\":\"versioned-update\",\"readHistory\":true,"
                 "\"updateCreate\":true,\"conditionalCreate\":true,\"conditionalRead\":"
                 "\"not-supported\",\"conditionalUpdate\":true,\"conditionalDelete\":"
                 "\"%s\",",
                 name, name, server->config.multiple_delete ? "multiple" : "single");
        if (strcmp(name, "Patient") == 0)
            buf_addstr(&out, "\"operation\":[{\"name\":\"everything\",\"definition\":"
                             "\"http://hl7.org/fhir/OperationDefinition/Patient-everything\"}],");
        if (strcmp(name, "CarePlan") == 0)
            buf_addstr(&out, "\"operation\":[{\"name\":\"adherence\",\"definition\":"
                             "\"http://concerto.dev/fhir/OperationDefinition/CarePlan-adherence\","
                             "\"documentation\":\"of the plan's activities whose due time has "
                             "passed, how many were done on time (docs/api.md)\"}],");
        if (strcmp(name, "Encounter") == 0)
            buf_addstr(&out, "\"operation\":[{\"name\":\"tcm\",\"definition\":"
                             "\"http://concerto.dev/fhir/OperationDefinition/Encounter-tcm\","
                             "\"documentation\":\"the Transitional Care Management report of a "
                             "discharge: each requirement met, pending or missed, and the code "
                             "it supports (docs/api.md)\"},{\"name\":\"readmissions\","
                             "\"definition\":\"http://concerto.dev/fhir/OperationDefinition/"
                             "Encounter-readmissions\",\"documentation\":\"the 30-day "
                             "readmission measure of the stays discharged in a period, as a "
                             "MeasureReport (docs/api.md)\"}],");
        if (strcmp(name, "PlanDefinition") == 0)
            buf_addstr(&out, "\"operation\":[{\"name\":\"apply\",\"definition\":"
                             "\"http://hl7.org/fhir/OperationDefinition/PlanDefinition-apply\"}],");
        if (strcmp(name, "Task") == 0)
            buf_addstr(&out, "\"operation\":[{\"name\":\"worklist\",\"definition\":"
                             "\"http://concerto.dev/fhir/OperationDefinition/Task-worklist\"}],");
        add_search_params(&out, snapshot, fhir_resource_types[i]);
        add_includes(&out, snapshot, fhir_resource_types[i]);
        buf_addch(&out, '}');
    }
    buf_addstr(&out, "],\"interaction\":[{\"code\":\"history-system\"},{\"code\":\"batch\"},"
                     "{\"code\":\"transaction\"},{\"code\":\"search-system\"}],");
    add_search_params(&out, snapshot, NULL);
    buf_addstr(&out, "}]}");
    free(server->capability);
    if (server->capability_snapshot)
        fhir_search_snapshot_release(server->capability_snapshot);
    server->capability_snapshot = snapshot;
    server->capability_len = out.len;
    server->capability = buf_detach(&out, NULL);
}

void http__build_capability(http_server_t *server)
{
    pthread_mutex_init(&server->capability_lock, NULL);
    build(server, repo_params_acquire());
}

/* rest.security: the OAuth endpoints of base, as SMART App Launch asks
 * (http://hl7.org/fhir/smart-app-launch/conformance.html). */
static void add_security(buf_t *out, const char *base)
{
    arena_t arena;
    arena_init(&arena);
    buf_addstr(out, ",\"security\":{\"cors\":true,\"service\":[{\"coding\":[{\"system\":"
                    "\"http://terminology.hl7.org/CodeSystem/restful-security-service\","
                    "\"code\":\"SMART-on-FHIR\"}],\"text\":\"OAuth2 using SMART-on-FHIR "
                    "profile (see http://docs.smarthealthit.org)\"}],\"extension\":[{\"url\":"
                    "\"http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris\","
                    "\"extension\":[");
    static const char *const names[] = {"authorize", "token", "revoke", "introspect"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *url = http__oauth_url(&arena, base, names[i]);
        buf_addf(out, "%s{\"url\":\"%s\",\"valueUri\":\"", i ? "," : "", names[i]);
        buf_add_json_escaped(out, url, strlen(url));
        buf_addstr(out, "\"}");
    }
    buf_addstr(out, "]}],\"description\":\"Every request but this statement needs an OAuth 2.0 "
                    "access token (Authorization: Bearer); see "
                    "/fhir/.well-known/smart-configuration\"}");
    arena_release(&arena);
}

char *http__capability(http_server_t *server, h2o_mem_pool_t *pool, const char *base,
                       size_t *out_len)
{
    const fhir_search_snapshot_t *snapshot = repo_params_acquire();
    pthread_mutex_lock(&server->capability_lock);
    if (snapshot != server->capability_snapshot)
        build(server, snapshot); /* takes the reference */
    else
        fhir_search_snapshot_release(snapshot);
    /* the statement ends with rest[0]'s "}]}": security goes in before, for the URL of the
     * request (the base comes from its Host when no --base-url is set) */
    buf_t out = BUF_INIT;
    buf_add(&out, server->capability, server->capability_len - 3);
    pthread_mutex_unlock(&server->capability_lock);
    add_security(&out, base);
    buf_addstr(&out, "}]}");
    char *copy = h2o_mem_alloc_pool(pool, out.len);
    memcpy(copy, out.ptr, out.len);
    *out_len = out.len;
    buf_release(&out);
    return copy;
}
