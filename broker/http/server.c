/* tocsin — SPDX-License-Identifier: MIT
 *
 * The lws context on the main libuv loop, the HTTP protocol callback (it only
 * dispatches) and whole-response writing. HTTP/2 and permessage-deflate stay
 * off (DESIGN §10); request bodies and headers are capped here.
 * @loop main.
 */
#include "http/http_internal.h"
#include "log/log.h"
#include "metrics/metrics.h"

#include <stdlib.h>
#include <string.h>

/* The WWW-Authenticate of a 401 for the client token (RFC 6750 §3). */
#define TOKEN_CHALLENGE "Bearer realm=\"tocsin\""

bool
tc_server_origin_allowed(const struct tc_config *cfg, const char *origin)
{
    if (cfg->ws_allowed_origins == NULL || cfg->ws_allowed_origins[0] == NULL || origin == NULL ||
        origin[0] == '\0') {
        return true;
    }
    for (char **o = cfg->ws_allowed_origins; *o; o++) {
        if (strcmp(*o, origin) == 0) {
            return true;
        }
    }
    return false;
}

unsigned char *
tc_http__body_alloc(size_t len)
{
    return tc_xmalloc(LWS_PRE + len + 1);
}

unsigned char *
tc_http__body_from(const char *text, size_t len)
{
    unsigned char *b = tc_http__body_alloc(len);
    memcpy(b + LWS_PRE, text, len);
    return b;
}

int
tc_server_query_string(struct lws *wsi, char *qs, size_t len)
{
    size_t n = 0;
    qs[0] = '\0';
    for (int i = 0;; i++) {
        /* Measured first: lws_hdr_copy_fragment answers a fragment that does
         * not fit like a missing one, which would drop the rest of the
         * filter without a word. */
        int flen = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (flen <= 0) {
            break;
        }
        if (n + (size_t)flen + 2 > len) {
            return TC_ETOOBIG;
        }
        if (n > 0) {
            qs[n++] = '&';
        }
        int got = lws_hdr_copy_fragment(wsi, qs + n, (int)(len - n), WSI_TOKEN_HTTP_URI_ARGS, i);
        if (got < 0) {
            return TC_ETOOBIG;
        }
        n += (size_t)got;
    }
    qs[n] = '\0';
    return TC_OK;
}

int
tc_http__request_filter(struct tc_http__conn *c, char *qs, size_t len, struct tc_filter *filter)
{
    struct tc_error err;
    if (tc_server_query_string(c->wsi, qs, len) != TC_OK) {
        tc_http__respond_error(c, 414, "uri_too_long", "query string too long");
        return TC_EINVAL;
    }
    if (tc_filter_from_query(qs, filter, &err) != TC_OK) {
        tc_http__respond_error(c, 400, "bad_filter", err.text);
        return TC_EINVAL;
    }
    return TC_OK;
}

void
tc_http__respond(struct tc_http__conn *c, int status, const char *content_type, unsigned char *body,
                 size_t len)
{
    /* lws reads again once this answer is written: a pipelined request is
     * its to parse, not the watch's. */
    tc_http__conn_unwatch(c);
    free(c->body);
    c->kind = CONN_RESPONSE;
    c->status = status;
    c->content_type = content_type;
    c->body = body;
    c->body_len = body ? len : 0;
    tc_metrics_inc(TC_M_HTTP_REQUESTS);
    if (status >= 400) {
        tc_metrics_inc(TC_M_HTTP_ERRORS);
    }
    lws_callback_on_writable(c->wsi);
}

void
tc_http__respond_error(struct tc_http__conn *c, int status, const char *code, const char *message)
{
    json_t *o = json_pack("{s:s,s:s}", "error", code, "message", message);
    char *text = json_dumps(o, JSON_COMPACT);
    size_t len = strlen(text);
    unsigned char *b = tc_http__body_from(text, len);
    free(text);
    json_decref(o);
    tc_http__respond(c, status, "application/json", b, len);
}

static int
add_header(struct tc_http__conn *c, const char *name, const char *value, unsigned char **p,
           unsigned char *end)
{
    return lws_add_http_header_by_name(c->wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), p, end);
}

/* Browsers on other origins (an app embedding the banner) may read the
 * public routes: the answer names the Origin when ws.allowed_origins lets it
 * subscribe, and exposes ETag for conditional polling. */
int
tc_http__cors_headers(struct tc_http__conn *c, unsigned char **p, unsigned char *end)
{
    char origin[256] = "";
    if (!c->cors || lws_hdr_copy(c->wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) <= 0 ||
        !tc_server_origin_allowed(c->srv->cfg, origin)) {
        return 0;
    }
    if (add_header(c, "access-control-allow-origin:", origin, p, end) ||
        add_header(c, "vary:", "Origin", p, end) ||
        add_header(c, "access-control-expose-headers:", "ETag", p, end)) {
        return -1;
    }
    if (c->preflight && (add_header(c, "access-control-allow-methods:", "GET", p, end) ||
                         add_header(c, "access-control-allow-headers:",
                                    "If-None-Match, Last-Event-ID, Authorization", p, end) ||
                         add_header(c, "access-control-max-age:", "600", p, end))) {
        return -1;
    }
    return 0;
}

/* The connection whose request body lws last reported complete, and how
 * many times in a row. lws 4.1.6, reading a request with a body that came
 * pipelined behind another out of its own buffer, reports the body
 * complete again and again in a loop that never returns to the event loop:
 * two requests in one packet, the second with a body, hung tocsind at
 * 100 % CPU, and every client with it. A report or two more is harmless
 * (a pipelined GET after a POST gets them); past the bound the connection
 * is closed (RFC 9112 §9.3.2 lets a server close a pipeline; the client
 * resends). @loop main. */
static const struct lws *body_completed;
static unsigned body_completions;
#define BODY_COMPLETIONS_MAX 64

/* Writes the queued whole response: headers, then the body in one write. */
static int
write_response(struct tc_http__conn *c)
{
    unsigned char hbuf[LWS_PRE + 1024];
    unsigned char *start = hbuf + LWS_PRE, *p = start, *end = hbuf + sizeof(hbuf) - 1;
    if (lws_add_http_common_headers(c->wsi, (unsigned)c->status, c->content_type,
                                    (lws_filepos_t)c->body_len, &p, end) ||
        lws_add_http_header_by_name(c->wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-cache", 8, &p, end)) {
        return -1;
    }
    if (c->etag[0] && lws_add_http_header_by_name(
                          c->wsi, (const unsigned char *)"etag:", (const unsigned char *)c->etag,
                          (int)strlen(c->etag), &p, end)) {
        return -1;
    }
    if (tc_http__cors_headers(c, &p, end) != 0 ||
        (c->auth_challenge && add_header(c, "www-authenticate:", TOKEN_CHALLENGE, &p, end))) {
        return -1;
    }
    if (lws_finalize_write_http_header(c->wsi, start, &p, end)) {
        return -1;
    }
    if (c->body_len > 0 && lws_write(c->wsi, c->body + LWS_PRE, c->body_len, LWS_WRITE_HTTP_FINAL) <
                               (int)c->body_len) {
        return -1;
    }
    free(c->body);
    c->body = NULL;
    c->kind = CONN_IDLE;
    c->etag[0] = '\0';
    c->auth_challenge = false;
    if (c->close_after) {
        return -1;
    }
    return lws_http_transaction_completed(c->wsi) ? -1 : 0;
}

/* The method and path of the request; lws keeps the path under the token of
 * its method. @returns 0, TC_ENOENT for a method we serve nowhere (HEAD,
 * TRACE, ...), or TC_ETOOBIG for a path over 255 bytes. */
static int
request_line(struct lws *wsi, int *method, char *path, size_t len)
{
    static const struct {
        enum lws_token_indexes token;
        enum tc_http_method method;
    } methods[] = {
        {WSI_TOKEN_GET_URI, TC_HTTP_GET},       {WSI_TOKEN_POST_URI, TC_HTTP_POST},
        {WSI_TOKEN_PUT_URI, TC_HTTP_PUT},       {WSI_TOKEN_PATCH_URI, TC_HTTP_PATCH},
        {WSI_TOKEN_DELETE_URI, TC_HTTP_DELETE}, {WSI_TOKEN_OPTIONS_URI, TC_HTTP_OPTIONS},
    };
    for (size_t i = 0; i < TC_ARRAY_SIZE(methods); i++) {
        if (lws_hdr_total_length(wsi, methods[i].token) > 0) {
            *method = methods[i].method;
            return lws_hdr_copy(wsi, path, (int)len, methods[i].token) > 0 ? TC_OK : TC_ETOOBIG;
        }
    }
    *method = TC_HTTP_GET;
    path[0] = '\0';
    return TC_ENOENT;
}

/* Request framing (RFC 9112 §6), which lws 4.1.6 leaves to us:
 * Content-Length is digits only (lws reads atoll("+2") bytes; admin.c
 * took a value it could not copy for no body at all), and a request with
 * both it and Transfer-Encoding is refused, so that a proxy in front that
 * framed the body by the other header cannot find a request of its
 * client's inside this one. The error answer closes the connection.
 * @returns 0, or TC_EINVAL with the answer queued. */
static int
check_framing(struct tc_http__conn *c)
{
    char cl[64];
    int n = lws_hdr_total_length(c->wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (n <= 0) {
        return TC_OK;
    }
    if (lws_hdr_total_length(c->wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
        c->close_after = true;
        tc_http__respond_error(c, 400, "bad_request",
                               "send Content-Length or Transfer-Encoding, not both");
        return TC_EINVAL;
    }
    if (n >= (int)sizeof(cl) ||
        lws_hdr_copy(c->wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) != n ||
        strspn(cl, "0123456789") != (size_t)n) {
        c->close_after = true;
        tc_http__respond_error(c, 400, "bad_request", "Content-Length is not a number");
        return TC_EINVAL;
    }
    if (n > 19) {
        c->close_after = true;
        tc_http__respond_error(c, 413, "body_too_large", "the body is over http.max_body");
        return TC_EINVAL;
    }
    return TC_OK;
}

/* Answers at once, outside the writeable callback, where the connection
 * closes next: json, with one extra header if name is not NULL. For the
 * few answers lws gives no later chance to write. @returns 1. */
static int
answer_now(struct lws *wsi, unsigned status, const char *name, const char *value, const char *json)
{
    unsigned char buf[LWS_PRE + 1536];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
    size_t len = strlen(json);
    if (lws_add_http_common_headers(wsi, status, "application/json", len, &p, end) ||
        (name != NULL &&
         lws_add_http_header_by_name(wsi, (const unsigned char *)name, (const unsigned char *)value,
                                     (int)strlen(value), &p, end)) ||
        lws_finalize_http_header(wsi, &p, end) || (size_t)(end - p) < len) {
        return 1;
    }
    memcpy(p, json, len);
    p += len;
    lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS);
    return 1;
}

static int
on_http(struct tc_http__conn *c, struct lws *wsi)
{
    c->wsi = wsi;
    c->etag[0] = '\0';
    int rc = request_line(wsi, &c->method, c->path, sizeof(c->path));
    if (rc == TC_ENOENT) {
        /* HEAD used to get 414 here: lws keeps its path under a token we
         * did not look at. */
        c->close_after = true;
        tc_http__respond_error(c, 405, "method_not_allowed", "this method is not served");
        return 0;
    }
    if (rc != TC_OK) {
        c->close_after = true;
        tc_http__respond_error(c, 414, "uri_too_long", "the path is too long");
        return 0;
    }
    if (check_framing(c) != TC_OK) {
        return 0;
    }
    if (tc_http__is_admin_route(c->srv, c->method, c->path)) {
        return tc_http__admin_begin(c);
    }
    c->cors = strcmp(c->path, "/v1/events") == 0 || strcmp(c->path, "/v1/incidents") == 0 ||
              strcmp(c->path, "/v1/history") == 0 || strncmp(c->path, "/v1/incidents/", 14) == 0;
    if (c->method == TC_HTTP_OPTIONS && c->cors) {
        c->preflight = true;
        tc_http__respond(c, 204, "text/plain", NULL, 0);
        return 0;
    }
    if (c->method != TC_HTTP_GET) {
        /* A body may follow that nobody reads: close after the answer. */
        c->close_after = true;
        tc_http__respond_error(c, 405, "method_not_allowed", "this route takes GET only");
        return 0;
    }
    return tc_http__route(c, c->path);
}

/* True when the comma-separated list holds token (Sec-WebSocket-Protocol). */
static bool
list_has(const char *list, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = list; *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, " \t,");
        if (len == n && strncmp(p, token, n) == 0) {
            return true;
        }
        p += len;
    }
    return false;
}

/* Checks an upgrade before lws answers 101: path, origin, and the parts of
 * the handshake lws 4.1.6 does not check itself (version, key) or refuses
 * without a word (an unknown subprotocol). @returns 0 to upgrade. */
static int
on_confirm_upgrade(struct lws *wsi, struct tc_server *srv)
{
    char path[64], origin[256] = "", protocols[256] = "", version[8] = "";
    if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) <= 0 ||
        strcmp(path, "/v1/ws") != 0) {
        lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, "WebSocket is at /v1/ws");
        return 1;
    }
    lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN);
    if (!tc_server_origin_allowed(srv->cfg, origin)) {
        tc_metrics_inc(TC_M_ORIGIN_REFUSED);
        tc_info("http", "origin refused", TC_S("origin", origin));
        lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN, "origin not allowed");
        return 1;
    }
    if (lws_hdr_copy(wsi, version, sizeof(version), WSI_TOKEN_VERSION) <= 0 ||
        strcmp(version, "13") != 0) {
        /* RFC 6455 §4.2.2: 426 and the version we speak. lws 4.1.6 would
         * answer any version, or none, as if it were 13. */
        return answer_now(wsi, 426, "sec-websocket-version:", "13",
                          "{\"error\":\"bad_version\",\"message\":\"WebSocket version 13 only\"}");
    }
    /* 16 random bytes in base64 (RFC 6455 §4.1); lws closed the
     * connection without an answer when the key was missing. */
    if (lws_hdr_total_length(wsi, WSI_TOKEN_KEY) != 24) {
        lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST,
                               "Sec-WebSocket-Key must be 16 bytes in base64");
        return 1;
    }
    if (lws_hdr_copy(wsi, protocols, sizeof(protocols), WSI_TOKEN_PROTOCOL) <= 0 ||
        !list_has(protocols, "tocsin.v1")) {
        lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST,
                               "use the WebSocket subprotocol tocsin.v1");
        return 1;
    }
    struct tc_client_auth v;
    if (tc_client_token_upgrade(wsi, srv->cfg, &v) != TC_OK) {
        char *json = tc_client_auth_json(&v);
        answer_now(wsi, (unsigned)v.status, v.status == 401 ? "www-authenticate:" : NULL,
                   TOKEN_CHALLENGE, json);
        free(json);
        return 1;
    }
    return 0;
}

/* lws re-arms its own body timeout (timeout_secs) at every piece, so a
 * body trickled a byte at a time would never meet it: the whole body gets
 * http.body_timeout from its head (an lws per-wsi timer, cancelled with the
 * wsi), then 408 and a close. */
static int
body_timed_out(struct tc_http__conn *c)
{
    if (c == NULL || !c->reading_body) {
        return 0;
    }
    tc_info("http", "request body too slow: 408", TC_S("path", c->path),
            TC_U("received", c->req_len), TC_U("length", c->req_expect));
    tc_http__admin_fini(c);
    c->close_after = true;
    tc_http__respond_error(c, 408, "request_timeout",
                           "the body did not arrive within http.body_timeout");
    return 0;
}

/* A request waits for its answer (Redis, the store, Kafka): lws reads
 * nothing meanwhile, so the hang-up watch looks out for the client leaving
 * (hangup.c). Bytes are not its business: they are a pipelined request,
 * lws's to parse after this answer. */
static void
watch_if_waiting(struct tc_http__conn *c)
{
    if (c->kind == CONN_PENDING) {
        tc_http__conn_watch(c, false);
    }
}

/* The hang-up watch's report. */
static void
on_hangup(void *arg, bool hung_up)
{
    struct tc_http__conn *c = arg;
    if (c->kind == CONN_SSE) {
        tc_http__sse_hangup(c, hung_up);
        return;
    }
    c->client_gone = true; /* nobody is left to read the answer */
    lws_callback_on_writable(c->wsi);
}

static int
http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    if (reason == LWS_CALLBACK_FILTER_NETWORK_CONNECTION ||
        reason == LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED ||
        reason == LWS_CALLBACK_WSI_DESTROY) {
        return tc_http__per_ip_callback(wsi, reason, in);
    }
    struct tc_http__conn *c = user;
    const struct lws_protocols *proto = lws_get_protocol(wsi);
    if (proto == NULL) {
        return 0; /* with TLS, lws calls the vhost's TLS setup reasons on a bare wsi */
    }
    struct tc_server *srv = (struct tc_server *)proto->user;
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        tc_http__per_ip_established(lws_get_opaque_user_data(wsi));
        return on_confirm_upgrade(wsi, srv);
    case LWS_CALLBACK_HTTP: {
        tc_http__per_ip_established(lws_get_opaque_user_data(wsi));
        c->srv = srv;
        if (body_completed == wsi) {
            body_completed = NULL; /* a new request: count afresh */
        }
        int rc = on_http(c, wsi);
        if (c->reading_body) {
            lws_set_timer_usecs(wsi, (lws_usec_t)srv->cfg->http_body_timeout_ms * 1000);
        }
        watch_if_waiting(c);
        return rc;
    }
    case LWS_CALLBACK_TIMER:
        return body_timed_out(c);
    case LWS_CALLBACK_HTTP_BODY:
        /* Only admin routes read bodies; for others the answer is chosen. */
        return c->reading_body ? tc_http__admin_body(c, in, len) : 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (body_completed != wsi) {
            body_completed = wsi;
            body_completions = 0;
        }
        if (++body_completions > BODY_COMPLETIONS_MAX) {
            tc_warn("http", "pipelined request body: closing the connection");
            return -1;
        }
        if (c->reading_body) {
            lws_set_timer_usecs(wsi, LWS_SET_TIMER_USEC_CANCEL);
            tc_http__admin_complete(c);
            watch_if_waiting(c);
        }
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (c->client_gone) {
            return -1;
        }
        if (c->kind == CONN_SSE) {
            return tc_http__sse_writeable(c);
        }
        if (c->kind == CONN_RESPONSE) {
            return write_response(c);
        }
        return 0;
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (body_completed == wsi) {
            body_completed = NULL; /* a later connection may get this address */
        }
        if (c != NULL) {
            tc_http__conn_unwatch(c); /* before lws closes the socket */
            tc_http__pending_detach(c);
            tc_http__admin_fini(c);
            if (c->kind == CONN_SSE) {
                tc_http__sse_closed(c);
            }
            free(c->body);
            c->body = NULL;
            c->kind = CONN_IDLE;
        }
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* One lws line at our level, with its count when it was held back. */
static void
lws_log_line(int level, const char *line, uint64_t repeated)
{
    enum tc_log_level l = (level & LLL_ERR)    ? TC_LOG_ERROR
                          : (level & LLL_WARN) ? TC_LOG_WARN
                                               : TC_LOG_DEBUG;
    if (l >= tc_log_min_level) {
        const struct tc_kv kv = TC_U("repeated", repeated);
        tc_log_write(l, "lws", line, &kv, repeated > 0 ? 1 : 0);
    }
}

/* lws logs go to our logger, at our levels. lws 4.1.6 may say the same
 * thing in a loop (at the fd limit, "accept: errno 24" on each turn while
 * the listener stays readable: 6.9 million lines a minute were seen), so a
 * line equal to the last one is only counted, and said again with its
 * count ("repeated") at most once a second, or when another line comes:
 * no lws loop can flood the log. lws logs on the main loop only. */
static struct {
    char line[512];
    int level;
    uint64_t said_ms;  /* when line was last written */
    uint64_t repeated; /* times it came since, not written */
} lws_last;

static void
lws_log(int level, const char *line)
{
    char buf[sizeof(lws_last.line)];
    snprintf(buf, sizeof(buf), "%s", line);
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        buf[--n] = '\0';
    }
    tc_http__fd_guard_lws_line(buf);
    uint64_t now = tc_now_ms();
    if (level == lws_last.level && strcmp(buf, lws_last.line) == 0) {
        lws_last.repeated++;
        if (now - lws_last.said_ms >= 1000) {
            lws_log_line(level, buf, lws_last.repeated);
            lws_last.repeated = 0;
            lws_last.said_ms = now;
        }
        return;
    }
    if (lws_last.repeated > 0) {
        lws_log_line(lws_last.level, lws_last.line, lws_last.repeated);
    }
    memcpy(lws_last.line, buf, n + 1);
    lws_last.level = level;
    lws_last.repeated = 0;
    lws_last.said_ms = now;
    lws_log_line(level, buf, 0);
}

struct tc_server *
tc_server_new(uv_loop_t *loop, const struct tc_config *cfg, const struct lws_protocols *ws_protocol,
              const struct tc_server_deps *deps, struct tc_error *err)
{
    struct tc_server *srv = tc_xcalloc(1, sizeof(*srv));
    srv->loop = loop;
    srv->cfg = cfg;
    srv->deps = *deps;
    srv->sse.next = srv->sse.prev = &srv->sse;
    srv->protocols[0] = (struct lws_protocols){
        .name = "http",
        .callback = http_callback,
        .per_session_data_size = sizeof(struct tc_http__conn),
        .rx_buffer_size = 0,
        .user = srv,
    };
    srv->protocols[1] = *ws_protocol;
    /* No lws validity pings: lws re-arms a timer per connection on traffic
     * by a sorted insert, O(sessions) per delivery (11 % of fan-out CPU at
     * 10k sessions). Dead peers are found by TCP keepalive (below) and by
     * the heartbeats we send, which fail on a dead socket. */
    srv->retry.secs_since_valid_ping = 0;
    srv->retry.secs_since_valid_hangup = 0;

    lws_set_log_level(tc_log_min_level <= TC_LOG_DEBUG ? LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO
                                                       : LLL_ERR | LLL_WARN,
                      lws_log);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    void *foreign_loops[1] = {loop};
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_VALIDATE_UTF8 |
                   LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE |
                   LWS_SERVER_OPTION_DISABLE_IPV6;
    if (strchr(cfg->http_host, ':') != NULL) {
        info.options &= ~(uint64_t)LWS_SERVER_OPTION_DISABLE_IPV6;
    }
    info.foreign_loops = foreign_loops;
    /* With http.reuse_port the vhost listens nowhere: listen.c accepts. */
    info.port = cfg->http_reuse_port ? CONTEXT_PORT_NO_LISTEN_SERVER : cfg->http_port;
    info.iface = strcmp(cfg->http_host, "0.0.0.0") == 0 ? NULL : cfg->http_host;
    info.protocols = srv->protocols;
    info.user = srv; /* for the callbacks of sockets and wsis not yet bound to a protocol */
    info.retry_and_idle_policy = &srv->retry;
    /* The bounds a slow or idle client meets (tests/e2e/test_hostile_http.py
     * holds them): a connection has timeout_secs_ah_idle to send its whole
     * request head (the 1-byte-a-second slowloris is dropped then: lws does
     * not re-arm it per byte), an idle keep-alive connection is closed after
     * keepalive_timeout, and timeout_secs bounds each wait for the next
     * piece of a request body (re-armed per piece; the whole body has
     * http.body_timeout, see body_timed_out). */
    info.timeout_secs_ah_idle = 10;
    info.keepalive_timeout = 5;
    info.timeout_secs = 30;
    info.ka_time = TC_HTTP__KA_TIME;
    info.ka_probes = TC_HTTP__KA_PROBES;
    info.ka_interval = TC_HTTP__KA_INTERVAL;
    info.max_http_header_data = 4096;
    info.max_http_header_pool = 256;
    info.pt_serv_buf_size = 16384;
    info.fd_limit_per_thread = 0;
    info.vhost_name = "tocsin";
    info.server_string = "tocsin";
    if (cfg->http_tls_cert[0] != '\0') {
        /* TLS only: a plain request on this port fails its handshake. */
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = cfg->http_tls_cert;
        info.ssl_private_key_filepath = cfg->http_tls_key;
    }
    srv->hangup = tc_http__hangup_new(loop, on_hangup, err);
    if (srv->hangup == NULL) {
        free(srv);
        return NULL;
    }
    info.options |= LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    srv->ctx = lws_create_context(&info);
    if (srv->ctx != NULL) {
        /* Our vhost, not lws's default one: lws 4.1.6 on a foreign libuv
         * loop answers a default vhost it could not create (the port in
         * use) with a context it is already destroying, not NULL, and
         * tocsind ran on listening nowhere. */
        srv->vhost = lws_create_vhost(srv->ctx, &info);
    }
    if (srv->vhost == NULL) {
        tc_error_set(err, TC_EIO, "cannot start the HTTP server on %s (is the port in use?)",
                     cfg->http_listen);
        goto fail;
    }
    if (cfg->http_reuse_port && (srv->listener = tc_http__listener_new(srv, err)) == NULL) {
        goto fail;
    }
    srv->vhost = lws_get_vhost_by_name(srv->ctx, "tocsin");
    srv->fd_guard = tc_http__fd_guard_new(tc_server_port(srv));
    srv->per_ip = tc_http__per_ip_new(cfg->http_max_pending_per_ip,
                                      cfg->http_max_connections_per_ip, deps->max_connections);
    uv_timer_init(loop, &srv->sse_heartbeat);
    srv->sse_heartbeat.data = srv;
    uint64_t every = cfg->ws_heartbeat_ms / 4;
    uv_timer_start(&srv->sse_heartbeat, tc_http__sse_heartbeat, every, every);
    return srv;
fail:
    if (srv->ctx != NULL) {
        lws_context_destroy(srv->ctx);
    }
    tc_http__hangup_free(srv->hangup);
    free(srv);
    return NULL;
}

int
tc_server_port(const struct tc_server *srv)
{
    if (srv->listener != NULL) {
        return tc_http__listener_port(srv->listener);
    }
    return srv->vhost ? lws_get_vhost_listen_port(srv->vhost) : srv->cfg->http_port;
}

void
tc_server_shutdown(struct tc_server *srv)
{
    srv->shutting_down = true;
    /* Closed now, the shared port's new connections go to the other nodes. */
    tc_http__listener_close(srv->listener);
    srv->listener = NULL;
    uv_timer_stop(&srv->sse_heartbeat);
    for (struct tc_http__conn *c = srv->sse.next; c != &srv->sse; c = c->next) {
        c->sse_closing = true;
        lws_callback_on_writable(c->wsi);
    }
}

size_t
tc_server_sse_count(const struct tc_server *srv)
{
    return srv->nsse;
}

static void
free_on_close(uv_handle_t *h)
{
    free(h->data);
}

void
tc_server_free(struct tc_server *srv)
{
    if (srv == NULL) {
        return;
    }
    tc_http__listener_close(srv->listener);
    srv->listener = NULL;
    lws_context_destroy(srv->ctx);
    tc_http__fd_guard_free(srv->fd_guard);
    srv->fd_guard = NULL;
    tc_http__per_ip_free(srv->per_ip);
    srv->per_ip = NULL;
    tc_http__hangup_free(srv->hangup); /* after the streams closed with the context */
    srv->hangup = NULL;
    for (size_t i = 0; i < srv->nadmin_routes; i++) {
        free(srv->admin_routes[i].pattern);
    }
    uv_timer_stop(&srv->sse_heartbeat);
    uv_close((uv_handle_t *)&srv->sse_heartbeat, free_on_close);
}
