/* tocsin — SPDX-License-Identifier: MIT
 *
 * The embedded Kafka: librdkafka's mock cluster (one broker, a real Kafka
 * protocol endpoint on 127.0.0.1) hosted by an otherwise idle producer
 * handle, with the incident topic and the DLQ topic created. It runs on
 * librdkafka's threads and keeps its data in memory only: for first runs,
 * tests and tocsin-devkafka, never for production.
 */
#include "ingest/ingest_internal.h"
#include "log/log.h"
#include "util/util.h"

#include <librdkafka/rdkafka_mock.h>
#include <stdlib.h>

struct tc_kafka_embedded {
    rd_kafka_t *rk;
    char *bootstrap;
};

struct tc_kafka_embedded *
tc_kafka_embedded_new(const char *topic, const char *dlq_topic, int partitions,
                      struct tc_error *err)
{
    struct tc_kafka_embedded *k = NULL;
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mc;
    rd_kafka_resp_err_t rerr;
    char errstr[256];

    /* 256 is the kafka.partitions bound of the configuration. */
    if (topic == NULL || dlq_topic == NULL || partitions < 1 || partitions > 256) {
        tc_error_set(err, TC_EINVAL, "embedded kafka: bad topic or partitions (1-256)");
        goto out;
    }
    conf = rd_kafka_conf_new();
    if (tc_ingest__conf_set(conf, "test.mock.num.brokers", "1", err) < 0 ||
        tc_ingest__conf_set(conf, "client.id", "tocsin-embedded", err) < 0) {
        goto out;
    }
    rd_kafka_conf_set_log_cb(conf, tc_ingest__log_cb);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        tc_error_set(err, TC_EIO, "embedded kafka: %s", errstr);
        goto out;
    }
    conf = NULL;
    mc = rd_kafka_handle_mock_cluster(rk);
    if (mc == NULL) {
        tc_error_set(err, TC_EIO, "embedded kafka: no mock cluster in this librdkafka");
        goto out;
    }
    rerr = rd_kafka_mock_topic_create(mc, topic, partitions, 1);
    if (rerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rerr = rd_kafka_mock_topic_create(mc, dlq_topic, 1, 1);
    }
    if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        tc_error_set(err, TC_EIO, "embedded kafka: create topics: %s", rd_kafka_err2str(rerr));
        goto out;
    }
    k = tc_xcalloc(1, sizeof(*k));
    k->rk = rk;
    k->bootstrap = tc_xstrdup(rd_kafka_mock_cluster_bootstraps(mc));
    rk = NULL;
    tc_info("ingest", "embedded kafka started", TC_S("bootstrap", k->bootstrap),
            TC_S("topic", topic), TC_I("partitions", partitions), TC_S("dlq_topic", dlq_topic));
out:
    if (conf != NULL) {
        rd_kafka_conf_destroy(conf);
    }
    if (rk != NULL) {
        rd_kafka_destroy(rk);
    }
    return k;
}

const char *
tc_kafka_embedded_bootstrap(const struct tc_kafka_embedded *k)
{
    return k->bootstrap;
}

void
tc_kafka_embedded_free(struct tc_kafka_embedded *k)
{
    if (k == NULL) {
        return;
    }
    rd_kafka_destroy(k->rk);
    free(k->bootstrap);
    free(k);
}
