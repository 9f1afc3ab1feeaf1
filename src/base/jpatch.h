/*
 * jpatch.h - JSON Patch (RFC 6902) over jansson values, with JSON Pointer (RFC 6901) paths.
 */
#ifndef CONCERTO_BASE_JPATCH_H
#define CONCERTO_BASE_JPATCH_H

#include <jansson.h>

#include "base/err.h"

/*
 * Applies patch (a JSON array of operations: add, remove, replace, move, copy, test) to
 * *document, all or nothing: on success *document is the patched value (a new reference; the
 * old one is released), on failure *document is unchanged and err says which operation failed
 * and why (ERR_INVALID for a malformed patch, ERR_RULE for a failed test or a path that does
 * not exist). Decimals (jv.h) compare by their text in `test`.
 */
status_t jpatch_apply(json_t **document, const json_t *patch, err_t *err);

#endif
