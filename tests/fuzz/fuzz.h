/* tocsin — SPDX-License-Identifier: MIT
 *
 * Shared by the fuzz targets of tests/fuzz: the libFuzzer entry point, an
 * invariant check that also holds in release builds (assert() is compiled out
 * there by NDEBUG), and a NUL-terminated copy of the input. Header-only and
 * static inline, so each target stays one file plus this one.
 */
#ifndef TC_FUZZ_H
#define TC_FUZZ_H

#include "util/util.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Called once per input by libFuzzer or by replay_main.c. Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void __attribute__((noreturn, format(printf, 3, 4)))
fuzz_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s:%d: invariant broken: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    /* abort() is what libFuzzer and the replay driver both report as a
     * crash, with the input that caused it. */
    abort();
}

/* A broken invariant is a crash, so the fuzzer keeps the input as a
 * reproducer. FUZZ_CHECKF adds a printf-style detail. */
#define FUZZ_CHECK(cond)                                \
    do {                                                \
        if (!(cond)) {                                  \
            fuzz_fail(__FILE__, __LINE__, "%s", #cond); \
        }                                               \
    } while (0)
#define FUZZ_CHECKF(cond, fmt, ...)                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fuzz_fail(__FILE__, __LINE__, "%s: " fmt, #cond, __VA_ARGS__); \
        }                                                                  \
    } while (0)

/* True for min..max characters of [A-Za-z0-9._:-]: the shape of incident,
 * subscription and subscriber ids, written again here as the reference. */
static inline bool
fuzz_is_id(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);
    if (n < min || n > max) {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("._:-", *s) != NULL)) {
            return false;
        }
    }
    return true;
}

/* @returns new: data[0..size) and a NUL (the text stops at an inner NUL). */
static inline char *
fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = tc_xmalloc(size + 1);
    if (size > 0) {
        memcpy(s, data, size);
    }
    s[size] = '\0';
    return s;
}

#endif
