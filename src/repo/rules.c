/*
 * rules.c - the rules of the record that hold for every writer (people, apps, the engine, the
 * ADT feed) and need the version being replaced: the Task state machine and the version check
 * of claiming, assigning and moving a Task (DOMAIN.md, "Task").
 */
#include <string.h>

#include "base/jv.h"
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
     * engine writes in one transaction with what it read and needs no header. */
    if (w->caller && !w->if_match && (from != to || owner_changed))
        return err_set(err, ERR_PRECONDITION_REQUIRED, NULL,
                       "changing the %s of Task/%s needs If-Match with the version it was read "
                       "at (the current one is W/\"%lld\"), so that two people cannot both take "
                       "it",
                       from != to ? (owner_changed ? "status and owner" : "status") : "owner",
                       w->id, (long long)current->version);
    return ERR_OK;
}

status_t repo__rules_check(store_txn_t *txn, const repo_write_t *w, const store_current_t *current,
                           const char *json, size_t json_len, err_t *err)
{
    if (w->action == REPO_DELETE || strcmp(w->type, "Task") != 0)
        return ERR_OK;
    json_t *next = jv_parse(json, json_len, err);
    if (!next)
        return err->code;
    status_t rc = task_rules(txn, w, current, next, err);
    json_decref(next);
    return rc;
}
