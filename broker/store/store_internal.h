/* tocsin — SPDX-License-Identifier: MIT
 *
 * Folder-private pieces of store/: the connection (one hiredis async context
 * at a time, reconnected with backoff), the request (one command with its uv
 * timer), the Lua script texts and the follower state. Only store/ includes
 * this file, and only store/ includes hiredis.
 * @loop main: everything here runs on the store's loop.
 */
#ifndef TC_STORE_INTERNAL_H
#define TC_STORE_INTERNAL_H

#include "store/store.h"
#include "store/emails.h"
#include "store/publish.h"
#include "store/webhooks.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

/* Most commands in flight on the command connection. Past it tc_store_apply
 * and tc_store_get_incident fail at once with TC_EAGAIN: ingest pauses and
 * retries, HTTP answers 503. 10000 scripts is far more than one Redis does in
 * a timeout period, so the bound is only reached when Redis is stuck. */
#define TC_STORE__MAX_INFLIGHT 10000

/* The follower's tail: XREAD BLOCK this long, at most this many entries. */
#define TC_STORE__BLOCK_MS  1000
#define TC_STORE__READ_MAX  1000
#define TC_STORE__BACKOFF0  100  /* first reconnect delay, ms */
#define TC_STORE__BACKOFF1  2000 /* reconnect delay cap, ms */
#define TC_STORE__MAX_DYING 4    /* dropped contexts awaiting their deferred free */
#define TC_STORE__LOG_MAX   100  /* updates kept per incident (LTRIM) */
/* TC_STORE_ENDED_KEPT as Lua text. */
#define TC_STORE__ENDED_KEPT_LUA "200"
_Static_assert(TC_STORE_ENDED_KEPT == 200, "TC_STORE__ENDED_KEPT_LUA is out of date");

enum tc_store__script {
    TC_STORE__APPLY, /* the per-event script */
    TC_STORE__LOAD,  /* the follower's full picture */
    TC_STORE__GET,   /* one incident and its updates */
    TC_STORE__ENDED, /* the last ended incidents */
    /* webhooks.c: the webhook queue and endpoint registry */
    TC_STORE__WH_CLAIM,
    TC_STORE__WH_COMPLETE,
    TC_STORE__WH_GET,
    TC_STORE__WH_DELETE,
    TC_STORE__WH_REPLAY,
    TC_STORE__WH_ROTATE,
    TC_STORE__WH_DISABLE,
    TC_STORE__WH_STATS,
    /* emails.c: the email queue and subscriber registry */
    TC_STORE__EM_CLAIM,
    TC_STORE__EM_COMPLETE,
    TC_STORE__EM_CREATE,
    TC_STORE__EM_RESEND,
    TC_STORE__EM_CONFIRM,
    TC_STORE__EM_GET,
    TC_STORE__EM_DELETE,
    TC_STORE__EM_RATE,
    TC_STORE__EM_LINK_KEY,
    TC_STORE__EM_STATS,
    TC_STORE__RELEASE, /* lease.c: lost claims' jobs due again */
    TC_STORE__NSCRIPTS,
};

/* The Lua texts (script.c). */
extern const char *const tc_store__script_text[TC_STORE__NSCRIPTS];
/* The webhook scripts' texts (webhooks.c), listed in tc_store__script_text. */
extern const char tc_store__wh_claim_lua[], tc_store__wh_complete_lua[], tc_store__wh_get_lua[],
    tc_store__wh_delete_lua[], tc_store__wh_replay_lua[], tc_store__wh_rotate_lua[],
    tc_store__wh_disable_lua[], tc_store__wh_stats_lua[];
/* The email scripts' texts (emails.c), listed in tc_store__script_text. */
extern const char tc_store__em_claim_lua[], tc_store__em_complete_lua[], tc_store__em_create_lua[],
    tc_store__em_resend_lua[], tc_store__em_confirm_lua[], tc_store__em_get_lua[],
    tc_store__em_delete_lua[], tc_store__em_rate_lua[], tc_store__em_link_key_lua[],
    tc_store__em_stats_lua[];
/* The release script (lease.c). */
extern const char tc_store__release_lua[];

/* The webhook filter matcher in Lua: wh_match(filter, view) on decoded JSON,
 * the same verdict as tc_filter_match (tested against it on a table). A
 * macro, so that the per-event script can include it at compile time. */
/* clang-format off */
#define TC_STORE__WH_MATCH_LUA \
    "local wh_rank = {none = 0, minor = 1, major = 2, critical = 3}\n" \
    "local function wh_list(t) if type(t) == 'table' then return t end return {} end\n" \
    "local function wh_common(a, b)\n" \
    "  for _, x in ipairs(a) do for _, y in ipairs(b) do if x == y then return true end end end\n" \
    "  return false\n" \
    "end\n" \
    "local function wh_match(f, v)\n" \
    "  if type(f) ~= 'table' then return true end\n" \
    "  local fc, fr = wh_list(f.components), wh_list(f.regions)\n" \
    "  local vc, vr = wh_list(v.components), wh_list(v.regions)\n" \
    "  if (wh_rank[v.impact] or 0) < (wh_rank[f.min_impact] or 0) then return false end\n" \
    "  if #fc > 0 and not wh_common(fc, vc) then return false end\n" \
    "  if #fr > 0 and v.global ~= true and #vr > 0 and not wh_common(fr, vr) then\n" \
    "    return false\n" \
    "  end\n" \
    "  return true\n" \
    "end\n"

/* wh_enqueue, called by enqueue_jobs of the per-event script: KEYS[8]
 * P wh:endpoints, KEYS[9] P wh:due, ARGV[14] P, ARGV[15] now (wall clock
 * ms). One job per matching, enabled endpoint, at the tail of its (endpoint,
 * incident) FIFO; a FIFO that was empty makes its member due now. P wh:qs:<ep> lists the endpoint's FIFO
 * keys, so that delete needs no SCAN. */
#define TC_STORE__WH_ENQUEUE_LUA \
    TC_STORE__WH_MATCH_LUA \
    "local function wh_enqueue(seq, incident_id, state, match)\n" \
    "  local eps = redis.call('HGETALL', KEYS[8])\n" \
    "  if #eps == 0 then return end\n" \
    "  local view, P, now = cjson.decode(match), ARGV[14], ARGV[15]\n" \
    "  local body = '{\"type\":\"incident.updated\",\"seq\":' .. seq .. ',\"incident\":' .. state .. '}'\n" \
    "  local n = 0\n" \
    "  for i = 1, #eps, 2 do\n" \
    "    local id, ep = eps[i], cjson.decode(eps[i + 1])\n" \
    "    if ep.disabled ~= true and wh_match(ep.filter, view) then\n" \
    "      local job = seq .. '-' .. id\n" \
    "      local q = P .. 'wh:q:' .. id .. ':' .. incident_id\n" \
    "      redis.call('HSET', P .. 'wh:job:' .. job, 'endpoint', id, 'seq', seq, 'incident',\n" \
    "        incident_id, 'body', body, 'attempts', '0', 'created_at', now, 'status', 'pending')\n" \
    "      if redis.call('RPUSH', q, job) == 1 then\n" \
    "        redis.call('ZADD', KEYS[9], now, id .. '|' .. incident_id)\n" \
    "      end\n" \
    "      redis.call('SADD', P .. 'wh:qs:' .. id, q)\n" \
    "      n = n + 1\n" \
    "    end\n" \
    "  end\n" \
    "  if n > 0 then redis.call('INCRBY', P .. 'wh:pending', n) end\n" \
    "end\n"

/* em_enqueue, called by enqueue_jobs of the per-event script after
 * wh_enqueue (it uses wh_match): KEYS[10] P em:confirmed, KEYS[11] P em:due,
 * KEYS[12] P em:refs, KEYS[13] P em:first, ARGV[14] P, ARGV[15] now (wall
 * clock ms), ARGV[16] email.coalesce (ms). The update is appended to the
 * queue P em:q:<id> of every confirmed subscriber whose filter matches, and
 * stored once in P em:upd:<seq> with its reference count in P em:refs. A
 * subscriber becomes due a coalescing window after its first queued update
 * (ZADD NX: a due, retrying or leased subscriber keeps its time), so the
 * updates of one window become one mail. With no confirmed subscriber this
 * costs one HGETALL of an empty hash. A filter that does not decode (only a
 * hand-edited one could) matches nothing rather than failing the script,
 * which would stop ingest. */
#define TC_STORE__EM_ENQUEUE_LUA \
    "local function em_enqueue(seq, state, match)\n" \
    "  local subs = redis.call('HGETALL', KEYS[10])\n" \
    "  if #subs == 0 then return end\n" \
    "  local view, P, now = cjson.decode(match), ARGV[14], ARGV[15]\n" \
    "  local due = string.format('%d', tonumber(now) + tonumber(ARGV[16]))\n" \
    "  local n = 0\n" \
    "  for i = 1, #subs, 2 do\n" \
    "    local id = subs[i]\n" \
    "    local ok, f = pcall(cjson.decode, subs[i + 1])\n" \
    "    if ok and wh_match(f, view) then\n" \
    "      if redis.call('RPUSH', P .. 'em:q:' .. id, seq) == 1 then\n" \
    "        redis.call('HSET', KEYS[13], id, now)\n" \
    "      end\n" \
    "      redis.call('ZADD', KEYS[11], 'NX', due, id)\n" \
    "      n = n + 1\n" \
    "    end\n" \
    "  end\n" \
    "  if n > 0 then\n" \
    "    redis.call('SET', P .. 'em:upd:' .. seq, '{\"seq\":' .. seq .. ',\"incident\":' .. state .. '}')\n" \
    "    redis.call('HSET', KEYS[12], seq, n)\n" \
    "  end\n" \
    "end\n"
/* clang-format on */

struct tc_store__req;
struct tc_store__conn;

/* Runs exactly once per request: status 0 with the reply (borrowed for the
 * call), or TC_EIO / TC_ETIMEDOUT with reply NULL. */
typedef void (*tc_store__done_fn)(struct tc_store__req *req, int status, const redisReply *reply);

struct tc_store__req {
    struct tc_store__conn *conn;
    uv_timer_t timer; /* the command's timeout; closing it frees the request */
    unsigned gen;     /* connection generation the command was sent on */
    bool registered;  /* hiredis still owes us its callback */
    bool done;        /* done_fn has run */
    bool retried;     /* NOSCRIPT: EVAL was sent after EVALSHA */
    bool sent;        /* handed to hiredis: Redis may run it, reply or not */
    int script;       /* enum tc_store__script, or -1 for a plain command */
    int aux;          /* free for the done_fn (the script index of a SCRIPT LOAD) */
    int argc;         /* script requests keep their arguments for EVAL */
    const char **argv;
    size_t *argvlen;
    char *buf; /* owns argv[2..] of a script request */
    uint64_t start_ms;
    tc_store__done_fn done_fn;
    union {
        tc_store_apply_cb apply;
        tc_store_incident_cb incident;
        tc_store_wh_claim_cb wh_claim;
        tc_store_em_claim_cb em_claim;
        tc_store_json_cb json;
        tc_store_count_cb count;
        tc_store_pair_cb pair;
    } cb;
    void *arg;
};

struct tc_store__conn {
    struct tc_store *store;
    const char *name;                              /* "command" or "follow", for logs */
    redisAsyncContext *ac;                         /* the live context, NULL when down */
    redisAsyncContext *dying[TC_STORE__MAX_DYING]; /* dropped, freed by kill_timer */
    uv_timer_t retry_timer;                        /* reconnect backoff */
    uv_timer_t kill_timer; /* deferred redisAsyncFree, outside hiredis callbacks */
    uint64_t backoff_ms;
    unsigned gen;      /* bumped whenever the context goes away */
    unsigned scripts;  /* bit mask of the scripts loaded on connect */
    int setup_pending; /* SELECT and SCRIPT LOADs still to answer */
    bool up;           /* connected, db selected, scripts loaded */
    size_t inflight;   /* requests sent and not yet done */
    void (*on_up)(struct tc_store__conn *c);
};

struct tc_store__follow {
    bool active;    /* tc_store_follow was called */
    bool busy;      /* a load or a tail round is in flight */
    bool loaded;    /* epoch and last_seq are valid */
    bool need_load; /* the next step is a load, not a tail round */
    struct tc_store_follow_cbs cbs;
    size_t history;
    uint64_t last_seq;
    char epoch[TC_EPOCH_MAX];
};

/* The claim queues whose lost claims are released (lease.c). */
enum { TC_STORE__Q_WH, TC_STORE__Q_EM, TC_STORE__NQUEUES };
/* Lost claims remembered per queue. A gateway has one claim in flight and a
 * lost one drops the connection, so a freeze loses about one per gateway;
 * past the bound the oldest is forgotten and its lease simply runs out. */
#define TC_STORE__LOST_MAX 16
struct tc_store__lost {
    size_t n;
    struct {
        char score[TC_STORE_LEASE_MAX]; /* the lease end, as sent */
        uint64_t until_ms;              /* forgotten from then on (the claim's clock) */
    } e[TC_STORE__LOST_MAX];
};

struct tc_store {
    uv_loop_t *loop;
    const struct tc_config *cfg;
    tc_store_ready_cb ready_cb;
    void *ready_arg;
    struct tc_store__conn cmd;
    struct tc_store__conn follow;
    struct tc_store__follow f;
    char sha[TC_STORE__NSCRIPTS][41];
    uint64_t last_reply_ms; /* tc_now_ms of the last reply on either connection */
    struct tc_store__lost lost[TC_STORE__NQUEUES];
    size_t nreqs; /* requests allocated (their timers not yet closed) */
    bool started;
    bool closing;
    bool handles_closing;
    int open_handles;
    void (*close_cb)(void *arg);
    void *close_arg;
};

/* Requests (store.c). req_new never fails; submit sends the command, or runs
 * done_fn at once with TC_EIO when the connection is down. For a script
 * request argv starts at numkeys: submit prepends EVALSHA and the sha. */
struct tc_store__req *tc_store__req_new(struct tc_store__conn *c, int script,
                                        tc_store__done_fn done_fn);
void tc_store__submit(struct tc_store__req *req, int argc, const char **argv, const size_t *argvlen,
                      uint64_t timeout_ms);

/* Checks that a command may go out on the command connection now.
 * @returns 0, TC_EIO (not ready) or TC_EAGAIN (TC_STORE__MAX_INFLIGHT). */
int tc_store__cmd_admit(const struct tc_store *s);

/* Reply decoders shared by the gateways' calls (replies.c); each calls the
 * request's cb once. count: an integer, -1 is TC_ENOENT, and so is 0 when
 * req->aux is TC_STORE__ZERO_ENOENT. json: a string (nil or -1 TC_ENOENT,
 * -2 TC_ESTATE). list: strings joined into a JSON array. pair: two
 * non-negative integers. */
enum { TC_STORE__COUNT_PLAIN, TC_STORE__ZERO_ENOENT };
void tc_store__count_done(struct tc_store__req *req, int status, const redisReply *reply);
void tc_store__json_done(struct tc_store__req *req, int status, const redisReply *reply);
void tc_store__list_done(struct tc_store__req *req, int status, const redisReply *reply);
void tc_store__pair_done(struct tc_store__req *req, int status, const redisReply *reply);
/* A request on the command connection with its done_fn, aux and arg. */
struct tc_store__req *tc_store__cmd_req(struct tc_store *s, int script, tc_store__done_fn fn,
                                        int aux, void *arg);
/* Submits req with argc NUL-terminated strings (for a script: numkeys
 * first) and the configured timeout. argc is at most 32: callers pass
 * fixed, small counts. */
void tc_store__submit_strs(struct tc_store *s, struct tc_store__req *req, int argc,
                           const char **argv);

/* Claim leases (lease.c). lease_end writes now_ms + lease_ms as a score
 * text unique to this claim, a little under that ms. lease_lost remembers
 * the lease end of a claim of queue that was sent but got no reply, until
 * until_ms. lease_release, called before each claim of queue, forgets the
 * lost claims whose lease is over and sends the release script on the
 * command connection (the caller has admitted a command) for the others:
 * their jobs are due again at now_ms. */
void tc_store__lease_end(uint64_t now_ms, uint64_t lease_ms, char out[TC_STORE_LEASE_MAX]);
/* The first whole ms at which lease_end is over. */
uint64_t tc_store__lease_until(const char *lease_end);
void tc_store__lease_lost(struct tc_store *s, int queue, const char *lease_end, uint64_t until_ms);
void tc_store__lease_release(struct tc_store *s, int queue, const char *zset, uint64_t now_ms);
/* For a claim's done_fn: remembers req's lease end (its submitted argument
 * argi, numkeys being 0) when req was sent and failed with status. */
void tc_store__lease_check(struct tc_store__req *req, int status, int queue, int argi);

/* Puts ac's socket on loop (adapter.c). @returns 0, TC_ESTATE when ac is
 * already attached, or TC_EIO when libuv refused the descriptor. */
int tc_store__attach(redisAsyncContext *ac, uv_loop_t *loop);

/* Drops c's live context (a failure the caller detected in a reply): every
 * pending request fails, and the connection is retried with backoff. */
void tc_store__conn_drop(struct tc_store__conn *c, const char *reason);

/* The follower (follow.c): the follow connection's on_up hook. */
void tc_store__follow_up(struct tc_store__conn *c);

/* Script arguments (script.c). Fills keys and args of the per-event script
 * into argv (numkeys first); the strings are owned by the returned block,
 * which the caller frees. @returns the argc. */
struct tc_store__argbuf;
int tc_store__apply_argv(const struct tc_store *s, const struct tc_event *ev,
                         struct tc_store__argbuf **out, const char ***argv, size_t **argvlen);
void tc_store__argbuf_free(struct tc_store__argbuf *b);
/* A fresh epoch candidate: hex of 16 random bytes. */
void tc_store__epoch_candidate(char out[33]);
/* Parses the per-event script's reply. @returns 0 or TC_EIO. */
int tc_store__parse_apply(const redisReply *reply, struct tc_store_result *res);

/* Parses one stream entry [id, [field, value, ...]] into e (strings borrowed
 * from the reply). @returns 0 or TC_EIO. */
int tc_store__parse_entry(const redisReply *r, struct tc_history_entry *e);

#endif
