#include "test/e2e/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <sstream>

namespace e2e::http {

double now_seconds() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

int free_port() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t length = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &length);
    close(fd);
    return ntohs(a.sin_port);
}

int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

void send_all(int fd, const std::string& data) {
    for (size_t sent = 0; sent < data.size();) {
        ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) return;
        sent += static_cast<size_t>(n);
    }
}

std::string read_all(int fd, double timeout_s) {
    std::string out;
    char buf[65536];
    double end = now_seconds() + timeout_s;
    for (;;) {
        double left = end - now_seconds();
        if (left <= 0) break;
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(left * 1000) + 1) <= 0) continue;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

Answer parse_answer(const std::string& raw) {
    Answer a;
    size_t end = raw.find("\r\n\r\n");
    if (end == std::string::npos || raw.compare(0, 5, "HTTP/") != 0) return a;
    std::istringstream head(raw.substr(0, end));
    std::string line;
    std::getline(head, line);
    a.status = atoi(line.c_str() + line.find(' ') + 1);
    while (std::getline(head, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string name = line.substr(0, colon);
        for (auto& c : name) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
        a.headers[name] = line.substr(colon + 2);
    }
    a.body = raw.substr(end + 4);
    return a;
}

Answer request(int port, const std::string& target, const std::string& method,
               const std::string& body, double timeout_s) {
    int fd = connect_to(port);
    if (fd < 0) return {};
    std::string text = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Connection: close\r\n";
    if (!body.empty() || method == "POST")
        text += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    text += "\r\n" + body;
    send_all(fd, text);
    Answer a = parse_answer(read_all(fd, timeout_s));
    close(fd);
    return a;
}

bool wait_serving(int port, double timeout_s) {
    for (double end = now_seconds() + timeout_s; now_seconds() < end; usleep(20000)) {
        int fd = connect_to(port);
        if (fd >= 0) {
            close(fd);
            return true;
        }
    }
    return false;
}

}  // namespace e2e::http
