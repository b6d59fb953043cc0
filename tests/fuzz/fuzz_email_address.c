/* tocsin — SPDX-License-Identifier: MIT
 *
 * Fuzz target: the email address gate (email/address.h), which every address
 * of a subscription body passes before it is stored or reaches libcurl's SMTP
 * commands. An accepted address is re-checked rule by rule here: printable
 * ASCII only (so no CR, LF or NUL can reach SMTP), one '@', bounded parts,
 * RFC 5322 atext. Normalizing keeps it accepted, keeps the local part, lower-
 * cases the domain, and is idempotent. A string with no NUL in its first 255
 * bytes is refused after reading at most those bytes.
 */
#include "email/address.h"
#include "fuzz.h"

#include <stdbool.h>
#include <strings.h>

static bool
atext(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static void
check_accepted(const char *a)
{
    size_t n = strlen(a);
    const char *at = strchr(a, '@');

    FUZZ_CHECKF(n >= 3 && n <= TC_EMAIL_ADDRESS_MAX, "length %zu", n);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECKF(a[i] > 0x20 && a[i] < 0x7F, "byte 0x%02x at %zu", (unsigned char)a[i], i);
    }
    FUZZ_CHECK(at != NULL && strchr(at + 1, '@') == NULL);

    size_t local = (size_t)(at - a);
    FUZZ_CHECK(local >= 1 && local <= TC_EMAIL_LOCAL_MAX);
    FUZZ_CHECK(a[0] != '.' && a[local - 1] != '.');
    for (size_t i = 0; i < local; i++) {
        FUZZ_CHECKF(atext(a[i]) || (a[i] == '.' && a[i + 1] != '.'), "local part of \"%s\"", a);
    }

    const char *d = at + 1;
    size_t dn = strlen(d), labels = 0;
    FUZZ_CHECK(dn >= 1 && dn <= TC_EMAIL_DOMAIN_MAX);
    FUZZ_CHECK(tc_email_domain_check(d, NULL) == TC_OK);
    for (const char *l = d; l != NULL; labels++) {
        const char *dot = strchr(l, '.');
        size_t ln = dot != NULL ? (size_t)(dot - l) : strlen(l);
        FUZZ_CHECKF(ln >= 1 && ln <= TC_EMAIL_LABEL_MAX, "label of \"%s\"", d);
        FUZZ_CHECK(l[0] != '-' && l[ln - 1] != '-');
        for (size_t i = 0; i < ln; i++) {
            FUZZ_CHECK((l[i] >= 'a' && l[i] <= 'z') || (l[i] >= 'A' && l[i] <= 'Z') ||
                       (l[i] >= '0' && l[i] <= '9') || l[i] == '-');
        }
        l = dot != NULL ? dot + 1 : NULL;
    }
    FUZZ_CHECKF(labels >= 2 || strcasecmp(d, "localhost") == 0, "domain \"%s\"", d);
}

static void
check_normalize(const char *a, bool accepted)
{
    char *norm = tc_xstrdup(a);
    const char *last_at = strrchr(a, '@');

    tc_email_address_normalize(norm);
    FUZZ_CHECK(strlen(norm) == strlen(a));
    for (size_t i = 0; a[i] != '\0'; i++) {
        bool in_domain = last_at != NULL && a + i > last_at;
        char want = in_domain && a[i] >= 'A' && a[i] <= 'Z' ? (char)(a[i] - 'A' + 'a') : a[i];
        FUZZ_CHECKF(norm[i] == want, "byte %zu of \"%s\" → \"%s\"", i, a, norm);
    }
    if (accepted) {
        FUZZ_CHECK(tc_email_address_check(norm, NULL) == TC_OK);
    }
    char *twice = tc_xstrdup(norm);
    tc_email_address_normalize(twice);
    FUZZ_CHECK(strcmp(twice, norm) == 0);
    free(twice);
    free(norm);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *a = fuzz_cstr(data, size);
    struct tc_error err = {{0}};
    int rc = tc_email_address_check(a, &err);

    FUZZ_CHECK(rc == TC_OK || rc == TC_EINVAL);
    if (rc == TC_OK) {
        check_accepted(a);
    } else {
        FUZZ_CHECK(err.text[0] != '\0');
    }
    check_normalize(a, rc == TC_OK);
    /* The domain check alone, on the same text. */
    rc = tc_email_domain_check(a, &err);
    FUZZ_CHECK(rc == TC_OK || rc == TC_EINVAL);
    free(a);

    /* A long string without NUL: the checks read at most their bound + 1
     * bytes (the heap block ends there, so ASan sees any read past it). */
    if (size > TC_EMAIL_ADDRESS_MAX && memchr(data, '\0', TC_EMAIL_ADDRESS_MAX + 1) == NULL) {
        char *raw = tc_xmalloc(TC_EMAIL_ADDRESS_MAX + 1);
        memcpy(raw, data, TC_EMAIL_ADDRESS_MAX + 1);
        FUZZ_CHECK(tc_email_address_check(raw, NULL) == TC_EINVAL);
        FUZZ_CHECK(tc_email_domain_check(raw, NULL) == TC_EINVAL);
        free(raw);
    }
    return 0;
}
