#pragma once
// MoCo v3 for ViT (Chen, Xie, He 2021), as facebookresearch/moco-v3: projector (3 layers) + predictor (2 layers)
// on the base encoder, projector on a momentum encoder; symmetric InfoNCE scaled by 2T. (MTL, which combines it
// with MAE, is in methods/Mtl.h.)
#include "data/Augment.h"
#include "methods/Mae.h"

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>

namespace graftlab {

// Linear(no bias)-BN-ReLU ... Linear-BN(affine-free) as MoCo v3's _build_mlp.
torch::nn::Sequential buildMocoMlp(int numLayers, int inDim, int hiddenDim, int outDim, bool lastBatchNorm = true);

// InfoNCE of q against k over the batch (positives on the diagonal), times 2T as in MoCo v3. Data-parallel: the
// keys of every rank are the negatives.
torch::Tensor mocoContrastiveLoss(const torch::Tensor& q, const torch::Tensor& k, double temperature);
// Each query's term of that loss, (n), against this process's keys only: its mean is mocoContrastiveLoss in one
// process.
torch::Tensor mocoContrastiveLossPerSample(const torch::Tensor& q, const torch::Tensor& k, double temperature);

// BYOL's photometric perturbation from the recipe's augment section, with the given blur/solarize probabilities.
PhotometricConfig photometricFrom(const AugmentConfig& aug, double blurProbability, double solarizeProbability);

// The contrastive views: two random resized crops (cl_crop_scale_min..1) with flips and BYOL's asymmetric
// photometric perturbations, normalised.
std::vector<torch::Tensor> contrastiveViews(const torch::Tensor& images01, const AugmentConfig& aug,
                                            const std::vector<float>& mean, const std::vector<float>& std,
                                            std::mt19937_64& rng);

// The MoCo v3 heads around a base encoder: projector and predictor, the momentum encoder and its projector.
class MocoHeadsImpl : public torch::nn::Module {
public:
    MocoHeadsImpl(const VitConfig& vit, const MocoConfig& cfg);
    // Loss for views (v1, v2) through `encoder`; keys come from the momentum branch without gradient.
    torch::Tensor loss(VisionTransformer& encoder, const torch::Tensor& v1, const torch::Tensor& v2);
    // The same loss per image, (n): image i's share, 2T * (CE_i(q1, k2) + CE_i(q2, k1)), in this process alone. The
    // heads' BatchNorm layers use their running statistics (eval mode), so image i's value does not depend on the
    // other images of the batch (in batch mode each "per-sample" loss would mix in the others' statistics); the
    // training-mode loss above is what the optimiser sees.
    torch::Tensor perSampleLoss(VisionTransformer& encoder, const torch::Tensor& v1, const torch::Tensor& v2);
    // MoCo v3's forward, written once: queries of both views (projector + predictor, with gradient) and keys from
    // the momentum branch (no gradient). `processLocal`: the heads' BatchNorm in this process alone (probes), else
    // across the ranks as in training.
    struct QueriesAndKeys {
        torch::Tensor q1, q2, k1, k2;
    };
    QueriesAndKeys forward(VisionTransformer& encoder, const torch::Tensor& v1, const torch::Tensor& v2, bool processLocal);
    // momentum update: p_m = m p_m + (1 - m) p_b for encoder and projector parameters.
    void momentumUpdate(VisionTransformer& encoder, double m, const at::Tensor& skipped = {});  // methods/Ema.h
    // Copies the base encoder (and projector) into the momentum branch.
    void syncMomentum(VisionTransformer& encoder);

    MocoConfig cfg;
    torch::nn::Sequential projector{nullptr}, predictor{nullptr}, momentum_projector{nullptr};
    VisionTransformer momentum_encoder{nullptr};
};
TORCH_MODULE(MocoHeads);

// MoCo v3's parts of a training image's FLOPs: two views through the encoder and heads with gradients, two
// through the momentum branch without (MoCo v3 and MTL).
void addMocoFlops(FlopCount& c, const Recipe& r, int channels);

class MocoV3Objective : public Objective {
public:
    MocoV3Objective(const Recipe& recipe, int channels, std::vector<float> mean, std::vector<float> std);
    std::string methodName() const override { return "mocov3"; }
    std::vector<torch::Tensor> makeViews(const torch::Tensor& images01, uint64_t seed) const override;
    LossOutput computeLoss(const Batch& batch, StepContext& ctx) override;
    void afterOptimizerStep(const StepContext& ctx, std::vector<std::pair<std::string, double>>& metrics) override;
    VisionTransformer encoder() override { return encoder_; }
    ObjectiveHeads heads() override;
    std::vector<std::string> encoderCopyPrefixes() const override { return {"moco.momentum_encoder."}; }
    void countFlops(FlopCount& c, const Recipe& r, int channels) const override { addMocoFlops(c, r, channels); }
    MocoHeads mocoHeads() { return moco_; }

private:
    AugmentConfig aug_;
    MocoConfig cfg_;
    std::vector<float> mean_, std_;
    VisionTransformer encoder_{nullptr};
    MocoHeads moco_{nullptr};
};

// Momentum of the key encoder at `stepInStage` of a stage of `stageSteps` (cosine from m0 to 1).
double mocoMomentum(double m0, int64_t stepInStage, int64_t stageSteps);

}  // namespace graftlab
