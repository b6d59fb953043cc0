/* tocsin — SPDX-License-Identifier: MIT
 *
 * `tocsinctl token`: mints a client token (broker/http/client_token.h) with
 * auth.client_secret, for apps and for trying the public routes when tocsind
 * requires tokens. Local only: it signs with the same code tocsind checks
 * with, and sends nothing.
 */
#include "ctl.h"
#include "flags.h"
#include "http/client_token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The secret: the first line of --secret-file, else the variable. */
static int
read_secret(struct tc_ctl *ctl, char *buf, size_t len)
{
    const char *path = ctl->o->secret_file;
    if (path == NULL) {
        const char *env = getenv("TOCSIN_AUTH_CLIENT_SECRET");
        if (env == NULL || strlen(env) >= len) {
            return tc_ctl_fail(ctl, TC_CTL_USAGE,
                               "no secret: set TOCSIN_AUTH_CLIENT_SECRET or use --secret-file");
        }
        snprintf(buf, len, "%s", env);
        return TC_CTL_OK;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return tc_ctl_fail(ctl, TC_CTL_USAGE, "--secret-file: cannot open %s", path);
    }
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    return TC_CTL_OK;
}

int
tc_ctl_cmd_token(struct tc_ctl *ctl)
{
    char secret[1025], token[TC_CLIENT_TOKEN_MAX + 1];
    const char **ids = NULL;
    json_t *list = NULL;
    uint64_t ttl_ms = 3600 * 1000;
    struct tc_error err;
    int rc = TC_CTL_USAGE;

    if (ctl->o->ttl != NULL &&
        (tc_parse_duration_ms(ctl->o->ttl, &ttl_ms) != TC_OK || ttl_ms < 1000)) {
        return tc_ctl_fail(ctl, TC_CTL_USAGE, "--ttl: '%.40s' is not a duration of 1s-1y (e.g. 1h)",
                           ctl->o->ttl);
    }
    if (ctl->o->components != NULL &&
        tc_ctl_flags_ids(ctl, "--components", ctl->o->components, &list) != TC_CTL_OK) {
        return TC_CTL_USAGE;
    }
    if ((rc = read_secret(ctl, secret, sizeof(secret))) != TC_CTL_OK) {
        goto out;
    }
    size_t n = json_array_size(list);
    ids = tc_xcalloc(n + 1, sizeof(*ids));
    for (size_t i = 0; i < n; i++) {
        ids[i] = json_string_value(json_array_get(list, i));
    }
    int64_t now = (int64_t)time(NULL);
    if (tc_client_token_make((const unsigned char *)secret, strlen(secret), ids, n, now,
                             now + (int64_t)(ttl_ms / 1000), token, sizeof(token), &err) != TC_OK) {
        rc = tc_ctl_fail(ctl, TC_CTL_USAGE, "%s", err.text);
        goto out;
    }
    if (ctl->json) {
        json_t *doc = json_pack("{s:s,s:I}", "token", token, "expires_at",
                                (json_int_t)(now + (int64_t)(ttl_ms / 1000)));
        char *text = json_dumps(doc, JSON_COMPACT);
        printf("%s\n", text);
        free(text);
        json_decref(doc);
    } else {
        printf("%s\n", token);
    }
    rc = TC_CTL_OK;
out:
    free(ids);
    json_decref(list);
    memset(secret, 0, sizeof(secret));
    return rc;
}
