#pragma once
// What a probe measured at one step, as plain values (no torch, no Qt): the GUI, the CLI and the run directory
// all speak this. A snapshot is a kind ("gradcos", "attention", "similarity", "reconstruction"), the step and
// stage it was taken at, free-form metadata (labels, notes, why a probe was unavailable) and named float arrays
// with their shapes (row-major).
//
// On disk (one file a snapshot, snapshots/<kind>/<step, 9 digits>.snap):
//   line 1  "GRAFTLAB-SNAPSHOT 1"
//   line 2  one JSON object: {"kind", "step", "stage", "meta", "arrays": [{"name", "shape", "offset"}]}
//           (offset counts float32 values from the start of the data)
//   then    the arrays' values, float32 little-endian, back to back in header order.
// snapshots/index.jsonl has one line per stored snapshot: {"kind", "step", "stage", "file"} (file relative to
// snapshots/). Files are written atomically before their index line; thinning rewrites the index atomically.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace graftlab {

struct SnapshotArray {
    std::string name;
    std::vector<int64_t> shape;
    std::vector<float> values;
    int64_t numel() const;
    // Value at a multi-index (row-major); no bounds checks beyond the total size.
    float at(std::initializer_list<int64_t> index) const;
};

struct Snapshot {
    std::string kind;
    int64_t step = 0;
    int stage = 0;
    nlohmann::json meta = nlohmann::json::object();
    std::vector<SnapshotArray> arrays;

    const SnapshotArray* find(const std::string& name) const;
    // Empty when the probe ran; otherwise why it could not (stored in meta["unavailable"]).
    std::string unavailable() const;
};

// Serialises / parses one snapshot in the file format above. parse throws FileError naming `origin`.
std::string serializeSnapshot(const Snapshot& s);
Snapshot parseSnapshot(const std::string& bytes, const std::string& origin);
void writeSnapshotFile(const std::string& path, const Snapshot& s);
Snapshot readSnapshotFile(const std::string& path);

struct SnapshotIndexEntry {
    std::string kind;
    int64_t step = 0;
    int stage = 0;
    std::string file;  // relative to the snapshots directory
};

// Which of `steps` (ascending, distinct) to keep so that at most `keep` remain: always the first and the last,
// the rest spread evenly over the step range (nearest step to each evenly spaced target).
std::vector<int64_t> thinSteps(const std::vector<int64_t>& steps, int keep);

// The snapshots/ directory of a run: appends snapshots, keeps at most `keepPerKind` of each kind (thinning),
// and reads a run's history back (tolerant of a torn last index line and of files thinned away meanwhile).
class SnapshotStore {
public:
    // Creates the directory. keepPerKind <= 0 = keep everything.
    SnapshotStore(std::string dir, int keepPerKind);
    const std::string& dir() const { return dir_; }

    // Writes the snapshot (replacing one of the same kind and step), then thins its kind. Returns the file.
    std::string append(const Snapshot& s);
    // Forgets snapshots taken after `step` (resuming from an earlier checkpoint).
    void truncateAfter(int64_t step);

    // The index of a snapshots directory, sorted by kind then step; later lines win for the same kind and step.
    static std::vector<SnapshotIndexEntry> readIndex(const std::string& dir);
    // Every stored snapshot of `kind` ("" = all kinds), oldest first; unreadable files are skipped with a warning
    // in `warnings` (if given).
    static std::vector<Snapshot> load(const std::string& dir, const std::string& kind,
                                      std::vector<std::string>* warnings = nullptr);

private:
    void rewriteIndex(const std::vector<SnapshotIndexEntry>& entries);
    std::string dir_;
    int keep_;
};

// The columns of a gradient-cosine snapshot's "summary" array, one row per parameter group: statistics of the
// group's per-image cosines (NaNs ignored). kCosineSummaryColumns names them in this order (meta "summary_columns").
enum CosineSummaryColumn : int64_t { kCosMean, kCosQ10, kCosQ25, kCosMedian, kCosQ75, kCosQ90, kCosFracNegative };
extern const std::vector<std::string> kCosineSummaryColumns;

}  // namespace graftlab
