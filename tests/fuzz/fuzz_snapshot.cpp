// libFuzzer target: the probe snapshot reader (GRAFTLAB-SNAPSHOT files: magic line, JSON header, float32
// arrays) on arbitrary bytes. Only graftlab::FileError may come out of it.
#include "base/probes/Snapshot.h"
#include "base/util/Errors.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string bytes(reinterpret_cast<const char*>(data), size);
    try {
        graftlab::Snapshot s = graftlab::parseSnapshot(bytes, "fuzz.snap");
        for (const auto& a : s.arrays) (void)a.values.size();
    } catch (const graftlab::FileError&) {
    }
    return 0;
}
