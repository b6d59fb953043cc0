/* tocsin — SPDX-License-Identifier: MIT
 *
 * The follower: tails the history stream on its own connection and hands
 * every update, gapless and in seq order, to the fan-out. It loads a full
 * picture (the load script) at start and whenever it cannot continue exactly:
 * the epoch changed or vanished, or the stream skipped a seq (trimmed past us).
 * @loop main. It never writes, except the epoch the load script may create.
 */
#include "store/store_internal.h"

#include "log/log.h"
#include "metrics/metrics.h"
#include "util/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void follow_step(struct tc_store *s);

static bool
is_str(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS;
}

/* ---- load ---- */

/* Fills out with the longest run of entries of r that is contiguous in seq
 * and ends at seq (the contract of the load callback). @returns its length. */
static size_t
load_history(const redisReply *r, uint64_t seq, struct tc_history_entry *out)
{
    size_t n = 0;

    for (size_t i = 0; i < r->elements; i++) {
        struct tc_history_entry e;
        if (tc_store__parse_entry(r->element[i], &e) != 0) {
            tc_err("store", "malformed history entry skipped");
            n = 0;
            continue;
        }
        if (n > 0 && e.seq != out[n - 1].seq + 1) {
            n = 0;
        }
        out[n++] = e;
    }
    if (n > 0 && out[n - 1].seq != seq) {
        n = 0;
    }
    return n;
}

static void
load_done(struct tc_store__req *req, int status, const redisReply *reply)
{
    struct tc_store *s = req->conn->store;
    struct tc_store__follow *f = &s->f;
    struct tc_active_incident *active = NULL;
    struct tc_history_entry *hist = NULL;
    const redisReply *ep, *sq, *ac, *hi;
    uint64_t seq;
    size_t nactive, nhist;

    f->busy = false;
    if (status != 0 || s->closing) {
        goto out;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4) {
        goto bad;
    }
    ep = reply->element[0];
    sq = reply->element[1];
    ac = reply->element[2];
    hi = reply->element[3];
    if (!is_str(ep) || ep->len == 0 || ep->len >= TC_EPOCH_MAX || ac->type != REDIS_REPLY_ARRAY ||
        ac->elements % 3 != 0 || hi->type != REDIS_REPLY_ARRAY) {
        goto bad;
    }
    if (sq->type == REDIS_REPLY_INTEGER && sq->integer >= 0) {
        seq = (uint64_t)sq->integer;
    } else if (is_str(sq)) {
        seq = strtoull(sq->str, NULL, 10);
    } else {
        goto bad;
    }
    nactive = ac->elements / 3;
    active = tc_xcalloc(nactive + 1, sizeof(*active));
    for (size_t i = 0; i < nactive; i++) {
        const redisReply *id = ac->element[3 * i];
        const redisReply *st = ac->element[3 * i + 1];
        const redisReply *m = ac->element[3 * i + 2];
        if (!is_str(id) || !is_str(st) || !is_str(m)) {
            goto bad;
        }
        active[i] = (struct tc_active_incident){id->str, st->str, st->len, m->str, m->len};
    }
    hist = tc_xcalloc(hi->elements + 1, sizeof(*hist));
    nhist = load_history(hi, seq, hist);
    if (hi->elements > 0 && nhist < hi->elements) {
        tc_warn("store", "history not contiguous, some of it dropped from the load",
                TC_U("got", hi->elements), TC_U("kept", nhist));
    }

    memcpy(f->epoch, ep->str, ep->len);
    f->epoch[ep->len] = '\0';
    f->last_seq = seq;
    f->loaded = true;
    f->need_load = false;
    tc_info("store", "history loaded", TC_S("epoch", f->epoch), TC_U("seq", seq),
            TC_U("active", nactive), TC_U("history", nhist));
    f->cbs.load(f->cbs.arg, f->epoch, seq, active, nactive, hist, nhist);
    follow_step(s);
    goto out;
bad:
    tc_metrics_inc(TC_M_REDIS_ERRORS);
    tc_err("store", "unexpected reply from the load script");
    tc_store__conn_drop(req->conn, "bad load reply");
out:
    free(active);
    free(hist);
}

static void
send_load(struct tc_store *s)
{
    const char *p = s->cfg->redis_prefix;
    char count[24];
    char candidate[33];
    char *keys[4] = {tc_xasprintf("%sepoch", p), tc_xasprintf("%sseq", p),
                     tc_xasprintf("%sactive", p), tc_xasprintf("%shistory", p)};
    char *inc = tc_xasprintf("%sinc:", p);
    const char *argv[8];
    size_t argvlen[8];
    struct tc_store__req *req;

    snprintf(count, sizeof(count), "%zu", s->f.history);
    tc_store__epoch_candidate(candidate);
    argv[0] = "4";
    for (int i = 0; i < 4; i++) {
        argv[1 + i] = keys[i];
    }
    argv[5] = count;
    argv[6] = candidate;
    argv[7] = inc;
    for (int i = 0; i < 8; i++) {
        argvlen[i] = strlen(argv[i]);
    }
    s->f.busy = true;
    req = tc_store__req_new(&s->follow, TC_STORE__LOAD, load_done);
    tc_store__submit(req, 8, argv, argvlen, s->cfg->redis_timeout_ms);
    for (int i = 0; i < 4; i++) {
        free(keys[i]);
    }
    free(inc);
}

/* ---- tail ---- */

static void
epoch_done(struct tc_store__req *req, int status, const redisReply *reply)
{
    struct tc_store__follow *f = &req->conn->store->f;

    if (status != 0) {
        return; /* the XREAD behind it fails too */
    }
    if (!is_str(reply) || strcmp(reply->str, f->epoch) != 0) {
        /* FLUSHALL, a restart without persistence, a failover to a replica
         * that lost data: every seq we know is void. */
        tc_warn("store", "epoch changed, loading again", TC_S("old", f->epoch),
                TC_S("new", is_str(reply) ? reply->str : ""));
        f->need_load = true;
    }
}

/* Delivers the entries of one XREAD reply. @returns false when they do not
 * continue last_seq exactly (then a load follows). */
static bool
deliver(struct tc_store *s, const redisReply *reply)
{
    struct tc_store__follow *f = &s->f;
    const redisReply *list;
    struct tc_history_entry *batch = NULL;
    size_t n = 0;
    bool ok = true;

    if (reply->type == REDIS_REPLY_NIL) {
        return true; /* BLOCK ran out: nothing new */
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 1 ||
        reply->element[0]->type != REDIS_REPLY_ARRAY || reply->element[0]->elements != 2 ||
        reply->element[0]->element[1]->type != REDIS_REPLY_ARRAY) {
        tc_err("store", "unexpected XREAD reply");
        return false;
    }
    list = reply->element[0]->element[1];
    batch = tc_xcalloc(list->elements + 1, sizeof(*batch));
    for (size_t i = 0; i < list->elements; i++) {
        if (tc_store__parse_entry(list->element[i], &batch[n]) != 0) {
            tc_err("store", "malformed history entry");
            ok = false;
            break;
        }
        if (batch[n].seq != f->last_seq + n + 1) {
            tc_warn("store", "gap in the history stream, loading again",
                    TC_U("expected", f->last_seq + n + 1), TC_U("got", batch[n].seq));
            ok = false;
            break;
        }
        n++;
    }
    if (n > 0) {
        f->last_seq += n;
        tc_metrics_add(TC_M_UPDATES_TAILED, n);
        f->cbs.entries(f->cbs.arg, batch, n);
    }
    free(batch);
    return ok;
}

static void
read_done(struct tc_store__req *req, int status, const redisReply *reply)
{
    struct tc_store *s = req->conn->store;
    struct tc_store__follow *f = &s->f;

    f->busy = false;
    if (status != 0 || s->closing) {
        return; /* the connection is down; its on_up hook resumes us */
    }
    if (!f->need_load && !deliver(s, reply)) {
        f->need_load = true;
    }
    if (!s->closing) {
        follow_step(s);
    }
}

static void
send_round(struct tc_store *s)
{
    const char *p = s->cfg->redis_prefix;
    char *epoch_key = tc_xasprintf("%sepoch", p);
    char *history_key = tc_xasprintf("%shistory", p);
    char block[24], count[24], from[32];
    const char *argv[8];
    size_t argvlen[8];
    struct tc_store__req *req;

    snprintf(block, sizeof(block), "%d", TC_STORE__BLOCK_MS);
    snprintf(count, sizeof(count), "%d", TC_STORE__READ_MAX);
    snprintf(from, sizeof(from), "%" PRIu64 "-0", s->f.last_seq);
    s->f.busy = true;

    /* Pipelined on one connection: the epoch check is answered first. */
    argv[0] = "GET";
    argv[1] = epoch_key;
    argvlen[0] = 3;
    argvlen[1] = strlen(epoch_key);
    req = tc_store__req_new(&s->follow, -1, epoch_done);
    tc_store__submit(req, 2, argv, argvlen, s->cfg->redis_timeout_ms);

    argv[0] = "XREAD";
    argv[1] = "BLOCK";
    argv[2] = block;
    argv[3] = "COUNT";
    argv[4] = count;
    argv[5] = "STREAMS";
    argv[6] = history_key;
    argv[7] = from;
    for (int i = 0; i < 8; i++) {
        argvlen[i] = strlen(argv[i]);
    }
    req = tc_store__req_new(&s->follow, -1, read_done);
    tc_store__submit(req, 8, argv, argvlen, TC_STORE__BLOCK_MS + s->cfg->redis_timeout_ms);
    free(epoch_key);
    free(history_key);
}

static void
follow_step(struct tc_store *s)
{
    struct tc_store__follow *f = &s->f;

    if (!f->active || f->busy || s->closing || !s->follow.up) {
        return;
    }
    if (!f->loaded || f->need_load) {
        send_load(s);
    } else {
        send_round(s);
    }
}

void
tc_store__follow_up(struct tc_store__conn *c)
{
    /* After a reconnect the next round continues from last_seq; its epoch
     * and gap checks decide whether that is still exact. */
    follow_step(c->store);
}

void
tc_store_follow(struct tc_store *s, const struct tc_store_follow_cbs *cbs, size_t history)
{
    s->f.active = true;
    s->f.cbs = *cbs;
    s->f.history = history;
    s->f.need_load = true;
    follow_step(s);
}
