/* tocsin — SPDX-License-Identifier: MIT
 *
 * The webhook admin API (see admin.h): validates requests with messages that
 * name the bad field, generates ids and secrets, calls the store, and shapes
 * its answers (secrets hidden except on create and rotate). @loop main.
 */
#include "webhook/admin.h"
#include "model/filter.h"
#include "webhook/deliver.h"
#include "webhook/sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Turns the store's document into the answer. @returns new, or NULL when
 * the document has not the expected shape. */
typedef json_t *(*shape_fn)(json_t *doc);

/* One request in flight: how to answer it. */
struct call {
    tc_webhook_reply_fn reply;
    void *req;
    shape_fn shape;
    int ok_status;        /* 201 for create, 200 otherwise */
    const char *conflict; /* the message of a 409 (TC_ESTATE), if the route has one */
};

static struct call *
call_new(tc_webhook_reply_fn reply, void *req, shape_fn shape, int ok_status)
{
    struct call *c = tc_xcalloc(1, sizeof(*c));
    c->reply = reply;
    c->req = req;
    c->shape = shape;
    c->ok_status = ok_status;
    return c;
}

static void
reply_json(tc_webhook_reply_fn reply, void *req, int status, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    reply(req, status, text, strlen(text));
    free(text);
}

static void
reply_error(tc_webhook_reply_fn reply, void *req, int status, const char *code, const char *msg)
{
    json_t *doc = json_pack("{s:s,s:s}", "error", code, "message", msg);
    reply_json(reply, req, status, doc);
    json_decref(doc);
}

/* Maps a store failure to an answer. */
static void
reply_status(struct call *c, int status)
{
    if (status == TC_ENOENT) {
        reply_error(c->reply, c->req, 404, "not_found", "no webhook endpoint with this id");
    } else if (status == TC_ESTATE && c->conflict != NULL) {
        reply_error(c->reply, c->req, 409, "conflict", c->conflict);
    } else if (status == TC_EINVAL) {
        reply_error(c->reply, c->req, 400, "bad_request", "the endpoint was refused");
    } else {
        reply_error(c->reply, c->req, 503, "unavailable", "Redis is unavailable, try again");
    }
}

/* The endpoint as shown: "secrets" removed, or replaced by "secret" (the
 * newest) when show_secret. @returns new. */
static json_t *
present(json_t *endpoint, bool show_secret)
{
    json_t *e = json_deep_copy(endpoint);
    if (show_secret) {
        json_t *secrets = json_object_get(e, "secrets");
        json_object_set(e, "secret", json_array_get(secrets, 0));
    }
    json_object_del(e, "secrets");
    return e;
}

/* The answer to every route that returns a document. */
static void
on_json(void *arg, int status, const char *json, size_t len)
{
    struct call *c = arg;
    json_t *doc = status == TC_OK ? json_loadb(json, len, 0, NULL) : NULL;
    json_t *shown = doc != NULL ? c->shape(doc) : NULL;
    if (shown == NULL) {
        reply_status(c, status == TC_OK ? TC_EIO : status);
    } else {
        reply_json(c->reply, c->req, c->ok_status, shown);
    }
    json_decref(shown);
    json_decref(doc);
    free(c);
}

/* Replay: the store's document as it is. */
static json_t *
shape_as_is(json_t *doc)
{
    return json_incref(doc);
}

/* Create and rotate: the endpoint with its newest secret. */
static json_t *
shape_with_secret(json_t *doc)
{
    return present(doc, true);
}

/* List: {"webhooks":[endpoints without secrets]}. */
static json_t *
shape_list(json_t *doc)
{
    if (!json_is_array(doc)) {
        return NULL;
    }
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(doc, i, e)
    {
        json_array_append_new(out, present(e, false));
    }
    return json_pack("{s:o}", "webhooks", out);
}

/* Enable: the endpoint without secrets. */
static json_t *
shape_endpoint(json_t *doc)
{
    return present(doc, false);
}

/* Show: the store's document with the endpoint's secrets removed. */
static json_t *
shape_get(json_t *doc)
{
    json_t *out = json_copy(doc);
    json_object_set_new(out, "endpoint", present(json_object_get(doc, "endpoint"), false));
    return out;
}

/* Checks the request body and names the first bad field (see admin.h). */
int
tc_webhook_admin_validate(const json_t *body, char *msg, size_t len)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)body, key, v)
    {
        if (strcmp(key, "url") != 0 && strcmp(key, "filter") != 0 &&
            strcmp(key, "description") != 0) {
            snprintf(msg, len, "%.60s: unknown field", key);
            return TC_EINVAL;
        }
    }
    const char *url = json_string_value(json_object_get(body, "url"));
    if (url == NULL) {
        snprintf(msg, len, "url: required, a string");
        return TC_EINVAL;
    }
    if ((strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
        strlen(url) > 2048 || strpbrk(url, " \r\n\t") != NULL) {
        snprintf(msg, len, "url: must be an http:// or https:// URL of at most 2048 characters");
        return TC_EINVAL;
    }
    json_t *d = json_object_get(body, "description");
    if (d != NULL && (!json_is_string(d) || json_string_length(d) > 1024)) {
        snprintf(msg, len, "description: must be a string of at most 1024 bytes");
        return TC_EINVAL;
    }
    json_t *f = json_object_get(body, "filter");
    if (f != NULL && !json_is_null(f)) {
        struct tc_filter filter;
        struct tc_error err;
        if (!json_is_object(f) || tc_filter_from_json(f, &filter, &err) != TC_OK) {
            snprintf(msg, len, "filter.%s", json_is_object(f) ? err.text : ": must be an object");
            return TC_EINVAL;
        }
        tc_filter_fini(&filter);
    }
    return TC_OK;
}

void
tc_webhook_admin_create(struct tc_store *store, const json_t *body, tc_webhook_reply_fn reply,
                        void *req)
{
    char msg[300], secret[TC_WEBHOOK_SECRET_MAX], id[3 + 16 + 1];
    unsigned char rnd[8];
    if (body == NULL || tc_webhook_admin_validate(body, msg, sizeof(msg)) != TC_OK) {
        reply_error(reply, req, 400, "bad_request", body ? msg : "send a JSON object");
        return;
    }
    if (tc_webhook_secret_new(secret, sizeof(secret)) != TC_OK ||
        tc_random_bytes(rnd, sizeof(rnd)) != TC_OK) {
        reply_error(reply, req, 500, "no_randomness", "the kernel gave no random bytes");
        return;
    }
    snprintf(id, sizeof(id), "wh_%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3],
             rnd[4], rnd[5], rnd[6], rnd[7]);
    char *text = json_dumps(body, JSON_COMPACT);
    tc_store_wh_create(store, id, text, secret, on_json,
                       call_new(reply, req, shape_with_secret, 201));
    free(text);
}

void
tc_webhook_admin_list(struct tc_store *store, tc_webhook_reply_fn reply, void *req)
{
    tc_store_wh_list(store, on_json, call_new(reply, req, shape_list, 200));
}

void
tc_webhook_admin_get(struct tc_store *store, const char *id, tc_webhook_reply_fn reply, void *req)
{
    tc_store_wh_get(store, id, on_json, call_new(reply, req, shape_get, 200));
}

/* The answers that are a count: {"deleted":1} or {"replayed":N}. */
struct count_call {
    struct call call;
    const char *field;
};

static void
on_count(void *arg, int status, uint64_t n)
{
    struct count_call *c = arg;
    if (status != TC_OK) {
        reply_status(&c->call, status);
    } else {
        json_t *doc = json_pack("{s:I}", c->field, (json_int_t)n);
        reply_json(c->call.reply, c->call.req, 200, doc);
        json_decref(doc);
    }
    free(c);
}

static struct count_call *
count_call_new(tc_webhook_reply_fn reply, void *req, const char *field)
{
    struct count_call *c = tc_xcalloc(1, sizeof(*c));
    c->call.reply = reply;
    c->call.req = req;
    c->field = field;
    return c;
}

void
tc_webhook_admin_delete(struct tc_store *store, const char *id, tc_webhook_reply_fn reply,
                        void *req)
{
    tc_store_wh_delete(store, id, on_count, count_call_new(reply, req, "deleted"));
}

void
tc_webhook_admin_replay(struct tc_store *store, const char *id, tc_webhook_reply_fn reply,
                        void *req)
{
    struct call *c = call_new(reply, req, shape_as_is, 200);
    c->conflict = "the endpoint is disabled: POST /v1/webhooks/{id}/enable first, or its "
                  "replayed messages go straight back to the dead list";
    tc_store_wh_replay(store, id, on_json, c);
}

void
tc_webhook_admin_enable(struct tc_store *store, const char *id, tc_webhook_reply_fn reply,
                        void *req)
{
    tc_store_wh_disable(store, id, NULL, on_json, call_new(reply, req, shape_endpoint, 200));
}

/* A test message in flight. */
static void
on_test_sent(void *arg, int rc, const struct tc_webhook_test_result *r)
{
    struct call *c = arg;
    if (rc != TC_OK) {
        reply_status(c, rc);
    } else {
        json_t *doc = json_pack("{s:s,s:b,s:I,s:s?,s:I}", "webhook_id", r->webhook_id, "delivered",
                                r->error == NULL, "status", (json_int_t)r->status, "error",
                                r->error, "duration_ms", (json_int_t)r->duration_ms);
        reply_json(c->reply, c->req, 200, doc);
        json_decref(doc);
    }
    free(c);
}

void
tc_webhook_admin_test(struct tc_webhook *wh, const char *id, tc_webhook_reply_fn reply, void *req)
{
    struct call *c = call_new(reply, req, NULL, 200);
    c->conflict = "tocsind is shutting down, or the endpoint record is unusable";
    tc_webhook_send_test(wh, id, on_test_sent, c);
}

void
tc_webhook_admin_rotate(struct tc_store *store, const char *id, tc_webhook_reply_fn reply,
                        void *req)
{
    char secret[TC_WEBHOOK_SECRET_MAX];
    if (tc_webhook_secret_new(secret, sizeof(secret)) != TC_OK) {
        reply_error(reply, req, 500, "no_randomness", "the kernel gave no random bytes");
        return;
    }
    tc_store_wh_rotate(store, id, secret, on_json, call_new(reply, req, shape_with_secret, 200));
}
