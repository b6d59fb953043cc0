/* tocsin — SPDX-License-Identifier: MIT
 *
 * The Kafka consumer on the main loop: librdkafka signals a pipe watched by a
 * uv_poll (plus a timer for rebalances and stragglers), every message becomes
 * a FIFO entry, valid ones go to hooks.apply in partition order, invalid ones
 * to the dead-letter producer (dlq.c). Offsets are stored (offset + 1) per
 * partition strictly in order, only for done entries; librdkafka's auto commit
 * commits what is stored. Pause, resume, rebalance and close live here too.
 */
#define _GNU_SOURCE /* pipe2 */
#include "ingest/ingest_internal.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* At most this many messages are held between the consumer and done. At the
 * bound every assigned partition is paused (consumption stops, membership
 * stays) until the FIFO drains to TC_INGEST_FIFO_LOW. Messages librdkafka had
 * already fetched may still arrive after the pause and are queued: the
 * overshoot is bounded by queued.max.messages.kbytes below. */
#define TC_INGEST_FIFO_MAX 10000
#define TC_INGEST_FIFO_LOW (TC_INGEST_FIFO_MAX / 2)
/* Partition ids past this are refused (logged, not consumed). */
#define TC_INGEST_MAX_PARTITIONS 65536
/* Messages taken per loop turn; past it the timer is kicked to continue, so
 * a busy topic cannot starve the other handles on the loop. */
#define TC_INGEST_BATCH 500
/* The timer serves rebalances, errors and delivery reports even when the
 * pipe stays quiet (librdkafka only signals an empty -> non-empty queue). */
#define TC_INGEST_POLL_MS 200
/* A broker that answered within this window makes us ready. */
#define TC_INGEST_READY_MS 5000

static void timer_cb(uv_timer_t *t);

static void
kick(struct tc_ingest *in)
{
    uv_timer_start(&in->timer, timer_cb, 0, TC_INGEST_POLL_MS);
}

static struct tc_ingest_part *
part_get(struct tc_ingest *in, int32_t id, bool create)
{
    if (id < 0 || id >= TC_INGEST_MAX_PARTITIONS) {
        return NULL;
    }
    if (id >= in->nparts) {
        if (!create) {
            return NULL;
        }
        int32_t n = id + 1;
        in->parts = tc_xrealloc(in->parts, (size_t)n * sizeof(*in->parts));
        memset(in->parts + in->nparts, 0, (size_t)(n - in->nparts) * sizeof(*in->parts));
        in->nparts = n;
    }
    return &in->parts[id];
}

void
tc_ingest__entry_free(struct tc_ingest_entry *e)
{
    if (e->rkm != NULL) {
        rd_kafka_message_destroy(e->rkm);
    }
    if (e->valid) {
        tc_event_fini(&e->ev);
    }
    free(e);
}

/* Unlinks e from the global FIFO (not from its partition list). */
static void
fifo_unlink(struct tc_ingest *in, struct tc_ingest_entry *e)
{
    if (in->cursor == e) {
        in->cursor = e->next;
    }
    if (e->prev != NULL) {
        e->prev->next = e->next;
    } else {
        in->head = e->next;
    }
    if (e->next != NULL) {
        e->next->prev = e->prev;
    } else {
        in->tail = e->prev;
    }
    e->prev = e->next = NULL;
    in->fifo_len--;
    tc_metrics_gauge_set(TC_G_INGEST_INFLIGHT, (int64_t)in->fifo_len);
}

static void
orphan_link(struct tc_ingest *in, struct tc_ingest_entry *e)
{
    e->orphaned = true;
    e->prev = NULL;
    e->next = in->orphans;
    if (in->orphans != NULL) {
        in->orphans->prev = e;
    }
    in->orphans = e;
}

void
tc_ingest__orphan_unlink(struct tc_ingest *in, struct tc_ingest_entry *e)
{
    if (e->prev != NULL) {
        e->prev->next = e->next;
    } else {
        in->orphans = e->next;
    }
    if (e->next != NULL) {
        e->next->prev = e->prev;
    }
    e->prev = e->next = NULL;
}

/* What librdkafka should be doing: fetching or paused. Paused keeps the group
 * membership; we keep polling, so max.poll.interval.ms is never exceeded. */
void
tc_ingest__sync_pause(struct tc_ingest *in)
{
    bool want = in->user_paused || in->failed || in->fifo_full || in->closing;
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t rerr;

    if (want == in->kafka_paused) {
        return;
    }
    in->kafka_paused = want;
    rerr = rd_kafka_assignment(in->rk, &parts);
    if (rerr == RD_KAFKA_RESP_ERR_NO_ERROR && parts->cnt > 0) {
        rerr = want ? rd_kafka_pause_partitions(in->rk, parts)
                    : rd_kafka_resume_partitions(in->rk, parts);
    }
    if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        tc_err("ingest", want ? "pause partitions failed" : "resume partitions failed",
               TC_S("error", rd_kafka_err2str(rerr)));
    }
    tc_info("ingest", want ? "consumption paused" : "consumption resumed",
            TC_B("redis_down", in->user_paused), TC_B("apply_failed", in->failed),
            TC_B("fifo_full", in->fifo_full), TC_B("closing", in->closing),
            TC_I("partitions", parts != NULL ? parts->cnt : 0));
    if (parts != NULL) {
        rd_kafka_topic_partition_list_destroy(parts);
    }
}

static void
update_paused_gauge(struct tc_ingest *in)
{
    tc_metrics_gauge_set(TC_G_INGEST_PAUSED, (in->user_paused || in->failed) ? 1 : 0);
}

static void
store_offset(struct tc_ingest *in, int32_t partition, int64_t next_offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t rerr;

    rd_kafka_topic_partition_list_add(l, in->topic, partition)->offset = next_offset;
    rerr = rd_kafka_offsets_store(in->rk, l);
    if (rerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rerr = l->elems[0].err;
    }
    if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* Expected for a partition revoked meanwhile: its next owner gets
         * the message again and the store's dedup absorbs it. */
        tc_debug("ingest", "offset not stored", TC_I("partition", partition),
                 TC_I("offset", next_offset), TC_S("error", rd_kafka_err2str(rerr)));
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* Pops the done prefix of partition p and stores the offset after it. */
static void
advance(struct tc_ingest *in, int32_t partition)
{
    struct tc_ingest_part *p = part_get(in, partition, false);
    struct tc_ingest_entry *e;
    int64_t last = -1;

    if (p == NULL) {
        return;
    }
    while ((e = p->head) != NULL && e->state == TC_ENTRY_DONE) {
        p->head = e->pnext;
        if (p->head == NULL) {
            p->tail = NULL;
        }
        last = e->offset;
        fifo_unlink(in, e);
        tc_ingest__entry_free(e);
    }
    if (last >= 0) {
        store_offset(in, partition, last + 1);
    }
    if (in->fifo_full && in->fifo_len <= TC_INGEST_FIFO_LOW) {
        in->fifo_full = false;
        tc_ingest__sync_pause(in);
    }
}

void
tc_ingest__entry_done(struct tc_ingest *in, struct tc_ingest_entry *e)
{
    e->state = TC_ENTRY_DONE;
    advance(in, e->partition);
}

/* Hands queued entries to apply in FIFO order until something blocks. apply
 * may call tc_ingest_done inside, which may free entries: in->cursor is kept
 * valid by fifo_unlink, so the loop never holds a pointer across apply. */
static void
dispatch(struct tc_ingest *in)
{
    struct tc_ingest_entry *e;

    if (in->dispatching) {
        return;
    }
    in->dispatching = true;
    while (in->cursor != NULL && !in->user_paused && !in->failed && !in->closing) {
        e = in->cursor;
        in->cursor = e->next;
        if (e->state != TC_ENTRY_QUEUED) {
            continue;
        }
        e->state = TC_ENTRY_APPLYING;
        in->applying++;
        in->hooks.apply(in->hooks.arg, &e->ev, e);
    }
    in->dispatching = false;
}

/* After a failure: once resume was asked for and no apply is in flight, every
 * entry not done is applied again, in FIFO order, then partitions resume. */
static void
try_resume(struct tc_ingest *in)
{
    struct tc_ingest_entry *e;
    size_t again = 0;

    if (in->closing || in->user_paused) {
        return;
    }
    if (in->failed) {
        if (!in->resume_wanted || in->applying > 0) {
            return;
        }
        for (e = in->head; e != NULL; e = e->next) {
            if (e->state == TC_ENTRY_FAILED) {
                e->state = TC_ENTRY_QUEUED;
                again++;
            }
        }
        in->failed = false;
        in->cursor = in->head;
        tc_info("ingest", "resuming after failed apply", TC_U("failed", again),
                TC_U("queued", in->fifo_len));
    }
    update_paused_gauge(in);
    dispatch(in);
    tc_ingest__sync_pause(in);
}

void
tc_ingest_done(struct tc_ingest *in, void *token, int status)
{
    struct tc_ingest_entry *e = token;

    if (e->in == NULL) {
        /* Abandoned by tc_ingest_close at its timeout: in is gone. */
        tc_ingest__entry_free(e);
        return;
    }
    in->applying--;
    if (e->orphaned) {
        tc_ingest__orphan_unlink(in, e);
        tc_ingest__entry_free(e);
    } else if (status == 0) {
        tc_ingest__entry_done(in, e);
    } else {
        e->state = TC_ENTRY_FAILED;
        if (!in->failed) {
            in->failed = true;
            tc_metrics_inc(TC_M_INGEST_PAUSES);
            tc_warn("ingest", "apply failed, pausing ingest", TC_S("status", tc_strerror(status)),
                    TC_S("event_id", e->ev.event_id), TC_I("partition", e->partition),
                    TC_I("offset", e->offset));
        }
        /* A later set_paused(false) is needed, whatever came before. */
        in->resume_wanted = false;
        update_paused_gauge(in);
        tc_ingest__sync_pause(in);
    }
    if (in->closing) {
        kick(in);
    } else if (in->failed) {
        try_resume(in);
    }
}

void
tc_ingest_set_paused(struct tc_ingest *in, bool paused)
{
    if (paused) {
        if (!in->user_paused) {
            in->user_paused = true;
            if (!in->failed) {
                tc_metrics_inc(TC_M_INGEST_PAUSES);
            }
            tc_warn("ingest", "pausing ingest (store unavailable)");
            update_paused_gauge(in);
            tc_ingest__sync_pause(in);
        }
        return;
    }
    if (in->user_paused) {
        tc_info("ingest", "store available again");
    }
    in->user_paused = false;
    in->resume_wanted = true;
    try_resume(in);
}

bool
tc_ingest_ready(const struct tc_ingest *in)
{
    if (in->brokers_down || in->closing) {
        return false;
    }
    if (in->assigned > 0) {
        return true;
    }
    return in->last_ok_ms != 0 && tc_now_ms() - in->last_ok_ms <= TC_INGEST_READY_MS;
}

void
tc_ingest__broker_answered(struct tc_ingest *in)
{
    in->last_ok_ms = tc_now_ms();
    in->brokers_down = false;
}

static void
on_message(struct tc_ingest *in, rd_kafka_message_t *rkm)
{
    struct tc_ingest_part *p;
    struct tc_ingest_entry *e;
    int rc;

    tc_metrics_inc(TC_M_EVENTS_CONSUMED);
    if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        tc_warn("ingest", "consumer error", TC_S("error", rd_kafka_message_errstr(rkm)),
                TC_I("partition", rkm->partition));
        rd_kafka_message_destroy(rkm);
        return;
    }
    tc_ingest__broker_answered(in);
    p = part_get(in, rkm->partition, true);
    if (p == NULL) {
        tc_err("ingest", "partition id out of range, message skipped",
               TC_I("partition", rkm->partition));
        rd_kafka_message_destroy(rkm);
        return;
    }
    e = tc_xcalloc(1, sizeof(*e));
    e->in = in;
    e->rkm = rkm;
    e->partition = rkm->partition;
    e->offset = rkm->offset;
    e->state = TC_ENTRY_QUEUED;
    e->prev = in->tail;
    if (in->tail != NULL) {
        in->tail->next = e;
    } else {
        in->head = e;
    }
    in->tail = e;
    if (in->cursor == NULL) {
        in->cursor = e;
    }
    if (p->tail != NULL) {
        p->tail->pnext = e;
    } else {
        p->head = e;
    }
    p->tail = e;
    in->fifo_len++;
    tc_metrics_gauge_set(TC_G_INGEST_INFLIGHT, (int64_t)in->fifo_len);
    if (in->fifo_len >= TC_INGEST_FIFO_MAX && !in->fifo_full) {
        in->fifo_full = true;
        tc_warn("ingest", "ingest queue full, pausing consumption", TC_U("queued", in->fifo_len));
        tc_ingest__sync_pause(in);
    }

    if (rkm->payload == NULL) {
        rc = tc_error_set(&e->error, TC_EINVAL, "(root): empty message");
    } else {
        rc = tc_event_parse(rkm->payload, rkm->len, &e->ev, &e->error);
    }
    if (rc == 0) {
        e->valid = true;
        return;
    }
    tc_metrics_inc(TC_M_EVENTS_INVALID);
    tc_warn("ingest", "invalid event, dead-lettering", TC_S("error", e->error.text),
            TC_I("partition", e->partition), TC_I("offset", e->offset), TC_U("bytes", rkm->len));
    tc_ingest__dlq_send(in, e);
}

/* Takes what the queue holds, then dispatches. Also serves rebalance, error
 * and statistics callbacks (they arrive through the same queue). */
static void
consume(struct tc_ingest *in)
{
    rd_kafka_message_t *rkm;
    int n = 0;

    rd_kafka_poll(in->dlq, 0);
    if (in->closing) {
        return;
    }
    while (n < TC_INGEST_BATCH && (rkm = rd_kafka_consumer_poll(in->rk, 0)) != NULL) {
        on_message(in, rkm);
        n++;
    }
    if (n == TC_INGEST_BATCH) {
        kick(in);
    }
    dispatch(in);
}

static void
poll_cb(uv_poll_t *h, int status, int events)
{
    struct tc_ingest *in = h->data;
    char buf[256];

    TC_UNUSED(status);
    TC_UNUSED(events);
    while (read(in->pipefd[0], buf, sizeof(buf)) > 0) {
        /* Drain: one byte per wake-up request, the queues say the rest. */
    }
    consume(in);
    if (in->closing) {
        kick(in);
    }
}

static void finish_close(struct tc_ingest *in);

static void
timer_cb(uv_timer_t *t)
{
    struct tc_ingest *in = t->data;

    consume(in);
    if (in->closing && !in->finishing &&
        ((in->applying == 0 && in->dlq_pending == 0) || tc_now_ms() >= in->close_deadline_ms)) {
        finish_close(in);
    }
}

void
tc_ingest__assign(struct tc_ingest *in, int32_t partition)
{
    struct tc_ingest_part *p = part_get(in, partition, true);

    if (p != NULL && !p->assigned) {
        p->assigned = true;
        in->assigned++;
        tc_metrics_gauge_set(TC_G_INGEST_PARTITIONS, in->assigned);
    }
}

void
tc_ingest__revoke(struct tc_ingest *in, int32_t partition)
{
    struct tc_ingest_part *p = part_get(in, partition, false);
    struct tc_ingest_entry *e, *next;
    size_t dropped = 0;

    if (p == NULL) {
        return;
    }
    if (p->assigned) {
        p->assigned = false;
        in->assigned--;
        tc_metrics_gauge_set(TC_G_INGEST_PARTITIONS, in->assigned);
    }
    for (e = p->head; e != NULL; e = next) {
        next = e->pnext;
        e->pnext = NULL;
        fifo_unlink(in, e);
        dropped++;
        if (e->state == TC_ENTRY_APPLYING || e->state == TC_ENTRY_DLQ) {
            /* Its done (or delivery report) is still to come: keep it. */
            orphan_link(in, e);
        } else {
            tc_ingest__entry_free(e);
        }
    }
    p->head = p->tail = NULL;
    if (dropped > 0) {
        tc_info("ingest", "dropped entries of a revoked partition", TC_I("partition", partition),
                TC_U("entries", dropped));
    }
    if (in->fifo_full && in->fifo_len <= TC_INGEST_FIFO_LOW) {
        in->fifo_full = false;
        tc_ingest__sync_pause(in);
    }
}

struct tc_ingest *
tc_ingest_new(uv_loop_t *loop, const struct tc_config *cfg, const char *bootstrap,
              const struct tc_ingest_hooks *hooks, struct tc_error *err)
{
    struct tc_ingest *in = tc_xcalloc(1, sizeof(*in));
    const char *brokers = cfg->kafka_brokers;
    struct tc_ingest *ret = NULL;

    in->pipefd[0] = in->pipefd[1] = -1;
    if (brokers == NULL || brokers[0] == '\0') {
        brokers = bootstrap;
    }
    if (brokers == NULL || brokers[0] == '\0' || hooks == NULL || hooks->apply == NULL) {
        tc_error_set(err, TC_EINVAL, "kafka: no brokers and no embedded bootstrap, or no hook");
        goto out;
    }
    in->loop = loop;
    in->hooks = *hooks;
    in->topic = tc_xstrdup(cfg->kafka_topic);
    in->dlq_topic = tc_xstrdup(cfg->kafka_dlq_topic);
    in->rk = tc_ingest__consumer_new(in, brokers, cfg->kafka_group, cfg->kafka_fetch_wait_ms, err);
    if (in->rk == NULL) {
        goto out;
    }
    in->dlq = tc_ingest__dlq_new(in, brokers, err);
    if (in->dlq == NULL) {
        goto out;
    }
    if (pipe2(in->pipefd, O_NONBLOCK | O_CLOEXEC) < 0) {
        tc_error_set(err, TC_EIO, "kafka: pipe: %s", strerror(errno));
        goto out;
    }
    /* Both queues wake the loop through one pipe; the handlers poll both. */
    in->rkq = rd_kafka_queue_get_consumer(in->rk);
    in->dlq_q = rd_kafka_queue_get_main(in->dlq);
    rd_kafka_queue_io_event_enable(in->rkq, in->pipefd[1], "1", 1);
    rd_kafka_queue_io_event_enable(in->dlq_q, in->pipefd[1], "1", 1);
    if (uv_poll_init(loop, &in->poll, in->pipefd[0]) != 0) {
        tc_error_set(err, TC_EIO, "kafka: uv_poll_init failed");
        goto out;
    }
    uv_timer_init(loop, &in->timer);
    in->poll.data = in;
    in->timer.data = in;
    in->handles_open = 2;
    ret = in;
out:
    if (ret == NULL) {
        if (in->rkq != NULL) {
            rd_kafka_queue_io_event_enable(in->rkq, -1, NULL, 0);
            rd_kafka_queue_destroy(in->rkq);
        }
        if (in->dlq_q != NULL) {
            rd_kafka_queue_io_event_enable(in->dlq_q, -1, NULL, 0);
            rd_kafka_queue_destroy(in->dlq_q);
        }
        if (in->rk != NULL) {
            rd_kafka_destroy(in->rk);
        }
        if (in->dlq != NULL) {
            rd_kafka_destroy(in->dlq);
        }
        for (int i = 0; i < 2; i++) {
            if (in->pipefd[i] >= 0) {
                close(in->pipefd[i]);
            }
        }
        free(in->topic);
        free(in->dlq_topic);
        free(in);
    }
    return ret;
}

int
tc_ingest_start(struct tc_ingest *in)
{
    rd_kafka_topic_partition_list_t *topics;
    rd_kafka_resp_err_t rerr;

    if (in->started || in->closing) {
        return TC_ESTATE;
    }
    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, in->topic, RD_KAFKA_PARTITION_UA);
    rerr = rd_kafka_subscribe(in->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        tc_err("ingest", "subscribe failed", TC_S("topic", in->topic),
               TC_S("error", rd_kafka_err2str(rerr)));
        return TC_EIO;
    }
    uv_poll_start(&in->poll, UV_READABLE, poll_cb);
    uv_timer_start(&in->timer, timer_cb, TC_INGEST_POLL_MS, TC_INGEST_POLL_MS);
    in->started = true;
    tc_info("ingest", "consumer started", TC_S("topic", in->topic),
            TC_S("dlq_topic", in->dlq_topic));
    return 0;
}

static void
handle_closed(uv_handle_t *h)
{
    struct tc_ingest *in = h->data;
    void (*cb)(void *arg) = in->close_cb;
    void *arg = in->close_arg;

    if (--in->handles_open > 0) {
        return;
    }
    close(in->pipefd[0]);
    close(in->pipefd[1]);
    free(in->parts);
    free(in->topic);
    free(in->dlq_topic);
    free(in);
    tc_info("ingest", "consumer closed");
    if (cb != NULL) {
        cb(arg);
    }
}

/* Abandons an apply still in flight at the close timeout: the entry outlives
 * the ingest (ev stays valid for the hook) and is freed by its late done. Its
 * offset was never stored, so the message is consumed again after restart. */
static void
abandon(struct tc_ingest_entry *e)
{
    e->in = NULL;
    rd_kafka_message_destroy(e->rkm);
    e->rkm = NULL;
}

static void
drop_entries(struct tc_ingest *in)
{
    struct tc_ingest_entry *e;
    size_t abandoned = 0;

    while ((e = in->head) != NULL) {
        fifo_unlink(in, e);
        if (e->state == TC_ENTRY_APPLYING) {
            abandon(e);
            abandoned++;
        } else {
            tc_ingest__entry_free(e);
        }
    }
    while ((e = in->orphans) != NULL) {
        tc_ingest__orphan_unlink(in, e);
        if (e->state == TC_ENTRY_APPLYING) {
            abandon(e);
            abandoned++;
        } else {
            tc_ingest__entry_free(e);
        }
    }
    for (int32_t i = 0; i < in->nparts; i++) {
        in->parts[i].head = in->parts[i].tail = NULL;
    }
    if (abandoned > 0) {
        tc_warn("ingest", "close timed out with applies in flight; they will be redelivered",
                TC_U("entries", abandoned));
    }
}

static void
finish_close(struct tc_ingest *in)
{
    uint64_t now = tc_now_ms();
    uint64_t left = in->close_deadline_ms > now ? in->close_deadline_ms - now : 0;
    rd_kafka_resp_err_t rerr;

    in->finishing = true;
    uv_timer_stop(&in->timer);
    uv_poll_stop(&in->poll);

    /* Dead letters still queued get up to 5 s beyond what the deadline left;
     * after that they are purged and their entries stay not done (no offset
     * stored), so they are consumed and dead-lettered again next time. */
    left = left < 1000 ? 1000 : (left > 5000 ? 5000 : left);
    if (rd_kafka_flush(in->dlq, (int)left) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_purge(in->dlq, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(in->dlq, 1000);
    }
    drop_entries(in);

    /* Leaves the group (our rebalance callback sees the revoke) and commits
     * the stored offsets. It blocks while it serves the queue: acceptable at
     * shutdown. */
    rerr = rd_kafka_consumer_close(in->rk);
    if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        tc_warn("ingest", "consumer close", TC_S("error", rd_kafka_err2str(rerr)));
    }
    rd_kafka_queue_io_event_enable(in->rkq, -1, NULL, 0);
    rd_kafka_queue_io_event_enable(in->dlq_q, -1, NULL, 0);
    rd_kafka_queue_destroy(in->rkq);
    rd_kafka_queue_destroy(in->dlq_q);
    rd_kafka_destroy(in->rk);
    rd_kafka_destroy(in->dlq);
    tc_metrics_gauge_set(TC_G_INGEST_INFLIGHT, 0);
    uv_close((uv_handle_t *)&in->poll, handle_closed);
    uv_close((uv_handle_t *)&in->timer, handle_closed);
}

void
tc_ingest_close(struct tc_ingest *in, uint64_t timeout_ms, void (*close_cb)(void *arg), void *arg)
{
    if (in->closing) {
        return;
    }
    in->closing = true;
    in->close_cb = close_cb;
    in->close_arg = arg;
    in->close_deadline_ms = tc_now_ms() + timeout_ms;
    tc_info("ingest", "closing", TC_U("queued", in->fifo_len), TC_U("applying", in->applying),
            TC_U("dead_letters", in->dlq_pending));
    tc_ingest__sync_pause(in);
    kick(in);
}
