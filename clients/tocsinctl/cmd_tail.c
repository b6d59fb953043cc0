/* tocsin — SPDX-License-Identifier: MIT
 *
 * `tocsinctl tail`: live updates over the WebSocket protocol (DESIGN §4),
 * one line each on stdout (or the server's JSON messages with --json). It
 * remembers the newest (epoch, seq) it saw and, after a disconnect,
 * reconnects with since/epoch after an exponential backoff with full
 * jitter, so it misses nothing and a server restart is no reconnect storm.
 * The first connection failing is exit 3; a refusal (4xx, close 1008) is
 * exit 1; SIGINT/SIGTERM end it with exit 0. Status notes go to stderr.
 */
#include "ctl.h"
#include "flags.h"
#include "http.h"
#include "print.h"
#include "ws.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROTOCOL "tocsin.v1"
/* Backoff between reconnects: full jitter over min(cap, base * 2^attempt). */
#define BACKOFF_BASE_MS 500
#define BACKOFF_CAP_MS  30000
/* Silence tolerated past the server's heartbeat interval before the
 * connection is taken for dead. */
#define HEARTBEAT_GRACE_MS 10000

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
    TC_UNUSED(sig);
    stop = 1;
}

struct tail {
    struct tc_ctl *ctl;
    struct tc_ctl_ws_target target;
    char *host;   /* owned */
    char *port;   /* owned */
    char *prefix; /* owned: the URL's path without a trailing '/' */
    char *qs;     /* owned: the filter as a query string */
    char epoch[128];
    uint64_t seq;
    bool have_seq;       /* seq and epoch name a resume point */
    unsigned connected;  /* welcomes received */
    uint64_t silence_ms; /* the longest wait for a message */
    char error[300];     /* the last error message of the server */
};

/* Reads host, port, TLS and path prefix from the base URL. */
static int
parse_url(struct tail *t)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
    int rc = TC_CTL_OK;
    if (curl_url_set(u, CURLUPART_URL, t->ctl->url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
        rc = tc_ctl_fail(t->ctl, TC_CTL_USAGE, "--url: '%s' is not a URL", t->ctl->url);
        goto out;
    }
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        t->host = tc_xstrndup(host + 1, hl - 2); /* IPv6, without brackets */
    } else {
        t->host = tc_xstrdup(host);
    }
    t->port = tc_xstrdup(port);
    size_t pl = strlen(path);
    while (pl > 0 && path[pl - 1] == '/') {
        pl--;
    }
    t->prefix = tc_xstrndup(path, pl);
    t->target.host = t->host;
    t->target.port = t->port;
    t->target.tls = strcmp(scheme, "https") == 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_url_cleanup(u);
    return rc;
}

/* A status line on stderr: "tocsinctl: tail: ...". */
static void note(const struct tail *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
note(const struct tail *t, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "tocsinctl: %s: ", t->ctl->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Remembers the message's epoch and seq as the resume point. */
static void
track(struct tail *t, const json_t *msg)
{
    const char *epoch = json_string_value(json_object_get(msg, "epoch"));
    const json_t *seq = json_object_get(msg, "seq");
    if (epoch != NULL && json_is_integer(seq) && json_integer_value(seq) >= 0 &&
        strlen(epoch) < sizeof(t->epoch)) {
        snprintf(t->epoch, sizeof(t->epoch), "%s", epoch);
        t->seq = (uint64_t)json_integer_value(seq);
        t->have_seq = true;
    }
}

static void
on_snapshot(struct tail *t, const json_t *msg)
{
    bool reset = json_is_true(json_object_get(msg, "reset"));
    const json_t *incidents = json_object_get(msg, "incidents");
    track(t, msg);
    if (reset) {
        note(t, "could not resume exactly (updates may have been missed); %zu active incident(s)",
             json_array_size(incidents));
    } else if (!t->ctl->o->snapshot) {
        return;
    }
    if (t->ctl->json) {
        tc_ctl_print_json(msg);
        return;
    }
    for (size_t i = 0; i < json_array_size(incidents); i++) {
        tc_ctl_print_incident_line(stdout, json_array_get(incidents, i), true);
    }
    fflush(stdout);
}

/* Acts on one server message. */
static void
on_message(struct tail *t, const char *text, size_t len)
{
    json_t *msg = json_loadb(text, len, 0, NULL);
    const char *type = json_string_value(json_object_get(msg, "type"));
    if (type == NULL) {
        note(t, "ignored a message that is not a tocsin message");
    } else if (strcmp(type, "welcome") == 0) {
        json_int_t hb = json_integer_value(json_object_get(msg, "heartbeat_s"));
        t->silence_ms = (uint64_t)(hb > 0 && hb < 86400 ? hb : 60) * 1000 + HEARTBEAT_GRACE_MS;
        char epoch[160];
        const char *what = t->connected++ > 0 ? "reconnected" : "connected";
        note(t, "%s to %s (epoch %s, seq %lld)", what, t->ctl->url,
             tc_ctl_print_clean(tc_ctl_print_str(msg, "epoch", "?"), epoch, sizeof(epoch), 128),
             (long long)json_integer_value(json_object_get(msg, "seq")));
    } else if (strcmp(type, "update") == 0) {
        track(t, msg);
        if (t->ctl->json) {
            tc_ctl_print_json(msg);
        } else {
            tc_ctl_print_incident_line(stdout, json_object_get(msg, "incident"), true);
            fflush(stdout);
        }
    } else if (strcmp(type, "snapshot") == 0) {
        on_snapshot(t, msg);
    } else if (strcmp(type, "heartbeat") == 0) {
        /* Everything up to its seq was queued before it: a safe resume point
         * that keeps a quiet filter's resume inside the replay window. */
        track(t, msg);
    } else if (strcmp(type, "error") == 0) {
        char clean[300];
        char *e = tc_xasprintf("%s: %s", tc_ctl_print_str(msg, "code", "?"),
                               tc_ctl_print_str(msg, "message", ""));
        snprintf(t->error, sizeof(t->error), "%s",
                 tc_ctl_print_clean(e, clean, sizeof(clean), 280));
        note(t, "server error %s", t->error);
        free(e);
    }
    json_decref(msg);
}

/* The path of the next connection: the filter, then the resume point. */
static char *
next_path(const struct tail *t)
{
    char *epoch = tc_ctl_http_escape(t->epoch);
    char *path = tc_xasprintf("%s/v1/ws%s%s", t->prefix, t->qs[0] || t->have_seq ? "?" : "", t->qs);
    if (t->have_seq) {
        char *p = tc_xasprintf("%s%ssince=%llu&epoch=%s", path, t->qs[0] ? "&" : "",
                               (unsigned long long)t->seq, epoch);
        free(path);
        path = p;
    }
    free(epoch);
    return path;
}

/* Reads until the connection ends. @returns TC_CTL_OK when stopped by a
 * signal, TC_CTL_REFUSED when the server refused us (1008 and friends), or
 * TC_EAGAIN to reconnect; why holds the reason. */
static int
session(struct tail *t, struct tc_ctl_ws *ws, char *why, size_t whylen)
{
    struct tc_error err;
    t->silence_ms = t->ctl->timeout_ms; /* until the welcome names the heartbeat */
    t->error[0] = '\0';
    for (;;) {
        const char *text;
        size_t len;
        int rc = tc_ctl_ws_read(ws, t->silence_ms, &stop, &text, &len, &err);
        if (rc == TC_OK) {
            on_message(t, text, len);
            continue;
        }
        if (rc == TC_EAGAIN) {
            tc_ctl_ws_send_close(ws, 1000);
            return TC_CTL_OK;
        }
        int code = tc_ctl_ws_close_code(ws);
        if (code == 1008 || code == 1003 || code == 1007) {
            /* A policy refusal: the same request would be refused again. */
            return tc_ctl_fail(t->ctl, TC_CTL_REFUSED, "%s%s%s", err.text, t->error[0] ? ": " : "",
                               t->error);
        }
        if (rc == TC_ETIMEDOUT) {
            snprintf(why, whylen, "no message for %llu s",
                     (unsigned long long)(t->silence_ms / 1000));
        } else {
            snprintf(why, whylen, "%s", err.text);
        }
        return TC_EAGAIN;
    }
}

/* Sleeps a full-jitter backoff for this attempt. @returns false when a
 * signal asked us to stop meanwhile. */
static bool
backoff(const struct tail *t, unsigned attempt, const char *why)
{
    uint32_t rnd = 0;
    uint64_t cap = BACKOFF_BASE_MS << (attempt < 6 ? attempt : 6);
    cap = cap < BACKOFF_CAP_MS ? cap : BACKOFF_CAP_MS;
    tc_random_bytes(&rnd, sizeof(rnd));
    uint64_t delay = rnd % (cap + 1);
    note(t, "%s; reconnecting in %.1f s", why, (double)delay / 1000.0);
    uint64_t until = tc_now_ms() + delay;
    while (!stop && tc_now_ms() < until) {
        struct timespec ts = {.tv_nsec = 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return !stop;
}

/* Checks --since/--epoch into t. */
static int
resume_flags(struct tail *t)
{
    const struct tc_ctl_opts *o = t->ctl->o;
    long long since;
    int rc;
    if (o->since == NULL && o->epoch == NULL) {
        return TC_CTL_OK;
    }
    if (o->since == NULL || o->epoch == NULL) {
        return tc_ctl_fail(t->ctl, TC_CTL_USAGE,
                           "%s: needs %s too (both are in every message of tail --json)",
                           o->since ? "--since" : "--epoch", o->since ? "--epoch" : "--since");
    }
    if ((rc = tc_ctl_flags_int(t->ctl, "since", o->since, 0, INT64_MAX, &since)) != TC_CTL_OK) {
        return rc;
    }
    if (o->epoch[0] == '\0' || strlen(o->epoch) >= sizeof(t->epoch)) {
        return tc_ctl_fail(t->ctl, TC_CTL_USAGE, "--epoch: must be 1-%zu characters",
                           sizeof(t->epoch) - 1);
    }
    snprintf(t->epoch, sizeof(t->epoch), "%s", o->epoch);
    t->seq = (uint64_t)since;
    t->have_seq = true;
    return TC_CTL_OK;
}

static int
run(struct tail *t)
{
    char why[300];
    unsigned attempt = 0;
    for (;;) {
        struct tc_ctl_ws *ws = NULL;
        struct tc_error err;
        int status = 0;
        char *path = next_path(t);
        t->target.path = path;
        int rc =
            tc_ctl_ws_connect(&t->target, PROTOCOL, t->ctl->timeout_ms, &stop, &ws, &status, &err);
        free(path);
        if (rc == TC_EAGAIN) {
            return TC_CTL_OK;
        }
        if (rc == TC_EINVAL && status >= 400 && status < 500) {
            return tc_ctl_fail(t->ctl, TC_CTL_REFUSED, "%s", err.text);
        }
        if (rc != TC_OK && t->connected == 0) {
            return tc_ctl_fail(t->ctl, TC_CTL_UNREACHABLE, "cannot reach %s: %s", t->ctl->url,
                               err.text);
        }
        if (rc == TC_OK) {
            unsigned before = t->connected;
            rc = session(t, ws, why, sizeof(why));
            tc_ctl_ws_free(ws);
            if (rc != TC_EAGAIN) {
                return rc;
            }
            if (t->connected > before) {
                attempt = 0; /* a connection that got as far as the welcome resets the backoff */
            }
        } else {
            snprintf(why, sizeof(why), "%s", err.text);
        }
        if (!backoff(t, attempt++, why)) {
            return TC_CTL_OK;
        }
    }
}

int
tc_ctl_cmd_tail(struct tc_ctl *ctl)
{
    struct tail t = {.ctl = ctl};
    struct sigaction sa = {.sa_handler = on_signal};
    int rc = resume_flags(&t);
    if (rc == TC_CTL_OK) {
        rc = tc_ctl_flags_filter_query(ctl, &t.qs);
    }
    if (rc == TC_CTL_OK) {
        rc = parse_url(&t);
    }
    if (rc == TC_CTL_OK) {
        /* No SA_RESTART: a signal cuts a wait short, and every wait looks at
         * the flag at least every 200 ms. */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        rc = run(&t);
    }
    free(t.host);
    free(t.port);
    free(t.prefix);
    free(t.qs);
    return rc;
}
