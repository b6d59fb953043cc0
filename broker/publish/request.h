/* tocsin — SPDX-License-Identifier: MIT
 *
 * The publishing API's request rules (DESIGN §2, issue 5), pure: the body
 * checks of POST /v1/incidents and POST /v1/incidents/{id}/updates, and the
 * event built from an incident's state and a request. No store, no Kafka,
 * no reply: api.c does those; this is what the unit tests and the fuzz
 * target call.
 */
#ifndef TC_PUBLISH_REQUEST_H
#define TC_PUBLISH_REQUEST_H

#include "util/util.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* One checked request. */
struct tc_publish_request {
    json_t *fields;        /* the body without "version" (a new copy) */
    char incident_id[129]; /* the path's, the body's, or "" (open: tocsind picks one) */
    int64_t want_version;  /* the version the publisher asked for, 0 = any */
};

/* Checks body: an object without the fields tocsind sets (event_id,
 * occurred_at), "version" absent or an integer >= 1, and "incident_id"
 * 1-128 bytes (an opening, path_id NULL) or equal to path_id (an update).
 * An opening without "status" gets the first status of its kind
 * (investigating, or scheduled for maintenance). Everything else is left
 * to tc_publish_build (the event rules). Returns 0 and fills *req (free
 * with tc_publish_request_fini), or TC_EINVAL with *req empty and err
 * naming the field. @borrows body and path_id. */
int tc_publish_request_read(const json_t *body, const char *path_id, struct tc_publish_request *req,
                            struct tc_error *err);
void tc_publish_request_fini(struct tc_publish_request *req);

/* Builds the event into base (the incident's state, or an empty object for
 * an opening): the state-only fields (started_at, updated_at) go, the
 * request's fields are laid over, then incident_id, version, event_id and
 * occurred_at are set, and the result must pass tc_event_validate and
 * encode in at most TC_EVENT_MAX_BYTES. Returns 0, or TC_EINVAL with err
 * naming the field (base is then half-built: drop it). @borrows all. */
int tc_publish_build(json_t *base, const struct tc_publish_request *req, int64_t version,
                     const char *event_id, const char *occurred_at, struct tc_error *err);

#endif
