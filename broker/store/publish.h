/* tocsin — SPDX-License-Identifier: MIT
 *
 * What the publishing API asks Redis: the outcome of an event it produced.
 * The per-event script keeps, for dedup.ttl, one key per event_id whose
 * value says what became of it: the seq it was accepted with, or 0 when it
 * was stale (an event of the same or a newer version of its incident was
 * accepted first: a version race).
 * @loop main.
 */
#ifndef TC_STORE_PUBLISH_H
#define TC_STORE_PUBLISH_H

#include "store/store.h"

#include <stdint.h>

/* status 0 with seq > 0 (accepted) or seq 0 (stale); TC_ENOENT when the
 * event has not been applied (yet); or TC_EIO / TC_ETIMEDOUT / TC_EAGAIN. */
typedef tc_store_count_cb tc_store_outcome_cb;
void tc_store_event_outcome(struct tc_store *s, const char *event_id, tc_store_outcome_cb cb,
                            void *arg);

#endif
