/* tocsin — SPDX-License-Identifier: MIT
 *
 * Server-Sent Events (DESIGN §4): GET /v1/events?<filter>. Each stream is a
 * hub sink with the same bounded queue as a WebSocket session; at the bound
 * the stream is closed and the client resumes with Last-Event-ID.
 * @loop main.
 */
#include "http/http_internal.h"
#include "log/log.h"
#include "metrics/metrics.h"

#include <stdlib.h>
#include <string.h>

static int
sse_push(struct tc_hub_sink *sink, struct tc_frame *f)
{
    struct tc_http__conn *c = (struct tc_http__conn *)sink;
    if (c->sse_closing) {
        return TC_EAGAIN;
    }
    if (tc_frame_queue_push(&c->q, f) != TC_OK) {
        /* The bound: a reader this slow reconnects with Last-Event-ID. */
        tc_info("sse", "stream too slow, closing", TC_U("queued", c->q.len));
        c->sse_closing = true;
        tc_frame_queue_clear(&c->q);
        lws_callback_on_writable(c->wsi);
        return TC_EAGAIN;
    }
    if (c->q.len == 1) {
        lws_callback_on_writable(c->wsi);
    }
    return TC_OK;
}

static const struct tc_hub_sink_ops sse_ops = {.push = sse_push};

/* Last-Event-ID (or ?since=&epoch=) is "<epoch>:<seq>". */
static bool
resume_point(struct tc_http__conn *c, const char *qs, char *epoch, size_t elen, uint64_t *since)
{
    char id[TC_EPOCH_MAX + 24] = "";
    if (lws_hdr_custom_copy(c->wsi, id, sizeof(id), "last-event-id:", 14) <= 0) {
        char s[24];
        if (tc_query_get(qs, "since", s, sizeof(s)) <= 0) {
            return false;
        }
        char e[TC_EPOCH_MAX] = "";
        tc_query_get(qs, "epoch", e, sizeof(e));
        snprintf(id, sizeof(id), "%s:%s", e, s);
    }
    char *colon = strrchr(id, ':');
    if (colon == NULL) {
        return false;
    }
    char *end = NULL;
    unsigned long long v = strtoull(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0') {
        return false;
    }
    *colon = '\0';
    snprintf(epoch, elen, "%s", id);
    *since = v;
    return true;
}

/* A request body: Content-Length above 0 (server.c checked it is digits)
 * or any Transfer-Encoding. */
static bool
has_body(struct lws *wsi)
{
    char cl[24] = "";
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
        return true;
    }
    lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH);
    return cl[strspn(cl, "0")] != '\0';
}

void
tc_http__sse_start(struct tc_http__conn *c)
{
    struct tc_server *srv = c->srv;
    char origin[256] = "", qs[TC_HTTP_QUERY_MAX], epoch[TC_EPOCH_MAX] = "";
    struct tc_filter filter;
    struct tc_client_token tok;
    lws_hdr_copy(c->wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN);
    if (!tc_server_origin_allowed(srv->cfg, origin)) {
        tc_metrics_inc(TC_M_ORIGIN_REFUSED);
        tc_http__respond_error(c, 403, "origin_not_allowed", "this Origin may not subscribe");
        return;
    }
    if (srv->shutting_down) {
        tc_http__respond_error(c, 503, "shutting_down", "try another node");
        return;
    }
    if (has_body(c->wsi)) {
        /* Nobody reads it once the stream runs (hangup.c): it would only
         * close the stream. */
        c->close_after = true;
        tc_http__respond_error(c, 400, "bad_request", "GET /v1/events takes no body");
        return;
    }
    if (!tc_hub_loaded(srv->deps.hub)) {
        tc_http__respond_error(c, 503, "starting", "tocsind is loading its history, try again");
        return;
    }
    if (tc_http__request_filter(c, qs, sizeof(qs), &filter) != TC_OK) {
        return;
    }
    /* A stream is judged once, here: its filter cannot change later. */
    if (!tc_http__client_token(c, qs, &filter, &tok)) {
        tc_filter_fini(&filter);
        return;
    }
    tc_client_token_fini(&tok);
    uint64_t since = 0;
    bool has_since = resume_point(c, qs, epoch, sizeof(epoch), &since);
    c->kind = CONN_SSE;
    c->sink.ops = &sse_ops;
    c->sink.enc = TC_HUB_ENC_SSE;
    tc_frame_queue_init(&c->q, (uint32_t)srv->cfg->ws_send_queue);
    c->last_send_ms = tc_now_ms();
    c->next = &srv->sse;
    c->prev = srv->sse.prev;
    srv->sse.prev->next = c;
    srv->sse.prev = c;
    srv->nsse++;
    tc_metrics_inc(TC_M_SSE_SESSIONS_OPENED);
    tc_metrics_gauge_set(TC_G_SSE_SESSIONS, (int64_t)srv->nsse);
    /* A stream never ends by itself: no idle timeout for it. */
    lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0);
    /* lws reads no more from this connection: the hang-up watch sees the
     * client leave, or send more (hangup.c says why). */
    tc_http__conn_watch(c, true);
    enum tc_resume r;
    c->sub = tc_hub_subscribe(srv->deps.hub, &c->sink, "default", &filter, has_since, since,
                              has_since ? epoch : NULL, &r);
    tc_filter_fini(&filter);
    lws_callback_on_writable(c->wsi);
}

int
tc_http__sse_writeable(struct tc_http__conn *c)
{
    if (c->sse_closing) {
        return -1;
    }
    if (!c->sse_headers_sent) {
        unsigned char hbuf[LWS_PRE + 1024];
        unsigned char *start = hbuf + LWS_PRE, *p = start, *end = hbuf + sizeof(hbuf) - 1;
        if (lws_add_http_common_headers(c->wsi, HTTP_STATUS_OK, "text/event-stream",
                                        LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end) ||
            lws_add_http_header_by_name(c->wsi, (const unsigned char *)"cache-control:",
                                        (const unsigned char *)"no-cache", 8, &p, end) ||
            tc_http__cors_headers(c, &p, end) != 0 ||
            lws_finalize_write_http_header(c->wsi, start, &p, end)) {
            return -1;
        }
        c->sse_headers_sent = true;
        tc_metrics_inc(TC_M_HTTP_REQUESTS);
        lws_callback_on_writable(c->wsi);
        return 0;
    }
    struct tc_frame *f = tc_frame_queue_pop(&c->q);
    if (f == NULL) {
        return 0;
    }
    size_t len = f->len;
    int w = lws_write(c->wsi, (unsigned char *)tc_frame_payload(f), len, LWS_WRITE_HTTP);
    tc_frame_unref(f);
    if (w < (int)len) {
        return -1;
    }
    c->last_send_ms = tc_now_ms();
    if (c->q.len > 0) {
        lws_callback_on_writable(c->wsi);
    }
    return 0;
}

void
tc_http__sse_hangup(struct tc_http__conn *c, bool hung_up)
{
    if (!hung_up) {
        /* Bytes after the request of a stream that never ends: a request
         * pipelined behind it would wait for ever. The client reconnects
         * with Last-Event-ID and loses nothing. */
        tc_info("sse", "client sent bytes on a stream: closing it");
    }
    c->sse_closing = true;
    tc_frame_queue_clear(&c->q);
    lws_callback_on_writable(c->wsi);
}

void
tc_http__sse_closed(struct tc_http__conn *c)
{
    struct tc_server *srv = c->srv;
    tc_hub_unsubscribe(srv->deps.hub, c->sub);
    c->sub = NULL;
    tc_frame_queue_clear(&c->q);
    c->prev->next = c->next;
    c->next->prev = c->prev;
    srv->nsse--;
    tc_metrics_gauge_set(TC_G_SSE_SESSIONS, (int64_t)srv->nsse);
}

/* A heartbeat event keeps proxies from closing a quiet stream, and lets a
 * client see that the stream is alive (EventSource hides comment lines). It
 * has no id: a resume point comes only with updates. */
void
tc_http__sse_heartbeat(uv_timer_t *t)
{
    struct tc_server *srv = t->data;
    uint64_t now = tc_now_ms();
    struct tc_frame *f = NULL;
    for (struct tc_http__conn *c = srv->sse.next; c != &srv->sse; c = c->next) {
        if (now - c->last_send_ms >= srv->cfg->ws_heartbeat_ms && c->q.len == 0) {
            if (f == NULL) {
                char text[160];
                int n = snprintf(text, sizeof(text),
                                 "event: heartbeat\ndata: {\"type\":\"heartbeat\",\"epoch\":\"%s\","
                                 "\"seq\":%llu}\n\n",
                                 tc_hub_epoch(srv->deps.hub),
                                 (unsigned long long)tc_hub_seq(srv->deps.hub));
                f = tc_frame_new(text, (size_t)n);
            }
            sse_push(&c->sink, f);
            c->last_send_ms = now;
        }
    }
    if (f != NULL) {
        tc_frame_unref(f);
    }
}
