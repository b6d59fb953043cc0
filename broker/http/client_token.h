/* tocsin — SPDX-License-Identifier: MIT
 *
 * Signed client tokens (DESIGN §7: public routes "require a signed client
 * token when configured"): compact JWS tokens (RFC 7519) signed HS256 with
 * auth.client_secret. The claims read are `exp` (required), `nbf` and
 * `components` (the components a holder may subscribe to; absent = any).
 * tc_client_token_verify and _make are pure (OpenSSL HMAC, jansson; no I/O,
 * no loop; any thread). tc_client_token_request (client_auth.c) reads the
 * token of an lws request and judges it: @loop main.
 */
#ifndef TC_HTTP_CLIENT_TOKEN_H
#define TC_HTTP_CLIENT_TOKEN_H

#include "config/config.h"
#include "model/filter.h"
#include "util/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lws;

/* Longest token text read; a longer one is refused unread. lws keeps at
 * most 4096 bytes of a request's head (server.c), so no longer one can
 * arrive; a token with a dozen components is about 500. */
#define TC_CLIENT_TOKEN_MAX 4096
/* Seconds of clock skew forgiven on exp and nbf. */
#define TC_CLIENT_TOKEN_LEEWAY_S 30
/* Shortest key (RFC 7518 §3.2: as many bits as the hash). */
#define TC_CLIENT_TOKEN_KEY_MIN 32

/* What a valid token allows. */
struct tc_client_token {
    int64_t exp;       /* unix seconds */
    int64_t nbf;       /* unix seconds; 0 = none */
    char **components; /* owned, ncomponents ids; NULL when the token allows any */
    size_t ncomponents;
};

/* Verifies token (NUL-terminated) at time now (unix seconds): three
 * base64url parts, a header whose alg is exactly "HS256" (never "none"),
 * the HMAC compared in constant time before the claims are read, exp
 * required and not past (with TC_CLIENT_TOKEN_LEEWAY_S), nbf not ahead,
 * components an array of 1..TC_FILTER_MAX_ITEMS component ids.
 * @returns 0 with *out filled (free with tc_client_token_fini); TC_ETIMEDOUT
 * for an authentic token past its exp; TC_ETOOBIG over TC_CLIENT_TOKEN_MAX;
 * TC_EINVAL for anything else. err->text says which and never holds the
 * token. On failure *out is empty. @borrows every argument. */
int tc_client_token_verify(const unsigned char *key, size_t keylen, const char *token, int64_t now,
                           struct tc_client_token *out, struct tc_error *err);
void tc_client_token_fini(struct tc_client_token *t);

/* True when every subscription of filter stays inside what t allows: a token
 * with components allows a filter whose components are a non-empty subset of
 * them (an empty filter means every component, so it is refused). */
bool tc_client_token_allows(const struct tc_client_token *t, const struct tc_filter *filter);

/* Writes a token {"alg":"HS256","typ":"JWT"}.{"iat":now,"exp":exp[,
 * "components":[...]]} into out (for tocsinctl and tests). components may be
 * NULL (n == 0): any component. @returns 0, TC_EINVAL (a short key, a bad
 * component id) or TC_ETOOBIG (out too small; then out is ""). */
int tc_client_token_make(const unsigned char *key, size_t keylen, const char *const *components,
                         size_t n, int64_t now, int64_t exp, char *out, size_t outlen,
                         struct tc_error *err);

/* The verdict on a request (client_auth.c). */
struct tc_client_auth {
    int status;       /* 0 = allowed, else 401 or 403 */
    const char *code; /* "token_required", "invalid_token", "token_expired",
                       * "component_not_allowed" */
    struct tc_error err;
};

/* Judges the client token of a request when auth.client_secret is set (else
 * allows it, with *tok empty: any component). The token comes from ?token=
 * in qs (the raw query string; browsers cannot set headers on WebSocket or
 * EventSource) or `Authorization: Bearer`. filter, when not NULL, must be
 * allowed by the token. @returns 0 with *tok filled (the caller finis it),
 * or TC_EINVAL with *verdict set and *tok empty. */
int tc_client_token_request(struct lws *wsi, const struct tc_config *cfg, const char *qs,
                            const struct tc_filter *filter, struct tc_client_token *tok,
                            struct tc_client_auth *verdict);
/* The same for a WebSocket handshake, before the upgrade: reads the query
 * and its filter itself. @returns 0 or TC_EINVAL with *verdict set. */
int tc_client_token_upgrade(struct lws *wsi, const struct tc_config *cfg,
                            struct tc_client_auth *verdict);
/* The verdict's JSON error body. @returns new text. */
char *tc_client_auth_json(const struct tc_client_auth *v);

#endif
