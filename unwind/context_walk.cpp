#include "unwind/context_walk.h"

#include <pthread.h>

#include "unwind/frame_rules.h"
#include "unwind/stack_word.h"
#include "unwind/thread_bounds.h"

namespace gprof::unwind {
namespace {

// A thread's stack is never larger than this: a descriptor further above sp is not its own.
constexpr uintptr_t kMaxThreadStack = uintptr_t{1} << 30;

}  // namespace

StackRange stack_bounds_at(uintptr_t sp) {
    const StackBounds& known = thread_bounds();
    if (known.hi > 1 && sp >= known.lo && sp < known.hi) return {known.lo, known.hi};
    // pthread_self() is the thread pointer: a load from %fs, no call into glibc's state.
    uintptr_t self = reinterpret_cast<uintptr_t>(pthread_self());
    if (self > sp && self - sp < kMaxThreadStack) return {sp, self};
    return {0, 0};
}

ContextWalk walk_interrupted(const ucontext_t& context, PcRange skip, uintptr_t* pcs, int max) {
    ContextWalk walk;
    const greg_t* regs = context.uc_mcontext.gregs;
    Registers s{static_cast<uintptr_t>(regs[REG_RIP]), static_cast<uintptr_t>(regs[REG_RSP]),
                static_cast<uintptr_t>(regs[REG_RBP])};
    const StackRange stack = stack_bounds_at(s.sp);
    for (bool leaf = true;; leaf = false) {
        // The interrupted instruction's own rule; a caller's at its call instruction.
        const uintptr_t at = leaf ? s.ip : s.ip - 1;
        if (!skip.contains(at)) {
            if (walk.depth == max) {
                walk.cut = true;
                return walk;
            }
            pcs[walk.depth++] = at + 1;
        }
        if (s.sp < stack.lo || s.sp >= stack.hi) return walk;
        PackedRule rule;
        bool unknown_module = false;
        if (!signal_frame_rule(at, &rule, &unknown_module)) {
            walk.unknown_module = unknown_module;
            return walk;
        }
        if (rule.outermost()) {
            walk.complete = true;
            return walk;
        }
        uintptr_t cfa =
            (rule.cfa_is_rbp() ? s.bp : s.sp) + static_cast<intptr_t>(rule.cfa_offset());
        if (cfa <= s.sp || cfa - 8 < stack.lo || cfa > stack.hi) return walk;
        uintptr_t ra = load_stack_word(cfa - 8);
        uintptr_t bp = s.bp;
        if (rule.rbp_saved()) {
            uintptr_t saved_at = cfa + static_cast<intptr_t>(rule.rbp_offset());
            if (saved_at < stack.lo || saved_at > stack.hi - 8) return walk;
            bp = load_stack_word(saved_at);
        }
        if (ra < kLowestReturnAddress) {
            walk.complete = true;
            return walk;
        }
        s = {ra, cfa, bp};
    }
}

}  // namespace gprof::unwind
