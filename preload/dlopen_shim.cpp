// dlopen with RTLD_DEEPBIND: the library's own references to malloc and free bind to glibc's
// (its dependency) before the preloaded ones, while the program's are gprof's. With gprof's
// jemalloc behind the program's, blocks that cross between the two (made by one, freed by the
// other) are handed to an allocator that did not make them: a crash. So, in jemalloc mode,
// RTLD_DEEPBIND is taken out of the mode (as heaptrack does): the library's malloc and free are
// gprof's, like everyone else's. In glibc mode both are glibc's heap and blocks cross safely: the
// flag is kept, and the library's allocations and frees bypass gprof. Either is said once per
// process, in one `gprof:` line naming the first such library, and in every profile's comments.
// Where another allocator comes before gprof (backing::foreign()), the call is left as it is.
//
// glibc's dlopen takes the calling object from its return address: $ORIGIN, the caller's
// RPATH/RUNPATH and the namespace all depend on it. So the real dlopen is reached by a tail jump
// that leaves the program's return address in place, from an assembly stub (x86-64 only, as all
// of gprof): a mode without RTLD_DEEPBIND costs a test, a branch and an indirect jump. The
// pointer starts at the stub's slow path, which finds the real dlopen (dlvsym(RTLD_NEXT); any
// thread, at any time, even before gprof's constructor: every racer stores the same value).
//
// dlmopen is not interposed: a library in a new namespace has a libc of its own (and none of the
// preloaded libraries), so it never reaches gprof's malloc, with or without RTLD_DEEPBIND, and
// blocks cannot cross between namespaces without gprof either.
#include <dlfcn.h>

#include <atomic>
#include <cerrno>
#include <cstdio>

#include "base/log.h"
#include "base/notes.h"
#include "base/reentry_guard.h"
#include "preload/backing.h"

#if !defined(__x86_64__)
#error "preload/dlopen_shim.cpp: the tail jump into glibc's dlopen is written for x86-64"
#endif

extern "C" {
[[gnu::visibility("hidden")]] void gprof_dlopen_slow();
// Where the stub jumps for a mode without RTLD_DEEPBIND: the real dlopen once found, until then
// the stub's slow path (defined with the stub, so that it holds that before any code runs).
[[gnu::visibility("hidden")]] extern void* gprof_real_dlopen;
// The slow path's work: finds the real dlopen and returns the mode to pass it.
[[gnu::visibility("hidden")]] int gprof_dlopen_mode(const char* file, int mode) noexcept;
}

// dlopen(file, mode): file in rdi, mode in esi. The slow path keeps both across the call (and
// the stack 16-byte aligned for it), then jumps with the program's return address on top.
__asm__(R"(
    .pushsection .text
    .globl dlopen
    .type dlopen, @function
    .globl gprof_dlopen_slow
    .hidden gprof_dlopen_slow
    .p2align 4
dlopen:
    .cfi_startproc
    testl $0x8, %esi
    jnz gprof_dlopen_slow
    jmp *gprof_real_dlopen(%rip)
gprof_dlopen_slow:
    pushq %rdi
    .cfi_adjust_cfa_offset 8
    pushq %rsi
    .cfi_adjust_cfa_offset 8
    subq $8, %rsp
    .cfi_adjust_cfa_offset 8
    call gprof_dlopen_mode
    addq $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq %rsi
    .cfi_adjust_cfa_offset -8
    movl %eax, %esi
    popq %rdi
    .cfi_adjust_cfa_offset -8
    movq gprof_real_dlopen(%rip), %rax
    leaq gprof_dlopen_slow(%rip), %rcx
    cmpq %rcx, %rax
    je 1f
    jmp *%rax
1:
    xorl %eax, %eax
    ret
    .cfi_endproc
    .size dlopen, .-dlopen
    .popsection

    .pushsection .data.rel.local,"aw"
    .p2align 3
    .globl gprof_real_dlopen
    .hidden gprof_real_dlopen
    .type gprof_real_dlopen, @object
    .size gprof_real_dlopen, 8
gprof_real_dlopen:
    .quad gprof_dlopen_slow
    .popsection
)");
static_assert(RTLD_DEEPBIND == 0x8, "the stub tests the flag's bit");

namespace {

// glibc 2.34 moved dlopen into libc (GLIBC_2.34); older ones have it in libdl (GLIBC_2.2.5).
void find_real_dlopen() {
    gprof::base::ReentryGuard guard;  // dlvsym may allocate: gprof's own
    void* real = dlvsym(RTLD_NEXT, "dlopen", "GLIBC_2.34");
    if (real == nullptr) real = dlvsym(RTLD_NEXT, "dlopen", "GLIBC_2.2.5");
    if (real == nullptr) real = dlsym(RTLD_NEXT, "dlopen");
    if (real != nullptr) __atomic_store_n(&gprof_real_dlopen, real, __ATOMIC_RELEASE);
}

// Found at start too, so that the program's own calls never take the slow path for it.
__attribute__((constructor)) void start() {
    int saved = errno;
    find_real_dlopen();
    errno = saved;
}

std::atomic<bool> g_said{false};
char g_note[512];

void say_once(bool dropped, const char* file) {
    if (g_said.exchange(true, std::memory_order_acq_rel)) return;
    const char* name = file != nullptr ? file : "the program itself";
    if (dropped)
        snprintf(g_note, sizeof g_note,
                 "gprof: RTLD_DEEPBIND dropped from the dlopen of %.300s (and from any later "
                 "one): its malloc and free are gprof's, as the program's are",
                 name);
    else
        snprintf(g_note, sizeof g_note,
                 "gprof: %.300s was opened with RTLD_DEEPBIND (later libraries may be too): its "
                 "malloc and free are glibc's, not gprof's: its allocations are not in the heap "
                 "profile, and blocks it frees may stay there as in use",
                 name);
    gprof::log::problem("%s", g_note + sizeof "gprof: " - 1);
    gprof::base::note(g_note);
}

}  // namespace

int gprof_dlopen_mode(const char* file, int mode) noexcept {
    int saved = errno;
    if (__atomic_load_n(&gprof_real_dlopen, __ATOMIC_ACQUIRE) ==
        reinterpret_cast<void*>(gprof_dlopen_slow))
        find_real_dlopen();
    if ((mode & RTLD_DEEPBIND) != 0 && !gprof::backing::foreign()) {
        gprof::base::ReentryGuard guard;
        if (gprof::backing::jemalloc()) {
            mode &= ~RTLD_DEEPBIND;
            say_once(true, file);
        } else {
            say_once(false, file);
        }
    }
    errno = saved;
    return mode;
}
