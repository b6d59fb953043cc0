/* tocsin — SPDX-License-Identifier: MIT
 *
 * Retry schedules of the outbound gateways: the delay before each retry
 * (webhook.retry_schedule, email.retry_schedule; with jitter) and the
 * Retry-After header an HTTP receiver may send. Pure: the caller supplies
 * the clock and the randomness.
 */
#ifndef TC_NET_RETRY_H
#define TC_NET_RETRY_H

#include <stdint.h>

struct tc_retry_schedule;

/* Longest delay a Retry-After header can ask for; longer asks are cut to it. */
#define TC_RETRY_AFTER_MAX_MS (24ull * 3600 * 1000)

/* Delay in ms before retry number attempt (1 = the first retry after the
 * first failed delivery): sched->ms[attempt - 1] scaled by a
 * factor in [0.8, 1.2] chosen by rnd (0 → 0.8, UINT32_MAX → 1.2), so
 * endpoints that failed together do not retry together. attempt < 1 counts
 * as 1. Returns 0 when attempt is past the schedule: the caller dead-letters.
 * A scheduled retry is never 0 ms (a "0s" entry gives 1). @borrows sched. */
uint64_t tc_retry_delay_ms(const struct tc_retry_schedule *sched, int attempt, uint32_t rnd);

/* Parses a Retry-After value: delta-seconds ("120") or an HTTP-date
 * ("Wed, 21 Oct 2015 07:28:00 GMT"; the obsolete RFC 850 and asctime forms
 * too), against now_s (Unix seconds). A date in the past gives 0; anything
 * over 24 h gives TC_RETRY_AFTER_MAX_MS. Returns 0 or TC_EINVAL (and
 * leaves *delay_ms alone) on anything else. */
int tc_retry_after_parse(const char *value, int64_t now_s, uint64_t *delay_ms);

#endif
