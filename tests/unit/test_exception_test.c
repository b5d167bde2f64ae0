/* SPDX-License-Identifier: MIT */
/*
 * The exception_test handler: acme2certifier's raise_*_hook_exception keys,
 * and the scripted retries of retry_*_hook_times.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "config.h"
#include "fake_host.h"
#include "registry.h"

static hookd_registry_t *reg;
static const hookd_handler_t *h;

static void setup(void)
{
    hookd_config_t cfg;
    char err[512];
    memset(&cfg, 0, sizeof(cfg));
    cfg.hooks_file = "exception_test";
    reg = hookd_registry_load(&cfg, NULL, err, sizeof(err));
    cr_assert_not_null(reg, "%s", err);
    h = hookd_registry_handler(reg, 0);
}

static void teardown(void)
{
    hookd_registry_destroy(reg);
}

TestSuite(exception_test, .init = setup, .fini = teardown);

/* Run the three phases once; outcomes in out[3]. */
static void run_all(fake_host_t *fh, void *st, hookd_outcome_t out[3], char errors[3][1024])
{
    fake_host_reset(fh, "ev-1");
    out[0] = h->pre_hook(&fh->ctx, st, "cert", "order", "csr");
    snprintf(errors[0], 1024, "%s", fh->error);
    fake_host_reset(fh, "ev-1");
    out[1] = h->success_hook(&fh->ctx, st, "cert", "order", "csr", "pem", "raw", NULL);
    snprintf(errors[1], 1024, "%s", fh->error);
    fake_host_reset(fh, "ev-1");
    out[2] = h->post_hook(&fh->ctx, st, "cert", "order", "csr", NULL);
    snprintf(errors[2], 1024, "%s", fh->error);
}

Test(exception_test, declares_the_acme2certifier_keys)
{
    cr_assert(hookd_registry_declares_key("raise_pre_hook_exception", reg));
    cr_assert(hookd_registry_declares_key("raise_success_hook_exception", reg));
    cr_assert(hookd_registry_declares_key("raise_post_hook_exception", reg));
    cr_assert(hookd_registry_declares_key("retry_post_hook_times", reg));
}

Test(exception_test, nothing_configured_nothing_fails)
{
    fake_host_t fh;
    void *st = NULL;
    hookd_outcome_t out[3];
    char errors[3][1024];

    fake_host_init(&fh, NULL, NULL);
    cr_assert_eq(h->init(&fh.ctx, &st), HOOKD_OK, "%s", fh.error);
    run_all(&fh, st, out, errors);
    cr_assert_eq(out[0], HOOKD_OK);
    cr_assert_eq(out[1], HOOKD_OK);
    cr_assert_eq(out[2], HOOKD_OK);
    h->fini(&fh.ctx, st);
}

/* Each phase fails alone when its key says so, with the key as message. */
Test(exception_test, each_phase_fails_on_its_own_key)
{
    static const char *const keys[3] = {"raise_pre_hook_exception", "raise_success_hook_exception",
                                        "raise_post_hook_exception"};
    static const char *const truthy[3] = {"True", "yes", "1"};
    int p, q;

    for (p = 0; p < 3; p++) {
        const char *config[] = {keys[p], truthy[p], NULL};
        fake_host_t fh;
        void *st = NULL;
        hookd_outcome_t out[3];
        char errors[3][1024];

        fake_host_init(&fh, config, NULL);
        cr_assert_eq(h->init(&fh.ctx, &st), HOOKD_OK, "%s", fh.error);
        run_all(&fh, st, out, errors);
        for (q = 0; q < 3; q++) {
            if (q == p) {
                cr_assert_eq(out[q], HOOKD_FAIL, "phase %d with %s", q, keys[p]);
                cr_assert_str_eq(errors[q], keys[p]);
            } else {
                cr_assert_eq(out[q], HOOKD_OK, "phase %d with %s", q, keys[p]);
                cr_assert_str_eq(errors[q], "");
            }
        }
        h->fini(&fh.ctx, st);
    }
}

Test(exception_test, false_values_do_not_fail)
{
    const char *config[] = {"raise_pre_hook_exception",
                            "False",
                            "raise_success_hook_exception",
                            "off",
                            "raise_post_hook_exception",
                            "0",
                            NULL};
    fake_host_t fh;
    void *st = NULL;
    hookd_outcome_t out[3];
    char errors[3][1024];

    fake_host_init(&fh, config, NULL);
    cr_assert_eq(h->init(&fh.ctx, &st), HOOKD_OK, "%s", fh.error);
    run_all(&fh, st, out, errors);
    cr_assert(out[0] == HOOKD_OK && out[1] == HOOKD_OK && out[2] == HOOKD_OK);
    h->fini(&fh.ctx, st);
}

Test(exception_test, a_non_boolean_stops_init)
{
    const char *config[] = {"raise_success_hook_exception", "sometimes", NULL};
    fake_host_t fh;
    void *st = NULL;

    fake_host_init(&fh, config, NULL);
    cr_assert_eq(h->init(&fh.ctx, &st), HOOKD_FAIL);
    cr_assert(strstr(fh.error, "raise_success_hook_exception"), "%s", fh.error);
    cr_assert(strstr(fh.error, "'sometimes'"), "%s", fh.error);
}

Test(exception_test, bad_retry_count_stops_init)
{
    const char *bad[] = {"-1", "two", "", "99999999999"};
    size_t i;
    for (i = 0; i < 4; i++) {
        const char *config[] = {"retry_pre_hook_times", bad[i], NULL};
        fake_host_t fh;
        void *st = NULL;
        fake_host_init(&fh, config, NULL);
        cr_assert_eq(h->init(&fh.ctx, &st), HOOKD_FAIL, "'%s' accepted", bad[i]);
        cr_assert(strstr(fh.error, "retry_pre_hook_times"), "%s", fh.error);
    }
}

/* N retries per event id, then the configured outcome; ids count apart. */
Test(exception_test, scripted_retries_per_event_id)
{
    const char *config[] = {"retry_pre_hook_times",
                            "2",
                            "retry_post_hook_times",
                            "1",
                            "raise_post_hook_exception",
                            "true",
                            NULL};
    fake_host_t fh;
    void *st = NULL;

    fake_host_init(&fh, config, NULL);
    cr_assert_eq(h->init(&fh.ctx, &st), HOOKD_OK, "%s", fh.error);

    fake_host_reset(&fh, "ev-A");
    cr_assert_eq(h->pre_hook(&fh.ctx, st, "c", "o", "csr"), HOOKD_RETRY);
    cr_assert(strstr(fh.error, "attempt 1 of 2"), "%s", fh.error);
    fake_host_reset(&fh, "ev-B");
    cr_assert_eq(h->pre_hook(&fh.ctx, st, "c", "o", "csr"), HOOKD_RETRY, "ev-B counts apart");
    fake_host_reset(&fh, "ev-A");
    cr_assert_eq(h->pre_hook(&fh.ctx, st, "c", "o", "csr"), HOOKD_RETRY);
    cr_assert(strstr(fh.error, "attempt 2 of 2"), "%s", fh.error);
    fake_host_reset(&fh, "ev-A");
    cr_assert_eq(h->pre_hook(&fh.ctx, st, "c", "o", "csr"), HOOKD_OK);
    cr_assert_eq(h->pre_hook(&fh.ctx, st, "c", "o", "csr"), HOOKD_OK, "stays done");
    fake_host_reset(&fh, "ev-B");
    cr_assert_eq(h->pre_hook(&fh.ctx, st, "c", "o", "csr"), HOOKD_RETRY);
    cr_assert_eq(h->pre_hook(&fh.ctx, st, "c", "o", "csr"), HOOKD_OK);

    /* Retry first, then the raise_* failure. */
    fake_host_reset(&fh, "ev-A");
    cr_assert_eq(h->post_hook(&fh.ctx, st, "c", "o", "csr", "boom"), HOOKD_RETRY);
    fake_host_reset(&fh, "ev-A");
    cr_assert_eq(h->post_hook(&fh.ctx, st, "c", "o", "csr", "boom"), HOOKD_FAIL);
    cr_assert_str_eq(fh.error, "raise_post_hook_exception");

    /* success has no retry configured */
    fake_host_reset(&fh, "ev-A");
    cr_assert_eq(h->success_hook(&fh.ctx, st, "c", "o", "csr", "p", "r", "poll"), HOOKD_OK);
    h->fini(&fh.ctx, st);
}

/* The ring of remembered ids is bounded: many events do not grow memory. */
Test(exception_test, retry_memory_is_bounded)
{
    const char *config[] = {"retry_success_hook_times", "1", NULL};
    fake_host_t fh;
    void *st = NULL;
    char id[32];
    int i;

    fake_host_init(&fh, config, NULL);
    cr_assert_eq(h->init(&fh.ctx, &st), HOOKD_OK, "%s", fh.error);
    for (i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "ev-%d", i);
        fake_host_reset(&fh, id);
        cr_assert_eq(h->success_hook(&fh.ctx, st, "c", "o", "csr", "p", "r", NULL), HOOKD_RETRY);
        cr_assert_eq(h->success_hook(&fh.ctx, st, "c", "o", "csr", "p", "r", NULL), HOOKD_OK);
    }
    h->fini(&fh.ctx, st);
}
