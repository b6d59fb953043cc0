/* tocsin — SPDX-License-Identifier: MIT
 *
 * Where a client token comes from and what a refusal says (see
 * client_token.h): ?token= or Authorization: Bearer, judged against
 * auth.client_secret, the wall clock and the request's filter. The JWT check
 * itself is client_token.c's. Answers nothing: callers do (401/403).
 * @loop main.
 */
#include "http/client_token.h"
#include "http/http_internal.h"
#include "metrics/metrics.h"

#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static int
refuse(struct tc_client_auth *v, int status, const char *code, const char *message)
{
    v->status = status;
    v->code = code;
    tc_error_set(&v->err, TC_EINVAL, "%s", message);
    tc_metrics_inc(TC_M_CLIENT_TOKENS_REFUSED);
    return TC_EINVAL;
}

/* Copies the token into buf (TC_CLIENT_TOKEN_MAX + 1 bytes): the query's
 * (browsers can set no header on WebSocket and EventSource, so ?token= is
 * the usual way), else the bearer header's. The query wins so that a tool
 * sending the admin token in Authorization (tocsinctl) can still name a
 * client token. @returns its length, TC_ENOENT (none), TC_ETOOBIG or
 * TC_EINVAL (a bad escape, a header that is not Bearer). */
static int
find_token(struct lws *wsi, const char *qs, char *buf)
{
    char auth[TC_CLIENT_TOKEN_MAX + 8];
    int q = tc_query_get(qs, "token", buf, TC_CLIENT_TOKEN_MAX + 1);
    if (q != TC_ENOENT) {
        return q;
    }
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n > 0) {
        if (n >= (int)sizeof(auth)) {
            return TC_ETOOBIG;
        }
        if (lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION) != n ||
            strncasecmp(auth, "Bearer ", 7) != 0) {
            return TC_EINVAL;
        }
        const char *t = auth + 7 + strspn(auth + 7, " ");
        memcpy(buf, t, strlen(t) + 1);
        return (int)strlen(buf);
    }
    return TC_ENOENT;
}

int
tc_client_token_request(struct lws *wsi, const struct tc_config *cfg, const char *qs,
                        const struct tc_filter *filter, struct tc_client_token *tok,
                        struct tc_client_auth *v)
{
    char token[TC_CLIENT_TOKEN_MAX + 1];
    const char *secret = cfg->auth_client_secret;
    memset(tok, 0, sizeof(*tok));
    memset(v, 0, sizeof(*v));
    if (secret[0] == '\0') {
        return TC_OK;
    }
    int n = find_token(wsi, qs, token);
    if (n == TC_ENOENT || n == 0) {
        return refuse(v, 401, "token_required",
                      "a client token is required: ?token=<jwt> or Authorization: Bearer <jwt>");
    }
    if (n == TC_ETOOBIG) {
        return refuse(v, 401, "invalid_token", "token is over 4096 bytes");
    }
    if (n < 0) {
        return refuse(v, 401, "invalid_token", "the token is not Bearer, or badly escaped");
    }
    struct tc_error err;
    int rc = tc_client_token_verify((const unsigned char *)secret, strlen(secret), token,
                                    (int64_t)time(NULL), tok, &err);
    if (rc == TC_ETIMEDOUT) {
        return refuse(v, 401, "token_expired", err.text);
    }
    if (rc != TC_OK) {
        return refuse(v, 401, "invalid_token", err.text);
    }
    if (filter != NULL && !tc_client_token_allows(tok, filter)) {
        tc_client_token_fini(tok);
        return refuse(v, 403, "component_not_allowed",
                      "the filter's components must be among the token's (name them)");
    }
    return TC_OK;
}

char *
tc_client_auth_json(const struct tc_client_auth *v)
{
    json_t *o = json_pack("{s:s,s:s}", "error", v->code, "message", v->err.text);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

bool
tc_http__client_token(struct tc_http__conn *c, const char *qs, const struct tc_filter *filter,
                      struct tc_client_token *tok)
{
    char own[TC_HTTP_QUERY_MAX];
    struct tc_client_auth v;
    memset(tok, 0, sizeof(*tok));
    if (c->srv->cfg->auth_client_secret[0] == '\0') {
        return true;
    }
    if (qs == NULL) {
        if (tc_server_query_string(c->wsi, own, sizeof(own)) != TC_OK) {
            tc_http__respond_error(c, 414, "uri_too_long", "query string too long");
            return false;
        }
        qs = own;
    }
    if (tc_client_token_request(c->wsi, c->srv->cfg, qs, filter, tok, &v) != TC_OK) {
        c->auth_challenge = v.status == 401;
        tc_http__respond_error(c, v.status, v.code, v.err.text);
        return false;
    }
    return true;
}

int
tc_client_token_upgrade(struct lws *wsi, const struct tc_config *cfg, struct tc_client_auth *v)
{
    char qs[TC_HTTP_QUERY_MAX];
    struct tc_filter filter;
    struct tc_client_token tok;
    memset(v, 0, sizeof(*v));
    if (cfg->auth_client_secret[0] == '\0' ||
        tc_server_query_string(wsi, qs, sizeof(qs)) != TC_OK) {
        return TC_OK; /* open, or the session answers bad_request */
    }
    /* A bad filter is the session's to report (bad_filter, 1008); the
     * token is still judged. */
    bool has_filter = tc_filter_from_query(qs, &filter, NULL) == TC_OK;
    int rc = tc_client_token_request(wsi, cfg, qs, has_filter ? &filter : NULL, &tok, v);
    tc_client_token_fini(&tok);
    if (has_filter) {
        tc_filter_fini(&filter);
    }
    return rc;
}
