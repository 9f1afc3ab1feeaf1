/*
 * builtin.h - the protocols Concerto ships: data/protocols/NAME.json, built into the program,
 * each a Bundle (type collection) of one PlanDefinition and the ActivityDefinitions it names
 * (docs/protocols.md, "Built-in protocols"). `concerto init` loads them.
 */
#ifndef CONCERTO_CARE_BUILTIN_H
#define CONCERTO_CARE_BUILTIN_H

#include <stddef.h>

#include "base/err.h"
#include "store/store.h"

/* The built-in protocols: how many, and the name of each (the file's, "new-patient-intake"). */
size_t care_builtin_count(void);
const char *care_builtin_name(size_t i);

typedef struct {
    size_t created; /* definitions written */
    size_t present; /* definitions left as they were: their url was there already */
} care_builtin_report_t;

/*
 * Writes, in one transaction, each built-in definition (with its shipped id) unless a resource
 * of its type has its canonical url, whatever that resource's version or status, or its id
 * has ever been used (a deleted one included): a protocol an administrator changed, retired
 * or deleted keeps what they did, and loading again writes nothing. Written as the server
 * itself, validated like any write. Errors: the store's, or the validation's naming the file
 * (a build with a broken file).
 */
status_t care_builtin_load(store_t *store, care_builtin_report_t *out, err_t *err);

#endif
