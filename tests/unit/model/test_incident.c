/* tocsin — SPDX-License-Identifier: MIT
 *
 * model/incident.c: every rule of DESIGN §2 as a table row (exactly the bound,
 * the bound + 1, empty, wrong type), raw-text cases jansson must refuse
 * (invalid UTF-8, duplicate keys, NUL), the kind default, the ends flag and
 * the state JSON.
 */
#include "model/incident.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char base_json[] =
    "{\"event_id\":\"e-1\",\"incident_id\":\"INC-1:eu.x_y\",\"version\":3,"
    "\"title\":\"Playback errors\",\"occurred_at\":\"2026-11-25T12:00:00Z\","
    "\"status\":\"investigating\",\"impact\":\"major\",\"message\":\"Looking into it\","
    "\"components\":[\"playback\"],\"x_custom\":{\"a\":[1,2]}}";

/* Repeats unit n times into a new JSON string. */
static json_t *
repeat_string(size_t n, const char *unit)
{
    size_t ulen = strlen(unit);
    char *s = malloc(n * ulen + 1);
    for (size_t i = 0; i < n; i++) {
        memcpy(s + i * ulen, unit, ulen);
    }
    s[n * ulen] = '\0';
    json_t *v = json_string(s);
    free(s);
    return v;
}

/* A value from a spec: "@s:N:U" a string of N times U, "@a:N" an array of N
 * distinct ids, "@id:N" an array of one id of N chars, "@l:N" a links object
 * with one https URL of N chars; anything else is JSON text. */
static json_t *
value_from_spec(const char *spec)
{
    unsigned n = 0;
    char unit[16];
    if (sscanf(spec, "@s:%u:%15s", &n, unit) == 2) {
        return repeat_string(n, unit);
    }
    if (sscanf(spec, "@a:%u", &n) == 1) {
        json_t *arr = json_array();
        for (unsigned i = 0; i < n; i++) {
            char id[16];
            snprintf(id, sizeof(id), "c%u", i);
            json_array_append_new(arr, json_string(id));
        }
        return arr;
    }
    if (sscanf(spec, "@id:%u", &n) == 1) {
        json_t *arr = json_array();
        json_array_append_new(arr, repeat_string(n, "a"));
        return arr;
    }
    if (sscanf(spec, "@l:%u", &n) == 1) {
        char *url = malloc(n + 1);
        memset(url, 'x', n);
        memcpy(url, "https://", 8);
        url[n] = '\0';
        json_t *obj = json_pack("{s:s}", "status_page", url);
        free(url);
        return obj;
    }
    json_t *v = json_loads(spec, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    return v;
}

struct row {
    const char *name;   /* the rule this row covers */
    const char *field;  /* field to change */
    const char *value;  /* its new value (see value_from_spec), NULL = remove */
    const char *field2; /* optional second change */
    const char *value2;
    const char *error; /* NULL = valid, else the start of the error text */
};

static const struct row rows[] = {
    {"base event is valid", "x", "1", NULL, NULL, NULL},
    {"event_id required", "event_id", NULL, NULL, NULL, "event_id: required"},
    {"event_id empty", "event_id", "\"\"", NULL, NULL, "event_id: must be 1-128"},
    {"event_id 1 char", "event_id", "\"x\"", NULL, NULL, NULL},
    {"event_id 128 chars", "event_id", "@s:128:a", NULL, NULL, NULL},
    {"event_id 129 chars", "event_id", "@s:129:a", NULL, NULL, "event_id: must be 1-128"},
    {"event_id 128 code points", "event_id", "@s:128:é", NULL, NULL, NULL},
    {"event_id 129 code points", "event_id", "@s:129:é", NULL, NULL, "event_id:"},
    {"event_id number", "event_id", "5", NULL, NULL, "event_id: must be a string"},
    {"incident_id required", "incident_id", NULL, NULL, NULL, "incident_id: required"},
    {"incident_id empty", "incident_id", "\"\"", NULL, NULL, "incident_id:"},
    {"incident_id 128 chars", "incident_id", "@s:128:A", NULL, NULL, NULL},
    {"incident_id 129 chars", "incident_id", "@s:129:A", NULL, NULL, "incident_id:"},
    {"incident_id space", "incident_id", "\"a b\"", NULL, NULL, "incident_id:"},
    {"incident_id slash", "incident_id", "\"a/b\"", NULL, NULL, "incident_id:"},
    {"incident_id non-ascii", "incident_id", "\"é\"", NULL, NULL, "incident_id:"},
    {"incident_id all classes", "incident_id", "\"Az09._:-\"", NULL, NULL, NULL},
    {"version required", "version", NULL, NULL, NULL, "version: required"},
    {"version zero", "version", "0", NULL, NULL, "version: must be an integer from 1"},
    {"version negative", "version", "-1", NULL, NULL, "version:"},
    {"version one", "version", "1", NULL, NULL, NULL},
    {"version 2^53-1", "version", "9007199254740991", NULL, NULL, NULL},
    {"version 2^53", "version", "9007199254740992", NULL, NULL, "version:"},
    {"version integral real", "version", "2.0", NULL, NULL, NULL},
    {"version fraction", "version", "1.5", NULL, NULL, "version: must be an integer"},
    {"version huge real", "version", "1e300", NULL, NULL, "version:"},
    {"version string", "version", "\"1\"", NULL, NULL, "version: must be an integer"},
    {"version bool", "version", "true", NULL, NULL, "version: must be an integer"},
    {"title required", "title", NULL, NULL, NULL, "title: required"},
    {"title empty", "title", "\"\"", NULL, NULL, "title: must be 1-200 characters"},
    {"title 200 chars", "title", "@s:200:a", NULL, NULL, NULL},
    {"title 201 chars", "title", "@s:201:a", NULL, NULL, "title: must be 1-200 characters"},
    {"title 200 emoji", "title", "@s:200:\xF0\x9F\x94\xA5", NULL, NULL, NULL},
    {"title 201 emoji", "title", "@s:201:\xF0\x9F\x94\xA5", NULL, NULL, "title:"},
    {"title null", "title", "null", NULL, NULL, "title: must be a string"},
    {"occurred_at required", "occurred_at", NULL, NULL, NULL, "occurred_at: required"},
    {"occurred_at fraction", "occurred_at", "\"2026-11-25T12:00:00.123456Z\"", NULL, NULL, NULL},
    {"occurred_at leap second", "occurred_at", "\"2026-12-31T23:59:60Z\"", NULL, NULL, NULL},
    {"occurred_at second 61", "occurred_at", "\"2026-12-31T23:59:61Z\"", NULL, NULL,
     "occurred_at:"},
    {"occurred_at lowercase z", "occurred_at", "\"2026-11-25T12:00:00z\"", NULL, NULL,
     "occurred_at:"},
    {"occurred_at lowercase t", "occurred_at", "\"2026-11-25t12:00:00Z\"", NULL, NULL,
     "occurred_at:"},
    {"occurred_at offset", "occurred_at", "\"2026-11-25T12:00:00+00:00\"", NULL, NULL,
     "occurred_at:"},
    {"occurred_at no zone", "occurred_at", "\"2026-11-25T12:00:00\"", NULL, NULL, "occurred_at:"},
    {"occurred_at empty fraction", "occurred_at", "\"2026-11-25T12:00:00.Z\"", NULL, NULL,
     "occurred_at:"},
    {"occurred_at month 00", "occurred_at", "\"2026-00-25T12:00:00Z\"", NULL, NULL, "occurred_at:"},
    {"occurred_at month 13", "occurred_at", "\"2026-13-25T12:00:00Z\"", NULL, NULL, "occurred_at:"},
    {"occurred_at day 00", "occurred_at", "\"2026-11-00T12:00:00Z\"", NULL, NULL, "occurred_at:"},
    {"occurred_at day 31", "occurred_at", "\"2026-12-31T12:00:00Z\"", NULL, NULL, NULL},
    {"occurred_at day 32", "occurred_at", "\"2026-11-32T12:00:00Z\"", NULL, NULL, "occurred_at:"},
    {"occurred_at hour 24", "occurred_at", "\"2026-11-25T24:00:00Z\"", NULL, NULL, "occurred_at:"},
    {"occurred_at minute 60", "occurred_at", "\"2026-11-25T12:60:00Z\"", NULL, NULL,
     "occurred_at:"},
    {"occurred_at trailing newline", "occurred_at", "\"2026-11-25T12:00:00Z\\n\"", NULL, NULL,
     "occurred_at:"},
    {"occurred_at date only", "occurred_at", "\"2026-11-25\"", NULL, NULL, "occurred_at:"},
    {"occurred_at number", "occurred_at", "1700000000", NULL, NULL, "occurred_at: must be a"},
    {"kind incident", "kind", "\"incident\"", NULL, NULL, NULL},
    {"kind unknown", "kind", "\"outage\"", NULL, NULL, "kind: must be incident or maintenance"},
    {"kind number", "kind", "1", NULL, NULL, "kind:"},
    {"kind maintenance", "kind", "\"maintenance\"", "status", "\"scheduled\"", NULL},
    {"maintenance in_progress", "kind", "\"maintenance\"", "status", "\"in_progress\"", NULL},
    {"maintenance verifying", "kind", "\"maintenance\"", "status", "\"verifying\"", NULL},
    {"maintenance completed", "kind", "\"maintenance\"", "status", "\"completed\"", NULL},
    {"maintenance with incident status", "kind", "\"maintenance\"", "status", "\"resolved\"",
     "status: must be scheduled"},
    {"incident with maintenance status", "status", "\"scheduled\"", NULL, NULL,
     "status: must be investigating"},
    {"status identified", "status", "\"identified\"", NULL, NULL, NULL},
    {"status monitoring", "status", "\"monitoring\"", NULL, NULL, NULL},
    {"status resolved", "status", "\"resolved\"", NULL, NULL, NULL},
    {"status required", "status", NULL, NULL, NULL, "status: required"},
    {"status empty", "status", "\"\"", NULL, NULL, "status:"},
    {"status uppercase", "status", "\"Resolved\"", NULL, NULL, "status:"},
    {"impact required", "impact", NULL, NULL, NULL, "impact: required"},
    {"impact none", "impact", "\"none\"", NULL, NULL, NULL},
    {"impact minor", "impact", "\"minor\"", NULL, NULL, NULL},
    {"impact critical", "impact", "\"critical\"", NULL, NULL, NULL},
    {"impact unknown", "impact", "\"severe\"", NULL, NULL, "impact: must be none"},
    {"impact number", "impact", "2", NULL, NULL, "impact:"},
    {"message absent", "message", NULL, NULL, NULL, NULL},
    {"message empty", "message", "\"\"", NULL, NULL, NULL},
    {"message 4096 chars", "message", "@s:4096:m", NULL, NULL, NULL},
    {"message 4097 chars", "message", "@s:4097:m", NULL, NULL, "message: must be 0-4096"},
    {"message 4096 code points", "message", "@s:4096:ж", NULL, NULL, NULL},
    {"message array", "message", "[]", NULL, NULL, "message: must be a string"},
    {"components required", "components", NULL, NULL, NULL, "components: required"},
    {"components empty", "components", "[]", NULL, NULL, "components: must hold 1-64"},
    {"components 64", "components", "@a:64", NULL, NULL, NULL},
    {"components 65", "components", "@a:65", NULL, NULL, "components: must hold 1-64"},
    {"components string", "components", "\"playback\"", NULL, NULL, "components: must be an array"},
    {"component id 64 chars", "components", "@id:64", NULL, NULL, NULL},
    {"component id 65 chars", "components", "@id:65", NULL, NULL, "components[0]:"},
    {"component id empty", "components", "[\"\"]", NULL, NULL, "components[0]:"},
    {"component id uppercase", "components", "[\"ok\",\"Playback\"]", NULL, NULL, "components[1]:"},
    {"component id colon", "components", "[\"a:b\"]", NULL, NULL, "components[0]:"},
    {"component id number", "components", "[1]", NULL, NULL, "components[0]:"},
    {"component id all classes", "components", "[\"az09._-\"]", NULL, NULL, NULL},
    {"regions empty", "regions", "[]", NULL, NULL, NULL},
    {"regions 64", "regions", "@a:64", NULL, NULL, NULL},
    {"regions 65", "regions", "@a:65", NULL, NULL, "regions: must hold 0-64"},
    {"region id bad", "regions", "[\"EU\"]", NULL, NULL, "regions[0]:"},
    {"regions null", "regions", "null", NULL, NULL, "regions: must be an array"},
    {"component_status valid", "component_status",
     "{\"playback\":\"partial_outage\",\"search\":\"operational\",\"a\":\"degraded_performance\","
     "\"b\":\"major_outage\",\"c\":\"under_maintenance\"}",
     NULL, NULL, NULL},
    {"component_status empty", "component_status", "{}", NULL, NULL, NULL},
    {"component_status bad key", "component_status", "{\"Play\":\"operational\"}", NULL, NULL,
     "component_status: key"},
    {"component_status bad value", "component_status", "{\"play\":\"down\"}", NULL, NULL,
     "component_status.play:"},
    {"component_status array", "component_status", "[]", NULL, NULL,
     "component_status: must be an object"},
    {"affected_users zero", "affected_users", "0", NULL, NULL, NULL},
    {"affected_users negative", "affected_users", "-1", NULL, NULL, "affected_users:"},
    {"affected_users string", "affected_users", "\"10\"", NULL, NULL, "affected_users:"},
    {"links valid", "links", "{\"status_page\":\"https://status.example.com\"}", NULL, NULL, NULL},
    {"links 2048 chars", "links", "@l:2048", NULL, NULL, NULL},
    {"links 2049 chars", "links", "@l:2049", NULL, NULL, "links.status_page:"},
    {"links http", "links", "{\"pm\":\"http://example.com\"}", NULL, NULL, "links.pm:"},
    {"links uppercase scheme", "links", "{\"pm\":\"HTTPS://example.com\"}", NULL, NULL,
     "links.pm:"},
    {"links number", "links", "{\"pm\":1}", NULL, NULL, "links.pm:"},
    {"links array", "links", "[]", NULL, NULL, "links: must be an object"},
    {"unknown fields kept", "team", "{\"oncall\":[\"a\"]}", "severity", "4", NULL},
};

static void
apply(json_t *obj, const char *field, const char *value)
{
    if (field == NULL) {
        return;
    }
    if (value == NULL) {
        json_object_del(obj, field);
    } else {
        json_object_set_new(obj, field, value_from_spec(value));
    }
}

static void
test_rule_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *r = &rows[i];
        json_t *obj = json_loads(base_json, 0, NULL);
        apply(obj, r->field, r->value);
        apply(obj, r->field2, r->value2);
        char *text = json_dumps(obj, JSON_COMPACT);
        struct tc_event ev;
        struct tc_error err = {{0}};
        int rc = tc_event_parse(text, strlen(text), &ev, &err);
        int want = r->error == NULL ? 0 : TC_EINVAL;
        if (rc != want || (r->error != NULL && strncmp(err.text, r->error, strlen(r->error)))) {
            print_error("row \"%s\": rc %d (want %d), error \"%s\" (want \"%s\")\n", r->name, rc,
                        want, err.text, r->error ? r->error : "");
            fail();
        }
        /* validate alone must reach the same verdict on the object. */
        assert_int_equal(tc_event_validate(obj, NULL), want);
        tc_event_fini(&ev);
        free(text);
        json_decref(obj);
    }
}

struct raw {
    const char *name;
    const char *text;
    size_t len; /* 0 = strlen(text) */
    const char *error;
};

static const struct raw raws[] = {
    {"empty buffer", "", 0, "(root): not valid JSON"},
    {"not JSON", "hello", 0, "(root): not valid JSON"},
    {"truncated", "{\"event_id\":\"e", 0, "(root): not valid JSON"},
    {"trailing garbage", "{} {}", 0, "(root): not valid JSON"},
    {"array root", "[]", 0, "(root): must be a JSON object"},
    {"string root", "\"x\"", 0, "(root): must be a JSON object"},
    {"number root", "1", 0, "(root): must be a JSON object"},
    {"empty object", "{}", 0, "event_id: required"},
    {"duplicate keys", "{\"event_id\":\"a\",\"event_id\":\"b\"}", 0, "(root): not valid JSON"},
    {"invalid UTF-8 byte", "{\"event_id\":\"\xff\"}", 0, "(root): not valid JSON"},
    {"overlong UTF-8", "{\"event_id\":\"\xc0\xaf\"}", 0, "(root): not valid JSON"},
    {"UTF-8 surrogate", "{\"event_id\":\"\xed\xa0\x80\"}", 0, "(root): not valid JSON"},
    {"truncated UTF-8", "{\"event_id\":\"\xe2\x82\"}", 0, "(root): not valid JSON"},
    {"lone surrogate escape", "{\"event_id\":\"\\ud800\"}", 0, "(root): not valid JSON"},
    {"raw NUL byte", "{\"event_id\":\"a\0b\"}", 18, "(root): contains a NUL byte"},
    {"escaped NUL in value", "{\"event_id\":\"a\\u0000b\"}", 0, "(root): not valid JSON"},
    {"escaped NUL in key", "{\"a\\u0000b\":1}", 0, "(root): not valid JSON"},
    {"NaN", "{\"version\":NaN}", 0, "(root): not valid JSON"},
};

static void
test_raw_text(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(raws) / sizeof(raws[0]); i++) {
        const struct raw *r = &raws[i];
        struct tc_event ev;
        struct tc_error err = {{0}};
        size_t len = r->len != 0 ? r->len : strlen(r->text);
        int rc = tc_event_parse(r->text, len, &ev, &err);
        if (rc != TC_EINVAL || strncmp(err.text, r->error, strlen(r->error)) != 0) {
            print_error("raw \"%s\": rc %d, error \"%s\" (want \"%s\")\n", r->name, rc, err.text,
                        r->error);
            fail();
        }
        assert_null(ev.json);
    }
}

/* The base event padded with an unknown field to exactly size bytes. */
static char *
padded_event(size_t size)
{
    json_t *obj = json_loads(base_json, 0, NULL);
    json_object_set_new(obj, "pad", json_string(""));
    char *text = json_dumps(obj, JSON_COMPACT);
    size_t pad = size - strlen(text);
    free(text);
    json_object_set_new(obj, "pad", repeat_string(pad, "p"));
    text = json_dumps(obj, JSON_COMPACT);
    assert_int_equal(strlen(text), size);
    json_decref(obj);
    return text;
}

static void
test_size_bound(void **state)
{
    (void)state;
    struct tc_event ev;
    struct tc_error err = {{0}};
    char *text = padded_event(TC_EVENT_MAX_BYTES);
    assert_int_equal(tc_event_parse(text, strlen(text), &ev, &err), 0);
    tc_event_fini(&ev);
    free(text);

    text = padded_event(TC_EVENT_MAX_BYTES + 1);
    assert_int_equal(tc_event_parse(text, strlen(text), &ev, &err), TC_ETOOBIG);
    assert_non_null(strstr(err.text, "(root):"));
    assert_null(ev.json);
    free(text);
}

static void
test_fields_and_kind_default(void **state)
{
    (void)state;
    struct tc_event ev;
    assert_int_equal(tc_event_parse(base_json, strlen(base_json), &ev, NULL), 0);
    assert_string_equal(ev.event_id, "e-1");
    assert_string_equal(ev.incident_id, "INC-1:eu.x_y");
    assert_int_equal(ev.version, 3);
    assert_int_equal(ev.impact, TC_IMPACT_MAJOR);
    assert_false(ev.ends);
    assert_string_equal(json_string_value(json_object_get(ev.json, "kind")), "incident");
    tc_event_fini(&ev);
    assert_null(ev.json);

    const char *maint = "{\"event_id\":\"m\",\"incident_id\":\"m\",\"version\":1.0,\"kind\":"
                        "\"maintenance\",\"title\":\"t\",\"occurred_at\":\"2026-01-01T00:00:00Z\","
                        "\"status\":\"completed\",\"impact\":\"none\",\"components\":[\"db\"]}";
    assert_int_equal(tc_event_parse(maint, strlen(maint), &ev, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(ev.json, "kind")), "maintenance");
    assert_true(ev.ends);
    /* 1.0 is stored back as the integer 1. */
    assert_true(json_is_integer(json_object_get(ev.json, "version")));
    assert_int_equal(ev.version, 1);
    assert_int_equal(ev.impact, TC_IMPACT_NONE);
    tc_event_fini(&ev);
}

static void
test_ends_flag(void **state)
{
    (void)state;
    static const struct {
        const char *kind, *status;
        bool ends;
    } cases[] = {
        {"incident", "investigating", false}, {"incident", "identified", false},
        {"incident", "monitoring", false},    {"incident", "resolved", true},
        {"maintenance", "scheduled", false},  {"maintenance", "in_progress", false},
        {"maintenance", "verifying", false},  {"maintenance", "completed", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *obj = json_loads(base_json, 0, NULL);
        json_object_set_new(obj, "kind", json_string(cases[i].kind));
        json_object_set_new(obj, "status", json_string(cases[i].status));
        char *text = json_dumps(obj, JSON_COMPACT);
        struct tc_event ev;
        assert_int_equal(tc_event_parse(text, strlen(text), &ev, NULL), 0);
        assert_int_equal(ev.ends, cases[i].ends);
        tc_event_fini(&ev);
        free(text);
        json_decref(obj);
    }
}

static void
test_state_json(void **state)
{
    (void)state;
    struct tc_event ev;
    assert_int_equal(tc_event_parse(base_json, strlen(base_json), &ev, NULL), 0);
    char *s = tc_event_state_json(&ev);
    /* Compact, in insertion order: the event's own keys first, then the
     * filled kind, then updated_at. */
    assert_int_equal(strncmp(s, "{\"event_id\":\"e-1\",\"incident_id\":", 32), 0);
    assert_null(strstr(s, ": "));
    assert_null(strstr(s, "started_at"));
    assert_non_null(strstr(s, "\"x_custom\":{\"a\":[1,2]},\"kind\":\"incident\","
                              "\"updated_at\":\"2026-11-25T12:00:00Z\"}"));
    json_t *back = json_loads(s, 0, NULL);
    assert_non_null(back);
    assert_string_equal(json_string_value(json_object_get(back, "updated_at")),
                        "2026-11-25T12:00:00Z");
    assert_int_equal(json_integer_value(json_object_get(back, "version")), 3);
    /* The event itself is left without updated_at. */
    assert_null(json_object_get(ev.json, "updated_at"));
    json_decref(back);
    free(s);
    tc_event_fini(&ev);
}

static void
test_validate_built_objects(void **state)
{
    (void)state;
    struct tc_error err;
    json_t *obj = json_loads(base_json, 0, NULL);
    /* An object built in code may hold NUL, which the parser never lets in. */
    json_object_set_new(obj, "title", json_stringn("a\0b", 3));
    assert_int_equal(tc_event_validate(obj, &err), TC_EINVAL);
    assert_string_equal(err.text, "title: must not contain NUL");
    json_object_set_new(obj, "title", json_string("ok"));
    json_object_set_new(obj, "extra", json_pack("[{s:o}]", "k", json_stringn("\0", 1)));
    assert_int_equal(tc_event_validate(obj, &err), TC_EINVAL);
    assert_string_equal(err.text, "extra: must not contain NUL");
    json_object_del(obj, "extra");
    assert_int_equal(tc_event_validate(obj, &err), 0);
    /* Validating does not fill kind: only parse owns its object. */
    assert_null(json_object_get(obj, "kind"));
    json_decref(obj);
    assert_int_equal(tc_event_validate(NULL, &err), TC_EINVAL);
    assert_string_equal(err.text, "(root): must be a JSON object");
}

static void
test_impact_and_ids(void **state)
{
    (void)state;
    static const char *const names[] = {"none", "minor", "major", "critical"};
    for (int i = 0; i < 4; i++) {
        enum tc_impact imp;
        assert_int_equal(tc_impact_parse(names[i], &imp), 0);
        assert_int_equal(imp, i);
        assert_string_equal(tc_impact_name(imp), names[i]);
    }
    enum tc_impact imp = TC_IMPACT_MINOR;
    assert_int_equal(tc_impact_parse("Major", &imp), TC_EINVAL);
    assert_int_equal(tc_impact_parse("", &imp), TC_EINVAL);
    assert_int_equal(tc_impact_parse(NULL, &imp), TC_EINVAL);
    assert_int_equal(imp, TC_IMPACT_MINOR);

    char id65[66];
    memset(id65, 'a', 65);
    id65[65] = '\0';
    assert_false(tc_is_component_id(id65));
    id65[64] = '\0';
    assert_true(tc_is_component_id(id65));
    assert_true(tc_is_component_id("a"));
    assert_true(tc_is_component_id("eu-west.1_b"));
    assert_false(tc_is_component_id(""));
    assert_false(tc_is_component_id(NULL));
    assert_false(tc_is_component_id("EU"));
    assert_false(tc_is_component_id("a b"));
    assert_false(tc_is_component_id("a,b"));
    assert_false(tc_is_component_id("é"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_table),
        cmocka_unit_test(test_raw_text),
        cmocka_unit_test(test_size_bound),
        cmocka_unit_test(test_fields_and_kind_default),
        cmocka_unit_test(test_ends_flag),
        cmocka_unit_test(test_state_json),
        cmocka_unit_test(test_validate_built_objects),
        cmocka_unit_test(test_impact_and_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
