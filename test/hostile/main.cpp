// The hostile-case suite. `--long` (taken out before Catch2 sees the arguments) runs every storm
// at the catalogue's full size.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

namespace hostile {
namespace {
bool g_long = false;
}
bool long_run() { return g_long; }
}  // namespace hostile

int main(int argc, char** argv) {
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        if (std::strcmp(argv[i], "--long") == 0)
            hostile::g_long = true;
        else
            args.push_back(argv[i]);
    }
    return Catch::Session().run(static_cast<int>(args.size()), args.data());
}
