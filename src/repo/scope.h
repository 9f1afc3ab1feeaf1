/*
 * scope.h - SMART on FHIR scopes (SMART App Launch 1.0 and 2.0): what an access token allows.
 *
 * A scope string is space-separated tokens. Resource scopes are context/Type.permissions:
 * context patient, user or system; Type a FHIR R4 resource type or *; permissions in v2 syntax
 * (c create, r read, u update, d delete, s search, in that order: "rs", "cruds") or v1 syntax
 * (read = rs, write = cud, * = cruds). v2 scopes may carry a query that restricts them
 * (patient/Observation.rs?category=laboratory); it is parsed and kept, and a scope with one
 * grants only SCOPE_RESTRICTED until the access policy learns to apply it (tokens are not
 * issued with one: scope_query_unsupported). The other tokens
 * known here are openid, fhirUser, profile, launch, launch/patient, launch/encounter,
 * offline_access and online_access; anything else is kept as unknown, for the caller to report
 * or drop (OAuth lets a server grant fewer scopes than asked for).
 */
#ifndef CONCERTO_REPO_SCOPE_H
#define CONCERTO_REPO_SCOPE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/url.h"

typedef enum { SCOPE_PATIENT, SCOPE_USER, SCOPE_SYSTEM } scope_context_t;

/* Interactions, as bits: SCOPE_R | SCOPE_S is "rs". */
enum {
    SCOPE_C = 1 << 0,
    SCOPE_R = 1 << 1,
    SCOPE_U = 1 << 2,
    SCOPE_D = 1 << 3,
    SCOPE_S = 1 << 4,
    SCOPE_CRUDS = 0x1f,
};

/* The tokens that are not resource scopes, as bits of scope_set_t.flags. */
enum {
    SCOPE_OPENID = 1 << 0,
    SCOPE_FHIR_USER = 1 << 1,
    SCOPE_PROFILE = 1 << 2,
    SCOPE_LAUNCH = 1 << 3,
    SCOPE_LAUNCH_PATIENT = 1 << 4,
    SCOPE_LAUNCH_ENCOUNTER = 1 << 5,
    SCOPE_OFFLINE_ACCESS = 1 << 6,
    SCOPE_ONLINE_ACCESS = 1 << 7,
};

/* One resource scope. Strings live in the arena of the parse. */
typedef struct {
    const char *text; /* as written; NULL for a scope made by scope_intersect */
    scope_context_t context;
    const char *type;   /* a resource type, or "*" */
    unsigned perms;     /* SCOPE_C | ... */
    bool v1;            /* written as .read, .write or .* */
    const char *query;  /* the restriction as written after '?', or NULL */
    url_pair_t *params; /* the restriction decoded, nparams pairs */
    size_t nparams;
} scope_resource_t;

typedef struct {
    unsigned flags; /* SCOPE_OPENID | ... */
    scope_resource_t *resources;
    size_t nresources;
    const char **unknown; /* tokens not understood or malformed, as written */
    size_t nunknown;
} scope_set_t;

/* Parses text (len bytes) into *out; everything is allocated in arena. Never fails: what it
 * cannot read goes to out->unknown. */
void scope_parse(arena_t *arena, const char *text, size_t len, scope_set_t *out);

typedef enum {
    SCOPE_DENIED,
    SCOPE_RESTRICTED, /* only scopes with a query allow it: only the resources they select */
    SCOPE_PERMITTED,
} scope_grant_t;

/*
 * Whether the set allows every interaction in the interactions bits on resources of type in
 * context. Contexts do not stand in for each other: user/ scopes do not answer for patient/.
 */
scope_grant_t scope_allows(const scope_set_t *set, scope_context_t context, const char *type,
                           unsigned interactions);

/*
 * What a token gets when a client asks for requested and is registered for allowed: the flags
 * both have, and for each requested resource scope its overlap with each allowed one of the
 * same context (every type with rs asked, patient/Observation.cruds allowed: patient/Observation.rs
 * granted); restrictions of both are kept. Unknown requested tokens are copied
 * to out->unknown and granted nothing.
 */
void scope_intersect(arena_t *arena, const scope_set_t *requested, const scope_set_t *allowed,
                     scope_set_t *out);

/*
 * Appends the set as a scope string: the flags, then the resource scopes (as written when
 * they were granted unchanged, else in v2 syntax), separated by spaces; unknown tokens are
 * left out.
 */
void scope_format(const scope_set_t *set, buf_t *out);

/*
 * The first resource scope of requested, else of granted (either may be NULL), that carries a
 * query (patient/Observation.rs?category=laboratory), as written or rendered, in arena; NULL
 * when none does. The server does not apply such scopes: the authorization and token
 * endpoints refuse them with invalid_scope naming this one.
 */
const char *scope_query_unsupported(arena_t *arena, const scope_set_t *requested,
                                    const scope_set_t *granted);

#endif
