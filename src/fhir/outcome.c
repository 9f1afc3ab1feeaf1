/*
 * outcome.c - err_t to OperationOutcome JSON.
 */
#include "fhir/outcome.h"

#include <string.h>

void fhir_outcome_json(const err_t *err, severity_t empty_severity, const char *empty_text,
                       buf_t *out)
{
    buf_addstr(out, "{\"resourceType\":\"OperationOutcome\",\"issue\":[");
    if (err->nissues == 0) {
        buf_addf(out, "{\"severity\":\"%s\",\"code\":\"informational\",\"diagnostics\":\"",
                 severity_name(empty_severity));
        buf_add_json_escaped(out, empty_text, strlen(empty_text));
        buf_addstr(out, "\"}");
    }
    for (size_t i = 0; i < err->nissues; i++) {
        const err_issue_t *issue = &err->issues[i];
        if (i)
            buf_addch(out, ',');
        buf_addf(out, "{\"severity\":\"%s\",\"code\":\"%s\",\"diagnostics\":\"",
                 severity_name(issue->severity), err_issue_type(issue->code));
        buf_add_json_escaped(out, issue->message, strlen(issue->message));
        buf_addch(out, '"');
        if (issue->expression) {
            buf_addstr(out, ",\"expression\":[\"");
            buf_add_json_escaped(out, issue->expression, strlen(issue->expression));
            buf_addstr(out, "\"]");
        }
        buf_addch(out, '}');
    }
    buf_addstr(out, "]}");
}
