#pragma once
// The training loop: AdamW with decay/no-decay parameter groups, lr = base_lr * batch / 256 with warm-up +
// cosine per iteration, optional gradient clipping, seeded everything, stop/pause between steps, checkpoints.
#include "data/Dataset.h"
#include "data/Loader.h"
#include "methods/Objective.h"
#include "base/recipe/Recipe.h"
#include "train/Checkpoint.h"
#include "train/Device.h"
#include "train/Optimizer.h"
#include "train/TrainStep.h"
#include "base/run/Observer.h"

#include <torch/optim/adamw.h>

#include <atomic>
#include <functional>
#include <condition_variable>
#include <memory>
#include <mutex>

namespace graftlab {

class DistContext;

struct TrainerOptions {
    std::string checkpointDir;     // empty = no checkpoints
    int64_t stopAtStep = -1;       // stop (with a checkpoint) once this many steps are done; -1 = run to the end
    std::string snapshotDir;       // where probe snapshots are stored (the run's snapshots/); empty = not stored
    // Data-parallel training (dist/Distributed.h): this rank's shard of every batch, gradients averaged over
    // ranks, weights broadcast from rank 0 at every stage start; stop and non-finite decisions taken by all
    // ranks together. Null = one process. Not owned.
    DistContext* dist = nullptr;
    // Check each step's loss on the device instead of reading it back (as on CUDA, where the fused AdamW skips a
    // non-finite step by itself): the host learns of a non-finite loss at the next log, checkpoint or probe step.
    // Always on for CUDA with the fused AdamW; this turns it on for the CPU too (tests). Needs the fused AdamW.
    bool deviceChecks = false;
};

class ProbeRunner;
class SnapshotStore;
class RunWriter;


// Options that write a trainer's checkpoints and probes into a run directory (null: neither, e.g. a data-parallel
// rank other than 0).
TrainerOptions trainerOptionsFor(const RunWriter* dir);

class Trainer {
public:
    Trainer(Recipe recipe, TrainerOptions options = {});
    ~Trainer();

    void addObserver(TrainerObserver* o) { observers_.push_back(o); }

    // Loads data and builds the model and optimizer. Throws RecipeError / FileError with the field or file.
    void prepare();
    // Continues from a checkpoint written by this recipe (model, optimizer, step, RNG).
    void resumeFrom(const std::string& checkpointPath);
    // Trains until train.steps, stopAtStep or a stop request. Returns the final state.
    TrainerState run();

    void requestStop();
    void setPaused(bool paused);

    int64_t step() const { return step_; }
    const Recipe& recipe() const { return recipe_; }
    Objective& objective() { return *objective_; }
    const Dataset& trainData() const { return *train_; }
    torch::Device device() const { return device_; }
    torch::optim::Optimizer& optimizer() { return *optimizer_; }
    // Writes a checkpoint now (into options.checkpointDir); returns its path.
    std::string saveCheckpointNow();
    const std::string& failure() const { return failure_; }

    int stage() const { return stage_; }
    // Builds stage `stage`'s objective, initialises it (`initialise`: by its init rule; else left for a
    // checkpoint load), its optimizer groups and its loader. run() calls it at stage boundaries.
    void enterStage(int stage, bool initialise);
    // Names of the parameter groups' lr multipliers, e.g. {"x1", "x0.1"}, parallel to the optimizer's groups.
    const std::vector<std::string>& groupNames() const { return groupNames_; }

private:
    void setState(TrainerState s, const std::string& detail = {});
    double applyLr(int64_t step);  // returns the base (x1) lr of the step
    void buildOptimizer(const StageConfig& st);
    // Runs the recipe's probes now (step_), hands the snapshots to the observers and the store; returns seconds.
    double runProbes();
    // The parts of run(): what observers learn at the start; a failure reported and the state set; waiting while
    // paused (false: stopped meanwhile); the stop vote of every rank; the step's context and settings; the lr
    // values of a metrics row.
    RunInfo runInfo() const;
    TrainerState fail(const std::string& what);
    bool waitWhilePaused();
    bool anyRankStops();
    StepContext stepContext() const;
    StepSettings stepSettings() const;
    std::vector<std::pair<std::string, double>> lrValues(double baseLr) const;

    Recipe recipe_;
    TrainerOptions options_;
    std::vector<TrainerObserver*> observers_;
    torch::Device device_{torch::kCPU};
    bool bf16_ = false;  // bf16 autocast in the forward pass (train.precision)
    std::shared_ptr<Dataset> train_;
    std::shared_ptr<Objective> objective_;
    // The previous stage's objective (grafting): the probes borrow its head for the loss this stage lacks.
    std::shared_ptr<Objective> previousObjective_;
    std::unique_ptr<ProbeRunner> probes_;
    std::unique_ptr<SnapshotStore> snapshots_;
    std::unique_ptr<AdamW> optimizer_;
    std::vector<double> groupMultiplier_;
    std::vector<std::string> groupNames_;
    int stage_ = 0;
    std::unique_ptr<Loader> loader_;
    int64_t step_ = 0;
    int64_t lastCheckpointStep_ = -1;
    int64_t lastProbeStep_ = -1;
    std::atomic<bool> stop_{false};
    std::atomic<bool> paused_{false};
    std::mutex pauseMutex_;
    std::condition_variable pauseCv_;
    std::string failure_;
};



}  // namespace graftlab
