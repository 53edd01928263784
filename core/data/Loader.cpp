#include "data/Loader.h"
#include "data/Augment.h"
#include "util/DeviceCopy.h"
#include "base/util/Errors.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/DeviceGuard.h>
#include <torch/torch.h>

namespace graftlab {

Loader::Loader(std::shared_ptr<const Dataset> data, int batchSize, uint64_t seed, ViewMaker makeViews, int rank,
               int worldSize)
    : data_(std::move(data)), batchSize_(batchSize), seed_(seed), makeViews_(std::move(makeViews)), rank_(rank),
      worldSize_(worldSize) {
    int64_t global = int64_t(batchSize_) * worldSize_;
    stepsPerEpoch_ = data_->size() / global;
    if (stepsPerEpoch_ < 1)
        throw RecipeError("optim.batch_size", "batch size " + std::to_string(global) + " is larger than the dataset (" +
                                                  std::to_string(data_->size()) + " images)");
}

Loader::~Loader() {
    if (pending_.valid()) pending_.wait();
}

torch::Tensor Loader::indicesForStep(int64_t step) const {
    int64_t epoch = step / stepsPerEpoch_;
    int64_t within = step % stepsPerEpoch_;
    torch::Tensor perm;
    {
        std::lock_guard<std::mutex> lock(permMutex_);
        if (epoch != cachedEpoch_) {
            auto gen = at::detail::createCPUGenerator(streamSeed(seed_, uint64_t(epoch), 0x5045524dull /*PERM*/));
            cachedPerm_ = torch::randperm(data_->size(), gen, torch::TensorOptions().dtype(torch::kInt64));
            cachedEpoch_ = epoch;
        }
        perm = cachedPerm_;
    }
    // Global batch (all ranks) is contiguous in the permutation; each rank takes its own slice.
    int64_t start = within * int64_t(batchSize_) * worldSize_ + int64_t(rank_) * batchSize_;
    return perm.slice(0, start, start + batchSize_);
}

Batch Loader::make(int64_t step) const {
    torch::NoGradGuard ng;
    Batch b;
    b.step = step;
    b.epoch = step / stepsPerEpoch_;
    auto idx = indicesForStep(step);
    auto raw = data_->images.index_select(0, idx);
    b.labels = data_->labels.index_select(0, idx);
    // On a GPU: the 8-bit images travel (a quarter of the bytes of floats) and everything after runs there, queued on
    // the device's default stream as the training step's work is, so the step that takes the batch sees it made.
    c10::OptionalDeviceGuard guard;
    if (viewDevice_) {
        if (!viewDevice_->is_cpu()) guard.reset_device(*viewDevice_);
        raw = toDeviceAsync(raw, *viewDevice_);
    }
    b.images = raw.to(torch::kFloat32).div_(255.f);
    if (makeViews_) b.views = makeViews_(b.images, streamSeed(seed_, uint64_t(step), 0x41554721ull /*AUG*/));
    if (pin_)
        for (auto& v : b.views)
            if (v.is_cpu()) v = v.pin_memory();
    return b;
}

void Loader::startPrefetch() {
    pendingStep_ = step_;
    int64_t s = step_;
    pending_ = std::async(std::launch::async, [this, s] { return make(s); });
}

Batch Loader::next() {
    Batch b;
    if (pending_.valid() && pendingStep_ == step_) {
        b = pending_.get();  // rethrows a failure of the background thread here
    } else {
        if (pending_.valid()) pending_.wait();
        b = make(step_);
    }
    ++step_;
    startPrefetch();
    return b;
}

void Loader::seek(int64_t step) {
    if (pending_.valid()) pending_.wait();
    pending_ = {};
    pendingStep_ = -1;
    step_ = step;
}

}  // namespace graftlab
