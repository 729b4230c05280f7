// A plain HTTP/1.1 client for the tests of GPROF_HTTP: one request per connection, on loopback.
#pragma once

#include <map>
#include <string>

namespace e2e::http {

double now_seconds();  // CLOCK_MONOTONIC
// A loopback port that was free a moment ago.
int free_port();
// A connected socket to 127.0.0.1:port, or -1.
int connect_to(int port);
void send_all(int fd, const std::string& data);
// Everything the peer sends until it closes (or timeout_s passes).
std::string read_all(int fd, double timeout_s);

struct Answer {
    int status = 0;  // 0: no answer
    std::map<std::string, std::string> headers;  // names lower-cased
    std::string body;
};
Answer parse_answer(const std::string& raw);
// One request (Connection: close) and its whole answer.
Answer request(int port, const std::string& target, const std::string& method = "GET",
               const std::string& body = "", double timeout_s = 60);
// Whether something accepts connections on the port within timeout_s.
bool wait_serving(int port, double timeout_s = 20);

}  // namespace e2e::http
