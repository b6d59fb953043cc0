/* tocsin — SPDX-License-Identifier: MIT
 *
 * The mailer (see mailer.h): a claim timer, one built message per claimed
 * mail handed to the SMTP sending thread (smtp.h), and the outcome written
 * back to the store; the link key is fetched here too. It decides neither
 * the coalescing window nor leases (the store does), nor what a message
 * looks like (templates, digest, mime).
 * @loop main.
 */
#include "email/mailer.h"

#include "email/address.h"
#include "email/digest.h"
#include "email/links.h"
#include "email/mime.h"
#include "email/smtp.h"
#include "email/template.h"
#include "email/token.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "net/retry.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

/* How often due mails are looked for when nothing else asks: a mail whose
 * window closed or whose retry time came. A recorded outcome asks at once. */
#define CLAIM_EVERY_MS 100
/* How often the queue gauges are sampled. */
#define STATS_EVERY_MS 1000
/* How long to wait before asking Redis for the link key again. */
#define KEY_RETRY_MS 1000
/* A lease outlives the send's timeout by this much, so a slow answer is
 * recorded before another node takes the mail. */
#define LEASE_EXTRA_MS 30000
/* Random bytes of a generated link key (base64: 44 characters). */
#define KEY_RANDOM 32

/* One mail, from its claim to its recorded outcome. */
struct mail {
    struct mail *prev, *next; /* in flight on m */
    struct tc_mailer *m;
    char *subscriber_id, *address;
    enum tc_store_em_kind kind;
    size_t nitems;   /* queue items it carries (the store's count) */
    size_t nupdates; /* updates in the digest */
    uint64_t attempts;
    char lease[TC_STORE_LEASE_MAX]; /* the claim's lease end, for complete */
};

struct tc_mailer {
    uv_loop_t *loop;
    const struct tc_config *cfg;
    struct tc_store *store;
    struct tc_smtp_thread *smtp; /* NULL: email disabled, not started, or closed */
    struct tc_email_templates tpl;
    bool tpl_loaded;
    char *from_domain; /* the Message-ID's right side */
    uv_timer_t timer;
    struct mail inflight; /* list head */
    size_t ninflight;
    bool claiming, claim_again, closing, sampling, key_asking;
    size_t claim_asked;
    int recording; /* outcomes sent to the store, not yet answered */
    uint64_t last_stats_ms, key_next_ms;
    unsigned char *key; /* NULL until known */
    size_t key_len;
    int open_handles; /* the timer and the sending thread, until closed */
    void (*close_cb)(void *arg);
    void *close_arg;
};

static const char *
kind_name(enum tc_store_em_kind kind)
{
    return kind == TC_STORE_EM_CONFIRM ? "confirm" : "digest";
}

static uint64_t
wall_ms(void)
{
    return tc_wall_us() / 1000;
}

static void
mail_free(struct mail *ml)
{
    free(ml->subscriber_id);
    free(ml->address);
    free(ml);
}

static void
maybe_finish_close(struct tc_mailer *m)
{
    /* Store requests answer into m: wait for them (the store's command
     * timeout bounds the wait). */
    if (!m->closing || m->open_handles > 0 || m->claiming || m->recording > 0 || m->sampling ||
        m->key_asking) {
        return;
    }
    void (*cb)(void *) = m->close_cb;
    void *arg = m->close_arg;
    if (m->tpl_loaded) {
        tc_email_templates_fini(&m->tpl);
    }
    free(m->from_domain);
    free(m->key);
    free(m);
    if (cb != NULL) {
        cb(arg);
    }
}

static void claim_now(struct tc_mailer *m);

/* ---- outcomes ---- */

/* An outcome on its way to the store. */
struct record {
    struct tc_mailer *m;
    char *subscriber_id;
};

static void
on_recorded(void *arg, int status, uint64_t n)
{
    struct record *r = arg;
    struct tc_mailer *m = r->m;

    m->recording--;
    if (status != TC_OK) {
        /* The lease runs out and the mail is sent again: at-least-once. */
        tc_warn("email", "could not record an attempt", TC_S("subscriber", r->subscriber_id),
                TC_S("error", tc_strerror(status)));
    } else if (n == 0) {
        tc_info("email", "attempt recorded after its lease ended",
                TC_S("subscriber", r->subscriber_id));
    }
    free(r->subscriber_id);
    free(r);
    if (m->closing) {
        maybe_finish_close(m);
    } else if (status == TC_OK) {
        claim_now(m); /* room for the next mail */
    }
}

/* Writes one attempt's outcome to the store and logs the mail's one line.
 * code is the SMTP reply (0 = none), error NULL when delivered; built is
 * false for a mail that could not be built (nor sent). */
static void
record(struct tc_mailer *m, const struct mail *ml, bool built, enum tc_store_em_outcome outcome,
       uint64_t next_due_ms, long code, const char *error, uint64_t took_ms)
{
    char at[32];

    tc_rfc3339_now(at);
    json_t *att =
        json_pack("{s:I,s:s,s:s,s:I,s:s?,s:I,s:I}", "attempt", (json_int_t)(ml->attempts + 1), "at",
                  at, "kind", kind_name(ml->kind), "status", (json_int_t)code, "error", error,
                  "duration_ms", (json_int_t)took_ms, "updates", (json_int_t)ml->nupdates);
    char *text = json_dumps(att, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(att);

    /* Addresses are logged (an operator answering "did my mail go out?"
     * needs them); tokens and links never are. */
    const char *next = outcome == TC_STORE_EM_RETRY    ? "retry"
                       : outcome == TC_STORE_EM_FAILED ? "failed"
                                                       : "none";
    tc_log(!built          ? TC_LOG_ERROR
           : error != NULL ? TC_LOG_WARN
                           : TC_LOG_INFO,
           "email",
           !built          ? "mail cannot be built"
           : error != NULL ? "mail not delivered"
                           : "mail delivered",
           TC_S("subscriber", ml->subscriber_id), TC_S("address", ml->address),
           TC_S("kind", kind_name(ml->kind)), TC_U("updates", ml->nupdates), TC_I("status", code),
           TC_S("error", error), TC_U("attempt", ml->attempts + 1), TC_S("next", next),
           TC_U("duration_ms", took_ms));

    struct record *r = tc_xcalloc(1, sizeof(*r));
    r->m = m;
    r->subscriber_id = tc_xstrdup(ml->subscriber_id);
    m->recording++;
    tc_store_em_complete(m->store, ml->subscriber_id, ml->lease, ml->nitems, outcome, next_due_ms,
                         text, on_recorded, r);
    free(text);
}

/* The sending thread answered (on this loop). */
static void
on_mail_sent(void *arg, const struct tc_smtp_result *res)
{
    struct mail *ml = arg;
    struct tc_mailer *m = ml->m;
    enum tc_store_em_outcome outcome = TC_STORE_EM_DELIVERED;
    uint64_t next_due_ms = 0;

    ml->prev->next = ml->next;
    ml->next->prev = ml->prev;
    m->ninflight--;
    tc_metrics_gauge_set(TC_G_EMAIL_INFLIGHT, (int64_t)m->ninflight);
    tc_metrics_observe(TC_H_EMAIL_SECONDS, (double)res->duration_ms / 1000.0);

    switch (res->cls) {
    case TC_SMTP_SENT:
        tc_metrics_inc(TC_M_EMAIL_SENT);
        tc_metrics_add(TC_M_EMAIL_UPDATES, ml->nupdates);
        break;
    case TC_SMTP_TRANSIENT: {
        uint32_t rnd = 0;
        tc_random_bytes(&rnd, sizeof(rnd));
        uint64_t delay = tc_retry_delay_ms(&m->cfg->email_retry, (int)ml->attempts + 1, rnd);
        tc_metrics_inc(TC_M_EMAIL_FAILED_TRANSIENT);
        if (delay > 0) {
            outcome = TC_STORE_EM_RETRY;
            next_due_ms = wall_ms() + delay;
        } else {
            outcome = TC_STORE_EM_FAILED;
            tc_metrics_inc(TC_M_EMAIL_GAVE_UP);
        }
        break;
    }
    case TC_SMTP_PERMANENT:
        outcome = TC_STORE_EM_FAILED;
        tc_metrics_inc(TC_M_EMAIL_FAILED_PERMANENT);
        break;
    }
    record(m, ml, true, outcome, next_due_ms, res->code, res->error, res->duration_ms);
    mail_free(ml);
}

/* ---- building a message ---- */

_Static_assert(TC_EMAIL_TPL_DIGEST_HTML == TC_EMAIL_TPL_DIGEST_TXT + 1 &&
                   TC_EMAIL_TPL_DIGEST_SUBJECT == TC_EMAIL_TPL_DIGEST_TXT + 2 &&
                   TC_EMAIL_TPL_CONFIRM_HTML == TC_EMAIL_TPL_CONFIRM_TXT + 1 &&
                   TC_EMAIL_TPL_CONFIRM_SUBJECT == TC_EMAIL_TPL_CONFIRM_TXT + 2,
               "render_three expects TXT, HTML, SUBJECT in a row");

/* Renders the text, HTML and subject templates from first (TXT, HTML,
 * SUBJECT follow in that order in the enum) with ctx. */
static int
render_three(const struct tc_mailer *m, enum tc_email_template_id first, const json_t *ctx,
             char *out[3], struct tc_error *err)
{
    static const size_t max[3] = {TC_EMAIL_TEMPLATE_OUT_MAX, TC_EMAIL_TEMPLATE_OUT_MAX,
                                  TC_EMAIL_SUBJECT_MAX};
    struct tc_error why;

    for (int i = 0; i < 3; i++) {
        enum tc_email_template_id id = (enum tc_email_template_id)(first + i);
        int rc = tc_email_templates_render(&m->tpl, id, ctx, max[i], &out[i], NULL, &why);
        if (rc != TC_OK) {
            return tc_error_set(err, rc, "template %s: %s", tc_email_templates_name(id), why.text);
        }
    }
    return TC_OK;
}

/* Builds the whole message of a claimed mail into *msg. *nupdates is the
 * digest's update count (0 for a confirmation). Returns 0 or an error with
 * err saying what made the mail unbuildable. */
static int
build(struct tc_mailer *m, const struct tc_store_em_job *job, const char *address, char **msg,
      size_t *len, size_t *nupdates, struct tc_error *err)
{
    const struct tc_config *cfg = m->cfg;
    int64_t now_s = (int64_t)(tc_wall_us() / 1000000);
    json_t *ctx = NULL, *updates = NULL;
    char *url = NULL, *part[3] = {NULL, NULL, NULL};
    struct tc_error why;
    int rc;

    *msg = NULL;
    *nupdates = 0;
    if (address == NULL) {
        rc = tc_error_set(err, TC_EINVAL, "the subscriber record has no address");
        goto out;
    }
    if (tc_email_address_check(address, &why) != TC_OK) {
        rc = tc_error_set(err, TC_EINVAL, "stored address: %s", why.text);
        goto out;
    }
    if (job->kind == TC_STORE_EM_CONFIRM) {
        rc = tc_email_link_make(m->key, m->key_len, cfg->public_url, TC_EMAIL_TOKEN_CONFIRM,
                                address, job->subscriber_id,
                                now_s + (int64_t)(cfg->email_confirm_ttl_ms / 1000), &url, err);
        if (rc != TC_OK) {
            goto out;
        }
        ctx = json_pack("{s:s,s:s,s:s}", "address", address, "confirm_url", url, "public_url",
                        cfg->public_url);
        rc = render_three(m, TC_EMAIL_TPL_CONFIRM_TXT, ctx, part, err);
    } else {
        json_error_t jerr;
        updates = json_loadb(job->updates, job->updates_len, 0, &jerr);
        if (updates == NULL) {
            rc = tc_error_set(err, TC_EINVAL, "queued updates are not JSON: %s", jerr.text);
            goto out;
        }
        /* Unsubscribe links never expire: they must work in old mails. */
        rc = tc_email_link_make(m->key, m->key_len, cfg->public_url, TC_EMAIL_TOKEN_UNSUBSCRIBE,
                                address, job->subscriber_id, 0, &url, err);
        if (rc == TC_OK) {
            rc = tc_email_digest_build(updates, cfg->public_url, url, &ctx, err);
        }
        if (rc == TC_OK) {
            *nupdates = json_array_size(updates);
            rc = render_three(m, TC_EMAIL_TPL_DIGEST_TXT, ctx, part, err);
        }
    }
    if (rc != TC_OK) {
        goto out;
    }
    const struct tc_email_header extra[] = {{"X-Tocsin-Subscriber", job->subscriber_id}};
    const struct tc_email_message em = {
        .from = cfg->smtp_from,
        .to = address,
        .subject = part[2],
        .text = part[0],
        .html = part[1],
        /* RFC 8058 one-click unsubscribe, on digests only: a confirmation
         * goes to someone not subscribed yet. */
        .unsubscribe_url = job->kind == TC_STORE_EM_DIGEST ? url : NULL,
        .msgid_domain = m->from_domain,
        .date = time(NULL),
        .extra = extra,
        .n_extra = TC_ARRAY_SIZE(extra),
    };
    rc = tc_email_mime_build(&em, msg, len, err);
out:
    for (int i = 0; i < 3; i++) {
        free(part[i]);
    }
    free(url);
    json_decref(ctx);
    json_decref(updates);
    return rc;
}

/* Builds and sends one claimed mail; one that cannot be built is failed at
 * once (its items dropped, the reason recorded), so it never comes back. */
static void
mail_start(struct tc_mailer *m, const struct tc_store_em_job *job)
{
    struct mail *ml = tc_xcalloc(1, sizeof(*ml));
    struct tc_error err = {{0}};
    char *msg = NULL;
    size_t len = 0;
    int rc;

    ml->m = m;
    ml->subscriber_id = tc_xstrdup(job->subscriber_id);
    ml->kind = job->kind;
    ml->nitems = job->nitems;
    ml->attempts = job->attempts;
    snprintf(ml->lease, sizeof(ml->lease), "%s", job->lease);

    json_t *sub = json_loadb(job->subscriber, job->subscriber_len, 0, NULL);
    const char *address = json_string_value(json_object_get(sub, "address"));
    ml->address = tc_xstrdup(address != NULL ? address : "");
    json_decref(sub);

    rc = build(m, job, address != NULL ? ml->address : NULL, &msg, &len, &ml->nupdates, &err);
    if (rc == TC_OK) {
        rc = tc_smtp_thread_send(m->smtp, ml->address, msg, len, on_mail_sent, ml, &err);
    } else {
        free(msg);
    }
    if (rc != TC_OK) {
        tc_metrics_inc(TC_M_EMAIL_FAILED_PERMANENT);
        record(m, ml, false, TC_STORE_EM_FAILED, 0, 0, err.text, 0);
        mail_free(ml);
        return;
    }
    tc_metrics_inc(TC_M_EMAIL_ATTEMPTS);
    ml->next = &m->inflight;
    ml->prev = m->inflight.prev;
    m->inflight.prev->next = ml;
    m->inflight.prev = ml;
    m->ninflight++;
    tc_metrics_gauge_set(TC_G_EMAIL_INFLIGHT, (int64_t)m->ninflight);
}

/* ---- claiming ---- */

static void
on_claimed(void *arg, int status, const struct tc_store_em_job *jobs, size_t n)
{
    struct tc_mailer *m = arg;

    m->claiming = false;
    if (m->closing) {
        maybe_finish_close(m); /* the claimed mails' leases run out */
        return;
    }
    if (status != TC_OK) {
        return; /* Redis is away: the next tick tries again */
    }
    for (size_t i = 0; i < n; i++) {
        mail_start(m, &jobs[i]);
    }
    /* A full batch may have left more due. */
    if (m->claim_again || n == m->claim_asked) {
        claim_now(m);
    }
}

/* Claims due mails now, or once the claim in flight has answered. */
static void
claim_now(struct tc_mailer *m)
{
    size_t max = (size_t)m->cfg->smtp_max_connections;

    if (m->claiming) {
        m->claim_again = true;
        return;
    }
    if (m->closing || m->smtp == NULL || m->key == NULL || m->ninflight >= max ||
        !tc_store_ready(m->store)) {
        return;
    }
    m->claiming = true;
    m->claim_again = false;
    m->claim_asked = max - m->ninflight;
    tc_store_em_claim(m->store, wall_ms(), m->cfg->smtp_timeout_ms + LEASE_EXTRA_MS, m->claim_asked,
                      on_claimed, m);
}

static void
on_stats(void *arg, int status, uint64_t queued, uint64_t due)
{
    struct tc_mailer *m = arg;

    m->sampling = false;
    if (status == TC_OK) {
        tc_metrics_gauge_set(TC_G_EMAIL_QUEUED, (int64_t)queued);
        tc_metrics_gauge_set(TC_G_EMAIL_DUE, (int64_t)due);
    }
    maybe_finish_close(m);
}

/* ---- the link key ---- */

static void
set_key(struct tc_mailer *m, const void *key, size_t len)
{
    m->key = tc_xmalloc(len);
    memcpy(m->key, key, len);
    m->key_len = len;
}

static void
on_key(void *arg, int status, const char *text, size_t len)
{
    struct tc_mailer *m = arg;

    m->key_asking = false;
    if (m->closing) {
        maybe_finish_close(m);
        return;
    }
    if (status != TC_OK || len < TC_EMAIL_TOKEN_KEY_MIN) {
        tc_warn("email", "could not get the link key from Redis",
                TC_S("error", status != TC_OK ? tc_strerror(status) : "key too short"));
        m->key_next_ms = tc_now_ms() + KEY_RETRY_MS;
        return;
    }
    set_key(m, text, len);
    tc_info("email", "link key ready", TC_S("source", "redis"));
    claim_now(m);
}

static void
ask_key(struct tc_mailer *m)
{
    unsigned char rnd[KEY_RANDOM];
    char candidate[(KEY_RANDOM + 2) / 3 * 4 + 1];

    if (tc_random_bytes(rnd, sizeof(rnd)) != TC_OK) {
        tc_err("email", "no randomness for a link key");
        m->key_next_ms = tc_now_ms() + KEY_RETRY_MS;
        return;
    }
    /* EVP_EncodeBlock writes the NUL terminator itself. */
    EVP_EncodeBlock((unsigned char *)candidate, rnd, (int)sizeof(rnd));
    m->key_asking = true;
    tc_store_em_link_key(m->store, candidate, on_key, m);
}

static void
on_tick(uv_timer_t *t)
{
    struct tc_mailer *m = t->data;
    uint64_t now = tc_now_ms();

    if (!tc_store_ready(m->store)) {
        return;
    }
    if (m->key == NULL && !m->key_asking && now >= m->key_next_ms) {
        ask_key(m);
    }
    claim_now(m);
    if (m->smtp != NULL && !m->sampling && now - m->last_stats_ms >= STATS_EVERY_MS) {
        m->sampling = true;
        m->last_stats_ms = now;
        tc_store_em_stats(m->store, wall_ms(), on_stats, m);
    }
}

/* ---- life cycle ---- */

struct tc_mailer *
tc_mailer_new(uv_loop_t *loop, const struct tc_config *cfg, struct tc_store *store)
{
    struct tc_mailer *m = tc_xcalloc(1, sizeof(*m));

    m->loop = loop;
    m->cfg = cfg;
    m->store = store;
    m->inflight.next = m->inflight.prev = &m->inflight;
    uv_timer_init(loop, &m->timer);
    m->timer.data = m;
    m->open_handles = 1;
    return m;
}

int
tc_mailer_start(struct tc_mailer *m, struct tc_error *err)
{
    const struct tc_config *cfg = m->cfg;
    struct tc_error why;
    int rc;

    if (tc_email_address_check(cfg->smtp_from, &why) != TC_OK) {
        return tc_error_set(err, TC_EINVAL, "smtp.from: %s", why.text);
    }
    m->from_domain = tc_xstrdup(strrchr(cfg->smtp_from, '@') + 1);
    if (cfg->email_link_secret[0] != '\0') {
        size_t len = strlen(cfg->email_link_secret);
        if (len < TC_EMAIL_TOKEN_KEY_MIN) {
            return tc_error_set(err, TC_EINVAL, "email.link_secret: %zu bytes, at least %d needed",
                                len, TC_EMAIL_TOKEN_KEY_MIN);
        }
        set_key(m, cfg->email_link_secret, len);
    }
    if ((rc = tc_email_templates_load(&m->tpl, cfg->email_templates_dir, &why)) != TC_OK) {
        return tc_error_set(err, rc, "email.templates_dir: %s", why.text);
    }
    m->tpl_loaded = true;
    if (cfg->smtp_url[0] != '\0') {
        if ((rc = tc_smtp_thread_new(m->loop, cfg, &m->smtp, err)) != TC_OK) {
            return rc;
        }
        m->open_handles++;
    }
    uv_timer_start(&m->timer, on_tick, CLAIM_EVERY_MS, CLAIM_EVERY_MS);
    tc_info("email", m->smtp != NULL ? "mailer started" : "email disabled (smtp.url is empty)",
            TC_S("from", cfg->smtp_from), TC_I("max_connections", cfg->smtp_max_connections),
            TC_U("coalesce_ms", cfg->email_coalesce_ms),
            TC_S("link_key", m->key != NULL ? "email.link_secret" : "redis"));
    return TC_OK;
}

bool
tc_mailer_link_key(const struct tc_mailer *m, const unsigned char **key, size_t *len)
{
    *key = m->key;
    *len = m->key != NULL ? m->key_len : 0;
    return m->key != NULL;
}

static void
on_timer_closed(uv_handle_t *h)
{
    struct tc_mailer *m = h->data;

    m->open_handles--;
    maybe_finish_close(m);
}

static void
on_smtp_closed(void *arg)
{
    struct tc_mailer *m = arg;

    m->open_handles--;
    maybe_finish_close(m);
}

void
tc_mailer_close(struct tc_mailer *m, void (*close_cb)(void *arg), void *arg)
{
    m->closing = true;
    m->close_cb = close_cb;
    m->close_arg = arg;
    uv_timer_stop(&m->timer);
    /* Abandon what is in flight: the thread runs none of its callbacks.
     * Each is recorded as an attempt without an answer, due again now, so
     * the next node or the restarted one sends it at once rather than
     * after its lease (smtp.timeout + 30 s); the server may have taken it
     * meanwhile: at-least-once. The store is open until this closes. */
    while (m->inflight.next != &m->inflight) {
        struct mail *ml = m->inflight.next;
        ml->prev->next = ml->next;
        ml->next->prev = ml->prev;
        record(m, ml, true, TC_STORE_EM_RETRY, wall_ms(), 0,
               "abandoned: tocsind stopped before the server answered", 0);
        mail_free(ml);
    }
    m->ninflight = 0;
    tc_metrics_gauge_set(TC_G_EMAIL_INFLIGHT, 0);
    if (m->smtp != NULL) {
        tc_smtp_thread_close(m->smtp, on_smtp_closed, m);
        m->smtp = NULL;
    }
    uv_close((uv_handle_t *)&m->timer, on_timer_closed);
}
