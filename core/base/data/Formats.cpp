#include "base/data/Formats.h"

#include "base/util/AtomicFile.h"
#include "base/util/Errors.h"

#include <zlib.h>

#include <cstdio>

namespace graftlab {

namespace {

uint32_t be32(const std::vector<uint8_t>& b, size_t off) {
    return (uint32_t(b[off]) << 24) | (uint32_t(b[off + 1]) << 16) | (uint32_t(b[off + 2]) << 8) | uint32_t(b[off + 3]);
}

std::string hex32(uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", v);
    return buf;
}

bool isGzip(const uint8_t* p, size_t n) { return n >= 2 && p[0] == 0x1f && p[1] == 0x8b; }

}  // namespace

std::vector<uint8_t> decodeMaybeGz(const uint8_t* bytes, size_t size, const std::string& path, size_t maxBytes) {
    if (!isGzip(bytes, size)) {
        if (size > maxBytes) throw FileError(path, "file of " + std::to_string(size) + " bytes is larger than expected");
        return std::vector<uint8_t>(bytes, bytes + size);
    }
    if (size > 0xffffffffu) throw FileError(path, "compressed file over 4 GiB");
    std::vector<uint8_t> out;
    z_stream zs{};
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw FileError(path, "cannot start gzip decompression");
    std::vector<uint8_t> buf(1 << 16);
    zs.next_in = const_cast<Bytef*>(bytes);
    zs.avail_in = static_cast<uInt>(size);
    try {
        while (true) {  // one gzip member per pass
            int rc = Z_OK;
            while (rc != Z_STREAM_END) {
                zs.next_out = buf.data();
                zs.avail_out = static_cast<uInt>(buf.size());
                rc = inflate(&zs, Z_NO_FLUSH);
                if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT || rc == Z_STREAM_ERROR)
                    throw FileError(path, std::string("corrupt gzip data (") + (zs.msg ? zs.msg : "invalid stream") + ")");
                if (rc == Z_MEM_ERROR) throw FileError(path, "out of memory while decompressing");
                if (rc == Z_BUF_ERROR) throw FileError(path, "truncated gzip stream (unexpected end of file)");
                size_t produced = buf.size() - zs.avail_out;
                if (out.size() + produced > maxBytes)
                    throw FileError(path, "decompresses to more than " + std::to_string(maxBytes) + " bytes (damaged?)");
                out.insert(out.end(), buf.begin(), buf.begin() + produced);
            }
            // another member follows (as `cat a.gz b.gz` makes); anything else after the end is ignored, as gzip does
            if (!isGzip(zs.next_in, zs.avail_in)) break;
            inflateReset(&zs);
        }
    } catch (...) {
        inflateEnd(&zs);
        throw;
    }
    inflateEnd(&zs);
    return out;
}

std::vector<uint8_t> readMaybeGzFile(const std::string& path) {
    std::string raw = readFile(path);
    return decodeMaybeGz(reinterpret_cast<const uint8_t*>(raw.data()), raw.size(), path);
}

IdxImages parseIdxImages(const std::vector<uint8_t>& img, const std::string& path, uint32_t wantRows, uint32_t wantCols) {
    if (img.size() < 16) throw FileError(path, "truncated: " + std::to_string(img.size()) + " bytes, an IDX image header needs 16");
    uint32_t magic = be32(img, 0);
    if (magic != 0x00000803) throw FileError(path, "not an IDX image file (magic number " + hex32(magic) + ", expected 0x00000803)");
    IdxImages out;
    out.count = be32(img, 4);
    out.rows = be32(img, 8);
    out.cols = be32(img, 12);
    if ((wantRows && out.rows != wantRows) || (wantCols && out.cols != wantCols))
        throw FileError(path, "images are " + std::to_string(out.rows) + "x" + std::to_string(out.cols) + ", expected " +
                                  std::to_string(wantRows) + "x" + std::to_string(wantCols));
    // 32-bit fields multiply to at most 2^96: compute in long double to compare without overflow
    long double want = 16.0L + (long double)out.count * out.rows * out.cols;
    if ((long double)img.size() != want)
        throw FileError(path, (img.size() < want ? "truncated: " : "too long: ") + std::to_string(img.size()) +
                                  " bytes, the header announces " + std::to_string(out.count) + " images of " +
                                  std::to_string(out.rows) + "x" + std::to_string(out.cols) + " = " +
                                  std::to_string((unsigned long long)want) + " bytes");
    out.pixels.assign(img.begin() + 16, img.end());
    return out;
}

std::vector<uint8_t> parseIdxLabels(const std::vector<uint8_t>& lbl, const std::string& path, uint8_t maxLabel) {
    if (lbl.size() < 8) throw FileError(path, "truncated: " + std::to_string(lbl.size()) + " bytes, an IDX label header needs 8");
    uint32_t magic = be32(lbl, 0);
    if (magic != 0x00000801) throw FileError(path, "not an IDX label file (magic number " + hex32(magic) + ", expected 0x00000801)");
    uint64_t n = be32(lbl, 4);
    if (lbl.size() != 8 + n)
        throw FileError(path, (lbl.size() < 8 + n ? "truncated: " : "too long: ") + std::to_string(lbl.size()) +
                                  " bytes, the header announces " + std::to_string(n) + " labels");
    for (size_t i = 8; i < lbl.size(); ++i)
        if (lbl[i] > maxLabel)
            throw FileError(path, "label " + std::to_string(lbl[i]) + " at index " + std::to_string(i - 8) + " is outside 0.." +
                                      std::to_string(maxLabel));
    return std::vector<uint8_t>(lbl.begin() + 8, lbl.end());
}

void appendCifarBatch(const std::vector<uint8_t>& bytes, const std::string& path, std::vector<uint8_t>& pixels,
                      std::vector<uint8_t>& labels) {
    if (bytes.empty() || bytes.size() % kCifarRecordBytes != 0)
        throw FileError(path, "not a CIFAR-10 binary batch: " + std::to_string(bytes.size()) + " bytes is not a whole number of " +
                                  std::to_string(kCifarRecordBytes) + "-byte records (truncated?)");
    const size_t records = bytes.size() / kCifarRecordBytes;
    for (size_t r = 0; r < records; ++r)
        if (bytes[r * kCifarRecordBytes] > 9)
            throw FileError(path, "record " + std::to_string(r) + " has label " + std::to_string(bytes[r * kCifarRecordBytes]) +
                                      ", outside 0..9");
    pixels.reserve(pixels.size() + records * (kCifarRecordBytes - 1));
    labels.reserve(labels.size() + records);
    for (size_t r = 0; r < records; ++r) {
        const uint8_t* rec = bytes.data() + r * kCifarRecordBytes;
        labels.push_back(rec[0]);
        pixels.insert(pixels.end(), rec + 1, rec + kCifarRecordBytes);
    }
}

}  // namespace graftlab
