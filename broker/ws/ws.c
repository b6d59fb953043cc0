/* tocsin — SPDX-License-Identifier: MIT
 *
 * WebSocket sessions: the lws protocol callback dispatches to named
 * functions; each session has a bounded ring of shared frames. What a loop
 * turn queues to a session goes out in one write before the loop waits again
 * (a burst of updates is one send per session, not one per update), and
 * after that one write per writeable callback. A session whose ring is full
 * is closed with 1013 (it reconnects with since and loses nothing) without
 * slowing anyone.
 * @loop main. Does not create the lws context (http/ does).
 */
#include "ws/ws.h"
#include "http/client_token.h"
#include "http/server.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "model/frame_queue.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

_Static_assert(LWS_PRE <= TC_FRAME_HEADROOM, "frames need room for the WebSocket header");

/* A session that must close but whose peer does not read gets this long to
 * take the close frame; then lws drops the connection. */
#define CLOSE_GRACE_S 3

/* RFC 6455 1013 "try again later"; lws 4.1 has no name for it. */
#define CLOSE_TRY_AGAIN_LATER 1013

/* The close opcode for lws_write; lws 4.1 keeps its name private. */
#define LWS_WRITE_CLOSE_FRAME ((enum lws_write_protocol)4)

/* Queued frames written together are at most this many bytes, headers
 * included (one frame bigger than that goes alone): a loopback or LAN send
 * of 64 KiB costs about what one of 600 bytes does. */
#define COALESCE_BYTES (64 * 1024)

struct session {
    struct tc_hub_sink sink; /* first: the hub hands it back to us */
    struct tc_ws *ws;
    struct lws *wsi;
    struct session *prev, *next;
    /* On ws->pending while frames queued this loop turn wait for the flush. */
    struct session *pend_prev, *pend_next;
    struct tc_hub_sub **subs; /* at most cfg->ws_max_subscriptions */
    uint16_t nsubs, subs_cap;
    uint16_t close_code; /* nonzero: close with it at the next writeable */
    bool established;
    bool peer_closed; /* the client sent its close: lws echoes it, we send nothing more */
    /* Frames to send, bounded by cfg->ws_send_queue: past it, close 1013. */
    struct tc_frame_queue q;
    /* A client message arriving in several fragments, bounded by ws_max_message. */
    char *rx;
    size_t rx_len, rx_cap;
    uint64_t last_send_ms;
    /* The client token's claims (auth.client_secret set), judged at the
     * handshake and again at every subscribe message. */
    struct tc_client_token token;
};

struct tc_ws {
    uv_loop_t *loop;
    const struct tc_config *cfg;
    struct tc_hub *hub;
    struct lws_protocols protocol;
    struct session sessions; /* list head */
    size_t nsessions;
    /* Sessions with frames queued this loop turn (head), written by the
     * prepare handle just before the loop waits for I/O again. */
    struct session pending;
    uv_prepare_t *flush; /* own allocation: freed by its close callback */
    /* Where several queued frames become one write (LWS_PRE, then frames). */
    unsigned char *coalesced;
    uv_timer_t heartbeat;
    bool shutting_down;
    /* The welcome of every session connecting at (welcome_epoch,
     * welcome_seq): one frame, not one per session of a reconnect storm. */
    struct tc_frame *welcome;
    uint64_t welcome_seq;
    char welcome_epoch[TC_EPOCH_MAX];
};

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len);
static int sink_push(struct tc_hub_sink *sink, struct tc_frame *f);
static const struct tc_hub_sink_ops sink_ops = {.push = sink_push};

static void
drop_queue(struct session *s)
{
    tc_metrics_gauge_add(TC_G_SEND_QUEUE_FRAMES, -(int64_t)tc_frame_queue_clear(&s->q));
}

/* Asks for the session to close with code at its next writeable moment; its
 * queued frames are dropped now, so a stuck peer holds no memory. */
static void
begin_close(struct session *s, uint16_t code)
{
    if (s->close_code != 0) {
        return;
    }
    s->close_code = code;
    drop_queue(s);
    lws_callback_on_writable(s->wsi);
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, CLOSE_GRACE_S);
}

/* Sets the close code and reason lws sends when the callback returns -1. */
static void
close_with(struct session *s, uint16_t code, const char *why)
{
    unsigned char reason[64];
    size_t n = strlen(why) < sizeof(reason) ? strlen(why) : sizeof(reason);
    memcpy(reason, why, n);
    lws_close_reason(s->wsi, (enum lws_close_status)code, reason, n);
}

static void
pending_unlink(struct session *s)
{
    if (s->pend_next != NULL) {
        s->pend_prev->pend_next = s->pend_next;
        s->pend_next->pend_prev = s->pend_prev;
        s->pend_prev = s->pend_next = NULL;
    }
}

static size_t
text_frame_header(unsigned char *h, size_t len)
{
    h[0] = 0x81; /* FIN, text */
    if (len < 126) {
        h[1] = (unsigned char)len;
        return 2;
    }
    if (len < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++) {
        h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    }
    return 10;
}

/* Whether the queued frame next still fits after used bytes of a coalesced
 * write (10: the longest WebSocket header). */
static bool
fits(size_t used, const struct tc_frame *next)
{
    return next != NULL && used + 10 + next->len <= COALESCE_BYTES;
}

/* Writes the oldest queued frames: one frame as lws frames it (no copy),
 * several (up to COALESCE_BYTES) as one buffer of complete frames that lws
 * passes through raw. lws keeps whatever the kernel does not take and sends
 * it before anything else. @returns -1 if the write failed. */
static int
write_queued(struct session *s)
{
    struct tc_frame *f = tc_frame_queue_pop(&s->q);
    struct tc_frame *next = tc_frame_queue_peek(&s->q);
    uint32_t frames = 1;
    int w, want;
    if (!fits(10 + f->len, next)) {
        want = (int)f->len;
        w = lws_write(s->wsi, (unsigned char *)tc_frame_payload(f), f->len, LWS_WRITE_TEXT);
        tc_frame_unref(f);
    } else {
        unsigned char *buf = s->ws->coalesced + LWS_PRE, *p = buf;
        for (;;) {
            p += text_frame_header(p, f->len);
            memcpy(p, tc_frame_payload(f), f->len);
            p += f->len;
            tc_frame_unref(f);
            next = tc_frame_queue_peek(&s->q);
            if (!fits((size_t)(p - buf), next)) {
                break;
            }
            f = tc_frame_queue_pop(&s->q);
            frames++;
        }
        want = (int)(p - buf);
        /* LWS_WRITE_HTTP: lws adds no framing on a WebSocket (the frames are
         * complete) and buffers a partial send like any other. */
        w = lws_write(s->wsi, buf, (size_t)want, LWS_WRITE_HTTP);
    }
    tc_metrics_gauge_add(TC_G_SEND_QUEUE_FRAMES, -(int64_t)frames);
    tc_metrics_inc(TC_M_WS_WRITES);
    if (w < want) {
        return -1;
    }
    /* The loop's cached time: a clock read per send was 1 % of a fan-out,
     * and the heartbeat needs no better than the loop turn. */
    s->last_send_ms = uv_now(s->ws->loop);
    return 0;
}

/* The flush of one session at the end of a loop turn: a write now if lws
 * holds nothing of an earlier one, else at its next writeable callback. */
static void
flush_session(struct session *s)
{
    if (s->q.len == 0 || s->close_code != 0 || s->peer_closed) {
        return;
    }
    if (lws_partial_buffered(s->wsi)) {
        lws_callback_on_writable(s->wsi);
        return;
    }
    if (write_queued(s) != 0) {
        begin_close(s, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION);
        return;
    }
    if (s->q.len > 0) {
        lws_callback_on_writable(s->wsi);
    }
}

/* Before the loop waits for I/O: every session that got frames this turn
 * writes them. Waiting for WRITEABLE instead would cost two epoll_ctl calls
 * and a loop turn per session, most of a fan-out's CPU. */
static void
on_flush(uv_prepare_t *h)
{
    struct tc_ws *ws = h->data;
    while (ws->pending.pend_next != &ws->pending) {
        struct session *s = ws->pending.pend_next;
        pending_unlink(s);
        flush_session(s);
    }
    uv_prepare_stop(h);
}

static int
sink_push(struct tc_hub_sink *sink, struct tc_frame *f)
{
    struct session *s = (struct session *)sink;
    if (s->close_code != 0 || s->peer_closed) {
        return TC_EAGAIN;
    }
    if (tc_frame_queue_push(&s->q, f) != TC_OK) {
        /* The bound: this reader cannot keep up. Close with 1013; it
         * resumes with since and loses nothing. */
        tc_metrics_inc(TC_M_WS_CLOSED_SLOW);
        tc_info("ws", "session too slow, closing", TC_I("code", 1013), TC_U("queued", s->q.len));
        begin_close(s, CLOSE_TRY_AGAIN_LATER);
        return TC_EAGAIN;
    }
    tc_metrics_gauge_add(TC_G_SEND_QUEUE_FRAMES, 1);
    if (s->pend_next == NULL) {
        struct tc_ws *ws = s->ws;
        if (ws->pending.pend_next == &ws->pending) {
            uv_prepare_start(ws->flush, on_flush);
        }
        s->pend_next = &ws->pending;
        s->pend_prev = ws->pending.pend_prev;
        ws->pending.pend_prev->pend_next = s;
        ws->pending.pend_prev = s;
    }
    return TC_OK;
}

static void
push_new(struct session *s, struct tc_frame *f)
{
    sink_push(&s->sink, f);
    tc_frame_unref(f);
}

static void
send_error(struct session *s, const char *code, const char *message, uint16_t close_code)
{
    push_new(s, tc_frame_error(tc_hub_epoch(s->ws->hub), code, message));
    if (close_code != 0) {
        /* Let the error frame go first, then close. */
        s->close_code = close_code;
        lws_callback_on_writable(s->wsi);
        lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, CLOSE_GRACE_S);
    }
}

static struct tc_hub_sub **
find_sub(struct session *s, const char *id)
{
    for (uint16_t i = 0; i < s->nsubs; i++) {
        if (strcmp(tc_hub_sub_id(s->subs[i]), id) == 0) {
            return &s->subs[i];
        }
    }
    return NULL;
}

static void
subscribe(struct session *s, const char *id, struct tc_filter *filter, bool has_since,
          uint64_t since, const char *epoch)
{
    if (find_sub(s, id) != NULL) {
        send_error(s, "duplicate_subscription", "a subscription with this id exists", 0);
        return;
    }
    if (s->nsubs >= s->ws->cfg->ws_max_subscriptions) {
        send_error(s, "too_many_subscriptions", "unsubscribe first", 0);
        return;
    }
    if (s->nsubs == s->subs_cap) {
        /* Doubling up to the bound: nearly every session has one
         * subscription, and room for 16 was 5 % of an idle session. */
        unsigned cap = s->subs_cap ? 2u * s->subs_cap : 1u;
        if (cap > (unsigned)s->ws->cfg->ws_max_subscriptions) {
            cap = (unsigned)s->ws->cfg->ws_max_subscriptions;
        }
        s->subs = tc_xrealloc(s->subs, cap * sizeof(*s->subs));
        s->subs_cap = (uint16_t)cap;
    }
    enum tc_resume r;
    s->subs[s->nsubs++] =
        tc_hub_subscribe(s->ws->hub, &s->sink, id, filter, has_since, since, epoch, &r);
}

static struct tc_frame *
welcome_frame(struct tc_ws *ws)
{
    const char *epoch = tc_hub_epoch(ws->hub);
    uint64_t seq = tc_hub_seq(ws->hub);
    if (ws->welcome == NULL || ws->welcome_seq != seq || strcmp(ws->welcome_epoch, epoch) != 0) {
        if (ws->welcome != NULL) {
            tc_frame_unref(ws->welcome);
        }
        ws->welcome = tc_frame_welcome(epoch, seq, (unsigned)(ws->cfg->ws_heartbeat_ms / 1000));
        ws->welcome_seq = seq;
        snprintf(ws->welcome_epoch, sizeof(ws->welcome_epoch), "%s", epoch);
    }
    return ws->welcome;
}

/* The query string makes subscription "default" (DESIGN §4). */
static void
on_established(struct session *s)
{
    char qs[TC_HTTP_QUERY_MAX];
    if (!tc_hub_loaded(s->ws->hub)) {
        /* A snapshot now would be empty and without an epoch: a client would
         * clear its banner. 1013: reconnect in a moment. */
        send_error(s, "starting", "tocsind is loading its history, reconnect in a moment",
                   CLOSE_TRY_AGAIN_LATER);
        return;
    }
    if (tc_server_query_string(s->wsi, qs, sizeof(qs)) != TC_OK) {
        send_error(s, "bad_request", "query string too long", LWS_CLOSE_STATUS_POLICY_VIOLATION);
        return;
    }
    sink_push(&s->sink, welcome_frame(s->ws));
    struct tc_filter filter;
    struct tc_error err;
    if (tc_filter_from_query(qs, &filter, &err) != TC_OK) {
        tc_metrics_inc(TC_M_WS_CLOSED_POLICY);
        send_error(s, "bad_filter", err.text, LWS_CLOSE_STATUS_POLICY_VIOLATION);
        return;
    }
    char since_s[32], epoch[TC_EPOCH_MAX];
    bool has_since = tc_query_get(qs, "since", since_s, sizeof(since_s)) > 0;
    uint64_t since = 0;
    if (has_since) {
        char *end = NULL;
        since = strtoull(since_s, &end, 10);
        if (*end != '\0' || since_s[0] == '-') {
            tc_filter_fini(&filter);
            tc_metrics_inc(TC_M_WS_CLOSED_POLICY);
            send_error(s, "bad_request", "since: must be an integer >= 0",
                       LWS_CLOSE_STATUS_POLICY_VIOLATION);
            return;
        }
    }
    bool has_epoch = tc_query_get(qs, "epoch", epoch, sizeof(epoch)) > 0;
    /* The handshake's check passed (server.c); this keeps the claims for
     * later subscribes, and catches a token that expired in between. */
    struct tc_client_auth v;
    if (tc_client_token_request(s->wsi, s->ws->cfg, qs, &filter, &s->token, &v) != TC_OK) {
        tc_filter_fini(&filter);
        send_error(s, v.code, v.err.text, LWS_CLOSE_STATUS_POLICY_VIOLATION);
        return;
    }
    subscribe(s, "default", &filter, has_since, since, has_epoch ? epoch : NULL);
    tc_filter_fini(&filter);
}

/* A subscribe message is judged by the session's token: while it lasts
 * (with the leeway of its check), and for the components it names. A
 * session whose token expired is closed with 1008 (it reconnects with a new
 * token); its open subscriptions were allowed and run until then.
 * @returns true when allowed. */
static bool
token_allows(struct session *s, const struct tc_filter *filter)
{
    if (s->ws->cfg->auth_client_secret[0] == '\0') {
        return true;
    }
    if ((int64_t)time(NULL) > s->token.exp + TC_CLIENT_TOKEN_LEEWAY_S) {
        tc_metrics_inc(TC_M_CLIENT_TOKENS_REFUSED);
        tc_metrics_inc(TC_M_WS_CLOSED_POLICY);
        send_error(s, "token_expired", "the client token expired: reconnect with a new one",
                   LWS_CLOSE_STATUS_POLICY_VIOLATION);
        return false;
    }
    if (!tc_client_token_allows(&s->token, filter)) {
        tc_metrics_inc(TC_M_CLIENT_TOKENS_REFUSED);
        send_error(s, "component_not_allowed",
                   "the filter's components must be among the token's (name them)", 0);
        return false;
    }
    return true;
}

static void
handle_message(struct session *s, const char *buf, size_t len)
{
    struct tc_ws_msg m;
    struct tc_error err;
    if (tc_ws_msg_parse(buf, len, &m, &err) != TC_OK) {
        tc_metrics_inc(TC_M_WS_BAD_MESSAGES);
        send_error(s, "bad_message", err.text, 0);
        return;
    }
    if (m.type == TC_WS_MSG_SUBSCRIBE && !token_allows(s, &m.filter)) {
        /* Refused, the session goes on (or, for an expired token, closes). */
    } else if (m.type == TC_WS_MSG_SUBSCRIBE) {
        subscribe(s, m.id, &m.filter, m.has_since, m.since, m.epoch[0] ? m.epoch : NULL);
    } else {
        struct tc_hub_sub **sub = find_sub(s, m.id);
        if (sub == NULL) {
            send_error(s, "unknown_subscription", "no subscription with this id", 0);
        } else {
            tc_hub_unsubscribe(s->ws->hub, *sub);
            *sub = s->subs[--s->nsubs];
        }
    }
    tc_ws_msg_fini(&m);
}

/* Clears the message being joined (text) or counted (binary). */
static void
reset_rx(struct session *s)
{
    free(s->rx);
    s->rx = NULL;
    s->rx_len = s->rx_cap = 0;
}

static int
on_receive(struct session *s, const char *in, size_t len)
{
    size_t max = (size_t)s->ws->cfg->ws_max_message;
    size_t left = lws_remaining_packet_payload(s->wsi);
    if (s->peer_closed) {
        return 0; /* a client sends no data after its close (RFC 6455 §5.5.1) */
    }
    bool final = lws_is_final_fragment(s->wsi) && left == 0;
    /* The bound counts what came and what the frame header says is still
     * to come, so a frame announcing 1 TiB is refused at its first bytes
     * rather than after 64 KiB of them. rx_len <= max holds here. */
    if (len > max - s->rx_len || left > max - s->rx_len - len) {
        /* Over the bound: 1009, and nothing of it is kept. */
        tc_metrics_inc(TC_M_WS_CLOSED_TOOBIG);
        reset_rx(s);
        close_with(s, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too big");
        return -1;
    }
    if (lws_frame_is_binary(s->wsi)) {
        /* Client messages are JSON text frames (DESIGN §4). A binary one is
         * counted against the same bound, kept nowhere, and answered once
         * with a non-fatal error, like any other bad message. */
        s->rx_len += len;
        if (final) {
            s->rx_len = 0;
            tc_metrics_inc(TC_M_WS_BAD_MESSAGES);
            send_error(s, "bad_message", "binary frames are not accepted: send JSON text", 0);
        }
        return 0;
    }
    if (final && s->rx_len == 0) {
        handle_message(s, in, len); /* the usual case: one piece, no copy */
        return 0;
    }
    if (s->rx_len + len > s->rx_cap) {
        /* Doubling: a 64 KiB message in rx_buffer_size pieces costs a few
         * reallocs, not one per piece. The bound above caps it at max. */
        size_t cap = s->rx_cap ? s->rx_cap : 1024;
        while (cap < s->rx_len + len) {
            cap *= 2;
        }
        s->rx_cap = cap < max ? cap : max;
        s->rx = tc_xrealloc(s->rx, s->rx_cap);
    }
    memcpy(s->rx + s->rx_len, in, len);
    s->rx_len += len;
    if (final) {
        handle_message(s, s->rx, s->rx_len);
        reset_rx(s);
    }
    return 0;
}

/* A close frame from the peer; lws echoes its body when this returns 0.
 * lws 4.1.6 itself turns codes below 1000 and the reserved ones into 1002,
 * but echoes a code of 5000 or more, and a 1-byte body, as they came: both
 * are protocol errors (RFC 6455 §5.5.1, §7.4). A code is rewritten in the
 * body lws echoes; a 1-byte body cannot hold one, so that close is ours
 * (lws then waits up to 5 s for an ack, or for the peer to hang up). */
static int
on_peer_close(struct session *s, unsigned char *in, size_t len)
{
    if (len == 1) {
        close_with(s, LWS_CLOSE_STATUS_PROTOCOL_ERR, "invalid close frame");
        return -1;
    }
    if (len >= 2 && ((unsigned)in[0] << 8 | in[1]) >= 5000) {
        in[0] = LWS_CLOSE_STATUS_PROTOCOL_ERR >> 8;
        in[1] = LWS_CLOSE_STATUS_PROTOCOL_ERR & 0xff;
    }
    /* lws would still hand us frames that follow the close, and we would
     * answer them before its echo. */
    s->peer_closed = true;
    drop_queue(s);
    return 0;
}

static int
on_writeable(struct session *s)
{
    if (s->peer_closed) {
        return 0; /* lws sends the echo of the client's close */
    }
    if (s->q.len == 0 && s->close_code != 0) {
        const char *why = s->close_code == LWS_CLOSE_STATUS_GOINGAWAY ? "server shutting down"
                          : s->close_code == CLOSE_TRY_AGAIN_LATER ? "too slow, resume with since"
                                                                   : "policy violation";
        /* lws 4.1 treats -1 from WRITEABLE (and any timeout) as a broken
         * socket and never sends the reason set by lws_close_reason, so the
         * close frame is written here: the peer reads it before the FIN. */
        unsigned char buf[LWS_PRE + 2 + 64];
        size_t n = strlen(why) < 64 ? strlen(why) : 64;
        buf[LWS_PRE] = (unsigned char)(s->close_code >> 8);
        buf[LWS_PRE + 1] = (unsigned char)(s->close_code & 0xff);
        memcpy(buf + LWS_PRE + 2, why, n);
        lws_write(s->wsi, buf + LWS_PRE, 2 + n, LWS_WRITE_CLOSE_FRAME);
        return -1;
    }
    if (s->q.len == 0) {
        return 0;
    }
    if (write_queued(s) != 0) {
        return -1;
    }
    if (s->q.len > 0 || s->close_code != 0) {
        lws_callback_on_writable(s->wsi);
    }
    return 0;
}

static void
on_closed(struct session *s)
{
    if (!s->established) {
        return;
    }
    for (uint16_t i = 0; i < s->nsubs; i++) {
        tc_hub_unsubscribe(s->ws->hub, s->subs[i]);
    }
    free(s->subs);
    pending_unlink(s);
    drop_queue(s);
    free(s->rx);
    tc_client_token_fini(&s->token);
    s->prev->next = s->next;
    s->next->prev = s->prev;
    s->ws->nsessions--;
    tc_metrics_gauge_set(TC_G_WS_SESSIONS, (int64_t)s->ws->nsessions);
    s->established = false;
}

static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct session *s = user;
    struct tc_ws *ws = (struct tc_ws *)lws_get_protocol(wsi)->user;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        memset(s, 0, sizeof(*s));
        s->sink.ops = &sink_ops;
        s->sink.enc = TC_HUB_ENC_WS;
        s->ws = ws;
        s->wsi = wsi;
        s->established = true;
        tc_frame_queue_init(&s->q, (uint32_t)ws->cfg->ws_send_queue);
        s->last_send_ms = uv_now(ws->loop);
        s->next = &ws->sessions;
        s->prev = ws->sessions.prev;
        ws->sessions.prev->next = s;
        ws->sessions.prev = s;
        ws->nsessions++;
        tc_metrics_inc(TC_M_WS_SESSIONS_OPENED);
        tc_metrics_gauge_set(TC_G_WS_SESSIONS, (int64_t)ws->nsessions);
        if (ws->shutting_down) {
            begin_close(s, LWS_CLOSE_STATUS_GOINGAWAY);
            return 0;
        }
        on_established(s);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return on_receive(s, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_writeable(s);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        return on_peer_close(s, in, len);
    case LWS_CALLBACK_CLOSED:
        on_closed(s);
        return 0;
    default:
        return 0;
    }
}

static void
on_heartbeat(uv_timer_t *t)
{
    struct tc_ws *ws = t->data;
    uint64_t now = uv_now(ws->loop);
    struct tc_frame *f = NULL;
    for (struct session *s = ws->sessions.next; s != &ws->sessions; s = s->next) {
        if (now - s->last_send_ms >= ws->cfg->ws_heartbeat_ms && s->q.len == 0) {
            if (f == NULL) {
                f = tc_frame_heartbeat(tc_hub_epoch(ws->hub), tc_hub_seq(ws->hub));
            }
            sink_push(&s->sink, f);
        }
    }
    if (f != NULL) {
        tc_frame_unref(f);
    }
}

struct tc_ws *
tc_ws_new(uv_loop_t *loop, const struct tc_config *cfg, struct tc_hub *hub)
{
    struct tc_ws *ws = tc_xcalloc(1, sizeof(*ws));
    ws->loop = loop;
    ws->cfg = cfg;
    ws->hub = hub;
    ws->sessions.next = ws->sessions.prev = &ws->sessions;
    ws->pending.pend_next = ws->pending.pend_prev = &ws->pending;
    ws->flush = tc_xmalloc(sizeof(*ws->flush));
    uv_prepare_init(loop, ws->flush);
    ws->flush->data = ws;
    ws->coalesced = tc_xmalloc(LWS_PRE + COALESCE_BYTES);
    ws->protocol.name = "tocsin.v1";
    ws->protocol.callback = callback;
    ws->protocol.per_session_data_size = sizeof(struct session);
    /* lws 4.1 gives every session its own receive buffer of this size at
     * the upgrade (4096 was 3.5 of an idle session's 5.7 KB). Client
     * messages are a few hundred bytes; longer ones arrive in pieces and
     * are joined (up to ws.max_message) in on_receive. */
    ws->protocol.rx_buffer_size = 512;
    /* Without it lws sends at most rx_buffer_size (+ LWS_PRE) bytes per
     * send() and buffers the rest for a POLLOUT turn: every frame over ~530
     * bytes (an incident with a real message) cost two sends, two epoll_ctl
     * calls and a loop turn. Per-session memory does not depend on it. */
    ws->protocol.tx_packet_size = COALESCE_BYTES;
    ws->protocol.user = ws;
    uv_timer_init(loop, &ws->heartbeat);
    ws->heartbeat.data = ws;
    /* Check four times per interval, so no session idles much past it. */
    uint64_t every = cfg->ws_heartbeat_ms / 4;
    uv_timer_start(&ws->heartbeat, on_heartbeat, every, every);
    return ws;
}

const struct lws_protocols *
tc_ws_protocol(struct tc_ws *ws)
{
    return &ws->protocol;
}

void
tc_ws_shutdown(struct tc_ws *ws)
{
    ws->shutting_down = true;
    uv_timer_stop(&ws->heartbeat);
    for (struct session *s = ws->sessions.next; s != &ws->sessions; s = s->next) {
        begin_close(s, LWS_CLOSE_STATUS_GOINGAWAY);
    }
}

size_t
tc_ws_session_count(const struct tc_ws *ws)
{
    return ws->nsessions;
}

static void
free_on_close(uv_handle_t *h)
{
    free(h->data);
}

void
tc_ws_free(struct tc_ws *ws)
{
    if (ws == NULL) {
        return;
    }
    uv_timer_stop(&ws->heartbeat);
    if (ws->welcome != NULL) {
        tc_frame_unref(ws->welcome);
    }
    free(ws->coalesced);
    uv_prepare_stop(ws->flush);
    ws->flush->data = ws->flush;
    uv_close((uv_handle_t *)ws->flush, free_on_close);
    ws->heartbeat.data = ws;
    uv_close((uv_handle_t *)&ws->heartbeat, free_on_close);
}
