/* tocsin — SPDX-License-Identifier: MIT
 *
 * One event produced and confirmed (see kafka.h). librdkafka's own log lines
 * are silenced: a CLI prints one error line, built here from the delivery
 * report and the last broker error the error callback saw.
 */
#include "kafka.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct state {
    bool done;
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
    char last_error[256]; /* the newest broker-level error, "" when none */
};

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    TC_UNUSED(rk);
    struct state *s = opaque;
    s->done = true;
    s->err = m->err;
    s->partition = m->partition;
    s->offset = m->offset;
}

static void
on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    TC_UNUSED(rk);
    TC_UNUSED(err);
    struct state *s = opaque;
    snprintf(s->last_error, sizeof(s->last_error), "%s", reason);
}

static void
on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* Silent: what matters reaches on_error and the delivery report. */
    TC_UNUSED(rk);
    TC_UNUSED(level);
    TC_UNUSED(fac);
    TC_UNUSED(buf);
}

static int
conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, struct tc_error *err)
{
    char errstr[256];
    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        return tc_error_set(err, TC_EINVAL, "%s: %s", key, errstr);
    }
    return TC_OK;
}

int
tc_ctl_kafka_produce(const char *brokers, const char *topic, const char *key, const char *value,
                     size_t len, uint64_t timeout_ms, struct tc_ctl_kafka_delivery *out,
                     struct tc_error *err)
{
    struct state s = {0};
    char errstr[512], timeout[32];
    rd_kafka_t *rk = NULL;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc;

    snprintf(timeout, sizeof(timeout), "%llu", (unsigned long long)timeout_ms);
    rd_kafka_conf_set_opaque(conf, &s);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    if ((rc = conf_set(conf, "bootstrap.servers", brokers, err)) != TC_OK ||
        (rc = conf_set(conf, "acks", "all", err)) != TC_OK ||
        (rc = conf_set(conf, "enable.idempotence", "true", err)) != TC_OK ||
        (rc = conf_set(conf, "linger.ms", "0", err)) != TC_OK ||
        (rc = conf_set(conf, "message.timeout.ms", timeout, err)) != TC_OK) {
        goto out;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        rc = tc_error_set(err, TC_EINVAL, "%s", errstr);
        goto out;
    }
    conf = NULL; /* rd_kafka_new took it */
    rd_kafka_resp_err_t perr = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY((void *)(uintptr_t)key, strlen(key)),
        RD_KAFKA_V_VALUE((void *)(uintptr_t)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_END);
    if (perr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = tc_error_set(err, TC_EIO, "Kafka refused the event: %s", rd_kafka_err2str(perr));
        goto out;
    }
    /* message.timeout.ms bounds the wait; the margin lets the report arrive. */
    uint64_t deadline = tc_now_ms() + timeout_ms + 2000;
    while (!s.done && tc_now_ms() < deadline) {
        rd_kafka_poll(rk, 100);
    }
    if (!s.done || s.err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT) {
        rc =
            tc_error_set(err, TC_ETIMEDOUT, "no Kafka broker took the event within %llu ms%s%s",
                         (unsigned long long)timeout_ms, s.last_error[0] ? ": " : "", s.last_error);
    } else if (s.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = tc_error_set(err, TC_EIO, "Kafka refused the event: %s", rd_kafka_err2str(s.err));
    } else {
        out->partition = s.partition;
        out->offset = s.offset;
        rc = TC_OK;
    }
out:
    if (rk != NULL) {
        /* Nothing is outstanding once the report came; if it did not, drop it
         * rather than wait again. */
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(rk, 0);
        rd_kafka_destroy(rk);
    }
    if (conf != NULL) {
        rd_kafka_conf_destroy(conf);
    }
    return rc;
}
