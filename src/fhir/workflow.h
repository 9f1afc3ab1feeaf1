/*
 * workflow.h - the rules of work items that do not depend on storage: the R4 Task status codes
 * and which moves between them are allowed (DOMAIN.md, "Task"), and the order of Task
 * priorities. Static data, no state.
 */
#ifndef CONCERTO_FHIR_WORKFLOW_H
#define CONCERTO_FHIR_WORKFLOW_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    TASK_DRAFT,
    TASK_REQUESTED,
    TASK_RECEIVED,
    TASK_ACCEPTED,
    TASK_REJECTED,
    TASK_READY,
    TASK_CANCELLED,
    TASK_IN_PROGRESS,
    TASK_ON_HOLD,
    TASK_FAILED,
    TASK_COMPLETED,
    TASK_ENTERED_IN_ERROR,
    TASK__COUNT
} task_status_t;

/* The status of code ("in-progress"); false when code is not one of R4's. */
bool task_status_parse(const char *code, task_status_t *out);
const char *task_status_code(task_status_t status);

/* Completed, cancelled, rejected, failed and entered-in-error: no move leads out of them. */
bool task_status_final(task_status_t status);

/* Whether a Task may go from `from` to `to`. Staying in a status is always allowed. */
bool task_move_allowed(task_status_t from, task_status_t to);

/*
 * The statuses `from` may move to, as text for an error message: "in-progress, cancelled or
 * entered-in-error", or "none (completed is final)". Writes at most size bytes with the NUL.
 */
void task_moves_text(task_status_t from, char *out, size_t size);

/* Task.priority (and the request priorities of R4): routine < urgent < asap < stat. The rank
 * of code from 0 (routine) to 3 (stat); -1 when code is none of them. */
int task_priority_rank(const char *code);

#endif
