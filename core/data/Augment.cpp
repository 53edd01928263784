#include "data/Augment.h"

#include <torch/torch.h>

#include <cmath>

namespace graftlab {

uint64_t streamSeed(uint64_t seed, uint64_t step, uint64_t purpose) {
    // splitmix64 over the three words
    auto mix = [](uint64_t z) {
        z += 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    };
    return mix(mix(mix(seed) ^ step) ^ purpose);
}

std::vector<CropBox> sampleCrops(int64_t n, int height, int width, double scaleMin, double scaleMax, double ratioMin,
                                 double ratioMax, double flipProbability, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> U(0.0, 1.0);
    std::vector<CropBox> boxes(static_cast<size_t>(n));
    const double area = double(height) * width;
    const double logRmin = std::log(ratioMin), logRmax = std::log(ratioMax);
    for (auto& b : boxes) {
        bool found = false;
        for (int attempt = 0; attempt < 10 && !found; ++attempt) {
            double target = area * (scaleMin + (scaleMax - scaleMin) * U(rng));
            double ratio = std::exp(logRmin + (logRmax - logRmin) * U(rng));
            double w = std::round(std::sqrt(target * ratio));
            double h = std::round(std::sqrt(target / ratio));
            if (w > 0 && h > 0 && w <= width && h <= height) {
                b.height = h;
                b.width = w;
                b.top = std::floor(U(rng) * (height - h + 1));
                b.left = std::floor(U(rng) * (width - w + 1));
                found = true;
            }
        }
        if (!found) {  // centre crop, clamped to the ratio range
            double inRatio = double(width) / height;
            double w = width, h = height;
            if (inRatio < ratioMin) h = std::round(w / ratioMin);
            else if (inRatio > ratioMax) w = std::round(h * ratioMax);
            b.height = h;
            b.width = w;
            b.top = std::floor((height - h) / 2);
            b.left = std::floor((width - w) / 2);
        }
        b.flip = U(rng) < flipProbability;
    }
    return boxes;
}

torch::Tensor applyCrops(const torch::Tensor& images, const std::vector<CropBox>& boxes) {
    namespace F = torch::nn::functional;
    const int64_t n = images.size(0);
    const double H = double(images.size(2)), W = double(images.size(3));
    // align_corners=false: output coordinate u in [-1,1] maps to input x = cx + sx * u in normalised coordinates.
    std::vector<float> theta(static_cast<size_t>(n) * 6);
    for (int64_t i = 0; i < n; ++i) {
        const auto& b = boxes[static_cast<size_t>(i)];
        float sx = float(b.width / W), sy = float(b.height / H);
        float cx = float((2 * b.left + b.width) / W - 1), cy = float((2 * b.top + b.height) / H - 1);
        float* t = theta.data() + i * 6;
        t[0] = b.flip ? -sx : sx; t[1] = 0; t[2] = cx;
        t[3] = 0; t[4] = sy; t[5] = cy;
    }
    auto th = torch::from_blob(theta.data(), {n, 2, 3}, torch::kFloat32).to(images.device(), images.scalar_type());
    auto grid = F::affine_grid(th, {n, images.size(1), images.size(2), images.size(3)}, /*align_corners=*/false);
    return F::grid_sample(images, grid, F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kBorder).align_corners(false));
}

static torch::Tensor channelVector(const std::vector<float>& v, const torch::Tensor& like) {
    return torch::tensor(v, torch::kFloat32).to(like.device(), like.scalar_type()).view({1, -1, 1, 1});
}

torch::Tensor normalizeImages(const torch::Tensor& images01, const std::vector<float>& mean, const std::vector<float>& std) {
    return (images01 - channelVector(mean, images01)) / channelVector(std, images01);
}

torch::Tensor denormalizeImages(const torch::Tensor& images, const std::vector<float>& mean, const std::vector<float>& std) {
    return images * channelVector(std, images) + channelVector(mean, images);
}

}  // namespace graftlab
