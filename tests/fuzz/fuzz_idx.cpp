// libFuzzer target: the Fashion-MNIST path (gzip decoding, then the IDX image and label parsers) on arbitrary
// bytes. Only graftlab::FileError may come out of it; decompression is capped so a bomb is an error, not OOM.
#include "base/data/Formats.h"
#include "base/util/Errors.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        std::vector<uint8_t> bytes = graftlab::decodeMaybeGz(data, size, "fuzz-idx.gz", size_t(64) << 20);
        try {
            graftlab::IdxImages img = graftlab::parseIdxImages(bytes, "fuzz-images-idx3-ubyte");
            if (img.pixels.size() != size_t(img.count) * img.rows * img.cols) __builtin_trap();
        } catch (const graftlab::FileError&) {
        }
        std::vector<uint8_t> labels = graftlab::parseIdxLabels(bytes, "fuzz-labels-idx1-ubyte", 9);
        for (uint8_t l : labels)
            if (l > 9) __builtin_trap();
    } catch (const graftlab::FileError&) {
    }
    return 0;
}
