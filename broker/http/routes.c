/* tocsin — SPDX-License-Identifier: MIT
 *
 * The HTTP routes: /healthz, /readyz, /metrics, GET /v1/incidents (from the
 * hub's memory), GET /v1/incidents/{id} (from Redis, answered when the reply
 * comes), /v1/events (SSE, in sse.c) and the status page's files (static.c).
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
    char qs[2048];
    struct tc_filter filter;
    if (!tc_hub_loaded(c->srv->deps.hub)) {
        /* An empty list now would read as "no incidents" to a banner. */
        tc_http__respond_error(c, 503, "starting", "tocsind is loading its history, try again");
        return;
    }
    if (tc_http__request_filter(c, qs, sizeof(qs), &filter) != TC_OK) {
        return;
    }
    set_etag(c);
    if (!not_modified(c)) {
        size_t len;
        char *text = tc_hub_active_json(c->srv->deps.hub, &filter, &len);
        respond_json(c, 200, text, len);
        free(text);
    }
    tc_filter_fini(&filter);
}

static void
on_incident(void *arg, int status, const char *json, size_t len)
{
    struct tc_http__pending *p = arg;
    struct tc_http__conn *c = p->conn;
    free(p);
    if (c == NULL) {
        return; /* the client left */
    }
    c->pending = NULL;
    if (status == TC_OK) {
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
    set_etag(c);
    if (not_modified(c)) {
        return;
    }
    struct tc_http__pending *p = tc_xcalloc(1, sizeof(*p));
    p->conn = c;
    c->pending = p;
    c->kind = CONN_PENDING;
    tc_store_get_incident(c->srv->deps.store, id, on_incident, p);
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
