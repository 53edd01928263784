#pragma once
// A small PNG encoder (zlib, filter 0) for figures made without OpenCV or Qt: TensorBoard images and the
// HTML run report. Pixels are row-major, 8 bits per channel; 1 = grey, 3 = RGB, 4 = RGBA.
#include <cstdint>
#include <string>

namespace graftlab {

std::string encodePng(const uint8_t* pixels, int width, int height, int channels);
// Width and height from a PNG's header; false when `png` is not one.
bool pngSize(const std::string& png, int& width, int& height);

}  // namespace graftlab
