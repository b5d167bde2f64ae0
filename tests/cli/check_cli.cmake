# SPDX-License-Identifier: MIT
# Runs the acme-hookd binary once and checks its exit status and output.
#
#   cmake -DBIN=... -DARGS=a|b|c [-DENV=VAR=VALUE|...] [-DEXPECT_RC=0|nonzero|N]
#         [-DSTDOUT_HAS=s1|s2] [-DSTDERR_HAS=s1|s2] [-DFORBID=s1|s2]
#         [-DEXPECT_FROM=file.ini] -P check_cli.cmake
#
# Lists are separated by '|' (a ';' would be split by add_test). EXPECT_FROM
# adds every "# expect: " line of that file to STDERR_HAS. FORBID strings
# must appear in neither stdout nor stderr.
foreach(var ARGS ENV STDOUT_HAS STDERR_HAS FORBID)
  if(DEFINED ${var})
    string(REPLACE "|" ";" ${var} "${${var}}")
  else()
    set(${var} "")
  endif()
endforeach()
if(NOT DEFINED EXPECT_RC)
  set(EXPECT_RC 0)
endif()

if(DEFINED EXPECT_FROM)
  file(STRINGS "${EXPECT_FROM}" _lines REGEX "^# expect: ")
  if(NOT _lines)
    message(FATAL_ERROR "${EXPECT_FROM} has no '# expect: ' line")
  endif()
  foreach(l ${_lines})
    string(REGEX REPLACE "^# expect: " "" l "${l}")
    list(APPEND STDERR_HAS "${l}")
  endforeach()
endif()

# Start from a clean environment for our prefix: only ENV applies.
set(_cmd ${CMAKE_COMMAND} -E env)
execute_process(COMMAND ${CMAKE_COMMAND} -E environment OUTPUT_VARIABLE _environ)
string(REGEX MATCHALL "(^|\n)ACME_HOOKD_[A-Za-z0-9_]*=" _ours "${_environ}")
foreach(m ${_ours})
  string(REGEX REPLACE "^\n|=$" "" m "${m}")
  list(APPEND _cmd --unset=${m})
endforeach()
list(APPEND _cmd ${ENV} ${BIN} ${ARGS})

execute_process(COMMAND ${_cmd}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)

set(_report "command: ${BIN} ${ARGS}\nexit status: ${rc}\n--- stdout\n${out}--- stderr\n${err}---")
if(EXPECT_RC STREQUAL "nonzero")
  if(rc STREQUAL "0" OR NOT rc MATCHES "^[0-9]+$")
    message(FATAL_ERROR "expected a non-zero exit status\n${_report}")
  endif()
elseif(NOT rc STREQUAL EXPECT_RC)
  message(FATAL_ERROR "expected exit status ${EXPECT_RC}\n${_report}")
endif()
foreach(s IN LISTS STDOUT_HAS)
  string(FIND "${out}" "${s}" pos)
  if(pos EQUAL -1)
    message(FATAL_ERROR "stdout lacks \"${s}\"\n${_report}")
  endif()
endforeach()
foreach(s IN LISTS STDERR_HAS)
  string(FIND "${err}" "${s}" pos)
  if(pos EQUAL -1)
    message(FATAL_ERROR "stderr lacks \"${s}\"\n${_report}")
  endif()
endforeach()
foreach(s IN LISTS FORBID)
  string(FIND "${out}${err}" "${s}" pos)
  if(NOT pos EQUAL -1)
    message(FATAL_ERROR "output contains \"${s}\"\n${_report}")
  endif()
endforeach()
message(STATUS "ok: ${BIN} ${ARGS} -> ${rc}")
