#include "methods/Mae.h"
#include "dist/Distributed.h"
#include "data/Augment.h"
#include "model/Patchify.h"
#include "base/util/Errors.h"

#include <torch/torch.h>

namespace graftlab {

MaeObjective::MaeObjective(const Recipe& r, int channels, std::vector<float> mean, std::vector<float> std)
    : mae_(r.mae), aug_(r.augment), patchSize_(r.model.patchSize), channels_(channels), mean_(std::move(mean)),
      std_(std::move(std)) {
    encoder_ = register_module("encoder", VisionTransformer(vitConfigFrom(r, channels)));
    decoder_ = register_module("decoder", MaeDecoder(maeDecoderConfigFrom(r, channels)));
}

MaeDecoderConfig maeDecoderConfigFrom(const Recipe& r, int channels) {
    MaeDecoderConfig d;
    d.numPatches = r.numPatches();
    d.encoderDim = r.model.embedDim;
    d.embedDim = r.model.decoderEmbedDim;
    d.depth = r.model.decoderDepth;
    d.numHeads = r.model.decoderNumHeads;
    d.mlpRatio = r.model.mlpRatio;
    d.patchSize = r.model.patchSize;
    d.inChans = channels;
    return d;
}

torch::Tensor maeView(const torch::Tensor& images01, const AugmentConfig& aug, const std::vector<float>& mean,
                      const std::vector<float>& std, std::mt19937_64& rng) {
    auto boxes = sampleResizedCrops(images01.size(0), int(images01.size(2)), int(images01.size(3)), aug.cropScaleMin,
                                    aug.cropScaleMax, aug.hflip, rng);
    return normalizeImages(applyCrops(images01, boxes), mean, std);
}

torch::Tensor maeTargets(const torch::Tensor& imgs, int patchSize, bool normPix) {
    auto target = patchify(imgs, patchSize);
    if (normPix) {
        auto mean = target.mean(-1, true);
        auto var = target.var(-1, /*unbiased=*/true, /*keepdim=*/true);
        target = (target - mean) / (var + 1e-6).sqrt();
    }
    return target;
}

namespace {
// Mean squared error of each patch's prediction, (n, L).
torch::Tensor maePatchErrors(const torch::Tensor& imgs, const torch::Tensor& pred, int patchSize, bool normPix) {
    return (pred - maeTargets(imgs, patchSize, normPix)).pow(2).mean(-1);
}
}  // namespace

torch::Tensor maeLoss(const torch::Tensor& imgs, const torch::Tensor& pred, const torch::Tensor& mask, int patchSize,
                      bool normPix) {
    return (maePatchErrors(imgs, pred, patchSize, normPix) * mask).sum() / mask.sum();
}

torch::Tensor maeLossPerSample(const torch::Tensor& imgs, const torch::Tensor& pred, const torch::Tensor& mask, int patchSize,
                               bool normPix) {
    return (maePatchErrors(imgs, pred, patchSize, normPix) * mask).sum(1) / mask.sum(1);
}

ObjectiveHeads MaeObjective::heads() {
    ObjectiveHeads h;
    if (!mimHeadAbsent.empty()) return h;
    h.mimDecoder = decoder_.ptr();
    h.mae = mae_;
    h.patchSize = patchSize_;
    return h;
}

std::vector<torch::Tensor> MaeObjective::makeViews(const torch::Tensor& images01, uint64_t seed) const {
    std::mt19937_64 rng(seed);
    return {maeView(images01, aug_, mean_, std_, rng)};
}

torch::Tensor maePredict(VisionTransformer& encoder, MaeDecoder& decoder, const torch::Tensor& imgs, const MaskSample& mask) {
    return decoder->forward(encoder->forwardVisible(imgs, mask), mask.idsRestore);
}

MaskSample maeTrainingMask(int64_t n, int numPatches, double ratio, at::Generator& gen, const torch::Device& device) {
    DistContext* dist = activeDist();
    return randomMasking(n, numPatches, ratio, gen, device, dist ? dist->rank() : 0, dist ? dist->worldSize() : 1);
}

MaeForward MaeObjective::forwardWithMask(const torch::Tensor& imgs, const MaskSample& mask) { return {maePredict(encoder_, decoder_, imgs, mask), mask}; }

MaeForward MaeObjective::forward(const torch::Tensor& imgs, double maskRatio, at::Generator& gen) {
    return forwardWithMask(imgs, maeTrainingMask(imgs.size(0), encoder_->cfg.numPatches(), maskRatio, gen, imgs.device()));
}

torch::Tensor MaeObjective::targets(const torch::Tensor& imgs) const { return maeTargets(imgs, patchSize_, mae_.normPixLoss); }

torch::Tensor MaeObjective::loss(const torch::Tensor& imgs, const torch::Tensor& pred, const torch::Tensor& mask) const {
    return maeLoss(imgs, pred, mask, patchSize_, mae_.normPixLoss);
}

LossOutput MaeObjective::computeLoss(const Batch& batch, StepContext& ctx) {
    const auto& imgs = batch.views.at(0);
    auto out = forward(imgs, mae_.maskRatio, ctx.generator);
    auto l = loss(imgs, out.pred, out.mask.mask);
    return {l, {{"mae", l}}};
}



void addMaeFlops(FlopCount& c, const Recipe& r, int channels) {
    const double P = r.model.patchSize, C = channels, D = r.model.embedDim, L = double(r.numPatches());
    const double H = std::floor(r.model.mlpRatio * D);
    const double keep = L - std::floor(L * r.mae.maskRatio);
    const double Dd = r.model.decoderEmbedDim, Hd = std::floor(r.model.mlpRatio * Dd);
    c.add("mae_encoder", flops::patchEmbed(r, channels) + r.model.depth * flops::block(keep + 1, D, H), 3.0);
    c.add("mae_decoder", 2.0 * (keep + 1) * D * Dd + r.model.decoderDepth * flops::block(L + 1, Dd, Hd) + 2.0 * (L + 1) * Dd * P * P * C, 3.0);
}

}  // namespace graftlab
