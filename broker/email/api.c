/* tocsin — SPDX-License-Identifier: MIT
 *
 * The email gateway's HTTP API (see api.h): request checks that name the bad
 * field, the store calls chained per request, the public pages. Self-service
 * answers the same whatever the address's state, so the API does not tell
 * strangers who is subscribed. @loop main.
 */
#include "email/api.h"
#include "email/address.h"
#include "email/template.h"
#include "email/token.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "model/filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HTML "text/html; charset=utf-8"

/* The public pages: one template, escaped by the engine. */
static const char page_src[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
    "<title>{{title}}</title></head>\n"
    "<body style=\"font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:36rem;"
    "margin:3rem auto;padding:0 1rem;color:#1f2328;line-height:1.5\">\n"
    "<h1 style=\"font-size:1.4rem\">{{title}}</h1>\n<p>{{message}}</p>\n"
    "{{#action}}<form method=\"post\" action=\"{{action}}\">"
    "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
    "<button type=\"submit\" style=\"font-size:1rem;padding:.5rem 1rem\">{{button}}</button>"
    "</form>\n{{/action}}"
    "{{#public_url}}<p><a href=\"{{public_url}}\">Service status</a></p>\n{{/public_url}}"
    "</body></html>\n";

struct tc_email_api {
    struct tc_email_api_deps deps;
    struct tc_email_template *page;
};

/* One request through its store calls. */
struct call {
    struct tc_email_api *api;
    struct tc_admin_req *req;
    char id[TC_EMAIL_SUBSCRIBER_ID_MAX + 1];
    char address[TC_EMAIL_ADDRESS_MAX + 1];
    char *filter_json;
    char token[TC_EMAIL_TOKEN_MAX];
    bool self_service;
};

static struct call *
call_new(struct tc_email_api *api, struct tc_admin_req *req)
{
    struct call *c = tc_xcalloc(1, sizeof(*c));
    c->api = api;
    c->req = req;
    return c;
}

static void
call_free(struct call *c)
{
    free(c->filter_json);
    free(c);
}

static void
reply_json(struct tc_admin_req *req, int status, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    tc_admin_reply(req, status, text, strlen(text));
    free(text);
    json_decref(doc);
}

/* Maps a store failure to an answer. */
static void
reply_store_error(struct tc_admin_req *req, int status)
{
    if (status == TC_ENOENT) {
        tc_admin_reply_error(req, 404, "not_found", "no email subscriber with this id");
    } else {
        tc_admin_reply_error(req, 503, "unavailable", "Redis is unavailable, try again");
    }
}

/* A public page. */
static void
reply_page(struct call *c, int status, const char *title, const char *message, const char *action,
           const char *button)
{
    json_t *ctx = json_pack("{s:s,s:s,s:s?,s:s?,s:s}", "title", title, "message", message, "action",
                            action, "button", button, "public_url", c->api->deps.cfg->public_url);
    char *html = NULL;
    size_t len = 0;
    if (ctx == NULL ||
        tc_email_template_render(c->api->page, ctx, true, 65536, &html, &len, NULL) != TC_OK) {
        tc_admin_reply_error(c->req, 500, "internal", "the page could not be built");
    } else {
        tc_admin_reply_typed(c->req, status, HTML, html, len);
    }
    free(html);
    json_decref(ctx);
}

static bool
email_enabled(struct tc_email_api *api, struct tc_admin_req *req)
{
    if (api->deps.cfg->smtp_url[0] == '\0') {
        tc_admin_reply_error(req, 503, "email_disabled",
                             "email is not configured on this server (smtp.url)");
        return false;
    }
    return true;
}

int
tc_email_api_read_subscription(const json_t *body, char address[TC_EMAIL_ADDRESS_MAX + 1],
                               char **filter_json, struct tc_error *err)
{
    struct tc_filter filter = {0};
    struct tc_error why;
    const char *key;
    json_t *v;

    *filter_json = NULL;
    address[0] = '\0';
    if (!json_is_object(body)) {
        return tc_error_set(err, TC_EINVAL,
                            "send a JSON object {\"address\":...,\"filter\":{...}}");
    }
    json_object_foreach((json_t *)(uintptr_t)body, key, v)
    {
        if (strcmp(key, "address") != 0 && strcmp(key, "filter") != 0) {
            return tc_error_set(err, TC_EINVAL, "%.60s: unknown field", key);
        }
    }
    const char *addr = json_string_value(json_object_get(body, "address"));
    if (addr == NULL) {
        return tc_error_set(err, TC_EINVAL, "address: required, a string");
    }
    if (tc_email_address_check(addr, &why) != TC_OK) {
        return tc_error_set(err, TC_EINVAL, "address: %s", why.text);
    }
    snprintf(address, TC_EMAIL_ADDRESS_MAX + 1, "%s", addr);
    tc_email_address_normalize(address);
    json_t *f = json_object_get(body, "filter");
    if (f != NULL && !json_is_null(f) &&
        (!json_is_object(f) || tc_filter_from_json(f, &filter, &why) != TC_OK)) {
        address[0] = '\0';
        return tc_error_set(err, TC_EINVAL, "filter%s%s", json_is_object(f) ? "." : ": ",
                            json_is_object(f) ? why.text : "must be an object");
    }
    json_t *fj = tc_filter_to_json(&filter);
    *filter_json = json_dumps(fj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(fj);
    tc_filter_fini(&filter);
    return TC_OK;
}

/* Checks {"address","filter"} into c (normalised address, compact filter)
 * and gives it a new id. On failure answers 400 naming the field and
 * returns false. */
static bool
read_subscription(struct call *c, const json_t *body)
{
    struct tc_error err;
    if (tc_email_api_read_subscription(body, c->address, &c->filter_json, &err) != TC_OK) {
        tc_admin_reply_error(c->req, 400, "bad_request", err.text);
        return false;
    }
    unsigned char rnd[8];
    if (tc_random_bytes(rnd, sizeof(rnd)) != TC_OK) {
        tc_admin_reply_error(c->req, 500, "no_randomness", "the kernel gave no random bytes");
        return false;
    }
    snprintf(c->id, sizeof(c->id), "em_%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
             rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    return true;
}

/* ---- admin ---- */

static void
on_admin_created(void *arg, int status, const char *json, size_t len)
{
    struct call *c = arg;
    json_t *doc = status == TC_OK ? json_loadb(json, len, 0, NULL) : NULL;
    json_t *sub = json_object_get(doc, "subscriber");
    if (sub == NULL) {
        reply_store_error(c->req, status == TC_OK ? TC_EIO : status);
    } else if (!json_is_true(json_object_get(doc, "created"))) {
        reply_json(c->req, 409,
                   json_pack("{s:s,s:s,s:O}", "error", "conflict", "message",
                             "this address is already subscribed", "subscriber", sub));
    } else {
        tc_info("email", "subscriber added", TC_S("subscriber", c->id),
                TC_S("address", c->address));
        reply_json(c->req, 201, json_incref(sub));
    }
    json_decref(doc);
    call_free(c);
}

static void
admin_create(void *arg, struct tc_admin_req *req, const char *const *p, const json_t *body)
{
    TC_UNUSED(p);
    if (!email_enabled(arg, req)) {
        return; /* nothing would send what the subscriber's queue collects */
    }
    struct call *c = call_new(arg, req);
    if (!read_subscription(c, body)) {
        call_free(c);
        return;
    }
    tc_store_em_create(c->api->deps.store, c->id, c->address, c->filter_json, true, "admin",
                       on_admin_created, c);
}

static void
on_listed(void *arg, int status, const char *json, size_t len)
{
    struct call *c = arg;
    json_t *doc = status == TC_OK ? json_loadb(json, len, 0, NULL) : NULL;
    if (!json_is_array(doc)) {
        reply_store_error(c->req, status == TC_OK ? TC_EIO : status);
        json_decref(doc);
    } else {
        reply_json(c->req, 200, json_pack("{s:o}", "subscribers", doc));
    }
    call_free(c);
}

static void
admin_list(void *arg, struct tc_admin_req *req, const char *const *p, const json_t *body)
{
    TC_UNUSED(p);
    TC_UNUSED(body);
    struct call *c = call_new(arg, req);
    tc_store_em_list(c->api->deps.store, on_listed, c);
}

static void
on_got(void *arg, int status, const char *json, size_t len)
{
    struct call *c = arg;
    if (status != TC_OK) {
        reply_store_error(c->req, status);
    } else {
        tc_admin_reply(c->req, 200, json, len);
    }
    call_free(c);
}

static void
admin_get(void *arg, struct tc_admin_req *req, const char *const *p, const json_t *body)
{
    TC_UNUSED(body);
    struct call *c = call_new(arg, req);
    tc_store_em_get(c->api->deps.store, p[0], on_got, c);
}

static void
on_deleted(void *arg, int status, uint64_t n)
{
    struct call *c = arg;
    if (status != TC_OK) {
        reply_store_error(c->req, status);
    } else {
        reply_json(c->req, 200, json_pack("{s:I}", "deleted", (json_int_t)n));
    }
    call_free(c);
}

static void
admin_delete(void *arg, struct tc_admin_req *req, const char *const *p, const json_t *body)
{
    TC_UNUSED(body);
    struct call *c = call_new(arg, req);
    tc_store_em_delete(c->api->deps.store, p[0], on_deleted, c);
}

/* ---- self-service subscription ---- */

/* The one answer to every accepted request, whatever the address's state. */
static void
reply_accepted(struct call *c)
{
    reply_json(c->req, 202,
               json_pack("{s:s,s:s}", "status", "confirmation_sent", "message",
                         "if this address is not subscribed yet, a confirmation mail is on its "
                         "way: follow its link to start getting updates"));
    call_free(c);
}

static void
on_resent(void *arg, int status, uint64_t n)
{
    TC_UNUSED(n);
    struct call *c = arg;
    if (status != TC_OK && status != TC_ENOENT) {
        reply_store_error(c->req, status);
        call_free(c);
        return;
    }
    reply_accepted(c);
}

static void
on_self_created(void *arg, int status, const char *json, size_t len)
{
    struct call *c = arg;
    json_t *doc = status == TC_OK ? json_loadb(json, len, 0, NULL) : NULL;
    json_t *sub = json_object_get(doc, "subscriber");
    if (sub == NULL) {
        reply_store_error(c->req, status == TC_OK ? TC_EIO : status);
        call_free(c);
    } else if (json_is_true(json_object_get(doc, "created"))) {
        tc_info("email", "self-service subscription, confirmation queued",
                TC_S("subscriber", c->id), TC_S("address", c->address));
        reply_accepted(c);
    } else if (!json_is_true(json_object_get(sub, "confirmed"))) {
        const char *id = json_string_value(json_object_get(sub, "id"));
        snprintf(c->id, sizeof(c->id), "%s", id != NULL ? id : "");
        tc_store_em_resend_confirm(c->api->deps.store, c->id, on_resent, c);
    } else {
        reply_accepted(c); /* already confirmed: nothing to send */
    }
    json_decref(doc);
}

static void
on_address_rate(void *arg, int status, uint64_t n)
{
    struct call *c = arg;
    const struct tc_config *cfg = c->api->deps.cfg;
    if (status != TC_OK) {
        reply_store_error(c->req, status);
        call_free(c);
    } else if (n > (uint64_t)cfg->email_rate_per_address) {
        tc_metrics_inc(TC_M_EMAIL_SUBSCRIBE_REFUSED);
        tc_warn("email", "subscription refused: too many for this address today",
                TC_S("address", c->address));
        tc_admin_reply_error(c->req, 429, "rate_limited",
                             "too many subscription requests for this address today; "
                             "try again tomorrow");
        call_free(c);
    } else {
        tc_store_em_create(c->api->deps.store, c->id, c->address, c->filter_json, false, "self",
                           on_self_created, c);
    }
}

static void
on_ip_rate(void *arg, int status, uint64_t n)
{
    struct call *c = arg;
    const struct tc_config *cfg = c->api->deps.cfg;
    char bucket[TC_EMAIL_ADDRESS_MAX + 8];
    if (status != TC_OK) {
        reply_store_error(c->req, status);
        call_free(c);
    } else if (n > (uint64_t)cfg->email_rate_per_ip) {
        char ip[64];
        tc_admin_req_peer(c->req, ip, sizeof(ip));
        tc_metrics_inc(TC_M_EMAIL_SUBSCRIBE_REFUSED);
        tc_warn("email", "subscription refused: too many from this address this hour",
                TC_S("ip", ip));
        tc_admin_reply_error(c->req, 429, "rate_limited",
                             "too many subscription requests from your network; try again "
                             "in an hour");
        call_free(c);
    } else {
        snprintf(bucket, sizeof(bucket), "addr:%s", c->address);
        tc_store_em_rate_hit(c->api->deps.store, bucket, 86400, on_address_rate, c);
    }
}

static void
subscribe(void *arg, struct tc_admin_req *req, const char *const *p, const json_t *body)
{
    TC_UNUSED(p);
    struct tc_email_api *api = arg;
    if (!email_enabled(api, req)) {
        return;
    }
    struct call *c = call_new(api, req);
    c->self_service = true;
    if (!read_subscription(c, body)) {
        call_free(c);
        return;
    }
    char ip[64], bucket[80];
    tc_admin_req_peer(req, ip, sizeof(ip));
    snprintf(bucket, sizeof(bucket), "ip:%s", ip);
    tc_store_em_rate_hit(api->deps.store, bucket, 3600, on_ip_rate, c);
}

/* ---- links: confirm and unsubscribe ---- */

/* Reads ?token= and verifies it for purpose into claims; on failure answers
 * a page and returns false. */
static bool
read_token(struct call *c, enum tc_email_token_purpose purpose,
           struct tc_email_token_claims *claims)
{
    const unsigned char *key;
    size_t keylen;
    struct tc_error err;
    if (!c->api->deps.link_key(c->api->deps.link_key_arg, &key, &keylen)) {
        reply_page(c, 503, "Try again in a moment",
                   "The service is starting and cannot check links yet.", NULL, NULL);
        return false;
    }
    if (tc_admin_req_query(c->req, "token", c->token, sizeof(c->token)) < 0) {
        reply_page(c, 400, "This link is not complete",
                   "The link has no valid token. Copy the whole link from the mail.", NULL, NULL);
        return false;
    }
    int rc =
        tc_email_token_verify(key, keylen, purpose, c->token, (int64_t)time(NULL), claims, &err);
    if (rc == TC_ETIMEDOUT) {
        reply_page(c, 410, "This link has expired",
                   "Confirmation links work for a limited time. Subscribe again to get a new "
                   "one.",
                   NULL, NULL);
        return false;
    }
    if (rc != TC_OK) {
        tc_info("email", "link refused", TC_S("purpose", tc_email_token_purpose_name(purpose)),
                TC_S("reason", err.text));
        reply_page(c, 400, "This link is not valid",
                   "The link was changed or is not from us. Copy the whole link from the mail.",
                   NULL, NULL);
        return false;
    }
    snprintf(c->id, sizeof(c->id), "%s", claims->subscriber_id);
    snprintf(c->address, sizeof(c->address), "%s", claims->address);
    return true;
}

/* True when the store's subscriber document is the one the token names. */
static bool
same_subscriber(struct call *c, const char *json, size_t len, bool *confirmed)
{
    json_t *doc = json_loadb(json, len, 0, NULL);
    json_t *sub = json_object_get(doc, "subscriber");
    const char *addr = json_string_value(json_object_get(sub, "address"));
    bool same = addr != NULL && strcmp(addr, c->address) == 0;
    if (confirmed != NULL) {
        *confirmed = json_is_true(json_object_get(sub, "confirmed"));
    }
    json_decref(doc);
    return same;
}

static void
on_confirmed(void *arg, int status, const char *json, size_t len)
{
    TC_UNUSED(json);
    TC_UNUSED(len);
    struct call *c = arg;
    if (status == TC_OK) {
        tc_info("email", "subscription confirmed", TC_S("subscriber", c->id),
                TC_S("address", c->address));
        reply_page(c, 200, "Subscription confirmed",
                   "You will get an email when the service has an incident.", NULL, NULL);
    } else if (status == TC_ENOENT) {
        reply_page(c, 404, "No such subscription",
                   "This subscription was removed. Subscribe again if you want updates.", NULL,
                   NULL);
    } else {
        reply_page(c, 503, "Try again in a moment", "The service could not save this now.", NULL,
                   NULL);
    }
    call_free(c);
}

static void
on_confirm_lookup(void *arg, int status, const char *json, size_t len)
{
    struct call *c = arg;
    if (status == TC_OK && !same_subscriber(c, json, len, NULL)) {
        status = TC_ENOENT; /* the id now belongs to another address */
    }
    if (status != TC_OK) {
        on_confirmed(c, status, NULL, 0);
        return;
    }
    tc_store_em_confirm(c->api->deps.store, c->id, on_confirmed, c);
}

/* Verifies ?token= for purpose, then reads the subscriber it names into next. */
static void
with_token_subscriber(void *arg, struct tc_admin_req *req, enum tc_email_token_purpose purpose,
                      tc_store_em_json_cb next)
{
    struct call *c = call_new(arg, req);
    struct tc_email_token_claims claims;
    if (!read_token(c, purpose, &claims)) {
        call_free(c);
        return;
    }
    tc_store_em_get(c->api->deps.store, c->id, next, c);
}

static void
confirm(void *arg, struct tc_admin_req *req, const char *const *p, const json_t *body)
{
    TC_UNUSED(p);
    TC_UNUSED(body);
    with_token_subscriber(arg, req, TC_EMAIL_TOKEN_CONFIRM, on_confirm_lookup);
}

static void
on_unsubscribed(void *arg, int status, uint64_t n)
{
    TC_UNUSED(n);
    struct call *c = arg;
    if (status == TC_OK || status == TC_ENOENT) {
        if (status == TC_OK) {
            tc_info("email", "unsubscribed", TC_S("subscriber", c->id),
                    TC_S("address", c->address));
        }
        /* Gone already is success too: mail clients may POST twice. */
        reply_page(c, 200, "You are unsubscribed", "You will not get status emails anymore.", NULL,
                   NULL);
    } else {
        reply_page(c, 503, "Try again in a moment", "The service could not unsubscribe you now.",
                   NULL, NULL);
    }
    call_free(c);
}

static void
on_unsubscribe_lookup(void *arg, int status, const char *json, size_t len)
{
    struct call *c = arg;
    if (status == TC_OK && !same_subscriber(c, json, len, NULL)) {
        status = TC_ENOENT;
    }
    if (status != TC_OK) {
        on_unsubscribed(c, status, 0);
        return;
    }
    tc_store_em_delete(c->api->deps.store, c->id, on_unsubscribed, c);
}

static void
unsubscribe_post(void *arg, struct tc_admin_req *req, const char *const *p, const json_t *body)
{
    TC_UNUSED(p);
    TC_UNUSED(body);
    with_token_subscriber(arg, req, TC_EMAIL_TOKEN_UNSUBSCRIBE, on_unsubscribe_lookup);
}

/* GET shows a button and changes nothing: link scanners that follow every
 * link in a mail must not unsubscribe anyone. */
static void
unsubscribe_page(void *arg, struct tc_admin_req *req, const char *const *p, const json_t *body)
{
    TC_UNUSED(p);
    TC_UNUSED(body);
    struct call *c = call_new(arg, req);
    struct tc_email_token_claims claims;
    if (read_token(c, TC_EMAIL_TOKEN_UNSUBSCRIBE, &claims)) {
        char action[TC_EMAIL_TOKEN_MAX + 16], message[TC_EMAIL_ADDRESS_MAX + 64];
        /* A query-only reference posts back to the page's own path, which
         * is the link's: right also when public_url has a path (a proxy
         * serving tocsind under /status), where "/v1/unsubscribe" is not. */
        snprintf(action, sizeof(action), "?token=%s", c->token);
        snprintf(message, sizeof(message), "Stop sending status emails to %s?", c->address);
        reply_page(c, 200, "Unsubscribe", message, action, "Unsubscribe");
    }
    call_free(c);
}

struct tc_email_api *
tc_email_api_new(struct tc_server *srv, const struct tc_email_api_deps *deps)
{
    struct tc_email_api *api = tc_xcalloc(1, sizeof(*api));
    api->deps = *deps;
    if (tc_email_template_compile("page.html", page_src, sizeof(page_src) - 1, &api->page, NULL) !=
        TC_OK) {
        abort(); /* a built-in constant: a test catches it */
    }
    static const struct {
        bool open;
        enum tc_http_method method;
        const char *pattern;
        tc_admin_handler handler;
    } routes[] = {
        {false, TC_HTTP_POST, "/v1/email-subscribers", admin_create},
        {false, TC_HTTP_GET, "/v1/email-subscribers", admin_list},
        {false, TC_HTTP_GET, "/v1/email-subscribers/{}", admin_get},
        {false, TC_HTTP_DELETE, "/v1/email-subscribers/{}", admin_delete},
        {true, TC_HTTP_POST, "/v1/subscribe", subscribe},
        {true, TC_HTTP_GET, "/v1/confirm", confirm},
        {true, TC_HTTP_GET, "/v1/unsubscribe", unsubscribe_page},
        {true, TC_HTTP_POST, "/v1/unsubscribe", unsubscribe_post},
    };
    for (size_t i = 0; i < TC_ARRAY_SIZE(routes); i++) {
        int rc = routes[i].open ? tc_server_public_route(srv, routes[i].method, routes[i].pattern,
                                                         routes[i].handler, api)
                                : tc_server_admin_route(srv, routes[i].method, routes[i].pattern,
                                                        routes[i].handler, api);
        if (rc != TC_OK) {
            tc_email_api_free(api);
            return NULL;
        }
    }
    return api;
}

void
tc_email_api_free(struct tc_email_api *api)
{
    if (api != NULL) {
        tc_email_template_free(api->page);
        free(api);
    }
}
