/* tocsin — SPDX-License-Identifier: MIT
 *
 * Allocation, errors, time, durations, randomness and base64url (see util.h).
 */
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int
tc_error_set(struct tc_error *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->text, sizeof(err->text), fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *
tc_strerror(int code)
{
    switch (code) {
    case TC_OK:
        return "ok";
    case TC_EINVAL:
        return "invalid input";
    case TC_ETOOBIG:
        return "too big";
    case TC_ENOENT:
        return "not found";
    case TC_EIO:
        return "i/o error";
    case TC_ETIMEDOUT:
        return "timed out";
    case TC_EAGAIN:
        return "try again later";
    case TC_ESTATE:
        return "wrong state";
    default:
        return "unknown error";
    }
}

static void
oom(size_t n)
{
    fprintf(stderr, "level=fatal msg=\"out of memory\" bytes=%zu\n", n);
    abort();
}

void *
tc_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        oom(n);
    }
    return p;
}

void *
tc_xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (p == NULL) {
        oom(count * n);
    }
    return p;
}

void *
tc_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) {
        oom(n);
    }
    return q;
}

char *
tc_xstrdup(const char *s)
{
    return tc_xstrndup(s, strlen(s));
}

char *
tc_xstrndup(const char *s, size_t n)
{
    char *p = tc_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
tc_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        abort();
    }
    char *p = tc_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void
tc_free_strings(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(items[i]);
    }
    free(items);
}

uint64_t
tc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t
tc_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void
tc_rfc3339_now(char buf[32])
{
    uint64_t us = tc_wall_us();
    time_t secs = (time_t)(us / 1000000u);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, 32 - n, ".%03uZ", (unsigned)((us / 1000u) % 1000u));
}

int
tc_parse_duration_ms(const char *s, uint64_t *out_ms)
{
    if (s == NULL || !isdigit((unsigned char)s[0])) {
        return TC_EINVAL;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0) {
        return TC_EINVAL;
    }
    uint64_t mult;
    if (strcmp(end, "ms") == 0) {
        mult = 1;
    } else if (strcmp(end, "") == 0 || strcmp(end, "s") == 0) {
        mult = 1000;
    } else if (strcmp(end, "m") == 0) {
        mult = 60 * 1000;
    } else if (strcmp(end, "h") == 0) {
        mult = 3600 * 1000;
    } else if (strcmp(end, "d") == 0) {
        mult = 86400 * 1000;
    } else {
        return TC_EINVAL;
    }
    /* A year is the longest duration anything here can mean. */
    if (v > 366ull * 86400 * 1000 / mult) {
        return TC_EINVAL;
    }
    *out_ms = v * mult;
    return TC_OK;
}

int
tc_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            return TC_EIO;
        }
        p += got;
        n -= (size_t)got;
    }
    return TC_OK;
}

bool
tc_str_equal_ct(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    /* Compare over the longer length so the time depends on neither content. */
    size_t n = la > lb ? la : lb;
    for (size_t i = 0; i < n; i++) {
        unsigned char ca = i < la ? (unsigned char)a[i] : 0;
        unsigned char cb = i < lb ? (unsigned char)b[i] : 0;
        diff |= (unsigned char)(ca ^ cb);
    }
    return diff == 0;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t
tc_b64url_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0, i = 0;

    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url[v >> 18];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
        out[o++] = b64url[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64url[v >> 18];
        out[o++] = b64url[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64url[v >> 18];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
    }
    return o;
}

static int
b64url_value(char c)
{
    const char *p = c != '\0' ? strchr(b64url, c) : NULL;
    return p != NULL ? (int)(p - b64url) : -1;
}

long
tc_b64url_decode(const char *in, size_t n, unsigned char *out)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;

    if (n % 4 == 1) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value(in[i]);
        if (v < 0) {
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) {
        return -1;
    }
    return (long)o;
}
