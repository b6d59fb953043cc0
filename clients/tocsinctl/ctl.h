/* tocsin — SPDX-License-Identifier: MIT
 *
 * tocsinctl's shared vocabulary: the exit codes scripts may trust, the
 * context every command runs with (server URL, token, timeout, output mode)
 * and the one-line error report on stderr. Commands live in cmd_*.c and
 * main.c dispatches to them; no command keeps state past its return.
 */
#ifndef TC_CTL_H
#define TC_CTL_H

#include "args.h"

#include <stdbool.h>
#include <stdint.h>

/* Exit codes (documented in --help and README.md). */
enum tc_ctl_exit {
    TC_CTL_OK = 0,
    TC_CTL_REFUSED = 1,     /* the server answered 4xx (other than 404) */
    TC_CTL_USAGE = 2,       /* a bad flag or argument, caught before anything was sent */
    TC_CTL_UNREACHABLE = 3, /* no answer, a 5xx, or Kafka did not take the event */
    TC_CTL_NOT_FOUND = 4,   /* the server answered 404: no such incident, webhook, ... */
};

/* What every command gets. */
struct tc_ctl {
    const char *cmd;             /* "publish", "webhooks add": the prefix of messages */
    const char *sub;             /* "add" for "webhooks add", NULL for a plain command */
    const struct tc_ctl_opts *o; /* the parsed command line, borrowed from main */
    char *url;                   /* owned: the server's base URL without a trailing '/' */
    char *token;                 /* owned: the admin token, NULL when none was given */
    uint64_t timeout_ms;         /* per request (connect + answer) */
    bool json;                   /* --json: one JSON document on stdout */
};

/* Prints "tocsinctl: <cmd>: <message>" on stderr and returns code, so a
 * command can `return tc_ctl_fail(ctl, TC_CTL_USAGE, "...")`. */
int tc_ctl_fail(const struct tc_ctl *ctl, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A command: @returns its exit code. Each is in cmd_<name>.c. */
typedef int (*tc_ctl_cmd_fn)(struct tc_ctl *ctl);

int tc_ctl_cmd_publish(struct tc_ctl *ctl);
int tc_ctl_cmd_update(struct tc_ctl *ctl);
int tc_ctl_cmd_resolve(struct tc_ctl *ctl);
int tc_ctl_cmd_incidents(struct tc_ctl *ctl);
int tc_ctl_cmd_show(struct tc_ctl *ctl);
int tc_ctl_cmd_tail(struct tc_ctl *ctl);
int tc_ctl_cmd_token(struct tc_ctl *ctl);
/* These two dispatch on ctl->sub. */
int tc_ctl_cmd_webhooks(struct tc_ctl *ctl);
int tc_ctl_cmd_subscribers(struct tc_ctl *ctl);

#endif
