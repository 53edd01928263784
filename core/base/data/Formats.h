#pragma once
// The on-disk dataset formats, parsed without torch (so that libFuzzer targets can exercise them alone):
// IDX (Fashion-MNIST, optionally gzip-compressed) and CIFAR-10 binary batches. Every malformed input is a
// FileError naming the file and what was expected; nothing reads outside the buffer it was given.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace graftlab {

// `bytes` as they are, or gunzipped when they start with the gzip magic (several members are concatenated, as
// gzip itself does). More than `maxBytes` of output is an error (a damaged length or a decompression bomb).
std::vector<uint8_t> decodeMaybeGz(const uint8_t* bytes, size_t size, const std::string& path,
                                   size_t maxBytes = size_t(1) << 32);
// Reads a whole file and decodes it as above.
std::vector<uint8_t> readMaybeGzFile(const std::string& path);

struct IdxImages {
    uint32_t count = 0, rows = 0, cols = 0;
    std::vector<uint8_t> pixels;  // count * rows * cols, row-major
};
// An IDX3 unsigned-byte image file (magic 0x00000803). `rows`/`cols` > 0 demand that size.
IdxImages parseIdxImages(const std::vector<uint8_t>& bytes, const std::string& path, uint32_t rows = 0, uint32_t cols = 0);
// An IDX1 unsigned-byte label file (magic 0x00000801) whose labels are all <= maxLabel.
std::vector<uint8_t> parseIdxLabels(const std::vector<uint8_t>& bytes, const std::string& path, uint8_t maxLabel);

// One CIFAR-10 binary batch (records of 1 label byte + 3x32x32 pixels), appended to `pixels` and `labels`.
constexpr size_t kCifarRecordBytes = 1 + 3 * 32 * 32;
void appendCifarBatch(const std::vector<uint8_t>& bytes, const std::string& path, std::vector<uint8_t>& pixels,
                      std::vector<uint8_t>& labels);

}  // namespace graftlab
