/*
 * http_int.h - shared between the files of src/http: the server and its threads.
 */
#ifndef CONCERTO_HTTP_HTTP_INT_H
#define CONCERTO_HTTP_HTTP_INT_H

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "auth/accounts.h"
#include "auth/audit.h"
#include "auth/tokens.h"
#include "base/url.h"
#include "base/arena.h"
#include "base/buf.h"
#include "care/protocols.h"
#include "http/http.h"
#include "repo/access.h"
#include "store/store.h"

typedef struct http_server http_server_t;
typedef struct http_job http_job_t;

/* The worker threads of offload.c and their queue of jobs. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    http_job_t *head, *tail; /* queued, oldest first */
    bool stopping;
    int nworkers, nslots;
    pthread_t *workers;
    void *args; /* each worker's store connection */
} http_pool_t;

struct http_tls {
    SSL_CTX *ssl_ctx; /* shared by every thread's accept context (OpenSSL locks what it must) */
};

typedef struct {
    http_server_t *server;
    int index;
    pthread_t tid;
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    int listen_fd;
    store_conn_t *conn;        /* reads that must see the latest writes: by id, in writes */
    store_conn_t *search_conn; /* reads that may lag (searches, history, $everything): on
                                  the read replica when there is one (store_connect_replica) */
    h2o_multithread_receiver_t done_receiver; /* writes finished by the store's writer */
    h2o_multithread_receiver_t job_receiver;  /* jobs finished by the workers (offload.c) */
    size_t pending;                           /* writes and jobs in flight from this thread */
} http_thread_t;

struct http_server {
    http_config_t config;
    store_t *store;
    h2o_globalconf_t globalconf;
    http_thread_t *threads;
    int nthreads;
    atomic_bool stopping;
    pthread_mutex_t capability_lock; /* guards the three below */
    char *capability;                /* the CapabilityStatement, built for the snapshot below */
    size_t capability_len;
    const fhir_search_snapshot_t *capability_snapshot; /* held */
    int port;
    password_dict_t *dict;    /* the password policy's word list */
    auth_accounts_t accounts; /* logins, over store, with config.secrets */
    auth_tokens_t tokens;     /* codes and tokens, with config.token_ttl_us; the cache of
                                 checked access tokens and their accounts: after disabling an
                                 account or revoking tokens in this process, call
                                 auth_tokens_forget (auth_token_revoke does) */
    auth_audit_t *audit;      /* the audit trail (auth/audit.h); closed before the store */
    http_pool_t pool;         /* workers for argon2id checks (offload.c) */
};

/* ---- slow work off the event loops (offload.c) ---- */

/* The worker threads of a server. */
#define HTTP_POOL_WORKERS 2

/*
 * A job: embed it first in a struct of your own, heap-allocated, with everything work needs
 * (not the request's arena: http__handle releases that when the handler returns; move it
 * into the job instead). work runs on a worker thread with the worker's store connection and
 * must not touch the request; done runs afterwards on the request's loop, with req NULL when
 * the client went away meanwhile (answer nothing then), and frees the job.
 */
typedef void (*http_job_work_fn)(http_job_t *job, store_conn_t *conn);
typedef void (*http_job_done_fn)(http_job_t *job);
struct http_job {
    h2o_multithread_message_t message;
    http_thread_t *thread;
    h2o_req_t *req; /* NULL once the request is gone */
    struct http_job_cell *cell;
    http_job_work_fn work;
    http_job_done_fn done;
    http_job_t *next;
};

/* Queues job (work and done set, the rest zero) for req of thread; returns at once. */
void http__job_submit(http_thread_t *thread, h2o_req_t *req, http_job_t *job);
/* The loop's side: runs done of the jobs finished for this thread. */
void http__on_jobs_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);
/* Starts nworkers threads, each with its own store connection; stops them (after the loops:
 * nothing may be queued any more), waiting for the jobs queued. */
status_t http__pool_start(http_server_t *server, int nworkers, err_t *err);
void http__pool_stop(http_server_t *server);

/* A decoded query parameter (base/url.h): name and value NUL-terminated, in the request's
 * arena. */
typedef url_pair_t http_param_t;

/* What a search needs of its request (search.c). */
typedef struct {
    http_thread_t *thread;
    h2o_req_t *req;
    arena_t *arena;             /* the request's */
    const char *base;           /* the FHIR base url */
    const http_param_t *params; /* the query string */
    size_t nparams;
    const repo_caller_t *caller;   /* who asks (bearer.c) */
    store_search_result_t *result; /* when not NULL, gets the page found (for the audit) */
} http_search_request_t;

/* One parameter of a Parameters body: its name ("" when it has none), the parameter (its
 * value[x] inside), and where it is ("Parameters.parameter[2]") for an error. */
typedef status_t (*http_parameter_fn)(void *arg, const char *name, const json_t *parameter,
                                      const char *where, err_t *err);
/*
 * The Parameters body of the POST of operation ("$apply"): nothing without a body; else
 * ERR_TOO_LARGE over max-body, ERR_SYNTAX, ERR_INVALID when it is not a Parameters resource,
 * and fn for each parameter in order, stopping at its first error (params.c).
 */
status_t http__parameters_body(const http_search_request_t *r, const char *operation,
                               http_parameter_fn fn, void *arg, err_t *err);

/* True when the method and the path segments after /fhir ask for a search: GET [type],
 * GET (all types), GET [compartment]/[id]/[type], and POST of each with /_search added. */
bool http__is_search(h2o_req_t *req, const h2o_iovec_t *seg, size_t nseg);
/* Runs a search and writes the searchset Bundle into out; errors are returned for the caller
 * to answer. */
status_t http__search(const http_search_request_t *request, const h2o_iovec_t *seg, size_t nseg,
                      buf_t *out, err_t *err);

/* $everything on Patient (everything.c): the parameters as the query gave them. */
typedef struct {
    const char *patient_id; /* NULL: type-level */
    bool post;              /* POST: a Parameters body may carry the parameters too */
    const char *since, *types, *count, *page;
} http_everything_t;

/* Runs $everything and writes the searchset Bundle into out; errors are returned for the
 * caller to answer. */
status_t http__everything(const http_search_request_t *request, http_everything_t *everything,
                          buf_t *out, err_t *err);
/* PlanDefinition/[id]/$apply (apply.c): reads the parameters of the query and of a POST's
 * Parameters body into *out (strings in request->arena, or the query's); errors (400, 413)
 * are returned for the caller to answer. Runs on the request's loop; the run
 * (care_protocols_apply) is a job of offload.c. */
status_t http__apply_parse(const http_search_request_t *request, const char *plan_id, bool post,
                           care_apply_t *out, err_t *err);
/* Parses an instant (or a date) of a query parameter such as _since (fhir.c). */
bool http__parse_instant(const char *s, int64_t *out_us);

/* ---- the audit trail (audit.c) ---- */

/* The distinct patients among the resources of a response (in an arena). */
typedef struct {
    const char **ids;
    size_t n, cap;
} http_audit_patients_t;

/* Adds the patient of a resource (repo_patient_of_json), when it has one. */
void http__audit_patient_add(arena_t *arena, http_audit_patients_t *patients, const char *type,
                             const char *id, const char *json, size_t len);
/* Adds the patients of a search's or $everything's page. */
void http__audit_entries(arena_t *arena, http_audit_patients_t *patients,
                         const store_search_result_t *result);

/* One interaction to record. */
typedef struct {
    const repo_caller_t *caller; /* NULL: the server itself (the source is then the peer's) */
    h2o_req_t *req;              /* for the peer's address; may be NULL */
    const char *action;          /* read, vread, history, search, everything, create, ... */
    const char *type, *id;       /* what it was about, when known */
    const char *query;           /* a search's query string, or NULL */
    int status;                  /* the HTTP status answered */
} http_audit_t;

/* Queues the audit rows of an interaction: one per patient in patients (may be NULL), one
 * without a patient when there is none. Waits while the trail's queue is full. */
void http__audit(http_server_t *server, const http_audit_t *what,
                 const http_audit_patients_t *patients);

/* Task/$worklist (worklist.c): the caller's worklist as a collection Bundle into out, the
 * patients of the Tasks it shows added to patients (may be NULL) for the audit trail; errors
 * are returned for the caller to answer. post: a Parameters body may carry parameters too. */
status_t http__worklist(const http_search_request_t *request, bool post, buf_t *out,
                        http_audit_patients_t *patients, err_t *err);

/* GET AuditEvent (id NULL: a search with params) and GET AuditEvent/[id]. */
typedef struct {
    store_conn_t *conn; /* reads the primary */
    arena_t *arena;
    const char *base;
    const http_param_t *params;
    size_t nparams;
    const repo_caller_t *caller;
    const char *id;
} http_audit_request_t;

/* Writes an AuditEvent or a searchset Bundle of them into out. ERR_FORBIDDEN unless the caller
 * is an administrator (or NULL), ERR_NOT_FOUND, ERR_INVALID for a bad parameter. */
status_t http__audit_api(const http_audit_request_t *request, buf_t *out, err_t *err);
/* The CapabilityStatement's entry of AuditEvent: read and search-type, its parameters. */
void http__audit_capability(buf_t *out);

/* GET CarePlan/[id]/$adherence (careplan.c): the Parameters of the plan's adherence at the
 * clock's now into out, read as caller; the patients it concerns into patients (audit).
 * Errors: those of reading the CarePlan (ERR_NOT_FOUND, ERR_GONE, ERR_FORBIDDEN), ERR_TOO_LARGE
 * for a plan of more than 500 activities, storage errors. */
status_t http__care_plan_adherence(http_thread_t *thread, const repo_caller_t *caller,
                                   const char *id, arena_t *arena, buf_t *out,
                                   http_audit_patients_t *patients, err_t *err);

/* GET or POST Encounter/[id]/$tcm (tcm.c): the TCM report of the discharge at the clock's now
 * as a Parameters resource into out, read as the caller reads the Encounter; its patient into
 * patients (audit). post: a Parameters body, which must hold no parameter. Errors: those of the
 * body and of care_tcm_report. */
status_t http__tcm(const http_search_request_t *request, const char *id, bool post, buf_t *out,
                   http_audit_patients_t *patients, err_t *err);

/* GET or POST Encounter/$readmissions (readmissions.c): the 30-day readmission measure of the
 * stays discharged from periodStart to periodEnd (query or Parameters body) as a MeasureReport
 * into out, counted over what the caller may search; the patients of the stays read into
 * patients (audit). Errors: ERR_INVALID naming a missing, malformed or unknown parameter, and
 * those of care_readmissions_gather. */
status_t http__readmissions(const http_search_request_t *request, bool post, buf_t *out,
                            http_audit_patients_t *patients, err_t *err);

/* The address of the request's peer as text (audit.c), in arena; NULL when unknown. */
const char *http__peer_address(h2o_req_t *req, arena_t *arena);

/* The Content-Security-Policy of a response that chooses none: an API answer loads nothing
 * and may be framed by nothing. */
#define HTTP_CSP_API "default-src 'none'; frame-ancestors 'none'"

/*
 * Adds to pathconf the filter that puts the security headers on every response as it starts
 * (headers.c): X-Content-Type-Options: nosniff, X-Frame-Options: DENY, Referrer-Policy:
 * no-referrer, Content-Security-Policy (HTTP_CSP_API unless the response set its own),
 * Cache-Control: no-store (unless the response set its own: only a response that carries no
 * health data may choose caching), and with TLS Strict-Transport-Security.
 */
void http__register_security_headers(http_server_t *server, h2o_pathconf_t *pathconf);
/* Chooses the Content-Security-Policy of one response (a page with scripts or styles of its
 * own, say) instead of HTTP_CSP_API. policy is copied into the request's pool. */
void http__set_content_security_policy(h2o_req_t *req, const char *policy);

/* Answers /admin/clock when the server runs with --test-clock (clock.c); false (nothing
 * answered) for any other path, or without the flag. */
bool http__clock_route(http_thread_t *thread, h2o_req_t *req, arena_t *arena);

/* ---- the administrators' JSON endpoints (admin.c) ---- */

/* Sets a response header (name and value copied into the request's pool). */
void http__admin_header(h2o_req_t *req, const char *name, const char *value);
/* Answers status with body (copied) of content type type. */
void http__admin_send(h2o_req_t *req, int status, const char *type, const buf_t *body);
/* Answers err as an OperationOutcome, and logs it. */
void http__admin_error(h2o_req_t *req, err_t *err);
/* Appends ,"key":"2026-03-08T06:59:00Z" (null for 0) and ,"key":"value" (null for NULL). */
void http__json_time(buf_t *out, const char *key, int64_t us);
void http__json_string(buf_t *out, const char *key, const char *value);
/* The number in text (len bytes) when it is all digits and positive. */
bool http__parse_id(const char *text, size_t len, int64_t *out);
/* The caller of req when it is an administrator; else ERR_UNAUTHORIZED (with the challenge
 * header set) or ERR_FORBIDDEN ("only administrators may <what>", recorded as denied). */
status_t http__admin_caller(http_thread_t *thread, h2o_req_t *req, arena_t *arena, const char *what,
                            const repo_caller_t **out, err_t *err);

/* Answers GET /admin/queue and POST /admin/queue/dead/{id}/replay (queue.c): the work queue
 * for administrators; false (nothing answered) for any other path. */
bool http__queue_route(http_thread_t *thread, h2o_req_t *req, arena_t *arena);
/* Answers GET /admin/hl7, GET /admin/hl7/messages[/{id}] and POST
 * /admin/hl7/messages/{id}/reprocess (hl7.c): the HL7 feed's stored messages, for admins.
 * False when the path is not under /admin/hl7. */
bool http__hl7_route(http_thread_t *thread, h2o_req_t *req, arena_t *arena);

/* Answers the sign-in paths under /oauth2/ (login.c: authorize, login, logout and the pages
 * between) and returns true; false for any other path. arena is the request's. */
bool http__login_route(h2o_req_t *req, arena_t *arena);

/* The request handler for every path. */
int http__handle(h2o_handler_t *self, h2o_req_t *req);
/* Delivers finished writes on the thread that received them. */
void http__on_writes_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);
/* Builds server->capability for the current search parameters (at start). */
void http__build_capability(http_server_t *server);
/* The CapabilityStatement copied into pool, rebuilt first when the search parameters changed
 * since it was built (a SearchParameter was written), with rest.security naming the OAuth
 * endpoints of the FHIR base URL base. */
char *http__capability(http_server_t *server, h2o_mem_pool_t *pool, const char *base,
                       size_t *out_len);

/* The FHIR base URL of a request: --base-url, else from the scheme and Host (in arena). */
const char *http__base_url(http_server_t *server, h2o_req_t *req, arena_t *arena);

/*
 * The OAuth endpoints (oauth.c): /fhir/.well-known/smart-configuration, /oauth2/token,
 * /oauth2/revoke, /oauth2/introspect and /oauth2/jwks. Returns false when path is none of
 * them; otherwise it has answered. base is the FHIR base URL (the issuer).
 */
bool http__oauth_route(http_thread_t *thread, h2o_req_t *req, arena_t *arena, const char *base);
/* The URL of an OAuth endpoint ("token", "authorize", ...) of the FHIR base URL base: the
 * base without its final /fhir, then /oauth2/endpoint. In arena. */
const char *http__oauth_url(arena_t *arena, const char *base, const char *endpoint);
/* Whether browser apps may call path from any origin (CORS): /fhir and below (bearer tokens,
 * no cookies), the token, revocation, introspection and JWK Set endpoints. */
bool http__cors_path(h2o_iovec_t path);
/* Adds Access-Control-Allow-Origin: * and the exposed headers to the response. */
void http__cors_headers(h2o_req_t *req);
/* Answers a CORS preflight (OPTIONS with Access-Control-Request-Method) of a CORS path: 204
 * with the allowed methods and headers. */
void http__cors_preflight(h2o_req_t *req);

/*
 * The caller of an API request (bearer.c), from its Authorization: Bearer token: *out in
 * arena. Errors: ERR_UNAUTHORIZED with *out_challenge the WWW-Authenticate value to send
 * (no token, or one that is malformed, unknown, expired or revoked, or whose account is
 * disabled); ERR_INVALID for a malformed X-Emergency-Access; storage errors.
 */
status_t http__bearer_caller(http_thread_t *thread, h2o_req_t *req, arena_t *arena,
                             const repo_caller_t **out, const char **out_challenge, err_t *err);
/* A deep copy of caller in arena (a write outlives its request's arena); NULL for NULL. */
const repo_caller_t *http__caller_copy(arena_t *arena, const repo_caller_t *caller);

static inline http_thread_t *http__thread_of(h2o_req_t *req)
{
    return H2O_STRUCT_FROM_MEMBER(http_thread_t, ctx, req->conn->ctx);
}

#endif
