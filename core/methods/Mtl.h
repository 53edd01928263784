#pragma once
// The naive multi-task combination of the Layer Grafted paper: the MAE and MoCo v3 losses on one shared encoder,
// weighted by mtl.mim_weight and mtl.cl_weight, each with its own views of the batch.
#include "methods/Mae.h"
#include "methods/MocoV3.h"

namespace graftlab {

class MtlObjective : public Objective {
public:
    MtlObjective(const Recipe& recipe, int channels, std::vector<float> mean, std::vector<float> std);
    std::string methodName() const override { return "mtl"; }
    MaeDecoder decoder() { return decoder_; }
    MocoHeads mocoHeads() { return moco_; }
    ObjectiveHeads heads() override;
    std::vector<std::string> encoderCopyPrefixes() const override { return {"moco.momentum_encoder."}; }
    void countFlops(FlopCount& c, const Recipe& r, int channels) const override {
        addMaeFlops(c, r, channels);
        addMocoFlops(c, r, channels);
    }
    int patchSize() const { return patchSize_; }
    std::vector<torch::Tensor> makeViews(const torch::Tensor& images01, uint64_t seed) const override;
    LossOutput computeLoss(const Batch& batch, StepContext& ctx) override;
    void afterOptimizerStep(const StepContext& ctx, std::vector<std::pair<std::string, double>>& metrics) override;
    VisionTransformer encoder() override { return encoder_; }

private:
    AugmentConfig aug_;
    MaeConfig mae_;
    MocoConfig cfg_;
    MtlConfig mtl_;
    int patchSize_;
    std::vector<float> mean_, std_;
    VisionTransformer encoder_{nullptr};
    MaeDecoder decoder_{nullptr};
    MocoHeads moco_{nullptr};
};

}  // namespace graftlab
