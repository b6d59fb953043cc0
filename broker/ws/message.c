/* tocsin — SPDX-License-Identifier: MIT
 *
 * Client → server messages (DESIGN §4): subscribe and unsubscribe. Pure: no
 * I/O, so the fuzzer and unit tests can hit it directly.
 */
#include "ws/ws.h"

#include <string.h>

static bool
valid_sub_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) {
        return false;
    }
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!(('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-')) {
            return false;
        }
    }
    return true;
}

int
tc_ws_msg_parse(const char *buf, size_t len, struct tc_ws_msg *out, struct tc_error *err)
{
    json_error_t jerr;
    int rc = TC_EINVAL;
    memset(out, 0, sizeof(*out));
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        tc_error_set(err, TC_EINVAL, "not valid JSON: %s", jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        tc_error_set(err, TC_EINVAL, "a message must be a JSON object");
        goto out;
    }
    const char *type = json_string_value(json_object_get(root, "type"));
    if (type == NULL) {
        tc_error_set(err, TC_EINVAL, "type: missing or not a string");
        goto out;
    }
    json_t *id = json_object_get(root, "id");
    if (!json_is_string(id) || !valid_sub_id(json_string_value(id))) {
        tc_error_set(err, TC_EINVAL, "id: must be 1-64 characters of [A-Za-z0-9._:-]");
        goto out;
    }
    snprintf(out->id, sizeof(out->id), "%s", json_string_value(id));
    if (strcmp(type, "unsubscribe") == 0) {
        out->type = TC_WS_MSG_UNSUBSCRIBE;
        rc = TC_OK;
        goto out;
    }
    if (strcmp(type, "subscribe") != 0) {
        tc_error_set(err, TC_EINVAL, "type: \"%.40s\" is not subscribe or unsubscribe", type);
        goto out;
    }
    out->type = TC_WS_MSG_SUBSCRIBE;
    json_t *since = json_object_get(root, "since");
    if (since != NULL && !json_is_null(since)) {
        if (!json_is_integer(since) || json_integer_value(since) < 0) {
            tc_error_set(err, TC_EINVAL, "since: must be an integer >= 0");
            goto out;
        }
        out->has_since = true;
        out->since = (uint64_t)json_integer_value(since);
    }
    json_t *epoch = json_object_get(root, "epoch");
    if (epoch != NULL && !json_is_null(epoch)) {
        if (!json_is_string(epoch) || json_string_length(epoch) >= sizeof(out->epoch)) {
            tc_error_set(err, TC_EINVAL, "epoch: must be a string of at most %zu characters",
                         sizeof(out->epoch) - 1);
            goto out;
        }
        snprintf(out->epoch, sizeof(out->epoch), "%s", json_string_value(epoch));
    }
    json_t *filter = json_object_get(root, "filter");
    if (filter != NULL && !json_is_null(filter) && !json_is_object(filter)) {
        tc_error_set(err, TC_EINVAL, "filter: must be an object");
        goto out;
    }
    struct tc_error ferr;
    if (tc_filter_from_json(json_is_object(filter) ? filter : NULL, &out->filter, &ferr) != TC_OK) {
        tc_error_set(err, TC_EINVAL, "filter.%s", ferr.text);
        goto out;
    }
    rc = TC_OK;
out:
    json_decref(root);
    return rc;
}

void
tc_ws_msg_fini(struct tc_ws_msg *m)
{
    tc_filter_fini(&m->filter);
}
