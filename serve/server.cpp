#include "serve/server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "base/files.h"
#include "base/log.h"

namespace gprof::serve {
namespace {

// The library's functions, found by name (never linked: see docs/design.md).
struct Library {
    decltype(&MHD_start_daemon) start_daemon;
    decltype(&MHD_stop_daemon) stop_daemon;
    decltype(&MHD_quiesce_daemon) quiesce_daemon;
    decltype(&MHD_create_response_from_buffer) create_response;
    decltype(&MHD_add_response_header) add_header;
    decltype(&MHD_queue_response) queue_response;
    decltype(&MHD_destroy_response) destroy_response;
    decltype(&MHD_get_connection_info) connection_info;
    decltype(&MHD_set_connection_option) connection_option;
};

constexpr const char* kLibraryName = "libmicrohttpd.so.12";

// Bounds on what clients can take: connections (each a thread while it lasts), the time an idle
// connection is kept, the memory of one request's headers.
constexpr unsigned kMaxConnections = 32;
constexpr unsigned kIdleTimeoutSeconds = 30;
constexpr size_t kConnectionMemory = 64 * 1024;

Library g_lib;
std::atomic<MHD_Daemon*> g_daemon{nullptr};
Backend* g_backend = nullptr;
int g_listen_fd = -1;
int errno_of_listen = 0;  // why the last bind or listen failed
int g_stop_fd = -1;  // eventfd: readable once the server stops
sockaddr_storage g_bound{};
socklen_t g_bound_length = 0;
// The descriptors libmicrohttpd opened for itself at start (its inter-thread channel).
constexpr int kMaxOwnFds = 8;
int g_own_fds[kMaxOwnFds];
int g_own_fd_count = 0;

// The connection of the request this thread serves.
constinit thread_local int t_connection_fd [[gnu::tls_model("initial-exec")]] = -1;

struct RequestState {
    std::string target;
    std::string body;
    bool too_large = false;
    bool started = false;  // the first call (headers only) came
};

void quiet_logger(void*, const char*, va_list) {}

void* on_uri(void*, const char* uri, MHD_Connection*) {
    auto* state = new (std::nothrow) RequestState;
    if (state != nullptr) {
        try {
            state->target = uri;
        } catch (const std::bad_alloc&) {
        }
    }
    return state;
}

void on_completed(void*, MHD_Connection*, void** context, MHD_RequestTerminationCode) {
    delete static_cast<RequestState*>(*context);
    *context = nullptr;
}

MHD_Result send(MHD_Connection* connection, const Response& response) {
    MHD_Response* r = g_lib.create_response(response.body.size(),
                                            const_cast<char*>(response.body.data()),
                                            MHD_RESPMEM_MUST_COPY);
    if (r == nullptr) return MHD_NO;
    for (const auto& [name, value] : response.headers)
        g_lib.add_header(r, name.c_str(), value.c_str());
    MHD_Result result = g_lib.queue_response(connection, static_cast<unsigned>(response.status), r);
    g_lib.destroy_response(r);
    return result;
}

MHD_Result on_request(void*, MHD_Connection* connection, const char*, const char* method,
                      const char*, const char* upload, size_t* upload_size, void** context) {
    auto* state = static_cast<RequestState*>(*context);
    if (state == nullptr) return MHD_NO;  // out of memory: the connection is closed
    if (!state->started) {  // headers only: the body (if any) comes in the next calls
        state->started = true;
        return MHD_YES;
    }
    if (*upload_size != 0) {
        if (!state->too_large && state->body.size() + *upload_size <= kMaxBodyBytes) {
            try {
                state->body.append(upload, *upload_size);
            } catch (const std::bad_alloc&) {
                state->too_large = true;
            }
        } else {
            state->too_large = true;
            state->body.clear();
        }
        *upload_size = 0;
        return MHD_YES;
    }
    const MHD_ConnectionInfo* info =
        g_lib.connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    t_connection_fd = info != nullptr ? info->connect_fd : -1;
    Request request{method, state->target, state->body, state->too_large};
    Response response = handle(request, *g_backend);
    t_connection_fd = -1;
    // The idle timeout counts from now, not from the request: a duration may outlast it. (The
    // library restarts the count when a connection's timeout goes from 0 to another value.)
    g_lib.connection_option(connection, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    g_lib.connection_option(connection, MHD_CONNECTION_OPTION_TIMEOUT, kIdleTimeoutSeconds);
    state->body.clear();
    return send(connection, response);
}

// The descriptors open now, as a bit set (the ones below 1024 are enough to tell what the
// library's start opened).
void open_fds(uint64_t (&set)[16]) {
    memset(set, 0, sizeof set);
    DIR* dir = opendir("/proc/self/fd");
    if (dir == nullptr) return;
    int own = dirfd(dir);
    while (dirent* e = readdir(dir)) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd == own || fd >= 1024) continue;
        set[fd / 64] |= uint64_t{1} << (fd % 64);
    }
    closedir(dir);
}

bool load_library(const char** reason) {
    void* handle = dlopen(kLibraryName, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
        *reason = "cannot load libmicrohttpd.so.12 (Debian package libmicrohttpd12)";
        return false;
    }
    bool ok = true;
    auto find = [&](auto* slot, const char* name) {
        void* f = dlsym(handle, name);
        if (f == nullptr) ok = false;
        *slot = reinterpret_cast<std::remove_pointer_t<decltype(slot)>>(f);
    };
    find(&g_lib.start_daemon, "MHD_start_daemon");
    find(&g_lib.stop_daemon, "MHD_stop_daemon");
    find(&g_lib.quiesce_daemon, "MHD_quiesce_daemon");
    find(&g_lib.create_response, "MHD_create_response_from_buffer");
    find(&g_lib.add_header, "MHD_add_response_header");
    find(&g_lib.queue_response, "MHD_queue_response");
    find(&g_lib.destroy_response, "MHD_destroy_response");
    find(&g_lib.connection_info, "MHD_get_connection_info");
    find(&g_lib.connection_option, "MHD_set_connection_option");
    if (!ok) *reason = "libmicrohttpd.so.12 lacks a function gprof needs";
    return ok;
}

// A listening socket on the address: false with *reason (a static string or strerror's).
bool listen_on(const HttpAddress& address, std::string* reason) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    char port[8];
    snprintf(port, sizeof port, "%u", static_cast<unsigned>(address.port));
    addrinfo* found = nullptr;
    int err = getaddrinfo(address.host, port, &hints, &found);
    if (err != 0) {
        *reason = std::string("cannot resolve the host: ") + gai_strerror(err);
        return false;
    }
    *reason = "no address to listen on";
    for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
        int fd = base::move_out_of_the_way(
            socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
        if (fd < 0) {
            *reason = std::string("cannot open a socket: ") + strerror(errno);
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 64) != 0) {
            errno_of_listen = errno;
            *reason = std::string("cannot listen: ") + strerror(errno);
            close(fd);
            continue;
        }
        g_listen_fd = fd;
        g_bound_length = sizeof g_bound;
        getsockname(fd, reinterpret_cast<sockaddr*>(&g_bound), &g_bound_length);
        break;
    }
    freeaddrinfo(found);
    return g_listen_fd >= 0;
}

// Whether fd is a socket whose local address is the server's (the listening socket and every
// connection it accepted).
bool is_server_socket(int fd) {
    sockaddr_storage local{};
    socklen_t length = sizeof local;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) != 0) return false;
    return length == g_bound_length && memcmp(&local, &g_bound, length) == 0;
}

// The sockets listening on `port` (/proc/net/tcp and tcp6): their inodes, and their owners' uids.
struct Listeners {
    std::vector<unsigned long> inodes;
    std::vector<unsigned> uids;
};
Listeners listening_sockets(uint16_t port) {
    Listeners found;
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        FILE* f = fopen(table, "re");
        if (f == nullptr) continue;
        char line[512];
        while (fgets(line, sizeof line, f) != nullptr) {
            char local[64];
            unsigned state = 0, uid = 0;
            unsigned long inode = 0;
            if (sscanf(line, " %*u: %63s %*s %x %*s %*s %*s %u %*s %lu", local, &state, &uid,
                       &inode) != 4)
                continue;
            const char* colon = strrchr(local, ':');
            if (colon != nullptr && strtoul(colon + 1, nullptr, 16) == port && state == 0x0a) {
                found.inodes.push_back(inode);
                found.uids.push_back(uid);
            }
        }
        fclose(f);
    }
    return found;
}

// pid's effective uid (/proc/PID/status, readable by anyone); -1 if unknown.
long effective_uid(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", static_cast<int>(pid));
    FILE* f = fopen(path, "re");
    if (f == nullptr) return -1;
    char line[256];
    long uid = -1;
    while (fgets(line, sizeof line, f) != nullptr) {
        unsigned real = 0, effective = 0;
        if (sscanf(line, "Uid: %u %u", &real, &effective) == 2) {
            uid = effective;
            break;
        }
    }
    fclose(f);
    return uid;
}

// Whether pid holds one of the sockets: 1, 0, or -1 where its descriptors cannot be read (it runs
// as another user: this process dropped its privileges since).
int holds_socket(pid_t pid, const std::vector<unsigned long>& inodes) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", static_cast<int>(pid));
    DIR* dir = opendir(path);
    if (dir == nullptr) return errno == EACCES ? -1 : 0;
    bool found = false;
    while (dirent* e = readdir(dir)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char link[96], target[64];
        snprintf(link, sizeof link, "%s/%s", path, e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = '\0';
        unsigned long inode = 0;
        if (sscanf(target, "socket:[%lu]", &inode) == 1 &&
            std::find(inodes.begin(), inodes.end(), inode) != inodes.end())
            found = true;
    }
    closedir(dir);
    return found ? 1 : 0;
}

// Whether pid was started with GPROF_HTTP set.
bool has_gprof_http(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/environ", static_cast<int>(pid));
    FILE* f = fopen(path, "re");
    if (f == nullptr) return false;
    std::string environment;
    char buffer[4096];
    for (size_t n; (n = fread(buffer, 1, sizeof buffer, f)) > 0;) environment.append(buffer, n);
    fclose(f);
    return environment.rfind("GPROF_HTTP=", 0) == 0 ||
           environment.find(std::string_view("\0GPROF_HTTP=", 12)) != std::string::npos;
}

// Whether the address is taken by one of this process's ancestors that was started with
// GPROF_HTTP: a program started (with LD_PRELOAD and GPROF_HTTP still set) by one that serves.
// An ancestor whose descriptors this process may no longer read (a worker that became `nobody`
// under a master running as root) counts when it runs as the user that owns the listening
// socket: its environment cannot be read either.
bool taken_by_ancestor(uint16_t port) {
    Listeners listeners = listening_sockets(port);
    if (listeners.inodes.empty()) return false;
    pid_t pid = getppid();
    for (int depth = 0; depth < 32 && pid > 1; ++depth) {
        int holds = holds_socket(pid, listeners.inodes);
        if (holds == 1) return has_gprof_http(pid);
        if (holds == -1) {
            long uid = effective_uid(pid);
            for (unsigned owner : listeners.uids)
                if (uid >= 0 && owner == static_cast<unsigned long>(uid)) return true;
        }
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
        FILE* f = fopen(path, "re");
        if (f == nullptr) return false;
        int parent = 0;
        // The command name may hold spaces and parentheses: the fields after its last ')'.
        char stat[1024];
        size_t n = fread(stat, 1, sizeof stat - 1, f);
        fclose(f);
        stat[n] = '\0';
        const char* end = strrchr(stat, ')');
        if (end == nullptr || sscanf(end + 1, " %*c %d", &parent) != 1) return false;
        pid = parent;
    }
    return false;
}

// libmicrohttpd's daemon on g_listen_fd, its threads blocking every signal; the descriptors it
// opens for itself are noted (abandon_after_fork closes them).
bool start_daemon() {
    uint64_t before[16], after[16];
    open_fds(before);
    // The library's threads inherit this mask: they take none of the program's signals.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    MHD_Daemon* daemon = g_lib.start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
            MHD_USE_ITC,
        0, nullptr, nullptr, on_request, nullptr,
        MHD_OPTION_LISTEN_SOCKET, g_listen_fd,
        MHD_OPTION_CONNECTION_LIMIT, kMaxConnections,
        MHD_OPTION_CONNECTION_TIMEOUT, kIdleTimeoutSeconds,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, kConnectionMemory,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, nullptr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, nullptr,
        MHD_OPTION_EXTERNAL_LOGGER, quiet_logger, nullptr,
        MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    if (daemon == nullptr) return false;
    open_fds(after);
    g_own_fd_count = 0;
    for (int fd = 0; fd < 1024 && g_own_fd_count < kMaxOwnFds; ++fd) {
        uint64_t bit = uint64_t{1} << (fd % 64);
        if ((after[fd / 64] & bit) && !(before[fd / 64] & bit) && fd != g_listen_fd)
            g_own_fds[g_own_fd_count++] = fd;
    }
    g_daemon.store(daemon, std::memory_order_release);
    return true;
}

void close_sockets() {
    if (g_listen_fd >= 0) close(g_listen_fd);
    g_listen_fd = -1;
    if (g_stop_fd >= 0) close(g_stop_fd);
    g_stop_fd = -1;
}

// Ends the daemon's threads: requests waiting out a duration end at once.
void stop_daemon(MHD_Daemon* daemon) {
    uint64_t one = 1;
    if (g_stop_fd >= 0 && write(g_stop_fd, &one, sizeof one) < 0) {
        // A full counter is readable already.
    }
    g_lib.stop_daemon(daemon);  // joins the threads; closes the listening socket unless quiesced
    g_own_fd_count = 0;
}

}  // namespace

bool start(const HttpAddress& address, Backend* backend) {
    char named[sizeof address.host + 16];
    if (strchr(address.host, ':') != nullptr)
        snprintf(named, sizeof named, "[%s]:%u", address.host, static_cast<unsigned>(address.port));
    else
        snprintf(named, sizeof named, "%s:%u", address.host, static_cast<unsigned>(address.port));
    const char* static_reason = nullptr;
    if (!load_library(&static_reason)) {
        log::problem("GPROF_HTTP=%s: %s; HTTP stays off", named, static_reason);
        return false;
    }
    std::string reason;
    if (!listen_on(address, &reason)) {
        if (errno_of_listen == EADDRINUSE && taken_by_ancestor(address.port)) return false;
        log::problem("GPROF_HTTP=%s: %s; HTTP stays off", named, reason.c_str());
        return false;
    }
    g_backend = backend;
    g_stop_fd = base::move_out_of_the_way(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!start_daemon()) {
        log::problem("GPROF_HTTP=%s: cannot start the HTTP server; HTTP stays off", named);
        close_sockets();
        return false;
    }
    return true;
}

void stop() {
    MHD_Daemon* daemon = g_daemon.exchange(nullptr, std::memory_order_acq_rel);
    if (daemon == nullptr) return;
    stop_daemon(daemon);
    g_listen_fd = -1;
}

bool pause() {
    MHD_Daemon* daemon = g_daemon.exchange(nullptr, std::memory_order_acq_rel);
    if (daemon == nullptr) return false;
    // Quiesced, the daemon no longer accepts and leaves the listening socket open at its stop.
    bool kept = g_lib.quiesce_daemon(daemon) == g_listen_fd;
    stop_daemon(daemon);
    uint64_t count;
    if (g_stop_fd >= 0 && read(g_stop_fd, &count, sizeof count) < 0) {
        // Nothing was written: a failed write above leaves nothing to read.
    }
    if (!kept) g_listen_fd = -1;  // closed by the daemon's stop
    return true;
}

void resume() {
    if (g_listen_fd >= 0 && start_daemon()) return;
    log::problem("GPROF_HTTP: the HTTP server cannot start again after the program changed its "
                 "user or groups; HTTP stays off");
    close_sockets();
}

void abandon_after_fork() {
    if (g_daemon.exchange(nullptr, std::memory_order_acq_rel) == nullptr) return;
    // Sockets first: while any copy of a connection stays open in the child, its client would
    // not see the parent close it.
    if (DIR* dir = opendir("/proc/self/fd")) {
        int own = dirfd(dir);
        while (dirent* e = readdir(dir)) {
            if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
            int fd = atoi(e->d_name);
            if (fd != own && is_server_socket(fd)) close(fd);
        }
        closedir(dir);
    }
    for (int i = 0; i < g_own_fd_count; ++i) close(g_own_fds[i]);
    g_own_fd_count = 0;
    if (g_stop_fd >= 0) close(g_stop_fd);
    g_stop_fd = -1;
    g_listen_fd = -1;
}

bool wait_while_connected(int64_t seconds) {
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    const int64_t deadline = (now.tv_sec + seconds) * 1000 + now.tv_nsec / 1000000;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t left = deadline - (now.tv_sec * 1000 + now.tv_nsec / 1000000);
        if (left <= 0) return true;
        pollfd fds[2] = {{t_connection_fd, POLLRDHUP, 0}, {g_stop_fd, POLLIN, 0}};
        int n = poll(fds, 2, static_cast<int>(std::min<int64_t>(left, 1 << 30)));
        if (n < 0 && errno != EINTR) return false;
        if (n > 0) {
            if (fds[1].revents != 0) return false;
            if (fds[0].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return false;
        }
    }
}

}  // namespace gprof::serve
