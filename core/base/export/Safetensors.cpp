#include "base/export/Safetensors.h"
#include "base/util/AtomicFile.h"
#include "base/util/Errors.h"

#include <algorithm>

namespace graftlab {

namespace {

size_t dtypeSize(const std::string& d) {
    if (d == "F64" || d == "I64" || d == "U64") return 8;
    if (d == "F32" || d == "I32" || d == "U32") return 4;
    if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
    if (d == "I8" || d == "U8" || d == "BOOL") return 1;
    return 0;
}

int64_t numel(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
}

}  // namespace

void writeSafetensors(const std::string& path, const std::vector<RawTensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
    nlohmann::ordered_json header;
    if (!metadata.empty()) header["__metadata__"] = metadata;
    uint64_t offset = 0;
    std::string data;
    for (const auto& t : tensors) {
        if (dtypeSize(t.dtype) == 0) throw FileError(path, "tensor " + t.name + ": unknown dtype " + t.dtype);
        if (uint64_t(numel(t.shape)) * dtypeSize(t.dtype) != t.bytes.size())
            throw FileError(path, "tensor " + t.name + ": " + std::to_string(t.bytes.size()) + " bytes do not match its shape");
        if (t.name == "__metadata__" || header.contains(t.name)) throw FileError(path, "tensor name " + t.name + " given twice");
        header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
        offset += t.bytes.size();
        data += t.bytes;
    }
    std::string h = header.dump();
    h.append((8 - h.size() % 8) % 8, ' ');
    std::string out;
    for (int i = 0; i < 8; ++i) out.push_back(char((uint64_t(h.size()) >> (8 * i)) & 0xff));
    out += h;
    out += data;
    writeFileAtomically(path, out);
}

const RawTensor* SafetensorsContent::find(const std::string& name) const {
    for (const auto& t : tensors)
        if (t.name == name) return &t;
    return nullptr;
}

SafetensorsContent readSafetensors(const std::string& path) {
    std::string bytes = readFile(path);
    if (bytes.size() < 8) throw FileError(path, "too short for a safetensors file");
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(bytes[size_t(i)])) << (8 * i);
    if (n > bytes.size() - 8) throw FileError(path, "safetensors header size " + std::to_string(n) + " runs past the end of the file");
    auto header = nlohmann::json::parse(bytes.substr(8, n), nullptr, false);
    if (header.is_discarded() || !header.is_object()) throw FileError(path, "safetensors header is not a JSON object");
    SafetensorsContent c;
    const size_t base = 8 + n;
    std::vector<std::pair<uint64_t, RawTensor>> found;
    try {
        for (auto it = header.begin(); it != header.end(); ++it) {
            if (it.key() == "__metadata__") {
                for (auto m = it->begin(); m != it->end(); ++m) c.metadata[m.key()] = m->get<std::string>();
                continue;
            }
            RawTensor t;
            t.name = it.key();
            t.dtype = it->at("dtype").get<std::string>();
            t.shape = it->at("shape").get<std::vector<int64_t>>();
            auto off = it->at("data_offsets").get<std::vector<uint64_t>>();
            if (off.size() != 2 || off[0] > off[1] || off[1] > bytes.size() - base)
                throw FileError(path, "tensor " + t.name + ": data_offsets out of bounds");
            if (dtypeSize(t.dtype) == 0 || uint64_t(numel(t.shape)) * dtypeSize(t.dtype) != off[1] - off[0])
                throw FileError(path, "tensor " + t.name + ": size does not match dtype and shape");
            t.bytes = bytes.substr(base + off[0], off[1] - off[0]);
            found.emplace_back(off[0], std::move(t));
        }
    } catch (const nlohmann::json::exception& e) {
        throw FileError(path, std::string("malformed safetensors header: ") + e.what());
    }
    std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [o, t] : found) c.tensors.push_back(std::move(t));
    return c;
}

}  // namespace graftlab
