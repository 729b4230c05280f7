// All 20 replaceable C++ allocation functions ([new.delete]): throwing, nothrow, aligned, sized,
// for objects and arrays. Sized deletes ignore the size: a program's wrong size (a missing
// virtual destructor) must not corrupt the heap, and free() needs no size.
#include <dlfcn.h>

#include <cstddef>
#include <new>

#include "preload/backing.h"
#include "preload/routes.h"
#include "record/heap_events.h"

namespace b = gprof::backing;
namespace r = gprof::record;

namespace {

// The program's new-handler. gprof links libstdc++ in (meson.build), so std::get_new_handler()
// here would read gprof's private copy, which the program's std::set_new_handler() never sets:
// this asks the program's C++ runtime, found by name in the global scope, else a libstdc++.so.6
// loaded only locally (a C program that dlopen'ed a C++ library). Only a failed allocation comes
// here. (Exceptions need no such care: the C++ ABI lets one runtime catch another's, each object
// freed by the runtime that threw it.)
std::new_handler program_new_handler() {
    using Get = std::new_handler (*)();
    static constexpr char kName[] = "_ZSt15get_new_handlerv";
    if (auto get = reinterpret_cast<Get>(dlsym(RTLD_DEFAULT, kName))) return get();
    void* runtime = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (runtime == nullptr) return nullptr;  // no C++ runtime: no handler was ever set
    auto get = reinterpret_cast<Get>(dlsym(runtime, kName));
    std::new_handler handler = get != nullptr ? get() : nullptr;
    dlclose(runtime);  // drops the reference RTLD_NOLOAD took; its users keep it loaded
    return handler;
}

// [new.delete.single]: on failure call the new-handler until it makes memory available, and throw
// bad_alloc when there is none.
template <typename Allocate>
void* handle_failure(Allocate retry) {
    for (;;) {
        std::new_handler handler = program_new_handler();
        if (handler == nullptr) throw std::bad_alloc();
        handler();
        if (void* p = retry()) return p;
    }
}

void* allocate(std::size_t size, std::size_t align) {
    auto recorded = [=] {
        return r::allocation(size, align,
                             [=] { return align ? b::memalign(align, size) : b::malloc(size); });
    };
    if (void* p = recorded()) [[likely]]
        return p;
    return handle_failure(recorded);
}

void* allocate_nothrow(std::size_t size, std::size_t align) noexcept {
    try {
        return allocate(size, align);
    } catch (const std::bad_alloc&) {
        return nullptr;
    }
}

void release(void* p) noexcept {
    gprof::routes::table().free(p);
}

std::size_t value(std::align_val_t a) {
    return static_cast<std::size_t>(a);
}

}  // namespace

namespace gprof::routes {
void* recorded_new(size_t size) {
    return allocate(size, 0);
}
void* new_failed(size_t size, void* (*retry)(size_t) noexcept) {
    return handle_failure([=] { return retry(size); });
}
}  // namespace gprof::routes

// The plain forms go through preload/routes.h, which skips the recorder when nothing is sampled.
void* operator new(std::size_t n) {
    return gprof::routes::table().new_(n);
}
void* operator new[](std::size_t n) {
    return gprof::routes::table().new_(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    return allocate_nothrow(n, 0);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
    return allocate_nothrow(n, 0);
}
void* operator new(std::size_t n, std::align_val_t a) {
    return allocate(n, value(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
    return allocate(n, value(a));
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    return allocate_nothrow(n, value(a));
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    return allocate_nothrow(n, value(a));
}

void operator delete(void* p) noexcept {
    release(p);
}
void operator delete[](void* p) noexcept {
    release(p);
}
void operator delete(void* p, std::size_t) noexcept {
    release(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    release(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    release(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    release(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
    release(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
    release(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
    release(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
    release(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
    release(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
    release(p);
}
