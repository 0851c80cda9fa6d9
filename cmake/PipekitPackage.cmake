# Installs the library, its headers and a CMake package config so that
# find_package(pipekit) + target_link_libraries(app PRIVATE pipekit::pipekit) works.
include(CMakePackageConfigHelpers)

install(TARGETS pipekit pipekit_options EXPORT pipekitTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# Public headers only: *_internal.hpp belong to their area (docs/architecture.md).
install(DIRECTORY "${PROJECT_SOURCE_DIR}/lib/pipekit" DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.hpp" PATTERN "*_internal.hpp" EXCLUDE)
install(EXPORT pipekitTargets NAMESPACE pipekit:: FILE pipekitTargets.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/pipekit)
configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/pipekitConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/pipekitConfig.cmake"
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/pipekit)
write_basic_package_version_file("${PROJECT_BINARY_DIR}/pipekitConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/pipekitConfig.cmake" "${PROJECT_BINARY_DIR}/pipekitConfigVersion.cmake"
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/pipekit)
