#include "methods/Mtl.h"
#include "dist/Distributed.h"

#include <torch/torch.h>

namespace graftlab {

MtlObjective::MtlObjective(const Recipe& r, int channels, std::vector<float> mean, std::vector<float> std)
    : aug_(r.augment), mae_(r.mae), cfg_(r.moco), mtl_(r.mtl), patchSize_(r.model.patchSize), mean_(std::move(mean)),
      std_(std::move(std)) {
    VitConfig vit = vitConfigFrom(r, channels);
    encoder_ = register_module("encoder", VisionTransformer(vit));
    decoder_ = register_module("decoder", MaeDecoder(maeDecoderConfigFrom(r, channels)));
    moco_ = register_module("moco", MocoHeads(vit, cfg_));
    initMaeWeights(*moco_);
    moco_->syncMomentum(encoder_);
    // MAE needs a trainable patch projection: the MTL encoder keeps it trainable.
}

std::vector<torch::Tensor> MtlObjective::makeViews(const torch::Tensor& images01, uint64_t seed) const {
    std::mt19937_64 rng(seed);
    std::vector<torch::Tensor> v = {maeView(images01, aug_, mean_, std_, rng)};  // minimally augmented MIM view
    for (auto& t : contrastiveViews(images01, aug_, mean_, std_, rng)) v.push_back(t);
    return v;
}

LossOutput MtlObjective::computeLoss(const Batch& batch, StepContext& ctx) {
    const auto& mimView = batch.views.at(0);
    const MaskSample mask = maeTrainingMask(mimView.size(0), encoder_->cfg.numPatches(), mae_.maskRatio, ctx.generator, mimView.device());
    auto pred = maePredict(encoder_, decoder_, mimView, mask);
    auto lMae = maeLoss(mimView, pred, mask.mask, patchSize_, mae_.normPixLoss);
    auto lMoco = moco_->loss(encoder_, batch.views.at(1), batch.views.at(2));
    auto total = mtl_.mimWeight * lMae + mtl_.clWeight * lMoco;
    return {total, {{"mae", lMae}, {"moco", lMoco}}};
}

void MtlObjective::afterOptimizerStep(const StepContext& ctx, std::vector<std::pair<std::string, double>>& metrics) {
    double m = mocoMomentum(cfg_.momentum, ctx.stageStep, ctx.stageSteps);
    moco_->momentumUpdate(encoder_, m, ctx.skipped);
    metrics.emplace_back("momentum", m);
}

ObjectiveHeads MtlObjective::heads() {
    ObjectiveHeads h;
    h.mimDecoder = decoder_.ptr();
    h.mae = mae_;
    h.patchSize = patchSize_;
    h.clHeads = moco_.ptr();
    return h;
}

}  // namespace graftlab
