/*
 * transitions.h - what the engine does itself around a hospital stay, beside the protocols
 * that the named events start (docs/transitions.md):
 *
 * - Undo. When an Encounter becomes cancelled (the admission was cancelled, HL7 A11), the
 *   open Tasks and active CommunicationRequests the engine's protocols made for it (focus, or
 *   about, that Encounter; identifier system urn:concerto:protocol-action) are cancelled (a
 *   CommunicationRequest revoked), and its readmission Flag is marked entered-in-error. When
 *   it goes from finished back to in-progress (the discharge was cancelled, A13), those made
 *   from the discharge (from the versions since it became finished) are cancelled. The Task's
 *   statusReason.text says why. A later discharge makes new ones (their key holds the
 *   Encounter's version).
 * - Readmission. When an Encounter is admitted (encounter-admitted), or a stay is discharged
 *   (a stay whose admission never came: the feed sent the discharge only), and the patient had
 *   an inpatient, observation or short stay Encounter (class IMP, ACUTE, NONAC, OBSENC, SS)
 *   finished within the 30 days before its period.start, the engine writes an active Flag on
 *   the patient (SNOMED CT 417005 Hospital re-admission; identifier
 *   urn:concerto:readmission|Encounter/<new id>; encounter the new one; extension
 *   EXT/readmission valueReference the earlier one) and marks the new Encounter with the same
 *   extension.
 *
 * Both are idempotent: a handler run again finds the work done and does nothing.
 */
#ifndef CONCERTO_CARE_TRANSITIONS_H
#define CONCERTO_CARE_TRANSITIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"
#include "care/triggers.h"
#include "store/store.h"

#define CARE_READMISSION_SYSTEM "urn:concerto:readmission"
#define CARE_READMISSION_CODE   "417005" /* SNOMED CT Hospital re-admission */
#define CARE_READMISSION_DAYS   30

/*
 * Whether the named event trigger of Encounter/id at version still stands, so that the
 * protocols may act on it (events of one resource may be handled in either order): an
 * admission or emergency visit stands unless a later version is cancelled or
 * entered-in-error; a discharge while every later version is still finished. Looks at up to
 * 64 later versions (beyond that it stands).
 */
status_t care_encounter_event_stands(store_conn_t *conn, const char *id, int64_t version,
                                     care_trigger_t trigger, arena_t *arena, bool *out, err_t *err);

/* Registers the Encounter handler with the worker (engine_init calls it). */
void care_transitions_register(void);

/* The handler of Encounter changes (registered by care_transitions_register). */
status_t care_on_encounter(store_t *store, const store_event_t *event, void *arg, err_t *err);

#endif
