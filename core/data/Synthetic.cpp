#include "data/Dataset.h"
#include "base/util/Errors.h"

#include <torch/torch.h>

#include <cmath>
#include <random>

#include <cstring>
#include <unordered_map>

namespace graftlab {

namespace {

// One image of class `cls` in [0,1], drawn with random position, size, angle-free geometry and contrast.
void drawShape(float* px, int S, int cls, std::mt19937_64& rng) {
    std::uniform_real_distribution<float> U(0.f, 1.f);
    float cx = S * (0.35f + 0.3f * U(rng)), cy = S * (0.35f + 0.3f * U(rng));
    float r = S * (0.18f + 0.14f * U(rng));
    float fg = 0.65f + 0.35f * U(rng), bg = 0.1f * U(rng);
    float period = std::max(3.f, S * (0.14f + 0.08f * U(rng)));
    float phase = period * U(rng);
    for (int y = 0; y < S; ++y) {
        for (int x = 0; x < S; ++x) {
            float dx = x + 0.5f - cx, dy = y + 0.5f - cy;
            float d = std::sqrt(dx * dx + dy * dy);
            float v = 0.f;
            switch (cls) {
                case 0: v = d < r; break;                                            // disk
                case 1: v = std::abs(dx) < r * 0.85f && std::abs(dy) < r * 0.85f; break;  // square
                case 2: v = dy < r * 0.8f && dy > -r && std::abs(dx) < (dy + r) * 0.6f; break;  // triangle
                case 3: v = d < r && d > r * 0.55f; break;                           // ring
                case 4: v = std::fmod(y + phase, period) < period * 0.5f; break;     // horizontal stripes
                case 5: v = std::fmod(x + phase, period) < period * 0.5f; break;     // vertical stripes
                case 6: v = (std::abs(dx) < r * 0.3f && std::abs(dy) < r) || (std::abs(dy) < r * 0.3f && std::abs(dx) < r); break;  // plus
                case 7: v = (std::abs(dx - dy) < r * 0.3f || std::abs(dx + dy) < r * 0.3f) && d < r * 1.2f; break;  // X
                case 8: v = (int(std::floor((x + phase) / period)) + int(std::floor((y + phase) / period))) % 2 == 0; break;  // checker
                default: {                                                            // two blobs
                    float ex = dx + r * 0.6f, ey = dy + r * 0.3f, fx = dx - r * 0.6f, fy = dy - r * 0.3f;
                    float s2 = r * r * 0.18f;
                    v = std::exp(-(ex * ex + ey * ey) / s2) + std::exp(-(fx * fx + fy * fy) / s2);
                    v = std::min(v, 1.f);
                }
            }
            float noise = 0.06f * (U(rng) - 0.5f);
            px[y * S + x] = std::clamp(bg + (fg - bg) * v + noise, 0.f, 1.f);
        }
    }
}

}  // namespace

Dataset makeSynthetic(int64_t count, int imageSize, uint64_t seed, Split split) {
    if (count <= 0) throw RecipeError("data.synthetic_size", "must be positive");
    Dataset d;
    d.name = "synthetic";
    d.numClasses = 10;
    d.classNames = {"disk", "square", "triangle", "ring", "h-stripes", "v-stripes", "plus", "X", "checker", "blobs"};
    // Train and test never share a stream: the split is folded into the seed.
    std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + (split == Split::Train ? 1 : 2));
    const int S = imageSize;
    std::vector<float> px(size_t(count) * S * S);
    std::vector<int64_t> labels(count);
    for (int64_t i = 0; i < count; ++i) {
        int cls = int(i % 10);  // balanced classes
        labels[i] = cls;
        drawShape(px.data() + size_t(i) * S * S, S, cls, rng);
    }
    auto f = torch::from_blob(px.data(), {count, 1, S, S}, torch::kFloat32);
    d.images = (f * 255.f).round_().clamp_(0, 255).to(torch::kUInt8);
    d.labels = torch::from_blob(labels.data(), {count}, torch::kInt64).clone();
    computeChannelStats(d);
    return d;
}

Dataset loadDataset(const DataConfig& cfg, Split split, uint64_t seed) {
    int64_t synthCount = split == Split::Train ? cfg.syntheticSize : std::max<int64_t>(cfg.syntheticSize / 4, 10);
    if (cfg.dataset == "synthetic") return makeSynthetic(synthCount, cfg.imageSize, seed, split);
    if (cfg.dataset == "fashion_mnist") {
        try {
            return loadFashionMnist(cfg.root, split, cfg.imageSize);
        } catch (const FileError& e) {
            bool missing = !std::filesystem::exists(e.path());
            if (!(missing && cfg.fallbackToSynthetic)) throw;
            Dataset d = makeSynthetic(synthCount, cfg.imageSize, seed, split);
            d.note = "Fashion-MNIST not found (no " + e.path() +
                     "); using the built-in synthetic set instead. Install it with: sudo apt-get install dataset-fashion-mnist";
            return d;
        }
    }
    if (cfg.dataset == "cifar10") return loadCifar10(cfg.root, split, cfg.imageSize);
    if (cfg.dataset == "image_folder") return loadImageFolder(cfg.root, split, cfg.imageSize);
    throw RecipeError("data.dataset", "unknown dataset \"" + cfg.dataset + "\"");
}

torch::Tensor resizeImagesU8(const torch::Tensor& images, int size) {
    namespace F = torch::nn::functional;
    auto f = images.to(torch::kFloat32);
    bool shrink = images.size(-1) > size;
    auto out = F::interpolate(f, F::InterpolateFuncOptions()
                                     .size(std::vector<int64_t>{size, size})
                                     .mode(torch::kBilinear)
                                     .align_corners(false)
                                     .antialias(shrink));
    return out.round_().clamp_(0, 255).to(torch::kUInt8);
}

void computeChannelStats(Dataset& d) {
    auto f = d.images.to(torch::kFloat32).div_(255.f);
    auto m = f.mean({0, 2, 3});
    auto s = f.std({0, 2, 3}).clamp_min(1e-3);
    d.mean.assign(m.data_ptr<float>(), m.data_ptr<float>() + m.numel());
    d.std.assign(s.data_ptr<float>(), s.data_ptr<float>() + s.numel());
}

int64_t imagesShared(const Dataset& train, const Dataset& test) {
    if (train.size() == 0 || test.size() == 0 || train.images.sizes().slice(1) != test.images.sizes().slice(1)) return 0;
    auto a = train.images.contiguous(), b = test.images.contiguous();
    const size_t bytes = size_t(a.numel() / a.size(0));
    const uint8_t* pa = a.data_ptr<uint8_t>();
    const uint8_t* pb = b.data_ptr<uint8_t>();
    auto hash = [bytes](const uint8_t* p) {  // FNV-1a, 64 bit
        uint64_t h = 1469598103934665603ull;
        for (size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ull;
        return h;
    };
    std::unordered_multimap<uint64_t, int64_t> seen;
    seen.reserve(size_t(a.size(0)));
    for (int64_t i = 0; i < a.size(0); ++i) seen.emplace(hash(pa + size_t(i) * bytes), i);
    int64_t shared = 0;
    for (int64_t i = 0; i < b.size(0); ++i) {
        const uint8_t* img = pb + size_t(i) * bytes;
        auto [lo, hi] = seen.equal_range(hash(img));
        for (auto it = lo; it != hi; ++it)
            if (std::memcmp(pa + size_t(it->second) * bytes, img, bytes) == 0) {
                ++shared;
                break;
            }
    }
    return shared;
}

}  // namespace graftlab
