// A fresh directory for one unit test's files: a name of its own under the system's temporary
// directory (this process's pid in it), removed first if an earlier run left it behind.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

inline std::string temp_dir(const std::string& name) {
    std::string dir = std::filesystem::temp_directory_path().string() + "/gprof-unit-" + name +
                      "-" + std::to_string(getpid());
    std::filesystem::remove_all(dir);
    return dir;
}
