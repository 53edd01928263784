#pragma once
// ConMIM (Yi et al., ICLR 2023): masked image modeling as denoising patch-level contrast. The online model sees
// the image with masked patches replaced by a learned mask token; the slow (EMA) model sees the full image;
// both go through the final LayerNorm and a projector, L2-normalised; each masked patch must pick out its own
// key among the keys of all patches of the same image (InfoNCE, T = 0.1). No gradient flows into the keys.
#include "methods/Objective.h"

#include <torch/nn/modules/container/sequential.h>

#include <random>

namespace graftlab {

// Patch-level InfoNCE within each image. feats, keys: (N, L, D) L2-normalised; mask (N, L) 1 = counted.
torch::Tensor patchContrastLoss(const torch::Tensor& feats, const torch::Tensor& keys, const torch::Tensor& mask,
                                double temperature);

// BEiT's block-wise masking (as the official ConMIM code uses it): `count` of the height x width patches masked in
// rectangles, row-major (height * width) with 1 = masked; fewer when no further block fits.
torch::Tensor blockwiseMask(int height, int width, int64_t count, std::mt19937_64& rng);

class ConMimObjective : public Objective {
public:
    ConMimObjective(const Recipe& recipe, int channels, std::vector<float> mean, std::vector<float> std);
    std::string methodName() const override { return "conmim"; }
    std::vector<std::string> encoderCopyPrefixes() const override { return {"slow_encoder."}; }
    void countFlops(FlopCount& c, const Recipe& r, int channels) const override;
    // Two views with one shared geometric transform (patch-aligned): [online input, slow input].
    std::vector<torch::Tensor> makeViews(const torch::Tensor& images01, uint64_t seed) const override;
    LossOutput computeLoss(const Batch& batch, StepContext& ctx) override;
    void afterOptimizerStep(const StepContext& ctx, std::vector<std::pair<std::string, double>>& metrics) override;
    VisionTransformer encoder() override { return encoder_; }

    PatchLookup patchLookup(const torch::Tensor& images, at::Generator& gen, double temperature) override;
    // The mask training uses (conmim.masking, mask_style, mask_ratio) for n images, drawn from `gen`: (n, L) on
    // `device`, 1 = masked. The loss and the look-up probe both take it from here.
    torch::Tensor trainingMask(int64_t n, at::Generator& gen, const torch::Device& device) const;

    // Online patch features (N, L, D'), masked patches replaced by the mask token where mask == 1.
    torch::Tensor onlinePatchFeatures(const torch::Tensor& imgs, const torch::Tensor& mask);
    // The same through the projector, L2-normalised: what is contrasted against the keys.
    torch::Tensor onlineQueries(const torch::Tensor& imgs, const torch::Tensor& mask) {
        return project(projector_, onlinePatchFeatures(imgs, mask));
    }
    // Keys of the full image from the slow model (or the online model without gradient).
    torch::Tensor keys(const torch::Tensor& imgs);
    const ConMimConfig& config() const { return cfg_; }

    torch::Tensor mask_token;

private:
    torch::Tensor project(torch::nn::Sequential& projector, const torch::Tensor& tokens);

    AugmentConfig aug_;
    ConMimConfig cfg_;
    std::vector<float> mean_, std_;
    VisionTransformer encoder_{nullptr}, slow_encoder_{nullptr};
    torch::nn::Sequential projector_{nullptr}, slow_projector_{nullptr};
};

}  // namespace graftlab
