/* tocsin — SPDX-License-Identifier: MIT
 *
 * The coalescing model of the email gateway (DESIGN §6): the updates one
 * subscriber collected during the coalescing window become one digest, i.e.
 * the template context of one email and its subject line. Pure (jansson
 * only): the window itself, the job queue and sending live elsewhere.
 */
#ifndef TC_EMAIL_DIGEST_H
#define TC_EMAIL_DIGEST_H

#include "util/util.h"

#include <jansson.h>

/* Updates one digest takes; the caller splits a longer backlog. */
#define TC_EMAIL_DIGEST_UPDATES_MAX 1000
/* Subject bound in bytes; a longer one is cut on a UTF-8 boundary and ends
 * in "…". */
#define TC_EMAIL_DIGEST_SUBJECT_MAX 150

/* Builds the digest context from updates, a non-empty array (normally in seq
 * order) of {"seq":N,"incident":{...incident state, DESIGN §2/§4...}}:
 *
 *   {"subject":"[Resolved] Playback outage",
 *    "count_incidents":k, "count_updates":n, "last_seq":N,
 *    "incidents":[{...every field of the incident's latest state...,
 *        "status_label":"Identified", "impact_label":"Major",
 *        "status_color":"#d9480f", "resolved":false,
 *        "components_label":"playback, search", "regions_label":"eu-west"
 *            (or "all regions"),
 *        "updated_label":"2026-11-25 12:03 UTC",
 *        "transitions":[{"from":null,"to":"investigating",
 *                        "from_label":null,"to_label":"Investigating",
 *                        "at":"2026-11-25T12:00:00Z","at_label":"12:00 UTC"},
 *                       {"from":"investigating","to":"identified",...}]}],
 *    "public_url":..., "unsubscribe_url":...}
 *
 * Incidents come in the order of their first update (by seq). Per incident
 * the highest version is the state shown, whatever order updates arrived in;
 * an update repeating a version already seen is ignored (and not counted in
 * count_updates). Transitions run in version order: the first update of the
 * window gives one with "from": null (the state first seen in this mail),
 * each later status change one more; updates that keep the status add none.
 * "at" is the update's updated_at (else occurred_at). The subject is
 * "[<status label>] <title>" for one incident, "<k> incident updates: <title>,
 * <title>, ..." for several, at most TC_EMAIL_DIGEST_SUBJECT_MAX bytes, with
 * control characters in titles replaced by spaces.
 * public_url and unsubscribe_url are copied when not NULL (templates test
 * them with sections). @borrows every argument.
 * Returns 0 and a new *ctx (json_decref it); TC_EINVAL when updates is not a
 * non-empty array of well-formed entries (err names the index and field:
 * "updates[2].incident.version: not a positive integer"); TC_ETOOBIG over
 * TC_EMAIL_DIGEST_UPDATES_MAX. */
int tc_email_digest_build(const json_t *updates, const char *public_url,
                          const char *unsubscribe_url, json_t **ctx, struct tc_error *err);

/* Display label of a status ("in_progress" -> "In progress"); unknown
 * statuses are capitalised with '_' as spaces. @returns new string. */
char *tc_email_digest_status_label(const char *status);

#endif
