/* tocsin — SPDX-License-Identifier: MIT
 *
 * Redis: the per-event Lua script (dedup, version order, seq, state, active
 * set, history stream, job hook, epoch), the follower that tails the history
 * stream for fan-out, and incident reads. hiredis async on the libuv loop
 * given at creation; every command has a uv timer as its timeout.
 * Two connections: one for commands, one for the blocking tail.
 * @loop main: every function and callback here runs on that loop.
 */
#ifndef TC_STORE_H
#define TC_STORE_H

#include "config/config.h"
#include "model/incident.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct tc_store;

#define TC_EPOCH_MAX 64
/* Longest text of a claim's lease end (a score: whole ms, '.', 11 digits). */
#define TC_STORE_LEASE_MAX 40

/* The answers of the gateways' store calls (webhooks.h, emails.h,
 * publish.h): status 0 with a borrowed compact JSON text / a count / a
 * pair of counts, or an error code with NULL / 0. */
typedef void (*tc_store_json_cb)(void *arg, int status, const char *json, size_t len);
typedef void (*tc_store_count_cb)(void *arg, int status, uint64_t n);
typedef void (*tc_store_pair_cb)(void *arg, int status, uint64_t a, uint64_t b);

/* Called when the command connection becomes usable (connected, script
 * loaded) or unusable (error, timeout, disconnect). The store reconnects by
 * itself with backoff. */
typedef void (*tc_store_ready_cb)(void *arg, bool ready);

struct tc_store *tc_store_new(uv_loop_t *loop, const struct tc_config *cfg,
                              tc_store_ready_cb ready_cb, void *arg);
/* Connects; failures are retried in the background. @returns 0. */
int tc_store_start(struct tc_store *s);
/* Disconnects; every pending callback runs once with TC_EIO before close_cb.
 * Memory is released before close_cb runs. */
void tc_store_close(struct tc_store *s, void (*close_cb)(void *arg), void *arg);
bool tc_store_ready(const struct tc_store *s);
/* True when a reply from Redis arrived within the last few seconds on either
 * connection (for /readyz). */
bool tc_store_reachable(const struct tc_store *s);

enum tc_store_outcome {
    TC_STORE_ACCEPTED,
    TC_STORE_DUPLICATE, /* event_id seen within dedup.ttl: nothing changed */
    TC_STORE_STALE,     /* version <= the incident's current one: nothing changed */
};

struct tc_store_result {
    enum tc_store_outcome outcome;
    uint64_t seq; /* the new seq when accepted */
    char epoch[TC_EPOCH_MAX];
};

/* status is 0 (res is set) or TC_EIO / TC_ETIMEDOUT (res is NULL). On a
 * failure the store drops its connection, so every later pending command
 * fails too and ready_cb(false) runs; nothing half-done is left behind.
 * TC_EAGAIN (at once, nothing sent, connection kept) when too many commands
 * are in flight: pause and retry. */
typedef void (*tc_store_apply_cb)(void *arg, int status, const struct tc_store_result *res);

/* Runs the per-event script for ev. @borrows ev for the duration of the call
 * only (the command is serialised before return). cb runs exactly once,
 * possibly before this returns when the store is not ready. */
void tc_store_apply(struct tc_store *s, const struct tc_event *ev, tc_store_apply_cb cb, void *arg);

/* One update of the history stream. Strings are borrowed for the callback. */
struct tc_history_entry {
    uint64_t seq;
    const char *incident_id;
    const char *state; /* incident state JSON (with started_at, updated_at) */
    size_t state_len;
    const char *match; /* match view JSON, see tc_match_parse */
    size_t match_len;
    bool ends;
};

/* An active incident in a load. */
struct tc_active_incident {
    const char *incident_id;
    const char *state;
    size_t state_len;
    const char *match;
    size_t match_len;
};

struct tc_store_follow_cbs {
    /* A full picture, taken atomically: epoch, the current seq, every active
     * incident, and the last up to `history` updates (oldest first, their seq
     * contiguous and ending at seq). Called at start, and again whenever the
     * follower cannot continue exactly (epoch changed, a gap in the stream). */
    void (*load)(void *arg, const char *epoch, uint64_t seq,
                 const struct tc_active_incident *active, size_t nactive,
                 const struct tc_history_entry *history, size_t nhistory);
    /* Updates after the last load or batch, contiguous in seq, in order. */
    void (*entries)(void *arg, const struct tc_history_entry *entries, size_t n);
    void *arg;
};

/* Starts following the history stream: load, then tail with XREAD BLOCK.
 * history is how many recent updates each load brings (the replay cap).
 * On disconnect it reconnects and continues from the last seq it delivered,
 * or loads again if it cannot. */
void tc_store_follow(struct tc_store *s, const struct tc_store_follow_cbs *cbs, size_t history);

/* GET /v1/incidents/{id}: the incident's state and its updates, newest first
 * (at most 100). status is 0, TC_ENOENT, TC_EIO, TC_ETIMEDOUT or TC_EAGAIN. json is a
 * borrowed compact object
 * {"incident":{...},"updates":[{"seq":N,"incident":{...}},...]}. */
typedef void (*tc_store_incident_cb)(void *arg, int status, const char *json, size_t len);

/* Ended incidents kept for GET /v1/history (the newest by seq). */
#define TC_STORE_ENDED_KEPT 200
/* The last `count` (<= TC_STORE_ENDED_KEPT) ended incidents, the last ended
 * first: json is [{"incident":{state},"match":{match view}}, ...] (the view
 * for tc_match_parse, so a caller can filter). */
void tc_store_ended(struct tc_store *s, unsigned count, tc_store_json_cb cb, void *arg);
void tc_store_get_incident(struct tc_store *s, const char *incident_id, tc_store_incident_cb cb,
                           void *arg);

#endif
