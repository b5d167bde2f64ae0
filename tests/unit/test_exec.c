/* SPDX-License-Identifier: MIT */
/*
 * The exec handler: environment of the command, exit status to outcome,
 * stderr as the (capped, cleaned) error, the deadline, and that nothing is
 * left behind: no zombie, no stray process of the group, no descriptor.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "fake_host.h"
#include "invoke.h"
#include "proc_tree.h"
#include "registry.h"

static hookd_registry_t *reg;
static const hookd_handler_t *h;
static char dir[PATH_MAX];

static void setup(void)
{
    hookd_config_t cfg;
    char err[512];

    memset(&cfg, 0, sizeof(cfg));
    cfg.hooks_file = "exec";
    reg = hookd_registry_load(&cfg, NULL, err, sizeof(err));
    cr_assert_not_null(reg, "%s", err);
    h = hookd_registry_handler(reg, 0);
    snprintf(dir, sizeof(dir), "%s/tests/exec-XXXXXX", HOOKD_BINARY_DIR);
    cr_assert_not_null(mkdtemp(dir), "%s", strerror(errno));
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    hookd_registry_destroy(reg);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(exec, .init = setup, .fini = teardown, .timeout = 60);

static void *start(fake_host_t *fh, const char *const *cfg)
{
    void *st = NULL;
    fake_host_init(fh, cfg, "ev-1");
    cr_assert_eq(h->init(&fh->ctx, &st), HOOKD_OK, "%s", fh->error);
    return st;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf;
    long n;
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return buf;
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
    return n;
}

static void assert_no_children(void)
{
    int status;
    errno = 0;
    cr_assert_eq(waitpid(-1, &status, WNOHANG), -1, "a child is left over");
    cr_assert_eq(errno, ECHILD);
}

/* HOOKD_TEST_TIME_SCALE (valgrind): deadlines of the tests stretch by it. */
static int time_scale(void)
{
    const char *v = getenv("HOOKD_TEST_TIME_SCALE");
    int n = v ? atoi(v) : 1;
    return n > 0 ? n : 1;
}

/*
 * The command writes "PID STARTTIME" of a process it started into `path`
 * (see PID_RECORD); wait (bounded) until that very process is gone.
 */
#define PID_RECORD(var) "echo " var " $(cut -d' ' -f22 /proc/" var "/stat)"

static long long wait_recorded_gone(const char *path, int timeout_ms)
{
    char *text = slurp(path);
    pt_set_t s;
    unsigned long long start = 0;
    int pid = 0;

    memset(&s, 0, sizeof(s));
    cr_assert_eq(sscanf(text, "%d %llu", &pid, &start), 2, "pid record: '%s'", text);
    free(text);
    cr_assert_gt(pid, 0);
    s.p[0].pid = (pid_t)pid;
    s.p[0].start = start;
    s.n = 1;
    return pt_wait_gone(&s, timeout_ms);
}

Test(exec, the_event_is_in_the_environment)
{
    char cmd[PATH_MAX + 64], out[PATH_MAX + 16];
    const char *cfg[] = {
        "exec_pre_command", cmd, "exec_success_command", cmd, "exec_post_command", cmd, NULL};
    fake_host_t fh;
    void *st;
    char *env;

    snprintf(out, sizeof(out), "%s/env", dir);
    snprintf(cmd, sizeof(cmd), "env > '%s.'\"$HOOKD_PHASE\"", out);
    setenv("ACME_HOOKD_KAFKA_RDKAFKA__SASL__PASSWORD", "do-not-leak", 1);
    setenv("LANG", "C.UTF-8", 1);
    st = start(&fh, cfg);

    cr_assert_eq(h->pre_hook(&fh.ctx, st, "cert-1", "order-1", "Q1NS"), HOOKD_OK, "%s", fh.error);
    fake_host_reset(&fh, "ev-2");
    cr_assert_eq(h->success_hook(&fh.ctx, st, "cert-1", "order-1", "Q1NS",
                                 "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
                                 "QUE=", NULL),
                 HOOKD_OK, "%s", fh.error);
    fake_host_reset(&fh, "ev-3");
    cr_assert_eq(h->post_hook(&fh.ctx, st, "cert-1", "order-1", "Q1NS", "CA refused"), HOOKD_OK,
                 "%s", fh.error);

    snprintf(out, sizeof(out), "%s/env.pre", dir);
    env = slurp(out);
    cr_assert(strstr(env, "HOOKD_PHASE=pre\n"), "%s", env);
    cr_assert(strstr(env, "HOOKD_EVENT_ID=ev-1\n"), "%s", env);
    cr_assert(strstr(env, "HOOKD_CERTIFICATE_NAME=cert-1\n"), "%s", env);
    cr_assert(strstr(env, "HOOKD_ORDER_NAME=order-1\n"), "%s", env);
    cr_assert(strstr(env, "HOOKD_CSR=Q1NS\n"), "%s", env);
    cr_assert(strstr(env, "PATH="), "%s", env);
    cr_assert(strstr(env, "LANG=C.UTF-8\n"), "passed through by default: %s", env);
    cr_assert_null(strstr(env, "HOOKD_CERTIFICATE="), "%s", env);
    cr_assert_null(strstr(env, "do-not-leak"), "the worker's environment must not leak");
    free(env);

    snprintf(out, sizeof(out), "%s/env.success", dir);
    env = slurp(out);
    cr_assert(strstr(env, "HOOKD_PHASE=success\n"), "%s", env);
    cr_assert(strstr(env, "HOOKD_EVENT_ID=ev-2\n"), "%s", env);
    cr_assert(strstr(env, "HOOKD_CERTIFICATE=-----BEGIN CERTIFICATE-----\nAA==\n"), "%s", env);
    cr_assert(strstr(env, "HOOKD_CERTIFICATE_RAW=QUE=\n"), "%s", env);
    cr_assert_null(strstr(env, "HOOKD_POLL_IDENTIFIER"), "null field: unset: %s", env);
    free(env);

    snprintf(out, sizeof(out), "%s/env.post", dir);
    env = slurp(out);
    cr_assert(strstr(env, "HOOKD_PHASE=post\n"), "%s", env);
    cr_assert(strstr(env, "HOOKD_ERROR=CA refused\n"), "%s", env);
    free(env);

    h->fini(&fh.ctx, st);
    assert_no_children();
}

Test(exec, exit_status_decides_the_outcome)
{
    const char *cfg[] = {"exec_pre_command", "exit \"$HOOKD_CERTIFICATE_NAME\"", NULL};
    fake_host_t fh;
    void *st = start(&fh, cfg);

    cr_assert_eq(h->pre_hook(&fh.ctx, st, "0", "o", "csr"), HOOKD_OK, "%s", fh.error);
    cr_assert_eq(fh.error_calls, 0);
    cr_assert_eq(h->pre_hook(&fh.ctx, st, "75", "o", "csr"), HOOKD_RETRY);
    cr_assert(strstr(fh.error, "retry"), "%s", fh.error);
    fake_host_reset(&fh, "ev-2");
    cr_assert_eq(h->pre_hook(&fh.ctx, st, "3", "o", "csr"), HOOKD_FAIL);
    cr_assert(strstr(fh.error, "pre command exited with status 3"), "%s", fh.error);
    h->fini(&fh.ctx, st);
    assert_no_children();
}

Test(exec, stderr_is_the_error_message)
{
    const char *cfg[] = {
        "exec_post_command",
        "echo 'to the log'; echo \"deploy of $HOOKD_CERTIFICATE_NAME failed\" >&2; "
        "exit 1",
        NULL};
    fake_host_t fh;
    void *st = start(&fh, cfg);

    cr_assert_eq(h->post_hook(&fh.ctx, st, "cert-7", "o", "csr", NULL), HOOKD_FAIL);
    cr_assert_str_eq(fh.error, "exec: post command exited with status 1: deploy of cert-7 failed");
    cr_assert(strstr(fh.logs, "to the log"), "stdout is logged: %s", fh.logs);
    h->fini(&fh.ctx, st);
}

Test(exec, phases_without_a_command_do_nothing)
{
    char marker[PATH_MAX + 16], cmd[PATH_MAX + 32];
    const char *cfg[] = {"exec_success_command", cmd, NULL};
    fake_host_t fh;
    void *st;

    snprintf(marker, sizeof(marker), "%s/ran", dir);
    snprintf(cmd, sizeof(cmd), "touch '%s'", marker);
    st = start(&fh, cfg);
    cr_assert_eq(h->pre_hook(&fh.ctx, st, "c", "o", "csr"), HOOKD_OK);
    cr_assert_eq(h->post_hook(&fh.ctx, st, "c", "o", "csr", NULL), HOOKD_OK);
    cr_assert_neq(access(marker, F_OK), 0, "no command ran");
    cr_assert_eq(h->success_hook(&fh.ctx, st, "c", "o", "csr", "p", "r", NULL), HOOKD_OK);
    cr_assert_eq(access(marker, F_OK), 0, "the success command ran");
    h->fini(&fh.ctx, st);
}

Test(exec, stderr_is_capped_and_big_output_does_not_block)
{
    const char *cfg[] = {"exec_pre_command",
                         "head -c 3000000 /dev/zero | tr '\\0' o; "
                         "head -c 3000000 /dev/zero | tr '\\0' e >&2; exit 2",
                         "exec_max_stderr_bytes", "100", NULL};
    fake_host_t fh;
    void *st = start(&fh, cfg);
    const char *tail;

    cr_assert_eq(h->pre_hook(&fh.ctx, st, "c", "o", "csr"), HOOKD_FAIL);
    cr_assert(strstr(fh.error, "status 2: eeee"), "%s", fh.error);
    tail = strstr(fh.error, "[truncated]");
    cr_assert_not_null(tail, "%s", fh.error);
    cr_assert_lt(strlen(fh.error), 200, "capped: %zu bytes", strlen(fh.error));
    h->fini(&fh.ctx, st);
    assert_no_children();
}

Test(exec, stderr_is_cleaned_to_valid_utf8)
{
    const char *cfg[] = {"exec_pre_command",
                         "printf 'caf\\303\\251 \\377\\376bad\\033[31m\\n\\n' >&2; exit 1", NULL};
    fake_host_t fh;
    void *st = start(&fh, cfg);

    cr_assert_eq(h->pre_hook(&fh.ctx, st, "c", "o", "csr"), HOOKD_FAIL);
    cr_assert_str_eq(fh.error, "exec: pre command exited with status 1: caf\xc3\xa9 ??bad?[31m");
    h->fini(&fh.ctx, st);
}

Test(exec, timeout_kills_the_process_group)
{
    char pidfile[PATH_MAX + 16], cmd[PATH_MAX + 128];
    const char *cfg[] = {"exec_pre_command", cmd, "exec_timeout_ms", "300", NULL};
    fake_host_t fh;
    void *st;

    snprintf(pidfile, sizeof(pidfile), "%s/pid", dir);
    snprintf(cmd, sizeof(cmd), "sleep 120 & " PID_RECORD("$!") " > '%s'; echo waiting >&2; wait",
             pidfile);
    st = start(&fh, cfg);

    cr_assert_eq(h->pre_hook(&fh.ctx, st, "c", "o", "csr"), HOOKD_FAIL);
    cr_assert(strstr(fh.error, "timed out after 300 ms"), "%s", fh.error);
    cr_assert(strstr(fh.error, "waiting"), "stderr so far is kept: %s", fh.error);
    /* The background sleep was in the group: it is gone now, not in 120 s. */
    cr_assert_geq(wait_recorded_gone(pidfile, 2000), 0, "the background job outlived the hook");
    h->fini(&fh.ctx, st);
    assert_no_children();
}

Test(exec, leftovers_of_a_finished_command_are_killed)
{
    char pidfile[PATH_MAX + 16], cmd[PATH_MAX + 128];
    const char *cfg[] = {"exec_pre_command", cmd, NULL};
    fake_host_t fh;
    void *st;

    snprintf(pidfile, sizeof(pidfile), "%s/pid", dir);
    /* The background job keeps stdout/stderr open: the hook must not wait
     * for it, nor leave it running. */
    snprintf(cmd, sizeof(cmd), "sleep 120 & " PID_RECORD("$!") " > '%s'; exit 0", pidfile);
    st = start(&fh, cfg);
    cr_assert_eq(h->pre_hook(&fh.ctx, st, "c", "o", "csr"), HOOKD_OK, "%s", fh.error);
    cr_assert_geq(wait_recorded_gone(pidfile, 2000), 0, "the background job outlived the hook");
    h->fini(&fh.ctx, st);
    assert_no_children();
}

/* A hook run on its own thread, so that the test can watch its processes. */
typedef struct hook_thread {
    fake_host_t fh;
    void *st;
    hookd_outcome_t rc;
} hook_thread_t;

static void *run_pre_hook(void *arg)
{
    hook_thread_t *t = arg;
    t->rc = h->pre_hook(&t->fh.ctx, t->st, "c", "o", "csr");
    return NULL;
}

/*
 * The exec deadline (isolation = none): every process of the command
 * (shell, sub-shell, two background sleeps, the guard) is gone within 2 s
 * of the result.
 */
Test(exec, a_deadline_kills_every_process_the_command_started)
{
    char timeout[32];
    const char *cfg[] = {"exec_pre_command", "sh -c 'sleep 41 & sleep 42 & wait'; echo never",
                         "exec_timeout_ms", timeout, NULL};
    hook_thread_t t;
    pthread_t th;
    pt_set_t tree;
    long long gone;

    snprintf(timeout, sizeof(timeout), "%d", 1000 * time_scale());
    t.st = start(&t.fh, cfg);
    cr_assert_eq(pthread_create(&th, NULL, run_pre_hook, &t), 0);
    cr_assert(pt_wait_descendants(getpid(), "sleep", 2, &tree, 5000 * time_scale()),
              "the command's two sleeps never ran");
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(t.rc, HOOKD_FAIL);
    cr_assert(strstr(t.fh.error, "timed out"), "%s", t.fh.error);
    gone = pt_wait_gone(&tree, 2000);
    cr_assert_geq(gone, 0, "processes of the command outlived its deadline");
    cr_log_info("exec timeout: %zu processes, all gone %lld ms after the result", tree.n, gone);
    h->fini(&t.fh.ctx, t.st);
    assert_no_children();
}

Test(exec, killed_by_a_signal_is_a_failure)
{
    const char *cfg[] = {"exec_pre_command", "echo dying >&2; kill -TERM $$", NULL};
    fake_host_t fh;
    void *st = start(&fh, cfg);

    cr_assert_eq(h->pre_hook(&fh.ctx, st, "c", "o", "csr"), HOOKD_FAIL);
    cr_assert(strstr(fh.error, "killed by signal 15 (SIGTERM): dying"), "%s", fh.error);
    h->fini(&fh.ctx, st);
    assert_no_children();
}

Test(exec, missing_program_is_a_failure_with_the_shell_message)
{
    const char *cfg[] = {"exec_pre_command", "/nonexistent/deploy-hook", NULL};
    fake_host_t fh;
    void *st = start(&fh, cfg);

    cr_assert_eq(h->pre_hook(&fh.ctx, st, "c", "o", "csr"), HOOKD_FAIL);
    cr_assert(strstr(fh.error, "status 127"), "%s", fh.error);
    cr_assert(strstr(fh.error, "/nonexistent/deploy-hook"), "%s", fh.error);
    h->fini(&fh.ctx, st);
}

Test(exec, no_descriptor_leaks_in_either_direction)
{
    char out[PATH_MAX + 16], cmd[PATH_MAX + 64];
    const char *cfg[] = {"exec_pre_command", cmd, NULL};
    fake_host_t fh;
    void *st;
    int leaky, before, i;
    char *listing, want[256];

    /* A descriptor the worker opened without O_CLOEXEC (a library's, say). */
    leaky = open("/dev/null", O_RDONLY);
    cr_assert(leaky >= 0);
    cr_assert_eq(dup2(leaky, 57), 57);
    snprintf(out, sizeof(out), "%s/fds", dir);
    snprintf(cmd, sizeof(cmd), "ls /proc/$$/fd > '%s'", out);
    st = start(&fh, cfg);

    before = count_fds();
    for (i = 0; i < 20; i++)
        cr_assert_eq(h->pre_hook(&fh.ctx, st, "c", "o", "csr"), HOOKD_OK, "%s", fh.error);
    cr_assert_eq(count_fds(), before, "the handler leaks descriptors");

    /* The shell's descriptors: 0-2, maybe one of its own (dash keeps 10
     * for redirections), never the worker's 57. */
    listing = slurp(out);
    snprintf(want, sizeof(want), "\n%s", listing);
    cr_assert_null(strstr(want, "\n57\n"), "fd 57 reached the command: %s", listing);
    cr_assert(strstr(want, "\n0\n") && strstr(want, "\n1\n") && strstr(want, "\n2\n"),
              "stdin/out/err are there: %s", listing);
    free(listing);
    close(57);
    close(leaky);
    h->fini(&fh.ctx, st);
    assert_no_children();
}

Test(exec, stdin_is_dev_null)
{
    const char *cfg[] = {"exec_pre_command",
                         "if read line; then echo \"got $line\" >&2; exit 1; fi", NULL};
    fake_host_t fh;
    void *st = start(&fh, cfg);
    cr_assert_eq(h->pre_hook(&fh.ctx, st, "c", "o", "csr"), HOOKD_OK, "%s", fh.error);
    h->fini(&fh.ctx, st);
}

Test(exec, pass_env_names_what_is_passed)
{
    char out[PATH_MAX + 16], cmd[PATH_MAX + 64];
    const char *cfg[] = {"exec_pre_command", cmd, "exec_pass_env", "HOOKD_TEST_A, HOOKD_TEST_B",
                         NULL};
    const char *cfg_ok[] = {"exec_pre_command", cmd, "exec_pass_env", "MY_DEPLOY_TOKEN", NULL};
    const char *cfg_secret[] = {"exec_pre_command", cmd, "exec_pass_env",
                                "HOME ACME_HOOKD_KAFKA_RDKAFKA__SASL__PASSWORD", NULL};
    fake_host_t fh;
    void *st = NULL;
    char *env;

    snprintf(out, sizeof(out), "%s/env", dir);
    snprintf(cmd, sizeof(cmd), "env > '%s'", out);

    /* HOOKD_* is the handler's own namespace, ACME_HOOKD_* the worker's
     * configuration (with its secrets). */
    fake_host_init(&fh, cfg, NULL);
    cr_assert_eq(h->init(&fh.ctx, &st), HOOKD_FAIL);
    cr_assert(strstr(fh.error, "exec_pass_env"), "%s", fh.error);
    fake_host_init(&fh, cfg_secret, NULL);
    cr_assert_eq(h->init(&fh.ctx, &st), HOOKD_FAIL);
    cr_assert(strstr(fh.error, "ACME_HOOKD_KAFKA_RDKAFKA__SASL__PASSWORD"), "%s", fh.error);

    setenv("MY_DEPLOY_TOKEN", "t0k3n", 1);
    setenv("LANG", "C", 1);
    st = start(&fh, cfg_ok);
    cr_assert_eq(h->pre_hook(&fh.ctx, st, "c", "o", "csr"), HOOKD_OK, "%s", fh.error);
    env = slurp(out);
    cr_assert(strstr(env, "MY_DEPLOY_TOKEN=t0k3n\n"), "%s", env);
    cr_assert_null(strstr(env, "LANG="), "only what is named: %s", env);
    free(env);
    h->fini(&fh.ctx, st);
}

Test(exec, configuration_errors_stop_init)
{
    static const struct {
        const char *cfg[5];
        const char *msg;
    } cases[] = {
        {{NULL}, "no command configured"},
        {{"exec_pre_command", "true", "exec_timeout_ms", "soon", NULL}, "exec_timeout_ms"},
        {{"exec_pre_command", "true", "exec_timeout_ms", "0", NULL}, "exec_timeout_ms"},
        {{"exec_pre_command", "true", "exec_max_stderr_bytes", "-5", NULL},
         "exec_max_stderr_bytes"},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fake_host_t fh;
        void *st = NULL;
        fake_host_init(&fh, cases[i].cfg, NULL);
        cr_assert_eq(h->init(&fh.ctx, &st), HOOKD_FAIL, "case %zu accepted", i);
        cr_assert(strstr(fh.error, cases[i].msg), "case %zu: %s", i, fh.error);
    }
}

/*
 * The hook's thread dies mid-command (a worker killed with SIGKILL, an
 * isolation child killed at its deadline): neither the command nor what it
 * started may live on.
 */
Test(exec, the_command_and_its_children_die_with_the_hook_thread)
{
    const char *cfg[] = {"exec_pre_command", "sh -c 'sleep 41 & sleep 42 & wait'", NULL};
    pt_set_t tree;
    pid_t runner;
    long long gone;
    int status;

    runner = fork();
    cr_assert(runner >= 0);
    if (runner == 0) {
        fake_host_t fh;
        void *st = NULL;
        fake_host_init(&fh, cfg, "ev-1");
        if (h->init(&fh.ctx, &st) != HOOKD_OK)
            _exit(2);
        h->pre_hook(&fh.ctx, st, "c", "o", "csr"); /* killed in here */
        _exit(3);
    }
    cr_assert(pt_wait_descendants(runner, "sleep", 2, &tree, 5000 * time_scale()),
              "the command's two sleeps never ran");
    cr_assert_eq(kill(runner, SIGKILL), 0);
    cr_assert_eq(waitpid(runner, &status, 0), runner);
    cr_assert(WIFSIGNALED(status));
    gone = pt_wait_gone(&tree, 2000);
    cr_assert_geq(gone, 0, "processes of the command outlived the hook's thread");
    cr_log_info("SIGKILL of the hook's process: %zu processes, all gone %lld ms later", tree.n,
                gone);
    assert_no_children();
}

Test(exec, fields_too_large_for_the_environment_are_reported)
{
    const char *cfg[] = {"exec_success_command", "true", NULL};
    fake_host_t fh;
    void *st;
    size_t big = 200 * 1024; /* one variable may hold at most 128 KiB */
    const char *preload = getenv("LD_PRELOAD");
    char *chain;

    /* valgrind --trace-children dies on an execve that fails; the check of
     * this path needs the real thing. */
    if (preload && strstr(preload, "vgpreload"))
        cr_skip_test("valgrind cannot follow a failing execve");
    st = start(&fh, cfg);
    chain = malloc(big + 1);

    memset(chain, 'A', big);
    chain[big] = '\0';
    cr_assert_eq(h->success_hook(&fh.ctx, st, "c", "o", "csr", chain, "raw", NULL), HOOKD_FAIL);
    cr_assert(strstr(fh.error, "too large for the environment"), "%s", fh.error);
    free(chain);
    h->fini(&fh.ctx, st);
    assert_no_children();
}

/* ---- through the worker's invoke seam ------------------------------------ */

typedef struct seam {
    char cmd[3 * PATH_MAX];
    hookd_kv_t keys[2];
    hookd_config_t cfg;
    hookd_registry_t *reg;
    hookd_invoke_t *inv;
    const hookd_invoker_t *invoker;
    hookd_event_t ev;
    hookd_invocation_t out;
} seam_t;

/*
 * The handler as the worker runs it: keys from the [Hooks] configuration,
 * in-process or in a process-isolation child. Certificate "slow": a
 * command that starts two background sleeps and waits for them; anything
 * else: record the event and ask for a retry.
 */
static void seam_open(seam_t *s, hookd_isolation_t isolation, const char *out_file)
{
    char err[512];

    memset(s, 0, sizeof(*s));
    snprintf(s->cmd, sizeof(s->cmd),
             "if [ \"$HOOKD_CERTIFICATE_NAME\" = slow ]; then sh -c 'sleep 41 & sleep 42 & wait'; "
             "fi; echo \"$HOOKD_EVENT_ID $HOOKD_PHASE\" > '%s'; exit 75",
             out_file);
    s->keys[0] = (hookd_kv_t){"exec_pre_command", s->cmd, 1};
    s->keys[1] = (hookd_kv_t){"exec_timeout_ms", "60000", 2};
    s->cfg.hooks_file = "exec";
    hookd_policy_defaults(&s->cfg.policy);
    s->cfg.hook_keys.items = s->keys;
    s->cfg.hook_keys.count = 2;
    s->cfg.isolation = isolation;
    s->cfg.hook_timeout_ms = 1000 * time_scale();
    s->cfg.hook_rlimit_as_mb = 512;
    s->cfg.hook_rlimit_cpu_s = 60;
    s->cfg.hook_rlimit_nofile = 64;
    s->reg = hookd_registry_load(&s->cfg, NULL, err, sizeof(err));
    cr_assert_not_null(s->reg, "%s", err);
    s->inv = hookd_invoke_create(s->reg, &s->cfg, NULL, err, sizeof(err));
    cr_assert_not_null(s->inv, "%s", err);
    s->invoker = hookd_invoke_invoker(s->inv);
    s->ev.type = HOOKD_EVENT_REQUESTED;
    s->ev.id = "ev-invoke";
    s->ev.time = "2026-01-01T00:00:00Z";
    s->ev.certificate_name = "cert-1";
    s->ev.order_name = "order-1";
    s->ev.csr = "Q1NS";
}

static void seam_close(seam_t *s)
{
    hookd_invoke_destroy(s->inv);
    hookd_registry_destroy(s->reg);
}

static void *seam_invoke(void *arg)
{
    seam_t *s = arg;
    s->invoker->invoke(s->invoker->opaque, 0, HOOKD_PHASE_PRE, &s->ev, &s->out);
    return NULL;
}

static void run_through_invoke(hookd_isolation_t isolation)
{
    char out_file[PATH_MAX + 16];
    seam_t s;
    char *written;

    snprintf(out_file, sizeof(out_file), "%s/out", dir);
    seam_open(&s, isolation, out_file);
    seam_invoke(&s);
    cr_assert_eq(s.out.outcome, HOOKD_RETRY, "outcome %d: %s", s.out.outcome, s.out.error);
    cr_assert(strstr(s.out.error, "retry"), "%s", s.out.error);
    written = slurp(out_file);
    cr_assert_str_eq(written, "ev-invoke pre\n");
    free(written);

    if (isolation == HOOKD_ISOLATION_PROCESS) {
        /* The isolation deadline (1 s) comes long before exec's (60 s);
         * the isolation child, the guard, the shells and the sleeps are
         * gone within 2 s of the hook_timeout result. */
        pthread_t th;
        pt_set_t tree;
        long long gone;
        s.ev.certificate_name = "slow";
        cr_assert_eq(pthread_create(&th, NULL, seam_invoke, &s), 0);
        cr_assert(pt_wait_descendants(getpid(), "sleep", 2, &tree, 5000 * time_scale()),
                  "the command's two sleeps never ran");
        cr_assert_eq(pthread_join(th, NULL), 0);
        cr_assert_eq(s.out.outcome, HOOKD_FAIL);
        cr_assert_eq(s.out.error_class, HOOKD_ERRCLASS_HOOK_TIMEOUT, "%s", s.out.error);
        gone = pt_wait_gone(&tree, 2000);
        cr_assert_geq(gone, 0, "processes of the command outlived the isolation deadline");
        cr_log_info("isolation deadline: %zu processes, all gone %lld ms after the result", tree.n,
                    gone);
    }
    seam_close(&s);
}

Test(exec, through_the_invoke_seam_in_process)
{
    run_through_invoke(HOOKD_ISOLATION_NONE);
    assert_no_children();
}

Test(exec, through_the_invoke_seam_with_process_isolation)
{
    run_through_invoke(HOOKD_ISOLATION_PROCESS);
}

/*
 * SIGKILL of the process that runs the hooks (the worker's part here),
 * with the command running in an isolation child: the isolation child, the
 * guard, the shells and the sleeps are all gone within 2 s.
 */
Test(exec, sigkill_of_the_worker_leaves_no_process_behind_with_process_isolation)
{
    char out_file[PATH_MAX + 16];
    pt_set_t tree;
    pid_t worker;
    long long gone;
    int status;

    snprintf(out_file, sizeof(out_file), "%s/out", dir);
    worker = fork();
    cr_assert(worker >= 0);
    if (worker == 0) {
        seam_t s;
        seam_open(&s, HOOKD_ISOLATION_PROCESS, out_file);
        s.cfg.hook_timeout_ms = 60000;
        s.ev.certificate_name = "slow";
        seam_invoke(&s); /* killed in here */
        _exit(3);
    }
    cr_assert(pt_wait_descendants(worker, "sleep", 2, &tree, 5000 * time_scale()),
              "the command's two sleeps never ran");
    cr_assert_eq(kill(worker, SIGKILL), 0);
    cr_assert_eq(waitpid(worker, &status, 0), worker);
    cr_assert(WIFSIGNALED(status));
    gone = pt_wait_gone(&tree, 2000);
    cr_assert_geq(gone, 0, "processes of the worker's hook outlived it");
    cr_log_info("SIGKILL with process isolation: %zu processes, all gone %lld ms later", tree.n,
                gone);
    assert_no_children();
}
