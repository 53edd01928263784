#pragma once
#include "methods/Objective.h"
#include "model/MaeDecoder.h"

#include <random>

namespace graftlab {

struct MaeForward {
    torch::Tensor pred;   // (N, L, p*p*C)
    MaskSample mask;
};

// MAE's target patches (norm-pix when asked) and loss: mean squared error on masked patches only.
torch::Tensor maeTargets(const torch::Tensor& imgs, int patchSize, bool normPix);
torch::Tensor maeLoss(const torch::Tensor& imgs, const torch::Tensor& pred, const torch::Tensor& mask, int patchSize,
                      bool normPix);
// The same loss per image, (n): each image's mean squared error over its masked patches. With the same number of
// masked patches in every image (MAE's random masking) its mean is maeLoss.
torch::Tensor maeLossPerSample(const torch::Tensor& imgs, const torch::Tensor& pred, const torch::Tensor& mask, int patchSize,
                               bool normPix);
// The MIM view: random resized crop (augment.crop_scale_min..max) + flip, normalised.
torch::Tensor maeView(const torch::Tensor& images01, const AugmentConfig& aug, const std::vector<float>& mean,
                      const std::vector<float>& std, std::mt19937_64& rng);

MaeDecoderConfig maeDecoderConfigFrom(const Recipe& r, int channels);

// MAE's forward chain, written once (training, MTL, the probes, reconstructions): the encoder over the visible
// patches of `mask`, the decoder back to every patch: the predicted pixels (N, L, p*p*C).
torch::Tensor maePredict(VisionTransformer& encoder, MaeDecoder& decoder, const torch::Tensor& imgs, const MaskSample& mask);
// MAE's training mask of n images (random masking of `ratio` of the patches); data-parallel ranks each draw their
// own share of the global batch's noise.
MaskSample maeTrainingMask(int64_t n, int numPatches, double ratio, at::Generator& gen, const torch::Device& device);

// MAE's parts of a training image's FLOPs: the encoder over the kept patches, the decoder over all (MAE and MTL).
void addMaeFlops(FlopCount& c, const Recipe& r, int channels);

// Masked autoencoder (He et al. 2022), as facebookresearch/mae models_mae.py.

class MaeObjective : public Objective {
public:
    MaeObjective(const Recipe& recipe, int channels, std::vector<float> mean, std::vector<float> std);

    std::string methodName() const override { return "mae"; }
    std::vector<torch::Tensor> makeViews(const torch::Tensor& images01, uint64_t seed) const override;
    LossOutput computeLoss(const Batch& batch, StepContext& ctx) override;
    VisionTransformer encoder() override { return encoder_; }
    ObjectiveHeads heads() override;
    void countFlops(FlopCount& c, const Recipe& r, int channels) const override { addMaeFlops(c, r, channels); }

    MaeForward forwardWithMask(const torch::Tensor& imgs, const MaskSample& mask);
    MaeForward forward(const torch::Tensor& imgs, double maskRatio, at::Generator& gen);
    // Target patches (norm-pix when configured) and the loss: mean squared error on masked patches only.
    torch::Tensor targets(const torch::Tensor& imgs) const;
    torch::Tensor loss(const torch::Tensor& imgs, const torch::Tensor& pred, const torch::Tensor& mask) const;

    const MaeConfig& config() const { return mae_; }
    int patchSize() const { return patchSize_; }
    const std::vector<float>& mean() const { return mean_; }
    const std::vector<float>& std() const { return std_; }
    MaeDecoder decoder() { return decoder_; }

private:
    MaeConfig mae_;
    AugmentConfig aug_;
    int patchSize_;
    int channels_;
    std::vector<float> mean_, std_;
    VisionTransformer encoder_{nullptr};
    MaeDecoder decoder_{nullptr};
};

}  // namespace graftlab
