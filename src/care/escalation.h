/*
 * escalation.h - what happens to a Task that stays open past its due time: the escalation
 * steps of the ActivityDefinition it was made from (extension EXT/escalation: after, priority,
 * reassign, notify), when each comes due on the business calendar, and who in a care team
 * holds a role. Pure: no I/O; the engine's due-time job (overdue.h) applies the steps.
 *
 * Steps apply in the order the ActivityDefinition lists them, each once; a Task records how
 * many it has had (EXT/escalated), so the next one is always steps[escalated].
 */
#ifndef CONCERTO_CARE_ESCALATION_H
#define CONCERTO_CARE_ESCALATION_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/calendar.h"
#include "base/err.h"
#include "care/ext.h"

/* A care team role: a coding (code NULL: none). */
typedef struct {
    const char *system;
    const char *code;
} care_role_t;

typedef struct {
    calendar_duration_t after; /* after the due time, on the business calendar */
    const char *after_text;    /* as written ("1 business day") */
    const char *priority;      /* raise Task.priority to it (never lower), or NULL */
    care_role_t reassign;      /* the owner becomes the member in this role */
    care_role_t notify;        /* a Communication to the member in this role */
    bool notify_owner;         /* a Communication to the Task's owner (after reassign) */
} care_escalation_step_t;

typedef struct {
    care_escalation_step_t *steps;
    size_t n;
} care_escalation_t;

/* The most steps one ActivityDefinition may have. */
#define CARE_ESCALATION_MAX 20

/*
 * The escalation steps of an ActivityDefinition (borrowed), in order (none when it has no
 * EXT/escalation). Strings and steps in arena. Errors: ERR_RULE naming the element
 * ("ActivityDefinition.extension[2].extension[0]") and quoting the value: a step without
 * `after` or with one that is not a duration, a priority that is not routine, urgent, asap or
 * stat, a reassign or notify without a coding, an unknown sub-extension, a step that does
 * nothing, more than CARE_ESCALATION_MAX steps.
 */
status_t care_escalation_parse(const json_t *activity, arena_t *arena, care_escalation_t *out,
                               err_t *err);

/* When step comes due for a Task due at due_us: due_us + step->after on cal. */
int64_t care_escalation_time(const calendar_t *cal, int64_t due_us,
                             const care_escalation_step_t *step);

/* The value of the first extension of url on r (borrowed; NULL when none): the element named
 * value (e.g. "valueInteger"). */
const json_t *care_extension_value(const json_t *r, const char *url, const char *value);

#endif
