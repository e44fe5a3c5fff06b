# Capture-driven tests written in Python (standard library only); included by
# tests/CMakeLists.txt.  See tests/reassembly, tests/linklayer and
# tests/conformance for what each runs.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  add_test(NAME tools.pcaptool_selftest
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/tools/pcaptool.py selftest --no-tcpflow)
  add_test(NAME reassembly
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/reassembly/test_reassembly.py
                   --mailtap $<TARGET_FILE:mailtap> --samples ${CMAKE_SOURCE_DIR}/samples)
  add_test(NAME linklayer
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/linklayer/test_linklayer.py
                   --mailtap $<TARGET_FILE:mailtap> --samples ${CMAKE_SOURCE_DIR}/samples)
  add_test(NAME conformance.tcpflow
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/conformance/tcpflow_check.py
                   --mailtap $<TARGET_FILE:mailtap> --corpus ${CMAKE_SOURCE_DIR}/../shared/corpus)
  set_tests_properties(reassembly linklayer conformance.tcpflow PROPERTIES TIMEOUT 900)
else()
  message(STATUS "Python 3 not found: capture-driven tests disabled")
endif()
