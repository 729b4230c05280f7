#include <dirent.h>

#include <algorithm>
#include "test/e2e/run.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace e2e {
namespace {

bool starts_with(const std::string& s, const char* prefix) {
    return s.compare(0, std::strlen(prefix), prefix) == 0;
}

// Variables that would change how a child allocates or what gprof does; never inherited.
bool scrubbed(const std::string& name) {
    return name == "LD_PRELOAD" || name == "GLIBC_TUNABLES" || starts_with(name, "GPROF_") ||
           starts_with(name, "MALLOC_");
}

std::vector<std::string> child_environment(const std::map<std::string, std::string>& extra) {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        std::string entry = *e;
        std::string name = entry.substr(0, entry.find('='));
        if (scrubbed(name) || extra.count(name)) continue;
        env.push_back(entry);
    }
    for (const auto& [name, value] : extra) env.push_back(name + "=" + value);
    return env;
}

double now_seconds() {
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

std::string tail(const std::string& s, size_t n) {
    return s.size() <= n ? s : "[...]" + s.substr(s.size() - n);
}

struct Scratch {
    std::string path;
    Scratch() {
        char tmpl[] = "/tmp/gprof-e2e-XXXXXX";
        if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
        path = tmpl;
    }
    ~Scratch() {
        const char* keep = std::getenv("GPROF_E2E_KEEP");
        if (keep != nullptr && std::strcmp(keep, "1") == 0) return;
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
};

}  // namespace

std::string RunResult::describe() const {
    std::ostringstream s;
    s << "status " << status << (timed_out ? " (timed out)" : "") << "\n--- stdout (" << out.size()
      << " bytes) ---\n"
      << tail(out, 3000) << "\n--- stderr (" << err.size() << " bytes) ---\n"
      << tail(err, 3000);
    return s.str();
}

RunResult run(const std::vector<std::string>& argv, const RunOptions& options) {
    RunResult result;
    if (argv.empty()) return result;
    int out_pipe[2], err_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) != 0) return result;
    if (pipe2(err_pipe, O_CLOEXEC) != 0) {
        close(out_pipe[0]);
        close(out_pipe[1]);
        return result;
    }

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, options.stdin_path.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
    if (!options.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, options.cwd.c_str());

    // Its own process group (so the timeout kills grandchildren too), default signal
    // dispositions and an empty mask whatever the test runner left us.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(
        &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    std::vector<std::string> env_strings = child_environment(options.env);
    std::vector<char*> env_ptrs, argv_ptrs;
    for (auto& e : env_strings) env_ptrs.push_back(e.data());
    env_ptrs.push_back(nullptr);
    std::vector<std::string> argv_copy = argv;
    for (auto& a : argv_copy) argv_ptrs.push_back(a.data());
    argv_ptrs.push_back(nullptr);

    pid_t pid = -1;
    int rc = posix_spawnp(&pid, argv_ptrs[0], &actions, &attr, argv_ptrs.data(), env_ptrs.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    close(out_pipe[1]);
    close(err_pipe[1]);
    if (rc != 0) {
        close(out_pipe[0]);
        close(err_pipe[0]);
        result.err = "posix_spawnp " + argv[0] + ": " + std::strerror(rc);
        return result;
    }

    const double deadline = now_seconds() + options.timeout_seconds;
    double exited_at = 0;  // when the child itself was reaped
    int wstatus = 0;
    bool reaped = false;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    std::string* sinks[2] = {&result.out, &result.err};
    int open_fds = 2;
    char buf[65536];
    while (open_fds > 0) {
        double t = now_seconds();
        if (t >= deadline) {
            result.timed_out = true;
            break;
        }
        // The child is gone but something it started still holds a pipe: give it a moment.
        if (reaped && t - exited_at > 5) break;
        int wait_ms = static_cast<int>(std::min(0.2, deadline - t) * 1000) + 1;
        int n = poll(fds, 2, wait_ms);
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t got = read(fds[i].fd, buf, sizeof buf);
            if (got > 0) {
                sinks[i]->append(buf, static_cast<size_t>(got));
            } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            }
        }
        if (!reaped && waitpid(pid, &wstatus, WNOHANG) == pid) {
            reaped = true;
            exited_at = now_seconds();
        }
    }
    if (result.timed_out || open_fds > 0) kill(-pid, SIGKILL);  // the whole process group
    for (auto& f : fds)
        if (f.fd >= 0) close(f.fd);
    if (!reaped) {
        while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
        }
    }
    if (WIFEXITED(wstatus))
        result.status = WEXITSTATUS(wstatus);
    else if (WIFSIGNALED(wstatus))
        result.status = 128 + WTERMSIG(wstatus);
    return result;
}

const std::string& scratch_dir() {
    static Scratch scratch;
    return scratch.path;
}

std::string make_dir(const std::string& name_prefix) {
    static int counter = 0;
    std::string path = scratch_dir() + "/" + name_prefix + "-" + std::to_string(++counter);
    std::filesystem::create_directories(path);
    return path;
}

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
    return lines;
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_file(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) throw std::runtime_error("cannot write " + path);
}

std::vector<std::string> list_files(const std::string& dir, const std::string& suffix) {
    std::vector<std::string> files;
    if (DIR* d = opendir(dir.c_str())) {
        while (dirent* e = readdir(d)) {
            std::string n = e->d_name;
            if (n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
                files.push_back(dir + "/" + n);
        }
        closedir(d);
    }
    std::sort(files.begin(), files.end());
    return files;
}

}  // namespace e2e
