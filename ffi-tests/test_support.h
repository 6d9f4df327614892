//  What the C tests share: string equality, a monotonic clock in
//  milliseconds and a sleep. Include it after <zgossip.h> and after the
//  feature macros (_POSIX_C_SOURCE) the test defines.

#ifndef ZGOSSIP_TEST_SUPPORT_H
#define ZGOSSIP_TEST_SUPPORT_H

#include <stdint.h>
#include <string.h>
#include <time.h>

#define streq(s1,s2) (!strcmp ((s1), (s2)))

static inline int64_t
now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void
sleep_ms (int msecs)
{
    struct timespec ts = { msecs / 1000, (long) (msecs % 1000) * 1000000 };
    nanosleep (&ts, NULL);
}

#endif
