/*
 * repo.h - FHIR interactions over the store: create, read, vread, update, delete, history.
 *
 * A write happens in two steps so the expensive part runs on the caller's thread: prepare
 * (parse, validate, assign the id, serialize once) and then commit through the store's writer,
 * where only the version check and the insert happen. The stored text is the canonical JSON
 * with meta.versionId, meta.lastUpdated and the version-author extension (author.h) filled in
 * by the server; reads return it as it is.
 */
#ifndef CONCERTO_REPO_REPO_H
#define CONCERTO_REPO_REPO_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"
#include "fhir/index.h"
#include "repo/access.h"
#include "store/store.h"

typedef enum { REPO_CREATE, REPO_UPDATE, REPO_PATCH, REPO_DELETE } repo_action_t;

/*
 * One write. Fill the inputs with repo_prepare_*; the outputs are set when the write is done.
 * Everything it points to lives in the arena given to prepare.
 */
typedef struct {
    /* inputs */
    repo_action_t action;
    const char *type;
    const char *id;
    int64_t if_match; /* required current version, 0: none */
    const char *head; /* serialized resource up to meta's first member */
    size_t head_len;
    const char *tail; /* the rest after versionId, lastUpdated and meta.extension */
    size_t tail_len;
    const char *extensions; /* the resource's meta.extension entries, comma-separated, without
                               the brackets and any version-author entry ("" for none) */
    size_t extensions_len;
    fhir_index_rows_t index; /* the search index rows of the resource (none for a delete) */
    json_t *patch; /* REPO_PATCH: a JSON Patch array or a FHIRPath Patch Parameters resource
                      (released with the arena) */
    arena_t *arena;
    const repo_caller_t *caller; /* who writes (access.h); NULL: the server itself */
    const char *author;          /* the version's author when caller is NULL (concerto import:
                                    "import"); NULL: none recorded */

    /* the patients the caller may write for (repo_access_prepare_write; without it the
       commit works them out on a connection of its own) */
    const store_visibility_t *access;
    bool access_ready;

    /* outputs */
    const char *emergency_patient; /* emergency access reached this Patient (id), else NULL */
    bool created;                  /* a new resource (201) rather than a new version (200) */
    bool noop;              /* delete of something absent or already deleted: nothing written */
    store_version_t result; /* the stored version (json NULL for a delete) */
} repo_write_t;

/*
 * Prepares a create of the resource in body (len bytes) at type. Parses, validates, assigns a
 * new id, serializes, and extracts the search index rows (built-in parameters). Errors: ERR_SYNTAX,
 * ERR_STRUCTURE, ERR_VALUE, ERR_REQUIRED, ERR_CODE_INVALID, ERR_INVALID (resourceType does not
 * match the type), ERR_NOT_FOUND (unknown type).
 */
status_t repo_prepare_create(repo_write_t *write, const char *type, const char *body, size_t len,
                             arena_t *arena, err_t *err);
/* Prepares an update (or create with a client id). The body's id must equal id. */
status_t repo_prepare_update(repo_write_t *write, const char *type, const char *id,
                             const char *body, size_t len, int64_t if_match, arena_t *arena,
                             err_t *err);
/*
 * Prepares a JSON Patch (RFC 6902) of type/id; patch is len bytes of a JSON Patch document,
 * parsed here (ERR_SYNTAX). The patch is applied in the transaction to the version current
 * then, so concurrent patches serialize instead of failing; the result is validated like an
 * update. if_match (0: none) must name that version. Errors of the transaction: as an update,
 * plus ERR_NOT_FOUND and ERR_GONE, ERR_VERSION_CONFLICT (If-Match), ERR_INVALID for a
 * malformed patch or one that changes resourceType or id, ERR_RULE when an operation cannot be
 * applied (a failed test, a path that does not exist).
 */
status_t repo_prepare_patch(repo_write_t *write, const char *type, const char *id,
                            const char *patch, size_t len, int64_t if_match, arena_t *arena,
                            err_t *err);
/*
 * Prepares a FHIRPath Patch (fhir/patch.h) of type/id: parameters (borrowed) is the
 * Parameters resource, checked here (ERR_INVALID naming the operation). Applied in the
 * transaction like a JSON Patch, with the same errors; an operation that cannot be applied
 * (a path matching nothing where one element is needed, an index out of range) is ERR_RULE.
 */
status_t repo_prepare_fhirpath_patch(repo_write_t *write, const char *type, const char *id,
                                     const json_t *parameters, int64_t if_match, arena_t *arena,
                                     err_t *err);
/* The same with the Parameters as JSON text (len bytes), parsed here (ERR_SYNTAX). */
status_t repo_prepare_fhirpath_patch_body(repo_write_t *write, const char *type, const char *id,
                                          const char *body, size_t len, int64_t if_match,
                                          arena_t *arena, err_t *err);
/* Prepares a delete. */
status_t repo_prepare_delete(repo_write_t *write, const char *type, const char *id,
                             int64_t if_match, arena_t *arena, err_t *err);
/*
 * Prepares a create or update from a parsed resource (borrowed); for import and tests. For a
 * create, id NULL assigns a new one.
 */
status_t repo_prepare_resource(repo_write_t *write, repo_action_t action, json_t *resource,
                               const char *id, int64_t if_match, arena_t *arena, err_t *err);

/*
 * Gives a prepared create or update another id (a conditional update settles its id in the
 * transaction): the serialized text follows; the index rows hold no id. For a delete, sets
 * the id.
 */
void repo_write_set_id(repo_write_t *write, const char *id);
/*
 * Serializes a prepared create or update again from resource, keeping its type and id, and
 * extracts its index rows again: after references in the resource were rewritten (a
 * transaction's conditional references). The resource was validated by prepare; a reference
 * rewritten from one string to another keeps it valid.
 */
status_t repo_write_refresh(repo_write_t *write, json_t *resource, err_t *err);

/* The access policy's check of a write inside its transaction (access.c): ERR_FORBIDDEN
 * when write->caller may not make it. */
status_t repo__access_write(store_txn_t *txn, repo_write_t *write, const store_current_t *current,
                            err_t *err);

/* The rules of the record that need the version a write replaces, for every writer (rules.c):
 * a Task's status moves by DOMAIN.md's state machine (ERR_RULE naming the allowed moves), and
 * a caller changing a Task's status or owner must send If-Match (ERR_PRECONDITION_REQUIRED).
 * json is the version about to be stored. */
status_t repo__rules_check(store_txn_t *txn, const repo_write_t *w, const store_current_t *current,
                           const char *json, size_t json_len, err_t *err);

/* The contributions to a shared CarePlan (careplan.c; docs/coordination.md, "Shared care
 * plans"), for a write by a person (staff, admin or patient account; no check for services and
 * the server): new note[] entries get authorReference = the caller and a time, new activity[],
 * goal[] and addresses[] entries the contributor and contributed extensions; an entry stating
 * someone else as its author or contributor is ERR_RULE, and so is changing or removing an
 * entry contributed by someone else. A patient may only add notes and change or withdraw their
 * own (ERR_FORBIDDEN naming the element otherwise; no create or delete). json is the version
 * about to be stored; when *out_changed, w was serialized again with the stamps. */
status_t repo__care_plan_contributions(store_txn_t *txn, repo_write_t *w,
                                       const store_current_t *current, const char *json,
                                       size_t json_len, bool *out_changed, err_t *err);
/*
 * A rule of a resource type that a layer above repo adds (the engine's check of the protocols
 * it runs): called in the write's transaction with the version about to be stored (json,
 * len bytes), after the built-in rules; not for deletes. Returning an error (naming the
 * element) refuses the write.
 */
typedef status_t (*repo_rule_fn)(store_txn_t *txn, const repo_write_t *w, const char *json,
                                 size_t json_len, err_t *err);
/* Adds fn for the writes of type (registered before the store is used; one per type, for the
 * life of the process). Idempotent for the same fn. */
void repo_rules_register(const char *type, repo_rule_fn fn);

/* The store transaction that performs a prepared write (arg is the repo_write_t). */
status_t repo_write_txn(store_txn_t *txn, void *arg, err_t *err);

/* Commits a prepared write and waits until it is durable. */
status_t repo_commit(store_t *store, repo_write_t *write, err_t *err);

/*
 * Reads type/id (version 0: current). ERR_NOT_FOUND when unknown, ERR_GONE when the current
 * (or the asked) version is a delete; out is filled in both cases when the resource existed.
 */
status_t repo_read(store_conn_t *conn, const char *type, const char *id, int64_t version,
                   arena_t *arena, store_version_t *out, err_t *err);

/*
 * repo_read for a caller (access.h; NULL: unrestricted): the scopes must allow reading the
 * type (ERR_FORBIDDEN), and the resource must be visible to the caller, else
 * repo_access_denied's error; with emergency access the patient of the resource is reached
 * and a Flag raised (note->emergency_patient says so; note may be NULL).
 */
status_t repo_read_as(store_conn_t *conn, const repo_caller_t *caller, const char *type,
                      const char *id, int64_t version, arena_t *arena, store_version_t *out,
                      repo_access_note_t *note, err_t *err);

/*
 * repo_read_as inside a transaction (a Bundle's read entry): v is the caller's visibility for
 * reading type, worked out beforehand (repo_access_visibility with SCOPE_R; the scopes are
 * checked then; NULL: nothing hidden); an emergency access raises its Flag inside txn.
 */
status_t repo__access_read_txn(store_txn_t *txn, const repo_caller_t *caller,
                               const store_visibility_t *v, const char *type, const char *id,
                               int64_t version, arena_t *arena, store_version_t *out,
                               repo_access_note_t *note, err_t *err);

/* Whether type/id, which exists, is visible under v (a caller's visibility; NULL: nothing
 * hidden), judged in txn by its current version. */
status_t repo__access_visible_txn(store_txn_t *txn, const store_visibility_t *v, const char *type,
                                  const char *id, arena_t *arena, bool *out_visible, err_t *err);

/*
 * History for a caller: an instance's is checked like a read (of its current version), a
 * type's and the system's hold only versions of resources the caller may see (totals too).
 */
status_t repo_history(store_conn_t *conn, const repo_caller_t *caller,
                      const store_history_query_t *query, arena_t *arena, store_history_t *out,
                      repo_access_note_t *note, err_t *err);

/* Works out which patients write->caller may write for (before repo_commit, on a connection of
 * the caller's thread). */
status_t repo_access_prepare_write(store_conn_t *conn, repo_write_t *write, err_t *err);

/* A search: GET [type]?..., POST [type]/_search, GET ?_type=... or GET Patient/123/[type]. */
typedef struct {
    const fhir_type_t *type;         /* NULL: a search of every type (_type picks some) */
    const fhir_search_pair_t *pairs; /* the decoded query or form, without _page */
    size_t npairs;
    bool strict;                  /* Prefer: handling=strict */
    int64_t now_us;               /* the time of the request */
    const char *base;             /* the server's base url, for absolute references to itself */
    const char *page;             /* the paging cursor of a next or previous link, or NULL */
    const char *compartment_type; /* a compartment search: "Patient" ... or NULL */
    const char *compartment_id;
    const repo_caller_t *caller; /* who searches (access.h); NULL: the server itself */
    repo_access_note_t *note;    /* output (may be NULL): emergency access used */
} repo_search_t;

/*
 * Parses and runs a search. *out_plan is the plan (in arena: its ignored and applied pairs
 * make the outcome entry and the self link); *out the page. Token :in, :not-in, :above and
 * :below are resolved against the terminology stored on the server (terminology.c).
 * Parameters the store cannot run (terminology that is not on the server, _filter, functional
 * lists) are ignored in a lenient search and refused in a strict one. Errors: ERR_INVALID (a
 * strict search with problems, terminology a search cannot use, a malformed cursor, a type
 * that is not in the compartment), storage errors. conn may read from a replica
 * (store_connect_replica); the search parameters are looked up again on its primary.
 */
status_t repo_search(store_conn_t *conn, const repo_search_t *search, arena_t *arena,
                     fhir_search_plan_t **out_plan, store_search_result_t *out, err_t *err);

/*
 * The first half of repo_search: the plan and the store query, without running it (a Bundle
 * plans its searches before its transaction and runs them inside with store_txn_search). The
 * query points into search and arena. Terminology modifiers are resolved through conn (the
 * terminology stored when planned), or unsupported when conn is NULL.
 */
status_t repo_search_plan(store_conn_t *conn, const repo_search_t *search, arena_t *arena,
                          fhir_search_plan_t **out_plan, store_search_t *out_query, err_t *err);

/* The visibility of a planned search for its caller (access.c): scopes checked on every type
 * searched (ERR_FORBIDDEN), emergency access applied. *out NULL: nothing hidden. */
status_t repo__access_search(store_conn_t *conn, const repo_search_t *search,
                             const fhir_search_plan_t *plan, arena_t *arena,
                             const store_visibility_t **out, err_t *err);

/* Patient/[id]/$everything and Patient/$everything. */
typedef struct {
    const char *patient_id;      /* NULL: every patient's (type-level) */
    int64_t since_us;            /* _since: only resources updated at or after; 0: all */
    const char *types;           /* _type: comma-separated resource types, or NULL */
    const char *count;           /* _count as given, or NULL: FHIR_SEARCH_DEFAULT_COUNT */
    const char *page;            /* the cursor of a next link, or NULL */
    const repo_caller_t *caller; /* who asks (access.h); NULL: the server itself */
    repo_access_note_t *note;    /* output (may be NULL): emergency access used */
} repo_everything_t;

/* The same for $everything: an instance's patient must be in the caller's reach (else like a
 * read), a type-level one holds the visible patients' records only. */
status_t repo__access_everything(store_conn_t *conn, const repo_everything_t *query, arena_t *arena,
                                 const store_visibility_t **out, err_t *err);

/* Types of the resources that Patient compartment members refer to which $everything
 * includes: Practitioner, PractitionerRole, Organization, Location, Medication, Device,
 * Substance. */
extern const char *const repo_everything_referenced[];
extern const size_t repo_everything_referenced_count;

/*
 * One page of $everything: the patient's Patient compartment (the patient, and the resources
 * that refer to it through the parameters of the R4 CompartmentDefinition, as the compartment
 * search Patient/[id]/[type] finds them) and the resources of repo_everything_referenced
 * they refer to, each once, in the order they were first created, paged by a keyset cursor.
 * Errors: ERR_NOT_FOUND for an unknown patient, ERR_GONE for a deleted one, ERR_INVALID for a
 * bad _type, _count or cursor; storage errors.
 */
status_t repo_everything(store_conn_t *conn, const repo_everything_t *query, arena_t *arena,
                         store_search_result_t *out, err_t *err);

/* Called after each batch of a reindex: resources done so far, of about total. Returning
 * false stops the reindex there (it returns ERR_OK with what was done). */
typedef bool (*repo_progress_fn)(void *arg, int64_t done, int64_t total);

/*
 * Rebuilds the search index rows of every current resource (after the search parameters
 * changed, or a database from before the index tables): reads them in batches, extracts on
 * the calling thread (with the search parameters of repo_params) and replaces the rows
 * through the writer. A resource written meanwhile keeps the rows its own write gave it.
 * *out_count: resources reindexed.
 */
status_t repo_reindex(store_t *store, repo_progress_fn progress, void *arg, int64_t *out_count,
                      err_t *err);
/* repo_reindex of the resources of the given types only (ntypes 0: every type). */
status_t repo_reindex_types(store_t *store, const char *const *types, size_t ntypes,
                            repo_progress_fn progress, void *arg, int64_t *out_count, err_t *err);
/*
 * Part of a reindex of one type (NULL: every type): the resources with a rid above *after, in
 * rid order, batch by batch until the monotonic clock passes deadline_us (0: to the end).
 * *after becomes the last rid done, *out_count how many were, *out_finished whether the end
 * was reached.
 */
status_t repo_reindex_part(store_t *store, const char *type, int64_t *after, int64_t deadline_us,
                           int64_t *out_count, bool *out_finished, err_t *err);

/*
 * --- custom search parameters (params.c) ---
 *
 * The search parameters of the database a process works on: the built-in R4 ones plus the
 * SearchParameter resources stored in it whose status is active or draft. There is one set
 * per process, loaded by repo_params_open when a command opens its store (serve, import,
 * reindex); every prepare (index extraction), search and reindex uses it. Without
 * repo_params_open (unit tests) they are the built-in parameters only.
 *
 * A write of a SearchParameter (create, update, patch, delete, in a Bundle or not) is checked
 * in its transaction with the registry's rules (fhir_search_registry_check; ERR_RULE, nothing
 * written) and, when what indexing depends on changes, schedules in the same transaction a
 * "reindex" job (worker.h) for each resource type of its bases (old and new; "*" for
 * Resource): whichever process's worker takes it rebuilds those types' index rows, a part at
 * a time, resuming where a stopped one left off. Once the write is durable this process's
 * registry is updated, so its next search and index extraction use it; other processes on the
 * same database catch up through repo_params_refresh (their worker calls it every second, and
 * a search naming a parameter they do not know calls it first). Until the reindex has reached
 * a resource, a search by the parameter does not see it (or sees it through the rows of the
 * previous expression): resources written after the change are indexed by their own write.
 */
status_t repo_params_open(store_t *store, err_t *err);
/* Forgets the custom parameters. Call before store_close. */
void repo_params_close(void);
/* Applies the SearchParameter changes written since the last look (by any process) to the
 * registry. *out_changed (may be NULL): whether there were any. */
status_t repo_params_refresh(store_conn_t *conn, bool *out_changed, err_t *err);
/* The registry (NULL before repo_params_open: the built-in parameters). Borrowed. */
fhir_search_registry_t *repo_params_registry(void);
/* A snapshot of it, to release with fhir_search_snapshot_release. */
const fhir_search_snapshot_t *repo_params_acquire(void);
/* Called by repo_write_txn for a SearchParameter write before it is stored (json NULL for a
 * delete): checks it and asks for the registry update on commit. */
status_t repo__params_write(store_txn_t *txn, const char *id, const char *json, size_t json_len,
                            arena_t *arena, err_t *err);

/* Terminology (terminology.c): the codes a search may test for one clause, and how deep
 * ValueSets may include ValueSets. */
#define REPO_TERMINOLOGY_MAX_CODES     10000
#define REPO_TERMINOLOGY_MAX_DEPTH     8
#define REPO_TERMINOLOGY_MAX_RESOURCES 256 /* ValueSets and CodeSystems read per clause */
/*
 * Resolves the token :in, :not-in, :above and :below of a clause (and of the clauses of its
 * chain or _has) against the ValueSets and CodeSystems stored on this server: sets
 * clause->codes. When a ValueSet, a CodeSystem or the system of an :above or :below value is
 * not on the server, *out_missing says which (in arena) and the clause is left unresolved.
 * Errors: ERR_INVALID for terminology a search cannot use (a filter it cannot compute, more
 * than REPO_TERMINOLOGY_MAX_CODES codes, ValueSets nested deeper than
 * REPO_TERMINOLOGY_MAX_DEPTH, more than REPO_TERMINOLOGY_MAX_RESOURCES ValueSets and
 * CodeSystems read), storage errors.
 */
status_t repo__terminology_resolve(store_conn_t *conn, fhir_search_clause_t *clause, arena_t *arena,
                                   const char **out_missing, err_t *err);

/*
 * --- the audit trail (audit.c) ---
 *
 * Every write with a caller (repo_write_t.caller, or the Bundle's) adds one audit row in its
 * own transaction (store_txn_audit_add): rolled back with it, durable with it. Writes of the
 * server itself (a NULL caller: the worker, import) are not recorded. Reads are recorded by
 * the HTTP layer through src/auth's queue (auth/audit.h).
 */

/* The Patient a resource belongs to: its own id for a Patient, else the target of the first
 * reference row (in index) of a parameter through which its type is in the Patient
 * compartment (fhir/compartment.h); NULL when none. Borrowed from id or index. */
const char *repo_patient_of(const char *type, const char *id, const fhir_index_rows_t *index);
/* The same from the resource's JSON text (len bytes): extracts the compartment's reference
 * parameters only. The result is in arena; NULL when none (or json is not a resource). */
const char *repo_patient_of_json(const char *type, const char *id, const char *json, size_t len,
                                 arena_t *arena);
/* Fills the who of an audit row from caller (user, role, client, source, detail = the
 * emergency reason), the rest zero; all zero for a NULL caller. Borrows from caller. */
void repo_audit_row(const repo_caller_t *caller, store_audit_row_t *row);
/* Called by repo_write_txn after a write by a caller is stored: adds its audit row. */
status_t repo__audit_write(store_txn_t *txn, const repo_write_t *w, const char *patient,
                           err_t *err);

/* True when s (len bytes) is a valid FHIR id: [A-Za-z0-9-.]{1,64}. */
bool repo_id_valid(const char *s, size_t len);
/* A new server-assigned id (time-ordered, 36 characters) in the arena. */
char *repo_new_id(arena_t *arena);

#endif
