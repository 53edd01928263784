#include "methods/ConMim.h"
#include "methods/Ema.h"
#include "data/Augment.h"
#include "methods/MocoV3.h"
#include "util/DeviceCopy.h"

#include <torch/torch.h>

namespace graftlab {

namespace F = torch::nn::functional;

torch::Tensor patchContrastLoss(const torch::Tensor& feats, const torch::Tensor& keys, const torch::Tensor& mask,
                                double temperature) {
    const int64_t n = feats.size(0), L = feats.size(1);
    auto sim = torch::bmm(feats, keys.transpose(1, 2)) / temperature;  // (N, L, L): patch j against every key i
    auto labels = torch::arange(L, torch::TensorOptions().dtype(torch::kInt64).device(feats.device())).repeat({n});
    auto perPatch = F::cross_entropy(sim.reshape({n * L, L}), labels, F::CrossEntropyFuncOptions().reduction(torch::kNone));
    auto m = mask.reshape({n * L});
    return (perPatch * m).sum() / m.sum().clamp_min(1);
}

namespace {
torch::nn::Sequential buildProjector(const ConMimConfig& c, int dim) {
    if (c.projector == "mlp_bn") return buildMocoMlp(3, dim, c.projHiddenDim, c.projDim, /*lastBatchNorm=*/true);
    torch::nn::Sequential p;
    p->push_back(torch::nn::Linear(dim, dim));
    p->push_back(torch::nn::GELU());
    p->push_back(torch::nn::Linear(dim, c.projDim));
    return p;
}
}  // namespace

torch::Tensor blockwiseMask(int height, int width, int64_t count, std::mt19937_64& rng) {
    // BEiT's MaskingGenerator: rectangles of 16 patches or more at 14x14 (scaled to this grid), aspect ratio in
    // [0.3, 1/0.3], each adding only unmasked patches, until `count` patches are masked or no block fits.
    auto mask = torch::zeros({height, width}, torch::kFloat32);
    auto m = mask.accessor<float, 2>();
    const double minPatches = std::max(1.0, std::round(16.0 * height * width / 196.0));
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    int64_t masked = 0;
    while (masked < count) {
        const int64_t room = count - masked;
        int64_t added = 0;
        for (int attempt = 0; attempt < 10 && added == 0; ++attempt) {
            double area = minPatches + unit(rng) * (std::max<double>(minPatches, double(room)) - minPatches);
            double aspect = std::exp(std::log(0.3) + unit(rng) * (std::log(1 / 0.3) - std::log(0.3)));
            int h = int(std::lround(std::sqrt(area * aspect))), w = int(std::lround(std::sqrt(area / aspect)));
            if (h < 1 || w < 1 || h >= height || w >= width) continue;
            int top = int(unit(rng) * (height - h + 1)), left = int(unit(rng) * (width - w + 1));
            top = std::min(top, height - h);
            left = std::min(left, width - w);
            int64_t fresh = 0;
            for (int i = top; i < top + h; ++i)
                for (int j = left; j < left + w; ++j) fresh += m[i][j] == 0.f;
            if (fresh == 0 || fresh > room) continue;
            for (int i = top; i < top + h; ++i)
                for (int j = left; j < left + w; ++j) m[i][j] = 1.f;
            added = fresh;
        }
        if (added == 0) break;
        masked += added;
    }
    return mask.reshape({height * width});
}

ConMimObjective::ConMimObjective(const Recipe& r, int channels, std::vector<float> mean, std::vector<float> std)
    : aug_(r.augment), cfg_(r.conmim), mean_(std::move(mean)), std_(std::move(std)) {
    VitConfig vit = vitConfigFrom(r, channels);
    encoder_ = register_module("encoder", VisionTransformer(vit));
    mask_token = register_parameter("mask_token", torch::zeros({1, 1, vit.embedDim}));
    projector_ = register_module("projector", buildProjector(cfg_, vit.embedDim));
    initMaeWeights(*projector_);
    torch::nn::init::normal_(mask_token, 0.0, 0.02);
    if (cfg_.slowModel) {
        slow_encoder_ = register_module("slow_encoder", VisionTransformer(vit));
        slow_projector_ = register_module("slow_projector", buildProjector(cfg_, vit.embedDim));
        torch::NoGradGuard ng;
        emaUpdate(*slow_encoder_, *encoder_, 0.0);  // the slow model starts as a copy
        emaUpdate(*slow_projector_, *projector_, 0.0);
        for (auto& p : slow_encoder_->parameters()) p.set_requires_grad(false);
        for (auto& p : slow_projector_->parameters()) p.set_requires_grad(false);
    }
}

std::vector<torch::Tensor> ConMimObjective::makeViews(const torch::Tensor& images01, uint64_t seed) const {
    std::mt19937_64 rng(seed);
    // One geometric transform for both inputs, so patch j of one is patch j of the other.
    auto boxes = sampleResizedCrops(images01.size(0), int(images01.size(2)), int(images01.size(3)), aug_.cropScaleMin,
                                    aug_.cropScaleMax, aug_.hflip, rng);
    auto base = applyCrops(images01, boxes);
    PhotometricConfig strong = photometricFrom(aug_, cfg_.strongBlurProb, cfg_.strongSolarizeProb);
    auto strongOf = [&](const torch::Tensor& x) { return applyPhotometric(x, strong, rng); };
    torch::Tensor online = base, slow = base;  // "basic" = the shared crop + flip alone
    const std::string& p = cfg_.perturbation;
    if (p == "asymmetric") slow = strongOf(base);
    else if (p == "strong_both") {
        online = strongOf(base);
        slow = strongOf(base);
    } else if (p == "switched") online = strongOf(base);
    return {normalizeImages(online, mean_, std_), normalizeImages(slow, mean_, std_)};
}

torch::Tensor ConMimObjective::project(torch::nn::Sequential& projector, const torch::Tensor& tokens) {
    // (N, L, D) tokens as N*L rows: BatchNorm layers then see one feature vector per patch
    auto rows = tokens.reshape({-1, tokens.size(-1)});
    auto out = applySequential(projector, rows);
    auto shape = tokens.sizes().vec();
    shape.back() = out.size(-1);
    return F::normalize(out.reshape(shape), F::NormalizeFuncOptions().dim(-1));
}

torch::Tensor ConMimObjective::onlinePatchFeatures(const torch::Tensor& imgs, const torch::Tensor& mask) {
    auto x = encoder_->patch_embed(imgs);  // (N, L, D), before the position embedding
    auto w = mask.unsqueeze(-1).to(x.scalar_type());
    x = x * (1 - w) + mask_token * w;
    x = x + encoder_->pos_embed.slice(1, 1);
    auto tokens = encoder_->runBlocks(encoder_->prependClassToken(x));  // final LayerNorm included
    return tokens.slice(1, 1);
}

torch::Tensor ConMimObjective::keys(const torch::Tensor& imgs) {
    torch::NoGradGuard ng;
    if (cfg_.slowModel) return project(slow_projector_, slow_encoder_->forward(imgs).slice(1, 1));
    return project(projector_, encoder_->forward(imgs).slice(1, 1));
}

torch::Tensor ConMimObjective::trainingMask(int64_t n, at::Generator& gen, const torch::Device& device) const {
    const int64_t L = encoder_->cfg.numPatches();
    if (!cfg_.masking) return torch::zeros({n, L}, torch::TensorOptions().device(device));
    const int64_t masked = static_cast<int64_t>(L * cfg_.maskRatio);
    if (cfg_.maskStyle == "blockwise") {
        const int grid = int(std::lround(std::sqrt(double(L))));
        std::mt19937_64 rng(uint64_t(torch::randint(int64_t(1) << 62, {1}, gen).item<int64_t>()));
        std::vector<torch::Tensor> rows;
        for (int64_t i = 0; i < n; ++i) rows.push_back(blockwiseMask(grid, grid, masked, rng));
        return toDeviceAsync(torch::stack(rows), device);
    }
    auto noise = torch::rand({n, L}, gen);
    auto order = torch::argsort(noise, /*dim=*/1, /*descending=*/false);
    return toDeviceAsync(torch::zeros({n, L}).scatter_(1, order.slice(1, 0, masked), 1.0), device);
}

Objective::PatchLookup ConMimObjective::patchLookup(const torch::Tensor& x, at::Generator& gen, double temperature) {
    PatchLookup out;
    out.mask = trainingMask(x.size(0), gen, x.device());
    auto feats = onlineQueries(x, out.mask);
    auto k = keys(x);
    out.lookup = torch::softmax(torch::bmm(feats, k.transpose(1, 2)) / temperature, -1);
    out.note = "ConMIM dictionary look-up: softmax over the full view's keys (" +
               std::string(cfg_.slowModel ? "slow model" : "online model, no gradient") +
               ") of each patch feature of the masked view (" + (cfg_.masking ? cfg_.maskStyle + " mask as in training, ratio " +
               std::to_string(cfg_.maskRatio) : std::string("no mask: conmim.masking is off")) + "); no perturbation on either view";
    return out;
}

LossOutput ConMimObjective::computeLoss(const Batch& batch, StepContext& ctx) {
    const auto& online = batch.views.at(0);
    const auto& full = batch.views.at(1);
    const int64_t n = online.size(0);
    const torch::Tensor mask = trainingMask(n, ctx.generator, online.device());
    auto tokens = onlinePatchFeatures(online, mask);
    auto k = keys(full);
    torch::Tensor loss;
    if (cfg_.contrast == "instance") {
        // Ablation: mean of the patch tokens, contrasted over the batch.
        auto q = F::normalize(applySequential(projector_, tokens.mean(1)), F::NormalizeFuncOptions().dim(-1));
        auto kk = F::normalize(k.mean(1), F::NormalizeFuncOptions().dim(-1));
        auto logits = torch::mm(q, kk.t()) / cfg_.temperature;
        loss = F::cross_entropy(logits, torch::arange(n, torch::TensorOptions().dtype(torch::kInt64).device(q.device())));
    } else {
        auto feats = project(projector_, tokens);
        // Masked positions only; without masking (ablation) every position counts.
        auto counted = cfg_.masking ? mask : torch::ones_like(mask);
        loss = patchContrastLoss(feats, k, counted, cfg_.temperature);
    }
    return {loss, {{"conmim", loss}}};
}

void ConMimObjective::afterOptimizerStep(const StepContext& ctx, std::vector<std::pair<std::string, double>>& metrics) {
    if (!cfg_.slowModel) return;
    double m = cosineRamp(ctx.stageStep, ctx.stageSteps, cfg_.momentum, 1.0);
    emaUpdate(*slow_encoder_, *encoder_, m, ctx.skipped);
    emaUpdate(*slow_projector_, *projector_, m, ctx.skipped);
    metrics.emplace_back("momentum", m);
}

void ConMimObjective::countFlops(FlopCount& c, const Recipe& r, int channels) const {
    const double D = r.model.embedDim, O = cfg_.projDim, L = double(r.numPatches());
    // the projector per patch: Linear-GELU-Linear (`simple`) or the 3-layer MLP with BatchNorm (`mlp_bn`)
    const double projector = cfg_.projector == "mlp_bn" ? flops::mlp({D, double(cfg_.projHiddenDim), double(cfg_.projHiddenDim), O})
                                                        : flops::mlp({D, D, O});
    const double full = flops::fullEncoder(r, channels);
    c.add("conmim_online", full + L * projector + 2.0 * L * L * O, 3.0);
    c.add(cfg_.slowModel ? "conmim_slow" : "conmim_keys", full + L * projector, 1.0);
}

}  // namespace graftlab
