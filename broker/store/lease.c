/* tocsin — SPDX-License-Identifier: MIT
 *
 * Claim leases that this node can take back: each claim's lease end is a
 * score no other claim uses, and a claim that was sent but got no reply (a
 * timeout, a lost connection: Redis may still run it, or have run it) is
 * remembered until its lease ends, so that the next claims of its queue
 * first make its members due again. Without it, such jobs wait out the
 * whole lease (webhook.timeout + 30 s) although nobody is sending them.
 * It does not decide what is due or who sends: the claim scripts do.
 * @loop main.
 */
#include "store/store_internal.h"

#include "log/log.h"
#include "util/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The fraction of a lease end is j / 2^FRAC_BITS, j in 1 .. 2^FRAC_BITS - 1.
 * A ms count below 2^(53 - FRAC_BITS) (2^42 ms: the year 2109) plus such a
 * fraction is exactly a double, so the decimal text below, Redis's score and
 * Lua's tonumber of it are the same number. 5^11 turns j into the 11
 * decimal digits of j / 2^11 exactly. */
#define FRAC_BITS 11
#define FRAC_MUL  48828125ULL
#define MS_LIMIT  (1ULL << (53 - FRAC_BITS))
_Static_assert(FRAC_MUL == 48828125ULL && FRAC_BITS == 11, "FRAC_MUL is 5^FRAC_BITS");
/* The release's numkeys, key, now and scores fit tc_store__submit_strs. */
_Static_assert(3 + TC_STORE__LOST_MAX <= 32, "too many lost claims for one release");

/* KEYS: 1 the queue's zset. ARGV: 1 now ms, 2.. lease ends of lost claims.
 * Every member whose score is exactly one of them is due again now. Returns
 * how many were. A lease end is unique to its claim (see lease_end), so
 * this never takes back another claim's lease. */
const char tc_store__release_lua[] =
    "local n = 0\n"
    "for i = 2, #ARGV do\n"
    "  for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[i], ARGV[i])) do\n"
    "    redis.call('ZADD', KEYS[1], ARGV[1], m)\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "return n\n";

static const char *const queue_names[TC_STORE__NQUEUES] = {
    [TC_STORE__Q_WH] = "webhook",
    [TC_STORE__Q_EM] = "email",
};

void
tc_store__lease_end(uint64_t now_ms, uint64_t lease_ms, char out[TC_STORE_LEASE_MAX])
{
    uint16_t r = 0;
    uint64_t ms = now_ms + lease_ms;
    uint64_t j;

    /* Lease ends differ between claims by their random fraction: two claims
     * (of any node) collide only when they end in the same ms AND draw the
     * same j, 1 in 2047; only then could a release (itself rare: a reply
     * lost) make another node's job due early, which may cost a repeated
     * attempt (a webhook with the same id, or a second mail), never a lost
     * job or a break of order (completion checks the FIFO head / lease). Scores written by anything
     * else are whole ms, never equal to one of these. The end lies in (ms - 1, ms), so a lease of L
     * ms is over at now + L, as it always was. */
    if (tc_random_bytes(&r, sizeof(r)) != 0) {
        r = (uint16_t)(tc_now_ms() ^ now_ms);
    }
    j = 1 + r % ((1u << FRAC_BITS) - 1);
    if (ms == 0 || ms >= MS_LIMIT) {
        /* Not a wall clock (a test's 0) or past 2109: a whole ms, as
         * before, which is merely not releasable. */
        snprintf(out, TC_STORE_LEASE_MAX, "%" PRIu64, ms);
        return;
    }
    snprintf(out, TC_STORE_LEASE_MAX, "%" PRIu64 ".%011" PRIu64, ms - 1,
             (uint64_t)(((1ULL << FRAC_BITS) - j) * FRAC_MUL));
}

uint64_t
tc_store__lease_until(const char *lease_end)
{
    return strtoull(lease_end, NULL, 10) + (strchr(lease_end, '.') != NULL ? 1 : 0);
}

void
tc_store__lease_lost(struct tc_store *s, int queue, const char *lease_end, uint64_t until_ms)
{
    struct tc_store__lost *l = &s->lost[queue];

    if (strchr(lease_end, '.') == NULL) {
        return; /* a whole ms: see tc_store__lease_end */
    }
    if (l->n == TC_STORE__LOST_MAX) {
        /* The oldest is dropped: its lease simply runs out. */
        memmove(&l->e[0], &l->e[1], sizeof(l->e[0]) * (TC_STORE__LOST_MAX - 1));
        l->n--;
    }
    snprintf(l->e[l->n].score, sizeof(l->e[l->n].score), "%s", lease_end);
    l->e[l->n].until_ms = until_ms;
    l->n++;
}

static void
release_done(struct tc_store__req *req, int status, const redisReply *reply)
{
    /* A failed release is sent again with the next claim round. */
    if (status == 0 && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0) {
        tc_info("store", "released jobs of a claim whose reply was lost",
                TC_S("queue", queue_names[req->aux]), TC_I("jobs", reply->integer));
    }
}

void
tc_store__lease_release(struct tc_store *s, int queue, const char *zset, uint64_t now_ms)
{
    struct tc_store__lost *l = &s->lost[queue];
    const char *argv[3 + TC_STORE__LOST_MAX];
    char snow[24];
    size_t kept = 0;
    struct tc_store__req *req;

    /* Kept until its lease ends, not just until the first release: after a
     * freeze, Redis may run the lost claim (queued on the old connection)
     * after a release sent on the new one. */
    for (size_t i = 0; i < l->n; i++) {
        if (l->e[i].until_ms > now_ms) {
            l->e[kept++] = l->e[i];
        }
    }
    l->n = kept;
    if (kept == 0) {
        return;
    }
    snprintf(snow, sizeof(snow), "%" PRIu64, now_ms);
    argv[0] = "1";
    argv[1] = zset;
    argv[2] = snow;
    for (size_t i = 0; i < kept; i++) {
        argv[3 + i] = l->e[i].score;
    }
    req = tc_store__cmd_req(s, TC_STORE__RELEASE, release_done, queue, NULL);
    tc_store__submit_strs(s, req, 3 + (int)kept, argv);
}

void
tc_store__lease_check(struct tc_store__req *req, int status, int queue, int argi)
{
    const char *lease_end;

    if (status == 0 || !req->sent || req->argv == NULL || 2 + argi >= req->argc) {
        return;
    }
    /* A script request's argv is EVALSHA, sha, then what was submitted. */
    lease_end = req->argv[2 + argi];
    tc_store__lease_lost(req->conn->store, queue, lease_end, tc_store__lease_until(lease_end));
}
