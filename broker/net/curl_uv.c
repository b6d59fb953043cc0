/* tocsin — SPDX-License-Identifier: MIT
 *
 * libcurl multi on libuv (see curl_uv.h): curl tells us which sockets to
 * watch (on_curl_socket) and when to wake it (on_curl_timeout); we tell it
 * what happened (curl_multi_socket_action) and hand finished transfers back.
 * @loop the loop given to tc_curl_uv_new.
 */
#include "net/curl_uv.h"
#include "util/util.h"

#include <stdlib.h>

struct tc_curl_uv {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    int open_handles; /* uv handles not yet closed: the timer and the polls */
    bool closing;
    void (*close_cb)(void *arg);
    void *close_arg;
};

/* What a transfer's CURLOPT_PRIVATE points to. */
struct transfer {
    tc_curl_uv_done_fn done;
    void *arg;
};

/* One socket curl asked us to watch. */
struct sock {
    uv_poll_t poll; /* first: the close callback frees the struct */
    struct tc_curl_uv *m;
    curl_socket_t fd;
};

static void
maybe_free(struct tc_curl_uv *m)
{
    if (m->closing && m->open_handles == 0) {
        void (*cb)(void *) = m->close_cb;
        void *arg = m->close_arg;
        free(m);
        if (cb != NULL) {
            cb(arg);
        }
    }
}

static void
on_handle_closed(uv_handle_t *h)
{
    struct tc_curl_uv *m = h->data;
    if (h->type == UV_POLL) {
        free(h);
    }
    m->open_handles--;
    maybe_free(m);
}

/* Hands every finished transfer back to its owner. */
static void
check_done(struct tc_curl_uv *m)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        CURL *easy = msg->easy_handle;
        CURLcode cc = msg->data.result;
        struct transfer *t = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
        curl_multi_remove_handle(m->multi, easy);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        tc_curl_uv_done_fn done = t->done;
        void *arg = t->arg;
        free(t);
        done(arg, easy, cc);
    }
}

static void
on_poll(uv_poll_t *p, int status, int events)
{
    struct sock *s = (struct sock *)p;
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        flags |= (events & UV_READABLE) ? CURL_CSELECT_IN : 0;
        flags |= (events & UV_WRITABLE) ? CURL_CSELECT_OUT : 0;
    }
    int running;
    struct tc_curl_uv *m = s->m;
    curl_multi_socket_action(m->multi, s->fd, flags, &running);
    check_done(m);
}

static int
on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    TC_UNUSED(easy);
    struct tc_curl_uv *m = userp;
    struct sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, on_handle_closed);
            curl_multi_assign(m->multi, fd, NULL);
        }
        return 0;
    }
    if (s == NULL) {
        s = tc_xcalloc(1, sizeof(*s));
        s->m = m;
        s->fd = fd;
        uv_poll_init_socket(m->loop, &s->poll, fd);
        s->poll.data = m;
        m->open_handles++;
        curl_multi_assign(m->multi, fd, s);
    }
    int events = 0;
    events |= (what & CURL_POLL_IN) ? UV_READABLE : 0;
    events |= (what & CURL_POLL_OUT) ? UV_WRITABLE : 0;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static void
on_timer(uv_timer_t *t)
{
    struct tc_curl_uv *m = t->data;
    int running;
    curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(m);
}

static int
on_curl_timeout(CURLM *multi, long timeout_ms, void *userp)
{
    TC_UNUSED(multi);
    struct tc_curl_uv *m = userp;
    if (timeout_ms < 0) {
        uv_timer_stop(&m->timer);
    } else {
        /* 0 too goes through the loop: curl must not be re-entered from
         * inside one of its callbacks. */
        uv_timer_start(&m->timer, on_timer, (uint64_t)timeout_ms, 0);
    }
    return 0;
}

struct tc_curl_uv *
tc_curl_uv_new(uv_loop_t *loop, long max_host_conns, long max_conns)
{
    struct tc_curl_uv *m = tc_xcalloc(1, sizeof(*m));
    m->loop = loop;
    m->multi = curl_multi_init();
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, on_curl_timeout);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_host_conns);
    curl_multi_setopt(m->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, max_conns);
    curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS, max_conns);
    uv_timer_init(loop, &m->timer);
    m->timer.data = m;
    m->open_handles = 1;
    return m;
}

void
tc_curl_uv_add(struct tc_curl_uv *m, CURL *easy, tc_curl_uv_done_fn done, void *arg)
{
    struct transfer *t = tc_xcalloc(1, sizeof(*t));
    t->done = done;
    t->arg = arg;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
    curl_multi_add_handle(m->multi, easy);
}

void
tc_curl_uv_remove(struct tc_curl_uv *m, CURL *easy)
{
    struct transfer *t = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
    curl_multi_remove_handle(m->multi, easy);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
    free(t);
}

void
tc_curl_uv_close(struct tc_curl_uv *m, void (*close_cb)(void *arg), void *arg)
{
    m->closing = true;
    m->close_cb = close_cb;
    m->close_arg = arg;
    /* Closes curl's pooled connections, which closes our polls through
     * on_curl_socket. */
    curl_multi_cleanup(m->multi);
    m->multi = NULL;
    uv_timer_stop(&m->timer);
    uv_close((uv_handle_t *)&m->timer, on_handle_closed);
}
