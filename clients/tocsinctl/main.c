/* tocsin — SPDX-License-Identifier: MIT
 *
 * tocsinctl, the operator CLI (DESIGN §7): the command table, --help for
 * each command from that table, the global settings (URL, token, timeout)
 * and dispatch to cmd_*.c. It owns nothing that outlives one command.
 */
#include "ctl.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_URL        "http://127.0.0.1:8080"
#define DEFAULT_TIMEOUT_MS 10000
/* Longest admin token read from --token-file. */
#define TOKEN_MAX 1024

#define EXIT_CODES                                                                    \
    "exit codes:\n"                                                                   \
    "  0  done\n"                                                                     \
    "  1  refused: the server answered 4xx (bad field, 401 no or wrong token, 409\n"  \
    "     conflict), Kafka refused the event, or a webhook test was not delivered\n"  \
    "  2  usage: a bad flag or argument (the message names it); nothing was sent\n"   \
    "  3  unreachable: no answer in time, a 5xx or 503, or no Kafka broker took it\n" \
    "  4  not found: the server answered 404 (no such incident, webhook, subscriber)\n"

#define FILTER_FLAGS "components@filter regions@filter min-impact"
#define INCIDENT_FLAGS \
    "title status impact message components regions affected-users link component-status"

struct command {
    const char *group; /* "webhooks", or NULL for a plain command */
    const char *name;
    const char *args;  /* positional synopsis */
    int nargs;         /* exactly this many positional words */
    const char *flags; /* see tc_ctl_args_parse */
    const char *summary;
    const char *details; /* printed under the usage line by --help */
    tc_ctl_cmd_fn run;
};

static const struct command commands[] = {
    {NULL, "publish", "", 0, "id kind version kafka topic " INCIDENT_FLAGS,
     "open an incident (via the API, or straight to Kafka with --kafka)",
     "Opens an incident with POST /v1/incidents (admin token): the server gives it\n"
     "event_id, version 1 and occurred_at. --title and --components are required;\n"
     "--status defaults to investigating (scheduled for --kind maintenance) and\n"
     "--impact to minor (none for maintenance). With --kafka BROKERS the whole event\n"
     "is produced to the topic instead (key = incident id, acks=all) after the\n"
     "server's own validation; tocsinctl fills event_id, occurred_at and --version\n"
     "(default 1: give the next version to publish a later state this way).\n"
     "  tocsinctl publish --title 'Playback errors' --components playback --impact major\n"
     "  tocsinctl publish --kafka 127.0.0.1:9092 --id inc-42 --version 3 --status resolved ...\n",
     tc_ctl_cmd_publish},
    {NULL, "update", "ID", 1, "version " INCIDENT_FLAGS,
     "change an incident (only the fields given)",
     "POST /v1/incidents/ID/updates with the fields given (admin token). --version N\n"
     "makes the update conditional: 409 (exit 1) if the incident moved on.\n"
     "  tocsinctl update inc-42 --status identified --message 'Cause found'\n",
     tc_ctl_cmd_update},
    {NULL, "resolve", "ID", 1, "message version", "end an incident (resolved, or completed)",
     "Sets status resolved (completed for a maintenance) with POST\n"
     "/v1/incidents/ID/updates. An incident that has ended already is left alone\n"
     "and the command succeeds, so scripts may retry it.\n",
     tc_ctl_cmd_resolve},
    {NULL, "incidents", "", 0, FILTER_FLAGS, "list the active incidents",
     "GET /v1/incidents: a table of id, impact, status, title and last update\n"
     "(newest first), or the server's document with --json.\n",
     tc_ctl_cmd_incidents},
    {NULL, "show", "ID", 1, "", "one incident's state and timeline",
     "GET /v1/incidents/ID: the current state and the updates kept in history.\n", tc_ctl_cmd_show},
    {NULL, "tail", "", 0, FILTER_FLAGS " since epoch snapshot", "follow live updates (WebSocket)",
     "Prints one line per update as it happens (--json: the server's update\n"
     "messages, one JSON document per line). After a disconnect it reconnects with\n"
     "the last seq and epoch (exponential backoff with jitter) and misses nothing;\n"
     "if the server cannot replay exactly it says so and prints the active incidents.\n"
     "--since/--epoch resume from a point a previous tail --json printed.\n"
     "Status notes go to stderr; Ctrl-C ends it with exit 0.\n",
     tc_ctl_cmd_tail},
    {NULL, "token", "", 0, "components@token ttl secret-file",
     "mint a client token (when tocsind has auth.client_secret)",
     "Prints an HS256 client token (a JWT) signed with auth.client_secret, read from\n"
     "--secret-file or $TOCSIN_AUTH_CLIENT_SECRET. Nothing is sent: the token is made\n"
     "here. Apps pass it as ?token= (WebSocket, SSE) or Authorization: Bearer.\n"
     "  TOCSIN_AUTH_CLIENT_SECRET=... tocsinctl token --components playback --ttl 1h\n",
     tc_ctl_cmd_token},
    {"webhooks", "list", "", 0, "", "list webhook endpoints", NULL, tc_ctl_cmd_webhooks},
    {"webhooks", "add", "URL", 1,
     "filter-components filter-regions filter-min-impact " FILTER_FLAGS " description",
     "add an endpoint; prints its secret (shown once)",
     "POST /v1/webhooks. Only updates matching the filter flags are sent to URL.\n",
     tc_ctl_cmd_webhooks},
    {"webhooks", "show", "ID", 1, "", "an endpoint, its queue and last attempts", NULL,
     tc_ctl_cmd_webhooks},
    {"webhooks", "rm", "ID", 1, "", "delete an endpoint and its queue", NULL, tc_ctl_cmd_webhooks},
    {"webhooks", "replay", "ID", 1, "", "queue the dead-lettered deliveries again", NULL,
     tc_ctl_cmd_webhooks},
    {"webhooks", "rotate-secret", "ID", 1, "", "new secret (the old one stays valid a while)", NULL,
     tc_ctl_cmd_webhooks},
    {"webhooks", "enable", "ID", 1, "", "enable an endpoint that was disabled", NULL,
     tc_ctl_cmd_webhooks},
    {"webhooks", "test", "ID", 1, "", "send a signed test message now (exit 1 if not taken)", NULL,
     tc_ctl_cmd_webhooks},
    {"subscribers", "list", "", 0, "", "list email subscribers", NULL, tc_ctl_cmd_subscribers},
    {"subscribers", "add", "ADDRESS", 1,
     FILTER_FLAGS " filter-components filter-regions filter-min-impact",
     "subscribe an address (confirmed at once)",
     "POST /v1/email-subscribers. Only updates matching the filter flags are mailed.\n",
     tc_ctl_cmd_subscribers},
    {"subscribers", "show", "ID", 1, "", "a subscriber, its queue and last attempts", NULL,
     tc_ctl_cmd_subscribers},
    {"subscribers", "rm", "ID", 1, "", "delete a subscriber", NULL, tc_ctl_cmd_subscribers},
};

int
tc_ctl_fail(const struct tc_ctl *ctl, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fflush(stdout); /* so the error lands after what was already printed */
    fprintf(stderr, "tocsinctl: %s%s%s\n", ctl != NULL && ctl->cmd ? ctl->cmd : "",
            ctl != NULL && ctl->cmd ? ": " : "", msg);
    return code;
}

static bool
is_group(const char *word)
{
    for (size_t i = 0; i < TC_ARRAY_SIZE(commands); i++) {
        if (commands[i].group != NULL && strcmp(commands[i].group, word) == 0) {
            return true;
        }
    }
    return false;
}

static const struct command *
find_command(const char *group, const char *name)
{
    for (size_t i = 0; i < TC_ARRAY_SIZE(commands); i++) {
        const struct command *c = &commands[i];
        if ((group == NULL) == (c->group == NULL) &&
            (group == NULL || strcmp(c->group, group) == 0) && strcmp(c->name, name) == 0) {
            return c;
        }
    }
    return NULL;
}

static void
usage(FILE *out)
{
    fprintf(out, "usage: tocsinctl [global flags] COMMAND [arguments] [flags]\n\n"
                 "The operator CLI of tocsin, the notification fan-out broker.\n\ncommands:\n");
    const char *last_group = NULL;
    for (size_t i = 0; i < TC_ARRAY_SIZE(commands); i++) {
        const struct command *c = &commands[i];
        char left[64];
        if (c->group != NULL && (last_group == NULL || strcmp(last_group, c->group) != 0)) {
            fprintf(out, "  %s\n", c->group);
            last_group = c->group;
        }
        snprintf(left, sizeof(left), "%s%s%s%s", c->group ? "  " : "", c->name,
                 c->args[0] ? " " : "", c->args);
        fprintf(out, "  %-26s %s\n", left, c->summary);
    }
    fprintf(out, "\nRun `tocsinctl COMMAND --help` for a command's flags.\n");
    tc_ctl_args_help(out, "");
    fprintf(out, "\n" EXIT_CODES);
}

static void
group_usage(FILE *out, const char *group)
{
    fprintf(out, "usage: tocsinctl %s SUBCOMMAND [arguments] [flags]\n\nsubcommands:\n", group);
    for (size_t i = 0; i < TC_ARRAY_SIZE(commands); i++) {
        const struct command *c = &commands[i];
        if (c->group != NULL && strcmp(c->group, group) == 0) {
            char left[64];
            snprintf(left, sizeof(left), "%s%s%s", c->name, c->args[0] ? " " : "", c->args);
            fprintf(out, "  %-24s %s\n", left, c->summary);
        }
    }
    fprintf(out,
            "\nRun `tocsinctl %s SUBCOMMAND --help` for its flags. These need the admin\n"
            "token ($TOCSIN_ADMIN_TOKEN or --token-file).\n",
            group);
    fprintf(out, "\n" EXIT_CODES);
}

static void
command_help(FILE *out, const struct command *c)
{
    fprintf(out, "usage: tocsinctl %s%s%s%s%s [flags]\n\n%s%s\n", c->group ? c->group : "",
            c->group ? " " : "", c->name, c->args[0] ? " " : "", c->args, c->summary,
            c->group ? " (admin token)" : "");
    if (c->details != NULL) {
        fprintf(out, "\n%s", c->details);
    }
    tc_ctl_args_help(out, c->flags);
    fprintf(out, "\n" EXIT_CODES);
}

/* Reads the token file: the first line, surrounding whitespace removed. */
static int
read_token(struct tc_ctl *ctl, const char *path)
{
    char buf[TOKEN_MAX + 2];
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return tc_ctl_fail(ctl, TC_CTL_USAGE, "--token-file: cannot open %s", path);
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    char *s = buf + strspn(buf, " \t");
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) {
        s[--len] = '\0';
    }
    if (len == 0 || n > TOKEN_MAX) {
        return tc_ctl_fail(ctl, TC_CTL_USAGE, "--token-file: %s holds no token of 1-%d bytes", path,
                           TOKEN_MAX);
    }
    ctl->token = tc_xstrdup(s);
    return TC_CTL_OK;
}

/* URL, token and timeout from flags and environment. */
static int
settings(struct tc_ctl *ctl, const struct tc_ctl_opts *o)
{
    const char *url = o->url != NULL ? o->url : getenv("TOCSIN_URL");
    if (url == NULL || url[0] == '\0') {
        url = DEFAULT_URL;
    }
    if ((strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
        strpbrk(url, " \t\r\n?#") != NULL) {
        return tc_ctl_fail(ctl, TC_CTL_USAGE,
                           "--url: '%.200s' is not an http:// or https:// base URL", url);
    }
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/') {
        len--;
    }
    ctl->url = tc_xstrndup(url, len);
    ctl->timeout_ms = DEFAULT_TIMEOUT_MS;
    if (o->timeout != NULL && (tc_parse_duration_ms(o->timeout, &ctl->timeout_ms) != TC_OK ||
                               ctl->timeout_ms == 0 || ctl->timeout_ms > 3600000)) {
        return tc_ctl_fail(ctl, TC_CTL_USAGE,
                           "--timeout: '%.40s' is not a duration of 1ms-1h (e.g. 500ms, 10s)",
                           o->timeout);
    }
    if (o->token_file != NULL) {
        return read_token(ctl, o->token_file);
    }
    const char *token = getenv("TOCSIN_ADMIN_TOKEN");
    if (token != NULL && token[0] != '\0') {
        ctl->token = tc_xstrdup(token);
    }
    return TC_CTL_OK;
}

static int
dispatch(int argc, char **argv, struct tc_ctl_opts *o, struct tc_ctl *ctl)
{
    struct tc_error err;
    int i = tc_ctl_args_parse(argc, argv, "", true, o, &err);
    if (i < 0) {
        return tc_ctl_fail(ctl, TC_CTL_USAGE, "%s (see tocsinctl --help)", err.text);
    }
    if (i == argc) {
        if (o->help) {
            usage(stdout);
            return TC_CTL_OK;
        }
        return tc_ctl_fail(ctl, TC_CTL_USAGE, "which command? (see tocsinctl --help)");
    }
    const char *group = NULL, *name = argv[i++];
    if (strcmp(name, "help") == 0) {
        usage(stdout);
        return TC_CTL_OK;
    }
    if (is_group(name)) {
        group = name;
        if (i == argc || argv[i][0] == '-') {
            if (i < argc && (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)) {
                group_usage(stdout, group);
                return TC_CTL_OK;
            }
            ctl->cmd = group;
            return tc_ctl_fail(ctl, TC_CTL_USAGE, "which one? (see tocsinctl %s --help)", group);
        }
        name = argv[i++];
    }
    const struct command *c = find_command(group, name);
    if (c == NULL) {
        ctl->cmd = group;
        return tc_ctl_fail(ctl, TC_CTL_USAGE, "%.80s: unknown command (see tocsinctl %s%s--help)",
                           name, group ? group : "", group ? " " : "");
    }
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "%s%s%s", group ? group : "", group ? " " : "", c->name);
    ctl->cmd = cmd;
    ctl->sub = group != NULL ? c->name : NULL;
    if (tc_ctl_args_parse(argc - i, argv + i, c->flags, false, o, &err) < 0) {
        return tc_ctl_fail(ctl, TC_CTL_USAGE, "%s (see tocsinctl %s --help)", err.text, cmd);
    }
    if (o->help) {
        command_help(stdout, c);
        return TC_CTL_OK;
    }
    if (o->nargs < c->nargs) {
        return tc_ctl_fail(ctl, TC_CTL_USAGE, "%s: required (see tocsinctl %s --help)", c->args,
                           cmd);
    }
    if (o->nargs > c->nargs) {
        return tc_ctl_fail(ctl, TC_CTL_USAGE,
                           "unexpected argument '%.80s' (see tocsinctl %s --help)",
                           o->args[c->nargs], cmd);
    }
    int rc = settings(ctl, o);
    if (rc != TC_CTL_OK) {
        return rc;
    }
    ctl->json = o->json;
    rc = c->run(ctl);
    ctl->cmd = NULL; /* points into this frame */
    return rc;
}

int
main(int argc, char **argv)
{
    struct tc_ctl_opts o = {0};
    struct tc_ctl ctl = {.o = &o};
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("tocsinctl %s\n", TOCSIN_VERSION);
        return TC_CTL_OK;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "tocsinctl: libcurl could not start\n");
        return TC_CTL_UNREACHABLE;
    }
    int rc = dispatch(argc - 1, argv + 1, &o, &ctl);
    free(ctl.url);
    free(ctl.token);
    curl_global_cleanup();
    return rc;
}
