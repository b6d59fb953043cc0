/* tocsin — SPDX-License-Identifier: MIT
 *
 * The HTTP routes: /healthz, /readyz, /metrics, GET /v1/incidents (from the
 * hub's memory), GET /v1/incidents/{id} (from Redis, answered when the reply
 * comes), GET /v1/history (the last ended incidents, from Redis), /v1/events
 * (SSE, in sse.c) and the status page's files (static.c).
 * Answers are JSON, errors too (the page's files aside).
 * @loop main.
 */
#include "http/http_internal.h"
#include "log/log.h"
#include "metrics/metrics.h"

#include <stdlib.h>
#include <string.h>

/* A request waiting for Redis. The connection may close first: then conn is
 * NULL and the reply only frees this. */
struct tc_http__pending {
    struct tc_http__conn *conn;
};

void
tc_http__pending_detach(struct tc_http__conn *c)
{
    if (c->pending != NULL) {
        c->pending->conn = NULL;
        c->pending = NULL;
    }
}

static void
respond_json(struct tc_http__conn *c, int status, const char *text, size_t len)
{
    tc_http__respond(c, status, "application/json", tc_http__body_from(text, len), len);
}

static void
set_etag(struct tc_http__conn *c)
{
    struct tc_hub *hub = c->srv->deps.hub;
    snprintf(c->etag, sizeof(c->etag), "\"%s:%llu\"", tc_hub_epoch(hub),
             (unsigned long long)tc_hub_seq(hub));
}

/* True (and a 304 queued) when the client already has this version. */
static bool
not_modified(struct tc_http__conn *c)
{
    char inm[sizeof(c->etag)];
    if (lws_hdr_copy(c->wsi, inm, sizeof(inm), WSI_TOKEN_HTTP_IF_NONE_MATCH) > 0 &&
        strcmp(inm, c->etag) == 0) {
        tc_http__respond(c, 304, "application/json", NULL, 0);
        return true;
    }
    return false;
}

static void
route_readyz(struct tc_http__conn *c)
{
    const struct tc_server_deps *d = &c->srv->deps;
    bool redis = tc_store_reachable(d->store);
    bool kafka = d->kafka_ready == NULL || d->kafka_ready(d->kafka_arg);
    bool loaded = tc_hub_loaded(d->hub);
    bool ok = redis && kafka && loaded && !c->srv->shutting_down;
    char text[160];
    int n = snprintf(text, sizeof(text),
                     "{\"status\":\"%s\",\"redis\":%s,\"kafka\":%s,\"history_loaded\":%s}",
                     ok ? "ready" : "not_ready", redis ? "true" : "false", kafka ? "true" : "false",
                     loaded ? "true" : "false");
    respond_json(c, ok ? 200 : 503, text, (size_t)n);
}

static void
route_metrics(struct tc_http__conn *c)
{
    size_t len;
    char *text = tc_metrics_render(&len);
    tc_http__respond(c, 200, "text/plain; version=0.0.4", tc_http__body_from(text, len), len);
    free(text);
}

static void
route_incidents(struct tc_http__conn *c)
{
    char qs[TC_HTTP_QUERY_MAX];
    struct tc_filter filter;
    struct tc_client_token tok;
    if (!tc_hub_loaded(c->srv->deps.hub)) {
        /* An empty list now would read as "no incidents" to a banner. */
        tc_http__respond_error(c, 503, "starting", "tocsind is loading its history, try again");
        return;
    }
    if (tc_http__request_filter(c, qs, sizeof(qs), &filter) != TC_OK) {
        return;
    }
    if (!tc_http__client_token(c, qs, &filter, &tok)) {
        tc_filter_fini(&filter);
        return;
    }
    tc_client_token_fini(&tok);
    set_etag(c);
    if (!not_modified(c)) {
        size_t len;
        char *text = tc_hub_active_json(c->srv->deps.hub, &filter, &len);
        respond_json(c, 200, text, len);
        free(text);
    }
    tc_filter_fini(&filter);
}

/* GET /v1/incidents/{id} waiting for Redis, with the token's components. */
struct incident_req {
    struct tc_http__pending pending; /* first: c->pending points here */
    struct tc_client_token tok;
};

/* True when a token limited to some components may read this incident: one
 * of the components it ever had (its state's or an update's) is the
 * token's, as a filter of the token's components would match it. */
static bool
incident_allowed(const struct tc_client_token *tok, const char *json, size_t len)
{
    if (tok->components == NULL) {
        return true;
    }
    json_t *doc = json_loadb(json, len, 0, NULL), *u, *comp;
    json_t *states = json_array();
    bool ok = false;
    size_t i, j;
    json_array_append(states, json_object_get(doc, "incident"));
    json_array_foreach(json_object_get(doc, "updates"), i, u)
    {
        json_array_append(states, json_object_get(u, "incident"));
    }
    json_array_foreach(states, i, u)
    {
        json_array_foreach(json_object_get(u, "components"), j, comp)
        {
            for (size_t k = 0; k < tok->ncomponents && !ok; k++) {
                ok = json_is_string(comp) &&
                     strcmp(json_string_value(comp), tok->components[k]) == 0;
            }
        }
    }
    json_decref(states);
    json_decref(doc);
    return ok;
}

static void
on_incident(void *arg, int status, const char *json, size_t len)
{
    struct incident_req *r = arg;
    struct tc_http__conn *c = r->pending.conn;
    bool allowed = status != TC_OK || incident_allowed(&r->tok, json, len);
    tc_client_token_fini(&r->tok);
    free(r);
    if (c == NULL) {
        return; /* the client left */
    }
    c->pending = NULL;
    if (!allowed) {
        c->etag[0] = '\0';
        tc_http__respond_error(c, 403, "component_not_allowed",
                               "the incident's components are not among the token's");
    } else if (status == TC_OK) {
        respond_json(c, 200, json, len);
    } else if (status == TC_ENOENT) {
        c->etag[0] = '\0';
        tc_http__respond_error(c, 404, "not_found", "no incident with this id");
    } else {
        c->etag[0] = '\0';
        tc_http__respond_error(c, 503, "unavailable", "Redis is unavailable, try again");
    }
}

static void
route_incident(struct tc_http__conn *c, const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 128 ||
        strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789._:-") != n) {
        tc_http__respond_error(c, 404, "not_found", "not a valid incident id");
        return;
    }
    struct incident_req *r = tc_xcalloc(1, sizeof(*r));
    if (!tc_http__client_token(c, NULL, NULL, &r->tok)) {
        free(r);
        return;
    }
    set_etag(c);
    if (not_modified(c)) {
        tc_client_token_fini(&r->tok);
        free(r);
        return;
    }
    r->pending.conn = c;
    c->pending = &r->pending;
    c->kind = CONN_PENDING;
    tc_store_get_incident(c->srv->deps.store, id, on_incident, r);
}

/* GET /v1/history waiting for Redis: the filter applies to the answer. */
struct history_req {
    struct tc_http__pending pending; /* first: c->pending points here */
    struct tc_filter filter;
    unsigned limit;
};

static void
on_ended(void *arg, int status, const char *json, size_t len)
{
    struct history_req *h = arg;
    struct tc_http__conn *c = h->pending.conn;
    json_t *all = c != NULL && status == TC_OK ? json_loadb(json, len, 0, NULL) : NULL;
    if (c != NULL) {
        c->pending = NULL;
        if (status != TC_OK || !json_is_array(all)) {
            c->etag[0] = '\0';
            tc_http__respond_error(c, 503, "unavailable", "Redis is unavailable, try again");
        } else {
            json_t *out = json_array(), *e;
            size_t i;
            json_array_foreach(all, i, e)
            {
                char *view = json_dumps(json_object_get(e, "match"), JSON_COMPACT);
                struct tc_match *m = view != NULL ? tc_match_parse(view, strlen(view)) : NULL;
                if (m != NULL && tc_filter_match(&h->filter, tc_match_view(m)) &&
                    json_array_size(out) < h->limit) {
                    json_array_append(out, json_object_get(e, "incident"));
                }
                tc_match_free(m);
                free(view);
            }
            json_t *doc = json_pack("{s:o}", "incidents", out);
            char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
            respond_json(c, 200, text, strlen(text));
            free(text);
            json_decref(doc);
        }
    }
    json_decref(all);
    tc_filter_fini(&h->filter);
    free(h);
}

/* The last ended incidents that match, the last ended first (limit, default
 * 20, at most 100): what a status page shows as recent history. */
static void
route_history(struct tc_http__conn *c)
{
    char qs[TC_HTTP_QUERY_MAX], lim[16];
    struct tc_client_token tok;
    struct history_req *h = tc_xcalloc(1, sizeof(*h));
    if (tc_http__request_filter(c, qs, sizeof(qs), &h->filter) != TC_OK) {
        free(h);
        return;
    }
    if (!tc_http__client_token(c, qs, &h->filter, &tok)) {
        tc_filter_fini(&h->filter);
        free(h);
        return;
    }
    tc_client_token_fini(&tok);
    h->limit = 20;
    if (tc_query_get(qs, "limit", lim, sizeof(lim)) >= 0) {
        char *end = NULL;
        unsigned long v = strtoul(lim, &end, 10);
        if (end == lim || *end != '\0' || v < 1 || v > 100) {
            tc_filter_fini(&h->filter);
            free(h);
            tc_http__respond_error(c, 400, "bad_request", "limit: an integer from 1 to 100");
            return;
        }
        h->limit = (unsigned)v;
    }
    set_etag(c);
    if (not_modified(c)) {
        tc_filter_fini(&h->filter);
        free(h);
        return;
    }
    h->pending.conn = c;
    c->pending = &h->pending;
    c->kind = CONN_PENDING;
    /* Filtering happens here, so ask for everything kept. */
    tc_store_ended(c->srv->deps.store, TC_STORE_ENDED_KEPT, on_ended, h);
}

int
tc_http__route(struct tc_http__conn *c, const char *path)
{
    if (strcmp(path, "/healthz") == 0) {
        respond_json(c, 200, "{\"status\":\"ok\"}", 15);
    } else if (strcmp(path, "/readyz") == 0) {
        route_readyz(c);
    } else if (strcmp(path, "/metrics") == 0) {
        route_metrics(c);
    } else if (strcmp(path, "/v1/incidents") == 0) {
        route_incidents(c);
    } else if (strncmp(path, "/v1/incidents/", 14) == 0) {
        route_incident(c, path + 14);
    } else if (strcmp(path, "/v1/events") == 0) {
        tc_http__sse_start(c);
    } else if (strcmp(path, "/v1/history") == 0) {
        route_history(c);
    } else if (strcmp(path, "/") == 0 || strncmp(path, "/static/", 8) == 0) {
        tc_http__static_route(c, path); /* the status page (static.c) */
    } else if (strcmp(path, "/v1/ws") == 0) {
        tc_http__respond_error(c, 426, "upgrade_required",
                               "open a WebSocket with subprotocol tocsin.v1");
    } else {
        tc_http__respond_error(c, 404, "not_found", "no such route");
    }
    return 0;
}
