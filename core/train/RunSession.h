#pragma once
// RunSession: sets up one run (trainer + RunWriter + lock) the same way for the CLI, the table and the GUI.
// One run directory being trained: a new run (the recipe written to recipe.json), or a run continued from one of
// its checkpoints (metrics rows, TensorBoard events and probe snapshots after it dropped; an extended recipe
// written back). The run directory observes the trainer; callers add their own observers (progress, the GUI
// bridge) and call run(). The CLI's train and resume, the table and the GUI's TrainingSession all start runs
// here, so a run directory is always set up the same way.
#include "train/RunWriter.h"
#include "train/Trainer.h"

#include <memory>
#include <string>

namespace graftlab {

class DistContext;

struct RunSessionOptions {
    DistContext* dist = nullptr;  // data-parallel: one session per rank; rank 0 alone writes the directory
    int64_t stopAtStep = -1;      // stop (with a checkpoint) once this many steps are done
};

class RunSession {
public:
    // A new run of `recipe` in `dir` (Create refuses a directory that holds a run; Force replaces it).
    RunSession(Recipe recipe, const std::string& dir, RunDirMode mode, const RunSessionOptions& options = {});
    // The run in `dir` continued from `checkpoint` with `recipe`: the directory's own, or one extended to more steps
    // (`recipeChanged`: written back to recipe.json).
    RunSession(Recipe recipe, const std::string& dir, const std::string& checkpoint, bool recipeChanged,
               const RunSessionOptions& options = {});
    ~RunSession();

    Trainer& trainer() { return *trainer_; }
    RunWriter* writer() { return dir_.get(); }  // null on a data-parallel rank other than 0
    const std::string& path() const { return path_; }
    bool complete() const { return trainer_->step() >= trainer_->recipe().totalSteps(); }

    void addObserver(TrainerObserver* o) { trainer_->addObserver(o); }
    // Trains to the end, the stop step or a stop request (Trainer::run).
    TrainerState run() { return trainer_->run(); }

    // The newest readable checkpoint of the run in `dir`; FileError naming the folder when there is none.
    static std::string newestCheckpoint(const std::string& dir);

private:
    void build(Recipe recipe, RunDirMode mode, const RunSessionOptions& options);
    std::string path_;
    std::unique_ptr<RunWriter> dir_;
    std::unique_ptr<Trainer> trainer_;
};

}  // namespace graftlab
