/*
 * oauth.c - SMART on FHIR authorization over HTTP: the discovery document
 * (/fhir/.well-known/smart-configuration), the token endpoint (RFC 6749 with PKCE, SMART
 * Backend Services), revocation (RFC 7009), introspection (RFC 7662), the server's JWK Set, and
 * CORS for browser apps.
 *
 * Every answer of the token, revocation and introspection endpoints is JSON with
 * Cache-Control: no-store; errors are RFC 6749 section 5.2 objects {error, error_description},
 * 400 except invalid_client (401, with WWW-Authenticate: Basic when the client tried Basic).
 * The descriptions are for the app's developer; they never say which half of a client's
 * credentials was wrong. The work is done on the request's thread (the store's lookups and
 * transactions), but for a client secret's argon2id verification, which a worker does
 * (offload.c) before the endpoint runs on the thread again.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth/clients.h"
#include "auth/audit.h"
#include "auth/idtoken.h"
#include "base/b64.h"
#include "base/clock.h"
#include "base/jv.h"
#include "base/log.h"
#include "base/mem.h"
#include "http/http_int.h"
#include "repo/scope.h"

#define FORM_TYPE  "application/x-www-form-urlencoded"
#define JWT_BEARER "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

/* What one OAuth request has. */
typedef struct {
    http_thread_t *thread;
    h2o_req_t *req;
    arena_t *arena;
    const char *base; /* the FHIR base URL: the issuer */
    url_pair_t *form;
    size_t nform;
    int64_t now_us;
    bool basic_tried; /* the client sent Authorization: Basic */
    bool form_read;   /* form and nform are set */
    /* the client secret's check, when a worker did it before the endpoint runs */
    struct {
        bool done;
        status_t rc;
        err_t err;
        store_client_t client;
    } secret;
} oauth_t;

static bool iov_is(h2o_iovec_t v, const char *s)
{
    size_t n = strlen(s);
    return v.len == n && memcmp(v.base, s, n) == 0;
}

static h2o_iovec_t request_header(h2o_req_t *req, const h2o_token_t *token)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    return i < 0 ? h2o_iovec_init(NULL, 0) : req->headers.entries[i].value;
}

static void add_header(h2o_req_t *req, const char *name, const char *value)
{
    size_t len = strlen(value);
    char *copy = h2o_mem_alloc_pool(&req->pool, len + 1);
    memcpy(copy, value, len + 1);
    h2o_set_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 1, copy, len, 1);
}

/* Sends body (a JSON value, taken) with status. */
static void send_json(h2o_req_t *req, int status, json_t *body)
{
    buf_t text = BUF_INIT;
    jv_dump(body, &text);
    json_decref(body);
    char *copy = h2o_mem_alloc_pool(&req->pool, text.len + 1);
    memcpy(copy, text.ptr, text.len + 1);
    size_t len = text.len;
    buf_release(&text);
    req->res.status = status;
    req->res.reason = status == 200 ? "OK" : status == 401 ? "Unauthorized" : "Bad Request";
    add_header(req, "content-type", "application/json; charset=utf-8");
    add_header(req, "cache-control", "no-store");
    add_header(req, "pragma", "no-cache");
    req->res.content_length = len;
    h2o_send_inline(req, copy, len);
}

/* An RFC 6749 error: 400, or 401 for invalid_client. */
static void send_error(oauth_t *o, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void send_error(oauth_t *o, const char *error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char description[512];
    vsnprintf(description, sizeof(description), fmt, ap);
    va_end(ap);
    /* error_description is limited to printable ASCII but '"' and '\' (RFC 6749 5.2) */
    for (char *p = description; *p; p++)
        if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\')
            *p = '\'';
    int status = strcmp(error, "invalid_client") == 0 ? 401 : 400;
    /* RFC 6749 section 5.2: a client that tried Basic is told the scheme to use */
    if (status == 401 && o->basic_tried)
        add_header(o->req, "www-authenticate", "Basic realm=\"concerto\"");
    log_info("%.*s %.*s: %d %s (%s)", (int)o->req->method.len, o->req->method.base,
             (int)o->req->path.len, o->req->path.base, status, error, description);
    json_t *body = json_object();
    json_object_set_new(body, "error", json_string(error));
    json_object_set_new(body, "error_description", json_string(description));
    send_json(o->req, status, body);
}

/* A storage failure: the one 5xx these endpoints give. */
static void send_failure(oauth_t *o, err_t *err)
{
    log_error("%.*s %.*s: %s%s%s", (int)o->req->method.len, o->req->method.base,
              (int)o->req->path.len, o->req->path.base, err_message(err),
              err->log_detail ? ": " : "", err->log_detail ? err->log_detail : "");
    int status = err_http_status(err->code) >= 500 ? err_http_status(err->code) : 500;
    o->req->res.status = status;
    o->req->res.reason = status == 503 ? "Service Unavailable" : "Internal Server Error";
    if (status == 503)
        add_header(o->req, "retry-after", "1");
    json_t *body = json_object();
    json_object_set_new(body, "error", json_string("server_error"));
    json_object_set_new(body, "error_description", json_string("the server could not answer"));
    buf_t text = BUF_INIT;
    jv_dump(body, &text);
    json_decref(body);
    char *copy = h2o_mem_alloc_pool(&o->req->pool, text.len + 1);
    memcpy(copy, text.ptr, text.len + 1);
    add_header(o->req, "content-type", "application/json; charset=utf-8");
    o->req->res.content_length = text.len;
    h2o_send_inline(o->req, copy, text.len);
    buf_release(&text);
}

/* ---- URLs ---------------------------------------------------------------------------- */

const char *http__oauth_url(arena_t *arena, const char *base, const char *endpoint)
{
    /* the FHIR base's origin and path without its last "/fhir": .../oauth2/ENDPOINT */
    size_t len = strlen(base);
    while (len && base[len - 1] == '/')
        len--;
    if (len >= 5 && memcmp(base + len - 5, "/fhir", 5) == 0) {
        len -= 5;
    } else {
        const char *scheme = strstr(base, "://");
        const char *slash = scheme ? strchr(scheme + 3, '/') : NULL;
        if (slash)
            len = (size_t)(slash - base);
    }
    return arena_printf(arena, "%.*s/oauth2/%s", (int)len, base, endpoint);
}

/* ---- CORS ---------------------------------------------------------------------------- */

#define CORS_ALLOW_HEADERS                                                          \
    "Authorization, Content-Type, Accept, If-Match, If-None-Match, If-None-Exist, " \
    "If-Modified-Since, Prefer, X-Emergency-Access"
#define CORS_EXPOSE_HEADERS "Location, ETag, Content-Location, Last-Modified, WWW-Authenticate"

bool http__cors_path(h2o_iovec_t path)
{
    if (path.len >= 5 && memcmp(path.base, "/fhir", 5) == 0 &&
        (path.len == 5 || path.base[5] == '/'))
        return true;
    return iov_is(path, "/oauth2/token") || iov_is(path, "/oauth2/jwks") ||
           iov_is(path, "/oauth2/revoke") || iov_is(path, "/oauth2/introspect");
}

void http__cors_headers(h2o_req_t *req)
{
    add_header(req, "access-control-allow-origin", "*");
    add_header(req, "access-control-expose-headers", CORS_EXPOSE_HEADERS);
}

void http__cors_preflight(h2o_req_t *req)
{
    http__cors_headers(req);
    add_header(req, "access-control-allow-methods", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    add_header(req, "access-control-allow-headers", CORS_ALLOW_HEADERS);
    add_header(req, "access-control-max-age", "600");
    req->res.status = 204;
    req->res.reason = "No Content";
    req->res.content_length = 0;
    h2o_send_inline(req, "", 0);
}

/* ---- discovery ----------------------------------------------------------------------- */

static json_t *string_array(const char *const *items)
{
    json_t *a = json_array();
    for (; *items; items++)
        json_array_append_new(a, json_string(*items));
    return a;
}

static void smart_configuration(oauth_t *o)
{
    bool oidc = o->thread->server->config.signing_key != NULL;
    json_t *c = json_object();
    json_object_set_new(c, "issuer", json_string(o->base));
    json_object_set_new(c, "jwks_uri", json_string(http__oauth_url(o->arena, o->base, "jwks")));
    json_object_set_new(c, "authorization_endpoint",
                        json_string(http__oauth_url(o->arena, o->base, "authorize")));
    json_object_set_new(c, "token_endpoint",
                        json_string(http__oauth_url(o->arena, o->base, "token")));
    json_object_set_new(c, "token_endpoint_auth_methods_supported",
                        string_array((const char *const[]){
                            "client_secret_basic", "client_secret_post", "private_key_jwt", NULL}));
    json_object_set_new(c, "token_endpoint_auth_signing_alg_values_supported",
                        string_array((const char *const[]){"RS384", "ES384", NULL}));
    json_object_set_new(c, "grant_types_supported",
                        string_array((const char *const[]){"authorization_code", "refresh_token",
                                                           "client_credentials", NULL}));
    json_object_set_new(
        c, "scopes_supported",
        string_array(
            oidc ? (const char *const[]){"openid", "fhirUser", "launch/patient", "offline_access",
                                         "online_access", "patient/*.cruds", "user/*.cruds",
                                         "system/*.cruds", "patient/*.read", "user/*.read",
                                         "system/*.read", NULL}
                 : (const char *const[]){"launch/patient", "offline_access", "online_access",
                                         "patient/*.cruds", "user/*.cruds", "system/*.cruds",
                                         "patient/*.read", "user/*.read", "system/*.read", NULL}));
    json_object_set_new(c, "response_types_supported",
                        string_array((const char *const[]){"code", NULL}));
    json_object_set_new(c, "introspection_endpoint",
                        json_string(http__oauth_url(o->arena, o->base, "introspect")));
    json_object_set_new(c, "revocation_endpoint",
                        json_string(http__oauth_url(o->arena, o->base, "revoke")));
    json_object_set_new(c, "code_challenge_methods_supported",
                        string_array((const char *const[]){"S256", NULL}));
    json_t *capabilities = string_array((const char *const[]){
        "launch-standalone", "client-public", "client-confidential-symmetric",
        "client-confidential-asymmetric", "context-standalone-patient", "permission-offline",
        "permission-patient", "permission-user", "permission-v1", "permission-v2", NULL});
    if (oidc)
        json_array_append_new(capabilities, json_string("sso-openid-connect"));
    json_object_set_new(c, "capabilities", capabilities);
    send_json(o->req, 200, c);
}

static void jwks(oauth_t *o)
{
    json_t *keys = json_array();
    const jose_key_t *key = o->thread->server->config.signing_key;
    if (key)
        json_array_append_new(keys, jose_key_public_jwk(key, jose_alg_name(AUTH_SIGNING_ALG)));
    json_t *set = json_object();
    json_object_set_new(set, "keys", keys);
    /* public and the same for every caller: it may be cached a while */
    add_header(o->req, "cache-control", "public, max-age=3600");
    buf_t text = BUF_INIT;
    jv_dump(set, &text);
    json_decref(set);
    char *copy = h2o_mem_alloc_pool(&o->req->pool, text.len + 1);
    memcpy(copy, text.ptr, text.len + 1);
    o->req->res.status = 200;
    o->req->res.reason = "OK";
    add_header(o->req, "content-type", "application/jwk-set+json");
    o->req->res.content_length = text.len;
    h2o_send_inline(o->req, copy, text.len);
    buf_release(&text);
}

/* ---- forms and client authentication -------------------------------------------------- */

/* Reads the form body; false when it answered an error. */
static bool read_form(oauth_t *o)
{
    if (o->form_read)
        return true;
    h2o_req_t *req = o->req;
    h2o_iovec_t type = request_header(req, H2O_TOKEN_CONTENT_TYPE);
    size_t n = strlen(FORM_TYPE);
    if (!type.base || type.len < n || strncasecmp(type.base, FORM_TYPE, n) != 0 ||
        (type.len > n && type.base[n] != ';' && type.base[n] != ' ')) {
        send_error(o, "invalid_request", "the body must be " FORM_TYPE);
        return false;
    }
    if (req->entity.len > o->thread->server->config.max_body) {
        send_error(o, "invalid_request", "the body is too large");
        return false;
    }
    o->nform = url_query_split(o->arena, req->entity.base ? req->entity.base : "", req->entity.len,
                               &o->form);
    for (size_t i = 0; i < o->nform; i++) {
        if (strlen(o->form[i].value) != o->form[i].value_len) {
            send_error(o, "invalid_request", "parameter %s holds a NUL character", o->form[i].name);
            return false;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(o->form[i].name, o->form[j].name) == 0) {
                /* RFC 6749 section 3.2 */
                send_error(o, "invalid_request", "parameter %s is given more than once",
                           o->form[i].name);
                return false;
            }
        }
    }
    o->form_read = true;
    return true;
}

static const char *form_get(const oauth_t *o, const char *name)
{
    for (size_t i = 0; i < o->nform; i++)
        if (strcmp(o->form[i].name, name) == 0)
            return o->form[i].value[0] ? o->form[i].value : NULL;
    return NULL;
}

/* The client_id and secret of Authorization: Basic (RFC 6749 section 2.3.1: each
 * form-urlencoded, then joined by ':' and base64-encoded). False: not Basic or malformed. */
static bool basic_credentials(oauth_t *o, const char **out_id, const char **out_secret,
                              size_t *out_len, bool *out_malformed)
{
    *out_malformed = false;
    h2o_iovec_t v = request_header(o->req, H2O_TOKEN_AUTHORIZATION);
    if (!v.base || v.len < 6 || strncasecmp(v.base, "Basic ", 6) != 0)
        return false;
    o->basic_tried = true;
    const char *s = v.base + 6, *end = v.base + v.len;
    while (s < end && *s == ' ')
        s++;
    /* standard base64 to base64url, without padding */
    char *text = arena_strndup(o->arena, s, (size_t)(end - s));
    size_t n = strlen(text);
    while (n && text[n - 1] == '=')
        n--;
    for (size_t i = 0; i < n; i++)
        text[i] = text[i] == '+' ? '-' : text[i] == '/' ? '_' : text[i];
    buf_t raw = BUF_INIT;
    bool ok = b64url_decode(text, n, &raw);
    const char *colon = ok ? memchr(raw.ptr, ':', raw.len) : NULL;
    if (!colon) {
        buf_release(&raw);
        *out_malformed = true;
        return true;
    }
    size_t id_len = (size_t)(colon - raw.ptr);
    *out_id = url_decode(o->arena, raw.ptr, id_len, true, NULL);
    *out_secret = url_decode(o->arena, colon + 1, raw.len - id_len - 1, true, out_len);
    buf_release(&raw);
    return true;
}

/*
 * Authenticates the client of a request: Basic, a client_secret in the form, a signed
 * client_assertion, or (public_ok) a public client naming itself with client_id. On success
 * *out is the client; else the error was sent and false returned.
 */
static bool authenticate_client(oauth_t *o, bool public_ok, store_client_t *out)
{
    http_server_t *server = o->thread->server;
    const char *id = NULL, *secret = NULL;
    size_t secret_len = 0;
    bool malformed = false;
    err_t err = ERR_INIT;
    status_t rc;
    const char *form_id = form_get(o, "client_id");
    const char *assertion_type = form_get(o, "client_assertion_type");
    const char *assertion = form_get(o, "client_assertion");
    bool basic = basic_credentials(o, &id, &secret, &secret_len, &malformed);
    int methods = basic + (form_get(o, "client_secret") != NULL) + (assertion || assertion_type);
    if (malformed) {
        send_error(o, "invalid_client", "the Basic credentials are malformed");
        return false;
    }
    if (methods > 1) {
        /* RFC 6749 section 2.3: one method per request */
        send_error(o, "invalid_request", "the client authenticated in more than one way");
        return false;
    }
    if (basic || form_get(o, "client_secret")) {
        if (!basic) {
            id = form_id;
            secret = form_get(o, "client_secret");
            secret_len = strlen(secret);
        }
        if (!id) {
            send_error(o, "invalid_request", "client_secret needs client_id");
            return false;
        }
        if (form_id && strcmp(form_id, id) != 0) {
            send_error(o, "invalid_request", "client_id is not the client that authenticated");
            return false;
        }
        if (o->secret.done) {
            rc = o->secret.rc;
            *out = o->secret.client;
            err_move(&err, &o->secret.err);
        } else {
            rc = auth_client_authenticate_secret(&server->accounts, o->thread->conn, id, secret,
                                                 secret_len, o->arena, out, &err);
        }
    } else if (assertion || assertion_type) {
        if (!assertion || !assertion_type || strcmp(assertion_type, JWT_BEARER) != 0) {
            err_release(&err);
            send_error(o, "invalid_request",
                       "private_key_jwt needs client_assertion and client_assertion_type "
                       "%s",
                       JWT_BEARER);
            return false;
        }
        rc = auth_client_authenticate_jwt(
            &server->accounts, o->thread->conn, assertion, strlen(assertion),
            http__oauth_url(o->arena, o->base, "token"), o->now_us, o->arena, out, &err);
        if (!rc && form_id && strcmp(form_id, out->client_id) != 0) {
            err_release(&err);
            send_error(o, "invalid_request", "client_id is not the client of the assertion");
            return false;
        }
    } else if (public_ok && form_id) {
        rc = store_client_get(o->thread->conn, form_id, o->arena, out, &err);
        if (rc == ERR_NOT_FOUND || (!rc && (out->kind != STORE_CLIENT_PUBLIC || out->disabled))) {
            bool confidential = !rc && out->kind != STORE_CLIENT_PUBLIC && !out->disabled;
            err_release(&err);
            send_error(o, "invalid_client",
                       confidential ? "the client must authenticate" : "invalid client");
            return false;
        }
    } else {
        err_release(&err);
        send_error(o, "invalid_client",
                   "the client must authenticate (client_secret_basic, client_secret_post or "
                   "private_key_jwt)");
        return false;
    }
    if (rc == ERR_UNAUTHORIZED) {
        send_error(o, "invalid_client", "%s", err_message(&err));
        err_release(&err);
        return false;
    }
    if (rc) {
        send_failure(o, &err);
        err_release(&err);
        return false;
    }
    err_release(&err);
    return true;
}

/* ---- the token endpoint --------------------------------------------------------------- */

/* The fhirUser of an account: its Practitioner or Patient as an absolute URL, or NULL. */
static const char *fhir_user(oauth_t *o, const store_account_t *account)
{
    if (account->practitioner_id)
        return arena_printf(o->arena, "%s/Practitioner/%s", o->base, account->practitioner_id);
    if (account->patient_id)
        return arena_printf(o->arena, "%s/Patient/%s", o->base, account->patient_id);
    return NULL;
}

/* Records an event of the token endpoints in the audit trail: the user is the account's user
 * name (the client's id for its own tokens), as the trail names who acted. */
static void audit_event(oauth_t *o, const char *action, const char *account_id, const char *client,
                        const char *detail)
{
    const char *user = client, *role = NULL;
    store_account_t account;
    err_t err = ERR_INIT;
    if (account_id &&
        store_account_get_id(o->thread->conn, account_id, o->arena, &account, &err) == ERR_OK) {
        user = account.username;
        role = account.role;
    }
    err_release(&err);
    auth_audit_event(o->thread->server->audit, action, user, role, client,
                     http__peer_address(o->req, o->arena), "200", detail);
}

/* Answers with the issued tokens; an id_token when openid and fhirUser were granted for an
 * account and the server has a signing key. */
static void send_tokens(oauth_t *o, const store_client_t *client, const auth_issued_t *issued)
{
    audit_event(o, "token-issued", issued->account_id, client->client_id,
                arena_printf(o->arena, "grant: %s; scopes: %s%s%s",
                             form_get(o, "grant_type") ? form_get(o, "grant_type") : "",
                             issued->scopes ? issued->scopes : "",
                             issued->patient_id ? "; patient: " : "",
                             issued->patient_id ? issued->patient_id : ""));
    json_t *body = json_object();
    json_object_set_new(body, "access_token", json_string(issued->access));
    json_object_set_new(body, "token_type", json_string("Bearer"));
    json_object_set_new(body, "expires_in", json_integer(issued->expires_in_s));
    json_object_set_new(body, "scope", json_string(issued->scopes ? issued->scopes : ""));
    if (issued->refresh[0])
        json_object_set_new(body, "refresh_token", json_string(issued->refresh));
    if (issued->patient_id)
        json_object_set_new(body, "patient", json_string(issued->patient_id));
    scope_set_t granted;
    scope_parse(o->arena, issued->scopes ? issued->scopes : "",
                issued->scopes ? strlen(issued->scopes) : 0, &granted);
    const jose_key_t *key = o->thread->server->config.signing_key;
    if (key && issued->account_id &&
        (granted.flags & (SCOPE_OPENID | SCOPE_FHIR_USER)) == (SCOPE_OPENID | SCOPE_FHIR_USER)) {
        store_account_t account;
        err_t err = ERR_INIT;
        status_t rc =
            store_account_get_id(o->thread->conn, issued->account_id, o->arena, &account, &err);
        if (rc) {
            json_decref(body);
            send_failure(o, &err);
            err_release(&err);
            return;
        }
        int64_t now = o->now_us / 1000000;
        auth_id_token_t claims = {.issuer = o->base,
                                  .subject = account.account_id,
                                  .audience = client->client_id,
                                  .fhir_user = fhir_user(o, &account),
                                  .nonce = issued->nonce,
                                  .issued_at = now,
                                  .expires_at = now + issued->expires_in_s};
        buf_t token = BUF_INIT;
        if (auth_id_token_sign(key, &claims, &token, &err)) {
            buf_release(&token);
            json_decref(body);
            send_failure(o, &err);
            err_release(&err);
            return;
        }
        json_object_set_new(body, "id_token", json_string(token.ptr));
        buf_release(&token);
        err_release(&err);
    }
    send_json(o->req, 200, body);
}

static void grant_authorization_code(oauth_t *o)
{
    const char *code = form_get(o, "code"), *redirect_uri = form_get(o, "redirect_uri"),
               *verifier = form_get(o, "code_verifier");
    if (!code || !redirect_uri || !verifier) {
        send_error(o, "invalid_request",
                   "authorization_code needs code, redirect_uri and code_verifier (PKCE)");
        return;
    }
    store_client_t client;
    if (!authenticate_client(o, true, &client))
        return;
    auth_issued_t issued;
    err_t err = ERR_INIT;
    status_t rc = auth_code_exchange(&o->thread->server->tokens, code, client.client_id,
                                     redirect_uri, verifier, o->now_us, o->arena, &issued, &err);
    if (rc == ERR_UNAUTHORIZED)
        send_error(o, "invalid_grant", "%s", err_message(&err));
    else if (rc)
        send_failure(o, &err);
    else
        send_tokens(o, &client, &issued);
    err_release(&err);
}

static void grant_refresh_token(oauth_t *o)
{
    const char *refresh = form_get(o, "refresh_token");
    if (!refresh) {
        send_error(o, "invalid_request", "refresh_token is required");
        return;
    }
    store_client_t client;
    if (!authenticate_client(o, true, &client))
        return;
    auth_issued_t issued;
    err_t err = ERR_INIT;
    status_t rc = auth_refresh(&o->thread->server->tokens, refresh, client.client_id, o->now_us,
                               o->arena, &issued, &err);
    if (rc == ERR_UNAUTHORIZED)
        send_error(o, "invalid_grant", "%s", err_message(&err));
    else if (rc)
        send_failure(o, &err);
    else
        send_tokens(o, &client, &issued);
    err_release(&err);
}

/* The system/ resource scopes of set, alone. */
static void system_only(scope_set_t *set)
{
    size_t n = 0;
    for (size_t i = 0; i < set->nresources; i++)
        if (set->resources[i].context == SCOPE_SYSTEM)
            set->resources[n++] = set->resources[i];
    set->nresources = n;
    set->flags = 0;
    set->nunknown = 0;
}

static void grant_client_credentials(oauth_t *o)
{
    store_client_t client;
    if (!authenticate_client(o, false, &client))
        return;
    if (client.kind == STORE_CLIENT_PUBLIC) {
        send_error(o, "unauthorized_client", "a public client cannot use client_credentials");
        return;
    }
    const char *requested = form_get(o, "scope");
    scope_set_t asked, allowed, granted;
    scope_parse(o->arena, client.scopes, strlen(client.scopes), &allowed);
    if (requested) {
        scope_parse(o->arena, requested, strlen(requested), &asked);
    } else {
        asked = allowed; /* no scope: what the client is registered for */
    }
    system_only(&allowed);
    scope_intersect(o->arena, &asked, &allowed, &granted);
    system_only(&granted);
    const char *query_scope =
        scope_query_unsupported(o->arena, requested ? &asked : NULL, &granted);
    if (query_scope) {
        send_error(o, "invalid_scope",
                   "scope %s: scopes with a query (SMART v2 granular scopes) are not supported",
                   query_scope);
        return;
    }
    if (granted.nresources == 0) {
        send_error(o, "invalid_scope",
                   "none of the scopes asked for can be granted: a client acting for itself "
                   "gets system/ scopes it is registered for (%s)",
                   client.scopes);
        return;
    }
    buf_t text = BUF_INIT;
    scope_format(&granted, &text);
    auth_grant_t grant = {.client_id = client.client_id,
                          .account_id = NULL,
                          .scopes = arena_strdup(o->arena, text.ptr),
                          .patient_id = NULL};
    buf_release(&text);
    auth_issued_t issued;
    err_t err = ERR_INIT;
    if (auth_tokens_issue(&o->thread->server->tokens, &grant, false, o->now_us, &issued, &err))
        send_failure(o, &err);
    else
        send_tokens(o, &client, &issued);
    err_release(&err);
}

static void token_endpoint(oauth_t *o)
{
    if (!read_form(o))
        return;
    const char *grant = form_get(o, "grant_type");
    if (!grant)
        send_error(o, "invalid_request", "grant_type is required");
    else if (strcmp(grant, "authorization_code") == 0)
        grant_authorization_code(o);
    else if (strcmp(grant, "refresh_token") == 0)
        grant_refresh_token(o);
    else if (strcmp(grant, "client_credentials") == 0)
        grant_client_credentials(o);
    else
        send_error(o, "unsupported_grant_type",
                   "grant_type %s is not supported (authorization_code, refresh_token, "
                   "client_credentials)",
                   grant);
}

/* ---- revocation and introspection ------------------------------------------------------ */

static void revoke_endpoint(oauth_t *o)
{
    if (!read_form(o))
        return;
    store_client_t client;
    if (!authenticate_client(o, true, &client))
        return;
    const char *token = form_get(o, "token");
    if (!token) {
        send_error(o, "invalid_request", "token is required");
        return;
    }
    /* a token of another client is left alone (RFC 7009 section 2.1); an unknown one is not an
     * error (section 2.2) */
    char hash[AUTH_TOKEN_HASH_SIZE];
    auth_token_hash(token, strlen(token), hash);
    store_token_t row;
    err_t err = ERR_INIT;
    status_t rc = store_token_get(o->thread->conn, hash, o->arena, &row, &err);
    if (rc == ERR_NOT_FOUND) {
        rc = ERR_OK;
    } else if (!rc && strcmp(row.client_id, client.client_id) != 0) {
        err_release(&err);
        send_error(o, "unauthorized_client", "the token was not issued to this client");
        return;
    } else if (!rc) {
        rc = auth_token_revoke(&o->thread->server->tokens, token, strlen(token), o->now_us, &err);
        if (!rc)
            audit_event(o, "token-revoked", row.account_id, client.client_id,
                        row.kind == STORE_TOKEN_REFRESH
                            ? "a refresh token, with every token of its grant"
                            : "an access token");
    }
    if (rc) {
        send_failure(o, &err);
    } else {
        o->req->res.status = 200;
        o->req->res.reason = "OK";
        add_header(o->req, "cache-control", "no-store");
        o->req->res.content_length = 0;
        h2o_send_inline(o->req, "", 0);
    }
    err_release(&err);
}

static void introspect_endpoint(oauth_t *o)
{
    if (!read_form(o))
        return;
    store_client_t client;
    if (!authenticate_client(o, false, &client))
        return;
    if (client.kind == STORE_CLIENT_PUBLIC) {
        send_error(o, "invalid_client", "a public client cannot introspect tokens");
        return;
    }
    const char *token = form_get(o, "token");
    if (!token) {
        send_error(o, "invalid_request", "token is required");
        return;
    }
    char hash[AUTH_TOKEN_HASH_SIZE];
    auth_token_hash(token, strlen(token), hash);
    store_token_t row;
    err_t err = ERR_INIT;
    status_t rc = store_token_get(o->thread->conn, hash, o->arena, &row, &err);
    json_t *body = json_object();
    if (rc == ERR_NOT_FOUND ||
        (!rc && (row.kind == STORE_TOKEN_CODE ||
                 store_token_state(&row, o->now_us) != STORE_TOKEN_ACTIVE))) {
        json_object_set_new(body, "active", json_false());
        send_json(o->req, 200, body);
        err_release(&err);
        return;
    }
    store_account_t account;
    if (!rc && row.account_id)
        rc = store_account_get_id(o->thread->conn, row.account_id, o->arena, &account, &err);
    if (rc == ERR_NOT_FOUND || (!rc && row.account_id && account.disabled)) {
        json_object_set_new(body, "active", json_false());
        send_json(o->req, 200, body);
        err_release(&err);
        return;
    }
    if (rc) {
        json_decref(body);
        send_failure(o, &err);
        err_release(&err);
        return;
    }
    err_release(&err);
    json_object_set_new(body, "active", json_true());
    json_object_set_new(body, "scope", json_string(row.scopes));
    json_object_set_new(body, "client_id", json_string(row.client_id));
    json_object_set_new(body, "token_type",
                        json_string(row.kind == STORE_TOKEN_ACCESS ? "Bearer" : "refresh_token"));
    json_object_set_new(body, "exp", json_integer(row.expires_us / 1000000));
    json_object_set_new(body, "iat", json_integer(row.created_us / 1000000));
    json_object_set_new(body, "iss", json_string(o->base));
    if (row.account_id) {
        json_object_set_new(body, "sub", json_string(row.account_id));
        json_object_set_new(body, "username", json_string(account.username));
        const char *user = fhir_user(o, &account);
        if (user)
            json_object_set_new(body, "fhirUser", json_string(user));
    } else {
        json_object_set_new(body, "sub", json_string(row.client_id));
    }
    if (row.patient_id)
        json_object_set_new(body, "patient", json_string(row.patient_id));
    send_json(o->req, 200, body);
}

/* ---- client secrets on a worker -------------------------------------------------------- */

/* The client id and secret that authenticate_client will check (argon2id, about 50 ms) when
 * the request authenticates with a secret, Basic or in the form, and passes the checks that
 * come before; false otherwise (nothing slow to do). */
static bool secret_to_check(oauth_t *o, const char **out_id, const char **out_secret,
                            size_t *out_len)
{
    bool malformed = false;
    bool basic = basic_credentials(o, out_id, out_secret, out_len, &malformed);
    const char *form_secret = form_get(o, "client_secret");
    bool assertion = form_get(o, "client_assertion") || form_get(o, "client_assertion_type");
    if (malformed || basic + (form_secret != NULL) + assertion != 1 || assertion)
        return false;
    const char *form_id = form_get(o, "client_id");
    if (!basic) {
        *out_id = form_id;
        *out_secret = form_secret;
        *out_len = strlen(form_secret);
    }
    return *out_id && (!form_id || strcmp(form_id, *out_id) == 0);
}

typedef struct {
    http_job_t job; /* first */
    arena_t arena;  /* the request's, moved here */
    oauth_t o;
    void (*endpoint)(oauth_t *);
    const char *id, *secret;
    size_t len;
} oauth_job_t;

static void secret_work(http_job_t *job, store_conn_t *conn)
{
    oauth_job_t *j = (oauth_job_t *)job;
    j->o.secret.rc =
        auth_client_authenticate_secret(&j->o.thread->server->accounts, conn, j->id, j->secret,
                                        j->len, &j->arena, &j->o.secret.client, &j->o.secret.err);
    j->o.secret.done = true;
}

static void secret_done(http_job_t *job)
{
    oauth_job_t *j = (oauth_job_t *)job;
    if (job->req) {
        j->o.req = job->req;
        j->endpoint(&j->o);
    }
    err_release(&j->o.secret.err);
    arena_release(&j->arena);
    free(j);
}

/* Runs endpoint, after checking the client's secret on a worker when there is one. */
static void run_endpoint(oauth_t *o, void (*endpoint)(oauth_t *))
{
    const char *id = NULL, *secret = NULL;
    size_t len = 0;
    if (!read_form(o))
        return;
    if (!secret_to_check(o, &id, &secret, &len)) {
        endpoint(o);
        return;
    }
    oauth_job_t *j = xcalloc(1, sizeof(*j));
    /* what o points to lives in the arena, which the job takes */
    j->arena = *o->arena;
    arena_init(o->arena);
    j->o = *o;
    j->o.arena = &j->arena;
    err_init(&j->o.secret.err);
    j->endpoint = endpoint;
    j->id = id;
    j->secret = secret;
    j->len = len;
    j->job.work = secret_work;
    j->job.done = secret_done;
    http__job_submit(o->thread, o->req, &j->job);
}

/* ---- routing ------------------------------------------------------------------------- */

static void method_not_allowed(h2o_req_t *req, const char *allow)
{
    add_header(req, "allow", allow);
    req->res.status = 405;
    req->res.reason = "Method Not Allowed";
    static const char body[] = "{\"error\":\"invalid_request\",\"error_description\":\"method "
                               "not allowed\"}";
    add_header(req, "content-type", "application/json; charset=utf-8");
    req->res.content_length = sizeof(body) - 1;
    h2o_send_inline(req, body, sizeof(body) - 1);
}

bool http__oauth_route(http_thread_t *thread, h2o_req_t *req, arena_t *arena, const char *base)
{
    h2o_iovec_t path = req->path_normalized;
    bool get = iov_is(req->method, "GET") || iov_is(req->method, "HEAD");
    bool post = iov_is(req->method, "POST");
    oauth_t o = {
        .thread = thread, .req = req, .arena = arena, .base = base, .now_us = clock_now_us()};
    if (iov_is(path, "/fhir/.well-known/smart-configuration")) {
        if (get)
            smart_configuration(&o);
        else
            method_not_allowed(req, "GET, HEAD");
        return true;
    }
    if (iov_is(path, "/oauth2/jwks")) {
        if (get)
            jwks(&o);
        else
            method_not_allowed(req, "GET, HEAD");
        return true;
    }
    void (*endpoint)(oauth_t *) = NULL;
    if (iov_is(path, "/oauth2/token"))
        endpoint = token_endpoint;
    else if (iov_is(path, "/oauth2/revoke"))
        endpoint = revoke_endpoint;
    else if (iov_is(path, "/oauth2/introspect"))
        endpoint = introspect_endpoint;
    else
        return false;
    if (post)
        run_endpoint(&o, endpoint);
    else
        method_not_allowed(req, "POST");
    return true;
}
