/* tocsin — SPDX-License-Identifier: MIT
 *
 * The key table and its loader: defaults → JSON file → TOCSIN_* environment.
 * Every key is one row; the reference, the effective dump and the schema test
 * are all driven from the table, so they cannot drift from the code.
 */
#include "config/config.h"
#include "log/log.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define OFF(field) offsetof(struct tc_config, field)

static int check_listen(struct tc_config *cfg, struct tc_error *err);
static int check_redis_url(struct tc_config *cfg, struct tc_error *err);
static int check_retry_schedule(struct tc_config *cfg, struct tc_error *err);
static int check_public_url(struct tc_config *cfg, struct tc_error *err);
static int check_smtp_url(struct tc_config *cfg, struct tc_error *err);
static int check_email_retry_schedule(struct tc_config *cfg, struct tc_error *err);
static int check_log_level(struct tc_config *cfg, struct tc_error *err);
static int check_origins(struct tc_config *cfg, struct tc_error *err);
static int check_topics(struct tc_config *cfg, struct tc_error *err);
static int check_static_dir(struct tc_config *cfg, struct tc_error *err);
static int check_tls(struct tc_config *cfg, struct tc_error *err);
static int check_client_secret(struct tc_config *cfg, struct tc_error *err);

/* clang-format off */
const struct tc_config_key tc_config_keys[] = {
    {"http.listen", "TOCSIN_HTTP_LISTEN", TC_CFG_STRING, OFF(http_listen), "0.0.0.0:8080", 3, 300, false, check_listen,
     "address and port of the HTTP/WebSocket listener (host:port)"},
    {"http.max_body", "TOCSIN_HTTP_MAX_BODY", TC_CFG_INT, OFF(http_max_body), "65536", 1024, 16777216, false, NULL,
     "largest request body in bytes; larger ones get 413"},
    {"http.body_timeout", "TOCSIN_HTTP_BODY_TIMEOUT", TC_CFG_DURATION, OFF(http_body_timeout_ms), "10s", 1000, 600000, false, NULL,
     "time a request body has to arrive whole after its head; a slower one gets 408 and a close"},
    {"http.max_pending_per_ip", "TOCSIN_HTTP_MAX_PENDING_PER_IP", TC_CFG_INT, OFF(http_max_pending_per_ip), "32", 0, 1000000, false, NULL,
     "connections one client address may hold that have not sent a whole request head; more are closed at accept (0 = no limit)"},
    {"http.max_connections_per_ip", "TOCSIN_HTTP_MAX_CONNECTIONS_PER_IP", TC_CFG_INT, OFF(http_max_connections_per_ip), "1024", 0, 10000000, false, NULL,
     "connections one client address may hold in all, WebSocket and SSE sessions included; more are closed at accept (0 = no limit)"},
    /* 60000: tens of thousands of sessions a core (DESIGN §9) with room,
     * about 130 MB of idle sessions at 2.1 KB each; its soft limit (with the
     * reserve, ~61,500) makes lws's per-close table scan ~17 times shorter
     * than at systemd's LimitNOFILE of 1048576. */
    {"http.max_connections", "TOCSIN_HTTP_MAX_CONNECTIONS", TC_CFG_INT, OFF(http_max_connections), "60000", 0, 10000000, false, NULL,
     "client connections the process holds at once, sessions included; more are closed at accept; the soft fd limit is set to this plus a reserve, and the cap is lowered when the hard limit is too low (0 = as many as the hard fd limit allows)"},
    {"http.static_dir", "TOCSIN_HTTP_STATIC_DIR", TC_CFG_STRING, OFF(http_static_dir), "", 0, 1024, false, check_static_dir,
     "directory whose files replace the built-in status page's of the same name (empty = built-ins)"},
    {"http.tls_cert", "TOCSIN_HTTP_TLS_CERT", TC_CFG_STRING, OFF(http_tls_cert), "", 0, 1024, false, check_tls,
     "certificate chain (PEM file) of the listener; set with http.tls_key, it speaks TLS only (empty = plain HTTP)"},
    {"http.tls_key", "TOCSIN_HTTP_TLS_KEY", TC_CFG_STRING, OFF(http_tls_key), "", 0, 1024, false, NULL,
     "private key (PEM file) of http.tls_cert"},
    {"http.reuse_port", "TOCSIN_HTTP_REUSE_PORT", TC_CFG_BOOL, OFF(http_reuse_port), "false", 0, 0, false, NULL,
     "share http.listen with the other tocsind on this host that set it (SO_REUSEPORT; one process per core, each a node)"},
    {"kafka.brokers", "TOCSIN_KAFKA_BROKERS", TC_CFG_STRING, OFF(kafka_brokers), "", 0, 4096, false, NULL,
     "bootstrap servers; empty runs an embedded single-node Kafka (librdkafka mock cluster)"},
    {"kafka.topic", "TOCSIN_KAFKA_TOPIC", TC_CFG_STRING, OFF(kafka_topic), "tocsin.incidents", 1, 249, false, check_topics,
     "topic of incident events"},
    {"kafka.dlq_topic", "TOCSIN_KAFKA_DLQ_TOPIC", TC_CFG_STRING, OFF(kafka_dlq_topic), "tocsin.incidents.dlq", 1, 249, false, NULL,
     "dead-letter topic for invalid events"},
    {"kafka.group", "TOCSIN_KAFKA_GROUP", TC_CFG_STRING, OFF(kafka_group), "tocsin", 1, 255, false, NULL,
     "consumer group id"},
    {"kafka.partitions", "TOCSIN_KAFKA_PARTITIONS", TC_CFG_INT, OFF(kafka_partitions), "4", 1, 256, false, NULL,
     "partitions of the topics the embedded Kafka creates"},
    {"kafka.fetch_wait", "TOCSIN_KAFKA_FETCH_WAIT", TC_CFG_DURATION, OFF(kafka_fetch_wait_ms), "50ms", 1, 10000, false, NULL,
     "longest a fetch waits for new events (a real broker answers as soon as one arrives; the embedded one waits it out)"},
    {"redis.url", "TOCSIN_REDIS_URL", TC_CFG_STRING, OFF(redis_url), "redis://127.0.0.1:6379/0", 9, 1024, true, check_redis_url,
     "Redis server (redis://host:port/db)"},
    {"redis.prefix", "TOCSIN_REDIS_PREFIX", TC_CFG_STRING, OFF(redis_prefix), "tocsin:", 1, 64, false, NULL,
     "prefix of every Redis key"},
    {"redis.timeout", "TOCSIN_REDIS_TIMEOUT", TC_CFG_DURATION, OFF(redis_timeout_ms), "2s", 10, 60000, false, NULL,
     "timeout of every Redis command"},
    {"admin.token", "TOCSIN_ADMIN_TOKEN", TC_CFG_STRING, OFF(admin_token), "", 0, 1024, true, NULL,
     "bearer token of the admin API (empty = admin API disabled)"},
    {"auth.client_secret", "TOCSIN_AUTH_CLIENT_SECRET", TC_CFG_STRING, OFF(auth_client_secret), "", 0, 1024, true, check_client_secret,
     "HS256 key (at least 32 bytes) of the client tokens WebSocket, SSE and incident reads then need (empty = open)"},
    {"public_url", "TOCSIN_PUBLIC_URL", TC_CFG_STRING, OFF(public_url), "http://localhost:8080", 8, 1024, false, check_public_url,
     "base URL of this service as users reach it (links in emails)"},
    {"ws.allowed_origins", "TOCSIN_WS_ALLOWED_ORIGINS", TC_CFG_STRING_LIST, OFF(ws_allowed_origins), "", 0, 64, false, check_origins,
     "origins allowed to open WebSocket/SSE sessions (comma-separated in the variable; empty = any)"},
    {"ws.max_message", "TOCSIN_WS_MAX_MESSAGE", TC_CFG_INT, OFF(ws_max_message), "65536", 256, 1048576, false, NULL,
     "largest client message in bytes; larger ones close the session with 1009"},
    {"ws.send_queue", "TOCSIN_WS_SEND_QUEUE", TC_CFG_INT, OFF(ws_send_queue), "1024", 8, 1000000, false, NULL,
     "frames queued for one session before it is closed with 1013"},
    {"ws.replay_cap", "TOCSIN_WS_REPLAY_CAP", TC_CFG_INT, OFF(ws_replay_cap), "1000", 1, 100000, false, NULL,
     "most updates replayed on resume; further behind gets a reset snapshot"},
    {"ws.heartbeat", "TOCSIN_WS_HEARTBEAT", TC_CFG_DURATION, OFF(ws_heartbeat_ms), "25s", 1000, 3600000, false, NULL,
     "interval of heartbeats to idle sessions"},
    {"ws.max_subscriptions", "TOCSIN_WS_MAX_SUBSCRIPTIONS", TC_CFG_INT, OFF(ws_max_subscriptions), "16", 1, 1024, false, NULL,
     "subscriptions one WebSocket session may hold"},
    {"history.max_updates", "TOCSIN_HISTORY_MAX_UPDATES", TC_CFG_INT, OFF(history_max_updates), "10000", 100, 10000000, false, NULL,
     "length of the history stream in Redis"},
    {"dedup.ttl", "TOCSIN_DEDUP_TTL", TC_CFG_DURATION, OFF(dedup_ttl_ms), "7d", 60000, 31536000000, false, NULL,
     "how long an event_id is remembered for deduplication"},
    {"webhook.allow_private", "TOCSIN_WEBHOOK_ALLOW_PRIVATE", TC_CFG_BOOL, OFF(webhook_allow_private), "false", 0, 0, false, NULL,
     "allow webhook deliveries to loopback, private and link-local addresses"},
    {"webhook.retry_schedule", "TOCSIN_WEBHOOK_RETRY_SCHEDULE", TC_CFG_STRING, OFF(webhook_retry_schedule), "5s,5m,30m,2h,5h,10h,10h", 1, 512, false, check_retry_schedule,
     "delays between webhook attempts; after the last, the job is dead-lettered"},
    {"webhook.timeout", "TOCSIN_WEBHOOK_TIMEOUT", TC_CFG_DURATION, OFF(webhook_timeout_ms), "10s", 100, 300000, false, NULL,
     "time a webhook receiver has to answer"},
    {"webhook.disable_after", "TOCSIN_WEBHOOK_DISABLE_AFTER", TC_CFG_DURATION, OFF(webhook_disable_after_ms), "5d", 0, 31536000000, false, NULL,
     "an endpoint whose every attempt failed for this long is disabled (0 = never)"},
    {"webhook.max_connections", "TOCSIN_WEBHOOK_MAX_CONNECTIONS", TC_CFG_INT, OFF(webhook_max_connections), "1024", 256, 65536, false, NULL,
     "connections to webhook receivers open at once, in flight and kept alive together; the oldest idle one is closed to make room"},
    {"smtp.url", "TOCSIN_SMTP_URL", TC_CFG_STRING, OFF(smtp_url), "", 0, 1024, true, check_smtp_url,
     "SMTP server (smtp://host:port or smtps://; empty = email disabled)"},
    {"smtp.from", "TOCSIN_SMTP_FROM", TC_CFG_STRING, OFF(smtp_from), "status@localhost", 3, 254, false, NULL,
     "sender address of emails"},
    {"smtp.username", "TOCSIN_SMTP_USERNAME", TC_CFG_STRING, OFF(smtp_username), "", 0, 256, true, NULL,
     "SMTP AUTH user (empty = no authentication)"},
    {"smtp.password", "TOCSIN_SMTP_PASSWORD", TC_CFG_STRING, OFF(smtp_password), "", 0, 1024, true, NULL,
     "SMTP AUTH password"},
    {"smtp.starttls", "TOCSIN_SMTP_STARTTLS", TC_CFG_BOOL, OFF(smtp_starttls), "false", 0, 0, false, NULL,
     "require STARTTLS on an smtp:// server (smtps:// is TLS from the start)"},
    {"smtp.ca_file", "TOCSIN_SMTP_CA_FILE", TC_CFG_STRING, OFF(smtp_ca_file), "", 0, 1024, false, NULL,
     "CA certificates (PEM) that verify the SMTP server; empty = the system's"},
    {"smtp.max_connections", "TOCSIN_SMTP_MAX_CONNECTIONS", TC_CFG_INT, OFF(smtp_max_connections), "4", 1, 64, false, NULL,
     "mails sent at once by one node (each on its own, reused, SMTP connection)"},
    {"smtp.timeout", "TOCSIN_SMTP_TIMEOUT", TC_CFG_DURATION, OFF(smtp_timeout_ms), "30s", 1000, 600000, false, NULL,
     "longest one mail may take to send"},
    {"email.coalesce", "TOCSIN_EMAIL_COALESCE", TC_CFG_DURATION, OFF(email_coalesce_ms), "60s", 0, 86400000, false, NULL,
     "updates to one subscriber within this window become one email"},
    {"email.retry_schedule", "TOCSIN_EMAIL_RETRY_SCHEDULE", TC_CFG_STRING, OFF(email_retry_schedule), "1m,5m,15m,30m,1h,2h,4h,8h,8h", 1, 512, false, check_email_retry_schedule,
     "delays between attempts after a 4xx or connection failure; after the last, the mail is failed"},
    {"email.templates_dir", "TOCSIN_EMAIL_TEMPLATES_DIR", TC_CFG_STRING, OFF(email_templates_dir), "", 0, 1024, false, NULL,
     "directory whose files replace built-in templates of the same name (empty = built-ins)"},
    {"email.link_secret", "TOCSIN_EMAIL_LINK_SECRET", TC_CFG_STRING, OFF(email_link_secret), "", 0, 1024, true, NULL,
     "key that signs confirm and unsubscribe links (empty = generated once and kept in Redis)"},
    {"email.rate_per_ip", "TOCSIN_EMAIL_RATE_PER_IP", TC_CFG_INT, OFF(email_rate_per_ip), "10", 1, 1000000, false, NULL,
     "self-service subscriptions one client IP may ask for per hour"},
    {"email.rate_per_address", "TOCSIN_EMAIL_RATE_PER_ADDRESS", TC_CFG_INT, OFF(email_rate_per_address), "3", 1, 1000, false, NULL,
     "confirmation mails one address may get per day"},
    {"email.confirm_ttl", "TOCSIN_EMAIL_CONFIRM_TTL", TC_CFG_DURATION, OFF(email_confirm_ttl_ms), "7d", 60000, 31536000000, false, NULL,
     "how long a confirmation link works"},
    {"log.level", "TOCSIN_LOG_LEVEL", TC_CFG_STRING, OFF(log_level), "info", 4, 5, false, check_log_level,
     "least severe level logged: debug, info, warn, error"},
    {"shutdown.timeout", "TOCSIN_SHUTDOWN_TIMEOUT", TC_CFG_DURATION, OFF(shutdown_timeout_ms), "10s", 100, 600000, false, NULL,
     "longest a graceful shutdown may take before the process exits anyway"},
};
/* clang-format on */
const size_t tc_config_key_count = TC_ARRAY_SIZE(tc_config_keys);

static const char *const type_names[] = {"string", "integer", "boolean", "duration",
                                         "list of strings"};

static void *
field(struct tc_config *cfg, const struct tc_config_key *k)
{
    return (char *)cfg + k->offset;
}

static void
free_list(char **list)
{
    if (list != NULL) {
        for (char **p = list; *p; p++) {
            free(*p);
        }
        free(list);
    }
}

/* Splits a comma-separated value into a NULL-terminated list, skipping blanks. */
static char **
split_list(const char *s, size_t *count)
{
    size_t cap = 1, n = 0;
    for (const char *p = s; *p; p++) {
        cap += *p == ',';
    }
    char **list = tc_xcalloc(cap + 1, sizeof(char *));
    const char *start = s;
    for (;;) {
        const char *end = strchr(start, ',');
        size_t len = end ? (size_t)(end - start) : strlen(start);
        while (len > 0 && (*start == ' ')) {
            start++;
            len--;
        }
        while (len > 0 && start[len - 1] == ' ') {
            len--;
        }
        if (len > 0) {
            list[n++] = tc_xstrndup(start, len);
        }
        if (end == NULL) {
            break;
        }
        start = end + 1;
    }
    *count = n;
    return list;
}

/* Sets one key from text (defaults, environment). */
static int
set_from_text(struct tc_config *cfg, const struct tc_config_key *k, const char *text,
              struct tc_error *err)
{
    void *f = field(cfg, k);
    switch (k->type) {
    case TC_CFG_STRING: {
        size_t len = strlen(text);
        if ((int64_t)len < k->min || (int64_t)len > k->max) {
            return tc_error_set(err, TC_EINVAL, "%s: length %zu is outside %lld..%lld", k->key, len,
                                (long long)k->min, (long long)k->max);
        }
        free(*(char **)f);
        *(char **)f = tc_xstrdup(text);
        return TC_OK;
    }
    case TC_CFG_INT: {
        errno = 0;
        char *end = NULL;
        long long v = strtoll(text, &end, 10);
        if (errno != 0 || end == text || *end != '\0') {
            return tc_error_set(err, TC_EINVAL, "%s: \"%s\" is not an integer", k->key, text);
        }
        if (v < k->min || v > k->max) {
            return tc_error_set(err, TC_EINVAL, "%s: %lld is outside %lld..%lld", k->key, v,
                                (long long)k->min, (long long)k->max);
        }
        *(int64_t *)f = v;
        return TC_OK;
    }
    case TC_CFG_BOOL:
        if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0) {
            *(bool *)f = true;
        } else if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0) {
            *(bool *)f = false;
        } else {
            return tc_error_set(err, TC_EINVAL, "%s: \"%s\" is not true or false", k->key, text);
        }
        return TC_OK;
    case TC_CFG_DURATION: {
        uint64_t ms;
        if (tc_parse_duration_ms(text, &ms) != TC_OK) {
            return tc_error_set(err, TC_EINVAL,
                                "%s: \"%s\" is not a duration (like 250ms, 10s, 5m, 2h, 7d)",
                                k->key, text);
        }
        if ((int64_t)ms < k->min || (int64_t)ms > k->max) {
            return tc_error_set(err, TC_EINVAL, "%s: %s is outside %lldms..%lldms", k->key, text,
                                (long long)k->min, (long long)k->max);
        }
        *(uint64_t *)f = ms;
        return TC_OK;
    }
    case TC_CFG_STRING_LIST: {
        size_t n;
        char **list = split_list(text, &n);
        if ((int64_t)n > k->max) {
            free_list(list);
            return tc_error_set(err, TC_EINVAL, "%s: %zu entries, at most %lld", k->key, n,
                                (long long)k->max);
        }
        free_list(*(char ***)f);
        *(char ***)f = list;
        return TC_OK;
    }
    }
    return TC_EINVAL;
}

/* Sets one key from a JSON value of the file. */
static int
set_from_json(struct tc_config *cfg, const struct tc_config_key *k, json_t *v, struct tc_error *err)
{
    char buf[64];
    switch (k->type) {
    case TC_CFG_STRING:
    case TC_CFG_DURATION:
        if (k->type == TC_CFG_DURATION && json_is_integer(v)) {
            snprintf(buf, sizeof(buf), "%llds", (long long)json_integer_value(v));
            return set_from_text(cfg, k, buf, err);
        }
        if (!json_is_string(v)) {
            return tc_error_set(err, TC_EINVAL, "%s: must be a string", k->key);
        }
        if (strlen(json_string_value(v)) != json_string_length(v)) {
            return tc_error_set(err, TC_EINVAL, "%s: must not contain NUL", k->key);
        }
        return set_from_text(cfg, k, json_string_value(v), err);
    case TC_CFG_INT:
        if (!json_is_integer(v)) {
            return tc_error_set(err, TC_EINVAL, "%s: must be an integer", k->key);
        }
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        return set_from_text(cfg, k, buf, err);
    case TC_CFG_BOOL:
        if (!json_is_boolean(v)) {
            return tc_error_set(err, TC_EINVAL, "%s: must be true or false", k->key);
        }
        *(bool *)field(cfg, k) = json_is_true(v);
        return TC_OK;
    case TC_CFG_STRING_LIST: {
        if (!json_is_array(v)) {
            return tc_error_set(err, TC_EINVAL, "%s: must be an array of strings", k->key);
        }
        if ((int64_t)json_array_size(v) > k->max) {
            return tc_error_set(err, TC_EINVAL, "%s: %zu entries, at most %lld", k->key,
                                json_array_size(v), (long long)k->max);
        }
        char **list = tc_xcalloc(json_array_size(v) + 1, sizeof(char *));
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            if (!json_is_string(item) || json_string_length(item) == 0 ||
                strchr(json_string_value(item), ',') != NULL) {
                free_list(list);
                return tc_error_set(err, TC_EINVAL,
                                    "%s[%zu]: must be a non-empty string without commas", k->key,
                                    i);
            }
            list[i] = tc_xstrdup(json_string_value(item));
        }
        free_list(*(char ***)field(cfg, k));
        *(char ***)field(cfg, k) = list;
        return TC_OK;
    }
    }
    return TC_EINVAL;
}

static const struct tc_config_key *
find_key(const char *key)
{
    for (size_t i = 0; i < tc_config_key_count; i++) {
        if (strcmp(tc_config_keys[i].key, key) == 0) {
            return &tc_config_keys[i];
        }
    }
    return NULL;
}

/* True when some key lives under section, e.g. "http" for "http.listen". */
static bool
is_section(const char *section)
{
    size_t n = strlen(section);
    for (size_t i = 0; i < tc_config_key_count; i++) {
        if (strncmp(tc_config_keys[i].key, section, n) == 0 && tc_config_keys[i].key[n] == '.') {
            return true;
        }
    }
    return false;
}

/* Walks the file's objects; "http": {"listen": ...} names key "http.listen".
 * Accepts exactly what schemas/config.schema.json accepts: "$schema" and
 * "$comment" only at the top, no dotted names, no unknown (even empty) section. */
static int
load_object(struct tc_config *cfg, json_t *obj, const char *prefix, struct tc_error *err)
{
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v)
    {
        char key[128];
        int n = snprintf(key, sizeof(key), "%s%s%s", prefix, prefix[0] ? "." : "", name);
        if (n < 0 || (size_t)n >= sizeof(key)) {
            return tc_error_set(err, TC_EINVAL, "key too long: %.60s...", key);
        }
        if (prefix[0] == '\0' && (strcmp(name, "$schema") == 0 || strcmp(name, "$comment") == 0)) {
            continue;
        }
        const struct tc_config_key *k = strchr(name, '.') == NULL ? find_key(key) : NULL;
        if (k != NULL) {
            int rc = set_from_json(cfg, k, v, err);
            if (rc != TC_OK) {
                return rc;
            }
        } else if (json_is_object(v) && strchr(name, '.') == NULL && is_section(key)) {
            int rc = load_object(cfg, v, key, err);
            if (rc != TC_OK) {
                return rc;
            }
        } else {
            return tc_error_set(err, TC_EINVAL,
                                "unknown key \"%s\" (tocsind --help-config lists them)", key);
        }
    }
    return TC_OK;
}

static int
load_file(struct tc_config *cfg, const char *path, struct tc_error *err)
{
    json_error_t jerr;
    /* A config file over 1 MiB is a mistake, not a configuration. */
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return tc_error_set(err, TC_EINVAL, "config file %s: %s", path, strerror(errno));
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    if (size > 1024 * 1024) {
        return tc_error_set(err, TC_EINVAL, "config file %s: larger than 1 MiB", path);
    }
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        return tc_error_set(err, TC_EINVAL, "config file %s: line %d column %d: %s", path,
                            jerr.line, jerr.column, jerr.text);
    }
    int rc = TC_OK;
    if (!json_is_object(root)) {
        rc = tc_error_set(err, TC_EINVAL, "config file %s: must be a JSON object", path);
    } else {
        rc = load_object(cfg, root, "", err);
    }
    json_decref(root);
    return rc;
}

static int
load_env(struct tc_config *cfg, char *const *envp, struct tc_error *err)
{
    if (envp == NULL) {
        return TC_OK;
    }
    for (char *const *e = envp; *e; e++) {
        if (strncmp(*e, "TOCSIN_", 7) != 0) {
            continue;
        }
        const char *eq = strchr(*e, '=');
        if (eq == NULL) {
            continue;
        }
        size_t nlen = (size_t)(eq - *e);
        for (size_t i = 0; i < tc_config_key_count; i++) {
            const struct tc_config_key *k = &tc_config_keys[i];
            if (strlen(k->env) == nlen && strncmp(k->env, *e, nlen) == 0) {
                int rc = set_from_text(cfg, k, eq + 1, err);
                if (rc != TC_OK) {
                    char detail[sizeof(err->text)];
                    snprintf(detail, sizeof(detail), "%s", err ? err->text : "");
                    return tc_error_set(err, rc, "%s (from %s)", detail, k->env);
                }
                break;
            }
        }
    }
    return TC_OK;
}

int
tc_config_load(struct tc_config *cfg, const char *path, char *const *envp, struct tc_error *err)
{
    int rc = TC_OK;
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < tc_config_key_count; i++) {
        rc = set_from_text(cfg, &tc_config_keys[i], tc_config_keys[i].def, err);
        if (rc != TC_OK) {
            goto out; /* a bad default is a bug, and the unit test catches it */
        }
    }
    if (path != NULL && (rc = load_file(cfg, path, err)) != TC_OK) {
        goto out;
    }
    if ((rc = load_env(cfg, envp, err)) != TC_OK) {
        goto out;
    }
    for (size_t i = 0; i < tc_config_key_count; i++) {
        const struct tc_config_key *k = &tc_config_keys[i];
        if (k->check != NULL && (rc = k->check(cfg, err)) != TC_OK) {
            goto out;
        }
    }
out:
    /* A half-loaded config is freed here, so callers need no cleanup on error
     * (and tc_config_fini on the zeroed struct stays harmless). */
    if (rc != TC_OK) {
        tc_config_fini(cfg);
    }
    return rc;
}

void
tc_config_fini(struct tc_config *cfg)
{
    for (size_t i = 0; i < tc_config_key_count; i++) {
        const struct tc_config_key *k = &tc_config_keys[i];
        if (k->type == TC_CFG_STRING) {
            free(*(char **)field(cfg, k));
        } else if (k->type == TC_CFG_STRING_LIST) {
            free_list(*(char ***)field(cfg, k));
        }
    }
    free(cfg->http_host);
    free(cfg->redis_host);
    memset(cfg, 0, sizeof(*cfg));
}

/* "host:port", "[v6]:port" or ":port"; the port 0 asks the kernel for a free one. */
static int
parse_host_port(const char *key, const char *s, char **host, int *port, struct tc_error *err)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL) {
        return tc_error_set(err, TC_EINVAL, "%s: \"%s\" must be host:port", key, s);
    }
    char *end = NULL;
    errno = 0;
    /* Digits only: strtol alone would take " 80", "+80" and "-0". */
    long p = isdigit((unsigned char)colon[1]) ? strtol(colon + 1, &end, 10) : -1;
    if (errno != 0 || p < 0 || *end != '\0' || p > 65535) {
        return tc_error_set(err, TC_EINVAL, "%s: \"%s\" has no valid port (0-65535)", key, s);
    }
    const char *h = s;
    size_t hlen = (size_t)(colon - s);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    free(*host);
    *host = hlen ? tc_xstrndup(h, hlen) : tc_xstrdup("0.0.0.0");
    *port = (int)p;
    return TC_OK;
}

static int
check_listen(struct tc_config *cfg, struct tc_error *err)
{
    return parse_host_port("http.listen", cfg->http_listen, &cfg->http_host, &cfg->http_port, err);
}

static int
check_redis_url(struct tc_config *cfg, struct tc_error *err)
{
    const char *u = cfg->redis_url;
    if (strncmp(u, "redis://", 8) != 0) {
        return tc_error_set(err, TC_EINVAL,
                            "redis.url: must start with redis:// (TLS is not supported)");
    }
    u += 8;
    if (strchr(u, '@') != NULL) {
        return tc_error_set(err, TC_EINVAL,
                            "redis.url: passwords in the URL are not supported yet");
    }
    const char *slash = strchr(u, '/');
    char hostport[300];
    size_t hlen = slash ? (size_t)(slash - u) : strlen(u);
    /* Room for the host, ":6379" appended below and the NUL. */
    if (hlen == 0) {
        return tc_error_set(err, TC_EINVAL, "redis.url: no host");
    }
    if (hlen + sizeof(":6379") > sizeof(hostport)) {
        return tc_error_set(err, TC_EINVAL, "redis.url: host longer than %zu bytes",
                            sizeof(hostport) - sizeof(":6379"));
    }
    memcpy(hostport, u, hlen);
    hostport[hlen] = '\0';
    if (strchr(hostport, ':') == NULL) {
        strcat(hostport, ":6379");
    }
    int rc = parse_host_port("redis.url", hostport, &cfg->redis_host, &cfg->redis_port, err);
    if (rc != TC_OK) {
        return rc;
    }
    cfg->redis_db = 0;
    if (slash != NULL && slash[1] != '\0') {
        char *end = NULL;
        long db = isdigit((unsigned char)slash[1]) ? strtol(slash + 1, &end, 10) : -1;
        if (db < 0 || *end != '\0' || db > 1000) {
            return tc_error_set(err, TC_EINVAL, "redis.url: database \"%s\" is not a number",
                                slash + 1);
        }
        cfg->redis_db = (int)db;
    }
    return TC_OK;
}

static int
parse_schedule(const char *key, const char *text, struct tc_retry_schedule *sched,
               struct tc_error *err)
{
    size_t n;
    char **parts = split_list(text, &n);
    int rc = TC_OK;
    if (n == 0 || n > TC_RETRY_SCHEDULE_MAX) {
        rc =
            tc_error_set(err, TC_EINVAL, "%s: needs 1 to %d durations", key, TC_RETRY_SCHEDULE_MAX);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (tc_parse_duration_ms(parts[i], &sched->ms[i]) != TC_OK) {
            rc = tc_error_set(err, TC_EINVAL, "%s: \"%s\" is not a duration", key, parts[i]);
            goto out;
        }
    }
    sched->count = (int)n;
out:
    free_list(parts);
    return rc;
}

static int
check_retry_schedule(struct tc_config *cfg, struct tc_error *err)
{
    return parse_schedule("webhook.retry_schedule", cfg->webhook_retry_schedule,
                          &cfg->webhook_retry, err);
}

static int
check_email_retry_schedule(struct tc_config *cfg, struct tc_error *err)
{
    return parse_schedule("email.retry_schedule", cfg->email_retry_schedule, &cfg->email_retry,
                          err);
}

static bool
is_http_url(const char *s)
{
    return (strncmp(s, "http://", 7) == 0 && s[7] != '\0') ||
           (strncmp(s, "https://", 8) == 0 && s[8] != '\0');
}

static int
check_public_url(struct tc_config *cfg, struct tc_error *err)
{
    if (!is_http_url(cfg->public_url)) {
        return tc_error_set(err, TC_EINVAL, "public_url: must start with http:// or https://");
    }
    return TC_OK;
}

static int
check_smtp_url(struct tc_config *cfg, struct tc_error *err)
{
    const char *u = cfg->smtp_url;
    if (u[0] != '\0' && strncmp(u, "smtp://", 7) != 0 && strncmp(u, "smtps://", 8) != 0) {
        return tc_error_set(err, TC_EINVAL, "smtp.url: must start with smtp:// or smtps://");
    }
    return TC_OK;
}

static int
check_log_level(struct tc_config *cfg, struct tc_error *err)
{
    enum tc_log_level level;
    /* "fatal" parses as a level but is not one to configure: it would hide errors. */
    if (tc_log_parse_level(cfg->log_level, &level) != TC_OK || level > TC_LOG_ERROR) {
        return tc_error_set(err, TC_EINVAL, "log.level: \"%s\" is not debug, info, warn or error",
                            cfg->log_level);
    }
    return TC_OK;
}

static int
check_origins(struct tc_config *cfg, struct tc_error *err)
{
    for (char **o = cfg->ws_allowed_origins; o && *o; o++) {
        if (!is_http_url(*o)) {
            return tc_error_set(err, TC_EINVAL,
                                "ws.allowed_origins: \"%s\" must start with http:// or https://",
                                *o);
        }
    }
    return TC_OK;
}

/* Checked at start-up, so a typo fails the start (exit 2) instead of every
 * page answering with the built-ins unnoticed. */
static int
check_static_dir(struct tc_config *cfg, struct tc_error *err)
{
    struct stat st;
    const char *d = cfg->http_static_dir;
    if (d[0] == '\0') {
        return TC_OK;
    }
    if (stat(d, &st) != 0) {
        return tc_error_set(err, TC_EINVAL, "http.static_dir: %s: %s", d, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
        return tc_error_set(err, TC_EINVAL, "http.static_dir: %s: not a directory", d);
    }
    return TC_OK;
}

/* Both or neither, and readable now: a typo fails the start (exit 2). That
 * the key matches the certificate is checked by http/ (OpenSSL is its). */
static int
check_tls(struct tc_config *cfg, struct tc_error *err)
{
    const char *files[2] = {cfg->http_tls_cert, cfg->http_tls_key};
    const char *keys[2] = {"http.tls_cert", "http.tls_key"};
    if ((files[0][0] == '\0') != (files[1][0] == '\0')) {
        return tc_error_set(err, TC_EINVAL, "http.tls_cert and http.tls_key: set both or neither");
    }
    for (int i = 0; i < 2 && files[0][0] != '\0'; i++) {
        FILE *f = fopen(files[i], "rb");
        if (f == NULL) {
            return tc_error_set(err, TC_EINVAL, "%s: %s: %s", keys[i], files[i], strerror(errno));
        }
        fclose(f);
    }
    return TC_OK;
}

/* RFC 7518 §3.2: an HS256 key has at least as many bits as the hash. */
static int
check_client_secret(struct tc_config *cfg, struct tc_error *err)
{
    size_t n = strlen(cfg->auth_client_secret);
    if (n > 0 && n < 32) {
        return tc_error_set(err, TC_EINVAL,
                            "auth.client_secret: %zu bytes, at least 32 are needed (or empty)", n);
    }
    return TC_OK;
}

static bool
valid_topic(const char *t)
{
    for (const char *p = t; *p; p++) {
        if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-')) {
            return false;
        }
    }
    return t[0] != '\0';
}

static int
check_topics(struct tc_config *cfg, struct tc_error *err)
{
    if (!valid_topic(cfg->kafka_topic)) {
        return tc_error_set(err, TC_EINVAL, "kafka.topic: only [A-Za-z0-9._-] are allowed");
    }
    if (!valid_topic(cfg->kafka_dlq_topic)) {
        return tc_error_set(err, TC_EINVAL, "kafka.dlq_topic: only [A-Za-z0-9._-] are allowed");
    }
    if (strcmp(cfg->kafka_topic, cfg->kafka_dlq_topic) == 0) {
        return tc_error_set(err, TC_EINVAL, "kafka.dlq_topic: must differ from kafka.topic");
    }
    return TC_OK;
}

void
tc_config_print_reference(FILE *out)
{
    fprintf(out, "%-26s %-32s %-10s %-26s %s\n", "KEY", "VARIABLE", "TYPE", "DEFAULT",
            "DESCRIPTION");
    for (size_t i = 0; i < tc_config_key_count; i++) {
        const struct tc_config_key *k = &tc_config_keys[i];
        const char *type = k->type == TC_CFG_STRING_LIST ? "list" : type_names[k->type];
        fprintf(out, "%-26s %-32s %-10s %-26s %s\n", k->key, k->env, type,
                k->def[0] ? k->def : "(empty)", k->help);
    }
}

/* What tocsind opens besides client connections, at most at once. The base
 * covers stdio, libuv (epoll, signal pipe, async handles, its thread pool),
 * the SSE hang-up epoll, Redis, Kafka (the consumer and two producers: a
 * socket per broker each, and librdkafka's wake-up fds per broker thread;
 * the embedded cluster adds its listeners and the far end of each of those
 * connections), the status page's and the templates' files and the log:
 * 56 counted in /proc/PID/fd with the embedded Kafka, so 192 leaves room
 * for a cluster of several brokers (each adds about 9: a socket per client
 * and a broker thread's wake-up pipe). */
#define FD_BASE 192
/* The curl multis (webhooks, SMTP) each have a wake-up socket pair. */
#define FD_MULTIS 4
/* Far beyond any real fd limit (Linux's nr_open is at most 2^30); keeps a
 * limit of RLIM_INFINITY out of the arithmetic. */
#define FD_HARD_MAX ((uint64_t)1 << 30)

void
tc_config_fd_budget(const struct tc_config *cfg, uint64_t hard, struct tc_fd_budget *b)
{
    /* curl keeps at most webhook.max_connections sockets to receivers (in
     * flight or idle); an attempt still resolving a name holds the threaded
     * resolver's socket pair instead, one fd more than its socket will be.
     * An SMTP connection is its socket and, while it resolves, that pair. */
    b->reserve = FD_BASE + FD_MULTIS + (uint64_t)cfg->webhook_max_connections +
                 TC_WEBHOOK_MAX_INFLIGHT + 2 * (uint64_t)cfg->smtp_max_connections;
    if (hard > FD_HARD_MAX) {
        hard = FD_HARD_MAX;
    }
    uint64_t room = hard > b->reserve ? hard - b->reserve : 0;
    /* The reserve is a worst case, and a limit this low would leave clients
     * nothing after it: they get half, and the pools, which rarely fill,
     * may meet EMFILE in a connect, which their retries absorb. */
    if (room < hard / 2) {
        room = hard / 2;
    }
    uint64_t want = (uint64_t)cfg->http_max_connections;
    b->cap = want == 0 || want > room ? room : want;
    b->soft = b->cap + b->reserve < hard ? b->cap + b->reserve : hard;
    b->lowered = want > b->cap;
}

void
tc_config_print_effective(const struct tc_config *cfg, FILE *out)
{
    json_t *root = json_object();
    for (size_t i = 0; i < tc_config_key_count; i++) {
        const struct tc_config_key *k = &tc_config_keys[i];
        const void *f = (const char *)cfg + k->offset;
        json_t *v = NULL;
        switch (k->type) {
        case TC_CFG_STRING: {
            const char *s = *(char *const *)f;
            v = json_string(k->secret && s[0] ? "(set, hidden)" : s);
            break;
        }
        case TC_CFG_INT:
            v = json_integer(*(const int64_t *)f);
            break;
        case TC_CFG_BOOL:
            v = json_boolean(*(const bool *)f);
            break;
        case TC_CFG_DURATION: {
            char buf[32];
            snprintf(buf, sizeof(buf), "%llums", (unsigned long long)*(const uint64_t *)f);
            v = json_string(buf);
            break;
        }
        case TC_CFG_STRING_LIST: {
            v = json_array();
            for (char *const *p = *(char **const *)f; p && *p; p++) {
                json_array_append_new(v, json_string(*p));
            }
            break;
        }
        }
        json_object_set_new(root, k->key, v);
    }
    json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', out);
    json_decref(root);
}
