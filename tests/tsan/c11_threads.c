/* tocsin — SPDX-License-Identifier: MIT
 *
 * Linked into every program of a ThreadSanitizer build (-DTOCSIN_SANITIZE=
 * thread), nowhere else. librdkafka uses C11 threads (thrd_create, mtx_lock,
 * cnd_wait, ...), which glibc implements by calling its pthread internals
 * directly, and the TSan runtimes of gcc 12 and clang 14 intercept only the
 * pthread entry points. So TSan would never see librdkafka's threads start
 * (they crash in its allocator at their first malloc), be joined, or take a
 * lock: every handover through librdkafka would look like a race. These
 * definitions, found before glibc's by the dynamic linker (as the
 * sanitizers' own interceptors are), do what glibc does through the public
 * pthread functions that TSan intercepts. glibc's mtx_t, cnd_t and
 * once_flag are its pthread types under other names, as its own
 * implementation assumes. Nothing else changes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

_Static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t), "glibc: mtx_t is a pthread mutex");
_Static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t), "glibc: cnd_t is a pthread cond");
_Static_assert(sizeof(once_flag) == sizeof(pthread_once_t), "glibc: once_flag is pthread_once_t");

/* pthread error numbers as C11 results, as glibc maps them. */
static int
thrd_result(int rc)
{
    switch (rc) {
    case 0:
        return thrd_success;
    case ENOMEM:
        return thrd_nomem;
    case ETIMEDOUT:
        return thrd_timedout;
    case EBUSY:
        return thrd_busy;
    default:
        return thrd_error;
    }
}

struct start {
    thrd_start_t fn;
    void *arg;
};

static void *
run(void *p)
{
    struct start s = *(struct start *)p;
    free(p);
    /* thrd_join reads the int result back from the pointer. */
    return (void *)(intptr_t)s.fn(s.arg);
}

int
thrd_create(thrd_t *thr, thrd_start_t fn, void *arg)
{
    struct start *s = malloc(sizeof(*s));
    if (s == NULL) {
        return thrd_nomem;
    }
    s->fn = fn;
    s->arg = arg;
    int rc = pthread_create(thr, NULL, run, s);
    if (rc != 0) {
        free(s);
        return rc == EAGAIN ? thrd_nomem : thrd_result(rc);
    }
    return thrd_success;
}

int
thrd_join(thrd_t thr, int *res)
{
    void *ret = NULL;
    int rc = pthread_join(thr, &ret);
    if (rc == 0 && res != NULL) {
        *res = (int)(intptr_t)ret;
    }
    return thrd_result(rc);
}

int
thrd_detach(thrd_t thr)
{
    return thrd_result(pthread_detach(thr));
}

int
mtx_init(mtx_t *m, int type)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    if (type & mtx_recursive) {
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    }
    int rc = pthread_mutex_init((pthread_mutex_t *)m, &attr);
    pthread_mutexattr_destroy(&attr);
    return thrd_result(rc);
}

int
mtx_lock(mtx_t *m)
{
    return thrd_result(pthread_mutex_lock((pthread_mutex_t *)m));
}

int
mtx_trylock(mtx_t *m)
{
    return thrd_result(pthread_mutex_trylock((pthread_mutex_t *)m));
}

int
mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict ts)
{
    return thrd_result(pthread_mutex_timedlock((pthread_mutex_t *)m, ts));
}

int
mtx_unlock(mtx_t *m)
{
    return thrd_result(pthread_mutex_unlock((pthread_mutex_t *)m));
}

void
mtx_destroy(mtx_t *m)
{
    pthread_mutex_destroy((pthread_mutex_t *)m);
}

int
cnd_init(cnd_t *c)
{
    return thrd_result(pthread_cond_init((pthread_cond_t *)c, NULL));
}

int
cnd_signal(cnd_t *c)
{
    return thrd_result(pthread_cond_signal((pthread_cond_t *)c));
}

int
cnd_broadcast(cnd_t *c)
{
    return thrd_result(pthread_cond_broadcast((pthread_cond_t *)c));
}

int
cnd_wait(cnd_t *c, mtx_t *m)
{
    return thrd_result(pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m));
}

int
cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict ts)
{
    return thrd_result(pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, ts));
}

void
cnd_destroy(cnd_t *c)
{
    pthread_cond_destroy((pthread_cond_t *)c);
}

void
call_once(once_flag *flag, void (*fn)(void))
{
    pthread_once((pthread_once_t *)flag, fn);
}
