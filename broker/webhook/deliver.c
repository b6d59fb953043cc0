/* tocsin — SPDX-License-Identifier: MIT
 *
 * The webhook deliverer (see deliver.h): a claim timer, one libcurl easy
 * handle per attempt on the loop's curl driver (net/curl_uv.h; connections
 * are reused from its pool), and the outcome
 * written back to the store. It decides neither order nor leases: the store
 * hands out only the head job of each (endpoint, incident) queue.
 * @loop main.
 */
#include "webhook/deliver.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "net/curl_uv.h"
#include "webhook/guard.h"
#include "net/retry.h"
#include "webhook/sign.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Attempts in flight on one node (config.h: the fd budget counts them). */
#define MAX_INFLIGHT TC_WEBHOOK_MAX_INFLIGHT
/* How often due jobs are looked for when nothing else asks: a job whose
 * retry time came, or one enqueued by an event. A recorded outcome asks at
 * once (its FIFO's next job is due now). */
#define CLAIM_EVERY_MS 100
/* How often the queue depth gauges are sampled. */
#define STATS_EVERY_MS 1000
/* A lease outlives the attempt's timeout by this much, so a slow answer is
 * recorded before another node takes the job. */
#define LEASE_EXTRA_MS 30000

struct attempt {
    struct attempt *prev, *next; /* in flight on wh */
    struct tc_webhook *wh;
    tc_webhook_test_cb test_cb; /* set for a test message: answer it, record nothing */
    void *test_arg;
    CURL *easy;
    struct curl_slist *headers;
    char *job_id, *endpoint_id, *body;
    uint64_t attempts; /* made before this one */
    uint64_t started_ms;
    bool refused; /* the address guard refused the peer */
    char refused_addr[INET6_ADDRSTRLEN];
    char error[CURL_ERROR_SIZE];
};

struct tc_webhook {
    uv_loop_t *loop;
    const struct tc_config *cfg;
    struct tc_store *store;
    struct tc_curl_uv *curl; /* NULL once closed */
    uv_timer_t claim_timer;
    size_t inflight;
    struct attempt inflight_list; /* list head */
    bool claiming, claim_again, closing;
    size_t claim_asked; /* jobs the claim in flight asked for */
    int recording;      /* store requests (outcomes, test reads) not yet answered */
    bool sampling;      /* a stats request is in flight */
    uint64_t last_stats_ms;
    int open_handles; /* the claim timer and the curl driver, until closed */
    void (*close_cb)(void *arg);
    void *close_arg;
};

static void
maybe_finish_close(struct tc_webhook *wh)
{
    /* A claim still in flight answers into wh: wait for it (the store's
     * command timeout bounds the wait). */
    if (wh->closing && wh->open_handles == 0 && !wh->claiming && wh->recording == 0 &&
        !wh->sampling) {
        void (*cb)(void *) = wh->close_cb;
        void *arg = wh->close_arg;
        free(wh);
        if (cb != NULL) {
            cb(arg);
        }
    }
}

static void
on_timer_closed(uv_handle_t *h)
{
    struct tc_webhook *wh = h->data;
    wh->open_handles--;
    maybe_finish_close(wh);
}

static void
on_curl_closed(void *arg)
{
    struct tc_webhook *wh = arg;
    wh->open_handles--;
    maybe_finish_close(wh);
}

static void
attempt_free(struct attempt *a)
{
    curl_slist_free_all(a->headers);
    curl_easy_cleanup(a->easy);
    free(a->job_id);
    free(a->endpoint_id);
    free(a->body);
    free(a);
}

/* ---- outcome ---- */

static void claim_now(struct tc_webhook *wh);

/* An outcome on its way to the store. */
struct record {
    struct tc_webhook *wh;
    char *job_id, *endpoint_id;
};

static void
on_recorded(void *arg, int status, uint64_t n)
{
    struct record *r = arg;
    struct tc_webhook *wh = r->wh;
    wh->recording--;
    if (status != TC_OK) {
        /* The lease runs out and the job is tried again: at-least-once. */
        tc_warn("webhook", "could not record an attempt", TC_S("webhook_id", r->job_id),
                TC_S("error", tc_strerror(status)));
    } else if (n == 0) {
        tc_info("webhook", "attempt recorded after its lease ended", TC_S("webhook_id", r->job_id));
    } else if (n == 2) {
        tc_metrics_inc(TC_M_WEBHOOK_DISABLED);
        tc_warn("webhook",
                "endpoint disabled: every attempt failed for longer than webhook.disable_after",
                TC_S("endpoint", r->endpoint_id),
                TC_U("disable_after_s", wh->cfg->webhook_disable_after_ms / 1000));
    }
    free(r->job_id);
    free(r->endpoint_id);
    free(r);
    if (wh->closing) {
        maybe_finish_close(wh);
    } else if (status == TC_OK && n > 0) {
        claim_now(wh); /* the FIFO's next job is due now */
    }
}

static void
on_disabled(void *arg, int status, const char *json, size_t len)
{
    TC_UNUSED(json);
    TC_UNUSED(len);
    char *id = arg;
    if (status == TC_OK) {
        tc_metrics_inc(TC_M_WEBHOOK_DISABLED);
    }
    tc_warn("webhook", "endpoint disabled: it answered 410 Gone", TC_S("endpoint", id),
            TC_S("result", tc_strerror(status)));
    free(id);
}

/* Answers a test message: nothing is recorded or retried. */
static void
finish_test(struct attempt *a, long code, const char *error, uint64_t took)
{
    struct tc_webhook_test_result r = {
        .webhook_id = a->job_id,
        .status = code,
        .error = error,
        .duration_ms = took,
    };
    tc_log(error ? TC_LOG_WARN : TC_LOG_INFO, "webhook", "test message sent",
           TC_S("webhook_id", a->job_id), TC_S("endpoint", a->endpoint_id), TC_I("status", code),
           TC_S("error", error));
    a->test_cb(a->test_arg, TC_OK, &r);
}

/* Records one finished attempt: delivered, retry later or dead. */
static void
finish(struct attempt *a, CURLcode cc)
{
    struct tc_webhook *wh = a->wh;
    long code = 0;
    curl_easy_getinfo(a->easy, CURLINFO_RESPONSE_CODE, &code);
    uint64_t took = tc_now_ms() - a->started_ms;
    const char *error = NULL;
    enum tc_counter failed = TC_M_WEBHOOK_FAILED_HTTP;
    if (a->refused) {
        error = "address refused";
        failed = TC_M_WEBHOOK_FAILED_REFUSED;
    } else if (cc != CURLE_OK) {
        error = a->error[0] ? a->error : curl_easy_strerror(cc);
        failed = TC_M_WEBHOOK_FAILED_NETWORK;
    } else if (code < 200 || code > 299) {
        error = code >= 300 && code < 400 ? "redirect (not followed)" : "not a 2xx answer";
    }
    if (a->test_cb != NULL) {
        finish_test(a, code, error, took);
        return;
    }
    tc_metrics_observe(TC_H_WEBHOOK_SECONDS, (double)took / 1000.0);
    if (error != NULL) {
        tc_metrics_inc(failed);
    }
    enum tc_store_wh_outcome outcome = TC_STORE_WH_DELIVERED;
    uint64_t next_ms = 0;
    if (error == NULL) {
        tc_metrics_inc(TC_M_WEBHOOK_DELIVERED);
    } else if (code == 410) {
        outcome = TC_STORE_WH_DEAD;
    } else {
        uint32_t rnd = 0;
        tc_random_bytes(&rnd, sizeof(rnd));
        uint64_t delay = tc_retry_delay_ms(&wh->cfg->webhook_retry, (int)a->attempts + 1, rnd);
        struct curl_header *h = NULL;
        if (delay > 0 && (code == 429 || code == 503) &&
            curl_easy_header(a->easy, "Retry-After", 0, CURLH_HEADER, -1, &h) == CURLHE_OK) {
            uint64_t ra;
            if (tc_retry_after_parse(h->value, (int64_t)(tc_wall_us() / 1000000), &ra) == TC_OK) {
                delay = ra;
            }
        }
        outcome = delay > 0 ? TC_STORE_WH_RETRY : TC_STORE_WH_DEAD;
        next_ms = tc_wall_us() / 1000 + delay;
    }
    if (outcome == TC_STORE_WH_DEAD) {
        tc_metrics_inc(TC_M_WEBHOOK_DEAD);
    }
    char at[32];
    tc_rfc3339_now(at);
    json_t *rec = json_pack("{s:s,s:I,s:s,s:I,s:s?,s:I}", "webhook_id", a->job_id, "attempt",
                            (json_int_t)(a->attempts + 1), "at", at, "status", (json_int_t)code,
                            "error", error, "duration_ms", (json_int_t)took);
    char *rec_text = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    tc_log(error ? TC_LOG_WARN : TC_LOG_INFO, "webhook",
           error ? "webhook attempt failed" : "webhook delivered", TC_S("webhook_id", a->job_id),
           TC_S("endpoint", a->endpoint_id), TC_I("status", code), TC_S("error", error),
           TC_U("attempt", a->attempts + 1),
           TC_S("next", outcome == TC_STORE_WH_RETRY  ? "retry"
                        : outcome == TC_STORE_WH_DEAD ? "dead"
                                                      : "none"));
    struct record *r = tc_xcalloc(1, sizeof(*r));
    r->wh = wh;
    r->job_id = tc_xstrdup(a->job_id);
    r->endpoint_id = tc_xstrdup(a->endpoint_id);
    wh->recording++;
    tc_store_wh_complete(wh->store, a->job_id, outcome, next_ms, rec_text, on_recorded, r);
    free(rec_text);
    if (code == 410) {
        tc_store_wh_disable(wh->store, a->endpoint_id, "410 Gone", on_disabled,
                            tc_xstrdup(a->endpoint_id));
    }
}

/* A transfer ended: its outcome is recorded (or answered, for a test). */
static void
on_transfer_done(void *arg, CURL *easy, CURLcode cc)
{
    TC_UNUSED(easy);
    struct attempt *a = arg;
    struct tc_webhook *wh = a->wh;
    a->prev->next = a->next;
    a->next->prev = a->prev;
    finish(a, cc);
    attempt_free(a);
    wh->inflight--;
    tc_metrics_gauge_set(TC_G_WEBHOOK_INFLIGHT, (int64_t)wh->inflight);
}

/* ---- the address guard ---- */

/* The address guard, at connect time: after DNS, before the socket exists,
 * so a name that resolves to a private address is refused too (DESIGN §5). */
static curl_socket_t
open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct attempt *a = clientp;
    if (purpose != CURLSOCKTYPE_IPCXN ||
        !tc_addr_allowed(&addr->addr, a->wh->cfg->webhook_allow_private)) {
        a->refused = true;
        const void *ip = addr->family == AF_INET6
                             ? (const void *)&((struct sockaddr_in6 *)&addr->addr)->sin6_addr
                             : (const void *)&((struct sockaddr_in *)&addr->addr)->sin_addr;
        inet_ntop(addr->family, ip, a->refused_addr, sizeof(a->refused_addr));
        tc_warn("webhook", "address refused", TC_S("webhook_id", a->job_id),
                TC_S("address", a->refused_addr),
                TC_S("class", tc_addr_class_name(tc_addr_classify(&addr->addr))));
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

/* ---- attempts ---- */

/* Starts one POST of body to the endpoint (its JSON as the store keeps it),
 * signed with every secret it holds, as message msg_id. @takes msg_id and
 * body. @returns the attempt, or NULL when the endpoint record is unusable. */
static struct attempt *
attempt_start(struct tc_webhook *wh, const json_t *ep, const char *endpoint_id, char *msg_id,
              char *body, size_t body_len)
{
    const char *url = json_string_value(json_object_get(ep, "url"));
    json_t *secrets = json_object_get(ep, "secrets");
    const char *list[4];
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(secrets) && n < TC_ARRAY_SIZE(list); i++) {
        const char *sec = json_string_value(json_array_get(secrets, i));
        if (sec != NULL) {
            list[n++] = sec;
        }
    }
    struct attempt *a = tc_xcalloc(1, sizeof(*a));
    a->wh = wh;
    a->job_id = msg_id;
    a->endpoint_id = tc_xstrdup(endpoint_id);
    a->body = body;
    a->started_ms = tc_now_ms();
    int64_t ts = (int64_t)(tc_wall_us() / 1000000);
    char sig[TC_WEBHOOK_SIGNATURE_MAX * 4 + 8], line[sizeof(sig) + 32];
    if (url == NULL || n == 0 ||
        tc_webhook_signature_header(list, n, a->job_id, ts, a->body, body_len, sig, sizeof(sig)) !=
            TC_OK) {
        tc_err("webhook", "endpoint record unusable", TC_S("endpoint", endpoint_id),
               TC_S("webhook_id", msg_id));
        attempt_free(a);
        return NULL;
    }
    a->easy = curl_easy_init();
    snprintf(line, sizeof(line), "webhook-id: %s", a->job_id);
    a->headers = curl_slist_append(a->headers, line);
    snprintf(line, sizeof(line), "webhook-timestamp: %lld", (long long)ts);
    a->headers = curl_slist_append(a->headers, line);
    snprintf(line, sizeof(line), "webhook-signature: %s", sig);
    a->headers = curl_slist_append(a->headers, line);
    a->headers = curl_slist_append(a->headers, "Content-Type: application/json");
    a->headers = curl_slist_append(a->headers, "User-Agent: tocsin/" TOCSIN_VERSION);
    a->headers = curl_slist_append(a->headers, "Expect:"); /* no 100-continue round trip */
    CURL *e = a->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, a->headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, a->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)body_len);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)wh->cfg->webhook_timeout_ms);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* ignore *_proxy variables */
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, a->error);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, a);
    wh->inflight++;
    a->next = &wh->inflight_list;
    a->prev = wh->inflight_list.prev;
    wh->inflight_list.prev->next = a;
    wh->inflight_list.prev = a;
    tc_metrics_gauge_set(TC_G_WEBHOOK_INFLIGHT, (int64_t)wh->inflight);
    tc_curl_uv_add(wh->curl, e, on_transfer_done, a);
    return a;
}

/* A test message waiting for its endpoint record. */
struct test {
    struct tc_webhook *wh;
    tc_webhook_test_cb cb;
    void *arg;
};

static void
on_test_endpoint(void *arg, int status, const char *json, size_t len)
{
    struct test *t = arg;
    struct tc_webhook *wh = t->wh;
    wh->recording--;
    json_t *doc = status == TC_OK ? json_loadb(json, len, 0, NULL) : NULL;
    json_t *ep = json_object_get(doc, "endpoint");
    const char *ep_id = json_string_value(json_object_get(ep, "id"));
    unsigned char rnd[12];
    char id[5 + 2 * sizeof(rnd) + 1] = "test_", at[32];
    struct attempt *a = NULL;
    if (status == TC_OK && !wh->closing && ep_id != NULL &&
        tc_random_bytes(rnd, sizeof(rnd)) == TC_OK) {
        for (size_t i = 0; i < sizeof(rnd); i++) {
            snprintf(id + 5 + 2 * i, 3, "%02x", rnd[i]);
        }
        tc_rfc3339_now(at);
        json_t *msg = json_pack("{s:s,s:s,s:s,s:s}", "type", "webhook.test", "webhook_id", id,
                                "endpoint_id", ep_id, "sent_at", at);
        char *body = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(msg);
        a = attempt_start(wh, ep, ep_id, tc_xstrdup(id), body, strlen(body));
    }
    if (a != NULL) {
        a->test_cb = t->cb;
        a->test_arg = t->arg;
    } else {
        t->cb(t->arg, status != TC_OK ? status : TC_ESTATE, NULL);
    }
    json_decref(doc);
    free(t);
    maybe_finish_close(wh);
}

void
tc_webhook_send_test(struct tc_webhook *wh, const char *endpoint_id, tc_webhook_test_cb cb,
                     void *arg)
{
    if (wh->closing) {
        cb(arg, TC_ESTATE, NULL);
        return;
    }
    struct test *t = tc_xcalloc(1, sizeof(*t));
    t->wh = wh;
    t->cb = cb;
    t->arg = arg;
    wh->recording++;
    tc_store_wh_get(wh->store, endpoint_id, on_test_endpoint, t);
}

/* ---- claiming ---- */

static void
on_claimed(void *arg, int status, const struct tc_store_wh_job *jobs, size_t n)
{
    struct tc_webhook *wh = arg;
    wh->claiming = false;
    if (wh->closing) {
        maybe_finish_close(wh); /* the claimed jobs' leases run out */
        return;
    }
    if (status != TC_OK) {
        return; /* Redis is away: the next tick tries again */
    }
    for (size_t i = 0; i < n; i++) {
        const struct tc_store_wh_job *job = &jobs[i];
        json_t *ep = json_loadb(job->endpoint, job->endpoint_len, 0, NULL);
        struct attempt *a = attempt_start(wh, ep, job->endpoint_id, tc_xstrdup(job->job_id),
                                          tc_xstrndup(job->body, job->body_len), job->body_len);
        json_decref(ep);
        if (a != NULL) {
            a->attempts = job->attempts;
            tc_metrics_inc(TC_M_WEBHOOK_ATTEMPTS);
        }
    }
    /* A full batch may have left more due; outcomes recorded meanwhile made
     * their FIFOs' next jobs due. */
    if (wh->claim_again || n == wh->claim_asked) {
        claim_now(wh);
    }
}

/* Claims due jobs now, or once the claim in flight has answered. */
static void
claim_now(struct tc_webhook *wh)
{
    if (wh->claiming) {
        wh->claim_again = true;
        return;
    }
    if (wh->closing || wh->inflight >= MAX_INFLIGHT || !tc_store_ready(wh->store)) {
        return;
    }
    wh->claiming = true;
    wh->claim_again = false;
    wh->claim_asked = MAX_INFLIGHT - wh->inflight;
    tc_store_wh_claim(wh->store, tc_wall_us() / 1000, wh->cfg->webhook_timeout_ms + LEASE_EXTRA_MS,
                      wh->claim_asked, on_claimed, wh);
}

static void
on_stats(void *arg, int status, uint64_t queued, uint64_t due)
{
    struct tc_webhook *wh = arg;
    wh->sampling = false;
    if (status == TC_OK) {
        tc_metrics_gauge_set(TC_G_WEBHOOK_QUEUED, (int64_t)queued);
        tc_metrics_gauge_set(TC_G_WEBHOOK_DUE, (int64_t)due);
    }
    maybe_finish_close(wh);
}

static void
on_claim_tick(uv_timer_t *t)
{
    struct tc_webhook *wh = t->data;
    claim_now(wh);
    uint64_t now = tc_now_ms();
    if (!wh->sampling && now - wh->last_stats_ms >= STATS_EVERY_MS && tc_store_ready(wh->store)) {
        wh->sampling = true;
        wh->last_stats_ms = now;
        tc_store_wh_stats(wh->store, tc_wall_us() / 1000, on_stats, wh);
    }
}

struct tc_webhook *
tc_webhook_new(uv_loop_t *loop, const struct tc_config *cfg, struct tc_store *store)
{
    struct tc_webhook *wh = tc_xcalloc(1, sizeof(*wh));
    wh->loop = loop;
    wh->cfg = cfg;
    wh->store = store;
    wh->inflight_list.next = wh->inflight_list.prev = &wh->inflight_list;
    /* Keep-alive per endpoint: a few connections per host, reused; the
     * pool (webhook.max_connections, at least MAX_INFLIGHT, so an attempt
     * never waits for a connection) holds idle ones for hundreds of
     * endpoints. */
    wh->curl = tc_curl_uv_new(loop, 8, (long)cfg->webhook_max_connections);
    uv_timer_init(loop, &wh->claim_timer);
    wh->claim_timer.data = wh;
    wh->open_handles = 2;
    return wh;
}

void
tc_webhook_start(struct tc_webhook *wh)
{
    uv_timer_start(&wh->claim_timer, on_claim_tick, CLAIM_EVERY_MS, CLAIM_EVERY_MS);
}

void
tc_webhook_close(struct tc_webhook *wh, void (*close_cb)(void *arg), void *arg)
{
    wh->closing = true;
    wh->close_cb = close_cb;
    wh->close_arg = arg;
    uv_timer_stop(&wh->claim_timer);
    /* Abandon what is in flight. */
    while (wh->inflight_list.next != &wh->inflight_list) {
        struct attempt *a = wh->inflight_list.next;
        a->prev->next = a->next;
        a->next->prev = a->prev;
        tc_curl_uv_remove(wh->curl, a->easy);
        if (a->test_cb != NULL) {
            struct tc_webhook_test_result r = {.webhook_id = a->job_id, .error = "shutting down"};
            a->test_cb(a->test_arg, TC_OK, &r);
        }
        attempt_free(a);
    }
    wh->inflight = 0;
    tc_curl_uv_close(wh->curl, on_curl_closed, wh);
    wh->curl = NULL;
    uv_close((uv_handle_t *)&wh->claim_timer, on_timer_closed);
}
