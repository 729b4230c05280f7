// Catalogue cases 25-28: dlopen and unwinding, and RTLD_DEEPBIND (hazards 1a) with the dlopen
// shim's resolution from the caller.
#include <algorithm>

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
    // The CPU profile's signal at 10 kHz meanwhile, 3000 times at the bottom: the kernel's frame
    // for it (3.4 KiB with AVX-512 state) does not fit in what the thread has left, and goes on
    // the alternate signal stack gprof gives the thread (without one: a crash in every run).
    RunResult bare = check_case("deep-stack-cpu", {program("deep_stack"), "3000"},
                                {Config{"", 10000}, Config{"libc", 10000}}, Outcome::kSame,
                                {{"GPROF_AT_EXIT", "0"}});
    CHECK(bare.out == "recursed deep, allocated at the bottom: yes\n");
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
          "[hostile][dlopen]") {
    // The library would bind malloc and free to glibc's own while the program's are gprof's.
    // jemalloc mode: gprof drops RTLD_DEEPBIND (blocks from both sides then stay in gprof's
    // jemalloc, where it crashed before: SIGSEGV), so the library's allocations are in the heap
    // profile. libc mode: both sides are glibc's heap, the flag stays and the library's
    // allocations bypass gprof. Each says so in one line and in every profile's comments.
    const std::string lib = program("libdeep_lib.so");
    RunResult bare = check_case(
        "deepbind", {program("deepbind"), lib}, configs(false), Outcome::kOneLine,
        {{"GPROF_MEM_PROFILE_RATE", "1"}}, 60,
        [&lib](const Config& config, const RunResult& r, const std::string& dir) {
            const bool dropped = config.allocator == "jemalloc";
            const std::string said =
                dropped ? "gprof: RTLD_DEEPBIND dropped from the dlopen of " + lib +
                              " (and from any later one): its malloc and free are gprof's"
                        : "gprof: " + lib + " was opened with RTLD_DEEPBIND (later libraries "
                                            "may be too): its malloc and free are glibc's";
            CHECK(r.err.rfind(said, 0) == 0);
            std::vector<std::string> heaps = e2e::list_files(dir, ".heap.pb.gz");
            CHECK(heaps.size() == 1);
            for (const std::string& f : heaps) {
                INFO(f);
                CHECK(e2e::contains(comments(f), said));
                // Rate 1: each of deep_make's 1000 mallocs, and none in use (the program freed
                // them, through gprof when the flag was dropped).
                int64_t made = 0, in_use = 0;
                for (const e2e::FlatSample& s : e2e::flatten(e2e::read_profile(f))) {
                    if (std::find(s.functions.begin(), s.functions.end(), "deep_make") ==
                        s.functions.end())
                        continue;
                    made += s.values[0];
                    in_use += s.values[2];
                }
                CHECK(made == (dropped ? 1000 : 0));
                CHECK(in_use == 0);
            }
        });
    CHECK(bare.out == "crossed blocks intact: 2000 of 2000\n");
}

TEST_CASE("dlopen under gprof resolves names from its caller: RUNPATH, $ORIGIN, dlerror",
          "[hostile][dlopen]") {
    // gprof's dlopen reaches glibc's by a tail jump, so glibc still takes the program for the
    // caller: librunpath_only.so is found only through dlopen_caller's DT_RUNPATH
    // ($ORIGIN/runpath) or by "$ORIGIN/" in its name (a wrapper that calls glibc's dlopen from
    // its own code finds neither). The errors of failing dlopens read the same. With
    // RTLD_DEEPBIND, gprof's one line (the case above).
    const std::string found = kBuildDir + "/runpath/librunpath_only.so";
    for (const std::string name : {"librunpath_only.so", "$ORIGIN/runpath/librunpath_only.so"}) {
        for (const std::string flag : {"now", "deepbind"}) {
            INFO(flag << " " << name);
            const bool deep = flag == "deepbind";
            RunResult bare = check_case(
                "dlopen-caller", {program("dlopen_caller"), flag, name}, configs(false),
                deep ? Outcome::kOneLine : Outcome::kSame, {{"GPROF_MEM_PROFILE_RATE", "1"}}, 60,
                [deep](const Config&, const RunResult&, const std::string& dir) {
                    // The profiles' comments name the library exactly when the line does.
                    std::vector<std::string> heaps = e2e::list_files(dir, ".heap.pb.gz");
                    CHECK(heaps.size() == 1);
                    for (const std::string& f : heaps)
                        CHECK(e2e::contains(comments(f), "RTLD_DEEPBIND") == deep);
                });
            CHECK(bare.out ==
                  "answer 42 from " + found +
                      "\n"
                      "missing library: libgprof-test-no-such-library.so: cannot open shared "
                      "object file: No such file or directory\n"
                      "missing library, then: (no error)\n"
                      "no RTLD_NOW or RTLD_LAZY: " +
                      name +
                      ": invalid mode for dlopen(): Invalid argument\n"
                      "no RTLD_NOW or RTLD_LAZY, then: (no error)\n"
                      "nothing since: (no error)\n"
                      "nothing since, then: (no error)\n");
        }
    }
}
