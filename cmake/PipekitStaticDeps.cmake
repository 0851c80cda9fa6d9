# PIPEKIT_STATIC_DEPS (ON by default): the programs link OpenSSL, hiredis, libsecp256k1, zlib,
# snappy, re2, fmt and the C++ runtime (-static-libstdc++ -static-libgcc) statically; glibc stays
# shared. Why: a shared library costs its relocations at every start, and Debian builds libcrypto,
# libssl, libhiredis and libsimdjson with BIND_NOW (all of them bound before main, ~21k in
# libcrypto alone): `nsq-pub --version` spent 3.5 ms, 45% of it in ld.so's symbol lookup (issue 16:
# <= 2 ms). OFF: the programs load the system's shared libraries, as a distribution wants when it
# ships OpenSSL's security fixes without rebuilding pipekit (README, "Build"; docs/architecture.md).
#
# Only the programs change. libpipekit's link interface names each dependency through
# pipekit_dep(): the static archive for a target whose PIPEKIT_STATIC_DEPS property is ON (set by
# pipekit_add_tool when the option is ON), the shared library for every other target: the unit
# tests (which also load libcurl, and with it the shared OpenSSL: one OpenSSL per process) and
# libpipekit.a's users. The choice is build-tree only ($<BUILD_INTERFACE>): the installed package
# (pipekit.pc, the CMake config and its exported link interface) is the same under both values.
#
# Left shared: libsimdjson (Debian ships no libsimdjson.a; only nsq-pub loads it, and with it
# libstdc++.so.6, so nsq-pub keeps the shared C++ runtime: one per process) and glibc.
option(PIPEKIT_STATIC_DEPS "Link the programs' libraries (OpenSSL, hiredis, C++ runtime...) statically" ON)

# pipekit_dep(<var> <shared target> <static target>): <var> names the dependency as described above.
function(pipekit_dep out shared static)
  if(PIPEKIT_STATIC_DEPS)
    set(${out} "$<BUILD_INTERFACE:$<IF:$<BOOL:$<TARGET_PROPERTY:PIPEKIT_STATIC_DEPS>>,${static},${shared}>>$<INSTALL_INTERFACE:${shared}>"
        PARENT_SCOPE)
  else()
    set(${out} "${shared}" PARENT_SCOPE)
  endif()
endfunction()

if(NOT PIPEKIT_STATIC_DEPS)
  return()
endif()

# pipekit_static_archive(<name> <file> [<dependencies>...]): pipekit_static_<name>, a system
# archive (from the -dev package beside the shared library).
function(pipekit_static_archive name file)
  find_library(PIPEKIT_STATIC_${name} NAMES ${file} REQUIRED
               DOC "${file} for PIPEKIT_STATIC_DEPS (set -DPIPEKIT_STATIC_DEPS=OFF to use the shared library)")
  add_library(pipekit_static_${name} STATIC IMPORTED)
  set_target_properties(pipekit_static_${name} PROPERTIES IMPORTED_LOCATION "${PIPEKIT_STATIC_${name}}"
                        INTERFACE_LINK_LIBRARIES "${ARGN}")
endfunction()
pipekit_static_archive(crypto libcrypto.a Threads::Threads ${CMAKE_DL_LIBS})
pipekit_static_archive(ssl libssl.a pipekit_static_crypto)
pipekit_static_archive(hiredis libhiredis.a)
pipekit_static_archive(secp256k1 libsecp256k1.a)
pipekit_static_archive(zlib libz.a)
pipekit_static_archive(snappy libsnappy.a)
pipekit_static_archive(re2 libre2.a Threads::Threads)

# fmt: Debian ships no libfmt.a; lib/static_deps/fmt.cpp compiles fmt's own implementation
# (fmt/format-inl.h) into the programs instead.
add_library(pipekit_static_fmt STATIC "${PROJECT_SOURCE_DIR}/lib/static_deps/fmt.cpp")
target_include_directories(pipekit_static_fmt SYSTEM PUBLIC $<TARGET_PROPERTY:fmt::fmt,INTERFACE_INCLUDE_DIRECTORIES>)
target_compile_features(pipekit_static_fmt PUBLIC cxx_std_20)
