# Finds every third-party dependency. Each comes from a Debian package; a missing one stops configuration with
# the package name and the command that installs it (tools/install-deps.sh installs them all).

function(mephisto_missing what debian_package)
  message(FATAL_ERROR
    "Mephisto: ${what} was not found.\n"
    "  It comes from the Debian package '${debian_package}'.\n"
    "  Install it with:   sudo apt-get install -y ${debian_package}\n"
    "  or install everything Mephisto needs with:   tools/install-deps.sh")
endfunction()

# find_package(... CONFIG QUIET) wrapper: `name` is the CMake package, `debian_package` what provides it.
macro(mephisto_find_config name debian_package)
  find_package(${name} CONFIG QUIET ${ARGN})
  if(NOT ${name}_FOUND)
    mephisto_missing("CMake package ${name}" "${debian_package}")
  endif()
endmacro()

find_package(PkgConfig QUIET)
if(NOT PKG_CONFIG_FOUND)
  mephisto_missing("pkg-config" "pkg-config")
endif()

pkg_check_modules(RDKAFKA QUIET IMPORTED_TARGET rdkafka)
if(NOT RDKAFKA_FOUND)
  mephisto_missing("librdkafka (pkg-config module rdkafka)" "librdkafka-dev")
endif()

find_package(Boost 1.74 QUIET COMPONENTS context)
if(NOT Boost_FOUND)
  mephisto_missing("Boost.Context" "libboost-context-dev")
endif()

mephisto_find_config(RocksDB librocksdb-dev)

find_package(Protobuf QUIET)
if(NOT Protobuf_FOUND OR NOT Protobuf_PROTOC_EXECUTABLE)
  mephisto_missing("Protobuf (libprotobuf and protoc)" "libprotobuf-dev protobuf-compiler")
endif()

if(MEPHISTO_BUILD_TESTS)
  find_package(GTest QUIET)
  if(NOT GTest_FOUND)
    mephisto_missing("GoogleTest" "libgtest-dev")
  endif()
  find_path(MEPHISTO_GMOCK_INCLUDE gmock/gmock.h)
  if(NOT MEPHISTO_GMOCK_INCLUDE)
    mephisto_missing("GoogleMock" "libgmock-dev")
  endif()
  mephisto_find_config(rapidcheck librapidcheck-dev)
endif()
mephisto_find_config(CLI11 libcli11-dev)
mephisto_find_config(fmt libfmt-dev)
mephisto_find_config(spdlog libspdlog-dev)
mephisto_find_config(nlohmann_json nlohmann-json3-dev)
