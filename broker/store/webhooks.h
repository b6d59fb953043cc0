/* tocsin — SPDX-License-Identifier: MIT
 *
 * The Redis side of the webhook gateway (DESIGN §5, §8.3): the endpoint
 * registry (P wh:endpoints) and the durable job queue (one FIFO per endpoint
 * and incident, only its head due in P wh:due, leased by claim). The per-event
 * script enqueues the jobs; these functions claim, complete and administer.
 * @loop main: every function and callback here runs on the store's loop.
 */
#ifndef TC_STORE_WEBHOOKS_H
#define TC_STORE_WEBHOOKS_H

#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

/* Most jobs one claim returns; a larger max is cut to it. */
#define TC_STORE_WH_CLAIM_MAX 256
/* How long the previous secret keeps signing after a rotation, seconds. */
#define TC_STORE_WH_OLD_SECRET_S (24 * 3600)
/* Attempt records kept per endpoint (LTRIM). */
#define TC_STORE_WH_ATTEMPTS_KEPT 50

/* One claimed delivery: the head job of one (endpoint, incident) FIFO.
 * Strings are borrowed for the callback. */
struct tc_store_wh_job {
    const char *member; /* "<endpoint id>|<incident id>", the P wh:due member */
    const char *job_id; /* "<seq>-<endpoint id>": the webhook-id */
    const char *endpoint_id;
    const char *incident_id;
    uint64_t seq;
    const char *body; /* {"type":"incident.updated","seq":N,"incident":{...}} */
    size_t body_len;
    uint64_t attempts;      /* attempts made before this one */
    uint64_t created_at_ms; /* wall clock, when the update was accepted */
    const char *endpoint;   /* the endpoint JSON (secrets newest first) */
    size_t endpoint_len;
};

/* status 0 with n jobs (n may be 0), or TC_EIO / TC_ETIMEDOUT / TC_EAGAIN
 * with jobs NULL. */
typedef void (*tc_store_wh_claim_cb)(void *arg, int status, const struct tc_store_wh_job *jobs,
                                     size_t n);
/* status 0 with a borrowed compact JSON text, or TC_ENOENT / TC_EINVAL /
 * TC_EIO / TC_ETIMEDOUT / TC_EAGAIN with json NULL. */
typedef tc_store_json_cb tc_store_wh_json_cb;
/* status 0 with a count (see each function), or an error code and 0. */
typedef tc_store_count_cb tc_store_wh_count_cb;
/* status 0 with the jobs queued in Redis and the FIFO heads due now and not
 * leased, or an error code and zeros. */
typedef tc_store_pair_cb tc_store_wh_stats_cb;

enum tc_store_wh_outcome {
    TC_STORE_WH_DELIVERED, /* 2xx: the next job of the FIFO becomes due now */
    TC_STORE_WH_RETRY,     /* failed: due again at next_due_ms */
    TC_STORE_WH_DEAD,      /* out of retries: to the dead list, next job due now */
};

/* Takes up to max (<= TC_STORE_WH_CLAIM_MAX) due FIFO heads and leases them
 * until now_ms + lease_ms (wall clock ms; the lease end is a score unique to
 * this claim, a fraction of a ms under it). When the claim's reply is lost
 * (TC_ETIMEDOUT, TC_EIO after it was sent), the next claims first make
 * whatever it leased due again, until its lease ends. Every callback here
 * runs exactly once, possibly before the function returns. */
void tc_store_wh_claim(struct tc_store *s, uint64_t now_ms, uint64_t lease_ms, size_t max,
                       tc_store_wh_claim_cb cb, void *arg);
/* Records the outcome of one attempt of job_id; attempt_json (an object; its
 * "status" and "error" become the job's last_status / last_error on retry)
 * is kept in the endpoint's last attempts either way. n is 1 when applied,
 * 2 when applied and this failure disabled the endpoint (it has failed for
 * longer than webhook.disable_after; a delivery ends a failing streak), 0
 * when the job is no longer the head of its FIFO (a stale lease). */
void tc_store_wh_complete(struct tc_store *s, const char *job_id, enum tc_store_wh_outcome outcome,
                          uint64_t next_due_ms, const char *attempt_json, tc_store_wh_count_cb cb,
                          void *arg);

/* Creates an endpoint from request_json {"url":..., "filter":{...},
 * "description":...} (url required, http(s); filter as tc_filter_from_json)
 * with the caller's id and secret. json is the endpoint. TC_EINVAL for a bad
 * request (nothing written), TC_ESTATE when the id exists. */
void tc_store_wh_create(struct tc_store *s, const char *id, const char *request_json,
                        const char *secret, tc_store_wh_json_cb cb, void *arg);
/* json is an array of every endpoint (in no particular order). */
void tc_store_wh_list(struct tc_store *s, tc_store_wh_json_cb cb, void *arg);
/* json is {"endpoint":{...},"attempts":[newest first, <= 50],"pending":N,"dead":N,
 * "dead_messages":[{"webhook_id","seq","incident_id","attempts","created_at_ms",
 * "last_status","last_error"}, newest first, <= 50]}. */
void tc_store_wh_get(struct tc_store *s, const char *id, tc_store_wh_json_cb cb, void *arg);
/* Deletes the endpoint, its queued and dead jobs and its attempts. n = 1, or
 * TC_ENOENT. */
void tc_store_wh_delete(struct tc_store *s, const char *id, tc_store_wh_count_cb cb, void *arg);
/* Moves the dead jobs back to the tail of their FIFOs with attempts 0,
 * except those superseded by a newer update of their incident (delivered or
 * waiting), which are dropped: order per incident holds (DESIGN §8.3).
 * json is {"replayed":N,"superseded":M}; TC_ENOENT for an unknown endpoint,
 * TC_ESTATE for a disabled one. */
void tc_store_wh_replay(struct tc_store *s, const char *id, tc_store_wh_json_cb cb, void *arg);
/* Puts secret first, keeps the previous one until now + 24 h and drops any
 * older. json is the endpoint. */
void tc_store_wh_rotate(struct tc_store *s, const char *id, const char *secret,
                        tc_store_wh_json_cb cb, void *arg);
/* Marks the endpoint disabled with reason: it gets no new jobs, and its
 * queued ones go to the dead list when claimed. A NULL or empty reason
 * enables it again (and starts a new failing streak). json is the endpoint. */
void tc_store_wh_disable(struct tc_store *s, const char *id, const char *reason,
                         tc_store_wh_json_cb cb, void *arg);
/* Samples the queue for the depth gauges. */
void tc_store_wh_stats(struct tc_store *s, uint64_t now_ms, tc_store_wh_stats_cb cb, void *arg);

#endif
