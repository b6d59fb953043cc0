/* tocsin — SPDX-License-Identifier: MIT
 *
 * Fuzz target: the body of POST /v1/email-subscribers and POST
 * /v1/subscribe (tc_email_api_read_subscription, the store-free check of
 * email/api.c), loaded as http/admin.c loads it. An accepted body has only
 * "address" and "filter"; its address passes tc_email_address_check again
 * and is what normalizing the given one gives (so it cannot carry CR, LF
 * or '<' into an SMTP command); its filter JSON parses back to the filter
 * the body gave, written the same way. A refused body names its field.
 */
#include "email/address.h"
#include "email/api.h"
#include "fuzz.h"
#include "model/filter.h"

static void
check_accepted(const json_t *body, const char *address, const char *filter_json)
{
    const char *key;
    json_t *v;
    struct tc_error err = {{0}};
    char again[TC_EMAIL_ADDRESS_MAX + 1];

    json_object_foreach((json_t *)(uintptr_t)body, key, v)
    {
        FUZZ_CHECKF(strcmp(key, "address") == 0 || strcmp(key, "filter") == 0, "field \"%s\"", key);
    }
    FUZZ_CHECKF(tc_email_address_check(address, &err) == TC_OK, "\"%s\": %s", address, err.text);
    FUZZ_CHECK(strpbrk(address, "\r\n<> ") == NULL);
    const char *given = json_string_value(json_object_get(body, "address"));
    FUZZ_CHECK(given != NULL && strlen(given) <= TC_EMAIL_ADDRESS_MAX);
    strcpy(again, given);
    tc_email_address_normalize(again);
    FUZZ_CHECK(strcmp(again, address) == 0);

    /* The stored filter reads back to itself. */
    json_t *fj = json_loads(filter_json, JSON_REJECT_DUPLICATES, NULL);
    FUZZ_CHECK(json_is_object(fj));
    struct tc_filter f;
    FUZZ_CHECKF(tc_filter_from_json(fj, &f, &err) == TC_OK, "%s: %s", filter_json, err.text);
    json_t *back = tc_filter_to_json(&f);
    FUZZ_CHECK(json_equal(back, fj));
    const json_t *in = json_object_get(body, "filter");
    if (in == NULL || json_is_null(in)) {
        /* No filter is the empty one: everything matches. */
        FUZZ_CHECKF(
            strcmp(filter_json, "{\"components\":[],\"regions\":[],\"min_impact\":\"none\"}") == 0,
            "%s", filter_json);
    }
    json_decref(back);
    tc_filter_fini(&f);
    json_decref(fj);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char address[TC_EMAIL_ADDRESS_MAX + 1];
    char *filter_json = NULL;
    struct tc_error err = {{0}};

    /* As http/admin.c: strict JSON, no duplicate keys. */
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (body == NULL) {
        return 0;
    }
    memset(address, 'x', sizeof(address));
    int rc = tc_email_api_read_subscription(body, address, &filter_json, &err);
    if (rc == TC_OK) {
        FUZZ_CHECK(filter_json != NULL);
        check_accepted(body, address, filter_json);
    } else {
        FUZZ_CHECK(rc == TC_EINVAL && filter_json == NULL && address[0] == '\0');
        FUZZ_CHECKF(strncmp(err.text, "address", 7) == 0 || strncmp(err.text, "filter", 6) == 0 ||
                        strstr(err.text, ": unknown field") != NULL ||
                        strncmp(err.text, "send a JSON object", 18) == 0,
                    "message \"%s\"", err.text);
    }
    free(filter_json);
    json_decref(body);
    return 0;
}
