/* tocsin — SPDX-License-Identifier: MIT
 *
 * logfmt logging to stderr from typed key/value pairs: one line per event.
 * The level is checked before any argument is built; string values are
 * escaped here, so untrusted input cannot forge a line or a key.
 * Thread-safe (one write(2) per line); librdkafka and lws logs come in here.
 */
#ifndef TC_LOG_H
#define TC_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum tc_log_level {
    TC_LOG_DEBUG = 0,
    TC_LOG_INFO = 1,
    TC_LOG_WARN = 2,
    TC_LOG_ERROR = 3,
    TC_LOG_FATAL = 4,
};

enum tc_kv_type { TC_KV_STR, TC_KV_INT, TC_KV_UINT, TC_KV_DBL, TC_KV_BOOL };

struct tc_kv {
    const char *key;
    enum tc_kv_type type;
    union {
        const char *s;
        long long i;
        unsigned long long u;
        double d;
        bool b;
    } v;
};

#define TC_S(k, val) ((struct tc_kv){.key = (k), .type = TC_KV_STR, .v.s = (val)})
#define TC_I(k, val) ((struct tc_kv){.key = (k), .type = TC_KV_INT, .v.i = (long long)(val)})
#define TC_U(k, val) \
    ((struct tc_kv){.key = (k), .type = TC_KV_UINT, .v.u = (unsigned long long)(val)})
#define TC_D(k, val) ((struct tc_kv){.key = (k), .type = TC_KV_DBL, .v.d = (double)(val)})
#define TC_B(k, val) ((struct tc_kv){.key = (k), .type = TC_KV_BOOL, .v.b = (bool)(val)})

extern enum tc_log_level tc_log_min_level;

/* Parses "debug", "info", "warn", "error". Returns 0 or TC_EINVAL. */
int tc_log_parse_level(const char *name, enum tc_log_level *out);
void tc_log_set_level(enum tc_log_level level);

/* Writes one line: ts=... level=... sub=<subsystem> msg="..." k=v ... */
void tc_log_write(enum tc_log_level level, const char *sub, const char *msg, const struct tc_kv *kv,
                  int nkv);

/* tc_log(TC_LOG_INFO, "ingest", "event accepted", TC_S("incident", id), TC_U("seq", s)); */
#define tc_log(level, sub, msg, ...)                                         \
    do {                                                                     \
        if ((level) >= tc_log_min_level) {                                   \
            const struct tc_kv tc__kv[] = {TC_S(NULL, NULL), ##__VA_ARGS__}; \
            tc_log_write((level), (sub), (msg), tc__kv + 1,                  \
                         (int)(sizeof(tc__kv) / sizeof(tc__kv[0])) - 1);     \
        }                                                                    \
    } while (0)

#define tc_debug(sub, msg, ...) tc_log(TC_LOG_DEBUG, sub, msg, ##__VA_ARGS__)
#define tc_info(sub, msg, ...)  tc_log(TC_LOG_INFO, sub, msg, ##__VA_ARGS__)
#define tc_warn(sub, msg, ...)  tc_log(TC_LOG_WARN, sub, msg, ##__VA_ARGS__)
#define tc_err(sub, msg, ...)   tc_log(TC_LOG_ERROR, sub, msg, ##__VA_ARGS__)

#endif
