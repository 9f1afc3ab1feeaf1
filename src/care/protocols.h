/*
 * protocols.h - the engine's protocol runner: finds the active protocols (protocol.h) whose
 * actions an event triggers, evaluates their conditions, and makes what they ask for (Tasks,
 * CommunicationRequests, Flags, and the patient's CarePlan of the protocol) in one
 * transaction through repo; PlanDefinition/$apply; and the checks of protocols when they are
 * written. Every resource it makes carries an identifier derived from the protocol, the
 * action and the event's resource version (protocol.h, care_action_key), checked inside the
 * transaction, so an event handled twice or after a crash makes nothing more.
 */
#ifndef CONCERTO_CARE_PROTOCOLS_H
#define CONCERTO_CARE_PROTOCOLS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "care/ext.h"
#include "care/protocol.h"
#include "care/triggers.h"
#include "repo/access.h"
#include "store/store.h"

/* Registers the change handler (for every type) and the write checks of PlanDefinition and
 * ActivityDefinition (repo_rules_register). Called by care_engine_register. */
void care_protocols_register(void);

/*
 * Runs the actions of every active protocol triggered by trigger on version `version` of
 * type/id (as of time_us, the event's time): for task-completed of a Task a protocol made,
 * also the actions whose relatedAction (after-end) names the action that made it. What the
 * actions make is written in one transaction as the engine. Nothing happens for a resource
 * without a patient. Errors: an action naming an ActivityDefinition that is not there or
 * cannot run, a condition that fails to evaluate (ERR_RULE, ERR_INVALID; the event is
 * retried and goes dead where an admin sees it), ERR_CONFLICT when what it makes appeared
 * meanwhile (a retry makes nothing more), storage errors.
 */
status_t care_protocols_fire(store_t *store, care_trigger_t trigger, const char *type,
                             const char *id, int64_t version, int64_t time_us, err_t *err);

/* The protocol PlanDefinition/plan_id as it is now, compiled (held until arena is
 * released); *out NULL when it is not there, not active or not a workflow-definition. */
status_t care_protocols_get(store_conn_t *conn, const char *plan_id, int64_t now_us, arena_t *arena,
                            const care_protocol_t **out, err_t *err);

/* The active protocols (at most 200) with an action on the scheduled trigger, compiled (in
 * arena, held until it is released). */
status_t care_protocols_scheduled(store_conn_t *conn, int64_t now_us, arena_t *arena,
                                  const care_protocol_t ***out, size_t *out_n, err_t *err);

/*
 * Runs one occurrence of the scheduled action a of p for Patient/patient_id: the event is the
 * Patient at time_us (the occurrence's time: authoredOn, the start of the due offset), its
 * conditions evaluated with the Patient as context and %patient, and what it makes carries
 * the identifier "<plan id>/<action id>/Patient/<id>/_occurrence/<occurrence>"; written in
 * one transaction with the patient's CarePlan, as care_protocols_fire does, so a run again
 * makes nothing more. *out_made (may be NULL): resources written. A patient who is gone
 * makes nothing. Errors: as care_protocols_fire's.
 */
status_t care_protocols_fire_occurrence(store_t *store, const care_protocol_t *p,
                                        const care_action_t *a, const char *patient_id,
                                        int64_t time_us, const char *occurrence, size_t *out_made,
                                        err_t *err);

/* The outbox handler of every type's change events (public for tests): works out the named
 * events of the change (care_triggers_of) and fires each. */
status_t care_on_change(store_t *store, const store_event_t *event, void *arg, err_t *err);

/* PlanDefinition/[id]/$apply. */
typedef struct {
    const char *plan_id;
    const char *subject; /* "Patient/x" */
    bool dry_run;
    const repo_caller_t *caller; /* who applies: their writes, their access */
    int64_t now_us;
} care_apply_t;

/*
 * Runs the plan's entry actions (those without a relatedAction) for the subject as if
 * triggered now, conditions evaluated with the Patient as context, and writes into out the
 * CarePlan (made or updated, with what was made) or, with dry_run, a collection Bundle of
 * the CarePlan and what would be made (nothing written). conn reads the primary. Errors:
 * ERR_INVALID (subject not Patient/id), ERR_NOT_FOUND (plan or patient unknown, or not
 * visible to a patient caller), ERR_FORBIDDEN (a patient caller; staff outside the patient's
 * care teams), ERR_RULE (plan not active, not a protocol, or cannot run), storage errors.
 */
status_t care_protocols_apply(store_t *store, store_conn_t *conn, const care_apply_t *apply,
                              arena_t *arena, buf_t *out, err_t *err);

#endif
