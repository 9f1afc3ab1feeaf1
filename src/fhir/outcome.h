/*
 * outcome.h - OperationOutcome: the one rendering of an err_t as FHIR JSON, used for error
 * responses, informational outcomes and the outcomes of Bundle entries alike.
 */
#ifndef CONCERTO_FHIR_OUTCOME_H
#define CONCERTO_FHIR_OUTCOME_H

#include "base/buf.h"
#include "base/err.h"

/*
 * Appends an OperationOutcome with one issue per issue of err (severity, the code's issue
 * type, diagnostics, expression). An err without issues gives one informational issue of
 * `empty_severity` saying `empty_text`.
 */
void fhir_outcome_json(const err_t *err, severity_t empty_severity, const char *empty_text,
                       buf_t *out);

#endif
