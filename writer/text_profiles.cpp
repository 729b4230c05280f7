#include "writer/text_profiles.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <vector>

#include "base/files.h"
#include "record/labels.h"
#include "record/threads.h"
#include "unwind/thread_stacks.h"
#include "writer/thread_builders.h"

namespace gprof::writer {
namespace {

void append(std::string* out, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void append(std::string* out, const char* fmt, ...) {
    char line[512];
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    if (n < 0) return;
    if (static_cast<size_t>(n) < sizeof line) {
        out->append(line, static_cast<size_t>(n));
        return;
    }
    std::string longer(static_cast<size_t>(n) + 1, '\0');
    va_start(args, fmt);
    vsnprintf(longer.data(), longer.size(), fmt, args);
    va_end(args);
    out->append(longer.data(), static_cast<size_t>(n));
}

void append_addresses(const uintptr_t* pcs, size_t depth, std::string* out) {
    out->append(" @");
    for (size_t i = 0; i < depth; ++i) append(out, " %#" PRIxPTR, pcs[i]);
    out->push_back('\n');
}

// The frames of one return address (innermost inlined first): empty when nothing names it. The
// address looked up is pc - 1, inside the call, as the protobuf profiles' locations are.
std::vector<symbolize::SourceFrame> frames_of(uintptr_t pc, const TextNames& names,
                                              const symbolize::Module** module) {
    std::vector<symbolize::SourceFrame> frames;
    *module = names.modules != nullptr ? names.modules->find(pc - 1) : nullptr;
    bool from_dwarf = false;
    if (*module != nullptr && names.symbols != nullptr)
        names.symbols->symbolize(**module, pc - 1, &frames, &from_dwarf);
    return frames;
}

// Go's printStackRecord: `#\t<pc>\t<function>\t<file>:<line>` per frame, then a blank line.
// (Go adds +<offset in the function>; the readers of these files skip the line either way.)
void append_frames(const uintptr_t* pcs, size_t depth, const TextNames& names, std::string* out) {
    for (size_t i = 0; i < depth; ++i) {
        const symbolize::Module* module = nullptr;
        std::vector<symbolize::SourceFrame> frames = frames_of(pcs[i], names, &module);
        if (frames.empty()) {
            append(out, "#\t%#" PRIxPTR "\n", pcs[i]);
            continue;
        }
        for (const symbolize::SourceFrame& f : frames)
            append(out, "#\t%#" PRIxPTR "\t%s\t%s:%" PRId64 "\n", pcs[i], f.function.name.c_str(),
                   f.filename.c_str(), f.line);
    }
    out->push_back('\n');
}

// {"key":"value", ...} as Go prints a goroutine's labels (its map, keys sorted).
std::string labels_text(const std::vector<std::pair<std::string, std::string>>& labels) {
    std::string text = "{";
    for (size_t i = 0; i < labels.size(); ++i) {
        if (i) text.append(", ");
        append(&text, "\"%s\":\"%s\"", labels[i].first.c_str(), labels[i].second.c_str());
    }
    text.push_back('}');
    return text;
}

// The state letter of /proc/self/task/<tid>/stat, in words.
const char* thread_state(pid_t tid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", static_cast<int>(tid));
    int fd = base::open_read_only(path);
    if (fd < 0) return "unknown";
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return "unknown";
    buf[n] = '\0';
    const char* paren = strrchr(buf, ')');  // the name may hold spaces and parentheses
    if (paren == nullptr || paren[1] != ' ') return "unknown";
    switch (paren[2]) {
        case 'R':
            return "running";
        case 'S':
            return "sleeping";
        case 'D':
            return "disk sleep";
        case 'T':
            return "stopped";
        case 't':
            return "tracing stop";
        case 'Z':
            return "zombie";
        case 'X':
            return "dead";
        case 'I':
            return "idle";
        default:
            return "unknown";
    }
}

}  // namespace

void append_memory_map(std::string* out) {
    out->append("\n--- Memory map: ---\n");
    int fd = base::open_read_only("/proc/self/maps");
    if (fd < 0) return;
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) != 0;) {
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        out->append(buf, static_cast<size_t>(n));
    }
    close(fd);
}

void heap_text(record::HeapProfile& heap, const record::StackTable& stacks, int64_t rate,
               std::string_view memstats, const TextNames& names, std::string* out) {
    std::vector<record::HeapBucket> buckets;
    buckets.reserve(heap.bucket_count() + 1024);
    heap.for_each_bucket([&](const record::HeapBucket& b) {
        if (buckets.size() < buckets.capacity()) buckets.push_back(b);
    });
    record::HeapBucket total{};
    for (const record::HeapBucket& b : buckets) {
        total.allocs += b.allocs;
        total.alloc_bytes += b.alloc_bytes;
        total.frees += b.frees;
        total.free_bytes += b.free_bytes;
    }
    // Go: "Technically the rate is MemProfileRate not 2*MemProfileRate, but early versions of the
    // C++ heap profiler reported 2*MemProfileRate, so that's what pprof has come to expect."
    append(out,
           "heap profile: %" PRIu64 ": %" PRIu64 " [%" PRIu64 ": %" PRIu64 "] @ heap/%" PRId64 "\n",
           total.allocs - total.frees, total.alloc_bytes - total.free_bytes, total.allocs,
           total.alloc_bytes, 2 * rate);
    uintptr_t pcs[record::StackTable::kMaxDepth];
    for (const record::HeapBucket& b : buckets) {
        int depth = stacks.frames(b.stack_id, pcs, record::StackTable::kMaxDepth);
        if (depth == 0) continue;
        append(out, "%" PRIu64 ": %" PRIu64 " [%" PRIu64 ": %" PRIu64 "]", b.allocs - b.frees,
               b.alloc_bytes - b.free_bytes, b.allocs, b.alloc_bytes);
        append_addresses(pcs, static_cast<size_t>(depth), out);
        if (b.labels != 0) {
            std::vector<std::pair<std::string, std::string>> labels;
            record::label_set_pairs(b.labels, &labels);
            append(out, "# labels: %s\n", labels_text(labels).c_str());
        }
        append_frames(pcs, static_cast<size_t>(depth), names, out);
    }
    out->append(memstats);
}

void contention_text(const record::StackCounters& counters, const record::StackTable& stacks,
                     bool mutex, const TextNames& names, std::string* out) {
    append(out, "--- %s:\ncycles/second=1000000000\n", mutex ? "mutex" : "contention");
    uintptr_t pcs[record::StackTable::kMaxDepth];
    for (const record::StackCounts& c : counters.snapshot()) {
        int depth = stacks.frames(c.stack_id, pcs, record::StackTable::kMaxDepth);
        if (depth == 0) continue;
        // As the protobuf form rounds them (writer/contention_builder.cpp).
        int64_t count =
            (c.count + record::StackCounters::kCountUnit / 2) / record::StackCounters::kCountUnit;
        append(out, "%" PRId64 " %" PRId64, c.value, count > 0 ? count : 1);
        append_addresses(pcs, static_cast<size_t>(depth), out);
        append_frames(pcs, static_cast<size_t>(depth), names, out);
    }
}

void count_text(std::string_view name, std::span<const CountRecord> records, const TextNames& names,
                std::string* out) {
    int64_t total = 0;
    for (const CountRecord& r : records) total += r.count;
    append(out, "%.*s profile: total %" PRId64 "\n", static_cast<int>(name.size()), name.data(),
           total);
    for (const CountRecord& r : records) {
        append(out, "%" PRId64, r.count);
        append_addresses(r.pcs.data(), r.pcs.size(), out);
        if (!r.labels.empty()) append(out, "# labels: %s\n", labels_text(r.labels).c_str());
        append_frames(r.pcs.data(), r.pcs.size(), names, out);
    }
}

void threads_dump_text(int dump_signal, const TextNames& names, std::string* out) {
    unwind::ThreadCensus census;
    std::vector<unwind::ThreadSnapshot> threads = unwind::capture_all_threads(
        [](pid_t tid) { return record::thread_registry().is_own(tid); }, dump_signal, &census);
    std::vector<std::pair<std::string, std::string>> labels;
    for (const unwind::ThreadSnapshot& t : threads) {
        append(out, "goroutine %d [%s, \"%s\"]:\n", static_cast<int>(t.tid), thread_state(t.tid),
               t.name);
        record::label_set_pairs(record::label_set_of_thread(t.tid), &labels);
        if (!labels.empty()) append(out, "labels: %s\n", labels_text(labels).c_str());
        if (t.depth == 0) out->append("(no stack: the thread could not be walked)\n");
        for (int i = 0; i < t.depth; ++i) {
            const symbolize::Module* module = nullptr;
            std::vector<symbolize::SourceFrame> frames = frames_of(t.pcs[i], names, &module);
            if (frames.empty()) {
                append(out, "%#" PRIxPTR "()\n", t.pcs[i]);
                if (module != nullptr)
                    append(out, "\t%s+%#" PRIxPTR "\n", module->path.c_str(),
                           t.pcs[i] - module->start + module->file_offset);
                continue;
            }
            for (const symbolize::SourceFrame& f : frames) {
                const std::string& name = f.function.name;
                append(out, "%s%s\n", name.c_str(),
                       name.find('(') == std::string::npos ? "()" : "");
                if (!f.filename.empty())
                    append(out, "\t%s:%" PRId64 "\n", f.filename.c_str(), f.line);
                else if (module != nullptr)
                    append(out, "\t%s+%#" PRIxPTR "\n", module->path.c_str(),
                           t.pcs[i] - module->start + module->file_offset);
            }
        }
        out->push_back('\n');
    }
}

}  // namespace gprof::writer
