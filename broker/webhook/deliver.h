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

#include <uv.h>

struct tc_webhook;

struct tc_webhook *tc_webhook_new(uv_loop_t *loop, const struct tc_config *cfg,
                                  struct tc_store *store);
void tc_webhook_start(struct tc_webhook *wh);
/* Stops claiming and abandons attempts in flight (their leases run out and
 * some node sends them again: at-least-once). Memory is released before
 * close_cb runs. */
void tc_webhook_close(struct tc_webhook *wh, void (*close_cb)(void *arg), void *arg);

#endif
