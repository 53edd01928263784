#pragma once
#include <string>
#include <string_view>

namespace graftlab {

// Writes `data` to `path` so that a reader (or a crash) sees either the old file or the complete new one:
// temp file in the same directory, fsync, rename, fsync of the directory. Throws FileError naming `path`.
void writeFileAtomically(const std::string& path, std::string_view data);

// The temp name writeFileAtomically uses for `path` (same directory, hidden, with the process id).
std::string tempPathFor(const std::string& path);
// Makes a complete temp file the file at `path`: fsync, rename, fsync of the directory (the temp file is removed on
// failure). Throws FileError naming `path`.
void commitTempFile(const std::string& tmp, const std::string& path);

// Reads a whole file; throws FileError naming `path`.
std::string readFile(const std::string& path);

}  // namespace graftlab
