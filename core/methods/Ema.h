#pragma once
// The exponential moving average behind MoCo v3's momentum encoder and ConMIM's slow model:
// target = m * target + (1 - m) * source, parameter by parameter (same module structure), outside autograd.
// m = 0 copies the source exactly.
#include <torch/nn/module.h>
#include <torch/utils.h>

namespace graftlab {

inline void emaUpdate(torch::nn::Module& target, const torch::nn::Module& source, double m) {
    torch::NoGradGuard ng;
    auto dst = target.parameters(), src = source.parameters();
    TORCH_CHECK(dst.size() == src.size(), "emaUpdate: the two modules differ in their parameters");
    for (size_t i = 0; i < dst.size(); ++i) {
        if (m == 0.0) dst[i].copy_(src[i]);
        else dst[i].mul_(m).add_(src[i].detach(), 1.0 - m);
    }
}

}  // namespace graftlab
