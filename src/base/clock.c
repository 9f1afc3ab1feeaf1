/*
 * clock.c - the settable part of the wall clock (clock.h): one atomic offset that only grows.
 */
#include "base/clock.h"

_Atomic int64_t clock__offset_us;

int64_t clock_advance_us(int64_t delta_us)
{
    if (delta_us > 0)
        atomic_fetch_add(&clock__offset_us, delta_us);
    return clock_now_us();
}

bool clock_set_us(int64_t target_us, int64_t *out_now_us)
{
    int64_t offset = atomic_load(&clock__offset_us);
    for (;;) {
        int64_t wanted = target_us - clock_real_us();
        if (wanted < offset) {
            if (out_now_us)
                *out_now_us = clock_now_us();
            return false;
        }
        if (atomic_compare_exchange_weak(&clock__offset_us, &offset, wanted))
            break;
    }
    if (out_now_us)
        *out_now_us = target_us;
    return true;
}

int64_t clock_offset_us(void)
{
    return atomic_load(&clock__offset_us);
}
