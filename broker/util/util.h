/* tocsin — SPDX-License-Identifier: MIT
 *
 * Small shared pieces every layer may use: allocation that aborts on out of
 * memory, error codes and the fixed-size error detail, monotonic and wall time,
 * base64url.
 * No I/O, no loops, no library but libc.
 */
#ifndef TC_UTIL_H
#define TC_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TC_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define TC_UNUSED(x)     ((void)(x))

/* Return codes: 0 or a count on success, a negative TC_E* on failure. */
enum {
    TC_OK = 0,
    TC_EINVAL = -1,  /* input breaks a rule; detail in struct tc_error */
    TC_ETOOBIG = -2, /* input is over its bound */
    TC_ENOENT = -3,  /* no such thing */
    TC_EIO = -4,     /* a peer (Redis, Kafka, socket) failed */
    TC_ETIMEDOUT = -5,
    TC_EAGAIN = -6, /* try again later (a bound was reached) */
    TC_ESTATE = -7, /* not possible in the current state */
};

/* Human detail for a failure, filled by the callee when the caller passes one. */
struct tc_error {
    char text[256];
};

/* Sets err->text (if err is not NULL) and returns code, so callers can write
 * `return tc_error_set(err, TC_EINVAL, "...", ...)`. */
int tc_error_set(struct tc_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *tc_strerror(int code);

/* Out of memory aborts with a message (as Redis zmalloc): there is no sane
 * partial recovery for a broker, and the supervisor restarts us. */
void *tc_xmalloc(size_t n);
void *tc_xcalloc(size_t count, size_t n);
void *tc_xrealloc(void *p, size_t n);
char *tc_xstrdup(const char *s);
char *tc_xstrndup(const char *s, size_t n);
char *tc_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Frees items[0..n) and items (which may be NULL). */
void tc_free_strings(char **items, size_t n);

/* Milliseconds from a monotonic clock (for timeouts and latency). */
uint64_t tc_now_ms(void);
/* Microseconds since the epoch (wall clock, for timestamps that leave us). */
uint64_t tc_wall_us(void);
/* Formats the wall clock now as RFC 3339 UTC with milliseconds:
 * "2026-11-25T12:00:00.123Z". buf must hold 32 bytes. */
void tc_rfc3339_now(char buf[32]);

/* Parses a duration such as "250ms", "10s", "5m", "2h", "1d" or a plain number
 * of seconds into milliseconds. Returns 0 or TC_EINVAL. */
int tc_parse_duration_ms(const char *s, uint64_t *out_ms);

/* Fills buf with n random bytes from the kernel. Returns 0 or TC_EIO. */
int tc_random_bytes(void *buf, size_t n);

/* Constant-time comparison of two strings (for tokens). */
bool tc_str_equal_ct(const char *a, const char *b);

/* Unpadded base64url (RFC 4648 §5), the alphabet of tokens that go into URLs
 * as they are (email links, client tokens). TC_B64URL_LEN(n) is the text
 * length of n bytes. */
#define TC_B64URL_LEN(n) (((n)*4 + 2) / 3)
/* Writes the text of in[0..n) at out (TC_B64URL_LEN(n) bytes, no NUL).
 * @returns the characters written. */
size_t tc_b64url_encode(const unsigned char *in, size_t n, char *out);
/* Decodes in[0..n); refuses padding, other alphabets and non-zero leftover
 * bits, so every byte string has exactly one text. out must hold n * 3 / 4
 * bytes. @returns the byte count or -1. */
long tc_b64url_decode(const char *in, size_t n, unsigned char *out);

#endif
