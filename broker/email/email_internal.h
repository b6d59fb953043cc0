/* tocsin — SPDX-License-Identifier: MIT
 *
 * Helpers shared by the files of email/ only (not a public interface): a
 * growing text buffer created with its bound, and strict UTF-8 checks.
 * Pure and header-only, so every file of the folder stays testable alone.
 */
#ifndef TC_EMAIL_INTERNAL_H
#define TC_EMAIL_INTERNAL_H

#include "util/util.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A NUL-terminated growing buffer that refuses to pass max bytes. At the
 * bound nothing more is appended and `over` stays set, so a builder can
 * append freely and check once at the end (the caller returns TC_ETOOBIG). */
struct tc_email__buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    bool over;
};

static inline void
tc_email__buf_init(struct tc_email__buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
    b->over = false;
}

static inline void
tc_email__buf_fini(struct tc_email__buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Appends n bytes; false (and nothing appended) when that would pass max. */
static inline bool
tc_email__buf_add(struct tc_email__buf *b, const void *p, size_t n)
{
    if (b->over || n > b->max - b->len) {
        b->over = true;
        return false;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        b->data = tc_xrealloc(b->data, cap);
        b->cap = cap;
    }
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

static inline bool
tc_email__buf_adds(struct tc_email__buf *b, const char *s)
{
    return tc_email__buf_add(b, s, strlen(s));
}

static inline bool
tc_email__buf_addc(struct tc_email__buf *b, char c)
{
    return tc_email__buf_add(b, &c, 1);
}

static inline bool __attribute__((format(printf, 2, 3)))
tc_email__buf_addf(struct tc_email__buf *b, const char *fmt, ...)
{
    char small[128];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->over = true;
        return false;
    }
    if ((size_t)n < sizeof(small)) {
        return tc_email__buf_add(b, small, (size_t)n);
    }
    char *big = tc_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    bool ok = tc_email__buf_add(b, big, (size_t)n);
    free(big);
    return ok;
}

/* Hands the text to the caller (never NULL, "" when empty) and resets b. */
static inline char *
tc_email__buf_take(struct tc_email__buf *b, size_t *len)
{
    char *p;

    if (b->data == NULL) {
        tc_email__buf_add(b, "", 0);
        if (b->data == NULL) {
            b->data = tc_xstrdup("");
        }
    }
    p = b->data;
    if (len != NULL) {
        *len = b->len;
    }
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

/* Length of the UTF-8 sequence starting at s[0] (at most n bytes), or 0 when
 * it is not valid: overlong forms, surrogates and code points past U+10FFFF
 * are refused, as RFC 3629 requires. */
static inline size_t
tc_email__utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned cp;

    if (c < 0x80) {
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
        return 0;
    }
    return len;
}

static inline bool
tc_email__utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = tc_email__utf8_seq(u + i, n - i);
        if (len == 0) {
            return false;
        }
        i += len;
    }
    return true;
}

/* The longest prefix of valid UTF-8 s of at most max bytes that ends on a
 * character boundary. */
static inline size_t
tc_email__utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max) {
        return n;
    }
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) {
        max--;
    }
    return max;
}

#endif
