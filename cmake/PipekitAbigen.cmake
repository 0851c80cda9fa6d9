# pipekit_abigen(TARGET <target> ABI <file> TYPE <Name> NAMESPACE <ns>
#                [BIN <file>] [OUTPUT_DIR <dir>] [HEADER <file name>] [OPTIONS <abigen-cpp flags>...])
#
# Generates typed C++ bindings for one contract with abigen-cpp(1) at build time and adds them to
# <target>:
#   abigen-cpp --abi <ABI> [--bin <BIN>] --type <Name> --namespace <ns> --out <OUTPUT_DIR>/<HEADER> <OPTIONS>
# The header is regenerated when the ABI, the bytecode or abigen-cpp itself changes. It is added to
# <target>'s sources and <OUTPUT_DIR> to its include directories, so a source says
# `#include "calldemo.hpp"`. <target> still links the library itself:
#   find_package(pipekit CONFIG REQUIRED)
#   add_executable(app main.cpp)
#   pipekit_abigen(TARGET app ABI CallDemo.abi BIN CallDemo.bin TYPE CallDemo NAMESPACE calldemo)
#   target_link_libraries(app PRIVATE pipekit::pipekit)
#
# ABI and BIN: solc's --abi and --bin output (relative paths are from the calling directory's
#   sources); BIN gives the class a static deploy().
# OUTPUT_DIR: default ${CMAKE_CURRENT_BINARY_DIR}/pipekit_abigen.
# HEADER: default the lower-cased type and .hpp (CallDemo: calldemo.hpp).
# OPTIONS: more abigen-cpp flags, e.g. --alias or --link name=address.
# Call it in the directory that creates <target> (a custom command's output belongs to its
# directory). The generator is the imported pipekit::abigen-cpp that pipekitConfig.cmake sets next
# to the installed package, or, inside pipekit's own build tree, the abigen-cpp target.
function(pipekit_abigen)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "TARGET;ABI;BIN;TYPE;NAMESPACE;OUTPUT_DIR;HEADER" "OPTIONS")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "pipekit_abigen: unknown arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  foreach(required TARGET ABI TYPE NAMESPACE)
    if(NOT arg_${required})
      message(FATAL_ERROR "pipekit_abigen: ${required} is required")
    endif()
  endforeach()
  if(NOT TARGET ${arg_TARGET})
    message(FATAL_ERROR "pipekit_abigen: ${arg_TARGET} is not a target (create it before calling pipekit_abigen)")
  endif()
  if(TARGET abigen-cpp)
    set(generator abigen-cpp)  # pipekit's own build tree
  elseif(TARGET pipekit::abigen-cpp)
    set(generator pipekit::abigen-cpp)
  else()
    message(FATAL_ERROR "pipekit_abigen: no abigen-cpp program (find_package(pipekit) defines pipekit::abigen-cpp)")
  endif()

  get_filename_component(abi "${arg_ABI}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  set(inputs "${abi}")
  set(bin_flags "")
  if(arg_BIN)
    get_filename_component(bin "${arg_BIN}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND inputs "${bin}")
    set(bin_flags --bin "${bin}")
  endif()
  set(out_dir "${CMAKE_CURRENT_BINARY_DIR}/pipekit_abigen")
  if(arg_OUTPUT_DIR)
    get_filename_component(out_dir "${arg_OUTPUT_DIR}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")
  endif()
  string(TOLOWER "${arg_TYPE}.hpp" header_name)
  if(arg_HEADER)
    set(header_name "${arg_HEADER}")
  endif()
  set(header "${out_dir}/${header_name}")

  add_custom_command(OUTPUT "${header}"
    COMMAND "${CMAKE_COMMAND}" -E make_directory "${out_dir}"
    COMMAND ${generator} --abi "${abi}" ${bin_flags} --type "${arg_TYPE}" --namespace "${arg_NAMESPACE}"
            --out "${header}" ${arg_OPTIONS}
    DEPENDS ${inputs} ${generator}
    COMMENT "abigen-cpp ${arg_TYPE} -> ${header}"
    VERBATIM)
  target_sources(${arg_TARGET} PRIVATE "${header}")
  target_include_directories(${arg_TARGET} PRIVATE "${out_dir}")
endfunction()
