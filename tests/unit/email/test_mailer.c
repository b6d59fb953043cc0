/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of broker/email/mailer against a real redis-server
 * (tests/unit/store/store_fixture.h) and a real SMTP server
 * (tests/tools/smtp_server.py): an update applied through the per-event
 * script reaches a confirmed subscriber as one mail with the update's title,
 * RFC 8058 headers and an unsubscribe token that verifies with the link key
 * Redis holds; the confirmation mail of a self-service subscriber; 451 →
 * retry later, 550 → failed, out of retries → failed; a mail that cannot be
 * built → failed once, no SMTP traffic, no hot loop; the link key from
 * email.link_secret or shared through Redis by two mailers; start-up errors
 * naming their key or file; email disabled; close with a mail in flight.
 */
#include "../store/store_fixture.h"
#include "smtp_fixture.h"

#include "email/links.h"
#include "email/mailer.h"
#include "email/token.h"
#include "metrics/metrics.h"
#include "store/emails.h"

#include <ctype.h>

#define FROM "status@tocsin.test"

/* ---- the mailer on the fixture's loop ---- */

static struct tc_mailer *mailer;
static const struct smtp_server *cur_srv;
static int want_mails;
static char want_hash[128], want_field[128];
static long long want_count;

/* Points the fixture's config at srv (NULL: email disabled); no window. */
static void
use_smtp(struct fx *fx, const struct smtp_server *srv)
{
    free(fx->cfg.smtp_url);
    fx->cfg.smtp_url =
        srv != NULL ? tc_xasprintf("smtp://127.0.0.1:%d", srv->port) : tc_xstrdup("");
    free(fx->cfg.smtp_from);
    fx->cfg.smtp_from = tc_xstrdup(FROM);
    fx->cfg.email_coalesce_ms = 0;
}

static void
start_mailer(struct fx *fx)
{
    struct tc_error err;

    mailer = tc_mailer_new(&fx->loop, &fx->cfg, fx->s);
    if (tc_mailer_start(mailer, &err) != 0) {
        fail_msg("tc_mailer_start: %s", err.text);
    }
}

static bool mailer_closed;

static void
on_mailer_closed(void *arg)
{
    *(bool *)arg = true;
}

static bool
is_mailer_closed(struct fx *fx)
{
    (void)fx;
    return mailer_closed;
}

static void
close_mailer(struct fx *fx, struct tc_mailer *m)
{
    mailer_closed = false;
    tc_mailer_close(m, on_mailer_closed, &mailer_closed);
    assert_true(run_until(fx, is_mailer_closed, 5000));
}

static bool
mails_arrived(struct fx *fx)
{
    (void)fx;
    return smtp_server_count(cur_srv) >= want_mails;
}

/* HGET <want_hash> <want_field> reached want_count. */
static bool
counted(struct fx *fx)
{
    redisReply *r = redis_cmd("HGET %s %s", key(fx, want_hash), want_field);
    long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
    freeReplyObject(r);
    return v >= want_count;
}

static bool
wait_hash(struct fx *fx, const char *hash, const char *field, long long n)
{
    snprintf(want_hash, sizeof(want_hash), "%s", hash);
    snprintf(want_field, sizeof(want_field), "%s", field);
    want_count = n;
    return run_until(fx, counted, 10000);
}

/* Waits until the store counted n mails of subscriber id as outcome
 * ("delivered" or "failed"). */
static bool
wait_counted(struct fx *fx, const char *id, const char *outcome, long long n)
{
    char hash[128];

    snprintf(hash, sizeof(hash), "em:cnt:%s", id);
    return wait_hash(fx, hash, outcome, n);
}

static bool
key_known(struct fx *fx)
{
    const unsigned char *k;
    size_t len;
    (void)fx;
    return tc_mailer_link_key(mailer, &k, &len);
}

/* ---- the store: subscribers, events ---- */

static void
on_created(void *arg, int status, const char *json, size_t len)
{
    (void)json;
    (void)len;
    *(int *)arg = status == 0 ? 1 : -1;
}

static int created_flag;

static bool
created(struct fx *fx)
{
    (void)fx;
    return created_flag != 0;
}

static void
subscribe(struct fx *fx, const char *id, const char *address, bool confirmed)
{
    created_flag = 0;
    tc_store_em_create(fx->s, id, address, "{}", confirmed, confirmed ? "admin" : "self-service",
                       on_created, &created_flag);
    assert_true(run_until(fx, created, 5000));
    assert_int_equal(created_flag, 1);
}

static void
publish(struct fx *fx, const char *event_id, const char *incident, int version)
{
    assert_int_equal(
        apply(fx, event_id, incident, version, "investigating", "[\"playback\"]", NULL, T1, NULL),
        TC_STORE_ACCEPTED);
}

/* The newest attempt record of a subscriber. @returns new. */
static json_t *
last_attempt(struct fx *fx, const char *id)
{
    char k[128];

    snprintf(k, sizeof(k), "em:att:%s", id);
    redisReply *r = redis_cmd("LINDEX %s 0", key(fx, k));
    json_t *j = r->type == REDIS_REPLY_STRING ? json_loads(r->str, 0, NULL) : NULL;
    freeReplyObject(r);
    assert_non_null(j);
    return j;
}

static long long
queue_len(struct fx *fx, const char *id)
{
    char k[128];

    snprintf(k, sizeof(k), "em:q:%s", id);
    return redis_int("LLEN %s", key(fx, k));
}

/* ---- reading a mail ---- */

/* Undoes quoted-printable over the whole message (headers hold no "=XX"),
 * which is enough to find a link in the parts. @returns new. */
static char *
qp_decode(const char *in)
{
    char *out = tc_xmalloc(strlen(in) + 1), *o = out;

    for (const char *p = in; *p != '\0';) {
        if (p[0] == '=' && p[1] == '\r' && p[2] == '\n') {
            p += 3;
        } else if (p[0] == '=' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
            char hex[3] = {p[1], p[2], '\0'};
            *o++ = (char)strtol(hex, NULL, 16);
            p += 3;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

/* Copies the token that follows `prefix` (a link) in text into out. */
static bool
find_token(const char *text, const char *prefix, char *out, size_t outlen)
{
    const char *p = strstr(text, prefix);
    size_t n = 0;

    if (p == NULL) {
        return false;
    }
    p += strlen(prefix);
    while (p[n] != '\0' && (isalnum((unsigned char)p[n]) || strchr("-_.", p[n]) != NULL)) {
        n++;
    }
    if (n == 0 || n >= outlen) {
        return false;
    }
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

static void
verify(enum tc_email_token_purpose purpose, const char *token, const char *address, const char *id,
       struct tc_email_token_claims *claims)
{
    const unsigned char *k;
    size_t klen;
    struct tc_error err;

    assert_true(tc_mailer_link_key(mailer, &k, &klen));
    if (tc_email_token_verify(k, klen, purpose, token, (int64_t)(tc_wall_us() / 1000000), claims,
                              &err) != 0) {
        fail_msg("token does not verify: %s", err.text);
    }
    assert_string_equal(claims->address, address);
    assert_string_equal(claims->subscriber_id, id);
}

/* ---- tests ---- */

/* One update for a confirmed subscriber: one mail with its title, the
 * RFC 8058 headers and an unsubscribe token signed with Redis's key. */
static void
test_digest_delivered(void **state)
{
    struct fx fx;
    struct smtp_server srv;
    char token[TC_EMAIL_TOKEN_MAX];
    struct tc_email_token_claims claims;
    (void)state;

    assert_true(smtp_server_start(&srv, NULL));
    fx_init(&fx, "2s");
    use_smtp(&fx, &srv);
    uint64_t sent0 = tc_metrics_get(TC_M_EMAIL_SENT), upd0 = tc_metrics_get(TC_M_EMAIL_UPDATES);
    start_mailer(&fx);
    assert_true(run_until(&fx, key_known, 5000));
    subscribe(&fx, "es_1", "alice@example.test", true);
    publish(&fx, "e1", "inc1", 1);

    cur_srv = &srv;
    want_mails = 1;
    assert_true(run_until(&fx, mails_arrived, 10000));
    assert_true(wait_counted(&fx, "es_1", "delivered", 1));
    char *meta = NULL;
    char *raw = smtp_server_mail(&srv, 1, NULL, &meta);
    assert_non_null(strstr(meta, "\"rcpt_tos\": [\"alice@example.test\"]"));
    assert_non_null(strstr(meta, "\"mail_from\": \"" FROM "\""));
    assert_non_null(strstr(raw, "\r\nSubject: [Investigating] Playback errors\r\n"));
    assert_non_null(strstr(raw, "\r\nTo: alice@example.test\r\n"));
    assert_non_null(strstr(raw, "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
    assert_non_null(strstr(raw, "@tocsin.test>\r\n")); /* Message-ID domain from smtp.from */
    assert_non_null(strstr(raw, "\r\nX-Tocsin-Subscriber: es_1\r\n"));
    assert_true(find_token(
        raw,
        "\r\nList-Unsubscribe: <http://localhost:8080" TC_EMAIL_LINK_UNSUBSCRIBE_PATH "?token=",
        token, sizeof(token)));
    verify(TC_EMAIL_TOKEN_UNSUBSCRIBE, token, "alice@example.test", "es_1", &claims);
    assert_int_equal(claims.expires_at, 0);
    char *text = qp_decode(raw);
    assert_non_null(strstr(text, "Playback errors"));
    assert_non_null(strstr(text, token)); /* the same link in the body */
    free(text);
    free(raw);
    free(meta);

    /* The key is the one Redis holds. */
    const unsigned char *k;
    size_t klen;
    assert_true(tc_mailer_link_key(mailer, &k, &klen));
    redisReply *r = redis_cmd("GET %s", key(&fx, "em:key"));
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_int_equal(r->len, klen);
    assert_memory_equal(r->str, k, klen);
    freeReplyObject(r);

    /* Recorded: queue empty, one attempt with the server's 250. */
    assert_int_equal(queue_len(&fx, "es_1"), 0);
    json_t *att = last_attempt(&fx, "es_1");
    assert_int_equal(json_integer_value(json_object_get(att, "status")), 250);
    assert_int_equal(json_integer_value(json_object_get(att, "attempt")), 1);
    assert_int_equal(json_integer_value(json_object_get(att, "updates")), 1);
    assert_string_equal(json_string_value(json_object_get(att, "kind")), "digest");
    assert_true(json_is_null(json_object_get(att, "error")));
    json_decref(att);
    assert_int_equal(tc_metrics_get(TC_M_EMAIL_SENT), sent0 + 1);
    assert_int_equal(tc_metrics_get(TC_M_EMAIL_UPDATES), upd0 + 1);

    /* A second update is a second mail (no window configured). */
    publish(&fx, "e2", "inc1", 2);
    want_mails = 2;
    assert_true(run_until(&fx, mails_arrived, 10000));
    assert_true(wait_counted(&fx, "es_1", "delivered", 2));

    close_mailer(&fx, mailer);
    fx_fini(&fx);
    smtp_server_stop(&srv);
}

/* A self-service subscriber gets the confirmation mail, with a CONFIRM
 * token that expires after email.confirm_ttl and no List-Unsubscribe. */
static void
test_confirm_mail(void **state)
{
    struct fx fx;
    struct smtp_server srv;
    char token[TC_EMAIL_TOKEN_MAX];
    struct tc_email_token_claims claims;
    (void)state;

    assert_true(smtp_server_start(&srv, NULL));
    fx_init(&fx, "2s");
    use_smtp(&fx, &srv);
    free(fx.cfg.public_url);
    fx.cfg.public_url = tc_xstrdup("https://status.example.test/");
    start_mailer(&fx);
    subscribe(&fx, "es_2", "bob@example.test", false);
    cur_srv = &srv;
    want_mails = 1;
    assert_true(run_until(&fx, mails_arrived, 10000));
    assert_true(wait_counted(&fx, "es_2", "delivered", 1));
    char *raw = smtp_server_mail(&srv, 1, NULL, NULL);
    assert_null(strstr(raw, "List-Unsubscribe"));
    char *text = qp_decode(raw);
    /* The trailing '/' of public_url is not doubled. */
    assert_true(find_token(text, "https://status.example.test" TC_EMAIL_LINK_CONFIRM_PATH "?token=",
                           token, sizeof(token)));
    verify(TC_EMAIL_TOKEN_CONFIRM, token, "bob@example.test", "es_2", &claims);
    int64_t want = (int64_t)(tc_wall_us() / 1000000 + fx.cfg.email_confirm_ttl_ms / 1000);
    assert_true(claims.expires_at > want - 30 && claims.expires_at <= want);
    free(text);
    free(raw);
    json_t *att = last_attempt(&fx, "es_2");
    assert_string_equal(json_string_value(json_object_get(att, "kind")), "confirm");
    assert_int_equal(json_integer_value(json_object_get(att, "updates")), 0);
    json_decref(att);
    close_mailer(&fx, mailer);
    fx_fini(&fx);
    smtp_server_stop(&srv);
}

static long long
due_in_ms(struct fx *fx, const char *id)
{
    redisReply *r = redis_cmd("ZSCORE %s %s", key(fx, "em:due"), id);
    long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
    freeReplyObject(r);
    return v < 0 ? -1 : v - (long long)(tc_wall_us() / 1000);
}

/* 451: retried at the first step of email.retry_schedule (1m, ±20 %), the
 * update kept; out of retries: failed; 550: failed at once. */
static void
test_failures(void **state)
{
    struct fx fx;
    struct smtp_server srv;
    const char *args451[] = {
        "--fail-rcpt", "451=carol@example.test", "--fail-rcpt", "550=dave@example.test",
        "--fail-rcpt", "451=erin@example.test",  NULL};
    (void)state;

    assert_true(smtp_server_start(&srv, args451));
    fx_init(&fx, "2s");
    use_smtp(&fx, &srv);
    uint64_t gave0 = tc_metrics_get(TC_M_EMAIL_GAVE_UP),
             perm0 = tc_metrics_get(TC_M_EMAIL_FAILED_PERMANENT);
    start_mailer(&fx);
    subscribe(&fx, "carol", "carol@example.test", true);
    subscribe(&fx, "dave", "dave@example.test", true);
    publish(&fx, "e1", "inc1", 1);

    assert_true(wait_hash(&fx, "em:tries", "carol", 1)); /* a retry */
    json_t *att = last_attempt(&fx, "carol");
    assert_int_equal(json_integer_value(json_object_get(att, "status")), 451);
    assert_non_null(json_string_value(json_object_get(att, "error")));
    json_decref(att);
    assert_int_equal(queue_len(&fx, "carol"), 1);
    long long due = due_in_ms(&fx, "carol");
    assert_true(due > 45000 && due <= 72000);

    assert_true(wait_counted(&fx, "dave", "failed", 1));
    att = last_attempt(&fx, "dave");
    assert_int_equal(json_integer_value(json_object_get(att, "status")), 550);
    json_decref(att);
    assert_int_equal(queue_len(&fx, "dave"), 0);
    assert_int_equal(tc_metrics_get(TC_M_EMAIL_FAILED_PERMANENT), perm0 + 1);
    close_mailer(&fx, mailer);

    /* An empty schedule: the first 451 is the last. */
    fx.cfg.email_retry.count = 0;
    start_mailer(&fx);
    subscribe(&fx, "erin", "erin@example.test", true);
    publish(&fx, "e2", "inc2", 1);
    assert_true(wait_counted(&fx, "erin", "failed", 1));
    assert_int_equal(queue_len(&fx, "erin"), 0);
    assert_int_equal(tc_metrics_get(TC_M_EMAIL_GAVE_UP), gave0 + 1);
    assert_int_equal(smtp_server_count(&srv), 0);
    close_mailer(&fx, mailer);
    fx_fini(&fx);
    smtp_server_stop(&srv);
}

/* A stored address that fails the check (CR/LF would reach SMTP): failed
 * once with the reason, nothing sent, not claimed again. */
static void
test_unbuildable(void **state)
{
    struct fx fx;
    struct smtp_server srv;
    (void)state;

    assert_true(smtp_server_start(&srv, NULL));
    fx_init(&fx, "2s");
    use_smtp(&fx, &srv);
    start_mailer(&fx);
    subscribe(&fx, "bad", "x@example.test\r\nRCPT TO:<y@example.test>", true);
    subscribe(&fx, "good", "good@example.test", true);
    publish(&fx, "e1", "inc1", 1);
    assert_true(wait_counted(&fx, "bad", "failed", 1));
    assert_true(wait_counted(&fx, "good", "delivered", 1));
    json_t *att = last_attempt(&fx, "bad");
    assert_non_null(strstr(json_string_value(json_object_get(att, "error")), "stored address"));
    assert_int_equal(json_integer_value(json_object_get(att, "status")), 0);
    json_decref(att);
    assert_int_equal(queue_len(&fx, "bad"), 0);
    run_until(&fx, never, 300);
    assert_true(wait_counted(&fx, "bad", "failed", 1));
    want_count = 2;
    assert_false(counted(&fx)); /* no second attempt */
    assert_int_equal(smtp_server_count(&srv), 1);
    char *meta = NULL;
    free(smtp_server_mail(&srv, 1, NULL, &meta));
    assert_non_null(strstr(meta, "good@example.test"));
    assert_null(strstr(meta, "y@example.test"));
    free(meta);
    close_mailer(&fx, mailer);
    fx_fini(&fx);
    smtp_server_stop(&srv);
}

/* email.link_secret is the key at once, and Redis is not asked; without
 * it, two mailers (two nodes) end up with the same key from Redis. */
static void
test_link_key(void **state)
{
    struct fx fx;
    const unsigned char *k;
    size_t klen;
    (void)state;

    fx_init(&fx, "2s");
    use_smtp(&fx, NULL); /* disabled: the key is still learnt */
    free(fx.cfg.email_link_secret);
    fx.cfg.email_link_secret = tc_xstrdup("0123456789abcdef-secret");
    start_mailer(&fx);
    assert_true(tc_mailer_link_key(mailer, &k, &klen));
    assert_int_equal(klen, strlen("0123456789abcdef-secret"));
    assert_memory_equal(k, "0123456789abcdef-secret", klen);
    run_until(&fx, never, 300);
    assert_int_equal(redis_int("EXISTS %s", key(&fx, "em:key")), 0);
    close_mailer(&fx, mailer);

    free(fx.cfg.email_link_secret);
    fx.cfg.email_link_secret = tc_xstrdup("");
    start_mailer(&fx);
    struct tc_mailer *first = mailer;
    assert_false(tc_mailer_link_key(mailer, &k, &klen));
    assert_null(k);
    assert_true(run_until(&fx, key_known, 5000));
    start_mailer(&fx);
    assert_true(run_until(&fx, key_known, 5000));
    const unsigned char *k2;
    size_t klen2;
    assert_true(tc_mailer_link_key(first, &k, &klen));
    assert_true(tc_mailer_link_key(mailer, &k2, &klen2));
    assert_int_equal(klen, 44); /* base64 of 32 random bytes */
    assert_int_equal(klen2, klen);
    assert_memory_equal(k, k2, klen);
    close_mailer(&fx, first);
    close_mailer(&fx, mailer);
    fx_fini(&fx);
}

/* Start-up errors name their key or file; close works after them. */
static void
test_start_errors(void **state)
{
    struct fx fx;
    struct tc_error err;
    char dir[300], path[400];
    (void)state;

    fx_init(&fx, "2s");
    use_smtp(&fx, NULL);

    free(fx.cfg.smtp_from);
    fx.cfg.smtp_from = tc_xstrdup("status@");
    mailer = tc_mailer_new(&fx.loop, &fx.cfg, fx.s);
    assert_int_equal(tc_mailer_start(mailer, &err), TC_EINVAL);
    assert_non_null(strstr(err.text, "smtp.from: "));
    close_mailer(&fx, mailer);
    free(fx.cfg.smtp_from);
    fx.cfg.smtp_from = tc_xstrdup(FROM);

    free(fx.cfg.email_link_secret);
    fx.cfg.email_link_secret = tc_xstrdup("short");
    mailer = tc_mailer_new(&fx.loop, &fx.cfg, fx.s);
    assert_int_equal(tc_mailer_start(mailer, &err), TC_EINVAL);
    assert_non_null(strstr(err.text, "email.link_secret: "));
    close_mailer(&fx, mailer);
    free(fx.cfg.email_link_secret);
    fx.cfg.email_link_secret = tc_xstrdup("");

    snprintf(dir, sizeof(dir), "%s/templates", smtp_tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/digest.html", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("<p>\n{{#incidents}}{{title}}\n</p>\n", f); /* never closed */
    fclose(f);
    free(fx.cfg.email_templates_dir);
    fx.cfg.email_templates_dir = tc_xstrdup(dir);
    mailer = tc_mailer_new(&fx.loop, &fx.cfg, fx.s);
    assert_int_not_equal(tc_mailer_start(mailer, &err), 0);
    assert_non_null(strstr(err.text, "email.templates_dir: "));
    assert_non_null(strstr(err.text, "digest.html"));
    close_mailer(&fx, mailer);

    /* Closing one never started. */
    mailer = tc_mailer_new(&fx.loop, &fx.cfg, fx.s);
    close_mailer(&fx, mailer);
    fx_fini(&fx);
}

/* Email disabled: nothing is claimed, the queue stays for a later start. */
static void
test_disabled(void **state)
{
    struct fx fx;
    (void)state;

    fx_init(&fx, "2s");
    use_smtp(&fx, NULL);
    start_mailer(&fx);
    subscribe(&fx, "es_3", "frank@example.test", true);
    publish(&fx, "e1", "inc1", 1);
    assert_true(run_until(&fx, key_known, 5000));
    run_until(&fx, never, 300);
    assert_int_equal(queue_len(&fx, "es_3"), 1);
    assert_true(due_in_ms(&fx, "es_3") <= 0); /* due, not leased */
    close_mailer(&fx, mailer);
    fx_fini(&fx);
}

/* Close with a mail in flight: abandoned at once; its lease stays, so the
 * mail is sent again after it (at-least-once). */
static void
test_close_inflight(void **state)
{
    struct fx fx;
    struct smtp_server srv;
    const char *args[] = {"--delay-rcpt", "3", NULL};
    (void)state;

    assert_true(smtp_server_start(&srv, args));
    fx_init(&fx, "2s");
    use_smtp(&fx, &srv);
    start_mailer(&fx);
    subscribe(&fx, "es_4", "grace@example.test", true);
    publish(&fx, "e1", "inc1", 1);
    /* Claimed: its due time moved to the lease's end. */
    for (int i = 0; i < 100 && due_in_ms(&fx, "es_4") <= 0; i++) {
        run_until(&fx, never, 50);
    }
    assert_true(due_in_ms(&fx, "es_4") > 30000);
    uint64_t t0 = tc_now_ms();
    close_mailer(&fx, mailer);
    assert_true(tc_now_ms() - t0 < 2500); /* before the server's 3 s */
    assert_int_equal(queue_len(&fx, "es_4"), 1);
    assert_int_equal(smtp_server_count(&srv), 0);
    fx_fini(&fx);
    smtp_server_stop(&srv);
}

static int
setup(void **state)
{
    if (!smtp_tmp_make()) {
        return -1;
    }
    return group_setup(state);
}

static int
teardown(void **state)
{
    int rc = group_teardown(state);
    return smtp_tmp_remove() == 0 ? rc : -1;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digest_delivered), cmocka_unit_test(test_confirm_mail),
        cmocka_unit_test(test_failures),         cmocka_unit_test(test_unbuildable),
        cmocka_unit_test(test_link_key),         cmocka_unit_test(test_start_errors),
        cmocka_unit_test(test_disabled),         cmocka_unit_test(test_close_inflight),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
