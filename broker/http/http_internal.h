/* tocsin — SPDX-License-Identifier: MIT
 *
 * Folder-private parts of http/: the per-connection state and the helpers
 * routes.c and sse.c share with server.c.
 */
#ifndef TC_HTTP_INTERNAL_H
#define TC_HTTP_INTERNAL_H

#include "http/client_token.h"
#include "http/server.h"
#include "model/frame_queue.h"

struct tc_http__pending;

/* Per HTTP connection (lws per-session data, zeroed by lws). */
struct tc_http__conn {
    struct tc_hub_sink sink; /* first: SSE streams are hub sinks */
    struct tc_server *srv;
    struct lws *wsi;
    struct tc_http__conn *prev, *next; /* SSE streams only */
    enum { CONN_IDLE, CONN_RESPONSE, CONN_PENDING, CONN_SSE } kind;
    /* A whole response: LWS_PRE bytes of headroom, then body_len bytes. */
    int status;
    const char *content_type;
    unsigned char *body;
    size_t body_len;
    char etag[TC_EPOCH_MAX + 32];
    bool close_after;
    bool watched;                     /* its socket is in the hang-up watch (hangup.c) */
    bool client_gone;                 /* the client closed while its answer was awaited */
    bool cors;                        /* a public read route: answer with CORS headers */
    bool preflight;                   /* an OPTIONS preflight: answer with the allowed methods */
    bool auth_challenge;              /* a 401 for the client token: add WWW-Authenticate */
    struct tc_http__pending *pending; /* an answer from Redis to wait for */
    struct tc_admin_req *admin_req;   /* an admin answer to wait for */
    /* An admin request: method, path and its body, read up to
     * http.max_body (a larger Content-Length is answered 413 at once). */
    int method; /* enum tc_http_method */
    char path[256];
    char *req_body;
    size_t req_len, req_expect;
    bool reading_body;
    /* SSE */
    bool sse_headers_sent;
    bool sse_closing;
    struct tc_hub_sub *sub;
    struct tc_frame_queue q;
    uint64_t last_send_ms;
};

struct tc_server {
    uv_loop_t *loop;
    const struct tc_config *cfg;
    struct tc_server_deps deps;
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    struct lws_protocols protocols[3];
    lws_retry_bo_t retry;
    struct tc_http__conn sse; /* list head of SSE streams */
    size_t nsse;
    uv_timer_t sse_heartbeat;
    struct tc_http__admin_route {
        enum tc_http_method method;
        char *pattern;
        tc_admin_handler handler;
        void *arg;
        bool open;      /* a public route: no token */
    } admin_routes[48]; /* the bound: more is a programming error (TC_EAGAIN) */
    size_t nadmin_routes;
    struct tc_http__per_ip *per_ip; /* open connections per client address */
    struct tc_http__hangup *hangup; /* the SSE streams' sockets */
    struct tc_http__fd_guard *fd_guard;
    struct tc_http__listener *listener; /* http.reuse_port; else lws listens */
    bool shutting_down;
};

/* TCP keepalive of accepted sockets (lws's and ours): a dead peer is found
 * after KA_TIME + KA_INTERVAL * KA_PROBES seconds of silence. */
#define TC_HTTP__KA_TIME     60
#define TC_HTTP__KA_INTERVAL 10
#define TC_HTTP__KA_PROBES   3

/* Queues a complete response on c and asks for a writeable callback.
 * @takes body (allocated with tc_http__body_alloc, may be NULL). */
void tc_http__respond(struct tc_http__conn *c, int status, const char *content_type,
                      unsigned char *body, size_t len);
/* A JSON error body: {"error":code,"message":message}. */
void tc_http__respond_error(struct tc_http__conn *c, int status, const char *code,
                            const char *message);
/* Adds the CORS headers of a public read route (when the request has an
 * allowed Origin). @returns 0 or -1 (no room). */
int tc_http__cors_headers(struct tc_http__conn *c, unsigned char **p, unsigned char *end);
/* A buffer with LWS_PRE headroom; the returned pointer is the start of the
 * headroom, the body goes at + LWS_PRE. */
unsigned char *tc_http__body_alloc(size_t len);
unsigned char *tc_http__body_from(const char *text, size_t len);

/* Reads the raw query string into qs and the filter in it. On failure the
 * error answer (414, 400) is already queued. @returns 0 or TC_EINVAL. */
int tc_http__request_filter(struct tc_http__conn *c, char *qs, size_t len,
                            struct tc_filter *filter);

/* client_auth.c: judges the client token of a public read route (see
 * tc_client_token_request); qs may be NULL (then it is read here). On
 * refusal the 401/403 answer is queued. @returns true when allowed, with
 * *tok filled (the caller finis it). */
bool tc_http__client_token(struct tc_http__conn *c, const char *qs, const struct tc_filter *filter,
                           struct tc_client_token *tok);

/* admin.c: bearer-token routes (the admin API). */
bool tc_http__is_admin_route(const struct tc_server *srv, int method, const char *path);
/* Checks the token and the body's size; queues the error answer or starts
 * reading the body. @returns 0. */
int tc_http__admin_begin(struct tc_http__conn *c);
/* A piece of the body. @returns 0, or -1 to drop a connection that sends
 * more than it announced. */
int tc_http__admin_body(struct tc_http__conn *c, const void *in, size_t len);
void tc_http__admin_complete(struct tc_http__conn *c);
void tc_http__admin_fini(struct tc_http__conn *c);

/* routes.c */
int tc_http__route(struct tc_http__conn *c, const char *path);
void tc_http__pending_detach(struct tc_http__conn *c);

/* static.c: the status page's files, GET / (index.html) and GET
 * /static/<name>, from http.static_dir when it has the file, else built in. */
#define TC_HTTP_STATIC_MAX (1024 * 1024) /* a larger file is not served: 404 and a warning */

/* One built-in file; the table is generated from clients/status and
 * clients/js by tocsin_embed in CMakeLists.txt. */
struct tc_http__static_file {
    const char *name;
    const unsigned char *data;
    size_t len;
};
extern const struct tc_http__static_file tc_http__static_builtin[];
extern const size_t tc_http__static_builtin_count;

/* True for a name the route may serve: 1-128 bytes of [A-Za-z0-9._-], not
 * starting with '.' and without "..", so it names a file in one directory. */
bool tc_http__static_name_ok(const char *name);
/* The Content-Type of name by its extension, or NULL: not served. */
const char *tc_http__static_type(const char *name);
/* Reads name from dir (NULL or "": built-ins only), else the built-in copy.
 * @returns 0 with *body (new, tc_http__body_alloc) and *len, or TC_ENOENT,
 * TC_ETOOBIG (over TC_HTTP_STATIC_MAX) or TC_EIO, with err set. */
int tc_http__static_load(const char *dir, const char *name, unsigned char **body, size_t *len,
                         struct tc_error *err);
/* The ETag of a content: 16 hex digits of its hash, in double quotes (19
 * bytes with the NUL; size must allow that). */
void tc_http__static_etag(const unsigned char *data, size_t len, char *buf, size_t size);
/* True when an If-None-Match value (a list, W/ or *) names etag. */
bool tc_http__static_etag_match(const char *if_none_match, const char *etag);
/* Answers GET / and GET /static/<name>. */
void tc_http__static_route(struct tc_http__conn *c, const char *path);

/* per_ip.c: connections per client address (http.max_pending_per_ip,
 * http.max_connections_per_ip) and of the process (its cap: see
 * tc_config_fd_budget). A connection is "pending" from accept until
 * its first request head is whole. */
struct tc_http__per_ip;
struct tc_http__per_ip_conn;
struct tc_http__addr {
    uint8_t b[16]; /* IPv6; IPv4 in its mapped form ::ffff:a.b.c.d */
};
enum tc_http__per_ip_verdict {
    TC_PER_IP_ADMIT,
    TC_PER_IP_OVER_PENDING, /* http.max_pending_per_ip */
    TC_PER_IP_OVER_OPEN,    /* http.max_connections_per_ip */
    TC_PER_IP_OVER_TOTAL,   /* the process's cap (http.max_connections) */
};
/* The peer address of a connected socket. @returns 0, TC_EIO, or TC_EINVAL
 * for a socket that is not IPv4 or IPv6. */
int tc_http__addr_of_fd(int fd, struct tc_http__addr *addr);
/* The address as text (buf of INET6_ADDRSTRLEN bytes). */
void tc_http__addr_text(const struct tc_http__addr *addr, char *buf, size_t len);
/* Limits of 0 are no limit. @returns new. */
struct tc_http__per_ip *tc_http__per_ip_new(int64_t max_pending, int64_t max_open,
                                            uint64_t max_total);
/* Frees the table now, or when its last connection closes. */
void tc_http__per_ip_free(struct tc_http__per_ip *t);
/* May one more connection from addr be accepted? Counts nothing. A refusal
 * sets *log_refused to the refusals to report now (with this one), at most
 * once a second per address (for the process's cap, once a second in
 * all); 0 = say nothing. */
enum tc_http__per_ip_verdict tc_http__per_ip_admit(struct tc_http__per_ip *t,
                                                   const struct tc_http__addr *addr,
                                                   uint64_t now_ms, uint64_t *log_refused);
/* Counts an accepted connection, pending. @returns new, released by
 * tc_http__per_ip_close. */
struct tc_http__per_ip_conn *tc_http__per_ip_open(struct tc_http__per_ip *t,
                                                  const struct tc_http__addr *addr);
/* Its request head is whole: no longer pending (again: no-op). NULL: no-op. */
void tc_http__per_ip_established(struct tc_http__per_ip_conn *c);
/* The connection closed. @takes c (NULL: no-op). */
void tc_http__per_ip_close(struct tc_http__per_ip_conn *c);
void tc_http__per_ip_counts(struct tc_http__per_ip *t, const struct tc_http__addr *addr,
                            int64_t *open, int64_t *pending);
/* Addresses with a connection open: the table's entries. */
size_t tc_http__per_ip_addresses(const struct tc_http__per_ip *t);
/* Connections open in all. */
size_t tc_http__per_ip_total(const struct tc_http__per_ip *t);
/* LWS_CALLBACK_FILTER_NETWORK_CONNECTION (@returns 1 to refuse),
 * SERVER_NEW_CLIENT_INSTANTIATED and WSI_DESTROY, for the table in the
 * context's user (struct tc_server). @returns 0 or 1. */
int tc_http__per_ip_callback(struct lws *wsi, enum lws_callback_reasons reason, void *in);
/* Admits or refuses a socket just accepted, by its peer's address (the
 * filter of lws's listener and of ours, listen.c). @returns 1 to refuse:
 * the caller closes fd. */
int tc_http__per_ip_filter(struct tc_server *srv, int fd);

/* listen.c: the listening socket of http.reuse_port, shared through
 * SO_REUSEPORT by every tocsind on the host that sets it; each accepted
 * socket is handed to lws's vhost as its own listener would.
 * @returns new, or NULL with err set (the port is taken without
 * SO_REUSEPORT, or by another user). */
struct tc_http__listener;
struct tc_http__listener *tc_http__listener_new(struct tc_server *srv, struct tc_error *err);
int tc_http__listener_port(const struct tc_http__listener *l);
/* Stops accepting and closes the socket; memory goes in a close callback. */
void tc_http__listener_close(struct tc_http__listener *l);

/* fd_guard.c: at the fd limit, drains the listener lws cannot (EMFILE).
 * One per process. @returns new (a guard that does nothing when the
 * listener on port is not found: it says so). */
struct tc_http__fd_guard;
struct tc_http__fd_guard *tc_http__fd_guard_new(int port);
void tc_http__fd_guard_free(struct tc_http__fd_guard *g);
/* Every lws log line (newline stripped): an accept failed for want of a
 * descriptor drains the listener, once per line. */
void tc_http__fd_guard_lws_line(const char *line);

/* hangup.c: tells when the client of a connection that lws does not read
 * (an SSE stream, a request waiting for its answer) closes it (hung_up) or
 * sends bytes after its request (!hung_up, when asked); once per watch. */
struct tc_http__hangup;
typedef void (*tc_http__hangup_cb)(void *arg, bool hung_up);
/* @returns new, or NULL with err set. */
struct tc_http__hangup *tc_http__hangup_new(uv_loop_t *loop, tc_http__hangup_cb cb,
                                            struct tc_error *err);
/* Freed in a close callback on the loop; unwatch every socket first. NULL:
 * no-op. */
void tc_http__hangup_free(struct tc_http__hangup *h);
/* Watches fd until unwatched (bytes_too: bytes are reported as well as a
 * close); cb gets arg. @borrows arg, which must stay valid until
 * tc_http__hangup_unwatch. @returns 0, or TC_EIO (the kernel refused:
 * ENOMEM, fs.epoll.max_user_watches). */
int tc_http__hangup_watch(struct tc_http__hangup *h, int fd, bool bytes_too, void *arg);
/* A watched fd, before it is closed. */
void tc_http__hangup_unwatch(struct tc_http__hangup *h, int fd);
/* The same for a connection of the server (c->watched); the server's
 * callback is given c. A refusal is logged, and the connection goes
 * unwatched: its hang-up is found by its next write. */
void tc_http__conn_watch(struct tc_http__conn *c, bool bytes_too);
/* Unwatches c if it is watched. */
void tc_http__conn_unwatch(struct tc_http__conn *c);

/* sse.c */
void tc_http__sse_start(struct tc_http__conn *c);
int tc_http__sse_writeable(struct tc_http__conn *c);
void tc_http__sse_closed(struct tc_http__conn *c);
void tc_http__sse_heartbeat(uv_timer_t *t);
/* The client of a stream closed it (hung_up) or sent bytes. */
void tc_http__sse_hangup(struct tc_http__conn *c, bool hung_up);

#endif
