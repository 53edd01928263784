#include "methods/MocoV3.h"
#include "methods/Ema.h"
#include "dist/Distributed.h"
#include "data/Augment.h"
#include "base/util/Errors.h"

#include <torch/torch.h>

namespace graftlab {

torch::nn::Sequential buildMocoMlp(int numLayers, int inDim, int hiddenDim, int outDim, bool lastBatchNorm) {
    torch::nn::Sequential mlp;
    for (int l = 0; l < numLayers; ++l) {
        int d1 = l == 0 ? inDim : hiddenDim;
        int d2 = l == numLayers - 1 ? outDim : hiddenDim;
        mlp->push_back(torch::nn::Linear(torch::nn::LinearOptions(d1, d2).bias(false)));
        if (l < numLayers - 1) {
            mlp->push_back(torch::nn::BatchNorm1d(d2));
            mlp->push_back(torch::nn::ReLU(true));
        } else if (lastBatchNorm) {
            // MoCo v3 follows SimCLR: the last BN has no affine parameters
            mlp->push_back(torch::nn::BatchNorm1d(torch::nn::BatchNorm1dOptions(d2).affine(false)));
        }
    }
    return mlp;
}

torch::Tensor applyMocoMlp(torch::nn::Sequential& mlp, torch::Tensor x) {
    if (!activeDist()) return mlp->forward(x);
    // Data-parallel: BatchNorm over the global batch (SyncBatchNorm), as MoCo v3's official code does.
    for (auto& m : *mlp) {
        if (auto* bn = m.ptr()->as<torch::nn::BatchNorm1d>()) {
            if (bn->is_training() && bn->num_batches_tracked.defined()) {
                torch::NoGradGuard ng;
                bn->num_batches_tracked.add_(1);
            }
            x = syncBatchNorm(x, bn->weight, bn->bias, bn->running_mean, bn->running_var, bn->is_training(),
                              bn->options.momentum().value_or(0.1), bn->options.eps());
        } else {
            x = m.forward(x);
        }
    }
    return x;
}

namespace {
torch::Tensor unitRows(const torch::Tensor& x) {
    return torch::nn::functional::normalize(x, torch::nn::functional::NormalizeFuncOptions().dim(1));
}
}  // namespace

torch::Tensor mocoContrastiveLossPerSample(const torch::Tensor& q, const torch::Tensor& k, double temperature) {
    auto logits = torch::mm(unitRows(q), unitRows(k).t()) / temperature;
    return -torch::log_softmax(logits, 1).diagonal() * (2.0 * temperature);
}

torch::Tensor mocoContrastiveLoss(const torch::Tensor& q, const torch::Tensor& k, double temperature) {
    auto qn = unitRows(q);
    auto kn = unitRows(k);
    // Data-parallel: the keys of every rank are the negatives (no gradient flows into keys anyway); the
    // positive of this rank's query i is key i of this rank's block.
    int64_t offset = 0;
    if (DistContext* dist = activeDist()) {
        offset = int64_t(dist->rank()) * kn.size(0);
        kn = dist->allGather(kn);
    }
    auto logits = torch::mm(qn, kn.t()) / temperature;
    auto labels = torch::arange(offset, offset + logits.size(0), torch::TensorOptions().dtype(torch::kInt64).device(q.device()));
    return torch::nn::functional::cross_entropy(logits, labels) * (2.0 * temperature);
}

double mocoMomentum(double m0, int64_t stepInStage, int64_t stageSteps) { return cosineRamp(stepInStage, stageSteps, m0, 1.0); }

PhotometricConfig photometricFrom(const AugmentConfig& aug, double blurProbability, double solarizeProbability) {
    PhotometricConfig pc;
    pc.jitterProbability = aug.jitterProb;
    pc.brightness = aug.brightness;
    pc.contrast = aug.contrast;
    pc.saturation = aug.saturation;
    pc.hue = aug.hue;
    pc.grayscaleProbability = aug.grayscaleProb;
    pc.blurProbability = blurProbability;
    pc.solarizeProbability = solarizeProbability;
    pc.blurSigmaMin = aug.blurSigmaMin;
    pc.blurSigmaMax = aug.blurSigmaMax;
    return pc;
}

std::vector<torch::Tensor> contrastiveViews(const torch::Tensor& images01, const AugmentConfig& aug,
                                            const std::vector<float>& mean, const std::vector<float>& std,
                                            std::mt19937_64& rng) {
    const int64_t n = images01.size(0);
    const int H = int(images01.size(2)), W = int(images01.size(3));
    std::vector<torch::Tensor> views;
    for (int v = 0; v < 2; ++v) {
        auto boxes = sampleResizedCrops(n, H, W, aug.clCropScaleMin, aug.cropScaleMax, aug.hflip, rng);
        PhotometricConfig pc = photometricFrom(aug, v == 0 ? aug.view1BlurProb : aug.view2BlurProb,
                                               v == 0 ? aug.view1SolarizeProb : aug.view2SolarizeProb);
        views.push_back(normalizeImages(applyPhotometric(applyCrops(images01, boxes), pc, rng), mean, std));
    }
    return views;
}

MocoHeadsImpl::MocoHeadsImpl(const VitConfig& vit, const MocoConfig& c) : cfg(c) {
    projector = register_module("projector", buildMocoMlp(3, vit.embedDim, cfg.hiddenDim, cfg.outDim));
    predictor = register_module("predictor", buildMocoMlp(2, cfg.outDim, cfg.hiddenDim, cfg.outDim));
    momentum_encoder = register_module("momentum_encoder", VisionTransformer(vit));
    momentum_projector = register_module("momentum_projector", buildMocoMlp(3, vit.embedDim, cfg.hiddenDim, cfg.outDim));
    for (auto& p : momentum_encoder->parameters()) p.set_requires_grad(false);
    for (auto& p : momentum_projector->parameters()) p.set_requires_grad(false);
}

void MocoHeadsImpl::syncMomentum(VisionTransformer& encoder) { momentumUpdate(encoder, 0.0); }

void MocoHeadsImpl::momentumUpdate(VisionTransformer& encoder, double m, const at::Tensor& skipped) {
    emaUpdate(*momentum_encoder, *encoder, m, skipped);
    emaUpdate(*momentum_projector, *projector, m, skipped);
}

MocoHeadsImpl::QueriesAndKeys MocoHeadsImpl::forward(VisionTransformer& encoder, const torch::Tensor& v1, const torch::Tensor& v2,
                                                     bool processLocal) {
    // The ViT has no batch statistics, so both views share one encoder pass; the BN heads see each view on its
    // own, as in the official code (q1 = predictor(base_encoder(x1)), ...). In training the heads' BatchNorm
    // spans the ranks (applyMocoMlp); `processLocal` (the probes) runs them in this process alone.
    auto mlp = [processLocal](torch::nn::Sequential& m, const torch::Tensor& x) { return processLocal ? m->forward(x) : applyMocoMlp(m, x); };
    const int64_t n = v1.size(0);
    auto both = torch::cat({v1, v2}, 0);
    auto cls = encoder->forward(both).select(1, 0);
    QueriesAndKeys out;
    out.q1 = mlp(predictor, mlp(projector, cls.slice(0, 0, n)));
    out.q2 = mlp(predictor, mlp(projector, cls.slice(0, n)));
    torch::NoGradGuard ng;
    auto mcls = momentum_encoder->forward(both).select(1, 0);
    out.k1 = mlp(momentum_projector, mcls.slice(0, 0, n));
    out.k2 = mlp(momentum_projector, mcls.slice(0, n));
    return out;
}

torch::Tensor MocoHeadsImpl::loss(VisionTransformer& encoder, const torch::Tensor& v1, const torch::Tensor& v2) {
    const QueriesAndKeys f = forward(encoder, v1, v2, /*processLocal=*/false);
    return mocoContrastiveLoss(f.q1, f.k2, cfg.temperature) + mocoContrastiveLoss(f.q2, f.k1, cfg.temperature);
}

torch::Tensor MocoHeadsImpl::perSampleLoss(VisionTransformer& encoder, const torch::Tensor& v1, const torch::Tensor& v2) {
    // Running BatchNorm statistics, and no synchronised BatchNorm: a probe runs in one process.
    std::vector<std::pair<torch::nn::Module*, bool>> modes;
    for (torch::nn::Module* m : {static_cast<torch::nn::Module*>(projector.ptr().get()), static_cast<torch::nn::Module*>(predictor.ptr().get()),
                                 static_cast<torch::nn::Module*>(momentum_projector.ptr().get())}) {
        modes.emplace_back(m, m->is_training());
        m->eval();
    }
    const QueriesAndKeys f = forward(encoder, v1, v2, /*processLocal=*/true);
    for (auto& [m, training] : modes) m->train(training);
    return mocoContrastiveLossPerSample(f.q1, f.k2, cfg.temperature) + mocoContrastiveLossPerSample(f.q2, f.k1, cfg.temperature);
}

ObjectiveHeads MocoV3Objective::heads() {
    ObjectiveHeads h;
    h.clHeads = moco_.ptr();
    return h;
}

MocoV3Objective::MocoV3Objective(const Recipe& r, int channels, std::vector<float> mean, std::vector<float> std)
    : aug_(r.augment), cfg_(r.moco), mean_(std::move(mean)), std_(std::move(std)) {
    VitConfig vit = vitConfigFrom(r, channels);
    encoder_ = register_module("encoder", VisionTransformer(vit));
    moco_ = register_module("moco", MocoHeads(vit, cfg_));
    initMaeWeights(*moco_);  // xavier Linear weights as the encoder; BN starts at 1/0
    moco_->syncMomentum(encoder_);
    if (cfg_.frozenPatchEmbed)
        for (auto& p : encoder_->patch_embed->parameters()) p.set_requires_grad(false);
}

std::vector<torch::Tensor> MocoV3Objective::makeViews(const torch::Tensor& images01, uint64_t seed) const {
    std::mt19937_64 rng(seed);
    return contrastiveViews(images01, aug_, mean_, std_, rng);
}

LossOutput MocoV3Objective::computeLoss(const Batch& batch, StepContext&) {
    auto l = moco_->loss(encoder_, batch.views.at(0), batch.views.at(1));
    return {l, {{"moco", l}}};
}

void MocoV3Objective::afterOptimizerStep(const StepContext& ctx, std::vector<std::pair<std::string, double>>& metrics) {
    double m = mocoMomentum(cfg_.momentum, ctx.stageStep, ctx.stageSteps);
    moco_->momentumUpdate(encoder_, m, ctx.skipped);
    metrics.emplace_back("momentum", m);
}

void addMocoFlops(FlopCount& c, const Recipe& r, int channels) {
    const double D = r.model.embedDim, Hm = r.moco.hiddenDim, O = r.moco.outDim;
    const double full = flops::fullEncoder(r, channels);
    c.add("moco_encoder_2_views", 2.0 * full, 3.0);
    c.add("moco_heads_2_views", 2.0 * (flops::mlp({D, Hm, Hm, O}) + flops::mlp({O, Hm, O})), 3.0);
    c.add("moco_momentum_2_views", 2.0 * (full + flops::mlp({D, Hm, Hm, O})), 1.0);
}

}  // namespace graftlab
