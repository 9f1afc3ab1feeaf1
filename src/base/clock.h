/*
 * clock.h - wall-clock time in microseconds since the Unix epoch (the unit of lastUpdated,
 * search's "now" and the work queues), and a monotonic clock for intervals.
 */
#ifndef CONCERTO_BASE_CLOCK_H
#define CONCERTO_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t clock_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Microseconds on a clock that never goes back (for timeouts and intervals). */
static inline int64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#endif
