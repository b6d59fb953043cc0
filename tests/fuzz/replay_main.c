/* tocsin — SPDX-License-Identifier: MIT
 *
 * A stand-in for libFuzzer's main, so every fuzz target also builds with gcc
 * and ctest replays its corpus in the normal and the sanitizer builds. Each
 * argument is a file or a directory (its files, recursively, in name order);
 * each file is one call of LLVMFuzzerTestOneInput with exactly its bytes in a
 * heap block of that size, so ASan sees a read past the end. Arguments that
 * start with '-' are libFuzzer options and are ignored, so one command line
 * serves both builds. It does not mutate anything: that is libFuzzer's job.
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>

static size_t replayed;

/* Reads the whole file. @returns new (never NULL, even for 0 bytes) or NULL
 * with errno set. */
static uint8_t *
read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    struct stat st;

    if (f == NULL) {
        return NULL;
    }
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0) {
        fclose(f);
        return NULL;
    }
    /* Exactly st_size bytes (one for an empty file), so a target that
     * reads past its input overflows a heap block. */
    buf = tc_xmalloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    *size = fread(buf, 1, (size_t)st.st_size, f);
    if (ferror(f) || *size != (size_t)st.st_size) {
        free(buf);
        buf = NULL;
        errno = EIO;
    }
    fclose(f);
    return buf;
}

static int
replay_file(const char *path)
{
    size_t size = 0;
    uint8_t *data = read_all(path, &size);

    if (data == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    /* Named before the call: if it crashes, this is the last line. */
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, size);
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    replayed++;
    return 0;
}

static int
skip_hidden(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

static int
replay_path(const char *path)
{
    struct stat st;
    struct dirent **names = NULL;
    int n, rc = 0;

    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        return replay_file(path);
    }
    n = scandir(path, &names, skip_hidden, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char *child = tc_xasprintf("%s/%s", path, names[i]->d_name);
        if (rc == 0) {
            rc = replay_path(child);
        }
        free(child);
        free(names[i]);
    }
    free(names);
    return rc;
}

int
main(int argc, char **argv)
{
    bool any = false;

    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') {
            continue;
        }
        any = true;
        if (replay_path(argv[i]) != 0) {
            return 1;
        }
    }
    if (!any) {
        fprintf(stderr, "usage: %s FILE|DIR...  (replays each input once)\n", argv[0]);
        return 2;
    }
    /* An empty corpus would pass without testing anything. */
    if (replayed == 0) {
        fprintf(stderr, "replay: no input found\n");
        return 1;
    }
    printf("replay: %zu inputs, no invariant broken\n", replayed);
    return 0;
}
