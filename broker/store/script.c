/* tocsin — SPDX-License-Identifier: MIT
 *
 * The Lua scripts that own every write and every consistent read of the
 * store's keys, the arguments of the per-event script and the parsing of the
 * replies. Pure text and reply walking: no connection handling here.
 *
 * Keys (P = redis.prefix): P epoch, P seq, P dedup:<event_id>, P inc:<id>
 * (hash), P inc:<id>:log (list), P active (set), P history (stream), P ended
 * (zset of the last TC_STORE_ENDED_KEPT ended incidents by seq). Every key
 * a script touches is passed in KEYS, except that the load script reads the
 * hashes of the active incidents, whose names it only learns inside; for
 * Redis Cluster, give the prefix a hash tag such as "{tocsin}:" so that every
 * key lives in one slot and those reads stay legal in practice.
 */
#include "store/store_internal.h"

#include "util/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Shared Lua helpers, prepended to each script (a macro, so that the
 * concatenation happens at compile time). */
/* clang-format off */
#define LUA_PRELUDE \
    "local impact_names = {[0] = 'none', 'minor', 'major', 'critical'}\n" \
    "-- a newer than b, both decimal strings without leading zeros: exact for\n" \
    "-- any int64, where tonumber() would round past 2^53.\n" \
    "local function newer(a, b)\n" \
    "  if #a ~= #b then return #a > #b end\n" \
    "  return a > b\n" \
    "end\n" \
    "-- cjson.encode turns an empty table into {}: arrays are joined by hand.\n" \
    "local function json_array(t)\n" \
    "  local parts = {}\n" \
    "  for i, v in ipairs(t) do parts[i] = cjson.encode(v) end\n" \
    "  return '[' .. table.concat(parts, ',') .. ']'\n" \
    "end\n" \
    "local function union(a, b)\n" \
    "  local out, seen = {}, {}\n" \
    "  for _, src in ipairs({a, b}) do\n" \
    "    for _, v in ipairs(cjson.decode(src)) do\n" \
    "      if not seen[v] then seen[v] = true; out[#out + 1] = v end\n" \
    "    end\n" \
    "  end\n" \
    "  return json_array(out)\n" \
    "end\n" \
    "local function match_json(mc, mr, mg, mi)\n" \
    "  return '{\"components\":' .. (mc or '[]') .. ',\"regions\":' .. (mr or '[]') ..\n" \
    "    ',\"global\":' .. (mg == '1' and 'true' or 'false') ..\n" \
    "    ',\"impact\":\"' .. impact_names[tonumber(mi) or 0] .. '\"}'\n" \
    "end\n" \
    "-- The epoch changes only when Redis lost its data. A new epoch starts with\n" \
    "-- an empty history, so stream ids never collide with a surviving seq.\n" \
    "local function get_epoch(epoch_key, history_key, candidate)\n" \
    "  local e = redis.call('GET', epoch_key)\n" \
    "  if e then return e end\n" \
    "  redis.call('SET', epoch_key, candidate, 'NX')\n" \
    "  redis.call('DEL', history_key)\n" \
    "  return candidate\n" \
    "end\n"
/* clang-format on */

/* KEYS: 1 epoch, 2 seq, 3 dedup:<event_id>, 4 inc:<id>, 5 inc:<id>:log, 6 active, 7 history,
 * 8 wh:endpoints, 9 wh:due, 10 em:confirmed, 11 em:due, 12 em:refs, 13 em:first, 14 ended.
 * ARGV: 1 event_id, 2 incident_id, 3 version, 4 ends (0/1), 5 state JSON (no started_at),
 * 6 occurred_at, 7 components JSON, 8 regions JSON, 9 impact name, 10 impact rank,
 * 11 dedup ttl (s), 12 history max length, 13 epoch candidate, 14 the key prefix (the
 * webhook and email job keys depend on which endpoints and subscribers match), 15 now
 * (wall clock ms), 16 email.coalesce (ms).
 * Every check comes before the first write of the incident, so a script that
 * returns early (or fails on bad input) leaves nothing half-done; only a
 * missing epoch is created first. */
/* clang-format off */
static const char apply_lua[] =
    LUA_PRELUDE
    /* ---- enqueue_jobs: the hook of the delivery gateways. ----
     * They add their jobs here, atomically with the update they deliver:
     * the webhook jobs and the email queue items (store_internal.h). */
    TC_STORE__WH_ENQUEUE_LUA
    TC_STORE__EM_ENQUEUE_LUA
    "local function enqueue_jobs(seq, incident_id, state, match)\n"
    "  wh_enqueue(seq, incident_id, state, match)\n"
    "  em_enqueue(seq, state, match)\n"
    "end\n"
    /* ---- end of enqueue_jobs ---- */
    "if string.sub(ARGV[5], 1, 1) ~= '{' or string.sub(ARGV[5], -1) ~= '}' then\n"
    "  return redis.error_reply('state is not a JSON object')\n"
    "end\n"
    "local epoch = get_epoch(KEYS[1], KEYS[7], ARGV[13])\n"
    "if redis.call('EXISTS', KEYS[3]) == 1 then return {'duplicate', epoch} end\n"
    "local ttl = ARGV[11]\n"
    "local cur = redis.call('HMGET', KEYS[4], 'version', 'started_at', 'ends', 'mc', 'mr', 'mg',"
    " 'mi')\n"
    "if cur[1] and not newer(ARGV[3], cur[1]) then\n"
    "  redis.call('SET', KEYS[3], '0', 'EX', ttl)\n"
    "  return {'stale', epoch}\n"
    "end\n"
    "local seq = redis.call('INCR', KEYS[2])\n"
    "local seqs = string.format('%d', seq)\n"
    /* A new incident, or one that had ended and is reopened, starts again. */
    "local fresh = (not cur[1]) or (not cur[2]) or cur[3] == '1'\n"
    "local started_at = ARGV[6]\n"
    "if not fresh then started_at = cur[2] end\n"
    /* String surgery, not cjson: cjson would reorder keys and round big integers. */
    "local state = string.sub(ARGV[5], 1, -2) .. ',\"started_at\":' .. cjson.encode(started_at) .."
    " '}'\n"
    "local mc, mr, mg, mi = '[]', '[]', '0', 0\n"
    "if not fresh then\n"
    "  mc = cur[4] or '[]'; mr = cur[5] or '[]'; mg = cur[6] or '0'; mi = tonumber(cur[7]) or 0\n"
    "end\n"
    "mc = union(mc, ARGV[7])\n"
    "mr = union(mr, ARGV[8])\n"
    "if #cjson.decode(ARGV[8]) == 0 then mg = '1' end\n"
    "local rank = tonumber(ARGV[10])\n"
    "if rank > mi then mi = rank end\n"
    "local match = match_json(mc, mr, mg, mi)\n"
    "redis.call('HSET', KEYS[4], 'version', ARGV[3], 'seq', seqs, 'started_at', started_at,"
    " 'state', state, 'ends', ARGV[4], 'mc', mc, 'mr', mr, 'mg', mg, 'mi', tostring(mi))\n"
    "if ARGV[4] == '1' then\n"
    "  redis.call('SREM', KEYS[6], ARGV[2])\n"
    "  redis.call('ZADD', KEYS[14], seq, ARGV[2])\n"
    "  redis.call('ZREMRANGEBYRANK', KEYS[14], 0, -" TC_STORE__ENDED_KEPT_LUA " - 1)\n"
    "else\n"
    "  redis.call('SADD', KEYS[6], ARGV[2])\n"
    "  redis.call('ZREM', KEYS[14], ARGV[2])\n"
    "end\n"
    "redis.call('LPUSH', KEYS[5], '{\"seq\":' .. seqs .. ',\"incident\":' .. state .. '}')\n"
    "redis.call('LTRIM', KEYS[5], 0, 99)\n"
    "redis.call('XADD', KEYS[7], 'MAXLEN', ARGV[12], seqs .. '-0', 'i', ARGV[2], 's', state,"
    " 'm', match, 'e', ARGV[4])\n"
    "redis.call('SET', KEYS[3], seqs, 'EX', ttl)\n"
    "enqueue_jobs(seqs, ARGV[2], state, match)\n"
    "return {'accepted', epoch, seq}\n";

/* KEYS: 1 epoch, 2 seq, 3 active, 4 history. ARGV: 1 history count, 2 epoch
 * candidate, 3 the inc: key prefix. Returns {epoch, seq, {id, state, match,
 * ...}, {entry, ...}} with the entries oldest first. Writes only when the
 * epoch is missing. The active set is as large as the number of incidents
 * open at once: tens, not thousands. */
static const char load_lua[] =
    LUA_PRELUDE
    "local epoch = get_epoch(KEYS[1], KEYS[4], ARGV[2])\n"
    "local seq = redis.call('GET', KEYS[2]) or '0'\n"
    "local active = {}\n"
    "for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do\n"
    "  local h = redis.call('HMGET', ARGV[3] .. id, 'state', 'mc', 'mr', 'mg', 'mi')\n"
    "  if h[1] then\n"
    "    active[#active + 1] = id\n"
    "    active[#active + 1] = h[1]\n"
    "    active[#active + 1] = match_json(h[2] or nil, h[3] or nil, h[4], h[5])\n"
    "  end\n"
    "end\n"
    "local history = {}\n"
    "if tonumber(ARGV[1]) > 0 then\n"
    "  local rev = redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', ARGV[1])\n"
    "  for i = #rev, 1, -1 do history[#history + 1] = rev[i] end\n"
    "end\n"
    "return {epoch, seq, active, history}\n";

/* KEYS: 1 ended. ARGV: 1 count, 2 the inc: key prefix. Returns the JSON
 * text [{"incident":state,"match":view}, ...], the last ended first. */
static const char ended_lua[] =
    LUA_PRELUDE
    "local out = {}\n"
    "for _, id in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)) do\n"
    "  local h = redis.call('HMGET', ARGV[2] .. id, 'state', 'mc', 'mr', 'mg', 'mi')\n"
    "  if h[1] then\n"
    "    out[#out + 1] = '{\"incident\":' .. h[1] .. ',\"match\":' ..\n"
    "      match_json(h[2] or nil, h[3] or nil, h[4], h[5]) .. '}'\n"
    "  end\n"
    "end\n"
    "return '[' .. table.concat(out, ',') .. ']'\n";

/* KEYS: 1 inc:<id>, 2 inc:<id>:log. Returns the JSON text or nil. */
static const char get_lua[] =
    "local state = redis.call('HGET', KEYS[1], 'state')\n"
    "if not state then return false end\n"
    "local log = redis.call('LRANGE', KEYS[2], 0, 99)\n"
    "return '{\"incident\":' .. state .. ',\"updates\":[' .. table.concat(log, ',') .. ']}'\n";
/* clang-format on */

const char *const tc_store__script_text[TC_STORE__NSCRIPTS] = {
    [TC_STORE__APPLY] = apply_lua,
    [TC_STORE__LOAD] = load_lua,
    [TC_STORE__GET] = get_lua,
    [TC_STORE__ENDED] = ended_lua,
    [TC_STORE__WH_CLAIM] = tc_store__wh_claim_lua,
    [TC_STORE__WH_COMPLETE] = tc_store__wh_complete_lua,
    [TC_STORE__WH_GET] = tc_store__wh_get_lua,
    [TC_STORE__WH_DELETE] = tc_store__wh_delete_lua,
    [TC_STORE__WH_REPLAY] = tc_store__wh_replay_lua,
    [TC_STORE__WH_ROTATE] = tc_store__wh_rotate_lua,
    [TC_STORE__WH_DISABLE] = tc_store__wh_disable_lua,
    [TC_STORE__WH_STATS] = tc_store__wh_stats_lua,
    [TC_STORE__EM_CLAIM] = tc_store__em_claim_lua,
    [TC_STORE__EM_COMPLETE] = tc_store__em_complete_lua,
    [TC_STORE__EM_CREATE] = tc_store__em_create_lua,
    [TC_STORE__EM_RESEND] = tc_store__em_resend_lua,
    [TC_STORE__EM_CONFIRM] = tc_store__em_confirm_lua,
    [TC_STORE__EM_GET] = tc_store__em_get_lua,
    [TC_STORE__EM_DELETE] = tc_store__em_delete_lua,
    [TC_STORE__EM_RATE] = tc_store__em_rate_lua,
    [TC_STORE__EM_LINK_KEY] = tc_store__em_link_key_lua,
    [TC_STORE__EM_STATS] = tc_store__em_stats_lua,
    [TC_STORE__RELEASE] = tc_store__release_lua,
};

#define APPLY_NKEYS 14
#define APPLY_NARGS 16
#define APPLY_ARGC  (1 + APPLY_NKEYS + APPLY_NARGS)

struct tc_store__argbuf {
    char *owned[APPLY_ARGC];
    const char *argv[APPLY_ARGC];
    size_t argvlen[APPLY_ARGC];
};

static void
put(struct tc_store__argbuf *b, int i, char *owned, const char *s)
{
    b->owned[i] = owned;
    b->argv[i] = owned != NULL ? owned : s;
    b->argvlen[i] = strlen(b->argv[i]);
}

/* The JSON text of ev's array field key, or "[]" when it is absent. */
static char *
array_json(const struct tc_event *ev, const char *key)
{
    const json_t *a = json_object_get(ev->json, key);
    char *text = NULL;

    if (json_is_array(a)) {
        text = json_dumps(a, JSON_COMPACT);
    }
    if (text == NULL) {
        text = tc_xstrdup("[]");
    }
    return text;
}

void
tc_store__epoch_candidate(char out[33])
{
    unsigned char rnd[16];

    if (tc_random_bytes(rnd, sizeof(rnd)) != 0) {
        /* The candidate only has to differ from the previous epoch; the
         * clock is a fallback that still does. */
        uint64_t t = tc_wall_us();
        memset(rnd, 0, sizeof(rnd));
        memcpy(rnd, &t, sizeof(t));
    }
    for (size_t k = 0; k < sizeof(rnd); k++) {
        snprintf(out + 2 * k, 3, "%02x", rnd[k]);
    }
}

int
tc_store__apply_argv(const struct tc_store *s, const struct tc_event *ev,
                     struct tc_store__argbuf **out, const char ***argv, size_t **argvlen)
{
    const struct tc_config *cfg = s->cfg;
    const char *p = cfg->redis_prefix;
    struct tc_store__argbuf *b = tc_xcalloc(1, sizeof(*b));
    char hex[33];
    const char *occurred_at = json_string_value(json_object_get(ev->json, "occurred_at"));
    int i = 0;

    tc_store__epoch_candidate(hex);

    put(b, i++, tc_xasprintf("%d", APPLY_NKEYS), NULL);
    put(b, i++, tc_xasprintf("%sepoch", p), NULL);
    put(b, i++, tc_xasprintf("%sseq", p), NULL);
    put(b, i++, tc_xasprintf("%sdedup:%s", p, ev->event_id), NULL);
    put(b, i++, tc_xasprintf("%sinc:%s", p, ev->incident_id), NULL);
    put(b, i++, tc_xasprintf("%sinc:%s:log", p, ev->incident_id), NULL);
    put(b, i++, tc_xasprintf("%sactive", p), NULL);
    put(b, i++, tc_xasprintf("%shistory", p), NULL);
    put(b, i++, tc_xasprintf("%swh:endpoints", p), NULL);
    put(b, i++, tc_xasprintf("%swh:due", p), NULL);
    put(b, i++, tc_xasprintf("%sem:confirmed", p), NULL);
    put(b, i++, tc_xasprintf("%sem:due", p), NULL);
    put(b, i++, tc_xasprintf("%sem:refs", p), NULL);
    put(b, i++, tc_xasprintf("%sem:first", p), NULL);
    put(b, i++, tc_xasprintf("%sended", p), NULL);
    put(b, i++, NULL, ev->event_id);
    put(b, i++, NULL, ev->incident_id);
    put(b, i++, tc_xasprintf("%" PRId64, ev->version), NULL);
    put(b, i++, NULL, ev->ends ? "1" : "0");
    put(b, i++, tc_event_state_json(ev), NULL);
    put(b, i++, NULL, occurred_at != NULL ? occurred_at : "");
    put(b, i++, array_json(ev, "components"), NULL);
    put(b, i++, array_json(ev, "regions"), NULL);
    put(b, i++, NULL, tc_impact_name(ev->impact));
    put(b, i++, tc_xasprintf("%d", (int)ev->impact), NULL);
    put(b, i++, tc_xasprintf("%" PRIu64, cfg->dedup_ttl_ms / 1000), NULL);
    put(b, i++, tc_xasprintf("%" PRId64, cfg->history_max_updates), NULL);
    put(b, i++, tc_xstrdup(hex), NULL);
    put(b, i++, NULL, p);
    put(b, i++, tc_xasprintf("%" PRIu64, tc_wall_us() / 1000), NULL);
    put(b, i++, tc_xasprintf("%" PRIu64, cfg->email_coalesce_ms), NULL);

    *out = b;
    *argv = b->argv;
    *argvlen = b->argvlen;
    return i;
}

void
tc_store__argbuf_free(struct tc_store__argbuf *b)
{
    if (b == NULL) {
        return;
    }
    for (size_t i = 0; i < TC_ARRAY_SIZE(b->owned); i++) {
        free(b->owned[i]);
    }
    free(b);
}

static bool
is_str(const redisReply *r)
{
    return r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

int
tc_store__parse_apply(const redisReply *reply, struct tc_store_result *res)
{
    const char *what;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 || !is_str(reply->element[0]) ||
        !is_str(reply->element[1]) || reply->element[1]->len >= TC_EPOCH_MAX) {
        return TC_EIO;
    }
    memset(res, 0, sizeof(*res));
    what = reply->element[0]->str;
    memcpy(res->epoch, reply->element[1]->str, reply->element[1]->len);
    if (strcmp(what, "duplicate") == 0) {
        res->outcome = TC_STORE_DUPLICATE;
    } else if (strcmp(what, "stale") == 0) {
        res->outcome = TC_STORE_STALE;
    } else if (strcmp(what, "accepted") == 0 && reply->elements == 3 &&
               reply->element[2]->type == REDIS_REPLY_INTEGER && reply->element[2]->integer > 0) {
        res->outcome = TC_STORE_ACCEPTED;
        res->seq = (uint64_t)reply->element[2]->integer;
    } else {
        return TC_EIO;
    }
    return 0;
}

int
tc_store__parse_entry(const redisReply *r, struct tc_history_entry *e)
{
    const redisReply *f;
    char *end = NULL;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !is_str(r->element[0]) ||
        r->element[1]->type != REDIS_REPLY_ARRAY) {
        return TC_EIO;
    }
    memset(e, 0, sizeof(*e));
    e->seq = strtoull(r->element[0]->str, &end, 10);
    if (end == r->element[0]->str || *end != '-' || e->seq == 0) {
        return TC_EIO;
    }
    f = r->element[1];
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i];
        const redisReply *v = f->element[i + 1];
        if (!is_str(k) || !is_str(v) || k->len != 1) {
            continue;
        }
        switch (k->str[0]) {
        case 'i':
            e->incident_id = v->str;
            break;
        case 's':
            e->state = v->str;
            e->state_len = v->len;
            break;
        case 'm':
            e->match = v->str;
            e->match_len = v->len;
            break;
        case 'e':
            e->ends = v->len == 1 && v->str[0] == '1';
            break;
        default:
            break;
        }
    }
    if (e->incident_id == NULL || e->state == NULL || e->match == NULL) {
        return TC_EIO;
    }
    return 0;
}
