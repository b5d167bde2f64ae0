/* SPDX-License-Identifier: MIT */
/*
 * Process isolation against a hostile handler (tests/hostile/hostile.c):
 * every misbehaviour is contained with the right error class, the next
 * invocation works, no zombie and no descriptor is left behind, and the
 * engine treats a crash like any other failure (flags decide).
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "engine.h"
#include "invoke.h"
#include "isolate.h"
#include "log.h"
#include "registry.h"

#define HOSTILE_SO HOOKD_BINARY_DIR "/tests/hostile/hostile.so"
/*
 * Deadlines of the tests, in ms of an ordinary run. Under valgrind every
 * step is many times slower: scripts/valgrind.sh sets
 * HOOKD_TEST_TIME_SCALE so that a healthy child still answers in time.
 */
#define TIMEOUT_MS 400

static int scaled(int ms)
{
    const char *s = getenv("HOOKD_TEST_TIME_SCALE");
    int k = s ? atoi(s) : 1;
    return ms * (k > 0 ? k : 1);
}

typedef struct fixture {
    hookd_config_t cfg;     /* isolation = process: what the isolate reads */
    hookd_config_t cfg_inv; /* isolation = none: the invoke holds the instances */
    hookd_registry_t *reg;
    hookd_invoke_t *inv;
    hookd_isolate_t *iso;
} fixture_t;

static void fixture_open(fixture_t *f, int timeout_ms)
{
    char err[1024] = "";
    memset(f, 0, sizeof(*f));
    hookd_log_setup(HOOKD_LOG_ERROR, HOOKD_LOGFMT_TEXT);
    hookd_policy_defaults(&f->cfg.policy);
    f->cfg.hooks_file = (char *)HOSTILE_SO;
    f->cfg.isolation = HOOKD_ISOLATION_PROCESS;
    f->cfg.hook_timeout_ms = scaled(timeout_ms);
    f->cfg.hook_rlimit_as_mb = 256;
    f->cfg.hook_rlimit_cpu_s = 30;
    f->cfg.hook_rlimit_nofile = 64;
    f->cfg.limits.max_event_bytes = HOOKD_DEFAULT_MAX_EVENT_BYTES;
    f->cfg.limits.max_field_bytes = HOOKD_DEFAULT_MAX_FIELD_BYTES;
    f->cfg_inv = f->cfg;
    f->cfg_inv.isolation = HOOKD_ISOLATION_NONE;

    f->reg = hookd_registry_load(&f->cfg, NULL, err, sizeof(err));
    cr_assert_not_null(f->reg, "registry: %s", err);
    f->inv = hookd_invoke_create(f->reg, &f->cfg_inv, NULL, err, sizeof(err));
    cr_assert_not_null(f->inv, "invoke: %s", err);
    f->iso = hookd_isolate_create(f->inv, &f->cfg, err, sizeof(err));
    cr_assert_not_null(f->iso, "isolate: %s", err);
}

static void fixture_close(fixture_t *f)
{
    hookd_isolate_destroy(f->iso);
    hookd_invoke_destroy(f->inv);
    hookd_registry_destroy(f->reg);
}

static void call(fixture_t *f, const char *behaviour, hookd_invocation_t *out)
{
    hookd_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = HOOKD_EVENT_REQUESTED;
    ev.format = HOOKD_FORMAT_PLAIN;
    ev.id = "evt-1";
    ev.time = "2026-01-01T00:00:00Z";
    ev.certificate_name = behaviour;
    ev.order_name = "order-1";
    ev.csr = "MIIB";
    hookd_isolate_call(f->iso, 0, HOOKD_PHASE_PRE, &ev, out);
}

static void expect_ok(fixture_t *f)
{
    hookd_invocation_t out;
    call(f, "ok", &out);
    cr_assert_eq(out.outcome, HOOKD_OK, "next invocation: outcome %d (%s)", out.outcome, out.error);
    cr_assert_eq(out.error_class, HOOKD_ERRCLASS_NONE);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* Fields of /proc/<pid>/stat we look at. */
typedef struct proc_stat {
    char state;
    long ppid, pgrp;
} proc_stat_t;

static int read_stat(const char *pid, proc_stat_t *ps)
{
    char path[300], buf[512];
    FILE *fp;
    char *rp;
    snprintf(path, sizeof(path), "/proc/%s/stat", pid);
    fp = fopen(path, "re");
    if (fp == NULL)
        return -1;
    if (fgets(buf, sizeof(buf), fp) == NULL) {
        fclose(fp);
        return -1;
    }
    fclose(fp);
    rp = strrchr(buf, ')'); /* the command name may hold spaces */
    if (rp == NULL || sscanf(rp + 1, " %c %ld %ld", &ps->state, &ps->ppid, &ps->pgrp) != 3)
        return -1;
    return 0;
}

/* Children of this process: how many, and how many of them zombies. */
static void count_children(int *total, int *zombies)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    *total = *zombies = 0;
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL) {
        proc_stat_t ps;
        if (e->d_name[0] < '0' || e->d_name[0] > '9' || read_stat(e->d_name, &ps) != 0)
            continue;
        if (ps.ppid == (long)getpid()) {
            (*total)++;
            if (ps.state == 'Z')
                (*zombies)++;
        }
    }
    closedir(d);
}

static int count_group(pid_t pgrp)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL) {
        proc_stat_t ps;
        if (e->d_name[0] < '0' || e->d_name[0] > '9' || read_stat(e->d_name, &ps) != 0)
            continue;
        /* a zombie not yet reaped by init is dead already */
        if (ps.pgrp == (long)pgrp && ps.state != 'Z')
            n++;
    }
    closedir(d);
    return n;
}

/*
 * Processes SIGKILLed through their group die asynchronously; wait for the
 * group to empty (the event), giving up after 10 s (the failure).
 */
static int await_group_gone(pid_t pgrp)
{
    struct timespec step = {0, 10 * 1000 * 1000};
    int i, n = 0;
    for (i = 0; i < 1000; i++) {
        n = count_group(pgrp);
        if (n == 0)
            return 0;
        nanosleep(&step, NULL);
    }
    return n;
}

static uint64_t ms_now(void)
{
    return hookd_now_ms();
}

static pid_t child_pid(fixture_t *f)
{
    hookd_isolate_stats_t st;
    hookd_isolate_stats(f->iso, &st);
    return st.pid;
}

/* ---- outcomes the handler reports ---------------------------------------- */

Test(isolate, ok_and_fail_pass_through)
{
    fixture_t f;
    hookd_invocation_t out;
    fixture_open(&f, TIMEOUT_MS);
    expect_ok(&f);
    call(&f, "fail", &out);
    cr_assert_eq(out.outcome, HOOKD_FAIL);
    cr_assert_eq(out.error_class, HOOKD_ERRCLASS_HOOK_FAILED);
    cr_assert_str_eq(out.error, "hostile: asked to fail");
    expect_ok(&f);
    fixture_close(&f);
}

Test(isolate, child_is_reused_between_invocations)
{
    fixture_t f;
    pid_t first;
    hookd_isolate_stats_t st;
    fixture_open(&f, TIMEOUT_MS);
    first = child_pid(&f);
    cr_assert_gt(first, 0);
    for (int i = 0; i < 20; i++)
        expect_ok(&f);
    cr_assert_eq(child_pid(&f), first);
    hookd_isolate_stats(f.iso, &st);
    cr_assert_eq(st.spawned, 1);
    cr_assert_eq(st.calls, 20);
    fixture_close(&f);
}

Test(isolate, max_uses_one_forks_per_invocation)
{
    fixture_t f;
    pid_t a, b;
    fixture_open(&f, TIMEOUT_MS);
    hookd_isolate_set_max_uses(f.iso, 1);
    expect_ok(&f);
    a = child_pid(&f);
    expect_ok(&f);
    b = child_pid(&f);
    cr_assert_neq(a, b);
    fixture_close(&f);
}

/* ---- crashes ---------------------------------------------------------- */

static void expect_crash(const char *behaviour, const char *needle)
{
    fixture_t f;
    hookd_invocation_t out;
    hookd_isolate_stats_t st;
    pid_t before;
    int fds, total, zombies;

    fixture_open(&f, TIMEOUT_MS);
    expect_ok(&f);
    fds = count_fds();
    before = child_pid(&f);
    call(&f, behaviour, &out);
    cr_assert_eq(out.outcome, HOOKD_FAIL, "%s: outcome %d", behaviour, out.outcome);
    cr_assert_eq(out.error_class, HOOKD_ERRCLASS_HOOK_CRASHED, "%s: class %s (%s)", behaviour,
                 hookd_error_class_name(out.error_class), out.error);
    cr_assert_not_null(strstr(out.error, needle), "%s: error '%s' lacks '%s'", behaviour, out.error,
                       needle);
    hookd_isolate_stats(f.iso, &st);
    cr_assert_eq(st.crashed, 1);
    cr_assert_eq(st.pid, 0, "the dead child is forgotten");
    count_children(&total, &zombies);
    cr_assert_eq(total, 0, "no child left after the crash (found %d)", total);
    cr_assert_eq(zombies, 0);
    cr_assert_eq(await_group_gone(before), 0);

    expect_ok(&f); /* a new child serves the next event */
    cr_assert_neq(child_pid(&f), before);
    cr_assert_eq(count_fds(), fds, "descriptors: %d before, %d after", fds, count_fds());
    fixture_close(&f);
    count_children(&total, &zombies);
    cr_assert_eq(total, 0);
}

#if defined(__SANITIZE_ADDRESS__)
#define HOOKD_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HOOKD_TEST_ASAN 1
#endif
#endif

Test(isolate, segv_is_hook_crashed)
{
    /* also under ASan: the child resets every signal handler, ASan's too */
    expect_crash("segv", "SIGSEGV");
}

Test(isolate, abort_is_hook_crashed)
{
    expect_crash("abort", "SIGABRT");
}

Test(isolate, exit_is_hook_crashed)
{
    expect_crash("exit3", "status 3");
}

Test(isolate, protocol_garbage_is_hook_crashed)
{
    /* the handler writes junk on the child's end of the socket */
    expect_crash("garbage", "protocol");
}

/* ---- overruns --------------------------------------------------------- */

static void expect_timeout(const char *behaviour, int timeout_ms)
{
    fixture_t f;
    hookd_invocation_t out;
    hookd_isolate_stats_t st;
    uint64_t t0, took;
    pid_t before;
    int fds, total, zombies;

    fixture_open(&f, timeout_ms);
    expect_ok(&f);
    fds = count_fds();
    before = child_pid(&f);
    t0 = ms_now();
    call(&f, behaviour, &out);
    took = ms_now() - t0;
    cr_assert_eq(out.outcome, HOOKD_FAIL);
    cr_assert_eq(out.error_class, HOOKD_ERRCLASS_HOOK_TIMEOUT, "%s: class %s (%s)", behaviour,
                 hookd_error_class_name(out.error_class), out.error);
    /* the deadline holds: not before it, and not unboundedly after it */
    cr_assert_geq(took, (uint64_t)scaled(timeout_ms) - 1);
    cr_assert_lt(took, (uint64_t)scaled(timeout_ms) + (uint64_t)scaled(5000), "took %llu ms",
                 (unsigned long long)took);
    hookd_isolate_stats(f.iso, &st);
    cr_assert_eq(st.timed_out, 1);
    count_children(&total, &zombies);
    cr_assert_eq(total, 0);
    cr_assert_eq(await_group_gone(before), 0, "the child's process group is gone");

    expect_ok(&f);
    cr_assert_eq(count_fds(), fds);
    fixture_close(&f);
}

Test(isolate, sleep_forever_is_hook_timeout)
{
    expect_timeout("hang", TIMEOUT_MS);
}

Test(isolate, busy_loop_is_hook_timeout)
{
    expect_timeout("spin", TIMEOUT_MS);
}

Test(isolate, closing_the_socket_then_hanging_is_hook_timeout)
{
    expect_timeout("closehang", TIMEOUT_MS);
}

Test(isolate, cpu_limit_is_hook_timeout)
{
    fixture_t f;
    hookd_invocation_t out;
    char err[512];
    memset(&f, 0, sizeof(f));
    fixture_open(&f, 20000);
    /* a second child with a 1 s CPU budget and a deadline far beyond it */
    hookd_isolate_destroy(f.iso);
    f.cfg.hook_rlimit_cpu_s = 1;
    f.iso = hookd_isolate_create(f.inv, &f.cfg, err, sizeof(err));
    cr_assert_not_null(f.iso, "%s", err);
    call(&f, "spin", &out);
    cr_assert_eq(out.error_class, HOOKD_ERRCLASS_HOOK_TIMEOUT, "class %s (%s)",
                 hookd_error_class_name(out.error_class), out.error);
    cr_assert_not_null(strstr(out.error, "CPU time limit"), "%s", out.error);
    expect_ok(&f);
    fixture_close(&f);
}

/* ---- resources -------------------------------------------------------- */

Test(isolate, address_space_limit_stops_an_allocation_bomb)
{
    fixture_t f;
    hookd_invocation_t out;
    fixture_open(&f, 10000);
    call(&f, "allocbomb", &out);
    cr_assert_eq(out.outcome, HOOKD_FAIL);
#ifdef HOOKD_TEST_ASAN
    /* ASan's allocator may abort on an mmap failure instead of returning NULL */
    cr_assert(out.error_class == HOOKD_ERRCLASS_HOOK_FAILED ||
              out.error_class == HOOKD_ERRCLASS_HOOK_CRASHED);
#else
    cr_assert_eq(out.error_class, HOOKD_ERRCLASS_HOOK_FAILED, "class %s (%s)",
                 hookd_error_class_name(out.error_class), out.error);
    cr_assert_str_eq(out.error, "hostile: malloc failed as it should");
#endif
    expect_ok(&f);
    fixture_close(&f);
}

Test(isolate, leaked_descriptors_stay_in_the_child)
{
    fixture_t f;
    hookd_invocation_t out;
    int fds;
    fixture_open(&f, TIMEOUT_MS);
    expect_ok(&f);
    fds = count_fds();
    for (int i = 0; i < 10; i++) {
        call(&f, "leakfd", &out);
        cr_assert_eq(out.outcome, HOOKD_OK, "%s", out.error);
    }
    cr_assert_eq(count_fds(), fds);
    fixture_close(&f);
}

Test(isolate, grandchildren_die_with_the_child)
{
    fixture_t f;
    hookd_invocation_t out;
    pid_t pid;
    int total, zombies;
    fixture_open(&f, TIMEOUT_MS);
    call(&f, "forkhang", &out);
    cr_assert_eq(out.outcome, HOOKD_OK, "%s", out.error);
    pid = child_pid(&f);
    cr_assert_eq(count_group(pid), 2, "child and its grandchild share a process group");
    fixture_close(&f);
    cr_assert_eq(await_group_gone(pid), 0);
    count_children(&total, &zombies);
    cr_assert_eq(total, 0);
}

/*
 * RLIMIT_NPROC does not bind root, and a fork bomb as root would hit the
 * whole host: run this test as an otherwise unused uid.
 */
Test(isolate, fork_bomb_is_contained)
{
    fixture_t f;
    hookd_invocation_t out;
    pid_t pid;
    int total, zombies;

    if (geteuid() == 0) {
        uid_t uid = (uid_t)(40000 + getpid() % 20000);
        cr_assert_eq(setgroups(0, NULL), 0);
        cr_assert_eq(setresgid(uid, uid, uid), 0);
        cr_assert_eq(setresuid(uid, uid, uid), 0, "%s", strerror(errno));
    }
    fixture_open(&f, 1000);
    expect_ok(&f);
    pid = child_pid(&f);
    call(&f, "forkbomb", &out);
    cr_assert_eq(out.outcome, HOOKD_FAIL);
    cr_assert_eq(out.error_class, HOOKD_ERRCLASS_HOOK_TIMEOUT, "class %s (%s)",
                 hookd_error_class_name(out.error_class), out.error);
    cr_assert_eq(await_group_gone(pid), 0, "the bomb's processes are all gone");
    count_children(&total, &zombies);
    cr_assert_eq(total, 0);
    expect_ok(&f);
    fixture_close(&f);
}

Test(isolate, a_child_that_died_between_calls_is_replaced)
{
    fixture_t f;
    pid_t pid;
    int total, zombies;
    fixture_open(&f, TIMEOUT_MS);
    pid = child_pid(&f);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    /*
     * Await its death, so it really died between calls: reapable, as the
     * isolate looks for it (WNOWAIT leaves the reaping to it). The state
     * 'Z' in /proc/<pid>/stat is not enough: that is the main thread's, and
     * a process with more threads (ThreadSanitizer starts one in every
     * forked child) becomes reapable only once the last of them is gone.
     */
    {
        siginfo_t si;
        struct timespec step = {0, 5 * 1000 * 1000};
        memset(&si, 0, sizeof(si));
        for (int i = 0;
             i < 2000 &&
             (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid != pid);
             i++)
            nanosleep(&step, NULL);
        cr_assert_eq(si.si_pid, pid, "the killed child is not reapable after 10 s");
    }
    /* not blamed on the next event: a fresh child serves it */
    expect_ok(&f);
    cr_assert_neq(child_pid(&f), pid);
    count_children(&total, &zombies);
    cr_assert_eq(total, 1);
    cr_assert_eq(zombies, 0);
    fixture_close(&f);
}

/*
 * A child whose socket says EOF between calls while it is not reapable yet
 * (a dying process of several threads closes its descriptors a moment
 * before it becomes reapable; here a live child shut down its writing side)
 * is replaced before the next event reaches it: that event is not blamed.
 */
Test(isolate, a_child_that_closed_its_socket_between_calls_is_replaced)
{
    fixture_t f;
    hookd_invocation_t out;
    hookd_isolate_stats_t st;
    char dir[] = "/tmp/hostile-halfclose-XXXXXX", trigger[64], marker[64];
    struct timespec step = {0, 5 * 1000 * 1000};
    pid_t pid;
    int fd;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(trigger, sizeof(trigger), "%s/trigger", dir);
    snprintf(marker, sizeof(marker), "%s/done", dir);
    cr_assert_eq(mkfifo(trigger, 0600), 0);
    cr_assert_eq(setenv("HOSTILE_TRIGGER", trigger, 1), 0);
    cr_assert_eq(setenv("HOSTILE_MARKER", marker, 1), 0);
    fixture_open(&f, TIMEOUT_MS);
    call(&f, "halfclose", &out);
    cr_assert_eq(out.outcome, HOOKD_OK, "%s", out.error);
    pid = child_pid(&f);
    /* the call has been answered: now its grandchild shuts the socket down */
    fd = open(trigger, O_WRONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "x", 1), 1);
    close(fd);
    /* await the shutdown: the marker is created right after it */
    for (int i = 0; i < 2000 && access(marker, F_OK) != 0; i++)
        nanosleep(&step, NULL);
    cr_assert_eq(access(marker, F_OK), 0, "the socket was not shut down in 10 s");
    expect_ok(&f);
    cr_assert_neq(child_pid(&f), pid, "a fresh child served the event");
    hookd_isolate_stats(f.iso, &st);
    cr_assert_eq(st.crashed, 0);
    cr_assert_eq(st.timed_out, 0);
    fixture_close(&f);
    unsetenv("HOSTILE_TRIGGER");
    unsetenv("HOSTILE_MARKER");
    unlink(trigger);
    unlink(marker);
    rmdir(dir);
}

Test(isolate, many_hostile_invocations_leak_nothing)
{
    static const char *const seq[] = {"segv",  "ok",     "hang",      "abort",   "ok",
                                      "exit3", "leakfd", "closehang", "garbage", "fail"};
    fixture_t f;
    hookd_invocation_t out;
    int fds, total, zombies;
    fixture_open(&f, 200);
    expect_ok(&f);
    fds = count_fds();
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
            call(&f, seq[i], &out);
            expect_ok(&f);
        }
    }
    cr_assert_eq(count_fds(), fds);
    count_children(&total, &zombies);
    cr_assert_eq(total, 1, "only the live child (found %d)", total);
    cr_assert_eq(zombies, 0);
    fixture_close(&f);
    count_children(&total, &zombies);
    cr_assert_eq(total, 0);
}

/* ---- the engine decides on a crash as on any failure ------------------- */

typedef struct iso_seam {
    hookd_isolate_t *iso;
} iso_seam_t;

static void seam_invoke(void *opaque, size_t idx, hookd_phase_t phase, const hookd_event_t *ev,
                        hookd_invocation_t *out)
{
    iso_seam_t *s = opaque;
    hookd_isolate_call(s->iso, idx, phase, ev, out);
}

static bool seam_backoff(void *opaque, uint32_t ms)
{
    (void)opaque;
    (void)ms;
    return true;
}

static void run_engine(fixture_t *f, const char *behaviour, bool allow_pre, hookd_decision_t *d)
{
    iso_seam_t s = {f->iso};
    hookd_invoker_t invoker = {seam_invoke, seam_backoff, NULL, &s};
    hookd_policy_t policy;
    hookd_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = HOOKD_EVENT_REQUESTED;
    ev.id = "evt-engine";
    ev.certificate_name = behaviour;
    ev.order_name = "order";
    ev.csr = "MIIB";
    hookd_policy_defaults(&policy);
    policy.allow_failure[HOOKD_PHASE_PRE] = allow_pre;
    hookd_engine_run(&ev, hookd_registry_chain(f->reg), &policy, &invoker, d);
}

Test(isolate, engine_dead_letters_a_crash_unless_allowed)
{
    fixture_t f;
    hookd_decision_t *d = calloc(1, sizeof(*d));
    cr_assert_not_null(d);
    fixture_open(&f, TIMEOUT_MS);

    run_engine(&f, "segv", false, d);
    cr_assert_eq(d->verdict, HOOKD_VERDICT_FAILED);
    cr_assert(d->dead_letter);
    cr_assert_eq(d->error_class, HOOKD_ERRCLASS_HOOK_CRASHED);
    cr_assert_eq(d->run_count, 1);
    cr_assert_eq(d->runs[0].attempts, 1, "a crash is not retried");

    run_engine(&f, "hang", true, d);
    cr_assert_eq(d->verdict, HOOKD_VERDICT_COMPLETED);
    cr_assert_not(d->dead_letter);
    cr_assert_eq(d->run_count, 1);
    cr_assert(d->runs[0].failure_allowed);
    cr_assert_eq(d->runs[0].error_class, HOOKD_ERRCLASS_HOOK_TIMEOUT);

    run_engine(&f, "ok", false, d);
    cr_assert_eq(d->verdict, HOOKD_VERDICT_COMPLETED);
    fixture_close(&f);
    free(d);
}

/* The daemon's path: hookd_invoke_create() with isolation = process. */
Test(isolate, invoke_seam_isolates_when_configured)
{
    fixture_t f;
    hookd_invoke_t *inv;
    const hookd_invoker_t *invoker;
    hookd_invocation_t out;
    hookd_event_t ev;
    char err[1024];
    int total, zombies;

    fixture_open(&f, TIMEOUT_MS);
    inv = hookd_invoke_create(f.reg, &f.cfg, NULL, err, sizeof(err));
    cr_assert_not_null(inv, "%s", err);
    invoker = hookd_invoke_invoker(inv);
    memset(&ev, 0, sizeof(ev));
    ev.type = HOOKD_EVENT_REQUESTED;
    ev.id = "evt-seam";
    ev.order_name = "order";
    ev.csr = "MIIB";
    ev.certificate_name = "abort";
    invoker->invoke(invoker->opaque, 0, HOOKD_PHASE_PRE, &ev, &out);
    cr_assert_eq(out.error_class, HOOKD_ERRCLASS_HOOK_CRASHED, "class %s (%s)",
                 hookd_error_class_name(out.error_class), out.error);
    ev.certificate_name = "ok";
    invoker->invoke(invoker->opaque, 0, HOOKD_PHASE_PRE, &ev, &out);
    cr_assert_eq(out.outcome, HOOKD_OK, "%s", out.error);
    hookd_invoke_destroy(inv);
    fixture_close(&f);
    count_children(&total, &zombies);
    cr_assert_eq(total, 0);
}
