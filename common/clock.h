/* Time for deadlines and intervals: CLOCK_MONOTONIC, which NTP steps and
 * an operator's `date -s` cannot move. */
#ifndef SFTCA_CLOCK_H
#define SFTCA_CLOCK_H

#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t clock_monotonic_ms(void);

#endif
