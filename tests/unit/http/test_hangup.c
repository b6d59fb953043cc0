/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of broker/http/hangup.c on a real loop and real TCP sockets,
 * without lws: a close, a half-close and bytes are each told once, with
 * the right kind (bytes only when asked for); an unwatched socket tells
 * nothing; several sockets are told apart; a socket that cannot be watched
 * is refused.
 */
#include "http/http_internal.h"
#include "util/util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "socket_fixture.h"

struct seen {
    int calls;
    bool hung_up;
};

static void
on_hangup(void *arg, bool hung_up)
{
    struct seen *s = arg;
    s->calls++;
    s->hung_up = hung_up;
}

/* Turns the loop until *calls reaches want, for ms at most, then a few
 * turns more so that a second report would be seen. Waits for a call that
 * should not come are short: on a slow machine they only prove less. */
#define WAIT_CALL_MS    5000
#define WAIT_NO_CALL_MS 300

static void
run_until(uv_loop_t *loop, const int *calls, int want, int ms)
{
    for (int i = 0; i < ms / 10 && *calls < want; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(10 * 1000);
    }
    for (int i = 0; i < 5; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(2 * 1000);
    }
}

struct fixture {
    uv_loop_t loop;
    struct tc_http__hangup *h;
};

static int
setup(void **state)
{
    struct fixture *f = tc_xcalloc(1, sizeof(*f));
    struct tc_error err;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->h = tc_http__hangup_new(&f->loop, on_hangup, &err);
    assert_non_null(f->h);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    tc_http__hangup_free(f->h);
    uv_run(&f->loop, UV_RUN_DEFAULT); /* the close callback frees it */
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

/* A close, a half-close (shutdown of the client's sending side: it reads
 * on, but for us its client is gone) and bytes, each told once; bytes only
 * when asked for (a request waiting for its answer: they are the next
 * request, lws's to read). */
static void
test_each_end_told_once(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *rule;
        bool bytes_too;
        int how; /* 0 close, 1 shutdown(SHUT_WR), 2 send bytes */
        int calls;
        bool hung_up;
    } cases[] = {
        {"stream: close", true, 0, 1, true},
        {"stream: half-close", true, 1, 1, true},
        {"stream: bytes after the request", true, 2, 1, false},
        {"waiting: close", false, 0, 1, true},
        {"waiting: half-close", false, 1, 1, true},
        {"waiting: a pipelined request is not ours", false, 2, 0, false},
    };
    for (size_t i = 0; i < TC_ARRAY_SIZE(cases); i++) {
        struct seen s = {0};
        int server, client;
        sock_tcp_pair(&server, &client);
        assert_int_equal(tc_http__hangup_watch(f->h, server, cases[i].bytes_too, &s), TC_OK);
        run_until(&f->loop, &s.calls, 1, WAIT_NO_CALL_MS);
        assert_int_equal(s.calls, 0); /* nothing happened yet */
        if (cases[i].how == 0) {
            close(client);
            client = -1;
        } else if (cases[i].how == 1) {
            assert_int_equal(shutdown(client, SHUT_WR), 0);
        } else {
            assert_int_equal(send(client, "GET /", 5, 0), 5);
        }
        run_until(&f->loop, &s.calls, 1, cases[i].calls ? WAIT_CALL_MS : WAIT_NO_CALL_MS);
        if (s.calls != cases[i].calls || s.hung_up != cases[i].hung_up) {
            fail_msg("%s: %d calls, hung_up %d", cases[i].rule, s.calls, s.hung_up);
        }
        tc_http__hangup_unwatch(f->h, server);
        close(server);
        if (client >= 0) {
            close(client);
        }
    }
}

static void
test_unwatched_socket_tells_nothing(void **state)
{
    struct fixture *f = *state;
    struct seen s = {0};
    int server, client;
    sock_tcp_pair(&server, &client);
    assert_int_equal(tc_http__hangup_watch(f->h, server, true, &s), TC_OK);
    tc_http__hangup_unwatch(f->h, server);
    close(client);
    run_until(&f->loop, &s.calls, 1, WAIT_NO_CALL_MS);
    assert_int_equal(s.calls, 0);
    close(server);
}

/* Of three watched streams only the one whose client left is told. */
static void
test_sockets_told_apart(void **state)
{
    struct fixture *f = *state;
    struct seen s[3] = {{0}};
    int server[3], client[3];
    for (int i = 0; i < 3; i++) {
        sock_tcp_pair(&server[i], &client[i]);
        assert_int_equal(tc_http__hangup_watch(f->h, server[i], true, &s[i]), TC_OK);
    }
    close(client[1]);
    run_until(&f->loop, &s[1].calls, 1, WAIT_CALL_MS);
    assert_int_equal(s[0].calls, 0);
    assert_int_equal(s[1].calls, 1);
    assert_true(s[1].hung_up);
    assert_int_equal(s[2].calls, 0);
    for (int i = 0; i < 3; i++) {
        tc_http__hangup_unwatch(f->h, server[i]);
        close(server[i]);
        if (i != 1) {
            close(client[i]);
        }
    }
}

static void
test_bad_socket_refused(void **state)
{
    struct fixture *f = *state;
    struct seen s = {0};
    assert_int_equal(tc_http__hangup_watch(f->h, -1, true, &s), TC_ESTATE);
    int fd = dup(STDERR_FILENO);
    close(fd);
    assert_int_equal(tc_http__hangup_watch(f->h, fd, true, &s), TC_EIO); /* closed */
    assert_int_equal(tc_http__hangup_watch(NULL, 0, true, &s), TC_ESTATE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_each_end_told_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwatched_socket_tells_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sockets_told_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_socket_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
