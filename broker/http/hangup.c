/* tocsin — SPDX-License-Identifier: MIT
 *
 * The hang-up watch: sees at once when the client of a connection that lws
 * does not read (an SSE stream, a request waiting for its answer) closes it
 * or sends more. One epoll set of those sockets, itself watched by one
 * uv_poll on the main loop, so a connection costs no extra descriptor. It
 * never reads a socket: it only tells its callback, which closes the
 * connection through lws. Linux only (epoll). @loop main.
 *
 * Why: lws 4.1.6 reads an HTTP/1 connection only between transactions or
 * for a request body (lws_h1_server_socket_service, roles/h1/ops-h1.c).
 * While a response is open (LRS_DOING_TRANSACTION, which an SSE stream
 * never leaves) it skips POLLIN: the client's FIN is never read, the socket
 * sits in CLOSE_WAIT until a later write fails, and since libuv polls level
 * triggered, lws is woken for that unread FIN (or any unread byte) at every
 * turn of the loop: a busy loop for as long as the stream lives, or a
 * request waits for Redis. Later lws reads in that state too ("at least,
 * SSE").
 */
#include "http/http_internal.h"
#include "log/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

struct tc_http__hangup {
    uv_poll_t poll;
    int epfd;
    tc_http__hangup_cb cb;
};

/* Events taken from epoll per wake-up; more wait for the next turn (the
 * epoll set stays readable while it has any). */
#define EVENTS_PER_WAKE 64

static void
on_ready(uv_poll_t *poll, int status, int events)
{
    struct tc_http__hangup *h = poll->data;
    struct epoll_event ev[EVENTS_PER_WAKE];
    TC_UNUSED(events);
    if (status < 0) {
        tc_warn("http", "hang-up watch failed", TC_S("error", uv_strerror(status)));
        return;
    }
    int n = epoll_wait(h->epfd, ev, EVENTS_PER_WAKE, 0);
    for (int i = 0; i < n; i++) {
        /* Each socket reports once (EPOLLONESHOT) and leaves the set
         * before lws closes it (tc_http__hangup_unwatch from the close
         * callback), so data.ptr is always a live watcher. */
        bool hung_up = (ev[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
        h->cb(ev[i].data.ptr, hung_up);
    }
}

struct tc_http__hangup *
tc_http__hangup_new(uv_loop_t *loop, tc_http__hangup_cb cb, struct tc_error *err)
{
    struct tc_http__hangup *h = tc_xcalloc(1, sizeof(*h));
    h->cb = cb;
    h->poll.data = h;
    h->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (h->epfd < 0) {
        tc_error_set(err, TC_EIO, "epoll_create1: %s", strerror(errno));
        goto fail;
    }
    int rc = uv_poll_init(loop, &h->poll, h->epfd);
    if (rc != 0) {
        tc_error_set(err, TC_EIO, "uv_poll_init: %s", uv_strerror(rc));
        close(h->epfd);
        goto fail;
    }
    rc = uv_poll_start(&h->poll, UV_READABLE, on_ready);
    if (rc != 0) {
        tc_error_set(err, TC_EIO, "uv_poll_start: %s", uv_strerror(rc));
        tc_http__hangup_free(h); /* an initialised handle is freed in its close */
        return NULL;
    }
    return h;
fail:
    free(h);
    return NULL;
}

static void
free_on_close(uv_handle_t *handle)
{
    struct tc_http__hangup *h = handle->data;
    close(h->epfd);
    free(h);
}

void
tc_http__hangup_free(struct tc_http__hangup *h)
{
    if (h == NULL) {
        return;
    }
    uv_poll_stop(&h->poll);
    uv_close((uv_handle_t *)&h->poll, free_on_close);
}

int
tc_http__hangup_watch(struct tc_http__hangup *h, int fd, bool bytes_too, void *arg)
{
    struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLONESHOT, .data.ptr = arg};
    if (bytes_too) {
        ev.events |= EPOLLIN;
    }
    if (h == NULL || fd < 0) {
        return TC_ESTATE;
    }
    if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        return TC_EIO; /* ENOMEM or fs.epoll.max_user_watches */
    }
    return TC_OK;
}

void
tc_http__hangup_unwatch(struct tc_http__hangup *h, int fd)
{
    /* The socket must still be open: a watch left in the set would report
     * for a connection that is gone. */
    if (h != NULL && epoll_ctl(h->epfd, EPOLL_CTL_DEL, fd, NULL) != 0) {
        tc_err("http", "cannot unwatch a socket", TC_I("fd", fd), TC_S("error", strerror(errno)));
    }
}

void
tc_http__conn_watch(struct tc_http__conn *c, bool bytes_too)
{
    if (c->watched) {
        return;
    }
    int rc = tc_http__hangup_watch(c->srv->hangup, lws_get_socket_fd(c->wsi), bytes_too, c);
    c->watched = rc == TC_OK;
    if (rc != TC_OK) {
        tc_warn("http", "cannot watch a connection for a hang-up", TC_I("error", rc));
    }
}

void
tc_http__conn_unwatch(struct tc_http__conn *c)
{
    if (c->watched) {
        tc_http__hangup_unwatch(c->srv->hangup, lws_get_socket_fd(c->wsi));
        c->watched = false;
    }
}
