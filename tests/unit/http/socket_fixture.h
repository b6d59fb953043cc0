/* tocsin — SPDX-License-Identifier: MIT
 *
 * Shared fixture of the http tests that need real sockets: a connected
 * loopback TCP pair. Include after <cmocka.h>; functions are static inline
 * and prefixed sock_.
 */
#ifndef TC_TEST_SOCKET_FIXTURE_H
#define TC_TEST_SOCKET_FIXTURE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* *server is the accepted end, *client the connecting one, on 127.0.0.1. */
static inline void
sock_tcp_pair(int *server, int *client)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t len = sizeof(sin);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(lfd, 1), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
    *client = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(*client, (struct sockaddr *)&sin, sizeof(sin)), 0);
    *server = accept(lfd, NULL, NULL);
    assert_true(*server >= 0);
    close(lfd);
}

#endif
