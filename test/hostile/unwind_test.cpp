// Catalogue cases 25-28: dlopen and unwinding, and RTLD_DEEPBIND (hazards 1a).
#include "test/e2e/profile_reader.h"
#include "test/hostile/suite.h"

using namespace hostile;

TEST_CASE("#25 dlopen/dlclose storm of 8 libraries with allocating constructors",
          "[hostile][dlopen][cpu]") {
    const std::string n = std::to_string(sized(300, 10000));
    RunResult bare = check_case(
        "dlopen-storm", {program("dlopen_storm"), kBuildDir, n}, configs(true), Outcome::kSame,
        {{"GPROF_MEM_PROFILE_RATE", "1"}}, long_run() ? 600 : 120,
        [](const Config&, const RunResult&, const std::string& dir) {
            // No stale symbols: a sample in a library's constructor is named after that very
            // library (libstormN.so has storm_ctor_N), whichever was loaded at that address last.
            size_t named = 0;
            for (const std::string& f : e2e::list_files(dir, ".heap.pb.gz")) {
                for (const e2e::FlatSample& s : e2e::flatten(e2e::read_profile(f))) {
                    if (s.functions.empty() || s.functions[0].rfind("storm_", 0) != 0) continue;
                    const std::string& leaf = s.functions[0];
                    std::string id = leaf.substr(leaf.rfind('_') + 1);
                    INFO(leaf << " in " << s.mappings[0]);
                    CHECK(e2e::contains(s.mappings[0], "/libstorm" + id + ".so"));
                    ++named;
                }
            }
            CHECK(named >= 8);
        });
    CHECK(e2e::contains(bare.out, "cycles " + n + ", sum "));
}

TEST_CASE("#26 libffi callbacks (Python ctypes) allocate: the walk stops cleanly",
          "[hostile][unwind]") {
    // qsort calls a Python function through a libffi closure (code without unwind tables), which
    // calls malloc through ctypes. (LuaJIT, the catalogue's other example, is not installed here.)
    const std::string script =
        "import ctypes\n"
        "libc = ctypes.CDLL(None)\n"
        "libc.malloc.restype = ctypes.c_void_p\n"
        "libc.free.argtypes = [ctypes.c_void_p]\n"
        "CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int),"
        " ctypes.POINTER(ctypes.c_int))\n"
        "def cmp(a, b):\n"
        "    libc.free(libc.malloc(3000))\n"
        "    return a[0] - b[0]\n"
        "arr = (ctypes.c_int * 2000)(*[(i * 7919) % 2000 for i in range(2000)])\n"
        "libc.qsort(arr, 2000, ctypes.sizeof(ctypes.c_int), CMP(cmp))\n"
        "print('sorted', all(arr[i] <= arr[i + 1] for i in range(1999)))\n";
    RunResult bare = check_case("ffi-callbacks", {e2e::kPython, "-c", script}, configs(true),
                                Outcome::kSame,
                                {{"GPROF_MEM_PROFILE_RATE", "1"}, {"PYTHONMALLOC", "malloc"}}, 120);
    CHECK(bare.out == "sorted True\n");
}

TEST_CASE("#27 malloc within 4 KiB of the end of the stack", "[hostile][unwind]") {
    for (const char* rate : {"524288", "1"}) {
        INFO("GPROF_MEM_PROFILE_RATE=" << rate);
        RunResult bare = check_case("deep-stack", {program("deep_stack")}, configs(true),
                                    Outcome::kSame, {{"GPROF_MEM_PROFILE_RATE", rate}});
        CHECK(bare.out == "recursed deep, allocated at the bottom: yes\n");
    }
}

TEST_CASE("#28 closefrom(3), then the program's own file, a dump and unwinding",
          "[hostile][unwind]") {
    // test/heap/closefrom_dump (also e2e "after closefrom(3) a dump never writes into the
    // program's own files"). It waits for the dump's file, so it runs under gprof only.
    for (const Config& config : configs(true)) {
        INFO(config.describe());
        std::string dir = e2e::make_dir("closefrom");
        RunResult r = e2e::run({std::string(HEAP_PROGRAMS_BUILD_DIR) + "/closefrom_dump", dir},
                               options(gprof_env(config, dir, {{"GPROF_MEM_PROFILE_RATE", "1"}})));
        INFO(r.describe());
        CHECK(r.status == 0);
        CHECK(r.out == "fd 3: hello (5 bytes)\n");
        CHECK(r.err.empty());
        check_written(dir);
    }
}

TEST_CASE("RTLD_DEEPBIND: blocks cross between libc's heap and the program's",
          "[hostile][dlopen][!mayfail]") {
    // The library binds malloc and free to libc's own; the program's are gprof's. Fails today
    // with GPROF_ALLOCATOR=jemalloc: the program's free() hands glibc's block to gprof's
    // jemalloc, and the library's free() hands jemalloc's block to glibc: SIGSEGV. (heaptrack
    // strips RTLD_DEEPBIND from dlopen; gprof has no dlopen shim yet.) GPROF_ALLOCATOR=libc works.
    RunResult bare = check_case("deepbind", {program("deepbind"), program("libdeep_lib.so")},
                                configs(false), Outcome::kSameOrOneLine, {}, 60);
    CHECK(bare.out == "crossed blocks intact: 2000 of 2000\n");
}
