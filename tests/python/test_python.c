/* SPDX-License-Identifier: MIT */
/*
 * The python handler with acme2certifier 0.46.3's own hook modules, through
 * the real config, registry, invoke seam (in process and isolated) and
 * engine. HOOKD_PY_SITE names the site-packages of the venv tests/python/
 * venv.sh made (acme2certifier, aiosmtpd).
 *
 *   cn_dump_hooks        the lines equal the C cn_dump's (cn_dump_san_only)
 *   exception_test_hooks verdicts of every raise_* x allow_* x event type
 *                        equal the truth table (and the C exception_test's)
 *   email_hooks          a real mail to a local aiosmtpd, read back
 *   hostile_hooks.py     raise, SystemExit, KeyboardInterrupt, sleep forever,
 *                        leak, os._exit, raise in __init__, a missing module
 * and where the interpreters live: never in the worker under isolation =
 * process, one per handler thread there, the worker's own under none.
 */
#include <Python.h>

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <criterion/internal/ordered-set.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "engine.h"
#include "invoke.h"
#include "registry.h"

typedef struct setup {
    hookd_config_t *cfg;
    hookd_registry_t *reg;
    hookd_invoke_t *inv;
} setup_t;

static char dir[] = "/tmp/hookd-python-XXXXXX";

/*
 * HOOKD_TEST_TIME_SCALE (scripts/valgrind.sh sets it): every deadline of
 * these tests stretches by it, the interpreter's start-up check
 * (python_init_timeout_ms), hook_timeout_ms and the tests' own timeouts.
 */
static long time_scale(void)
{
    const char *v = getenv("HOOKD_TEST_TIME_SCALE");
    long k = v ? strtol(v, NULL, 10) : 1;
    return k > 1 ? k : 1;
}

/* Criterion's --timeout can only shorten a test's .timeout: stretch them here. */
ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    long k = time_scale();
    if (k == 1)
        return;
    FOREACH_SET(struct criterion_suite_set * suite, set->suites)
    {
        FOREACH_SET(struct criterion_test * test, suite->tests)
        {
            if (test->data->timeout > 0)
                test->data->timeout *= (double)k;
        }
    }
}

static const char *site(void)
{
    const char *s = getenv("HOOKD_PY_SITE");
    cr_assert(s && *s, "HOOKD_PY_SITE is not set (tests/python/venv.sh)");
    return s;
}

static void mkdir_tmp(void)
{
    strcpy(dir, "/tmp/hookd-python-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

/* A worker config: [Hooks] `hooks` (python_path added), [worker] `worker`. */
static char *write_config(const char *name, const char *hooks, const char *worker)
{
    char *path;
    FILE *f;
    cr_assert(asprintf(&path, "%s/%s.ini", dir, name) > 0);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    /* python_path only where the python handler is: others would refuse the key */
    if (strstr(hooks, "hooks_file = python"))
        fprintf(f, "[Hooks]\npython_path = %s\npython_init_timeout_ms = %ld\n%s\n", site(),
                60000 * time_scale(), hooks);
    else
        fprintf(f, "[Hooks]\n%s\n", hooks);
    fprintf(f, "[worker]\n%s\n", worker ? worker : "");
    fclose(f);
    return path;
}

/* Load config, registry, one handler thread's instances; NULL inv + error when init fails. */
static int start(setup_t *s, const char *name, const char *hooks, const char *worker, char *err,
                 size_t errsz)
{
    char *path = write_config(name, hooks, worker);
    s->cfg = hookd_config_load(path, NULL, err, errsz);
    free(path);
    cr_assert_not_null(s->cfg, "config: %s", err);
    s->reg = hookd_registry_load(s->cfg, NULL, err, errsz);
    cr_assert_not_null(s->reg, "registry: %s", err);
    cr_assert_eq(hookd_config_check_hook_keys(s->cfg, hookd_registry_declares_key, s->reg, err,
                                              errsz),
                 0, "%s", err);
    s->inv = hookd_invoke_create(s->reg, s->cfg, NULL, err, errsz);
    return s->inv ? 0 : -1;
}

static void start_ok(setup_t *s, const char *name, const char *hooks, const char *worker)
{
    char err[2048];
    cr_assert_eq(start(s, name, hooks, worker, err, sizeof(err)), 0, "init: %s", err);
}

static void stop(setup_t *s)
{
    hookd_invoke_destroy(s->inv);
    hookd_registry_destroy(s->reg);
    hookd_config_destroy(s->cfg);
}

static void run(setup_t *s, const hookd_policy_t *pol, const hookd_event_t *ev, hookd_decision_t *d)
{
    hookd_policy_t p = pol ? *pol : s->cfg->policy;
    hookd_engine_run(ev, hookd_registry_chain(s->reg), &p, hookd_invoke_invoker(s->inv), d);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf;
    long n;
    if (f == NULL)
        return strdup("");
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return buf;
}

/* ---- certificate material ------------------------------------------------ */

static char *b64(const unsigned char *der, int len)
{
    char *out = malloc((size_t)(4 * ((len + 2) / 3) + 1));
    EVP_EncodeBlock((unsigned char *)out, der, len);
    return out;
}

static X509_EXTENSION *san_ext(const char *sans)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, sans);
    cr_assert_not_null(ext, "SAN '%s'", sans);
    return ext;
}

static char *csr_b64(EVP_PKEY *key, const char *cn, const char *sans)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    unsigned char *der = NULL;
    char *out;
    int len;

    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_REQ_set_subject_name(req, name);
    X509_NAME_free(name);
    X509_REQ_set_pubkey(req, key);
    if (sans) {
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        sk_X509_EXTENSION_push(exts, san_ext(sans));
        X509_REQ_add_extensions(req, exts);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    cr_assert(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    len = i2d_X509_REQ(req, &der);
    out = b64(der, len);
    OPENSSL_free(der);
    X509_REQ_free(req);
    return out;
}

/* A self-signed certificate: PEM in *pem, base64 DER in *raw. */
static void cert(EVP_PKEY *key, const char *cn, const char *sans, char **pem, char **raw)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    unsigned char *der = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long n;
    int len;

    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 4711);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, name);
    X509_NAME_free(name);
    X509_set_pubkey(x, key);
    if (sans) {
        X509_EXTENSION *ext = san_ext(sans);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    cr_assert(X509_sign(x, key, EVP_sha256()) > 0);
    PEM_write_bio_X509(bio, x);
    n = BIO_get_mem_data(bio, &data);
    *pem = strndup(data, (size_t)n);
    BIO_free(bio);
    len = i2d_X509(x, &der);
    *raw = b64(der, len);
    OPENSSL_free(der);
    X509_free(x);
}

/* ---- cn_dump_hooks writes what the C cn_dump writes ------------------------ */

static void cn_dump_same_lines(const char *isolation)
{
    static const char *const san_sets[] = {
        "DNS:a.example",
        "DNS:b.example,DNS:www.b.example,IP:192.0.2.7",
        "IP:198.51.100.1,DNS:ip-first.example",     /* acme2certifier groups by type */
        "DNS:c.example,email:hostmaster@c.example", /* and lists e-mail names too */
        "IP:2001:db8::1,DNS:v6.example",
    };
    char hooks_c[512], hooks_py[512], worker[64], dc[300], dp[300];
    const char *files[] = {"pre_hook.txt", "success_hook.txt", "post_hook.txt"};
    setup_t c, py;
    size_t i, f;

    mkdir_tmp();
    snprintf(dc, sizeof(dc), "%s/c", dir);
    snprintf(dp, sizeof(dp), "%s/py", dir);
    cr_assert_eq(mkdir(dc, 0700), 0);
    cr_assert_eq(mkdir(dp, 0700), 0);
    snprintf(hooks_c, sizeof(hooks_c),
             "hooks_file = cn_dump\nsave_path = %s\ncn_dump_san_only = true", dc);
    snprintf(
        hooks_py, sizeof(hooks_py),
        "hooks_file = python\npython_hooks_module = acme2certifier.hookhandlers.cn_dump_hooks\n"
        "save_path = %s",
        dp);
    snprintf(worker, sizeof(worker), "isolation = %s", isolation);
    start_ok(&c, "c", hooks_c, worker);
    start_ok(&py, "py", hooks_py, worker);

    for (i = 0; i < sizeof(san_sets) / sizeof(san_sets[0]); i++) {
        EVP_PKEY *key = EVP_EC_gen("P-256");
        char *csr = csr_b64(key, "cn.example", san_sets[i]), *pem, *raw, id[32];
        hookd_decision_t d;
        hookd_event_t req = {.type = HOOKD_EVENT_REQUESTED,
                             .certificate_name = "cert",
                             .order_name = "order",
                             .csr = csr};
        hookd_event_t iss = {.type = HOOKD_EVENT_ISSUED,
                             .certificate_name = "cert",
                             .order_name = "order",
                             .csr = csr,
                             .poll_identifier = NULL};
        hookd_event_t fail = {.type = HOOKD_EVENT_FAILED,
                              .certificate_name = "cert",
                              .order_name = "order",
                              .csr = csr,
                              .error = "urn:ietf:params:acme:error:rejectedIdentifier"};
        cert(key, "cn.example", san_sets[i], &pem, &raw);
        iss.certificate = pem;
        iss.certificate_raw = raw;
        snprintf(id, sizeof(id), "ev-%zu", i);
        req.id = iss.id = fail.id = id;
        run(&c, NULL, &req, &d);
        cr_assert_eq(d.verdict, HOOKD_VERDICT_COMPLETED, "C pre: %s", d.error);
        run(&py, NULL, &req, &d);
        cr_assert_eq(d.verdict, HOOKD_VERDICT_COMPLETED, "python pre: %s", d.error);
        run(&c, NULL, &iss, &d);
        cr_assert_eq(d.verdict, HOOKD_VERDICT_COMPLETED, "C issued: %s", d.error);
        run(&py, NULL, &iss, &d);
        cr_assert_eq(d.verdict, HOOKD_VERDICT_COMPLETED, "python issued: %s", d.error);
        run(&c, NULL, &fail, &d);
        cr_assert_eq(d.verdict, HOOKD_VERDICT_COMPLETED, "C failed: %s", d.error);
        run(&py, NULL, &fail, &d);
        cr_assert_eq(d.verdict, HOOKD_VERDICT_COMPLETED, "python failed: %s", d.error);
        free(csr);
        free(pem);
        free(raw);
        EVP_PKEY_free(key);
    }
    stop(&c);
    stop(&py);
    for (f = 0; f < 3; f++) {
        char pc[400], pp[400], *a, *b;
        snprintf(pc, sizeof(pc), "%s/%s", dc, files[f]);
        snprintf(pp, sizeof(pp), "%s/%s", dp, files[f]);
        a = slurp(pc);
        b = slurp(pp);
        cr_assert(strlen(b) > 0, "python wrote no %s", files[f]);
        cr_assert_str_eq(a, b, "%s differs:\nC:\n%s\npython:\n%s", files[f], a, b);
        free(a);
        free(b);
    }
    cr_assert_eq(Py_IsInitialized(), strcmp(isolation, "none") == 0,
                 "Python in the worker process under isolation = %s", isolation);
    rm_tmp();
}

Test(python, cn_dump_hooks_lines_equal_the_c_cn_dump_in_process, .timeout = 60)
{
    cn_dump_same_lines("none");
}

Test(python, cn_dump_hooks_lines_equal_the_c_cn_dump_isolated, .timeout = 60)
{
    cn_dump_same_lines("process");
}

/* ---- exception_test_hooks: the truth table ------------------------------- */

Test(python, exception_test_hooks_verdicts_follow_the_truth_table, .timeout = 120)
{
    static const char *const b[] = {"False", "True"};
    hookd_event_t evs[3] = {
        {.type = HOOKD_EVENT_REQUESTED,
         .id = "e-req",
         .certificate_name = "c",
         .order_name = "o",
         .csr = "Q1NS"},
        {.type = HOOKD_EVENT_ISSUED,
         .id = "e-iss",
         .certificate_name = "c",
         .order_name = "o",
         .csr = "Q1NS",
         .certificate = "PEM",
         .certificate_raw = "REVS"},
        {.type = HOOKD_EVENT_FAILED,
         .id = "e-fail",
         .certificate_name = "c",
         .order_name = "o",
         .csr = "Q1NS",
         .error = "boom"},
    };
    int raise, allow, e, checked = 0;

    mkdir_tmp();
    for (raise = 0; raise < 8; raise++) {
        int rp = raise & 1, rs = (raise >> 1) & 1, ro = (raise >> 2) & 1;
        char keys[512], hooks_py[700], hooks_c[700];
        setup_t py, c;

        snprintf(keys, sizeof(keys),
                 "raise_pre_hook_exception = %s\nraise_success_hook_exception = %s\n"
                 "raise_post_hook_exception = %s",
                 b[rp], b[rs], b[ro]);
        snprintf(hooks_py, sizeof(hooks_py),
                 "hooks_file = python\n"
                 "python_hooks_module = acme2certifier.hookhandlers.exception_test_hooks\n%s",
                 keys);
        snprintf(hooks_c, sizeof(hooks_c), "hooks_file = exception_test\n%s", keys);
        /* isolated first: later ones start Python in this process, which a
         * child forked from it could not use */
        start_ok(&py, "tt-py", hooks_py, raise == 0 ? "isolation = process" : NULL);
        start_ok(&c, "tt-c", hooks_c, NULL);
        for (allow = 0; allow < 8; allow++) {
            hookd_policy_t pol;
            hookd_policy_defaults(&pol);
            pol.allow_failure[HOOKD_PHASE_PRE] = allow & 1;
            pol.allow_failure[HOOKD_PHASE_SUCCESS] = (allow >> 1) & 1;
            pol.allow_failure[HOOKD_PHASE_POST] = (allow >> 2) & 1;
            pol.retry_max_attempts = 1;
            for (e = 0; e < 3; e++) {
                hookd_decision_t dp, dc;
                bool fails;
                const char *phase = NULL;
                if (e == 0) {
                    fails = rp && !(allow & 1);
                    phase = "pre";
                } else if (e == 1) {
                    fails = (rs && !((allow >> 1) & 1)) || (ro && !((allow >> 2) & 1));
                    phase = rs && !((allow >> 1) & 1) ? "success" : "post";
                } else {
                    fails = ro && !((allow >> 2) & 1);
                    phase = "post";
                }
                run(&py, &pol, &evs[e], &dp);
                run(&c, &pol, &evs[e], &dc);
                cr_assert_eq(dp.verdict, fails ? HOOKD_VERDICT_FAILED : HOOKD_VERDICT_COMPLETED,
                             "raise %d allow %d event %d: %s", raise, allow, e, dp.error);
                cr_assert_eq(dp.verdict, dc.verdict, "raise %d allow %d event %d: C differs", raise,
                             allow, e);
                cr_assert_eq(dp.dead_letter, dc.dead_letter);
                if (fails) {
                    char want[80];
                    snprintf(want, sizeof(want), "SystemError: raise_%s_hook_exception", phase);
                    cr_assert_str_eq(dp.error, want);
                    cr_assert_eq(dp.error_class, HOOKD_ERRCLASS_HOOK_FAILED);
                    cr_assert_str_eq(hookd_phase_name(dp.failed_phase), phase);
                }
                checked++;
            }
        }
        stop(&py);
        stop(&c);
    }
    cr_assert_eq(checked, 8 * 8 * 3);
    rm_tmp();
}

/* ---- email_hooks: a real mail ------------------------------------------- */

/* One line of the sink's stdout, waiting at most timeout_ms. */
static int read_line(int fd, char *buf, size_t size, int timeout_ms)
{
    size_t n = 0;
    while (n + 1 < size) {
        struct pollfd p = {fd, POLLIN, 0};
        char c;
        if (poll(&p, 1, timeout_ms) <= 0 || read(fd, &c, 1) != 1)
            return -1;
        if (c == '\n')
            break;
        buf[n++] = c;
    }
    buf[n] = '\0';
    return 0;
}

Test(python, email_hooks_sends_a_mail_read_back, .timeout = 60)
{
    const char *venv_py = getenv("HOOKD_PY_PYTHON");
    int out[2], in[2], port = 0;
    char line[128], hooks[1024], path[400], *mail;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    char *csr = csr_b64(key, "mail.example", "DNS:mail.example"), *pem, *raw;
    hookd_decision_t d;
    setup_t s;
    pid_t pid;
    int status;

    cr_assert(venv_py && *venv_py, "HOOKD_PY_PYTHON is not set");
    mkdir_tmp();
    cr_assert_eq(pipe(out), 0);
    cr_assert_eq(pipe(in), 0);
    pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(in[0], 0);
        close(out[0]);
        close(in[1]);
        execl(venv_py, venv_py, HOOKD_TEST_DIR "/smtp_sink.py", dir, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    close(in[0]);
    cr_assert_eq(read_line(out[0], line, sizeof(line), 30000 * (int)time_scale()), 0,
                 "the SMTP sink did not start");
    cr_assert_eq(sscanf(line, "port %d", &port), 1, "%s", line);

    snprintf(hooks, sizeof(hooks),
             "hooks_file = python\npython_hooks_module = acme2certifier.hookhandlers.email_hooks\n"
             "python_hooks_per_event = true\n"
             "appname = acme-hookd-test\nsender = hooks@example.org\nrcpt = admin@example.org\n"
             "smtp_server = 127.0.0.1\nsmtp_port = %d\nsmtp_timeout = 10\n"
             "report_successes = True\nreport_failures = True\n",
             port);
    start_ok(&s, "mail", hooks, "isolation = process");
    cert(key, "mail.example", "DNS:mail.example", &pem, &raw);
    {
        hookd_event_t iss = {.type = HOOKD_EVENT_ISSUED,
                             .id = "mail-1",
                             .certificate_name = "cert-mail",
                             .order_name = "order-mail",
                             .csr = csr,
                             .certificate = pem,
                             .certificate_raw = raw};
        run(&s, NULL, &iss, &d);
        cr_assert_eq(d.verdict, HOOKD_VERDICT_COMPLETED, "%s", d.error);
    }
    cr_assert_eq(read_line(out[0], line, sizeof(line), 20000 * (int)time_scale()), 0,
                 "no mail arrived");
    cr_assert_str_eq(line, "mail 1");
    {
        /* a second event: a new Hooks (python_hooks_per_event), a second mail */
        hookd_event_t fail = {.type = HOOKD_EVENT_FAILED,
                              .id = "mail-2",
                              .certificate_name = "cert-mail-2",
                              .order_name = "order-mail",
                              .csr = csr,
                              .error = "urn:ietf:params:acme:error:rejectedIdentifier"};
        run(&s, NULL, &fail, &d);
        cr_assert_eq(d.verdict, HOOKD_VERDICT_COMPLETED, "%s", d.error);
    }
    cr_assert_eq(read_line(out[0], line, sizeof(line), 20000 * (int)time_scale()), 0,
                 "no second mail arrived");
    cr_assert_str_eq(line, "mail 2");
    stop(&s);

    snprintf(path, sizeof(path), "%s/mail-1.eml", dir);
    mail = slurp(path);
    cr_assert_not_null(strstr(mail, "Subject: acme-hookd-test success: mail.example"), "%s", mail);
    cr_assert_not_null(strstr(mail, "To: admin@example.org"), "%s", mail);
    cr_assert_not_null(strstr(mail, "Request Key: cert-mail"), "%s", mail);
    free(mail);
    snprintf(path, sizeof(path), "%s/mail-2.eml", dir);
    mail = slurp(path);
    cr_assert_not_null(strstr(mail, "Subject: acme-hookd-test failure: mail.example"), "%s", mail);
    cr_assert_not_null(strstr(mail, "rejectedIdentifier"), "%s", mail);
    free(mail);

    close(in[1]); /* the sink stops at EOF */
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    close(out[0]);
    free(csr);
    free(pem);
    free(raw);
    EVP_PKEY_free(key);
    rm_tmp();
}

/* ---- a module of our own that misbehaves -------------------------------- */

static void hostile_start(setup_t *s, const char *isolation, const char *extra)
{
    char hooks[1024], worker[200];
    snprintf(hooks, sizeof(hooks),
             "hooks_file = python\npython_hooks_module = " HOOKD_TEST_DIR "/hostile_hooks.py\n"
             "save_path = %s\nallow_post_hook_failure = false\n%s",
             dir, extra ? extra : "");
    snprintf(worker, sizeof(worker),
             "isolation = %s\nhook_timeout_ms = %ld\nhook_rlimit_as_mb = 256\n", isolation,
             8000 * time_scale());
    start_ok(s, "hostile", hooks, worker);
}

static hookd_decision_t act(setup_t *s, const char *what)
{
    hookd_decision_t d;
    hookd_event_t ev = {.type = HOOKD_EVENT_REQUESTED,
                        .id = what,
                        .certificate_name = what,
                        .order_name = "o",
                        .csr = "Q1NS"};
    run(s, NULL, &ev, &d);
    return d;
}

static void contained(const char *isolation)
{
    setup_t s;
    hookd_decision_t d;
    mkdir_tmp();
    hostile_start(&s, isolation, NULL);

    d = act(&s, "ok");
    cr_assert_eq(d.verdict, HOOKD_VERDICT_COMPLETED, "%s", d.error);
    d = act(&s, "raise");
    cr_assert_eq(d.verdict, HOOKD_VERDICT_FAILED);
    cr_assert_str_eq(d.error, "ValueError: asked to");
    d = act(&s, "exit");
    cr_assert_eq(d.verdict, HOOKD_VERDICT_FAILED);
    cr_assert_str_eq(d.error, "SystemExit: 3");
    d = act(&s, "interrupt");
    cr_assert_eq(d.verdict, HOOKD_VERDICT_FAILED);
    cr_assert_str_eq(d.error, "KeyboardInterrupt");
    cr_assert_eq(d.error_class, HOOKD_ERRCLASS_HOOK_FAILED);
    d = act(&s, "ok"); /* the same interpreter and instance go on */
    cr_assert_eq(d.verdict, HOOKD_VERDICT_COMPLETED, "%s", d.error);
    stop(&s);
    rm_tmp();
}

Test(python, exceptions_exit_and_interrupt_fail_the_hook_in_process, .timeout = 60)
{
    contained("none");
}

Test(python, exceptions_exit_and_interrupt_fail_the_hook_isolated, .timeout = 60)
{
    contained("process");
}

/* the deadline leaves room for the first call of a child, which starts its interpreter */
Test(python, hang_leak_and_exit_are_contained_by_isolation, .timeout = 120)
{
    setup_t s;
    hookd_decision_t d;
    int i;

    mkdir_tmp();
    hostile_start(&s, "process", NULL);
    d = act(&s, "sleep");
    cr_assert_eq(d.verdict, HOOKD_VERDICT_FAILED);
    cr_assert_eq(d.error_class, HOOKD_ERRCLASS_HOOK_TIMEOUT, "%s", d.error);
    d = act(&s, "ok"); /* a new child, a new interpreter */
    cr_assert_eq(d.verdict, HOOKD_VERDICT_COMPLETED, "%s", d.error);

    for (i = 0; i < 20; i++) {
        d = act(&s, "leak");
        if (d.verdict == HOOKD_VERDICT_FAILED)
            break;
    }
    cr_assert_eq(d.verdict, HOOKD_VERDICT_FAILED, "256 MB more never ran out");
    cr_assert_str_eq(d.error, "MemoryError");
    d = act(&s, "ok");
    cr_assert_eq(d.verdict, HOOKD_VERDICT_COMPLETED, "%s", d.error);

    d = act(&s, "die");
    cr_assert_eq(d.verdict, HOOKD_VERDICT_FAILED);
    cr_assert_eq(d.error_class, HOOKD_ERRCLASS_HOOK_CRASHED, "%s", d.error);
    d = act(&s, "ok");
    cr_assert_eq(d.verdict, HOOKD_VERDICT_COMPLETED, "%s", d.error);
    cr_assert_eq(Py_IsInitialized(), 0, "Python started in the worker process");
    stop(&s);
    rm_tmp();
}

Test(python, each_isolated_thread_has_its_own_interpreter, .timeout = 60)
{
    setup_t a, b;
    hookd_decision_t d;
    char path[400], *pids;
    long p1 = 0, p2 = 0;

    mkdir_tmp();
    hostile_start(&a, "process", NULL);
    b = a;
    /* a second handler thread: its own instances and child */
    {
        char err[2048];
        b.inv = hookd_invoke_create(a.reg, a.cfg, NULL, err, sizeof(err));
        cr_assert_not_null(b.inv, "%s", err);
    }
    d = act(&a, "pid");
    cr_assert_eq(d.verdict, HOOKD_VERDICT_COMPLETED, "%s", d.error);
    d = act(&b, "pid");
    cr_assert_eq(d.verdict, HOOKD_VERDICT_COMPLETED, "%s", d.error);
    snprintf(path, sizeof(path), "%s/pids", dir);
    pids = slurp(path);
    cr_assert_eq(sscanf(pids, "%ld\n%ld", &p1, &p2), 2, "%s", pids);
    cr_assert_neq(p1, p2);
    cr_assert_neq(p1, (long)getpid());
    cr_assert_neq(p2, (long)getpid());
    free(pids);
    hookd_invoke_destroy(b.inv);
    stop(&a);
    cr_assert_eq(Py_IsInitialized(), 0);
    rm_tmp();
}

Test(python, raise_in_init_and_missing_module_refuse_to_start, .timeout = 60)
{
    char err[2048], hooks[600];
    setup_t s;

    mkdir_tmp();
    snprintf(hooks, sizeof(hooks),
             "hooks_file = python\npython_hooks_module = " HOOKD_TEST_DIR "/hostile_hooks.py\n"
             "save_path = %s\nhostile_init = raise",
             dir);
    cr_assert_eq(start(&s, "init", hooks, NULL, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "hostile_hooks.py"), "%s", err);
    cr_assert_not_null(strstr(err, "Hooks(logger) failed: ValueError: refusing to start"), "%s",
                       err);
    hookd_registry_destroy(s.reg);
    hookd_config_destroy(s.cfg);

    cr_assert_eq(start(&s, "missing", "hooks_file = python\npython_hooks_module = no_such.hooks",
                       "isolation = process", err, sizeof(err)),
                 -1);
    cr_assert_not_null(strstr(err, "'no_such.hooks': import failed: ModuleNotFoundError: No "
                                   "module named 'no_such'"),
                       "%s", err);
    hookd_registry_destroy(s.reg);
    hookd_config_destroy(s.cfg);
    cr_assert_eq(Py_IsInitialized(), 0, "the check ran Python in the worker process");
    rm_tmp();
}

Test(python, load_config_sees_the_hooks_section, .timeout = 60)
{
    setup_t s;
    hookd_decision_t d;
    char path[400], *pids;

    mkdir_tmp();
    /* save_path reaches the module only through load_config(): the pid file lands there */
    hostile_start(&s, "none", "unrelated_key = some value");
    d = act(&s, "pid");
    cr_assert_eq(d.verdict, HOOKD_VERDICT_COMPLETED, "%s", d.error);
    snprintf(path, sizeof(path), "%s/pids", dir);
    pids = slurp(path);
    cr_assert_eq(strtol(pids, NULL, 10), (long)getpid(), "isolation none runs in the worker");
    free(pids);
    stop(&s);
    rm_tmp();
}
