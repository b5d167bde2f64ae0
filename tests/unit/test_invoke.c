/* SPDX-License-Identifier: MIT */
/*
 * The invoke seam, end to end through the real pieces: a config file names
 * the builtin `exec` handler, the registry resolves it, hookd_invoke creates
 * its instance, and the engine calls it through the seam. The command dumps
 * the variables the handler was given, so the tests see exactly which
 * arguments each phase received (acme2certifier's signatures: post_hook of
 * an issued event gets error = None, of a failed event the error).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "engine.h"
#include "invoke.h"
#include "registry.h"

static char dir[] = "/tmp/hookd-invoke-XXXXXX";
static hookd_config_t *cfg;
static hookd_registry_t *reg;
static hookd_invoke_t *inv;

static void setup(void)
{
    char path[256], err[2048];
    FILE *f;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/acme-hookd.ini", dir);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "[Hooks]\n"
            "hooks_file: exec\n"
            "exec_pre_command: env | grep '^HOOKD_' | sort > %s/pre.env\n"
            "exec_success_command: env | grep '^HOOKD_' | sort > %s/success.env\n"
            "exec_post_command: env | grep '^HOOKD_' | sort > %s/post.env\n",
            dir, dir, dir);
    fclose(f);
    cfg = hookd_config_load(path, NULL, err, sizeof(err));
    cr_assert_not_null(cfg, "config: %s", err);
    reg = hookd_registry_load(cfg, NULL, err, sizeof(err));
    cr_assert_not_null(reg, "registry: %s", err);
    inv = hookd_invoke_create(reg, cfg, NULL, err, sizeof(err));
    cr_assert_not_null(inv, "invoke: %s", err);
}

static void teardown(void)
{
    char cmd[300];
    hookd_invoke_destroy(inv);
    hookd_registry_destroy(reg);
    hookd_config_destroy(cfg);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
    strcpy(dir, "/tmp/hookd-invoke-XXXXXX");
}

/* The dumped environment of a phase, or NULL when the phase did not run. */
static char *dumped(const char *phase)
{
    char path[256];
    static char buf[16384];
    FILE *f;
    size_t n;
    snprintf(path, sizeof(path), "%s/%s.env", dir, phase);
    f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static hookd_decision_t run(const hookd_event_t *ev)
{
    hookd_decision_t d;
    hookd_policy_t pol = cfg->policy;
    hookd_engine_run(ev, hookd_registry_chain(reg), &pol, hookd_invoke_invoker(inv), &d);
    return d;
}

TestSuite(invoke, .init = setup, .fini = teardown);

Test(invoke, requested_runs_pre_with_its_three_arguments)
{
    hookd_event_t ev = {.type = HOOKD_EVENT_REQUESTED,
                        .id = "ev-pre-1",
                        .certificate_name = "cert-1",
                        .order_name = "order-1",
                        .csr = "Q1NS"};
    hookd_decision_t d = run(&ev);
    char *env;

    cr_assert_eq(d.verdict, HOOKD_VERDICT_COMPLETED, "%s", d.error);
    env = dumped("pre");
    cr_assert_not_null(env, "pre hook did not run");
    cr_assert_not_null(strstr(env, "HOOKD_CERTIFICATE_NAME=cert-1\n"), "%s", env);
    cr_assert_not_null(strstr(env, "HOOKD_ORDER_NAME=order-1\n"), "%s", env);
    cr_assert_not_null(strstr(env, "HOOKD_CSR=Q1NS\n"), "%s", env);
    cr_assert_not_null(strstr(env, "HOOKD_EVENT_ID=ev-pre-1\n"), "%s", env);
    cr_assert_not_null(strstr(env, "HOOKD_PHASE=pre\n"), "%s", env);
    cr_assert_null(strstr(env, "HOOKD_CERTIFICATE="), "pre gets no certificate: %s", env);
    cr_assert_null(dumped("success"));
    cr_assert_null(dumped("post"));
}

Test(invoke, issued_runs_success_then_post_without_error)
{
    hookd_event_t ev = {.type = HOOKD_EVENT_ISSUED,
                        .id = "ev-iss-1",
                        .certificate_name = "c",
                        .order_name = "o",
                        .csr = "Q1NS",
                        .certificate = "PEM",
                        .certificate_raw = "REVS",
                        .poll_identifier = "poll-7",
                        .error = "must not be passed"};
    hookd_decision_t d = run(&ev);
    char *env;

    cr_assert_eq(d.verdict, HOOKD_VERDICT_COMPLETED, "%s", d.error);
    cr_assert_eq(d.run_count, 2);
    cr_assert_eq(d.runs[0].phase, HOOKD_PHASE_SUCCESS);
    cr_assert_eq(d.runs[1].phase, HOOKD_PHASE_POST);
    env = dumped("success");
    cr_assert_not_null(env);
    cr_assert_not_null(strstr(env, "HOOKD_CERTIFICATE=PEM\n"), "%s", env);
    cr_assert_not_null(strstr(env, "HOOKD_CERTIFICATE_RAW=REVS\n"), "%s", env);
    cr_assert_not_null(strstr(env, "HOOKD_POLL_IDENTIFIER=poll-7\n"), "%s", env);
    env = dumped("post");
    cr_assert_not_null(env);
    cr_assert_null(strstr(env, "HOOKD_ERROR="), "post of an issued event gets error=None: %s", env);
    cr_assert_null(dumped("pre"));
}

Test(invoke, failed_runs_post_with_the_error)
{
    hookd_event_t ev = {.type = HOOKD_EVENT_FAILED,
                        .id = "ev-f-1",
                        .certificate_name = "c",
                        .order_name = "o",
                        .csr = "Q1NS",
                        .error = "urn:ietf:params:acme:error:rejectedIdentifier"};
    hookd_decision_t d = run(&ev);
    char *env;

    cr_assert_eq(d.verdict, HOOKD_VERDICT_COMPLETED, "%s", d.error);
    env = dumped("post");
    cr_assert_not_null(env);
    cr_assert_not_null(strstr(env, "HOOKD_ERROR=urn:ietf:params:acme:error:rejectedIdentifier\n"),
                       "%s", env);
    cr_assert_null(dumped("success"));
}

static void setup_failing(void)
{
    char path[256], err[2048];
    FILE *f;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/fail.ini", dir);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "[Hooks]\nhooks_file = exec\nexec_pre_command = echo 'no quota left' >&2; exit 3\n");
    fclose(f);
    cfg = hookd_config_load(path, NULL, err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    reg = hookd_registry_load(cfg, NULL, err, sizeof(err));
    cr_assert_not_null(reg, "%s", err);
    inv = hookd_invoke_create(reg, cfg, NULL, err, sizeof(err));
    cr_assert_not_null(inv, "%s", err);
}

Test(invoke_failing, handler_error_text_reaches_the_decision, .init = setup_failing,
     .fini = teardown)
{
    hookd_event_t ev = {.type = HOOKD_EVENT_REQUESTED,
                        .id = "ev-x",
                        .certificate_name = "c",
                        .order_name = "o",
                        .csr = "Q1NS"};
    hookd_decision_t d = run(&ev);
    cr_assert_eq(d.verdict, HOOKD_VERDICT_FAILED);
    cr_assert(d.dead_letter);
    cr_assert_eq(d.error_class, HOOKD_ERRCLASS_HOOK_FAILED);
    cr_assert_not_null(strstr(d.error, "no quota left"), "error: %s", d.error);
    cr_assert_str_eq(d.runs[0].handler_name, "exec");
}
