/* tocsin — SPDX-License-Identifier: MIT
 *
 * tocsin-wsload: a WebSocket load generator on one epoll loop, no lws. This
 * header is shared by wsload.c (options, loop, statistics, output) and
 * wsload_ws.c (one session: connect, handshake, frames, update timestamps).
 * Single-threaded; every buffer has a fixed size chosen here. Two peers are
 * spoken: tocsind (tocsin.v1: welcome, snapshot, then updates) and a raw
 * pub/sub server (nchan, a node ws broadcaster: every text message is an
 * update), so tests/bench/peers.py times them with the same client. For the
 * burst, storm and soak scenarios (tests/bench/scenarios.py, soak.py) each
 * session may take its own filter, check its updates for gaps, duplicates and
 * non-matching incidents, and drop and resume with since + epoch.
 */
#ifndef TC_WSLOAD_H
#define TC_WSLOAD_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One message (after reassembly) must fit here; a larger one is counted as an
 * error and the session is closed. The extra 128 bytes hold one frame header,
 * or one control frame (at most 127 bytes) between fragments of a message. */
#define WL_MSG_MAX   (64 * 1024)
#define WL_RBUF_SIZE (WL_MSG_MAX + 128)
/* The handshake request and control frames (pong, close: at most 131 bytes)
 * are queued here; a control frame that does not fit is dropped and counted. */
#define WL_WBUF_SIZE 1024
/* The response header must end within this many bytes, else the handshake fails. */
#define WL_HDR_MAX 4096

/* What the server on the other end speaks. */
enum wl_peer {
    WL_PEER_TOCSIN = 0, /* subprotocol tocsin.v1; ready after welcome + snapshot */
    WL_PEER_RAW,        /* no subprotocol; ready on the 101, every text message is an update */
};

/* Filters given with --filters; more are refused. A filter's query must fit
 * the request line with the path, since and epoch (WL_WBUF_SIZE). */
#define WL_MAX_FILTERS 256
#define WL_EPOCH_MAX   64
/* Per-update figures (first ts, first and last receive time) are kept for the
 * first this many updates of a session: enough for repeated single updates. */
#define WL_MAX_TRACKED_UPDATES 4096
/* Buckets of the time from a reconnect trigger to a session's catch-up. */
#define WL_CATCHUP_BUCKETS 9
extern const unsigned wl_catchup_edges_ms[WL_CATCHUP_BUCKETS - 1];
/* Incidents told apart by --check (incident.bench_c.i); others are unchecked. */
#define WL_MAX_INCIDENTS 256

/* One session class of --filters: the query it subscribes with and how many
 * updates each of its sessions must get. Its index is the key the publisher
 * uses in incident.bench_c (see wl_scan). */
struct wl_filter {
    char query[512];
    uint32_t expect;
};

/* What one text message is, by wl_classify. */
enum wl_msg {
    WL_MSG_OTHER = 0, /* counted nowhere (tocsin.v1 types the benchmark does not use) */
    WL_MSG_WELCOME,
    WL_MSG_SNAPSHOT,
    WL_MSG_UPDATE,
    WL_MSG_ERROR,
};

enum wl_state {
    WL_IDLE = 0,   /* not started yet */
    WL_CONNECTING, /* non-blocking connect in progress */
    WL_HANDSHAKE,  /* request sent (or queued), waiting for the 101 */
    WL_OPEN,       /* frames flow */
    WL_DEAD,       /* closed; counted in errors unless ended by us */
};

struct wl_session {
    int fd;
    enum wl_state state;
    bool welcomed;
    bool snapshotted;
    bool ready_counted;
    bool resuming;     /* reconnected with since + epoch: no snapshot expected */
    bool done_counted; /* counted in sessions_done */
    uint16_t filter;   /* index into wl_ctx.filters */
    uint32_t updates;
    /* Last incident.bench_c counter seen per incident slot for this session's
     * filter: per incident, not global, since incidents on other Kafka
     * partitions may be stored in another order than they were published. */
    uint32_t last_ctr[WL_MAX_INCIDENTS];
    uint64_t last_seq;   /* last update seq: the since of a resume */
    uint64_t started_us; /* monotonic, when connect() was called */
    char key[32];        /* Sec-WebSocket-Key, base64 of 16 random bytes */
    /* Read buffer: [0, msg_len) holds the payload of a fragmented message being
     * reassembled, [msg_len, rlen) raw bytes not parsed yet. */
    uint8_t *rbuf;
    size_t rlen;
    size_t msg_len;
    int msg_opcode; /* opcode of the message being reassembled, 0 if none */
    uint8_t wbuf[WL_WBUF_SIZE];
    size_t wlen;
    size_t woff;
    bool want_out; /* EPOLLOUT armed */
};

/* Process-wide counters and settings the session code reads and updates. */
struct wl_ctx {
    int epfd;
    struct sockaddr_in dst;
    char host[64];        /* Host header */
    char path[1024];      /* request target, path + query */
    struct in_addr *srcs; /* source addresses to bind, rotating; may be empty */
    size_t nsrcs;
    size_t next_src;
    uint64_t connect_timeout_us;
    enum wl_peer peer;
    struct wl_filter *filters; /* --filters; nfilters == 0: the URL's query alone */
    size_t nfilters;
    /* Check every update's incident.bench_c counter for this session's filter:
     * per incident slot the first is 1, each next one is the last + 1 (else a
     * gap or duplicate), and an incident without this filter's key did not
     * match (foreign). */
    bool check;
    bool resume_on_close;     /* a server close resumes with since instead of failing */
    char epoch[WL_EPOCH_MAX]; /* the first welcome's; every later message must carry it */

    /* statistics */
    uint64_t connected;      /* handshakes completed */
    uint64_t ready;          /* sessions that got welcome and snapshot */
    uint64_t dead;           /* sessions that ended */
    uint64_t errors;         /* every failure: connect, handshake, protocol, too big, closed */
    uint64_t updates;        /* update messages received in total */
    uint64_t sessions_done;  /* sessions that reached --expect */
    uint64_t dead_unready;   /* sessions that ended before welcome + snapshot */
    uint64_t dead_undone;    /* sessions that ended before --expect updates */
    uint64_t server_closes;  /* close frames received from the server */
    uint64_t gaps;           /* counters skipped (updates that never came) */
    uint64_t dups;           /* updates whose counter or seq was not past the last one */
    uint64_t foreign;        /* updates for incidents the session's filter does not match */
    uint64_t unchecked;      /* with check: updates without incident.bench_c */
    uint64_t resets;         /* snapshots with reset:true (a resume not served exactly) */
    uint64_t epoch_changes;  /* messages whose epoch differs from the first welcome's */
    uint64_t reconnects;     /* sessions dropped by us and started again with since */
    uint64_t rewelcomed;     /* reconnected sessions that got their welcome */
    uint64_t resumed_closes; /* server closes answered by a resume (--resume-on-close) */
    uint64_t trigger_us;     /* wall clock of the last reconnect trigger */
    uint64_t rewelcome_us;   /* wall clock when the last reconnected session got its welcome */
    uint64_t caught_up_us;   /* wall clock when the last session reached its expect */
    /* Sessions that reached their expect within wl_catchup_edges_ms[i] of the
     * last trigger (the last bucket: later); only after a trigger. */
    uint64_t catchup_hist[WL_CATCHUP_BUCKETS];
    uint32_t expect;
    uint64_t first_ts_us;   /* smallest bench_ts_us seen (wall clock) */
    uint64_t first_rx_us;   /* wall clock of the first update received */
    uint64_t last_rx_us;    /* wall clock of the last update received */
    uint64_t last_ready_us; /* monotonic, when the last session became ready */
    /* Latency samples in microseconds; past lat_cap they are counted but not
     * kept (the percentiles then describe the first lat_cap deliveries). */
    uint32_t *lat;
    size_t lat_len;
    size_t lat_cap;
    uint64_t lat_dropped;
    uint64_t lat_max_us;
    /* Past lat_cap, only every lat_stride-th delivery is sampled: the kept
     * samples are thinned to every other one and the stride doubles, so the
     * percentiles describe the whole run (stride 1 until then). */
    uint64_t lat_stride;
    uint64_t lat_seen;
    /* Per update number k (a session's k-th update, k < WL_MAX_TRACKED_UPDATES):
     * the smallest bench_ts_us, the first and the last receive time. */
    uint64_t *upd_ts, *upd_first, *upd_last;
    size_t upd_tracked;
    bool verbose;
};

uint64_t wl_mono_us(void);
uint64_t wl_wall_us(void);
void *wl_xmalloc(size_t n);
void wl_log(struct wl_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Starts a non-blocking connect for s. Returns 0, or -1 (s is then dead and counted). */
int wl_session_start(struct wl_ctx *c, struct wl_session *s);
/* Handles epoll events for s. */
void wl_session_event(struct wl_ctx *c, struct wl_session *s, uint32_t events);
/* Closes s; counted as an error when is_error. */
void wl_session_close(struct wl_ctx *c, struct wl_session *s, bool is_error, const char *why);
/* Drops s (its socket closed without a close frame, like a lost network) and
 * starts it again at once with since = its last seq and the epoch. */
void wl_session_resume(struct wl_ctx *c, struct wl_session *s);
/* Drops s and leaves it idle: wl_session_start resumes it later. */
void wl_session_drop(struct wl_ctx *c, struct wl_session *s);
/* The updates s must get: its filter's expect, else --expect. */
uint32_t wl_session_expect(const struct wl_ctx *c, const struct wl_session *s);

/* What the scan of one message found. ctr_key is an input: the key looked up
 * in incident.bench_c, an object with the incident's slot "i" and, per filter
 * index that matches the incident, how many events of this incident matched
 * that filter so far ({"i":2,"0":17,"3":17}). The publisher puts it in each
 * event (unknown fields pass through into the incident state). */
struct wl_scan {
    char type[32];            /* NUL-terminated, maybe truncated; "" if absent */
    char epoch[WL_EPOCH_MAX]; /* "" if absent */
    uint64_t ts;              /* incident.bench_ts_us, 0 if absent */
    uint64_t seq;             /* 0 if absent */
    bool reset;               /* "reset":true */
    const char *ctr_key;      /* in; NULL: bench_c is not looked at */
    bool has_ctrs;            /* the incident has bench_c */
    long ctr;                 /* bench_c[ctr_key], -1 if absent */
    long slot;                /* bench_c.i, -1 if absent */
};

/* Exposed for the self-test (--selftest): JSON scan of one message into *out
 * (out->ctr_key set by the caller). Returns 0, or -1 if the text is not a
 * JSON object. */
int wl_json_scan(const char *p, size_t n, struct wl_scan *out);

/* Classifies one text message for peer: its kind (enum wl_msg), with the
 * scan in *out. For WL_PEER_RAW every JSON object is an update, whatever its
 * "type" (the publisher of peers.py sends tocsind's update shape to every
 * peer, so the scan costs the same). Returns the kind, or -1 if the text is
 * not a JSON object. */
int wl_classify(enum wl_peer peer, const char *p, size_t n, struct wl_scan *out);

/* base64(SHA-1(key + GUID)), the Sec-WebSocket-Accept the server must send. */
void wl_accept_key(const char *key, char out[32]);

#endif
