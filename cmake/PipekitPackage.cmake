# Installs the library, its headers and a CMake package config so that
# find_package(pipekit) + target_link_libraries(app PRIVATE pipekit::pipekit) works, the CMake
# function pipekit_abigen() (PipekitAbigen.cmake, which the config includes), and a pkg-config file
# for other build systems.
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
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/pipekit
  PATH_VARS CMAKE_INSTALL_BINDIR)
write_basic_package_version_file("${PROJECT_BINARY_DIR}/pipekitConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/pipekitConfig.cmake" "${PROJECT_BINARY_DIR}/pipekitConfigVersion.cmake"
              "${PROJECT_SOURCE_DIR}/cmake/PipekitAbigen.cmake"
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/pipekit)

# pipekit.pc: its prefix is relative to the file's own directory (${pcfiledir}), so it holds for
# any --prefix given at install time and for a DESTDIR tree. Absolute install dirs (a
# -DCMAKE_INSTALL_LIBDIR=/usr/lib64) make it absolute, fixed at configure time.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}"
   OR IS_ABSOLUTE "${CMAKE_INSTALL_BINDIR}")
  set(PIPEKIT_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(PIPEKIT_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(PIPEKIT_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
  set(PIPEKIT_PC_BINDIR "${CMAKE_INSTALL_FULL_BINDIR}")
else()
  file(RELATIVE_PATH up "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
  string(REGEX REPLACE "/$" "" up "${up}")
  set(PIPEKIT_PC_PREFIX "\${pcfiledir}/${up}")
  set(PIPEKIT_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(PIPEKIT_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
  set(PIPEKIT_PC_BINDIR "\${prefix}/${CMAKE_INSTALL_BINDIR}")
endif()
# A sanitized libpipekit.a needs the sanitizers' runtimes in whatever links it.
set(PIPEKIT_PC_LINK_FLAGS "")
if(PIPEKIT_SANITIZE)
  set(PIPEKIT_PC_LINK_FLAGS " -fsanitize=address,undefined")
endif()
configure_file("${PROJECT_SOURCE_DIR}/cmake/pipekit.pc.in" "${PROJECT_BINARY_DIR}/pipekit.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/pipekit.pc" DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
