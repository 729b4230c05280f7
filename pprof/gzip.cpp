#include "pprof/gzip.h"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <new>

#include "base/stop_scope.h"

namespace gprof::pprof {
namespace {

// Level 1, as Go's runtime/pprof writes its profiles (gzip.BestSpeed): the dump runs inside the
// program, and level 6 makes a large dump markedly slower for a file only about 12% smaller.
constexpr int kLevel = 1;
// Adding 16 to windowBits asks zlib for a gzip header and trailer rather than a zlib one.
constexpr int kGzip = 16;
constexpr int kMaxWindowBits = 15;
constexpr int kMaxMemoryLevel = 8;

// A window as large as the input serves as well as the largest (no match reaches before the
// input's start), and zlib's state shrinks with it and the hash table sized to it: 256 KiB for
// the largest window and memory level, fresh pages (a page fault each) of a dump that may run at
// exit, where most profiles are a few KiB.
int window_bits_for(size_t size) {
    int bits = 9;  // zlib's smallest window
    while (bits < kMaxWindowBits && (size_t{1} << bits) < size) ++bits;
    return bits;
}

// Frees the stream whichever way gzip_compress leaves.
struct DeflateStream {
    z_stream stream{};
    bool started = false;
    ~DeflateStream() {
        if (started) deflateEnd(&stream);
    }
};

bool compress(std::string_view input, std::string* out, std::string* error) {
    DeflateStream deflater;
    z_stream& stream = deflater.stream;
    int window_bits = window_bits_for(input.size());
    // The hash table follows the window (memory level 8 for the largest).
    int memory_level = std::max(1, kMaxMemoryLevel - (kMaxWindowBits - window_bits));
    int status = deflateInit2(&stream, kLevel, Z_DEFLATED, window_bits + kGzip, memory_level,
                              Z_DEFAULT_STRATEGY);
    if (status != Z_OK) {
        *error = "cannot start gzip compression (zlib error " + std::to_string(status) + ")";
        return false;
    }
    deflater.started = true;

    // Output goes through a small buffer and is appended as it comes: out's room is reserved for
    // the worst case (deflateBound) but only written as far as the output reaches, where resize
    // would have written every byte of it (fresh pages, a fault each, for room never used).
    const size_t original_size = out->size();
    out->reserve(original_size + deflateBound(&stream, static_cast<uLong>(std::min<size_t>(
                                                           input.size(), UINT_MAX))));
    // On the heap: an at-exit dump runs on whichever thread called exit(), whose stack may be
    // small.
    constexpr size_t kBufferSize = 16384;
    std::unique_ptr<char[]> buffer(new char[kBufferSize]);
    size_t consumed = 0;
    for (;;) {
        if (base::StopScope::stopped()) {
            out->resize(original_size);
            *error = "stopped";
            return false;
        }
        // zlib counts in uInt (32 bits): feed in pieces that fit.
        size_t input_left = input.size() - consumed;
        uInt input_piece = input_left > UINT_MAX ? UINT_MAX : static_cast<uInt>(input_left);
        stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data() + consumed));
        stream.avail_in = input_piece;
        stream.next_out = reinterpret_cast<Bytef*>(buffer.get());
        stream.avail_out = kBufferSize;
        status = deflate(&stream, input_piece == input_left ? Z_FINISH : Z_NO_FLUSH);
        consumed += input_piece - stream.avail_in;
        out->append(buffer.get(), kBufferSize - stream.avail_out);
        if (status == Z_STREAM_END) break;
        if (status != Z_OK && status != Z_BUF_ERROR) {
            out->resize(original_size);
            *error = "gzip compression failed (zlib error " + std::to_string(status) + ")";
            return false;
        }
    }
    return true;
}

}  // namespace

bool gzip_compress(std::string_view input, std::string* out, std::string* error) noexcept {
    const size_t original_size = out->size();
    try {
        return compress(input, out, error);
    } catch (...) {
        // Only std::bad_alloc can get here. Shrinking a string never allocates.
        out->resize(original_size);
        try {
            *error = "out of memory while compressing a profile";
        } catch (...) {
        }
        return false;
    }
}

}  // namespace gprof::pprof
