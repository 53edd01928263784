#include "probes/Reconstruction.h"
#include "base/probes/MaskedPatch.h"
#include "data/Augment.h"
#include "model/Patchify.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

namespace graftlab {

ReconstructionPanels reconstruct(MaeObjective& mae, const torch::Tensor& images01, uint64_t maskSeed) {
    return reconstruct(mae.encoder(), mae.decoder(), mae.config(), mae.patchSize(), mae.mean(), mae.std(), images01, maskSeed);
}

ReconstructionPanels reconstruct(VisionTransformer encoder, MaeDecoder decoder, const MaeConfig& cfg, int patchSize,
                                 const std::vector<float>& mean, const std::vector<float>& std,
                                 const torch::Tensor& images01, uint64_t maskSeed) {
    torch::NoGradGuard ng;
    bool encTraining = encoder->is_training(), decTraining = decoder->is_training();
    encoder->eval();
    decoder->eval();
    auto device = encoder->cls_token.device();
    auto x = normalizeImages(images01.to(device), mean, std);
    at::Generator gen = at::detail::createCPUGenerator(maskSeed);
    auto maskSample = randomMasking(x.size(0), encoder->cfg.numPatches(), cfg.maskRatio, gen, x.device());
    auto predicted = maePredict(encoder, decoder, x, maskSample);
    const int p = patchSize;
    const int C = int(x.size(1));
    auto maskPix = maskSample.mask.unsqueeze(-1).expand({-1, -1, p * p * C});

    ReconstructionPanels out;
    out.loss = maeLoss(x, predicted, maskSample.mask, p, cfg.normPixLoss).item<float>();
    out.lossPerImage = maeLossPerSample(x, predicted, maskSample.mask, p, cfg.normPixLoss).to(torch::kFloat32).cpu();
    auto pred = predicted;
    if (cfg.normPixLoss) {
        // Per image: average mean and variance of the *visible* patches only.
        auto patches = patchify(x, p);
        auto visible = (1 - maskSample.mask).unsqueeze(-1);
        auto count = visible.sum(1, true).clamp_min(1);
        auto pm = patches.mean(-1, true), pv = patches.var(-1, true, true);
        auto meanVis = (pm * visible).sum(1, true) / count;
        auto varVis = (pv * visible).sum(1, true) / count;
        pred = pred * (varVis + 1e-6).sqrt() + meanVis;
        out.pixelNote = "norm-pix prediction un-normalised with the visible patches' mean/variance (no leak)";
    } else {
        out.pixelNote = "pixel prediction";
    }
    auto recon = unpatchify(pred, p, C);
    auto pasted = unpatchify(patchify(x, p) * (1 - maskPix) + pred * maskPix, p, C);

    auto toDisplay = [&](const torch::Tensor& t) { return denormalizeImages(t, mean, std).clamp(0, 1).cpu(); };
    out.original = images01.cpu().clamp(0, 1);
    out.reconstruction = toDisplay(recon);
    out.pasted = toDisplay(pasted);
    // Masked patches shown as mid-grey so they stand apart from black image content.
    auto maskImg = unpatchify(maskPix.to(torch::kFloat32), p, C).cpu();
    out.masked = out.original * (1 - maskImg) + 0.5 * maskImg;
    out.mask = maskSample.mask.cpu();
    if (encTraining) encoder->train();
    if (decTraining) decoder->train();
    return out;
}

torch::Tensor maskedInMagenta(const torch::Tensor& original, const torch::Tensor& mask) {
    // base/probes/MaskedPatch.h's rule, the one the report uses and whose colour the GUI draws
    const auto asArray = [](const torch::Tensor& t) {
        auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
        return SnapshotArray{"", c.sizes().vec(), std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel())};
    };
    auto rgb = maskedInMagenta(asArray(original), asArray(mask));
    if (!rgb) return (original.size(1) == 1 ? original.expand({-1, 3, -1, -1}) : original).clone();
    return torch::from_blob(rgb->values.data(), rgb->shape, torch::kFloat32).clone();
}

torch::Tensor panelsToGrid(const ReconstructionPanels& p, int scale) {
    std::vector<torch::Tensor> cols = {p.original, p.mask.defined() ? maskedInMagenta(p.original, p.mask) : p.masked,
                                       p.reconstruction, p.pasted};
    const int64_t n = p.original.size(0), H = p.original.size(2) * scale,
                  W = p.original.size(3) * scale;
    const int64_t gap = 2;
    auto grid = torch::full({n * H + (n + 1) * gap, 4 * W + 5 * gap, 3}, 1.0f);
    for (int c = 0; c < 4; ++c) {
        auto img = cols[c];
        if (img.size(1) == 1) img = img.expand({-1, 3, -1, -1});
        img = torch::nn::functional::interpolate(
            img, torch::nn::functional::InterpolateFuncOptions().scale_factor(std::vector<double>{double(scale), double(scale)}).mode(torch::kNearest));
        for (int64_t i = 0; i < n; ++i) {
            int64_t y = gap + i * (H + gap), x = gap + c * (W + gap);
            grid.slice(0, y, y + H).slice(1, x, x + W).copy_(img[i].permute({1, 2, 0}));
        }
    }
    return (grid * 255).round().clamp(0, 255).to(torch::kUInt8);
}

}  // namespace graftlab
