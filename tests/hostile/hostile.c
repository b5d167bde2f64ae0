/* SPDX-License-Identifier: MIT */
/*
 * A deliberately hostile handler for the isolation tests and the benchmark.
 * What pre_hook does is chosen by the event's certificate_name, so one
 * loaded file covers every misbehaviour:
 *
 *   ok         return HOOKD_OK
 *   fail       return HOOKD_FAIL with an error message
 *   segv       dereference NULL (SIGSEGV)
 *   abort      abort() (SIGABRT)
 *   exit3      exit(3) from inside the handler
 *   hang       sleep forever
 *   spin       busy loop forever (CPU)
 *   forkbomb   fork without end (refused when running as root: there
 *              RLIMIT_NPROC does not apply and the bomb would hit the host)
 *   forkhang   fork a grandchild that sleeps forever, then return OK
 *   leakfd     open descriptors and never close them, return OK
 *   allocbomb  allocate and touch memory until malloc fails, return FAIL
 *   closehang  close every descriptor, then sleep forever
 *   garbage    write junk on every socket it holds, then return OK
 *   halfclose  fork a grandchild and return OK; once a byte is written to
 *              the FIFO $HOSTILE_TRIGGER, the grandchild shuts down the
 *              writing side of every socket it holds (the worker reads EOF,
 *              the child lives on), then creates the file $HOSTILE_MARKER
 *
 * success_hook and post_hook return OK: the phase seam is what is tested.
 */
#include <acme_hookd/hook.h>

/*
 * Under valgrind, the deliberate faults below are the point of the test, not
 * defects: the handler turns error reporting off for its own process (an
 * isolated child) before a fault or an exit. That also silences the leak
 * report of a dying fork, which would list as lost the per-thread state of
 * the worker's other threads (threads a fork does not copy).
 */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HOSTILE_QUIET_VALGRIND() VALGRIND_DISABLE_ERROR_REPORTING
#endif
#endif
#ifndef HOSTILE_QUIET_VALGRIND
#define HOSTILE_QUIET_VALGRIND() ((void)0)
#endif

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static hookd_outcome_t hostile_pre(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                   const char *order_name, const char *csr)
{
    const char *what = certificate_name ? certificate_name : "ok";
    (void)state;
    (void)order_name;
    (void)csr;

    if (strcmp(what, "ok") == 0)
        return HOOKD_OK;
    if (strcmp(what, "fail") == 0) {
        hookd_set_error(ctx, "hostile: asked to fail");
        return HOOKD_FAIL;
    }
    if (strcmp(what, "segv") == 0) {
        /*
         * A store to a page mapped without access: a real SIGSEGV, and no
         * undefined behaviour for UBSan to intercept first.
         */
        volatile int *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            hookd_set_error(ctx, "hostile: mmap failed");
            return HOOKD_FAIL;
        }
        HOSTILE_QUIET_VALGRIND();
        *p = 1;
        return HOOKD_OK;
    }
    if (strcmp(what, "abort") == 0) {
        HOSTILE_QUIET_VALGRIND();
        abort();
    }
    if (strcmp(what, "exit3") == 0) {
        HOSTILE_QUIET_VALGRIND();
        exit(3);
    }
    if (strcmp(what, "hang") == 0) {
        for (;;)
            pause();
    }
    if (strcmp(what, "spin") == 0) {
        volatile unsigned long n = 0;
        for (;;)
            n++;
    }
    if (strcmp(what, "forkbomb") == 0) {
        if (getuid() == 0 || geteuid() == 0) {
            hookd_set_error(ctx, "hostile: refusing to fork-bomb as root");
            return HOOKD_FAIL;
        }
        for (;;)
            (void)fork();
    }
    if (strcmp(what, "forkhang") == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            for (;;)
                pause();
        }
        return pid > 0 ? HOOKD_OK : HOOKD_FAIL;
    }
    if (strcmp(what, "leakfd") == 0) {
        int i;
        for (i = 0; i < 16; i++)
            (void)open("/dev/null", O_RDONLY);
        return HOOKD_OK;
    }
    if (strcmp(what, "allocbomb") == 0) {
        for (;;) {
            char *p = malloc(16u << 20);
            if (p == NULL)
                break;
            memset(p, 0xa5, 16u << 20);
        }
        hookd_set_error(ctx, "hostile: malloc failed as it should");
        return HOOKD_FAIL;
    }
    if (strcmp(what, "closehang") == 0) {
        int fd;
        for (fd = 0; fd < 1024; fd++)
            close(fd);
        for (;;)
            pause();
    }
    if (strcmp(what, "garbage") == 0) {
        static const char junk[] = "\xff\xff\xff\x7f garbage garbage garbage";
        int fd;
        for (fd = 3; fd < 1024; fd++) {
            struct stat st;
            if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode))
                (void)!write(fd, junk, sizeof(junk));
        }
        return HOOKD_OK;
    }
    if (strcmp(what, "halfclose") == 0) {
        /*
         * A grandchild holds the child's socket too, and shuts its writing
         * side down when told to: the worker reads EOF while the child
         * itself lives on, waiting for its next request. (No signal handler
         * or thread in the child: ThreadSanitizer defers the one and
         * forbids the other after a fork.)
         */
        const char *trigger = getenv("HOSTILE_TRIGGER"), *marker = getenv("HOSTILE_MARKER");
        pid_t pid;
        if (trigger == NULL || marker == NULL) {
            hookd_set_error(ctx, "hostile: halfclose needs HOSTILE_TRIGGER and HOSTILE_MARKER");
            return HOOKD_FAIL;
        }
        if ((pid = fork()) == 0) {
            char c;
            int fd = open(trigger, O_RDONLY); /* a FIFO: blocks until the test opens it */
            if (fd >= 0) {
                (void)!read(fd, &c, 1);
                close(fd);
            }
            for (fd = 3; fd < 1024; fd++) {
                struct stat st;
                if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode))
                    (void)shutdown(fd, SHUT_WR);
            }
            if ((fd = open(marker, O_WRONLY | O_CREAT, 0600)) >= 0)
                close(fd);
            for (;;)
                pause();
        }
        return pid > 0 ? HOOKD_OK : HOOKD_FAIL;
    }
    hookd_set_error(ctx, "hostile: unknown behaviour '%s'", what);
    return HOOKD_FAIL;
}

static const char *const hostile_keys[] = {NULL};

HOOKD_HANDLER_EXPORT = {
    HOOKD_HANDLER_HEADER,
    .name = "hostile",
    .description = "misbehaves on purpose (tests only)",
    .config_keys = hostile_keys,
    .pre_hook = hostile_pre,
};
