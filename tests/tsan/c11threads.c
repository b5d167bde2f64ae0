/* SPDX-License-Identifier: MIT */
/*
 * C11 threads over the pthread functions ThreadSanitizer intercepts, for the
 * HOOKD_SANITIZE=thread build only.
 *
 * librdkafka uses C11 threads (thrd_create, mtx_lock, cnd_wait...). glibc
 * (2.34 and later) implements them by calling its pthread internals
 * directly, not through the public symbols, and the TSan runtime of GCC 12
 * and clang 14 has no interceptor for them: a thread librdkafka starts is
 * unknown to TSan (its first malloc crashes the runtime), and its mutexes
 * and condition variables order nothing as far as TSan can see. Every
 * executable and module of the TSan build links this library first, so
 * librdkafka's calls bind here and reach the intercepted pthread functions.
 * glibc defines mtx_t, cnd_t and once_flag with the layout of
 * pthread_mutex_t, pthread_cond_t and pthread_once_t, as these casts need.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>
#include <time.h>

typedef struct start {
    thrd_start_t func;
    void *arg;
} start_t;

static void *trampoline(void *p)
{
    start_t s = *(start_t *)p;
    free(p);
    return (void *)(intptr_t)s.func(s.arg);
}

static int to_thrd(int err)
{
    switch (err) {
    case 0:
        return thrd_success;
    case ENOMEM:
        return thrd_nomem;
    case EBUSY:
        return thrd_busy;
    case ETIMEDOUT:
        return thrd_timedout;
    default:
        return thrd_error;
    }
}

int thrd_create(thrd_t *thr, thrd_start_t func, void *arg)
{
    start_t *s = malloc(sizeof(*s));
    pthread_t t;
    int err;
    if (s == NULL)
        return thrd_nomem;
    s->func = func;
    s->arg = arg;
    err = pthread_create(&t, NULL, trampoline, s);
    if (err != 0) {
        free(s);
        return to_thrd(err);
    }
    *thr = (thrd_t)t;
    return thrd_success;
}

int thrd_join(thrd_t thr, int *res)
{
    void *ret;
    int err = pthread_join((pthread_t)thr, &ret);
    if (err == 0 && res != NULL)
        *res = (int)(intptr_t)ret;
    return to_thrd(err);
}

int thrd_detach(thrd_t thr)
{
    return to_thrd(pthread_detach((pthread_t)thr));
}

void thrd_exit(int res)
{
    pthread_exit((void *)(intptr_t)res);
}

int mtx_init(mtx_t *m, int type)
{
    pthread_mutexattr_t attr;
    int err;
    pthread_mutexattr_init(&attr);
    if (type & mtx_recursive)
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    err = pthread_mutex_init((pthread_mutex_t *)m, &attr);
    pthread_mutexattr_destroy(&attr);
    return to_thrd(err);
}

void mtx_destroy(mtx_t *m)
{
    pthread_mutex_destroy((pthread_mutex_t *)m);
}

int mtx_lock(mtx_t *m)
{
    return to_thrd(pthread_mutex_lock((pthread_mutex_t *)m));
}

int mtx_trylock(mtx_t *m)
{
    return to_thrd(pthread_mutex_trylock((pthread_mutex_t *)m));
}

int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict ts)
{
    return to_thrd(pthread_mutex_timedlock((pthread_mutex_t *)m, ts));
}

int mtx_unlock(mtx_t *m)
{
    return to_thrd(pthread_mutex_unlock((pthread_mutex_t *)m));
}

int cnd_init(cnd_t *c)
{
    return to_thrd(pthread_cond_init((pthread_cond_t *)c, NULL));
}

void cnd_destroy(cnd_t *c)
{
    pthread_cond_destroy((pthread_cond_t *)c);
}

int cnd_signal(cnd_t *c)
{
    return to_thrd(pthread_cond_signal((pthread_cond_t *)c));
}

int cnd_broadcast(cnd_t *c)
{
    return to_thrd(pthread_cond_broadcast((pthread_cond_t *)c));
}

int cnd_wait(cnd_t *c, mtx_t *m)
{
    return to_thrd(pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m));
}

int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict ts)
{
    return to_thrd(pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, ts));
}

void call_once(once_flag *flag, void (*func)(void))
{
    pthread_once((pthread_once_t *)flag, func);
}
