/* tocsin — SPDX-License-Identifier: MIT
 *
 * The bounded per-session frame FIFO (see frame_queue.h).
 */
#include "model/frame_queue.h"
#include "util/util.h"

#include <stdlib.h>

void
tc_frame_queue_init(struct tc_frame_queue *fq, uint32_t max)
{
    fq->q = NULL;
    fq->cap = fq->head = fq->len = 0;
    fq->max = max;
}

int
tc_frame_queue_push(struct tc_frame_queue *fq, struct tc_frame *f)
{
    if (fq->len == fq->cap) {
        if (fq->cap >= fq->max) {
            return TC_EAGAIN;
        }
        uint32_t cap = fq->cap ? fq->cap * 2 : 4;
        if (cap > fq->max) {
            cap = fq->max;
        }
        struct tc_frame **q = tc_xmalloc(cap * sizeof(*q));
        for (uint32_t i = 0; i < fq->len; i++) {
            q[i] = fq->q[(fq->head + i) % fq->cap];
        }
        free(fq->q);
        fq->q = q;
        fq->cap = cap;
        fq->head = 0;
    }
    fq->q[(fq->head + fq->len) % fq->cap] = tc_frame_ref(f);
    fq->len++;
    return TC_OK;
}

struct tc_frame *
tc_frame_queue_pop(struct tc_frame_queue *fq)
{
    if (fq->len == 0) {
        return NULL;
    }
    struct tc_frame *f = fq->q[fq->head];
    fq->head = (fq->head + 1) % fq->cap;
    fq->len--;
    if (fq->len == 0 && fq->cap > 16) {
        /* Give back a ring that a burst grew, so idle sessions stay small. */
        free(fq->q);
        fq->q = NULL;
        fq->cap = fq->head = 0;
    }
    return f;
}

uint32_t
tc_frame_queue_clear(struct tc_frame_queue *fq)
{
    uint32_t n = fq->len;
    for (uint32_t i = 0; i < fq->len; i++) {
        tc_frame_unref(fq->q[(fq->head + i) % fq->cap]);
    }
    free(fq->q);
    fq->q = NULL;
    fq->cap = fq->head = fq->len = 0;
    return n;
}
