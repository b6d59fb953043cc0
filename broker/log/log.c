/* tocsin — SPDX-License-Identifier: MIT
 *
 * The logfmt writer. Each line is built in a bounded stack buffer and written
 * with one write(2), so lines from librdkafka's threads never interleave.
 * Values longer than the buffer are cut and marked with "...", never inside an
 * escape sequence and with a cut quoted value still closed by its quote.
 */
#include "log/log.h"
#include "util/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum tc_log_level tc_log_min_level = TC_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "fatal"};

int
tc_log_parse_level(const char *name, enum tc_log_level *out)
{
    for (size_t i = 0; i < TC_ARRAY_SIZE(level_names); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum tc_log_level)i;
            return TC_OK;
        }
    }
    return TC_EINVAL;
}

void
tc_log_set_level(enum tc_log_level level)
{
    tc_log_min_level = level;
}

/* A line is at most this long; the rest of a longer one is dropped. */
#define LINE_MAX_BYTES 4096

struct line {
    char buf[LINE_MAX_BYTES];
    size_t len;
    bool cut;
    bool quoted; /* inside a quoted value: a cut must close the quote */
};

/* Keep room for the "...\"\n" that ends a cut line. */
#define TAIL_BYTES 5

static void
put(struct line *l, const char *s, size_t n)
{
    size_t room = sizeof(l->buf) - TAIL_BYTES - l->len;
    if (l->cut) {
        return;
    }
    if (n > room) {
        n = room;
        l->cut = true;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

/* Writes s whole or, at the bound, not at all: an escape sequence cut in half
 * would leave a lone backslash that escapes the "..." after it. */
static void
put_whole(struct line *l, const char *s, size_t n)
{
    if (!l->cut && n > sizeof(l->buf) - TAIL_BYTES - l->len) {
        l->cut = true;
    }
    put(l, s, n);
}

static void putf(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
putf(struct line *l, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0) {
        put_whole(l, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
    }
}

/* Writes a string value, quoted when it holds anything but safe characters.
 * Control characters, quotes and backslashes are escaped so a value can never
 * end the line or start a new key. */
static void
put_value(struct line *l, const char *s)
{
    if (l->cut) {
        return;
    }
    if (s == NULL) {
        put(l, "null", 4);
        return;
    }
    bool plain = s[0] != '\0';
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) {
            plain = false;
            break;
        }
    }
    if (plain) {
        put(l, s, strlen(s));
        return;
    }
    put(l, "\"", 1);
    l->quoted = !l->cut;
    for (const char *p = s; *p && !l->cut; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put_whole(l, e, 2);
        } else if (c == '\n') {
            put_whole(l, "\\n", 2);
        } else if (c < 0x20 || c == 0x7f) {
            putf(l, "\\x%02x", c);
        } else {
            /* A UTF-8 sequence goes whole, so a cut never leaves half a character. */
            size_t n = 1;
            while (c >= 0xc0 && n < 4 && ((unsigned char)p[n] & 0xc0) == 0x80) {
                n++;
            }
            put_whole(l, p, n);
            p += n - 1;
        }
    }
    put(l, "\"", 1);
    if (!l->cut) {
        l->quoted = false;
    }
}

void
tc_log_write(enum tc_log_level level, const char *sub, const char *msg, const struct tc_kv *kv,
             int nkv)
{
    struct line l = {.len = 0, .cut = false, .quoted = false};
    char ts[32];
    tc_rfc3339_now(ts);
    put(&l, "ts=", 3);
    put(&l, ts, strlen(ts));
    put(&l, " level=", 7);
    put_value(&l, level_names[level <= TC_LOG_FATAL ? level : TC_LOG_FATAL]);
    put(&l, " sub=", 5);
    put_value(&l, sub);
    put(&l, " msg=", 5);
    put_value(&l, msg);
    for (int i = 0; i < nkv; i++) {
        put(&l, " ", 1);
        put_value(&l, kv[i].key);
        put(&l, "=", 1);
        switch (kv[i].type) {
        case TC_KV_STR:
            put_value(&l, kv[i].v.s);
            break;
        case TC_KV_INT:
            putf(&l, "%lld", kv[i].v.i);
            break;
        case TC_KV_UINT:
            putf(&l, "%llu", kv[i].v.u);
            break;
        case TC_KV_DBL:
            putf(&l, "%.6g", kv[i].v.d);
            break;
        case TC_KV_BOOL:
            put_value(&l, kv[i].v.b ? "true" : "false");
            break;
        }
    }
    if (l.cut) {
        /* The cut value stays one well-formed value: `k=aaa...` or `k="a\"a..."`. */
        memcpy(l.buf + l.len, "...\"", l.quoted ? 4 : 3);
        l.len += l.quoted ? 4 : 3;
    }
    l.buf[l.len++] = '\n';
    /* One write per line; a short write to stderr is not worth a retry loop. */
    ssize_t w = write(STDERR_FILENO, l.buf, l.len);
    (void)w;
}
