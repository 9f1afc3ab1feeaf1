/*
 * fhirpath.h - FHIRPath 2.0.0 as used by FHIR R4: compile once, evaluate many times.
 *
 * An expression is parsed into an immutable compiled form; fhirpath_eval runs it over a
 * jansson resource and returns a collection whose items are either FHIR nodes (a JSON value
 * of the resource with its FHIR type and path) or System values (Boolean, Integer, Decimal,
 * String, Date, DateTime, Time, Quantity). Decimals are exact (no binary floating point), and
 * date/time comparisons follow the precision rules of the specification. Everything an
 * evaluation makes lives in the caller's arena, so one arena_release frees a result. A
 * compiled expression is never written after compile, so many threads may evaluate it at once.
 */
#ifndef CONCERTO_FHIR_FHIRPATH_H
#define CONCERTO_FHIR_FHIRPATH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "fhir/defs.h"

typedef struct fhirpath fhirpath_t;
typedef struct fhirpath_item fhirpath_item_t;
typedef struct fhirpath_result fhirpath_result_t;

/* Longest expression text accepted, and the most items one evaluation may produce. */
#define FHIRPATH_MAX_TEXT  ((size_t)64 * 1024)
#define FHIRPATH_MAX_ITEMS ((size_t)1000000)

/*
 * Compiles text (len bytes, need not be NUL-terminated). Returns a new expression the caller
 * frees with fhirpath_free, or NULL with an ERR_INVALID issue in err that names the column
 * and what was expected: `could not parse FHIRPath at column 12: expected ')' after function
 * arguments`. Unknown functions, wrong argument counts and unknown types in is/as/ofType
 * are reported here too.
 */
fhirpath_t *fhirpath_compile(const char *text, size_t len, err_t *err);
void fhirpath_free(fhirpath_t *expr);
/* The expression's text (borrowed, NUL-terminated). */
const char *fhirpath_text(const fhirpath_t *expr);

/* Options of fhirpath_check. */
#define FHIRPATH_CHECK_ORDERED 1u /* ordered functions (first, skip, [] ...) on children() */

/*
 * Checks an expression against the FHIR model for a context of type `type_name` ("Patient"):
 * each path step must name an element of the types that can reach it (`no element 'given1'
 * in HumanName`); a root naming another resource type, one branch of
 * `Patient.name | Practitioner.name`, is checked against that type. With
 * FHIRPATH_CHECK_ORDERED, an ordered function applied to children() or descendants() is an
 * error too. Returns 0, or ERR_INVALID naming the step, or when type_name is not a FHIR type.
 */
status_t fhirpath_check(const fhirpath_t *expr, const char *type_name, unsigned options,
                        err_t *err);

/*
 * Resolves a literal reference ("Patient/123", an absolute URL) that was found neither in
 * the resource's contained resources nor in its Bundle. Sets *out_resource to a new
 * reference (the engine releases it with the evaluation's arena) or NULL when unknown.
 */
typedef status_t (*fhirpath_resolve_fn)(void *data, const char *reference, size_t len,
                                        json_t **out_resource, err_t *err);
/*
 * A resolve hook for indexing and rules that need only the type of what a reference points
 * to: a literal reference "Type/id" (relative, or an absolute URL ending so, with or without
 * "/_history/n") to a resource type of the model resolves to a new shallow resource
 * {"resourceType": Type, "id": id}, without reading anything, so that
 * `subject.where(resolve() is Patient)` works; anything else resolves to nothing. data unused.
 */
status_t fhirpath_resolve_shallow(void *data, const char *reference, size_t len,
                                  json_t **out_resource, err_t *err);

/*
 * memberOf(): is code (in system, which may be NULL) in the value set at url?
 * Sets *out_member to 1, 0, or -1 when it cannot tell.
 */
typedef status_t (*fhirpath_member_of_fn)(void *data, const char *valueset_url, const char *system,
                                          const char *code, int *out_member, err_t *err);
/* trace(): called with the label and the traced items (as a JSON array, borrowed). */
typedef void (*fhirpath_trace_fn)(void *data, const char *label, const json_t *items);

/* An environment variable %name. value is borrowed: a JSON value (a string is a String, a
 * number an Integer or Decimal, an object a FHIR node, an array a collection). */
typedef struct {
    const char *name;
    json_t *value;
} fhirpath_var_t;

typedef struct {
    json_t *resource; /* %resource (borrowed); also the context unless context is set */
    json_t *context;  /* %context and the focus the expression starts from, or NULL */
    const fhir_type_t *context_type; /* the model type of context when it is an element of
                                        the resource (HumanName, Patient.contact), or NULL */
    json_t *root_resource;           /* %rootResource: the container of a contained resource, or the
                                        Bundle it came in (resolve() looks there too), or NULL */
    const fhirpath_var_t *vars;
    size_t nvars;
    fhirpath_resolve_fn resolve;
    void *resolve_data;
    fhirpath_member_of_fn member_of;
    void *member_of_data;
    fhirpath_trace_fn trace;
    void *trace_data;
    /* now(), today(), timeOfDay(): the system clock, or now_ms (milliseconds since 1970,
     * UTC) when now_set; seen at tz_offset_minutes east of UTC (0: UTC, written "Z"), so
     * today() is the date where the care happens. One value per evaluation. */
    bool now_set;
    int64_t now_ms;
    int tz_offset_minutes;
} fhirpath_env_t;

/* Zeroes env and sets the resource (and so the context). */
void fhirpath_env_init(fhirpath_env_t *env, json_t *resource);

/*
 * Evaluates expr. On success *out is a new collection in arena (valid until arena_release);
 * JSON values of node items are borrowed from the resource, which must outlive them.
 * Errors (ERR_INVALID): a type error names the operator or function and the operand
 * (`cannot apply '-' to String and String`), a singleton where a collection came, an
 * unknown variable, an unusable regular expression, an evaluation past FHIRPATH_MAX_ITEMS
 * items or its comparison budget; a failing resolve or memberOf hook passes its own error on.
 */
status_t fhirpath_eval(const fhirpath_t *expr, const fhirpath_env_t *env, arena_t *arena,
                       fhirpath_result_t **out, err_t *err);

/* Evaluates a condition: *out_value is 1 true, 0 false, -1 empty (or not a single boolean). */
status_t fhirpath_eval_condition(const fhirpath_t *expr, const fhirpath_env_t *env, arena_t *arena,
                                 int *out_value, err_t *err);

typedef enum {
    FHIRPATH_NODE, /* an element of a resource */
    FHIRPATH_BOOLEAN,
    FHIRPATH_INTEGER,
    FHIRPATH_DECIMAL,
    FHIRPATH_STRING,
    FHIRPATH_DATE,
    FHIRPATH_DATETIME,
    FHIRPATH_TIME,
    FHIRPATH_QUANTITY,
    FHIRPATH_TYPEINFO, /* what type() returns */
} fhirpath_kind_t;

size_t fhirpath_result_count(const fhirpath_result_t *result);
/* The i-th item (borrowed from the result). */
const fhirpath_item_t *fhirpath_result_item(const fhirpath_result_t *result, size_t i);

fhirpath_kind_t fhirpath_item_kind(const fhirpath_item_t *item);
/* A node's JSON value (borrowed from the resource); NULL for System values and for a
 * primitive that has only an id or extensions. */
json_t *fhirpath_item_json(const fhirpath_item_t *item);
/* A node's model type, or NULL when unknown or not a node. */
const fhir_type_t *fhirpath_item_fhir_type(const fhirpath_item_t *item);
/* Type name: FHIR for nodes ("date", "HumanName", the model's "Patient.contact" for an
 * inline element; NULL when unknown), System otherwise ("Integer", "Quantity"). Static or
 * borrowed. */
const char *fhirpath_item_type_name(const fhirpath_item_t *item);
/* Where a node is: "Patient.name[0].given[1]"; NULL for System values. In arena. */
const char *fhirpath_item_path(const fhirpath_item_t *item, arena_t *arena);
/*
 * Where a node is in the resource's JSON, so that a caller can change it there: *out_holder
 * is the JSON object that has the node as a member (borrowed; for an element of a primitive,
 * such as Patient.birthDate.extension, the primitive's "_birthDate" object), *out_key the
 * member's JSON name ("valueQuantity" for Observation.value; borrowed from the evaluation's
 * arena or the resource), *out_index its position when the member is an array, or -1, and
 * *out_choice whether the member is one type of a choice element (value[x]).
 * Returns false for System values and for nodes that are not members of anything: the
 * resource, %variables, what resolve() returned.
 */
bool fhirpath_item_location(const fhirpath_item_t *item, json_t **out_holder, const char **out_key,
                            int *out_index, bool *out_choice);
/* The toString() text of a primitive or System value (a quantity as "185 '[lb_av]'"), or
 * NULL for complex nodes. In arena. */
const char *fhirpath_item_text(const fhirpath_item_t *item, arena_t *arena);
/* The item as JSON: a node's own JSON, System values as string, number or boolean, a
 * quantity as {"value":..,"unit":..}. A new reference; decimals are jv decimals that keep
 * their exact text, so write it with jv_dump. */
json_t *fhirpath_item_to_json(const fhirpath_item_t *item);

/*
 * A value in a UCUM unit converted to the unit's canonical form (what search compares across
 * units): *out_value in the base units, *out_code their product as text ("g", "m-3.g",
 * "s-1", "1" for dimensionless units; at most cap bytes with the NUL). Celsius and [degF]
 * are offset scales and become kelvin (37 Cel is 310.15 K). Infinities stay infinite. False
 * when unit is not a UCUM unit the engine knows, or the code does not fit.
 */
bool fhirpath_ucum_canonical(const char *unit, double value, double *out_value, char *out_code,
                             size_t cap);

/* The result as a JSON array (a new reference). */
json_t *fhirpath_result_to_json(const fhirpath_result_t *result);
/* Appends the compact JSON text of the result array. */
void fhirpath_result_dump(const fhirpath_result_t *result, buf_t *out);

#endif
