// fmt's compiled part, for programs linked with PIPEKIT_STATIC_DEPS (cmake/PipekitStaticDeps.cmake):
// Debian ships fmt as libfmt.so only, which would load libstdc++.so.6 beside the programs' static
// C++ runtime. format-inl.h defines fmt's non-template functions (not inline unless
// FMT_HEADER_ONLY); the two locale templates below are the ones pipekit's code uses that no header
// instantiates. A program that uses another fmt template not instantiated in its own code fails to
// link here with an undefined fmt symbol: add it below.
#include <fmt/format-inl.h>

namespace fmt::detail {
template auto thousands_sep_impl<char>(locale_ref) -> thousands_sep_result<char>;
template auto decimal_point_impl<char>(locale_ref) -> char;
}  // namespace fmt::detail
