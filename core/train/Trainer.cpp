#include "train/Trainer.h"
#include "train/TrainStep.h"
#include "train/MetricsWindow.h"
#include "train/RunWriter.h"

#include <ATen/autocast_mode.h>
#include "dist/Distributed.h"
#include "base/util/ThreadEnv.h"
#include "data/Augment.h"
#include "probes/Probes.h"
#include "base/probes/Snapshot.h"
#include "train/Checkpoint.h"
#include "train/Schedule.h"
#include "base/util/Errors.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <filesystem>
#include <limits>
#include <sstream>
#include <thread>

namespace graftlab {

TrainerOptions trainerOptionsFor(const RunWriter* dir) {
    TrainerOptions o;
    if (dir) {
        o.checkpointDir = dir->checkpointDir();
        o.snapshotDir = dir->snapshotDir();
    }
    return o;
}

const char* toString(TrainerState s) {
    switch (s) {
        case TrainerState::Running: return "running";
        case TrainerState::Paused: return "paused";
        case TrainerState::Finished: return "finished";
        case TrainerState::Stopped: return "stopped";
        case TrainerState::Failed: return "failed";
    }
    return "?";
}


Trainer::Trainer(Recipe recipe, TrainerOptions options) : recipe_(std::move(recipe)), options_(std::move(options)) {}

Trainer::~Trainer() = default;

void Trainer::setState(TrainerState s, const std::string& detail) {
    for (auto* o : observers_) o->onStateChanged(s, detail);
}

void Trainer::prepare() {
    auto issues = recipe_.validate();
    if (!issues.empty()) throw RecipeError(issues.front().field, issues.front().message);
    device_ = resolveDevice(recipe_.device);
    if (device_.is_cuda() && !device_.has_index()) {
        // one GPU a rank (LOCAL_RANK-th of this machine's), named explicitly so that the loader's thread uses it too
        const int count = std::max<int>(1, int(torch::cuda::device_count()));
        const int local = options_.dist ? options_.dist->config().localRank : 0;
        if (options_.dist && ncclCompiledIn() && local >= count)
            throw std::runtime_error("rank " + std::to_string(options_.dist->rank()) + " has LOCAL_RANK " + std::to_string(local) +
                                     " but this machine has " + std::to_string(count) +
                                     " GPU(s): NCCL needs a GPU a rank (start at most that many ranks here, or set device to cpu)");
        device_ = torch::Device(torch::kCUDA, c10::DeviceIndex(local % count));
    }
    bf16_ = useBf16Autocast(recipe_.train.precision, device_);
    if (bf16_) spdlog::info("bf16 autocast in the forward pass on {} (train.precision = {})", device_.str(), recipe_.train.precision);
    if (augmentOnDevice(recipe_.data.augmentOn, device_))
        spdlog::info("views augmented on {} (data.augment_on = {})", device_.str(), recipe_.data.augmentOn);
    applyThreadSetting(recipe_.threads);

    train_ = std::make_shared<Dataset>(loadDataset(recipe_.data, Split::Train, uint64_t(recipe_.seed)));
    if (!train_->note.empty()) spdlog::warn("{}", train_->note);
    step_ = 0;
    enterStage(0, true);
    if (recipe_.probes.every > 0) {
        probes_ = std::make_unique<ProbeRunner>(recipe_, *train_, device_);
        if (!options_.snapshotDir.empty()) snapshots_ = std::make_unique<SnapshotStore>(options_.snapshotDir, recipe_.probes.keep);
    }
}

namespace {

// Which lr multiplier of the stage a parameter of the objective gets (by its name).
double multiplierFor(const std::string& name, const StageConfig& st, int depth) {
    const std::string enc = "encoder.";
    if (name.rfind(enc, 0) != 0) return st.headLr;  // decoder, projector, predictor, momentum branch
    const int layer = vitLayerId(name.substr(enc.size()), depth);
    if (layer == 0) return st.embedLr;
    if (layer <= depth) return st.blockLr.empty() ? 1.0 : st.blockLr[size_t(layer - 1)];
    return st.headLr;  // final norm
}

std::string multiplierName(double m) {
    std::ostringstream os;
    os << "x" << m;
    return os.str();
}

// Copies tensors of `from` into `to` by name: encoder.* (also into the objective's encoder copies, e.g. MoCo v3's
// momentum encoder or ConMIM's slow model), and with `all` every other tensor whose name and shape match.
// Returns how many.
// With `lowerBlocks` >= 0 only the embedding and encoder blocks below it are taken (the seed's "MIM lower blocks +
// random upper blocks" experiment): higher blocks and the final norm keep their fresh initialisation.
int graftTensors(const std::map<std::string, torch::Tensor>& from, Objective& to, bool all, int lowerBlocks) {
    torch::NoGradGuard ng;
    int copied = 0;
    const auto copies = to.encoderCopyPrefixes();
    auto copyInto = [&](const std::string& name, torch::Tensor& dst) {
        std::string src = name;
        bool isCopy = false;
        for (const auto& prefix : copies)
            if (name.rfind(prefix, 0) == 0) {
                src = "encoder." + name.substr(prefix.size());
                isCopy = true;
            }
        bool isEncoder = src.rfind("encoder.", 0) == 0;
        if (!isEncoder && !all) return;
        if (isEncoder && lowerBlocks >= 0) {
            const std::string rest = src.substr(8);
            const int layer = vitLayerId(rest, std::numeric_limits<int>::max() - 1);
            if (layer > lowerBlocks) return;  // block lowerBlocks and above, the final norm
        }
        auto it = from.find(src);
        if (it == from.end() && isCopy && all) it = from.find(name);
        if (it == from.end() || it->second.sizes() != dst.sizes()) return;
        dst.copy_(it->second);
        ++copied;
    };
    for (auto& p : to.named_parameters(true)) copyInto(p.key(), p.value());
    for (auto& b : to.named_buffers(true)) copyInto(b.key(), b.value());
    return copied;
}

std::map<std::string, torch::Tensor> tensorsOf(torch::nn::Module& m) {
    std::map<std::string, torch::Tensor> out;
    for (auto& p : m.named_parameters(true)) out[p.key()] = p.value().detach().clone();
    for (auto& b : m.named_buffers(true)) out[b.key()] = b.value().detach().clone();
    return out;
}

}  // namespace

void Trainer::enterStage(int stage, bool initialise) {
    auto stages = recipe_.effectiveStages();
    const StageConfig& st = stages[size_t(stage)];
    std::map<std::string, torch::Tensor> previous;
    if (initialise && st.init == "previous" && objective_) previous = tensorsOf(*objective_);

    // A fixed seed per stage: the same stage always starts from the same random heads.
    torch::manual_seed(uint64_t(recipe_.seed) + uint64_t(stage) * 1000003ull);
    auto objective = makeObjective(recipe_, st.method, train_->channels(), train_->mean, train_->std);
    if (initialise && st.init != "random") {
        std::map<std::string, torch::Tensor> source = previous;
        std::string origin = "the previous stage";
        if (st.init == "checkpoint") {
            origin = resolveCheckpoint(st.checkpoint);
            source = readModelTensors(origin);
        }
        int n = graftTensors(source, *objective, st.initModules == "all", st.initBlocks);
        if (n == 0)
            throw RecipeError("stages[" + std::to_string(stage) + "].init",
                              "nothing to take from " + origin + " (no tensor matches the model by name and shape)");
        spdlog::info("stage {} ({}): {} tensors from {}{}", stage + 1, st.method, n, origin,
                     st.initBlocks >= 0 ? " (the embedding and blocks 0.." + std::to_string(st.initBlocks - 1) + " only; the rest freshly initialised)" : "");
    }
    objective->to(device_);
    if (objective_ && stage > 0) {
        previousObjective_ = objective_;  // kept for the probes only: out of the optimizer, no gradients
        for (auto& p : previousObjective_->parameters()) p.set_requires_grad(false);
    }
    objective_ = objective;
    stage_ = stage;
    buildOptimizer(st);

    if (options_.dist) {
        // Every rank starts the stage from rank 0's weights and buffers.
        std::vector<torch::Tensor> tensors;
        for (auto& p : objective_->parameters())
            if (p.defined()) tensors.push_back(p.data());
        for (auto& b : objective_->buffers())
            if (b.defined()) tensors.push_back(b);
        options_.dist->broadcastFromRoot(tensors);
    }
    auto obj = objective_;
    const int rank = options_.dist ? options_.dist->rank() : 0, world = options_.dist ? options_.dist->worldSize() : 1;
    loader_ = std::make_unique<Loader>(train_, recipe_.optim.batchSize, uint64_t(recipe_.seed),
                                       [obj](const torch::Tensor& x, uint64_t seed) { return obj->makeViews(x, seed); }, rank, world);
    // data.augment_on: views made on the GPU by the loader's thread, or on the CPU and pinned there, so that the copy
    // to the device is asynchronous
    if (augmentOnDevice(recipe_.data.augmentOn, device_)) loader_->setViewDevice(device_);
    else loader_->setPinMemory(device_.is_cuda());
    loader_->seek(step_);
}

void Trainer::buildOptimizer(const StageConfig& st) {
    AdamwGroups built = adamwGroups(*objective_, recipe_, [&](const std::string& name) { return multiplierFor(name, st, recipe_.model.depth); });
    auto& groups = built.groups;
    groupMultiplier_ = built.multipliers;
    groupNames_.clear();
    for (double m : groupMultiplier_) groupNames_.push_back(multiplierName(m));
    if (groups.empty()) throw RecipeError("stages[" + std::to_string(stage_) + "].lr_mult", "every parameter is frozen");
    optimizer_ = std::make_unique<AdamW>(groups, torch::optim::AdamWOptions(recipe_.peakLr()));
}

void Trainer::resumeFrom(const std::string& path) {
    auto meta = readCheckpointMeta(path);
    step_ = meta.step;
    if (meta.stage != stage_) enterStage(meta.stage, false);
    loadModelState(path, *objective_, true);
    loadOptimizerState(path, *optimizer_);
    restoreRngState(path);
    loader_->seek(step_);
    lastCheckpointStep_ = meta.step;
    if (snapshots_) snapshots_->truncateAfter(step_);
    if (stage_ > 0 && probes_ && !options_.checkpointDir.empty()) {
        // The probes borrow the previous stage's head: its final checkpoint is kept for that (see saveCheckpointNow).
        std::string boundary = (std::filesystem::path(options_.checkpointDir) / checkpointFileName(recipe_.stageStart(stage_))).string();
        if (std::filesystem::exists(boundary)) {
            auto prevMeta = readCheckpointMeta(boundary);
            auto stages = recipe_.effectiveStages();
            if (prevMeta.stage == stage_ - 1) {
                previousObjective_ = makeObjective(recipe_, stages[size_t(prevMeta.stage)].method, train_->channels(), train_->mean, train_->std);
                loadModelState(boundary, *previousObjective_, true);
                previousObjective_->to(device_);
                for (auto& p : previousObjective_->parameters()) p.set_requires_grad(false);
            }
        } else {
            spdlog::warn("probes: {} is gone, so probes that need stage {}'s head are unavailable after this resume", boundary, stage_);
        }
    }
    spdlog::info("resumed from {} at step {} (stage {})", path, step_, stage_ + 1);
}

double Trainer::applyLr(int64_t step) {
    auto stages = recipe_.effectiveStages();
    const StageConfig& st = stages[size_t(stage_)];
    // data-parallel ranks together train on world x batch_size images a step
    const double peak = recipe_.peakLr(stage_, options_.dist ? options_.dist->worldSize() : 1);
    int64_t warmup = st.warmupSteps >= 0 ? st.warmupSteps : recipe_.optim.warmupSteps;
    double lr = warmupCosineLr(step - recipe_.stageStart(stage_), st.steps, warmup, peak, recipe_.optim.minLr);
    auto& groups = optimizer_->param_groups();
    for (size_t i = 0; i < groups.size(); ++i)
        static_cast<torch::optim::AdamWOptions&>(groups[i].options()).lr(lr * groupMultiplier_[i]);
    return lr;
}

std::string Trainer::saveCheckpointNow() {
    if (options_.checkpointDir.empty()) return {};
    std::filesystem::create_directories(options_.checkpointDir);
    CheckpointMeta meta;
    meta.recipe = recipe_.toJson();
    meta.step = step_;
    meta.stage = stage_;
    meta.channels = train_->channels();
    meta.dataset = train_->name;
    meta.mean = train_->mean;
    meta.std = train_->std;
    std::string path = (std::filesystem::path(options_.checkpointDir) / checkpointFileName(step_)).string();
    saveCheckpoint(path, *objective_, optimizer_.get(), meta);
    std::vector<int64_t> stageEnds;  // each finished stage's final weights stay (evaluation, probes after resume)
    for (int s = 1; s < int(recipe_.effectiveStages().size()); ++s) stageEnds.push_back(recipe_.stageStart(s));
    pruneCheckpoints(options_.checkpointDir, step_, recipe_.train.keepEvery, stageEnds);
    lastCheckpointStep_ = step_;
    for (auto* o : observers_) o->onCheckpoint(path, step_);
    return path;
}

double Trainer::runProbes() {
    if (!probes_) return 0.0;
    auto t0 = std::chrono::steady_clock::now();
    // Probes run on this rank alone: no collective may happen inside them.
    struct NoDist {
        DistContext* saved = activeDist();
        NoDist() { setActiveDist(nullptr); }
        ~NoDist() { setActiveDist(saved); }
    } noDist;
    std::string previousName;
    if (previousObjective_ && stage_ > 0)
        previousName = "stage " + std::to_string(stage_) + " (" + recipe_.effectiveStages()[size_t(stage_ - 1)].method + ")";
    auto snaps = probes_->run(step_, stage_, *objective_, previousObjective_.get(), previousName);
    lastProbeStep_ = step_;
    objective_->train();
    for (const auto& s : snaps) {
        if (snapshots_) snapshots_->append(s);
        for (auto* o : observers_) o->onSnapshot(s);
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void Trainer::requestStop() {
    stop_ = true;
    pauseCv_.notify_all();
}

void Trainer::setPaused(bool paused) {
    paused_ = paused;
    pauseCv_.notify_all();
}

RunInfo Trainer::runInfo() const {
    RunInfo info;
    info.recipe = recipe_.toJson();
    info.dataset = train_->name;
    info.datasetNote = train_->note;
    info.trainImages = train_->size();
    for (const auto& p : objective_->parameters()) info.parameters += p.requires_grad() ? p.numel() : 0;
    info.startStep = step_;
    info.totalSteps = recipe_.totalSteps();
    info.device = device_.str();
    return info;
}

TrainerState Trainer::fail(const std::string& what) {
    failure_ = what + "; the optimizer step was not taken and the last checkpoint is kept " +
               "(lower optim.base_lr or set optim.clip_grad)";
    spdlog::error("{}", failure_);
    setState(TrainerState::Failed, failure_);
    return TrainerState::Failed;
}

bool Trainer::waitWhilePaused() {
    setState(TrainerState::Paused);
    std::unique_lock<std::mutex> lock(pauseMutex_);
    pauseCv_.wait(lock, [&] { return !paused_ || stop_; });
    if (stop_) return false;
    setState(TrainerState::Running);
    return true;
}

bool Trainer::anyRankStops() {
    if (!options_.dist) return bool(stop_);
    auto flag = torch::full({1}, stop_ ? 1.0f : 0.0f);
    options_.dist->allReduceSum(flag, "stop decision");
    if (flag.item<float>() > 0) stop_ = true;
    return bool(stop_);
}

StepContext Trainer::stepContext() const {
    StepContext ctx;
    ctx.step = step_;
    ctx.totalSteps = recipe_.totalSteps();
    ctx.stage = stage_;
    ctx.stageStep = step_ - recipe_.stageStart(stage_);
    ctx.stageSteps = recipe_.effectiveStages()[size_t(stage_)].steps;
    ctx.seed = uint64_t(recipe_.seed);
    ctx.generator = stepGenerator(uint64_t(recipe_.seed), step_);
    return ctx;
}

StepSettings Trainer::stepSettings() const {
    // On CUDA with the fused AdamW the loss is checked on the device: a non-finite loss skips the optimizer step
    // there (found_inf), and the host reads the outcome only where it stops anyway (logging, checkpoints, probes,
    // the end): no step waits for the GPU.
    StepSettings settings;
    settings.device = device_;
    settings.bf16 = bf16_;
    settings.deviceChecks = optimizer_->fused() && !options_.dist && (device_.is_cuda() || options_.deviceChecks);
    settings.clipGrad = recipe_.optim.clipGrad;
    settings.dist = options_.dist;
    return settings;
}

std::vector<std::pair<std::string, double>> Trainer::lrValues(double baseLr) const {
    std::vector<std::pair<std::string, double>> out{{"lr", baseLr}};
    for (size_t g = 0; g < groupNames_.size(); ++g)
        if (g == 0 || groupNames_[g] != groupNames_[g - 1]) out.emplace_back("lr/" + groupNames_[g], baseLr * groupMultiplier_[g]);
    return out;
}

TrainerState Trainer::run() {
    if (!objective_) prepare();
    const int64_t total = recipe_.totalSteps();
    const int64_t endStep = options_.stopAtStep >= 0 ? std::min(total, options_.stopAtStep) : total;
    for (auto* o : observers_) o->onRunStarted(runInfo());
    setState(TrainerState::Running);

    loader_->seek(step_);
    objective_->train();
    MetricsWindow window(step_);
    DeviceWindow deviceWindow;
    NonFiniteGuard nonFinite(recipe_.train.onNonFinite == "skip");
    std::vector<std::pair<std::string, double>> lastExtra;  // the objective's own values after the last step
    bool lastStepSkipped = false;  // as on the host path, no checkpoint right after a skipped batch
    // Reads what the device kept of the last steps (one sync); false when the run has failed.
    auto readDeviceWindow = [&]() -> bool {
        auto w = deviceWindow.read();
        lastStepSkipped = w.currentBadRun > 0;
        if (auto failure = nonFinite.deviceWindow(w, step_)) {
            fail(*failure);
            return false;
        }
        window.addMeans(w.means, w.good);
        return true;
    };
    if (probes_ && step_ == 0) window.addProbeSeconds(runProbes());  // the untrained model: every series starts from it
    const int world = options_.dist ? options_.dist->worldSize() : 1;  // images of every rank

    struct ActiveDist {
        explicit ActiveDist(DistContext* d) { setActiveDist(d); }
        ~ActiveDist() { setActiveDist(nullptr); }
    } activeDistGuard(options_.dist);

    try {
        while (step_ < endStep && !anyRankStops()) {
            if (paused_) {
                if (!waitWhilePaused()) break;
                window.restart(step_);
            }
            // Stage boundary: the next stage takes over (grafting), initialised as its recipe says.
            if (recipe_.stageAt(step_) != stage_) {
                if (step_ != lastCheckpointStep_) saveCheckpointNow();  // the finished stage's weights stay on disk
                enterStage(recipe_.stageAt(step_), true);
                objective_->train();
                spdlog::info("stage {} of {}: {} from step {}", stage_ + 1, recipe_.effectiveStages().size(),
                             recipe_.effectiveStages()[size_t(stage_)].method, step_);
            }
            Batch batch = loader_->next();
            for (auto& v : batch.views) v = v.to(device_, /*non_blocking=*/true);
            const double baseLr = applyLr(step_);
            const StepSettings settings = stepSettings();
            StepContext ctx = stepContext();
            StepOutcome done = trainStep(*objective_, *optimizer_, batch, ctx, settings);
            if (settings.deviceChecks) {
                deviceWindow.add(done.out, done.deviceLoss, done.bad, step_);
            } else if (done.skipped) {
                if (auto failure = nonFinite.skippedStep(done.loss, step_)) return fail(*failure);
                ++step_;  // skipped: no log, probe or checkpoint at this step
                continue;
            } else {
                nonFinite.finiteStep();
                window.addStep(done.loss, done.out.parts);
            }
            ++step_;
            lastExtra = std::move(done.extra);

            const bool probeNow = probes_ && (step_ % recipe_.probes.every == 0 || step_ == endStep || recipe_.stageAt(step_) != stage_);
            const bool logNow = step_ % recipe_.train.logEvery == 0 || step_ == endStep;
            const bool checkpointNow = step_ % recipe_.train.checkpointEvery == 0 && step_ != lastCheckpointStep_;
            if (deviceWindow.steps() > 0 && (probeNow || logNow || checkpointNow || step_ >= endStep || stop_ || paused_ ||
                                             recipe_.stageAt(step_) != stage_)) {
                if (!readDeviceWindow()) return TrainerState::Failed;
            }
            if (probeNow) window.addProbeSeconds(runProbes());
            if (logNow && !window.empty()) {  // a window of skipped batches only has nothing to log
                MetricsWindow::RowInfo info;
                info.step = step_;
                info.epoch = batch.epoch;
                info.stage = stage_;
                info.lr = lrValues(baseLr);
                info.imagesPerStep = double(recipe_.optim.batchSize) * world;
                info.probes = bool(probes_);
                info.extra = lastExtra;
                MetricsRow row = window.close(info);
                for (auto* o : observers_) o->onMetrics(row);
            }
            if (checkpointNow && !lastStepSkipped) saveCheckpointNow();
            lastStepSkipped = false;
        }
        if (deviceWindow.steps() > 0 && !readDeviceWindow()) return TrainerState::Failed;
        bool stopped = step_ < total;
        if (probes_ && stopped && step_ != lastProbeStep_) runProbes();  // what the model was when stopped
        if (step_ != lastCheckpointStep_) saveCheckpointNow();
        setState(stopped ? TrainerState::Stopped : TrainerState::Finished);
        return stopped ? TrainerState::Stopped : TrainerState::Finished;
    } catch (const std::exception& e) {
        failure_ = e.what();
        setState(TrainerState::Failed, failure_);
        throw;
    }
}

}  // namespace graftlab
