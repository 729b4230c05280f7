// gzip_compress against zlib's own inflate.
#include <zlib.h>

#include <catch2/catch.hpp>
#include <random>
#include <string>

#include "pprof/gzip.h"

namespace {

// Inflates a gzip member (windowBits 15 + 16: gzip only, not zlib or raw).
bool gunzip(const std::string& compressed, std::string* out) {
    z_stream stream{};
    if (inflateInit2(&stream, 15 + 16) != Z_OK) return false;
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
    stream.avail_in = static_cast<uInt>(compressed.size());
    char buffer[65536];
    int status;
    do {
        stream.next_out = reinterpret_cast<Bytef*>(buffer);
        stream.avail_out = sizeof buffer;
        status = inflate(&stream, Z_NO_FLUSH);
        out->append(buffer, sizeof buffer - stream.avail_out);
    } while (status == Z_OK);
    bool whole = status == Z_STREAM_END && stream.avail_in == 0;
    inflateEnd(&stream);
    return whole;
}

}  // namespace

TEST_CASE("gzip: round trip through zlib inflate", "[writer][gzip]") {
    std::mt19937_64 random(11);
    std::string random_bytes(1 << 20, '\0');
    for (char& c : random_bytes) c = static_cast<char>(random());
    std::string repetitive;
    while (repetitive.size() < (8u << 20)) repetitive += "alloc_space/bytes inuse_space/bytes ";

    for (const std::string* input : {&random_bytes, &repetitive}) {
        // Around the window sizes zlib's state is chosen by (512 B to 32 KiB, then the largest).
        for (size_t size : {size_t{0}, size_t{1}, size_t{100}, size_t{511}, size_t{512},
                            size_t{513}, size_t{4097}, size_t{32768}, size_t{32769},
                            size_t{65537}, input->size()}) {
            INFO("size " << size);
            std::string original = input->substr(0, size);
            std::string compressed = "prefix";  // gzip_compress appends
            std::string error;
            REQUIRE(gprof::pprof::gzip_compress(original, &compressed, &error));
            CHECK(error.empty());
            REQUIRE(compressed.compare(0, 6, "prefix") == 0);
            compressed.erase(0, 6);
            // The gzip magic, which pprof looks for (1f 8b), and deflate (8).
            REQUIRE(compressed.size() >= 18);
            CHECK(static_cast<unsigned char>(compressed[0]) == 0x1f);
            CHECK(static_cast<unsigned char>(compressed[1]) == 0x8b);
            CHECK(compressed[2] == 8);
            std::string restored;
            REQUIRE(gunzip(compressed, &restored));
            CHECK(restored == original);
        }
    }

    std::string compressed, error;
    REQUIRE(gprof::pprof::gzip_compress(repetitive, &compressed, &error));
    CHECK(compressed.size() < repetitive.size() / 100);
}
