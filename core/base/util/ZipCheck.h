#pragma once
// Integrity check of a zip archive held in memory (the container of torch's serialization format, hence of every
// GraftLab checkpoint): the end-of-central-directory record (zip64 too), every central and local header within
// the buffer, and each entry's CRC-32 against its data. A damaged file is rejected here, before LibTorch's
// TorchScript importer sees it: that importer trusts lengths inside the archive (a flipped byte can make it
// allocate gigabytes, or throw from deep inside its type parser), so only intact archives reach it.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace graftlab {

// Throws FileError(path, ...) naming what is wrong; returns the number of entries checked.
size_t verifyZipArchive(const char* data, size_t size, const std::string& path);

struct ZipEntry {
    std::string name;
    uint16_t method = 0;  // 0 stored, 8 deflated
    uint64_t dataOffset = 0, compressedSize = 0, size = 0;
};
// The same checks, returning every entry (where its data starts in `data`); `checked(offset, size)`, when given, is
// called after each entry's data has been checked (a mapped file hands those pages back there).
std::vector<ZipEntry> readZipDirectory(const char* data, size_t size, const std::string& path,
                                       const std::function<void(uint64_t, uint64_t)>& checked = {});

}  // namespace graftlab
