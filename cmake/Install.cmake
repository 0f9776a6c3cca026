# `cmake --install build --prefix P` installs Mephisto as a library a user's project finds with
#   find_package(Mephisto CONFIG REQUIRED)        # P in CMAKE_PREFIX_PATH
#   target_link_libraries(my_app PRIVATE Mephisto::mephisto)
#   mephisto_add_proto(my_models PROTOS models/payments.proto)   # the user's own models
# Layout under P:
#   include/mephisto/*.h                    the facade a user includes (<mephisto/mephisto.h>)
#   include/mephisto/{runtime,main}/...     the headers the facade pulls in (from the repository root)
#   include/mephisto/models/*.pb.h|.proto   Mephisto's generated models and their schemas
#   lib/libmephisto_*.a                     the libraries (static)
#   lib/cmake/Mephisto/                     the package: targets, version, dependencies, mephisto_add_proto
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Mephisto::mephisto: the one target a user links — the App runtime, the Kafka binding, the simulator, replay and
# the command line (mephisto::main).
# (Named mephisto_library here: build/bin/mephisto is the target "mephisto".)
add_library(mephisto_library INTERFACE)
set_target_properties(mephisto_library PROPERTIES EXPORT_NAME mephisto)
target_link_libraries(mephisto_library INTERFACE mephisto_main mephisto_app mephisto_models mephisto_testing)
target_compile_features(mephisto_library INTERFACE cxx_std_20)
add_library(Mephisto::mephisto ALIAS mephisto_library)

set(_mephisto_libraries
  mephisto_library mephisto_seam mephisto_fiber mephisto_loop mephisto_kafka mephisto_offsets mephisto_codec mephisto_app
  mephisto_cli mephisto_store mephisto_trace mephisto_models mephisto_sim mephisto_sim_app mephisto_scenario
  mephisto_replay mephisto_seed_pool mephisto_main mephisto_testing)
install(TARGETS ${_mephisto_libraries} EXPORT MephistoTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})

# Headers: the facade, and every header it reaches (the public App API and the seam types it names).
install(DIRECTORY include/mephisto DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
foreach(_dir runtime/app runtime/codec runtime/offsets runtime/seam runtime/store)
  install(DIRECTORY ${_dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/mephisto/${_dir} FILES_MATCHING PATTERN "*.h")
endforeach()
install(FILES main/main.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/mephisto/main)
install(FILES sim/testing/test_driver.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/mephisto/sim/testing)
install(DIRECTORY ${MEPHISTO_MODELS_GENERATED_DIR}/models DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/mephisto
  FILES_MATCHING PATTERN "*.pb.h")
install(FILES models/examples.proto models/scenario.proto models/trace.proto
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/mephisto/models)

set(_mephisto_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/Mephisto)
install(EXPORT MephistoTargets NAMESPACE Mephisto:: DESTINATION ${_mephisto_cmake_dir})
configure_package_config_file(cmake/MephistoConfig.cmake.in ${PROJECT_BINARY_DIR}/MephistoConfig.cmake
  INSTALL_DESTINATION ${_mephisto_cmake_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/MephistoConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/MephistoConfig.cmake ${PROJECT_BINARY_DIR}/MephistoConfigVersion.cmake
  cmake/MephistoProto.cmake DESTINATION ${_mephisto_cmake_dir})
