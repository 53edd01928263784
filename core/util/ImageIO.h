#pragma once
#include <torch/types.h>

#include <string>
#include <vector>

namespace graftlab {

bool imageIoAvailable();
// Writes an (H, W, 3) RGB uint8 tensor as PNG (or any format OpenCV knows from the extension), with optional
// caption lines in a band above the image. Throws FileError naming the file.
void writeImage(const std::string& path, const torch::Tensor& rgb, const std::vector<std::string>& header = {},
                const std::vector<std::string>& columnTitles = {});

}  // namespace graftlab
