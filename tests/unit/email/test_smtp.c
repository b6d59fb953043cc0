/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of broker/email/smtp against a real SMTP server
 * (tests/tools/smtp_server.py, aiosmtpd) on loopback, driven on a uv loop:
 * delivery byte for byte (dot-stuffing, a message larger than curl's upload
 * buffer), the outcome classes of 451/550 to RCPT and DATA, a server that is
 * down, a timeout, one connection reused for two mails, STARTTLS with a CA
 * file (and refusals without it), AUTH with good and bad credentials, CR/LF
 * in an address refused before curl sees it, and abandon. The sending
 * thread: a server slow to answer DATA does not stall the home loop, and
 * close abandons what is queued or in flight.
 */
#include "config/config.h"
#include "email/smtp.h"
#include "net/curl_uv.h"
#include "util/util.h"

#include "smtp_fixture.h"

#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#define FROM "status@tocsin.test"
#define TO   "alice@example.com"

static char cert_path[300], key_path[300];

/* ---- a loop, a config and a curl driver per test ---- */

struct fx {
    uv_loop_t loop;
    uv_timer_t tick;
    struct tc_config cfg;
    struct tc_curl_uv *curl;
    bool closed;
    /* the last send */
    int done, want;
    struct tc_smtp_result res;
    char error[CURL_ERROR_SIZE];
};

static void
on_tick(uv_timer_t *t)
{
    (void)t;
}

static bool
run_until(struct fx *fx, bool (*cond)(struct fx *), uint64_t timeout_ms)
{
    uint64_t deadline = tc_now_ms() + timeout_ms;
    bool ok;

    uv_timer_start(&fx->tick, on_tick, 10, 10);
    while (!(ok = cond(fx)) && tc_now_ms() < deadline) {
        uv_run(&fx->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&fx->tick);
    return ok;
}

/* Loads a config from "KEY=value" pairs (NULL-terminated) over defaults. */
static void
fx_init(struct fx *fx, const char *const *env)
{
    char *envp[16];
    size_t n = 0;
    struct tc_error err;

    memset(fx, 0, sizeof(*fx));
    for (; env != NULL && env[n] != NULL; n++) {
        assert_true(n < TC_ARRAY_SIZE(envp) - 1);
        envp[n] = (char *)(uintptr_t)env[n];
    }
    envp[n] = NULL;
    if (tc_config_load(&fx->cfg, NULL, envp, &err) != 0) {
        fail_msg("config: %s", err.text);
    }
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    uv_timer_init(&fx->loop, &fx->tick);
    fx->curl = tc_curl_uv_new(&fx->loop, 4, 4);
}

static void
on_curl_closed(void *arg)
{
    ((struct fx *)arg)->closed = true;
}

static bool
is_closed(struct fx *fx)
{
    return fx->closed;
}

static void
fx_fini(struct fx *fx)
{
    tc_curl_uv_close(fx->curl, on_curl_closed, fx);
    assert_true(run_until(fx, is_closed, 5000));
    uv_close((uv_handle_t *)&fx->tick, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    tc_config_fini(&fx->cfg);
}

static void
on_sent(void *arg, const struct tc_smtp_result *r)
{
    struct fx *fx = arg;

    fx->done++;
    fx->res = *r;
    fx->error[0] = '\0';
    if (r->error != NULL) {
        snprintf(fx->error, sizeof(fx->error), "%s", r->error);
    }
    fx->res.error = r->error != NULL ? fx->error : NULL;
}

static bool
sent_once(struct fx *fx)
{
    return fx->done >= 1;
}

static bool
sent_twice(struct fx *fx)
{
    return fx->done >= 2;
}

static bool
sent_wanted(struct fx *fx)
{
    return fx->done >= fx->want;
}

/* A small message with lines that start with '.', which SMTP must escape. */
#define SMALL_MSG                                           \
    "From: " FROM "\r\nTo: " TO "\r\nSubject: test\r\n\r\n" \
    "first line\r\n.\r\n..two dots\r\n.one dot\r\nlast line\r\n"
#define SMALL_LEN (sizeof(SMALL_MSG) - 1)

static char *
small_message(void)
{
    return tc_xstrdup(SMALL_MSG);
}

/* Sends msg (taken) to `to`; waits for the answer; returns the result. */
static const struct tc_smtp_result *
send_wait(struct fx *fx, const char *to, char *msg, size_t len)
{
    struct tc_error err;
    int before = fx->done;

    if (tc_smtp_send(fx->curl, &fx->cfg, to, msg, len, on_sent, fx, NULL, &err) != 0) {
        fail_msg("tc_smtp_send: %s", err.text);
    }
    assert_int_equal(fx->done, before); /* never before it returns */
    fx->want = before + 1;
    assert_true(run_until(fx, sent_wanted, 15000));
    assert_int_equal(fx->done, before + 1);
    return &fx->res;
}

/* "TOCSIN_SMTP_URL=smtp://127.0.0.1:<port>" in a static buffer. */
static const char *
url_env(const char *scheme, int port)
{
    static char buf[96];
    snprintf(buf, sizeof(buf), "TOCSIN_SMTP_URL=%s://127.0.0.1:%d", scheme, port);
    return buf;
}

static json_t *
mail_meta(const struct smtp_server *srv, int n)
{
    char *meta = NULL;
    char *mail = smtp_server_mail(srv, n, NULL, &meta);
    json_t *j = meta != NULL ? json_loads(meta, 0, NULL) : NULL;

    free(mail);
    free(meta);
    assert_non_null(j);
    return j;
}

/* ---- delivery ---- */

static void
test_delivered(void **state)
{
    struct smtp_server srv;
    struct fx fx;
    size_t len, got_len = 0;
    char *msg, *got;
    (void)state;

    assert_true(smtp_server_start(&srv, NULL));
    const char *env[] = {url_env("smtp", srv.port), "TOCSIN_SMTP_FROM=" FROM, NULL};
    fx_init(&fx, env);

    /* The stored file is the message exactly: dot-stuffing done and undone. */
    len = SMALL_LEN;
    msg = small_message();
    char *copy = tc_xstrndup(msg, len);
    const struct tc_smtp_result *r = send_wait(&fx, TO, msg, len);
    assert_int_equal(r->cls, TC_SMTP_SENT);
    assert_int_equal(r->code, 250);
    assert_null(r->error);
    assert_int_equal(smtp_server_count(&srv), 1);
    got = smtp_server_mail(&srv, 1, &got_len, NULL);
    assert_non_null(got);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, copy, len);
    free(got);
    free(copy);

    json_t *meta = mail_meta(&srv, 1);
    assert_string_equal(json_string_value(json_object_get(meta, "mail_from")), FROM);
    assert_string_equal(json_string_value(json_array_get(json_object_get(meta, "rcpt_tos"), 0)),
                        TO);
    assert_int_equal(json_array_size(json_object_get(meta, "rcpt_tos")), 1);
    assert_false(json_is_true(json_object_get(meta, "tls")));
    json_decref(meta);

    /* 300 KiB: several calls of the read callback (curl reads 64 KiB at a
     * time), with a dot at the start of many lines. */
    char *big = tc_xmalloc(300 * 1024 + 64);
    size_t big_len = (size_t)snprintf(big, 64, "Subject: big\r\n\r\n");
    for (int i = 0; big_len < 300 * 1024; i++) {
        big_len += (size_t)sprintf(big + big_len, "%s%06d abcdefghijklmnopqrstuvwxyz\r\n",
                                   i % 3 == 0 ? "." : "", i);
    }
    copy = tc_xstrndup(big, big_len);
    r = send_wait(&fx, TO, big, big_len);
    assert_int_equal(r->cls, TC_SMTP_SENT);
    got = smtp_server_mail(&srv, 2, &got_len, NULL);
    assert_non_null(got);
    assert_int_equal(got_len, big_len);
    assert_memory_equal(got, copy, big_len);
    free(got);
    free(copy);

    fx_fini(&fx);
    smtp_server_stop(&srv);
}

/* Two mails one after the other travel over one pooled connection. */
static void
test_connection_reused(void **state)
{
    struct smtp_server srv;
    struct fx fx;
    (void)state;

    assert_true(smtp_server_start(&srv, NULL));
    const char *env[] = {url_env("smtp", srv.port), "TOCSIN_SMTP_FROM=" FROM, NULL};
    fx_init(&fx, env);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(
            send_wait(&fx, i == 0 ? TO : "bob@example.com", small_message(), SMALL_LEN)->cls,
            TC_SMTP_SENT);
    }
    assert_int_equal(smtp_server_count(&srv), 2);
    json_t *a = mail_meta(&srv, 1), *b = mail_meta(&srv, 2);
    assert_int_equal(json_integer_value(json_object_get(a, "connection")), 1);
    assert_int_equal(json_integer_value(json_object_get(b, "connection")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(b, "rcpt_tos"), 0)),
                        "bob@example.com");
    json_decref(a);
    json_decref(b);
    fx_fini(&fx);
    smtp_server_stop(&srv);
}

/* ---- failures and their classes ---- */

static const struct {
    const char *rule;
    const char *flag, *value;
    enum tc_smtp_class cls;
    long code;
} failure_cases[] = {
    {"451 to RCPT: mailbox busy, try later", "--fail-rcpt", "451", TC_SMTP_TRANSIENT, 451},
    {"550 to RCPT: no such user", "--fail-rcpt", "550", TC_SMTP_PERMANENT, 550},
    {"451 after DATA: try later", "--fail-data", "451", TC_SMTP_TRANSIENT, 451},
    {"554 after DATA: refused", "--fail-data", "554", TC_SMTP_PERMANENT, 554},
    {"550 to another recipient only: ours is fine", "--fail-rcpt", "550=bob@example.com",
     TC_SMTP_SENT, 250},
};

static void
test_failure_classes(void **state)
{
    (void)state;

    for (size_t i = 0; i < TC_ARRAY_SIZE(failure_cases); i++) {
        struct smtp_server srv;
        struct fx fx;
        const char *args[] = {failure_cases[i].flag, failure_cases[i].value, NULL};

        assert_true(smtp_server_start(&srv, args));
        const char *env[] = {url_env("smtp", srv.port), "TOCSIN_SMTP_FROM=" FROM, NULL};
        fx_init(&fx, env);
        const struct tc_smtp_result *r = send_wait(&fx, TO, small_message(), SMALL_LEN);
        if (r->cls != failure_cases[i].cls || r->code != failure_cases[i].code) {
            fail_msg("%s: class %s code %ld (%s)", failure_cases[i].rule,
                     tc_smtp_class_name(r->cls), r->code, r->error ? r->error : "-");
        }
        if (r->cls == TC_SMTP_SENT) {
            assert_int_equal(smtp_server_count(&srv), 1);
        } else {
            assert_non_null(r->error);
            assert_int_equal(smtp_server_count(&srv), 0);
        }
        fx_fini(&fx);
        smtp_server_stop(&srv);
    }
}

/* A loopback port nothing listens on. */
static int
dead_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;

    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &alen) == 0) {
        port = ntohs(a.sin_port);
    }
    close(fd);
    return port;
}

static void
test_server_down(void **state)
{
    struct fx fx;
    (void)state;

    const char *env[] = {url_env("smtp", dead_port()), "TOCSIN_SMTP_FROM=" FROM, NULL};
    fx_init(&fx, env);
    const struct tc_smtp_result *r = send_wait(&fx, TO, small_message(), SMALL_LEN);
    assert_int_equal(r->cls, TC_SMTP_TRANSIENT);
    assert_int_equal(r->code, 0);
    assert_non_null(r->error);
    fx_fini(&fx);
}

/* A server that does not answer DATA within smtp.timeout. */
static void
test_timeout(void **state)
{
    struct smtp_server srv;
    struct fx fx;
    const char *args[] = {"--delay-data", "5", NULL};
    (void)state;

    assert_true(smtp_server_start(&srv, args));
    const char *env[] = {url_env("smtp", srv.port), "TOCSIN_SMTP_FROM=" FROM,
                         "TOCSIN_SMTP_TIMEOUT=1s", NULL};
    fx_init(&fx, env);
    uint64_t t0 = tc_now_ms();
    const struct tc_smtp_result *r = send_wait(&fx, TO, small_message(), SMALL_LEN);
    assert_int_equal(r->cls, TC_SMTP_TRANSIENT);
    if (strstr(r->error, "imeout") == NULL) {
        fail_msg("not a timeout: %s", r->error);
    }
    assert_true(tc_now_ms() - t0 < 4000);
    assert_true(r->duration_ms >= 900);
    fx_fini(&fx);
    smtp_server_stop(&srv);
}

/* ---- TLS and AUTH ---- */

static void
test_starttls(void **state)
{
    struct smtp_server srv;
    struct fx fx;
    char ca_env[400];
    const char *args[] = {"--tls-cert", cert_path, "--tls-key", key_path, "--require-tls", NULL};
    (void)state;

    snprintf(ca_env, sizeof(ca_env), "TOCSIN_SMTP_CA_FILE=%s", cert_path);
    assert_true(smtp_server_start(&srv, args));

    /* Required and verified against the CA file: delivered over TLS. */
    const char *env[] = {url_env("smtp", srv.port), "TOCSIN_SMTP_FROM=" FROM,
                         "TOCSIN_SMTP_STARTTLS=true", ca_env, NULL};
    fx_init(&fx, env);
    const struct tc_smtp_result *r = send_wait(&fx, TO, small_message(), SMALL_LEN);
    if (r->cls != TC_SMTP_SENT) {
        fail_msg("starttls: %s %ld %s", tc_smtp_class_name(r->cls), r->code, r->error);
    }
    json_t *meta = mail_meta(&srv, 1);
    assert_true(json_is_true(json_object_get(meta, "tls")));
    json_decref(meta);
    fx_fini(&fx);

    /* Without the CA file the self-signed certificate does not verify. */
    const char *env_noca[] = {url_env("smtp", srv.port), "TOCSIN_SMTP_FROM=" FROM,
                              "TOCSIN_SMTP_STARTTLS=true", NULL};
    fx_init(&fx, env_noca);
    r = send_wait(&fx, TO, small_message(), SMALL_LEN);
    assert_int_equal(r->cls, TC_SMTP_TRANSIENT);
    assert_non_null(r->error);
    fx_fini(&fx);

    /* Without STARTTLS this server refuses the mail (530 before MAIL):
     * transient, since it is our configuration, not the recipient. */
    const char *env_plain[] = {url_env("smtp", srv.port), "TOCSIN_SMTP_FROM=" FROM, NULL};
    fx_init(&fx, env_plain);
    r = send_wait(&fx, TO, small_message(), SMALL_LEN);
    assert_int_equal(r->cls, TC_SMTP_TRANSIENT);
    assert_int_equal(r->code, 530);
    fx_fini(&fx);
    assert_int_equal(smtp_server_count(&srv), 1);
    smtp_server_stop(&srv);

    /* STARTTLS required but not offered: never sent in the clear. */
    assert_true(smtp_server_start(&srv, NULL));
    const char *env_none[] = {url_env("smtp", srv.port), "TOCSIN_SMTP_FROM=" FROM,
                              "TOCSIN_SMTP_STARTTLS=true", ca_env, NULL};
    fx_init(&fx, env_none);
    r = send_wait(&fx, TO, small_message(), SMALL_LEN);
    assert_int_equal(r->cls, TC_SMTP_TRANSIENT);
    assert_int_equal(smtp_server_count(&srv), 0);
    fx_fini(&fx);
    smtp_server_stop(&srv);
}

static void
test_auth(void **state)
{
    struct smtp_server srv;
    struct fx fx;
    const char *args[] = {"--auth", "mailer:s3cret", NULL};
    (void)state;

    assert_true(smtp_server_start(&srv, args));
    const char *env[] = {url_env("smtp", srv.port), "TOCSIN_SMTP_FROM=" FROM,
                         "TOCSIN_SMTP_USERNAME=mailer", "TOCSIN_SMTP_PASSWORD=s3cret", NULL};
    fx_init(&fx, env);
    const struct tc_smtp_result *r = send_wait(&fx, TO, small_message(), SMALL_LEN);
    assert_int_equal(r->cls, TC_SMTP_SENT);
    json_t *meta = mail_meta(&srv, 1);
    assert_string_equal(json_string_value(json_object_get(meta, "auth")), "mailer");
    json_decref(meta);
    fx_fini(&fx);

    /* A wrong password: 535, retried rather than failed for good. */
    const char *env_bad[] = {url_env("smtp", srv.port), "TOCSIN_SMTP_FROM=" FROM,
                             "TOCSIN_SMTP_USERNAME=mailer", "TOCSIN_SMTP_PASSWORD=wrong", NULL};
    fx_init(&fx, env_bad);
    r = send_wait(&fx, TO, small_message(), SMALL_LEN);
    assert_int_equal(r->cls, TC_SMTP_TRANSIENT);
    assert_int_equal(r->code, 535);
    fx_fini(&fx);

    /* No credentials: the server wants AUTH before MAIL (530). */
    const char *env_none[] = {url_env("smtp", srv.port), "TOCSIN_SMTP_FROM=" FROM, NULL};
    fx_init(&fx, env_none);
    r = send_wait(&fx, TO, small_message(), SMALL_LEN);
    assert_int_equal(r->cls, TC_SMTP_TRANSIENT);
    assert_int_equal(r->code, 530);
    fx_fini(&fx);
    assert_int_equal(smtp_server_count(&srv), 1);
    smtp_server_stop(&srv);
}

/* ---- refused before curl, and abandon ---- */

static void
test_refused_addresses(void **state)
{
    struct fx fx;
    struct tc_error err;
    struct tc_smtp_send *s = (struct tc_smtp_send *)&fx; /* any non-NULL: must become NULL */
    (void)state;

    const char *env[] = {"TOCSIN_SMTP_URL=smtp://127.0.0.1:9", "TOCSIN_SMTP_FROM=" FROM, NULL};
    fx_init(&fx, env);
    /* CR/LF would become an SMTP command of its own. */
    assert_int_equal(tc_smtp_send(fx.curl, &fx.cfg, "a@example.com\r\nRCPT TO:<x@evil.test>",
                                  small_message(), SMALL_LEN, on_sent, &fx, &s, &err),
                     TC_EINVAL);
    assert_null(s);
    assert_non_null(strstr(err.text, "recipient"));
    assert_int_equal(tc_smtp_send(fx.curl, &fx.cfg, "<a@example.com>", small_message(), SMALL_LEN,
                                  on_sent, &fx, NULL, &err),
                     TC_EINVAL);
    assert_int_equal(
        tc_smtp_send(fx.curl, &fx.cfg, NULL, small_message(), SMALL_LEN, on_sent, &fx, NULL, NULL),
        TC_EINVAL);
    /* The sender is checked too, whatever config let through. */
    char *from = fx.cfg.smtp_from;
    fx.cfg.smtp_from = (char *)(uintptr_t) "status@tocsin.test\nX: y";
    assert_int_equal(
        tc_smtp_send(fx.curl, &fx.cfg, TO, small_message(), SMALL_LEN, on_sent, &fx, NULL, &err),
        TC_EINVAL);
    assert_non_null(strstr(err.text, "smtp.from"));
    fx.cfg.smtp_from = from;
    /* Email disabled. */
    char *url = fx.cfg.smtp_url;
    fx.cfg.smtp_url = (char *)(uintptr_t) "";
    assert_int_equal(
        tc_smtp_send(fx.curl, &fx.cfg, TO, small_message(), SMALL_LEN, on_sent, &fx, NULL, &err),
        TC_EINVAL);
    fx.cfg.smtp_url = url;
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    assert_int_equal(fx.done, 0); /* no callback for a refused send */
    fx_fini(&fx);
}

static void
test_abandon(void **state)
{
    struct smtp_server srv;
    struct fx fx;
    struct tc_smtp_send *s = NULL;
    struct tc_error err;
    const char *args[] = {"--delay-rcpt", "2", NULL};
    (void)state;

    assert_true(smtp_server_start(&srv, args));
    const char *env[] = {url_env("smtp", srv.port), "TOCSIN_SMTP_FROM=" FROM, NULL};
    fx_init(&fx, env);
    assert_int_equal(
        tc_smtp_send(fx.curl, &fx.cfg, TO, small_message(), SMALL_LEN, on_sent, &fx, &s, &err), 0);
    assert_non_null(s);
    /* Let it get as far as RCPT, then give up on it (shutdown): at once. */
    assert_false(run_until(&fx, sent_once, 300));
    uint64_t t0 = tc_now_ms();
    tc_smtp_abandon(s);
    tc_smtp_abandon(NULL);
    assert_true(tc_now_ms() - t0 < 1000); /* not blocked until the reply */
    assert_false(run_until(&fx, sent_once, 300));

    /* The driver still works, on a fresh connection. */
    assert_int_equal(
        tc_smtp_send(fx.curl, &fx.cfg, TO, small_message(), SMALL_LEN, on_sent, &fx, &s, &err), 0);
    assert_true(run_until(&fx, sent_once, 10000));
    assert_int_equal(fx.res.cls, TC_SMTP_SENT);
    assert_false(run_until(&fx, sent_twice, 100));
    assert_int_equal(smtp_server_count(&srv), 1);
    fx_fini(&fx);
    smtp_server_stop(&srv);
}

/* Abandoning sends and closing the driver right away leaks nothing. */
static void
test_abandon_then_close(void **state)
{
    struct smtp_server srv;
    struct fx fx;
    struct tc_smtp_send *s[3];
    const char *args[] = {"--delay-rcpt", "3", NULL};
    (void)state;

    assert_true(smtp_server_start(&srv, args));
    const char *env[] = {url_env("smtp", srv.port), "TOCSIN_SMTP_FROM=" FROM, NULL};
    fx_init(&fx, env);
    for (size_t i = 0; i < TC_ARRAY_SIZE(s); i++) {
        assert_int_equal(tc_smtp_send(fx.curl, &fx.cfg, TO, small_message(), SMALL_LEN, on_sent,
                                      &fx, &s[i], NULL),
                         0);
    }
    assert_false(run_until(&fx, sent_once, 300));
    for (size_t i = 0; i < TC_ARRAY_SIZE(s); i++) {
        tc_smtp_abandon(s[i]);
    }
    assert_int_equal(fx.done, 0);
    fx_fini(&fx);
    smtp_server_stop(&srv);
}

/* ---- the sending thread ---- */

struct home {
    uv_loop_t loop;
    uv_timer_t tick;
    uint64_t last_tick_ms, max_gap_ms;
    int done;
    struct tc_smtp_result res;
    char error[CURL_ERROR_SIZE];
    bool closed;
};

static void
on_home_tick(uv_timer_t *t)
{
    struct home *h = t->data;
    uint64_t now = tc_now_ms();

    if (h->last_tick_ms != 0 && now - h->last_tick_ms > h->max_gap_ms) {
        h->max_gap_ms = now - h->last_tick_ms;
    }
    h->last_tick_ms = now;
}

static void
on_home_sent(void *arg, const struct tc_smtp_result *r)
{
    struct home *h = arg;

    h->done++;
    h->res = *r;
    h->res.error = NULL;
    if (r->error != NULL) {
        snprintf(h->error, sizeof(h->error), "%s", r->error);
        h->res.error = h->error;
    }
}

static void
on_thread_closed(void *arg)
{
    ((struct home *)arg)->closed = true;
}

/* Runs the home loop until *flag >= want or timeout. */
static bool
home_run(struct home *h, const int *flag, int want, uint64_t timeout_ms)
{
    uint64_t deadline = tc_now_ms() + timeout_ms;

    while (*flag < want && tc_now_ms() < deadline) {
        uv_run(&h->loop, UV_RUN_ONCE);
    }
    return *flag >= want;
}

static void
home_init(struct home *h)
{
    memset(h, 0, sizeof(*h));
    assert_int_equal(uv_loop_init(&h->loop), 0);
    uv_timer_init(&h->loop, &h->tick);
    h->tick.data = h;
    uv_timer_start(&h->tick, on_home_tick, 10, 10);
}

static void
home_fini(struct home *h)
{
    uv_close((uv_handle_t *)&h->tick, NULL);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&h->loop), 0);
}

/* A server slow to answer the end of DATA blocks curl (curl issue #8555),
 * but only the sending thread: the home loop keeps ticking. */
static void
test_thread_keeps_home_loop_free(void **state)
{
    struct smtp_server srv;
    struct fx cfgfx; /* only its config */
    struct home h;
    struct tc_smtp_thread *t = NULL;
    struct tc_error err;
    const char *args[] = {"--delay-data", "2", NULL};
    (void)state;

    assert_true(smtp_server_start(&srv, args));
    const char *env[] = {url_env("smtp", srv.port), "TOCSIN_SMTP_FROM=" FROM, NULL};
    fx_init(&cfgfx, env);
    home_init(&h);
    assert_int_equal(tc_smtp_thread_new(&h.loop, &cfgfx.cfg, &t, &err), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(
            tc_smtp_thread_send(t, TO, small_message(), SMALL_LEN, on_home_sent, &h, &err), 0);
    }
    assert_int_equal(h.done, 0);
    assert_true(home_run(&h, &h.done, 2, 15000));
    assert_int_equal(h.res.cls, TC_SMTP_SENT);
    assert_int_equal(smtp_server_count(&srv), 2);
    if (h.max_gap_ms > 1000) {
        fail_msg("the home loop stalled for %d ms", (int)h.max_gap_ms);
    }
    /* Refused before anything is queued. */
    assert_int_equal(tc_smtp_thread_send(t, "a@example.com\nRCPT TO:<b@example.com>",
                                         small_message(), SMALL_LEN, on_home_sent, &h, &err),
                     TC_EINVAL);
    tc_smtp_thread_close(t, on_thread_closed, &h);
    assert_int_equal(tc_smtp_thread_send(t, TO, small_message(), SMALL_LEN, on_home_sent, &h, &err),
                     TC_ESTATE);
    int closed = 0;
    while (!h.closed && closed++ < 1000) {
        uv_run(&h.loop, UV_RUN_ONCE);
    }
    assert_true(h.closed);
    assert_int_equal(h.done, 2);
    home_fini(&h);
    fx_fini(&cfgfx);
    smtp_server_stop(&srv);
}

/* Closing with sends queued and in flight: no callback, nothing leaks. */
static void
test_thread_close_abandons(void **state)
{
    struct smtp_server srv;
    struct fx cfgfx;
    struct home h;
    struct tc_smtp_thread *t = NULL;
    const char *args[] = {"--delay-rcpt", "3", NULL};
    (void)state;

    assert_true(smtp_server_start(&srv, args));
    const char *env[] = {url_env("smtp", srv.port), "TOCSIN_SMTP_FROM=" FROM,
                         "TOCSIN_SMTP_MAX_CONNECTIONS=2", NULL};
    fx_init(&cfgfx, env);
    home_init(&h);
    assert_int_equal(tc_smtp_thread_new(&h.loop, &cfgfx.cfg, &t, NULL), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(
            tc_smtp_thread_send(t, TO, small_message(), SMALL_LEN, on_home_sent, &h, NULL), 0);
    }
    int zero = 0;
    home_run(&h, &zero, 1, 300); /* let some reach RCPT */
    uint64_t t0 = tc_now_ms();
    tc_smtp_thread_close(t, on_thread_closed, &h);
    while (!h.closed && tc_now_ms() - t0 < 5000) {
        uv_run(&h.loop, UV_RUN_ONCE);
    }
    assert_true(h.closed);
    assert_true(tc_now_ms() - t0 < 2500); /* before the server's 3 s */
    assert_int_equal(h.done, 0);
    home_fini(&h);
    fx_fini(&cfgfx);
    smtp_server_stop(&srv);
}

static int
group_setup(void **state)
{
    (void)state;
    if (!smtp_tmp_make() || !smtp_make_cert(cert_path, key_path)) {
        return -1;
    }
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    return smtp_tmp_remove();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delivered),
        cmocka_unit_test(test_connection_reused),
        cmocka_unit_test(test_failure_classes),
        cmocka_unit_test(test_server_down),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_starttls),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_refused_addresses),
        cmocka_unit_test(test_abandon),
        cmocka_unit_test(test_abandon_then_close),
        cmocka_unit_test(test_thread_keeps_home_loop_free),
        cmocka_unit_test(test_thread_close_abandons),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
