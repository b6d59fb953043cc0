/* tocsin — SPDX-License-Identifier: MIT
 *
 * The admin API's front door: which routes need the bearer token, the
 * constant-time token check, and request bodies read up to http.max_body.
 * The routes themselves are in the table at the bottom; each gets the whole
 * body as parsed JSON. @loop main.
 */
#include "http/http_internal.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "model/filter.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct tc_admin_req {
    struct tc_http__conn *conn; /* NULL once the client left */
};

static bool
has_prefix(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static int match_route(const char *pattern, const char *path, char params[][129]);

/* The public route whose pattern path matches (any method), or NULL. */
static const struct tc_http__admin_route *
open_route(const struct tc_server *srv, const char *path)
{
    char params[TC_ADMIN_MAX_PARAMS][129];
    for (size_t i = 0; i < srv->nadmin_routes; i++) {
        if (srv->admin_routes[i].open &&
            match_route(srv->admin_routes[i].pattern, path, params) >= 0) {
            return &srv->admin_routes[i];
        }
    }
    return NULL;
}

bool
tc_http__is_admin_route(const struct tc_server *srv, int method, const char *path)
{
    return has_prefix(path, "/v1/webhooks") || has_prefix(path, "/v1/email-subscribers") ||
           (method != TC_HTTP_GET && has_prefix(path, "/v1/incidents")) ||
           open_route(srv, path) != NULL;
}

/* "Bearer <token>" with the configured token, compared in constant time. */
static bool
authorized(struct tc_http__conn *c)
{
    char auth[1100];
    if (lws_hdr_copy(c->wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION) <= 0 ||
        strncasecmp(auth, "Bearer ", 7) != 0) {
        return false;
    }
    return tc_str_equal_ct(auth + 7, c->srv->cfg->admin_token);
}

static void dispatch(struct tc_http__conn *c, json_t *body);

/* A form body: what a mail client's one-click unsubscribe POST sends. */
static bool
form_body(struct tc_http__conn *c)
{
    char ct[128];
    if (lws_hdr_copy(c->wsi, ct, sizeof(ct), WSI_TOKEN_HTTP_CONTENT_TYPE) <= 0) {
        return false;
    }
    return strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0 ||
           strncasecmp(ct, "multipart/form-data", 19) == 0;
}

int
tc_http__admin_begin(struct tc_http__conn *c)
{
    const struct tc_config *cfg = c->srv->cfg;
    /* Whatever the answer, a body we did not read may follow: unless we read
     * it all, the connection closes after the answer. */
    c->close_after = true;
    if (open_route(c->srv, c->path) != NULL) {
        /* A public route: no token. */
    } else if (cfg->admin_token[0] == '\0') {
        tc_http__respond_error(c, 404, "admin_disabled",
                               "the admin API is disabled: set admin.token");
        return 0;
    } else if (!authorized(c)) {
        tc_warn("http", "admin request without a valid token", TC_S("path", c->path));
        tc_http__respond_error(c, 401, "unauthorized", "send Authorization: Bearer <admin token>");
        return 0;
    }
    if (c->method == TC_HTTP_GET || c->method == TC_HTTP_DELETE) {
        c->close_after = false;
        dispatch(c, NULL);
        return 0;
    }
    char cl[32];
    if (lws_hdr_copy(c->wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0) {
        if (lws_hdr_total_length(c->wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
            tc_http__respond_error(c, 411, "length_required", "send Content-Length");
            return 0;
        }
        snprintf(cl, sizeof(cl), "0"); /* no body at all */
    }
    char *end = NULL;
    unsigned long long n = strtoull(cl, &end, 10);
    if (end == cl || *end != '\0' || cl[0] == '-') {
        tc_http__respond_error(c, 400, "bad_request", "Content-Length is not a number");
        return 0;
    }
    if (n > (unsigned long long)cfg->http_max_body) {
        /* The bound: answered before a byte of the body is read. */
        tc_http__respond_error(c, 413, "body_too_large", "the body is over http.max_body");
        return 0;
    }
    if (n == 0) {
        c->close_after = false;
        tc_http__admin_complete(c);
        return 0;
    }
    c->req_expect = (size_t)n;
    c->req_len = 0;
    c->req_body = tc_xmalloc(c->req_expect);
    c->reading_body = true;
    return 0;
}

int
tc_http__admin_body(struct tc_http__conn *c, const void *in, size_t len)
{
    if (len > c->req_expect - c->req_len) {
        tc_warn("http", "request body longer than its Content-Length", TC_S("path", c->path));
        return -1;
    }
    memcpy(c->req_body + c->req_len, in, len);
    c->req_len += len;
    return 0;
}

void
tc_http__admin_complete(struct tc_http__conn *c)
{
    json_error_t jerr;
    json_t *body = NULL;
    c->reading_body = false;
    if (c->req_len != c->req_expect) {
        tc_http__respond_error(c, 400, "bad_request", "the body is shorter than Content-Length");
        goto out;
    }
    c->close_after = false;
    if (c->req_len == 0 || (open_route(c->srv, c->path) != NULL && form_body(c))) {
        dispatch(c, NULL); /* a POST without a body (replay), or a public form post */
        goto out;
    }
    body = json_loadb(c->req_body ? c->req_body : "", c->req_len, JSON_REJECT_DUPLICATES, &jerr);
    if (body == NULL || !json_is_object(body)) {
        char msg[200];
        snprintf(msg, sizeof(msg), "the body must be a JSON object%s%s", body ? "" : ": ",
                 body ? "" : jerr.text);
        tc_http__respond_error(c, 400, "bad_json", msg);
        goto out;
    }
    dispatch(c, body);
out:
    json_decref(body);
    free(c->req_body);
    c->req_body = NULL;
    c->req_len = c->req_expect = 0;
}

void
tc_http__admin_fini(struct tc_http__conn *c)
{
    if (c->admin_req != NULL) {
        c->admin_req->conn = NULL; /* its handler answers into the void */
        c->admin_req = NULL;
    }
    free(c->req_body);
    c->req_body = NULL;
    c->req_len = c->req_expect = 0;
    c->reading_body = false;
}

static int
add_route(struct tc_server *srv, enum tc_http_method method, const char *pattern,
          tc_admin_handler handler, void *arg, bool open)
{
    if (srv->nadmin_routes == TC_ARRAY_SIZE(srv->admin_routes)) {
        return TC_EAGAIN;
    }
    struct tc_http__admin_route *r = &srv->admin_routes[srv->nadmin_routes++];
    r->method = method;
    r->pattern = tc_xstrdup(pattern);
    r->handler = handler;
    r->arg = arg;
    r->open = open;
    return TC_OK;
}

int
tc_server_admin_route(struct tc_server *srv, enum tc_http_method method, const char *pattern,
                      tc_admin_handler handler, void *arg)
{
    return add_route(srv, method, pattern, handler, arg, false);
}

int
tc_server_public_route(struct tc_server *srv, enum tc_http_method method, const char *pattern,
                       tc_admin_handler handler, void *arg)
{
    return add_route(srv, method, pattern, handler, arg, true);
}

/* Matches path against pattern segment by segment; "{}" takes one id-like
 * segment into params. @returns the number of params, or -1. */
static int
match_route(const char *pattern, const char *path, char params[][129])
{
    int n = 0;
    while (*pattern != '\0' || *path != '\0') {
        if (*pattern != '/' || *path != '/') {
            return -1;
        }
        pattern++;
        path++;
        size_t plen = strcspn(pattern, "/"), slen = strcspn(path, "/");
        if (plen == 2 && strncmp(pattern, "{}", 2) == 0) {
            if (n == TC_ADMIN_MAX_PARAMS || slen == 0 || slen > 128 ||
                strspn(path, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") <
                    slen) {
                return -1;
            }
            memcpy(params[n], path, slen);
            params[n++][slen] = '\0';
        } else if (plen != slen || strncmp(pattern, path, plen) != 0) {
            return -1;
        }
        pattern += plen;
        path += slen;
    }
    return n;
}

/* The admin routes. @borrows body (NULL for GET and DELETE). */
static void
dispatch(struct tc_http__conn *c, json_t *body)
{
    struct tc_server *srv = c->srv;
    bool path_known = false;
    for (size_t i = 0; i < srv->nadmin_routes; i++) {
        const struct tc_http__admin_route *r = &srv->admin_routes[i];
        char params[TC_ADMIN_MAX_PARAMS][129];
        int n = match_route(r->pattern, c->path, params);
        if (n < 0) {
            continue;
        }
        path_known = true;
        if ((int)r->method != c->method) {
            continue;
        }
        const char *argv[TC_ADMIN_MAX_PARAMS + 1] = {NULL};
        for (int k = 0; k < n; k++) {
            argv[k] = params[k];
        }
        struct tc_admin_req *req = tc_xcalloc(1, sizeof(*req));
        req->conn = c;
        c->admin_req = req;
        c->kind = CONN_PENDING;
        r->handler(r->arg, req, argv, body);
        return;
    }
    if (path_known) {
        tc_http__respond_error(c, 405, "method_not_allowed", "this route takes another method");
    } else {
        tc_http__respond_error(c, 404, "not_found", "no such admin route");
    }
}

void
tc_admin_reply(struct tc_admin_req *req, int status, const char *json, size_t len)
{
    struct tc_http__conn *c = req->conn;
    free(req);
    if (c == NULL) {
        return; /* the client left */
    }
    c->admin_req = NULL;
    tc_http__respond(c, status, "application/json", tc_http__body_from(json, len), len);
}

void
tc_admin_reply_typed(struct tc_admin_req *req, int status, const char *content_type,
                     const char *body, size_t len)
{
    struct tc_http__conn *c = req->conn;
    free(req);
    if (c == NULL) {
        return;
    }
    c->admin_req = NULL;
    tc_http__respond(c, status, content_type, tc_http__body_from(body, len), len);
}

int
tc_admin_req_query(struct tc_admin_req *req, const char *name, char *buf, size_t len)
{
    char qs[2048];
    if (req->conn == NULL) {
        return TC_ENOENT;
    }
    if (tc_server_query_string(req->conn->wsi, qs, sizeof(qs)) != TC_OK) {
        return TC_ETOOBIG;
    }
    return tc_query_get(qs, name, buf, len);
}

void
tc_admin_req_peer(struct tc_admin_req *req, char *buf, size_t len)
{
    buf[0] = '\0';
    if (req->conn != NULL) {
        lws_get_peer_simple(req->conn->wsi, buf, len);
    }
}

void
tc_admin_reply_error(struct tc_admin_req *req, int status, const char *code, const char *message)
{
    struct tc_http__conn *c = req->conn;
    free(req);
    if (c == NULL) {
        return;
    }
    c->admin_req = NULL;
    tc_http__respond_error(c, status, code, message);
}
