/*
 * login.c - SMART on FHIR's authorization endpoint and the sign-in pages Concerto serves
 * itself (docs/security.md, "Signing in"): /oauth2/authorize checks an app's request, the
 * person signs in (password, then a TOTP or recovery code, or enrolment for staff who have
 * none), a staff member chooses a patient when the app asks for one, and the browser goes
 * back to the app with an authorization code. The token endpoint exchanges it (oauth.c).
 *
 * Invariants: a request whose client or redirect URI is not registered is never redirected
 * (an error page); every other refusal goes back to the app's redirect URI. The browser
 * session lives in a cookie of 32 random bytes that the store knows only by its SHA-256; every
 * form of ours carries the session's CSRF token and is refused (403) without it. Pages load
 * nothing but our style sheet and run no script. A failed sign-in says only "invalid user name
 * or password" or "invalid code"; the log says why.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "auth/random.h"
#include "base/b64.h"
#include "base/jv.h"
#include "base/log.h"
#include "base/mem.h"
#include "fhir/defs.h"
#include "auth/audit.h"
#include "http/http_int.h"
#include "repo/access.h"
#include "repo/repo.h"
#include "repo/scope.h"

#define SECOND               ((int64_t)1000000)
#define SESSION_LIFETIME_US  (12 * 3600 * SECOND) /* absolute, whatever the activity */
#define REQUEST_LIFETIME_US  (600 * SECOND)       /* an authorization request waits this long */
#define FORM_MAX             (64 * 1024)
#define RANDOM_BYTES         32
#define PICKER_COUNT         "20"
#define COOKIE_NAME          "concerto_session"
#define COOKIE_NAME_TLS      "__Host-concerto_session"
#define MESSAGE_INVALID_USER "invalid user name or password"
#define MESSAGE_INVALID_CODE "invalid code"

typedef struct {
    h2o_req_t *req;
    http_thread_t *thread;
    http_server_t *server;
    arena_t *arena;
    int64_t now_us;
    bool tls;
    const char *peer;
    url_pair_t *form; /* the query (GET) or the form (POST), decoded */
    size_t nform;
    store_session_t session; /* valid when have_session */
    bool have_session;
    const char *set_cookie; /* a Set-Cookie value to send with the answer, or NULL */
} login_t;

/* An authorization request with what its pages show. */
typedef struct {
    store_authz_request_t row;
    store_client_t client;
    scope_set_t scopes;      /* row.scope parsed */
    const char *form_origin; /* the redirect URI's origin, for the pages' form-action */
} flow_t;

/* ---- small helpers --------------------------------------------------------------------- */

static bool iov_eq(h2o_iovec_t v, const char *s)
{
    size_t n = strlen(s);
    return v.len == n && memcmp(v.base, s, n) == 0;
}

static const char *field(const login_t *l, const char *name)
{
    for (size_t i = 0; i < l->nform; i++)
        if (strcmp(l->form[i].name, name) == 0)
            return l->form[i].value;
    return NULL;
}

/* A field given and not empty, else NULL. */
static const char *field_nonempty(const login_t *l, const char *name)
{
    const char *v = field(l, name);
    return v && *v ? v : NULL;
}

static const char *random_text(login_t *l)
{
    unsigned char bytes[RANDOM_BYTES];
    auth_random_bytes(bytes, sizeof(bytes));
    buf_t b = BUF_INIT;
    b64url_encode(bytes, sizeof(bytes), &b);
    const char *s = arena_strndup(l->arena, b.ptr, b.len);
    buf_release(&b);
    return s;
}

static bool same_secret(const char *a, const char *b)
{
    size_t n = strlen(a);
    return n == strlen(b) && n > 0 && CRYPTO_memcmp(a, b, n) == 0;
}

static void html(buf_t *out, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': buf_addstr(out, "&lt;"); break;
        case '>': buf_addstr(out, "&gt;"); break;
        case '&': buf_addstr(out, "&amp;"); break;
        case '"': buf_addstr(out, "&quot;"); break;
        case '\'': buf_addstr(out, "&#39;"); break;
        default: buf_addch(out, *s);
        }
    }
}

/* For the log: printable ASCII as is, everything else as \xNN, at most 64 characters. */
static const char *loggable(login_t *l, const char *s)
{
    buf_t b = BUF_INIT;
    for (size_t i = 0; s && s[i] && i < 64; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            buf_addch(&b, (char)c);
        else
            buf_addf(&b, "\\x%02x", c);
    }
    const char *copy = arena_strndup(l->arena, b.ptr, b.len);
    buf_release(&b);
    return copy;
}

/* The FHIR base URL, as fhir.c makes it: --base-url, else from the request. */
static const char *fhir_base(login_t *l)
{
    if (l->server->config.base_url)
        return l->server->config.base_url;
    h2o_req_t *req = l->req;
    return arena_printf(l->arena, "%.*s://%.*s/fhir", (int)req->scheme->name.len,
                        req->scheme->name.base, (int)req->authority.len, req->authority.base);
}

/* scheme://authority of a registered redirect URI, for CSP form-action; NULL when it has a
 * character a policy could not carry (registration allows none of them). */
static const char *origin_of(login_t *l, const char *uri)
{
    h2o_url_t url;
    if (h2o_url_parse(uri, strlen(uri), &url) != 0)
        return NULL;
    for (size_t i = 0; i < url.authority.len; i++) {
        char c = url.authority.base[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
            return NULL;
    }
    return arena_printf(l->arena, "%.*s://%.*s", (int)url.scheme->name.len, url.scheme->name.base,
                        (int)url.authority.len, url.authority.base);
}

/* ---- answers --------------------------------------------------------------------------- */

static void set_header(login_t *l, const h2o_token_t *token, const char *value)
{
    h2o_add_header(&l->req->pool, &l->req->res.headers, token, NULL,
                   h2o_strdup(&l->req->pool, value, SIZE_MAX).base, strlen(value));
}

static void finish_headers(login_t *l)
{
    if (l->set_cookie)
        set_header(l, H2O_TOKEN_SET_COOKIE, l->set_cookie);
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 302: return "Found";
    case 303: return "See Other";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

/* The page's head and its first heading. */
static void page_start(buf_t *out, const char *title)
{
    buf_addstr(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                    "<meta name=\"referrer\" content=\"no-referrer\">\n<title>");
    html(out, title);
    buf_addstr(out, " - Concerto</title>\n<link rel=\"stylesheet\" href=\"/oauth2/login.css\">\n"
                    "</head>\n<body>\n<main>\n<p class=\"brand\">Concerto</p>\n<h1>");
    html(out, title);
    buf_addstr(out, "</h1>\n");
}

/* Sends a page: only our style sheet may load, no script may run, nothing may frame it, and
 * forms may go to us and, when form_origin is given, to the app the sign-in returns to (a
 * browser checks form-action on the redirect that follows a form too). */
static void send_page(login_t *l, int status, buf_t *body, const char *form_origin)
{
    buf_addstr(body, "</main>\n</body>\n</html>\n");
    h2o_req_t *req = l->req;
    req->res.status = status;
    req->res.reason = reason(status);
    finish_headers(l);
    set_header(l, H2O_TOKEN_CONTENT_TYPE, "text/html; charset=utf-8");
    http__set_content_security_policy(
        req, arena_printf(l->arena,
                          "default-src 'none'; style-src 'self'; "
                          "form-action 'self'%s%s; frame-ancestors 'none'; base-uri 'none'",
                          form_origin ? " " : "", form_origin ? form_origin : ""));
    req->res.content_length = body->len;
    h2o_send_inline(req, body->ptr, body->len);
}

/* A page that says what went wrong and where to go; never a redirect. */
static void error_page(login_t *l, int status, const char *title, const char *message)
{
    buf_t b = BUF_INIT;
    page_start(&b, title);
    buf_addstr(&b, "<p class=\"error\" role=\"alert\">");
    html(&b, message);
    buf_addstr(&b, "</p>\n");
    send_page(l, status, &b, NULL);
    buf_release(&b);
}

static void redirect(login_t *l, const char *location)
{
    h2o_req_t *req = l->req;
    int status = iov_eq(req->method, "POST") ? 303 : 302;
    req->res.status = status;
    req->res.reason = reason(status);
    finish_headers(l);
    set_header(l, H2O_TOKEN_LOCATION, location);
    req->res.content_length = 0;
    h2o_send_inline(req, "", 0);
}

/* Back to the app: redirect_uri with the given parameters (NULL values left out), state and
 * iss (RFC 9207) added. */
static void redirect_to_app(login_t *l, const char *redirect_uri, const char *state,
                            const char *const *pairs, size_t npairs)
{
    buf_t b = BUF_INIT;
    buf_addstr(&b, redirect_uri);
    char sep = strchr(redirect_uri, '?') ? '&' : '?';
    for (size_t i = 0; i + 1 < npairs; i += 2) {
        if (!pairs[i + 1])
            continue;
        buf_addch(&b, sep);
        sep = '&';
        buf_addstr(&b, pairs[i]);
        buf_addch(&b, '=');
        url_encode(&b, pairs[i + 1]);
    }
    if (state) {
        buf_addch(&b, sep);
        sep = '&';
        buf_addstr(&b, "state=");
        url_encode(&b, state);
    }
    buf_addch(&b, sep);
    buf_addstr(&b, "iss=");
    url_encode(&b, fhir_base(l));
    redirect(l, arena_strndup(l->arena, b.ptr, b.len));
    buf_release(&b);
}

static void app_error(login_t *l, const char *redirect_uri, const char *state, const char *error,
                      const char *description)
{
    const char *pairs[] = {"error", error, "error_description", description};
    redirect_to_app(l, redirect_uri, state, pairs, 4);
}

static void internal_error(login_t *l, err_t *err, const char *what)
{
    log_error("%s: %s%s%s", what, err_message(err), err->log_detail ? ": " : "",
              err->log_detail ? err->log_detail : "");
    error_page(l, err->code == ERR_UNAVAILABLE ? 503 : 500, "Something went wrong",
               "The server could not finish signing you in. Try again in a moment.");
}

/* ---- sessions -------------------------------------------------------------------------- */

static const char *cookie_name(const login_t *l)
{
    return l->tls ? COOKIE_NAME_TLS : COOKIE_NAME;
}

static void set_cookie(login_t *l, const char *value, bool clear)
{
    l->set_cookie =
        arena_printf(l->arena, "%s=%s; Path=/; HttpOnly; SameSite=Lax%s%s", cookie_name(l), value,
                     l->tls ? "; Secure" : "", clear ? "; Max-Age=0" : "");
}

/* The value of our cookie in the request, or NULL. */
static const char *cookie_value(login_t *l)
{
    const char *name = cookie_name(l);
    size_t name_len = strlen(name);
    h2o_headers_t *headers = &l->req->headers;
    for (ssize_t i = -1; (i = h2o_find_header(headers, H2O_TOKEN_COOKIE, i)) >= 0;) {
        h2o_iovec_t v = headers->entries[i].value;
        const char *p = v.base, *end = v.base + v.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *s = p;
            while (p < end && *p != ';')
                p++;
            if ((size_t)(p - s) > name_len + 1 && memcmp(s, name, name_len) == 0 &&
                s[name_len] == '=')
                return arena_strndup(l->arena, s + name_len + 1, (size_t)(p - s) - name_len - 1);
        }
    }
    return NULL;
}

typedef struct {
    int which; /* 0 create (and purge), 1 update, 2 delete, 3 renew from old_id */
    store_session_t *session;
    int64_t now_us;
    const char *old_id;
} session_write_t;

static status_t session_txn(store_txn_t *txn, void *arg, err_t *err)
{
    session_write_t *w = arg;
    switch (w->which) {
    case 0: {
        status_t rc = store_txn_session_purge(txn, w->now_us, NULL, err);
        return rc ? rc : store_txn_session_create(txn, w->session, err);
    }
    case 1: return store_txn_session_update(txn, w->session, err);
    case 3: return store_txn_session_renew(txn, w->old_id, w->session, err);
    default: return store_txn_session_delete(txn, w->session->session_id, err);
    }
}

static status_t session_write(login_t *l, int which, err_t *err)
{
    session_write_t w = {which, &l->session, l->now_us, NULL};
    return store_run(l->server->store, session_txn, &w, err);
}

/* Gives the session a new cookie value and CSRF token, keeping its rows (the authorization
 * requests move along): a session id someone knew, or planted, before this step is worth
 * nothing after it (session fixation). The old cookie value finds no session any more. */
static status_t session_renew(login_t *l, err_t *err)
{
    const char *value = random_text(l);
    char *hash = arena_alloc(l->arena, AUTH_TOKEN_HASH_SIZE);
    auth_token_hash(value, strlen(value), hash);
    session_write_t w = {3, &l->session, l->now_us, l->session.session_id};
    l->session.session_id = hash;
    l->session.csrf = random_text(l);
    status_t rc = store_run(l->server->store, session_txn, &w, err);
    if (!rc)
        set_cookie(l, value, false);
    return rc;
}

/* Finds the request's live session: not past its absolute end, nor idle longer than
 * --session-idle (such a session is removed). Its last request becomes now. */
static status_t load_session(login_t *l, err_t *err)
{
    l->have_session = false;
    const char *value = cookie_value(l);
    if (!value || !*value)
        return ERR_OK;
    char hash[AUTH_TOKEN_HASH_SIZE];
    auth_token_hash(value, strlen(value), hash);
    status_t rc = store_session_get(l->thread->conn, hash, l->arena, &l->session, err);
    if (rc == ERR_NOT_FOUND) {
        err_reset(err);
        return ERR_OK;
    }
    if (rc)
        return rc;
    if (l->now_us >= l->session.expires_us ||
        l->now_us - l->session.last_seen_us >= l->server->config.session_idle_us)
        return session_write(l, 2, err);
    l->session.last_seen_us = l->now_us;
    rc = session_write(l, 1, err);
    if (rc == ERR_NOT_FOUND) {
        err_reset(err);
        return ERR_OK;
    }
    l->have_session = rc == ERR_OK;
    return rc;
}

/* A new anonymous session and its cookie. */
static status_t new_session(login_t *l, err_t *err)
{
    const char *value = random_text(l);
    char *hash = arena_alloc(l->arena, AUTH_TOKEN_HASH_SIZE);
    auth_token_hash(value, strlen(value), hash);
    l->session = (store_session_t){.session_id = hash,
                                   .state = STORE_SESSION_ANONYMOUS,
                                   .csrf = random_text(l),
                                   .created_us = l->now_us,
                                   .last_seen_us = l->now_us,
                                   .expires_us = l->now_us + SESSION_LIFETIME_US};
    status_t rc = session_write(l, 0, err);
    if (rc)
        return rc;
    l->have_session = true;
    set_cookie(l, value, false);
    return ERR_OK;
}

/* Forms of ours must come back with the session's CSRF token; a missing or wrong one is
 * answered 403 and nothing happens. */
static bool check_csrf(login_t *l)
{
    const char *token = field(l, "csrf");
    if (l->have_session && token && same_secret(token, l->session.csrf))
        return true;
    log_info("refused a sign-in form from %s: %s", l->peer,
             !l->have_session ? "no session"
             : token          ? "wrong CSRF token"
                              : "no CSRF token");
    error_page(l, 403, "Sign-in refused",
               "This form has expired or did not come from this site. Go back to the app and "
               "start again.");
    return false;
}

/* ---- what an app asks for, in words ---------------------------------------------------- */

static void describe_permissions(buf_t *out, unsigned perms)
{
    static const struct {
        unsigned bit;
        const char *word;
    } words[] = {{SCOPE_R, "read"},
                 {SCOPE_S, "search"},
                 {SCOPE_C, "create"},
                 {SCOPE_U, "update"},
                 {SCOPE_D, "delete"}};
    size_t n = 0, total = 0, start = out->len;
    for (size_t i = 0; i < 5; i++)
        total += (perms & words[i].bit) != 0;
    for (size_t i = 0; i < 5; i++) {
        if (!(perms & words[i].bit))
            continue;
        if (n)
            buf_addstr(out, n + 1 == total ? " and " : ", ");
        buf_addstr(out, words[i].word);
        n++;
    }
    if (out->len > start)
        out->ptr[start] = (char)(out->ptr[start] - 'a' + 'A');
}

static void describe_scopes(buf_t *out, const scope_set_t *set, bool patient_account)
{
    buf_addstr(out, "<ul class=\"access\">\n");
    if (set->flags & (SCOPE_OPENID | SCOPE_FHIR_USER | SCOPE_PROFILE))
        buf_addstr(out, "<li>Know who you are</li>\n");
    if (set->flags & SCOPE_LAUNCH_PATIENT)
        buf_addstr(out, patient_account
                            ? "<li>Know that the record is yours</li>\n"
                            : "<li>Know which patient's record you choose to open</li>\n");
    for (size_t i = 0; i < set->nresources; i++) {
        const scope_resource_t *r = &set->resources[i];
        buf_addstr(out, "<li>");
        describe_permissions(out, r->perms);
        if (strcmp(r->type, "*") == 0)
            buf_addstr(out, " every kind of record");
        else {
            buf_addstr(out, " ");
            html(out, r->type);
            buf_addstr(out, " records");
        }
        switch (r->context) {
        case SCOPE_PATIENT:
            buf_addstr(out, patient_account ? " of yours" : " of the patient you open");
            break;
        case SCOPE_USER: buf_addstr(out, " that you may see"); break;
        case SCOPE_SYSTEM: buf_addstr(out, " of every patient"); break;
        }
        if (r->query) {
            buf_addstr(out, " (only those matching ");
            html(out, r->query);
            buf_addstr(out, ")");
        }
        buf_addstr(out, "</li>\n");
    }
    if (set->flags & SCOPE_OFFLINE_ACCESS)
        buf_addstr(out, "<li>Keep this access when you are not using it</li>\n");
    else if (set->flags & SCOPE_ONLINE_ACCESS)
        buf_addstr(out, "<li>Keep this access while you are signed in</li>\n");
    buf_addstr(out, "</ul>\n");
}

static const char *app_name(const flow_t *flow)
{
    return flow->client.name && *flow->client.name ? flow->client.name : flow->client.client_id;
}

/* The hidden fields every form of a flow carries. */
static void hidden_fields(buf_t *out, const login_t *l, const flow_t *flow)
{
    buf_addstr(out, "<input type=\"hidden\" name=\"csrf\" value=\"");
    html(out, l->session.csrf);
    buf_addstr(out, "\">\n");
    if (flow) {
        buf_addstr(out, "<input type=\"hidden\" name=\"request\" value=\"");
        html(out, flow->row.request_id);
        buf_addstr(out, "\">\n");
    }
}

static void alert(buf_t *out, const char *message)
{
    if (!message)
        return;
    buf_addstr(out, "<p class=\"error\" role=\"alert\" id=\"error\">");
    html(out, message);
    buf_addstr(out, "</p>\n");
}

/* ---- the pages ------------------------------------------------------------------------- */

static void login_page(login_t *l, const flow_t *flow, const char *error, const char *username)
{
    buf_t b = BUF_INIT;
    page_start(&b, "Sign in");
    buf_addstr(&b, "<p><strong>");
    html(&b, app_name(flow));
    buf_addstr(&b, "</strong> asks to:</p>\n");
    describe_scopes(&b, &flow->scopes, false);
    alert(&b, error);
    buf_addstr(&b, "<form method=\"post\" action=\"/oauth2/login\">\n");
    hidden_fields(&b, l, flow);
    buf_addstr(&b, "<label for=\"username\">User name</label>\n"
                   "<input id=\"username\" name=\"username\" type=\"text\" "
                   "autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" "
                   "required autofocus");
    if (error)
        buf_addstr(&b, " aria-describedby=\"error\"");
    if (username) {
        buf_addstr(&b, " value=\"");
        html(&b, username);
        buf_addstr(&b, "\"");
    }
    buf_addstr(&b, ">\n<label for=\"password\">Password</label>\n"
                   "<input id=\"password\" name=\"password\" type=\"password\" "
                   "autocomplete=\"current-password\" required>\n"
                   "<button type=\"submit\">Sign in</button>\n</form>\n");
    send_page(l, 200, &b, flow->form_origin);
    buf_release(&b);
}

static void code_page(login_t *l, const flow_t *flow, const char *error)
{
    buf_t b = BUF_INIT;
    page_start(&b, "Enter your code");
    alert(&b, error);
    buf_addstr(&b, "<form method=\"post\" action=\"/oauth2/login/code\">\n");
    hidden_fields(&b, l, flow);
    buf_addstr(&b, "<label for=\"code\">Code</label>\n"
                   "<p class=\"hint\" id=\"code-hint\">The 6-digit code your authenticator app "
                   "shows for Concerto, or one of your recovery codes.</p>\n"
                   "<input id=\"code\" name=\"code\" type=\"text\" autocomplete=\"one-time-code\" "
                   "autocapitalize=\"none\" spellcheck=\"false\" required autofocus "
                   "aria-describedby=\"code-hint\">\n"
                   "<button type=\"submit\">Continue</button>\n</form>\n");
    send_page(l, 200, &b, flow->form_origin);
    buf_release(&b);
}

static void enroll_page(login_t *l, const flow_t *flow, const char *uri, const char *secret,
                        const char *error)
{
    buf_t b = BUF_INIT;
    page_start(&b, "Set up your second factor");
    alert(&b, error);
    if (secret) {
        buf_addstr(&b, "<p>Your account needs a code from an authenticator app each time you "
                       "sign in. Add Concerto to your app with this key:</p>\n"
                       "<p class=\"secret\"><code id=\"totp-secret\">");
        html(&b, secret);
        buf_addstr(&b, "</code></p>\n<p>or with this address, if your app reads one:</p>\n"
                       "<p class=\"secret\"><code id=\"totp-uri\">");
        html(&b, uri);
        buf_addstr(&b, "</code></p>\n");
    } else {
        buf_addstr(&b, "<p>Type the code your authenticator app shows for Concerto. If you "
                       "could not add the key, ask for a new one.</p>\n");
    }
    buf_addstr(&b, "<form method=\"post\" action=\"/oauth2/login/enroll\">\n");
    hidden_fields(&b, l, flow);
    buf_addstr(&b, "<label for=\"code\">Code from your app</label>\n"
                   "<input id=\"code\" name=\"code\" type=\"text\" inputmode=\"numeric\" "
                   "autocomplete=\"one-time-code\" pattern=\"[0-9]{6}\" required autofocus>\n"
                   "<button type=\"submit\">Confirm</button>\n</form>\n");
    if (!secret) {
        buf_addstr(&b, "<form method=\"post\" action=\"/oauth2/login/enroll\">\n");
        hidden_fields(&b, l, flow);
        buf_addstr(&b, "<input type=\"hidden\" name=\"action\" value=\"restart\">\n"
                       "<button type=\"submit\" class=\"secondary\">Show a new key</button>\n"
                       "</form>\n");
    }
    send_page(l, 200, &b, flow->form_origin);
    buf_release(&b);
}

static void recovery_page(login_t *l, const flow_t *flow, char **codes)
{
    buf_t b = BUF_INIT;
    page_start(&b, "Save your recovery codes");
    buf_addstr(&b, "<p>Your second factor is set up. If you lose your authenticator app, each "
                   "of these codes lets you sign in once. Keep them somewhere safe: they are "
                   "shown only now.</p>\n<ul id=\"recovery-codes\" class=\"codes\">\n");
    for (size_t i = 0; codes && i < RECOVERY_CODE_COUNT; i++) {
        buf_addstr(&b, "<li><code>");
        html(&b, codes[i]);
        buf_addstr(&b, "</code></li>\n");
    }
    buf_addstr(&b, "</ul>\n<form method=\"post\" action=\"/oauth2/continue\">\n");
    hidden_fields(&b, l, flow);
    buf_addstr(&b, "<button type=\"submit\" autofocus>I have saved them: continue</button>\n"
                   "</form>\n");
    send_page(l, 200, &b, flow->form_origin);
    buf_release(&b);
}

/* A Patient's name and birth date for people, from its JSON. */
static const char *patient_label(login_t *l, const char *json, size_t len)
{
    err_t err = ERR_INIT;
    json_t *root = jv_parse(json, len, &err);
    err_release(&err);
    if (!root)
        return "(unreadable)";
    buf_t b = BUF_INIT;
    json_t *names = json_object_get(root, "name");
    json_t *name = json_is_array(names) ? json_array_get(names, 0) : NULL;
    json_t *text = name ? json_object_get(name, "text") : NULL;
    if (json_is_string(text)) {
        buf_addstr(&b, json_string_value(text));
    } else if (name) {
        json_t *given = json_object_get(name, "given"), *part;
        size_t i;
        if (json_is_array(given))
            json_array_foreach(given, i, part) if (json_is_string(part))
            {
                buf_addstr(&b, json_string_value(part));
                buf_addch(&b, ' ');
            }
        json_t *family = json_object_get(name, "family");
        if (json_is_string(family))
            buf_addstr(&b, json_string_value(family));
    }
    while (b.len && b.ptr[b.len - 1] == ' ')
        buf_setlen(&b, b.len - 1);
    if (b.len == 0)
        buf_addstr(&b, "(no name)");
    json_t *birth = json_object_get(root, "birthDate");
    if (json_is_string(birth))
        buf_addf(&b, ", born %s", json_string_value(birth));
    json_decref(root);
    const char *s = arena_strndup(l->arena, b.ptr, b.len);
    buf_release(&b);
    return s;
}

/* The caller a signed-in account is, for the access policy (repo/access.h). */
static void account_caller(login_t *l, const store_account_t *account, const char *client_id,
                           const scope_set_t *scopes, repo_caller_t *out)
{
    repo_caller_kind_t kind = REPO_CALLER_SERVICE;
    if (strcmp(account->role, "patient") == 0)
        kind = REPO_CALLER_PATIENT;
    else if (strcmp(account->role, "admin") == 0)
        kind = REPO_CALLER_ADMIN;
    else if (auth_role_is_staff(account->role))
        kind = REPO_CALLER_STAFF;
    *out = (repo_caller_t){.kind = kind,
                           .account_id = account->account_id,
                           .username = account->username,
                           .role = account->role,
                           .practitioner_id = account->practitioner_id,
                           .practitioner_role_id = account->practitioner_role_id,
                           .patient_id = account->patient_id,
                           .client_id = client_id,
                           .scopes = scopes,
                           .source = l->peer};
}

/* Patients the account may see: by name, or one by id. The search runs as the person (their
 * own view of Patient, whatever the app asked for), so the access policy decides. */
static status_t find_patients(login_t *l, const store_account_t *account, const flow_t *flow,
                              const char *name, const char *id, store_search_result_t *out,
                              err_t *err)
{
    scope_set_t view;
    scope_parse(l->arena, "user/Patient.rs", strlen("user/Patient.rs"), &view);
    repo_caller_t caller;
    account_caller(l, account, flow->row.client_id, &view, &caller);
    fhir_search_pair_t pairs[2];
    size_t n = 0;
    if (id)
        pairs[n++] = url_pair("_id", id);
    else if (name)
        pairs[n++] = url_pair("name", name);
    pairs[n++] = url_pair("_count", PICKER_COUNT);
    repo_search_t search = {.type = fhir_resource_type_find("Patient", 7),
                            .pairs = pairs,
                            .npairs = n,
                            .now_us = l->now_us,
                            .base = fhir_base(l),
                            .caller = &caller};
    fhir_search_plan_t *plan;
    return repo_search(l->thread->conn, &search, l->arena, &plan, out, err);
}

static void picker_page(login_t *l, const flow_t *flow, const store_account_t *account,
                        const char *query, const char *error)
{
    err_t err = ERR_INIT;
    store_search_result_t found = {0};
    status_t rc = find_patients(l, account, flow, query, NULL, &found, &err);
    if (rc) {
        internal_error(l, &err, "the patient picker's search failed");
        err_release(&err);
        return;
    }
    err_release(&err);
    buf_t b = BUF_INIT;
    page_start(&b, "Choose a patient");
    buf_addstr(&b, "<p><strong>");
    html(&b, app_name(flow));
    buf_addstr(&b, "</strong> opens one patient's record. Choose whose.</p>\n");
    alert(&b, error);
    buf_addstr(&b, "<form method=\"post\" action=\"/oauth2/patient\" role=\"search\">\n");
    hidden_fields(&b, l, flow);
    buf_addstr(&b, "<label for=\"q\">Name</label>\n<input id=\"q\" name=\"q\" type=\"search\" "
                   "autocomplete=\"off\" autofocus");
    if (query) {
        buf_addstr(&b, " value=\"");
        html(&b, query);
        buf_addstr(&b, "\"");
    }
    buf_addstr(&b, ">\n<button type=\"submit\">Search</button>\n</form>\n");
    if (found.nmatch == 0) {
        buf_addstr(&b, "<p role=\"status\">No patient of yours matches.</p>\n");
    } else {
        buf_addstr(&b, "<ul class=\"patients\">\n");
        for (size_t i = 0; i < found.n; i++) {
            if (found.entries[i].included)
                continue;
            const store_version_t *v = &found.entries[i].version;
            buf_addstr(&b, "<li><form method=\"post\" action=\"/oauth2/patient\">\n");
            hidden_fields(&b, l, flow);
            buf_addstr(&b, "<input type=\"hidden\" name=\"patient\" value=\"");
            html(&b, v->id);
            buf_addstr(&b, "\">\n<span>");
            html(&b, patient_label(l, v->json, v->json_len));
            buf_addstr(&b, "</span> <button type=\"submit\" class=\"secondary\">Choose</button>\n"
                           "</form></li>\n");
        }
        buf_addstr(&b, "</ul>\n");
    }
    send_page(l, 200, &b, flow->form_origin);
    buf_release(&b);
}

static void confirm_patient_page(login_t *l, const flow_t *flow, const char *patient_id,
                                 const char *label)
{
    buf_t b = BUF_INIT;
    page_start(&b, "Open this record?");
    buf_addstr(&b, "<p><strong>");
    html(&b, app_name(flow));
    buf_addstr(&b, "</strong> will open the record of <strong id=\"patient\">");
    html(&b, label);
    buf_addstr(&b, "</strong> and may:</p>\n");
    describe_scopes(&b, &flow->scopes, false);
    buf_addstr(&b, "<form method=\"post\" action=\"/oauth2/patient\">\n");
    hidden_fields(&b, l, flow);
    buf_addstr(&b, "<input type=\"hidden\" name=\"patient\" value=\"");
    html(&b, patient_id);
    buf_addstr(&b, "\">\n<input type=\"hidden\" name=\"confirm\" value=\"1\">\n"
                   "<button type=\"submit\" autofocus>Open the record</button>\n</form>\n"
                   "<form method=\"post\" action=\"/oauth2/patient\">\n");
    hidden_fields(&b, l, flow);
    buf_addstr(&b, "<button type=\"submit\" class=\"secondary\">Choose another patient</button>\n"
                   "</form>\n");
    send_page(l, 200, &b, flow->form_origin);
    buf_release(&b);
}

/* ---- the flow -------------------------------------------------------------------------- */

static void flow_prepare(login_t *l, flow_t *flow)
{
    scope_parse(l->arena, flow->row.scope, strlen(flow->row.scope), &flow->scopes);
    flow->form_origin = origin_of(l, flow->row.redirect_uri);
}

/* The authorization request a form names, when it is live and belongs to this session;
 * otherwise answers with a page and returns false. */
static bool load_flow(login_t *l, flow_t *flow)
{
    const char *id = field_nonempty(l, "request");
    err_t err = ERR_INIT;
    status_t rc = id ? store_authz_request_get(l->thread->conn, id, l->arena, &flow->row, &err)
                     : ERR_NOT_FOUND;
    if (!rc && (strcmp(flow->row.session_id, l->session.session_id) != 0 ||
                l->now_us >= flow->row.expires_us))
        rc = ERR_NOT_FOUND;
    if (!rc)
        rc = store_client_get(l->thread->conn, flow->row.client_id, l->arena, &flow->client, &err);
    if (!rc && flow->client.disabled)
        rc = ERR_NOT_FOUND;
    if (rc == ERR_NOT_FOUND) {
        error_page(l, 400, "Sign-in expired",
                   "This sign-in has expired or was finished already. Go back to the app and "
                   "start again.");
    } else if (rc) {
        internal_error(l, &err, "could not read an authorization request");
    }
    err_release(&err);
    if (rc)
        return false;
    flow_prepare(l, flow);
    return true;
}

typedef struct {
    const char *request_id;
    bool deleted;
} request_delete_t;

static status_t request_delete_txn(store_txn_t *txn, void *arg, err_t *err)
{
    request_delete_t *d = arg;
    return store_txn_authz_request_delete(txn, d->request_id, &d->deleted, err);
}

/* The end of a flow: the code, and the browser back to the app. The request is used up
 * first, so that it gives one code. */
static void issue_code(login_t *l, const flow_t *flow, const store_account_t *account,
                       const char *patient_id)
{
    err_t err = ERR_INIT;
    request_delete_t d = {flow->row.request_id, false};
    status_t rc = store_run(l->server->store, request_delete_txn, &d, &err);
    if (!rc && !d.deleted) {
        error_page(l, 400, "Sign-in expired",
                   "This sign-in was finished already. Go back to the app and start again.");
        err_release(&err);
        return;
    }
    auth_grant_t grant = {.client_id = flow->row.client_id,
                          .account_id = account->account_id,
                          .scopes = flow->row.scope,
                          .patient_id = patient_id};
    char code[AUTH_TOKEN_SIZE];
    if (!rc)
        rc = auth_code_issue(&l->server->tokens, &grant, flow->row.code_challenge,
                             flow->row.redirect_uri, flow->row.nonce, l->now_us, code, &err);
    if (rc) {
        internal_error(l, &err, "could not issue an authorization code");
        err_release(&err);
        return;
    }
    err_release(&err);
    log_info("%s signed in to client %s from %s%s%s", account->username, flow->row.client_id,
             l->peer, patient_id ? " for Patient/" : "", patient_id ? patient_id : "");
    auth_audit_event(l->server->audit, "login", account->username, account->role,
                     flow->row.client_id, l->peer, "200",
                     arena_printf(l->arena, "scopes: %s%s%s", flow->row.scope,
                                  patient_id ? "; patient: " : "", patient_id ? patient_id : ""));
    const char *pairs[] = {"code", code};
    redirect_to_app(l, flow->row.redirect_uri, flow->row.state, pairs, 2);
}

/* The signed-in account of the session, or false (the session was signed out: an account
 * disabled since, say). */
static bool session_account(login_t *l, store_account_t *out)
{
    if (!l->have_session || l->session.state != STORE_SESSION_SIGNED_IN || !l->session.account_id)
        return false;
    err_t err = ERR_INIT;
    status_t rc = store_account_get_id(l->thread->conn, l->session.account_id, l->arena, out, &err);
    err_release(&err);
    return rc == ERR_OK && !out->disabled;
}

/* After sign-in: the patient context, then the code. */
static void continue_flow(login_t *l, const flow_t *flow)
{
    store_account_t account;
    if (!session_account(l, &account)) {
        login_page(l, flow, NULL, NULL);
        return;
    }
    if (!(flow->scopes.flags & SCOPE_LAUNCH_PATIENT)) {
        issue_code(l, flow, &account, NULL);
        return;
    }
    if (strcmp(account.role, "patient") == 0 && account.patient_id) {
        issue_code(l, flow, &account, account.patient_id);
        return;
    }
    if (strcmp(account.role, "service") == 0) {
        app_error(l, flow->row.redirect_uri, flow->row.state, "access_denied",
                  "a service account has no patient to open");
        return;
    }
    picker_page(l, flow, &account, NULL, NULL);
}

/* Marks the session signed in as account (or moves it to another step) and saves it, under a
 * new id when the step is a new one on the way to signing in. */
static bool session_step(login_t *l, store_session_state_t state, const char *username,
                         const char *account_id)
{
    /* each step a sign-in takes (the password, then the second factor) renews the id */
    bool renew = state != STORE_SESSION_ANONYMOUS && state != l->session.state;
    l->session.state = state;
    l->session.username = username;
    l->session.account_id = account_id;
    err_t err = ERR_INIT;
    status_t rc = renew ? session_renew(l, &err) : session_write(l, 1, &err);
    if (rc)
        internal_error(l, &err, "could not save a session");
    err_release(&err);
    return rc == ERR_OK;
}

static const char *failure_reason(auth_failure_t failure)
{
    switch (failure) {
    case AUTH_FAILURE_UNKNOWN_USER: return "unknown user";
    case AUTH_FAILURE_PASSWORD: return "wrong password";
    case AUTH_FAILURE_CODE: return "wrong code";
    case AUTH_FAILURE_LOCKED: return "account locked";
    case AUTH_FAILURE_DISABLED: return "account disabled";
    case AUTH_FAILURE_NONE: break;
    }
    return "refused";
}

static void log_failure(login_t *l, const char *username, auth_failure_t failure)
{
    log_info("sign-in failed for %s from %s: %s", loggable(l, username), l->peer,
             failure_reason(failure));
    auth_audit_event(l->server->audit, failure == AUTH_FAILURE_LOCKED ? "lockout" : "login-failed",
                     loggable(l, username), NULL, NULL, l->peer, "401", failure_reason(failure));
}

/* ---- the endpoints --------------------------------------------------------------------- */

typedef struct {
    store_authz_request_t *request;
} request_create_t;

static status_t request_create_txn(store_txn_t *txn, void *arg, err_t *err)
{
    return store_txn_authz_request_create(txn, ((request_create_t *)arg)->request, err);
}

static bool registered_uri(const char *list, const char *uri)
{
    size_t n = strlen(uri);
    for (const char *p = list; p && *p;) {
        while (*p == ' ')
            p++;
        const char *s = p;
        while (*p && *p != ' ')
            p++;
        if ((size_t)(p - s) == n && n && memcmp(s, uri, n) == 0)
            return true;
    }
    return false;
}

static bool valid_challenge(const char *s)
{
    size_t n = strlen(s);
    if (n < 43 || n > 128)
        return false;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.' || *s == '~'))
            return false;
    return true;
}

static bool same_base(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    while (na && a[na - 1] == '/')
        na--;
    while (nb && b[nb - 1] == '/')
        nb--;
    return na == nb && memcmp(a, b, na) == 0;
}

static void handle_authorize(login_t *l)
{
    err_t err = ERR_INIT;
    flow_t flow = {0};
    const char *client_id = field_nonempty(l, "client_id");
    const char *redirect_uri = field_nonempty(l, "redirect_uri");
    status_t rc = client_id
                      ? store_client_get(l->thread->conn, client_id, l->arena, &flow.client, &err)
                      : ERR_NOT_FOUND;
    if (rc && rc != ERR_NOT_FOUND) {
        internal_error(l, &err, "could not read a client");
        goto out;
    }
    if (rc || flow.client.disabled) {
        error_page(l, 400, "Unknown app",
                   client_id ? "The app that sent you here is not registered with this server, "
                               "or has been disabled."
                             : "The app that sent you here did not say which app it is "
                               "(client_id is missing).");
        goto out;
    }
    if (!redirect_uri || !registered_uri(flow.client.redirect_uris, redirect_uri)) {
        error_page(l, 400, "Wrong return address",
                   redirect_uri ? "The address the app asked to return to (redirect_uri) is not "
                                  "one it registered, so this server will not send you there."
                                : "The app did not say where to return to (redirect_uri is "
                                  "missing).");
        goto out;
    }
    /* from here on, refusals go back to the app */
    const char *state = field_nonempty(l, "state");
    const char *response_type = field(l, "response_type");
    const char *method = field(l, "code_challenge_method");
    const char *challenge = field_nonempty(l, "code_challenge");
    const char *aud = field_nonempty(l, "aud");
    const char *prompt = field_nonempty(l, "prompt");
    const char *base = fhir_base(l);
    if (!response_type || strcmp(response_type, "code") != 0) {
        app_error(l, redirect_uri, state, "unsupported_response_type",
                  "response_type must be code");
        goto out;
    }
    if (field(l, "launch")) {
        app_error(l, redirect_uri, state, "invalid_request",
                  "EHR launch (the launch parameter) is not supported: launch the app "
                  "standalone");
        goto out;
    }
    if (!challenge || !method || strcmp(method, "S256") != 0) {
        app_error(l, redirect_uri, state, "invalid_request",
                  !challenge ? "code_challenge is required (PKCE with S256)"
                             : "code_challenge_method must be S256 (plain is not accepted)");
        goto out;
    }
    if (!valid_challenge(challenge)) {
        app_error(l, redirect_uri, state, "invalid_request",
                  "code_challenge must be 43 to 128 characters of base64url");
        goto out;
    }
    if (!state) {
        app_error(l, redirect_uri, NULL, "invalid_request", "state is required");
        goto out;
    }
    if (aud && !same_base(aud, base)) {
        app_error(l, redirect_uri, state, "invalid_request",
                  "aud must be this server's FHIR base URL");
        goto out;
    }
    const char *asked = field(l, "scope");
    scope_set_t requested, allowed, granted;
    scope_parse(l->arena, asked ? asked : "", asked ? strlen(asked) : 0, &requested);
    scope_parse(l->arena, flow.client.scopes, strlen(flow.client.scopes), &allowed);
    scope_intersect(l->arena, &requested, &allowed, &granted);
    granted.flags &= ~(unsigned)SCOPE_LAUNCH; /* EHR launch context: not supported */
    buf_t scope_text = BUF_INIT;
    scope_format(&granted, &scope_text);
    const char *scope = arena_strndup(l->arena, scope_text.ptr, scope_text.len);
    buf_release(&scope_text);
    const char *query_scope = scope_query_unsupported(l->arena, &requested, &granted);
    if (query_scope) {
        app_error(l, redirect_uri, state, "invalid_scope",
                  arena_printf(l->arena,
                               "scope %s: scopes with a query (SMART v2 granular scopes) are "
                               "not supported",
                               query_scope));
        goto out;
    }
    if (!*scope) {
        app_error(l, redirect_uri, state, "invalid_scope",
                  asked && *asked ? "none of the scopes asked for can be granted to this app"
                                  : "scope is required");
        goto out;
    }
    bool force_login = prompt && strstr(prompt, "login");
    bool signed_in = l->have_session && l->session.state == STORE_SESSION_SIGNED_IN;
    if (prompt && strcmp(prompt, "none") == 0 && !signed_in) {
        app_error(l, redirect_uri, state, "login_required", "nobody is signed in");
        goto out;
    }
    if (!l->have_session && (rc = new_session(l, &err))) {
        internal_error(l, &err, "could not start a session");
        goto out;
    }
    if (force_login && signed_in) {
        if (!session_step(l, STORE_SESSION_ANONYMOUS, NULL, NULL))
            goto out;
        signed_in = false;
    }
    flow.row = (store_authz_request_t){.request_id = random_text(l),
                                       .session_id = l->session.session_id,
                                       .client_id = flow.client.client_id,
                                       .redirect_uri = redirect_uri,
                                       .scope = scope,
                                       .state = state,
                                       .code_challenge = challenge,
                                       .nonce = field_nonempty(l, "nonce"),
                                       .aud = aud,
                                       .created_us = l->now_us,
                                       .expires_us = l->now_us + REQUEST_LIFETIME_US};
    request_create_t create = {&flow.row};
    if ((rc = store_run(l->server->store, request_create_txn, &create, &err))) {
        internal_error(l, &err, "could not keep an authorization request");
        goto out;
    }
    flow_prepare(l, &flow);
    if (signed_in)
        continue_flow(l, &flow);
    else
        login_page(l, &flow, NULL, NULL);
out:
    err_release(&err);
}

/* The password step, checked on a worker (argon2id takes about 50 ms): the request's state
 * moves into the job with its arena, and comes back to the loop for the answer. */
typedef struct {
    http_job_t job; /* first */
    arena_t arena;  /* the request's, moved here */
    login_t l;
    flow_t flow;
    const char *username, *password;
    size_t password_len;
    status_t rc;
    err_t err;
    auth_login_t out;
} login_job_t;

static void login_work(http_job_t *job, store_conn_t *conn)
{
    login_job_t *j = (login_job_t *)job;
    j->rc = auth_login(&j->l.server->accounts, conn, j->username, j->password, j->password_len,
                       j->l.now_us, &j->arena, &j->out, &j->err);
}

/* The answer to the password step, on the request's loop. */
static void login_answer(login_t *l, flow_t *flow, status_t rc, auth_login_t *out, err_t *err)
{
    const char *username = out->account.username;
    if (rc == ERR_UNAUTHORIZED) {
        log_failure(l, field(l, "username"), out->failure);
        login_page(l, flow, MESSAGE_INVALID_USER, field(l, "username"));
    } else if (rc) {
        internal_error(l, err, "could not check a password");
    } else if (out->step == AUTH_LOGIN_DONE) {
        if (session_step(l, STORE_SESSION_SIGNED_IN, username, out->account.account_id))
            continue_flow(l, flow);
    } else if (out->step == AUTH_LOGIN_CODE) {
        if (session_step(l, STORE_SESSION_CODE, username, NULL))
            code_page(l, flow, NULL);
    } else {
        const char *uri = NULL, *secret = NULL;
        if (!session_step(l, STORE_SESSION_ENROLL, username, NULL))
            return;
        err_reset(err);
        rc = auth_mfa_enroll(&l->server->accounts, username, l->now_us, l->arena, &uri, &secret,
                             err);
        if (rc == ERR_UNAVAILABLE)
            error_page(l, 503, "Cannot set up a second factor",
                       "This server has no secrets key, so it cannot set up the second factor "
                       "your account needs. Tell your administrator.");
        else if (rc)
            internal_error(l, err, "could not start enrolment");
        else
            enroll_page(l, flow, uri, secret, NULL);
    }
}

static void login_done(http_job_t *job)
{
    login_job_t *j = (login_job_t *)job;
    if (job->req) {
        j->l.req = job->req;
        login_answer(&j->l, &j->flow, j->rc, &j->out, &j->err);
    }
    err_release(&j->err);
    arena_release(&j->arena);
    free(j);
}

static void handle_login(login_t *l)
{
    flow_t flow = {0};
    if (!check_csrf(l) || !load_flow(l, &flow))
        return;
    const char *username = field(l, "username");
    const char *password = field(l, "password");
    size_t password_len = 0;
    for (size_t i = 0; i < l->nform; i++)
        if (strcmp(l->form[i].name, "password") == 0)
            password_len = l->form[i].value_len;
    if (!username || !*username || !password || !*password) {
        login_page(l, &flow, MESSAGE_INVALID_USER, username);
        return;
    }
    login_job_t *j = xcalloc(1, sizeof(*j));
    /* everything l and flow point to lives in the arena, which the job takes */
    j->arena = *l->arena;
    arena_init(l->arena);
    j->l = *l;
    j->l.arena = &j->arena;
    j->flow = flow;
    j->username = username;
    j->password = password;
    j->password_len = password_len;
    err_init(&j->err);
    j->job.work = login_work;
    j->job.done = login_done;
    http__job_submit(l->thread, l->req, &j->job);
}

/* The session must be at step `state` for a second-factor form; else back to the password. */
static bool at_step(login_t *l, const flow_t *flow, store_session_state_t state)
{
    if (l->session.state == state && l->session.username)
        return true;
    login_page(l, flow, NULL, NULL);
    return false;
}

static void handle_code(login_t *l)
{
    flow_t flow = {0};
    if (!check_csrf(l) || !load_flow(l, &flow) || !at_step(l, &flow, STORE_SESSION_CODE))
        return;
    const char *code = field(l, "code");
    err_t err = ERR_INIT;
    auth_login_t out = {0};
    status_t rc = code && *code ? auth_mfa_verify(&l->server->accounts, l->session.username, code,
                                                  strlen(code), l->now_us, l->arena, &out, &err)
                                : ERR_UNAUTHORIZED;
    if (rc == ERR_UNAUTHORIZED) {
        log_failure(l, l->session.username, out.failure ? out.failure : AUTH_FAILURE_CODE);
        code_page(l, &flow, MESSAGE_INVALID_CODE);
    } else if (rc) {
        internal_error(l, &err, "could not check a code");
    } else {
        if (out.used_recovery_code)
            log_info("%s signed in with a recovery code (%lld left)", out.account.username,
                     (long long)out.account.recovery_codes);
        if (session_step(l, STORE_SESSION_SIGNED_IN, out.account.username, out.account.account_id))
            continue_flow(l, &flow);
    }
    err_release(&err);
}

static void handle_enroll(login_t *l)
{
    flow_t flow = {0};
    if (!check_csrf(l) || !load_flow(l, &flow) || !at_step(l, &flow, STORE_SESSION_ENROLL))
        return;
    err_t err = ERR_INIT;
    const char *action = field(l, "action");
    if (action && strcmp(action, "restart") == 0) {
        const char *uri = NULL, *secret = NULL;
        status_t rc = auth_mfa_enroll(&l->server->accounts, l->session.username, l->now_us,
                                      l->arena, &uri, &secret, &err);
        if (rc)
            internal_error(l, &err, "could not start enrolment");
        else
            enroll_page(l, &flow, uri, secret, NULL);
        err_release(&err);
        return;
    }
    const char *code = field(l, "code");
    char **codes = NULL;
    auth_login_t out = {0};
    status_t rc = code && *code
                      ? auth_mfa_confirm(&l->server->accounts, l->session.username, code,
                                         strlen(code), l->now_us, l->arena, &codes, &out, &err)
                      : ERR_UNAUTHORIZED;
    if (rc == ERR_UNAUTHORIZED) {
        log_failure(l, l->session.username, out.failure ? out.failure : AUTH_FAILURE_CODE);
        enroll_page(l, &flow, NULL, NULL, MESSAGE_INVALID_CODE);
    } else if (rc == ERR_CONFLICT) {
        /* enrolled meanwhile (another tab): the code is asked as at any sign-in */
        if (session_step(l, STORE_SESSION_CODE, l->session.username, NULL))
            code_page(l, &flow, NULL);
    } else if (rc) {
        internal_error(l, &err, "could not confirm enrolment");
    } else if (session_step(l, STORE_SESSION_SIGNED_IN, out.account.username,
                            out.account.account_id)) {
        log_info("%s enrolled in a second factor from %s", out.account.username, l->peer);
        recovery_page(l, &flow, codes);
    }
    err_release(&err);
}

static void handle_continue(login_t *l)
{
    flow_t flow = {0};
    if (!check_csrf(l) || !load_flow(l, &flow))
        return;
    continue_flow(l, &flow);
}

static void handle_patient(login_t *l)
{
    flow_t flow = {0};
    if (!check_csrf(l) || !load_flow(l, &flow))
        return;
    store_account_t account;
    if (!session_account(l, &account)) {
        login_page(l, &flow, NULL, NULL);
        return;
    }
    if (!(flow.scopes.flags & SCOPE_LAUNCH_PATIENT) || strcmp(account.role, "patient") == 0 ||
        strcmp(account.role, "service") == 0) {
        continue_flow(l, &flow);
        return;
    }
    const char *patient = field_nonempty(l, "patient");
    if (!patient) {
        picker_page(l, &flow, &account, field_nonempty(l, "q"), NULL);
        return;
    }
    err_t err = ERR_INIT;
    store_search_result_t found = {0};
    status_t rc = find_patients(l, &account, &flow, NULL, patient, &found, &err);
    if (rc) {
        internal_error(l, &err, "could not find a patient");
        err_release(&err);
        return;
    }
    err_release(&err);
    if (found.nmatch == 0) {
        picker_page(l, &flow, &account, NULL, "That patient is not one of yours.");
        return;
    }
    const store_version_t *v = &found.entries[0].version;
    const char *confirm = field(l, "confirm");
    if (confirm && strcmp(confirm, "1") == 0)
        issue_code(l, &flow, &account, v->id);
    else
        confirm_patient_page(l, &flow, v->id, patient_label(l, v->json, v->json_len));
}

static void handle_logout(login_t *l, bool post)
{
    if (post) {
        if (!check_csrf(l))
            return;
        err_t err = ERR_INIT;
        status_t rc = session_write(l, 2, &err);
        if (rc) {
            internal_error(l, &err, "could not end a session");
            err_release(&err);
            return;
        }
        err_release(&err);
        if (l->session.username)
            log_info("%s signed out from %s", l->session.username, l->peer);
        set_cookie(l, "", true);
        buf_t b = BUF_INIT;
        page_start(&b, "Signed out");
        buf_addstr(&b, "<p role=\"status\">You have signed out of Concerto. Apps you opened "
                       "keep the access they were given until it expires.</p>\n");
        send_page(l, 200, &b, NULL);
        buf_release(&b);
        return;
    }
    buf_t b = BUF_INIT;
    if (!l->have_session || l->session.state != STORE_SESSION_SIGNED_IN) {
        page_start(&b, "Signed out");
        buf_addstr(&b, "<p role=\"status\">You are not signed in.</p>\n");
    } else {
        page_start(&b, "Sign out");
        buf_addstr(&b, "<p>You are signed in as <strong>");
        html(&b, l->session.username);
        buf_addstr(&b, "</strong>.</p>\n<form method=\"post\" action=\"/oauth2/logout\">\n");
        hidden_fields(&b, l, NULL);
        buf_addstr(&b, "<button type=\"submit\" autofocus>Sign out</button>\n</form>\n");
    }
    send_page(l, 200, &b, NULL);
    buf_release(&b);
}

/* Large text, strong contrast (at least 7:1), a visible focus ring. */
static const char style_sheet[] =
    "html{font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;font-size:112.5%;"
    "line-height:1.5;color:#1a1a1a;background:#f4f5f7}\n"
    "body{margin:0}\n"
    "main{max-width:28rem;margin:2rem auto;padding:1.5rem 2rem;background:#fff;"
    "border:1px solid #c4c8cf;border-radius:.5rem}\n"
    ".brand{margin:0;font-weight:700;color:#0b3d6b;letter-spacing:.05em}\n"
    "h1{font-size:1.5rem;margin:.25rem 0 1rem}\n"
    "label{display:block;font-weight:600;margin-top:1rem}\n"
    "input{box-sizing:border-box;width:100%;font:inherit;padding:.5rem;margin-top:.25rem;"
    "border:2px solid #4a4f57;border-radius:.25rem;color:#1a1a1a;background:#fff}\n"
    "button{font:inherit;font-weight:600;margin-top:1.25rem;padding:.5rem 1.25rem;"
    "color:#fff;background:#0b3d6b;border:2px solid #0b3d6b;border-radius:.25rem;"
    "cursor:pointer}\n"
    "button.secondary{color:#0b3d6b;background:#fff;margin-top:.5rem}\n"
    "input:focus,button:focus{outline:3px solid #b35c00;outline-offset:2px}\n"
    ".error{color:#7a1010;background:#fdecea;border-left:4px solid #7a1010;padding:.5rem .75rem}\n"
    ".hint{margin:.25rem 0 0;color:#3d4249;font-size:.9rem}\n"
    ".secret code{font-size:1rem;word-break:break-all}\n"
    ".codes{columns:2;font-size:1.05rem}\n"
    ".patients{list-style:none;padding:0}\n"
    ".patients li{border-top:1px solid #c4c8cf;padding:.5rem 0}\n"
    ".patients form{display:flex;align-items:center;justify-content:space-between;gap:1rem}\n";

static void send_style(login_t *l)
{
    h2o_req_t *req = l->req;
    req->res.status = 200;
    req->res.reason = "OK";
    set_header(l, H2O_TOKEN_CONTENT_TYPE, "text/css; charset=utf-8");
    /* carries nothing private: browsers may keep it */
    set_header(l, H2O_TOKEN_CACHE_CONTROL, "public, max-age=3600");
    req->res.content_length = sizeof(style_sheet) - 1;
    h2o_send_inline(req, style_sheet, sizeof(style_sheet) - 1);
}

/* Reads the form of a POST (application/x-www-form-urlencoded) or the query of a GET;
 * answers and returns false when the body is not one. */
static bool read_form(login_t *l, bool post)
{
    h2o_req_t *req = l->req;
    if (!post) {
        if (req->query_at != SIZE_MAX)
            l->nform = url_query_split(l->arena, req->path.base + req->query_at + 1,
                                       req->path.len - req->query_at - 1, &l->form);
        return true;
    }
    if (req->entity.len > FORM_MAX) {
        error_page(l, 413, "Form too large", "The form sent was too large.");
        return false;
    }
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    h2o_iovec_t type = i >= 0 ? req->headers.entries[i].value : h2o_iovec_init(NULL, 0);
    static const char form_type[] = "application/x-www-form-urlencoded";
    size_t n = sizeof(form_type) - 1;
    if (type.len < n || strncasecmp(type.base, form_type, n) != 0 ||
        (type.len > n && type.base[n] != ';' && type.base[n] != ' ')) {
        error_page(l, 415, "Not a form", "Send an HTML form (application/x-www-form-urlencoded).");
        return false;
    }
    if (req->entity.base)
        l->nform = url_query_split(l->arena, req->entity.base, req->entity.len, &l->form);
    return true;
}

bool http__login_route(h2o_req_t *req, arena_t *arena)
{
    h2o_iovec_t path = req->path_normalized;
    static const char prefix[] = "/oauth2/";
    if (path.len < sizeof(prefix) - 1 || memcmp(path.base, prefix, sizeof(prefix) - 1) != 0)
        return false;
    h2o_iovec_t name =
        h2o_iovec_init(path.base + sizeof(prefix) - 1, path.len - (sizeof(prefix) - 1));
    enum { AUTHORIZE, LOGIN, CODE, ENROLL, CONTINUE, PATIENT, LOGOUT, STYLE } which;
    if (iov_eq(name, "authorize"))
        which = AUTHORIZE;
    else if (iov_eq(name, "login"))
        which = LOGIN;
    else if (iov_eq(name, "login/code"))
        which = CODE;
    else if (iov_eq(name, "login/enroll"))
        which = ENROLL;
    else if (iov_eq(name, "continue"))
        which = CONTINUE;
    else if (iov_eq(name, "patient"))
        which = PATIENT;
    else if (iov_eq(name, "logout"))
        which = LOGOUT;
    else if (iov_eq(name, "login.css"))
        which = STYLE;
    else
        return false;

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    http_thread_t *thread = http__thread_of(req);
    const char *peer = http__peer_address(req, arena);
    login_t l = {.req = req,
                 .thread = thread,
                 .server = thread->server,
                 .arena = arena,
                 .now_us = (int64_t)ts.tv_sec * SECOND + ts.tv_nsec / 1000,
                 .tls = thread->server->config.tls != NULL,
                 .peer = peer ? peer : "unknown"};
    bool get = iov_eq(req->method, "GET") || iov_eq(req->method, "HEAD");
    bool post = iov_eq(req->method, "POST");
    bool get_allowed = which == AUTHORIZE || which == LOGOUT || which == STYLE;
    bool post_allowed = which != STYLE;
    if (!((get && get_allowed) || (post && post_allowed))) {
        set_header(&l, H2O_TOKEN_ALLOW,
                   get_allowed && post_allowed ? "GET, POST"
                   : get_allowed               ? "GET"
                                               : "POST");
        error_page(&l, 405, "Not allowed", "This address does not take that method.");
        return true;
    }
    if (which == STYLE) {
        send_style(&l);
        return true;
    }
    if (!read_form(&l, post))
        return true;
    err_t err = ERR_INIT;
    if (load_session(&l, &err)) {
        internal_error(&l, &err, "could not read a session");
        err_release(&err);
        return true;
    }
    err_release(&err);
    switch (which) {
    case AUTHORIZE: handle_authorize(&l); break;
    case LOGIN: handle_login(&l); break;
    case CODE: handle_code(&l); break;
    case ENROLL: handle_enroll(&l); break;
    case CONTINUE: handle_continue(&l); break;
    case PATIENT: handle_patient(&l); break;
    case LOGOUT: handle_logout(&l, post); break;
    case STYLE: break;
    }
    return true;
}
