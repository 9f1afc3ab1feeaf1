/*
 * rules.c - the rules of the record that hold for every writer (people, apps, the engine, the
 * ADT feed) and need the version being replaced or the rest of the record: the Task state
 * machine and the version check of claiming, assigning and moving a Task (DOMAIN.md, "Task"),
 * and the one primary coordinator of a patient's care coordination team.
 */
#include <string.h>

#include "base/jv.h"
#include "base/mem.h"
#include "fhir/defs.h"
#include "fhir/workflow.h"
#include "repo/repo.h"

/* Task.owner.reference ("" when none), for comparing owners. */
static const char *owner_of(const json_t *task)
{
    const char *ref =
        json_string_value(json_object_get(json_object_get(task, "owner"), "reference"));
    return ref ? ref : "";
}

static status_t task_rules(store_txn_t *txn, const repo_write_t *w, const store_current_t *current,
                           const json_t *next, err_t *err)
{
    if (current->version == 0 || current->deleted)
        return ERR_OK; /* a new Task may start in any status */
    store_version_t prev;
    status_t rc = store_txn_read(txn, w->type, w->id, 0, w->arena, &prev, err);
    if (rc)
        return rc;
    json_t *old = jv_parse(prev.json, prev.json_len, err);
    if (!old)
        return err->code;
    task_status_t from, to;
    bool known = task_status_parse(json_string_value(json_object_get(old, "status")), &from) &&
                 task_status_parse(json_string_value(json_object_get(next, "status")), &to);
    bool owner_changed = strcmp(owner_of(old), owner_of(next)) != 0;
    json_decref(old);
    if (!known)
        return ERR_OK; /* validation refuses a status outside R4's; stored ones are R4's */
    if (!task_move_allowed(from, to)) {
        char moves[160];
        task_moves_text(from, moves, sizeof(moves));
        return err_set(err, ERR_RULE, "Task.status",
                       "Task/%s cannot go from %s to %s; from %s it may go to %s", w->id,
                       task_status_code(from), task_status_code(to), task_status_code(from), moves);
    }
    /* Claiming, assigning, putting on hold, completing: the writer must show which version it
     * decided on, so that of two people taking the same Task the second is refused (412). The
     * engine sends the version it read like anyone; only writes without a caller (import)
     * are exempt. */
    if (w->caller && !w->if_match && (from != to || owner_changed))
        return err_set(err, ERR_PRECONDITION_REQUIRED, NULL,
                       "changing the %s of Task/%s needs If-Match with the version it was read "
                       "at (the current one is W/\"%lld\"), so that two people cannot both take "
                       "it",
                       from != to ? (owner_changed ? "status and owner" : "status") : "owner",
                       w->id, (long long)current->version);
    return ERR_OK;
}

/* A patient's care coordination team: at most one active per patient, with exactly one
 * current primary coordinator. */
static status_t care_team_rules(store_txn_t *txn, const repo_write_t *w, const json_t *team,
                                err_t *err)
{
    if (!fhir_care_team_coordinating(team))
        return ERR_OK;
    const char *subject =
        json_string_value(json_object_get(json_object_get(team, "subject"), "reference"));
    if (!subject || strncmp(subject, "Patient/", 8) != 0)
        return err_set(err, ERR_RULE, "CareTeam.subject",
                       "CareTeam/%s is a care coordination team (category %s) and must have a "
                       "Patient as its subject",
                       w->id, CARE_TEAM_COORDINATION);
    const char *first;
    size_t n = fhir_care_team_coordinators(team, store_txn_time_us(txn), &first);
    if (n != 1)
        return err_set(err, ERR_RULE, "CareTeam.participant",
                       "CareTeam/%s is the care coordination team of %s and needs exactly one "
                       "current participant with role %s (care coordinator), its primary "
                       "coordinator; it has %zu",
                       w->id, subject, CARE_ROLE_COORDINATOR, n);
    fhir_search_pair_t pairs[] = {
        url_pair("subject", subject),
        url_pair("status", "active"),
        url_pair("category", CARE_LOINC_SYSTEM "|" CARE_TEAM_COORDINATION),
        url_pair("_count", "2"),
    };
    repo_search_t search = {.type = fhir_resource_type_find("CareTeam", 8),
                            .pairs = pairs,
                            .npairs = sizeof(pairs) / sizeof(pairs[0]),
                            .now_us = store_txn_time_us(txn)};
    fhir_search_plan_t *plan;
    store_search_t query;
    status_t rc = repo_search_plan(NULL, &search, w->arena, &plan, &query, err);
    if (rc)
        return rc;
    store_search_result_t found;
    if ((rc = store_txn_search(txn, &query, w->arena, &found, err)))
        return rc;
    for (size_t i = 0; i < found.nmatch; i++)
        if (strcmp(found.entries[i].version.id, w->id) != 0)
            return err_set(err, ERR_RULE, "CareTeam.status",
                           "%s already has an active care coordination team, CareTeam/%s; a "
                           "patient has one (end that one first, or change it)",
                           subject, found.entries[i].version.id);
    return ERR_OK;
}

/* The rules other layers add (repo_rules_register): few, registered at start, then read
 * only. */
#define MAX_RULES 16
static struct {
    const char *type;
    repo_rule_fn fn;
} added[MAX_RULES];
static size_t nadded;

void repo_rules_register(const char *type, repo_rule_fn fn)
{
    for (size_t i = 0; i < nadded; i++)
        if (strcmp(added[i].type, type) == 0) {
            if (added[i].fn != fn)
                die("two added rules for %s", type);
            return;
        }
    if (nadded == MAX_RULES)
        die("too many added rules");
    added[nadded].type = type;
    added[nadded++].fn = fn;
}

static status_t added_rules(store_txn_t *txn, const repo_write_t *w, const char *json,
                            size_t json_len, err_t *err)
{
    for (size_t i = 0; i < nadded; i++)
        if (strcmp(added[i].type, w->type) == 0)
            return added[i].fn(txn, w, json, json_len, err);
    return ERR_OK;
}

status_t repo__rules_check(store_txn_t *txn, const repo_write_t *w, const store_current_t *current,
                           const char *json, size_t json_len, err_t *err)
{
    bool task = strcmp(w->type, "Task") == 0;
    if (w->action == REPO_DELETE)
        return ERR_OK;
    if (!task && strcmp(w->type, "CareTeam") != 0)
        return added_rules(txn, w, json, json_len, err);
    json_t *next = jv_parse(json, json_len, err);
    if (!next)
        return err->code;
    status_t rc =
        task ? task_rules(txn, w, current, next, err) : care_team_rules(txn, w, next, err);
    json_decref(next);
    return rc;
}
