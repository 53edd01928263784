#pragma once
#include <torch/types.h>

namespace graftlab {

// MAE's patchify: (N, C, H, W) -> (N, L, p*p*C), pixels of a patch in (row, col, channel) order.
torch::Tensor patchify(const torch::Tensor& imgs, int p);
// Inverse of patchify for square images.
torch::Tensor unpatchify(const torch::Tensor& x, int p, int channels);

}  // namespace graftlab
