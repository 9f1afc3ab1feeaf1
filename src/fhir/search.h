/*
 * search.h - FHIR R4 search: the registry of search parameters.
 *
 * The registry is the generated table of the R4 SearchParameter definitions
 * (tools/gen-fhir-search writes search_gen.c) with, on top of it, the custom parameters a
 * server has been given at run time. Readers take an immutable snapshot of it; a writer
 * builds a new snapshot and swaps it in, so searches never wait for a registration.
 */
#ifndef CONCERTO_FHIR_SEARCH_H
#define CONCERTO_FHIR_SEARCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "fhir/defs.h"

/* --- search parameters ---------------------------------------------------------------- */

/* SearchParameter.type. */
typedef enum {
    FHIR_SEARCH_NUMBER,
    FHIR_SEARCH_DATE,
    FHIR_SEARCH_STRING,
    FHIR_SEARCH_TOKEN,
    FHIR_SEARCH_REFERENCE,
    FHIR_SEARCH_COMPOSITE,
    FHIR_SEARCH_QUANTITY,
    FHIR_SEARCH_URI,
    FHIR_SEARCH_SPECIAL,
} fhir_search_type_t;

/* SearchParameter.xpathUsage. */
typedef enum {
    FHIR_SEARCH_XPATH_NORMAL,
    FHIR_SEARCH_XPATH_PHONETIC,
    FHIR_SEARCH_XPATH_NEARBY,
    FHIR_SEARCH_XPATH_DISTANCE,
    FHIR_SEARCH_XPATH_OTHER,
} fhir_search_xpath_usage_t;

/* The prefixes of number, date and quantity values (SearchParameter.comparator). */
typedef enum {
    FHIR_SEARCH_PREFIX_EQ,
    FHIR_SEARCH_PREFIX_NE,
    FHIR_SEARCH_PREFIX_GT,
    FHIR_SEARCH_PREFIX_LT,
    FHIR_SEARCH_PREFIX_GE,
    FHIR_SEARCH_PREFIX_LE,
    FHIR_SEARCH_PREFIX_SA,
    FHIR_SEARCH_PREFIX_EB,
    FHIR_SEARCH_PREFIX_AP,
} fhir_search_prefix_t;

/* The modifiers of R4 (SearchParameter.modifier); TYPE is the ":[type]" of references. */
typedef enum {
    FHIR_SEARCH_MOD_NONE,
    FHIR_SEARCH_MOD_MISSING,
    FHIR_SEARCH_MOD_EXACT,
    FHIR_SEARCH_MOD_CONTAINS,
    FHIR_SEARCH_MOD_TEXT,
    FHIR_SEARCH_MOD_NOT,
    FHIR_SEARCH_MOD_ABOVE,
    FHIR_SEARCH_MOD_BELOW,
    FHIR_SEARCH_MOD_IN,
    FHIR_SEARCH_MOD_NOT_IN,
    FHIR_SEARCH_MOD_OF_TYPE,
    FHIR_SEARCH_MOD_IDENTIFIER,
    FHIR_SEARCH_MOD_TYPE,
} fhir_search_modifier_t;

/* A set of prefixes or modifiers: FHIR_SEARCH_BIT(FHIR_SEARCH_PREFIX_GT) | ... */
#define FHIR_SEARCH_BIT(value) (1u << (value))

/* One component of a composite parameter. */
typedef struct {
    const char *definition; /* canonical url of the component's own parameter */
    const char *code;       /* that parameter's code ("code", "value-quantity") */
    fhir_search_type_t type;
    const char *expression; /* FHIRPath relative to the composite's expression */
} fhir_search_component_t;

/*
 * A search parameter as it applies to one resource type. A definition with several bases is
 * one parameter per base whose expression keeps only the union members rooted at that base
 * ("AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient)" is
 * "CarePlan.subject.where(resolve() is Patient)" on CarePlan); an expression that cannot be
 * split safely is kept whole. Parameters for all resources have base "Resource" or
 * "DomainResource". Built-in parameters are static; custom ones live as long as every
 * snapshot that holds them.
 */
typedef struct {
    const char *code; /* the name in a query: "birthdate", "_id" */
    const char *base; /* "Patient"; "Resource" or "DomainResource" for common ones */
    fhir_search_type_t type;
    const char *url;        /* canonical url; NULL for _has, _list and _type, which the search
                               page defines without a SearchParameter */
    const char *expression; /* FHIRPath for this base; NULL when the definition has none
                               (_text, _content, _query, _filter) */
    fhir_search_xpath_usage_t xpath_usage;
    uint16_t comparators;       /* FHIR_SEARCH_BIT(prefix) set; 0 when none are listed */
    uint16_t modifiers;         /* FHIR_SEARCH_BIT(modifier) set; 0 when none are listed */
    const char *const *targets; /* reference: allowed target types, sorted; none: any */
    uint16_t ntargets;
    const fhir_search_component_t *components; /* composite only */
    uint16_t ncomponents;
    bool multiple_or, multiple_and; /* as the definition says; true when it says nothing */
} fhir_search_param_t;

/* "number", "date", ... as SearchParameter.type spells it. */
const char *fhir_search_type_name(fhir_search_type_t type);
/* "missing", "not-in", "of-type", "identifier", "type" (the spelling in queries). */
const char *fhir_search_modifier_name(fhir_search_modifier_t modifier);
const char *fhir_search_prefix_name(fhir_search_prefix_t prefix);

/*
 * A built-in parameter of a resource type, or of every resource when type is NULL: the
 * type's own parameters first, then those for all resources (_text only on DomainResource
 * types). A bsearch; NULL when there is none. The pointer is static.
 */
const fhir_search_param_t *fhir_search_param_find(const fhir_type_t *type, const char *code,
                                                  size_t len);

/* Counts of the generated table (for tests and the capability statement). */
typedef struct {
    size_t definitions;                      /* SearchParameter definitions kept from the package */
    size_t parameters;                       /* per resource type, common ones not counted */
    size_t common;                           /* for all resources, _has, _list and _type included */
    size_t by_type[FHIR_SEARCH_SPECIAL + 1]; /* parameters by type (common not counted) */
    size_t composite_definitions;
} fhir_search_counts_t;
void fhir_search_builtin_counts(fhir_search_counts_t *out);

/* --- the registry ------------------------------------------------------------------------ */

typedef struct fhir_search_registry fhir_search_registry_t;
typedef struct fhir_search_snapshot fhir_search_snapshot_t;

/*
 * A registry holds the current snapshot: the built-in parameters plus the custom ones.
 * Readers call acquire from any thread and release when done; writers replace the snapshot
 * (one writer at a time; a second one waits). Acquire takes a mutex only long enough to copy
 * the pointer and count a reference, never while a snapshot is built, so a reader never
 * waits for a registration. A snapshot is freed when its last reader releases it.
 */
fhir_search_registry_t *fhir_search_registry_new(void);
/* Frees the registry; snapshots still acquired stay valid until released. */
void fhir_search_registry_free(fhir_search_registry_t *registry);

/* The current snapshot with a reference the caller must release. Never NULL. */
const fhir_search_snapshot_t *fhir_search_registry_acquire(fhir_search_registry_t *registry);
void fhir_search_snapshot_release(const fhir_search_snapshot_t *snapshot);
/* A snapshot of the built-in parameters only: static, acquire and release are no-ops. */
const fhir_search_snapshot_t *fhir_search_builtin(void);

/*
 * Registers a SearchParameter resource (parsed JSON, borrowed: the registry keeps its own
 * copy of what it needs). A definition with the url of one already registered replaces it; a
 * custom parameter with the code of a built-in one on the same base hides the built-in one.
 * Status "retired" removes the url instead. Bases "Resource" and "DomainResource" make a
 * parameter for all resources. Components of a composite must name parameters registered or
 * built in. Errors (ERR_RULE, nothing changes): no url, code or base; a code that is not
 * [A-Za-z0-9][A-Za-z0-9_-]*; an unknown base, type or target; a composite without
 * resolvable components; no expression on a type other than special.
 */
status_t fhir_search_registry_put(fhir_search_registry_t *registry, const json_t *resource,
                                  err_t *err);
/* Removes the custom parameter with this url; true when there was one. */
bool fhir_search_registry_remove(fhir_search_registry_t *registry, const char *url);

/* A parameter in a snapshot: custom ones first, then as fhir_search_param_find. Borrowed
 * from the snapshot. */
const fhir_search_param_t *fhir_search_snapshot_find(const fhir_search_snapshot_t *snapshot,
                                                     const fhir_type_t *type, const char *code,
                                                     size_t len);
/* The custom parameter registered with this url on this base (NULL base: any), or NULL. */
const fhir_search_param_t *fhir_search_snapshot_find_url(const fhir_search_snapshot_t *snapshot,
                                                         const char *base, const char *url);

/*
 * Iterates over the parameters that apply to a type (type NULL: those for all resources),
 * in code order, each code once (a custom parameter instead of the built-in one of the same
 * code; a type's own before one for all resources):
 *
 *     fhir_search_iter_t it;
 *     fhir_search_iter_init(&it, snapshot, type);
 *     for (const fhir_search_param_t *p; (p = fhir_search_iter_next(&it));) ...
 */
typedef struct {
    const fhir_search_snapshot_t *snapshot;
    const fhir_type_t *type;
    size_t at[4];
} fhir_search_iter_t;
void fhir_search_iter_init(fhir_search_iter_t *it, const fhir_search_snapshot_t *snapshot,
                           const fhir_type_t *type);
const fhir_search_param_t *fhir_search_iter_next(fhir_search_iter_t *it);

#endif
