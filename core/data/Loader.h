#pragma once
// Serves batches for global step s, deterministically: epoch e = s / stepsPerEpoch uses a permutation drawn
// from (seed, e), and per-step augmentation uses its own (seed, s) stream. The loader therefore has no hidden
// state beyond the step counter, which makes resume exact. The next batch is prepared on a background thread
// while the current step trains.
#include "data/Dataset.h"

#include <torch/types.h>

#include <functional>
#include <future>
#include <memory>
#include <optional>

namespace graftlab {

struct Batch {
    int64_t step = 0;
    int64_t epoch = 0;
    torch::Tensor images;               // float [0,1], N x C x H x W, un-augmented (for probes and views)
    std::vector<torch::Tensor> views;   // normalised, augmented views made by the objective's ViewMaker
    torch::Tensor labels;               // int64, N
};

// Turns a batch of [0,1] images into the views an objective trains on; `seed` is unique to the step.
using ViewMaker = std::function<std::vector<torch::Tensor>(const torch::Tensor& images01, uint64_t seed)>;

class Loader {
public:
    Loader(std::shared_ptr<const Dataset> data, int batchSize, uint64_t seed, ViewMaker makeViews,
           int rank = 0, int worldSize = 1);
    ~Loader();
    // Views made in page-locked memory (for asynchronous host-to-GPU copies); off by default.
    void setPinMemory(bool pin) { pin_ = pin; }
    // Makes the views on `device` (the loader's thread uploads the batch's 8-bit images, from pinned memory, and the
    // ViewMaker runs there; the random choices stay on the CPU). Unset: the CPU's float images, as always.
    void setViewDevice(const c10::Device& device) { viewDevice_ = device; }

    // The batch of the current step; advances the step and starts preparing the next one.
    Batch next();
    // Positions the loader so that next() returns the batch of `step`.
    void seek(int64_t step);
    int64_t stepsPerEpoch() const { return stepsPerEpoch_; }
    int64_t step() const { return step_; }
    // Dataset indices of the batch at `step` for this rank (exposed for tests of sharding).
    torch::Tensor indicesForStep(int64_t step) const;

private:
    Batch make(int64_t step) const;
    void startPrefetch();

    std::shared_ptr<const Dataset> data_;
    int batchSize_;
    uint64_t seed_;
    ViewMaker makeViews_;
    int rank_, worldSize_;
    bool pin_ = false;
    std::optional<c10::Device> viewDevice_;
    int64_t stepsPerEpoch_;
    int64_t step_ = 0;
    mutable int64_t cachedEpoch_ = -1;
    mutable torch::Tensor cachedPerm_;
    mutable std::mutex permMutex_;
    std::future<Batch> pending_;
    int64_t pendingStep_ = -1;
};

}  // namespace graftlab
