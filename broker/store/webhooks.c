/* tocsin — SPDX-License-Identifier: MIT
 *
 * The webhook queue and endpoint registry in Redis (DESIGN §5, §8.3): the Lua
 * that claims and completes jobs and administers endpoints, and the C entry
 * points that send it on the store's command connection (its requests,
 * timeouts and NOSCRIPT path). The jobs themselves are enqueued by the
 * per-event script (TC_STORE__WH_ENQUEUE_LUA in store_internal.h).
 *
 * Keys (P = redis.prefix): P wh:endpoints (hash id -> endpoint JSON),
 * P wh:job:<seq>-<ep> (hash), P wh:q:<ep>:<incident> (FIFO of job ids),
 * P wh:qs:<ep> (set of its FIFO keys), P wh:due (zset "<ep>|<incident>" ->
 * due ms; only FIFO heads), P wh:dead:<ep> (list), P wh:attempts:<ep> (list),
 * P wh:last:<ep> (hash incident -> seq last delivered, so a replay never
 * sends an update older than one delivered), P wh:failing (hash ep -> ms of
 * the first failure of its current failing streak), P wh:pending (count of
 * queued jobs, for the queue-depth gauge).
 */
#include "store/store_internal.h"

#include "model/filter.h"
#include "util/util.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest url and description accepted at create; longer is TC_EINVAL. */
#define URL_MAX  2048
#define DESC_MAX 1024
/* TC_STORE_WH_OLD_SECRET_S as Lua text. */
#define OLD_SECRET_LUA "86400"
_Static_assert(TC_STORE_WH_OLD_SECRET_S == 86400, "OLD_SECRET_LUA is out of date");

/* Endpoint JSON in Lua. cjson turns an empty array into {}: the filter's
 * empty lists are encoded through a placeholder and put back as []. */
/* clang-format off */
#define EP_LUA \
    "local function ep_encode(e)\n" \
    "  local f = e.filter\n" \
    "  if type(f) == 'table' then\n" \
    "    for _, k in ipairs({'components', 'regions'}) do\n" \
    "      if type(f[k]) ~= 'table' or #f[k] == 0 then f[k] = '\\1[]' end\n" \
    "    end\n" \
    "  end\n" \
    "  return (string.gsub(cjson.encode(e), '\"\\\\u0001%[%]\"', '[]'))\n" \
    "end\n" \
    "-- drops the previous secret once its 24 h are over; true when changed\n" \
    "local function ep_expire(e, now_s)\n" \
    "  if type(e.old_secret_until) == 'number' and e.old_secret_until <= now_s then\n" \
    "    e.secrets = {e.secrets[1]}\n" \
    "    e.old_secret_until = cjson.null\n" \
    "    return true\n" \
    "  end\n" \
    "  return false\n" \
    "end\n" \
    "-- applies fn to the stored endpoint id of hash key; false if none\n" \
    "local function ep_update(key, id, fn)\n" \
    "  local epj = redis.call('HGET', key, id)\n" \
    "  if not epj then return false end\n" \
    "  local ep = cjson.decode(epj)\n" \
    "  fn(ep)\n" \
    "  epj = ep_encode(ep)\n" \
    "  redis.call('HSET', key, id, epj)\n" \
    "  return epj\n" \
    "end\n"

/* KEYS: 1 wh:due, 2 wh:endpoints. ARGV: 1 now ms, 2 lease end (the score
 * text of tc_store__lease_end), 3 max, 4 P, 5 now s. Returns 9 strings per
 * job: member, job id, endpoint id, incident, seq, body, attempts,
 * created_at, endpoint JSON. Jobs of a deleted endpoint are dropped (nothing
 * could list or replay them), those of a disabled one go to its dead list. */
const char tc_store__wh_claim_lua[] =
    EP_LUA
    "local P = ARGV[4]\n"
    "local out = {}\n"
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])\n"
    "for _, m in ipairs(due) do\n"
    "  local sep = string.find(m, '|', 1, true) or #m\n"
    "  local id, inc = string.sub(m, 1, sep - 1), string.sub(m, sep + 1)\n"
    "  local q, qs = P .. 'wh:q:' .. id .. ':' .. inc, P .. 'wh:qs:' .. id\n"
    "  local epj = redis.call('HGET', KEYS[2], id)\n"
    "  local ep = epj and cjson.decode(epj)\n"
    "  local head = redis.call('LINDEX', q, 0)\n"
    "  if not head then\n"
    "    redis.call('ZREM', KEYS[1], m)\n"
    "    redis.call('SREM', qs, q)\n"
    "  elseif not ep or ep.disabled == true then\n"
    "    local jobs = redis.call('LRANGE', q, 0, -1)\n"
    "    redis.call('DECRBY', P .. 'wh:pending', #jobs)\n"
    "    for _, job in ipairs(jobs) do\n"
    "      if ep then\n"
    "        redis.call('HSET', P .. 'wh:job:' .. job, 'status', 'dead')\n"
    "        redis.call('RPUSH', P .. 'wh:dead:' .. id, job)\n"
    "      else\n"
    "        redis.call('DEL', P .. 'wh:job:' .. job)\n"
    "      end\n"
    "    end\n"
    "    redis.call('DEL', q)\n"
    "    redis.call('ZREM', KEYS[1], m)\n"
    "    redis.call('SREM', qs, q)\n"
    "  else\n"
    "    local j = redis.call('HMGET', P .. 'wh:job:' .. head, 'seq', 'body', 'attempts',"
    " 'created_at')\n"
    "    if not j[2] then\n"
    /* A head without its hash cannot be sent: skip it, the member stays due. */
    "      redis.call('LPOP', q)\n"
    "      redis.call('DECR', P .. 'wh:pending')\n"
    "    else\n"
    "      if ep_expire(ep, tonumber(ARGV[5])) then\n"
    "        epj = ep_encode(ep)\n"
    "        redis.call('HSET', KEYS[2], id, epj)\n"
    "      end\n"
    "      redis.call('ZADD', KEYS[1], ARGV[2], m)\n"
    "      for _, v in ipairs({m, head, id, inc, j[1], j[2], j[3] or '0', j[4] or '0', epj}) do\n"
    "        out[#out + 1] = v\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n";

/* KEYS: 1 wh:due, 2 wh:endpoints. ARGV: 1 job id, 2 delivered|retry|dead,
 * 3 next due ms, 4 attempt JSON, 5 P, 6 now ms, 7 webhook.disable_after ms
 * (0 = never). Returns 1; 2 when this failure disabled the endpoint (failing
 * for longer than disable_after); 0 when job id is not the head of its FIFO
 * (a stale lease: nothing but the attempt record changes). A delivered job
 * is deleted at once: duplicates are prevented by the FIFO head check, not
 * by the hash, and nothing reads a delivered job again. */
const char tc_store__wh_complete_lua[] =
    EP_LUA
    "local P, job, now = ARGV[5], ARGV[1], tonumber(ARGV[6])\n"
    "local jk = P .. 'wh:job:' .. job\n"
    "local j = redis.call('HMGET', jk, 'endpoint', 'incident', 'seq')\n"
    "if not j[1] or not j[2] then return 0 end\n"
    "local id, inc = j[1], j[2]\n"
    "local ak = P .. 'wh:attempts:' .. id\n"
    "redis.call('LPUSH', ak, ARGV[4])\n"
    "redis.call('LTRIM', ak, 0, 49)\n"
    "local q, m = P .. 'wh:q:' .. id .. ':' .. inc, id .. '|' .. inc\n"
    "if redis.call('LINDEX', q, 0) ~= job then return 0 end\n"
    /* The failing streak: its start is written into the endpoint once, and
     * cleared by the first delivery; both are rare, the checks are cheap. */
    "local fk, ret = P .. 'wh:failing', 1\n"
    "if ARGV[2] == 'delivered' then\n"
    "  redis.call('HSET', P .. 'wh:last:' .. id, inc, j[3] or '0')\n"
    "  if redis.call('HDEL', fk, id) == 1 then\n"
    "    ep_update(KEYS[2], id, function(ep) ep.failing_since = cjson.null end)\n"
    "  end\n"
    "elseif redis.call('HSETNX', fk, id, ARGV[6]) == 1 then\n"
    "  ep_update(KEYS[2], id, function(ep) ep.failing_since = math.floor(now / 1000) end)\n"
    "else\n"
    "  local since, limit = tonumber(redis.call('HGET', fk, id)), tonumber(ARGV[7])\n"
    "  if limit > 0 and since and now - since >= limit then\n"
    "    ep_update(KEYS[2], id, function(ep)\n"
    "      if ep.disabled ~= true then\n"
    "        ep.disabled = true\n"
    "        ep.disabled_reason = 'every attempt failed for longer than webhook.disable_after'\n"
    "        ret = 2\n"
    "      end\n"
    "    end)\n"
    "  end\n"
    "end\n"
    /* A failed attempt's status and error stay on the job (shown with the
     * dead messages). */
    "if ARGV[2] ~= 'delivered' then\n"
    "  local ok, a = pcall(cjson.decode, ARGV[4])\n"
    "  if not ok or type(a) ~= 'table' then a = {} end\n"
    "  local function str(v)\n"
    "    if type(v) == 'string' or type(v) == 'number' then return tostring(v) end\n"
    "    return ''\n"
    "  end\n"
    "  redis.call('HSET', jk, 'last_status', str(a.status), 'last_error', str(a.error))\n"
    "end\n"
    "if ARGV[2] == 'retry' then\n"
    "  redis.call('HINCRBY', jk, 'attempts', 1)\n"
    "  redis.call('ZADD', KEYS[1], ARGV[3], m)\n"
    "  return ret\n"
    "end\n"
    "redis.call('LPOP', q)\n"
    "redis.call('DECR', P .. 'wh:pending')\n"
    "if ARGV[2] == 'dead' then\n"
    "  redis.call('HINCRBY', jk, 'attempts', 1)\n"
    "  redis.call('HSET', jk, 'status', 'dead')\n"
    "  redis.call('RPUSH', P .. 'wh:dead:' .. id, job)\n"
    "else\n"
    "  redis.call('DEL', jk)\n"
    "end\n"
    "if redis.call('LLEN', q) > 0 then\n"
    "  redis.call('ZADD', KEYS[1], ARGV[6], m)\n"
    "else\n"
    "  redis.call('ZREM', KEYS[1], m)\n"
    "  redis.call('SREM', P .. 'wh:qs:' .. id, q)\n"
    "end\n"
    "return ret\n";

/* KEYS: 1 wh:endpoints. ARGV: 1 id, 2 P. Returns the JSON text or nil. */
const char tc_store__wh_get_lua[] =
    "local id, P = ARGV[1], ARGV[2]\n"
    "local epj = redis.call('HGET', KEYS[1], id)\n"
    "if not epj then return false end\n"
    "local pending = 0\n"
    "for _, q in ipairs(redis.call('SMEMBERS', P .. 'wh:qs:' .. id)) do\n"
    "  pending = pending + redis.call('LLEN', q)\n"
    "end\n"
    "local att = redis.call('LRANGE', P .. 'wh:attempts:' .. id, 0, 49)\n"
    "local dk = P .. 'wh:dead:' .. id\n"
    "local dead = redis.call('LLEN', dk)\n"
    /* The newest 50 dead messages, newest first: what a replay would send. */
    "local shown = {}\n"
    "local ids = redis.call('LRANGE', dk, -50, -1)\n"
    "for i = #ids, 1, -1 do\n"
    "  local j = redis.call('HMGET', P .. 'wh:job:' .. ids[i], 'seq', 'incident', 'attempts',"
    " 'created_at', 'last_status', 'last_error')\n"
    "  if j[1] then\n"
    "    shown[#shown + 1] = cjson.encode({webhook_id = ids[i], seq = tonumber(j[1]),\n"
    "      incident_id = j[2], attempts = tonumber(j[3]) or 0,\n"
    "      created_at_ms = tonumber(j[4]) or 0, last_status = tonumber(j[5]) or 0,\n"
    "      last_error = j[6] or ''})\n"
    "  end\n"
    "end\n"
    "return '{\"endpoint\":' .. epj .. ',\"attempts\":[' .. table.concat(att, ',') ..\n"
    "  '],\"pending\":' .. string.format('%d', pending) .. ',\"dead\":' ..\n"
    "  string.format('%d', dead) .. ',\"dead_messages\":[' .. table.concat(shown, ',') .. ']}'\n";

/* KEYS: 1 wh:endpoints, 2 wh:due. ARGV: 1 id, 2 P. Returns 1, or 0 when the
 * endpoint does not exist. Its FIFOs are found through P wh:qs:<id>. */
const char tc_store__wh_delete_lua[] =
    "local id, P = ARGV[1], ARGV[2]\n"
    "if redis.call('HDEL', KEYS[1], id) == 0 then return 0 end\n"
    "local qs, qpre, dk = P .. 'wh:qs:' .. id, P .. 'wh:q:' .. id .. ':', P .. 'wh:dead:' .. id\n"
    "for _, q in ipairs(redis.call('SMEMBERS', qs)) do\n"
    "  local jobs = redis.call('LRANGE', q, 0, -1)\n"
    "  redis.call('DECRBY', P .. 'wh:pending', #jobs)\n"
    "  for _, job in ipairs(jobs) do\n"
    "    redis.call('DEL', P .. 'wh:job:' .. job)\n"
    "  end\n"
    "  redis.call('DEL', q)\n"
    "  redis.call('ZREM', KEYS[2], id .. '|' .. string.sub(q, #qpre + 1))\n"
    "end\n"
    "for _, job in ipairs(redis.call('LRANGE', dk, 0, -1)) do\n"
    "  redis.call('DEL', P .. 'wh:job:' .. job)\n"
    "end\n"
    "redis.call('DEL', qs, dk, P .. 'wh:attempts:' .. id, P .. 'wh:last:' .. id)\n"
    "redis.call('HDEL', P .. 'wh:failing', id)\n"
    "return 1\n";

/* KEYS: 1 wh:endpoints, 2 wh:due. ARGV: 1 id, 2 P, 3 now ms. Returns
 * '{"replayed":N,"superseded":M}', -1 when the endpoint does not exist, -2
 * when it is disabled (its jobs would go straight back to the dead list).
 * Order (DESIGN §8.3): a dead job goes back only if nothing newer of its
 * incident was delivered and nothing newer waits in its FIFO (a job waiting
 * there may be leased right now, so it cannot be put behind the replayed
 * one). Otherwise it is superseded: the newer message carries the whole
 * incident state, so dropping the older one loses no state, only a step. */
const char tc_store__wh_replay_lua[] =
    "local id, P = ARGV[1], ARGV[2]\n"
    "local epj = redis.call('HGET', KEYS[1], id)\n"
    "if not epj then return -1 end\n"
    "if cjson.decode(epj).disabled == true then return -2 end\n"
    "local dk, lk, n, gone = P .. 'wh:dead:' .. id, P .. 'wh:last:' .. id, 0, 0\n"
    "local function seq_of(job) return tonumber(string.match(job or '', '^(%d+)-')) end\n"
    "for _, job in ipairs(redis.call('LRANGE', dk, 0, -1)) do\n"
    "  local jk = P .. 'wh:job:' .. job\n"
    "  local inc = redis.call('HGET', jk, 'incident')\n"
    "  if inc then\n"
    "    local q, seq = P .. 'wh:q:' .. id .. ':' .. inc, seq_of(job) or 0\n"
    "    local last = tonumber(redis.call('HGET', lk, inc)) or 0\n"
    "    local tail = seq_of(redis.call('LINDEX', q, -1)) or 0\n"
    "    if last > seq or tail > seq then\n"
    "      redis.call('DEL', jk)\n"
    "      gone = gone + 1\n"
    "    else\n"
    "      redis.call('HSET', jk, 'attempts', '0', 'status', 'pending')\n"
    "      if redis.call('RPUSH', q, job) == 1 then\n"
    "        redis.call('ZADD', KEYS[2], ARGV[3], id .. '|' .. inc)\n"
    "      end\n"
    "      redis.call('SADD', P .. 'wh:qs:' .. id, q)\n"
    "      n = n + 1\n"
    "    end\n"
    "  end\n"
    "end\n"
    "redis.call('DEL', dk)\n"
    "redis.call('INCRBY', P .. 'wh:pending', n)\n"
    "return string.format('{\"replayed\":%d,\"superseded\":%d}', n, gone)\n";

/* KEYS: 1 wh:endpoints. ARGV: 1 id, 2 new secret, 3 now s. Returns the new
 * endpoint JSON or nil. Two secrets at most: the new and the previous. */
const char tc_store__wh_rotate_lua[] =
    EP_LUA
    "local now = tonumber(ARGV[3])\n"
    "return ep_update(KEYS[1], ARGV[1], function(ep)\n"
    "  ep_expire(ep, now)\n"
    "  ep.secrets = {ARGV[2], type(ep.secrets) == 'table' and ep.secrets[1] or nil}\n"
    "  ep.old_secret_until = now + " OLD_SECRET_LUA "\n"
    "end)\n";

/* KEYS: 1 wh:endpoints. ARGV: 1 id, 2 reason, or "" to enable again, 3 P.
 * Returns the endpoint or nil. Enabling starts a new failing streak. */
const char tc_store__wh_disable_lua[] =
    EP_LUA
    "local id, reason = ARGV[1], ARGV[2]\n"
    "if reason == '' then redis.call('HDEL', ARGV[3] .. 'wh:failing', id) end\n"
    "return ep_update(KEYS[1], id, function(ep)\n"
    "  ep.disabled = reason ~= ''\n"
    "  ep.disabled_reason = reason ~= '' and reason or cjson.null\n"
    "  if reason == '' then ep.failing_since = cjson.null end\n"
    "end)\n";

/* KEYS: 1 wh:pending, 2 wh:due. ARGV: 1 now ms. Returns {jobs queued, FIFO
 * heads due now and not leased}. */
const char tc_store__wh_stats_lua[] =
    "local n = tonumber(redis.call('GET', KEYS[1]) or '0') or 0\n"
    "return {n > 0 and n or 0, redis.call('ZCOUNT', KEYS[2], '-inf', ARGV[1])}\n";
/* clang-format on */

/* ---- sending ---- */

/* ---- claim and complete ---- */

static uint64_t
num(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING ? strtoull(r->str, NULL, 10) : 0;
}

/* Where the claim's lease end is among its submitted arguments. */
#define CLAIM_LEASE_ARG 4

static void
claim_done(struct tc_store__req *req, int status, const redisReply *reply)
{
    struct tc_store_wh_job *jobs = NULL;
    size_t n = 0;

    tc_store__lease_check(req, status, TC_STORE__Q_WH, CLAIM_LEASE_ARG);
    if (status != 0) {
        goto out;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 9 != 0) {
        status = TC_EIO;
        goto out;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_STRING) {
            status = TC_EIO;
            goto out;
        }
    }
    n = reply->elements / 9;
    jobs = tc_xcalloc(n > 0 ? n : 1, sizeof(*jobs));
    for (size_t k = 0; k < n; k++) {
        redisReply **e = reply->element + 9 * k;
        jobs[k] = (struct tc_store_wh_job){
            .member = e[0]->str,
            .job_id = e[1]->str,
            .endpoint_id = e[2]->str,
            .incident_id = e[3]->str,
            .seq = num(e[4]),
            .body = e[5]->str,
            .body_len = e[5]->len,
            .attempts = num(e[6]),
            .created_at_ms = num(e[7]),
            .endpoint = e[8]->str,
            .endpoint_len = e[8]->len,
        };
    }
out:
    req->cb.wh_claim(req->arg, status, status == 0 ? jobs : NULL, status == 0 ? n : 0);
    free(jobs);
}

void
tc_store_wh_claim(struct tc_store *s, uint64_t now_ms, uint64_t lease_ms, size_t max,
                  tc_store_wh_claim_cb cb, void *arg)
{
    const char *p = s->cfg->redis_prefix;
    char *due = NULL, *eps = NULL, snow[24], slease[TC_STORE_LEASE_MAX], smax[24], snow_s[24];
    struct tc_store__req *req;
    int rc = tc_store__cmd_admit(s);

    if (rc != 0) {
        cb(arg, rc, NULL, 0);
        return;
    }
    due = tc_xasprintf("%swh:due", p);
    eps = tc_xasprintf("%swh:endpoints", p);
    snprintf(snow, sizeof(snow), "%" PRIu64, now_ms);
    tc_store__lease_end(now_ms, lease_ms, slease);
    snprintf(smax, sizeof(smax), "%zu", max > TC_STORE_WH_CLAIM_MAX ? TC_STORE_WH_CLAIM_MAX : max);
    snprintf(snow_s, sizeof(snow_s), "%" PRIu64, now_ms / 1000);
    /* Sent first on the same connection, so this claim may take them. */
    tc_store__lease_release(s, TC_STORE__Q_WH, due, now_ms);
    req = tc_store__cmd_req(s, TC_STORE__WH_CLAIM, claim_done, 0, arg);
    req->cb.wh_claim = cb;
    tc_store__submit_strs(s, req, 8,
                          (const char *[]){"2", due, eps, snow, slease, smax, p, snow_s});
    free(due);
    free(eps);
}

void
tc_store_wh_complete(struct tc_store *s, const char *job_id, enum tc_store_wh_outcome outcome,
                     uint64_t next_due_ms, const char *attempt_json, tc_store_wh_count_cb cb,
                     void *arg)
{
    static const char *const names[] = {
        [TC_STORE_WH_DELIVERED] = "delivered",
        [TC_STORE_WH_RETRY] = "retry",
        [TC_STORE_WH_DEAD] = "dead",
    };
    char *due = NULL, *eps = NULL, snext[24], snow[24], slimit[24];
    struct tc_store__req *req;
    int rc = tc_store__cmd_admit(s);

    if (rc != 0) {
        cb(arg, rc, 0);
        return;
    }
    if ((unsigned)outcome >= TC_ARRAY_SIZE(names)) {
        cb(arg, TC_EINVAL, 0);
        return;
    }
    due = tc_xasprintf("%swh:due", s->cfg->redis_prefix);
    eps = tc_xasprintf("%swh:endpoints", s->cfg->redis_prefix);
    snprintf(snext, sizeof(snext), "%" PRIu64, next_due_ms);
    snprintf(snow, sizeof(snow), "%" PRIu64, tc_wall_us() / 1000);
    snprintf(slimit, sizeof(slimit), "%" PRIu64, s->cfg->webhook_disable_after_ms);
    req = tc_store__cmd_req(s, TC_STORE__WH_COMPLETE, tc_store__count_done, TC_STORE__COUNT_PLAIN,
                            arg);
    req->cb.count = cb;
    tc_store__submit_strs(s, req, 10,
                          (const char *[]){"2", due, eps, job_id, names[outcome], snext,
                                           attempt_json != NULL ? attempt_json : "{}",
                                           s->cfg->redis_prefix, snow, slimit});
    free(due);
    free(eps);
}

/* ---- endpoint admin ---- */

/* Builds the endpoint JSON from a create request. @returns new text or NULL
 * when the request breaks a rule. */
static char *
endpoint_json(const char *id, const char *request_json, const char *secret)
{
    json_t *req = json_loads(request_json, JSON_REJECT_DUPLICATES, NULL);
    json_t *ep = NULL;
    struct tc_filter f = {0};
    struct tc_error err;
    const char *url;
    const json_t *desc;
    char *text = NULL;

    if (!json_is_object(req)) {
        goto out;
    }
    url = json_string_value(json_object_get(req, "url"));
    desc = json_object_get(req, "description");
    if (url == NULL || strlen(url) > URL_MAX ||
        (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
        goto out;
    }
    if (desc != NULL && (!json_is_string(desc) || json_string_length(desc) > DESC_MAX)) {
        goto out;
    }
    const json_t *fj = json_object_get(req, "filter");
    if (tc_filter_from_json(json_is_null(fj) ? NULL : fj, &f, &err) != 0) {
        goto out;
    }
    ep = json_pack("{s:s, s:s, s:o, s:s, s:[s], s:n, s:I, s:b, s:n, s:n}", "id", id, "url", url,
                   "filter", tc_filter_to_json(&f), "description",
                   desc != NULL ? json_string_value(desc) : "", "secrets", secret,
                   "old_secret_until", "created_at", (json_int_t)(tc_wall_us() / 1000000),
                   "disabled", 0, "disabled_reason", "failing_since");
    if (ep != NULL) {
        text = json_dumps(ep, JSON_COMPACT | JSON_PRESERVE_ORDER);
    }
out:
    tc_filter_fini(&f);
    json_decref(ep);
    json_decref(req);
    return text;
}

static void
create_done(struct tc_store__req *req, int status, const redisReply *reply)
{
    if (status == 0 && reply->type != REDIS_REPLY_INTEGER) {
        status = TC_EIO;
    } else if (status == 0 && reply->integer != 1) {
        status = TC_ESTATE;
    }
    req->cb.json(req->arg, status, status == 0 ? req->buf : NULL,
                 status == 0 ? strlen(req->buf) : 0);
}

void
tc_store_wh_create(struct tc_store *s, const char *id, const char *request_json, const char *secret,
                   tc_store_wh_json_cb cb, void *arg)
{
    char *eps = NULL, *text = NULL;
    struct tc_store__req *req;
    int rc = tc_store__cmd_admit(s);

    if (rc != 0) {
        cb(arg, rc, NULL, 0);
        return;
    }
    text = endpoint_json(id, request_json, secret);
    if (text == NULL || strchr(id, '|') != NULL || strchr(id, ':') != NULL) {
        /* '|' and ':' separate ids in the queue's key and member names. */
        free(text);
        cb(arg, TC_EINVAL, NULL, 0);
        return;
    }
    eps = tc_xasprintf("%swh:endpoints", s->cfg->redis_prefix);
    req = tc_store__cmd_req(s, -1, create_done, 0, arg);
    req->cb.json = cb;
    /* A plain command's buf is unused by the store; it frees it with req. */
    req->buf = text;
    tc_store__submit_strs(s, req, 4, (const char *[]){"HSETNX", eps, id, text});
    free(eps);
}

void
tc_store_wh_list(struct tc_store *s, tc_store_wh_json_cb cb, void *arg)
{
    char *eps;
    struct tc_store__req *req;
    int rc = tc_store__cmd_admit(s);

    if (rc != 0) {
        cb(arg, rc, NULL, 0);
        return;
    }
    eps = tc_xasprintf("%swh:endpoints", s->cfg->redis_prefix);
    req = tc_store__cmd_req(s, -1, tc_store__list_done, 0, arg);
    req->cb.json = cb;
    tc_store__submit_strs(s, req, 2, (const char *[]){"HVALS", eps});
    free(eps);
}

/* One endpoint script with KEYS wh:endpoints [, wh:due] and ARGV args. */
static void
ep_script(struct tc_store *s, bool with_due, int argc, const char **args, struct tc_store__req *req)
{
    const char *p = s->cfg->redis_prefix;
    char *eps = tc_xasprintf("%swh:endpoints", p);
    char *due = tc_xasprintf("%swh:due", p);
    const char *argv[8];
    int n = 0;

    argv[n++] = with_due ? "2" : "1";
    argv[n++] = eps;
    if (with_due) {
        argv[n++] = due;
    }
    /* Callers pass at most 3 arguments. */
    for (int i = 0; i < argc && n < (int)TC_ARRAY_SIZE(argv); i++) {
        argv[n++] = args[i];
    }
    tc_store__submit_strs(s, req, n, argv);
    free(eps);
    free(due);
}

static void
json_script(struct tc_store *s, int script, bool with_due, int argc, const char **args,
            tc_store_wh_json_cb cb, void *arg)
{
    struct tc_store__req *req;
    int rc = tc_store__cmd_admit(s);

    if (rc != 0) {
        cb(arg, rc, NULL, 0);
        return;
    }
    req = tc_store__cmd_req(s, script, tc_store__json_done, 0, arg);
    req->cb.json = cb;
    ep_script(s, with_due, argc, args, req);
}

static void
count_script(struct tc_store *s, int script, int aux, int argc, const char **args,
             tc_store_wh_count_cb cb, void *arg)
{
    struct tc_store__req *req;
    int rc = tc_store__cmd_admit(s);

    if (rc != 0) {
        cb(arg, rc, 0);
        return;
    }
    req = tc_store__cmd_req(s, script, tc_store__count_done, aux, arg);
    req->cb.count = cb;
    ep_script(s, true, argc, args, req);
}

void
tc_store_wh_get(struct tc_store *s, const char *id, tc_store_wh_json_cb cb, void *arg)
{
    json_script(s, TC_STORE__WH_GET, false, 2, (const char *[]){id, s->cfg->redis_prefix}, cb, arg);
}

void
tc_store_wh_delete(struct tc_store *s, const char *id, tc_store_wh_count_cb cb, void *arg)
{
    count_script(s, TC_STORE__WH_DELETE, TC_STORE__ZERO_ENOENT, 2,
                 (const char *[]){id, s->cfg->redis_prefix}, cb, arg);
}

void
tc_store_wh_replay(struct tc_store *s, const char *id, tc_store_wh_json_cb cb, void *arg)
{
    char now[24];

    snprintf(now, sizeof(now), "%" PRIu64, tc_wall_us() / 1000);
    json_script(s, TC_STORE__WH_REPLAY, true, 3, (const char *[]){id, s->cfg->redis_prefix, now},
                cb, arg);
}

void
tc_store_wh_rotate(struct tc_store *s, const char *id, const char *secret, tc_store_wh_json_cb cb,
                   void *arg)
{
    char now[24];

    snprintf(now, sizeof(now), "%" PRIu64, tc_wall_us() / 1000000);
    json_script(s, TC_STORE__WH_ROTATE, false, 3, (const char *[]){id, secret, now}, cb, arg);
}

void
tc_store_wh_disable(struct tc_store *s, const char *id, const char *reason, tc_store_wh_json_cb cb,
                    void *arg)
{
    json_script(s, TC_STORE__WH_DISABLE, false, 3,
                (const char *[]){id, reason != NULL ? reason : "", s->cfg->redis_prefix}, cb, arg);
}

void
tc_store_wh_stats(struct tc_store *s, uint64_t now_ms, tc_store_wh_stats_cb cb, void *arg)
{
    char *pending, *due, snow[24];
    struct tc_store__req *req;
    int rc = tc_store__cmd_admit(s);

    if (rc != 0) {
        cb(arg, rc, 0, 0);
        return;
    }
    pending = tc_xasprintf("%swh:pending", s->cfg->redis_prefix);
    due = tc_xasprintf("%swh:due", s->cfg->redis_prefix);
    snprintf(snow, sizeof(snow), "%" PRIu64, now_ms);
    req = tc_store__cmd_req(s, TC_STORE__WH_STATS, tc_store__pair_done, 0, arg);
    req->cb.pair = cb;
    tc_store__submit_strs(s, req, 4, (const char *[]){"2", pending, due, snow});
    free(pending);
    free(due);
}
