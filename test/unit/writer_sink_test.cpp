// Writing profiles: file names, atomic files, directories, limits, and descriptors.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "base/files.h"
#include "writer/sink.h"

namespace {

using gprof::writer::write_file_atomically;
using gprof::writer::write_to_fd;

std::string temporary_directory() {
    char pattern[] = "/tmp/gprof-writer-sink-XXXXXX";
    REQUIRE(mkdtemp(pattern) != nullptr);
    return pattern;
}

std::vector<std::string> directory_entries(const std::string& path) {
    std::vector<std::string> names;
    DIR* directory = opendir(path.c_str());
    if (directory == nullptr) return names;
    while (dirent* entry = readdir(directory)) {
        std::string name = entry->d_name;
        if (name != "." && name != "..") names.push_back(name);
    }
    closedir(directory);
    return names;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void remove_tree(const std::string& path) {
    std::string command = "rm -rf '" + path + "'";
    REQUIRE(system(command.c_str()) == 0);
}

bool sigpipe_pending() {
    sigset_t pending;
    sigpending(&pending);
    return sigismember(&pending, SIGPIPE) == 1;
}

}  // namespace

TEST_CASE("sink: file names follow the contract", "[writer][sink]") {
    using gprof::writer::profile_file_path;
    CHECK(profile_file_path("./gprof", 1234, 1, "heap") == "./gprof.1234.0001.heap.pb.gz");
    CHECK(profile_file_path("/var/tmp/app", 7, 42, "threadcreate") ==
          "/var/tmp/app.7.0042.threadcreate.pb.gz");
    CHECK(profile_file_path("p", 99999, 9999, "cpu") == "p.99999.9999.cpu.pb.gz");
    CHECK(profile_file_path("p", 1, 12345, "mutex") == "p.1.12345.mutex.pb.gz");
}

TEST_CASE("sink: missing directories are created and the file appears whole", "[writer][sink]") {
    const std::string root = temporary_directory();
    const std::string path = root + "/a/b//c/gprof.1.0001.heap.pb.gz";
    std::string error;
    const std::string bytes(100000, 'x');
    REQUIRE(write_file_atomically(path, bytes, &error));
    CHECK(error.empty());
    CHECK(read_file(path) == bytes);
    // Only the final file: the temporary one was renamed, not copied.
    CHECK(directory_entries(root + "/a/b/c") ==
          std::vector<std::string>{"gprof.1.0001.heap.pb.gz"});

    struct stat status;
    REQUIRE(stat(path.c_str(), &status) == 0);
    // Readable by its writer only, whatever the umask; the directories gprof made are sticky and
    // writable by all, as /tmp (a process that drops privileges writes there too).
    CHECK((status.st_mode & 07777) == 0600);
    for (const char* dir : {"/a", "/a/b", "/a/b/c"}) {
        INFO(dir);
        REQUIRE(stat((root + dir).c_str(), &status) == 0);
        CHECK((status.st_mode & 07777) == 01777);
    }
    REQUIRE(stat(root.c_str(), &status) == 0);
    CHECK((status.st_mode & 07777) != 01777);  // an existing directory is left as it was

    // Writing again replaces the file.
    REQUIRE(write_file_atomically(path, "second", &error));
    CHECK(read_file(path) == "second");
    CHECK(directory_entries(root + "/a/b/c").size() == 1);

    // A relative prefix with no directory part works in the current directory.
    REQUIRE(gprof::base::create_parent_directories("just-a-name", 01777, &error));
    remove_tree(root);
}

TEST_CASE("sink: failures give an error and leave no temporary file", "[writer][sink]") {
    const std::string root = temporary_directory();
    std::string error;

    SECTION("a parent that is a regular file") {
        REQUIRE(write_file_atomically(root + "/file", "x", &error));
        CHECK_FALSE(write_file_atomically(root + "/file/sub/gprof.heap.pb.gz", "x", &error));
        CHECK(error.find("cannot create directory") != std::string::npos);
        CHECK(error.find(root + "/file") != std::string::npos);
    }
    SECTION("a directory nobody may write (a read-only file system)") {
        CHECK_FALSE(write_file_atomically("/proc/gprof-test/gprof.1.0001.heap.pb.gz", "x", &error));
        CHECK_FALSE(error.empty());
        CHECK_FALSE(write_file_atomically("/proc/gprof.1.0001.heap.pb.gz", "x", &error));
        CHECK(error.find("cannot create") != std::string::npos);
    }
    SECTION("the final name is a directory: rename fails, the temporary file is removed") {
        REQUIRE(mkdir((root + "/taken").c_str(), 0755) == 0);
        REQUIRE(write_file_atomically(root + "/taken/inside", "keep", &error));
        CHECK_FALSE(write_file_atomically(root + "/taken", "x", &error));
        CHECK(error.find("cannot rename") != std::string::npos);
        std::vector<std::string> names = directory_entries(root);
        CHECK(names == std::vector<std::string>{"taken"});
    }
    SECTION("a symbolic link at the final name is replaced, its target untouched") {
        REQUIRE(write_file_atomically(root + "/target", "original", &error));
        REQUIRE(symlink((root + "/target").c_str(), (root + "/link").c_str()) == 0);
        REQUIRE(write_file_atomically(root + "/link", "profile", &error));
        CHECK(read_file(root + "/target") == "original");
        struct stat status;
        REQUIRE(lstat((root + "/link").c_str(), &status) == 0);
        CHECK(S_ISREG(status.st_mode));
        CHECK(read_file(root + "/link") == "profile");
    }
    remove_tree(root);
}

TEST_CASE("sink: a process killed while it writes leaves no file behind", "[writer][sink]") {
    const std::string root = temporary_directory();
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        std::string error;
        gprof::base::write_file_atomically(root + "/gprof.1.0001.heap.pb.gz", 1 << 20, 0600,
                                           [](int fd, std::string*) {
                                               if (write(fd, "half", 4) != 4) _exit(3);
                                               raise(SIGKILL);
                                               return true;
                                           },
                                           &error);
        _exit(2);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status));
    CHECK(directory_entries(root).empty());
    remove_tree(root);
}

TEST_CASE("sink: a file size limit gives an error, not SIGXFSZ", "[writer][sink]") {
    const std::string root = temporary_directory();
    const std::string path = root + "/gprof.1.0001.heap.pb.gz";
    int pipe_fds[2];
    REQUIRE(pipe(pipe_fds) == 0);
    std::fflush(nullptr);  // so the child does not repeat what the parent has buffered
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // The default action of SIGXFSZ ends the process: gprof must never trigger it.
        signal(SIGXFSZ, SIG_DFL);
        struct rlimit limit = {1000, RLIM_INFINITY};
        setrlimit(RLIMIT_FSIZE, &limit);
        std::string error;
        bool file_ok = write_file_atomically(path, std::string(5000, 'x'), &error);
        int fd = open((root + "/by-fd").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        std::string fd_error;
        bool fd_ok = write_to_fd(fd, std::string(5000, 'y'), &fd_error);
        std::string report = std::string(file_ok ? "1" : "0") + (fd_ok ? "1" : "0") + error;
        ssize_t ignored = write(pipe_fds[1], report.data(), report.size());
        (void)ignored;
        _exit(0);
    }
    close(pipe_fds[1]);
    std::string report;
    char buffer[512];
    ssize_t n;
    while ((n = read(pipe_fds[0], buffer, sizeof buffer)) > 0) report.append(buffer, n);
    close(pipe_fds[0]);
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));  // not killed by SIGXFSZ
    REQUIRE(report.size() >= 2);
    CHECK(report.substr(0, 2) == "00");
    CHECK(report.find("RLIMIT_FSIZE") != std::string::npos);
    CHECK(directory_entries(root) == std::vector<std::string>{"by-fd"});
    remove_tree(root);
}

TEST_CASE("sink: descriptors: files, /dev/full, and readers that went away", "[writer][sink]") {
    std::string error;

    SECTION("a regular file") {
        const std::string root = temporary_directory();
        int fd = open((root + "/out").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        REQUIRE(fd >= 0);
        REQUIRE(write_to_fd(fd, "hello ", &error));
        REQUIRE(write_to_fd(fd, std::string(300000, 'z'), &error));
        close(fd);
        CHECK(read_file(root + "/out") == "hello " + std::string(300000, 'z'));
        remove_tree(root);
    }
    SECTION("a full device") {
        int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
        if (fd < 0) {
            WARN("no /dev/full; skipped");
            return;
        }
        CHECK_FALSE(write_to_fd(fd, "x", &error));
        CHECK(error.find("No space left") != std::string::npos);
        close(fd);
    }
    SECTION("a pipe whose reader has closed: EPIPE, and no SIGPIPE reaches the program") {
        REQUIRE_FALSE(sigpipe_pending());
        int fds[2];
        REQUIRE(pipe(fds) == 0);
        close(fds[0]);
        CHECK_FALSE(write_to_fd(fds[1], "x", &error));  // the default SIGPIPE would end the test
        CHECK(error.find("Broken pipe") != std::string::npos);
        CHECK_FALSE(sigpipe_pending());
        close(fds[1]);
    }
    SECTION("a socket whose peer has closed") {
        int fds[2];
        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
        close(fds[1]);
        CHECK_FALSE(write_to_fd(fds[0], "x", &error));
        CHECK_FALSE(sigpipe_pending());
        close(fds[0]);
    }
    SECTION("a closed descriptor") {
        CHECK_FALSE(write_to_fd(-1, "x", &error));
        CHECK(error.find("file descriptor -1") != std::string::npos);
    }
}

TEST_CASE("a profile being written holds a descriptor above the program's, or its own if none",
          "[writer]") {
    // In a child: it changes its descriptor limit.
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        struct rlimit limit = {1024, 1024};
        if (setrlimit(RLIMIT_NOFILE, &limit) != 0) _exit(2);
        int low = open("/dev/null", O_RDONLY | O_CLOEXEC);
        int moved = gprof::base::move_out_of_the_way(low);
        // The first free number at or above 1024 - 128, the old one closed.
        if (moved != 896 || fcntl(low, F_GETFD) != -1) _exit(3);
        if ((fcntl(moved, F_GETFD) & FD_CLOEXEC) == 0) _exit(4);
        int next = gprof::base::move_out_of_the_way(open("/dev/null", O_RDONLY));
        if (next != 897) _exit(5);
        // A file read briefly is opened there too, and the lowest free number stays free.
        int lowest = dup(0);
        close(lowest);
        int read_fd = gprof::base::open_read_only("/proc/self/status");
        char byte;
        if (read_fd != 898 || read(read_fd, &byte, 1) != 1 || dup(0) != lowest) _exit(9);
        close(lowest);
        close(read_fd);
        errno = 0;
        if (gprof::base::open_read_only("/nonexistent/x") != -1 || errno != ENOENT) _exit(10);
        // With every number there taken, the descriptor stays where it is.
        for (int fd = 898; fd < 1024; ++fd) dup2(moved, fd);
        int stays = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (gprof::base::move_out_of_the_way(stays) != stays) _exit(6);
        // A small limit: half of it.
        limit = {64, 64};
        if (setrlimit(RLIMIT_NOFILE, &limit) != 0) _exit(7);
        int small = gprof::base::move_out_of_the_way(open("/dev/null", O_RDONLY | O_CLOEXEC));
        _exit(small == 32 ? 0 : 8);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}
