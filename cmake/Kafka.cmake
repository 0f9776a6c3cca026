# Tests against a real Apache Kafka broker (label `kafka`).
#
# One broker per build tree serves every such test: the fixture test `kafka_broker_start` starts it empty
# (tools/kafka/broker start --fresh) in ${CMAKE_BINARY_DIR}/kafka and `kafka_broker_stop` stops it after the last
# test that needs it. CTest adds both automatically to any run that selects a kafka test, e.g.
#
#   ctest --test-dir build -L kafka --output-on-failure
#
# Tests share the broker and may run in parallel, so each must use its own topic names, group ids and
# transactional ids (a random suffix is enough). The first start downloads the broker's jars with Maven.

cmake_path(SET MEPHISTO_KAFKA_TOOLS NORMALIZE "${CMAKE_CURRENT_LIST_DIR}/../tools/kafka")
set(MEPHISTO_KAFKA_DIR "${CMAKE_BINARY_DIR}/kafka")

# Adds the fixture's start and stop tests once, in the directory of the first kafka test (where testing is
# enabled for certain, whatever the order of include() and enable_testing() at the top level).
function(_mephisto_add_kafka_fixture)
  get_property(added GLOBAL PROPERTY MEPHISTO_KAFKA_FIXTURE_ADDED)
  if(added)
    return()
  endif()
  set_property(GLOBAL PROPERTY MEPHISTO_KAFKA_FIXTURE_ADDED TRUE)

  add_test(NAME kafka_broker_start
    COMMAND "${MEPHISTO_KAFKA_TOOLS}/broker" start --fresh --dir "${MEPHISTO_KAFKA_DIR}")
  # 300 s: the first start resolves the broker's jars from Maven Central.
  set_tests_properties(kafka_broker_start PROPERTIES
    FIXTURES_SETUP kafka_broker LABELS kafka TIMEOUT 300)

  add_test(NAME kafka_broker_stop
    COMMAND "${MEPHISTO_KAFKA_TOOLS}/broker" stop --dir "${MEPHISTO_KAFKA_DIR}")
  set_tests_properties(kafka_broker_stop PROPERTIES
    FIXTURES_CLEANUP kafka_broker LABELS kafka TIMEOUT 60)
endfunction()

# mephisto_add_kafka_test(NAME <name> COMMAND <command> [<arg>...] [TIMEOUT <seconds>])
#
# Adds a CTest test that runs <command> with MEPHISTO_KAFKA_BOOTSTRAP set to the fixture broker's address. As with
# add_test, a <command> that names an executable target runs that target's binary. TIMEOUT defaults to 120 s.
function(mephisto_add_kafka_test)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "NAME;TIMEOUT" "COMMAND")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "mephisto_add_kafka_test: unexpected arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_NAME OR NOT arg_COMMAND)
    message(FATAL_ERROR "mephisto_add_kafka_test: NAME and COMMAND are required")
  endif()
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT 120)
  endif()

  _mephisto_add_kafka_fixture()

  # add_test maps a target name to its binary only in first position; here the wrapper is first.
  list(POP_FRONT arg_COMMAND program)
  if(TARGET "${program}")
    set(program "$<TARGET_FILE:${program}>")
  endif()

  add_test(NAME ${arg_NAME}
    COMMAND "${MEPHISTO_KAFKA_TOOLS}/with-broker" --dir "${MEPHISTO_KAFKA_DIR}" -- "${program}" ${arg_COMMAND})
  set_tests_properties(${arg_NAME} PROPERTIES
    FIXTURES_REQUIRED kafka_broker LABELS kafka TIMEOUT ${arg_TIMEOUT})
endfunction()
