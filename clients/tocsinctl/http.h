/* tocsin — SPDX-License-Identifier: MIT
 *
 * tocsinctl's HTTP client (libcurl easy, one request at a time): JSON in and
 * out, the bearer token on admin routes, the --timeout bound, and the map
 * from an answer to an exit code with a one-line message that names the
 * server's error code. No retries: a script decides what to do about exit 3.
 */
#ifndef TC_CTL_HTTP_H
#define TC_CTL_HTTP_H

#include "ctl.h"

#include <jansson.h>

/* Largest answer read; a bigger one fails with exit 3 rather than eating
 * memory (the largest real answer, every active incident, is far below). */
#define TC_CTL_HTTP_MAX_BODY (32u << 20)

struct tc_ctl_http_resp {
    long status;  /* HTTP status */
    json_t *body; /* owned: the parsed answer, NULL when it was not JSON */
};

/* Sends method path (path starts with '/', query included) to ctl->url with
 * body as JSON (NULL: no body) and the admin token when ctl has one.
 * On a 2xx answer fills out and returns TC_CTL_OK. Otherwise prints the
 * error on stderr ("404 not_found: no incident with this id") and returns
 * the exit code (1, 3 or 4); out->body still holds any JSON answer.
 * The caller frees out with tc_ctl_http_resp_fini either way. @borrows body. */
int tc_ctl_http_call(const struct tc_ctl *ctl, const char *method, const char *path,
                     const json_t *body, struct tc_ctl_http_resp *out);
void tc_ctl_http_resp_fini(struct tc_ctl_http_resp *r);

/* URL-encodes s for a path segment or query value. @returns new. */
char *tc_ctl_http_escape(const char *s);

#endif
