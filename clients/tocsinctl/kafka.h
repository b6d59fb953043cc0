/* tocsin — SPDX-License-Identifier: MIT
 *
 * `publish --kafka`: produce one event straight to the incidents topic with
 * a short-lived librdkafka producer (acks=all, idempotent) and wait for its
 * delivery report, so "exit 0" means the brokers have the event. The event
 * is validated by the caller first; this file only moves bytes.
 */
#ifndef TC_CTL_KAFKA_H
#define TC_CTL_KAFKA_H

#include "util/util.h"

#include <stddef.h>
#include <stdint.h>

/* Where the event landed. */
struct tc_ctl_kafka_delivery {
    int32_t partition;
    int64_t offset;
};

/* Produces value (len bytes) with key to topic on brokers and waits at most
 * timeout_ms for the delivery report. @borrows every argument.
 * @returns 0 with out filled, TC_EINVAL (bad configuration, e.g. brokers),
 * TC_ETIMEDOUT (no broker took it in time) or TC_EIO (refused), with err
 * saying why (the last broker error when there is one). */
int tc_ctl_kafka_produce(const char *brokers, const char *topic, const char *key, const char *value,
                         size_t len, uint64_t timeout_ms, struct tc_ctl_kafka_delivery *out,
                         struct tc_error *err);

#endif
