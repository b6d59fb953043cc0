/* tocsin — SPDX-License-Identifier: MIT
 *
 * librdkafka's log lines routed into tc_log (logfmt on stderr), and the one
 * helper every rd_kafka_conf_set in this folder goes through so no errstr is
 * ever ignored. The log callback runs on librdkafka's own threads; tc_log_write
 * is thread-safe.
 */
#include "ingest/ingest_internal.h"
#include "log/log.h"
#include "util/util.h"

#include <string.h>

void
tc_ingest__log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enum tc_log_level lvl;

    /* librdkafka uses syslog levels: 0-3 errors, 4 warnings, 5-6 info. */
    if (level <= 3) {
        lvl = TC_LOG_ERROR;
    } else if (level == 4) {
        lvl = TC_LOG_WARN;
    } else if (level <= 6) {
        lvl = TC_LOG_INFO;
    } else {
        lvl = TC_LOG_DEBUG;
    }
    tc_log(lvl, "kafka", buf, TC_S("client", rk != NULL ? rd_kafka_name(rk) : ""),
           TC_S("fac", fac));
}

int
tc_ingest__conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, struct tc_error *err)
{
    char errstr[256];

    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        return tc_error_set(err, TC_EINVAL, "kafka conf %s: %s", key, errstr);
    }
    return 0;
}
