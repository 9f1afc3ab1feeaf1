/*
 * workflow.c - the Task state machine of DOMAIN.md as a table of moves.
 */
#include "fhir/workflow.h"

#include "fhir/search_int.h"

#include <stdio.h>
#include <string.h>

static const char *const CODES[TASK__COUNT] = {
    [TASK_DRAFT] = "draft",         [TASK_REQUESTED] = "requested",
    [TASK_RECEIVED] = "received",   [TASK_ACCEPTED] = "accepted",
    [TASK_REJECTED] = "rejected",   [TASK_READY] = "ready",
    [TASK_CANCELLED] = "cancelled", [TASK_IN_PROGRESS] = "in-progress",
    [TASK_ON_HOLD] = "on-hold",     [TASK_FAILED] = "failed",
    [TASK_COMPLETED] = "completed", [TASK_ENTERED_IN_ERROR] = "entered-in-error",
};

#define BIT(s) (1u << (s))

/* The moves of the work itself; cancelled (from what is not final) and entered-in-error (from
 * anything) are added by task_move_allowed. */
static const unsigned MOVES[TASK__COUNT] = {
    [TASK_DRAFT] = BIT(TASK_REQUESTED) | BIT(TASK_READY),
    [TASK_REQUESTED] = BIT(TASK_RECEIVED) | BIT(TASK_REJECTED),
    [TASK_RECEIVED] = BIT(TASK_ACCEPTED) | BIT(TASK_REJECTED),
    [TASK_ACCEPTED] = BIT(TASK_IN_PROGRESS),
    [TASK_READY] = BIT(TASK_IN_PROGRESS),
    [TASK_IN_PROGRESS] = BIT(TASK_ON_HOLD) | BIT(TASK_COMPLETED) | BIT(TASK_FAILED),
    [TASK_ON_HOLD] = BIT(TASK_IN_PROGRESS),
};

static const unsigned FINAL = BIT(TASK_COMPLETED) | BIT(TASK_CANCELLED) | BIT(TASK_REJECTED) |
                              BIT(TASK_FAILED) | BIT(TASK_ENTERED_IN_ERROR);

bool task_status_parse(const char *code, task_status_t *out)
{
    for (int i = 0; i < TASK__COUNT; i++)
        if (code && strcmp(code, CODES[i]) == 0) {
            *out = (task_status_t)i;
            return true;
        }
    return false;
}

const char *task_status_code(task_status_t status)
{
    return status < TASK__COUNT ? CODES[status] : "?";
}

bool task_status_final(task_status_t status)
{
    return (FINAL & BIT(status)) != 0;
}

static unsigned moves_from(task_status_t from)
{
    unsigned moves = MOVES[from] | BIT(TASK_ENTERED_IN_ERROR);
    if (!task_status_final(from))
        moves |= BIT(TASK_CANCELLED);
    return moves & ~BIT(from);
}

bool task_move_allowed(task_status_t from, task_status_t to)
{
    return from == to || (moves_from(from) & BIT(to)) != 0;
}

void task_moves_text(task_status_t from, char *out, size_t size)
{
    if (size == 0)
        return;
    out[0] = '\0';
    unsigned moves = moves_from(from);
    if (task_status_final(from)) {
        snprintf(out, size, "%s (%s is final)", moves ? "only entered-in-error" : "none",
                 CODES[from]);
        return;
    }
    int total = __builtin_popcount(moves), seen = 0;
    size_t len = 0;
    for (int i = 0; i < TASK__COUNT && len < size; i++) {
        if (!(moves & BIT(i)))
            continue;
        seen++;
        const char *sep = seen == 1 ? "" : seen == total ? " or " : ", ";
        int n = snprintf(out + len, size - len, "%s%s", sep, CODES[i]);
        if (n < 0)
            break;
        len += (size_t)n;
    }
}

int task_priority_rank(const char *code)
{
    static const char *const ORDER[] = {"routine", "urgent", "asap", "stat"};
    for (int i = 0; i < 4; i++)
        if (code && strcmp(code, ORDER[i]) == 0)
            return i;
    return -1;
}

static bool coding_of(const json_t *concept, const char *system, const char *code)
{
    size_t i;
    const json_t *coding;
    json_array_foreach(json_object_get(concept, "coding"), i, coding)
    {
        const char *s = json_string_value(json_object_get(coding, "system"));
        const char *c = json_string_value(json_object_get(coding, "code"));
        if (c && strcmp(c, code) == 0 && (!system || (s && strcmp(s, system) == 0)))
            return true;
    }
    return false;
}

bool fhir_concept_has(const json_t *concept, const char *system, const char *code)
{
    if (!json_is_array(concept))
        return coding_of(concept, system, code);
    size_t i;
    const json_t *one;
    json_array_foreach(concept, i, one)
    {
        if (coding_of(one, system, code))
            return true;
    }
    return false;
}

/* The range of a dateTime text; false when absent or not a date. */
static bool range_of(const json_t *value, fhir_search_value_t *out)
{
    const char *text = json_string_value(value);
    return text && fhir__search_parse_date(text, strlen(text), out) == NULL;
}

bool fhir_date_bounds(const json_t *value, int64_t *out_low, int64_t *out_high)
{
    fhir_search_value_t v;
    if (!range_of(value, &v))
        return false;
    *out_low = v.as.date.low;
    *out_high = v.as.date.high;
    return true;
}

bool fhir_period_current(const json_t *period, int64_t now_us)
{
    fhir_search_value_t v;
    if (range_of(json_object_get(period, "start"), &v) && v.as.date.low > now_us)
        return false;
    if (range_of(json_object_get(period, "end"), &v) && v.as.date.high <= now_us)
        return false;
    return true;
}

void fhir_period_bounds(const json_t *period, int64_t *out_from_us, int64_t *out_until_us)
{
    fhir_search_value_t v;
    *out_from_us = range_of(json_object_get(period, "start"), &v) ? v.as.date.low : INT64_MIN;
    *out_until_us = range_of(json_object_get(period, "end"), &v) ? v.as.date.high : INT64_MAX;
}

bool fhir_task_due(const json_t *task, int64_t *out_us)
{
    fhir_search_value_t v;
    const json_t *period = json_object_get(json_object_get(task, "restriction"), "period");
    if (!range_of(json_object_get(period, "end"), &v))
        return false;
    *out_us =
        v.as.date.precision >= FHIR_SEARCH_PRECISION_MINUTE ? v.as.date.low : v.as.date.high - 1;
    return true;
}

size_t fhir_care_team_coordinators(const json_t *team, int64_t now_us, const char **out_first)
{
    size_t n = 0, i;
    const json_t *p;
    *out_first = NULL;
    json_array_foreach(json_object_get(team, "participant"), i, p)
    {
        if (!fhir_concept_has(json_object_get(p, "role"), CARE_SNOMED_SYSTEM,
                              CARE_ROLE_COORDINATOR) ||
            !fhir_period_current(json_object_get(p, "period"), now_us))
            continue;
        if (!n++)
            *out_first =
                json_string_value(json_object_get(json_object_get(p, "member"), "reference"));
    }
    return n;
}

bool fhir_care_team_coordinating(const json_t *team)
{
    const char *status = json_string_value(json_object_get(team, "status"));
    return status && strcmp(status, "active") == 0 &&
           fhir_concept_has(json_object_get(team, "category"), CARE_LOINC_SYSTEM,
                            CARE_TEAM_COORDINATION);
}

const char *fhir_care_team_member_in_role(const json_t *team, const char *system, const char *code,
                                          int64_t now_us)
{
    if (!team || !code)
        return NULL;
    if (strcmp(code, CARE_ROLE_COORDINATOR) == 0 &&
        (!system || strcmp(system, CARE_SNOMED_SYSTEM) == 0)) {
        const char *first;
        return fhir_care_team_coordinators(team, now_us, &first) >= 1 ? first : NULL;
    }
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(team, "participant"), i, p)
    {
        const char *who =
            json_string_value(json_object_get(json_object_get(p, "member"), "reference"));
        if (who && fhir_concept_has(json_object_get(p, "role"), system, code) &&
            fhir_period_current(json_object_get(p, "period"), now_us))
            return who;
    }
    return NULL;
}
