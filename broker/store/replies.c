/* tocsin — SPDX-License-Identifier: MIT
 *
 * What the gateways' store calls share (see store_internal.h): making and
 * sending a request of strings, and decoding the reply — a count, a JSON
 * text, a list of JSON texts joined into an array, a pair of counts.
 * Scripts answer -1 for "no such thing" and -2 for "not in this state".
 */
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

struct tc_store__req *
tc_store__cmd_req(struct tc_store *s, int script, tc_store__done_fn fn, int aux, void *arg)
{
    struct tc_store__req *req = tc_store__req_new(&s->cmd, script, fn);

    req->aux = aux;
    req->arg = arg;
    return req;
}

void
tc_store__submit_strs(struct tc_store *s, struct tc_store__req *req, int argc, const char **argv)
{
    size_t argvlen[32];

    if (argc < 0 || argc > (int)TC_ARRAY_SIZE(argvlen)) {
        abort();
    }
    for (int i = 0; i < argc; i++) {
        argvlen[i] = strlen(argv[i]);
    }
    tc_store__submit(req, argc, argv, argvlen, s->cfg->redis_timeout_ms);
}

void
tc_store__count_done(struct tc_store__req *req, int status, const redisReply *reply)
{
    long long n = 0;

    if (status == 0) {
        if (reply->type != REDIS_REPLY_INTEGER) {
            status = TC_EIO;
        } else if (reply->integer == -1 ||
                   (reply->integer == 0 && req->aux == TC_STORE__ZERO_ENOENT)) {
            status = TC_ENOENT;
        } else if (reply->integer < 0) {
            status = TC_EIO;
        } else {
            n = reply->integer;
        }
    }
    req->cb.count(req->arg, status, status == 0 ? (uint64_t)n : 0);
}

void
tc_store__json_done(struct tc_store__req *req, int status, const redisReply *reply)
{
    if (status == 0 && reply->type == REDIS_REPLY_INTEGER) {
        status = reply->integer == -1 ? TC_ENOENT : reply->integer == -2 ? TC_ESTATE : TC_EIO;
    }
    if (status != 0) {
        req->cb.json(req->arg, status, NULL, 0);
    } else if (reply->type == REDIS_REPLY_NIL) {
        req->cb.json(req->arg, TC_ENOENT, NULL, 0);
    } else if (reply->type == REDIS_REPLY_STRING) {
        req->cb.json(req->arg, 0, reply->str, reply->len);
    } else {
        req->cb.json(req->arg, TC_EIO, NULL, 0);
    }
}

void
tc_store__list_done(struct tc_store__req *req, int status, const redisReply *reply)
{
    size_t total = 2;

    if (status == 0 && reply->type != REDIS_REPLY_ARRAY) {
        status = TC_EIO;
    }
    for (size_t i = 0; status == 0 && i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_STRING) {
            status = TC_EIO;
            break;
        }
        total += reply->element[i]->len + 1;
    }
    if (status != 0) {
        req->cb.json(req->arg, status, NULL, 0);
        return;
    }
    char *text = tc_xmalloc(total + 1), *p = text;
    *p++ = '[';
    for (size_t i = 0; i < reply->elements; i++) {
        if (i > 0) {
            *p++ = ',';
        }
        memcpy(p, reply->element[i]->str, reply->element[i]->len);
        p += reply->element[i]->len;
    }
    *p++ = ']';
    *p = '\0';
    req->cb.json(req->arg, 0, text, (size_t)(p - text));
    free(text);
}

void
tc_store__pair_done(struct tc_store__req *req, int status, const redisReply *reply)
{
    long long v[2] = {0, 0};

    if (status == 0 && (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)) {
        status = TC_EIO;
    }
    for (size_t i = 0; status == 0 && i < 2; i++) {
        if (reply->element[i]->type != REDIS_REPLY_INTEGER || reply->element[i]->integer < 0) {
            status = TC_EIO;
        } else {
            v[i] = reply->element[i]->integer;
        }
    }
    if (status != 0) {
        v[0] = v[1] = 0;
    }
    req->cb.pair(req->arg, status, (uint64_t)v[0], (uint64_t)v[1]);
}
