/* tocsin — SPDX-License-Identifier: MIT
 *
 * tc-validate-event: judges incident event files with the broker's own
 * validator (model/incident.c), one line per file argument:
 * "<path>\tvalid" or "<path>\tinvalid\t<error text>". Used by
 * tests/e2e/test_schema_diff.py to hold the C rules against the schema.
 * Exit status: 0 when every file was read, 2 when one could not be.
 */
#include "model/incident.h"

#include <stdio.h>
#include <stdlib.h>

/* Reads at most TC_EVENT_MAX_BYTES + 1 bytes: enough for the parser to see
 * that a bigger file is over the bound, without holding all of it. */
static char *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (f == NULL) {
        return NULL;
    }
    buf = tc_xmalloc(TC_EVENT_MAX_BYTES + 1);
    *len = fread(buf, 1, TC_EVENT_MAX_BYTES + 1, f);
    if (ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

int
main(int argc, char **argv)
{
    int status = 0;
    for (int i = 1; i < argc; i++) {
        size_t len = 0;
        char *buf = read_file(argv[i], &len);
        if (buf == NULL) {
            fprintf(stderr, "%s: cannot read\n", argv[i]);
            status = 2;
            continue;
        }
        struct tc_event ev;
        struct tc_error err = {{0}};
        if (tc_event_parse(buf, len, &ev, &err) == 0) {
            printf("%s\tvalid\n", argv[i]);
            tc_event_fini(&ev);
        } else {
            /* Keep the line one line: the error may quote the input. */
            for (char *c = err.text; *c != '\0'; c++) {
                if ((unsigned char)*c < 0x20) {
                    *c = ' ';
                }
            }
            printf("%s\tinvalid\t%s\n", argv[i], err.text);
        }
        free(buf);
    }
    return status;
}
