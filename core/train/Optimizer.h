#pragma once
// AdamW as the trainer and the benchmark step it, and gradient clipping, both without reading anything back from
// the device inside a step.
//
// graftlab::AdamW is torch::optim::AdamW (same options, groups, per-parameter state and checkpoint format) whose
// step runs, where this LibTorch has it, PyTorch's fused AdamW kernel (at::_fused_adamw_: one launch per
// parameter group instead of ~10 small kernels per parameter; CUDA from LibTorch 2.0, CPU from 2.4) — what
// `torch.optim.AdamW(fused=True)` runs. The fused step also takes a `found_inf` flag on the device: when it is
// nonzero, no parameter, moment or step count changes (how the trainer skips a non-finite loss without waiting for
// the loss to reach the host). Elsewhere (Debian's LibTorch 1.13, GRAFTLAB_FUSED_ADAMW=0) it is LibTorch's AdamW.
// tests/core/test_train.cpp compares the two step by step where the fused kernel exists.
#include "base/recipe/Recipe.h"

#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>
#include <unordered_map>

namespace graftlab {

// AdamW's parameter groups, built in one place for pretraining (the trainer, bench) and fine-tuning (eval): one group
// per (lr multiplier, weight decay or not), the largest multiplier first; decay on weight matrices, none on biases,
// norms and other 1-D parameters, nor on the names in `noDecay` (fine-tuning's cls_token, as MAE's
// param_groups_lrd); a multiplier of 0 freezes a parameter (requires_grad off, in no group). A group's lr starts at
// peakLr x its multiplier (the caller sets each step's lr times the group's multiplier).
struct AdamwGroups {
    std::vector<torch::optim::OptimizerParamGroup> groups;
    std::vector<double> multipliers;     // per group
    std::vector<std::string> firstNames; // per group: the name of its first parameter (for logs)
};
struct AdamwSettings {
    double peakLr = 1e-3;
    double beta1 = 0.9, beta2 = 0.999;
    double weightDecay = 0.05;
    std::set<std::string> noDecay;
};
AdamwGroups adamwGroups(const std::vector<std::pair<std::string, torch::Tensor>>& namedParameters, const AdamwSettings& settings,
                        const std::function<double(const std::string&)>& multiplierOf);
// The pretraining groups of a recipe's model (optim.* of `recipe`, its stage-0 peak lr).
AdamwGroups adamwGroups(torch::nn::Module& model, const Recipe& recipe, const std::function<double(const std::string&)>& multiplierOf);

// Whether the fused AdamW kernel exists for parameters on `device` in this build (and GRAFTLAB_FUSED_ADAMW is not 0).
bool fusedAdamwAvailable(const torch::Device& device);
void setFusedAdamwEnabled(bool on);  // tests and A/B comparisons

class AdamW : public torch::optim::AdamW {
public:
    AdamW(std::vector<torch::optim::OptimizerParamGroup> groups, torch::optim::AdamWOptions defaults);

    // One step over every parameter with a gradient. With the fused kernel, a defined `foundInf` (0-dim float on
    // the parameters' device) skips the whole step where it is nonzero; without it, `foundInf` must be undefined.
    void stepWithFlag(const at::Tensor& foundInf);
    at::Tensor step(LossClosure closure = nullptr) override;

    // True when steps go through the fused kernel (decided by the first parameter's device).
    bool fused() const { return fused_; }

    // The fused path counts steps on the device; saving writes them into the per-parameter state first (one read
    // back per checkpoint), loading starts the device counts from the loaded state.
    void save(torch::serialize::OutputArchive& archive) const override;
    void load(torch::serialize::InputArchive& archive) override;

private:
    void syncStepsToState() const;
    bool fused_ = false;
    // parameter -> its step count as a float tensor on the parameter's device (the fused kernel's state_steps)
    mutable std::unordered_map<const void*, at::Tensor> deviceSteps_;
};

// Scales the gradients of `params` so that their global 2-norm is at most maxNorm (PyTorch's clip_grad_norm_:
// coefficient maxNorm / (norm + 1e-6), capped at 1), computed on the device: nothing is read back. Returns the norm
// before clipping as a 0-dim tensor.
at::Tensor clipGradNorm(const std::vector<at::Tensor>& params, double maxNorm);

}  // namespace graftlab
