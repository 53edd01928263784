#pragma once
// The exponential moving average behind MoCo v3's momentum encoder and ConMIM's slow model:
// target = m * target + (1 - m) * source, parameter by parameter (same module structure), outside autograd.
// m = 0 copies the source exactly.
#include <torch/nn/module.h>
#include <torch/utils.h>
#include <ATen/ops/_foreach_add.h>
#include <ATen/ops/_foreach_mul.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>

namespace graftlab {

// The momentum schedule: a cosine ramp from `start` to `end` over the stage (MoCo v3's momentum encoder, ConMIM's
// slow model).
inline double cosineRamp(int64_t step, int64_t total, double start, double end) {
    double t = total > 0 ? std::clamp(double(step) / double(total), 0.0, 1.0) : 1.0;
    return end - (end - start) * 0.5 * (1.0 + std::cos(M_PI * t));
}

// `skipped` (optional, a 0-dim bool on the device): where true the target keeps its values (the step the update
// follows was skipped on the device, train/TrainStep.h), without reading the flag back. The blend is exact
// (m_eff = 1: target * 1 + source * 0) for a finite source.
inline void emaUpdate(torch::nn::Module& target, const torch::nn::Module& source, double m, const at::Tensor& skipped = {}) {
    torch::NoGradGuard ng;
    auto dst = target.parameters(), src = source.parameters();
    TORCH_CHECK(dst.size() == src.size(), "emaUpdate: the two modules differ in their parameters");
    if (m == 0.0 && !skipped.defined()) {
        for (size_t i = 0; i < dst.size(); ++i) dst[i].copy_(src[i]);
        return;
    }
    // two multi-tensor launches for the whole model instead of two kernels per parameter (what counts on a GPU)
    std::vector<at::Tensor> s(src.size());
    for (size_t i = 0; i < src.size(); ++i) s[i] = src[i].detach();
    if (!skipped.defined()) {
        at::_foreach_mul_(dst, m);
        at::_foreach_add_(dst, s, 1.0 - m);
        return;
    }
    if (dst.empty()) return;
    auto keep = skipped.to(dst.front().scalar_type());  // 1 on a skipped step
    auto mEff = keep * (1.0 - m) + m;                   // m, or 1 on a skipped step
    auto sourceWeight = 1.0 - mEff;                     // 1 - m, or 0
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
    at::_foreach_mul_(dst, mEff);  // a 0-dim tensor as the factor: no read back
    at::_foreach_add_(dst, at::_foreach_mul(s, sourceWeight));  // out of place: s shares the source's storage
#else
    for (size_t i = 0; i < dst.size(); ++i) dst[i].mul_(mEff).add_(s[i] * sourceWeight);
#endif
}

}  // namespace graftlab
