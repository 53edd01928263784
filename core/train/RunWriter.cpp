#include "train/RunWriter.h"
#include "base/export/TensorBoard.h"
#include "probes/ProbeExport.h"
#include "base/run/RunLayout.h"
#include "base/run/RunLock.h"
#include "base/util/Png.h"
#include "base/util/AtomicFile.h"
#include "base/util/Errors.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <regex>
#include <unistd.h>

namespace graftlab {
namespace fs = std::filesystem;

namespace {
// What GraftLab writes into checkpoints/: checkpoints, their temp files, eval.json, cached features.
bool writtenByGraftLab(const std::string& name) {
    static const std::regex ours(R"((step-\d+\.ckpt|\..*\.ckpt\.tmp-\d+|eval\.json|\.eval\.json\.tmp-\d+|\.step-\d+\.ckpt\.features-.*))");
    return std::regex_match(name, ours);
}
}  // namespace

RunWriter::RunWriter(std::string path, RunDirMode mode) : path_(std::move(path)) {
    std::error_code ec;
    if (mode == RunDirMode::Resume) {
        if (!holdsRun(path_)) throw FileError(path_, "not a GraftLab run directory (no recipe.json)");
        lock_ = std::make_unique<RunLock>(path_);
    } else {
        lock_ = std::make_unique<RunLock>(path_);  // before anything of a run another process may be writing is touched
        if (holdsRun(path_)) {
            if (mode == RunDirMode::Create)
                throw FileError(path_, "already holds a run (recipe.json exists); use `graftlab-cli resume " + path_ +
                                           "` to continue it, or --force to replace it");
            fs::remove(metricsPath(), ec);
            int kept = 0;
            for (const auto& e : fs::directory_iterator(checkpointDir(), ec)) {
                if (e.is_regular_file() && writtenByGraftLab(e.path().filename().string())) fs::remove(e.path(), ec);
                else ++kept;
            }
            if (kept > 0)
                spdlog::warn("{}: kept {} file(s) GraftLab did not write (--force replaces only the run's own files)", checkpointDir(), kept);
            fs::remove_all(snapshotDir(), ec);
            fs::remove_all(tensorBoardDir(), ec);
        }
        fs::create_directories(path_, ec);
        if (ec) throw FileError(path_, "cannot create run directory: " + ec.message());
    }
    fs::create_directories(checkpointDir(), ec);
    if (ec) throw FileError(checkpointDir(), "cannot create directory: " + ec.message());
    metricsFd_ = ::open(metricsPath().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (metricsFd_ < 0) throw FileError(metricsPath(), std::string("cannot open for writing: ") + std::strerror(errno));
    if (tensorBoardBuilt()) {
        tensorBoard_ = std::make_unique<TensorBoardLog>(tensorBoardDir());
        checkTensorBoard();
    }
}

RunWriter::~RunWriter() {
    if (metricsFd_ >= 0) ::close(metricsFd_);
}

std::string RunWriter::checkpointDir() const { return RunLayout(path_).checkpoints(); }
std::string RunWriter::snapshotDir() const { return RunLayout(path_).snapshots(); }
std::string RunWriter::recipePath() const { return RunLayout(path_).recipe(); }
std::string RunWriter::metricsPath() const { return RunLayout(path_).metrics(); }
std::string RunWriter::tensorBoardDir() const { return RunLayout(path_).tensorBoard(); }

// TensorBoard logs are a convenience: a failure to write them is said once and training goes on.
void RunWriter::checkTensorBoard() {
    if (tensorBoard_ && !tensorBoard_->enabled() && !tensorBoardWarned_) {
        tensorBoardWarned_ = true;
        spdlog::warn("TensorBoard log off for this run: {}", tensorBoard_->error());
    }
}

void RunWriter::onRunStarted(const RunInfo& info) {
    // Once per run: a resumed run keeps the text written at step 0.
    if (!tensorBoard_ || info.startStep > 0) return;
    std::string md = "Recipe (dataset " + info.dataset + ", " + std::to_string(info.trainImages) + " training images, device " +
                     info.device + ", " + std::to_string(info.parameters) + " trainable parameters; steps " +
                     std::to_string(info.startStep) + ".." + std::to_string(info.totalSteps) + ")\n\n```json\n" +
                     info.recipe.dump(2) + "\n```\n";
    tensorBoard_->text(info.startStep, "recipe", md);
    checkTensorBoard();
}

void RunWriter::onSnapshot(const Snapshot& s) {
    if (!tensorBoard_ || !tensorBoard_->enabled() || !s.unavailable().empty() || !snapshotPngAvailable()) return;
    std::string png;
    try {
        png = renderSnapshotPng(s);
    } catch (const std::exception& e) {
        spdlog::debug("no TensorBoard image for the {} probe at step {}: {}", s.kind, s.step, e.what());
        return;
    }
    int w = 0, h = 0;
    if (!pngSize(png, w, h)) return;
    tensorBoard_->image(s.step, "probes/" + s.kind, png, w, h, 3);
    checkTensorBoard();
}

bool RunWriter::holdsRun(const std::string& path) { return RunLayout(path).holdsRun(); }

void RunWriter::writeRecipe(const Recipe& r) { writeFileAtomically(recipePath(), r.toJson().dump(2) + "\n"); }

void RunWriter::onMetrics(const MetricsRow& row) {
    // One write() per complete line: a reader tailing the file, or a crash, never sees half a row.
    std::string line = row.toJson().dump() + "\n";
    ssize_t n = ::write(metricsFd_, line.data(), line.size());
    if (n != static_cast<ssize_t>(line.size()))
        throw FileError(metricsPath(), std::string("cannot append metrics: ") + (n < 0 ? std::strerror(errno) : "short write"));
    if (tensorBoard_) {
        tensorBoard_->scalars(row.step, row.values);
        checkTensorBoard();
    }
}

std::vector<MetricsRow> RunWriter::readMetrics(const std::string& path) { return MetricsRow::readFile(path); }

void RunWriter::truncateMetricsAfter(int64_t step) {
    std::vector<std::string> problems;
    auto rows = MetricsRow::readFile(metricsPath(), &problems);
    for (const auto& p : problems) spdlog::warn("{} (not kept: the history is rewritten up to step {})", p, step);
    std::string text;
    for (const auto& r : rows)
        if (r.step <= step) text += r.toJson().dump() + "\n";
    writeFileAtomically(metricsPath(), text);
    // Reopen: the old descriptor points at the replaced file.
    ::close(metricsFd_);
    metricsFd_ = ::open(metricsPath().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (metricsFd_ < 0) throw FileError(metricsPath(), std::string("cannot open for writing: ") + std::strerror(errno));
    if (tensorBoard_) {
        tensorBoard_->truncateAfter(step);
        checkTensorBoard();
    }
}

}  // namespace graftlab
