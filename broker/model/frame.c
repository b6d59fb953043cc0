/* tocsin — SPDX-License-Identifier: MIT
 *
 * Encoded server messages (DESIGN §4) as immutable refcounted frames. Each
 * encoder writes its JSON by concatenation straight into the frame's own
 * buffer (the incident state is already compact JSON, so it is copied, not
 * re-encoded). Pure: no I/O; refcounts are not atomic, one loop owns a frame.
 * It does not bound frame sizes: callers bound what they put in.
 */
#include "model/frame.h"
#include "util/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A frame being built: f->len is the payload written so far, cap the payload
 * bytes allocated (the NUL after it is always allocated too). */
struct builder {
    struct tc_frame *f;
    size_t cap;
};

static struct tc_frame *
frame_alloc(size_t cap)
{
    if (cap > SIZE_MAX - sizeof(struct tc_frame) - TC_FRAME_HEADROOM - 1) {
        abort(); /* no frame can be this big: the same as out of memory */
    }
    struct tc_frame *f = tc_xmalloc(sizeof(struct tc_frame) + TC_FRAME_HEADROOM + cap + 1);
    f->refs = 1;
    f->len = 0;
    memset(f->data, 0, TC_FRAME_HEADROOM);
    return f;
}

static void
put(struct builder *b, const char *s, size_t n)
{
    size_t len = b->f->len;
    if (n > SIZE_MAX / 4 - len) {
        abort(); /* no frame can be this big: the same as out of memory */
    }
    if (n > b->cap - len) {
        size_t cap = b->cap * 2 > len + n ? b->cap * 2 : len + n;
        b->f = tc_xrealloc(b->f, sizeof(struct tc_frame) + TC_FRAME_HEADROOM + cap + 1);
        b->cap = cap;
    }
    memcpy(tc_frame_payload(b->f) + len, s, n);
    b->f->len = len + n;
}

static void
puts_(struct builder *b, const char *s)
{
    put(b, s, strlen(s));
}

static void
put_u64(struct builder *b, uint64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%" PRIu64, v);
    put(b, num, (size_t)n);
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or 0 when the byte at s starts none. */
static size_t
utf8_seq(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (avail < n || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
    }
    return n;
}

/* Writes s as a JSON string. Strings here may come from clients (a sub id
 * from a query string), so bytes that are not UTF-8 become U+FFFD and the
 * frame is always valid JSON. NULL is written as "". */
static void
put_jstr(struct builder *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
    size_t n = strlen((const char *)p);
    size_t run = 0; /* bytes at p that are copied as they are */

    put(b, "\"", 1);
    while (run < n) {
        unsigned char c = p[run];
        const char *esc = NULL;
        char u[7];
        size_t seq = utf8_seq(p + run, n - run);
        if (seq > 1 || (seq == 1 && c >= 0x20 && c != '"' && c != '\\')) {
            run += seq;
            continue;
        }
        put(b, (const char *)p, run);
        if (seq == 0) {
            esc = "\\ufffd";
        } else if (c == '"') {
            esc = "\\\"";
        } else if (c == '\\') {
            esc = "\\\\";
        } else if (c == '\n') {
            esc = "\\n";
        } else if (c == '\r') {
            esc = "\\r";
        } else if (c == '\t') {
            esc = "\\t";
        } else {
            u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0';
            u[4] = hex[c >> 4], u[5] = hex[c & 15], u[6] = '\0';
            esc = u;
        }
        puts_(b, esc);
        p += run + 1;
        n -= run + 1;
        run = 0;
    }
    put(b, (const char *)p, run);
    put(b, "\"", 1);
}

static void
start(struct builder *b, size_t hint, const char *type)
{
    b->cap = hint;
    b->f = frame_alloc(hint);
    puts_(b, "{\"type\":\"");
    puts_(b, type);
    put(b, "\"", 1);
}

/* ,"key": */
static void
key(struct builder *b, const char *k)
{
    puts_(b, ",\"");
    puts_(b, k);
    puts_(b, "\":");
}

static struct tc_frame *
finish(struct builder *b)
{
    tc_frame_payload(b->f)[b->f->len] = '\0';
    return b->f;
}

struct tc_frame *
tc_frame_new(const char *payload, size_t len)
{
    struct tc_frame *f = frame_alloc(len);
    if (len > 0) {
        memcpy(tc_frame_payload(f), payload, len);
    }
    f->len = len;
    tc_frame_payload(f)[len] = '\0';
    return f;
}

struct tc_frame *
tc_frame_ref(struct tc_frame *f)
{
    if (f != NULL) {
        f->refs++;
    }
    return f;
}

void
tc_frame_unref(struct tc_frame *f)
{
    if (f == NULL) {
        return;
    }
    if (f->refs == 0) {
        abort(); /* an unref too many: a use after free is next */
    }
    if (--f->refs == 0) {
        free(f);
    }
}

/* "sub" is left out when sub is NULL; every caller with a session has one. */
static void
put_head(struct builder *b, const char *sub, const char *epoch, uint64_t seq)
{
    if (sub != NULL) {
        key(b, "sub");
        put_jstr(b, sub);
    }
    key(b, "epoch");
    put_jstr(b, epoch);
    key(b, "seq");
    put_u64(b, seq);
}

struct tc_frame *
tc_frame_update(const char *sub, const char *epoch, uint64_t seq, const char *state,
                size_t state_len)
{
    struct builder b;
    start(&b, state_len + 128, "update");
    put_head(&b, sub, epoch, seq);
    key(&b, "incident");
    put(&b, state, state_len);
    put(&b, "}", 1);
    return finish(&b);
}

struct tc_frame *
tc_frame_snapshot(const char *sub, const char *epoch, uint64_t seq, int reset,
                  const char *const *states, const size_t *lens, size_t n)
{
    struct builder b;
    size_t hint = 160;
    for (size_t i = 0; i < n; i++) {
        hint += lens[i] + 1;
    }
    start(&b, hint, "snapshot");
    put_head(&b, sub, epoch, seq);
    if (reset) {
        key(&b, "reset");
        puts_(&b, "true");
    }
    key(&b, "incidents");
    put(&b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            put(&b, ",", 1);
        }
        put(&b, states[i], lens[i]);
    }
    puts_(&b, "]}");
    return finish(&b);
}

struct tc_frame *
tc_frame_welcome(const char *epoch, uint64_t seq, unsigned heartbeat_s)
{
    struct builder b;
    start(&b, 96, "welcome");
    put_head(&b, NULL, epoch, seq);
    key(&b, "heartbeat_s");
    put_u64(&b, heartbeat_s);
    put(&b, "}", 1);
    return finish(&b);
}

struct tc_frame *
tc_frame_heartbeat(const char *epoch, uint64_t seq)
{
    struct builder b;
    start(&b, 80, "heartbeat");
    put_head(&b, NULL, epoch, seq);
    put(&b, "}", 1);
    return finish(&b);
}

struct tc_frame *
tc_frame_error(const char *epoch, const char *code, const char *message)
{
    struct builder b;
    start(&b, 96 + (message != NULL ? strlen(message) : 0), "error");
    key(&b, "code");
    put_jstr(&b, code);
    key(&b, "message");
    put_jstr(&b, message);
    if (epoch != NULL) {
        key(&b, "epoch");
        put_jstr(&b, epoch);
    }
    put(&b, "}", 1);
    return finish(&b);
}

/* Copies an SSE field value, dropping CR and LF: either would end the line
 * and let the rest forge another field. */
static void
put_sse_field(struct builder *b, const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        if (*s != '\r' && *s != '\n') {
            put(b, s, 1);
        }
    }
}

struct tc_frame *
tc_frame_sse(const char *event, const char *epoch, uint64_t seq, const struct tc_frame *json)
{
    struct builder b;
    const char *p = (const char *)json->data + TC_FRAME_HEADROOM;
    size_t n = json->len;

    b.cap = n + 64 + (epoch != NULL ? strlen(epoch) : 0) + (event != NULL ? strlen(event) : 0);
    b.f = frame_alloc(b.cap);
    puts_(&b, "id: ");
    put_sse_field(&b, epoch);
    put(&b, ":", 1);
    put_u64(&b, seq);
    puts_(&b, "\nevent: ");
    put_sse_field(&b, event);
    puts_(&b, "\ndata: ");
    /* Compact JSON is one line; should a payload hold a line break anyway,
     * each line becomes its own data: field, which SSE joins back with \n. */
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\r' && p[i] != '\n') {
            continue;
        }
        put(&b, p + run, i - run);
        if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') {
            i++;
        }
        puts_(&b, "\ndata: ");
        run = i + 1;
    }
    put(&b, p + run, n - run);
    puts_(&b, "\n\n");
    return finish(&b);
}
