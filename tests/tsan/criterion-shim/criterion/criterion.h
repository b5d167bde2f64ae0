/* SPDX-License-Identifier: MIT */
/*
 * The part of Criterion's API that tests/unit uses, with a runner of our own
 * (runner.c), for the ThreadSanitizer build.
 *
 * Criterion 2.4 cannot start under TSan (scripts/tsan.sh says why), so the
 * HOOKD_SANITIZE=thread build compiles every tests/unit/test_*.c against this
 * header instead (its directory comes before the system include directories)
 * and links runner.c, which brings main(). The other builds use Criterion
 * itself; this header and the runner are built there only for their
 * self-test (selftest.c).
 *
 * Contract, as Criterion documents it for the subset kept here:
 * - Test(suite, name, .init, .fini, .timeout, .signal, .exit_code,
 *   .disabled, .description) defines a test; TestSuite(suite, ...) the same
 *   options for every test of the suite. Each test runs in a process of its
 *   own, forked from the runner (fresh globals, a crash ends only it): the
 *   suite's init, the test's init, the test, the test's fini, the suite's
 *   fini. The timeout (seconds, the test's or else the suite's, 0: none)
 *   kills the process and fails the test.
 * - cr_assert*: a false assertion fails the test and stops it; its fini
 *   functions still run. cr_expect*: fails the test and goes on. Every
 *   assertion takes an optional printf-style message after its operands.
 *   Operands are evaluated once.
 * - cr_skip_test(...) ends the test as skipped (fini functions run);
 *   cr_log_info/warn/error(...) print a line.
 * Not provided: parameterized tests, theories, the "new" assert API,
 * report hooks, output redirection; a test using them does not compile.
 */
#ifndef HOOKD_CRITERION_SHIM_H
#define HOOKD_CRITERION_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* A test's or a suite's options, named as Criterion's (designated
 * initialisers in Test() and TestSuite() set them). */
typedef struct crs_options {
    int sentinel_; /* first, so that an option list may be empty */
    void (*init)(void);
    void (*fini)(void);
    int signal;    /* the test passes if it dies of this signal */
    int exit_code; /* ...or exits with this status */
    bool disabled;
    const char *description;
    double timeout; /* seconds; 0: none */
} crs_options_t;

typedef struct crs_test {
    const char *suite;
    const char *name;
    const char *file;
    unsigned line;
    void (*fn)(void);
    crs_options_t opts;
    struct crs_test *next; /* the runner's list */
} crs_test_t;

typedef struct crs_suite {
    const char *name;
    crs_options_t opts;
    struct crs_suite *next;
} crs_suite_t;

/* Called by the constructors Test() and TestSuite() define, before main(). */
void crs_register_test(crs_test_t *test);
void crs_register_suite(crs_suite_t *suite);

/* A failed assertion: crs_fail_begin() says where and what, crs_message()
 * adds the caller's message, crs_fail_end() records the failure; then
 * crs_abort_test() for cr_assert*. */
void crs_fail_begin(const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void crs_message(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void crs_fail_end(void);
_Noreturn void crs_abort_test(void);
_Noreturn void crs_skip_test(void);
void crs_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *crs_str(const char *s); /* s, or "(null)" */

#define Test(Suite, Name, ...)                                                                     \
    static void crs_fn_##Suite##_##Name(void);                                                     \
    static crs_test_t crs_test_##Suite##_##Name = {                                                \
        #Suite, #Name, __FILE__, __LINE__, crs_fn_##Suite##_##Name, {.sentinel_ = 0, __VA_ARGS__}, \
        NULL};                                                                                     \
    __attribute__((constructor)) static void crs_reg_##Suite##_##Name(void)                        \
    {                                                                                              \
        crs_register_test(&crs_test_##Suite##_##Name);                                             \
    }                                                                                              \
    static void crs_fn_##Suite##_##Name(void)

#define TestSuite(Suite, ...)                                                                      \
    static crs_suite_t crs_suite_##Suite = {#Suite, {.sentinel_ = 0, __VA_ARGS__}, NULL};          \
    __attribute__((constructor)) static void crs_regsuite_##Suite(void)                            \
    {                                                                                              \
        crs_register_suite(&crs_suite_##Suite);                                                    \
    }                                                                                              \
    struct crs_suite_end_##Suite /* eats the caller's semicolon */

/* Failed: the condition that fails; Stop: crs_abort_test() or nothing;
 * Begin: the crs_fail_begin() call; then the caller's optional message. */
#define CRS_CHECK_(Failed, Stop, Begin, ...)                                                       \
    do {                                                                                           \
        if (Failed) {                                                                              \
            Begin;                                                                                 \
            __VA_OPT__(crs_message(__VA_ARGS__);)                                                  \
            crs_fail_end();                                                                        \
            Stop;                                                                                  \
        }                                                                                          \
    } while (0)
#define CRS_STOP_1 crs_abort_test()
#define CRS_STOP_0 (void)0

#define CRS_COND_(Fatal, Cond, ...)                                                                \
    CRS_CHECK_(!(Cond), CRS_STOP_##Fatal,                                                          \
               crs_fail_begin(__FILE__, __LINE__, "%s is false", #Cond), __VA_ARGS__)
#define CRS_NOT_(Fatal, Cond, ...)                                                                 \
    CRS_CHECK_((Cond), CRS_STOP_##Fatal, crs_fail_begin(__FILE__, __LINE__, "%s is true", #Cond),  \
               __VA_ARGS__)
#define CRS_OP_(Fatal, Op, A, B, ...)                                                              \
    CRS_CHECK_(!((A)Op(B)), CRS_STOP_##Fatal,                                                      \
               crs_fail_begin(__FILE__, __LINE__, "(%s) %s (%s) is false", #A, #Op, #B),           \
               __VA_ARGS__)
#define CRS_NULL_(Fatal, Op, V, ...)                                                               \
    CRS_CHECK_(!((V)Op NULL), CRS_STOP_##Fatal,                                                    \
               crs_fail_begin(__FILE__, __LINE__, "(%s) %s NULL is false", #V, #Op), __VA_ARGS__)
#define CRS_STR_(Fatal, Op, A, B, ...)                                                             \
    do {                                                                                           \
        const char *crs_a_ = (A), *crs_b_ = (B);                                                   \
        CRS_CHECK_(!(crs_a_ && crs_b_ && strcmp(crs_a_, crs_b_) Op 0), CRS_STOP_##Fatal,           \
                   crs_fail_begin(__FILE__, __LINE__, "(%s) %s (%s) is false: \"%s\" %s \"%s\"",   \
                                  #A, #Op, #B, crs_str(crs_a_), #Op, crs_str(crs_b_)),             \
                   __VA_ARGS__);                                                                   \
    } while (0)
#define CRS_STR_EMPTY_(Fatal, Op, V, ...)                                                          \
    do {                                                                                           \
        const char *crs_v_ = (V);                                                                  \
        CRS_CHECK_(!(crs_v_ && crs_v_[0] Op '\0'), CRS_STOP_##Fatal,                               \
                   crs_fail_begin(__FILE__, __LINE__, "(%s)[0] %s '\\0' is false: \"%s\"", #V,     \
                                  #Op, crs_str(crs_v_)),                                           \
                   __VA_ARGS__);                                                                   \
    } while (0)
#define CRS_FLOAT_EQ_(Fatal, A, B, Eps, ...)                                                       \
    do {                                                                                           \
        double crs_a_ = (A), crs_b_ = (B), crs_eps_ = (Eps);                                       \
        CRS_CHECK_(!(crs_b_ - crs_a_ <= crs_eps_ && crs_a_ - crs_b_ <= crs_eps_),                  \
                   CRS_STOP_##Fatal,                                                               \
                   crs_fail_begin(__FILE__, __LINE__, "(%s) == (%s) within %s is false: %g, %g",   \
                                  #A, #B, #Eps, crs_a_, crs_b_),                                   \
                   __VA_ARGS__);                                                                   \
    } while (0)

#define cr_assert(...) CRS_COND_(1, __VA_ARGS__)
#define cr_expect(...) CRS_COND_(0, __VA_ARGS__)
#define cr_assert_not(...) CRS_NOT_(1, __VA_ARGS__)
#define cr_expect_not(...) CRS_NOT_(0, __VA_ARGS__)
#define cr_assert_eq(...) CRS_OP_(1, ==, __VA_ARGS__)
#define cr_expect_eq(...) CRS_OP_(0, ==, __VA_ARGS__)
#define cr_assert_neq(...) CRS_OP_(1, !=, __VA_ARGS__)
#define cr_expect_neq(...) CRS_OP_(0, !=, __VA_ARGS__)
#define cr_assert_lt(...) CRS_OP_(1, <, __VA_ARGS__)
#define cr_expect_lt(...) CRS_OP_(0, <, __VA_ARGS__)
#define cr_assert_leq(...) CRS_OP_(1, <=, __VA_ARGS__)
#define cr_expect_leq(...) CRS_OP_(0, <=, __VA_ARGS__)
#define cr_assert_gt(...) CRS_OP_(1, >, __VA_ARGS__)
#define cr_expect_gt(...) CRS_OP_(0, >, __VA_ARGS__)
#define cr_assert_geq(...) CRS_OP_(1, >=, __VA_ARGS__)
#define cr_expect_geq(...) CRS_OP_(0, >=, __VA_ARGS__)
#define cr_assert_null(...) CRS_NULL_(1, ==, __VA_ARGS__)
#define cr_expect_null(...) CRS_NULL_(0, ==, __VA_ARGS__)
#define cr_assert_not_null(...) CRS_NULL_(1, !=, __VA_ARGS__)
#define cr_expect_not_null(...) CRS_NULL_(0, !=, __VA_ARGS__)
#define cr_assert_str_eq(...) CRS_STR_(1, ==, __VA_ARGS__)
#define cr_expect_str_eq(...) CRS_STR_(0, ==, __VA_ARGS__)
#define cr_assert_str_neq(...) CRS_STR_(1, !=, __VA_ARGS__)
#define cr_expect_str_neq(...) CRS_STR_(0, !=, __VA_ARGS__)
#define cr_assert_str_empty(...) CRS_STR_EMPTY_(1, ==, __VA_ARGS__)
#define cr_expect_str_empty(...) CRS_STR_EMPTY_(0, ==, __VA_ARGS__)
#define cr_assert_str_not_empty(...) CRS_STR_EMPTY_(1, !=, __VA_ARGS__)
#define cr_expect_str_not_empty(...) CRS_STR_EMPTY_(0, !=, __VA_ARGS__)
#define cr_assert_float_eq(...) CRS_FLOAT_EQ_(1, __VA_ARGS__)
#define cr_expect_float_eq(...) CRS_FLOAT_EQ_(0, __VA_ARGS__)
#define cr_assert_fail(...)                                                                        \
    CRS_CHECK_(1, CRS_STOP_1, crs_fail_begin(__FILE__, __LINE__, "%s", "explicit failure"),        \
               __VA_ARGS__)
#define cr_expect_fail(...)                                                                        \
    CRS_CHECK_(1, CRS_STOP_0, crs_fail_begin(__FILE__, __LINE__, "%s", "explicit failure"),        \
               __VA_ARGS__)
#define cr_skip_test(...)                                                                          \
    do {                                                                                           \
        __VA_OPT__(crs_message(__VA_ARGS__);)                                                      \
        crs_skip_test();                                                                           \
    } while (0)

#include "logging.h"

#endif
