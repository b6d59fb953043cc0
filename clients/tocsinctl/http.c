/* tocsin — SPDX-License-Identifier: MIT
 *
 * One HTTP request with libcurl's easy API (see http.h). Redirects are not
 * followed: the token must not travel to another host, and tocsind never
 * redirects. Only http:// and https:// are allowed as protocols.
 */
#include "http.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

struct body {
    char *data;
    size_t len;
    bool over; /* the answer passed TC_CTL_HTTP_MAX_BODY: the transfer was cut */
};

static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
    struct body *b = arg;
    size_t total = size * n;
    if (total > TC_CTL_HTTP_MAX_BODY - b->len) {
        b->over = true;
        return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
    }
    b->data = tc_xrealloc(b->data, b->len + total + 1);
    memcpy(b->data + b->len, p, total);
    b->len += total;
    b->data[b->len] = '\0';
    return total;
}

char *
tc_ctl_http_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    if (e == NULL) {
        abort(); /* only out of memory makes curl_easy_escape fail */
    }
    char *out = tc_xstrdup(e);
    curl_free(e);
    return out;
}

/* Prints what the server said and maps its status to an exit code. */
static int
report(const struct tc_ctl *ctl, long status, const json_t *doc)
{
    const char *code = json_string_value(json_object_get(doc, "error"));
    const char *msg = json_string_value(json_object_get(doc, "message"));
    const char *hint = "";
    int exit_code = TC_CTL_REFUSED;
    if (status == 401) {
        hint = ctl->token == NULL ? " (no admin token: set TOCSIN_ADMIN_TOKEN or use --token-file)"
                                  : " (the admin token was refused)";
    } else if (status == 404 && msg != NULL && strncmp(msg, "no such", 7) == 0 &&
               strstr(msg, "route") != NULL) {
        /* Not a missing thing but a missing route: a tocsind older than us. */
        hint = " (this tocsind does not serve this request: is it older than tocsinctl?)";
    } else if (status == 404 && (code == NULL || strcmp(code, "admin_disabled") != 0)) {
        exit_code = TC_CTL_NOT_FOUND;
    } else if (status < 400 || status >= 500) {
        exit_code = TC_CTL_UNREACHABLE;
    }
    return tc_ctl_fail(ctl, exit_code, "%ld %s%s%s%s", status, code ? code : "error",
                       msg ? ": " : "", msg ? msg : "", hint);
}

int
tc_ctl_http_call(const struct tc_ctl *ctl, const char *method, const char *path, const json_t *body,
                 struct tc_ctl_http_resp *out)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct body got = {0};
    struct curl_slist *hdrs = NULL;
    char *auth = NULL;
    char *text = NULL;
    char *url = tc_xasprintf("%s%s", ctl->url, path);
    int rc = TC_CTL_UNREACHABLE;
    CURL *h = curl_easy_init();

    out->status = 0;
    out->body = NULL;
    if (h == NULL) {
        rc = tc_ctl_fail(ctl, TC_CTL_UNREACHABLE, "libcurl could not start");
        goto out;
    }
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (ctl->token != NULL) {
        auth = tc_xasprintf("Authorization: Bearer %s", ctl->token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    if (strcmp(method, "POST") == 0) {
        text = body != NULL ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, text != NULL ? text : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(text != NULL ? strlen(text) : 0));
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "tocsinctl/" TOCSIN_VERSION);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &got);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)ctl->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)ctl->timeout_ms);

    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        if (got.over) {
            rc = tc_ctl_fail(ctl, TC_CTL_UNREACHABLE, "%s: the answer is over %u MiB", url,
                             TC_CTL_HTTP_MAX_BODY >> 20);
        } else {
            rc = tc_ctl_fail(ctl, TC_CTL_UNREACHABLE, "cannot reach %s: %s", ctl->url,
                             errbuf[0] ? errbuf : curl_easy_strerror(cc));
        }
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    out->body = got.len > 0 ? json_loadb(got.data, got.len, 0, NULL) : NULL;
    if (out->status >= 200 && out->status < 300) {
        rc = TC_CTL_OK;
    } else {
        rc = report(ctl, out->status, out->body);
    }
out:
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    free(auth);
    free(text);
    free(got.data);
    free(url);
    return rc;
}

void
tc_ctl_http_resp_fini(struct tc_ctl_http_resp *r)
{
    json_decref(r->body);
    r->body = NULL;
}
