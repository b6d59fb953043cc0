/* tocsin — SPDX-License-Identifier: MIT
 *
 * Fuzz target: the body of POST /v1/incidents and of POST
 * /v1/incidents/{id}/updates (publish/request.h, the store- and Kafka-free
 * part of publish/api.c), loaded as http/admin.c loads it. Each body is
 * read as an opening and as an update of "inc-1", then built into an event
 * (from nothing, and from a fixed state at version 3). An accepted request
 * never carries event_id, occurred_at or version; an update keeps the
 * path's id. A built event passes tc_event_validate and parses again,
 * holds exactly the request's fields over the state's, the ids, version and
 * time given, not the state's started_at/updated_at, and encodes in 64 KiB. A refusal
 * has a message naming its field.
 */
#include "fuzz.h"
#include "model/incident.h"
#include "publish/request.h"

#include <stdbool.h>

#define EVENT_ID "0b6c1c2e-9a8f-4d0e-8a31-5b2d9c7e4f10"
#define NOW      "2026-11-25T12:00:00Z"

static const char state_json[] =
    "{\"event_id\":\"e-3\",\"incident_id\":\"inc-1\",\"version\":3,\"kind\":\"incident\","
    "\"status\":\"identified\",\"impact\":\"major\",\"title\":\"Playback errors\","
    "\"message\":\"We found it.\",\"components\":[\"playback\"],\"regions\":[\"eu-west\"],"
    "\"occurred_at\":\"2026-11-25T11:00:00Z\",\"started_at\":\"2026-11-25T10:00:00Z\","
    "\"updated_at\":\"2026-11-25T11:00:00Z\"}";

static json_t *state;

static void
check_refused(const struct tc_publish_request *r, const char *msg)
{
    FUZZ_CHECK(r->fields == NULL && r->incident_id[0] == '\0');
    FUZZ_CHECKF(msg[0] != '\0' && strlen(msg) < sizeof(((struct tc_error *)0)->text), "\"%s\"",
                msg);
}

static void
check_built(const json_t *event, const json_t *from, const struct tc_publish_request *r,
            int64_t version)
{
    struct tc_error err = {{0}};
    const char *key;
    json_t *v;

    FUZZ_CHECKF(tc_event_validate(event, &err) == TC_OK, "%s", err.text);
    FUZZ_CHECK(strcmp(json_string_value(json_object_get(event, "event_id")), EVENT_ID) == 0);
    FUZZ_CHECK(strcmp(json_string_value(json_object_get(event, "incident_id")), r->incident_id) ==
               0);
    FUZZ_CHECK(json_integer_value(json_object_get(event, "version")) == version);
    FUZZ_CHECK(strcmp(json_string_value(json_object_get(event, "occurred_at")), NOW) == 0);
    /* The state's own are dropped; a publisher's pass through like any
     * unknown field (DESIGN §2). */
    FUZZ_CHECK(json_object_get(event, "started_at") == json_object_get(r->fields, "started_at"));
    FUZZ_CHECK(json_object_get(event, "updated_at") == json_object_get(r->fields, "updated_at"));
    /* Every request field wins; every other field is the state's. */
    json_object_foreach((json_t *)(uintptr_t)r->fields, key, v)
    {
        if (strcmp(key, "incident_id") != 0) {
            FUZZ_CHECKF(json_equal(json_object_get(event, key), v), "field \"%s\"", key);
        }
    }
    json_object_foreach((json_t *)(uintptr_t)from, key, v)
    {
        if (json_object_get(r->fields, key) == NULL && strcmp(key, "event_id") != 0 &&
            strcmp(key, "version") != 0 && strcmp(key, "occurred_at") != 0 &&
            strcmp(key, "started_at") != 0 && strcmp(key, "updated_at") != 0) {
            FUZZ_CHECKF(json_equal(json_object_get(event, key), v), "state field \"%s\"", key);
        }
    }
    char *text = json_dumps(event, JSON_COMPACT);
    FUZZ_CHECK(text != NULL && strlen(text) <= TC_EVENT_MAX_BYTES);
    struct tc_event parsed;
    FUZZ_CHECKF(tc_event_parse(text, strlen(text), &parsed, &err) == TC_OK, "%s", err.text);
    tc_event_fini(&parsed);
    free(text);
}

static void
one(const json_t *body, const char *path_id)
{
    struct tc_publish_request r;
    struct tc_error err = {{0}};

    int rc = tc_publish_request_read(body, path_id, &r, &err);
    if (rc != TC_OK) {
        FUZZ_CHECK(rc == TC_EINVAL);
        check_refused(&r, err.text);
        return;
    }
    FUZZ_CHECK(json_is_object(r.fields));
    FUZZ_CHECK(json_object_get(r.fields, "event_id") == NULL);
    FUZZ_CHECK(json_object_get(r.fields, "occurred_at") == NULL);
    FUZZ_CHECK(json_object_get(r.fields, "version") == NULL);
    FUZZ_CHECK(r.want_version >= 0);
    FUZZ_CHECK(path_id != NULL || json_object_get(r.fields, "status") != NULL);
    if (path_id != NULL) {
        FUZZ_CHECK(strcmp(r.incident_id, path_id) == 0);
    } else if (r.incident_id[0] == '\0') {
        FUZZ_CHECK(json_object_get(body, "incident_id") == NULL);
        strcpy(r.incident_id, "inc-20261125-0a1b2c3d"); /* as api.c picks one */
    }

    /* An opening starts from nothing, an update from the state. */
    json_t *from = path_id == NULL ? json_object() : json_deep_copy(state);
    json_t *base = json_deep_copy(from);
    int64_t version = path_id == NULL ? 1 : 4;
    rc = tc_publish_build(base, &r, version, EVENT_ID, NOW, &err);
    if (rc == TC_OK) {
        check_built(base, from, &r, version);
    } else {
        FUZZ_CHECKF(rc == TC_EINVAL || rc == TC_ETOOBIG, "rc %d", rc);
        FUZZ_CHECK(err.text[0] != '\0');
    }
    json_decref(base);
    json_decref(from);
    tc_publish_request_fini(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (state == NULL) {
        state = json_loads(state_json, 0, NULL);
        FUZZ_CHECK(state != NULL);
    }
    /* As http/admin.c: strict JSON, no duplicate keys; non-objects reach
     * the handler too, and must be refused. */
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (body == NULL) {
        return 0;
    }
    one(body, NULL);
    one(body, "inc-1");
    json_decref(body);
    return 0;
}
