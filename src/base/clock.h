/*
 * clock.h - wall-clock time in microseconds since the Unix epoch (the unit of lastUpdated,
 * search's "now" and the work queues), and a monotonic clock for intervals.
 *
 * The wall clock is the system's plus a process-wide offset that is 0 unless a test server
 * (`concerto serve --test-clock`, POST /admin/clock) moves it forward: everything that asks
 * clock_now_us (tokens, leases, due jobs, lastUpdated, the audit trail) then lives in the
 * moved time. The offset only grows, so the clock never goes back. The monotonic clock is
 * always the real one.
 */
#ifndef CONCERTO_BASE_CLOCK_H
#define CONCERTO_BASE_CLOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* The offset added to the system's clock (clock.c); only clock_advance_us changes it. */
extern _Atomic int64_t clock__offset_us;

/* The system's wall clock, whatever the offset. */
static inline int64_t clock_real_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t clock_now_us(void)
{
    return clock_real_us() + atomic_load_explicit(&clock__offset_us, memory_order_relaxed);
}

/* Microseconds on a clock that never goes back (for timeouts and intervals). */
static inline int64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * Moves the wall clock forward by delta_us (>= 0) and returns the new clock_now_us.
 * Thread-safe; meant for tests only (the server offers it only with --test-clock).
 */
int64_t clock_advance_us(int64_t delta_us);
/*
 * Moves the wall clock forward to target_us; false (and no change) when target_us is before
 * the current time. *out_now_us (may be NULL) gets the time after the call.
 */
bool clock_set_us(int64_t target_us, int64_t *out_now_us);
/* The current offset from the system's clock (0 unless moved). */
int64_t clock_offset_us(void);

#endif
