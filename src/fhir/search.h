/*
 * search.h - FHIR R4 search: the registry of search parameters and the parser that turns a
 * search query into a plan.
 *
 * The registry is the generated table of the R4 SearchParameter definitions
 * (tools/gen-fhir-search writes search_gen.c) with, on top of it, the custom parameters a
 * server has been given at run time. Readers take an immutable snapshot of it; a writer
 * builds a new snapshot and swaps it in, so searches never wait for a registration and a
 * plan keeps the snapshot it was made with. The parser is pure: it reads decoded name/value
 * pairs and writes a plan into the caller's arena, for a storage driver to turn into SQL.
 * docs/internals/search.md describes how a driver is meant to read a plan.
 */
#ifndef CONCERTO_FHIR_SEARCH_H
#define CONCERTO_FHIR_SEARCH_H

#include "base/url.h"
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
                               (_text, _content, _query, _filter); _text and _content are
                               searched through the full text of fhir_index_text */
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

/* A built-in parameter with this canonical url (the first base of its definition), or NULL. A
 * linear search: for SearchParameter writes, not for queries. */
const fhir_search_param_t *fhir_search_builtin_find_url(const char *url);

/*
 * How many values a parameter can give one resource, proven from its expression and the
 * element definitions (max cardinality of each element on the path, choice types, Timing):
 * ONE when at most one (Patient.birthDate, Encounter.period, "Condition.onset.as(dateTime) |
 * Condition.onset.as(Period)"); ONE_SHORT when also every value is a date, dateTime or
 * instant, whose range spans at most FHIR_SEARCH_DATE_MAX_SPAN_US (a year); SEVERAL when it
 * cannot be proven (repeating elements, a Timing, which gives one value per event, unions of
 * paths, functions other than where, as and ofType). It counts the values the expression
 * selects: for a date each is one index row (a Timing is counted as several for that reason),
 * while a CodeableConcept is one value with an index row per coding. Built-in parameters are
 * answered once and remembered; custom ones (from a snapshot) at each call. Thread-safe.
 */
typedef enum {
    FHIR_SEARCH_VALUES_SEVERAL,
    FHIR_SEARCH_VALUES_ONE,
    FHIR_SEARCH_VALUES_ONE_SHORT,
} fhir_search_values_t;
#define FHIR_SEARCH_DATE_MAX_SPAN_US (366 * 86400 * INT64_C(1000000))
fhir_search_values_t fhir_search_param_values(const fhir_search_param_t *param);

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
 * resolvable components; no expression on a type other than special; an expression that is
 * not valid FHIRPath.
 */
status_t fhir_search_registry_put(fhir_search_registry_t *registry, const json_t *resource,
                                  err_t *err);
/* The rules of fhir_search_registry_put against the current snapshot, changing nothing: ERR_OK
 * when put would succeed (as it is now). */
status_t fhir_search_registry_check(fhir_search_registry_t *registry, const json_t *resource,
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

/* --- the plan ----------------------------------------------------------------------------- */

/*
 * A number with the implicit range of its precision: "100" is [99.5, 100.5), "100.00" is
 * [99.995, 100.005), "1e2" is [50, 150). Bounds are exact decimal text (for a numeric column)
 * and doubles (for a REAL one). With the prefix ap the range is widened by 10% of the value
 * on each side.
 */
typedef struct {
    const char *text; /* as given, without the prefix */
    double value;
    const char *low, *high;
    double low_value, high_value;
} fhir_search_number_t;

typedef enum {
    FHIR_SEARCH_PRECISION_YEAR,
    FHIR_SEARCH_PRECISION_MONTH,
    FHIR_SEARCH_PRECISION_DAY,
    FHIR_SEARCH_PRECISION_MINUTE,
    FHIR_SEARCH_PRECISION_SECOND,
    FHIR_SEARCH_PRECISION_FRACTION,
} fhir_search_precision_t;

typedef struct fhir_search_value fhir_search_value_t;

/*
 * A full-text query (_content, _text): words, "quoted phrases", a trailing * for a prefix,
 * AND (or juxtaposition), OR, and parentheses; OR binds looser than AND, and "and"/"or" are
 * operators in any case. A term keeps the user's text (a driver quotes it, so nothing in it
 * is syntax: `"` and `AND(` are either terms or a parse error, never a query error).
 */
typedef enum {
    FHIR_SEARCH_TEXT_TERM,
    FHIR_SEARCH_TEXT_AND,
    FHIR_SEARCH_TEXT_OR,
} fhir_search_text_kind_t;

typedef struct fhir_search_text fhir_search_text_t;
struct fhir_search_text {
    fhir_search_text_kind_t kind;
    const char *term;                       /* TERM: a word or a phrase, as given */
    bool prefix;                            /* TERM: a word ending in '*' (term without it) */
    const fhir_search_text_t *left, *right; /* AND, OR */
};

#define FHIR_SEARCH_TEXT_MAX_TERMS 64 /* terms one value may have */

/*
 * One value of a parameter: the alternatives of a comma-separated list are values of one
 * clause (OR). Which member of `as` holds it follows from the clause's parameter type and
 * modifier (docs/internals/search.md has the table). Strings are NUL-terminated, escapes
 * removed, in the plan's arena.
 */
struct fhir_search_value {
    const char *text;            /* the value as given, escapes removed */
    fhir_search_prefix_t prefix; /* number, date, quantity (and their composite components) */
    union {
        bool missing; /* :missing */
        struct {
            const char *value;
            const char *normalized; /* lower case, accents removed (fhir_search_normalize) */
        } string;                   /* string; token :text */
        struct {
            const char *system; /* NULL: any system; "": no system ("|code") */
            const char *code;   /* NULL: any code of the system ("system|") */
        } token;                /* token, :not, :above, :below; reference :identifier */
        struct {
            const char *type_system, *type_code, *value;
        } of_type; /* token :of-type ("system|code|value" of an Identifier) */
        struct {
            int64_t low, high; /* [low, high) in microseconds since 1970-01-01T00:00:00Z; for
                                  ap widened by 10% of the distance from now */
            fhir_search_precision_t precision;
            bool utc_assumed; /* a time without a zone, or a date alone: read as UTC */
        } date;
        fhir_search_number_t number;
        struct {
            fhir_search_number_t number;
            const char *system; /* NULL: any */
            const char *code;   /* NULL: any; matches code or unit when system is NULL */
            /* system FHIR_UCUM_SYSTEM and a code the engine converts: the canonical unit
               (fhirpath_ucum_canonical) and the number in it (value and bounds as doubles;
               the texts are the number's); else NULL */
            const char *canonical_code;
            fhir_search_number_t canonical;
        } quantity;
        struct {
            const fhir_type_t *type;       /* NULL: any type (a bare id) */
            const char *id;                /* NULL for a url that is not [base/]Type/id */
            const char *version;           /* "Type/id/_history/version", else NULL */
            const char *url;               /* an absolute url as given (without "|version") */
            const char *canonical_version; /* "url|version", else NULL */
        } reference;
        struct {
            const char *value;
        } uri; /* uri, :above, :below; token :in, :not-in (a ValueSet url) */
        struct {
            fhir_search_value_t *components; /* one per component of the parameter */
            size_t ncomponents;
        } composite;
        const fhir_search_text_t *text; /* _content, _text */
        struct {
            double latitude, longitude;
            bool has_distance;
            fhir_search_number_t distance;
            const char *units; /* NULL when not given */
        } near;                /* Location near */
    } as;
};

typedef enum {
    FHIR_SEARCH_CLAUSE_PARAM, /* a parameter of `type` matches one of `values` */
    FHIR_SEARCH_CLAUSE_CHAIN, /* the reference `param` of `type` points at a resource that
                                 matches one of `next` (one per target type: OR) */
    FHIR_SEARCH_CLAUSE_HAS,   /* a resource of next[0].type refers to this one through its
                                 reference `param` and matches next[0] (_has) */
    FHIR_SEARCH_CLAUSE_LIST,  /* the resource is an entry of one of the Lists in `values` */
} fhir_search_clause_kind_t;

typedef struct fhir_search_clause fhir_search_clause_t;

struct fhir_search_clause {
    fhir_search_clause_kind_t kind;
    const fhir_type_t *type;          /* the resource type tested; NULL in a system search */
    const fhir_search_param_t *param; /* PARAM: the parameter; CHAIN: the reference followed
                                         (on type); HAS: the reference on next[0].type */
    fhir_search_modifier_t modifier;  /* PARAM */
    const fhir_type_t *modifier_type; /* PARAM with FHIR_SEARCH_MOD_TYPE: the ":Type" */
    fhir_search_value_t *values;      /* PARAM, LIST (as.reference): alternatives, OR */
    size_t nvalues;
    fhir_search_clause_t *next; /* CHAIN: one per target type, OR; HAS: exactly one */
    size_t nnext;
    /* PARAM token :in, :not-in, :above, :below: the codes they stand for, filled by the
       caller from stored terminology before a store runs the clause (the parser leaves it
       NULL): a JSON array of [system, code] pairs, ncodes of them */
    const char *codes;
    size_t ncodes;
};

typedef struct {
    const fhir_search_param_t *param; /* _id and _lastUpdated are common parameters */
    bool descending;
} fhir_search_sort_t;

/* What one resource type contributes; the results of a plan are the union of its branches. */
typedef struct {
    const fhir_type_t *type;       /* NULL: every type (system search without _type) */
    fhir_search_clause_t *clauses; /* all must hold (AND) */
    size_t nclauses;
    fhir_search_sort_t *sort; /* keys in order; none: the driver's default order */
    size_t nsort;
} fhir_search_branch_t;

typedef struct {
    bool reverse;                     /* _revinclude */
    bool iterate;                     /* :iterate (or the STU3 name :recurse) */
    const fhir_type_t *source;        /* the type whose reference parameter is followed */
    const fhir_search_param_t *param; /* NULL: every reference parameter of source ("*") */
    const fhir_type_t *target;        /* NULL: any target type */
} fhir_search_include_t;

typedef enum {
    FHIR_SEARCH_SUMMARY_NONE, /* not asked */
    FHIR_SEARCH_SUMMARY_TRUE,
    FHIR_SEARCH_SUMMARY_TEXT,
    FHIR_SEARCH_SUMMARY_DATA,
    FHIR_SEARCH_SUMMARY_COUNT,
    FHIR_SEARCH_SUMMARY_FALSE,
} fhir_search_summary_t;

typedef enum {
    FHIR_SEARCH_TOTAL_NONE_ASKED,
    FHIR_SEARCH_TOTAL_NONE,
    FHIR_SEARCH_TOTAL_ESTIMATE,
    FHIR_SEARCH_TOTAL_ACCURATE,
} fhir_search_total_t;

typedef enum {
    FHIR_SEARCH_CONTAINED_FALSE, /* the default: contained resources are not searched */
    FHIR_SEARCH_CONTAINED_TRUE,
    FHIR_SEARCH_CONTAINED_BOTH,
} fhir_search_contained_t;

typedef enum {
    FHIR_SEARCH_CONTAINED_TYPE_CONTAINER, /* the default */
    FHIR_SEARCH_CONTAINED_TYPE_CONTAINED,
} fhir_search_contained_type_t;

/* A decoded query parameter (base/url.h); neither string needs a NUL. */
typedef url_pair_t fhir_search_pair_t;

/* A parameter left out of a lenient search, for the outcome entry of the Bundle. */
typedef struct {
    const char *name, *value; /* as given (NUL-terminated copies) */
    const char *reason;       /* the message strict handling would have failed with */
} fhir_search_ignored_t;

#define FHIR_SEARCH_DEFAULT_COUNT 50
#define FHIR_SEARCH_MAX_COUNT     1000
#define FHIR_SEARCH_MAX_OFFSET    100000
#define FHIR_SEARCH_MAX_PAIRS     256 /* more parameters than this: ERR_INVALID */
#define FHIR_SEARCH_MAX_CHAIN     4   /* references one parameter may follow (chain and _has) */
#define FHIR_SEARCH_MAX_CLAUSES   256 /* clauses one parameter may expand to */

typedef struct {
    const fhir_search_snapshot_t *snapshot; /* held until the plan's arena is released */
    fhir_search_branch_t *branches;         /* one, or one per _type of a system search */
    size_t nbranches;
    fhir_search_include_t *includes; /* _include and _revinclude in query order */
    size_t nincludes;
    uint32_t count;  /* _count capped at FHIR_SEARCH_MAX_COUNT, else the default */
    uint32_t offset; /* _offset, Concerto's paging parameter: results to skip */
    fhir_search_summary_t summary;
    const char **elements; /* _elements: element names, or NULL */
    size_t nelements;
    fhir_search_total_t total;
    fhir_search_contained_t contained;
    fhir_search_contained_type_t contained_type;
    fhir_search_ignored_t *ignored; /* what a lenient search left out, in query order */
    size_t nignored;
    fhir_search_pair_t *applied; /* the pairs applied, in query order (for the self link) */
    size_t napplied;
} fhir_search_plan_t;

typedef struct {
    const fhir_search_pair_t *pairs; /* GET query or POST form body, decoded */
    size_t npairs;
    bool strict;    /* Prefer: handling=strict: fail on anything unknown or malformed */
    int64_t now_us; /* the time of the request (microseconds since the epoch), for ap */
} fhir_search_query_t;

/*
 * Parses a search of `type` (NULL: a system search, where _type picks the types) into a plan
 * allocated from arena. registry may be NULL (built-in parameters only); otherwise the
 * parser acquires a snapshot and releases it when the arena is released.
 *
 * Lenient (the default): a parameter that is unknown, unsupported or malformed is left out
 * and listed in plan->ignored with the reason; the rest is applied. Strict: any such
 * parameter fails the parse with ERR_INVALID and one issue per parameter, and *out_plan is
 * NULL. More than FHIR_SEARCH_MAX_PAIRS pairs, or a name or value that is not UTF-8, fail in
 * either mode. _format and _pretty are left to the caller (neither applied nor ignored).
 */
status_t fhir_search_parse(fhir_search_registry_t *registry, const fhir_type_t *type,
                           const fhir_search_query_t *query, arena_t *arena,
                           fhir_search_plan_t **out_plan, err_t *err);

/*
 * Appends the canonical query of what the plan applied: "name=value&..." with the applied
 * pairs in order of name (byte order; a repeated name keeps query order), percent-encoded,
 * _count as applied (capped). Ignored parameters are not rendered.
 */
void fhir_search_plan_render(const fhir_search_plan_t *plan, buf_t *out);

/*
 * Appends the form of s used to compare strings in search: Unicode letters of the Latin,
 * Greek and Cyrillic blocks lowered and stripped of accents (e -> e for e with acute, sharp s
 * -> ss, ae ligature -> ae), combining marks dropped, everything else as is. The index
 * writer and the parser use it alike. s must be valid UTF-8.
 */
void fhir_search_normalize(const char *s, size_t len, buf_t *out);

/*
 * A FHIR date, dateTime or instant (YYYY, YYYY-MM, YYYY-MM-DD, or a day with a time of
 * minutes, seconds or a fraction, and Z or an offset) as the range [*low, *high) in
 * microseconds since the epoch that it covers, as a date search reads it: "2026-03" is the
 * whole of March. *precision (may be NULL) says how much was given, *zoned (may be NULL)
 * whether a time came with a zone (without one it is read as UTC). False when s is none.
 */
bool fhir_date_range(const char *s, size_t len, int64_t *low, int64_t *high,
                     fhir_search_precision_t *precision, bool *zoned);

#endif
