#pragma once
// SHA-256 (FIPS 180-4), to record which file an imported model came from.
#include <cstddef>
#include <cstdint>
#include <string>

namespace graftlab {

// Incremental: update() with the bytes in order, then hex() once.
class Sha256 {
public:
    void update(const void* data, size_t n);
    std::string hex();

private:
    uint32_t h_[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    unsigned char buf_[64] = {};
    size_t used_ = 0;
    uint64_t total_ = 0;
};

// Lowercase hex digest of `n` bytes at `data`.
std::string sha256Hex(const void* data, size_t n);

}  // namespace graftlab
