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

// Resamples every image to its crop box at the input size (bilinear), one grid_sample for the batch.
torch::Tensor applyCrops(const torch::Tensor& images, const std::vector<CropBox>& boxes);

// (x - mean) / std per channel.
torch::Tensor normalizeImages(const torch::Tensor& images01, const std::vector<float>& mean, const std::vector<float>& std);
torch::Tensor denormalizeImages(const torch::Tensor& images, const std::vector<float>& mean, const std::vector<float>& std);

// A seed for one purpose at one step: independent streams that do not depend on how many draws came before,
// so that stop + resume reproduces an uninterrupted run exactly.
uint64_t streamSeed(uint64_t seed, uint64_t step, uint64_t purpose);

}  // namespace graftlab
