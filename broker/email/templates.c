/* tocsin — SPDX-License-Identifier: MIT
 *
 * The built-in email templates (syntax in template.h): the digest of
 * incident updates (context from tc_email_digest_build) and the
 * subscription confirmation ({"address","confirm_url","public_url"}), each
 * as text, HTML and subject. One job: these texts. A file of the same name
 * in the configured template directory replaces one (tc_email_templates_load).
 * The HTML is inline-styled and loads nothing external, so it reads the same
 * in every mail client and leaks no tracking request.
 */
#include "email/template.h"

#include <stddef.h>

/* clang-format off */

/* digest.txt */
static const char digest_txt[] =
    "{{#incidents}}\n"
    "{{title}}\n"
    "Status:     {{status_label}}\n"
    "Impact:     {{impact_label}}\n"
    "Components: {{components_label}}\n"
    "Regions:    {{regions_label}}\n"
    "Updated:    {{updated_label}}\n"
    "{{#message}}\n"
    "\n"
    "{{message}}\n"
    "{{/message}}\n"
    "\n"
    "{{#transitions}}\n"
    "  - {{#from_label}}{{from_label}} → {{/from_label}}{{to_label}}{{#at_label}} at {{at_label}}{{/at_label}}\n"
    "{{/transitions}}\n"
    "\n"
    "------------------------------------------------------------\n"
    "\n"
    "{{/incidents}}\n"
    "{{#public_url}}\n"
    "Current status of all services: {{public_url}}\n"
    "\n"
    "{{/public_url}}\n"
    "You receive this email because you subscribed to status updates.\n"
    "{{#unsubscribe_url}}\n"
    "Unsubscribe: {{unsubscribe_url}}\n"
    "{{/unsubscribe_url}}\n";

/* digest.html */
static const char digest_html[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>{{subject}}</title>\n"
    "</head>\n"
    "<body style=\"margin:0;padding:0;background-color:#f6f8fa;color:#1f2328;font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Helvetica,Arial,sans-serif;\">\n"
    "<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"background-color:#f6f8fa;\">\n"
    "<tr><td align=\"center\" style=\"padding:24px 12px;\">\n"
    "<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"max-width:600px;background-color:#ffffff;border:1px solid #d0d7de;border-radius:8px;\">\n"
    "<tr><td style=\"padding:18px 24px;border-bottom:1px solid #d0d7de;font-size:18px;font-weight:600;\">Status update</td></tr>\n"
    "{{#incidents}}\n"
    "<tr><td style=\"padding:20px 24px;border-bottom:1px solid #d0d7de;\">\n"
    "<span style=\"display:inline-block;padding:2px 10px;border-radius:12px;background-color:{{status_color}};color:#ffffff;font-size:13px;font-weight:600;\">{{status_label}}</span>\n"
    "<h2 style=\"margin:10px 0 8px 0;font-size:18px;line-height:1.3;\">{{title}}</h2>\n"
    "<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"font-size:14px;line-height:1.6;\">\n"
    "<tr><td style=\"padding-right:16px;color:#57606a;\">Impact</td><td>{{impact_label}}</td></tr>\n"
    "<tr><td style=\"padding-right:16px;color:#57606a;\">Components</td><td>{{components_label}}</td></tr>\n"
    "<tr><td style=\"padding-right:16px;color:#57606a;\">Regions</td><td>{{regions_label}}</td></tr>\n"
    "<tr><td style=\"padding-right:16px;color:#57606a;\">Updated</td><td>{{updated_label}}</td></tr>\n"
    "</table>\n"
    "{{#message}}\n"
    "<p style=\"margin:12px 0;font-size:14px;line-height:1.5;white-space:pre-wrap;\">{{message}}</p>\n"
    "{{/message}}\n"
    "<ul style=\"margin:8px 0 0 0;padding-left:20px;font-size:13px;line-height:1.6;color:#57606a;\">\n"
    "{{#transitions}}\n"
    "<li>{{#from_label}}{{from_label}} &rarr; {{/from_label}}<strong style=\"color:#1f2328;\">{{to_label}}</strong>{{#at_label}} at {{at_label}}{{/at_label}}</li>\n"
    "{{/transitions}}\n"
    "</ul>\n"
    "</td></tr>\n"
    "{{/incidents}}\n"
    "{{#public_url}}\n"
    "<tr><td style=\"padding:16px 24px;font-size:14px;\"><a href=\"{{public_url}}\" style=\"color:#0969da;\">View the status page</a></td></tr>\n"
    "{{/public_url}}\n"
    "</table>\n"
    "<p style=\"max-width:600px;margin:16px auto 0 auto;font-size:12px;line-height:1.5;color:#57606a;\">You receive this email because you subscribed to status updates.{{#unsubscribe_url}} <a href=\"{{unsubscribe_url}}\" style=\"color:#57606a;\">Unsubscribe</a>{{/unsubscribe_url}}</p>\n"
    "</td></tr>\n"
    "</table>\n"
    "</body>\n"
    "</html>\n";

/* digest.subject */
static const char digest_subject[] =
    "{{subject}}\n";

/* confirm.txt */
static const char confirm_txt[] =
    "Please confirm that you want status updates sent to {{address}}:\n"
    "\n"
    "{{confirm_url}}\n"
    "\n"
    "If you did not ask for this, ignore this email and nothing more will be sent.\n"
    "{{#public_url}}\n"
    "\n"
    "Status page: {{public_url}}\n"
    "{{/public_url}}\n";

/* confirm.html */
static const char confirm_html[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>Confirm your subscription</title>\n"
    "</head>\n"
    "<body style=\"margin:0;padding:0;background-color:#f6f8fa;color:#1f2328;font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Helvetica,Arial,sans-serif;\">\n"
    "<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"background-color:#f6f8fa;\">\n"
    "<tr><td align=\"center\" style=\"padding:24px 12px;\">\n"
    "<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"max-width:600px;background-color:#ffffff;border:1px solid #d0d7de;border-radius:8px;\">\n"
    "<tr><td style=\"padding:24px;font-size:15px;line-height:1.5;\">\n"
    "<p style=\"margin:0 0 16px 0;\">Please confirm that you want status updates sent to <strong>{{address}}</strong>.</p>\n"
    "<p style=\"margin:0 0 16px 0;\"><a href=\"{{confirm_url}}\" style=\"display:inline-block;padding:10px 18px;border-radius:6px;background-color:#1f883d;color:#ffffff;font-weight:600;text-decoration:none;\">Confirm subscription</a></p>\n"
    "<p style=\"margin:0;font-size:13px;color:#57606a;\">Or open this link: <a href=\"{{confirm_url}}\" style=\"color:#0969da;word-break:break-all;\">{{confirm_url}}</a></p>\n"
    "</td></tr>\n"
    "</table>\n"
    "<p style=\"max-width:600px;margin:16px auto 0 auto;font-size:12px;line-height:1.5;color:#57606a;\">If you did not ask for this, ignore this email and nothing more will be sent.{{#public_url}} <a href=\"{{public_url}}\" style=\"color:#57606a;\">Status page</a>{{/public_url}}</p>\n"
    "</td></tr>\n"
    "</table>\n"
    "</body>\n"
    "</html>\n";

/* confirm.subject */
static const char confirm_subject[] =
    "Confirm your subscription to status updates\n";

/* clang-format on */

struct builtin {
    const char *name;
    const char *text;
};

static const struct builtin builtins[TC_EMAIL_TPL_COUNT] = {
    [TC_EMAIL_TPL_DIGEST_TXT] = {"digest.txt", digest_txt},
    [TC_EMAIL_TPL_DIGEST_HTML] = {"digest.html", digest_html},
    [TC_EMAIL_TPL_DIGEST_SUBJECT] = {"digest.subject", digest_subject},
    [TC_EMAIL_TPL_CONFIRM_TXT] = {"confirm.txt", confirm_txt},
    [TC_EMAIL_TPL_CONFIRM_HTML] = {"confirm.html", confirm_html},
    [TC_EMAIL_TPL_CONFIRM_SUBJECT] = {"confirm.subject", confirm_subject},
};

const char *
tc_email_templates_name(enum tc_email_template_id id)
{
    return (int)id >= 0 && id < TC_EMAIL_TPL_COUNT ? builtins[id].name : NULL;
}

const char *
tc_email_templates_builtin(enum tc_email_template_id id)
{
    return (int)id >= 0 && id < TC_EMAIL_TPL_COUNT ? builtins[id].text : NULL;
}
