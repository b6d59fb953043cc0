/* tocsin — SPDX-License-Identifier: MIT
 *
 * A bounded FIFO of frame references, one per session (WebSocket or SSE).
 * It starts empty and grows by doubling up to its bound, so idle sessions
 * cost a few bytes; at the bound push refuses and the session closes.
 * Pure: no I/O. @loop the session's.
 */
#ifndef TC_MODEL_FRAME_QUEUE_H
#define TC_MODEL_FRAME_QUEUE_H

#include "model/frame.h"

#include <stdint.h>

struct tc_frame_queue {
    struct tc_frame **q; /* q[(head + i) % cap], i < len */
    uint32_t cap, head, len;
    uint32_t max; /* the bound */
};

void tc_frame_queue_init(struct tc_frame_queue *fq, uint32_t max);
/* Takes a new reference to f. @returns 0, or TC_EAGAIN at the bound. */
int tc_frame_queue_push(struct tc_frame_queue *fq, struct tc_frame *f);
/* @returns the oldest frame, still queued (no reference taken), or NULL. */
static inline struct tc_frame *
tc_frame_queue_peek(const struct tc_frame_queue *fq)
{
    return fq->len ? fq->q[fq->head] : NULL;
}
/* @returns the oldest frame (the caller now owns its reference) or NULL. */
struct tc_frame *tc_frame_queue_pop(struct tc_frame_queue *fq);
/* Drops every queued frame and frees the ring. @returns how many were dropped. */
uint32_t tc_frame_queue_clear(struct tc_frame_queue *fq);

#endif
