// The CPU profile's records: the walk a signal handler makes of an interrupted context
// (unwind/context_walk.h) against glibc's backtrace(), and the per-thread rings and sessions of
// record/cpu_samples.h (recorded, drained, dropped when full, counted once per session), with a
// writer thread and a draining thread at once (the TSan build checks the ring's ordering).
#include "record/cpu_samples.h"

#include <execinfo.h>
#include <sys/prctl.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstring>
#include <thread>
#include <vector>

#include "record/stack_table.h"
#include "unwind/context_walk.h"
#include "unwind/frame_rules.h"
#include "unwind/stack.h"
#include "unwind/thread_bounds.h"

using namespace gprof;

namespace {

#define NOINLINE __attribute__((noinline))

struct BothWalks {
    uintptr_t ours[unwind::kCaptureRoom];
    unwind::ContextWalk walk;
    void* theirs[unwind::kCaptureRoom];
    int their_depth = 0;
};

// A context as a signal would leave it: getcontext's registers, here in this frame.
NOINLINE void walk_here(BothWalks* out) {
    ucontext_t context;
    getcontext(&context);
    out->walk = unwind::walk_interrupted(context, {}, out->ours, unwind::kMaxFrames);
    out->their_depth = backtrace(out->theirs, unwind::kMaxFrames);
    asm volatile("" ::: "memory");
}

NOINLINE void nested(BothWalks* out, int depth) {
    if (depth == 0) return walk_here(out);
    nested(out, depth - 1);
    asm volatile("" ::: "memory");
}

// The callers of walk_here, as both walks see them. The leaves differ (getcontext's and
// backtrace's return addresses in walk_here), and backtrace() may have frames of its own above
// walk_here (a sanitizer's interceptor).
void check_same_callers(const BothWalks& w) {
    REQUIRE(w.walk.depth > 5);
    CHECK(w.walk.complete);
    CHECK_FALSE(w.walk.cut);
    int k = 1;
    while (k < 4 && k < w.their_depth && reinterpret_cast<uintptr_t>(w.theirs[k]) != w.ours[1]) ++k;
    REQUIRE(k < 4);
    REQUIRE(w.their_depth - k == w.walk.depth - 1);
    for (int i = 1; i < w.walk.depth; ++i) {
        INFO("frame " << i);
        CHECK(w.ours[i] == reinterpret_cast<uintptr_t>(w.theirs[i - 1 + k]));
    }
}

}  // namespace

TEST_CASE("the interrupted context's walk matches backtrace(), on known and guessed bounds") {
    unwind::publish_signal_modules();
    unwind::learn_thread_stack();
    BothWalks main_walk;
    nested(&main_walk, 6);
    check_same_callers(main_walk);
    // A thread whose bounds gprof never learnt: from sp up to its thread descriptor.
    std::thread([] {
        BothWalks w;
        nested(&w, 3);
        check_same_callers(w);
    }).join();
}

TEST_CASE("a walk deeper than its room keeps the innermost frames and says it was cut") {
    unwind::publish_signal_modules();
    unwind::learn_thread_stack();
    BothWalks w;
    uintptr_t few[8];
    ucontext_t context;
    getcontext(&context);
    w.walk = unwind::walk_interrupted(context, {}, few, 3);
    CHECK(w.walk.depth == 3);
    CHECK(w.walk.cut);
    CHECK_FALSE(w.walk.complete);
}

namespace {

// Records `n` samples of the calling thread from one context, into its own slot.
NOINLINE void record_samples(record::CpuThreadSlot* slot, int n, uint32_t periods,
                             uint64_t extra) {
    ucontext_t context;
    getcontext(&context);
    for (int i = 0; i < n; ++i)
        record::record_cpu_sample(slot, context, periods, extra, record::CpuSource::ThreadTimer,
                                  {});
}

int64_t total_samples(const record::CpuProfileData& data) {
    int64_t n = 0;
    for (const auto& [key, counts] : data.samples) n += counts.samples;
    return n;
}

record::CpuThreadSlot* own_slot() {
    record::CpuThreadSlot* slot = record::claim_cpu_slot(gettid());
    REQUIRE(slot != nullptr);
    record::adopt_cpu_slot(slot);
    return slot;
}

}  // namespace

TEST_CASE("cpu samples: counted with their periods, named by thread, once per session") {
    unwind::publish_signal_modules();
    unwind::learn_thread_stack();
    record::start_stack_table();
    record::set_cpu_period(4000000);
    record::begin_cpu_session(record::CpuSession::Dump);
    prctl(PR_SET_NAME, "cpu-test", 0, 0, 0);
    record::CpuThreadSlot* slot = own_slot();

    record_samples(slot, 10, 1, 0);
    record::begin_cpu_session(record::CpuSession::OnDemand);
    record_samples(slot, 5, 3, 1000);  // 3 periods each, and 1 us the source did not sample

    record::CpuProfileData demand, dump;
    record::take_cpu_session(record::CpuSession::OnDemand, &demand);
    CHECK_FALSE(record::cpu_session_active(record::CpuSession::OnDemand));
    record::take_cpu_session(record::CpuSession::Dump, &dump);
    CHECK(record::cpu_session_active(record::CpuSession::Dump));

    CHECK(total_samples(demand) == 15);
    CHECK(total_samples(dump) == 25);
    int64_t dump_nanos = 0;
    for (const auto& [key, counts] : dump.samples) {
        dump_nanos += counts.nanos;
        CHECK(std::string(key.thread_name.data()) == "cpu-test");
        CHECK(record::stack_table().depth(key.stack) > 3);
    }
    CHECK(dump_nanos == 25 * 4000000 + 5 * 1000);
    CHECK(dump.period_nanos == 4000000);
    CHECK(dump.by_source[static_cast<int>(record::CpuSource::ThreadTimer)] == 25);
    CHECK(dump.end_nanos >= dump.start_nanos);
    CHECK(dump.dropped == 0);

    // A full ring loses samples, says how many, and keeps their time under kLostStack.
    record_samples(slot, 2000, 1, 0);
    record::take_cpu_session(record::CpuSession::Dump, &dump);
    CHECK(dump.dropped > 0);
    CHECK(total_samples(dump) == 2000);
    record::CpuSampleKey lost;
    lost.stack = record::kLostStack;
    memcpy(lost.thread_name.data(), "cpu-test", 9);
    REQUIRE(dump.samples.count(lost) == 1);
    CHECK(dump.samples.at(lost).samples == static_cast<int64_t>(dump.dropped));
    CHECK(dump.samples.at(lost).nanos == static_cast<int64_t>(dump.dropped) * 4000000);

    record::end_current_cpu_slot();
    record::release_cpu_slot(slot);
    record::end_cpu_session(record::CpuSession::Dump);
}

TEST_CASE("cpu samples: a writer thread and a drain at once lose no sample's time") {
    unwind::publish_signal_modules();
    record::start_stack_table();
    record::set_cpu_period(1000000);
    record::begin_cpu_session(record::CpuSession::Dump);
    std::atomic<bool> done{false};
    constexpr int kSamples = 20000;
    std::thread writer([&] {
        unwind::learn_thread_stack();
        record::CpuThreadSlot* slot = own_slot();
        for (int i = 0; i < kSamples / 100; ++i) {
            record_samples(slot, 100, 1, 0);
            std::this_thread::yield();
        }
        record::end_current_cpu_slot();
        record::release_cpu_slot(slot);
        done = true;
    });
    int64_t seen = 0, lost = 0;
    record::CpuProfileData data;
    while (!done) {
        record::drain_cpu_samples();
        record::take_cpu_session(record::CpuSession::Dump, &data);
        seen += total_samples(data);
        lost += static_cast<int64_t>(data.dropped);
    }
    writer.join();
    record::take_cpu_session(record::CpuSession::Dump, &data);
    seen += total_samples(data);
    lost += static_cast<int64_t>(data.dropped);
    CHECK(seen == kSamples);
    // However slow the drain, the ring's first few hundred records always fit.
    CHECK(lost <= kSamples - 500);
    record::end_cpu_session(record::CpuSession::Dump);
}
