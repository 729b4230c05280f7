// Symbolizes addresses of this process's own libraries with gprof's SymbolCache (as a dump does),
// for the cross-check against llvm-symbolizer in test/e2e/symbols_test.cpp.
//
//   symbolize_tool NAME COUNT   # COUNT addresses spread evenly over the executable mappings of the
//                               # loaded module whose path contains NAME
//
// Prints "module <path>", "build_id <hex>", then per address "address <link address in hex>
// <frame count>" and one line per frame, innermost first:
// "frame <name>\t<system name>\t<file>\t<line>\t<start line>".
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "symbolize/elf_file.h"
#include "symbolize/modules.h"
#include "symbolize/symbols.h"

using namespace gprof::symbolize;

int main(int argc, char** argv) {
    if (argc != 3) return 2;
    std::string name = argv[1];
    size_t count = strtoul(argv[2], nullptr, 10);
    ModuleSnapshot snapshot;
    std::string error;
    if (!snapshot.capture(&error)) return 1;
    std::vector<const Module*> mine;
    for (const Module& m : snapshot.modules())
        if (m.path.find(name) != std::string::npos) mine.push_back(&m);
    if (mine.empty()) return 1;
    // The link address of a mapped address: through the file's PT_LOAD segments.
    MappedFile file;
    if (!file.open(mine[0]->path, &error)) return 1;
    ElfImage image(file.data(), file.size());
    std::vector<Elf64_Phdr> loads;
    for (size_t i = 0; i < image.program_header_count(); ++i) {
        Elf64_Phdr p;
        if (image.program_header(i, &p) && p.p_type == PT_LOAD) loads.push_back(p);
    }
    uintptr_t total = 0;
    for (const Module* m : mine) total += m->limit - m->start;
    printf("module %s\n", mine[0]->path.c_str());
    printf("build_id %s\n", mine[0]->build_id.c_str());
    SymbolCache cache;
    std::vector<SourceFrame> frames;
    for (size_t i = 0; i < count; ++i) {
        uintptr_t offset = total * i / count + 7, address = 0;
        const Module* module = nullptr;
        for (const Module* m : mine) {
            if (offset < m->limit - m->start) {
                address = m->start + offset;
                module = m;
                break;
            }
            offset -= m->limit - m->start;
        }
        if (module == nullptr) continue;
        uint64_t file_offset = address - module->start + module->file_offset, link = 0;
        for (const Elf64_Phdr& p : loads)
            if (file_offset >= p.p_offset && file_offset - p.p_offset < p.p_filesz)
                link = file_offset - p.p_offset + p.p_vaddr;
        if (link == 0) continue;
        bool dwarf = false;
        cache.symbolize(*module, address, &frames, &dwarf);
        printf("address %llx %zu\n", static_cast<unsigned long long>(link), frames.size());
        for (const SourceFrame& f : frames)
            printf("frame %s\t%s\t%s\t%lld\t%lld\n", f.function.name.c_str(),
                   f.function.system_name.c_str(), f.filename.c_str(),
                   static_cast<long long>(f.line), static_cast<long long>(f.start_line));
    }
    return 0;
}
