# Fuzz harnesses (tests/fuzz/README.md).  Included from tests/CMakeLists.txt.
#
# Always: one replay executable per harness (the harness + replay_main.c,
# no libFuzzer), and a ctest replaying its seed corpus and its crash
# regressions, so ordinary builds (gcc, MAILTAP_SANITIZE) check them.
# With clang and -DMAILTAP_FUZZ=ON: real libFuzzer binaries fuzz_<harness>,
# over a copy of the engine built with -fsanitize=fuzzer-no-link,address,undefined
# (tests/fuzz/run_fuzz.sh runs them).

set(MAILTAP_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})
set(MAILTAP_FUZZ_HARNESSES capture dissect sasl mime output)
# The IMAP tokenizer harness joins once dissect/imap_tok.h exists.
if(EXISTS ${CMAKE_SOURCE_DIR}/dissect/imap_tok.h AND EXISTS ${MAILTAP_FUZZ_DIR}/fuzz_imap_tok.c)
  list(APPEND MAILTAP_FUZZ_HARNESSES imap_tok)
endif()

foreach(h ${MAILTAP_FUZZ_HARNESSES})
  add_executable(replay_${h} ${MAILTAP_FUZZ_DIR}/fuzz_${h}.c ${MAILTAP_FUZZ_DIR}/replay_main.c)
  target_link_libraries(replay_${h} PRIVATE mailtap_engine)
  # output reads dissect's input format, and its seeds
  set(seeds ${h})
  if(h STREQUAL "output")
    set(seeds dissect)
  endif()
  add_test(NAME fuzz.replay.${h}
           COMMAND replay_${h} ${MAILTAP_FUZZ_DIR}/corpus/${seeds} ${MAILTAP_FUZZ_DIR}/regressions/${h})
  # LeakSanitizer: a leak in a replayed input fails the test, as in fuzzing.
  set_tests_properties(fuzz.replay.${h} PROPERTIES
    ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endforeach()

# the committed seeds are what make_seeds.py writes from the committed samples
if(Python3_Interpreter_FOUND)
  add_test(NAME fuzz.seeds
           COMMAND ${Python3_EXECUTABLE} ${MAILTAP_FUZZ_DIR}/make_seeds.py --check
                   --samples ${CMAKE_SOURCE_DIR}/samples --out ${MAILTAP_FUZZ_DIR}/corpus)
endif()

# ---- libFuzzer (clang only) ----
set(MAILTAP_HAVE_LIBFUZZER OFF)
if(CMAKE_C_COMPILER_ID MATCHES "Clang")
  include(CheckCSourceCompiles)
  set(CMAKE_REQUIRED_FLAGS "-fsanitize=fuzzer")
  check_c_source_compiles([=[
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return d && n ? 0 : 0; }
]=] MAILTAP_LIBFUZZER_WORKS)
  unset(CMAKE_REQUIRED_FLAGS)
  if(MAILTAP_LIBFUZZER_WORKS)
    set(MAILTAP_HAVE_LIBFUZZER ON)
  endif()
endif()

option(MAILTAP_FUZZ "Build the libFuzzer harnesses (needs clang with -fsanitize=fuzzer)" OFF)
if(MAILTAP_FUZZ AND NOT MAILTAP_HAVE_LIBFUZZER)
  message(WARNING "MAILTAP_FUZZ: ${CMAKE_C_COMPILER_ID} cannot link -fsanitize=fuzzer "
                  "(on Debian 12: CC=clang and the package libclang-rt-14-dev); "
                  "building the replay executables only")
elseif(MAILTAP_FUZZ)
  # Extra flags after the sanitizer ones, e.g. to let fuzzing go on past a
  # known finding while it is fixed:
  #   -DMAILTAP_FUZZ_EXTRA_FLAGS=-fsanitize-recover=signed-integer-overflow
  # with UBSAN_OPTIONS=suppressions=FILE (run_fuzz.sh -s FILE).
  set(MAILTAP_FUZZ_EXTRA_FLAGS "" CACHE STRING "Extra compile flags for the libFuzzer build")
  separate_arguments(MAILTAP_FUZZ_EXTRA_LIST UNIX_COMMAND "${MAILTAP_FUZZ_EXTRA_FLAGS}")
  set(MAILTAP_FUZZ_SAN -fsanitize=address,undefined -fno-sanitize-recover=undefined
                       -fno-omit-frame-pointer ${MAILTAP_FUZZ_EXTRA_LIST})
  # The engine again, with coverage instrumentation for libFuzzer.
  add_library(mailtap_engine_fuzz STATIC ${MAILTAP_ENGINE_SOURCES})
  target_include_directories(mailtap_engine_fuzz PUBLIC
    $<TARGET_PROPERTY:mailtap_engine,INTERFACE_INCLUDE_DIRECTORIES>)
  target_link_libraries(mailtap_engine_fuzz PUBLIC
    $<TARGET_PROPERTY:mailtap_engine,INTERFACE_LINK_LIBRARIES>)
  target_compile_options(mailtap_engine_fuzz PRIVATE -fsanitize=fuzzer-no-link ${MAILTAP_FUZZ_SAN})
  foreach(h ${MAILTAP_FUZZ_HARNESSES})
    add_executable(fuzz_${h} ${MAILTAP_FUZZ_DIR}/fuzz_${h}.c)
    target_compile_options(fuzz_${h} PRIVATE -fsanitize=fuzzer ${MAILTAP_FUZZ_SAN})
    target_link_options(fuzz_${h} PRIVATE -fsanitize=fuzzer ${MAILTAP_FUZZ_SAN})
    target_link_libraries(fuzz_${h} PRIVATE mailtap_engine_fuzz)
  endforeach()
endif()
