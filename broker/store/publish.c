/* tocsin — SPDX-License-Identifier: MIT
 *
 * The publishing API's question to Redis (see publish.h): one GET of the
 * event's dedup key on the command connection.
 */
#include "store/publish.h"
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

static void
outcome_done(struct tc_store__req *req, int status, const redisReply *reply)
{
    uint64_t seq = 0;
    if (status == 0) {
        if (reply->type == REDIS_REPLY_NIL) {
            status = TC_ENOENT;
        } else if (reply->type == REDIS_REPLY_STRING) {
            seq = strtoull(reply->str, NULL, 10);
        } else {
            status = TC_EIO;
        }
    }
    req->cb.count(req->arg, status, seq);
}

void
tc_store_event_outcome(struct tc_store *s, const char *event_id, tc_store_outcome_cb cb, void *arg)
{
    int rc = tc_store__cmd_admit(s);
    if (rc != 0) {
        cb(arg, rc, 0);
        return;
    }
    char *key = tc_xasprintf("%sdedup:%s", s->cfg->redis_prefix, event_id);
    struct tc_store__req *req = tc_store__cmd_req(s, -1, outcome_done, 0, arg);
    req->cb.count = cb;
    tc_store__submit_strs(s, req, 2, (const char *[]){"GET", key});
    free(key);
}
