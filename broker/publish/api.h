/* tocsin — SPDX-License-Identifier: MIT
 *
 * The publishing API (issue 5; admin token): POST /v1/incidents opens an
 * incident, POST /v1/incidents/{id}/updates posts a state change. tocsind
 * fills event_id, version (current + 1) and occurred_at, validates with the
 * event rules (model/incident.h), produces to Kafka with acks=all, then
 * waits briefly for the store's verdict on that event_id, so the answer is
 * the truth: 202 accepted (with its seq), 409 when another publisher's
 * event took that version first (a version race: nothing is silently lost),
 * 400 naming the bad field, 404 unknown incident, 503 Kafka or Redis
 * unreachable. An event Kafka holds but the store has not applied within
 * the wait is answered 202 with "applied": false: it will be.
 * @loop main.
 */
#ifndef TC_PUBLISH_API_H
#define TC_PUBLISH_API_H

#include "http/server.h"
#include "ingest/producer.h"
#include "store/store.h"

struct tc_publish_api;

/* @borrows every argument (they must outlive the API). @returns NULL when
 * the route table is full. */
struct tc_publish_api *tc_publish_api_new(struct tc_server *srv, struct tc_store *store,
                                          struct tc_producer *producer, uv_loop_t *loop);
/* Stops waiting for verdicts: requests waiting get 202 "applied": false.
 * Call before the store and producer close. */
void tc_publish_api_close(struct tc_publish_api *api);
void tc_publish_api_free(struct tc_publish_api *api);

#endif
