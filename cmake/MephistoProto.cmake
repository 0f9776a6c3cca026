# mephisto_add_proto(<target> PROTOS <file.proto>... [IMPORT_DIRS <dir>...])
#
# Compiles a user's own protobuf models into a static library <target> (C++ from protoc), for use as the key or
# value types of topics and tables. Paths stay as written: with PROTOS models/payments.proto the generated header
# is included as "models/payments.pb.h", and a .proto imports its neighbours as "models/other.proto" (protoc runs
# with -I at the calling CMakeLists.txt's folder; IMPORT_DIRS add more). Link <target> next to Mephisto::mephisto.
# Generated code is protoc's, so no warnings-as-errors apply to it.
include_guard(GLOBAL)

function(mephisto_add_proto target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "PROTOS;IMPORT_DIRS")
  if(NOT arg_PROTOS)
    message(FATAL_ERROR "mephisto_add_proto(${target}): name the .proto files after PROTOS")
  endif()
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "mephisto_add_proto(${target}): unexpected arguments ${arg_UNPARSED_ARGUMENTS}; "
                        "expected PROTOS <file.proto>... [IMPORT_DIRS <dir>...]")
  endif()
  if(NOT COMMAND protobuf_generate)
    find_package(Protobuf REQUIRED)
  endif()
  set(_out ${CMAKE_CURRENT_BINARY_DIR}/${target}_generated)
  file(MAKE_DIRECTORY ${_out})
  add_library(${target} STATIC ${arg_PROTOS})
  protobuf_generate(TARGET ${target} LANGUAGE cpp PROTOC_OUT_DIR ${_out} IMPORT_DIRS ${arg_IMPORT_DIRS})
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${_out}>)
  target_link_libraries(${target} PUBLIC protobuf::libprotobuf)
  target_compile_features(${target} PUBLIC cxx_std_20)
endfunction()
