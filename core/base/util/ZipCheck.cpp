#include "base/util/ZipCheck.h"

#include "base/util/Errors.h"

#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace graftlab {

namespace {

struct Reader {
    const unsigned char* p;
    size_t n;
    const std::string& path;
    void need(uint64_t off, uint64_t len, const char* what) const {
        if (off > n || len > n - off)
            throw FileError(path, std::string("truncated or corrupt checkpoint: ") + what + " lies outside the file (" +
                                      std::to_string(n) + " bytes)");
    }
    uint16_t u16(uint64_t off) const { return uint16_t(p[off] | (p[off + 1] << 8)); }
    uint32_t u32(uint64_t off) const { return uint32_t(u16(off)) | (uint32_t(u16(off + 2)) << 16); }
    uint64_t u64(uint64_t off) const { return uint64_t(u32(off)) | (uint64_t(u32(off + 4)) << 32); }
};

uint32_t crcOfDeflated(const unsigned char* data, uint64_t size, uint64_t expectSize, const std::string& path,
                       const std::string& name) {
    z_stream zs{};
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) throw FileError(path, "cannot start decompression");
    std::vector<unsigned char> buf(1 << 16);
    uLong crc = crc32(0L, Z_NULL, 0);
    uint64_t total = 0;
    zs.next_in = const_cast<unsigned char*>(data);
    zs.avail_in = uInt(size > 0xffffffffu ? 0xffffffffu : size);
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        zs.next_out = buf.data();
        zs.avail_out = uInt(buf.size());
        rc = inflate(&zs, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END) {
            inflateEnd(&zs);
            throw FileError(path, "corrupt checkpoint: entry \"" + name + "\" does not decompress");
        }
        size_t produced = buf.size() - zs.avail_out;
        total += produced;
        if (total > expectSize) break;
        crc = crc32(crc, buf.data(), uInt(produced));
    }
    inflateEnd(&zs);
    if (total != expectSize) throw FileError(path, "corrupt checkpoint: entry \"" + name + "\" has the wrong size");
    return uint32_t(crc);
}

}  // namespace

std::vector<ZipEntry> readZipDirectory(const char* data, size_t size, const std::string& path,
                                       const std::function<void(uint64_t, uint64_t)>& checked) {
    std::vector<ZipEntry> out;
    Reader r{reinterpret_cast<const unsigned char*>(data), size, path};
    if (size < 22) throw FileError(path, "not a GraftLab checkpoint (file of " + std::to_string(size) + " bytes, truncated or empty)");
    // end of central directory: the last signature within the final 64 KiB + 22 bytes
    int64_t eocd = -1;
    for (int64_t i = int64_t(size) - 22, stop = std::max<int64_t>(0, int64_t(size) - 22 - 65535); i >= stop; --i)
        if (r.u32(uint64_t(i)) == 0x06054b50u) {
            eocd = i;
            break;
        }
    if (eocd < 0)
        throw FileError(path, "not a GraftLab checkpoint, or truncated (no zip end-of-archive record: the file was cut short or "
                              "is not a checkpoint)");
    uint64_t entries = r.u16(uint64_t(eocd) + 10);
    uint64_t cdSize = r.u32(uint64_t(eocd) + 12);
    uint64_t cdOffset = r.u32(uint64_t(eocd) + 16);
    if (entries == 0xffff || cdSize == 0xffffffffu || cdOffset == 0xffffffffu) {  // zip64
        if (eocd < 20 || r.u32(uint64_t(eocd) - 20) != 0x07064b50u) throw FileError(path, "corrupt checkpoint: zip64 locator missing");
        uint64_t z64 = r.u64(uint64_t(eocd) - 12);
        r.need(z64, 56, "the zip64 end-of-archive record");
        if (r.u32(z64) != 0x06064b50u) throw FileError(path, "corrupt checkpoint: zip64 end-of-archive record damaged");
        entries = r.u64(z64 + 32);
        cdSize = r.u64(z64 + 40);
        cdOffset = r.u64(z64 + 48);
    }
    r.need(cdOffset, cdSize, "the central directory");
    if (entries == 0) throw FileError(path, "not a GraftLab checkpoint (empty archive)");
    if (entries > cdSize / 46) throw FileError(path, "corrupt checkpoint: central directory too small for its entries");
    uint64_t at = cdOffset;
    for (uint64_t e = 0; e < entries; ++e) {
        r.need(at, 46, "a central directory entry");
        if (r.u32(at) != 0x02014b50u) throw FileError(path, "corrupt checkpoint: central directory entry " + std::to_string(e) + " damaged");
        uint16_t method = r.u16(at + 10);
        uint32_t crc = r.u32(at + 16);
        uint64_t compSize = r.u32(at + 20), uncompSize = r.u32(at + 24);
        uint16_t nameLen = r.u16(at + 28), extraLen = r.u16(at + 30), commentLen = r.u16(at + 32);
        uint64_t local = r.u32(at + 42);
        r.need(at + 46, uint64_t(nameLen) + extraLen + commentLen, "a central directory entry's name");
        std::string name(reinterpret_cast<const char*>(r.p + at + 46), nameLen);
        // zip64 extra field: the 0xffffffff fields, in order
        for (uint64_t x = at + 46 + nameLen, end = x + extraLen; x + 4 <= end;) {
            uint16_t id = r.u16(x), len = r.u16(x + 2);
            if (x + 4 + len > end) break;
            if (id == 0x0001) {
                uint64_t q = x + 4, qe = q + len;
                if (uncompSize == 0xffffffffu && q + 8 <= qe) uncompSize = r.u64(q), q += 8;
                if (compSize == 0xffffffffu && q + 8 <= qe) compSize = r.u64(q), q += 8;
                if (local == 0xffffffffu && q + 8 <= qe) local = r.u64(q), q += 8;
            }
            x += 4 + len;
        }
        r.need(local, 30, ("the local header of \"" + name + "\"").c_str());
        if (r.u32(local) != 0x04034b50u) throw FileError(path, "corrupt checkpoint: local header of \"" + name + "\" damaged");
        uint64_t dataAt = local + 30 + r.u16(local + 26) + r.u16(local + 28);
        r.need(dataAt, compSize, ("the data of \"" + name + "\"").c_str());
        uint32_t actual;
        if (method == 0) {
            if (compSize != uncompSize) throw FileError(path, "corrupt checkpoint: entry \"" + name + "\" has inconsistent sizes");
            uLong c = crc32(0L, Z_NULL, 0);
            for (uint64_t off = 0; off < compSize;) {
                uInt chunk = uInt(std::min<uint64_t>(compSize - off, 1u << 30));
                c = crc32(c, r.p + dataAt + off, chunk);
                off += chunk;
            }
            actual = uint32_t(c);
        } else if (method == 8) {
            actual = crcOfDeflated(r.p + dataAt, compSize, uncompSize, path, name);
        } else {
            throw FileError(path, "corrupt checkpoint: entry \"" + name + "\" uses compression method " + std::to_string(method));
        }
        if (actual != crc)
            throw FileError(path, "corrupt checkpoint: entry \"" + name + "\" fails its CRC-32 check (the file was damaged after "
                                  "it was written)");
        out.push_back({name, method, dataAt, compSize, uncompSize});
        if (checked) checked(dataAt, compSize);
        at += 46 + uint64_t(nameLen) + extraLen + commentLen;
    }
    return out;
}

size_t verifyZipArchive(const char* data, size_t size, const std::string& path) { return readZipDirectory(data, size, path).size(); }

}  // namespace graftlab
