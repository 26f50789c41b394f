# Short fuzzing runs as ctest tests of the main (gcc) build. The fuzz_*
# binaries come from a separate clang tree (SFTCA_FUZZ=ON) whose path is
# given as SFTCA_FUZZ_BUILD_DIR; without it no fuzz test is registered.
# Included from tests/CMakeLists.txt:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/fuzz/ctest.cmake)
# Select them with `ctest -L fuzz`; a target whose binary is missing is
# reported skipped (run-ci.sh exits 77).

set(SFTCA_FUZZ_BUILD_DIR "" CACHE PATH
    "clang build tree configured with -DSFTCA_FUZZ=ON; empty = no fuzz tests")
set(SFTCA_FUZZ_SECONDS 45 CACHE STRING "seconds each fuzz_<target> test fuzzes")

if(SFTCA_FUZZ_BUILD_DIR)
  # Start-up (the token for fuzz_handlers), the corpus replay and the final
  # report come on top of the fuzzing time.
  math(EXPR _sftca_fuzz_timeout "${SFTCA_FUZZ_SECONDS} + 180")
  foreach(_t config devices failedpush csr handlers logscan certscan wire devparse audit
          anchor clientid devout)
    add_test(NAME fuzz_${_t}
      COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run-ci.sh ${SFTCA_FUZZ_BUILD_DIR} ${_t}
              ${SFTCA_FUZZ_SECONDS})
    set_tests_properties(fuzz_${_t} PROPERTIES LABELS fuzz SKIP_RETURN_CODE 77
      TIMEOUT ${_sftca_fuzz_timeout})
  endforeach()
endif()
