/*
 * capability.c - the CapabilityStatement at /fhir/metadata, built once at start-up from what
 * the server does: the resource types of the model and the interactions the router serves.
 * When the router learns something new, this file says so in the same change.
 */
#include <string.h>
#include <time.h>

#include "base/version.h"
#include "fhir/defs.h"
#include "fhir/search.h"
#include "http/http_int.h"

/* The parameters a search can use: those with an expression, and not special (near). */
static bool searchable(const fhir_search_param_t *p)
{
    return p->expression && p->type != FHIR_SEARCH_SPECIAL;
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

static void add_search_params(buf_t *out, const fhir_type_t *type)
{
    buf_addstr(out, "\"searchParam\":[");
    fhir_search_iter_t it;
    fhir_search_iter_init(&it, fhir_search_builtin(), type);
    bool first = true;
    for (const fhir_search_param_t *p; (p = fhir_search_iter_next(&it));) {
        if (!searchable(p))
            continue;
        buf_addf(out, "%s{\"name\":\"%s\",\"definition\":\"%s\",\"type\":\"%s\"}", first ? "" : ",",
                 p->code, p->url ? p->url : "", fhir_search_type_name(p->type));
        first = false;
    }
    buf_addch(out, ']');
}

/* searchInclude: the type's reference parameters; searchRevInclude: the reference
 * parameters of every type that may point at it. */
static void add_includes(buf_t *out, const fhir_type_t *type)
{
    buf_addstr(out, ",\"searchInclude\":[");
    fhir_search_iter_t it;
    fhir_search_iter_init(&it, fhir_search_builtin(), type);
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
        fhir_search_iter_init(&it, fhir_search_builtin(), source);
        for (const fhir_search_param_t *p; (p = fhir_search_iter_next(&it));) {
            if (p->type != FHIR_SEARCH_REFERENCE || !searchable(p) || !targets(p, type->name))
                continue;
            buf_addf(out, "%s\"%s:%s\"", first ? "" : ",", source->name, p->code);
            first = false;
        }
    }
    buf_addch(out, ']');
}

void http__build_capability(http_server_t *server)
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
    buf_addstr(&out, "},\"fhirVersion\":\"4.0.1\","
                     "\"format\":[\"application/fhir+json\",\"json\"],"
                     "\"rest\":[{\"mode\":\"server\","
                     "\"documentation\":\"FHIR R4 REST API with JSON. Every version is kept; "
                     "updates may create resources with a client-chosen id; If-Match is honoured "
                     "on update and delete; conditional create (If-None-Exist), update and "
                     "delete with strict criteria, also in Bundles, and conditional references "
                     "in transactions. Search: every R4 search parameter of each type, "
                     "chains, _has, _include and _revinclude (:iterate), following relative "
                     "references and absolute ones to this server, _contained and "
                     "_containedType, _sort, _count, _total, _summary, _elements; paging by "
                     "cursor; lenient unless Prefer: handling=strict.\",\"resource\":[");
    for (size_t i = 0; i < fhir_resource_type_count; i++) {
        const char *name = fhir_resource_types[i]->name;
        if (i)
            buf_addch(&out, ',');
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
        add_search_params(&out, fhir_resource_types[i]);
        add_includes(&out, fhir_resource_types[i]);
        buf_addch(&out, '}');
    }
    buf_addstr(&out, "],\"interaction\":[{\"code\":\"history-system\"},{\"code\":\"batch\"},"
                     "{\"code\":\"transaction\"},{\"code\":\"search-system\"}],");
    add_search_params(&out, NULL);
    buf_addstr(&out, "}]}");
    server->capability_len = out.len;
    server->capability = buf_detach(&out, NULL);
}
