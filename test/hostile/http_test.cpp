// Catalogue cases 39-43: the HTTP endpoint (GPROF_HTTP). Huge request lines, clients that leave,
// a thousand connections and slow-loris clients while the program runs are e2e "http: hostile
// clients never disturb the program"; here, the two that involve the process's own life: its
// listening socket across exec, and slow-loris clients when it exits.
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "test/e2e/http_client.h"
#include "test/hostile/suite.h"

using namespace hostile;
using namespace e2e::http;

TEST_CASE("#43 the listening socket across exec: each image of an exec chain serves the port",
          "[hostile][http][exec]") {
    // Each image of exec_chain (same pid) starts its own server on the same port: the one before
    // must not leave its socket open in the next (it would say "cannot listen"), and nothing
    // else changes (the dumps by signal, each image's in its own file).
    const std::string port = std::to_string(free_port());
    RunResult bare = check_case(
        "exec-chain-http", {program("exec_chain"), "{dir}", "3"}, configs(false), Outcome::kSame,
        {{"GPROF_HTTP", "127.0.0.1:" + port}, {"GPROF_MEM_PROFILE_RATE", "1"}}, 60,
        [](const Config&, const RunResult&, const std::string& dir) {
            CHECK(e2e::list_files(dir, ".heap.pb.gz").size() == 6);
        });
    CHECK(bare.out == "level 0 reached, child status 0\n");
}

TEST_CASE("#39 slow-loris clients hold connections open while the program exits",
          "[hostile][http][exit]") {
    // 40 connections, each sending a byte of a request line every 50 ms and never ending it,
    // from before the program's exit to after: it ends when it would, with its status.
    for (const Config& config : configs(false)) {
        INFO(config.describe());
        const int port = free_port();
        std::string dir = e2e::make_dir("slowloris-exit");
        auto env = gprof_env(config, dir, {{"GPROF_HTTP", "127.0.0.1:" + std::to_string(port)}});
        const double began = now_seconds();
        auto running = std::async(std::launch::async, [&] {
            return e2e::run({"/bin/sh", "-c", "sleep 1.5; exit 7"}, options(env, 30));
        });
        std::vector<int> slow;
        for (double end = now_seconds() + 1; slow.empty() && now_seconds() < end;
             usleep(10000)) {
            if (int fd = connect_to(port); fd >= 0) slow.push_back(fd);
        }
        REQUIRE(!slow.empty());  // the server listened
        while (slow.size() < 40)
            if (int fd = connect_to(port); fd >= 0) slow.push_back(fd);
        std::atomic<bool> done{false};
        std::thread trickle([&] {
            while (!done) {
                for (int fd : slow) ::send(fd, "G", 1, MSG_NOSIGNAL);
                usleep(50000);
            }
        });
        RunResult r = running.get();
        const double took = now_seconds() - began;
        done = true;
        trickle.join();
        for (int fd : slow) close(fd);
        INFO(r.describe());
        CHECK(r.status == 7);
        CHECK(r.err.empty());
        CHECK(took < 4);
        check_written(dir);
    }
}
