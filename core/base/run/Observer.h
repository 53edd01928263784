#pragma once
// The one channel through which a Trainer reports. Calls come from the training thread; implementations that
// feed a GUI must copy the plain values they receive and hand them over (queued signals).
#include "base/probes/Snapshot.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string_view>
#include <string>
#include <utility>
#include <vector>

namespace graftlab {

enum class TrainerState { Running, Paused, Finished, Stopped, Failed };
const char* toString(TrainerState s);

struct RunInfo {
    nlohmann::json recipe;
    std::string dataset;      // dataset actually used
    std::string datasetNote;  // e.g. why the synthetic fallback was taken
    int64_t trainImages = 0;
    int64_t parameters = 0;   // trainable parameters
    int64_t startStep = 0;
    int64_t totalSteps = 0;
    std::string device;
};

struct MetricsRow {
    int64_t step = 0;   // steps completed
    int64_t epoch = 0;
    int stage = 0;
    std::vector<std::pair<std::string, double>> values;  // "loss", "loss/mae", "lr", "images_per_s", ...

    double value(const std::string& key, double fallback = 0.0) const;
    nlohmann::json toJson() const;
    static MetricsRow fromJson(const nlohmann::json& j);
    // One line of metrics.jsonl; nothing for a line that is not a row (e.g. the torn last line of a killed run),
    // with the reason in *why ("not JSON", "\"step\" is not a whole number", ...).
    static std::optional<MetricsRow> parseLine(std::string_view line, std::string* why = nullptr);
    // Every row of a metrics.jsonl file (base/run/Metrics.cpp; torch-free): the one reader of the file kind (report,
    // resume, the GUI). A torn last line of a killed run is skipped quietly; every other line that is not a row is
    // skipped and named in *problems as "FILE:LINE: reason, row skipped". A missing file holds no rows.
    static std::vector<MetricsRow> readFile(const std::string& path, std::vector<std::string>* problems = nullptr);
};

// The wall time the rows of a run took to train (probes included): each row's steps since the row before, times
// `imagesPerStep` (the global batch), over its images_per_s. 0 for no rows.
double trainingSeconds(const std::vector<MetricsRow>& rows, double imagesPerStep);

class TrainerObserver {
public:
    virtual ~TrainerObserver() = default;
    virtual void onRunStarted(const RunInfo&) {}
    virtual void onMetrics(const MetricsRow&) {}
    virtual void onCheckpoint(const std::string& /*path*/, int64_t /*step*/) {}
    // A probe's result (also one saying why a probe is unavailable, once per stage).
    virtual void onSnapshot(const Snapshot&) {}
    virtual void onStateChanged(TrainerState, const std::string& /*detail*/) {}
};

}  // namespace graftlab
