/*
 * index.h - search index extraction: what a resource contributes to the index tables.
 *
 * For each search parameter of the resource's type (a registry snapshot decides which), the
 * parameter's FHIRPath expression is evaluated over the resource and every value found
 * becomes an index row of the parameter's kind: strings normalized for matching, tokens as
 * system and code, dates and numbers as ranges, references as target type and id. Pure: no
 * I/O; the rows live in the caller's arena, and a store driver writes them beside the version.
 * Compiled expressions are kept in a process-wide memo (each text compiled once, shared by
 * every thread; compiled expressions are immutable, so evaluation needs no lock).
 * docs/internals/search.md describes the rows of each kind.
 */
#ifndef CONCERTO_FHIR_INDEX_H
#define CONCERTO_FHIR_INDEX_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "fhir/search.h"

/* The index tables: one per kind. OF_TYPE holds the type of Identifiers (token :of-type). */
typedef enum {
    FHIR_INDEX_STRING,
    FHIR_INDEX_TOKEN,
    FHIR_INDEX_DATE,
    FHIR_INDEX_NUMBER,
    FHIR_INDEX_QUANTITY,
    FHIR_INDEX_REFERENCE,
    FHIR_INDEX_URI,
    FHIR_INDEX_COMPOSITE,
    FHIR_INDEX_OF_TYPE,
    FHIR_INDEX_POSITION, /* special parameters (Location near): a latitude and a longitude */
} fhir_index_kind_t;

#define FHIR_INDEX_KIND_COUNT (FHIR_INDEX_POSITION + 1)

/* Open ends of date ranges (a Period without start or end). */
#define FHIR_INDEX_DATE_MIN INT64_MIN
#define FHIR_INDEX_DATE_MAX INT64_MAX

/* Longest string indexed, in bytes (cut at a character boundary); longer ones are indexed by
 * their start, so :exact and :contains do not see past it. */
#define FHIR_INDEX_MAX_STRING 512
/* A canonical UCUM unit's text, with its NUL; the UCUM code system. */
#define FHIR_INDEX_MAX_UCUM 64
#define FHIR_UCUM_SYSTEM    "http://unitsofmeasure.org"
/* Most rows one resource may have, and most rows one composite element may make. */
#define FHIR_INDEX_MAX_ROWS      20000
#define FHIR_INDEX_MAX_COMPOSITE 64

/*
 * The parameter of the row that marks a patient-linked resource naming no Patient: a
 * reference row without a target, added by fhir_index_extract to a resource of a type with
 * patient links (fhir_patient_link_params) none of whose linking references names a Patient
 * (by type, by an absolute url with "Patient/" in it, or by identifier only). The access
 * policy finds such resources by this row rather than by looking at every reference of every
 * resource. No search parameter has this code.
 */
#define FHIR_INDEX_UNLINKED "_unlinked"

typedef struct fhir_index_value fhir_index_value_t;

/* One indexed value. Strings are NUL-terminated, in the extraction's arena; NULL when absent. */
struct fhir_index_value {
    fhir_index_kind_t kind;
    union {
        struct {
            const char *normalized; /* fhir_search_normalize of exact */
            const char *exact;      /* the value as written */
        } string;
        struct {
            const char *system; /* NULL: none */
            const char *code;   /* NULL for a row that only carries text */
            const char *text;   /* normalized display or text, for :text; NULL when none */
        } token;
        struct {
            int64_t low, high; /* [low, high) in microseconds since the epoch, UTC */
        } date;
        struct {
            double low, high; /* [low, high]: equal for a number as written */
        } number;
        struct {
            double low, high; /* [low, high]: equal unless a Range or a comparator */
            const char *system, *code, *unit;
            /* a UCUM quantity (system FHIR_UCUM_SYSTEM, a code the engine knows) also in
               canonical units (fhirpath_ucum_canonical): 5.4 mg is 0.0054 g; else NULL */
            const char *canonical_code;
            double canonical_low, canonical_high;
        } quantity;
        struct {
            const char *type; /* a relative reference "Type/id[/_history/v]": Type, id, v */
            const char *id;
            const char *version;
            const char *url; /* an absolute url, urn or canonical (without "|version") */
            const char *identifier_system; /* Reference.identifier, for :identifier */
            const char *identifier_value;
        } reference;
        struct {
            const char *value;
        } uri;
        struct {
            fhir_index_value_t *components; /* one per component of the parameter, in order */
            size_t ncomponents;
        } composite;
        struct {
            const char *type_system, *type_code; /* a coding of Identifier.type */
            const char *value;                   /* Identifier.value */
        } of_type;
        struct {
            double latitude, longitude; /* decimal degrees (WGS84), as Location.position */
        } position;
    } as;
};

/* A row: the parameter (borrowed from the snapshot's parameter) and the value. */
typedef struct {
    const char *param;
    fhir_index_value_t value;
} fhir_index_row_t;

/* A contained resource (resource.contained[i]) and its own rows, by its own type. */
typedef struct {
    const char *type; /* its resourceType */
    const char *id;   /* its id within the container (without '#') */
    fhir_index_row_t *rows;
    size_t n;
} fhir_index_contained_t;

/*
 * The work row of an open Task (a status that is not final: draft, requested, received,
 * accepted, ready, in-progress, on-hold): what a worklist orders and filters by, kept by the
 * store beside the index rows (docs/internals/store.md, "Task work rows"). References are
 * "Type/id" when relative (a version dropped), else the absolute url as written.
 */
typedef struct {
    const char *patient; /* Task.for when it names a Patient (relative, or an absolute url with
                            "Patient/" in it), else NULL */
    const char *owner;   /* Task.owner.reference; "" for an owner without one; NULL: no owner */
    const char *status;  /* Task.status */
    int priority;        /* task_priority_rank of Task.priority; -1 when absent or unknown */
    int64_t due_us;      /* fhir_task_due, or INT64_MAX without a due time */
    /* an unowned Task's role pools: "system|code" of each coding of performerType (system
       empty when it has none), distinct; none for an owned Task */
    const char **pools;
    size_t npools;
    bool unlinked; /* fhir_index_extract: it has the FHIR_INDEX_UNLINKED row */
} fhir_task_work_t;

/* The work row of a Task (in arena, unlinked left false), or NULL for a closed Task or
 * another type. */
fhir_task_work_t *fhir_index_task_work(const json_t *task, arena_t *arena);

/*
 * The risk row of a RiskAssessment about a Patient that is not withdrawn (its status not
 * entered-in-error or cancelled): what a worklist ranks patients by, kept by the store beside
 * the index rows (docs/internals/store.md, "Risk rows").
 */
typedef struct {
    const char *patient; /* subject: "Patient/id" when relative (a version dropped), else the
                            absolute url as written */
    int64_t when_us;     /* the start of occurrenceDateTime, or INT64_MIN without one */
    double risk;         /* fhir_risk_value, or -1 without one */
} fhir_risk_row_t;

/* A RiskAssessment's risk: prediction[0].probabilityDecimal (clamped to 0..1), or else
 * prediction[0].qualitativeRisk (risk-probability: negligible 0.05, low 0.25, moderate 0.5,
 * high 0.75, certain 1); -1 when it has neither. */
double fhir_risk_value(const json_t *risk_assessment);

/* The risk row of a RiskAssessment (in arena), or NULL for one withdrawn, about no Patient,
 * or another type. */
fhir_risk_row_t *fhir_index_risk_row(const json_t *risk_assessment, arena_t *arena);

/*
 * The member rows of an active CareTeam about a Patient (docs/internals/store.md, "Care team
 * member rows"): one per role coding of each participant with a member reference, what a
 * worklist reads a caller's roles in their patients' teams from.
 */
typedef struct {
    const char *member; /* participant.member.reference, as written */
    const char *role;   /* "system|code" of a coding of participant.role (system empty without
                           one; codings whose system or code holds , | \\ or $ are left out) */
    int64_t from_us, until_us; /* participant.period (fhir_period_bounds) */
} fhir_care_member_t;

typedef struct {
    const char *patient; /* subject: "Patient/id" */
    fhir_care_member_t *v;
    size_t n;
} fhir_care_members_t;

/* The member rows of a CareTeam (in arena), or NULL for one not active, about no Patient, or
 * another type. */
fhir_care_members_t *fhir_index_care_members(const json_t *care_team, arena_t *arena);

typedef struct {
    fhir_index_row_t *rows;
    size_t n, cap;
    size_t nfailed; /* parameters whose expression failed to compile or evaluate: no rows */
    /* the contained resources with an id and a known type, in document order */
    fhir_index_contained_t *contained;
    size_t ncontained;
    /* the container's references to its contained resources ("#id"), reference rows whose
       url is "#id": kept apart from rows, so that searches of top-level resources see none */
    fhir_index_row_t *local_refs;
    size_t nlocal_refs;
    /* full text (_content, _text; fhir_index_text): NULL when there is none */
    const char *content;   /* every string value of the resource, the narrative as text */
    const char *narrative; /* text.div without its markup */
    const fhir_task_work_t *task_work;       /* an open Task's work row, else NULL */
    const fhir_risk_row_t *risk_row;         /* a RiskAssessment's risk row, else NULL */
    const fhir_care_members_t *care_members; /* an active CareTeam's member rows, else NULL */
} fhir_index_rows_t;

/*
 * Extracts the index rows of resource (a parsed, valid resource; borrowed) for every search
 * parameter of its type in snapshot (NULL: the built-in parameters). Rows are in the arena
 * and distinct within a parameter. Each contained resource (with an id and a known type) gets
 * rows of its own, by its own type, in out->contained; the references to them (reference
 * parameters whose value is "#id") are out->local_refs. Contained rows count toward
 * FHIR_INDEX_MAX_ROWS. _id and _lastUpdated are columns of the store, and
 * parameters without an expression (_text, _content, ...) or of type special are not
 * extracted. A parameter whose expression cannot be evaluated over this resource gives no
 * rows and is counted in nfailed: a resource is never refused for its index. A resource
 * naming no patient through its patient links gets the FHIR_INDEX_UNLINKED row; an open Task
 * gets its work row (task_work), a RiskAssessment its risk row (risk_row), an active CareTeam its
 * member rows (care_members). Errors: ERR_INVALID when resource has no known resourceType;
 * ERR_TOO_LARGE past FHIR_INDEX_MAX_ROWS rows.
 */
status_t fhir_index_extract(const fhir_search_snapshot_t *snapshot, json_t *resource,
                            arena_t *arena, fhir_index_rows_t *out, err_t *err);

/*
 * The rows of the parameters codes[0..ncodes) of the resource's type only, of the resource
 * itself (no contained resources, no full text): a quick look at a few values, such as the
 * references that make a resource a member of a compartment. Codes the type does not have
 * give no rows. Errors as fhir_index_extract.
 */
status_t fhir_index_extract_only(const fhir_search_snapshot_t *snapshot, json_t *resource,
                                 const char *const *codes, size_t ncodes, arena_t *arena,
                                 fhir_index_rows_t *out, err_t *err);

/*
 * The full text of a resource (borrowed) into arena: *out_content every string value of it
 * (resourceType left out, text.div as its text), separated by newlines, cut at
 * FHIR_INDEX_MAX_TEXT bytes (at a character boundary); *out_narrative text.div with the
 * XHTML tags taken out (each tag a space) and character references decoded. NULL when empty.
 * fhir_index_extract fills the rows' content and narrative with it.
 */
#define FHIR_INDEX_MAX_TEXT (1024 * 1024)
void fhir_index_text(const json_t *resource, arena_t *arena, const char **out_content,
                     const char **out_narrative);

/* "string", "token", ... (the table's kind). */
const char *fhir_index_kind_name(fhir_index_kind_t kind);

/* The index kind of a parameter type (SPECIAL: POSITION, which near's Location.position
 * fills; -1 for none). */
int fhir_index_kind_of(fhir_search_type_t type);

/*
 * Appends a one-line text form of a row, for tests and diagnostics:
 * `token gender |male`, `date birthdate [1974-12-25T00:00:00Z, 1974-12-26T00:00:00Z)`.
 */
void fhir_index_row_render(const fhir_index_row_t *row, buf_t *out);

#endif
