#pragma once
#include <string>
#include <string_view>

namespace graftlab {

// Writes `data` to `path` so that a reader (or a crash) sees either the old file or the complete new one:
// temp file in the same directory, fsync, rename, fsync of the directory. Throws FileError naming `path`.
void writeFileAtomically(const std::string& path, std::string_view data);

// Reads a whole file; throws FileError naming `path`.
std::string readFile(const std::string& path);

}  // namespace graftlab
