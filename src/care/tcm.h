/*
 * tcm.h - the Transitional Care Management report of a discharge (docs/transitions.md, "The
 * TCM report"): for an Encounter that finished, each TCM requirement (interactive contact
 * within 2 business days, the face-to-face visit within 7 or 14 days, medication
 * reconciliation by that visit) as met, pending or missed at a time, with its deadline and what
 * satisfied it, and the code the episode supports (99495, 99496 or none).
 *
 * The judging (care_tcm_judge) is pure: the discharge, the resources about it and the time
 * in, the report out, so that it is tested alone. care_tcm_report gathers those resources
 * through the store and judges the earlier discharges of the 30 days before as well.
 */
#ifndef CONCERTO_CARE_TCM_H
#define CONCERTO_CARE_TCM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/calendar.h"
#include "base/err.h"
#include "repo/access.h"
#include "store/store.h"

/* The url of the built-in transitional-care PlanDefinition; the Tasks of its actions carry
 * the extension protocol-action "<this url>#<action id>". */
#define TCM_PROTOCOL_URL "http://concerto.dev/fhir/PlanDefinition/transitional-care"

/* The CPT codes (TCM_CODE_NONE: none). */
typedef enum { TCM_CODE_NONE, TCM_CODE_99495, TCM_CODE_99496 } tcm_code_t;

/* "none", "99495", "99496". */
const char *care_tcm_code_text(tcm_code_t code);

typedef enum { TCM_MET, TCM_PENDING, TCM_MISSED } tcm_status_t;

/* "met", "pending", "missed". */
const char *care_tcm_status_code(tcm_status_t status);

/* At most this many references satisfy one requirement (two unsuccessful attempts). */
#define TCM_MAX_EVIDENCE 2

/* One requirement. References are "Type/id", borrowed from the episode's resources or in
 * the arena given to care_tcm_judge. */
typedef struct {
    tcm_status_t status;
    int64_t deadline_us; /* the last instant it is met in time */
    const char *task;    /* the Task of the protocol for it ("Task/id"), or NULL */
    const char *evidence[TCM_MAX_EVIDENCE]; /* what satisfied it (met only) */
    size_t nevidence;
    int64_t met_us; /* when it was met (met only) */
} tcm_requirement_t;

/* The episode to judge: the discharge and what the store holds about it. */
typedef struct {
    const json_t *encounter;      /* the discharge: status finished, period.end */
    const json_t *tasks;          /* array of the Tasks whose focus is the Encounter */
    const json_t *communications; /* array of the patient's Communications */
    const json_t *encounters;     /* array of the patient's Encounters (this one is skipped) */
} tcm_episode_t;

typedef struct {
    int64_t discharge_us;  /* period.end */
    int64_t period_end_us; /* discharge + 30 calendar days */
    bool eligible;         /* a stay and a disposition TCM covers */
    bool high_complexity;
    const char *complexity_reason; /* why high or moderate, for people */

    tcm_requirement_t contact; /* interactive-contact */
    int attempts;              /* documented unsuccessful attempts by the deadline */
    int successful;            /* completed contacts by the deadline */

    tcm_requirement_t visit; /* face-to-face */
    const char *visit_ref;   /* the first face-to-face Encounter after the discharge, or NULL */
    int64_t visit_us;        /* its period.start */

    tcm_requirement_t reconciliation; /* medication-reconciliation */

    tcm_code_t code;      /* the code the episode supports now */
    bool final;           /* nothing can change it any more */
    tcm_code_t reachable; /* the best code still reachable (== code when final) */
    const char *reason;   /* why the code is what it is, for people; never NULL */
} tcm_report_t;

/*
 * Whether encounter (an Encounter) is a discharge the report can judge: status finished and a
 * period.end that is a dateTime. false with a message in *out_problem (static text) and the
 * FHIRPath of the element at fault in *out_where otherwise.
 */
bool care_tcm_discharged(const json_t *encounter, const char **out_problem, const char **out_where);

/*
 * Judges episode at now_us with calendar's business days and zone into *out (strings borrowed
 * from episode or in arena). episode->encounter must pass care_tcm_discharged. The 30-day rule
 * is not applied here: care_tcm_supersede does it.
 */
void care_tcm_judge(const tcm_episode_t *episode, const calendar_t *calendar, int64_t now_us,
                    arena_t *arena, tcm_report_t *out);

/*
 * The 30-day rule: one TCM per patient per 30 days. When earlier (the report of another
 * discharge of the patient) supports a code and report's discharge falls in its 30-day period,
 * report supports none, finally, and its reason names earlier_ref ("Encounter/id"). Returns
 * whether it did.
 */
bool care_tcm_supersede(tcm_report_t *report, const tcm_report_t *earlier, const char *earlier_ref,
                        const calendar_t *calendar, arena_t *arena);

/*
 * The report of Encounter/id at now_us, read through conn as caller reads (repo_read_as: the
 * access check is that of reading the Encounter); the resources judged are searched without
 * the caller's restrictions, so that the code does not depend on who asks. *out_encounter is
 * the Encounter (released with arena). Errors: those of the read (ERR_NOT_FOUND, ERR_GONE,
 * ERR_FORBIDDEN), ERR_RULE when it is not a finished stay or has no Patient subject, ERR_TOO_LARGE
 * when the patient has more than 1000 Communications or Encounters since 30 days before the
 * discharge, storage errors.
 */
status_t care_tcm_report(store_conn_t *conn, const repo_caller_t *caller, const char *id,
                         const calendar_t *calendar, int64_t now_us, arena_t *arena,
                         tcm_report_t *out, json_t **out_encounter, err_t *err);

#endif
