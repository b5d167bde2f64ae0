/* SPDX-License-Identifier: MIT */
/*
 * exec: runs an external command per phase, the way certbot runs its
 * --pre-hook / --deploy-hook / --post-hook commands. The command line is
 * given to /bin/sh -c, with the event's fields in environment variables:
 *
 *   HOOKD_PHASE             pre | success | post
 *   HOOKD_EVENT_ID          the idempotency key of the event
 *   HOOKD_CERTIFICATE_NAME  HOOKD_ORDER_NAME  HOOKD_CSR (base64 DER)
 *   HOOKD_CERTIFICATE       PEM chain           (success)
 *   HOOKD_CERTIFICATE_RAW   base64 DER          (success)
 *   HOOKD_POLL_IDENTIFIER   if the event has one (success)
 *   HOOKD_ERROR             the enrollment's error, if any (post)
 *
 * A variable whose field is absent (null) is not set at all.
 *
 * The command's exit status is the outcome: 0 ok, 75 (EX_TEMPFAIL) retry,
 * anything else (or death by a signal) a failure whose message is the
 * command's stderr (first exec_max_stderr_bytes bytes). Its stdout is
 * logged. stdin is /dev/null.
 *
 * The command runs in a process group of its own, under a guard process
 * (see "The process tree of one run" below). Nothing the command starts
 * outlives the hook: when it overruns exec_timeout_ms, when it exits
 * leaving jobs behind, when the thread running the hook dies (a worker
 * killed with SIGKILL, an isolation child killed at hook_timeout_ms or
 * crashed) and when the guard is told to stop (SIGTERM), the guard kills
 * the whole group with SIGKILL and reaps it; an overrun fails the hook.
 * Measured by tests/unit/test_exec.c and tests/hostile/hostile_it.c: the
 * whole tree is gone within 10 ms of the result or of the worker's death.
 * Only a descendant that leaves the group (setsid) escapes; a cgroup
 * catches it (docs/security.md). No zombie is left, not even at pid 1.
 * Descriptors of the worker do not leak into it (everything here is
 * O_CLOEXEC, and descriptors from 3 up are closed in the child).
 *
 * The environment is built from scratch, not inherited: the worker's own
 * environment may hold secrets (ACME_HOOKD_* configuration overrides). Only
 * PATH and the variables named in exec_pass_env are passed through, never
 * an ACME_HOOKD_* one.
 *
 * Keys:
 *   exec_pre_command, exec_success_command, exec_post_command
 *                          shell command of each phase (unset: nothing to do)
 *   exec_timeout_ms        deadline of one run, default 30000
 *   exec_max_stderr_bytes  stderr kept as the error message, default 1000
 *   exec_pass_env          variables passed through from the worker's
 *                          environment, default "HOME LANG LC_ALL TZ TMPDIR"
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <acme_hookd/hook.h>

#define EXEC_SHELL "/bin/sh"
#define EXEC_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define EXEC_EX_TEMPFAIL 75
#define EXEC_DEFAULT_TIMEOUT_MS 30000L
#define EXEC_MAX_TIMEOUT_MS 86400000L
#define EXEC_DEFAULT_STDERR 1000L
#define EXEC_MAX_STDERR 65536L
#define EXEC_STDOUT_LOG_MAX 2000
/* After the kill, how long stray holders of the pipes are waited for. */
#define EXEC_DRAIN_MS 1000

enum { PH_PRE = 0, PH_SUCCESS = 1, PH_POST = 2, PH_COUNT = 3 };

static const char *const phase_names[PH_COUNT] = {"pre", "success", "post"};
static const char *const command_keys[PH_COUNT] = {"exec_pre_command", "exec_success_command",
                                                   "exec_post_command"};

static const char *const exec_config_keys[] = {"exec_pre_command",
                                               "exec_success_command",
                                               "exec_post_command",
                                               "exec_timeout_ms",
                                               "exec_max_stderr_bytes",
                                               "exec_pass_env",
                                               NULL};

typedef struct exec_handler {
    char *command[PH_COUNT]; /* NULL: nothing to run in that phase */
    long timeout_ms;
    size_t max_stderr;
    char **base_env; /* "NAME=value" passed through, NULL-terminated */
    size_t base_count;
} exec_handler_t;

/* One captured stream. */
typedef struct capture {
    int fd;
    char *buf;
    size_t len, cap;
    int truncated;
} capture_t;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void free_strv(char **v)
{
    size_t i;
    for (i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static int parse_long(hookd_ctx_t *ctx, const char *key, long dflt, long min, long max, long *out)
{
    const char *v = hookd_config_get(ctx, key);
    char *end = NULL;
    long n;

    if (!v) {
        *out = dflt;
        return 0;
    }
    errno = 0;
    n = strtol(v, &end, 10);
    if (!v[0] || *end || errno || n < min || n > max) {
        hookd_set_error(ctx, "exec: %s: '%s' is not a number from %ld to %ld", key, v, min, max);
        return -1;
    }
    *out = n;
    return 0;
}

static char *env_entry(const char *name, const char *value)
{
    char *s = NULL;
    if (asprintf(&s, "%s=%s", name, value) < 0)
        return NULL;
    return s;
}

/* PATH and the exec_pass_env variables, read once at init. */
static int base_env_build(hookd_ctx_t *ctx, exec_handler_t *ex)
{
    const char *names = hookd_config_get(ctx, "exec_pass_env");
    const char *path = getenv("PATH");
    char *list = NULL, *save = NULL, *tok;
    size_t cap = 8;

    if (!names)
        names = "HOME LANG LC_ALL TZ TMPDIR";
    ex->base_env = calloc(cap, sizeof(char *));
    if (!ex->base_env)
        goto oom;
    ex->base_env[ex->base_count] = env_entry("PATH", path && path[0] ? path : EXEC_DEFAULT_PATH);
    if (!ex->base_env[ex->base_count++])
        goto oom;

    list = strdup(names);
    if (!list)
        goto oom;
    for (tok = strtok_r(list, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
        const char *v;
        /* HOOKD_* is ours, ACME_HOOKD_* is the worker's configuration
         * (secrets included): neither is passed on. */
        if (strcmp(tok, "PATH") == 0 || strncmp(tok, "HOOKD_", 6) == 0 ||
            strncmp(tok, "ACME_HOOKD_", 11) == 0 || strchr(tok, '=')) {
            hookd_set_error(ctx, "exec: exec_pass_env: cannot pass '%s'", tok);
            free(list);
            return -1;
        }
        if (!(v = getenv(tok)))
            continue;
        if (ex->base_count + 2 > cap) {
            char **n = realloc(ex->base_env, cap * 2 * sizeof(char *));
            if (!n)
                goto oom;
            memset(n + cap, 0, cap * sizeof(char *));
            ex->base_env = n;
            cap *= 2;
        }
        if (!(ex->base_env[ex->base_count] = env_entry(tok, v)))
            goto oom;
        ex->base_count++;
    }
    free(list);
    return 0;

oom:
    free(list);
    hookd_set_error(ctx, "exec: out of memory");
    return -1;
}

static void exec_fini(hookd_ctx_t *ctx, void *state)
{
    exec_handler_t *ex = state;
    int p;
    (void)ctx;
    if (!ex)
        return;
    for (p = 0; p < PH_COUNT; p++)
        free(ex->command[p]);
    free_strv(ex->base_env);
    free(ex);
}

static hookd_outcome_t exec_init(hookd_ctx_t *ctx, void **state)
{
    exec_handler_t *ex = calloc(1, sizeof(*ex));
    long max_stderr;
    int p, any = 0;

    if (!ex) {
        hookd_set_error(ctx, "exec: out of memory");
        return HOOKD_FAIL;
    }
    for (p = 0; p < PH_COUNT; p++) {
        const char *c = hookd_config_get(ctx, command_keys[p]);
        if (c && c[0]) {
            if (!(ex->command[p] = strdup(c))) {
                hookd_set_error(ctx, "exec: out of memory");
                goto error;
            }
            any = 1;
        }
    }
    if (!any) {
        hookd_set_error(ctx, "exec: no command configured (set exec_pre_command, "
                             "exec_success_command and/or exec_post_command)");
        goto error;
    }
    if (parse_long(ctx, "exec_timeout_ms", EXEC_DEFAULT_TIMEOUT_MS, 1, EXEC_MAX_TIMEOUT_MS,
                   &ex->timeout_ms) != 0 ||
        parse_long(ctx, "exec_max_stderr_bytes", EXEC_DEFAULT_STDERR, 0, EXEC_MAX_STDERR,
                   &max_stderr) != 0)
        goto error;
    ex->max_stderr = (size_t)max_stderr;
    if (base_env_build(ctx, ex) != 0)
        goto error;
    *state = ex;
    return HOOKD_OK;

error:
    exec_fini(ctx, ex);
    return HOOKD_FAIL;
}

/*
 * The environment of one run: the base, then the event's fields. Only the
 * array is allocated here; "NAME=value" strings of the fields are too.
 */
static char **run_env_build(const exec_handler_t *ex, const char *const *names,
                            const char *const *values, size_t n)
{
    char **env = calloc(ex->base_count + n + 1, sizeof(char *));
    size_t i, k = 0;

    if (!env)
        return NULL;
    for (i = 0; i < ex->base_count; i++)
        env[k++] = ex->base_env[i];
    for (i = 0; i < n; i++) {
        if (!values[i])
            continue; /* null field: variable unset */
        if (!(env[k++] = env_entry(names[i], values[i]))) {
            for (i = ex->base_count; i < k - 1; i++)
                free(env[i]);
            free(env);
            return NULL;
        }
    }
    env[k] = NULL;
    return env;
}

static void run_env_free(const exec_handler_t *ex, char **env)
{
    size_t i;
    if (!env)
        return;
    for (i = ex->base_count; env[i]; i++)
        free(env[i]);
    free(env);
}

/* Read what is there; 0 on EOF, 1 if more may come. Data beyond cap is dropped. */
static int capture_read(capture_t *c)
{
    char tmp[4096];
    ssize_t n = read(c->fd, tmp, sizeof(tmp));

    if (n < 0)
        return (errno == EINTR || errno == EAGAIN) ? 1 : 0;
    if (n == 0)
        return 0;
    if (c->len < c->cap) {
        size_t take = (size_t)n < c->cap - c->len ? (size_t)n : c->cap - c->len;
        memcpy(c->buf + c->len, tmp, take);
        c->len += take;
        if (take < (size_t)n)
            c->truncated = 1;
    } else {
        c->truncated = 1;
    }
    return 1;
}

/*
 * Make captured bytes safe to carry as a message: invalid UTF-8 and control
 * characters (other than newline and tab) become '?', trailing whitespace
 * goes. NUL-terminates (buf has cap+1 bytes).
 */
static void capture_clean(capture_t *c)
{
    unsigned char *s = (unsigned char *)c->buf;
    size_t i = 0, len = c->len, need, k;

    while (i < len) {
        unsigned char b = s[i], lo = 0x80, hi = 0xbf;
        if (b < 0x80) {
            if ((b < 0x20 || b == 0x7f) && b != '\n' && b != '\t')
                s[i] = '?';
            i++;
            continue;
        }
        if (b >= 0xc2 && b <= 0xdf)
            need = 1;
        else if (b >= 0xe0 && b <= 0xef)
            need = 2;
        else if (b >= 0xf0 && b <= 0xf4)
            need = 3;
        else
            need = 0;
        /* The second byte's range rules out overlong forms, surrogates
         * and code points above U+10FFFF. */
        if (b == 0xe0)
            lo = 0xa0;
        else if (b == 0xed)
            hi = 0x9f;
        else if (b == 0xf0)
            lo = 0x90;
        else if (b == 0xf4)
            hi = 0x8f;
        for (k = 1; need && k <= need; k++) {
            unsigned char lo_k = k == 1 ? lo : 0x80, hi_k = k == 1 ? hi : 0xbf;
            if (i + k >= len || s[i + k] < lo_k || s[i + k] > hi_k)
                break;
        }
        if (!need || k <= need) {
            s[i++] = '?';
            continue;
        }
        i += need + 1;
    }
    while (len > 0 &&
           (s[len - 1] == '\n' || s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
        len--;
    c->len = len;
    s[len] = '\0';
}

/* Has the child exited? (Without reaping it: its pid stays ours.) */
static int child_exited(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
        return errno == ECHILD;
    return si.si_pid == pid;
}

typedef struct run_result {
    int spawn_errno; /* != 0: could not start */
    int timed_out;
    int status;     /* wait status of the shell */
    int wait_errno; /* != 0: the status was lost */
    int stopped;    /* the guard was stopped from outside before the shell ended */
} run_result_t;

/*
 * The process tree of one run:
 *
 *   hook's thread (worker, or isolation child)
 *    `- guard   "hookd-exec": a fork that never execs; a process group of
 *        |       its own; child subreaper; PR_SET_PDEATHSIG = SIGHUP
 *        `- /bin/sh -c command   leader of the command's process group;
 *            |                   PR_SET_PDEATHSIG = SIGKILL
 *            `- whatever the command starts (same process group)
 *
 * Why a guard process rather than the shell as the direct child: when the
 * worker is killed with SIGKILL no code of the worker runs, and a
 * parent-death signal reaches only the direct child of the thread that
 * died. With the shell as that child, the shell died and what it had
 * started ("sleep 41 &", a pipeline, a script's background job) went on
 * under pid 1. The guard's parent-death signal is a catchable one: it
 * wakes up, kills the command's process group with SIGKILL and reaps it.
 * The same happens when the isolation child running the handler dies
 * (killed at its deadline, crashed), at the hook's own deadline (the hook's
 * thread sends the guard SIGTERM), and when anyone else sends the guard
 * SIGTERM, SIGINT, SIGHUP or SIGQUIT (systemd stopping the unit). When the
 * shell exits by itself, the guard kills the group too, so nothing the
 * command left running outlives the hook.
 *
 * The guard is a child subreaper and never leaves the command's group
 * before the group's leader (the shell) is reaped: the group id cannot be
 * reused while it kills, and the members, whose parents die in the same
 * kill, are re-parented to the guard and reaped there rather than becoming
 * zombies of pid 1 (which in a container may be the worker itself). It
 * sends the shell's wait status on the report pipe and exits 0. The guard
 * is not in the command's group, so a command that signals its own group
 * ("kill 0") cannot take the guard along; and it is not in the group of
 * the isolation child either, so the group kill at the isolation deadline
 * wakes it (parent-death signal) instead of killing it.
 *
 * The guard runs only async-signal-safe code (it is a fork of a
 * multi-threaded process) and forks the shell with _Fork(), which runs no
 * atfork handlers. The cost is one more fork per command, less than the
 * fork and execve of /bin/sh that follow.
 *
 * What a process group cannot hold: a descendant that calls setsid() (or
 * joins another group) leaves it, and only a cgroup catches it (see
 * docs/security.md). Neither survives a guard killed with SIGKILL by
 * someone else (the OOM killer): the shell dies with it, its children do
 * not.
 */

/* Records on the report pipe; each is written with one write(2). */
enum { REPORT_EXEC_ERRNO = 1, REPORT_STATUS = 2 };

typedef struct report {
    int kind;
    int value;
} report_t;

/* What the guard and the shell need, prepared before fork(). */
typedef struct spawn_args {
    int devnull, out_w, err_w, report_w;
    pid_t hook_pid; /* the process running the hook: the guard's parent */
    char *const *argv;
    char *const *envp;
    int max_fd;
} spawn_args_t;

static void report_write(int fd, int kind, int value)
{
    report_t r;
    r.kind = kind;
    r.value = value;
    (void)!write(fd, &r, sizeof(r));
}

/* Close descriptors lo..hi (async-signal-safe). */
static void close_span(unsigned lo, unsigned hi, int max_fd)
{
    int fd;
    if (lo > hi)
        return;
#ifdef SYS_close_range
    if (syscall(SYS_close_range, lo, hi, 0u) == 0)
        return;
#endif
    for (fd = (int)lo; fd < max_fd && (unsigned)fd <= hi; fd++)
        (void)close(fd);
}

/*
 * Close every descriptor from 3 up except the (at most 4) in keep[]:
 * descriptors of the worker opened without O_CLOEXEC (by a library, say),
 * broker sockets, and other threads' command pipes must reach neither the
 * guard, which never execs, nor the command.
 */
static void close_all_but(const int *keep, int n, int max_fd)
{
    int sorted[4], i, j;
    unsigned lo = 3;
    for (i = 0; i < n && i < 4; i++) {
        int v = keep[i];
        for (j = i; j > 0 && sorted[j - 1] > v; j--)
            sorted[j] = sorted[j - 1];
        sorted[j] = v;
    }
    for (i = 0; i < n && i < 4; i++) {
        if (sorted[i] < 0 || (unsigned)sorted[i] < lo)
            continue;
        if ((unsigned)sorted[i] > lo)
            close_span(lo, (unsigned)sorted[i] - 1u, max_fd);
        lo = (unsigned)sorted[i] + 1u;
    }
    close_span(lo, ~0u, max_fd);
}

/* The shell, a child of the guard. Async-signal-safe. */
__attribute__((noreturn)) static void shell_exec(const spawn_args_t *a, pid_t guard)
{
    sigset_t none;
    int e;

    /* The command's group, led by the shell (the guard does it too, so the
     * group exists whichever runs first). */
    (void)setpgid(0, 0);
    /* Dies with the guard, whatever kills it. */
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != guard)
        _exit(127);
    /* The guard reset every disposition; signals are still blocked. */
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(a->devnull, 0) < 0 || dup2(a->out_w, 1) < 0 || dup2(a->err_w, 2) < 0)
        _exit(127);
    /* The report pipe stays: it is O_CLOEXEC, so a successful execve closes it. */
    close_all_but(&a->report_w, 1, a->max_fd);
    execve(EXEC_SHELL, a->argv, a->envp);
    e = errno;
    report_write(a->report_w, REPORT_EXEC_ERRNO, e);
    _exit(127);
}

/*
 * Kill the command's group (`shell` is its leader, not yet reaped), reap
 * the leader (its status in *status) and every member that comes to us.
 */
static void guard_end_group(pid_t shell, int *status)
{
    (void)kill(-shell, SIGKILL);
    while (waitpid(shell, status, 0) < 0 && errno == EINTR)
        ;
    /* Members whose parents died in the kill are re-parented to us (child
     * subreaper): when no child of ours is left in the group, none is. */
    for (;;) {
        pid_t r = waitpid(-shell, NULL, 0);
        if (r < 0 && errno != EINTR)
            break;
    }
}

/*
 * The guard, between fork() and its end: it never execs. Only
 * async-signal-safe calls, on data prepared before fork. Signals are
 * blocked on entry (see run_command) and stay blocked: they are taken with
 * sigwaitinfo().
 */
__attribute__((noreturn)) static void guard_main(const spawn_args_t *a)
{
    const int keep[4] = {a->devnull, a->out_w, a->err_w, a->report_w};
    struct sigaction sa;
    sigset_t wake;
    pid_t self, shell;
    int s, st = 0;

    /* A group of its own: out of the isolation child's group, which is
     * killed at the isolation deadline, and out of the worker's. */
    (void)setpgid(0, 0);
    /* Woken when the thread running the hook dies (a killed worker, an
     * isolation child killed at its deadline); the check closes the race
     * with a death before this call. */
    (void)prctl(PR_SET_PDEATHSIG, SIGHUP);
    if (getppid() != a->hook_pid)
        _exit(127);
    (void)prctl(PR_SET_CHILD_SUBREAPER, 1);
    (void)prctl(PR_SET_NAME, "hookd-exec");

    /* The worker's handlers mean nothing here, and ignored signals
     * (SIGPIPE) would be inherited through execve; SIGCHLD must not be
     * ignored, or the shell's status is lost. Everything back to the
     * default. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            (void)sigaction(s, &sa, NULL);
    close_all_but(keep, 4, a->max_fd);

    self = getpid();
    shell = _Fork();
    if (shell == 0)
        shell_exec(a, self);
    if (shell < 0) {
        report_write(a->report_w, REPORT_EXEC_ERRNO, errno);
        _exit(127);
    }
    (void)setpgid(shell, shell);
    (void)close(a->devnull);
    (void)close(a->out_w);
    (void)close(a->err_w);

    sigemptyset(&wake);
    sigaddset(&wake, SIGCHLD);
    sigaddset(&wake, SIGHUP);
    sigaddset(&wake, SIGINT);
    sigaddset(&wake, SIGTERM);
    sigaddset(&wake, SIGQUIT);
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&wake, &si);
        if (sig < 0)
            continue; /* EINTR: a stop and continue */
        if (sig != SIGCHLD) {
            /* The hook's thread is gone, its deadline passed, or we are
             * told to stop: no status to report. */
            guard_end_group(shell, &st);
            _exit(0);
        }
        /* Look without reaping: the group is killed while its id is safe. */
        memset(&si, 0, sizeof(si));
        if (waitid(P_PID, (id_t)shell, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == shell)
            break;
    }
    guard_end_group(shell, &st);
    report_write(a->report_w, REPORT_STATUS, st);
    _exit(0);
}

/* Read report records; 0 on EOF, 1 if more may come. */
static int report_read(int fd, report_t *rep, size_t *got, size_t cap_bytes)
{
    char tmp[64];
    ssize_t n;

    if (*got < cap_bytes)
        n = read(fd, (char *)rep + *got, cap_bytes - *got);
    else
        n = read(fd, tmp, sizeof(tmp)); /* more than expected: dropped */
    if (n < 0)
        return (errno == EINTR || errno == EAGAIN) ? 1 : 0;
    if (n == 0)
        return 0;
    if (*got < cap_bytes)
        *got += (size_t)n;
    return 1;
}

/*
 * Fork the guard (which forks the shell), capture the output under the
 * deadline, end the process group, reap the guard.
 */
static void run_command(const exec_handler_t *ex, const char *command, char **env, capture_t *out,
                        capture_t *err, run_result_t *res)
{
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1}, report_pipe[2] = {-1, -1};
    int pidfd = -1, devnull = -1, out_open, err_open, report_open, leader_gone = 0, max_fd;
    int guard_status = 0, guard_waited = 0, have_status = 0;
    char *argv[] = {"sh", "-c", (char *)command, NULL};
    report_t rep[4];
    size_t rep_got = 0, i;
    spawn_args_t a;
    sigset_t all, old;
    pid_t pid = -1;
    uint64_t deadline = now_ms() + (uint64_t)ex->timeout_ms, drain_until = 0;
    long open_max = sysconf(_SC_OPEN_MAX);
    int rc;

    memset(res, 0, sizeof(*res));
    max_fd = open_max > 0 && open_max < 65536 ? (int)open_max : 65536;
    if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0 ||
        pipe2(report_pipe, O_CLOEXEC) != 0 ||
        (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        res->spawn_errno = errno;
        goto done;
    }
    a.devnull = devnull;
    a.out_w = out_pipe[1];
    a.err_w = err_pipe[1];
    a.report_w = report_pipe[1];
    a.hook_pid = getpid();
    a.argv = argv;
    a.envp = env;
    a.max_fd = max_fd;

    /* No signal handler may run in the child before it resets them. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = fork();
    if (pid == 0)
        guard_main(&a);
    rc = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        res->spawn_errno = rc;
        goto done;
    }
    /* Also from this side, so the group exists before any kill below. */
    (void)setpgid(pid, pid);

    close(out_pipe[1]);
    close(err_pipe[1]);
    close(report_pipe[1]);
    close(devnull);
    out_pipe[1] = err_pipe[1] = report_pipe[1] = devnull = -1;
    out->fd = out_pipe[0];
    err->fd = err_pipe[0];
    out_open = err_open = report_open = 1;

#ifdef SYS_pidfd_open
    /* A descriptor that becomes readable when the guard exits; without it
     * (old kernel) the loop below checks in short steps. */
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#endif

    while (out_open || err_open || report_open || !leader_gone) {
        struct pollfd pfd[4];
        nfds_t n = 0;
        int wait_ms, o_idx = -1, e_idx = -1, r_idx = -1;
        uint64_t now = now_ms(), limit = drain_until ? drain_until : deadline;

        if (now >= limit) {
            if (drain_until)
                break; /* something escaped the group and holds a pipe: stop reading */
            /* The guard kills the command's group, reaps it and exits. */
            res->timed_out = 1;
            kill(pid, SIGTERM);
            deadline = now;
            drain_until = now + EXEC_DRAIN_MS;
            continue;
        }
        if (!leader_gone && child_exited(pid)) {
            /* The guard has ended the command's group: what still holds a
             * pipe escaped it (setsid), and gets EXEC_DRAIN_MS. */
            leader_gone = 1;
            if (!drain_until)
                drain_until = now + EXEC_DRAIN_MS;
            continue;
        }
        if (out_open) {
            pfd[n].fd = out->fd;
            pfd[n].events = POLLIN;
            o_idx = (int)n++;
        }
        if (err_open) {
            pfd[n].fd = err->fd;
            pfd[n].events = POLLIN;
            e_idx = (int)n++;
        }
        if (report_open) {
            pfd[n].fd = report_pipe[0];
            pfd[n].events = POLLIN;
            r_idx = (int)n++;
        }
        if (!leader_gone && pidfd >= 0) {
            pfd[n].fd = pidfd;
            pfd[n].events = POLLIN;
            n++;
        }
        wait_ms = (int)(limit - now);
        if (!leader_gone && pidfd < 0 && wait_ms > 20)
            wait_ms = 20;
        if (n == 0) {
            /* Pipes closed, guard still running: only the pidfd-less
             * fallback gets here, and waits in short steps. */
            poll(NULL, 0, wait_ms);
            continue;
        }
        rc = poll(pfd, n, wait_ms);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc <= 0)
            continue;
        if (o_idx >= 0 && pfd[o_idx].revents)
            out_open = capture_read(out);
        if (e_idx >= 0 && pfd[e_idx].revents)
            err_open = capture_read(err);
        if (r_idx >= 0 && pfd[r_idx].revents)
            report_open = report_read(report_pipe[0], rep, &rep_got, sizeof(rep));
        /* a readable pidfd is seen by child_exited() next round */
    }

    /* Only a guard stuck in the kill (a member in uninterruptible sleep)
     * is still there: the shell gets SIGKILL with it (parent-death signal). */
    if (!leader_gone)
        kill(pid, SIGKILL);
    for (;;) {
        if (waitpid(pid, &guard_status, 0) == pid) {
            guard_waited = 1;
            break;
        }
        if (errno != EINTR) {
            /* ECHILD: SIGCHLD is ignored in this process and the kernel
             * reaped the guard itself. The shell's status came on the
             * report pipe all the same. */
            res->wait_errno = errno;
            break;
        }
    }
    /* Records still buffered when a drain that stopped early ended the loop. */
    while (report_open) {
        struct pollfd p = {report_pipe[0], POLLIN, 0};
        if (poll(&p, 1, 0) <= 0)
            break;
        report_open = report_read(report_pipe[0], rep, &rep_got, sizeof(rep));
    }

    for (i = 0; i < rep_got / sizeof(rep[0]); i++) {
        if (rep[i].kind == REPORT_EXEC_ERRNO && !res->spawn_errno)
            res->spawn_errno = rep[i].value ? rep[i].value : ENOEXEC;
        else if (rep[i].kind == REPORT_STATUS && !have_status) {
            res->status = rep[i].value;
            have_status = 1;
        }
    }
    if (have_status || res->spawn_errno || res->timed_out) {
        res->wait_errno = 0;
    } else if (guard_waited || !res->wait_errno) {
        /* The guard ended the command without a status: it was told to
         * stop (SIGTERM from outside) or killed. */
        res->stopped = 1;
        res->wait_errno = 0;
    }

done:
    if (pidfd >= 0)
        close(pidfd);
    if (devnull >= 0)
        close(devnull);
    if (report_pipe[0] >= 0)
        close(report_pipe[0]);
    if (report_pipe[1] >= 0)
        close(report_pipe[1]);
    if (out_pipe[0] >= 0)
        close(out_pipe[0]);
    if (out_pipe[1] >= 0)
        close(out_pipe[1]);
    if (err_pipe[0] >= 0)
        close(err_pipe[0]);
    if (err_pipe[1] >= 0)
        close(err_pipe[1]);
    out->fd = err->fd = -1;
}

static hookd_outcome_t exec_phase(hookd_ctx_t *ctx, exec_handler_t *ex, int p,
                                  const char *const *names, const char *const *values, size_t n)
{
    capture_t out = {-1, NULL, 0, EXEC_STDOUT_LOG_MAX, 0};
    capture_t err = {-1, NULL, 0, ex->max_stderr, 0};
    run_result_t res;
    hookd_outcome_t rc = HOOKD_FAIL;
    char **env = NULL;
    const char *what = phase_names[p];

    if (!ex->command[p])
        return HOOKD_OK;
    out.buf = malloc(out.cap + 1);
    err.buf = malloc(err.cap + 1);
    env = run_env_build(ex, names, values, n);
    if (!out.buf || !err.buf || !env) {
        hookd_set_error(ctx, "exec: out of memory");
        goto out;
    }

    hookd_log(ctx, HOOKD_LOG_DEBUG, "exec: running %s command", what);
    run_command(ex, ex->command[p], env, &out, &err, &res);
    capture_clean(&out);
    capture_clean(&err);
    if (out.len)
        hookd_log(ctx, HOOKD_LOG_INFO, "exec: %s command said: %s%s", what, out.buf,
                  out.truncated ? " [truncated]" : "");

    if (res.spawn_errno) {
        hookd_set_error(ctx, "exec: cannot run the %s command: %s%s", what,
                        strerror(res.spawn_errno),
                        res.spawn_errno == E2BIG ? " (event fields too large for the environment)"
                                                 : "");
    } else if (res.wait_errno) {
        hookd_set_error(ctx, "exec: exit status of the %s command lost: %s", what,
                        strerror(res.wait_errno));
    } else if (res.stopped) {
        hookd_set_error(ctx, "exec: %s command killed: its guard process was stopped%s%s", what,
                        err.len ? ": " : "", err.buf);
    } else if (res.timed_out) {
        hookd_set_error(ctx, "exec: %s command timed out after %ld ms and was killed%s%s", what,
                        ex->timeout_ms, err.len ? ": " : "", err.buf);
    } else if (WIFSIGNALED(res.status)) {
        const char *sig = sigabbrev_np(WTERMSIG(res.status));
        hookd_set_error(ctx, "exec: %s command killed by signal %d (SIG%s)%s%s", what,
                        WTERMSIG(res.status), sig ? sig : "?", err.len ? ": " : "", err.buf);
    } else if (WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0) {
        rc = HOOKD_OK;
    } else if (WIFEXITED(res.status) && WEXITSTATUS(res.status) == EXEC_EX_TEMPFAIL) {
        hookd_set_error(ctx, "exec: %s command asks for a retry (exit %d)%s%s", what,
                        EXEC_EX_TEMPFAIL, err.len ? ": " : "", err.buf);
        rc = HOOKD_RETRY;
    } else {
        hookd_set_error(ctx, "exec: %s command exited with status %d%s%s%s", what,
                        WEXITSTATUS(res.status), err.len ? ": " : "", err.buf,
                        err.truncated ? " [truncated]" : "");
    }

out:
    run_env_free(ex, env);
    free(out.buf);
    free(err.buf);
    return rc;
}

static hookd_outcome_t exec_pre(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                const char *order_name, const char *csr)
{
    const char *names[] = {"HOOKD_PHASE", "HOOKD_EVENT_ID", "HOOKD_CERTIFICATE_NAME",
                           "HOOKD_ORDER_NAME", "HOOKD_CSR"};
    const char *values[] = {"pre", hookd_event_id(ctx), certificate_name, order_name, csr};
    return exec_phase(ctx, state, PH_PRE, names, values, 5);
}

static hookd_outcome_t exec_success(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                    const char *order_name, const char *csr,
                                    const char *certificate, const char *certificate_raw,
                                    const char *poll_identifier)
{
    const char *names[] = {
        "HOOKD_PHASE", "HOOKD_EVENT_ID",    "HOOKD_CERTIFICATE_NAME", "HOOKD_ORDER_NAME",
        "HOOKD_CSR",   "HOOKD_CERTIFICATE", "HOOKD_CERTIFICATE_RAW",  "HOOKD_POLL_IDENTIFIER"};
    const char *values[] = {"success", hookd_event_id(ctx), certificate_name, order_name,
                            csr,       certificate,         certificate_raw,  poll_identifier};
    return exec_phase(ctx, state, PH_SUCCESS, names, values, 8);
}

static hookd_outcome_t exec_post(hookd_ctx_t *ctx, void *state, const char *certificate_name,
                                 const char *order_name, const char *csr, const char *error)
{
    const char *names[] = {"HOOKD_PHASE",      "HOOKD_EVENT_ID", "HOOKD_CERTIFICATE_NAME",
                           "HOOKD_ORDER_NAME", "HOOKD_CSR",      "HOOKD_ERROR"};
    const char *values[] = {"post", hookd_event_id(ctx), certificate_name, order_name, csr, error};
    return exec_phase(ctx, state, PH_POST, names, values, 6);
}

HOOKD_HANDLER_EXPORT = {
    HOOKD_HANDLER_HEADER,
    .name = "exec",
    .description = "runs an external command per phase with the event in its environment",
    .config_keys = exec_config_keys,
    .init = exec_init,
    .fini = exec_fini,
    .pre_hook = exec_pre,
    .success_hook = exec_success,
    .post_hook = exec_post,
};
