/* tocsin — SPDX-License-Identifier: MIT
 *
 * The dead-letter producer: a message that fails parsing or validation goes,
 * key and value unchanged, to the DLQ topic with an `error` and a `source`
 * header. Its FIFO entry is done when the delivery report arrives, failed or
 * not, so a poison message never blocks its partition. Delivery reports are
 * served on the main loop (ingest.c polls this producer).
 */
#include "ingest/ingest_internal.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "util/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void
dlq_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    TC_UNUSED(rk);
    TC_UNUSED(opaque);
    tc_warn("ingest", "dead-letter producer error", TC_S("error", rd_kafka_err2name(err)),
            TC_S("reason", reason));
}

/* @loop main (served by rd_kafka_poll on the DLQ producer). */
static void
dlq_delivered(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    struct tc_ingest *in = opaque;
    struct tc_ingest_entry *e = rkm->_private;

    TC_UNUSED(rk);
    in->dlq_pending--;
    if (rkm->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
        rkm->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
        /* Purged by tc_ingest_close: not done, so no offset is stored and
         * the message is consumed and dead-lettered again next time. */
        tc_warn("ingest", "dead letter purged at close", TC_I("partition", e->partition),
                TC_I("offset", e->offset));
        if (e->orphaned) {
            tc_ingest__orphan_unlink(in, e);
            tc_ingest__entry_free(e);
        }
        return;
    }
    if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* Still done: a message we cannot even dead-letter must not block
         * its partition forever; the error line is the only trace left. */
        tc_metrics_inc(TC_M_DLQ_FAILED);
        tc_err("ingest", "dead-letter delivery failed, message dropped",
               TC_S("error", rd_kafka_err2str(rkm->err)), TC_I("partition", e->partition),
               TC_I("offset", e->offset));
    } else {
        tc_metrics_inc(TC_M_DLQ_PRODUCED);
        tc_debug("ingest", "dead-lettered", TC_I("partition", e->partition),
                 TC_I("offset", e->offset), TC_I("dlq_offset", rkm->offset));
    }
    if (e->orphaned) {
        tc_ingest__orphan_unlink(in, e);
        tc_ingest__entry_free(e);
    } else {
        tc_ingest__entry_done(in, e);
    }
}

rd_kafka_t *
tc_ingest__dlq_new(struct tc_ingest *in, const char *brokers, struct tc_error *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    char errstr[256];

    /* acks=all: a dead-lettered message is the only copy of what we skip.
     * message.timeout.ms bounds how long a poison message can hold its
     * partition when the DLQ cannot be written: then it is dropped and
     * counted (tocsin_dlq_messages_total{result="failed"}). */
    if (tc_ingest__conf_set(conf, "bootstrap.servers", brokers, err) < 0 ||
        tc_ingest__conf_set(conf, "client.id", "tocsin-dlq", err) < 0 ||
        tc_ingest__conf_set(conf, "acks", "all", err) < 0 ||
        tc_ingest__conf_set(conf, "linger.ms", "5", err) < 0 ||
        tc_ingest__conf_set(conf, "message.timeout.ms", "30000", err) < 0) {
        goto out;
    }
    rd_kafka_conf_set_log_cb(conf, tc_ingest__log_cb);
    rd_kafka_conf_set_error_cb(conf, dlq_error_cb);
    rd_kafka_conf_set_dr_msg_cb(conf, dlq_delivered);
    rd_kafka_conf_set_opaque(conf, in);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        tc_error_set(err, TC_EIO, "kafka dead-letter producer: %s", errstr);
        goto out;
    }
    conf = NULL; /* owned by rk now */
out:
    if (conf != NULL) {
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

void
tc_ingest__dlq_send(struct tc_ingest *in, struct tc_ingest_entry *e)
{
    const rd_kafka_message_t *m = e->rkm;
    rd_kafka_headers_t *orig = NULL;
    rd_kafka_headers_t *hdrs;
    rd_kafka_resp_err_t rerr;
    char source[300];

    /* Keep the producer's own headers, then say why and where from. */
    if (rd_kafka_message_headers(m, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        hdrs = rd_kafka_headers_copy(orig);
    } else {
        hdrs = rd_kafka_headers_new(2);
    }
    snprintf(source, sizeof(source), "%s/%" PRId32 "/%" PRId64, in->topic, e->partition, e->offset);
    rd_kafka_header_add(hdrs, "error", -1, e->error.text, -1);
    rd_kafka_header_add(hdrs, "source", -1, source, -1);

    e->state = TC_ENTRY_DLQ;
    in->dlq_pending++;
    rerr = rd_kafka_producev(
        in->dlq, RD_KAFKA_V_TOPIC(in->dlq_topic), RD_KAFKA_V_KEY(m->key, m->key_len),
        RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(e), RD_KAFKA_V_END);
    if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* Refused at once (local queue full, message too large): no delivery
         * report will come, so it is done now, dropped and counted. */
        rd_kafka_headers_destroy(hdrs);
        in->dlq_pending--;
        tc_metrics_inc(TC_M_DLQ_FAILED);
        tc_err("ingest", "dead-letter produce refused, message dropped",
               TC_S("error", rd_kafka_err2str(rerr)), TC_I("partition", e->partition),
               TC_I("offset", e->offset));
        tc_ingest__entry_done(in, e);
    }
}
