#pragma once
// RunLayout: names the files of a run directory (no writing, no torch; RunWriter writes them, RunSession sets a run up).
// Where the files of a run directory are: the one place their names are written (torch-free, so the widgets use
// it too). A run directory holds
//   recipe.json            the recipe, every default filled in (its presence makes a directory a run)
//   metrics.jsonl          one JSON object per logged step
//   checkpoints/           step-NNNNNNNN.ckpt, and eval.json with the evaluations of those checkpoints
//   snapshots/             probe results (base/probes/Snapshot.h)
//   tensorboard/           TensorBoard event files (base/export/TensorBoard.h)
//   report.html            the HTML report, when written (base/export/Report.h)
// and a sweep's folder holds sweep.json (its grid and runs), sweep.csv / .md / .svg and one run directory a point.
#include <string>

namespace graftlab {

class RunLayout {
public:
    explicit RunLayout(std::string dir) : dir_(std::move(dir)) {}
    const std::string& dir() const { return dir_; }
    std::string recipe() const { return join("recipe.json"); }
    std::string metrics() const { return join("metrics.jsonl"); }
    std::string checkpoints() const { return join("checkpoints"); }
    std::string evalJson() const { return join("checkpoints/eval.json"); }
    std::string snapshots() const { return join("snapshots"); }
    std::string tensorBoard() const { return join("tensorboard"); }
    std::string report() const { return join("report.html"); }
    // Whether the directory holds a run (has recipe.json).
    bool holdsRun() const;

    // The eval.json that holds the evaluations of `checkpoint` (beside it).
    static std::string evalJsonBeside(const std::string& checkpoint);
    // A sweep's folder (eval/Sweep.h) lists its runs, one sub-folder each, in sweep.json.
    static std::string sweepIndex(const std::string& sweepDir);
    // The evaluations a table or sweep has made (eval/EvaluateCheckpoint.h evaluateStored), in its directory.
    static std::string evaluationStore(const std::string& tableOrSweepDir);

private:
    std::string join(const char* name) const;
    std::string dir_;
};

}  // namespace graftlab
