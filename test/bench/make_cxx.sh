#!/bin/sh
# A small C++ project built with `make -j2`, every process of the build (make, the shells, g++,
# cc1plus, as, ld) started under whatever LD_PRELOAD the caller set: what a library preloaded
# over a whole build costs. 16 files at scale 1 (at least 2), each using the standard library's
# maps, strings and streams, then linked and run.
# Usage: make_cxx.sh [scale=1.0] WORKDIR
set -eu
scale=${1:-1}
work=${2:?usage: make_cxx.sh [scale] WORKDIR}
n=$(awk -v s="$scale" 'BEGIN { n = int(16 * s + 0.5); print (n < 2 ? 2 : n) }')
dir="$work/make_cxx.$$"
rm -rf "$dir"
mkdir -p "$dir"
i=1
while [ "$i" -le "$n" ]; do
    cat > "$dir/f$i.cpp" <<SRC
#include <algorithm>
#include <map>
#include <sstream>
#include <string>
#include <vector>
std::string f$i(int n) {
    std::map<std::string, std::vector<int>> m;
    for (int k = 0; k < n; ++k) m[std::to_string(k % 7)].push_back(k * $i);
    std::ostringstream out;
    for (auto& [key, v] : m) { std::sort(v.begin(), v.end()); out << key << v.size(); }
    return out.str();
}
SRC
    i=$((i + 1))
done
{
    echo '#include <cstdio>'
    echo '#include <string>'
    i=1; while [ "$i" -le "$n" ]; do echo "std::string f$i(int);"; i=$((i + 1)); done
    echo 'int main() { std::string s;'
    i=1; while [ "$i" -le "$n" ]; do echo "s += f$i(10);"; i=$((i + 1)); done
    printf '%s\n' 'std::printf("%zu\n", s.size()); }'
} > "$dir/main.cpp"
printf '%s\n' 'OBJS := $(patsubst %.cpp,%.o,$(wildcard *.cpp))' 'app: $(OBJS)' \
    '	g++ -o $@ $^' '%.o: %.cpp' '	g++ -O1 -c $< -o $@' > "$dir/Makefile"
make -s -j2 -C "$dir" >/dev/null
out=$("$dir/app")
rm -rf "$dir"
echo "build $n files $out"
