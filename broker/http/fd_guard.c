/* tocsin — SPDX-License-Identifier: MIT
 *
 * The last guard at the fd limit. When accept fails with EMFILE, lws 4.1.6
 * only logs "accept: errno 24": the listener stays readable and the loop
 * spins on it (90 % CPU was measured). http.max_connections and the fd
 * reserve keep the limit out of reach; should something else fill it, a
 * spare descriptor (libuv's trick for its own listeners) is given up to
 * accept and close what waits, so the backlog drains and the loop rests.
 * It accepts nothing at any other time. One server per process: lws's log
 * callback, which tells of the failure, has no context. @loop main.
 */
#define _GNU_SOURCE /* accept4 */
#include "http/http_internal.h"
#include "log/log.h"
#include "metrics/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Connections closed per failed accept at most: a flood faster than this
 * drains on the next turns, and the loop is never held here long. */
#define DRAIN_MAX 1024

struct tc_http__fd_guard {
    int listen_fd; /* lws's listener; -1: not found, no guard */
    int spare_fd;  /* /dev/null, held for the moment it is needed */
    uint64_t warned_ms, unlogged;
};

static struct tc_http__fd_guard *current;

static int
port_of(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        return -1;
    }
    if (ss.ss_family == AF_INET) {
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return -1;
}

/* lws 4.1.6 has no call that names a vhost's listening socket: it is the
 * one of ours that listens on the port (the embedded Kafka's listen on
 * others). Non-blocking, as lws made it, or the drain could block. */
static int
find_listener(int port)
{
    DIR *d = opendir("/proc/self/fd");
    int found = -1;
    if (d == NULL) {
        return -1;
    }
    for (struct dirent *e; found < 0 && (e = readdir(d)) != NULL;) {
        int fd = atoi(e->d_name), acc = 0;
        socklen_t len = sizeof(acc);
        if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd == dirfd(d) ||
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) != 0 || !acc ||
            port_of(fd) != port || !(fcntl(fd, F_GETFL) & O_NONBLOCK)) {
            continue;
        }
        found = fd;
    }
    closedir(d);
    return found;
}

struct tc_http__fd_guard *
tc_http__fd_guard_new(int port)
{
    struct tc_http__fd_guard *g = tc_xcalloc(1, sizeof(*g));
    g->listen_fd = find_listener(port);
    g->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (g->listen_fd < 0) {
        tc_warn("http", "listening socket not found: no guard at the fd limit", TC_I("port", port));
    }
    current = g;
    return g;
}

void
tc_http__fd_guard_free(struct tc_http__fd_guard *g)
{
    if (g == NULL) {
        return;
    }
    if (g->spare_fd >= 0) {
        close(g->spare_fd);
    }
    if (current == g) {
        current = NULL;
    }
    free(g);
}

static void
drain(struct tc_http__fd_guard *g)
{
    if (g->listen_fd < 0 || g->spare_fd < 0) {
        return;
    }
    close(g->spare_fd);
    uint64_t n = 0;
    for (int fd; n < DRAIN_MAX && (fd = accept4(g->listen_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0;) {
        close(fd);
        n++;
    }
    g->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    tc_metrics_add(TC_M_HTTP_REFUSED_FD_LIMIT, n);
    g->unlogged += n;
    uint64_t now = tc_now_ms();
    if (g->unlogged > 0 && (g->warned_ms == 0 || now - g->warned_ms >= 1000)) {
        tc_warn("http",
                "at the fd limit: waiting connections closed (the fd limit is too low for "
                "http.max_connections, or something else holds descriptors)",
                TC_U("refused", g->unlogged), TC_B("spare_fd", g->spare_fd >= 0));
        g->unlogged = 0;
        g->warned_ms = now;
    }
}

void
tc_http__fd_guard_lws_line(const char *line)
{
    /* ops-listen.c: lwsl_err("accept: errno %d\n", LWS_ERRNO). ENFILE is
     * the system's table, no better for the listener. */
    if (current != NULL &&
        (strcmp(line, "accept: errno 24") == 0 || strcmp(line, "accept: errno 23") == 0)) {
        drain(current);
    }
}
