#pragma once
// Batched, seeded augmentations on float images in [0, 1] (N x C x H x W), on whatever device they live.
#include <torch/types.h>

#include <cstdint>
#include <random>
#include <vector>

namespace graftlab {

// Per-image geometry of a random resized crop + flip, in pixels of the source image.
struct CropBox {
    double top = 0, left = 0, height = 0, width = 0;
    bool flip = false;
};

// torchvision's RandomResizedCrop sampling (10 tries, then a centre crop), plus a flip with probability p.
std::vector<CropBox> sampleCrops(int64_t n, int height, int width, double scaleMin, double scaleMax,
                                 double ratioMin, double ratioMax, double flipProbability, std::mt19937_64& rng);

// torchvision's RandomResizedCrop aspect ratios and RandomHorizontalFlip's probability, as every method's
// official code uses them; the one place they are written down.
constexpr double kCropRatioMin = 3.0 / 4.0, kCropRatioMax = 4.0 / 3.0, kFlipProbability = 0.5;
// sampleCrops with those: area scale in [scaleMin, scaleMax], flipped with kFlipProbability when `hflip`.
std::vector<CropBox> sampleResizedCrops(int64_t n, int height, int width, double scaleMin, double scaleMax, bool hflip,
                                        std::mt19937_64& rng);

// Resamples every image to its crop box at the input size (bilinear), one grid_sample for the batch.
torch::Tensor applyCrops(const torch::Tensor& images, const std::vector<CropBox>& boxes);

// (x - mean) / std per channel.
torch::Tensor normalizeImages(const torch::Tensor& images01, const std::vector<float>& mean, const std::vector<float>& std);
torch::Tensor denormalizeImages(const torch::Tensor& images, const std::vector<float>& mean, const std::vector<float>& std);

// A seed for one purpose at one step: independent streams that do not depend on how many draws came before,
// so that stop + resume reproduces an uninterrupted run exactly.
uint64_t streamSeed(uint64_t seed, uint64_t step, uint64_t purpose);

}  // namespace graftlab

namespace graftlab {

// Photometric perturbations of BYOL / MoCo v3 (and ConMIM's strong view), batched, per-image random draws.
// On 1-channel images saturation and hue have no meaning: they are skipped there (brightness and contrast
// still apply), and grayscale is the identity.
struct PhotometricConfig {
    double jitterProbability = 0.8;
    double brightness = 0.4, contrast = 0.4, saturation = 0.2, hue = 0.1;
    double grayscaleProbability = 0.2;
    double blurProbability = 0.0;
    double blurSigmaMin = 0.1, blurSigmaMax = 2.0;
    double solarizeProbability = 0.0;
};

// Applies, per image: colour jitter (brightness, contrast, saturation, hue in that order; hue as a rotation of
// the chroma plane in YIQ space), grayscale, Gaussian blur (separable, sigma uniform in range), solarize
// (x >= 0.5 -> 1 - x). Images in [0, 1], N x C x H x W; output clamped to [0, 1].
torch::Tensor applyPhotometric(const torch::Tensor& images01, const PhotometricConfig& cfg, std::mt19937_64& rng);

// Gaussian blur with a per-image sigma (0 = untouched), kernel size odd and < image size.
torch::Tensor gaussianBlur(const torch::Tensor& images, const std::vector<double>& sigmas);

}  // namespace graftlab
