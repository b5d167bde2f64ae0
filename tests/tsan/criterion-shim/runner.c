/* SPDX-License-Identifier: MIT */
/*
 * The runner of the Criterion shim (criterion/criterion.h says what it
 * keeps of Criterion and why it exists): main() of every unit-test
 * executable of the ThreadSanitizer build.
 *
 *   test_x [--jobs N] [--filter GLOB] [--timeout SECONDS] [--list]
 *
 * Tests run one after the other, sorted by suite then name, each in a
 * process forked from this one. The runner stays single-threaded, so a
 * fork leaves the child nothing but the test's own state: what Criterion's
 * fresh worker process gives (--jobs is accepted and ignored: one test at
 * a time). GLOB (fnmatch) selects tests by "suite/name". Each test prints
 * "[PASS]", "[FAIL]" or "[SKIP] suite::name" and the run ends with a
 * "[====] Synthesis:" line; the exit status is 1 if a test failed or
 * crashed, 2 for a bad command line.
 *
 * The child tells the runner how the test went through a pipe: 'F' at a
 * failed assertion (also from a process the test forked), 'S' when skipped,
 * 'E' when the test and its fini functions returned. The runner reads them
 * once the child is gone, so a process the test forked that keeps the pipe
 * open cannot hold the run up. A child killed by a signal, exiting before
 * 'E' or outliving its timeout fails its test.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static crs_test_t *tests;
static crs_suite_t *suites;

/* The test being run, in its child process. */
static struct {
    const crs_test_t *test;
    const crs_suite_t *suite;
    pid_t pid;            /* the test's process (not one the test forked) */
    pthread_t thread;     /* the thread that runs the test */
    int fd;               /* the pipe to the runner */
    bool failed;          /* 'F' sent by this process */
    jmp_buf stop;         /* where cr_assert* and cr_skip_test go */
    sigset_t signal_mask; /* the runner's mask before it blocked SIGCHLD */
} cur = {.fd = -1};

void crs_register_test(crs_test_t *test)
{
    test->next = tests;
    tests = test;
}

void crs_register_suite(crs_suite_t *suite)
{
    suite->next = suites;
    suites = suite;
}

const char *crs_str(const char *s)
{
    return s ? s : "(null)";
}

static void send_mark(char mark)
{
    ssize_t n;

    if (cur.fd < 0)
        return;
    do
        n = write(cur.fd, &mark, 1);
    while (n < 0 && errno == EINTR);
}

void crs_fail_begin(const char *file, unsigned line, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "[----] %s:%u: Assertion failed: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void crs_message(const char *fmt, ...)
{
    va_list ap;

    fputs("[----]   ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void crs_log(const char *level, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "[----] %s: ", level);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void crs_fail_end(void)
{
    fflush(stderr);
    if (!cur.failed) {
        cur.failed = true;
        send_mark('F');
    }
}

/*
 * Leaves the test: back to the runner's code in the test's process and
 * thread. Elsewhere there is no frame of ours to go back to: a process the
 * test forked ends (its failure is recorded), a thread the test started
 * ends the test's process, the test failing.
 */
static _Noreturn void leave(void)
{
    if (cur.pid == getpid() && pthread_equal(cur.thread, pthread_self()))
        longjmp(cur.stop, 1);
    fflush(NULL);
    _exit(cur.pid == getpid() ? 1 : 70);
}

void crs_abort_test(void)
{
    leave();
}

void crs_skip_test(void)
{
    send_mark('S');
    leave();
}

static const crs_suite_t *suite_of(const crs_test_t *t)
{
    const crs_suite_t *s;

    for (s = suites; s; s = s->next)
        if (strcmp(s->name, t->suite) == 0)
            return s;
    return NULL;
}

static void nothing(void)
{
}

/* In the child: the suite's and the test's init, the test, their fini
 * (Criterion's order). A stop in an init skips the test and the fini. */
static _Noreturn void run_child(const crs_test_t *t, int fd)
{
    cur.test = t;
    cur.suite = suite_of(t);
    cur.pid = getpid();
    cur.thread = pthread_self();
    cur.fd = fd;
    sigprocmask(SIG_SETMASK, &cur.signal_mask, NULL);

    /* after a longjmp only `cur` (static) is read: no local to clobber */
    if (setjmp(cur.stop) == 0) {
        (cur.suite && cur.suite->opts.init ? cur.suite->opts.init : nothing)();
        (cur.test->opts.init ? cur.test->opts.init : nothing)();
    } else {
        fflush(NULL);
        exit(0);
    }
    if (setjmp(cur.stop) == 0)
        cur.test->fn();
    if (setjmp(cur.stop) == 0) {
        (cur.test->opts.fini ? cur.test->opts.fini : nothing)();
        (cur.suite && cur.suite->opts.fini ? cur.suite->opts.fini : nothing)();
    }
    fflush(NULL);
    send_mark('E');
    exit(0);
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef enum verdict { PASSED, FAILED, CRASHED, SKIPPED } verdict_t;

/*
 * Waits for the test's process, at most `timeout` seconds (0: no limit),
 * SIGCHLD being blocked (main): a child that ends in the meantime makes
 * sigtimedwait() return. Returns false if the child had to be killed.
 */
static bool wait_child(pid_t pid, double timeout, int *status)
{
    double deadline = now() + timeout;
    sigset_t chld;

    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    for (;;) {
        pid_t r = waitpid(pid, status, timeout > 0 ? WNOHANG : 0);
        double left;
        struct timespec ts;

        if (r == pid)
            return true;
        if (r < 0 && errno != EINTR) {
            perror("waitpid");
            exit(2);
        }
        if (r < 0 || timeout <= 0)
            continue;
        left = deadline - now();
        if (left <= 0) {
            kill(pid, SIGKILL);
            while (waitpid(pid, status, 0) < 0 && errno == EINTR)
                ;
            return false;
        }
        ts.tv_sec = (time_t)left;
        ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
        sigtimedwait(&chld, NULL, &ts);
    }
}

static verdict_t run_one(const crs_test_t *t, double default_timeout)
{
    const crs_suite_t *s = suite_of(t);
    double timeout = t->opts.timeout;
    double t0 = now();
    int fds[2], status = 0;
    bool failed = false, skipped = false, ended = false, in_time;
    char marks[256];
    ssize_t n;
    pid_t pid;
    verdict_t v;

    if (timeout == 0 && s)
        timeout = s->opts.timeout;
    if (timeout == 0)
        timeout = default_timeout;
    if (pipe2(fds, O_CLOEXEC) != 0) {
        perror("pipe2");
        exit(2);
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        close(fds[0]);
        run_child(t, fds[1]);
    }
    close(fds[1]);
    in_time = wait_child(pid, timeout, &status);

    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    while ((n = read(fds[0], marks, sizeof(marks))) > 0)
        for (ssize_t i = 0; i < n; i++) {
            failed |= marks[i] == 'F';
            skipped |= marks[i] == 'S';
            ended |= marks[i] == 'E';
        }
    close(fds[0]);

    v = FAILED;
    if (!in_time) {
        fprintf(stderr, "[----] %s::%s: timed out after %gs\n", t->suite, t->name, timeout);
    } else if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        if (sig == t->opts.signal && !failed) {
            v = PASSED;
        } else {
            fprintf(stderr, "[----] %s::%s: killed by signal %d (%s)\n", t->suite, t->name, sig,
                    strsignal(sig));
            v = failed ? FAILED : CRASHED;
        }
    } else if (t->opts.signal) {
        fprintf(stderr, "[----] %s::%s: exited, signal %d (%s) expected\n", t->suite, t->name,
                t->opts.signal, strsignal(t->opts.signal));
    } else if (WEXITSTATUS(status) != t->opts.exit_code) {
        fprintf(stderr, "[----] %s::%s: exited with status %d, %d expected\n", t->suite, t->name,
                WEXITSTATUS(status), t->opts.exit_code);
    } else if (failed) {
        /* reported by the assertion */
    } else if (skipped) {
        v = SKIPPED;
    } else if (!ended && t->opts.exit_code == 0) {
        fprintf(stderr, "[----] %s::%s: exited before the end of the test\n", t->suite, t->name);
    } else {
        v = PASSED;
    }
    fprintf(stderr, "[%s] %s::%s: (%.2fs)\n",
            v == PASSED    ? "PASS"
            : v == SKIPPED ? "SKIP"
                           : "FAIL",
            t->suite, t->name, now() - t0);
    return v;
}

static int by_name(const void *a, const void *b)
{
    const crs_test_t *x = *(const crs_test_t *const *)a, *y = *(const crs_test_t *const *)b;
    int c = strcmp(x->suite, y->suite);

    return c ? c : strcmp(x->name, y->name);
}

static int usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [--jobs N] [--filter SUITE/NAME-GLOB] [--timeout SECONDS] [--list]\n", prog);
    return 2;
}

/* "--opt value" or "--opt=value": the value, or NULL if argv[*i] is not opt. */
static const char *option(int argc, char **argv, int *i, const char *opt)
{
    size_t len = strlen(opt);

    if (strncmp(argv[*i], opt, len) != 0)
        return NULL;
    if (argv[*i][len] == '=')
        return argv[*i] + len + 1;
    if (argv[*i][len] == '\0' && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

int main(int argc, char **argv)
{
    const char *filter = NULL, *v;
    double default_timeout = 0;
    bool list = false;
    size_t count = 0, i, run = 0, counts[4] = {0};
    crs_test_t **sorted, *t;
    sigset_t chld;

    for (int a = 1; a < argc; a++) {
        if ((v = option(argc, argv, &a, "--jobs")) || (v = option(argc, argv, &a, "-j")) ||
            strncmp(argv[a], "-j", 2) == 0)
            continue; /* one test at a time */
        else if ((v = option(argc, argv, &a, "--filter")))
            filter = v;
        else if ((v = option(argc, argv, &a, "--timeout")))
            default_timeout = atof(v);
        else if (strcmp(argv[a], "--list") == 0)
            list = true;
        else
            return usage(argv[0]);
    }

    for (t = tests; t; t = t->next)
        count++;
    sorted = calloc(count ? count : 1, sizeof(*sorted));
    if (!sorted)
        return 2;
    for (i = 0, t = tests; t; t = t->next)
        sorted[i++] = t;
    qsort(sorted, count, sizeof(*sorted), by_name);

    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &cur.signal_mask);

    for (i = 0; i < count; i++) {
        const crs_suite_t *s = suite_of(sorted[i]);
        char id[512];

        t = sorted[i];
        snprintf(id, sizeof(id), "%s/%s", t->suite, t->name);
        if (filter && fnmatch(filter, id, 0) != 0)
            continue;
        if (list) {
            printf("%s::%s\n", t->suite, t->name);
            continue;
        }
        run++;
        if (t->opts.disabled || (s && s->opts.disabled)) {
            fprintf(stderr, "[SKIP] %s::%s: disabled\n", t->suite, t->name);
            counts[SKIPPED]++;
            continue;
        }
        counts[run_one(t, default_timeout)]++;
    }
    free(sorted);
    if (list)
        return 0;
    fprintf(stderr,
            "[====] Synthesis: Tested: %zu | Passing: %zu | Failing: %zu | Crashing: %zu | "
            "Skipped: %zu\n",
            run, counts[PASSED], counts[FAILED], counts[CRASHED], counts[SKIPPED]);
    return counts[FAILED] || counts[CRASHED] ? 1 : 0;
}
