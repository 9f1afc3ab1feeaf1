/*
 * bearer.c - the access token of every API request (RFC 6750): Authorization: Bearer TOKEN,
 * checked against the token cache (auth_bearer_check: no database round trip while the token
 * and its account are cached), and the repo_caller_t built from it for the repo calls.
 *
 * There is no way to turn the check off: a request under /fhir without a live token gets 401
 * (but the CapabilityStatement and the SMART discovery document, which say how to get one).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "auth/tokens.h"
#include "base/clock.h"
#include "http/http_int.h"

/* An emergency reason longer than this is refused. */
#define EMERGENCY_REASON_MAX 500

static h2o_iovec_t find_header(h2o_req_t *req, const h2o_token_t *token)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    return i < 0 ? h2o_iovec_init(NULL, 0) : req->headers.entries[i].value;
}

static repo_caller_kind_t kind_of(const char *role)
{
    if (!role)
        return REPO_CALLER_SERVICE;
    if (strcmp(role, "admin") == 0)
        return REPO_CALLER_ADMIN;
    if (strcmp(role, "patient") == 0)
        return REPO_CALLER_PATIENT;
    if (strcmp(role, "service") == 0)
        return REPO_CALLER_SERVICE;
    return REPO_CALLER_STAFF;
}

static const char *challenge(arena_t *arena, const char *description)
{
    return arena_printf(arena,
                        "Bearer realm=\"concerto\", error=\"invalid_token\", "
                        "error_description=\"%s\"",
                        description);
}

status_t http__bearer_caller(http_thread_t *thread, h2o_req_t *req, arena_t *arena,
                             const repo_caller_t **out, const char **out_challenge, err_t *err)
{
    *out = NULL;
    *out_challenge = NULL;
    h2o_iovec_t v = find_header(req, H2O_TOKEN_AUTHORIZATION);
    if (!v.base) {
        *out_challenge = "Bearer realm=\"concerto\"";
        return err_set(err, ERR_UNAUTHORIZED, NULL,
                       "an access token is required: send Authorization: Bearer TOKEN (get one "
                       "at the token endpoint of /fhir/.well-known/smart-configuration)");
    }
    const char *s = v.base, *end = v.base + v.len;
    if (v.len < 7 || strncasecmp(s, "Bearer ", 7) != 0) {
        *out_challenge = challenge(arena, "the Authorization header is not a Bearer token");
        return err_set(err, ERR_UNAUTHORIZED, NULL,
                       "the Authorization header must be Bearer TOKEN (RFC 6750)");
    }
    s += 7;
    while (s < end && *s == ' ')
        s++;
    while (end > s && end[-1] == ' ')
        end--;
    auth_bearer_t bearer;
    err_t check = ERR_INIT;
    status_t rc = auth_bearer_check(&thread->server->tokens, thread->conn, s, (size_t)(end - s),
                                    clock_now_us(), arena, &bearer, &check);
    if (rc == ERR_UNAUTHORIZED) {
        *out_challenge = challenge(arena, err_message(&check));
        err_set(err, ERR_UNAUTHORIZED, NULL, "%s", err_message(&check));
        err_release(&check);
        return ERR_UNAUTHORIZED;
    }
    if (rc) {
        err_move(err, &check);
        return rc;
    }
    err_release(&check);

    const char *reason = NULL;
    ssize_t i = h2o_find_header_by_str(&req->headers, "x-emergency-access", 18, -1);
    if (i >= 0) {
        h2o_iovec_t r = req->headers.entries[i].value;
        const char *a = r.base, *b = r.base + r.len;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (a == b)
            return err_set(err, ERR_INVALID, NULL,
                           "X-Emergency-Access must state the reason for emergency access");
        if (b - a > EMERGENCY_REASON_MAX)
            return err_set(err, ERR_INVALID, NULL,
                           "X-Emergency-Access is %zu bytes: a reason may have at most %d",
                           (size_t)(b - a), EMERGENCY_REASON_MAX);
        reason = arena_strndup(arena, a, (size_t)(b - a));
    }

    repo_caller_t *caller = arena_alloc(arena, sizeof(*caller));
    memset(caller, 0, sizeof(*caller));
    caller->kind = bearer.has_account ? kind_of(bearer.account.role) : REPO_CALLER_SERVICE;
    if (bearer.has_account) {
        caller->account_id = bearer.account.account_id;
        caller->username = bearer.account.username;
        caller->role = bearer.account.role;
        caller->practitioner_id = bearer.account.practitioner_id;
        caller->practitioner_role_id = bearer.account.practitioner_role_id;
        caller->patient_id = bearer.account.patient_id;
    }
    caller->client_id = bearer.token.client_id;
    caller->launch_patient = bearer.token.patient_id;
    caller->scopes = bearer.scopes;
    caller->emergency_reason = reason;
    caller->source = http__peer_address(req, arena);
    *out = caller;
    return ERR_OK;
}

static const char *copy(arena_t *arena, const char *s)
{
    return s ? arena_strdup(arena, s) : NULL;
}

const repo_caller_t *http__caller_copy(arena_t *arena, const repo_caller_t *from)
{
    if (!from)
        return NULL;
    repo_caller_t *to = arena_alloc(arena, sizeof(*to));
    *to = *from;
    to->account_id = copy(arena, from->account_id);
    to->username = copy(arena, from->username);
    to->role = copy(arena, from->role);
    to->practitioner_id = copy(arena, from->practitioner_id);
    to->practitioner_role_id = copy(arena, from->practitioner_role_id);
    to->patient_id = copy(arena, from->patient_id);
    to->client_id = copy(arena, from->client_id);
    to->launch_patient = copy(arena, from->launch_patient);
    to->emergency_reason = copy(arena, from->emergency_reason);
    to->source = copy(arena, from->source);
    if (from->scopes) {
        const scope_set_t *a = from->scopes;
        scope_set_t *b = arena_alloc(arena, sizeof(*b));
        *b = *a;
        b->resources =
            a->nresources ? arena_alloc(arena, a->nresources * sizeof(*b->resources)) : NULL;
        for (size_t i = 0; i < a->nresources; i++) {
            const scope_resource_t *r = &a->resources[i];
            scope_resource_t *s = &b->resources[i];
            *s = *r;
            s->text = copy(arena, r->text);
            s->type = copy(arena, r->type);
            s->query = copy(arena, r->query);
            s->params = r->nparams ? arena_alloc(arena, r->nparams * sizeof(*s->params)) : NULL;
            for (size_t j = 0; j < r->nparams; j++) {
                s->params[j] = r->params[j];
                s->params[j].name = arena_strndup(arena, r->params[j].name, r->params[j].name_len);
                s->params[j].value =
                    arena_strndup(arena, r->params[j].value, r->params[j].value_len);
            }
        }
        b->unknown = a->nunknown ? arena_alloc(arena, a->nunknown * sizeof(*b->unknown)) : NULL;
        for (size_t i = 0; i < a->nunknown; i++)
            b->unknown[i] = copy(arena, a->unknown[i]);
        to->scopes = b;
    }
    return to;
}
