# SPDX-License-Identifier: MIT
# The layer rule of docs/architecture.md, checked on the built library:
#   cmake -DLAYER=logic -DSOURCES=a.c|b.c -DLINKS=x|y -DLIB=libhookd_logic.a
#         [-DFORBIDDEN=config.h|pool.h] [-DINCLUDE_DIRS=dir] -DNM=nm
#         -P check_layer.cmake
# Fails when a source of the layer, or a worker header it includes
# (transitively), includes a librdkafka header or one of the FORBIDDEN
# headers (the headers of the layers after it: for logic and host the kafka
# layer's, config.h among them); when the layer's link libraries name
# librdkafka; or when the library refers to an rd_kafka_ symbol. A quoted
# include is looked up beside the including file, then in INCLUDE_DIRS.
cmake_minimum_required(VERSION 3.25)
foreach(v LAYER SOURCES LIB NM)
  if(NOT DEFINED ${v} OR "${${v}}" STREQUAL "")
    message(FATAL_ERROR "check_layer.cmake: -D${v}= is required")
  endif()
endforeach()

string(REPLACE "|" ";" queue "${SOURCES}")
string(REPLACE "|" ";" forbidden "${FORBIDDEN}")
string(REPLACE "|" ";" incdirs "${INCLUDE_DIRS}")
set(seen "")
set(bad "")
while(queue)
  list(POP_FRONT queue f)
  if(f IN_LIST seen)
    continue()
  endif()
  list(APPEND seen "${f}")
  file(STRINGS "${f}" lines REGEX "^[ \t]*#[ \t]*include")
  get_filename_component(dir "${f}" DIRECTORY)
  foreach(l IN LISTS lines)
    if(l MATCHES "rdkafka")
      list(APPEND bad "${f}: ${l}")
    elseif(l MATCHES "#[ \t]*include[ \t]*\"([^\"]+)\"")
      set(inc "${CMAKE_MATCH_1}")
      get_filename_component(name "${inc}" NAME)
      if(name IN_LIST forbidden)
        list(APPEND bad "${f}: ${l} (a header of a later layer)")
      endif()
      foreach(d IN LISTS dir incdirs)
        if(EXISTS "${d}/${inc}")
          list(APPEND queue "${d}/${inc}")
          break()
        endif()
      endforeach()
    endif()
  endforeach()
endwhile()
list(LENGTH seen nfiles)

if(LINKS MATCHES "[Rr][Dd][Kk][Aa][Ff][Kk][Aa]")
  list(APPEND bad "link libraries of hookd_${LAYER}: ${LINKS}")
endif()

execute_process(COMMAND "${NM}" -u "${LIB}" OUTPUT_VARIABLE undef RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} -u ${LIB} failed (${rc})")
endif()
string(REGEX MATCHALL "rd_kafka_[A-Za-z0-9_]+" syms "${undef}")
if(syms)
  list(REMOVE_DUPLICATES syms)
  list(APPEND bad "${LIB} refers to librdkafka: ${syms}")
endif()

if(bad)
  list(JOIN bad "\n  " text)
  message(FATAL_ERROR "the ${LAYER} layer breaks the layer rule:\n  ${text}")
endif()
message(STATUS "${LAYER} layer: ${nfiles} files, no librdkafka include, link or symbol, "
               "no header of a later layer")
