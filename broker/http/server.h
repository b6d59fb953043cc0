/* tocsin — SPDX-License-Identifier: MIT
 *
 * The HTTP server: the lws context on the main libuv loop, the HTTP routes
 * (health, readiness, metrics, incidents, SSE) and the listener the
 * WebSocket protocol (from ws/) shares.
 * @loop main.
 */
#ifndef TC_HTTP_SERVER_H
#define TC_HTTP_SERVER_H

#include "config/config.h"
#include "hub/hub.h"
#include "store/store.h"

#include <libwebsockets.h>
#include <stdbool.h>
#include <uv.h>

struct tc_server;

struct tc_server_deps {
    struct tc_hub *hub;
    struct tc_store *store;
    /* For /readyz: true when Kafka answered recently. */
    bool (*kafka_ready)(void *arg);
    void *kafka_arg;
};

/* Creates the context and starts listening on cfg->http_listen. ws_protocol
 * is copied into the protocol list. @returns new or NULL with err set. */
struct tc_server *tc_server_new(uv_loop_t *loop, const struct tc_config *cfg,
                                const struct lws_protocols *ws_protocol,
                                const struct tc_server_deps *deps, struct tc_error *err);
/* The port actually bound (for http.listen with port 0). */
int tc_server_port(const struct tc_server *srv);
/* Closes SSE streams; WebSocket sessions are closed by tc_ws_shutdown. */
void tc_server_shutdown(struct tc_server *srv);
size_t tc_server_sse_count(const struct tc_server *srv);
/* Destroys the context. The loop must then run until its handles closed. */
void tc_server_free(struct tc_server *srv);

/* True when origin may open a session: ws.allowed_origins is empty, or holds
 * it exactly. A missing Origin (non-browser clients) is allowed. */
bool tc_server_origin_allowed(const struct tc_config *cfg, const char *origin);

#endif
