/* tocsin — SPDX-License-Identifier: MIT
 *
 * The hub (see hub.h): node state built from the store follower, the ring
 * used to serve resumes without asking Redis (a reconnect storm costs Redis
 * nothing), and fan-out that encodes each update once per (encoding, sub id).
 * Does not do I/O; sinks queue and send.
 */
#include "hub/hub.h"
#include "log/log.h"
#include "metrics/metrics.h"

#include <stdlib.h>
#include <string.h>

/* A recent update or an active incident: what a snapshot or replay needs. */
struct item {
    uint64_t seq;
    char *incident_id;
    char *state;
    size_t state_len;
    struct tc_match *match;
    bool ends;
    /* Ring items: the WebSocket frame for sub "default", which nearly every
     * session gets, encoded by the fan-out and kept for replays, so that a
     * reconnect storm's resumes share it instead of encoding per session.
     * NULL until needed. */
    struct tc_frame *ws_default;
};

struct tc_hub_sub {
    struct tc_hub_sub *prev, *next;
    struct tc_hub_sink *sink;
    const char *id; /* default_id or id_owned */
    char *id_owned;
    struct tc_filter filter;
};

/* The id of the query string's subscription, which nearly every session
 * has: shared rather than copied (one allocation less per session), and
 * the fan-out's frame cache finds it by pointer without a strcmp. */
static const char default_id[] = "default";

struct tc_hub {
    const struct tc_config *cfg;
    bool loaded;
    char epoch[TC_EPOCH_MAX];
    uint64_t seq;
    /* Active incidents, unordered. An outage has tens of them, not thousands,
     * so a linear scan is the cheap and simple choice. */
    struct item *active;
    size_t nactive, active_cap;
    /* Ring of the last cap updates: ring[(start + i) % cap], i < count. */
    struct item *ring;
    size_t ring_cap, ring_start, ring_count;
    struct tc_hub_sub subs; /* list head */
    size_t nsubs;
};

static void
item_fini(struct item *it)
{
    free(it->incident_id);
    free(it->state);
    tc_match_free(it->match);
    if (it->ws_default != NULL) {
        tc_frame_unref(it->ws_default);
    }
    memset(it, 0, sizeof(*it));
}

static int
item_init(struct item *it, uint64_t seq, const char *id, const char *state, size_t state_len,
          const char *match, size_t match_len, bool ends)
{
    struct tc_match *m = tc_match_parse(match, match_len);
    if (m == NULL) {
        tc_err("hub", "malformed match view in history", TC_U("seq", seq), TC_S("incident", id));
        return TC_EINVAL;
    }
    it->seq = seq;
    it->incident_id = tc_xstrdup(id);
    it->state = tc_xstrndup(state, state_len);
    it->state_len = state_len;
    it->match = m;
    it->ends = ends;
    it->ws_default = NULL; /* it may be fresh from realloc */
    return TC_OK;
}

struct tc_hub *
tc_hub_new(const struct tc_config *cfg)
{
    struct tc_hub *hub = tc_xcalloc(1, sizeof(*hub));
    hub->cfg = cfg;
    hub->ring_cap = (size_t)cfg->ws_replay_cap;
    hub->ring = tc_xcalloc(hub->ring_cap, sizeof(struct item));
    hub->subs.next = hub->subs.prev = &hub->subs;
    return hub;
}

static void
clear_state(struct tc_hub *hub)
{
    for (size_t i = 0; i < hub->nactive; i++) {
        item_fini(&hub->active[i]);
    }
    hub->nactive = 0;
    for (size_t i = 0; i < hub->ring_count; i++) {
        item_fini(&hub->ring[(hub->ring_start + i) % hub->ring_cap]);
    }
    hub->ring_start = hub->ring_count = 0;
}

void
tc_hub_free(struct tc_hub *hub)
{
    if (hub == NULL) {
        return;
    }
    clear_state(hub);
    free(hub->active);
    free(hub->ring);
    free(hub);
}

bool
tc_hub_loaded(const struct tc_hub *hub)
{
    return hub->loaded;
}

const char *
tc_hub_epoch(const struct tc_hub *hub)
{
    return hub->epoch;
}

uint64_t
tc_hub_seq(const struct tc_hub *hub)
{
    return hub->seq;
}

const char *
tc_hub_sub_id(const struct tc_hub_sub *sub)
{
    return sub->id;
}

static struct item *
find_active(struct tc_hub *hub, const char *id)
{
    for (size_t i = 0; i < hub->nactive; i++) {
        if (strcmp(hub->active[i].incident_id, id) == 0) {
            return &hub->active[i];
        }
    }
    return NULL;
}

/* Applies one update to the active set, which keeps copies of its own. */
static void
apply_active(struct tc_hub *hub, const struct tc_history_entry *e)
{
    struct item *cur = find_active(hub, e->incident_id);
    if (cur != NULL) {
        item_fini(cur);
        if (e->ends) {
            *cur = hub->active[--hub->nactive];
            memset(&hub->active[hub->nactive], 0, sizeof(struct item));
            goto out;
        }
    } else {
        if (e->ends) {
            goto out;
        }
        if (hub->nactive == hub->active_cap) {
            hub->active_cap = hub->active_cap ? hub->active_cap * 2 : 16;
            hub->active = tc_xrealloc(hub->active, hub->active_cap * sizeof(struct item));
        }
        cur = &hub->active[hub->nactive++];
    }
    if (item_init(cur, e->seq, e->incident_id, e->state, e->state_len, e->match, e->match_len,
                  false) != TC_OK) {
        *cur = hub->active[--hub->nactive];
        memset(&hub->active[hub->nactive], 0, sizeof(struct item));
    }
out:
    tc_metrics_gauge_set(TC_G_ACTIVE_INCIDENTS, (int64_t)hub->nactive);
}

/* Appends to the ring, dropping the oldest at the bound (the replay cap:
 * resumes from before it get a reset snapshot). @takes u's contents. */
static void
ring_push(struct tc_hub *hub, struct item *u)
{
    if (hub->ring_count == hub->ring_cap) {
        item_fini(&hub->ring[hub->ring_start]);
        hub->ring_start = (hub->ring_start + 1) % hub->ring_cap;
        hub->ring_count--;
    }
    hub->ring[(hub->ring_start + hub->ring_count) % hub->ring_cap] = *u;
    hub->ring_count++;
    memset(u, 0, sizeof(*u));
}

static struct item *
ring_at(struct tc_hub *hub, size_t i)
{
    return &hub->ring[(hub->ring_start + i) % hub->ring_cap];
}

/* Frames of one update, one per (encoding, sub id) actually used. Almost
 * every session uses the "default" sub, so this holds one or two. */
struct frame_cache {
    struct {
        enum tc_hub_encoding enc;
        const char *sub;
        struct tc_frame *frame;
    } e[8];
    size_t n;
};

static struct tc_frame *
encode_update(const struct tc_hub *hub, enum tc_hub_encoding enc, const char *sub,
              const struct item *u)
{
    struct tc_frame *ws = tc_frame_update(sub, hub->epoch, u->seq, u->state, u->state_len);
    if (enc == TC_HUB_ENC_WS) {
        return ws;
    }
    struct tc_frame *sse = tc_frame_sse("update", hub->epoch, u->seq, ws);
    tc_frame_unref(ws);
    return sse;
}

static struct tc_frame *
cache_get(struct frame_cache *c, const struct tc_hub *hub, const struct tc_hub_sub *sub,
          const struct item *u)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->e[i].enc == sub->sink->enc &&
            (c->e[i].sub == sub->id || strcmp(c->e[i].sub, sub->id) == 0)) {
            return c->e[i].frame;
        }
    }
    struct tc_frame *f = encode_update(hub, sub->sink->enc, sub->id, u);
    if (c->n == TC_ARRAY_SIZE(c->e)) {
        /* Full: the oldest entry makes room; its frame lives on in the sink
         * queues that hold it. */
        tc_frame_unref(c->e[0].frame);
        memmove(&c->e[0], &c->e[1], sizeof(c->e[0]) * (c->n - 1));
        c->n--;
    }
    c->e[c->n].enc = sub->sink->enc;
    c->e[c->n].sub = sub->id;
    c->e[c->n].frame = f;
    c->n++;
    return f;
}

static void
cache_clear(struct frame_cache *c)
{
    for (size_t i = 0; i < c->n; i++) {
        tc_frame_unref(c->e[i].frame);
    }
    c->n = 0;
}

/* The frame of update u for sub: the item's own for a WebSocket "default"
 * subscription (encoded on first use), else one from the cache. */
static struct tc_frame *
frame_for(struct frame_cache *c, const struct tc_hub *hub, const struct tc_hub_sub *sub,
          struct item *u)
{
    if (sub->id != default_id || sub->sink->enc != TC_HUB_ENC_WS) {
        return cache_get(c, hub, sub, u);
    }
    if (u->ws_default == NULL) {
        u->ws_default = encode_update(hub, TC_HUB_ENC_WS, default_id, u);
    }
    return u->ws_default;
}

/* Deliveries per channel, counted in the loop and added to the metrics once
 * per update: an atomic add per delivery showed in the fan-out profile. */
struct counts {
    uint64_t ws, sse;
};

static void
push(struct tc_hub_sub *sub, struct tc_frame *f, struct counts *n)
{
    if (sub->sink->ops->push(sub->sink, f) == TC_OK) {
        if (sub->sink->enc == TC_HUB_ENC_WS) {
            n->ws++;
        } else {
            n->sse++;
        }
    }
}

static void
counts_flush(const struct counts *n)
{
    if (n->ws > 0) {
        tc_metrics_add(TC_M_DELIVERIES_WS, n->ws);
    }
    if (n->sse > 0) {
        tc_metrics_add(TC_M_DELIVERIES_SSE, n->sse);
    }
}

static void
send_snapshot(struct tc_hub *hub, struct tc_hub_sub *sub, bool reset)
{
    const char **states = tc_xcalloc(hub->nactive + 1, sizeof(char *));
    size_t *lens = tc_xcalloc(hub->nactive + 1, sizeof(size_t));
    size_t n = 0;
    for (size_t i = 0; i < hub->nactive; i++) {
        if (tc_filter_match(&sub->filter, tc_match_view(hub->active[i].match))) {
            states[n] = hub->active[i].state;
            lens[n++] = hub->active[i].state_len;
        }
    }
    struct tc_frame *f = tc_frame_snapshot(sub->id, hub->epoch, hub->seq, reset, states, lens, n);
    if (sub->sink->enc == TC_HUB_ENC_SSE) {
        struct tc_frame *sse = tc_frame_sse("snapshot", hub->epoch, hub->seq, f);
        tc_frame_unref(f);
        f = sse;
    }
    sub->sink->ops->push(sub->sink, f);
    tc_frame_unref(f);
    free(states);
    free(lens);
}

/* Decides how a resume is served and serves it. */
static enum tc_resume
serve_resume(struct tc_hub *hub, struct tc_hub_sub *sub, uint64_t since, const char *epoch)
{
    bool exact = hub->loaded && epoch != NULL && strcmp(epoch, hub->epoch) == 0 &&
                 since <= hub->seq && hub->seq - since <= (uint64_t)hub->cfg->ws_replay_cap;
    /* The ring must hold every update after since. */
    if (exact && since < hub->seq) {
        exact = hub->ring_count > 0 && ring_at(hub, 0)->seq <= since + 1;
    }
    if (!exact) {
        send_snapshot(hub, sub, true);
        tc_metrics_inc(TC_M_RESUMES_RESET);
        return TC_RESUME_RESET;
    }
    struct frame_cache cache = {.n = 0};
    struct counts n = {0, 0};
    for (size_t i = 0; i < hub->ring_count; i++) {
        struct item *u = ring_at(hub, i);
        if (u->seq > since && tc_filter_match(&sub->filter, tc_match_view(u->match))) {
            push(sub, frame_for(&cache, hub, sub, u), &n);
            cache_clear(&cache);
        }
    }
    counts_flush(&n);
    tc_metrics_inc(TC_M_RESUMES_EXACT);
    return TC_RESUME_EXACT;
}

struct tc_hub_sub *
tc_hub_subscribe(struct tc_hub *hub, struct tc_hub_sink *sink, const char *id,
                 struct tc_filter *filter, bool has_since, uint64_t since, const char *epoch,
                 enum tc_resume *resume)
{
    struct tc_hub_sub *sub = tc_xcalloc(1, sizeof(*sub));
    sub->sink = sink;
    if (strcmp(id, default_id) == 0) {
        sub->id = default_id;
    } else {
        sub->id = sub->id_owned = tc_xstrdup(id);
    }
    sub->filter = *filter;
    memset(filter, 0, sizeof(*filter));
    enum tc_resume r = TC_RESUME_NONE;
    if (has_since) {
        r = serve_resume(hub, sub, since, epoch);
    } else {
        send_snapshot(hub, sub, false);
    }
    if (resume != NULL) {
        *resume = r;
    }
    sub->next = &hub->subs;
    sub->prev = hub->subs.prev;
    hub->subs.prev->next = sub;
    hub->subs.prev = sub;
    hub->nsubs++;
    return sub;
}

void
tc_hub_unsubscribe(struct tc_hub *hub, struct tc_hub_sub *sub)
{
    if (sub == NULL) {
        return;
    }
    sub->prev->next = sub->next;
    sub->next->prev = sub->prev;
    hub->nsubs--;
    tc_filter_fini(&sub->filter);
    free(sub->id_owned);
    free(sub);
}

/* Fans one update out to every matching subscription, in list order. */
static void
fan_out(struct tc_hub *hub, struct item *u)
{
    const struct tc_match_view *view = tc_match_view(u->match);
    struct frame_cache cache = {.n = 0};
    struct counts n = {0, 0};
    for (struct tc_hub_sub *sub = hub->subs.next; sub != &hub->subs; sub = sub->next) {
        if (tc_filter_match(&sub->filter, view)) {
            push(sub, frame_for(&cache, hub, sub, u), &n);
        }
    }
    cache_clear(&cache);
    counts_flush(&n);
}

static void
accept_entry(struct tc_hub *hub, const struct tc_history_entry *e, bool deliver)
{
    struct item u = {0};
    if (item_init(&u, e->seq, e->incident_id, e->state, e->state_len, e->match, e->match_len,
                  e->ends) != TC_OK) {
        /* Skip it but keep the seq: a broken entry must not stall the stream. */
        hub->seq = e->seq;
        return;
    }
    hub->seq = e->seq;
    apply_active(hub, e);
    if (deliver) {
        fan_out(hub, &u);
    }
    ring_push(hub, &u);
}

void
tc_hub_entries(void *arg, const struct tc_history_entry *entries, size_t n)
{
    struct tc_hub *hub = arg;
    uint64_t t0 = tc_wall_us();
    for (size_t i = 0; i < n; i++) {
        if (entries[i].seq <= hub->seq) {
            continue; /* already delivered (a load raced the tail) */
        }
        accept_entry(hub, &entries[i], true);
        tc_metrics_inc(TC_M_UPDATES_TAILED);
    }
    tc_metrics_gauge_set(TC_G_HUB_SEQ, (int64_t)hub->seq);
    tc_metrics_observe(TC_H_FANOUT_SECONDS, (double)(tc_wall_us() - t0) / 1e6);
}

void
tc_hub_load(void *arg, const char *epoch, uint64_t seq, const struct tc_active_incident *active,
            size_t nactive, const struct tc_history_entry *history, size_t nhistory)
{
    struct tc_hub *hub = arg;
    /* Same epoch and the loaded history continues ours: deliver the
     * difference as ordinary updates, and nobody needs a reset. */
    if (hub->loaded && strcmp(epoch, hub->epoch) == 0 && seq >= hub->seq &&
        (seq == hub->seq || (nhistory > 0 && history[0].seq <= hub->seq + 1))) {
        tc_hub_entries(hub, history, nhistory);
        tc_info("hub", "reloaded, continuing", TC_S("epoch", epoch), TC_U("seq", seq));
        return;
    }
    bool was_loaded = hub->loaded;
    clear_state(hub);
    snprintf(hub->epoch, sizeof(hub->epoch), "%s", epoch);
    hub->seq = 0;
    for (size_t i = 0; i < nhistory; i++) {
        accept_entry(hub, &history[i], false);
    }
    /* The active set from Redis is the truth; the ring only fed replay. */
    for (size_t i = 0; i < hub->nactive; i++) {
        item_fini(&hub->active[i]);
    }
    hub->nactive = 0;
    for (size_t i = 0; i < nactive; i++) {
        const struct tc_history_entry e = {.seq = seq,
                                           .incident_id = active[i].incident_id,
                                           .state = active[i].state,
                                           .state_len = active[i].state_len,
                                           .match = active[i].match,
                                           .match_len = active[i].match_len,
                                           .ends = false};
        apply_active(hub, &e);
    }
    hub->seq = seq;
    hub->loaded = true;
    tc_metrics_gauge_set(TC_G_HUB_SEQ, (int64_t)seq);
    tc_info("hub", was_loaded ? "reloaded with a reset" : "loaded", TC_S("epoch", epoch),
            TC_U("seq", seq), TC_U("active", nactive), TC_U("history", nhistory),
            TC_U("subscriptions", hub->nsubs));
    /* Every existing subscription lost its place: a reset snapshot. */
    for (struct tc_hub_sub *sub = hub->subs.next; sub != &hub->subs; sub = sub->next) {
        send_snapshot(hub, sub, true);
    }
}

char *
tc_hub_active_json(const struct tc_hub *hub, const struct tc_filter *filter, size_t *len)
{
    char head[160];
    snprintf(head, sizeof(head), "{\"epoch\":\"%s\",\"seq\":%llu,\"incidents\":[", hub->epoch,
             (unsigned long long)hub->seq);
    size_t total = strlen(head) + 3;
    for (size_t i = 0; i < hub->nactive; i++) {
        total += hub->active[i].state_len + 1;
    }
    char *out = tc_xmalloc(total);
    size_t n = strlen(head);
    memcpy(out, head, n);
    bool first = true;
    for (size_t i = 0; i < hub->nactive; i++) {
        const struct item *it = &hub->active[i];
        if (!tc_filter_match(filter, tc_match_view(it->match))) {
            continue;
        }
        if (!first) {
            out[n++] = ',';
        }
        first = false;
        memcpy(out + n, it->state, it->state_len);
        n += it->state_len;
    }
    out[n++] = ']';
    out[n++] = '}';
    out[n] = '\0';
    *len = n;
    return out;
}
