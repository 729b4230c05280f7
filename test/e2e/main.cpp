// The e2e suite: real programs run with and without LD_PRELOAD=libgprof.so, in both allocator
// modes, must behave identically. Paths come from test/e2e/meson.build.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
