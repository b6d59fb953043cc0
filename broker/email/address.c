/* tocsin — SPDX-License-Identifier: MIT
 *
 * Email address and domain checks (see address.h). Every check works on the
 * bounded length first, so a hostile multi-megabyte string costs at most 255
 * bytes of scanning. Does not resolve anything and does not allocate.
 */
#include "email/address.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static bool
is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 5322 atext: the characters a dot-atom local part may hold besides '.'. */
static bool
is_atext(char c)
{
    return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int
domain_check(const char *d, size_t n, struct tc_error *err)
{
    size_t labels = 0;

    if (n == 0) {
        return tc_error_set(err, TC_EINVAL, "domain is empty");
    }
    if (n > TC_EMAIL_DOMAIN_MAX) {
        return tc_error_set(err, TC_EINVAL, "domain is longer than %d bytes", TC_EMAIL_DOMAIN_MAX);
    }
    for (size_t start = 0; start <= n; labels++) {
        const char *dot = memchr(d + start, '.', n - start);
        size_t end = dot != NULL ? (size_t)(dot - d) : n;
        size_t len = end - start;

        if (len == 0) {
            return tc_error_set(err, TC_EINVAL, "domain has an empty label");
        }
        if (len > TC_EMAIL_LABEL_MAX) {
            return tc_error_set(err, TC_EINVAL, "domain label is longer than %d bytes",
                                TC_EMAIL_LABEL_MAX);
        }
        for (size_t i = start; i < end; i++) {
            if (!is_alnum(d[i]) && d[i] != '-') {
                return tc_error_set(err, TC_EINVAL,
                                    "domain label has a character outside [A-Za-z0-9-]");
            }
        }
        if (d[start] == '-' || d[end - 1] == '-') {
            return tc_error_set(err, TC_EINVAL, "domain label starts or ends with '-'");
        }
        start = end + 1;
    }
    if (labels == 1 && !(n == 9 && strncasecmp(d, "localhost", 9) == 0)) {
        return tc_error_set(err, TC_EINVAL, "domain has a single label (only localhost may)");
    }
    return TC_OK;
}

int
tc_email_domain_check(const char *domain, struct tc_error *err)
{
    size_t n;

    if (domain == NULL) {
        return tc_error_set(err, TC_EINVAL, "domain is missing");
    }
    n = strnlen(domain, TC_EMAIL_DOMAIN_MAX + 1);
    return domain_check(domain, n, err);
}

static int
local_check(const char *l, size_t n, struct tc_error *err)
{
    if (n == 0) {
        return tc_error_set(err, TC_EINVAL, "local part is empty");
    }
    if (n > TC_EMAIL_LOCAL_MAX) {
        return tc_error_set(err, TC_EINVAL, "local part is longer than %d bytes",
                            TC_EMAIL_LOCAL_MAX);
    }
    if (l[0] == '.' || l[n - 1] == '.') {
        return tc_error_set(err, TC_EINVAL, "local part starts or ends with a dot");
    }
    for (size_t i = 0; i < n; i++) {
        if (l[i] == '.') {
            if (l[i + 1] == '.') {
                return tc_error_set(err, TC_EINVAL, "local part has two dots in a row");
            }
        } else if (!is_atext(l[i])) {
            /* Quotes, brackets, commas, backslashes...: either quoted-string
             * syntax we do not accept or address-list syntax. */
            return tc_error_set(err, TC_EINVAL, "local part has a forbidden character '%c'", l[i]);
        }
    }
    return TC_OK;
}

int
tc_email_address_check(const char *addr, struct tc_error *err)
{
    const char *at = NULL;
    size_t n, ats = 0;

    if (addr == NULL) {
        return tc_error_set(err, TC_EINVAL, "address is missing");
    }
    n = strnlen(addr, TC_EMAIL_ADDRESS_MAX + 1);
    if (n > TC_EMAIL_ADDRESS_MAX) {
        return tc_error_set(err, TC_EINVAL, "address is longer than %d bytes",
                            TC_EMAIL_ADDRESS_MAX);
    }
    /* Control characters first: they are the SMTP injection this check
     * exists for, so they are named even when another rule also fails. */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)addr[i];
        if (c < 0x20 || c == 0x7F) {
            return tc_error_set(err, TC_EINVAL, "address has a control character (0x%02X)", c);
        }
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)addr[i];
        if (c == ' ') {
            return tc_error_set(err, TC_EINVAL, "address has a space");
        }
        if (c >= 0x80) {
            return tc_error_set(err, TC_EINVAL, "address has a non-ASCII byte");
        }
        if (c == '@') {
            at = addr + i;
            ats++;
        }
    }
    if (n < 3) {
        return tc_error_set(err, TC_EINVAL, "address is shorter than 3 bytes");
    }
    if (ats != 1) {
        return tc_error_set(err, TC_EINVAL,
                            ats == 0 ? "address has no '@'" : "address has more than one '@'");
    }
    int rc = local_check(addr, (size_t)(at - addr), err);
    if (rc != TC_OK) {
        return rc;
    }
    return domain_check(at + 1, n - (size_t)(at + 1 - addr), err);
}

void
tc_email_address_normalize(char *addr)
{
    char *at;

    if (addr == NULL || (at = strrchr(addr, '@')) == NULL) {
        return;
    }
    for (char *p = at + 1; *p != '\0'; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            *p = (char)(*p - 'A' + 'a');
        }
    }
}
