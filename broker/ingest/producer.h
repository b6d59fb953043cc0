/* tocsin — SPDX-License-Identifier: MIT
 *
 * The event producer of the publishing API (issue 5; DESIGN §2): produces
 * one incident event to the events topic with acks=all and idempotence, and
 * answers once the broker has it (or could not take it within the message
 * timeout) — the API never answers 202 for an event Kafka does not hold.
 * Delivery reports are served on the main libuv loop (a pipe woken by
 * librdkafka, as the consumer).
 * @loop main.
 */
#ifndef TC_INGEST_PRODUCER_H
#define TC_INGEST_PRODUCER_H

#include "config/config.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct tc_producer;

/* status 0 with the message's partition and offset, or TC_EIO /
 * TC_ETIMEDOUT with error, a short text for the answer and the log. */
typedef void (*tc_producer_cb)(void *arg, int status, int32_t partition, int64_t offset,
                               const char *error);

/* With cfg->kafka_brokers empty, bootstrap is the embedded cluster's
 * address. @returns new or NULL with err set. */
struct tc_producer *tc_producer_new(uv_loop_t *loop, const struct tc_config *cfg,
                                    const char *bootstrap, struct tc_error *err);
/* Produces value (copied) with key to cfg->kafka_topic; cb runs exactly
 * once: from the loop when the broker answers, or before this returns when
 * librdkafka refuses the message at once (local queue full, too large). */
void tc_producer_send(struct tc_producer *p, const char *key, const char *value, size_t len,
                      tc_producer_cb cb, void *arg);
/* Waits at most timeout_ms for messages in flight, then purges the rest
 * (their callbacks run with TC_EIO) and frees; close_cb runs after. */
void tc_producer_close(struct tc_producer *p, uint64_t timeout_ms, void (*close_cb)(void *arg),
                       void *arg);

#endif
