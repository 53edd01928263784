#include "base/export/TensorBoard.h"
#include "base/util/AtomicFile.h"
#include "base/util/Errors.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <unistd.h>

namespace graftlab {
namespace fs = std::filesystem;

namespace {

std::array<uint32_t, 256> makeCrc32cTable() {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        t[i] = c;
    }
    return t;
}

void putLe(std::string& out, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
}

uint64_t getLe(std::string_view in, size_t at, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t(uint8_t(in[at + size_t(i)])) << (8 * i);
    return v;
}

double nowSeconds() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

uint32_t crc32c(std::string_view bytes) {
    static const auto table = makeCrc32cTable();
    uint32_t c = 0xffffffffu;
    for (char ch : bytes) c = table[(c ^ uint8_t(ch)) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

uint32_t maskedCrc32c(std::string_view bytes) {
    uint32_t c = crc32c(bytes);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

std::string frameRecord(std::string_view payload) {
    std::string out;
    out.reserve(payload.size() + 16);
    putLe(out, payload.size(), 8);
    putLe(out, maskedCrc32c(std::string_view(out.data(), 8)), 4);
    out.append(payload);
    putLe(out, maskedCrc32c(payload), 4);
    return out;
}

std::vector<std::string> readRecords(std::string_view bytes, size_t* goodBytes) {
    std::vector<std::string> out;
    size_t at = 0;
    while (bytes.size() - at >= 12) {
        uint64_t len = getLe(bytes, at, 8);
        if (uint32_t(getLe(bytes, at + 8, 4)) != maskedCrc32c(bytes.substr(at, 8))) break;
        if (len > bytes.size() - at - 12 || bytes.size() - at - 12 - len < 4) break;
        std::string_view payload = bytes.substr(at + 12, len);
        if (uint32_t(getLe(bytes, at + 12 + len, 4)) != maskedCrc32c(payload)) break;
        out.emplace_back(payload);
        at += 16 + len;
    }
    if (goodBytes) *goodBytes = at;
    return out;
}

TensorBoardLog::TensorBoardLog(std::string dir) : dir_(std::move(dir)) { open(); }

TensorBoardLog::~TensorBoardLog() {
    if (fd_ >= 0) ::close(fd_);
}

std::vector<std::string> TensorBoardLog::eventFiles(const std::string& dir) {
    std::vector<std::string> files;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        std::string name = it->path().filename().string();
        if (it->is_regular_file() && name.find("tfevents") != std::string::npos && name.find(".tmp") == std::string::npos)
            files.push_back(it->path().string());
    }
    std::sort(files.begin(), files.end());
    return files;
}

void TensorBoardLog::open() {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) return fail(dir_ + ": cannot create directory: " + ec.message());
    auto files = eventFiles(dir_);
    bool fresh = files.empty();
    if (fresh) {
        char host[256] = "localhost";
        ::gethostname(host, sizeof host - 1);
        file_ = (fs::path(dir_) / ("events.out.tfevents." + std::to_string(int64_t(nowSeconds())) + "." + host + ".graftlab")).string();
    } else {
        file_ = files.back();
        // A run killed mid-write leaves a torn last record: cut it before appending.
        std::string bytes;
        try {
            bytes = readFile(file_);
        } catch (const std::exception& e) {
            return fail(e.what());
        }
        size_t good = 0;
        readRecords(bytes, &good);
        if (good != bytes.size() && ::truncate(file_.c_str(), off_t(good)) != 0)
            return fail(file_ + ": cannot cut its torn last record: " + std::strerror(errno));
    }
    fd_ = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) return fail(file_ + ": cannot open for writing: " + std::strerror(errno));
    if (fresh) {
        TensorBoardEvent first;
        first.wallTime = nowSeconds();
        first.fileVersion = "brain.Event:2";
        write(first);
    }
}

void TensorBoardLog::fail(const std::string& what) {
    if (error_.empty()) error_ = what;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

void TensorBoardLog::write(const TensorBoardEvent& e) {
    if (fd_ < 0) return;
    std::string rec = frameRecord(serializeEvent(e));
    ssize_t n = ::write(fd_, rec.data(), rec.size());
    if (n != ssize_t(rec.size())) {
        // Leave no torn record behind for readers; the next open would cut it anyway.
        if (n > 0) {
            off_t end = ::lseek(fd_, 0, SEEK_END);
            if (end >= n && ::ftruncate(fd_, end - n) != 0) {}
        }
        fail(file_ + ": cannot append an event: " + (n < 0 ? std::strerror(errno) : "short write"));
    }
}

void TensorBoardLog::scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values) {
    TensorBoardEvent e;
    e.wallTime = nowSeconds();
    e.step = step;
    for (const auto& [k, v] : values) e.scalars.emplace_back(k, float(v));
    if (!e.scalars.empty()) write(e);
}

void TensorBoardLog::image(int64_t step, const std::string& tag, const std::string& png, int width, int height, int channels) {
    TensorBoardEvent e;
    e.wallTime = nowSeconds();
    e.step = step;
    e.images.push_back({tag, width, height, channels, png});
    write(e);
}

void TensorBoardLog::text(int64_t step, const std::string& tag, const std::string& markdown) {
    TensorBoardEvent e;
    e.wallTime = nowSeconds();
    e.step = step;
    e.texts.emplace_back(tag, markdown);
    write(e);
}

void TensorBoardLog::truncateAfter(int64_t step) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    for (const auto& f : eventFiles(dir_)) {
        std::string bytes, kept;
        try {
            bytes = readFile(f);
        } catch (const std::exception& e) {
            return fail(e.what());
        }
        size_t good = 0;
        auto records = readRecords(bytes, &good);
        bool changed = good != bytes.size();
        for (const auto& r : records) {
            int64_t s = 0;
            try {
                s = parseEvent(r).step;
            } catch (const std::exception&) {
                changed = true;  // not an event: dropped
                continue;
            }
            if (s > step) {
                changed = true;
                continue;
            }
            kept += frameRecord(r);
        }
        if (!changed) continue;
        try {
            writeFileAtomically(f, kept);
        } catch (const std::exception& e) {
            return fail(e.what());
        }
    }
    error_.clear();
    open();
}

std::vector<TensorBoardEvent> TensorBoardLog::readDir(const std::string& dir) {
    std::vector<TensorBoardEvent> out;
    for (const auto& f : eventFiles(dir))
        for (const auto& r : readRecords(readFile(f))) out.push_back(parseEvent(r));
    return out;
}

}  // namespace graftlab
