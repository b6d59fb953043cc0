/* tocsin — SPDX-License-Identifier: MIT
 *
 * The event producer (see producer.h): librdkafka producer, delivery reports
 * on the main loop through a pipe and a uv_poll, one callback per message.
 */
#define _GNU_SOURCE /* pipe2 */
#include "ingest/producer.h"
#include "ingest/ingest_internal.h"
#include "log/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long a message may wait for the broker: the API answers 503 after it,
 * so it is the longest a publish request can hang. */
#define MESSAGE_TIMEOUT_MS "5000"
/* While closing: how often to look whether everything was delivered. */
#define CLOSE_POLL_MS 20

struct tc_producer {
    uv_loop_t *loop;
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    char *topic;
    int pipefd[2];
    uv_poll_t poll;
    uv_timer_t timer; /* close: waits for the queue to drain */
    int handles_open;
    uint64_t close_deadline;
    void (*close_cb)(void *arg);
    void *close_arg;
};

/* One message in flight. */
struct sent {
    tc_producer_cb cb;
    void *arg;
};

static void
delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    TC_UNUSED(rk);
    TC_UNUSED(opaque);
    struct sent *s = m->_private;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        int status = m->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT ? TC_ETIMEDOUT : TC_EIO;
        s->cb(s->arg, status, -1, -1, rd_kafka_err2str(m->err));
    } else {
        s->cb(s->arg, TC_OK, m->partition, m->offset, NULL);
    }
    free(s);
}

static void
producer_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    TC_UNUSED(rk);
    TC_UNUSED(opaque);
    tc_warn("publish", "event producer error", TC_S("error", rd_kafka_err2name(err)),
            TC_S("reason", reason));
}

static void
on_readable(uv_poll_t *h, int status, int events)
{
    TC_UNUSED(status);
    TC_UNUSED(events);
    struct tc_producer *p = h->data;
    char buf[64];
    while (read(p->pipefd[0], buf, sizeof(buf)) > 0) {
    }
    rd_kafka_poll(p->rk, 0);
}

struct tc_producer *
tc_producer_new(uv_loop_t *loop, const struct tc_config *cfg, const char *bootstrap,
                struct tc_error *err)
{
    const char *brokers = cfg->kafka_brokers[0] != '\0' ? cfg->kafka_brokers : bootstrap;
    if (brokers == NULL || brokers[0] == '\0') {
        tc_error_set(err, TC_EINVAL, "kafka: no brokers for the event producer");
        return NULL;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];
    /* acks=all and idempotence: a 202 means every in-sync replica has the
     * event, and a retried produce is not written twice. */
    if (tc_ingest__conf_set(conf, "bootstrap.servers", brokers, err) < 0 ||
        tc_ingest__conf_set(conf, "client.id", "tocsin-publish", err) < 0 ||
        tc_ingest__conf_set(conf, "acks", "all", err) < 0 ||
        tc_ingest__conf_set(conf, "enable.idempotence", "true", err) < 0 ||
        tc_ingest__conf_set(conf, "linger.ms", "0", err) < 0 ||
        tc_ingest__conf_set(conf, "message.timeout.ms", MESSAGE_TIMEOUT_MS, err) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, tc_ingest__log_cb);
    rd_kafka_conf_set_error_cb(conf, producer_error);
    rd_kafka_conf_set_dr_msg_cb(conf, delivered);
    struct tc_producer *p = tc_xcalloc(1, sizeof(*p));
    p->pipefd[0] = p->pipefd[1] = -1;
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (p->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        tc_error_set(err, TC_EIO, "kafka event producer: %s", errstr);
        free(p);
        return NULL;
    }
    if (pipe2(p->pipefd, O_NONBLOCK | O_CLOEXEC) < 0) {
        tc_error_set(err, TC_EIO, "kafka event producer: pipe: %s", strerror(errno));
        rd_kafka_destroy(p->rk);
        free(p);
        return NULL;
    }
    p->loop = loop;
    p->topic = tc_xstrdup(cfg->kafka_topic);
    p->q = rd_kafka_queue_get_main(p->rk);
    rd_kafka_queue_io_event_enable(p->q, p->pipefd[1], "1", 1);
    uv_poll_init(loop, &p->poll, p->pipefd[0]);
    uv_timer_init(loop, &p->timer);
    p->poll.data = p->timer.data = p;
    p->handles_open = 2;
    uv_poll_start(&p->poll, UV_READABLE, on_readable);
    return p;
}

void
tc_producer_send(struct tc_producer *p, const char *key, const char *value, size_t len,
                 tc_producer_cb cb, void *arg)
{
    struct sent *s = tc_xcalloc(1, sizeof(*s));
    s->cb = cb;
    s->arg = arg;
    rd_kafka_resp_err_t rerr = rd_kafka_producev(
        p->rk, RD_KAFKA_V_TOPIC(p->topic), RD_KAFKA_V_KEY((void *)(uintptr_t)key, strlen(key)),
        RD_KAFKA_V_VALUE((void *)(uintptr_t)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(s), RD_KAFKA_V_END);
    if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* Refused at once (queue full, too large): no report will come. */
        tc_warn("publish", "produce refused", TC_S("error", rd_kafka_err2str(rerr)));
        free(s);
        cb(arg, TC_EIO, -1, -1, rd_kafka_err2str(rerr));
    }
}

static void
on_closed(uv_handle_t *h)
{
    struct tc_producer *p = h->data;
    if (--p->handles_open > 0) {
        return;
    }
    void (*cb)(void *) = p->close_cb;
    void *arg = p->close_arg;
    close(p->pipefd[0]);
    close(p->pipefd[1]);
    free(p->topic);
    free(p);
    if (cb != NULL) {
        cb(arg);
    }
}

static void
on_close_tick(uv_timer_t *t)
{
    struct tc_producer *p = t->data;
    rd_kafka_poll(p->rk, 0);
    if (rd_kafka_outq_len(p->rk) > 0 && tc_now_ms() < p->close_deadline) {
        return;
    }
    if (rd_kafka_outq_len(p->rk) > 0) {
        tc_warn("publish", "events not confirmed by Kafka at shutdown",
                TC_I("count", rd_kafka_outq_len(p->rk)));
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(p->rk, 0); /* their reports: the requests get 503 */
    }
    uv_timer_stop(t);
    rd_kafka_queue_io_event_enable(p->q, -1, NULL, 0);
    rd_kafka_queue_destroy(p->q);
    rd_kafka_destroy(p->rk);
    uv_close((uv_handle_t *)&p->poll, on_closed);
    uv_close((uv_handle_t *)&p->timer, on_closed);
}

void
tc_producer_close(struct tc_producer *p, uint64_t timeout_ms, void (*close_cb)(void *arg),
                  void *arg)
{
    p->close_cb = close_cb;
    p->close_arg = arg;
    p->close_deadline = tc_now_ms() + timeout_ms;
    uv_poll_stop(&p->poll);
    uv_timer_start(&p->timer, on_close_tick, 0, CLOSE_POLL_MS);
}
