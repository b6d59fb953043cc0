/* tocsin — SPDX-License-Identifier: MIT
 *
 * The configuration: one table of keys (config.c) loaded defaults → JSON file
 * → TOCSIN_* environment, validated, then frozen and passed around as
 * `const struct tc_config *`. Nothing here opens sockets.
 */
#ifndef TC_CONFIG_H
#define TC_CONFIG_H

#include "util/util.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define TC_RETRY_SCHEDULE_MAX 16
/* Webhook attempts in flight on one node (webhook/deliver.c); a claim takes
 * no more than the room left. Here because the fd budget counts them. */
#define TC_WEBHOOK_MAX_INFLIGHT 256

/* A retry schedule: the delay before each retry, parsed from a list such
 * as "5s,5m,30m". */
struct tc_retry_schedule {
    uint64_t ms[TC_RETRY_SCHEDULE_MAX];
    int count;
};

struct tc_config {
    /* http */
    char *http_listen;                   /* "host:port" */
    char *http_host;                     /* derived from http_listen */
    int http_port;                       /* derived from http_listen */
    int64_t http_max_body;               /* bytes; larger request bodies get 413 */
    uint64_t http_body_timeout_ms;       /* a body still incomplete then: 408, close */
    int64_t http_max_pending_per_ip;     /* per address, before a whole head; 0 = none */
    int64_t http_max_connections_per_ip; /* per address, sessions included; 0 = none */
    int64_t http_max_connections;        /* the whole process; 0 = the fd limit's */
    char *http_static_dir;               /* "" = the built-in status page only */
    char *http_tls_cert;                 /* PEM paths, both or neither; "" = plain HTTP */
    char *http_tls_key;
    bool http_reuse_port; /* SO_REUSEPORT: several tocsind share http.listen */
    /* kafka */
    char *kafka_brokers; /* empty: run the embedded mock cluster */
    char *kafka_topic;
    char *kafka_dlq_topic;
    char *kafka_group;
    int64_t kafka_partitions;    /* partitions of the embedded cluster's topic */
    int64_t kafka_fetch_wait_ms; /* fetch.wait.max.ms of the consumer */
    /* redis */
    char *redis_url;
    char *redis_host; /* derived */
    int redis_port;   /* derived */
    int redis_db;     /* derived */
    char *redis_prefix;
    uint64_t redis_timeout_ms;
    /* admin and public */
    char *admin_token;
    char *auth_client_secret; /* "" = public routes need no client token */
    char *public_url;
    /* ws, sse */
    char **ws_allowed_origins; /* NULL-terminated; empty: any origin */
    int64_t ws_max_message;    /* bytes; larger client messages close with 1009 */
    int64_t ws_send_queue;     /* queued frames per session; past it, close 1013 */
    int64_t ws_replay_cap;     /* most updates replayed on resume; past it, reset */
    uint64_t ws_heartbeat_ms;
    int64_t ws_max_subscriptions;
    /* history and dedup */
    int64_t history_max_updates;
    uint64_t dedup_ttl_ms;
    /* webhook */
    bool webhook_allow_private;
    char *webhook_retry_schedule;
    struct tc_retry_schedule webhook_retry; /* derived */
    uint64_t webhook_timeout_ms;
    uint64_t webhook_disable_after_ms; /* 0 = never */
    int64_t webhook_max_connections;   /* in flight + idle; ≥ TC_WEBHOOK_MAX_INFLIGHT */
    /* email */
    char *smtp_url;
    char *smtp_from;
    char *smtp_username;
    char *smtp_password;
    bool smtp_starttls; /* require STARTTLS on smtp:// */
    char *smtp_ca_file; /* "" = the system's CAs */
    int64_t smtp_max_connections;
    uint64_t smtp_timeout_ms;
    uint64_t email_coalesce_ms;
    char *email_retry_schedule;
    struct tc_retry_schedule email_retry; /* derived */
    char *email_templates_dir;            /* "" = built-in templates only */
    char *email_link_secret;              /* "" = generated once, shared through Redis */
    int64_t email_rate_per_ip;            /* self-service subscriptions per IP per hour */
    int64_t email_rate_per_address;       /* confirmation mails per address per day */
    uint64_t email_confirm_ttl_ms;        /* how long a confirmation link works */
    /* process */
    char *log_level;
    uint64_t shutdown_timeout_ms;
};

/* Fills cfg with the defaults, then the file at path (may be NULL), then the
 * environment (envp style, may be NULL for none), and validates the result.
 * On failure err names the key and the reason, and cfg is left zeroed with
 * nothing to free. @returns 0 or TC_EINVAL. */
int tc_config_load(struct tc_config *cfg, const char *path, char *const *envp,
                   struct tc_error *err);
void tc_config_fini(struct tc_config *cfg);

/* Prints the key reference (key, variable, type, default, description). */
void tc_config_print_reference(FILE *out);
/* Prints the effective configuration as JSON, with secrets masked. */
void tc_config_print_effective(const struct tc_config *cfg, FILE *out);

/* The file descriptors of the process: http.max_connections for clients
 * plus a reserve for everything else, within the hard RLIMIT_NOFILE. */
struct tc_fd_budget {
    uint64_t reserve; /* fds kept for Redis, Kafka, curl's pools, logs, files */
    uint64_t soft;    /* the soft RLIMIT_NOFILE to set: cap + reserve, ≤ hard */
    uint64_t cap;     /* client connections held at once */
    bool lowered;     /* the hard limit cut cap below http.max_connections */
};
/* The budget for a hard limit of hard fds (pure: main.c sets it). */
void tc_config_fd_budget(const struct tc_config *cfg, uint64_t hard, struct tc_fd_budget *b);

/* The key table, read by the schema test. */
enum tc_config_type {
    TC_CFG_STRING,
    TC_CFG_INT,
    TC_CFG_BOOL,
    TC_CFG_DURATION,
    TC_CFG_STRING_LIST,
};

struct tc_config_key {
    const char *key; /* "http.listen" */
    const char *env; /* "TOCSIN_HTTP_LISTEN" */
    enum tc_config_type type;
    size_t offset;    /* into struct tc_config */
    const char *def;  /* default, as text */
    int64_t min, max; /* ints: bounds; strings: length bounds */
    bool secret;      /* never printed */
    /* Optional check of the loaded value; may fill derived fields. */
    int (*check)(struct tc_config *cfg, struct tc_error *err);
    const char *help;
};

extern const struct tc_config_key tc_config_keys[];
extern const size_t tc_config_key_count;

#endif
