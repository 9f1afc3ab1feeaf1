/*
 * sql_work.h - the Task work rows (store.h, "Task work rows") and batched reads of current
 * versions, in the SQL both drivers share. Only the files of src/store include it.
 */
#ifndef CONCERTO_STORE_SQL_WORK_H
#define CONCERTO_STORE_SQL_WORK_H

#include "store/sql_search.h"

/* Replaces the work row and pools of rid, Task/id (the old ones go unless is_new), with
 * work's (none when work is NULL: a Task that is closed or deleted), on the writer inside its
 * transaction. */
status_t sql__task_work_write(const sql_driver_t *driver, int64_t rid, const char *id, bool is_new,
                              const fhir_task_work_t *work, err_t *err);
status_t sql__task_work_select(const sql_driver_t *driver, const store_task_work_query_t *query,
                               arena_t *arena, store_task_work_t **out, size_t *out_n, err_t *err);
/* Replaces the risk row of rid (the old one goes unless is_new) with row's (none when NULL),
 * on the writer inside its transaction. */
status_t sql__risk_write(const sql_driver_t *driver, int64_t rid, bool is_new,
                         const fhir_risk_row_t *row, err_t *err);
status_t sql__risk_select(const sql_driver_t *driver, const char *const *patients, size_t n,
                          arena_t *arena, store_risk_t **out, size_t *out_n, err_t *err);
/* Replaces the member rows of CareTeam rid (the old ones go unless is_new) with members'
 * (none when NULL). */
status_t sql__care_members_write(const sql_driver_t *driver, int64_t rid, bool is_new,
                                 const fhir_care_members_t *members, err_t *err);
status_t sql__care_roles_select(const sql_driver_t *driver, const char *const *members, size_t n,
                                int64_t now_us, arena_t *arena, store_care_role_t **out,
                                size_t *out_n, err_t *err);
status_t sql__read_batch(const sql_driver_t *driver, const char *type, const char *const *ids,
                         size_t n, arena_t *arena, store_version_t *out, err_t *err);

#endif
