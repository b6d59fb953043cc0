/* tocsin — SPDX-License-Identifier: MIT
 *
 * WebSocket sessions (DESIGN §4, subprotocol tocsin.v1): the lws protocol,
 * client messages, the bounded per-session send queue (1013 at its bound),
 * heartbeats and the 1001 close at shutdown. The lws context itself is
 * http/'s; this module only provides the protocol it serves.
 * @loop main.
 */
#ifndef TC_WS_H
#define TC_WS_H

#include "config/config.h"
#include "hub/hub.h"

#include <libwebsockets.h>
#include <stdbool.h>
#include <uv.h>

struct tc_ws;

struct tc_ws *tc_ws_new(uv_loop_t *loop, const struct tc_config *cfg, struct tc_hub *hub);
/* The protocol entry to put in the context's protocol list. @returns borrowed. */
const struct lws_protocols *tc_ws_protocol(struct tc_ws *ws);
/* Closes every session with 1001 and stops the heartbeat timer. */
void tc_ws_shutdown(struct tc_ws *ws);
size_t tc_ws_session_count(const struct tc_ws *ws);
/* Every session must be closed before (the lws context destroyed). */
void tc_ws_free(struct tc_ws *ws);

/* A parsed client message (pure; also the fuzz target's entry). */
enum tc_ws_msg_type { TC_WS_MSG_SUBSCRIBE, TC_WS_MSG_UNSUBSCRIBE };

struct tc_ws_msg {
    enum tc_ws_msg_type type;
    char id[65];
    struct tc_filter filter; /* owned; subscribe only */
    bool has_since;
    uint64_t since;
    char epoch[TC_EPOCH_MAX];
};

/* Parses one client message. On failure err->text says why and code (if not
 * NULL) is the error code for the client ("bad_message", ...).
 * @returns 0 or TC_EINVAL; on success the caller calls tc_ws_msg_fini. */
int tc_ws_msg_parse(const char *buf, size_t len, struct tc_ws_msg *out, struct tc_error *err);
void tc_ws_msg_fini(struct tc_ws_msg *m);

#endif
