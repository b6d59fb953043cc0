/* tocsin — SPDX-License-Identifier: MIT
 *
 * The confirm and unsubscribe links of emails (see links.h): one URL shape,
 * checked so that what goes into a List-Unsubscribe header or an href needs
 * no escaping. Tokens themselves are token.c's.
 */
#include "email/links.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

const char *
tc_email_link_path(enum tc_email_token_purpose purpose)
{
    switch (purpose) {
    case TC_EMAIL_TOKEN_CONFIRM:
        return TC_EMAIL_LINK_CONFIRM_PATH;
    case TC_EMAIL_TOKEN_UNSUBSCRIBE:
        return TC_EMAIL_LINK_UNSUBSCRIBE_PATH;
    }
    return NULL;
}

/* A byte that may stand in a link as it is, in an href or in "<...>". */
static bool
url_char_ok(unsigned char c)
{
    return c > 0x20 && c < 0x7F && strchr("\"'<>\\`{}|^?#", c) == NULL;
}

static bool
token_char_ok(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

int
tc_email_link_url(const char *public_url, enum tc_email_token_purpose purpose, const char *token,
                  char **out, struct tc_error *err)
{
    const char *path = tc_email_link_path(purpose);
    size_t base_len, token_len;

    *out = NULL;
    if (path == NULL) {
        return tc_error_set(err, TC_EINVAL, "unknown link purpose %d", (int)purpose);
    }
    if (public_url == NULL ||
        (strncmp(public_url, "http://", 7) != 0 && strncmp(public_url, "https://", 8) != 0)) {
        return tc_error_set(err, TC_EINVAL, "public_url: must start with http:// or https://");
    }
    base_len = strlen(public_url);
    for (size_t i = 0; i < base_len; i++) {
        if (!url_char_ok((unsigned char)public_url[i])) {
            return tc_error_set(err, TC_EINVAL,
                                "public_url: byte %zu (0x%02x) cannot stand in a link as is", i,
                                (unsigned)(unsigned char)public_url[i]);
        }
    }
    while (base_len > 0 && public_url[base_len - 1] == '/') {
        base_len--;
    }
    token_len = token != NULL ? strlen(token) : 0;
    if (token_len == 0) {
        return tc_error_set(err, TC_EINVAL, "token: empty");
    }
    for (size_t i = 0; i < token_len; i++) {
        if (!token_char_ok((unsigned char)token[i])) {
            return tc_error_set(err, TC_EINVAL, "token: byte %zu is not base64url or '.'", i);
        }
    }
    if (base_len + strlen(path) + strlen("?token=") + token_len > TC_EMAIL_LINK_MAX) {
        return tc_error_set(err, TC_ETOOBIG, "link: longer than %d bytes (public_url is %zu)",
                            TC_EMAIL_LINK_MAX, base_len);
    }
    *out = tc_xasprintf("%.*s%s?token=%s", (int)base_len, public_url, path, token);
    return TC_OK;
}

int
tc_email_link_make(const unsigned char *key, size_t keylen, const char *public_url,
                   enum tc_email_token_purpose purpose, const char *address,
                   const char *subscriber_id, int64_t expires_at, char **out, struct tc_error *err)
{
    char token[TC_EMAIL_TOKEN_MAX];
    int rc;

    *out = NULL;
    rc = tc_email_token_make(key, keylen, purpose, address, subscriber_id, expires_at, token,
                             sizeof(token), err);
    if (rc != TC_OK) {
        return rc;
    }
    return tc_email_link_url(public_url, purpose, token, out, err);
}
