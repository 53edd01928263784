#pragma once
#include <torch/types.h>

namespace graftlab {

// MAE's get_1d_sincos_pos_embed_from_grid: for positions p and D/2 frequencies w_k = 1 / 10000^(k/(D/2)),
// rows are [sin(p w_0..), cos(p w_0..)]. Returns float32 (positions.numel() x D).
torch::Tensor sincos1d(int embedDim, const torch::Tensor& positions);

// MAE's get_2d_sincos_pos_embed: grid = meshgrid(w, h) (w first, as in the reference), half the channels
// encode grid[0], half grid[1]. Returns (gridSize^2 [+1], D); with clsToken a leading zero row.
torch::Tensor sincos2d(int embedDim, int gridSize, bool clsToken);

}  // namespace graftlab
