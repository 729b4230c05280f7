// The HTTP server behind GPROF_HTTP: libmicrohttpd, opened with dlopen only when the variable is
// set (a program that does not ask for it gains no library), on a listening socket of gprof's own.
// Every request goes to serve::handle on a thread of its connection's; the threads block every
// signal, and a server with no connection sleeps in poll() with no timeout.
#pragma once

#include <cstdint>

#include "base/config.h"
#include "serve/handler.h"

namespace gprof::serve {

// Starts serving `address` with `backend` (which must outlive the server). False (one gprof:
// line said, naming GPROF_HTTP and the reason) when it cannot: no libmicrohttpd, an address that
// does not resolve or cannot be bound. The caller holds the re-entry guard: the threads the
// library creates are then gprof's own.
bool start(const HttpAddress& address, Backend* backend);

// Stops the server: requests waiting out a duration end at once, the threads are joined, the
// socket closed. Safe to call more than once and when it never started.
void stop();

// Around a change of the program's user or groups (glibc makes every thread of the process
// make it, and aborts when their results differ): pause ends the server's threads and keeps its
// listening socket (false when it was not serving); resume starts them again, from the calling
// thread, so with its credentials (one gprof: line and HTTP off when it cannot).
bool pause();
void resume();

// After fork, in the child: the parent's server is not the child's. Its descriptors (the
// listening socket, connections, libmicrohttpd's own) are closed; nothing of it is touched again.
void abandon_after_fork();

// For the backend, in a request's thread: waits `seconds`, or less when the client closes its
// side of the connection or the server stops (then false).
bool wait_while_connected(int64_t seconds);

}  // namespace gprof::serve
