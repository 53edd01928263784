#pragma once
// safetensors (the format timm and Hugging Face load directly): 8 bytes little-endian header size N, N bytes of
// JSON {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}} padded with spaces to
// a multiple of 8, then the tensors' bytes back to back (offsets relative to the end of the header).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace graftlab {

struct RawTensor {
    std::string name;
    std::string dtype;            // "F32", "I64", ...
    std::vector<int64_t> shape;
    std::string bytes;            // little-endian values, row-major
};

// Writes atomically; throws FileError naming `path`.
void writeSafetensors(const std::string& path, const std::vector<RawTensor>& tensors,
                      const std::map<std::string, std::string>& metadata);

struct SafetensorsContent {
    std::map<std::string, std::string> metadata;
    std::vector<RawTensor> tensors;  // in file order
    const RawTensor* find(const std::string& name) const;
};
// Reads and checks a file (header in bounds, offsets contiguous, sizes match dtype x shape); FileError otherwise.
SafetensorsContent readSafetensors(const std::string& path);

}  // namespace graftlab
