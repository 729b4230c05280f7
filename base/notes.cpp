#include "base/notes.h"

#include <atomic>
#include <cstring>

namespace gprof::base {
namespace {

constinit std::atomic<const char*> g_notes[kMaxNotes] = {};

}  // namespace

void note(const char* text) {
    for (std::atomic<const char*>& slot : g_notes) {
        const char* expected = nullptr;
        if (slot.compare_exchange_strong(expected, text, std::memory_order_acq_rel)) return;
        if (expected == text || strcmp(expected, text) == 0) return;
    }
}

int notes(const char** out) {
    int n = 0;
    for (std::atomic<const char*>& slot : g_notes) {
        const char* text = slot.load(std::memory_order_acquire);
        if (text == nullptr) break;
        out[n++] = text;
    }
    return n;
}

}  // namespace gprof::base
