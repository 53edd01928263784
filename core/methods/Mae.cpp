#include "methods/Mae.h"
#include "data/Augment.h"
#include "model/Patchify.h"
#include "util/Errors.h"

#include <torch/torch.h>

namespace graftlab {

VitConfig vitConfigFrom(const Recipe& r, int channels) {
    VitConfig c;
    c.imageSize = r.data.imageSize;
    c.patchSize = r.model.patchSize;
    c.inChans = channels;
    c.embedDim = r.model.embedDim;
    c.depth = r.model.depth;
    c.numHeads = r.model.numHeads;
    c.mlpRatio = r.model.mlpRatio;
    return c;
}

MaeImpl::MaeImpl(const Recipe& r, int channels, std::vector<float> mean, std::vector<float> std)
    : mae_(r.mae), aug_(r.augment), patchSize_(r.model.patchSize), channels_(channels), mean_(std::move(mean)),
      std_(std::move(std)) {
    encoder_ = register_module("encoder", VisionTransformer(vitConfigFrom(r, channels)));
    MaeDecoderConfig d;
    d.numPatches = r.numPatches();
    d.encoderDim = r.model.embedDim;
    d.embedDim = r.model.decoderEmbedDim;
    d.depth = r.model.decoderDepth;
    d.numHeads = r.model.decoderNumHeads;
    d.mlpRatio = r.model.mlpRatio;
    d.patchSize = r.model.patchSize;
    d.inChans = channels;
    decoder_ = register_module("decoder", MaeDecoder(d));
}

std::vector<torch::Tensor> MaeImpl::makeViews(const torch::Tensor& images01, uint64_t seed) const {
    std::mt19937_64 rng(seed);
    auto boxes = sampleCrops(images01.size(0), int(images01.size(2)), int(images01.size(3)), aug_.cropScaleMin,
                             aug_.cropScaleMax, 3.0 / 4.0, 4.0 / 3.0, aug_.hflip ? 0.5 : 0.0, rng);
    return {normalizeImages(applyCrops(images01, boxes), mean_, std_)};
}

MaeForward MaeImpl::forwardWithMask(const torch::Tensor& imgs, const MaskSample& mask) {
    auto latent = encoder_->forwardVisible(imgs, mask);
    return {decoder_->forward(latent, mask.idsRestore), mask};
}

MaeForward MaeImpl::forward(const torch::Tensor& imgs, double maskRatio, at::Generator& gen) {
    auto mask = randomMasking(imgs.size(0), encoder_->cfg.numPatches(), maskRatio, gen, imgs.device());
    return forwardWithMask(imgs, mask);
}

torch::Tensor MaeImpl::targets(const torch::Tensor& imgs) const {
    auto target = patchify(imgs, patchSize_);
    if (mae_.normPixLoss) {
        auto mean = target.mean(-1, true);
        auto var = target.var(-1, /*unbiased=*/true, /*keepdim=*/true);
        target = (target - mean) / (var + 1e-6).sqrt();
    }
    return target;
}

torch::Tensor MaeImpl::loss(const torch::Tensor& imgs, const torch::Tensor& pred, const torch::Tensor& mask) const {
    auto perPatch = (pred - targets(imgs)).pow(2).mean(-1);
    return (perPatch * mask).sum() / mask.sum();
}

LossOutput MaeImpl::computeLoss(const Batch& batch, StepContext& ctx) {
    const auto& imgs = batch.views.at(0);
    auto out = forward(imgs, mae_.maskRatio, ctx.generator);
    auto l = loss(imgs, out.pred, out.mask.mask);
    return {l, {{"mae", l}}};
}

std::shared_ptr<Objective> makeObjective(const Recipe& recipe, int channels, std::vector<float> mean,
                                         std::vector<float> std) {
    if (recipe.method == "mae") return std::make_shared<MaeImpl>(recipe, channels, std::move(mean), std::move(std));
    throw RecipeError("method", "unknown method \"" + recipe.method + "\"");
}

}  // namespace graftlab
