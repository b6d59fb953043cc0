/* tocsin — SPDX-License-Identifier: MIT
 *
 * Retry delays and Retry-After parsing for webhook delivery (see retry.h).
 * Does not schedule anything: the delivery code stores the due time in Redis
 * and dead-letters when the schedule runs out.
 */
#define _GNU_SOURCE /* strptime, timegm */
#include "net/retry.h"

#include "config/config.h"
#include "util/util.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

#define JITTER_MIN_PCT  80 /* delays range over [80 %, 120 %] of the schedule */
#define JITTER_SPAN_PCT 40
/* Longest Retry-After value we look at; a date is 29 characters. */
#define RETRY_AFTER_MAX_LEN 64

uint64_t
tc_retry_delay_ms(const struct tc_retry_schedule *sched, int attempt, uint32_t rnd)
{
    uint64_t base, low, span, delay;

    if (attempt < 1) {
        attempt = 1;
    }
    if (sched == NULL || sched->count <= 0 || attempt > sched->count ||
        attempt > TC_RETRY_SCHEDULE_MAX) {
        return 0;
    }
    base = sched->ms[attempt - 1];
    low = base / 100 * JITTER_MIN_PCT + base % 100 * JITTER_MIN_PCT / 100;
    span = base / 100 * JITTER_SPAN_PCT + base % 100 * JITTER_SPAN_PCT / 100;
    /* span (under a year of ms, ~2^35) times rnd (2^32) needs 128 bits. */
    delay = low + (uint64_t)(((unsigned __int128)span * rnd) / UINT32_MAX);
    return delay > 0 ? delay : 1;
}

static int
parse_delta_seconds(const char *s, size_t len, uint64_t *out_s)
{
    uint64_t v = 0;

    if (len == 0) {
        return TC_EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return TC_EINVAL;
        }
        /* Saturate instead of wrapping: the result is capped at 24 h anyway. */
        if (v < UINT64_MAX / 10) {
            v = v * 10 + (uint64_t)(s[i] - '0');
        }
    }
    *out_s = v;
    return TC_OK;
}

static int
parse_http_date(const char *s, int64_t *out_s)
{
    /* RFC 9110 §5.6.7: IMF-fixdate, then the two obsolete forms recipients
     * must still accept. */
    static const char *const formats[] = {
        "%a, %d %b %Y %H:%M:%S GMT",
        "%A, %d-%b-%y %H:%M:%S GMT",
        "%a %b %e %H:%M:%S %Y",
    };

    for (size_t i = 0; i < TC_ARRAY_SIZE(formats); i++) {
        struct tm tm;
        const char *end;

        memset(&tm, 0, sizeof(tm));
        end = strptime(s, formats[i], &tm);
        if (end != NULL && *end == '\0') {
            *out_s = (int64_t)timegm(&tm);
            return TC_OK;
        }
    }
    return TC_EINVAL;
}

int
tc_retry_after_parse(const char *value, int64_t now_s, uint64_t *delay_ms)
{
    char buf[RETRY_AFTER_MAX_LEN + 1];
    size_t len;
    uint64_t secs = 0;
    int64_t when = 0;

    if (value == NULL || delay_ms == NULL) {
        return TC_EINVAL;
    }
    while (*value == ' ' || *value == '\t') {
        value++;
    }
    /* Over the bound it is neither a date nor a sane number: ignore it. */
    len = strnlen(value, RETRY_AFTER_MAX_LEN + 1);
    if (len > RETRY_AFTER_MAX_LEN) {
        return TC_EINVAL;
    }
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t')) {
        len--;
    }
    if (len == 0) {
        return TC_EINVAL;
    }
    if (isdigit((unsigned char)value[0])) {
        if (parse_delta_seconds(value, len, &secs) != TC_OK) {
            return TC_EINVAL;
        }
    } else {
        memcpy(buf, value, len);
        buf[len] = '\0';
        if (parse_http_date(buf, &when) != TC_OK) {
            return TC_EINVAL;
        }
        secs = when > now_s ? (uint64_t)(when - now_s) : 0;
    }
    *delay_ms = secs >= TC_RETRY_AFTER_MAX_MS / 1000 ? TC_RETRY_AFTER_MAX_MS : secs * 1000;
    return TC_OK;
}
