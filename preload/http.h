// GPROF_HTTP: the /debug/pprof/ server (serve/) wired to this process's profiles.
#pragma once

#include "base/config.h"

namespace gprof::http {

// From gprof's constructor, when GPROF_HTTP is set: starts serving, and stops at exit.
void start(const Config& c);

// Stops the server (at exit, and when the program's last thread ends: the server's threads
// must not keep the process alive).
void stop();

// Around a change of the program's user or groups (preload/uid_shims.cpp): the server's threads
// end, and start again with the new credentials; its address stays bound. pause() says whether
// there was a server to resume.
bool pause();
void resume();

// fork(), in the child: the parent's server is left alone and the child serves nothing (the
// address is the parent's).
void child_after_fork();

}  // namespace gprof::http
