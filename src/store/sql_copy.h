/*
 * sql_copy.h - the SQL of copying a database, once for both drivers (store.h, "copying a
 * whole database"): the scans that read every stored row back in key order and the loads that
 * write rows with the keys they had. Only the files of src/store include it.
 *
 * The statements are fixed text with $n placeholders (SQLite's ?n), values bound as text,
 * integers or NULL and cast by the column they go to; what the dialects write differently
 * (PostgreSQL's identity columns that need OVERRIDING SYSTEM VALUE, booleans read as 0 or 1)
 * is settled here. Key counters and snapshots differ too much: they are each driver's.
 */
#ifndef CONCERTO_STORE_SQL_COPY_H
#define CONCERTO_STORE_SQL_COPY_H

#include "store/sql_search.h"

status_t sql__scan_versions(const sql_driver_t *driver, int64_t after_seq, size_t count,
                            arena_t *arena, store_copy_version_t **out_versions, size_t *out_n,
                            err_t *err);
/* The versions' rows and, of the current ones, their resources' rows (not their index rows),
 * many rows per statement. */
status_t sql__load_versions(const sql_driver_t *driver, const store_copy_version_t *versions,
                            size_t n, err_t *err);
status_t sql__outbox_scan(const sql_driver_t *driver, int64_t after_event_id, size_t count,
                          arena_t *arena, store_event_t **out_events, size_t *out_n, err_t *err);
status_t sql__load_events(const sql_driver_t *driver, const store_event_t *events, size_t n,
                          err_t *err);
status_t sql__load_jobs(const sql_driver_t *driver, const store_job_t *jobs, size_t n, err_t *err);
status_t sql__lease_list(const sql_driver_t *driver, arena_t *arena, store_lease_t **out_leases,
                         size_t *out_n, err_t *err);
status_t sql__load_leases(const sql_driver_t *driver, const store_lease_t *leases, size_t n,
                          err_t *err);

#endif
