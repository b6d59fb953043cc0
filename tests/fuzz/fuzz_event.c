/* tocsin — SPDX-License-Identifier: MIT
 *
 * Fuzz target: the incident event parser and validator (model/incident.h),
 * which reads every Kafka value any producer writes. Beyond "no crash": an
 * accepted event obeys each bound of DESIGN §2 (checked here independently),
 * validates again, survives serialize → parse unchanged, and its state JSON
 * holds every field plus updated_at and is itself a valid event with the
 * same state. A refused one names its field and has the right code.
 */
#include "fuzz.h"
#include "model/incident.h"

#include <stdbool.h>

#define MAX_SAFE_INT 9007199254740991LL

/* Code points of valid UTF-8 (jansson strings are). */
static size_t
code_points(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++) {
        n += ((unsigned char)*s & 0xC0) != 0x80;
    }
    return n;
}

static bool
one_of(const char *s, const char *const *list)
{
    for (; *list != NULL; list++) {
        if (strcmp(s, *list) == 0) {
            return true;
        }
    }
    return false;
}

static void
check_string_field(const json_t *obj, const char *key, bool required, size_t min, size_t max)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        FUZZ_CHECKF(!required, "%s missing", key);
        return;
    }
    FUZZ_CHECKF(json_is_string(v), "%s", key);
    size_t n = code_points(json_string_value(v));
    FUZZ_CHECKF(strlen(json_string_value(v)) == json_string_length(v), "%s has a NUL", key);
    FUZZ_CHECKF(n >= min && n <= max, "%s has %zu code points", key, n);
}

static void
check_ids(const json_t *obj, const char *key, bool required, size_t min)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        FUZZ_CHECKF(!required, "%s missing", key);
        return;
    }
    FUZZ_CHECKF(json_is_array(v), "%s", key);
    FUZZ_CHECKF(json_array_size(v) >= min && json_array_size(v) <= 64, "%s: %zu ids", key,
                json_array_size(v));
    for (size_t i = 0; i < json_array_size(v); i++) {
        const char *id = json_string_value(json_array_get(v, i));
        FUZZ_CHECKF(id != NULL && strlen(id) >= 1 && strlen(id) <= 64, "%s[%zu]", key, i);
        for (const char *c = id; *c != '\0'; c++) {
            FUZZ_CHECKF((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '.' ||
                            *c == '_' || *c == '-',
                        "%s[%zu] = \"%s\"", key, i, id);
        }
    }
}

static void
check_int_field(const json_t *obj, const char *key, long long min)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        return;
    }
    /* parse stores an integral real (7.0) back as an integer. */
    FUZZ_CHECKF(json_is_integer(v), "%s is not stored as an integer", key);
    FUZZ_CHECKF(json_integer_value(v) >= min && json_integer_value(v) <= MAX_SAFE_INT, "%s = %lld",
                key, (long long)json_integer_value(v));
}

/* Every rule of DESIGN §2, written again without looking at incident.c. */
static void
check_bounds(const struct tc_event *ev)
{
    static const char *const incident_st[] = {"investigating", "identified", "monitoring",
                                              "resolved", NULL};
    static const char *const maint_st[] = {"scheduled", "in_progress", "verifying", "completed",
                                           NULL};
    static const char *const impacts[] = {"none", "minor", "major", "critical", NULL};
    static const char *const states[] = {"operational",  "degraded_performance", "partial_outage",
                                         "major_outage", "under_maintenance",    NULL};
    const json_t *o = ev->json;
    const char *key;
    const json_t *v;

    FUZZ_CHECK(json_is_object(o));
    check_string_field(o, "event_id", true, 1, 128);
    check_string_field(o, "incident_id", true, 1, 128);
    check_string_field(o, "title", true, 1, 200);
    check_string_field(o, "message", false, 0, 4096);
    FUZZ_CHECK(ev->event_id == json_string_value(json_object_get(o, "event_id")));
    FUZZ_CHECK(ev->incident_id == json_string_value(json_object_get(o, "incident_id")));
    FUZZ_CHECKF(fuzz_is_id(ev->incident_id, 1, 128), "incident_id \"%s\"", ev->incident_id);

    check_int_field(o, "version", 1);
    FUZZ_CHECK(json_object_get(o, "version") != NULL);
    FUZZ_CHECK(ev->version == json_integer_value(json_object_get(o, "version")));
    check_int_field(o, "affected_users", 0);

    const char *kind = json_string_value(json_object_get(o, "kind"));
    const char *status = json_string_value(json_object_get(o, "status"));
    FUZZ_CHECK(kind != NULL && status != NULL);
    bool maintenance = strcmp(kind, "maintenance") == 0;
    FUZZ_CHECKF(maintenance || strcmp(kind, "incident") == 0, "kind \"%s\"", kind);
    FUZZ_CHECKF(one_of(status, maintenance ? maint_st : incident_st), "%s status \"%s\"", kind,
                status);
    FUZZ_CHECK(ev->ends == (strcmp(status, "resolved") == 0 || strcmp(status, "completed") == 0));

    const char *impact = json_string_value(json_object_get(o, "impact"));
    FUZZ_CHECK(impact != NULL && one_of(impact, impacts));
    FUZZ_CHECK(strcmp(tc_impact_name(ev->impact), impact) == 0);

    check_ids(o, "components", true, 1);
    check_ids(o, "regions", false, 0);

    const char *at = json_string_value(json_object_get(o, "occurred_at"));
    FUZZ_CHECK(at != NULL);
    size_t n = strlen(at);
    FUZZ_CHECKF(n >= 20 && at[4] == '-' && at[7] == '-' && at[10] == 'T' && at[13] == ':' &&
                    at[16] == ':' && at[n - 1] == 'Z',
                "occurred_at \"%s\"", at);

    const json_t *cs = json_object_get(o, "component_status");
    if (cs != NULL) {
        FUZZ_CHECK(json_is_object(cs));
        json_object_foreach((json_t *)(uintptr_t)cs, key, v)
        {
            FUZZ_CHECKF(tc_is_component_id(key), "component_status key \"%s\"", key);
            FUZZ_CHECK(json_is_string(v) && one_of(json_string_value(v), states));
        }
    }
    const json_t *links = json_object_get(o, "links");
    if (links != NULL) {
        FUZZ_CHECK(json_is_object(links));
        json_object_foreach((json_t *)(uintptr_t)links, key, v)
        {
            FUZZ_CHECK(json_is_string(v) && strncmp(json_string_value(v), "https://", 8) == 0);
            FUZZ_CHECK(code_points(json_string_value(v)) <= 2048);
        }
    }
}

/* Parses text we wrote back. Writing back may grow an event past the
 * 64 KiB bound ("kind" added, other escapes), which parse then refuses whole
 * (TC_ETOOBIG, as it should); the rules are then checked on the object. */
static void
reparse(const char *text, struct tc_event *out)
{
    struct tc_error err = {{0}};
    size_t len = strlen(text);
    int rc = tc_event_parse(text, len, out, &err);

    if (len > TC_EVENT_MAX_BYTES) {
        FUZZ_CHECK(rc == TC_ETOOBIG);
        json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
        FUZZ_CHECK(j != NULL);
        /* What parse would give: kind is there, integers are integers. */
        FUZZ_CHECKF(tc_event_validate(j, &err) == TC_OK, "%s", err.text);
        memset(out, 0, sizeof(*out));
        out->json = j;
        out->event_id = json_string_value(json_object_get(j, "event_id"));
        out->incident_id = json_string_value(json_object_get(j, "incident_id"));
        out->version = json_integer_value(json_object_get(j, "version"));
        FUZZ_CHECK(tc_impact_parse(json_string_value(json_object_get(j, "impact")), &out->impact) ==
                   TC_OK);
        const char *status = json_string_value(json_object_get(j, "status"));
        out->ends = strcmp(status, "resolved") == 0 || strcmp(status, "completed") == 0;
        return;
    }
    FUZZ_CHECKF(rc == TC_OK, "written back, refused: %s", err.text);
}

/* The state holds every field of the event but started_at, plus
 * updated_at = occurred_at; and a state is itself a valid event. */
static void
check_state(const struct tc_event *ev)
{
    char *text = tc_event_state_json(ev);
    json_t *state = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    const char *key;
    json_t *v;

    FUZZ_CHECKF(json_is_object(state), "state %s", text);
    json_object_foreach(ev->json, key, v)
    {
        /* The store sets started_at; updated_at is occurred_at, whatever
         * a producer sent under that name. */
        if (strcmp(key, "started_at") == 0 || strcmp(key, "updated_at") == 0) {
            continue;
        }
        FUZZ_CHECKF(json_equal(json_object_get(state, key), v), "state field %s", key);
    }
    FUZZ_CHECK(json_object_get(state, "started_at") == NULL);
    FUZZ_CHECK(
        json_equal(json_object_get(state, "updated_at"), json_object_get(ev->json, "occurred_at")));
    FUZZ_CHECK(json_object_size(state) == json_object_size(ev->json) + 1 -
                                              (json_object_get(ev->json, "started_at") != NULL) -
                                              (json_object_get(ev->json, "updated_at") != NULL));

    struct tc_event again;
    reparse(text, &again);
    char *text2 = tc_event_state_json(&again);
    json_t *state2 = json_loads(text2, 0, NULL);
    FUZZ_CHECKF(json_equal(state, state2), "state of the state differs: %s", text2);
    json_decref(state2);
    free(text2);
    tc_event_fini(&again);
    json_decref(state);
    free(text);
}

/* parse → serialize → parse gives the same event. */
static void
check_roundtrip(const struct tc_event *ev)
{
    char *text = json_dumps(ev->json, JSON_COMPACT);
    struct tc_event again;

    FUZZ_CHECK(text != NULL);
    reparse(text, &again);
    FUZZ_CHECK(json_equal(ev->json, again.json));
    FUZZ_CHECK(strcmp(ev->event_id, again.event_id) == 0);
    FUZZ_CHECK(strcmp(ev->incident_id, again.incident_id) == 0);
    FUZZ_CHECK(ev->version == again.version && ev->impact == again.impact &&
               ev->ends == again.ends);
    tc_event_fini(&again);
    free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tc_event ev;
    struct tc_error err = {{0}};
    int rc = tc_event_parse((const char *)data, size, &ev, &err);

    if (rc != TC_OK) {
        FUZZ_CHECKF(rc == (size > TC_EVENT_MAX_BYTES ? TC_ETOOBIG : TC_EINVAL), "rc %d", rc);
        /* The DLQ's error header: "<field>: <reason>". */
        FUZZ_CHECKF(strstr(err.text, ": ") != NULL && err.text[0] != ':', "error \"%s\"", err.text);
        FUZZ_CHECK(ev.json == NULL);
        return 0;
    }
    FUZZ_CHECK(size <= TC_EVENT_MAX_BYTES);
    check_bounds(&ev);
    FUZZ_CHECK(tc_event_validate(ev.json, &err) == TC_OK);
    check_roundtrip(&ev);
    check_state(&ev);
    tc_event_fini(&ev);
    return 0;
}
