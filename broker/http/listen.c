/* tocsin — SPDX-License-Identifier: MIT
 *
 * The listening socket of http.reuse_port. Several tocsind on one host (one
 * per core) bind the same port with SO_REUSEPORT and the kernel spreads the
 * connections over them. lws 4.1.6 sets SO_REUSEPORT only when it runs
 * several service threads (LWS_SERVER_OPTION_ALLOW_LISTEN_SHARE is ignored
 * with one), so we listen here and hand each accepted socket to the vhost as
 * lws's own listener would. It reads no byte of a connection.
 * @loop main.
 */
#define _GNU_SOURCE /* accept4 */
#include "http/http_internal.h"
#include "log/log.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Accepts per wake-up, so that a connection storm does not hold the loop
 * from the sessions already open; the rest wait in the backlog for the
 * next turn. */
#define ACCEPT_BATCH 128
/* At the fd limit accept fails while the socket stays readable: accepting
 * pauses this long (lws's listener spins there, bench README). */
#define PAUSE_MS 100
/* At most one "fd limit" line per this long. */
#define WARN_EVERY_MS 10000

struct tc_http__listener {
    uv_poll_t poll;
    uv_timer_t pause;
    struct tc_server *srv;
    int fd;
    int port;
    int closing; /* handles still to close */
    uint64_t last_warn_ms;
    uint64_t failed_since_warn;
};

static void on_readable(uv_poll_t *h, int status, int events);

/* The options lws gives the sockets its listener accepts: keepalive at our
 * bounds and no Nagle (lws_plat_set_socket_options is not exported). */
static void
socket_options(int fd)
{
    int on = 1, idle = TC_HTTP__KA_TIME, intvl = TC_HTTP__KA_INTERVAL, cnt = TC_HTTP__KA_PROBES;
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

/* A socket bound to host:port with SO_REUSEPORT, listening. An IPv6 host
 * (it has a ':') listens on IPv6, any other on IPv4, as lws does with
 * LWS_SERVER_OPTION_DISABLE_IPV6. @returns the fd, or -1 with err set. */
static int
bind_shared(const char *listen_text, const char *host, int port, struct tc_error *err)
{
    struct addrinfo hints, *res = NULL;
    char service[16];
    int fd = -1, on = 1;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = strchr(host, ':') != NULL ? AF_INET6 : AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(service, sizeof(service), "%d", port);
    int rc = getaddrinfo(strcmp(host, "0.0.0.0") == 0 ? NULL : host, service, &hints, &res);
    if (rc != 0) {
        tc_error_set(err, TC_EINVAL, "http.listen: cannot resolve %s: %s", host, gai_strerror(rc));
        goto out;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        tc_error_set(err, TC_EIO, "cannot open the listening socket: %s", strerror(errno));
        goto out;
    }
    /* SO_REUSEADDR as lws sets it: a restart binds over TIME_WAIT. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0) {
        tc_error_set(err, TC_EIO, "cannot set SO_REUSEPORT: %s", strerror(errno));
        goto fail;
    }
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
        /* EADDRINUSE: the port is held by a process without
         * http.reuse_port, or by another user's. */
        tc_error_set(err, TC_EIO,
                     "cannot start the HTTP server on %s (is the port in use by a "
                     "process without http.reuse_port?): %s",
                     listen_text, strerror(errno));
        goto fail;
    }
    if (listen(fd, SOMAXCONN) != 0) {
        tc_error_set(err, TC_EIO, "cannot listen on %s: %s", listen_text, strerror(errno));
        goto fail;
    }
    goto out;
fail:
    close(fd);
    fd = -1;
out:
    if (res != NULL) {
        freeaddrinfo(res);
    }
    return fd;
}

static int
bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        return 0;
    }
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

struct tc_http__listener *
tc_http__listener_new(struct tc_server *srv, struct tc_error *err)
{
    const struct tc_config *cfg = srv->cfg;
    int fd = bind_shared(cfg->http_listen, cfg->http_host, cfg->http_port, err);
    if (fd < 0) {
        return NULL;
    }
    struct tc_http__listener *l = tc_xcalloc(1, sizeof(*l));
    l->srv = srv;
    l->fd = fd;
    l->port = bound_port(fd);
    uv_poll_init(srv->loop, &l->poll, fd);
    uv_timer_init(srv->loop, &l->pause);
    l->poll.data = l->pause.data = l;
    uv_poll_start(&l->poll, UV_READABLE, on_readable);
    return l;
}

int
tc_http__listener_port(const struct tc_http__listener *l)
{
    return l->port;
}

static void
on_resume(uv_timer_t *t)
{
    struct tc_http__listener *l = t->data;
    uv_poll_start(&l->poll, UV_READABLE, on_readable);
}

/* Out of descriptors (or kernel memory): pause accepting, and say so at
 * most every WARN_EVERY_MS. The waiting clients stay in the backlog. */
static void
pause_accepting(struct tc_http__listener *l, int errnum)
{
    uint64_t now = tc_now_ms();
    l->failed_since_warn++;
    if (l->last_warn_ms == 0 || now - l->last_warn_ms >= WARN_EVERY_MS) {
        tc_warn("http", "cannot accept connections: accepting paused",
                TC_S("error", strerror(errnum)), TC_U("pauses", l->failed_since_warn));
        l->last_warn_ms = now;
        l->failed_since_warn = 0;
    }
    uv_poll_stop(&l->poll);
    uv_timer_start(&l->pause, on_resume, PAUSE_MS, 0);
}

/* One accepted socket to the vhost, through the per-address filter. */
static void
adopt(struct tc_http__listener *l, int fd)
{
    struct tc_server *srv = l->srv;
    if (srv->shutting_down || tc_http__per_ip_filter(srv, fd) != 0) {
        close(fd);
        return;
    }
    socket_options(fd);
    lws_sock_file_fd_type desc;
    desc.sockfd = fd;
    int type = LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP;
    if (srv->cfg->http_tls_cert[0] != '\0') {
        type |= LWS_ADOPT_ALLOW_SSL;
    }
    /* On failure lws has closed fd. */
    if (lws_adopt_descriptor_vhost(srv->vhost, (lws_adoption_type)type, desc, NULL, NULL) == NULL) {
        tc_warn("http", "lws could not adopt an accepted connection");
    }
}

static void
on_readable(uv_poll_t *h, int status, int events)
{
    struct tc_http__listener *l = h->data;
    (void)events;
    if (status < 0) {
        tc_warn("http", "listening socket error", TC_S("error", uv_strerror(status)));
        return;
    }
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            adopt(l, fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) {
            continue; /* that client left the backlog; others may wait */
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            pause_accepting(l, errno);
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            tc_warn("http", "accept failed", TC_S("error", strerror(errno)));
        }
        return;
    }
}

static void
on_handle_closed(uv_handle_t *h)
{
    struct tc_http__listener *l = h->data;
    if (--l->closing == 0) {
        close(l->fd);
        free(l);
    }
}

void
tc_http__listener_close(struct tc_http__listener *l)
{
    if (l == NULL) {
        return;
    }
    l->closing = 2;
    uv_close((uv_handle_t *)&l->poll, on_handle_closed);
    uv_close((uv_handle_t *)&l->pause, on_handle_closed);
}
