// libFuzzer target for serve/handler.h (scripts/test builds it with clang and runs its corpus,
// test/fuzz/corpus/handler, with a short budget). The input is a request: the method up to the
// first newline, the target up to the second, the rest the body; a first byte of '!' instead
// asks for a delta of the rest of the input (as a profile) against a fixed profile.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "serve/handler.h"
#include "serve/profile_delta.h"
#include "test/unit/serve_fake_backend.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    if (!input.empty() && input[0] == '!') {
        static const std::string fixed = fake::make_profile(true, {{1, 2, 3, 4}, {5, 6, 7, 8}});
        std::string out, error;
        gprof::serve::profile_delta(fixed, input.substr(1), 1, 1, &out, &error);
        gprof::serve::profile_delta(input.substr(1), fixed, 1, 1, &out, &error);
        return 0;
    }
    size_t first = input.find('\n');
    std::string_view method = input.substr(0, first);
    std::string_view rest = first == std::string_view::npos ? std::string_view{} : input.substr(first + 1);
    size_t second = rest.find('\n');
    std::string_view target = rest.substr(0, second);
    std::string_view body = second == std::string_view::npos ? std::string_view{} : rest.substr(second + 1);
    fake::Backend backend;
    backend.cpu_busy = !method.empty() && method[0] == 'B';
    gprof::serve::Request request{method, target, body, body.size() > 100};
    gprof::serve::Response response = gprof::serve::handle(request, backend);
    // The answer always has a status Go could give, and an error always says it is one.
    if (response.status < 200 || response.status > 599) __builtin_trap();
    if (response.status >= 400 && response.status != 404 && response.headers.empty())
        __builtin_trap();
    return 0;
}
