/* tocsin — SPDX-License-Identifier: MIT
 *
 * The Redis side of the email gateway (DESIGN §6, §8): the subscriber
 * registry and the per-subscriber mail queue. The per-event script appends
 * each accepted update that matches a confirmed subscriber to its queue and
 * makes the subscriber due `email.coalesce` after the first update queued
 * (so updates within the window become one mail); a self-service
 * subscription queues one confirmation mail instead, due at once. Mailers
 * on any node claim due subscribers under a lease, send one mail, and
 * complete: delivered and failed drop the items the mail carried, retry
 * keeps them.
 * @loop main: every function and callback here runs on the store's loop.
 */
#ifndef TC_STORE_EMAILS_H
#define TC_STORE_EMAILS_H

#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most subscribers one claim returns; a larger max is cut to it. */
#define TC_STORE_EM_CLAIM_MAX 64
/* Most updates one mail carries; the rest wait for the next mail. */
#define TC_STORE_EM_MAIL_UPDATES_MAX 200
/* Attempt records kept per subscriber. */
#define TC_STORE_EM_ATTEMPTS_KEPT 20

enum tc_store_em_kind {
    TC_STORE_EM_CONFIRM, /* the confirmation mail of a self-service subscription */
    TC_STORE_EM_DIGEST,  /* queued updates, coalesced into one mail */
};

/* One claimed mail. Strings are borrowed for the callback. */
struct tc_store_em_job {
    const char *subscriber_id;
    const char *subscriber; /* the subscriber JSON (see tc_store_em_create) */
    size_t subscriber_len;
    enum tc_store_em_kind kind;
    /* DIGEST: a JSON array [{"seq":N,"incident":{...}}, ...] in seq order,
     * at most TC_STORE_EM_MAIL_UPDATES_MAX; "[]" for CONFIRM. */
    const char *updates;
    size_t updates_len;
    size_t nitems;            /* queue items this mail carries (pass back to complete) */
    uint64_t attempts;        /* attempts made before this one */
    uint64_t first_queued_ms; /* wall clock when its oldest item was queued */
    uint64_t lease_until_ms;  /* the first ms at which this claim's lease is over */
    const char *lease;        /* this claim's lease end: pass it back to complete */
};

/* status 0 with n jobs (n may be 0), or TC_EIO / TC_ETIMEDOUT / TC_EAGAIN
 * with jobs NULL. */
typedef void (*tc_store_em_claim_cb)(void *arg, int status, const struct tc_store_em_job *jobs,
                                     size_t n);
/* status 0 with a borrowed compact JSON text, or an error code with json NULL. */
typedef tc_store_json_cb tc_store_em_json_cb;
/* status 0 with a count (see each function), or an error code and 0. */
typedef tc_store_count_cb tc_store_em_count_cb;

enum tc_store_em_outcome {
    TC_STORE_EM_DELIVERED, /* the server took it: its items are dropped */
    TC_STORE_EM_RETRY,     /* 4xx or no connection: due again at next_due_ms, items kept */
    TC_STORE_EM_FAILED,    /* 5xx or out of retries: recorded, items dropped */
};

/* Takes up to max due subscribers (a queue item due at or before now_ms)
 * and leases them until now_ms + lease_ms (a score unique to this claim, a
 * fraction of a ms under it: the job's lease). When the claim's reply is
 * lost, the next claims first make whatever it leased due again, until its
 * lease ends. Every callback here runs exactly once, possibly before the
 * function returns. */
void tc_store_em_claim(struct tc_store *s, uint64_t now_ms, uint64_t lease_ms, size_t max,
                       tc_store_em_claim_cb cb, void *arg);

/* Records one attempt of the mail claimed for subscriber_id carrying nitems
 * items; attempt_json (an object) is kept in the subscriber's last attempts.
 * After DELIVERED or FAILED, items queued meanwhile make the subscriber due
 * again `email.coalesce` later. lease is the job's: the outcome is
 * applied only while that lease still holds (the subscriber's due time is
 * still it), so a node whose lease ran out and was re-claimed elsewhere
 * changes nothing but the attempt record. n is 1 when applied, 0 when the
 * lease had been lost or the subscriber is gone. attempt_json NULL or not an
 * object is kept as {}; nitems over TC_STORE_EM_MAIL_UPDATES_MAX (more than a
 * claim hands out) or a NULL, empty or over-long lease is TC_EINVAL, nothing
 * changed. */
void tc_store_em_complete(struct tc_store *s, const char *subscriber_id, const char *lease,
                          size_t nitems, enum tc_store_em_outcome outcome, uint64_t next_due_ms,
                          const char *attempt_json, tc_store_em_count_cb cb, void *arg);

/* Creates a subscriber {"id","address","filter","confirmed","source",
 * "created_at","confirmed_at"} with the caller's id; address is checked and
 * normalised by the caller (email/address.h), filter_json is a compact
 * filter (tc_filter_to_json). confirmed = true for the admin API (nothing
 * else is queued); false for self-service, which queues the confirmation
 * mail. json is {"subscriber":{...},"created":true}; when the address
 * already has a subscriber, nothing is written and json is that one with
 * "created":false (a self-service caller re-queues the confirmation mail of
 * an unconfirmed one with tc_store_em_resend_confirm). created_at and
 * confirmed_at (null until confirmed) are Unix seconds; a NULL source is "".
 * TC_EINVAL (nothing written) for an empty or over-long id or address, or a
 * filter_json that is not a JSON object; TC_ESTATE when the id is taken by a
 * subscriber of another address. */
void tc_store_em_create(struct tc_store *s, const char *id, const char *address,
                        const char *filter_json, bool confirmed, const char *source,
                        tc_store_em_json_cb cb, void *arg);
/* Queues the confirmation mail again (if none is queued). n = 1 queued, 0
 * already confirmed or already queued; TC_ENOENT for an unknown id. */
void tc_store_em_resend_confirm(struct tc_store *s, const char *id, tc_store_em_count_cb cb,
                                void *arg);
/* Marks the subscriber confirmed (idempotent); json is the subscriber.
 * TC_ENOENT for an unknown id. */
void tc_store_em_confirm(struct tc_store *s, const char *id, tc_store_em_json_cb cb, void *arg);
/* json is an array of every subscriber (no particular order). */
void tc_store_em_list(struct tc_store *s, tc_store_em_json_cb cb, void *arg);
/* json is {"subscriber":{...},"pending":N,"delivered":N,"failed":N,
 * "attempts":[newest first]} (pending counts queue items, delivered and
 * failed count mails), or TC_ENOENT. */
void tc_store_em_get(struct tc_store *s, const char *id, tc_store_em_json_cb cb, void *arg);
/* Deletes the subscriber, its queue and its attempts (unsubscribe is this
 * too). n = 1, or TC_ENOENT. */
void tc_store_em_delete(struct tc_store *s, const char *id, tc_store_em_count_cb cb, void *arg);

/* A fixed-window rate limit: counts one hit of bucket (e.g. "ip:192.0.2.1")
 * in the current window of window_s seconds; n is the count including this
 * hit (the caller refuses above its limit). TC_EINVAL for an empty bucket
 * or a window of 0. */
void tc_store_em_rate_hit(struct tc_store *s, const char *bucket, uint64_t window_s,
                          tc_store_em_count_cb cb, void *arg);

/* The key that signs confirm and unsubscribe links, shared by every node:
 * stores candidate (base64 text) unless a key exists, and answers the key
 * that holds (json is the key text, not JSON). TC_EINVAL for an empty
 * candidate. */
void tc_store_em_link_key(struct tc_store *s, const char *candidate, tc_store_em_json_cb cb,
                          void *arg);

/* The queue gauges: subscribers with queued items, and those due now and not
 * leased. */
typedef tc_store_pair_cb tc_store_em_stats_cb;
void tc_store_em_stats(struct tc_store *s, uint64_t now_ms, tc_store_em_stats_cb cb, void *arg);

#endif
