/* tocsin — SPDX-License-Identifier: MIT
 *
 * Process-wide counters, gauges and histograms, rendered in the Prometheus
 * text format. Updates are relaxed atomics, so any thread (librdkafka's
 * included) may count; nothing here allocates after start-up.
 */
#ifndef TC_METRICS_H
#define TC_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum tc_counter {
    TC_M_EVENTS_CONSUMED,
    TC_M_EVENTS_ACCEPTED,
    TC_M_EVENTS_DUPLICATE,
    TC_M_EVENTS_STALE,
    TC_M_EVENTS_INVALID,
    TC_M_DLQ_PRODUCED,
    TC_M_DLQ_FAILED,
    TC_M_REDIS_ERRORS,
    TC_M_REDIS_TIMEOUTS,
    TC_M_REDIS_RECONNECTS,
    TC_M_INGEST_PAUSES,
    TC_M_UPDATES_TAILED,
    TC_M_DELIVERIES_WS,
    TC_M_DELIVERIES_SSE,
    TC_M_WS_SESSIONS_OPENED,
    TC_M_WS_CLOSED_SLOW,   /* 1013 */
    TC_M_WS_CLOSED_TOOBIG, /* 1009 */
    TC_M_WS_CLOSED_POLICY, /* 1008 */
    TC_M_WS_BAD_MESSAGES,
    TC_M_WS_WRITES, /* one per write of queued frames: coalesced frames are one */
    TC_M_SSE_SESSIONS_OPENED,
    TC_M_RESUMES_EXACT,
    TC_M_RESUMES_RESET,
    TC_M_HTTP_REQUESTS,
    TC_M_HTTP_ERRORS,
    TC_M_ORIGIN_REFUSED,
    TC_M_HTTP_REFUSED_PER_IP,   /* closed at accept: the address is over a per-IP limit */
    TC_M_HTTP_REFUSED_MAX_CONN, /* closed at accept: the process holds http.max_connections */
    TC_M_HTTP_REFUSED_FD_LIMIT, /* closed at accept by the fd guard: accept met EMFILE */
    TC_M_CLIENT_TOKENS_REFUSED, /* 401/403 for a missing, bad or too narrow client token */
    TC_M_WEBHOOK_ATTEMPTS,
    TC_M_WEBHOOK_DELIVERED,
    TC_M_WEBHOOK_FAILED_HTTP,    /* an answer other than 2xx */
    TC_M_WEBHOOK_FAILED_NETWORK, /* connect, timeout, reset */
    TC_M_WEBHOOK_FAILED_REFUSED, /* the address guard refused the address */
    TC_M_WEBHOOK_DEAD,
    TC_M_WEBHOOK_DISABLED, /* endpoints disabled by 410 or by failing too long */
    TC_M_EMAIL_ATTEMPTS,
    TC_M_EMAIL_SENT,              /* mails the SMTP server accepted */
    TC_M_EMAIL_FAILED_TRANSIENT,  /* 4xx or no connection: retried */
    TC_M_EMAIL_FAILED_PERMANENT,  /* 5xx: recorded, not retried */
    TC_M_EMAIL_GAVE_UP,           /* out of retries */
    TC_M_EMAIL_UPDATES,           /* updates carried by sent digests */
    TC_M_EMAIL_SUBSCRIBE_REFUSED, /* self-service subscriptions refused by a rate limit */
    TC_M_COUNTER_COUNT
};

enum tc_gauge {
    TC_G_WS_SESSIONS,
    TC_G_SSE_SESSIONS,
    TC_G_HTTP_CONNECTIONS, /* accepted client connections open, sessions included */
    TC_G_INGEST_INFLIGHT,
    TC_G_INGEST_PAUSED,
    TC_G_INGEST_PARTITIONS, /* incident-topic partitions assigned to this node */
    TC_G_REDIS_CONNECTED,
    TC_G_HUB_SEQ,
    TC_G_ACTIVE_INCIDENTS,
    TC_G_SEND_QUEUE_FRAMES,
    TC_G_WEBHOOK_INFLIGHT,
    TC_G_WEBHOOK_QUEUED, /* jobs waiting in Redis, all nodes */
    TC_G_WEBHOOK_DUE,    /* of those, FIFO heads due now and not leased */
    TC_G_EMAIL_INFLIGHT,
    TC_G_EMAIL_QUEUED, /* subscribers with queued mail, all nodes */
    TC_G_EMAIL_DUE,    /* of those, due now and not leased */
    TC_G_GAUGE_COUNT
};

enum tc_histogram {
    TC_H_STORE_SECONDS,   /* Redis script round trip */
    TC_H_INGEST_SECONDS,  /* Kafka timestamp → accepted in Redis */
    TC_H_FANOUT_SECONDS,  /* tail received → queued to every local session */
    TC_H_WEBHOOK_SECONDS, /* one webhook attempt, request to answer */
    TC_H_EMAIL_SECONDS,   /* one SMTP send, connect to the server's answer */
    TC_H_HISTOGRAM_COUNT
};

void tc_metrics_inc(enum tc_counter c);
void tc_metrics_add(enum tc_counter c, uint64_t n);
uint64_t tc_metrics_get(enum tc_counter c);
void tc_metrics_gauge_set(enum tc_gauge g, int64_t v);
void tc_metrics_gauge_add(enum tc_gauge g, int64_t delta);
int64_t tc_metrics_gauge_get(enum tc_gauge g);
void tc_metrics_observe(enum tc_histogram h, double seconds);

/* Renders every metric in the Prometheus text format (version 0.0.4).
 * @returns new, a NUL-terminated string the caller frees. */
char *tc_metrics_render(size_t *len);

#endif
