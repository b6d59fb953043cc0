/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of broker/email/address: a table of good and bad addresses,
 * each row naming its rule — CR/LF and other control characters (SMTP
 * injection), '@' count, local part 64/65, total 254/255, label 63/64,
 * domain 253/254, single-label domains, dots, forbidden characters — and
 * domain lower-casing.
 */
#include "email/address.h"
#include "util/util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

struct addr_case {
    const char *rule;
    const char *addr;
    int rc;
    const char *err; /* a substring of err->text, for refusals */
};

/* clang-format off */
static const struct addr_case cases[] = {
    {"plain", "user@example.test", TC_OK, NULL},
    {"localhost", "x@localhost", TC_OK, NULL},
    {"LOCALHOST any case", "x@LocalHost", TC_OK, NULL},
    {"shortest", "a@b.c", TC_OK, NULL},
    {"dots and plus", "first.last+tag@mail.example.test", TC_OK, NULL},
    {"every atext", "!#$%&'*+-/=?^_`{|}~@example.test", TC_OK, NULL},
    {"digits and hyphen in label", "u@a-1.b2.example", TC_OK, NULL},
    {"upper-case domain", "User@Example.TEST", TC_OK, NULL},

    {"empty", "", TC_EINVAL, "shorter than 3"},
    {"two bytes", "a@", TC_EINVAL, "shorter than 3"},
    {"no @", "user.example.test", TC_EINVAL, "no '@'"},
    {"two @", "a@b@example.test", TC_EINVAL, "more than one '@'"},
    {"CR LF injection", "user@example.test\r\nRCPT TO:<x@evil.test>", TC_EINVAL, "control"},
    {"LF alone", "user@example.test\n", TC_EINVAL, "control"},
    {"CR alone", "user\r@example.test", TC_EINVAL, "control"},
    {"TAB", "us\ter@example.test", TC_EINVAL, "control"},
    {"DEL", "us\x7f" "er@example.test", TC_EINVAL, "control"},
    {"space", "us er@example.test", TC_EINVAL, "space"},
    {"non-ASCII", "j\xc3\xb6rg@example.test", TC_EINVAL, "non-ASCII"},
    {"empty local", "@example.test", TC_EINVAL, "local part is empty"},
    {"empty domain", "user@", TC_EINVAL, "domain is empty"},
    {"leading dot", ".user@example.test", TC_EINVAL, "dot"},
    {"trailing dot", "user.@example.test", TC_EINVAL, "dot"},
    {"double dot", "us..er@example.test", TC_EINVAL, "two dots"},
    {"quoted local part", "\"us er\"@example.test", TC_EINVAL, "space"},
    {"quote", "\"user\"@example.test", TC_EINVAL, "forbidden character"},
    {"angle brackets", "<user@example.test>", TC_EINVAL, "forbidden character"},
    {"comma (address list)", "a,b@example.test", TC_EINVAL, "forbidden character"},
    {"semicolon", "a;b@example.test", TC_EINVAL, "forbidden character"},
    {"colon", "a:b@example.test", TC_EINVAL, "forbidden character"},
    {"backslash", "a\\b@example.test", TC_EINVAL, "forbidden character"},
    {"parenthesis (comment)", "user(x)@example.test", TC_EINVAL, "forbidden character"},
    {"square bracket", "a[b@example.test", TC_EINVAL, "forbidden character"},
    {"address literal", "user@[127.0.0.1]", TC_EINVAL, "outside [A-Za-z0-9-]"},
    {"single-label domain", "user@intranet", TC_EINVAL, "single label"},
    {"trailing root dot", "user@example.test.", TC_EINVAL, "empty label"},
    {"leading dot in domain", "user@.example.test", TC_EINVAL, "empty label"},
    {"double dot in domain", "user@example..test", TC_EINVAL, "empty label"},
    {"label starts with hyphen", "user@-example.test", TC_EINVAL, "'-'"},
    {"label ends with hyphen", "user@example-.test", TC_EINVAL, "'-'"},
    {"underscore in domain", "user@ex_ample.test", TC_EINVAL, "outside [A-Za-z0-9-]"},
    {"percent in domain", "user@example%.test", TC_EINVAL, "outside [A-Za-z0-9-]"},
};
/* clang-format on */

/* Builds c repeated n times into buf (which holds n + 1). */
static char *
rep(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

static void
check(const char *rule, const char *addr, int want, const char *want_err)
{
    struct tc_error err = {{0}};
    int rc = tc_email_address_check(addr, &err);

    if (rc != want) {
        fail_msg("%s: rc %d, want %d (%s)", rule, rc, want, err.text);
    }
    if (want_err != NULL && strstr(err.text, want_err) == NULL) {
        fail_msg("%s: error '%s' does not say '%s'", rule, err.text, want_err);
    }
    /* err may be NULL and gives the same verdict. */
    assert_int_equal(tc_email_address_check(addr, NULL), want);
}

static void
test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < TC_ARRAY_SIZE(cases); i++) {
        check(cases[i].rule, cases[i].addr, cases[i].rc, cases[i].err);
    }
    check("NULL", NULL, TC_EINVAL, "missing");
}

static void
test_lengths(void **state)
{
    char local[80], label[80], addr[600];
    (void)state;

    /* Local part 64 / 65. */
    snprintf(addr, sizeof(addr), "%s@example.test", rep(local, 'a', 64));
    check("local 64", addr, TC_OK, NULL);
    snprintf(addr, sizeof(addr), "%s@example.test", rep(local, 'a', 65));
    check("local 65", addr, TC_EINVAL, "longer than 64");

    /* Label 63 / 64. */
    snprintf(addr, sizeof(addr), "u@%s.test", rep(label, 'b', 63));
    check("label 63", addr, TC_OK, NULL);
    snprintf(addr, sizeof(addr), "u@%s.test", rep(label, 'b', 64));
    check("label 64", addr, TC_EINVAL, "label is longer than 63");

    /* Total 254 / 255: 64 + '@' + 63 + '.' + 63 + '.' + 61 / 62. */
    char last[80];
    rep(local, 'a', 64);
    rep(label, 'c', 63);
    snprintf(addr, sizeof(addr), "%s@%s.%s.%s", local, label, label, rep(last, 'd', 61));
    assert_int_equal(strlen(addr), 254);
    check("total 254", addr, TC_OK, NULL);
    snprintf(addr, sizeof(addr), "%s@%s.%s.%s", local, label, label, rep(last, 'd', 62));
    assert_int_equal(strlen(addr), 255);
    check("total 255", addr, TC_EINVAL, "longer than 254");

    /* A hostile long string is refused by length, not scanned whole. */
    char big[4096];
    rep(big, 'x', sizeof(big) - 1);
    big[10] = '@';
    check("4 KiB", big, TC_EINVAL, "longer than 254");
}

static void
test_domain_check(void **state)
{
    char dom[400], label[80];
    struct tc_error err;
    (void)state;

    assert_int_equal(tc_email_domain_check("example.test", NULL), TC_OK);
    assert_int_equal(tc_email_domain_check("localhost", NULL), TC_OK);
    assert_int_equal(tc_email_domain_check("mail", &err), TC_EINVAL);
    assert_int_equal(tc_email_domain_check(NULL, &err), TC_EINVAL);
    assert_int_equal(tc_email_domain_check("", &err), TC_EINVAL);

    /* 253 / 254 bytes: three labels of 63, one of 61 / 62, three dots. */
    char last[80];
    rep(label, 'e', 63);
    snprintf(dom, sizeof(dom), "%s.%s.%s.%s", label, label, label, rep(last, 'f', 61));
    assert_int_equal(strlen(dom), 253);
    assert_int_equal(tc_email_domain_check(dom, &err), TC_OK);
    snprintf(dom, sizeof(dom), "%s.%s.%s.%s", label, label, label, rep(last, 'f', 62));
    assert_int_equal(strlen(dom), 254);
    assert_int_equal(tc_email_domain_check(dom, &err), TC_EINVAL);
    assert_non_null(strstr(err.text, "longer than 253"));
}

static void
test_normalize(void **state)
{
    char a[] = "First.Last@Example.TEST";
    char b[] = "no-at-sign";
    (void)state;

    tc_email_address_normalize(a);
    assert_string_equal(a, "First.Last@example.test");
    tc_email_address_normalize(b);
    assert_string_equal(b, "no-at-sign");
    tc_email_address_normalize(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_domain_check),
        cmocka_unit_test(test_normalize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
