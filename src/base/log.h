/*
 * log.h - one line per event on standard error: time, level, message. Errors are logged once,
 * at the boundary that turns them into a response.
 */
#ifndef CONCERTO_BASE_LOG_H
#define CONCERTO_BASE_LOG_H

typedef enum { LOG_ERROR, LOG_WARNING, LOG_INFO, LOG_DEBUG } log_level_t;

/* Messages above this level are dropped (default LOG_INFO). */
void log_set_level(log_level_t level);
/* Parses "error", "warning", "info", "debug"; returns -1 when unknown. */
int log_level_parse(const char *name);
void log_write(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...)   log_write(LOG_ERROR, __VA_ARGS__)
#define log_warning(...) log_write(LOG_WARNING, __VA_ARGS__)
#define log_info(...)    log_write(LOG_INFO, __VA_ARGS__)
#define log_debug(...)   log_write(LOG_DEBUG, __VA_ARGS__)

#endif
