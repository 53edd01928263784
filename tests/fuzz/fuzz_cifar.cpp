// libFuzzer target: the CIFAR-10 binary batch parser on arbitrary bytes. Only graftlab::FileError may come out
// of it, and a rejected batch appends nothing.
#include "base/data/Formats.h"
#include "base/util/Errors.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<uint8_t> bytes(data, data + size), pixels, labels;
    try {
        graftlab::appendCifarBatch(bytes, "fuzz_batch.bin", pixels, labels);
        if (pixels.size() != labels.size() * (graftlab::kCifarRecordBytes - 1)) __builtin_trap();
        for (uint8_t l : labels)
            if (l > 9) __builtin_trap();
    } catch (const graftlab::FileError&) {
        if (!pixels.empty() || !labels.empty()) __builtin_trap();
    }
    return 0;
}
