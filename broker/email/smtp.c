/* tocsin — SPDX-License-Identifier: MIT
 *
 * SMTP sending (see smtp.h): one send's easy handle, its read callback over
 * the message and the outcome class taken from curl's result and the
 * server's last reply code; and the sending thread, a loop of its own that
 * runs those sends for a home loop, because libcurl blocks in parts of SMTP.
 * No retry policy and no message building here.
 */
#include "email/smtp.h"

#include "email/address.h"

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tc_smtp_send {
    struct tc_curl_uv *curl;
    CURL *easy;
    struct curl_slist *rcpt;
    char *msg;
    size_t len, off;
    tc_smtp_done_fn cb;
    void *arg;
    uint64_t started_ms;
    const atomic_bool *stop; /* the sending thread's, or NULL */
    char error[CURL_ERROR_SIZE];
};

const char *
tc_smtp_class_name(enum tc_smtp_class cls)
{
    switch (cls) {
    case TC_SMTP_SENT:
        return "sent";
    case TC_SMTP_TRANSIENT:
        return "transient";
    case TC_SMTP_PERMANENT:
        return "permanent";
    }
    return "unknown";
}

static void
send_free(struct tc_smtp_send *s)
{
    curl_slist_free_all(s->rcpt);
    if (s->easy != NULL) {
        curl_easy_cleanup(s->easy);
    }
    free(s->msg);
    free(s);
}

/* curl pulls the message from here; it does the SMTP dot-stuffing itself. */
static size_t
on_read(char *buf, size_t size, size_t nmemb, void *userp)
{
    struct tc_smtp_send *s = userp;
    size_t n = size * nmemb;

    if (n > s->len - s->off) {
        n = s->len - s->off;
    }
    memcpy(buf, s->msg + s->off, n);
    s->off += n;
    return n;
}

/* curl rewinds when it resends on a fresh connection after a pooled one
 * turned out dead. */
static int
on_seek(void *userp, curl_off_t offset, int origin)
{
    struct tc_smtp_send *s = userp;

    if (origin != SEEK_SET || offset < 0 || (curl_off_t)s->len < offset) {
        return CURL_SEEKFUNC_CANTSEEK;
    }
    s->off = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

/* curl calls this about once a second, also while it blocks for the reply
 * to the end of DATA or to QUIT (its pingpong loop checks the callback
 * between waits of at most 1 s). Once the sending thread is stopping, it
 * ends the transfer (CURLE_ABORTED_BY_CALLBACK) and drops the connection:
 * FORBID_REUSE makes curl close it in this transfer's DONE phase, where
 * this callback and a 1 s response timeout bound the QUIT, instead of
 * pooling it for curl_multi_cleanup, whose closure handle would wait for
 * QUIT's reply (queued behind the reply to DATA) up to 120 s with no
 * callback to stop it. Both options are read after this returns. */
static int
on_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    struct tc_smtp_send *s = userp;

    TC_UNUSED(dltotal);
    TC_UNUSED(dlnow);
    TC_UNUSED(ultotal);
    TC_UNUSED(ulnow);
    if (s->stop == NULL || !atomic_load(s->stop)) {
        return 0;
    }
    curl_easy_setopt(s->easy, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(s->easy, CURLOPT_SERVER_RESPONSE_TIMEOUT, 1L);
    return 1;
}

/* The reply codes of a refused AUTH (RFC 4954): our credentials or the
 * server's setup, not the recipient, so the mail is worth retrying while an
 * operator fixes smtp.username / smtp.password, rather than failed for good. */
static bool
is_auth_code(long code)
{
    return code == 530 || code == 534 || code == 535 || code == 538;
}

static enum tc_smtp_class
classify(CURLcode cc, long code)
{
    if (cc == CURLE_OK) {
        return TC_SMTP_SENT;
    }
    if (code >= 500 && code <= 599 && cc != CURLE_LOGIN_DENIED && !is_auth_code(code)) {
        return TC_SMTP_PERMANENT;
    }
    /* 4xx, and every failure without a reply: no connection, timeout, TLS. */
    return TC_SMTP_TRANSIENT;
}

static void
on_done(void *arg, CURL *easy, CURLcode cc)
{
    struct tc_smtp_send *s = arg;
    long code = 0;

    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    struct tc_smtp_result r = {
        .cls = classify(cc, code),
        .code = code,
        .error = cc == CURLE_OK        ? NULL
                 : s->error[0] != '\0' ? s->error
                                       : curl_easy_strerror(cc),
        .duration_ms = tc_now_ms() - s->started_ms,
    };
    s->cb(s->arg, &r);
    send_free(s);
}

/* What every send needs, checked before anything is queued or built. */
static int
check_send(const struct tc_config *cfg, const char *to, struct tc_error *err)
{
    struct tc_error why;

    if (cfg->smtp_url == NULL || cfg->smtp_url[0] == '\0') {
        return tc_error_set(err, TC_EINVAL, "smtp.url is empty: email is disabled");
    }
    if (tc_email_address_check(cfg->smtp_from, &why) != TC_OK) {
        return tc_error_set(err, TC_EINVAL, "smtp.from: %s", why.text);
    }
    if (tc_email_address_check(to, &why) != TC_OK) {
        return tc_error_set(err, TC_EINVAL, "recipient: %s", why.text);
    }
    return TC_OK;
}

/* tc_smtp_send, whose transfer ends early once *stop is true (NULL: never). */
static int
start_send(struct tc_curl_uv *curl, const struct tc_config *cfg, const char *to, char *msg,
           size_t len, tc_smtp_done_fn cb, void *arg, const atomic_bool *stop,
           struct tc_smtp_send **out, struct tc_error *err)
{
    char *path = NULL;
    int rc;

    if (out != NULL) {
        *out = NULL;
    }
    if ((rc = check_send(cfg, to, err)) != TC_OK) {
        goto out;
    }

    struct tc_smtp_send *s = tc_xcalloc(1, sizeof(*s));
    s->curl = curl;
    s->msg = msg;
    msg = NULL;
    s->len = len;
    s->cb = cb;
    s->arg = arg;
    s->started_ms = tc_now_ms();
    s->stop = stop;
    /* Both addresses passed the check: no '<', '>', CR or LF can be in them. */
    path = tc_xasprintf("<%s>", to);
    s->rcpt = curl_slist_append(NULL, path);
    free(path);
    path = tc_xasprintf("<%s>", cfg->smtp_from);
    s->easy = curl_easy_init();
    if (s->easy == NULL || s->rcpt == NULL) {
        /* libcurl ran out of memory: abort, as tc_xmalloc does. */
        fprintf(stderr, "tocsin: out of memory in libcurl\n");
        abort();
    }

    CURL *e = s->easy;
    curl_easy_setopt(e, CURLOPT_URL, cfg->smtp_url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, path); /* curl copies option strings */
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, s->rcpt);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, s);
    curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
    curl_easy_setopt(e, CURLOPT_SEEKDATA, s);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
    if (cfg->smtp_starttls) {
        /* Without it curl would send in the clear to a server that does not
         * offer STARTTLS, or that a man in the middle stripped it from. */
        curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    }
    if (cfg->smtp_ca_file != NULL && cfg->smtp_ca_file[0] != '\0') {
        curl_easy_setopt(e, CURLOPT_CAINFO, cfg->smtp_ca_file);
    }
    if (cfg->smtp_username != NULL && cfg->smtp_username[0] != '\0') {
        curl_easy_setopt(e, CURLOPT_USERNAME, cfg->smtp_username);
        curl_easy_setopt(e, CURLOPT_PASSWORD, cfg->smtp_password);
    }
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)cfg->smtp_timeout_ms);
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* ignore *_proxy variables */
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->error);
    if (stop != NULL) {
        curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(e, CURLOPT_XFERINFODATA, s);
        curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    }
    free(path);
    path = NULL;

    if (out != NULL) {
        *out = s;
    }
    tc_curl_uv_add(curl, e, on_done, s);
out:
    free(msg);
    return rc;
}

int
tc_smtp_send(struct tc_curl_uv *curl, const struct tc_config *cfg, const char *to, char *msg,
             size_t len, tc_smtp_done_fn cb, void *arg, struct tc_smtp_send **out,
             struct tc_error *err)
{
    return start_send(curl, cfg, to, msg, len, cb, arg, NULL, out, err);
}

void
tc_smtp_abandon(struct tc_smtp_send *s)
{
    if (s == NULL) {
        return;
    }
    /* Removing an SMTP transfer runs curl's DONE phase, which would send
     * the end of data and wait, blocking, for the reply up to the transfer's
     * timeout (curl issue #4015): a timeout already over makes it return at
     * once and close the connection. */
    curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, 1L);
    tc_curl_uv_remove(s->curl, s->easy);
    send_free(s);
}

/* ---- the sending thread ---- */

/* One send handed to the thread, and later its result handed back. */
struct job {
    struct job *prev, *next;
    struct tc_smtp_thread *thread;
    char *to, *msg;
    size_t len;
    tc_smtp_done_fn cb;
    void *arg;
    struct tc_smtp_send *send; /* thread side, while in flight */
    struct tc_smtp_result res;
    char error[CURL_ERROR_SIZE];
};

/* A doubly linked list with a sentinel head. */
static void
list_init(struct job *head)
{
    head->prev = head->next = head;
}

static bool
list_empty(const struct job *head)
{
    return head->next == head;
}

static void
list_push(struct job *head, struct job *j)
{
    j->next = head;
    j->prev = head->prev;
    head->prev->next = j;
    head->prev = j;
}

static void
list_unlink(struct job *j)
{
    j->prev->next = j->next;
    j->next->prev = j->prev;
    j->prev = j->next = j;
}

/* Moves every job of from to the end of to. */
static void
list_splice(struct job *to, struct job *from)
{
    while (!list_empty(from)) {
        struct job *j = from->next;
        list_unlink(j);
        list_push(to, j);
    }
}

static void
job_free(struct job *j)
{
    free(j->to);
    free(j->msg);
    free(j);
}

struct tc_smtp_thread {
    const struct tc_config *cfg;
    /* home side */
    uv_loop_t *home;
    uv_async_t home_async; /* results are waiting, or the thread ended */
    bool closing;
    void (*close_cb)(void *arg);
    void *close_arg;
    /* shared, under mu */
    uv_mutex_t mu;
    struct job todo; /* handed to the thread, not started */
    struct job done; /* finished, for the home loop */
    bool stop;       /* the home loop asked the thread to end */
    bool ended;      /* the thread's loop is closed */
    /* stop, readable without mu by on_progress while curl blocks the
     * thread (it cannot run on_wake then). */
    atomic_bool stopping;
    /* thread side */
    uv_thread_t tid;
    uv_loop_t loop;
    uv_async_t wake; /* todo has jobs, or stop is set */
    struct tc_curl_uv *curl;
    struct job inflight;
};

/* Thread side: a send ended; its result goes home. */
static void
on_job_done(void *arg, const struct tc_smtp_result *r)
{
    struct job *j = arg;
    struct tc_smtp_thread *t = j->thread;

    j->send = NULL;
    j->res = *r;
    if (r->error != NULL) {
        snprintf(j->error, sizeof(j->error), "%s", r->error);
        j->res.error = j->error;
    }
    list_unlink(j);
    uv_mutex_lock(&t->mu);
    list_push(&t->done, j);
    uv_mutex_unlock(&t->mu);
    uv_async_send(&t->home_async);
}

/* Thread side: starts what the home loop handed over, or winds down. */
static void
on_wake(uv_async_t *a)
{
    struct tc_smtp_thread *t = a->data;
    struct job todo;
    struct tc_error err;
    bool stop;

    list_init(&todo);
    uv_mutex_lock(&t->mu);
    list_splice(&todo, &t->todo);
    stop = t->stop;
    uv_mutex_unlock(&t->mu);

    while (!list_empty(&todo)) {
        struct job *j = todo.next;
        list_unlink(j);
        if (stop) {
            job_free(j); /* never started */
            continue;
        }
        list_push(&t->inflight, j);
        char *msg = j->msg;
        j->msg = NULL; /* tc_smtp_send takes it */
        if (start_send(t->curl, t->cfg, j->to, msg, j->len, on_job_done, j, &t->stopping, &j->send,
                       &err) != TC_OK) {
            /* Checked before it was queued: only a bug gets here. */
            struct tc_smtp_result r = {.cls = TC_SMTP_TRANSIENT, .error = err.text};
            on_job_done(j, &r);
        }
    }
    if (stop) {
        while (!list_empty(&t->inflight)) {
            struct job *j = t->inflight.next;
            list_unlink(j);
            tc_smtp_abandon(j->send);
            job_free(j);
        }
        /* Closes the pooled connections: curl says QUIT on each and waits
         * for the answer. Sends that were cut short dropped theirs (see
         * on_progress), so only idle ones are left, which answer at once
         * unless the server itself hangs. */
        tc_curl_uv_close(t->curl, NULL, NULL);
        t->curl = NULL;
        uv_close((uv_handle_t *)&t->wake, NULL);
    }
}

static void
thread_main(void *arg)
{
    struct tc_smtp_thread *t = arg;

    uv_run(&t->loop, UV_RUN_DEFAULT); /* until on_wake closed everything */
    uv_loop_close(&t->loop);
    uv_mutex_lock(&t->mu);
    t->ended = true;
    uv_mutex_unlock(&t->mu);
    uv_async_send(&t->home_async);
}

static void
on_home_closed(uv_handle_t *h)
{
    struct tc_smtp_thread *t = h->data;
    void (*cb)(void *) = t->close_cb;
    void *arg = t->close_arg;

    uv_mutex_destroy(&t->mu);
    free(t);
    if (cb != NULL) {
        cb(arg);
    }
}

/* Home side: runs the callbacks of finished sends; after close, frees. */
static void
on_home_async(uv_async_t *a)
{
    struct tc_smtp_thread *t = a->data;
    struct job done;
    bool ended;

    list_init(&done);
    uv_mutex_lock(&t->mu);
    list_splice(&done, &t->done);
    ended = t->ended;
    uv_mutex_unlock(&t->mu);

    while (!list_empty(&done)) {
        struct job *j = done.next;
        list_unlink(j);
        if (!t->closing) {
            j->cb(j->arg, &j->res);
        }
        job_free(j);
    }
    if (t->closing && ended) {
        uv_thread_join(&t->tid);
        uv_close((uv_handle_t *)&t->home_async, on_home_closed);
    }
}

int
tc_smtp_thread_new(uv_loop_t *home, const struct tc_config *cfg, struct tc_smtp_thread **out,
                   struct tc_error *err)
{
    struct tc_smtp_thread *t = tc_xcalloc(1, sizeof(*t));
    int rc;

    *out = NULL;
    t->cfg = cfg;
    t->home = home;
    atomic_init(&t->stopping, false);
    list_init(&t->todo);
    list_init(&t->done);
    list_init(&t->inflight);
    if ((rc = uv_mutex_init(&t->mu)) != 0) {
        free(t);
        return tc_error_set(err, TC_EIO, "email: mutex: %s", uv_strerror(rc));
    }
    /* The thread's loop and handles are set up here, before the thread
     * exists; from its start on, only the thread touches them. */
    if ((rc = uv_loop_init(&t->loop)) != 0) {
        uv_mutex_destroy(&t->mu);
        free(t);
        return tc_error_set(err, TC_EIO, "email: loop: %s", uv_strerror(rc));
    }
    uv_async_init(&t->loop, &t->wake, on_wake);
    t->wake.data = t;
    /* One connection per mail sent at once, each kept open for the next. */
    t->curl =
        tc_curl_uv_new(&t->loop, (long)cfg->smtp_max_connections, (long)cfg->smtp_max_connections);
    uv_async_init(home, &t->home_async, on_home_async);
    t->home_async.data = t;
    if ((rc = uv_thread_create(&t->tid, thread_main, t)) != 0) {
        /* Nothing ran on the thread's loop yet: wind it down right here. */
        t->stop = true;
        on_wake(&t->wake);
        uv_run(&t->loop, UV_RUN_DEFAULT);
        uv_loop_close(&t->loop);
        t->closing = true;
        uv_close((uv_handle_t *)&t->home_async, on_home_closed);
        return tc_error_set(err, TC_EIO, "email: thread: %s", uv_strerror(rc));
    }
    *out = t;
    return TC_OK;
}

int
tc_smtp_thread_send(struct tc_smtp_thread *t, const char *to, char *msg, size_t len,
                    tc_smtp_done_fn cb, void *arg, struct tc_error *err)
{
    int rc;

    if (t->closing) {
        free(msg);
        return tc_error_set(err, TC_ESTATE, "email: the sending thread is closing");
    }
    if ((rc = check_send(t->cfg, to, err)) != TC_OK) {
        free(msg);
        return rc;
    }
    struct job *j = tc_xcalloc(1, sizeof(*j));
    j->thread = t;
    j->to = tc_xstrdup(to);
    j->msg = msg;
    j->len = len;
    j->cb = cb;
    j->arg = arg;
    uv_mutex_lock(&t->mu);
    list_push(&t->todo, j);
    uv_mutex_unlock(&t->mu);
    uv_async_send(&t->wake);
    return TC_OK;
}

void
tc_smtp_thread_close(struct tc_smtp_thread *t, void (*close_cb)(void *arg), void *arg)
{
    t->closing = true;
    t->close_cb = close_cb;
    t->close_arg = arg;
    uv_mutex_lock(&t->mu);
    t->stop = true;
    uv_mutex_unlock(&t->mu);
    atomic_store(&t->stopping, true); /* a send curl blocks in ends within ~1 s */
    uv_async_send(&t->wake);
}
