// Throws and catches a std::runtime_error n times (default 100000). The message is longer than
// the small-string buffer, so every throw allocates the exception and its string. Linked with
// -Wl,--as-needed: unwinding must keep working whichever library ends up providing _Unwind_*.
// Usage: throw_loop [n]
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace {

[[gnu::noinline]] void thrower(int i) {
    throw std::runtime_error("throw_loop: iteration number " + std::to_string(i) +
                             " of the exception loop");
}

[[gnu::noinline]] void middle(int i) {
    std::string local(64 + i % 64, 'x');  // destroyed during unwinding
    thrower(i + static_cast<int>(local.size()) * 0);
}

}  // namespace

int main(int argc, char** argv) {
    const int n = argc > 1 ? std::atoi(argv[1]) : 100000;
    long caught = 0;
    unsigned long checksum = 0;
    for (int i = 0; i < n; ++i) {
        try {
            middle(i);
        } catch (const std::runtime_error& e) {
            ++caught;
            checksum = checksum * 31 + std::string(e.what()).size();
        }
    }
    std::printf("caught %ld exceptions, checksum %lu\n", caught, checksum);
    return caught == n ? 0 : 1;
}
