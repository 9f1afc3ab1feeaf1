/*
 * headers.c - the security headers of every response, added by an h2o filter as the response
 * starts, so that no answer goes out without them: the FHIR API's, /healthz's, and the error
 * pages h2o writes itself (such as its 413 for a body far over the limit).
 *
 * A response may choose its own Content-Security-Policy or Cache-Control before it starts;
 * the filter adds a header only where the response set none. The defaults are the strict
 * ones: a policy that lets nothing load, and no-store, since a FHIR response may carry
 * health data.
 */
#include <string.h>

#include "http/http_int.h"

typedef struct {
    h2o_filter_t super;
    bool tls; /* every connection of this server speaks TLS */
} security_filter_t;

/* A year, and for every subdomain: browsers then never try plain HTTP on this host. */
#define HSTS "max-age=31536000; includeSubDomains"

static void add_token_default(h2o_req_t *req, const h2o_token_t *token, const char *value)
{
    if (h2o_find_header(&req->res.headers, token, -1) < 0)
        h2o_add_header(&req->pool, &req->res.headers, token, NULL, value, strlen(value));
}

/* name in lower case (HTTP/2 sends names as they are given) */
static void add_default(h2o_req_t *req, const char *name, const char *value)
{
    size_t len = strlen(name);
    if (h2o_find_header_by_str(&req->res.headers, name, len, -1) < 0)
        h2o_add_header_by_str(&req->pool, &req->res.headers, name, len, 0, NULL, value,
                              strlen(value));
}

static void on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    security_filter_t *filter = (security_filter_t *)self;
    add_default(req, "x-content-type-options", "nosniff");
    add_default(req, "x-frame-options", "DENY");
    add_default(req, "referrer-policy", "no-referrer");
    add_default(req, "content-security-policy", HTTP_CSP_API);
    add_token_default(req, H2O_TOKEN_CACHE_CONTROL, "no-store");
    if (filter->tls)
        add_token_default(req, H2O_TOKEN_STRICT_TRANSPORT_SECURITY, HSTS);
    h2o_setup_next_ostream(req, slot);
}

void http__register_security_headers(http_server_t *server, h2o_pathconf_t *pathconf)
{
    security_filter_t *filter =
        (security_filter_t *)h2o_create_filter(pathconf, sizeof(security_filter_t));
    filter->super.on_setup_ostream = on_setup_ostream;
    filter->tls = server->config.tls != NULL;
}

void http__set_content_security_policy(h2o_req_t *req, const char *policy)
{
    size_t len = strlen(policy);
    char *copy = h2o_mem_alloc_pool(&req->pool, len + 1);
    memcpy(copy, policy, len + 1);
    h2o_set_header_by_str(&req->pool, &req->res.headers, "content-security-policy", 23, 0, copy,
                          len, 1);
}
