/* tocsin — SPDX-License-Identifier: MIT
 *
 * Encoded server messages (DESIGN §4) as immutable refcounted frames: an
 * update is encoded once and the same frame is queued to every session that
 * gets it. Pure: no I/O. Frames are owned by one loop (refcounts are not atomic).
 */
#ifndef TC_MODEL_FRAME_H
#define TC_MODEL_FRAME_H

#include <stddef.h>
#include <stdint.h>

/* Room before the payload for the WebSocket header; ws/ asserts LWS_PRE fits. */
#define TC_FRAME_HEADROOM 16

struct tc_frame {
    unsigned refs;
    size_t len;           /* payload bytes */
    unsigned char data[]; /* TC_FRAME_HEADROOM bytes, then the payload, then a NUL */
};

/* @returns new frame (refs = 1) holding a copy of payload. */
struct tc_frame *tc_frame_new(const char *payload, size_t len);
struct tc_frame *tc_frame_ref(struct tc_frame *f);
void tc_frame_unref(struct tc_frame *f);
static inline char *
tc_frame_payload(struct tc_frame *f)
{
    return (char *)f->data + TC_FRAME_HEADROOM;
}

/* {"type":"update","sub":SUB,"epoch":E,"seq":N,"incident":STATE}. state is
 * compact JSON text and is copied in verbatim. @returns new. */
struct tc_frame *tc_frame_update(const char *sub, const char *epoch, uint64_t seq,
                                 const char *state, size_t state_len);
/* {"type":"snapshot","sub":SUB,"epoch":E,"seq":N,"incidents":[S1,S2,...]}
 * plus "reset":true when reset. @returns new. */
struct tc_frame *tc_frame_snapshot(const char *sub, const char *epoch, uint64_t seq, int reset,
                                   const char *const *states, const size_t *lens, size_t n);
/* {"type":"welcome","epoch":E,"seq":N,"heartbeat_s":H}. @returns new. */
struct tc_frame *tc_frame_welcome(const char *epoch, uint64_t seq, unsigned heartbeat_s);
/* {"type":"heartbeat","epoch":E,"seq":N}. @returns new. */
struct tc_frame *tc_frame_heartbeat(const char *epoch, uint64_t seq);
/* {"type":"error","code":CODE,"message":MSG} (+ "epoch"). @returns new. */
struct tc_frame *tc_frame_error(const char *epoch, const char *code, const char *message);
/* An SSE event: "id: E:N\nevent: NAME\ndata: JSON\n\n" where JSON is the
 * payload of a WebSocket frame (one line). @returns new. */
struct tc_frame *tc_frame_sse(const char *event, const char *epoch, uint64_t seq,
                              const struct tc_frame *json);

#endif
