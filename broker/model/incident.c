/* tocsin — SPDX-License-Identifier: MIT
 *
 * The incident event (DESIGN §2): parse one Kafka value with jansson, check
 * every rule that schemas/incident-event.schema.json states, and build the
 * state JSON the store saves. Pure: no I/O, no loops. It does not dedup or
 * order events; the store script does.
 */
#include "model/incident.h"
#include "model/model_internal.h"

#include <stdlib.h>
#include <string.h>

/* Largest integer accepted for version and affected_users: 2^53 - 1, the
 * largest a JavaScript client reads exactly. With this bound jansson and
 * jsonschema agree on every number, including 7.0 (an integer to jsonschema)
 * and 1e300 (a real to jansson, but an integer to jsonschema). */
#define MAX_SAFE_INT 9007199254740991LL

static const char *const impact_names[] = {"none", "minor", "major", "critical"};

static const char *const incident_statuses[] = {"investigating", "identified", "monitoring",
                                                "resolved", NULL};
static const char *const maintenance_statuses[] = {"scheduled", "in_progress", "verifying",
                                                   "completed", NULL};
static const char *const component_states[] = {"operational",       "degraded_performance",
                                               "partial_outage",    "major_outage",
                                               "under_maintenance", NULL};

static bool
in_list(const char *s, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; i++) {
        if (strcmp(s, list[i]) == 0) {
            return true;
        }
    }
    return false;
}

static bool
is_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

static int
two_digits(const char *s)
{
    return (s[0] - '0') * 10 + (s[1] - '0');
}

/* YYYY-MM-DDTHH:MM:SS[.fraction]Z, the same shape as the schema's pattern:
 * uppercase T and Z only, no offsets, field ranges but no calendar check
 * (Feb 31 passes, as in the schema). */
static bool
is_rfc3339_utc(const char *s, size_t n)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    const size_t base = sizeof(shape) - 1;
    if (n < base + 1) {
        return false;
    }
    for (size_t i = 0; i < base; i++) {
        if (shape[i] == 'd' ? !is_digits(s + i, 1) : s[i] != shape[i]) {
            return false;
        }
    }
    int month = two_digits(s + 5), day = two_digits(s + 8);
    int hour = two_digits(s + 11), minute = two_digits(s + 14), second = two_digits(s + 17);
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
        return false;
    }
    size_t i = base;
    if (s[i] == '.') {
        i++;
        size_t start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
        if (i == start) {
            return false;
        }
    }
    return i + 1 == n && s[i] == 'Z';
}

/* [A-Za-z0-9._:-] for incident ids, [a-z0-9._-] for component ids. */
static bool
id_chars_ok(const char *s, size_t n, bool incident)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                  c == '-' || (incident && ((c >= 'A' && c <= 'Z') || c == ':'));
        if (!ok) {
            return false;
        }
    }
    return true;
}

bool
tc_is_component_id(const char *s)
{
    if (s == NULL) {
        return false;
    }
    size_t n = strnlen(s, 65);
    return n >= 1 && n <= 64 && id_chars_ok(s, n, false);
}

static bool
is_component_id_json(const json_t *v)
{
    return json_is_string(v) && json_string_length(v) <= 64 &&
           strlen(json_string_value(v)) == json_string_length(v) &&
           tc_is_component_id(json_string_value(v));
}

const char *
tc_impact_name(enum tc_impact impact)
{
    if ((unsigned)impact >= TC_ARRAY_SIZE(impact_names)) {
        return "none";
    }
    return impact_names[impact];
}

int
tc_impact_parse(const char *name, enum tc_impact *out)
{
    if (name == NULL) {
        return TC_EINVAL;
    }
    for (size_t i = 0; i < TC_ARRAY_SIZE(impact_names); i++) {
        if (strcmp(name, impact_names[i]) == 0) {
            *out = (enum tc_impact)i;
            return TC_OK;
        }
    }
    return TC_EINVAL;
}

/* A string field of min..max code points. *out is NULL when the field is
 * absent and not required. */
static int
check_string(const json_t *obj, const char *field, bool required, size_t min, size_t max,
             const char **out, struct tc_error *err)
{
    const json_t *v = json_object_get(obj, field);
    *out = NULL;
    if (v == NULL) {
        return required ? tc_error_set(err, TC_EINVAL, "%s: required", field) : TC_OK;
    }
    if (!json_is_string(v)) {
        return tc_error_set(err, TC_EINVAL, "%s: must be a string", field);
    }
    size_t n = tc_model__utf8_len(json_string_value(v), json_string_length(v));
    if (n < min || n > max) {
        return tc_error_set(err, TC_EINVAL, "%s: must be %zu-%zu characters", field, min, max);
    }
    *out = json_string_value(v);
    return TC_OK;
}

/* An integer from min to MAX_SAFE_INT. A real with an integral value counts,
 * as it does for jsonschema; tc_event_parse stores it back as an integer. */
static int
check_int(const json_t *obj, const char *field, bool required, long long min, struct tc_error *err)
{
    const json_t *v = json_object_get(obj, field);
    long long n;
    if (v == NULL) {
        return required ? tc_error_set(err, TC_EINVAL, "%s: required", field) : TC_OK;
    }
    if (json_is_integer(v)) {
        n = json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        /* The range goes first so that the cast below is defined. */
        if (d < (double)min || d > (double)MAX_SAFE_INT) {
            goto range;
        }
        n = (long long)d;
        if ((double)n != d) {
            return tc_error_set(err, TC_EINVAL, "%s: must be an integer", field);
        }
    } else {
        return tc_error_set(err, TC_EINVAL, "%s: must be an integer", field);
    }
    if (n >= min && n <= MAX_SAFE_INT) {
        return TC_OK;
    }
range:
    return tc_error_set(err, TC_EINVAL, "%s: must be an integer from %lld to %lld", field, min,
                        MAX_SAFE_INT);
}

static int
check_id_array(const json_t *obj, const char *field, bool required, size_t min,
               struct tc_error *err)
{
    const json_t *v = json_object_get(obj, field);
    if (v == NULL) {
        return required ? tc_error_set(err, TC_EINVAL, "%s: required", field) : TC_OK;
    }
    if (!json_is_array(v)) {
        return tc_error_set(err, TC_EINVAL, "%s: must be an array", field);
    }
    size_t n = json_array_size(v);
    if (n < min || n > 64) {
        return tc_error_set(err, TC_EINVAL, "%s: must hold %zu-64 ids", field, min);
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_component_id_json(json_array_get(v, i))) {
            return tc_error_set(err, TC_EINVAL, "%s[%zu]: must be 1-64 characters of [a-z0-9._-]",
                                field, i);
        }
    }
    return TC_OK;
}

static int
check_component_status(const json_t *obj, struct tc_error *err)
{
    const json_t *v = json_object_get(obj, "component_status");
    const char *key;
    const json_t *val;
    if (v == NULL) {
        return TC_OK;
    }
    if (!json_is_object(v)) {
        return tc_error_set(err, TC_EINVAL, "component_status: must be an object");
    }
    tc_model__object_foreach(v, key, val)
    {
        if (!tc_is_component_id(key)) {
            return tc_error_set(err, TC_EINVAL,
                                "component_status: key \"%.64s\" is not a component id", key);
        }
        if (!json_is_string(val) || !in_list(json_string_value(val), component_states)) {
            return tc_error_set(err, TC_EINVAL,
                                "component_status.%s: must be operational, degraded_performance, "
                                "partial_outage, major_outage or under_maintenance",
                                key);
        }
    }
    return TC_OK;
}

static int
check_links(const json_t *obj, struct tc_error *err)
{
    const json_t *v = json_object_get(obj, "links");
    const char *key;
    const json_t *val;
    if (v == NULL) {
        return TC_OK;
    }
    if (!json_is_object(v)) {
        return tc_error_set(err, TC_EINVAL, "links: must be an object");
    }
    tc_model__object_foreach(v, key, val)
    {
        if (!json_is_string(val) || strncmp(json_string_value(val), "https://", 8) != 0 ||
            tc_model__utf8_len(json_string_value(val), json_string_length(val)) > 2048) {
            return tc_error_set(err, TC_EINVAL,
                                "links.%.64s: must be an https:// URL of at most 2048 characters",
                                key);
        }
    }
    return TC_OK;
}

/* jansson's parser refuses NUL in strings and keys, but an object built in
 * code (json_stringn) may hold one, and NUL would truncate it downstream. */
static bool
has_nul(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return memchr(json_string_value(v), '\0', json_string_length(v)) != NULL;
    case JSON_ARRAY:
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (has_nul(json_array_get(v, i))) {
                return true;
            }
        }
        return false;
    case JSON_OBJECT:
        for (void *it = json_object_iter(tc_model__unconst(v)); it != NULL;
             it = json_object_iter_next(tc_model__unconst(v), it)) {
            if (json_object_iter_key_len(it) != strlen(json_object_iter_key(it)) ||
                has_nul(json_object_iter_value(it))) {
                return true;
            }
        }
        return false;
    default:
        return false;
    }
}

/* The fields every event has, in the order the DESIGN table lists them. */
static int
check_required(const json_t *obj, struct tc_error *err)
{
    const char *s = NULL;
    int rc;
    if ((rc = check_string(obj, "event_id", true, 1, 128, &s, err)) != 0) {
        return rc;
    }
    if ((rc = check_string(obj, "incident_id", true, 1, 128, &s, err)) != 0) {
        return rc;
    }
    if (!id_chars_ok(s, strlen(s), true)) {
        return tc_error_set(err, TC_EINVAL,
                            "incident_id: must be 1-128 characters of [A-Za-z0-9._:-]");
    }
    if ((rc = check_int(obj, "version", true, 1, err)) != 0) {
        return rc;
    }
    if ((rc = check_string(obj, "title", true, 1, 200, &s, err)) != 0) {
        return rc;
    }
    if ((rc = check_string(obj, "occurred_at", true, 1, SIZE_MAX, &s, err)) != 0) {
        return rc;
    }
    if (!is_rfc3339_utc(s, strlen(s))) {
        return tc_error_set(err, TC_EINVAL,
                            "occurred_at: must be RFC 3339 UTC, YYYY-MM-DDTHH:MM:SS[.fraction]Z");
    }
    return TC_OK;
}

int
tc_event_validate(const json_t *obj, struct tc_error *err)
{
    const char *s = NULL;
    int rc;

    if (!json_is_object(obj)) {
        return tc_error_set(err, TC_EINVAL, "(root): must be a JSON object");
    }
    for (void *it = json_object_iter(tc_model__unconst(obj)); it != NULL;
         it = json_object_iter_next(tc_model__unconst(obj), it)) {
        if (json_object_iter_key_len(it) != strlen(json_object_iter_key(it))) {
            return tc_error_set(err, TC_EINVAL, "(root): keys must not contain NUL");
        }
        if (has_nul(json_object_iter_value(it))) {
            return tc_error_set(err, TC_EINVAL, "%.64s: must not contain NUL",
                                json_object_iter_key(it));
        }
    }
    if ((rc = check_required(obj, err)) != 0) {
        return rc;
    }

    const json_t *kind = json_object_get(obj, "kind");
    bool maintenance = false;
    if (kind != NULL) {
        if (!json_is_string(kind) || (strcmp(json_string_value(kind), "incident") != 0 &&
                                      strcmp(json_string_value(kind), "maintenance") != 0)) {
            return tc_error_set(err, TC_EINVAL, "kind: must be incident or maintenance");
        }
        maintenance = strcmp(json_string_value(kind), "maintenance") == 0;
    }
    const char *status = NULL;
    if ((rc = check_string(obj, "status", true, 1, SIZE_MAX, &status, err)) != 0) {
        return rc;
    }
    if (!in_list(status, maintenance ? maintenance_statuses : incident_statuses)) {
        return tc_error_set(err, TC_EINVAL, "%s",
                            maintenance ? "status: must be scheduled, in_progress, verifying or "
                                          "completed for kind maintenance"
                                        : "status: must be investigating, identified, monitoring "
                                          "or resolved for kind incident");
    }

    const json_t *impact = json_object_get(obj, "impact");
    enum tc_impact imp;
    if (impact == NULL) {
        return tc_error_set(err, TC_EINVAL, "impact: required");
    }
    if (tc_impact_parse(json_string_value(impact), &imp) != 0) {
        return tc_error_set(err, TC_EINVAL, "impact: must be none, minor, major or critical");
    }
    if ((rc = check_string(obj, "message", false, 0, 4096, &s, err)) != 0) {
        return rc;
    }
    if ((rc = check_id_array(obj, "components", true, 1, err)) != 0) {
        return rc;
    }
    if ((rc = check_id_array(obj, "regions", false, 0, err)) != 0) {
        return rc;
    }
    if ((rc = check_component_status(obj, err)) != 0) {
        return rc;
    }
    if ((rc = check_int(obj, "affected_users", false, 0, err)) != 0) {
        return rc;
    }
    return check_links(obj, err);
}

/* Stores an integral real (7.0) back as an integer, so the state JSON and the
 * store script see one representation. validate has checked the range. */
static void
normalize_int(json_t *obj, const char *field)
{
    json_t *v = json_object_get(obj, field);
    if (json_is_real(v)) {
        json_object_set_new(obj, field, json_integer((json_int_t)json_real_value(v)));
    }
}

int
tc_event_parse(const char *buf, size_t len, struct tc_event *out, struct tc_error *err)
{
    json_t *root = NULL;
    json_error_t jerr;
    int rc;

    memset(out, 0, sizeof(*out));
    if (buf == NULL) {
        buf = "";
        len = 0;
    }
    /* At the bound the event is refused whole (it goes to the DLQ). */
    if (len > TC_EVENT_MAX_BYTES) {
        rc = tc_error_set(err, TC_ETOOBIG, "(root): event is %zu bytes, over %d", len,
                          TC_EVENT_MAX_BYTES);
        goto out;
    }
    if (memchr(buf, '\0', len) != NULL) {
        rc = tc_error_set(err, TC_EINVAL, "(root): contains a NUL byte");
        goto out;
    }
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (root == NULL) {
        rc = tc_error_set(err, TC_EINVAL, "(root): not valid JSON: %s at byte %d", jerr.text,
                          jerr.position);
        goto out;
    }
    if ((rc = tc_event_validate(root, err)) != 0) {
        goto out;
    }
    if (json_object_get(root, "kind") == NULL) {
        json_object_set_new(root, "kind", json_string("incident"));
    }
    normalize_int(root, "version");
    normalize_int(root, "affected_users");

    const char *status = json_string_value(json_object_get(root, "status"));
    out->event_id = json_string_value(json_object_get(root, "event_id"));
    out->incident_id = json_string_value(json_object_get(root, "incident_id"));
    out->version = json_integer_value(json_object_get(root, "version"));
    tc_impact_parse(json_string_value(json_object_get(root, "impact")), &out->impact);
    out->ends = strcmp(status, "resolved") == 0 || strcmp(status, "completed") == 0;
    out->json = root;
    root = NULL;
    rc = TC_OK;
out:
    json_decref(root);
    return rc;
}

void
tc_event_fini(struct tc_event *ev)
{
    if (ev == NULL) {
        return;
    }
    json_decref(ev->json);
    memset(ev, 0, sizeof(*ev));
}

char *
tc_event_state_json(const struct tc_event *ev)
{
    /* A shallow copy: the nested values are shared, only the top level gets
     * updated_at, so ev->json is left as it was. */
    json_t *state = json_copy(ev->json);
    char *text = NULL;
    if (state == NULL) {
        abort(); /* jansson fails here only when out of memory (see util.h) */
    }
    json_object_set(state, "updated_at", json_object_get(ev->json, "occurred_at"));
    /* started_at is the store's to set (it survives across versions); a
     * producer's own would appear twice in the state. */
    json_object_del(state, "started_at");
    text = json_dumps(state, JSON_COMPACT);
    json_decref(state);
    if (text == NULL) {
        abort(); /* as above: the state is a valid object */
    }
    return text;
}
