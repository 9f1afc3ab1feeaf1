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

#endif
