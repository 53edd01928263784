// libFuzzer target: the torch.save reader of `graftlab-cli import` (zip and legacy formats, the allow-listed pickle
// machine) on arbitrary bytes, then every tensor's extent checked against its storage. Only graftlab::FileError may
// come out of it, and nothing may be read outside the input.
#include "base/import/TorchFile.h"
#include "base/util/Errors.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace {
void touchTensors(const graftlab::TorchFile& f, const graftlab::PickleValue* v, int depth) {
    if (!v || depth > 8) return;
    if (v->kind == graftlab::PickleValue::Kind::Tensor) {
        const char* p = f.tensorData(v->tensor);
        volatile char c = 0;
        int64_t n = 1;
        for (auto s : v->tensor.shape) n *= s;
        if (n > 0) c = *p;  // the first element lies inside the file
        (void)c;
    }
    (void)v->repr();
    for (auto* x : v->items) touchTensors(f, x, depth + 1);
    for (const auto& [k, x] : v->entries) touchTensors(f, x, depth + 1);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        auto f = graftlab::parseTorchFile(graftlab::FileBytes::hold(std::string(reinterpret_cast<const char*>(data), size)), "fuzz.pth");
        touchTensors(*f, f->root, 0);
    } catch (const graftlab::FileError&) {
    }
    return 0;
}
