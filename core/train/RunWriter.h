#pragma once
// RunWriter: the trainer observer that writes one run directory as training goes (RunLayout names its files,
// RunSession sets up a run around it). The files of one run: recipe.json, metrics.jsonl (one JSON object a line, appended whole), checkpoints/,
// snapshots/ (probe results, see base/probes/Snapshot.h), tensorboard/ (the same metrics, probe figures and the
// recipe as TensorBoard event files, written live; see base/export/TensorBoard.h).
// A RunSession (train/RunSession.h) wires it to the trainer, in the CLI and the GUI alike; the GUI can open any run
// directory, live or finished, through the same reader (base/run/RunLayout.h names the files).
#include "base/recipe/Recipe.h"
#include "base/run/Observer.h"

#include <memory>
#include <string>
#include <vector>

namespace graftlab {

class TensorBoardLog;
class RunLock;

enum class RunDirMode {
    Create,  // refuse a directory that already holds a run
    Force,   // replace the run a directory holds
    Resume,  // continue the run a directory holds
};

class RunWriter : public TrainerObserver {
public:
    // Throws FileError naming the directory when it is unwritable, (Create) already holds another run, or another
    // process writes it (base/run/RunLock.h: held until this object goes). Force removes only the files GraftLab writes.
    RunWriter(std::string path, RunDirMode mode);
    ~RunWriter() override;

    const std::string& path() const { return path_; }
    std::string checkpointDir() const;
    std::string snapshotDir() const;  // probe snapshots (see base/probes/Snapshot.h)
    std::string recipePath() const;
    std::string metricsPath() const;
    std::string tensorBoardDir() const;

    void writeRecipe(const Recipe& r);
    // Drops metrics rows and TensorBoard events after `step` (used when resuming from an earlier checkpoint).
    void truncateMetricsAfter(int64_t step);

    void onRunStarted(const RunInfo& info) override;
    void onMetrics(const MetricsRow& row) override;
    void onSnapshot(const Snapshot& s) override;

    static bool holdsRun(const std::string& path);
    static std::vector<MetricsRow> readMetrics(const std::string& path);  // tolerant of a torn last line

private:
    std::string path_;
    std::unique_ptr<RunLock> lock_;
    void checkTensorBoard();
    int metricsFd_ = -1;
    std::unique_ptr<TensorBoardLog> tensorBoard_;
    bool tensorBoardWarned_ = false;
};

}  // namespace graftlab
