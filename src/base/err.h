/*
 * err.h - the one error type of Concerto.
 *
 * Fallible functions return status_t (0 is success) and describe what went wrong in an err_t
 * that travels up to one boundary (HTTP, CLI), where it becomes an OperationOutcome or a
 * message. ERR_CODES is the single table of codes: the HTTP status and the OperationOutcome
 * issue type of each code live here as data so that docs/errors.md is generated from it; only
 * src/http turns the status column into a response.
 */
#ifndef CONCERTO_BASE_ERR_H
#define CONCERTO_BASE_ERR_H

#include <stdarg.h>
#include <stddef.h>

/* X(NAME, http status, OperationOutcome issue type, when it is used) */
#define ERR_CODES(X)                                                                            \
    X(OK, 200, "informational", "success")                                                      \
    X(SYNTAX, 400, "structure", "the body is not well-formed JSON")                             \
    X(STRUCTURE, 400, "structure",                                                              \
      "the body is JSON but not a FHIR resource: unknown element, wrong JSON type, array "      \
      "where a single value belongs or the reverse")                                            \
    X(VALUE, 400, "value", "a primitive value has the wrong format (date, id, uri, ...)")       \
    X(INVALID, 400, "invalid", "the request itself is malformed: bad parameter, id, header")    \
    X(REQUIRED, 422, "required", "a required element is missing")                               \
    X(CODE_INVALID, 422, "code-invalid", "a code is not in its required value set")             \
    X(RULE, 422, "business-rule", "the resource is well-formed but breaks a rule")              \
    X(NOT_FOUND, 404, "not-found", "no resource or endpoint of that name")                      \
    X(METHOD, 405, "not-supported", "the HTTP method is not allowed on that path")              \
    X(CONFLICT, 409, "conflict", "the request conflicts with the current state")                \
    X(GONE, 410, "deleted", "the resource was deleted")                                         \
    X(VERSION_CONFLICT, 412, "conflict", "If-Match names a version that is not current")        \
    X(MULTIPLE_MATCHES, 412, "multiple-matches",                                                \
      "the search of a conditional request or reference matches more than one resource")        \
    X(PRECONDITION_REQUIRED, 428, "conflict",                                                   \
      "a change that must be version-checked (a Task's status or owner) came without If-Match") \
    X(TOO_LARGE, 413, "too-costly", "the body is over the configured limit")                    \
    X(MEDIA_TYPE, 415, "not-supported", "the body's Content-Type is not FHIR JSON")             \
    X(NOT_ACCEPTABLE, 406, "not-supported", "no format the client accepts can be produced")     \
    X(UNAUTHORIZED, 401, "login",                                                               \
      "the credentials are missing or do not verify: a token that is malformed, badly "         \
      "signed, expired or for someone else")                                                    \
    X(FORBIDDEN, 403, "forbidden",                                                              \
      "the caller is known but the access policy or the token's scopes do not allow this")      \
    X(INTERNAL, 500, "exception", "an unexpected failure inside the server")                    \
    X(STORAGE, 500, "exception", "the database reported an error")                              \
    X(UNAVAILABLE, 503, "transient", "the server is busy or shutting down; retry later")

typedef enum {
#define ERR_ENUM_(name, status, type, doc) ERR_##name,
    ERR_CODES(ERR_ENUM_)
#undef ERR_ENUM_
        ERR__COUNT
} status_t;

typedef enum { SEVERITY_FATAL, SEVERITY_ERROR, SEVERITY_WARNING, SEVERITY_INFORMATION } severity_t;

/* One problem. All strings are owned by the err_t that holds the issue. */
typedef struct {
    status_t code;
    severity_t severity;
    char *message;    /* for the client: short, lower case, no trailing period */
    char *expression; /* FHIRPath of the offending element, or NULL */
} err_issue_t;

/*
 * An error value: zero or more issues, the first error decides the status. log_detail is for
 * the server log only (SQL, driver text) and never reaches a client.
 */
typedef struct {
    status_t code; /* ERR_OK until an error-severity issue is added */
    err_issue_t *issues;
    size_t nissues, cap;
    char *log_detail;
} err_t;

/* clang-format off */
#define ERR_INIT {ERR_OK, NULL, 0, 0, NULL}
/* clang-format on */

void err_init(err_t *err);
/* Frees every issue; the err_t can be reused after err_init. */
void err_release(err_t *err);
/* Empties without freeing capacity. */
void err_reset(err_t *err);

/*
 * Adds an error issue and returns err->code (the first error's code stays the status).
 * expression may be NULL. Always returns a non-zero status for a non-OK code.
 */
status_t err_set(err_t *err, status_t code, const char *expression, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
status_t err_vset(err_t *err, status_t code, const char *expression, const char *fmt, va_list ap);
/* Adds an issue of the given severity; warnings and information do not change err->code. */
void err_add(err_t *err, status_t code, severity_t severity, const char *expression,
             const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Sets the log-only detail (replacing an earlier one). */
void err_log_detail(err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Moves all issues of src to the end of dst; src is left empty. */
void err_move(err_t *dst, err_t *src);

/* First error message, or "" when there is none. Borrowed from err. */
const char *err_message(const err_t *err);

int err_http_status(status_t code);
const char *err_issue_type(status_t code);
const char *err_name(status_t code);
const char *err_doc(status_t code);
const char *severity_name(severity_t severity);

#endif
