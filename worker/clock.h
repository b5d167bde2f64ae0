/* SPDX-License-Identifier: MIT */
/*
 * The worker's one clock: CLOCK_MONOTONIC, for deadlines, backoffs and
 * durations; never wall time (log and result timestamps use their own).
 * Header-only, no state: every layer may include it. Condition variables
 * that wait on these deadlines are created with pthread_condattr_setclock
 * (CLOCK_MONOTONIC).
 */
#ifndef HOOKD_CLOCK_H
#define HOOKD_CLOCK_H

#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Microseconds of monotonic clock. */
static inline uint64_t hookd_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Milliseconds of monotonic clock. */
static inline uint64_t hookd_now_ms(void)
{
    return hookd_now_us() / 1000u;
}

/* Milliseconds since the epoch (wall clock): retry tiers' due times, which
 * travel between workers in record headers. */
static inline int64_t hookd_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + (int64_t)ts.tv_nsec / 1000000;
}

/* The monotonic time `timeout_ms` (>= 0) from now, as an absolute timespec
 * for pthread_cond_timedwait on a CLOCK_MONOTONIC condition variable. */
static inline void hookd_deadline_after(struct timespec *ts, int timeout_ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_CLOCK_H */
