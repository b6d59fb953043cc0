/* tocsin — SPDX-License-Identifier: MIT
 *
 * The publishing API's request rules (see request.h): body checks and the
 * event built from a state and a request. Pure: no I/O, no loop; the route
 * handlers of api.c call it, and so does tests/fuzz/fuzz_publish.c.
 */
#include "publish/request.h"
#include "model/incident.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fields tocsind fills and a publisher may not send. */
static const char *const server_fields[] = {"event_id", "occurred_at"};
/* Fields the store adds to a state, not part of an event. */
static const char *const state_fields[] = {"started_at", "updated_at"};

int
tc_publish_request_read(const json_t *body, const char *path_id, struct tc_publish_request *req,
                        struct tc_error *err)
{
    memset(req, 0, sizeof(*req));
    if (!json_is_object(body)) {
        return tc_error_set(err, TC_EINVAL, "send a JSON object with the incident fields");
    }
    for (size_t i = 0; i < TC_ARRAY_SIZE(server_fields); i++) {
        if (json_object_get(body, server_fields[i]) != NULL) {
            return tc_error_set(err, TC_EINVAL, "%s: set by tocsind, leave it out",
                                server_fields[i]);
        }
    }
    const json_t *v = json_object_get(body, "version");
    if (v != NULL && (!json_is_integer(v) || json_integer_value(v) < 1)) {
        return tc_error_set(err, TC_EINVAL,
                            "version: the version this event must get, an integer >= 1");
    }
    const json_t *id = json_object_get(body, "incident_id");
    if (path_id == NULL) {
        if (id != NULL && (!json_is_string(id) || json_string_length(id) < 1 ||
                           json_string_length(id) >= sizeof(req->incident_id))) {
            return tc_error_set(err, TC_EINVAL, "incident_id: 1-128 characters of [A-Za-z0-9._:-]");
        }
    } else if (id != NULL && (!json_is_string(id) || strcmp(json_string_value(id), path_id) != 0)) {
        return tc_error_set(err, TC_EINVAL, "incident_id: differs from the path");
    }
    if (path_id != NULL) {
        snprintf(req->incident_id, sizeof(req->incident_id), "%s", path_id);
    } else if (id != NULL) {
        snprintf(req->incident_id, sizeof(req->incident_id), "%s", json_string_value(id));
    }
    req->fields = json_deep_copy(body);
    req->want_version = v != NULL ? json_integer_value(v) : 0;
    json_object_del(req->fields, "version");
    if (path_id == NULL && json_object_get(req->fields, "status") == NULL) {
        const char *kind = json_string_value(json_object_get(req->fields, "kind"));
        json_object_set_new(req->fields, "status",
                            json_string(kind != NULL && strcmp(kind, "maintenance") == 0
                                            ? "scheduled"
                                            : "investigating"));
    }
    return TC_OK;
}

void
tc_publish_request_fini(struct tc_publish_request *req)
{
    json_decref(req->fields);
    req->fields = NULL;
}

int
tc_publish_build(json_t *base, const struct tc_publish_request *req, int64_t version,
                 const char *event_id, const char *occurred_at, struct tc_error *err)
{
    int rc;

    for (size_t i = 0; i < TC_ARRAY_SIZE(state_fields); i++) {
        json_object_del(base, state_fields[i]);
    }
    json_object_update(base, req->fields);
    json_object_set_new(base, "event_id", json_string(event_id));
    json_object_set_new(base, "incident_id", json_string(req->incident_id));
    json_object_set_new(base, "version", json_integer((json_int_t)version));
    json_object_set_new(base, "occurred_at", json_string(occurred_at));
    if ((rc = tc_event_validate(base, err)) != TC_OK) {
        return rc;
    }
    char *text = json_dumps(base, JSON_COMPACT | JSON_PRESERVE_ORDER);
    size_t len = text != NULL ? strlen(text) : SIZE_MAX;
    free(text);
    if (len > TC_EVENT_MAX_BYTES) {
        return tc_error_set(err, TC_EINVAL, "the event is over 64 KiB");
    }
    return TC_OK;
}
