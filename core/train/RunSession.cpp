#include "train/RunSession.h"
#include "dist/Distributed.h"
#include "base/run/RunLayout.h"
#include "base/run/RunLock.h"
#include "base/util/Errors.h"

namespace graftlab {

void RunSession::build(Recipe recipe, RunDirMode mode, const RunSessionOptions& options) {
    const bool writes = !options.dist || options.dist->rank() == 0;
    if (writes) dir_ = std::make_unique<RunWriter>(path_, mode);
    else recipe.probes.every = 0;  // probes are rank 0's
    TrainerOptions o = trainerOptionsFor(dir_.get());
    o.dist = options.dist;
    o.stopAtStep = options.stopAtStep;
    trainer_ = std::make_unique<Trainer>(std::move(recipe), o);
    trainer_->prepare();
    if (dir_) trainer_->addObserver(dir_.get());
}

RunSession::RunSession(Recipe recipe, const std::string& dir, RunDirMode mode, const RunSessionOptions& options) : path_(dir) {
    if (mode == RunDirMode::Resume) throw std::invalid_argument("RunSession: a continued run needs its checkpoint");
    Recipe copy = recipe;
    build(std::move(recipe), mode, options);
    if (dir_) dir_->writeRecipe(copy);
}

RunSession::RunSession(Recipe recipe, const std::string& dir, const std::string& checkpoint, bool recipeChanged,
                       const RunSessionOptions& options)
    : path_(dir) {
    Recipe copy = recipe;
    build(std::move(recipe), RunDirMode::Resume, options);
    trainer_->resumeFrom(checkpoint);
    if (dir_) {
        dir_->truncateMetricsAfter(trainer_->step());
        if (recipeChanged) dir_->writeRecipe(copy);
    }
}

RunSession::~RunSession() = default;

std::string RunSession::newestCheckpoint(const std::string& dir) {
    const RunLayout layout(dir);
    if (!layout.holdsRun()) throw FileError(dir, "holds no run (no recipe.json)");
    std::string ckpt = latestGoodCheckpoint(layout.checkpoints());
    std::string writer = RunLock::holder(dir);
    if (!writer.empty())
        throw FileError(dir, "is being written by " + writer + "; wait for it to end or stop it (it writes a checkpoint), then resume");
    if (ckpt.empty()) throw FileError(layout.checkpoints(), "no readable checkpoint to resume from");
    return ckpt;
}

}  // namespace graftlab
