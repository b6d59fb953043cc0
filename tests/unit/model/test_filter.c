/* tocsin — SPDX-License-Identifier: MIT
 *
 * model/filter.c, query.c and match.c: filters from JSON and from query
 * strings (errors, URL decoding, bounds), tc_query_get, the match view the
 * store writes, and a matching table that includes global incidents and
 * min_impact.
 */
#include "model/filter.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
test_query_get(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(tc_query_get("a=1&b=2", "b", out, sizeof(out)), 1);
    assert_string_equal(out, "2");
    assert_int_equal(tc_query_get("?a=1&b=2", "a", out, sizeof(out)), 1);
    assert_string_equal(out, "1");
    /* A key is matched whole, not as a prefix or suffix. */
    assert_int_equal(tc_query_get("ab=1&xb=2", "b", out, sizeof(out)), TC_ENOENT);
    assert_int_equal(tc_query_get("b", "b", out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(tc_query_get("b=&c=1", "b", out, sizeof(out)), 0);
    assert_int_equal(tc_query_get("", "b", out, sizeof(out)), TC_ENOENT);
    assert_int_equal(tc_query_get(NULL, "b", out, sizeof(out)), TC_ENOENT);
    assert_int_equal(tc_query_get("&&b=x&", "b", out, sizeof(out)), 1);
    /* The first occurrence wins. */
    assert_int_equal(tc_query_get("b=1&b=22", "b", out, sizeof(out)), 1);
    assert_string_equal(out, "1");
    /* Decoding: + is a space, %XX either case, = inside a value is kept. */
    assert_int_equal(tc_query_get("q=a+b%2C%2cc%3D=d", "q", out, sizeof(out)), 9);
    assert_string_equal(out, "a b,,c==d");
    assert_int_equal(tc_query_get("q=%C3%A9", "q", out, sizeof(out)), 2);
    assert_string_equal(out, "\xC3\xA9");
    /* Bad escapes and a decoded NUL are refused, and out is left empty. */
    assert_int_equal(tc_query_get("q=%zz", "q", out, sizeof(out)), TC_EINVAL);
    assert_string_equal(out, "");
    assert_int_equal(tc_query_get("q=ab%4", "q", out, sizeof(out)), TC_EINVAL);
    assert_int_equal(tc_query_get("q=ab%", "q", out, sizeof(out)), TC_EINVAL);
    assert_int_equal(tc_query_get("q=%4&x=1", "q", out, sizeof(out)), TC_EINVAL);
    assert_int_equal(tc_query_get("q=a%00b", "q", out, sizeof(out)), TC_EINVAL);
    /* The bound: outlen - 1 bytes fit, one more does not. */
    char small[4];
    assert_int_equal(tc_query_get("q=abc", "q", small, sizeof(small)), 3);
    assert_string_equal(small, "abc");
    assert_int_equal(tc_query_get("q=abcd", "q", small, sizeof(small)), TC_ETOOBIG);
    assert_string_equal(small, "");
    assert_int_equal(tc_query_get("q=%41%41%41", "q", small, sizeof(small)), 3);
    assert_int_equal(tc_query_get("q=", "q", small, 0), TC_ETOOBIG);
}

static void
test_from_json(void **state)
{
    (void)state;
    struct tc_filter f;
    struct tc_error err;
    json_t *obj = json_loads("{\"components\":[\"playback\",\"search\"],\"regions\":[\"eu-west\"],"
                             "\"min_impact\":\"minor\"}",
                             0, NULL);
    assert_int_equal(tc_filter_from_json(obj, &f, &err), 0);
    assert_int_equal(f.ncomponents, 2);
    assert_string_equal(f.components[0], "playback");
    assert_string_equal(f.components[1], "search");
    assert_int_equal(f.nregions, 1);
    assert_string_equal(f.regions[0], "eu-west");
    assert_int_equal(f.min_impact, TC_IMPACT_MINOR);

    /* Round trip through tc_filter_to_json. */
    json_t *back = tc_filter_to_json(&f);
    assert_true(json_equal(back, obj));
    json_decref(back);
    json_decref(obj);
    tc_filter_fini(&f);
    assert_null(f.components);
    assert_int_equal(f.ncomponents, 0);

    assert_int_equal(tc_filter_from_json(NULL, &f, &err), 0);
    assert_int_equal(f.ncomponents + f.nregions, 0);
    assert_int_equal(f.min_impact, TC_IMPACT_NONE);
    back = tc_filter_to_json(&f);
    char *s = json_dumps(back, JSON_COMPACT);
    assert_string_equal(s, "{\"components\":[],\"regions\":[],\"min_impact\":\"none\"}");
    free(s);
    json_decref(back);
    tc_filter_fini(&f);
}

static void
test_from_json_errors(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        const char *error;
    } cases[] = {
        {"[]", "filter: must be a JSON object"},
        {"{\"component\":[]}", "component: unknown filter key"},
        {"{\"components\":[\"a\"],\"since\":1}", "since: unknown filter key"},
        {"{\"components\":\"playback\"}", "components: must be an array"},
        {"{\"components\":[\"ok\",\"Bad\"]}", "components[1]: must be 1-64"},
        {"{\"components\":[\"\"]}", "components[0]: must be 1-64"},
        {"{\"regions\":[1]}", "regions[0]: must be 1-64"},
        {"{\"regions\":null}", "regions: must be an array"},
        {"{\"min_impact\":\"severe\"}", "min_impact: must be none"},
        {"{\"min_impact\":2}", "min_impact: must be none"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *obj = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
        struct tc_filter f;
        struct tc_error err = {{0}};
        assert_non_null(obj);
        assert_int_equal(tc_filter_from_json(obj, &f, &err), TC_EINVAL);
        if (strncmp(err.text, cases[i].error, strlen(cases[i].error)) != 0) {
            print_error("%s: got \"%s\", want \"%s\"\n", cases[i].json, err.text, cases[i].error);
            fail();
        }
        /* A failed parse leaves nothing to free. */
        assert_null(f.components);
        assert_null(f.regions);
        json_decref(obj);
    }

    /* The item bound: 64 ids fit, 65 do not. */
    json_t *obj = json_object();
    json_t *arr = json_array();
    for (int i = 0; i < TC_FILTER_MAX_ITEMS; i++) {
        char id[8];
        snprintf(id, sizeof(id), "c%d", i);
        json_array_append_new(arr, json_string(id));
    }
    json_object_set(obj, "regions", arr);
    struct tc_filter f;
    struct tc_error err;
    assert_int_equal(tc_filter_from_json(obj, &f, &err), 0);
    assert_int_equal(f.nregions, TC_FILTER_MAX_ITEMS);
    tc_filter_fini(&f);
    json_array_append_new(arr, json_string("one-more"));
    assert_int_equal(tc_filter_from_json(obj, &f, &err), TC_EINVAL);
    assert_string_equal(err.text, "regions: at most 64 ids");
    json_decref(arr);
    json_decref(obj);
}

static void
test_from_query(void **state)
{
    (void)state;
    struct tc_filter f;
    struct tc_error err;
    assert_int_equal(tc_filter_from_query("components=playback,search&regions=eu-west&"
                                          "min_impact=minor&since=17&epoch=x&token=t",
                                          &f, &err),
                     0);
    assert_int_equal(f.ncomponents, 2);
    assert_string_equal(f.components[1], "search");
    assert_int_equal(f.nregions, 1);
    assert_string_equal(f.regions[0], "eu-west");
    assert_int_equal(f.min_impact, TC_IMPACT_MINOR);
    tc_filter_fini(&f);

    /* URL-encoded commas and empty values (= absent). */
    assert_int_equal(
        tc_filter_from_query("?components=play%2Cse%61rch&regions=&min_impact=", &f, &err), 0);
    assert_int_equal(f.ncomponents, 2);
    assert_string_equal(f.components[1], "search");
    assert_int_equal(f.nregions, 0);
    assert_int_equal(f.min_impact, TC_IMPACT_NONE);
    tc_filter_fini(&f);

    assert_int_equal(tc_filter_from_query("", &f, &err), 0);
    assert_int_equal(f.ncomponents, 0);
    tc_filter_fini(&f);
    assert_int_equal(tc_filter_from_query(NULL, &f, &err), 0);
    tc_filter_fini(&f);

    static const struct {
        const char *qs;
        const char *error;
    } bad[] = {
        {"components=a,,b", "components[1]: must be 1-64"},
        {"components=a,", "components[1]: must be 1-64"},
        {"components=Playback", "components[0]: must be 1-64"},
        {"regions=eu+west", "regions[0]: must be 1-64"},
        {"regions=eu%ZZ", "regions: bad URL encoding"},
        {"regions=eu%00", "regions: bad URL encoding"},
        {"min_impact=severe", "min_impact: must be none"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct tc_error e = {{0}};
        assert_int_equal(tc_filter_from_query(bad[i].qs, &f, &e), TC_EINVAL);
        if (strncmp(e.text, bad[i].error, strlen(bad[i].error)) != 0) {
            print_error("%s: got \"%s\", want \"%s\"\n", bad[i].qs, e.text, bad[i].error);
            fail();
        }
        assert_null(f.components);
    }

    /* 64 ids of 64 chars fit exactly; one more id, or one more char, does not. */
    size_t cap = strlen("components=") + 64 * 65 + 8;
    char *qs = malloc(cap);
    strcpy(qs, "components=");
    for (int i = 0; i < 64; i++) {
        char id[66];
        memset(id, 'a' + i % 26, 64);
        id[64] = i < 63 ? ',' : '\0';
        id[65] = '\0';
        strcat(qs, id);
    }
    assert_int_equal(tc_filter_from_query(qs, &f, &err), 0);
    assert_int_equal(f.ncomponents, 64);
    assert_int_equal(strlen(f.components[63]), 64);
    tc_filter_fini(&f);
    strcat(qs, "a");
    assert_int_equal(tc_filter_from_query(qs, &f, &err), TC_EINVAL);
    assert_string_equal(err.text, "components: too long");
    qs[strlen(qs) - 1] = '\0';
    memcpy(qs + strlen(qs) - 2, ",b", 2);
    assert_int_equal(tc_filter_from_query(qs, &f, &err), TC_EINVAL);
    assert_string_equal(err.text, "components: at most 64 ids");
    free(qs);
}

static void
test_match_parse(void **state)
{
    (void)state;
    const char *text = "{\"components\":[\"playback\",\"search\"],\"regions\":[\"eu-west\"],"
                       "\"global\":true,\"impact\":\"major\"}";
    struct tc_match *m = tc_match_parse(text, strlen(text));
    assert_non_null(m);
    const struct tc_match_view *v = tc_match_view(m);
    assert_int_equal(v->ncomponents, 2);
    assert_string_equal(v->components[1], "search");
    assert_int_equal(v->nregions, 1);
    assert_string_equal(v->regions[0], "eu-west");
    assert_true(v->global);
    assert_int_equal(v->impact, TC_IMPACT_MAJOR);
    tc_match_free(m);
    tc_match_free(NULL);

    /* regions and global may be left out: no regions means global. */
    text = "{\"components\":[\"a\"],\"impact\":\"none\"}";
    m = tc_match_parse(text, strlen(text));
    assert_non_null(m);
    assert_int_equal(tc_match_view(m)->nregions, 0);
    assert_true(tc_match_view(m)->global);
    tc_match_free(m);
    text = "{\"components\":[],\"regions\":[\"x\"],\"global\":false,\"impact\":\"critical\"}";
    m = tc_match_parse(text, strlen(text));
    assert_non_null(m);
    assert_false(tc_match_view(m)->global);
    tc_match_free(m);

    static const char *const bad[] = {
        "",
        "[]",
        "{\"components\":[\"a\"]}",
        "{\"components\":[\"a\"],\"impact\":\"huge\"}",
        "{\"components\":\"a\",\"impact\":\"none\"}",
        "{\"components\":[1],\"impact\":\"none\"}",
        "{\"components\":[\"a\"],\"regions\":[2],\"impact\":\"none\"}",
        "{\"components\":[\"a\"],\"global\":1,\"impact\":\"none\"}",
        "{\"components\":[\"a\"],\"impact\":\"none\",\"impact\":\"major\"}",
        "{\"components\":[\"a\"],\"impact\":\"none\"",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (tc_match_parse(bad[i], strlen(bad[i])) != NULL) {
            print_error("accepted %s\n", bad[i]);
            fail();
        }
    }
    assert_null(tc_match_parse(NULL, 0));
}

static void
test_match_table(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *filter; /* JSON */
        const char *view;   /* match view JSON */
        bool want;
    } rows[] = {
        {"empty filter matches all", "{}",
         "{\"components\":[\"a\"],\"regions\":[\"eu\"],\"global\":false,\"impact\":\"none\"}",
         true},
        {"component hit", "{\"components\":[\"x\",\"b\"]}",
         "{\"components\":[\"a\",\"b\"],\"regions\":[],\"global\":true,\"impact\":\"minor\"}",
         true},
        {"component miss", "{\"components\":[\"x\"]}",
         "{\"components\":[\"a\",\"b\"],\"regions\":[],\"global\":true,\"impact\":\"minor\"}",
         false},
        {"region hit", "{\"regions\":[\"us\",\"eu\"]}",
         "{\"components\":[\"a\"],\"regions\":[\"eu\"],\"global\":false,\"impact\":\"minor\"}",
         true},
        {"region miss", "{\"regions\":[\"us\"]}",
         "{\"components\":[\"a\"],\"regions\":[\"eu\"],\"global\":false,\"impact\":\"minor\"}",
         false},
        {"global incident reaches every region", "{\"regions\":[\"us\"]}",
         "{\"components\":[\"a\"],\"regions\":[],\"global\":true,\"impact\":\"minor\"}", true},
        {"once global stays global", "{\"regions\":[\"us\"]}",
         "{\"components\":[\"a\"],\"regions\":[\"eu\"],\"global\":true,\"impact\":\"minor\"}",
         true},
        {"no regions means global", "{\"regions\":[\"us\"]}",
         "{\"components\":[\"a\"],\"regions\":[],\"global\":false,\"impact\":\"minor\"}", true},
        {"filter without regions takes any region", "{\"components\":[\"a\"]}",
         "{\"components\":[\"a\"],\"regions\":[\"eu\"],\"global\":false,\"impact\":\"minor\"}",
         true},
        {"impact equal to min", "{\"min_impact\":\"major\"}",
         "{\"components\":[\"a\"],\"regions\":[],\"global\":true,\"impact\":\"major\"}", true},
        {"impact above min", "{\"min_impact\":\"minor\"}",
         "{\"components\":[\"a\"],\"regions\":[],\"global\":true,\"impact\":\"critical\"}", true},
        {"impact below min", "{\"min_impact\":\"major\"}",
         "{\"components\":[\"a\"],\"regions\":[],\"global\":true,\"impact\":\"minor\"}", false},
        {"none below minor", "{\"min_impact\":\"minor\"}",
         "{\"components\":[\"a\"],\"regions\":[],\"global\":true,\"impact\":\"none\"}", false},
        {"all three hold", "{\"components\":[\"a\"],\"regions\":[\"eu\"],\"min_impact\":\"minor\"}",
         "{\"components\":[\"a\"],\"regions\":[\"eu\"],\"global\":false,\"impact\":\"major\"}",
         true},
        {"component holds, region fails",
         "{\"components\":[\"a\"],\"regions\":[\"us\"],\"min_impact\":\"minor\"}",
         "{\"components\":[\"a\"],\"regions\":[\"eu\"],\"global\":false,\"impact\":\"major\"}",
         false},
        {"region holds, impact fails",
         "{\"components\":[\"a\"],\"regions\":[\"eu\"],\"min_impact\":\"critical\"}",
         "{\"components\":[\"a\"],\"regions\":[\"eu\"],\"global\":false,\"impact\":\"major\"}",
         false},
        {"prefix is no match", "{\"components\":[\"play\"]}",
         "{\"components\":[\"playback\"],\"regions\":[],\"global\":true,\"impact\":\"major\"}",
         false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        json_t *fj = json_loads(rows[i].filter, 0, NULL);
        struct tc_filter f;
        assert_int_equal(tc_filter_from_json(fj, &f, NULL), 0);
        struct tc_match *m = tc_match_parse(rows[i].view, strlen(rows[i].view));
        assert_non_null(m);
        if (tc_filter_match(&f, tc_match_view(m)) != rows[i].want) {
            print_error("row \"%s\": want %d\n", rows[i].name, rows[i].want);
            fail();
        }
        tc_match_free(m);
        tc_filter_fini(&f);
        json_decref(fj);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_get),        cmocka_unit_test(test_from_json),
        cmocka_unit_test(test_from_json_errors), cmocka_unit_test(test_from_query),
        cmocka_unit_test(test_match_parse),      cmocka_unit_test(test_match_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
