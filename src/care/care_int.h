/*
 * care_int.h - what the engine's handlers share: reading resources and searching them from a
 * connection or inside a transaction, JSON values released with an arena, and the patient's
 * care coordination team.
 */
#ifndef CONCERTO_CARE_INT_H
#define CONCERTO_CARE_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"
#include "fhir/search.h"
#include "repo/repo.h"
#include "store/store.h"

/* The string member key of o, or NULL. */
const char *care__str(const json_t *o, const char *key);

/* Parses stored JSON text; the value is released with arena. NULL (err set) when it does
 * not parse. */
json_t *care__json_in(arena_t *arena, const char *text, size_t len, err_t *err);

/* Releases value (may be NULL) with arena, and returns it. */
json_t *care__owned(arena_t *arena, json_t *value);

/* Searches type with pairs at now_us: inside txn when it is not NULL, else on conn. */
status_t care__search(store_conn_t *conn, store_txn_t *txn, const char *type,
                      fhir_search_pair_t *pairs, size_t n, int64_t now_us, arena_t *arena,
                      store_search_result_t *out, err_t *err);

/* Every match of search (all its pages), parsed, appended to array; more than max matches:
 * ERR_TOO_LARGE with the message too_many. The plan carries the caller's visibility: what
 * the access policy hides is not read. */
status_t care__gather(store_conn_t *conn, const repo_search_t *search, size_t max,
                      const char *too_many, arena_t *arena, json_t *array, err_t *err);

/* An instant as a search value in UTC after prefix ("ge2026-11-23T05:00:00Z"), in arena. */
const char *care__utc_value(arena_t *arena, const char *prefix, int64_t us);

/* Version `version` (0: the current one) of type/id, parsed in arena's care; *out NULL when
 * it does not exist or is a delete. */
status_t care__read(store_conn_t *conn, const char *type, const char *id, int64_t version,
                    arena_t *arena, json_t **out, err_t *err);

/* The active care coordination team (CareTeam of category LOINC LA28865-6) of patient (a
 * reference "Patient/x"), parsed in arena's care; *out NULL when it has none (or patient is
 * NULL). */
status_t care__coordination_team(store_conn_t *conn, const char *patient, int64_t now_us,
                                 arena_t *arena, json_t **out, err_t *err);

#endif
