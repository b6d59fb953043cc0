/* tocsin — SPDX-License-Identifier: MIT
 *
 * The webhook admin API (DESIGN §5): create, list, show, delete, replay,
 * rotate-secret, enable and test on top of the store's endpoint registry. It knows no HTTP
 * server: each call answers once through the reply function main.c passes
 * (the admin API's). Secrets are shown on create and rotate only.
 * @loop main.
 */
#ifndef TC_WEBHOOK_ADMIN_H
#define TC_WEBHOOK_ADMIN_H

#include "store/webhooks.h"

struct tc_webhook;

#include <jansson.h>

/* Answers one request: status and a compact JSON body. */
typedef void (*tc_webhook_reply_fn)(void *req, int status, const char *json, size_t len);

/* POST /v1/webhooks {"url","filter","description"} → 201 with the endpoint
 * and its "secret", or 400 naming the bad field. @borrows body. */
void tc_webhook_admin_create(struct tc_store *store, const json_t *body, tc_webhook_reply_fn reply,
                             void *req);
/* The checks of create's body, without the store (pure; also the fuzz
 * target's entry): only url, filter and description; url an http:// or
 * https:// URL of at most 2048 bytes without space, tab, CR or LF;
 * description a string of at most 1024 bytes; filter null or a valid filter.
 * @borrows body. @returns 0, or TC_EINVAL with the first bad field named in
 * msg (a NUL-terminated text of at most len bytes). */
int tc_webhook_admin_validate(const json_t *body, char *msg, size_t len);
void tc_webhook_admin_list(struct tc_store *store, tc_webhook_reply_fn reply, void *req);
void tc_webhook_admin_get(struct tc_store *store, const char *id, tc_webhook_reply_fn reply,
                          void *req);
void tc_webhook_admin_delete(struct tc_store *store, const char *id, tc_webhook_reply_fn reply,
                             void *req);
void tc_webhook_admin_replay(struct tc_store *store, const char *id, tc_webhook_reply_fn reply,
                             void *req);
void tc_webhook_admin_rotate(struct tc_store *store, const char *id, tc_webhook_reply_fn reply,
                             void *req);
/* POST /v1/webhooks/{id}/enable: clears "disabled" (410 or failing too long). */
void tc_webhook_admin_enable(struct tc_store *store, const char *id, tc_webhook_reply_fn reply,
                             void *req);
/* POST /v1/webhooks/{id}/test: sends a signed test message now and answers
 * 200 {"webhook_id","delivered","status","error","duration_ms"} once the
 * receiver answered (or webhook.timeout passed). */
void tc_webhook_admin_test(struct tc_webhook *wh, const char *id, tc_webhook_reply_fn reply,
                           void *req);

#endif
