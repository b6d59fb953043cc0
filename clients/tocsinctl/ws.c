/* tocsin — SPDX-License-Identifier: MIT
 *
 * The WebSocket client of `tail` (see ws.h): a non-blocking socket driven by
 * poll() with deadlines, OpenSSL on top for wss://, the HTTP/1.1 upgrade and
 * the frame reader. Server frames must be unmasked and carry no extension
 * bits (none is negotiated); a broken frame closes with 1002.
 */
#define _GNU_SOURCE /* memmem */
#include "ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* Longest upgrade answer (status line and headers); more is not tocsind. */
#define HEADER_MAX 16384
/* Longest wait in one poll(), so a stop request is seen this quickly. */
#define SLICE_MS 200
/* Bytes asked of the socket per read. */
#define READ_CHUNK 65536

enum {
    OP_CONT = 0x0,
    OP_TEXT = 0x1,
    OP_BINARY = 0x2,
    OP_CLOSE = 0x8,
    OP_PING = 0x9,
    OP_PONG = 0xa,
};

struct tc_ctl_ws {
    int fd;
    SSL_CTX *ssl_ctx;
    SSL *ssl;
    char *in; /* bytes read and not parsed yet: [in_off, in_len) */
    size_t in_off, in_len, in_cap;
    char *msg; /* the message being joined from fragments */
    size_t msg_len, msg_cap;
    bool in_message; /* a first fragment came, its final one not yet */
    bool msg_binary; /* the message being joined is binary (dropped) */
    int close_code;  /* the server's close frame's code, 0 when none came */
    bool close_sent;
};

/* ---- socket and TLS I/O with deadlines ---- */

static int
wait_fd(int fd, short events, uint64_t deadline, const volatile sig_atomic_t *stop,
        struct tc_error *err)
{
    for (;;) {
        if (stop != NULL && *stop) {
            return tc_error_set(err, TC_EAGAIN, "stopped");
        }
        uint64_t now = tc_now_ms();
        if (now >= deadline) {
            return tc_error_set(err, TC_ETIMEDOUT, "timed out");
        }
        uint64_t left = deadline - now;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)(left < SLICE_MS ? left : SLICE_MS));
        if (n > 0) {
            return TC_OK; /* readable, writable, or an error the next call reports */
        }
        if (n < 0 && errno != EINTR) {
            return tc_error_set(err, TC_EIO, "poll: %s", strerror(errno));
        }
    }
}

static const char *
tls_error(void)
{
    unsigned long e = ERR_get_error();
    return e != 0 ? ERR_reason_error_string(e) : "connection reset";
}

/* Reads at most n bytes. @returns the count, or a negative TC_E*. */
static int
io_read(struct tc_ctl_ws *ws, void *buf, size_t n, uint64_t deadline,
        const volatile sig_atomic_t *stop, struct tc_error *err)
{
    for (;;) {
        short want = POLLIN;
        if (ws->ssl != NULL) {
            int r = SSL_read(ws->ssl, buf, (int)n);
            if (r > 0) {
                return r;
            }
            int e = SSL_get_error(ws->ssl, r);
            if (e == SSL_ERROR_WANT_WRITE) {
                want = POLLOUT;
            } else if (e == SSL_ERROR_ZERO_RETURN) {
                return tc_error_set(err, TC_EIO, "the server closed the connection");
            } else if (e != SSL_ERROR_WANT_READ) {
                return tc_error_set(err, TC_EIO, "TLS: %s", tls_error());
            }
        } else {
            ssize_t r = recv(ws->fd, buf, n, 0);
            if (r > 0) {
                return (int)r;
            }
            if (r == 0) {
                return tc_error_set(err, TC_EIO, "the server closed the connection");
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                return tc_error_set(err, TC_EIO, "read: %s", strerror(errno));
            }
        }
        int rc = wait_fd(ws->fd, want, deadline, stop, err);
        if (rc != TC_OK) {
            return rc;
        }
    }
}

static int
io_write(struct tc_ctl_ws *ws, const void *buf, size_t n, uint64_t deadline,
         const volatile sig_atomic_t *stop, struct tc_error *err)
{
    const char *p = buf;
    while (n > 0) {
        short want = POLLOUT;
        if (ws->ssl != NULL) {
            int r = SSL_write(ws->ssl, p, (int)n);
            if (r > 0) {
                p += r;
                n -= (size_t)r;
                continue;
            }
            int e = SSL_get_error(ws->ssl, r);
            if (e == SSL_ERROR_WANT_READ) {
                want = POLLIN;
            } else if (e != SSL_ERROR_WANT_WRITE) {
                return tc_error_set(err, TC_EIO, "TLS: %s", tls_error());
            }
        } else {
            ssize_t r = send(ws->fd, p, n, MSG_NOSIGNAL);
            if (r > 0) {
                p += r;
                n -= (size_t)r;
                continue;
            }
            if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                return tc_error_set(err, TC_EIO, "write: %s", strerror(errno));
            }
        }
        int rc = wait_fd(ws->fd, want, deadline, stop, err);
        if (rc != TC_OK) {
            return rc;
        }
    }
    return TC_OK;
}

/* Reads more into ws->in, keeping room for at least `need` unparsed bytes. */
static int
fill(struct tc_ctl_ws *ws, size_t need, uint64_t deadline, const volatile sig_atomic_t *stop,
     struct tc_error *err)
{
    if (ws->in_off > 0) {
        memmove(ws->in, ws->in + ws->in_off, ws->in_len - ws->in_off);
        ws->in_len -= ws->in_off;
        ws->in_off = 0;
    }
    size_t want = need > READ_CHUNK ? need : READ_CHUNK;
    if (ws->in_cap < ws->in_len + want) {
        ws->in_cap = ws->in_len + want;
        ws->in = tc_xrealloc(ws->in, ws->in_cap + 1);
    }
    int n = io_read(ws, ws->in + ws->in_len, ws->in_cap - ws->in_len, deadline, stop, err);
    if (n < 0) {
        return n;
    }
    ws->in_len += (size_t)n;
    return TC_OK;
}

/* ---- connect, TLS, upgrade ---- */

static int
tcp_connect(struct tc_ctl_ws *ws, const struct tc_ctl_ws_target *t, uint64_t deadline,
            const volatile sig_atomic_t *stop, struct tc_error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(t->host, t->port, &hints, &res);
    if (gai != 0) {
        return tc_error_set(err, TC_EIO, "%s: %s", t->host, gai_strerror(gai));
    }
    int rc = tc_error_set(err, TC_EIO, "%s: no address", t->host);
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            rc = tc_error_set(err, TC_EIO, "socket: %s", strerror(errno));
            continue;
        }
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            soerr = 0;
        } else if (errno != EINPROGRESS) {
            soerr = errno;
        } else if ((rc = wait_fd(fd, POLLOUT, deadline, stop, err)) != TC_OK) {
            close(fd);
            if (rc == TC_EAGAIN || rc == TC_ETIMEDOUT) {
                break; /* the whole budget is spent, or we were told to stop */
            }
            continue;
        } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
            soerr = errno;
        }
        if (soerr == 0) {
            ws->fd = fd;
            rc = TC_OK;
            break;
        }
        rc = tc_error_set(err, TC_EIO, "connect to %s port %s: %s", t->host, t->port,
                          strerror(soerr));
        close(fd);
    }
    freeaddrinfo(res);
    return rc;
}

static int
tls_start(struct tc_ctl_ws *ws, const char *host, uint64_t deadline,
          const volatile sig_atomic_t *stop, struct tc_error *err)
{
    unsigned char ip[16];
    ws->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (ws->ssl_ctx == NULL) {
        return tc_error_set(err, TC_EIO, "TLS: %s", tls_error());
    }
    SSL_CTX_set_min_proto_version(ws->ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_default_verify_paths(ws->ssl_ctx);
    SSL_CTX_set_verify(ws->ssl_ctx, SSL_VERIFY_PEER, NULL);
    ws->ssl = SSL_new(ws->ssl_ctx);
    if (ws->ssl == NULL || SSL_set_fd(ws->ssl, ws->fd) != 1) {
        return tc_error_set(err, TC_EIO, "TLS: %s", tls_error());
    }
    /* The certificate must name the host we asked for (or its address). */
    bool literal = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    if (literal) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ws->ssl), host);
    } else {
        SSL_set_tlsext_host_name(ws->ssl, (char *)(uintptr_t)host);
        SSL_set1_host(ws->ssl, host);
    }
    for (;;) {
        int r = SSL_connect(ws->ssl);
        if (r == 1) {
            return TC_OK;
        }
        int e = SSL_get_error(ws->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            long v = SSL_get_verify_result(ws->ssl);
            if (v != X509_V_OK) {
                return tc_error_set(err, TC_EIO, "TLS: certificate of %s: %s", host,
                                    X509_verify_cert_error_string(v));
            }
            return tc_error_set(err, TC_EIO, "TLS handshake with %s: %s", host, tls_error());
        }
        int rc = wait_fd(ws->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, stop, err);
        if (rc != TC_OK) {
            return rc;
        }
    }
}

/* Copies the value of header name (case-insensitive) from head into out.
 * @returns true when found. */
static bool
header(const char *head, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line != NULL; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            v += strspn(v, " \t");
            size_t len = strcspn(v, "\r");
            while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t')) {
                len--;
            }
            snprintf(out, outlen, "%.*s", (int)len, v);
            return true;
        }
    }
    return false;
}

/* True when the comma-separated header value holds token (case-insensitive). */
static bool
has_token(const char *value, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = value; *p != '\0';) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, " \t,");
        if (len == n && strncasecmp(p, token, n) == 0) {
            return true;
        }
        p += len;
    }
    return false;
}

static int
upgrade(struct tc_ctl_ws *ws, const struct tc_ctl_ws_target *t, const char *protocol,
        uint64_t deadline, const volatile sig_atomic_t *stop, int *http_status,
        struct tc_error *err)
{
    unsigned char nonce[16], digest[SHA_DIGEST_LENGTH];
    char key[32], expect[32], got[128];
    if (tc_random_bytes(nonce, sizeof(nonce)) != TC_OK) {
        return tc_error_set(err, TC_EIO, "no random bytes for Sec-WebSocket-Key");
    }
    EVP_EncodeBlock((unsigned char *)key, nonce, sizeof(nonce));
    bool v6 = strchr(t->host, ':') != NULL;
    char *req =
        tc_xasprintf("GET %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n"
                     "User-Agent: tocsinctl/" TOCSIN_VERSION "\r\n\r\n",
                     t->path, v6 ? "[" : "", t->host, v6 ? "]" : "", t->port, key, protocol);
    int rc = io_write(ws, req, strlen(req), deadline, stop, err);
    free(req);
    if (rc != TC_OK) {
        return rc;
    }
    const char *end = NULL;
    while ((end = ws->in_len >= 4 ? memmem(ws->in, ws->in_len, "\r\n\r\n", 4) : NULL) == NULL) {
        if (ws->in_len > HEADER_MAX) {
            return tc_error_set(err, TC_EINVAL, "the upgrade answer is over %d bytes", HEADER_MAX);
        }
        if ((rc = fill(ws, 0, deadline, stop, err)) != TC_OK) {
            return rc;
        }
    }
    size_t head_len = (size_t)(end - ws->in) + 4;
    char *head = tc_xstrndup(ws->in, head_len);
    ws->in_off = head_len; /* what follows is frames already */
    int status = 0;
    rc = TC_EINVAL;
    if (sscanf(head, "HTTP/1.%*d %d", &status) != 1) {
        tc_error_set(err, TC_EINVAL, "not an HTTP answer");
    } else if (status != 101) {
        tc_error_set(err, TC_EINVAL, "the server refused the WebSocket upgrade: %.*s",
                     (int)strcspn(head, "\r"), head);
    } else if (!header(head, "Upgrade", got, sizeof(got)) || strcasecmp(got, "websocket") != 0 ||
               !header(head, "Connection", got, sizeof(got)) || !has_token(got, "upgrade")) {
        tc_error_set(err, TC_EINVAL, "101 without Upgrade: websocket");
    } else {
        char both[sizeof(key) + sizeof(WS_GUID)];
        snprintf(both, sizeof(both), "%s" WS_GUID, key);
        SHA1((const unsigned char *)both, strlen(both), digest);
        EVP_EncodeBlock((unsigned char *)expect, digest, SHA_DIGEST_LENGTH);
        if (!header(head, "Sec-WebSocket-Accept", got, sizeof(got)) || strcmp(got, expect) != 0) {
            tc_error_set(err, TC_EINVAL, "wrong Sec-WebSocket-Accept");
        } else if (!header(head, "Sec-WebSocket-Protocol", got, sizeof(got)) ||
                   strcmp(got, protocol) != 0) {
            tc_error_set(err, TC_EINVAL, "the server did not accept subprotocol %s", protocol);
        } else {
            rc = TC_OK;
        }
    }
    *http_status = status;
    free(head);
    return rc;
}

int
tc_ctl_ws_connect(const struct tc_ctl_ws_target *t, const char *protocol, uint64_t timeout_ms,
                  const volatile sig_atomic_t *stop, struct tc_ctl_ws **out, int *http_status,
                  struct tc_error *err)
{
    uint64_t deadline = tc_now_ms() + timeout_ms;
    struct tc_ctl_ws *ws = tc_xcalloc(1, sizeof(*ws));
    ws->fd = -1;
    *out = NULL;
    *http_status = 0;
    int rc = tcp_connect(ws, t, deadline, stop, err);
    if (rc == TC_OK && t->tls) {
        rc = tls_start(ws, t->host, deadline, stop, err);
    }
    if (rc == TC_OK) {
        rc = upgrade(ws, t, protocol, deadline, stop, http_status, err);
    }
    if (rc != TC_OK) {
        ws->close_sent = true; /* nothing to close politely */
        tc_ctl_ws_free(ws);
        return rc;
    }
    *out = ws;
    return TC_OK;
}

/* ---- frames ---- */

/* Sends one masked frame (clients always mask, RFC 6455 §5.3). */
static int
send_frame(struct tc_ctl_ws *ws, int op, const void *payload, size_t len, uint64_t deadline,
           struct tc_error *err)
{
    unsigned char hdr[14], mask[4];
    size_t h = 0;
    if (tc_random_bytes(mask, sizeof(mask)) != TC_OK) {
        return tc_error_set(err, TC_EIO, "no random bytes for the frame mask");
    }
    hdr[h++] = (unsigned char)(0x80 | op);
    if (len < 126) {
        hdr[h++] = (unsigned char)(0x80 | len);
    } else if (len <= 0xffff) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (unsigned char)(len >> 8);
        hdr[h++] = (unsigned char)len;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) {
            hdr[h++] = (unsigned char)((uint64_t)len >> (8 * i));
        }
    }
    memcpy(hdr + h, mask, 4);
    h += 4;
    unsigned char *buf = tc_xmalloc(h + len);
    memcpy(buf, hdr, h);
    for (size_t i = 0; i < len; i++) {
        buf[h + i] = ((const unsigned char *)payload)[i] ^ mask[i & 3];
    }
    int rc = io_write(ws, buf, h + len, deadline, NULL, err);
    free(buf);
    return rc;
}

void
tc_ctl_ws_send_close(struct tc_ctl_ws *ws, uint16_t code)
{
    if (ws == NULL || ws->close_sent) {
        return;
    }
    unsigned char p[2] = {(unsigned char)(code >> 8), (unsigned char)code};
    ws->close_sent = true;
    send_frame(ws, OP_CLOSE, p, sizeof(p), tc_now_ms() + 1000, NULL);
}

/* Fails the connection with close code (1002, 1009) and returns rc. */
static int
fail(struct tc_ctl_ws *ws, uint16_t code, int rc, struct tc_error *err, const char *why)
{
    tc_ctl_ws_send_close(ws, code);
    return tc_error_set(err, rc, "%s", why);
}

static void
msg_append(struct tc_ctl_ws *ws, const char *p, size_t n)
{
    if (ws->msg_cap < ws->msg_len + n + 1) {
        ws->msg_cap = (ws->msg_len + n + 1) * 2;
        ws->msg = tc_xrealloc(ws->msg, ws->msg_cap);
    }
    memcpy(ws->msg + ws->msg_len, p, n);
    ws->msg_len += n;
    ws->msg[ws->msg_len] = '\0';
}

/* Acts on one complete frame. @returns 1 when a text message is complete,
 * 0 to read on, or a negative TC_E*. */
static int
on_frame(struct tc_ctl_ws *ws, int op, bool fin, const char *p, size_t n, uint64_t deadline,
         struct tc_error *err)
{
    switch (op) {
    case OP_TEXT:
    case OP_BINARY:
    case OP_CONT:
        if ((op == OP_CONT) != ws->in_message) {
            return fail(ws, 1002, TC_EIO, err, "the server broke the fragment order");
        }
        if (op != OP_CONT) {
            ws->msg_binary = op == OP_BINARY;
            ws->msg_len = 0;
        }
        if (n > TC_CTL_WS_MAX_MESSAGE - ws->msg_len) {
            return fail(ws, 1009, TC_ETOOBIG, err, "a message over 16 MiB");
        }
        msg_append(ws, p, n);
        ws->in_message = !fin;
        /* tocsin speaks text only; a binary message is read and dropped. */
        return fin && !ws->msg_binary ? 1 : 0;
    case OP_PING:
        return send_frame(ws, OP_PONG, p, n, deadline, err);
    case OP_PONG:
        return 0;
    case OP_CLOSE: {
        ws->close_code = n >= 2 ? ((unsigned char)p[0] << 8) | (unsigned char)p[1] : 1005;
        tc_ctl_ws_send_close(ws, n >= 2 ? (uint16_t)ws->close_code : 1000);
        /* The reason is the server's text: control characters become '?'
         * before it can reach a terminal. */
        char reason[124];
        size_t rn = n > 2 ? (n - 2 < sizeof(reason) - 1 ? n - 2 : sizeof(reason) - 1) : 0;
        for (size_t i = 0; i < rn; i++) {
            unsigned char c = (unsigned char)p[2 + i];
            reason[i] = (char)(c < 0x20 || c == 0x7f ? '?' : c);
        }
        reason[rn] = '\0';
        return tc_error_set(err, TC_EIO, "the server closed the connection (%d%s%s)",
                            ws->close_code, rn > 0 ? ": " : "", reason);
    }
    default:
        return fail(ws, 1002, TC_EIO, err, "the server sent an unknown opcode");
    }
}

int
tc_ctl_ws_read(struct tc_ctl_ws *ws, uint64_t timeout_ms, const volatile sig_atomic_t *stop,
               const char **msg, size_t *len, struct tc_error *err)
{
    uint64_t deadline = tc_now_ms() + timeout_ms;
    if (ws->close_code != 0 || ws->close_sent) {
        return tc_error_set(err, TC_EIO, "the connection is closed");
    }
    for (;;) {
        const unsigned char *b = (const unsigned char *)ws->in + ws->in_off;
        size_t have = ws->in_len - ws->in_off, need = 2;
        uint64_t plen = 0;
        if (have >= 2) {
            plen = b[1] & 0x7f;
            need = plen == 126 ? 4 : plen == 127 ? 10 : 2;
        }
        if (have >= need && need > 2) {
            plen = 0;
            for (size_t i = 2; i < need; i++) {
                plen = (plen << 8) | b[i];
            }
        }
        if (have >= need) {
            int op = b[0] & 0x0f;
            bool fin = (b[0] & 0x80) != 0;
            if ((b[0] & 0x70) != 0 || (b[1] & 0x80) != 0) {
                return fail(ws, 1002, TC_EIO, err, "the server sent a masked or extended frame");
            }
            if ((op & 0x8) != 0 && (!fin || plen > 125)) {
                return fail(ws, 1002, TC_EIO, err, "the server sent a bad control frame");
            }
            if (plen > TC_CTL_WS_MAX_MESSAGE) {
                return fail(ws, 1009, TC_ETOOBIG, err, "a message over 16 MiB");
            }
            if (have >= need + plen) {
                const char *payload = ws->in + ws->in_off + need;
                ws->in_off += need + (size_t)plen;
                int rc = on_frame(ws, op, fin, payload, (size_t)plen, deadline, err);
                if (rc < 0) {
                    return rc;
                }
                if (rc == 1) {
                    *msg = ws->msg;
                    *len = ws->msg_len;
                    return TC_OK;
                }
                continue;
            }
            need += (size_t)plen;
        }
        int rc = fill(ws, need, deadline, stop, err);
        if (rc != TC_OK) {
            return rc;
        }
    }
}

int
tc_ctl_ws_close_code(const struct tc_ctl_ws *ws)
{
    return ws->close_code;
}

void
tc_ctl_ws_free(struct tc_ctl_ws *ws)
{
    if (ws == NULL) {
        return;
    }
    if (ws->ssl != NULL) {
        SSL_shutdown(ws->ssl); /* one try: a non-blocking socket does not wait */
        SSL_free(ws->ssl);
    }
    SSL_CTX_free(ws->ssl_ctx);
    if (ws->fd >= 0) {
        close(ws->fd);
    }
    free(ws->in);
    free(ws->msg);
    free(ws);
}
