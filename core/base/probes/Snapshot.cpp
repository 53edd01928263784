#include "base/probes/Snapshot.h"
#include "base/util/AtomicFile.h"
#include "base/util/Errors.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <unistd.h>

namespace graftlab {
namespace fs = std::filesystem;

const std::vector<std::string> kCosineSummaryColumns = {"mean", "q10", "q25", "median", "q75", "q90", "frac_negative"};
using nlohmann::json;

namespace {
const char* kMagic = "GRAFTLAB-SNAPSHOT 1";

std::string fileNameFor(const std::string& kind, int64_t step) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%09lld.snap", static_cast<long long>(step));
    return kind + "/" + buf;
}

bool validKind(const std::string& k) {
    if (k.empty()) return false;
    return std::all_of(k.begin(), k.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

json entryJson(const SnapshotIndexEntry& e) { return {{"kind", e.kind}, {"step", e.step}, {"stage", e.stage}, {"file", e.file}}; }
}  // namespace

int64_t SnapshotArray::numel() const {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
}

float SnapshotArray::at(std::initializer_list<int64_t> index) const {
    int64_t flat = 0;
    size_t d = 0;
    for (int64_t i : index) flat = flat * (d < shape.size() ? shape[d++] : 1) + i;
    return values.at(size_t(flat));
}

const SnapshotArray* Snapshot::find(const std::string& name) const {
    for (const auto& a : arrays)
        if (a.name == name) return &a;
    return nullptr;
}

std::string Snapshot::unavailable() const {
    auto it = meta.find("unavailable");
    return it != meta.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string serializeSnapshot(const Snapshot& s) {
    json header;
    header["kind"] = s.kind;
    header["step"] = s.step;
    header["stage"] = s.stage;
    header["meta"] = s.meta;
    header["arrays"] = json::array();
    int64_t offset = 0;
    for (const auto& a : s.arrays) {
        if (a.numel() != int64_t(a.values.size()))
            throw std::logic_error("snapshot array " + a.name + ": shape does not match its values");
        header["arrays"].push_back({{"name", a.name}, {"shape", a.shape}, {"offset", offset}});
        offset += a.numel();
    }
    std::string out = std::string(kMagic) + "\n" + header.dump() + "\n";
    size_t start = out.size();
    out.resize(start + size_t(offset) * sizeof(float));
    char* p = out.data() + start;
    for (const auto& a : s.arrays) {
        std::memcpy(p, a.values.data(), a.values.size() * sizeof(float));  // little-endian hosts only (x86, arm64)
        p += a.values.size() * sizeof(float);
    }
    return out;
}

Snapshot parseSnapshot(const std::string& bytes, const std::string& origin) {
    size_t l1 = bytes.find('\n');
    if (l1 == std::string::npos || bytes.compare(0, l1, kMagic) != 0)
        throw FileError(origin, std::string("not a GraftLab snapshot (expected the first line \"") + kMagic + "\")");
    size_t l2 = bytes.find('\n', l1 + 1);
    if (l2 == std::string::npos) throw FileError(origin, "snapshot header is truncated");
    json header;
    try {
        header = json::parse(bytes.substr(l1 + 1, l2 - l1 - 1));
        Snapshot s;
        s.kind = header.at("kind").get<std::string>();
        s.step = header.at("step").get<int64_t>();
        s.stage = header.at("stage").get<int>();
        s.meta = header.value("meta", json::object());
        const size_t dataStart = l2 + 1;
        const size_t floats = (bytes.size() - dataStart) / sizeof(float);
        for (const auto& a : header.at("arrays")) {
            SnapshotArray arr;
            arr.name = a.at("name").get<std::string>();
            arr.shape = a.at("shape").get<std::vector<int64_t>>();
            int64_t offset = a.at("offset").get<int64_t>();
            int64_t n = 1;
            for (auto d : arr.shape) {
                if (d < 0 || d > (int64_t(1) << 32)) throw FileError(origin, "array " + arr.name + " has an invalid shape");
                n *= d;
                if (n > int64_t(floats)) break;
            }
            if (offset < 0 || n < 0 || size_t(offset) + size_t(n) > floats)
                throw FileError(origin, "snapshot is truncated: array " + arr.name + " needs " + std::to_string(offset + n) +
                                            " values, the file holds " + std::to_string(floats));
            arr.values.resize(size_t(n));
            std::memcpy(arr.values.data(), bytes.data() + dataStart + size_t(offset) * sizeof(float), size_t(n) * sizeof(float));
            s.arrays.push_back(std::move(arr));
        }
        return s;
    } catch (const json::exception& e) {
        throw FileError(origin, std::string("snapshot header is not valid: ") + e.what());
    }
}

void writeSnapshotFile(const std::string& path, const Snapshot& s) { writeFileAtomically(path, serializeSnapshot(s)); }

Snapshot readSnapshotFile(const std::string& path) { return parseSnapshot(readFile(path), path); }

std::vector<int64_t> thinSteps(const std::vector<int64_t>& steps, int keep) {
    if (keep <= 0 || int(steps.size()) <= keep) return steps;
    if (keep == 1) return {steps.back()};
    std::set<size_t> chosen;
    const double first = double(steps.front()), last = double(steps.back());
    size_t cursor = 0;
    for (int i = 0; i < keep; ++i) {
        double target = first + (last - first) * i / (keep - 1);
        // Nearest not yet chosen step to the target, searching forward from the previous choice (targets ascend).
        size_t best = cursor;
        double bestDist = INFINITY;
        for (size_t j = cursor; j < steps.size(); ++j) {
            if (chosen.count(j)) continue;
            double d = std::abs(double(steps[j]) - target);
            if (d < bestDist) {
                bestDist = d;
                best = j;
            } else if (double(steps[j]) > target) {
                break;
            }
        }
        // Leave room for the remaining targets (and the last step for the last one).
        size_t maxIndex = steps.size() - size_t(keep - i);
        best = std::min(best, maxIndex);
        while (chosen.count(best)) ++best;
        chosen.insert(best);
        cursor = best + 1;
    }
    std::vector<int64_t> out;
    for (size_t j : chosen) out.push_back(steps[j]);
    return out;
}

SnapshotStore::SnapshotStore(std::string dir, int keepPerKind) : dir_(std::move(dir)), keep_(keepPerKind) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) throw FileError(dir_, "cannot create the snapshots directory: " + ec.message());
}

std::string SnapshotStore::append(const Snapshot& s) {
    if (!validKind(s.kind)) throw std::logic_error("snapshot kind \"" + s.kind + "\" is not a plain name");
    SnapshotIndexEntry e{s.kind, s.step, s.stage, fileNameFor(s.kind, s.step)};
    fs::path file = fs::path(dir_) / e.file;
    std::error_code ec;
    fs::create_directories(file.parent_path(), ec);
    writeSnapshotFile(file.string(), s);

    std::string line = entryJson(e).dump() + "\n";
    std::string index = (fs::path(dir_) / "index.jsonl").string();
    int fd = ::open(index.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) throw FileError(index, std::string("cannot open: ") + std::strerror(errno));
    ssize_t n = ::write(fd, line.data(), line.size());  // one write: a reader never sees half a line of ours
    int err = errno;
    ::close(fd);
    if (n != ssize_t(line.size())) throw FileError(index, std::string("write failed: ") + std::strerror(err));

    if (keep_ > 0) {
        auto entries = readIndex(dir_);
        std::vector<int64_t> steps;
        for (const auto& x : entries)
            if (x.kind == s.kind) steps.push_back(x.step);
        if (int(steps.size()) > keep_) {
            auto kept = thinSteps(steps, keep_);
            std::set<int64_t> keepSet(kept.begin(), kept.end());
            std::vector<SnapshotIndexEntry> remaining, removed;
            for (auto& x : entries) (x.kind != s.kind || keepSet.count(x.step) ? remaining : removed).push_back(x);
            rewriteIndex(remaining);  // the index first: a reader never finds an entry without its file
            for (const auto& x : removed) fs::remove(fs::path(dir_) / x.file, ec);
        }
    }
    return file.string();
}

void SnapshotStore::truncateAfter(int64_t step) {
    auto entries = readIndex(dir_);
    std::vector<SnapshotIndexEntry> remaining, removed;
    for (auto& x : entries) (x.step <= step ? remaining : removed).push_back(x);
    if (removed.empty()) return;
    rewriteIndex(remaining);
    std::error_code ec;
    for (const auto& x : removed) fs::remove(fs::path(dir_) / x.file, ec);
}

void SnapshotStore::rewriteIndex(const std::vector<SnapshotIndexEntry>& entries) {
    std::string text;
    for (const auto& e : entries) text += entryJson(e).dump() + "\n";
    writeFileAtomically((fs::path(dir_) / "index.jsonl").string(), text);
}

std::vector<SnapshotIndexEntry> SnapshotStore::readIndex(const std::string& dir) {
    std::ifstream in(fs::path(dir) / "index.jsonl");
    std::map<std::pair<std::string, int64_t>, SnapshotIndexEntry> byKey;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        try {
            auto j = json::parse(line);
            SnapshotIndexEntry e{j.at("kind").get<std::string>(), j.at("step").get<int64_t>(), j.at("stage").get<int>(),
                                 j.at("file").get<std::string>()};
            if (!validKind(e.kind) || e.file.find("..") != std::string::npos) continue;
            byKey[{e.kind, e.step}] = e;
        } catch (const json::exception&) {
            // a torn last line while the writer appends: ignored
        }
    }
    std::vector<SnapshotIndexEntry> out;
    for (auto& [k, e] : byKey) out.push_back(e);
    return out;
}

std::vector<Snapshot> SnapshotStore::load(const std::string& dir, const std::string& kind, std::vector<std::string>* warnings) {
    std::vector<Snapshot> out;
    for (const auto& e : readIndex(dir)) {
        if (!kind.empty() && e.kind != kind) continue;
        std::string path = (fs::path(dir) / e.file).string();
        try {
            out.push_back(readSnapshotFile(path));
        } catch (const FileError& err) {
            // thinned away between reading the index and the file, or damaged
            if (warnings && fs::exists(path)) warnings->push_back(err.what());
        }
    }
    std::stable_sort(out.begin(), out.end(), [](const Snapshot& a, const Snapshot& b) { return a.step < b.step; });
    return out;
}

}  // namespace graftlab
