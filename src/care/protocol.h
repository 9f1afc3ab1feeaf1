/*
 * protocol.h - protocols of the coordination engine: a PlanDefinition (workflow-definition)
 * and the ActivityDefinitions its actions name, compiled once into an in-memory form
 * (triggers, FHIRPath conditions, due offsets, roles, the after-end edges between actions),
 * and the pure step that turns one action, an event and a patient into the Task,
 * CommunicationRequest or Flag it makes. No I/O: the engine (engine.h, care_protocols_fire)
 * reads and writes the record. The format is docs/protocols.md's.
 *
 * A compiled protocol is immutable, so threads share it freely.
 */
#ifndef CONCERTO_CARE_PROTOCOL_H
#define CONCERTO_CARE_PROTOCOL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/calendar.h"
#include "base/err.h"
#include "care/ext.h"
#include "care/recurrence.h"
#include "care/triggers.h"
#include "fhir/fhirpath.h"

#define CARE_PLAN_TYPE_SYSTEM        "http://terminology.hl7.org/CodeSystem/plan-definition-type"
#define CARE_PLAN_TYPE_WORKFLOW      "workflow-definition"
#define CARE_PROTOCOL_MAX_ACTIONS    64
#define CARE_PROTOCOL_MAX_CONDITIONS 16
#define CARE_ACTIVITY_MAX_ROLES      4 /* participant roles after the first (fallbacks) */

typedef enum { CARE_KIND_TASK, CARE_KIND_COMMUNICATION_REQUEST } care_kind_t;

/* An ActivityDefinition, compiled. Strings and JSON are the protocol's. */
typedef struct {
    const char *id;        /* its resource id */
    const char *canonical; /* url|version (url alone when it has no version) */
    care_kind_t kind;
    const json_t *code;      /* CodeableConcept or NULL */
    const char *description; /* or NULL */
    const char *priority;    /* or NULL */
    const json_t *role;      /* participant[0].role (CodeableConcept) or NULL */
    const char *role_code;   /* its SNOMED CT code, or NULL */
    const json_t *fallback_roles[CARE_ACTIVITY_MAX_ROLES]; /* participant[1..].role, in turn */
    const char *fallback_codes[CARE_ACTIVITY_MAX_ROLES];   /* their SNOMED CT codes */
    size_t nfallbacks;
    const char *questionnaire; /* EXT/questionnaire (a canonical), or NULL */
    bool has_due;              /* EXT/due given */
    calendar_duration_t due;   /* the offset */
    fhirpath_t *due_from;      /* EXT/due-from, or NULL: from the event's time */
} care_activity_t;

/* One PlanDefinition.action. */
typedef struct {
    const char *id;
    const char *title; /* or NULL */
    unsigned triggers; /* bits 1 << care_trigger_t */
    fhirpath_t *conditions[CARE_PROTOCOL_MAX_CONDITIONS];
    size_t nconditions;
    const char *definition;          /* definitionCanonical as written, or NULL */
    const care_activity_t *activity; /* what it names; NULL when not given or not resolved */
    int after;                       /* the index of the action it follows (after-end), -1 */
    const json_t *flag;              /* EXT/flag: the Flag.code to raise, or NULL */
    care_recurrence_t every;         /* with the scheduled trigger: its timingTiming */
} care_action_t;

typedef struct {
    arena_t arena;               /* everything below */
    json_t *source;              /* the PlanDefinition (owned) */
    const char *id, *version_id; /* the resource's id and meta.versionId */
    const char *url, *title;
    care_action_t actions[CARE_PROTOCOL_MAX_ACTIONS];
    size_t nactions;
    care_activity_t *activities;
    size_t nactivities;
    json_t **activity_sources; /* the ActivityDefinitions (owned) */
} care_protocol_t;

/* Compile flags. */
#define CARE_PROTOCOL_UNRESOLVED                               \
    1u /* a definitionCanonical naming none of `activities` is \
          left unresolved (a write check) instead of an error */

/*
 * Compiles plan (borrowed; a PlanDefinition) with the ActivityDefinitions activities[0..n)
 * (borrowed; those its actions name, others are ignored) into a new protocol (free with
 * care_protocol_free). Errors (ERR_RULE, or ERR_REQUIRED for a missing element, with the
 * expression of the element, nothing made): not a workflow-definition; an action without an
 * id, or two with the same; an unknown trigger name or type; a condition that is not
 * text/fhirpath or does not compile; a relatedAction naming no action, a relationship other
 * than after-end, or a cycle of them; an action with neither trigger nor relatedAction; a
 * definitionCanonical naming none of activities (unless CARE_PROTOCOL_UNRESOLVED); and any
 * error of care_activity_check in an activity it names.
 */
status_t care_protocol_compile(const json_t *plan, const json_t *const *activities, size_t n,
                               unsigned flags, care_protocol_t **out, err_t *err);
void care_protocol_free(care_protocol_t *protocol);

/*
 * Checks an ActivityDefinition on its own: kind Task or CommunicationRequest, a url,
 * participant roles with a SNOMED CT coding (at most 1 + CARE_ACTIVITY_MAX_ROLES),
 * EXT/questionnaire a valueCanonical, EXT/due in calendar_duration_parse's syntax, EXT/due-from a
 * FHIRPath that compiles, EXT/escalation's sub-extensions (after a duration; priority a Task
 * priority; reassign and notify a CodeableConcept). ERR_RULE naming the element.
 */
status_t care_activity_check(const json_t *activity, err_t *err);

/* The ActivityDefinition's canonical reference as its actions name it: url|version, or url;
 * in arena. NULL when it has no url. */
const char *care_activity_canonical(const json_t *activity, arena_t *arena);

/* Whether canonical (url or url|version) names the ActivityDefinition of url and version
 * (version may be NULL). */
bool care_canonical_matches(const char *canonical, const char *url, const char *version);

/* The index of the action with id, or -1. */
int care_protocol_action_find(const care_protocol_t *protocol, const char *id);

/* What one run of an action acts on. All borrowed. */
typedef struct {
    const char *type, *id; /* the event's resource */
    int64_t version;
    json_t *resource; /* its JSON, the context of conditions and EXT/due-from */
    json_t *patient;  /* the Patient (%patient) */
    const char *patient_id;
    const json_t *team; /* the patient's care coordination team, or NULL */
    const calendar_t *calendar;
    int64_t time_us;        /* the event's time: authoredOn, the start of due offsets */
    const char *careplan;   /* "CarePlan/x", the basedOn of what is made */
    const char *occurrence; /* a scheduled occurrence's key (care_recurrence_key), or NULL */
} care_event_t;

/*
 * Whether every condition of action holds for the event (1 true; 0 false or empty).
 * Errors: an evaluation error (ERR_INVALID naming the condition).
 */
status_t care_action_applies(const care_protocol_t *protocol, const care_action_t *action,
                             const care_event_t *event, arena_t *arena, bool *out, err_t *err);

/* The identifier value of what action makes for the event:
 * "<plan id>/<action id>/<type>/<id>/_history/<version>", or for a scheduled occurrence
 * "<plan id>/<action id>/<type>/<id>/_occurrence/<occurrence>" (in arena). */
const char *care_action_key(const care_protocol_t *protocol, const care_action_t *action,
                            const care_event_t *event, arena_t *arena);

/*
 * The Task or CommunicationRequest action's activity makes for the event (a new reference):
 * see docs/protocols.md for each element. Errors: the action has no resolved activity
 * (ERR_RULE), EXT/due-from gives no dateTime (ERR_RULE naming it).
 */
status_t care_action_instantiate(const care_protocol_t *protocol, const care_action_t *action,
                                 const care_event_t *event, arena_t *arena, json_t **out,
                                 err_t *err);

/* The Flag of an action with EXT/flag (a new reference), or NULL when it has none. */
json_t *care_action_flag(const care_protocol_t *protocol, const care_action_t *action,
                         const care_event_t *event, arena_t *arena);

/* A FHIR date or dateTime as an instant (false when it is not one): a date alone, or a time
 * without a zone, is local to the calendar's zone (a date: its midnight). */
bool care_datetime_parse(const calendar_t *calendar, const char *text, int64_t *out_us);

/* An instant as a FHIR dateTime in the calendar's zone, to the second
 * ("2026-11-24T23:59:59-05:00"); in arena. */
const char *care_format_instant(const calendar_t *calendar, int64_t time_us, arena_t *arena);

#endif
