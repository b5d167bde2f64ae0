# SPDX-License-Identifier: MIT
# Runs the shim's self-test (selftest.c, -DSELFTEST=<executable>) and checks
# the runner's report of each test: a failing assertion (also in a thread
# of the test), a crash, a timeout, a missing signal and a failing init
# fail their test, cr_expect goes on,
# cr_assert stops (fini still runs), the exit status says a test failed;
# then --filter runs one passing test, exit status 0.
execute_process(COMMAND ${SELFTEST} --jobs 1 RESULT_VARIABLE rc
                OUTPUT_VARIABLE out ERROR_VARIABLE out)
message("${out}")
set(errors "")
if(NOT rc EQUAL 1)
  string(APPEND errors "exit status ${rc}, 1 expected\n")
endif()
foreach(re
    "\\[PASS\\] shim::passes"
    "\\[PASS\\] shim::fresh_globals"
    "selftest\\.c:[0-9]+: Assertion failed: 0 is false\n\\[----\\]   first expectation, false"
    "Assertion failed: \\(\"a\"\\) == \\(\"b\"\\) is false: \"a\" == \"b\""
    "expect_goes_on: reached the end"
    "\\[FAIL\\] shim::expect_goes_on"
    "Assertion failed: \\(1\\) == \\(2\\) is false\n\\[----\\]   one is not 2"
    "assert_stops: fini ran"
    "\\[FAIL\\] shim::assert_stops"
    "init gives up"
    "\\[FAIL\\] shim::init_fails"
    "shim::crashes: killed by signal 9"
    "\\[FAIL\\] shim::crashes"
    "shim::times_out: timed out after 0.5s"
    "\\[FAIL\\] shim::times_out"
    "skipped on purpose"
    "\\[SKIP\\] shim::skips"
    "\\[SKIP\\] shim::disabled"
    "\\[PASS\\] shim::expected_signal"
    "\\[PASS\\] shim::expected_exit_code"
    "shim::missing_signal: exited, signal 6 \\(Aborted\\) expected"
    "\\[FAIL\\] shim::missing_signal"
    "Assertion failed: arg == [^\n]* is false\n\\[----\\]   in a thread of the test"
    "\\[FAIL\\] shim::assert_in_thread"
    "Tested: 13 \\| Passing: 4 \\| Failing: 6 \\| Crashing: 1 \\| Skipped: 2")
  if(NOT out MATCHES "${re}")
    string(APPEND errors "missing: ${re}\n")
  endif()
endforeach()
foreach(re "assert_stops: went on" "init_fails: body ran" "crashes: survived"
           "skips: went on" "disabled: ran"
           "assert_in_thread: went on")
  if(out MATCHES "${re}")
    string(APPEND errors "unexpected: ${re}\n")
  endif()
endforeach()

execute_process(COMMAND ${SELFTEST} --jobs 1 --filter "shim/pass*" RESULT_VARIABLE rc
                OUTPUT_VARIABLE out ERROR_VARIABLE out)
message("${out}")
if(NOT rc EQUAL 0)
  string(APPEND errors "--filter shim/pass*: exit status ${rc}, 0 expected\n")
endif()
if(NOT out MATCHES "Tested: 1 \\| Passing: 1 \\|")
  string(APPEND errors "--filter shim/pass*: not one passing test\n")
endif()
if(errors)
  message(FATAL_ERROR "${errors}")
endif()
