# Mail conformance against Suricata and Zeek expectations (tests/conformance/MAIL.md).
# Include from tests/CMakeTests.cmake inside its Python3_Interpreter_FOUND block,
# or copy the add_test there.
add_test(NAME conformance.mail
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/conformance/mail_check.py
                 --mailtap $<TARGET_FILE:mailtap> --corpus ${CMAKE_SOURCE_DIR}/../shared/corpus)
set_tests_properties(conformance.mail PROPERTIES TIMEOUT 600)
