/* tocsin — SPDX-License-Identifier: MIT
 *
 * Query strings (application/x-www-form-urlencoded): find one key in a raw
 * query string and percent-decode its value into a caller's bounded buffer.
 * Pure: no allocation, no I/O. Keys are compared as they appear (not decoded).
 */
#include "model/filter.h"

#include <limits.h>
#include <string.h>

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Decodes [p, end) into out. At the bound (outlen - 1 decoded bytes) the
 * value is refused with TC_ETOOBIG, never truncated. */
static int
decode(const char *p, const char *end, char *out, size_t outlen)
{
    size_t n = 0;
    while (p < end) {
        char c = *p++;
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = end - p >= 2 ? hex_value(p[0]) : -1;
            int lo = end - p >= 2 ? hex_value(p[1]) : -1;
            if (hi < 0 || lo < 0) {
                return TC_EINVAL;
            }
            c = (char)(hi * 16 + lo);
            p += 2;
            if (c == '\0') {
                /* A decoded NUL would cut the value short in every C caller. */
                return TC_EINVAL;
            }
        }
        if (n + 1 >= outlen) {
            return TC_ETOOBIG;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    return (int)n;
}

int
tc_query_get(const char *qs, const char *key, char *out, size_t outlen)
{
    size_t klen;
    int rc;

    if (outlen > 0) {
        out[0] = '\0';
    }
    if (qs == NULL || key == NULL) {
        return TC_ENOENT;
    }
    if (outlen == 0) {
        return TC_ETOOBIG;
    }
    /* The int return value caps what one value may decode to. */
    if (outlen > (size_t)INT_MAX) {
        outlen = (size_t)INT_MAX;
    }
    if (*qs == '?') {
        qs++;
    }
    klen = strlen(key);
    for (const char *p = qs; *p != '\0';) {
        const char *end = strchr(p, '&');
        if (end == NULL) {
            end = p + strlen(p);
        }
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *kend = eq != NULL ? eq : end;
        if ((size_t)(kend - p) == klen && memcmp(p, key, klen) == 0) {
            rc = decode(eq != NULL ? eq + 1 : end, end, out, outlen);
            if (rc < 0) {
                out[0] = '\0';
            }
            return rc;
        }
        p = *end != '\0' ? end + 1 : end;
    }
    return TC_ENOENT;
}
