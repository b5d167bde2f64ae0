/* SPDX-License-Identifier: MIT */
/*
 * The handler registry: builtin names, handler files, and every way loading
 * fails closed (missing file, missing symbol, ABI mismatch, unsafe
 * permissions, failing init), each with one line naming the entry and the
 * reason.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fake_host.h"
#include "invoke.h"
#include "registry.h"

#define HANDLERS_DIR HOOKD_BINARY_DIR "/hooks"
#define TEST_HANDLERS_DIR HOOKD_BINARY_DIR "/tests/handlers"

static char errstr[1024];

static hookd_registry_t *load(const char *hooks_file, bool allow_unsafe, hookd_registry_err_t *err)
{
    hookd_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.hooks_file = (char *)hooks_file;
    cfg.allow_unsafe_hooks_file = allow_unsafe;
    errstr[0] = '\0';
    return hookd_registry_load(&cfg, err, errstr, sizeof(errstr));
}

/* Expect a failure with code `code` and a message containing all `parts`. */
static void expect_failure(const char *hooks_file, bool allow_unsafe, hookd_registry_err_t code,
                           const char *const *parts)
{
    hookd_registry_err_t err = HOOKD_REGISTRY_OK;
    hookd_registry_t *r = load(hooks_file, allow_unsafe, &err);
    size_t i;

    cr_assert_null(r, "loading '%s' should fail", hooks_file);
    cr_assert_eq(err, code, "error code %d, expected %d (%s)", err, code, errstr);
    cr_assert_null(strchr(errstr, '\n'), "one line: %s", errstr);
    for (i = 0; parts[i]; i++)
        cr_assert(strstr(errstr, parts[i]), "message '%s' lacks '%s'", errstr, parts[i]);
}

/* A temp dir under the build tree, mode 0755 (the build tree is ours). */
static char tmpdir[PATH_MAX];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "%s/tests/registry-XXXXXX", HOOKD_BINARY_DIR);
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
    cr_assert_eq(chmod(tmpdir, 0755), 0);
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
    char buf[65536];
    ssize_t n;
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert(in >= 0 && out >= 0, "copy %s -> %s: %s", from, to, strerror(errno));
    while ((n = read(in, buf, sizeof(buf))) > 0)
        cr_assert_eq(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
    cr_assert_eq(chmod(to, mode), 0);
}

static void rm_tmpdir(void)
{
    char cmd[PATH_MAX + 32];
    if (!tmpdir[0])
        return;
    chmod(tmpdir, 0755);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
    tmpdir[0] = '\0';
}

Test(registry, builtin_names_list_the_bundled_handlers)
{
    const char *const *names = hookd_registry_builtin_names();
    const char *want[] = {"skeleton", "cn_dump", "exception_test", "exec"};
    size_t i, k;

    for (i = 0; i < 4; i++) {
        bool found = false;
        for (k = 0; names[k]; k++)
            found |= strcmp(names[k], want[i]) == 0;
        cr_assert(found, "builtin '%s' missing", want[i]);
    }
}

Test(registry, empty_hooks_file_is_an_empty_chain)
{
    hookd_registry_err_t err = HOOKD_REGISTRY_ERR_ABI;
    hookd_registry_t *r = load(NULL, false, &err);
    cr_assert_not_null(r, "%s", errstr);
    cr_assert_eq(err, HOOKD_REGISTRY_OK);
    cr_assert_eq(hookd_registry_count(r), 0);
    cr_assert_eq(hookd_registry_chain(r)->count, 0);
    hookd_registry_destroy(r);

    r = load(" , \n", false, &err);
    cr_assert_not_null(r, "%s", errstr);
    cr_assert_eq(hookd_registry_count(r), 0);
    hookd_registry_destroy(r);
}

Test(registry, builtins_and_files_form_a_chain_in_order)
{
    char list[1024];
    hookd_registry_t *r;
    const hookd_chain_t *chain;
    char expect_origin[PATH_MAX];

    snprintf(list, sizeof(list), "exception_test, %s/hookd_skeleton.so\ncn_dump\texec",
             HANDLERS_DIR);
    r = load(list, false, NULL);
    cr_assert_not_null(r, "%s", errstr);
    cr_assert_eq(hookd_registry_count(r), 4);

    cr_assert_str_eq(hookd_registry_handler(r, 0)->name, "exception_test");
    cr_assert_str_eq(hookd_registry_handler(r, 1)->name, "skeleton");
    cr_assert_str_eq(hookd_registry_handler(r, 2)->name, "cn_dump");
    cr_assert_str_eq(hookd_registry_handler(r, 3)->name, "exec");

    cr_assert_str_eq(hookd_registry_origin(r, 0), "builtin:exception_test");
    cr_assert_not_null(realpath(HANDLERS_DIR "/hookd_skeleton.so", expect_origin));
    cr_assert_str_eq(hookd_registry_origin(r, 1), expect_origin);

    chain = hookd_registry_chain(r);
    cr_assert_eq(chain->count, 4);
    cr_assert_str_eq(chain->entries[2].name, "cn_dump");
    cr_assert(chain->entries[2].has_phase[HOOKD_PHASE_PRE]);
    cr_assert(chain->entries[2].has_phase[HOOKD_PHASE_SUCCESS]);
    cr_assert(chain->entries[2].has_phase[HOOKD_PHASE_POST]);
    cr_assert_null(hookd_registry_handler(r, 4));
    cr_assert_null(hookd_registry_origin(r, 4));
    hookd_registry_destroy(r);
}

Test(registry, handlers_declare_their_config_keys)
{
    char list[512];
    hookd_registry_t *r;

    snprintf(list, sizeof(list), "cn_dump %s/hookd_skeleton.so", HANDLERS_DIR);
    r = load(list, false, NULL);
    cr_assert_not_null(r, "%s", errstr);
    cr_assert(hookd_registry_declares_key("save_path", r));
    cr_assert(hookd_registry_declares_key("skeleton_marker_dir", r));
    cr_assert_not(hookd_registry_declares_key("raise_pre_hook_exception", r),
                  "exception_test is not loaded");
    cr_assert_not(hookd_registry_declares_key("save_paht", r));
    cr_assert_not(hookd_registry_declares_key(NULL, r));
    hookd_registry_destroy(r);
}

Test(registry, bundled_handler_files_load_and_match_their_builtins)
{
    static const char *const names[] = {"skeleton", "cn_dump", "exception_test", "exec"};
    size_t i;

    for (i = 0; i < 4; i++) {
        char path[PATH_MAX];
        hookd_registry_t *file, *builtin;
        const hookd_handler_t *f, *b;

        snprintf(path, sizeof(path), "%s/hookd_%s.so", HANDLERS_DIR, names[i]);
        file = load(path, false, NULL);
        cr_assert_not_null(file, "%s", errstr);
        builtin = load(names[i], false, NULL);
        cr_assert_not_null(builtin, "%s", errstr);
        f = hookd_registry_handler(file, 0);
        b = hookd_registry_handler(builtin, 0);
        cr_assert_str_eq(f->name, b->name);
        cr_assert_eq(f->abi_version, HOOKD_ABI_VERSION);
        cr_assert_eq(f->pre_hook != NULL, b->pre_hook != NULL);
        cr_assert_eq(f->success_hook != NULL, b->success_hook != NULL);
        cr_assert_eq(f->post_hook != NULL, b->post_hook != NULL);
        cr_assert_neq((void *)f->pre_hook, (void *)b->pre_hook,
                      "the file's code, not the builtin's");
        hookd_registry_destroy(file);
        hookd_registry_destroy(builtin);
    }
}

Test(registry, unknown_builtin_is_refused_with_the_list)
{
    const char *parts[] = {"'nosuch'", "no builtin handler", "cn_dump", "exec", NULL};
    expect_failure("skeleton, nosuch", false, HOOKD_REGISTRY_ERR_NOT_FOUND, parts);
}

Test(registry, missing_file)
{
    const char *parts[] = {"'/nonexistent/dir/handler.so'", "No such file or directory", NULL};
    expect_failure("/nonexistent/dir/handler.so", false, HOOKD_REGISTRY_ERR_NOT_FOUND, parts);
}

Test(registry, python_hooks_file_gets_a_hint)
{
    const char *parts[] = {"examples/hooks/cn_dump_hooks.py", "Python", "builtin", NULL};
    expect_failure("examples/hooks/cn_dump_hooks.py", false, HOOKD_REGISTRY_ERR_NOT_FOUND, parts);
}

Test(registry, not_a_shared_object, .fini = rm_tmpdir)
{
    char path[PATH_MAX + 16];
    const char *parts[] = {"not a loadable handler", path, NULL};
    FILE *f;

    make_tmpdir();
    snprintf(path, sizeof(path), "%s/junk.so", tmpdir);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("this is not an ELF file\n", f);
    fclose(f);
    expect_failure(path, false, HOOKD_REGISTRY_ERR_DLOPEN, parts);
}

Test(registry, missing_symbol)
{
    const char *parts[] = {"test_no_symbol.so", "no symbol 'hookd_handler'", NULL};
    expect_failure(TEST_HANDLERS_DIR "/test_no_symbol.so", false, HOOKD_REGISTRY_ERR_SYMBOL, parts);
}

Test(registry, wrong_major_abi)
{
    char want[64];
    const char *parts[] = {"test_wrong_abi.so", "ABI mismatch", want, NULL};
    snprintf(want, sizeof(want), "ABI %d.0", HOOKD_ABI_MAJOR + 1);
    expect_failure(TEST_HANDLERS_DIR "/test_wrong_abi.so", false, HOOKD_REGISTRY_ERR_ABI, parts);
}

Test(registry, struct_smaller_than_abi_1_0)
{
    const char *parts[] = {"test_small_struct.so", "struct_size 16", NULL};
    expect_failure(TEST_HANDLERS_DIR "/test_small_struct.so", false, HOOKD_REGISTRY_ERR_ABI, parts);
}

Test(registry, empty_name)
{
    const char *parts[] = {"test_no_name.so", "name must be", NULL};
    expect_failure(TEST_HANDLERS_DIR "/test_no_name.so", false, HOOKD_REGISTRY_ERR_ABI, parts);
}

Test(registry, newer_minor_version_loads_with_the_known_fields)
{
    hookd_registry_t *r = load(TEST_HANDLERS_DIR "/test_newer_minor.so", false, NULL);
    const hookd_handler_t *h;
    fake_host_t fh;

    cr_assert_not_null(r, "%s", errstr);
    h = hookd_registry_handler(r, 0);
    cr_assert_str_eq(h->name, "newer_minor");
    cr_assert_eq(HOOKD_ABI_VERSION_MINOR(h->abi_version), HOOKD_ABI_MINOR + 7);
    cr_assert_not_null(h->pre_hook);
    cr_assert_null(h->success_hook);
    cr_assert_null(h->init);

    fake_host_init(&fh, NULL, "ev-1");
    cr_assert_eq(h->pre_hook(&fh.ctx, NULL, "cert-1", "order-1", "csr"), HOOKD_OK);
    cr_assert(strstr(fh.logs, "pre_hook(cert-1)"), "logs: %s", fh.logs);
    hookd_registry_destroy(r);
}

Test(registry, too_many_handlers)
{
    char list[1024] = "";
    const char *parts[] = {"too many handlers", NULL};
    int i;
    for (i = 0; i <= HOOKD_CHAIN_MAX; i++)
        strcat(list, "skeleton ");
    expect_failure(list, false, HOOKD_REGISTRY_ERR_LIMIT, parts);
}

/* ---- fail closed on init ------------------------------------------------- */

Test(registry, init_failure_reaches_the_caller)
{
    hookd_registry_t *r = load(TEST_HANDLERS_DIR "/test_init_fail.so", false, NULL);
    const hookd_handler_t *h;
    const char *config[] = {"init_fail_reason", "the moon is full", NULL};
    fake_host_t fh;
    void *state = NULL;

    cr_assert_not_null(r, "%s", errstr);
    h = hookd_registry_handler(r, 0);
    cr_assert(hookd_registry_declares_key("init_fail_reason", r));
    fake_host_init(&fh, config, NULL);
    cr_assert_eq(h->init(&fh.ctx, &state), HOOKD_FAIL);
    cr_assert_str_eq(fh.error, "test handler refuses to start: the moon is full");
    hookd_registry_destroy(r);
}

Test(registry, init_failure_stops_instance_creation)
{
    hookd_config_t cfg;
    hookd_registry_t *r;
    hookd_invoke_t *inv;
    char list[512];

    memset(&cfg, 0, sizeof(cfg));
    snprintf(list, sizeof(list), "skeleton %s/test_init_fail.so", TEST_HANDLERS_DIR);
    cfg.hooks_file = list;
    hookd_policy_defaults(&cfg.policy);
    r = hookd_registry_load(&cfg, NULL, errstr, sizeof(errstr));
    cr_assert_not_null(r, "%s", errstr);

    errstr[0] = '\0';
    inv = hookd_invoke_create(r, &cfg, NULL, errstr, sizeof(errstr));
    cr_assert_null(inv, "a failing init must stop the worker");
    cr_assert(strstr(errstr, "init_fail"), "names the handler: %s", errstr);
    cr_assert(strstr(errstr, "test_init_fail.so"), "names the file: %s", errstr);
    cr_assert(strstr(errstr, "refuses to start"), "gives the reason: %s", errstr);
    hookd_registry_destroy(r);
}

/* ---- StrictModes-like permission checks ---------------------------------- */

Test(registry, world_writable_file_is_refused, .fini = rm_tmpdir)
{
    char path[PATH_MAX + 32];
    const char *parts[] = {path, "writable by others", "allow_unsafe_hooks_file", NULL};
    hookd_registry_t *r;

    make_tmpdir();
    snprintf(path, sizeof(path), "%s/copy.so", tmpdir);
    copy_file(HANDLERS_DIR "/hookd_skeleton.so", path, 0644);
    r = load(path, false, NULL);
    cr_assert_not_null(r, "a 0644 copy in a 0755 directory loads: %s", errstr);
    hookd_registry_destroy(r);

    cr_assert_eq(chmod(path, 0646), 0);
    expect_failure(path, false, HOOKD_REGISTRY_ERR_PERMISSIONS, parts);

    /* The explicit override. */
    r = load(path, true, NULL);
    cr_assert_not_null(r, "allow_unsafe_hooks_file loads it: %s", errstr);
    cr_assert_str_eq(hookd_registry_handler(r, 0)->name, "skeleton");
    hookd_registry_destroy(r);
}

Test(registry, group_writable_file_is_refused, .fini = rm_tmpdir)
{
    char path[PATH_MAX + 32];
    const char *parts[] = {path, "writable by its group", NULL};

    make_tmpdir();
    snprintf(path, sizeof(path), "%s/copy.so", tmpdir);
    copy_file(HANDLERS_DIR "/hookd_skeleton.so", path, 0664);
    expect_failure(path, false, HOOKD_REGISTRY_ERR_PERMISSIONS, parts);
}

Test(registry, writable_directory_is_refused, .fini = rm_tmpdir)
{
    char path[PATH_MAX + 32];
    const char *parts[] = {path, "directory", tmpdir, "writable by others", NULL};
    hookd_registry_t *r;

    make_tmpdir();
    snprintf(path, sizeof(path), "%s/copy.so", tmpdir);
    copy_file(HANDLERS_DIR "/hookd_skeleton.so", path, 0644);
    /* Even sticky: someone else could have placed the file there. */
    cr_assert_eq(chmod(tmpdir, 01777), 0);
    expect_failure(path, false, HOOKD_REGISTRY_ERR_PERMISSIONS, parts);

    r = load(path, true, NULL);
    cr_assert_not_null(r, "%s", errstr);
    hookd_registry_destroy(r);
}

Test(registry, sticky_shared_directory_above_is_accepted, .fini = rm_tmpdir)
{
    char shared[PATH_MAX + 16], own[PATH_MAX + 32], path[PATH_MAX + 48];
    hookd_registry_t *r;

    make_tmpdir();
    snprintf(shared, sizeof(shared), "%s/shared", tmpdir);
    snprintf(own, sizeof(own), "%s/mine", shared);
    snprintf(path, sizeof(path), "%s/copy.so", own);
    cr_assert_eq(mkdir(shared, 0755), 0);
    cr_assert_eq(chmod(shared, 01777), 0); /* like /tmp */
    cr_assert_eq(mkdir(own, 0755), 0);
    copy_file(HANDLERS_DIR "/hookd_skeleton.so", path, 0644);
    r = load(path, false, NULL);
    cr_assert_not_null(r, "a strict directory inside a sticky one is fine: %s", errstr);
    hookd_registry_destroy(r);

    /* Without the sticky bit the shared directory is a way in. */
    {
        const char *parts[] = {path, shared, "writable by others", NULL};
        cr_assert_eq(chmod(shared, 0777), 0);
        expect_failure(path, false, HOOKD_REGISTRY_ERR_PERMISSIONS, parts);
    }
}

Test(registry, file_owned_by_someone_else_is_refused, .fini = rm_tmpdir)
{
    char path[PATH_MAX + 32];
    const char *parts[] = {path, "owned by uid 4242", NULL};
    hookd_registry_t *r;

    if (geteuid() != 0)
        cr_skip_test("changing a file's owner needs root");
    make_tmpdir();
    snprintf(path, sizeof(path), "%s/copy.so", tmpdir);
    copy_file(HANDLERS_DIR "/hookd_skeleton.so", path, 0644);
    cr_assert_eq(chown(path, 4242, 4242), 0);
    expect_failure(path, false, HOOKD_REGISTRY_ERR_PERMISSIONS, parts);
    r = load(path, true, NULL);
    cr_assert_not_null(r, "%s", errstr);
    hookd_registry_destroy(r);
}

Test(registry, symlink_is_checked_at_its_target, .fini = rm_tmpdir)
{
    char target[PATH_MAX + 32], link_path[PATH_MAX + 32];
    const char *parts[] = {link_path, target, "writable by others", NULL};

    make_tmpdir();
    snprintf(target, sizeof(target), "%s/real.so", tmpdir);
    snprintf(link_path, sizeof(link_path), "%s/link.so", tmpdir);
    copy_file(HANDLERS_DIR "/hookd_skeleton.so", target, 0666);
    cr_assert_eq(symlink(target, link_path), 0);
    expect_failure(link_path, false, HOOKD_REGISTRY_ERR_PERMISSIONS, parts);
}

/* ---- the skeleton handler, loaded as a file ------------------------------ */

Test(registry, skeleton_file_is_idempotent_by_event_id, .fini = rm_tmpdir)
{
    hookd_registry_t *r = load(HANDLERS_DIR "/hookd_skeleton.so", false, NULL);
    const hookd_handler_t *h;
    const char *config[] = {"skeleton_marker_dir", tmpdir, NULL};
    const char *bad_config[] = {"skeleton_marker_dir", "/nonexistent/markers", NULL};
    char marker[PATH_MAX + 64];
    fake_host_t fh;
    void *st = NULL;

    cr_assert_not_null(r, "%s", errstr);
    h = hookd_registry_handler(r, 0);
    make_tmpdir();

    fake_host_init(&fh, bad_config, NULL);
    cr_assert_eq(h->init(&fh.ctx, &st), HOOKD_FAIL);
    cr_assert(strstr(fh.error, "/nonexistent/markers"), "%s", fh.error);

    fake_host_init(&fh, config, NULL);
    cr_assert_eq(h->init(&fh.ctx, &st), HOOKD_OK, "%s", fh.error);

    fake_host_reset(&fh, "ev/../1");
    cr_assert_eq(h->pre_hook(&fh.ctx, st, "c", "o", "csr"), HOOKD_OK, "%s", fh.error);
    snprintf(marker, sizeof(marker), "%s/ev%%2f%%2e%%2e%%2f1.pre", tmpdir);
    cr_assert_eq(access(marker, F_OK), 0, "marker %s, an id cannot leave the directory", marker);
    cr_assert_null(strstr(fh.logs, "already done"), "%s", fh.logs);

    /* The same event again: recognised, still ok. Another event: new work. */
    cr_assert_eq(h->pre_hook(&fh.ctx, st, "c", "o", "csr"), HOOKD_OK, "%s", fh.error);
    cr_assert(strstr(fh.logs, "pre_hook of event ev/../1 already done"), "%s", fh.logs);
    fake_host_reset(&fh, "ev-2");
    fh.logs[0] = '\0';
    fh.logs_len = 0;
    cr_assert_eq(h->pre_hook(&fh.ctx, st, "c", "o", "csr"), HOOKD_OK, "%s", fh.error);
    cr_assert_null(strstr(fh.logs, "already done"), "%s", fh.logs);
    cr_assert_eq(h->success_hook(&fh.ctx, st, "c", "o", "csr", "pem", "raw", NULL), HOOKD_OK);
    cr_assert_eq(h->post_hook(&fh.ctx, st, "c", "o", "csr", NULL), HOOKD_OK);
    snprintf(marker, sizeof(marker), "%s/ev-2.post", tmpdir);
    cr_assert_eq(access(marker, F_OK), 0, "%s", marker);

    h->fini(&fh.ctx, st);
    hookd_registry_destroy(r);
}
