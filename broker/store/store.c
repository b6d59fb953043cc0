/* tocsin — SPDX-License-Identifier: MIT
 *
 * The store's connections and requests: hiredis async contexts on the libuv
 * loop, a uv timer per command (hiredis 0.14 has no command timeout), the
 * drop-and-reconnect path with capped exponential backoff, and the two
 * command entry points (apply, get_incident). The Lua lives in script.c, the
 * stream tailer in follow.c.
 * @loop main. hiredis contexts are only ever freed from a uv timer callback
 * (kill_timer), never from inside one of their own callbacks.
 */
#include "store/store_internal.h"

#include "log/log.h"
#include "metrics/metrics.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A reply within this long (plus the command timeout) counts as reachable;
 * the follower's 1 s XREAD rounds keep it fresh while Redis is healthy. */
#define REACHABLE_MS 3000

static void conn_connect(struct tc_store__conn *c);
static void schedule_retry(struct tc_store__conn *c);
static void maybe_finish_close(struct tc_store *s);

/* ---- requests ---- */

static void
req_closed(uv_handle_t *h)
{
    struct tc_store__req *req = h->data;
    struct tc_store *s = req->conn->store;

    free(req->argv);
    free(req->argvlen);
    free(req->buf);
    free(req);
    s->nreqs--;
    maybe_finish_close(s);
}

static void
req_release(struct tc_store__req *req)
{
    uv_timer_stop(&req->timer);
    uv_close((uv_handle_t *)&req->timer, req_closed);
}

static void
req_finish(struct tc_store__req *req, int status, const redisReply *reply)
{
    if (req->done) {
        return;
    }
    req->done = true;
    req->conn->inflight--;
    req->done_fn(req, status, reply);
}

/* The context went away (hiredis frees it, or we queued it for kill_timer):
 * everything sent on it fails, and a new one is tried after the backoff. */
static void
conn_lost(struct tc_store__conn *c, const char *reason)
{
    struct tc_store *s = c->store;
    bool was_up = c->up;

    c->ac = NULL;
    c->gen++;
    c->up = false;
    if (s->closing) {
        return;
    }
    tc_warn("store", "redis connection lost", TC_S("conn", c->name), TC_S("reason", reason),
            TC_U("retry_ms", c->backoff_ms));
    schedule_retry(c);
    if (c == &s->cmd) {
        tc_metrics_gauge_set(TC_G_REDIS_CONNECTED, 0);
        if (was_up && s->ready_cb != NULL) {
            s->ready_cb(s->ready_arg, false);
        }
    }
}

static void
on_kill(uv_timer_t *t)
{
    struct tc_store__conn *c = t->data;

    for (size_t i = 0; i < TC_STORE__MAX_DYING; i++) {
        redisAsyncContext *ac = c->dying[i];
        if (ac != NULL) {
            c->dying[i] = NULL;
            /* Runs every pending callback with a NULL reply, then frees. */
            redisAsyncFree(ac);
        }
    }
    maybe_finish_close(c->store);
}

/* Our own decision to drop the live context (timeout, error reply, close).
 * It may be called from inside a hiredis callback, so the free is deferred
 * to kill_timer; meanwhile the generation moved on, so any reply still read
 * from the old context counts as a failure. */
static void
conn_drop(struct tc_store__conn *c, const char *reason)
{
    size_t i;

    if (c->ac == NULL) {
        return;
    }
    for (i = 0; i < TC_STORE__MAX_DYING && c->dying[i] != NULL; i++) {
    }
    /* At most one context dies per generation and kill_timer runs on the
     * next loop turn, long before the first reconnect (100 ms): the slots
     * cannot all be taken. */
    if (i == TC_STORE__MAX_DYING) {
        abort();
    }
    c->dying[i] = c->ac;
    uv_timer_start(&c->kill_timer, on_kill, 0, 0);
    conn_lost(c, reason);
}

void
tc_store__conn_drop(struct tc_store__conn *c, const char *reason)
{
    conn_drop(c, reason);
}

static void
forget_dying(struct tc_store__conn *c, const redisAsyncContext *ac)
{
    for (size_t i = 0; i < TC_STORE__MAX_DYING; i++) {
        if (c->dying[i] == ac) {
            c->dying[i] = NULL;
        }
    }
}

static void
on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct tc_store__req *req = privdata;
    struct tc_store__conn *c = req->conn;
    const redisReply *reply = r;

    req->registered = false;
    if (req->done) {
        goto release;
    }
    if (reply == NULL) {
        /* hiredis frees the context: after our drop (the generation moved
         * on), or on its own after a connection error. */
        if (ac == c->ac) {
            tc_metrics_inc(TC_M_REDIS_ERRORS);
            conn_lost(c, ac->errstr != NULL && ac->err != 0 ? ac->errstr : "disconnected");
        }
        req_finish(req, TC_EIO, NULL);
        goto release;
    }
    if (req->gen != c->gen) {
        req_finish(req, TC_EIO, NULL);
        goto release;
    }
    c->store->last_reply_ms = tc_now_ms();
    if (reply->type == REDIS_REPLY_ERROR) {
        if (req->script >= 0 && !req->retried && strncmp(reply->str, "NOSCRIPT", 8) == 0) {
            /* The script cache was flushed (or Redis restarted): send the
             * full text once; Redis caches it again. */
            req->retried = true;
            req->argv[0] = "EVAL";
            req->argvlen[0] = 4;
            req->argv[1] = tc_store__script_text[req->script];
            req->argvlen[1] = strlen(req->argv[1]);
            if (redisAsyncCommandArgv(ac, on_reply, req, req->argc, req->argv, req->argvlen) ==
                REDIS_OK) {
                req->registered = true;
                tc_info("store", "script not cached, sent EVAL", TC_S("conn", c->name));
                return;
            }
        }
        tc_metrics_inc(TC_M_REDIS_ERRORS);
        tc_err("store", "redis error reply", TC_S("conn", c->name), TC_S("error", reply->str));
        conn_drop(c, "error reply");
        req_finish(req, TC_EIO, NULL);
        goto release;
    }
    req_finish(req, 0, reply);
release:
    req_release(req);
}

static void
on_timeout(uv_timer_t *t)
{
    struct tc_store__req *req = t->data;
    struct tc_store__conn *c = req->conn;

    if (req->done) {
        return;
    }
    if (req->gen == c->gen && c->ac != NULL) {
        /* libuv runs due timers before it polls: after a long turn of the
         * loop (a big fan-out), the reply may be waiting in the socket
         * while its timer fires first. Read it before calling it lost; a
         * socket with nothing to read just answers EAGAIN. The request
         * stays allocated until its timer handle closes. */
        redisAsyncHandleRead(c->ac);
        if (req->done) {
            return;
        }
    }
    tc_metrics_inc(TC_M_REDIS_TIMEOUTS);
    if (req->gen == c->gen) {
        conn_drop(c, "command timed out");
    }
    req_finish(req, TC_ETIMEDOUT, NULL);
    /* hiredis still holds the request: freeing the dropped context runs its
     * callback, which releases it. */
    if (!req->registered) {
        req_release(req);
    }
}

struct tc_store__req *
tc_store__req_new(struct tc_store__conn *c, int script, tc_store__done_fn done_fn)
{
    struct tc_store__req *req = tc_xcalloc(1, sizeof(*req));

    req->conn = c;
    req->script = script;
    req->done_fn = done_fn;
    req->start_ms = tc_now_ms();
    uv_timer_init(c->store->loop, &req->timer);
    req->timer.data = req;
    c->store->nreqs++;
    c->inflight++;
    return req;
}

/* Keeps a copy of a script request's arguments, so that a NOSCRIPT reply can
 * be answered with EVAL after the caller's buffers are gone. */
static void
req_copy_args(struct tc_store__req *req, int argc, const char **argv, const size_t *argvlen)
{
    size_t total = 0;
    char *p;

    req->argc = argc + 2;
    req->argv = tc_xcalloc((size_t)req->argc, sizeof(*req->argv));
    req->argvlen = tc_xcalloc((size_t)req->argc, sizeof(*req->argvlen));
    for (int i = 0; i < argc; i++) {
        total += argvlen[i] + 1;
    }
    p = req->buf = tc_xmalloc(total + 1);
    req->argv[0] = "EVALSHA";
    req->argvlen[0] = 7;
    req->argv[1] = req->conn->store->sha[req->script];
    req->argvlen[1] = strlen(req->argv[1]);
    for (int i = 0; i < argc; i++) {
        memcpy(p, argv[i], argvlen[i]);
        p[argvlen[i]] = '\0';
        req->argv[i + 2] = p;
        req->argvlen[i + 2] = argvlen[i];
        p += argvlen[i] + 1;
    }
}

void
tc_store__submit(struct tc_store__req *req, int argc, const char **argv, const size_t *argvlen,
                 uint64_t timeout_ms)
{
    struct tc_store__conn *c = req->conn;
    int rc;

    req->gen = c->gen;
    if (c->ac == NULL || c->store->closing) {
        goto fail;
    }
    if (req->script >= 0) {
        req_copy_args(req, argc, argv, argvlen);
        rc = redisAsyncCommandArgv(c->ac, on_reply, req, req->argc, req->argv, req->argvlen);
    } else {
        rc = redisAsyncCommandArgv(c->ac, on_reply, req, argc, argv, argvlen);
    }
    if (rc != REDIS_OK) {
        goto fail;
    }
    req->registered = true;
    req->sent = true;
    uv_timer_start(&req->timer, on_timeout, timeout_ms, 0);
    return;
fail:
    req_finish(req, TC_EIO, NULL);
    req_release(req);
}

/* ---- connections ---- */

static void
on_retry(uv_timer_t *t)
{
    struct tc_store__conn *c = t->data;

    tc_metrics_inc(TC_M_REDIS_RECONNECTS);
    conn_connect(c);
}

static void
schedule_retry(struct tc_store__conn *c)
{
    if (c->store->closing) {
        return;
    }
    uv_timer_start(&c->retry_timer, on_retry, c->backoff_ms, 0);
    c->backoff_ms = c->backoff_ms * 2 > TC_STORE__BACKOFF1 ? TC_STORE__BACKOFF1 : c->backoff_ms * 2;
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
    struct tc_store__conn *c = ac->data;

    if (status == REDIS_OK) {
        return;
    }
    /* hiredis frees the context after this returns. */
    forget_dying(c, ac);
    if (ac == c->ac) {
        tc_metrics_inc(TC_M_REDIS_ERRORS);
        conn_lost(c, ac->errstr != NULL ? ac->errstr : "connect failed");
    }
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
    struct tc_store__conn *c = ac->data;

    TC_UNUSED(status);
    /* hiredis frees the context after this returns. */
    forget_dying(c, ac);
    if (ac == c->ac) {
        tc_metrics_inc(TC_M_REDIS_ERRORS);
        conn_lost(c, ac->err != 0 && ac->errstr != NULL ? ac->errstr : "disconnected");
    }
}

static void
setup_done(struct tc_store__req *req, int status, const redisReply *reply)
{
    struct tc_store__conn *c = req->conn;
    struct tc_store *s = c->store;

    if (status != 0) {
        return; /* the connection is already down and retrying */
    }
    if (req->aux >= 0) {
        if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
            tc_err("store", "unexpected SCRIPT LOAD reply", TC_S("conn", c->name));
            conn_drop(c, "bad SCRIPT LOAD reply");
            return;
        }
        memcpy(s->sha[req->aux], reply->str, 41);
    }
    if (--c->setup_pending == 0 && req->gen == c->gen) {
        c->up = true;
        c->backoff_ms = TC_STORE__BACKOFF0;
        tc_info("store", "redis connection ready", TC_S("conn", c->name));
        c->on_up(c);
    }
}

static void
conn_setup(struct tc_store__conn *c)
{
    struct tc_store *s = c->store;
    char db[16];
    const char *argv[3];
    size_t argvlen[3];
    struct tc_store__req *req;

    snprintf(db, sizeof(db), "%d", s->cfg->redis_db);
    c->setup_pending = 1;
    for (int i = 0; i < TC_STORE__NSCRIPTS; i++) {
        c->setup_pending += (c->scripts >> i) & 1;
    }
    req = tc_store__req_new(c, -1, setup_done);
    req->aux = -1;
    argv[0] = "SELECT";
    argv[1] = db;
    argvlen[0] = 6;
    argvlen[1] = strlen(db);
    tc_store__submit(req, 2, argv, argvlen, s->cfg->redis_timeout_ms);
    for (int i = 0; i < TC_STORE__NSCRIPTS; i++) {
        if (((c->scripts >> i) & 1) == 0) {
            continue;
        }
        req = tc_store__req_new(c, -1, setup_done);
        req->aux = i;
        argv[0] = "SCRIPT";
        argv[1] = "LOAD";
        argv[2] = tc_store__script_text[i];
        argvlen[0] = 6;
        argvlen[1] = 4;
        argvlen[2] = strlen(argv[2]);
        tc_store__submit(req, 3, argv, argvlen, s->cfg->redis_timeout_ms);
    }
}

static void
conn_connect(struct tc_store__conn *c)
{
    struct tc_store *s = c->store;
    redisAsyncContext *ac;

    if (s->closing || c->ac != NULL) {
        return;
    }
    ac = redisAsyncConnect(s->cfg->redis_host, s->cfg->redis_port);
    if (ac == NULL) {
        abort(); /* hiredis only returns NULL when out of memory */
    }
    if (ac->err != 0 || tc_store__attach(ac, s->loop) != 0) {
        tc_warn("store", "redis connect failed", TC_S("conn", c->name), TC_S("error", ac->errstr),
                TC_U("retry_ms", c->backoff_ms));
        tc_metrics_inc(TC_M_REDIS_ERRORS);
        redisAsyncFree(ac);
        schedule_retry(c);
        return;
    }
    ac->data = c;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    /* hiredis buffers these until the socket connects; each has its timer,
     * which also bounds a connect that hangs (a refused one fails at once:
     * adapter.c passes the poll error on). */
    conn_setup(c);
}

static void
conn_init(struct tc_store *s, struct tc_store__conn *c, const char *name, unsigned scripts,
          void (*on_up)(struct tc_store__conn *c))
{
    c->store = s;
    c->name = name;
    c->scripts = scripts;
    c->on_up = on_up;
    c->backoff_ms = TC_STORE__BACKOFF0;
    uv_timer_init(s->loop, &c->retry_timer);
    uv_timer_init(s->loop, &c->kill_timer);
    c->retry_timer.data = c;
    c->kill_timer.data = c;
}

static void
cmd_up(struct tc_store__conn *c)
{
    struct tc_store *s = c->store;

    tc_metrics_gauge_set(TC_G_REDIS_CONNECTED, 1);
    if (s->ready_cb != NULL) {
        s->ready_cb(s->ready_arg, true);
    }
}

struct tc_store *
tc_store_new(uv_loop_t *loop, const struct tc_config *cfg, tc_store_ready_cb ready_cb, void *arg)
{
    struct tc_store *s = tc_xcalloc(1, sizeof(*s));

    s->loop = loop;
    s->cfg = cfg;
    s->ready_cb = ready_cb;
    s->ready_arg = arg;
    /* The command connection loads every script but the follower's. */
    conn_init(s, &s->cmd, "command", ((1u << TC_STORE__NSCRIPTS) - 1) & ~(1u << TC_STORE__LOAD),
              cmd_up);
    conn_init(s, &s->follow, "follow", 1u << TC_STORE__LOAD, tc_store__follow_up);
    return s;
}

int
tc_store_start(struct tc_store *s)
{
    if (s->started || s->closing) {
        return 0;
    }
    s->started = true;
    conn_connect(&s->cmd);
    conn_connect(&s->follow);
    return 0;
}

static void
handle_closed(uv_handle_t *h)
{
    struct tc_store *s = h->data;

    if (--s->open_handles > 0) {
        return;
    }
    void (*cb)(void *) = s->close_cb;
    void *arg = s->close_arg;
    free(s);
    if (cb != NULL) {
        cb(arg);
    }
}

/* Closes the store's own handles once every request is freed and every
 * dropped context is gone. */
static void
maybe_finish_close(struct tc_store *s)
{
    struct tc_store__conn *conns[2] = {&s->cmd, &s->follow};
    uv_timer_t *timers[4] = {&s->cmd.retry_timer, &s->cmd.kill_timer, &s->follow.retry_timer,
                             &s->follow.kill_timer};

    if (!s->closing || s->handles_closing || s->nreqs > 0) {
        return;
    }
    for (size_t i = 0; i < TC_ARRAY_SIZE(conns); i++) {
        for (size_t k = 0; k < TC_STORE__MAX_DYING; k++) {
            if (conns[i]->dying[k] != NULL) {
                return;
            }
        }
    }
    s->handles_closing = true;
    s->open_handles = (int)TC_ARRAY_SIZE(timers);
    for (size_t i = 0; i < TC_ARRAY_SIZE(timers); i++) {
        timers[i]->data = s;
        uv_timer_stop(timers[i]);
        uv_close((uv_handle_t *)timers[i], handle_closed);
    }
}

void
tc_store_close(struct tc_store *s, void (*close_cb)(void *arg), void *arg)
{
    if (s == NULL || s->closing) {
        return;
    }
    s->closing = true;
    s->close_cb = close_cb;
    s->close_arg = arg;
    tc_metrics_gauge_set(TC_G_REDIS_CONNECTED, 0);
    uv_timer_stop(&s->cmd.retry_timer);
    uv_timer_stop(&s->follow.retry_timer);
    conn_drop(&s->cmd, "closing");
    conn_drop(&s->follow, "closing");
    maybe_finish_close(s);
}

bool
tc_store_ready(const struct tc_store *s)
{
    return s->cmd.up && !s->closing;
}

bool
tc_store_reachable(const struct tc_store *s)
{
    return s->last_reply_ms != 0 &&
           tc_now_ms() - s->last_reply_ms <= REACHABLE_MS + s->cfg->redis_timeout_ms;
}

/* ---- commands ---- */

/* Checks that a command may go out now. @returns 0, TC_EIO (not ready) or
 * TC_EAGAIN (TC_STORE__MAX_INFLIGHT reached). */
static int
cmd_admit(const struct tc_store *s)
{
    if (s->closing || !s->cmd.up) {
        return TC_EIO;
    }
    if (s->cmd.inflight >= TC_STORE__MAX_INFLIGHT) {
        return TC_EAGAIN;
    }
    return 0;
}

int
tc_store__cmd_admit(const struct tc_store *s)
{
    return cmd_admit(s);
}

static void
apply_done(struct tc_store__req *req, int status, const redisReply *reply)
{
    struct tc_store_result res;

    if (status == 0 && tc_store__parse_apply(reply, &res) != 0) {
        tc_metrics_inc(TC_M_REDIS_ERRORS);
        tc_err("store", "unexpected reply from the per-event script");
        conn_drop(req->conn, "bad script reply");
        status = TC_EIO;
    }
    if (status != 0) {
        req->cb.apply(req->arg, status, NULL);
        return;
    }
    tc_metrics_observe(TC_H_STORE_SECONDS, (double)(tc_now_ms() - req->start_ms) / 1000.0);
    req->cb.apply(req->arg, 0, &res);
}

void
tc_store_apply(struct tc_store *s, const struct tc_event *ev, tc_store_apply_cb cb, void *arg)
{
    struct tc_store__argbuf *b = NULL;
    const char **argv;
    size_t *argvlen;
    struct tc_store__req *req;
    int argc;
    int rc = cmd_admit(s);

    if (rc != 0) {
        cb(arg, rc, NULL);
        return;
    }
    argc = tc_store__apply_argv(s, ev, &b, &argv, &argvlen);
    req = tc_store__req_new(&s->cmd, TC_STORE__APPLY, apply_done);
    req->cb.apply = cb;
    req->arg = arg;
    tc_store__submit(req, argc, argv, argvlen, s->cfg->redis_timeout_ms);
    tc_store__argbuf_free(b);
}

static void
get_done(struct tc_store__req *req, int status, const redisReply *reply)
{
    if (status != 0) {
        req->cb.incident(req->arg, status, NULL, 0);
    } else if (reply->type == REDIS_REPLY_NIL) {
        req->cb.incident(req->arg, TC_ENOENT, NULL, 0);
    } else if (reply->type == REDIS_REPLY_STRING) {
        req->cb.incident(req->arg, 0, reply->str, reply->len);
    } else {
        req->cb.incident(req->arg, TC_EIO, NULL, 0);
    }
}

void
tc_store_get_incident(struct tc_store *s, const char *incident_id, tc_store_incident_cb cb,
                      void *arg)
{
    char *inc = NULL;
    char *log = NULL;
    const char *argv[3];
    size_t argvlen[3];
    struct tc_store__req *req;
    int rc = cmd_admit(s);

    if (rc != 0) {
        cb(arg, rc, NULL, 0);
        goto out;
    }
    /* Incident ids are at most 128 characters (DESIGN §2): a longer one
     * names nothing, and is not worth a round trip. */
    if (strlen(incident_id) > 128) {
        cb(arg, TC_ENOENT, NULL, 0);
        goto out;
    }
    inc = tc_xasprintf("%sinc:%s", s->cfg->redis_prefix, incident_id);
    log = tc_xasprintf("%sinc:%s:log", s->cfg->redis_prefix, incident_id);
    argv[0] = "2";
    argv[1] = inc;
    argv[2] = log;
    for (int i = 0; i < 3; i++) {
        argvlen[i] = strlen(argv[i]);
    }
    req = tc_store__req_new(&s->cmd, TC_STORE__GET, get_done);
    req->cb.incident = cb;
    req->arg = arg;
    tc_store__submit(req, 3, argv, argvlen, s->cfg->redis_timeout_ms);
out:
    free(inc);
    free(log);
}

void
tc_store_ended(struct tc_store *s, unsigned count, tc_store_json_cb cb, void *arg)
{
    int rc = cmd_admit(s);
    if (rc != 0) {
        cb(arg, rc, NULL, 0);
        return;
    }
    char *key = tc_xasprintf("%sended", s->cfg->redis_prefix);
    char *prefix = tc_xasprintf("%sinc:", s->cfg->redis_prefix);
    char n[16];
    snprintf(n, sizeof(n), "%u", count > TC_STORE_ENDED_KEPT ? TC_STORE_ENDED_KEPT : count);
    struct tc_store__req *req = tc_store__cmd_req(s, TC_STORE__ENDED, tc_store__json_done, 0, arg);
    req->cb.json = cb;
    tc_store__submit_strs(s, req, 4, (const char *[]){"1", key, n, prefix});
    free(key);
    free(prefix);
}
