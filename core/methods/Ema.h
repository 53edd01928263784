#pragma once
// The exponential moving average behind MoCo v3's momentum encoder and ConMIM's slow model:
// target = m * target + (1 - m) * source, parameter by parameter (same module structure), outside autograd.
// m = 0 copies the source exactly.
#include <torch/nn/module.h>
#include <torch/utils.h>
#include <ATen/ops/_foreach_add.h>
#include <ATen/ops/_foreach_mul.h>

namespace graftlab {

inline void emaUpdate(torch::nn::Module& target, const torch::nn::Module& source, double m) {
    torch::NoGradGuard ng;
    auto dst = target.parameters(), src = source.parameters();
    TORCH_CHECK(dst.size() == src.size(), "emaUpdate: the two modules differ in their parameters");
    if (m == 0.0) {
        for (size_t i = 0; i < dst.size(); ++i) dst[i].copy_(src[i]);
        return;
    }
    // two multi-tensor launches for the whole model instead of two kernels per parameter (what counts on a GPU)
    std::vector<at::Tensor> s(src.size());
    for (size_t i = 0; i < src.size(); ++i) s[i] = src[i].detach();
    at::_foreach_mul_(dst, m);
    at::_foreach_add_(dst, s, 1.0 - m);
}

}  // namespace graftlab
