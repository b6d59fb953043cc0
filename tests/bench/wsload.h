/* tocsin — SPDX-License-Identifier: MIT
 *
 * tocsin-wsload: a WebSocket load generator on one epoll loop, no lws. This
 * header is shared by wsload.c (options, loop, statistics, output) and
 * wsload_ws.c (one session: connect, handshake, frames, update timestamps).
 * Single-threaded; every buffer has a fixed size chosen here. Two peers are
 * spoken: tocsind (tocsin.v1: welcome, snapshot, then updates) and a raw
 * pub/sub server (nchan, a node ws broadcaster: every text message is an
 * update), so tests/bench/peers.py times them with the same client.
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
    uint32_t updates;
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

    /* statistics */
    uint64_t connected;     /* handshakes completed */
    uint64_t ready;         /* sessions that got welcome and snapshot */
    uint64_t dead;          /* sessions that ended */
    uint64_t errors;        /* every failure: connect, handshake, protocol, too big, closed */
    uint64_t updates;       /* update messages received in total */
    uint64_t sessions_done; /* sessions that reached --expect */
    uint64_t dead_unready;  /* sessions that ended before welcome + snapshot */
    uint64_t dead_undone;   /* sessions that ended before --expect updates */
    uint64_t server_closes; /* close frames received from the server */
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

/* Exposed for the self-test (--selftest): JSON scan of one message. Returns the
 * message type in type (NUL-terminated, maybe truncated) and the incident's
 * bench_ts_us in *ts (0 if absent). Returns 0, or -1 if the text is not a
 * JSON object. */
int wl_json_scan(const char *p, size_t n, char *type, size_t type_size, uint64_t *ts);

/* Classifies one text message for peer: its kind (enum wl_msg) and, for an
 * update, the incident's bench_ts_us in *ts (0 if absent). For WL_PEER_RAW
 * every JSON object is an update, whatever its "type" (the publisher of
 * peers.py sends tocsind's update shape to every peer, so the scan costs the
 * same). Returns the kind, or -1 if the text is not a JSON object. */
int wl_classify(enum wl_peer peer, const char *p, size_t n, uint64_t *ts);

/* base64(SHA-1(key + GUID)), the Sec-WebSocket-Accept the server must send. */
void wl_accept_key(const char *key, char out[32]);

#endif
