/* tocsin — SPDX-License-Identifier: MIT
 *
 * Storage and rendering of the metrics declared in metrics.h. The tables
 * below name every metric once; the render walks them.
 */
#include "metrics/metrics.h"
#include "util/util.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct desc {
    const char *name;
    const char *labels; /* "" or `channel="ws"` */
    const char *help;
};

/* clang-format off */
static const struct desc counter_desc[TC_M_COUNTER_COUNT] = {
    [TC_M_EVENTS_CONSUMED] = {"tocsin_events_consumed_total", "", "Kafka messages consumed"},
    [TC_M_EVENTS_ACCEPTED] = {"tocsin_events_total", "result=\"accepted\"", "Events by outcome of the store script"},
    [TC_M_EVENTS_DUPLICATE] = {"tocsin_events_total", "result=\"duplicate\"", NULL},
    [TC_M_EVENTS_STALE] = {"tocsin_events_total", "result=\"stale\"", NULL},
    [TC_M_EVENTS_INVALID] = {"tocsin_events_total", "result=\"invalid\"", NULL},
    [TC_M_DLQ_PRODUCED] = {"tocsin_dlq_messages_total", "result=\"produced\"", "Messages sent to the dead-letter topic"},
    [TC_M_DLQ_FAILED] = {"tocsin_dlq_messages_total", "result=\"failed\"", NULL},
    [TC_M_REDIS_ERRORS] = {"tocsin_redis_errors_total", "", "Redis command errors"},
    [TC_M_REDIS_TIMEOUTS] = {"tocsin_redis_timeouts_total", "", "Redis commands that timed out"},
    [TC_M_REDIS_RECONNECTS] = {"tocsin_redis_reconnects_total", "", "Redis reconnections"},
    [TC_M_INGEST_PAUSES] = {"tocsin_ingest_pauses_total", "", "Times ingest paused for Redis"},
    [TC_M_UPDATES_TAILED] = {"tocsin_updates_tailed_total", "", "Updates read from the history stream"},
    [TC_M_DELIVERIES_WS] = {"tocsin_deliveries_total", "channel=\"ws\"", "Updates queued to sessions, by channel"},
    [TC_M_DELIVERIES_SSE] = {"tocsin_deliveries_total", "channel=\"sse\"", NULL},
    [TC_M_WS_SESSIONS_OPENED] = {"tocsin_sessions_opened_total", "channel=\"ws\"", "Sessions opened, by channel"},
    [TC_M_SSE_SESSIONS_OPENED] = {"tocsin_sessions_opened_total", "channel=\"sse\"", NULL},
    [TC_M_WS_CLOSED_SLOW] = {"tocsin_ws_closed_total", "code=\"1013\"", "WebSocket sessions closed by the server, by close code"},
    [TC_M_WS_CLOSED_TOOBIG] = {"tocsin_ws_closed_total", "code=\"1009\"", NULL},
    [TC_M_WS_CLOSED_POLICY] = {"tocsin_ws_closed_total", "code=\"1008\"", NULL},
    [TC_M_WS_BAD_MESSAGES] = {"tocsin_ws_bad_messages_total", "", "Client messages refused"},
    [TC_M_WS_WRITES] = {"tocsin_ws_writes_total", "", "WebSocket writes of queued frames; frames queued in one loop turn go out in one write"},
    [TC_M_RESUMES_EXACT] = {"tocsin_resumes_total", "result=\"exact\"", "Resumes by outcome"},
    [TC_M_RESUMES_RESET] = {"tocsin_resumes_total", "result=\"reset\"", NULL},
    [TC_M_HTTP_REQUESTS] = {"tocsin_http_requests_total", "", "HTTP requests"},
    [TC_M_HTTP_ERRORS] = {"tocsin_http_errors_total", "", "HTTP requests answered with 4xx or 5xx"},
    [TC_M_ORIGIN_REFUSED] = {"tocsin_origin_refused_total", "", "Sessions refused for their Origin"},
    [TC_M_HTTP_REFUSED_PER_IP] = {"tocsin_http_refused_total", "reason=\"per_ip\"", "Connections closed at accept, by reason (per_ip: the client address is over http.max_pending_per_ip or http.max_connections_per_ip; max_connections: the process holds its cap, http.max_connections or what the fd limit allows; fd_limit: accept failed for want of a descriptor, and what waited was closed)"},
    [TC_M_HTTP_REFUSED_MAX_CONN] = {"tocsin_http_refused_total", "reason=\"max_connections\"", NULL},
    [TC_M_HTTP_REFUSED_FD_LIMIT] = {"tocsin_http_refused_total", "reason=\"fd_limit\"", NULL},
    [TC_M_CLIENT_TOKENS_REFUSED] = {"tocsin_client_tokens_refused_total", "", "Requests refused for their client token"},
    [TC_M_WEBHOOK_ATTEMPTS] = {"tocsin_webhook_attempts_total", "", "Webhook delivery attempts"},
    [TC_M_WEBHOOK_DELIVERED] = {"tocsin_webhook_deliveries_total", "", "Webhook messages delivered (2xx)"},
    [TC_M_WEBHOOK_FAILED_HTTP] = {"tocsin_webhook_failures_total", "reason=\"http\"", "Failed webhook attempts, by reason"},
    [TC_M_WEBHOOK_FAILED_NETWORK] = {"tocsin_webhook_failures_total", "reason=\"network\"", NULL},
    [TC_M_WEBHOOK_FAILED_REFUSED] = {"tocsin_webhook_failures_total", "reason=\"address_refused\"", NULL},
    [TC_M_WEBHOOK_DEAD] = {"tocsin_webhook_dead_total", "", "Webhook messages dead-lettered"},
    [TC_M_EMAIL_ATTEMPTS] = {"tocsin_email_attempts_total", "", "SMTP send attempts"},
    [TC_M_EMAIL_SENT] = {"tocsin_email_sent_total", "", "Mails the SMTP server accepted"},
    [TC_M_EMAIL_FAILED_TRANSIENT] = {"tocsin_email_failures_total", "reason=\"transient\"", "Failed SMTP sends, by kind (transient ones are retried)"},
    [TC_M_EMAIL_FAILED_PERMANENT] = {"tocsin_email_failures_total", "reason=\"permanent\"", NULL},
    [TC_M_EMAIL_GAVE_UP] = {"tocsin_email_gave_up_total", "", "Mails failed after the last retry of email.retry_schedule"},
    [TC_M_EMAIL_UPDATES] = {"tocsin_email_updates_total", "", "Incident updates carried by sent mails"},
    [TC_M_EMAIL_SUBSCRIBE_REFUSED] = {"tocsin_email_subscribe_refused_total", "", "Self-service subscriptions refused by a rate limit"},
    [TC_M_WEBHOOK_DISABLED] = {"tocsin_webhook_endpoints_disabled_total", "", "Webhook endpoints disabled (410 Gone, or failing longer than webhook.disable_after)"},
};

static const struct desc gauge_desc[TC_G_GAUGE_COUNT] = {
    [TC_G_WS_SESSIONS] = {"tocsin_sessions", "channel=\"ws\"", "Open sessions, by channel"},
    [TC_G_SSE_SESSIONS] = {"tocsin_sessions", "channel=\"sse\"", NULL},
    [TC_G_HTTP_CONNECTIONS] = {"tocsin_http_connections", "", "Client connections open on the HTTP listener (requests, WebSocket and SSE sessions)"},
    [TC_G_INGEST_INFLIGHT] = {"tocsin_ingest_inflight", "", "Events taken from Kafka and not yet stored"},
    [TC_G_INGEST_PAUSED] = {"tocsin_ingest_paused", "", "1 while ingest is paused"},
    [TC_G_INGEST_PARTITIONS] = {"tocsin_ingest_partitions", "", "Partitions of kafka.topic assigned to this node (0 on every node: nothing is ingested)"},
    [TC_G_REDIS_CONNECTED] = {"tocsin_redis_connected", "", "1 while Redis is connected"},
    [TC_G_HUB_SEQ] = {"tocsin_hub_seq", "", "Last seq delivered by this node"},
    [TC_G_ACTIVE_INCIDENTS] = {"tocsin_active_incidents", "", "Active incidents"},
    [TC_G_SEND_QUEUE_FRAMES] = {"tocsin_send_queue_frames", "", "Frames queued to sessions"},
    [TC_G_WEBHOOK_INFLIGHT] = {"tocsin_webhook_inflight", "", "Webhook attempts in flight on this node"},
    [TC_G_WEBHOOK_QUEUED] = {"tocsin_webhook_queue_depth", "", "Webhook jobs pending in Redis (every node; sampled each second)"},
    [TC_G_EMAIL_INFLIGHT] = {"tocsin_email_inflight", "", "SMTP sends in flight on this node"},
    [TC_G_EMAIL_QUEUED] = {"tocsin_email_queue_depth", "", "Subscribers with mail queued in Redis (every node; sampled each second)"},
    [TC_G_EMAIL_DUE] = {"tocsin_email_queue_due", "", "Subscribers whose mail is due now and not claimed by any node"},
    [TC_G_WEBHOOK_DUE] = {"tocsin_webhook_queue_due", "", "Pending webhook jobs due now and not claimed by any node"},
};

static const struct desc hist_desc[TC_H_HISTOGRAM_COUNT] = {
    [TC_H_STORE_SECONDS] = {"tocsin_store_seconds", "", "Round trip of the Redis store script"},
    [TC_H_INGEST_SECONDS] = {"tocsin_ingest_seconds", "", "Kafka message timestamp to stored in Redis"},
    [TC_H_FANOUT_SECONDS] = {"tocsin_fanout_seconds", "", "Update read from history to queued for every local session"},
    [TC_H_WEBHOOK_SECONDS] = {"tocsin_webhook_seconds", "", "One webhook attempt, request to answer"},
    [TC_H_EMAIL_SECONDS] = {"tocsin_email_seconds", "", "One SMTP send, connect to the server's answer"},
};
/* clang-format on */

static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define NBOUNDS TC_ARRAY_SIZE(bounds)

struct hist {
    _Atomic uint64_t buckets[NBOUNDS + 1];
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
};

static _Atomic uint64_t counters[TC_M_COUNTER_COUNT];
static _Atomic int64_t gauges[TC_G_GAUGE_COUNT];
static struct hist hists[TC_H_HISTOGRAM_COUNT];

void
tc_metrics_inc(enum tc_counter c)
{
    atomic_fetch_add_explicit(&counters[c], 1, memory_order_relaxed);
}

void
tc_metrics_add(enum tc_counter c, uint64_t n)
{
    atomic_fetch_add_explicit(&counters[c], n, memory_order_relaxed);
}

uint64_t
tc_metrics_get(enum tc_counter c)
{
    return atomic_load_explicit(&counters[c], memory_order_relaxed);
}

void
tc_metrics_gauge_set(enum tc_gauge g, int64_t v)
{
    atomic_store_explicit(&gauges[g], v, memory_order_relaxed);
}

void
tc_metrics_gauge_add(enum tc_gauge g, int64_t delta)
{
    atomic_fetch_add_explicit(&gauges[g], delta, memory_order_relaxed);
}

int64_t
tc_metrics_gauge_get(enum tc_gauge g)
{
    return atomic_load_explicit(&gauges[g], memory_order_relaxed);
}

void
tc_metrics_observe(enum tc_histogram h, double seconds)
{
    size_t i = 0;
    while (i < NBOUNDS && seconds > bounds[i]) {
        i++;
    }
    atomic_fetch_add_explicit(&hists[h].buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&hists[h].count, 1, memory_order_relaxed);
    uint64_t us = seconds > 0 ? (uint64_t)(seconds * 1e6) : 0;
    atomic_fetch_add_explicit(&hists[h].sum_us, us, memory_order_relaxed);
}

/* True when rows[i] is not the first row of its family (already rendered). */
static bool
seen_before(const struct desc *rows, int i)
{
    for (int j = 0; j < i; j++) {
        if (strcmp(rows[j].name, rows[i].name) == 0) {
            return true;
        }
    }
    return false;
}

/* HELP and TYPE of the family of rows[i], whichever of its rows has the help. */
static void
header(FILE *f, const struct desc *rows, int n, int i, const char *type)
{
    for (int j = i; j < n; j++) {
        if (strcmp(rows[j].name, rows[i].name) == 0 && rows[j].help != NULL) {
            fprintf(f, "# HELP %s %s\n", rows[i].name, rows[j].help);
            break;
        }
    }
    fprintf(f, "# TYPE %s %s\n", rows[i].name, type);
}

static void
sample(FILE *f, const char *name, const char *suffix, const char *labels, const char *extra,
       const char *value)
{
    bool any = labels[0] || extra[0];
    fprintf(f, "%s%s%s%s%s%s%s %s\n", name, suffix, any ? "{" : "", labels,
            labels[0] && extra[0] ? "," : "", extra, any ? "}" : "", value);
}

char *
tc_metrics_render(size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (f == NULL) {
        abort();
    }
    char v[64];
    /* The text format wants all rows of a family in one group after its HELP
     * and TYPE, wherever the enum puts them (sessions_opened ws/sse are apart). */
    for (int i = 0; i < TC_M_COUNTER_COUNT; i++) {
        if (seen_before(counter_desc, i)) {
            continue;
        }
        header(f, counter_desc, TC_M_COUNTER_COUNT, i, "counter");
        for (int j = i; j < TC_M_COUNTER_COUNT; j++) {
            if (strcmp(counter_desc[j].name, counter_desc[i].name) == 0) {
                snprintf(v, sizeof(v), "%llu",
                         (unsigned long long)tc_metrics_get((enum tc_counter)j));
                sample(f, counter_desc[j].name, "", counter_desc[j].labels, "", v);
            }
        }
    }
    for (int i = 0; i < TC_G_GAUGE_COUNT; i++) {
        if (seen_before(gauge_desc, i)) {
            continue;
        }
        header(f, gauge_desc, TC_G_GAUGE_COUNT, i, "gauge");
        for (int j = i; j < TC_G_GAUGE_COUNT; j++) {
            if (strcmp(gauge_desc[j].name, gauge_desc[i].name) == 0) {
                snprintf(v, sizeof(v), "%lld", (long long)tc_metrics_gauge_get((enum tc_gauge)j));
                sample(f, gauge_desc[j].name, "", gauge_desc[j].labels, "", v);
            }
        }
    }
    for (int i = 0; i < TC_H_HISTOGRAM_COUNT; i++) {
        const struct desc *d = &hist_desc[i];
        struct hist *h = &hists[i];
        header(f, hist_desc, TC_H_HISTOGRAM_COUNT, i, "histogram");
        uint64_t cum = 0;
        char le[32];
        for (size_t b = 0; b <= NBOUNDS; b++) {
            cum += atomic_load_explicit(&h->buckets[b], memory_order_relaxed);
            if (b < NBOUNDS) {
                snprintf(le, sizeof(le), "le=\"%g\"", bounds[b]);
            } else {
                snprintf(le, sizeof(le), "le=\"+Inf\"");
            }
            snprintf(v, sizeof(v), "%llu", (unsigned long long)cum);
            sample(f, d->name, "_bucket", d->labels, le, v);
        }
        snprintf(v, sizeof(v), "%.6f",
                 (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6);
        sample(f, d->name, "_sum", d->labels, "", v);
        snprintf(v, sizeof(v), "%llu",
                 (unsigned long long)atomic_load_explicit(&h->count, memory_order_relaxed));
        sample(f, d->name, "_count", d->labels, "", v);
    }
    fclose(f);
    *len = size;
    return buf;
}
