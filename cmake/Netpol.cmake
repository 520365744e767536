# Helpers that give every netpol target the same warnings and layout.
#   netpol_library(NAME api SRCS a.cpp b.cpp DEPS netpol::base)
#     -> static library netpol_api, alias netpol::api, include root src/.
#   netpol_test(NAME api_decode_test SRCS decode_test.cpp DEPS netpol::api LABELS fast)
# Test labels, one per test: fast (unit, scenario, golden), deep (long differential runs)
# and e2e (root, network namespaces, whole labs). `make test` runs fast and deep in the
# sanitizer tree (deep shortened there) and deep and e2e in the release tree.

set(NETPOL_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
    -Wold-style-cast -Wcast-align -Woverloaded-virtual -Wconversion -Wsign-conversion
    -Wimplicit-fallthrough)
if(NETPOL_WERROR)
  list(APPEND NETPOL_WARNINGS -Werror)
endif()

function(netpol_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(netpol_${ARG_NAME} STATIC ${ARG_SRCS})
  add_library(netpol::${ARG_NAME} ALIAS netpol_${ARG_NAME})
  target_include_directories(netpol_${ARG_NAME} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(netpol_${ARG_NAME} PRIVATE ${NETPOL_WARNINGS})
  target_link_libraries(netpol_${ARG_NAME} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
endfunction()

function(netpol_test)
  # SERIAL: the test must not run beside others (whole labs, timing-sensitive).
  # COST: seconds the test is expected to take. ctest -j starts the costliest first when
  # it has no timings of its own yet (a clean clone, CI), so a long test runs beside the
  # short ones instead of after them.
  cmake_parse_arguments(ARG "SERIAL" "NAME;COST" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_compile_options(${ARG_NAME} PRIVATE ${NETPOL_WARNINGS})
  target_include_directories(${ARG_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  set(serial FALSE)
  if(ARG_SERIAL)
    set(serial TRUE)
  endif()
  if("fast" IN_LIST ARG_LABELS OR "deep" IN_LIST ARG_LABELS)
    set_property(GLOBAL APPEND PROPERTY NETPOL_FAST_TESTS ${ARG_NAME})
  endif()
  if("e2e" IN_LIST ARG_LABELS OR "deep" IN_LIST ARG_LABELS)
    set_property(GLOBAL APPEND PROPERTY NETPOL_RELEASE_TESTS ${ARG_NAME})
  endif()
  # One label per test: CMake 3.25's gtest_discover_tests writes a list-valued property
  # unquoted, so every label after the first would become a property name of its own.
  list(LENGTH ARG_LABELS label_count)
  if(NOT label_count EQUAL 1)
    message(FATAL_ERROR "netpol_test(${ARG_NAME}): exactly one label (fast, deep or e2e)")
  endif()
  if(NOT ARG_COST)
    set(ARG_COST 0)
  endif()
  gtest_discover_tests(${ARG_NAME} DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS "${ARG_LABELS}" ENVIRONMENT "NETPOL_SOURCE_DIR=${PROJECT_SOURCE_DIR}" RUN_SERIAL ${serial}
      COST ${ARG_COST})
endfunction()
