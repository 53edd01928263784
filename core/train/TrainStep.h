#pragma once
// One optimizer step, written once: the forward (under bf16 autocast when asked), the loss check, the backward, the
// ranks' gradient average, clipping, the AdamW step and the objective's update after it (MoCo v3's momentum
// encoder, ConMIM's slow model). The trainer runs it on both of its paths and `bench` times it; policy (skip or
// stop on a non-finite loss, the ranks' vote, metric windows) stays with the caller.
//
// Two ways to learn that a loss is not finite:
//  - host-checked: the loss is read back before the backward; a non-finite one returns `skipped` with nothing
//    changed (no backward, no optimizer step, no momentum update);
//  - device-checked (CUDA with the fused AdamW; a CPU with LibTorch >= 2.4 in tests): nothing is read back; the
//    fused AdamW skips its step where `bad` is 1 and the momentum update keeps its target (methods/Ema.h), so a
//    skipped batch changes no weight on either path.
#include "data/Loader.h"
#include "methods/Objective.h"
#include "train/Optimizer.h"

#include <ATen/Tensor.h>
#include <torch/types.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace graftlab {

class DistContext;

struct StepSettings {
    torch::Device device{torch::kCPU};
    bool bf16 = false;              // bf16 autocast in the forward
    bool deviceChecks = false;      // see above; needs the fused AdamW
    double clipGrad = 0;            // optim.clip_grad; 0 = none
    DistContext* dist = nullptr;    // host-checked only: the non-finite vote and the gradient average of the ranks
    std::function<void()> mark;     // bench's timer: called after the forward, the backward, the optimizer and the update
};

struct StepOutcome {
    LossOutput out;                // the forward's losses
    // host-checked
    bool skipped = false;          // the loss was not finite (on any rank): nothing changed
    double loss = 0;               // the total loss, read back (NaN or inf when skipped)
    // device-checked
    at::Tensor deviceLoss;         // the total loss as a 0-dim float on the device
    at::Tensor bad;                // 0-dim bool on the device: the step was skipped there
    std::vector<std::pair<std::string, double>> extra;  // the objective's values after its update ("momentum")
};

// The per-step randomness (masks, ...) of step `step` of a run seeded `seed`: the trainer's and bench's.
at::Generator stepGenerator(uint64_t seed, int64_t step);

StepOutcome trainStep(Objective& objective, AdamW& optimizer, const Batch& batch, StepContext& ctx, const StepSettings& settings);

}  // namespace graftlab
