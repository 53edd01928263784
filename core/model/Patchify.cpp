#include "model/Patchify.h"

#include <torch/torch.h>

#include <cmath>

namespace graftlab {

torch::Tensor patchify(const torch::Tensor& imgs, int p) {
    const int64_t n = imgs.size(0), c = imgs.size(1), h = imgs.size(2) / p, w = imgs.size(3) / p;
    auto x = imgs.reshape({n, c, h, p, w, p});
    x = x.permute({0, 2, 4, 3, 5, 1});  // nchpwq -> nhwpqc
    return x.reshape({n, h * w, p * p * c});
}

torch::Tensor unpatchify(const torch::Tensor& x, int p, int channels) {
    const int64_t n = x.size(0);
    const int64_t h = static_cast<int64_t>(std::lround(std::sqrt(double(x.size(1)))));
    auto y = x.reshape({n, h, h, p, p, channels});
    y = y.permute({0, 5, 1, 3, 2, 4});  // nhwpqc -> nchpwq
    return y.reshape({n, channels, h * p, h * p});
}

}  // namespace graftlab
