/* tocsin — SPDX-License-Identifier: MIT
 *
 * The incident event (DESIGN §2): parse and validate one Kafka value, and
 * build the incident state the store saves. Pure: no I/O, no loops.
 * The rules here and schemas/incident-event.schema.json must agree; the
 * differential test (tests/e2e/test_schema_diff.py with tests/tools/tc-validate-event)
 * holds them.
 */
#ifndef TC_MODEL_INCIDENT_H
#define TC_MODEL_INCIDENT_H

#include "util/util.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define TC_EVENT_MAX_BYTES 65536

enum tc_impact {
    TC_IMPACT_NONE = 0,
    TC_IMPACT_MINOR = 1,
    TC_IMPACT_MAJOR = 2,
    TC_IMPACT_CRITICAL = 3,
};

struct tc_event {
    json_t *json;            /* owned: the whole event, unknown fields kept, "kind" filled */
    const char *event_id;    /* borrowed from json */
    const char *incident_id; /* borrowed from json */
    int64_t version;
    enum tc_impact impact;
    bool ends; /* status is "resolved" or "completed" */
};

/* Parses and validates one event. On failure err->text starts with the field
 * name ("title: must be 1-200 characters", "(root): not valid JSON: ...").
 * @returns 0, TC_ETOOBIG (over TC_EVENT_MAX_BYTES) or TC_EINVAL. On success
 * the caller owns out and frees it with tc_event_fini. */
int tc_event_parse(const char *buf, size_t len, struct tc_event *out, struct tc_error *err);
/* Validates an already parsed object against every rule (used by parse, and
 * later by the publishing API). @borrows obj. */
int tc_event_validate(const json_t *obj, struct tc_error *err);
void tc_event_fini(struct tc_event *ev);

/* The incident state of this event: every field of the event plus
 * "updated_at" (= occurred_at); "started_at" is added by the store script.
 * @returns new compact JSON text, caller frees. */
char *tc_event_state_json(const struct tc_event *ev);

const char *tc_impact_name(enum tc_impact impact);
/* @returns 0 or TC_EINVAL. */
int tc_impact_parse(const char *name, enum tc_impact *out);

/* True for the ids of components and regions: 1-64 of [a-z0-9._-]. */
bool tc_is_component_id(const char *s);

#endif
