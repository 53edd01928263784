#include "train/Trainer.h"
#include "data/Augment.h"
#include "train/Checkpoint.h"
#include "train/Schedule.h"
#include "util/Errors.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <filesystem>
#include <thread>

namespace graftlab {

const char* toString(TrainerState s) {
    switch (s) {
        case TrainerState::Idle: return "idle";
        case TrainerState::Running: return "running";
        case TrainerState::Paused: return "paused";
        case TrainerState::Stopping: return "stopping";
        case TrainerState::Finished: return "finished";
        case TrainerState::Stopped: return "stopped";
        case TrainerState::Failed: return "failed";
    }
    return "?";
}

double MetricsRow::value(const std::string& key, double fallback) const {
    for (const auto& [k, v] : values)
        if (k == key) return v;
    return fallback;
}

nlohmann::json MetricsRow::toJson() const {
    nlohmann::json j;
    j["step"] = step;
    j["epoch"] = epoch;
    j["stage"] = stage;
    for (const auto& [k, v] : values) j[k] = std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
    return j;
}

MetricsRow MetricsRow::fromJson(const nlohmann::json& j) {
    MetricsRow r;
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() == "step") r.step = it->get<int64_t>();
        else if (it.key() == "epoch") r.epoch = it->get<int64_t>();
        else if (it.key() == "stage") r.stage = it->get<int>();
        else if (it->is_number()) r.values.emplace_back(it.key(), it->get<double>());
        else if (it->is_null()) r.values.emplace_back(it.key(), std::nan(""));
    }
    return r;
}

torch::Device resolveDevice(const std::string& device) {
    if (device == "cpu") return torch::kCPU;
    bool cuda = torch::cuda::is_available();
    if (device == "cuda") {
        if (!cuda) throw RecipeError("device", "cuda requested but this LibTorch has no CUDA device available");
        return torch::kCUDA;
    }
    return cuda ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

void applyThreadSetting(int threads) {
    int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    torch::set_num_threads(n);
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
    applyThreadSetting(recipe_.threads);

    train_ = std::make_shared<Dataset>(loadDataset(recipe_.data, Split::Train, uint64_t(recipe_.seed)));
    if (!train_->note.empty()) spdlog::warn("{}", train_->note);

    torch::manual_seed(uint64_t(recipe_.seed));
    objective_ = makeObjective(recipe_, train_->channels(), train_->mean, train_->std);
    objective_->to(device_);

    // AdamW groups: weights with decay, and biases / norms / other 1-D parameters without.
    std::vector<torch::Tensor> decay, noDecay;
    for (const auto& p : objective_->named_parameters(true)) {
        if (!p.value().requires_grad()) continue;
        const std::string& name = p.key();
        bool isBias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
        (p.value().dim() <= 1 || isBias ? noDecay : decay).push_back(p.value());
    }
    auto opts = [&](double wd) {
        return std::make_unique<torch::optim::AdamWOptions>(
            torch::optim::AdamWOptions(recipe_.peakLr())
                .betas({recipe_.optim.beta1, recipe_.optim.beta2})
                .weight_decay(wd)
                .eps(1e-8));
    };
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(decay, opts(recipe_.optim.weightDecay));
    groups.emplace_back(noDecay, opts(0.0));
    groupMultiplier_ = {1.0, 1.0};
    optimizer_ = std::make_unique<torch::optim::AdamW>(groups, *opts(recipe_.optim.weightDecay));

    auto objective = objective_;
    loader_ = std::make_unique<Loader>(
        train_, recipe_.optim.batchSize, uint64_t(recipe_.seed),
        [objective](const torch::Tensor& x, uint64_t seed) { return objective->makeViews(x, seed); });
    step_ = 0;
}

void Trainer::resumeFrom(const std::string& path) {
    auto meta = readCheckpointMeta(path);
    loadModelState(path, *objective_, true);
    loadOptimizerState(path, *optimizer_);
    restoreRngState(path);
    step_ = meta.step;
    lastCheckpointStep_ = meta.step;
    spdlog::info("resumed from {} at step {}", path, step_);
}

void Trainer::applyLr(int64_t step) {
    double lr = warmupCosineLr(step, recipe_.train.steps, recipe_.optim.warmupSteps, recipe_.peakLr(), recipe_.optim.minLr);
    auto& groups = optimizer_->param_groups();
    for (size_t i = 0; i < groups.size(); ++i)
        static_cast<torch::optim::AdamWOptions&>(groups[i].options()).lr(lr * groupMultiplier_[i]);
}

std::string Trainer::saveCheckpointNow() {
    if (options_.checkpointDir.empty()) return {};
    std::filesystem::create_directories(options_.checkpointDir);
    CheckpointMeta meta;
    meta.recipe = recipe_.toJson();
    meta.step = step_;
    meta.channels = train_->channels();
    meta.dataset = train_->name;
    meta.mean = train_->mean;
    meta.std = train_->std;
    std::string path = (std::filesystem::path(options_.checkpointDir) / checkpointFileName(step_)).string();
    saveCheckpoint(path, *objective_, optimizer_.get(), meta);
    pruneCheckpoints(options_.checkpointDir, step_, recipe_.train.keepEvery);
    lastCheckpointStep_ = step_;
    for (auto* o : observers_) o->onCheckpoint(path, step_);
    return path;
}

void Trainer::requestStop() {
    stop_ = true;
    pauseCv_.notify_all();
}

void Trainer::setPaused(bool paused) {
    paused_ = paused;
    pauseCv_.notify_all();
}

TrainerState Trainer::run() {
    if (!objective_) prepare();
    const int64_t total = recipe_.train.steps;
    const int64_t endStep = options_.stopAtStep >= 0 ? std::min(total, options_.stopAtStep) : total;

    RunInfo info;
    info.recipe = recipe_.toJson();
    info.dataset = train_->name;
    info.datasetNote = train_->note;
    info.trainImages = train_->size();
    for (const auto& p : objective_->parameters()) info.parameters += p.requires_grad() ? p.numel() : 0;
    info.startStep = step_;
    info.totalSteps = total;
    info.device = device_.str();
    for (auto* o : observers_) o->onRunStarted(info);
    setState(TrainerState::Running);

    loader_->seek(step_);
    objective_->train();
    std::map<std::string, double> windowSums;
    int windowSteps = 0;
    auto windowStart = std::chrono::steady_clock::now();
    const int log = recipe_.train.logEvery;

    try {
        while (step_ < endStep && !stop_) {
            if (paused_) {
                setState(TrainerState::Paused);
                std::unique_lock<std::mutex> lock(pauseMutex_);
                pauseCv_.wait(lock, [&] { return !paused_ || stop_; });
                if (stop_) break;
                setState(TrainerState::Running);
                windowStart = std::chrono::steady_clock::now();
            }
            Batch batch = loader_->next();
            for (auto& v : batch.views) v = v.to(device_, /*non_blocking=*/true);

            applyLr(step_);
            StepContext ctx;
            ctx.step = step_;
            ctx.totalSteps = total;
            ctx.seed = uint64_t(recipe_.seed);
            ctx.generator = at::detail::createCPUGenerator(streamSeed(uint64_t(recipe_.seed), uint64_t(step_), 0x4d41534bull /*MASK*/));

            optimizer_->zero_grad();
            LossOutput out = objective_->computeLoss(batch, ctx);
            double lossValue = out.total.item<double>();
            if (!std::isfinite(lossValue)) {
                failure_ = "loss is " + std::string(std::isnan(lossValue) ? "NaN" : "infinite") + " at step " +
                           std::to_string(step_) + "; the optimizer step was not taken and the last checkpoint is kept " +
                           "(lower optim.base_lr or set optim.clip_grad)";
                spdlog::error("{}", failure_);
                setState(TrainerState::Failed, failure_);
                return TrainerState::Failed;
            }
            out.total.backward();
            if (recipe_.optim.clipGrad > 0)
                torch::nn::utils::clip_grad_norm_(objective_->parameters(), recipe_.optim.clipGrad);
            optimizer_->step();
            std::vector<std::pair<std::string, double>> extra;
            objective_->afterOptimizerStep(ctx, extra);
            ++step_;

            windowSums["loss"] += lossValue;
            for (auto& [name, t] : out.parts) windowSums["loss/" + name] += t.item<double>();
            ++windowSteps;
            if (step_ % log == 0 || step_ == endStep) {
                double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - windowStart).count();
                MetricsRow row;
                row.step = step_;
                row.epoch = batch.epoch;
                row.stage = 0;
                row.values.emplace_back("loss", windowSums["loss"] / windowSteps);
                for (auto& [k, v] : windowSums)
                    if (k != "loss") row.values.emplace_back(k, v / windowSteps);
                row.values.emplace_back("lr", static_cast<torch::optim::AdamWOptions&>(optimizer_->param_groups()[0].options()).lr());
                row.values.emplace_back("images_per_s", seconds > 0 ? windowSteps * double(recipe_.optim.batchSize) / seconds : 0.0);
                for (auto& e : extra) row.values.push_back(e);
                for (auto* o : observers_) o->onMetrics(row);
                windowSums.clear();
                windowSteps = 0;
                windowStart = std::chrono::steady_clock::now();
            }
            if (step_ % recipe_.train.checkpointEvery == 0 && step_ != lastCheckpointStep_) saveCheckpointNow();
        }
        bool stopped = step_ < total;
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
