#include "symbolize/modules.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <exception>
#include <mutex>

#include "base/files.h"
#include "symbolize/elf_file.h"

namespace gprof::symbolize {
namespace {

constexpr std::string_view kDeletedSuffix = " (deleted)";

// Parses a hexadecimal field at the front of *text and removes it; false if there is none.
bool take_hex(std::string_view* text, uint64_t* value) {
    uint64_t result = 0;
    size_t digits = 0;
    for (; digits < text->size() && digits < 16; ++digits) {
        char c = (*text)[digits];
        int nibble;
        if (c >= '0' && c <= '9') {
            nibble = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            nibble = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            nibble = c - 'A' + 10;
        } else {
            break;
        }
        result = result << 4 | static_cast<uint64_t>(nibble);
    }
    if (digits == 0) return false;
    text->remove_prefix(digits);
    *value = result;
    return true;
}

// Removes the next space-separated field from *text and returns it.
std::string_view take_field(std::string_view* text) {
    size_t begin = text->find_first_not_of(' ');
    if (begin == std::string_view::npos) {
        *text = {};
        return {};
    }
    text->remove_prefix(begin);
    size_t end = std::min(text->find(' '), text->size());
    std::string_view field = text->substr(0, end);
    text->remove_prefix(end);
    return field;
}

// One line: "start-limit perms offset major:minor inode   path".
bool parse_line(std::string_view line, Module* module, bool* executable) {
    uint64_t start, limit, offset;
    if (!take_hex(&line, &start) || line.empty() || line[0] != '-') return false;
    line.remove_prefix(1);
    if (!take_hex(&line, &limit)) return false;
    std::string_view perms = take_field(&line);
    if (perms.size() < 4) return false;
    std::string_view offset_field = take_field(&line);
    if (!take_hex(&offset_field, &offset)) return false;
    take_field(&line);  // device
    take_field(&line);  // inode
    size_t path_begin = line.find_first_not_of(' ');
    std::string_view path = path_begin == std::string_view::npos ? "" : line.substr(path_begin);

    module->start = start;
    module->limit = limit;
    module->file_offset = offset;
    module->is_file = !path.empty() && path[0] == '/';
    module->deleted = false;
    if (module->is_file && path.size() > kDeletedSuffix.size() &&
        path.substr(path.size() - kDeletedSuffix.size()) == kDeletedSuffix) {
        // The kernel appends this when the mapped file no longer has that name; pprof (like Go's
        // runtime) wants the name the file had.
        path.remove_suffix(kDeletedSuffix.size());
        module->deleted = true;
    }
    module->path = path.empty() ? "[anon]" : std::string(path);
    *executable = perms[2] == 'x';
    return true;
}

bool read_whole_file(const char* path, std::string* out, std::string* error) {
    int fd = base::open_read_only(path);
    if (fd == -1) {
        *error = std::string("cannot open ") + path + ": " + base::errno_text(errno);
        return false;
    }
    char buffer[16384];
    for (;;) {
        ssize_t n = read(fd, buffer, sizeof buffer);
        if (n > 0) {
            out->append(buffer, static_cast<size_t>(n));
        } else if (n == 0) {
            break;
        } else if (errno != EINTR) {
            *error = std::string("cannot read ") + path + ": " + base::errno_text(errno);
            close(fd);
            return false;
        }
    }
    close(fd);
    return true;
}

// What the dynamic loader knows of one loaded object.
struct LoadedObject {
    std::vector<std::pair<uintptr_t, uintptr_t>> segments;  // PT_LOAD ranges in memory
    std::string build_id;
    bool is_main = false;

    bool contains(uintptr_t address) const {
        for (const auto& [begin, end] : segments) {
            if (address >= begin && address < end) return true;
        }
        return false;
    }
};

int collect_loaded_object(dl_phdr_info* info, size_t, void* data) {
    auto* objects = static_cast<std::vector<LoadedObject>*>(data);
    // Called with the loader's lock held: allocating is allowed (the loader itself does), but
    // nothing may escape, so a failure only ends the walk.
    try {
        LoadedObject object;
        // glibc reports the main program first.
        object.is_main = objects->empty();
        std::vector<std::pair<uintptr_t, uintptr_t>> readable;
        for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
            const ElfW(Phdr)& segment = info->dlpi_phdr[i];
            if (segment.p_type != PT_LOAD) continue;
            uintptr_t begin = info->dlpi_addr + segment.p_vaddr;
            object.segments.emplace_back(begin, begin + segment.p_memsz);
            if (segment.p_flags & PF_R) readable.emplace_back(begin, begin + segment.p_memsz);
        }
        for (ElfW(Half) i = 0; i < info->dlpi_phnum && object.build_id.empty(); ++i) {
            const ElfW(Phdr)& segment = info->dlpi_phdr[i];
            if (segment.p_type != PT_NOTE) continue;
            uintptr_t begin = info->dlpi_addr + segment.p_vaddr;
            // Reading the notes from memory gives the build ID of the code that runs, even if its
            // file was since deleted or replaced; they are read only where a readable segment
            // maps them.
            bool mapped = std::any_of(readable.begin(), readable.end(), [&](const auto& range) {
                return begin >= range.first && segment.p_memsz <= range.second - begin;
            });
            if (mapped) {
                object.build_id = build_id_from_notes(reinterpret_cast<const uint8_t*>(begin),
                                                      segment.p_memsz, segment.p_align);
            }
        }
        objects->push_back(std::move(object));
        return 0;
    } catch (...) {
        return 1;
    }
}

std::string build_id_of_file(const std::string& path) {
    MappedFile file;
    std::string ignored;
    if (!file.open(path, &ignored)) return "";
    return build_id_of_image(ElfImage(file.data(), file.size()));
}

std::string executable_path() {
    char buffer[4096];
    ssize_t n = readlink("/proc/self/exe", buffer, sizeof buffer);
    if (n <= 0 || static_cast<size_t>(n) >= sizeof buffer) return "";
    std::string_view path(buffer, static_cast<size_t>(n));
    if (path.size() > kDeletedSuffix.size() &&
        path.substr(path.size() - kDeletedSuffix.size()) == kDeletedSuffix) {
        path.remove_suffix(kDeletedSuffix.size());
    }
    return std::string(path);
}

// The mappings of dlclose'd libraries, oldest first. Never destroyed (a dump at exit may run after
// static destructors).
struct RetiredModules {
    std::mutex mutex;
    std::deque<Module> modules;
};
RetiredModules& retired_modules() {
    static RetiredModules* retired = new RetiredModules;
    return *retired;
}

}  // namespace

void retire_library(void* handle) noexcept {
    try {
        struct link_map* map = nullptr;
        if (handle == nullptr || dlinfo(handle, RTLD_DI_LINKMAP, &map) != 0 || map == nullptr ||
            map->l_name == nullptr || map->l_name[0] == '\0')
            return;
        const std::string path = map->l_name;
        ModuleSnapshot now;
        std::string error;
        if (!now.capture(&error)) return;
        std::vector<Module> mine;
        for (const Module& module : now.modules()) {
            if (module.path == path && !module.is_main) mine.push_back(module);
        }
        if (mine.empty()) return;
        RetiredModules& retired = retired_modules();
        std::lock_guard<std::mutex> lock(retired.mutex);
        for (Module& module : mine) {
            // A library closed and opened again at the same place is remembered once.
            bool known =
                std::any_of(retired.modules.begin(), retired.modules.end(), [&](const Module& m) {
                    return m.start == module.start && m.limit == module.limit &&
                           m.path == module.path && m.build_id == module.build_id;
                });
            if (known) continue;
            if (retired.modules.size() >= kMaxRetiredModules) retired.modules.pop_front();
            retired.modules.push_back(std::move(module));
        }
    } catch (...) {
    }
}

std::vector<Module> parse_executable_mappings(std::string_view maps_text) {
    std::vector<Module> modules;
    while (!maps_text.empty()) {
        size_t end = std::min(maps_text.find('\n'), maps_text.size());
        std::string_view line = maps_text.substr(0, end);
        maps_text.remove_prefix(std::min(end + 1, maps_text.size()));
        Module module;
        bool executable = false;
        if (parse_line(line, &module, &executable) && executable && module.limit > module.start) {
            modules.push_back(std::move(module));
        }
    }
    return modules;
}

bool ModuleSnapshot::capture(std::string* error) noexcept {
    modules_.clear();
    try {
        std::string maps_text;
        if (!read_whole_file("/proc/self/maps", &maps_text, error)) return false;
        std::vector<Module> modules = parse_executable_mappings(maps_text);

        std::vector<LoadedObject> objects;
        dl_iterate_phdr(collect_loaded_object, &objects);

        for (Module& module : modules) {
            const LoadedObject* owner = nullptr;
            for (const LoadedObject& object : objects) {
                if (object.contains(module.start)) {
                    owner = &object;
                    break;
                }
            }
            if (owner != nullptr) {
                module.is_main = owner->is_main;
                module.build_id = owner->build_id;
            } else if (module.is_file && !module.deleted) {
                // Mapped by someone other than the loader (a JIT, a custom loader): ask the file.
                module.build_id = build_id_of_file(module.path);
            }
        }
        if (std::none_of(modules.begin(), modules.end(),
                         [](const Module& m) { return m.is_main; })) {
            // The loader told nothing (or nothing matched): fall back on the kernel's idea of the
            // executable.
            std::string executable = executable_path();
            for (Module& module : modules) module.is_main = module.path == executable;
        }
        {
            RetiredModules& retired = retired_modules();
            std::lock_guard<std::mutex> lock(retired.mutex);
            for (const Module& old : retired.modules) {
                bool overlapped = std::any_of(modules.begin(), modules.end(), [&](const Module& m) {
                    return m.start < old.limit && old.start < m.limit;
                });
                if (!overlapped) modules.push_back(old);
            }
        }
        assign(std::move(modules));
        return true;
    } catch (const std::exception& e) {
        modules_.clear();
        *error = std::string("cannot list the process's modules: ") + e.what();
        return false;
    } catch (...) {
        modules_.clear();
        *error = "cannot list the process's modules";
        return false;
    }
}

void ModuleSnapshot::assign(std::vector<Module> modules) {
    modules_ = std::move(modules);
    std::sort(modules_.begin(), modules_.end(),
              [](const Module& a, const Module& b) { return a.start < b.start; });
}

const Module* ModuleSnapshot::find(uintptr_t address) const {
    auto after = std::upper_bound(modules_.begin(), modules_.end(), address,
                                  [](uintptr_t a, const Module& m) { return a < m.start; });
    if (after == modules_.begin()) return nullptr;
    const Module& candidate = *(after - 1);
    return address < candidate.limit ? &candidate : nullptr;
}

}  // namespace gprof::symbolize
