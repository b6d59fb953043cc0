/* tocsin — SPDX-License-Identifier: MIT
 *
 * Private to broker/ingest/: the FIFO entry that follows one Kafka message
 * from the consumer to done, the ingest object, and the helpers shared by
 * ingest.c (consumer), dlq.c (dead-letter producer) and kafka_log.c.
 * Nothing outside this folder includes librdkafka or this header.
 */
#ifndef TC_INGEST_INTERNAL_H
#define TC_INGEST_INTERNAL_H

#include "ingest/ingest.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

enum tc_entry_state {
    TC_ENTRY_QUEUED,   /* valid, waiting for apply (first time or after a failure) */
    TC_ENTRY_APPLYING, /* handed to hooks.apply, done not called yet */
    TC_ENTRY_DLQ,      /* invalid, waiting for the dead-letter delivery report */
    TC_ENTRY_FAILED,   /* apply said "not stored": applied again after resume */
    TC_ENTRY_DONE,     /* its offset may be stored once those before it are */
};

struct tc_ingest_part;

/* One consumed message. It sits in two lists: the global FIFO (arrival order,
 * the dispatch order) and its partition's FIFO (the offset store order). An
 * orphaned entry (partition revoked, or ingest closed) is in neither list and
 * lives only until its pending done or delivery report arrives. */
struct tc_ingest_entry {
    struct tc_ingest *in;                /* NULL once abandoned by tc_ingest_close */
    struct tc_ingest_entry *prev, *next; /* global FIFO */
    struct tc_ingest_entry *pnext;       /* partition FIFO */
    rd_kafka_message_t *rkm;             /* owned; NULL once abandoned */
    struct tc_event ev;                  /* owned when valid */
    bool valid;
    bool orphaned;
    enum tc_entry_state state;
    int32_t partition;
    int64_t offset;
    struct tc_error error; /* why it is invalid (the DLQ `error` header) */
};

/* Per assigned partition: the head and tail of its FIFO. */
struct tc_ingest_part {
    struct tc_ingest_entry *head, *tail;
    bool assigned;
};

struct tc_ingest {
    uv_loop_t *loop;
    struct tc_ingest_hooks hooks;
    char *topic;
    char *dlq_topic;

    rd_kafka_t *rk;          /* the consumer */
    rd_kafka_queue_t *rkq;   /* its consumer queue (io event -> pipe) */
    rd_kafka_t *dlq;         /* the dead-letter producer */
    rd_kafka_queue_t *dlq_q; /* its main queue (delivery reports, io event) */
    int pipefd[2];
    uv_poll_t poll;
    uv_timer_t timer;
    int handles_open;

    /* The FIFO, bounded by TC_INGEST_FIFO_MAX (see ingest.c). */
    struct tc_ingest_entry *head, *tail;
    struct tc_ingest_entry *cursor;  /* next entry to consider for dispatch */
    struct tc_ingest_entry *orphans; /* revoked while in flight (prev/next links) */
    size_t fifo_len;
    size_t applying; /* applies in flight, orphans included */
    size_t dlq_pending;

    /* Partitions indexed by id, grown on assignment (at most
     * TC_INGEST_MAX_PARTITIONS). */
    struct tc_ingest_part *parts;
    int32_t nparts;
    int assigned;

    bool started;
    bool user_paused;   /* tc_ingest_set_paused(true): Redis is down */
    bool failed;        /* an apply failed: wait for resume and no apply in flight */
    bool resume_wanted; /* tc_ingest_set_paused(false) since the failure */
    bool fifo_full;     /* at the bound: partitions paused until it drains */
    bool kafka_paused;  /* what we last asked librdkafka for */
    bool dispatching;   /* re-entrancy guard: apply may call done inside */
    bool closing;
    bool finishing;
    bool brokers_down;
    uint64_t last_ok_ms; /* a broker answered (message, rebalance, stats) */

    uint64_t close_deadline_ms;
    void (*close_cb)(void *arg);
    void *close_arg;
};

/* kafka_log.c: librdkafka's log callback (its own threads) into tc_log. */
void tc_ingest__log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);
/* Sets one conf property; @returns 0 or TC_EINVAL with err naming it. */
int tc_ingest__conf_set(rd_kafka_conf_t *conf, const char *key, const char *value,
                        struct tc_error *err);

/* dlq.c */
rd_kafka_t *tc_ingest__dlq_new(struct tc_ingest *in, const char *brokers, struct tc_error *err);
/* Produces e's key and value unchanged to the DLQ topic; the entry becomes
 * done from the delivery report (or at once if the produce is refused). */
void tc_ingest__dlq_send(struct tc_ingest *in, struct tc_ingest_entry *e);

/* consumer.c: the consumer handle with its callbacks (opaque = in);
 * fetch_wait_ms is its fetch.wait.max.ms (kafka.fetch_wait). */
rd_kafka_t *tc_ingest__consumer_new(struct tc_ingest *in, const char *brokers, const char *group,
                                    int64_t fetch_wait_ms, struct tc_error *err);

/* ingest.c: pauses or resumes the assigned partitions to match the state. */
void tc_ingest__sync_pause(struct tc_ingest *in);
/* A broker answered: ready again. */
void tc_ingest__broker_answered(struct tc_ingest *in);
/* Partition revoked: its entries not done are dropped (in-flight ones are
 * orphaned until their done), nothing more is stored for it. */
void tc_ingest__revoke(struct tc_ingest *in, int32_t partition);
/* Partition assigned. */
void tc_ingest__assign(struct tc_ingest *in, int32_t partition);

/* ingest.c: marks e done (status 0) and stores what may be stored. */
void tc_ingest__entry_done(struct tc_ingest *in, struct tc_ingest_entry *e);
void tc_ingest__entry_free(struct tc_ingest_entry *e);
/* Takes an orphaned entry out of the orphan list (before freeing it). */
void tc_ingest__orphan_unlink(struct tc_ingest *in, struct tc_ingest_entry *e);

#endif
