#include "model/PosEmbed.h"

#include <torch/torch.h>

namespace graftlab {

torch::Tensor sincos1d(int embedDim, const torch::Tensor& positions) {
    // float64 like numpy in the reference, then float32
    auto omega = torch::arange(embedDim / 2, torch::kFloat64) / (embedDim / 2.0);
    omega = 1.0 / torch::pow(10000.0, omega);
    auto pos = positions.reshape({-1}).to(torch::kFloat64);
    auto out = torch::outer(pos, omega);
    return torch::cat({torch::sin(out), torch::cos(out)}, 1).to(torch::kFloat32);
}

torch::Tensor sincos2d(int embedDim, int gridSize, bool clsToken) {
    auto gh = torch::arange(gridSize, torch::kFloat64);
    auto gw = torch::arange(gridSize, torch::kFloat64);
    // np.meshgrid(grid_w, grid_h) with 'xy' indexing: grid[0][i][j] = w[j], grid[1][i][j] = h[i]
    auto grids = torch::meshgrid({gw, gh}, "xy");
    auto embH = sincos1d(embedDim / 2, grids[0]);
    auto embW = sincos1d(embedDim / 2, grids[1]);
    auto emb = torch::cat({embH, embW}, 1);
    if (clsToken) emb = torch::cat({torch::zeros({1, embedDim}), emb}, 0);
    return emb;
}

}  // namespace graftlab
