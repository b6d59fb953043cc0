/* tocsin — SPDX-License-Identifier: MIT
 *
 * Email templates: a small logic-less engine (a Mustache subset) compiled
 * once at start-up and rendered per message, and the set of named templates
 * the gateway uses (built-ins from templates.c, each replaceable by a file).
 * Rendering is pure; tc_email_templates_load reads files and is meant for
 * start-up only. A compiled template is immutable, so any thread may render it.
 *
 * Syntax: {{name}} and {{a.b}} (looked up through the context stack, innermost
 * first, as Mustache does; HTML-escaped when rendering HTML), {{{name}}} and
 * {{&name}} (never escaped), {{.}} (the current item), {{#name}}...{{/name}}
 * (once per item of a non-empty array; once for a true, an object, a non-empty
 * string or a non-zero number, pushed as the current context),
 * {{^name}}...{{/name}} (when the value is missing, null, false, "", 0 or
 * []), {{! comment}}. A line holding only a section, inverted, closing or
 * comment tag (and blanks) is dropped whole, as in Mustache. Partials and
 * delimiter changes are not supported.
 */
#ifndef TC_EMAIL_TEMPLATE_H
#define TC_EMAIL_TEMPLATE_H

#include "util/util.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define TC_EMAIL_TEMPLATE_SRC_MAX   (256 << 10) /* bytes of template text */
#define TC_EMAIL_TEMPLATE_DEPTH_MAX 16          /* nested sections */
#define TC_EMAIL_TEMPLATE_NAME_MAX  128         /* bytes of one tag name */
/* Ops one render may visit (each text, name, section item): tens of ms of
 * work. The longest digest (200 updates) under the built-in templates takes
 * tens of thousands; a render that would pass it fails with TC_ETOOBIG. */
#define TC_EMAIL_TEMPLATE_STEPS_MAX (4 << 20)
/* Default output bound for tc_email_templates_render (the MIME part bound). */
#define TC_EMAIL_TEMPLATE_OUT_MAX (512 << 10)

struct tc_email_template;

/* Compiles src[0..len) (UTF-8). name is used in error texts only, e.g. the
 * file name: "digest.html:12: {{/incident}} closes {{#incidents}} (line 3)".
 * Returns 0 and a new *out (free with tc_email_template_free), or TC_EINVAL
 * (bad syntax, invalid UTF-8) / TC_ETOOBIG (over TC_EMAIL_TEMPLATE_SRC_MAX or
 * TC_EMAIL_TEMPLATE_DEPTH_MAX), with *out NULL. @borrows name and src. */
int tc_email_template_compile(const char *name, const char *src, size_t len,
                              struct tc_email_template **out, struct tc_error *err);
void tc_email_template_free(struct tc_email_template *t);

/* Renders t with the context ctx (usually an object; @borrows it) into a new
 * NUL-terminated *out of *outlen bytes (caller frees). html selects HTML
 * escaping of {{name}} (& < > " ' as entities); otherwise values go out as
 * they are. Strings render as is, integers and integral reals as integers,
 * other reals in %.15g, true/false as words, null, objects, arrays and
 * missing names as nothing. Returns 0, or TC_ETOOBIG when the output would
 * pass max bytes or the work TC_EMAIL_TEMPLATE_STEPS_MAX (*out NULL; err
 * says which). */
int tc_email_template_render(const struct tc_email_template *t, const json_t *ctx, bool html,
                             size_t max, char **out, size_t *outlen, struct tc_error *err);

/* The named set the email gateway uses (tc_email_templates_*, where
 * tc_email_template_* is one compiled template). File names in comments. */
enum tc_email_template_id {
    TC_EMAIL_TPL_DIGEST_TXT,      /* digest.txt: context from tc_email_digest_build */
    TC_EMAIL_TPL_DIGEST_HTML,     /* digest.html */
    TC_EMAIL_TPL_DIGEST_SUBJECT,  /* digest.subject */
    TC_EMAIL_TPL_CONFIRM_TXT,     /* confirm.txt: {"address","confirm_url","public_url"} */
    TC_EMAIL_TPL_CONFIRM_HTML,    /* confirm.html */
    TC_EMAIL_TPL_CONFIRM_SUBJECT, /* confirm.subject */
    TC_EMAIL_TPL_COUNT
};

/* File name of a template ("digest.html"); NULL for an unknown id. (templates.c) */
const char *tc_email_templates_name(enum tc_email_template_id id);
/* Built-in text of a template; NULL for an unknown id. (templates.c) */
const char *tc_email_templates_builtin(enum tc_email_template_id id);

struct tc_email_templates {
    struct tc_email_template *tpl[TC_EMAIL_TPL_COUNT];
};

/* Compiles every template into t (uninitialised on entry): the file
 * <dir>/<name> when it exists, else the built-in. dir NULL or "" means
 * built-ins only. Errors name the file ("/etc/tocsin/mail/digest.html:3:
 * ..."): TC_EINVAL (syntax), TC_ETOOBIG (file too large), TC_EIO (a file
 * that exists but cannot be read). On failure t holds nothing to free.
 * @loop start-up (reads files). */
int tc_email_templates_load(struct tc_email_templates *t, const char *dir, struct tc_error *err);
void tc_email_templates_fini(struct tc_email_templates *t);

/* Renders template id with ctx: HTML escaping for the .html ones; for the
 * .subject ones, every run of whitespace or control characters becomes one
 * space and the ends are trimmed, so a subject is always one line (it still
 * goes through tc_email_mime_build's checks). Same returns as
 * tc_email_template_render; TC_EINVAL for an unknown id or a set not loaded. */
int tc_email_templates_render(const struct tc_email_templates *t, enum tc_email_template_id id,
                              const json_t *ctx, size_t max, char **out, size_t *outlen,
                              struct tc_error *err);

#endif
