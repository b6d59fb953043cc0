/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of broker/config: the key table held against
 * schemas/config.schema.json (both ways, plus python jsonschema on the same
 * files when Debian's python3 has it), defaults, file/env precedence, a table
 * of bad inputs that must each fail naming the key, origin lists from the
 * environment, and the effective dump hiding secrets.
 */
#include "config/config.h"
#include "util/util.h"

#include <ctype.h>
#include <jansson.h>
#include <regex.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static char tmpdir[64];
static int file_seq;

static int
group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/tocsin-test-config-XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
    (void)state;
    /* Every test unlinks its own files; rmdir fails loudly if one was left. */
    return rmdir(tmpdir);
}

/* Writes text to a new file in tmpdir. @returns new, the path. */
static char *
write_file(const char *text)
{
    char *path = tc_xasprintf("%s/c%d.json", tmpdir, file_seq++);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return path;
}

static void
remove_file(char *path)
{
    assert_int_equal(unlink(path), 0);
    free(path);
}

/* Loads text as the config file (NULL: no file) and env as one variable
 * (NULL: empty environment). */
static int
load(struct tc_config *cfg, const char *text, const char *env, struct tc_error *err)
{
    char *path = text != NULL ? write_file(text) : NULL;
    char *var = env != NULL ? tc_xstrdup(env) : NULL;
    char *envp[] = {var, NULL};
    int rc = tc_config_load(cfg, path, envp, err);
    free(var);
    if (path != NULL) {
        remove_file(path);
    }
    return rc;
}

/* ---- (a) the table against the schema ---- */

static json_t *
load_schema(void)
{
    const char *src = getenv("TOCSIN_SOURCE_DIR");
    char *path = tc_xasprintf("%s/schemas/config.schema.json", src ? src : TOCSIN_SOURCE_DIR);
    json_error_t jerr;
    json_t *schema = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (schema == NULL) {
        fail_msg("%s: line %d: %s", path, jerr.line, jerr.text);
    }
    free(path);
    return schema;
}

static void
assert_closed_object(json_t *node, const char *where)
{
    if (!json_is_object(node) || !json_is_string(json_object_get(node, "type")) ||
        strcmp(json_string_value(json_object_get(node, "type")), "object") != 0 ||
        !json_is_false(json_object_get(node, "additionalProperties")) ||
        !json_is_object(json_object_get(node, "properties"))) {
        fail_msg("%s: must be an object with additionalProperties false", where);
    }
}

/* Finds "http.listen" at properties.http.properties.listen. */
static json_t *
schema_leaf(json_t *root, const char *key)
{
    json_t *node = root;
    char *copy = tc_xstrdup(key);
    char *save = NULL;
    for (char *part = strtok_r(copy, ".", &save); part; part = strtok_r(NULL, ".", &save)) {
        assert_closed_object(node, key);
        node = json_object_get(json_object_get(node, "properties"), part);
        if (node == NULL) {
            fail_msg("schema has no %s (missing part \"%s\")", key, part);
        }
    }
    free(copy);
    return node;
}

static void
expect_int(json_t *leaf, const char *key, const char *name, long long want)
{
    json_t *v = json_object_get(leaf, name);
    if (!json_is_integer(v) || json_integer_value(v) != want) {
        fail_msg("%s: schema %s must be %lld", key, name, want);
    }
}

static void
expect_str(json_t *leaf, const char *key, const char *name, const char *want)
{
    json_t *v = json_object_get(leaf, name);
    if (!json_is_string(v) || strcmp(json_string_value(v), want) != 0) {
        fail_msg("%s: schema %s must be \"%s\"", key, name, want);
    }
}

static void
check_row(json_t *leaf, const struct tc_config_key *k)
{
    json_t *def = json_object_get(leaf, "default");
    json_t *type = json_object_get(leaf, "type");
    expect_str(leaf, k->key, "description", k->help);
    expect_str(leaf, k->key, "x-env", k->env);
    /* DESIGN.md 7: the variable is the key upper-cased, dots as underscores. */
    char env[128] = "TOCSIN_";
    for (size_t i = 0; k->key[i] && i + 8 < sizeof(env); i++) {
        env[7 + i] = k->key[i] == '.' ? '_' : (char)toupper((unsigned char)k->key[i]);
        env[8 + i] = '\0';
    }
    assert_string_equal(k->env, env);
    assert_int_equal(json_is_true(json_object_get(leaf, "writeOnly")), k->secret);
    switch (k->type) {
    case TC_CFG_STRING:
        expect_str(leaf, k->key, "type", "string");
        expect_str(leaf, k->key, "default", k->def);
        expect_int(leaf, k->key, "minLength", k->min);
        expect_int(leaf, k->key, "maxLength", k->max);
        break;
    case TC_CFG_INT:
        expect_str(leaf, k->key, "type", "integer");
        expect_int(leaf, k->key, "default", strtoll(k->def, NULL, 10));
        expect_int(leaf, k->key, "minimum", k->min);
        expect_int(leaf, k->key, "maximum", k->max);
        break;
    case TC_CFG_BOOL:
        expect_str(leaf, k->key, "type", "boolean");
        assert_true(json_is_boolean(def));
        assert_int_equal(json_is_true(def), strcmp(k->def, "true") == 0);
        break;
    case TC_CFG_DURATION:
        /* Text, or an integer number of seconds bounded in whole seconds. */
        assert_true(json_is_array(type) && json_array_size(type) == 2);
        assert_string_equal(json_string_value(json_array_get(type, 0)), "string");
        assert_string_equal(json_string_value(json_array_get(type, 1)), "integer");
        expect_str(leaf, k->key, "default", k->def);
        expect_str(leaf, k->key, "pattern", "^[0-9]+(ms|s|m|h|d)?$");
        expect_int(leaf, k->key, "minimum", (k->min + 999) / 1000);
        expect_int(leaf, k->key, "maximum", k->max / 1000);
        expect_int(leaf, k->key, "x-minimum-ms", k->min);
        expect_int(leaf, k->key, "x-maximum-ms", k->max);
        break;
    case TC_CFG_STRING_LIST:
        expect_str(leaf, k->key, "type", "array");
        expect_int(leaf, k->key, "maxItems", k->max);
        expect_str(json_object_get(leaf, "items"), k->key, "type", "string");
        /* Every default in the table is the empty list. */
        assert_string_equal(k->def, "");
        assert_true(json_is_array(def) && json_array_size(def) == 0);
        break;
    }
}

/* Counts the leaves under node, failing on any the table does not know. */
static size_t
count_leaves(json_t *node, const char *prefix)
{
    size_t n = 0;
    const char *name;
    json_t *child;
    assert_closed_object(node, prefix[0] ? prefix : "(top)");
    json_object_foreach(json_object_get(node, "properties"), name, child)
    {
        if (prefix[0] == '\0' && (strcmp(name, "$schema") == 0 || strcmp(name, "$comment") == 0)) {
            continue;
        }
        char *key = prefix[0] ? tc_xasprintf("%s.%s", prefix, name) : tc_xstrdup(name);
        json_t *type = json_object_get(child, "type");
        if (json_is_string(type) && strcmp(json_string_value(type), "object") == 0) {
            n += count_leaves(child, key);
        } else {
            bool found = false;
            for (size_t i = 0; i < tc_config_key_count; i++) {
                found = found || strcmp(tc_config_keys[i].key, key) == 0;
            }
            if (!found) {
                fail_msg("schema key %s is not in tc_config_keys[]", key);
            }
            n++;
        }
        free(key);
    }
    return n;
}

static void
test_schema_matches_table(void **state)
{
    (void)state;
    json_t *schema = load_schema();
    expect_str(schema, "(top)", "$schema", "https://json-schema.org/draft/2020-12/schema");
    json_t *props = json_object_get(schema, "properties");
    assert_non_null(json_object_get(props, "$schema"));
    assert_non_null(json_object_get(props, "$comment"));
    for (size_t i = 0; i < tc_config_key_count; i++) {
        check_row(schema_leaf(schema, tc_config_keys[i].key), &tc_config_keys[i]);
    }
    assert_int_equal(count_leaves(schema, ""), tc_config_key_count);
    json_decref(schema);
}

/* The schema's duration pattern accepts exactly what tc_parse_duration_ms does. */
static void
test_schema_duration_pattern(void **state)
{
    (void)state;
    static const char *const samples[] = {"0",  "250ms", "10s", "5m",  "2h", "7d",  "10",
                                          "",   "1.5s",  "-1s", " 1s", "1S", "1 s", "ms",
                                          "1w", "1sms",  "1us", "s1",  "01m"};
    regex_t re;
    assert_int_equal(regcomp(&re, "^[0-9]+(ms|s|m|h|d)?$", REG_EXTENDED | REG_NOSUB), 0);
    for (size_t i = 0; i < TC_ARRAY_SIZE(samples); i++) {
        uint64_t ms;
        bool by_regex = regexec(&re, samples[i], 0, NULL, 0) == 0;
        bool by_c = tc_parse_duration_ms(samples[i], &ms) == TC_OK;
        if (by_regex != by_c) {
            fail_msg("\"%s\": pattern %d, tc_parse_duration_ms %d", samples[i], by_regex, by_c);
        }
    }
    regfree(&re);
}

/* ---- (b) defaults ---- */

static void
test_defaults(void **state)
{
    (void)state;
    struct tc_config cfg;
    struct tc_error err = {{0}};
    int rc = tc_config_load(&cfg, NULL, NULL, &err);
    if (rc != TC_OK) {
        fail_msg("defaults do not load: %s", err.text);
    }
    assert_string_equal(cfg.http_listen, "0.0.0.0:8080");
    assert_string_equal(cfg.http_host, "0.0.0.0");
    assert_int_equal(cfg.http_port, 8080);
    assert_int_equal(cfg.http_max_body, 65536);
    assert_string_equal(cfg.kafka_brokers, "");
    assert_string_equal(cfg.kafka_topic, "tocsin.incidents");
    assert_string_equal(cfg.kafka_group, "tocsin");
    assert_string_equal(cfg.redis_host, "127.0.0.1");
    assert_int_equal(cfg.redis_port, 6379);
    assert_int_equal(cfg.redis_db, 0);
    assert_string_equal(cfg.redis_prefix, "tocsin:");
    assert_int_equal(cfg.redis_timeout_ms, 2000);
    assert_string_equal(cfg.admin_token, "");
    assert_string_equal(cfg.public_url, "http://localhost:8080");
    assert_non_null(cfg.ws_allowed_origins);
    assert_null(cfg.ws_allowed_origins[0]);
    assert_int_equal(cfg.ws_heartbeat_ms, 25000);
    assert_int_equal(cfg.history_max_updates, 10000);
    assert_int_equal(cfg.dedup_ttl_ms, 7ull * 86400 * 1000);
    assert_false(cfg.webhook_allow_private);
    static const uint64_t retry[] = {5000, 300000, 1800000, 7200000, 18000000, 36000000, 36000000};
    assert_int_equal(cfg.webhook_retry.count, TC_ARRAY_SIZE(retry));
    assert_memory_equal(cfg.webhook_retry.ms, retry, sizeof(retry));
    assert_int_equal(cfg.webhook_timeout_ms, 10000);
    assert_string_equal(cfg.smtp_url, "");
    assert_string_equal(cfg.smtp_from, "status@localhost");
    assert_int_equal(cfg.email_coalesce_ms, 60000);
    assert_string_equal(cfg.log_level, "info");
    assert_int_equal(cfg.shutdown_timeout_ms, 10000);
    tc_config_fini(&cfg);
    /* An environment without TOCSIN_ keys of the table changes nothing. */
    char a[] = "PATH=/bin", b[] = "TOCSIN_SOURCE_DIR=/nowhere", c[] = "TOCSIN_NOT_A_KEY=1";
    char *envp[] = {a, b, c, NULL};
    assert_int_equal(tc_config_load(&cfg, NULL, envp, &err), TC_OK);
    assert_int_equal(cfg.http_port, 8080);
    tc_config_fini(&cfg);
}

/* ---- (c) precedence and good values at their bounds ---- */

static void
test_precedence(void **state)
{
    (void)state;
    struct tc_config cfg;
    struct tc_error err = {{0}};
    char *path =
        write_file("{\"$schema\": \"../schemas/config.schema.json\", \"$comment\": \"t\",\n"
                   " \"http\": {\"max_body\": 2048, \"listen\": \"[::1]:0\"},\n"
                   " \"kafka\": {\"group\": \"from-file\"},\n"
                   " \"redis\": {\"timeout\": 3},\n"
                   " \"webhook\": {\"allow_private\": true}}\n");
    char e1[] = "TOCSIN_KAFKA_GROUP=from-env", e2[] = "TOCSIN_REDIS_TIMEOUT=250ms";
    char *envp[] = {e1, e2, NULL};
    int rc = tc_config_load(&cfg, path, envp, &err);
    if (rc != TC_OK) {
        fail_msg("%s", err.text);
    }
    assert_int_equal(cfg.http_max_body, 2048); /* file over default */
    assert_string_equal(cfg.http_host, "::1"); /* derived from the file */
    assert_int_equal(cfg.http_port, 0);
    assert_string_equal(cfg.kafka_group, "from-env");         /* env over file */
    assert_int_equal(cfg.redis_timeout_ms, 250);              /* env over file */
    assert_true(cfg.webhook_allow_private);                   /* file over default */
    assert_string_equal(cfg.kafka_topic, "tocsin.incidents"); /* default */
    tc_config_fini(&cfg);
    /* Without the environment the file's values stand. */
    assert_int_equal(tc_config_load(&cfg, path, NULL, &err), TC_OK);
    assert_string_equal(cfg.kafka_group, "from-file");
    assert_int_equal(cfg.redis_timeout_ms, 3000); /* an integer duration is seconds */
    tc_config_fini(&cfg);
    remove_file(path);
}

static void
test_good_edges(void **state)
{
    (void)state;
    struct tc_config cfg;
    struct tc_error err = {{0}};
    /* Exactly at the bounds. */
    assert_int_equal(load(&cfg,
                          "{\"http\": {\"max_body\": 1024}, \"redis\": {\"timeout\": \"10ms\"}}",
                          NULL, &err),
                     TC_OK);
    assert_int_equal(cfg.http_max_body, 1024);
    assert_int_equal(cfg.redis_timeout_ms, 10);
    tc_config_fini(&cfg);
    assert_int_equal(load(&cfg,
                          "{\"http\": {\"max_body\": 16777216}, \"dedup\": {\"ttl\": \"365d\"}}",
                          NULL, &err),
                     TC_OK);
    assert_int_equal(cfg.http_max_body, 16777216);
    assert_int_equal(cfg.dedup_ttl_ms, 365ull * 86400 * 1000);
    tc_config_fini(&cfg);
    /* Redis URL forms. */
    assert_int_equal(load(&cfg, NULL, "TOCSIN_REDIS_URL=redis://cache.local", &err), TC_OK);
    assert_string_equal(cfg.redis_host, "cache.local");
    assert_int_equal(cfg.redis_port, 6379);
    assert_int_equal(cfg.redis_db, 0);
    tc_config_fini(&cfg);
    assert_int_equal(load(&cfg, NULL, "TOCSIN_REDIS_URL=redis://10.0.0.2:7000/3", &err), TC_OK);
    assert_string_equal(cfg.redis_host, "10.0.0.2");
    assert_int_equal(cfg.redis_port, 7000);
    assert_int_equal(cfg.redis_db, 3);
    tc_config_fini(&cfg);
    /* Sixteen retry delays are the most; blanks between commas are skipped. */
    assert_int_equal(load(&cfg, NULL,
                          "TOCSIN_WEBHOOK_RETRY_SCHEDULE=1s,2s,3s,4s,5s,6s,7s,8s,9s,10s,11s,12s,"
                          "13s,14s,15s, ,250ms",
                          &err),
                     TC_OK);
    assert_int_equal(cfg.webhook_retry.count, 16);
    assert_int_equal(cfg.webhook_retry.ms[15], 250);
    tc_config_fini(&cfg);
    assert_int_equal(load(&cfg, "{\"log\": {\"level\": \"debug\"}}", NULL, &err), TC_OK);
    tc_config_fini(&cfg);
}

/* ---- (d) bad inputs ---- */

struct bad_case {
    const char *rule;
    const char *file;    /* config file text, or NULL */
    const char *env;     /* one TOCSIN_ variable, or NULL */
    const char *want;    /* must appear in the error text */
    bool schema_rejects; /* jsonschema must reject the file too */
};

/* clang-format off */
static const struct bad_case bad_cases[] = {
    {"unknown key", "{\"http\": {\"lisen\": \"a:1\"}}", NULL, "\"http.lisen\"", true},
    {"unknown empty section", "{\"htp\": {}}", NULL, "\"htp\"", true},
    {"section is not an object", "{\"http\": 5}", NULL, "\"http\"", true},
    {"$comment below the top", "{\"http\": {\"$comment\": \"x\"}}", NULL, "\"http.$comment\"", true},
    {"dotted name instead of nesting", "{\"http.listen\": \"a:1\"}", NULL, "\"http.listen\"", true},
    {"int given as string", "{\"http\": {\"max_body\": \"65536\"}}", NULL, "http.max_body: must be an integer", true},
    {"int given as float", "{\"http\": {\"max_body\": 2048.0}}", NULL, "http.max_body: must be an integer", false},
    {"bool given as string", "{\"webhook\": {\"allow_private\": \"yes\"}}", NULL, "webhook.allow_private", true},
    {"string given as int", "{\"kafka\": {\"group\": 7}}", NULL, "kafka.group: must be a string", true},
    {"list given as string", "{\"ws\": {\"allowed_origins\": \"http://a\"}}", NULL, "ws.allowed_origins", true},
    {"list item with comma", "{\"ws\": {\"allowed_origins\": [\"http://a,http://b\"]}}", NULL, "ws.allowed_origins[0]", true},
    {"int below minimum", "{\"http\": {\"max_body\": 1023}}", NULL, "http.max_body: 1023 is outside", true},
    {"int above maximum", "{\"http\": {\"max_body\": 16777217}}", NULL, "http.max_body: 16777217 is outside", true},
    {"string too long", "{\"log\": {\"level\": \"warning\"}}", NULL, "log.level: length 7", true},
    {"duration bad suffix", "{\"redis\": {\"timeout\": \"2x\"}}", NULL, "redis.timeout: \"2x\" is not a duration", true},
    {"duration negative", "{\"redis\": {\"timeout\": -1}}", NULL, "redis.timeout", true},
    {"duration seconds above maximum", "{\"ws\": {\"heartbeat\": 3601}}", NULL, "ws.heartbeat", true},
    {"duration below minimum", "{\"redis\": {\"timeout\": \"5ms\"}}", NULL, "redis.timeout: 5ms is outside", false},
    {"listen without port", "{\"http\": {\"listen\": \"8080\"}}", NULL, "http.listen", true},
    {"listen port too big", "{\"http\": {\"listen\": \"0.0.0.0:65536\"}}", NULL, "http.listen", false},
    {"listen port with space", "{\"http\": {\"listen\": \"0.0.0.0: 80\"}}", NULL, "http.listen", true},
    {"listen empty port", "{\"http\": {\"listen\": \"host:\"}}", NULL, "http.listen", true},
    {"redis.url scheme", "{\"redis\": {\"url\": \"rediss://h:6379/0\"}}", NULL, "redis.url", true},
    {"redis.url password", "{\"redis\": {\"url\": \"redis://:pw@h:6379/0\"}}", NULL, "redis.url", true},
    {"redis.url no host", "{\"redis\": {\"url\": \"redis:///0\"}}", NULL, "redis.url", true},
    {"redis.url bad db", "{\"redis\": {\"url\": \"redis://h:6379/x\"}}", NULL, "redis.url", true},
    {"redis.url signed db", "{\"redis\": {\"url\": \"redis://h:6379/+1\"}}", NULL, "redis.url", true},
    {"retry schedule bad item", "{\"webhook\": {\"retry_schedule\": \"5s,soon\"}}", NULL, "webhook.retry_schedule", true},
    {"retry schedule empty", "{\"webhook\": {\"retry_schedule\": \",\"}}", NULL, "webhook.retry_schedule", true},
    {"retry schedule 17 items", "{\"webhook\": {\"retry_schedule\": \"1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s\"}}", NULL, "webhook.retry_schedule", false},
    {"log level unknown", "{\"log\": {\"level\": \"trace\"}}", NULL, "log.level", true},
    {"log level fatal", "{\"log\": {\"level\": \"fatal\"}}", NULL, "log.level", true},
    {"topic with space", "{\"kafka\": {\"topic\": \"a b\"}}", NULL, "kafka.topic", true},
    {"dlq topic equals topic", "{\"kafka\": {\"dlq_topic\": \"tocsin.incidents\"}}", NULL, "kafka.dlq_topic", false},
    {"public_url scheme", "{\"public_url\": \"ftp://example.org\"}", NULL, "public_url", true},
    {"smtp.url scheme", "{\"smtp\": {\"url\": \"http://mail:25\"}}", NULL, "smtp.url", true},
    {"origin not http", "{\"ws\": {\"allowed_origins\": [\"example.org\"]}}", NULL, "ws.allowed_origins", true},
    {"non-object file", "[1, 2]", NULL, "must be a JSON object", true},
    {"invalid JSON names the line", "{\n  \"http\": {\n    \"listen\": \n  }\n}\n", NULL, "line 4", true},
    {"duplicate keys", "{\"http\": {\"listen\": \"a:1\", \"listen\": \"b:2\"}}", NULL, "duplicate object key near '\"listen\"'", false},
    {"env int not a number", NULL, "TOCSIN_HTTP_MAX_BODY=12k", "http.max_body: \"12k\" is not an integer (from TOCSIN_HTTP_MAX_BODY)", false},
    {"env int out of bounds", NULL, "TOCSIN_WS_SEND_QUEUE=7", "ws.send_queue: 7 is outside", false},
    {"env bool", NULL, "TOCSIN_WEBHOOK_ALLOW_PRIVATE=yes", "webhook.allow_private", false},
    {"env duration", NULL, "TOCSIN_DEDUP_TTL=1y", "dedup.ttl", false},
    {"env listen", NULL, "TOCSIN_HTTP_LISTEN=:http", "http.listen", false},
    {"env too many origins", NULL, "TOCSIN_WS_ALLOWED_ORIGINS=http://a,http://a,http://a,http://a,http://a,http://a,"
     "http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a,"
     "http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a,"
     "http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a,"
     "http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a,"
     "http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a,http://a",
     "ws.allowed_origins: 65 entries", false},
};
/* clang-format on */

static void
test_bad_inputs(void **state)
{
    (void)state;
    for (size_t i = 0; i < TC_ARRAY_SIZE(bad_cases); i++) {
        const struct bad_case *c = &bad_cases[i];
        struct tc_config cfg;
        struct tc_error err = {{0}};
        int rc = load(&cfg, c->file, c->env, &err);
        if (rc != TC_EINVAL || strstr(err.text, c->want) == NULL) {
            fail_msg("%s: rc %d, error \"%s\", wanted \"%s\"", c->rule, rc, err.text, c->want);
        }
        /* A failed load leaves nothing to free. */
        assert_null(cfg.http_listen);
        assert_null(cfg.ws_allowed_origins);
        assert_null(cfg.redis_host);
    }
}

/* Regression: a redis.url host of 296-299 bytes overflowed the stack buffer
 * that ":6379" is appended to. */
static void
test_redis_url_long_host(void **state)
{
    (void)state;
    struct tc_config cfg;
    struct tc_error err = {{0}};
    for (size_t len = 290; len <= 310; len++) {
        char *env = tc_xmalloc(len + 32);
        int n = snprintf(env, len + 32, "TOCSIN_REDIS_URL=redis://");
        memset(env + n, 'h', len);
        strcpy(env + n + len, "/0");
        int rc = load(&cfg, NULL, env, &err);
        if (len <= 294) {
            assert_int_equal(rc, TC_OK);
            assert_int_equal(strlen(cfg.redis_host), len);
            assert_int_equal(cfg.redis_port, 6379);
            tc_config_fini(&cfg);
        } else {
            assert_int_equal(rc, TC_EINVAL);
            assert_non_null(strstr(err.text, "redis.url"));
        }
        free(env);
    }
}

/* The file cases judged by python jsonschema must agree with the loader. */
static void
test_schema_agrees_with_jsonschema(void **state)
{
    (void)state;
    if (access("/usr/bin/python3", X_OK) != 0 ||
        system("/usr/bin/python3 -c 'import jsonschema' 2>/dev/null") != 0) {
        skip();
    }
    static const char *const good[] = {
        "{}",
        "{\"$schema\": \"x\", \"http\": {\"listen\": \"[::1]:0\", \"max_body\": 1024}}",
        "{\"redis\": {\"url\": \"redis://h\", \"timeout\": 60}, \"email\": {\"coalesce\": 0}}",
        "{\"ws\": {\"allowed_origins\": [\"https://a.example\"]}, \"log\": {\"level\": \"error\"}}",
        "{\"webhook\": {\"retry_schedule\": \"5s, 5m,1h\", \"allow_private\": false}}",
    };
    char *cmd =
        tc_xasprintf("/usr/bin/python3 -c '"
                     "import json,sys,jsonschema\n"
                     "v=jsonschema.Draft202012Validator(json.load(open(sys.argv[1])))\n"
                     "for p in sys.argv[2:]:\n"
                     "  try: ok=v.is_valid(json.load(open(p)))\n"
                     "  except ValueError: ok=False\n"
                     "  print(int(ok))' %s/schemas/config.schema.json",
                     getenv("TOCSIN_SOURCE_DIR") ? getenv("TOCSIN_SOURCE_DIR") : TOCSIN_SOURCE_DIR);
    char *paths[TC_ARRAY_SIZE(good) + TC_ARRAY_SIZE(bad_cases)];
    bool want[TC_ARRAY_SIZE(paths)];
    size_t n = 0;
    for (size_t i = 0; i < TC_ARRAY_SIZE(good); i++) {
        struct tc_config cfg;
        struct tc_error err = {{0}};
        assert_int_equal(load(&cfg, good[i], NULL, &err), TC_OK);
        tc_config_fini(&cfg);
        want[n] = true;
        paths[n++] = write_file(good[i]);
    }
    for (size_t i = 0; i < TC_ARRAY_SIZE(bad_cases); i++) {
        if (bad_cases[i].file != NULL && bad_cases[i].schema_rejects) {
            want[n] = false;
            paths[n++] = write_file(bad_cases[i].file);
        }
    }
    for (size_t i = 0; i < n; i++) {
        char *next = tc_xasprintf("%s %s", cmd, paths[i]);
        free(cmd);
        cmd = next;
    }
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[16];
    for (size_t i = 0; i < n; i++) {
        assert_non_null(fgets(line, sizeof(line), p));
        if ((line[0] == '1') != want[i]) {
            fail_msg("jsonschema says %c for %s, the loader %d", line[0], paths[i], want[i]);
        }
    }
    assert_int_equal(pclose(p), 0);
    for (size_t i = 0; i < n; i++) {
        remove_file(paths[i]);
    }
    free(cmd);
}

/* ---- (e) origins from the environment ---- */

static void
test_env_origins(void **state)
{
    (void)state;
    struct tc_config cfg;
    struct tc_error err = {{0}};
    assert_int_equal(load(&cfg, "{\"ws\": {\"allowed_origins\": [\"http://file.example\"]}}",
                          "TOCSIN_WS_ALLOWED_ORIGINS= http://a.example , https://b.example:8443,",
                          &err),
                     TC_OK);
    assert_string_equal(cfg.ws_allowed_origins[0], "http://a.example");
    assert_string_equal(cfg.ws_allowed_origins[1], "https://b.example:8443");
    assert_null(cfg.ws_allowed_origins[2]);
    tc_config_fini(&cfg);
    /* "a, b" splits into two entries, and each is validated. */
    assert_int_equal(load(&cfg, NULL, "TOCSIN_WS_ALLOWED_ORIGINS=a, b", &err), TC_EINVAL);
    assert_non_null(strstr(err.text, "ws.allowed_origins: \"a\""));
    /* Only blanks: the empty list, any origin. */
    assert_int_equal(load(&cfg, NULL, "TOCSIN_WS_ALLOWED_ORIGINS= , ", &err), TC_OK);
    assert_null(cfg.ws_allowed_origins[0]);
    tc_config_fini(&cfg);
}

/* ---- (f) the effective dump ---- */

static void
test_effective_hides_secrets(void **state)
{
    (void)state;
    struct tc_config cfg;
    struct tc_error err = {{0}};
    int rc = load(&cfg,
                  "{\"admin\": {\"token\": \"tok-SECRET-1\"},"
                  " \"redis\": {\"url\": \"redis://host-SECRET-2:6379/1\"},"
                  " \"smtp\": {\"url\": \"smtp://mail-SECRET-3:25\"}}",
                  NULL, &err);
    if (rc != TC_OK) {
        fail_msg("%s", err.text);
    }
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    tc_config_print_effective(&cfg, f);
    assert_int_equal(fclose(f), 0);
    assert_null(strstr(out, "SECRET"));
    json_t *dump = json_loads(out, 0, NULL);
    assert_non_null(dump);
    assert_string_equal(json_string_value(json_object_get(dump, "admin.token")), "(set, hidden)");
    assert_string_equal(json_string_value(json_object_get(dump, "redis.url")), "(set, hidden)");
    assert_string_equal(json_string_value(json_object_get(dump, "smtp.url")), "(set, hidden)");
    assert_string_equal(json_string_value(json_object_get(dump, "kafka.group")), "tocsin");
    assert_int_equal(json_object_size(dump), tc_config_key_count);
    json_decref(dump);
    free(out);
    tc_config_fini(&cfg);
    /* The reference lists every key and variable. */
    f = open_memstream(&out, &len);
    tc_config_print_reference(f);
    assert_int_equal(fclose(f), 0);
    for (size_t i = 0; i < tc_config_key_count; i++) {
        assert_non_null(strstr(out, tc_config_keys[i].key));
        assert_non_null(strstr(out, tc_config_keys[i].env));
    }
    free(out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_matches_table),
        cmocka_unit_test(test_schema_duration_pattern),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_good_edges),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_redis_url_long_host),
        cmocka_unit_test(test_schema_agrees_with_jsonschema),
        cmocka_unit_test(test_env_origins),
        cmocka_unit_test(test_effective_hides_secrets),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
