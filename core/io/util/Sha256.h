#pragma once
// SHA-256 (FIPS 180-4), to record which file an imported model came from.
#include <cstddef>
#include <string>

namespace graftlab {

// Lowercase hex digest of `n` bytes at `data`.
std::string sha256Hex(const void* data, size_t n);

}  // namespace graftlab
