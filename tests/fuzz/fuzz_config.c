/* tocsin — SPDX-License-Identifier: MIT
 *
 * Fuzz target: the configuration loader (tc_config_load) on a JSON file of
 * the input's bytes, written to a temporary file the target owns. A loaded
 * configuration obeys every bound of the key table and its derived fields are
 * sane; written back from the table as a file, it loads to the same values;
 * the effective dump is JSON and hides secrets. A refused file leaves the
 * struct zeroed with a message, as config.h promises. No environment is used.
 */
#include "config/config.h"
#include "fuzz.h"

#include <jansson.h>
#include <stdbool.h>
#include <unistd.h>

static char tmp_path[4096];

static void
remove_tmp(void)
{
    unlink(tmp_path);
}

/* Writes text to the target's temporary file (made on the first call). */
static const char *
write_tmp(const void *text, size_t len)
{
    if (tmp_path[0] == '\0') {
        const char *dir = getenv("TMPDIR");
        snprintf(tmp_path, sizeof(tmp_path), "%s/tocsin-fuzz-config-XXXXXX",
                 dir != NULL && dir[0] != '\0' ? dir : "/tmp");
        int fd = mkstemp(tmp_path);
        FUZZ_CHECKF(fd >= 0, "mkstemp %s", tmp_path);
        close(fd);
        atexit(remove_tmp);
    }
    FILE *f = fopen(tmp_path, "wb");
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(fwrite(text, 1, len, f) == len || len == 0);
    FUZZ_CHECK(fclose(f) == 0);
    return tmp_path;
}

static void *
field(struct tc_config *cfg, const struct tc_config_key *k)
{
    return (char *)cfg + k->offset;
}

static size_t
list_len(char **list)
{
    size_t n = 0;
    while (list != NULL && list[n] != NULL) {
        n++;
    }
    return n;
}

static bool
topic_ok(const char *t)
{
    if (t[0] == '\0') {
        return false;
    }
    for (; *t != '\0'; t++) {
        if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') || (*t >= '0' && *t <= '9') ||
              strchr("._-", *t) != NULL)) {
            return false;
        }
    }
    return true;
}

/* Every value within its row's bounds, and the derived fields sane. */
static void
check_bounds(struct tc_config *cfg)
{
    for (size_t i = 0; i < tc_config_key_count; i++) {
        const struct tc_config_key *k = &tc_config_keys[i];
        void *f = field(cfg, k);
        switch (k->type) {
        case TC_CFG_STRING: {
            const char *s = *(char **)f;
            FUZZ_CHECKF(s != NULL, "%s", k->key);
            FUZZ_CHECKF((int64_t)strlen(s) >= k->min && (int64_t)strlen(s) <= k->max, "%s", k->key);
            break;
        }
        case TC_CFG_INT:
            FUZZ_CHECKF(*(int64_t *)f >= k->min && *(int64_t *)f <= k->max, "%s", k->key);
            break;
        case TC_CFG_DURATION:
            FUZZ_CHECKF((int64_t) * (uint64_t *)f >= k->min && (int64_t) * (uint64_t *)f <= k->max,
                        "%s", k->key);
            break;
        case TC_CFG_BOOL:
            break;
        case TC_CFG_STRING_LIST: {
            char **list = *(char ***)f;
            FUZZ_CHECKF((int64_t)list_len(list) <= k->max, "%s", k->key);
            for (size_t j = 0; list != NULL && list[j] != NULL; j++) {
                FUZZ_CHECK(list[j][0] != '\0' && strchr(list[j], ',') == NULL);
            }
            break;
        }
        }
    }
    FUZZ_CHECK(cfg->http_host != NULL && cfg->http_port >= 0 && cfg->http_port <= 65535);
    FUZZ_CHECK(cfg->redis_host != NULL && cfg->redis_port >= 0 && cfg->redis_port <= 65535);
    FUZZ_CHECK(cfg->redis_db >= 0 && cfg->redis_db <= 1000);
    FUZZ_CHECK(strncmp(cfg->redis_url, "redis://", 8) == 0);
    FUZZ_CHECK(cfg->webhook_retry.count >= 1 && cfg->webhook_retry.count <= TC_RETRY_SCHEDULE_MAX);
    FUZZ_CHECK(cfg->email_retry.count >= 1 && cfg->email_retry.count <= TC_RETRY_SCHEDULE_MAX);
    FUZZ_CHECK(topic_ok(cfg->kafka_topic) && topic_ok(cfg->kafka_dlq_topic));
    FUZZ_CHECK(strcmp(cfg->kafka_topic, cfg->kafka_dlq_topic) != 0);
    FUZZ_CHECK(strncmp(cfg->public_url, "http://", 7) == 0 ||
               strncmp(cfg->public_url, "https://", 8) == 0);
    FUZZ_CHECK(cfg->smtp_url[0] == '\0' || strncmp(cfg->smtp_url, "smtp://", 7) == 0 ||
               strncmp(cfg->smtp_url, "smtps://", 8) == 0);
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    bool level_ok = false;
    for (size_t i = 0; i < TC_ARRAY_SIZE(levels); i++) {
        level_ok = level_ok || strcmp(cfg->log_level, levels[i]) == 0;
    }
    FUZZ_CHECKF(level_ok, "log.level \"%s\"", cfg->log_level);
}

/* The configuration as a file, from the table: {"http": {"listen": ...}}. */
static char *
write_back(struct tc_config *cfg)
{
    json_t *root = json_object();
    for (size_t i = 0; i < tc_config_key_count; i++) {
        const struct tc_config_key *k = &tc_config_keys[i];
        void *f = field(cfg, k);
        json_t *v = NULL;
        switch (k->type) {
        case TC_CFG_STRING:
            v = json_string(*(char **)f);
            break;
        case TC_CFG_INT:
            v = json_integer(*(int64_t *)f);
            break;
        case TC_CFG_DURATION: {
            char buf[32];
            snprintf(buf, sizeof(buf), "%llums", (unsigned long long)*(uint64_t *)f);
            v = json_string(buf);
            break;
        }
        case TC_CFG_BOOL:
            v = json_boolean(*(bool *)f);
            break;
        case TC_CFG_STRING_LIST:
            v = json_array();
            for (char **p = *(char ***)f; p != NULL && *p != NULL; p++) {
                json_array_append_new(v, json_string(*p));
            }
            break;
        }
        FUZZ_CHECKF(v != NULL, "%s", k->key);
        const char *dot = strchr(k->key, '.');
        if (dot == NULL) {
            json_object_set_new(root, k->key, v);
            continue;
        }
        char section[64];
        snprintf(section, sizeof(section), "%.*s", (int)(dot - k->key), k->key);
        json_t *sec = json_object_get(root, section);
        if (sec == NULL) {
            sec = json_object();
            json_object_set_new(root, section, sec);
        }
        json_object_set_new(sec, dot + 1, v);
    }
    char *text = json_dumps(root, JSON_INDENT(1));
    json_decref(root);
    FUZZ_CHECK(text != NULL);
    return text;
}

static void
check_same(struct tc_config *a, struct tc_config *b)
{
    for (size_t i = 0; i < tc_config_key_count; i++) {
        const struct tc_config_key *k = &tc_config_keys[i];
        void *fa = field(a, k), *fb = field(b, k);
        switch (k->type) {
        case TC_CFG_STRING:
            FUZZ_CHECKF(strcmp(*(char **)fa, *(char **)fb) == 0, "%s", k->key);
            break;
        case TC_CFG_INT:
        case TC_CFG_DURATION:
            FUZZ_CHECKF(memcmp(fa, fb, 8) == 0, "%s", k->key);
            break;
        case TC_CFG_BOOL:
            FUZZ_CHECKF(*(bool *)fa == *(bool *)fb, "%s", k->key);
            break;
        case TC_CFG_STRING_LIST: {
            char **la = *(char ***)fa, **lb = *(char ***)fb;
            FUZZ_CHECKF(list_len(la) == list_len(lb), "%s", k->key);
            for (size_t j = 0; j < list_len(la); j++) {
                FUZZ_CHECKF(strcmp(la[j], lb[j]) == 0, "%s[%zu]", k->key, j);
            }
            break;
        }
        }
    }
    FUZZ_CHECK(strcmp(a->http_host, b->http_host) == 0 && a->http_port == b->http_port);
    FUZZ_CHECK(strcmp(a->redis_host, b->redis_host) == 0 && a->redis_port == b->redis_port &&
               a->redis_db == b->redis_db);
    FUZZ_CHECK(memcmp(&a->webhook_retry, &b->webhook_retry, sizeof(a->webhook_retry)) == 0);
    FUZZ_CHECK(memcmp(&a->email_retry, &b->email_retry, sizeof(a->email_retry)) == 0);
}

/* The effective dump is JSON with one entry per key, secrets hidden. */
static void
check_effective(const struct tc_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    FUZZ_CHECK(f != NULL);
    tc_config_print_effective(cfg, f);
    FUZZ_CHECK(fclose(f) == 0);
    json_t *dump = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    FUZZ_CHECKF(json_is_object(dump), "%s", text);
    FUZZ_CHECK(json_object_size(dump) == tc_config_key_count);
    for (size_t i = 0; i < tc_config_key_count; i++) {
        const struct tc_config_key *k = &tc_config_keys[i];
        if (k->secret) {
            const char *s = json_string_value(json_object_get(dump, k->key));
            FUZZ_CHECKF(s != NULL && (s[0] == '\0' || strcmp(s, "(set, hidden)") == 0),
                        "secret %s shown", k->key);
        }
    }
    json_decref(dump);
    free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct tc_config zero;
    struct tc_config cfg, again;
    struct tc_error err = {{0}};

    int rc = tc_config_load(&cfg, write_tmp(data, size), NULL, &err);
    if (rc != TC_OK) {
        FUZZ_CHECK(rc == TC_EINVAL);
        FUZZ_CHECK(err.text[0] != '\0');
        FUZZ_CHECK(memcmp(&cfg, &zero, sizeof(cfg)) == 0);
        return 0;
    }
    check_bounds(&cfg);
    check_effective(&cfg);
    char *text = write_back(&cfg);
    rc = tc_config_load(&again, write_tmp(text, strlen(text)), NULL, &err);
    FUZZ_CHECKF(rc == TC_OK, "written back, refused: %s\n%s", err.text, text);
    check_same(&cfg, &again);
    tc_config_fini(&again);
    free(text);
    tc_config_fini(&cfg);
    return 0;
}
