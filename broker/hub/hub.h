/* tocsin — SPDX-License-Identifier: MIT
 *
 * The hub: this node's view of the stream (epoch, seq, active incidents, a
 * ring of the last replay_cap updates) and the registry of subscriptions.
 * It turns each history entry into frames, encoded once per (encoding, sub
 * id), and pushes them to every matching subscription's sink in seq order.
 * It knows no sockets: ws/ and http/ (SSE) implement sinks.
 * @loop main.
 */
#ifndef TC_HUB_H
#define TC_HUB_H

#include "config/config.h"
#include "model/filter.h"
#include "model/frame.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

struct tc_hub;

enum tc_hub_encoding {
    TC_HUB_ENC_WS,  /* the JSON message as is */
    TC_HUB_ENC_SSE, /* the JSON message in an SSE event */
};

struct tc_hub_sink;
struct tc_hub_sink_ops {
    /* Queues f for sending. @borrows f (take a ref to keep it). Returns 0, or
     * TC_EAGAIN when the sink's bounded queue is full: the sink then closes
     * itself (1013) and ignores later pushes. */
    int (*push)(struct tc_hub_sink *sink, struct tc_frame *f);
};

/* Embedded in a session; the hub never frees it. */
struct tc_hub_sink {
    const struct tc_hub_sink_ops *ops;
    enum tc_hub_encoding enc;
};

struct tc_hub_sub;

struct tc_hub *tc_hub_new(const struct tc_config *cfg);
/* Every subscription must be gone before. */
void tc_hub_free(struct tc_hub *hub);

/* Store follower callbacks (see struct tc_store_follow_cbs). */
void tc_hub_load(void *hub, const char *epoch, uint64_t seq,
                 const struct tc_active_incident *active, size_t nactive,
                 const struct tc_history_entry *history, size_t nhistory);
void tc_hub_entries(void *hub, const struct tc_history_entry *entries, size_t n);

bool tc_hub_loaded(const struct tc_hub *hub);
const char *tc_hub_epoch(const struct tc_hub *hub);
uint64_t tc_hub_seq(const struct tc_hub *hub);

enum tc_resume {
    TC_RESUME_NONE,  /* no since: a plain snapshot was sent */
    TC_RESUME_EXACT, /* missed updates were replayed */
    TC_RESUME_RESET, /* a snapshot with "reset":true was sent */
};

/* Registers a subscription and, before returning, pushes its snapshot (no
 * since, or a resume that cannot be served exactly: reset) or the replay of
 * the updates after since. @takes filter (its contents; *filter is zeroed).
 * epoch may be NULL. @returns new subscription, owned by the caller. */
struct tc_hub_sub *tc_hub_subscribe(struct tc_hub *hub, struct tc_hub_sink *sink, const char *id,
                                    struct tc_filter *filter, bool has_since, uint64_t since,
                                    const char *epoch, enum tc_resume *resume);
void tc_hub_unsubscribe(struct tc_hub *hub, struct tc_hub_sub *sub);
const char *tc_hub_sub_id(const struct tc_hub_sub *sub);

/* The active incidents matching filter as {"epoch":E,"seq":N,"incidents":[...]}.
 * @returns new text, caller frees. */
char *tc_hub_active_json(const struct tc_hub *hub, const struct tc_filter *filter, size_t *len);

#endif
