/* tocsin — SPDX-License-Identifier: MIT
 *
 * The flag table and its parser (see args.h). GNU-style long flags only:
 * `--name value` or `--name=value`, `--` ends the flags, `-h` is --help.
 * Values are checked by the commands, which know what they mean; this file
 * only knows names, types and where values go.
 */
#include "args.h"

#include <stddef.h>
#include <string.h>

enum type { STR, BOOL, LIST };

struct flag {
    const char *name;    /* without "--" */
    const char *variant; /* NULL, or the help variant after '@' in an allowed list */
    enum type type;
    size_t off;          /* of the value in struct tc_ctl_opts */
    const char *metavar; /* NULL for BOOL */
    const char *help;
};

#define OFF(f) offsetof(struct tc_ctl_opts, f)

static const struct flag globals[] = {
    {"url", NULL, STR, OFF(url), "URL",
     "tocsind's base URL (default $TOCSIN_URL or http://127.0.0.1:8080)"},
    {"token-file", NULL, STR, OFF(token_file), "PATH",
     "read the admin token from PATH (default $TOCSIN_ADMIN_TOKEN)"},
    {"timeout", NULL, STR, OFF(timeout), "DURATION",
     "per request, e.g. 500ms, 10s, 1m (default 10s)"},
    {"json", NULL, BOOL, OFF(json), NULL, "print one machine-readable JSON document on stdout"},
    {"help", NULL, BOOL, OFF(help), NULL, "show this help and exit"},
};

static const struct flag flags[] = {
    {"id", NULL, STR, OFF(id), "ID",
     "incident id, 1-128 of [A-Za-z0-9._:-] (default: one is generated)"},
    {"title", NULL, STR, OFF(title), "TEXT", "title, 1-200 characters"},
    {"components", NULL, STR, OFF(components), "LIST",
     "affected components, comma-separated ids of [a-z0-9._-]"},
    {"components", "filter", STR, OFF(components), "LIST",
     "only incidents affecting one of these components (comma-separated)"},
    {"regions", NULL, STR, OFF(regions), "LIST",
     "affected regions, comma-separated (none: global)"},
    {"regions", "filter", STR, OFF(regions), "LIST",
     "only incidents in one of these regions (global ones always match)"},
    {"impact", NULL, STR, OFF(impact), "LEVEL", "none, minor, major or critical"},
    {"status", NULL, STR, OFF(status), "STATUS",
     "investigating identified monitoring resolved; maintenance: scheduled in_progress "
     "verifying completed"},
    {"message", NULL, STR, OFF(message), "TEXT", "plain text for subscribers, 0-4096 characters"},
    {"kind", NULL, STR, OFF(kind), "KIND", "incident (default) or maintenance"},
    {"version", NULL, STR, OFF(version), "N",
     "the version this state gets (with --kafka: required past 1; via the API: 409 if the "
     "incident moved on)"},
    {"affected-users", NULL, STR, OFF(affected_users), "N", "estimate of the users affected"},
    {"link", NULL, LIST, OFF(links), "NAME=URL",
     "an https:// link (status page, postmortem); repeatable"},
    {"component-status", NULL, LIST, OFF(component_status), "ID=STATE",
     "one component's state (operational degraded_performance partial_outage major_outage "
     "under_maintenance); repeatable"},
    {"kafka", NULL, STR, OFF(kafka), "BROKERS",
     "produce the event straight to these Kafka brokers (host:port,...) instead of the API"},
    {"topic", NULL, STR, OFF(topic), "TOPIC",
     "Kafka topic with --kafka (default tocsin.incidents)"},
    {"min-impact", NULL, STR, OFF(min_impact), "LEVEL",
     "only incidents of at least this impact (none minor major critical)"},
    {"filter-components", NULL, STR, OFF(components), "LIST", "same as --components"},
    {"filter-regions", NULL, STR, OFF(regions), "LIST", "same as --regions"},
    {"filter-min-impact", NULL, STR, OFF(min_impact), "LEVEL", "same as --min-impact"},
    {"description", NULL, STR, OFF(description), "TEXT", "what the endpoint is for"},
    {"since", NULL, STR, OFF(since), "SEQ", "resume after this seq (with --epoch)"},
    {"epoch", NULL, STR, OFF(epoch), "EPOCH", "the epoch --since belongs to"},
    {"snapshot", NULL, BOOL, OFF(snapshot), NULL, "also print the active incidents on connect"},
    {"components", "token", STR, OFF(components), "LIST",
     "the only components the token may subscribe to (comma-separated; none: any)"},
    {"ttl", NULL, STR, OFF(ttl), "DURATION",
     "how long the token is valid, e.g. 15m, 1h (default 1h)"},
    {"secret-file", NULL, STR, OFF(secret_file), "PATH",
     "read auth.client_secret from PATH (default $TOCSIN_AUTH_CLIENT_SECRET)"},
};

/* True when the space-separated list holds the word name[@variant]. */
static bool
listed(const char *allowed, const char *name, const char *variant, bool any_variant)
{
    char word[64];
    if (variant != NULL) {
        snprintf(word, sizeof(word), "%s@%s", name, variant);
    } else {
        snprintf(word, sizeof(word), "%s", name);
    }
    size_t n = strlen(word);
    for (const char *p = allowed; p != NULL && *p != '\0';) {
        size_t len = strcspn(p, " ");
        if ((len == n && strncmp(p, word, n) == 0) ||
            (any_variant && len > strlen(name) && strncmp(p, name, strlen(name)) == 0 &&
             p[strlen(name)] == '@')) {
            return true;
        }
        p += len;
        p += strspn(p, " ");
    }
    return false;
}

/* The flag called name (n bytes) that this command takes, or NULL. */
static const struct flag *
find(const char *allowed, const char *name, size_t n)
{
    char key[64];
    if (n >= sizeof(key)) {
        return NULL;
    }
    memcpy(key, name, n);
    key[n] = '\0';
    for (size_t i = 0; i < TC_ARRAY_SIZE(globals); i++) {
        if (strcmp(globals[i].name, key) == 0) {
            return &globals[i];
        }
    }
    for (size_t i = 0; i < TC_ARRAY_SIZE(flags); i++) {
        if (strcmp(flags[i].name, key) == 0 && listed(allowed, key, NULL, true)) {
            return &flags[i];
        }
    }
    return NULL;
}

static int
set(const struct flag *f, struct tc_ctl_opts *o, const char *value, struct tc_error *err)
{
    char *slot = (char *)o + f->off;
    if (f->type == BOOL) {
        *(bool *)(void *)slot = true;
    } else if (f->type == STR) {
        *(const char **)(void *)slot = value;
    } else {
        struct tc_ctl_list *l = (struct tc_ctl_list *)(void *)slot;
        if (l->n == TC_CTL_LIST_MAX) {
            return tc_error_set(err, TC_EINVAL, "--%s: at most %d times", f->name, TC_CTL_LIST_MAX);
        }
        l->v[l->n++] = value;
    }
    return TC_OK;
}

int
tc_ctl_args_parse(int argc, char **argv, const char *allowed, bool stop_at_word,
                  struct tc_ctl_opts *o, struct tc_error *err)
{
    int i = 0;
    bool words_only = false;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!words_only && strcmp(a, "--") == 0) {
            words_only = true;
            continue;
        }
        if (!words_only && strcmp(a, "-h") == 0) {
            o->help = true;
            continue;
        }
        if (words_only || a[0] != '-' || a[1] == '\0') {
            if (stop_at_word) {
                return i;
            }
            if (o->nargs == TC_CTL_ARGS_MAX) {
                return tc_error_set(err, TC_EINVAL, "unexpected argument '%.80s'", a);
            }
            o->args[o->nargs++] = a;
            continue;
        }
        if (a[1] != '-') {
            return tc_error_set(err, TC_EINVAL, "%.80s: unknown flag", a);
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t n = eq != NULL ? (size_t)(eq - name) : strlen(name);
        const struct flag *f = find(allowed, name, n);
        if (f == NULL) {
            return tc_error_set(err, TC_EINVAL, "--%.*s: unknown flag", (int)(n > 80 ? 80 : n),
                                name);
        }
        const char *value = NULL;
        if (f->type == BOOL) {
            if (eq != NULL) {
                return tc_error_set(err, TC_EINVAL, "--%s: takes no value", f->name);
            }
        } else if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            return tc_error_set(err, TC_EINVAL, "--%s: needs a value (%s)", f->name, f->metavar);
        }
        int rc = set(f, o, value, err);
        if (rc != TC_OK) {
            return rc;
        }
    }
    return i;
}

static void
help_line(FILE *out, const struct flag *f)
{
    char left[48];
    snprintf(left, sizeof(left), "--%s%s%s", f->name, f->metavar ? " " : "",
             f->metavar ? f->metavar : "");
    fprintf(out, "  %-28s ", left);
    /* Word-wrapped at 100 columns, continuation lines under the text. */
    size_t col = 31;
    for (const char *p = f->help; *p != '\0';) {
        size_t word = strcspn(p, " ");
        if (col > 31 && col + 1 + word > 100) {
            fprintf(out, "\n%31s", "");
            col = 31;
        } else if (col > 31) {
            fputc(' ', out);
            col++;
        }
        fprintf(out, "%.*s", (int)word, p);
        col += word;
        p += word;
        p += strspn(p, " ");
    }
    fputc('\n', out);
}

void
tc_ctl_args_help(FILE *out, const char *allowed)
{
    bool any = false;
    for (size_t i = 0; i < TC_ARRAY_SIZE(flags); i++) {
        if (listed(allowed, flags[i].name, flags[i].variant, false)) {
            if (!any) {
                fprintf(out, "\nflags:\n");
                any = true;
            }
            help_line(out, &flags[i]);
        }
    }
    fprintf(out, "\nglobal flags (before or after the command):\n");
    for (size_t i = 0; i < TC_ARRAY_SIZE(globals); i++) {
        help_line(out, &globals[i]);
    }
}
