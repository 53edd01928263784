#pragma once
// MAE's demo panels: original, masked, reconstruction, reconstruction with the visible patches pasted back.
#include "methods/Mae.h"

#include <string>
#include <vector>

namespace graftlab {

struct ReconstructionPanels {
    // Each (N, C, H, W) float in [0, 1], display space (dataset normalisation undone).
    torch::Tensor original, masked, reconstruction, pasted;
    torch::Tensor mask;  // (N, L), 1 = masked
    float loss = 0;      // MAE loss on these images with this mask
    torch::Tensor lossPerImage;  // (N): each image's loss over its masked patches
    // How a norm-pix prediction was turned back into pixels: said in every display of it, since using the
    // target patch's own statistics (as the MAE demo does) would leak what the model never saw.
    std::string pixelNote;
};

// Runs the model on `images01` ([0,1], N x C x H x W) with a mask drawn from `maskSeed`.
ReconstructionPanels reconstruct(MaeObjective& mae, const torch::Tensor& images01, uint64_t maskSeed);
// The same with any encoder and MAE decoder (MTL, or a grafting stage's encoder with the MIM stage's decoder).
ReconstructionPanels reconstruct(VisionTransformer encoder, MaeDecoder decoder, const MaeConfig& cfg, int patchSize,
                                 const std::vector<float>& mean, const std::vector<float>& std,
                                 const torch::Tensor& images01, uint64_t maskSeed);

// The original images (N, C, H, W) as RGB with the masked patches (mask (N, L), 1 = masked) filled magenta with a
// light hatch: the masked panel of the grid (a grey fill looks like cloth). base/probes/MaskedPatch.h's rule; the
// original as RGB when the mask does not fit it.
torch::Tensor maskedInMagenta(const torch::Tensor& original, const torch::Tensor& mask);
// Lays the panels out as an 8-bit image: one row per image, four columns, `scale`x nearest upscaling,
// 1-px separators. Returns (H, W, 3) uint8.
torch::Tensor panelsToGrid(const ReconstructionPanels& p, int scale);

}  // namespace graftlab
