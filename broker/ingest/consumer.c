/* tocsin — SPDX-License-Identifier: MIT
 *
 * The librdkafka consumer handle and its callbacks: configuration (manual
 * offset store, auto commit of what is stored), rebalance (assign, revoke,
 * logged), errors and statistics (readiness). Every callback here is served
 * by rd_kafka_consumer_poll on the main loop, so it may touch struct
 * tc_ingest; only the log callback runs on librdkafka's threads.
 */
#include "ingest/ingest_internal.h"
#include "log/log.h"
#include "util/util.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

static void
log_parts(const char *msg, const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        tc_info("ingest", msg, TC_S("topic", parts->elems[i].topic),
                TC_I("partition", parts->elems[i].partition));
    }
}

static void
rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
             void *opaque)
{
    struct tc_ingest *in = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t rerr = RD_KAFKA_RESP_ERR_NO_ERROR;

    tc_ingest__broker_answered(in);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        log_parts("partition assigned", parts);
        for (int i = 0; i < parts->cnt; i++) {
            tc_ingest__assign(in, parts->elems[i].partition);
        }
        if (cooperative) {
            error = rd_kafka_incremental_assign(rk, parts);
        } else {
            rerr = rd_kafka_assign(rk, parts);
        }
        /* Paused (store down, failed apply, full queue, closing): the new
         * partitions start paused too. */
        if (in->kafka_paused && error == NULL && rerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rerr = rd_kafka_pause_partitions(rk, parts);
        }
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        log_parts(rd_kafka_assignment_lost(rk) ? "partition lost" : "partition revoked", parts);
        for (int i = 0; i < parts->cnt; i++) {
            tc_ingest__revoke(in, parts->elems[i].partition);
        }
        if (cooperative) {
            error = rd_kafka_incremental_unassign(rk, parts);
        } else {
            rerr = rd_kafka_assign(rk, NULL);
        }
    } else {
        tc_err("ingest", "rebalance failed", TC_S("error", rd_kafka_err2str(err)));
        for (int32_t i = 0; i < in->nparts; i++) {
            tc_ingest__revoke(in, i);
        }
        rerr = rd_kafka_assign(rk, NULL);
    }
    if (error != NULL) {
        tc_err("ingest", "incremental assignment failed",
               TC_S("error", rd_kafka_error_string(error)));
        rd_kafka_error_destroy(error);
    }
    if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        tc_err("ingest", "assignment failed", TC_S("error", rd_kafka_err2str(rerr)));
    }
}

static void
error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct tc_ingest *in = opaque;
    char fatal[256];

    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        /* Not ready until a broker answers again (message, rebalance or
         * statistics showing a broker up). */
        in->brokers_down = true;
        tc_warn("ingest", "all kafka brokers down", TC_S("reason", reason));
    } else if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        in->brokers_down = true;
        tc_err("ingest", "fatal kafka consumer error", TC_S("reason", fatal));
    } else {
        tc_warn("ingest", "kafka consumer error", TC_S("error", rd_kafka_err2name(err)),
                TC_S("reason", reason));
    }
}

/* Statistics every few seconds: a broker (not a bootstrap placeholder) in
 * state UP is the cheap, non-blocking proof that Kafka answers, even on an
 * idle topic. */
static int
stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    struct tc_ingest *in = opaque;
    json_t *root = json_loadb(json, len, 0, NULL);
    json_t *brokers = json_object_get(root, "brokers");
    const char *name;
    json_t *b;

    TC_UNUSED(rk);
    json_object_foreach(brokers, name, b)
    {
        const char *state = json_string_value(json_object_get(b, "state"));
        json_int_t nodeid = json_integer_value(json_object_get(b, "nodeid"));

        if (nodeid >= 0 && state != NULL && strcmp(state, "UP") == 0) {
            tc_ingest__broker_answered(in);
            break;
        }
    }
    json_decref(root);
    return 0; /* librdkafka frees json */
}

rd_kafka_t *
tc_ingest__consumer_new(struct tc_ingest *in, const char *brokers, const char *group,
                        int64_t fetch_wait_ms, struct tc_error *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    char errstr[256];
    char fetch_wait[24];

    /* session.timeout.ms 10 s (Kafka's default before 3.0): a dead node's
     * partitions move sooner, and the embedded mock cluster, which waits
     * about a session timeout to rebalance after the last member left,
     * lets a restarted tocsind rejoin within seconds.
     * Offsets: stored by us (offset + 1) only once the message is done,
     * committed by librdkafka every second and at close. No EOF events.
     * queued.max.messages.kbytes bounds what is prefetched, hence what may
     * still arrive after a pause.
     * fetch.wait.max.ms (kafka.fetch_wait, 50 ms by default): a real broker
     * answers a fetch as soon as data arrives, but the mock cluster
     * (embedded Kafka, tocsin-devkafka) holds it for the whole wait, which
     * with librdkafka's 500 ms was most of every update's latency. At 50 ms
     * an idle consumer sends 20 fetches/s per broker: negligible. */
    snprintf(fetch_wait, sizeof(fetch_wait), "%" PRId64, fetch_wait_ms);
    if (tc_ingest__conf_set(conf, "bootstrap.servers", brokers, err) < 0 ||
        tc_ingest__conf_set(conf, "group.id", group, err) < 0 ||
        tc_ingest__conf_set(conf, "client.id", "tocsin", err) < 0 ||
        tc_ingest__conf_set(conf, "enable.auto.offset.store", "false", err) < 0 ||
        tc_ingest__conf_set(conf, "enable.auto.commit", "true", err) < 0 ||
        tc_ingest__conf_set(conf, "auto.commit.interval.ms", "1000", err) < 0 ||
        tc_ingest__conf_set(conf, "auto.offset.reset", "earliest", err) < 0 ||
        tc_ingest__conf_set(conf, "enable.partition.eof", "false", err) < 0 ||
        tc_ingest__conf_set(conf, "queued.max.messages.kbytes", "8192", err) < 0 ||
        tc_ingest__conf_set(conf, "session.timeout.ms", "10000", err) < 0 ||
        tc_ingest__conf_set(conf, "fetch.wait.max.ms", fetch_wait, err) < 0 ||
        tc_ingest__conf_set(conf, "statistics.interval.ms", "2000", err) < 0) {
        goto out;
    }
    rd_kafka_conf_set_log_cb(conf, tc_ingest__log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_stats_cb(conf, stats_cb);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, in);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        tc_error_set(err, TC_EIO, "kafka consumer: %s", errstr);
        goto out;
    }
    conf = NULL; /* owned by rk now */
    /* Everything (rebalances, errors, statistics) comes through the
     * consumer queue, which the loop watches. */
    rd_kafka_poll_set_consumer(rk);
out:
    if (conf != NULL) {
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}
