/* tocsin — SPDX-License-Identifier: MIT
 *
 * Fuzz target: the body of POST /v1/webhooks (tc_webhook_admin_validate, the
 * store-free part of tc_webhook_admin_create), loaded as http/admin.c loads
 * it. An accepted body is checked again field by field against DESIGN §5
 * and webhook-endpoint.schema.json: only url, filter and description; the url
 * an http(s) URL of at most 2048 bytes that cannot split a request line; a
 * filter that parses. A refused one has a NUL-terminated message naming the
 * field, whatever the size of the message buffer.
 */
#include "fuzz.h"
#include "model/filter.h"
#include "webhook/admin.h"

#include <stdbool.h>

static void
check_accepted(const json_t *body)
{
    const char *key;
    json_t *v;

    FUZZ_CHECK(json_is_object(body));
    json_object_foreach((json_t *)(uintptr_t)body, key, v)
    {
        FUZZ_CHECKF(strcmp(key, "url") == 0 || strcmp(key, "filter") == 0 ||
                        strcmp(key, "description") == 0,
                    "field \"%s\"", key);
    }
    const json_t *url = json_object_get(body, "url");
    FUZZ_CHECK(json_is_string(url));
    const char *u = json_string_value(url);
    FUZZ_CHECK(strlen(u) == json_string_length(url));
    FUZZ_CHECK(strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0);
    FUZZ_CHECK(strlen(u) <= 2048);
    for (const char *c = u; *c != '\0'; c++) {
        FUZZ_CHECKF(*c != ' ' && *c != '\t' && *c != '\r' && *c != '\n', "url \"%s\"", u);
    }
    const json_t *d = json_object_get(body, "description");
    FUZZ_CHECK(d == NULL || (json_is_string(d) && json_string_length(d) <= 1024));
    const json_t *f = json_object_get(body, "filter");
    if (f != NULL && !json_is_null(f)) {
        struct tc_filter filter;
        struct tc_error err = {{0}};
        FUZZ_CHECKF(tc_filter_from_json(f, &filter, &err) == TC_OK, "filter: %s", err.text);
        tc_filter_fini(&filter);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* As http/admin.c: strict JSON, no duplicate keys, an object or array. */
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    char msg[300], small[12];

    if (body == NULL) {
        return 0;
    }
    memset(msg, 'x', sizeof(msg));
    memset(small, 'x', sizeof(small));
    int rc = tc_webhook_admin_validate(body, msg, sizeof(msg));
    int rc_small = tc_webhook_admin_validate(body, small, sizeof(small));
    FUZZ_CHECK(rc == rc_small);
    if (rc == TC_OK) {
        check_accepted(body);
    } else {
        FUZZ_CHECK(rc == TC_EINVAL);
        FUZZ_CHECK(memchr(msg, '\0', sizeof(msg)) != NULL && msg[0] != '\0');
        FUZZ_CHECK(memchr(small, '\0', sizeof(small)) != NULL);
        /* The field comes first: "url: ...", "filter.components[0]: ...". */
        FUZZ_CHECKF(strncmp(msg, "url", 3) == 0 || strncmp(msg, "filter", 6) == 0 ||
                        strncmp(msg, "description", 11) == 0 ||
                        strstr(msg, ": unknown field") != NULL,
                    "message \"%s\"", msg);
    }
    json_decref(body);
    return 0;
}
