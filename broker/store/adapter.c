/* tocsin — SPDX-License-Identifier: MIT
 *
 * hiredis' event hooks on a libuv poll handle: our copy of hiredis 0.14's
 * adapters/libuv.h with one change. That adapter returns early when uv_poll
 * reports an error, and libuv reports a socket error (a reset link, a refused
 * connect) exactly that way, after stopping the poll: hiredis never learnt of
 * it, and the link looked up until a command timed out. Here an error hands
 * the socket to hiredis as if it were ready, so its read or write meets the
 * error and it disconnects at once (hiredis 1.x's adapter does the same).
 * @loop main. It owns nothing beyond the poll handle of one context.
 */
#include "store/store_internal.h"

#include "util/util.h"

#include <stdlib.h>

struct poller {
    redisAsyncContext *ac; /* NULL once hiredis cleaned up */
    uv_poll_t handle;
    int events;
};

static void
on_poll(uv_poll_t *handle, int status, int events)
{
    struct poller *p = handle->data;

    /* On an error libuv passes no events: what we waited for is what may
     * now fail, so hiredis gets to try it and see the error. */
    if (status < 0) {
        events = p->events;
    }
    if (p->ac != NULL && (events & UV_READABLE)) {
        redisAsyncHandleRead(p->ac);
    }
    if (p->ac != NULL && (events & UV_WRITABLE)) {
        redisAsyncHandleWrite(p->ac);
    }
    /* libuv stopped the handle on the error; if hiredis found nothing wrong
     * after all (a spurious wake-up), keep watching. */
    if (status < 0 && p->ac != NULL && p->events != 0) {
        uv_poll_start(&p->handle, p->events, on_poll);
    }
}

static void
update(struct poller *p)
{
    if (p->events != 0) {
        uv_poll_start(&p->handle, p->events, on_poll);
    } else {
        uv_poll_stop(&p->handle);
    }
}

static void
add_read(void *data)
{
    struct poller *p = data;
    p->events |= UV_READABLE;
    update(p);
}

static void
del_read(void *data)
{
    struct poller *p = data;
    p->events &= ~UV_READABLE;
    update(p);
}

static void
add_write(void *data)
{
    struct poller *p = data;
    p->events |= UV_WRITABLE;
    update(p);
}

static void
del_write(void *data)
{
    struct poller *p = data;
    p->events &= ~UV_WRITABLE;
    update(p);
}

static void
on_closed(uv_handle_t *h)
{
    free(h->data);
}

/* hiredis is done with the context (it may be freeing it right now): the
 * handle goes, and a callback still queued on this loop turn sees ac NULL. */
static void
cleanup(void *data)
{
    struct poller *p = data;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->handle, on_closed);
}

int
tc_store__attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    struct poller *p;

    if (ac->ev.data != NULL) {
        return TC_ESTATE;
    }
    p = tc_xcalloc(1, sizeof(*p));
    if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
        free(p);
        return TC_EIO;
    }
    p->ac = ac;
    p->handle.data = p;
    ac->ev.data = p;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    return 0;
}
