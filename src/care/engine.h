/*
 * engine.h - the coordination engine: handlers of the outbox's change events (repo/worker.h)
 * that act on the record through repo as the engine's own service identity, so that each of
 * its actions is a new version with an audit record naming it.
 *
 * It hands a patient's open Tasks over when the primary coordinator of their care
 * coordination team changes, and marks, escalates and notifies about Tasks (overdue.h;
 * docs/coordination.md).
 */
#ifndef CONCERTO_CARE_ENGINE_H
#define CONCERTO_CARE_ENGINE_H

#include "base/err.h"
#include "repo/access.h"
#include "store/store.h"

/* The client id and user name the engine's writes carry in the audit trail. */
#define CARE_ENGINE_NAME "concerto-engine"

/* Registers the engine's handlers with the work queue worker (before repo_worker_start or
 * repo_worker_drain). Idempotent. */
void care_engine_register(void);

/* The engine's caller: a service allowed every interaction on every type. */
const repo_caller_t *care_engine_caller(void);

/*
 * The handler of a CareTeam's change event (registered by care_engine_register; public for
 * tests): when it changed the primary coordinator of an active care coordination team from
 * one member to another, every open Task of the team's patient that the old coordinator owns
 * goes to the new one, with a note saying why, in one transaction. Handling it again changes
 * nothing more.
 */
status_t care_on_care_team(store_t *store, const store_event_t *event, void *arg, err_t *err);

#endif
