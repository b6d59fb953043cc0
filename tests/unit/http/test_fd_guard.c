/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of broker/http/fd_guard.c on real loopback sockets: it finds
 * the non-blocking listener on its port (not another listener, not a
 * blocking one), and only lws's "accept: errno 24/23" line makes it accept
 * and close what waits, counted under reason="fd_limit". Then at a real
 * EMFILE: with the process's soft limit full, the spare descriptor still
 * drains the backlog.
 */
#include "http/http_internal.h"
#include "metrics/metrics.h"
#include "util/util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

/* A listener on 127.0.0.1 (port 0: any); *port is the one bound. */
static int
listener(bool nonblocking, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t len = sizeof(sin);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(fd, 64), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    if (nonblocking) {
        assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    }
    *port = ntohs(sin.sin_port);
    return fd;
}

static int
client(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(0x7f000001),
                              .sin_port = htons((uint16_t)port)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

/* True when the server closed c (a read sees the end, or a reset). */
static bool
closed_by_server(int c)
{
    struct timeval tv = {.tv_sec = 5};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char b;
    ssize_t n = recv(c, &b, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

static bool
still_open(int c)
{
    char b;
    return recv(c, &b, 1, MSG_DONTWAIT | MSG_PEEK) < 0 && errno == EAGAIN;
}

static void
test_only_the_emfile_line_drains(void **state)
{
    (void)state;
    int port, other_port, blocking_port;
    int other = listener(true, &other_port);
    int blocking = listener(false, &blocking_port);
    int lfd = listener(true, &port);
    struct tc_http__fd_guard *g = tc_http__fd_guard_new(port);
    int c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = client(port);
    }
    int bystander = client(other_port);
    uint64_t before = tc_metrics_get(TC_M_HTTP_REFUSED_FD_LIMIT);

    static const char *const ignored[] = {"accept: errno 11", "accept: errno 24 ", "something else",
                                          ""};
    for (size_t i = 0; i < TC_ARRAY_SIZE(ignored); i++) {
        tc_http__fd_guard_lws_line(ignored[i]);
    }
    for (int i = 0; i < 3; i++) {
        assert_true(still_open(c[i]));
    }
    assert_int_equal(tc_metrics_get(TC_M_HTTP_REFUSED_FD_LIMIT), before);

    tc_http__fd_guard_lws_line("accept: errno 24");
    for (int i = 0; i < 3; i++) {
        assert_true(closed_by_server(c[i]));
        close(c[i]);
    }
    assert_int_equal(tc_metrics_get(TC_M_HTTP_REFUSED_FD_LIMIT), before + 3);
    assert_true(still_open(bystander)); /* another port's listener: not touched */
    /* Nothing waits: the drain returns at once (the listener does not block). */
    tc_http__fd_guard_lws_line("accept: errno 23");
    assert_int_equal(tc_metrics_get(TC_M_HTTP_REFUSED_FD_LIMIT), before + 3);
    tc_http__fd_guard_free(g);

    /* A blocking listener is not taken: the drain would hang on it. */
    g = tc_http__fd_guard_new(blocking_port);
    int b = client(blocking_port);
    tc_http__fd_guard_lws_line("accept: errno 24");
    assert_true(still_open(b));
    tc_http__fd_guard_free(g);
    tc_http__fd_guard_lws_line("accept: errno 24"); /* freed: no guard, no crash */
    tc_http__fd_guard_free(NULL);
    close(b);
    close(bystander);
    close(lfd);
    close(other);
    close(blocking);
}

/* The real thing: every descriptor under the soft limit taken, accept
 * fails with EMFILE; the spare one lets the guard drain anyway, and it is
 * taken back after. */
static void
test_drains_at_a_real_emfile(void **state)
{
    (void)state;
    /* valgrind keeps its own descriptors at the top of the table and
     * emulates the limit around them (it reports the ones past the soft
     * limit as invalid), so a real EMFILE cannot be staged under it; the
     * plain and sanitizer runs hold this case. */
    const char *preload = getenv("LD_PRELOAD");
    if (preload != NULL && strstr(preload, "vgpreload") != NULL) {
        skip();
    }
    int port;
    int lfd = listener(true, &port);
    struct tc_http__fd_guard *g = tc_http__fd_guard_new(port);
    int c[4];
    for (int i = 0; i < 4; i++) {
        c[i] = client(port);
    }
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int fill[1024], nfill = 0;
    int top = 0;
    for (int i = 0; i < 4; i++) {
        top = c[i] > top ? c[i] : top;
    }
    struct rlimit low = {.rlim_cur = (rlim_t)top + 64, .rlim_max = old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    for (int fd; nfill < (int)TC_ARRAY_SIZE(fill) && (fd = open("/dev/null", O_RDONLY)) >= 0;) {
        fill[nfill++] = fd;
    }
    assert_int_equal(errno, EMFILE);
    assert_true(accept(lfd, NULL, NULL) < 0 && errno == EMFILE);

    uint64_t before = tc_metrics_get(TC_M_HTTP_REFUSED_FD_LIMIT);
    tc_http__fd_guard_lws_line("accept: errno 24");
    assert_int_equal(tc_metrics_get(TC_M_HTTP_REFUSED_FD_LIMIT), before + 4);
    /* The spare is held again: the table is as full as before. */
    assert_true(open("/dev/null", O_RDONLY) < 0 && errno == EMFILE);

    for (int i = 0; i < nfill; i++) {
        close(fill[i]);
    }
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    for (int i = 0; i < 4; i++) {
        assert_true(closed_by_server(c[i]));
        close(c[i]);
    }
    tc_http__fd_guard_free(g);
    close(lfd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_only_the_emfile_line_drains),
        cmocka_unit_test(test_drains_at_a_real_emfile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
