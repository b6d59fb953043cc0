/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of broker/publish/request.c: the body checks of the publishing
 * API as a table (each row names its rule), and the event built from a
 * state and a request: state-only fields dropped, request fields over the
 * state's, tocsind's fields set, the event rules and the 64 KiB bound.
 */
#include "model/incident.h"
#include "publish/request.h"

#include <jansson.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

struct read_case {
    const char *rule;
    const char *body;
    const char *path_id; /* NULL: an opening */
    const char *error;   /* NULL: accepted; else a prefix of the message */
    const char *id;      /* accepted: the incident id */
    const char *status;  /* accepted: the status in fields (NULL: none) */
    int64_t want_version;
};

static const struct read_case read_cases[] = {
    {"an opening with its fields", "{\"title\":\"t\"}", NULL, NULL, "", "investigating", 0},
    {"maintenance starts scheduled", "{\"kind\":\"maintenance\"}", NULL, NULL, "", "scheduled", 0},
    {"a given status is kept", "{\"status\":\"identified\"}", NULL, NULL, "", "identified", 0},
    {"an opening may name its id", "{\"incident_id\":\"inc-9\"}", NULL, NULL, "inc-9",
     "investigating", 0},
    {"version asked for", "{\"version\":7}", NULL, NULL, "", "investigating", 7},
    {"an update takes the path's id", "{\"status\":\"resolved\"}", "inc-1", NULL, "inc-1",
     "resolved", 0},
    {"an update gets no default status", "{\"message\":\"m\"}", "inc-1", NULL, "inc-1", NULL, 0},
    {"an update may repeat its id", "{\"incident_id\":\"inc-1\"}", "inc-1", NULL, "inc-1", NULL, 0},
    {"not an object", "[1]", NULL, "send a JSON object", NULL, NULL, 0},
    {"event_id is tocsind's", "{\"event_id\":\"e\"}", NULL, "event_id:", NULL, NULL, 0},
    {"occurred_at is tocsind's", "{\"occurred_at\":\"x\"}", "inc-1", "occurred_at:", NULL, NULL, 0},
    {"version 0", "{\"version\":0}", NULL, "version:", NULL, NULL, 0},
    {"version as a string", "{\"version\":\"2\"}", NULL, "version:", NULL, NULL, 0},
    {"an empty id", "{\"incident_id\":\"\"}", NULL, "incident_id:", NULL, NULL, 0},
    {"an id of 129 bytes",
     "{\"incident_id\":"
     "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
     NULL, "incident_id:", NULL, NULL, 0},
    {"an id that is not a string", "{\"incident_id\":5}", NULL, "incident_id:", NULL, NULL, 0},
    {"an update naming another id", "{\"incident_id\":\"inc-2\"}", "inc-1", "incident_id:", NULL,
     NULL, 0},
    {"an update with a non-string id", "{\"incident_id\":1}", "inc-1", "incident_id:", NULL, NULL,
     0},
};

static void
test_read_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(read_cases) / sizeof(read_cases[0]); i++) {
        const struct read_case *c = &read_cases[i];
        struct tc_publish_request r;
        struct tc_error err = {{0}};
        json_t *body = json_loads(c->body, 0, NULL);
        assert_non_null(body);
        int rc = tc_publish_request_read(body, c->path_id, &r, &err);
        if (c->error != NULL) {
            if (rc != TC_EINVAL || strncmp(err.text, c->error, strlen(c->error)) != 0) {
                fail_msg("%s: rc %d \"%s\"", c->rule, rc, err.text);
            }
            assert_null(r.fields);
        } else {
            if (rc != TC_OK) {
                fail_msg("%s: refused: %s", c->rule, err.text);
            }
            assert_string_equal(r.incident_id, c->id);
            assert_int_equal(r.want_version, c->want_version);
            assert_null(json_object_get(r.fields, "version"));
            const char *st = json_string_value(json_object_get(r.fields, "status"));
            if (c->status == NULL) {
                assert_null(st);
            } else {
                assert_non_null(st);
                assert_string_equal(st, c->status);
            }
        }
        tc_publish_request_fini(&r);
        json_decref(body);
    }
}

static const char *STATE =
    "{\"event_id\":\"e-3\",\"incident_id\":\"inc-1\",\"version\":3,\"status\":\"identified\","
    "\"impact\":\"major\",\"title\":\"Playback errors\",\"components\":[\"playback\"],"
    "\"occurred_at\":\"2026-11-25T11:00:00Z\",\"started_at\":\"2026-11-25T10:00:00Z\","
    "\"updated_at\":\"2026-11-25T11:00:00Z\",\"extra\":1}";

static void
test_build_from_state(void **state)
{
    struct tc_publish_request r;
    struct tc_error err = {{0}};
    (void)state;

    json_t *body = json_loads("{\"status\":\"resolved\",\"message\":\"Fixed.\"}", 0, NULL);
    assert_int_equal(tc_publish_request_read(body, "inc-1", &r, &err), TC_OK);
    json_t *ev = json_loads(STATE, 0, NULL);
    assert_int_equal(tc_publish_build(ev, &r, 4, "e-4", "2026-11-25T12:00:00Z", &err), TC_OK);
    assert_string_equal(json_string_value(json_object_get(ev, "status")), "resolved");
    assert_string_equal(json_string_value(json_object_get(ev, "message")), "Fixed.");
    assert_string_equal(json_string_value(json_object_get(ev, "title")), "Playback errors");
    assert_string_equal(json_string_value(json_object_get(ev, "event_id")), "e-4");
    assert_string_equal(json_string_value(json_object_get(ev, "occurred_at")),
                        "2026-11-25T12:00:00Z");
    assert_int_equal(json_integer_value(json_object_get(ev, "version")), 4);
    assert_int_equal(json_integer_value(json_object_get(ev, "extra")), 1);
    assert_null(json_object_get(ev, "started_at"));
    assert_null(json_object_get(ev, "updated_at"));
    assert_int_equal(tc_event_validate(ev, &err), TC_OK);
    json_decref(ev);
    tc_publish_request_fini(&r);
    json_decref(body);
}

static void
test_build_refusals(void **state)
{
    struct tc_publish_request r;
    struct tc_error err = {{0}};
    (void)state;

    /* An opening without a title breaks the event rules. */
    json_t *body = json_loads("{\"impact\":\"minor\",\"components\":[\"api\"]}", 0, NULL);
    assert_int_equal(tc_publish_request_read(body, NULL, &r, &err), TC_OK);
    strcpy(r.incident_id, "inc-2");
    json_t *ev = json_object();
    assert_int_not_equal(tc_publish_build(ev, &r, 1, "e-1", "2026-11-25T12:00:00Z", &err), TC_OK);
    assert_non_null(strstr(err.text, "title"));
    json_decref(ev);
    tc_publish_request_fini(&r);
    json_decref(body);

    /* Valid fields, but 64 KiB of them: refused as a whole. */
    char *big = tc_xmalloc(70000);
    memset(big, 'x', 69999);
    big[69999] = '\0';
    body = json_pack("{s:s,s:s,s:[s],s:s}", "title", "t", "impact", "minor", "components", "api",
                     "extra", big);
    assert_int_equal(tc_publish_request_read(body, NULL, &r, &err), TC_OK);
    strcpy(r.incident_id, "inc-3");
    ev = json_object();
    assert_int_equal(tc_publish_build(ev, &r, 1, "e-1", "2026-11-25T12:00:00Z", &err), TC_EINVAL);
    assert_non_null(strstr(err.text, "64 KiB"));
    json_decref(ev);
    tc_publish_request_fini(&r);
    json_decref(body);
    free(big);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_table),
        cmocka_unit_test(test_build_from_state),
        cmocka_unit_test(test_build_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
