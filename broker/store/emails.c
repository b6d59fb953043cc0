/* tocsin — SPDX-License-Identifier: MIT
 *
 * The email queue and subscriber registry in Redis (DESIGN §6, §8): the Lua
 * that claims and completes mails and administers subscribers, rate limits
 * and the link key, and the C entry points that send it on the store's
 * command connection (its requests, timeouts and NOSCRIPT path). The updates
 * themselves are queued by the per-event script (TC_STORE__EM_ENQUEUE_LUA in
 * store_internal.h). Sending mail is not done here.
 *
 * Keys (P = redis.prefix): P em:subs (hash id -> subscriber JSON), P em:addr
 * (hash address -> id: one subscriber per address), P em:confirmed (hash id
 * -> filter JSON of the confirmed subscribers, all the per-event script
 * reads), P em:q:<id> (list of queue items: "c", the confirmation mail, or
 * a seq), P em:upd:<seq> (the update {"seq":N,"incident":{...}}, stored once
 * however many queues hold it), P em:refs (hash seq -> queues holding it; the
 * update is deleted when it drops to 0), P em:due (zset id -> due ms; a claim
 * sets it to its lease end), P em:first (hash id -> wall ms its oldest queued
 * item was queued), P em:tries (hash id -> attempts of the current mail),
 * P em:att:<id> (list, the last attempts), P em:cnt:<id> (hash: mails
 * delivered and failed), P em:rate:<bucket>:<window> (counters that expire),
 * P em:key (the link key).
 */
#include "store/store_internal.h"

#include "util/util.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest subscriber id, address, source, rate bucket and link key taken;
 * longer is TC_EINVAL (they become key names and JSON, so they are bounded
 * before anything is allocated for them). */
#define ID_MAX      128
#define ADDRESS_MAX 320
#define SOURCE_MAX  64
#define BUCKET_MAX  512
#define LINKKEY_MAX 1024

/* TC_STORE_EM_ATTEMPTS_KEPT - 1 as Lua text (the LTRIM end). */
#define ATT_LAST_LUA "19"
_Static_assert(TC_STORE_EM_ATTEMPTS_KEPT == 20, "ATT_LAST_LUA is out of date");

/* clang-format off */
/* Drops queue items: each seq loses one reference, and its update is
 * deleted when no queue holds it any more ("c" has no update). */
#define EM_UNREF_LUA \
    "local function em_unref(refs, P, items)\n" \
    "  for _, it in ipairs(items) do\n" \
    "    if it ~= 'c' and redis.call('HINCRBY', refs, it, -1) <= 0 then\n" \
    "      redis.call('HDEL', refs, it)\n" \
    "      redis.call('DEL', P .. 'em:upd:' .. it)\n" \
    "    end\n" \
    "  end\n" \
    "end\n"

/* KEYS: 1 em:due, 2 em:subs, 3 em:refs, 4 em:first, 5 em:tries. ARGV: 1 now
 * ms, 2 lease end (the score text of tc_store__lease_end), 3 max, 4 P,
 * 5 updates per mail. Returns 8 strings per job:
 * id, subscriber JSON, "confirm" or "digest", updates JSON array, queue items
 * carried, attempts, first queued ms, lease end ms. A "c" at the head is a
 * mail of its own; otherwise the leading seqs up to the next "c" make the
 * digest. An update that cannot be read is skipped but still counted, so
 * that complete drops it; a digest with none readable is dropped here rather
 * than sent empty. The queue of a subscriber deleted meanwhile goes too. */
const char tc_store__em_claim_lua[] =
    EM_UNREF_LUA
    "local P, umax = ARGV[4], tonumber(ARGV[5])\n"
    "local lease = ARGV[2]\n"
    "local out = {}\n"
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])\n"
    "for _, id in ipairs(due) do\n"
    "  local q = P .. 'em:q:' .. id\n"
    "  local sub = redis.call('HGET', KEYS[2], id)\n"
    "  local items, kind, n, parts, send = {}, 'confirm', 1, {}, true\n"
    "  if sub then\n"
    "    items = redis.call('LRANGE', q, 0, umax - 1)\n"
    "  else\n"
    "    em_unref(KEYS[3], P, redis.call('LRANGE', q, 0, -1))\n"
    "    redis.call('DEL', q)\n"
    "  end\n"
    "  if #items > 0 and items[1] ~= 'c' then\n"
    "    local keys = {}\n"
    "    kind, n = 'digest', 0\n"
    "    for _, it in ipairs(items) do\n"
    "      if it == 'c' then break end\n"
    "      n = n + 1\n"
    "      keys[n] = P .. 'em:upd:' .. it\n"
    "    end\n"
    "    for _, u in ipairs(redis.call('MGET', unpack(keys))) do\n"
    "      if u then parts[#parts + 1] = u end\n"
    "    end\n"
    "    if #parts == 0 then\n"
    /* Nothing to mail: the items go, and what follows them (if anything)
     * stays due for the next claim. */
    "      em_unref(KEYS[3], P, {unpack(items, 1, n)})\n"
    "      redis.call('LTRIM', q, n, -1)\n"
    "      items, send = redis.call('LRANGE', q, 0, 0), false\n"
    "    end\n"
    "  end\n"
    "  if #items == 0 then\n"
    "    redis.call('ZREM', KEYS[1], id)\n"
    "    redis.call('HDEL', KEYS[4], id)\n"
    "    redis.call('HDEL', KEYS[5], id)\n"
    "  elseif send then\n"
    "    redis.call('ZADD', KEYS[1], lease, id)\n"
    "    local vals = {id, sub, kind, '[' .. table.concat(parts, ',') .. ']',\n"
    "      string.format('%d', n), redis.call('HGET', KEYS[5], id) or '0',\n"
    "      redis.call('HGET', KEYS[4], id) or '0', lease}\n"
    "    for _, v in ipairs(vals) do out[#out + 1] = v end\n"
    "  end\n"
    "end\n"
    "return out\n";

/* KEYS: 1 em:due, 2 em:subs, 3 em:refs, 4 em:first, 5 em:tries. ARGV: 1 id,
 * 2 lease end (as claim returned it), 3 queue items carried, 4 delivered|retry|failed, 5 next due
 * ms, 6 attempt JSON, 7 P, 8 now ms, 9 email.coalesce ms. Returns 1 when
 * applied, 0 when the subscriber is gone or the lease was lost (its due time
 * is no longer the lease end: another node claimed it since, or it was
 * confirmed or deleted); the attempt is recorded either way while the
 * subscriber exists. Only the lease holder takes items off the head, and
 * items are only ever added at the tail, so the first nitems are exactly
 * the ones the mail carried. */
const char tc_store__em_complete_lua[] =
    EM_UNREF_LUA
    "local id, P = ARGV[1], ARGV[7]\n"
    "if redis.call('HEXISTS', KEYS[2], id) == 0 then return 0 end\n"
    "local ak = P .. 'em:att:' .. id\n"
    "redis.call('LPUSH', ak, ARGV[6])\n"
    "redis.call('LTRIM', ak, 0, " ATT_LAST_LUA ")\n"
    "local score = tonumber(redis.call('ZSCORE', KEYS[1], id) or '')\n"
    "if score == nil or score ~= tonumber(ARGV[2]) then return 0 end\n"
    "if ARGV[4] == 'retry' then\n"
    "  redis.call('HINCRBY', KEYS[5], id, 1)\n"
    "  redis.call('ZADD', KEYS[1], ARGV[5], id)\n"
    "  return 1\n"
    "end\n"
    "local q, n = P .. 'em:q:' .. id, tonumber(ARGV[3])\n"
    "if n > 0 then\n"
    "  em_unref(KEYS[3], P, redis.call('LRANGE', q, 0, n - 1))\n"
    "  redis.call('LTRIM', q, n, -1)\n"
    "end\n"
    "redis.call('HDEL', KEYS[5], id)\n"
    "redis.call('HINCRBY', P .. 'em:cnt:' .. id, ARGV[4], 1)\n"
    /* Items queued while this mail was out open a new window from now: one
     * mail per window at most, however the updates fall. */
    "if redis.call('LLEN', q) > 0 then\n"
    "  local due = string.format('%d', tonumber(ARGV[8]) + tonumber(ARGV[9]))\n"
    "  redis.call('ZADD', KEYS[1], due, id)\n"
    "  redis.call('HSET', KEYS[4], id, ARGV[8])\n"
    "else\n"
    "  redis.call('ZREM', KEYS[1], id)\n"
    "  redis.call('HDEL', KEYS[4], id)\n"
    "end\n"
    "return 1\n";

/* KEYS: 1 em:subs, 2 em:addr, 3 em:confirmed, 4 em:due, 5 em:first. ARGV:
 * 1 id, 2 address, 3 subscriber JSON, 4 filter JSON, 5 confirmed (1/0), 6 P,
 * 7 now ms. Returns {"subscriber":...,"created":true|false}, or -2 when the
 * id is taken by another address. An unconfirmed subscriber gets its
 * confirmation mail queued, due at once. */
const char tc_store__em_create_lua[] =
    "local id, addr = ARGV[1], ARGV[2]\n"
    "local old = redis.call('HGET', KEYS[2], addr)\n"
    "local sub = old and redis.call('HGET', KEYS[1], old)\n"
    "if sub then return '{\"subscriber\":' .. sub .. ',\"created\":false}' end\n"
    "if redis.call('HEXISTS', KEYS[1], id) == 1 then return -2 end\n"
    "redis.call('HSET', KEYS[1], id, ARGV[3])\n"
    "redis.call('HSET', KEYS[2], addr, id)\n"
    "if ARGV[5] == '1' then\n"
    "  redis.call('HSET', KEYS[3], id, ARGV[4])\n"
    "else\n"
    "  redis.call('RPUSH', ARGV[6] .. 'em:q:' .. id, 'c')\n"
    "  redis.call('ZADD', KEYS[4], ARGV[7], id)\n"
    "  redis.call('HSET', KEYS[5], id, ARGV[7])\n"
    "end\n"
    "return '{\"subscriber\":' .. ARGV[3] .. ',\"created\":true}'\n";

/* KEYS: 1 em:subs, 2 em:due, 3 em:first. ARGV: 1 id, 2 P, 3 now ms. Returns
 * 1 when queued, 0 when confirmed or a confirmation mail is already queued,
 * -1 for an unknown id. The subscriber JSON is written by C with compact
 * separators, and "confirmed" is a key of no nested object, so the plain
 * text search is exact. */
const char tc_store__em_resend_lua[] =
    "local id = ARGV[1]\n"
    "local sub = redis.call('HGET', KEYS[1], id)\n"
    "if not sub then return -1 end\n"
    "if not string.find(sub, '\"confirmed\":false,', 1, true) then return 0 end\n"
    "local q = ARGV[2] .. 'em:q:' .. id\n"
    "if redis.call('LPOS', q, 'c') then return 0 end\n"
    "if redis.call('RPUSH', q, 'c') == 1 then redis.call('HSET', KEYS[3], id, ARGV[3]) end\n"
    "redis.call('ZADD', KEYS[2], 'NX', ARGV[3], id)\n"
    "return 1\n";

/* KEYS: 1 em:subs, 2 em:confirmed, 3 em:due, 4 em:first, 5 em:tries. ARGV:
 * 1 id, 2 P, 3 now s, 4 now ms, 5 email.coalesce ms. Returns the subscriber
 * JSON or nil. The JSON is edited as text (see resend), which keeps its key
 * order and its filter's empty arrays; the filter copied to em:confirmed is
 * re-encoded with them put back, since cjson writes an empty table as {}. A
 * confirmation mail still queued has served its purpose and is dropped; if
 * it was leased, moving the due time makes that lease's complete a no-op. */
const char tc_store__em_confirm_lua[] =
    "local id = ARGV[1]\n"
    "local sub = redis.call('HGET', KEYS[1], id)\n"
    "if not sub then return false end\n"
    "local s, k = string.gsub(sub, '\"confirmed\":false,', '\"confirmed\":true,', 1)\n"
    "if k == 0 then return sub end\n"
    "s = string.gsub(s, '\"confirmed_at\":null', '\"confirmed_at\":' .. ARGV[3], 1)\n"
    "local f = cjson.decode(s).filter\n"
    "if type(f) ~= 'table' then f = {} end\n"
    "for _, key in ipairs({'components', 'regions'}) do\n"
    "  if type(f[key]) ~= 'table' or #f[key] == 0 then f[key] = '\\1[]' end\n"
    "end\n"
    "redis.call('HSET', KEYS[1], id, s)\n"
    "redis.call('HSET', KEYS[2], id, (string.gsub(cjson.encode(f), '\"\\\\u0001%[%]\"', '[]')))\n"
    "local q = ARGV[2] .. 'em:q:' .. id\n"
    "if redis.call('LREM', q, 0, 'c') > 0 then\n"
    "  redis.call('HDEL', KEYS[5], id)\n"
    "  if redis.call('LLEN', q) == 0 then\n"
    "    redis.call('ZREM', KEYS[3], id)\n"
    "    redis.call('HDEL', KEYS[4], id)\n"
    "  else\n"
    "    redis.call('ZADD', KEYS[3], string.format('%d', tonumber(ARGV[4]) + tonumber(ARGV[5])),"
    " id)\n"
    "  end\n"
    "end\n"
    "return s\n";

/* KEYS: 1 em:subs. ARGV: 1 id, 2 P. Returns the JSON text or nil. */
const char tc_store__em_get_lua[] =
    "local id, P = ARGV[1], ARGV[2]\n"
    "local sub = redis.call('HGET', KEYS[1], id)\n"
    "if not sub then return false end\n"
    "local c = redis.call('HMGET', P .. 'em:cnt:' .. id, 'delivered', 'failed')\n"
    "local att = redis.call('LRANGE', P .. 'em:att:' .. id, 0, " ATT_LAST_LUA ")\n"
    "return '{\"subscriber\":' .. sub .. ',\"pending\":' ..\n"
    "  string.format('%d', redis.call('LLEN', P .. 'em:q:' .. id)) .. ',\"delivered\":' ..\n"
    "  (c[1] or '0') .. ',\"failed\":' .. (c[2] or '0') .. ',\"attempts\":[' ..\n"
    "  table.concat(att, ',') .. ']}'\n";

/* KEYS: 1 em:subs, 2 em:addr, 3 em:confirmed, 4 em:due, 5 em:refs, 6
 * em:first, 7 em:tries. ARGV: 1 id, 2 P. Returns 1, or 0 for an unknown id.
 * Every key of the subscriber goes, and its queued updates lose a reference
 * each. */
const char tc_store__em_delete_lua[] =
    EM_UNREF_LUA
    "local id, P = ARGV[1], ARGV[2]\n"
    "local sub = redis.call('HGET', KEYS[1], id)\n"
    "if not sub then return 0 end\n"
    "local ok, s = pcall(cjson.decode, sub)\n"
    "if ok and type(s) == 'table' and type(s.address) == 'string' and\n"
    "    redis.call('HGET', KEYS[2], s.address) == id then\n"
    "  redis.call('HDEL', KEYS[2], s.address)\n"
    "end\n"
    "local q = P .. 'em:q:' .. id\n"
    "em_unref(KEYS[5], P, redis.call('LRANGE', q, 0, -1))\n"
    "redis.call('DEL', q, P .. 'em:att:' .. id, P .. 'em:cnt:' .. id)\n"
    "redis.call('HDEL', KEYS[1], id)\n"
    "redis.call('HDEL', KEYS[3], id)\n"
    "redis.call('ZREM', KEYS[4], id)\n"
    "redis.call('HDEL', KEYS[6], id)\n"
    "redis.call('HDEL', KEYS[7], id)\n"
    "return 1\n";

/* KEYS: 1 em:rate:<bucket>:<window>. ARGV: 1 window s. Returns the count.
 * The counter lives one window from its first hit: past the end of its own
 * window, when the next window's key has taken over. */
const char tc_store__em_rate_lua[] =
    "local n = redis.call('INCR', KEYS[1])\n"
    "if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end\n"
    "return n\n";

/* KEYS: 1 em:key. ARGV: 1 candidate. Returns the key that holds: the first
 * writer wins, so every node signs with the same key. */
const char tc_store__em_link_key_lua[] =
    "redis.call('SET', KEYS[1], ARGV[1], 'NX')\n"
    "return redis.call('GET', KEYS[1])\n";

/* KEYS: 1 em:due. ARGV: 1 now ms. Returns {subscribers with queued items,
 * those due now and not leased}: every subscriber with items is in em:due,
 * and a lease puts its score in the future. */
const char tc_store__em_stats_lua[] =
    "return {redis.call('ZCARD', KEYS[1]), redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1])}\n";
/* clang-format on */

/* ---- sending ---- */

/* The fixed keys, named by index in em_send. */
enum { K_DUE, K_SUBS, K_REFS, K_FIRST, K_TRIES, K_ADDR, K_CONFIRMED, K_KEY, K_NKEYS };
static const char *const key_names[K_NKEYS] = {
    [K_DUE] = "em:due",
    [K_SUBS] = "em:subs",
    [K_REFS] = "em:refs",
    [K_FIRST] = "em:first",
    [K_TRIES] = "em:tries",
    [K_ADDR] = "em:addr",
    [K_CONFIRMED] = "em:confirmed",
    [K_KEY] = "em:key",
};

/* Most keys and arguments of one script call (complete has 5 + 9). */
#define SEND_MAX 16

/* Sends req, a script request: numkeys, the fixed keys named in keys, then
 * args (NUL-terminated strings). */
static void
em_send(struct tc_store *s, struct tc_store__req *req, int nkeys, const int *keys, int nargs,
        const char **args)
{
    const char *argv[1 + SEND_MAX];
    char *owned[SEND_MAX] = {NULL};
    char snkeys[8];
    int argc = 0;

    /* Every caller here passes fixed, small counts. */
    if (nkeys < 0 || nargs < 0 || nkeys + nargs > SEND_MAX) {
        abort();
    }
    snprintf(snkeys, sizeof(snkeys), "%d", nkeys);
    argv[argc++] = snkeys;
    for (int i = 0; i < nkeys; i++) {
        owned[i] = tc_xasprintf("%s%s", s->cfg->redis_prefix, key_names[keys[i]]);
        argv[argc++] = owned[i];
    }
    for (int i = 0; i < nargs; i++) {
        argv[argc++] = args[i];
    }
    tc_store__submit_strs(s, req, argc, argv);
    for (int i = 0; i < nkeys; i++) {
        free(owned[i]);
    }
}

static uint64_t
wall_ms(void)
{
    return tc_wall_us() / 1000;
}

/* Admits a request, or answers cb at once. @returns 0 or the error. */
static int
admit_json(struct tc_store *s, tc_store_em_json_cb cb, void *arg)
{
    int rc = tc_store__cmd_admit(s);

    if (rc != 0) {
        cb(arg, rc, NULL, 0);
    }
    return rc;
}

static int
admit_count(struct tc_store *s, tc_store_em_count_cb cb, void *arg)
{
    int rc = tc_store__cmd_admit(s);

    if (rc != 0) {
        cb(arg, rc, 0);
    }
    return rc;
}

static bool
bounded(const char *str, size_t max)
{
    return str != NULL && str[0] != '\0' && strnlen(str, max + 1) <= max;
}

/* ---- claim and complete ---- */

/* Strings per claimed job in the claim script's reply. */
#define CLAIM_FIELDS 8
/* Where the claim's lease end is among its submitted arguments. */
#define CLAIM_LEASE_ARG 7

static uint64_t
num(const redisReply *r)
{
    return strtoull(r->str, NULL, 10);
}

static void
claim_done(struct tc_store__req *req, int status, const redisReply *reply)
{
    struct tc_store_em_job *jobs = NULL;
    size_t n = 0;

    tc_store__lease_check(req, status, TC_STORE__Q_EM, CLAIM_LEASE_ARG);
    if (status != 0) {
        goto out;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % CLAIM_FIELDS != 0) {
        status = TC_EIO;
        goto out;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_STRING ||
            (i % CLAIM_FIELDS == 7 && reply->element[i]->len >= TC_STORE_LEASE_MAX)) {
            status = TC_EIO;
            goto out;
        }
    }
    n = reply->elements / CLAIM_FIELDS;
    jobs = tc_xcalloc(n > 0 ? n : 1, sizeof(*jobs));
    for (size_t k = 0; k < n; k++) {
        redisReply **e = reply->element + CLAIM_FIELDS * k;
        jobs[k] = (struct tc_store_em_job){
            .subscriber_id = e[0]->str,
            .subscriber = e[1]->str,
            .subscriber_len = e[1]->len,
            .kind = strcmp(e[2]->str, "confirm") == 0 ? TC_STORE_EM_CONFIRM : TC_STORE_EM_DIGEST,
            .updates = e[3]->str,
            .updates_len = e[3]->len,
            .nitems = (size_t)num(e[4]),
            .attempts = num(e[5]),
            .first_queued_ms = num(e[6]),
            .lease_until_ms = tc_store__lease_until(e[7]->str),
            .lease = e[7]->str,
        };
    }
out:
    req->cb.em_claim(req->arg, status, status == 0 ? jobs : NULL, status == 0 ? n : 0);
    free(jobs);
}

void
tc_store_em_claim(struct tc_store *s, uint64_t now_ms, uint64_t lease_ms, size_t max,
                  tc_store_em_claim_cb cb, void *arg)
{
    char snow[24], slease[TC_STORE_LEASE_MAX], smax[24], sumax[24], *due;
    struct tc_store__req *req;
    int rc = tc_store__cmd_admit(s);

    if (rc != 0) {
        cb(arg, rc, NULL, 0);
        return;
    }
    snprintf(snow, sizeof(snow), "%" PRIu64, now_ms);
    tc_store__lease_end(now_ms, lease_ms, slease);
    snprintf(smax, sizeof(smax), "%zu", max > TC_STORE_EM_CLAIM_MAX ? TC_STORE_EM_CLAIM_MAX : max);
    snprintf(sumax, sizeof(sumax), "%d", TC_STORE_EM_MAIL_UPDATES_MAX);
    /* Sent first on the same connection, so this claim may take them. */
    due = tc_xasprintf("%s%s", s->cfg->redis_prefix, key_names[K_DUE]);
    tc_store__lease_release(s, TC_STORE__Q_EM, due, now_ms);
    free(due);
    req = tc_store__cmd_req(s, TC_STORE__EM_CLAIM, claim_done, 0, arg);
    req->cb.em_claim = cb;
    em_send(s, req, 5, (const int[]){K_DUE, K_SUBS, K_REFS, K_FIRST, K_TRIES}, 5,
            (const char *[]){snow, slease, smax, s->cfg->redis_prefix, sumax});
}

void
tc_store_em_complete(struct tc_store *s, const char *subscriber_id, const char *lease,
                     size_t nitems, enum tc_store_em_outcome outcome, uint64_t next_due_ms,
                     const char *attempt_json, tc_store_em_count_cb cb, void *arg)
{
    static const char *const names[] = {
        [TC_STORE_EM_DELIVERED] = "delivered",
        [TC_STORE_EM_RETRY] = "retry",
        [TC_STORE_EM_FAILED] = "failed",
    };
    char sn[24], snext[24], snow[24], scoalesce[24];
    struct tc_store__req *req;
    size_t alen = attempt_json != NULL ? strlen(attempt_json) : 0;

    if (admit_count(s, cb, arg) != 0) {
        return;
    }
    /* A claim never hands out more items than a mail carries: a larger
     * count would drop updates that were never sent. */
    if (!bounded(subscriber_id, ID_MAX) || !bounded(lease, TC_STORE_LEASE_MAX - 1) ||
        nitems > TC_STORE_EM_MAIL_UPDATES_MAX || (unsigned)outcome >= TC_ARRAY_SIZE(names)) {
        cb(arg, TC_EINVAL, 0);
        return;
    }
    /* The attempt goes into get's JSON as it is: only an object is kept. */
    if (alen < 2 || attempt_json[0] != '{' || attempt_json[alen - 1] != '}') {
        attempt_json = "{}";
    }
    snprintf(sn, sizeof(sn), "%zu", nitems);
    snprintf(snext, sizeof(snext), "%" PRIu64, next_due_ms);
    snprintf(snow, sizeof(snow), "%" PRIu64, wall_ms());
    snprintf(scoalesce, sizeof(scoalesce), "%" PRIu64, s->cfg->email_coalesce_ms);
    req = tc_store__cmd_req(s, TC_STORE__EM_COMPLETE, tc_store__count_done, TC_STORE__COUNT_PLAIN,
                            arg);
    req->cb.count = cb;
    em_send(s, req, 5, (const int[]){K_DUE, K_SUBS, K_REFS, K_FIRST, K_TRIES}, 9,
            (const char *[]){subscriber_id, lease, sn, names[outcome], snext, attempt_json,
                             s->cfg->redis_prefix, snow, scoalesce});
}

/* ---- subscribers ---- */

/* Builds the subscriber JSON and the compact filter text. The key order is
 * fixed and the output compact: the scripts edit "confirmed" as text.
 * @returns 0 or TC_EINVAL (filter_json is not an object). */
static int
subscriber_json(const char *id, const char *address, const char *filter_json, bool confirmed,
                const char *source, char **sub_out, char **filter_out)
{
    json_t *filter = json_loads(filter_json, JSON_REJECT_DUPLICATES, NULL);
    json_t *sub = NULL;
    json_int_t now_s = (json_int_t)(tc_wall_us() / 1000000);
    int rc = TC_EINVAL;

    *sub_out = *filter_out = NULL;
    if (!json_is_object(filter)) {
        goto out;
    }
    *filter_out = json_dumps(filter, JSON_COMPACT | JSON_PRESERVE_ORDER);
    sub = json_pack("{s:s, s:s, s:O, s:b, s:s, s:I, s:o}", "id", id, "address", address, "filter",
                    filter, "confirmed", confirmed, "source", source, "created_at", now_s,
                    "confirmed_at", confirmed ? json_integer(now_s) : json_null());
    if (sub != NULL) {
        *sub_out = json_dumps(sub, JSON_COMPACT | JSON_PRESERVE_ORDER);
    }
    if (*sub_out == NULL || *filter_out == NULL) {
        /* Only invalid UTF-8 in address or source makes jansson refuse. */
        free(*sub_out);
        free(*filter_out);
        *sub_out = *filter_out = NULL;
        goto out;
    }
    rc = 0;
out:
    json_decref(sub);
    json_decref(filter);
    return rc;
}

void
tc_store_em_create(struct tc_store *s, const char *id, const char *address, const char *filter_json,
                   bool confirmed, const char *source, tc_store_em_json_cb cb, void *arg)
{
    char *sub = NULL, *filter = NULL, snow[24];
    struct tc_store__req *req;

    if (admit_json(s, cb, arg) != 0) {
        return;
    }
    if (source == NULL) {
        source = "";
    }
    if (!bounded(id, ID_MAX) || !bounded(address, ADDRESS_MAX) ||
        strnlen(source, SOURCE_MAX + 1) > SOURCE_MAX || filter_json == NULL ||
        subscriber_json(id, address, filter_json, confirmed, source, &sub, &filter) != 0) {
        cb(arg, TC_EINVAL, NULL, 0);
        return;
    }
    snprintf(snow, sizeof(snow), "%" PRIu64, wall_ms());
    req = tc_store__cmd_req(s, TC_STORE__EM_CREATE, tc_store__json_done, 0, arg);
    req->cb.json = cb;
    em_send(s, req, 5, (const int[]){K_SUBS, K_ADDR, K_CONFIRMED, K_DUE, K_FIRST}, 7,
            (const char *[]){id, address, sub, filter, confirmed ? "1" : "0", s->cfg->redis_prefix,
                             snow});
    free(sub);
    free(filter);
}

void
tc_store_em_resend_confirm(struct tc_store *s, const char *id, tc_store_em_count_cb cb, void *arg)
{
    char snow[24];
    struct tc_store__req *req;

    if (admit_count(s, cb, arg) != 0) {
        return;
    }
    if (!bounded(id, ID_MAX)) {
        cb(arg, TC_ENOENT, 0);
        return;
    }
    snprintf(snow, sizeof(snow), "%" PRIu64, wall_ms());
    req =
        tc_store__cmd_req(s, TC_STORE__EM_RESEND, tc_store__count_done, TC_STORE__COUNT_PLAIN, arg);
    req->cb.count = cb;
    em_send(s, req, 3, (const int[]){K_SUBS, K_DUE, K_FIRST}, 3,
            (const char *[]){id, s->cfg->redis_prefix, snow});
}

void
tc_store_em_confirm(struct tc_store *s, const char *id, tc_store_em_json_cb cb, void *arg)
{
    uint64_t now = wall_ms();
    char snow_s[24], snow[24], scoalesce[24];
    struct tc_store__req *req;

    if (admit_json(s, cb, arg) != 0) {
        return;
    }
    if (!bounded(id, ID_MAX)) {
        cb(arg, TC_ENOENT, NULL, 0);
        return;
    }
    snprintf(snow_s, sizeof(snow_s), "%" PRIu64, now / 1000);
    snprintf(snow, sizeof(snow), "%" PRIu64, now);
    snprintf(scoalesce, sizeof(scoalesce), "%" PRIu64, s->cfg->email_coalesce_ms);
    req = tc_store__cmd_req(s, TC_STORE__EM_CONFIRM, tc_store__json_done, 0, arg);
    req->cb.json = cb;
    em_send(s, req, 5, (const int[]){K_SUBS, K_CONFIRMED, K_DUE, K_FIRST, K_TRIES}, 5,
            (const char *[]){id, s->cfg->redis_prefix, snow_s, snow, scoalesce});
}

void
tc_store_em_list(struct tc_store *s, tc_store_em_json_cb cb, void *arg)
{
    char *subs;
    struct tc_store__req *req;

    if (admit_json(s, cb, arg) != 0) {
        return;
    }
    subs = tc_xasprintf("%s%s", s->cfg->redis_prefix, key_names[K_SUBS]);
    req = tc_store__cmd_req(s, -1, tc_store__list_done, 0, arg);
    req->cb.json = cb;
    tc_store__submit_strs(s, req, 2, (const char *[]){"HVALS", subs});
    free(subs);
}

void
tc_store_em_get(struct tc_store *s, const char *id, tc_store_em_json_cb cb, void *arg)
{
    struct tc_store__req *req;

    if (admit_json(s, cb, arg) != 0) {
        return;
    }
    if (!bounded(id, ID_MAX)) {
        cb(arg, TC_ENOENT, NULL, 0);
        return;
    }
    req = tc_store__cmd_req(s, TC_STORE__EM_GET, tc_store__json_done, 0, arg);
    req->cb.json = cb;
    em_send(s, req, 1, (const int[]){K_SUBS}, 2, (const char *[]){id, s->cfg->redis_prefix});
}

void
tc_store_em_delete(struct tc_store *s, const char *id, tc_store_em_count_cb cb, void *arg)
{
    struct tc_store__req *req;

    if (admit_count(s, cb, arg) != 0) {
        return;
    }
    if (!bounded(id, ID_MAX)) {
        cb(arg, TC_ENOENT, 0);
        return;
    }
    req =
        tc_store__cmd_req(s, TC_STORE__EM_DELETE, tc_store__count_done, TC_STORE__ZERO_ENOENT, arg);
    req->cb.count = cb;
    em_send(s, req, 7, (const int[]){K_SUBS, K_ADDR, K_CONFIRMED, K_DUE, K_REFS, K_FIRST, K_TRIES},
            2, (const char *[]){id, s->cfg->redis_prefix});
}

/* ---- rate limits, link key, gauges ---- */

void
tc_store_em_rate_hit(struct tc_store *s, const char *bucket, uint64_t window_s,
                     tc_store_em_count_cb cb, void *arg)
{
    char *k, swin[24];
    struct tc_store__req *req;

    if (admit_count(s, cb, arg) != 0) {
        return;
    }
    if (!bounded(bucket, BUCKET_MAX) || window_s == 0) {
        cb(arg, TC_EINVAL, 0);
        return;
    }
    /* The window's index is part of the key: a new window starts at 0
     * without any reset, and the old counter expires on its own. */
    k = tc_xasprintf("%sem:rate:%s:%" PRIu64, s->cfg->redis_prefix, bucket,
                     tc_wall_us() / 1000000 / window_s);
    snprintf(swin, sizeof(swin), "%" PRIu64, window_s);
    req = tc_store__cmd_req(s, TC_STORE__EM_RATE, tc_store__count_done, TC_STORE__COUNT_PLAIN, arg);
    req->cb.count = cb;
    tc_store__submit_strs(s, req, 3, (const char *[]){"1", k, swin});
    free(k);
}

void
tc_store_em_link_key(struct tc_store *s, const char *candidate, tc_store_em_json_cb cb, void *arg)
{
    struct tc_store__req *req;

    if (admit_json(s, cb, arg) != 0) {
        return;
    }
    if (!bounded(candidate, LINKKEY_MAX)) {
        cb(arg, TC_EINVAL, NULL, 0);
        return;
    }
    req = tc_store__cmd_req(s, TC_STORE__EM_LINK_KEY, tc_store__json_done, 0, arg);
    req->cb.json = cb;
    em_send(s, req, 1, (const int[]){K_KEY}, 1, (const char *[]){candidate});
}

void
tc_store_em_stats(struct tc_store *s, uint64_t now_ms, tc_store_em_stats_cb cb, void *arg)
{
    char snow[24];
    struct tc_store__req *req;
    int rc = tc_store__cmd_admit(s);

    if (rc != 0) {
        cb(arg, rc, 0, 0);
        return;
    }
    snprintf(snow, sizeof(snow), "%" PRIu64, now_ms);
    req = tc_store__cmd_req(s, TC_STORE__EM_STATS, tc_store__pair_done, 0, arg);
    req->cb.pair = cb;
    em_send(s, req, 1, (const int[]){K_DUE}, 1, (const char *[]){snow});
}
