/* SPDX-License-Identifier: MIT */
/*
 * Handler files for the loader tests, one per way a handler can be wrong
 * (or right in an unusual way). Built once per variant with
 * -DTEST_HANDLER_<VARIANT>; see CMakeLists.txt next to this file.
 */
#include <stddef.h>

#include <acme_hookd/hook.h>

__attribute__((unused)) static hookd_outcome_t th_pre(hookd_ctx_t *ctx, void *state,
                                                      const char *certificate_name,
                                                      const char *order_name, const char *csr)
{
    hookd_log(ctx, HOOKD_LOG_INFO, "test handler pre_hook(%s)", certificate_name);
    return HOOKD_OK;
}

#if defined(TEST_HANDLER_NO_SYMBOL)
/* A valid-looking struct under the wrong name: the loader must not find it. */
__attribute__((visibility("default"))) const hookd_handler_t not_the_handler = {
    HOOKD_HANDLER_HEADER,
    .name = "no_symbol",
    .pre_hook = th_pre,
};

#elif defined(TEST_HANDLER_WRONG_ABI)
/* Built against a future major version. */
HOOKD_HANDLER_EXPORT = {
    .abi_version = (uint32_t)((HOOKD_ABI_MAJOR + 1) << 16),
    .struct_size = sizeof(hookd_handler_t),
    .name = "wrong_abi",
    .pre_hook = th_pre,
};

#elif defined(TEST_HANDLER_SMALL_STRUCT)
/* Claims a struct smaller than ABI 1.0 had. */
HOOKD_HANDLER_EXPORT = {
    .abi_version = HOOKD_ABI_VERSION,
    .struct_size = 16,
    .name = "small_struct",
};

#elif defined(TEST_HANDLER_NO_NAME)
HOOKD_HANDLER_EXPORT = {
    HOOKD_HANDLER_HEADER,
    .name = "",
    .pre_hook = th_pre,
};

#elif defined(TEST_HANDLER_INIT_FAIL)
static hookd_outcome_t th_init_fail(hookd_ctx_t *ctx, void **state)
{
    hookd_set_error(ctx, "test handler refuses to start: %s",
                    hookd_config_get(ctx, "init_fail_reason")
                        ? hookd_config_get(ctx, "init_fail_reason")
                        : "no reason");
    return HOOKD_FAIL;
}
static const char *const th_keys[] = {"init_fail_reason", NULL};
HOOKD_HANDLER_EXPORT = {
    HOOKD_HANDLER_HEADER, .name = "init_fail", .config_keys = th_keys,
    .init = th_init_fail, .pre_hook = th_pre,
};

#elif defined(TEST_HANDLER_NEWER_MINOR)
/*
 * Built against a later 1.x: its struct has a field this worker does not
 * know. The loader must accept it and use the 1.0 part only.
 */
typedef struct newer_handler {
    hookd_handler_t base;
    void (*future_callback)(void);
    const char *future_string;
} newer_handler_t;
static void th_future(void)
{
}
__attribute__((visibility("default"))) const newer_handler_t hookd_handler = {
    .base =
        {
            .abi_version = (uint32_t)((HOOKD_ABI_MAJOR << 16) | (HOOKD_ABI_MINOR + 7)),
            .struct_size = sizeof(newer_handler_t),
            .name = "newer_minor",
            .description = "from the future",
            .pre_hook = th_pre,
        },
    .future_callback = th_future,
    .future_string = "ignored",
};

#else
#error "define one TEST_HANDLER_* variant"
#endif
