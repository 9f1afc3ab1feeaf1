/*
 * capability.c - the CapabilityStatement at /fhir/metadata, built once at start-up from what
 * the server does: the resource types of the model and the interactions the router serves.
 * When the router learns something new, this file says so in the same change.
 */
#include <string.h>
#include <time.h>

#include "fhir/defs.h"
#include "http/http_int.h"
#include "base/version.h"

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
                     "on update and delete.\",\"resource\":[");
    for (size_t i = 0; i < fhir_resource_type_count; i++) {
        const char *name = fhir_resource_types[i]->name;
        if (i)
            buf_addch(&out, ',');
        buf_addf(&out,
                 "{\"type\":\"%s\",\"profile\":\"http://hl7.org/fhir/StructureDefinition/%s\","
                 "\"interaction\":[{\"code\":\"read\"},{\"code\":\"vread\"},{\"code\":\"update\"},"
                 "{\"code\":\"patch\"},"
                 "{\"code\":\"delete\"},{\"code\":\"history-instance\"},"
                 "{\"code\":\"history-type\"},{\"code\":\"create\"}],"
                 "\"versioning\":\"versioned-update\",\"readHistory\":true,"
                 "\"updateCreate\":true,\"conditionalCreate\":false,\"conditionalRead\":"
                 "\"not-supported\",\"conditionalUpdate\":false,\"conditionalDelete\":"
                 "\"not-supported\"}",
                 name, name);
    }
    buf_addstr(&out, "],\"interaction\":[{\"code\":\"history-system\"},{\"code\":\"batch\"},"
                     "{\"code\":\"transaction\"}]}]}");
    server->capability_len = out.len;
    server->capability = buf_detach(&out, NULL);
}
