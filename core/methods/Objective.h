#pragma once
// One pretraining method = one Objective: it owns the encoder and its heads, makes the views it needs from a
// batch, and returns named losses. The trainer knows nothing method-specific.
#include "data/Loader.h"
#include "methods/Flops.h"
#include "model/Vit.h"
#include "base/recipe/Recipe.h"

#include <ATen/core/Generator.h>
#include <torch/nn/module.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace graftlab {

class MaeDecoderImpl;
class MocoHeadsImpl;

// The heads an objective puts around its encoder, for the two-loss probes (gradient cosines, reconstructions)
// and for grafting, without anyone knowing the objective's class. Null where the objective has no such head.
struct ObjectiveHeads {
    std::shared_ptr<MaeDecoderImpl> mimDecoder;  // the MIM head: an MAE decoder
    MaeConfig mae;                               // its loss settings (mask ratio, norm-pix)
    int patchSize = 0;
    std::shared_ptr<MocoHeadsImpl> clHeads;      // the CL head: MoCo v3's projector, predictor, momentum branch
};

struct LossOutput {
    torch::Tensor total;                                        // what backward() runs on
    std::vector<std::pair<std::string, torch::Tensor>> parts;   // named components, e.g. {"mae", ...}
};

struct StepContext {
    int64_t step = 0;          // global step being trained
    int64_t totalSteps = 1;
    int stage = 0;             // index of the stage being trained
    int64_t stageStep = 0;     // step within the stage
    int64_t stageSteps = 1;    // length of the stage
    uint64_t seed = 0;         // recipe seed
    at::Generator generator;   // seeded for this step (masking noise and other per-step randomness)
    // Device-checked steps (train/TrainStep.h): a 0-dim bool on the device, true when the optimizer skipped this
    // step (non-finite loss); afterOptimizerStep's updates then keep their targets. Undefined on host-checked steps,
    // where a skipped step never reaches afterOptimizerStep.
    at::Tensor skipped;
};

class Objective : public torch::nn::Module {
public:
    virtual std::string methodName() const = 0;
    // Views of a [0,1] batch (called on the loader's thread; must not touch module state).
    virtual std::vector<torch::Tensor> makeViews(const torch::Tensor& images01, uint64_t seed) const = 0;
    virtual LossOutput computeLoss(const Batch& batch, StepContext& ctx) = 0;
    // After the optimizer step: momentum/EMA updates. Values to log (e.g. momentum) go into `metrics`.
    virtual void afterOptimizerStep(const StepContext&, std::vector<std::pair<std::string, double>>& metrics) {}
    virtual VisionTransformer encoder() = 0;
    virtual ObjectiveHeads heads() { return {}; }
    // Name prefixes of the modules that are copies of the encoder kept by an exponential moving average (MoCo v3's
    // momentum encoder, ConMIM's slow model): grafting initialises them from the encoder; they are never trained.
    virtual std::vector<std::string> encoderCopyPrefixes() const { return {}; }

    // ConMIM's dictionary look-up (probes/Probes.cpp's similarity probe): for each patch of the view masked as
    // training masks it (with `gen`), the softmax over the full view's keys at `temperature`. Undefined `lookup`
    // for objectives that have no such dictionary; `why` then says so.
    struct PatchLookup {
        torch::Tensor lookup;  // (N, L, L)
        torch::Tensor mask;    // (N, L), 1 = masked
        std::string note;      // what was computed, or why nothing was
    };
    virtual PatchLookup patchLookup(const torch::Tensor& /*images*/, at::Generator& /*gen*/, double /*temperature*/) {
        return {{}, {}, "the dictionary look-up needs ConMIM's mask token, projector and keys; " + methodName() + " has none"};
    }

    // Adds this objective's parts of a training image's analytic FLOPs (methods/Flops.h) for recipe `r`.
    virtual void countFlops(FlopCount& c, const Recipe& r, int channels) const = 0;

    // Non-empty when the objective's MAE decoder holds no trained weights (a model imported without its decoder): why.
    // heads() then offers no MIM head, and the probes say this instead of reconstructing with random weights.
    std::string mimHeadAbsent;
};

// Builds the objective `method` (mae, mocov3, mtl) for `channels`-channel images normalised with `mean`/`std`.
std::shared_ptr<Objective> makeObjective(const Recipe& recipe, const std::string& method, int channels,
                                         std::vector<float> mean, std::vector<float> std);

VitConfig vitConfigFrom(const Recipe& r, int channels);

}  // namespace graftlab
