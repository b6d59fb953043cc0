/* tocsin — SPDX-License-Identifier: MIT
 *
 * The embedded Kafka: librdkafka's mock cluster (one broker or a few, a real
 * Kafka protocol endpoint on 127.0.0.1) hosted by an otherwise idle producer
 * handle, with the incident topic and the DLQ topic created, and the line
 * commands that inject its faults (tocsin-devkafka's control channel). It
 * runs on librdkafka's threads and keeps its data in memory only: for first
 * runs, tests and tocsin-devkafka, never for production.
 */
#include "ingest/ingest_internal.h"
#include "log/log.h"
#include "util/util.h"

#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The mock cluster's own bound is higher; a handful is what tests need. */
#define MAX_BROKERS 9

struct tc_kafka_embedded {
    rd_kafka_t *rk;
    char *bootstrap;
    char *topic;
};

struct tc_kafka_embedded *
tc_kafka_embedded_new(const char *topic, const char *dlq_topic, int partitions,
                      struct tc_error *err)
{
    return tc_kafka_embedded_new_brokers(topic, dlq_topic, partitions, 1, err);
}

struct tc_kafka_embedded *
tc_kafka_embedded_new_brokers(const char *topic, const char *dlq_topic, int partitions, int brokers,
                              struct tc_error *err)
{
    struct tc_kafka_embedded *k = NULL;
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mc;
    rd_kafka_resp_err_t rerr;
    char errstr[256];
    char nbrokers[16];

    /* 256 is the kafka.partitions bound of the configuration. */
    if (topic == NULL || dlq_topic == NULL || partitions < 1 || partitions > 256 || brokers < 1 ||
        brokers > MAX_BROKERS) {
        tc_error_set(err, TC_EINVAL,
                     "embedded kafka: bad topic, partitions (1-256) or brokers (1-%d)",
                     MAX_BROKERS);
        goto out;
    }
    snprintf(nbrokers, sizeof(nbrokers), "%d", brokers);
    conf = rd_kafka_conf_new();
    if (tc_ingest__conf_set(conf, "test.mock.num.brokers", nbrokers, err) < 0 ||
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
    k->topic = tc_xstrdup(topic);
    rk = NULL;
    tc_info("ingest", "embedded kafka started", TC_S("bootstrap", k->bootstrap),
            TC_S("topic", topic), TC_I("partitions", partitions), TC_S("dlq_topic", dlq_topic),
            TC_I("brokers", brokers));
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
    free(k->topic);
    free(k);
}

/* ---- fault injection ---- */

/* The Kafka API keys a test may fail (the protocol's numbers). */
static const struct {
    const char *name;
    int16_t key;
} api_keys[] = {
    {"Produce", 0},      {"Fetch", 1},       {"ListOffsets", 2},      {"Metadata", 3},
    {"OffsetCommit", 8}, {"OffsetFetch", 9}, {"FindCoordinator", 10}, {"JoinGroup", 11},
    {"Heartbeat", 12},   {"LeaveGroup", 13}, {"SyncGroup", 14},       {"ApiVersions", 18},
};

#define MAX_WORDS 5
/* Errors pushed by one command: enough for any retry loop to give up. */
#define MAX_ERRORS 1000

static int
api_key(const char *name, int16_t *out, struct tc_error *err)
{
    for (size_t i = 0; i < sizeof(api_keys) / sizeof(api_keys[0]); i++) {
        if (strcmp(api_keys[i].name, name) == 0) {
            *out = api_keys[i].key;
            return 0;
        }
    }
    return tc_error_set(err, TC_EINVAL, "unknown API '%s' (Fetch, OffsetCommit, JoinGroup, ...)",
                        name);
}

/* A broker error by its librdkafka name without the RD_KAFKA_RESP_ERR_
 * prefix (NOT_LEADER_FOR_PARTITION, or UNKNOWN for -1); librdkafka's own
 * codes below -1 are client-side conditions a broker cannot answer with. */
static int
broker_error(const char *name, rd_kafka_resp_err_t *out, struct tc_error *err)
{
    const struct rd_kafka_err_desc *descs;
    size_t n;

    rd_kafka_get_err_descs(&descs, &n);
    for (size_t i = 0; i < n; i++) {
        if (descs[i].code >= RD_KAFKA_RESP_ERR_UNKNOWN &&
            descs[i].code != RD_KAFKA_RESP_ERR_NO_ERROR && descs[i].name != NULL &&
            strcmp(descs[i].name, name) == 0) {
            *out = descs[i].code;
            return 0;
        }
    }
    return tc_error_set(err, TC_EINVAL, "unknown broker error '%s' (e.g. REQUEST_TIMED_OUT)", name);
}

static int
number(const char *s, long lo, long hi, long *out, struct tc_error *err)
{
    char *end = NULL;
    long v;

    v = s != NULL ? strtol(s, &end, 10) : 0;
    if (s == NULL || *s == '\0' || *end != '\0' || v < lo || v > hi) {
        return tc_error_set(err, TC_EINVAL, "'%s' is not a number in %ld-%ld", s ? s : "", lo, hi);
    }
    *out = v;
    return 0;
}

static int
mock_result(rd_kafka_resp_err_t rerr, struct tc_error *err)
{
    if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return tc_error_set(err, TC_EIO, "%s", rd_kafka_err2str(rerr));
    }
    return 0;
}

static int
push_errors(rd_kafka_mock_cluster_t *mc, char **w, struct tc_error *err)
{
    rd_kafka_resp_err_t *errs = NULL;
    rd_kafka_resp_err_t code = RD_KAFKA_RESP_ERR_NO_ERROR;
    int16_t key = 0;
    long cnt = 0;
    int rc;

    if ((rc = api_key(w[1], &key, err)) < 0 || (rc = number(w[2], 1, MAX_ERRORS, &cnt, err)) < 0 ||
        (rc = broker_error(w[3], &code, err)) < 0) {
        return rc;
    }
    errs = tc_xcalloc((size_t)cnt, sizeof(*errs));
    for (long i = 0; i < cnt; i++) {
        errs[i] = code;
    }
    rd_kafka_mock_push_request_errors_array(mc, key, (size_t)cnt, errs);
    free(errs);
    return 0;
}

int
tc_kafka_embedded_control(struct tc_kafka_embedded *k, const char *line, struct tc_error *err)
{
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(k->rk);
    char buf[TC_KAFKA_CONTROL_MAX + 1];
    char *w[MAX_WORDS] = {NULL};
    char *save = NULL, *tok;
    int nw = 0;
    long a = 0, b = 0;
    int16_t key = 0;
    int rc;

    if (strlen(line) > TC_KAFKA_CONTROL_MAX) {
        return tc_error_set(err, TC_ETOOBIG, "command longer than %d bytes", TC_KAFKA_CONTROL_MAX);
    }
    snprintf(buf, sizeof(buf), "%s", line);
    for (tok = strtok_r(buf, " \t\r\n", &save); tok != NULL;
         tok = strtok_r(NULL, " \t\r\n", &save)) {
        if (nw == MAX_WORDS) {
            return tc_error_set(err, TC_EINVAL, "too many words");
        }
        w[nw++] = tok;
    }
    if (nw == 0) {
        return tc_error_set(err, TC_EINVAL, "empty command");
    }
#define ARGS(n, usage)                                           \
    if (nw != (n) + 1) {                                         \
        return tc_error_set(err, TC_EINVAL, "usage: %s", usage); \
    }
    if (strcmp(w[0], "ping") == 0) {
        ARGS(0, "ping");
        return 0;
    } else if (strcmp(w[0], "broker-down") == 0 || strcmp(w[0], "broker-up") == 0) {
        ARGS(1, "broker-down|broker-up BROKER_ID");
        if ((rc = number(w[1], 1, MAX_BROKERS, &a, err)) < 0) {
            return rc;
        }
        rc = mock_result(w[0][7] == 'd' ? rd_kafka_mock_broker_set_down(mc, (int32_t)a)
                                        : rd_kafka_mock_broker_set_up(mc, (int32_t)a),
                         err);
    } else if (strcmp(w[0], "rtt") == 0) {
        ARGS(2, "rtt BROKER_ID MS");
        if ((rc = number(w[1], 1, MAX_BROKERS, &a, err)) < 0 ||
            (rc = number(w[2], 0, 60000, &b, err)) < 0) {
            return rc;
        }
        rc = mock_result(rd_kafka_mock_broker_set_rtt(mc, (int32_t)a, (int)b), err);
    } else if (strcmp(w[0], "errors") == 0) {
        ARGS(3, "errors API COUNT ERROR");
        rc = push_errors(mc, w, err);
    } else if (strcmp(w[0], "clear") == 0) {
        ARGS(1, "clear API");
        if ((rc = api_key(w[1], &key, err)) < 0) {
            return rc;
        }
        rd_kafka_mock_clear_request_errors(mc, key);
    } else if (strcmp(w[0], "leader") == 0) {
        ARGS(2, "leader PARTITION BROKER_ID");
        if ((rc = number(w[1], 0, 255, &a, err)) < 0 ||
            (rc = number(w[2], 1, MAX_BROKERS, &b, err)) < 0) {
            return rc;
        }
        rc = mock_result(rd_kafka_mock_partition_set_leader(mc, k->topic, (int32_t)a, (int32_t)b),
                         err);
    } else if (strcmp(w[0], "coordinator") == 0) {
        ARGS(2, "coordinator GROUP BROKER_ID");
        if ((rc = number(w[2], 1, MAX_BROKERS, &b, err)) < 0) {
            return rc;
        }
        rc = mock_result(rd_kafka_mock_coordinator_set(mc, "group", w[1], (int32_t)b), err);
    } else {
        return tc_error_set(err, TC_EINVAL, "unknown command '%s' (see --help)", w[0]);
    }
#undef ARGS
    if (rc == 0) {
        tc_info("ingest", "embedded kafka fault command applied", TC_S("command", line));
    }
    return rc;
}
