/* tocsin — SPDX-License-Identifier: MIT
 *
 * tocsind: command line, configuration, the main libuv loop and the wiring
 * of ingest → store → hub → ws/http, the gateways (webhooks, email), the
 * publishing API, signals, and the shutdown order: stop accepting and close
 * sessions (1001), let ingest finish and commit, destroy the server, close
 * the gateways and the event producer, close Redis, exit 0.
 */
#include "config/config.h"
#include "email/api.h"
#include "email/mailer.h"
#include "http/server.h"
#include "hub/hub.h"
#include "ingest/ingest.h"
#include "ingest/producer.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "publish/api.h"
#include "store/store.h"
#include "webhook/admin.h"
#include "webhook/deliver.h"
#include "ws/ws.h"

#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

extern char **environ;

struct app {
    uv_loop_t *loop;
    struct tc_config cfg;
    struct tc_kafka_embedded *kafka;
    struct tc_store *store;
    struct tc_hub *hub;
    struct tc_ws *ws;
    struct tc_server *server;
    struct tc_ingest *ingest;
    struct tc_webhook *webhook;
    struct tc_producer *producer;
    struct tc_mailer *mailer;
    struct tc_email_api *email_api;
    struct tc_publish_api *publish;
    uint64_t max_connections; /* the fd budget's cap on client connections */
    int gateways_open;        /* outbound parts still closing before the store closes */
    uv_signal_t sigterm, sigint;
    uv_timer_t deadline, grace, retry;
    bool stopping;
    int exit_code;
};

static struct app app;

static void
usage(FILE *out)
{
    fprintf(out, "Usage: tocsind [-c FILE] [options]\n"
                 "\n"
                 "tocsin's broker: consumes incident events from Kafka, orders and deduplicates\n"
                 "them in Redis, and pushes updates to WebSocket and SSE subscribers, webhook\n"
                 "endpoints and email subscribers. Ops publish through its admin API.\n"
                 "\n"
                 "Options:\n"
                 "  -c, --config FILE   JSON configuration file (schemas/config.schema.json)\n"
                 "      --check-config  validate the configuration, print it, and exit\n"
                 "      --help-config   list every configuration key and its TOCSIN_* variable\n"
                 "  -V, --version       print the version and exit\n"
                 "  -h, --help          print this help and exit\n"
                 "\n"
                 "Every key may be overridden by its environment variable, e.g.\n"
                 "TOCSIN_HTTP_LISTEN=127.0.0.1:8080 TOCSIN_REDIS_URL=redis://127.0.0.1:6379/0.\n"
                 "With kafka.brokers empty, an embedded single-node Kafka is started and its\n"
                 "address is logged. SIGTERM or SIGINT shuts down gracefully.\n"
                 "Exit status: 0 after a clean shutdown, 1 on a runtime failure, 2 on a usage or\n"
                 "configuration error.\n");
}

/* ---- ingest → store ---- */

/* A failed apply pauses ingest. When the store lost Redis, its ready
 * callback resumes ingest; when it is still ready (its in-flight bound was
 * hit), nothing else would, so this timer does. */
static void
on_retry(uv_timer_t *t)
{
    TC_UNUSED(t);
    if (app.ingest != NULL && !app.stopping && tc_store_ready(app.store)) {
        tc_ingest_set_paused(app.ingest, false);
    }
}

static void
on_applied(void *token, int status, const struct tc_store_result *res)
{
    if (status == TC_OK) {
        static const char *const names[] = {"accepted", "duplicate", "stale"};
        static const enum tc_counter counters[] = {TC_M_EVENTS_ACCEPTED, TC_M_EVENTS_DUPLICATE,
                                                   TC_M_EVENTS_STALE};
        tc_metrics_inc(counters[res->outcome]);
        tc_info("store", "event stored", TC_S("result", names[res->outcome]),
                TC_U("seq", res->outcome == TC_STORE_ACCEPTED ? res->seq : 0));
    }
    tc_ingest_done(app.ingest, token, status);
    if (status != TC_OK && !app.stopping) {
        uv_timer_start(&app.retry, on_retry, 200, 0);
    }
}

static void
apply_event(void *arg, const struct tc_event *ev, void *token)
{
    TC_UNUSED(arg);
    tc_debug("ingest", "event", TC_S("event_id", ev->event_id), TC_S("incident", ev->incident_id),
             TC_I("version", ev->version));
    tc_store_apply(app.store, ev, on_applied, token);
}

static void
on_store_ready(void *arg, bool ready)
{
    TC_UNUSED(arg);
    tc_info("main", ready ? "redis ready, ingest resumes" : "redis unavailable, ingest paused");
    if (app.ingest != NULL && !app.stopping) {
        tc_ingest_set_paused(app.ingest, !ready);
    }
}

static bool
kafka_ready(void *arg)
{
    TC_UNUSED(arg);
    return app.ingest != NULL && tc_ingest_ready(app.ingest);
}

/* The email API verifies links with the mailer's key. */
static bool
link_key(void *arg, const unsigned char **key, size_t *len)
{
    TC_UNUSED(arg);
    return app.mailer != NULL && tc_mailer_link_key(app.mailer, key, len);
}

/* ---- admin routes: the webhook API ---- */

static void
admin_reply(void *req, int status, const char *json, size_t len)
{
    tc_admin_reply(req, status, json, len);
}

static void
wh_create(void *arg, struct tc_admin_req *req, const char *const *p, const json_t *body)
{
    TC_UNUSED(arg);
    TC_UNUSED(p);
    tc_webhook_admin_create(app.store, body, admin_reply, req);
}

static void
wh_list(void *arg, struct tc_admin_req *req, const char *const *p, const json_t *body)
{
    TC_UNUSED(arg);
    TC_UNUSED(p);
    TC_UNUSED(body);
    tc_webhook_admin_list(app.store, admin_reply, req);
}

/* The routes that take only the endpoint id. */
typedef void (*wh_by_id_fn)(struct tc_store *, const char *, tc_webhook_reply_fn, void *);

static void
wh_by_id(void *arg, struct tc_admin_req *req, const char *const *p, const json_t *body)
{
    TC_UNUSED(body);
    wh_by_id_fn fn = *(wh_by_id_fn *)arg;
    fn(app.store, p[0], admin_reply, req);
}

static void
wh_test(void *arg, struct tc_admin_req *req, const char *const *p, const json_t *body)
{
    TC_UNUSED(arg);
    TC_UNUSED(body);
    if (app.webhook == NULL) {
        tc_admin_reply_error(req, 503, "unavailable", "tocsind is shutting down");
        return;
    }
    tc_webhook_admin_test(app.webhook, p[0], admin_reply, req);
}

static void
register_admin_routes(void)
{
    static wh_by_id_fn get = tc_webhook_admin_get, del = tc_webhook_admin_delete,
                       replay = tc_webhook_admin_replay, rotate = tc_webhook_admin_rotate,
                       enable = tc_webhook_admin_enable;
    tc_server_admin_route(app.server, TC_HTTP_POST, "/v1/webhooks", wh_create, NULL);
    tc_server_admin_route(app.server, TC_HTTP_GET, "/v1/webhooks", wh_list, NULL);
    tc_server_admin_route(app.server, TC_HTTP_GET, "/v1/webhooks/{}", wh_by_id, &get);
    tc_server_admin_route(app.server, TC_HTTP_DELETE, "/v1/webhooks/{}", wh_by_id, &del);
    tc_server_admin_route(app.server, TC_HTTP_POST, "/v1/webhooks/{}/replay", wh_by_id, &replay);
    tc_server_admin_route(app.server, TC_HTTP_POST, "/v1/webhooks/{}/rotate-secret", wh_by_id,
                          &rotate);
    tc_server_admin_route(app.server, TC_HTTP_POST, "/v1/webhooks/{}/enable", wh_by_id, &enable);
    tc_server_admin_route(app.server, TC_HTTP_POST, "/v1/webhooks/{}/test", wh_test, NULL);
}

/* ---- shutdown ---- */

static void
close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

static void
on_store_closed(void *arg)
{
    TC_UNUSED(arg);
    app.store = NULL;
    tc_hub_free(app.hub);
    app.hub = NULL;
    tc_ws_free(app.ws);
    app.ws = NULL;
    close_handle((uv_handle_t *)&app.deadline);
    close_handle((uv_handle_t *)&app.grace);
    close_handle((uv_handle_t *)&app.retry);
    close_handle((uv_handle_t *)&app.sigterm);
    close_handle((uv_handle_t *)&app.sigint);
    tc_info("main", "stopped");
}

/* The deliverer and the producer go before the store they ask. */
static void
on_gateway_closed(void *arg)
{
    TC_UNUSED(arg);
    if (--app.gateways_open > 0) {
        return;
    }
    app.webhook = NULL;
    app.producer = NULL;
    app.mailer = NULL;
    if (app.store != NULL) {
        tc_store_close(app.store, on_store_closed, NULL);
    }
}

static void
finish_shutdown(uv_timer_t *t)
{
    TC_UNUSED(t);
    uv_timer_stop(&app.grace);
    if (app.server != NULL) {
        tc_server_free(app.server);
        app.server = NULL;
    }
    app.gateways_open = 1; /* this function's own share, released last */
    if (app.webhook != NULL) {
        app.gateways_open++;
        tc_webhook_close(app.webhook, on_gateway_closed, NULL);
    }
    if (app.producer != NULL) {
        app.gateways_open++;
        tc_producer_close(app.producer, 1000, on_gateway_closed, NULL);
    }
    if (app.mailer != NULL) {
        app.gateways_open++;
        tc_mailer_close(app.mailer, on_gateway_closed, NULL);
    }
    on_gateway_closed(NULL);
}

/* Waits (briefly) for the 1001 close frames to reach the clients. */
static void
check_sessions_closed(uv_timer_t *t)
{
    static int rounds;
    if ((tc_ws_session_count(app.ws) == 0 && tc_server_sse_count(app.server) == 0) ||
        ++rounds >= 20) {
        finish_shutdown(t);
    }
}

static void
on_ingest_closed(void *arg)
{
    TC_UNUSED(arg);
    app.ingest = NULL;
    tc_info("main", "ingest stopped, offsets committed");
    uv_timer_start(&app.grace, check_sessions_closed, 0, 50);
}

static void
on_deadline(uv_timer_t *t)
{
    TC_UNUSED(t);
    tc_err("main", "shutdown took too long, exiting",
           TC_U("timeout_ms", app.cfg.shutdown_timeout_ms));
    exit(1);
}

static void
on_signal(uv_signal_t *h, int signum)
{
    TC_UNUSED(h);
    if (app.stopping) {
        tc_warn("main", "second signal, exiting now", TC_I("signal", signum));
        exit(1);
    }
    app.stopping = true;
    tc_info("main", "shutting down", TC_S("signal", signum == SIGTERM ? "SIGTERM" : "SIGINT"),
            TC_U("ws_sessions", tc_ws_session_count(app.ws)));
    uv_timer_start(&app.deadline, on_deadline, app.cfg.shutdown_timeout_ms, 0);
    uv_unref((uv_handle_t *)&app.deadline);
    tc_ws_shutdown(app.ws);
    tc_server_shutdown(app.server);
    if (app.publish != NULL) {
        tc_publish_api_close(app.publish); /* answers requests waiting for a verdict */
    }
    if (app.ingest != NULL) {
        tc_ingest_close(app.ingest, app.cfg.shutdown_timeout_ms / 2, on_ingest_closed, NULL);
    } else {
        on_ingest_closed(NULL);
    }
}

/* ---- start ---- */

static int
parse_args(int argc, char **argv, const char **config_path, bool *check_only)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {"help-config", no_argument, NULL, 'H'},
        {"check-config", no_argument, NULL, 'C'}, {NULL, 0, NULL, 0},
    };
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":c:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            *config_path = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("tocsind %s\n", TOCSIN_VERSION);
            exit(0);
        case 'H':
            tc_config_print_reference(stdout);
            exit(0);
        case 'C':
            *check_only = true;
            break;
        case ':':
            fprintf(stderr, "tocsind: option %s needs a value\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "tocsind: unknown option %s (try --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tocsind: unexpected argument \"%s\" (try --help)\n", argv[optind]);
        return 2;
    }
    return 0;
}

/* The fd budget (tc_config_fd_budget) for the hard RLIMIT_NOFILE; with
 * apply, the soft limit is set to it. That must come before anything opens
 * sockets, lws above all: lws_create_context sizes its fd table by the soft
 * limit, and Debian's lws 4.1.6 scans the whole table at every close (1.4
 * ms each at a LimitNOFILE of 1048576). A soft limit that holds the cap plus
 * the reserve keeps accept from failing with EMFILE, on which lws spins.
 * @returns 0, or TC_EIO when the limit cannot be read (then no cap but
 * http.max_connections applies). */
static int
fd_budget(const struct tc_config *cfg, bool apply, struct tc_fd_budget *b, struct rlimit *rl)
{
    if (getrlimit(RLIMIT_NOFILE, rl) != 0) {
        b->cap = (uint64_t)cfg->http_max_connections;
        return TC_EIO;
    }
    tc_config_fd_budget(cfg, rl->rlim_max == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl->rlim_max,
                        b);
    if (apply && rl->rlim_cur != b->soft) {
        struct rlimit want = {.rlim_cur = b->soft, .rlim_max = rl->rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0) {
            rl->rlim_cur = b->soft;
        }
    }
    return TC_OK;
}

static void
log_fd_budget(const struct tc_config *cfg)
{
    struct tc_fd_budget b;
    struct rlimit rl;
    if (fd_budget(cfg, true, &b, &rl) != TC_OK) {
        tc_warn("main", "cannot read RLIMIT_NOFILE: only http.max_connections caps clients",
                TC_U("max_connections", b.cap));
    } else if (b.lowered) {
        tc_warn("main",
                "the hard fd limit is too low for http.max_connections: client connections "
                "capped lower",
                TC_U("max_connections", b.cap), TC_I("asked", cfg->http_max_connections),
                TC_U("fd_limit", rl.rlim_cur), TC_U("fd_hard_limit", rl.rlim_max),
                TC_U("fd_reserve", b.reserve));
    } else {
        tc_info("main", "fd limit set", TC_U("max_connections", b.cap),
                TC_U("fd_limit", rl.rlim_cur), TC_U("fd_hard_limit", rl.rlim_max),
                TC_U("fd_reserve", b.reserve));
    }
    if (rl.rlim_cur < b.soft) {
        tc_warn("main", "cannot set the soft fd limit", TC_U("fd_limit", rl.rlim_cur),
                TC_U("wanted", b.soft));
    }
    app.max_connections = b.cap;
}

static int
start(void)
{
    struct tc_error err = {""};
    const char *bootstrap = app.cfg.kafka_brokers;
    if (bootstrap[0] == '\0') {
        app.kafka = tc_kafka_embedded_new(app.cfg.kafka_topic, app.cfg.kafka_dlq_topic,
                                          (int)app.cfg.kafka_partitions, &err);
        if (app.kafka == NULL) {
            tc_err("main", "cannot start the embedded Kafka", TC_S("error", err.text));
            return 1;
        }
        bootstrap = tc_kafka_embedded_bootstrap(app.kafka);
        tc_info("main",
                "embedded Kafka started: for trying tocsin only (in memory, ~5 MB per "
                "partition); set kafka.brokers for production",
                TC_S("bootstrap", bootstrap), TC_S("topic", app.cfg.kafka_topic));
    }
    app.store = tc_store_new(app.loop, &app.cfg, on_store_ready, NULL);
    app.hub = tc_hub_new(&app.cfg);
    app.ws = tc_ws_new(app.loop, &app.cfg, app.hub);
    struct tc_server_deps deps = {
        .hub = app.hub,
        .store = app.store,
        .kafka_ready = kafka_ready,
        .kafka_arg = NULL,
        .max_connections = app.max_connections,
    };
    app.server = tc_server_new(app.loop, &app.cfg, tc_ws_protocol(app.ws), &deps, &err);
    if (app.server == NULL) {
        tc_err("main", "cannot start the HTTP server", TC_S("error", err.text),
               TC_S("listen", app.cfg.http_listen));
        return 1;
    }
    register_admin_routes();
    app.webhook = tc_webhook_new(app.loop, &app.cfg, app.store);
    tc_webhook_start(app.webhook);
    app.producer = tc_producer_new(app.loop, &app.cfg, bootstrap, &err);
    if (app.producer == NULL) {
        tc_err("main", "cannot start the Kafka event producer", TC_S("error", err.text));
        return 1;
    }
    app.publish = tc_publish_api_new(app.server, app.store, app.producer, app.loop);
    if (app.publish == NULL) {
        tc_err("main", "too many HTTP routes");
        return 1;
    }
    app.mailer = tc_mailer_new(app.loop, &app.cfg, app.store);
    if (tc_mailer_start(app.mailer, &err) != TC_OK) {
        tc_err("main", "cannot start the email gateway", TC_S("error", err.text));
        return 2; /* a configuration problem: smtp.from, a template, the link secret */
    }
    struct tc_email_api_deps email = {
        .cfg = &app.cfg, .store = app.store, .link_key = link_key, .link_key_arg = NULL};
    app.email_api = tc_email_api_new(app.server, &email);
    if (app.email_api == NULL) {
        tc_err("main", "too many HTTP routes");
        return 1;
    }
    struct tc_ingest_hooks hooks = {.apply = apply_event, .arg = NULL};
    app.ingest = tc_ingest_new(app.loop, &app.cfg, bootstrap, &hooks, &err);
    if (app.ingest == NULL) {
        tc_err("main", "cannot start the Kafka consumer", TC_S("error", err.text));
        return 1;
    }
    /* Nothing is taken from Kafka until Redis is ready. */
    tc_ingest_set_paused(app.ingest, true);
    tc_store_start(app.store);
    struct tc_store_follow_cbs follow = {
        .load = tc_hub_load, .entries = tc_hub_entries, .arg = app.hub};
    tc_store_follow(app.store, &follow, (size_t)app.cfg.ws_replay_cap);
    if (tc_ingest_start(app.ingest) != TC_OK) {
        tc_err("main", "cannot subscribe to the Kafka topic", TC_S("topic", app.cfg.kafka_topic));
        return 1;
    }
    tc_info("main", "tocsind started", TC_S("version", TOCSIN_VERSION),
            TC_S("listen", app.cfg.http_listen), TC_I("port", tc_server_port(app.server)),
            TC_S("kafka", bootstrap), TC_S("redis", app.cfg.redis_host),
            TC_I("redis_port", app.cfg.redis_port), TC_S("prefix", app.cfg.redis_prefix));
    return 0;
}

int
main(int argc, char **argv)
{
    const char *config_path = NULL;
    bool check_only = false;
    int rc = parse_args(argc, argv, &config_path, &check_only);
    if (rc != 0) {
        return rc;
    }
    struct tc_error err = {""};
    if (tc_config_load(&app.cfg, config_path, environ, &err) != TC_OK ||
        tc_server_tls_check(&app.cfg, &err) != TC_OK) {
        fprintf(stderr, "tocsind: configuration error: %s\n", err.text);
        tc_config_fini(&app.cfg);
        return 2;
    }
    if (check_only) {
        tc_config_print_effective(&app.cfg, stdout);
        struct tc_fd_budget b;
        struct rlimit rl;
        if (fd_budget(&app.cfg, false, &b, &rl) == TC_OK) {
            fprintf(stderr,
                    "tocsind: up to %llu client connections%s; soft fd limit %llu of hard %llu "
                    "(%llu kept for Redis, Kafka, webhooks, email and files)\n",
                    (unsigned long long)b.cap,
                    b.lowered ? " (http.max_connections lowered: the hard fd limit is too low)"
                              : "",
                    (unsigned long long)b.soft, (unsigned long long)rl.rlim_max,
                    (unsigned long long)b.reserve);
        }
        tc_config_fini(&app.cfg);
        return 0;
    }
    enum tc_log_level level = TC_LOG_INFO;
    tc_log_parse_level(app.cfg.log_level, &level);
    tc_log_set_level(level);
    log_fd_budget(&app.cfg); /* first: before any socket, lws's above all */
    signal(SIGPIPE, SIG_IGN);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "tocsind: libcurl failed to initialise\n");
        return 1;
    }
    app.loop = uv_default_loop();
    uv_timer_init(app.loop, &app.deadline);
    uv_timer_init(app.loop, &app.grace);
    uv_timer_init(app.loop, &app.retry);
    uv_signal_init(app.loop, &app.sigterm);
    uv_signal_init(app.loop, &app.sigint);
    uv_signal_start(&app.sigterm, on_signal, SIGTERM);
    uv_signal_start(&app.sigint, on_signal, SIGINT);

    rc = start();
    if (rc != 0) {
        /* Start-up failed: no clean shutdown to run, the OS reclaims the rest. */
        exit(rc);
    }
    uv_run(app.loop, UV_RUN_DEFAULT);
    /* lws and hiredis close their handles asynchronously: let them finish. */
    uv_run(app.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(app.loop) != 0) {
        tc_debug("main", "loop still had handles at exit");
    }
    tc_publish_api_free(app.publish);
    tc_email_api_free(app.email_api);
    tc_kafka_embedded_free(app.kafka);
    tc_config_fini(&app.cfg);
    curl_global_cleanup();
    return app.exit_code;
}
