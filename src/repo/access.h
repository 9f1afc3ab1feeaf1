/*
 * access.h - who is asking: the caller of a FHIR interaction, as the access policy and the
 * audit trail see them (docs/security.md).
 *
 * The HTTP layer builds a caller from the access token of each request (its account, the
 * client, the granted scopes and the launch context) and hands it to every repo call that
 * touches health data: reads, writes, searches, history, $everything and each entry of a
 * Bundle. A NULL caller is the server itself (the worker, import, the CLI): it is not
 * restricted.
 */
#ifndef CONCERTO_REPO_ACCESS_H
#define CONCERTO_REPO_ACCESS_H

#include <stdbool.h>
#include <stdint.h>

#include "repo/scope.h"

typedef enum {
    REPO_CALLER_STAFF,   /* a staff account (coordinator, nurse, physician, pharmacist,
                            social-worker, community-health-worker): the patients of the active
                            CareTeams that include them or their organization */
    REPO_CALLER_ADMIN,   /* an admin account: manages accounts, care teams and definitions;
                            clinical data only through the staff rule */
    REPO_CALLER_PATIENT, /* a patient account: their own compartment, and what it refers to */
    REPO_CALLER_SERVICE, /* a service account, or a backend client of its own
                            (client_credentials): what its system/ scopes allow */
} repo_caller_kind_t;

typedef struct {
    repo_caller_kind_t kind;
    const char *account_id;           /* NULL: a client acting for itself */
    const char *username;             /* the account's, or NULL */
    const char *role;                 /* the account's role ("nurse", "patient", ...), or NULL */
    const char *practitioner_id;      /* staff: their Practitioner, or NULL */
    const char *practitioner_role_id; /* staff: their PractitionerRole, or NULL */
    const char *patient_id;           /* a patient account: their Patient */
    const char *client_id;            /* the OAuth client the request came through */
    const char *launch_patient;       /* the token's patient context (launch/patient), or NULL */
    const scope_set_t *scopes;        /* what the token grants */
    const char *emergency_reason;     /* the reason an emergency ("break-glass") request states,
                                         or NULL */
    const char *source;               /* the address the request came from */
} repo_caller_t;

/* ---- the access policy (access.c; docs/security.md, "Access policy") ---------------------- */

#include "base/arena.h"
#include "base/err.h"
#include "store/store.h"

/* What the policy did for a request, for the audit trail: set by the calls that take one. */
typedef struct {
    const char *emergency_patient; /* emergency access reached this Patient (id), else NULL */
} repo_access_note_t;

/*
 * The Patients whose records the caller's account reaches (user context): every one for a
 * service and the NULL caller (*out_all), a patient account's own, and for staff and admins
 * the subjects of the active CareTeams whose participant is their Practitioner, one of their
 * PractitionerRoles or the organization of one of those. Cached per account for a second;
 * a CareTeam or PractitionerRole written by this process empties the cache. Strings in arena.
 */
status_t repo_access_patients(store_conn_t *conn, const repo_caller_t *caller, arena_t *arena,
                              const char *const **out, size_t *out_n, bool *out_all, err_t *err);

/*
 * What `caller` may see with the interaction (SCOPE_R, SCOPE_S, ...) on resources of `type`
 * (NULL: a search of several types, whose includes may be of any type): *out is NULL when
 * nothing is hidden (the NULL caller, a service), else a visibility for the store (in arena).
 * emergency_patient (may be NULL) is a Patient the request names that an emergency access
 * adds (access.c decides when it applies). ERR_FORBIDDEN, naming the scope that would allow
 * it, when the token's scopes do not allow the interaction on the type.
 */
status_t repo_access_visibility(store_conn_t *conn, const repo_caller_t *caller, const char *type,
                                unsigned interaction, const char *base,
                                const char *emergency_patient, arena_t *arena,
                                const store_visibility_t **out, err_t *err);

/* ERR_FORBIDDEN when the caller's scopes do not allow the interaction on type. */
status_t repo_access_scope(const repo_caller_t *caller, const char *type, unsigned interaction,
                           err_t *err);

/*
 * The denial of a resource the caller may not see, read by id: ERR_NOT_FOUND for a patient
 * (as if absent), ERR_FORBIDDEN for staff and admins (outside their care teams; an emergency
 * access reason may be stated).
 */
status_t repo_access_denied(const repo_caller_t *caller, const char *type, const char *id,
                            err_t *err);

/* Whether the caller may use emergency access (a reason stated, staff or admin). */
bool repo_access_emergency(const repo_caller_t *caller);

/* Raises the review Flag of an emergency access to patient_id by caller (once per account,
 * patient and day: a conditional create) inside txn. */
status_t repo_access_flag_txn(store_txn_t *txn, const repo_caller_t *caller, const char *patient_id,
                              arena_t *arena, err_t *err);
/* The same in a transaction of its own. */
status_t repo_access_flag(store_t *store, const repo_caller_t *caller, const char *patient_id,
                          err_t *err);

/* Empties the cache of repo_access_patients (a CareTeam or PractitionerRole was written). */
void repo_access_invalidate(void);

/* The (type, reference parameter) pairs that link a resource to a patient (static). */
void repo_access_members(const char *const **types, const char *const **params, size_t *n);

#endif
