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
    /* Client connections held at once, the cap of the fd budget main.c
     * set (tc_config_fd_budget); more are closed at accept. 0 = none. */
    uint64_t max_connections;
};

/* Creates the context and starts listening on cfg->http_listen. ws_protocol
 * is copied into the protocol list. @returns new or NULL with err set. */
struct tc_server *tc_server_new(uv_loop_t *loop, const struct tc_config *cfg,
                                const struct lws_protocols *ws_protocol,
                                const struct tc_server_deps *deps, struct tc_error *err);
/* Loads http.tls_cert and http.tls_key as the listener will, when set: PEM
 * files, the key the certificate's. @returns 0 or TC_EINVAL with err set. */
int tc_server_tls_check(const struct tc_config *cfg, struct tc_error *err);
/* The port actually bound (for http.listen with port 0). */
int tc_server_port(const struct tc_server *srv);
/* Closes SSE streams; WebSocket sessions are closed by tc_ws_shutdown. */
void tc_server_shutdown(struct tc_server *srv);
size_t tc_server_sse_count(const struct tc_server *srv);
/* Destroys the context. The loop must then run until its handles closed. */
void tc_server_free(struct tc_server *srv);

/* The admin API: routes other modules (gateways, publishing) register; the
 * server checks the token and reads the body, then calls the handler, which
 * answers once through tc_admin_reply (now or later, from a callback). */
enum tc_http_method {
    TC_HTTP_GET,
    TC_HTTP_POST,
    TC_HTTP_PUT,
    TC_HTTP_PATCH,
    TC_HTTP_DELETE,
    TC_HTTP_OPTIONS, /* CORS preflight of the public routes */
};

#define TC_ADMIN_MAX_PARAMS 4

struct tc_admin_req;
/* params are the path segments matched by "{}" in the pattern; body is the
 * request's JSON object (NULL for GET and DELETE). @borrows params, body. */
typedef void (*tc_admin_handler)(void *arg, struct tc_admin_req *req, const char *const *params,
                                 const json_t *body);

/* pattern: "/v1/webhooks" or "/v1/webhooks/{}/replay"; a "{}" segment matches
 * 1-128 characters of [A-Za-z0-9._:-]. At most 48 routes in all (admin and
 * public). @returns 0 or TC_EAGAIN. */
int tc_server_admin_route(struct tc_server *srv, enum tc_http_method method, const char *pattern,
                          tc_admin_handler handler, void *arg);
/* The same for a public route (self-service subscription, confirm and
 * unsubscribe links): no token; the body limit is the same. A form body
 * (application/x-www-form-urlencoded or multipart/form-data, as a mail
 * client's RFC 8058 one-click POST) reaches the handler as body NULL; any
 * other body must be a JSON object. */
int tc_server_public_route(struct tc_server *srv, enum tc_http_method method, const char *pattern,
                           tc_admin_handler handler, void *arg);
/* Copies the URL-decoded value of query parameter name into buf. @returns
 * its length, TC_ENOENT (absent), TC_ETOOBIG or TC_EINVAL (bad escape). */
int tc_admin_req_query(struct tc_admin_req *req, const char *name, char *buf, size_t len);
/* The client's IP address as text ("" when the client left). */
void tc_admin_req_peer(struct tc_admin_req *req, char *buf, size_t len);
/* Answers the request (json: compact JSON text). @takes req. If the client
 * left meanwhile, only frees req. */
void tc_admin_reply(struct tc_admin_req *req, int status, const char *json, size_t len);
void tc_admin_reply_error(struct tc_admin_req *req, int status, const char *code,
                          const char *message);
/* Answers with a body of another type (e.g. "text/html; charset=utf-8";
 * content_type must outlive the answer: a string constant). @takes req. */
void tc_admin_reply_typed(struct tc_admin_req *req, int status, const char *content_type,
                          const char *body, size_t len);

/* Room for a raw query string: a filter and a client token (of up to
 * about 40 components; a longer token goes in Authorization). Longer is 414. */
#define TC_HTTP_QUERY_MAX 2048
/* Copies the request's raw query string (its fragments joined by '&') into
 * qs. @returns 0, or TC_ETOOBIG when it does not fit: callers answer 414
 * rather than act on part of a filter. */
int tc_server_query_string(struct lws *wsi, char *qs, size_t len);

/* True when origin may open a session: ws.allowed_origins is empty, or holds
 * it exactly. A missing Origin (non-browser clients) is allowed. */
bool tc_server_origin_allowed(const struct tc_config *cfg, const char *origin);

#endif
