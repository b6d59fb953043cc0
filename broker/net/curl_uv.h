/* tocsin — SPDX-License-Identifier: MIT
 *
 * libcurl's multi interface driven by a libuv loop (curl's socket API: a
 * uv_poll per socket curl names, one uv timer for curl's timeouts). Both
 * outbound gateways use it: webhooks (HTTP) and email (SMTP). Connections
 * are kept in the multi handle's pool and reused across transfers.
 * @loop the loop given to tc_curl_uv_new; nothing here is thread-safe.
 */
#ifndef TC_NET_CURL_UV_H
#define TC_NET_CURL_UV_H

#include <curl/curl.h>
#include <uv.h>

struct tc_curl_uv;

/* A transfer ended (done, failed or timed out): cc is its result. The easy
 * handle has been removed from the multi handle; the callee owns it again. */
typedef void (*tc_curl_uv_done_fn)(void *arg, CURL *easy, CURLcode cc);

/* max_host_conns bounds parallel connections to one host (0 = no bound);
 * max_conns bounds the pool, connections in use and idle ones kept for
 * reuse (curl's default follows the number of transfers in flight, which
 * closes most connections between bursts): at the bound curl closes the
 * oldest idle one, or, with none idle, queues the transfer. It is the fd
 * count the pool may hold (tc_config_fd_budget). */
struct tc_curl_uv *tc_curl_uv_new(uv_loop_t *loop, long max_host_conns, long max_conns);

/* Starts a transfer; done runs once when it ends, never before this returns.
 * CURLOPT_PRIVATE of easy belongs to this module. */
void tc_curl_uv_add(struct tc_curl_uv *m, CURL *easy, tc_curl_uv_done_fn done, void *arg);

/* Abandons a transfer in flight: done does not run; the caller owns easy. */
void tc_curl_uv_remove(struct tc_curl_uv *m, CURL *easy);

/* Frees everything once curl's sockets and the timer are closed; every
 * transfer must have ended or been removed. close_cb may be NULL. */
void tc_curl_uv_close(struct tc_curl_uv *m, void (*close_cb)(void *arg), void *arg);

#endif
