/* tocsin — SPDX-License-Identifier: MIT
 *
 * Email address checks (DESIGN §6): the one gate an address passes before it
 * is stored, put in a header field or handed to libcurl, which copies CR/LF
 * straight into SMTP commands. Pure: no DNS, no I/O, any thread.
 * Deliberately narrower than RFC 5321: no quoted local parts, no address
 * literals, no comments, ASCII only (no SMTPUTF8).
 */
#ifndef TC_EMAIL_ADDRESS_H
#define TC_EMAIL_ADDRESS_H

#include "util/util.h"

/* Longest accepted address in bytes (RFC 5321 path limit 256 minus "<>"). */
#define TC_EMAIL_ADDRESS_MAX 254
#define TC_EMAIL_LOCAL_MAX   64
#define TC_EMAIL_DOMAIN_MAX  253
#define TC_EMAIL_LABEL_MAX   63

/* Checks that addr is `local@domain` under these rules:
 *  - 3..254 bytes in all, printable ASCII only (no control character such as
 *    CR, LF, TAB or NUL, no space, no byte >= 0x80), exactly one '@';
 *  - local part: 1..64 bytes of RFC 5322 atext (A-Z a-z 0-9 and
 *    !#$%&'*+-/=?^_`{|}~) and '.', with no leading, trailing or double dot;
 *    so no quotes and none of <>()[],;:\" (the '|' of atext is allowed);
 *  - domain: as tc_email_domain_check.
 * err->text (when err is given) names the rule broken, e.g. "local part is
 * longer than 64 bytes". @borrows addr. Returns 0 or TC_EINVAL (also for NULL). */
int tc_email_address_check(const char *addr, struct tc_error *err);

/* Checks a host name: 1..253 bytes of dot-separated labels, each 1..63 of
 * [A-Za-z0-9-] not starting or ending with '-'. At least two labels are
 * required (a bare host name is not a mail domain), except the single label
 * "localhost" (any case), which development setups and tests use
 * (x@localhost). No trailing root dot, no address literal ("[10.0.0.1]").
 * Returns 0 or TC_EINVAL with err->text naming the rule. @borrows domain. */
int tc_email_domain_check(const char *domain, struct tc_error *err);

/* Lower-cases the domain of an address in place (the part after the last
 * '@'); the local part is left alone because RFC 5321 lets the receiving
 * server treat it as case-sensitive. Call it after tc_email_address_check so
 * that one mailbox is stored once. NULL is a no-op. */
void tc_email_address_normalize(char *addr);

#endif
