/* tocsin — SPDX-License-Identifier: MIT
 *
 * tocsinctl's command line: one table of every flag (name, type, where its
 * value goes, help text), the parser that fills struct tc_ctl_opts from it,
 * and the flag lines of --help printed from the same table, so the help
 * cannot drift from what is accepted. Knows nothing about the commands.
 */
#ifndef TC_CTL_ARGS_H
#define TC_CTL_ARGS_H

#include "util/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Most values of one repeatable flag (--link, --component-status); more is a
 * usage error. */
#define TC_CTL_LIST_MAX 32
/* Most positional words after the command. */
#define TC_CTL_ARGS_MAX 4

/* The values of a repeatable flag, in the order given. */
struct tc_ctl_list {
    const char *v[TC_CTL_LIST_MAX]; /* borrowed from argv */
    size_t n;
};

/* Every flag's value; strings are borrowed from argv, NULL when not given. */
struct tc_ctl_opts {
    /* global */
    const char *url;
    const char *token_file;
    const char *timeout;
    bool json;
    bool help;
    /* incident fields (publish, update, resolve) */
    const char *id;
    const char *title;
    const char *components; /* also the filter flag */
    const char *regions;    /* also the filter flag */
    const char *impact;
    const char *status;
    const char *message;
    const char *kind;
    const char *version;
    const char *affected_users;
    struct tc_ctl_list links;
    struct tc_ctl_list component_status;
    const char *kafka;
    const char *topic;
    /* filters */
    const char *min_impact;
    /* webhooks */
    const char *description;
    /* tail */
    const char *since;
    const char *epoch;
    bool snapshot;
    /* token */
    const char *ttl;
    const char *secret_file;
    /* positional words after the command (and subcommand) */
    const char *args[TC_CTL_ARGS_MAX];
    int nargs;
};

/* Parses argv[0..argc) into o. `allowed` names the flags this command takes,
 * space-separated without "--"; a name may carry a help variant after '@'
 * ("components@filter"); the global flags are always allowed. With
 * stop_at_word, stops before the first positional word (the command).
 * @returns the number of words consumed, or TC_EINVAL with err naming the
 * flag ("--colour: unknown flag"). */
int tc_ctl_args_parse(int argc, char **argv, const char *allowed, bool stop_at_word,
                      struct tc_ctl_opts *o, struct tc_error *err);

/* Prints one help line per flag in allowed, then the global flags. */
void tc_ctl_args_help(FILE *out, const char *allowed);

#endif
