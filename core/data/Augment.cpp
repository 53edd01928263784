#include "data/Augment.h"
#include "util/DeviceCopy.h"

#include <torch/torch.h>

#include <cmath>

namespace graftlab {

namespace {
// A small tensor of per-image parameters, drawn on the CPU, where `like` lives and in its type: on a GPU through
// pinned memory, so that augmenting there never makes the host wait for the queued work.
torch::Tensor paramsLike(const torch::Tensor& cpu, const torch::Tensor& like) {
    return toDeviceAsync(cpu.to(like.scalar_type()), like.device());
}
}  // namespace

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
    auto th = paramsLike(torch::from_blob(theta.data(), {n, 2, 3}, torch::kFloat32), images);
    auto grid = F::affine_grid(th, {n, images.size(1), images.size(2), images.size(3)}, /*align_corners=*/false);
    return F::grid_sample(images, grid, F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kBorder).align_corners(false));
}

static torch::Tensor channelVector(const std::vector<float>& v, const torch::Tensor& like) {
    return paramsLike(torch::tensor(v, torch::kFloat32), like).view({1, -1, 1, 1});
}

torch::Tensor normalizeImages(const torch::Tensor& images01, const std::vector<float>& mean, const std::vector<float>& std) {
    return (images01 - channelVector(mean, images01)) / channelVector(std, images01);
}

torch::Tensor denormalizeImages(const torch::Tensor& images, const std::vector<float>& mean, const std::vector<float>& std) {
    return images * channelVector(std, images) + channelVector(mean, images);
}

}  // namespace graftlab

namespace graftlab {

torch::Tensor gaussianBlur(const torch::Tensor& images, const std::vector<double>& sigmas) {
    const int64_t n = images.size(0), c = images.size(1), H = images.size(2), W = images.size(3);
    double sMax = 0;
    for (double s : sigmas) sMax = std::max(sMax, s);
    if (sMax <= 0) return images;
    int64_t k = 2 * int64_t(std::ceil(2.0 * sMax)) + 1;
    k = std::min<int64_t>(k, ((std::min(H, W) - 1) / 2) * 2 + 1);
    if (k < 3) return images;
    std::vector<float> kern(size_t(n * k));
    for (int64_t i = 0; i < n; ++i) {
        double s = sigmas[size_t(i)];
        double sum = 0;
        for (int64_t t = 0; t < k; ++t) {
            double x = double(t - k / 2);
            double v = s > 0 ? std::exp(-x * x / (2 * s * s)) : (t == k / 2 ? 1.0 : 0.0);
            kern[size_t(i * k + t)] = float(v);
            sum += v;
        }
        for (int64_t t = 0; t < k; ++t) kern[size_t(i * k + t)] /= float(sum);
    }
    auto kt = paramsLike(torch::from_blob(kern.data(), {n, 1, k}, torch::kFloat32), images);
    kt = kt.repeat_interleave(c, 0);  // (n*c, 1, k)
    namespace F = torch::nn::functional;
    auto x = images.reshape({1, n * c, H, W});
    x = F::pad(x, F::PadFuncOptions({k / 2, k / 2, k / 2, k / 2}).mode(torch::kReflect));
    x = F::conv2d(x, kt.view({n * c, 1, 1, k}), F::Conv2dFuncOptions().groups(n * c));
    x = F::conv2d(x, kt.view({n * c, 1, k, 1}), F::Conv2dFuncOptions().groups(n * c));
    return x.view({n, c, H, W});
}

torch::Tensor applyPhotometric(const torch::Tensor& images01, const PhotometricConfig& cfg, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> U(0.0, 1.0);
    const int64_t n = images01.size(0), C = images01.size(1);
    std::vector<float> bright(size_t(n), 1.f), contr(size_t(n), 1.f), sat(size_t(n), 1.f), hue(size_t(n), 0.f),
        gray(size_t(n), 0.f), solar(size_t(n), 0.f);
    std::vector<double> sigma(size_t(n), 0.0);
    auto factor = [&](double strength) { return float(std::max(0.0, 1.0 - strength + 2.0 * strength * U(rng))); };
    for (int64_t i = 0; i < n; ++i) {
        if (U(rng) < cfg.jitterProbability) {
            bright[size_t(i)] = factor(cfg.brightness);
            contr[size_t(i)] = factor(cfg.contrast);
            sat[size_t(i)] = factor(cfg.saturation);
            hue[size_t(i)] = float((2.0 * U(rng) - 1.0) * cfg.hue);
        }
        gray[size_t(i)] = U(rng) < cfg.grayscaleProbability ? 1.f : 0.f;
        sigma[size_t(i)] = U(rng) < cfg.blurProbability ? cfg.blurSigmaMin + (cfg.blurSigmaMax - cfg.blurSigmaMin) * U(rng) : 0.0;
        solar[size_t(i)] = U(rng) < cfg.solarizeProbability ? 1.f : 0.f;
    }
    auto col = [&](const std::vector<float>& v) { return paramsLike(torch::tensor(v), images01).view({n, 1, 1, 1}); };
    auto x = images01 * col(bright);
    x = x.clamp(0, 1);
    auto luma = [&](const torch::Tensor& t) {
        if (C == 3) return (0.299 * t.select(1, 0) + 0.587 * t.select(1, 1) + 0.114 * t.select(1, 2)).unsqueeze(1);
        return t.mean(1, true);
    };
    auto meanGray = luma(x).mean({2, 3}, true);
    x = (meanGray + (x - meanGray) * col(contr)).clamp(0, 1);
    if (C == 3) {
        auto g = luma(x);
        x = (g + (x - g) * col(sat)).clamp(0, 1);
        // hue: rotate the (I, Q) chroma plane by 2*pi*h
        auto y = luma(x).squeeze(1);
        auto i = 0.596 * x.select(1, 0) - 0.274 * x.select(1, 1) - 0.322 * x.select(1, 2);
        auto q = 0.211 * x.select(1, 0) - 0.523 * x.select(1, 1) + 0.312 * x.select(1, 2);
        auto th = col(hue).squeeze(1) * (2 * M_PI);
        auto cs = th.cos(), sn = th.sin();
        auto i2 = i * cs - q * sn, q2 = i * sn + q * cs;
        auto r = y + 0.956 * i2 + 0.621 * q2, gg = y - 0.272 * i2 - 0.647 * q2, b = y - 1.106 * i2 + 1.703 * q2;
        // only images that drew a hue shift go through the (slightly lossy) YIQ round trip
        x = torch::where(col(hue).abs() > 0, torch::stack({r, gg, b}, 1).clamp(0, 1), x);
        auto gm = col(gray);
        x = x * (1 - gm) + luma(x).expand_as(x) * gm;
    }
    x = gaussianBlur(x, sigma);
    auto sm = col(solar);
    x = torch::where((sm > 0.5) & (x >= 0.5), 1 - x, x);
    return x.clamp(0, 1);
}

std::vector<CropBox> sampleResizedCrops(int64_t n, int height, int width, double scaleMin, double scaleMax, bool hflip,
                                        std::mt19937_64& rng) {
    return sampleCrops(n, height, width, scaleMin, scaleMax, kCropRatioMin, kCropRatioMax, hflip ? kFlipProbability : 0.0, rng);
}

}  // namespace graftlab
