// A request to stop long work early, seen by the thread doing it: a dump that a fork waits for
// stops within one sample of the profile it is building (pprof::ProfileBuilder) or one piece of
// its compression (pprof::gzip_compress), rather than after the whole dump.
#pragma once

#include <atomic>

namespace gprof::base {

// Held over the work: while it lives, stopped() on this thread is true once *flag is nonzero.
// Scopes nest; a null flag asks for nothing. Other threads are not concerned.
class StopScope {
  public:
    explicit StopScope(const std::atomic<int>* flag) noexcept;
    ~StopScope();
    StopScope(const StopScope&) = delete;
    StopScope& operator=(const StopScope&) = delete;

    // Whether the calling thread's work was asked to stop.
    static bool stopped() noexcept;

  private:
    const std::atomic<int>* previous_;
};

}  // namespace gprof::base
