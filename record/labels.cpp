#include "record/labels.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "base/os_memory.h"
#include "base/reentry_guard.h"
#include "base/spin_lock.h"

namespace gprof::record {

constinit thread_local ThreadLabels t_labels [[gnu::tls_model("initial-exec")]] = {};

namespace {

struct Node {
    uint32_t parent;
    uint32_t key_length, value_length;
    uint64_t text;  // offset of key then value in the text arena
};

// Twice as many index slots as nodes: linear probes stay short at the cap.
constexpr uint32_t kIndexSlots = kMaxLabelSets * 2;

struct Table {
    base::SpinLock lock;
    Node* nodes = nullptr;  // nodes[0] unused: id 0 is "no labels"
    std::atomic<uint32_t>* index = nullptr;
    char* text = nullptr;
    std::atomic<uint32_t> count{0};  // nodes in use, the unused 0 included once started
    std::atomic<size_t> text_used{0};
    bool started = false;
};
constinit Table g_table;

uint64_t hash_of(uint32_t parent, std::string_view key, std::string_view value) {
    // FNV-1a over both texts and the parent, with the lengths so ("ab","c") != ("a","bc").
    uint64_t h = 0xCBF29CE484222325ULL ^ parent;
    auto mix = [&h](std::string_view s) {
        for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ULL;
        h = (h ^ s.size()) * 0x100000001B3ULL;
    };
    mix(key);
    mix(value);
    return h ^ (h >> 29);
}

bool matches(const Node& n, uint32_t parent, std::string_view key, std::string_view value) {
    return n.parent == parent && n.key_length == key.size() && n.value_length == value.size() &&
           memcmp(g_table.text + n.text, key.data(), key.size()) == 0 &&
           memcmp(g_table.text + n.text + key.size(), value.data(), value.size()) == 0;
}

// The node's slot in the index, or the empty slot where it would go.
std::atomic<uint32_t>* probe(uint64_t hash, uint32_t parent, std::string_view key,
                             std::string_view value, uint32_t* found) {
    for (uint32_t i = static_cast<uint32_t>(hash) & (kIndexSlots - 1);;
         i = (i + 1) & (kIndexSlots - 1)) {
        uint32_t id = g_table.index[i].load(std::memory_order_acquire);
        if (id == 0 || matches(g_table.nodes[id], parent, key, value)) {
            *found = id;
            return &g_table.index[i];
        }
    }
}

bool start_locked() {
    if (g_table.started) return true;
    g_table.nodes = static_cast<Node*>(base::os_reserve(sizeof(Node) * kMaxLabelSets));
    g_table.index = static_cast<std::atomic<uint32_t>*>(
        base::os_reserve(sizeof(std::atomic<uint32_t>) * kIndexSlots));
    g_table.text = static_cast<char*>(base::os_reserve(kMaxLabelTextBytes));
    if (g_table.nodes == nullptr || g_table.index == nullptr || g_table.text == nullptr) {
        base::os_release(g_table.nodes, sizeof(Node) * kMaxLabelSets);
        base::os_release(g_table.index, sizeof(std::atomic<uint32_t>) * kIndexSlots);
        base::os_release(g_table.text, kMaxLabelTextBytes);
        g_table.nodes = nullptr;
        g_table.index = nullptr;
        g_table.text = nullptr;
        return false;
    }
    g_table.count.store(1, std::memory_order_release);
    g_table.started = true;
    return true;
}

// The set (parent + (key, value)); 0 when the table is full.
uint32_t intern(uint32_t parent, std::string_view key, std::string_view value) {
    const uint64_t hash = hash_of(parent, key, value);
    uint32_t id = 0;
    if (g_table.count.load(std::memory_order_acquire) != 0) {  // started: look up without a lock
        probe(hash, parent, key, value, &id);
        if (id != 0) return id;
    }
    base::SpinGuard guard(g_table.lock);
    if (!start_locked()) return 0;
    std::atomic<uint32_t>* slot = probe(hash, parent, key, value, &id);
    if (id != 0) return id;
    uint32_t n = g_table.count.load(std::memory_order_relaxed);
    size_t bytes = key.size() + value.size();
    const size_t used = g_table.text_used.load(std::memory_order_relaxed);
    if (n >= kMaxLabelSets || used + bytes > kMaxLabelTextBytes) return 0;
    memcpy(g_table.text + used, key.data(), key.size());
    memcpy(g_table.text + used + key.size(), value.data(), value.size());
    g_table.nodes[n] =
        Node{parent, static_cast<uint32_t>(key.size()), static_cast<uint32_t>(value.size()), used};
    g_table.text_used.store(used + bytes, std::memory_order_relaxed);
    g_table.count.store(n + 1, std::memory_order_release);
    slot->store(n, std::memory_order_release);  // published whole
    return n;
}

// ---- Which live thread has which set, for the threads profile. ----

constexpr uint32_t kThreadSlots = 1u << 15;
constexpr int32_t kTombstone = -1;
struct ThreadSlot {
    std::atomic<int32_t> tid{0};
    std::atomic<uint32_t> set{0};
};
constinit ThreadSlot g_threads[kThreadSlots];
constinit thread_local ThreadSlot* t_slot [[gnu::tls_model("initial-exec")]] = nullptr;

pthread_key_t g_exit_key;
pthread_once_t g_exit_once = PTHREAD_ONCE_INIT;
bool g_exit_key_made = false;

uint32_t thread_home(pid_t tid) {
    return (static_cast<uint32_t>(tid) * 0x9E3779B9u) >> 17;  // 15 bits
}

// A thread's end (its thread-specific value's destructor) frees its slot.
void on_thread_end(void* slot) {
    static_cast<ThreadSlot*>(slot)->set.store(0, std::memory_order_relaxed);
    static_cast<ThreadSlot*>(slot)->tid.store(kTombstone, std::memory_order_release);
}

void make_exit_key() {
    g_exit_key_made = pthread_key_create(&g_exit_key, on_thread_end) == 0;
}

// The calling thread's slot, claimed at its first push (null when the table is full).
ThreadSlot* own_slot() {
    if (t_labels.registered) return t_slot;
    t_labels.registered = true;
    pthread_once(&g_exit_once, make_exit_key);
    if (!g_exit_key_made) return nullptr;
    const pid_t tid = gettid();
    for (uint32_t probes = 0, i = thread_home(tid); probes < kThreadSlots;
         ++probes, i = (i + 1) & (kThreadSlots - 1)) {
        int32_t seen = g_threads[i].tid.load(std::memory_order_relaxed);
        if (seen == tid) {  // left by an earlier thread of this id that ended unseen
            t_slot = &g_threads[i];
            break;
        }
        if ((seen == 0 || seen == kTombstone) &&
            g_threads[i].tid.compare_exchange_strong(seen, tid, std::memory_order_acq_rel)) {
            t_slot = &g_threads[i];
            break;
        }
    }
    if (t_slot != nullptr) {
        base::ReentryGuard guard;  // pthread_setspecific may allocate a second-level array
        pthread_setspecific(g_exit_key, t_slot);
    }
    return t_slot;
}

void set_current(uint32_t set) {
    t_labels.current = set;
    if (ThreadSlot* slot = own_slot()) slot->set.store(set, std::memory_order_relaxed);
}

}  // namespace

LabelPushResult push_label(std::string_view key, std::string_view value) {
    ThreadLabels& t = t_labels;
    if (t.depth >= kMaxLabelDepth) {
        ++t.depth;  // counted, so the matching pop undoes this push and not a kept one
        return LabelPushResult::TooDeep;
    }
    uint32_t set = intern(t.current, key, value);
    t.stack[t.depth++] = t.current;
    if (set == 0) return LabelPushResult::TableFull;  // the pushed entry repeats the current set
    set_current(set);
    return LabelPushResult::Pushed;
}

void push_unchanged() {
    ThreadLabels& t = t_labels;
    if (t.depth < kMaxLabelDepth) t.stack[t.depth] = t.current;
    ++t.depth;
}

bool pop_label() {
    ThreadLabels& t = t_labels;
    if (t.depth == 0) return false;
    if (--t.depth < kMaxLabelDepth && t.stack[t.depth] != t.current) set_current(t.stack[t.depth]);
    return true;
}

void label_set_pairs(uint32_t id, std::vector<std::pair<std::string, std::string>>* out) {
    out->clear();
    if (id == 0 || id >= g_table.count.load(std::memory_order_acquire)) return;
    for (uint32_t depth = 0; id != 0 && depth < kMaxLabelSets; ++depth) {
        const Node& n = g_table.nodes[id];
        std::string_view key(g_table.text + n.text, n.key_length);
        bool seen = std::any_of(out->begin(), out->end(),
                                [&](const auto& pair) { return pair.first == key; });
        if (!seen)
            out->emplace_back(std::string(key),
                              std::string(g_table.text + n.text + n.key_length, n.value_length));
        id = n.parent;
    }
    std::sort(out->begin(), out->end());
}

uint32_t label_set_of_thread(pid_t tid) {
    for (uint32_t probes = 0, i = thread_home(tid); probes < kThreadSlots;
         ++probes, i = (i + 1) & (kThreadSlots - 1)) {
        int32_t seen = g_threads[i].tid.load(std::memory_order_acquire);
        if (seen == tid) return g_threads[i].set.load(std::memory_order_relaxed);
        if (seen == 0) return 0;
    }
    return 0;
}

void lock_labels() {
    g_table.lock.lock();
}

void unlock_labels() {
    g_table.lock.unlock();
}

size_t label_bytes_used() {
    uint32_t n = g_table.count.load(std::memory_order_acquire);
    if (n == 0) return 0;
    // The index's slots are spread over it: count two per node, its load at most.
    return (sizeof(Node) + 2 * sizeof(std::atomic<uint32_t>)) * n +
           g_table.text_used.load(std::memory_order_relaxed);
}

}  // namespace gprof::record
