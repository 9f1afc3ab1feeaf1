/*
 * worklist.h - a staff member's work (GET Task/$worklist): the open Tasks they own and the
 * unowned ones waiting in a role pool of theirs, on the patients the access policy lets them
 * see, sorted into buckets (overdue, due today, upcoming, on hold, unassigned) and ordered
 * by what needs doing first (docs/coordination.md, "Worklists").
 *
 * The bucketing and the order are pure functions of the items (unit-tested); worklist_run
 * gathers the items from the Task work rows the store keeps (store_task_work: owned by the
 * caller or in their role pools, as the access policy lets them see), the caller's roles in
 * their care teams (store_care_roles) and the latest RiskAssessment of the patients found
 * (store_patient_risks), each one statement; it reads the stored Tasks of only those its
 * buckets show.
 */
#ifndef CONCERTO_CARE_WORKLIST_H
#define CONCERTO_CARE_WORKLIST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/calendar.h"
#include "base/err.h"
#include "repo/access.h"
#include "store/store.h"

/* The buckets, in the order a worklist lists them. Each Task is in exactly one. */
typedef enum {
    WORKLIST_OVERDUE,    /* due before now */
    WORKLIST_DUE_TODAY,  /* due from now to the end of today, local time */
    WORKLIST_UPCOMING,   /* due later, or no due time */
    WORKLIST_ON_HOLD,    /* status on-hold, whatever the due time */
    WORKLIST_UNASSIGNED, /* no owner: waiting in a role pool */
    WORKLIST__COUNT
} worklist_bucket_t;

/* The code of a bucket ("due-today"); the system of the codes, for List.code. */
#define WORKLIST_BUCKET_SYSTEM "http://concerto.dev/fhir/CodeSystem/worklist-bucket"
const char *worklist_bucket_code(worklist_bucket_t bucket);
/* Its display text ("Due today"). */
const char *worklist_bucket_display(worklist_bucket_t bucket);
/* The bucket of code; false when code names none. */
bool worklist_bucket_parse(const char *code, worklist_bucket_t *out);

/* No due time (Task.restriction.period.end absent or not a dateTime). */
#define WORKLIST_NO_DUE INT64_MAX
/* No risk known for the patient. */
#define WORKLIST_NO_RISK (-1.0)

/* One Task of a worklist. */
typedef struct {
    const char *id;              /* the Task's id (NULL: task->id) */
    const store_version_t *task; /* borrowed: the stored Task; worklist_run reads those its
                                    buckets show, the others are NULL */
    const char *patient;         /* "Patient/id" of Task.for, or NULL */
    bool owned;                  /* has an owner */
    bool on_hold;                /* status on-hold */
    int priority;                /* task_priority_rank; absent counts as routine (0) */
    double risk;                 /* the patient's risk from 0 to 1, or WORKLIST_NO_RISK */
    int64_t due_us;              /* the last instant of the due time, or WORKLIST_NO_DUE */
    bool overdue;                /* due_us <= now, as the overdue mark (worklist_classify) */
    worklist_bucket_t bucket;    /* set by worklist_classify */
} worklist_item_t;

/* The Task's id of an item. */
const char *worklist_item_id(const worklist_item_t *item);

/* The first instant of tomorrow in the calendar's time zone, after now_us: the end of the
 * "due today" bucket. */
int64_t worklist_today_end(const calendar_t *calendar, int64_t now_us);

/*
 * Sets item->overdue and item->bucket: on-hold first (whatever the due time), then
 * unassigned (no owner), then by due time: overdue at now_us or before, due today before
 * today_end_us, else upcoming (also without a due time).
 */
void worklist_classify(worklist_item_t *item, int64_t now_us, int64_t today_end_us);

/*
 * The order of a worklist, inside a bucket and overall: overdue first, then priority (stat,
 * asap, urgent, routine), then the patient's risk (higher first, none last), then due time
 * (earliest first, none last), then the Task's id. A qsort comparator of worklist_item_t.
 */
int worklist_compare(const void *a, const void *b);

/* Fills the item's fields from the parsed Task (task and risk are left as they are):
 * patient, owned, on_hold, priority, due_us. */
void worklist_item_from_task(worklist_item_t *item, const json_t *task, arena_t *arena);

/*
 * A patient's risk from a RiskAssessment: prediction[0].probabilityDecimal (0 to 1), or else
 * prediction[0].qualitativeRisk, whose codes (risk-probability) count as negligible 0.05,
 * low 0.25, moderate 0.5, high 0.75, certain 1; WORKLIST_NO_RISK when it has neither.
 */
double worklist_risk_of(const json_t *risk_assessment);

/* What a worklist is asked for. Set with worklist_param (or directly); zero it first. */
typedef struct {
    const char *patient_id;      /* only this patient's Tasks, or NULL */
    const char *code;            /* Task.code token (search syntax), or NULL */
    const char *priority;        /* only this priority, or NULL */
    const char *team_id;         /* that CareTeam's view, or NULL */
    bool bucket_set;             /* only one bucket: */
    worklist_bucket_t bucket;    /*   this one */
    bool count_set;              /* Tasks listed per bucket: count, or */
    uint32_t count;              /*   WORKLIST_DEFAULT_COUNT when !count_set */
    int64_t now_us;              /* the time of the request (clock_now_us) */
    const char *base;            /* the server's base url, or NULL */
    const repo_caller_t *caller; /* who asks */
    const calendar_t *calendar;  /* the organisation's (NULL: calendar_default()) */
} worklist_query_t;

#define WORKLIST_DEFAULT_COUNT 50
#define WORKLIST_MAX_COUNT     1000

/*
 * Sets one parameter of a worklist from its text: patient (an id or Patient/id), code (a
 * token), priority (routine, urgent, asap, stat), team (a CareTeam id), bucket (overdue,
 * due-today, upcoming, on-hold, unassigned), _count (0 to WORKLIST_MAX_COUNT). Strings are
 * copied into arena. Errors: ERR_INVALID naming the parameter (as the error's expression)
 * for an unknown one, a repeated one, or a bad value.
 */
status_t worklist_param(worklist_query_t *query, const char *name, const char *value,
                        arena_t *arena, err_t *err);

/* A worklist: every matching Task in order, and what each bucket shows (the stored Task of
 * those, items[first[b] .. first[b] + shown[b]), is read). */
typedef struct {
    worklist_item_t *items; /* all of them, sorted by bucket, then worklist_compare */
    size_t n;
    size_t total[WORKLIST__COUNT]; /* Tasks in each bucket */
    size_t first[WORKLIST__COUNT]; /* index in items of each bucket's first */
    size_t shown[WORKLIST__COUNT]; /* how many of them are listed (at most the count) */
} worklist_t;

/*
 * Works out the caller's worklist on conn (a search connection). The caller must be staff or
 * an admin linked to a Practitioner or PractitionerRole (ERR_FORBIDDEN otherwise, and for a
 * patient account). Without team: the open Tasks (draft, requested, received, accepted,
 * ready, in-progress, on-hold) visible to the caller as a search of Task would find them
 * that they own (their Practitioner or PractitionerRole), and the unowned ones whose
 * performerType is a code of their PractitionerRole.code or their role in the patient's
 * active CareTeam. With team (which must be visible to the caller: else the error of a
 * read): the open Tasks of the team's patient owned by a current member, and the unowned
 * ones in the pool of a role the team's current participants hold. Everything it returns
 * is in arena. Errors: ERR_FORBIDDEN, ERR_NOT_FOUND and ERR_GONE for team, ERR_INVALID for a
 * code the search cannot take, storage errors.
 */
status_t worklist_run(store_conn_t *conn, const worklist_query_t *query, arena_t *arena,
                      worklist_t *out, err_t *err);

#endif
