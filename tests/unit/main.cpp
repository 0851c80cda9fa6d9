// The one Catch2 main for pipekit_unit.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
