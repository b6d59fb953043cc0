/* tocsin — SPDX-License-Identifier: MIT
 *
 * Fuzz target: Retry-After header values (tc_retry_after_parse in
 * net/retry.h), which any webhook receiver may send. Checked against a
 * reference for delta-seconds written here, and for dates by how the answer
 * moves with the clock: validity does not depend on now, a later now never
 * gives a longer delay, and one hour later a date is one hour nearer (until
 * it is past). Every delay is within the 24 h cap; a refused value leaves
 * the output alone.
 */
#include "fuzz.h"
#include "net/retry.h"

#include <stdbool.h>

/* "Wed, 21 Oct 2015 07:28:00 GMT", the unit test's clock. */
#define NOW     1445412480
#define HOUR_MS 3600000ull
#define UNSET   0xdeadbeefull

/* What the delta-seconds rule says: leading and trailing blanks skipped,
 * at most 64 characters after the leading blanks, digits only. @returns
 * true for a delta-seconds value, with *ms its delay. */
static bool
reference_delta(const char *s, bool *valid, uint64_t *ms)
{
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    size_t len = strlen(s);
    if (len > 64) {
        *valid = false;
        return true;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) {
        len--;
    }
    if (len == 0) {
        *valid = false;
        return true;
    }
    if (s[0] < '0' || s[0] > '9') {
        return false; /* a date, or junk: not the reference's to judge */
    }
    uint64_t secs = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            *valid = false;
            return true;
        }
        secs = secs >= 86400 ? 86400 : secs * 10 + (uint64_t)(s[i] - '0');
    }
    *valid = true;
    *ms = (secs >= 86400 ? 86400 : secs) * 1000;
    return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    uint64_t now_ms = UNSET, later_ms = UNSET, want = 0;
    bool valid = false;

    int rc = tc_retry_after_parse(s, NOW, &now_ms);
    int rc_later = tc_retry_after_parse(s, NOW + 3600, &later_ms);
    FUZZ_CHECK(rc == TC_OK || rc == TC_EINVAL);
    FUZZ_CHECK(rc == rc_later);
    if (rc != TC_OK) {
        FUZZ_CHECK(now_ms == UNSET && later_ms == UNSET);
    } else {
        FUZZ_CHECK(now_ms <= TC_RETRY_AFTER_MAX_MS && later_ms <= TC_RETRY_AFTER_MAX_MS);
        FUZZ_CHECK(later_ms <= now_ms);
    }
    if (reference_delta(s, &valid, &want)) {
        FUZZ_CHECKF((rc == TC_OK) == valid, "\"%s\": rc %d", s, rc);
        if (valid) {
            FUZZ_CHECKF(now_ms == want && later_ms == want, "\"%s\": %llu ms, want %llu", s,
                        (unsigned long long)now_ms, (unsigned long long)want);
        }
    } else if (rc == TC_OK) {
        /* A date: an hour later it is an hour nearer, unless capped or past. */
        bool capped = now_ms == TC_RETRY_AFTER_MAX_MS;
        FUZZ_CHECKF(capped || now_ms - later_ms == (now_ms < HOUR_MS ? now_ms : HOUR_MS),
                    "\"%s\": %llu then %llu", s, (unsigned long long)now_ms,
                    (unsigned long long)later_ms);
        FUZZ_CHECK(now_ms % 1000 == 0 && later_ms % 1000 == 0);
    }
    free(s);
    return 0;
}
