/* tocsin — SPDX-License-Identifier: MIT
 *
 * The webhook deliverer (DESIGN §5): claims due jobs from the store under a
 * lease, POSTs them with libcurl's multi interface on the main libuv loop
 * (Standard Webhooks headers, the address guard at connect time, no
 * redirects, no proxies), and records each outcome: delivered, retry at the
 * next step of webhook.retry_schedule (or Retry-After), or dead.
 * @loop main.
 */
#ifndef TC_WEBHOOK_DELIVER_H
#define TC_WEBHOOK_DELIVER_H

#include "config/config.h"
#include "store/webhooks.h"

#include <stdint.h>
#include <uv.h>

struct tc_webhook;

struct tc_webhook *tc_webhook_new(uv_loop_t *loop, const struct tc_config *cfg,
                                  struct tc_store *store);
void tc_webhook_start(struct tc_webhook *wh);

/* The outcome of a test message; strings borrowed for the callback. */
struct tc_webhook_test_result {
    const char *webhook_id; /* "test_<hex>" */
    long status;            /* the receiver's HTTP status, 0 without an answer */
    const char *error;      /* NULL when delivered (2xx) */
    uint64_t duration_ms;
};
/* rc TC_OK with the result when a message was sent; TC_ENOENT for an unknown
 * endpoint, TC_ESTATE when the deliverer is closing or the endpoint record is
 * unusable, or the store's error (TC_EIO, TC_ETIMEDOUT, TC_EAGAIN); r is
 * NULL then. */
typedef void (*tc_webhook_test_cb)(void *arg, int rc, const struct tc_webhook_test_result *r);

/* Reads endpoint_id and POSTs it a signed {"type":"webhook.test",...}
 * message now, through the same guard, timeout and headers as a delivery;
 * nothing is queued, recorded or retried. cb runs exactly once, possibly
 * before this returns; the deliverer's close waits for it. */
void tc_webhook_send_test(struct tc_webhook *wh, const char *endpoint_id, tc_webhook_test_cb cb,
                          void *arg);

/* Stops claiming and abandons attempts in flight (their leases run out and
 * some node sends them again: at-least-once). Memory is released before
 * close_cb runs. */
void tc_webhook_close(struct tc_webhook *wh, void (*close_cb)(void *arg), void *arg);

#endif
