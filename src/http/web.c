/*
 * web.c - the coordinators' web app (web/, built into the binary by web/build.mjs) and its
 * built-in OAuth client, concerto-web.
 *
 * A GET or HEAD of /assets/NAME is a bundled file, named after its content and so cached for
 * a year (404 when there is none); one of the app's own routes (is_app_route) gets index.html
 * (never cached, with a policy that loads scripts and styles from this origin only). Every
 * other path is the server's (the API, OAuth, admin, or its 404). The files live in static arrays:
 * nothing is copied to answer.
 */
#include <stdio.h>
#include <string.h>

#include "auth/clients.h"
#include "base/clock.h"
#include "base/log.h"
#include "http/http_int.h"
#include "http/web.h"

typedef struct {
    const char *path, *type, *etag;
    const unsigned char *body;
    size_t len;
    const unsigned char *gzip; /* NULL when gzip saves too little */
    size_t gzip_len;
} web_asset_t;

#include "web_assets.h"

/* What the app may load: its own scripts, styles and API calls, nothing inline. */
#define WEB_CSP                                                                     \
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " \
    "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

static bool has_prefix(h2o_iovec_t path, const char *prefix)
{
    size_t n = strlen(prefix);
    return path.len >= n && memcmp(path.base, prefix, n) == 0;
}

static const web_asset_t *find_asset(const char *path, size_t len)
{
    for (size_t i = 0; i < web__nassets; i++)
        if (strlen(web__assets[i].path) == len && memcmp(web__assets[i].path, path, len) == 0)
            return &web__assets[i];
    return NULL;
}

static void set(h2o_req_t *req, const h2o_token_t *token, const char *value)
{
    h2o_set_header(&req->pool, &req->res.headers, token, value, strlen(value), 1);
}

static bool header_contains(h2o_req_t *req, const h2o_token_t *token, const char *needle)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    if (i < 0)
        return false;
    h2o_iovec_t v = req->headers.entries[i].value;
    size_t n = strlen(needle);
    for (size_t at = 0; at + n <= v.len; at++)
        if (memcmp(v.base + at, needle, n) == 0)
            return true;
    return false;
}

static void send_static(h2o_req_t *req, int status, const char *reason, const void *body,
                        size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = len;
    h2o_start_response(req, &generator);
    h2o_iovec_t iov = h2o_iovec_init(body, len);
    h2o_send(req, &iov, 1, H2O_SEND_STATE_FINAL);
}

static void send_asset(h2o_req_t *req, const web_asset_t *asset, const char *cache_control)
{
    set(req, H2O_TOKEN_CONTENT_TYPE, asset->type);
    set(req, H2O_TOKEN_CACHE_CONTROL, cache_control);
    set(req, H2O_TOKEN_ETAG, asset->etag);
    if (asset->gzip)
        set(req, H2O_TOKEN_VARY, "Accept-Encoding");
    if (header_contains(req, H2O_TOKEN_IF_NONE_MATCH, asset->etag)) {
        send_static(req, 304, "Not Modified", "", 0);
        return;
    }
    if (asset->gzip && header_contains(req, H2O_TOKEN_ACCEPT_ENCODING, "gzip")) {
        set(req, H2O_TOKEN_CONTENT_ENCODING, "gzip");
        send_static(req, 200, "OK", asset->gzip, asset->gzip_len);
    } else {
        send_static(req, 200, "OK", asset->body, asset->len);
    }
}

/* The app's own routes (web/src/main.tsx): /, /worklist, /patients, /transitions, and
 * /patients/ID and /tasks/ID. */
static bool is_app_route(h2o_iovec_t path)
{
    static const char *const pages[] = {"/", "/worklist", "/patients", "/transitions"};
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
        if (h2o_memis(path.base, path.len, pages[i], strlen(pages[i])))
            return true;
    static const char *const items[] = {"/patients/", "/tasks/"};
    for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
        size_t n = strlen(items[i]);
        if (!has_prefix(path, items[i]) || path.len == n)
            continue;
        /* one segment, an id: no further slash, no dot */
        const char *id = path.base + n;
        size_t len = path.len - n;
        return !memchr(id, '/', len) && !memchr(id, '.', len);
    }
    return false;
}

bool http__web_route(h2o_req_t *req)
{
    h2o_iovec_t path = req->path_normalized;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
        !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")))
        return false;
    if (has_prefix(path, "/assets/")) {
        const web_asset_t *asset = find_asset(path.base, path.len);
        if (asset) {
            send_asset(req, asset, "public, max-age=31536000, immutable");
            return true;
        }
        set(req, H2O_TOKEN_CONTENT_TYPE, "text/plain; charset=utf-8");
        send_static(req, 404, "Not Found", "not found\n", 10);
        return true;
    }
    if (!is_app_route(path))
        return false; /* the server's own 404 */
    const web_asset_t *index = find_asset(H2O_STRLIT("/index.html"));
    http__set_content_security_policy(req, WEB_CSP);
    send_asset(req, index, "no-cache");
    return true;
}

/* ---- the built-in client ----------------------------------------------------------------- */

/* The redirect URIs: the origin the app is reached at followed by "/": the one of --base-url,
 * else the listen address (with localhost beside a loopback or wildcard address). */
static size_t web_redirect_uris(const http_config_t *config, int port, char out[2][300])
{
    if (config->base_url) {
        const char *scheme_end = strstr(config->base_url, "://");
        const char *host = scheme_end ? scheme_end + 3 : config->base_url;
        size_t host_len = strcspn(host, "/");
        snprintf(out[0], sizeof(out[0]), "%.*s/", (int)(host - config->base_url + host_len),
                 config->base_url);
        return 1;
    }
    const char *scheme = config->tls ? "https" : "http";
    const char *host = config->host;
    if (!strcmp(host, "0.0.0.0") || !strcmp(host, "::") || !*host || !strcmp(host, "127.0.0.1") ||
        !strcmp(host, "localhost")) {
        snprintf(out[0], sizeof(out[0]), "%s://localhost:%d/", scheme, port);
        snprintf(out[1], sizeof(out[1]), "%s://127.0.0.1:%d/", scheme, port);
        return 2;
    }
    if (strchr(host, ':'))
        snprintf(out[0], sizeof(out[0]), "%s://[%s]:%d/", scheme, host, port);
    else
        snprintf(out[0], sizeof(out[0]), "%s://%s:%d/", scheme, host, port);
    return 1;
}

void http__web_client(http_server_t *server, int port)
{
    char uris[2][300];
    size_t n = web_redirect_uris(&server->config, port, uris);
    const char *list[2];
    buf_t joined = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        list[i] = uris[i];
        buf_addf(&joined, "%s%s", i ? " " : "", uris[i]);
    }
    err_t err = ERR_INIT;
    arena_t arena;
    arena_init(&arena);
    store_conn_t *conn = NULL;
    store_client_t current;
    status_t rc = store_connect(server->store, &conn, &err);
    if (!rc)
        rc = store_client_get(conn, HTTP_WEB_CLIENT_ID, &arena, &current, &err);
    store_disconnect(conn);
    if (rc == ERR_OK && (current.disabled || (current.kind == STORE_CLIENT_PUBLIC &&
                                              !strcmp(current.scopes, HTTP_WEB_SCOPES) &&
                                              !strcmp(current.redirect_uris, joined.ptr))))
        goto out; /* as it should be, or disabled by an administrator: left alone */
    if (rc != ERR_OK && rc != ERR_NOT_FOUND)
        goto fail;
    if (rc == ERR_OK && (rc = auth_client_remove(&server->accounts, HTTP_WEB_CLIENT_ID, &err)))
        goto fail;
    err_reset(&err);
    auth_client_new_t client = {.client_id = HTTP_WEB_CLIENT_ID,
                                .name = "Concerto for care coordinators",
                                .kind = STORE_CLIENT_PUBLIC,
                                .scopes = HTTP_WEB_SCOPES,
                                .redirect_uris = list,
                                .nredirect_uris = n};
    rc = auth_client_register(&server->accounts, &client, clock_now_us(), &err);
    /* another server of the database registered it meanwhile */
    if (rc == ERR_CONFLICT)
        rc = ERR_OK;
    if (!rc) {
        log_info("the web app signs in as client %s, redirect URI %s", HTTP_WEB_CLIENT_ID,
                 joined.ptr);
        goto out;
    }
fail:
    log_warning("the web app cannot sign in here (client %s, redirect URI %s): %s; give "
                "--base-url with the https address people use",
                HTTP_WEB_CLIENT_ID, joined.ptr,
                err.nissues ? err.issues[0].message : "storage error");
out:
    err_release(&err);
    arena_release(&arena);
    buf_release(&joined);
}
