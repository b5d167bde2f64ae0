/* SPDX-License-Identifier: MIT */
/*
 * Tests of the Criterion shim's runner, half of them failing on purpose:
 * check_selftest.cmake runs this executable and checks what the runner
 * reports for each (ctest harness.criterion_shim). Built against the shim
 * in every build, whatever the unit tests use.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static int inits; /* set by the suite's init in each test's process */

static void suite_init(void)
{
    inits++;
}

static void suite_fini(void)
{
    cr_log_info("%s: suite fini ran", "shim");
}

TestSuite(shim, .init = suite_init, .fini = suite_fini);

Test(shim, passes)
{
    int n = 0;
    const char *s = "abc";
    double d = 0.1 + 0.2;

    cr_assert(1);
    cr_assert_eq(++n, 1, "operands are evaluated once");
    cr_assert_eq(n, 1, "++n ran %d times", n);
    cr_expect_neq(n, 2);
    cr_assert_lt(n, 2);
    cr_assert_leq(n, 1);
    cr_assert_gt(n, 0);
    cr_assert_geq(n, 1);
    cr_assert_not(n == 2);
    cr_assert_null(NULL);
    cr_assert_not_null(s);
    cr_assert_str_eq(s, "abc");
    cr_assert_str_neq(s, "abd");
    cr_assert_str_empty("");
    cr_assert_str_not_empty(s);
    cr_assert_float_eq(d, 0.3, 1e-9);
    cr_expect(inits == 1, "the suite's init ran %d times in this process", inits);
}

/* like every test, in a process of its own: the other tests' inits are not counted */
Test(shim, fresh_globals)
{
    cr_assert_eq(inits, 1, "the suite's init ran %d times in this process", inits);
}

Test(shim, expect_goes_on)
{
    cr_expect(0, "first expectation, %s", "false");
    cr_expect_str_eq("a", "b");
    cr_log_info("expect_goes_on: reached the end");
}

static void test_fini(void)
{
    cr_log_info("assert_stops: fini ran");
}

Test(shim, assert_stops, .fini = test_fini)
{
    cr_assert_eq(1, 2, "one is not %d", 2);
    cr_log_info("assert_stops: went on");
}

static void failing_init(void)
{
    cr_assert_fail("init gives up");
}

Test(shim, init_fails, .init = failing_init)
{
    cr_log_info("init_fails: body ran");
}

Test(shim, crashes)
{
    /* SIGKILL: no sanitizer or valgrind turns it into a report or an exit */
    raise(SIGKILL);
    cr_log_info("crashes: survived");
}

Test(shim, times_out, .timeout = 0.5)
{
    for (;;)
        pause();
}

Test(shim, skips)
{
    cr_skip_test("skipped on %s", "purpose");
    cr_log_info("skips: went on");
}

Test(shim, disabled, .disabled = true)
{
    cr_log_info("disabled: ran");
}

Test(shim, expected_signal, .signal = SIGABRT)
{
    abort();
}

Test(shim, expected_exit_code, .exit_code = 3)
{
    exit(3);
}

static void *assert_false(void *arg)
{
    cr_assert(arg == NULL, "in a thread of the test");
    return NULL;
}

/* a stop outside the test's thread ends the test's process */
Test(shim, assert_in_thread)
{
    static int not_null;
    pthread_t t;

    cr_assert_eq(pthread_create(&t, NULL, assert_false, &not_null), 0);
    pthread_join(t, NULL);
    cr_log_info("assert_in_thread: went on");
}

Test(shim, missing_signal, .signal = SIGABRT)
{
}
