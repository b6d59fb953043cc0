/* tocsin — SPDX-License-Identifier: MIT
 *
 * A minimal RFC 6455 WebSocket client for `tocsinctl tail`: blocking calls
 * with deadlines over one socket (plain or TLS with OpenSSL, the peer's
 * certificate verified), the upgrade with a subprotocol, text messages
 * (fragments joined), pings answered, close frames reported. It sends only
 * control frames. Every wait is cut into short slices that look at a stop
 * flag, so a signal handler setting it ends any call within ~200 ms.
 * The caller ignores SIGPIPE.
 */
#ifndef TC_CTL_WS_H
#define TC_CTL_WS_H

#include "util/util.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest message accepted; a bigger one closes the connection with 1009.
 * A snapshot of every active incident is the largest tocsin sends. */
#define TC_CTL_WS_MAX_MESSAGE (16u << 20)

struct tc_ctl_ws_target {
    const char *host; /* name or address, IPv6 without brackets */
    const char *port; /* "8080" */
    bool tls;
    const char *path; /* path and query: "/v1/ws?components=a" */
};

struct tc_ctl_ws;

/* Connects and upgrades with subprotocol protocol within timeout_ms.
 * @borrows t. @returns 0 with *out new, TC_EIO (no connection), TC_ETIMEDOUT,
 * TC_EAGAIN (*stop became set), or TC_EINVAL when the server answered but
 * refused the upgrade (*http_status holds its status, 0 if it was no HTTP
 * answer); err says why. */
int tc_ctl_ws_connect(const struct tc_ctl_ws_target *t, const char *protocol, uint64_t timeout_ms,
                      const volatile sig_atomic_t *stop, struct tc_ctl_ws **out, int *http_status,
                      struct tc_error *err);

/* Waits at most timeout_ms for the next text message, answering pings on
 * the way. @returns 0 with *msg (NUL-terminated) and *len borrowed until the
 * next call, TC_ETIMEDOUT, TC_EAGAIN (*stop became set), TC_ETOOBIG (over
 * TC_CTL_WS_MAX_MESSAGE; 1009 was sent) or TC_EIO (the connection is gone;
 * tc_ctl_ws_close_code says whether the server closed it, and how). */
int tc_ctl_ws_read(struct tc_ctl_ws *ws, uint64_t timeout_ms, const volatile sig_atomic_t *stop,
                   const char **msg, size_t *len, struct tc_error *err);

/* The code of the server's close frame: 0 when none came, 1005 when it had
 * no code. */
int tc_ctl_ws_close_code(const struct tc_ctl_ws *ws);

/* Sends a close frame with code unless one was sent already (best effort,
 * bounded by a short deadline). */
void tc_ctl_ws_send_close(struct tc_ctl_ws *ws, uint16_t code);

/* Closes the socket and frees. NULL is a no-op. */
void tc_ctl_ws_free(struct tc_ctl_ws *ws);

#endif
