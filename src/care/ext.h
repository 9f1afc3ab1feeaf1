/*
 * ext.h - the names Concerto gives its own extensions and identifier systems in the
 * resources of coordination (docs/protocols.md, docs/coordination.md).
 */
#ifndef CONCERTO_CARE_EXT_H
#define CONCERTO_CARE_EXT_H

#define CARE_EXT "http://concerto.dev/fhir/StructureDefinition/"

/* on an ActivityDefinition: what a protocol's Task gets */
#define CARE_EXT_DUE           CARE_EXT "due"        /* valueString: the due offset */
#define CARE_EXT_DUE_FROM      CARE_EXT "due-from"   /* valueString: FHIRPath of the start */
#define CARE_EXT_ESCALATION    CARE_EXT "escalation" /* complex: after, priority, reassign, notify */
#define CARE_EXT_NOTIFY_TARGET CARE_EXT "notify-target" /* the system of notify's code "owner" */
#define CARE_EXT_QUESTIONNAIRE CARE_EXT "questionnaire" /* valueCanonical: the form to fill in */

/* on a PlanDefinition's action: a Flag to raise */
#define CARE_EXT_FLAG CARE_EXT "flag"

/* on what the engine makes and marks */
#define CARE_EXT_PROTOCOL_ACTION        CARE_EXT "protocol-action" /* "<plan url>#<action id>" */
#define CARE_EXT_OVERDUE                CARE_EXT "overdue"         /* the due time a Task passed */
#define CARE_EXT_ESCALATED              CARE_EXT "escalated"       /* escalation steps applied */
#define CARE_EXT_COMMUNICATION_CATEGORY CARE_EXT "communication-category"
#define CARE_EXT_READMISSION            CARE_EXT "readmission" /* valueReference: the stay before */

/* identifier systems: what the engine made, so that it never makes it twice. Values:
 * "<plan id>/<action id>/<type>/<id>/_history/<version>" (what an action made for an event),
 * "<plan id>/Patient/<id>" (a patient's CarePlan of a protocol), "Task/<id>/_history/<version>"
 * (a notification of that Task version, "/escalation/<step>" after it for a step's) */
#define CARE_PROTOCOL_ACTION_SYSTEM   "urn:concerto:protocol-action"
#define CARE_PROTOCOL_CAREPLAN_SYSTEM "urn:concerto:protocol-careplan"
#define CARE_NOTIFICATION_SYSTEM      "urn:concerto:notification"

#endif
