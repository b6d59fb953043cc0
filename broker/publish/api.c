/* tocsin — SPDX-License-Identifier: MIT
 *
 * The publishing API (see api.h). One request: read the incident's current
 * state from Redis, build and validate the event, produce it, then ask Redis
 * every VERDICT_EVERY_MS what became of its event_id until VERDICT_WAIT_MS.
 * @loop main.
 */
#include "publish/api.h"
#include "log/log.h"
#include "publish/request.h"
#include "store/publish.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The event reaches the store through Kafka and the consumer: normally
 * within ~100 ms (the consumer's fetch wait, kafka.fetch_wait, is 50 ms by
 * default). */
#define VERDICT_EVERY_MS 25
#define VERDICT_WAIT_MS  3000

struct tc_publish_api {
    struct tc_store *store;
    struct tc_producer *producer;
    uv_loop_t *loop;
    struct pub *waiting; /* requests asking for their verdict */
    bool closing;
};

/* One publish request. */
struct pub {
    struct tc_publish_api *api;
    struct tc_admin_req *req;
    struct tc_publish_request r; /* the checked request */
    json_t *event;               /* the event produced */
    bool open;                   /* POST /v1/incidents (else an update) */
    uv_timer_t timer;            /* asks for the verdict */
    uint64_t deadline_ms;
    bool asking; /* a verdict request is in flight */
    bool timer_open;
    struct pub *prev, *next; /* in api->waiting */
};

static void
pub_free(struct pub *p)
{
    tc_publish_request_fini(&p->r);
    json_decref(p->event);
    free(p);
}

static void
on_timer_closed(uv_handle_t *h)
{
    pub_free(h->data);
}

/* Ends a request: unlinks it and frees it (after its timer closed). */
static void
pub_done(struct pub *p)
{
    if (p->prev != NULL || p->next != NULL || p->api->waiting == p) {
        if (p->prev != NULL) {
            p->prev->next = p->next;
        } else {
            p->api->waiting = p->next;
        }
        if (p->next != NULL) {
            p->next->prev = p->prev;
        }
        p->prev = p->next = NULL;
    }
    if (p->timer_open) {
        p->timer_open = false;
        uv_close((uv_handle_t *)&p->timer, on_timer_closed);
    } else {
        pub_free(p);
    }
}

static void
reply_json(struct tc_admin_req *req, int status, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    tc_admin_reply(req, status, text, strlen(text));
    free(text);
    json_decref(doc);
}

static void
reply_accepted(struct pub *p, uint64_t seq, bool applied)
{
    json_t *doc = json_pack("{s:O,s:b}", "event", p->event, "applied", applied);
    if (applied) {
        json_object_set_new(doc, "seq", json_integer((json_int_t)seq));
    }
    tc_info("publish", applied ? "event published and applied" : "event published",
            TC_S("incident", p->r.incident_id),
            TC_S("event_id", json_string_value(json_object_get(p->event, "event_id"))),
            TC_I("version", json_integer_value(json_object_get(p->event, "version"))),
            TC_U("seq", seq));
    reply_json(p->req, 202, doc);
}

/* ---- the verdict ---- */

static void ask_verdict(uv_timer_t *t);

static void
on_verdict(void *arg, int status, uint64_t seq)
{
    struct pub *p = arg;
    p->asking = false;
    if (p->req == NULL) {
        pub_done(p); /* answered at close meanwhile */
        return;
    }
    if (status == TC_OK && seq == 0) {
        json_int_t v = json_integer_value(json_object_get(p->event, "version"));
        char msg[300];
        snprintf(msg, sizeof(msg),
                 "another publisher's event took version %lld of %s first; read the incident "
                 "and post again",
                 (long long)v, p->r.incident_id);
        tc_warn("publish", "version race: event stale", TC_S("incident", p->r.incident_id),
                TC_I("version", v));
        tc_admin_reply_error(p->req, 409, "version_race", msg);
    } else if (status == TC_OK) {
        reply_accepted(p, seq, true);
    } else if (tc_now_ms() < p->deadline_ms && !p->api->closing) {
        uv_timer_start(&p->timer, ask_verdict, VERDICT_EVERY_MS, 0);
        return; /* not applied yet, or Redis is away for a moment */
    } else {
        reply_accepted(p, 0, false);
    }
    p->req = NULL;
    pub_done(p);
}

static void
ask_verdict(uv_timer_t *t)
{
    struct pub *p = t->data;
    p->asking = true;
    tc_store_event_outcome(p->api->store, json_string_value(json_object_get(p->event, "event_id")),
                           on_verdict, p);
}

static void
on_produced(void *arg, int status, int32_t partition, int64_t offset, const char *error)
{
    struct pub *p = arg;
    if (status != TC_OK) {
        char msg[300];
        snprintf(msg, sizeof(msg), "Kafka did not take the event (%s); nothing was published",
                 error != NULL ? error : "unknown error");
        tc_err("publish", "produce failed", TC_S("incident", p->r.incident_id),
               TC_S("error", error));
        tc_admin_reply_error(p->req, 503, "kafka_unavailable", msg);
        p->req = NULL;
        pub_done(p);
        return;
    }
    tc_debug("publish", "event in Kafka", TC_S("incident", p->r.incident_id),
             TC_I("partition", partition), TC_I("offset", offset));
    if (p->api->closing) {
        reply_accepted(p, 0, false);
        p->req = NULL;
        pub_done(p);
        return;
    }
    struct tc_publish_api *api = p->api;
    p->next = api->waiting;
    if (api->waiting != NULL) {
        api->waiting->prev = p;
    }
    api->waiting = p;
    uv_timer_init(api->loop, &p->timer);
    p->timer.data = p;
    p->timer_open = true;
    p->deadline_ms = tc_now_ms() + VERDICT_WAIT_MS;
    uv_timer_start(&p->timer, ask_verdict, VERDICT_EVERY_MS, 0);
}

/* ---- building the event ---- */

static void
new_event_id(char out[40])
{
    unsigned char r[16];
    tc_random_bytes(r, sizeof(r));
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* a version 4 UUID */
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
}

/* Builds, validates and produces the event from base (the current state, or
 * an empty object) overlaid with the request's fields. */
static void
publish(struct pub *p, json_t *base, int64_t current_version)
{
    char event_id[40], now[32], msg[320];
    struct tc_error err;
    int64_t version = current_version + 1;
    if (p->r.want_version != 0 && p->r.want_version != version) {
        snprintf(msg, sizeof(msg),
                 "version: the incident is at version %lld, so this update is %lld",
                 (long long)current_version, (long long)version);
        tc_admin_reply_error(p->req, 409, "version_conflict", msg);
        p->req = NULL;
        pub_done(p);
        json_decref(base);
        return;
    }
    new_event_id(event_id);
    tc_rfc3339_now(now);
    if (tc_publish_build(base, &p->r, version, event_id, now, &err) != TC_OK) {
        tc_admin_reply_error(p->req, 400, "bad_request", err.text);
        p->req = NULL;
        pub_done(p);
        json_decref(base);
        return;
    }
    p->event = base;
    char *text = json_dumps(base, JSON_COMPACT | JSON_PRESERVE_ORDER);
    tc_producer_send(p->api->producer, p->r.incident_id, text, strlen(text), on_produced, p);
    free(text);
}

static void
on_current(void *arg, int status, const char *json, size_t len)
{
    struct pub *p = arg;
    if (status != TC_OK && status != TC_ENOENT) {
        tc_admin_reply_error(p->req, 503, "unavailable", "Redis is unavailable, try again");
        p->req = NULL;
        pub_done(p);
        return;
    }
    json_t *doc = status == TC_OK ? json_loadb(json, len, 0, NULL) : NULL;
    json_t *state = json_object_get(doc, "incident");
    int64_t version = json_integer_value(json_object_get(state, "version"));
    const char *st = json_string_value(json_object_get(state, "status"));
    bool ended = st != NULL && (strcmp(st, "resolved") == 0 || strcmp(st, "completed") == 0);
    if (p->open && state != NULL && !ended) {
        char msg[400];
        snprintf(msg, sizeof(msg), "incident %s is already open; POST /v1/incidents/%s/updates",
                 p->r.incident_id, p->r.incident_id);
        tc_admin_reply_error(p->req, 409, "already_open", msg);
        p->req = NULL;
        pub_done(p);
    } else if (!p->open && state == NULL) {
        tc_admin_reply_error(p->req, 404, "not_found", "no incident with this id");
        p->req = NULL;
        pub_done(p);
    } else {
        /* An opening starts from nothing (a reopened incident too: its old
         * fields do not leak into the new one); an update from the state. */
        publish(p, p->open || state == NULL ? json_object() : json_deep_copy(state), version);
    }
    json_decref(doc);
}

/* Checks the request (path_id NULL for an opening); answers 400 and
 * returns NULL on failure. */
static struct pub *
pub_new(void *arg, struct tc_admin_req *req, const json_t *body, const char *path_id)
{
    struct tc_error err;
    struct pub *p = tc_xcalloc(1, sizeof(*p));
    if (tc_publish_request_read(body, path_id, &p->r, &err) != TC_OK) {
        tc_admin_reply_error(req, 400, "bad_request", err.text);
        free(p);
        return NULL;
    }
    p->api = arg;
    p->req = req;
    p->open = path_id == NULL;
    return p;
}

static void
open_incident(void *arg, struct tc_admin_req *req, const char *const *params, const json_t *body)
{
    TC_UNUSED(params);
    struct pub *p = pub_new(arg, req, body, NULL);
    if (p == NULL) {
        return;
    }
    if (p->r.incident_id[0] == '\0') {
        /* inc-<date>-<random>: readable in logs, unique enough. */
        unsigned char r[4];
        tc_random_bytes(r, sizeof(r));
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        snprintf(p->r.incident_id, sizeof(p->r.incident_id), "inc-%04d%02d%02d-%02x%02x%02x%02x",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, r[0], r[1], r[2], r[3]);
    }
    tc_store_get_incident(p->api->store, p->r.incident_id, on_current, p);
}

static void
post_update(void *arg, struct tc_admin_req *req, const char *const *params, const json_t *body)
{
    struct pub *p = pub_new(arg, req, body, params[0]);
    if (p == NULL) {
        return;
    }
    tc_store_get_incident(p->api->store, p->r.incident_id, on_current, p);
}

struct tc_publish_api *
tc_publish_api_new(struct tc_server *srv, struct tc_store *store, struct tc_producer *producer,
                   uv_loop_t *loop)
{
    struct tc_publish_api *api = tc_xcalloc(1, sizeof(*api));
    api->store = store;
    api->producer = producer;
    api->loop = loop;
    if (tc_server_admin_route(srv, TC_HTTP_POST, "/v1/incidents", open_incident, api) != TC_OK ||
        tc_server_admin_route(srv, TC_HTTP_POST, "/v1/incidents/{}/updates", post_update, api) !=
            TC_OK) {
        free(api);
        return NULL;
    }
    return api;
}

void
tc_publish_api_close(struct tc_publish_api *api)
{
    api->closing = true;
    while (api->waiting != NULL) {
        struct pub *p = api->waiting;
        uv_timer_stop(&p->timer);
        if (p->req != NULL) {
            reply_accepted(p, 0, false);
            p->req = NULL;
        }
        if (p->asking) {
            /* Its verdict answers into p: unlink now, free then. */
            api->waiting = p->next;
            if (p->next != NULL) {
                p->next->prev = NULL;
            }
            p->prev = p->next = NULL;
            continue;
        }
        pub_done(p);
    }
}

void
tc_publish_api_free(struct tc_publish_api *api)
{
    free(api);
}
