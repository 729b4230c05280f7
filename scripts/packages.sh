# Sourced by scripts/test, scripts/gprof and scripts/bench: installs the Debian packages a command
# needs, once, quietly when nothing is missing.
#
#   ensure_packages pkg...

# What building libgprof.so and running its tests need.
# libdw-dev only for elfutils' headers: libgprof.so opens the runtime libdw1 with dlopen at the
# first dump (symbolize/debug_info.h) and does not link it; libmicrohttpd-dev likewise for its
# header: the library opens libmicrohttpd12 only when GPROF_HTTP is set (serve/server.h).
GPROF_BUILD_PACKAGES=(g++ meson ninja-build pkg-config binutils libjemalloc-dev libunwind-dev
    libprotobuf-dev protobuf-compiler zlib1g-dev catch2 libdw-dev libbenchmark-dev
    libmicrohttpd-dev)
# libdw1: source lines in profiles; llvm: llvm-symbolizer and llvm-cxxfilt, the oracle of the symbol
# tests; libc6-dbg: libc's separate DWARF (found by build ID under /usr/lib/debug); valgrind: the
# instruction counts of the lock shims' cost test.
# libtcmalloc-minimal4, libgoogle-perftools4, libjemalloc2: the allocators preloaded before gprof in
# the hostile suite; libc6-dev's libc.a links its static child. clang and its runtime: the libFuzzer
# target of the HTTP server (scripts/fuzz).
GPROF_TEST_PACKAGES=(python3 git sqlite3 golang-go libdw1 llvm libc6-dbg valgrind libmicrohttpd12
    clang libclang-rt-14-dev libtcmalloc-minimal4 libgoogle-perftools4 libjemalloc2 libc6-dev)

ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}" >&2
    local sudo=()
    [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    "${sudo[@]}" apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >&2
}

# Configures (first time) and builds the library in build/; on failure shows the end of the log.
build_gprof() {
    local root=$1 log
    if [ ! -f "$root/build/build.ninja" ]; then
        log=$(meson setup "$root/build" "$root" 2>&1) || { echo "$log" >&2; return 1; }
    fi
    log=$root/build/compile.log
    meson compile -C "$root/build" >"$log" 2>&1 || { tail -n 40 "$log" >&2; return 1; }
}
