#include "base/probes/MaskedPatch.h"

#include <algorithm>
#include <cmath>

namespace graftlab {

std::optional<SnapshotArray> maskedInMagenta(const SnapshotArray& original, const SnapshotArray& mask) {
    if (original.shape.size() != 4 || mask.shape.size() != 2) return std::nullopt;
    const int64_t n = original.shape[0], C = original.shape[1], H = original.shape[2], W = original.shape[3];
    const int64_t L = mask.shape[1], g = int64_t(std::lround(std::sqrt(double(std::max<int64_t>(L, 0)))));
    if (C < 1 || g < 1 || g * g != L || H % g != 0 || W % g != 0 || mask.shape[0] < n) return std::nullopt;
    if (int64_t(original.values.size()) < n * C * H * W || int64_t(mask.values.size()) < mask.shape[0] * L) return std::nullopt;
    SnapshotArray out{original.name + "_magenta", {n, 3, H, W}, std::vector<float>(size_t(n * 3 * H * W))};
    const int64_t ph = H / g, pw = W / g;
    for (int64_t i = 0; i < n; ++i)
        for (int64_t y = 0; y < H; ++y)
            for (int64_t x = 0; x < W; ++x) {
                const bool masked = mask.values[size_t(i * L + (y / ph) * g + x / pw)] >= 0.5f;
                const Rgb8 c = onMaskedPatchHatch(y, x) ? kMaskedPatchHatch : kMaskedPatchFill;
                const float fill[3] = {c.r / 255.f, c.g / 255.f, c.b / 255.f};
                for (int64_t k = 0; k < 3; ++k) {
                    const float v = original.values[size_t(((i * C + std::min(k, C - 1)) * H + y) * W + x)];
                    out.values[size_t(((i * 3 + k) * H + y) * W + x)] = masked ? fill[k] : v;
                }
            }
    return out;
}

}  // namespace graftlab
