/*
 * err.c - error values: a list of issues with the status of the first error.
 * Allocation failure aborts (xmalloc), so adding an issue cannot itself fail.
 */
#include "base/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

static const struct {
    const char *name;
    int status;
    const char *type;
    const char *doc;
} codes[] = {
#define ERR_ROW_(name, status, type, doc) {#name, status, type, doc},
    ERR_CODES(ERR_ROW_)
#undef ERR_ROW_
};

void err_init(err_t *err)
{
    memset(err, 0, sizeof(*err));
}

void err_reset(err_t *err)
{
    for (size_t i = 0; i < err->nissues; i++) {
        free(err->issues[i].message);
        free(err->issues[i].expression);
    }
    err->nissues = 0;
    err->code = ERR_OK;
    free(err->log_detail);
    err->log_detail = NULL;
}

void err_release(err_t *err)
{
    err_reset(err);
    free(err->issues);
    err_init(err);
}

static void push(err_t *err, status_t code, severity_t severity, const char *expression,
                 const char *fmt, va_list ap)
{
    if (err->nissues == err->cap) {
        err->cap = err->cap ? err->cap * 2 : 4;
        err->issues = xrealloc(err->issues, err->cap * sizeof(*err->issues));
    }
    err_issue_t *issue = &err->issues[err->nissues++];
    issue->code = code;
    issue->severity = severity;
    issue->expression = expression ? xstrdup(expression) : NULL;
    issue->message = xvasprintf(fmt, ap);
    if (severity <= SEVERITY_ERROR && err->code == ERR_OK)
        err->code = code;
}

status_t err_vset(err_t *err, status_t code, const char *expression, const char *fmt, va_list ap)
{
    push(err, code, SEVERITY_ERROR, expression, fmt, ap);
    return err->code;
}

status_t err_set(err_t *err, status_t code, const char *expression, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, code, expression, fmt, ap);
    va_end(ap);
    return err->code;
}

void err_add(err_t *err, status_t code, severity_t severity, const char *expression,
             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    push(err, code, severity, expression, fmt, ap);
    va_end(ap);
}

void err_log_detail(err_t *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    free(err->log_detail);
    err->log_detail = xvasprintf(fmt, ap);
    va_end(ap);
}

void err_move(err_t *dst, err_t *src)
{
    for (size_t i = 0; i < src->nissues; i++) {
        err_issue_t *issue = &src->issues[i];
        if (dst->nissues == dst->cap) {
            dst->cap = dst->cap ? dst->cap * 2 : 4;
            dst->issues = xrealloc(dst->issues, dst->cap * sizeof(*dst->issues));
        }
        dst->issues[dst->nissues++] = *issue;
        if (issue->severity <= SEVERITY_ERROR && dst->code == ERR_OK)
            dst->code = issue->code;
    }
    src->nissues = 0;
    src->code = ERR_OK;
    if (src->log_detail && !dst->log_detail) {
        dst->log_detail = src->log_detail;
        src->log_detail = NULL;
    }
}

const char *err_message(const err_t *err)
{
    for (size_t i = 0; i < err->nissues; i++)
        if (err->issues[i].severity <= SEVERITY_ERROR)
            return err->issues[i].message;
    return err->nissues ? err->issues[0].message : "";
}

int err_http_status(status_t code)
{
    return code < ERR__COUNT ? codes[code].status : 500;
}

const char *err_issue_type(status_t code)
{
    return code < ERR__COUNT ? codes[code].type : "exception";
}

const char *err_name(status_t code)
{
    return code < ERR__COUNT ? codes[code].name : "UNKNOWN";
}

const char *err_doc(status_t code)
{
    return code < ERR__COUNT ? codes[code].doc : "";
}

const char *severity_name(severity_t severity)
{
    static const char *names[] = {"fatal", "error", "warning", "information"};
    return names[severity];
}
