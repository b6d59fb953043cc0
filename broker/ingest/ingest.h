/* tocsin — SPDX-License-Identifier: MIT
 *
 * Kafka ingest: one consumer in the group, on the main libuv loop through
 * rd_kafka_queue_io_event_enable. Each message is parsed and validated; a
 * valid event goes to the apply hook (main.c wires it to the store), an
 * invalid one goes unchanged to the dead-letter topic. An offset is stored
 * (offset + 1) only after its message is done, in partition order. Also the
 * embedded Kafka (librdkafka's mock cluster) for runs with no brokers.
 * @loop main, except the embedded cluster's own threads.
 */
#ifndef TC_INGEST_H
#define TC_INGEST_H

#include "config/config.h"
#include "model/incident.h"

#include <stdbool.h>
#include <uv.h>

struct tc_ingest;

struct tc_ingest_hooks {
    /* A valid event, in partition order. @borrows ev until tc_ingest_done is
     * called for token, which must happen exactly once (possibly inside). */
    void (*apply)(void *arg, const struct tc_event *ev, void *token);
    void *arg;
};

/* Creates the consumer (and the DLQ producer); with cfg->kafka_brokers empty,
 * bootstrap must be the embedded cluster's address. @returns new or NULL
 * with err set. */
struct tc_ingest *tc_ingest_new(uv_loop_t *loop, const struct tc_config *cfg, const char *bootstrap,
                                const struct tc_ingest_hooks *hooks, struct tc_error *err);
int tc_ingest_start(struct tc_ingest *in);
/* status 0: stored, the offset may advance. Anything else: the event was not
 * stored; ingest pauses, and once resumed (tc_ingest_set_paused(false)) and
 * nothing is in flight, applies it again, then the ones after it, in order. */
void tc_ingest_done(struct tc_ingest *in, void *token, int status);
/* Pauses (Redis unavailable) or resumes taking messages; paused, the consumer
 * keeps its group membership and stores nothing. */
void tc_ingest_set_paused(struct tc_ingest *in, bool paused);
/* True when a Kafka broker answered recently (for /readyz). */
bool tc_ingest_ready(const struct tc_ingest *in);
/* Graceful stop: take no more messages, wait (at most timeout_ms) for those in
 * flight, commit stored offsets, leave the group, destroy. Memory is released
 * before close_cb runs. */
void tc_ingest_close(struct tc_ingest *in, uint64_t timeout_ms, void (*close_cb)(void *arg),
                     void *arg);

/* The embedded Kafka: a librdkafka mock cluster with one broker, with the
 * topic (partitions) and the DLQ topic created. Runs on its own threads. */
struct tc_kafka_embedded;
struct tc_kafka_embedded *tc_kafka_embedded_new(const char *topic, const char *dlq_topic,
                                                int partitions, struct tc_error *err);
/* The same with brokers (1-9, ids 1..brokers) sharing the partitions'
 * leadership, so that one of them can go down while others serve. */
struct tc_kafka_embedded *tc_kafka_embedded_new_brokers(const char *topic, const char *dlq_topic,
                                                        int partitions, int brokers,
                                                        struct tc_error *err);
/* One fault-injection command line, for tests (tocsin-devkafka's control
 * channel): `broker-down ID`, `broker-up ID`, `rtt ID MS`, `errors API COUNT
 * ERROR` (the next COUNT requests of API, on any broker, answer ERROR),
 * `clear API`, `leader PARTITION ID`, `coordinator GROUP ID`, `ping`.
 * Thread-safe (the mock cluster runs commands on its own thread).
 * @returns 0, or TC_EINVAL/TC_ETOOBIG (bad command) or TC_EIO (refused by
 * the mock cluster) with err set. */
#define TC_KAFKA_CONTROL_MAX 256
int tc_kafka_embedded_control(struct tc_kafka_embedded *k, const char *line, struct tc_error *err);
/* @returns borrowed bootstrap address "127.0.0.1:PORT". */
const char *tc_kafka_embedded_bootstrap(const struct tc_kafka_embedded *k);
void tc_kafka_embedded_free(struct tc_kafka_embedded *k);

#endif
