#include "base/export/Npz.h"
#include "base/util/AtomicFile.h"
#include "base/util/Errors.h"

#include <zlib.h>

#include <cstring>

namespace graftlab {

namespace {

template <typename T>
std::string rawBytes(const std::vector<T>& v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

void put16(std::string& s, uint32_t v) {
    s.push_back(char(v & 0xff));
    s.push_back(char((v >> 8) & 0xff));
}
void put32(std::string& s, uint32_t v) {
    put16(s, v & 0xffff);
    put16(s, v >> 16);
}

// UTF-8 to UTF-32 code points (invalid bytes become U+FFFD).
std::vector<uint32_t> codePoints(const std::string& s) {
    std::vector<uint32_t> out;
    for (size_t i = 0; i < s.size();) {
        uint8_t c = uint8_t(s[i]);
        int extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
        if (extra < 0 || i + size_t(extra) >= s.size() + (extra == 0 ? 1 : 0)) {
            out.push_back(0xfffd);
            ++i;
            continue;
        }
        uint32_t cp = extra == 0 ? c : extra == 1 ? (c & 0x1f) : extra == 2 ? (c & 0x0f) : (c & 0x07);
        bool ok = true;
        for (int k = 1; k <= extra; ++k) {
            uint8_t d = uint8_t(s[i + size_t(k)]);
            if ((d & 0xc0) != 0x80) ok = false;
            cp = (cp << 6) | (d & 0x3f);
        }
        out.push_back(ok ? cp : 0xfffd);
        i += ok ? size_t(extra) + 1 : 1;
    }
    return out;
}

}  // namespace

NpyArray npyFloat32(const std::string& name, const std::vector<int64_t>& shape, const std::vector<float>& values) {
    return {name, "<f4", shape, rawBytes(values)};
}

NpyArray npyInt64(const std::string& name, const std::vector<int64_t>& shape, const std::vector<int64_t>& values) {
    return {name, "<i8", shape, rawBytes(values)};
}

NpyArray npyText(const std::string& name, const std::string& utf8) {
    auto cps = codePoints(utf8);
    if (cps.empty()) cps.push_back(0);  // numpy has no '<U0'
    return {name, "<U" + std::to_string(cps.size()), {}, rawBytes(cps)};
}

std::string npyBytes(const NpyArray& a) {
    std::string shape = "(";
    for (size_t i = 0; i < a.shape.size(); ++i) shape += std::to_string(a.shape[i]) + (a.shape.size() == 1 ? "," : i + 1 < a.shape.size() ? ", " : "");
    shape += ")";
    std::string dict = "{'descr': '" + a.descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
    size_t total = 10 + dict.size() + 1;
    dict.append((64 - total % 64) % 64, ' ');
    dict.push_back('\n');
    std::string out("\x93NUMPY\x01\x00", 8);
    put16(out, uint32_t(dict.size()));
    out += dict;
    out += a.bytes;
    return out;
}

void writeNpz(const std::string& path, const std::vector<NpyArray>& arrays) {
    std::string out, central;
    uint32_t count = 0;
    for (const auto& a : arrays) {
        std::string name = a.name + ".npy";
        std::string data = npyBytes(a);
        if (data.size() >= 0xffffffffu || out.size() >= 0xffffffffu - data.size() - 1024)
            throw FileError(path, "an .npz over 4 GB is not supported (array " + a.name + ")");
        uint32_t crc = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(data.data()), uInt(data.size())));
        uint32_t offset = uint32_t(out.size());
        // local file header: stored, no data descriptor, DOS date 1980-01-01
        put32(out, 0x04034b50);
        put16(out, 20);
        put16(out, 0);
        put16(out, 0);
        put16(out, 0);
        put16(out, 0x21);
        put32(out, crc);
        put32(out, uint32_t(data.size()));
        put32(out, uint32_t(data.size()));
        put16(out, uint32_t(name.size()));
        put16(out, 0);
        out += name;
        out += data;
        put32(central, 0x02014b50);
        put16(central, 20);
        put16(central, 20);
        put16(central, 0);
        put16(central, 0);
        put16(central, 0);
        put16(central, 0x21);
        put32(central, crc);
        put32(central, uint32_t(data.size()));
        put32(central, uint32_t(data.size()));
        put16(central, uint32_t(name.size()));
        put16(central, 0);
        put16(central, 0);
        put16(central, 0);
        put16(central, 0);
        put32(central, 0);
        put32(central, offset);
        central += name;
        ++count;
    }
    if (count > 0xffff) throw FileError(path, "more than 65535 arrays in one .npz");
    uint32_t centralOffset = uint32_t(out.size());
    out += central;
    put32(out, 0x06054b50);
    put16(out, 0);
    put16(out, 0);
    put16(out, count);
    put16(out, count);
    put32(out, uint32_t(central.size()));
    put32(out, centralOffset);
    put16(out, 0);
    writeFileAtomically(path, out);
}

std::vector<NpyArray> snapshotArrays(const Snapshot& s, const std::string& prefix) {
    std::vector<NpyArray> out;
    for (const auto& a : s.arrays) out.push_back(npyFloat32(prefix + a.name, a.shape, a.values));
    nlohmann::json meta = {{"kind", s.kind}, {"step", s.step}, {"stage", s.stage}, {"meta", s.meta}};
    out.push_back(npyText(prefix + "meta", meta.dump()));
    return out;
}

}  // namespace graftlab
