# pipekit_add_tool(<name> [SHARED_LIBSTDCXX] SOURCES <files...>)
# Adds one program: links the library, builds its man page from man/<name>.1.scd with scdoc,
# and installs binary, man page and the committed bash/zsh/fish completions. With
# PIPEKIT_STATIC_DEPS (cmake/PipekitStaticDeps.cmake) the program links its libraries and the C++
# runtime statically; SHARED_LIBSTDCXX keeps the shared C++ runtime for a program that loads a C++
# library only shipped shared (one runtime per process).
function(pipekit_add_tool name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "SHARED_LIBSTDCXX" "" "SOURCES")
  add_executable(${name} ${arg_SOURCES})
  target_link_libraries(${name} PRIVATE pipekit::pipekit pipekit_options CLI11::CLI11)
  # Only the shared libraries the program's own parts use (Debian's gcc does this by default; other
  # toolchains do not): each one loaded costs start-up time (tests/cli/linkage_test.sh).
  target_link_options(${name} PRIVATE LINKER:--as-needed)
  if(PIPEKIT_STATIC_DEPS)
    set_target_properties(${name} PROPERTIES PIPEKIT_STATIC_DEPS ON)
    if(NOT arg_SHARED_LIBSTDCXX)
      target_link_options(${name} PRIVATE -static-libstdc++ -static-libgcc)
    endif()
  endif()
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/bin")
  install(TARGETS ${name} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

  set(scd "${PROJECT_SOURCE_DIR}/man/${name}.1.scd")
  set(roff "${PROJECT_BINARY_DIR}/man/${name}.1")
  add_custom_command(OUTPUT "${roff}"
    COMMAND ${CMAKE_COMMAND} -E make_directory "${PROJECT_BINARY_DIR}/man"
    COMMAND sh -c "'${SCDOC_PROGRAM}' < '${scd}' > '${roff}'"
    DEPENDS "${scd}" VERBATIM
    COMMENT "scdoc ${name}.1")
  add_custom_target(${name}_man ALL DEPENDS "${roff}")
  install(FILES "${roff}" DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

  set(comp "${PROJECT_SOURCE_DIR}/completions")
  install(FILES "${comp}/bash/${name}" DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
  install(FILES "${comp}/zsh/_${name}" DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/site-functions)
  install(FILES "${comp}/fish/${name}.fish" DESTINATION ${CMAKE_INSTALL_DATADIR}/fish/vendor_completions.d)
endfunction()
